//! Path views against the kernel's own: the same lookups in `viewos -b SRC:DST` and in a
//! mount namespace where SRC is really bind-mounted on DST (root builds the reference;
//! viewos runs as root and as uid 65534). The outcomes must be identical.

use std::process::Command;

use viewos_conformance::{User, is_root, probe, viewos};

/// Whether this machine lets root make a private mount namespace (a container may not).
fn can_unshare() -> bool {
    let ok = is_root()
        && Command::new("unshare").args(["-m", "--propagation", "private", "true"]).status().is_ok_and(|s| s.success());
    if !ok {
        eprintln!("binds: no private mount namespace here (needs root and CAP_SYS_ADMIN), so no native bind mount to compare with; skipped");
    }
    ok
}

fn sh(cmd: &str) {
    assert!(Command::new("sh").args(["-c", cmd]).status().unwrap().success(), "{cmd}");
}

#[test]
fn lookups_through_a_bind_match_a_real_bind_mount() {
    if !can_unshare() {
        return;
    }
    let base = format!("/tmp/viewos-binds-{}", std::process::id());
    let _ = std::fs::remove_dir_all(&base);
    sh(&format!(
        "mkdir -p {base}/src/sub {base}/dst/old {base}/outside && echo hello > {base}/src/a.txt && echo b > {base}/src/sub/b.txt \
         && echo old > {base}/dst/old/x && echo out > {base}/outside/o.txt \
         && ln -s a.txt {base}/src/rel && ln -s {base}/dst/sub/b.txt {base}/src/abs && ln -s ../outside/o.txt {base}/src/up \
         && ln -s loop {base}/src/loop && chmod -R a+rX {base} && chmod 600 {base}/src/sub/b.txt"
    ));
    let dst = format!("{base}/dst");
    let paths: Vec<String> = [
        "", "/", "/a.txt", "/sub", "/sub/", "/sub/b.txt", "/sub/../a.txt", "/rel", "/abs", "/up", "/loop", "/missing",
        "/a.txt/", "/old", "/old/x", "/..", "/../outside/o.txt", "/sub/./b.txt",
    ]
    .iter()
    .map(|p| format!("{dst}{p}"))
    .collect();
    let probe = probe().to_string_lossy().into_owned();
    for user in User::all() {
        let prefix = user.prefix().join(" ");
        let quoted = paths.join(" ");
        // The reference: a private mount namespace with the real bind mount, then the probe
        // as `user`.
        let native = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &format!("mount --bind {base}/src {dst} && exec {prefix} {probe} paths {quoted}")])
            .current_dir("/tmp")
            .output()
            .unwrap();
        assert!(native.status.success(), "{}", String::from_utf8_lossy(&native.stderr));
        let mut argv = user.prefix();
        argv.push(viewos().to_string_lossy().into_owned());
        argv.extend(["-b".to_string(), format!("{base}/src:{dst}"), "--".into(), probe.clone(), "paths".into()]);
        argv.extend(paths.iter().cloned());
        let viewed = Command::new(&argv[0]).args(&argv[1..]).current_dir("/tmp").output().unwrap();
        let (n, v) = (String::from_utf8_lossy(&native.stdout), String::from_utf8_lossy(&viewed.stdout));
        assert!(n.contains("hello"), "{user}: the reference saw nothing: {n}");
        for (ln, lv) in n.lines().zip(v.lines()) {
            assert_eq!(lv, ln, "{user}: viewos differs from a real bind mount");
        }
        assert_eq!(n.lines().count(), v.lines().count(), "{user}: {}", String::from_utf8_lossy(&viewed.stderr));
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn unix_sockets_through_a_bind_match_a_real_bind_mount() {
    for scenario in ["unix-socket", "unix-dgram"] {
        unix_scenario(scenario);
    }
}

fn unix_scenario(scenario: &str) {
    if !can_unshare() {
        return;
    }
    let base = format!("/tmp/viewos-binds-{scenario}-{}", std::process::id());
    let _ = std::fs::remove_dir_all(&base);
    sh(&format!("mkdir -p {base}/src {base}/dst && chmod -R a+rwx {base}"));
    let dst = format!("{base}/dst");
    let probe = probe().to_string_lossy().into_owned();
    for user in User::all() {
        let prefix = user.prefix().join(" ");
        let native = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &format!("mount --bind {base}/src {dst} && exec {prefix} {probe} {scenario} {dst}/sock")])
            .current_dir("/tmp")
            .output()
            .unwrap();
        let mut argv = user.prefix();
        argv.push(viewos().to_string_lossy().into_owned());
        argv.extend(["-b".to_string(), format!("{base}/src:{dst}"), "--".into(), probe.clone(), scenario.into(), format!("{dst}/sock")]);
        let viewed = Command::new(&argv[0]).args(&argv[1..]).current_dir("/tmp").output().unwrap();
        let (n, v) = (String::from_utf8_lossy(&native.stdout), String::from_utf8_lossy(&viewed.stdout));
        assert!(n.contains("bind=ok") && !n.contains("=E"), "{user} {scenario}: {n}");
        assert_eq!(v, n, "{user}: {}", String::from_utf8_lossy(&viewed.stderr));
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// `-r ROOT -b DATA:/data` against the kernel's own: a private mount namespace where DATA is
/// bind-mounted on ROOT/data and the shell is `chroot`ed into ROOT (root builds it, then
/// drops to the user). The same busybox script reads, walks, creates, renames, links and
/// removes; outputs must be identical.
#[test]
fn a_root_with_a_bind_matches_a_chroot_with_a_real_bind_mount() {
    if !can_unshare() {
        return;
    }
    let Some(busybox) = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| std::path::Path::new(p).exists()) else {
        eprintln!("binds: no busybox here (Debian package busybox-static); skipped");
        return;
    };
    let base = format!("/tmp/viewos-rootbind-{}", std::process::id());
    let _ = std::fs::remove_dir_all(&base);
    let applets = "sh ls cat stat readlink mkdir mv ln rm pwd echo touch chmod find sort";
    sh(&format!(
        "mkdir -p {base}/root/bin {base}/root/etc {base}/root/data {base}/data/sub && cp {busybox} {base}/root/bin/busybox \
         && for a in {applets}; do ln -s busybox {base}/root/bin/$a; done \
         && echo inside > {base}/root/etc/motd && ln -s /etc/motd {base}/root/abs && ln -s ../../etc/motd {base}/data/sub/up \
         && echo d > {base}/data/sub/file && ln -s /data/sub/file {base}/data/link && chmod -R a+rX {base} && chmod 1777 {base}/data"
    ));
    let script = "cd /; echo $(ls /); cat /abs; cat /../../etc/motd; cd /data/sub && pwd && cat up && cat ../link; \
         readlink /data/link; stat -c '%n %s %F %h' /data /data/sub/file /abs /bin/sh; \
         cd /data; W=w$RUN; mkdir $W && cd $W && touch a && mkdir d && mv a d/b && ln d/b h && ln -s d/b s && chmod 640 h; \
         stat -c '%n %s %F %h %a' h s d d/b; find . | sort; cat s; mv d e 2>&1; ls e; rm -r e h s; cd .. && rm -r $W; \
         ls /data; echo m > /data/m$RUN; mv /data/m$RUN /etc/m$RUN 2>&1; echo $(ls /etc /data); rm -f /data/m$RUN /etc/m$RUN 2>/dev/null; \
         cat /nonexistent 2>&1; cd /data/.. && pwd";
    for user in User::all() {
        let uid = user.prefix().iter().find_map(|a| a.strip_prefix("--reuid=").map(str::to_owned));
        let spec = uid.as_ref().map(|u| format!("--userspec={u}:{u}")).unwrap_or_default();
        // Each run starts from the same tree (a failed cross-mount move may leave a file).
        let clean = || sh(&format!("rm -rf {base}/data/mn {base}/data/wn {base}/root/etc/mn"));
        clean();
        let native = Command::new("unshare")
            .args([
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                &format!("mount --bind {base}/data {base}/root/data && RUN=n exec chroot {spec} {base}/root /bin/sh -c \"$0\"", ),
                script,
            ])
            .current_dir("/tmp")
            .output()
            .unwrap();
        assert!(native.status.success(), "{user}: {}", String::from_utf8_lossy(&native.stderr));
        clean();
        let mut argv = user.prefix();
        argv.push(viewos().to_string_lossy().into_owned());
        argv.extend(["--bare-root", "-r", &format!("{base}/root"), "-b", &format!("{base}/data:/data"), "--", "/bin/sh", "-c", script].map(String::from));
        let viewed = Command::new(&argv[0]).args(&argv[1..]).env("RUN", "n").current_dir("/tmp").output().unwrap();
        let (n, v) = (String::from_utf8_lossy(&native.stdout), String::from_utf8_lossy(&viewed.stdout));
        assert!(n.contains("inside"), "{user}: the reference saw nothing: {n}");
        assert_eq!(v, n, "{user}: viewos -r/-b differs from chroot + bind mount\nstderr: {}", String::from_utf8_lossy(&viewed.stderr));
        assert_eq!(viewed.status.code(), native.status.code(), "{user}");
    }
    let _ = std::fs::remove_dir_all(&base);
}
