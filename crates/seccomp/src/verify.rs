//! Load-time checks: whether the kernel would accept a filter, and whether it can cache the
//! filter's verdicts. Both look at the instructions only, never at a `seccomp_data`.

use crate::RunError;
use crate::SeccompData;
use crate::bpf::*;

/// Checks `filter` the way the kernel does when it is installed (`bpf_check_classic` plus
/// `seccomp_check_filter`): length, the seccomp instruction subset, every jump target
/// (taken or not) in bounds, load offsets, constant divisors and shifts, a return at the end.
/// A filter that passes cannot fail in [`crate::run`] on any input. Not checked: that each
/// scratch-memory word is stored before it is loaded.
pub fn verify(filter: &[SockFilter]) -> Result<(), RunError> {
    let len = filter.len();
    if len == 0 || len > BPF_MAXINSNS {
        return Err(RunError::BadLength(len));
    }
    for (pc, insn) in filter.iter().enumerate() {
        let SockFilter { code, jt, jf, k } = *insn;
        if !seccomp_accepts(code) {
            return Err(RunError::InvalidInstruction { pc, code });
        }
        let remaining = len - pc - 1;
        match class(code) {
            BPF_LD if mode(code) == BPF_ABS && (k & 3 != 0 || k >= SeccompData::SIZE) => {
                return Err(RunError::LoadOutOfBounds { pc, offset: k });
            }
            BPF_LD | BPF_LDX if mode(code) == BPF_MEM && k >= BPF_MEMWORDS => {
                return Err(RunError::MemOutOfBounds { pc, index: k });
            }
            BPF_ST | BPF_STX if k >= BPF_MEMWORDS => return Err(RunError::MemOutOfBounds { pc, index: k }),
            BPF_ALU if src(code) == BPF_K => {
                let bad = match op(code) {
                    BPF_DIV => k == 0,
                    BPF_LSH | BPF_RSH => k >= 32,
                    _ => false,
                };
                if bad {
                    return Err(RunError::BadConstant { pc });
                }
            }
            BPF_JMP => {
                let furthest = if op(code) == BPF_JA { k as usize } else { usize::from(jt.max(jf)) };
                if furthest >= remaining {
                    return Err(RunError::JumpOutOfBounds { pc });
                }
            }
            _ => {}
        }
    }
    if class(filter[len - 1].code) != BPF_RET {
        return Err(RunError::FellOffEnd);
    }
    Ok(())
}

/// Whether the kernel (5.11+) can precompute this filter's `ALLOW` verdicts: for every
/// x86_64 number the filter allows (with any arguments), its emulator
/// (`seccomp_is_const_allow`) must reach that `ALLOW` loading nothing but `nr` and `arch`
/// and using only simple compares. A filter may look at an argument on the way to another
/// verdict (a [`crate::Split`]); those calls are trapped anyway.
#[must_use]
pub fn is_cacheable(filter: &[SockFilter]) -> bool {
    let nrs = (0..1024u32).chain([0x3fff_ffff, 0x4000_0000, 0x7fff_ffff, 0x8000_0000, u32::MAX]);
    for nr in nrs {
        let d = SeccompData::syscall(viewos_abi::Abi::AUDIT_ARCH_X86_64, nr as i32);
        let allowed = crate::run(filter, &d) == Ok(crate::SECCOMP_RET_ALLOW);
        if allowed && const_allow(filter, &d) != Some(true) {
            return false;
        }
    }
    true
}

/// The kernel's emulation for one number: `Some(verdict is ALLOW)`, `None` where it gives up.
fn const_allow(filter: &[SockFilter], d: &SeccompData) -> Option<bool> {
    let mut a = 0u32;
    let mut pc = 0usize;
    for _ in 0..filter.len() {
        let i = *filter.get(pc)?;
        pc += 1;
        match i.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => {
                if i.k != SeccompData::NR_OFFSET && i.k != SeccompData::ARCH_OFFSET {
                    return None;
                }
                a = d.load_word(i.k)?;
            }
            c if c == BPF_RET | BPF_K => return Some(i.k == crate::SECCOMP_RET_ALLOW),
            c if c == BPF_JMP | BPF_JA => pc += i.k as usize,
            c if c == BPF_ALU | BPF_AND | BPF_K => a &= i.k,
            c if c == BPF_JMP | BPF_JEQ | BPF_K => pc += usize::from(if a == i.k { i.jt } else { i.jf }),
            c if c == BPF_JMP | BPF_JGE | BPF_K => pc += usize::from(if a >= i.k { i.jt } else { i.jf }),
            c if c == BPF_JMP | BPF_JGT | BPF_K => pc += usize::from(if a > i.k { i.jt } else { i.jf }),
            c if c == BPF_JMP | BPF_JSET | BPF_K => pc += usize::from(if a & i.k != 0 { i.jt } else { i.jf }),
            _ => return None,
        }
    }
    None
}

/// The opcodes `seccomp_check_filter` lets through (after `BPF_LEN` loads are rewritten).
fn seccomp_accepts(code: u16) -> bool {
    const ACCEPTED: &[u16] = &[
        BPF_LD | BPF_W | BPF_ABS,
        BPF_LD | BPF_W | BPF_LEN,
        BPF_LDX | BPF_W | BPF_LEN,
        BPF_RET | BPF_K,
        BPF_RET | BPF_A,
        BPF_ALU | BPF_ADD | BPF_K,
        BPF_ALU | BPF_ADD | BPF_X,
        BPF_ALU | BPF_SUB | BPF_K,
        BPF_ALU | BPF_SUB | BPF_X,
        BPF_ALU | BPF_MUL | BPF_K,
        BPF_ALU | BPF_MUL | BPF_X,
        BPF_ALU | BPF_DIV | BPF_K,
        BPF_ALU | BPF_DIV | BPF_X,
        BPF_ALU | BPF_AND | BPF_K,
        BPF_ALU | BPF_AND | BPF_X,
        BPF_ALU | BPF_OR | BPF_K,
        BPF_ALU | BPF_OR | BPF_X,
        BPF_ALU | BPF_XOR | BPF_K,
        BPF_ALU | BPF_XOR | BPF_X,
        BPF_ALU | BPF_LSH | BPF_K,
        BPF_ALU | BPF_LSH | BPF_X,
        BPF_ALU | BPF_RSH | BPF_K,
        BPF_ALU | BPF_RSH | BPF_X,
        BPF_ALU | BPF_NEG,
        BPF_LD | BPF_IMM,
        BPF_LDX | BPF_IMM,
        BPF_MISC | BPF_TAX,
        BPF_MISC | BPF_TXA,
        BPF_LD | BPF_MEM,
        BPF_LDX | BPF_MEM,
        BPF_ST,
        BPF_STX,
        BPF_JMP | BPF_JA,
        BPF_JMP | BPF_JEQ | BPF_K,
        BPF_JMP | BPF_JEQ | BPF_X,
        BPF_JMP | BPF_JGE | BPF_K,
        BPF_JMP | BPF_JGE | BPF_X,
        BPF_JMP | BPF_JGT | BPF_K,
        BPF_JMP | BPF_JGT | BPF_X,
        BPF_JMP | BPF_JSET | BPF_K,
        BPF_JMP | BPF_JSET | BPF_X,
    ];
    ACCEPTED.contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run;

    #[test]
    fn interpreter_and_verifier_accept_the_same_opcodes() {
        let d = SeccompData::syscall(0xC000_003E, 0);
        for code in 0..=0x1ffu16 {
            let prog =
                [SockFilter::stmt(code, 1), SockFilter::stmt(BPF_RET | BPF_K, 0), SockFilter::stmt(BPF_RET | BPF_K, 0)];
            let run_rejects = matches!(run(&prog, &d), Err(RunError::InvalidInstruction { .. }));
            let verify_rejects = matches!(verify(&prog), Err(RunError::InvalidInstruction { .. }));
            assert_eq!(run_rejects, verify_rejects, "opcode {code:#x}");
        }
    }

    #[test]
    fn untaken_jumps_are_checked() {
        let prog = [
            SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, 0),
            SockFilter::jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2),
            SockFilter::stmt(BPF_RET | BPF_K, 0),
        ];
        assert_eq!(verify(&prog), Err(RunError::JumpOutOfBounds { pc: 1 }));
        assert!(run(&prog, &SeccompData::default()).is_ok());
        let no_ret = [SockFilter::stmt(BPF_RET | BPF_K, 0), SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, 0)];
        assert_eq!(verify(&no_ret), Err(RunError::FellOffEnd));
    }

    #[test]
    fn cacheability() {
        let ret = SockFilter::stmt(BPF_RET | BPF_K, crate::SECCOMP_RET_ALLOW);
        assert!(is_cacheable(&[SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, 4), ret]));
        assert!(!is_cacheable(&[SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, 16), ret]));
        assert!(!is_cacheable(&[SockFilter::stmt(BPF_MISC | BPF_TAX, 0), ret]));
        // Looking at an argument on the way to a verdict other than ALLOW is fine.
        let kill = SockFilter::stmt(BPF_RET | BPF_K, 0);
        assert!(is_cacheable(&[SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, 16), kill]));
    }
}
