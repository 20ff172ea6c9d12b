//! `Sysno`: an x86_64 syscall number with its name.

use core::fmt;

use crate::x86_64::table::{MAX_NR, TABLE};

/// A native (x86_64) syscall number. Numbers the table does not know are still valid values
/// (the guest may issue anything); they simply have no name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sysno(pub u32);

impl Sysno {
    /// The highest number with a name.
    pub const MAX_KNOWN: u32 = MAX_NR;

    /// The syscall's name (`"openat"`), or `None` for a number the table does not know.
    pub fn name(self) -> Option<&'static str> {
        TABLE.binary_search_by_key(&self.0, |&(n, _)| n).ok().map(|i| TABLE[i].1)
    }

    /// Looks a syscall up by name.
    pub fn from_name(name: &str) -> Option<Sysno> {
        TABLE.iter().find(|&&(_, n)| n == name).map(|&(nr, _)| Sysno(nr))
    }

    /// Every named syscall, in number order.
    pub fn all() -> impl Iterator<Item = Sysno> {
        TABLE.iter().map(|&(n, _)| Sysno(n))
    }
}

impl fmt::Debug for Sysno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "syscall_{}", self.0),
        }
    }
}

impl fmt::Display for Sysno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x86_64::nr;

    #[test]
    fn names() {
        assert_eq!(Sysno(nr::OPENAT).name(), Some("openat"));
        assert_eq!(Sysno::from_name("getpid"), Some(Sysno(39)));
        assert_eq!(Sysno(nr::FCHMODAT2).name(), Some("fchmodat2"));
        assert_eq!(Sysno(10_000).name(), None);
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0), "table sorted and unique");
    }
}
