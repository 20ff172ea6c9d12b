//! The pure core of viewos: the process model, the dispatcher contract between core and
//! adapter, guest memory behind a trait, and the modules that decide syscalls.
//!
//! Nothing here performs I/O or touches the kernel: decisions come back as values
//! ([`Disposition`], [`ExitFixup`], [`Event`]) and the adapter carries them out. Time comes
//! in as [`Nanos`]. See `dispatch` for the calling contract.
#![forbid(unsafe_code)]

mod dispatch;
pub mod hostop;
pub mod mem;
pub mod modules;
pub mod process;
pub mod stats;
pub mod trace;

pub use hostop::{Base, HostOp, HostTarget, Listing, Outcome, XattrCall};
pub use dispatch::{Adjusted, Ctx, DecisionKind, Disposition, Event, ExitFixup, Module, Monitor, Nanos, Need, Scratch};
pub use mem::{FakeMem, GuestMem, MemFault};
pub use process::{CloneFlags, FdEntry, FsState, Processes, Tid};
pub use viewos_abi::*;
