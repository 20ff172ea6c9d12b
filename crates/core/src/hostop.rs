//! Host calls the adapter makes itself, in the monitor, on a guest's behalf
//! ([`crate::Disposition::Perform`]): the guest's call never reaches the kernel as the
//! guest's; the monitor makes the equivalent call on the host path the view resolved, with
//! the guest's credentials and umask, writes what the call returns into guest memory, and
//! answers the guest with its result. This is the fast route (one seccomp notification, no
//! ptrace stop) and it is immune to the guest changing its path buffer after the lookup,
//! since the monitor calls with its own copy.
//!
//! The adapter must reach a [`HostTarget`] without following any symlink the view did not
//! resolve (`openat2` with `RESOLVE_NO_SYMLINKS`, then `*at` calls on that fd or on its
//! parent): a guest that swaps a directory for a symlink between the lookup and the call
//! gets `ELOOP`, never a file outside the view.

use viewos_abi::x86_64::flags::{AT_FDCWD, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_NOFOLLOW, O_PATH, O_TMPFILE, VALID_OPEN_FLAGS};
use viewos_abi::{Errno, Sysno, SyscallArgs, x86_64::nr};

use crate::dispatch::{Disposition, Scratch};
use crate::process::Tid;

/// `sizeof(struct open_how)` (flags, mode, resolve).
pub const OPEN_HOW_SIZE: usize = 24;

/// Where the monitor's own filesystems (`--mount tmpfs:DST`) show as "host" paths:
/// mount `N` is `/proc/viewos-vfs/N`. procfs has no such entry and none can be made, so no
/// real file is ever reached through one; the adapter serves these paths itself, and the
/// path view lets a guest reach them only through a mount of the view whose source they are.
pub const VIRTUAL_ROOT: &[u8] = b"/proc/viewos-vfs";

/// Whether `host` lies in one of the monitor's own filesystems (see [`VIRTUAL_ROOT`]).
pub fn is_virtual(host: &[u8]) -> bool {
    host.strip_prefix(VIRTUAL_ROOT).is_some_and(|rest| rest.first() == Some(&b'/'))
}

/// The host path of copy-on-write mount `n` (`--cow DIR`): `VIRTUAL_ROOT/cowN`.
pub fn cow_mount_path(n: usize) -> Vec<u8> {
    [VIRTUAL_ROOT, format!("/cow{n}").as_bytes()].concat()
}

/// Whether `host` is the root of a copy-on-write mount or lies in one.
pub fn is_cow(host: &[u8]) -> bool {
    host.strip_prefix(VIRTUAL_ROOT).and_then(|r| r.strip_prefix(b"/cow")).is_some_and(|r| r.first().is_some_and(u8::is_ascii_digit))
}

/// A host path the view resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTarget {
    /// Absolute host path (no NUL). A trailing `/` is kept when the guest wrote one.
    pub path: Vec<u8>,
    /// The lookup ended on a `/proc` magic link (`/proc/PID/fd/N`, `cwd`, ...) whose object
    /// has no path in the view, for the kernel to follow: the adapter may follow that one
    /// link (and only `/proc/PID` precedes it, no symlink). Or, in an identity view, a name
    /// under a guest's open directory or its cwd, `/proc/TID/fd/N/NAME` or
    /// `/proc/TID/cwd/NAME` ([`HostTarget::under`]): the adapter looks NAME up under that
    /// directory, refusing symlinks (`ELOOP` makes the monitor decide again, in full).
    pub magic: bool,
}

impl HostTarget {
    /// The file thread `tid` has open as `fd` (its magic link `/proc/TID/fd/N`; the
    /// adapter may reach the open file itself).
    pub fn guest_fd(tid: Tid, fd: i32) -> HostTarget {
        HostTarget { path: format!("/proc/{}/fd/{fd}", tid.0).into_bytes(), magic: true }
    }

    /// For an identity view's name under a guest's open directory or its cwd
    /// (`/proc/TID/fd/N/NAME`, `/proc/TID/cwd/NAME`, see [`HostTarget::magic`]): the
    /// thread, which directory, and NAME.
    pub fn under_guest(&self) -> Option<(i32, Base, &[u8])> {
        if self.magic { under_guest(&self.path) } else { None }
    }

    /// Thread `tid`'s directory `base` itself (its `/proc` magic link).
    pub fn guest_dir(tid: Tid, base: Base) -> HostTarget {
        match base {
            Base::Fd(fd) => HostTarget::guest_fd(tid, fd),
            Base::Cwd => HostTarget::guest_cwd(tid),
        }
    }

    /// A name under thread `tid`'s directory `base`, as an identity view names it.
    pub fn under(tid: Tid, base: Base, name: &[u8]) -> HostTarget {
        let mut at = HostTarget::guest_dir(tid, base);
        at.path.push(b'/');
        at.path.extend_from_slice(name);
        at
    }

    /// The cwd of thread `tid` (`/proc/TID/cwd`).
    pub fn guest_cwd(tid: Tid) -> HostTarget {
        HostTarget { path: format!("/proc/{}/cwd", tid.0).into_bytes(), magic: true }
    }

    /// The directory part and the final name, for calls made on a parent directory.
    /// `None` for `/` (it has no parent).
    pub fn split(&self) -> Option<(&[u8], &[u8])> {
        let p = &self.path;
        let trimmed = p.len() - p.iter().rev().take_while(|&&b| b == b'/').count();
        let slash = p[..trimmed].iter().rposition(|&b| b == b'/')?;
        let dir = if slash == 0 { &p[..1] } else { &p[..slash] };
        Some((dir, &p[slash + 1..]))
    }
}

/// The directory a name is looked up under in an identity view (see [`HostTarget::magic`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// The guest's open directory (its dirfd).
    Fd(i32),
    /// The guest thread's cwd, wherever it has moved.
    Cwd,
}

/// `/proc/TID/fd/N/NAME` or `/proc/TID/cwd/NAME` (NAME not empty): the thread, the
/// directory and NAME.
pub fn under_guest(path: &[u8]) -> Option<(i32, Base, &[u8])> {
    let number = |b: &[u8]| -> Option<i32> {
        if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(b).ok()?.parse().ok()
    };
    let rest = path.strip_prefix(b"/proc/")?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    let (tid, rest) = (number(&rest[..slash])?, &rest[slash..]);
    let (base, name) = if let Some(cwd) = rest.strip_prefix(b"/cwd/") {
        (Base::Cwd, cwd)
    } else {
        let rest = rest.strip_prefix(b"/fd/")?;
        let slash = rest.iter().position(|&b| b == b'/')?;
        (Base::Fd(number(&rest[..slash])?), &rest[slash + 1..])
    };
    if name.is_empty() {
        return None;
    }
    Some((tid, base, name))
}

/// The ops with exactly one target, binding it to `$at` (one list for every match that
/// treats them alike).
macro_rules! one_target {
    ($at:ident) => {
        HostOp::Stat { at: $at, .. }
            | HostOp::Identify { at: $at, .. }
            | HostOp::ReadFile { at: $at }
            | HostOp::Statx { at: $at, .. }
            | HostOp::Access { at: $at, .. }
            | HostOp::Readlink { at: $at, .. }
            | HostOp::Statfs { at: $at, .. }
            | HostOp::Open { at: $at, .. }
            | HostOp::Unlink { at: $at, .. }
            | HostOp::Mkdir { at: $at, .. }
            | HostOp::Chmod { at: $at, .. }
            | HostOp::Chown { at: $at, .. }
            | HostOp::Utimens { at: $at, .. }
            | HostOp::Truncate { at: $at, .. }
            | HostOp::Symlink { at: $at, .. }
            | HostOp::Mknod { at: $at, .. }
            | HostOp::Xattr { at: $at, .. }
    };
}

/// One host call, with the guest addresses its output goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostOp {
    /// `struct stat` (144 bytes) of the target (of a final symlink itself with `nofollow`)
    /// written at `out`.
    Stat { at: HostTarget, nofollow: bool, out: u64 },
    /// `struct statx` (256 bytes) at `out`; `flags` are the guest's `AT_STATX_*` bits.
    Statx { at: HostTarget, nofollow: bool, flags: u32, mask: u32, out: u64 },
    /// `faccessat2`; `flags` may hold `AT_EACCESS`.
    Access { at: HostTarget, nofollow: bool, mode: u32, flags: u32 },
    /// `readlinkat` of the target itself, at most `size` bytes to `buf`.
    Readlink { at: HostTarget, buf: u64, size: u64 },
    /// `struct statfs` (120 bytes) at `out`.
    Statfs { at: HostTarget, out: u64 },
    /// An open whose fd is installed in the guest's table; `flags`, `mode` and `resolve` as
    /// `openat2` takes them (already valid for it), `umask` the guest's.
    Open { at: HostTarget, flags: u64, mode: u64, resolve: u64, umask: u32 },
    /// `unlinkat` (with `AT_REMOVEDIR` for `rmdir`) of the final name in its parent.
    Unlink { at: HostTarget, rmdir: bool },
    /// `mkdirat` of the final name, `mode` before the guest's `umask`.
    Mkdir { at: HostTarget, mode: u32, umask: u32 },
    /// `renameat2` of one final name to another.
    Rename { from: HostTarget, to: HostTarget, flags: u32 },
    /// `fchmodat2` of the target (of a final symlink itself with `nofollow`).
    Chmod { at: HostTarget, mode: u32, nofollow: bool },
    /// `fchownat` of the target (`u32::MAX`: unchanged).
    Chown { at: HostTarget, uid: u32, gid: u32, nofollow: bool },
    /// `utimensat` of the target with these `struct timespec[2]` (`None`: now).
    Utimens { at: HostTarget, times: Option<[i64; 4]>, nofollow: bool },
    /// `truncate` of the target (a regular file) to `len`.
    Truncate { at: HostTarget, len: i64 },
    /// `linkat` of one name (or, magic, the file behind an fd) to a new name.
    Link { from: HostTarget, to: HostTarget },
    /// `symlinkat`: a symlink holding `target` at the final name.
    Symlink { target: Vec<u8>, at: HostTarget },
    /// `mknodat` of the final name, `mode` before the guest's `umask`.
    Mknod { at: HostTarget, mode: u32, dev: u64, umask: u32 },
    /// `getdents64` (`getdents` with `legacy`) on the guest's directory fd `fd` (the same
    /// open file, so its position moves for the guest), at most `count` bytes to `buf`,
    /// edited by [`Listing::apply`]; a batch the edit leaves empty is followed by the next.
    Getdents { fd: i32, buf: u64, count: u64, legacy: bool, edit: Listing },
    /// An extended attribute call on the target (the link itself with `nofollow`).
    Xattr { at: HostTarget, nofollow: bool, call: XattrCall },
    /// `struct stat` of the target, for a module to look at: it goes to [`Outcome::out`]
    /// and nowhere in the guest.
    Identify { at: HostTarget, nofollow: bool },
    /// The content of the file at the target (at most [`READ_FILE_MAX`] bytes) into
    /// [`Outcome::out`], for a module to edit (a `/proc` file the view changes).
    ReadFile { at: HostTarget },
    /// An fd of a sealed, read-only memory file holding `data`, installed in the guest's
    /// table as the result of its open (`cloexec`: with `O_CLOEXEC`).
    OpenMemory { name: Vec<u8>, data: Vec<u8>, cloexec: bool },
}

/// The most [`HostOp::ReadFile`] reads.
pub const READ_FILE_MAX: usize = 1 << 20;

/// What a performed op gave: the guest's result, and the bytes it produced for the guest
/// (`struct stat`/`statx` for [`HostOp::Stat`]/[`HostOp::Statx`], written at their `out`
/// once the core is done with them) or for the core ([`HostOp::Identify`],
/// [`HostOp::ReadFile`]). Ops that write guest memory themselves leave `out` empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub result: Result<u64, Errno>,
    pub out: Vec<u8>,
}

/// The extended attribute calls, with what they carry in and out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XattrCall {
    /// The value of `name`, at most `size` bytes to `buf` (`size` 0: its length only).
    Get { name: Vec<u8>, buf: u64, size: u64 },
    /// The names, at most `size` bytes to `buf`.
    List { buf: u64, size: u64 },
    /// Sets `name` to `value` (`flags`: `XATTR_CREATE`/`XATTR_REPLACE`).
    Set { name: Vec<u8>, value: Vec<u8>, flags: u32 },
    Remove { name: Vec<u8> },
}

/// What the view changes in a directory's listing: names to take out (hidden paths), and
/// names to add to the batch read from position 0 (binds whose mount point the directory
/// below lacks), with their `d_type`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    pub hidden: Vec<Vec<u8>>,
    pub extra: Vec<(Vec<u8>, u8)>,
    /// Inodes (on the directory's device, `st_dev`) whose `d_type` the view changes.
    pub retype: Vec<(u64, u64, u8)>,
}

/// One record (`linux_dirent64`, or the legacy `linux_dirent` with `legacy`).
pub fn dirent(ino: u64, off: u64, name: &[u8], d_type: u8, legacy: bool) -> Vec<u8> {
    let name_at = if legacy { 18 } else { 19 };
    // Legacy records keep d_type in their last byte, after the name's NUL.
    let reclen = (name_at + name.len() + 1 + usize::from(legacy)).next_multiple_of(8);
    let mut r = Vec::with_capacity(reclen);
    r.extend_from_slice(&ino.to_le_bytes());
    r.extend_from_slice(&off.to_le_bytes());
    r.extend_from_slice(&(reclen as u16).to_le_bytes());
    if !legacy {
        r.push(d_type);
    }
    r.extend_from_slice(name);
    r.resize(reclen, 0);
    if legacy {
        r[reclen - 1] = d_type;
    }
    r
}

impl Listing {
    /// The batch `data` as the guest must see it: hidden records taken out and, if `first`
    /// (read from position 0), the extra names added where `cap` bytes leave room. `None`
    /// if `data` is not a listing this understands (it is then left as the kernel wrote it).
    pub fn apply(&self, data: &[u8], first: bool, cap: u64, legacy: bool) -> Option<Vec<u8>> {
        self.apply_on(data, first, cap, legacy, None)
    }

    /// [`Listing::apply`] for a directory on device `dev` (for `retype`; `None`: unknown,
    /// nothing retyped).
    pub fn apply_on(&self, data: &[u8], first: bool, cap: u64, legacy: bool, dev: Option<u64>) -> Option<Vec<u8>> {
        // d_ino u64, d_off u64, d_reclen u16, then d_type u8 + name (dirent64) or name.
        let name_at = if legacy { 18 } else { 19 };
        let mut kept = Vec::with_capacity(data.len());
        let mut present: Vec<&[u8]> = Vec::new();
        let mut last_off = 0u64;
        let mut at = 0;
        while at < data.len() {
            let reclen = usize::from(u16::from_le_bytes([*data.get(at + 16)?, *data.get(at + 17)?]));
            if reclen < name_at || at + reclen > data.len() {
                return None;
            }
            let rec = &data[at..at + reclen];
            last_off = u64::from_le_bytes(rec[8..16].try_into().expect("16 bytes"));
            let name = &rec[name_at..];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if !self.hidden.iter().any(|h| h.as_slice() == name) {
                let start = kept.len();
                kept.extend_from_slice(rec);
                present.push(name);
                let ino = u64::from_le_bytes(rec[..8].try_into().expect("8 bytes"));
                if let Some(&(_, _, t)) = dev.and_then(|d| self.retype.iter().find(|&&(rd, ri, _)| rd == d && ri == ino)) {
                    let at = if legacy { start + reclen - 1 } else { start + 18 };
                    kept[at] = t;
                }
            }
            at += reclen;
        }
        if first {
            for (name, t) in &self.extra {
                if present.contains(&name.as_slice()) {
                    continue;
                }
                // A stable, non-zero inode number (readdir skips zero) for a name that has
                // no inode below.
                let ino = name.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)) | 1;
                let rec = dirent(ino, last_off, name, *t, legacy);
                if (kept.len() + rec.len()) as u64 <= cap {
                    kept.extend_from_slice(&rec);
                }
            }
        }
        Some(kept)
    }
}

impl HostOp {
    /// Short name, for traces.
    pub fn name(&self) -> &'static str {
        match self {
            HostOp::Identify { .. } => "identify",
            HostOp::ReadFile { .. } => "readfile",
            HostOp::OpenMemory { .. } => "openmemory",
            HostOp::Stat { .. } => "stat",
            HostOp::Statx { .. } => "statx",
            HostOp::Access { .. } => "access",
            HostOp::Readlink { .. } => "readlink",
            HostOp::Statfs { .. } => "statfs",
            HostOp::Open { .. } => "open",
            HostOp::Unlink { .. } => "unlink",
            HostOp::Mkdir { .. } => "mkdir",
            HostOp::Rename { .. } => "rename",
            HostOp::Chmod { .. } => "chmod",
            HostOp::Chown { .. } => "chown",
            HostOp::Utimens { .. } => "utimens",
            HostOp::Truncate { .. } => "truncate",
            HostOp::Link { .. } => "link",
            HostOp::Symlink { .. } => "symlink",
            HostOp::Mknod { .. } => "mknod",
            HostOp::Getdents { .. } => "getdents",
            HostOp::Xattr { call: XattrCall::Get { .. }, .. } => "getxattr",
            HostOp::Xattr { call: XattrCall::List { .. }, .. } => "listxattr",
            HostOp::Xattr { call: XattrCall::Set { .. }, .. } => "setxattr",
            HostOp::Xattr { call: XattrCall::Remove { .. }, .. } => "removexattr",
        }
    }

    /// The host path(s) the op works on, for traces.
    pub fn paths(&self) -> Vec<&[u8]> {
        match self {
            HostOp::Getdents { .. } | HostOp::OpenMemory { .. } => Vec::new(),
            HostOp::Rename { from, to, .. } | HostOp::Link { from, to } => vec![&from.path, &to.path],
            one_target!(at) => vec![&at.path],
        }
    }

    /// The same op on another target (ops with one target only; the others are returned
    /// unchanged).
    pub fn with_target(&self, to: HostTarget) -> HostOp {
        let mut op = self.clone();
        match &mut op {
            one_target!(at) => *at = to,
            HostOp::Rename { .. } | HostOp::Link { .. } | HostOp::Getdents { .. } | HostOp::OpenMemory { .. } => {}
        }
        op
    }

    /// The guest address the op's [`Outcome::out`] goes to, if any.
    pub fn output(&self) -> Option<u64> {
        match self {
            HostOp::Stat { out, .. } | HostOp::Statx { out, .. } => Some(*out),
            _ => None,
        }
    }

    /// Whether the op's result is an fd installed in the guest (no [`Outcome`] follows).
    pub fn installs_fd(&self) -> bool {
        matches!(self, HostOp::Open { .. } | HostOp::OpenMemory { .. })
    }

    /// Whether the fd an op installs is close-on-exec.
    pub fn cloexec(&self) -> bool {
        match self {
            HostOp::Open { flags, .. } => flags & O_CLOEXEC != 0,
            HostOp::OpenMemory { cloexec, .. } => *cloexec,
            _ => false,
        }
    }

    /// For an adapter that cannot install an fd in the guest (ptrace only): the same open
    /// as a rewrite of the guest's call into `openat2(AT_FDCWD, path, how, 24)`, which the
    /// guest then makes itself with its own umask and credentials. `None` for other ops,
    /// which any adapter can perform.
    pub fn as_rewrite(&self) -> Option<Disposition> {
        let HostOp::Open { at, flags, mode, resolve, .. } = self else { return None };
        let mut path = at.path.clone();
        path.push(0);
        let how = [flags.to_le_bytes(), mode.to_le_bytes(), resolve.to_le_bytes()].concat();
        let scratch = vec![Scratch { arg: 1, data: path, relocs: Vec::new() }, Scratch { arg: 2, data: how, relocs: Vec::new() }];
        let args = SyscallArgs([AT_FDCWD as i64 as u64, 0, 0, OPEN_HOW_SIZE as u64, 0, 0]);
        Some(Disposition::Rewrite { nr: Some(Sysno(nr::OPENAT2)), args, scratch, inspect: false })
    }
}

/// The `open_how` flags and mode `openat2` accepts for what `open`/`openat` were given:
/// `openat2` refuses unknown flags, a mode without `O_CREAT`/`O_TMPFILE`, and flags that
/// mean nothing with `O_PATH`, all of which `open` ignores.
pub fn openat2_flags(flags: u64, mode: u64) -> (u64, u64) {
    let mut flags = flags & VALID_OPEN_FLAGS;
    if flags & O_PATH != 0 {
        flags &= O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    }
    let mode = if flags & (O_CREAT | O_TMPFILE) != 0 { mode & 0o7777 } else { 0 };
    (flags, mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(p: &str) -> HostTarget {
        HostTarget { path: p.as_bytes().to_vec(), magic: false }
    }

    #[test]
    fn split_takes_the_final_name() {
        assert_eq!(t("/a/b").split(), Some((&b"/a"[..], &b"b"[..])));
        assert_eq!(t("/a").split(), Some((&b"/"[..], &b"a"[..])));
        assert_eq!(t("/a/b/").split(), Some((&b"/a"[..], &b"b/"[..])));
        assert_eq!(t("/").split(), None);
    }

    #[test]
    fn with_target_moves_single_target_ops_only() {
        let op = HostOp::Chmod { at: t("/a"), mode: 0o600, nofollow: true };
        assert_eq!(op.with_target(t("/b")), HostOp::Chmod { at: t("/b"), mode: 0o600, nofollow: true });
        let two = HostOp::Rename { from: t("/a"), to: t("/b"), flags: 0 };
        assert_eq!(two.with_target(t("/c")), two);
    }

    #[test]
    fn open_rewrites_to_openat2() {
        let op = HostOp::Open { at: t("/h/f"), flags: 0o100, mode: 0o644, resolve: 4, umask: 0o22 };
        let Some(Disposition::Rewrite { nr, args, scratch, .. }) = op.as_rewrite() else { panic!() };
        assert_eq!(nr, Some(Sysno(nr::OPENAT2)));
        assert_eq!(args.get(3), 24);
        assert_eq!(scratch[0].data, b"/h/f\0");
        assert_eq!(&scratch[1].data[..8], &0o100u64.to_le_bytes());
        assert!(HostOp::Unlink { at: t("/x"), rmdir: false }.as_rewrite().is_none());
    }

    #[test]
    fn openat2_flags_drop_what_open_ignores() {
        assert_eq!(openat2_flags(0o2 | 1 << 40, 0o644), (0o2, 0));
        assert_eq!(openat2_flags(O_CREAT, 0o100644), (O_CREAT, 0o644));
        assert_eq!(openat2_flags(O_PATH | O_CREAT | O_CLOEXEC, 0o644), (O_PATH | O_CLOEXEC, 0));
    }

    #[test]
    fn names_under_a_guest_directory_round_trip() {
        for (base, name) in [(Base::Fd(3), &b"f"[..]), (Base::Cwd, b"a/b/"), (Base::Fd(0), b".."), (Base::Cwd, b"cwd/x")] {
            let at = HostTarget::under(Tid(42), base, name);
            assert_eq!(at.under_guest(), Some((42, base, name)), "{:?}", String::from_utf8_lossy(&at.path));
            // Only as the view made it (a magic target).
            assert_eq!(HostTarget { magic: false, ..at }.under_guest(), None);
        }
        for path in [&b"/proc/42/fd/3"[..], b"/proc/42/fd/3/", b"/proc/42/cwd", b"/proc/42/cwd/", b"/proc/x/fd/3/f", b"/proc/42/fd/x/f", b"/proc/42/root/f", b"/tmp/f"] {
            assert_eq!(under_guest(path), None, "{:?}", String::from_utf8_lossy(path));
        }
    }
}
