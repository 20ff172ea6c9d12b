//! fakeroot (`-0/--fakeroot`): processes see themselves as root (or `--uid`/`--gid`), their
//! identity calls are answered from virtual credentials, and ownership, permission bits
//! and device nodes are kept in the ownership database (`viewos-fakeroot`) instead of on
//! disk. The files themselves stay the real user's.
//!
//! Calls on paths are decided by the path view (so they are looked up in the view, and the
//! monitor makes them on the host path); this module changes the op before it is made
//! ([`Module::adjust`]) and its outcome after ([`Module::performed`]):
//! - the stat family and statx show the database's owner, group, mode and device number;
//! - chown records, and never changes the real owner; chmod gives the real file the same
//!   bits but readable and writable (searchable for a directory) by the real user, as root
//!   could still use it (Debian's fakeroot does so), and records the mode where the real
//!   file cannot show it (then marked with `S_ISVTX`; see `viewos_fakeroot::Entry::real`).
//!   A plain chmod, which the real file can simply have, is not stopped at all (in a view
//!   whose first identity is root);
//! - mknod of a device creates an empty regular placeholder and records its type and
//!   number (root's privilege: refused for a virtual non-root user, as the kernel does);
//! - unlink, rmdir and rename over a file forget its entry with its last link, so a
//!   reused inode starts clean;
//! - access checks the file as the view shows it, with the virtual ids; what the view
//!   allows is then checked on the host too (a real permission may stop what root could
//!   do, as under Debian's fakeroot).
//!
//! Calls on fds (fstat, fchown, fchmod, the `*at` calls with `AT_EMPTY_PATH`) reach the
//! file through `/proc/TID/fd/N`. `/proc/<pid>/status` of a process in the view shows its
//! virtual Uid/Gid/Groups and capabilities (a sealed memory file with the edited text).

use std::collections::BTreeMap;

use viewos_abi::x86_64::nr;
use viewos_abi::{Errno, GuestAddr, Sysno, Syscall, SyscallArgs};
use viewos_abi::x86_64::flags::{O_CLOEXEC, O_DIRECTORY, O_PATH, O_WRONLY};
use viewos_fakeroot::{Creds, Db, Mapping, S_IFBLK, S_IFCHR, S_IFMT, S_IFREG, Stat, StatLayout, state};

use crate::dispatch::{Adjusted, Ctx, Disposition, Module, Need};
use crate::hostop::{HostOp, HostTarget, Listing, Outcome};
use crate::mem::{GuestMem, MAX_CSTR};
use crate::process::{CloneFlags, Tid};
use super::SET_ID_CALLS;

/// What the fakeroot asks of the host.
pub trait FakeHost: Send {
    /// `struct stat` of the program thread group `tgid` now runs (`/proc/TGID/exe`).
    fn exe_stat(&self, tgid: Tid) -> Option<Vec<u8>>;
}

/// The path calls the fakeroot needs the monitor to make (the path view traps them).
const PATH_CALLS: [u32; 21] = [
    nr::ACCESS,
    nr::FACCESSAT,
    nr::FACCESSAT2,
    nr::STAT,
    nr::LSTAT,
    nr::NEWFSTATAT,
    nr::STATX,
    nr::CHOWN,
    nr::LCHOWN,
    nr::FCHOWNAT,
    nr::CHMOD,
    nr::FCHMODAT,
    nr::FCHMODAT2,
    nr::MKNOD,
    nr::MKNODAT,
    nr::UNLINK,
    nr::UNLINKAT,
    nr::RMDIR,
    nr::RENAME,
    nr::RENAMEAT,
    nr::RENAMEAT2,
];

/// A chmod to a mode with no set-user-ID, set-group-ID or sticky bit that leaves the
/// owner read and write permission: the real file can simply have it, and the view shows
/// the real mode of a file whose recorded mode the real file no longer matches (see
/// [`viewos_fakeroot::Entry::real`]). The filter lets such a call through unstopped.
const PLAIN_MODE: (u32, u32) = (0o7600, 0o600);

/// The need for a chmod-family call whose mode is argument `arg`, in a view whose first
/// identity is `privileged` (root's). A virtual non-root user may not chmod another
/// user's file, which only the monitor knows: all its chmods are trapped.
fn chmod_need(arg: u8, privileged: bool) -> Need {
    if privileged { Need::DecideUnlessEq { arg, mask: PLAIN_MODE.0, value: PLAIN_MODE.1 } } else { Need::Decide }
}

/// The path calls the fakeroot of first identity `uid` needs the monitor to make, with
/// their needs (for [`crate::modules::PathView::only`]).
pub fn path_calls(uid: u32) -> Vec<(u32, Need)> {
    let privileged = uid == 0;
    PATH_CALLS
        .iter()
        .map(|&n| match n {
            nr::CHMOD => (n, chmod_need(1, privileged)),
            nr::FCHMODAT | nr::FCHMODAT2 => (n, chmod_need(2, privileged)),
            _ => (n, Need::Decide),
        })
        .collect()
}

/// The calls that read a thread's credentials (the ones that change them are
/// [`SET_ID_CALLS`]); all of them are answered from the virtual credentials.
const GET_ID_CALLS: [u32; 8] = [
    nr::GETUID,
    nr::GETEUID,
    nr::GETGID,
    nr::GETEGID,
    nr::GETRESUID,
    nr::GETRESGID,
    nr::GETGROUPS,
    nr::CAPGET,
];

fn is_identity(n: u32) -> bool {
    GET_ID_CALLS.contains(&n) || SET_ID_CALLS.contains(&n)
}

/// A device node's placeholder on the host: its owner's read and write, and `S_ISVTX`,
/// which no chmod the filter lets through keeps (see [`viewos_fakeroot::Entry::real`]).
const PLACEHOLDER_MODE: u32 = 0o1600;
const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_IXGRP: u32 = 0o0010;
const RENAME_EXCHANGE: u32 = 2;
const AT_EACCESS: u32 = 0x200;
const O_RDWR: u64 = 0o2;

/// `_LINUX_CAPABILITY_VERSION_{1,2,3}`.
const CAP_V1: u32 = 0x1998_0330;
const CAP_V2: u32 = 0x2007_1026;
const CAP_V3: u32 = 0x2008_0522;
/// Every capability up to `CAP_CHECKPOINT_RESTORE` (40), as two 32-bit words.
const CAP_FULL: [u32; 2] = [u32::MAX, 0x1ff];

/// Where a watched call is.
#[derive(Clone, Debug)]
enum Step {
    /// Show the stat result as the view has it.
    Show(StatLayout),
    Chown { uid: u32, gid: u32 },
    Chmod { at: HostTarget, mode: u32, nofollow: bool },
    /// The host chmod of a file with real permission bits `was`, for view mode `mode`.
    ChmodReal { key: viewos_fakeroot::FileKey, before: Option<viewos_fakeroot::Entry>, mode: u32, was: u32 },
    /// Identified what a removal (unlink, rmdir, rename over) takes away; `op` next.
    Remove { op: HostOp },
    Removed { before: Option<Stat> },
    /// A device node's placeholder is being made; identify it next.
    Mknod { at: HostTarget, mode: u32, rdev: u64 },
    MknodMade { mode: u32, rdev: u64 },
    /// Identified the file an access check is about: the view decides, then the host
    /// (a real permission may still stop what root would be allowed).
    Access { op: HostOp, mode: u32, effective: bool },
    /// `/proc/<of>/status` read; edit it and open the copy.
    Status { of: Tid, cloexec: bool },
}

/// The fakeroot module.
pub struct Fakeroot {
    map: Mapping,
    start: Creds,
    creds: BTreeMap<Tid, Creds>,
    db: Db,
    host: Box<dyn FakeHost>,
    steps: BTreeMap<Tid, Step>,
}

impl Fakeroot {
    /// A view whose processes are `uid`/`gid` (with root's capabilities if `uid` is 0),
    /// run by the real `real_uid`/`real_gid`, starting from database `db`.
    pub fn new(map: Mapping, db: Db, host: Box<dyn FakeHost>) -> Fakeroot {
        Fakeroot { start: Creds::new(map.uid, map.gid, vec![map.gid]), map, creds: BTreeMap::new(), db, host, steps: BTreeMap::new() }
    }

    /// The database now.
    pub fn db(&self) -> &Db {
        &self.db
    }

    fn creds(&self, tid: Tid) -> &Creds {
        self.creds.get(&tid).unwrap_or(&self.start)
    }

    fn creds_mut(&mut self, tid: Tid) -> &mut Creds {
        let start = &self.start;
        self.creds.entry(tid).or_insert_with(|| start.clone())
    }

    fn fd_target(tid: Tid, fd: u64) -> HostTarget {
        HostTarget::guest_fd(tid, fd as u32 as i32)
    }

    fn identity(&mut self, tid: Tid, n: u32, a: &SyscallArgs, mem: &mut dyn GuestMem) -> Result<u64, Errno> {
        let id = |i: usize| a.get(i) as u32;
        let put = |mem: &mut dyn GuestMem, addr: u64, vals: &[u32]| -> Result<(), Errno> {
            let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
            mem.write(GuestAddr(addr), &bytes).map_err(Errno::from)
        };
        let c = self.creds(tid);
        match n {
            nr::GETUID => Ok(u64::from(c.uid[0])),
            nr::GETEUID => Ok(u64::from(c.uid[1])),
            nr::GETGID => Ok(u64::from(c.gid[0])),
            nr::GETEGID => Ok(u64::from(c.gid[1])),
            nr::GETRESUID | nr::GETRESGID => {
                let v = if n == nr::GETRESUID { c.uid } else { c.gid };
                for (i, val) in v[..3].iter().enumerate() {
                    put(mem, a.get(i), &[*val])?;
                }
                Ok(0)
            }
            nr::GETGROUPS => {
                let size = a.get(0) as u32 as i32;
                let count = c.groups.len();
                if size < 0 {
                    return Err(Errno::EINVAL);
                }
                if size == 0 {
                    return Ok(count as u64);
                }
                if (size as usize) < count {
                    return Err(Errno::EINVAL);
                }
                put(mem, a.get(1), &c.groups)?;
                Ok(count as u64)
            }
            nr::SETUID => self.creds_mut(tid).setuid(id(0)).map(|()| 0),
            nr::SETGID => self.creds_mut(tid).setgid(id(0)).map(|()| 0),
            nr::SETREUID => self.creds_mut(tid).setreuid(id(0), id(1)).map(|()| 0),
            nr::SETREGID => self.creds_mut(tid).setregid(id(0), id(1)).map(|()| 0),
            nr::SETRESUID => self.creds_mut(tid).setresuid(id(0), id(1), id(2)).map(|()| 0),
            nr::SETRESGID => self.creds_mut(tid).setresgid(id(0), id(1), id(2)).map(|()| 0),
            nr::SETFSUID => Ok(u64::from(self.creds_mut(tid).setfsuid(id(0)))),
            nr::SETFSGID => Ok(u64::from(self.creds_mut(tid).setfsgid(id(0)))),
            nr::SETGROUPS => {
                let size = a.get(0) as u32 as i32;
                if size < 0 || size as usize > viewos_fakeroot::NGROUPS_MAX {
                    return Err(Errno::EINVAL);
                }
                let mut b = vec![0u8; size as usize * 4];
                if size > 0 {
                    mem.read(GuestAddr(a.get(1)), &mut b)?;
                }
                let groups = b.chunks_exact(4).map(|w| u32::from_le_bytes(w.try_into().expect("4 bytes"))).collect();
                self.creds_mut(tid).setgroups(groups).map(|()| 0)
            }
            nr::CAPGET | nr::CAPSET => self.caps(tid, n, a, mem),
            _ => Err(Errno::ENOSYS),
        }
    }

    /// `capget`/`capset` on the caller itself (`pid` 0 or its own).
    fn caps(&mut self, tid: Tid, n: u32, a: &SyscallArgs, mem: &mut dyn GuestMem) -> Result<u64, Errno> {
        let mut hdr = [0u8; 8];
        mem.read(GuestAddr(a.get(0)), &mut hdr)?;
        let version = u32::from_le_bytes(hdr[..4].try_into().expect("8 bytes"));
        let pid = i32::from_le_bytes(hdr[4..].try_into().expect("8 bytes"));
        let words = match version {
            CAP_V1 => 1,
            CAP_V2 | CAP_V3 => 2,
            _ => {
                mem.write(GuestAddr(a.get(0)), &CAP_V3.to_le_bytes())?;
                return Err(Errno::EINVAL);
            }
        };
        if pid < 0 {
            return Err(Errno::EINVAL);
        }
        let who = if pid == 0 { tid } else { Tid(pid) };
        if n == nr::CAPGET {
            if a.get(1) == 0 {
                return Ok(0);
            }
            let c = self.creds(who);
            let mut out = Vec::new();
            for w in CAP_FULL.iter().take(words) {
                let eff = if c.effective { *w } else { 0 };
                let prm = if c.permitted { *w } else { 0 };
                for v in [eff, prm, 0] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            mem.write(GuestAddr(a.get(1)), &out)?;
            return Ok(0);
        }
        if who != tid {
            return Err(Errno::EPERM);
        }
        let mut data = vec![0u8; 12 * words];
        mem.read(GuestAddr(a.get(1)), &mut data)?;
        let word = |i: usize| u32::from_le_bytes(data[i * 4..i * 4 + 4].try_into().expect("in range"));
        let (mut eff, mut prm) = (false, false);
        for i in 0..words {
            eff |= word(i * 3) != 0;
            prm |= word(i * 3 + 1) != 0;
        }
        self.creds_mut(tid).capset(eff, prm).map(|()| 0)
    }

    /// `/proc/.../status` of a process in the view, from the path the guest opens.
    fn status_of(ctx: &Ctx<'_>, path: &[u8]) -> Option<Tid> {
        let rest = path.strip_prefix(b"/proc/")?;
        let parts: Vec<&[u8]> = rest.split(|&b| b == b'/').collect();
        let num = |p: &[u8]| std::str::from_utf8(p).ok()?.parse::<i32>().ok().filter(|&n| n > 0).map(Tid);
        let tgid = ctx.procs.thread(ctx.tid).map_or(ctx.tid, |t| t.tgid);
        let who = match parts.as_slice() {
            [b"self", b"status"] => tgid,
            [b"thread-self", b"status"] => ctx.tid,
            [b"self", b"task", t, b"status"] => num(t)?,
            [p, b"status"] => num(p)?,
            [_, b"task", t, b"status"] => num(t)?,
            _ => return None,
        };
        ctx.procs.thread(who).map(|_| who)
    }

    /// The status text with `c`'s identity and capabilities.
    fn edit_status(text: &[u8], c: &Creds) -> Vec<u8> {
        let caps = |on: bool| if on { format!("{:08x}{:08x}", CAP_FULL[1], CAP_FULL[0]) } else { "0".repeat(16) };
        let mut out = Vec::with_capacity(text.len());
        for line in text.split_inclusive(|&b| b == b'\n') {
            let new = if line.starts_with(b"Uid:") {
                format!("Uid:\t{}\t{}\t{}\t{}\n", c.uid[0], c.uid[1], c.uid[2], c.uid[3])
            } else if line.starts_with(b"Gid:") {
                format!("Gid:\t{}\t{}\t{}\t{}\n", c.gid[0], c.gid[1], c.gid[2], c.gid[3])
            } else if line.starts_with(b"Groups:") {
                let g: String = c.groups.iter().map(|g| format!("{g} ")).collect();
                format!("Groups:\t{g}\n")
            } else if line.starts_with(b"CapPrm:") {
                format!("CapPrm:\t{}\n", caps(c.permitted))
            } else if line.starts_with(b"CapEff:") {
                format!("CapEff:\t{}\n", caps(c.effective))
            } else {
                out.extend_from_slice(line);
                continue;
            };
            out.extend_from_slice(new.as_bytes());
        }
        out
    }
}

impl Module for Fakeroot {
    fn name(&self) -> &'static str {
        "fakeroot"
    }

    fn interest(&self) -> Vec<(Sysno, Need)> {
        let mut v: Vec<(Sysno, Need)> = GET_ID_CALLS.into_iter().chain(SET_ID_CALLS).map(|n| (Sysno(n), Need::Decide)).collect();
        for n in [nr::FSTAT, nr::FCHOWN, nr::GETDENTS, nr::GETDENTS64] {
            v.push((Sysno(n), Need::Decide));
        }
        v.push((Sysno(nr::FCHMOD), chmod_need(1, self.map.uid == 0)));
        // /proc/<pid>/status is opened by path, for reading only, and is no directory:
        // opens for writing (all that tar x or cp make), of directories (find, ls, chown -R)
        // and O_PATH opens are not stopped.
        let not_read = O_WRONLY | O_RDWR | O_PATH | O_DIRECTORY;
        v.push((Sysno(nr::OPEN), Need::DecideIfClear { arg: 1, mask: not_read }));
        v.push((Sysno(nr::OPENAT), Need::DecideIfClear { arg: 2, mask: not_read }));
        // io_uring's statx would show the real owners.
        v.push((Sysno(nr::IO_URING_SETUP), Need::Refuse(Errno::ENOSYS)));
        v
    }

    fn enter(&mut self, ctx: &mut Ctx<'_>, call: &Syscall, mem: &mut dyn GuestMem) -> Option<Disposition> {
        let tid = ctx.tid;
        self.steps.remove(&tid);
        // What later modules (the path view's virtual chroot) ask about privilege.
        let caps = self.creds(tid).effective;
        ctx.procs.set_virtual_caps(tid, caps);
        let n = call.sysno().0;
        let a = call.args();
        if is_identity(n) {
            return Some(Disposition::Emulate(self.identity(tid, n, &a, mem)));
        }
        let fd_ok = |fd: u64| (fd as u32 as i32) >= 0;
        let perform = |op| Some(Disposition::Perform { op, creds: None, lexical: false });
        match n {
            nr::FSTAT if !fd_ok(a.get(0)) => Some(Disposition::Emulate(Err(Errno::EBADF))),
            nr::FSTAT => perform(HostOp::Stat { at: Self::fd_target(tid, a.get(0)), nofollow: false, out: a.get(1) }),
            nr::FCHOWN | nr::FCHMOD if !fd_ok(a.get(0)) => Some(Disposition::Emulate(Err(Errno::EBADF))),
            nr::FCHOWN => {
                self.steps.insert(tid, Step::Chown { uid: a.get(1) as u32, gid: a.get(2) as u32 });
                perform(HostOp::Identify { at: Self::fd_target(tid, a.get(0)), nofollow: false })
            }
            nr::FCHMOD => {
                let at = Self::fd_target(tid, a.get(0));
                self.steps.insert(tid, Step::Chmod { at: at.clone(), mode: a.get(1) as u32 & 0o7777, nofollow: false });
                perform(HostOp::Identify { at, nofollow: false })
            }
            nr::GETDENTS | nr::GETDENTS64 if self.db.has_nodes() => {
                let edit = Listing { retype: self.db.nodes(), ..Listing::default() };
                perform(HostOp::Getdents { fd: a.get(0) as u32 as i32, buf: a.get(1), count: a.get(2), legacy: n == nr::GETDENTS, edit })
            }
            nr::OPEN | nr::OPENAT => {
                let (p, flags) = if n == nr::OPEN { (a.get(0), a.get(1)) } else { (a.get(1), a.get(2)) };
                if flags & O_PATH != 0 {
                    return None;
                }
                let path = mem.read_cstr(GuestAddr(p), MAX_CSTR - 1).ok()??;
                let of = Self::status_of(ctx, &path)?;
                self.steps.insert(tid, Step::Status { of, cloexec: flags & O_CLOEXEC != 0 });
                let at = HostTarget { path: format!("/proc/{}/status", of.0).into_bytes(), magic: false };
                perform(HostOp::ReadFile { at })
            }
            _ => None,
        }
    }

    fn on_copied(&mut self, from: (u64, u64), to: (u64, u64)) {
        self.db.copied(&viewos_fakeroot::FileKey { dev: from.0, ino: from.1 }, viewos_fakeroot::FileKey { dev: to.0, ino: to.1 });
    }

    fn adjust(&mut self, ctx: &mut Ctx<'_>, _call: &Syscall, op: &mut HostOp) -> Adjusted {
        let tid = ctx.tid;
        if self.steps.contains_key(&tid) {
            return Adjusted::Watch;
        }
        let step = match op {
            HostOp::Stat { .. } => Step::Show(StatLayout::Stat),
            HostOp::Statx { .. } => Step::Show(StatLayout::Statx),
            HostOp::Chown { at, uid, gid, nofollow } => {
                let s = Step::Chown { uid: *uid, gid: *gid };
                *op = HostOp::Identify { at: at.clone(), nofollow: *nofollow };
                s
            }
            HostOp::Chmod { at, mode, nofollow } => {
                let s = Step::Chmod { at: at.clone(), mode: *mode, nofollow: *nofollow };
                *op = HostOp::Identify { at: at.clone(), nofollow: *nofollow };
                s
            }
            HostOp::Access { at, nofollow, mode, flags } => {
                let identify = HostOp::Identify { at: at.clone(), nofollow: *nofollow };
                let (mode, effective) = (*mode, *flags & AT_EACCESS != 0);
                Step::Access { op: std::mem::replace(op, identify), mode, effective }
            }
            HostOp::Unlink { at, .. } => {
                let identify = HostOp::Identify { at: at.clone(), nofollow: true };
                Step::Remove { op: std::mem::replace(op, identify) }
            }
            HostOp::Rename { from, to, flags } if *flags & RENAME_EXCHANGE == 0 && from.path != to.path => {
                let identify = HostOp::Identify { at: to.clone(), nofollow: true };
                Step::Remove { op: std::mem::replace(op, identify) }
            }
            HostOp::Mknod { at, mode, dev, umask } if matches!(*mode & S_IFMT, S_IFCHR | S_IFBLK) => {
                if !self.creds(tid).fs_privileged() {
                    return Adjusted::Refuse(Errno::EPERM);
                }
                let s = Step::Mknod { at: at.clone(), mode: (*mode & S_IFMT) | (*mode & !*umask & 0o7777), rdev: *dev };
                *op = HostOp::Mknod { at: at.clone(), mode: S_IFREG | PLACEHOLDER_MODE, dev: 0, umask: 0 };
                s
            }
            HostOp::Getdents { edit, .. } => {
                if self.db.has_nodes() {
                    edit.retype = self.db.nodes();
                }
                return Adjusted::Untouched;
            }
            _ => return Adjusted::Untouched,
        };
        self.steps.insert(tid, step);
        Adjusted::Watch
    }

    fn performed(&mut self, ctx: &mut Ctx<'_>, _call: &Syscall, _op: &HostOp, o: &mut Outcome) -> Option<HostOp> {
        let tid = ctx.tid;
        let step = self.steps.remove(&tid)?;
        // The fields themselves, so that the database can change meanwhile.
        let creds = self.creds.get(&tid).unwrap_or(&self.start);
        match step {
            Step::Show(layout) => {
                if o.result.is_ok()
                    && let Some(real) = Stat::parse(layout, &o.out)
                {
                    self.db.view(&self.map, &real).write(layout, &mut o.out);
                }
                None
            }
            Step::Chown { uid, gid } => {
                let real = Stat::parse(StatLayout::Stat, &o.out).filter(|_| o.result.is_ok())?;
                o.result = self.db.chown(&self.map, creds, &real, uid, gid).map(|()| 0);
                o.out.clear();
                None
            }
            Step::Chmod { at, mode, nofollow } => {
                let real = Stat::parse(StatLayout::Stat, &o.out).filter(|_| o.result.is_ok())?;
                o.out.clear();
                let before = self.db.get(&real.key()).copied();
                match self.db.chmod(&self.map, creds, &real, mode) {
                    Err(e) => {
                        o.result = Err(e);
                        None
                    }
                    // The file already has the bits it needs on the host.
                    Ok((real_mode, _)) if real.mode & 0o7777 == real_mode => {
                        o.result = Ok(0);
                        None
                    }
                    Ok((real_mode, mode)) => {
                        self.steps.insert(tid, Step::ChmodReal { key: real.key(), before, mode, was: real.mode & 0o7777 });
                        Some(HostOp::Chmod { at, mode: real_mode, nofollow })
                    }
                }
            }
            Step::ChmodReal { key, before, mode, was } => {
                match o.result {
                    Ok(_) => {}
                    // Not the real user's file: root could, and the view says it did.
                    Err(Errno::EPERM) => {
                        self.db.chmod_refused(key, mode, was);
                        o.result = Ok(0);
                    }
                    Err(_) => self.db.set(key, before.unwrap_or_default()),
                }
                None
            }
            Step::Access { op, mode, effective } => {
                let real = Stat::parse(StatLayout::Stat, &o.out).filter(|_| o.result.is_ok())?;
                o.out.clear();
                match self.db.access(&self.map, creds, &real, mode, effective) {
                    Err(e) => {
                        o.result = Err(e);
                        None
                    }
                    Ok(()) if mode & 7 == 0 => None,
                    Ok(()) => Some(op),
                }
            }
            Step::Remove { op } => {
                let before = if o.result.is_ok() { Stat::parse(StatLayout::Stat, &o.out) } else { None };
                o.out.clear();
                self.steps.insert(tid, Step::Removed { before });
                Some(op)
            }
            Step::Removed { before } => {
                if o.result.is_ok()
                    && let Some(b) = before
                {
                    self.db.unlinked(&b);
                }
                None
            }
            Step::Mknod { at, mode, rdev } => {
                if o.result.is_err() {
                    return None;
                }
                self.steps.insert(tid, Step::MknodMade { mode, rdev });
                Some(HostOp::Identify { at, nofollow: true })
            }
            Step::MknodMade { mode, rdev } => {
                if o.result.is_ok()
                    && let Some(p) = Stat::parse(StatLayout::Stat, &o.out)
                {
                    self.db.mknod(&self.map, creds, &p, mode, rdev);
                }
                o.out.clear();
                o.result = Ok(0);
                None
            }
            Step::Status { of, cloexec } => {
                if o.result.is_err() {
                    return None;
                }
                let data = Self::edit_status(&o.out, self.creds(of));
                Some(HostOp::OpenMemory { name: b"status".to_vec(), data, cloexec })
            }
        }
    }

    fn on_clone(&mut self, parent: Tid, child: Tid, _flags: CloneFlags) {
        let c = self.creds(parent).clone();
        self.creds.insert(child, c);
    }

    fn on_exec(&mut self, tgid: Tid, former: Tid) {
        let mut c = self.creds.remove(&former).unwrap_or_else(|| self.creds(tgid).clone());
        let shown = self.host.exe_stat(tgid).and_then(|b| Stat::parse(StatLayout::Stat, &b)).map(|real| self.db.view(&self.map, &real));
        let (mut suid, mut sgid) = (None, None);
        if let Some(s) = shown {
            if s.mode & S_ISUID != 0 {
                suid = Some(s.uid);
            }
            if s.mode & S_ISGID != 0 && s.mode & S_IXGRP != 0 {
                sgid = Some(s.gid);
            }
        }
        c.exec(suid, sgid);
        self.creds.insert(tgid, c);
    }

    fn on_exit(&mut self, tid: Tid) {
        self.creds.remove(&tid);
        self.steps.remove(&tid);
    }

    fn save(&self) -> Option<Vec<u8>> {
        Some(state::save(&self.db))
    }
}

#[cfg(test)]
mod tests;
