//! Runs one command line to completion with a deadline and captures what it
//! did: exit status, stdout, stderr. Used for both native and viewos runs, so
//! both get the same environment, working directory and stdin.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The environment every run gets, so outcomes do not depend on the caller's.
pub const ENV: &[(&str, &str)] = &[("PATH", "/usr/local/bin:/usr/bin:/bin"), ("LC_ALL", "C")];

/// A command line and what it runs with.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub argv: Vec<OsString>,
    pub cwd: PathBuf,
    /// Bytes fed to stdin, then EOF; `None` means /dev/null.
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// How the process ended, as a parent sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    Signaled(i32),
    /// Killed by the harness after the deadline.
    TimedOut,
}

/// What one run did.
#[derive(Clone, Debug)]
pub struct Finished {
    pub status: Status,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// A leftover process kept stdout or stderr open after the exit.
    pub pipes_held: bool,
}

/// How long output pipes may stay open after the process exited.
const PIPE_GRACE: Duration = Duration::from_secs(3);

/// Runs `inv` in its own process group (so a timeout can kill all of it).
pub fn run(inv: &Invocation) -> Finished {
    let (program, args) = inv.argv.split_first().expect("empty argv");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(&inv.cwd)
        .env_clear()
        .envs(ENV.iter().copied())
        .stdin(if inv.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // Descriptors the test process inherited must not reach the command: they
    // would show up in its /proc/self/fd. CLOEXEC rather than close, because
    // std reports exec failures through a CLOEXEC pipe of its own.
    // PDEATHSIG: a killed test run must not leave a hung viewos behind (the
    // kernel resets it for the uid 65534 runs, whose credentials change).
    unsafe {
        cmd.pre_exec(|| {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            );
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", program.to_string_lossy()));
    if let (Some(bytes), Some(mut pipe)) = (inv.stdin.clone(), child.stdin.take()) {
        // A reader that exits early is fine: the write error is the reader's business.
        std::thread::spawn(move || pipe.write_all(&bytes));
    }
    let stdout = Collector::start(child.stdout.take().expect("piped stdout"));
    let stderr = Collector::start(child.stderr.take().expect("piped stderr"));

    let deadline = Instant::now() + inv.timeout;
    let status = loop {
        match child.try_wait().expect("try_wait") {
            Some(status) => match (status.code(), status.signal()) {
                (Some(code), _) => break Status::Exited(code),
                (None, Some(sig)) => break Status::Signaled(sig),
                (None, None) => unreachable!("a reaped child either exited or was signaled"),
            },
            None if Instant::now() > deadline => {
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                break Status::TimedOut;
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    let grace = Instant::now() + PIPE_GRACE;
    let (stdout, out_held) = stdout.finish(grace);
    let (stderr, err_held) = stderr.finish(grace);
    Finished {
        status,
        stdout,
        stderr,
        pipes_held: out_held || err_held,
    }
}

/// Reads a pipe on its own thread so a full pipe never blocks the child.
struct Collector {
    bytes: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Collector {
    fn start(mut pipe: impl Read + Send + 'static) -> Collector {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let sink = Arc::clone(&bytes);
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock()
                    .expect("collector lock")
                    .extend_from_slice(&buf[..n]);
            }
            let _ = tx.send(());
        });
        Collector { bytes, done }
    }

    /// The bytes read so far, and whether the pipe was still open at `deadline`.
    fn finish(self, deadline: Instant) -> (Vec<u8>, bool) {
        let wait = deadline.saturating_duration_since(Instant::now());
        let held = self.done.recv_timeout(wait).is_err();
        let bytes = self.bytes.lock().expect("collector lock").clone();
        (bytes, held)
    }
}
