//! Flag values of the path and open calls, as the x86_64 kernel defines them (`O_NOFOLLOW`
//! and `O_DIRECTORY` differ on some other architectures).

pub const O_WRONLY: u64 = 0o1;
pub const O_CREAT: u64 = 0o100;
pub const O_EXCL: u64 = 0o200;
pub const O_TRUNC: u64 = 0o1000;
pub const O_DIRECTORY: u64 = 0o200000;
pub const O_NOFOLLOW: u64 = 0o400000;
pub const O_CLOEXEC: u64 = 0o2000000;
pub const O_PATH: u64 = 0o10000000;
pub const O_TMPFILE: u64 = 0o20000000 | O_DIRECTORY;
/// The kernel's `VALID_OPEN_FLAGS`: the access mode through `__O_TMPFILE`.
pub const VALID_OPEN_FLAGS: u64 = 0o3 | 0o100 | 0o200 | 0o400 | 0o1000 | 0o2000 | 0o4000 | 0o10000 | 0o20000 | 0o40000
    | 0o100000 | 0o200000 | 0o400000 | 0o1000000 | 0o2000000 | 0o4000000 | 0o10000000 | 0o20000000;

pub const AT_FDCWD: i32 = -100;
pub const AT_SYMLINK_NOFOLLOW: u64 = 0x100;
pub const AT_SYMLINK_FOLLOW: u64 = 0x400;
pub const AT_EMPTY_PATH: u64 = 0x1000;

pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;
pub const RESOLVE_CACHED: u64 = 0x20;

pub const IN_DONT_FOLLOW: u64 = 0x0200_0000;
pub const FAN_MARK_DONTFOLLOW: u64 = 0x04;
pub const UMOUNT_NOFOLLOW: u64 = 0x08;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmpfile_includes_directory_and_valid_flags_cover_the_named_ones() {
        assert_eq!(O_TMPFILE & O_DIRECTORY, O_DIRECTORY);
        for f in [O_WRONLY, O_CREAT, O_EXCL, O_TRUNC, O_DIRECTORY, O_NOFOLLOW, O_CLOEXEC, O_PATH, O_TMPFILE] {
            assert_eq!(f & VALID_OPEN_FLAGS, f);
        }
    }
}
