//! A readable listing of a filter, for debugging and `--trace` output.

use std::fmt::Write;

use viewos_abi::{Abi, Sysno};

use crate::bpf::*;
use crate::{Action, SeccompData};

/// One line per instruction, jump targets as absolute instruction numbers, e.g.
///
/// ```text
///    0: ld    [4]                    ; arch
///    1: jeq   #0xc000003e  jt 3  jf 2 ; AUDIT_ARCH_X86_64
///    ...
///   12: ret   #0x7fc00000            ; Notify
/// ```
///
/// Comparison constants are annotated after the most recent load in listing order (arch
/// names after `ld [4]`, syscall names after `ld [0]`), which is right for the straight-line
/// loads [`crate::compile`] emits.
#[must_use]
pub fn disassemble(filter: &[SockFilter]) -> String {
    let mut out = String::new();
    let mut loaded = None;
    for (pc, insn) in filter.iter().enumerate() {
        let SockFilter { code, jt, jf, k } = *insn;
        let target = |off: u32| pc as u64 + 1 + u64::from(off);
        let (text, note) = match (class(code), code) {
            (BPF_LD, c) if c == BPF_LD | BPF_W | BPF_ABS => {
                loaded = Some(k);
                (format!("ld    [{k}]"), SeccompData::field_name(k))
            }
            (BPF_JMP, c) if c == BPF_JMP | BPF_JA => (format!("ja    {}", target(k)), None),
            (BPF_JMP, c) => {
                let name = match op(c) {
                    BPF_JEQ => "jeq",
                    BPF_JGT => "jgt",
                    BPF_JGE => "jge",
                    BPF_JSET => "jset",
                    _ => "j?",
                };
                let operand = if src(c) == BPF_X { "x".to_string() } else { format!("#{k:#x}") };
                let text = format!("{name:<5} {operand:<12} jt {:<4} jf {}", target(jt.into()), target(jf.into()));
                (text, if src(c) == BPF_K { constant_note(loaded, op(c), k) } else { None })
            }
            (BPF_RET, c) if c == BPF_RET | BPF_K => (format!("ret   #{k:#x}"), ret_note(k)),
            (BPF_RET, c) if c == BPF_RET | BPF_A => ("ret   a".to_string(), None),
            _ => {
                loaded = None;
                (format!("op    {code:#06x} jt {jt} jf {jf} k {k:#x}"), None)
            }
        };
        let _ = match note {
            Some(n) => writeln!(out, "{pc:4}: {text:<38} ; {n}"),
            None => writeln!(out, "{pc:4}: {text}"),
        };
    }
    out
}

fn constant_note(loaded: Option<u32>, op: u16, k: u32) -> Option<String> {
    match (loaded?, op) {
        (SeccompData::ARCH_OFFSET, BPF_JEQ) => match k {
            Abi::AUDIT_ARCH_X86_64 => Some("AUDIT_ARCH_X86_64".into()),
            Abi::AUDIT_ARCH_I386 => Some("AUDIT_ARCH_I386".into()),
            _ => None,
        },
        (SeccompData::NR_OFFSET, BPF_JSET) if k == Abi::X32_SYSCALL_BIT => Some("X32_SYSCALL_BIT".into()),
        (SeccompData::NR_OFFSET, BPF_JEQ | BPF_JGE | BPF_JGT) => Sysno(k).name().map(str::to_string),
        _ => None,
    }
}

fn ret_note(k: u32) -> Option<String> {
    Action::from_ret_value(k).map(|a| format!("{a:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Policy, compile};

    #[test]
    fn listing_names_fields_arches_and_calls() {
        let mut p = Policy::allow_all();
        p.syscalls.insert(viewos_abi::x86_64::nr::OPENAT, Action::Notify);
        let text = disassemble(&compile(&p).unwrap());
        assert!(text.starts_with("   0: ld    [4]"), "{text}");
        for needle in [
            "; arch",
            "; nr",
            "AUDIT_ARCH_X86_64",
            "X32_SYSCALL_BIT",
            "; openat",
            "; Notify",
            "; Allow",
            "; Errno(ENOSYS)",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }
}
