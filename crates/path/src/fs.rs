//! The filesystem oracle: the two questions the resolver asks about the host, as a trait, so
//! that it runs against an in-memory tree in tests and against the real filesystem in the
//! adapter.

use viewos_abi::Errno;

use crate::HostPath;

/// What `lstat` says an object is, as far as path resolution cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Dir,
    Symlink,
    /// Anything else: regular file, device, fifo, socket.
    Other,
}

/// The host filesystem as the monitor sees it. Paths are host paths; the answers are what
/// `lstat(2)` and `readlink(2)` would give (errors as `Errno`: `ENOENT`, `ENOTDIR`, `EACCES`,
/// `ENAMETOOLONG`...).
///
/// The resolver only asks about paths whose every ancestor it has already seen to be a
/// directory (or that are a view's mount sources), so an implementation need not follow
/// symlinks in the middle of a path; the real filesystem does anyway.
pub trait Fs {
    /// The kind of the object at `host`, without following a final symlink.
    fn lstat(&self, host: &HostPath) -> Result<Kind, Errno>;

    /// The target of the symlink at `host`, as raw bytes.
    fn readlink(&self, host: &HostPath) -> Result<Vec<u8>, Errno>;

    /// Whether the symlink at `host` is a "magic link" (`/proc/PID/fd/N`, `/proc/PID/cwd`,
    /// `/proc/PID/exe`, ...): one the kernel follows by jumping to an open file, not by
    /// reading a path. Those are refused under `RESOLVE_NO_MAGICLINKS` and the scoped
    /// lookups; otherwise the resolver follows the text [`Fs::readlink`] returns, so an
    /// adapter that supports them returns the target's *guest* path there.
    fn is_magic_link(&self, _host: &HostPath) -> bool {
        false
    }
}

impl<T: Fs + ?Sized> Fs for &T {
    fn lstat(&self, host: &HostPath) -> Result<Kind, Errno> {
        (**self).lstat(host)
    }

    fn readlink(&self, host: &HostPath) -> Result<Vec<u8>, Errno> {
        (**self).readlink(host)
    }

    fn is_magic_link(&self, host: &HostPath) -> bool {
        (**self).is_magic_link(host)
    }
}
