//! Thin wrappers over the raw kernel interfaces the tracer uses (ptrace, seccomp user
//! notification, pidfd, cross-memory attach). Every `unsafe` block of viewos is here or in
//! `spawn.rs`; each wrapper documents the one invariant it relies on.

use std::io;

pub const PTRACE_SEIZE: libc::c_uint = 0x4206;
pub const PTRACE_LISTEN: libc::c_uint = 0x4208;
pub const PTRACE_GETEVENTMSG: libc::c_uint = 0x4201;
pub const PTRACE_GET_SYSCALL_INFO: libc::c_uint = 0x420e;
pub const PTRACE_CONT: libc::c_uint = 7;
pub const PTRACE_SYSCALL: libc::c_uint = 24;
pub const PTRACE_GETREGS: libc::c_uint = 12;
pub const PTRACE_SETREGS: libc::c_uint = 13;

pub const O_TRACESYSGOOD: u64 = 1;
pub const O_TRACEFORK: u64 = 2;
pub const O_TRACEVFORK: u64 = 4;
pub const O_TRACECLONE: u64 = 8;
pub const O_TRACEEXEC: u64 = 0x10;
pub const O_TRACESECCOMP: u64 = 0x80;
pub const O_EXITKILL: u64 = 0x10_0000;

pub const EVENT_FORK: i32 = 1;
pub const EVENT_VFORK: i32 = 2;
pub const EVENT_CLONE: i32 = 3;
pub const EVENT_EXEC: i32 = 4;
pub const EVENT_SECCOMP: i32 = 7;
pub const EVENT_STOP: i32 = 128;

pub const SYSCALL_INFO_EXIT: u8 = 2;
pub const SYSCALL_INFO_SECCOMP: u8 = 3;

// <linux/seccomp.h> ioctls: _IOC(dir, '!', nr, size).
pub const NOTIF_RECV: libc::c_ulong = 0xC050_2100;
pub const NOTIF_SEND: libc::c_ulong = 0xC018_2101;
pub const NOTIF_ID_VALID: libc::c_ulong = 0x4008_2102;
pub const NOTIF_SET_FLAGS: libc::c_ulong = 0x4008_2104;
pub const NOTIF_FD_SYNC_WAKE_UP: u64 = 1;
pub const USER_NOTIF_FLAG_CONTINUE: u32 = 1;
pub const FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;
/// Once the monitor has received a notification, the guest's wait for the answer ends
/// only by SIGKILL (Linux 5.19+): no signal restarts a call whose work has begun.
pub const FILTER_FLAG_WAIT_KILLABLE_RECV: libc::c_ulong = 1 << 5;
pub const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

/// `struct ptrace_syscall_info` (Linux 5.3+), large enough for every op.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SyscallInfo {
    pub op: u8,
    pub pad: [u8; 3],
    pub arch: u32,
    pub instruction_pointer: u64,
    pub stack_pointer: u64,
    /// entry/seccomp: nr; exit: rval.
    pub nr_or_rval: u64,
    /// entry/seccomp: args; exit: is_error in the low byte of args[0].
    pub args: [u64; 6],
    pub ret_data: u32,
    pub pad2: u32,
}

/// `struct seccomp_data`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

/// `struct seccomp_notif`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Notif {
    pub id: u64,
    pub pid: u32,
    pub flags: u32,
    pub data: SeccompData,
}

/// `struct seccomp_notif_resp`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NotifResp {
    pub id: u64,
    pub val: i64,
    pub error: i32,
    pub flags: u32,
}

/// A kernel error as the guest's errno.
pub fn errno(e: io::Error) -> viewos_core::Errno {
    viewos_core::Errno(e.raw_os_error().unwrap_or(libc::EIO) as u16)
}

fn check(r: libc::c_long) -> io::Result<libc::c_long> {
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r) }
}

/// A raw ptrace request. Sound for any pid: the kernel validates the target, and `data`
/// either is a plain value or points to a buffer the caller sized for the request.
fn ptrace(req: libc::c_uint, pid: i32, addr: usize, data: usize) -> io::Result<libc::c_long> {
    // SAFETY: see above; ptrace never writes outside the buffers it is given.
    check(unsafe { libc::ptrace(req, pid, addr as *mut libc::c_void, data as *mut libc::c_void) })
}

pub fn seize(pid: i32, options: u64) -> io::Result<()> {
    ptrace(PTRACE_SEIZE, pid, 0, options as usize).map(drop)
}

/// Resumes a stopped tracee, delivering `sig` (0 for none).
pub fn cont(pid: i32, sig: i32) -> io::Result<()> {
    ptrace(PTRACE_CONT, pid, 0, sig as usize).map(drop)
}

/// Resumes until the next syscall boundary (used to take an exit stop).
pub fn syscall(pid: i32, sig: i32) -> io::Result<()> {
    ptrace(PTRACE_SYSCALL, pid, 0, sig as usize).map(drop)
}

/// Leaves a group-stopped tracee stopped but lets SIGCONT wake it (job control).
pub fn listen(pid: i32) -> io::Result<()> {
    ptrace(PTRACE_LISTEN, pid, 0, 0).map(drop)
}

pub fn event_msg(pid: i32) -> io::Result<u64> {
    let mut msg: libc::c_ulong = 0;
    ptrace(PTRACE_GETEVENTMSG, pid, 0, &mut msg as *mut _ as usize)?;
    Ok(msg)
}

pub fn syscall_info(pid: i32) -> io::Result<SyscallInfo> {
    let mut info = SyscallInfo::default();
    ptrace(PTRACE_GET_SYSCALL_INFO, pid, size_of::<SyscallInfo>(), &mut info as *mut _ as usize)?;
    Ok(info)
}

pub fn get_regs(pid: i32) -> io::Result<libc::user_regs_struct> {
    // SAFETY: user_regs_struct is plain integers; all-zero is a valid value.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    ptrace(PTRACE_GETREGS, pid, 0, &mut regs as *mut _ as usize)?;
    Ok(regs)
}

pub fn set_regs(pid: i32, regs: &libc::user_regs_struct) -> io::Result<()> {
    ptrace(PTRACE_SETREGS, pid, 0, regs as *const _ as usize).map(drop)
}

/// Receives one user notification (blocks).
pub fn notif_recv(fd: i32) -> io::Result<Notif> {
    let mut n = Notif::default();
    // SAFETY: the buffer has the size encoded in the ioctl number.
    check(unsafe { libc::ioctl(fd, NOTIF_RECV, &mut n as *mut Notif) } as libc::c_long)?;
    Ok(n)
}

pub fn notif_send(fd: i32, resp: &NotifResp) -> io::Result<()> {
    let mut r = *resp;
    // SAFETY: as above.
    check(unsafe { libc::ioctl(fd, NOTIF_SEND, &mut r as *mut NotifResp) } as libc::c_long).map(drop)
}

/// True if the notification is still pending (its thread has not died or been interrupted).
pub fn notif_id_valid(fd: i32, id: u64) -> bool {
    let mut id = id;
    // SAFETY: as above.
    unsafe { libc::ioctl(fd, NOTIF_ID_VALID, &mut id as *mut u64) == 0 }
}

/// Asks the kernel to wake the notifying thread on the supervisor's CPU (Linux 6.6+).
pub fn notif_set_sync_wakeup(fd: i32) -> io::Result<()> {
    // SAFETY: this ioctl takes the flags by value, not through a pointer.
    check(unsafe { libc::ioctl(fd, NOTIF_SET_FLAGS, NOTIF_FD_SYNC_WAKE_UP) } as libc::c_long).map(drop)
}

/// A thread's `/proc/TID/status`, read once, for its fields.
pub struct ProcStatus(String);

impl ProcStatus {
    pub fn read(tid: i32) -> Option<ProcStatus> {
        std::fs::read_to_string(format!("/proc/{tid}/status")).ok().map(ProcStatus)
    }

    /// The value of field `name` (spelled with its colon, `"Uid:"`), trimmed.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.0.lines().find_map(|l| l.strip_prefix(name)).map(str::trim)
    }

    /// A field that is a hex mask (`SigPnd:`, `CapEff:`); 0 if absent or unreadable.
    pub fn mask(&self, name: &str) -> u64 {
        self.field(name).and_then(|v| u64::from_str_radix(v, 16).ok()).unwrap_or(0)
    }
}

/// Whether thread `tid` has a signal pending that it does not block and that its delivery
/// will find: one sent to the thread, or to its process if it is the only thread (another
/// thread could take a process-wide one first).
pub fn signal_pending(tid: i32) -> bool {
    let Some(status) = ProcStatus::read(tid) else { return false };
    let alone = status.field("Threads:") == Some("1");
    let pending = status.mask("SigPnd:") | if alone { status.mask("ShdPnd:") } else { 0 };
    pending & !status.mask("SigBlk:") != 0
}

/// True if `fd` reports POLLHUP (for a listener: no process uses its filter any more).
pub fn hung_up(fd: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, no waiting.
    unsafe { libc::poll(&mut p, 1, 0) == 1 && p.revents & libc::POLLHUP != 0 }
}

pub fn process_vm_read(pid: i32, addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: `local` covers exactly `buf`; the remote side is checked by the kernel.
    check(unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) } as libc::c_long).map(|n| n as usize)
}

pub fn process_vm_write(pid: i32, addr: u64, data: &[u8]) -> io::Result<usize> {
    let local = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: `local` covers exactly `data` (only read); the remote side is checked by the kernel.
    check(unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) } as libc::c_long).map(|n| n as usize)
}

pub fn tgkill(tgid: i32, tid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall with integer arguments.
    check(unsafe { libc::syscall(libc::SYS_tgkill, tgid, tid, sig) }).map(drop)
}

/// The monitor's own signal dispositions, set once the guest has been forked (it keeps the
/// ones viewos was started with). SIGUSR1 gets `wake`, a handler that does nothing: it only
/// interrupts waitpid when a blocked call completes on another thread. SIGINT and SIGQUIT
/// are ignored: the terminal sends them to the guests too, and the monitor waits, as a
/// shell does for its foreground job. SIGTSTP is ignored: when the guest stops for job
/// control the monitor stops itself after it. SIGPIPE is ignored: a closed `--trace` pipe
/// must not kill the monitor, and with it the view.
pub fn monitor_signals(wake: extern "C" fn(libc::c_int)) {
    // SAFETY: a zeroed sigaction is valid; the handler is async-signal-safe (it does nothing).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = wake as *const () as usize;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
        for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGTSTP, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
}

/// Stops the monitor (job control); SIGCONT resumes it.
pub fn stop_self() {
    // SAFETY: raising a signal at ourselves.
    unsafe { libc::raise(libc::SIGSTOP) };
}

/// True if `pid` is in the monitor's own process group and the monitor does not lead its
/// session (a shell outside could resume the group).
pub fn same_job_and_not_session_leader(pid: i32) -> bool {
    // SAFETY: plain queries without pointers.
    unsafe { libc::getpgid(pid) == libc::getpgrp() && libc::getsid(0) != libc::getpid() }
}

pub fn gettid() -> i32 {
    // SAFETY: gettid cannot fail.
    unsafe { libc::gettid() }
}

/// How long the tracer polls for the next stop before it sleeps.
pub const SPIN: std::time::Duration = std::time::Duration::from_micros(100);

/// `waitpid(-1, __WALL)`: the next status change of any child or tracee.
/// `Ok(None)` when there is nothing left to wait for (ECHILD). With `bounded`, it waits at
/// most about a millisecond and then reports EINTR, as an interrupted wait would: the
/// caller has work another thread may hand it (a wake-up signal sent just before the wait
/// began would otherwise be lost).
pub fn wait_any(bounded: bool) -> io::Result<Option<(i32, i32)>> {
    let mut status = 0;
    // Poll briefly before sleeping: a tracee that was just resumed often stops again within
    // microseconds, and on a VM waking a sleeping CPU costs tens of microseconds.
    let spin_until = std::time::Instant::now() + SPIN;
    while std::time::Instant::now() < spin_until {
        // SAFETY: `status` is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::WNOHANG) };
        if pid > 0 {
            return Ok(Some((pid, status)));
        }
        if pid < 0 {
            break;
        }
        std::hint::spin_loop();
    }
    if bounded {
        std::thread::sleep(std::time::Duration::from_millis(1));
        // SAFETY: `status` is a valid out-pointer.
        return match unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::WNOHANG) } {
            0 => Err(io::Error::from_raw_os_error(libc::EINTR)),
            pid if pid > 0 => Ok(Some((pid, status))),
            _ => {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::ECHILD) { Ok(None) } else { Err(e) }
            }
        };
    }
    // SAFETY: `status` is a valid out-pointer.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL) };
    if pid >= 0 {
        return Ok(Some((pid, status)));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::ECHILD) { Ok(None) } else { Err(e) }
}

// ---- Host calls the monitor makes on a guest's behalf (perform.rs) ----

pub const NOTIF_ADDFD: libc::c_ulong = 0x4018_2103;
pub const ADDFD_FLAG_SEND: u32 = 2;

/// `struct seccomp_notif_addfd`.
#[repr(C)]
struct NotifAddfd {
    id: u64,
    flags: u32,
    srcfd: u32,
    newfd: u32,
    newfd_flags: u32,
}

/// Installs `srcfd` in the notifying thread's fd table and answers its call with the new
/// fd number, atomically (`SECCOMP_ADDFD_FLAG_SEND`).
pub fn notif_addfd_send(fd: i32, id: u64, srcfd: i32, cloexec: bool) -> io::Result<i32> {
    let mut a = NotifAddfd { id, flags: ADDFD_FLAG_SEND, srcfd: srcfd as u32, newfd: 0, newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 } };
    // SAFETY: the buffer has the size encoded in the ioctl number.
    check(unsafe { libc::ioctl(fd, NOTIF_ADDFD, &mut a as *mut NotifAddfd) } as libc::c_long).map(|r| r as i32)
}

fn cstr(path: &[u8]) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `openat2(dirfd, path, {flags, mode, resolve})`.
pub fn openat2(dirfd: i32, path: &[u8], flags: u64, mode: u64, resolve: u64) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let p = cstr(path)?;
    let how: [u64; 3] = [flags, mode, resolve];
    // SAFETY: a valid C string and a 24-byte open_how; the returned fd is ours alone.
    let fd = check(unsafe { libc::syscall(libc::SYS_openat2, dirfd, p.as_ptr(), how.as_ptr(), 24usize) })?;
    // SAFETY: a fresh fd from the kernel.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// `fstatat(fd, "", AT_EMPTY_PATH)`: `struct stat` as bytes.
pub fn fstat_bytes(fd: i32) -> io::Result<[u8; 144]> {
    let mut st = [0u8; 144];
    // SAFETY: a 144-byte buffer is `struct stat` on x86-64; the path is a static empty string.
    check(unsafe { libc::syscall(libc::SYS_newfstatat, fd, c"".as_ptr(), st.as_mut_ptr(), libc::AT_EMPTY_PATH) })?;
    Ok(st)
}

/// `fstatat(dirfd, name, flags)` as bytes (`struct stat`).
pub fn fstatat_bytes(dirfd: i32, name: &[u8], flags: i32) -> io::Result<[u8; 144]> {
    let mut st = [0u8; 144];
    let p = cstr(name)?;
    // SAFETY: a 144-byte buffer is `struct stat` on x86-64; `p` is NUL-terminated.
    check(unsafe { libc::syscall(libc::SYS_newfstatat, dirfd, p.as_ptr(), st.as_mut_ptr(), flags) })?;
    Ok(st)
}

/// `st_dev` of a `struct stat` as bytes.
pub fn stat_dev(st: &[u8; 144]) -> u64 {
    u64::from_le_bytes(st[..8].try_into().expect("144 bytes"))
}

/// `st_ino` of a `struct stat` as bytes.
pub fn stat_ino(st: &[u8; 144]) -> u64 {
    u64::from_le_bytes(st[8..16].try_into().expect("144 bytes"))
}

/// A new open file description of the file `fd` refers to, with `flags` (and
/// close-on-exec): a reopen through `/proc/self/fd/N`, so the kernel checks permissions
/// for the opener's credentials as for any open.
pub fn reopen(fd: i32, flags: i32) -> io::Result<std::os::fd::OwnedFd> {
    openat2(libc::AT_FDCWD, format!("/proc/self/fd/{fd}").as_bytes(), (flags | libc::O_CLOEXEC) as u64, 0, 0)
}

/// The `st_mode` file type bits of a `struct stat` as bytes.
pub fn stat_type(st: &[u8; 144]) -> u32 {
    u32::from_le_bytes(st[24..28].try_into().expect("144 bytes")) & libc::S_IFMT
}

/// `statx(fd, "", AT_EMPTY_PATH | flags, mask)`: `struct statx` as bytes.
pub fn statx_bytes(fd: i32, flags: u32, mask: u32) -> io::Result<[u8; 256]> {
    let mut st = [0u8; 256];
    // SAFETY: `struct statx` is 256 bytes.
    check(unsafe { libc::syscall(libc::SYS_statx, fd, c"".as_ptr(), libc::AT_EMPTY_PATH as u32 | flags, mask, st.as_mut_ptr()) })?;
    Ok(st)
}

/// `faccessat2(fd, "", mode, AT_EMPTY_PATH | flags)`.
pub fn faccess_empty(fd: i32, mode: u32, flags: u32) -> io::Result<()> {
    // SAFETY: integer arguments and a static empty string.
    check(unsafe { libc::syscall(libc::SYS_faccessat2, fd, c"".as_ptr(), mode, libc::AT_EMPTY_PATH as u32 | flags) }).map(drop)
}

/// `readlinkat(dirfd, name)`, at most `max` bytes.
pub fn readlinkat(dirfd: i32, name: &[u8], max: usize) -> io::Result<Vec<u8>> {
    let p = cstr(name)?;
    let mut buf = vec![0u8; max.min(libc::PATH_MAX as usize * 2)];
    // SAFETY: the buffer's length is passed with it.
    let n = check(unsafe { libc::syscall(libc::SYS_readlinkat, dirfd, p.as_ptr(), buf.as_mut_ptr(), buf.len()) })?;
    buf.truncate(n as usize);
    Ok(buf)
}

/// `fstatfs(fd)`: `struct statfs` as bytes.
pub fn fstatfs_bytes(fd: i32) -> io::Result<[u8; 120]> {
    let mut st = [0u8; 120];
    // SAFETY: `struct statfs` is 120 bytes on x86-64.
    check(unsafe { libc::syscall(libc::SYS_fstatfs, fd, st.as_mut_ptr()) })?;
    Ok(st)
}

pub fn unlinkat(dirfd: i32, name: &[u8], flags: i32) -> io::Result<()> {
    let p = cstr(name)?;
    // SAFETY: a valid C string.
    check(unsafe { libc::syscall(libc::SYS_unlinkat, dirfd, p.as_ptr(), flags) }).map(drop)
}

pub fn mkdirat(dirfd: i32, name: &[u8], mode: u32) -> io::Result<()> {
    let p = cstr(name)?;
    // SAFETY: a valid C string.
    check(unsafe { libc::syscall(libc::SYS_mkdirat, dirfd, p.as_ptr(), mode) }).map(drop)
}

pub fn renameat2(olddir: i32, old: &[u8], newdir: i32, new: &[u8], flags: u32) -> io::Result<()> {
    let (o, n) = (cstr(old)?, cstr(new)?);
    // SAFETY: valid C strings.
    check(unsafe { libc::syscall(libc::SYS_renameat2, olddir, o.as_ptr(), newdir, n.as_ptr(), flags) }).map(drop)
}

/// `fchmodat2(fd, "", mode, AT_EMPTY_PATH | flags)`.
pub fn fchmod_empty(fd: i32, mode: u32, flags: u32) -> io::Result<()> {
    // SAFETY: integer arguments and a static empty string.
    check(unsafe { libc::syscall(452, fd, c"".as_ptr(), mode, libc::AT_EMPTY_PATH as u32 | flags) }).map(drop)
}

pub fn get_fl(fd: i32) -> io::Result<i32> {
    // SAFETY: integer arguments.
    check(unsafe { libc::fcntl(fd, libc::F_GETFL) } as libc::c_long).map(|r| r as i32)
}

pub fn set_fl(fd: i32, fl: i32) -> io::Result<()> {
    // SAFETY: integer arguments.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, fl) } as libc::c_long).map(drop)
}

/// The process umask is one for all the monitor's threads: it is changed for a call only
/// under this lock (see [`with_umask`]).
static UMASK_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` with the process umask set to `mask`, no other thread of the monitor changing it
/// meanwhile.
pub fn with_umask<T>(mask: u32, f: impl FnOnce() -> T) -> T {
    let _held = UMASK_LOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let old = umask(mask);
    let r = f();
    umask(old);
    r
}

/// Sets the process umask, returning the old one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: cannot fail.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// This thread's filesystem uid/gid (the raw syscalls act on the calling thread only);
/// returns the previous value.
pub fn setfsuid(uid: u32) -> u32 {
    // SAFETY: integer argument.
    unsafe { libc::syscall(libc::SYS_setfsuid, uid) as u32 }
}

pub fn setfsgid(gid: u32) -> u32 {
    // SAFETY: integer argument.
    unsafe { libc::syscall(libc::SYS_setfsgid, gid) as u32 }
}

/// This thread's supplementary groups (raw syscall: this thread only).
pub fn set_thread_groups(groups: &[u32]) -> io::Result<()> {
    // SAFETY: the pointer and length describe `groups`.
    check(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) }).map(drop)
}

pub fn thread_groups() -> Vec<u32> {
    // SAFETY: a zero size asks for the count only.
    let count = unsafe { libc::syscall(libc::SYS_getgroups, 0, std::ptr::null_mut::<u32>()) };
    let mut g = vec![0u32; count.clamp(0, 65536) as usize];
    // SAFETY: the buffer's length is passed with it.
    let n = unsafe { libc::syscall(libc::SYS_getgroups, g.len(), g.as_mut_ptr()) };
    g.truncate(n.max(0) as usize);
    g
}

/// `fchownat(fd, "", uid, gid, AT_EMPTY_PATH)`.
pub fn fchown_empty(fd: i32, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: integer arguments and a static empty string.
    check(unsafe { libc::syscall(libc::SYS_fchownat, fd, c"".as_ptr(), uid, gid, libc::AT_EMPTY_PATH) }).map(drop)
}

/// `utimensat(fd, "", times, AT_EMPTY_PATH)`; `None`: now.
pub fn utimens_empty(fd: i32, times: Option<&[i64; 4]>) -> io::Result<()> {
    let p = times.map_or(std::ptr::null(), |t| t.as_ptr());
    // SAFETY: `times` is two `struct timespec` (four i64) or NULL.
    check(unsafe { libc::syscall(libc::SYS_utimensat, fd, c"".as_ptr(), p, libc::AT_EMPTY_PATH) }).map(drop)
}

pub fn ftruncate(fd: i32, len: i64) -> io::Result<()> {
    // SAFETY: integer arguments.
    check(unsafe { libc::syscall(libc::SYS_ftruncate, fd, len) }).map(drop)
}

pub fn linkat(olddir: i32, old: &[u8], newdir: i32, new: &[u8], flags: i32) -> io::Result<()> {
    let (o, n) = (cstr(old)?, cstr(new)?);
    // SAFETY: valid C strings.
    check(unsafe { libc::syscall(libc::SYS_linkat, olddir, o.as_ptr(), newdir, n.as_ptr(), flags) }).map(drop)
}

pub fn symlinkat(target: &[u8], dir: i32, name: &[u8]) -> io::Result<()> {
    let (t, n) = (cstr(target)?, cstr(name)?);
    // SAFETY: valid C strings.
    check(unsafe { libc::syscall(libc::SYS_symlinkat, t.as_ptr(), dir, n.as_ptr()) }).map(drop)
}

pub fn mknodat(dir: i32, name: &[u8], mode: u32, dev: u64) -> io::Result<()> {
    let n = cstr(name)?;
    // SAFETY: a valid C string.
    check(unsafe { libc::syscall(libc::SYS_mknodat, dir, n.as_ptr(), mode, dev) }).map(drop)
}

/// A pidfd of thread `tid` (its own, naming its fd table, on Linux 6.9+).
pub fn pidfd(tid: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    const PIDFD_THREAD: libc::c_int = libc::O_EXCL;
    // SAFETY: plain syscalls with integer arguments; the fd returned is ours alone.
    unsafe {
        let mut pidfd = libc::syscall(libc::SYS_pidfd_open, tid, PIDFD_THREAD);
        if pidfd < 0 {
            pidfd = check(libc::syscall(libc::SYS_pidfd_open, tid, 0))?;
        }
        Ok(std::os::fd::OwnedFd::from_raw_fd(pidfd as i32))
    }
}

/// `pidfd_getfd`: fd `fd` of the thread behind `pidfd`, duplicated into the monitor.
pub fn pidfd_getfd(pidfd: i32, fd: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: integer arguments; the fd returned is ours alone.
    unsafe {
        let f = check(libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0))?;
        Ok(std::os::fd::OwnedFd::from_raw_fd(f as i32))
    }
}

/// The guest's fd `fd` of thread `tid`, duplicated into the monitor: the same open file
/// (position, flags), as `pidfd_getfd` gives it.
pub fn guest_fd(tid: i32, fd: i32) -> io::Result<std::os::fd::OwnedFd> {
    let pidfd = pidfd(tid)?;
    pidfd_getfd(std::os::fd::AsRawFd::as_raw_fd(&pidfd), fd)
}

/// Sets the file position of `fd`.
pub fn seek(fd: i32, pos: u64) -> io::Result<()> {
    // SAFETY: integer arguments.
    check(unsafe { libc::lseek(fd, pos as i64, libc::SEEK_SET) } as libc::c_long).map(drop)
}

/// A new, empty memfd (close-on-exec) named `name`.
pub fn memfd(name: &[u8]) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let n = cstr(name)?;
    // SAFETY: a valid C string; the returned fd is ours alone.
    let fd = check(unsafe { libc::syscall(libc::SYS_memfd_create, n.as_ptr(), libc::MFD_CLOEXEC) })?;
    // SAFETY: a fresh fd from the kernel.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// The file position of `fd`.
pub fn tell(fd: i32) -> io::Result<u64> {
    // SAFETY: integer arguments.
    check(unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) } as libc::c_long).map(|r| r as u64)
}

/// `getdents64` (or the legacy `getdents`) into `buf`.
pub fn getdents(fd: i32, buf: &mut [u8], legacy: bool) -> io::Result<usize> {
    let nr = if legacy { libc::SYS_getdents } else { libc::SYS_getdents64 };
    // SAFETY: the buffer's length is passed with it.
    check(unsafe { libc::syscall(nr, fd, buf.as_mut_ptr(), buf.len()) }).map(|n| n as usize)
}

// Extended attributes of the file behind an fd (an `O_PATH` fd too: the `f*xattr` calls and
// the `*xattrat` calls refuse those): by the fd's `/proc/self/fd/N` path, whose magic link
// leads to exactly the fd's object (a symlink itself, for an `O_NOFOLLOW` fd).

fn proc_fd(fd: i32) -> std::ffi::CString {
    std::ffi::CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL")
}

/// The value of attribute `name` into `buf` (empty: its length only).
pub fn xattr_get(fd: i32, name: &[u8], buf: &mut [u8]) -> io::Result<usize> {
    let n = cstr(name)?;
    // SAFETY: the buffer's length is passed with it; the strings are valid.
    check(unsafe { libc::getxattr(proc_fd(fd).as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) } as libc::c_long).map(|v| v as usize)
}

/// The attribute names into `buf` (empty: their length only).
pub fn xattr_list(fd: i32, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: as above.
    check(unsafe { libc::listxattr(proc_fd(fd).as_ptr(), buf.as_mut_ptr().cast(), buf.len()) } as libc::c_long).map(|v| v as usize)
}

/// Sets attribute `name`.
pub fn xattr_set(fd: i32, name: &[u8], value: &[u8], flags: u32) -> io::Result<()> {
    let n = cstr(name)?;
    // SAFETY: as above.
    check(unsafe { libc::setxattr(proc_fd(fd).as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), flags as i32) } as libc::c_long).map(drop)
}

/// Removes attribute `name`.
pub fn xattr_remove(fd: i32, name: &[u8]) -> io::Result<()> {
    let n = cstr(name)?;
    // SAFETY: valid strings.
    check(unsafe { libc::removexattr(proc_fd(fd).as_ptr(), n.as_ptr()) } as libc::c_long).map(drop)
}

/// A read-only fd of a sealed memory file holding `data` (named `name` in
/// `/proc/PID/fd`): nobody can change its content or size.
pub fn sealed_memfd(name: &[u8], data: &[u8]) -> io::Result<std::os::fd::OwnedFd> {
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};
    let n = cstr(name)?;
    // SAFETY: a valid C string; the returned fd is ours alone.
    let fd = check(unsafe { libc::syscall(libc::SYS_memfd_create, n.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) })?;
    // SAFETY: a fresh fd from the kernel.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd as i32) };
    file.write_all(data)?;
    let seals = libc::F_SEAL_WRITE | libc::F_SEAL_GROW | libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL;
    // SAFETY: integer arguments on our own fd.
    check(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } as i64)?;
    // Reopened read-only (from offset 0) through /proc/self/fd: the guest's fd cannot write.
    reopen(file.as_raw_fd(), libc::O_RDONLY)
}

/// A tmpfs of at most `size` bytes (root directory mode `mode`) that belongs to no mount
/// namespace anyone can enter: a child process makes it in a user and mount namespace of
/// its own (`fsopen`/`fsconfig`/`fsmount`, a detached mount) and hands back the mount's
/// fd; the child then exits and the fd keeps the filesystem alive. Files are made in it
/// with `O_TMPFILE` relative to that fd. Must be called before the process has threads.
pub fn private_tmpfs(size: u64, mode: u32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // Everything the child uses is made before the fork: after it, only system calls.
    // SAFETY: no arguments.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let map = |id: u32| if id == 0 { "0 0 4294967295\n".to_string() } else { format!("0 {id} 1\n") };
    let (uid_map, gid_map) = (map(uid), map(gid));
    let size_s = std::ffi::CString::new(size.to_string()).expect("digits");
    let mode_s = std::ffi::CString::new(format!("{mode:o}")).expect("digits");
    let mut sv = [0i32; 2];
    // SAFETY: a two-int array for the pair.
    check(unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0, sv.as_mut_ptr()) } as libc::c_long)?;
    // SAFETY: both fds are fresh and ours.
    let (mine, theirs) = unsafe { (std::os::fd::OwnedFd::from_raw_fd(sv[0]), std::os::fd::OwnedFd::from_raw_fd(sv[1])) };
    let mut cmsg = [0u64; 4];
    // SAFETY: fork in a process without other threads; the child makes system calls only.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: the child: raw system calls on buffers made before the fork, then _exit.
        unsafe {
            // New namespaces; the parent, still outside, writes the id maps (only it may
            // map more than one id, as root does), then says go.
            let mut b = [0u8; 1];
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0
                || libc::write(sv[1], b.as_ptr().cast(), 1) != 1
                || libc::read(sv[1], b.as_mut_ptr().cast(), 1) != 1
                || b[0] != 1
            {
                libc::_exit(1);
            }
            let fsfd = libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), 1u32) as i32;
            let set = |k: &std::ffi::CStr, v: &std::ffi::CStr| libc::syscall(libc::SYS_fsconfig, fsfd, 1u32, k.as_ptr(), v.as_ptr(), 0) == 0;
            if fsfd < 0 || !set(c"size", &size_s) || !set(c"mode", &mode_s) || libc::syscall(libc::SYS_fsconfig, fsfd, 6u32, 0usize, 0usize, 0) != 0 {
                libc::_exit(2);
            }
            let mnt = libc::syscall(libc::SYS_fsmount, fsfd, 1u32, 0u32) as i32;
            if mnt < 0 {
                libc::_exit(3);
            }
            // One SCM_RIGHTS message carrying `mnt`.
            let hdr = cmsg.as_mut_ptr().cast::<libc::cmsghdr>();
            (*hdr).cmsg_len = libc::CMSG_LEN(4) as usize;
            (*hdr).cmsg_level = libc::SOL_SOCKET;
            (*hdr).cmsg_type = libc::SCM_RIGHTS;
            *libc::CMSG_DATA(hdr).cast::<i32>() = mnt;
            let mut byte = [0u8; 1];
            let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cmsg.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as usize;
            libc::_exit(if libc::sendmsg(sv[1], &msg, 0) == 1 { 0 } else { 4 });
        }
    }
    drop(theirs);
    let child_file = |name: &str, data: &str| std::fs::write(format!("/proc/{pid}/{name}"), data);
    let mut b = [0u8; 1];
    // SAFETY: a one-byte buffer.
    let ready = unsafe { libc::read(std::os::fd::AsRawFd::as_raw_fd(&mine), b.as_mut_ptr().cast(), 1) } == 1;
    let mapped = ready
        && (child_file("setgroups", "deny").is_ok() || uid == 0)
        && child_file("uid_map", &uid_map).is_ok()
        && child_file("gid_map", &gid_map).is_ok();
    b[0] = u8::from(mapped);
    // SAFETY: a one-byte buffer.
    unsafe { libc::write(std::os::fd::AsRawFd::as_raw_fd(&mine), b.as_ptr().cast(), 1) };
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: a zeroed msghdr pointing at our buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    // SAFETY: integer arithmetic.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as usize;
    // SAFETY: msg describes valid buffers.
    let n = unsafe { libc::recvmsg(std::os::fd::AsRawFd::as_raw_fd(&mine), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    let mut status = 0;
    // SAFETY: our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if n != 1 || msg.msg_controllen == 0 {
        return Err(io::Error::other(format!("no private tmpfs (user namespaces unavailable? helper exit status {})", libc::WEXITSTATUS(status))));
    }
    // SAFETY: the kernel wrote one SCM_RIGHTS fd into the control buffer.
    let fd = unsafe { *libc::CMSG_DATA(cmsg.as_ptr().cast::<libc::cmsghdr>()).cast::<i32>() };
    // SAFETY: a fresh fd received from the child.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// An unnamed regular file in the directory `dir` (`O_TMPFILE`), close-on-exec.
pub fn tmpfile_in(dir: i32, mode: u32) -> io::Result<std::os::fd::OwnedFd> {
    tmpfile_with(dir, libc::O_RDWR, mode)
}

/// An unnamed regular file in `dir` opened with `flags` (an access mode other than
/// `O_RDONLY`, and status flags) and exactly `mode` (no umask), close-on-exec.
pub fn tmpfile_with(dir: i32, flags: i32, mode: u32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: a static path and integer arguments.
    let fd = with_umask(0, || unsafe { libc::openat(dir, c".".as_ptr(), libc::O_TMPFILE | flags | libc::O_CLOEXEC, mode) });
    let fd = check(fd as libc::c_long)?;
    // SAFETY: a fresh fd from the kernel.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// A thread's CPU affinity mask.
pub struct CpuMask(libc::cpu_set_t);

/// The CPU the calling thread runs on.
pub fn current_cpu() -> Option<usize> {
    // SAFETY: no arguments.
    let c = unsafe { libc::sched_getcpu() };
    usize::try_from(c).ok()
}

/// Thread `tid`'s affinity mask (`0`: the calling thread).
pub fn affinity(tid: i32) -> Option<CpuMask> {
    // SAFETY: a zeroed cpu_set_t of the size passed.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    (unsafe { libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut set) } == 0).then_some(CpuMask(set))
}

impl CpuMask {
    /// The mask of `cpu` alone.
    pub fn only(cpu: usize) -> CpuMask {
        // SAFETY: a zeroed cpu_set_t.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: CPU_SET ignores a cpu past the set's size.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        CpuMask(set)
    }

    pub fn contains(&self, cpu: usize) -> bool {
        // SAFETY: CPU_ISSET is false for a cpu past the set's size.
        unsafe { libc::CPU_ISSET(cpu, &self.0) }
    }
}

/// Sets thread `tid`'s affinity mask (`0`: the calling thread).
pub fn set_affinity(tid: i32, mask: &CpuMask) -> bool {
    // SAFETY: a valid cpu_set_t of the size passed.
    unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mask.0) == 0 }
}

/// The open-file limit the guest is to start with, when the monitor raised its own.
static GUEST_NOFILE: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();

/// Raises the monitor's own open-file limit to its hard limit (a virtual filesystem holds an
/// fd per inode); the guest still starts with the limit it would have had (`guest_nofile`).
pub fn raise_nofile() {
    // SAFETY: a zeroed rlimit for getrlimit to fill.
    let mut r: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 || r.rlim_cur >= r.rlim_max {
        return;
    }
    let _ = GUEST_NOFILE.set((r.rlim_cur, r.rlim_max));
    let raised = libc::rlimit { rlim_cur: r.rlim_max, rlim_max: r.rlim_max };
    // SAFETY: a valid rlimit.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
}

/// The open-file limit (soft, hard) to give the guest back, if the monitor raised its own.
pub fn guest_nofile() -> Option<(u64, u64)> {
    GUEST_NOFILE.get().copied()
}

/// `copy_file_range(src, &off, dst, &off, len)`: bytes copied (0 at the source's end).
pub fn copy_range(src: i32, dst: i32, off: u64, len: usize) -> io::Result<usize> {
    let (mut a, mut b) = (off as i64, off as i64);
    // SAFETY: the offsets are ours; integer arguments otherwise.
    check(unsafe { libc::syscall(libc::SYS_copy_file_range, src, &mut a as *mut i64, dst, &mut b as *mut i64, len, 0u32) }).map(|n| n as usize)
}

/// `lseek(fd, off, whence)` (`SEEK_DATA`/`SEEK_HOLE` too).
pub fn lseek(fd: i32, off: u64, whence: i32) -> io::Result<u64> {
    // SAFETY: integer arguments.
    check(unsafe { libc::lseek(fd, off as i64, whence) } as libc::c_long).map(|r| r as u64)
}

/// `pread(fd, buf, off)` / `pwrite(fd, data, off)`.
pub fn pread(fd: i32, buf: &mut [u8], off: u64) -> io::Result<usize> {
    // SAFETY: the buffer's length is passed with it.
    check(unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), off as i64) } as libc::c_long).map(|n| n as usize)
}

pub fn pwrite(fd: i32, data: &[u8], off: u64) -> io::Result<usize> {
    // SAFETY: the buffer's length is passed with it.
    check(unsafe { libc::pwrite(fd, data.as_ptr().cast(), data.len(), off as i64) } as libc::c_long).map(|n| n as usize)
}
