//! Who a case runs as: the current user, and (when that is root) uid 65534
//! through setpriv, so every case also covers an unprivileged tracer.

use std::fmt;

/// The identity a run uses; native and viewos runs of one user are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum User {
    /// Whoever runs the tests (root in CI).
    Current,
    /// uid/gid 65534 with no supplementary groups, via setpriv.
    Nobody,
}

const NOBODY: u32 = 65534;

impl User {
    /// The users every case runs as. Without root only the current user can
    /// be covered; that is said once on stderr rather than skipped silently.
    pub fn all() -> Vec<User> {
        if is_root() {
            vec![User::Current, User::Nobody]
        } else {
            static NOTE: std::sync::Once = std::sync::Once::new();
            NOTE.call_once(|| {
                eprintln!("conformance: not root, so cases run only as the current user (not as uid {NOBODY})");
            });
            vec![User::Current]
        }
    }

    /// The argv prefix that switches to this user (empty for the current one).
    pub fn prefix(self) -> Vec<String> {
        match self {
            User::Current => Vec::new(),
            User::Nobody => vec![
                "setpriv".into(),
                format!("--reuid={NOBODY}"),
                format!("--regid={NOBODY}"),
                "--clear-groups".into(),
            ],
        }
    }
}

/// Snapshot names depend on the user, since uids show in the outcome.
impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            User::Current if is_root() => f.write_str("root"),
            User::Current => write!(f, "uid{}", unsafe { libc::geteuid() }),
            User::Nobody => f.write_str("nobody"),
        }
    }
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}
