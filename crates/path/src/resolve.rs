//! `resolve`: the kernel's path walk (namei), run on a guest path in a view's namespace,
//! asking the host only `lstat` and `readlink` of translated paths.

use viewos_abi::Errno;

use crate::path::{NAME_MAX, PATH_MAX, internal};
use crate::{Flags, Fs, GuestPath, HostPath, Kind, View};

/// How many symlinks one lookup may follow in total (`MAXSYMLINKS`); one more is `ELOOP`.
pub const MAXSYMLINKS: u32 = 40;

/// What is at the end of a successful lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// An object of this kind (a symlink only when the final component was not followed).
    Exists(Kind),
    /// Nothing: the final component does not exist, but its parent does and is a
    /// directory. A call that creates makes `name` in host directory `parent`.
    Missing { parent: HostPath, name: Vec<u8> },
}

/// The answer of a successful lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Resolved {
    /// The canonical guest path: symlink-free, except the final component when a symlink
    /// there was not followed.
    pub guest: GuestPath,
    /// The host path the guest path shows, for the monitor's own syscalls.
    pub host: HostPath,
    /// The mount point (a bind's `DST`, or `/`) of the mount the result lies in.
    pub mount: GuestPath,
    pub found: Found,
    /// The result must be a directory (a trailing slash or [`Flags::DIRECTORY`]). An existing
    /// result is then always one; for a missing one, only a directory may be created there
    /// (`open(O_CREAT)` on it is `EISDIR`).
    pub dir_required: bool,
}

impl Resolved {
    /// The kind of the object found; `None` if missing.
    pub fn kind(&self) -> Option<Kind> {
        match self.found {
            Found::Exists(k) => Some(k),
            Found::Missing { .. } => None,
        }
    }
}

/// Looks `path` up in `view` as Linux would for a process whose root is the view's `/`,
/// whose working directory is `cwd`, relative to an open directory at guest path `dirfd`
/// (`None` for `AT_FDCWD`). `cwd` and `dirfd` are canonical guest paths the caller recorded
/// (from earlier lookups); `path` is the raw bytes the guest passed, up to its NUL.
///
/// Guest errors come back as `Err(errno)`, the errno the guest must see, in the order the
/// kernel checks them: `EINVAL` (`BENEATH` with `IN_ROOT`), `ENAMETOOLONG` (path of
/// `PATH_MAX` bytes or more), `ENOENT` (empty path without [`Flags::EMPTY_PATH`]), `EAGAIN`
/// ([`Flags::CACHED`]), `EXDEV` (absolute path under `BENEATH`), then the walk's own. Any
/// error of the [`Fs`] oracle other than `ENOENT` for the final component is passed on.
pub fn resolve<F: Fs + ?Sized>(view: &View, fs: &F, cwd: &GuestPath, dirfd: Option<&GuestPath>, path: &[u8], flags: Flags) -> Result<Resolved, Errno> {
    let path = path.split(|&b| b == 0).next().unwrap_or_default();
    if flags.contains(Flags::BENEATH | Flags::IN_ROOT) {
        return Err(Errno::EINVAL);
    }
    if path.len() >= PATH_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if path.is_empty() && !flags.contains(Flags::EMPTY_PATH) {
        return Err(Errno::ENOENT);
    }
    if flags.contains(Flags::CACHED) {
        return Err(Errno::EAGAIN);
    }
    let absolute = path.first() == Some(&b'/');
    if absolute && flags.contains(Flags::BENEATH) {
        return Err(Errno::EXDEV);
    }
    let mut walk = Walk::start(view, fs, flags, cwd, dirfd, path)?;
    walk.push_frame(path.to_vec());
    while let Some(slash) = walk.next_component() {
        let last = walk.frames.is_empty();
        if last && slash {
            walk.follow = true;
            walk.must_dir = true;
        }
        match walk.name.as_slice() {
            b"." => {}
            b".." => walk.dotdot()?,
            _ => {
                if let Some(missing) = walk.step(last)? {
                    return Ok(missing);
                }
            }
        }
    }
    walk.finish()
}

/// The state of one lookup, as the kernel's `nameidata`.
struct Walk<'a, F: ?Sized> {
    view: &'a View,
    fs: &'a F,
    flags: Flags,
    /// The current position: a canonical guest path in internal form (`""` for `/`). At
    /// the top of the loop it is always a directory.
    cur: Vec<u8>,
    /// The current mount, as the length of its mount point's prefix of `cur`.
    mount_len: usize,
    kind: Kind,
    /// Where `/`, absolute symlinks and `..` stop: the view's root, or the starting point
    /// of a scoped lookup (a prefix of `cur`, which never gets shorter than it).
    root_len: usize,
    root_mount_len: usize,
    links: u32,
    follow: bool,
    must_dir: bool,
    /// The path and the bodies of the symlinks being followed, innermost last, each with
    /// its read position. A frame on the stack always holds one more component.
    frames: Vec<(Vec<u8>, usize)>,
    /// The component being looked up.
    name: Vec<u8>,
}

impl<'a, F: Fs + ?Sized> Walk<'a, F> {
    fn start(view: &'a View, fs: &'a F, flags: Flags, cwd: &GuestPath, dirfd: Option<&GuestPath>, path: &[u8]) -> Result<Self, Errno> {
        let absolute = path.first() == Some(&b'/');
        // An absolute path ignores the dirfd (unless it is the root of an IN_ROOT lookup);
        // the cwd is a directory by construction, a dirfd may be anything.
        let (start, from_dirfd): (&[u8], bool) = match dirfd {
            _ if absolute && !flags.contains(Flags::IN_ROOT) => (b"", false),
            Some(d) => (internal(d.as_bytes()), true),
            None => (internal(cwd.as_bytes()), false),
        };
        let loc = view.locate(start).ok_or(Errno::ENOENT)?;
        let kind = if from_dirfd || path.is_empty() { fs.lstat(&loc.host)? } else { Kind::Dir };
        if !path.is_empty() && kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let scoped = flags.intersects(Flags::BENEATH | Flags::IN_ROOT);
        let (root_len, root_mount_len) = if scoped { (start.len(), loc.mount_len) } else { (0, 0) };
        Ok(Walk {
            view,
            fs,
            flags,
            cur: start.to_vec(),
            mount_len: loc.mount_len,
            kind,
            root_len,
            root_mount_len,
            links: 0,
            follow: !flags.contains(Flags::NOFOLLOW),
            must_dir: flags.contains(Flags::DIRECTORY),
            frames: Vec::new(),
            name: Vec::new(),
        })
    }

    /// Stacks `text` to be walked next, unless it holds no component.
    fn push_frame(&mut self, text: Vec<u8>) {
        let pos = text.iter().position(|&b| b != b'/').unwrap_or(text.len());
        if pos < text.len() {
            self.frames.push((text, pos));
        }
    }

    /// Moves the next component into `self.name`; returns whether a slash followed it
    /// (`None` when the walk is done). Frames are dropped as soon as they are used up, so
    /// the component is the last one exactly when no frame is left.
    fn next_component(&mut self) -> Option<bool> {
        let (text, pos) = self.frames.last_mut()?;
        let start = *pos;
        let end = text[start..].iter().position(|&b| b == b'/').map_or(text.len(), |i| start + i);
        self.name.clear();
        self.name.extend_from_slice(&text[start..end]);
        let slash = end < text.len();
        match text[end..].iter().position(|&b| b != b'/') {
            Some(i) => *pos = end + i,
            None => {
                self.frames.pop();
            }
        }
        Some(slash)
    }

    /// `..`: to the parent in the guest namespace, never above the root.
    fn dotdot(&mut self) -> Result<(), Errno> {
        if self.cur.len() == self.root_len {
            return if self.flags.contains(Flags::BENEATH) { Err(Errno::EXDEV) } else { Ok(()) };
        }
        let parent_len = self.cur.iter().rposition(|&b| b == b'/').unwrap_or(0);
        let loc = self.view.locate(&self.cur[..parent_len]).ok_or(Errno::ENOENT)?;
        if self.flags.contains(Flags::NO_XDEV) && loc.mount_len != self.mount_len {
            return Err(Errno::EXDEV);
        }
        self.cur.truncate(parent_len);
        self.mount_len = loc.mount_len;
        self.kind = Kind::Dir;
        Ok(())
    }

    /// Looks `self.name` up in the current directory and steps onto it, or follows it.
    /// `Some` only for a missing final component.
    fn step(&mut self, last: bool) -> Result<Option<Resolved>, Errno> {
        if self.name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let parent_len = self.cur.len();
        self.cur.push(b'/');
        self.cur.extend_from_slice(&self.name);
        let loc = self.view.locate(&self.cur).ok_or(Errno::ENOENT)?;
        // Not a mount point iff the child lives in its parent's mount.
        let mount_point = loc.mount_len != self.mount_len;
        if mount_point && self.flags.contains(Flags::NO_XDEV) {
            return Err(Errno::EXDEV);
        }
        let kind = match self.fs.lstat(&loc.host) {
            Ok(kind) => kind,
            // A mount point whose source is gone is not a place to create anything.
            Err(Errno::ENOENT) if last && !mount_point => return Ok(Some(self.missing(loc.host))),
            Err(e) => return Err(e),
        };
        if kind == Kind::Symlink && (!last || self.follow) {
            if self.is_pathless_magic(&loc.host) {
                // A magic link to an object with no path (pipe, socket, anonymous inode):
                // nothing lies below it, and only the kernel can jump to it, so the walk
                // ends on the link itself for the caller's host call to follow.
                if !last {
                    return Err(Errno::ENOTDIR);
                }
                self.mount_len = loc.mount_len;
                self.kind = Kind::Other;
                return Ok(None);
            }
            self.cur.truncate(parent_len);
            return self.follow_link(&loc.host).map(|()| None);
        }
        if !last && kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        self.mount_len = loc.mount_len;
        self.kind = kind;
        Ok(None)
    }

    /// True for a magic link this lookup may follow whose target has no path.
    fn is_pathless_magic(&self, host: &HostPath) -> bool {
        self.fs.is_magic_link(host)
            && !self.flags.intersects(Flags::NO_MAGICLINKS | Flags::NO_SYMLINKS | Flags::BENEATH | Flags::IN_ROOT)
            && self.fs.readlink(host).is_ok_and(|body| body.first().is_some_and(|&b| b != b'/'))
    }

    /// Follows the symlink at `host`, found in the current directory.
    fn follow_link(&mut self, host: &HostPath) -> Result<(), Errno> {
        self.links += 1;
        if self.links > MAXSYMLINKS || self.flags.contains(Flags::NO_SYMLINKS) {
            return Err(Errno::ELOOP);
        }
        if self.fs.is_magic_link(host) {
            if self.flags.contains(Flags::NO_MAGICLINKS) {
                return Err(Errno::ELOOP);
            }
            // The kernel does not let a scoped lookup jump through a magic link.
            if self.flags.intersects(Flags::BENEATH | Flags::IN_ROOT) {
                return Err(Errno::EXDEV);
            }
        }
        let mut body = self.fs.readlink(host)?;
        if let Some(nul) = body.iter().position(|&b| b == 0) {
            body.truncate(nul);
        }
        match body.first() {
            None => return Err(Errno::ENOENT),
            Some(b'/') => {
                if self.flags.contains(Flags::BENEATH) || (self.flags.contains(Flags::NO_XDEV) && self.mount_len != self.root_mount_len) {
                    return Err(Errno::EXDEV);
                }
                self.cur.truncate(self.root_len);
                self.mount_len = self.root_mount_len;
            }
            Some(_) => {}
        }
        self.kind = Kind::Dir;
        self.push_frame(body);
        Ok(())
    }

    fn missing(&self, host: HostPath) -> Resolved {
        let h = host.as_bytes();
        let parent = h[..h.iter().rposition(|&b| b == b'/').unwrap_or(0)].to_vec();
        Resolved {
            guest: GuestPath::from_canonical(self.cur.clone()),
            mount: GuestPath::from_canonical(self.cur[..self.mount_len].to_vec()),
            found: Found::Missing { parent: HostPath::from_canonical(parent), name: self.name.clone() },
            host,
            dir_required: self.must_dir,
        }
    }

    fn finish(self) -> Result<Resolved, Errno> {
        if self.must_dir && self.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let loc = self.view.locate(&self.cur).ok_or(Errno::ENOENT)?;
        Ok(Resolved {
            host: loc.host,
            mount: GuestPath::from_canonical(self.cur[..loc.mount_len].to_vec()),
            guest: GuestPath::from_canonical(self.cur),
            found: Found::Exists(self.kind),
            dir_required: self.must_dir,
        })
    }
}
