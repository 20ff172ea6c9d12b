//! The view modules of the seed system that live in the core. Each is a [`crate::Module`].

mod fakeroot;
mod guard;
mod intercept;
pub(crate) mod pathview;
mod uname;

pub use fakeroot::{FakeHost, Fakeroot, PATH_CALLS as FAKEROOT_PATH_CALLS};
pub use guard::Guard;
pub use intercept::Intercept;
pub use pathview::{Host, PathView};
pub use uname::{Uname, Utsname};
