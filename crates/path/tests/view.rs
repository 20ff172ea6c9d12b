//! Binds, hidden paths, chroot and nested views, on an in-memory tree with hand-written
//! expectations (the kernel comparison of binds is in `kernel.rs`).

use viewos_path::*;

fn g(p: &str) -> GuestPath {
    GuestPath::new(p).unwrap()
}

fn h(p: &str) -> HostPath {
    HostPath::new(p).unwrap()
}

fn fs() -> MemFs {
    let mut fs = MemFs::new();
    fs.file("/r/etc/passwd")
        .dir("/r/home/u/.ssh")
        .file("/r/home/u/.ssh/id")
        .symlink("/r/home/u/keys", ".ssh/id")
        .symlink("/r/s", "etc")
        .dir("/r/a")
        .file("/src/a")
        .dir("/src/d/e")
        .symlink("/src/abs", "/etc/passwd")
        .symlink("/src/up", "../etc/passwd")
        .symlink("/src/toroot", "/")
        .file("/alt/passwd")
        .file("/hostfile")
        .dir("/x/b")
        .file("/x/c")
        .file("/y/c");
    fs
}

/// `(guest, host, mount)` of an existing result, or the errno; a missing final component
/// is `ENOENT`, as for `open(O_PATH)`.
fn look(view: &View, fs: &MemFs, cwd: &str, path: &str, flags: Flags) -> Result<(String, String, String), Errno> {
    let r = resolve(view, fs, &g(cwd), None, path.as_bytes(), flags)?;
    r.kind().ok_or(Errno::ENOENT)?;
    Ok((r.guest.to_string(), r.host.to_string(), r.mount.to_string()))
}

fn ok(guest: &str, host: &str, mount: &str) -> Result<(String, String, String), Errno> {
    Ok((guest.to_string(), host.to_string(), mount.to_string()))
}

fn base() -> View {
    let mut v = View::new(h("/r"));
    v.bind(h("/src"), g("/src")).unwrap();
    v
}

const F: Flags = Flags::EMPTY;

#[test]
fn a_bind_shows_its_source_at_its_destination() {
    let (v, fs) = (base(), fs());
    // The mount point need not exist in the layer below.
    assert_eq!(look(&v, &fs, "/", "/src/a", F), ok("/src/a", "/src/a", "/src"));
    assert_eq!(look(&v, &fs, "/", "/src", F), ok("/src", "/src", "/src"));
    assert_eq!(look(&v, &fs, "/src/d", "e", F), ok("/src/d/e", "/src/d/e", "/src"));
    // `..` from the bind's root goes to its parent in the guest namespace.
    assert_eq!(look(&v, &fs, "/", "/src/..", F), ok("/", "/r", "/"));
    assert_eq!(look(&v, &fs, "/src/d", "../../etc/passwd", F), ok("/etc/passwd", "/r/etc/passwd", "/"));
    assert_eq!(v.translate(&g("/src/d/e")), Some(h("/src/d/e")));
    assert_eq!(v.mount_point(&g("/src/d/e")), Some(g("/src")));
    assert_eq!(v.mount_point(&g("/etc")), Some(g("/")));
}

#[test]
fn symlinks_in_a_bind_resolve_in_the_guest_namespace() {
    let (v, fs) = (base(), fs());
    assert_eq!(look(&v, &fs, "/", "/src/abs", F), ok("/etc/passwd", "/r/etc/passwd", "/"));
    assert_eq!(look(&v, &fs, "/", "/src/up", F), ok("/etc/passwd", "/r/etc/passwd", "/"));
    assert_eq!(look(&v, &fs, "/", "/src/toroot/src/a", F), ok("/src/a", "/src/a", "/src"));
}

#[test]
fn a_bind_shadows_what_is_below() {
    let mut v = base();
    let fs = fs();
    v.bind(h("/alt"), g("/etc")).unwrap();
    assert_eq!(look(&v, &fs, "/", "/etc/passwd", F), ok("/etc/passwd", "/alt/passwd", "/etc"));
    // Even a symlink: the mount point is the literal guest path.
    v.bind(h("/src/d"), g("/s")).unwrap();
    assert_eq!(look(&v, &fs, "/", "/s", Flags::NOFOLLOW), ok("/s", "/src/d", "/s"));
    assert_eq!(look(&v, &fs, "/", "/s/e", F), ok("/s/e", "/src/d/e", "/s"));
    // A bind at the same place replaces the earlier one.
    v.bind(h("/x"), g("/s")).unwrap();
    assert_eq!(look(&v, &fs, "/", "/s/c", F), ok("/s/c", "/x/c", "/s"));
}

#[test]
fn the_longest_destination_wins() {
    let mut v = View::new(h("/r"));
    let fs = fs();
    v.bind(h("/y"), g("/a/b")).unwrap();
    v.bind(h("/x"), g("/a")).unwrap();
    assert_eq!(look(&v, &fs, "/", "/a/b/c", F), ok("/a/b/c", "/y/c", "/a/b"));
    assert_eq!(look(&v, &fs, "/", "/a/c", F), ok("/a/c", "/x/c", "/a"));
    assert_eq!(look(&v, &fs, "/", "/a/b/..", F), ok("/a", "/x", "/a"));
    assert_eq!(look(&v, &fs, "/", "/a/b/../..", F), ok("/", "/r", "/"));
}

#[test]
fn a_bind_of_a_file() {
    let mut v = View::new(h("/r"));
    let fs = fs();
    v.bind(h("/hostfile"), g("/etc/hosts")).unwrap();
    assert_eq!(look(&v, &fs, "/", "/etc/hosts", F), ok("/etc/hosts", "/hostfile", "/etc/hosts"));
    assert_eq!(look(&v, &fs, "/", "/etc/hosts/x", F), Err(Errno::ENOTDIR));
    assert_eq!(look(&v, &fs, "/", "/etc/hosts/", F), Err(Errno::ENOTDIR));
}

#[test]
fn creating_in_a_bind_and_at_a_missing_source() {
    let mut v = base();
    let fs = fs();
    let r = resolve(&v, &fs, &GuestPath::root(), None, b"/src/new", F).unwrap();
    assert_eq!(r.found, Found::Missing { parent: h("/src"), name: b"new".to_vec() });
    assert_eq!(r.mount, g("/src"));
    // A mount point whose source is gone is not a place to create anything.
    v.bind(h("/gone"), g("/g")).unwrap();
    assert_eq!(look(&v, &fs, "/", "/g", F), Err(Errno::ENOENT));
    assert_eq!(look(&v, &fs, "/", "/g/x", F), Err(Errno::ENOENT));
}

#[test]
fn no_xdev_stops_at_the_binds() {
    let (v, fs) = (base(), fs());
    let x = Flags::NO_XDEV;
    assert_eq!(look(&v, &fs, "/", "/src/a", x), Err(Errno::EXDEV));
    assert_eq!(look(&v, &fs, "/", "src", x), Err(Errno::EXDEV));
    assert_eq!(look(&v, &fs, "/src", "a", x), ok("/src/a", "/src/a", "/src"));
    assert_eq!(look(&v, &fs, "/src", "..", x), Err(Errno::EXDEV));
    assert_eq!(look(&v, &fs, "/src", "abs", x), Err(Errno::EXDEV));
    assert_eq!(look(&v, &fs, "/src", "up", x), Err(Errno::EXDEV));
    assert_eq!(look(&v, &fs, "/", "s/passwd", x), ok("/etc/passwd", "/r/etc/passwd", "/"));
    // An absolute path argument is not a crossing; a jump by an absolute link in the root
    // mount is not either.
    assert_eq!(look(&v, &fs, "/src", "/etc", x), ok("/etc", "/r/etc", "/"));
    let r = resolve(&v, &fs, &GuestPath::root(), Some(&g("/src/d")), b"e", x).unwrap();
    assert_eq!(r.guest, g("/src/d/e"));
}

#[test]
fn a_hidden_path_does_not_exist() {
    let mut v = base();
    let fs = fs();
    v.hide(g("/home/u/.ssh")).unwrap();
    assert_eq!(look(&v, &fs, "/", "/home/u/.ssh", F), Err(Errno::ENOENT));
    assert_eq!(look(&v, &fs, "/", "/home/u/.ssh/id", F), Err(Errno::ENOENT));
    assert_eq!(look(&v, &fs, "/", "/home/u/.ssh/../.ssh", F), Err(Errno::ENOENT));
    assert_eq!(look(&v, &fs, "/", "/home/u/keys", F), Err(Errno::ENOENT));
    assert_eq!(look(&v, &fs, "/", "/home/u/keys", Flags::NOFOLLOW), ok("/home/u/keys", "/r/home/u/keys", "/"));
    assert_eq!(look(&v, &fs, "/", "/home/u", F), ok("/home/u", "/r/home/u", "/"));
    // Not even as a name to create: that would reach the hidden object on the host.
    assert_eq!(look(&v, &fs, "/", "/home/u/.ssh/", F), Err(Errno::ENOENT));
    // A cwd inside a hidden tree (the view changed under it) finds nothing.
    assert_eq!(look(&v, &fs, "/home/u/.ssh", ".", F), Err(Errno::ENOENT));
    assert_eq!(look(&v, &fs, "/home/u/.ssh", "..", F), Err(Errno::ENOENT));
    assert_eq!(v.translate(&g("/home/u/.ssh/id")), None);
    assert_eq!(v.mount_point(&g("/home/u/.ssh")), None);
    assert_eq!(v.hidden().collect::<Vec<_>>(), [&g("/home/u/.ssh")]);
}

#[test]
fn a_hidden_host_tree_is_hidden_under_every_alias() {
    let mut v = base();
    let fs = fs();
    v.hide(g("/home/u/.ssh")).unwrap();
    v.bind(h("/r/home"), g("/h")).unwrap();
    assert_eq!(look(&v, &fs, "/", "/h/u/.ssh/id", F), Err(Errno::ENOENT));
    assert_eq!(look(&v, &fs, "/", "/h/u", F), ok("/h/u", "/r/home/u", "/h"));
    // A bind of the hidden tree itself (or something in it) is refused.
    assert_eq!(v.bind(h("/r/home/u/.ssh"), g("/k")), Err(ViewError::Hidden));
    assert_eq!(v.bind(h("/src"), g("/home/u/.ssh/x")), Err(ViewError::Hidden));
    // So is hiding the root, directly or through the host tree it lies in.
    assert_eq!(v.hide(GuestPath::root()), Err(ViewError::HidesRoot));
    let mut w = View::new(h("/r/home"));
    w.bind(h("/r"), g("/all")).unwrap();
    assert_eq!(w.hide(g("/all")), Err(ViewError::HidesRoot));
    assert_eq!(w.hide(g("/all/home")), Err(ViewError::HidesRoot));
    assert_eq!(w.hide(g("/all/etc")), Ok(()));
    assert_eq!(look(&w, &fs, "/", "/u", F), ok("/u", "/r/home/u", "/"));
    // Hiding what is already hidden is a no-op.
    assert_eq!(v.hide(g("/h/u/.ssh/id")), Ok(()));
}

#[test]
fn hiding_a_bind_point() {
    let mut v = base();
    let fs = fs();
    v.hide(g("/src")).unwrap();
    assert_eq!(look(&v, &fs, "/", "/src", F), Err(Errno::ENOENT));
    assert_eq!(look(&v, &fs, "/", "/src/a", F), Err(Errno::ENOENT));
    // Hiding is final: binding the same source elsewhere, or over the hidden path, fails.
    assert_eq!(v.bind(h("/src"), g("/again")), Err(ViewError::Hidden));
    assert_eq!(v.bind(h("/x"), g("/src")), Err(ViewError::Hidden));
}

#[test]
fn chroot_moves_the_root_and_what_is_below_it() {
    let mut v = base();
    let fs = fs();
    v.bind(h("/x"), g("/home/u/x")).unwrap();
    v.hide(g("/home/u/.ssh")).unwrap();
    v.hide(g("/etc")).unwrap();
    v.chroot(&g("/home")).unwrap();
    assert_eq!(v.root(), &h("/r/home"));
    assert_eq!(look(&v, &fs, "/", "/u/x/c", F), ok("/u/x/c", "/x/c", "/u/x"));
    assert_eq!(look(&v, &fs, "/", "/../../u", F), ok("/u", "/r/home/u", "/"));
    assert_eq!(look(&v, &fs, "/", "/u/.ssh", F), Err(Errno::ENOENT));
    // The bind at /src left the namespace: /src is just a missing name under the new root.
    let r = resolve(&v, &fs, &GuestPath::root(), None, b"/src", F).unwrap();
    assert_eq!((r.host, r.found), (h("/r/home/src"), Found::Missing { parent: h("/r/home"), name: b"src".to_vec() }));
    assert_eq!(v.binds().map(|(d, s)| (d.to_string(), s.to_string())).collect::<Vec<_>>(), [("/u/x".to_string(), "/x".to_string())]);
    assert_eq!(v.hidden().collect::<Vec<_>>(), [&g("/u/.ssh")]);
    // A hidden host tree stays hidden after it leaves the namespace.
    assert_eq!(v.bind(h("/r/etc"), g("/e")), Err(ViewError::Hidden));
    // Into a bind.
    let mut w = base();
    w.chroot(&g("/src/d")).unwrap();
    assert_eq!(look(&w, &fs, "/", "/e/..", F), ok("/", "/src/d", "/"));
    // The view does not look at the host: the caller resolves the new root first.
    assert_eq!(w.chroot(&g("/nope")), Ok(()));
    assert_eq!(w.root(), &h("/src/d/nope"));
    let mut hidden = base();
    hidden.hide(g("/src")).unwrap();
    assert_eq!(hidden.chroot(&g("/src/d")), Err(ViewError::Hidden));
}

#[test]
fn absolute_symlinks_follow_the_chroot() {
    let mut v = base();
    let fs = fs();
    v.chroot(&g("/src")).unwrap();
    // /src/abs -> /etc/passwd: now inside /src, where there is no etc.
    assert_eq!(look(&v, &fs, "/", "/abs", F), Err(Errno::ENOENT));
    assert_eq!(look(&v, &fs, "/", "/toroot/a", F), ok("/a", "/src/a", "/"));
}

#[test]
fn nested_views_do_not_leak() {
    let fs = fs();
    let mut tree = ViewTree::new(base());
    let child = tree.fork(ViewTree::ROOT).unwrap();
    let sibling = tree.fork(ViewTree::ROOT).unwrap();
    assert_eq!(tree.parent(child), Some(ViewTree::ROOT));
    assert_eq!(tree.parent(ViewTree::ROOT), None);
    tree.get_mut(child).unwrap().hide(g("/etc")).unwrap();
    tree.get_mut(child).unwrap().bind(h("/x"), g("/x")).unwrap();
    let grandchild = tree.fork(child).unwrap();
    tree.get_mut(grandchild).unwrap().chroot(&g("/src")).unwrap();
    // The parent changes after the fork: its children keep their snapshot.
    tree.get_mut(ViewTree::ROOT).unwrap().bind(h("/y"), g("/late")).unwrap();

    let at = |id, path: &str| look(tree.get(id).unwrap(), &fs, "/", path, F);
    assert_eq!(at(ViewTree::ROOT, "/etc/passwd"), ok("/etc/passwd", "/r/etc/passwd", "/"));
    assert_eq!(at(ViewTree::ROOT, "/x"), Err(Errno::ENOENT));
    assert_eq!(at(ViewTree::ROOT, "/late/c"), ok("/late/c", "/y/c", "/late"));
    assert_eq!(at(sibling, "/etc/passwd"), ok("/etc/passwd", "/r/etc/passwd", "/"));
    assert_eq!(at(sibling, "/late"), Err(Errno::ENOENT));
    assert_eq!(at(child, "/etc/passwd"), Err(Errno::ENOENT));
    assert_eq!(at(child, "/x/c"), ok("/x/c", "/x/c", "/x"));
    assert_eq!(at(child, "/late"), Err(Errno::ENOENT));
    assert_eq!(at(grandchild, "/a"), ok("/a", "/src/a", "/"));
    assert_eq!(at(grandchild, "/abs"), Err(Errno::ENOENT));
    assert_eq!(tree.get(child).unwrap().root(), &h("/r"));
    assert_eq!(tree.parent(grandchild), Some(child));
}
