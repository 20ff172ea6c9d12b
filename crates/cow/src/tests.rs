//! The state machine against a naive model: random trees in the lower layer, random
//! sequences of changes; after every step the merged view (lookups and listings of every
//! path) must equal a plain filesystem that received the same changes, and the lower layer
//! must be untouched.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use crate::commit::{Commit, Status, commit, status};
use crate::plan::{Action, Change, plan};
use crate::merge::{Layers, Node, Shown, listing, lookup};
use crate::{Kind, RelPath, child, parent};

/// An inode: kind, data and metadata versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ino {
    kind: Kind,
    data: u32,
    meta: u32,
}

/// A plain filesystem: names to inode numbers, inodes (hard links share one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Fs {
    names: BTreeMap<RelPath, u32>,
    inodes: BTreeMap<u32, Ino>,
    next: u32,
}

impl Fs {
    fn get(&self, p: &[Vec<u8>]) -> Option<Ino> {
        self.names.get(p).map(|i| self.inodes[i])
    }
    fn add(&mut self, p: RelPath, kind: Kind, data: u32) -> u32 {
        self.next += 1;
        self.inodes.insert(self.next, Ino { kind, data, meta: 0 });
        self.names.insert(p, self.next);
        self.next
    }
    fn below(&self, p: &[Vec<u8>]) -> Vec<RelPath> {
        self.names.keys().filter(|k| k.len() > p.len() && k.starts_with(p)).cloned().collect()
    }
    fn children(&self, p: &[Vec<u8>]) -> Vec<Vec<u8>> {
        self.names.keys().filter(|k| k.len() == p.len() + 1 && k.starts_with(p)).map(|k| k[p.len()].clone()).collect()
    }
    /// Moves the subtree at `from` to `to`.
    fn mv(&mut self, from: &[Vec<u8>], to: &[Vec<u8>]) {
        let moved: Vec<(RelPath, u32)> =
            self.names.iter().filter(|(k, _)| k.starts_with(from)).map(|(k, v)| (k.clone(), *v)).collect();
        for (k, _) in &moved {
            self.names.remove(k);
        }
        for (k, v) in moved {
            let mut n = to.to_vec();
            n.extend_from_slice(&k[from.len()..]);
            self.names.insert(n, v);
        }
    }
}

/// The upper layer as the test keeps it.
#[derive(Clone, Debug, Default)]
struct Upper {
    fs: Fs,
    whiteouts: BTreeSet<RelPath>,
    opaque: BTreeSet<RelPath>,
    /// Metadata-only copies: the lower path whose data they show.
    metacopy: BTreeMap<u32, RelPath>,
}

struct Two<'a> {
    lower: &'a Fs,
    upper: &'a Upper,
}

impl Layers for Two<'_> {
    fn lower(&self, p: &[Vec<u8>]) -> Option<Kind> {
        self.lower.get(p).map(|i| i.kind)
    }
    fn upper(&self, p: &[Vec<u8>]) -> Node {
        if self.upper.whiteouts.contains(p) {
            Node::Whiteout
        } else {
            self.upper.fs.get(p).map_or(Node::Missing, |i| Node::Present(i.kind))
        }
    }
    fn opaque(&self, p: &[Vec<u8>]) -> bool {
        self.upper.opaque.contains(p)
    }
    fn lower_names(&self, p: &[Vec<u8>]) -> Vec<Vec<u8>> {
        self.lower.children(p)
    }
    fn upper_names(&self, p: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut v = self.upper.fs.children(p);
        v.extend(self.upper.whiteouts.iter().filter(|k| k.len() == p.len() + 1 && k.starts_with(p)).map(|k| k[p.len()].clone()));
        v
    }
    fn metacopy(&self, p: &[Vec<u8>]) -> bool {
        self.upper.fs.names.get(p).is_some_and(|i| self.upper.metacopy.contains_key(i))
    }
}

/// Carries out one action on the upper layer, checking what the plan promises.
fn act(lower: &Fs, up: &mut Upper, a: &Action, fresh: u32) {
    let parent_is_dir = |up: &Upper, p: &[Vec<u8>]| parent(p).is_none_or(|d| d.is_empty() || up.fs.get(&d).is_some_and(|i| i.kind == Kind::Dir));
    match a {
        Action::MkdirUp(p) => {
            assert!(parent_is_dir(up, p) && up.fs.get(p).is_none() && !up.whiteouts.contains(p), "{a:?}");
            let meta = lower.get(p).map_or(0, |i| i.meta);
            let n = up.fs.add(p.clone(), Kind::Dir, 0);
            up.fs.inodes.get_mut(&n).unwrap().meta = meta;
        }
        Action::CopyUp { path, data } => {
            let lo = lower.get(path).expect("copy-up of a lower entry");
            assert!(parent_is_dir(up, path), "{a:?}");
            match up.fs.names.get(path).copied() {
                // Filling in a metadata-only copy.
                Some(i) if *data && up.metacopy.contains_key(&i) => {
                    let from = up.metacopy.remove(&i).unwrap();
                    up.fs.inodes.get_mut(&i).unwrap().data = lower.get(&from).unwrap().data;
                }
                Some(_) => panic!("copy-up over an upper entry: {a:?}"),
                None => {
                    let n = up.fs.add(path.clone(), lo.kind, lo.data);
                    up.fs.inodes.get_mut(&n).unwrap().meta = lo.meta;
                    if !data && lo.kind == Kind::File {
                        up.metacopy.insert(n, path.clone());
                    }
                }
            }
        }
        Action::Create { path, kind } => {
            assert!(parent_is_dir(up, path) && up.fs.get(path).is_none() && !up.whiteouts.contains(path), "{a:?}");
            up.fs.add(path.clone(), *kind, fresh);
        }
        Action::RemoveUp(p) => {
            assert!(up.fs.get(p).is_some() || up.whiteouts.contains(p), "{a:?}");
            for k in up.fs.below(p).into_iter().chain([p.clone()]) {
                up.fs.names.remove(&k);
            }
            up.whiteouts.retain(|k| !k.starts_with(p));
            up.opaque.retain(|k| !k.starts_with(p));
        }
        Action::Whiteout(p) => {
            assert!(parent_is_dir(up, p) && up.fs.get(p).is_none() && !up.whiteouts.contains(p), "{a:?}");
            up.whiteouts.insert(p.clone());
        }
        Action::Opaque(p) => {
            assert!(up.fs.get(p).is_some_and(|i| i.kind == Kind::Dir), "{a:?}");
            up.opaque.insert(p.clone());
        }
        Action::RenameUp { from, to } => {
            assert!(up.fs.get(from).is_some() && up.fs.get(to).is_none() && !up.whiteouts.contains(to) && parent_is_dir(up, to), "{a:?}");
            up.fs.mv(from, to);
            let moved = |set: &mut BTreeSet<RelPath>| {
                let m: Vec<RelPath> = set.iter().filter(|k| k.starts_with(from)).cloned().collect();
                for k in m {
                    set.remove(&k);
                    let mut n = to.clone();
                    n.extend_from_slice(&k[from.len()..]);
                    set.insert(n);
                }
            };
            moved(&mut up.whiteouts);
            moved(&mut up.opaque);
        }
        Action::LinkUp { from, to } => {
            let i = *up.fs.names.get(from).expect("link of an upper entry");
            assert!(parent_is_dir(up, to) && up.fs.get(to).is_none() && !up.whiteouts.contains(to), "{a:?}");
            up.fs.names.insert(to.clone(), i);
        }
    }
}

/// The merged view as a plain filesystem: every path, its kind and versions (data of a
/// metadata-only copy read from the lower file).
fn merged(lower: &Fs, up: &Upper) -> BTreeMap<RelPath, (Kind, u32, u32)> {
    let two = Two { lower, upper: up };
    let mut out = BTreeMap::new();
    let mut todo: Vec<RelPath> = vec![Vec::new()];
    while let Some(d) = todo.pop() {
        for n in listing(&two, &d).expect("a directory") {
            let p = child(&d, &n);
            let s = lookup(&two, &p).expect("listed names exist");
            let ino = match s {
                Shown::Lower(_) => lower.get(&p).unwrap(),
                Shown::Upper { .. } => {
                    let i = up.fs.names[&p];
                    let mut ino = up.fs.inodes[&i];
                    if let Some(from) = up.metacopy.get(&i) {
                        ino.data = lower.get(from).unwrap().data;
                    }
                    ino
                }
            };
            assert_eq!(ino.kind, s.kind());
            out.insert(p.clone(), (ino.kind, if ino.kind == Kind::File { ino.data } else { 0 }, ino.meta));
            if s.kind() == Kind::Dir {
                todo.push(p);
            }
        }
    }
    out
}

fn view_of(fs: &Fs) -> BTreeMap<RelPath, (Kind, u32, u32)> {
    fs.names.iter().map(|(k, i)| {
        let ino = fs.inodes[i];
        (k.clone(), (ino.kind, if ino.kind == Kind::File { ino.data } else { 0 }, ino.meta))
    }).collect()
}

/// The same change on the plain filesystem: its errno, as the kernel would give it.
fn apply_model(m: &mut Fs, c: &Change, fresh: u32) -> Result<(), viewos_abi::Errno> {
    use viewos_abi::Errno;
    let dir_ok = |m: &Fs, p: &[Vec<u8>]| -> Result<(), Errno> {
        let d = parent(p).ok_or(Errno::EBUSY)?;
        if d.is_empty() {
            return Ok(());
        }
        match m.get(&d) {
            None => Err(Errno::ENOENT),
            Some(i) if i.kind != Kind::Dir => Err(Errno::ENOTDIR),
            Some(_) => Ok(()),
        }
    };
    match c {
        Change::Create { path, kind } => {
            dir_ok(m, path)?;
            if m.get(path).is_some() {
                return Err(Errno::EEXIST);
            }
            m.add(path.clone(), *kind, fresh);
        }
        Change::Modify { path, data } => {
            let i = *m.names.get(path).ok_or(Errno::ENOENT)?;
            let ino = m.inodes.get_mut(&i).unwrap();
            if *data && ino.kind == Kind::File { ino.data = fresh } else { ino.meta = fresh }
        }
        Change::Remove { path, dir } => {
            if path.is_empty() {
                return Err(Errno::EBUSY);
            }
            let ino = m.get(path).ok_or(Errno::ENOENT)?;
            match (ino.kind == Kind::Dir, dir) {
                (false, true) => return Err(Errno::ENOTDIR),
                (true, false) => return Err(Errno::EISDIR),
                (true, true) if !m.children(path).is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
            m.names.remove(path);
        }
        Change::Rename { from, to, noreplace } => {
            if from.is_empty() || to.is_empty() {
                return Err(Errno::EBUSY);
            }
            let src = m.get(from).ok_or(Errno::ENOENT)?;
            dir_ok(m, to)?;
            if to.len() > from.len() && to.starts_with(from) {
                return Err(Errno::EINVAL);
            }
            if let Some(d) = m.get(to) {
                if *noreplace {
                    return Err(Errno::EEXIST);
                }
                if from == to {
                    return Ok(());
                }
                match (src.kind == Kind::Dir, d.kind == Kind::Dir) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if !m.children(to).is_empty() => return Err(Errno::ENOTEMPTY),
                    _ => {}
                }
            }
            if from.starts_with(to) {
                return Err(Errno::ENOTEMPTY);
            }
            m.names.remove(to);
            m.mv(from, to);
        }
        Change::Link { from, to } => {
            let src = m.get(from).ok_or(Errno::ENOENT)?;
            if src.kind == Kind::Dir {
                return Err(Errno::EPERM);
            }
            dir_ok(m, to)?;
            if m.get(to).is_some() {
                return Err(Errno::EEXIST);
            }
            let i = m.names[from];
            m.names.insert(to.clone(), i);
        }
    }
    Ok(())
}

/// After the plan, the guest's change itself lands on the (now upper) entry.
fn finish_cow(lower: &Fs, up: &mut Upper, c: &Change, fresh: u32) {
    if let Change::Modify { path, data } = c {
        let two = Two { lower, upper: up };
        match lookup(&two, path) {
            Some(Shown::Upper { .. }) => {}
            other => panic!("modify of {path:?} left it {other:?}"),
        }
        let i = up.fs.names[path];
        let ino = up.fs.inodes.get_mut(&i).unwrap();
        if *data && ino.kind == Kind::File {
            assert!(!up.metacopy.contains_key(&i), "data written to a metadata-only copy");
            ino.data = fresh;
        } else {
            ino.meta = fresh;
        }
    }
}

// Few names, so that changes keep meeting each other (and the lower tree).
const NAMES: [&[u8]; 2] = [b"a", b"b"];

fn rel() -> impl Strategy<Value = RelPath> {
    proptest::collection::vec(0usize..2, 1..4).prop_map(|v| v.into_iter().map(|i| NAMES[i].to_vec()).collect())
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::File), Just(Kind::Dir), Just(Kind::Dir), Just(Kind::Symlink)]
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (rel(), kind()).prop_map(|(path, kind)| Change::Create { path, kind }),
        (rel(), any::<bool>()).prop_map(|(path, data)| Change::Modify { path, data }),
        (rel(), any::<bool>()).prop_map(|(path, dir)| Change::Remove { path, dir }),
        (rel(), rel(), any::<bool>()).prop_map(|(from, to, noreplace)| Change::Rename { from, to, noreplace }),
        (rel(), rel()).prop_map(|(from, to)| Change::Link { from, to }),
    ]
}

/// A lower tree: random creations applied to an empty filesystem (the failing ones skipped).
fn lower_tree() -> impl Strategy<Value = Fs> {
    proptest::collection::vec((rel(), kind()), 0..25).prop_map(|v| {
        let mut fs = Fs::default();
        for (i, (p, k)) in v.into_iter().enumerate() {
            let _ = apply_model(&mut fs, &Change::Create { path: p, kind: k }, 1000 + i as u32);
        }
        fs
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_merged_view_is_the_plain_filesystem(lower in lower_tree(), changes in proptest::collection::vec(change(), 1..40)) {
        let lower_before = lower.clone();
        let mut model = lower.clone();
        let mut up = Upper::default();
        let mut index = crate::Upper::new();
        for (step, c) in changes.iter().enumerate() {
            let fresh = 10_000 + step as u32;
            let expected = apply_model(&mut model, c, fresh);
            let planned = plan(&Two { lower: &lower, upper: &up }, c);
            match (expected, planned) {
                (Ok(()), Ok(actions)) => {
                    for a in &actions {
                        act(&lower, &mut up, a, fresh);
                        let copied = match a {
                            Action::CopyUp { path, .. } => lower.get(path).map(|i| i.kind),
                            _ => None,
                        };
                        index.apply(a, copied);
                    }
                    finish_cow(&lower, &mut up, c, fresh);
                }
                (Err(e), Err(f)) => prop_assert_eq!(e, f, "step {}: {:?}", step, c),
                (e, f) => prop_assert!(false, "step {}: {:?}: model {:?}, plan {:?}", step, c, e, f),
            }
            prop_assert_eq!(merged(&lower, &up), view_of(&model), "after step {}: {:?}", step, c);
            check_index(&lower, &up, &index)?;
        }
        prop_assert_eq!(&lower, &lower_before);
        check_status(&lower, &up, &model)?;
        // Committed, the lower tree shows exactly what the view showed.
        let committed = apply_commit(&lower, &up);
        prop_assert_eq!(view_of(&committed), view_of(&model), "commit: {:?}", commit(&Two { lower: &lower, upper: &up }));
    }
}

/// The in-memory index against the model's upper layer: the same names, kinds, whiteouts
/// and opaque marks, and `locate` naming the layer every lookup finds its entry in.
fn check_index(lower: &Fs, up: &Upper, index: &crate::Upper) -> Result<(), TestCaseError> {
    let two = Two { lower, upper: up };
    let mut paths: Vec<RelPath> = vec![Vec::new()];
    for depth in 0..3 {
        let next: Vec<RelPath> = paths.iter().filter(|p| p.len() == depth).flat_map(|p| NAMES.iter().map(move |n| child(p, n))).collect();
        paths.extend(next);
    }
    for p in &paths {
        // (The model says nothing of the root, which is always an upper directory.)
        if !p.is_empty() {
            prop_assert_eq!(index.node(p), two.upper(p), "node {:?}", p);
        }
        prop_assert_eq!(index.opaque(p), two.opaque(p), "opaque {:?}", p);
        prop_assert_eq!(index.metacopy(p), two.metacopy(p), "metacopy {:?}", p);
        let at = index.locate(p);
        match lookup(&two, p) {
            Some(Shown::Lower(_)) => prop_assert_eq!(at, crate::Layer::Lower, "{:?}", p),
            Some(Shown::Upper { .. }) => prop_assert_eq!(at, crate::Layer::Upper, "{:?}", p),
            // Nothing there: the layer named must not have it either.
            None => match at {
                crate::Layer::Gone => {}
                crate::Layer::Lower => prop_assert!(lower.get(p).is_none() || (1..p.len()).any(|d| lower.get(&p[..d]).is_some_and(|i| i.kind != Kind::Dir)), "{:?} shows a lower entry the view lacks", p),
                crate::Layer::Upper => prop_assert!(!matches!(two.upper(p), Node::Present(_)), "{:?} is in the upper layer but not the view", p),
            },
        }
    }
    Ok(())
}

/// `status` against the difference of the lower tree and the final model: exactly the
/// added and deleted paths; modified ones are in both, and every path whose kind, data or
/// metadata changed is among them.
fn check_status(lower: &Fs, up: &Upper, model: &Fs) -> Result<(), TestCaseError> {
    let got = status(&Two { lower, upper: up });
    let (before, after) = (view_of(lower), view_of(model));
    let of = |s: Status| got.iter().filter(|(_, t)| *t == s).map(|(p, _)| p.clone()).collect::<BTreeSet<RelPath>>();
    let added: BTreeSet<RelPath> = after.keys().filter(|p| !before.contains_key(*p)).cloned().collect();
    let deleted: BTreeSet<RelPath> = before.keys().filter(|p| !after.contains_key(*p)).cloned().collect();
    prop_assert_eq!(of(Status::Added), added, "status {:?}", got);
    prop_assert_eq!(of(Status::Deleted), deleted, "status {:?}", got);
    let modified = of(Status::Modified);
    for p in &modified {
        prop_assert!(before.contains_key(p) && after.contains_key(p), "{:?} modified but not in both", p);
    }
    for (p, v) in &after {
        if before.get(p).is_some_and(|b| b != v) {
            prop_assert!(modified.contains(p), "{:?} changed but not listed: {:?}", p, got);
        }
    }
    Ok(())
}

/// The commit carried out on a copy of the lower tree, as the adapter will: staged copies
/// of the merged entries first, then removals, directories and placements in order.
fn apply_commit(lower: &Fs, up: &Upper) -> Fs {
    let view = merged(lower, up);
    let mut out = lower.clone();
    let mut staged = BTreeMap::new();
    for step in commit(&Two { lower, upper: up }) {
        match step {
            Commit::Stage(p) => {
                staged.insert(p.clone(), view[&p]);
            }
            Commit::Remove(p) => {
                assert!(out.get(&p).is_some(), "remove of a missing lower {p:?}");
                for k in out.below(&p).into_iter().chain([p.clone()]) {
                    out.names.remove(&k);
                }
            }
            Commit::Mkdir(p) => {
                assert!(out.get(&p).is_none(), "mkdir over {p:?}");
                let n = out.add(p.clone(), Kind::Dir, 0);
                out.inodes.get_mut(&n).unwrap().meta = view[&p].2;
            }
            Commit::SetMeta(p) => {
                let i = out.names[&p];
                out.inodes.get_mut(&i).unwrap().meta = view[&p].2;
            }
            Commit::Place(p) => {
                assert!(out.get(&p).is_none(), "place over {p:?}");
                let (kind, data, meta) = staged[&p];
                let n = out.add(p.clone(), kind, data);
                out.inodes.get_mut(&n).unwrap().meta = meta;
            }
        }
    }
    out
}

#[test]
fn a_directory_rename_moves_both_layers() {
    let mut lower = Fs::default();
    for (p, k) in [(vec![b"d".to_vec()], Kind::Dir), (vec![b"d".to_vec(), b"x".to_vec()], Kind::File)] {
        lower.add(p, k, 7);
    }
    let mut up = Upper::default();
    let c = Change::Create { path: vec![b"d".to_vec(), b"y".to_vec()], kind: Kind::File };
    for a in plan(&Two { lower: &lower, upper: &up }, &c).unwrap() {
        act(&lower, &mut up, &a, 1);
    }
    let r = Change::Rename { from: vec![b"d".to_vec()], to: vec![b"e".to_vec()], noreplace: false };
    let actions = plan(&Two { lower: &lower, upper: &up }, &r).unwrap();
    assert!(actions.contains(&Action::CopyUp { path: vec![b"d".to_vec(), b"x".to_vec()], data: true }), "{actions:?}");
    assert_eq!(actions.last(), Some(&Action::Whiteout(vec![b"d".to_vec()])));
    for a in &actions {
        act(&lower, &mut up, a, 2);
    }
    let m = merged(&lower, &up);
    let names: Vec<String> = m.keys().map(|k| k.iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("/")).collect();
    assert_eq!(names, ["e", "e/x", "e/y"]);
}

/// Runs `changes` over `lower` and returns the merged view's paths.
fn run(lower: &Fs, changes: &[Change]) -> Vec<String> {
    let mut up = Upper::default();
    for (i, c) in changes.iter().enumerate() {
        for a in plan(&Two { lower, upper: &up }, c).unwrap_or_else(|e| panic!("{c:?}: {e:?}")) {
            act(lower, &mut up, &a, 100 + i as u32);
        }
        finish_cow(lower, &mut up, c, 100 + i as u32);
    }
    merged(lower, &up).keys().map(|k| k.iter().map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("/")).collect()
}

fn p(s: &str) -> RelPath {
    s.split('/').map(|c| c.as_bytes().to_vec()).collect()
}

#[test]
fn a_directory_made_again_does_not_show_the_old_one() {
    let mut lower = Fs::default();
    lower.add(p("d"), Kind::Dir, 0);
    lower.add(p("d/x"), Kind::File, 1);
    let seen = run(&lower, &[
        Change::Remove { path: p("d/x"), dir: false },
        Change::Remove { path: p("d"), dir: true },
        Change::Create { path: p("d"), kind: Kind::Dir },
    ]);
    assert_eq!(seen, ["d"]);
}

#[test]
fn a_directory_renamed_over_an_emptied_one_does_not_show_its_old_content() {
    let mut lower = Fs::default();
    lower.add(p("d"), Kind::Dir, 0);
    lower.add(p("e"), Kind::Dir, 0);
    lower.add(p("e/x"), Kind::File, 1);
    let seen = run(&lower, &[
        Change::Remove { path: p("e/x"), dir: false },
        Change::Rename { from: p("d"), to: p("e"), noreplace: false },
    ]);
    assert_eq!(seen, ["e"]);
}
