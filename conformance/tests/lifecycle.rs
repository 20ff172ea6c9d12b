//! How a command ends: exit codes, death by signal (viewos exits 128+N like a
//! shell, and prints nothing), and caught signals with SA_RESTART.

use viewos_conformance::Case;

#[test]
fn exit_code_0() {
    Case::new("exit-code-0").probe(["exit", "0"]).expect_same();
}

#[test]
fn exit_code_3() {
    Case::new("exit-code-3").probe(["exit", "3"]).expect_same();
}

#[test]
fn exit_code_255() {
    Case::new("exit-code-255")
        .probe(["exit", "255"])
        .expect_same();
}

#[test]
fn killed_by_sigterm() {
    Case::new("signal-term")
        .probe(["signal", "TERM"])
        .expect_same();
}

#[test]
fn killed_by_sigkill() {
    Case::new("signal-kill")
        .probe(["signal", "KILL"])
        .expect_same();
}

#[test]
fn killed_by_raised_sigsegv() {
    Case::new("signal-segv")
        .probe(["signal", "SEGV"])
        .expect_same();
}

#[test]
fn killed_by_real_segfault() {
    Case::new("segfault").probe(["segfault"]).expect_same();
}

#[test]
fn signal_handler_and_sa_restart() {
    Case::new("signal-handler")
        .probe(["signal-handler"])
        .expect_same();
}
