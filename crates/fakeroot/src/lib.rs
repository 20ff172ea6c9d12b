//! fakeroot as pure state: what `-0/--fakeroot` makes processes believe.
//!
//! * [`Creds`]: one thread's virtual credentials (real, effective, saved and filesystem
//!   uid/gid, supplementary groups) and the kernel's rules for changing them
//!   (`kernel/sys.c`), with "privileged" meaning a virtual effective uid of 0 (the
//!   capabilities root has).
//! * [`Db`]: the ownership database. Keyed by file identity ([`FileKey`]: `st_dev`,
//!   `st_ino`), so every hard link of a file shares one entry; an entry holds what the view
//!   changed (owner, group, mode bits, and the type and device number of a device node kept
//!   on disk as an empty regular placeholder). The caller forgets an entry when the last
//!   link of its file goes ([`Db::forget`]), so a reused inode starts clean.
//! * [`Stat`]: the fields of `struct stat` / `struct statx` that fakeroot changes, read from
//!   and written back into the kernel's bytes, and [`Db::overlay`] which applies the view.
//! * [`state`]: the `--fakeroot-state` file format (parse never panics; a damaged or
//!   foreign file is an error, never a partial load).
//!
//! Files the database does not know are shown with their real owner, except that files
//! owned by the real (unprivileged) user who started the view are shown as owned by the
//! view's identity ([`Mapping`]): the files a view creates look like its own, as with
//! Debian's fakeroot (which shows every unknown file as root's).

#![forbid(unsafe_code)]

mod creds;
mod db;
pub mod state;
mod stat;

pub use creds::{Creds, NGROUPS_MAX};
pub use db::{Db, Entry, FileKey, Mapping};
pub use stat::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFMT, S_IFREG, Stat, StatLayout};
