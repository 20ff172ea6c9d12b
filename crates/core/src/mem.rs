//! Guest memory behind a trait, so every decision can be tested without a process.
//! The adapter implements it over `process_vm_readv` / `/proc/PID/mem`; tests use [`FakeMem`].

use std::collections::BTreeMap;

use viewos_abi::{Errno, GuestAddr};

/// Why a guest memory access failed. To the guest this is `EFAULT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemFault {
    /// The first address that could not be accessed.
    pub addr: GuestAddr,
}

impl From<MemFault> for Errno {
    fn from(_: MemFault) -> Errno {
        Errno::EFAULT
    }
}

/// Longest C string viewos reads from a guest (`PATH_MAX`).
pub const MAX_CSTR: usize = 4096;

/// Access to one guest thread's address space.
pub trait GuestMem {
    /// Fills `buf` from guest address `addr`, or fails without a partial promise.
    fn read(&mut self, addr: GuestAddr, buf: &mut [u8]) -> Result<(), MemFault>;

    /// Writes `data` at guest address `addr`.
    fn write(&mut self, addr: GuestAddr, data: &[u8]) -> Result<(), MemFault>;

    /// Reads a NUL-terminated string of at most `max` bytes (without the NUL).
    /// `Ok(None)` if no NUL was found within `max` bytes (ENAMETOOLONG for paths).
    fn read_cstr(&mut self, addr: GuestAddr, max: usize) -> Result<Option<Vec<u8>>, MemFault> {
        // Read page by page so an unmapped page after the string does not fail the read.
        let mut out = Vec::new();
        let mut at = addr.0;
        while out.len() < max {
            let page_left = 4096 - (at % 4096) as usize;
            let n = page_left.min(max + 1 - out.len());
            let mut chunk = vec![0u8; n];
            self.read(GuestAddr(at), &mut chunk)?;
            if let Some(nul) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(&chunk[..nul]);
                return Ok(Some(out));
            }
            out.extend_from_slice(&chunk);
            at = at.checked_add(n as u64).ok_or(MemFault { addr: GuestAddr(at) })?;
        }
        Ok(None)
    }
}

/// An in-memory guest address space made of disjoint mapped regions.
#[derive(Clone, Debug, Default)]
pub struct FakeMem {
    regions: BTreeMap<u64, Vec<u8>>,
}

impl FakeMem {
    /// An empty address space (every access faults).
    pub fn new() -> FakeMem {
        FakeMem::default()
    }

    /// Maps `data` at `addr`. Regions must not overlap.
    pub fn map(&mut self, addr: u64, data: Vec<u8>) -> &mut Self {
        self.regions.insert(addr, data);
        self
    }

    /// Maps a NUL-terminated copy of `s` at `addr`, padded with zeros to the end of the
    /// page, as a string in a real address space would be.
    pub fn map_cstr(&mut self, addr: u64, s: &[u8]) -> &mut Self {
        let mut v = s.to_vec();
        v.push(0);
        let end = (addr + v.len() as u64).next_multiple_of(4096);
        v.resize((end - addr) as usize, 0);
        self.map(addr, v)
    }

    fn locate(&mut self, addr: u64, len: usize) -> Result<(&mut Vec<u8>, usize), MemFault> {
        let fault = MemFault { addr: GuestAddr(addr) };
        let (&base, region) = self.regions.range_mut(..=addr).next_back().ok_or(fault)?;
        let off = (addr - base) as usize;
        if off.checked_add(len).is_none_or(|end| end > region.len()) {
            return Err(fault);
        }
        Ok((region, off))
    }
}

impl GuestMem for FakeMem {
    fn read(&mut self, addr: GuestAddr, buf: &mut [u8]) -> Result<(), MemFault> {
        let (region, off) = self.locate(addr.0, buf.len())?;
        buf.copy_from_slice(&region[off..off + buf.len()]);
        Ok(())
    }

    fn write(&mut self, addr: GuestAddr, data: &[u8]) -> Result<(), MemFault> {
        let (region, off) = self.locate(addr.0, data.len())?;
        region[off..off + data.len()].copy_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cstr_stops_at_nul_and_at_max() {
        let mut m = FakeMem::new();
        m.map_cstr(0x1000, b"/etc/passwd");
        assert_eq!(m.read_cstr(GuestAddr(0x1000), 4096).unwrap().unwrap(), b"/etc/passwd");
        assert_eq!(m.read_cstr(GuestAddr(0x1000), 4).unwrap(), None);
        assert!(m.read_cstr(GuestAddr(0x5000), 16).is_err());
    }

    #[test]
    fn cstr_ending_at_region_end_without_nul_faults() {
        let mut m = FakeMem::new();
        m.map(0x1000, b"abc".to_vec());
        assert!(m.read_cstr(GuestAddr(0x1000), 4096).is_err());
    }
}
