//! `-0/--fakeroot` end to end: unmodified packaging tools under viewos give the same
//! archives as under Debian's fakeroot (the reference), static programs that fakeroot's
//! LD_PRELOAD cannot reach get the right answers, and the state survives across runs.
//! Everything as the current user and, when root, as uid 65534.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{command_as, is_root, python3, run_as, text, users, viewos};

/// A fresh directory under /tmp that `user` may write.
fn scratch(name: &str, user: Option<u32>) -> PathBuf {
    let d = std::env::temp_dir().join(format!("viewos-fakeroot-{name}-{}-{}", user.unwrap_or(0), std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    if let Some(uid) = user {
        std::os::unix::fs::chown(&d, Some(uid), Some(uid)).unwrap();
    }
    d
}

fn have(cmd: &str) -> bool {
    std::process::Command::new("sh").args(["-c", &format!("command -v {cmd}")]).output().is_ok_and(|o| o.status.success())
}

/// Runs `sh -c script` in `dir` as `user`, under `wrapper` (its argv before `sh`).
fn sh_in(user: Option<u32>, dir: &Path, wrapper: &[&str], script: &str) -> Output {
    let mut args: Vec<&str> = wrapper[1..].to_vec();
    args.extend(["sh", "-c", script]);
    let mut c = command_as(user, wrapper[0], &args);
    c.current_dir(dir).env("LC_ALL", "C").env("TZ", "UTC").env("SOURCE_DATE_EPOCH", "1000000000");
    c.output().expect("run")
}

/// `script` run as `user` under Debian's fakeroot and under `viewos -0`, each in a fresh
/// directory of its own (`NAME-ref`, `NAME-view`); both must succeed. Returns the
/// directories (for the caller to look at, then remove) and the two outputs.
fn beside_fakeroot(user: Option<u32>, name: &str, script: &str) -> (PathBuf, PathBuf, String, String) {
    let a = scratch(&format!("{name}-ref"), user);
    let b = scratch(&format!("{name}-view"), user);
    let reference = sh_in(user, &a, &["fakeroot"], script);
    assert!(reference.status.success(), "fakeroot: {}", text(&reference.stderr));
    let ours = sh_in(user, &b, &[viewos(), "-0", "--"], script);
    assert!(ours.status.success(), "viewos -0 as {user:?}: {}", text(&ours.stderr));
    (a, b, text(&reference.stdout), text(&ours.stdout))
}

/// The packaging steps: a tree with owners, modes, device nodes, a FIFO, hard and
/// symbolic links, made with chown, chmod, install -o, mknod and make install DESTDIR=;
/// then archived by tar, cpio and dpkg-deb, and the .deb extracted again. Prints the
/// listings the tools make of what they archived.
const PACKAGING: &str = r#"set -e
mkdir -p pkg/usr/bin pkg/etc pkg/dev pkg/var/lib/app pkg/DEBIAN src
echo hello > pkg/usr/bin/tool
echo conf > pkg/etc/conf
chown 33:33 pkg/etc/conf
chmod 640 pkg/etc/conf
chmod 4755 pkg/usr/bin/tool
install -o 5 -g 6 -m 2750 pkg/etc/conf pkg/usr/bin/inst
chown -R 1:2 pkg/var
mknod pkg/dev/null c 1 3
mknod pkg/dev/sda1 b 8 1
mkfifo pkg/dev/fifo
ln pkg/etc/conf pkg/etc/hardlink
ln -s ../etc/conf pkg/usr/conf-link
chown -h 7:8 pkg/usr/conf-link
printf 'all:\n\ninstall:\n\tinstall -d $(DESTDIR)/usr/sbin\n\tinstall -o 0 -g 0 -m 4711 /dev/null $(DESTDIR)/usr/sbin/daemon\n\tinstall -o 9 -g 9 -m 600 /dev/null $(DESTDIR)/etc/secret\n' > src/Makefile
make -s -C src install DESTDIR=$PWD/pkg
printf 'Package: demo\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@e>\nDescription: demo\n' > pkg/DEBIAN/control
chmod 755 pkg/DEBIAN
find pkg -exec touch -h -d @1000000000 {} +
echo '== ls'
ls -lnR pkg | grep -v '^total'
echo '== tar'
tar --sort=name -cf out.tar --exclude=pkg/DEBIAN pkg
tar -tvf out.tar
echo '== cpio'
(cd pkg && find . -path ./DEBIAN -prune -o -print | sort | cpio -o -H newc --quiet > ../out.cpio)
cpio -itvn --quiet < out.cpio
echo '== dpkg-deb -c'
dpkg-deb --build pkg out.deb >/dev/null
dpkg-deb -c out.deb
echo '== dpkg-deb -x'
mkdir x
dpkg-deb -x out.deb x
find x | sort | while read -r f; do stat -c '%A %u %g %t,%T %h %n' "$f"; done
"#;

#[test]
fn packaging_tools_make_the_same_archives_as_debian_fakeroot() {
    for cmd in ["fakeroot", "cpio", "dpkg-deb", "make"] {
        if !have(cmd) {
            eprintln!("skipped: {cmd} is not installed (scripts/test.sh installs it)");
            return;
        }
    }
    for user in users() {
        let (a, b, r, o) = beside_fakeroot(user, "packaging", PACKAGING);
        // Sanity: the reference did fake something.
        assert!(r.contains("crw-r--r-- root/root") && r.contains("rwsr-xr-x"), "reference:\n{r}");
        let diff: Vec<String> =
            r.lines().zip(o.lines()).filter(|(x, y)| x != y).map(|(x, y)| format!("fakeroot: {x}\nviewos:   {y}")).collect();
        assert!(diff.is_empty() && r.lines().count() == o.lines().count(), "as {user:?}:\n{}\n--- viewos:\n{o}", diff.join("\n"));
        // Nothing really belongs to anyone else, and no real device node was made.
        let real = sh_in(user, &b, &["env"], "find pkg x ! -user $(id -u) -o -type c -o -type b; echo checked");
        assert_eq!(text(&real.stdout), "checked\n", "as {user:?}: {}", text(&real.stderr));
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
    }
}

/// Modes set by chmods the filter lets through (plain ones: no set-ID or sticky bit, owner
/// read and write) after modes the monitor recorded, each followed by what the view shows.
const CHMODS: &str = r#"set -e
show() { stat -c '%a %U %F' "$@"; }
touch f; chmod 444 f; show f; chmod u+w f; show f
chmod 4755 f; show f; chmod 755 f; show f
chmod 6755 f; echo more >> f; show f
chown 5:5 f; show f; chmod 700 f; show f
mkdir d; chmod 555 d; show d; touch d/inside; show d/inside; chmod 755 d; show d
mknod node c 1 3; show node; chmod 600 node; show node; chmod 666 node; show node
echo '== ls'
ls -ln f d node | cut -c1-10
"#;

#[test]
fn chmods_the_monitor_does_not_see_still_show_as_debian_fakeroot_shows_them() {
    if !have("fakeroot") {
        eprintln!("skipped: fakeroot is not installed (scripts/test.sh installs it)");
        return;
    }
    for user in users() {
        let (a, b, r, o) = beside_fakeroot(user, "chmod", CHMODS);
        // Declared difference: chown clears the set-ID bits of a group-executable file, for
        // root too (as native Linux does); Debian fakeroot keeps them.
        assert!(r.contains("\n6755 games regular file\n"), "reference:\n{r}");
        let expected = r.replacen("\n6755 games regular file\n", "\n755 games regular file\n", 1);
        assert_eq!(o, expected, "as {user:?}");
        // A plain chmod never stops; one the real file cannot simply have does.
        let stats = |mode: &str| {
            let o = sh_in(user, &b, &[viewos(), "-0", "--stats", "--"], &format!("exec chmod {mode} f"));
            assert!(o.status.success(), "{}", text(&o.stderr));
            text(&o.stderr).lines().any(|l| l.starts_with("fchmodat"))
        };
        assert!(!stats("644"), "as {user:?}");
        assert!(stats("444") && stats("4755"), "as {user:?}");
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
    }
}

/// Calls relative to directory fds (fixtures/fakeroot/at_calls.py), which an identity view
/// makes under the guest's own directory: the same answers as natively as root, symlinks
/// to /proc/self included (the caller's, not the monitor's).
#[test]
fn calls_under_a_dirfd_answer_as_natively_as_root() {
    let Some(py) = python3() else {
        eprintln!("skipped: no python3");
        return;
    };
    if !is_root() {
        eprintln!("skipped: the reference (chown, mknod natively) needs root");
        return;
    }
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/fakeroot/at_calls.py");
    let a = scratch("at-ref", None);
    let reference = sh_in(None, &a, &["env"], &format!("exec {py} {fixture}"));
    assert!(reference.status.success(), "native: {}", text(&reference.stderr));
    let r = text(&reference.stdout);
    assert!(r.contains("symlink to /proc/self is mine: True") && r.contains("device: ('crw-r--r--', 1, 3)"), "reference:\n{r}");
    for user in users() {
        // The identity view, and a path view (`-r /`), which learns each dirfd's path.
        for opts in [&["-0"][..], &["-0", "-r", "/"]] {
            let b = scratch("at-view", user);
            let mut wrapper = vec![viewos()];
            wrapper.extend_from_slice(opts);
            let cwd = format!("--cwd={}", b.display());
            wrapper.extend([cwd.as_str(), "--"]);
            let ours = sh_in(user, &b, &wrapper, &format!("exec {py} {fixture}"));
            assert!(ours.status.success(), "viewos {opts:?} as {user:?}: {}", text(&ours.stderr));
            assert_eq!(text(&ours.stdout), r, "{opts:?} as {user:?}");
            let _ = std::fs::remove_dir_all(&b);
        }
    }
    let _ = std::fs::remove_dir_all(&a);
}

/// In the identity view a relative path is named under the thread's cwd itself, so it
/// still works after the cwd's directory was renamed (a path view that knows the cwd by
/// its path cannot follow that: see ARCHITECTURE.md).
#[test]
fn relative_paths_follow_a_renamed_cwd() {
    for user in users() {
        let d = scratch("moved-cwd", user);
        let o = sh_in(user, &d, &[viewos(), "-0", "--"], "mkdir a && cd a && mv ../a ../b && touch x && chown 5:6 x && mknod n c 1 3 && stat -c '%u %g %F' x n && ls ../b");
        assert_eq!(text(&o.stdout), "5 6 regular empty file\n0 0 character special file\nn\nx\n", "as {user:?}: {}", text(&o.stderr));
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn a_static_busybox_gets_the_right_answers_where_fakeroot_cannot() {
    let bb = "/bin/busybox";
    if !Path::new(bb).exists() {
        eprintln!("skipped: busybox-static is not installed");
        return;
    }
    let script = "set -e; touch f; chown 5:6 f; mknod n c 4 64; chmod 6755 f; ls -ln f n; id -u";
    for user in users() {
        let d = scratch("busybox", user);
        let o = sh_in(user, &d, &[viewos(), "-0", "--", bb], script);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let out = text(&o.stdout);
        let words: Vec<Vec<&str>> = out.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(words[0][..5], ["-rwsr-sr-x", "1", "5", "6", "0"], "{out}");
        assert_eq!(words[1][..6], ["crw-r--r--", "1", "0", "0", "4,", "64"], "{out}");
        assert_eq!(words[2], ["0"], "{out}");
        let real = std::fs::symlink_metadata(d.join("f")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(real.uid(), user.unwrap_or(0), "the real owner never changes");
        assert!(std::fs::symlink_metadata(d.join("n")).unwrap().file_type().is_file(), "a placeholder, not a device");
        if user.is_some() {
            // Debian's fakeroot cannot reach a static program: its chown really runs, as
            // nobody, and fails.
            let _ = std::fs::remove_file(d.join("f"));
            let _ = std::fs::remove_file(d.join("n"));
            let f = sh_in(user, &d, &["fakeroot", bb], script);
            assert!(!f.status.success(), "fakeroot unexpectedly managed: {}", text(&f.stdout));
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn identity_calls_proc_status_and_fds_of_every_kind() {
    let Some(py) = common::python3() else {
        eprintln!("skipped: no python3");
        return;
    };
    let script = r#"
import os, socket
print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups())
st = {l.split(':')[0]: l.split(':')[1].split() for l in open('/proc/self/status') if l.startswith(('Uid', 'Gid', 'CapEff'))}
print(st['Uid'], st['Gid'], st['CapEff'])
os.setgroups([1, 2])
os.setresgid(7, 8, 9)
os.setresuid(4, 5, 6)
print(os.getresuid(), os.getresgid(), sorted(os.getgroups()))
st = {l.split(':')[0]: l.split(':')[1].split() for l in open('/proc/thread-self/status') if l.startswith(('Uid', 'Gid', 'CapEff'))}
print(st['Uid'], st['Gid'], st['CapEff'])
try:
    os.setuid(0)
except PermissionError as e:
    print('setuid(0):', e.errno)
r, w = os.pipe()
s = socket.socket()
import stat
print(stat.S_ISFIFO(os.fstat(r).st_mode), stat.S_ISSOCK(os.fstat(s.fileno()).st_mode))
"#;
    for (user, mechanism) in users().into_iter().flat_map(|u| [(u, "--mechanism=hybrid"), (u, "--mechanism=ptrace")]) {
        let o = run_as(user, &["-0", mechanism, "--", py, "-c", script]);
        assert!(o.status.success(), "{mechanism}: {}", text(&o.stderr));
        let out = text(&o.stdout);
        let expect = "0 0 0 [0]\n\
            ['0', '0', '0', '0'] ['0', '0', '0', '0'] ['000001ffffffffff']\n\
            (4, 5, 6) (7, 8, 9) [1, 2]\n\
            ['4', '5', '6', '5'] ['7', '8', '9', '8'] ['0000000000000000']\n\
            setuid(0): 1\n\
            True True\n";
        assert_eq!(out, expect, "as {user:?}, {mechanism}");
    }
}

#[test]
fn state_round_trip_across_runs_and_hard_links() {
    for user in users() {
        let d = scratch("state", user);
        let state = d.join("state");
        let st = state.to_str().unwrap();
        let o = sh_in(user, &d, &[viewos(), "--fakeroot-state", st, "--"], "touch a && ln a b && mknod dev b 7 1 && chown 10:20 a");
        assert!(o.status.success(), "{}", text(&o.stderr));
        let saved = std::fs::read_to_string(&state).unwrap();
        assert!(saved.starts_with("viewos-fakeroot-state 2\n"), "{saved}");
        // A second run sees the first one's changes, through the other name too.
        let o = sh_in(user, &d, &[viewos(), "--fakeroot-state", st, "--"], "stat -c '%u %g %F %t:%T' b dev; rm dev");
        assert_eq!(text(&o.stdout), "10 20 regular empty file 0:0\n0 0 block special file 7:1\n", "{}", text(&o.stderr));
        // The removed device node's entry went with it.
        let after = std::fs::read_to_string(&state).unwrap();
        assert_eq!(after.lines().count(), saved.lines().count() - 1, "{after}");
        // Without the state, a run knows nothing.
        let o = sh_in(user, &d, &[viewos(), "-0", "--"], "stat -c '%u %g' b");
        assert_eq!(text(&o.stdout), "0 0\n");
        let _ = std::fs::remove_dir_all(&d);
    }
}

#[test]
fn a_damaged_state_file_is_refused_and_kept() {
    let d = scratch("damaged", None);
    let state = d.join("state");
    for (bad, what) in [
        (&b"root:x:0:0\n"[..], "not a viewos fakeroot state file"),
        (&b"viewos-fakeroot-state 2\n1 2 0 0 644/644 -\n"[..], "truncated"),
        (&b"viewos-fakeroot-state 2\n1 2 0 0 644/644 -\nend 1 0000000000000000\n"[..], "checksum"),
        (&b"viewos-fakeroot-state 1\n1 2 0 0 644 -\nend 1 0000000000000000\n"[..], "older viewos"),
    ] {
        std::fs::write(&state, bad).unwrap();
        let o = run_as(None, &["--fakeroot-state", state.to_str().unwrap(), "--", "touch", d.join("made").to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2));
        let err = text(&o.stderr);
        assert!(err.contains("--fakeroot-state") && err.contains(what), "{err}");
        assert_eq!(std::fs::read(&state).unwrap(), bad, "the file is left as it was");
        assert!(!d.join("made").exists(), "nothing ran");
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn fakeroot_composes_with_a_bind_and_a_hide() {
    for user in users() {
        let d = scratch("bind", user);
        std::fs::create_dir(d.join("data")).unwrap();
        std::fs::write(d.join("data/secret"), "s").unwrap();
        if let Some(uid) = user {
            for p in ["data", "data/secret"] {
                std::os::unix::fs::chown(d.join(p), Some(uid), Some(uid)).unwrap();
            }
        }
        let bind = format!("{}:/w", d.join("data").display());
        let o = sh_in(user, &d, &[viewos(), "-0", "-b", &bind, "--hide", "/w/secret", "--"], "cd /w && touch f && chown 3:4 f && mknod c c 1 1 && ls -n /w | sed 1d | awk '{print $1, $3, $4, $NF}'; cat secret 2>&1 | sed 's/.*: //'");
        assert_eq!(text(&o.stdout), "crw-r--r-- 0 0 c\n-rw-r--r-- 3 4 f\nNo such file or directory\n", "as {user:?}: {}", text(&o.stderr));
        let _ = std::fs::remove_dir_all(&d);
    }
    let _ = is_root();
}

/// `dpkg -i` of a package built in the test, with a maintainer script that chowns and
/// makes a device node, into a minimal Debian root unpacked from .deb files
/// (`VIEWOS_DEBS`, downloaded by scripts/test.sh), under `-0 -r`.
#[test]
fn dpkg_installs_a_package_into_a_minimal_debian_root() {
    let debs = std::env::var("VIEWOS_DEBS").unwrap_or_else(|_| "/var/tmp/viewos-debs".into());
    if !Path::new(&debs).join(".complete").exists() {
        eprintln!("skipped: no .debs in {debs} (scripts/test.sh downloads them)");
        return;
    }
    let setup = format!(
        r#"set -e
for d in {debs}/*.deb; do dpkg-deb -x "$d" root; done
mkdir -p root/var/lib/dpkg/info root/var/lib/dpkg/updates root/var/lib/dpkg/triggers root/var/log root/tmp root/etc
touch root/var/lib/dpkg/status root/var/lib/dpkg/available
printf 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/bin/sh\nbin:x:2:2::/:/bin/sh\n' > root/etc/passwd
printf 'root:x:0:\ndaemon:x:1:\nbin:x:2:\n' > root/etc/group
for a in sh ls chown mknod cat rm mkdir; do ln -sf busybox root/bin/$a; done
ln -sf /bin/busybox root/usr/bin/diff
mkdir -p pkg/DEBIAN pkg/opt/demo
echo hi > pkg/opt/demo/file
printf 'Package: demo\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@e>\nDescription: demo\n' > pkg/DEBIAN/control
printf '#!/bin/sh\nset -e\necho made > /opt/demo/by-postinst\nchown 2:2 /opt/demo/by-postinst\nmknod /opt/demo/null c 1 3\n' > pkg/DEBIAN/postinst
chmod 755 pkg/DEBIAN/postinst
"#
    );
    for user in users() {
        let d = scratch("dpkg", user);
        let o = sh_in(user, &d, &["env"], &setup);
        assert!(o.status.success(), "setup: {}", text(&o.stderr));
        let deb = std::env::temp_dir().join(format!("viewos-demo-{}-{}.deb", user.unwrap_or(0), std::process::id()));
        let o = sh_in(user, &d, &[viewos(), "-0", "--"], &format!("chown 1:1 pkg/opt/demo/file && chmod 4755 pkg/opt/demo/file && dpkg-deb --build pkg {} >/dev/null", deb.display()));
        assert!(o.status.success(), "build: {}", text(&o.stderr));
        let root = d.join("root");
        let script = format!("/usr/bin/dpkg -i {} >/dev/null && ls -ln /opt/demo && /usr/bin/dpkg -s demo | grep Status", deb.display());
        let tree = |root: &Path| text(&sh_in(user, root, &["env"], "find . -printf '%p %y %m %s %T@\\n' | LC_ALL=C sort; find . -type f -exec cat {} + | sha256sum").stdout);
        // First in a throwaway copy of the root (`--cow /`): installed in the view, the
        // real root untouched; then for real.
        let before = tree(&root);
        let store = d.join("store");
        let cow = format!("/:{}", store.display());
        for opts in [&["--cow", cow.as_str()][..], &[]] {
            let mut args = vec!["-0", "-r", root.to_str().unwrap(), "-w", "/"];
            args.extend_from_slice(opts);
            args.extend(["--", "/bin/sh", "-c", &script]);
            let mut c = command_as(user, viewos(), &args);
            c.env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
            let o = c.output().unwrap();
            assert!(o.status.success(), "dpkg -i as {user:?} {opts:?}: {}\n{}", text(&o.stdout), text(&o.stderr));
            let out = text(&o.stdout);
            let rows: Vec<Vec<&str>> = out.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
            assert_eq!(rows[0][..5], ["-rw-r--r--", "1", "2", "2", "5"], "{out}");
            assert_eq!(rows[1][..5], ["-rwsr-xr-x", "1", "1", "1", "3"], "{out}");
            assert_eq!(rows[2][..6], ["crw-r--r--", "1", "0", "0", "1,", "3"], "{out}");
            assert_eq!(out.lines().last(), Some("Status: install ok installed"), "{out}");
            if !opts.is_empty() {
                assert_eq!(tree(&root), before, "{user:?}: dpkg -i in a cow view changed the real root");
                let status = text(&command_as(user, viewos(), &["cow", "status", store.to_str().unwrap()]).output().unwrap().stdout);
                assert!(status.lines().any(|l| l == "A opt/demo/file") && status.lines().any(|l| l == "M var/lib/dpkg/status"), "{status}");
            }
        }
        let _ = std::fs::remove_file(&deb);
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// A set-user-ID program of the virtual root makes a virtual non-root user root again;
/// access checks follow the virtual owner and mode.
#[test]
fn setuid_programs_and_access_checks_follow_the_view() {
    let Some(py) = common::python3() else {
        eprintln!("skipped: no python3");
        return;
    };
    let script = r#"
import os, shutil, sys
shutil.copy('/usr/bin/id', './myid'); os.chown('./myid', 0, 0); os.chmod('./myid', 0o4755)
open('f', 'w').close(); os.chown('f', 5, 5); os.chmod('f', 0o600)
print(os.access('f', os.R_OK | os.W_OK), os.access('f', os.X_OK))
pid = os.fork()
if pid == 0:
    os.setgroups([]); os.setresgid(7, 7, 7); os.setresuid(7, 7, 7)
    print(os.access('f', os.R_OK), os.access('myid', os.X_OK), flush=True)
    os.execv('./myid', ['myid', '-u'])
os.waitpid(pid, 0)
"#;
    for user in users() {
        let d = scratch("setuid", user);
        let mut c = command_as(user, viewos(), &["-0", "--", py, "-c", script]);
        c.current_dir(&d);
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert_eq!(text(&o.stdout), "True False\nFalse True\n0\n", "as {user:?}: {}", text(&o.stderr));
        let _ = std::fs::remove_dir_all(&d);
    }
}

/// A virtual root may `chroot` in a path view (the chroot is the view's own), as root may.
#[test]
fn a_virtual_root_may_chroot_in_a_path_view() {
    if !Path::new("/bin/busybox").exists() || !Path::new("/usr/sbin/chroot").exists() {
        eprintln!("skipped: busybox-static or chroot missing");
        return;
    }
    for user in users() {
        let d = scratch("chroot", user);
        std::fs::create_dir_all(d.join("bin")).unwrap();
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::copy("/bin/busybox", d.join("bin/busybox")).unwrap();
        std::fs::write(d.join("etc/marker"), "inside\n").unwrap();
        let dir = d.to_str().unwrap();
        let o = run_as(user, &["-0", "-r", "/", "--", "/usr/sbin/chroot", dir, "/bin/busybox", "cat", "/etc/marker"]);
        assert_eq!(text(&o.stdout), "inside\n", "as {user:?}: {}", text(&o.stderr));
        if user.is_some() {
            // Without -0, nobody may not.
            let o = run_as(user, &["-r", "/", "--", "/usr/sbin/chroot", dir, "/bin/busybox", "true"]);
            assert!(!o.status.success());
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
