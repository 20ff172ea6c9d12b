//! Test guest for the adapter's tests.
//! `guest race ITERATIONS ALLOWED_PATH DENIED_PATH`: one thread keeps flipping a path
//! buffer between two names while another opens it; prints `ok=N denied=N other=N first=..`.
//! `guest untraced MARKER clone|clone3`: forks a child with `CLONE_UNTRACED` and exits at
//! once; the child, 300 ms later, writes its `TracerPid` line to MARKER.
//! `guest thread-exec PROG ARGS...`: a second thread execs PROG while the first sleeps.
//! `guest calls`: prints the raw results of getppid, getpgrp and getsid(0), and the
//! session id from /proc/self/stat.

use std::sync::atomic::{AtomicBool, Ordering};

static mut BUF: [u8; 64] = [0; 64];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args[1].as_str() {
        "race" => race(&args[2..]),
        "calls" => {
            // SAFETY: plain syscalls without pointers.
            let r = unsafe { [libc::syscall(libc::SYS_getppid), libc::syscall(libc::SYS_getpgrp), libc::syscall(libc::SYS_getsid, 0)] };
            // The session id as the kernel reports it outside any syscall result.
            let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
            let session = stat.rsplit(") ").next().unwrap().split(' ').nth(3).unwrap().to_string();
            println!("getppid={} getpgrp={} getsid={} session={session}", r[0], r[1], r[2]);
        }
        "untraced" => untraced(&args[2], &args[3]),
        "thread-exec" => {
            let argv: Vec<std::ffi::CString> = args[2..].iter().map(|a| std::ffi::CString::new(a.as_str()).unwrap()).collect();
            std::thread::spawn(move || {
                let mut p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
                p.push(std::ptr::null());
                // SAFETY: NULL-terminated argv of valid C strings.
                unsafe { libc::execv(p[0], p.as_ptr()) };
                panic!("exec failed");
            });
            std::thread::sleep(std::time::Duration::from_secs(10));
            panic!("the exec did not replace the process");
        }
        other => panic!("unknown subcommand {other}"),
    }
}

fn race(args: &[String]) {
    let n: usize = args[0].parse().expect("iterations");
    let (a, b) = (args[1].clone(), args[2].clone());
    assert_eq!(a.len(), b.len(), "same length so the flip is a plain overwrite");
    let ptr = std::ptr::addr_of_mut!(BUF) as usize;
    // SAFETY: test program; the race on BUF is the point (volatile byte writes).
    unsafe { std::ptr::copy_nonoverlapping(a.as_ptr(), ptr as *mut u8, a.len()) };
    static STOP: AtomicBool = AtomicBool::new(false);
    let flipper = std::thread::spawn(move || {
        let mut i = 0usize;
        while !STOP.load(Ordering::Relaxed) {
            let src = if i.is_multiple_of(2) { b.as_bytes() } else { a.as_bytes() };
            for (k, &c) in src.iter().enumerate() {
                // SAFETY: within BUF.
                unsafe { std::ptr::write_volatile((ptr as *mut u8).add(k), c) };
            }
            i += 1;
        }
    });
    let (mut ok, mut denied, mut other) = (0, 0, 0);
    let mut first_other = String::new();
    for _ in 0..n {
        // SAFETY: BUF is NUL-terminated (64 bytes, paths shorter).
        let fd = unsafe { libc::open(ptr as *const libc::c_char, libc::O_RDONLY) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EACCES) {
                denied += 1;
            } else {
                other += 1;
                first_other.get_or_insert_with_str(&format!("{e}"));
            }
            continue;
        }
        let mut buf = [0u8; 32];
        // SAFETY: valid fd and buffer.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        unsafe { libc::close(fd) };
        if r > 0 && buf[..r as usize].starts_with(b"ALLOWED") {
            ok += 1;
        } else {
            other += 1;
            first_other.get_or_insert_with_str(&String::from_utf8_lossy(&buf[..r.max(0) as usize]));
        }
    }
    STOP.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    println!("ok={ok} denied={denied} other={other} first={first_other}");
}

trait GetOrInsert {
    fn get_or_insert_with_str(&mut self, s: &str);
}

impl GetOrInsert for String {
    fn get_or_insert_with_str(&mut self, s: &str) {
        if self.is_empty() {
            self.push_str(s);
        }
    }
}

fn untraced(marker: &str, how: &str) {
    const CLONE_UNTRACED: u64 = 0x0080_0000;
    let pid = match how {
        // SAFETY: a fork-like clone (no CLONE_VM): the child gets its own copy of memory.
        "clone" => unsafe { libc::syscall(libc::SYS_clone, CLONE_UNTRACED | libc::SIGCHLD as u64, 0, 0, 0, 0) },
        "clone3" => {
            let mut args = [0u64; 8];
            args[0] = CLONE_UNTRACED;
            args[4] = libc::SIGCHLD as u64;
            // SAFETY: a valid clone_args (v0, 64 bytes); fork-like.
            unsafe { libc::syscall(libc::SYS_clone3, args.as_mut_ptr(), 64usize) }
        }
        other => panic!("unknown clone {other}"),
    };
    assert!(pid >= 0, "clone failed: {}", std::io::Error::last_os_error());
    if pid == 0 {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("TracerPid:")).unwrap().to_string();
        std::fs::write(marker, line).unwrap();
        // SAFETY: leave without running the parent's exit handlers.
        unsafe { libc::_exit(0) };
    }
}
