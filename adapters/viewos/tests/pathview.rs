//! The path view end to end (work in progress for the path-view issue): binds, hidden paths,
//! the starting directory, and the errors given before anything runs.

mod common;

use common::*;

/// A tree readable by every test user: src/f.txt and secret/key.
fn tree(tag: &str) -> String {
    let dir = format!("/tmp/viewos-pathview-{}-{tag}", std::process::id());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(format!("{dir}/src/sub")).unwrap();
    std::fs::create_dir_all(format!("{dir}/secret")).unwrap();
    std::fs::write(format!("{dir}/src/f.txt"), "hello\n").unwrap();
    std::fs::write(format!("{dir}/secret/key"), "TOPSECRET\n").unwrap();
    std::os::unix::fs::symlink(format!("{dir}/secret/key"), format!("{dir}/src/link")).unwrap();
    for p in [dir.clone(), format!("{dir}/src"), format!("{dir}/src/sub"), format!("{dir}/secret")] {
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    dir
}

/// `DIR/src/w` of a `tree`, filled by `fill`, then handed to `user` with all it holds.
fn work_dir(d: &str, user: Option<u32>, fill: impl FnOnce(&str)) -> String {
    let w = format!("{d}/src/w");
    std::fs::create_dir_all(&w).unwrap();
    fill(&w);
    if let Some(uid) = user {
        assert!(std::process::Command::new("chown").args(["-R", &uid.to_string(), &w]).status().unwrap().success());
    }
    w
}

#[test]
fn binds_show_host_trees_at_their_destination() {
    for u in users() {
        let d = tree(&format!("bind-{}", u.unwrap_or(0)));
        let out = run_as(u, &["-b", &format!("{d}/src:/mnt/v"), "--", "sh", "-c", "cat /mnt/v/f.txt; cd /mnt/v/sub && pwd && cat ../f.txt"]);
        assert_eq!(text(&out.stdout), "hello\n/mnt/v/sub\nhello\n", "{u:?}: {}", text(&out.stderr));
        assert_eq!(out.status.code(), Some(0));
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn hidden_paths_do_not_exist_even_through_symlinks_and_dotdot() {
    for u in users() {
        let d = tree(&format!("hide-{}", u.unwrap_or(0)));
        let script = format!("cat {d}/secret/key; cat {d}/src/link; cat {d}/src/../secret/key; cd {d}/secret; ls -a {d}; find {d} | sort; echo end");
        let out = run_as(u, &["--hide", &format!("{d}/secret"), "--", "sh", "-c", &script]);
        let (o, e) = (text(&out.stdout), text(&out.stderr));
        assert!(!o.contains("TOPSECRET"), "{u:?}: {o}");
        assert_eq!(o, format!(".\n..\nsrc\n{d}\n{d}/src\n{d}/src/f.txt\n{d}/src/link\n{d}/src/sub\nend\n"), "{u:?}: {e}");
        assert_eq!(e.matches("No such file or directory").count(), 3, "{u:?}: {e}");
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn the_command_starts_in_the_cwd_given_as_a_guest_path() {
    for u in users() {
        let d = tree(&format!("cwd-{}", u.unwrap_or(0)));
        let out = run_as(u, &["-b", &format!("{d}/src:/work"), "-w", "/work/sub", "--", "sh", "-c", "pwd; /bin/pwd; cat ../f.txt"]);
        assert_eq!(text(&out.stdout), "/work/sub\n/work/sub\nhello\n", "{u:?}: {}", text(&out.stderr));
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn bad_view_options_fail_before_anything_runs() {
    let marker = format!("/tmp/viewos-pathview-ran-{}", std::process::id());
    let touch = format!("touch {marker}");
    for args in [
        vec!["-b", "/nonexistent/src:/x"],
        vec!["-b", "/tmp:relative"],
        vec!["--hide", "/"],
        vec!["--hide", "relative"],
        vec!["--hide", "/a/../b"],
        vec!["-w", "/nonexistent-dir"],
    ] {
        let mut full = args.clone();
        full.extend(["--", "sh", "-c", &touch]);
        let out = run_as(None, &full);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(err.starts_with("viewos: ") && err.lines().count() == 1, "{args:?}: {err}");
        assert!(!std::path::Path::new(&marker).exists(), "{args:?}: the command ran");
    }
}

#[test]
fn proc_self_is_the_guest_and_its_links_read_as_guest_paths() {
    for u in users() {
        let d = tree(&format!("proc-{}", u.unwrap_or(0)));
        let script = "echo $$; readlink /proc/self/cwd /proc/$$/cwd; exec 3</mnt/v/f.txt; readlink /proc/self/fd/3; cat /proc/self/fd/3; cd /proc/self/cwd && pwd -P; exec grep ^Pid: /proc/self/status";
        let out = run_as(u, &["-b", &format!("{d}/src:/mnt/v"), "-w", "/mnt/v/sub", "--", "sh", "-c", script]);
        let o = text(&out.stdout);
        let lines: Vec<&str> = o.lines().collect();
        assert_eq!(lines.len(), 7, "{u:?}: {o}{}", text(&out.stderr));
        assert_eq!(&lines[1..6], ["/mnt/v/sub", "/mnt/v/sub", "/mnt/v/f.txt", "hello", "/mnt/v/sub"], "{u:?}");
        assert_eq!(lines[6], format!("Pid:\t{}", lines[0]), "{u:?}: /proc/self must be the guest, not the monitor");
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn mounts_are_refused_not_let_through() {
    for u in users() {
        let d = tree(&format!("mount-{}", u.unwrap_or(0)));
        let out = run_as(u, &["-b", &format!("{d}/src:/mnt/v"), "--", "sh", "-c", "mount -t tmpfs none /mnt/v 2>/dev/null; echo mount=$?"]);
        let o = text(&out.stdout);
        assert!(o.contains("mount=") && !o.contains("mount=0"), "{u:?}: {o}");
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        let mounted = mounts.contains(&format!("{d}/src"));
        if mounted {
            let _ = std::process::Command::new("umount").arg(format!("{d}/src")).status();
        }
        assert!(!mounted, "{u:?}: the view's mount reached the host");
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn fds_without_a_path_reopen_through_proc() {
    use std::io::Write;
    let script = "cat /dev/stdin 2>&1; readlink /proc/self/fd/0 | cut -c1-6";
    let run = |u: Option<u32>, program: &str, args: &[&str]| {
        let mut child = command_as(u, program, args).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"through a pipe\n").unwrap();
        text(&child.wait_with_output().unwrap().stdout)
    };
    for u in users() {
        let d = tree(&format!("pipe-{}", u.unwrap_or(0)));
        let native = run(u, "sh", &["-c", script]);
        let viewed = run(u, viewos(), &["-b", &format!("{d}/src:/mnt/v"), "--", "sh", "-c", script]);
        assert_eq!(viewed, native, "{u:?}");
        if u.is_none() && is_root() {
            assert_eq!(native, "through a pipe\npipe:[\n");
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// The scratch area a thread's rewritten arguments live in is read-only for the guest and
/// sealed: it cannot be unmapped, remapped or made writable to race the monitor's copy.
#[test]
fn the_scratch_area_cannot_be_unmapped_or_made_writable() {
    let Some(py) = python3() else {
        eprintln!("scratch: no python3 here; skipped");
        return;
    };
    let script = r#"
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int][:3]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
os.chdir("/v")   # a rewritten call: the thread gets its scratch area
lines = open("/proc/self/smaps").read().split("\n")
cur, found = None, []
for l in lines:
    f = l.split()
    if f and "-" in f[0] and not f[0].endswith(":"):
        cur = f
    elif l.startswith("VmFlags") and " sl" in l and cur[1] == "r--p" and cur[5:] == []:
        lo, hi = (int(x, 16) for x in cur[0].split("-"))
        found.append((lo, hi))
print("sealed", len(found))
for lo, hi in found:
    r = libc.mprotect(ctypes.c_void_p(lo), hi - lo, 3); e1 = ctypes.get_errno()
    r2 = libc.munmap(ctypes.c_void_p(lo), hi - lo); e2 = ctypes.get_errno()
    print("mprotect", r, e1, "munmap", r2, e2)
# /proc/self/mem writes through page protection: it is not opened for writing in a view.
for p in ["/proc/self/mem", "/proc/%d/task/%d/mem" % (os.getpid(), os.getpid())]:
    try:
        os.open(p, os.O_RDWR); print("opened", p)
    except OSError as e:
        print(e.errno)
os.close(os.open("/proc/self/mem", os.O_RDONLY))
"#;
    for u in users() {
        let d = tree(&format!("scratch-{}", u.unwrap_or(0)));
        let out = run_as(u, &["-b", &format!("{d}/src:/v"), "--", py, "-c", script]);
        let o = text(&out.stdout);
        assert_eq!(o, "sealed 1\nmprotect -1 1 munmap -1 1\n13\n13\n", "{u:?}: {o}{}", text(&out.stderr));
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// Peer addresses of filesystem sockets come back as guest paths from `recvfrom`, `accept`
/// and `getpeername` (the kernel reports the host path of the bind's source).
#[test]
fn peer_addresses_read_as_guest_paths() {
    let Some(py) = python3() else {
        eprintln!("peer addresses: no python3 here; skipped");
        return;
    };
    let script = r#"
import socket, sys
d = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(d + "/srv")
c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); c.bind(d + "/cli")
c.sendto(b"x", d + "/srv")
data, addr = s.recvfrom(10); print("recvfrom", addr)
l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); l.bind(d + "/ssrv"); l.listen(1)
k = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); k.bind(d + "/scli"); k.connect(d + "/ssrv")
conn, addr = l.accept(); print("accept", addr, conn.getpeername(), k.getpeername())
"#;
    for u in users() {
        let d = tree(&format!("peer-{}", u.unwrap_or(0)));
        if let Some(uid) = u {
            std::process::Command::new("chown").args([&format!("{uid}"), &format!("{d}/src")]).status().unwrap();
        }
        let out = run_as(u, &["-b", &format!("{d}/src:/v"), "--", py, "-c", script, "/v"]);
        assert_eq!(text(&out.stdout), "recvfrom /v/cli\naccept /v/scli /v/scli /v/ssrv\n", "{u:?}: {}", text(&out.stderr));
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// Opens the monitor makes for the guest fail and succeed as the kernel's own would, on the
/// edge cases of flags: `O_CREAT|O_EXCL` on a (dangling) symlink, `O_NOFOLLOW`, `O_DIRECTORY`,
/// a trailing slash, FIFOs without a peer, a directory for writing, a missing parent, `O_PATH`.
#[test]
fn open_flags_behave_as_natively() {
    let Some(py) = python3() else {
        eprintln!("open flags: no python3 here; skipped");
        return;
    };
    let script = r#"
import os, sys
d = sys.argv[1]
def t(name, flags):
    try:
        fd = os.open(d + "/" + name, flags, 0o644); os.close(fd); r = "ok"
    except OSError as e: r = e.strerror
    print(name, oct(flags), r)
t("dang", os.O_CREAT|os.O_EXCL|os.O_WRONLY)
t("lnk", os.O_CREAT|os.O_EXCL|os.O_WRONLY)
t("lnk", os.O_RDONLY|os.O_NOFOLLOW)
t("realf", os.O_RDONLY|os.O_DIRECTORY)
t("realf/", os.O_RDONLY)
t("ff", os.O_RDONLY|os.O_NONBLOCK)
t("ff", os.O_WRONLY|os.O_NONBLOCK)
t(".", os.O_WRONLY)
t("newdir/x", os.O_CREAT|os.O_WRONLY)
t("lnk", os.O_RDONLY|os.O_PATH|os.O_NOFOLLOW)
t("realf", os.O_WRONLY|os.O_TRUNC)
"#;
    for u in users() {
        let d = tree(&format!("oflags-{}", u.unwrap_or(0)));
        let w = work_dir(&d, u, |w| {
            std::os::unix::fs::symlink("nowhere", format!("{w}/dang")).unwrap();
            std::os::unix::fs::symlink("realf", format!("{w}/lnk")).unwrap();
            std::fs::write(format!("{w}/realf"), "x").unwrap();
            assert!(std::process::Command::new("mkfifo").arg(format!("{w}/ff")).status().unwrap().success());
        });
        let native = command_as(u, py, &["-c", script, &w]).output().unwrap();
        let out = run_as(u, &["-b", &format!("{d}/src:/v"), "--", py, "-c", script, "/v/w"]);
        assert!(text(&native.stdout).contains("File exists"), "{}", text(&native.stdout));
        assert_eq!(text(&out.stdout), text(&native.stdout), "{u:?}: {}", text(&out.stderr));
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// A process's cwd follows its directory when the view renames it (the monitor knows cwds
/// by their path in the view): relative paths and getcwd answer as natively, for the
/// process that renamed it and for another one sitting in it.
#[test]
fn a_renamed_cwd_is_followed() {
    let script = r#"mkdir -p "$1/a/sub" && (cd "$1/a/sub" && sleep 0.5 && /bin/pwd | sed "s|^$1||" && touch g && ls) &
sleep 0.1; cd "$1/a/sub" && mv "$1/a" "$1/b" && touch f && /bin/pwd | sed "s|^$1||" && cd -P .. && /bin/pwd | sed "s|^$1||" && ls && wait && ls sub"#;
    for u in users() {
        let d = tree(&format!("mvcwd-{}", u.unwrap_or(0)));
        let w = work_dir(&d, u, |_| {});
        let native = command_as(u, "sh", &["-c", script, "sh", &w]).output().unwrap();
        assert_eq!(text(&native.stdout), "/b/sub\n/b\nsub\n/b/sub\nf\ng\nf\ng\n", "native: {}", text(&native.stderr));
        for view in [vec!["-b".to_string(), format!("{d}/src:/v")], vec!["-r".to_string(), "/".to_string()]] {
            let base = if view[0] == "-b" { "/v/w".to_string() } else { w.clone() };
            std::fs::remove_dir_all(format!("{w}/b")).unwrap();
            let mut args: Vec<&str> = view.iter().map(String::as_str).collect();
            args.extend(["--", "sh", "-c", script, "sh", &base]);
            let out = run_as(u, &args);
            assert_eq!(text(&out.stdout), text(&native.stdout), "{u:?} {view:?}: {}", text(&out.stderr));
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// A FIFO's blocking open, which the monitor makes on a thread while the guest waits, is
/// interrupted by a signal as natively: a handler that raises ends it; one that returns
/// lets it restart, and a writer that comes later is met. (The guest's wait for the
/// monitor is killable only: the monitor answers for the signal itself.)
#[test]
fn a_blocking_fifo_open_is_interrupted_by_signals_as_natively() {
    let Some(py) = python3() else {
        eprintln!("fifo signals: no python3 here; skipped");
        return;
    };
    let script = r#"
import os, signal, sys, time
d = sys.argv[1]
class Alarm(Exception): pass
def raise_(s, f): raise Alarm()
signal.signal(signal.SIGALRM, raise_)
signal.setitimer(signal.ITIMER_REAL, 0.3)
try:
    os.open(d + "/ff", os.O_RDONLY); print("opened")
except Alarm: print("interrupted by the handler")
hits = []
signal.signal(signal.SIGALRM, lambda s, f: hits.append(s))
signal.siginterrupt(signal.SIGALRM, False)
pid = os.fork()
if pid == 0:
    time.sleep(0.8); fd = os.open(d + "/ff", os.O_WRONLY); os.write(fd, b"data"); os._exit(0)
signal.setitimer(signal.ITIMER_REAL, 0.2)
fd = os.open(d + "/ff", os.O_RDONLY)
print("then opened:", os.read(fd, 10), "handler ran:", hits)
os.waitpid(pid, 0)
"#;
    for u in users() {
        let d = tree(&format!("fifosig-{}", u.unwrap_or(0)));
        let w = work_dir(&d, u, |w| assert!(std::process::Command::new("mkfifo").arg(format!("{w}/ff")).status().unwrap().success()));
        let native = command_as(u, "timeout", &["20", py, "-c", script, &w]).output().unwrap();
        assert_eq!(text(&native.stdout), "interrupted by the handler\nthen opened: b'data' handler ran: [14]\n", "native: {}", text(&native.stderr));
        let vpath = format!("{d}/src:/v");
        let out = command_as(u, "timeout", &["20", viewos(), "-b", &vpath, "--", py, "-c", script, "/v/w"]).output().unwrap();
        assert_eq!(text(&out.stdout), text(&native.stdout), "{u:?}: {}", text(&out.stderr));
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// The calls the monitor makes itself, through coreutils, in a bind and natively on the host
/// path: times, hard and symbolic links (`ln -L` follows, `ln -P` does not), truncate,
/// FIFOs, ownership of links, umask on creation; the outputs must be identical.
#[test]
fn performed_calls_match_the_host() {
    let script = r#"cd "$1"; echo hi > f; touch -d "2001-02-03 04:05:06" f; stat -c "%y %s" f; ln f h; ln -s f s;
ln -s nowhere dang; stat -c "%h %F" f s; truncate -s 100 f; stat -c %s h; truncate -s 1 . 2>&1; mkfifo p; stat -c %F p;
touch -h -d "2002-01-01" s; stat -c %y s; mkdir -p dd/ee; ln -s dd/ee lk; touch lk/x; ls lk/; cat s; stat -L -c %s s lk;
ln -L s hl; ln -P s hp; stat -c "%F %h" hl hp; mv dd d2; ls d2; rm -r d2 lk; umask 027; mkfifo p2; mkdir m; stat -c %a p2 m;
ls | sort | tr '\n' ' '; echo; rm -rf ./*"#;
    for u in users() {
        let d = tree(&format!("performed-{}", u.unwrap_or(0)));
        let w = work_dir(&d, u, |_| {});
        let native = command_as(u, "sh", &["-c", script, "sh", &w]).output().unwrap();
        let out = run_as(u, &["-b", &format!("{d}/src:/v"), "--", "sh", "-c", script, "sh", "/v/w"]);
        assert!(text(&native.stdout).contains("regular file 3"), "{}", text(&native.stdout));
        assert_eq!(text(&out.stdout), text(&native.stdout), "{u:?}: {}", text(&out.stderr));
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// Extended attributes, made by the monitor on the resolved file: set, get (through a link,
/// and of the link itself), list, a buffer too small (ERANGE), lengths, remove; compared with
/// the same calls natively on the host path.
#[test]
fn xattrs_match_the_host() {
    let Some(py) = python3() else {
        eprintln!("xattrs: no python3 here; skipped");
        return;
    };
    let script = r#"
import os, sys, ctypes
os.chdir(sys.argv[1])
def t(label, f):
    try: r = f()
    except OSError as e: r = e.strerror
    print(label, r)
open("f", "w").write("x")
os.symlink("f", "s")
t("set", lambda: os.setxattr("f", "user.a", b"hello"))
t("set-create-again", lambda: os.setxattr("f", "user.a", b"x", os.XATTR_CREATE))
t("get", lambda: os.getxattr("f", "user.a"))
t("get-via-link", lambda: os.getxattr("s", "user.a"))
t("get-link-nofollow", lambda: os.getxattr("s", "user.a", follow_symlinks=False))
t("list", lambda: sorted(os.listxattr("f")))
t("get-missing", lambda: os.getxattr("f", "user.nope"))
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(2)
r = libc.getxattr(b"f", b"user.a", buf, 2); print("get-small", r, ctypes.get_errno() if r < 0 else "")
print("get-len", libc.getxattr(b"f", b"user.a", None, 0))
t("remove", lambda: os.removexattr("f", "user.a"))
t("remove-again", lambda: os.removexattr("f", "user.a"))
t("get-nofile", lambda: os.getxattr("nofile", "user.a"))
os.remove("f"); os.remove("s")
"#;
    for u in users() {
        let d = tree(&format!("xattr-{}", u.unwrap_or(0)));
        let w = work_dir(&d, u, |_| {});
        let native = command_as(u, py, &["-c", script, &w]).output().unwrap();
        let n = text(&native.stdout);
        if n.contains("set Operation not supported") {
            eprintln!("xattrs: the filesystem under /tmp has no user xattrs; skipped");
            return;
        }
        assert!(n.contains("get b'hello'"), "{n}{}", text(&native.stderr));
        let out = run_as(u, &["-b", &format!("{d}/src:/v"), "--", py, "-c", script, "/v/w"]);
        assert_eq!(text(&out.stdout), n, "{u:?}: {}", text(&out.stderr));
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// A root guest that drops to another user is acted for as that user: what the monitor
/// creates for it is that user's, and what that user may not read stays unread.
#[test]
fn a_guest_that_drops_privileges_is_acted_for_with_its_own() {
    if !is_root() {
        eprintln!("dropped privileges: needs root to drop them; skipped");
        return;
    }
    let d = tree("creds");
    let w = format!("{d}/src/w");
    std::fs::create_dir_all(&w).unwrap();
    std::fs::set_permissions(&w, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    std::fs::write(format!("{w}/rootonly"), "secret\n").unwrap();
    std::fs::set_permissions(format!("{w}/rootonly"), std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let script = "touch /v/w/x; stat -c '%u %g' /v/w/x; mkdir /v/w/d; stat -c '%u %a' /v/w/d; cat /v/w/rootonly 2>&1; \
                  test -r /v/w/rootonly || echo not-readable";
    let out = run_as(None, &["-b", &format!("{d}/src:/v"), "--", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script]);
    assert_eq!(
        text(&out.stdout),
        "65534 65534\n65534 755\ncat: /v/w/rootonly: Permission denied\nnot-readable\n",
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&d);
}
