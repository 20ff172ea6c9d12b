//! The escape suite (started for the path-view issue): every route the probe knows to a
//! hidden file. Natively the routes reach it, which shows they are real; in a view with the
//! file's directory hidden, none may, as root and as uid 65534, under both mechanisms.

use std::process::Command;

use viewos_conformance::{User, probe, viewos};

struct Tree {
    root: String,
}

impl Tree {
    fn new(tag: &str) -> Tree {
        let root = format!("/tmp/viewos-escape-{}-{tag}", std::process::id());
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(format!("{root}/d/hid")).unwrap();
        std::fs::create_dir_all(format!("{root}/scratch")).unwrap();
        std::fs::write(format!("{root}/d/hid/key"), "TOPSECRET\n").unwrap();
        Command::new("chmod").args(["-R", "a+rwX", &root]).status().unwrap();
        Tree { root }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn escape(user: User, view: &[&str], t: &Tree) -> String {
    let mut argv = user.prefix();
    if !view.is_empty() {
        argv.push(viewos().to_string_lossy().into_owned());
        argv.extend(view.iter().map(|s| s.to_string()));
        argv.push("--".into());
    }
    argv.push(probe().to_string_lossy().into_owned());
    argv.extend(["escape".into(), format!("{}/d", t.root), "hid".into(), "key".into(), format!("{}/scratch", t.root)]);
    let out = Command::new(&argv[0]).args(&argv[1..]).current_dir("/tmp").output().unwrap();
    assert!(out.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn no_route_reaches_a_hidden_file() {
    for user in User::all() {
        let t = Tree::new(&format!("{user}"));
        let native = escape(user, &[], &t);
        assert!(native.lines().filter(|l| l.ends_with("=SECRET")).count() >= 10, "the routes are real natively: {native}");
        let hide = format!("{}/d/hid", t.root);
        for mech in ["--mechanism=hybrid", "--mechanism=ptrace"] {
            let inside = escape(user, &["--hide", &hide, mech], &t);
            let leaks: Vec<&str> = inside.lines().filter(|l| l.ends_with("=SECRET") || *l == "listing=listed").collect();
            assert!(leaks.is_empty(), "{user} {mech}: {leaks:?}\n{inside}");
            assert!(inside.contains("int80_open=ENOSYS") && inside.contains("io_uring_setup=ENOSYS"), "{user} {mech}: {inside}");
        }
    }
}

#[test]
fn a_thread_rewriting_the_path_buffer_never_reaches_a_hidden_file() {
    for user in User::all() {
        let t = Tree::new(&format!("race-{user}"));
        // Same length: the hidden key and a visible decoy.
        std::fs::create_dir_all(format!("{}/d/vis", t.root)).unwrap();
        std::fs::write(format!("{}/d/vis/key", t.root), "decoy\n").unwrap();
        Command::new("chmod").args(["-R", "a+rwX", &t.root]).status().unwrap();
        let (hidden, visible) = (format!("{}/d/hid/key", t.root), format!("{}/d/vis/key", t.root));
        let n = if user == User::Current { "100000" } else { "20000" };
        let mut argv = user.prefix();
        argv.push(viewos().to_string_lossy().into_owned());
        argv.extend(["--hide".to_string(), format!("{}/d/hid", t.root), "--".into()]);
        argv.push(probe().to_string_lossy().into_owned());
        argv.extend(["race".to_string(), n.into(), hidden, visible]);
        let out = Command::new(&argv[0]).args(&argv[1..]).current_dir("/tmp").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.trim(), "secret_reads=0", "{user}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn a_directory_swapped_for_a_symlink_after_the_lookup_does_not_lead_out() {
    for user in User::all() {
        let t = Tree::new(&format!("swap-{user}"));
        let hidden = format!("{}/d/hid", t.root);
        let scratch = format!("{}/scratch", t.root);
        let run = |view: bool| {
            let mut argv = user.prefix();
            if view {
                argv.push(viewos().to_string_lossy().into_owned());
                argv.extend(["--hide".to_string(), hidden.clone(), "--".into()]);
            }
            argv.push(probe().to_string_lossy().into_owned());
            argv.extend(["swap-race".to_string(), "20000".into(), scratch.clone(), hidden.clone()]);
            let out = Command::new(&argv[0]).args(&argv[1..]).current_dir("/tmp").output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        assert_ne!(run(false), "secret_reads=0", "{user}: natively the race must be real");
        assert_eq!(run(true), "secret_reads=0", "{user}");
    }
}

/// Nothing outside `--root` is reachable: the escape routes, and lookups that try `..` above
/// the root, symlinks (absolute and relative) aimed outside it, and `/proc/{1,self}/root`.
/// The root here holds only what a dynamic probe needs (`/usr` bound, `/lib*` links), so
/// the host tree with the secret is outside it.
#[test]
fn nothing_outside_the_root_is_reachable() {
    for user in User::all() {
        let t = Tree::new(&format!("root-{user}"));
        let jail = format!("{}/jail", t.root);
        let probe_dir = probe().parent().unwrap().to_string_lossy().into_owned();
        let secret = format!("{}/d/hid/key", t.root);
        for d in ["proc", "probe", "scratch", "usr", "etc"] {
            std::fs::create_dir_all(format!("{jail}/{d}")).unwrap();
        }
        for l in ["lib", "lib64", "bin"] {
            let _ = std::os::unix::fs::symlink(format!("usr/{l}"), format!("{jail}/{l}"));
        }
        std::os::unix::fs::symlink(&secret, format!("{jail}/abs")).unwrap();
        std::os::unix::fs::symlink(format!("../../../../../../../..{secret}"), format!("{jail}/up")).unwrap();
        Command::new("chmod").args(["-R", "a+rwX", &t.root]).status().unwrap();
        let view = [
            "--bare-root".to_string(),
            "-r".into(),
            jail.clone(),
            "-b".into(),
            "/usr:/usr".into(),
            "-b".into(),
            "/proc:/proc".into(),
            "-b".into(),
            format!("{probe_dir}:/probe"),
            "-b".into(),
            format!("{}/scratch:/scratch", t.root),
        ];
        let probe_in = "/probe/".to_string() + &probe().file_name().unwrap().to_string_lossy();
        for mech in ["--mechanism=hybrid", "--mechanism=ptrace"] {
            let mut argv = user.prefix();
            argv.push(viewos().to_string_lossy().into_owned());
            argv.extend(view.iter().cloned());
            argv.extend([mech.to_string(), "--".into(), probe_in.clone()]);
            let run = |extra: &[String]| {
                let mut a = argv.clone();
                a.extend(extra.iter().cloned());
                let out = Command::new(&a[0]).args(&a[1..]).current_dir("/tmp").output().unwrap();
                assert!(out.status.success(), "{a:?}: {}", String::from_utf8_lossy(&out.stderr));
                String::from_utf8_lossy(&out.stdout).into_owned()
            };
            let routes = run(&["escape".into(), format!("{}/d", t.root), "hid".into(), "key".into(), "/scratch".into()]);
            let leaks: Vec<&str> = routes.lines().filter(|l| l.ends_with("=SECRET") || *l == "listing=listed").collect();
            assert!(leaks.is_empty(), "{user} {mech}: {leaks:?}\n{routes}");
            let lookups = run(&[
                "paths".into(),
                format!("/../../..{secret}"),
                "/abs".into(),
                "/up".into(),
                format!("/proc/1/root{secret}"),
                format!("/proc/self/root/../..{secret}"),
                "/..".into(),
            ]);
            assert!(!lookups.contains("TOPSECRET"), "{user} {mech}: {lookups}");
            // `/..` is the root itself: its listing is the jail's.
            assert!(lookups.contains("probe") && lookups.contains("scratch"), "{user} {mech}: {lookups}");
        }
    }
}
