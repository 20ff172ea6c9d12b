//! A classic-BPF interpreter for the instructions seccomp accepts, so filters can be tested
//! against [`crate::Policy::decide`] without a kernel. It checks at run time what the kernel
//! checks at load time (see [`crate::verify`]) on the path actually taken.

use crate::SeccompData;
use crate::bpf::*;

/// Why a filter could not be run to a verdict (the kernel would have refused to load it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunError {
    /// No instructions, or more than [`BPF_MAXINSNS`].
    BadLength(usize),
    /// The instruction at `pc` is not one seccomp accepts.
    InvalidInstruction { pc: usize, code: u16 },
    /// The jump at `pc` lands past the end.
    JumpOutOfBounds { pc: usize },
    /// A load from `seccomp_data` at `pc` is unaligned or outside the struct.
    LoadOutOfBounds { pc: usize, offset: u32 },
    /// A scratch-memory access at `pc` names a word past `M[15]`.
    MemOutOfBounds { pc: usize, index: u32 },
    /// Division by a constant zero, or a constant shift of 32 or more, at `pc`.
    BadConstant { pc: usize },
    /// The last instruction executed was not a return.
    FellOffEnd,
}

/// Runs `filter` on `data` and returns the filter's verdict (a `SECCOMP_RET_*` value).
///
/// Scratch memory starts zeroed (the kernel instead rejects filters that read a word before
/// storing it). Division by a zero `X` returns 0, as in the kernel.
pub fn run(filter: &[SockFilter], data: &SeccompData) -> Result<u32, RunError> {
    if filter.is_empty() || filter.len() > BPF_MAXINSNS {
        return Err(RunError::BadLength(filter.len()));
    }
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; BPF_MEMWORDS as usize];
    let mut pc = 0usize;
    while let Some(&insn) = filter.get(pc) {
        let SockFilter { code, jt, jf, k } = insn;
        let invalid = RunError::InvalidInstruction { pc, code };
        let mem_index =
            |i: u32| if i < BPF_MEMWORDS { Ok(i as usize) } else { Err(RunError::MemOutOfBounds { pc, index: i }) };
        let mut next = pc + 1;
        if code > 0xff {
            return Err(invalid);
        }
        match class(code) {
            BPF_LD | BPF_LDX => {
                let v = match (size(code), mode(code)) {
                    (BPF_W, BPF_ABS) if class(code) == BPF_LD => {
                        data.load_word(k).ok_or(RunError::LoadOutOfBounds { pc, offset: k })?
                    }
                    (BPF_W, BPF_LEN) => SeccompData::SIZE,
                    (BPF_W, BPF_IMM) => k,
                    (BPF_W, BPF_MEM) => mem[mem_index(k)?],
                    _ => return Err(invalid),
                };
                if class(code) == BPF_LD { a = v } else { x = v }
            }
            BPF_ST | BPF_STX if code & !0x07 == 0 => {
                mem[mem_index(k)?] = if class(code) == BPF_ST { a } else { x };
            }
            BPF_ALU => {
                let operand = if src(code) == BPF_X { x } else { k };
                let constant = src(code) == BPF_K;
                a = match op(code) {
                    BPF_ADD => a.wrapping_add(operand),
                    BPF_SUB => a.wrapping_sub(operand),
                    BPF_MUL => a.wrapping_mul(operand),
                    BPF_DIV if constant && k == 0 => return Err(RunError::BadConstant { pc }),
                    BPF_DIV if operand == 0 => return Ok(0),
                    BPF_DIV => a / operand,
                    BPF_OR => a | operand,
                    BPF_AND => a & operand,
                    BPF_XOR => a ^ operand,
                    BPF_LSH | BPF_RSH if constant && k >= 32 => return Err(RunError::BadConstant { pc }),
                    BPF_LSH => a.wrapping_shl(operand),
                    BPF_RSH => a.wrapping_shr(operand),
                    BPF_NEG if code == BPF_ALU | BPF_NEG => a.wrapping_neg(),
                    _ => return Err(invalid),
                };
            }
            BPF_JMP => {
                let operand = if src(code) == BPF_X { x } else { k };
                let taken = match op(code) {
                    BPF_JA if code == BPF_JMP | BPF_JA => {
                        next = next.checked_add(k as usize).ok_or(RunError::JumpOutOfBounds { pc })?;
                        None
                    }
                    BPF_JEQ => Some(a == operand),
                    BPF_JGT => Some(a > operand),
                    BPF_JGE => Some(a >= operand),
                    BPF_JSET => Some(a & operand != 0),
                    _ => return Err(invalid),
                };
                if let Some(t) = taken {
                    next += usize::from(if t { jt } else { jf });
                }
                if next >= filter.len() {
                    return Err(RunError::JumpOutOfBounds { pc });
                }
            }
            BPF_RET => {
                return match code {
                    c if c == BPF_RET | BPF_K => Ok(k),
                    c if c == BPF_RET | BPF_A => Ok(a),
                    _ => Err(invalid),
                };
            }
            BPF_MISC => match code {
                c if c == BPF_MISC | BPF_TAX => x = a,
                c if c == BPF_MISC | BPF_TXA => a = x,
                _ => return Err(invalid),
            },
            _ => return Err(invalid),
        }
        pc = next;
    }
    Err(RunError::FellOffEnd)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LD_NR: SockFilter = SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, 0);

    fn ret_k(k: u32) -> SockFilter {
        SockFilter::stmt(BPF_RET | BPF_K, k)
    }

    #[test]
    fn errors() {
        let d = SeccompData::syscall(0xC000_003E, 7);
        assert_eq!(run(&[], &d), Err(RunError::BadLength(0)));
        assert_eq!(run(&[LD_NR], &d), Err(RunError::FellOffEnd));
        let jump_out = SockFilter::jump(BPF_JMP | BPF_JEQ | BPF_K, 7, 1, 0);
        assert_eq!(run(&[LD_NR, jump_out, ret_k(0)], &d), Err(RunError::JumpOutOfBounds { pc: 1 }));
        let ja_out = SockFilter::stmt(BPF_JMP | BPF_JA, 1);
        assert_eq!(run(&[ja_out, ret_k(0)], &d), Err(RunError::JumpOutOfBounds { pc: 0 }));
        let bad_load = SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, 64);
        assert_eq!(run(&[bad_load, ret_k(0)], &d), Err(RunError::LoadOutOfBounds { pc: 0, offset: 64 }));
        let byte_load = SockFilter::stmt(BPF_LD | BPF_B | BPF_ABS, 0);
        assert!(matches!(run(&[byte_load, ret_k(0)], &d), Err(RunError::InvalidInstruction { pc: 0, .. })));
        let ret_x = SockFilter::stmt(BPF_RET | BPF_X, 0);
        assert!(matches!(run(&[ret_x], &d), Err(RunError::InvalidInstruction { .. })));
        let div0 = SockFilter::stmt(BPF_ALU | BPF_DIV | BPF_K, 0);
        assert_eq!(run(&[div0, ret_k(0)], &d), Err(RunError::BadConstant { pc: 0 }));
    }

    #[test]
    fn arithmetic_and_memory() {
        let d = SeccompData { args: [0x0000_0005_0000_0009, 0, 0, 0, 0, 0], ..SeccompData::syscall(0, 7) };
        let prog = [
            SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, SeccompData::arg_offset(0)), // A = 9
            SockFilter::stmt(BPF_ST, 3),                                            // M[3] = 9
            SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, SeccompData::arg_offset(0) + 4), // A = 5
            SockFilter::stmt(BPF_MISC | BPF_TAX, 0),                                // X = 5
            SockFilter::stmt(BPF_LD | BPF_W | BPF_MEM, 3),                          // A = 9
            SockFilter::stmt(BPF_ALU | BPF_MUL | BPF_X, 0),                         // A = 45
            SockFilter::stmt(BPF_ALU | BPF_LSH | BPF_K, 1),                         // A = 90
            SockFilter::jump(BPF_JMP | BPF_JGT | BPF_K, 89, 1, 0),
            ret_k(1),
            SockFilter::stmt(BPF_RET | BPF_A, 0),
        ];
        assert_eq!(run(&prog, &d), Ok(90));
        let div_x0 = [SockFilter::stmt(BPF_ALU | BPF_DIV | BPF_X, 0), ret_k(7)];
        assert_eq!(run(&div_x0, &d), Ok(0));
    }
}
