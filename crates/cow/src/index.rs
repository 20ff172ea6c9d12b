//! The upper layer as the monitor keeps it in memory: every name the store holds, its
//! kind, the whiteouts and the opaque marks. The store is written only by the monitor (a
//! guest reaches it through the view, never by its own path), so the index, loaded once
//! from the store and changed with each step the monitor takes, says what is there without
//! asking the host. Reads in a cow view then need no host call beyond the guest's own:
//! [`Upper::locate`] says which layer's file a path is.

use std::collections::BTreeMap;

use crate::merge::Node;
use crate::plan::Action;
use crate::{Kind, RelPath};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Dir {
    opaque: bool,
    entries: BTreeMap<Vec<u8>, Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    Whiteout,
    Other(Kind),
    /// A regular file copied up without its data (a metadata-only copy): its content is
    /// still the lower file's.
    Meta,
    Dir(Dir),
}

impl Entry {
    fn node(&self) -> Node {
        match self {
            Entry::Whiteout => Node::Whiteout,
            Entry::Other(k) => Node::Present(*k),
            Entry::Meta => Node::Present(Kind::File),
            Entry::Dir(_) => Node::Present(Kind::Dir),
        }
    }
}

/// Which layer's file a path of the merged view is (see [`Upper::locate`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// The upper layer's file at the same path (the host says the rest: it may be missing
    /// below an upper file, `ENOTDIR`).
    Upper,
    /// The lower layer's file at the same path, which may or may not exist: every upper
    /// directory on the way lets the lower layer show through.
    Lower,
    /// Nothing: deleted in the view, or below an opaque directory with no upper entry.
    Gone,
}

/// The upper layer's names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Upper {
    root: Dir,
}

impl Upper {
    pub fn new() -> Upper {
        Upper::default()
    }

    fn dir(&self, p: &[Vec<u8>]) -> Option<&Dir> {
        let mut d = &self.root;
        for c in p {
            match d.entries.get(c) {
                Some(Entry::Dir(sub)) => d = sub,
                _ => return None,
            }
        }
        Some(d)
    }

    fn dir_mut(&mut self, p: &[Vec<u8>]) -> Option<&mut Dir> {
        let mut d = &mut self.root;
        for c in p {
            match d.entries.get_mut(c) {
                Some(Entry::Dir(sub)) => d = sub,
                _ => return None,
            }
        }
        Some(d)
    }

    /// What the upper layer holds at `p` (the root is a directory).
    pub fn node(&self, p: &[Vec<u8>]) -> Node {
        let Some((name, dir)) = p.split_last() else { return Node::Present(Kind::Dir) };
        self.dir(dir).and_then(|d| d.entries.get(name)).map_or(Node::Missing, Entry::node)
    }

    /// Whether the upper directory `p` is opaque.
    pub fn opaque(&self, p: &[Vec<u8>]) -> bool {
        self.dir(p).is_some_and(|d| d.opaque)
    }

    /// The names in upper directory `p`, whiteouts included.
    pub fn names(&self, p: &[Vec<u8>]) -> Vec<Vec<u8>> {
        self.dir(p).map(|d| d.entries.keys().cloned().collect()).unwrap_or_default()
    }

    /// Whether nothing at all has changed (no name, no mark).
    pub fn is_empty(&self) -> bool {
        self.root.entries.is_empty() && !self.root.opaque
    }

    /// Which layer's file path `p` of the merged view is, from the index alone. A path
    /// that leaves the upper tree where the lower layer still shows through is the lower
    /// file at that path (whether it exists is the host's to say); one that ends on an
    /// upper entry, or goes below an upper non-directory, the upper file.
    pub fn locate(&self, p: &[Vec<u8>]) -> Layer {
        let mut d = &self.root;
        let mut lower_ok = !d.opaque;
        for c in p {
            match d.entries.get(c) {
                None => return if lower_ok { Layer::Lower } else { Layer::Gone },
                Some(Entry::Whiteout) => return Layer::Gone,
                Some(Entry::Other(_) | Entry::Meta) => return Layer::Upper,
                Some(Entry::Dir(sub)) => {
                    lower_ok &= !sub.opaque;
                    d = sub;
                }
            }
        }
        Layer::Upper
    }

    /// Records `kind` at `p` (its parent must be an upper directory; a whiteout there is
    /// replaced). A directory recorded over a directory keeps what it holds.
    pub fn set(&mut self, p: &[Vec<u8>], kind: Kind) {
        let Some((name, dir)) = p.split_last() else { return };
        let Some(d) = self.dir_mut(dir) else { return };
        let e = d.entries.entry(name.clone()).or_insert(Entry::Whiteout);
        match (kind, &*e) {
            (Kind::Dir, Entry::Dir(_)) => {}
            (Kind::Dir, _) => *e = Entry::Dir(Dir::default()),
            (k, _) => *e = Entry::Other(k),
        }
    }

    /// Whether the upper file at `p` is a metadata-only copy.
    pub fn metacopy(&self, p: &[Vec<u8>]) -> bool {
        let Some((name, dir)) = p.split_last() else { return false };
        matches!(self.dir(dir).and_then(|d| d.entries.get(name)), Some(Entry::Meta))
    }

    /// Records the regular file at `p` as a metadata-only copy.
    pub fn set_metacopy(&mut self, p: &[Vec<u8>]) {
        let Some((name, dir)) = p.split_last() else { return };
        if let Some(d) = self.dir_mut(dir) {
            d.entries.insert(name.clone(), Entry::Meta);
        }
    }

    /// Records a whiteout at `p` (whatever the upper layer had there goes).
    pub fn whiteout(&mut self, p: &[Vec<u8>]) {
        let Some((name, dir)) = p.split_last() else { return };
        if let Some(d) = self.dir_mut(dir) {
            d.entries.insert(name.clone(), Entry::Whiteout);
        }
    }

    /// Marks upper directory `p` opaque.
    pub fn set_opaque(&mut self, p: &[Vec<u8>]) {
        if let Some(d) = self.dir_mut(p) {
            d.opaque = true;
        }
    }

    /// Forgets the upper entry at `p` and all below it.
    pub fn remove(&mut self, p: &[Vec<u8>]) {
        let Some((name, dir)) = p.split_last() else { return };
        if let Some(d) = self.dir_mut(dir) {
            d.entries.remove(name);
        }
    }

    /// Moves the upper entry at `from` (and all below it) to `to`, replacing what was there.
    pub fn rename(&mut self, from: &[Vec<u8>], to: &[Vec<u8>]) {
        let (Some((fname, fdir)), Some((tname, tdir))) = (from.split_last(), to.split_last()) else { return };
        let Some(e) = self.dir_mut(fdir).and_then(|d| d.entries.remove(fname)) else { return };
        if let Some(d) = self.dir_mut(tdir) {
            d.entries.insert(tname.clone(), e);
        }
    }

    /// Records a step the monitor took on the store. `copied`: the kind of the lower entry
    /// a [`Action::CopyUp`] copied.
    pub fn apply(&mut self, a: &Action, copied: Option<Kind>) {
        match a {
            Action::MkdirUp(p) => self.set(p, Kind::Dir),
            Action::CopyUp { path, data } => match copied {
                Some(Kind::File) if !data && !self.metacopy(path) => self.set_metacopy(path),
                // A metadata-only copy stays one until its data is filled in.
                Some(Kind::File) if !data => {}
                Some(k) => self.set(path, k),
                None => {}
            },
            Action::Create { path, kind } => self.set(path, *kind),
            Action::RemoveUp(p) => self.remove(p),
            Action::Whiteout(p) => self.whiteout(p),
            Action::Opaque(p) => self.set_opaque(p),
            Action::RenameUp { from, to } => self.rename(from, to),
            Action::LinkUp { from, to } => {
                if let Node::Present(k) = self.node(from) {
                    self.set(to, k);
                }
            }
        }
    }

    /// Every entry, depth first, parents before children: its path and what it is (for
    /// saving or checking the index against the store).
    pub fn entries(&self) -> Vec<(RelPath, Node, bool)> {
        fn walk(d: &Dir, at: &mut RelPath, out: &mut Vec<(RelPath, Node, bool)>) {
            for (name, e) in &d.entries {
                at.push(name.clone());
                let opaque = matches!(e, Entry::Dir(sub) if sub.opaque);
                out.push((at.clone(), e.node(), opaque));
                if let Entry::Dir(sub) = e {
                    walk(sub, at, out);
                }
                at.pop();
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut Vec::new(), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RelPath {
        s.split('/').filter(|c| !c.is_empty()).map(|c| c.as_bytes().to_vec()).collect()
    }

    #[test]
    fn locate_follows_the_upper_tree_then_the_lower_one() {
        let mut u = Upper::new();
        assert_eq!(u.locate(&p("a/b")), Layer::Lower);
        u.set(&p("a"), Kind::Dir);
        u.set(&p("a/f"), Kind::File);
        u.whiteout(&p("a/gone"));
        assert_eq!(u.locate(&p("a")), Layer::Upper);
        assert_eq!(u.locate(&p("a/f")), Layer::Upper);
        assert_eq!(u.locate(&p("a/f/x")), Layer::Upper);
        assert_eq!(u.locate(&p("a/gone")), Layer::Gone);
        assert_eq!(u.locate(&p("a/gone/x")), Layer::Gone);
        assert_eq!(u.locate(&p("a/other/x")), Layer::Lower);
        u.set_opaque(&p("a"));
        assert_eq!(u.locate(&p("a/other")), Layer::Gone);
        assert_eq!(u.locate(&p("a/f")), Layer::Upper);
        u.rename(&p("a"), &p("b"));
        assert_eq!(u.node(&p("a")), Node::Missing);
        assert_eq!(u.node(&p("b/f")), Node::Present(Kind::File));
        assert!(u.opaque(&p("b")));
        u.set(&p("b"), Kind::Dir);
        assert_eq!(u.node(&p("b/f")), Node::Present(Kind::File), "a directory recorded again keeps its names");
        u.remove(&p("b"));
        assert!(u.is_empty());
    }
}
