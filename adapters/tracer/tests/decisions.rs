//! The adapter carries out every kind of decision on real processes, under both
//! mechanisms: rewrite (with scratch memory other threads cannot race), emulate through
//! ptrace and through user notification, block and complete, pass with an exit inspection.
//! One viewos run at a time: the tracer waits for any child of this process.

use std::ffi::OsString;
use std::sync::Mutex;

use viewos_core::{Ctx, Disposition, Errno, ExitFixup, GuestMem, Module, Monitor, Need, Scratch, Sysno, Syscall, Tid, x86_64::nr};
use viewos_tracer::{Mechanism, Options, Status};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Rewrites opens of ALLOWED to a real file, refuses DENIED, fakes getppid (ptrace route),
/// fakes getpgrp by blocking and completing (notification route), and adds 1000 to the
/// real result of getsid via an exit inspection.
struct TestModule {
    /// Paths under this prefix are decided: ALLOWED is rewritten, the rest refused.
    prefix: Vec<u8>,
    allowed: Vec<u8>,
    real: Vec<u8>,
    done: Vec<(Tid, Result<u64, Errno>)>,
}

/// Names in the run's directory. Both exist on the host with secret contents: if the
/// kernel ever read the guest's (racing) buffer instead of the monitor's copy, a secret
/// would show up.
const ALLOWED: &str = "allow";
const DENIED: &str = "deny!";

impl Module for TestModule {
    fn name(&self) -> &'static str {
        "test"
    }
    fn interest(&self) -> Vec<(Sysno, Need)> {
        vec![
            (Sysno(nr::OPENAT), Need::Control),
            (Sysno(nr::OPEN), Need::Control),
            (Sysno(nr::GETPPID), Need::Control),
            (Sysno(nr::GETPGRP), Need::Decide),
            (Sysno(nr::GETSID), Need::Control),
        ]
    }
    fn enter(&mut self, ctx: &mut Ctx<'_>, call: &Syscall, mem: &mut dyn GuestMem) -> Option<Disposition> {
        let (path_arg, addr) = match call {
            Syscall::Openat(o) => (1, o.path()),
            Syscall::Open(o) => (0, o.path()),
            Syscall::Getppid(_) => return Some(Disposition::Emulate(Ok(4242))),
            Syscall::Other(n, _) if n.0 == nr::GETPGRP => {
                self.done.push((ctx.tid, Ok(777)));
                return Some(Disposition::Block);
            }
            Syscall::Other(n, _) if n.0 == nr::GETSID => return Some(Disposition::Pass { inspect: true }),
            _ => return None,
        };
        let path = match mem.read_cstr(addr, 4096) {
            Ok(Some(p)) => p,
            _ => return Some(Disposition::Emulate(Err(Errno::EFAULT))),
        };
        if !path.starts_with(&self.prefix) {
            return None;
        }
        if path != self.allowed {
            // DENIED, or a torn mix of the two names read mid-flip: never let the kernel
            // look at the guest's buffer again.
            return Some(Disposition::Emulate(Err(Errno::EACCES)));
        }
        let mut data = self.real.clone();
        data.push(0);
        Some(Disposition::Rewrite { nr: None, args: call.args(), scratch: vec![Scratch { arg: path_arg, data, relocs: Vec::new() }], inspect: false })
    }
    fn exit(&mut self, _ctx: &mut Ctx<'_>, _call: &Syscall, ret: i64, _mem: &mut dyn GuestMem) -> ExitFixup {
        ExitFixup::SetReturn(Ok(ret as u64 + 1000))
    }
    fn poll_complete(&mut self) -> Option<(Tid, Result<u64, Errno>)> {
        self.done.pop()
    }
}

fn dir(mechanism: Mechanism) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("viewos-decisions-{}-{mechanism:?}", std::process::id()))
}

/// `argv` may name ALLOWED and DENIED as `@allow` / `@deny!`, replaced by full paths.
fn run(mechanism: Mechanism, argv: &[&str]) -> (Status, String) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = dir(mechanism);
    std::fs::create_dir_all(&dir).unwrap();
    let real = dir.join("real");
    std::fs::write(&real, "ALLOWED\n").unwrap();
    std::fs::write(dir.join(ALLOWED), "SECRET-A\n").unwrap();
    std::fs::write(dir.join(DENIED), "SECRET-D\n").unwrap();
    // Outside the decided prefix.
    let out = dir.with_extension("out");
    let module = TestModule {
        prefix: format!("{}/", dir.display()).into(),
        allowed: dir.join(ALLOWED).to_str().unwrap().into(),
        real: real.to_str().unwrap().into(),
        done: Vec::new(),
    };
    let argv: Vec<String> = argv.iter().map(|a| a.replace("@", &format!("{}/", dir.display()))).collect();
    let script = format!("exec >{} 2>&1; {}", out.display(), argv.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" "));
    let argv: Vec<OsString> = ["/bin/sh", "-c", &script].iter().map(OsString::from).collect();
    let outcome = viewos_tracer::run(Monitor::new(vec![Box::new(module)]), &argv, Options { mechanism, cwd: None, trace: std::env::var_os("VIEWOS_TEST_TRACE").map(|_| Box::new(std::io::stderr()) as Box<dyn std::io::Write + Send>) }).unwrap();
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    std::fs::remove_dir_all(&dir).unwrap();
    let _ = std::fs::remove_file(&out);
    (outcome.status, text)
}

fn guest() -> String {
    // Examples are built by `cargo test` next to the test binaries.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    dir.join("examples/guest").to_str().unwrap().to_string()
}

#[test]
fn rewritten_paths_open_the_real_file_and_refusals_are_errnos() {
    for m in [Mechanism::Hybrid, Mechanism::Ptrace] {
        let (st, out) = run(m, &["sh", "-c", &format!("cat @{ALLOWED}; cat @{DENIED}; echo rc=$?")]);
        assert_eq!(st, Status::Exited(0), "{m:?}: {out}");
        assert!(out.starts_with("ALLOWED\n"), "{m:?}: {out}");
        assert!(out.contains("Permission denied") && out.ends_with("rc=1\n"), "{m:?}: {out}");
    }
}

#[test]
fn emulated_blocked_and_inspected_results_reach_the_guest() {
    for m in [Mechanism::Hybrid, Mechanism::Ptrace] {
        let (st, out) = run(m, &[&guest(), "calls"]);
        assert_eq!(st, Status::Exited(0), "{m:?}: {out}");
        assert!(out.contains("getppid=4242 getpgrp=777 "), "{m:?}: {out}");
        let field = |k: &str| -> i64 { out.split_whitespace().find_map(|w| w.strip_prefix(k)).unwrap().trim().parse().unwrap() };
        assert_eq!(field("getsid="), field("session=") + 1000, "{m:?}: {out}");
    }
}

#[test]
fn a_racing_thread_cannot_change_a_rewritten_path() {
    for m in [Mechanism::Hybrid, Mechanism::Ptrace] {
        let (st, out) = run(m, &[&guest(), "race", "3000", &format!("@{ALLOWED}"), &format!("@{DENIED}")]);
        assert_eq!(st, Status::Exited(0), "{m:?}: {out}");
        let field = |k: &str| -> u64 {
            out.split_whitespace().find_map(|w| w.strip_prefix(k)).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{k} in {out}"))
        };
        assert_eq!(field("other="), 0, "{m:?}: a path the monitor did not decide was opened: {out}");
        assert_eq!(field("ok=") + field("denied="), 3000, "{m:?}: {out}");
    }
}

#[test]
fn clone_untraced_cannot_leave_the_view() {
    for m in [Mechanism::Hybrid, Mechanism::Ptrace] {
        for how in ["clone", "clone3"] {
            let marker = std::env::temp_dir().join(format!("viewos-untraced-{}-{m:?}-{how}", std::process::id()));
            let _ = std::fs::remove_file(&marker);
            let (st, out) = run(m, &[&guest(), "untraced", marker.to_str().unwrap(), how]);
            assert_eq!(st, Status::Exited(0), "{m:?} {how}: {out}");
            // viewos returned, so it waited for the child: the child was traced.
            let line = std::fs::read_to_string(&marker).unwrap_or_else(|_| panic!("{m:?} {how}: the child escaped the monitor"));
            let _ = std::fs::remove_file(&marker);
            assert!(line.starts_with("TracerPid:") && line.split_whitespace().nth(1) != Some("0"), "{m:?} {how}: {line}");
        }
    }
}

#[test]
fn a_non_leader_thread_that_execs_keeps_the_view() {
    for m in [Mechanism::Hybrid, Mechanism::Ptrace] {
        // Open ALLOWED first in the old image (its thread gets a scratch page), then have a
        // second thread exec a shell that opens it again: the new image needs a new page.
        let script = format!("cat @{ALLOWED}; exec {} thread-exec /bin/sh -c \"cat @{ALLOWED}; cat @{DENIED}; echo rc=\\$?\"", guest());
        let (st, out) = run(m, &["sh", "-c", &script]);
        assert_eq!(st, Status::Exited(0), "{m:?}: {out}");
        assert!(out.starts_with("ALLOWED\nALLOWED\n") && out.ends_with("rc=1\n"), "{m:?}: {out}");
    }
}
