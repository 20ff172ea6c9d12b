//! What a process sees when it starts: argv, environment, auxv, /proc/self, uname.

use viewos_conformance::{Case, probe};

#[test]
fn argv_with_odd_arguments() {
    let mut args: Vec<String> = [
        "argv",
        "with space",
        "",
        "ünïcødé ✓",
        "tab\there",
        "new\nline",
        "--",
        "-x",
        "'\"$HOME",
    ]
    .map(String::from)
    .to_vec();
    args.extend((0..200).map(|i| format!("arg{i}")));
    Case::new("argv-odd").probe(args).expect_same();
}

#[test]
fn controlled_environment() {
    let probe = probe().to_string_lossy().into_owned();
    Case::new("env-controlled")
        .cmd("env", ["-i", "A=1", "B=x y", &probe, "env"])
        .expect_same();
}

#[test]
fn auxiliary_vector() {
    Case::new("auxv")
        .probe(["auxv"])
        .unstable("auxv.AT_HWCAP")
        .unstable("auxv.AT_HWCAP2")
        .unstable("auxv.AT_MINSIGSTKSZ")
        .unstable("auxv.AT_PHNUM")
        .unstable("auxv.AT_RSEQ_FEATURE_SIZE")
        .unstable("auxv.AT_RSEQ_ALIGN")
        .expect_same();
}

#[test]
fn proc_self_in_an_empty_view() {
    // No filter in an empty view: only the tracer shows.
    Case::new("proc-self")
        .exact_view()
        .probe(["proc-self"])
        .unstable("status.CapEff")
        .unstable("status.CapBnd")
        .differs("status.TracerPid", "nonzero", "viewos traces every process with ptrace")
        .expect_same();
}

#[test]
fn proc_self_in_a_view() {
    Case::new("proc-self-in-a-view")
        .exact_view()
        .viewos_args(["--hostname=probe-view"])
        .probe(["proc-self"])
        .unstable("status.CapEff")
        .unstable("status.CapBnd")
        .differs("status.TracerPid", "nonzero", "viewos traces every process with ptrace")
        .differs("status.Seccomp", "2", "viewos installs a seccomp filter (SECCOMP_MODE_FILTER) to pick the calls it stops")
        .differs("status.Seccomp_filters", "1", "that filter is the only one in the chain")
        .differs(
            "status.NoNewPrivs",
            "1",
            "installing a seccomp filter requires no_new_privs (for a tracer without CAP_SYS_ADMIN)",
        )
        .expect_same();
}

#[test]
fn uname_fields() {
    Case::new("uname")
        .probe(["uname"])
        .unstable("nodename")
        .unstable("release")
        .expect_same();
}

#[test]
fn uname_with_own_hostname() {
    Case::new("uname-hostname")
        .viewos_args(["--hostname=view-host"])
        .probe(["uname"])
        .unstable("nodename")
        .unstable("release")
        .differs(
            "nodename",
            "view-host",
            "--hostname gives the view its own host name",
        )
        .expect_same();
}

#[test]
fn uname_faults_with_own_hostname() {
    // The emulated uname faults exactly where the kernel's would.
    Case::new("uname-faults")
        .viewos_args(["--hostname=view-host"])
        .probe(["uname-faults"])
        .expect_same();
}
