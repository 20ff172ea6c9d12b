//! `struct seccomp_data`: what a seccomp filter can see of a syscall, and its byte layout
//! (the only thing a filter can load from).

/// The input of a seccomp filter, laid out like the kernel's `struct seccomp_data`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeccompData {
    /// The syscall number, as the ABI passed it (x32 calls carry `X32_SYSCALL_BIT`).
    pub nr: i32,
    /// `AUDIT_ARCH_*` of the calling convention used.
    pub arch: u32,
    /// Address of the instruction after the syscall instruction.
    pub instruction_pointer: u64,
    /// The six argument registers, unmodified.
    pub args: [u64; 6],
}

impl SeccompData {
    /// Size of the struct; loads must lie inside it.
    pub const SIZE: u32 = 64;
    /// Offset of `nr`.
    pub const NR_OFFSET: u32 = 0;
    /// Offset of `arch`.
    pub const ARCH_OFFSET: u32 = 4;
    /// Offset of `instruction_pointer`.
    pub const IP_OFFSET: u32 = 8;

    /// Offset of `args[i]` (its low word on little-endian; the high word is 4 bytes later).
    pub const fn arg_offset(i: usize) -> u32 {
        16 + 8 * i as u32
    }

    /// A call with the given arch and number, zero instruction pointer and arguments.
    pub fn syscall(arch: u32, nr: i32) -> SeccompData {
        SeccompData { nr, arch, ..SeccompData::default() }
    }

    /// The struct as the filter sees it (native endian: little, on x86_64).
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut b = [0; 64];
        b[0..4].copy_from_slice(&self.nr.to_le_bytes());
        b[4..8].copy_from_slice(&self.arch.to_le_bytes());
        b[8..16].copy_from_slice(&self.instruction_pointer.to_le_bytes());
        for (i, a) in self.args.iter().enumerate() {
            let o = Self::arg_offset(i) as usize;
            b[o..o + 8].copy_from_slice(&a.to_le_bytes());
        }
        b
    }

    /// What `BPF_LD|BPF_W|BPF_ABS` with this offset loads; `None` if the kernel would reject
    /// the offset (unaligned or outside the struct).
    pub fn load_word(&self, offset: u32) -> Option<u32> {
        if offset & 3 != 0 || offset >= Self::SIZE {
            return None;
        }
        let o = offset as usize;
        let b = self.to_bytes();
        Some(u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]))
    }

    /// The field a load offset reads, for disassembly (`"nr"`, `"args[2] hi"`).
    pub fn field_name(offset: u32) -> Option<String> {
        match offset {
            Self::NR_OFFSET => Some("nr".into()),
            Self::ARCH_OFFSET => Some("arch".into()),
            8 => Some("instruction_pointer lo".into()),
            12 => Some("instruction_pointer hi".into()),
            16..=63 if offset & 3 == 0 => {
                let half = if offset & 4 == 0 { "lo" } else { "hi" };
                Some(format!("args[{}] {half}", (offset - 16) / 8))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_match_the_kernel_layout() {
        let d = SeccompData {
            nr: -1,
            arch: 0xC000_003E,
            instruction_pointer: 0x1122_3344_5566_7788,
            args: [0xAAAA_AAAA_0000_0001, 0, 0, 0, 0, 0xFFFF_0000_BBBB_0000],
        };
        assert_eq!(d.load_word(0), Some(0xFFFF_FFFF));
        assert_eq!(d.load_word(4), Some(0xC000_003E));
        assert_eq!(d.load_word(8), Some(0x5566_7788));
        assert_eq!(d.load_word(12), Some(0x1122_3344));
        assert_eq!(d.load_word(16), Some(1));
        assert_eq!(d.load_word(20), Some(0xAAAA_AAAA));
        assert_eq!(d.load_word(60), Some(0xFFFF_0000));
        assert_eq!(d.load_word(64), None);
        assert_eq!(d.load_word(2), None);
        assert_eq!(SeccompData::field_name(60).as_deref(), Some("args[5] hi"));
    }
}
