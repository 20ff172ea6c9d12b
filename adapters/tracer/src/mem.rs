//! Guest memory of a real thread: `process_vm_readv`/`writev`, falling back to
//! `/proc/TID/mem` where cross-memory attach is unavailable. The scratch area (read-only
//! for the guest) is always written through `/proc/TID/mem`.

use std::fs::File;
use std::os::unix::fs::FileExt;

use viewos_core::{GuestAddr, GuestMem, MemFault};

use crate::sys;

/// The address space of thread `tid`. Cheap to create; opens `/proc/TID/mem` only if needed.
pub struct ProcMem {
    tid: i32,
    file: Option<File>,
    /// Something was read (what a recycled tid would make wrong: see `has_read`).
    read: bool,
}

impl ProcMem {
    pub fn new(tid: i32) -> ProcMem {
        ProcMem { tid, file: None, read: false }
    }

    /// Whether anything was read from the guest's memory (then a notified call's decision
    /// must be checked still to be the thread's: `SECCOMP_IOCTL_NOTIF_ID_VALID`).
    pub fn has_read(&self) -> bool {
        self.read
    }

    /// The thread whose memory this is.
    pub fn tid(&self) -> i32 {
        self.tid
    }

    /// With a `/proc/TID/mem` file opened earlier for the same address space.
    pub fn with_file(tid: i32, file: Option<File>) -> ProcMem {
        ProcMem { tid, file, read: false }
    }

    /// The `/proc/TID/mem` file, if it was opened, for reuse.
    pub fn into_file(self) -> Option<File> {
        self.file
    }

    fn file(&mut self) -> Option<&File> {
        if self.file.is_none() {
            self.file = File::options().read(true).write(true).open(format!("/proc/{}/mem", self.tid)).ok();
        }
        self.file.as_ref()
    }

    /// Writes through page protections (used for the read-only scratch area).
    pub fn force_write(&mut self, addr: GuestAddr, data: &[u8]) -> Result<(), MemFault> {
        let fault = MemFault { addr };
        let f = self.file().ok_or(fault)?;
        f.write_all_at(data, addr.0).map_err(|_| fault)
    }
}

/// True if cross-memory attach itself is unavailable (not built in, or refused by a
/// security module), as opposed to the guest's own memory faulting.
fn unavailable(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM))
}

impl GuestMem for ProcMem {
    fn read(&mut self, addr: GuestAddr, buf: &mut [u8]) -> Result<(), MemFault> {
        self.read = true;
        let fault = MemFault { addr };
        match sys::process_vm_read(self.tid, addr.0, buf) {
            Ok(n) if n == buf.len() => Ok(()),
            // Only when the mechanism is missing: `/proc/TID/mem` can read pages the guest
            // itself cannot (PROT_NONE), where the kernel would give the guest EFAULT.
            Err(e) if unavailable(&e) => {
                let f = self.file().ok_or(fault)?;
                f.read_exact_at(buf, addr.0).map_err(|_| fault)
            }
            _ => Err(fault),
        }
    }

    fn write(&mut self, addr: GuestAddr, data: &[u8]) -> Result<(), MemFault> {
        let fault = MemFault { addr };
        match sys::process_vm_write(self.tid, addr.0, data) {
            Ok(n) if n == data.len() => Ok(()),
            // Read-only guest pages fault as they would natively (EFAULT); `/proc/TID/mem`
            // (which writes through protections) is only the fallback for a missing mechanism.
            Err(e) if unavailable(&e) => self.force_write(addr, data),
            _ => Err(fault),
        }
    }
}
