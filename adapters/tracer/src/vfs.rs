//! The monitor's own filesystems (`--mount tmpfs:DST`), served at the "host" paths
//! `/proc/viewos-vfs/N/...` ([`VIRTUAL_ROOT`]) that the path view hands the adapter.
//!
//! The namespace (names, directories, links, symlinks, device nodes, xattrs) is a
//! [`MemFs`] (the pure crate). Every inode also has a memfd of its own, made by the monitor:
//! - a regular file's memfd holds its data and its mode, owner and times: a guest's open is
//!   a fresh open file description of it (a reopen through `/proc/self/fd`, as the guest,
//!   so the kernel checks permissions and does `O_TRUNC`/`O_APPEND`), installed in the
//!   guest's table. Reads, writes, `mmap`, `lseek`, locks, `dup`, fork, `SCM_RIGHTS` on it
//!   are the kernel's own, never stopped;
//! - a directory's memfd is the object of its open fds: `getdents` on one is served from
//!   the memfs, its cookie kept in the open file's own position (so `rewinddir`, `seekdir`
//!   and `telldir` are native `lseek`s);
//! - for every inode, the memfd's inode number and device are its `st_ino` and `st_dev`,
//!   so they agree with what an unstopped `fstat` shows.
//!
//! A guest's fd is recognised as virtual by the object behind it (`pidfd_getfd`, `fstat`:
//! the shm device and an inode number of ours), never by its number.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use viewos_core::hostop::{VIRTUAL_ROOT, is_virtual};
use viewos_core::{Errno, GuestAddr, GuestMem, HostOp, HostTarget, Listing, XattrCall};
use viewos_memfs::{Cred, Ino, Kind, MemFs};

use crate::perform::proc_fd;
use crate::sys::{self, errno};

/// Whether any virtual filesystem exists (checked before anything else is looked at).
static ACTIVE: AtomicBool = AtomicBool::new(false);
static MOUNTS: Mutex<Mounts> = Mutex::new(Mounts { list: Vec::new() });

const TMPFS_MAGIC: i64 = 0x0102_1994;
const MEMFD_NAME: &[u8] = b"viewos-vfs:";

struct Mounts {
    list: Vec<Mount>,
}

/// An inode's memfd and its inode number.
struct Node {
    fd: OwnedFd,
    ino: u64,
    /// Its name in the private tmpfs (a FIFO's or socket's), to remove with the inode.
    name: Option<String>,
}

struct Mount {
    fs: MemFs,
    /// Where the inodes' backing files are made: a private tmpfs of the mount's size (its
    /// root directory), or, where no user namespace can make one, memfds (`None`).
    store: Option<OwnedFd>,
    /// `st_dev` of the backing files.
    dev: u64,
    nodes: HashMap<Ino, Node>,
    by_ino: HashMap<u64, Ino>,
    /// The `size=` limit in bytes.
    size: u64,
    /// The last host path of files whose last name went (by memfd inode number), for
    /// `/proc/PID/fd/N` of a guest that still has one open: `PATH (deleted)`, as the
    /// kernel shows it. Bounded: the oldest are forgotten.
    gone: HashMap<u64, Vec<u8>>,
    /// Sockets bound in it: the kernel's path of each, and the host path it was bound to
    /// (what `getsockname` reports, even after the name goes).
    bound: HashMap<Vec<u8>, Vec<u8>>,
}

const GONE_MAX: usize = 4096;

/// Options of `--mount tmpfs:DST[:OPTS]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TmpfsOptions {
    pub size: u64,
    pub mode: u32,
}

impl Default for TmpfsOptions {
    fn default() -> Self {
        TmpfsOptions { size: 64 << 20, mode: 0o1777 }
    }
}

impl TmpfsOptions {
    /// `size=64M,mode=1777` (sizes with k, m, g suffixes; `%` of memory is not taken).
    pub fn parse(opts: &str) -> Result<TmpfsOptions, String> {
        let mut o = TmpfsOptions::default();
        for kv in opts.split(',').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| format!("'{kv}': expected NAME=VALUE"))?;
            match k {
                "size" => {
                    let (num, mul) = match v.char_indices().last() {
                        Some((i, c)) if c.is_ascii_alphabetic() => (&v[..i], match c.to_ascii_lowercase() {
                            'k' => 1u64 << 10,
                            'm' => 1 << 20,
                            'g' => 1 << 30,
                            _ => return Err(format!("size={v}: unknown suffix '{c}' (k, m or g)")),
                        }),
                        _ => (v, 1),
                    };
                    let n: u64 = num.parse().map_err(|_| format!("size={v}: not a number"))?;
                    o.size = n.checked_mul(mul).filter(|&s| s >= 4096).ok_or_else(|| format!("size={v}: out of range (at least 4k)"))?;
                }
                "mode" => {
                    o.mode = u32::from_str_radix(v, 8).ok().filter(|m| *m <= 0o7777).ok_or_else(|| format!("mode={v}: not an octal mode"))?;
                }
                _ => return Err(format!("unknown option '{k}' (size, mode)")),
            }
        }
        Ok(o)
    }
}

pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// The calling thread's filesystem credentials (taken on from the guest for this call).
fn cred() -> Cred {
    let uid = sys::setfsuid(u32::MAX);
    let gid = sys::setfsgid(u32::MAX);
    Cred { uid, gid, groups: sys::thread_groups(), privileged: uid == 0 }
}

/// Makes a new, empty filesystem owned by the monitor's user; its host path. Must be
/// called before the monitor has threads (see [`sys::private_tmpfs`]).
pub fn mount(opts: TmpfsOptions) -> std::io::Result<Vec<u8>> {
    let mut all = MOUNTS.lock().expect("vfs lock");
    let id = all.list.len();
    // One fd per inode: as many as the hard limit allows (the guest keeps its own limit).
    sys::raise_nofile();
    // SAFETY: no arguments.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let fs = MemFs::new(0, opts.size, opts.mode, uid, gid, now());
    let root = fs.root();
    // The backing files' own filesystem enforces the size limit on every write (ENOSPC,
    // as a tmpfs does), whoever makes it and however (write, mmap, fallocate).
    let store = match sys::private_tmpfs(opts.size, 0o1777) {
        Ok(fd) => Some(fd),
        Err(e) => {
            eprintln!("viewos: note: --mount tmpfs: {e}; file data goes to memfds and the size limit is not enforced on writes");
            None
        }
    };
    let mut m = Mount { fs, store, dev: 0, nodes: HashMap::new(), by_ino: HashMap::new(), size: opts.size, gone: HashMap::new(), bound: HashMap::new() };
    m.attach(id, root).map_err(|e| std::io::Error::from_raw_os_error(i32::from(e.0)))?;
    let st = sys::fstat_bytes(m.nodes[&root].fd.as_raw_fd())?;
    m.dev = sys::stat_dev(&st);
    all.list.push(m);
    ACTIVE.store(true, Ordering::Relaxed);
    Ok(mount_path(id))
}

impl Mount {
    /// Gives inode `ino` its memfd.
    fn attach(&mut self, id: usize, ino: Ino) -> Result<(), Errno> {
        let name = [MEMFD_NAME, format!("{id}:{}", ino.0).as_bytes()].concat();
        let mut named = None;
        let fd = match &self.store {
            // A FIFO is a FIFO of the private tmpfs (the only name it has there is ours).
            Some(root) if self.fs.kind(ino) == Some(Kind::Fifo) => {
                let fifo = format!("fifo-{}", ino.0);
                named = Some(fifo.clone());
                sys::mknodat(root.as_raw_fd(), fifo.as_bytes(), libc::S_IFIFO | 0o600, 0).map_err(errno)?;
                let fd = sys::openat2(root.as_raw_fd(), fifo.as_bytes(), (libc::O_PATH | libc::O_CLOEXEC) as u64, 0, 0).map_err(errno)?;
                // Open to all: the namespace's mode is checked before any open of it.
                sys::fchmod_empty(fd.as_raw_fd(), 0o666, 0).map_err(errno)?;
                fd
            }
            _ => self.backing(&name)?,
        };
        let st = sys::fstat_bytes(fd.as_raw_fd()).map_err(errno)?;
        let st_ino = sys::stat_ino(&st);
        self.by_ino.insert(st_ino, ino);
        self.nodes.insert(ino, Node { fd, ino: st_ino, name: named });
        Ok(())
    }

    /// A regular file's backing file made for its creator's open (`flags`: its access mode
    /// and status flags; `mode`: the file's), in the private tmpfs: that open file, once the
    /// inode has its `O_PATH` copy. `gid`: the creator's; the file takes the namespace's
    /// group (a set-group-ID directory's).
    fn create_backing(&mut self, ino: Ino, flags: i32, mode: u32, gid: u32) -> Result<OwnedFd, Errno> {
        let root = self.store.as_ref().ok_or(Errno::EOPNOTSUPP)?;
        let file = sys::tmpfile_with(root.as_raw_fd(), flags, mode).map_err(|e| match errno(e) {
            Errno::EMFILE | Errno::ENFILE => Errno::ENOSPC,
            other => other,
        })?;
        let fd = reopen(file.as_raw_fd(), libc::O_PATH)?;
        let want = self.fs.stat(ino)?.gid;
        if want != gid {
            let _ = sys::fchown_empty(fd.as_raw_fd(), u32::MAX, want);
        }
        let st = sys::fstat_bytes(fd.as_raw_fd()).map_err(errno)?;
        let st_ino = sys::stat_ino(&st);
        self.by_ino.insert(st_ino, ino);
        self.nodes.insert(ino, Node { fd, ino: st_ino, name: None });
        Ok(file)
    }

    /// A new backing file (mode 0777, as a memfd's), named `name` if it is a memfd. Out of
    /// fds, the filesystem is out of inodes: `ENOSPC`.
    fn backing(&self, name: &[u8]) -> Result<OwnedFd, Errno> {
        self.new_backing(name).map_err(|e| if matches!(e, Errno::EMFILE | Errno::ENFILE) { Errno::ENOSPC } else { e })
    }

    fn new_backing(&self, name: &[u8]) -> Result<OwnedFd, Errno> {
        match &self.store {
            Some(root) => {
                let fd = sys::tmpfile_in(root.as_raw_fd(), 0o600).map_err(errno)?;
                sys::fchmod_empty(fd.as_raw_fd(), 0o777, 0).map_err(errno)?;
                // Kept as an O_PATH fd: a writable one would make `execve` of the file
                // ETXTBSY for as long as it exists.
                reopen(fd.as_raw_fd(), libc::O_PATH)
            }
            None => sys::memfd(name).map_err(errno),
        }
    }

    /// Drops the memfd of an inode the filesystem freed (open guest fds keep theirs);
    /// `last` is the host path its last name had.
    fn forget_if_gone(&mut self, ino: Ino, last: &[u8]) {
        if self.fs.kind(ino).is_none()
            && let Some(n) = self.nodes.remove(&ino)
        {
            self.by_ino.remove(&n.ino);
            if let (Some(root), Some(name)) = (&self.store, &n.name) {
                // A FIFO's or socket's name in the private tmpfs (nothing else has one there).
                let _ = sys::unlinkat(root.as_raw_fd(), name.as_bytes(), 0);
            }
            if self.gone.len() >= GONE_MAX {
                self.gone.clear();
            }
            self.gone.insert(n.ino, last.to_vec());
        }
    }

    /// Walks `comps` from the root: `ELOOP` at a symlink on the way (the view resolved
    /// every symlink: one met now was made after the lookup), or at the end unless `nofollow`.
    fn walk(&self, comps: &[&[u8]], nofollow: bool, cred: &Cred) -> Result<Ino, Errno> {
        let mut cur = self.fs.root();
        for c in comps {
            if self.fs.kind(cur) == Some(Kind::Symlink) {
                return Err(Errno::ELOOP);
            }
            cur = self.fs.lookup(cur, c, cred)?;
        }
        if !nofollow && self.fs.kind(cur) == Some(Kind::Symlink) {
            return Err(Errno::ELOOP);
        }
        Ok(cur)
    }

    fn memfd(&self, ino: Ino) -> Result<i32, Errno> {
        self.nodes.get(&ino).map(|n| n.fd.as_raw_fd()).ok_or(Errno::ESTALE)
    }

    fn is_file(&self, ino: Ino) -> bool {
        self.fs.kind(ino) == Some(Kind::File)
    }

    fn st_ino(&self, ino: Ino) -> u64 {
        self.nodes.get(&ino).map_or(ino.0, |n| n.ino)
    }

    /// `struct stat` of `ino`: a file's from its memfd, with the link count of the
    /// namespace; other inodes' from the namespace, with their memfd's device and number.
    fn stat(&self, ino: Ino) -> Result<[u8; 144], Errno> {
        let s = self.fs.stat(ino)?;
        let mut st = sys::fstat_bytes(self.memfd(ino)?).map_err(errno)?;
        let put = |st: &mut [u8; 144], at: usize, v: &[u8]| st[at..at + v.len()].copy_from_slice(v);
        put(&mut st, 16, &u64::from(s.nlink).to_le_bytes());
        if !self.is_file(ino) {
            put(&mut st, 24, &s.mode.to_le_bytes());
            put(&mut st, 28, &s.uid.to_le_bytes());
            put(&mut st, 32, &s.gid.to_le_bytes());
            put(&mut st, 40, &s.rdev.to_le_bytes());
            put(&mut st, 48, &s.size.to_le_bytes());
            put(&mut st, 64, &s.blocks.to_le_bytes());
            for (at, t) in [(72, s.atime), (88, s.mtime), (104, s.ctime)] {
                put(&mut st, at, &(t / 1_000_000_000).to_le_bytes());
                put(&mut st, at + 8, &(t % 1_000_000_000).to_le_bytes());
            }
        }
        Ok(st)
    }

    /// `struct statx` of `ino`, built as [`Mount::stat`].
    fn statx(&self, ino: Ino, flags: u32, mask: u32) -> Result<[u8; 256], Errno> {
        let s = self.fs.stat(ino)?;
        let mut st = sys::statx_bytes(self.memfd(ino)?, flags, mask).map_err(errno)?;
        let put = |st: &mut [u8; 256], at: usize, v: &[u8]| st[at..at + v.len()].copy_from_slice(v);
        put(&mut st, 16, &s.nlink.to_le_bytes());
        if !self.is_file(ino) {
            put(&mut st, 20, &s.uid.to_le_bytes());
            put(&mut st, 24, &s.gid.to_le_bytes());
            put(&mut st, 28, &(s.mode as u16).to_le_bytes());
            put(&mut st, 40, &s.size.to_le_bytes());
            put(&mut st, 48, &s.blocks.to_le_bytes());
            for (at, t) in [(64, s.atime), (80, s.btime), (96, s.ctime), (112, s.mtime)] {
                put(&mut st, at, &((t / 1_000_000_000) as i64).to_le_bytes());
                put(&mut st, at + 8, &((t % 1_000_000_000) as u32).to_le_bytes());
            }
            put(&mut st, 128, &(((s.rdev >> 8) & 0xfff) as u32 | ((s.rdev >> 32) as u32 & !0xfff)).to_le_bytes());
            put(&mut st, 132, &((s.rdev & 0xff) as u32 | ((s.rdev >> 12) as u32 & !0xff)).to_le_bytes());
        }
        Ok(st)
    }

    /// Bytes of file data in use (what the memfds hold).
    fn used(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|(i, _)| self.is_file(**i))
            .filter_map(|(_, n)| sys::fstat_bytes(n.fd.as_raw_fd()).ok())
            .map(|st| u64::from_le_bytes(st[64..72].try_into().expect("144 bytes")) * 512)
            .sum()
    }
}

/// The host path of mount `m`'s root.
fn mount_path(m: usize) -> Vec<u8> {
    [VIRTUAL_ROOT, format!("/{m}").as_bytes()].concat()
}

/// A path of ours, split: the mount, its components, and whether it ended with `/`.
fn split(path: &[u8]) -> Option<(usize, Vec<&[u8]>, bool)> {
    if !is_virtual(path) {
        return None;
    }
    let rest = &path[VIRTUAL_ROOT.len() + 1..];
    let mut parts = rest.split(|&b| b == b'/');
    let id = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let comps = parts.filter(|c| !c.is_empty() && *c != b".").collect();
    Some((id, comps, path.ends_with(b"/")))
}

/// `path` without trailing slashes.
fn trim(path: &[u8]) -> &[u8] {
    let n = path.len() - path.iter().rev().take_while(|&&b| b == b'/').count();
    &path[..n.max(1)]
}


impl Mounts {
    /// The mount and inode behind an open file of the monitor's (a guest's, duplicated).
    fn of_file(&self, fd: i32) -> Option<(usize, Ino)> {
        let st = sys::fstat_bytes(fd).ok()?;
        let dev = sys::stat_dev(&st);
        let st_ino = sys::stat_ino(&st);
        self.list.iter().enumerate().filter(|(_, mt)| mt.dev == dev).find_map(|(m, mt)| mt.by_ino.get(&st_ino).map(|&i| (m, i)))
    }

    /// The object `at` names, if it is ours: `None` for a real file.
    fn node(&self, at: &HostTarget, guest: Option<&OwnedFd>, nofollow: bool) -> Option<Result<(usize, Ino), Errno>> {
        if at.magic {
            return self.of_file(guest?.as_raw_fd()).map(Ok);
        }
        let (m, comps, slash) = split(&at.path)?;
        let Some(mt) = self.list.get(m) else { return Some(Err(Errno::ENOENT)) };
        Some(mt.walk(&comps, nofollow && !slash, &cred()).and_then(|ino| {
            if slash && mt.fs.kind(ino) != Some(Kind::Dir) { Err(Errno::ENOTDIR) } else { Ok((m, ino)) }
        }))
    }

    /// A guest's regular file of ours that has no name in the namespace (made with
    /// `O_TMPFILE`): its mount, an `O_PATH` fd of it, its `struct stat`.
    fn unnamed(&self, at: &HostTarget, guest: Option<&OwnedFd>) -> Option<(usize, OwnedFd, [u8; 144])> {
        let file = guest.filter(|_| at.magic)?;
        let st = sys::fstat_bytes(file.as_raw_fd()).ok()?;
        let dev = sys::stat_dev(&st);
        let m = self.list.iter().position(|mt| mt.dev == dev)?;
        if sys::stat_type(&st) != libc::S_IFREG {
            return None;
        }
        Some((m, reopen(file.as_raw_fd(), libc::O_PATH).ok()?, st))
    }

    /// The directory `at` is to be made or removed in, and the final name.
    fn parent<'a>(&self, at: &'a HostTarget) -> Option<Result<Place<'a>, Errno>> {
        let (m, mut comps, _) = split(&at.path)?;
        let Some(mt) = self.list.get(m) else { return Some(Err(Errno::ENOENT)) };
        // The mount's root itself: it is a mount point of the view.
        let Some(name) = comps.pop() else { return Some(Err(Errno::EBUSY)) };
        Some(mt.walk(&comps, false, &cred()).map(|d| (m, d, name)))
    }
}

/// `lstat` of a path of ours, for the view's resolver. The directory holding the mounts
/// is not one: no walk from a real `/proc` reaches them.
pub fn lstat(path: &[u8]) -> Option<Result<viewos_path::Kind, Errno>> {
    if path == VIRTUAL_ROOT || path.strip_suffix(b"/") == Some(VIRTUAL_ROOT) {
        return Some(Err(Errno::ENOENT));
    }
    if !active() {
        return None;
    }
    let all = MOUNTS.lock().expect("vfs lock");
    let at = HostTarget { path: path.to_vec(), magic: false };
    Some(all.node(&at, None, true)?.map(|(m, ino)| match all.list[m].fs.kind(ino) {
        Some(Kind::Dir) => viewos_path::Kind::Dir,
        Some(Kind::Symlink) => viewos_path::Kind::Symlink,
        _ => viewos_path::Kind::Other,
    }))
}

/// `readlink` of a path of ours, for the view's resolver.
pub fn readlink(path: &[u8]) -> Option<Result<Vec<u8>, Errno>> {
    if !active() {
        return None;
    }
    let all = MOUNTS.lock().expect("vfs lock");
    let at = HostTarget { path: path.to_vec(), magic: false };
    Some(all.node(&at, None, true)?.and_then(|(m, ino)| all.list[m].fs.readlink(ino)))
}

/// Search permission on directory `path` of ours, as `chdir` checks it.
pub fn may_enter(path: &[u8]) -> Result<(), Errno> {
    let all = MOUNTS.lock().expect("vfs lock");
    let at = HostTarget { path: path.to_vec(), magic: false };
    let (m, ino) = all.node(&at, None, false).ok_or(Errno::ENOENT)??;
    let fs = &all.list[m].fs;
    if fs.kind(ino) != Some(Kind::Dir) {
        return Err(Errno::ENOTDIR);
    }
    fs.access(ino, 1, &cred())
}

/// The host path of guest `tid`'s fd `fd` if it is a file of ours (`None`: a real file).
/// An inode without a name anymore has none (`ENOENT`).
pub fn fd_path(tid: i32, fd: i32) -> Option<Result<Vec<u8>, Errno>> {
    let file = crate::perform::guest_file(tid, fd).ok()?;
    let all = MOUNTS.lock().expect("vfs lock");
    let (m, ino) = all.of_file(file.as_raw_fd())?;
    Some(all.list[m].fs.path_of(ino).map(|p| [mount_path(m), p].concat()).ok_or(Errno::ENOENT))
}

/// The kernel's path of socket inode `ino` of mount `mt`: its name in the private tmpfs,
/// reached through the monitor's fd of that tmpfs's root.
fn socket_kernel_path(mt: &Mount, ino: Ino) -> Result<Vec<u8>, Errno> {
    let root = mt.store.as_ref().ok_or(Errno::EOPNOTSUPP)?;
    Ok(format!("/proc/{}/fd/{}/sock-{}", std::process::id(), root.as_raw_fd(), ino.0).into_bytes())
}

/// See `Host::virtual_socket`: for `bind` (`Some(umask)`) the socket inode is made now (its
/// real socket by the guest's bind); else the existing socket's kernel path.
pub fn virtual_socket(host: &[u8], bind: Option<u32>) -> Result<Vec<u8>, Errno> {
    let mut all = MOUNTS.lock().expect("vfs lock");
    let at = HostTarget { path: host.to_vec(), magic: false };
    let cred = cred();
    match bind {
        Some(umask) => {
            let (m, dir, name) = all.parent(&at).ok_or(Errno::ENOENT)??;
            let mt = &mut all.list[m];
            mt.store.as_ref().ok_or(Errno::EOPNOTSUPP)?;
            let ino = match mt.fs.create(dir, name, Kind::Socket, 0o777 & !umask, &cred, now()) {
                Err(Errno::EEXIST) => return Err(Errno::EADDRINUSE),
                r => r?,
            };
            socket_kernel_path(mt, ino)
        }
        None => {
            let (m, ino) = all.node(&at, None, false).ok_or(Errno::ENOENT)??;
            let mt = &all.list[m];
            if mt.fs.kind(ino) != Some(Kind::Socket) {
                return Err(Errno::ECONNREFUSED);
            }
            socket_kernel_path(mt, ino)
        }
    }
}

/// See `Host::socket_bound`.
pub fn socket_bound(host: &[u8], ok: bool) {
    let mut all = MOUNTS.lock().expect("vfs lock");
    let at = HostTarget { path: host.to_vec(), magic: false };
    let Some(Ok((m, dir, name))) = all.parent(&at) else { return };
    let mt = &mut all.list[m];
    let root = Cred::root();
    let Ok(ino) = mt.fs.lookup(dir, name, &root) else { return };
    if mt.fs.kind(ino) != Some(Kind::Socket) || mt.nodes.contains_key(&ino) {
        return;
    }
    let made = ok.then(|| {
        let store = mt.store.as_ref()?;
        sys::openat2(store.as_raw_fd(), format!("sock-{}", ino.0).as_bytes(), (libc::O_PATH | libc::O_CLOEXEC) as u64, 0, 0).ok()
    });
    match made.flatten().and_then(|fd| sys::fstat_bytes(fd.as_raw_fd()).ok().map(|st| (fd, st))) {
        Some((fd, st)) => {
            let st_ino = sys::stat_ino(&st);
            if let Ok(k) = socket_kernel_path(mt, ino) {
                mt.bound.insert(k, trim(host).to_vec());
            }
            mt.by_ino.insert(st_ino, ino);
            mt.nodes.insert(ino, Node { fd, ino: st_ino, name: Some(format!("sock-{}", ino.0)) });
        }
        None => {
            let _ = mt.fs.unlink(dir, name, &root, now());
            mt.forget_if_gone(ino, b"");
        }
    }
}

/// See `Host::virtual_socket_name`: the host path a socket was bound to.
pub fn virtual_socket_name(kernel: &[u8]) -> Option<Vec<u8>> {
    if !active() {
        return None;
    }
    let all = MOUNTS.lock().expect("vfs lock");
    all.list.iter().find_map(|mt| mt.bound.get(kernel).cloned())
}

/// The host path of the file of ours whose backing file is `(dev, ino)` (`PATH (deleted)`
/// once its last name went); `None` for any other file.
pub fn name_of(dev: u64, ino: u64) -> Option<Vec<u8>> {
    if !active() {
        return None;
    }
    let all = MOUNTS.lock().expect("vfs lock");
    let (m, mt) = all.list.iter().enumerate().find(|(_, mt)| mt.dev == dev)?;
    match mt.by_ino.get(&ino) {
        Some(&i) => Some([mount_path(m), mt.fs.path_of(i)?].concat()),
        None => mt.gone.get(&ino).map(|last| [last.as_slice(), b" (deleted)"].concat()),
    }
}

/// The path through which the kernel reaches regular file `host` of ours for `execve`:
/// the monitor's own fd of it (`/proc/MONITOR/fd/N`). `None`: not ours.
pub fn exec_path(host: &[u8]) -> Option<Vec<u8>> {
    // A copy-on-write file: the real file of the layer that shows it.
    if let Some(r) = crate::cow::exec_path(host) {
        return r.ok();
    }
    split(host)?;
    let all = MOUNTS.lock().expect("vfs lock");
    let at = HostTarget { path: host.to_vec(), magic: false };
    let (m, ino) = all.node(&at, None, false)?.ok()?;
    let mt = &all.list[m];
    // Anything else fails in the kernel as it should (EACCES for a directory).
    if !mt.is_file(ino) {
        return None;
    }
    Some(format!("/proc/{}/fd/{}", std::process::id(), mt.memfd(ino).ok()?).into_bytes())
}

/// What `readlink` of magic link `link` (`/proc/PID/fd/N`, `/proc/PID/task/TID/fd/N`)
/// shows when the file is ours: its host path, or `PATH (deleted)` for a file whose last
/// name went. `None`: not ours.
pub fn magic_target(link: &[u8]) -> Option<Vec<u8>> {
    // The object the link leads to (`/proc/PID/fd/N`, `/proc/PID/exe`...).
    let file = sys::openat2(libc::AT_FDCWD, link, (libc::O_PATH | libc::O_CLOEXEC) as u64, 0, 0).ok()?;
    let all = MOUNTS.lock().expect("vfs lock");
    if let Some((m, ino)) = all.of_file(file.as_raw_fd()) {
        let p = all.list[m].fs.path_of(ino)?;
        return Some([mount_path(m), p].concat());
    }
    let st = sys::fstat_bytes(file.as_raw_fd()).ok()?;
    let st_ino = sys::stat_ino(&st);
    let last = all.list.iter().find_map(|m| m.gone.get(&st_ino))?;
    Some([last.as_slice(), b" (deleted)"].concat())
}

/// Whether the name `/proc/TID/fd/N` shows could be one of ours: a memfd of the
/// monitor's, or a file at the root of a private tmpfs (`/#INO (deleted)` for a backing
/// file, `/fifo-N` for a FIFO). The caller checks the object itself.
pub fn maybe_ours(link: &[u8]) -> bool {
    let number = |b: &[u8]| !b.is_empty() && b.iter().all(u8::is_ascii_digit);
    active()
        && (link.strip_prefix(b"/memfd:").is_some_and(|n| n.starts_with(MEMFD_NAME))
            || link.strip_prefix(b"/#").and_then(|r| r.strip_suffix(b" (deleted)")).is_some_and(number)
            || link.strip_prefix(b"/fifo-").is_some_and(number))
}

/// The permission an open with access mode `acc` needs (4 read, 2 write).
fn may_open(acc: i32) -> u32 {
    match acc {
        libc::O_RDONLY => 4,
        libc::O_WRONLY => 2,
        _ => 6,
    }
}

fn reopen(fd: i32, flags: i32) -> Result<OwnedFd, Errno> {
    sys::reopen(fd, flags).map_err(errno)
}

/// Opens `op` (a `HostOp::Open`) if its target is ours: `None` for a real one.
pub fn open(op: &HostOp) -> Option<Result<crate::perform::Opened, Errno>> {
    let HostOp::Open { flags, .. } = op else { return None };
    let fifo_flags = (*flags as i32 & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_DIRECTORY)) | libc::O_CLOEXEC;
    Some(open_with(op, false)?.map(|(file, _, fifo)| {
        if fifo {
            // Its open may wait for a peer: made where that blocks no one else.
            crate::perform::Opened::Fifo { probe: file, flags: fifo_flags }
        } else {
            crate::perform::Opened::Ready(file)
        }
    }))
}

/// The mode of a file just created, to set once the guest has opened it itself (its
/// creator may write a file it makes read-only, but only through the open that made it).
pub struct Pending {
    fd: OwnedFd,
    mode: u32,
}

impl Pending {
    pub fn apply(self) {
        let _ = sys::fchmod_empty(self.fd.as_raw_fd(), self.mode, 0);
    }
}

/// Opens `op` for a guest that will open the file itself through the monitor's fd (at a
/// ptrace stop): a file it creates keeps mode 0777 until [`Pending::apply`].
pub fn open_for_guest(op: &HostOp) -> Option<Result<(OwnedFd, Option<Pending>), Errno>> {
    // A FIFO's probe: the guest's own open of it waits for a peer, as natively.
    Some(open_with(op, true)?.map(|(file, pending, _)| (file, pending)))
}

/// A name to be made or removed: the mount, the directory, the final name.
type Place<'a> = (usize, Ino, &'a [u8]);

/// The open file, the mode to set after the guest's own open, whether it is a FIFO's
/// `O_PATH` probe (to be opened where blocking harms no one).
type Made = (OwnedFd, Option<Pending>, bool);

fn open_with(op: &HostOp, defer: bool) -> Option<Result<Made, Errno>> {
    let HostOp::Open { at, flags, mode, umask, .. } = op else { return None };
    split(&at.path)?;
    let mut all = MOUNTS.lock().expect("vfs lock");
    Some(open_in(&mut all, at, *flags as i32, (*mode as u32) & !*umask & 0o7777, defer))
}

fn open_in(all: &mut Mounts, at: &HostTarget, flags: i32, mode: u32, defer: bool) -> Result<Made, Errno> {
    let cred = cred();
    let (m, comps, slash) = split(&at.path).ok_or(Errno::ENOENT)?;
    let mt = all.list.get_mut(m).ok_or(Errno::ENOENT)?;
    let acc = flags & libc::O_ACCMODE;
    let creating = flags & libc::O_CREAT != 0;
    // What the reopen of a memfd takes of the guest's flags.
    let keep = flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_NOCTTY);
    if flags & libc::O_TMPFILE == libc::O_TMPFILE {
        // An unnamed file in a directory of ours: a backing file not in the namespace until
        // `linkat` gives it a name.
        let dir = mt.walk(&comps, false, &cred)?;
        if mt.fs.kind(dir) != Some(Kind::Dir) {
            return Err(Errno::ENOTDIR);
        }
        mt.fs.access(dir, 3, &cred)?;
        if acc == libc::O_RDONLY {
            return Err(Errno::EINVAL);
        }
        let fd = mt.backing(b"viewos-tmpfile")?;
        let file = reopen(fd.as_raw_fd(), keep & !libc::O_TMPFILE)?;
        if defer {
            return Ok((file, Some(Pending { fd, mode }), false));
        }
        sys::fchmod_empty(fd.as_raw_fd(), mode, 0).map_err(errno)?;
        return Ok((file, None, false));
    }
    let (dir_comps, name) = match comps.split_last() {
        Some((name, dir)) => (dir.to_vec(), Some(*name)),
        None => (Vec::new(), None),
    };
    let dir = mt.walk(&dir_comps, false, &cred)?;
    let found = match name {
        None => Ok(dir),
        Some(n) => mt.fs.lookup(dir, n, &cred),
    };
    let ino = match found {
        Ok(ino) => {
            if creating && flags & libc::O_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            ino
        }
        Err(Errno::ENOENT) if creating && name.is_some() => {
            if slash || flags & libc::O_DIRECTORY != 0 {
                return Err(Errno::EISDIR);
            }
            let name = name.expect("checked");
            let ino = mt.fs.create(dir, name, Kind::File, mode, &cred, now())?;
            if !defer && acc != libc::O_RDONLY && mt.store.is_some() {
                // The guest's own open file is the backing file itself, made with the
                // guest's access mode and the file's mode (its creator may write a file it
                // makes read-only); the monitor keeps an O_PATH copy.
                match mt.create_backing(ino, keep & (acc | libc::O_APPEND | libc::O_NONBLOCK | libc::O_SYNC | libc::O_DSYNC | libc::O_DIRECT | libc::O_NOATIME), mode, cred.gid) {
                    Ok(file) => return Ok((file, None, false)),
                    Err(e) => {
                        let _ = mt.fs.unlink(dir, name, &Cred::root(), now());
                        mt.forget_if_gone(ino, b"");
                        return Err(e);
                    }
                }
            }
            if let Err(e) = mt.attach(m, ino) {
                let _ = mt.fs.unlink(dir, name, &Cred::root(), now());
                mt.forget_if_gone(ino, b"");
                return Err(e);
            }
            let fd = mt.memfd(ino)?;
            // Opened before its mode is set: its creator may write a file it makes read-only.
            let file = reopen(fd, keep)?;
            let gid = mt.fs.stat(ino)?.gid;
            if gid != cred.gid {
                // The group of a set-group-ID directory.
                let _ = sys::fchown_empty(fd, u32::MAX, gid);
            }
            if defer {
                let fd = mt.nodes.get(&ino).ok_or(Errno::ESTALE)?.fd.try_clone().map_err(errno)?;
                return Ok((file, Some(Pending { fd, mode }), false));
            }
            sys::fchmod_empty(fd, mode, 0).map_err(errno)?;
            return Ok((file, None, false));
        }
        Err(e) => return Err(e),
    };
    if flags & libc::O_PATH != 0 {
        // A handle on the inode itself (a symlink's too, with O_NOFOLLOW): no permission
        // on the file is needed, and none of the other flags apply.
        return match mt.fs.kind(ino) {
            Some(Kind::Symlink) if flags & libc::O_NOFOLLOW == 0 => Err(Errno::ELOOP),
            Some(k) if k != Kind::Dir && (slash || flags & libc::O_DIRECTORY != 0) => Err(Errno::ENOTDIR),
            Some(_) => reopen(mt.memfd(ino)?, libc::O_PATH).map(|f| (f, None, false)),
            None => Err(Errno::ENOENT),
        };
    }
    match mt.fs.kind(ino) {
        Some(Kind::Symlink) => Err(Errno::ELOOP),
        Some(Kind::Dir) => {
            if acc != libc::O_RDONLY || creating {
                return Err(Errno::EISDIR);
            }
            mt.fs.access(ino, 4, &cred)?;
            reopen(mt.memfd(ino)?, libc::O_RDONLY | (flags & libc::O_NONBLOCK)).map(|f| (f, None, false))
        }
        Some(Kind::File) => {
            if slash || flags & libc::O_DIRECTORY != 0 {
                return Err(Errno::ENOTDIR);
            }
            // The kernel checks the file's permissions for the guest (whose credentials
            // this thread holds) and truncates it for O_TRUNC.
            reopen(mt.memfd(ino)?, keep).map(|f| (f, None, false))
        }
        // A FIFO of the private tmpfs: the caller opens it (blocking, unless O_NONBLOCK).
        Some(Kind::Fifo) if mt.store.is_some() => {
            mt.fs.access(ino, may_open(acc), &cred)?;
            if flags & libc::O_NONBLOCK != 0 {
                return reopen(mt.memfd(ino)?, keep & !libc::O_TRUNC).map(|f| (f, None, false));
            }
            mt.nodes.get(&ino).ok_or(Errno::ESTALE)?.fd.try_clone().map(|f| (f, None, true)).map_err(errno)
        }
        // A device node: the host's device of that number (`/dev/char/MAJ:MIN`), opened with
        // the guest's credentials and flags, so the kernel checks the device's own permissions.
        Some(Kind::Char(rdev) | Kind::Block(rdev)) => {
            mt.fs.access(ino, may_open(acc), &cred)?;
            let kind = if matches!(mt.fs.kind(ino), Some(Kind::Char(_))) { "char" } else { "block" };
            let (major, minor) = (((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff), (rdev & 0xff) | ((rdev >> 12) & !0xff));
            // The kernel names the device in sysfs; its node in /dev must be that device.
            let uevent = std::fs::read_to_string(format!("/sys/dev/{kind}/{major}:{minor}/uevent")).map_err(|_| Errno::ENXIO)?;
            let name = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME=")).filter(|n| !n.contains("..")).ok_or(Errno::ENXIO)?;
            let path = format!("/dev/{name}");
            let probe = sys::openat2(libc::AT_FDCWD, path.as_bytes(), (libc::O_PATH | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64, 0, 0).map_err(|_| Errno::ENXIO)?;
            let st = sys::fstat_bytes(probe.as_raw_fd()).map_err(errno)?;
            let want = if kind == "char" { libc::S_IFCHR } else { libc::S_IFBLK };
            if sys::stat_type(&st) != want || u64::from_le_bytes(st[40..48].try_into().expect("144 bytes")) != rdev {
                return Err(Errno::ENXIO);
            }
            reopen(probe.as_raw_fd(), keep | libc::O_NOCTTY).map(|f| (f, None, false))
        }
        // A socket is not opened (as natively).
        Some(_) => Err(Errno::ENXIO),
        None => Err(Errno::ENOENT),
    }
}

/// What [`make`] did with an op.
pub enum Served {
    /// It acts on something of ours: its result.
    Ours(Result<u64, Errno>),
    /// It acts on a real file; the guest's file it names by fd, if that was reached to
    /// tell (for the caller to use rather than reach it again).
    Host(Option<OwnedFd>),
}

/// The guest's fd an op names (`/proc/TID/fd/N` targets, a listing's directory).
fn guest_fd_of(op: &HostOp, tid: i32) -> Option<(i32, i32)> {
    match op {
        HostOp::Getdents { fd, .. } => Some((tid, *fd)),
        HostOp::Link { from: at, .. }
        | HostOp::Stat { at, .. }
        | HostOp::Identify { at, .. }
        | HostOp::Statx { at, .. }
        | HostOp::Access { at, .. }
        | HostOp::Readlink { at, .. }
        | HostOp::Statfs { at, .. }
        | HostOp::Chmod { at, .. }
        | HostOp::Chown { at, .. }
        | HostOp::Utimens { at, .. }
        | HostOp::Truncate { at, .. }
        | HostOp::Xattr { at, .. } => proc_fd(&at.path).filter(|_| at.magic),
        _ => None,
    }
}

/// Makes non-open op `op` if it acts on something of ours.
pub fn make(op: &HostOp, tid: i32, mem: &mut dyn GuestMem, out: &mut Vec<u8>) -> Served {
    // The guest's file the op names by fd, reached once: whether it is ours depends on it.
    let guest = guest_fd_of(op, tid).and_then(|(t, fd)| crate::perform::guest_file(t, fd).ok());
    match make_ours(op, guest.as_ref(), mem, out) {
        Some(r) => Served::Ours(r),
        None => Served::Host(guest),
    }
}

fn make_ours(op: &HostOp, guest: Option<&OwnedFd>, mem: &mut dyn GuestMem, out: &mut Vec<u8>) -> Option<Result<u64, Errno>> {
    let mut all = MOUNTS.lock().expect("vfs lock");
    let all = &mut *all;
    // Only for an op of ours (a real one is answered without them).
    let cred = std::cell::LazyCell::new(cred);
    let t = std::cell::LazyCell::new(now);
    Some(match op {
        HostOp::Stat { at, nofollow, .. } | HostOp::Identify { at, nofollow } => all.node(at, guest, *nofollow)?.and_then(|(m, ino)| {
            *out = all.list[m].stat(ino)?.to_vec();
            Ok(0)
        }),
        HostOp::Statx { at, nofollow, flags, mask, .. } => all.node(at, guest, *nofollow)?.and_then(|(m, ino)| {
            *out = all.list[m].statx(ino, *flags, *mask)?.to_vec();
            Ok(0)
        }),
        HostOp::Access { at, nofollow, mode, flags } => all.node(at, guest, *nofollow)?.and_then(|(m, ino)| {
            let mt = &all.list[m];
            if mt.is_file(ino) {
                sys::faccess_empty(mt.memfd(ino)?, *mode, *flags).map_err(errno).map(|()| 0)
            } else if mode & 7 == 0 {
                Ok(0)
            } else {
                mt.fs.access(ino, mode & 7, &cred).map(|()| 0)
            }
        }),
        HostOp::Readlink { at, buf, size } => all.node(at, guest, true)?.and_then(|(m, ino)| {
            let mut target = all.list[m].fs.readlink(ino)?;
            target.truncate(*size as usize);
            mem.write(GuestAddr(*buf), &target)?;
            Ok(target.len() as u64)
        }),
        HostOp::Statfs { at, out: addr } => all.node(at, guest, false)?.and_then(|(m, _)| {
            let mt = &all.list[m];
            if let Some(root) = &mt.store {
                // The backing filesystem's own figures: its size limit, its use.
                let st = sys::fstatfs_bytes(root.as_raw_fd()).map_err(errno)?;
                mem.write(GuestAddr(*addr), &st)?;
                return Ok(0);
            }
            let s = mt.fs.statfs();
            let blocks = mt.size / 4096;
            let free = blocks.saturating_sub(mt.used().div_ceil(4096));
            let mut st = [0u8; 120];
            let words: [i64; 10] = [TMPFS_MAGIC, 4096, blocks as i64, free as i64, free as i64, s.files as i64, s.ffree as i64, 0, s.namelen as i64, 4096];
            for (i, w) in words.iter().enumerate() {
                st[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
            }
            // f_fsid: the mount's number; f_flags: ST_NOSUID|ST_NODEV stay off, as for tmpfs.
            st[56..60].copy_from_slice(&(m as u32 + 1).to_le_bytes());
            st[80..88].copy_from_slice(&0x20i64.to_le_bytes()); // ST_VALID
            mem.write(GuestAddr(*addr), &st)?;
            Ok(0)
        }),
        HostOp::Mkdir { at, mode, umask } => all.parent(at)?.and_then(|(m, dir, name)| {
            let mt = &mut all.list[m];
            let ino = mt.fs.create(dir, name, Kind::Dir, mode & !umask & 0o7777, &cred, *t)?;
            attach_or_undo(mt, m, dir, name, ino, true)
        }),
        HostOp::Mknod { at, mode, dev, umask } => all.parent(at)?.and_then(|(m, dir, name)| {
            let kind = match mode & libc::S_IFMT {
                0 | libc::S_IFREG => Kind::File,
                libc::S_IFIFO => Kind::Fifo,
                libc::S_IFSOCK => Kind::Socket,
                libc::S_IFCHR => Kind::Char(*dev),
                libc::S_IFBLK => Kind::Block(*dev),
                _ => return Err(Errno::EINVAL),
            };
            let perm = mode & !umask & 0o7777;
            let mt = &mut all.list[m];
            let ino = mt.fs.create(dir, name, kind, perm, &cred, *t)?;
            attach_or_undo(mt, m, dir, name, ino, false)?;
            if kind == Kind::File {
                sys::fchmod_empty(mt.memfd(ino)?, perm, 0).map_err(errno)?;
            }
            Ok(0)
        }),
        HostOp::Symlink { target, at } => all.parent(at)?.and_then(|(m, dir, name)| {
            let mt = &mut all.list[m];
            let ino = mt.fs.symlink(dir, name, target, &cred, *t)?;
            attach_or_undo(mt, m, dir, name, ino, false)
        }),
        HostOp::Unlink { at, rmdir } => all.parent(at)?.and_then(|(m, dir, name)| {
            let mt = &mut all.list[m];
            let victim = mt.fs.lookup(dir, name, &cred)?;
            if *rmdir { mt.fs.rmdir(dir, name, &cred, *t) } else { mt.fs.unlink(dir, name, &cred, *t) }?;
            mt.forget_if_gone(victim, trim(&at.path));
            Ok(0)
        }),
        HostOp::Rename { from, to, flags } => match (all.parent(from), all.parent(to)) {
            (None, None) => return None,
            (Some(Ok((fm, fdir, fname))), Some(Ok((tm, tdir, tname)))) if fm == tm => {
                let mt = &mut all.list[fm];
                let victim = mt.fs.lookup(tdir, tname, &cred).ok();
                mt.fs.rename(fdir, fname, tdir, tname, *flags, &cred, *t).map(|()| {
                    if let Some(v) = victim {
                        mt.forget_if_gone(v, trim(&to.path));
                    }
                    0
                })
            }
            (Some(Err(e)), _) | (_, Some(Err(e))) => Err(e),
            _ => Err(Errno::EXDEV),
        },
        HostOp::Link { from, to } => {
            let src = all.node(from, guest, !from.magic);
            if src.is_none()
                && let Some((m, file, st)) = all.unnamed(from, guest)
            {
                // An O_TMPFILE file of ours gets its first name: the namespace takes it in.
                return Some(all.parent(to).unwrap_or(Err(Errno::EXDEV)).and_then(|(tm, dir, name)| {
                    if tm != m {
                        return Err(Errno::EXDEV);
                    }
                    let mt = &mut all.list[m];
                    let mode = u32::from_le_bytes(st[24..28].try_into().expect("144 bytes")) & 0o7777;
                    let ino = mt.fs.create(dir, name, Kind::File, mode, &cred, *t)?;
                    let st_ino = sys::stat_ino(&st);
                    mt.by_ino.insert(st_ino, ino);
                    mt.nodes.insert(ino, Node { fd: file, ino: st_ino, name: None });
                    Ok(0)
                }));
            }
            match (src, all.parent(to)) {
                (None, None) => return None,
                (Some(Ok((fm, ino))), Some(Ok((tm, dir, name)))) if fm == tm => all.list[tm].fs.link(ino, dir, name, &cred, *t).map(|()| 0),
                (Some(Err(e)), _) | (_, Some(Err(e))) => Err(e),
                _ => Err(Errno::EXDEV),
            }
        }
        HostOp::Chmod { at, mode, nofollow } => all.node(at, guest, *nofollow)?.and_then(|(m, ino)| {
            let mt = &mut all.list[m];
            if mt.is_file(ino) {
                sys::fchmod_empty(mt.memfd(ino)?, *mode, 0).map_err(errno)?;
                // The namespace's copy, for the checks it makes on the file (sticky, xattrs).
                let _ = mt.fs.chmod(ino, *mode, &Cred::root(), *t);
                Ok(0)
            } else if mt.fs.kind(ino) == Some(Kind::Symlink) {
                Err(Errno::EOPNOTSUPP)
            } else {
                mt.fs.chmod(ino, *mode, &cred, *t).map(|()| 0)
            }
        }),
        HostOp::Chown { at, uid, gid, nofollow } => all.node(at, guest, *nofollow)?.and_then(|(m, ino)| {
            let mt = &mut all.list[m];
            if mt.is_file(ino) {
                sys::fchown_empty(mt.memfd(ino)?, *uid, *gid).map_err(errno)?;
                let _ = mt.fs.chown(ino, *uid, *gid, &Cred::root(), *t);
                Ok(0)
            } else {
                mt.fs.chown(ino, *uid, *gid, &cred, *t).map(|()| 0)
            }
        }),
        HostOp::Utimens { at, times, nofollow } => all.node(at, guest, *nofollow)?.and_then(|(m, ino)| {
            let mt = &mut all.list[m];
            if mt.is_file(ino) {
                return sys::utimens_empty(mt.memfd(ino)?, times.as_ref()).map_err(errno).map(|()| 0);
            }
            const UTIME_NOW: i64 = (1 << 30) - 1;
            const UTIME_OMIT: i64 = (1 << 30) - 2;
            let pick = |sec: i64, nsec: i64| -> Result<Option<u64>, Errno> {
                match nsec {
                    UTIME_OMIT => Ok(None),
                    UTIME_NOW => Ok(Some(*t)),
                    n if !(0..1_000_000_000).contains(&n) => Err(Errno::EINVAL),
                    n => Ok(Some((sec.max(0) as u64).saturating_mul(1_000_000_000).saturating_add(n as u64))),
                }
            };
            let (a, mt_, to_now) = match times {
                None => (Some(*t), Some(*t), true),
                Some([as_, an, ms, mn]) => (pick(*as_, *an)?, pick(*ms, *mn)?, *an == UTIME_NOW && *mn == UTIME_NOW),
            };
            mt.fs.utimens(ino, a, mt_, to_now, &cred, *t).map(|()| 0)
        }),
        HostOp::Truncate { at, len } => all.node(at, guest, false)?.and_then(|(m, ino)| {
            let mt = &all.list[m];
            match mt.fs.kind(ino) {
                Some(Kind::File) => {}
                Some(Kind::Dir) => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
            let fd = reopen(mt.memfd(ino)?, libc::O_WRONLY | libc::O_NONBLOCK)?;
            sys::ftruncate(fd.as_raw_fd(), *len).map_err(errno).map(|()| 0)
        }),
        HostOp::Getdents { buf, count, legacy, edit, .. } => {
            let dir = guest?;
            let (m, ino) = all.of_file(dir.as_raw_fd())?;
            getdents(&all.list[m], ino, dir, *count, *legacy, edit).and_then(|data| {
                mem.write(GuestAddr(*buf), &data)?;
                Ok(data.len() as u64)
            })
        }
        HostOp::Xattr { at, nofollow, call } => all.node(at, guest, *nofollow)?.and_then(|(m, ino)| {
            let fs = &mut all.list[m].fs;
            let give = |mem: &mut dyn GuestMem, data: &[u8], buf: u64, size: u64| -> Result<u64, Errno> {
                if size > 0 {
                    if (data.len() as u64) > size {
                        return Err(Errno::ERANGE);
                    }
                    mem.write(GuestAddr(buf), data)?;
                }
                Ok(data.len() as u64)
            };
            match call {
                XattrCall::Get { name, buf, size } => {
                    let v = fs.getxattr(ino, name)?;
                    give(mem, &v, *buf, *size)
                }
                XattrCall::List { buf, size } => {
                    let names: Vec<u8> = fs.listxattr(ino)?.into_iter().flat_map(|mut n| {
                        n.push(0);
                        n
                    }).collect();
                    give(mem, &names, *buf, *size)
                }
                XattrCall::Set { name, value, flags } => fs.setxattr(ino, name, value, *flags, &cred, *t).map(|()| 0),
                XattrCall::Remove { name } => fs.removexattr(ino, name, &cred, *t).map(|()| 0),
            }
        }),
        HostOp::Open { .. } | HostOp::OpenMemory { .. } | HostOp::ReadFile { .. } => return None,
    })
}

/// After making inode `ino` as `name` in `dir`: its memfd, or the inode undone.
fn attach_or_undo(mt: &mut Mount, m: usize, dir: Ino, name: &[u8], ino: Ino, is_dir: bool) -> Result<u64, Errno> {
    if let Err(e) = mt.attach(m, ino) {
        let root = Cred::root();
        let _ = if is_dir { mt.fs.rmdir(dir, name, &root, now()) } else { mt.fs.unlink(dir, name, &root, now()) };
        mt.forget_if_gone(ino, b"");
        return Err(e);
    }
    Ok(0)
}

/// One batch of directory `dir`'s listing, read from the cookie the guest's open file
/// holds as its position, which then moves past what was returned.
fn getdents(mt: &Mount, dir: Ino, file: &OwnedFd, count: u64, legacy: bool, edit: &Listing) -> Result<Vec<u8>, Errno> {
    if mt.fs.kind(dir) != Some(Kind::Dir) {
        return Err(Errno::ENOTDIR);
    }
    let from = sys::tell(file.as_raw_fd()).map_err(errno)?;
    let cap = count.min(1 << 20) as usize;
    let mut data = Vec::new();
    let mut next = from;
    for e in mt.fs.readdir(dir, from)? {
        let ino = mt.st_ino(e.ino);
        let rec = record(ino, e.next, &e.name, e.dtype, legacy);
        if data.len() + rec.len() > cap {
            if data.is_empty() {
                return Err(Errno::EINVAL);
            }
            break;
        }
        data.extend_from_slice(&rec);
        next = e.next;
    }
    let shown = edit.apply_on(&data, from == 0, cap as u64, legacy, None).unwrap_or(data);
    sys::seek(file.as_raw_fd(), next).map_err(errno)?;
    Ok(shown)
}

/// A `linux_dirent64` record (or the legacy `linux_dirent`, type in its last byte).
fn record(ino: u64, off: u64, name: &[u8], dtype: u8, legacy: bool) -> Vec<u8> {
    let head = if legacy { 18 } else { 19 };
    let len = (head + name.len() + 1 + usize::from(legacy)).next_multiple_of(8);
    let mut r = vec![0u8; len];
    r[0..8].copy_from_slice(&ino.to_le_bytes());
    r[8..16].copy_from_slice(&off.to_le_bytes());
    r[16..18].copy_from_slice(&(len as u16).to_le_bytes());
    if legacy {
        r[18..18 + name.len()].copy_from_slice(name);
        r[len - 1] = dtype;
    } else {
        r[18] = dtype;
        r[19..19 + name.len()].copy_from_slice(name);
    }
    r
}
