//! The ownership database: what the view changed about each file, keyed by its identity.

use std::collections::BTreeMap;

use viewos_abi::Errno;

use crate::stat::{S_IFDIR, S_IFMT, S_IFREG, Stat};
use crate::Creds;

/// A file's identity on the host: `st_dev` (as `struct stat` encodes it) and `st_ino`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileKey {
    pub dev: u64,
    pub ino: u64,
}

/// What the view changed about one file. `None`: as the host has it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Permission bits (`07777`), shown while the real file keeps the bits `real`.
    pub mode: Option<u32>,
    /// The real file's permission bits when `mode` was recorded. A chmod the monitor does
    /// not see (the filter lets a plain one through: no set-ID or sticky bit, owner read
    /// and write) sets them to the mode the view then has, so `mode` stops showing. With
    /// `S_ISVTX` (a mark the monitor sets on the real file, which no unseen chmod keeps)
    /// the set-ID bits are not compared: the kernel clears those on a write by the real
    /// user, where root's would keep them.
    pub real: u32,
    /// A device node kept on disk as an empty regular file: its type (`S_IFCHR`,
    /// `S_IFBLK`) and device number.
    pub node: Option<(u32, u64)>,
}

/// How files the database does not know are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The real uid and gid the monitor runs as.
    pub real_uid: u32,
    pub real_gid: u32,
    /// The view's identity (`-0`: 0 and 0; `--uid`/`--gid`).
    pub uid: u32,
    pub gid: u32,
}

impl Mapping {
    /// An unprivileged user's own files are the view identity's files (the files the view
    /// creates are really the user's). A real root's files keep their owners.
    fn owner(&self, uid: u32, gid: u32) -> (u32, u32) {
        if self.real_uid == 0 {
            return (uid, gid);
        }
        let u = if uid == self.real_uid { self.uid } else { uid };
        let g = if gid == self.real_gid { self.gid } else { gid };
        (u, g)
    }
}

/// The ownership database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Db {
    entries: BTreeMap<FileKey, Entry>,
    /// How many entries are device nodes (listings look at this on every call).
    nodes: usize,
}

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;
const S_IXGRP: u32 = 0o0010;

impl Entry {
    /// The recorded mode, if the real file (permission bits `real_mode`) still has the
    /// bits it had when it was recorded.
    pub fn mode_for(&self, real_mode: u32) -> Option<u32> {
        let cmp = if self.real & S_ISVTX != 0 { 0o1777 } else { 0o7777 };
        self.mode.filter(|_| real_mode & cmp == self.real & cmp)
    }
}

impl Db {
    pub fn new() -> Db {
        Db::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &FileKey) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&FileKey, &Entry)> {
        self.entries.iter()
    }

    /// Sets an entry (an entry that changes nothing is dropped).
    pub fn set(&mut self, key: FileKey, e: Entry) {
        if e == Entry::default() {
            self.forget(&key);
        } else if let Some(old) = self.entries.insert(key, e) {
            self.nodes = self.nodes + usize::from(e.node.is_some()) - usize::from(old.node.is_some());
        } else {
            self.nodes += usize::from(e.node.is_some());
        }
    }

    /// Whether any entry is a device node (listings then need their `d_type` changed).
    pub fn has_nodes(&self) -> bool {
        self.nodes > 0
    }

    /// Every device node: its device, inode and the `d_type` listings must give it.
    pub fn nodes(&self) -> Vec<(u64, u64, u8)> {
        self.entries.iter().filter_map(|(k, e)| e.node.map(|(t, _)| (k.dev, k.ino, (t >> 12) as u8))).collect()
    }

    /// The file as the view shows it, from what the host says.
    pub fn view(&self, map: &Mapping, real: &Stat) -> Stat {
        let mut s = *real;
        (s.uid, s.gid) = map.owner(real.uid, real.gid);
        if let Some(e) = self.entries.get(&real.key()) {
            if let Some(u) = e.uid {
                s.uid = u;
            }
            if let Some(g) = e.gid {
                s.gid = g;
            }
            if let Some(m) = e.mode_for(real.mode) {
                s.mode = (s.mode & S_IFMT) | (m & 0o7777);
            }
            // A placeholder that something else has since turned into a non-empty or
            // non-regular file is no longer a device node.
            if let Some((t, rdev)) = e.node
                && real.mode & S_IFMT == S_IFREG
                && real.size == 0
            {
                s.mode = t | (s.mode & 0o7777);
                s.rdev = rdev;
                s.blocks = 0;
            }
        }
        s
    }

    /// `chown` by `creds` of the file the host shows as `real` (`u32::MAX`: unchanged), with
    /// the kernel's permission rules applied to the file as the view shows it. Changing the
    /// owner or group of a non-directory clears its set-user-ID bit, and its set-group-ID
    /// bit if it is group-executable, as the kernel does (for root too).
    pub fn chown(&mut self, map: &Mapping, creds: &Creds, real: &Stat, uid: u32, gid: u32) -> Result<(), Errno> {
        let cur = self.view(map, real);
        let keep = u32::MAX;
        if !creds.fs_privileged() {
            let owner = creds.uid[3] == cur.uid;
            let uid_ok = uid == keep || (uid == cur.uid && owner);
            let gid_ok = gid == keep || (owner && (gid == cur.gid || creds.in_group(gid)));
            if !uid_ok || !gid_ok {
                return Err(Errno::EPERM);
            }
        }
        if uid == keep && gid == keep {
            return Ok(());
        }
        let key = real.key();
        let mut e = self.entries.get(&key).copied().unwrap_or_default();
        if uid != keep {
            e.uid = Some(uid);
        }
        if gid != keep {
            e.gid = Some(gid);
        }
        if cur.mode & S_IFMT != S_IFDIR {
            let mut m = cur.mode & 0o7777;
            m &= !S_ISUID;
            if m & S_IXGRP != 0 {
                m &= !S_ISGID;
            }
            if m != cur.mode & 0o7777 {
                // Against the bits a recorded mode still showing was recorded with, else
                // the real file's now.
                if e.mode_for(real.mode).is_none() {
                    e.real = real.mode & 0o7777;
                }
                e.mode = Some(m);
            }
        }
        self.set(key, e);
        Ok(())
    }

    /// `access`/`faccessat` of the file the host shows as `real`, as the kernel checks it
    /// on the file as the view shows it: with the real ids (`effective`: the effective
    /// ones, `AT_EACCESS`), root's capabilities if that uid is 0. `mode`: `R_OK` 4,
    /// `W_OK` 2, `X_OK` 1 (0: existence only).
    pub fn access(&self, map: &Mapping, creds: &Creds, real: &Stat, mode: u32, effective: bool) -> Result<(), Errno> {
        let v = self.view(map, real);
        let (uid, gid) = if effective { (creds.uid[1], creds.gid[1]) } else { (creds.uid[0], creds.gid[0]) };
        let want = mode & 7;
        if want == 0 {
            return Ok(());
        }
        if uid == 0 && creds.permitted {
            // Root reads and writes anything, and executes what has an x bit (or searches
            // any directory).
            let x_ok = want & 1 == 0 || v.mode & S_IFMT == S_IFDIR || v.mode & 0o111 != 0;
            return if x_ok { Ok(()) } else { Err(Errno::EACCES) };
        }
        let bits = if v.uid == uid {
            v.mode >> 6
        } else if v.gid == gid || creds.groups.contains(&v.gid) {
            v.mode >> 3
        } else {
            v.mode
        } & 7;
        if bits & want == want { Ok(()) } else { Err(Errno::EACCES) }
    }

    /// `chmod` by `creds` to `mode`: records the view's mode and returns the mode to give
    /// the file on the host. That keeps it readable and writable (and, for a directory,
    /// searchable) by the real user, as root could still use it. Where the real file
    /// cannot simply have the view's mode (those bits were forced, or it has a set-ID bit,
    /// which the kernel may drop), the mode is recorded and the real file gets `S_ISVTX`
    /// as the mark that it was made for the record (see [`Entry::real`]). Returns the
    /// host's mode and the view's.
    pub fn chmod(&mut self, map: &Mapping, creds: &Creds, real: &Stat, mode: u32) -> Result<(u32, u32), Errno> {
        let cur = self.view(map, real);
        if !creds.fs_privileged() && creds.uid[3] != cur.uid {
            return Err(Errno::EPERM);
        }
        let mut m = mode & 0o7777;
        if !creds.fs_privileged() && !creds.in_group(cur.gid) {
            m &= !S_ISGID;
        }
        let key = real.key();
        let mut e = self.entries.get(&key).copied().unwrap_or_default();
        let dir = real.mode & S_IFMT == S_IFDIR;
        let forced = m | 0o600 | if dir { 0o100 } else { 0 };
        let host = if forced == m && m & (S_ISUID | S_ISGID) == 0 {
            (e.mode, e.real) = (None, 0);
            forced
        } else {
            let host = forced | S_ISVTX;
            (e.mode, e.real) = (Some(m), host);
            host
        };
        self.set(key, e);
        Ok((host, m))
    }

    /// The host refused the chmod to `mode` that [`Db::chmod`] asked for (not the real
    /// user's file: root could, and the view says it did): `mode` is recorded against the
    /// real file's bits as they are, `real_mode`.
    pub fn chmod_refused(&mut self, key: FileKey, mode: u32, real_mode: u32) {
        let mut e = self.entries.get(&key).copied().unwrap_or_default();
        (e.mode, e.real) = (Some(mode), real_mode & 0o7777);
        self.set(key, e);
    }

    /// A device node `mode` (type and permission bits, umask applied) with number `rdev`,
    /// created by `creds` as the empty regular file `placeholder`.
    pub fn mknod(&mut self, map: &Mapping, creds: &Creds, placeholder: &Stat, mode: u32, rdev: u64) {
        let key = placeholder.key();
        let (ru, rg) = map.owner(placeholder.uid, placeholder.gid);
        let e = Entry {
            uid: (creds.uid[3] != ru).then_some(creds.uid[3]),
            gid: (creds.gid[3] != rg).then_some(creds.gid[3]),
            mode: Some(mode & 0o7777),
            real: placeholder.mode & 0o7777,
            node: Some((mode & S_IFMT, rdev)),
        };
        self.set(key, e);
    }

    /// The file `before` (as the host showed it just before) lost a name: its entry goes
    /// with its last link (a directory has only one).
    pub fn unlinked(&mut self, before: &Stat) {
        if before.nlink <= 1 || before.mode & S_IFMT == S_IFDIR {
            self.forget(&before.key());
        }
    }

    /// The file `from` is now the file `to` (a copy-on-write view copied it up): what was
    /// recorded for the one is the other's; `from` keeps it too (other names of the lower
    /// file still show it).
    pub fn copied(&mut self, from: &FileKey, to: FileKey) {
        if let Some(e) = self.entries.get(from).cloned() {
            self.set(to, e);
        }
    }

    pub fn forget(&mut self, key: &FileKey) {
        if let Some(old) = self.entries.remove(key) {
            self.nodes -= usize::from(old.node.is_some());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stat::{S_IFBLK, S_IFCHR};

    const MAP: Mapping = Mapping { real_uid: 1000, real_gid: 1000, uid: 0, gid: 0 };

    fn file(ino: u64, mode: u32) -> Stat {
        Stat { dev: 0x801, ino, nlink: 1, mode, uid: 1000, gid: 1000, rdev: 0, size: 0, blocks: 0 }
    }

    #[test]
    fn unknown_files_of_the_real_user_are_the_views() {
        let db = Db::new();
        let v = db.view(&MAP, &file(1, S_IFREG | 0o644));
        assert_eq!((v.uid, v.gid), (0, 0));
        let mut other = file(2, S_IFREG | 0o644);
        other.uid = 7;
        assert_eq!(db.view(&MAP, &other).uid, 7);
        // A real root sees real owners.
        let rootmap = Mapping { real_uid: 0, real_gid: 0, uid: 0, gid: 0 };
        assert_eq!(db.view(&rootmap, &file(1, S_IFREG)).uid, 1000);
    }

    #[test]
    fn chown_then_chmod_as_tar_does() {
        let mut db = Db::new();
        let root = Creds::new(0, 0, vec![]);
        let f = file(3, S_IFREG | 0o644);
        db.chown(&MAP, &root, &f, 33, 44).unwrap();
        // The set-user-ID bit is the real file's too, with the mark.
        let (host, view) = db.chmod(&MAP, &root, &f, 0o4755).unwrap();
        assert_eq!((host, view), (0o5755, 0o4755));
        let f = file(3, S_IFREG | host);
        let v = db.view(&MAP, &f);
        assert_eq!((v.uid, v.gid, v.mode), (33, 44, S_IFREG | 0o4755));
        // chown clears the set-user-ID bit again.
        db.chown(&MAP, &root, &f, 0, u32::MAX).unwrap();
        assert_eq!(db.view(&MAP, &f).mode, S_IFREG | 0o755);
    }

    /// The real file's bits after a chmod the monitor did not see (or the kernel made).
    fn with_bits(f: &Stat, bits: u32) -> Stat {
        Stat { mode: (f.mode & S_IFMT) | bits, ..*f }
    }

    #[test]
    fn a_plain_chmod_needs_no_record() {
        let mut db = Db::new();
        let root = Creds::new(0, 0, vec![]);
        let f = file(8, S_IFREG | 0o600);
        assert_eq!(db.chmod(&MAP, &root, &f, 0o644).unwrap(), (0o644, 0o644));
        assert!(db.is_empty());
        let d = Stat { mode: S_IFDIR | 0o700, ..file(9, 0) };
        assert_eq!(db.chmod(&MAP, &root, &d, 0o755).unwrap(), (0o755, 0o755));
        assert!(db.is_empty());
    }

    #[test]
    fn an_unseen_chmod_ends_a_recorded_mode() {
        let mut db = Db::new();
        let root = Creds::new(0, 0, vec![]);
        // Forced bits: the real file stays the real user's to read and write.
        let f = file(10, S_IFREG | 0o644);
        let (host, view) = db.chmod(&MAP, &root, &f, 0o444).unwrap();
        assert_eq!((host, view), (0o1644, 0o444));
        let f = with_bits(&f, host);
        assert_eq!(db.view(&MAP, &f).mode, S_IFREG | 0o444);
        // `chmod u+w` from 0444 is a plain 0644, which the filter lets through: the real
        // file had 0644 already, but loses the mark.
        assert_eq!(db.view(&MAP, &with_bits(&f, 0o644)).mode, S_IFREG | 0o644);
        // A directory's search bit is forced too.
        let d = Stat { mode: S_IFDIR | 0o755, ..file(11, 0) };
        assert_eq!(db.chmod(&MAP, &root, &d, 0o600).unwrap(), (0o1700, 0o600));
    }

    #[test]
    fn a_write_that_clears_set_id_bits_keeps_the_views() {
        let mut db = Db::new();
        let root = Creds::new(0, 0, vec![]);
        let f = file(12, S_IFREG | 0o755);
        let (host, _) = db.chmod(&MAP, &root, &f, 0o6755).unwrap();
        assert_eq!(host, 0o7755);
        // The kernel clears the real user's set-ID bits on a write; root's stay.
        assert_eq!(db.view(&MAP, &with_bits(&f, 0o1755)).mode, S_IFREG | 0o6755);
        // A set-group-ID bit the kernel dropped at the chmod (not the real user's group).
        assert_eq!(db.view(&MAP, &with_bits(&f, 0o5755)).mode, S_IFREG | 0o6755);
        // Any unseen chmod clears the mark.
        assert_eq!(db.view(&MAP, &with_bits(&f, 0o755)).mode, S_IFREG | 0o755);
    }

    #[test]
    fn a_chown_that_clears_set_id_bits_holds_until_the_real_file_changes() {
        let mut db = Db::new();
        let root = Creds::new(0, 0, vec![]);
        // Made set-user-ID for real (an unprivileged user may), then chowned in the view.
        let f = file(13, S_IFREG | 0o4755);
        db.chown(&MAP, &root, &f, 5, 5).unwrap();
        assert_eq!(db.view(&MAP, &f).mode, S_IFREG | 0o755);
        assert_eq!(db.view(&MAP, &with_bits(&f, 0o700)).mode, S_IFREG | 0o700);
        assert_eq!(db.view(&MAP, &with_bits(&f, 0o700)).uid, 5);
    }

    #[test]
    fn a_refused_host_chmod_is_recorded_against_the_bits_the_file_kept() {
        let mut db = Db::new();
        let root = Creds::new(0, 0, vec![]);
        let mut f = file(14, S_IFREG | 0o644);
        f.uid = 7;
        let (_, view) = db.chmod(&MAP, &root, &f, 0o600).unwrap();
        db.chmod_refused(f.key(), view, 0o644);
        assert_eq!(db.view(&MAP, &f).mode, S_IFREG | 0o600);
    }

    #[test]
    fn access_follows_the_view() {
        let mut db = Db::new();
        let root = Creds::new(0, 0, vec![]);
        let f = file(7, S_IFREG | 0o644);
        db.chown(&MAP, &root, &f, 5, 5).unwrap();
        let (host, _) = db.chmod(&MAP, &root, &f, 0o640).unwrap();
        let f = with_bits(&f, host);
        // Root: read and write, no execute without an x bit.
        assert_eq!(db.access(&MAP, &root, &f, 6, false), Ok(()));
        assert_eq!(db.access(&MAP, &root, &f, 1, false), Err(Errno::EACCES));
        // The owner reads and writes; another user may not even read.
        assert_eq!(db.access(&MAP, &Creds::new(5, 9, vec![]), &f, 6, false), Ok(()));
        assert_eq!(db.access(&MAP, &Creds::new(6, 9, vec![]), &f, 4, false), Err(Errno::EACCES));
        assert_eq!(db.access(&MAP, &Creds::new(6, 9, vec![5]), &f, 4, false), Ok(()));
        // access() checks the real uid, AT_EACCESS the effective one.
        let mut c = Creds::new(0, 0, vec![]);
        c.setresuid(6, 5, 0).unwrap();
        assert_eq!(db.access(&MAP, &c, &f, 2, false), Err(Errno::EACCES));
        assert_eq!(db.access(&MAP, &c, &f, 2, true), Ok(()));
    }

    #[test]
    fn unprivileged_chown_refused() {
        let mut db = Db::new();
        let user = Creds::new(1000, 1000, vec![]);
        let f = file(4, S_IFREG | 0o644);
        // The file shows as root's: a virtual non-root user cannot take it.
        assert_eq!(db.chown(&MAP, &user, &f, 1000, u32::MAX), Err(Errno::EPERM));
        assert_eq!(db.chmod(&MAP, &user, &f, 0o600), Err(Errno::EPERM));
    }

    #[test]
    fn device_nodes_and_their_last_link() {
        let mut db = Db::new();
        let root = Creds::new(0, 0, vec![]);
        let p = file(5, S_IFREG | 0o1600);
        db.mknod(&MAP, &root, &p, S_IFCHR | 0o666, 0x103);
        let v = db.view(&MAP, &p);
        assert_eq!((v.mode, v.rdev, v.uid), (S_IFCHR | 0o666, 0x103, 0));
        assert_eq!(db.nodes(), vec![(0x801, 5, 2)]);
        assert!(db.has_nodes());
        let mut two = p;
        two.nlink = 2;
        db.unlinked(&two);
        assert!(db.get(&p.key()).is_some());
        db.unlinked(&p);
        assert!(db.is_empty() && !db.has_nodes());
    }

    #[test]
    fn an_unseen_chmod_of_a_placeholder_shows() {
        let mut db = Db::new();
        let root = Creds::new(0, 0, vec![]);
        let p = file(15, S_IFREG | 0o1600);
        db.mknod(&MAP, &root, &p, S_IFBLK | 0o660, 0x801);
        assert_eq!(db.view(&MAP, &with_bits(&p, 0o600)).mode, S_IFBLK | 0o600);
    }

    #[test]
    fn a_placeholder_written_to_is_a_file_again() {
        let mut db = Db::new();
        let root = Creds::new(0, 0, vec![]);
        let mut p = file(6, S_IFREG | 0o600);
        db.mknod(&MAP, &root, &p, S_IFCHR | 0o600, 1);
        p.size = 10;
        assert_eq!(db.view(&MAP, &p).mode & S_IFMT, S_IFREG);
    }
}
