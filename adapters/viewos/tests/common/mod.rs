//! Helpers for the end-to-end tests of the `viewos` binary: run it as the current user and,
//! when root, as uid 65534 too (viewos must work unprivileged).
#![allow(dead_code)] // each test binary uses a subset

use std::process::{Command, Output};

pub fn viewos() -> &'static str {
    env!("CARGO_BIN_EXE_viewos")
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The identities every test runs viewos under: the current user, and nobody if root.
pub fn users() -> Vec<Option<u32>> {
    if is_root() { vec![None, Some(65534)] } else { vec![None] }
}

/// A command that runs `program args` as `user` (via setpriv), from /tmp.
pub fn command_as(user: Option<u32>, program: &str, args: &[&str]) -> Command {
    let mut c = match user {
        None => Command::new(program),
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.args([format!("--reuid={uid}"), format!("--regid={uid}"), "--clear-groups".into(), program.into()]);
            c
        }
    };
    c.args(args).current_dir("/tmp");
    c
}

/// Runs viewos with `args` as `user` and collects its output.
pub fn run_as(user: Option<u32>, args: &[&str]) -> Output {
    command_as(user, viewos(), args).output().expect("run viewos")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Python 3, if installed (tests that need it skip, saying so, without it).
pub fn python3() -> Option<&'static str> {
    ["/usr/bin/python3", "/usr/local/bin/python3"].into_iter().find(|p| std::path::Path::new(p).exists())
}
