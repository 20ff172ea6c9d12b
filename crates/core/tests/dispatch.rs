//! The dispatcher contract, driven with a scripted module and fake guest memory.

use viewos_core::*;
use viewos_abi::x86_64::nr;

/// A module that rewrites `openat` paths starting with /virtual to /real, inspects `read`,
/// blocks `pause` until told, and refuses io_uring in the filter.
#[derive(Default)]
struct Scripted {
    completions: Vec<(Tid, Result<u64, Errno>)>,
}

impl Module for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }
    fn interest(&self) -> Vec<(Sysno, Need)> {
        vec![
            (Sysno(nr::OPENAT), Need::Control),
            (Sysno(nr::READ), Need::Control),
            (Sysno(nr::PAUSE), Need::Decide),
            (Sysno(nr::IO_URING_SETUP), Need::Refuse(Errno::ENOSYS)),
        ]
    }
    fn enter(&mut self, _ctx: &mut Ctx<'_>, call: &Syscall, mem: &mut dyn GuestMem) -> Option<Disposition> {
        match call {
            Syscall::Openat(o) => {
                let path = match mem.read_cstr(o.path(), 4096) {
                    Ok(Some(p)) => p,
                    Ok(None) => return Some(Disposition::Emulate(Err(Errno::ENAMETOOLONG))),
                    Err(f) => return Some(Disposition::Emulate(Err(f.into()))),
                };
                let rest = path.strip_prefix(b"/virtual")?;
                let mut new = b"/real".to_vec();
                new.extend_from_slice(rest);
                new.push(0);
                Some(Disposition::Rewrite { nr: None, args: o.raw(), scratch: vec![Scratch { arg: 1, data: new, relocs: Vec::new() }], inspect: false })
            }
            Syscall::Read(_) => Some(Disposition::Pass { inspect: true }),
            Syscall::Other(n, _) if n.0 == nr::PAUSE => Some(Disposition::Block),
            _ => None,
        }
    }
    fn exit(&mut self, ctx: &mut Ctx<'_>, _call: &Syscall, ret: i64, _mem: &mut dyn GuestMem) -> ExitFixup {
        // Pretend reads return one byte less, and complete any blocked thread.
        self.completions.push((Tid(ctx.tid.0 + 1), Ok(7)));
        ExitFixup::SetReturn(Ok((ret - 1) as u64))
    }
    fn poll_complete(&mut self) -> Option<(Tid, Result<u64, Errno>)> {
        self.completions.pop()
    }
}

fn monitor() -> (Monitor, FakeMem) {
    let mut m = Monitor::new(vec![Box::new(Scripted::default()), Box::new(modules::Intercept::new(vec![Sysno(nr::OPENAT), Sysno(nr::GETPID)], false))]);
    m.on_spawn(Tid(10), FsState::default());
    m.set_tracing(true);
    let mut mem = FakeMem::new();
    mem.map_cstr(0x1000, b"/virtual/file").map_cstr(0x2000, b"/etc/passwd");
    (m, mem)
}

fn raw(n: u32, a: [u64; 6]) -> Syscall {
    Syscall::from_raw(Sysno(n), SyscallArgs(a))
}

#[test]
fn interest_merges_needs() {
    let (m, _) = monitor();
    let i = m.interest();
    assert_eq!(i[&Sysno(nr::OPENAT)], Need::Control, "Control wins over Decide");
    assert_eq!(i[&Sysno(nr::GETPID)], Need::Decide);
    assert_eq!(i[&Sysno(nr::IO_URING_SETUP)], Need::Refuse(Errno::ENOSYS));
    assert!(!i.contains_key(&Sysno(nr::WRITE)));
}

#[test]
fn first_module_that_claims_decides_and_others_fall_through() {
    let (mut m, mut mem) = monitor();
    let d = m.on_syscall_enter(Nanos(0), Tid(10), raw(nr::OPENAT, [(-100i64) as u64, 0x1000, 0, 0, 0, 0]), &mut mem);
    match d {
        Disposition::Rewrite { scratch, .. } => assert_eq!(scratch[0].data, b"/real/file\0"),
        other => panic!("{other:?}"),
    }
    // Not under /virtual: Scripted declines, Intercept passes.
    let d = m.on_syscall_enter(Nanos(1), Tid(10), raw(nr::OPENAT, [(-100i64) as u64, 0x2000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::PASS);
    assert_eq!(m.stats().count(Sysno(nr::OPENAT), DecisionKind::Rewrite), 1);
    assert_eq!(m.stats().count(Sysno(nr::OPENAT), DecisionKind::Pass), 1);
    let lines: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
    assert!(matches!(&lines[0], Event::Trace(l) if l.contains("\"/virtual/file\"") && l.contains("rewrite") && l.ends_with("[scripted]")), "{lines:?}");
    assert!(matches!(&lines[1], Event::Trace(l) if l.ends_with("-> pass [intercept]")), "{lines:?}");
}

#[test]
fn inspect_gets_an_exit_and_blocked_calls_complete_by_event() {
    let (mut m, mut mem) = monitor();
    assert_eq!(m.on_syscall_enter(Nanos(0), Tid(11), raw(nr::PAUSE, [0; 6]), &mut mem), Disposition::Block);
    assert_eq!(m.on_syscall_enter(Nanos(0), Tid(10), raw(nr::READ, [3, 0x1000, 8, 0, 0, 0]), &mut mem), Disposition::Pass { inspect: true });
    assert_eq!(m.on_syscall_exit(Nanos(1), Tid(10), 8, &mut mem), ExitFixup::SetReturn(Ok(7)));
    // No pending exit for a thread that did not ask: Keep.
    assert_eq!(m.on_syscall_exit(Nanos(1), Tid(10), 8, &mut mem), ExitFixup::Keep);
    let events: Vec<_> = std::iter::from_fn(|| m.poll_event()).collect();
    assert!(events.contains(&Event::Complete { tid: Tid(11), result: Ok(7) }), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::Trace(l) if l.contains("read(...) = 8 -> 7"))), "{events:?}");
}

#[test]
fn bad_guest_pointers_are_guest_errors() {
    let (mut m, mut mem) = monitor();
    let d = m.on_syscall_enter(Nanos(0), Tid(10), raw(nr::OPENAT, [0, 0xdead_0000, 0, 0, 0, 0]), &mut mem);
    assert_eq!(d, Disposition::Emulate(Err(Errno::EFAULT)));
}

#[test]
fn exit_and_exec_drop_pending_state() {
    let (mut m, mut mem) = monitor();
    m.on_clone(Tid(10), Tid(12), CloneFlags(CloneFlags::THREAD | CloneFlags::VM | CloneFlags::FILES | CloneFlags::FS));
    assert_eq!(m.on_syscall_enter(Nanos(0), Tid(12), raw(nr::READ, [0; 6]), &mut mem), Disposition::Pass { inspect: true });
    m.on_exec(Tid(10), Tid(12));
    assert_eq!(m.on_syscall_exit(Nanos(1), Tid(12), 5, &mut mem), ExitFixup::Keep);
    assert_eq!(m.processes().thread_count(), 1);
    m.on_exit(Tid(10));
    assert_eq!(m.processes().thread_count(), 0);
}

/// A module with one need per call, for the merge rules.
struct Needs(Vec<(Sysno, Need)>);

impl Module for Needs {
    fn name(&self) -> &'static str {
        "needs"
    }
    fn interest(&self) -> Vec<(Sysno, Need)> {
        self.0.clone()
    }
    fn enter(&mut self, _ctx: &mut Ctx<'_>, _call: &Syscall, _mem: &mut dyn GuestMem) -> Option<Disposition> {
        None
    }
}

#[test]
fn decide_if_clear_merges_with_what_traps_every_call() {
    let clear = Need::DecideIfClear { arg: 2, mask: 0o3 };
    let unless = Need::DecideUnless { arg: 2, mask: 0o10000000 };
    let m = Monitor::new(vec![
        Box::new(Needs(vec![(Sysno(nr::OPENAT), clear), (Sysno(nr::OPEN), clear), (Sysno(nr::READ), clear), (Sysno(nr::STAT), clear)])),
        Box::new(Needs(vec![(Sysno(nr::OPENAT), unless), (Sysno(nr::OPEN), Need::Decide), (Sysno(nr::READ), Need::ControlIf { arg: 0, mask: 1 })])),
    ]);
    let i = m.interest();
    // A need that traps every call (with Decide where it may) serves one that traps some.
    assert_eq!(i[&Sysno(nr::OPENAT)], unless);
    assert_eq!(i[&Sysno(nr::OPEN)], Need::Decide);
    // Two conditions that do not cover each other: every call, with ptrace.
    assert_eq!(i[&Sysno(nr::READ)], Need::Control);
    // Alone, it stays as it is.
    assert_eq!(i[&Sysno(nr::STAT)], clear);
}

#[test]
fn decide_unless_eq_merges_like_decide_if_clear() {
    let plain = Need::DecideUnlessEq { arg: 1, mask: 0o7600, value: 0o600 };
    let clear = Need::DecideIfClear { arg: 1, mask: 0o3 };
    let m = Monitor::new(vec![
        Box::new(Needs(vec![(Sysno(nr::CHMOD), plain), (Sysno(nr::FCHMOD), plain), (Sysno(nr::FCHMODAT), plain), (Sysno(nr::OPEN), plain)])),
        Box::new(Needs(vec![(Sysno(nr::CHMOD), Need::Decide), (Sysno(nr::FCHMODAT), plain), (Sysno(nr::OPEN), clear)])),
    ]);
    let i = m.interest();
    // A module that needs every chmod (a path view translating its path) gets every one.
    assert_eq!(i[&Sysno(nr::CHMOD)], Need::Decide);
    assert_eq!(i[&Sysno(nr::FCHMOD)], plain);
    assert_eq!(i[&Sysno(nr::FCHMODAT)], plain);
    assert_eq!(i[&Sysno(nr::OPEN)], Need::Control);
}
