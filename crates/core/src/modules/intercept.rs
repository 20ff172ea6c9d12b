//! `--intercept LIST`: trap the listed calls and let them run unchanged. With `--trace`
//! this is strace for the chosen calls; it is also how the interception cost is measured.

use viewos_abi::{Sysno, Syscall};

use crate::dispatch::{Ctx, Disposition, Module, Need};
use crate::mem::GuestMem;

/// Passes the listed calls through after the monitor has seen them.
#[derive(Clone, Debug)]
pub struct Intercept {
    calls: Vec<Sysno>,
    need: Need,
}

impl Intercept {
    /// Intercepts `calls`. With `control`, they go through the ptrace route (a full stop)
    /// instead of the cheapest one.
    pub fn new(mut calls: Vec<Sysno>, control: bool) -> Intercept {
        calls.sort();
        calls.dedup();
        Intercept { calls, need: if control { Need::Control } else { Need::Decide } }
    }
}

impl Module for Intercept {
    fn name(&self) -> &'static str {
        "intercept"
    }

    fn interest(&self) -> Vec<(Sysno, Need)> {
        self.calls.iter().map(|&c| (c, self.need)).collect()
    }

    fn enter(&mut self, _ctx: &mut Ctx<'_>, call: &Syscall, _mem: &mut dyn GuestMem) -> Option<Disposition> {
        self.calls.binary_search(&call.sysno()).ok().map(|_| Disposition::PASS)
    }
}
