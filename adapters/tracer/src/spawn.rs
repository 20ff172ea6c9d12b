//! Starting the view's first process: fork, seize, install the filter, hand the listener
//! to the monitor, exec. The sequence is documented in ARCHITECTURE.md ("Start-up").

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::sys;

/// What went wrong before the command could start.
#[derive(Debug)]
pub enum SpawnError {
    /// The command was not found on PATH (exit 127, like a shell).
    NotFound(OsString),
    /// An argument contained a NUL byte.
    Nul,
    /// A kernel call of the monitor failed.
    Os(&'static str, io::Error),
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::NotFound(c) => write!(f, "{}: command not found", c.to_string_lossy()),
            SpawnError::Nul => write!(f, "argument contains a NUL byte"),
            SpawnError::Os(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

/// Finds `cmd` like execvp would: as given if it contains a slash, else on PATH.
pub fn resolve(cmd: &OsStr) -> Result<PathBuf, SpawnError> {
    if cmd.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(cmd));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut first_existing = None;
    for dir in std::env::split_paths(&path) {
        let cand = if dir.as_os_str().is_empty() { Path::new(".").join(cmd) } else { dir.join(cmd) };
        if let Ok(meta) = std::fs::metadata(&cand) {
            use std::os::unix::fs::PermissionsExt;
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(cand);
            }
            first_existing.get_or_insert(cand);
        }
    }
    // Like execvp: a match without execute permission gives EACCES at exec time.
    first_existing.ok_or_else(|| SpawnError::NotFound(cmd.to_owned()))
}

/// The started child.
pub struct Spawned {
    pub pid: i32,
}

/// Ptrace options for every tracee.
pub const OPTIONS: u64 = sys::O_TRACESYSGOOD
    | sys::O_TRACEFORK
    | sys::O_TRACEVFORK
    | sys::O_TRACECLONE
    | sys::O_TRACEEXEC
    | sys::O_TRACESECCOMP
    | sys::O_EXITKILL;

fn cstring(b: &[u8]) -> Result<CString, SpawnError> {
    CString::new(b).map_err(|_| SpawnError::Nul)
}

/// Forks the command under ptrace with `filter` (compiled BPF, `struct sock_filter` bytes;
/// empty for a view that traps nothing: then no filter and no `no_new_privs` at all, so
/// the command runs exactly as it would natively).
/// With `listener`, the child installs the filter with a user-notification listener and
/// stops itself with SIGSTOP right after, so the monitor can take the listener with
/// `pidfd_getfd` (see `take_listener`). The child runs only async-signal-safe code on
/// buffers prepared before the fork, so the monitor may already have threads.
pub fn spawn(path: &Path, argv: &[OsString], filter: &[u8], listener: bool, cwd: Option<&[u8]>) -> Result<Spawned, SpawnError> {
    let c_path = cstring(path.as_os_str().as_bytes())?;
    let c_cwd = cwd.map(cstring).transpose()?;
    let c_argv: Vec<CString> = argv.iter().map(|a| cstring(a.as_bytes())).collect::<Result<_, _>>()?;
    let mut p_argv: Vec<*const libc::c_char> = c_argv.iter().map(|a| a.as_ptr()).collect();
    p_argv.push(std::ptr::null());
    let not_found = format!("viewos: {}: ", path.display()).into_bytes();
    let prog = libc::sock_fprog { len: (filter.len() / 8) as u16, filter: filter.as_ptr() as *mut libc::sock_filter };
    // A signal that interrupts a notified call after the monitor took it would make the
    // guest restart it: a mkdir or rename the monitor already made would then fail (EEXIST,
    // ENOENT), a chown be recorded twice. With WAIT_KILLABLE_RECV the guest waits for the
    // answer (SIGKILL still ends it); kernels before 5.19 refuse the flag and go without.
    let flags = if listener { sys::FILTER_FLAG_NEW_LISTENER | sys::FILTER_FLAG_WAIT_KILLABLE_RECV } else { 0 };

    let mut go = [0i32; 2];
    // SAFETY: `go` is a valid two-int array.
    if unsafe { libc::pipe2(go.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SpawnError::Os("pipe", io::Error::last_os_error()));
    }
    // SAFETY: plain getpid.
    let parent = unsafe { libc::getpid() };
    let nofile = sys::guest_nofile().map(|(soft, hard)| libc::rlimit { rlim_cur: soft, rlim_max: hard });
    // SAFETY: the child only makes raw system calls on the buffers prepared above (no
    // allocation, no locks) and ends in execve or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SpawnError::Os("fork", io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: the child; every pointer below was prepared before the fork.
        unsafe {
            child(&Plan { parent, go, prog: &prog, flags, cwd: c_cwd.as_deref(), path: &c_path, argv: &p_argv, prefix: &not_found, nofile })
        }
    }
    // SAFETY: closing our copy of the read end.
    unsafe { libc::close(go[0]) };
    let seized = sys::seize(pid, OPTIONS);
    // Release the child whether or not the seize worked: without it the child never
    // installs its filter (it exits on EOF).
    if seized.is_ok() {
        // SAFETY: one byte from a valid buffer.
        unsafe { libc::write(go[1], b"g".as_ptr().cast(), 1) };
    }
    // SAFETY: closing the write end.
    unsafe { libc::close(go[1]) };
    if let Err(e) = seized {
        // SAFETY: reap the child, which exits on EOF.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        return Err(SpawnError::Os("PTRACE_SEIZE", e));
    }
    Ok(Spawned { pid })
}

/// Everything the child needs, prepared before the fork.
struct Plan<'a> {
    parent: i32,
    go: [i32; 2],
    prog: &'a libc::sock_fprog,
    flags: libc::c_ulong,
    cwd: Option<&'a std::ffi::CStr>,
    path: &'a CString,
    argv: &'a [*const libc::c_char],
    /// "viewos: PATH: ", for exec failures.
    prefix: &'a [u8],
    /// The open-file limit to start the guest with (the monitor raised its own).
    nofile: Option<libc::rlimit>,
}

unsafe fn child(plan: &Plan<'_>) -> ! {
    let Plan { parent, go, prog, flags, cwd, path, argv, prefix, nofile } = *plan;
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(125);
        }
        libc::close(go[1]);
        let mut b = 0u8;
        if libc::read(go[0], (&mut b as *mut u8).cast(), 1) != 1 {
            libc::_exit(125);
        }
        libc::close(go[0]);
        // Taken now: once the filter is in, these very calls may be routed to a listener
        // the monitor does not hold yet.
        let (me, my_tid) = (libc::getpid(), libc::gettid());
        if let Some(dir) = cwd
            && libc::chdir(dir.as_ptr()) != 0
        {
            let msg = b"viewos: cannot enter the working directory\n";
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(125);
        }
        // Seized: the monitor's EXITKILL now covers us; do not leave PDEATHSIG to the guest.
        libc::prctl(libc::PR_SET_PDEATHSIG, 0);
        if prog.len > 0 && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            libc::_exit(125);
        }
        let mut fd = if prog.len > 0 {
            libc::syscall(libc::SYS_seccomp, sys::SECCOMP_SET_MODE_FILTER, flags, prog as *const libc::sock_fprog)
        } else {
            0
        };
        if fd < 0 && *libc::__errno_location() == libc::EINVAL && flags & sys::FILTER_FLAG_WAIT_KILLABLE_RECV != 0 {
            let flags = flags & !sys::FILTER_FLAG_WAIT_KILLABLE_RECV;
            fd = libc::syscall(libc::SYS_seccomp, sys::SECCOMP_SET_MODE_FILTER, flags, prog as *const libc::sock_fprog);
        }
        if fd < 0 {
            let msg = b"viewos: cannot install the seccomp filter\n";
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(125);
        }
        if flags & sys::FILTER_FLAG_NEW_LISTENER != 0 {
            // The monitor takes the listener while we are stopped (tgkill is never routed
            // to the listener, see `route`), then we drop our copy before exec.
            libc::syscall(libc::SYS_tgkill, me, my_tid, libc::SIGSTOP);
            libc::close(fd as i32);
        }
        unsafe extern "C" {
            static environ: *const *const libc::c_char;
        }
        if let Some(r) = nofile {
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
        libc::execve(path.as_ptr(), argv.as_ptr(), environ);
        let err = *libc::__errno_location();
        libc::write(2, prefix.as_ptr().cast(), prefix.len());
        // strerror may allocate; name the usual causes ourselves.
        let msg: &[u8] = match err {
            libc::ENOENT => b"No such file or directory\n",
            libc::EACCES => b"Permission denied\n",
            libc::ENOEXEC => b"Exec format error\n",
            libc::ENOTDIR => b"Not a directory\n",
            libc::E2BIG => b"Argument list too long\n",
            libc::ENOMEM => b"Cannot allocate memory\n",
            _ => b"cannot execute\n",
        };
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::_exit(if err == libc::ENOENT { 127 } else { 126 });
    }
}

/// Takes the seccomp listener out of the stopped child (fd table scan + `pidfd_getfd`).
pub fn take_listener(pid: i32) -> io::Result<i32> {
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let entry = entry?;
        if std::fs::read_link(entry.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:seccomp notify") {
            let n: i32 = entry.file_name().to_string_lossy().parse().map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
            return sys::guest_fd(pid, n).map(std::os::fd::IntoRawFd::into_raw_fd);
        }
    }
    Err(io::Error::new(io::ErrorKind::NotFound, "no seccomp listener in the child"))
}
