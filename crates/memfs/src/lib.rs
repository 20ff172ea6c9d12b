//! An in-memory filesystem as pure state: what `--mount tmpfs:DST[:size=...,mode=...]`
//! serves, entirely inside the monitor.
//!
//! * Inodes ([`Ino`]) hold a regular file (sparse: only written pages take memory and count
//!   against the size limit), a directory, a symlink, or a special file (FIFO, socket,
//!   character or block device); owner, group, mode, link count, the four timestamps, and
//!   extended attributes.
//! * Directories keep their entries with a *cookie* each, given in creation order and
//!   never reused, so a listing read in pieces (`getdents` at an offset) neither repeats nor
//!   skips an entry that stays while others come and go, as tmpfs guarantees.
//! * An inode lives while it has a name or an open handle ([`MemFs::open`]/[`MemFs::close`]):
//!   a file unlinked while open stays readable and writable until its last close.
//! * The size limit (`size=`) is counted in pages of file data; a write or truncate that
//!   would exceed it fails with `ENOSPC` and changes nothing.
//! * Permission checks follow the kernel's for a caller [`Cred`] (owner, group, other bits;
//!   `privileged` has root's capabilities), including the sticky bit on directories.
//!
//! Every operation takes the time (`now`, nanoseconds since the epoch) as an input and
//! returns a guest error as [`Errno`]; nothing panics on any input.
#![forbid(unsafe_code)]

mod fs;

pub use fs::{Cred, Dirent, Ino, Kind, MemFs, Stat, StatFs, RENAME_EXCHANGE, RENAME_NOREPLACE};
pub use viewos_abi::Errno;

#[cfg(test)]
mod tests;
