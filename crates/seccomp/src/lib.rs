//! Seccomp-bpf filters for viewos: a [`Policy`] (an action per syscall and per ABI) compiled
//! to classic BPF by [`compile`], and a BPF interpreter, [`run`], that lets tests check the
//! filter against [`Policy::decide`] without a kernel. Pure: no I/O, no `unsafe`; the adapter
//! installs [`to_bytes`] of the filter with one small `seccomp(2)` call.
//!
//! # The filter's shape, and why
//!
//! ```text
//! ld [arch]; if arch != AUDIT_ARCH_X86_64: return arch == I386 ? i386 : unknown_arch
//! ld [nr];   if nr & X32_SYSCALL_BIT:      return x32
//! binary search over the listed numbers -> that action, else default
//! ```
//!
//! * **Cacheable.** Since Linux 5.11 the kernel emulates a new filter once per syscall number
//!   and skips running it for numbers it always allows, but only if the filter reads nothing
//!   except `arch` and `nr` and uses only simple compares (see [`is_cacheable`]). So the filter
//!   looks at no argument on the way to an ALLOW, and never at the instruction pointer:
//!   argument-dependent decisions belong to the monitor, and untrapped syscalls cost nothing.
//!   The one exception is a [`Split`]: a number whose trapping depends on a flag or pointer
//!   argument loads it in a block of its own, reached only by that number.
//! * **No ABI passes unexamined.** Syscall numbers mean different calls under the i386
//!   (`int 0x80`) and x32 ABIs, so the native table must never be applied to them. `arch` is
//!   checked first, and the x32 bit right after loading `nr`; each ABI gets its own action
//!   (by default `ENOSYS` for i386 and x32, kill for any other arch). An `nr` with bit 30 set
//!   (including negative numbers such as `-1`) counts as x32; see [`Policy`].
//! * **Short.** Consecutive numbers with one action become a range, a lone number between
//!   agreeing neighbours a single `jeq`; each verdict's `ret` is shared by every jump that
//!   can reach it. Jump offsets are 8 bits, so long filters get a repeated `ret` or a `ja`
//!   trampoline where needed; a policy listing every x86_64 syscall still compiles.
#![forbid(unsafe_code)]

pub mod bpf;
mod compile;
mod data;
mod disasm;
mod policy;
mod run;
mod verify;

pub use bpf::{SockFilter, to_bytes};
pub use compile::{CompileError, compile};
pub use data::SeccompData;
pub use disasm::disassemble;
pub use policy::*;
pub use run::{RunError, run};
pub use verify::{is_cacheable, verify};
