use std::collections::BTreeMap;

use viewos_abi::x86_64::nr;
use viewos_abi::{Errno, GuestAddr, Sysno, Syscall, SyscallArgs};
use viewos_path::{Fs, HostPath, Kind, MemFs, View};

use super::{Host, PathView};
use crate::dispatch::{Disposition, ExitFixup, Monitor, Nanos};
use crate::hostop::{HostOp, HostTarget, Listing};
use crate::mem::{FakeMem, GuestMem};
use crate::process::{FsState, Tid};

/// The host: an in-memory tree and a table of open fds.
struct TestHost {
    fs: MemFs,
    fds: BTreeMap<i32, HostPath>,
}

impl Fs for TestHost {
    fn lstat(&self, host: &HostPath) -> Result<Kind, Errno> {
        self.fs.lstat(host)
    }
    fn readlink(&self, host: &HostPath) -> Result<Vec<u8>, Errno> {
        self.fs.readlink(host)
    }
}

impl Host for TestHost {
    fn fd_path(&self, _tid: Tid, fd: i32) -> Result<HostPath, Errno> {
        self.fds.get(&fd).cloned().ok_or(Errno::EBADF)
    }
}

fn hp(s: &str) -> HostPath {
    HostPath::new(s.as_bytes().to_vec()).unwrap()
}

/// Host: /home/u/src (bound at /src), /home/u/.ssh (hidden as /home/u/.ssh), /etc/passwd,
/// /tmp/link -> /src/main.c (absolute, resolved in the view).
fn monitor() -> Monitor {
    let mut fs = MemFs::new();
    fs.dir("/home/u/src").file("/home/u/src/main.c").dir("/home/u/.ssh").file("/home/u/.ssh/id").file("/etc/passwd");
    fs.dir("/tmp").symlink("/tmp/link", "/src/main.c").dir("/src");
    let mut fds = BTreeMap::new();
    fds.insert(5, hp("/home/u/src"));
    fds.insert(6, hp("/home/u/.ssh"));
    let mut view = View::new(HostPath::root());
    view.bind(hp("/home/u/src"), viewos_path::GuestPath::new(b"/src".to_vec()).unwrap()).unwrap();
    view.hide(viewos_path::GuestPath::new(b"/home/u/.ssh".to_vec()).unwrap()).unwrap();
    let mut m = Monitor::new(vec![Box::new(PathView::new(view, Box::new(TestHost { fs, fds })))]);
    m.on_spawn(Tid(1), FsState { cwd: b"/tmp".to_vec(), ..FsState::default() });
    m
}

fn call(n: u32, a: [u64; 6]) -> Syscall {
    Syscall::from_raw(Sysno(n), SyscallArgs(a))
}

fn mem_with(paths: &[(u64, &str)]) -> FakeMem {
    let mut m = FakeMem::new();
    for (addr, p) in paths {
        m.map_cstr(*addr, p.as_bytes());
    }
    m
}

/// The rewritten path of argument `arg`, or the disposition if it is not a rewrite.
fn rewritten(d: &Disposition, arg: usize) -> Result<String, Disposition> {
    match d {
        Disposition::Rewrite { scratch, .. } => {
            let s = scratch.iter().find(|s| s.arg == arg).expect("rewritten argument");
            Ok(String::from_utf8(s.data[..s.data.len() - 1].to_vec()).unwrap())
        }
        other => Err(other.clone()),
    }
}

/// The host op of a performed call, or the disposition if it is not one.
fn performed(d: &Disposition) -> Result<HostOp, Disposition> {
    match d {
        Disposition::Perform { op, creds: None, .. } => Ok(op.clone()),
        other => Err(other.clone()),
    }
}

/// The host path of a performed call's (first) target.
fn target(d: &Disposition) -> Result<String, Disposition> {
    performed(d).map(|op| String::from_utf8(op.paths()[0].to_vec()).unwrap())
}

fn ht(p: &str, magic: bool) -> HostTarget {
    HostTarget { path: p.as_bytes().to_vec(), magic }
}

const CWD: u64 = (-100i64) as u64;

#[test]
fn binds_translate_and_dirfds_resolve_in_the_view() {
    let mut m = monitor();
    let mut mem = mem_with(&[(0x1000, "/src/main.c"), (0x2000, "main.c"), (0x3000, "../src/main.c")]);
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::OPENAT, [CWD, 0x1000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(target(&d), Ok("/home/u/src/main.c".into()));
    // Relative to dirfd 5 (the host dir behind /src): the monitor stats the host path.
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::NEWFSTATAT, [5, 0x2000, 0x9000, 0, 0, 0]), &mut mem);
    assert_eq!(performed(&d), Ok(HostOp::Stat { at: ht("/home/u/src/main.c", false), nofollow: false, out: 0x9000 }));
    // Relative to the cwd (/tmp), through `..`.
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::STAT, [0x3000, 0x9000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(target(&d), Ok("/home/u/src/main.c".into()));
    // Calls not performed by the monitor are rewritten to the host path at a ptrace stop.
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::INOTIFY_ADD_WATCH, [3, 0x2000, 2, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::ENOENT)));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::INOTIFY_ADD_WATCH, [3, 0x1000, 2, 0, 0, 0]), &mut mem);
    assert_eq!(rewritten(&d, 1), Ok("/home/u/src/main.c".into()));
}

#[test]
fn symlinks_resolve_inside_the_view_and_nofollow_keeps_the_link() {
    let mut m = monitor();
    let mut mem = mem_with(&[(0x1000, "/tmp/link")]);
    // Asked again after the lexical shortcut met the symlink: resolved in full.
    let d = m.on_syscall_redecide(Nanos(0), Tid(1), call(nr::STAT, [0x1000, 0x9000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(target(&d), Ok("/home/u/src/main.c".into()), "the absolute target is a guest path");
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::LSTAT, [0x1000, 0x9000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(performed(&d), Ok(HostOp::Stat { at: ht("/tmp/link", false), nofollow: true, out: 0x9000 }));
}

#[test]
fn hidden_paths_do_not_exist_by_any_route() {
    let mut m = monitor();
    let mut mem = mem_with(&[(0x1000, "/home/u/.ssh/id"), (0x2000, "/home/u/.ssh"), (0x3000, "id"), (0x4000, "/home/u/.ssh/new")]);
    for (n, a) in [
        (nr::OPENAT, [CWD, 0x1000, 0, 0, 0, 0]),
        (nr::STAT, [0x2000, 0x9000, 0, 0, 0, 0]),
        (nr::NEWFSTATAT, [6, 0x3000, 0x9000, 0, 0, 0]),
        (nr::OPENAT, [CWD, 0x4000, 0o100, 0o644, 0, 0]),
        (nr::MKDIR, [0x4000, 0o755, 0, 0, 0, 0]),
    ] {
        let d = m.on_syscall_enter(Nanos(0), Tid(1), call(n, a), &mut mem);
        assert_eq!(d, Disposition::Emulate(Err(Errno::ENOENT)), "{}", Sysno(n));
    }
}

#[test]
fn creating_calls_may_name_a_missing_final_component() {
    let mut m = monitor();
    let mut mem = mem_with(&[(0x1000, "/src/new.c"), (0x2000, "/src/newdir/"), (0x3000, "/src/missing/x")]);
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::OPENAT, [CWD, 0x1000, 0o101, 0o644, 0, 0]), &mut mem);
    assert_eq!(performed(&d), Ok(HostOp::Open { at: ht("/home/u/src/new.c", false), flags: 0o101, mode: 0o644, resolve: 4, umask: 0o022 }));
    let d = m.on_syscall_redecide(Nanos(0), Tid(1), call(nr::OPENAT, [CWD, 0x1000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::ENOENT)), "no O_CREAT: must exist");
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::MKDIR, [0x2000, 0o755, 0, 0, 0, 0]), &mut mem);
    assert_eq!(target(&d), Ok("/home/u/src/newdir/".into()), "the trailing slash is kept");
    let d = m.on_syscall_redecide(Nanos(0), Tid(1), call(nr::MKDIR, [0x3000, 0o755, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::ENOENT)), "a missing middle component");
}

#[test]
fn rename_translates_both_paths_and_never_crosses_a_mount() {
    let mut m = monitor();
    let mut mem = mem_with(&[(0x1000, "/src/main.c"), (0x2000, "/tmp/moved.c"), (0x3000, "/src/moved.c"), (0x4000, "/src")]);
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::RENAMEAT2, [CWD, 0x1000, CWD, 0x3000, 1, 0]), &mut mem);
    assert_eq!(
        performed(&d),
        Ok(HostOp::Rename { from: ht("/home/u/src/main.c", false), to: ht("/home/u/src/moved.c", false), flags: 1 })
    );
    // Out of the bind: EXDEV, as across a real bind mount (the host would have moved it).
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::RENAMEAT2, [CWD, 0x1000, CWD, 0x2000, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::EXDEV)));
    // The bind's mount point itself cannot be removed or renamed (the host's source would be).
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::RMDIR, [0x4000, 0, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::EBUSY)));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::RENAME, [0x4000, 0x2000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::EBUSY)));
    // Flags the kernel refuses are refused before any lookup.
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::RENAMEAT2, [CWD, 0x9999, CWD, 0x9999, 3, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::EINVAL)));
}

#[test]
fn empty_paths_with_at_empty_path_operate_on_the_dirfd() {
    let mut m = monitor();
    let mut mem = mem_with(&[(0x1000, "")]);
    // fstat as glibc makes it: the monitor stats the guest's fd through /proc (the path in
    // guest memory is never handed to the kernel, so no other thread can change it).
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::NEWFSTATAT, [5, 0x1000, 0x9000, 0x1000, 0, 0]), &mut mem);
    assert_eq!(performed(&d), Ok(HostOp::Stat { at: ht("/proc/1/fd/5", true), nofollow: false, out: 0x9000 }));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::STATX, [CWD, 0x1000, 0x1100, 0x7ff, 0x9000, 0]), &mut mem);
    assert_eq!(
        performed(&d),
        Ok(HostOp::Statx { at: ht("/proc/1/cwd", true), nofollow: false, flags: 0, mask: 0x7ff, out: 0x9000 }),
        "AT_SYMLINK_NOFOLLOW means nothing for the dirfd's own file"
    );
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::NEWFSTATAT, [5, 0x1000, 0x9000, 0x8000, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::EINVAL)), "unknown flag");
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::NEWFSTATAT, [5, 0x1000, 0x9000, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::ENOENT)));
}

#[test]
fn bad_pointers_and_long_paths_are_guest_errors() {
    let mut m = monitor();
    let mut mem = FakeMem::new();
    mem.map(0x1000, vec![b'a'; 8192]);
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::OPENAT, [CWD, 0xdead_0000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::EFAULT)));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::OPENAT, [CWD, 0x1000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::ENAMETOOLONG)));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::OPENAT, [7, 0x1000 + 8000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::EFAULT)), "unterminated at the end of the mapping");
}

#[test]
fn openat2_scoping_is_done_in_the_view_and_cleared_for_the_host() {
    let mut m = monitor();
    let mut mem = mem_with(&[(0x1000, "main.c"), (0x2000, "../etc/passwd")]);
    let how = |flags: u64, resolve: u64| [flags.to_le_bytes(), 0u64.to_le_bytes(), resolve.to_le_bytes()].concat();
    mem.map(0x5000, how(0, 0x08)); // RESOLVE_BENEATH
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::OPENAT2, [5, 0x1000, 0x5000, 24, 0, 0]), &mut mem);
    // The scoping is cleared and RESOLVE_NO_SYMLINKS (4) set, so a symlink swapped in after
    // the lookup is not followed.
    assert_eq!(performed(&d), Ok(HostOp::Open { at: ht("/home/u/src/main.c", false), flags: 0, mode: 0, resolve: 4, umask: 0 }));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::OPENAT2, [5, 0x2000, 0x5000, 24, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::EXDEV)), "`..` above the dirfd under BENEATH");
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::OPENAT2, [5, 0x1000, 0x5000, 8, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::EINVAL)), "open_how too small");
    // A larger open_how is read as the 24 bytes viewos knows.
    mem.map(0x6000, [how(0, 0), vec![0; 8]].concat());
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::OPENAT2, [5, 0x1000, 0x6000, 32, 0, 0]), &mut mem);
    assert_eq!(target(&d), Ok("/home/u/src/main.c".into()));
}

#[test]
fn getcwd_and_chdir_keep_the_guest_cwd() {
    let mut m = monitor();
    let mut mem = mem_with(&[(0x1000, "/src")]);
    mem.map(0x8000, vec![0; 64]);
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::CHDIR, [0x1000, 0, 0, 0, 0, 0]), &mut mem);
    assert_eq!(rewritten(&d, 0), Ok("/home/u/src".into()));
    assert_eq!(m.on_syscall_exit(Nanos(1), Tid(1), 0, &mut mem), ExitFixup::Keep);
    let d = m.on_syscall_enter(Nanos(2), Tid(1), call(nr::GETCWD, [0x8000, 64, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Ok(5)));
    let mut buf = [0u8; 5];
    mem.read(GuestAddr(0x8000), &mut buf).unwrap();
    assert_eq!(&buf, b"/src\0", "the guest path, not /home/u/src");
    let d = m.on_syscall_enter(Nanos(3), Tid(1), call(nr::GETCWD, [0x8000, 4, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::ERANGE)));
    // fchdir into a hidden directory's fd is refused; a failed chdir changes nothing.
    let d = m.on_syscall_enter(Nanos(4), Tid(1), call(nr::FCHDIR, [6, 0, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::ENOENT)));
    let _ = m.on_syscall_enter(Nanos(5), Tid(1), call(nr::CHDIR, [0x1000, 0, 0, 0, 0, 0]), &mut mem);
    let _ = m.on_syscall_exit(Nanos(6), Tid(1), Errno::EACCES.as_ret(), &mut mem);
    assert_eq!(m.processes().fs(Tid(1)).unwrap().cwd, b"/src");
}

/// A `linux_dirent64` record for `name`, padded to 8 bytes.
fn dirent64(ino: u64, name: &str) -> Vec<u8> {
    let reclen = (19 + name.len() + 1).next_multiple_of(8);
    let mut r = Vec::with_capacity(reclen);
    r.extend_from_slice(&ino.to_le_bytes());
    r.extend_from_slice(&(ino * 10).to_le_bytes());
    r.extend_from_slice(&(reclen as u16).to_le_bytes());
    r.push(4); // DT_DIR
    r.extend_from_slice(name.as_bytes());
    r.resize(reclen, 0);
    r
}

#[test]
fn listings_lose_hidden_names() {
    let l = Listing { hidden: vec![b".ssh".to_vec()], extra: Vec::new(), retype: Vec::new() };
    let batch = [dirent64(1, "."), dirent64(2, ".ssh"), dirent64(3, "src")].concat();
    assert_eq!(l.apply(&batch, true, 4096, false), Some([dirent64(1, "."), dirent64(3, "src")].concat()));
    assert_eq!(l.apply(&dirent64(2, ".ssh"), false, 4096, false), Some(Vec::new()), "an emptied batch: the adapter reads the next");
    assert_eq!(l.apply(&dirent64(3, "src"), false, 4096, false), Some(dirent64(3, "src")));
    assert_eq!(l.apply(&[], false, 4096, false), Some(Vec::new()));
    assert_eq!(l.apply(&[0xff; 40], false, 4096, false), None, "garbage is left as the kernel wrote it");
}

#[test]
fn a_listing_is_made_by_the_monitor_only_where_the_view_changes_it() {
    let mut m = monitor();
    let mut mem = FakeMem::new();
    // fd 6 is the hidden .ssh itself (ENOENT: the kernel answers); 5 is /src, nothing to change.
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::GETDENTS64, [5, 0x1000, 4096, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::PASS);
}

#[test]
fn only_views_with_hidden_paths_trap_listings() {
    let m = monitor();
    assert!(m.interest().contains_key(&Sysno(nr::GETDENTS64)));
    let plain = Monitor::new(vec![Box::new(PathView::new(
        View::new(HostPath::root()),
        Box::new(TestHost { fs: MemFs::new(), fds: BTreeMap::new() }),
    ))]);
    assert!(!plain.interest().contains_key(&Sysno(nr::GETDENTS64)));
}

#[test]
fn what_the_view_cannot_virtualize_is_refused_in_the_filter() {
    let i = monitor().interest();
    assert_eq!(i[&Sysno(nr::IO_URING_SETUP)], crate::dispatch::Need::Refuse(Errno::ENOSYS));
    for n in [nr::OPEN_BY_HANDLE_AT, nr::MOUNT, nr::UMOUNT2, nr::PIVOT_ROOT, nr::OPEN_TREE, nr::MOVE_MOUNT] {
        assert_eq!(i[&Sysno(n)], crate::dispatch::Need::Refuse(Errno::EPERM), "{}", Sysno(n));
    }
    assert_eq!(i[&Sysno(nr::NAME_TO_HANDLE_AT)], crate::dispatch::Need::Control, "a lookup: rewritten");
}

#[test]
fn opens_are_made_by_the_monitor_refusing_symlinks_on_the_host_path() {
    let mut m = monitor();
    let mut mem = mem_with(&[(0x1000, "/src/main.c")]);
    // open("/src/main.c", O_RDONLY | garbage bit, mode garbage): openat2 would refuse both.
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::OPEN, [0x1000, 0x8000_0000, 0o777, 0, 0, 0]), &mut mem);
    let op = performed(&d).unwrap();
    assert_eq!(op, HostOp::Open { at: ht("/home/u/src/main.c", false), flags: 0, mode: 0, resolve: 4, umask: 0 });
    // An adapter without fd installation makes the guest run it as openat2 instead.
    match op.as_rewrite() {
        Some(Disposition::Rewrite { nr: Some(n), args, .. }) => {
            assert_eq!(n, Sysno(nr::OPENAT2));
            assert_eq!((args.get(0) as i64, args.get(3)), (-100, 24));
        }
        other => panic!("{other:?}"),
    }
    // creat keeps its mode, and the umask the guest set applies.
    let _ = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::UMASK, [0o1077, 0, 0, 0, 0, 0]), &mut mem);
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::CREAT, [0x1000, 0o640, 0, 0, 0, 0]), &mut mem);
    assert_eq!(performed(&d), Ok(HostOp::Open { at: ht("/home/u/src/main.c", false), flags: 0o1101, mode: 0o640, resolve: 4, umask: 0o077 }));
}

#[test]
fn a_thread_that_changed_its_credentials_is_acted_for_with_its_own() {
    let mut m = monitor();
    let mut mem = mem_with(&[(0x1000, "/src/main.c")]);
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::SETRESUID, [65534, 65534, 65534, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::PASS);
    assert!(m.on_clone(Tid(1), Tid(2), crate::process::CloneFlags(0)));
    for tid in [Tid(1), Tid(2)] {
        let d = m.on_syscall_enter(Nanos(0), tid, call(nr::STAT, [0x1000, 0x9000, 0, 0, 0, 0]), &mut mem);
        assert!(matches!(d, Disposition::Perform { creds: Some(t), .. } if t == tid), "{d:?}");
    }
}

#[test]
fn a_virtual_chroot_changes_what_later_lookups_see() {
    let mut m = monitor();
    let mut mem = mem_with(&[(0x1000, "/src"), (0x2000, "/main.c"), (0x3000, "/../../etc/passwd"), (0x4000, "main.c")]);
    mem.map(0x8000, vec![0; 64]);
    // The test host refuses chroot (no CAP_SYS_CHROOT): EPERM, nothing changes.
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::CHROOT, [0x1000, 0, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::EPERM)));
    assert_eq!(m.processes().fs(Tid(1)).unwrap().root, b"/");
    // As if it had been allowed: the process's root is /src.
    m.processes_mut().fs_mut(Tid(1)).unwrap().root = b"/src".to_vec();
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::STAT, [0x2000, 0x9000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(target(&d), Ok("/home/u/src/main.c".into()));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::STAT, [0x3000, 0x9000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::ENOENT)), "`..` stops at the new root");
    // The cwd (/tmp) is outside the new root: it counts as the root.
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::GETCWD, [0x8000, 64, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Ok(2)));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::STAT, [0x4000, 0x9000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(target(&d), Ok("/home/u/src/main.c".into()));
    // chdir inside it is recorded in the view's namespace.
    let mut mem2 = mem_with(&[(0x1000, "/")]);
    let _ = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::CHDIR, [0x1000, 0, 0, 0, 0, 0]), &mut mem2);
    let _ = m.on_syscall_exit(Nanos(0), Tid(1), 0, &mut mem2);
    assert_eq!(m.processes().fs(Tid(1)).unwrap().cwd, b"/src");
}

#[test]
fn times_links_and_nodes_are_made_by_the_monitor() {
    let mut m = monitor();
    let mut mem = mem_with(&[(0x1000, "/src/main.c"), (0x2000, "/src/hard"), (0x3000, "/tmp/hard"), (0x4000, "target")]);
    mem.map(0x5000, [5i64, 999_999, 7, 0].iter().flat_map(|v| v.to_le_bytes()).collect());
    mem.map(0x6000, [5i64, 1_000_000, 7, 0].iter().flat_map(|v| v.to_le_bytes()).collect());
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::UTIMES, [0x1000, 0x5000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(performed(&d), Ok(HostOp::Utimens { at: ht("/home/u/src/main.c", false), times: Some([5, 999_999_000, 7, 0]), nofollow: false }));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::UTIMES, [0x1000, 0x6000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::EINVAL)), "a microsecond count out of range");
    // utimensat(fd, NULL, ...) sets the times of the fd's file.
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::UTIMENSAT, [5, 0, 0, 0, 0, 0]), &mut mem);
    assert_eq!(performed(&d), Ok(HostOp::Utimens { at: ht("/proc/1/fd/5", true), times: None, nofollow: false }));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::UTIMENSAT, [CWD, 0, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::EFAULT)));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::LINK, [0x1000, 0x2000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(performed(&d), Ok(HostOp::Link { from: ht("/home/u/src/main.c", false), to: ht("/home/u/src/hard", false) }));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::LINK, [0x1000, 0x3000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::EXDEV)), "out of the bind");
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::SYMLINK, [0x4000, 0x2000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(performed(&d), Ok(HostOp::Symlink { target: b"target".to_vec(), at: ht("/home/u/src/hard", false) }));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::MKNOD, [0x2000, 0o10644, 0, 0, 0, 0]), &mut mem);
    assert_eq!(performed(&d), Ok(HostOp::Mknod { at: ht("/home/u/src/hard", false), mode: 0o10644, dev: 0, umask: 0o022 }));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::LCHOWN, [0x1000, 1, u32::MAX as u64, 0, 0, 0]), &mut mem);
    assert_eq!(performed(&d), Ok(HostOp::Chown { at: ht("/home/u/src/main.c", false), uid: 1, gid: u32::MAX, nofollow: true }));
}

#[test]
fn mount_points_missing_below_are_added_to_the_first_batch() {
    use crate::hostop::dirent;
    for legacy in [false, true] {
        let batch = [dirent(1, 10, b".", 4, legacy), dirent(2, 20, b"bin", 4, legacy)].concat();
        let l = Listing { hidden: Vec::new(), extra: vec![(b"proc".to_vec(), 4), (b"bin".to_vec(), 4)], retype: Vec::new() };
        let now = l.apply(&batch, true, 4096, legacy).unwrap();
        let added = &now[batch.len()..];
        assert_eq!(&now[..batch.len()], &batch[..], "the kernel's records stay");
        let name_at = if legacy { 18 } else { 19 };
        assert_eq!(&added[name_at..name_at + 5], b"proc\0", "only the missing one is added (bin is there)");
        assert_eq!(u64::from_le_bytes(added[8..16].try_into().unwrap()), 20, "its d_off continues after the batch");
        assert_ne!(u64::from_le_bytes(added[..8].try_into().unwrap()), 0, "readdir skips d_ino 0");
        let t = if legacy { added[added.len() - 1] } else { added[18] };
        assert_eq!(t, 4, "DT_DIR");
        assert_eq!(l.apply(&batch, true, batch.len() as u64, legacy), Some(batch.clone()), "no room: nothing added");
        assert_eq!(l.apply(&batch, false, 4096, legacy), Some(batch.clone()), "only the first batch");
    }
}
#[test]
fn plain_paths_take_the_lexical_shortcut_and_the_rest_the_full_lookup() {
    let mut m = monitor();
    let mut mem = mem_with(&[(0x1000, "/src/./main.c"), (0x2000, "/src/../src/main.c"), (0x3000, "/tmp/link"), (0x4000, "/home/u/.ssh/id"), (0x5000, "../src/main.c")]);
    let lexical = |d: &Disposition| matches!(d, Disposition::Perform { lexical: true, .. });
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::STAT, [0x1000, 0x9000, 0, 0, 0, 0]), &mut mem);
    assert!(lexical(&d) && target(&d) == Ok("/home/u/src/main.c".into()), "{d:?}");
    // `..` needs the host (a symlink before it changes where it leads).
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::STAT, [0x2000, 0x9000, 0, 0, 0, 0]), &mut mem);
    assert!(!lexical(&d) && target(&d) == Ok("/home/u/src/main.c".into()), "{d:?}");
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::STAT, [0x5000, 0x9000, 0, 0, 0, 0]), &mut mem);
    assert!(!lexical(&d), "{d:?}");
    // A symlink is taken as a plain name: the host call will refuse it (ELOOP) and the
    // adapter asks again.
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::STAT, [0x3000, 0x9000, 0, 0, 0, 0]), &mut mem);
    assert!(lexical(&d) && target(&d) == Ok("/tmp/link".into()), "{d:?}");
    // Hidden paths are decided by the view alone.
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::STAT, [0x4000, 0x9000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::ENOENT)));
    // Calls rewritten at a ptrace stop never take it.
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::INOTIFY_ADD_WATCH, [3, 0x3000, 2, 0, 0, 0]), &mut mem);
    assert_eq!(rewritten(&d, 1), Ok("/home/u/src/main.c".into()));
}

mod garbage {
    //! Guest input never panics the monitor: any path call with any arguments, over memory
    //! holding random strings (paths with `..`, symlinks, magic links, hidden names), gets a
    //! decision; a listing of random bytes is edited or left alone, never a crash.
    use proptest::prelude::*;
    use viewos_abi::x86_64::paths::path_syscalls;

    use super::*;

    fn words() -> impl Strategy<Value = String> {
        let part = prop_oneof![
            Just("src".to_string()),
            Just("..".to_string()),
            Just(".".to_string()),
            Just("".to_string()),
            Just("main.c".to_string()),
            Just("link".to_string()),
            Just("tmp".to_string()),
            Just("home".to_string()),
            Just("u".to_string()),
            Just(".ssh".to_string()),
            Just("proc".to_string()),
            Just("self".to_string()),
            Just("fd".to_string()),
            Just("1".to_string()),
            "[a-z]{1,8}",
        ];
        (any::<bool>(), proptest::collection::vec(part, 0..8), any::<bool>())
            .prop_map(|(abs, parts, slash)| format!("{}{}{}", if abs { "/" } else { "" }, parts.join("/"), if slash { "/" } else { "" }))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_path_call_gets_a_decision(
            which in 0usize..200,
            args in proptest::array::uniform6(prop_oneof![
                Just(0x1000u64), Just(0x2000u64), Just(0x5000u64), Just(CWD), Just(5u64), Just(6u64), Just(0u64),
                any::<u64>(), Just(0x100u64), Just(0x1000u64 | 0x100), Just(0o100u64), Just(0o10000000u64),
            ]),
            p1 in words(),
            p2 in words(),
            blob in proptest::collection::vec(any::<u8>(), 0..64),
            exit in any::<i64>(),
            chrooted in any::<bool>(),
        ) {
            let mut m = monitor();
            if chrooted {
                m.processes_mut().fs_mut(Tid(1)).unwrap().root = b"/src".to_vec();
            }
            let mut mem = mem_with(&[(0x1000, p1.as_str()), (0x2000, p2.as_str())]);
            mem.map(0x5000, blob);
            let calls: Vec<u32> = path_syscalls()
                .chain([nr::GETCWD, nr::CHROOT, nr::GETDENTS64, nr::GETDENTS, nr::ACCEPT, nr::RECVFROM, nr::GETSOCKNAME, nr::SENDMSG, nr::UMASK, nr::SETUID])
                .collect();
            let n = calls[which % calls.len()];
            let c = call(n, args);
            let d = m.on_syscall_enter(Nanos(0), Tid(1), c, &mut mem);
            if let Disposition::Perform { lexical: true, .. } = d {
                let _ = m.on_syscall_redecide(Nanos(0), Tid(1), c, &mut mem);
            }
            let _ = m.on_syscall_exit(Nanos(1), Tid(1), exit, &mut mem);
        }

        #[test]
        fn any_listing_bytes_are_safe(data in proptest::collection::vec(any::<u8>(), 0..300), first in any::<bool>(), legacy in any::<bool>(), cap in 0u64..400) {
            let l = Listing { hidden: vec![b".ssh".to_vec(), b"a".to_vec()], extra: vec![(b"proc".to_vec(), 4)], retype: Vec::new() };
            if let Some(out) = l.apply(&data, first, cap, legacy) {
                prop_assert!(out.len() as u64 <= cap.max(data.len() as u64));
            }
        }
    }
}

/// In a view with a copy-on-write mount, `fchmod`, `fchown`, `fsetxattr` and `fremovexattr`
/// are trapped and made by the monitor on the guest's fd (the adapter copies a lower file
/// up first); in other views they are not trapped at all.
#[test]
fn fd_changes_are_made_by_the_monitor_in_a_cow_view() {
    let plain = monitor();
    for n in [nr::FCHMOD, nr::FCHOWN, nr::FSETXATTR, nr::FREMOVEXATTR] {
        assert!(!plain.interest().contains_key(&Sysno(n)));
    }
    let mut view = View::new(HostPath::root());
    view.bind(HostPath::new(crate::hostop::cow_mount_path(0)).unwrap(), viewos_path::GuestPath::new(b"/src".to_vec()).unwrap()).unwrap();
    let mut m = Monitor::new(vec![Box::new(PathView::new(view, Box::new(TestHost { fs: MemFs::new(), fds: BTreeMap::new() })))]);
    m.on_spawn(Tid(1), FsState { cwd: b"/".to_vec(), ..FsState::default() });
    for n in [nr::FCHMOD, nr::FCHOWN, nr::FSETXATTR, nr::FREMOVEXATTR] {
        assert_eq!(m.interest().get(&Sysno(n)), Some(&crate::dispatch::Need::Decide));
    }
    let mut mem = mem_with(&[(0x100, "user.k"), (0x200, "v")]);
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::FCHMOD, [4, 0o104755, 0, 0, 0, 0]), &mut mem);
    assert_eq!(performed(&d), Ok(HostOp::Chmod { at: ht("/proc/1/fd/4", true), mode: 0o4755, nofollow: false }));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::FCHOWN, [4, 7, 8, 0, 0, 0]), &mut mem);
    assert_eq!(performed(&d), Ok(HostOp::Chown { at: ht("/proc/1/fd/4", true), uid: 7, gid: 8, nofollow: false }));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::FSETXATTR, [4, 0x100, 0x200, 1, 0, 0]), &mut mem);
    assert_eq!(performed(&d), Ok(HostOp::Xattr { at: ht("/proc/1/fd/4", true), nofollow: false, call: crate::hostop::XattrCall::Set { name: b"user.k".to_vec(), value: b"v".to_vec(), flags: 0 } }));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::FREMOVEXATTR, [4, 0x100, 0, 0, 0, 0]), &mut mem);
    assert_eq!(performed(&d), Ok(HostOp::Xattr { at: ht("/proc/1/fd/4", true), nofollow: false, call: crate::hostop::XattrCall::Remove { name: b"user.k".to_vec() } }));
    let d = m.on_syscall_enter(Nanos(0), Tid(1), call(nr::FCHMOD, [u64::MAX, 0o644, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::EBADF)));
}
