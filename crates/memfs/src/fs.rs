//! The filesystem.

use std::collections::BTreeMap;

use viewos_abi::Errno;

/// Page size: the unit of file data and of the size limit.
pub const PAGE: u64 = 4096;
/// Longest name.
pub const NAME_MAX: usize = 255;
/// Largest file size (`MAX_LFS_FILESIZE`).
pub const MAX_FILE: u64 = i64::MAX as u64;
/// `renameat2` flags.
pub const RENAME_NOREPLACE: u32 = 1;
pub const RENAME_EXCHANGE: u32 = 2;
/// tmpfs counts 20 bytes per directory entry as a directory's size.
const BOGO_DIRENT: u64 = 20;
const XATTR_CREATE: u32 = 1;
const XATTR_REPLACE: u32 = 2;
const S_ISVTX: u32 = 0o1000;
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;

/// An inode number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ino(pub u64);

/// What an inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    /// A character device with its number.
    Char(u64),
    /// A block device with its number.
    Block(u64),
}

impl Kind {
    /// The `S_IFMT` bits.
    pub fn ifmt(self) -> u32 {
        match self {
            Kind::File => 0o100000,
            Kind::Dir => 0o040000,
            Kind::Symlink => 0o120000,
            Kind::Fifo => 0o010000,
            Kind::Socket => 0o140000,
            Kind::Char(_) => 0o020000,
            Kind::Block(_) => 0o060000,
        }
    }

    /// `d_type`.
    pub fn dtype(self) -> u8 {
        (self.ifmt() >> 12) as u8
    }
}

/// Who makes a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cred {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// Holds root's capabilities (`CAP_DAC_OVERRIDE`, `CAP_FOWNER`, `CAP_CHOWN`...).
    pub privileged: bool,
}

impl Cred {
    pub fn root() -> Cred {
        Cred { uid: 0, gid: 0, groups: Vec::new(), privileged: true }
    }

    fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// `struct stat` as the filesystem knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    /// 512-byte blocks.
    pub blocks: u64,
    pub atime: u64,
    pub mtime: u64,
    pub ctime: u64,
    pub btime: u64,
}

/// One directory entry of a listing; `next` is the cookie to read on from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirent {
    pub ino: Ino,
    pub next: u64,
    pub name: Vec<u8>,
    pub dtype: u8,
}

/// `statfs` in pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFs {
    pub bsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub files: u64,
    pub ffree: u64,
    pub namelen: u64,
}

#[derive(Clone, Debug)]
enum Body {
    File { size: u64, pages: BTreeMap<u64, Vec<u8>> },
    Dir { entries: BTreeMap<Vec<u8>, (u64, Ino)>, order: BTreeMap<u64, Vec<u8>>, next_cookie: u64, parent: Ino, subdirs: u32 },
    Symlink(Vec<u8>),
    Special(Kind),
}

#[derive(Clone, Debug)]
struct Inode {
    body: Body,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    times: [u64; 4],
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    opens: u32,
}

const A: usize = 0;
const M: usize = 1;
const C: usize = 2;

impl Inode {
    fn kind(&self) -> Kind {
        match &self.body {
            Body::File { .. } => Kind::File,
            Body::Dir { .. } => Kind::Dir,
            Body::Symlink(_) => Kind::Symlink,
            Body::Special(k) => *k,
        }
    }
}

/// The filesystem.
#[derive(Clone, Debug)]
pub struct MemFs {
    dev: u64,
    inodes: BTreeMap<Ino, Inode>,
    next_ino: u64,
    root: Ino,
    /// Pages of file data in use, and the limit.
    used: u64,
    limit: u64,
}

/// Entries of a directory listing before the first real one: `.` and `..`.
const FIRST_COOKIE: u64 = 3;

impl MemFs {
    /// An empty filesystem on device `dev` holding at most `size` bytes of file data,
    /// its root directory with `mode` owned by `uid`/`gid`.
    pub fn new(dev: u64, size: u64, mode: u32, uid: u32, gid: u32, now: u64) -> MemFs {
        let root = Ino(1);
        let mut inodes = BTreeMap::new();
        inodes.insert(
            root,
            Inode {
                body: Body::Dir { entries: BTreeMap::new(), order: BTreeMap::new(), next_cookie: FIRST_COOKIE, parent: root, subdirs: 0 },
                mode: mode & 0o7777,
                uid,
                gid,
                nlink: 2,
                times: [now; 4],
                xattrs: BTreeMap::new(),
                opens: 0,
            },
        );
        MemFs { dev, inodes, next_ino: 2, root, used: 0, limit: size.div_ceil(PAGE) }
    }

    pub fn root(&self) -> Ino {
        self.root
    }

    fn node(&self, ino: Ino) -> Result<&Inode, Errno> {
        self.inodes.get(&ino).ok_or(Errno::ESTALE)
    }

    fn node_mut(&mut self, ino: Ino) -> Result<&mut Inode, Errno> {
        self.inodes.get_mut(&ino).ok_or(Errno::ESTALE)
    }

    /// The kernel's permission check (`generic_permission`) of `mask` (4 read, 2 write,
    /// 1 exec/search) on `ino` for `cred`.
    pub fn access(&self, ino: Ino, mask: u32, cred: &Cred) -> Result<(), Errno> {
        let n = self.node(ino)?;
        let mask = mask & 7;
        if cred.privileged {
            // Root may do anything but execute a file without any x bit.
            if mask & 1 != 0 && n.kind() != Kind::Dir && n.mode & 0o111 == 0 {
                return Err(Errno::EACCES);
            }
            return Ok(());
        }
        let bits = if cred.uid == n.uid {
            n.mode >> 6
        } else if cred.in_group(n.gid) {
            n.mode >> 3
        } else {
            n.mode
        } & 7;
        if bits & mask == mask { Ok(()) } else { Err(Errno::EACCES) }
    }

    fn dir_entries(&self, dir: Ino) -> Result<&BTreeMap<Vec<u8>, (u64, Ino)>, Errno> {
        match &self.node(dir)?.body {
            Body::Dir { entries, .. } => Ok(entries),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn check_name(name: &[u8]) -> Result<(), Errno> {
        if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
            return Err(Errno::EINVAL);
        }
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        Ok(())
    }

    /// The inode named `name` in directory `dir` (`.` and `..` included): needs search
    /// permission on `dir`.
    pub fn lookup(&self, dir: Ino, name: &[u8], cred: &Cred) -> Result<Ino, Errno> {
        let entries = self.dir_entries(dir)?;
        self.access(dir, 1, cred)?;
        match name {
            b"." => Ok(dir),
            b".." => match &self.node(dir)?.body {
                Body::Dir { parent, .. } => Ok(*parent),
                _ => Err(Errno::ENOTDIR),
            },
            _ => {
                if name.len() > NAME_MAX {
                    return Err(Errno::ENAMETOOLONG);
                }
                entries.get(name).map(|&(_, i)| i).ok_or(Errno::ENOENT)
            }
        }
    }

    pub fn stat(&self, ino: Ino) -> Result<Stat, Errno> {
        let n = self.node(ino)?;
        let (size, blocks, rdev) = match &n.body {
            Body::File { size, pages } => (*size, pages.len() as u64 * (PAGE / 512), 0),
            Body::Dir { entries, .. } => ((entries.len() as u64 + 2) * BOGO_DIRENT, 0, 0),
            Body::Symlink(t) => (t.len() as u64, 0, 0),
            Body::Special(Kind::Char(r) | Kind::Block(r)) => (0, 0, *r),
            Body::Special(_) => (0, 0, 0),
        };
        Ok(Stat {
            dev: self.dev,
            ino: ino.0,
            mode: n.kind().ifmt() | n.mode,
            nlink: n.nlink,
            uid: n.uid,
            gid: n.gid,
            rdev,
            size,
            blocks,
            atime: n.times[A],
            mtime: n.times[M],
            ctime: n.times[C],
            btime: n.times[3],
        })
    }

    /// May `cred` add or remove names in `dir`? (write and search permission)
    fn may_change(&self, dir: Ino, cred: &Cred) -> Result<(), Errno> {
        self.dir_entries(dir)?;
        self.access(dir, 3, cred)
    }

    /// The sticky bit: in a sticky directory only the owner of the file or of the
    /// directory (or root) removes or renames it.
    fn sticky_ok(&self, dir: Ino, victim: Ino, cred: &Cred) -> Result<(), Errno> {
        let d = self.node(dir)?;
        let v = self.node(victim)?;
        if d.mode & S_ISVTX != 0 && !cred.privileged && cred.uid != d.uid && cred.uid != v.uid {
            return Err(Errno::EPERM);
        }
        Ok(())
    }

    fn touch_dir(&mut self, dir: Ino, now: u64) {
        if let Some(d) = self.inodes.get_mut(&dir) {
            d.times[M] = now;
            d.times[C] = now;
        }
    }

    fn add_entry(&mut self, dir: Ino, name: &[u8], ino: Ino) {
        let is_dir = matches!(self.inodes.get(&ino).map(|n| &n.body), Some(Body::Dir { .. }));
        if let Some(Inode { body: Body::Dir { entries, order, next_cookie, subdirs, .. }, nlink, .. }) = self.inodes.get_mut(&dir) {
            let c = *next_cookie;
            *next_cookie += 1;
            entries.insert(name.to_vec(), (c, ino));
            order.insert(c, name.to_vec());
            if is_dir {
                *subdirs += 1;
                *nlink += 1;
            }
        }
    }

    fn remove_entry(&mut self, dir: Ino, name: &[u8]) -> Option<Ino> {
        let Some(Inode { body: Body::Dir { entries, order, .. }, .. }) = self.inodes.get_mut(&dir) else { return None };
        let (c, ino) = entries.remove(name)?;
        order.remove(&c);
        let is_dir = matches!(self.inodes.get(&ino).map(|n| &n.body), Some(Body::Dir { .. }));
        if is_dir
            && let Some(Inode { body: Body::Dir { subdirs, .. }, nlink, .. }) = self.inodes.get_mut(&dir)
        {
            *subdirs -= 1;
            *nlink -= 1;
        }
        Some(ino)
    }

    fn new_inode(&mut self, body: Body, mode: u32, cred: &Cred, dir: Ino, now: u64) -> Ino {
        let ino = Ino(self.next_ino);
        self.next_ino += 1;
        let is_dir = matches!(body, Body::Dir { .. });
        // A set-group-ID directory gives its group (and, to directories, the bit).
        let (gid, mut mode) = match self.inodes.get(&dir) {
            Some(d) if d.mode & S_ISGID != 0 => (d.gid, if is_dir { mode | S_ISGID } else { mode }),
            _ => (cred.gid, mode),
        };
        if !is_dir && mode & S_ISGID != 0 && !cred.privileged && !cred.in_group(gid) {
            mode &= !S_ISGID;
        }
        let body = match body {
            Body::Dir { entries, order, next_cookie, subdirs, .. } => Body::Dir { entries, order, next_cookie, parent: dir, subdirs },
            b => b,
        };
        self.inodes.insert(
            ino,
            Inode { body, mode: mode & 0o7777, uid: cred.uid, gid, nlink: if is_dir { 2 } else { 1 }, times: [now; 4], xattrs: BTreeMap::new(), opens: 0 },
        );
        ino
    }

    /// Creates `name` in `dir`: a file, directory, FIFO, socket or device with permission
    /// bits `mode` (umask already applied). Devices need `privileged`.
    pub fn create(&mut self, dir: Ino, name: &[u8], kind: Kind, mode: u32, cred: &Cred, now: u64) -> Result<Ino, Errno> {
        Self::check_name(name)?;
        self.may_change(dir, cred)?;
        if self.dir_entries(dir)?.contains_key(name) || name == b"." || name == b".." {
            return Err(Errno::EEXIST);
        }
        if matches!(kind, Kind::Char(_) | Kind::Block(_)) && !cred.privileged {
            return Err(Errno::EPERM);
        }
        let body = match kind {
            Kind::File => Body::File { size: 0, pages: BTreeMap::new() },
            Kind::Dir => Body::Dir { entries: BTreeMap::new(), order: BTreeMap::new(), next_cookie: FIRST_COOKIE, parent: dir, subdirs: 0 },
            Kind::Symlink => return Err(Errno::EINVAL),
            k => Body::Special(k),
        };
        let ino = self.new_inode(body, mode, cred, dir, now);
        self.add_entry(dir, name, ino);
        self.touch_dir(dir, now);
        Ok(ino)
    }

    /// A symlink `name` in `dir` holding `target`.
    pub fn symlink(&mut self, dir: Ino, name: &[u8], target: &[u8], cred: &Cred, now: u64) -> Result<Ino, Errno> {
        Self::check_name(name)?;
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() >= 4096 {
            return Err(Errno::ENAMETOOLONG);
        }
        self.may_change(dir, cred)?;
        if self.dir_entries(dir)?.contains_key(name) || name == b"." || name == b".." {
            return Err(Errno::EEXIST);
        }
        let ino = self.new_inode(Body::Symlink(target.to_vec()), 0o777, cred, dir, now);
        self.add_entry(dir, name, ino);
        self.touch_dir(dir, now);
        Ok(ino)
    }

    pub fn readlink(&self, ino: Ino) -> Result<Vec<u8>, Errno> {
        match &self.node(ino)?.body {
            Body::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    /// A new name `name` in `dir` for `ino` (not a directory).
    pub fn link(&mut self, ino: Ino, dir: Ino, name: &[u8], cred: &Cred, now: u64) -> Result<(), Errno> {
        Self::check_name(name)?;
        self.may_change(dir, cred)?;
        if self.dir_entries(dir)?.contains_key(name) || name == b"." || name == b".." {
            return Err(Errno::EEXIST);
        }
        let n = self.node(ino)?;
        if n.kind() == Kind::Dir {
            return Err(Errno::EPERM);
        }
        if n.nlink == 0 {
            // An unlinked file gets no name back through link(2) (O_TMPFILE aside).
            return Err(Errno::ENOENT);
        }
        self.add_entry(dir, name, ino);
        let n = self.node_mut(ino)?;
        n.nlink += 1;
        n.times[C] = now;
        self.touch_dir(dir, now);
        Ok(())
    }

    /// Drops a link; frees the inode with its last link and last open handle.
    fn unref(&mut self, ino: Ino) {
        let Some(n) = self.inodes.get_mut(&ino) else { return };
        n.nlink = n.nlink.saturating_sub(1);
        if n.kind() == Kind::Dir {
            // A directory's own "." goes with its name.
            n.nlink = 0;
        }
        self.maybe_free(ino);
    }

    fn maybe_free(&mut self, ino: Ino) {
        if let Some(n) = self.inodes.get(&ino)
            && n.nlink == 0
            && n.opens == 0
            && ino != self.root
        {
            if let Some(Inode { body: Body::File { pages, .. }, .. }) = self.inodes.remove(&ino) {
                self.used -= pages.len() as u64;
            }
        }
    }

    /// `unlink(2)` of `name` in `dir` (not a directory).
    pub fn unlink(&mut self, dir: Ino, name: &[u8], cred: &Cred, now: u64) -> Result<(), Errno> {
        self.may_change(dir, cred)?;
        let ino = self.lookup(dir, name, cred)?;
        if name == b"." || name == b".." {
            return Err(Errno::EISDIR);
        }
        if self.node(ino)?.kind() == Kind::Dir {
            return Err(Errno::EISDIR);
        }
        self.sticky_ok(dir, ino, cred)?;
        self.remove_entry(dir, name);
        if let Ok(n) = self.node_mut(ino) {
            n.times[C] = now;
        }
        self.unref(ino);
        self.touch_dir(dir, now);
        Ok(())
    }

    /// `rmdir(2)` of `name` in `dir`.
    pub fn rmdir(&mut self, dir: Ino, name: &[u8], cred: &Cred, now: u64) -> Result<(), Errno> {
        match name {
            b"." => return Err(Errno::EINVAL),
            b".." => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        self.may_change(dir, cred)?;
        let ino = self.lookup(dir, name, cred)?;
        if !self.dir_entries(ino).map_err(|_| Errno::ENOTDIR)?.is_empty() {
            return Err(Errno::ENOTEMPTY);
        }
        self.sticky_ok(dir, ino, cred)?;
        self.remove_entry(dir, name);
        self.unref(ino);
        self.touch_dir(dir, now);
        Ok(())
    }

    /// Whether `anc` is `ino` or one of its ancestors.
    fn is_ancestor(&self, anc: Ino, mut ino: Ino) -> bool {
        loop {
            if ino == anc {
                return true;
            }
            match self.inodes.get(&ino).map(|n| &n.body) {
                Some(Body::Dir { parent, .. }) if *parent != ino => ino = *parent,
                _ => return false,
            }
        }
    }

    /// `renameat2(2)`.
    #[allow(clippy::too_many_arguments)]
    pub fn rename(&mut self, odir: Ino, oname: &[u8], ndir: Ino, nname: &[u8], flags: u32, cred: &Cred, now: u64) -> Result<(), Errno> {
        // The checks in the kernel's order (do_renameat2, then vfs_rename and may_delete).
        if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE) != 0 || flags == RENAME_NOREPLACE | RENAME_EXCHANGE {
            return Err(Errno::EINVAL);
        }
        for n in [oname, nname] {
            if n == b"." || n == b".." {
                return Err(Errno::EBUSY);
            }
        }
        Self::check_name(nname)?;
        let src = self.lookup(odir, oname, cred)?;
        let dst = match self.lookup(ndir, nname, cred) {
            Ok(d) => Some(d),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        if flags & RENAME_NOREPLACE != 0 && dst.is_some() {
            return Err(Errno::EEXIST);
        }
        let exchange = flags & RENAME_EXCHANGE != 0;
        if exchange && dst.is_none() {
            return Err(Errno::ENOENT);
        }
        let src_dir = self.node(src)?.kind() == Kind::Dir;
        // The source may not be an ancestor of the target; the target may not be one of the
        // source (a non-empty directory, unless exchanging).
        if src_dir && (src == ndir || self.is_ancestor(src, ndir)) {
            return Err(Errno::EINVAL);
        }
        if let Some(d) = dst
            && d != src
            && (d == odir || self.is_ancestor(d, odir))
        {
            return Err(if exchange { Errno::EINVAL } else { Errno::ENOTEMPTY });
        }
        if dst == Some(src) {
            // Two names of one file (or the same name): nothing happens.
            return Ok(());
        }
        self.may_change(odir, cred)?;
        self.sticky_ok(odir, src, cred)?;
        self.may_change(ndir, cred)?;
        if let Some(d) = dst {
            self.sticky_ok(ndir, d, cred)?;
        }
        if exchange {
            let dst = dst.expect("checked");
            self.remove_entry(odir, oname);
            self.remove_entry(ndir, nname);
            self.add_entry(odir, oname, dst);
            self.add_entry(ndir, nname, src);
            for (i, d) in [(src, ndir), (dst, odir)] {
                if let Some(Inode { body: Body::Dir { parent, .. }, .. }) = self.inodes.get_mut(&i) {
                    *parent = d;
                }
                if let Ok(n) = self.node_mut(i) {
                    n.times[C] = now;
                }
            }
            self.touch_dir(odir, now);
            self.touch_dir(ndir, now);
            return Ok(());
        }
        if let Some(d) = dst {
            let dst_dir = self.node(d)?.kind() == Kind::Dir;
            match (src_dir, dst_dir) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !self.dir_entries(d)?.is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        if let Some(d) = dst {
            self.remove_entry(ndir, nname);
            if let Ok(n) = self.node_mut(d) {
                n.times[C] = now;
            }
            self.unref(d);
        }
        self.remove_entry(odir, oname);
        self.add_entry(ndir, nname, src);
        if let Some(Inode { body: Body::Dir { parent, .. }, .. }) = self.inodes.get_mut(&src) {
            *parent = ndir;
        }
        if let Ok(n) = self.node_mut(src) {
            n.times[C] = now;
        }
        self.touch_dir(odir, now);
        self.touch_dir(ndir, now);
        Ok(())
    }

    /// An open handle: keeps the inode after its last name goes.
    pub fn open(&mut self, ino: Ino) -> Result<(), Errno> {
        self.node_mut(ino)?.opens += 1;
        Ok(())
    }

    /// The last close of an unlinked inode frees it.
    pub fn close(&mut self, ino: Ino) {
        if let Some(n) = self.inodes.get_mut(&ino) {
            n.opens = n.opens.saturating_sub(1);
        }
        self.maybe_free(ino);
    }

    /// Up to `len` bytes at `off` (holes read as zeros).
    pub fn read(&self, ino: Ino, off: u64, len: usize) -> Result<Vec<u8>, Errno> {
        let Body::File { size, pages } = &self.node(ino)?.body else {
            return Err(if self.node(ino)?.kind() == Kind::Dir { Errno::EISDIR } else { Errno::EINVAL });
        };
        if off >= *size {
            return Ok(Vec::new());
        }
        let end = (*size).min(off.saturating_add(len as u64));
        let mut out = vec![0u8; (end - off) as usize];
        let mut at = off;
        while at < end {
            let page = at / PAGE;
            let in_page = (at % PAGE) as usize;
            let n = ((PAGE - at % PAGE).min(end - at)) as usize;
            if let Some(p) = pages.get(&page) {
                let dst = (at - off) as usize;
                out[dst..dst + n].copy_from_slice(&p[in_page..in_page + n]);
            }
            at += n as u64;
        }
        Ok(out)
    }

    /// Writes `data` at `off`; `ENOSPC` (nothing written) if its new pages do not fit. A
    /// writer without root's capabilities clears set-user-ID (and set-group-ID of a
    /// group-executable file), as `file_remove_privs` does.
    pub fn write(&mut self, ino: Ino, off: u64, data: &[u8], cred: &Cred, now: u64) -> Result<usize, Errno> {
        let end = off.checked_add(data.len() as u64).filter(|&e| e <= MAX_FILE).ok_or(Errno::EFBIG)?;
        let (used, limit) = (self.used, self.limit);
        let n = self.node_mut(ino)?;
        let Body::File { size, pages } = &mut n.body else {
            return Err(if n.kind() == Kind::Dir { Errno::EISDIR } else { Errno::EINVAL });
        };
        if data.is_empty() {
            return Ok(0);
        }
        let new_pages = (off / PAGE..=(end - 1) / PAGE).filter(|p| !pages.contains_key(p)).count() as u64;
        if used + new_pages > limit {
            return Err(Errno::ENOSPC);
        }
        let mut at = off;
        while at < end {
            let page = at / PAGE;
            let in_page = (at % PAGE) as usize;
            let k = ((PAGE - at % PAGE).min(end - at)) as usize;
            let p = pages.entry(page).or_insert_with(|| vec![0u8; PAGE as usize]);
            let src = (at - off) as usize;
            p[in_page..in_page + k].copy_from_slice(&data[src..src + k]);
            at += k as u64;
        }
        *size = (*size).max(end);
        n.times[M] = now;
        n.times[C] = now;
        if !cred.privileged {
            n.mode &= !S_ISUID;
            if n.mode & 0o010 != 0 {
                n.mode &= !S_ISGID;
            }
        }
        self.used = used + new_pages;
        Ok(data.len())
    }

    /// Sets the size: pages past it are freed, the tail of the last one zeroed.
    pub fn truncate(&mut self, ino: Ino, len: u64, now: u64) -> Result<(), Errno> {
        if len > MAX_FILE {
            return Err(Errno::EFBIG);
        }
        let n = self.node_mut(ino)?;
        let Body::File { size, pages } = &mut n.body else {
            return Err(if n.kind() == Kind::Dir { Errno::EISDIR } else { Errno::EINVAL });
        };
        let keep = len.div_ceil(PAGE);
        let gone: Vec<u64> = pages.range(keep..).map(|(&p, _)| p).collect();
        for p in &gone {
            pages.remove(p);
        }
        if len % PAGE != 0
            && let Some(p) = pages.get_mut(&(len / PAGE))
        {
            p[(len % PAGE) as usize..].fill(0);
        }
        *size = len;
        n.times[M] = now;
        n.times[C] = now;
        self.used -= gone.len() as u64;
        Ok(())
    }

    /// The listing of `dir` from cookie `from` (0: the start): `.`, `..`, then the
    /// entries in creation order. Each entry's `next` is where to read on.
    pub fn readdir(&self, dir: Ino, from: u64) -> Result<Vec<Dirent>, Errno> {
        let Body::Dir { entries, order, parent, .. } = &self.node(dir)?.body else { return Err(Errno::ENOTDIR) };
        let mut out = Vec::new();
        if from < 1 {
            out.push(Dirent { ino: dir, next: 1, name: b".".to_vec(), dtype: Kind::Dir.dtype() });
        }
        if from < 2 {
            out.push(Dirent { ino: *parent, next: 2, name: b"..".to_vec(), dtype: Kind::Dir.dtype() });
        }
        for (&c, name) in order.range(from.max(FIRST_COOKIE - 1)..) {
            if c < from {
                continue;
            }
            let ino = entries[name].1;
            let dtype = self.inodes.get(&ino).map_or(0, |n| n.kind().dtype());
            out.push(Dirent { ino, next: c + 1, name: name.clone(), dtype });
        }
        Ok(out)
    }

    /// `chmod`: the owner or root; a non-member loses set-group-ID.
    pub fn chmod(&mut self, ino: Ino, mode: u32, cred: &Cred, now: u64) -> Result<(), Errno> {
        let n = self.node_mut(ino)?;
        if !cred.privileged && cred.uid != n.uid {
            return Err(Errno::EPERM);
        }
        let mut m = mode & 0o7777;
        if !cred.privileged && !cred.in_group(n.gid) {
            m &= !S_ISGID;
        }
        n.mode = m;
        n.times[C] = now;
        Ok(())
    }

    /// `chown` (`u32::MAX`: unchanged) with the kernel's rules; a non-directory loses its
    /// set-user-ID bit (and set-group-ID when group-executable).
    pub fn chown(&mut self, ino: Ino, uid: u32, gid: u32, cred: &Cred, now: u64) -> Result<(), Errno> {
        let n = self.node_mut(ino)?;
        let keep = u32::MAX;
        if !cred.privileged {
            let owner = cred.uid == n.uid;
            let uid_ok = uid == keep || (uid == n.uid && owner);
            let gid_ok = gid == keep || (owner && (gid == n.gid || cred.in_group(gid)));
            if !uid_ok || !gid_ok {
                return Err(Errno::EPERM);
            }
        }
        if uid == keep && gid == keep {
            return Ok(());
        }
        if uid != keep {
            n.uid = uid;
        }
        if gid != keep {
            n.gid = gid;
        }
        if n.kind() != Kind::Dir {
            n.mode &= !S_ISUID;
            if n.mode & 0o010 != 0 {
                n.mode &= !S_ISGID;
            }
        }
        n.times[C] = now;
        Ok(())
    }

    /// `utimensat`: `None` leaves a time; setting times other than "now" needs the owner
    /// or root, "now" also any writer.
    pub fn utimens(&mut self, ino: Ino, atime: Option<u64>, mtime: Option<u64>, to_now: bool, cred: &Cred, now: u64) -> Result<(), Errno> {
        let owner = { let n = self.node(ino)?; cred.privileged || cred.uid == n.uid };
        if !owner {
            if !to_now {
                return Err(Errno::EPERM);
            }
            self.access(ino, 2, cred)?;
        }
        let n = self.node_mut(ino)?;
        if let Some(a) = atime {
            n.times[A] = a;
        }
        if let Some(m) = mtime {
            n.times[M] = m;
        }
        n.times[C] = now;
        Ok(())
    }

    pub fn getxattr(&self, ino: Ino, name: &[u8]) -> Result<Vec<u8>, Errno> {
        self.node(ino)?.xattrs.get(name).cloned().ok_or(Errno::ENODATA)
    }

    pub fn listxattr(&self, ino: Ino) -> Result<Vec<Vec<u8>>, Errno> {
        Ok(self.node(ino)?.xattrs.keys().cloned().collect())
    }

    /// `setxattr` with `XATTR_CREATE`/`XATTR_REPLACE`; only `user.` and `trusted.`
    /// (root) names.
    pub fn setxattr(&mut self, ino: Ino, name: &[u8], value: &[u8], flags: u32, cred: &Cred, now: u64) -> Result<(), Errno> {
        if name.is_empty() || name.len() > 255 {
            return Err(Errno::ERANGE);
        }
        if value.len() > 65536 {
            return Err(Errno::E2BIG);
        }
        if !(name.starts_with(b"user.") || name.starts_with(b"trusted.") && cred.privileged) {
            return Err(if name.starts_with(b"trusted.") { Errno::EPERM } else { Errno::EOPNOTSUPP });
        }
        if name.starts_with(b"user.") {
            let k = self.node(ino)?.kind();
            if !matches!(k, Kind::File | Kind::Dir) {
                return Err(Errno::EPERM);
            }
            self.access(ino, 2, cred)?;
        }
        let n = self.node_mut(ino)?;
        let exists = n.xattrs.contains_key(name);
        if flags & XATTR_CREATE != 0 && exists {
            return Err(Errno::EEXIST);
        }
        if flags & XATTR_REPLACE != 0 && !exists {
            return Err(Errno::ENODATA);
        }
        n.xattrs.insert(name.to_vec(), value.to_vec());
        n.times[C] = now;
        Ok(())
    }

    pub fn removexattr(&mut self, ino: Ino, name: &[u8], cred: &Cred, now: u64) -> Result<(), Errno> {
        if name.starts_with(b"user.") {
            self.access(ino, 2, cred)?;
        }
        let n = self.node_mut(ino)?;
        n.xattrs.remove(name).ok_or(Errno::ENODATA)?;
        n.times[C] = now;
        Ok(())
    }

    pub fn statfs(&self) -> StatFs {
        StatFs { bsize: PAGE, blocks: self.limit, bfree: self.limit - self.used, files: u64::MAX >> 1, ffree: (u64::MAX >> 1) - self.inodes.len() as u64, namelen: NAME_MAX as u64 }
    }

    /// Pages of file data in use (for checks).
    pub fn used_pages(&self) -> u64 {
        self.used
    }

    /// What `ino` is; `None` if it is gone.
    pub fn kind(&self, ino: Ino) -> Option<Kind> {
        self.inodes.get(&ino).map(Inode::kind)
    }

    /// A path of `ino` from the root (`""` for the root, else `/a/b`): a directory's only
    /// one, one of a file's names. `None` for an inode without a name (unlinked, still open).
    pub fn path_of(&self, ino: Ino) -> Option<Vec<u8>> {
        let mut names: Vec<&[u8]> = Vec::new();
        let mut cur = ino;
        if !matches!(self.inodes.get(&ino)?.body, Body::Dir { .. }) {
            // A file's directory: the first (in inode order) that names it.
            let (dir, name) = self.inodes.iter().find_map(|(&d, n)| match &n.body {
                Body::Dir { entries, .. } => entries.iter().find(|(_, (_, i))| *i == ino).map(|(name, _)| (d, name.as_slice())),
                _ => None,
            })?;
            names.push(name);
            cur = dir;
        }
        while cur != self.root {
            let Body::Dir { parent, .. } = &self.inodes.get(&cur)?.body else { return None };
            let Body::Dir { entries, .. } = &self.inodes.get(parent)?.body else { return None };
            names.push(entries.iter().find(|(_, (_, i))| *i == cur).map(|(name, _)| name.as_slice())?);
            cur = *parent;
        }
        Some(names.iter().rev().flat_map(|n| [b"/".as_slice(), n]).flatten().copied().collect())
    }

    /// Number of live inodes (for checks).
    pub fn inode_count(&self) -> usize {
        self.inodes.len()
    }
}
