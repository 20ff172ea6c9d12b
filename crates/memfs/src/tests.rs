//! The filesystem against a naive model (paths to inodes, dense file data): random
//! operations, and after each one every path's kind, size, content, link count and mode,
//! every directory's listing, and the errno of the operation must agree.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::{Cred, Errno, Ino, Kind, MemFs, RENAME_EXCHANGE, RENAME_NOREPLACE};

type P = Vec<Vec<u8>>;

#[derive(Clone, Debug, PartialEq, Eq)]
struct MNode {
    kind: Kind,
    data: Vec<u8>,
    mode: u32,
}

#[derive(Clone, Debug, Default)]
struct Model {
    names: BTreeMap<P, u32>,
    inodes: BTreeMap<u32, MNode>,
    next: u32,
}

impl Model {
    fn kind(&self, p: &[Vec<u8>]) -> Option<Kind> {
        if p.is_empty() {
            return Some(Kind::Dir);
        }
        self.names.get(p).map(|i| self.inodes[i].kind)
    }
    fn children(&self, p: &[Vec<u8>]) -> Vec<Vec<u8>> {
        self.names.keys().filter(|k| k.len() == p.len() + 1 && k.starts_with(p)).map(|k| k[p.len()].clone()).collect()
    }
    /// The kernel's walk to the parent of `p`: a missing component is ENOENT, one that
    /// is not a directory ENOTDIR.
    fn parent_ok(&self, p: &[Vec<u8>]) -> Result<(), Errno> {
        for depth in 1..p.len() {
            match self.kind(&p[..depth]) {
                None => return Err(Errno::ENOENT),
                Some(Kind::Dir) => {}
                Some(_) => return Err(Errno::ENOTDIR),
            }
        }
        Ok(())
    }
    fn existing(&self, p: &[Vec<u8>]) -> Result<u32, Errno> {
        self.parent_ok(p)?;
        self.names.get(p).copied().ok_or(Errno::ENOENT)
    }
}

#[path = "../tests/common/ops.rs"]
mod ops;

type Op = ops::Op<P>;

fn apply_model(m: &mut Model, op: &Op) -> Result<(), Errno> {
    match op {
        Op::Create(p, k) => {
            m.parent_ok(p)?;
            if m.names.contains_key(p) {
                return Err(Errno::EEXIST);
            }
            m.next += 1;
            let mut mode = if *k == Kind::Symlink { 0o777 } else { 0o644 };
            // A directory made in a set-group-ID directory is set-group-ID too.
            let parent_sgid = p.len() > 1 && m.names.get(&p[..p.len() - 1]).is_some_and(|i| m.inodes[i].mode & 0o2000 != 0);
            if *k == Kind::Dir && parent_sgid {
                mode |= 0o2000;
            }
            let data = if *k == Kind::Symlink { b"target".to_vec() } else { Vec::new() };
            m.inodes.insert(m.next, MNode { kind: *k, data, mode });
            m.names.insert(p.clone(), m.next);
        }
        Op::Write(p, _, _, _) | Op::Truncate(p, _) => {
            let i = m.existing(p)?;
            let n = m.inodes.get_mut(&i).unwrap();
            match n.kind {
                Kind::File => {}
                Kind::Dir => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
            match op {
                Op::Write(_, off, len, b) if *len > 0 => {
                    let end = *off as usize + len;
                    if n.data.len() < end {
                        n.data.resize(end, 0);
                    }
                    n.data[*off as usize..end].fill(*b);
                }
                Op::Truncate(_, len) => n.data.resize(*len as usize, 0),
                _ => {}
            }
        }
        Op::Unlink(p) => {
            let i = m.existing(p)?;
            if m.inodes[&i].kind == Kind::Dir {
                return Err(Errno::EISDIR);
            }
            m.names.remove(p);
        }
        Op::Rmdir(p) => {
            let i = m.existing(p)?;
            if m.inodes[&i].kind != Kind::Dir {
                return Err(Errno::ENOTDIR);
            }
            if !m.children(p).is_empty() {
                return Err(Errno::ENOTEMPTY);
            }
            m.names.remove(p);
        }
        Op::Rename(from, to, flags) => {
            // Both parents are looked up before either name (do_renameat2).
            m.parent_ok(from)?;
            m.parent_ok(to)?;
            let src = m.existing(from)?;
            let dst = m.names.get(to).copied();
            let src_dir = m.inodes[&src].kind == Kind::Dir;
            let moves_into_itself = |a: &P, b: &P| b.len() > a.len() && b.starts_with(a);
            // The kernel's order: NOREPLACE, EXCHANGE's missing target, the source above the
            // target, the target above the source, the same file, then the types.
            if *flags == RENAME_NOREPLACE && dst.is_some() {
                return Err(Errno::EEXIST);
            }
            if *flags == RENAME_EXCHANGE && dst.is_none() {
                return Err(Errno::ENOENT);
            }
            if src_dir && moves_into_itself(from, to) {
                return Err(Errno::EINVAL);
            }
            if moves_into_itself(to, from) {
                return Err(if *flags == RENAME_EXCHANGE { Errno::EINVAL } else { Errno::ENOTEMPTY });
            }
            if *flags == RENAME_EXCHANGE {
                if from == to {
                    return Ok(());
                }
                let a: Vec<(P, u32)> = m.names.iter().filter(|(k, _)| k.starts_with(from)).map(|(k, v)| (k.clone(), *v)).collect();
                let b: Vec<(P, u32)> = m.names.iter().filter(|(k, _)| k.starts_with(to)).map(|(k, v)| (k.clone(), *v)).collect();
                for (k, _) in a.iter().chain(&b) {
                    m.names.remove(k);
                }
                for (k, v) in a {
                    let mut n = to.clone();
                    n.extend_from_slice(&k[from.len()..]);
                    m.names.insert(n, v);
                }
                for (k, v) in b {
                    let mut n = from.clone();
                    n.extend_from_slice(&k[to.len()..]);
                    m.names.insert(n, v);
                }
                return Ok(());
            }
            if let Some(d) = dst {
                if d == src {
                    return Ok(());
                }
                let dst_dir = m.inodes[&d].kind == Kind::Dir;
                match (src_dir, dst_dir) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) if !m.children(to).is_empty() => return Err(Errno::ENOTEMPTY),
                    _ => {}
                }
                m.names.remove(to);
            }
            let a: Vec<(P, u32)> = m.names.iter().filter(|(k, _)| k.starts_with(from)).map(|(k, v)| (k.clone(), *v)).collect();
            for (k, _) in &a {
                m.names.remove(k);
            }
            for (k, v) in a {
                let mut n = to.clone();
                n.extend_from_slice(&k[from.len()..]);
                m.names.insert(n, v);
            }
        }
        Op::Link(from, to) => {
            // The old name, then the new one's parent and name, then vfs_link's checks.
            let src = m.existing(from)?;
            m.parent_ok(to)?;
            if m.names.contains_key(to) {
                return Err(Errno::EEXIST);
            }
            if m.inodes[&src].kind == Kind::Dir {
                return Err(Errno::EPERM);
            }
            m.names.insert(to.clone(), src);
        }
        Op::Chmod(p, mode) => {
            let i = m.existing(p)?;
            m.inodes.get_mut(&i).unwrap().mode = mode & 0o7777;
        }
    }
    Ok(())
}

fn walk(fs: &MemFs, p: &[Vec<u8>]) -> Result<Ino, Errno> {
    let root = Cred::root();
    let mut at = fs.root();
    for c in p {
        if fs.stat(at)?.mode & 0o170000 != 0o040000 {
            return Err(Errno::ENOTDIR);
        }
        at = fs.lookup(at, c, &root)?;
    }
    Ok(at)
}

fn split(fs: &MemFs, p: &[Vec<u8>]) -> Result<(Ino, Vec<u8>), Errno> {
    let dir = walk(fs, &p[..p.len() - 1])?;
    if fs.stat(dir)?.mode & 0o170000 != 0o040000 {
        return Err(Errno::ENOTDIR);
    }
    Ok((dir, p[p.len() - 1].clone()))
}

fn apply_fs(fs: &mut MemFs, op: &Op, now: u64) -> Result<(), Errno> {
    let root = Cred::root();
    match op {
        Op::Create(p, k) => {
            let (d, n) = split(fs, p)?;
            if *k == Kind::Symlink { fs.symlink(d, &n, b"target", &root, now) } else { fs.create(d, &n, *k, 0o644, &root, now) }.map(drop)
        }
        Op::Write(p, off, len, b) => {
            let i = walk(fs, p)?;
            fs.write(i, *off, &vec![*b; *len], &root, now).map(drop)
        }
        Op::Truncate(p, len) => {
            let i = walk(fs, p)?;
            fs.truncate(i, *len, now)
        }
        Op::Unlink(p) => {
            let (d, n) = split(fs, p)?;
            fs.unlink(d, &n, &root, now)
        }
        Op::Rmdir(p) => {
            let (d, n) = split(fs, p)?;
            fs.rmdir(d, &n, &root, now)
        }
        Op::Rename(a, b, f) => {
            let (da, na) = split(fs, a)?;
            let (db, nb) = split(fs, b)?;
            fs.rename(da, &na, db, &nb, *f, &root, now)
        }
        Op::Link(a, b) => {
            let i = walk(fs, a)?;
            let (db, nb) = split(fs, b)?;
            fs.link(i, db, &nb, &root, now)
        }
        Op::Chmod(p, mode) => {
            let i = walk(fs, p)?;
            fs.chmod(i, *mode, &root, now)
        }
    }
}

fn check(fs: &MemFs, m: &Model) -> Result<(), String> {
    // Every directory's listing; every path's kind, size, data, links, mode.
    let mut dirs = vec![Vec::new()];
    while let Some(d) = dirs.pop() {
        let ino = walk(fs, &d).map_err(|e| format!("{d:?}: {e:?}"))?;
        let mut names: Vec<Vec<u8>> = fs.readdir(ino, 0).unwrap().into_iter().map(|e| e.name).filter(|n| n != b"." && n != b"..").collect();
        names.sort();
        let mut want = m.children(&d);
        want.sort();
        if names != want {
            return Err(format!("listing of {d:?}: {names:?}, model {want:?}"));
        }
        for n in want {
            let mut p = d.clone();
            p.push(n);
            let i = walk(fs, &p).map_err(|e| format!("{p:?}: {e:?}"))?;
            let st = fs.stat(i).unwrap();
            // The path the filesystem names the inode by leads back to it.
            let named = fs.path_of(i).ok_or_else(|| format!("{p:?}: no path"))?;
            let back: Vec<Vec<u8>> = named.split(|&b| b == b'/').skip(1).map(<[u8]>::to_vec).collect();
            if walk(fs, &back) != Ok(i) || (node_is_dir(m, &p) && back != p) {
                return Err(format!("{p:?}: path_of gives {:?}", String::from_utf8_lossy(&named)));
            }
            let mi = m.names[&p];
            let node = &m.inodes[&mi];
            if st.mode & 0o170000 != node.kind.ifmt() || st.mode & 0o7777 != node.mode {
                return Err(format!("{p:?}: mode {:o}, model {:?} {:o}", st.mode, node.kind, node.mode));
            }
            match node.kind {
                Kind::File => {
                    let data = fs.read(i, 0, usize::MAX >> 1).unwrap();
                    if st.size != node.data.len() as u64 || data != node.data {
                        return Err(format!("{p:?}: size {} data differs from the model's {}", st.size, node.data.len()));
                    }
                    let links = m.names.values().filter(|&&v| v == mi).count() as u32;
                    if st.nlink != links {
                        return Err(format!("{p:?}: nlink {}, model {links}", st.nlink));
                    }
                }
                Kind::Dir => {
                    let sub = m.children(&p).into_iter().filter(|c| {
                        let mut q = p.clone();
                        q.push(c.clone());
                        m.kind(&q) == Some(Kind::Dir)
                    }).count() as u32;
                    if st.nlink != 2 + sub {
                        return Err(format!("{p:?}: nlink {}, model {}", st.nlink, 2 + sub));
                    }
                    dirs.push(p);
                }
                Kind::Symlink => {
                    if fs.readlink(i).unwrap() != b"target" {
                        return Err(format!("{p:?}: symlink target"));
                    }
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn node_is_dir(m: &Model, p: &P) -> bool {
    m.kind(p) == Some(Kind::Dir)
}

const NAMES: [&[u8]; 3] = [b"a", b"b", b"c"];

fn path() -> impl Strategy<Value = P> {
    proptest::collection::vec(0usize..3, 1..4).prop_map(|v| v.into_iter().map(|i| NAMES[i].to_vec()).collect())
}

fn op() -> impl Strategy<Value = Op> {
    ops::op(path, 0u32..0o10000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn agrees_with_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut fs = MemFs::new(99, 1 << 30, 0o755, 0, 0, 1);
        let mut m = Model::default();
        for (step, o) in ops.iter().enumerate() {
            let want = apply_model(&mut m, o);
            let got = apply_fs(&mut fs, o, 10 + step as u64);
            prop_assert_eq!(got, want, "step {}: {:?}", step, o);
            if let Err(e) = check(&fs, &m) {
                prop_assert!(false, "after step {}: {:?}: {}", step, o, e);
            }
        }
        // Removing everything frees every page and inode.
        let mut all: Vec<P> = m.names.keys().cloned().collect();
        all.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in all {
            let (d, n) = split(&fs, &p).unwrap();
            let i = fs.lookup(d, &n, &Cred::root()).unwrap();
            if fs.stat(i).unwrap().mode & 0o170000 == 0o040000 {
                fs.rmdir(d, &n, &Cred::root(), 1).unwrap();
            } else {
                fs.unlink(d, &n, &Cred::root(), 1).unwrap();
            }
        }
        prop_assert_eq!(fs.used_pages(), 0);
        prop_assert_eq!(fs.inode_count(), 1);
    }

    /// A listing read in pieces while other entries come and go shows every entry that
    /// stays exactly once (a name removed and made again is a new entry, and may show).
    #[test]
    fn listings_are_stable_under_changes(churn in proptest::collection::vec((0u8..40, any::<bool>()), 0..60), piece in 1usize..5) {
        let root = Cred::root();
        let mut fs = MemFs::new(1, 1 << 20, 0o755, 0, 0, 1);
        let r = fs.root();
        for i in 0..20u8 {
            fs.create(r, format!("stay{i}").as_bytes(), Kind::File, 0o644, &root, 1).unwrap();
        }
        let mut seen: Vec<Vec<u8>> = Vec::new();
        let mut cookie = 0;
        let mut churn = churn.into_iter();
        loop {
            let batch: Vec<_> = fs.readdir(r, cookie).unwrap().into_iter().take(piece).collect();
            if batch.is_empty() {
                break;
            }
            for e in &batch {
                seen.push(e.name.clone());
                cookie = e.next;
            }
            if let Some((n, add)) = churn.next() {
                let name = format!("tmp{n}");
                if add {
                    let _ = fs.create(r, name.as_bytes(), Kind::File, 0o644, &root, 2);
                } else {
                    let _ = fs.unlink(r, name.as_bytes(), &root, 2);
                }
            }
        }
        for i in 0..20u8 {
            let name = format!("stay{i}").into_bytes();
            prop_assert_eq!(seen.iter().filter(|n| **n == name).count(), 1);
        }
    }
}

#[test]
fn the_size_limit_is_enforced_and_nothing_is_half_written() {
    let root = Cred::root();
    let mut fs = MemFs::new(1, 3 * 4096, 0o1777, 0, 0, 1);
    let f = fs.create(fs.root(), b"f", Kind::File, 0o644, &root, 1).unwrap();
    assert_eq!(fs.write(f, 0, &[1; 8192], &root, 2), Ok(8192));
    assert_eq!(fs.write(f, 8192, &[2; 8192], &root, 3), Err(Errno::ENOSPC));
    assert_eq!(fs.stat(f).unwrap().size, 8192);
    // A sparse file costs only its written pages.
    assert_eq!(fs.write(f, 1 << 30, b"x", &root, 4), Ok(1));
    assert_eq!(fs.stat(f).unwrap().blocks, 3 * 8);
    assert_eq!(fs.statfs().bfree, 0);
    assert_eq!(fs.read(f, (1 << 30) - 2, 4).unwrap(), vec![0, 0, b'x']);
    fs.truncate(f, 4096, 5).unwrap();
    assert_eq!(fs.statfs().bfree, 2);
}

#[test]
fn an_unlinked_open_file_lives_until_its_last_close() {
    let root = Cred::root();
    let mut fs = MemFs::new(1, 1 << 20, 0o755, 0, 0, 1);
    let f = fs.create(fs.root(), b"f", Kind::File, 0o644, &root, 1).unwrap();
    fs.open(f).unwrap();
    fs.write(f, 0, b"data", &root, 2).unwrap();
    fs.unlink(fs.root(), b"f", &root, 3).unwrap();
    assert_eq!(fs.stat(f).unwrap().nlink, 0);
    assert_eq!(fs.read(f, 0, 10).unwrap(), b"data");
    assert_eq!(fs.link(f, fs.root(), b"g", &root, 4), Err(Errno::ENOENT));
    fs.close(f);
    assert_eq!(fs.stat(f), Err(Errno::ESTALE));
    assert_eq!(fs.used_pages(), 0);
}

#[test]
fn permissions_and_the_sticky_bit() {
    let root = Cred::root();
    let alice = Cred { uid: 1, gid: 1, groups: vec![], privileged: false };
    let bob = Cred { uid: 2, gid: 2, groups: vec![], privileged: false };
    let mut fs = MemFs::new(1, 1 << 20, 0o1777, 0, 0, 1);
    let r = fs.root();
    let f = fs.create(r, b"a", Kind::File, 0o600, &alice, 1).unwrap();
    assert_eq!(fs.stat(f).unwrap().uid, 1);
    assert_eq!(fs.access(f, 4, &bob), Err(Errno::EACCES));
    assert_eq!(fs.unlink(r, b"a", &bob, 2), Err(Errno::EPERM));
    assert_eq!(fs.chmod(f, 0o644, &bob, 2), Err(Errno::EPERM));
    assert_eq!(fs.chown(f, 2, u32::MAX, &alice, 2), Err(Errno::EPERM));
    assert_eq!(fs.create(r, b"dev", Kind::Char(0x103), 0o666, &alice, 2), Err(Errno::EPERM));
    fs.chmod(f, 0o4755, &alice, 3).unwrap();
    fs.chown(f, 2, 2, &root, 4).unwrap();
    assert_eq!(fs.stat(f).unwrap().mode & 0o7777, 0o755, "chown clears set-user-ID");
    fs.unlink(r, b"a", &bob, 5).unwrap();
}

#[test]
fn a_file_shrunk_then_grown_reads_zeros_past_the_cut() {
    let root = Cred::root();
    let mut fs = MemFs::new(1, 1 << 20, 0o755, 0, 0, 1);
    let f = fs.create(fs.root(), b"f", Kind::File, 0o644, &root, 1).unwrap();
    fs.write(f, 0, &[7; 5000], &root, 2).unwrap();
    fs.truncate(f, 100, 3).unwrap();
    fs.truncate(f, 5000, 4).unwrap();
    let data = fs.read(f, 0, 5000).unwrap();
    assert!(data[..100].iter().all(|&b| b == 7) && data[100..].iter().all(|&b| b == 0));
}

proptest! {
    /// Any call with any arguments (inode numbers that do not exist, offsets and lengths
    /// at the limits, odd names and flags) is an answer or an errno, never a panic, and
    /// leaves the page count consistent.
    #[test]
    fn any_arguments_are_an_answer(calls in proptest::collection::vec((0u8..14, 0u64..6, any::<u64>(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..8)), 1..60)) {
        let root = Cred::root();
        let user = Cred { uid: 5, gid: 5, groups: vec![], privileged: false };
        let mut fs = MemFs::new(1, 64 * 4096, 0o1777, 0, 0, 1);
        for (i, (call, ino, big, small, name)) in calls.into_iter().enumerate() {
            let ino = Ino(ino);
            let cred = if small % 2 == 0 { &root } else { &user };
            let now = i as u64;
            let _ = match call {
                0 => fs.create(ino, &name, Kind::File, small, cred, now).map(drop),
                1 => fs.create(ino, &name, Kind::Dir, small, cred, now).map(drop),
                2 => fs.write(ino, big, &name, cred, now).map(drop),
                3 => fs.write(ino, big % (1 << 20), &name, cred, now).map(drop),
                4 => fs.truncate(ino, big, now),
                5 => fs.read(ino, big, (small % 10_000) as usize).map(drop),
                6 => fs.unlink(Ino(1), &name, cred, now),
                7 => fs.rmdir(Ino(1), &name, cred, now),
                8 => fs.rename(ino, &name, Ino(1), b"x", small, cred, now),
                9 => fs.link(ino, Ino(1), &name, cred, now),
                10 => fs.readdir(ino, big).map(drop),
                11 => fs.setxattr(ino, &name, &name, small, cred, now),
                12 => fs.chown(ino, small, small, cred, now),
                _ => fs.symlink(ino, &name, &name, cred, now).map(drop),
            };
            prop_assert!(fs.used_pages() <= 64);
        }
    }
}
