//! `-r/--root` (work in progress for the path-view issue): a minimal root filesystem built
//! from Debian's static busybox plus one dynamically linked program with its loader and
//! libraries; the view runs it as its `/`, scripts and the ELF loader found inside it.

mod common;

use std::os::unix::fs::symlink;
use std::process::Command;

use common::*;

/// Builds the root filesystem; `None` (test skipped, said on stderr) without busybox.
fn rootfs(tag: &str) -> Option<String> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| std::path::Path::new(p).exists())?;
    let r = format!("/tmp/viewos-rootfs-{}-{tag}", std::process::id());
    let _ = std::fs::remove_dir_all(&r);
    for d in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(format!("{r}/{d}")).unwrap();
    }
    std::fs::copy(busybox, format!("{r}/bin/busybox")).unwrap();
    for applet in ["sh", "cat", "echo", "ls", "id"] {
        symlink("busybox", format!("{r}/bin/{applet}")).unwrap();
    }
    std::fs::copy("/usr/bin/ls", format!("{r}/bin/gnuls")).unwrap();
    let ldd = Command::new("ldd").arg("/usr/bin/ls").output().unwrap();
    for lib in String::from_utf8_lossy(&ldd.stdout).split_whitespace().filter(|w| w.starts_with('/')) {
        let dst = format!("{r}{lib}");
        std::fs::create_dir_all(std::path::Path::new(&dst).parent().unwrap()).unwrap();
        std::fs::copy(lib, &dst).unwrap();
    }
    std::fs::write(format!("{r}/etc/hostname"), "inside-the-root\n").unwrap();
    std::fs::write(format!("{r}/bin/hello"), "#!/bin/sh\necho script says $0 $1\n").unwrap();
    Command::new("chmod").args(["-R", "a+rX", &r]).status().unwrap();
    Command::new("chmod").args(["a+x", &format!("{r}/bin/hello")]).status().unwrap();
    Some(r)
}

#[test]
fn a_busybox_root_runs_scripts_and_a_dynamic_program() {
    for u in users() {
        let Some(r) = rootfs(&format!("{}", u.unwrap_or(0))) else {
            eprintln!("root: no busybox here (Debian package busybox-static); skipped");
            return;
        };
        let script = "cat /etc/hostname; hello world; /bin/gnuls -1 / | grep -c .; cd /etc && pwd; cat /etc/passwd 2>&1 | head -1; \
                      PATH=/bin gnuls /nonexistent 2>&1 | head -1";
        let out = run_as(u, &["-r", &r, "--", "/bin/sh", "-c", script]);
        let o = text(&out.stdout);
        let lines: Vec<&str> = o.lines().collect();
        assert_eq!(lines.len(), 6, "{u:?}: {o}{}", text(&out.stderr));
        assert_eq!(lines[0], "inside-the-root", "{u:?}: the root's own /etc");
        assert_eq!(lines[1], "script says /bin/hello world", "{u:?}: #! found inside the root");
        // The root's own entries, and the mount points bound through that it lacks.
        let entries = std::fs::read_dir(&r).unwrap().count()
            + ["dev", "proc", "sys", "tmp"].iter().filter(|d| !std::path::Path::new(&format!("{r}/{d}")).exists()).count();
        assert_eq!(lines[2], entries.to_string(), "{u:?}: GNU ls, through the root's own loader and libc, lists the root: {o}");
        assert_eq!(lines[3], "/etc", "{u:?}");
        assert!(lines[4].contains("No such file"), "{u:?}: the host's /etc/passwd leaked: {}", lines[4]);
        // Run through the root's own loader, the program still sees the argv[0] it was given
        // (glibc's loader takes --argv0).
        assert!(lines[5].starts_with("gnuls: cannot access '/nonexistent'"), "{u:?}: {}", lines[5]);
        assert_eq!(out.status.code(), Some(0), "{u:?}");
        let _ = std::fs::remove_dir_all(&r);
    }
}

#[test]
fn a_bad_root_is_refused_before_anything_runs() {
    for args in [vec!["-r", "/nonexistent-root"], vec!["-r", "/etc/hostname"]] {
        let mut full = args.clone();
        full.extend(["--", "/bin/true"]);
        let out = run_as(None, &full);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).starts_with("viewos: --root"), "{}", text(&out.stderr));
    }
}

/// `chroot` inside a view is virtual: the directory becomes the process's `/` for every
/// later lookup (and for exec), as a native `chroot` would make it; without
/// `CAP_SYS_CHROOT` it is refused as natively.
#[test]
fn chroot_inside_a_view_matches_a_native_chroot() {
    let Some(busybox) = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| std::path::Path::new(p).exists()) else {
        eprintln!("chroot: no busybox here (Debian package busybox-static); skipped");
        return;
    };
    let d = format!("/tmp/viewos-chroot-{}", std::process::id());
    let inner = format!("{d}/inner");
    let _ = std::fs::remove_dir_all(&d);
    for sub in ["bin", "etc/deep", "tmp"] {
        std::fs::create_dir_all(format!("{inner}/{sub}")).unwrap();
    }
    std::fs::copy(busybox, format!("{inner}/bin/busybox")).unwrap();
    for applet in ["sh", "cat", "ls", "pwd", "readlink"] {
        symlink("busybox", format!("{inner}/bin/{applet}")).unwrap();
    }
    symlink("/etc/deep", format!("{inner}/abs")).unwrap();
    std::fs::write(format!("{inner}/etc/hostname"), "chrooted\n").unwrap();
    std::fs::write(format!("{d}/outside"), "outside\n").unwrap();
    Command::new("chmod").args(["-R", "a+rX", &d]).status().unwrap();
    let script = "cat /etc/hostname; pwd; ls /; cd /etc && pwd && cat hostname; ls /..; cd /abs && pwd; cat /../outside 2>&1; cat ../../../outside 2>&1; ls /bin | wc -l";
    let chroot = ["/usr/sbin/chroot", "/sbin/chroot"].into_iter().find(|p| std::path::Path::new(p).exists()).unwrap_or("chroot");
    for u in users() {
        let native = command_as(u, chroot, &[&inner, "/bin/sh", "-c", script]).output().unwrap();
        let b = format!("{d}:/cr");
        let view = run_as(u, &["-b", &b, "--", chroot, "/cr/inner", "/bin/sh", "-c", script]);
        assert_eq!(view.status.code(), native.status.code(), "{u:?}: {}", text(&view.stderr));
        assert_eq!(text(&view.stdout), text(&native.stdout), "{u:?}: {}", text(&view.stderr));
        if u.is_none() && is_root() {
            assert!(text(&view.stdout).starts_with("chrooted\n/\n"), "{}", text(&view.stdout));
        }
    }
    let _ = std::fs::remove_dir_all(&d);
}
