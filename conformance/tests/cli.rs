//! viewos's own command line behaves GNU-style: usage errors exit 2 with a
//! one-line message, `--help` exits 0, and a command that cannot run gives
//! 127 (not found) or 126 (not executable) like a shell.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use viewos_conformance::{Finished, Invocation, Status, run, viewos};

fn viewos_with(args: &[&str]) -> Finished {
    let mut argv: Vec<OsString> = vec![viewos().into()];
    argv.extend(args.iter().map(OsString::from));
    run(&Invocation {
        argv,
        cwd: std::env::temp_dir(),
        stdin: None,
        timeout: Duration::from_secs(20),
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn unknown_option_is_a_usage_error() {
    let out = viewos_with(&["--bogus"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status, Status::Exited(2), "stderr: {stderr}");
    assert!(
        stderr.contains("--bogus"),
        "message should name the option: {stderr:?}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one-line message expected: {stderr:?}"
    );
    assert!(out.stdout.is_empty(), "stdout: {:?}", text(&out.stdout));
}

#[test]
fn missing_command_is_a_usage_error() {
    let out = viewos_with(&[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status, Status::Exited(2), "stderr: {stderr}");
    assert!(
        !stderr.trim().is_empty(),
        "a usage message is expected on stderr"
    );
    assert!(out.stdout.is_empty(), "stdout: {:?}", text(&out.stdout));
}

#[test]
fn help_goes_to_stdout() {
    let out = viewos_with(&["--help"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status,
        Status::Exited(0),
        "stderr: {}",
        text(&out.stderr)
    );
    assert!(
        stdout.to_lowercase().contains("usage"),
        "usage on stdout expected: {stdout:?}"
    );
    assert!(out.stderr.is_empty(), "stderr: {:?}", text(&out.stderr));
}

#[test]
fn command_not_found_exits_127() {
    let out = viewos_with(&["--", "/nonexistent"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status, Status::Exited(127), "stderr: {stderr}");
    assert!(
        stderr.contains("/nonexistent"),
        "message should name the command: {stderr:?}"
    );
}

#[test]
fn non_executable_file_exits_126() {
    let dir = std::env::temp_dir().join(format!("viewos-conformance-{}-cli", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let file = dir.join("not-executable");
    std::fs::write(&file, "#!/bin/sh\nexit 0\n").expect("write file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod 644");
    let path = file.to_string_lossy().into_owned();
    let out = viewos_with(&["--", &path]);
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = text(&out.stderr);
    assert_eq!(out.status, Status::Exited(126), "stderr: {stderr}");
    assert!(
        stderr.contains(&path),
        "message should name the command: {stderr:?}"
    );
}
