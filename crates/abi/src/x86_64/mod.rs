//! Everything specific to the x86_64 syscall ABI: numbers, and the register convention
//! (arguments in rdi, rsi, rdx, r10, r8, r9; number in orig_rax; result in rax).

pub mod flags;
pub mod paths;
pub mod table;

pub use table::nr;

/// The audit arch value of this ABI (`seccomp_data.arch`).
pub const AUDIT_ARCH: u32 = crate::Abi::AUDIT_ARCH_X86_64;

/// Length in bytes of the `syscall` instruction (to back the PC up and re-run a call).
pub const SYSCALL_INSN_LEN: u64 = 2;

/// Bytes below the stack pointer that a leaf function may use without moving it.
pub const RED_ZONE: u64 = 128;
