//! Classic BPF as the kernel sees it: `struct sock_filter`, its opcode bits (from
//! `linux/bpf_common.h` and `linux/filter.h`), and its 8-byte wire form.

/// One classic-BPF instruction, laid out like `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockFilter {
    /// Opcode: class | size/op | mode/src (the `BPF_*` constants below).
    pub code: u16,
    /// Jump offset if the condition holds, counted from the next instruction.
    pub jt: u8,
    /// Jump offset if the condition fails, counted from the next instruction.
    pub jf: u8,
    /// Generic operand: immediate, load offset, `BPF_JA` distance, return value.
    pub k: u32,
}

impl SockFilter {
    /// Length of one instruction on the wire.
    pub const SIZE: usize = 8;

    /// A non-jump instruction (the `BPF_STMT` macro).
    pub const fn stmt(code: u16, k: u32) -> SockFilter {
        SockFilter { code, jt: 0, jf: 0, k }
    }

    /// A conditional jump (the `BPF_JUMP` macro).
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
        SockFilter { code, jt, jf, k }
    }

    /// The little-endian record the kernel reads (x86_64 is little-endian).
    pub fn to_bytes(self) -> [u8; 8] {
        let mut b = [0; 8];
        b[0..2].copy_from_slice(&self.code.to_le_bytes());
        b[2] = self.jt;
        b[3] = self.jf;
        b[4..8].copy_from_slice(&self.k.to_le_bytes());
        b
    }

    /// Inverse of [`SockFilter::to_bytes`].
    pub fn from_bytes(b: [u8; 8]) -> SockFilter {
        SockFilter {
            code: u16::from_le_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

/// The filter as the byte array behind `struct sock_fprog.filter`, what the adapter hands
/// to `seccomp(SECCOMP_SET_MODE_FILTER, ..)`; its length in instructions is `filter.len()`.
#[must_use]
pub fn to_bytes(filter: &[SockFilter]) -> Vec<u8> {
    filter.iter().flat_map(|i| i.to_bytes()).collect()
}

/// The most instructions the kernel accepts in one filter.
pub const BPF_MAXINSNS: usize = 4096;
/// Scratch memory words (`M[0..16]`).
pub const BPF_MEMWORDS: u32 = 16;

// Instruction classes.
pub const BPF_LD: u16 = 0x00;
pub const BPF_LDX: u16 = 0x01;
pub const BPF_ST: u16 = 0x02;
pub const BPF_STX: u16 = 0x03;
pub const BPF_ALU: u16 = 0x04;
pub const BPF_JMP: u16 = 0x05;
pub const BPF_RET: u16 = 0x06;
pub const BPF_MISC: u16 = 0x07;

// Load sizes.
pub const BPF_W: u16 = 0x00;
pub const BPF_H: u16 = 0x08;
pub const BPF_B: u16 = 0x10;

// Load modes.
pub const BPF_IMM: u16 = 0x00;
pub const BPF_ABS: u16 = 0x20;
pub const BPF_IND: u16 = 0x40;
pub const BPF_MEM: u16 = 0x60;
pub const BPF_LEN: u16 = 0x80;
pub const BPF_MSH: u16 = 0xa0;

// ALU operations.
pub const BPF_ADD: u16 = 0x00;
pub const BPF_SUB: u16 = 0x10;
pub const BPF_MUL: u16 = 0x20;
pub const BPF_DIV: u16 = 0x30;
pub const BPF_OR: u16 = 0x40;
pub const BPF_AND: u16 = 0x50;
pub const BPF_LSH: u16 = 0x60;
pub const BPF_RSH: u16 = 0x70;
pub const BPF_NEG: u16 = 0x80;
pub const BPF_MOD: u16 = 0x90;
pub const BPF_XOR: u16 = 0xa0;

// Jump operations.
pub const BPF_JA: u16 = 0x00;
pub const BPF_JEQ: u16 = 0x10;
pub const BPF_JGT: u16 = 0x20;
pub const BPF_JGE: u16 = 0x30;
pub const BPF_JSET: u16 = 0x40;

// Operand sources (ALU, jumps) and return-value sources.
pub const BPF_K: u16 = 0x00;
pub const BPF_X: u16 = 0x08;
pub const BPF_A: u16 = 0x10;

// BPF_MISC operations.
pub const BPF_TAX: u16 = 0x00;
pub const BPF_TXA: u16 = 0x80;

/// The class bits of an opcode.
pub const fn class(code: u16) -> u16 {
    code & 0x07
}
/// The size bits of a load/store opcode.
pub const fn size(code: u16) -> u16 {
    code & 0x18
}
/// The mode bits of a load/store opcode.
pub const fn mode(code: u16) -> u16 {
    code & 0xe0
}
/// The operation bits of an ALU or jump opcode.
pub const fn op(code: u16) -> u16 {
    code & 0xf0
}
/// The source bit of an ALU or jump opcode.
pub const fn src(code: u16) -> u16 {
    code & 0x08
}
/// The return-value source bits of a `BPF_RET` opcode.
pub const fn rval(code: u16) -> u16 {
    code & 0x18
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bytes_round_trip(code: u16, jt: u8, jf: u8, k: u32) {
            let i = SockFilter { code, jt, jf, k };
            prop_assert_eq!(SockFilter::from_bytes(i.to_bytes()), i);
        }
    }

    #[test]
    fn wire_layout() {
        let i = SockFilter::jump(BPF_JMP | BPF_JEQ | BPF_K, 0xC000_003E, 1, 2);
        assert_eq!(i.to_bytes(), [0x15, 0x00, 1, 2, 0x3e, 0x00, 0x00, 0xc0]);
        assert_eq!(to_bytes(&[i, i]).len(), 16);
    }
}
