//! `/proc` as one guest process sees it through the monitor's resolver: `/proc/self` and
//! `/proc/thread-self` name the *guest* (the monitor's own would name the monitor), and the
//! magic links (`/proc/PID/{cwd,root,exe}`, `/proc/PID/fd/N`, `/proc/PID/map_files/RANGE`, and
//! the same under `task/TID`)
//! read as the guest path of their target, or not at all when the view does not show it;
//! a target without a path (`pipe:[N]`) reads as the kernel says it.

use viewos_abi::Errno;
use viewos_path::{Fs, HostPath, Kind, View};

use super::Host;
use crate::hostop::is_virtual;
use crate::process::{Processes, Tid};

/// The host filesystem for lookups made on behalf of thread `tid` of process `tgid`.
pub struct GuestFs<'a> {
    pub host: &'a dyn Host,
    pub view: &'a View,
    pub tgid: i32,
    pub tid: i32,
    /// The guests' cwds (the kernel does not know those in the monitor's own filesystems).
    pub procs: &'a Processes,
}

impl GuestFs<'_> {
    /// `/proc/PID/cwd` (or `task/TID/cwd`) of a guest whose cwd lies in one of the
    /// monitor's own filesystems, which only the monitor knows: its path in the guest's
    /// namespace. `None` for anything else.
    fn virtual_cwd(&self, host: &[u8]) -> Option<Vec<u8>> {
        let parts: Vec<&[u8]> = host.split(|&b| b == b'/').skip(1).collect();
        let id = match parts.as_slice() {
            [b"proc", pid, b"cwd"] => pid,
            [b"proc", _, b"task", tid, b"cwd"] => tid,
            _ => return None,
        };
        let tid: i32 = std::str::from_utf8(id).ok()?.parse().ok()?;
        let fs = self.procs.fs(Tid(tid))?;
        let cwd = viewos_path::GuestPath::new(fs.cwd.clone()).ok()?;
        if !self.view.translate(&cwd).is_some_and(|h| is_virtual(h.as_bytes())) {
            return None;
        }
        // As the process itself sees it: below its root after a chroot.
        match fs.cwd.strip_prefix(fs.root.as_slice()) {
            Some(rest) if fs.root != b"/" && rest.first() == Some(&b'/') => Some(rest.to_vec()),
            Some([]) if fs.root != b"/" => Some(b"/".to_vec()),
            _ => Some(fs.cwd.clone()),
        }
    }
}

fn is_number(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

/// True for `/proc/PID/{cwd,root,exe}`, `/proc/PID/fd/N` and their `task/TID/` forms.
pub fn is_magic(host: &[u8]) -> bool {
    let parts: Vec<&[u8]> = host.split(|&b| b == b'/').skip(1).collect();
    let rest = match parts.as_slice() {
        [b"proc", pid, rest @ ..] if is_number(pid) => rest,
        _ => return false,
    };
    let rest = match rest {
        [b"task", tid, rest @ ..] if is_number(tid) => rest,
        _ => rest,
    };
    matches!(rest, [b"cwd" | b"root" | b"exe"]) || matches!(rest, [b"fd", n] if is_number(n)) || matches!(rest, [b"map_files", r] if is_range(r))
}

/// `START-END` in hex, as a `map_files` entry is named.
fn is_range(b: &[u8]) -> bool {
    let mut halves = b.splitn(2, |&c| c == b'-');
    let hex = |h: Option<&[u8]>| h.is_some_and(|h| !h.is_empty() && h.iter().all(u8::is_ascii_hexdigit));
    hex(halves.next()) && hex(halves.next())
}

/// True for `/proc/PID/mem` and `/proc/PID/task/TID/mem`.
pub fn is_mem(host: &[u8]) -> bool {
    let parts: Vec<&[u8]> = host.split(|&b| b == b'/').skip(1).collect();
    match parts.as_slice() {
        [b"proc", pid, b"mem"] => is_number(pid),
        [b"proc", pid, b"task", tid, b"mem"] => is_number(pid) && is_number(tid),
        _ => false,
    }
}

impl Fs for GuestFs<'_> {
    fn lstat(&self, host: &HostPath) -> Result<Kind, Errno> {
        self.host.lstat(host)
    }

    fn readlink(&self, host: &HostPath) -> Result<Vec<u8>, Errno> {
        match host.as_bytes() {
            b"/proc/self" => Ok(self.tgid.to_string().into_bytes()),
            b"/proc/thread-self" => Ok(format!("{}/task/{}", self.tgid, self.tid).into_bytes()),
            h if is_magic(h) => {
                if let Some(cwd) = self.virtual_cwd(h) {
                    return Ok(cwd);
                }
                let target = self.host.readlink(host)?;
                if target.first() != Some(&b'/') {
                    // `pipe:[N]`, `socket:[N]`, `anon_inode:...`: no path to translate.
                    return Ok(target);
                }
                let target = HostPath::new(target).map_err(|_| Errno::ENOENT)?;
                self.view.untranslate(&target).map(|g| g.into_bytes()).ok_or(Errno::ENOENT)
            }
            _ => self.host.readlink(host),
        }
    }

    fn is_magic_link(&self, host: &HostPath) -> bool {
        is_magic(host.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::{is_magic, is_mem};

    #[test]
    fn mem_files_are_recognised() {
        assert!(is_mem(b"/proc/12/mem") && is_mem(b"/proc/12/task/13/mem"));
        assert!(!is_mem(b"/proc/self/mem") && !is_mem(b"/proc/12/maps") && !is_mem(b"/tmp/proc/1/mem"));
    }

    #[test]
    fn magic_links_are_recognised() {
        for m in ["/proc/1/cwd", "/proc/12/root", "/proc/3/exe", "/proc/4/fd/0", "/proc/5/task/6/cwd", "/proc/5/task/6/fd/10", "/proc/7/map_files/7f00-7f01"] {
            assert!(is_magic(m.as_bytes()), "{m}");
        }
        for n in ["/proc/self", "/proc/1/status", "/proc/1/fd", "/proc/x/cwd", "/proc/1/fd/x", "/home/proc/1/cwd", "/proc/1/task/cwd", "/proc/1/map_files/x-y", "/proc/1/map_files"] {
            assert!(!is_magic(n.as_bytes()), "{n}");
        }
    }
}
