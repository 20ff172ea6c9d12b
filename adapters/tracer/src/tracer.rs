//! The tracer thread: owns every ptrace request (the kernel requires that they come from
//! the thread that attached), follows process events, and decides `SECCOMP_RET_TRACE` calls.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use viewos_core::{
    Abi, CloneFlags, Disposition, Errno, Event, ExitFixup, FsState, HostOp, Monitor, Nanos, Scratch, Sysno, Syscall, SyscallArgs, Tid,
    x86_64::nr,
};

use crate::mem::ProcMem;
use crate::{Outcome, RunError, Status, notify, scratch, spawn, sys};

/// State shared by the tracer thread and the notification thread. Lock order: `monitor`
/// first, then the others.
pub struct Shared {
    pub monitor: Mutex<Monitor>,
    trace: Mutex<Option<Box<dyn Write + Send>>>,
    start: Instant,
    /// Threads parked by a `Block` decision on a notified call: tid → notification id.
    pub notif_parked: Mutex<HashMap<i32, u64>>,
    /// Completions for threads parked at a ptrace stop, for the tracer thread to apply.
    ptrace_done: Mutex<Vec<(i32, Result<u64, Errno>)>>,
    ptrace_parked: Mutex<HashSet<i32>>,
    tracer_tid: i32,
    listener: OnceLock<i32>,
}

impl Shared {
    pub fn now(&self) -> Nanos {
        Nanos(self.start.elapsed().as_nanos() as u64)
    }

    /// Acts on the monitor's pending events: trace lines, completions of blocked calls.
    pub fn drain(&self, mon: &mut Monitor) {
        while let Some(ev) = mon.poll_event() {
            match ev {
                Event::Trace(line) => {
                    if let Some(w) = self.trace.lock().expect("trace lock").as_mut() {
                        let _ = writeln!(w, "{line}");
                    }
                }
                Event::Complete { tid, result } => {
                    let id = self.notif_parked.lock().expect("parked lock").remove(&tid.0);
                    if let (Some(id), Some(&fd)) = (id, self.listener.get()) {
                        notify::respond(fd, id, Some(result));
                    } else if self.ptrace_parked.lock().expect("parked lock").contains(&tid.0) {
                        self.ptrace_done.lock().expect("done lock").push((tid.0, result));
                        if sys::gettid() != self.tracer_tid {
                            let _ = sys::tgkill(std::process::id() as i32, self.tracer_tid, libc::SIGUSR1);
                        }
                    }
                }
            }
        }
    }
}

extern "C" fn wake(_: libc::c_int) {}

/// A result as the guest's `rax` holds it (`-errno` on failure).
fn raw_result(r: Result<u64, Errno>) -> u64 {
    match r {
        Ok(v) => v,
        Err(e) => e.as_ret() as u64,
    }
}

/// Per-tracee bookkeeping of the tracer thread.
pub struct Tracer {
    shared: Arc<Shared>,
    main: i32,
    main_status: Option<Status>,
    /// The first process will stop once to hand over its listener.
    awaiting_listener: bool,
    /// Tracees whose initial stop has been seen.
    started: HashSet<i32>,
    /// Tracees announced by their parent's clone event.
    announced: HashSet<i32>,
    /// New tracees stopped before their parent's clone event: held until it arrives.
    held: HashSet<i32>,
    /// Threads that asked for an exit stop of the current call.
    inspecting: HashSet<i32>,
    /// Threads running an injected mmap (then mseal): saved registers, the decision to apply
    /// after, and the step reached.
    injecting: HashMap<i32, (libc::user_regs_struct, Syscall, Disposition, Step)>,
    /// Decisions to apply when a thread's call comes back after an injection. The call is
    /// kept too: a signal handler may run first, and its calls must be decided afresh.
    deferred: HashMap<i32, (Syscall, Disposition)>,
    scratch: HashMap<i32, u64>,
    /// Open `/proc/TID/mem` files (scratch writes), until the thread execs or exits.
    mem_files: HashMap<i32, std::fs::File>,
    /// A memory file the monitor made for a thread's open (`HostOp::OpenMemory`), which the
    /// thread opens itself through `/proc/<monitor>/fd/N` (no fd can be installed from a
    /// ptrace stop); kept until the thread's next such open or its end.
    served: HashMap<i32, std::os::fd::OwnedFd>,
    /// Files a guest created in a virtual filesystem and is opening through `served`: the
    /// mode they get after that open.
    pending_modes: HashMap<i32, crate::vfs::Pending>,
}

/// Where a scratch-area injection stands (see `scratch`).
#[derive(Clone, Copy, Debug)]
enum Step {
    /// The mmap runs; its exit stop comes next.
    Mmap,
    /// The mseal of the mapping at this address runs: its entry stop, then its exit stop.
    SealEntry(u64),
    SealExit(u64),
}

const STOP_SIGNALS: [i32; 4] = [libc::SIGSTOP, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];

impl Tracer {
    pub fn new(mut monitor: Monitor, main: i32, listener: bool, trace: Option<Box<dyn Write + Send>>, cwd: Option<Vec<u8>>) -> Tracer {
        let cwd = cwd.unwrap_or_else(|| {
            std::env::current_dir().map(|p| p.into_os_string().into_encoded_bytes()).unwrap_or_else(|_| b"/".to_vec())
        });
        // The guest inherited the monitor's umask.
        let umask = sys::umask(0o022);
        sys::umask(umask);
        monitor.on_spawn(Tid(main), FsState { cwd, umask, ..FsState::default() });
        monitor.set_tracing(trace.is_some());
        let shared = Arc::new(Shared {
            monitor: Mutex::new(monitor),
            trace: Mutex::new(trace),
            start: Instant::now(),
            notif_parked: Mutex::new(HashMap::new()),
            ptrace_done: Mutex::new(Vec::new()),
            ptrace_parked: Mutex::new(HashSet::new()),
            tracer_tid: sys::gettid(),
            listener: OnceLock::new(),
        });
        let mut started = HashSet::new();
        started.insert(main);
        Tracer {
            shared,
            main,
            main_status: None,
            awaiting_listener: listener,
            started,
            announced: HashSet::new(),
            held: HashSet::new(),
            inspecting: HashSet::new(),
            injecting: HashMap::new(),
            deferred: HashMap::new(),
            scratch: HashMap::new(),
            mem_files: HashMap::new(),
            served: HashMap::new(),
            pending_modes: HashMap::new(),
        }
    }

    /// Runs until no tracee is left; returns how the first process ended.
    pub fn run(mut self) -> Result<Outcome, RunError> {
        sys::monitor_signals(wake);
        loop {
            let done: Vec<_> = std::mem::take(&mut *self.shared.ptrace_done.lock().expect("done lock"));
            for (tid, result) in done {
                self.shared.ptrace_parked.lock().expect("parked lock").remove(&tid);
                self.finish_emulated(tid, result);
            }
            let parked = !self.shared.ptrace_parked.lock().expect("parked lock").is_empty();
            match sys::wait_any(parked) {
                Ok(Some((pid, status))) => self.on_status(pid, status),
                Ok(None) => break,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(RunError::Os("waitpid", e)),
            }
        }
        let monitor = match Arc::try_unwrap(self.shared) {
            Ok(s) => s.monitor.into_inner().expect("monitor lock"),
            // The notification thread still holds a reference while blocked in RECV.
            Err(shared) => {
                let mut guard = shared.monitor.lock().expect("monitor lock");
                std::mem::replace(&mut *guard, Monitor::new(Vec::new()))
            }
        };
        Ok(Outcome { status: self.main_status.unwrap_or(Status::Exited(0)), monitor })
    }

    fn on_status(&mut self, tid: i32, status: i32) {
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            self.gone(tid);
            if tid == self.main {
                self.main_status = Some(if libc::WIFEXITED(status) {
                    Status::Exited(libc::WEXITSTATUS(status))
                } else {
                    Status::Signaled(libc::WTERMSIG(status))
                });
            }
            return;
        }
        if !libc::WIFSTOPPED(status) {
            return;
        }
        let sig = libc::WSTOPSIG(status);
        let event = status >> 16;
        match event {
            sys::EVENT_SECCOMP => self.on_seccomp(tid),
            sys::EVENT_FORK | sys::EVENT_VFORK | sys::EVENT_CLONE => self.on_clone(tid, event),
            sys::EVENT_EXEC => self.on_exec(tid),
            sys::EVENT_STOP => self.on_event_stop(tid, sig),
            0 if sig == (libc::SIGTRAP | 0x80) => self.on_syscall_exit(tid),
            0 => self.on_signal(tid, sig),
            _ => self.resume(tid, 0),
        }
    }

    /// Resumes `tid`, keeping an exit stop if one is owed to it.
    fn resume(&self, tid: i32, sig: i32) {
        // ESRCH: the tracee died meanwhile; its exit status is still to come.
        let _ = if self.inspecting.contains(&tid) || self.injecting.contains_key(&tid) {
            sys::syscall(tid, sig)
        } else {
            sys::cont(tid, sig)
        };
    }

    fn gone(&mut self, tid: i32) {
        self.adopt_orphans(tid);
        self.started.remove(&tid);
        self.announced.remove(&tid);
        self.held.remove(&tid);
        self.inspecting.remove(&tid);
        self.injecting.remove(&tid);
        self.deferred.remove(&tid);
        self.scratch.remove(&tid);
        self.mem_files.remove(&tid);
        self.served.remove(&tid);
        self.pending_modes.remove(&tid);
        self.shared.ptrace_parked.lock().expect("parked lock").remove(&tid);
        self.shared.notif_parked.lock().expect("parked lock").remove(&tid);
        let mut mon = self.shared.monitor.lock().expect("monitor lock");
        mon.on_exit(Tid(tid));
        self.shared.drain(&mut mon);
    }

    /// A tracee killed in the middle of fork or clone never reports the event, so a child
    /// held for it would wait forever. When a tracee dies, every held child that is a
    /// process whose parent is gone (reparented) is adopted as a fork of the dead one, its
    /// most likely creator (fork shares nothing, so nothing is lost but the parent link).
    fn adopt_orphans(&mut self, dead: i32) {
        if self.held.is_empty() {
            return;
        }
        let orphans: Vec<i32> = self.held.iter().copied().filter(|&c| self.is_orphan(c)).collect();
        for child in orphans {
            self.held.remove(&child);
            {
                let mut mon = self.shared.monitor.lock().expect("monitor lock");
                mon.on_clone(Tid(dead), Tid(child), CloneFlags(0));
                self.shared.drain(&mut mon);
            }
            self.resume(child, 0);
        }
    }

    /// True if `child` leads its own thread group and its parent is not a live tracee.
    fn is_orphan(&self, child: i32) -> bool {
        let Some(status) = sys::ProcStatus::read(child) else { return false };
        let field = |name: &str| -> Option<i32> { status.field(name)?.parse().ok() };
        let (Some(tgid), Some(ppid)) = (field("Tgid:"), field("PPid:")) else { return false };
        if tgid != child {
            return false;
        }
        let mon = self.shared.monitor.lock().expect("monitor lock");
        mon.processes().group(Tid(ppid)).is_none()
    }

    fn on_event_stop(&mut self, tid: i32, sig: i32) {
        if !self.started.contains(&tid) {
            // A new tracee's first stop. Run it only once its parent's event told us who it
            // is, so the monitor knows its state before its first trapped call.
            self.started.insert(tid);
            if self.announced.remove(&tid) {
                self.resume(tid, 0);
            } else {
                self.held.insert(tid);
            }
            return;
        }
        if STOP_SIGNALS.contains(&sig) {
            // Group-stop: stay stopped but let SIGCONT wake the tracee (PTRACE_LISTEN).
            let _ = sys::listen(tid);
            if tid == self.main && sig != libc::SIGSTOP && self.shares_job_with(tid) {
                // A job-control stop of the command stops the monitor too, so the shell
                // that started viewos sees its job stop; SIGCONT to the job resumes both.
                sys::stop_self();
            }
        } else {
            // PTRACE_INTERRUPT or the wake-up after PTRACE_LISTEN.
            self.resume(tid, 0);
        }
    }

    /// True if `tid` is in the monitor's own process group and a shell outside can resume
    /// that group: the monitor is not a session leader (nothing would ever continue it).
    fn shares_job_with(&self, tid: i32) -> bool {
        sys::same_job_and_not_session_leader(tid)
    }

    fn on_signal(&mut self, tid: i32, sig: i32) {
        if sig == libc::SIGSTOP && tid == self.main && self.awaiting_listener {
            self.awaiting_listener = false;
            match spawn::take_listener(tid) {
                Ok(fd) => {
                    let _ = self.shared.listener.set(fd);
                    // One serving thread: a second one waiting on the same listener would
                    // let guests on two CPUs be served at once (the host calls are made
                    // without the monitor's lock), but measured here it made every single
                    // call ~4 us slower (stat through a bind 21.4 -> 25.8 us) for 7% on a
                    // parallel build.
                    let shared = Arc::clone(&self.shared);
                    std::thread::Builder::new()
                        .name("viewos-notify".into())
                        .spawn(move || notify::serve(shared, fd))
                        .expect("spawn the notification thread");
                    self.resume(tid, 0);
                }
                Err(e) => {
                    eprintln!("viewos: cannot take the seccomp listener: {e}");
                    // The guest cannot run without its listener; end it.
                    let _ = sys::tgkill(tid, tid, libc::SIGKILL);
                }
            }
            return;
        }
        self.resume(tid, sig);
    }

    fn on_clone(&mut self, tid: i32, event: i32) {
        let Ok(child) = sys::event_msg(tid) else { return self.resume(tid, 0) };
        let child = child as i32;
        // The event kind alone is not enough: clone(CLONE_FILES|SIGCHLD) reports a "fork".
        let flags = self.clone_flags(tid).unwrap_or(match event {
            sys::EVENT_VFORK => CloneFlags::VFORK | CloneFlags::VM,
            _ => 0,
        });
        {
            let mut mon = self.shared.monitor.lock().expect("monitor lock");
            mon.on_clone(Tid(tid), Tid(child), CloneFlags(flags));
            self.shared.drain(&mut mon);
        }
        if flags & CloneFlags::VM == 0 {
            // The child has a copy of the parent's address space, scratch page included.
            if let Some(&s) = self.scratch.get(&tid) {
                self.scratch.insert(child, s);
            }
        }
        if self.held.remove(&child) {
            self.resume(child, 0);
        } else {
            self.announced.insert(child);
        }
        self.resume(tid, 0);
    }

    /// Flags of the clone/clone3 call `tid` is stopped in; `None` for fork and vfork.
    fn clone_flags(&self, tid: i32) -> Option<u64> {
        let regs = sys::get_regs(tid).ok()?;
        match regs.orig_rax as u32 {
            nr::CLONE => Some(regs.rdi),
            nr::CLONE3 => {
                let mut b = [0u8; 8];
                viewos_core::GuestMem::read(&mut ProcMem::new(tid), viewos_core::GuestAddr(regs.rdi), &mut b).ok()?;
                Some(u64::from_le_bytes(b))
            }
            _ => None,
        }
    }

    fn on_exec(&mut self, tid: i32) {
        let former = sys::event_msg(tid).map(|f| f as i32).unwrap_or(tid);
        for t in [tid, former] {
            // The old address space is gone with its scratch pages and mem file.
            self.mem_files.remove(&t);
            self.scratch.remove(&t);
            self.inspecting.remove(&t);
            self.deferred.remove(&t);
        }
        {
            let mut mon = self.shared.monitor.lock().expect("monitor lock");
            mon.on_exec(Tid(tid), Tid(former));
            self.shared.drain(&mut mon);
        }
        self.resume(tid, 0);
    }

    fn on_seccomp(&mut self, tid: i32) {
        let info = match sys::syscall_info(tid) {
            Ok(i) if i.op == sys::SYSCALL_INFO_SECCOMP => i,
            _ => return self.resume(tid, 0),
        };
        if Abi::classify(info.arch, info.nr_or_rval) != Some(Abi::X86_64) {
            return self.finish_emulated(tid, Err(Errno::ENOSYS));
        }
        let call = Syscall::from_raw(Sysno(info.nr_or_rval as u32), SyscallArgs(info.args));
        let d = match self.deferred.remove(&tid) {
            Some((c, d)) if c == call => d,
            _ => {
                let mut mon = self.shared.monitor.lock().expect("monitor lock");
                let d = mon.on_syscall_enter(self.shared.now(), Tid(tid), call, &mut ProcMem::new(tid));
                if d == Disposition::Block {
                    // Parked before draining, so a completion already queued finds it.
                    self.shared.ptrace_parked.lock().expect("parked lock").insert(tid);
                }
                self.shared.drain(&mut mon);
                d
            }
        };
        self.apply(tid, call, d);
    }

    /// Has thread `tid` open `file` itself, through the monitor's fd, with `flags`.
    fn serve(&mut self, tid: i32, call: Syscall, file: std::os::fd::OwnedFd, flags: i32) {
        // Kept as an O_PATH fd until the next one: an open file for writing would make
        // `execve` of it ETXTBSY meanwhile.
        let file = sys::reopen(std::os::fd::AsRawFd::as_raw_fd(&file), libc::O_PATH).unwrap_or(file);
        let mut path = format!("/proc/{}/fd/{}", std::process::id(), std::os::fd::AsRawFd::as_raw_fd(&file)).into_bytes();
        path.push(0);
        self.served.insert(tid, file);
        let args = SyscallArgs([libc::AT_FDCWD as i64 as u64, 0, flags as u64, 0, 0, 0]);
        let scratch = vec![Scratch { arg: 1, data: path, relocs: Vec::new() }];
        let d = Disposition::Rewrite { nr: Some(Sysno(nr::OPENAT)), args, scratch, inspect: false };
        self.apply(tid, call, d);
    }

    fn apply(&mut self, tid: i32, call: Syscall, d: Disposition) {
        match d {
            Disposition::Pass { inspect } => {
                if inspect {
                    self.inspecting.insert(tid);
                }
                self.resume(tid, 0);
            }
            Disposition::Emulate(r) => self.finish_emulated(tid, r),
            // Parked by `on_seccomp`; resumed when its completion arrives.
            Disposition::Block => {}
            // An open in a copy-on-write view: the monitor prepares the layers (copy-up),
            // then the open goes on on the real file.
            Disposition::Perform { op: op @ HostOp::Open { .. }, creds, lexical } if crate::cow::active() && matches!(&op, HostOp::Open { at, .. } if crate::cow::owns(&at.path)) => {
                // The guest opens the file itself and cannot ask again: the path is looked
                // up in full first (a symlink on the way would fail its open).
                if lexical {
                    let d = self.redecide(tid, call);
                    self.apply(tid, call, d);
                    return;
                }
                let rw = match crate::perform::AsGuest::new(creds.map(|t| t.0)) {
                    Err(e) => Some(crate::cow::Rewritten::Done(Err(e))),
                    Ok(_as_guest) => crate::cow::rewrite(&op, tid, None),
                };
                crate::perform::report_copies(&self.shared);
                match rw {
                    Some(crate::cow::Rewritten::Op(real, after)) => {
                        // The guest opens it itself: the name it may make is taken as made
                        // (a failed creation leaves a name that reads as missing).
                        crate::cow::finish(after, true);
                        self.apply(tid, call, Disposition::Perform { op: real, creds, lexical });
                    }
                    Some(crate::cow::Rewritten::Done(Err(Errno::ELOOP))) if lexical => {
                        let d = self.redecide(tid, call);
                        self.apply(tid, call, d);
                    }
                    Some(crate::cow::Rewritten::Done(r)) => self.finish_emulated(tid, r.and(Err(Errno::EIO))),
                    None => self.finish_emulated(tid, Err(Errno::ENOENT)),
                }
            }
            // An open of a file of the monitor's own filesystems: the monitor opens it, and
            // the thread opens that through the monitor's fd.
            Disposition::Perform { op: op @ HostOp::Open { .. }, creds, lexical } if crate::vfs::active() && op_is_virtual(&op) => {
                let opened = match crate::perform::AsGuest::new(creds.map(|t| t.0)) {
                    Err(e) => Err(e),
                    Ok(_as_guest) => crate::vfs::open_for_guest(&op).unwrap_or(Err(Errno::ENOENT)),
                };
                match opened {
                    Ok((file, pending)) => {
                        let HostOp::Open { flags, .. } = op else { unreachable!("matched above") };
                        let flags = flags as i32;
                        let keep = if flags & libc::O_PATH != 0 {
                            libc::O_PATH
                        } else {
                            flags & (libc::O_ACCMODE | libc::O_APPEND | libc::O_NONBLOCK | libc::O_SYNC | libc::O_DSYNC | libc::O_DIRECT | libc::O_NOATIME)
                        };
                        if let Some(p) = pending {
                            // Its final mode once the guest has it open (at the exit stop).
                            self.pending_modes.insert(tid, p);
                            self.inspecting.insert(tid);
                        }
                        self.serve(tid, call, file, keep | (flags & libc::O_CLOEXEC));
                    }
                    // A symlink on a lexically translated path: decide again, in full.
                    Err(Errno::ELOOP) if lexical => {
                        let d = self.redecide(tid, call);
                        self.apply(tid, call, d);
                    }
                    Err(e) => self.finish_emulated(tid, Err(e)),
                }
            }
            Disposition::Perform { op, creds, lexical } => match op.as_rewrite() {
                // The guest will open itself, and could not ask again: decide in full first.
                Some(_) if lexical => {
                    let d = self.redecide(tid, call);
                    self.apply(tid, call, d);
                }
                // No way to install an fd from here: the guest opens, with RESOLVE_NO_SYMLINKS.
                Some(d) => self.apply(tid, call, d),
                None => {
                    use crate::perform::{AsGuest, Ran, run};
                    let ran = match AsGuest::new(creds.map(|t| t.0)) {
                        Err(e) => Ran::Done(Err(e)),
                        Ok(_as_guest) => run(&self.shared, tid, op, lexical, &mut ProcMem::new(tid)),
                    };
                    match ran {
                        Ran::Done(r) => self.finish_emulated(tid, r),
                        Ran::Redecide => {
                            let d = self.redecide(tid, call);
                            self.apply(tid, call, d);
                        }
                        Ran::Install(last @ HostOp::OpenMemory { .. }) => {
                            let flags = libc::O_RDONLY | if last.cloexec() { libc::O_CLOEXEC } else { 0 };
                            match crate::perform::open(&last) {
                                Ok(crate::perform::Opened::Ready(file)) => self.serve(tid, call, file, flags),
                                Ok(_) => self.finish_emulated(tid, Err(Errno::EIO)),
                                Err(e) => self.finish_emulated(tid, Err(e)),
                            }
                        }
                        // No other fd is made by a chain.
                        Ran::Install(_) => self.finish_emulated(tid, Err(Errno::ENOSYS)),
                    }
                }
            },
            Disposition::Rewrite { nr, mut args, mut scratch, inspect } => {
                if (crate::vfs::active() || crate::cow::active()) && matches!(call.sysno().0, nr::EXECVE | nr::EXECVEAT) {
                    // A program (or interpreter) of the monitor's own filesystems: the kernel
                    // runs it through the monitor's fd of it (or, in a copy-on-write view, as
                    // the real file of the layer that shows it).
                    for s in &mut scratch {
                        if s.relocs.is_empty()
                            && let Some(path) = s.data.strip_suffix(b"\0").and_then(crate::vfs::exec_path)
                        {
                            s.data = path;
                            s.data.push(0);
                        }
                    }
                }
                let Ok(mut regs) = sys::get_regs(tid) else { return };
                if !scratch.is_empty() {
                    let Some(&base) = self.scratch.get(&tid) else {
                        // First rewrite of this thread: map its scratch area first.
                        if scratch::begin(tid, &regs).is_ok() {
                            self.injecting.insert(tid, (regs, call, Disposition::Rewrite { nr, args, scratch, inspect }, Step::Mmap));
                            self.resume(tid, 0);
                        }
                        return;
                    };
                    let mut mem = ProcMem::with_file(tid, self.mem_files.remove(&tid));
                    let placed = scratch::place(&mut mem, base, &scratch, &mut args);
                    if let Some(f) = mem.into_file() {
                        self.mem_files.insert(tid, f);
                    }
                    if let Err(e) = placed {
                        return self.finish_emulated(tid, Err(e));
                    }
                }
                scratch::set_args(&mut regs, &args);
                if let Some(n) = nr {
                    // The kernel re-runs the filter on the new number (a trapped one is let
                    // through on that second pass).
                    regs.orig_rax = u64::from(n.0);
                }
                if sys::set_regs(tid, &regs).is_err() {
                    return;
                }
                if inspect {
                    self.inspecting.insert(tid);
                }
                self.resume(tid, 0);
            }
        }
    }

    /// Asks the monitor again about `call` after its lexical shortcut met a symlink.
    fn redecide(&self, tid: i32, call: Syscall) -> Disposition {
        let mut mon = self.shared.monitor.lock().expect("monitor lock");
        let d = mon.on_syscall_redecide(self.shared.now(), Tid(tid), call, &mut ProcMem::new(tid));
        self.shared.drain(&mut mon);
        d
    }

    /// Skips the stopped call and makes it return `result`.
    fn finish_emulated(&self, tid: i32, result: Result<u64, Errno>) {
        let Ok(mut regs) = sys::get_regs(tid) else { return };
        regs.orig_rax = u64::MAX;
        regs.rax = raw_result(result);
        if sys::set_regs(tid, &regs).is_ok() {
            self.resume(tid, 0);
        }
    }

    fn on_syscall_exit(&mut self, tid: i32) {
        if let Some((saved, call, d, step)) = self.injecting.remove(&tid) {
            let next = match step {
                Step::Mmap => match sys::get_regs(tid).map(|r| Errno::from_ret(r.rax as i64).is_none().then_some(r.rax)) {
                    Ok(Some(addr)) => scratch::seal(tid, addr).ok().map(|()| Step::SealEntry(addr)),
                    _ => None,
                },
                Step::SealEntry(addr) => Some(Step::SealExit(addr)),
                Step::SealExit(_) => None,
            };
            if let Some(step) = next {
                self.injecting.insert(tid, (saved, call, d, step));
                return self.resume(tid, 0);
            }
            let sealed = match step {
                Step::SealExit(addr) => Some(addr),
                _ => None,
            };
            match scratch::finish(tid, &saved).map(|r| match (r, sealed) {
                // The mseal's result is not the mapping's address.
                (_, Some(addr)) => Ok(addr),
                (r, None) => r,
            }) {
                Ok(Ok(addr)) => {
                    self.scratch.insert(tid, addr);
                    self.deferred.insert(tid, (call, d));
                    self.resume(tid, 0);
                }
                Ok(Err(e)) => {
                    // No memory for scratch: the call fails as the kernel would without it.
                    self.deferred.insert(tid, (call, Disposition::Emulate(Err(e))));
                    self.resume(tid, 0);
                }
                Err(_) => {}
            }
            return;
        }
        if let Some(p) = self.pending_modes.remove(&tid) {
            p.apply();
        }
        if !self.inspecting.remove(&tid) {
            return self.resume(tid, 0);
        }
        let ret = match sys::syscall_info(tid) {
            Ok(i) if i.op == sys::SYSCALL_INFO_EXIT => i.nr_or_rval as i64,
            _ => return self.resume(tid, 0),
        };
        let fix = {
            let mut mon = self.shared.monitor.lock().expect("monitor lock");
            let f = mon.on_syscall_exit(self.shared.now(), Tid(tid), ret, &mut ProcMem::new(tid));
            self.shared.drain(&mut mon);
            f
        };
        match fix {
            ExitFixup::Keep => {}
            ExitFixup::SetReturn(r) => {
                if let Ok(mut regs) = sys::get_regs(tid) {
                    regs.rax = raw_result(r);
                    let _ = sys::set_regs(tid, &regs);
                }
            }
            ExitFixup::Restart => {
                if let Ok(mut regs) = sys::get_regs(tid) {
                    regs.rax = regs.orig_rax;
                    regs.rip -= viewos_core::x86_64::SYSCALL_INSN_LEN;
                    let _ = sys::set_regs(tid, &regs);
                }
            }
        }
        self.resume(tid, 0);
    }
}

/// Whether open `op` names a file of the monitor's own filesystems.
fn op_is_virtual(op: &HostOp) -> bool {
    matches!(op, HostOp::Open { at, .. } if viewos_core::hostop::is_virtual(&at.path))
}
