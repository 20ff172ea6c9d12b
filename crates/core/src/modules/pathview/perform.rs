//! The fast route: path calls the monitor makes itself on the host path the view resolved
//! ([`Disposition::Perform`]), so they need one seccomp notification and no ptrace stop.
//! The guest's flags are checked here first, as the kernel checks them before any lookup.

use viewos_abi::x86_64::flags::{AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW, O_CLOEXEC, O_CREAT, O_PATH, O_TMPFILE, O_TRUNC, O_WRONLY};
use viewos_abi::x86_64::flags::{RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV};
use viewos_abi::x86_64::nr;
use viewos_abi::{Errno, SyscallArgs};
use viewos_path::GuestPath;

use crate::dispatch::{Ctx, Disposition};
use crate::mem::{GuestMem, MAX_CSTR};
use viewos_abi::GuestAddr;
use crate::hostop::{HostOp, HostTarget, XattrCall, is_virtual, openat2_flags};
use crate::process::Tid;

use super::{PathView, procfs};

const AT_NO_AUTOMOUNT: u64 = 0x800;
const O_ACCMODE: u64 = 0o3;
const AT_EACCESS: u64 = 0x200;
const AT_REMOVEDIR: u64 = 0x200;
const AT_STATX_SYNC_TYPE: u64 = 0x6000;
const STATX_RESERVED: u64 = 0x8000_0000;
const RENAME_NOREPLACE: u64 = 1;
const RENAME_EXCHANGE: u64 = 2;
const RENAME_WHITEOUT: u64 = 4;

/// The calls the monitor makes itself.
pub const PERFORMED: [u32; 47] = [
    nr::STAT,
    nr::LSTAT,
    nr::NEWFSTATAT,
    nr::STATX,
    nr::ACCESS,
    nr::FACCESSAT,
    nr::FACCESSAT2,
    nr::READLINK,
    nr::READLINKAT,
    nr::STATFS,
    nr::OPEN,
    nr::OPENAT,
    nr::OPENAT2,
    nr::CREAT,
    nr::UNLINK,
    nr::UNLINKAT,
    nr::RMDIR,
    nr::MKDIR,
    nr::MKDIRAT,
    nr::RENAME,
    nr::RENAMEAT,
    nr::RENAMEAT2,
    nr::CHMOD,
    nr::FCHMODAT,
    nr::FCHMODAT2,
    nr::CHOWN,
    nr::LCHOWN,
    nr::FCHOWNAT,
    nr::UTIME,
    nr::UTIMES,
    nr::FUTIMESAT,
    nr::UTIMENSAT,
    nr::TRUNCATE,
    nr::LINK,
    nr::LINKAT,
    nr::SYMLINK,
    nr::SYMLINKAT,
    nr::MKNOD,
    nr::MKNODAT,
    nr::GETXATTR,
    nr::LGETXATTR,
    nr::SETXATTR,
    nr::LSETXATTR,
    nr::LISTXATTR,
    nr::LLISTXATTR,
    nr::REMOVEXATTR,
    nr::LREMOVEXATTR,
];

/// `EINVAL` for flags the kernel refuses before looking anything up.
pub fn precheck(n: u32, args: &SyscallArgs) -> Result<(), Errno> {
    let bad = |v: u64, allowed: u64| if v & !allowed != 0 { Err(Errno::EINVAL) } else { Ok(()) };
    match n {
        nr::NEWFSTATAT => bad(args.get(3), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH),
        nr::STATX => {
            let f = args.get(2) as u32 as u64;
            bad(f, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE)?;
            if f & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE || args.get(3) as u32 as u64 & STATX_RESERVED != 0 {
                return Err(Errno::EINVAL);
            }
            Ok(())
        }
        nr::ACCESS => bad(args.get(1) as u32 as u64, 7),
        nr::FACCESSAT => bad(args.get(2) as u32 as u64, 7),
        nr::FACCESSAT2 => {
            bad(args.get(2) as u32 as u64, 7)?;
            bad(args.get(3) as u32 as u64, AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)
        }
        nr::READLINK if args.get(2) as i32 <= 0 => Err(Errno::EINVAL),
        nr::READLINKAT if args.get(3) as i32 <= 0 => Err(Errno::EINVAL),
        nr::UNLINKAT => bad(args.get(2) as u32 as u64, AT_REMOVEDIR),
        nr::RENAMEAT2 => {
            let f = args.get(4) as u32 as u64;
            bad(f, RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)?;
            if f & RENAME_NOREPLACE != 0 && f & (RENAME_EXCHANGE | RENAME_WHITEOUT) != 0 {
                return Err(Errno::EINVAL);
            }
            if f & RENAME_EXCHANGE != 0 && f & RENAME_WHITEOUT != 0 {
                return Err(Errno::EINVAL);
            }
            Ok(())
        }
        nr::FCHMODAT2 => bad(args.get(3) as u32 as u64, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH),
        nr::FCHOWNAT => bad(args.get(4) as u32 as u64, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH),
        nr::UTIMENSAT => bad(args.get(3) as u32 as u64, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH),
        nr::LINKAT => bad(args.get(4) as u32 as u64, AT_SYMLINK_FOLLOW | AT_EMPTY_PATH),
        _ => Ok(()),
    }
}

/// One path argument as looked up: `None` when the call names its dirfd itself (an empty
/// path with `AT_EMPTY_PATH`), else the host path and the guest path.
pub type Looked = Option<(Vec<u8>, GuestPath)>;

impl PathView {
    /// The target of a path argument: what the lookup found, or the object of the dirfd
    /// (`/proc/TID/fd/N`, `/proc/TID/cwd`) for a call that names its dirfd itself.
    fn target(&self, tid: Tid, looked: &Looked, dirfd: Option<u64>, cwd: &HostTarget) -> HostTarget {
        match looked {
            Some((host, _)) => {
                let under = self.only.is_some() && crate::hostop::under_guest(host).is_some();
                HostTarget { path: host.clone(), magic: under || procfs::is_magic(trim_slash(host)) }
            }
            None => match dirfd.map_or(AT_FDCWD, |d| d as u32 as i32) {
                AT_FDCWD => cwd.clone(),
                fd => HostTarget::guest_fd(tid, fd),
            },
        }
    }

    /// The calling thread's cwd as a target: its `/proc/TID/cwd`, unless it lies in one of
    /// the monitor's own filesystems, which the kernel's cwd of the thread is not.
    fn cwd_target(&self, ctx: &Ctx<'_>) -> HostTarget {
        let outer = ctx.procs.fs(ctx.tid).map(|f| f.cwd.clone()).and_then(|c| GuestPath::new(c).ok());
        match outer.and_then(|g| self.view.translate(&g)) {
            Some(h) if is_virtual(h.as_bytes()) => HostTarget { path: h.into_bytes(), magic: false },
            _ => HostTarget::guest_cwd(ctx.tid),
        }
    }

    /// `EBUSY` for a mount point of the view (a bind's `DST`, `/`): removing or renaming
    /// it would act on the bind's source on the host.
    fn not_mount_point(&self, guest: &GuestPath) -> Result<(), Errno> {
        if self.view.mount_point(guest).as_ref() == Some(guest) { Err(Errno::EBUSY) } else { Ok(()) }
    }

    /// The host call for path call `n`, its path arguments looked up (`looked`, in
    /// `path_args` order, `how` the copied `open_how` for `openat2`).
    pub(super) fn perform(&self, ctx: &Ctx<'_>, n: u32, args: &SyscallArgs, looked: &[Looked], how: Option<&[u8]>, mem: &mut dyn GuestMem) -> Disposition {
        match self.host_op(ctx, n, args, looked, how, mem).map(|op| self.maps_instead(ctx, op)) {
            Ok(op) => {
                let creds = ctx.procs.thread(ctx.tid).filter(|t| t.creds_changed).map(|_| ctx.tid);
                Disposition::Perform { op, creds, lexical: self.lexical.get() }
            }
            Err(e) => Disposition::Emulate(Err(e)),
        }
    }

    /// A read-only open of `/proc/PID/maps` in a view with the monitor's own filesystems:
    /// read it, for a copy that names their files by guest path (see `maps.rs`).
    fn maps_instead(&self, ctx: &Ctx<'_>, op: HostOp) -> HostOp {
        match &op {
            HostOp::Open { at, flags, .. }
                if flags & (3 | O_PATH | O_CREAT) == 0
                    && super::maps::is_maps(&at.path)
                    && self.view.binds().any(|(_, src)| is_virtual(src.as_bytes())) =>
            {
                self.maps.borrow_mut().insert(ctx.tid, flags & O_CLOEXEC != 0);
                HostOp::ReadFile { at: at.clone() }
            }
            _ => op,
        }
    }

    fn host_op(&self, ctx: &Ctx<'_>, n: u32, args: &SyscallArgs, looked: &[Looked], how: Option<&[u8]>, mem: &mut dyn GuestMem) -> Result<HostOp, Errno> {
        let tid = ctx.tid;
        let a = |i: usize| args.get(i);
        let first = looked.first().ok_or(Errno::EFAULT)?;
        // The dirfd of the first path argument of an `*at` call.
        let cwd = self.cwd_target(ctx);
        let at = |dirfd: usize| self.target(tid, first, Some(a(dirfd)), &cwd);
        let plain = || self.target(tid, first, None, &cwd);
        let umask = ctx.procs.fs(tid).map_or(0o022, |f| f.umask);
        Ok(match n {
            nr::STAT => HostOp::Stat { at: plain(), nofollow: false, out: a(1) },
            nr::LSTAT => HostOp::Stat { at: plain(), nofollow: true, out: a(1) },
            nr::NEWFSTATAT => HostOp::Stat { at: at(0), nofollow: first.is_some() && a(3) & AT_SYMLINK_NOFOLLOW != 0, out: a(2) },
            nr::STATX => {
                let f = a(2) as u32 as u64;
                HostOp::Statx {
                    at: at(0),
                    nofollow: first.is_some() && f & AT_SYMLINK_NOFOLLOW != 0,
                    flags: (f & (AT_STATX_SYNC_TYPE | AT_NO_AUTOMOUNT)) as u32,
                    mask: a(3) as u32,
                    out: a(4),
                }
            }
            nr::ACCESS => HostOp::Access { at: plain(), nofollow: false, mode: a(1) as u32, flags: 0 },
            nr::FACCESSAT => HostOp::Access { at: at(0), nofollow: false, mode: a(2) as u32, flags: 0 },
            nr::FACCESSAT2 => {
                let f = a(3) as u32 as u64;
                HostOp::Access { at: at(0), nofollow: first.is_some() && f & AT_SYMLINK_NOFOLLOW != 0, mode: a(2) as u32, flags: (f & AT_EACCESS) as u32 }
            }
            nr::READLINK => HostOp::Readlink { at: plain(), buf: a(1), size: a(2) },
            nr::READLINKAT => HostOp::Readlink { at: at(0), buf: a(2), size: a(3) },
            nr::STATFS => HostOp::Statfs { at: plain(), out: a(1) },
            nr::OPEN | nr::CREAT | nr::OPENAT | nr::OPENAT2 => {
                let at = if n == nr::OPENAT || n == nr::OPENAT2 { at(0) } else { plain() };
                let (flags, mode, resolve) = match n {
                    nr::OPEN => (a(1), a(2), 0),
                    nr::CREAT => (O_CREAT | O_WRONLY | O_TRUNC, a(1), 0),
                    nr::OPENAT => (a(2), a(3), 0),
                    _ => {
                        let how = how.ok_or(Errno::EFAULT)?;
                        let word = |i: usize| u64::from_le_bytes(how[i * 8..i * 8 + 8].try_into().expect("24 bytes"));
                        // The view's scoping is done; on the host path it would misfire (an
                        // absolute path under BENEATH, a bind's source under NO_XDEV).
                        (word(0), word(1), word(2) & !(RESOLVE_BENEATH | RESOLVE_IN_ROOT | RESOLVE_NO_XDEV))
                    }
                };
                // openat2 checks its own arguments strictly; open/openat ignore junk.
                let (flags, mode) = if n == nr::OPENAT2 { (flags, mode) } else { openat2_flags(flags, mode) };
                // A guest could write the read-only scratch area the monitor puts rewritten
                // arguments in through /proc/PID/mem (it ignores page protection).
                if flags & O_ACCMODE != 0 && flags & O_PATH == 0 && procfs::is_mem(&at.path) {
                    return Err(Errno::EACCES);
                }
                let resolve = resolve | if at.magic { 0 } else { RESOLVE_NO_SYMLINKS };
                let umask = if flags & (O_CREAT | O_TMPFILE) != 0 { umask } else { 0 };
                HostOp::Open { at, flags, mode, resolve, umask }
            }
            nr::UNLINK | nr::RMDIR | nr::UNLINKAT => {
                let (at, rmdir) = match n {
                    nr::UNLINKAT => (at(0), a(2) & AT_REMOVEDIR != 0),
                    _ => (plain(), n == nr::RMDIR),
                };
                if let Some((_, g)) = first {
                    self.not_mount_point(g)?;
                }
                HostOp::Unlink { at, rmdir }
            }
            nr::MKDIR => HostOp::Mkdir { at: plain(), mode: a(1) as u32 & 0o7777, umask },
            nr::MKDIRAT => HostOp::Mkdir { at: at(0), mode: a(2) as u32 & 0o7777, umask },
            nr::RENAME | nr::RENAMEAT | nr::RENAMEAT2 => {
                let second = looked.get(1).ok_or(Errno::EFAULT)?;
                let (Some((_, gf)), Some((_, gt))) = (first, second) else { return Err(Errno::ENOENT) };
                self.not_mount_point(gf)?;
                self.not_mount_point(gt)?;
                // A rename never crosses a mount, bind mounts included.
                if self.view.mount_point(gf) != self.view.mount_point(gt) {
                    return Err(Errno::EXDEV);
                }
                let flags = if n == nr::RENAMEAT2 { a(4) as u32 } else { 0 };
                HostOp::Rename { from: self.target(tid, first, None, &cwd), to: self.target(tid, second, None, &cwd), flags }
            }
            nr::CHMOD => HostOp::Chmod { at: plain(), mode: a(1) as u32 & 0o7777, nofollow: false },
            nr::FCHMODAT => HostOp::Chmod { at: at(0), mode: a(2) as u32 & 0o7777, nofollow: false },
            nr::FCHMODAT2 => HostOp::Chmod { at: at(0), mode: a(2) as u32 & 0o7777, nofollow: first.is_some() && a(3) & AT_SYMLINK_NOFOLLOW != 0 },
            nr::CHOWN | nr::LCHOWN => HostOp::Chown { at: plain(), uid: a(1) as u32, gid: a(2) as u32, nofollow: n == nr::LCHOWN },
            nr::FCHOWNAT => HostOp::Chown { at: at(0), uid: a(2) as u32, gid: a(3) as u32, nofollow: first.is_some() && a(4) & AT_SYMLINK_NOFOLLOW != 0 },
            nr::UTIME => HostOp::Utimens { at: plain(), times: utimbuf(mem, a(1))?, nofollow: false },
            nr::UTIMES => HostOp::Utimens { at: plain(), times: timevals(mem, a(1))?, nofollow: false },
            nr::FUTIMESAT => HostOp::Utimens { at: at(0), times: timevals(mem, a(2))?, nofollow: false },
            nr::UTIMENSAT if a(1) == 0 && (a(0) as u32 as i32 == AT_FDCWD) => return Err(Errno::EFAULT),
            nr::UTIMENSAT if a(1) == 0 && a(3) & AT_SYMLINK_NOFOLLOW != 0 => return Err(Errno::EINVAL),
            nr::UTIMENSAT => HostOp::Utimens { at: at(0), times: timespecs(mem, a(2))?, nofollow: first.is_some() && a(3) & AT_SYMLINK_NOFOLLOW != 0 },
            nr::TRUNCATE => HostOp::Truncate { at: plain(), len: a(1) as i64 },
            nr::LINK | nr::LINKAT => {
                let second = looked.get(1).ok_or(Errno::EFAULT)?;
                let from = if n == nr::LINKAT { at(0) } else { plain() };
                let Some((_, gt)) = second else { return Err(Errno::ENOENT) };
                if let Some((_, gf)) = first
                    && !gf.as_bytes().starts_with(b"/proc/")
                {
                    // A hard link never crosses a mount, bind mounts included. (A file named
                    // through `/proc/PID/fd/N` that has no name of its own is checked by the
                    // host: the kernel, or the monitor's own filesystem.)
                    if self.view.mount_point(gf) != self.view.mount_point(gt) {
                        return Err(Errno::EXDEV);
                    }
                }
                let dirfd = if n == nr::LINKAT { Some(a(2)) } else { None };
                HostOp::Link { from, to: self.target(tid, second, dirfd, &cwd) }
            }
            nr::SYMLINK | nr::SYMLINKAT => {
                let target = mem.read_cstr(GuestAddr(a(0)), MAX_CSTR - 1).map_err(Errno::from)?.ok_or(Errno::ENAMETOOLONG)?;
                if target.is_empty() {
                    return Err(Errno::ENOENT);
                }
                HostOp::Symlink { target, at: if n == nr::SYMLINKAT { at(1) } else { plain() } }
            }
            nr::GETXATTR | nr::LGETXATTR => HostOp::Xattr {
                at: plain(),
                nofollow: n == nr::LGETXATTR,
                call: XattrCall::Get { name: xattr_name(mem, a(1))?, buf: a(2), size: a(3).min(XATTR_SIZE_MAX) },
            },
            nr::LISTXATTR | nr::LLISTXATTR => {
                HostOp::Xattr { at: plain(), nofollow: n == nr::LLISTXATTR, call: XattrCall::List { buf: a(1), size: a(2).min(XATTR_SIZE_MAX) } }
            }
            nr::SETXATTR | nr::LSETXATTR => {
                let name = xattr_name(mem, a(1))?;
                let size = a(3);
                if size > XATTR_SIZE_MAX {
                    return Err(Errno::E2BIG);
                }
                let mut value = vec![0u8; size as usize];
                if size > 0 {
                    mem.read(GuestAddr(a(2)), &mut value)?;
                }
                HostOp::Xattr { at: plain(), nofollow: n == nr::LSETXATTR, call: XattrCall::Set { name, value, flags: a(4) as u32 } }
            }
            nr::REMOVEXATTR | nr::LREMOVEXATTR => {
                HostOp::Xattr { at: plain(), nofollow: n == nr::LREMOVEXATTR, call: XattrCall::Remove { name: xattr_name(mem, a(1))? } }
            }
            nr::MKNOD => HostOp::Mknod { at: plain(), mode: a(1) as u32, dev: a(2), umask },
            nr::MKNODAT => HostOp::Mknod { at: at(0), mode: a(2) as u32, dev: a(3), umask },
            _ => return Err(Errno::ENOSYS),
        })
    }
}

/// `XATTR_SIZE_MAX` (and `XATTR_LIST_MAX`): larger buffers are clamped, larger values E2BIG.
pub(super) const XATTR_SIZE_MAX: u64 = 65536;

/// An attribute name as the kernel reads it: empty or longer than `XATTR_NAME_MAX` (255)
/// is `ERANGE`.
pub(super) fn xattr_name(mem: &mut dyn GuestMem, addr: u64) -> Result<Vec<u8>, Errno> {
    match mem.read_cstr(GuestAddr(addr), 255).map_err(Errno::from)? {
        Some(n) if !n.is_empty() => Ok(n),
        _ => Err(Errno::ERANGE),
    }
}

const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

fn words<const N: usize>(mem: &mut dyn GuestMem, addr: u64) -> Result<[i64; N], Errno> {
    let mut b = vec![0u8; N * 8];
    mem.read(GuestAddr(addr), &mut b)?;
    Ok(core::array::from_fn(|i| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"))))
}

/// `utime`'s `struct utimbuf` as two timespecs (`None`: now).
fn utimbuf(mem: &mut dyn GuestMem, addr: u64) -> Result<Option<[i64; 4]>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let [at, mt] = words::<2>(mem, addr)?;
    Ok(Some([at, 0, mt, 0]))
}

/// `utimes`'s `struct timeval[2]` as timespecs; microseconds out of range are `EINVAL`.
fn timevals(mem: &mut dyn GuestMem, addr: u64) -> Result<Option<[i64; 4]>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let [s0, u0, s1, u1] = words::<4>(mem, addr)?;
    if !(0..1_000_000).contains(&u0) || !(0..1_000_000).contains(&u1) {
        return Err(Errno::EINVAL);
    }
    Ok(Some([s0, u0 * 1000, s1, u1 * 1000]))
}

/// `utimensat`'s `struct timespec[2]`; nanoseconds out of range (other than `UTIME_NOW`
/// and `UTIME_OMIT`) are `EINVAL`.
fn timespecs(mem: &mut dyn GuestMem, addr: u64) -> Result<Option<[i64; 4]>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let t = words::<4>(mem, addr)?;
    for ns in [t[1], t[3]] {
        if !(0..1_000_000_000).contains(&ns) && ns != UTIME_NOW && ns != UTIME_OMIT {
            return Err(Errno::EINVAL);
        }
    }
    Ok(Some(t))
}

fn trim_slash(p: &[u8]) -> &[u8] {
    if p.len() > 1 && p.ends_with(b"/") { &p[..p.len() - 1] } else { p }
}
