//! The copy-on-write overlay (`--cow DIR[:STORE]`) as a deterministic state machine.
//!
//! Two layers hold a tree each: the *lower* layer (the real directory, never written) and
//! the *upper* layer (the store). The upper layer may also hold *whiteouts* (a name deleted
//! in the view) and mark directories *opaque* (nothing below them comes from the lower layer).
//! The merged view is what the guest sees:
//! - a name whose upper entry is a whiteout does not exist;
//! - a name present in the upper layer is the upper one; if both layers have a directory
//!   there and the upper one is not opaque, its listing merges both (upper first, no
//!   duplicates, whiteouts taken out);
//! - otherwise the lower entry shows, unless some ancestor's upper entry is opaque, not a
//!   directory, or a whiteout.
//!
//! [`plan`] turns a change the guest makes to the merged view into [`Action`]s on the upper
//! layer: copy-ups (of a file with its data and metadata, or of a directory's metadata),
//! creations, whiteouts, opaque marks, removals and renames inside the upper layer. The
//! lower layer is only ever read. The layers are reached through the [`Layers`] oracle, so
//! the adapter asks the host and tests ask a model. A guest error is an `Errno`, decided
//! before any action (the plan is all or nothing).
//!
//! [`Upper`] is the upper layer's names as the monitor keeps them in memory, and
//! [`Upper::locate`] which layer's file a path of the view is.
//!
//! [`status`] says what differs from the lower layer and [`commit`] how to make the lower
//! tree show the merged view, both from the upper layer alone; [`store`] is how the upper
//! layer is kept on disk.
//!
//! Renaming a directory (which overlayfs refuses with `EXDEV` without `redirect_dir`) copies
//! up the whole merged subtree first, then renames inside the upper layer and marks the new
//! directory opaque: it is then entirely in the upper layer.
#![forbid(unsafe_code)]

mod commit;
mod index;
mod merge;
mod plan;
pub mod store;

pub use commit::{Commit, Status, commit, status};
pub use index::{Layer, Upper};
pub use merge::{Layers, Node, Shown, listing, lookup};
pub use plan::{Action, Change, plan};

/// A path below the overlay's root, as its components (empty: the root itself).
pub type RelPath = Vec<Vec<u8>>;

/// What a layer holds at a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// The parent of a path (`None` for the root).
pub fn parent(p: &[Vec<u8>]) -> Option<RelPath> {
    p.split_last().map(|(_, rest)| rest.to_vec())
}

/// `p` and then `name`.
pub fn child(p: &[Vec<u8>], name: &[u8]) -> RelPath {
    let mut c = p.to_vec();
    c.push(name.to_vec());
    c
}

#[cfg(test)]
mod tests;
