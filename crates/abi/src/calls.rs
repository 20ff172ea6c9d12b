//! Typed views of the syscalls viewos inspects. Each typed call wraps the raw
//! [`SyscallArgs`] and decodes its fields on demand, so `from_raw` / `into_raw` is lossless
//! by construction (even bits the kernel ignores survive). Every other call is
//! [`Syscall::Other`]. Adding a call is one line in the `typed_calls!` list below.

use crate::{GuestAddr, Sysno, SyscallArgs, x86_64::nr};

/// A value decoded from / encoded into one argument register.
pub trait Reg: Copy {
    /// Decodes the register (int arguments use the low 32 bits, as the kernel does).
    fn from_reg(r: u64) -> Self;
    /// Encodes the value as the guest's libc would (ints sign-extended).
    fn to_reg(self) -> u64;
}

impl Reg for u64 {
    fn from_reg(r: u64) -> Self { r }
    fn to_reg(self) -> u64 { self }
}
impl Reg for i64 {
    fn from_reg(r: u64) -> Self { r as i64 }
    fn to_reg(self) -> u64 { self as u64 }
}
impl Reg for u32 {
    fn from_reg(r: u64) -> Self { r as u32 }
    fn to_reg(self) -> u64 { u64::from(self) }
}
impl Reg for i32 {
    fn from_reg(r: u64) -> Self { r as u32 as i32 }
    fn to_reg(self) -> u64 { i64::from(self) as u64 }
}
impl Reg for GuestAddr {
    fn from_reg(r: u64) -> Self { GuestAddr(r) }
    fn to_reg(self) -> u64 { self.0 }
}

macro_rules! typed_calls {
    ($( $(#[$m:meta])* $name:ident = $nr:ident { $($idx:literal $field:ident : $ty:ty),* $(,)? } )*) => {
        $(
            $(#[$m])*
            #[derive(Clone, Copy, Debug, PartialEq, Eq)]
            pub struct $name(pub SyscallArgs);

            #[allow(clippy::len_without_is_empty)]
            impl $name {
                /// This call's number.
                pub const NR: Sysno = Sysno(nr::$nr);

                /// Builds the call from typed fields (unused registers are zero).
                #[allow(clippy::new_without_default, unused_mut)]
                pub fn new($($field: $ty),*) -> Self {
                    let mut a = SyscallArgs::default();
                    $(a.set($idx, Reg::to_reg($field));)*
                    $name(a)
                }

                $(
                    #[doc = concat!("Argument ", stringify!($idx), " (`", stringify!($field), "`).")]
                    pub fn $field(&self) -> $ty { <$ty as Reg>::from_reg(self.0.get($idx)) }
                )*

                /// The raw argument registers.
                pub fn raw(&self) -> SyscallArgs { self.0 }
            }
        )*

        /// A syscall made by the guest: a typed view for the calls viewos knows,
        /// `Other` for the rest.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Syscall {
            $($(#[$m])* $name($name),)*
            /// Any call without a typed view.
            Other(Sysno, SyscallArgs),
        }

        impl Syscall {
            /// Decodes a raw call. Never fails: unknown numbers become `Other`.
            pub fn from_raw(nr: Sysno, args: SyscallArgs) -> Syscall {
                match nr.0 {
                    $(nr::$nr => Syscall::$name($name(args)),)*
                    _ => Syscall::Other(nr, args),
                }
            }

            /// The call's number.
            pub fn sysno(&self) -> Sysno {
                match self {
                    $(Syscall::$name(_) => $name::NR,)*
                    Syscall::Other(n, _) => *n,
                }
            }

            /// The call's raw argument registers.
            pub fn args(&self) -> SyscallArgs {
                match self {
                    $(Syscall::$name(c) => c.0,)*
                    Syscall::Other(_, a) => *a,
                }
            }

            /// Back to the raw form: `from_raw(c.into_raw()) == c` for every call.
            pub fn into_raw(self) -> (Sysno, SyscallArgs) {
                (self.sysno(), self.args())
            }

            /// Names of the typed fields (for tracing), in argument order.
            pub fn field_names(&self) -> &'static [&'static str] {
                match self {
                    $(Syscall::$name(_) => &[$(stringify!($field)),*],)*
                    Syscall::Other(..) => &[],
                }
            }
        }
    };
}

typed_calls! {
    Read = READ { 0 fd: i32, 1 buf: GuestAddr, 2 count: u64 }
    Write = WRITE { 0 fd: i32, 1 buf: GuestAddr, 2 count: u64 }
    Open = OPEN { 0 path: GuestAddr, 1 flags: i32, 2 mode: u32 }
    Close = CLOSE { 0 fd: i32 }
    Stat = STAT { 0 path: GuestAddr, 1 statbuf: GuestAddr }
    Fstat = FSTAT { 0 fd: i32, 1 statbuf: GuestAddr }
    Lstat = LSTAT { 0 path: GuestAddr, 1 statbuf: GuestAddr }
    Mmap = MMAP { 0 addr: GuestAddr, 1 len: u64, 2 prot: i32, 3 flags: i32, 4 fd: i32, 5 off: i64 }
    Mprotect = MPROTECT { 0 addr: GuestAddr, 1 len: u64, 2 prot: i32 }
    Munmap = MUNMAP { 0 addr: GuestAddr, 1 len: u64 }
    Ioctl = IOCTL { 0 fd: i32, 1 request: u32, 2 arg: u64 }
    Pread64 = PREAD64 { 0 fd: i32, 1 buf: GuestAddr, 2 count: u64, 3 off: i64 }
    Pwrite64 = PWRITE64 { 0 fd: i32, 1 buf: GuestAddr, 2 count: u64, 3 off: i64 }
    Access = ACCESS { 0 path: GuestAddr, 1 mode: i32 }
    Dup = DUP { 0 fd: i32 }
    Dup2 = DUP2 { 0 oldfd: i32, 1 newfd: i32 }
    Getpid = GETPID {}
    Clone = CLONE { 0 flags: u64, 1 stack: GuestAddr, 2 parent_tid: GuestAddr, 3 child_tid: GuestAddr, 4 tls: u64 }
    Fork = FORK {}
    Vfork = VFORK {}
    Execve = EXECVE { 0 path: GuestAddr, 1 argv: GuestAddr, 2 envp: GuestAddr }
    Exit = EXIT { 0 status: i32 }
    Kill = KILL { 0 pid: i32, 1 sig: i32 }
    Uname = UNAME { 0 buf: GuestAddr }
    Fcntl = FCNTL { 0 fd: i32, 1 cmd: i32, 2 arg: u64 }
    Truncate = TRUNCATE { 0 path: GuestAddr, 1 len: i64 }
    Getcwd = GETCWD { 0 buf: GuestAddr, 1 size: u64 }
    Chdir = CHDIR { 0 path: GuestAddr }
    Fchdir = FCHDIR { 0 fd: i32 }
    Rename = RENAME { 0 oldpath: GuestAddr, 1 newpath: GuestAddr }
    Mkdir = MKDIR { 0 path: GuestAddr, 1 mode: u32 }
    Rmdir = RMDIR { 0 path: GuestAddr }
    Creat = CREAT { 0 path: GuestAddr, 1 mode: u32 }
    Link = LINK { 0 oldpath: GuestAddr, 1 newpath: GuestAddr }
    Unlink = UNLINK { 0 path: GuestAddr }
    Symlink = SYMLINK { 0 target: GuestAddr, 1 linkpath: GuestAddr }
    Readlink = READLINK { 0 path: GuestAddr, 1 buf: GuestAddr, 2 size: u64 }
    Chmod = CHMOD { 0 path: GuestAddr, 1 mode: u32 }
    Chown = CHOWN { 0 path: GuestAddr, 1 uid: u32, 2 gid: u32 }
    Lchown = LCHOWN { 0 path: GuestAddr, 1 uid: u32, 2 gid: u32 }
    Umask = UMASK { 0 mask: u32 }
    Getuid = GETUID {}
    Getgid = GETGID {}
    Geteuid = GETEUID {}
    Getegid = GETEGID {}
    Getppid = GETPPID {}
    Statfs = STATFS { 0 path: GuestAddr, 1 buf: GuestAddr }
    Chroot = CHROOT { 0 path: GuestAddr }
    Mount = MOUNT { 0 source: GuestAddr, 1 target: GuestAddr, 2 fstype: GuestAddr, 3 flags: u64, 4 data: GuestAddr }
    Umount2 = UMOUNT2 { 0 target: GuestAddr, 1 flags: i32 }
    PivotRoot = PIVOT_ROOT { 0 new_root: GuestAddr, 1 put_old: GuestAddr }
    Sethostname = SETHOSTNAME { 0 name: GuestAddr, 1 len: u64 }
    Gettid = GETTID {}
    Tgkill = TGKILL { 0 tgid: i32, 1 tid: i32, 2 sig: i32 }
    ExitGroup = EXIT_GROUP { 0 status: i32 }
    Openat = OPENAT { 0 dirfd: i32, 1 path: GuestAddr, 2 flags: i32, 3 mode: u32 }
    Mkdirat = MKDIRAT { 0 dirfd: i32, 1 path: GuestAddr, 2 mode: u32 }
    Fchownat = FCHOWNAT { 0 dirfd: i32, 1 path: GuestAddr, 2 uid: u32, 3 gid: u32, 4 flags: i32 }
    Newfstatat = NEWFSTATAT { 0 dirfd: i32, 1 path: GuestAddr, 2 statbuf: GuestAddr, 3 flags: i32 }
    Unlinkat = UNLINKAT { 0 dirfd: i32, 1 path: GuestAddr, 2 flags: i32 }
    Renameat = RENAMEAT { 0 olddirfd: i32, 1 oldpath: GuestAddr, 2 newdirfd: i32, 3 newpath: GuestAddr }
    Linkat = LINKAT { 0 olddirfd: i32, 1 oldpath: GuestAddr, 2 newdirfd: i32, 3 newpath: GuestAddr, 4 flags: i32 }
    Symlinkat = SYMLINKAT { 0 target: GuestAddr, 1 newdirfd: i32, 2 linkpath: GuestAddr }
    Readlinkat = READLINKAT { 0 dirfd: i32, 1 path: GuestAddr, 2 buf: GuestAddr, 3 size: u64 }
    Fchmodat = FCHMODAT { 0 dirfd: i32, 1 path: GuestAddr, 2 mode: u32 }
    Faccessat = FACCESSAT { 0 dirfd: i32, 1 path: GuestAddr, 2 mode: i32 }
    Dup3 = DUP3 { 0 oldfd: i32, 1 newfd: i32, 2 flags: i32 }
    Renameat2 = RENAMEAT2 { 0 olddirfd: i32, 1 oldpath: GuestAddr, 2 newdirfd: i32, 3 newpath: GuestAddr, 4 flags: u32 }
    Execveat = EXECVEAT { 0 dirfd: i32, 1 path: GuestAddr, 2 argv: GuestAddr, 3 envp: GuestAddr, 4 flags: i32 }
    Statx = STATX { 0 dirfd: i32, 1 path: GuestAddr, 2 flags: i32, 3 mask: u32, 4 statxbuf: GuestAddr }
    IoUringSetup = IO_URING_SETUP { 0 entries: u32, 1 params: GuestAddr }
    Clone3 = CLONE3 { 0 args: GuestAddr, 1 size: u64 }
    CloseRange = CLOSE_RANGE { 0 first: u32, 1 last: u32, 2 flags: u32 }
    Openat2 = OPENAT2 { 0 dirfd: i32, 1 path: GuestAddr, 2 how: GuestAddr, 3 size: u64 }
    Faccessat2 = FACCESSAT2 { 0 dirfd: i32, 1 path: GuestAddr, 2 mode: i32, 3 flags: i32 }
    Fchmodat2 = FCHMODAT2 { 0 dirfd: i32, 1 path: GuestAddr, 2 mode: u32, 3 flags: i32 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn raw_round_trip_is_lossless(nr in 0u32..600, args in proptest::array::uniform6(any::<u64>())) {
            let call = Syscall::from_raw(Sysno(nr), SyscallArgs(args));
            prop_assert_eq!(call.into_raw(), (Sysno(nr), SyscallArgs(args)));
            prop_assert_eq!(Syscall::from_raw(call.sysno(), call.args()), call);
        }

        #[test]
        fn typed_fields_round_trip(fd in any::<i32>(), path in any::<u64>(), flags in any::<i32>(), mode in any::<u32>()) {
            let c = Openat::new(fd, GuestAddr(path), flags, mode);
            prop_assert_eq!((c.dirfd(), c.path(), c.flags(), c.mode()), (fd, GuestAddr(path), flags, mode));
            prop_assert_eq!(Syscall::from_raw(Openat::NR, c.raw()), Syscall::Openat(c));
        }
    }

    #[test]
    fn known_calls_are_typed() {
        let c = Syscall::from_raw(Sysno(nr::OPENAT), SyscallArgs([u64::MAX - 99, 0x1000, 0, 0, 0, 0]));
        match c {
            Syscall::Openat(o) => assert_eq!(o.dirfd(), -100),
            other => panic!("not typed: {other:?}"),
        }
        assert!(matches!(Syscall::from_raw(Sysno(nr::SCHED_YIELD), SyscallArgs::default()), Syscall::Other(..)));
        assert_eq!(Syscall::from_raw(Sysno(nr::STATX), SyscallArgs::default()).field_names()[4], "statxbuf");
    }
}
