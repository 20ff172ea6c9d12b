use super::*;
use proptest::prelude::*;

const T: u64 = CloneFlags::THREAD | CloneFlags::VM | CloneFlags::FS | CloneFlags::FILES;

fn vfd(p: &mut Processes, tid: Tid, fd: i32, cloexec: bool) {
    p.fds_mut(tid).unwrap().fds.insert(fd, FdEntry { object: fd as u64, cloexec });
}

#[test]
fn threads_share_and_forks_copy() {
    let mut p = Processes::new();
    p.spawn(Tid(100), FsState::default());
    assert!(p.clone_thread(Tid(100), Tid(101), CloneFlags(T)));
    assert!(p.clone_thread(Tid(100), Tid(200), CloneFlags(0)));
    vfd(&mut p, Tid(101), 5, false);
    assert!(p.fds(Tid(100)).unwrap().fds.contains_key(&5), "thread shares the fd table");
    assert!(!p.fds(Tid(200)).unwrap().fds.contains_key(&5), "fork copied it before");
    p.fs_mut(Tid(100)).unwrap().cwd = b"/tmp".to_vec();
    assert_eq!(p.fs(Tid(101)).unwrap().cwd, b"/tmp");
    assert_eq!(p.fs(Tid(200)).unwrap().cwd, b"/");
    assert_eq!(p.thread(Tid(101)).unwrap().tgid, Tid(100));
    assert_eq!(p.group(Tid(200)).unwrap().parent, Some(Tid(100)));
    assert_eq!(p.group(Tid(100)).unwrap().threads, vec![Tid(100), Tid(101)]);
}

#[test]
fn cwds_and_roots_follow_a_renamed_directory() {
    let mut p = Processes::new();
    let mut spawn = |tid: i32, cwd: &str, root: &str| p.spawn(Tid(tid), FsState { cwd: cwd.into(), root: root.into(), umask: 0o022 });
    spawn(1, "/w/a", "/");
    spawn(2, "/w/a/sub", "/w/a");
    spawn(3, "/w/ab", "/");
    spawn(4, "/w/b/x", "/");
    spawn(5, "/", "/");
    let cwd = |p: &Processes, t: i32| String::from_utf8(p.fs(Tid(t)).unwrap().cwd.clone()).unwrap();
    p.moved(b"/w/a", b"/w/c", false);
    assert_eq!((cwd(&p, 1), cwd(&p, 2), cwd(&p, 3), cwd(&p, 4), cwd(&p, 5)), ("/w/c".into(), "/w/c/sub".into(), "/w/ab".into(), "/w/b/x".into(), "/".into()));
    assert_eq!(p.fs(Tid(2)).unwrap().root, b"/w/c");
    // RENAME_EXCHANGE: both ways at once (not one after the other).
    p.moved(b"/w/c", b"/w/b", true);
    assert_eq!((cwd(&p, 1), cwd(&p, 2), cwd(&p, 4)), ("/w/b".into(), "/w/b/sub".into(), "/w/c/x".into()));
}

#[test]
fn clone_files_without_thread_shares_until_exec() {
    let mut p = Processes::new();
    p.spawn(Tid(1), FsState::default());
    p.clone_thread(Tid(1), Tid(2), CloneFlags(CloneFlags::FILES));
    vfd(&mut p, Tid(1), 3, false);
    assert!(p.fds(Tid(2)).unwrap().fds.contains_key(&3));
    let _ = p.exec(Tid(2), Tid(2));
    vfd(&mut p, Tid(1), 4, false);
    assert!(!p.fds(Tid(2)).unwrap().fds.contains_key(&4), "exec unshared the table");
    assert!(p.fds(Tid(2)).unwrap().fds.contains_key(&3));
}

#[test]
fn exec_by_non_leader_takes_the_leader_tid_and_drops_cloexec() {
    let mut p = Processes::new();
    p.spawn(Tid(10), FsState::default());
    p.clone_thread(Tid(10), Tid(11), CloneFlags(T));
    p.clone_thread(Tid(10), Tid(12), CloneFlags(T));
    vfd(&mut p, Tid(10), 3, true);
    vfd(&mut p, Tid(10), 4, false);
    let r = p.exec(Tid(10), Tid(12));
    assert_eq!(r.fds, vec![FdEntry { object: 3, cloexec: true }]);
    assert_eq!(p.thread_count(), 1);
    assert_eq!(p.thread(Tid(10)).unwrap().tgid, Tid(10));
    assert!(p.thread(Tid(12)).is_none());
    assert_eq!(p.group(Tid(10)).unwrap().threads, vec![Tid(10)]);
    assert_eq!(p.fds(Tid(10)).unwrap().fds.keys().copied().collect::<Vec<_>>(), vec![4]);
    // A late exit report for a thread the exec already removed is harmless.
    assert_eq!(p.exit(Tid(11)), Released::default());
}

#[test]
fn clone_parent_reparents_to_grandparent() {
    let mut p = Processes::new();
    p.spawn(Tid(1), FsState::default());
    p.clone_thread(Tid(1), Tid(2), CloneFlags(0));
    p.clone_thread(Tid(2), Tid(3), CloneFlags(CloneFlags::PARENT));
    assert_eq!(p.group(Tid(3)).unwrap().parent, Some(Tid(1)));
}

#[test]
fn last_exit_releases_virtual_fds() {
    let mut p = Processes::new();
    p.spawn(Tid(1), FsState::default());
    p.clone_thread(Tid(1), Tid(2), CloneFlags(T));
    vfd(&mut p, Tid(1), 7, false);
    assert!(p.exit(Tid(1)).fds.is_empty(), "table still held by the other thread");
    assert_eq!(p.exit(Tid(2)).fds, vec![FdEntry { object: 7, cloexec: false }]);
    assert_eq!(p.table_count(), (0, 0));
    assert_eq!(p.group_count(), 0);
}

#[test]
fn unknown_parent_and_duplicate_child_are_refused() {
    let mut p = Processes::new();
    p.spawn(Tid(1), FsState::default());
    assert!(!p.clone_thread(Tid(99), Tid(2), CloneFlags(0)));
    assert!(p.clone_thread(Tid(1), Tid(2), CloneFlags(0)));
    assert!(!p.clone_thread(Tid(1), Tid(2), CloneFlags(0)));
}

#[derive(Clone, Debug)]
enum Op {
    Clone { parent: usize, flags: u64 },
    Exec { who: usize },
    Exit { who: usize },
    Open { who: usize, cloexec: bool },
}

fn op() -> impl Strategy<Value = Op> {
    let flags = prop_oneof![Just(0u64), Just(T), Just(CloneFlags::FILES), Just(CloneFlags::FS), Just(CloneFlags::VFORK | CloneFlags::VM)];
    prop_oneof![
        (any::<usize>(), flags).prop_map(|(parent, flags)| Op::Clone { parent, flags }),
        any::<usize>().prop_map(|who| Op::Exec { who }),
        any::<usize>().prop_map(|who| Op::Exit { who }),
        (any::<usize>(), any::<bool>()).prop_map(|(who, cloexec)| Op::Open { who, cloexec }),
    ]
}

proptest! {
    /// After any sequence of clone/exec/exit/open, every live thread's tables exist, a
    /// table's reference count equals the number of threads using it, every virtual fd is
    /// released exactly once, and nothing is left once every thread has exited.
    #[test]
    fn model_never_leaks(ops in proptest::collection::vec(op(), 1..80)) {
        let mut p = Processes::new();
        p.spawn(Tid(1), FsState::default());
        let mut next = 2;
        let mut opened = 0usize;
        let mut released = 0usize;
        for op in ops {
            let live: Vec<Tid> = p.threads.keys().copied().collect();
            if live.is_empty() { break; }
            match op {
                Op::Clone { parent, flags } => {
                    prop_assert!(p.clone_thread(live[parent % live.len()], Tid(next), CloneFlags(flags)));
                    next += 1;
                }
                Op::Exec { who } => {
                    let t = live[who % live.len()];
                    let tgid = p.thread(t).unwrap().tgid;
                    released += p.exec(tgid, t).fds.len();
                }
                Op::Exit { who } => released += p.exit(live[who % live.len()]).fds.len(),
                Op::Open { who, cloexec } => {
                    let t = live[who % live.len()];
                    let fds = &mut p.fds_mut(t).unwrap().fds;
                    let fd = fds.keys().next_back().map_or(3, |k| k + 1);
                    fds.insert(fd, FdEntry { object: fd as u64, cloexec });
                    opened += 1;
                }
            }
            for (tid, t) in &p.threads {
                prop_assert!(p.files.get(t.files).is_some() && p.fs.get(t.fs).is_some());
                prop_assert!(p.groups[&t.tgid].threads.contains(tid));
            }
            for (id, s) in &p.files.items {
                prop_assert_eq!(s.refs, p.threads.values().filter(|t| t.files == *id).count());
            }
            for (id, s) in &p.fs.items {
                prop_assert_eq!(s.refs, p.threads.values().filter(|t| t.fs == *id).count());
            }
        }
        let live: Vec<Tid> = p.threads.keys().copied().collect();
        let still_open: usize = p.files.items.values().map(|s| s.value.fds.len()).sum();
        let mut released_at_end = 0;
        for t in live { released_at_end += p.exit(t).fds.len(); }
        prop_assert_eq!(p.table_count(), (0, 0));
        prop_assert_eq!(p.group_count(), 0);
        prop_assert_eq!(released_at_end, still_open, "every entry still in a table is released once");
        let _ = (opened, released);
    }
}
