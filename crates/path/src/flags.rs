//! `Flags`: how a lookup treats the final component and where it may go, decoded from the
//! `open`/`*at` flags and the `openat2` `resolve` field.

use core::fmt;
use core::ops::{BitOr, BitOrAssign};

use viewos_abi::Errno;

/// The raw Linux flag values the lookup flags come from.
pub mod linux {
    pub use viewos_abi::x86_64::flags::*;
}

/// Lookup flags. The empty set means: follow a final symlink, an empty path is `ENOENT`, no
/// scoping.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Flags(u32);

impl Flags {
    pub const EMPTY: Flags = Flags(0);
    /// Do not follow a symlink in the final component (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`,
    /// `O_CREAT|O_EXCL`, `lstat`). A trailing slash still follows it.
    pub const NOFOLLOW: Flags = Flags(1);
    /// The result must be a directory (`O_DIRECTORY`); as a trailing slash does, but without
    /// forcing a final symlink to be followed.
    pub const DIRECTORY: Flags = Flags(1 << 1);
    /// An empty path names the starting point itself (`AT_EMPTY_PATH`).
    pub const EMPTY_PATH: Flags = Flags(1 << 2);
    /// `RESOLVE_BENEATH`: every step must stay below the starting point; an absolute path,
    /// an absolute symlink or a `..` above it is `EXDEV`.
    pub const BENEATH: Flags = Flags(1 << 3);
    /// `RESOLVE_IN_ROOT`: the starting point is the root for this lookup; `/`, absolute
    /// symlinks and `..` stop there.
    pub const IN_ROOT: Flags = Flags(1 << 4);
    /// `RESOLVE_NO_SYMLINKS`: following any symlink is `ELOOP`.
    pub const NO_SYMLINKS: Flags = Flags(1 << 5);
    /// `RESOLVE_NO_MAGICLINKS`: following a magic link is `ELOOP`.
    pub const NO_MAGICLINKS: Flags = Flags(1 << 6);
    /// `RESOLVE_NO_XDEV`: crossing a mount of the view (into a bind, out of it by `..`, or
    /// back to the root by an absolute symlink) is `EXDEV`. Mount points inside the host
    /// directories the view is made of are not seen.
    pub const NO_XDEV: Flags = Flags(1 << 7);
    /// `RESOLVE_CACHED`: the lookup must be served from the dentry cache; the resolver can
    /// promise no such thing, so the lookup fails with `EAGAIN`, which tells the caller to
    /// retry without the flag.
    pub const CACHED: Flags = Flags(1 << 8);

    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    /// The lookup flags of `open`/`openat`/`openat2`'s `flags` argument.
    pub fn from_open(oflags: u64) -> Flags {
        use linux::*;
        let mut f = Flags::EMPTY;
        if oflags & O_NOFOLLOW != 0 || oflags & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL {
            f |= Flags::NOFOLLOW;
        }
        if oflags & O_DIRECTORY != 0 {
            f |= Flags::DIRECTORY;
        }
        f
    }

    /// The lookup flags of an `*at` call's `AT_SYMLINK_NOFOLLOW` and `AT_EMPTY_PATH`.
    pub fn from_at(at_flags: u64) -> Flags {
        let mut f = Flags::EMPTY;
        if at_flags & linux::AT_SYMLINK_NOFOLLOW != 0 {
            f |= Flags::NOFOLLOW;
        }
        if at_flags & linux::AT_EMPTY_PATH != 0 {
            f |= Flags::EMPTY_PATH;
        }
        f
    }

    /// The lookup flags of `openat2`'s `resolve` field; `EINVAL` for an unknown bit, as the
    /// kernel answers. (`RESOLVE_BENEATH | RESOLVE_IN_ROOT` is refused by [`resolve`](crate::resolve).)
    pub fn from_resolve(resolve: u64) -> Result<Flags, Errno> {
        use linux::*;
        const TABLE: [(u64, Flags); 6] = [
            (RESOLVE_NO_XDEV, Flags::NO_XDEV),
            (RESOLVE_NO_MAGICLINKS, Flags::NO_MAGICLINKS),
            (RESOLVE_NO_SYMLINKS, Flags::NO_SYMLINKS),
            (RESOLVE_BENEATH, Flags::BENEATH),
            (RESOLVE_IN_ROOT, Flags::IN_ROOT),
            (RESOLVE_CACHED, Flags::CACHED),
        ];
        let known = TABLE.iter().fold(0, |a, &(bit, _)| a | bit);
        if resolve & !known != 0 {
            return Err(Errno::EINVAL);
        }
        Ok(TABLE.iter().filter(|&&(bit, _)| resolve & bit != 0).fold(Flags::EMPTY, |a, &(_, f)| a | f))
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 9] = ["NOFOLLOW", "DIRECTORY", "EMPTY_PATH", "BENEATH", "IN_ROOT", "NO_SYMLINKS", "NO_MAGICLINKS", "NO_XDEV", "CACHED"];
        let set: Vec<&str> = NAMES.iter().enumerate().filter(|&(i, _)| self.0 & (1 << i) != 0).map(|(_, n)| *n).collect();
        if set.is_empty() { f.write_str("Flags(EMPTY)") } else { write!(f, "Flags({})", set.join(" | ")) }
    }
}
