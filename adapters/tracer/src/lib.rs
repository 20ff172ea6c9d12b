//! The ptrace + seccomp adapter: runs a command under the [`viewos_core::Monitor`] and
//! carries out its decisions on the real processes. This is the only crate that calls
//! ptrace or seccomp.
//!
//! Mechanisms (chosen per call from the core's [`Need`], see ARCHITECTURE.md):
//! - calls nobody needs: seccomp `ALLOW`, never stopped;
//! - `Need::Decide` calls: seccomp user notification with the synchronous wake-up,
//!   answered by a dedicated monitor thread (`notify.rs`), in [`Mechanism::Hybrid`];
//! - `Need::Control` calls (and everything in [`Mechanism::Ptrace`]): `SECCOMP_RET_TRACE`,
//!   decided at the ptrace seccomp stop by the tracer thread (`tracer.rs`);
//! - `Need::Refuse`: `SECCOMP_RET_ERRNO` in the filter itself.
//!
//! Process events (fork, clone, exec, exit, group-stop) always come through ptrace, which
//! also provides `PTRACE_O_EXITKILL`: if the monitor dies, every tracee dies.

pub mod cow;
mod hostfs;
mod mem;
mod notify;
mod perform;
mod scratch;
mod spawn;
mod sys;
mod tracer;
pub mod vfs;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;

use viewos_core::{Errno, Monitor, Need, Sysno, x86_64::nr};
use viewos_seccomp::{Action, Policy, Split, Test};

pub use hostfs::HostFs;
pub use mem::ProcMem;
pub use spawn::SpawnError;

/// How trapped calls reach the monitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// User notification for calls the core can answer alone, ptrace for the rest.
    Hybrid,
    /// Every trapped call stops the tracee under ptrace (`SECCOMP_RET_TRACE`).
    Ptrace,
}

/// Options of one run.
pub struct Options {
    pub mechanism: Mechanism,
    /// Where `--trace` lines go, if tracing.
    pub trace: Option<Box<dyn Write + Send>>,
    /// The command's working directory: the host directory it starts in and the guest path
    /// the view shows for it. `None`: viewos's own, under the same name.
    pub cwd: Option<(Vec<u8>, Vec<u8>)>,
}

/// How the view's first process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Exited(i32),
    Signaled(i32),
}

impl Status {
    /// The exit code a shell would report: the code, or 128+N for death by signal N.
    pub fn shell_code(self) -> i32 {
        match self {
            Status::Exited(c) => c,
            Status::Signaled(s) => 128 + s,
        }
    }
}

/// The result of a run.
pub struct Outcome {
    pub status: Status,
    pub monitor: Monitor,
}

/// Failures of the monitor itself (never of the guest).
#[derive(Debug)]
pub enum RunError {
    Spawn(SpawnError),
    Filter(String),
    Os(&'static str, std::io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(e) => e.fmt(f),
            RunError::Filter(e) => write!(f, "cannot compile the seccomp filter: {e}"),
            RunError::Os(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

/// The filter policy for `interest` under `mechanism`.
///
/// `tgkill` is never routed to the listener: the first process uses it to stop itself
/// right after installing the filter, before the monitor holds the listener.
pub fn policy(interest: &BTreeMap<Sysno, Need>, mechanism: Mechanism) -> Policy {
    let mut p = Policy::allow_all();
    for (&nr, &need) in interest {
        let action = match (need, mechanism) {
            (Need::Refuse(e), _) => Action::Errno(e),
            (Need::Decide, Mechanism::Hybrid) if nr.0 != nr::TGKILL => Action::Notify,
            (Need::DecideUnless { arg, mask }, Mechanism::Hybrid) => {
                p.splits.insert(nr.0, Split { arg, test: Test::AnySet(mask), when_set: Action::Trace });
                Action::Notify
            }
            (Need::DecideIfClear { arg, mask }, m) => {
                p.splits.insert(nr.0, Split { arg, test: Test::AnySet(mask), when_set: Action::Allow });
                if m == Mechanism::Hybrid { Action::Notify } else { Action::Trace }
            }
            (Need::DecideUnlessEq { arg, mask, value }, m) => {
                p.splits.insert(nr.0, Split { arg, test: Test::LowEq { mask, value }, when_set: Action::Allow });
                if m == Mechanism::Hybrid { Action::Notify } else { Action::Trace }
            }
            (Need::ControlIf { arg, mask }, _) => {
                p.splits.insert(nr.0, Split { arg, test: Test::AnySet(mask), when_set: Action::Trace });
                Action::Allow
            }
            _ => Action::Trace,
        };
        p.syscalls.insert(nr.0, action);
    }
    p.i386 = Action::Errno(Errno::ENOSYS);
    p.x32 = Action::Errno(Errno::ENOSYS);
    p
}

/// Runs `argv` under `monitor` until every tracee has exited.
pub fn run(monitor: Monitor, argv: &[OsString], opts: Options) -> Result<Outcome, RunError> {
    let interest = monitor.interest();
    let policy = policy(&interest, opts.mechanism);
    // A view that traps nothing has nothing a 32-bit call could bypass: it runs without any
    // filter, at native speed (a filter, even one the kernel caches, costs every syscall).
    let filter = if interest.is_empty() {
        Vec::new()
    } else {
        viewos_seccomp::to_bytes(&viewos_seccomp::compile(&policy).map_err(|e| RunError::Filter(format!("{e:?}")))?)
    };
    let notify = policy.syscalls.values().any(|a| *a == Action::Notify);
    let path = spawn::resolve(&argv[0]).map_err(RunError::Spawn)?;
    let host_cwd = opts.cwd.as_ref().map(|(h, _)| h.as_slice());
    let child = spawn::spawn(&path, argv, &filter, notify, host_cwd).map_err(RunError::Spawn)?;
    let guest_cwd = opts.cwd.map(|(_, g)| g);
    tracer::Tracer::new(monitor, child.pid, notify, opts.trace, guest_cwd).run()
}

#[cfg(test)]
mod tests {
    use super::*;
    use viewos_core::Abi;
    use viewos_seccomp::{SeccompData, compile, run};

    /// What the compiled filter answers for `openat` with these flags.
    fn verdict(p: &Policy, flags: u64) -> Action {
        let prog = compile(p).expect("compiles");
        let data = SeccompData { nr: nr::OPENAT as i32, arch: Abi::AUDIT_ARCH_X86_64, instruction_pointer: 0, args: [0, 0, flags, 0, 0, 0] };
        let ret = run(&prog, &data).expect("runs");
        assert_eq!(ret, p.decide(&data).ret_value(), "the filter and the policy agree");
        p.decide(&data)
    }

    #[test]
    fn decide_if_clear_lets_calls_with_a_flag_through_unstopped() {
        let mut interest = BTreeMap::new();
        interest.insert(Sysno(nr::OPENAT), Need::DecideIfClear { arg: 2, mask: 0o3 });
        let hybrid = policy(&interest, Mechanism::Hybrid);
        assert_eq!(verdict(&hybrid, 0), Action::Notify);
        assert_eq!(verdict(&hybrid, 0o1), Action::Allow);
        assert_eq!(verdict(&hybrid, 0o2 | 0o100), Action::Allow);
        let ptrace = policy(&interest, Mechanism::Ptrace);
        assert_eq!(verdict(&ptrace, 0o200000), Action::Trace);
        assert_eq!(verdict(&ptrace, 0o1), Action::Allow);
    }
}
