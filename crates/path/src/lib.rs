//! Path resolution (namei) for views: the guest's paths looked up in the guest's namespace, as
//! Linux would look them up in a mount namespace built from the same bind mounts and chroot,
//! with only `lstat` and `readlink` asked of the host. Pure: no I/O, no `unsafe`.
//!
//! * [`GuestPath`] and [`HostPath`]: canonical absolute paths as bytes, one type per side.
//! * [`View`]: a mount table (root, binds `SRC:DST`, hidden paths), the translation of
//!   guest paths to host paths ([`View::translate`]) and back ([`View::untranslate`]);
//!   [`ViewTree`]: views nested in views.
//! * [`Fs`]: the oracle for the host filesystem (`lstat`, `readlink`, magic links);
//!   [`MemFs`]: an in-memory one for tests.
//! * [`resolve`]: the lookup; [`Flags`]: its options, from `open`/`*at`/`openat2` flags.
//!
//! # Semantics
//!
//! [`resolve`] walks the path one component at a time, as `fs/namei.c` does, over the
//! *guest* namespace: each component's guest path is translated through the view and the
//! host is asked about that one path. So a bind shows up exactly at its `DST` whatever the
//! layer below holds there, `..` is taken in the guest namespace (from a bind's root it goes
//! to the `DST`'s parent, and never above `/`), and a symlink's text is read as a *guest*
//! path: a relative target from the link's directory, an absolute one from the view's root.
//! A host path the view never shows cannot be reached by any spelling.
//!
//! The kernel's rules that apply, with its errnos:
//! * `PATH_MAX`: a path of 4096 bytes or more is `ENAMETOOLONG`; a component longer than
//!   `NAME_MAX` (255) is `ENAMETOOLONG` when it is looked up.
//! * An empty path is `ENOENT`, or with [`Flags::EMPTY_PATH`] names the dirfd (or cwd).
//! * A component that is not a directory with more to follow is `ENOTDIR`; a missing one is
//!   `ENOENT`. A missing *final* component is a success, [`Found::Missing`], with the host
//!   directory and name a creating call needs.
//! * A trailing slash requires a directory (`ENOTDIR` otherwise) and follows a final
//!   symlink even under [`Flags::NOFOLLOW`]; so does a symlink body's trailing slash when it
//!   ends the walk.
//! * Every symlink is followed except a final one under `NOFOLLOW`. The 41st symlink of one
//!   lookup is `ELOOP` ([`MAXSYMLINKS`]); an empty target is `ENOENT`.
//! * `openat2`: `BENEATH` with `IN_ROOT` is `EINVAL`; `BENEATH` turns an absolute path, an
//!   absolute symlink or `..` above the start into `EXDEV`; `IN_ROOT` makes the start the
//!   root; `NO_SYMLINKS` and `NO_MAGICLINKS` turn following into `ELOOP`; a magic link in a
//!   scoped lookup is `EXDEV`; `NO_XDEV` is `EXDEV` on crossing a mount of the view;
//!   `CACHED` is `EAGAIN` (the caller retries without it).
//! * A hidden path does not exist: looking it up or through it is `ENOENT`, and so is
//!   looking it up as a final component (it is *not* [`Found::Missing`], so nothing can be
//!   created in a hidden name's place on the host).
//!
//! Not modelled: permissions (search permission's `EACCES`, `fs.protected_symlinks`),
//! mount points inside the host directories the view is made of (they are plain
//! directories here, for `..` and `NO_XDEV`), and the `EAGAIN` a scoped kernel lookup gives
//! when a rename races with it.
//!
//! # Calling contract
//!
//! For each path argument of a trapped syscall, the adapter calls
//! `resolve(view, fs, cwd, dirfd, path, flags)` with the view the calling process is in, its
//! cwd and the dirfd's file as canonical guest paths it recorded from earlier lookups
//! (`chdir`, `open`), and the flags the call implies ([`Flags::from_open`],
//! [`Flags::from_at`], [`Flags::from_resolve`]). An `Err(errno)` is the guest's answer.
//! An `Ok` gives the host path to operate on and the guest path to record.
//!
//! Where the kernel reports a host path (`getcwd`, `/proc/self/{cwd,root,exe,fd/N}`, a
//! dirfd the monitor did not see opened), the adapter shows the guest
//! [`View::untranslate`] of it: a guest path that translates back to that host path, or
//! none when the view does not show it (outside the view, hidden, or shadowed by a bind),
//! so the guest is never told a path outside its namespace.
//!
//! The lookup and the syscall the adapter then makes are not atomic: a guest that swaps a
//! directory for a symlink in between could redirect the host call. The host path is free of
//! symlinks below the mount's source when resolved, so the adapter should make its host call
//! refuse symlinks (`openat2` with `RESOLVE_NO_SYMLINKS` on the final path, or `O_NOFOLLOW`
//! for the final component) rather than trust it.
//!
//! The [`Fs`] oracle answers for the moment it is asked. A dirfd or cwd whose guest path no
//! longer exists (renamed or removed since it was opened) resolves as that path does now.
#![forbid(unsafe_code)]

mod flags;
mod fs;
mod memfs;
mod path;
mod resolve;
mod tree;
mod view;

pub use flags::{Flags, linux};
pub use fs::{Fs, Kind};
pub use memfs::MemFs;
pub use path::{GuestPath, HostPath, NAME_MAX, PATH_MAX};
pub use resolve::{Found, MAXSYMLINKS, Resolved, resolve};
pub use tree::{ViewId, ViewTree};
pub use view::{View, ViewError};
pub use viewos_abi::Errno;
