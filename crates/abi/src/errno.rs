//! `Errno`: an error number returned to the guest. A guest error is data, not a Rust error.

use core::fmt;

/// A Linux error number (1..=4095), as returned to the guest in `-errno` form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(pub u16);

macro_rules! errnos {
    ($($name:ident = $val:expr, $msg:expr;)*) => {
        impl Errno {
            $(#[doc = $msg] pub const $name: Errno = Errno($val);)*

            /// The symbolic name (`"ENOENT"`), if known.
            pub fn name(self) -> Option<&'static str> {
                match self.0 { $($val => Some(stringify!($name)),)* _ => None }
            }
        }
    };
}

errnos! {
    EPERM = 1, "Operation not permitted";
    ENOENT = 2, "No such file or directory";
    ESRCH = 3, "No such process";
    EINTR = 4, "Interrupted system call";
    EIO = 5, "I/O error";
    ENXIO = 6, "No such device or address";
    E2BIG = 7, "Argument list too long";
    ENOEXEC = 8, "Exec format error";
    EBADF = 9, "Bad file number";
    ECHILD = 10, "No child processes";
    EAGAIN = 11, "Try again";
    ENOMEM = 12, "Out of memory";
    EACCES = 13, "Permission denied";
    EFAULT = 14, "Bad address";
    EBUSY = 16, "Device or resource busy";
    EEXIST = 17, "File exists";
    EXDEV = 18, "Cross-device link";
    ENODEV = 19, "No such device";
    ENOTDIR = 20, "Not a directory";
    EISDIR = 21, "Is a directory";
    EINVAL = 22, "Invalid argument";
    ENFILE = 23, "File table overflow";
    EMFILE = 24, "Too many open files";
    ENOTTY = 25, "Not a typewriter";
    EFBIG = 27, "File too large";
    ENOSPC = 28, "No space left on device";
    ESPIPE = 29, "Illegal seek";
    EROFS = 30, "Read-only file system";
    EMLINK = 31, "Too many links";
    EPIPE = 32, "Broken pipe";
    ERANGE = 34, "Math result not representable";
    ENAMETOOLONG = 36, "File name too long";
    ENOSYS = 38, "Invalid system call number";
    ENOTEMPTY = 39, "Directory not empty";
    ELOOP = 40, "Too many symbolic links encountered";
    ENODATA = 61, "No data available";
    EOVERFLOW = 75, "Value too large for defined data type";
    ENOTSOCK = 88, "Socket operation on non-socket";
    EOPNOTSUPP = 95, "Operation not supported";
    EAFNOSUPPORT = 97, "Address family not supported";
    EADDRINUSE = 98, "Address already in use";
    ECONNREFUSED = 111, "Connection refused";
    ESTALE = 116, "Stale file handle";
}

impl Errno {
    /// The largest value the kernel ever returns as `-errno`.
    pub const MAX: u16 = 4095;

    /// Decodes a raw syscall return value: `Some(errno)` for `-4095..=-1`.
    pub fn from_ret(ret: i64) -> Option<Errno> {
        if (-(Self::MAX as i64)..=-1).contains(&ret) { Some(Errno((-ret) as u16)) } else { None }
    }

    /// The raw return value the guest sees (`-errno`).
    pub fn as_ret(self) -> i64 {
        -i64::from(self.0)
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ret_round_trip() {
        for e in 1..=Errno::MAX {
            assert_eq!(Errno::from_ret(Errno(e).as_ret()), Some(Errno(e)));
        }
        assert_eq!(Errno::from_ret(0), None);
        assert_eq!(Errno::from_ret(-4096), None);
        assert_eq!(Errno::ENOENT.name(), Some("ENOENT"));
    }
}
