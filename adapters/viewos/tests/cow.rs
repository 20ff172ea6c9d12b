//! `--cow DIR[:STORE]` end to end: DIR is writable copy-on-write in the view, the real DIR
//! (the lower layer) is never written, the changes go to STORE (the upper layer).
//!
//! The reference is the same scenario (`fixtures/cow/scenario.py`) run natively on a plain
//! copy of the lower tree and, when root and the kernel allows it, on a kernel overlayfs
//! mount of it (`redirect_dir=on`): the outputs must be identical but for declared
//! differences. Then the lower tree's checksum listing, persistence across runs, `viewos cow
//! status`/`commit`, unmodified programs (git, sed, tar, make, venv) and composition with
//! the other view options. As the current user and, when root, as uid 65534.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{command_as, is_root, python3, run_as, text, users, viewos};

const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/cow/scenario.py");

/// Steps of the scenario whose outcome may differ between a plain directory, overlayfs and
/// viewos: the tag, and every outcome allowed (the line is a declared difference only if
/// both sides give one of them).
///
/// * `old-fd:` an fd opened read-only before another fd wrote the file (the first write
///   copied it up): a plain filesystem's fd reads the new data, and so does overlayfs's
///   since Linux 4.19 (its reads go to the upper file once there is one); an fd on the
///   lower file itself keeps reading the lower data.
/// * `lower-hardlink:` a write through one name of a hard-linked pair of the lower tree: a
///   plain filesystem (and overlayfs with `index=on`) shows it through the other name;
///   overlayfs with `index=off` (the default) copies up the name written alone, which
///   breaks the link (the other name keeps the lower data and nlink 2).
const DECLARED: &[(&str, &[&str])] = &[
    ("old-fd: ", &["old-fd: reads -> (b'upper content\\n', 14)", "old-fd: reads -> (b'lower content\\n', 14)"]),
    (
        "lower-hardlink: ",
        &[
            "lower-hardlink: write one, read other -> (8, b'linked\\nvia hl2\\n', b'linked\\nvia hl2\\n', 2, 2)",
            "lower-hardlink: write one, read other -> (8, b'linked\\n', b'linked\\nvia hl2\\n', 2, 1)",
        ],
    ),
];

/// What the `--viewos` steps (names beginning with `.wh.`) give in a cow view: no such name
/// can be made (`EINVAL`), so none is found either (`ENOENT`).
const MARKER_NAMES: &str = "\
wh: create -> EINVAL
wh: open -> ENOENT
wh: stat -> ENOENT
wh: mkdir -> EINVAL
wh: rename to -> EINVAL
wh: symlink -> EINVAL
wh: listing -> []
";

/// The checksum listing of the tree at `$1`, sorted: every entry's path, type, mode, owner
/// and (with `$2` = `m`) mtime; size and symlink target of non-directories; sha256 of each
/// regular file. Run natively and inside views, so that both are made by the same tools.
const LISTING: &str = r#"cd "$1" || exit 1
t=; [ "$2" = m ] && t=' %T@'
{ find . -type d -printf "%p d %m %U:%G$t\n"
  find . ! -type d -printf "%p %y %m %U:%G$t %s %l\n"
  find . -type f -exec sha256sum {} +
} | LC_ALL=C sort"#;

/// A fresh directory under /tmp that `user` may write.
fn scratch(name: &str, user: Option<u32>) -> PathBuf {
    let d = PathBuf::from(format!("/tmp/viewos-cow-{name}-{}-{}", user.unwrap_or(0), std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    if let Some(uid) = user {
        std::os::unix::fs::chown(&d, Some(uid), Some(uid)).unwrap();
    }
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(o: &Output, what: &str) -> String {
    assert!(o.status.success(), "{what}: {:?}\nstdout:\n{}\nstderr:\n{}", o.status, text(&o.stdout), text(&o.stderr));
    text(&o.stdout)
}

fn have(cmd: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {cmd}")]).output().is_ok_and(|o| o.status.success())
}

/// `program args` as `user`, with HOME in `base` (git and friends read no one's config).
fn native(user: Option<u32>, base: &Path, program: &str, args: &[&str]) -> Output {
    let mut c = command_as(user, program, args);
    c.env("HOME", base).env("GIT_CONFIG_NOSYSTEM", "1").env("LC_ALL", "C");
    c.output().expect("run natively")
}

/// `sh -c script sh args...` as `user`, natively.
fn sh(user: Option<u32>, base: &Path, script: &str, args: &[&str]) -> Output {
    let mut a = vec!["-c", script, "sh"];
    a.extend_from_slice(args);
    native(user, base, "sh", &a)
}

/// `viewos opts -- sh -c script sh args...` as `user`.
fn view_sh(user: Option<u32>, base: &Path, opts: &[&str], script: &str, args: &[&str]) -> Output {
    let mut a: Vec<&str> = opts.to_vec();
    a.extend(["--", "sh", "-c", script, "sh"]);
    a.extend_from_slice(args);
    native(user, base, viewos(), &a)
}

/// The checksum listing of `dir`, natively.
fn listing(user: Option<u32>, base: &Path, dir: &Path, mtimes: bool) -> String {
    let o = sh(user, base, LISTING, &[s(dir), if mtimes { "m" } else { "" }]);
    assert!(o.stderr.is_empty(), "listing {dir:?}: {}", text(&o.stderr));
    let l = ok(&o, "listing");
    assert!(l.lines().count() > 1, "listing {dir:?}: {l}");
    l
}

/// The checksum listing of `dir` as a view with `opts` shows it.
fn listing_in(user: Option<u32>, base: &Path, opts: &[&str], dir: &Path, mtimes: bool) -> String {
    let o = view_sh(user, base, opts, LISTING, &[s(dir), if mtimes { "m" } else { "" }]);
    assert!(o.stderr.is_empty(), "listing {dir:?} in a view: {}", text(&o.stderr));
    ok(&o, "listing in a view")
}

/// `viewos cow ARGS` as `user`.
fn cow_cmd(user: Option<u32>, args: &[&str]) -> Output {
    let mut a = vec!["cow"];
    a.extend_from_slice(args);
    run_as(user, &a)
}

/// Lines of `listing` but those of the lower tree's hard-linked pair (see `DECLARED`).
fn without_pair(listing: &str) -> String {
    listing.lines().filter(|l| !(l.contains("./hl1") || l.contains("./hl2"))).map(|l| format!("{l}\n")).collect()
}

/// Compares two outputs of the scenario line by line; a line may differ only as declared.
fn compare(reference: &str, got: &str, what: &str) {
    let (r, g): (Vec<&str>, Vec<&str>) = (reference.lines().collect(), got.lines().collect());
    for (n, (a, b)) in r.iter().zip(&g).enumerate() {
        if a == b {
            continue;
        }
        let declared = DECLARED.iter().any(|(tag, allowed)| a.starts_with(tag) && allowed.contains(a) && allowed.contains(b));
        assert!(declared, "{what}, line {}: the reference (left) and {what} (right) differ:\n  {a}\n  {b}", n + 1);
        eprintln!("{what}: declared difference, line {}: {b} (the reference: {a})", n + 1);
    }
    assert_eq!(r.len(), g.len(), "{what}: not as many lines as the reference:\n{got}");
}

/// Splits the `wh:` lines (`--viewos` steps) off a scenario run in a view.
fn marker_lines(out: &str) -> (String, String) {
    let (wh, rest): (Vec<&str>, Vec<&str>) = out.lines().partition(|l| l.starts_with("wh: "));
    (wh.iter().map(|l| format!("{l}\n")).collect(), rest.iter().map(|l| format!("{l}\n")).collect())
}

/// A kernel overlayfs over `lower` (root only; `None` where it cannot be mounted).
struct Overlay {
    mnt: PathBuf,
}

impl Overlay {
    fn mount(base: &Path, lower: &Path) -> Option<Overlay> {
        if !is_root() {
            return None;
        }
        let (u, w, m) = (base.join("ovl-upper"), base.join("ovl-work"), base.join("ovl-mnt"));
        for d in [&u, &w, &m] {
            std::fs::create_dir_all(d).unwrap();
        }
        // The upper root stands for the lower root: its owner, mode and times.
        let meta = Command::new("sh")
            .args(["-c", r#"chown --reference="$1" "$2" && chmod --reference="$1" "$2" && touch -r "$1" "$2""#, "sh", s(lower), s(&u)])
            .status()
            .unwrap();
        assert!(meta.success());
        let opts = format!("lowerdir={},upperdir={},workdir={},redirect_dir=on,metacopy=off", s(lower), s(&u), s(&w));
        let o = Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts, s(&m)]).output().unwrap();
        if !o.status.success() {
            eprintln!("no overlayfs reference: {}", text(&o.stderr));
            return None;
        }
        Some(Overlay { mnt: m })
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
    }
}

/// A base directory with the scenario's lower tree in `L`, made by `user`.
fn scenario_lower(name: &str, user: Option<u32>, py: &str) -> (PathBuf, PathBuf) {
    let base = scratch(name, user);
    let lower = base.join("L");
    let made = ok(&native(user, &base, py, &[SCENARIO, "--make-lower", s(&lower)]), "--make-lower");
    assert!(made.starts_with("xattr: "), "{made}");
    (base, lower)
}

#[test]
fn the_scenario_gives_what_a_plain_copy_and_overlayfs_give() {
    let Some(py) = python3() else {
        eprintln!("skipped: no python3");
        return;
    };
    for user in users() {
        let (base, lower) = scenario_lower("scenario", user, py);
        let before = listing(user, &base, &lower, true);
        // The references: a plain copy, and overlayfs.
        let plain = base.join("P");
        ok(&native(user, &base, "cp", &["-a", s(&lower), s(&plain)]), "cp -a");
        let reference = ok(&native(user, &base, py, &[SCENARIO, s(&plain)]), "the scenario on a plain copy");
        assert!(reference.lines().count() > 140, "the scenario ran to its end:\n{reference}");
        // (Unmounted again when `o` is dropped, at the end of the closure.)
        let overlay = Overlay::mount(&base, &lower).map(|o| {
            let out = ok(&native(user, &base, py, &[SCENARIO, s(&o.mnt)]), "the scenario on overlayfs");
            // The references agree (else the scenario prints something a filesystem decides).
            compare(&reference, &out, "overlayfs");
            out
        });
        assert_eq!(listing(user, &base, &lower, true), before, "{user:?}: overlayfs changed its lower tree");

        let store = base.join("S");
        let cow = format!("{}:{}", s(&lower), s(&store));
        for mech in ["--mechanism=hybrid", "--mechanism=ptrace"] {
            let _ = std::fs::remove_dir_all(&store);
            let out = view_sh(user, &base, &[mech, "--cow", &cow], r#""$1" "$2" --viewos "$3" && echo @@@@ && sh -c "$4" sh "$3" m"#, &[py, SCENARIO, s(&lower), LISTING]);
            let out = ok(&out, "the scenario in a cow view");
            let (run, shown) = out.split_once("@@@@\n").unwrap();
            let (wh, run) = marker_lines(run);
            assert_eq!(wh, MARKER_NAMES, "{user:?} {mech}: names beginning with .wh.");
            compare(&reference, &run, &format!("viewos --cow ({user:?} {mech})"));
            if let Some(ovl) = &overlay {
                compare(ovl, &run, &format!("viewos --cow against overlayfs ({user:?} {mech})"));
            }
            // The lower tree is untouched, and the view showed what the plain copy became.
            assert_eq!(listing(user, &base, &lower, true), before, "{user:?} {mech}: the lower tree changed");
            let strip = |l: &str| -> String { l.lines().map(|x| drop_mtime(x) + "\n").collect() };
            assert_eq!(without_pair(&strip(shown)), without_pair(&listing(user, &base, &plain, false)), "{user:?} {mech}: the view (left) and the plain copy after the scenario (right)");
            // A second run with the same store shows the first run's changes.
            assert_eq!(listing_in(user, &base, &["--cow", &cow], &lower, true), shown, "{user:?} {mech}: a second run with the store");
            assert_eq!(listing(user, &base, &lower, true), before, "{user:?} {mech}: the lower tree changed");
        }
        let _ = std::fs::remove_dir_all(&base);
    }
}

/// A line of a listing made with mtimes, without its mtime (the 5th field of an entry line).
fn drop_mtime(line: &str) -> String {
    let f: Vec<&str> = line.split(' ').collect();
    if f.len() >= 5 && f[1].len() == 1 {
        [&f[..4], &f[5..]].concat().join(" ")
    } else {
        line.to_string()
    }
}

#[test]
fn commit_makes_the_real_tree_what_the_view_showed() {
    let Some(py) = python3() else {
        eprintln!("skipped: no python3");
        return;
    };
    for user in users() {
        let (base, lower) = scenario_lower("commit", user, py);
        let store = base.join("S");
        let cow = format!("{}:{}", s(&lower), s(&store));
        let before = listing(user, &base, &lower, true);
        ok(&run_as(user, &["--cow", &cow, "--", py, SCENARIO, s(&lower)]), "the scenario in a cow view");
        let shown = listing_in(user, &base, &["--cow", &cow], &lower, true);
        assert_ne!(shown, before);
        let status = ok(&cow_cmd(user, &["status", s(&store)]), "cow status");
        assert!(status.lines().count() > 20 && status.lines().all(|l| ["A ", "M ", "D "].iter().any(|p| l.starts_with(p))), "{status}");
        let raw_store = listing(user, &base, &store, true);
        // A dry run prints the plan and changes nothing.
        let plan = ok(&cow_cmd(user, &["commit", "--dry-run", s(&store)]), "cow commit --dry-run");
        assert!(!plan.is_empty());
        assert_eq!(listing(user, &base, &lower, true), before, "{user:?}: a dry run changed the lower tree");
        assert_eq!(listing(user, &base, &store, true), raw_store, "{user:?}: a dry run changed the store");
        // The commit.
        ok(&cow_cmd(user, &["commit", s(&store)]), "cow commit");
        assert_eq!(listing(user, &base, &lower, true), shown, "{user:?}: the committed tree (left) and what the view showed (right)");
        assert_eq!(ok(&cow_cmd(user, &["status", s(&store)]), "status after the commit"), "", "{user:?}");
        assert_eq!(listing_in(user, &base, &["--cow", &cow], &lower, true), shown, "{user:?}: a view after the commit");
        let _ = std::fs::remove_dir_all(&base);
    }
}

/// A small lower tree: a, b, f, c/c1, d/d1, d/d2, e/e1, g/g1 (all files hold their name).
fn small_lower(base: &Path, user: Option<u32>) -> PathBuf {
    let lower = base.join("L");
    ok(&sh(user, base, "mkdir \"$1\" && cd \"$1\" && mkdir c d e g && for f in a b f c/c1 d/d1 d/d2 e/e1 g/g1; do echo $f > $f; done", &[s(&lower)]), "small lower");
    lower
}

#[test]
fn status_lists_what_changed_and_commit_applies_it() {
    for user in users() {
        let base = scratch("status", user);
        let lower = small_lower(&base, user);
        let store = base.join("S");
        let cow = format!("{}:{}", s(&lower), s(&store));
        let before = listing(user, &base, &lower, true);
        let changes = r#"cd "$1" && echo x >> a && rm b && echo n > n && echo y > c/new && rm -r d && mv e e2 && chmod 600 f && echo @@@@ && sh -c "$2" sh "$1" m"#;
        let out = ok(&view_sh(user, &base, &["--cow", &cow], changes, &[s(&lower), LISTING]), "changes in a view");
        let shown = out.strip_prefix("@@@@\n").expect("the listing follows");
        assert_eq!(listing(user, &base, &lower, true), before, "{user:?}: the lower tree changed");
        let status = ok(&cow_cmd(user, &["status", s(&store)]), "cow status");
        assert_eq!(status, "M a\nD b\nM c\nA c/new\nD d\nD d/d1\nD d/d2\nD e\nD e/e1\nA e2\nA e2/e1\nM f\nA n\n", "{user:?}");
        // The plan names what it changes; a dry run changes nothing.
        let raw_store = listing(user, &base, &store, true);
        let plan = ok(&cow_cmd(user, &["commit", "--dry-run", s(&store)]), "cow commit --dry-run");
        for p in ["a", "b", "c/new", "d", "e", "e2", "f", "n"] {
            assert!(plan.split_whitespace().any(|t| t == p || t.ends_with(&format!("/{p}"))), "{user:?}: the plan does not name {p}:\n{plan}");
        }
        assert!(!plan.contains("g1"), "{user:?}: the plan touches an unchanged file:\n{plan}");
        assert_eq!(listing(user, &base, &lower, true), before, "{user:?}: a dry run changed the lower tree");
        assert_eq!(listing(user, &base, &store, true), raw_store, "{user:?}: a dry run changed the store");
        assert_eq!(ok(&cow_cmd(user, &["status", s(&store)]), "cow status"), status);
        // The commit makes the real tree what the view showed.
        ok(&cow_cmd(user, &["commit", s(&store)]), "cow commit");
        assert_eq!(listing(user, &base, &lower, true), shown, "{user:?}: the committed tree (left) and the view (right)");
        assert_eq!(std::fs::read_to_string(lower.join("a")).unwrap(), "a\nx\n");
        assert!(!lower.join("d").exists() && !lower.join("e").exists() && lower.join("e2/e1").exists());
        assert_eq!(ok(&cow_cmd(user, &["status", s(&store)]), "status after the commit"), "", "{user:?}");
        let _ = std::fs::remove_dir_all(&base);
    }
}

#[test]
fn unmodified_programs_work_and_never_write_the_lower_tree() {
    let Some(py) = python3() else {
        eprintln!("skipped: no python3");
        return;
    };
    if !have("git") {
        eprintln!("skipped: no git");
        return;
    }
    let setup = r#"set -e
cd "$1"
mkdir repo && cd repo
git -c init.defaultBranch=main init -q .
for i in $(seq 1 200); do d=dir$((i % 10)); mkdir -p $d; printf 'line %d\nsecond line\n' $i > $d/file$i.txt; done
echo hello > README
git add -A && git -c user.email=a@b -c user.name=n commit -qm first
git checkout -q -b other
echo changed >> README && git rm -q dir1/file1.txt && echo new > dir3/added.txt && mkdir newdir && echo z > newdir/z
git add -A && git -c user.email=a@b -c user.name=n commit -qm second
git checkout -q main
cd .. && tar cf repo.tar -C repo . && cp -a repo orig
mkdir proj venvdir
printf 'hello: hello.o\n\t$(CC) -o $@ hello.o\nhello.o: hello.c\n\t$(CC) -c -o $@ hello.c\nclean:\n\trm -f hello hello.o\n' > proj/Makefile
printf '#include <stdio.h>\nint main(void) { puts("hello from make"); return 0; }\n' > proj/hello.c
echo keep > venvdir/keep
"#;
    for user in users() {
        let base = scratch("programs", user);
        ok(&sh(user, &base, setup, &[s(&base)]), "set-up");
        let b = s(&base);
        let mut workloads: Vec<(&str, String, String)> = vec![
            ("repo", "cd \"$1/repo\" && git checkout -q other && git status --porcelain && git log -1 --format=%s && cat README".into(), "second\nhello\nchanged\n".into()),
            (
                "repo",
                "cd \"$1/repo\" && sed -i 's/^line/LINE/' dir*/file*.txt && { grep -rl '^line' --include='*.txt' . | wc -l; } && grep -l '^LINE' dir*/*.txt | wc -l && git status --porcelain | wc -l".into(),
                "0\n200\n200\n".into(),
            ),
            (
                "repo",
                "cd \"$1/repo\" && rm -rf ./* ./.git && ls -A | wc -l && tar xf ../repo.tar && diff -r ../orig . && echo same && git status --porcelain | wc -l".into(),
                "0\nsame\n0\n".into(),
            ),
            (
                "venvdir",
                format!("cd \"$1/venvdir\" && {py} -m venv --without-pip v && \"$1/venvdir/v/bin/python\" -c 'import sys; print(sys.prefix)' && ls"),
                format!("{b}/venvdir/v\nkeep\nv\n"),
            ),
        ];
        if have("cc") && have("make") {
            workloads.push(("proj", "cd \"$1/proj\" && make -s && ./hello && make -s clean && ls".into(), "hello from make\nMakefile\nhello.c\n".into()));
        } else {
            eprintln!("make and cc not both installed: that part skipped");
        }
        for (n, (dir, script, want)) in workloads.iter().enumerate() {
            let lower = base.join(dir);
            let before = listing(user, &base, &lower, true);
            let cow = format!("{}:{}/store{n}", s(&lower), b);
            let out = view_sh(user, &base, &["--cow", &cow], script, &[b]);
            assert_eq!(text(&out.stdout), *want, "{user:?}: {script}\nstderr:\n{}", text(&out.stderr));
            assert!(out.status.success(), "{user:?}: {script}: {:?}", out.status);
            assert_eq!(listing(user, &base, &lower, true), before, "{user:?}: {script}: the lower tree changed");
        }
        let _ = std::fs::remove_dir_all(&base);
    }
}

#[test]
fn cow_composes_with_a_root_a_hide_and_fakeroot() {
    for user in users() {
        let base = scratch("compose", user);
        let lower = small_lower(&base, user);
        let l = s(&lower);
        let before = listing(user, &base, &lower, true);
        let store = |n: &str| format!("{l}:{}/{n}", s(&base));

        // -r / and --cow.
        let out = view_sh(user, &base, &["-r", "/", "--cow", &store("root")], "cd \"$1\" && echo x > new && echo more >> a && cat new a && ls", &[l]);
        assert_eq!(ok(&out, "-r / --cow"), "x\na\nmore\na\nb\nc\nd\ne\nf\ng\nnew\n", "{user:?}");
        assert_eq!(listing(user, &base, &lower, true), before, "{user:?}: -r /: the lower tree changed");

        // --hide DIR/c and --cow DIR: the hidden directory stays hidden, whatever is tried.
        let script = "cd \"$1\" && ls; cat c/c1 2>/dev/null || echo no-read; mkdir c 2>/dev/null || echo no-mkdir; (echo z > c/z) 2>/dev/null || echo no-create; mv a c 2>/dev/null || echo no-rename; rm -rf c; echo y >> g/g1; ls; find . | sort";
        let out = view_sh(user, &base, &["--hide", &format!("{l}/c"), "--cow", &store("hide")], script, &[l]);
        assert_eq!(
            ok(&out, "--hide --cow"),
            "a\nb\nd\ne\nf\ng\nno-read\nno-mkdir\nno-create\nno-rename\na\nb\nd\ne\nf\ng\n.\n./a\n./b\n./d\n./d/d1\n./d/d2\n./e\n./e/e1\n./f\n./g\n./g/g1\n",
            "{user:?}"
        );
        assert_eq!(listing(user, &base, &lower, true), before, "{user:?}: --hide: the lower tree changed");
        let status = ok(&cow_cmd(user, &["status", &format!("{}/hide", s(&base))]), "status");
        assert!(!status.lines().any(|x| x.split(' ').nth(1).is_some_and(|p| p == "c" || p.starts_with("c/"))), "{user:?}: {status}");

        // -0 and --cow: chown works in the view, ls -ln shows the virtual owner.
        let script = "cd \"$1\" && chown 123:456 f && touch n && chown 7:8 n && ls -ln f n | awk '{print $3, $4, $NF}' && id -u && echo more >> f && stat -c '%u:%g %s' f";
        let out = view_sh(user, &base, &["-0", "--cow", &store("fakeroot")], script, &[l]);
        assert_eq!(ok(&out, "-0 --cow"), "123 456 f\n7 8 n\n0\n123:456 7\n", "{user:?}");
        assert_eq!(listing(user, &base, &lower, true), before, "{user:?}: -0: the lower tree changed");
        let _ = std::fs::remove_dir_all(&base);
    }
}

#[test]
fn without_a_store_the_view_still_writes_nothing_below() {
    for user in users() {
        let base = scratch("nostore", user);
        let lower = small_lower(&base, user);
        let before = listing(user, &base, &lower, true);
        let out = view_sh(user, &base, &["--cow", s(&lower)], "cd \"$1\" && echo x >> a && rm -r d && mkdir z && cat a && ls", &[s(&lower)]);
        assert_eq!(ok(&out, "--cow without a store"), "a\nx\na\nb\nc\ne\nf\ng\nz\n", "{user:?}");
        assert_eq!(listing(user, &base, &lower, true), before, "{user:?}: the lower tree changed");
        let _ = std::fs::remove_dir_all(&base);
    }
}

#[test]
fn bad_cow_arguments_are_refused_before_anything_runs() {
    let base = scratch("bad", None);
    let marker = base.join("ran");
    let touch = format!("touch {}", s(&marker));
    for (arg, want) in [("/nonexistent", "/nonexistent"), ("/etc/hostname", "/etc/hostname")] {
        let o = run_as(None, &["--cow", arg, "--", "sh", "-c", &touch]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "--cow {arg}: {err}");
        assert!(err.starts_with("viewos: ") && err.contains(want) && err.lines().count() == 1, "--cow {arg}: {err}");
        assert!(!marker.exists(), "--cow {arg}: the command ran");
    }
    // A store records its lower directory: another one is refused.
    let (one, two, store) = (base.join("one"), base.join("two"), base.join("S"));
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    let first = run_as(None, &["--cow", &format!("{}:{}", s(&one), s(&store)), "--", "sh", "-c", &format!("echo x > {}/f", s(&one))]);
    ok(&first, "a first view with the store");
    let o = run_as(None, &["--cow", &format!("{}:{}", s(&two), s(&store)), "--", "sh", "-c", &touch]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "another lower directory: {err}");
    assert!(err.starts_with("viewos: ") && err.contains(s(&store)) && err.contains(s(&one)), "the error names the store and its directory: {err}");
    assert!(!marker.exists(), "the command ran");
    assert!(!two.join("f").exists() && !one.join("f").exists());
    // The store still works with its own directory.
    let again = run_as(None, &["--cow", &format!("{}:{}", s(&one), s(&store)), "--", "cat", &format!("{}/f", s(&one))]);
    assert_eq!(ok(&again, "the store with its own directory"), "x\n");
    let _ = std::fs::remove_dir_all(&base);
}

/// Free bytes in the filesystem of `dir`.
fn free_bytes(dir: &Path) -> u64 {
    let o = Command::new("df").args(["-B1", "--output=avail", s(dir)]).output().unwrap();
    text(&o.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or(0)
}

/// A 1 GiB file is copied up whole (holes kept) when first written, and a copy-up cut short
/// by the monitor's death leaves nothing in the store: the file still shows its lower
/// content, whole, in the next view with the same store.
#[test]
fn a_large_copy_up_is_whole_or_not_at_all() {
    let base = scratch("large", None);
    let (lower, store) = (base.join("L"), base.join("S"));
    std::fs::create_dir_all(&lower).unwrap();
    // 1 GiB where there is room for it three times (lower, copy, slack); else 256 MiB.
    let size: u64 = if free_bytes(&base) > 3 << 30 { 1 << 30 } else { 256 << 20 };
    {
        use std::io::Write;
        let mut f = std::fs::File::create(lower.join("big")).unwrap();
        let block: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        for _ in 0..size >> 20 {
            f.write_all(&block).unwrap();
        }
        // And a hole at the end: the copy must keep the size without the data.
        f.set_len(size + (64 << 20)).unwrap();
    }
    let full = size + (64 << 20);
    let lower_sum = text(&Command::new("sha256sum").arg(lower.join("big")).output().unwrap().stdout);
    let cow = format!("{}:{}", s(&lower), s(&store));

    // Cut short: the monitor is killed while it copies (its guest dies with it; in the
    // moment before, the guest's open fails with ENOSYS, as a notified call does once the
    // listener is gone).
    let mut child = Command::new(viewos())
        .args(["--cow", &cow, "--", "sh", "-c", &format!("echo more >> {}/big && echo appended", s(&lower))])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let cut_short = !text(&out.stdout).contains("appended");
    let upper: Vec<String> = std::fs::read_dir(store.join("upper")).map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    if cut_short {
        assert!(upper.is_empty(), "a copy-up cut short left {upper:?} in the store");
    }
    let shown = view_sh(None, &base, &["--cow", &cow], "stat -c %s \"$1\"/big", &[s(&lower)]);
    let want = if cut_short { full } else { full + 5 };
    assert_eq!(ok(&shown, "the file after the cut"), format!("{want}\n"));

    // Whole: written through the view, the copy has the data, the hole and the new bytes.
    let fresh = format!("{}:{}", s(&lower), s(&base.join("S2")));
    let t = std::time::Instant::now();
    let w = view_sh(None, &base, &["--cow", &fresh], "printf more >> \"$1\"/big && stat -c %s \"$1\"/big", &[s(&lower)]);
    assert_eq!(ok(&w, "a write to the large file"), format!("{}\n", full + 4));
    eprintln!("copy-up of {} MiB (+64 MiB hole): {:?}", size >> 20, t.elapsed());
    let copy = base.join("S2/upper/big");
    let meta = std::fs::metadata(&copy).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.len(), full + 4);
    assert!(meta.blocks() * 512 < full, "the hole was kept ({} bytes allocated)", meta.blocks() * 512);
    // The copy's first `full` bytes are the lower file's.
    let head = Command::new("sh").args(["-c", &format!("head -c {full} {} | sha256sum", s(&copy))]).output().unwrap();
    assert_eq!(text(&head.stdout).split_whitespace().next(), lower_sum.split_whitespace().next());
    assert_eq!(text(&Command::new("sha256sum").arg(lower.join("big")).output().unwrap().stdout), lower_sum, "the lower file changed");
    let _ = std::fs::remove_dir_all(&base);
}

/// A metadata-only change (chmod, utimes) copies no data: the store holds a file of the
/// same size with no blocks beside its marker; the content still reads the lower file's,
/// an fd opened before shows the new metadata, and a write fills the data in. Such a file
/// survives a second run and a commit. Scripts in the upper layer run, and one without
/// execute permission does not (as natively, EACCES: exit 126 from sh).
#[test]
fn metadata_changes_copy_no_data_and_scripts_run_from_either_layer() {
    for user in users() {
        let base = scratch("meta", user);
        let (lower, store) = (base.join("L"), base.join("S"));
        let setup = "cd \"$1\" && mkdir L && head -c 1048576 /dev/urandom > L/big && cp L/big ref && printf '#!/bin/sh\\necho ran $0\\n' > L/s && chmod 755 L/s && touch -d 2001-01-01 L/big L/s";
        ok(&sh(user, &base, setup, &[s(&base)]), "setup");
        let before = listing(user, &base, &lower, true);
        let cow = format!("{}:{}", s(&lower), s(&store));
        let script = r#"cd "$1" && exec 3<big && chmod 600 big && touch -h -d 2002-02-02 big && stat -c '%a %s %Y' big && stat -L -c '%a %Y' /proc/self/fd/3 && cmp big "$2" && echo same
./s | sed "s|$1|DIR|" && cp s t && ./t | sed "s|$1|DIR|" && chmod 644 t && { ./t; echo "rc=$?"; }"#;
        // (The lower path is the cow file in the view: the reference is a copy elsewhere.)
        let lower_big = base.join("ref");
        let out = view_sh(user, &base, &["--cow", &cow], script, &[s(&lower), s(&lower_big)]);
        assert_eq!(ok(&out, "metadata changes"), "600 1048576 1012608000\n600 1012608000\nsame\nran DIR/s\nran DIR/t\nrc=126\n", "{user:?}");
        // In the store: no data for big, its marker beside it.
        use std::os::unix::fs::MetadataExt;
        let copy = std::fs::metadata(store.join("upper/big")).unwrap();
        assert_eq!((copy.len(), copy.blocks()), (1 << 20, 0), "{user:?}: a chmod copied data");
        assert!(store.join("upper/.wh..wh.mc.big").exists());
        // Again: still the lower data with the new mode; a write fills it in.
        let again = view_sh(user, &base, &["--cow", &cow], r#"cd "$1" && stat -c '%a %Y' big && cmp big "$2" && echo same && echo x >> big && stat -c '%a %s' big && head -c 1048576 big | cmp - "$2" && echo kept"#, &[s(&lower), s(&lower_big)]);
        assert_eq!(ok(&again, "a second run"), "600 1012608000\nsame\n600 1048578\nkept\n", "{user:?}");
        assert!(!store.join("upper/.wh..wh.mc.big").exists(), "{user:?}: the marker outlived the data");
        assert_eq!(listing(user, &base, &lower, true), before, "{user:?}: the lower tree changed");
        let _ = std::fs::remove_dir_all(&base);
    }
}

/// A store whose description is garbage, or a directory that is no store, is refused with
/// a clear error by the view and by the commands, and nothing is written.
#[test]
fn a_foreign_or_corrupt_store_is_refused() {
    let base = scratch("corrupt", None);
    let (lower, store) = (base.join("L"), base.join("S"));
    std::fs::create_dir_all(&lower).unwrap();
    std::fs::create_dir_all(store.join("upper")).unwrap();
    std::fs::write(store.join("viewos-cow"), b"\xff\xfegarbage\n").unwrap();
    let marker = base.join("ran");
    let o = run_as(None, &["--cow", &format!("{}:{}", s(&lower), s(&store)), "--", "touch", s(&marker)]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.starts_with("viewos: ") && err.contains(s(&store)) && err.contains("not a viewos cow store"), "{err}");
    assert!(!marker.exists());
    for args in [&["status", s(&store)][..], &["commit", s(&store)], &["status", s(&lower)]] {
        let o = cow_cmd(None, args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "cow {args:?}: {err}");
        assert!(err.starts_with("viewos: cow: ") && err.lines().count() == 1, "cow {args:?}: {err}");
    }
    assert_eq!(std::fs::read(store.join("viewos-cow")).unwrap(), b"\xff\xfegarbage\n", "the store was rewritten");
    assert_eq!(std::fs::read_dir(&lower).unwrap().count(), 0);
    let _ = std::fs::remove_dir_all(&base);
}

/// An AF_UNIX socket bound in a cow directory is made in the upper layer (the directories
/// on the way copied up) and reached by its path in the view; the lower tree gets nothing.
#[test]
fn sockets_bind_and_connect_in_a_cow_directory() {
    let Some(py) = python3() else {
        eprintln!("skipped: no python3");
        return;
    };
    for user in users() {
        let base = scratch("sock", user);
        let lower = base.join("L");
        ok(&sh(user, &base, "mkdir -p \"$1\"/L/d", &[s(&base)]), "setup");
        let before = listing(user, &base, &lower, true);
        let script = "import socket, os, sys\np = sys.argv[1] + '/d/sock'\ns = socket.socket(socket.AF_UNIX); s.bind(p); s.listen(1)\nprint(s.getsockname() == p, os.path.exists(p))\nc = socket.socket(socket.AF_UNIX); c.connect(p); a, _ = s.accept(); c.send(b'hi'); print(a.recv(2))\nos.unlink(p); print(os.path.exists(p))\n";
        let cow = format!("{}:{}", s(&lower), s(&base.join("S")));
        let out = native(user, &base, viewos(), &["--cow", &cow, "--", py, "-c", script, s(&lower)]);
        assert_eq!(ok(&out, "sockets"), "True True\nb'hi'\nFalse\n", "{user:?}");
        assert_eq!(listing(user, &base, &lower, true), before, "{user:?}: the lower tree changed");
        let _ = std::fs::remove_dir_all(&base);
    }
}
