//! The view modules of the seed system that live in the core. Each is a [`crate::Module`].

mod guard;
mod intercept;
mod pathview;
mod uname;

pub use guard::Guard;
pub use intercept::Intercept;
pub use pathview::{Host, PathView};
pub use uname::{Uname, Utsname};
