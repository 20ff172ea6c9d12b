//! The dispatcher: the contract between the core and the adapter.
//!
//! Calling contract (the adapter must follow it; the core never calls out):
//! 1. Build a [`Monitor`] from a list of modules; read [`Monitor::interest`] once and compile
//!    the seccomp filter from it. Calls not in the interest are never seen by the monitor.
//! 2. Report process events as they happen: [`Monitor::on_spawn`] for the first process,
//!    [`Monitor::on_clone`], [`Monitor::on_exec`], [`Monitor::on_exit`].
//! 3. For each trapped call: [`Monitor::on_syscall_enter`] returns a [`Disposition`] that the
//!    adapter carries out. If it is [`Disposition::Pass`] with `inspect`, or a `Rewrite` with
//!    `inspect`, the adapter takes an exit stop and calls [`Monitor::on_syscall_exit`] with
//!    the real result, then applies the returned [`ExitFixup`]. A [`Disposition::Block`]
//!    parks the thread until [`Monitor::poll_event`] yields its [`Event::Complete`].
//! 4. After every call into the monitor, drain [`Monitor::poll_event`] until `None`.
//!
//! `now` is monotonic time since the monitor started, passed in so the core stays pure.
//! Guest errors are data (`Emulate(Err(errno))`), never Rust errors.

use std::collections::{BTreeMap, VecDeque};

use viewos_abi::{Errno, Sysno, Syscall, SyscallArgs};

use crate::hostop::{HostOp, HostTarget, Outcome};
use crate::mem::GuestMem;
use crate::process::{CloneFlags, FsState, Processes, Tid};
use crate::stats::Stats;
use crate::trace;

/// Monotonic time since the monitor started, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Nanos(pub u64);

/// What a module needs from the interception of one syscall. The adapter picks the
/// mechanism (seccomp user notification, ptrace) that provides it; the core does not care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// Decisions are only `Pass` (no inspect), `Emulate` or `Block`.
    Decide,
    /// Decisions may rewrite arguments, inspect the result, or the call changes state the
    /// monitor cannot change on the guest's behalf (exec, chdir): needs a ptrace stop.
    Control,
    /// `Decide` while argument `arg` has no bit of `mask` set, `Control` otherwise (the
    /// filter looks at the flag: e.g. an `O_PATH` open, whose fd the monitor could not
    /// install in the guest, goes to ptrace).
    DecideUnless { arg: u8, mask: u64 },
    /// `Decide` while argument `arg` has no bit of `mask` set; not trapped at all otherwise
    /// (e.g. the read-only opens of a module that serves files only ever read).
    DecideIfClear { arg: u8, mask: u64 },
    /// `Decide` unless the low 32 bits of argument `arg`, masked with `mask`, equal `value`;
    /// not trapped at all then (e.g. a `chmod` to a mode the real file can simply have).
    DecideUnlessEq { arg: u8, mask: u32, value: u32 },
    /// Not trapped at all unless argument `arg` has a bit of `mask` set, then `Control`
    /// (e.g. `accept` with a non-NULL address buffer, whose result the view rewrites).
    ControlIf { arg: u8, mask: u64 },
    /// Always refuse with this errno, in the filter itself: no stop at all.
    Refuse(Errno),
}

/// A data blob the adapter places in per-thread scratch memory that no other guest thread
/// can modify, then points argument `arg` at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scratch {
    pub arg: usize,
    pub data: Vec<u8>,
    /// Offsets in `data` of little-endian u64s that are offsets into `data` itself: the
    /// adapter adds the blob's guest address to each, so a blob can hold pointers into
    /// itself (a `msghdr` and the address it points to).
    pub relocs: Vec<usize>,
}

/// What to do with a trapped call. The adapter carries it out exactly.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Let the real call run unchanged; with `inspect`, report its result to `on_syscall_exit`.
    Pass { inspect: bool },
    /// Run the real call with these arguments, after placing `scratch` blobs; with `nr`,
    /// run that call instead (e.g. `openat2` in place of `open`, for its `resolve` flags).
    Rewrite { nr: Option<Sysno>, args: SyscallArgs, scratch: Vec<Scratch>, inspect: bool },
    /// Do not run the call; the guest sees this result.
    Emulate(Result<u64, Errno>),
    /// Park the thread; the result comes later as [`Event::Complete`] for this thread.
    Block,
    /// Do not run the call: the adapter makes `op` itself, in the monitor, and the guest
    /// sees its result (see [`crate::hostop`]). With `creds`, the calling thread changed its
    /// credentials since it entered the view: the adapter makes the call with that thread's
    /// filesystem uid, gid, groups and effective capabilities, not the monitor's.
    /// With `lexical`, the op's paths were translated without looking at the host (they hold
    /// no `..`, and the view's binds and hidden paths decide them): a symlink on the way
    /// would have changed the answer, so if the op fails with `ELOOP` the adapter must call
    /// [`Monitor::on_syscall_redecide`] and carry out that decision instead; an adapter that
    /// cannot run the op itself (an open turned into a rewrite) must ask at once.
    Perform { op: HostOp, creds: Option<Tid>, lexical: bool },
}

impl Disposition {
    /// Plain pass-through.
    pub const PASS: Disposition = Disposition::Pass { inspect: false };

    /// The decision's kind, for tracing and statistics.
    pub fn kind(&self) -> DecisionKind {
        match self {
            Disposition::Pass { .. } => DecisionKind::Pass,
            Disposition::Rewrite { .. } => DecisionKind::Rewrite,
            Disposition::Emulate(_) => DecisionKind::Emulate,
            Disposition::Block => DecisionKind::Block,
            Disposition::Perform { .. } => DecisionKind::Perform,
        }
    }

    fn wants_exit(&self) -> bool {
        matches!(self, Disposition::Pass { inspect: true } | Disposition::Rewrite { inspect: true, .. })
    }
}

/// The kind of a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DecisionKind {
    Pass,
    Rewrite,
    Emulate,
    Block,
    Perform,
}

impl DecisionKind {
    /// Lower-case name used in traces and statistics.
    pub fn name(self) -> &'static str {
        match self {
            DecisionKind::Pass => "pass",
            DecisionKind::Rewrite => "rewrite",
            DecisionKind::Emulate => "emulate",
            DecisionKind::Block => "block",
            DecisionKind::Perform => "perform",
        }
    }
}

/// What to do with a real call's result at its exit stop.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitFixup {
    Keep,
    SetReturn(Result<u64, Errno>),
    /// Run the same call again, with the same arguments (as the kernel restarts a call): it
    /// is trapped and decided afresh. For a call whose whole result the view took away
    /// (a directory listing batch of hidden names only) but that must not look finished.
    Restart,
}

/// Something the adapter must act on, drained with [`Monitor::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A line for `--trace` (no trailing newline).
    Trace(String),
    /// A blocked call of `tid` finished with this result: resume the thread.
    Complete { tid: Tid, result: Result<u64, Errno> },
}

/// What a module sees of the monitor while deciding.
pub struct Ctx<'a> {
    pub now: Nanos,
    pub tid: Tid,
    pub procs: &'a mut Processes,
    /// The adapter asks again after a `Perform { lexical: true }` met a symlink: decide
    /// without shortcuts.
    pub exact: bool,
}

/// A view module: declares the calls it needs and decides them.
pub trait Module: Send {
    /// Short name, for traces.
    fn name(&self) -> &'static str;

    /// The calls this module wants to see, and what it needs from their interception.
    fn interest(&self) -> Vec<(Sysno, Need)>;

    /// Decides a call. `None` means "not mine": the next module (or plain pass) decides.
    fn enter(&mut self, ctx: &mut Ctx<'_>, call: &Syscall, mem: &mut dyn GuestMem) -> Option<Disposition>;

    /// Sees the result of a call this module asked to inspect.
    fn exit(&mut self, _ctx: &mut Ctx<'_>, _call: &Syscall, _ret: i64, _mem: &mut dyn GuestMem) -> ExitFixup {
        ExitFixup::Keep
    }

    /// Sees every [`Disposition::Perform`] decided (by any module, this one included)
    /// before the adapter makes it, and may change the op, refuse the call, or ask to see
    /// its [`Outcome`] ([`Adjusted::Watch`]; the first module that asks gets it).
    fn adjust(&mut self, _ctx: &mut Ctx<'_>, _call: &Syscall, _op: &mut HostOp) -> Adjusted {
        Adjusted::Untouched
    }

    /// The outcome of an op this module watches: the module may change the result and
    /// the bytes, or return another op to make for the same call (whose outcome it sees
    /// too, unless it installs an fd).
    fn performed(&mut self, _ctx: &mut Ctx<'_>, _call: &Syscall, _op: &HostOp, _outcome: &mut Outcome) -> Option<HostOp> {
        None
    }

    /// `parent` created `child` (a thread or a process).
    fn on_clone(&mut self, _parent: Tid, _child: Tid, _flags: CloneFlags) {}

    /// The host file `from` (`st_dev`, `st_ino`) was copied to `to`, which the view shows
    /// in its place from now on (a copy-on-write view's copy-up).
    fn on_copied(&mut self, _from: (u64, u64), _to: (u64, u64)) {}

    /// The monitor renamed host path `from` to `to` for a guest (`renameat2` `flags`):
    /// a module that knows which paths of the view those are moves the processes' cwds and
    /// roots along ([`Processes::moved`]).
    fn on_renamed(&mut self, _procs: &mut Processes, _from: &HostTarget, _to: &HostTarget, _flags: u32) {}

    /// `former` completed an execve and is now `tgid`.
    fn on_exec(&mut self, _tgid: Tid, _former: Tid) {}

    /// `tid` is gone.
    fn on_exit(&mut self, _tid: Tid) {}

    /// State to keep after the view ends (written by the adapter where the user asked).
    fn save(&self) -> Option<Vec<u8>> {
        None
    }

    /// Blocked calls this module completed since last asked.
    fn poll_complete(&mut self) -> Option<(Tid, Result<u64, Errno>)> {
        None
    }
}

struct Pending {
    call: Syscall,
    module: Option<usize>,
}

/// What a module's [`Module::adjust`] did to an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adjusted {
    Untouched,
    /// Changed or not, the module wants to see the op's outcome.
    Watch,
    /// The call fails with this errno; nothing is made.
    Refuse(Errno),
}

/// The monitor core: process model, modules, statistics and trace.
pub struct Monitor {
    procs: Processes,
    modules: Vec<Box<dyn Module>>,
    pending: BTreeMap<Tid, Pending>,
    /// Performed calls whose outcome a module watches.
    performing: BTreeMap<Tid, Pending>,
    events: VecDeque<Event>,
    stats: Stats,
    tracing: bool,
}

impl Monitor {
    /// A monitor running `modules`, in priority order (the first to claim a call decides it).
    /// A non-empty view also gets the [`crate::modules::Guard`], first, so that no process
    /// can leave it.
    pub fn new(mut modules: Vec<Box<dyn Module>>) -> Monitor {
        if !modules.is_empty() {
            modules.insert(0, Box::new(crate::modules::Guard));
        }
        Monitor {
            procs: Processes::new(),
            modules,
            pending: BTreeMap::new(),
            performing: BTreeMap::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            tracing: false,
        }
    }

    /// Turns `--trace` lines on.
    pub fn set_tracing(&mut self, on: bool) {
        self.tracing = on;
    }

    /// Every call some module needs, merged: `Refuse` wins over `Control`, which wins over
    /// `DecideUnless`, which wins over `Decide` (a stronger need can serve a weaker one; two
    /// different splits make `Control`).
    pub fn interest(&self) -> BTreeMap<Sysno, Need> {
        let mut out: BTreeMap<Sysno, Need> = BTreeMap::new();
        for m in &self.modules {
            for (nr, need) in m.interest() {
                let e = out.entry(nr).or_insert(need);
                *e = match (*e, need) {
                    (r @ Need::Refuse(_), _) | (_, r @ Need::Refuse(_)) => r,
                    (Need::Control, _) | (_, Need::Control) => Need::Control,
                    (a, b) if a == b => a,
                    (Need::Decide, Need::Decide) => Need::Decide,
                    (s @ Need::DecideUnless { .. }, Need::Decide) | (Need::Decide, s @ Need::DecideUnless { .. }) => s,
                    // A need that traps every call serves one that traps some with Decide.
                    (Need::DecideIfClear { .. } | Need::DecideUnlessEq { .. }, s @ (Need::Decide | Need::DecideUnless { .. }))
                    | (s @ (Need::Decide | Need::DecideUnless { .. }), Need::DecideIfClear { .. } | Need::DecideUnlessEq { .. }) => s,
                    // Two different conditions, or a condition and a plain need that it
                    // does not cover: trap always, with the strongest mechanism.
                    _ => Need::Control,
                };
            }
        }
        out
    }

    /// The process model (read-only).
    pub fn processes(&self) -> &Processes {
        &self.procs
    }

    /// The process model, for tests and adapters that set state up directly.
    pub fn processes_mut(&mut self) -> &mut Processes {
        &mut self.procs
    }

    /// Statistics so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The view's first process started.
    pub fn on_spawn(&mut self, tid: Tid, fs: FsState) {
        self.procs.spawn(tid, fs);
    }

    /// The adapter copied host file `from` to `to` for the view (see [`Module::on_copied`]).
    pub fn on_copied(&mut self, from: (u64, u64), to: (u64, u64)) {
        for m in &mut self.modules {
            m.on_copied(from, to);
        }
    }

    /// `parent` created `child`. Returns false if the parent is unknown.
    pub fn on_clone(&mut self, parent: Tid, child: Tid, flags: CloneFlags) -> bool {
        let known = self.procs.clone_thread(parent, child, flags);
        if known {
            for m in &mut self.modules {
                m.on_clone(parent, child, flags);
            }
        }
        known
    }

    /// `former`, a thread of group `tgid`, completed an execve.
    pub fn on_exec(&mut self, tgid: Tid, former: Tid) {
        if former != tgid {
            self.pending.remove(&tgid);
        }
        self.pending.remove(&former);
        self.performing.remove(&former);
        let _released = self.procs.exec(tgid, former);
        for m in &mut self.modules {
            m.on_exec(tgid, former);
        }
    }

    /// `tid` is gone (exited, killed, or reaped).
    pub fn on_exit(&mut self, tid: Tid) {
        self.pending.remove(&tid);
        self.performing.remove(&tid);
        let _released = self.procs.exit(tid);
        for m in &mut self.modules {
            m.on_exit(tid);
        }
    }

    /// The state modules keep after the view ends, by module name.
    pub fn saved_state(&self) -> Vec<(&'static str, Vec<u8>)> {
        self.modules.iter().filter_map(|m| Some((m.name(), m.save()?))).collect()
    }

    /// A [`Disposition::Perform`] op was made: `outcome` is what it gave. Returns the next
    /// op to make for the same call, if a module wants one; otherwise the adapter writes
    /// `outcome.out` where [`HostOp::output`] says and answers with `outcome.result`.
    pub fn on_performed(&mut self, now: Nanos, tid: Tid, op: &HostOp, outcome: &mut Outcome) -> Option<HostOp> {
        let p = self.performing.remove(&tid)?;
        let next = match p.module {
            Some(i) => {
                let mut ctx = Ctx { now, tid, procs: &mut self.procs, exact: false };
                let next = self.modules[i].performed(&mut ctx, &p.call, op, outcome);
                if let Some(n) = &next {
                    if self.tracing {
                        self.events.push_back(Event::Trace(trace::then_line(now, tid, n, self.modules[i].name())));
                    }
                    if !n.installs_fd() {
                        self.performing.insert(tid, p);
                    }
                }
                next
            }
            None => None,
        };
        if next.is_none()
            && outcome.result.is_ok()
            && let HostOp::Rename { from, to, flags } = op
        {
            for m in &mut self.modules {
                m.on_renamed(&mut self.procs, from, to, *flags);
            }
        }
        next
    }

    /// A trapped call of `tid` is about to run.
    pub fn on_syscall_enter(&mut self, now: Nanos, tid: Tid, call: Syscall, mem: &mut impl GuestMem) -> Disposition {
        self.enter(now, tid, call, mem, false)
    }

    /// The same call again, after a `Perform { lexical: true }` for it failed with `ELOOP`:
    /// decided without shortcuts (every path looked up on the host, symlinks followed).
    pub fn on_syscall_redecide(&mut self, now: Nanos, tid: Tid, call: Syscall, mem: &mut impl GuestMem) -> Disposition {
        self.enter(now, tid, call, mem, true)
    }

    fn enter(&mut self, now: Nanos, tid: Tid, call: Syscall, mem: &mut impl GuestMem, exact: bool) -> Disposition {
        let mut ctx = Ctx { now, tid, procs: &mut self.procs, exact };
        let mut decided = None;
        for (i, m) in self.modules.iter_mut().enumerate() {
            if let Some(d) = m.enter(&mut ctx, &call, mem) {
                decided = Some((i, d));
                break;
            }
        }
        let (module, mut d) = match decided {
            Some((i, d)) => (Some(i), d),
            None => (None, Disposition::PASS),
        };
        self.performing.remove(&tid);
        if let Disposition::Perform { op, .. } = &mut d {
            let mut watcher = None;
            let mut refused = None;
            for (i, m) in self.modules.iter_mut().enumerate() {
                match m.adjust(&mut ctx, &call, op) {
                    Adjusted::Untouched => {}
                    Adjusted::Watch => {
                        watcher.get_or_insert(i);
                    }
                    Adjusted::Refuse(e) => {
                        refused = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = refused {
                d = Disposition::Emulate(Err(e));
            } else {
                // Watched or not: a rename's success is every module's news (`on_renamed`).
                self.performing.insert(tid, Pending { call, module: watcher });
            }
        }
        self.stats.record(call.sysno(), d.kind());
        if self.tracing {
            let who = module.map_or("-", |i| self.modules[i].name());
            let line = trace::enter_line(now, tid, &call, mem, who, &d);
            self.events.push_back(Event::Trace(line));
        }
        if d.wants_exit() {
            self.pending.insert(tid, Pending { call, module });
        }
        self.collect_completions();
        d
    }

    /// The real call of `tid` returned `ret` (raw: `-errno` on failure). Only called for
    /// decisions that asked to inspect.
    pub fn on_syscall_exit(&mut self, now: Nanos, tid: Tid, ret: i64, mem: &mut impl GuestMem) -> ExitFixup {
        let Some(p) = self.pending.remove(&tid) else { return ExitFixup::Keep };
        let mut ctx = Ctx { now, tid, procs: &mut self.procs, exact: false };
        let fix = match p.module {
            Some(i) => self.modules[i].exit(&mut ctx, &p.call, ret, mem),
            None => ExitFixup::Keep,
        };
        if self.tracing {
            self.events.push_back(Event::Trace(trace::exit_line(now, tid, &p.call, ret, fix)));
        }
        self.collect_completions();
        fix
    }

    /// The next event for the adapter, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.collect_completions();
        self.events.pop_front()
    }

    fn collect_completions(&mut self) {
        for m in &mut self.modules {
            while let Some((tid, result)) = m.poll_complete() {
                self.events.push_back(Event::Complete { tid, result });
            }
        }
    }
}
