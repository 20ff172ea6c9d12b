//! Copy-on-write views (`--cow DIR[:STORE]`): DIR shows at its own path, writable, while
//! the real DIR (the lower layer) is only ever read; changes go to the store's upper layer.
//!
//! The path view binds DIR to the "host" path `/proc/viewos-vfs/cowN` (see
//! [`VIRTUAL_ROOT`]), so every path op on it reaches the adapter, which rewrites it here
//! before making it ([`rewrite`]):
//! - a read (stat family, access, readlink, statfs, xattr reads, a read-only open, exec)
//!   goes to the real file of the layer that shows the path, found from the in-memory index
//!   of the upper layer alone ([`viewos_cow::Upper::locate`]): no host call but the
//!   guest's own. The guest's fd is the real lower or upper file, so reads, `mmap`, locks
//!   and so on are never stopped;
//! - a change is planned by the pure state machine ([`viewos_cow::plan`]) against the
//!   index and the real lower tree; the monitor carries out the steps on the store (copy-up
//!   of data with `copy_file_range` into an unnamed file linked in only when complete,
//!   directories with their metadata, whiteouts, opaque marks), then the guest's own call
//!   is made on the upper file with the guest's credentials;
//! - listings of a cow directory are merged by the monitor (upper names first, then the
//!   lower names not whited out), snapshotted at the first read as overlayfs does, with the
//!   cursor in the guest's open directory's own position.
//!
//! Store layout (ARCHITECTURE.md, "Copy-on-write views"): `STORE/viewos-cow` (format and
//! lower directory), `STORE/upper/` (the upper tree, aufs-style `.wh.NAME` whiteouts,
//! `.wh..wh..opq` opaque markers and `.wh..wh.mc.NAME` metadata-only markers),
//! `STORE/work/` (the monitor's scratch).

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use viewos_core::hostop::VIRTUAL_ROOT;
use viewos_core::{Errno, GuestAddr, GuestMem, HostOp, HostTarget, XattrCall};
use viewos_cow::{Action, Change, Commit, Kind, Layer, Layers, Node, RelPath, Status, Upper, child, parent, store};

use crate::sys::{self, errno};

static ACTIVE: AtomicBool = AtomicBool::new(false);
static COWS: Mutex<Vec<Cow>> = Mutex::new(Vec::new());
/// Files copied up and not yet told to the monitor: `(st_dev, st_ino)` of the lower file
/// and of its copy (see [`take_copied`]).
static COPIED: Mutex<Vec<(FileId, FileId)>> = Mutex::new(Vec::new());

/// A host file's identity: `st_dev`, `st_ino`.
type FileId = (u64, u64);
/// A directory entry as a listing gives it: name, inode number, `d_type`.
type DirEntry = (Vec<u8>, u64, u8);

/// The copy-ups made since the last call, for `Monitor::on_copied` (fakeroot's ownership
/// of a file moves to its copy).
pub fn take_copied() -> Vec<(FileId, FileId)> {
    if !active() {
        return Vec::new();
    }
    std::mem::take(&mut *COPIED.lock().expect("cow lock"))
}

/// The name of the store's description file, and its first line.
const META: &str = "viewos-cow";
const FORMAT: &str = "viewos-cow 1";

/// One cow mount.
struct Cow {
    /// The real DIR and STORE/upper (canonical), and `O_PATH` fds of them.
    lower: Vec<u8>,
    upper: Vec<u8>,
    lower_fd: OwnedFd,
    upper_fd: OwnedFd,
    index: Upper,
    snaps: Snapshots,
    /// Whether a metadata-only copy was ever made or loaded (an `fstat` of a guest's fd
    /// may then need the copy's metadata).
    any_metacopy: bool,
    /// The lower entries looked at for the change being planned (cleared for each op).
    lower_seen: std::cell::RefCell<std::collections::HashMap<RelPath, Result<Kind, Errno>>>,
}

pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The host path of mount `m`'s root.
fn mount_path(m: usize) -> Vec<u8> {
    viewos_core::hostop::cow_mount_path(m)
}

/// A path of a cow mount, split: the mount, its components, and whether it ended with `/`.
fn split(path: &[u8]) -> Option<(usize, RelPath, bool)> {
    let rest = path.strip_prefix(VIRTUAL_ROOT)?.strip_prefix(b"/cow")?;
    let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    let m = std::str::from_utf8(&rest[..end]).ok()?.parse().ok()?;
    let comps = rest[end..].split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").map(<[u8]>::to_vec).collect();
    Some((m, comps, path.len() > 1 && path.ends_with(b"/")))
}

/// Whether `path` is a path of a cow mount.
pub fn owns(path: &[u8]) -> bool {
    split(path).is_some()
}

/// `a/b/c` (`.` for the root), relative to a layer's root fd.
fn rel(p: &[Vec<u8>]) -> Vec<u8> {
    if p.is_empty() {
        return b".".to_vec();
    }
    p.join(&b'/')
}

/// Opens `p` below `root` without following any symlink (a final one with `O_NOFOLLOW`
/// and `O_PATH` is opened itself).
fn beneath(root: &OwnedFd, p: &[Vec<u8>], flags: i32) -> Result<OwnedFd, Errno> {
    const RESOLVE: u64 = 0x02 | 0x04 | 0x08; // NO_MAGICLINKS | NO_SYMLINKS | BENEATH
    sys::openat2(root.as_raw_fd(), &rel(p), (flags | libc::O_CLOEXEC) as u64, 0, RESOLVE).map_err(errno)
}

fn kind_of(st: &[u8; 144]) -> Kind {
    match sys::stat_type(st) {
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Symlink,
        _ => Kind::File,
    }
}

fn field(st: &[u8; 144], at: usize) -> u32 {
    u32::from_le_bytes(st[at..at + 4].try_into().expect("in a stat"))
}

fn word(st: &[u8; 144], at: usize) -> i64 {
    i64::from_le_bytes(st[at..at + 8].try_into().expect("in a stat"))
}

/// Every name in the open directory `fd` with its inode number and `d_type` (`.` and `..`
/// included).
fn read_dir(fd: &OwnedFd) -> Result<Vec<DirEntry>, Errno> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = sys::getdents(fd.as_raw_fd(), &mut buf, false).map_err(errno)?;
        if n == 0 {
            return Ok(out);
        }
        let mut at = 0;
        while at + 19 <= n {
            let ino = u64::from_le_bytes(buf[at..at + 8].try_into().expect("8 bytes"));
            let reclen = usize::from(u16::from_le_bytes([buf[at + 16], buf[at + 17]]));
            if reclen < 19 || at + reclen > n {
                return Err(Errno::EIO);
            }
            let name = &buf[at + 19..at + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            out.push((name.to_vec(), ino, buf[at + 18]));
            at += reclen;
        }
    }
}

/// The host path of `p` below layer root `root` (with a trailing `/` if `slash`).
fn under(root: &[u8], p: &[Vec<u8>], slash: bool) -> Vec<u8> {
    let mut r = root.to_vec();
    for c in p {
        r.push(b'/');
        r.extend_from_slice(c);
    }
    if slash {
        r.push(b'/');
    }
    r
}

fn dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

impl Cow {
    fn lower_stat(&self, p: &[Vec<u8>]) -> Option<[u8; 144]> {
        let fd = beneath(&self.lower_fd, p, libc::O_PATH | libc::O_NOFOLLOW).ok()?;
        sys::fstat_bytes(fd.as_raw_fd()).ok()
    }

    /// The real path of the file that shows `p` (`ENOENT` if none can).
    fn real(&self, p: &[Vec<u8>], slash: bool) -> Result<Vec<u8>, Errno> {
        match self.index.locate(p) {
            Layer::Upper => Ok(under(&self.upper, p, slash)),
            Layer::Lower => Ok(under(&self.lower, p, slash)),
            Layer::Gone => Err(Errno::ENOENT),
        }
    }

    /// The upper file's path (for an op to make on it after the plan).
    fn upper_path(&self, p: &[Vec<u8>], slash: bool) -> Vec<u8> {
        under(&self.upper, p, slash)
    }

    /// The kind of the merged entry at `p`, checking that no directory on the way is a
    /// symlink: a path translated without a lookup may hold one (`ELOOP`: the caller
    /// looks the path up in full), and a change planned through one would be wrong.
    fn merged(&self, p: &[Vec<u8>]) -> Result<Option<Kind>, Errno> {
        match self.index.locate(p) {
            Layer::Gone => Ok(None),
            Layer::Upper => match self.index.node(p) {
                Node::Present(k) => Ok(Some(k)),
                // Below an upper non-directory.
                _ => {
                    for d in 1..p.len() {
                        match self.index.node(&p[..d]) {
                            Node::Present(Kind::Symlink) => return Err(Errno::ELOOP),
                            Node::Present(Kind::File) => return Err(Errno::ENOTDIR),
                            _ => {}
                        }
                    }
                    Ok(None)
                }
            },
            // The rest of the way is the lower tree's: one walk of it by the kernel, which
            // refuses a symlink on the way (ELOOP) and a non-directory (ENOTDIR).
            Layer::Lower => match self.lower_kind(p) {
                Ok(k) => Ok(Some(k)),
                Err(Errno::ENOENT) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// The kind of the lower entry at `p`, asked of the host once per change (the lower
    /// tree is not ours to change, and one change's plan asks about the same paths often).
    fn lower_kind(&self, p: &[Vec<u8>]) -> Result<Kind, Errno> {
        if p.is_empty() {
            return Ok(Kind::Dir);
        }
        if let Some(r) = self.lower_seen.borrow().get(p) {
            return *r;
        }
        let r = beneath(&self.lower_fd, p, libc::O_PATH | libc::O_NOFOLLOW).and_then(|fd| sys::fstat_bytes(fd.as_raw_fd()).map_err(errno)).map(|st| kind_of(&st));
        self.lower_seen.borrow_mut().insert(p.to_vec(), r);
        r
    }

    /// The merged parent of `p` is a directory reached without a symlink.
    fn parent_ok(&self, p: &[Vec<u8>]) -> Result<(), Errno> {
        let dir = parent(p).ok_or(Errno::EBUSY)?;
        match self.merged(&dir)? {
            Some(Kind::Dir) => Ok(()),
            Some(Kind::Symlink) => Err(Errno::ELOOP),
            Some(Kind::File) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    /// Plans `change` and carries out its steps up to (not including) the first that is
    /// the guest's own creation; the rest are returned, to follow the guest's call.
    fn prepare(&mut self, change: &Change) -> Result<Vec<Action>, Errno> {
        let actions = viewos_cow::plan(self, change)?;
        let cut = actions.iter().position(|a| matches!(a, Action::Create { .. })).unwrap_or(actions.len());
        for a in &actions[..cut] {
            self.execute(a)?;
        }
        Ok(actions[cut..].to_vec())
    }

    /// One step on the store, then on the index.
    fn execute(&mut self, a: &Action) -> Result<(), Errno> {
        match a {
            Action::MkdirUp(p) => {
                let (dir, name) = self.upper_parent(p)?;
                let st = self.lower_stat(p);
                // A copy-up changes nothing the guest sees in the parent: its times stay.
                keeping_times(&dir, || match sys::mkdirat(dir.as_raw_fd(), name, 0o700) {
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
                    r => r.map_err(errno),
                })?;
                if let Some(st) = st {
                    let made = beneath(&self.upper_fd, p, libc::O_PATH | libc::O_DIRECTORY)?;
                    let src = beneath(&self.lower_fd, p, libc::O_PATH | libc::O_NOFOLLOW).ok();
                    copy_meta(src.as_ref(), &made, &st);
                }
            }
            Action::CopyUp { path, data } => {
                let (dir, _) = self.upper_parent(path)?;
                // What the store now holds there: a complete copy (the data filled in, or
                // copied with it), or a metadata-only copy of a regular file.
                let (kind, meta_only) = keeping_times(&dir, || {
                    if self.index.metacopy(path) {
                        // Only a data copy-up follows one: its data is filled in.
                        self.fill(path).map(|()| (Kind::File, false))
                    } else if !data && self.lower_stat(path).is_some_and(|st| sys::stat_type(&st) == libc::S_IFREG) {
                        self.metacopy(path).map(|()| (Kind::File, true))
                    } else {
                        self.copy_up(path).map(|k| (k, false))
                    }
                })?;
                if meta_only {
                    self.index.set_metacopy(path);
                } else {
                    self.index.set(path, kind);
                }
            }
            Action::Create { .. } => return Err(Errno::EINVAL),
            Action::RemoveUp(p) => {
                let (dir, name) = self.upper_parent(p)?;
                remove_tree(&dir, name)?;
                // A whiteout or metadata-only marker there goes too.
                let _ = sys::unlinkat(dir.as_raw_fd(), &store::whiteout(name), 0);
                let _ = sys::unlinkat(dir.as_raw_fd(), &store::metacopy_marker(name), 0);
            }
            Action::Whiteout(p) => {
                let (dir, name) = self.upper_parent(p)?;
                marker(&dir, &store::whiteout(name))?;
            }
            Action::Opaque(p) => {
                let dir = beneath(&self.upper_fd, p, libc::O_PATH | libc::O_DIRECTORY)?;
                keeping_times(&dir, || marker(&dir, store::OPAQUE_MARKER))?;
            }
            Action::RenameUp { from, to } => {
                let (fdir, fname) = self.upper_parent(from)?;
                let (tdir, tname) = self.upper_parent(to)?;
                sys::renameat2(fdir.as_raw_fd(), fname, tdir.as_raw_fd(), tname, 0).map_err(errno)?;
                // The name it leaves may need no whiteout; one for the new name goes.
                let _ = sys::unlinkat(tdir.as_raw_fd(), &store::whiteout(tname), 0);
            }
            Action::LinkUp { from, to } => {
                let (fdir, fname) = self.upper_parent(from)?;
                let (tdir, tname) = self.upper_parent(to)?;
                sys::linkat(fdir.as_raw_fd(), fname, tdir.as_raw_fd(), tname, 0).map_err(errno)?;
                let _ = sys::unlinkat(tdir.as_raw_fd(), &store::whiteout(tname), 0);
            }
        }
        if !matches!(a, Action::CopyUp { .. }) {
            self.index.apply(a, None);
        }
        if let Action::MkdirUp(p) | Action::CopyUp { path: p, .. } = a {
            let id = |st: [u8; 144]| (sys::stat_dev(&st), sys::stat_ino(&st));
            let upper = beneath(&self.upper_fd, p, libc::O_PATH | libc::O_NOFOLLOW).ok().and_then(|fd| sys::fstat_bytes(fd.as_raw_fd()).ok());
            if let (Some(lo), Some(up)) = (self.lower_stat(p), upper) {
                let mut moved = COPIED.lock().expect("cow lock");
                // Bounded, should nobody ask.
                if moved.len() >= 65536 {
                    moved.clear();
                }
                moved.push((id(lo), id(up)));
            }
        }
        Ok(())
    }

    /// Copies the whole merged subtree at `p` into the upper layer.
    fn copy_tree(&mut self, p: &[Vec<u8>]) -> Result<(), Errno> {
        match viewos_cow::lookup(self, p) {
            None => Err(Errno::ENOENT),
            Some(s) if s.kind() == Kind::Dir => {
                self.prepare(&Change::Modify { path: p.to_vec(), data: false })?;
                for n in viewos_cow::listing(self, p).unwrap_or_default() {
                    self.copy_tree(&child(p, &n))?;
                }
                Ok(())
            }
            Some(viewos_cow::Shown::Lower(_)) => self.prepare(&Change::Modify { path: p.to_vec(), data: true }).map(drop),
            // A metadata-only copy's data is read by its path: it must not move without it.
            Some(_) if self.index.metacopy(p) => self.prepare(&Change::Modify { path: p.to_vec(), data: true }).map(drop),
            Some(_) => Ok(()),
        }
    }

    /// The upper directory holding `p`, and its final name.
    fn upper_parent<'p>(&self, p: &'p [Vec<u8>]) -> Result<(OwnedFd, &'p [u8]), Errno> {
        let (name, dir) = p.split_last().ok_or(Errno::EBUSY)?;
        Ok((beneath(&self.upper_fd, dir, libc::O_PATH | libc::O_DIRECTORY)?, name))
    }

    /// Copies the lower file, symlink or special file at `p` up, with its metadata; a
    /// regular file's data goes into an unnamed file linked in only once complete.
    fn copy_up(&self, p: &[Vec<u8>]) -> Result<Kind, Errno> {
        let src = beneath(&self.lower_fd, p, libc::O_PATH | libc::O_NOFOLLOW)?;
        let st = sys::fstat_bytes(src.as_raw_fd()).map_err(errno)?;
        let (dir, name) = self.upper_parent(p)?;
        let kind = kind_of(&st);
        match sys::stat_type(&st) {
            libc::S_IFREG => {
                let data = sys::reopen(src.as_raw_fd(), libc::O_RDONLY | libc::O_NONBLOCK).map_err(errno)?;
                let tmp = sys::tmpfile_with(dir.as_raw_fd(), libc::O_WRONLY, 0o600).map_err(errno)?;
                copy_data(&data, &tmp, word(&st, 48) as u64)?;
                copy_meta(Some(&data), &tmp, &st);
                let link = format!("/proc/self/fd/{}", tmp.as_raw_fd());
                sys::linkat(libc::AT_FDCWD, link.as_bytes(), dir.as_raw_fd(), name, libc::AT_SYMLINK_FOLLOW).map_err(errno)?;
            }
            libc::S_IFLNK => {
                let target = sys::readlinkat(src.as_raw_fd(), b"", libc::PATH_MAX as usize).map_err(errno)?;
                sys::symlinkat(&target, dir.as_raw_fd(), name).map_err(errno)?;
                let made = sys::openat2(dir.as_raw_fd(), name, (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64, 0, 0).map_err(errno)?;
                copy_meta(None, &made, &st);
            }
            libc::S_IFDIR => return Err(Errno::EISDIR),
            t => {
                sys::mknodat(dir.as_raw_fd(), name, t | (field(&st, 24) & 0o7777), word(&st, 40) as u64).map_err(errno)?;
                let made = sys::openat2(dir.as_raw_fd(), name, (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64, 0, 0).map_err(errno)?;
                copy_meta(None, &made, &st);
            }
        }
        Ok(kind)
    }

    /// A metadata-only copy of the lower regular file `p`: its marker first, then a file of
    /// the same size with no data and the lower file's metadata (the content is still
    /// read from the lower file). Cut short, the marker alone means nothing.
    fn metacopy(&mut self, p: &[Vec<u8>]) -> Result<(), Errno> {
        let src = beneath(&self.lower_fd, p, libc::O_PATH | libc::O_NOFOLLOW)?;
        let st = sys::fstat_bytes(src.as_raw_fd()).map_err(errno)?;
        let (dir, name) = self.upper_parent(p)?;
        marker(&dir, &store::metacopy_marker(name))?;
        let tmp = sys::tmpfile_with(dir.as_raw_fd(), libc::O_WRONLY, 0o600).map_err(errno)?;
        sys::ftruncate(tmp.as_raw_fd(), word(&st, 48)).map_err(errno)?;
        let data = sys::reopen(src.as_raw_fd(), libc::O_RDONLY | libc::O_NONBLOCK).ok();
        copy_meta(data.as_ref(), &tmp, &st);
        let link = format!("/proc/self/fd/{}", tmp.as_raw_fd());
        sys::linkat(libc::AT_FDCWD, link.as_bytes(), dir.as_raw_fd(), name, libc::AT_SYMLINK_FOLLOW).map_err(errno)?;
        self.any_metacopy = true;
        Ok(())
    }

    /// Fills in the data of metadata-only copy `p`: a complete copy (the lower file's
    /// data, the copy's metadata) replaces it whole, then its marker goes.
    fn fill(&mut self, p: &[Vec<u8>]) -> Result<(), Errno> {
        let (dir, name) = self.upper_parent(p)?;
        let meta = sys::openat2(dir.as_raw_fd(), name, (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64, 0, 0).map_err(errno)?;
        let st = sys::fstat_bytes(meta.as_raw_fd()).map_err(errno)?;
        let src = beneath(&self.lower_fd, p, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK)?;
        let tmp = sys::tmpfile_with(dir.as_raw_fd(), libc::O_WRONLY, 0o600).map_err(errno)?;
        copy_data(&src, &tmp, word(&st, 48) as u64)?;
        copy_meta(Some(&meta), &tmp, &st);
        let temp_name = [store::PRIVATE_PREFIX, b"tmp.", name].concat();
        let _ = sys::unlinkat(dir.as_raw_fd(), &temp_name, 0);
        let link = format!("/proc/self/fd/{}", tmp.as_raw_fd());
        sys::linkat(libc::AT_FDCWD, link.as_bytes(), dir.as_raw_fd(), &temp_name, libc::AT_SYMLINK_FOLLOW).map_err(errno)?;
        sys::renameat2(dir.as_raw_fd(), &temp_name, dir.as_raw_fd(), name, 0).map_err(errno)?;
        let _ = sys::unlinkat(dir.as_raw_fd(), &store::metacopy_marker(name), 0);
        Ok(())
    }

    /// The real path whose content `p` shows: a metadata-only copy's is the lower file.
    fn real_data(&self, p: &[Vec<u8>], slash: bool) -> Result<Vec<u8>, Errno> {
        if self.index.metacopy(p) {
            return Ok(under(&self.lower, p, false));
        }
        self.real(p, slash)
    }

    /// The merged listing of directory `p`: upper names first, then the lower names that
    /// show through (neither in the upper directory nor whited out); `.` and `..` first.
    fn listing(&self, p: &[Vec<u8>]) -> Result<Vec<DirEntry>, Errno> {
        let mut out = Vec::new();
        let mut seen: BTreeSet<Vec<u8>> = BTreeSet::new();
        let upper_dir = self.index.node(p) == Node::Present(Kind::Dir);
        if upper_dir {
            let d = beneath(&self.upper_fd, p, libc::O_RDONLY | libc::O_DIRECTORY)?;
            for (name, ino, t) in read_dir(&d)? {
                match store::decode(&name) {
                    store::Raw::Entry(n) => {
                        seen.insert(n);
                        out.push((name, ino, t));
                    }
                    store::Raw::Whiteout(n) => {
                        seen.insert(n);
                    }
                    store::Raw::Opaque | store::Raw::Metacopy(_) | store::Raw::Private => {}
                }
            }
        }
        // A name no directory can hold shows whether the lower directory shows through.
        let through = self.index.locate(&child(p, b"\0")) == Layer::Lower;
        if through {
            match beneath(&self.lower_fd, p, libc::O_RDONLY | libc::O_DIRECTORY) {
                Ok(d) => {
                    for (name, ino, t) in read_dir(&d)? {
                        if !seen.contains(&name) {
                            out.push((name, ino, t));
                        }
                    }
                }
                Err(e) if upper_dir => {
                    let _ = e;
                }
                Err(e) => return Err(e),
            }
        }
        // `.` and `..` first, once.
        let mut dots: Vec<_> = Vec::new();
        out.retain(|e| {
            if dot(&e.0) {
                if !dots.iter().any(|d: &DirEntry| d.0 == e.0) {
                    dots.push(e.clone());
                }
                false
            } else {
                true
            }
        });
        dots.sort();
        dots.extend(out);
        Ok(dots)
    }
}

impl Layers for Cow {
    fn lower(&self, p: &[Vec<u8>]) -> Option<Kind> {
        self.lower_kind(p).ok()
    }
    fn upper(&self, p: &[Vec<u8>]) -> Node {
        self.index.node(p)
    }
    fn opaque(&self, p: &[Vec<u8>]) -> bool {
        self.index.opaque(p)
    }
    fn lower_names(&self, p: &[Vec<u8>]) -> Vec<Vec<u8>> {
        beneath(&self.lower_fd, p, libc::O_RDONLY | libc::O_DIRECTORY)
            .and_then(|d| read_dir(&d))
            .map(|v| v.into_iter().map(|e| e.0).filter(|n| !dot(n)).collect())
            .unwrap_or_default()
    }
    fn upper_names(&self, p: &[Vec<u8>]) -> Vec<Vec<u8>> {
        self.index.names(p)
    }
    fn metacopy(&self, p: &[Vec<u8>]) -> bool {
        self.index.metacopy(p)
    }
}

/// Copies `len` bytes of `src` into `dst`, holes kept (`SEEK_DATA`/`SEEK_HOLE`), with
/// `copy_file_range` (a reflink where the filesystem can), falling back to reads and writes.
fn copy_data(src: &OwnedFd, dst: &OwnedFd, len: u64) -> Result<(), Errno> {
    let (s, d) = (src.as_raw_fd(), dst.as_raw_fd());
    let mut off = 0u64;
    while off < len {
        let start = match sys::lseek(s, off, libc::SEEK_DATA) {
            Ok(x) => x,
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => break,
            // No SEEK_DATA here: all of it is data.
            Err(_) => off,
        };
        let end = sys::lseek(s, start, libc::SEEK_HOLE).unwrap_or(len).min(len);
        let mut at = start;
        while at < end {
            let want = (end - at).min(1 << 30) as usize;
            let n = match sys::copy_range(s, d, at, want) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EXDEV | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)) => {
                    let mut buf = vec![0u8; want.min(1 << 20)];
                    let r = sys::pread(s, &mut buf, at).map_err(errno)?;
                    if r == 0 {
                        break;
                    }
                    let mut w = 0;
                    while w < r {
                        w += sys::pwrite(d, &buf[w..r], at + w as u64).map_err(errno)?;
                    }
                    r
                }
                Err(e) => return Err(errno(e)),
            };
            at += n as u64;
        }
        off = end.max(off + 1);
    }
    sys::ftruncate(d, len as i64).map_err(errno)
}

/// Gives `dst` the metadata of `st`: owner (a root monitor only), mode, the xattrs of
/// `src` the monitor may set (`user.*` unprivileged), times.
fn copy_meta(src: Option<&OwnedFd>, dst: &OwnedFd, st: &[u8; 144]) {
    let d = dst.as_raw_fd();
    let symlink = sys::stat_type(st) == libc::S_IFLNK;
    // SAFETY: no arguments.
    if unsafe { libc::geteuid() } == 0 {
        let _ = sys::fchown_empty(d, field(st, 28), field(st, 32));
    }
    if !symlink {
        let _ = sys::fchmod_empty(d, field(st, 24) & 0o7777, 0);
        if let Some(s) = src {
            let mut names = vec![0u8; 64 << 10];
            if let Ok(n) = sys::xattr_list(s.as_raw_fd(), &mut names) {
                for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
                    let mut v = vec![0u8; 64 << 10];
                    if let Ok(len) = sys::xattr_get(s.as_raw_fd(), name, &mut v) {
                        let _ = sys::xattr_set(d, name, &v[..len], 0);
                    }
                }
            }
        }
    }
    let times = [word(st, 72), word(st, 80), word(st, 88), word(st, 96)];
    let _ = sys::utimens_empty(d, Some(&times));
}

/// Runs `f`, then gives directory `dir` back the access and modification times it had.
fn keeping_times<T>(dir: &OwnedFd, f: impl FnOnce() -> Result<T, Errno>) -> Result<T, Errno> {
    let before = sys::fstat_bytes(dir.as_raw_fd()).ok();
    let r = f();
    if let Some(st) = before {
        let _ = sys::utimens_empty(dir.as_raw_fd(), Some(&[word(&st, 72), word(&st, 80), word(&st, 88), word(&st, 96)]));
    }
    r
}

/// An empty marker file `name` in `dir`.
fn marker(dir: &OwnedFd, name: &[u8]) -> Result<(), Errno> {
    sys::openat2(dir.as_raw_fd(), name, (libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64, 0o600, 0x04).map(drop).map_err(errno)
}

/// Removes `name` in `dir`, a directory with all it holds.
fn remove_tree(dir: &OwnedFd, name: &[u8]) -> Result<(), Errno> {
    match sys::unlinkat(dir.as_raw_fd(), name, 0) {
        Ok(()) => return Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EISDIR | libc::EPERM)) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(errno(e)),
    }
    let sub = sys::openat2(dir.as_raw_fd(), name, (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64, 0, 0x04).map_err(errno)?;
    for (n, _, _) in read_dir(&sub)? {
        if !dot(&n) {
            remove_tree(&sub, &n)?;
        }
    }
    sys::unlinkat(dir.as_raw_fd(), name, libc::AT_REMOVEDIR).map_err(errno)
}

// ---------------------------------------------------------------------------------------
// The store.

/// A store's description: the lower directory it belongs to.
fn read_meta(store: &Path) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(store.join(META)).map_err(|e| format!("{}: not a viewos cow store ({e})", store.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some(FORMAT) {
        return Err(format!("{}: not a viewos cow store of a format this viewos reads ({FORMAT})", store.display()));
    }
    let lower = lines.find_map(|l| l.strip_prefix("lower=")).ok_or_else(|| format!("{}: the store names no lower directory", store.display()))?;
    Ok(PathBuf::from(lower))
}

/// The store for lower directory `lower` (canonical): `store` (made if missing or empty,
/// refused if it belongs to another directory), or a fresh one under
/// `$XDG_STATE_HOME/viewos/cow/`. Returns it, canonical.
pub fn open_store(lower: &Path, store: Option<&Path>) -> Result<PathBuf, String> {
    let store = match store {
        Some(s) => s.to_path_buf(),
        None => {
            let state = std::env::var_os("XDG_STATE_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")));
            // A user without a home (nobody's is /nonexistent) gets one in the temporary
            // directory, private to it.
            // SAFETY: no arguments.
            let uid = unsafe { libc::getuid() };
            let fallback = std::env::temp_dir().join(format!("viewos-cow-{uid}"));
            let dir = match state.map(|b| b.join("viewos/cow")).filter(|d| std::fs::create_dir_all(d).is_ok()) {
                Some(d) => d,
                None => {
                    use std::os::unix::fs::DirBuilderExt;
                    match std::fs::DirBuilder::new().mode(0o700).create(&fallback) {
                        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(format!("--cow: {}: {e}", fallback.display())),
                        _ => {}
                    }
                    // Someone else's directory of that name is not ours to write in.
                    use std::os::unix::fs::MetadataExt;
                    let md = std::fs::symlink_metadata(&fallback).map_err(|e| format!("--cow: {}: {e}", fallback.display()))?;
                    if !md.is_dir() || md.uid() != uid || md.mode() & 0o077 != 0 {
                        return Err(format!("--cow: {} is not a private directory of yours; name a store (--cow DIR:STORE)", fallback.display()));
                    }
                    fallback
                }
            };
            let name = lower.file_name().map_or("root".into(), |n| n.to_string_lossy().into_owned());
            let mut n = 0;
            loop {
                let cand = dir.join(format!("{name}-{}-{n}", std::process::id()));
                if !cand.exists() {
                    break cand;
                }
                n += 1;
            }
        }
    };
    let fresh = match std::fs::read_dir(&store) {
        Ok(mut it) => it.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&store).map_err(|e| format!("--cow store {}: {e}", store.display()))?;
            true
        }
        Err(e) => return Err(format!("--cow store {}: {e}", store.display())),
    };
    let store = std::fs::canonicalize(&store).map_err(|e| format!("--cow store {}: {e}", store.display()))?;
    if store.starts_with(lower) || lower.starts_with(&store) {
        return Err(format!("--cow: the store {} and the directory {} must not lie in each other", store.display(), lower.display()));
    }
    if fresh {
        for d in ["upper", "work"] {
            std::fs::create_dir(store.join(d)).map_err(|e| format!("--cow store {}: {e}", store.display()))?;
        }
        let text = format!("{FORMAT}\nlower={}\n", lower.display());
        // Written whole, then renamed: a store is never half described.
        // The view's DIR itself is the upper root: it starts with the real DIR's metadata.
        if let (Ok(lo), Ok(up)) = (
            sys::openat2(libc::AT_FDCWD, lower.as_os_str().as_bytes(), (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64, 0, 0),
            sys::openat2(libc::AT_FDCWD, store.join("upper").as_os_str().as_bytes(), (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64, 0, 0),
        ) && let Ok(st) = sys::fstat_bytes(lo.as_raw_fd())
        {
            copy_meta(Some(&lo), &up, &st);
        }
        let tmp = store.join("work/meta");
        std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, store.join(META))).map_err(|e| format!("--cow store {}: {e}", store.display()))?;
    } else {
        let theirs = read_meta(&store)?;
        if theirs != lower {
            return Err(format!("--cow: the store {} belongs to {}, not {}", store.display(), theirs.display(), lower.display()));
        }
        if !store.join("upper").is_dir() {
            return Err(format!("--cow store {}: its upper directory is missing", store.display()));
        }
    }
    Ok(store)
}

/// The index of the upper tree `dir` (an `O_RDONLY` directory fd), read from the store.
fn load(dir: &OwnedFd, at: &mut RelPath, index: &mut Upper) -> Result<(), Errno> {
    let mut whiteouts = Vec::new();
    let mut metacopies = Vec::new();
    let mut names = BTreeSet::new();
    for (name, _, t) in read_dir(dir)? {
        if dot(&name) {
            continue;
        }
        match store::decode(&name) {
            store::Raw::Opaque => index.set_opaque(at),
            store::Raw::Whiteout(n) => whiteouts.push(n),
            store::Raw::Metacopy(n) => metacopies.push(n),
            // A temporary file a monitor left (it was killed): not part of the layer.
            store::Raw::Private => {}
            store::Raw::Entry(n) => {
                let p = child(at, &n);
                let kind = match t {
                    libc::DT_DIR => Kind::Dir,
                    libc::DT_LNK => Kind::Symlink,
                    libc::DT_UNKNOWN => {
                        let fd = sys::openat2(dir.as_raw_fd(), &n, (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64, 0, 0).map_err(errno)?;
                        kind_of(&sys::fstat_bytes(fd.as_raw_fd()).map_err(errno)?)
                    }
                    _ => Kind::File,
                };
                index.set(&p, kind);
                if kind == Kind::Dir {
                    let sub = sys::openat2(dir.as_raw_fd(), &n, (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64, 0, 0).map_err(errno)?;
                    at.push(n.clone());
                    load(&sub, at, index)?;
                    at.pop();
                }
                names.insert(n);
            }
        }
    }
    // A whiteout and an entry of the same name: the entry shows (a whiteout is only made
    // where no entry is, so this is a store cut short between two steps).
    for n in whiteouts.into_iter().filter(|n| !names.contains(n)) {
        index.whiteout(&child(at, &n));
    }
    // A marker without its file is one whose file was never linked in (cut short).
    for n in metacopies {
        let p = child(at, &n);
        if index.node(&p) == Node::Present(Kind::File) {
            index.set_metacopy(&p);
        }
    }
    Ok(())
}

fn open_layers(lower: &Path, store: &Path) -> std::io::Result<Cow> {
    let dirfd = |p: &Path| sys::openat2(libc::AT_FDCWD, p.as_os_str().as_bytes(), (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64, 0, 0);
    let upper = store.join("upper");
    let lower_fd = dirfd(lower)?;
    let upper_fd = dirfd(&upper)?;
    let mut index = Upper::new();
    let top = sys::reopen(upper_fd.as_raw_fd(), libc::O_RDONLY | libc::O_DIRECTORY)?;
    load(&top, &mut Vec::new(), &mut index).map_err(|e| std::io::Error::from_raw_os_error(i32::from(e.0)))?;
    Ok(Cow {
        lower: lower.as_os_str().as_bytes().to_vec(),
        upper: upper.as_os_str().as_bytes().to_vec(),
        lower_fd,
        upper_fd,
        snaps: Snapshots::default(),
        any_metacopy: index.entries().iter().any(|(p, _, _)| index.metacopy(p)),
        lower_seen: Default::default(),
        index,
    })
}

/// Makes a cow mount of `lower` (canonical) over `store` (from [`open_store`]); its host
/// path for the view.
pub fn mount(lower: &Path, store: &Path) -> std::io::Result<Vec<u8>> {
    let cow = open_layers(lower, store)?;
    let mut all = COWS.lock().expect("cow lock");
    all.push(cow);
    ACTIVE.store(true, Ordering::Relaxed);
    Ok(mount_path(all.len() - 1))
}

// ---------------------------------------------------------------------------------------
// What the adapter asks.

/// The path of cow mount `m`'s file `p` if `real` lies in one of its layers.
fn virtual_of_real(all: &[Cow], real: &[u8]) -> Option<Vec<u8>> {
    let (suffix, deleted) = match real.strip_suffix(b" (deleted)") {
        Some(r) => (r, true),
        None => (real, false),
    };
    all.iter().enumerate().find_map(|(m, c)| {
        [&c.upper, &c.lower].into_iter().find_map(|root| {
            let rest = suffix.strip_prefix(root.as_slice())?;
            if !rest.is_empty() && rest[0] != b'/' {
                return None;
            }
            let mut v = [mount_path(m).as_slice(), rest].concat();
            if deleted {
                v.extend_from_slice(b" (deleted)");
            }
            Some(v)
        })
    })
}

/// The path in a cow view of the real file `real` (a link target the kernel shows:
/// `/proc/PID/fd/N`, `cwd`, `exe`), if it lies in a cow mount's layer.
pub fn virtual_of(real: &[u8]) -> Option<Vec<u8>> {
    if !active() {
        return None;
    }
    virtual_of_real(&COWS.lock().expect("cow lock"), real)
}

/// The real path showing `path` of a cow mount, for reads (exec, `#!` lookups). `None`:
/// not a cow path.
pub fn real_path(path: &[u8]) -> Option<Result<Vec<u8>, Errno>> {
    if !active() {
        return None;
    }
    let (m, comps, slash) = split(path)?;
    let all = COWS.lock().expect("cow lock");
    Some(all.get(m).ok_or(Errno::ENOENT).and_then(|c| c.real(&comps, slash)))
}

/// The real path `execve` runs for cow path `path`: a metadata-only copy gets its data
/// first (the kernel checks the copy's mode). `None`: not a cow path.
pub fn exec_path(path: &[u8]) -> Option<Result<Vec<u8>, Errno>> {
    if !active() {
        return None;
    }
    let (m, comps, slash) = split(path)?;
    let mut all = COWS.lock().expect("cow lock");
    let Some(c) = all.get_mut(m) else { return Some(Err(Errno::ENOENT)) };
    if c.index.metacopy(&comps) {
        c.lower_seen.borrow_mut().clear();
        if let Err(e) = c.prepare(&Change::Modify { path: comps.clone(), data: true }) {
            return Some(Err(e));
        }
    }
    Some(c.real(&comps, slash))
}

/// An `O_PATH` fd of real path `real` (a layer's file), reached without following a
/// symlink (`ELOOP`: the path is then looked up in full); `flags`: `O_NOFOLLOW`,
/// `O_DIRECTORY`.
fn probe(real: &[u8], flags: i32) -> Result<OwnedFd, Errno> {
    sys::openat2(libc::AT_FDCWD, real, (libc::O_PATH | flags | libc::O_CLOEXEC) as u64, 0, viewos_core::x86_64::flags::RESOLVE_NO_SYMLINKS).map_err(errno)
}

/// `lstat` of a cow path, for the view's resolver.
pub fn lstat(path: &[u8]) -> Option<Result<viewos_path::Kind, Errno>> {
    let real = real_path(path)?;
    Some(real.and_then(|r| {
        let fd = probe(&r, libc::O_NOFOLLOW)?;
        let st = sys::fstat_bytes(fd.as_raw_fd()).map_err(errno)?;
        Ok(match sys::stat_type(&st) {
            libc::S_IFDIR => viewos_path::Kind::Dir,
            libc::S_IFLNK => viewos_path::Kind::Symlink,
            _ => viewos_path::Kind::Other,
        })
    }))
}

/// `readlink` of a cow path, for the view's resolver.
pub fn readlink(path: &[u8]) -> Option<Result<Vec<u8>, Errno>> {
    let real = real_path(path)?;
    Some(real.and_then(|r| {
        let fd = probe(&r, libc::O_NOFOLLOW)?;
        sys::readlinkat(fd.as_raw_fd(), b"", libc::PATH_MAX as usize).map_err(errno)
    }))
}

/// Search permission on cow directory `path`, as `chdir` checks it.
pub fn may_enter(path: &[u8]) -> Option<Result<(), Errno>> {
    let real = real_path(path)?;
    Some(real.and_then(|r| {
        let fd = probe(&r, libc::O_DIRECTORY)?;
        sys::faccess_empty(fd.as_raw_fd(), libc::X_OK as u32, libc::AT_EACCESS as u32).map_err(errno)
    }))
}

/// See `Host::virtual_socket`, for a cow path: a socket is bound at its upper path (the
/// directories on the way copied up), and reached at the path that shows it.
pub fn socket(path: &[u8], bind: bool) -> Option<Result<Vec<u8>, Errno>> {
    if !active() {
        return None;
    }
    let (m, p, _) = split(path)?;
    let mut all = COWS.lock().expect("cow lock");
    let Some(c) = all.get_mut(m) else { return Some(Err(Errno::ENOENT)) };
    if !bind {
        return Some(c.real(&p, false));
    }
    c.lower_seen.borrow_mut().clear();
    Some(match create(c, m, &p, Kind::File, |_| HostOp::OpenMemory { name: Vec::new(), data: Vec::new(), cloexec: false }) {
        Rewritten::Done(Err(Errno::EEXIST)) => Err(Errno::EADDRINUSE),
        Rewritten::Done(r) => r.and(Err(Errno::EIO)),
        Rewritten::Op(_, after) => {
            // The kernel's bind makes the name; the index has it from now (a failed bind
            // leaves an upper name that does not exist, which reads as missing).
            let path = c.upper_path(&p, false);
            if let Some((p, k)) = &after.made {
                c.index.set(p, *k);
            }
            Ok(path)
        }
    })
}

/// What [`rewrite`] made of an op.
pub enum Rewritten {
    /// The op is answered: its result.
    Done(Result<u64, Errno>),
    /// Make this op instead (on real paths), then [`finish`] with how it went.
    Op(HostOp, After),
}

/// What follows the guest's call made on the upper layer: the index learns the name it
/// made, and the plan's remaining steps are taken.
pub struct After {
    m: usize,
    made: Option<(RelPath, Kind)>,
    rest: Vec<Action>,
}

/// The end of a rewritten op: `ok` if the guest's call succeeded.
pub fn finish(after: After, ok: bool) {
    if !ok || (after.made.is_none() && after.rest.is_empty()) {
        return;
    }
    let mut all = COWS.lock().expect("cow lock");
    let Some(c) = all.get_mut(after.m) else { return };
    if let Some((p, k)) = &after.made {
        c.index.set(p, *k);
    }
    for a in &after.rest {
        if !matches!(a, Action::Create { .. }) {
            let _ = c.execute(a);
        }
    }
}

/// `target` with a new path (not a magic link).
fn at(path: Vec<u8>) -> HostTarget {
    HostTarget { path, magic: false }
}

/// Refuses a guest name a store marker could have.
fn check_new_name(p: &[Vec<u8>]) -> Result<(), Errno> {
    p.last().map_or(Ok(()), |n| store::check_name(n))
}

/// The cow path a guest's fd (`/proc/TID/fd/N`) names, if its file lies in a cow layer.
fn fd_target(all: &[Cow], at: &HostTarget) -> Option<(usize, RelPath)> {
    if !at.magic {
        return None;
    }
    let link = std::fs::read_link(std::ffi::OsStr::from_bytes(&at.path)).ok()?;
    let v = virtual_of_real(all, link.as_os_str().as_bytes())?;
    if v.ends_with(b" (deleted)") {
        return None;
    }
    split(&v).map(|(m, p, _)| (m, p))
}

/// Rewrites `op` if it acts on a cow path (or on a guest's fd whose file is in a cow
/// layer and the op changes it): `None` for any other op.
pub fn rewrite(op: &HostOp, tid: i32, mem: Option<&mut dyn GuestMem>) -> Option<Rewritten> {
    if !active() {
        return None;
    }
    let mut all = COWS.lock().expect("cow lock");
    let all = &mut *all;
    for c in all.iter() {
        c.lower_seen.borrow_mut().clear();
    }
    let target = |at: &HostTarget| split(&at.path).filter(|_| !at.magic);
    let done = |r: Result<HostOp, Errno>, m: usize| match r {
        Ok(op) => Rewritten::Op(op, After { m, made: None, rest: Vec::new() }),
        Err(e) => Rewritten::Done(Err(e)),
    };
    Some(match op {
        // The guest's fd of a lower file that is now a metadata-only copy: the copy's
        // metadata (its data is still that file's).
        HostOp::Stat { at: a, .. } | HostOp::Statx { at: a, .. } if a.magic && all.iter().any(|c| c.any_metacopy) => {
            let (m, p) = fd_target(all, a)?;
            let c = all.get(m)?;
            if !c.index.metacopy(&p) {
                return None;
            }
            done(Ok(op.with_target(at(c.upper_path(&p, false)))), m)
        }
        HostOp::Stat { at: a, .. }
        | HostOp::Identify { at: a, .. }
        | HostOp::Statx { at: a, .. }
        | HostOp::Access { at: a, .. }
        | HostOp::Readlink { at: a, .. }
        | HostOp::Statfs { at: a, .. }
        | HostOp::Xattr { at: a, call: XattrCall::Get { .. } | XattrCall::List { .. }, .. } => {
            let (m, p, slash) = target(a)?;
            done(real_of(all, m, &p, slash).map(|r| op.with_target(at(r))), m)
        }
        HostOp::ReadFile { at: a } => {
            let (m, p, slash) = target(a)?;
            done(all.get(m).ok_or(Errno::ENOENT).and_then(|c| c.real_data(&p, slash)).map(|r| op.with_target(at(r))), m)
        }
        HostOp::Open { at: a, flags, .. } => {
            let (m, p, slash) = target(a)?;
            let c = all.get_mut(m)?;
            let f = *flags as i32;
            let with = |path: Vec<u8>| op.with_target(at(path));
            let acc = f & libc::O_ACCMODE;
            if f & libc::O_PATH != 0 {
                return Some(done(c.real(&p, slash).map(with), m));
            }
            if f & libc::O_TMPFILE == libc::O_TMPFILE {
                // An unnamed file of the directory's: made in its upper copy.
                return Some(match c.merged(&p) {
                    Err(e) => Rewritten::Done(Err(e)),
                    Ok(None) => Rewritten::Done(Err(Errno::ENOENT)),
                    Ok(Some(Kind::Dir)) => match c.prepare(&Change::Modify { path: p.clone(), data: false }) {
                        Ok(_) => done(Ok(with(c.upper_path(&p, slash))), m),
                        Err(e) => Rewritten::Done(Err(e)),
                    },
                    Ok(Some(_)) => Rewritten::Done(Err(Errno::ENOTDIR)),
                });
            }
            let writes = acc != libc::O_RDONLY || f & libc::O_TRUNC != 0;
            let creating = f & libc::O_CREAT != 0;
            if !writes && !creating {
                return Some(done(c.real_data(&p, slash).map(with), m));
            }
            let found = match c.merged(&p) {
                Ok(k) => k,
                Err(e) => return Some(Rewritten::Done(Err(e))),
            };
            match found {
                // The kernel says what an open of these is (EEXIST, ELOOP, EISDIR...).
                Some(_) if creating && f & libc::O_EXCL != 0 => done(c.real(&p, slash).map(with), m),
                Some(Kind::Dir | Kind::Symlink) => done(c.real(&p, slash).map(with), m),
                Some(Kind::File) if !writes => done(c.real_data(&p, slash).map(with), m),
                Some(Kind::File) => {
                    // Natively a file the guest may not write is not opened: not copied up.
                    if let Err(e) = may_write(c, &p) {
                        return Some(Rewritten::Done(Err(e)));
                    }
                    match c.prepare(&Change::Modify { path: p.clone(), data: true }) {
                        Ok(_) => done(Ok(with(c.upper_path(&p, slash))), m),
                        Err(e) => Rewritten::Done(Err(e)),
                    }
                }
                None if !creating => Rewritten::Done(Err(Errno::ENOENT)),
                None => create(c, m, &p, Kind::File, with),
            }
        }
        HostOp::Mkdir { at: a, .. } | HostOp::Mknod { at: a, .. } | HostOp::Symlink { at: a, .. } => {
            let (m, p, _) = target(a)?;
            let c = all.get_mut(m)?;
            let kind = match op {
                HostOp::Mkdir { .. } => Kind::Dir,
                HostOp::Symlink { .. } => Kind::Symlink,
                _ => Kind::File,
            };
            create(c, m, &p, kind, |path| op.with_target(at(path)))
        }
        HostOp::Unlink { at: a, rmdir } => {
            let (m, p, _) = target(a)?;
            let c = all.get_mut(m)?;
            Rewritten::Done(remove(c, &p, *rmdir))
        }
        HostOp::Rename { from, to, flags } => {
            let (f, t) = (target(from), target(to));
            match (f, t) {
                (None, None) => return None,
                (Some((fm, fp, _)), Some((tm, tp, _))) if fm == tm => {
                    let c = all.get_mut(fm)?;
                    Rewritten::Done(rename(c, &fp, &tp, *flags))
                }
                _ => Rewritten::Done(Err(Errno::EXDEV)),
            }
        }
        HostOp::Link { from, to } => {
            let Some((tm, tp, _)) = target(to) else {
                // A name outside any cow mount for a cow file: another filesystem.
                return (target(from).is_some()).then_some(Rewritten::Done(Err(Errno::EXDEV)));
            };
            if from.magic {
                // The file behind a guest's fd: an upper file (an O_TMPFILE one) gets a
                // new name as the guest asks; a lower one is linked as its path.
                let Some(c) = all.get(tm) else { return Some(Rewritten::Done(Err(Errno::ENOENT))) };
                let link = std::fs::read_link(std::ffi::OsStr::from_bytes(&from.path)).ok();
                let in_upper = link.as_ref().is_some_and(|l| l.as_os_str().as_bytes().starts_with(&c.upper));
                if in_upper || link.as_ref().is_some_and(|l| l.as_os_str().as_bytes().ends_with(b" (deleted)")) {
                    let c = all.get_mut(tm)?;
                    return Some(create(c, tm, &tp, Kind::File, |path| HostOp::Link { from: from.clone(), to: at(path) }));
                }
                return Some(match fd_target(all, from) {
                    Some((fm, fp)) if fm == tm => Rewritten::Done(link_names(all.get_mut(tm)?, &fp, &tp)),
                    _ => Rewritten::Done(Err(Errno::EXDEV)),
                });
            }
            match target(from) {
                Some((fm, fp, _)) if fm == tm => Rewritten::Done(link_names(all.get_mut(tm)?, &fp, &tp)),
                _ => Rewritten::Done(Err(Errno::EXDEV)),
            }
        }
        HostOp::Chmod { at: a, .. }
        | HostOp::Chown { at: a, .. }
        | HostOp::Utimens { at: a, .. }
        | HostOp::Xattr { at: a, call: XattrCall::Set { .. } | XattrCall::Remove { .. }, .. } => {
            let (m, p, slash) = changed(all, a)?;
            modify(all.get_mut(m)?, m, &p, slash, false, |path| op.with_target(path))
        }
        HostOp::Truncate { at: a, .. } => {
            let (m, p, slash) = changed(all, a)?;
            let c = all.get_mut(m)?;
            match c.merged(&p) {
                Ok(Some(Kind::File)) => {}
                Ok(Some(Kind::Dir)) => return Some(Rewritten::Done(Err(Errno::EISDIR))),
                Ok(Some(_)) => return Some(Rewritten::Done(Err(Errno::EINVAL))),
                Ok(None) => return Some(Rewritten::Done(Err(Errno::ENOENT))),
                Err(e) => return Some(Rewritten::Done(Err(e))),
            }
            if let Err(e) = may_write(c, &p) {
                return Some(Rewritten::Done(Err(e)));
            }
            modify(c, m, &p, slash, true, |path| op.with_target(path))
        }
        HostOp::Getdents { fd, buf, count, legacy, edit } => {
            let mem = mem?;
            let dir = crate::perform::guest_file(tid, *fd).ok()?;
            let link = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())).ok()?;
            let v = virtual_of_real(all, link.as_os_str().as_bytes())?;
            let (m, p, _) = split(&v)?;
            let c = all.get_mut(m)?;
            Rewritten::Done(getdents(c, &p, &dir, *count, *legacy, edit).and_then(|data| {
                mem.write(GuestAddr(*buf), &data)?;
                Ok(data.len() as u64)
            }))
        }
        HostOp::OpenMemory { .. } => return None,
    })
}

fn real_of(all: &[Cow], m: usize, p: &[Vec<u8>], slash: bool) -> Result<Vec<u8>, Errno> {
    all.get(m).ok_or(Errno::ENOENT)?.real(p, slash)
}

/// The cow path a changing op names: a path, or a guest's fd whose file is a cow file.
fn changed(all: &[Cow], a: &HostTarget) -> Option<(usize, RelPath, bool)> {
    if a.magic {
        // A file the guest holds open for writing is never a lower file (opening one for
        // writing copies it up): the op acts on it as it is (tar's fchown and fchmod).
        if let Some((tid, fd)) = crate::perform::proc_fd(&a.path)
            && let Ok(file) = crate::perform::guest_file(tid, fd)
            && sys::get_fl(file.as_raw_fd()).is_ok_and(|fl| fl & libc::O_ACCMODE != libc::O_RDONLY)
        {
            return None;
        }
        return fd_target(all, a).map(|(m, p)| (m, p, false));
    }
    split(&a.path)
}

/// A change of an existing entry's metadata (or data): copied up first, then the guest's
/// call made on the upper file.
fn modify(c: &mut Cow, m: usize, p: &[Vec<u8>], slash: bool, data: bool, op: impl FnOnce(HostTarget) -> HostOp) -> Rewritten {
    match c.merged(p) {
        Err(e) => return Rewritten::Done(Err(e)),
        Ok(None) => return Rewritten::Done(Err(Errno::ENOENT)),
        Ok(Some(_)) => {}
    }
    match c.prepare(&Change::Modify { path: p.to_vec(), data }) {
        Ok(_) => Rewritten::Op(op(at(c.upper_path(p, slash))), After { m, made: None, rest: Vec::new() }),
        Err(e) => Rewritten::Done(Err(e)),
    }
}

/// A new entry: the directories on the way copied up, a whiteout there taken away; the
/// guest's call makes it in the upper layer.
fn create(c: &mut Cow, m: usize, p: &[Vec<u8>], kind: Kind, op: impl FnOnce(Vec<u8>) -> HostOp) -> Rewritten {
    let r = (|| {
        if p.is_empty() {
            // The mount's root exists.
            return Err(Errno::EEXIST);
        }
        check_new_name(p)?;
        c.parent_ok(p)?;
        if c.merged(p)?.is_some() {
            return Err(Errno::EEXIST);
        }
        may_change(c, &parent(p).unwrap_or_default(), None)?;
        c.prepare(&Change::Create { path: p.to_vec(), kind })
    })();
    match r {
        Ok(rest) => Rewritten::Op(op(c.upper_path(p, false)), After { m, made: Some((p.to_vec(), kind)), rest }),
        Err(e) => Rewritten::Done(Err(e)),
    }
}

/// `unlink`/`rmdir`: made entirely by the monitor, once the guest may.
fn remove(c: &mut Cow, p: &[Vec<u8>], dir: bool) -> Result<u64, Errno> {
    c.parent_ok(p)?;
    let kind = c.merged(p)?.ok_or(Errno::ENOENT)?;
    if !dir && kind == Kind::Dir {
        return Err(Errno::EISDIR);
    }
    if dir && kind != Kind::Dir {
        return Err(Errno::ENOTDIR);
    }
    may_change(c, &parent(p).unwrap_or_default(), Some(p))?;
    // A whiteout's name must fit (checked before anything is removed).
    if p.last().is_some_and(|n| n.len() + store::WHITEOUT_PREFIX.len() > 255) {
        return Err(Errno::ENAMETOOLONG);
    }
    c.prepare(&Change::Remove { path: p.to_vec(), dir }).map(|_| 0)
}

fn rename(c: &mut Cow, from: &[Vec<u8>], to: &[Vec<u8>], flags: u32) -> Result<u64, Errno> {
    const NOREPLACE: u32 = 1;
    const EXCHANGE: u32 = 2;
    if flags == EXCHANGE {
        return exchange(c, from, to);
    }
    if flags & !NOREPLACE != 0 {
        // RENAME_WHITEOUT is not made in a cow view.
        return Err(Errno::EINVAL);
    }
    c.parent_ok(from)?;
    c.parent_ok(to)?;
    c.merged(from)?.ok_or(Errno::ENOENT)?;
    check_new_name(to)?;
    may_change(c, &parent(from).unwrap_or_default(), Some(from))?;
    let victim = c.merged(to)?.map(|_| to);
    may_change(c, &parent(to).unwrap_or_default(), victim)?;
    if from.last().is_some_and(|n| n.len() + store::WHITEOUT_PREFIX.len() > 255) {
        return Err(Errno::ENAMETOOLONG);
    }
    c.prepare(&Change::Rename { from: from.to_vec(), to: to.to_vec(), noreplace: flags & NOREPLACE != 0 }).map(|_| 0)
}

/// `RENAME_EXCHANGE`: both entries entirely copied up, exchanged in the upper layer, and a
/// directory among them marked opaque (all it holds is in the upper layer now).
fn exchange(c: &mut Cow, a: &[Vec<u8>], b: &[Vec<u8>]) -> Result<u64, Errno> {
    c.parent_ok(a)?;
    c.parent_ok(b)?;
    let ka = c.merged(a)?.ok_or(Errno::ENOENT)?;
    let kb = c.merged(b)?.ok_or(Errno::ENOENT)?;
    if a.is_empty() || b.is_empty() {
        return Err(Errno::EBUSY);
    }
    if a == b {
        return Ok(0);
    }
    // One inside the other (the kernel's checks, in its order).
    if a.starts_with(b) || b.starts_with(a) {
        return Err(Errno::EINVAL);
    }
    may_change(c, &parent(a).unwrap_or_default(), Some(a))?;
    may_change(c, &parent(b).unwrap_or_default(), Some(b))?;
    c.copy_tree(a)?;
    c.copy_tree(b)?;
    let (adir, aname) = c.upper_parent(a)?;
    let (bdir, bname) = c.upper_parent(b)?;
    sys::renameat2(adir.as_raw_fd(), aname, bdir.as_raw_fd(), bname, EXCHANGE_FLAG).map_err(errno)?;
    let hold: RelPath = vec![b"\0".to_vec()];
    c.index.rename(a, &hold);
    c.index.rename(b, a);
    c.index.rename(&hold, b);
    for (p, k) in [(a, kb), (b, ka)] {
        if k == Kind::Dir {
            c.execute(&Action::Opaque(p.to_vec()))?;
        }
    }
    Ok(0)
}

const EXCHANGE_FLAG: u32 = 2;

fn link_names(c: &mut Cow, from: &[Vec<u8>], to: &[Vec<u8>]) -> Result<u64, Errno> {
    c.parent_ok(from)?;
    c.parent_ok(to)?;
    check_new_name(to)?;
    may_change(c, &parent(to).unwrap_or_default(), None)?;
    c.prepare(&Change::Link { from: from.to_vec(), to: to.to_vec() }).map(|_| 0)
}

/// Whether the calling thread (with the guest's credentials) may write the merged file `p`.
fn may_write(c: &Cow, p: &[Vec<u8>]) -> Result<(), Errno> {
    let real = c.real(p, false)?;
    let fd = probe(&real, 0)?;
    sys::faccess_empty(fd.as_raw_fd(), libc::W_OK as u32, libc::AT_EACCESS as u32).map_err(errno)
}

/// Whether the calling thread may add or remove names in merged directory `dir` (write and
/// search permission; in a sticky directory, only its own entries unless it owns `dir`).
fn may_change(c: &Cow, dir: &[Vec<u8>], victim: Option<&[Vec<u8>]>) -> Result<(), Errno> {
    let real = c.real(dir, false)?;
    let fd = probe(&real, libc::O_DIRECTORY)?;
    sys::faccess_empty(fd.as_raw_fd(), (libc::W_OK | libc::X_OK) as u32, libc::AT_EACCESS as u32).map_err(errno)?;
    let st = sys::fstat_bytes(fd.as_raw_fd()).map_err(errno)?;
    if let Some(v) = victim
        && field(&st, 24) & libc::S_ISVTX != 0
    {
        let fsuid = sys::setfsuid(u32::MAX);
        let vreal = c.real(v, false)?;
        let vfd = probe(&vreal, libc::O_NOFOLLOW)?;
        let vst = sys::fstat_bytes(vfd.as_raw_fd()).map_err(errno)?;
        if fsuid != 0 && fsuid != field(&st, 28) && fsuid != field(&vst, 28) {
            return Err(Errno::EPERM);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Listings.

/// Merged listings being read: a snapshot taken when a guest reads a directory from its
/// start (as overlayfs caches a merged directory per open file), and the cursor in the
/// guest's open file's position: `(slot + 1) << 20 | index`.
#[derive(Default)]
struct Snapshots {
    slots: Vec<Option<Arc<Vec<DirEntry>>>>,
    next: usize,
}

const SLOTS: usize = 256;
const INDEX_BITS: u32 = 20;

impl Snapshots {
    fn take(&mut self, list: Vec<DirEntry>) -> usize {
        if self.slots.len() < SLOTS {
            self.slots.resize(SLOTS, None);
        }
        let s = self.next % SLOTS;
        self.next = self.next.wrapping_add(1);
        self.slots[s] = Some(Arc::new(list));
        s
    }
}

fn getdents(c: &mut Cow, p: &[Vec<u8>], file: &OwnedFd, count: u64, legacy: bool, edit: &viewos_core::Listing) -> Result<Vec<u8>, Errno> {
    let pos = sys::tell(file.as_raw_fd()).map_err(errno)?;
    let (slot, from) = match (pos >> INDEX_BITS) as usize {
        0 => (None, 0),
        s => (Some(s - 1), (pos & ((1 << INDEX_BITS) - 1)) as usize),
    };
    let s = match slot.filter(|&s| c.snaps.slots.get(s).is_some_and(Option::is_some)) {
        Some(s) => s,
        // From the start, or a snapshot since dropped: the listing as it is now.
        None => {
            let l = c.listing(p)?;
            c.snaps.take(l)
        }
    };
    serve(c, s, from, file, count, legacy, edit, pos == 0)
}

#[allow(clippy::too_many_arguments)]
fn serve(c: &mut Cow, s: usize, from: usize, file: &OwnedFd, count: u64, legacy: bool, edit: &viewos_core::Listing, first: bool) -> Result<Vec<u8>, Errno> {
    let list = c.snaps.slots[s].clone().ok_or(Errno::EIO)?;
    let cap = count.min(1 << 20) as usize;
    let cookie = |i: usize| ((s as u64 + 1) << INDEX_BITS) | (i as u64).min((1 << INDEX_BITS) - 1);
    let mut data = Vec::new();
    let mut next = from;
    for (i, (name, ino, t)) in list.iter().enumerate().skip(from) {
        let rec = viewos_core::hostop::dirent(*ino, cookie(i + 1), name, *t, legacy);
        if data.len() + rec.len() > cap {
            if data.is_empty() {
                return Err(Errno::EINVAL);
            }
            break;
        }
        data.extend_from_slice(&rec);
        next = i + 1;
    }
    if data.is_empty() {
        // The end: the snapshot is no longer needed (a seek back rebuilds it).
        c.snaps.slots[s] = None;
    }
    let shown = edit.apply_on(&data, first, cap as u64, legacy, None).unwrap_or(data);
    sys::seek(file.as_raw_fd(), cookie(next)).map_err(errno)?;
    Ok(shown)
}

// ---------------------------------------------------------------------------------------
// `viewos cow status|commit STORE`.

/// A store opened for the commands: its layers, read-only.
pub struct Store {
    cow: Cow,
}

impl Store {
    pub fn open(store: &Path) -> Result<Store, String> {
        let lower = read_meta(store)?;
        let cow = open_layers(&lower, store).map_err(|e| format!("{}: {e}", store.display()))?;
        Ok(Store { cow })
    }

    pub fn lower(&self) -> String {
        String::from_utf8_lossy(&self.cow.lower).into_owned()
    }

    /// `A path`, `M path`, `D path` lines, in path order.
    pub fn status(&self) -> Vec<String> {
        viewos_cow::status(&self.cow)
            .into_iter()
            .map(|(p, s)| {
                let letter = match s {
                    Status::Added => 'A',
                    Status::Modified => 'M',
                    Status::Deleted => 'D',
                };
                format!("{letter} {}", String::from_utf8_lossy(&rel(&p)))
            })
            .collect()
    }

    /// The commit's steps, as lines.
    pub fn plan(&self) -> Vec<String> {
        viewos_cow::commit(&self.cow).iter().map(describe).collect()
    }

    /// Applies the changes to the real directory, then empties the store: the view and the
    /// real directory are then the same. Stops at the first error (what was done stays).
    pub fn commit(&mut self, mut progress: impl FnMut(&str)) -> Result<(), String> {
        let steps = viewos_cow::commit(&self.cow);
        // Staged first: a metadata-only copy gets its data while the lower file is there.
        for step in &steps {
            if let Commit::Stage(p) = step
                && self.cow.index.metacopy(p)
            {
                progress(&describe(step));
                let cow = &mut self.cow;
                let (dir, _) = cow.upper_parent(p).map_err(|e| format!("{}: {e}", describe(step)))?;
                keeping_times(&dir, || cow.fill(p)).map_err(|e| format!("{}: {e}", describe(step)))?;
            }
        }
        let c = &self.cow;
        // Directories get their metadata again at the end, deepest first: placing what
        // they hold changed their times.
        let mut dirs: Vec<RelPath> = vec![Vec::new()];
        for step in &steps {
            progress(&describe(step));
            let r = match step {
                // Every upper copy is complete now: nothing more to keep.
                Commit::Stage(_) => Ok(()),
                Commit::Remove(p) => parent_of(&c.lower_fd, p).and_then(|(d, n)| remove_tree(&d, n)),
                Commit::Mkdir(p) => parent_of(&c.lower_fd, p).and_then(|(d, n)| {
                    sys::mkdirat(d.as_raw_fd(), n, 0o700).map_err(errno)?;
                    dirs.push(p.clone());
                    set_meta_from_upper(c, p)
                }),
                Commit::SetMeta(p) => {
                    dirs.push(p.clone());
                    set_meta_from_upper(c, p)
                }
                Commit::Place(p) => place(c, p),
            };
            r.map_err(|e| format!("{}: {e}", describe(step)))?;
        }
        dirs.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in &dirs {
            set_meta_from_upper(c, p).map_err(|e| format!("setmeta {}: {e}", String::from_utf8_lossy(&rel(p))))?;
        }
        // Every change is in the real directory now: the store starts again empty.
        // (The view's DIR keeps the times it showed, which the real DIR now has too.)
        let top = beneath(&c.upper_fd, &[], libc::O_RDONLY | libc::O_DIRECTORY).map_err(|e| e.to_string())?;
        keeping_times(&c.upper_fd, || {
            for (n, _, _) in read_dir(&top)? {
                if !dot(&n) {
                    remove_tree(&top, &n)?;
                }
            }
            Ok(())
        })
        .map_err(|e| format!("emptying the store: {e}"))
    }
}

fn describe(step: &Commit) -> String {
    let (what, p) = match step {
        Commit::Stage(p) => ("stage", p),
        Commit::Remove(p) => ("remove", p),
        Commit::Mkdir(p) => ("mkdir", p),
        Commit::SetMeta(p) => ("setmeta", p),
        Commit::Place(p) => ("place", p),
    };
    format!("{what} {}", String::from_utf8_lossy(&rel(p)))
}

fn parent_of<'p>(root: &OwnedFd, p: &'p [Vec<u8>]) -> Result<(OwnedFd, &'p [u8]), Errno> {
    let (name, dir) = p.split_last().ok_or(Errno::EBUSY)?;
    Ok((beneath(root, dir, libc::O_PATH | libc::O_DIRECTORY)?, name))
}

fn set_meta_from_upper(c: &Cow, p: &[Vec<u8>]) -> Result<(), Errno> {
    let src = beneath(&c.upper_fd, p, libc::O_PATH | libc::O_NOFOLLOW)?;
    let st = sys::fstat_bytes(src.as_raw_fd()).map_err(errno)?;
    let dst = beneath(&c.lower_fd, p, libc::O_PATH | libc::O_NOFOLLOW)?;
    copy_meta(Some(&src), &dst, &st);
    Ok(())
}

/// Copies the upper file or symlink at `p` into the lower tree under a temporary name,
/// then renames it into place.
fn place(c: &Cow, p: &[Vec<u8>]) -> Result<(), Errno> {
    let src = beneath(&c.upper_fd, p, libc::O_PATH | libc::O_NOFOLLOW)?;
    let st = sys::fstat_bytes(src.as_raw_fd()).map_err(errno)?;
    let (dir, name) = parent_of(&c.lower_fd, p)?;
    let tmp = [b".viewos-commit-".as_slice(), name].concat();
    let _ = sys::unlinkat(dir.as_raw_fd(), &tmp, 0);
    match sys::stat_type(&st) {
        libc::S_IFREG => {
            let data = sys::reopen(src.as_raw_fd(), libc::O_RDONLY).map_err(errno)?;
            let out = sys::openat2(dir.as_raw_fd(), &tmp, (libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC) as u64, 0o600, 0x04).map_err(errno)?;
            copy_data(&data, &out, word(&st, 48) as u64)?;
            copy_meta(Some(&data), &out, &st);
        }
        libc::S_IFLNK => {
            let target = sys::readlinkat(src.as_raw_fd(), b"", libc::PATH_MAX as usize).map_err(errno)?;
            sys::symlinkat(&target, dir.as_raw_fd(), &tmp).map_err(errno)?;
            let made = sys::openat2(dir.as_raw_fd(), &tmp, (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64, 0, 0).map_err(errno)?;
            copy_meta(None, &made, &st);
        }
        t => {
            sys::mknodat(dir.as_raw_fd(), &tmp, t | (field(&st, 24) & 0o7777), word(&st, 40) as u64).map_err(errno)?;
            let made = sys::openat2(dir.as_raw_fd(), &tmp, (libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64, 0, 0).map_err(errno)?;
            copy_meta(None, &made, &st);
        }
    }
    sys::renameat2(dir.as_raw_fd(), &tmp, dir.as_raw_fd(), name, 0).map_err(errno)
}
