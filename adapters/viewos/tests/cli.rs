//! The command line end to end: demo, --trace, --stats, --hostname, exit statuses, and the
//! monitor's own death taking its tracees with it.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn demo_runs_under_trace_and_stats() {
    for u in users() {
        let out = run_as(u, &["demo"]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{u:?}: {stdout}{stderr}");
        assert!(stdout.contains("uname -n says: viewos-demo"), "{u:?}: {stdout}");
        assert!(stdout.contains("after sethostname: renamed-inside"), "{u:?}: {stdout}");
        assert!(stdout.contains("hidden: cat: /etc/shadow: No such file or directory"), "{u:?}: {stdout}");
        let share = std::fs::read_dir("/usr/share").map(|d| d.count()).unwrap_or(0);
        assert!(stdout.contains(&format!("/share holds {share} entries")), "{u:?}: {stdout}");
        assert!(stderr.contains("uname(") && stderr.contains("= 0 (emulated) [uname]"), "{u:?}: {stderr}");
        assert!(stderr.contains("viewos: ") && stderr.contains(" syscalls intercepted"), "{u:?}: {stderr}");
        assert!(stderr.lines().any(|l| l.starts_with("sethostname ") && l.split_whitespace().nth(3) == Some("1")), "{u:?}: {stderr}");
    }
}

#[test]
fn the_host_name_of_the_host_is_untouched() {
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for u in users() {
        let out = run_as(u, &["--hostname=inner", "--", "sh", "-c", "hostname changed && uname -n"]);
        assert_eq!(text(&out.stdout), "changed\n", "{u:?}: {}", text(&out.stderr));
    }
    assert_eq!(std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(), before);
}

#[test]
fn trace_to_a_file_and_stats_count_each_decision() {
    for u in users() {
        let path = format!("/tmp/viewos-trace-test-{}-{}", std::process::id(), u.unwrap_or(0));
        let _ = std::fs::remove_file(&path);
        let out = run_as(u, &[&format!("--trace={path}"), "--stats", "--intercept=getppid,getpid", "--", "sh", "-c", "echo $PPID"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let trace = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(trace.lines().any(|l| l.contains("getppid() -> pass [intercept]")), "{trace}");
        let stats = text(&out.stderr);
        let n = trace.lines().count();
        assert!(stats.starts_with(&format!("viewos: {n} syscalls intercepted\n")), "{n} lines traced, stats: {stats}");
    }
}

#[test]
fn exit_status_is_the_commands_like_a_shell() {
    for u in users() {
        for (script, code) in [("exit 0", 0), ("exit 7", 7), ("exit 255", 255), ("kill -TERM $$", 143), ("kill -KILL $$", 137)] {
            let out = run_as(u, &["--", "sh", "-c", script]);
            assert_eq!(out.status.code(), Some(code), "{u:?} {script}: {}", text(&out.stderr));
        }
        assert_eq!(run_as(u, &["--", "/nonexistent/prog"]).status.code(), Some(127));
        assert_eq!(run_as(u, &["--", "no-such-command-anywhere"]).status.code(), Some(127));
        assert_eq!(run_as(u, &["--", "/etc/hostname"]).status.code(), Some(126));
    }
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    for args in [&["--bogus", "true"][..], &[], &["--intercept"], &["--intercept=notacall", "true"]] {
        let out = run_as(None, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("viewos: "), "{err}");
    }
    let help = run_as(None, &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).starts_with("Usage: viewos"));
}

fn alive(pid: i32) -> bool {
    // A zombie still exists but no longer runs.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.rsplit(") ").next().unwrap().starts_with('Z'))
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn killing_the_monitor_kills_every_tracee() {
    for u in users() {
        let pidfile = format!("/tmp/viewos-exitkill-{}-{}", std::process::id(), u.unwrap_or(0));
        let _ = std::fs::remove_file(&pidfile);
        // A daemon-like grandchild in its own session, and a plain child.
        let script = format!("setsid sleep 300 & echo $! > {pidfile}.tmp; sleep 300 & echo $! >> {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; wait");
        let mut child = command_as(u, viewos(), &["--intercept=getpid", "--", "sh", "-c", &script]).spawn().unwrap();
        wait_until("the pid file", || std::path::Path::new(&pidfile).exists());
        let pids: Vec<i32> = std::fs::read_to_string(&pidfile).unwrap().split_whitespace().map(|p| p.parse().unwrap()).collect();
        let _ = std::fs::remove_file(&pidfile);
        assert_eq!(pids.len(), 2, "{pids:?}");
        assert!(pids.iter().all(|&p| alive(p)));
        // SAFETY: killing the monitor we started.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        for p in pids {
            wait_until(&format!("tracee {p} to die"), || !alive(p));
        }
    }
}

#[test]
fn a_tracee_killed_mid_syscall_does_not_stop_the_monitor() {
    for u in users() {
        // The children die inside intercepted calls (everything is intercepted).
        let out = run_as(u, &["--intercept=all", "--", "sh", "-c", "for i in 1 2 3 4 5; do sleep 5 & kill -9 $!; done; wait; echo carried on"]);
        assert_eq!(text(&out.stdout), "carried on\n", "{u:?}: {}", text(&out.stderr));
        assert_eq!(out.status.code(), Some(0));
    }
}

#[test]
fn viewos_waits_for_daemons_that_outlive_their_parent() {
    for u in users() {
        let marker = format!("/tmp/viewos-daemon-{}-{}", std::process::id(), u.unwrap_or(0));
        let _ = std::fs::remove_file(&marker);
        let t = Instant::now();
        let out = run_as(u, &["--", "sh", "-c", &format!("(setsid sh -c 'sleep 0.5; echo done > {marker}' &) ; exit 3")]);
        assert_eq!(out.status.code(), Some(3), "the first process's status, not the daemon's");
        assert!(t.elapsed() >= Duration::from_millis(450));
        assert_eq!(std::fs::read_to_string(&marker).unwrap_or_default(), "done\n", "viewos returned before the daemon finished");
        let _ = std::fs::remove_file(&marker);
    }
}

#[test]
fn processes_killed_while_forking_do_not_hang_the_monitor() {
    // A parent killed between creating a child and reporting it leaves a child whose clone
    // event never comes; the monitor must still let it run and finish.
    let script = "for i in $(seq 20); do sh -c 'while :; do /bin/true & done' & p=$!; sleep 0.02; kill -9 $p; done; wait; echo survived";
    for u in users() {
        for view in [&[][..], &["--intercept=getpid"][..]] {
            let mut args = view.to_vec();
            args.extend(["--", "sh", "-c", script]);
            let mut child = command_as(u, viewos(), &args).stdout(std::process::Stdio::piped()).spawn().unwrap();
            let t = Instant::now();
            let status = loop {
                if let Some(st) = child.try_wait().unwrap() {
                    break st;
                }
                if t.elapsed() > Duration::from_secs(60) {
                    let _ = child.kill();
                    panic!("{u:?} {view:?}: viewos hung");
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            let mut out = String::new();
            std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
            assert_eq!((status.code(), out.as_str()), (Some(0), "survived\n"), "{u:?} {view:?}");
        }
    }
}
