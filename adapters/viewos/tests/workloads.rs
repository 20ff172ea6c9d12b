//! Real programs through path views, as root and as uid 65534: gcc builds a C program
//! through a bind, git works in a bound repository, Python walks a bound tree. Each result
//! is checked against the same work done natively on the host paths.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().is_ok_and(|o| o.status.success())
}

/// A fresh directory under /tmp that `user` owns.
fn workdir(tag: &str, user: Option<u32>) -> String {
    let d = format!("/tmp/viewos-workload-{}-{tag}-{}", std::process::id(), user.unwrap_or(0));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    if let Some(uid) = user {
        Command::new("chown").args(["-R", &format!("{uid}:{uid}"), &d]).status().unwrap();
    }
    d
}

/// Runs `script` with sh in the view `opts`, as `user`; panics with its output on failure.
fn sh_in_view(user: Option<u32>, opts: &[&str], script: &str) -> String {
    let mut args: Vec<&str> = opts.to_vec();
    args.extend(["--", "/bin/sh", "-c", script]);
    let out = run_as(user, &args);
    assert_eq!(out.status.code(), Some(0), "{user:?} {opts:?} {script}\nstdout: {}\nstderr: {}", text(&out.stdout), text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn gcc_builds_and_runs_a_program_through_a_bind() {
    if !have("gcc") {
        eprintln!("workloads: no gcc here; skipped");
        return;
    }
    for u in users() {
        let d = workdir("gcc", u);
        std::fs::write(format!("{d}/hello.h"), "#define GREETING \"hello from a bind\"\n").unwrap();
        std::fs::write(
            format!("{d}/hello.c"),
            "#include <stdio.h>\n#include \"hello.h\"\nint main(void) { puts(GREETING); return 0; }\n",
        )
        .unwrap();
        if let Some(uid) = u {
            Command::new("chown").args(["-R", &format!("{uid}:{uid}"), &d]).status().unwrap();
        }
        let b = format!("{d}:/src");
        let o = sh_in_view(u, &["-b", &b], "cd /src && gcc -O2 -Wall -o hello hello.c && ./hello && ls");
        assert_eq!(o, "hello from a bind\nhello\nhello.c\nhello.h\n", "{u:?}");
        assert!(Path::new(&format!("{d}/hello")).exists(), "{u:?}: the binary is in the bind's source");
        let native = Command::new(format!("{d}/hello")).output().unwrap();
        assert_eq!(text(&native.stdout), "hello from a bind\n");
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn git_status_and_commit_in_a_bound_repository() {
    if !have("git") {
        eprintln!("workloads: no git here; skipped");
        return;
    }
    for u in users() {
        let d = workdir("git", u);
        let b = format!("{d}:/repo");
        let git = "git -c user.name=t -c user.email=t@localhost -c init.defaultBranch=main";
        let script = format!(
            "set -e; export HOME=/repo; cd /repo; {git} init -q .; mkdir -p a/b; echo one > a/b/f; echo two > g; \
             {git} add -A; {git} commit -q -m first; echo three >> g; rm a/b/f; echo new > n; \
             {git} status --porcelain; {git} commit -q -a -m second; {git} log --format=%s; {git} status --porcelain"
        );
        let o = sh_in_view(u, &["-b", &b], &script);
        assert_eq!(o, " D a/b/f\n M g\n?? n\nsecond\nfirst\n?? n\n", "{u:?}");
        // The host sees the same repository, natively.
        let log = Command::new("git").args(["-c", &format!("safe.directory={d}"), "-C", &d, "log", "--format=%s"]).output().unwrap();
        assert_eq!(text(&log.stdout), "second\nfirst\n", "{u:?}");
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn python_walks_a_bound_tree_like_the_host_does() {
    let Some(py) = python3() else {
        eprintln!("workloads: no python3 here; skipped");
        return;
    };
    let walk = "import os, sys\nroot = sys.argv[1]\nfor d, dirs, files in os.walk(root):\n    dirs.sort()\n    for f in sorted(files):\n        p = os.path.join(d, f)\n        st = os.lstat(p)\n        print(os.path.relpath(p, root), st.st_size, oct(st.st_mode), os.path.islink(p))\n";
    for u in users() {
        let d = workdir("py", u);
        std::fs::write(format!("{d}/walk.py"), walk).unwrap();
        let tree = format!("{d}/tree");
        std::fs::create_dir_all(format!("{tree}/x/y")).unwrap();
        std::fs::write(format!("{tree}/x/y/z"), "zzz").unwrap();
        std::fs::write(format!("{tree}/top"), "t").unwrap();
        std::os::unix::fs::symlink("x/y/z", format!("{tree}/link")).unwrap();
        std::fs::create_dir_all(format!("{tree}/secret")).unwrap();
        std::fs::write(format!("{tree}/secret/key"), "k").unwrap();
        Command::new("chmod").args(["-R", "a+rX", &d]).status().unwrap();
        let native = Command::new(py).args([&format!("{d}/walk.py"), &tree]).output().unwrap();
        let expected: String = text(&native.stdout).lines().filter(|l| !l.starts_with("secret")).map(|l| format!("{l}\n")).collect();
        assert!(expected.contains("x/y/z 3"), "{expected}");
        let b = format!("{d}:/w");
        let o = sh_in_view(u, &["-b", &b, "--hide", "/w/tree/secret"], &format!("{py} /w/walk.py /w/tree"));
        assert_eq!(o, expected, "{u:?}: the same walk, the hidden subtree absent");
        let _ = std::fs::remove_dir_all(&d);
    }
}
