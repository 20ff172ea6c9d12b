//! The fakeroot module with the path view of the identity view, driven as the adapter
//! drives it, over a small model of a host disk.

use std::collections::BTreeMap;

use viewos_abi::x86_64::nr;
use viewos_abi::{Errno, Sysno, Syscall, SyscallArgs};
use viewos_fakeroot::{Db, Mapping, Stat, StatLayout};
use viewos_path::{Fs, HostPath, Kind, View};

use super::{FakeHost, Fakeroot, path_calls};
use crate::dispatch::{Disposition, Monitor, Nanos};
use crate::hostop::{HostOp, Outcome};
use crate::mem::{FakeMem, GuestMem};
use crate::modules::pathview::{Host, PathView};
use crate::process::{CloneFlags, FsState, Tid};

const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFCHR: u32 = 0o020000;

/// The host disk: paths to inodes. Everything belongs to the real user, 1000.
#[derive(Clone, Default)]
struct Disk {
    names: BTreeMap<String, u64>,
    inodes: BTreeMap<u64, Stat>,
    next: u64,
}

impl Disk {
    fn add(&mut self, path: &str, mode: u32) -> u64 {
        self.next += 1;
        let ino = self.next;
        self.inodes.insert(ino, Stat { dev: 0x801, ino, nlink: 1, mode, uid: 1000, gid: 1000, rdev: 0, size: 0, blocks: 0 });
        self.names.insert(path.to_string(), ino);
        ino
    }
    fn link(&mut self, from: &str, to: &str) {
        let ino = self.names[from];
        self.inodes.get_mut(&ino).unwrap().nlink += 1;
        self.names.insert(to.to_string(), ino);
    }
    fn remove(&mut self, path: &str) -> Result<(), Errno> {
        let ino = self.names.remove(path).ok_or(Errno::ENOENT)?;
        let s = self.inodes.get_mut(&ino).unwrap();
        s.nlink -= 1;
        if s.nlink == 0 {
            self.inodes.remove(&ino);
        }
        Ok(())
    }
    fn stat(&self, path: &str) -> Result<Stat, Errno> {
        let ino = self.names.get(path.trim_end_matches('/')).ok_or(Errno::ENOENT)?;
        Ok(self.inodes[ino])
    }
}

struct DiskHost(std::sync::Arc<std::sync::Mutex<Disk>>);

impl Fs for DiskHost {
    fn lstat(&self, host: &HostPath) -> Result<Kind, Errno> {
        let p = String::from_utf8(host.as_bytes().to_vec()).unwrap();
        if p == "/" {
            return Ok(Kind::Dir);
        }
        let s = self.0.lock().unwrap().stat(&p)?;
        Ok(if s.mode & 0o170000 == S_IFDIR { Kind::Dir } else { Kind::Other })
    }
    fn readlink(&self, _host: &HostPath) -> Result<Vec<u8>, Errno> {
        Err(Errno::EINVAL)
    }
}

impl Host for DiskHost {
    fn fd_path(&self, _tid: Tid, _fd: i32) -> Result<HostPath, Errno> {
        Err(Errno::EBADF)
    }
}

struct Exe(std::sync::Arc<std::sync::Mutex<Disk>>, &'static str);

impl FakeHost for Exe {
    fn exe_stat(&self, _tgid: Tid) -> Option<Vec<u8>> {
        self.0.lock().unwrap().stat(self.1).ok().map(|s| stat_bytes(&s))
    }
}

fn stat_bytes(s: &Stat) -> Vec<u8> {
    let mut b = vec![0u8; 144];
    b[..8].copy_from_slice(&s.dev.to_le_bytes());
    b[8..16].copy_from_slice(&s.ino.to_le_bytes());
    b[16..24].copy_from_slice(&s.nlink.to_le_bytes());
    s.write(StatLayout::Stat, &mut b);
    b
}

struct World {
    m: Monitor,
    disk: std::sync::Arc<std::sync::Mutex<Disk>>,
    /// fd 3 of every thread: this path.
    fd3: String,
    /// The ops made, by name, in order.
    made: Vec<String>,
}

fn world(map: Mapping) -> World {
    let disk = std::sync::Arc::new(std::sync::Mutex::new(Disk::default()));
    {
        let mut d = disk.lock().unwrap();
        d.add("/w", S_IFDIR | 0o755);
        d.add("/w/f", S_IFREG | 0o644);
        d.add("/w/su", S_IFREG | 0o755);
    }
    let fr = Fakeroot::new(map, Db::new(), Box::new(Exe(disk.clone(), "/w/su")));
    let pv = PathView::only(View::new(HostPath::root()), Box::new(DiskHost(disk.clone())), &path_calls(map.uid));
    let mut m = Monitor::new(vec![Box::new(fr), Box::new(pv)]);
    m.on_spawn(Tid(1), FsState { cwd: b"/w".to_vec(), ..FsState::default() });
    World { m, disk, fd3: "/w/f".into(), made: Vec::new() }
}

const ROOT: Mapping = Mapping { real_uid: 1000, real_gid: 1000, uid: 0, gid: 0 };

impl World {
    fn path_of(&self, at: &crate::hostop::HostTarget) -> String {
        let p = String::from_utf8(at.path.clone()).unwrap();
        if at.magic && p.contains("/fd/") { self.fd3.clone() } else { p }
    }

    /// Makes one op on the disk, as the adapter would.
    fn make(&mut self, op: &HostOp) -> Outcome {
        self.made.push(op.name().to_string());
        let mut d = self.disk.lock().unwrap();
        let r = |r: Result<(), Errno>| Outcome { result: r.map(|()| 0), out: Vec::new() };
        match op {
            HostOp::Stat { at, .. } | HostOp::Identify { at, .. } => match d.stat(&self.path_of(at)) {
                Ok(s) => Outcome { result: Ok(0), out: stat_bytes(&s) },
                Err(e) => r(Err(e)),
            },
            HostOp::Chmod { at, mode, .. } => {
                let ino = d.names[&self.path_of(at)];
                let s = d.inodes.get_mut(&ino).unwrap();
                s.mode = (s.mode & 0o170000) | mode;
                r(Ok(()))
            }
            HostOp::Unlink { at, .. } => r(d.remove(&self.path_of(at))),
            HostOp::Mknod { at, mode, .. } => {
                let p = self.path_of(at);
                if d.names.contains_key(&p) {
                    return r(Err(Errno::EEXIST));
                }
                d.add(&p, *mode);
                r(Ok(()))
            }
            HostOp::ReadFile { .. } => Outcome { result: Ok(0), out: b"Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nGroups:\t1000 \nCapEff:\t0000000000000000\n".to_vec() },
            HostOp::OpenMemory { .. } => r(Ok(())),
            other => panic!("unexpected op {other:?}"),
        }
    }

    /// One call, decided and carried out to the end; the guest's result.
    fn call(&mut self, tid: i32, n: u32, a: [u64; 6], mem: &mut FakeMem) -> Result<u64, Errno> {
        let call = Syscall::from_raw(Sysno(n), SyscallArgs(a));
        let d = self.m.on_syscall_enter(Nanos(0), Tid(tid), call, mem);
        match d {
            Disposition::Emulate(r) => r,
            Disposition::Pass { .. } => Err(Errno::ENOSYS),
            Disposition::Perform { mut op, .. } => loop {
                let mut o = self.make(&op);
                if op.installs_fd() {
                    return o.result;
                }
                match self.m.on_performed(Nanos(0), Tid(tid), &op, &mut o) {
                    Some(next) => op = next,
                    None => {
                        if let (Some(addr), Ok(_)) = (op.output(), &o.result) {
                            mem.write(viewos_abi::GuestAddr(addr), &o.out).unwrap();
                        }
                        return o.result;
                    }
                }
            },
            other => panic!("unexpected {other:?}"),
        }
    }

    fn stat(&mut self, path: &str) -> Stat {
        let mut mem = FakeMem::new();
        mem.map_cstr(0x1000, path.as_bytes());
        mem.map(0x2000, vec![0; 144]);
        self.call(1, nr::STAT, [0x1000, 0x2000, 0, 0, 0, 0], &mut mem).expect("stat");
        let mut b = vec![0u8; 144];
        mem.read(viewos_abi::GuestAddr(0x2000), &mut b).unwrap();
        Stat::parse(StatLayout::Stat, &b).unwrap()
    }

    fn path_call(&mut self, tid: i32, n: u32, path: &str, rest: [u64; 5]) -> Result<u64, Errno> {
        let mut mem = FakeMem::new();
        mem.map_cstr(0x1000, path.as_bytes());
        self.call(tid, n, [0x1000, rest[0], rest[1], rest[2], rest[3], rest[4]], &mut mem)
    }
}

fn simple(w: &mut World, n: u32, a: [u64; 6]) -> Result<u64, Errno> {
    w.call(1, n, a, &mut FakeMem::new())
}

#[test]
fn identity_calls_are_root_and_follow_the_kernel_rules() {
    let mut w = world(ROOT);
    assert_eq!(simple(&mut w, nr::GETUID, [0; 6]), Ok(0));
    assert_eq!(simple(&mut w, nr::GETEGID, [0; 6]), Ok(0));
    w.m.on_clone(Tid(1), Tid(2), CloneFlags(0));
    assert_eq!(w.call(2, nr::SETUID, [1000, 0, 0, 0, 0, 0], &mut FakeMem::new()), Ok(0));
    assert_eq!(w.call(2, nr::GETEUID, [0; 6], &mut FakeMem::new()), Ok(1000));
    assert_eq!(w.call(2, nr::SETUID, [0; 6], &mut FakeMem::new()), Err(Errno::EPERM));
    // The parent is still root; the child's child inherits the child's identity.
    assert_eq!(simple(&mut w, nr::GETUID, [0; 6]), Ok(0));
    w.m.on_clone(Tid(2), Tid(3), CloneFlags(0));
    assert_eq!(w.call(3, nr::GETUID, [0; 6], &mut FakeMem::new()), Ok(1000));
    // getresuid writes three ids.
    let mut mem = FakeMem::new();
    mem.map(0x100, vec![0xff; 12]);
    assert_eq!(w.call(1, nr::GETRESUID, [0x100, 0x104, 0x108, 0, 0, 0], &mut mem), Ok(0));
    let mut b = [0u8; 12];
    mem.read(viewos_abi::GuestAddr(0x100), &mut b).unwrap();
    assert_eq!(b, [0; 12]);
    // getgroups: count, then too small a buffer.
    assert_eq!(simple(&mut w, nr::GETGROUPS, [0; 6]), Ok(1));
}

#[test]
fn unknown_files_show_as_the_views_and_chown_is_recorded_for_every_link() {
    let mut w = world(ROOT);
    let s = w.stat("/w/f");
    assert_eq!((s.uid, s.gid), (0, 0));
    w.disk.lock().unwrap().link("/w/f", "/w/hard");
    assert_eq!(w.path_call(1, nr::CHOWN, "/w/f", [33, 44, 0, 0, 0]), Ok(0));
    // The real owner never changes; no chown reached the disk.
    assert_eq!(w.disk.lock().unwrap().stat("/w/f").unwrap().uid, 1000);
    assert!(!w.made.contains(&"chown".to_string()), "{:?}", w.made);
    let s = w.stat("/w/hard");
    assert_eq!((s.uid, s.gid), (33, 44));
}

#[test]
fn chmod_records_the_whole_mode_and_keeps_the_file_usable() {
    let mut w = world(ROOT);
    assert_eq!(w.path_call(1, nr::CHMOD, "/w/f", [0o4000, 0, 0, 0, 0]), Ok(0));
    assert_eq!(w.stat("/w/f").mode, S_IFREG | 0o4000);
    // The real file stays readable and writable by its real owner, and has the mark of a
    // recorded mode (which no chmod the filter lets through keeps).
    assert_eq!(w.disk.lock().unwrap().stat("/w/f").unwrap().mode, S_IFREG | 0o5600);
    // fchmod through fd 3 (the same file).
    let mut mem = FakeMem::new();
    assert_eq!(w.call(1, nr::FCHMOD, [3, 0o751, 0, 0, 0, 0], &mut mem), Ok(0));
    assert_eq!(w.stat("/w/f").mode, S_IFREG | 0o751);
}

#[test]
fn device_nodes_are_placeholders_and_need_root() {
    let mut w = world(ROOT);
    assert_eq!(w.path_call(1, nr::MKNOD, "/w/null", [u64::from(S_IFCHR | 0o666), 0x103, 0, 0, 0]), Ok(0));
    let real = w.disk.lock().unwrap().stat("/w/null").unwrap();
    assert_eq!(real.mode, S_IFREG | 0o1600);
    let s = w.stat("/w/null");
    // umask 022 applied, as the kernel does.
    assert_eq!((s.mode, s.rdev, s.uid), (S_IFCHR | 0o644, 0x103, 0));
    // A virtual non-root user may not.
    assert_eq!(simple(&mut w, nr::SETUID, [1000, 0, 0, 0, 0, 0]), Ok(0));
    assert_eq!(w.path_call(1, nr::MKNOD, "/w/zero", [u64::from(S_IFCHR | 0o666), 0x105, 0, 0, 0]), Err(Errno::EPERM));
    assert!(w.disk.lock().unwrap().stat("/w/zero").is_err());
}

#[test]
fn the_last_link_takes_the_entry_with_it() {
    let mut w = world(ROOT);
    w.disk.lock().unwrap().link("/w/f", "/w/hard");
    assert_eq!(w.path_call(1, nr::CHOWN, "/w/f", [7, 7, 0, 0, 0]), Ok(0));
    assert_eq!(w.path_call(1, nr::UNLINK, "/w/f", [0; 5]), Ok(0));
    assert_eq!(w.stat("/w/hard").uid, 7);
    assert_eq!(w.path_call(1, nr::UNLINK, "/w/hard", [0; 5]), Ok(0));
    // A new file that gets the same inode number starts clean.
    let mut d = w.disk.lock().unwrap();
    let ino = d.next;
    d.next = ino - 1;
    d.add("/w/new", S_IFREG | 0o644);
    drop(d);
    assert_eq!(w.stat("/w/new").uid, 0);
}

#[test]
fn proc_status_shows_the_virtual_identity() {
    let mut w = world(ROOT);
    let mut mem = FakeMem::new();
    mem.map_cstr(0x1000, b"/proc/self/status");
    let call = Syscall::from_raw(Sysno(nr::OPENAT), SyscallArgs([-100i64 as u64, 0x1000, 0, 0, 0, 0]));
    let Disposition::Perform { op, .. } = w.m.on_syscall_enter(Nanos(0), Tid(1), call, &mut mem) else { panic!() };
    assert_eq!(op.paths(), vec![&b"/proc/1/status"[..]]);
    let mut o = w.make(&op);
    let Some(HostOp::OpenMemory { data, cloexec: false, .. }) = w.m.on_performed(Nanos(0), Tid(1), &op, &mut o) else { panic!() };
    let text = String::from_utf8(data).unwrap();
    assert!(text.contains("Uid:\t0\t0\t0\t0\n") && text.contains("Groups:\t0 \n") && text.contains("CapEff:\t000001ffffffffff\n"), "{text}");
    assert!(text.starts_with("Name:\tsh\n"));
    // Another file under /proc is not the module's.
    mem.map_cstr(0x3000, b"/proc/self/stat");
    let call = Syscall::from_raw(Sysno(nr::OPENAT), SyscallArgs([-100i64 as u64, 0x3000, 0, 0, 0, 0]));
    assert_eq!(w.m.on_syscall_enter(Nanos(0), Tid(1), call, &mut mem), Disposition::PASS);
}

#[test]
fn a_set_user_id_program_of_root_makes_a_virtual_user_root() {
    let mut w = world(ROOT);
    assert_eq!(w.path_call(1, nr::CHMOD, "/w/su", [0o4755, 0, 0, 0, 0]), Ok(0));
    assert_eq!(simple(&mut w, nr::SETRESUID, [1000, 1000, 1000, 0, 0, 0]), Ok(0));
    assert_eq!(simple(&mut w, nr::GETEUID, [0; 6]), Ok(1000));
    w.m.on_exec(Tid(1), Tid(1));
    assert_eq!(simple(&mut w, nr::GETEUID, [0; 6]), Ok(0));
    assert_eq!(simple(&mut w, nr::GETUID, [0; 6]), Ok(1000));
}

#[test]
fn state_survives_a_save() {
    let mut w = world(ROOT);
    assert_eq!(w.path_call(1, nr::CHOWN, "/w/f", [5, 6, 0, 0, 0]), Ok(0));
    let saved = w.m.saved_state();
    let (name, bytes) = &saved[0];
    assert_eq!(*name, "fakeroot");
    let db = viewos_fakeroot::state::load(bytes).unwrap();
    assert_eq!(db.len(), 1);
}

#[test]
fn plain_chmods_are_not_trapped_for_a_root_identity() {
    use crate::dispatch::Need;
    let plain = Need::DecideUnlessEq { arg: 1, mask: 0o7600, value: 0o600 };
    let root = world(ROOT).m.interest();
    assert_eq!(root.get(&Sysno(nr::FCHMOD)), Some(&plain));
    assert_eq!(root.get(&Sysno(nr::CHMOD)), Some(&plain));
    let at = Need::DecideUnlessEq { arg: 2, mask: 0o7600, value: 0o600 };
    assert_eq!(root.get(&Sysno(nr::FCHMODAT)), Some(&at));
    assert_eq!(root.get(&Sysno(nr::FCHMODAT2)), Some(&at));
    assert_eq!(root.get(&Sysno(nr::FCHOWN)), Some(&Need::Decide));
    // A virtual non-root user may not chmod another's file: every chmod is the monitor's.
    let user = world(Mapping { uid: 1000, gid: 1000, ..ROOT }).m.interest();
    for n in [nr::FCHMOD, nr::CHMOD, nr::FCHMODAT, nr::FCHMODAT2] {
        assert_eq!(user.get(&Sysno(n)), Some(&Need::Decide), "{n}");
    }
}
