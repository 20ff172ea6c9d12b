//! `ViewTree`: views nested in views. A view forked from another starts as a copy of its
//! table and changes on its own: nothing done to a child reaches its parent or siblings.

use crate::View;

/// A view in a [`ViewTree`]. Ids are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ViewId(u32);

/// A tree of views.
///
/// A child is a snapshot of its parent at [`fork`](ViewTree::fork) time, like a mount
/// namespace created with private propagation: later changes to the parent do not reach it
/// either, so what a nested view shows never changes under it except by its own changes.
/// A child's bind sources are host paths: to let a guest nest a view, resolve the source it
/// names in the parent view first (which fails for a hidden path), then bind the result.
#[derive(Clone, Debug)]
pub struct ViewTree {
    nodes: Vec<(Option<ViewId>, View)>,
}

impl ViewTree {
    /// The tree's root view.
    pub const ROOT: ViewId = ViewId(0);

    /// A tree holding only `root` (as [`ViewTree::ROOT`]).
    pub fn new(root: View) -> ViewTree {
        ViewTree { nodes: vec![(None, root)] }
    }

    /// A new child of `parent`, starting as a copy of its table; `None` if `parent` is not
    /// in this tree.
    pub fn fork(&mut self, parent: ViewId) -> Option<ViewId> {
        let view = self.get(parent)?.clone();
        let id = ViewId(u32::try_from(self.nodes.len()).ok()?);
        self.nodes.push((Some(parent), view));
        Some(id)
    }

    pub fn get(&self, id: ViewId) -> Option<&View> {
        self.nodes.get(id.0 as usize).map(|(_, v)| v)
    }

    /// The view, to change it; its children are not affected.
    pub fn get_mut(&mut self, id: ViewId) -> Option<&mut View> {
        self.nodes.get_mut(id.0 as usize).map(|(_, v)| v)
    }

    /// The view `id` was forked from; `None` for the root (or an unknown id).
    pub fn parent(&self, id: ViewId) -> Option<ViewId> {
        self.nodes.get(id.0 as usize)?.0
    }
}
