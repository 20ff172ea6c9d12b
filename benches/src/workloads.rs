//! What is measured. Loops (`viewos-workload`) time themselves and report ns per
//! operation, so start-up is excluded; the others are timed from spawn to exit.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::report::Unit;
use crate::run::Stdout;
use crate::tools::argv;

/// Every workload name `--only` accepts, in run order.
pub const NAMES: &[(&str, &str)] = &[
    ("getpid", "raw getpid loop"),
    ("stat", "stat of a 3-component path"),
    ("open-close", "open + close of a 3-component path"),
    ("read4k", "4 KiB pread of a real file"),
    ("startup", "start-up and exit of an empty program"),
    ("fork-exec", "fork + exec of /bin/true + waitpid"),
    ("pingpong", "two threads ping-pong one byte over two pipes"),
    ("find", "find /usr, output drained"),
    ("tar", "tar cf - /usr/share/doc, output drained (reads every file)"),
    ("tar-devnull", "tar cf - /usr/share/doc > /dev/null (GNU tar then skips file data)"),
    ("make", "make -j2 of benches/cproj (12 C files)"),
    ("intercept", "cost per intercepted/emulated call (viewos only)"),
    ("view-stat", "path view: stat through a bind (viewos -b / proot -b)"),
    ("view-open-close", "path view: open + close through a bind"),
    ("view-find", "path view: find /usr with a hidden subtree"),
    ("view-tar", "path view: tar cf - of /usr/share/doc bound at /doc"),
    ("view-git", "path view: git status in a large bound repository"),
    ("view-make", "path view: make -j2 of benches/cproj inside -r /"),
    ("fakeroot", "fakeroot: tar xpf, chown -R, tar cf, dpkg-deb --build under Debian fakeroot, proot -0, viewos -0"),
    ("tmpfs", "--mount tmpfs: file I/O, create+unlink, tar x, redirections vs the kernel's tmpfs"),
    ("cow", "--cow: git status/checkout, make -j2, rm -rf, tar x in a copy-on-write view vs kernel overlayfs and fuse-overlayfs"),
    ("memory", "monitor RSS with 100 live guests"),
];

/// Inputs the workloads need.
#[derive(Clone, Debug)]
pub struct Env {
    pub workload: PathBuf,
    /// A 64 KiB file three components deep (`/tmp/<dir>/data`).
    pub data_file: PathBuf,
    /// A private copy of the C project.
    pub cproj: PathBuf,
    pub quick: bool,
    /// A git repository with many files, for `view-git` (made only if that is run).
    pub repo: Option<PathBuf>,
}

/// How a value is obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The `ns_per_op=` the workload prints.
    PerOp,
    /// Wall time from spawn to exit, averaged over this many back-to-back starts.
    Wall { starts: u32 },
}

/// One row of the main table.
#[derive(Clone, Debug)]
pub struct Workload {
    pub name: &'static str,
    pub label: String,
    pub unit: Unit,
    pub argv: Vec<OsString>,
    pub kind: Kind,
    pub stdout: Stdout,
    pub cwd: Option<PathBuf>,
    /// Run natively, untimed, before every measured run (e.g. `make clean`).
    pub before_each: Option<Vec<OsString>>,
    /// Run once natively before measuring, to warm caches.
    pub warm_up: bool,
    /// Stdout must have the same size as natively (a cheap correctness check).
    pub same_output: bool,
    /// For a path view: the command natively (host paths), and the view as viewos's and
    /// PRoot's options spell it.
    pub view: Option<View>,
}

/// A path-view workload's view, for each tool.
#[derive(Clone, Debug)]
pub struct View {
    pub native_argv: Vec<OsString>,
    pub viewos: Vec<OsString>,
    pub proot: Vec<OsString>,
}

impl Workload {
    fn per_op(name: &'static str, label: String, unit: Unit, argv: Vec<OsString>) -> Workload {
        Workload {
            name,
            label,
            unit,
            argv,
            kind: Kind::PerOp,
            stdout: Stdout::Capture,
            cwd: None,
            before_each: None,
            warm_up: false,
            same_output: false,
            view: None,
        }
    }

    fn wall(name: &'static str, label: String, unit: Unit, argv: Vec<OsString>, stdout: Stdout) -> Workload {
        Workload {
            kind: Kind::Wall { starts: 1 },
            stdout,
            warm_up: true,
            same_output: stdout == Stdout::Count,
            ..Workload::per_op(name, label, unit, argv)
        }
    }
}

/// `200000` → `200k`.
pub fn count(n: u64) -> String {
    match (n / 1000, n % 1000) {
        (k, 0) if k > 0 => format!("{k}k"),
        _ => n.to_string(),
    }
}

/// Iteration counts: the full run, or `--quick`.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub loop_n: u64,
    pub fork_n: u64,
    pub pingpong_n: u64,
    pub starts: u32,
}

impl Sizes {
    pub fn new(quick: bool) -> Sizes {
        if quick {
            Sizes { loop_n: 10_000, fork_n: 20, pingpong_n: 1_000, starts: 3 }
        } else {
            Sizes { loop_n: 200_000, fork_n: 200, pingpong_n: 20_000, starts: 20 }
        }
    }
}

/// The rows of the main table, in order.
pub fn main_workloads(env: &Env) -> Vec<Workload> {
    let s = Sizes::new(env.quick);
    let w = env.workload.as_os_str();
    let data = env.data_file.as_os_str();
    let n = s.loop_n.to_string();
    let find_root = if env.quick { "/usr/share/doc" } else { "/usr" };
    vec![
        Workload::per_op(
            "getpid",
            format!("getpid ×{} (µs/call)", count(s.loop_n)),
            Unit::Us,
            argv([w, "getpid".as_ref(), n.as_ref()]),
        ),
        Workload::per_op(
            "stat",
            format!("stat ×{} (µs/call)", count(s.loop_n)),
            Unit::Us,
            argv([w, "stat".as_ref(), n.as_ref(), data]),
        ),
        Workload::per_op(
            "open-close",
            format!("open+close ×{} (µs/pair)", count(s.loop_n)),
            Unit::Us,
            argv([w, "open-close".as_ref(), n.as_ref(), data]),
        ),
        Workload::per_op(
            "read4k",
            format!("4 KiB pread ×{} (µs/read)", count(s.loop_n)),
            Unit::Us,
            argv([w, "read4k".as_ref(), n.as_ref(), data]),
        ),
        Workload {
            kind: Kind::Wall { starts: s.starts },
            stdout: Stdout::Null,
            ..Workload::per_op(
                "startup",
                "start-up of an empty program (ms)".into(),
                Unit::Ms,
                argv([w, "empty".as_ref()]),
            )
        },
        Workload::per_op(
            "fork-exec",
            format!("fork+exec+wait of /bin/true ×{} (µs each)", count(s.fork_n)),
            Unit::Us,
            argv([w, "fork-exec".as_ref(), s.fork_n.to_string().as_ref(), "/bin/true".as_ref()]),
        ),
        Workload::per_op(
            "pingpong",
            format!("2-thread pipe ping-pong ×{} (µs/round trip)", count(s.pingpong_n)),
            Unit::Us,
            argv([w, "pingpong".as_ref(), s.pingpong_n.to_string().as_ref()]),
        ),
        Workload::wall("find", format!("`find {find_root}` (s)"), Unit::S, argv(["find", find_root]), Stdout::Count),
        Workload::wall(
            "tar",
            "`tar cf - /usr/share/doc \\| drain` (s)".into(),
            Unit::S,
            argv(["tar", "cf", "-", "/usr/share/doc"]),
            Stdout::Count,
        ),
        Workload::wall(
            "tar-devnull",
            "`tar cf - /usr/share/doc > /dev/null` (s)".into(),
            Unit::S,
            argv(["tar", "cf", "-", "/usr/share/doc"]),
            Stdout::Null,
        ),
        Workload {
            cwd: Some(env.cproj.clone()),
            before_each: Some(argv(["make", "-s", "clean"])),
            ..Workload::wall("make", "`make -j2`, 12 C files (s)".into(), Unit::S, argv(["make", "-j2"]), Stdout::Null)
        },
    ]
}

/// The path-view table: the same work natively on host paths, and through the equivalent
/// view under viewos and PRoot.
pub fn view_workloads(env: &Env) -> Vec<Workload> {
    let s = Sizes::new(env.quick);
    let w = env.workload.as_os_str();
    let n = s.loop_n.to_string();
    let dir = env.data_file.parent().map(PathBuf::from).unwrap_or_default();
    let bind = |src: &std::path::Path, dst: &str| format!("{}:{dst}", src.display());
    let viewed = |mut wl: Workload, native: Vec<OsString>, viewos: Vec<String>, proot: Vec<String>| {
        wl.view = Some(View { native_argv: native, viewos: argv(viewos), proot: argv(proot) });
        wl
    };
    let b = bind(&dir, "/bound");
    let mut v = vec![
        viewed(
            Workload::per_op("view-stat", format!("stat ×{} through a bind (µs/call)", count(s.loop_n)), Unit::Us, argv([w, "stat".as_ref(), n.as_ref(), "/bound/data".as_ref()])),
            argv([w, "stat".as_ref(), n.as_ref(), env.data_file.as_os_str()]),
            vec!["-b".into(), b.clone()],
            vec!["-b".into(), b.clone()],
        ),
        viewed(
            Workload::per_op(
                "view-open-close",
                format!("openat+close ×{} through a bind (µs/pair)", count(s.loop_n)),
                Unit::Us,
                argv([w, "open-close".as_ref(), n.as_ref(), "/bound/data".as_ref()]),
            ),
            argv([w, "open-close".as_ref(), n.as_ref(), env.data_file.as_os_str()]),
            vec!["-b".into(), b.clone()],
            vec!["-b".into(), b],
        ),
    ];
    let find_root = if env.quick { "/usr/share/doc" } else { "/usr" };
    let mut find = Workload::wall("view-find", format!("`find {find_root}`, /usr/share/man hidden (s)"), Unit::S, argv(["find", find_root]), Stdout::Count);
    // Fewer names come out when a subtree is hidden; PRoot has no hide, an empty directory
    // bound over it is its nearest equivalent.
    find.same_output = false;
    v.push(viewed(find, argv(["find", find_root]), vec!["--hide".into(), "/usr/share/man".into()], vec!["-b".into(), format!("{}:/usr/share/man", dir.join("empty").display())]));
    let mut tar = Workload::wall("view-tar", "`tar cf - /doc \\| drain`, /usr/share/doc bound at /doc (s)".into(), Unit::S, argv(["tar", "cf", "-", "/doc"]), Stdout::Count);
    tar.same_output = false;
    v.push(viewed(tar, argv(["tar", "cf", "-", "/usr/share/doc"]), vec!["-b".into(), "/usr/share/doc:/doc".into()], vec!["-b".into(), "/usr/share/doc:/doc".into()]));
    if let Some(repo) = &env.repo {
        let b = bind(repo, "/repo");
        let mut git = Workload::wall("view-git", "`git status` in a bound repository (s)".into(), Unit::S, argv(["git", "-C", "/repo", "status", "--porcelain"]), Stdout::Count);
        git.same_output = true;
        v.push(viewed(git, argv(["git".as_ref(), "-C".as_ref(), repo.as_os_str(), "status".as_ref(), "--porcelain".as_ref()]), vec!["-b".into(), b.clone()], vec!["-b".into(), b]));
    }
    let cwd = env.cproj.display().to_string();
    let make = Workload {
        cwd: Some(env.cproj.clone()),
        before_each: Some(argv(["make", "-s", "clean"])),
        ..Workload::wall("view-make", "`make -j2`, 12 C files, inside `-r /` (s)".into(), Unit::S, argv(["make", "-j2"]), Stdout::Null)
    };
    v.push(viewed(make, argv(["make", "-j2"]), vec!["-r".into(), "/".into(), "-w".into(), cwd.clone()], vec!["-r".into(), "/".into(), "-w".into(), cwd]));
    v
}

/// One row of the intercepted-calls table: a loop under viewos with extra options,
/// against the same loop natively.
#[derive(Clone, Debug)]
pub struct InterceptCase {
    pub label: String,
    pub viewos_opts: Vec<&'static str>,
    pub workload: Workload,
}

pub fn intercept_cases(env: &Env) -> Vec<InterceptCase> {
    let s = Sizes::new(env.quick);
    let w = env.workload.as_os_str();
    let n = s.loop_n.to_string();
    let getpid = Workload::per_op("getpid", String::new(), Unit::Us, argv([w, "getpid".as_ref(), n.as_ref()]));
    let uname = Workload::per_op("uname", String::new(), Unit::Us, argv([w, "uname".as_ref(), n.as_ref()]));
    let case = |label: &str, opts: &[&'static str], w: &Workload| InterceptCase {
        label: label.into(),
        viewos_opts: opts.to_vec(),
        workload: w.clone(),
    };
    vec![
        case("getpid, not intercepted (empty view)", &[], &getpid),
        case("getpid, `--intercept getpid` (default mechanism)", &["--intercept", "getpid"], &getpid),
        case(
            "getpid, `--intercept getpid --mechanism hybrid`",
            &["--intercept", "getpid", "--mechanism", "hybrid"],
            &getpid,
        ),
        case(
            "getpid, `--intercept getpid --mechanism ptrace`",
            &["--intercept", "getpid", "--mechanism", "ptrace"],
            &getpid,
        ),
        case("uname, emulated (`--hostname bench`)", &["--hostname", "bench"], &uname),
    ]
}

/// The memory workload: `guests` sleeping processes alive at once.
pub fn memory_argv(guests: usize, secs: u32) -> Vec<OsString> {
    argv(["sh".to_string(), "-c".to_string(), format!("for i in $(seq {guests}); do sleep {secs} & done; wait")])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_short() {
        assert_eq!(count(200_000), "200k");
        assert_eq!(count(200), "200");
        assert_eq!(count(1_500), "1500");
    }

    #[test]
    fn every_main_workload_has_a_listed_name() {
        let env =
            Env { workload: "/w".into(), data_file: "/tmp/x/data".into(), cproj: "/tmp/x/cproj".into(), quick: false, repo: None };
        for w in main_workloads(&env).into_iter().chain(view_workloads(&env)) {
            assert!(NAMES.iter().any(|(n, _)| *n == w.name), "{}", w.name);
        }
    }
}
