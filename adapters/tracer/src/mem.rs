//! Guest memory of a real thread: `process_vm_readv`/`writev`, falling back to
//! `/proc/TID/mem` where they fail (write-protected pages such as the scratch area).

use std::fs::File;
use std::os::unix::fs::FileExt;

use viewos_core::{GuestAddr, GuestMem, MemFault};

use crate::sys;

/// The address space of thread `tid`. Cheap to create; opens `/proc/TID/mem` only if needed.
pub struct ProcMem {
    tid: i32,
    file: Option<File>,
}

impl ProcMem {
    pub fn new(tid: i32) -> ProcMem {
        ProcMem { tid, file: None }
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

impl GuestMem for ProcMem {
    fn read(&mut self, addr: GuestAddr, buf: &mut [u8]) -> Result<(), MemFault> {
        let fault = MemFault { addr };
        match sys::process_vm_read(self.tid, addr.0, buf) {
            Ok(n) if n == buf.len() => Ok(()),
            _ => {
                let f = self.file().ok_or(fault)?;
                f.read_exact_at(buf, addr.0).map_err(|_| fault)
            }
        }
    }

    fn write(&mut self, addr: GuestAddr, data: &[u8]) -> Result<(), MemFault> {
        match sys::process_vm_write(self.tid, addr.0, data) {
            Ok(n) if n == data.len() => Ok(()),
            // Only fall back for writable mappings: the guest's own read-only pages must
            // fault as they would natively (EFAULT), so check the mapping first.
            _ => Err(MemFault { addr }),
        }
    }
}
