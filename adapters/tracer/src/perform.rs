//! Host calls made by the monitor on a guest's behalf ([`Disposition::Perform`]).
//!
//! Every target is reached with `openat2(RESOLVE_NO_SYMLINKS)` (the view resolved every
//! symlink already; one met now was swapped in after the lookup, and is refused with
//! `ELOOP`), then the call is made on that fd (`AT_EMPTY_PATH`) or, for calls on a name, on
//! its parent directory's fd. Opens probe the file with `O_PATH` first: regular files and
//! directories are reopened through `/proc/self/fd` with the guest's flags; a FIFO, whose
//! open may block until a peer arrives, is opened by a thread of its own so the monitor
//! never waits on a guest; other special files are opened with `O_NOCTTY`.
//!
//! [`Disposition::Perform`]: viewos_core::Disposition::Perform

use std::os::fd::{AsRawFd, OwnedFd};

use viewos_core::{Base, Errno, GuestAddr, GuestMem, HostOp, HostTarget, Outcome, Tid, XattrCall};

use crate::tracer::Shared;

use viewos_core::x86_64::flags::RESOLVE_NO_SYMLINKS;

use crate::sys::{self, errno};


fn resolve_of(at: &HostTarget) -> u64 {
    if at.magic { 0 } else { RESOLVE_NO_SYMLINKS }
}

/// `/proc/TID/fd/N` exactly: the thread and the fd.
pub(crate) fn proc_fd(path: &[u8]) -> Option<(i32, i32)> {
    let rest = path.strip_prefix(b"/proc/")?;
    let (tid, fd) = std::str::from_utf8(rest).ok()?.split_once("/fd/")?;
    Some((tid.parse().ok()?, fd.parse().ok()?))
}

std::thread_local! {
    /// pidfds of the guest threads this monitor thread acted for, so that reaching a
    /// guest's fd is one `pidfd_getfd` (a third of the cost of opening `/proc/TID/fd/N`).
    static PIDFDS: std::cell::RefCell<std::collections::HashMap<i32, OwnedFd>> = Default::default();
}

/// The guest's open file `fd` of thread `tid`, duplicated into the monitor.
pub(crate) fn guest_file(tid: i32, fd: i32) -> Result<OwnedFd, Errno> {
    PIDFDS.with(|cell| {
        let mut map = cell.borrow_mut();
        // A cached pidfd of a thread that is gone fails (ESRCH): take a fresh one once.
        for _ in 0..2 {
            if !map.contains_key(&tid) {
                if map.len() >= 1024 {
                    map.clear();
                }
                map.insert(tid, sys::pidfd(tid).map_err(errno)?);
            }
            match sys::pidfd_getfd(map[&tid].as_raw_fd(), fd) {
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                    map.remove(&tid);
                }
                r => return r.map_err(errno),
            }
        }
        Err(Errno::ESRCH)
    })
}

/// The directory an identity view names a path under: the guest's open directory, or
/// its thread's cwd (the kernel follows that magic link to wherever the directory is).
fn guest_dir(tid: i32, base: Base) -> Result<OwnedFd, Errno> {
    match base {
        Base::Fd(fd) => guest_file(tid, fd),
        Base::Cwd => {
            let flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
            sys::openat2(libc::AT_FDCWD, &HostTarget::guest_cwd(Tid(tid)).path, flags, 0, 0).map_err(errno)
        }
    }
}

/// An `O_PATH` fd of the target (of a final symlink itself with `nofollow`); for a
/// guest's fd (`/proc/TID/fd/N`), that open file itself (`pre`, if it was reached already).
fn path_fd(at: &HostTarget, nofollow: bool, pre: &mut Option<OwnedFd>) -> Result<OwnedFd, Errno> {
    let flags = libc::O_PATH | libc::O_CLOEXEC | if nofollow { libc::O_NOFOLLOW } else { 0 };
    if let Some((tid, base, name)) = at.under_guest() {
        let dir = guest_dir(tid, base)?;
        return sys::openat2(dir.as_raw_fd(), name, flags as u64, 0, RESOLVE_NO_SYMLINKS).map_err(errno);
    }
    if at.magic
        && let Some((tid, fd)) = proc_fd(&at.path)
    {
        return match pre.take() {
            Some(file) => Ok(file),
            None => guest_file(tid, fd),
        };
    }
    sys::openat2(libc::AT_FDCWD, &at.path, flags as u64, 0, resolve_of(at)).map_err(errno)
}

/// An `O_PATH` fd of the target's parent directory, and the final name.
fn parent_fd(at: &HostTarget) -> Result<(OwnedFd, Vec<u8>), Errno> {
    if let Some((tid, base, rest)) = at.under_guest() {
        // The guest's directory itself for a single name (a trailing `/` kept for the
        // kernel to check), else the directory part under it.
        let guest_dir = guest_dir(tid, base)?;
        let trimmed = rest.len() - rest.iter().rev().take_while(|&&b| b == b'/').count();
        return match rest[..trimmed].iter().rposition(|&b| b == b'/') {
            None => Ok((guest_dir, rest.to_vec())),
            Some(slash) => {
                let flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
                let dir = sys::openat2(guest_dir.as_raw_fd(), &rest[..slash], flags, 0, RESOLVE_NO_SYMLINKS).map_err(errno)?;
                Ok((dir, rest[slash + 1..].to_vec()))
            }
        };
    }
    let (dir, name) = at.split().ok_or(Errno::EBUSY)?;
    let fd = sys::openat2(libc::AT_FDCWD, dir, (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64, 0, resolve_of(at)).map_err(errno)?;
    Ok((fd, name.to_vec()))
}

/// The credentials of a guest thread that changed its own, taken on by the monitor's
/// calling thread for the duration of one call (filesystem uid and gid, supplementary
/// groups; a non-zero fsuid drops the filesystem capabilities as it does for the guest).
pub struct AsGuest {
    old: Option<(u32, u32, Vec<u32>)>,
}

impl AsGuest {
    /// Takes on `tid`'s credentials (as `/proc/TID/status` shows them), or none.
    pub fn new(tid: Option<i32>) -> Result<AsGuest, Errno> {
        let Some(tid) = tid else { return Ok(AsGuest { old: None }) };
        let status = sys::ProcStatus::read(tid).ok_or(Errno::ESRCH)?;
        let field = |name: &str| -> Vec<u32> {
            status.field(name).map(|rest| rest.split_whitespace().filter_map(|v| v.parse().ok()).collect()).unwrap_or_default()
        };
        let (uid, gid, groups) = (field("Uid:"), field("Gid:"), field("Groups:"));
        let (Some(&fsuid), Some(&fsgid)) = (uid.get(3), gid.get(3)) else { return Err(Errno::ESRCH) };
        let old_groups = sys::thread_groups();
        if groups != old_groups {
            sys::set_thread_groups(&groups).map_err(|_| Errno::EPERM)?;
        }
        let old_gid = sys::setfsgid(fsgid);
        let old_uid = sys::setfsuid(fsuid);
        Ok(AsGuest { old: Some((old_uid, old_gid, old_groups)) })
    }
}

impl Drop for AsGuest {
    fn drop(&mut self) {
        if let Some((uid, gid, groups)) = self.old.take() {
            sys::setfsuid(uid);
            sys::setfsgid(gid);
            if sys::thread_groups() != groups {
                let _ = sys::set_thread_groups(&groups);
            }
        }
    }
}

use sys::with_umask;

/// How a chain of performed ops ended.
pub enum Ran {
    /// The guest's result.
    Done(Result<u64, Errno>),
    /// The op to finish with installs an fd in the guest: the caller does that.
    Install(HostOp),
    /// The first op met a symlink on a lexically translated path: decide again.
    Redecide,
}

/// Makes `op` for thread `tid`, and every op the monitor chains on its outcome; writes the
/// last one's output into guest memory. The host calls are made without the monitor's lock
/// (other threads of the monitor decide meanwhile); it is taken to hand each outcome over.
pub fn run(shared: &Shared, tid: i32, mut op: HostOp, lexical: bool, mem: &mut dyn GuestMem) -> Ran {
    let mut first = true;
    loop {
        if op.installs_fd() {
            return Ran::Install(op);
        }
        let mut o = perform(&op, tid, mem);
        if first && lexical && o.result == Err(Errno::ELOOP) {
            report_copies(shared);
            return Ran::Redecide;
        }
        first = false;
        let next = {
            let mut mon = shared.monitor.lock().expect("monitor lock");
            for (from, to) in crate::cow::take_copied() {
                mon.on_copied(from, to);
            }
            let next = mon.on_performed(shared.now(), Tid(tid), &op, &mut o);
            shared.drain(&mut mon);
            next
        };
        match next {
            Some(next) => op = next,
            None => {
                if let (Some(addr), Ok(_)) = (op.output(), &o.result)
                    && let Err(f) = mem.write(GuestAddr(addr), &o.out)
                {
                    return Ran::Done(Err(f.into()));
                }
                return Ran::Done(o.result);
            }
        }
    }
}

/// Tells the monitor of the files a copy-on-write view copied up for the op just made
/// (fakeroot's records follow them), taking its lock only if there are any.
pub fn report_copies(shared: &Shared) {
    let copied = crate::cow::take_copied();
    if !copied.is_empty() {
        let mut mon = shared.monitor.lock().expect("monitor lock");
        for (from, to) in copied {
            mon.on_copied(from, to);
        }
    }
}

/// Makes a non-open op for thread `tid`: what it returns for the guest or the core in the
/// outcome's bytes; other output written into guest memory.
pub fn perform(op: &HostOp, tid: i32, mem: &mut dyn GuestMem) -> Outcome {
    let mut out = Vec::new();
    let result = make(op, tid, mem, &mut out);
    Outcome { result, out }
}

fn make(op: &HostOp, tid: i32, mem: &mut dyn GuestMem, out: &mut Vec<u8>) -> Result<u64, Errno> {
    // The guest's file the op names by fd, if the monitor's own filesystems already
    // reached it to see whether it is theirs.
    let mut pre = None;
    if crate::cow::active() {
        match crate::cow::rewrite(op, tid, Some(&mut *mem)) {
            Some(crate::cow::Rewritten::Done(r)) => return r,
            Some(crate::cow::Rewritten::Op(real, after)) => {
                let r = make(&real, tid, mem, out);
                crate::cow::finish(after, r.is_ok());
                return r;
            }
            None => {}
        }
    }
    if crate::vfs::active() {
        match crate::vfs::make(op, tid, mem, out) {
            crate::vfs::Served::Ours(r) => return r,
            crate::vfs::Served::Host(file) => pre = file,
        }
    }
    match op {
        HostOp::Stat { at, nofollow, .. } | HostOp::Identify { at, nofollow } => {
            // A single name under a guest's directory, not followed: one fstatat (no
            // symlink on the way to refuse).
            if *nofollow
                && let Some((tid, base, name)) = at.under_guest()
                && !name.contains(&b'/')
            {
                let dir = guest_dir(tid, base)?;
                *out = sys::fstatat_bytes(dir.as_raw_fd(), name, libc::AT_SYMLINK_NOFOLLOW).map_err(errno)?.to_vec();
                return Ok(0);
            }
            let fd = path_fd(at, *nofollow, &mut pre)?;
            *out = sys::fstat_bytes(fd.as_raw_fd()).map_err(errno)?.to_vec();
            Ok(0)
        }
        HostOp::Statx { at, nofollow, flags, mask, .. } => {
            let fd = path_fd(at, *nofollow, &mut pre)?;
            *out = sys::statx_bytes(fd.as_raw_fd(), *flags, *mask).map_err(errno)?.to_vec();
            Ok(0)
        }
        HostOp::ReadFile { at } => {
            use std::io::Read;
            let fd = sys::openat2(libc::AT_FDCWD, &at.path, (libc::O_RDONLY | libc::O_CLOEXEC) as u64, 0, resolve_of(at)).map_err(errno)?;
            let mut f = std::fs::File::from(fd);
            f.by_ref().take(viewos_core::hostop::READ_FILE_MAX as u64).read_to_end(out).map_err(errno)?;
            Ok(0)
        }
        HostOp::Access { at, nofollow, mode, flags } => {
            let fd = path_fd(at, *nofollow, &mut pre)?;
            sys::faccess_empty(fd.as_raw_fd(), *mode, *flags).map_err(errno).map(|()| 0)
        }
        HostOp::Readlink { at, buf, size } => {
            let target = if at.magic {
                // readlinkat(fd, ""): the symlink the guest's fd holds.
                let fd = path_fd(at, false, &mut pre)?;
                sys::readlinkat(fd.as_raw_fd(), b"", *size as usize)
            } else {
                let (dir, name) = parent_fd(at)?;
                sys::readlinkat(dir.as_raw_fd(), &name, *size as usize)
            }
            .map_err(errno)?;
            mem.write(GuestAddr(*buf), &target)?;
            Ok(target.len() as u64)
        }
        HostOp::Statfs { at, out } => {
            let fd = path_fd(at, false, &mut pre)?;
            let st = sys::fstatfs_bytes(fd.as_raw_fd()).map_err(errno)?;
            mem.write(GuestAddr(*out), &st)?;
            Ok(0)
        }
        HostOp::Unlink { at, rmdir } => {
            let (dir, name) = parent_fd(at)?;
            sys::unlinkat(dir.as_raw_fd(), &name, if *rmdir { libc::AT_REMOVEDIR } else { 0 }).map_err(errno).map(|()| 0)
        }
        HostOp::Mkdir { at, mode, umask } => {
            let (dir, name) = parent_fd(at)?;
            with_umask(*umask, || sys::mkdirat(dir.as_raw_fd(), &name, *mode)).map_err(errno).map(|()| 0)
        }
        HostOp::Rename { from, to, flags } => {
            let (fdir, fname) = parent_fd(from)?;
            let (tdir, tname) = parent_fd(to)?;
            sys::renameat2(fdir.as_raw_fd(), &fname, tdir.as_raw_fd(), &tname, *flags).map_err(errno).map(|()| 0)
        }
        HostOp::Chmod { at, mode, nofollow } => {
            let fd = path_fd(at, *nofollow, &mut pre)?;
            let flags = if *nofollow { libc::AT_SYMLINK_NOFOLLOW as u32 } else { 0 };
            sys::fchmod_empty(fd.as_raw_fd(), *mode, flags).map_err(errno).map(|()| 0)
        }
        HostOp::Chown { at, uid, gid, nofollow } => {
            let fd = path_fd(at, *nofollow, &mut pre)?;
            sys::fchown_empty(fd.as_raw_fd(), *uid, *gid).map_err(errno).map(|()| 0)
        }
        HostOp::Utimens { at, times, nofollow } => {
            let fd = path_fd(at, *nofollow, &mut pre)?;
            sys::utimens_empty(fd.as_raw_fd(), times.as_ref()).map_err(errno).map(|()| 0)
        }
        HostOp::Truncate { at, len } => {
            let probe = path_fd(at, false, &mut pre)?;
            match sys::fstat_bytes(probe.as_raw_fd()).map(|st| sys::stat_type(&st)).map_err(errno)? {
                libc::S_IFREG => {}
                libc::S_IFDIR => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
            // Reopened for writing through the probe: the kernel checks write permission
            // (and ETXTBSY) as for truncate.
            let fd = sys::reopen(probe.as_raw_fd(), libc::O_WRONLY | libc::O_NONBLOCK).map_err(errno)?;
            sys::ftruncate(fd.as_raw_fd(), *len).map_err(errno).map(|()| 0)
        }
        HostOp::Link { from, to } => {
            let (tdir, tname) = parent_fd(to)?;
            if from.magic {
                // The file behind a guest's fd (`linkat(fd, "", ..., AT_EMPTY_PATH)`, or an
                // O_TMPFILE file given a name through /proc/self/fd/N).
                sys::linkat(libc::AT_FDCWD, &from.path, tdir.as_raw_fd(), &tname, libc::AT_SYMLINK_FOLLOW)
            } else {
                let (fdir, fname) = parent_fd(from)?;
                sys::linkat(fdir.as_raw_fd(), &fname, tdir.as_raw_fd(), &tname, 0)
            }
            .map_err(errno)
            .map(|()| 0)
        }
        HostOp::Symlink { target, at } => {
            let (dir, name) = parent_fd(at)?;
            sys::symlinkat(target, dir.as_raw_fd(), &name).map_err(errno).map(|()| 0)
        }
        HostOp::Mknod { at, mode, dev, umask } => {
            let (dir, name) = parent_fd(at)?;
            with_umask(*umask, || sys::mknodat(dir.as_raw_fd(), &name, *mode, *dev)).map_err(errno).map(|()| 0)
        }
        HostOp::Getdents { fd, buf, count, legacy, edit } => {
            // The guest's own open directory: reading it moves the guest's position.
            let dir = match pre.take() {
                Some(d) => d,
                None => guest_file(tid, *fd)?,
            };
            let cap = (*count).min(1 << 20) as usize;
            let mut data = vec![0u8; cap];
            let dev = if edit.retype.is_empty() {
                None
            } else {
                sys::fstat_bytes(dir.as_raw_fd()).ok().map(|st| sys::stat_dev(&st))
            };
            loop {
                let first = sys::tell(dir.as_raw_fd()).map_err(errno)? == 0;
                let n = sys::getdents(dir.as_raw_fd(), &mut data, *legacy).map_err(errno)?;
                if n == 0 {
                    return Ok(0);
                }
                let shown = edit.apply_on(&data[..n], first, cap as u64, *legacy, dev).unwrap_or_else(|| data[..n].to_vec());
                // A batch of hidden names only must not read as the end: read the next.
                if !shown.is_empty() {
                    mem.write(GuestAddr(*buf), &shown)?;
                    return Ok(shown.len() as u64);
                }
            }
        }
        HostOp::Xattr { at, nofollow, call } => {
            let fd = path_fd(at, *nofollow, &mut pre)?;
            let fd = fd.as_raw_fd();
            match call {
                XattrCall::Get { name, buf, size } => {
                    let mut data = vec![0u8; *size as usize];
                    let n = sys::xattr_get(fd, name, &mut data).map_err(errno)?;
                    if *size > 0 {
                        mem.write(GuestAddr(*buf), &data[..n.min(data.len())])?;
                    }
                    Ok(n as u64)
                }
                XattrCall::List { buf, size } => {
                    let mut data = vec![0u8; *size as usize];
                    let n = sys::xattr_list(fd, &mut data).map_err(errno)?;
                    if *size > 0 {
                        mem.write(GuestAddr(*buf), &data[..n.min(data.len())])?;
                    }
                    Ok(n as u64)
                }
                XattrCall::Set { name, value, flags } => sys::xattr_set(fd, name, value, *flags).map_err(errno).map(|()| 0),
                XattrCall::Remove { name } => sys::xattr_remove(fd, name).map_err(errno).map(|()| 0),
            }
        }
        HostOp::Open { .. } | HostOp::OpenMemory { .. } => Err(Errno::ENOSYS),
    }
}

/// How an open goes on.
pub enum Opened {
    /// The open file, to install in the guest's table.
    Ready(OwnedFd),
    /// A FIFO: open it with [`open_fifo`] where blocking harms no one else.
    Fifo { probe: OwnedFd, flags: i32 },
}

/// Opens like the guest's `open` would (`HostOp::Open`), in the monitor; or makes the
/// memory file of a `HostOp::OpenMemory`.
pub fn open(op: &HostOp) -> Result<Opened, Errno> {
    if let HostOp::OpenMemory { name, data, .. } = op {
        return sys::sealed_memfd(name, data).map(Opened::Ready).map_err(errno);
    }
    if crate::cow::active()
        && let Some(rw) = crate::cow::rewrite(op, 0, None)
    {
        return match rw {
            crate::cow::Rewritten::Done(r) => Err(r.err().unwrap_or(Errno::EIO)),
            crate::cow::Rewritten::Op(real, after) => {
                let r = open(&real);
                crate::cow::finish(after, r.is_ok());
                r
            }
        };
    }
    if crate::vfs::active()
        && let Some(r) = crate::vfs::open(op)
    {
        return r;
    }
    let HostOp::Open { at, flags, mode, resolve, umask } = op else { return Err(Errno::ENOSYS) };
    let flags = *flags as i32;
    let creating = flags & libc::O_CREAT != 0;
    // O_TMPFILE names a directory to create an unnamed file in: nothing to probe.
    if flags & libc::O_TMPFILE == libc::O_TMPFILE {
        let fd = with_umask(*umask, || sys::openat2(libc::AT_FDCWD, &at.path, (flags | libc::O_CLOEXEC) as u64, *mode, *resolve));
        return fd.map(Opened::Ready).map_err(errno);
    }
    // O_CREAT|O_EXCL never follows a final symlink (the view's lookup did not either).
    let excl = creating && flags & libc::O_EXCL != 0;
    let nofollow = if excl { libc::O_NOFOLLOW } else { flags & libc::O_NOFOLLOW };
    let probe_flags = libc::O_PATH | libc::O_CLOEXEC | nofollow;
    let probe = match sys::openat2(libc::AT_FDCWD, &at.path, probe_flags as u64, 0, *resolve) {
        Ok(p) => p,
        Err(e) if creating && e.raw_os_error() == Some(libc::ENOENT) => {
            // Create it. O_NONBLOCK in case another process made a FIFO there meanwhile;
            // taken off again for what the guest did not ask.
            let fl = flags | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
            let fd = with_umask(*umask, || sys::openat2(libc::AT_FDCWD, &at.path, fl as u64, *mode, *resolve)).map_err(errno)?;
            if flags & libc::O_NONBLOCK == 0 {
                let cur = sys::get_fl(fd.as_raw_fd()).map_err(errno)?;
                sys::set_fl(fd.as_raw_fd(), cur & !libc::O_NONBLOCK).map_err(errno)?;
            }
            return Ok(Opened::Ready(fd));
        }
        Err(e) => return Err(errno(e)),
    };
    if excl {
        return Err(Errno::EEXIST);
    }
    let kind = sys::fstat_bytes(probe.as_raw_fd()).map(|st| sys::stat_type(&st)).map_err(errno)?;
    if kind == libc::S_IFLNK {
        // O_NOFOLLOW met a final symlink.
        return Err(Errno::ELOOP);
    }
    // Reopened through the probe: the kernel checks permissions again, as for the guest.
    let reflags = (flags & !(libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW)) | libc::O_CLOEXEC;
    match kind {
        libc::S_IFREG | libc::S_IFDIR => {
            sys::reopen(probe.as_raw_fd(), reflags).map(Opened::Ready).map_err(errno)
        }
        libc::S_IFIFO if flags & libc::O_NONBLOCK == 0 => Ok(Opened::Fifo { probe, flags: reflags }),
        _ => sys::reopen(probe.as_raw_fd(), reflags | libc::O_NOCTTY).map(Opened::Ready).map_err(errno),
    }
}

/// The blocking open of a FIFO (until a peer opens the other end), with the credentials
/// of `creds` if the guest thread changed its own.
pub fn open_fifo(probe: &OwnedFd, flags: i32, creds: Option<i32>) -> Result<OwnedFd, Errno> {
    let _as_guest = AsGuest::new(creds)?;
    sys::reopen(probe.as_raw_fd(), flags).map_err(errno)
}
