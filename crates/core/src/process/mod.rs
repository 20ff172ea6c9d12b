//! The process model: threads, thread groups, fd tables and fs state, shared or copied as
//! the kernel does per clone flags; exec and exit. Later modules hang per-process state here.
//!
//! Only what viewos virtualizes is tracked: the fd table holds *virtual* fds (real fds are
//! never stopped, so the monitor does not know them), and fs state holds what modules that
//! trap `chdir`/`umask`/`chroot` maintain. Shared tables are reference-counted by id so the
//! model is plain data (no `Rc`), deterministic and `Send`.

use std::collections::BTreeMap;

/// A kernel thread id (as seen from the monitor's pid namespace). A thread group's id is the
/// tid of its leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid(pub i32);

/// Clone flags that change how state is shared (values from `<linux/sched.h>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CloneFlags(pub u64);

impl CloneFlags {
    pub const VM: u64 = 0x100;
    pub const FS: u64 = 0x200;
    pub const FILES: u64 = 0x400;
    pub const VFORK: u64 = 0x4000;
    pub const PARENT: u64 = 0x8000;
    pub const THREAD: u64 = 0x10000;

    /// True if every bit of `f` is set.
    pub fn has(self, f: u64) -> bool {
        self.0 & f == f
    }
}

/// An fd table entry for a virtual fd. `object` names what a module serves behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdEntry {
    pub object: u64,
    pub cloexec: bool,
}

/// The fd table of one or more threads (shared under `CLONE_FILES`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FdTable {
    pub fds: BTreeMap<i32, FdEntry>,
}

/// Filesystem state (shared under `CLONE_FS`): guest paths as bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsState {
    pub cwd: Vec<u8>,
    pub root: Vec<u8>,
    pub umask: u32,
}

impl Default for FsState {
    fn default() -> Self {
        FsState { cwd: b"/".to_vec(), root: b"/".to_vec(), umask: 0o022 }
    }
}

/// Handle of a shared table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TableId(u64);

#[derive(Clone, Debug)]
struct Shared<T> {
    refs: usize,
    value: T,
}

#[derive(Clone, Debug)]
struct Arena<T> {
    next: u64,
    items: BTreeMap<TableId, Shared<T>>,
}

impl<T: Clone> Arena<T> {
    fn new() -> Self {
        Arena { next: 1, items: BTreeMap::new() }
    }
    fn insert(&mut self, value: T) -> TableId {
        let id = TableId(self.next);
        self.next += 1;
        self.items.insert(id, Shared { refs: 1, value });
        id
    }
    fn share(&mut self, id: TableId) -> TableId {
        if let Some(s) = self.items.get_mut(&id) {
            s.refs += 1;
        }
        id
    }
    fn copy(&mut self, id: TableId) -> TableId {
        let v = self.items.get(&id).map(|s| s.value.clone());
        self.insert(v.expect("table ids are only held by live threads"))
    }
    /// Drops one reference; returns the value if it was the last.
    fn release(&mut self, id: TableId) -> Option<T> {
        let s = self.items.get_mut(&id)?;
        s.refs -= 1;
        if s.refs == 0 { self.items.remove(&id).map(|s| s.value) } else { None }
    }
    fn get(&self, id: TableId) -> Option<&T> {
        self.items.get(&id).map(|s| &s.value)
    }
    fn get_mut(&mut self, id: TableId) -> Option<&mut T> {
        self.items.get_mut(&id).map(|s| &mut s.value)
    }
    fn refs(&self, id: TableId) -> usize {
        self.items.get(&id).map_or(0, |s| s.refs)
    }
}

/// One thread as the monitor sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thread {
    /// Thread group id (the leader's tid).
    pub tgid: Tid,
    pub files: TableId,
    pub fs: TableId,
    /// The thread changed its credentials (a `set*id`, `setgroups` or `capset` call) since
    /// it entered the view, or inherited such a change: the monitor may no longer act for
    /// it with its own. Kept across exec, copied to children.
    pub creds_changed: bool,
    /// A module that virtualizes credentials (fakeroot) says whether the thread holds
    /// root's capabilities in the view (`None`: no such module; ask the host).
    pub virtual_caps: Option<bool>,
}

/// A thread group (a "process").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The real parent's tgid, `None` for the view's first process (its parent is the monitor).
    pub parent: Option<Tid>,
    /// Live threads, leader included while it lives.
    pub threads: Vec<Tid>,
}

/// Virtual fds that stopped existing (close-on-exec, last table reference gone), so the
/// modules that serve them can release their objects.
#[must_use]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Released {
    pub fds: Vec<FdEntry>,
}

/// Every traced thread and process, and their tables.
#[derive(Clone, Debug)]
pub struct Processes {
    threads: BTreeMap<Tid, Thread>,
    groups: BTreeMap<Tid, Group>,
    files: Arena<FdTable>,
    fs: Arena<FsState>,
}

impl Default for Processes {
    fn default() -> Self {
        Processes::new()
    }
}

impl Processes {
    /// An empty model.
    pub fn new() -> Processes {
        Processes { threads: BTreeMap::new(), groups: BTreeMap::new(), files: Arena::new(), fs: Arena::new() }
    }

    /// Registers the first process of the view (a single-threaded group).
    pub fn spawn(&mut self, tid: Tid, fs: FsState) {
        let files = self.files.insert(FdTable::default());
        let fs = self.fs.insert(fs);
        self.threads.insert(tid, Thread { tgid: tid, files, fs, creds_changed: false, virtual_caps: None });
        self.groups.insert(tid, Group { parent: None, threads: vec![tid] });
    }

    /// A thread created `child` with `flags` (fork and vfork are clones without sharing
    /// flags, plus `CLONE_VFORK|CLONE_VM` for vfork). Unknown parents are ignored (returns
    /// false): the adapter may see a child before its parent's event in odd races.
    pub fn clone_thread(&mut self, parent: Tid, child: Tid, flags: CloneFlags) -> bool {
        let Some(p) = self.threads.get(&parent).copied() else { return false };
        if self.threads.contains_key(&child) {
            return false;
        }
        let files = if flags.has(CloneFlags::FILES) { self.files.share(p.files) } else { self.files.copy(p.files) };
        let fs = if flags.has(CloneFlags::FS) { self.fs.share(p.fs) } else { self.fs.copy(p.fs) };
        let tgid = if flags.has(CloneFlags::THREAD) {
            p.tgid
        } else {
            let real_parent = if flags.has(CloneFlags::PARENT) {
                self.groups.get(&p.tgid).and_then(|g| g.parent)
            } else {
                Some(p.tgid)
            };
            self.groups.insert(child, Group { parent: real_parent, threads: Vec::new() });
            child
        };
        self.threads.insert(child, Thread { tgid, files, fs, creds_changed: p.creds_changed, virtual_caps: p.virtual_caps });
        if let Some(g) = self.groups.get_mut(&tgid) {
            g.threads.push(child);
        }
        true
    }

    /// A successful execve by `former` (a tid of group `tgid`): every other thread of the
    /// group is gone, `former` now carries the leader's tid, the fd table is unshared and its
    /// close-on-exec entries are dropped.
    pub fn exec(&mut self, tgid: Tid, former: Tid) -> Released {
        let mut released = Released::default();
        let Some(t) = self.threads.get(&former).copied() else { return released };
        let others: Vec<Tid> = self.groups.get(&t.tgid).map(|g| g.threads.clone()).unwrap_or_default();
        for other in others.into_iter().filter(|&o| o != former) {
            released.fds.extend(self.drop_thread(other).fds);
        }
        let mut t = self.threads.remove(&former).expect("looked up above");
        // exec unshares the fd table (unshare_files) but not fs state.
        if self.files.refs(t.files) > 1 {
            let copy = self.files.copy(t.files);
            let _ = self.files.release(t.files);
            t.files = copy;
        }
        if let Some(table) = self.files.get_mut(t.files) {
            let (gone, kept): (BTreeMap<_, _>, BTreeMap<_, _>) = table.fds.iter().partition(|(_, e)| e.cloexec);
            table.fds = kept;
            released.fds.extend(gone.into_values());
        }
        t.tgid = tgid;
        self.threads.insert(tgid, t);
        let g = self.groups.entry(tgid).or_insert(Group { parent: None, threads: Vec::new() });
        g.threads = vec![tgid];
        released
    }

    /// A thread exited (or was killed). Releases its table references.
    pub fn exit(&mut self, tid: Tid) -> Released {
        self.drop_thread(tid)
    }

    fn drop_thread(&mut self, tid: Tid) -> Released {
        let mut released = Released::default();
        let Some(t) = self.threads.remove(&tid) else { return released };
        if let Some(table) = self.files.release(t.files) {
            released.fds.extend(table.fds.into_values());
        }
        let _ = self.fs.release(t.fs);
        if let Some(g) = self.groups.get_mut(&t.tgid) {
            g.threads.retain(|&x| x != tid);
            if g.threads.is_empty() {
                self.groups.remove(&t.tgid);
            }
        }
        released
    }

    /// The thread, if traced.
    pub fn thread(&self, tid: Tid) -> Option<Thread> {
        self.threads.get(&tid).copied()
    }

    /// The thread group, if any thread of it lives.
    pub fn group(&self, tgid: Tid) -> Option<&Group> {
        self.groups.get(&tgid)
    }

    /// Records that `tid` changed its credentials.
    pub fn set_creds_changed(&mut self, tid: Tid) {
        if let Some(t) = self.threads.get_mut(&tid) {
            t.creds_changed = true;
        }
    }

    /// Records whether `tid` holds root's capabilities in the view (see
    /// [`Thread::virtual_caps`]).
    pub fn set_virtual_caps(&mut self, tid: Tid, caps: bool) {
        if let Some(t) = self.threads.get_mut(&tid) {
            t.virtual_caps = Some(caps);
        }
    }

    /// The fd table of `tid`.
    pub fn fds(&self, tid: Tid) -> Option<&FdTable> {
        self.files.get(self.threads.get(&tid)?.files)
    }

    /// The fd table of `tid`, for modules that open and close virtual fds.
    pub fn fds_mut(&mut self, tid: Tid) -> Option<&mut FdTable> {
        let id = self.threads.get(&tid)?.files;
        self.files.get_mut(id)
    }

    /// The fs state of `tid`.
    pub fn fs(&self, tid: Tid) -> Option<&FsState> {
        self.fs.get(self.threads.get(&tid)?.fs)
    }

    /// The fs state of `tid`, for modules that trap chdir/umask/chroot.
    pub fn fs_mut(&mut self, tid: Tid) -> Option<&mut FsState> {
        let id = self.threads.get(&tid)?.fs;
        self.fs.get_mut(id)
    }

    /// The directory `from` (a path in the view) was renamed to `to` (with `exchange`, the
    /// two swapped places): every cwd and root at or below it moves along, as the kernel's
    /// follow the directory itself.
    pub fn moved(&mut self, from: &[u8], to: &[u8], exchange: bool) {
        let under = |p: &[u8], dir: &[u8]| -> Option<usize> {
            if p == dir {
                Some(dir.len())
            } else if dir == b"/" {
                None
            } else {
                (p.starts_with(dir) && p.get(dir.len()) == Some(&b'/')).then_some(dir.len())
            }
        };
        let map = |p: &mut Vec<u8>| {
            let (n, new) = if let Some(n) = under(p, from) {
                (n, to)
            } else if exchange && let Some(n) = under(p, to) {
                (n, from)
            } else {
                return;
            };
            let mut moved = new.to_vec();
            moved.extend_from_slice(&p[n..]);
            *p = moved;
        };
        for s in self.fs.items.values_mut() {
            map(&mut s.value.cwd);
            map(&mut s.value.root);
        }
    }

    /// Number of live threads.
    pub fn thread_count(&self) -> usize {
        self.threads.len()
    }

    /// Number of live thread groups.
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Number of distinct fd tables and fs states alive (for leak checks).
    pub fn table_count(&self) -> (usize, usize) {
        (self.files.items.len(), self.fs.items.len())
    }
}

#[cfg(test)]
mod tests;
