//! `View::untranslate`, the host-to-guest direction: hand-written cases for each way a host
//! path can be visible or not, and a property test against `translate` on random views.

use proptest::prelude::*;
use viewos_path::*;

fn g(p: &str) -> GuestPath {
    GuestPath::new(p).unwrap()
}

fn h(p: &str) -> HostPath {
    HostPath::new(p).unwrap()
}

/// `untranslate` as a string, checked against `translate` on the way.
fn back(v: &View, host: &str) -> Option<String> {
    let guest = v.untranslate(&h(host))?;
    assert_eq!(v.translate(&guest), Some(h(host)), "{guest} does not show {host}");
    Some(guest.to_string())
}

fn some(guest: &str) -> Option<String> {
    Some(guest.to_string())
}

#[test]
fn a_root_only_view() {
    let v = View::new(h("/r"));
    assert_eq!(back(&v, "/r"), some("/"));
    assert_eq!(back(&v, "/r/a/b"), some("/a/b"));
    // Whole components: /rx is not below /r.
    assert_eq!(back(&v, "/rx"), None);
    assert_eq!(back(&v, "/"), None);
    assert_eq!(back(&v, "/other/r"), None);
    let all = View::new(HostPath::root());
    assert_eq!(back(&all, "/"), some("/"));
    assert_eq!(back(&all, "/a/b"), some("/a/b"));
}

#[test]
fn a_bind_shows_its_source_at_its_destination() {
    let mut v = View::new(h("/r"));
    v.bind(h("/src"), g("/s")).unwrap();
    assert_eq!(back(&v, "/src"), some("/s"));
    assert_eq!(back(&v, "/src/d/e"), some("/s/d/e"));
    assert_eq!(back(&v, "/srcx"), None);
    assert_eq!(back(&v, "/r/etc"), some("/etc"));
    // A bind of a file.
    v.bind(h("/hostfile"), g("/etc/hosts")).unwrap();
    assert_eq!(back(&v, "/hostfile"), some("/etc/hosts"));
    assert_eq!(back(&v, "/hostfile/x"), some("/etc/hosts/x"));
}

#[test]
fn nested_binds() {
    let mut v = View::new(h("/r"));
    v.bind(h("/y"), g("/a/b")).unwrap();
    v.bind(h("/x"), g("/a")).unwrap();
    assert_eq!(back(&v, "/y/c"), some("/a/b/c"));
    assert_eq!(back(&v, "/x/c"), some("/a/c"));
    // /x/b would be at /a/b, where /y is mounted.
    assert_eq!(back(&v, "/x/b"), None);
    assert_eq!(back(&v, "/x/b/c"), None);
    // And the root's /a is under /x.
    assert_eq!(back(&v, "/r/a"), None);
    assert_eq!(back(&v, "/r/a/b/c"), None);
    assert_eq!(back(&v, "/r/ab"), some("/ab"));
}

#[test]
fn a_bind_shadows_part_of_the_root() {
    let mut v = View::new(h("/r"));
    v.bind(h("/alt"), g("/etc")).unwrap();
    assert_eq!(back(&v, "/alt/passwd"), some("/etc/passwd"));
    assert_eq!(back(&v, "/r/etc"), None);
    assert_eq!(back(&v, "/r/etc/passwd"), None);
    assert_eq!(back(&v, "/r/etcx"), some("/etcx"));
    // Visible elsewhere, it is found there.
    v.bind(h("/r/etc"), g("/old/etc")).unwrap();
    assert_eq!(back(&v, "/r/etc/passwd"), some("/old/etc/passwd"));
    assert_eq!(back(&v, "/r/etc"), some("/old/etc"));
}

#[test]
fn the_most_specific_source_wins_unless_it_is_shadowed() {
    let mut v = View::new(h("/r"));
    v.bind(h("/r/home"), g("/h")).unwrap();
    // /r/home/u is at /home/u (through the root) and /h/u (through the bind): the bind's
    // source is longer.
    assert_eq!(back(&v, "/r/home/u"), some("/h/u"));
    assert_eq!(back(&v, "/r/home"), some("/h"));
    assert_eq!(back(&v, "/r/etc"), some("/etc"));
    // Shadow the bind's copy: the root's is next.
    v.bind(h("/x"), g("/h/u")).unwrap();
    assert_eq!(back(&v, "/r/home/u/f"), some("/home/u/f"));
    assert_eq!(back(&v, "/r/home/v"), some("/h/v"));
    // Shadow that one too: nothing is left.
    v.bind(h("/y"), g("/home")).unwrap();
    assert_eq!(back(&v, "/r/home/u/f"), None);
    assert_eq!(back(&v, "/r/home/v"), some("/h/v"));
    assert_eq!(back(&v, "/x/c"), some("/h/u/c"));
}

#[test]
fn a_source_bound_twice() {
    let mut v = View::new(h("/r"));
    v.bind(h("/src"), g("/b")).unwrap();
    v.bind(h("/src"), g("/a/z")).unwrap();
    // Same source length: the least guest path.
    assert_eq!(back(&v, "/src/x"), some("/a/z/x"));
    // Shadow that copy of /src/x: the other one is next.
    v.bind(h("/other"), g("/a/z/x")).unwrap();
    assert_eq!(back(&v, "/src/x"), some("/b/x"));
    assert_eq!(back(&v, "/src/y"), some("/a/z/y"));
    // The root bound inside itself ties with the root, and the least guest path is taken.
    let mut w = View::new(h("/r"));
    w.bind(h("/r"), g("/all")).unwrap();
    assert_eq!(back(&w, "/r/x"), some("/all/x"));
    assert_eq!(back(&w, "/r/b"), some("/all/b"));
    assert_eq!(back(&w, "/r"), some("/"));
    // /r/all is under the bind at /all; the chain /all/all/... reaches it in the guest.
    assert_eq!(back(&w, "/r/all/x"), some("/all/all/x"));
}

#[test]
fn a_hidden_path_is_not_visible() {
    let mut v = View::new(h("/r"));
    v.bind(h("/r/home"), g("/h")).unwrap();
    v.hide(g("/home/u/.ssh")).unwrap();
    // Hidden by its host path too, so not through /h either.
    assert_eq!(back(&v, "/r/home/u/.ssh"), None);
    assert_eq!(back(&v, "/r/home/u/.ssh/id"), None);
    assert_eq!(back(&v, "/r/home/u"), some("/h/u"));
    // Hiding the bind's copy hides the host tree: the root's copy is gone too.
    v.hide(g("/h/v")).unwrap();
    assert_eq!(back(&v, "/r/home/v/f"), None);
    // A hidden mount point hides its source.
    let mut w = View::new(h("/r"));
    w.bind(h("/src"), g("/s")).unwrap();
    w.hide(g("/s")).unwrap();
    assert_eq!(back(&w, "/src/a"), None);
}

#[test]
fn chroot() {
    let mut v = View::new(h("/r"));
    v.bind(h("/src"), g("/src")).unwrap();
    v.bind(h("/x"), g("/home/u/x")).unwrap();
    v.hide(g("/etc")).unwrap();
    v.chroot(&g("/home")).unwrap();
    assert_eq!(back(&v, "/r/home"), some("/"));
    assert_eq!(back(&v, "/r/home/u"), some("/u"));
    assert_eq!(back(&v, "/x/c"), some("/u/x/c"));
    assert_eq!(back(&v, "/r/home/u/x"), None);
    // Outside the new root, or in a bind that left the namespace: not visible.
    assert_eq!(back(&v, "/r"), None);
    assert_eq!(back(&v, "/r/etc"), None);
    assert_eq!(back(&v, "/src/a"), None);
    // Into a bind.
    let mut w = View::new(h("/r"));
    w.bind(h("/src"), g("/src")).unwrap();
    w.chroot(&g("/src/d")).unwrap();
    assert_eq!(back(&w, "/src/d/e"), some("/e"));
    assert_eq!(back(&w, "/src/d"), some("/"));
    assert_eq!(back(&w, "/src/a"), None);
    assert_eq!(back(&w, "/r/src/d"), None);
}

/// A change to a view; those the view refuses are skipped.
#[derive(Clone, Debug)]
enum Op {
    Bind(HostPath, GuestPath),
    Hide(GuestPath),
    Chroot(GuestPath),
}

/// Every path of at most `depth` components over the names `a`, `b`, `c`.
fn universe(depth: usize) -> Vec<String> {
    let mut all = vec![String::new()];
    let mut level = vec![String::new()];
    for _ in 0..depth {
        level = level.iter().flat_map(|p| ["a", "b", "c"].map(|n| format!("{p}/{n}"))).collect();
        all.extend(level.iter().cloned());
    }
    all.into_iter().map(|p| if p.is_empty() { "/".to_string() } else { p }).collect()
}

fn path(max_depth: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 0..=max_depth)
        .prop_map(|c| if c.is_empty() { "/".to_string() } else { format!("/{}", c.join("/")) })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (path(2), path(2)).prop_map(|(s, d)| Op::Bind(h(&s), g(&d))),
        2 => path(3).prop_map(|p| Op::Hide(g(&p))),
        1 => path(2).prop_map(|p| Op::Chroot(g(&p))),
    ]
}

fn view() -> impl Strategy<Value = View> {
    (path(2), prop::collection::vec(op(), 0..=6)).prop_map(|(root, ops)| {
        let mut v = View::new(h(&root));
        for op in ops {
            let _ = match op {
                Op::Bind(src, dst) => v.bind(src, dst),
                Op::Hide(p) => v.hide(p),
                Op::Chroot(p) => v.chroot(&p),
            };
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn untranslate_inverts_translate(v in view()) {
        let paths = universe(4);
        // Whatever it answers shows the host path asked about.
        for host in &paths {
            let host = h(host);
            if let Some(guest) = v.untranslate(&host) {
                prop_assert_eq!(v.translate(&guest), Some(host.clone()), "{:?}: {} -> {}", v, host, guest);
            }
        }
        // And whatever is visible somewhere is found somewhere.
        for guest in &paths {
            let Some(host) = v.translate(&g(guest)) else { continue };
            let back = v.untranslate(&host);
            prop_assert!(back.is_some(), "{:?}: {} shows {}, untranslated to nothing", v, guest, host);
            prop_assert_eq!(v.translate(back.as_ref().unwrap()), Some(host.clone()), "{:?}: {} -> {:?}", v, host, back);
        }
    }
}
