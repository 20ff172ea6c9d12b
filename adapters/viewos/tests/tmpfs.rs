//! `--mount tmpfs:DST`: the monitor's own in-memory filesystem, judged against the kernel's
//! tmpfs (the same scenario natively in a directory of /dev/shm and in a view, outputs
//! diffed), and used by unmodified programs. As the current user and, when root, as 65534.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::{command_as, python3, run_as, text, users};

const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/tmpfs/scenario.py");

/// A fresh directory of the kernel's tmpfs (/dev/shm) that `user` may write.
fn shm_dir(name: &str, user: Option<u32>) -> PathBuf {
    let d = PathBuf::from(format!("/dev/shm/viewos-tmpfs-{name}-{}-{}", user.unwrap_or(0), std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    if let Some(uid) = user {
        std::os::unix::fs::chown(&d, Some(uid), Some(uid)).unwrap();
    }
    d
}

fn ok(o: &Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {:?}\nstdout:\n{}\nstderr:\n{}", o.status, text(&o.stdout), text(&o.stderr));
    text(&o.stdout)
}

/// Runs `sh -c script` in a view with a tmpfs at /mnt/vt.
fn in_view(user: Option<u32>, extra: &[&str], script: &str) -> Output {
    let mut args = vec!["--mount", "tmpfs:/mnt/vt"];
    args.extend_from_slice(extra);
    args.extend(["--", "sh", "-c", script]);
    run_as(user, &args)
}

#[test]
fn the_scenario_gives_what_the_kernels_tmpfs_gives() {
    let Some(py) = python3() else {
        eprintln!("skipped: no python3");
        return;
    };
    for user in users() {
        let dir = shm_dir("scenario", user);
        let native = ok(&command_as(user, py, &[SCENARIO, dir.to_str().unwrap()]).output().unwrap(), "native scenario");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(native.lines().count() > 60, "the scenario ran to its end:\n{native}");
        // Both mechanisms: opens made by the monitor and installed (hybrid), or opened by
        // the guest through the monitor's fd at a ptrace stop.
        for mech in ["--mechanism=hybrid", "--mechanism=ptrace"] {
            let viewed = ok(&run_as(user, &[mech, "--mount", "tmpfs:/mnt/vt", "--", py, SCENARIO, "/mnt/vt"]), "scenario in a view");
            for (n, (a, b)) in native.lines().zip(viewed.lines()).enumerate() {
                assert_eq!(a, b, "user {user:?} {mech}, line {}: native (left) and viewos tmpfs (right) differ", n + 1);
            }
            assert_eq!(native.lines().count(), viewed.lines().count(), "user {user:?} {mech}: {viewed}");
        }
    }
}

#[test]
fn shell_redirections_sort_tar_and_programs_stored_in_it() {
    for user in users() {
        let script = r#"set -e
cd /mnt/vt
echo one > f; echo two >> f; cat < f
exec 3> g; echo via-fd3 >&3; exec 3>&-; cat g
seq 1 20000 | sort -rn -S 64K -T /mnt/vt | head -1
tar cf - -C /usr/include linux | tar xf -
diff -r /usr/include/linux linux && echo tar-same
cp /bin/true mytrue && ./mytrue && echo ran-a-stored-program
printf '#!/mnt/vt/mysh\necho script-ran-by $0\n' > s; cp /bin/sh mysh; chmod +x s; ./s
readlink /proc/self/fd/5 5< f
exec 4< f; rm f; readlink /proc/self/fd/4; cat /proc/self/fd/4; cat <&4
mkdir -p d/e; cd d/e; pwd; readlink /proc/self/cwd; cd ../..
rm -r d linux; ls
"#;
        let out = ok(&in_view(user, &[], script), "programs on the tmpfs");
        assert_eq!(
            out,
            "one\ntwo\nvia-fd3\n20000\ntar-same\nran-a-stored-program\nscript-ran-by /mnt/vt/s\n/mnt/vt/f\n/mnt/vt/f (deleted)\none\ntwo\none\ntwo\n/mnt/vt/d/e\n/mnt/vt/d/e\ng\nmysh\nmytrue\ns\n",
            "user {user:?}"
        );
    }
}

#[test]
fn databases_compilers_and_git_work_in_it() {
    let have = |c: &str| std::process::Command::new("sh").args(["-c", &format!("command -v {c}")]).output().is_ok_and(|o| o.status.success());
    for user in users() {
        if have("sqlite3") {
            // Locks, a journal, and the WAL's shared memory map.
            let s = "cd /mnt/vt && sqlite3 t.db 'create table t(a); insert into t values(1),(2); pragma journal_mode=wal; insert into t values(3); select sum(a) from t;' && ls";
            // The WAL and its shared memory are gone again after the last close, as natively.
            assert_eq!(ok(&in_view(user, &[], s), "sqlite3"), "wal\n6\nt.db\n", "user {user:?}");
        } else {
            eprintln!("sqlite3 not installed: part skipped");
        }
        if have("gcc") {
            let s = "cd /mnt/vt && printf 'int main(void){return 42;}' > m.c && gcc -o m m.c && ./m; echo $?";
            assert_eq!(ok(&in_view(user, &["-b", "/tmp"], s), "gcc"), "42\n", "user {user:?}");
        }
        if have("git") {
            let s = "cd /mnt/vt && git init -q r && cd r && echo hi > f && git add f && git -c user.email=a@b -c user.name=n commit -qm first && echo more >> f && git status --short && git log --format=%s";
            assert_eq!(ok(&in_view(user, &[], s), "git"), " M f\nfirst\n", "user {user:?}");
        }
        if let Some(py) = python3()
            && std::process::Command::new(py).args(["-c", "import pytest"]).output().is_ok_and(|o| o.status.success())
        {
            let s = format!("cd /mnt/vt && printf 'def test_one():\\n    assert open(__file__).read()\\n' > test_x.py && {py} -m pytest -q -p no:cacheprovider test_x.py | tail -1");
            let out = ok(&in_view(user, &[], &s), "pytest");
            assert!(out.contains("1 passed"), "user {user:?}: {out}");
        }
    }
}

#[test]
fn statfs_shows_the_size_limit_and_the_mounts_are_private() {
    for user in users() {
        let out = ok(&run_as(user, &["--mount", "tmpfs:/v:size=1M,mode=700", "--", "sh", "-c", "stat -f -c '%T %b %S' /v; stat -c '%a %U' /v; ls /proc/viewos-vfs 2>&1; cat /proc/viewos-vfs/0/x 2>&1; true"]), "statfs");
        let me = if user.is_some() { "nobody" } else { "root" };
        assert_eq!(
            out,
            format!("tmpfs 256 4096\n700 {me}\nls: cannot access '/proc/viewos-vfs': No such file or directory\ncat: /proc/viewos-vfs/0/x: No such file or directory\n"),
            "user {user:?}"
        );
        // Each view has its own: nothing is left behind, and the host never sees it.
        let a = ok(&run_as(user, &["--mount", "tmpfs:/tmp/viewos-private", "--", "sh", "-c", "echo x > /tmp/viewos-private/f && ls /tmp/viewos-private"]), "first view");
        assert_eq!(a, "f\n");
        assert!(!std::path::Path::new("/tmp/viewos-private").exists());
        let b = ok(&run_as(user, &["--mount", "tmpfs:/tmp/viewos-private", "--", "ls", "-A", "/tmp/viewos-private"]), "second view");
        assert_eq!(b, "", "a new view starts empty");
    }
}

#[test]
fn real_files_are_not_stopped_while_a_virtual_one_is_open() {
    // The process holds a virtual fd and reads real files: no read, write or fstat of any
    // fd is intercepted (only the opens and path calls are).
    let out = run_as(None, &["--stats", "--mount", "tmpfs:/mnt/vt", "--", "sh", "-c", "echo x > /mnt/vt/f; exec 3< /mnt/vt/f; for i in 1 2 3 4 5 6 7 8; do head -c 100 /etc/passwd > /dev/null; done; cat <&3"]);
    let stats = ok(&out, "stats") + &text(&out.stderr);
    for call in ["read ", "write ", "pread64", "lseek", "mmap", "fstat "] {
        assert!(!stats.lines().any(|l| l.starts_with(call)), "{call} was intercepted:\n{stats}");
    }
    assert!(stats.starts_with("x\n"), "{stats}");
}

#[test]
fn bad_mount_options_are_refused_before_anything_runs() {
    for (arg, want) in [
        ("ext4:/v", "unknown filesystem type 'ext4'"),
        ("tmpfs:/v:size=1Q", "unknown suffix"),
        ("tmpfs:/v:mode=999", "not an octal mode"),
        ("tmpfs:/v:color=red", "unknown option 'color'"),
        ("tmpfs:", "missing destination"),
        ("tmpfs:relative", "must be an absolute path"),
    ] {
        let o = run_as(None, &["--mount", arg, "--", "sh", "-c", "echo ran"]);
        assert_eq!(o.status.code(), Some(2), "{arg}");
        assert!(text(&o.stderr).contains(want), "{arg}: {}", text(&o.stderr));
        assert!(o.stdout.is_empty(), "{arg}: nothing runs");
    }
}

#[test]
fn the_size_limit_is_enforced_as_the_kernels_tmpfs_does() {
    // The reference: the kernel's tmpfs of the same size, mounted in a user and mount
    // namespace of its own (skipped where those cannot be made).
    let script = r#"cd /mnt
head -c 3M /dev/zero > big 2>/dev/null; echo "write: $?"
stat -c '%s %b' big
stat -f -c '%T %b %f' .
python3 -c '
import mmap, os
fd = os.open("m", os.O_CREAT | os.O_RDWR, 0o600)
try:
    os.posix_fallocate(fd, 0, 1 << 20)
    print("fallocate: ok")
except OSError as e:
    print("fallocate:", e.strerror)
' 2>&1 || true
rm big m
head -c 512K /dev/zero > small; echo "after rm: $?"
stat -c '%s %b' small
"#;
    for user in users() {
        let native = command_as(user, "unshare", &["-Urm", "sh", "-c", &format!("mount -t tmpfs -o size=1M,mode=1777 none /mnt && {script}")]).output().unwrap();
        if !native.status.success() {
            eprintln!("skipped for {user:?}: no user namespace for the reference tmpfs: {}", text(&native.stderr));
            continue;
        }
        let viewed = ok(&run_as(user, &["--mount", "tmpfs:/mnt:size=1M", "--", "sh", "-c", script]), "size limit in a view");
        assert!(text(&native.stdout).contains("write: 1"), "the reference ran out of space: {}", text(&native.stdout));
        assert_eq!(text(&native.stdout), viewed, "user {user:?}: the kernel's tmpfs (left) and viewos's (right)");
    }
}

#[test]
fn a_command_can_start_in_it() {
    for user in users() {
        let out = ok(&run_as(user, &["--mount", "tmpfs:/mnt/vt", "-w", "/mnt/vt", "--", "sh", "-c", "pwd; echo x > f; ls; readlink /proc/self/cwd"]), "-w into it");
        assert_eq!(out, "/mnt/vt\nf\n/mnt/vt\n", "user {user:?}");
    }
}

#[test]
fn no_backing_file_name_is_ever_shown() {
    let Some(py) = python3() else {
        eprintln!("skipped: no python3");
        return;
    };
    // Mappings (/proc/self/maps and smaps), fds and the running program of files of the
    // view's filesystem read as their guest paths, never as the monitor's backing files.
    let script = r##"
import mmap, os, subprocess, shutil
f = open("/mnt/vt/data", "w+b"); f.write(b"x" * 8192); f.flush()
m = mmap.mmap(f.fileno(), 8192)
g = open("/mnt/vt/gone", "w+b"); g.write(b"y" * 4096); g.flush()
n = mmap.mmap(g.fileno(), 4096); os.unlink("/mnt/vt/gone")
seen = [l.split(None, 5)[5].strip() for l in open("/proc/self/maps") if len(l.split(None, 5)) == 6 and l.split()[4] != "0" and ("vt" in l or "#" in l or "memfd" in l or "viewos" in l)]
print(sorted(set(seen)))
print(sum(1 for l in open("/proc/self/smaps") if l.rstrip().endswith("/mnt/vt/data")))
print(os.readlink("/proc/self/fd/%d" % f.fileno()), os.readlink("/proc/self/fd/%d" % g.fileno()))
if os.geteuid() == 0:
    # map_files (readable by root only): named like maps.
    r = [l.split()[0] for l in open("/proc/self/maps") if l.rstrip().endswith("/mnt/vt/data")][0]
    assert os.readlink("/proc/self/map_files/" + r) == "/mnt/vt/data", os.readlink("/proc/self/map_files/" + r)
shutil.copy("/bin/readlink", "/mnt/vt/rl"); os.chmod("/mnt/vt/rl", 0o755)
print(subprocess.run(["/mnt/vt/rl", "/proc/self/exe"], capture_output=True, text=True).stdout.strip())
"##;
    for user in users() {
        for mech in ["--mechanism=hybrid", "--mechanism=ptrace"] {
            let out = ok(&run_as(user, &[mech, "--mount", "tmpfs:/mnt/vt", "--", py, "-c", script]), "names");
            assert_eq!(
                out,
                "['/mnt/vt/data', '/mnt/vt/gone (deleted)']\n1\n/mnt/vt/data /mnt/vt/gone (deleted)\n/mnt/vt/rl\n",
                "user {user:?} {mech}"
            );
        }
    }
}

#[test]
fn device_nodes_made_in_it_open_the_hosts_device() {
    if !common::is_root() {
        eprintln!("skipped: making device nodes needs root");
        return;
    }
    let out = ok(
        &run_as(None, &["--mount", "tmpfs:/mnt/vt", "--", "sh", "-c", "cd /mnt/vt && mknod null c 1 3 && mknod zero c 1 5 && chmod 666 null && echo gone > null && head -c 3 zero | od -An -tx1 && stat -c '%F %t:%T %a' null zero && mknod nodev c 250 250 && cat nodev 2>&1; true"]),
        "device nodes",
    );
    assert_eq!(out, " 00 00 00\ncharacter special file 1:3 666\ncharacter special file 1:5 644\ncat: nodev: No such device or address\n");
    // An unprivileged user may not make one, as on the kernel's tmpfs.
    let o = run_as(Some(65534), &["--mount", "tmpfs:/mnt/vt", "--", "mknod", "/mnt/vt/null", "c", "1", "3"]);
    assert!(!o.status.success() && text(&o.stderr).contains("Operation not permitted"), "{}", text(&o.stderr));
}

#[test]
fn it_holds_more_files_than_the_open_file_limit() {
    // The monitor holds an fd per inode: it raises its own limit, and the guest keeps the
    // limit it was started with.
    let script = format!(
        "ulimit -Sn 256 && exec {} --mount tmpfs:/mnt/vt -- sh -c 'ulimit -n; i=0; while [ $i -lt 600 ]; do : > /mnt/vt/f$i; i=$((i+1)); done; ls /mnt/vt | wc -l'",
        common::viewos()
    );
    for user in users() {
        let out = ok(&command_as(user, "sh", &["-c", &script]).output().unwrap(), "many files");
        assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["256", "600"], "user {user:?}");
    }
}
