//! The path view: every path argument of every syscall is looked up in the view's namespace
//! (root, binds, hidden paths, the process's virtual chroot) by the pure resolver of
//! `viewos-path`, or, for a plain path of a call the monitor makes itself, translated
//! lexically (see `translate_lexically`). Errors of the lookup are the guest's answer. Then:
//! - most calls are made by the monitor on the host path ([`Disposition::Perform`],
//!   `perform.rs`): stat family, access, readlink, statfs, opens, creations, removals,
//!   renames, links, chmod/chown/utimes, truncate, and listings the view changes;
//! - the rest are rewritten to the host path, with `AT_FDCWD` for their dirfd, from scratch
//!   memory no other guest thread can change: exec (with `#!` interpreters and ELF loaders
//!   found in the view, `exec.rs`), chdir, `O_PATH` opens and `openat2`, xattrs, AF_UNIX
//!   addresses (`unix.rs`).
//!
//! `getcwd` answers with the guest cwd; `chdir`/`fchdir` keep it. `/proc/self` and the
//! magic links are the guest's (`procfs.rs`). io_uring, file handles and mounts are refused
//! in the filter.

use std::collections::BTreeMap;

use viewos_abi::x86_64::nr;
use viewos_abi::x86_64::paths::{EmptyPath, Follow, PathArg, Role, path_args, path_syscalls};
use viewos_abi::{Errno, GuestAddr, Sysno, Syscall, SyscallArgs};
use viewos_path::{Flags, Found, Fs, GuestPath, HostPath, View, resolve};

use crate::dispatch::{Adjusted, Ctx, Disposition, ExitFixup, Module, Need, Scratch};
use crate::mem::{GuestMem, MAX_CSTR};
use crate::process::{Processes, Tid};
use super::SET_ID_CALLS;

mod exec;
mod maps;
mod perform;
mod procfs;
use perform::PERFORMED;

/// Calls that change a thread's credentials, or may (`unshare` of the user namespace).
fn changes_creds(n: u32) -> bool {
    SET_ID_CALLS.contains(&n) || n == nr::UNSHARE
}
mod unix;
use procfs::GuestFs;

use crate::hostop::{Base, HostOp, HostTarget, Listing, OPEN_HOW_SIZE, Outcome, XattrCall, is_cow, is_virtual};
use viewos_abi::x86_64::flags::{AT_FDCWD, O_NOFOLLOW, RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_XDEV};

/// What the path view asks of the host besides the resolver's `lstat`/`readlink`.
pub trait Host: Fs + Send {
    /// The host path of the file thread `tid` has open as `fd` (`/proc/TID/fd/N`):
    /// `EBADF` if none.
    fn fd_path(&self, tid: Tid, fd: i32) -> Result<HostPath, Errno>;

    /// The first bytes (up to a page) of the file at `host`, for what `execve` would look
    /// up inside it (`#!`, `PT_INTERP`). Empty if it cannot be read.
    fn read_head(&self, _host: &HostPath) -> Vec<u8> {
        Vec::new()
    }

    /// Whether the file at `host` holds the bytes `needle` (used to ask whether an ELF
    /// loader understands an option, such as glibc's `--argv0`). False if unreadable.
    fn file_contains(&self, _host: &HostPath, _needle: &[u8]) -> bool {
        false
    }

    /// Whether thread `tid` may `chroot` (holds `CAP_SYS_CHROOT`), and may enter the
    /// directory `host` (search permission), as the kernel checks for `chroot`. With
    /// `virtual_caps`, a module that virtualizes credentials decided the first part.
    fn may_chroot(&self, _tid: Tid, _host: &HostPath, _virtual_caps: Option<bool>) -> Result<(), Errno> {
        Err(Errno::EPERM)
    }

    /// The host path of the file of one of the monitor's own filesystems whose backing
    /// file has device `dev` and inode `ino` (`PATH (deleted)` for one without a name
    /// anymore); `None` for any other file.
    fn virtual_name(&self, _dev: u64, _ino: u64) -> Option<Vec<u8>> {
        None
    }

    /// The path the kernel is to be given for an AF_UNIX socket at `host`, a path of one of
    /// the monitor's own filesystems: for `bind` (`Some(umask)`: the name is taken now,
    /// `EADDRINUSE` if it exists; [`Host::socket_bound`] says how the bind went), else the
    /// existing socket's.
    fn virtual_socket(&self, _host: &HostPath, _bind: Option<u32>) -> Result<Vec<u8>, Errno> {
        Err(Errno::ENOENT)
    }

    /// The end of a `bind` that [`Host::virtual_socket`] prepared: `ok` if the kernel made
    /// the socket.
    fn socket_bound(&self, _host: &HostPath, _ok: bool) {}

    /// The host path a socket address the kernel reports (`getsockname`...) stands for,
    /// if it is one [`Host::virtual_socket`] gave.
    fn virtual_socket_name(&self, _kernel: &[u8]) -> Option<Vec<u8>> {
        None
    }

    /// Whether the file at `host` may be executed by the calling thread (a regular file with
    /// execute permission, as `execve` checks it): for a call the monitor turns into an
    /// `execve` of the file's interpreter, which the kernel then never checks.
    fn may_exec(&self, _host: &HostPath) -> Result<(), Errno> {
        Ok(())
    }

    /// Whether the calling thread may enter directory `host` of one of the monitor's own
    /// filesystems ([`is_virtual`]): `ENOTDIR`, `EACCES`... as `chdir` would fail.
    fn may_enter_virtual(&self, _host: &HostPath) -> Result<(), Errno> {
        Err(Errno::ENOENT)
    }
}

/// The path-view module.
pub struct PathView {
    view: View,
    host: Box<dyn Host>,
    /// A `chdir`/`fchdir` in flight: the guest cwd it sets if it succeeds.
    chdir: BTreeMap<Tid, GuestPath>,
    /// A call returning a socket address in flight (`getsockname`, `getpeername`,
    /// `accept`, `recvfrom`): the address and length arguments, and the caller's buffer size.
    sockname: BTreeMap<Tid, (usize, usize, u32)>,
    /// The views of processes that called `chroot`, by their root (a guest path of the
    /// view): built once, swapped in while such a process's calls are decided.
    chroots: BTreeMap<Vec<u8>, View>,
    /// ELF loaders (host paths) and whether they take `--argv0`.
    argv0_loaders: BTreeMap<Vec<u8>, bool>,
    /// The call being decided had a path translated lexically (see `lookup`).
    lexical: std::cell::Cell<bool>,
    /// `phantom_mounts` of each view (by its root on the host), found once.
    phantoms: std::cell::RefCell<BTreeMap<Vec<u8>, Vec<(GuestPath, Vec<u8>, u8)>>>,
    /// Only these path calls, each with the need it is trapped with (see [`PathView::only`]).
    only: Option<Vec<(u32, Need)>>,
    /// Opens of `/proc/PID/maps` being read for an edited copy: whether close-on-exec.
    maps: std::cell::RefCell<BTreeMap<Tid, bool>>,
    /// A `bind` to a path of the monitor's own filesystems in flight: that host path.
    binding: BTreeMap<Tid, HostPath>,
}

impl PathView {
    pub fn new(view: View, host: Box<dyn Host>) -> PathView {
        PathView {
            view,
            host,
            chdir: BTreeMap::new(),
            sockname: BTreeMap::new(),
            chroots: BTreeMap::new(),
            argv0_loaders: BTreeMap::new(),
            lexical: std::cell::Cell::new(false),
            phantoms: Default::default(),
            only: None,
            maps: Default::default(),
            binding: BTreeMap::new(),
        }
    }

    /// A path view that traps only the path calls `calls`, each with its need (`Decide`,
    /// or a condition under which the call needs no monitor: see [`Need`]), and what keeps
    /// the guest's cwd and umask; for a view that changes nothing in the namespace (the
    /// identity view) but whose other modules need those calls made by the monitor on host
    /// paths (the fakeroot changes what the stat family shows and what chown/chmod/mknod do).
    pub fn only(view: View, host: Box<dyn Host>, calls: &[(u32, Need)]) -> PathView {
        let mut pv = PathView::new(view, host);
        let mut v = calls.to_vec();
        v.push((nr::CHDIR, Need::Control));
        pv.only = Some(v);
        pv
    }

    fn wants(&self, n: u32) -> bool {
        self.only.as_ref().is_none_or(|v| v.iter().any(|(m, _)| *m == n))
    }

    /// The need an identity view has for call `n` when it is not the usual one.
    fn only_need(&self, n: u32) -> Option<Need> {
        let (_, need) = self.only.as_ref()?.iter().find(|(m, _)| *m == n)?;
        matches!(need, Need::DecideIfClear { .. } | Need::DecideUnlessEq { .. }).then_some(*need)
    }

    /// The guest path of an open directory, for a dirfd or `fchdir`.
    fn fd_guest_path(&self, tid: Tid, fd: i32) -> Result<GuestPath, Errno> {
        let host = self.host.fd_path(tid, fd)?;
        // A file the view does not show cannot be named relative to.
        self.view.untranslate(&host).ok_or(Errno::ENOENT)
    }

    /// The host as the resolver must see it for the calling thread (its `/proc/self`).
    fn guest_fs<'a>(&'a self, ctx: &'a Ctx<'_>) -> GuestFs<'a> {
        let tgid = ctx.procs.thread(ctx.tid).map_or(ctx.tid.0, |t| t.tgid.0);
        GuestFs { host: &*self.host, view: &self.view, tgid, tid: ctx.tid.0, procs: &*ctx.procs }
    }

    /// The calling process's cwd, in its own namespace (below its root after a `chroot`;
    /// a cwd left outside the root counts as the root).
    fn cwd(ctx: &Ctx<'_>) -> GuestPath {
        let Some(fs) = ctx.procs.fs(ctx.tid) else { return GuestPath::root() };
        let (Ok(cwd), Ok(root)) = (GuestPath::new(fs.cwd.clone()), GuestPath::new(fs.root.clone())) else { return GuestPath::root() };
        match cwd.strip_prefix(&root) {
            Some(rest) if !rest.is_empty() => GuestPath::new(rest.to_vec()).unwrap_or_else(|_| GuestPath::root()),
            Some(_) => GuestPath::root(),
            None => GuestPath::root(),
        }
    }

    /// A guest path of the calling process's namespace, as a path of the view's.
    fn outer(ctx: &Ctx<'_>, inner: &GuestPath) -> Vec<u8> {
        match ctx.procs.fs(ctx.tid).map(|f| f.root.as_slice()) {
            None | Some(b"/") => inner.as_bytes().to_vec(),
            Some(root) if inner.is_root() => root.to_vec(),
            Some(root) => [root, inner.as_bytes()].concat(),
        }
    }

    /// `chroot(path)`: the directory becomes the process's `/` (shared by the threads and
    /// `CLONE_FS` children that share its fs state, inherited on fork, kept across exec).
    fn chroot(&mut self, ctx: &mut Ctx<'_>, path: GuestAddr, mem: &mut dyn GuestMem) -> Result<u64, Errno> {
        let path = mem.read_cstr(path, MAX_CSTR - 1).map_err(Errno::from)?.ok_or(Errno::ENAMETOOLONG)?;
        let (host, guest) = self.resolve_host(ctx, None, &path, Flags::EMPTY, false)?;
        if self.host.lstat(&HostPath::new(host.clone()).map_err(|_| Errno::ENOENT)?)? != viewos_path::Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        let caps = ctx.procs.thread(ctx.tid).and_then(|t| t.virtual_caps);
        self.host.may_chroot(ctx.tid, &HostPath::new(host).map_err(|_| Errno::ENOENT)?, caps)?;
        let root = Self::outer(ctx, &guest);
        if let Some(fs) = ctx.procs.fs_mut(ctx.tid) {
            fs.root = root;
        }
        Ok(0)
    }

    /// The view as the calling process sees it (its chroot applied), swapped into
    /// `self.view` for the duration of `f`.
    fn in_own_view<T>(&mut self, ctx: &mut Ctx<'_>, f: impl FnOnce(&mut Self, &mut Ctx<'_>) -> T) -> T {
        let root = ctx.procs.fs(ctx.tid).map(|fs| fs.root.clone()).unwrap_or_else(|| b"/".to_vec());
        if root == b"/" {
            return f(self, ctx);
        }
        let inner = match self.chroots.remove(&root) {
            Some(v) => v,
            None => {
                let mut v = self.view.clone();
                match GuestPath::new(root.clone()).map(|g| v.chroot(&g)) {
                    Ok(Ok(())) => v,
                    // The root was hidden since: nothing is reachable.
                    _ => View::new(HostPath::new(b"/nonexistent/viewos-hidden-root".to_vec()).expect("absolute")),
                }
            }
        };
        let outer = std::mem::replace(&mut self.view, inner);
        let r = f(self, ctx);
        let inner = std::mem::replace(&mut self.view, outer);
        self.chroots.insert(root, inner);
        r
    }

    /// Looks up one path argument. `Ok(None)`: nothing to rewrite (the call names its dirfd
    /// itself). `Ok(Some((host, guest)))`: the argument's new value, and the guest path.
    fn lookup(
        &self,
        ctx: &Ctx<'_>,
        a: &PathArg,
        args: &SyscallArgs,
        how: Option<&[u8]>,
        mem: &mut dyn GuestMem,
        shortcut: bool,
    ) -> Result<Option<(Vec<u8>, GuestPath)>, Errno> {
        let ptr = args.get(a.path);
        if ptr == 0 {
            return if a.null_is_dirfd { Ok(None) } else { Err(Errno::EFAULT) };
        }
        let path = mem.read_cstr(GuestAddr(ptr), MAX_CSTR - 1).map_err(Errno::from)?.ok_or(Errno::ENAMETOOLONG)?;
        let mut flags = match a.follow {
            Follow::Always => Flags::EMPTY,
            Follow::Never => Flags::NOFOLLOW,
            Follow::UnlessFlag { arg, mask } if args.get(arg) & mask != 0 => Flags::NOFOLLOW,
            Follow::UnlessFlag { .. } => Flags::EMPTY,
            Follow::IfFlag { arg, mask } if args.get(arg) & mask != 0 => Flags::EMPTY,
            Follow::IfFlag { .. } => Flags::NOFOLLOW,
            Follow::OpenFlags { arg } => Flags::from_open(args.get(arg)),
            Follow::OpenHow { .. } => {
                let how = how.ok_or(Errno::EFAULT)?;
                let word = |i: usize| u64::from_le_bytes(how[i * 8..i * 8 + 8].try_into().expect("24 bytes"));
                Flags::from_open(word(0)) | Flags::from_resolve(word(2))?
            }
        };
        let empty_ok = match a.empty {
            EmptyPath::Never => false,
            EmptyPath::Always => true,
            EmptyPath::Flag { arg, mask } => args.get(arg) & mask != 0,
        };
        if empty_ok {
            flags |= Flags::EMPTY_PATH;
            if path.is_empty() {
                return Ok(None);
            }
        }
        let dirfd = a.dirfd.map(|d| args.get(d) as u32 as i32).filter(|&fd| fd != AT_FDCWD);
        if shortcut
            && self.only.is_some()
            && let Some(at) = Self::under_guest(ctx.tid, dirfd.map_or(Base::Cwd, Base::Fd), &path)
        {
            self.lexical.set(true);
            return Ok(Some(at));
        }
        let dir = match dirfd {
            Some(fd) if path.first() != Some(&b'/') => Some(self.fd_guest_path(ctx.tid, fd)?),
            _ => None,
        };
        if shortcut && let Some(r) = self.translate_lexically(ctx, dir.as_ref(), &path) {
            self.lexical.set(true);
            return r.map(Some);
        }
        let may_create = match a.role {
            Role::Create => true,
            Role::CreateIfFlag { arg, mask } => match a.follow {
                Follow::OpenHow { .. } => how.is_some_and(|h| u64::from_le_bytes(h[..8].try_into().expect("24 bytes")) & mask != 0),
                _ => args.get(arg) & mask != 0,
            },
            Role::Lookup | Role::Remove | Role::Exec => false,
        };
        self.resolve_host(ctx, dir.as_ref(), &path, flags, may_create).map(Some)
    }

    /// The shortcut of an identity view for a relative path: the name under the guest's
    /// own open directory (its dirfd) or its cwd, `/proc/TID/fd/N/PATH` or
    /// `/proc/TID/cwd/PATH` (see [`HostTarget::magic`]), with no host call to learn the
    /// directory's path, and wherever that directory has moved since. The adapter looks
    /// PATH up under the directory refusing symlinks, as the lexical shortcut does: a
    /// symlink's target is resolved in full (its `/proc/self` would be the monitor's). The
    /// guest path stands in as the directory's `/proc` name (an identity view has no mount
    /// point but `/`). `None`: no shortcut (an empty or absolute path, or `self` or
    /// `thread-self` first, which under `/proc` would name the monitor).
    fn under_guest(tid: Tid, base: Base, path: &[u8]) -> Option<(Vec<u8>, GuestPath)> {
        let first = path.split(|&b| b == b'/').next()?;
        if path.is_empty() || path[0] == b'/' || matches!(base, Base::Fd(fd) if fd < 0) || path.len() >= viewos_path::PATH_MAX || matches!(first, b"self" | b"thread-self") {
            return None;
        }
        let guest = GuestPath::new(HostTarget::guest_dir(tid, base).path).ok()?;
        Some((HostTarget::under(tid, base, path).path, guest))
    }

    /// The shortcut for a call the monitor makes itself: a path without `..` whose every
    /// component is a plain name is translated through the view's binds and hidden paths
    /// without asking the host anything. Only a symlink on the way could change the answer,
    /// and the host call refuses symlinks (`RESOLVE_NO_SYMLINKS`): if it meets one, the
    /// adapter asks again and the path is resolved in full. `None`: no shortcut (`..`, or a
    /// `/proc` magic link, which must be read as the guest's).
    fn translate_lexically(&self, ctx: &Ctx<'_>, dir: Option<&GuestPath>, path: &[u8]) -> Option<Result<(Vec<u8>, GuestPath), Errno>> {
        if path.is_empty() || path.len() >= viewos_path::PATH_MAX || path.split(|&b| b == b'/').any(|c| c == b"..") {
            return None;
        }
        let base = if path[0] == b'/' {
            GuestPath::root()
        } else {
            dir.cloned().unwrap_or_else(|| Self::cwd(ctx))
        };
        let mut joined = base.into_bytes();
        for c in path.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".") {
            if c.len() > viewos_path::NAME_MAX {
                return None;
            }
            if joined != b"/" {
                joined.push(b'/');
            }
            joined.extend_from_slice(c);
        }
        let guest = GuestPath::new(joined).ok()?;
        let Some(host) = self.view.translate(&guest) else { return Some(Err(Errno::ENOENT)) };
        let mut host = host.into_bytes();
        if let Err(e) = self.check_virtual(&guest, &host) {
            return Some(Err(e));
        }
        if procfs::is_magic(&host) || host.starts_with(b"/proc/self") || host.starts_with(b"/proc/thread-self") {
            return None;
        }
        if path.ends_with(b"/") && host != b"/" {
            host.push(b'/');
        }
        Some(Ok((host, guest)))
    }

    /// Resolves `path` in the view for the calling thread: the host path to hand the
    /// kernel (a missing final component only if `may_create`) and the guest path.
    fn resolve_host(
        &self,
        ctx: &Ctx<'_>,
        dir: Option<&GuestPath>,
        path: &[u8],
        flags: Flags,
        may_create: bool,
    ) -> Result<(Vec<u8>, GuestPath), Errno> {
        let r = resolve(&self.view, &self.guest_fs(ctx), &Self::cwd(ctx), dir, path, flags)?;
        let guest = r.guest;
        let mut host = match r.found {
            Found::Exists(_) => r.host.into_bytes(),
            Found::Missing { parent, name } if may_create => {
                let mut p = parent.into_bytes();
                if p != b"/" {
                    p.push(b'/');
                }
                p.extend_from_slice(&name);
                p
            }
            Found::Missing { .. } => return Err(Errno::ENOENT),
        };
        self.check_virtual(&guest, &host)?;
        // Keep what the trailing slash asks of the kernel ("must be a directory").
        if path.ends_with(b"/") && host != b"/" {
            host.push(b'/');
        }
        Ok((host, guest))
    }

    /// A host path of the monitor's own filesystems is reached only through a mount of
    /// the view whose source it is, never by its name under another mount (a `/proc`
    /// bound through): `ENOENT` there, as for any name procfs does not have.
    fn check_virtual(&self, guest: &GuestPath, host: &[u8]) -> Result<(), Errno> {
        if !is_virtual(host) {
            return Ok(());
        }
        let source = self.view.mount_point(guest).and_then(|m| self.view.translate(&m));
        if source.is_some_and(|s| is_virtual(s.as_bytes())) { Ok(()) } else { Err(Errno::ENOENT) }
    }

    /// Whether guest directory `guest` lies in one of the monitor's own filesystems.
    fn in_virtual(&self, guest: &GuestPath) -> bool {
        self.view.translate(guest).is_some_and(|h| is_virtual(h.as_bytes()))
    }

    /// `execve` of a file whose interpreter (`#!` or `PT_INTERP`) the kernel would look up
    /// outside the view: run the interpreter found in the view instead, with the argv the
    /// kernel would have built (for a dynamic ELF, the program's `argv[0]` becomes its path).
    /// `Ok(None)`: the kernel's own lookups agree with the view.
    fn plan_exec(&mut self, ctx: &Ctx<'_>, n: u32, args: &SyscallArgs, scratch: &[Scratch], mem: &mut dyn GuestMem) -> Result<Option<Disposition>, Errno> {
        use exec::{Arg, Interp};
        let path_arg = if n == nr::EXECVE { 0 } else { 1 };
        let Some(prog) = scratch.iter().find(|s| s.arg == path_arg) else { return Ok(None) };
        let prog_host = HostPath::new(prog.data[..prog.data.len() - 1].to_vec()).map_err(|_| Errno::ENOENT)?;
        let Some(prog_guest) = self.view.untranslate(&prog_host) else { return Ok(None) };
        let (argv_ptr, envp) = if n == nr::EXECVE { (args.get(1), args.get(2)) } else { (args.get(2), args.get(3)) };
        let mut orig = Vec::new();
        let mut at = argv_ptr;
        while at != 0 && orig.len() < 4096 {
            let mut w = [0u8; 8];
            mem.read(GuestAddr(at), &mut w)?;
            match u64::from_le_bytes(w) {
                0 => break,
                p => orig.push(p),
            }
            at += 8;
        }
        let mut argv0 = orig.first().map_or(Arg::Own(prog_guest.as_bytes().to_vec()), |&p| Arg::Guest(p));
        let mut tail: Vec<Arg> = orig.iter().skip(1).map(|&p| Arg::Guest(p)).collect();
        let prog_checked = prog_host.clone();
        let (mut cur_host, mut cur_guest) = (prog_host, prog_guest);
        let mut changed = false;
        // The kernel follows at most a few interpreters (BINPRM nesting); so do we.
        for _ in 0..4 {
            match exec::interp_of(&self.host.read_head(&cur_host)) {
                Interp::None => break,
                Interp::Script(interp, arg) => {
                    let (ih, ig) = self.resolve_host(ctx, None, &interp, Flags::EMPTY, false)?;
                    // The interpreter gets the script's path to open: a script of the
                    // monitor's own filesystems has no host path the guest could open
                    // (a copy-on-write upper file's lies in the hidden store), so the
                    // interpreter is run with the guest path.
                    changed |= !self.kernel_agrees(&interp, &ih) || is_virtual(cur_host.as_bytes());
                    let mut t = Vec::new();
                    t.extend(arg.map(Arg::Own));
                    t.push(Arg::Own(cur_guest.as_bytes().to_vec()));
                    t.append(&mut tail);
                    tail = t;
                    // argv[0] is the interpreter as the script names it (busybox picks its
                    // applet by that name), not the path it resolves to.
                    argv0 = Arg::Own(interp.clone());
                    (cur_host, cur_guest) = (HostPath::new(ih).map_err(|_| Errno::ENOENT)?, ig);
                }
                Interp::Elf(loader) => {
                    let (lh, _) = self.resolve_host(ctx, None, &loader, Flags::EMPTY, false)?;
                    if !self.kernel_agrees(&loader, &lh) {
                        tail.insert(0, Arg::Own(cur_guest.as_bytes().to_vec()));
                        // The loader makes the program's path its argv[0]; glibc's (2.33+)
                        // can be told to keep the original one.
                        let host = &*self.host;
                        let argv0_ok = *self.argv0_loaders.entry(lh.clone()).or_insert_with(|| {
                            HostPath::new(lh.clone()).is_ok_and(|h| host.file_contains(&h, b"--argv0"))
                        });
                        if argv0_ok {
                            tail.insert(0, argv0.clone());
                            tail.insert(0, Arg::Own(b"--argv0".to_vec()));
                        }
                        argv0 = Arg::Own(loader.clone());
                        cur_host = HostPath::new(lh).map_err(|_| Errno::ENOENT)?;
                        changed = true;
                    }
                    break;
                }
            }
        }
        if !changed {
            return Ok(None);
        }
        // The kernel will run the interpreter, not the program: its checks are ours.
        self.host.may_exec(&prog_checked)?;
        let mut argv = vec![argv0];
        argv.append(&mut tail);
        let (blob, relocs) = exec::argv_blob(&argv);
        let mut path = cur_host.into_bytes();
        path.push(0);
        let scratch = vec![
            Scratch { arg: 0, data: path, relocs: Vec::new() },
            Scratch { arg: 1, data: blob, relocs },
        ];
        Ok(Some(Disposition::Rewrite { nr: Some(Sysno(nr::EXECVE)), args: SyscallArgs([0, 0, envp, 0, 0, 0]), scratch, inspect: false }))
    }

    /// True if the kernel, looking `path` up itself in the host's namespace (as it does for
    /// `#!` and `PT_INTERP`), reaches the same host file as the view does (`host`).
    fn kernel_agrees(&self, path: &[u8], host: &[u8]) -> bool {
        let identity = View::new(HostPath::root());
        resolve(&identity, &*self.host, &GuestPath::root(), None, path, Flags::EMPTY).is_ok_and(|r| r.host.as_bytes() == host)
    }

    /// `sendmsg` to a filesystem socket: a copy of the `msghdr` followed by the rewritten
    /// address, its `msg_name` pointing into the copy. The iovecs stay the guest's.
    fn sendmsg_address(&self, ctx: &Ctx<'_>, args: &SyscallArgs, mem: &mut dyn GuestMem) -> Option<Disposition> {
        const MSGHDR: usize = 56;
        let mut hdr = vec![0u8; MSGHDR];
        if let Err(f) = mem.read(GuestAddr(args.get(1)), &mut hdr) {
            return Some(Disposition::Emulate(Err(f.into())));
        }
        let name = u64::from_le_bytes(hdr[..8].try_into().expect("56 bytes"));
        let namelen = u64::from(u32::from_le_bytes(hdr[8..12].try_into().expect("56 bytes")));
        let path = match unix::read_path(mem, name, namelen) {
            Ok(Some(p)) => p,
            Ok(None) => return None,
            Err(e) => return Some(Disposition::Emulate(Err(e))),
        };
        let sa = match self.resolve_host(ctx, None, &path, Flags::EMPTY, false).and_then(|(host, _)| self.socket_kernel_path(host, None)).and_then(|p| unix::sockaddr(&p)) {
            Ok(sa) => sa,
            Err(e) => return Some(Disposition::Emulate(Err(e))),
        };
        hdr[..8].copy_from_slice(&(MSGHDR as u64).to_le_bytes());
        hdr[8..12].copy_from_slice(&(sa.len() as u32).to_le_bytes());
        hdr.extend_from_slice(&sa);
        Some(Disposition::Rewrite { nr: None, args: *args, scratch: vec![Scratch { arg: 1, data: hdr, relocs: vec![0] }], inspect: false })
    }

    /// `bind`/`connect`/`sendto` naming a filesystem socket: the address rewritten to a copy
    /// holding the host path. `None`: not a path address.
    fn socket_address(&mut self, ctx: &Ctx<'_>, n: u32, args: &SyscallArgs, mem: &mut dyn GuestMem) -> Option<Disposition> {
        let (addr_arg, len_arg) = if n == nr::SENDTO { (4, 5) } else { (1, 2) };
        let path = match unix::read_path(mem, args.get(addr_arg), args.get(len_arg)) {
            Ok(Some(p)) => p,
            Ok(None) => return None,
            Err(e) => return Some(Disposition::Emulate(Err(e))),
        };
        // bind creates the socket file and does not follow a final symlink; connect and
        // sendto follow to an existing one.
        let (flags, create) = if n == nr::BIND { (Flags::NOFOLLOW, true) } else { (Flags::EMPTY, false) };
        let resolved = self.resolve_host(ctx, None, &path, flags, create);
        let virtual_bind = match &resolved {
            Ok((host, _)) if n == nr::BIND && is_virtual(host) => HostPath::new(host.clone()).ok(),
            _ => None,
        };
        let umask = ctx.procs.fs(ctx.tid).map_or(0o022, |f| f.umask);
        let result = resolved.and_then(|(host, _)| self.socket_kernel_path(host, (n == nr::BIND).then_some(umask))).and_then(|p| unix::sockaddr(&p));
        Some(match result {
            Ok(sa) => {
                let mut a = *args;
                a.set(len_arg, sa.len() as u64);
                // A socket of the monitor's own filesystems enters its namespace if the bind works.
                let inspect = virtual_bind.is_some();
                if let Some(h) = virtual_bind {
                    self.binding.insert(ctx.tid, h);
                }
                Disposition::Rewrite { nr: None, args: a, scratch: vec![Scratch { arg: addr_arg, data: sa, relocs: Vec::new() }], inspect }
            }
            Err(e) => Disposition::Emulate(Err(e)),
        })
    }

    /// The path the kernel is given for a socket at host path `host`: itself, or for one of
    /// the monitor's own filesystems the path of its real socket (see `Host::virtual_socket`).
    fn socket_kernel_path(&self, host: Vec<u8>, bind: Option<u32>) -> Result<Vec<u8>, Errno> {
        if !is_virtual(&host) {
            return Ok(host);
        }
        self.host.virtual_socket(&HostPath::new(host).map_err(|_| Errno::ENOENT)?, bind)
    }

    /// `readlink` of a magic link: the guest path of its target, truncated like the kernel's.
    fn read_magic(&self, ctx: &Ctx<'_>, host: Vec<u8>, buf: GuestAddr, size: u64, mem: &mut dyn GuestMem) -> Result<u64, Errno> {
        if size as i32 <= 0 {
            return Err(Errno::EINVAL);
        }
        let host = HostPath::new(host).map_err(|_| Errno::ENOENT)?;
        let target = self.guest_fs(ctx).readlink(&host)?;
        let n = target.len().min(size as usize);
        mem.write(buf, &target[..n])?;
        Ok(n as u64)
    }

    /// Binds whose mount point does not exist in the layer below (a real mount point must;
    /// a view's need not): the directory it would be listed in, its name, its `d_type`.
    /// Found once per view: a mount point made on the host later keeps its place in the
    /// listing (the kernel's own entry is then not doubled).
    fn phantom_mounts(&self) -> Vec<(GuestPath, Vec<u8>, u8)> {
        let key = self.view.root().as_bytes().to_vec();
        if let Some(p) = self.phantoms.borrow().get(&key) {
            return p.clone();
        }
        let found = self.find_phantom_mounts();
        self.phantoms.borrow_mut().insert(key, found.clone());
        found
    }

    fn find_phantom_mounts(&self) -> Vec<(GuestPath, Vec<u8>, u8)> {
        const DT_DIR: u8 = 4;
        const DT_REG: u8 = 8;
        const DT_LNK: u8 = 10;
        self.view
            .binds()
            .filter_map(|(dst, src)| {
                let parent = dst.parent()?;
                let name = dst.file_name()?.to_vec();
                let below = self.view.translate(&parent)?;
                let mut under = below.into_bytes();
                if under != b"/" {
                    under.push(b'/');
                }
                under.extend_from_slice(&name);
                if self.host.lstat(&HostPath::new(under).ok()?) != Err(Errno::ENOENT) {
                    return None;
                }
                let t = match self.host.lstat(src) {
                    Ok(viewos_path::Kind::Dir) => DT_DIR,
                    Ok(viewos_path::Kind::Symlink) => DT_LNK,
                    _ => DT_REG,
                };
                Some((parent, name, t))
            })
            .collect()
    }

    /// What the view changes in the listing of the directory open as `fd`, if anything.
    fn listing(&self, ctx: &Ctx<'_>, fd: i32) -> Option<Listing> {
        // Nothing to hide or add without a hidden path, a phantom mount point or a
        // filesystem of the monitor's own (no host call to learn the directory).
        if !self.listings_change() && !is_virtual(self.view.root().as_bytes()) {
            return None;
        }
        let dir = self.fd_guest_path(ctx.tid, fd).ok()?;
        let hidden: Vec<Vec<u8>> = self
            .view
            .hidden()
            .filter(|h| h.parent().as_ref() == Some(&dir))
            .filter_map(|h| h.file_name().map(<[u8]>::to_vec))
            .collect();
        let extra: Vec<(Vec<u8>, u8)> = self.phantom_mounts().into_iter().filter(|(p, ..)| *p == dir).map(|(_, name, t)| (name, t)).collect();
        // A directory of the monitor's own filesystems is listed by the monitor.
        if hidden.is_empty() && extra.is_empty() && !self.in_virtual(&dir) {
            return None;
        }
        Some(Listing { hidden, extra, retype: Vec::new() })
    }

    /// Whether some directory's listing differs from the host's: a hidden path, a phantom
    /// mount point, or a filesystem of the monitor's own bound in.
    fn listings_change(&self) -> bool {
        self.view.hidden().next().is_some() || !self.phantom_mounts().is_empty() || self.view.binds().any(|(_, src)| is_virtual(src.as_bytes()))
    }

    /// Whether a copy-on-write mount is in the view.
    fn has_cow(&self) -> bool {
        self.view.binds().any(|(_, src)| is_cow(src.as_bytes())) || is_cow(self.view.root().as_bytes())
    }

    /// `fchmod`, `fchown`, `fsetxattr`, `fremovexattr` as ops on the guest's fd.
    fn fd_change(&self, ctx: &Ctx<'_>, n: u32, a: &SyscallArgs, mem: &mut dyn GuestMem) -> Result<HostOp, Errno> {
        let fd = a.get(0) as u32 as i32;
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        let at = HostTarget::guest_fd(ctx.tid, fd);
        Ok(match n {
            nr::FCHMOD => HostOp::Chmod { at, mode: a.get(1) as u32 & 0o7777, nofollow: false },
            nr::FCHOWN => HostOp::Chown { at, uid: a.get(1) as u32, gid: a.get(2) as u32, nofollow: false },
            nr::FSETXATTR => {
                let name = perform::xattr_name(mem, a.get(1))?;
                let size = a.get(3);
                if size > perform::XATTR_SIZE_MAX {
                    return Err(Errno::E2BIG);
                }
                let mut value = vec![0u8; size as usize];
                if size > 0 {
                    mem.read(GuestAddr(a.get(2)), &mut value)?;
                }
                HostOp::Xattr { at, nofollow: false, call: XattrCall::Set { name, value, flags: a.get(4) as u32 } }
            }
            _ => HostOp::Xattr { at, nofollow: false, call: XattrCall::Remove { name: perform::xattr_name(mem, a.get(1))? } },
        })
    }

    /// For a path naming one of the caller's own fds (`/proc/self/fd/N`,
    /// `/proc/thread-self/fd/N`, `/proc/PID/fd/N` of its own process): the host magic link
    /// of that fd, and the guest path of the file if it has one (else its directory's is
    /// unknown: the guest path is `/proc/PID/fd/N` itself, on no mount of the view's).
    fn own_fd_link(&self, ctx: &Ctx<'_>, ptr: u64, mem: &mut dyn GuestMem) -> Option<(Vec<u8>, GuestPath)> {
        let path = mem.read_cstr(GuestAddr(ptr), MAX_CSTR - 1).ok()??;
        let tgid = ctx.procs.thread(ctx.tid).map_or(ctx.tid.0, |t| t.tgid.0);
        let text = std::str::from_utf8(&path).ok()?;
        let rest = text.strip_prefix("/proc/self/fd/").or_else(|| text.strip_prefix("/proc/thread-self/fd/")).or_else(|| {
            let (pid, fd) = text.strip_prefix("/proc/")?.split_once("/fd/")?;
            (pid.parse::<i32>().ok()? == tgid).then_some(fd)
        })?;
        let fd: i32 = rest.parse().ok().filter(|f: &i32| *f >= 0)?;
        // Only files (pipes and sockets are reopened as the path view always did).
        self.host.fd_path(ctx.tid, fd).ok()?;
        // A file whose last name went reads as `PATH (deleted)`: no path of the view.
        let named = self.fd_guest_path(ctx.tid, fd).ok().filter(|g| !g.as_bytes().ends_with(b" (deleted)"));
        let guest = named.or_else(|| GuestPath::new(format!("/proc/{tgid}/fd/{fd}").into_bytes()).ok())?;
        Some((format!("/proc/{}/fd/{fd}", ctx.tid.0).into_bytes(), guest))
    }

    /// `chdir`/`fchdir` into directory `guest` of the monitor's own filesystems.
    fn enter_virtual(&self, ctx: &mut Ctx<'_>, guest: &GuestPath) -> Result<u64, Errno> {
        let host = self.view.translate(guest).ok_or(Errno::ENOENT)?;
        self.host.may_enter_virtual(&host)?;
        let outer = Self::outer(ctx, guest);
        if let Some(fs) = ctx.procs.fs_mut(ctx.tid) {
            fs.cwd = outer;
        }
        Ok(0)
    }

    fn getcwd(ctx: &Ctx<'_>, buf: GuestAddr, size: u64, mem: &mut dyn GuestMem) -> Result<u64, Errno> {
        let mut cwd = Self::cwd(ctx).into_bytes();
        cwd.push(0);
        if (cwd.len() as u64) > size {
            return Err(Errno::ERANGE);
        }
        mem.write(buf, &cwd)?;
        Ok(cwd.len() as u64)
    }
}

impl PathView {
    /// The calls this view traps.
    fn interest_of_view(&self) -> Vec<(Sysno, Need)> {
        if self.only.is_some() {
            let mut v: Vec<(Sysno, Need)> = self
                .full_interest()
                .into_iter()
                .filter(|(n, need)| {
                    !matches!(need, Need::Refuse(_))
                        && (self.wants(n.0) || matches!(n.0, nr::GETCWD | nr::UMASK | nr::FCHDIR) || changes_creds(n.0))
                })
                .map(|(n, need)| (n, self.only_need(n.0).unwrap_or(need)))
                .collect();
            v.push((Sysno(nr::IO_URING_SETUP), Need::Refuse(Errno::ENOSYS)));
            return v;
        }
        self.full_interest()
    }
}

impl PathView {
    fn full_interest(&self) -> Vec<(Sysno, Need)> {
        // The calls the monitor makes itself need only a notification; the others are
        // rewritten at a ptrace stop.
        // An O_PATH fd cannot be installed by the monitor (seccomp's ADDFD refuses it), and
        // openat2's flags are in memory the filter cannot read: those opens are rewritten.
        let o_path = viewos_abi::x86_64::flags::O_PATH;
        let mut v: Vec<(Sysno, Need)> = path_syscalls()
            .map(|n| {
                let need = match n {
                    nr::OPEN => Need::DecideUnless { arg: 1, mask: o_path },
                    nr::OPENAT => Need::DecideUnless { arg: 2, mask: o_path },
                    nr::OPENAT2 => Need::Control,
                    nr::CHROOT => Need::Decide,
                    n if PERFORMED.contains(&n) => Need::Decide,
                    _ => Need::Control,
                };
                (Sysno(n), need)
            })
            .collect();
        v.push((Sysno(nr::GETCWD), Need::Decide));
        // What the monitor needs to act for a guest as the guest would: its umask, and
        // whether it still has the credentials it entered the view with.
        v.push((Sysno(nr::UMASK), Need::Decide));
        for n in SET_ID_CALLS.into_iter().chain([nr::UNSHARE]) {
            v.push((Sysno(n), Need::Decide));
        }
        v.push((Sysno(nr::FCHDIR), Need::Control));
        for n in [nr::BIND, nr::CONNECT, nr::SENDTO, nr::SENDMSG, nr::GETSOCKNAME, nr::GETPEERNAME] {
            v.push((Sysno(n), Need::Control));
        }
        // Calls that may return a peer's address: trapped only when given a buffer for it.
        v.push((Sysno(nr::ACCEPT), Need::ControlIf { arg: 1, mask: u64::MAX }));
        v.push((Sysno(nr::ACCEPT4), Need::ControlIf { arg: 1, mask: u64::MAX }));
        v.push((Sysno(nr::RECVFROM), Need::ControlIf { arg: 4, mask: u64::MAX }));
        // In a copy-on-write view a guest may hold a lower file open for reading: the calls
        // that change a file through any fd are made by the monitor (on the upper copy).
        if self.has_cow() {
            for n in [nr::FCHMOD, nr::FCHOWN, nr::FSETXATTR, nr::FREMOVEXATTR] {
                v.push((Sysno(n), Need::Decide));
            }
        }
        if self.listings_change() {
            v.push((Sysno(nr::GETDENTS64), Need::Decide));
            v.push((Sysno(nr::GETDENTS), Need::Decide));
        }
        // What the view cannot virtualize yet is refused in the filter, never let through:
        // io_uring would make its lookups in the kernel, handles bypass path lookup, and
        // mounts and chroot would change the host namespace under the view.
        v.push((Sysno(nr::IO_URING_SETUP), Need::Refuse(Errno::ENOSYS)));
        for n in [
            nr::OPEN_BY_HANDLE_AT,
            nr::MOUNT,
            nr::UMOUNT2,
            nr::PIVOT_ROOT,
            nr::FSOPEN,
            nr::FSMOUNT,
            nr::FSPICK,
            nr::MOVE_MOUNT,
            nr::OPEN_TREE,
            nr::OPEN_TREE_ATTR,
            nr::MOUNT_SETATTR,
        ] {
            v.push((Sysno(n), Need::Refuse(Errno::EPERM)));
        }
        v
    }
}

impl Module for PathView {
    fn name(&self) -> &'static str {
        "pathview"
    }

    fn interest(&self) -> Vec<(Sysno, Need)> {
        self.interest_of_view()
    }

    fn enter(&mut self, ctx: &mut Ctx<'_>, call: &Syscall, mem: &mut dyn GuestMem) -> Option<Disposition> {
        self.in_own_view(ctx, |pv, ctx| pv.decide(ctx, call, mem))
    }

    fn exit(&mut self, ctx: &mut Ctx<'_>, call: &Syscall, ret: i64, mem: &mut dyn GuestMem) -> ExitFixup {
        self.in_own_view(ctx, |pv, ctx| pv.finish(ctx, call, ret, mem))
    }

    fn performed(&mut self, ctx: &mut Ctx<'_>, _call: &Syscall, _op: &HostOp, o: &mut Outcome) -> Option<HostOp> {
        let cloexec = self.maps.borrow_mut().remove(&ctx.tid)?;
        if o.result.is_err() {
            return None;
        }
        let data = maps::edit(&o.out, &self.view, &*self.host);
        Some(HostOp::OpenMemory { name: b"maps".to_vec(), data, cloexec })
    }

    fn on_renamed(&mut self, procs: &mut Processes, from: &HostTarget, to: &HostTarget, flags: u32) {
        // An identity view names relative paths under the thread's own cwd (which the
        // kernel moves); a view that knows cwds by path moves them here.
        if self.only.is_some() {
            return;
        }
        let guest = |t: &HostTarget| {
            let trimmed = t.path.len() - t.path.iter().rev().take_while(|&&b| b == b'/').count();
            HostPath::new(t.path[..trimmed.max(1)].to_vec()).ok().and_then(|h| self.view.untranslate(&h))
        };
        if let (Some(f), Some(t)) = (guest(from), guest(to)) {
            // RENAME_EXCHANGE: the two swap places.
            procs.moved(f.as_bytes(), t.as_bytes(), flags & 2 != 0);
        }
    }

    fn adjust(&mut self, ctx: &mut Ctx<'_>, _call: &Syscall, op: &mut HostOp) -> Adjusted {
        if matches!(op, HostOp::ReadFile { .. }) && self.maps.borrow().contains_key(&ctx.tid) {
            // Its text comes back to `performed`, to be edited.
            return Adjusted::Watch;
        }
        // A listing another module changes (it decided first) still hides what the view hides.
        if let HostOp::Getdents { fd, edit, .. } = op
            && edit.hidden.is_empty()
            && edit.extra.is_empty()
            && let Some(mine) = self.in_own_view(ctx, |pv, ctx| pv.listing(ctx, *fd))
        {
            edit.hidden = mine.hidden;
            edit.extra = mine.extra;
        }
        Adjusted::Untouched
    }
}

impl PathView {
    fn decide(&mut self, ctx: &mut Ctx<'_>, call: &Syscall, mem: &mut dyn GuestMem) -> Option<Disposition> {
        let n = call.sysno().0;
        let args = call.args();
        if self.only.is_some() && !path_args(n).is_empty() && !self.wants(n) {
            return None;
        }
        match call {
            Syscall::Getcwd(c) => return Some(Disposition::Emulate(Self::getcwd(ctx, c.buf(), c.size(), mem))),
            _ if n == nr::CHROOT => return Some(Disposition::Emulate(self.chroot(ctx, GuestAddr(args.get(0)), mem))),
            Syscall::Umask(c) => {
                // umask cannot fail; the kernel sets it as the call runs.
                if let Some(fs) = ctx.procs.fs_mut(ctx.tid) {
                    fs.umask = c.mask() & 0o777;
                }
                return Some(Disposition::PASS);
            }
            Syscall::Other(s, _) if changes_creds(s.0) => {
                // Whether or not it succeeds, the monitor now reads the thread's credentials
                // before acting for it.
                ctx.procs.set_creds_changed(ctx.tid);
                return Some(Disposition::PASS);
            }
            Syscall::Fchdir(c) => {
                return Some(match self.fd_guest_path(ctx.tid, c.fd()) {
                    // The kernel cannot enter a directory of the monitor's own filesystems:
                    // the guest's cwd moves in the view only (every relative path the guest
                    // names is resolved by the monitor from it).
                    Ok(g) if self.in_virtual(&g) => Disposition::Emulate(self.enter_virtual(ctx, &g)),
                    Ok(g) => {
                        self.chdir.insert(ctx.tid, g);
                        Disposition::Pass { inspect: true }
                    }
                    Err(e) => Disposition::Emulate(Err(e)),
                });
            }
            Syscall::Other(s, a) if matches!(s.0, nr::BIND | nr::CONNECT | nr::SENDTO) => {
                return Some(self.socket_address(ctx, s.0, a, mem).unwrap_or(Disposition::PASS));
            }
            Syscall::Other(s, a) if s.0 == nr::SENDMSG => {
                return Some(self.sendmsg_address(ctx, a, mem).unwrap_or(Disposition::PASS));
            }
            _ if matches!(n, nr::GETSOCKNAME | nr::GETPEERNAME | nr::ACCEPT | nr::ACCEPT4 | nr::RECVFROM) => {
                let (addr, len) = if n == nr::RECVFROM { (4, 5) } else { (1, 2) };
                let mut lb = [0u8; 4];
                if args.get(addr) == 0 || args.get(len) == 0 || mem.read(GuestAddr(args.get(len)), &mut lb).is_err() {
                    return Some(Disposition::PASS);
                }
                self.sockname.insert(ctx.tid, (addr, len, u32::from_le_bytes(lb)));
                return Some(Disposition::Pass { inspect: true });
            }
            Syscall::Other(s, a) if matches!(s.0, nr::FCHMOD | nr::FCHOWN | nr::FSETXATTR | nr::FREMOVEXATTR) && self.has_cow() => {
                return Some(match self.fd_change(ctx, s.0, a, mem) {
                    Ok(op) => Disposition::Perform { op, creds: ctx.procs.thread(ctx.tid).filter(|t| t.creds_changed).map(|_| ctx.tid), lexical: false },
                    Err(e) => Disposition::Emulate(Err(e)),
                });
            }
            Syscall::Other(s, a) if s.0 == nr::GETDENTS64 || s.0 == nr::GETDENTS => {
                let fd = a.get(0) as u32 as i32;
                // Nothing to change in this directory's listing (or not a directory the
                // view shows: the kernel answers EBADF, ENOTDIR...): it reads no guest
                // memory, so the kernel may run it as it is.
                let edit = self.listing(ctx, fd)?;
                let op = HostOp::Getdents { fd, buf: a.get(1), count: a.get(2), legacy: s.0 == nr::GETDENTS, edit };
                return Some(Disposition::Perform { op, creds: None, lexical: false });
            }
            _ => {}
        }
        let pargs = path_args(n);
        if pargs.is_empty() {
            return None;
        }
        // openat2's open_how is read once and its copy is what the kernel will see.
        let mut how = None;
        if let Some(Follow::OpenHow { arg }) = pargs.iter().map(|a| a.follow).find(|f| matches!(f, Follow::OpenHow { .. })) {
            if args.get(3) < OPEN_HOW_SIZE as u64 {
                return Some(Disposition::Emulate(Err(Errno::EINVAL)));
            }
            let mut h = vec![0u8; OPEN_HOW_SIZE];
            if let Err(f) = mem.read(GuestAddr(args.get(arg)), &mut h) {
                return Some(Disposition::Emulate(Err(f.into())));
            }
            how = Some((arg, h));
        }
        let performed = PERFORMED.contains(&n);
        if performed {
            if let Err(e) = perform::precheck(n, &args) {
                return Some(Disposition::Emulate(Err(e)));
            }
        }
        let mut new = args;
        let mut scratch = Vec::new();
        let mut looked: Vec<perform::Looked> = Vec::with_capacity(pargs.len());
        // Calls the monitor makes itself may take the lexical shortcut (openat2's own
        // scoping flags need the full lookup).
        // linkat(AT_SYMLINK_FOLLOW) acts on a name but follows it: only the full lookup
        // knows the target.
        let follows_name = n == nr::LINKAT && args.get(4) & viewos_abi::x86_64::flags::AT_SYMLINK_FOLLOW != 0;
        let shortcut = !ctx.exact && performed && how.is_none() && !follows_name;
        self.lexical.set(false);
        for (i, a) in pargs.iter().enumerate() {
            // linkat("/proc/self/fd/N", ..., AT_SYMLINK_FOLLOW): the file behind the guest's
            // fd N, which may have no name to follow (an O_TMPFILE file being given one).
            // The same for an open that follows it: the kernel reopens the file itself
            // (one whose last name went included), as it would natively.
            let opens_own = matches!(n, nr::OPEN | nr::OPENAT) && args.get(if n == nr::OPEN { 1 } else { 2 }) & O_NOFOLLOW == 0;
            if i == 0
                && (follows_name || opens_own)
                && let Some(own) = self.own_fd_link(ctx, args.get(a.path), mem)
            {
                looked.push(Some(own));
                continue;
            }
            match self.lookup(ctx, a, &args, how.as_ref().map(|(_, h)| h.as_slice()), mem, shortcut) {
                Ok(None) => looked.push(None),
                Ok(Some((mut host, guest))) => {
                    if (n == nr::READLINK || n == nr::READLINKAT) && procfs::is_magic(&host) {
                        // The kernel would answer with a host path; the guest gets its own
                        // name for it.
                        let (buf, size) = if n == nr::READLINK { (args.get(1), args.get(2)) } else { (args.get(2), args.get(3)) };
                        return Some(Disposition::Emulate(self.read_magic(ctx, host, GuestAddr(buf), size, mem)));
                    }
                    if performed {
                        looked.push(Some((host, guest)));
                        continue;
                    }
                    if n == nr::CHDIR {
                        if is_virtual(&host) {
                            return Some(Disposition::Emulate(self.enter_virtual(ctx, &guest)));
                        }
                        self.chdir.insert(ctx.tid, guest);
                    }
                    host.push(0);
                    scratch.push(Scratch { arg: a.path, data: host, relocs: Vec::new() });
                    if let Some(d) = a.dirfd {
                        new.set(d, AT_FDCWD as i64 as u64);
                    }
                }
                Err(e) => return Some(Disposition::Emulate(Err(e))),
            }
        }
        if performed {
            return Some(self.perform(ctx, n, &args, &looked, how.as_ref().map(|(_, h)| h.as_slice()), mem));
        }
        if scratch.is_empty() {
            return Some(Disposition::PASS);
        }
        if let Some((arg, mut h)) = how {
            // The view's scoping is done; on the host path it would misfire (an absolute
            // path under BENEATH, a bind's source on another filesystem under NO_XDEV).
            let resolve = u64::from_le_bytes(h[16..24].try_into().expect("24 bytes")) & !(RESOLVE_BENEATH | RESOLVE_IN_ROOT | RESOLVE_NO_XDEV);
            h[16..24].copy_from_slice(&resolve.to_le_bytes());
            scratch.push(Scratch { arg, data: h, relocs: Vec::new() });
            new.set(3, OPEN_HOW_SIZE as u64);
        }
        if n == nr::EXECVE || n == nr::EXECVEAT {
            match self.plan_exec(ctx, n, &args, &scratch, mem) {
                Ok(Some(d)) => return Some(d),
                Ok(None) => {}
                Err(e) => return Some(Disposition::Emulate(Err(e))),
            }
        }
        let inspect = n == nr::CHDIR;
        Some(Disposition::Rewrite { nr: None, args: new, scratch, inspect })
    }

    fn finish(&mut self, ctx: &mut Ctx<'_>, call: &Syscall, ret: i64, mem: &mut dyn GuestMem) -> ExitFixup {
        if let Some((addr, len, size)) = self.sockname.remove(&ctx.tid) {
            if ret >= 0 {
                let a = call.args();
                let _ = unix::report_back(&self.view, &*self.host, mem, a.get(addr), a.get(len), size);
            }
            return ExitFixup::Keep;
        }
        if let Some(h) = self.binding.remove(&ctx.tid) {
            self.host.socket_bound(&h, ret == 0);
            return ExitFixup::Keep;
        }
        if let Some(g) = self.chdir.remove(&ctx.tid)
            && ret == 0
        {
            let outer = Self::outer(ctx, &g);
            if let Some(fs) = ctx.procs.fs_mut(ctx.tid) {
                fs.cwd = outer;
            }
        }
        ExitFixup::Keep
    }
}

#[cfg(test)]
mod tests;
