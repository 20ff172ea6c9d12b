//! The filesystem against the kernel's own tmpfs: the same random operations on a `MemFs`
//! and on a fresh directory of `/dev/shm` (tmpfs), made as the kernel's syscalls would be
//! made by the path view on top of it. After each operation the errno (or success) must
//! agree, and so must the whole tree: names, kinds, permission bits, link counts, sizes
//! (directories' too), symlink targets and file contents.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use viewos_memfs::{Cred, Errno, Ino, Kind, MemFs, RENAME_EXCHANGE, RENAME_NOREPLACE};

type P = Vec<&'static str>;

/// Symlinks point here: nowhere (walking through one is ENOENT on both sides).
const NOWHERE: &[u8] = b"nowhere";

#[path = "common/ops.rs"]
mod ops;

type Op = ops::Op<P>;

fn errno(e: std::io::Error) -> Errno {
    Errno(e.raw_os_error().map_or(Errno::EIO.0, |n| n as u16))
}

fn last() -> Errno {
    errno(std::io::Error::last_os_error())
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn full(base: &Path, p: &P) -> PathBuf {
    p.iter().fold(base.to_path_buf(), |acc, c| acc.join(c))
}

/// The operation on the kernel's tmpfs.
fn apply_kernel(base: &Path, op: &Op) -> Result<(), Errno> {
    use std::io::Write;
    match op {
        Op::Create(p, Kind::File) => std::fs::OpenOptions::new().write(true).create_new(true).open(full(base, p)).map(drop).map_err(errno),
        Op::Create(p, Kind::Dir) => std::fs::create_dir(full(base, p)).map_err(errno),
        Op::Create(p, Kind::Symlink) => std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(NOWHERE), full(base, p)).map_err(errno),
        Op::Create(p, _) => {
            // SAFETY: a valid C string.
            if unsafe { libc::mkfifo(cstr(&full(base, p)).as_ptr(), 0o644) } == 0 { Ok(()) } else { Err(last()) }
        }
        Op::Write(p, off, len, b) => {
            let f = std::fs::OpenOptions::new().write(true).open(full(base, p)).map_err(errno)?;
            if *len > 0 {
                std::os::unix::fs::FileExt::write_all_at(&f, &vec![*b; *len], *off).map_err(errno)?;
            }
            (&f).flush().map_err(errno)
        }
        Op::Truncate(p, len) => {
            // SAFETY: a valid C string.
            if unsafe { libc::truncate(cstr(&full(base, p)).as_ptr(), *len as i64) } == 0 { Ok(()) } else { Err(last()) }
        }
        Op::Unlink(p) => std::fs::remove_file(full(base, p)).map_err(errno),
        Op::Rmdir(p) => std::fs::remove_dir(full(base, p)).map_err(errno),
        Op::Rename(a, b, f) => {
            let (a, b) = (cstr(&full(base, a)), cstr(&full(base, b)));
            // SAFETY: valid C strings.
            if unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), *f) } == 0 { Ok(()) } else { Err(last()) }
        }
        Op::Link(a, b) => std::fs::hard_link(full(base, a), full(base, b)).map_err(errno),
        Op::Chmod(p, m) => std::fs::set_permissions(full(base, p), std::fs::Permissions::from_mode(*m)).map_err(errno),
    }
}

/// The kernel's walk on the memfs: every component but the last must be a directory (a
/// symlink leads nowhere: ENOENT); with `follow`, the last one too may not be a symlink.
fn walk(fs: &MemFs, cred: &Cred, p: &[&str], follow: bool) -> Result<Ino, Errno> {
    let mut at = fs.root();
    for (i, c) in p.iter().enumerate() {
        match fs.kind(at) {
            Some(Kind::Dir) => {}
            Some(Kind::Symlink) => return Err(Errno::ENOENT),
            _ => return Err(Errno::ENOTDIR),
        }
        at = fs.lookup(at, c.as_bytes(), cred)?;
        if follow && i + 1 == p.len() && fs.kind(at) == Some(Kind::Symlink) {
            return Err(Errno::ENOENT);
        }
    }
    Ok(at)
}

fn split(fs: &MemFs, cred: &Cred, p: &[&'static str]) -> Result<(Ino, &'static str), Errno> {
    let dir = walk(fs, cred, &p[..p.len() - 1], true)?;
    match fs.kind(dir) {
        Some(Kind::Dir) => Ok((dir, p[p.len() - 1])),
        _ => Err(Errno::ENOTDIR),
    }
}

/// The operation on the memfs, as the monitor makes it for an open, truncate, chmod...
fn apply_memfs(fs: &mut MemFs, cred: &Cred, op: &Op, now: u64) -> Result<(), Errno> {
    match op {
        Op::Create(p, k) => {
            let (d, n) = split(fs, cred, p)?;
            // The kernel's modes: 0777 (directories) or 0666 (files, FIFOs) less the umask.
            let mode = if *k == Kind::Dir { 0o755 } else { 0o644 };
            if *k == Kind::Symlink { fs.symlink(d, n.as_bytes(), NOWHERE, cred, now) } else { fs.create(d, n.as_bytes(), *k, mode, cred, now) }.map(drop)
        }
        Op::Write(p, off, len, b) => {
            let i = walk(fs, cred, p, true)?;
            fs.access(i, 2, cred)?;
            fs.write(i, *off, &vec![*b; *len], cred, now).map(drop)
        }
        Op::Truncate(p, len) => {
            let i = walk(fs, cred, p, true)?;
            match fs.kind(i) {
                Some(Kind::Dir) => return Err(Errno::EISDIR),
                Some(Kind::File) => {}
                _ => return Err(Errno::EINVAL),
            }
            fs.access(i, 2, cred)?;
            fs.truncate(i, *len, now)
        }
        Op::Unlink(p) => {
            let (d, n) = split(fs, cred, p)?;
            fs.unlink(d, n.as_bytes(), cred, now)
        }
        Op::Rmdir(p) => {
            let (d, n) = split(fs, cred, p)?;
            fs.rmdir(d, n.as_bytes(), cred, now)
        }
        Op::Rename(a, b, f) => {
            let (da, na) = split(fs, cred, a)?;
            let (db, nb) = split(fs, cred, b)?;
            fs.rename(da, na.as_bytes(), db, nb.as_bytes(), *f, cred, now)
        }
        Op::Link(a, b) => {
            let i = walk(fs, cred, a, false)?;
            let (db, nb) = split(fs, cred, b)?;
            fs.link(i, db, nb.as_bytes(), cred, now)
        }
        Op::Chmod(p, m) => {
            let i = walk(fs, cred, p, true)?;
            fs.chmod(i, *m, cred, now)
        }
    }
}

/// Every entry below the root: (path, kind letter, mode bits, nlink, size, link target or
/// file data).
type Tree = Vec<(String, char, u32, u64, u64, Vec<u8>)>;

fn kernel_tree(base: &Path) -> Tree {
    let mut out = Vec::new();
    let mut dirs = vec![(base.to_path_buf(), String::new())];
    while let Some((d, rel)) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let name = format!("{rel}/{}", e.file_name().to_string_lossy());
            let md = std::fs::symlink_metadata(e.path()).unwrap();
            let t = md.file_type();
            let (k, body) = if t.is_symlink() {
                ('l', std::fs::read_link(e.path()).unwrap().into_os_string().into_vec())
            } else if t.is_dir() {
                dirs.push((e.path(), name.clone()));
                ('d', Vec::new())
            } else if t.is_file() {
                ('f', std::fs::read(e.path()).unwrap())
            } else {
                ('p', Vec::new())
            };
            out.push((name, k, md.mode() & 0o7777, md.nlink(), md.size(), body));
        }
    }
    out.sort();
    out
}

use std::os::unix::ffi::OsStringExt;

fn memfs_tree(fs: &MemFs) -> Tree {
    let mut out = Vec::new();
    let mut dirs = vec![(fs.root(), String::new())];
    while let Some((d, rel)) = dirs.pop() {
        for e in fs.readdir(d, 0).unwrap() {
            if e.name == b"." || e.name == b".." {
                continue;
            }
            let name = format!("{rel}/{}", String::from_utf8_lossy(&e.name));
            let st = fs.stat(e.ino).unwrap();
            let (k, body) = match fs.kind(e.ino).unwrap() {
                Kind::Symlink => ('l', fs.readlink(e.ino).unwrap()),
                Kind::Dir => {
                    dirs.push((e.ino, name.clone()));
                    ('d', Vec::new())
                }
                Kind::File => ('f', fs.read(e.ino, 0, usize::MAX >> 1).unwrap()),
                _ => ('p', Vec::new()),
            };
            // A symlink's permission bits are 0777 whatever the umask (the kernel's too).
            out.push((name, k, st.mode & 0o7777, u64::from(st.nlink), st.size, body));
        }
    }
    out.sort();
    out
}

const NAMES: [&str; 3] = ["a", "b", "c"];

fn path() -> impl Strategy<Value = P> {
    proptest::collection::vec(0usize..3, 1..4).prop_map(|v| v.into_iter().map(|i| NAMES[i]).collect())
}

fn op() -> impl Strategy<Value = Op> {
    ops::op(path, prop_oneof![Just(0o755u32), Just(0o700), Just(0o644), Just(0o1777), Just(0o4755), Just(0o2750)])
}

#[test]
fn agrees_with_the_kernels_tmpfs() {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("skipped: no /dev/shm");
        return;
    }
    // SAFETY: no arguments.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let cred = if uid == 0 { Cred::root() } else { Cred { uid, gid, groups: Vec::new(), privileged: false } };
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(0o022) };
    let base = shm.join(format!("viewos-memfs-kernel-{}", std::process::id()));
    let mut runner = TestRunner::new(Config { cases: 2000, ..Config::default() });
    let result = runner.run(&proptest::collection::vec(op(), 1..30), |ops| {
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir(&base).unwrap();
        let mut fs = MemFs::new(1, 1 << 30, 0o755, uid, gid, 1);
        for (n, op) in ops.iter().enumerate() {
            // Writing to a FIFO would wait for a reader: not a filesystem question.
            if let Op::Write(p, ..) = op
                && walk(&fs, &cred, p, true).ok().and_then(|i| fs.kind(i)) == Some(Kind::Fifo)
            {
                continue;
            }
            let k = apply_kernel(&base, op);
            let m = apply_memfs(&mut fs, &cred, op, 2 + n as u64);
            prop_assert_eq!(k, m, "step {} {:?}", n, op);
            let (kt, mt) = (kernel_tree(&base), memfs_tree(&fs));
            prop_assert_eq!(kt, mt, "tree after step {} {:?}", n, op);
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&base);
    result.unwrap();
}
