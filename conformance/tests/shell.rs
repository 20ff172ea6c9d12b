//! Ordinary programs: a shell pipeline and a filter reading stdin.

use viewos_conformance::Case;

#[test]
fn shell_pipeline_with_exit_code() {
    Case::new("shell-pipeline")
        .cmd("sh", ["-c", "seq 1 1000 | sort -r | head -3; exit 7"])
        .expect_same();
}

#[test]
fn cat_reads_stdin() {
    Case::new("stdin-cat")
        .cmd("cat", ["-"])
        .stdin(b"hi\n")
        .expect_same();
}

#[test]
fn signal_dispositions_are_inherited_unchanged() {
    // `yes` must die of SIGPIPE quietly when `head` exits, and the command must start
    // with the dispositions and mask viewos itself was given (Rust's runtime would
    // otherwise leave SIGPIPE ignored).
    Case::new("sigpipe-and-dispositions")
        .cmd("sh", ["-c", "yes | head -1; grep -E '^Sig(Blk|Ign)' /proc/self/status"])
        .expect_same();
}
