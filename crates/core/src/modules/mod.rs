//! The view modules of the seed system that live in the core. Each is a [`crate::Module`].

use viewos_abi::x86_64::nr;

/// The calls that change a thread's credentials (`set*id`, `setgroups`, `capset`).
pub(crate) const SET_ID_CALLS: [u32; 10] = [
    nr::SETUID,
    nr::SETGID,
    nr::SETREUID,
    nr::SETREGID,
    nr::SETRESUID,
    nr::SETRESGID,
    nr::SETFSUID,
    nr::SETFSGID,
    nr::SETGROUPS,
    nr::CAPSET,
];

mod fakeroot;
mod guard;
mod intercept;
pub(crate) mod pathview;
mod uname;

pub use fakeroot::{FakeHost, Fakeroot, path_calls as fakeroot_path_calls};
pub use guard::Guard;
pub use intercept::Intercept;
pub use pathview::{Host, PathView};
pub use uname::{Uname, Utsname};
