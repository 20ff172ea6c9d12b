//! The tmpfs table: the same file workloads on the kernel's tmpfs (a directory of
//! `/dev/shm`, natively) and on viewos's in-memory filesystem (`--mount tmpfs:DST`). Each
//! step is `viewos-workload` timing itself after an untimed preparation in the same shell
//! (a view's filesystem starts empty, so the preparation must run inside the view too).

use std::ffi::OsString;
use std::path::Path;

/// Where the view mounts its filesystem.
pub const MOUNT: &str = "/mnt/viewos-bench";

/// How a step's figure is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    /// GB/s from the time per MiB.
    Throughput,
    /// Microseconds per operation.
    Us,
    /// Milliseconds per run.
    Ms,
}

/// One measured step: `prepare` then `viewos-workload ARGS` in `DIR` (the placeholder
/// `{dir}` in both), and where the archive for `tar x` is (`{src}`).
#[derive(Clone, Debug)]
pub struct Step {
    pub name: &'static str,
    pub label: String,
    pub show: Show,
    pub prepare: &'static str,
    pub args: Vec<String>,
}

pub fn steps(quick: bool) -> Vec<Step> {
    let n = |full: u64, q: u64| if quick { q } else { full }.to_string();
    let redirections = format!("i=0; while [ $i -lt {} ]; do echo $i > {{dir}}/r; read x < {{dir}}/r; echo $x >> {{dir}}/log; i=$((i+1)); done", n(1000, 100));
    vec![
        Step { name: "write1m", label: "sequential 1 MiB writes, GB/s".into(), show: Show::Throughput, prepare: "true", args: vec!["write1m".into(), n(256, 32), "{dir}/big".into()] },
        Step { name: "read1m", label: "sequential 1 MiB reads, GB/s".into(), show: Show::Throughput, prepare: "head -c 64M /dev/zero > {dir}/big", args: vec!["read1m".into(), n(1024, 128), "{dir}/big".into()] },
        Step { name: "randread4k", label: "4 KiB random reads, µs per read".into(), show: Show::Us, prepare: "head -c 64M /dev/zero > {dir}/big", args: vec!["randread4k".into(), n(200_000, 20_000), "{dir}/big".into()] },
        Step { name: "create-unlink", label: format!("create + unlink of {} files, µs per file", n(10_000, 1000)), show: Show::Us, prepare: "true", args: vec!["create-unlink".into(), n(10_000, 1000), "{dir}".into()] },
        Step { name: "tar-x", label: "`tar x` of a source tree (/usr/include/linux), ms".into(), show: Show::Ms, prepare: "true", args: vec!["shell".into(), "1".into(), "tar xf {src} -C {dir}".into()] },
        Step { name: "redirections", label: format!("shell loop of redirections ({} × >, <, >>), ms", n(1000, 100)), show: Show::Ms, prepare: "true", args: vec!["shell".into(), "1".into(), redirections] },
        Step {
            name: "real-reads",
            label: "4 KiB reads of a *real* file by a process holding a virtual fd, µs per read".into(),
            show: Show::Us,
            prepare: "echo held > {dir}/held",
            args: vec!["read4k-holding".into(), n(200_000, 20_000), "{real}".into(), "{dir}/held".into()],
        },
    ]
}

/// `sh -c` script of `step` for directory `dir`: the preparation, then the workload.
pub fn script(step: &Step, workload: &Path, dir: &str, src: &Path, real: &Path) -> String {
    let fill = |s: &str| s.replace("{dir}", dir).replace("{src}", &src.display().to_string()).replace("{real}", &real.display().to_string());
    let quoted: Vec<String> = step.args.iter().map(|a| format!("'{}'", fill(a).replace('\'', "'\\''"))).collect();
    format!("set -e; {} ; exec '{}' {}", fill(step.prepare), workload.display(), quoted.join(" "))
}

/// The argv of a run: natively, or in a view with the filesystem at [`MOUNT`].
pub fn argv(viewos: Option<&Path>, script: &str) -> Vec<OsString> {
    let mut v: Vec<OsString> = match viewos {
        None => vec![],
        Some(v) => vec![v.into(), format!("--mount=tmpfs:{MOUNT}:size=1g").into(), "--".into()],
    };
    v.extend(["sh".into(), "-c".into(), script.into()]);
    v
}

/// The figure shown for a median of `ns` nanoseconds per operation.
pub fn figure(show: Show, ns: f64) -> f64 {
    match show {
        Show::Throughput => (1u64 << 20) as f64 / ns,
        Show::Us => ns / 1e3,
        Show::Ms => ns / 1e6,
    }
}
