//! Creating, waiting for and controlling processes and threads.

use viewos_conformance::Case;

#[test]
fn sixteen_busy_threads() {
    Case::new("threads-16")
        .probe(["threads", "16"])
        .expect_same();
}

#[test]
fn raw_clone3() {
    Case::new("clone3").probe(["clone3"]).expect_same();
}

#[test]
fn vfork_then_exec_or_exit() {
    Case::new("vfork").probe(["vfork"]).expect_same();
}

#[test]
fn fork_storm_1000() {
    Case::new("fork-storm-1000")
        .probe(["fork-storm", "1000"])
        .expect_same();
}

/// viewos must wait for every tracee, so the detached grandchild's marker is
/// there the moment viewos returns (natively the harness waits for it).
#[test]
fn daemon_outlives_its_parent() {
    Case::new("daemon")
        .probe(["daemon", "{tmp}/marker"])
        .file_written("marker")
        .expect_same();
}

#[test]
fn stop_and_continue_a_child() {
    // The child is stopped either way (the parent's waitpid sees the stop, SIGCONT resumes
    // it); only the letter differs. A tracee in a group-stop waits in PTRACE_LISTEN, which
    // the kernel reports as "t (tracing stop)", and no ptrace request can show it as "T".
    Case::new("stop-cont")
        .probe(["stop-cont"])
        .differs("stop.state", "t", "a traced child in a group stop shows as tracing stop (t) in /proc")
        .expect_same();
}
