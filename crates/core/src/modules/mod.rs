//! The view modules of the seed system that live in the core. Each is a [`crate::Module`].

mod guard;
mod intercept;
mod uname;

pub use guard::Guard;
pub use intercept::Intercept;
pub use uname::{Uname, Utsname};
