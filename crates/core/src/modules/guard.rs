//! The process guard: every process a view's process creates stays in the view.
//!
//! `CLONE_UNTRACED` would create a child the monitor never sees: not traced, not killed with
//! the monitor, not waited for, outside the process model. The guard clears the flag:
//! `clone`'s flags are a register, rewritten at the stop; `clone3`'s live in guest memory,
//! which another thread could change after the monitor looked, so the whole `clone_args` is
//! copied to scratch memory (flag cleared) and the call is pointed at the copy. Other
//! flags and fields are untouched, so the call behaves as natively otherwise.

use viewos_abi::{Errno, Sysno, Syscall, x86_64::nr};

use crate::dispatch::{Ctx, Disposition, Module, Need, Scratch};
use crate::mem::GuestMem;

/// `CLONE_UNTRACED`.
pub const CLONE_UNTRACED: u64 = 0x0080_0000;
/// `CLONE_ARGS_SIZE_VER0`: the smallest `clone_args` the kernel accepts.
const CLONE_ARGS_MIN: u64 = 64;
/// The kernel refuses larger `clone_args` with E2BIG (`PAGE_SIZE`).
const CLONE_ARGS_MAX: u64 = 4096;

/// Keeps every new process traced. Added by [`crate::Monitor::new`] to any non-empty view.
#[derive(Clone, Debug, Default)]
pub struct Guard;

impl Module for Guard {
    fn name(&self) -> &'static str {
        "guard"
    }

    fn interest(&self) -> Vec<(Sysno, Need)> {
        vec![(Sysno(nr::CLONE), Need::Control), (Sysno(nr::CLONE3), Need::Control)]
    }

    fn enter(&mut self, _ctx: &mut Ctx<'_>, call: &Syscall, mem: &mut dyn GuestMem) -> Option<Disposition> {
        match call {
            Syscall::Clone(c) if c.flags() & CLONE_UNTRACED != 0 => {
                let mut args = c.raw();
                args.set(0, c.flags() & !CLONE_UNTRACED);
                Some(Disposition::Rewrite { nr: None, args, scratch: Vec::new(), inspect: false })
            }
            Syscall::Clone(_) => Some(Disposition::PASS),
            Syscall::Clone3(c) => {
                let size = c.size();
                if !(CLONE_ARGS_MIN..=CLONE_ARGS_MAX).contains(&size) {
                    // The kernel fails these before reading anything (EINVAL / E2BIG).
                    return Some(Disposition::Emulate(Err(if size > CLONE_ARGS_MAX { Errno::E2BIG } else { Errno::EINVAL })));
                }
                let mut data = vec![0u8; size as usize];
                if let Err(f) = mem.read(c.args(), &mut data) {
                    return Some(Disposition::Emulate(Err(f.into())));
                }
                let flags = u64::from_le_bytes(data[..8].try_into().expect("size >= 64"));
                data[..8].copy_from_slice(&(flags & !CLONE_UNTRACED).to_le_bytes());
                Some(Disposition::Rewrite { nr: None, args: c.raw(), scratch: vec![Scratch { arg: 0, data, relocs: Vec::new() }], inspect: false })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::FakeMem;
    use crate::process::{Processes, Tid};
    use crate::{Clone as CloneCall, Clone3, GuestAddr, Nanos};

    fn decide(call: Syscall, mem: &mut FakeMem) -> Option<Disposition> {
        let mut procs = Processes::new();
        Guard.enter(&mut Ctx { now: Nanos(0), tid: Tid(1), procs: &mut procs, exact: false }, &call, mem)
    }

    #[test]
    fn clone_untraced_is_cleared_and_plain_clone_passes() {
        let c = CloneCall::new(CLONE_UNTRACED | 0x11, GuestAddr(0x7000), GuestAddr(0), GuestAddr(0), 5);
        match decide(Syscall::Clone(c), &mut FakeMem::new()) {
            Some(Disposition::Rewrite { args, scratch, .. }) => {
                assert_eq!(args.0, [0x11, 0x7000, 0, 0, 5, 0]);
                assert!(scratch.is_empty());
            }
            other => panic!("{other:?}"),
        }
        let c = CloneCall::new(0x11, GuestAddr(0), GuestAddr(0), GuestAddr(0), 0);
        assert_eq!(decide(Syscall::Clone(c), &mut FakeMem::new()), Some(Disposition::PASS));
    }

    #[test]
    fn clone3_args_are_always_copied_with_the_flag_cleared() {
        let mut args = vec![0u8; 88];
        args[..8].copy_from_slice(&(CLONE_UNTRACED | 0x100).to_le_bytes());
        args[32..40].copy_from_slice(&17u64.to_le_bytes()); // exit_signal
        let mut mem = FakeMem::new();
        mem.map(0x5000, args.clone());
        match decide(Syscall::Clone3(Clone3::new(GuestAddr(0x5000), 88)), &mut mem) {
            Some(Disposition::Rewrite { scratch, .. }) => {
                assert_eq!(scratch[0].arg, 0);
                assert_eq!(&scratch[0].data[..8], &0x100u64.to_le_bytes());
                assert_eq!(&scratch[0].data[8..], &args[8..]);
            }
            other => panic!("{other:?}"),
        }
        let bad = |size, mem: &mut FakeMem| decide(Syscall::Clone3(Clone3::new(GuestAddr(0x5000), size)), mem);
        assert_eq!(bad(8, &mut mem), Some(Disposition::Emulate(Err(Errno::EINVAL))));
        assert_eq!(bad(8192, &mut mem), Some(Disposition::Emulate(Err(Errno::E2BIG))));
        assert_eq!(bad(96, &mut mem), Some(Disposition::Emulate(Err(Errno::EFAULT))), "past the mapped struct");
    }
}
