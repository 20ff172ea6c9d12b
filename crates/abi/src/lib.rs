//! The Linux system-call ABI as plain data: syscall numbers ([`Sysno`]), raw argument
//! registers ([`SyscallArgs`]), typed views of the calls viewos cares about ([`Syscall`]),
//! and [`Errno`]. Everything here is pure: no I/O, no `unsafe`, no libc.
//!
//! The architecture-specific part (numbers, audit arch, register conventions) lives in one
//! module per architecture; today only [`x86_64`]. See ARCHITECTURE.md for what aarch64 needs.
#![forbid(unsafe_code)]

mod args;
mod calls;
mod errno;
mod sysno;
pub mod x86_64;

pub use args::{GuestAddr, SyscallArgs};
pub use calls::*;
pub use errno::Errno;
pub use sysno::Sysno;

/// The syscall ABI a trapped call was made with, from `seccomp_data.arch` or
/// `PTRACE_GET_SYSCALL_INFO`. Numbers mean different calls under different ABIs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Abi {
    /// The native 64-bit ABI (`syscall` instruction).
    X86_64,
    /// 32-bit `int 0x80` / `sysenter` calls (IA32 emulation).
    I386,
    /// x32: the x86_64 arch with bit 30 set in the number.
    X32,
}

impl Abi {
    /// `AUDIT_ARCH_X86_64`.
    pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    /// `AUDIT_ARCH_I386`.
    pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    /// The bit that marks an x32 syscall number.
    pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

    /// Classifies a (audit arch, number) pair; `None` for an architecture viewos does not know.
    pub fn classify(audit_arch: u32, nr: u64) -> Option<Abi> {
        match audit_arch {
            Self::AUDIT_ARCH_X86_64 if nr & u64::from(Self::X32_SYSCALL_BIT) != 0 => Some(Abi::X32),
            Self::AUDIT_ARCH_X86_64 => Some(Abi::X86_64),
            Self::AUDIT_ARCH_I386 => Some(Abi::I386),
            _ => None,
        }
    }
}
