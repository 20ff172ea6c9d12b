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
