//! What changed (`viewos cow status STORE`) and how to make the real tree what the view
//! shows (`viewos cow commit STORE`), both from the layers alone: only paths the upper layer
//! holds or whites out can differ from the lower layer, so neither walks the lower tree.

use std::collections::BTreeSet;

use crate::merge::{Layers, Node, Shown, lookup};
use crate::{Kind, RelPath, child};

/// How a path of the merged view differs from the lower layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Not in the lower layer.
    Added,
    /// In both: copied up (its content, metadata or kind may have changed).
    Modified,
    /// In the lower layer only.
    Deleted,
}

/// One step of a commit, in order: every `Stage` first (a copy of the merged entry's
/// content and metadata, taken before the lower tree changes, so that a metadata-only copy
/// still reads its lower file), then the others top-down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Commit {
    /// Keep a copy of the merged file or symlink at this path.
    Stage(RelPath),
    /// Remove the lower entry (a directory with all below it).
    Remove(RelPath),
    /// Make a lower directory with the merged directory's metadata.
    Mkdir(RelPath),
    /// Give the lower directory the merged directory's metadata.
    SetMeta(RelPath),
    /// Put the staged copy at this path (which is then free in the lower tree).
    Place(RelPath),
}

/// Every path that differs, in path order: below a deleted or replaced directory, each
/// lower path is listed too.
pub fn status(l: &dyn Layers) -> Vec<(RelPath, Status)> {
    // The paths that may differ: those the upper layer holds or whites out, and the lower
    // content of what it deletes or replaces (a whiteout, an opaque directory, another kind).
    let mut touched = BTreeSet::new();
    let mut todo: Vec<RelPath> = vec![Vec::new()];
    while let Some(dir) = todo.pop() {
        for n in l.upper_names(&dir) {
            let c = child(&dir, &n);
            let node = l.upper(&c);
            let lo = l.lower(&c);
            let hides_lower = match node {
                Node::Whiteout => true,
                Node::Present(k) => lo.is_some() && (k != Kind::Dir || lo != Some(Kind::Dir) || l.opaque(&c)),
                Node::Missing => false,
            };
            if hides_lower {
                let mut below = Vec::new();
                lower_below(l, &c, &mut below);
                touched.extend(below);
            }
            if node == Node::Present(Kind::Dir) {
                todo.push(c.clone());
            }
            touched.insert(c);
        }
    }
    touched
        .into_iter()
        .filter_map(|p| {
            let s = match (l.lower(&p).is_some(), lookup(l, &p)) {
                (true, None) => Status::Deleted,
                (false, Some(_)) => Status::Added,
                (true, Some(Shown::Upper { .. })) => Status::Modified,
                _ => return None,
            };
            Some((p, s))
        })
        .collect()
}

/// All lower paths below `p` (not `p` itself).
fn lower_below(l: &dyn Layers, p: &RelPath, out: &mut Vec<RelPath>) {
    if l.lower(p) != Some(Kind::Dir) && !p.is_empty() {
        return;
    }
    for n in l.lower_names(p) {
        let c = child(p, &n);
        out.push(c.clone());
        lower_below(l, &c, out);
    }
}

/// The steps that make the lower tree show exactly what the merged view shows.
pub fn commit(l: &dyn Layers) -> Vec<Commit> {
    let mut stage = Vec::new();
    let mut steps = Vec::new();
    walk_commit(l, &Vec::new(), false, &mut stage, &mut steps);
    stage.into_iter().map(Commit::Stage).chain(steps).collect()
}

fn walk_commit(l: &dyn Layers, dir: &RelPath, lower_gone: bool, stage: &mut Vec<RelPath>, steps: &mut Vec<Commit>) {
    let lower = |p: &RelPath| if lower_gone { None } else { l.lower(p) };
    let mut names = l.upper_names(dir);
    names.sort();
    names.dedup();
    for n in names {
        let c = child(dir, &n);
        match l.upper(&c) {
            Node::Missing => {}
            Node::Whiteout => {
                if lower(&c).is_some() {
                    steps.push(Commit::Remove(c));
                }
            }
            Node::Present(Kind::Dir) => {
                let lo = lower(&c);
                let keep = lo == Some(Kind::Dir) && !l.opaque(&c);
                if keep {
                    steps.push(Commit::SetMeta(c.clone()));
                } else {
                    if lo.is_some() {
                        steps.push(Commit::Remove(c.clone()));
                    }
                    steps.push(Commit::Mkdir(c.clone()));
                }
                walk_commit(l, &c, !keep, stage, steps);
            }
            Node::Present(_) => {
                stage.push(c.clone());
                if lower(&c).is_some() {
                    steps.push(Commit::Remove(c.clone()));
                }
                steps.push(Commit::Place(c));
            }
        }
    }
}
