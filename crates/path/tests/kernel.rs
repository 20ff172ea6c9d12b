//! `resolve` against the real kernel: random trees of directories, files and symlinks (with
//! relative and absolute targets, `..` chains and loops) built in a temp dir, and random
//! paths looked up by both. The kernel's answer is `openat2(O_PATH, RESOLVE_IN_ROOT)` from the
//! tree's root (a lookup as if chrooted there), or `RESOLVE_IN_ROOT`/`RESOLVE_BENEATH` from a
//! directory inside; ours is `resolve` in a view rooted at the tree. Both must give the same
//! errno, or the same object at the same guest path.
//!
//! Bind mounts are compared too, with real bind mounts in a private mount namespace of one
//! test thread (skipped where `unshare(CLONE_NEWNS)` is not allowed).

use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use viewos_path::*;

/// The host filesystem, as the adapter's oracle will see it.
struct RealFs;

fn errno(e: std::io::Error) -> Errno {
    Errno(e.raw_os_error().map_or(Errno::EIO.0, |n| n as u16))
}

fn os(p: &HostPath) -> &Path {
    Path::new(OsStr::from_bytes(p.as_bytes()))
}

impl Fs for RealFs {
    fn lstat(&self, host: &HostPath) -> Result<Kind, Errno> {
        let t = std::fs::symlink_metadata(os(host)).map_err(errno)?.file_type();
        Ok(if t.is_symlink() {
            Kind::Symlink
        } else if t.is_dir() {
            Kind::Dir
        } else {
            Kind::Other
        })
    }

    fn readlink(&self, host: &HostPath) -> Result<Vec<u8>, Errno> {
        Ok(std::fs::read_link(os(host)).map_err(errno)?.into_os_string().into_encoded_bytes())
    }
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(dirfd, path, O_PATH | flags, resolve)`. A scoped lookup fails with `EAGAIN` when
/// any rename or mount anywhere on the system races with its `..`; that is retried.
fn openat2(dirfd: RawFd, path: &[u8], flags: u64, resolve: u64) -> Result<OwnedFd, Errno> {
    let c = CString::new(path).expect("no NUL in test paths");
    let how = OpenHow { flags: flags | libc::O_PATH as u64 | libc::O_CLOEXEC as u64, mode: 0, resolve };
    for _ in 0..1000 {
        // SAFETY: `c` and `how` outlive the call; the size is that of `how`.
        let r = unsafe { libc::syscall(libc::SYS_openat2, dirfd, c.as_ptr(), &how as *const OpenHow, size_of::<OpenHow>()) };
        if r >= 0 {
            // SAFETY: the kernel just returned this new descriptor to us.
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = errno(std::io::Error::last_os_error());
        if e != Errno::EAGAIN || resolve & libc::RESOLVE_CACHED != 0 {
            return Err(e);
        }
    }
    panic!("openat2 kept failing with EAGAIN");
}

/// What both sides found: the guest path, the kind and the inode, or the errno.
type Answer = Result<(Vec<u8>, Kind, (u64, u64)), Errno>;

fn kind_of(t: std::fs::FileType) -> Kind {
    if t.is_symlink() {
        Kind::Symlink
    } else if t.is_dir() {
        Kind::Dir
    } else {
        Kind::Other
    }
}

/// The kernel's answer, with the path of the descriptor turned back into a guest path.
fn kernel(root: &Path, dirfd: &OwnedFd, path: &[u8], flags: u64, resolve: u64) -> Answer {
    let fd = openat2(dirfd.as_raw_fd(), path, flags, resolve)?;
    let shown = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap().into_os_string().into_encoded_bytes();
    let root = root.as_os_str().as_bytes();
    let guest = match shown.strip_prefix(root) {
        Some(b"") => b"/".to_vec(),
        Some(rest) if rest.starts_with(b"/") => rest.to_vec(),
        _ => panic!("the kernel left the root: {}", shown.escape_ascii()),
    };
    let m = std::fs::File::from(fd).metadata().unwrap();
    Ok((guest, kind_of(m.file_type()), (m.dev(), m.ino())))
}

/// Our answer; a missing final component is `ENOENT`, as for `open(O_PATH)`.
fn ours(view: &View, dirfd: Option<&GuestPath>, path: &[u8], flags: Flags) -> Answer {
    let r = resolve(view, &RealFs, &GuestPath::root(), dirfd, path, flags)?;
    let kind = r.kind().ok_or(Errno::ENOENT)?;
    let m = std::fs::symlink_metadata(os(&r.host)).unwrap();
    assert_eq!(kind_of(m.file_type()), kind);
    Ok((r.guest.into_bytes(), kind, (m.dev(), m.ino())))
}

/// A fresh directory under the system temp dir, removed on drop (symlinks are removed, not
/// followed).
struct Temp(PathBuf);

impl Temp {
    fn new() -> Temp {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!("viewos-path-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        std::fs::create_dir(&p).unwrap();
        Temp(p.canonicalize().unwrap())
    }

    fn sub(&self, name: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::create_dir(&p).unwrap();
        p
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Clone, Debug)]
enum Entry {
    Dir,
    File,
    Link(Vec<u8>),
}

/// Creates the entries under `dir`, never following a symlink: an entry whose parent is
/// not a real directory, or whose name is taken, is left out.
fn build(dir: &Path, entries: &[(Vec<u8>, Entry)]) {
    'entries: for (path, entry) in entries {
        let comps: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
        let mut cur = dir.to_path_buf();
        for c in &comps[..comps.len() - 1] {
            cur.push(OsStr::from_bytes(c));
            match std::fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => continue 'entries,
                Err(_) => std::fs::create_dir(&cur).unwrap(),
            }
        }
        cur.push(OsStr::from_bytes(comps[comps.len() - 1]));
        if std::fs::symlink_metadata(&cur).is_ok() {
            continue;
        }
        match entry {
            Entry::Dir => std::fs::create_dir(&cur).unwrap(),
            Entry::File => drop(std::fs::File::create(&cur).unwrap()),
            Entry::Link(target) => std::os::unix::fs::symlink(OsStr::from_bytes(target), &cur).unwrap(),
        }
    }
}

fn joined(absolute: bool, comps: Vec<&str>, trailing: bool) -> Vec<u8> {
    let mut s = if absolute { "/".to_string() } else { String::new() };
    s += &comps.join("/");
    if trailing {
        s += "/";
    }
    s.into_bytes()
}

/// A symlink target: relative or absolute, with `.`, `..` and `m` (where binds go).
fn target() -> impl Strategy<Value = Vec<u8>> {
    let comp = prop::sample::select(vec!["a", "b", "c", ".", "..", "..", "m"]);
    (any::<bool>(), prop::collection::vec(comp, 0..5), any::<bool>()).prop_map(|(abs, comps, trailing)| {
        let t = joined(abs, comps, trailing);
        if t.is_empty() { b".".to_vec() } else { t }
    })
}

fn tree() -> impl Strategy<Value = Vec<(Vec<u8>, Entry)>> {
    let name = prop::sample::select(vec!["a", "b", "c"]);
    let path = prop::collection::vec(name, 1..=3).prop_map(|v| v.join("/").into_bytes());
    let entry = prop_oneof![3 => Just(Entry::Dir), 2 => Just(Entry::File), 4 => target().prop_map(Entry::Link)];
    prop::collection::vec((path, entry), 0..14)
}

/// A path to look up: may be empty, have `//`, dots, and a trailing slash.
fn query_path() -> impl Strategy<Value = Vec<u8>> {
    let comp = prop::sample::select(vec!["a", "b", "c", ".", "..", "", "m"]);
    (any::<bool>(), prop::collection::vec(comp, 0..6), any::<bool>()).prop_map(|(abs, comps, trailing)| joined(abs, comps, trailing))
}

/// A query path aimed at the tree: one of `known` (paths of entries, where files and symlinks
/// are), maybe made absolute, with a trailing `/`, `/.` or `/..`; or a random one.
fn aimed_path(known: Vec<Vec<u8>>) -> BoxedStrategy<Vec<u8>> {
    if known.is_empty() {
        return query_path().boxed();
    }
    let suffix = prop::sample::select(vec!["", "", "", "/", "//", "/.", "/..", "/a"]);
    let aimed =
        (prop::sample::select(known), any::<bool>(), suffix).prop_map(|(p, abs, suffix)| [if abs { &b"/"[..] } else { b"" }, &p, suffix.as_bytes()].concat());
    prop_oneof![aimed, query_path()].boxed()
}

#[derive(Clone, Copy, Debug)]
enum Scope {
    /// A plain lookup in the view; the kernel's equivalent is IN_ROOT at the tree's root.
    None,
    InRoot,
    Beneath,
}

#[derive(Clone, Debug)]
struct Query {
    path: Vec<u8>,
    nofollow: bool,
    directory: bool,
    no_symlinks: bool,
    scope: Scope,
    /// For scoped lookups: start from this directory (looked up without following) rather
    /// than the root.
    dirfd: Option<Vec<u8>>,
}

fn query(known: Vec<Vec<u8>>) -> impl Strategy<Value = Query> {
    let scope = prop_oneof![2 => Just(Scope::None), 2 => Just(Scope::InRoot), 1 => Just(Scope::Beneath)];
    let dirfd = prop::option::weighted(0.4, aimed_path(known.clone()).prop_filter("non-empty", |p| !p.is_empty()));
    (aimed_path(known), any::<bool>(), prop::bool::weighted(0.2), prop::bool::weighted(0.15), scope, dirfd)
        .prop_map(|(path, nofollow, directory, no_symlinks, scope, dirfd)| Query { path, nofollow, directory, no_symlinks, scope, dirfd })
}

/// Runs one query both ways and compares.
fn check(root: &Path, rootfd: &OwnedFd, view: &View, q: &Query) -> Result<(), TestCaseError> {
    let mut oflags = 0;
    let mut flags = Flags::EMPTY;
    let mut rflags = 0;
    if q.nofollow {
        oflags |= libc::O_NOFOLLOW as u64;
        flags |= Flags::NOFOLLOW;
    }
    if q.directory {
        oflags |= libc::O_DIRECTORY as u64;
        flags |= Flags::DIRECTORY;
    }
    if q.no_symlinks {
        rflags |= libc::RESOLVE_NO_SYMLINKS;
        flags |= Flags::NO_SYMLINKS;
    }
    let (scope_bit, scope_flag) = match q.scope {
        Scope::None => (libc::RESOLVE_IN_ROOT, Flags::EMPTY),
        Scope::InRoot => (libc::RESOLVE_IN_ROOT, Flags::IN_ROOT),
        Scope::Beneath => (libc::RESOLVE_BENEATH, Flags::BENEATH),
    };
    // The starting directory: both sides look it up the same way first, and must agree.
    let start = match (&q.dirfd, q.scope) {
        (Some(d), Scope::InRoot | Scope::Beneath) => {
            let k = openat2(rootfd.as_raw_fd(), d, libc::O_NOFOLLOW as u64, libc::RESOLVE_IN_ROOT);
            let o = resolve_start(view, d);
            match (k, o) {
                (Ok(fd), Some(g)) => Some((fd, g)),
                (Err(_), None) => return Ok(()),
                (k, o) => return Err(TestCaseError::fail(format!("dirfd {}: kernel {k:?}, ours {o:?}", d.escape_ascii()))),
            }
        }
        _ => None,
    };
    let (kfd, gdir) = match &start {
        Some((fd, g)) => (fd, Some(g)),
        None => (rootfd, None),
    };
    let k = kernel(root, kfd, &q.path, oflags, rflags | scope_bit);
    let o = ours(view, gdir, &q.path, flags | scope_flag);
    let show = |a: &Answer| a.as_ref().map(|(g, k, _)| (g.escape_ascii().to_string(), *k)).map_err(|e| *e);
    prop_assert_eq!(&k, &o, "path {:?} {:?}: kernel {:?}, ours {:?}", q.path.escape_ascii().to_string(), q, show(&k), show(&o));
    Ok(())
}

fn resolve_start(view: &View, d: &[u8]) -> Option<GuestPath> {
    let r = resolve(view, &RealFs, &GuestPath::root(), None, d, Flags::NOFOLLOW).ok()?;
    r.kind().map(|_| r.guest)
}

fn listing(dir: &Path) -> String {
    let mut out = String::new();
    fn walk(dir: &Path, base: &Path, out: &mut String) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                *out += &format!("  {rel} -> {}\n", std::fs::read_link(&p).unwrap().display());
            } else if m.is_dir() {
                *out += &format!("  {rel}/\n");
                walk(&p, base, out);
            } else {
                *out += &format!("  {rel}\n");
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

fn open_dir(p: &Path) -> OwnedFd {
    OwnedFd::from(std::fs::File::open(p).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matches_openat2_on_random_trees((entries, queries) in tree().prop_flat_map(|t| {
        let known = t.iter().map(|(p, _)| p.clone()).collect();
        (Just(t), prop::collection::vec(query(known), 24))
    })) {
        let tmp = Temp::new();
        build(&tmp.0, &entries);
        let view = View::new(HostPath::new(tmp.0.as_os_str().as_bytes()).unwrap());
        let rootfd = open_dir(&tmp.0);
        for q in &queries {
            check(&tmp.0, &rootfd, &view, q).map_err(|e| TestCaseError::fail(format!("{e}\ntree:\n{}", listing(&tmp.0))))?;
        }
    }
}

/// The limits and corner cases, on a fixed tree.
#[test]
fn matches_openat2_at_the_edges() {
    let tmp = Temp::new();
    let mut entries = vec![(b"d/f".to_vec(), Entry::File), (b"target".to_vec(), Entry::File)];
    for i in 0..41 {
        let next = if i == 0 { "target".to_string() } else { format!("l{}", i - 1) };
        entries.push((format!("l{i}").into_bytes(), Entry::Link(next.into_bytes())));
    }
    entries.push((b"self".to_vec(), Entry::Link(b"self".to_vec())));
    entries.push((b"flink".to_vec(), Entry::Link(b"d/f/".to_vec())));
    entries.push((b"dlink".to_vec(), Entry::Link(b"/d/".to_vec())));
    entries.push((b"dangle".to_vec(), Entry::Link(b"nowhere/".to_vec())));
    entries.push((b"up".to_vec(), Entry::Link(b"../../../..".to_vec())));
    build(&tmp.0, &entries);
    let view = View::new(HostPath::new(tmp.0.as_os_str().as_bytes()).unwrap());
    let rootfd = open_dir(&tmp.0);
    let long = "x".repeat(256);
    let mut paths: Vec<Vec<u8>> = [
        "l39", "l40", "l40/", "self", "self/x", "flink", "flink/.", "dlink", "dlink/f", "dlink/..", "dangle", "dangle/", "up", "up/d/f", "d/f/", "d/f/.",
        "d/f/..", "d//f", "/", "//", ".", "..", "", "nope/..", "d/nope", "d/nope/",
    ]
    .iter()
    .map(|p| p.as_bytes().to_vec())
    .collect();
    paths.push(format!("d/{long}").into_bytes());
    paths.push(format!("d/{}", &long[1..]).into_bytes());
    paths.push(format!("{long}/x").into_bytes());
    paths.push(format!("/{}/d/f", "./".repeat(2045)).into_bytes());
    paths.push(format!("//{}/d/f", "./".repeat(2045)).into_bytes());
    assert_eq!(paths[paths.len() - 2].len(), 4095);
    let mut checked = 0;
    for path in paths {
        for (nofollow, directory, no_symlinks, scope) in [
            (false, false, false, Scope::None),
            (true, false, false, Scope::None),
            (false, true, false, Scope::InRoot),
            (true, true, false, Scope::InRoot),
            (false, false, true, Scope::Beneath),
            (true, false, true, Scope::Beneath),
        ] {
            let q = Query { path: path.clone(), nofollow, directory, no_symlinks, scope, dirfd: None };
            check(&tmp.0, &rootfd, &view, &q).unwrap();
            checked += 1;
        }
    }
    assert!(checked > 100);
}

/// A bind `SRC:DST` and its real counterpart, `mount --bind SRC ROOT/DST`.
#[derive(Clone, Debug)]
struct Bind {
    src: usize,
    dst: &'static str,
}

fn binds() -> impl Strategy<Value = Vec<Bind>> {
    let first = prop::sample::select(vec!["/m", "/a/m"]).prop_map(|dst| Bind { src: 1, dst });
    // A second bind nested in the first (a new tree), or the first tree again elsewhere.
    let second = prop::option::of(prop_oneof![Just(Bind { src: 2, dst: "" }), Just(Bind { src: 1, dst: "/b/m" })]);
    (first, second).prop_map(|(first, second)| {
        let nested = second.map(|b| if b.dst.is_empty() { Bind { src: 2, dst: if first.dst == "/m" { "/m/m" } else { "/a/m/m" } } } else { b });
        std::iter::once(first).chain(nested).collect()
    })
}

fn mount_bind(src: &Path, dst: &Path) -> bool {
    let (s, d) = (CString::new(src.as_os_str().as_bytes()).unwrap(), CString::new(dst.as_os_str().as_bytes()).unwrap());
    // SAFETY: valid C strings; a null fs type and data are allowed for MS_BIND.
    unsafe { libc::mount(s.as_ptr(), d.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) == 0 }
}

fn unmount(dst: &Path) {
    let d = CString::new(dst.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string.
    unsafe { libc::umount2(d.as_ptr(), libc::MNT_DETACH) };
}

/// Makes `ROOT/DST` a directory to mount on, as `mount` needs (a view does not); `None` if
/// something that is not a real directory is in the way.
fn mount_point(root: &Path, dst: &str) -> Option<PathBuf> {
    let mut p = root.to_path_buf();
    for c in dst.split('/').filter(|c| !c.is_empty()) {
        p.push(c);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return None,
            Err(_) => std::fs::create_dir(&p).ok()?,
        }
    }
    Some(p)
}

#[test]
fn binds_match_real_bind_mounts() {
    let thread = std::thread::spawn(|| {
        // SAFETY: plain syscalls; CLONE_NEWNS only affects this thread (it unshares the fs
        // struct with it), and the namespace dies with the thread.
        let private = unsafe {
            libc::unshare(libc::CLONE_NEWNS) == 0
                && libc::mount(c"none".as_ptr(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) == 0
        };
        if !private {
            eprintln!("binds_match_real_bind_mounts: skipped, no private mount namespace: {}", std::io::Error::last_os_error());
            return 0;
        }
        let mut runner = TestRunner::new(Config { cases: 128, failure_persistence: None, ..Config::default() });
        let strategy = (tree(), tree(), tree(), binds()).prop_flat_map(|(root, t1, t2, binds)| {
            // Aim at the entries of all three trees, the bound ones through their mount points.
            let mut known: Vec<Vec<u8>> = root.iter().map(|(p, _)| p.clone()).collect();
            for b in &binds {
                let t = if b.src == 1 { &t1 } else { &t2 };
                known.push(b.dst.as_bytes()[1..].to_vec());
                known.extend(t.iter().map(|(p, _)| [&b.dst.as_bytes()[1..], b"/", p].concat()));
            }
            (Just(root), Just(t1), Just(t2), Just(binds), prop::collection::vec(query(known), 24))
        });
        let mounted_cases = std::cell::Cell::new(0);
        let result = runner.run(&strategy, |(root_tree, t1, t2, binds, queries)| {
            let tmp = Temp::new();
            let trees = [tmp.sub("root"), tmp.sub("s1"), tmp.sub("s2")];
            for (dir, t) in trees.iter().zip([&root_tree, &t1, &t2]) {
                build(dir, t);
            }
            let mut view = View::new(HostPath::new(trees[0].as_os_str().as_bytes()).unwrap());
            let mut mounted = Vec::new();
            for b in &binds {
                // Shallowest first, as the longest-prefix rule assumes.
                let Some(target) = mount_point(&trees[0], b.dst) else { continue };
                if !mount_bind(&trees[b.src], &target) {
                    return Err(TestCaseError::fail(format!("mount --bind {:?} {:?}: {}", trees[b.src], target, std::io::Error::last_os_error())));
                }
                mounted.push(target);
                view.bind(HostPath::new(trees[b.src].as_os_str().as_bytes()).unwrap(), GuestPath::new(b.dst).unwrap()).unwrap();
            }
            mounted_cases.set(mounted_cases.get() + usize::from(!mounted.is_empty()));
            let rootfd = open_dir(&trees[0]);
            let outcome = queries.iter().try_for_each(|q| check(&trees[0], &rootfd, &view, q));
            drop(rootfd);
            for target in mounted.iter().rev() {
                unmount(target);
            }
            outcome.map_err(|e| {
                TestCaseError::fail(format!("{e}\nbinds: {binds:?}\nroot:\n{}s1:\n{}s2:\n{}", listing(&trees[0]), listing(&trees[1]), listing(&trees[2])))
            })
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        mounted_cases.get()
    });
    let mounted_cases = thread.join().unwrap();
    eprintln!("binds_match_real_bind_mounts: {mounted_cases} cases with real bind mounts");
}
