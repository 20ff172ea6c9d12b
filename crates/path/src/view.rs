//! `View`: one view's mount table (root, bind mounts, hidden paths), the translation of
//! canonical guest paths to host paths it defines, and its inverse for showing host paths
//! (a cwd, a `/proc/self/fd` link) to the guest.

use core::cmp::Reverse;
use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use crate::path::{internal, join, prefix_ends};
use crate::{GuestPath, HostPath};

/// Why a change to a view was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewError {
    /// The path named is hidden in this view (or a bind's source lies in a hidden host tree).
    Hidden,
    /// The change would hide the view's root.
    HidesRoot,
}

impl fmt::Display for ViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ViewError::Hidden => "the path is hidden in this view",
            ViewError::HidesRoot => "that would hide the view's root",
        })
    }
}

impl std::error::Error for ViewError {}

/// Where a guest path lives: its host path, and its mount as the length of the mount
/// point's prefix of the guest path (internal form, 0 for the root mount).
pub(crate) struct Location {
    pub host: HostPath,
    pub mount_len: usize,
}

/// A view's mount table.
///
/// * The **root** is the host directory the guest's `/` shows.
/// * A **bind** `SRC:DST` shows host `SRC` at guest `DST`. The most specific bind wins: a
///   guest path lives in the bind with the longest `DST` that is a prefix of it (whole
///   components), as if the binds were mounted shallowest first. `DST` is taken literally:
///   the mount point shadows whatever the layer below has there, even nothing or a symlink.
///   `..` at a bind's root goes to `DST`'s parent in the guest namespace, as with a real bind
///   mount. A bind at `/` replaces the root.
/// * A **hidden** path and everything below it do not exist. It is hidden by its guest path
///   *and* by the host path it showed when hidden, so another bind of the same host tree
///   (or of an ancestor) cannot reach it either. Hiding is final: no later bind, in this
///   view or one forked from it, makes a hidden path visible again.
///
/// Host paths should be canonical and symlink-free (`realpath`'d by whoever builds the view);
/// hiding compares them as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    root: HostPath,
    binds: BTreeMap<GuestPath, HostPath>,
    hidden_guest: BTreeSet<GuestPath>,
    hidden_host: BTreeSet<HostPath>,
}

impl View {
    /// A view of host directory `root`, with no binds and nothing hidden.
    pub fn new(root: HostPath) -> View {
        View { root, binds: BTreeMap::new(), hidden_guest: BTreeSet::new(), hidden_host: BTreeSet::new() }
    }

    /// The host directory shown at `/`.
    pub fn root(&self) -> &HostPath {
        &self.root
    }

    /// The binds, `(DST, SRC)`, in guest path order.
    pub fn binds(&self) -> impl Iterator<Item = (&GuestPath, &HostPath)> {
        self.binds.iter()
    }

    /// The hidden guest paths (those still in this view's namespace after a chroot).
    pub fn hidden(&self) -> impl Iterator<Item = &GuestPath> {
        self.hidden_guest.iter()
    }

    /// The host path a canonical guest path shows; `None` if it is hidden.
    pub fn translate(&self, guest: &GuestPath) -> Option<HostPath> {
        self.locate(internal(guest.as_bytes())).map(|l| l.host)
    }

    /// The guest path under which host path `host` is visible in this view: a `g` with
    /// `translate(g) == Some(host)`; `None` if there is none (`host` is outside the root and
    /// every bind's source, hidden, or shadowed wherever it would appear).
    ///
    /// A host path can be visible at several guest paths (a source bound twice, a bind of
    /// part of the root). The one returned comes through the mount with the longest source
    /// that is a prefix of `host`, the most specific one; among mounts with the same source,
    /// the least guest path in byte order. A candidate that does not translate back (another
    /// bind is mounted over it, or it is hidden) is skipped for the next.
    ///
    /// After a [`chroot`](View::chroot) only what the new root and the binds left below it
    /// show is visible: a host path outside them is `None`, never a path from the old
    /// namespace. (Where the kernel would name such a path anyway, e.g. `getcwd`'s
    /// `(unreachable)` prefix, the caller decides what the guest sees.)
    pub fn untranslate(&self, host: &HostPath) -> Option<GuestPath> {
        let root = GuestPath::root();
        let mut candidates: Vec<(usize, GuestPath)> = core::iter::once((&root, &self.root))
            .chain(&self.binds)
            .filter_map(|(dst, src)| {
                let rest = host.strip_prefix(src)?;
                Some((internal(src.as_bytes()).len(), GuestPath::from_canonical(join(dst.as_bytes(), rest))))
            })
            .collect();
        candidates.sort_by(|(a_len, a), (b_len, b)| (Reverse(a_len), a).cmp(&(Reverse(b_len), b)));
        candidates.into_iter().map(|(_, g)| g).find(|g| self.translate(g).as_ref() == Some(host))
    }

    /// The mount point (`DST` of a bind, or `/`) of the mount `guest` lives in; `None` if it
    /// is hidden.
    pub fn mount_point(&self, guest: &GuestPath) -> Option<GuestPath> {
        let g = internal(guest.as_bytes());
        self.locate(g).map(|l| GuestPath::from_canonical(g[..l.mount_len].to_vec()))
    }

    /// Shows host `src` at guest `dst`, replacing a bind already at `dst` (at `/`: replaces
    /// the root). `Hidden` if `dst` or `src` is hidden.
    pub fn bind(&mut self, src: HostPath, dst: GuestPath) -> Result<(), ViewError> {
        if self.is_guest_hidden(internal(dst.as_bytes())) || self.is_host_hidden(&src) {
            return Err(ViewError::Hidden);
        }
        if dst.is_root() {
            self.root = src;
        } else {
            self.binds.insert(dst, src);
        }
        Ok(())
    }

    /// Hides `guest` and everything below it. Hiding a path already hidden does nothing;
    /// `HidesRoot` if it would hide `/` (the path is `/`, or it shows a host directory the
    /// root lies in).
    pub fn hide(&mut self, guest: GuestPath) -> Result<(), ViewError> {
        if guest.is_root() {
            return Err(ViewError::HidesRoot);
        }
        let Some(loc) = self.locate(internal(guest.as_bytes())) else { return Ok(()) };
        if self.root.starts_with(&loc.host) {
            return Err(ViewError::HidesRoot);
        }
        self.hidden_guest.insert(guest);
        self.hidden_host.insert(loc.host);
        Ok(())
    }

    /// A virtual `chroot`: `guest` (a canonical path, resolved by the caller) becomes `/`.
    /// Binds and hidden paths below it move with it; those elsewhere leave the namespace,
    /// but hidden host trees stay hidden. `Hidden` if `guest` is hidden.
    pub fn chroot(&mut self, guest: &GuestPath) -> Result<(), ViewError> {
        let loc = self.locate(internal(guest.as_bytes())).ok_or(ViewError::Hidden)?;
        let rekey = |p: &GuestPath| p.strip_prefix(guest).filter(|rest| !rest.is_empty()).map(|rest| GuestPath::from_canonical(rest.to_vec()));
        self.binds = self.binds.iter().filter_map(|(dst, src)| Some((rekey(dst)?, src.clone()))).collect();
        self.hidden_guest = self.hidden_guest.iter().filter_map(rekey).collect();
        self.root = loc.host;
        Ok(())
    }

    /// Where the guest path `g` (internal form: `""` for `/`) lives; `None` if hidden.
    pub(crate) fn locate(&self, g: &[u8]) -> Option<Location> {
        let (mut src, mut mount_len) = (&self.root, 0);
        for end in prefix_ends(g) {
            let prefix = &g[..end];
            if self.hidden_guest.contains(prefix) {
                return None;
            }
            if let Some(s) = self.binds.get(prefix) {
                (src, mount_len) = (s, end);
            }
        }
        let host = HostPath::from_canonical(join(src.as_bytes(), &g[mount_len..]));
        if self.is_host_hidden(&host) {
            return None;
        }
        Some(Location { host, mount_len })
    }

    fn is_guest_hidden(&self, g: &[u8]) -> bool {
        !self.hidden_guest.is_empty() && prefix_ends(g).any(|end| self.hidden_guest.contains(&g[..end]))
    }

    fn is_host_hidden(&self, host: &HostPath) -> bool {
        let h = internal(host.as_bytes());
        !self.hidden_host.is_empty() && prefix_ends(h).any(|end| self.hidden_host.contains(&h[..end]))
    }
}
