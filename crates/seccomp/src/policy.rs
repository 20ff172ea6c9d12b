//! What the filter decides: an [`Action`] per x86_64 syscall number, plus one action for
//! each other ABI. [`Policy::decide`] is the reference semantics the compiled filter must
//! reproduce exactly.

use std::collections::BTreeMap;

use viewos_abi::{Abi, Errno};

use crate::SeccompData;

/// `SECCOMP_RET_KILL_PROCESS`.
pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
/// `SECCOMP_RET_KILL_THREAD` (also `SECCOMP_RET_KILL`).
pub const SECCOMP_RET_KILL_THREAD: u32 = 0x0000_0000;
/// `SECCOMP_RET_TRAP`.
pub const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
/// `SECCOMP_RET_ERRNO`.
pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// `SECCOMP_RET_USER_NOTIF`.
pub const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
/// `SECCOMP_RET_TRACE`.
pub const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
/// `SECCOMP_RET_LOG`.
pub const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
/// `SECCOMP_RET_ALLOW`.
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
/// `SECCOMP_RET_ACTION_FULL`: the action part of a return value.
pub const SECCOMP_RET_ACTION_FULL: u32 = 0xffff_0000;
/// `SECCOMP_RET_DATA`: the data part of a return value.
pub const SECCOMP_RET_DATA: u32 = 0x0000_ffff;

/// What the kernel does with one syscall.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Run the call (`SECCOMP_RET_ALLOW`). Only this verdict is cached by the kernel.
    Allow,
    /// Stop the call and hand it to the supervisor's notify fd (`SECCOMP_RET_USER_NOTIF`).
    Notify,
    /// Stop the call for the ptrace tracer (`SECCOMP_RET_TRACE`, data 0); with no tracer
    /// attached the call fails with `ENOSYS`.
    Trace,
    /// Fail the call with this errno without running it (`SECCOMP_RET_ERRNO`). The kernel
    /// clamps values above 4095.
    Errno(Errno),
    /// Kill the whole process (`SECCOMP_RET_KILL_PROCESS`).
    KillProcess,
}

impl Action {
    /// The value the filter returns for this action.
    #[must_use]
    pub fn ret_value(self) -> u32 {
        match self {
            Action::Allow => SECCOMP_RET_ALLOW,
            Action::Notify => SECCOMP_RET_USER_NOTIF,
            Action::Trace => SECCOMP_RET_TRACE,
            Action::Errno(e) => SECCOMP_RET_ERRNO | u32::from(e.0),
            Action::KillProcess => SECCOMP_RET_KILL_PROCESS,
        }
    }

    /// The action a filter return value stands for; `None` for verdicts this crate does not
    /// produce (`TRAP`, `LOG`, `KILL_THREAD`, `TRACE` with data).
    #[must_use]
    pub fn from_ret_value(ret: u32) -> Option<Action> {
        let data = ret & SECCOMP_RET_DATA;
        match (ret & SECCOMP_RET_ACTION_FULL, data) {
            (SECCOMP_RET_ALLOW, 0) => Some(Action::Allow),
            (SECCOMP_RET_USER_NOTIF, 0) => Some(Action::Notify),
            (SECCOMP_RET_TRACE, 0) => Some(Action::Trace),
            (SECCOMP_RET_ERRNO, e) => Some(Action::Errno(Errno(e as u16))),
            (SECCOMP_RET_KILL_PROCESS, 0) => Some(Action::KillProcess),
            _ => None,
        }
    }
}

/// A seccomp policy: which action each syscall gets, by ABI.
///
/// Numbers are matched as the unsigned 32-bit value of `seccomp_data.nr`. On the x86_64
/// arch, any number with [`Abi::X32_SYSCALL_BIT`] (bit 30) set takes the [`Policy::x32`]
/// action, whatever else is set: that covers real x32 calls and also negative numbers such
/// as `-1`, which no native table contains anyway. This matches [`Abi::classify`]. Numbers
/// with bit 31 but not bit 30 set (e.g. `0x8000_0001`) stay native and fall to `default`
/// (the kernel answers them with `ENOSYS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// For native x86_64 numbers not in `syscalls`; normally [`Action::Allow`].
    pub default: Action,
    /// Native x86_64 syscall number → action. Numbers with `X32_SYSCALL_BIT` set would never
    /// be reached, so [`crate::compile`] rejects them.
    pub syscalls: BTreeMap<u32, Action>,
    /// Every call made through the i386 ABI (`int 0x80`): numbers mean different calls there,
    /// so they are never let through by the native table.
    pub i386: Action,
    /// Every x32 call (x86_64 arch, bit 30 set in the number).
    pub x32: Action,
    /// Any other `AUDIT_ARCH` (cannot happen on an x86_64 kernel; defence in depth).
    pub unknown_arch: Action,
    /// Native numbers whose action depends on a flag argument (see [`Split`]). Only these
    /// numbers make the filter load an argument; every other verdict stays cacheable.
    pub splits: BTreeMap<u32, Split>,
}

/// An action that depends on one argument: `when_set` if `args[arg]` passes `test`,
/// otherwise the number's own action. Registers are copied at syscall entry, so a guest
/// cannot change them after the filter looked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Split {
    pub arg: u8,
    pub test: Test,
    pub when_set: Action,
}

/// What a [`Split`] asks of its argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Test {
    /// Any bit of the mask set in the 64-bit argument (a flag, or with `u64::MAX` a
    /// non-NULL pointer).
    AnySet(u64),
    /// The argument's low 32 bits, masked, equal to `value` (a mode, whose type is 32
    /// bits or narrower: the kernel ignores the high half).
    LowEq { mask: u32, value: u32 },
}

impl Test {
    /// Whether argument value `a` passes.
    #[must_use]
    pub fn hit(self, a: u64) -> bool {
        match self {
            Test::AnySet(mask) => a & mask != 0,
            Test::LowEq { mask, value } => a as u32 & mask == value,
        }
    }
}

impl Policy {
    /// Everything native allowed, the 32-bit ABIs refused with `ENOSYS`, anything else killed.
    /// Fill [`Policy::syscalls`] to trap calls.
    #[must_use]
    pub fn allow_all() -> Policy {
        Policy {
            default: Action::Allow,
            syscalls: BTreeMap::new(),
            i386: Action::Errno(Errno::ENOSYS),
            x32: Action::Errno(Errno::ENOSYS),
            unknown_arch: Action::KillProcess,
            splits: BTreeMap::new(),
        }
    }

    /// The action for a call: the reference semantics of the compiled filter. Looks only at
    /// `arch` and `nr`, and for [`Policy::splits`] one argument.
    #[must_use]
    pub fn decide(&self, data: &SeccompData) -> Action {
        match data.arch {
            Abi::AUDIT_ARCH_X86_64 => {
                let nr = data.nr as u32;
                if nr & Abi::X32_SYSCALL_BIT != 0 {
                    self.x32
                } else {
                    match self.splits.get(&nr) {
                        Some(s) if data.args.get(usize::from(s.arg)).is_some_and(|&a| s.test.hit(a)) => s.when_set,
                        _ => self.syscalls.get(&nr).copied().unwrap_or(self.default),
                    }
                }
            }
            Abi::AUDIT_ARCH_I386 => self.i386,
            _ => self.unknown_arch,
        }
    }
}

impl Default for Policy {
    fn default() -> Policy {
        Policy::allow_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ret_values_round_trip() {
        for a in [
            Action::Allow,
            Action::Notify,
            Action::Trace,
            Action::Errno(Errno::EPERM),
            Action::Errno(Errno(4095)),
            Action::KillProcess,
        ] {
            assert_eq!(Action::from_ret_value(a.ret_value()), Some(a));
        }
        assert_eq!(Action::Errno(Errno::ENOSYS).ret_value(), 0x0005_0026);
        assert_eq!(Action::from_ret_value(SECCOMP_RET_TRAP), None);
        assert_eq!(Action::from_ret_value(SECCOMP_RET_TRACE | 1), None);
    }

    #[test]
    fn decide_by_abi() {
        let mut p = Policy::allow_all();
        p.syscalls.insert(2, Action::Notify);
        let x64 = |nr| SeccompData::syscall(Abi::AUDIT_ARCH_X86_64, nr);
        assert_eq!(p.decide(&x64(2)), Action::Notify);
        assert_eq!(p.decide(&x64(3)), Action::Allow);
        assert_eq!(p.decide(&x64(0x4000_0002)), p.x32);
        assert_eq!(p.decide(&x64(-1)), p.x32);
        assert_eq!(p.decide(&x64(i32::MIN)), Action::Allow);
        assert_eq!(p.decide(&SeccompData::syscall(Abi::AUDIT_ARCH_I386, 2)), p.i386);
        assert_eq!(p.decide(&SeccompData::syscall(0xC000_00B7, 2)), Action::KillProcess);
    }
}
