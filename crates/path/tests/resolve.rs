//! Each lookup rule on an in-memory tree: a view rooted at host `/r`, with `/outside` beside
//! it that no guest path may reach.

use proptest::prelude::*;
use viewos_path::*;

fn fs() -> MemFs {
    let mut fs = MemFs::new();
    fs.file("/r/etc/passwd")
        .dir("/r/home/u")
        .file("/r/dir/sub/f")
        .symlink("/r/lnk_rel", "dir/sub")
        .symlink("/r/lnk_abs", "/dir/sub")
        .symlink("/r/dir/up", "../etc")
        .symlink("/r/dir/abs", "/sub")
        .symlink("/r/dir/escape", "../../../../outside")
        .symlink("/r/dangling", "nowhere")
        .symlink("/r/flink", "etc/passwd")
        .symlink("/r/loop", "loop")
        .symlink("/r/slashlink", "dir/sub/f/")
        .symlink("/r/rootlink", "///")
        .symlink("/r/dotlink", ".")
        .symlink("/r/empty", "")
        .magic_link("/r/proc/self/fd/3", "/etc/passwd")
        .file("/outside/secret");
    fs
}

fn g(p: &str) -> GuestPath {
    GuestPath::new(p).unwrap()
}

struct T {
    view: View,
    fs: MemFs,
    cwd: GuestPath,
}

impl T {
    fn new() -> T {
        T { view: View::new(HostPath::new("/r").unwrap()), fs: fs(), cwd: GuestPath::root() }
    }

    fn at(&self, dirfd: Option<&str>, path: impl AsRef<[u8]>, flags: Flags) -> Result<Resolved, Errno> {
        let dirfd = dirfd.map(g);
        resolve(&self.view, &self.fs, &self.cwd, dirfd.as_ref(), path.as_ref(), flags)
    }

    fn look(&self, path: &str, flags: Flags) -> Result<Resolved, Errno> {
        self.at(None, path, flags)
    }

    /// `(guest, host, kind)` of an existing result.
    fn ok(&self, path: &str, flags: Flags) -> (String, String, Kind) {
        let r = self.look(path, flags).unwrap_or_else(|e| panic!("{path}: {e}"));
        let kind = r.kind().unwrap_or_else(|| panic!("{path}: missing: {r:?}"));
        (r.guest.to_string(), r.host.to_string(), kind)
    }

    fn err(&self, path: &str, flags: Flags) -> Errno {
        match self.look(path, flags) {
            Ok(r) => panic!("{path}: expected an error, got {r:?}"),
            Err(e) => e,
        }
    }
}

fn triple(guest: &str, host: &str, kind: Kind) -> (String, String, Kind) {
    (guest.to_string(), host.to_string(), kind)
}

const F: Flags = Flags::EMPTY;
const NOFOLLOW: Flags = Flags::NOFOLLOW;
use Kind::{Dir, Other, Symlink};

#[test]
fn absolute_and_relative_to_cwd() {
    let mut t = T::new();
    assert_eq!(t.ok("/etc/passwd", F), triple("/etc/passwd", "/r/etc/passwd", Other));
    assert_eq!(t.ok("/", F), triple("/", "/r", Dir));
    assert_eq!(t.ok("//etc//passwd", F), triple("/etc/passwd", "/r/etc/passwd", Other));
    t.cwd = g("/dir");
    assert_eq!(t.ok("sub/f", F), triple("/dir/sub/f", "/r/dir/sub/f", Other));
    assert_eq!(t.ok(".", F), triple("/dir", "/r/dir", Dir));
    assert_eq!(t.ok("./sub/./f", F), triple("/dir/sub/f", "/r/dir/sub/f", Other));
    assert_eq!(t.ok("/etc", F), triple("/etc", "/r/etc", Dir));
}

#[test]
fn dotdot_never_goes_above_the_root() {
    let mut t = T::new();
    assert_eq!(t.ok("/../../etc/../../etc/passwd", F), triple("/etc/passwd", "/r/etc/passwd", Other));
    assert_eq!(t.ok("..", F), triple("/", "/r", Dir));
    assert_eq!(t.err("/../outside/secret", F), Errno::ENOENT);
    t.cwd = g("/dir/sub");
    assert_eq!(t.ok("../../../..", F), triple("/", "/r", Dir));
    assert_eq!(t.ok("..", F), triple("/dir", "/r/dir", Dir));
}

#[test]
fn symlinks_resolve_inside_the_view() {
    let t = T::new();
    assert_eq!(t.ok("/lnk_rel/f", F), triple("/dir/sub/f", "/r/dir/sub/f", Other));
    // An absolute target starts at the view's root, not the host's.
    assert_eq!(t.ok("/lnk_abs/f", F), triple("/dir/sub/f", "/r/dir/sub/f", Other));
    assert_eq!(t.ok("/lnk_abs", F), triple("/dir/sub", "/r/dir/sub", Dir));
    // `..` in a target is taken from the link's directory, after the link is followed.
    assert_eq!(t.ok("/dir/up/passwd", F), triple("/etc/passwd", "/r/etc/passwd", Other));
    assert_eq!(t.ok("/lnk_rel/..", F), triple("/dir", "/r/dir", Dir));
    assert_eq!(t.err("/dir/escape/secret", F), Errno::ENOENT);
    assert_eq!(t.ok("/rootlink", F), triple("/", "/r", Dir));
    assert_eq!(t.ok("/dir/sub/../../rootlink/etc", F), triple("/etc", "/r/etc", Dir));
    assert_eq!(t.ok("/dotlink", F), triple("/", "/r", Dir));
}

#[test]
fn a_symlink_to_a_missing_absolute_target_is_missing_there() {
    let t = T::new();
    // /dir/abs -> /sub, which does not exist at the root.
    let r = t.look("/dir/abs", F).unwrap();
    assert_eq!(r.guest, g("/sub"));
    assert_eq!(r.found, Found::Missing { parent: HostPath::new("/r").unwrap(), name: b"sub".to_vec() });
    assert_eq!(t.err("/dir/abs/x", F), Errno::ENOENT);
}

#[test]
fn final_component_follow_and_nofollow() {
    let t = T::new();
    assert_eq!(t.ok("/lnk_rel", NOFOLLOW), triple("/lnk_rel", "/r/lnk_rel", Symlink));
    assert_eq!(t.ok("/lnk_rel", F), triple("/dir/sub", "/r/dir/sub", Dir));
    // Only the final component is exempt.
    assert_eq!(t.ok("/lnk_rel/f", NOFOLLOW), triple("/dir/sub/f", "/r/dir/sub/f", Other));
    assert_eq!(t.ok("/dangling", NOFOLLOW), triple("/dangling", "/r/dangling", Symlink));
    // Following a dangling link: missing, where the target would be created.
    let r = t.look("/dangling", F).unwrap();
    assert_eq!(r.guest, g("/nowhere"));
    assert_eq!(r.host, HostPath::new("/r/nowhere").unwrap());
    assert_eq!(r.found, Found::Missing { parent: HostPath::new("/r").unwrap(), name: b"nowhere".to_vec() });
    assert_eq!(r.kind(), None);
}

#[test]
fn trailing_slashes() {
    let t = T::new();
    assert_eq!(t.err("/etc/passwd/", F), Errno::ENOTDIR);
    assert_eq!(t.err("/etc/passwd//", NOFOLLOW), Errno::ENOTDIR);
    assert_eq!(t.ok("/dir/", F), triple("/dir", "/r/dir", Dir));
    assert_eq!(t.ok("/dir/.//", F), triple("/dir", "/r/dir", Dir));
    // A trailing slash follows a final symlink even under NOFOLLOW...
    assert_eq!(t.ok("/lnk_rel/", NOFOLLOW), triple("/dir/sub", "/r/dir/sub", Dir));
    // ...and then needs a directory.
    assert_eq!(t.err("/flink/", NOFOLLOW), Errno::ENOTDIR);
    assert_eq!(t.err("/flink/", F), Errno::ENOTDIR);
    assert_eq!(t.ok("/flink", F), triple("/etc/passwd", "/r/etc/passwd", Other));
    // A trailing slash in the target of the last link counts too.
    assert_eq!(t.err("/slashlink", F), Errno::ENOTDIR);
    assert_eq!(t.ok("/slashlink", NOFOLLOW), triple("/slashlink", "/r/slashlink", Symlink));
    // A missing final component with a slash: a directory may be made there.
    let r = t.look("/etc/newdir/", F).unwrap();
    assert!(r.dir_required);
    assert_eq!(r.kind(), None);
    assert!(!t.look("/etc/newfile", F).unwrap().dir_required);
}

#[test]
fn a_dangling_link_with_a_trailing_slash_is_missing_as_a_directory() {
    let t = T::new();
    let r = t.look("/dangling/", NOFOLLOW).unwrap();
    assert_eq!(r.guest, g("/nowhere"));
    assert!(r.dir_required);
    assert_eq!(r.kind(), None);
}

#[test]
fn o_directory() {
    let t = T::new();
    assert_eq!(t.err("/etc/passwd", Flags::DIRECTORY), Errno::ENOTDIR);
    assert_eq!(t.ok("/lnk_rel", Flags::DIRECTORY), triple("/dir/sub", "/r/dir/sub", Dir));
    // Unlike a trailing slash, O_DIRECTORY does not force following.
    assert_eq!(t.err("/lnk_rel", Flags::DIRECTORY | NOFOLLOW), Errno::ENOTDIR);
}

#[test]
fn empty_path() {
    let mut t = T::new();
    assert_eq!(t.err("", F), Errno::ENOENT);
    assert_eq!(t.at(Some("/dir"), "", F).unwrap_err(), Errno::ENOENT);
    let r = t.at(Some("/dir/sub/f"), "", Flags::EMPTY_PATH).unwrap();
    assert_eq!((r.guest, r.found), (g("/dir/sub/f"), Found::Exists(Other)));
    // A dirfd may be an O_PATH descriptor of a symlink.
    let r = t.at(Some("/lnk_rel"), "", Flags::EMPTY_PATH).unwrap();
    assert_eq!((r.guest, r.found), (g("/lnk_rel"), Found::Exists(Symlink)));
    t.cwd = g("/home/u");
    assert_eq!(t.ok("", Flags::EMPTY_PATH), triple("/home/u", "/r/home/u", Dir));
    // AT_EMPTY_PATH with a non-empty path changes nothing.
    assert_eq!(t.ok("..", Flags::EMPTY_PATH), triple("/home", "/r/home", Dir));
}

#[test]
fn relative_to_a_dirfd() {
    let t = T::new();
    let r = t.at(Some("/dir"), "sub/f", F).unwrap();
    assert_eq!((r.guest, r.host), (g("/dir/sub/f"), HostPath::new("/r/dir/sub/f").unwrap()));
    assert_eq!(t.at(Some("/dir"), "../etc", F).unwrap().guest, g("/etc"));
    // A dirfd that is not a directory: any non-empty relative path is ENOTDIR.
    assert_eq!(t.at(Some("/etc/passwd"), "x", F), Err(Errno::ENOTDIR));
    assert_eq!(t.at(Some("/etc/passwd"), ".", F), Err(Errno::ENOTDIR));
    assert_eq!(t.at(Some("/lnk_rel"), ".", F), Err(Errno::ENOTDIR));
    // An absolute path ignores the dirfd, even one that does not exist.
    assert_eq!(t.at(Some("/nonexistent"), "/etc", F).unwrap().guest, g("/etc"));
    assert_eq!(t.at(Some("/nonexistent"), "x", F), Err(Errno::ENOENT));
}

#[test]
fn resolve_beneath() {
    let t = T::new();
    let b = Flags::BENEATH;
    assert_eq!(t.at(Some("/dir"), "/etc", b), Err(Errno::EXDEV));
    assert_eq!(t.at(Some("/dir"), "sub/..", b).unwrap().guest, g("/dir"));
    assert_eq!(t.at(Some("/dir"), "sub/../..", b), Err(Errno::EXDEV));
    assert_eq!(t.at(Some("/dir"), "..", b), Err(Errno::EXDEV));
    assert_eq!(t.at(None, "..", b), Err(Errno::EXDEV));
    assert_eq!(t.at(Some("/dir"), "abs", b), Err(Errno::EXDEV));
    assert_eq!(t.at(Some("/dir"), "up", b), Err(Errno::EXDEV));
    assert_eq!(t.at(Some("/dir"), "up", b | NOFOLLOW).unwrap().kind(), Some(Symlink));
    assert_eq!(t.at(None, "lnk_rel/f", b).unwrap().guest, g("/dir/sub/f"));
    assert_eq!(t.at(None, "lnk_abs/f", b), Err(Errno::EXDEV));
    assert_eq!(t.at(Some("/dir"), "/etc", b | Flags::IN_ROOT), Err(Errno::EINVAL));
}

#[test]
fn resolve_in_root() {
    let t = T::new();
    let r = Flags::IN_ROOT;
    assert_eq!(t.at(Some("/dir"), "/sub/f", r).unwrap().guest, g("/dir/sub/f"));
    assert_eq!(t.at(Some("/dir"), "../../sub", r).unwrap().guest, g("/dir/sub"));
    assert_eq!(t.at(Some("/dir"), "abs/f", r).unwrap().guest, g("/dir/sub/f"));
    assert_eq!(t.at(Some("/dir"), "up", r).unwrap().guest, g("/dir/etc"));
    assert_eq!(t.at(Some("/dir"), "up", r).unwrap().kind(), None);
    assert_eq!(t.at(Some("/dir/sub"), "/", r).unwrap().guest, g("/dir/sub"));
    // The root of an IN_ROOT lookup must be a directory, absolute path or not.
    assert_eq!(t.at(Some("/etc/passwd"), "/", r), Err(Errno::ENOTDIR));
    // With no dirfd, the cwd is the root.
    let mut t = t;
    t.cwd = g("/dir");
    assert_eq!(t.ok("/sub", r), triple("/dir/sub", "/r/dir/sub", Dir));
}

#[test]
fn resolve_no_symlinks() {
    let t = T::new();
    let n = Flags::NO_SYMLINKS;
    assert_eq!(t.err("/lnk_rel/f", n), Errno::ELOOP);
    assert_eq!(t.err("/lnk_rel", n), Errno::ELOOP);
    assert_eq!(t.err("/lnk_rel/", n | NOFOLLOW), Errno::ELOOP);
    assert_eq!(t.ok("/lnk_rel", n | NOFOLLOW), triple("/lnk_rel", "/r/lnk_rel", Symlink));
    assert_eq!(t.ok("/dir/sub/f", n), triple("/dir/sub/f", "/r/dir/sub/f", Other));
}

#[test]
fn magic_links() {
    let t = T::new();
    let link = "/proc/self/fd/3";
    // Followed as the text the oracle gives: the guest path of the open file.
    assert_eq!(t.ok(link, F), triple("/etc/passwd", "/r/etc/passwd", Other));
    assert_eq!(t.err(link, Flags::NO_MAGICLINKS), Errno::ELOOP);
    assert_eq!(t.err(link, Flags::NO_SYMLINKS), Errno::ELOOP);
    assert_eq!(t.ok(link, Flags::NO_MAGICLINKS | NOFOLLOW).2, Symlink);
    assert_eq!(t.err(link, Flags::IN_ROOT), Errno::EXDEV);
    assert_eq!(t.err(link, Flags::BENEATH), Errno::EXDEV);
    // Ordinary symlinks are not affected.
    assert_eq!(t.ok("/lnk_rel", Flags::NO_MAGICLINKS).0, "/dir/sub");
}

#[test]
fn forty_symlinks_and_no_more() {
    let mut fs = MemFs::new();
    fs.file("/r/target");
    for i in 0..41 {
        let next = if i == 0 { "target".to_string() } else { format!("l{}", i - 1) };
        fs.symlink(format!("/r/l{i}"), next);
    }
    let view = View::new(HostPath::new("/r").unwrap());
    let root = GuestPath::root();
    let r = resolve(&view, &fs, &root, None, b"/l39", Flags::EMPTY).unwrap();
    assert_eq!(r.guest, g("/target"));
    assert_eq!(resolve(&view, &fs, &root, None, b"/l40", Flags::EMPTY), Err(Errno::ELOOP));
    assert_eq!(resolve(&view, &fs, &root, None, b"/l40", Flags::NOFOLLOW).unwrap().kind(), Some(Symlink));
    // The count is per lookup, across middle and final components.
    assert_eq!(resolve(&view, &fs, &root, None, b"/l20/../l19", Flags::EMPTY), Err(Errno::ENOTDIR));
    let t = T::new();
    assert_eq!(t.err("/loop", F), Errno::ELOOP);
    assert_eq!(t.err("/loop/x", NOFOLLOW), Errno::ELOOP);
}

#[test]
fn symlink_count_is_total_not_nested() {
    // Two chains of 20: 40 in one lookup is fine, one more is not.
    let mut fs = MemFs::new();
    fs.dir("/r/d");
    for i in 0..21 {
        let next = if i == 0 { "d".to_string() } else { format!("a{}", i - 1) };
        fs.symlink(format!("/r/a{i}"), next);
    }
    let view = View::new(HostPath::new("/r").unwrap());
    let root = GuestPath::root();
    let r = resolve(&view, &fs, &root, None, b"/a19/../a19", Flags::EMPTY).unwrap();
    assert_eq!(r.guest, g("/d"));
    assert_eq!(resolve(&view, &fs, &root, None, b"/a19/../a20", Flags::EMPTY), Err(Errno::ELOOP));
}

#[test]
fn name_too_long() {
    let t = T::new();
    let long = "x".repeat(256);
    assert_eq!(t.err(&format!("/etc/{long}"), F), Errno::ENAMETOOLONG);
    assert_eq!(t.err(&format!("/{long}/x"), F), Errno::ENAMETOOLONG);
    // Only components that are looked up: the walk fails first here.
    assert_eq!(t.err(&format!("/nope/{long}"), F), Errno::ENOENT);
    assert_eq!(t.err(&format!("/etc/passwd/{long}"), F), Errno::ENOTDIR);
    assert_eq!(t.look(&format!("/etc/{}", &long[1..]), F).unwrap().kind(), None);
    // PATH_MAX counts the NUL: 4095 bytes pass, 4096 do not.
    let path = format!("/{}/etc", "./".repeat(2045));
    assert_eq!(path.len(), 4095);
    assert_eq!(t.ok(&path, F).0, "/etc");
    assert_eq!(t.err(&format!("/{path}"), F), Errno::ENAMETOOLONG);
    // A long component in a symlink's target too.
    let mut fs = fs();
    fs.symlink("/r/longlink", format!("etc/{long}"));
    let root = GuestPath::root();
    assert_eq!(resolve(&t.view, &fs, &root, None, b"/longlink", F), Err(Errno::ENAMETOOLONG));
}

#[test]
fn not_a_directory_and_missing_in_the_middle() {
    let t = T::new();
    assert_eq!(t.err("/etc/passwd/x", F), Errno::ENOTDIR);
    assert_eq!(t.err("/etc/passwd/.", F), Errno::ENOTDIR);
    assert_eq!(t.err("/etc/passwd/..", F), Errno::ENOTDIR);
    assert_eq!(t.err("/flink/x", F), Errno::ENOTDIR);
    assert_eq!(t.err("/nope/x", F), Errno::ENOENT);
    assert_eq!(t.err("/nope/..", F), Errno::ENOENT);
    assert_eq!(t.err("/dangling/x", F), Errno::ENOENT);
}

#[test]
fn missing_final_component() {
    let t = T::new();
    let r = t.look("/etc/newfile", F).unwrap();
    assert_eq!(r.guest, g("/etc/newfile"));
    assert_eq!(r.host, HostPath::new("/r/etc/newfile").unwrap());
    assert_eq!(r.mount, GuestPath::root());
    assert_eq!(r.found, Found::Missing { parent: HostPath::new("/r/etc").unwrap(), name: b"newfile".to_vec() });
    let r = t.look("/lnk_rel/new", NOFOLLOW).unwrap();
    assert_eq!(r.found, Found::Missing { parent: HostPath::new("/r/dir/sub").unwrap(), name: b"new".to_vec() });
}

#[test]
fn odd_inputs() {
    let t = T::new();
    assert_eq!(t.err("/empty", F), Errno::ENOENT);
    assert_eq!(t.ok("/empty", NOFOLLOW).2, Symlink);
    // The path ends at a NUL, as a C string does.
    assert_eq!(resolve(&t.view, &t.fs, &t.cwd, None, b"/etc\0/passwd", F).unwrap().guest, g("/etc"));
    assert_eq!(resolve(&t.view, &t.fs, &t.cwd, None, b"\0/etc", F), Err(Errno::ENOENT));
    assert_eq!(t.err("/etc", Flags::CACHED), Errno::EAGAIN);
}

#[test]
fn one_lstat_per_component() {
    let t = T::new();
    assert_eq!(t.look("/dir/sub/f", F).unwrap().guest, g("/dir/sub/f"));
    assert_eq!(t.fs.lstat_calls(), 3);
    assert_eq!(t.look("/lnk_rel/f", F).unwrap().guest, g("/dir/sub/f"));
    assert_eq!(t.fs.lstat_calls(), 3 + 4);
}

#[test]
fn flags_from_raw_arguments() {
    use viewos_path::linux::*;
    assert_eq!(Flags::from_open(0), Flags::EMPTY);
    assert_eq!(Flags::from_open(O_NOFOLLOW | O_DIRECTORY), Flags::NOFOLLOW | Flags::DIRECTORY);
    assert_eq!(Flags::from_open(O_CREAT), Flags::EMPTY);
    assert_eq!(Flags::from_open(O_CREAT | O_EXCL), Flags::NOFOLLOW);
    assert_eq!(Flags::from_at(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH), Flags::NOFOLLOW | Flags::EMPTY_PATH);
    assert_eq!(Flags::from_resolve(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS), Ok(Flags::IN_ROOT | Flags::NO_SYMLINKS));
    assert_eq!(Flags::from_resolve(0x40), Err(Errno::EINVAL));
    assert_eq!(format!("{:?}", Flags::BENEATH | Flags::NOFOLLOW), "Flags(NOFOLLOW | BENEATH)");
    // The raw values are the kernel's.
    assert_eq!(O_CREAT, libc::O_CREAT as u64);
    assert_eq!(O_EXCL, libc::O_EXCL as u64);
    assert_eq!(O_DIRECTORY, libc::O_DIRECTORY as u64);
    assert_eq!(O_NOFOLLOW, libc::O_NOFOLLOW as u64);
    assert_eq!(AT_SYMLINK_NOFOLLOW, libc::AT_SYMLINK_NOFOLLOW as u64);
    assert_eq!(AT_EMPTY_PATH, libc::AT_EMPTY_PATH as u64);
    assert_eq!(RESOLVE_NO_XDEV, libc::RESOLVE_NO_XDEV);
    assert_eq!(RESOLVE_NO_MAGICLINKS, libc::RESOLVE_NO_MAGICLINKS);
    assert_eq!(RESOLVE_NO_SYMLINKS, libc::RESOLVE_NO_SYMLINKS);
    assert_eq!(RESOLVE_BENEATH, libc::RESOLVE_BENEATH);
    assert_eq!(RESOLVE_IN_ROOT, libc::RESOLVE_IN_ROOT);
    assert_eq!(RESOLVE_CACHED, libc::RESOLVE_CACHED);
}

fn any_flags() -> impl Strategy<Value = Flags> {
    (0u32..512).prop_map(|bits| {
        let all = [
            Flags::NOFOLLOW,
            Flags::DIRECTORY,
            Flags::EMPTY_PATH,
            Flags::BENEATH,
            Flags::IN_ROOT,
            Flags::NO_SYMLINKS,
            Flags::NO_MAGICLINKS,
            Flags::NO_XDEV,
            Flags::CACHED,
        ];
        all.iter().enumerate().filter(|&(i, _)| bits & (1 << i) != 0).fold(Flags::EMPTY, |a, (_, &f)| a | f)
    })
}

fn path_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"/".to_vec()),
        Just(b".".to_vec()),
        Just(b"..".to_vec()),
        Just(b"lnk_rel".to_vec()),
        Just(b"lnk_abs".to_vec()),
        Just(b"dir".to_vec()),
        Just(b"sub".to_vec()),
        Just(b"up".to_vec()),
        Just(b"loop".to_vec()),
        Just(b"proc/self/fd/3".to_vec()),
        prop::collection::vec(any::<u8>(), 0..8),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any bytes, any flags, any start: an answer, never a panic; and every success is
    /// canonical, inside the view, and consistent with the view's translation.
    #[test]
    fn never_panics_and_stays_inside(path in path_bytes(), flags in any_flags(), cwd in prop::sample::select(vec!["/", "/dir", "/dir/sub", "/etc/passwd", "/gone"]), dirfd in prop::option::of(prop::sample::select(vec!["/", "/dir", "/lnk_rel", "/etc/passwd"]))) {
        let mut t = T::new();
        t.cwd = g(cwd);
        if let Ok(r) = t.at(dirfd, &path, flags) {
            prop_assert!(r.host.as_bytes().starts_with(b"/r"), "{r:?}");
            prop_assert_eq!(t.view.translate(&r.guest), Some(r.host.clone()));
            prop_assert_eq!(GuestPath::new(r.guest.as_bytes().to_vec()), Ok(r.guest.clone()));
        }
    }
}

#[test]
fn a_magic_link_to_an_object_without_a_path_ends_the_walk_on_the_link() {
    let mut fs = MemFs::new();
    fs.dir("/proc/7/fd").magic_link("/proc/7/fd/0", "pipe:[1234]").magic_link("/proc/7/fd/3", "/etc");
    fs.dir("/etc").file("/etc/passwd");
    let view = View::new(HostPath::root());
    let root = GuestPath::root();
    let r = resolve(&view, &fs, &root, None, b"/proc/7/fd/0", Flags::EMPTY).unwrap();
    assert_eq!((r.host.as_bytes(), r.found), (&b"/proc/7/fd/0"[..], Found::Exists(Kind::Other)));
    assert_eq!(resolve(&view, &fs, &root, None, b"/proc/7/fd/0/x", Flags::EMPTY).unwrap_err(), Errno::ENOTDIR);
    // A magic link with a path target is still followed by its text.
    let r = resolve(&view, &fs, &root, None, b"/proc/7/fd/3/passwd", Flags::EMPTY).unwrap();
    assert_eq!(r.host.as_bytes(), b"/etc/passwd");
    assert_eq!(resolve(&view, &fs, &root, None, b"/proc/7/fd/0", Flags::NO_MAGICLINKS).unwrap_err(), Errno::ELOOP);
}
