//! `viewos`: the command-line front end. Parses options, builds the view's modules, runs the
//! command under the tracer, and reports the command's exit status as a shell would.
//!
//! `no_main`: Rust's runtime start-up would set SIGPIPE to SIG_IGN, and the command would
//! inherit that (a `yes | head` in the view would then fail with EPIPE instead of dying
//! quietly). Without it, the command inherits viewos's own dispositions, exactly what it
//! would have inherited from viewos's parent.
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code))]

mod cli;
mod view;

use std::ffi::OsString;
use std::io::Write;

use viewos_core::modules::{Fakeroot, Intercept, Uname, Utsname};
use viewos_fakeroot::{Db, Mapping, state};
use viewos_tracer::HostFs;
use viewos_core::{Module, Monitor, Sysno};
use viewos_tracer::{Mechanism, Options, RunError, SpawnError};

use cli::{Action, Args, TraceTo};

/// Exit status when viewos itself fails (like env(1) and chroot(1)).
const EXIT_FAILURE: u8 = 125;

/// The built-in demo: a small shell session under `--trace --stats`, in a view with its
/// own host name, `/usr/share` shown at `/share`, `/etc/shadow` hidden, intercepting a few
/// calls.
fn demo_args() -> Args {
    let script = r#"echo "hello from inside a view"
echo "uname -n says: $(uname -n)"
echo "my pid is $$"
cat /proc/self/status | grep -E '^(Name|Pid|TracerPid|Seccomp):'
hostname renamed-inside && echo "after sethostname: $(uname -n)"
echo "/share holds $(ls /share | wc -l) entries (the host's /usr/share)"
cat /etc/shadow 2>&1 | sed 's/^/hidden: /'
exit 0"#;
    Args {
        trace: Some(TraceTo::Stderr),
        stats: true,
        intercept: vec!["getpid".into(), "execve".into()],
        hostname: Some("viewos-demo".into()),
        binds: vec!["/usr/share:/share".into()],
        hides: vec!["/etc/shadow".into()],
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        ..Args::default()
    }
}

fn host_utsname() -> Utsname {
    // SAFETY: utsname is plain bytes; uname fills it.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::uname(&mut u) };
    let fields = [&u.sysname, &u.nodename, &u.release, &u.version, &u.machine, &u.domainname];
    let mut bytes = Vec::with_capacity(6 * 65);
    for f in fields {
        bytes.extend(f.iter().map(|&c| c as u8));
    }
    Utsname::from_bytes(&bytes).expect("struct utsname is 6 x 65 bytes")
}

/// The view's modules, in priority order, and where the command starts (host directory,
/// guest path).
struct Setup {
    modules: Vec<Box<dyn Module>>,
    cwd: Option<(Vec<u8>, Vec<u8>)>,
}

fn modules(args: &Args) -> Result<Setup, String> {
    let mut m: Vec<Box<dyn Module>> = Vec::new();
    let mut cwd = None;
    let request = view::Request {
        root: args.root.as_deref(),
        bare_root: args.bare_root,
        binds: &args.binds,
        hides: &args.hides,
        mounts: &args.mounts,
        cows: &args.cows,
        cwd: args.cwd.as_deref(),
        fakeroot: args.fakeroot.then(|| args.uid.unwrap_or(0)),
    };
    if args.fakeroot {
        // First: its answers to identity calls and its view of ownership come before
        // anything else decides.
        m.push(Box::new(fakeroot(args)?));
    }
    if let Some(built) = view::build(request)? {
        m.push(Box::new(built.module));
        cwd = Some(built.cwd);
    }
    if let Some(name) = &args.hostname {
        use std::os::unix::ffi::OsStrExt;
        let u = Uname::new(host_utsname(), name.as_bytes()).map_err(|_| "--hostname: name longer than 64 bytes".to_string())?;
        m.push(Box::new(u));
    }
    if !args.intercept.is_empty() {
        let mut calls = Vec::new();
        for name in &args.intercept {
            if name == "all" {
                calls.extend(Sysno::all());
            } else {
                calls.push(Sysno::from_name(name).ok_or_else(|| format!("--intercept: unknown system call '{name}'"))?);
            }
        }
        m.push(Box::new(Intercept::new(calls, false)));
    }
    Ok(Setup { modules: m, cwd })
}

/// The fakeroot module, its database loaded from `--fakeroot-state` if that file exists.
fn fakeroot(args: &Args) -> Result<Fakeroot, String> {
    // SAFETY: getuid/getgid cannot fail.
    let (real_uid, real_gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let map = Mapping { real_uid, real_gid, uid: args.uid.unwrap_or(0), gid: args.gid.unwrap_or(0) };
    let db = match &args.fakeroot_state {
        None => Db::new(),
        Some(f) => match std::fs::read(f) {
            Ok(data) => state::load(&data).map_err(|e| format!("--fakeroot-state {}: {e}", f.to_string_lossy()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Db::new(),
            Err(e) => return Err(format!("--fakeroot-state {}: {e}", f.to_string_lossy())),
        },
    };
    Ok(Fakeroot::new(map, db, Box::new(HostFs)))
}

/// Writes `data` to `path` atomically: a temporary file beside it, synced, renamed over.
fn save_atomically(path: &std::path::Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let name = path.file_name().ok_or_else(|| std::io::Error::other("not a file name"))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".viewos-{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

fn run(args: Args) -> i32 {
    let Setup { modules, cwd } = match modules(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("viewos: {e}");
            return 2;
        }
    };
    let trace: Option<Box<dyn Write + Send>> = match &args.trace {
        None => None,
        Some(TraceTo::Stderr) => Some(Box::new(std::io::stderr())),
        Some(TraceTo::File(f)) => match std::fs::File::create(f) {
            Ok(f) => Some(Box::new(std::io::LineWriter::new(f))),
            Err(e) => {
                eprintln!("viewos: --trace: {}: {e}", f.to_string_lossy());
                return i32::from(EXIT_FAILURE);
            }
        },
    };
    let mechanism = if args.ptrace_only { Mechanism::Ptrace } else { Mechanism::Hybrid };
    match viewos_tracer::run(Monitor::new(modules), &args.command, Options { mechanism, trace, cwd }) {
        Ok(outcome) => {
            if args.stats {
                eprint!("{}", outcome.monitor.stats().render());
            }
            if let Some(f) = &args.fakeroot_state {
                for (name, data) in outcome.monitor.saved_state() {
                    if name == "fakeroot"
                        && let Err(e) = save_atomically(std::path::Path::new(f), &data)
                    {
                        eprintln!("viewos: --fakeroot-state {}: not saved: {e}", f.to_string_lossy());
                        return i32::from(EXIT_FAILURE);
                    }
                }
            }
            outcome.status.shell_code() & 0xff
        }
        Err(RunError::Spawn(e @ SpawnError::NotFound(_))) => {
            eprintln!("viewos: {e}");
            127
        }
        Err(e) => {
            eprintln!("viewos: {e}");
            i32::from(EXIT_FAILURE)
        }
    }
}

/// `viewos cow status STORE` and `viewos cow commit [--dry-run] STORE`.
fn cow_command(commit: bool, dry_run: bool, store: &std::ffi::OsStr) -> i32 {
    let mut s = match viewos_tracer::cow::Store::open(std::path::Path::new(store)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("viewos: cow: {e}");
            return 2;
        }
    };
    if !commit {
        for line in s.status() {
            println!("{line}");
        }
        return 0;
    }
    if dry_run {
        println!("# would apply to {}:", s.lower());
        for line in s.plan() {
            println!("{line}");
        }
        return 0;
    }
    match s.commit(|step| println!("{step}")) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("viewos: cow commit: {e}");
            1
        }
    }
}

#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // std captures the arguments itself on Linux, so args_os() works without lang_start.
    let code = cli_main();
    // Flush as std's runtime would at exit.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    code
}

fn cli_main() -> i32 {
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    match cli::parse(&argv) {
        Ok(Action::Help) => {
            print!("{}", cli::USAGE);
            0
        }
        Ok(Action::Version) => {
            println!("viewos {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Ok(Action::Demo) => run(demo_args()),
        Ok(Action::Cow { commit, dry_run, store }) => cow_command(commit, dry_run, &store),
        Ok(Action::Run(a)) => run(a),
        Err(e) => {
            eprintln!("viewos: {e} (try 'viewos --help')");
            2
        }
    }
}
