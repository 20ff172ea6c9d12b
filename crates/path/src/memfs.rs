//! `MemFs`: an in-memory host filesystem for tests, implementing [`Fs`].

use std::cell::Cell;
use std::collections::BTreeMap;

use viewos_abi::Errno;

use crate::path::prefix_ends;
use crate::{Fs, HostPath, Kind};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Dir,
    File,
    Symlink { target: Vec<u8>, magic: bool },
}

/// A host filesystem in memory: a map from canonical host path to node, `/` always a
/// directory. Paths are taken literally: a symlink in the middle of a path is not followed
/// (`ENOTDIR`), which the resolver never needs (see [`Fs`]).
///
/// The builder methods create missing parent directories, like `mkdir -p`, and panic on a
/// path that is not canonical or whose parent is not a directory: they build test fixtures.
#[derive(Clone, Debug)]
pub struct MemFs {
    nodes: BTreeMap<Vec<u8>, Node>,
    lstats: Cell<u64>,
}

impl Default for MemFs {
    fn default() -> Self {
        Self::new()
    }
}

impl MemFs {
    /// A filesystem holding only `/`.
    pub fn new() -> Self {
        MemFs { nodes: BTreeMap::from([(b"/".to_vec(), Node::Dir)]), lstats: Cell::new(0) }
    }

    /// Adds a directory.
    pub fn dir(&mut self, path: impl AsRef<[u8]>) -> &mut Self {
        self.insert(path.as_ref(), Node::Dir)
    }

    /// Adds a regular file.
    pub fn file(&mut self, path: impl AsRef<[u8]>) -> &mut Self {
        self.insert(path.as_ref(), Node::File)
    }

    /// Adds a symlink to `target`.
    pub fn symlink(&mut self, path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> &mut Self {
        self.insert(path.as_ref(), Node::Symlink { target: target.as_ref().to_vec(), magic: false })
    }

    /// Adds a magic link (see [`Fs::is_magic_link`]) that reads as `target`.
    pub fn magic_link(&mut self, path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> &mut Self {
        self.insert(path.as_ref(), Node::Symlink { target: target.as_ref().to_vec(), magic: true })
    }

    /// How many times [`Fs::lstat`] was called.
    pub fn lstat_calls(&self) -> u64 {
        self.lstats.get()
    }

    fn insert(&mut self, path: &[u8], node: Node) -> &mut Self {
        let path = HostPath::new(path).unwrap_or_else(|e| panic!("MemFs: {}: {e}", path.escape_ascii()));
        let p = path.as_bytes();
        let ends: Vec<usize> = prefix_ends(p).collect();
        for &end in &ends[..ends.len().saturating_sub(1)] {
            match self.nodes.entry(p[..end].to_vec()).or_insert(Node::Dir) {
                Node::Dir => {}
                _ => panic!("MemFs: {}: not a directory", p[..end].escape_ascii()),
            }
        }
        self.nodes.insert(p.to_vec(), node);
        self
    }

    fn node(&self, host: &HostPath) -> Result<&Node, Errno> {
        let p = host.as_bytes();
        for end in prefix_ends(p) {
            let node = self.nodes.get(&p[..end]).ok_or(Errno::ENOENT)?;
            if end == p.len() {
                return Ok(node);
            }
            if *node != Node::Dir {
                return Err(Errno::ENOTDIR);
            }
        }
        Ok(&Node::Dir)
    }
}

impl Fs for MemFs {
    fn lstat(&self, host: &HostPath) -> Result<Kind, Errno> {
        self.lstats.set(self.lstats.get() + 1);
        Ok(match self.node(host)? {
            Node::Dir => Kind::Dir,
            Node::File => Kind::Other,
            Node::Symlink { .. } => Kind::Symlink,
        })
    }

    fn readlink(&self, host: &HostPath) -> Result<Vec<u8>, Errno> {
        match self.node(host)? {
            Node::Symlink { target, .. } => Ok(target.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn is_magic_link(&self, host: &HostPath) -> bool {
        matches!(self.node(host), Ok(Node::Symlink { magic: true, .. }))
    }
}
