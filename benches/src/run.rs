//! Spawns one measured process and times it from spawn to exit.
//!
//! The process gets its own process group so a timeout can kill a monitor together with
//! everything it runs. The exit is observed with `waitid(WNOWAIT)` first, so the clock
//! stops at the exit itself and the watchdog can never signal a reused pid.

use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// What to do with the process's stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdout {
    /// `/dev/null`.
    Null,
    /// A pipe the harness drains, counting bytes (like `| wc -c`).
    Count,
    /// A pipe the harness drains and keeps (small outputs only).
    Capture,
}

/// What one run produced.
#[derive(Debug)]
pub struct Outcome {
    pub elapsed: Duration,
    pub status: ExitStatus,
    pub timed_out: bool,
    /// Bytes written to stdout (0 for [`Stdout::Null`]).
    pub stdout_bytes: u64,
    /// The captured stdout, for [`Stdout::Capture`].
    pub stdout: String,
    /// The last part of stderr, for error reports.
    pub stderr_tail: String,
}

impl Outcome {
    /// Success: exited 0 in time.
    pub fn ok(&self) -> bool {
        self.status.success() && !self.timed_out
    }

    /// One line explaining a failure.
    pub fn failure(&self) -> String {
        let why = if self.timed_out { "timed out (killed)".to_string() } else { self.status.to_string() };
        let err = self.stderr_tail.trim();
        if err.is_empty() { why } else { format!("{why}; stderr: {}", err.replace('\n', " ⏎ ")) }
    }
}

const CAPTURE_MAX: usize = 64 * 1024;
const STDERR_TAIL: usize = 600;

/// Runs `cmd` to completion (or until `timeout`, then kills its process group).
pub fn run(mut cmd: Command, stdout: Stdout, timeout: Duration) -> io::Result<Outcome> {
    cmd.stdin(Stdio::null()).stderr(Stdio::piped()).process_group(0);
    cmd.stdout(if stdout == Stdout::Null { Stdio::null() } else { Stdio::piped() });
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;

    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = thread::spawn(move || {
        if done_rx.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
            // SAFETY: plain kill(2). The leader is not reaped yet (WNOWAIT below), so the
            // group id cannot have been reused.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            return true;
        }
        false
    });
    let mut err_pipe = child.stderr.take().expect("piped");
    let stderr = thread::spawn(move || {
        let mut all = Vec::new();
        let _ = err_pipe.read_to_end(&mut all);
        let from = all.len().saturating_sub(STDERR_TAIL);
        String::from_utf8_lossy(&all[from..]).into_owned()
    });

    let mut stdout_bytes = 0u64;
    let mut kept = Vec::new();
    if let Some(mut out) = child.stdout.take() {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match out.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    stdout_bytes += n as u64;
                    if stdout == Stdout::Capture && kept.len() < CAPTURE_MAX {
                        kept.extend_from_slice(&buf[..n.min(CAPTURE_MAX - kept.len())]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Still wait for the child below; a broken stdout shows in its status.
                Err(_) => break,
            }
        }
    }
    wait_exit_nowait(pid)?;
    let elapsed = start.elapsed();
    let _ = done_tx.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    let status = child.wait()?;
    let stderr_tail = stderr.join().unwrap_or_default();
    Ok(Outcome {
        elapsed,
        status,
        timed_out,
        stdout_bytes,
        stdout: String::from_utf8_lossy(&kept).into_owned(),
        stderr_tail,
    })
}

/// Blocks until `pid` has exited, leaving it unreaped.
fn wait_exit_nowait(pid: libc::pid_t) -> io::Result<()> {
    loop {
        // SAFETY: siginfo is plain data the kernel fills in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointer; WNOWAIT leaves the child for Child::wait to reap.
        let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
