//! Job control under a real terminal: Ctrl-Z in an interactive bash running inside a view,
//! and Ctrl-Z / fg / Ctrl-C on viewos itself from an outer interactive bash.

mod common;

use std::ffi::CString;
use std::time::{Duration, Instant};

use common::*;

struct Pty {
    master: i32,
    pid: i32,
    seen: String,
}

impl Pty {
    /// Starts `argv` as a session leader with a new pseudo-terminal as its controlling tty.
    fn spawn(user: Option<u32>, argv: &[&str]) -> Pty {
        let mut full: Vec<String> = Vec::new();
        if let Some(uid) = user {
            full.extend(["setpriv".into(), format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into()]);
        }
        full.extend(argv.iter().map(|s| s.to_string()));
        let c: Vec<CString> = full.iter().map(|a| CString::new(a.as_str()).unwrap()).collect();
        let mut p: Vec<*const libc::c_char> = c.iter().map(|a| a.as_ptr()).collect();
        p.push(std::ptr::null());
        let (mut master, mut slave) = (0, 0);
        // SAFETY: out-pointers are valid; the child only calls async-signal-safe functions.
        unsafe {
            assert_eq!(libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()), 0);
            let pid = libc::fork();
            if pid == 0 {
                libc::setsid();
                libc::ioctl(slave, libc::TIOCSCTTY, 0);
                for fd in 0..3 {
                    libc::dup2(slave, fd);
                }
                libc::close(master);
                libc::close(slave);
                libc::chdir(c"/tmp".as_ptr());
                libc::execvp(p[0], p.as_ptr());
                libc::_exit(127);
            }
            libc::close(slave);
            Pty { master, pid, seen: String::new() }
        }
    }

    fn send(&self, s: &str) {
        // SAFETY: valid buffer.
        unsafe { libc::write(self.master, s.as_ptr().cast(), s.len()) };
    }

    /// Reads until `pat` appears after everything matched so far.
    fn expect(&mut self, pat: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(i) = self.seen.find(pat) {
                self.seen.drain(..i + pat.len());
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {pat:?}; terminal shows: {:?}", self.seen);
            let mut pfd = libc::pollfd { fd: self.master, events: libc::POLLIN, revents: 0 };
            let mut buf = [0u8; 4096];
            // SAFETY: valid pollfd and buffer.
            unsafe {
                if libc::poll(&mut pfd, 1, 200) > 0 {
                    let n = libc::read(self.master, buf.as_mut_ptr().cast(), buf.len());
                    if n > 0 {
                        self.seen.push_str(&String::from_utf8_lossy(&buf[..n as usize]));
                    }
                }
            }
        }
    }

    /// Waits until a process called `name` is in the terminal's foreground process group
    /// and is not stopped, so a control character typed now reaches it.
    fn wait_foreground(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            // SAFETY: plain query on our fd.
            let fg = unsafe { libc::tcgetpgrp(self.master) };
            let running = std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()).any(|e| {
                let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { return false };
                let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { return false };
                let rest: Vec<&str> = stat[close + 2..].split(' ').collect();
                &stat[open + 1..close] == name && rest.get(2) == Some(&fg.to_string().as_str()) && !matches!(rest[0], "T" | "t")
            });
            if running {
                return;
            }
            assert!(Instant::now() < deadline, "{name} never ran in the foreground; terminal shows {:?}", self.seen);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait(self) -> i32 {
        let mut status = 0;
        let t = Instant::now();
        loop {
            // SAFETY: our child.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if r == self.pid {
                break;
            }
            if t.elapsed() > Duration::from_secs(15) {
                // SAFETY: our child.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
                panic!("the terminal session did not end; it showed {:?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: closing our fd.
        unsafe { libc::close(self.master) };
        libc::WEXITSTATUS(status)
    }
}

const BASH: [&str; 4] = ["bash", "--norc", "--noprofile", "-i"];

#[test]
fn ctrl_z_in_an_interactive_bash_inside_a_view() {
    // An empty view (no filter) and a view with a filter and a listener.
    for (u, view) in users().into_iter().flat_map(|u| [(u, None), (u, Some("--hostname=jc"))]) {
        let mut argv = vec![viewos()];
        argv.extend(view);
        argv.push("--");
        argv.extend(BASH);
        let mut t = Pty::spawn(u, &["env", "PS1=P$ ", "TERM=dumb"].iter().chain(argv.iter()).copied().collect::<Vec<_>>());
        t.expect("P$ ");
        t.send("sleep 30\n");
        t.wait_foreground("sleep");
        t.send("\x1a");
        t.expect("Stopped");
        t.expect("P$ ");
        t.send("jobs -l\n");
        t.expect("Stopped");
        t.expect("P$ ");
        // Resume the stopped job in the foreground, then interrupt it.
        t.send("fg\n");
        t.expect("sleep 30");
        t.wait_foreground("sleep");
        t.send("\x03");
        t.expect("P$ ");
        t.send("echo rc=$?\n");
        t.expect("rc=130");
        t.send("exit 5\n");
        assert_eq!(t.wait(), 5, "{u:?} {view:?}");
    }
}

#[test]
fn ctrl_z_fg_and_ctrl_c_on_viewos_from_an_outer_shell() {
    for u in users() {
        let mut t = Pty::spawn(u, &["env", "PS1=O$ ", "TERM=dumb", BASH[0], BASH[1], BASH[2], BASH[3]]);
        t.expect("O$ ");
        t.send(&format!("{} -- sleep 30\n", viewos()));
        t.wait_foreground("sleep");
        t.send("\x1a");
        t.expect("Stopped");
        t.expect("O$ ");
        t.send("fg\n");
        t.expect("sleep 30");
        t.wait_foreground("sleep");
        t.send("\x03");
        t.expect("O$ ");
        t.send("echo rc=$?\n");
        t.expect("rc=130");
        t.send("exit 0\n");
        assert_eq!(t.wait(), 0, "{u:?}");
    }
}
