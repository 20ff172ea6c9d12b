//! Which syscalls take paths, and how the kernel looks each path up: the declarative table
//! a path view needs (which argument is the path, which the dirfd, whether the final
//! symlink is followed, whether an empty path means the dirfd itself, whether the final
//! component may be missing). Paths inside socket addresses (AF_UNIX) and file contents
//! (the target of a symlink) are not lookups and are not listed.

use crate::x86_64::nr;

/// Whether a lookup follows a symlink in the final component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    Always,
    Never,
    /// Follows unless `mask` is set in argument `arg` (`AT_SYMLINK_NOFOLLOW`, ...).
    UnlessFlag { arg: usize, mask: u64 },
    /// Follows only if `mask` is set in argument `arg` (`AT_SYMLINK_FOLLOW` of linkat).
    IfFlag { arg: usize, mask: u64 },
    /// `open` flags in argument `arg`: not with `O_NOFOLLOW`, nor with `O_CREAT|O_EXCL`.
    OpenFlags { arg: usize },
    /// `openat2`: the flags are in the `struct open_how` argument `arg` points to.
    OpenHow { arg: usize },
}

/// When an empty path means "the dirfd itself".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmptyPath {
    /// Empty path: ENOENT.
    Never,
    /// With `mask` (`AT_EMPTY_PATH`) set in argument `arg`.
    Flag { arg: usize, mask: u64 },
    /// Always (readlinkat).
    Always,
}

/// What the call does with the final component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// It must exist.
    Lookup,
    /// It may be missing: the call creates it (mkdir, the new name of link/rename...).
    Create,
    /// It may be missing if `mask` (`O_CREAT`) is set in argument `arg`, or, for `OpenHow`,
    /// in the open_how flags.
    CreateIfFlag { arg: usize, mask: u64 },
    /// It is removed (it must exist; the parent directory is what is written).
    Remove,
    /// It is executed (interpreters and the ELF loader are looked up too).
    Exec,
}

/// One path argument of a syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathArg {
    /// The argument holding the path pointer.
    pub path: usize,
    /// The argument holding the dirfd, if the path is relative to one (else the cwd).
    pub dirfd: Option<usize>,
    pub follow: Follow,
    pub empty: EmptyPath,
    pub role: Role,
    /// A NULL path means "the dirfd itself" (utimensat, fanotify_mark).
    pub null_is_dirfd: bool,
}

use crate::x86_64::flags::{AT_EMPTY_PATH, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW, FAN_MARK_DONTFOLLOW, IN_DONT_FOLLOW, O_CREAT, UMOUNT_NOFOLLOW};

const fn p(path: usize, dirfd: Option<usize>, follow: Follow, empty: EmptyPath, role: Role) -> PathArg {
    PathArg { path, dirfd, follow, empty, role, null_is_dirfd: false }
}

use EmptyPath::Never as NoEmpty;
use Follow::{Always, Never};
use Role::{Create, Exec, Lookup, Remove};

const fn nofollow_at(arg: usize) -> Follow {
    Follow::UnlessFlag { arg, mask: AT_SYMLINK_NOFOLLOW }
}
const fn empty_at(arg: usize) -> EmptyPath {
    EmptyPath::Flag { arg, mask: AT_EMPTY_PATH }
}
const fn plain(path: usize, follow: Follow, role: Role) -> PathArg {
    p(path, None, follow, NoEmpty, role)
}
const fn at(dirfd: usize, path: usize, follow: Follow, role: Role) -> PathArg {
    p(path, Some(dirfd), follow, NoEmpty, role)
}
/// `*at` calls with an `AT_*` flags argument (nofollow and empty path).
const fn at_flags(dirfd: usize, path: usize, flags: usize, role: Role) -> PathArg {
    p(path, Some(dirfd), nofollow_at(flags), empty_at(flags), role)
}

/// The path arguments of syscall `nr` (empty for calls that take none).
pub fn path_args(nr: u32) -> &'static [PathArg] {
    const OPEN_CREATE: Role = Role::CreateIfFlag { arg: 1, mask: O_CREAT };
    const OPENAT_CREATE: Role = Role::CreateIfFlag { arg: 2, mask: O_CREAT };
    match nr {
        nr::OPEN => const { &[plain(0, Follow::OpenFlags { arg: 1 }, OPEN_CREATE)] },
        nr::OPENAT => const { &[at(0, 1, Follow::OpenFlags { arg: 2 }, OPENAT_CREATE)] },
        nr::OPENAT2 => const { &[at(0, 1, Follow::OpenHow { arg: 2 }, Role::CreateIfFlag { arg: 2, mask: O_CREAT })] },
        nr::CREAT => const { &[plain(0, Always, Create)] },
        nr::STAT | nr::ACCESS | nr::CHMOD | nr::CHOWN | nr::TRUNCATE | nr::UTIME | nr::UTIMES | nr::STATFS
        | nr::CHDIR | nr::CHROOT | nr::SETXATTR | nr::GETXATTR | nr::LISTXATTR | nr::REMOVEXATTR | nr::SWAPON
        | nr::SWAPOFF | nr::ACCT | nr::USELIB => const { &[plain(0, Always, Lookup)] },
        nr::LSTAT | nr::LCHOWN | nr::LSETXATTR | nr::LGETXATTR | nr::LLISTXATTR | nr::LREMOVEXATTR => const { &[plain(0, Never, Lookup)] },
        nr::READLINK => const { &[plain(0, Never, Lookup)] },
        nr::READLINKAT => const { &[p(1, Some(0), Never, EmptyPath::Always, Lookup)] },
        nr::NEWFSTATAT => const { &[at_flags(0, 1, 3, Lookup)] },
        nr::STATX => const { &[at_flags(0, 1, 2, Lookup)] },
        nr::FACCESSAT | nr::FCHMODAT | nr::FUTIMESAT => const { &[at(0, 1, Always, Lookup)] },
        nr::FACCESSAT2 | nr::FCHMODAT2 => const { &[at_flags(0, 1, 3, Lookup)] },
        nr::FCHOWNAT => const { &[at_flags(0, 1, 4, Lookup)] },
        nr::UTIMENSAT => const { &[PathArg { null_is_dirfd: true, ..at_flags(0, 1, 3, Lookup) }] },
        nr::EXECVE => const { &[plain(0, Always, Exec)] },
        nr::EXECVEAT => const { &[at_flags(0, 1, 4, Exec)] },
        nr::MKDIR | nr::MKNOD => const { &[plain(0, Never, Create)] },
        nr::MKDIRAT | nr::MKNODAT => const { &[at(0, 1, Never, Create)] },
        nr::UNLINK | nr::RMDIR => const { &[plain(0, Never, Remove)] },
        nr::UNLINKAT => const { &[at(0, 1, Never, Remove)] },
        nr::RENAME => const { &[plain(0, Never, Remove), plain(1, Never, Create)] },
        nr::RENAMEAT | nr::RENAMEAT2 => const { &[at(0, 1, Never, Remove), at(2, 3, Never, Create)] },
        nr::LINK => const { &[plain(0, Never, Lookup), plain(1, Never, Create)] },
        nr::LINKAT => const {
            &[
                p(1, Some(0), Follow::IfFlag { arg: 4, mask: AT_SYMLINK_FOLLOW }, empty_at(4), Lookup),
                at(2, 3, Never, Create),
            ]
        },
        // The target (argument 0) is the link's content, not a lookup.
        nr::SYMLINK => const { &[plain(1, Never, Create)] },
        nr::SYMLINKAT => const { &[at(1, 2, Never, Create)] },
        nr::SETXATTRAT | nr::GETXATTRAT | nr::LISTXATTRAT | nr::REMOVEXATTRAT => const { &[at_flags(0, 1, 2, Lookup)] },
        nr::FILE_GETATTR | nr::FILE_SETATTR => const { &[at_flags(0, 1, 4, Lookup)] },
        nr::INOTIFY_ADD_WATCH => const { &[plain(1, Follow::UnlessFlag { arg: 2, mask: IN_DONT_FOLLOW }, Lookup)] },
        nr::FANOTIFY_MARK => const {
            &[PathArg {
                null_is_dirfd: true,
                ..p(4, Some(3), Follow::UnlessFlag { arg: 1, mask: FAN_MARK_DONTFOLLOW }, NoEmpty, Lookup)
            }]
        },
        nr::NAME_TO_HANDLE_AT => const { &[p(1, Some(0), Follow::IfFlag { arg: 4, mask: AT_SYMLINK_FOLLOW }, empty_at(4), Lookup)] },
        // mount's source is a path only for some filesystem types (bind mounts); the target
        // always is.
        nr::MOUNT => const { &[plain(1, Always, Lookup)] },
        nr::UMOUNT2 => const { &[plain(0, Follow::UnlessFlag { arg: 1, mask: UMOUNT_NOFOLLOW }, Lookup)] },
        nr::PIVOT_ROOT => const { &[plain(0, Always, Lookup), plain(1, Always, Lookup)] },
        nr::OPEN_TREE | nr::OPEN_TREE_ATTR | nr::MOUNT_SETATTR => const { &[at_flags(0, 1, 2, Lookup)] },
        nr::MOVE_MOUNT => const { &[at(0, 1, Always, Lookup), at(2, 3, Always, Lookup)] },
        _ => &[],
    }
}

/// Every syscall with at least one path argument, in number order.
pub fn path_syscalls() -> impl Iterator<Item = u32> {
    crate::x86_64::table::TABLE.iter().map(|&(n, _)| n).filter(|&n| !path_args(n).is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sysno, Syscall, SyscallArgs};

    /// Names of the syscalls whose kernel signature takes a `const char __user *` path that
    /// is looked up (from the kernel's SYSCALL_DEFINEs), to catch a call missing here.
    const KNOWN: &[&str] = &[
        "open", "openat", "openat2", "creat", "stat", "lstat", "newfstatat", "statx", "access", "faccessat",
        "faccessat2", "readlink", "readlinkat", "execve", "execveat", "chdir", "chroot", "mkdir", "mkdirat",
        "mknod", "mknodat", "unlink", "unlinkat", "rmdir", "rename", "renameat", "renameat2", "link", "linkat",
        "symlink", "symlinkat", "chmod", "fchmodat", "fchmodat2", "chown", "lchown", "fchownat", "truncate",
        "utime", "utimes", "futimesat", "utimensat", "statfs", "setxattr", "lsetxattr", "getxattr", "lgetxattr",
        "listxattr", "llistxattr", "removexattr", "lremovexattr", "setxattrat", "getxattrat", "listxattrat",
        "removexattrat", "inotify_add_watch", "fanotify_mark", "name_to_handle_at", "mount", "umount2",
        "pivot_root", "swapon", "swapoff", "acct", "uselib", "open_tree", "open_tree_attr", "move_mount",
        "mount_setattr", "file_getattr", "file_setattr",
    ];

    #[test]
    fn every_known_path_call_is_listed_and_nothing_else() {
        let listed: Vec<&str> = path_syscalls().map(|n| Sysno(n).name().unwrap()).collect();
        for k in KNOWN {
            assert!(listed.contains(k), "{k} takes a path but is not in the table");
        }
        for l in &listed {
            assert!(KNOWN.contains(l), "{l} is in the table but not known to take a path");
        }
    }

    #[test]
    fn indices_agree_with_the_typed_views() {
        for n in path_syscalls() {
            let call = Syscall::from_raw(Sysno(n), SyscallArgs::default());
            let names = call.field_names();
            for a in path_args(n) {
                assert!(a.path < 6 && a.dirfd.is_none_or(|d| d < 6), "{}", Sysno(n));
                if names.is_empty() {
                    continue; // no typed view to compare with
                }
                assert!(
                    matches!(names[a.path], "path" | "oldpath" | "newpath" | "linkpath" | "target" | "new_root" | "put_old"),
                    "{}: argument {} is `{}`",
                    Sysno(n),
                    a.path,
                    names[a.path]
                );
                if let Some(d) = a.dirfd {
                    assert!(names[d].ends_with("dirfd"), "{}: argument {d} is `{}`", Sysno(n), names[d]);
                }
            }
        }
    }

    #[test]
    fn flags_arguments_are_distinct_from_paths() {
        for n in path_syscalls() {
            for a in path_args(n) {
                let flag_args = [
                    match a.follow {
                        Follow::UnlessFlag { arg, .. } | Follow::IfFlag { arg, .. } | Follow::OpenFlags { arg } | Follow::OpenHow { arg } => Some(arg),
                        _ => None,
                    },
                    match a.empty {
                        EmptyPath::Flag { arg, .. } => Some(arg),
                        _ => None,
                    },
                ];
                for f in flag_args.into_iter().flatten() {
                    assert!(f != a.path && Some(f) != a.dirfd, "{}", Sysno(n));
                }
            }
        }
    }
}
