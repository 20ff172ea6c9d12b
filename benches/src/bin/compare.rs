//! `viewos-compare`: the same workloads natively, under viewos and under PRoot, in one run,
//! reported as markdown tables of medians. See `viewos-compare --help`.
//!
//! Build first: `cargo build --release -p viewos -p viewos-workload -p viewos-benches`,
//! then run `target/release/viewos-compare`. Runs of the three tools are interleaved
//! within each repetition so that drift (page cache, CPU frequency, neighbours) hits all
//! columns alike.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use viewos_benches::memory;
use viewos_benches::opts::{self, Opts};
use viewos_benches::report::{self, Cell, InterceptRow, Row};
use viewos_benches::run::{self, Stdout};
use viewos_benches::tools::{self, Tool, Tools, argv};
use viewos_benches::workloads::{self, Env, Kind, Workload};

fn main() -> ExitCode {
    let o = match opts::parse(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{}", opts::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("viewos-compare: {e}");
            return ExitCode::from(2);
        }
    };
    if o.list {
        for (name, what) in workloads::NAMES {
            println!("{name:12} {what}");
        }
        return ExitCode::SUCCESS;
    }
    match compare(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("viewos-compare: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Failures worth telling the reader, printed after the tables.
#[derive(Default)]
struct Notes(Vec<String>);

impl Notes {
    fn add(&mut self, s: String) {
        eprintln!("  note: {s}");
        if !self.0.contains(&s) {
            self.0.push(s);
        }
    }
}

fn compare(o: &Opts) -> Result<(), String> {
    if let Some(unknown) = o.only.iter().flatten().find(|n| !workloads::NAMES.iter().any(|(k, _)| k == n)) {
        return Err(format!("unknown workload {unknown:?}; see --list"));
    }
    if let Some(cpu) = o.pin {
        pin_to(cpu)?;
    }
    let mut notes = Notes::default();
    let tools = resolve_tools(o, &mut notes)?;
    let scratch = Scratch::new()?;
    let env = Env {
        workload: tools.workload.clone(),
        data_file: scratch.data_file()?,
        cproj: scratch.cproj(o)?,
        quick: o.quick,
        repo: None,
    };
    let wanted = |name: &str| o.only.as_ref().is_none_or(|l| l.iter().any(|n| n == name));

    print_header(o, &tools, &env);
    // Every wanted workload of a table under the three tools.
    let rows_of = |list: Vec<Workload>, notes: &mut Notes| -> Vec<Row> {
        list.iter()
            .filter(|w| wanted(w.name))
            .map(|w| {
                let [native, viewos, proot] = measure(w, &Tool::ALL, &[], &tools, o, notes);
                Row { label: w.label.clone(), unit: w.unit, native, viewos, proot }
            })
            .collect()
    };
    let rows = rows_of(workloads::main_workloads(&env), &mut notes);
    if !rows.is_empty() {
        println!("{}", report::main_table(&rows));
    }

    let env = Env { repo: if wanted("view-git") { Some(scratch.repo()?) } else { None }, ..env };
    let rows = rows_of(workloads::view_workloads(&env), &mut notes);
    if !rows.is_empty() {
        println!("Path views: natively on the host paths, under viewos and PRoot through the same view:\n");
        println!("{}", report::main_table(&rows));
    }

    if wanted("intercept") {
        let mut rows = Vec::new();
        for case in workloads::intercept_cases(&env) {
            // An option this viewos lacks, or a mechanism that hangs, is "n/a" after a short
            // probe instead of a full timeout per repetition.
            let which: &[Tool] =
                if probe(&case, &tools, &mut notes) { &[Tool::Native, Tool::Viewos] } else { &[Tool::Native] };
            let [native, viewos, _] = measure(&case.workload, which, &case.viewos_opts, &tools, o, &mut notes);
            let monitored = if viewos == Cell::Failed { Cell::NotAvailable } else { viewos };
            rows.push(InterceptRow { label: case.label, native, monitored });
        }
        println!(
            "Cost per call, µs (median of {} × {} calls):\n",
            o.reps,
            workloads::count(workloads::Sizes::new(o.quick).loop_n)
        );
        println!("{}", report::intercept_table(&rows));
    }

    if wanted("fakeroot") {
        print_fakeroot(&tools, o, &scratch, &mut notes)?;
    }

    if wanted("tmpfs") {
        print_tmpfs(&tools, o, &mut notes)?;
    }

    if wanted("cow") {
        print_cow(&tools, o, &scratch, &mut notes)?;
    }

    if wanted("memory") {
        print_memory(&tools, o, &mut notes);
    }

    if !notes.0.is_empty() {
        println!("Notes:\n");
        for n in &notes.0 {
            println!("- {n}");
        }
        println!();
    }
    Ok(())
}

/// Finds the binaries and checks that each monitor can run a trivial program.
fn resolve_tools(o: &Opts, notes: &mut Notes) -> Result<Tools, String> {
    let here = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf)).unwrap_or_default();
    let workload = o.workload.clone().unwrap_or_else(|| here.join("viewos-workload"));
    if !tools::is_executable(&workload) {
        return Err(format!(
            "{} not found; build it with `cargo build --release -p viewos-workload` or pass --workload",
            workload.display()
        ));
    }
    let viewos = o.viewos.clone().unwrap_or_else(|| here.join("viewos"));
    let viewos = tools::is_executable(&viewos).then_some(viewos);
    if viewos.is_none() {
        notes.add("viewos: binary not found (build it with `cargo build --release -p viewos` or pass --viewos)".into());
    }
    let proot = if o.no_proot { None } else { o.proot.clone().or_else(|| tools::which("proot")) };
    if proot.is_none() && !o.no_proot {
        notes.add("proot: not installed".into());
    }
    let mut t = Tools { workload, viewos, proot };
    // A monitor that cannot run an empty program would only produce a column of failures.
    for tool in [Tool::Viewos, Tool::Proot] {
        let Some(cmd) = t.command(tool, &[], &argv([t.workload.as_os_str(), "empty".as_ref()])) else { continue };
        match run::run(cmd, Stdout::Capture, Duration::from_secs(30)) {
            Ok(out) if out.ok() => {}
            Ok(out) => {
                notes.add(format!(
                    "{}: cannot run `viewos-workload empty` ({}); column left n/a",
                    tool.name(),
                    out.failure()
                ));
                disable(&mut t, tool);
            }
            Err(e) => {
                notes.add(format!("{}: cannot start ({e}); column left n/a", tool.name()));
                disable(&mut t, tool);
            }
        }
    }
    Ok(t)
}

/// Runs an intercepted case once with a count of 1 and a short timeout.
fn probe(case: &workloads::InterceptCase, t: &Tools, notes: &mut Notes) -> bool {
    let mut a = case.workload.argv.clone();
    if let Some(n) = a.get_mut(2) {
        *n = "1".into();
    }
    let what = format!("{} [{}]", case.workload.name, case.viewos_opts.join(" "));
    let Some(cmd) = t.command(Tool::Viewos, &case.viewos_opts, &a) else { return false };
    match run::run(cmd, Stdout::Capture, Duration::from_secs(20)) {
        Ok(out) if out.ok() => true,
        Ok(out) => {
            notes.add(format!("viewos: `{what}` with a count of 1: {}", out.failure()));
            false
        }
        Err(e) => {
            notes.add(format!("viewos: `{what}` could not start: {e}"));
            false
        }
    }
}

fn disable(t: &mut Tools, tool: Tool) {
    match tool {
        Tool::Viewos => t.viewos = None,
        Tool::Proot => t.proot = None,
        Tool::Native => {}
    }
}

fn print_header(o: &Opts, t: &Tools, env: &Env) {
    let show = |p: &Option<PathBuf>| p.as_ref().map_or("n/a".to_string(), |p| p.display().to_string());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("## viewos vs native vs PRoot\n");
    println!("- viewos: `{}`", show(&t.viewos));
    println!("- proot: `{}`{}", show(&t.proot), t.proot.as_deref().map(proot_version).unwrap_or_default());
    println!("- workload: `{}`", t.workload.display());
    println!("- data file: `{}`, C project copy: `{}`", env.data_file.display(), env.cproj.display());
    println!(
        "- Linux {}, {cpus} CPUs, {}; {} repetitions, medians{}",
        kernel.trim(),
        o.pin.map_or("default placement (unpinned)".into(), |c| format!("everything pinned to CPU {c}")),
        o.reps,
        if o.quick { "; --quick sizes" } else { "" }
    );
    if cfg!(debug_assertions) || t.viewos.as_ref().is_some_and(|p| p.to_string_lossy().contains("/debug/")) {
        println!("- **debug build in use**: numbers are not representative");
    }
    println!();
}

fn proot_version(p: &Path) -> String {
    let out =
        Command::new(p).arg("-V").output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    out.split_whitespace()
        .find(|w| {
            w.split('.').count() == 3 && w.split('.').all(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|v| format!(" (PRoot {v})"))
        .unwrap_or_default()
}

/// Measures `w` under each of `which`, interleaved, `o.reps` times. A tool that fails once
/// is not run again for this workload. Returns cells for native, viewos, proot.
fn measure(w: &Workload, which: &[Tool], viewos_opts: &[&str], t: &Tools, o: &Opts, notes: &mut Notes) -> [Cell; 3] {
    let mut samples: [Vec<f64>; 3] = Default::default();
    let mut failed = [false; 3];
    let mut native_bytes = None;
    let idx = |tool: Tool| Tool::ALL.iter().position(|&x| x == tool).expect("listed");
    let what =
        if viewos_opts.is_empty() { w.name.to_string() } else { format!("{} [{}]", w.name, viewos_opts.join(" ")) };
    if w.warm_up {
        prepare(w, o, notes);
        let _ = once(w, Tool::Native, &[], t, o);
    }
    for rep in 1..=o.reps {
        for &tool in which {
            let i = idx(tool);
            if !t.has(tool) || failed[i] {
                continue;
            }
            let starts = match w.kind {
                Kind::PerOp => 1,
                Kind::Wall { starts } => starts,
            };
            let mut total_ns = 0.0;
            let mut value = None;
            for _ in 0..starts {
                prepare(w, o, notes);
                match once(w, tool, viewos_opts, t, o) {
                    Ok(out) if !out.ok() => {
                        notes.add(format!("{}: `{what}` failed: {}", tool.name(), out.failure()));
                        failed[i] = true;
                    }
                    Ok(out) => {
                        if w.same_output {
                            match (tool, native_bytes) {
                                (Tool::Native, _) => native_bytes = Some(out.stdout_bytes),
                                (_, Some(n)) if n != out.stdout_bytes => notes.add(format!(
                                    "{}: `{what}` wrote {} bytes to stdout, natively {n}",
                                    tool.name(),
                                    out.stdout_bytes
                                )),
                                _ => {}
                            }
                        }
                        value = match w.kind {
                            Kind::PerOp => report::parse_ns_per_op(&out.stdout),
                            Kind::Wall { .. } => {
                                total_ns += out.elapsed.as_nanos() as f64;
                                Some(total_ns / f64::from(starts))
                            }
                        };
                        if value.is_none() {
                            notes.add(format!(
                                "{}: `{what}` printed no ns_per_op line: {:?}",
                                tool.name(),
                                out.stdout.trim()
                            ));
                            failed[i] = true;
                        }
                    }
                    Err(e) => {
                        notes.add(format!("{}: `{what}` could not start: {e}", tool.name()));
                        failed[i] = true;
                    }
                }
                if failed[i] {
                    break;
                }
            }
            if let (false, Some(v)) = (failed[i], value) {
                eprintln!("[{what}] rep {rep}/{} {:7} {} {}", o.reps, tool.name(), w.unit.show(v), w.unit.symbol());
                samples[i].push(v);
            }
        }
    }
    [0, 1, 2].map(|i| Cell::from_samples(&samples[i], failed[i]))
}

fn once(w: &Workload, tool: Tool, viewos_opts: &[&str], t: &Tools, o: &Opts) -> std::io::Result<run::Outcome> {
    let mut cmd = match &w.view {
        None => t.command(tool, viewos_opts, &w.argv),
        Some(v) if tool == Tool::Native => t.command(tool, &[], &v.native_argv),
        Some(v) => {
            let mut vo: Vec<std::ffi::OsString> = viewos_opts.iter().map(Into::into).collect();
            vo.extend(v.viewos.iter().cloned());
            t.command_in(tool, &vo, &v.proot, &w.argv)
        }
    }
    .expect("tool checked");
    if let Some(d) = &w.cwd {
        cmd.current_dir(d);
    }
    run::run(cmd, w.stdout, o.timeout)
}

/// The untimed native step before a run (`make clean`).
fn prepare(w: &Workload, o: &Opts, notes: &mut Notes) {
    let Some(pre) = &w.before_each else { return };
    let mut cmd = Command::new(&pre[0]);
    cmd.args(&pre[1..]);
    if let Some(d) = &w.cwd {
        cmd.current_dir(d);
    }
    match run::run(cmd, Stdout::Null, o.timeout) {
        Ok(out) if out.ok() => {}
        Ok(out) => notes.add(format!("{}: preparation {:?} failed: {}", w.name, pre, out.failure())),
        Err(e) => notes.add(format!("{}: preparation {:?} could not start: {e}", w.name, pre)),
    }
}

fn print_memory(t: &Tools, o: &Opts, notes: &mut Notes) {
    const GUESTS: usize = 100;
    let secs = if o.quick { 3 } else { 5 };
    let cmd_argv = workloads::memory_argv(GUESTS, secs);
    println!(
        "Monitor memory with {GUESTS} live guests (`sh -c 'for i in $(seq {GUESTS}); do sleep {secs} & done; wait'`), VmRSS of the monitor process:\n"
    );
    println!(
        "| monitor | RSS, first guest (MB) | RSS, {GUESTS} guests alive (MB) | per extra guest (KiB) | most guests seen |"
    );
    println!("|---|---:|---:|---:|---:|");
    for tool in [Tool::Viewos, Tool::Proot] {
        let Some(cmd) = t.command(tool, &[], &cmd_argv) else {
            println!("| {} | n/a | n/a | n/a | n/a |", tool.name());
            continue;
        };
        eprintln!("[memory] {}", tool.name());
        match memory::sample(cmd, GUESTS, o.timeout) {
            Ok((fp, status, stderr)) => {
                if !status.success() {
                    notes.add(format!(
                        "{}: memory workload ended with {status}; stderr: {}",
                        tool.name(),
                        stderr.trim()
                    ));
                }
                if fp.max_guests < GUESTS {
                    notes.add(format!(
                        "{}: memory workload: only {} guests were seen alive at once",
                        tool.name(),
                        fp.max_guests
                    ));
                }
                let mb = |kib: u64| if kib == 0 { "n/a".to_string() } else { report::number(kib as f64 / 1024.0) };
                let per = if fp.rss_full_kib > 0 && fp.rss_first_kib > 0 {
                    report::number((fp.rss_full_kib as f64 - fp.rss_first_kib as f64) / (GUESTS as f64 - 1.0))
                } else {
                    "n/a".into()
                };
                println!(
                    "| {} | {} | {} | {per} | {} |",
                    tool.name(),
                    mb(fp.rss_first_kib),
                    mb(fp.rss_full_kib),
                    fp.max_guests
                );
            }
            Err(e) => {
                notes.add(format!("{}: memory workload could not start: {e}", tool.name()));
                println!("| {} | fail | fail | fail | – |", tool.name());
            }
        }
    }
    println!();
}

/// The fakeroot table: each packaging step under the four ways of running it.
fn print_fakeroot(t: &Tools, o: &Opts, scratch: &Scratch, notes: &mut Notes) -> Result<(), String> {
    use viewos_benches::fakeroot::{self, Faker};
    use viewos_benches::report::FakerootRow;
    let dir = fakeroot::dir_in(&scratch.0);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let setup = fakeroot::setup_script(&dir, o.quick);
    let out = run::run({ let mut c = Command::new("sh"); c.args(["-c", &setup]); c }, Stdout::Null, o.timeout).map_err(|e| format!("fakeroot setup: {e}"))?;
    if !out.ok() {
        return Err(format!("fakeroot setup failed: {}", out.failure()));
    }
    let fakeroot_bin = tools::which("fakeroot");
    if fakeroot_bin.is_none() {
        notes.add("fakeroot: not installed (Debian package fakeroot)".into());
    }
    let mut rows = Vec::new();
    for step in fakeroot::steps(&dir, o.quick) {
        let mut samples: [Vec<f64>; 4] = Default::default();
        let mut failed = [false; 4];
        for rep in 1..=o.reps {
            for (i, f) in Faker::ALL.into_iter().enumerate() {
                let Some(a) = f.argv(fakeroot_bin.as_deref(), t.proot.as_deref(), t.viewos.as_deref(), &step.script) else { continue };
                if failed[i] {
                    continue;
                }
                let mut p = Command::new("sh");
                p.args(["-c", &format!("{}; sync", step.prepare)]);
                let _ = run::run(p, Stdout::Null, o.timeout);
                let mut c = Command::new(&a[0]);
                c.args(&a[1..]).env("LC_ALL", "C");
                match run::run(c, Stdout::Null, o.timeout) {
                    Ok(out) if out.ok() => {
                        let ns = out.elapsed.as_nanos() as f64;
                        eprintln!("[{}] rep {rep}/{} {:9} {} {}", step.name, o.reps, f.name(), step.unit.show(ns), step.unit.symbol());
                        samples[i].push(ns);
                    }
                    Ok(out) => {
                        notes.add(format!("{}: `{}` failed: {}", f.name(), step.name, out.failure()));
                        failed[i] = true;
                    }
                    Err(e) => {
                        notes.add(format!("{}: `{}` could not start: {e}", f.name(), step.name));
                        failed[i] = true;
                    }
                }
            }
        }
        let [native, fakeroot, proot, viewos] = [0, 1, 2, 3].map(|i| Cell::from_samples(&samples[i], failed[i]));
        rows.push(FakerootRow { label: step.label.clone(), unit: step.unit, native, fakeroot, proot, viewos });
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("fakeroot: packaging steps in {}, under Debian's fakeroot, PRoot's -0 and viewos -0 (and natively, where nothing is faked):\n", dir.parent().map_or("?".into(), |p| p.display().to_string()));
    println!("{}", viewos_benches::report::fakeroot_table(&rows));
    Ok(())
}

/// The tmpfs table: each file workload on the kernel's tmpfs and on viewos's.
fn print_tmpfs(t: &Tools, o: &Opts, notes: &mut Notes) -> Result<(), String> {
    use viewos_benches::report::{TmpfsRow, number};
    use viewos_benches::tmpfs;
    let base = std::path::PathBuf::from(format!("/dev/shm/viewos-bench-tmpfs-{}", std::process::id()));
    std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    let src = base.join("src.tar");
    let real = base.join("real");
    let setup = format!("tar cf {} -C /usr/include linux && head -c 1M /dev/urandom > {}", src.display(), real.display());
    let out = run::run({ let mut c = Command::new("sh"); c.args(["-c", &setup]); c }, Stdout::Null, o.timeout).map_err(|e| format!("tmpfs setup: {e}"))?;
    if !out.ok() {
        return Err(format!("tmpfs setup failed: {}", out.failure()));
    }
    let mut rows = Vec::new();
    for step in tmpfs::steps(o.quick) {
        let mut samples: [Vec<f64>; 2] = Default::default();
        let mut failed = [false; 2];
        for rep in 1..=o.reps {
            for (i, viewos) in [None, t.viewos.as_deref()].into_iter().enumerate() {
                if failed[i] || (i == 1 && viewos.is_none()) {
                    continue;
                }
                let dir = if i == 0 { base.join("d").display().to_string() } else { tmpfs::MOUNT.to_string() };
                let script = tmpfs::script(&step, &t.workload, &dir, &src, &real);
                let script = if i == 0 { format!("rm -rf {dir}; mkdir {dir}; {script}") } else { script };
                let a = tmpfs::argv(viewos, &script);
                let mut c = Command::new(&a[0]);
                c.args(&a[1..]).env("LC_ALL", "C");
                match run::run(c, Stdout::Capture, o.timeout) {
                    Ok(out) if out.ok() => match out.stdout.trim().strip_prefix("ns_per_op=").and_then(|v| v.parse::<f64>().ok()) {
                        Some(ns) => {
                            eprintln!("[tmpfs-{}] rep {rep}/{} {:7} {}", step.name, o.reps, if i == 0 { "native" } else { "viewos" }, number(tmpfs::figure(step.show, ns)));
                            samples[i].push(ns);
                        }
                        None => {
                            notes.add(format!("tmpfs `{}`: unexpected output {:?}", step.name, out.stdout));
                            failed[i] = true;
                        }
                    },
                    Ok(out) => {
                        notes.add(format!("tmpfs `{}` ({}): failed: {}", step.name, if i == 0 { "native" } else { "viewos" }, out.failure()));
                        failed[i] = true;
                    }
                    Err(e) => {
                        notes.add(format!("tmpfs `{}`: could not start: {e}", step.name));
                        failed[i] = true;
                    }
                }
            }
        }
        let [native, viewos] = [0, 1].map(|i| Cell::from_samples(&samples[i], failed[i]));
        rows.push(TmpfsRow { label: step.label.clone(), show: step.show, native, viewos });
    }
    let _ = std::fs::remove_dir_all(&base);
    println!("tmpfs: the kernel's tmpfs (a directory of /dev/shm, natively) and viewos's in-memory filesystem (--mount tmpfs:{}, size=1g); medians of {}:\n", tmpfs::MOUNT, o.reps);
    println!("{}", viewos_benches::report::tmpfs_table(&rows));
    Ok(())
}

/// The cow table: each step in a copy-on-write view made by kernel overlayfs,
/// fuse-overlayfs and `viewos --cow`, interleaved per repetition.
fn print_cow(t: &Tools, o: &Opts, scratch: &Scratch, notes: &mut Notes) -> Result<(), String> {
    use viewos_benches::cow::{self, Bins, Needs, Way};
    use viewos_benches::report::CowRow;
    let work = cow::dir_in(&scratch.0);
    let sizes = cow::Sizes::new(o.quick);
    let git = tools::which("git").is_some();
    let cc = tools::which("cc").is_some() && tools::which("make").is_some();
    // SAFETY: geteuid cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    let fuse_overlayfs = tools::which("fuse-overlayfs");
    let fusermount = tools::which("fusermount").or_else(|| tools::which("fusermount3"));
    let b = Bins { workload: t.workload.clone(), viewos: t.viewos.clone(), fuse_overlayfs: fuse_overlayfs.clone(), fusermount: fusermount.clone(), root };

    // Whole columns that cannot run here, and why (shown in their cells).
    let unshare = tools::which("unshare").is_some();
    let why_na: [Option<String>; 3] = [
        if !root {
            Some("needs root".into())
        } else if !unshare {
            Some("no unshare".into())
        } else {
            None
        },
        if fuse_overlayfs.is_none() {
            Some("not installed".into())
        } else if fusermount.is_none() {
            Some("no fusermount".into())
        } else if !Path::new("/dev/fuse").exists() {
            Some("no /dev/fuse".into())
        } else if !root && !can_read_write("/dev/fuse") {
            // libfuse opens /dev/fuse itself and only falls back on fusermount when the
            // device is missing, not when it may not be opened.
            Some("no access to /dev/fuse".into())
        } else if root && !unshare {
            Some("no unshare".into())
        } else {
            None
        },
        t.viewos.is_none().then(|| "not built".into()),
    ];
    if fuse_overlayfs.is_none() {
        notes.add("fuse-overlayfs: not installed (Debian package fuse-overlayfs); its column is n/a".into());
    }
    if !root {
        notes.add("cow: kernel overlayfs needs root (a mount in a private mount namespace); its column is n/a".into());
    }

    let _ = std::fs::remove_dir_all(&work);
    eprintln!("[cow] making the lower tree in {}", work.display());
    let setup = cow::write_lower(&work, &sizes, git, cc)?;
    let out = run::run({ let mut c = Command::new("sh"); c.args(["-c", &setup]).current_dir(&work).env("LC_ALL", "C"); c }, Stdout::Null, o.timeout)
        .map_err(|e| format!("cow setup: {e}"))?;
    if !out.ok() {
        let _ = std::fs::remove_dir_all(&work);
        return Err(format!("cow setup failed: {}", out.failure()));
    }

    // A column whose view cannot even run `true` fails every row, with one note.
    let mut broken = [false; 3];
    for (i, way) in Way::ALL.into_iter().enumerate() {
        let Some(a) = cow::argv(way, &b, &work, "", "true").filter(|_| why_na[i].is_none()) else { continue };
        let mut c = Command::new(&a[0]);
        c.args(&a[1..]).env("LC_ALL", "C");
        match run::run(c, Stdout::Capture, Duration::from_secs(30)) {
            Ok(out) if out.ok() => {}
            Ok(out) => {
                notes.add(format!("{}: cannot make the copy-on-write view ({}); column shows fail", way.name(), out.failure()));
                broken[i] = true;
            }
            Err(e) => {
                notes.add(format!("{}: cannot start ({e}); column shows fail", way.name()));
                broken[i] = true;
            }
        }
    }

    let mut rows = Vec::new();
    for step in cow::steps(&work, &sizes) {
        let missing = match step.needs {
            Needs::Nothing => None,
            Needs::Git => (!git).then_some("git"),
            Needs::Cc => (!cc).then_some("cc or make"),
        };
        if let Some(m) = missing {
            notes.add(format!("cow: `{}` skipped: no {m}", step.name));
            let na = Cell::NotAvailable;
            rows.push(CowRow { label: format!("{} (skipped: no {m})", step.label), unit: step.unit, overlayfs: na.clone(), fuse_overlayfs: na.clone(), viewos: na });
            continue;
        }
        let mut samples: [Vec<f64>; 3] = Default::default();
        let mut failed = broken;
        for rep in 1..=o.reps {
            for (i, way) in Way::ALL.into_iter().enumerate() {
                if failed[i] || why_na[i].is_some() {
                    continue;
                }
                let Some(a) = cow::argv(way, &b, &work, step.subdir, &step.script) else { continue };
                let mut c = Command::new(&a[0]);
                c.args(&a[1..]).env("LC_ALL", "C");
                match run::run(c, Stdout::Capture, o.timeout) {
                    Ok(out) if out.ok() => match report::parse_ns_per_op(&out.stdout) {
                        Some(ns) => {
                            eprintln!("[{}] rep {rep}/{} {:14} {} {}", step.name, o.reps, way.name(), step.unit.show(ns), step.unit.symbol());
                            samples[i].push(ns);
                        }
                        None => {
                            notes.add(format!("{}: `{}` printed no ns_per_op line: {:?}", way.name(), step.name, out.stdout.trim()));
                            failed[i] = true;
                        }
                    },
                    Ok(out) => {
                        notes.add(format!("{}: `{}` failed: {}", way.name(), step.name, out.failure()));
                        failed[i] = true;
                    }
                    Err(e) => {
                        notes.add(format!("{}: `{}` could not start: {e}", way.name(), step.name));
                        failed[i] = true;
                    }
                }
            }
        }
        let [overlayfs, fuse_overlayfs, viewos] = [0, 1, 2].map(|i| Cell::from_samples(&samples[i], failed[i]));
        rows.push(CowRow { label: step.label.clone(), unit: step.unit, overlayfs, fuse_overlayfs, viewos });
    }
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "cow: work in a copy-on-write view of a directory (lower tree in {}, never written), made by the kernel's overlayfs \
         (`redirect_dir=on`, in a private mount namespace: the native reference), by fuse-overlayfs{} and by `viewos --cow DIR:STORE`; \
         a fresh upper layer (store) per run; each figure is the wall time of the one shell command in the view, \
         mount and start-up excluded; medians of {}. The issue's targets: viewos/overlayfs ≤ 1.5×, and faster than \
         fuse-overlayfs (viewos/fuse-overlayfs < 1.0×); reported, not asserted.\n",
        work.parent().map_or("?".into(), |p| p.display().to_string()),
        if root { " (as root, in a private mount namespace too)" } else { " (unprivileged, through the setuid fusermount)" },
        o.reps
    );
    println!("{}", report::cow_table(&rows, &why_na));
    Ok(())
}

/// Whether this process may open `path` for reading and writing.
fn can_read_write(path: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(path) else { return false };
    // SAFETY: a valid NUL-terminated path; access(2) only reads it.
    unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK) == 0 }
}

/// A private directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, String> {
        let d = std::env::temp_dir().join(format!("viewos-compare.{}", std::process::id()));
        std::fs::create_dir_all(&d).map_err(|e| format!("creating {}: {e}", d.display()))?;
        Ok(Scratch(d))
    }

    /// A 64 KiB file of non-zero bytes, three path components deep under /tmp.
    fn data_file(&self) -> Result<PathBuf, String> {
        std::fs::create_dir_all(self.0.join("empty")).map_err(|e| e.to_string())?;
        let p = self.0.join("data");
        let bytes: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8 + 1).collect();
        std::fs::write(&p, bytes).map_err(|e| format!("writing {}: {e}", p.display()))?;
        Ok(p)
    }

    /// A git repository of /usr/share/doc and /usr/include (about 13k files), committed.
    fn repo(&self) -> Result<PathBuf, String> {
        let r = self.0.join("repo");
        eprintln!("[view-git] making a repository at {}", r.display());
        let sh = format!(
            "set -e; mkdir -p {r}; cp -r /usr/share/doc /usr/include {r}/; cd {r}; git init -q; git add -A; \
             git -c user.name=bench -c user.email=bench@localhost commit -q -m init; git status --porcelain >/dev/null",
            r = r.display()
        );
        let st = Command::new("sh").arg("-c").arg(&sh).status().map_err(|e| format!("git repository: {e}"))?;
        if !st.success() {
            return Err(format!("making the git repository failed: {st}"));
        }
        Ok(r)
    }

    /// A copy of the C project, so builds never touch the source tree.
    fn cproj(&self, o: &Opts) -> Result<PathBuf, String> {
        let src = o.cproj.clone().unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("cproj"));
        let dst = self.0.join("cproj");
        std::fs::create_dir_all(&dst).map_err(|e| e.to_string())?;
        let entries = std::fs::read_dir(&src).map_err(|e| format!("reading {}: {e}", src.display()))?;
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                std::fs::copy(e.path(), dst.join(e.file_name()))
                    .map_err(|err| format!("copying {}: {err}", e.path().display()))?;
            }
        }
        Ok(dst)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pin_to(cpu: usize) -> Result<(), String> {
    // SAFETY: cpu_set_t is plain data; CPU_SET stays within it for cpu < CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(format!("--pin {cpu}: no such CPU"));
        }
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(format!("--pin {cpu}: {}", std::io::Error::last_os_error()));
        }
    }
    Ok(())
}
