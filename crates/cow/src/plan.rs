//! What a change to the merged view does to the upper layer.

use viewos_abi::Errno;

use crate::merge::{Layers, Node, Shown, listing, lookup};
use crate::{Kind, RelPath, child, parent};

/// A change the guest makes to the merged view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new entry (`open(O_CREAT)` of a missing name, `mknod`, `mkdir`, `symlink`).
    Create { path: RelPath, kind: Kind },
    /// A change to an existing entry: its data (`data`: an open for writing, `truncate`)
    /// or only its metadata (chmod, chown, utimes, xattrs).
    Modify { path: RelPath, data: bool },
    /// `unlink` (`dir` false) or `rmdir` (`dir` true).
    Remove { path: RelPath, dir: bool },
    /// `rename`; `noreplace`: `RENAME_NOREPLACE`.
    Rename { from: RelPath, to: RelPath, noreplace: bool },
    /// `link`: a new name for an existing non-directory.
    Link { from: RelPath, to: RelPath },
}

/// One step on the upper layer, in order. The adapter carries them out; the lower layer
/// is never written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Make the upper directory (with the lower directory's metadata, if it has one).
    MkdirUp(RelPath),
    /// Copy the lower entry up: a symlink with its target, a file with its metadata and,
    /// with `data`, its content (without: a metadata-only copy whose content is still read
    /// from the lower file). `data` on a metadata-only copy fills its content in.
    CopyUp { path: RelPath, data: bool },
    /// The guest's creation itself, made in the upper layer.
    Create { path: RelPath, kind: Kind },
    /// Remove the upper entry (a directory with everything in it, whiteouts included).
    RemoveUp(RelPath),
    /// Mark the name deleted.
    Whiteout(RelPath),
    /// Mark the upper directory opaque: nothing below it comes from the lower layer.
    Opaque(RelPath),
    /// Rename inside the upper layer (the target name is free in it).
    RenameUp { from: RelPath, to: RelPath },
    /// A hard link inside the upper layer.
    LinkUp { from: RelPath, to: RelPath },
}

/// The actions for `change`, or the errno the guest gets (then nothing is done).
pub fn plan(l: &dyn Layers, change: &Change) -> Result<Vec<Action>, Errno> {
    let mut p = Planner { l, out: Vec::new(), made: Vec::new() };
    match change {
        Change::Create { path, kind } => p.create(path, *kind)?,
        Change::Modify { path, data } => p.modify(path, *data)?,
        Change::Remove { path, dir } => p.remove(path, *dir)?,
        Change::Rename { from, to, noreplace } => p.rename(from, to, *noreplace)?,
        Change::Link { from, to } => p.link(from, to)?,
    }
    Ok(p.out)
}

struct Planner<'a> {
    l: &'a dyn Layers,
    out: Vec<Action>,
    /// Directories made in the upper layer by this plan (the oracle does not know them yet).
    made: Vec<RelPath>,
}

impl Planner<'_> {
    fn look(&self, p: &[Vec<u8>]) -> Option<Shown> {
        if self.made.iter().any(|m| m.as_slice() == p) {
            return Some(Shown::Upper { kind: Kind::Dir, merged: true });
        }
        lookup(self.l, p)
    }

    /// The existing directory `p` of the view, with every directory from the root to it
    /// present in the upper layer.
    fn upper_dirs(&mut self, p: &[Vec<u8>]) -> Result<(), Errno> {
        for depth in 1..=p.len() {
            let d = &p[..depth];
            match self.look(d) {
                None => return Err(Errno::ENOENT),
                Some(s) if s.kind() != Kind::Dir => return Err(Errno::ENOTDIR),
                Some(Shown::Lower(_)) => {
                    self.out.push(Action::MkdirUp(d.to_vec()));
                    self.made.push(d.to_vec());
                }
                Some(Shown::Upper { .. }) => {}
            }
        }
        Ok(())
    }

    /// The parent of `p` must be a directory of the view.
    fn parent_dir(&self, p: &[Vec<u8>]) -> Result<RelPath, Errno> {
        let dir = parent(p).ok_or(Errno::EBUSY)?;
        match self.look(&dir) {
            None => Err(Errno::ENOENT),
            Some(s) if s.kind() != Kind::Dir => Err(Errno::ENOTDIR),
            Some(_) => Ok(dir),
        }
    }

    /// Whether the lower layer's entry at `p` would show if the upper layer had nothing
    /// there (so removing the name needs a whiteout).
    fn lower_shows(&self, p: &[Vec<u8>]) -> bool {
        let Some(dir) = parent(p) else { return false };
        let through = match self.look(&dir) {
            Some(Shown::Lower(Kind::Dir)) => true,
            Some(Shown::Upper { kind: Kind::Dir, merged }) => merged,
            _ => false,
        };
        through && self.l.lower(p).is_some()
    }

    fn create(&mut self, path: &RelPath, kind: Kind) -> Result<(), Errno> {
        let dir = self.parent_dir(path)?;
        if self.look(path).is_some() {
            return Err(Errno::EEXIST);
        }
        self.upper_dirs(&dir)?;
        let whiteout = self.l.upper(path) == Node::Whiteout;
        if whiteout {
            self.out.push(Action::RemoveUp(path.clone()));
        }
        self.out.push(Action::Create { path: path.clone(), kind });
        // A new directory where the lower layer has an entry must not show its content.
        if kind == Kind::Dir && (whiteout || self.l.lower(path).is_some()) {
            self.out.push(Action::Opaque(path.clone()));
        }
        Ok(())
    }

    fn modify(&mut self, path: &RelPath, data: bool) -> Result<(), Errno> {
        let s = self.look(path).ok_or(Errno::ENOENT)?;
        match s {
            // A metadata-only copy gets its content before the content changes.
            Shown::Upper { kind: Kind::File, .. } if data && self.l.metacopy(path) => {
                self.out.push(Action::CopyUp { path: path.clone(), data: true });
                Ok(())
            }
            Shown::Upper { .. } => Ok(()),
            Shown::Lower(k) => {
                if let Some(dir) = parent(path) {
                    self.upper_dirs(&dir)?;
                }
                if k == Kind::Dir {
                    self.out.push(Action::MkdirUp(path.clone()));
                    self.made.push(path.clone());
                } else {
                    self.out.push(Action::CopyUp { path: path.clone(), data: data && k == Kind::File });
                }
                Ok(())
            }
        }
    }

    fn remove(&mut self, path: &RelPath, dir: bool) -> Result<(), Errno> {
        if path.is_empty() {
            return Err(Errno::EBUSY);
        }
        let s = self.look(path).ok_or(Errno::ENOENT)?;
        match (s.kind() == Kind::Dir, dir) {
            (false, true) => return Err(Errno::ENOTDIR),
            (true, false) => return Err(Errno::EISDIR),
            (true, true) if !listing(self.l, path).unwrap_or_default().is_empty() => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let shows = self.lower_shows(path);
        if matches!(self.l.upper(path), Node::Present(_)) {
            self.out.push(Action::RemoveUp(path.clone()));
        }
        if shows {
            let d = parent(path).expect("not the root");
            self.upper_dirs(&d)?;
            self.out.push(Action::Whiteout(path.clone()));
        }
        Ok(())
    }

    /// Copies the whole merged subtree at `p` into the upper layer.
    fn copy_tree(&mut self, p: &RelPath) {
        match self.look(p) {
            Some(Shown::Lower(Kind::Dir)) => {
                self.out.push(Action::MkdirUp(p.clone()));
                self.made.push(p.clone());
            }
            Some(Shown::Lower(k)) => {
                self.out.push(Action::CopyUp { path: p.clone(), data: k == Kind::File });
                return;
            }
            Some(Shown::Upper { kind: Kind::Dir, .. }) => {}
            Some(Shown::Upper { kind, .. }) => {
                if kind == Kind::File && self.l.metacopy(p) {
                    self.out.push(Action::CopyUp { path: p.clone(), data: true });
                }
                return;
            }
            None => return,
        }
        // A directory: its lower-only names, recursively.
        let names = listing(self.l, p).unwrap_or_default();
        for n in names {
            self.copy_tree(&child(p, &n));
        }
    }

    fn rename(&mut self, from: &RelPath, to: &RelPath, noreplace: bool) -> Result<(), Errno> {
        if from.is_empty() || to.is_empty() {
            return Err(Errno::EBUSY);
        }
        let src = self.look(from).ok_or(Errno::ENOENT)?;
        let to_dir = self.parent_dir(to)?;
        if to.len() > from.len() && to.starts_with(from) {
            return Err(Errno::EINVAL);
        }
        let dst = self.look(to);
        if let Some(d) = dst {
            if noreplace {
                return Err(Errno::EEXIST);
            }
            if from == to {
                return Ok(());
            }
            match (src.kind() == Kind::Dir, d.kind() == Kind::Dir) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !listing(self.l, to).unwrap_or_default().is_empty() => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        if from.starts_with(to) {
            // `to` is an ancestor of `from`: not empty, or it would not be one.
            return Err(Errno::ENOTEMPTY);
        }
        let from_shows = self.lower_shows(from);
        let from_dir = parent(from).expect("not the root");
        self.upper_dirs(&from_dir)?;
        self.upper_dirs(&to_dir)?;
        self.copy_tree(from);
        if matches!(self.l.upper(to), Node::Present(_) | Node::Whiteout) {
            self.out.push(Action::RemoveUp(to.clone()));
        }
        self.out.push(Action::RenameUp { from: from.clone(), to: to.clone() });
        if src.kind() == Kind::Dir {
            self.out.push(Action::Opaque(to.clone()));
        }
        if from_shows {
            self.out.push(Action::Whiteout(from.clone()));
        }
        Ok(())
    }

    fn link(&mut self, from: &RelPath, to: &RelPath) -> Result<(), Errno> {
        let src = self.look(from).ok_or(Errno::ENOENT)?;
        if src.kind() == Kind::Dir {
            return Err(Errno::EPERM);
        }
        let to_dir = self.parent_dir(to)?;
        if self.look(to).is_some() {
            return Err(Errno::EEXIST);
        }
        if let Some(d) = parent(from) {
            self.upper_dirs(&d)?;
        }
        self.upper_dirs(&to_dir)?;
        match src {
            Shown::Lower(k) => self.out.push(Action::CopyUp { path: from.clone(), data: k == Kind::File }),
            Shown::Upper { kind: Kind::File, .. } if self.l.metacopy(from) => {
                self.out.push(Action::CopyUp { path: from.clone(), data: true });
            }
            Shown::Upper { .. } => {}
        }
        if self.l.upper(to) == Node::Whiteout {
            self.out.push(Action::RemoveUp(to.clone()));
        }
        self.out.push(Action::LinkUp { from: from.clone(), to: to.clone() });
        Ok(())
    }
}

