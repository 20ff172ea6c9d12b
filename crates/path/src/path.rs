//! `GuestPath` and `HostPath`: canonical absolute paths as bytes, one newtype per namespace, so
//! a path the guest named can never reach the host untranslated by mistake.

use core::borrow::Borrow;
use core::fmt;

use viewos_abi::Errno;

/// The longest name of one path component (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// The size of the kernel's path buffer, NUL included (`PATH_MAX`): a path of 4096 bytes or
/// more fails with `ENAMETOOLONG`.
pub const PATH_MAX: usize = 4096;

/// Checks the canonical form both newtypes share: absolute, no NUL, no empty, `.` or `..`
/// component, no trailing slash (except `/` itself), every component at most `NAME_MAX`.
fn check(bytes: &[u8]) -> Result<(), Errno> {
    if bytes == b"/" {
        return Ok(());
    }
    if bytes.first() != Some(&b'/') || bytes.contains(&0) {
        return Err(Errno::EINVAL);
    }
    for c in bytes[1..].split(|&b| b == b'/') {
        if c.is_empty() || c == b"." || c == b".." {
            return Err(Errno::EINVAL);
        }
        if c.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
    }
    Ok(())
}

/// The ends of the non-root prefixes of a canonical path in "internal form" (`""` for the
/// root, else `/a/b`): for `/a/b`, 2 (`/a`) and 4 (`/a/b`).
pub(crate) fn prefix_ends(path: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let inner = path.iter().enumerate().skip(1).filter(|&(_, &b)| b == b'/').map(|(i, _)| i);
    inner.chain((!path.is_empty()).then_some(path.len()))
}

/// `base` (a canonical path, possibly `/`) followed by `rest` (internal form, `""` or `/x/y`).
pub(crate) fn join(base: &[u8], rest: &[u8]) -> Vec<u8> {
    match (base, rest) {
        (b"/", b"") => b"/".to_vec(),
        (b"/", _) => rest.to_vec(),
        _ => [base, rest].concat(),
    }
}

/// The internal form of a canonical path: the root is `""`, so that appending `/name` works
/// the same at every depth.
pub(crate) fn internal(path: &[u8]) -> &[u8] {
    if path == b"/" { b"" } else { path }
}

macro_rules! canonical_path {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Vec<u8>);

        impl $name {
            /// Validates a canonical absolute path: `EINVAL` for a relative path, a NUL, an
            /// empty, `.` or `..` component or a trailing slash; `ENAMETOOLONG` for a
            /// component longer than `NAME_MAX`.
            pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, Errno> {
                let bytes = bytes.into();
                check(&bytes)?;
                Ok(Self(bytes))
            }

            /// `/`.
            pub fn root() -> Self {
                Self(b"/".to_vec())
            }

            /// From bytes already known to be canonical (or the internal form, `""` for `/`).
            pub(crate) fn from_canonical(bytes: Vec<u8>) -> Self {
                debug_assert!(bytes.is_empty() || check(&bytes).is_ok(), "{:?}", bytes.escape_ascii().to_string());
                if bytes.is_empty() { Self::root() } else { Self(bytes) }
            }

            pub fn as_bytes(&self) -> &[u8] {
                &self.0
            }

            pub fn into_bytes(self) -> Vec<u8> {
                self.0
            }

            pub fn is_root(&self) -> bool {
                self.0 == b"/"
            }

            /// The components, without slashes; none for `/`.
            pub fn components(&self) -> impl Iterator<Item = &[u8]> {
                self.0.split(|&b| b == b'/').filter(|c| !c.is_empty())
            }

            /// The last component; `None` for `/`.
            pub fn file_name(&self) -> Option<&[u8]> {
                self.components().last()
            }

            /// The parent directory; `None` for `/`.
            pub fn parent(&self) -> Option<Self> {
                let i = self.0.iter().rposition(|&b| b == b'/')?;
                if self.is_root() { None } else { Some(Self::from_canonical(self.0[..i].to_vec())) }
            }

            /// This path with one more component. `EINVAL` unless `name` is a plain name
            /// (no slash, no NUL, not `.` or `..`, not empty).
            pub fn join(&self, name: &[u8]) -> Result<Self, Errno> {
                if name.contains(&b'/') {
                    return Err(Errno::EINVAL);
                }
                let p = join(&self.0, &[b"/", name].concat());
                Self::new(p)
            }

            /// Whether `prefix` is this path or one of its ancestors (whole components:
            /// `/a` is a prefix of `/a/b` but not of `/ab`).
            pub fn starts_with(&self, prefix: &Self) -> bool {
                self.strip_prefix(prefix).is_some()
            }

            /// What follows `prefix`, in internal form: `""` for the path itself, else
            /// `/x/y`; `None` if `prefix` is not an ancestor-or-self.
            pub fn strip_prefix(&self, prefix: &Self) -> Option<&[u8]> {
                let p = internal(&prefix.0);
                let rest = internal(&self.0).strip_prefix(p)?;
                (rest.is_empty() || rest[0] == b'/').then_some(rest)
            }
        }

        impl Borrow<[u8]> for $name {
            fn borrow(&self) -> &[u8] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0.escape_ascii().to_string())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0.escape_ascii())
            }
        }
    };
}

canonical_path! {
    /// A canonical absolute path in a view's namespace, as the guest sees it: no symlinks
    /// in it except perhaps the last component (when a lookup did not follow it).
    GuestPath
}

canonical_path! {
    /// A canonical absolute path on the host, as the monitor's own syscalls take it.
    /// Canonical means textually (no `.`, `..`, `//`); hiding compares host paths as text,
    /// so host paths given to a [`View`](crate::View) should also be free of symlinks
    /// (`realpath`'d), or an alias through a host symlink escapes the comparison.
    HostPath
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form() {
        for ok in [&b"/"[..], b"/a", b"/a/b", b"/.a/..b/...", b"/a\xff"] {
            assert!(GuestPath::new(ok).is_ok(), "{}", ok.escape_ascii());
        }
        for bad in [&b""[..], b"a", b"//", b"/a/", b"/a//b", b"/./a", b"/a/..", b"/a\0b"] {
            assert_eq!(GuestPath::new(bad), Err(Errno::EINVAL), "{}", bad.escape_ascii());
        }
        assert_eq!(HostPath::new([b"/".to_vec(), vec![b'x'; 256]].concat()), Err(Errno::ENAMETOOLONG));
        assert!(HostPath::new([b"/".to_vec(), vec![b'x'; 255]].concat()).is_ok());
    }

    #[test]
    fn prefixes_and_parts() {
        let p = GuestPath::new("/a/bc/d").unwrap();
        assert_eq!(prefix_ends(b"/a/bc/d").collect::<Vec<_>>(), [2, 5, 7]);
        assert_eq!(prefix_ends(b"").count(), 0);
        assert_eq!(p.components().collect::<Vec<_>>(), [&b"a"[..], b"bc", b"d"]);
        assert_eq!(p.file_name(), Some(&b"d"[..]));
        assert_eq!(p.parent().unwrap().as_bytes(), b"/a/bc");
        assert_eq!(GuestPath::new("/a").unwrap().parent(), Some(GuestPath::root()));
        assert_eq!(GuestPath::root().parent(), None);
        assert_eq!(GuestPath::root().file_name(), None);
        assert!(p.starts_with(&GuestPath::new("/a/bc").unwrap()));
        assert!(p.starts_with(&GuestPath::root()));
        assert!(p.starts_with(&p));
        assert!(!p.starts_with(&GuestPath::new("/a/b").unwrap()));
        assert_eq!(GuestPath::root().join(b"x").unwrap().as_bytes(), b"/x");
        assert_eq!(p.join(b".."), Err(Errno::EINVAL));
        assert_eq!(p.join(b"x/y"), Err(Errno::EINVAL));
        assert_eq!(join(b"/", b""), b"/");
        assert_eq!(join(b"/h", b""), b"/h");
        assert_eq!(join(b"/h", b"/x"), b"/h/x");
    }
}
