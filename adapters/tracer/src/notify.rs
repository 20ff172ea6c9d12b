//! The user-notification thread: answers `Need::Decide` calls without any ptrace stop.
//! One thread blocks in `SECCOMP_IOCTL_NOTIF_RECV` with the synchronous wake-up flag set,
//! so the guest and the monitor hand the CPU to each other like a function call.

use std::sync::Arc;

use std::os::fd::{AsRawFd, OwnedFd};

use viewos_core::{Abi, Disposition, Errno, HostOp, Sysno, Syscall, SyscallArgs, Tid};

use crate::mem::ProcMem;
use crate::perform::{self, Opened};
use crate::sys;
use crate::tracer::Shared;

/// The kernel's "interrupted: restart if the handler allows" (never seen by a program: the
/// signal it answers for is pending, and its delivery turns it into a restart or EINTR).
const ERESTARTSYS: u16 = 512;

/// Answer for a notification: a result, or "run the real call".
pub fn respond(fd: i32, id: u64, result: Option<Result<u64, Errno>>) {
    let resp = match result {
        None => sys::NotifResp { id, val: 0, error: 0, flags: sys::USER_NOTIF_FLAG_CONTINUE },
        Some(Ok(v)) => sys::NotifResp { id, val: v as i64, error: 0, flags: 0 },
        Some(Err(e)) => sys::NotifResp { id, val: 0, error: -i32::from(e.0), flags: 0 },
    };
    // ENOENT: the thread was interrupted by a signal or died meanwhile; the kernel restarts
    // or abandons the call itself, so there is nothing left to do.
    let _ = sys::notif_send(fd, &resp);
}

/// Serves notifications until the listener hangs up (no process uses the filter any more).
pub fn serve(shared: Arc<Shared>, fd: i32) {
    if let Err(e) = sys::notif_set_sync_wakeup(fd) {
        // Linux < 6.6: still correct, but each notified call costs a cross-CPU wake-up.
        eprintln!("viewos: note: no synchronous wake-up for seccomp notifications ({e}); intercepted calls will be slower");
    }
    loop {
        let n = match sys::notif_recv(fd) {
            Ok(n) => n,
            // No process uses the filter any more: RECV then fails at once, forever, and the
            // fd reports HUP.
            Err(_) if sys::hung_up(fd) => return,
            // ENOENT: the notifying thread died before we got to it.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR) | Some(libc::ENOENT)) => continue,
            // Anything else is unexpected; leaving would hang every guest in a notified call,
            // so keep serving until the listener hangs up.
            Err(e) => {
                eprintln!("viewos: seccomp notification: {e}");
                std::thread::sleep(std::time::Duration::from_millis(1));
                continue;
            }
        };
        let tid = n.pid as i32;
        if Abi::classify(n.data.arch, n.data.nr as u32 as u64) != Some(Abi::X86_64) {
            // The filter never notifies other ABIs; refuse rather than guess.
            respond(fd, n.id, Some(Err(Errno::ENOSYS)));
            continue;
        }
        let call = Syscall::from_raw(Sysno(n.data.nr as u32), SyscallArgs(n.data.args));
        let mut mem = ProcMem::new(tid);
        let d = decided(&shared, tid, n.id, |mon| mon.on_syscall_enter(shared.now(), Tid(tid), call, &mut mem));
        // The memory we read may belong to a recycled pid if the thread died meanwhile (a
        // received call cannot be interrupted otherwise: WAIT_KILLABLE_RECV), and so may
        // what a host op would reach through the tid. An answer made from the registers
        // alone needs no check: to a dead thread it goes nowhere.
        let answer_only = matches!(d, Disposition::Pass { inspect: false } | Disposition::Emulate(_));
        if (mem.has_read() || !answer_only) && !sys::notif_id_valid(fd, n.id) {
            if matches!(d, Disposition::Block) {
                shared.notif_parked.lock().expect("parked lock").remove(&tid);
            }
            continue;
        }
        // Carried out without the monitor's lock (a long host call, a large copy-up, holds
        // up no other thread's decisions, nor the tracer's process events).
        carry(&shared, fd, n.id, call, d, &mut mem);
    }
}

/// The monitor's decision (`decide`) on notification `id` of thread `tid`, made under its
/// lock; a call it parks is parked before the lock goes, so that no completion another
/// thread queues for it meanwhile can miss it.
fn decided(shared: &Shared, tid: i32, id: u64, decide: impl FnOnce(&mut viewos_core::Monitor) -> Disposition) -> Disposition {
    let mut mon = shared.monitor.lock().expect("monitor lock");
    let d = decide(&mut mon);
    if matches!(d, Disposition::Block) {
        shared.notif_parked.lock().expect("parked lock").insert(tid, id);
    }
    shared.drain(&mut mon);
    d
}

/// Carries out the decision `d` on notified call `call` (id `id`).
fn carry(shared: &Shared, fd: i32, id: u64, call: Syscall, d: Disposition, mem: &mut ProcMem) {
    let tid = mem.tid();
    match d {
        Disposition::Pass { inspect: false } => respond(fd, id, None),
        Disposition::Emulate(r) => respond(fd, id, Some(r)),
        // Parked by `decided`, under the monitor's lock.
        Disposition::Block => {}
        Disposition::Perform { op, creds, lexical } => {
            let creds = creds.map(|t| t.0);
            let done = match perform::AsGuest::new(creds) {
                Err(e) => Some(Err(e)),
                // The filter sends O_PATH opens to ptrace: ADDFD cannot install them.
                Ok(_) if matches!(op, HostOp::Open { flags, .. } if flags & libc::O_PATH as u64 != 0) => {
                    eprintln!("viewos: internal error: an O_PATH open was notified");
                    Some(Err(Errno::ENOSYS))
                }
                Ok(_as_guest) => match &op {
                    HostOp::Open { .. } => {
                        let r = perform::open(&op);
                        perform::report_copies(shared);
                        match r {
                            Err(Errno::ELOOP) if lexical => Some(Err(Errno::ELOOP)),
                            r => {
                                open(fd, id, tid, r, op.cloexec(), creds);
                                None
                            }
                        }
                    }
                    _ => match perform::run(shared, tid, op, lexical, mem) {
                        perform::Ran::Done(r) => Some(r),
                        perform::Ran::Redecide => Some(Err(Errno::ELOOP)),
                        perform::Ran::Install(last) => {
                            open(fd, id, tid, perform::open(&last), last.cloexec(), creds);
                            None
                        }
                    },
                },
            };
            match done {
                // A symlink on a lexically translated path: decide again, in full.
                Some(Err(Errno::ELOOP)) if lexical => {
                    let d = decided(shared, tid, id, |mon| mon.on_syscall_redecide(shared.now(), Tid(tid), call, mem));
                    carry(shared, fd, id, call, d, mem);
                }
                Some(r) => respond(fd, id, Some(r)),
                None => {}
            }
        }
        other => {
            // A module asked for ptrace-only control on a call it declared `Decide`:
            // a monitor bug. Refuse the call rather than run it unexamined.
            eprintln!("viewos: internal error: {other:?} for a notified {}", call.sysno());
            respond(fd, id, Some(Err(Errno::ENOSYS)));
        }
    }
}

/// Installs `file` in the notifying thread's table as the result of its call.
///
/// `ADDFD` wakes the guest thread to install the fd itself and waits for it: two wake-ups,
/// which the scheduler sends to an idle CPU when it can, and waking an idle CPU of a VM
/// costs tens of microseconds each. For the call, the guest thread and this one are kept
/// on the CPU this one runs on (where the guest was: the notification woke this thread
/// on its CPU), so both wake-ups stay local; their own masks are put back after it (a
/// guest not allowed on this CPU is left alone).
fn install(fd: i32, id: u64, tid: i32, file: &OwnedFd, cloexec: bool) {
    let pinned = sys::current_cpu().and_then(|cpu| {
        let guest = sys::affinity(tid).filter(|m| m.contains(cpu))?;
        let mine = sys::affinity(0)?;
        let here = sys::CpuMask::only(cpu);
        if !sys::set_affinity(tid, &here) {
            return None;
        }
        sys::set_affinity(0, &here);
        Some((guest, mine))
    });
    let r = sys::notif_addfd_send(fd, id, file.as_raw_fd(), cloexec);
    if let Some((guest, mine)) = pinned {
        sys::set_affinity(tid, &guest);
        sys::set_affinity(0, &mine);
    }
    match r {
        Ok(_) => {}
        // The thread was interrupted or died: nothing to answer.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        // No room in its table (EMFILE): the call fails with that.
        Err(e) => respond(fd, id, Some(Err(Errno(e.raw_os_error().unwrap_or(libc::EIO) as u16)))),
    }
}

/// A notified open, made by the monitor (`opened`) and installed in the guest's table.
fn open(fd: i32, id: u64, tid: i32, opened: Result<Opened, Errno>, cloexec: bool, creds: Option<i32>) {
    match opened {
        Ok(Opened::Ready(file)) => install(fd, id, tid, &file, cloexec),
        Ok(Opened::Fifo { probe, flags }) => {
            // Blocks until a peer opens the other end, which may be another guest that
            // needs the monitor meanwhile: wait on a thread of its own, and watch the guest
            // from another. The guest's wait is killable only (WAIT_KILLABLE_RECV), so a
            // signal for it is the watcher's to see: it answers ERESTARTSYS, which the
            // kernel turns into a restart or EINTR as the signal's handler asks, as for a
            // native FIFO open. The monitor's own open, left waiting, is dropped when a
            // peer comes.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(perform::open_fifo(&probe, flags, creds));
            });
            std::thread::spawn(move || {
                loop {
                    match rx.recv_timeout(std::time::Duration::from_millis(20)) {
                        Ok(Ok(file)) => return install(fd, id, tid, &file, cloexec),
                        Ok(Err(e)) => return respond(fd, id, Some(Err(e))),
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return respond(fd, id, Some(Err(Errno::EIO))),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                            // Killed meanwhile: nothing to answer.
                            if !sys::notif_id_valid(fd, id) {
                                return;
                            }
                            if sys::signal_pending(tid) {
                                return respond(fd, id, Some(Err(Errno(ERESTARTSYS))));
                            }
                        }
                    }
                }
            });
        }
        Err(e) => respond(fd, id, Some(Err(e))),
    }
}
