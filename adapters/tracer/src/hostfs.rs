//! The host filesystem as the path view's resolver sees it: `lstat`, `readlink`, and the
//! host path behind a guest's fd (`/proc/TID/fd/N`).

use std::os::unix::ffi::{OsStrExt, OsStringExt};

use viewos_core::modules::Host;
use viewos_core::x86_64::flags::RESOLVE_NO_SYMLINKS;

use crate::sys::errno;
use viewos_core::{Errno, Tid};
use viewos_path::{Fs, HostPath, Kind};

/// The real filesystem, seen with the monitor's credentials.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostFs;


impl Fs for HostFs {
    fn lstat(&self, host: &HostPath) -> Result<Kind, Errno> {
        if let Some(r) = crate::cow::lstat(host.as_bytes()) {
            return r;
        }
        if let Some(r) = crate::vfs::lstat(host.as_bytes()) {
            return r;
        }
        let t = std::fs::symlink_metadata(std::ffi::OsStr::from_bytes(host.as_bytes())).map_err(errno)?.file_type();
        Ok(if t.is_dir() {
            Kind::Dir
        } else if t.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Other
        })
    }

    fn readlink(&self, host: &HostPath) -> Result<Vec<u8>, Errno> {
        if let Some(r) = crate::cow::readlink(host.as_bytes()) {
            return r;
        }
        if crate::vfs::active()
            && let Some(r) = crate::vfs::readlink(host.as_bytes())
        {
            return r;
        }
        let link = std::fs::read_link(std::ffi::OsStr::from_bytes(host.as_bytes())).map(|p| p.into_os_string().into_vec()).map_err(errno)?;
        if crate::vfs::maybe_ours(&link)
            && let Some(target) = crate::vfs::magic_target(host.as_bytes())
        {
            return Ok(target);
        }
        // A magic link to a file of a copy-on-write layer: the file's path in the view.
        if host.as_bytes().starts_with(b"/proc/")
            && let Some(v) = crate::cow::virtual_of(&link)
        {
            return Ok(v);
        }
        Ok(link)
    }
}

impl Host for HostFs {
    fn fd_path(&self, tid: Tid, fd: i32) -> Result<HostPath, Errno> {
        if fd < 0 {
            return Err(Errno::EBADF);
        }
        let link = std::fs::read_link(format!("/proc/{}/fd/{fd}", tid.0)).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOENT) { Errno::EBADF } else { errno(e) }
        })?;
        let link = link.into_os_string().into_vec();
        if crate::vfs::maybe_ours(&link)
            && let Some(r) = crate::vfs::fd_path(tid.0, fd)
        {
            return HostPath::new(r?).map_err(|_| Errno::ENOENT);
        }
        if let Some(v) = crate::cow::virtual_of(&link) {
            return HostPath::new(v).map_err(|_| Errno::ENOENT);
        }
        // Sockets, pipes and deleted files have no path to be relative to.
        HostPath::new(link).map_err(|_| Errno::ENOTDIR)
    }

    fn virtual_socket(&self, host: &HostPath, bind: Option<u32>) -> Result<Vec<u8>, Errno> {
        if let Some(r) = crate::cow::socket(host.as_bytes(), bind.is_some()) {
            return r;
        }
        crate::vfs::virtual_socket(host.as_bytes(), bind)
    }

    fn socket_bound(&self, host: &HostPath, ok: bool) {
        crate::vfs::socket_bound(host.as_bytes(), ok)
    }

    fn virtual_socket_name(&self, kernel: &[u8]) -> Option<Vec<u8>> {
        crate::cow::virtual_of(kernel).or_else(|| crate::vfs::virtual_socket_name(kernel))
    }

    fn virtual_name(&self, dev: u64, ino: u64) -> Option<Vec<u8>> {
        crate::vfs::name_of(dev, ino)
    }

    fn may_exec(&self, host: &HostPath) -> Result<(), Errno> {
        use std::os::fd::AsRawFd;
        let path = crate::vfs::exec_path(host.as_bytes()).unwrap_or_else(|| host.as_bytes().to_vec());
        let fd = crate::sys::openat2(libc::AT_FDCWD, &path, (libc::O_PATH | libc::O_CLOEXEC) as u64, 0, 0).map_err(errno)?;
        let st = crate::sys::fstat_bytes(fd.as_raw_fd()).map_err(errno)?;
        if crate::sys::stat_type(&st) != libc::S_IFREG {
            return Err(Errno::EACCES);
        }
        crate::sys::faccess_empty(fd.as_raw_fd(), libc::X_OK as u32, libc::AT_EACCESS as u32).map_err(errno)
    }

    fn may_enter_virtual(&self, host: &HostPath) -> Result<(), Errno> {
        if let Some(r) = crate::cow::may_enter(host.as_bytes()) {
            return r;
        }
        crate::vfs::may_enter(host.as_bytes())
    }

    fn file_contains(&self, host: &HostPath, needle: &[u8]) -> bool {
        use std::io::Read;
        let path = crate::vfs::exec_path(host.as_bytes()).unwrap_or_else(|| host.as_bytes().to_vec());
        let Ok(f) = std::fs::File::open(std::ffi::OsStr::from_bytes(&path)) else { return false };
        let mut data = Vec::new();
        // Loaders are a few hundred KiB; anything much larger is not one.
        if f.take(16 << 20).read_to_end(&mut data).is_err() || needle.is_empty() {
            return false;
        }
        data.windows(needle.len()).any(|w| w == needle)
    }

    fn may_chroot(&self, tid: Tid, host: &HostPath, virtual_caps: Option<bool>) -> Result<(), Errno> {
        match virtual_caps {
            // Root in the view may; its search permission is root's too.
            Some(true) => return Ok(()),
            Some(false) => return Err(Errno::EPERM),
            None => {}
        }
        const CAP_SYS_CHROOT: u32 = 18;
        let caps = crate::sys::ProcStatus::read(tid.0).ok_or(Errno::ESRCH)?.mask("CapEff:");
        if caps & (1 << CAP_SYS_CHROOT) == 0 {
            return Err(Errno::EPERM);
        }
        // Search permission on the new root, as the kernel checks it.
        use std::os::fd::AsRawFd;
        let fd = crate::sys::openat2(libc::AT_FDCWD, host.as_bytes(), (libc::O_PATH | libc::O_CLOEXEC) as u64, 0, RESOLVE_NO_SYMLINKS).map_err(errno)?;
        crate::sys::faccess_empty(fd.as_raw_fd(), libc::X_OK as u32, libc::AT_EACCESS as u32).map_err(errno)
    }

    fn read_head(&self, host: &HostPath) -> Vec<u8> {
        use std::io::Read;
        let mut head = Vec::with_capacity(4096);
        // A file of the monitor's own filesystems is read through the monitor's fd of it.
        let path = crate::vfs::exec_path(host.as_bytes()).unwrap_or_else(|| host.as_bytes().to_vec());
        if let Ok(f) = std::fs::File::open(std::ffi::OsStr::from_bytes(&path)) {
            let _ = f.take(4096).read_to_end(&mut head);
        }
        head
    }
}

impl viewos_core::modules::FakeHost for HostFs {
    fn exe_stat(&self, tgid: Tid) -> Option<Vec<u8>> {
        let fd = crate::sys::openat2(libc::AT_FDCWD, format!("/proc/{}/exe", tgid.0).as_bytes(), (libc::O_PATH | libc::O_CLOEXEC) as u64, 0, 0).ok()?;
        crate::sys::fstat_bytes(std::os::fd::AsRawFd::as_raw_fd(&fd)).ok().map(|b| b.to_vec())
    }
}
