//! Lookups and listings of the merged view.

use crate::{Kind, RelPath, child};

/// What the upper layer holds at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    Missing,
    Present(Kind),
    /// The name was deleted in the view.
    Whiteout,
}

/// The two layers, as the state machine asks about them.
pub trait Layers {
    /// The lower layer's entry at `p` (`None`: nothing there). Paths below a non-directory
    /// are `None`.
    fn lower(&self, p: &[Vec<u8>]) -> Option<Kind>;
    /// The upper layer's entry at `p`.
    fn upper(&self, p: &[Vec<u8>]) -> Node;
    /// Whether the upper directory at `p` is opaque.
    fn opaque(&self, p: &[Vec<u8>]) -> bool;
    /// Names in the lower directory `p`.
    fn lower_names(&self, p: &[Vec<u8>]) -> Vec<Vec<u8>>;
    /// Names (whiteouts included) in the upper directory `p`.
    fn upper_names(&self, p: &[Vec<u8>]) -> Vec<Vec<u8>>;
    /// Whether the upper file at `p` is a metadata-only copy (its content is the lower
    /// file's).
    fn metacopy(&self, _p: &[Vec<u8>]) -> bool {
        false
    }
}

/// Where a merged entry comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shown {
    /// Only in the lower layer (reads go there; a change copies it up first).
    Lower(Kind),
    /// In the upper layer; `merged`: a directory whose listing also shows the lower
    /// directory's names.
    Upper { kind: Kind, merged: bool },
}

impl Shown {
    pub fn kind(self) -> Kind {
        match self {
            Shown::Lower(k) | Shown::Upper { kind: k, .. } => k,
        }
    }
}

/// The merged entry at `p`, or `None` if it does not exist in the view.
pub fn lookup(l: &dyn Layers, p: &[Vec<u8>]) -> Option<Shown> {
    // Walk from the root: `lower_ok` stays true while the lower layer shows through.
    let mut lower_ok = true;
    let mut cur: RelPath = Vec::new();
    let mut shown = Some(Shown::Upper { kind: Kind::Dir, merged: !l.opaque(&cur) });
    if l.opaque(&cur) {
        lower_ok = false;
    }
    for c in p {
        match shown {
            Some(s) if s.kind() == Kind::Dir => {}
            _ => return None,
        }
        cur = child(&cur, c);
        let low = if lower_ok { l.lower(&cur) } else { None };
        shown = match l.upper(&cur) {
            Node::Whiteout => return None,
            Node::Present(Kind::Dir) => {
                let merged = low == Some(Kind::Dir) && !l.opaque(&cur);
                lower_ok = merged;
                Some(Shown::Upper { kind: Kind::Dir, merged })
            }
            Node::Present(k) => {
                lower_ok = false;
                Some(Shown::Upper { kind: k, merged: false })
            }
            Node::Missing => {
                let s = low.map(Shown::Lower);
                lower_ok = low == Some(Kind::Dir) && lower_ok;
                s
            }
        };
    }
    shown
}

/// The names of the merged directory `p` (sorted, no duplicates), or `None` if `p` is not
/// a directory in the view.
pub fn listing(l: &dyn Layers, p: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    let s = lookup(l, p)?;
    if s.kind() != Kind::Dir {
        return None;
    }
    let mut names: Vec<Vec<u8>> = Vec::new();
    let (upper, lower) = match s {
        Shown::Lower(_) => (false, true),
        Shown::Upper { merged, .. } => (true, merged),
    };
    if upper {
        names.extend(l.upper_names(p).into_iter().filter(|n| l.upper(&child(p, n)) != Node::Whiteout));
    }
    if lower {
        for n in l.lower_names(p) {
            if l.upper(&child(p, &n)) == Node::Missing {
                names.push(n);
            }
        }
    }
    names.sort();
    names.dedup();
    Some(names)
}
