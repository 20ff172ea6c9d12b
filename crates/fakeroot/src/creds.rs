//! Virtual credentials and the kernel's rules for changing them (`kernel/sys.c`,
//! `security/commoncap.c`), with root's capabilities modelled as two bits: whether the
//! thread holds them effective, and permitted.

use viewos_abi::Errno;

/// `(uid_t)-1`: "leave unchanged".
const KEEP: u32 = u32::MAX;
/// `NGROUPS_MAX`.
pub const NGROUPS_MAX: usize = 65536;

/// One thread's virtual credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Creds {
    /// Real, effective, saved, filesystem uid.
    pub uid: [u32; 4],
    /// Real, effective, saved, filesystem gid.
    pub gid: [u32; 4],
    pub groups: Vec<u32>,
    /// Holds root's capabilities in its effective set (`CAP_SETUID`, `CAP_CHOWN`...).
    pub effective: bool,
    /// Holds them in its permitted set (can take them back by becoming euid 0).
    pub permitted: bool,
}

const R: usize = 0;
const E: usize = 1;
const S: usize = 2;
const FS: usize = 3;

impl Creds {
    /// A process that is `uid`/`gid` in every slot, with root's capabilities iff `uid` is 0.
    pub fn new(uid: u32, gid: u32, groups: Vec<u32>) -> Creds {
        Creds { uid: [uid; 4], gid: [gid; 4], groups, effective: uid == 0, permitted: uid == 0 }
    }

    /// Whether filesystem operations are made with root's privileges (fsuid 0 with
    /// capabilities, as the kernel raises the filesystem capabilities for fsuid 0).
    pub fn fs_privileged(&self) -> bool {
        self.uid[FS] == 0 && self.permitted
    }

    /// Whether the thread holds `gid` (its fsgid or a supplementary group).
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid[FS] == gid || self.groups.contains(&gid)
    }

    /// `cap_task_fix_setuid`: capabilities follow uid changes.
    fn fix_caps(&mut self, old: [u32; 4]) {
        let had_root = old[R] == 0 || old[E] == 0 || old[S] == 0;
        let has_root = self.uid[R] == 0 || self.uid[E] == 0 || self.uid[S] == 0;
        if had_root && !has_root {
            self.permitted = false;
            self.effective = false;
        }
        if old[E] == 0 && self.uid[E] != 0 {
            self.effective = false;
        }
        if old[E] != 0 && self.uid[E] == 0 {
            self.effective = self.permitted;
        }
    }

    pub fn setuid(&mut self, u: u32) -> Result<(), Errno> {
        let old = self.uid;
        set_one(&mut self.uid, u, self.effective)?;
        self.fix_caps(old);
        Ok(())
    }

    pub fn setreuid(&mut self, r: u32, e: u32) -> Result<(), Errno> {
        let old = self.uid;
        set_re(&mut self.uid, r, e, self.effective)?;
        self.fix_caps(old);
        Ok(())
    }

    pub fn setresuid(&mut self, r: u32, e: u32, s: u32) -> Result<(), Errno> {
        let old = self.uid;
        set_res(&mut self.uid, r, e, s, self.effective)?;
        self.fix_caps(old);
        Ok(())
    }

    /// `setfsuid`: returns the previous fsuid whether or not it changed anything.
    pub fn setfsuid(&mut self, u: u32) -> u32 {
        set_fs(&mut self.uid, u, self.effective)
    }

    pub fn setgid(&mut self, g: u32) -> Result<(), Errno> {
        set_one(&mut self.gid, g, self.effective)
    }

    pub fn setregid(&mut self, r: u32, e: u32) -> Result<(), Errno> {
        set_re(&mut self.gid, r, e, self.effective)
    }

    pub fn setresgid(&mut self, r: u32, e: u32, s: u32) -> Result<(), Errno> {
        set_res(&mut self.gid, r, e, s, self.effective)
    }

    /// `setfsgid`: returns the previous fsgid.
    pub fn setfsgid(&mut self, g: u32) -> u32 {
        set_fs(&mut self.gid, g, self.effective)
    }

    pub fn setgroups(&mut self, groups: Vec<u32>) -> Result<(), Errno> {
        if groups.len() > NGROUPS_MAX {
            return Err(Errno::EINVAL);
        }
        if !self.effective {
            return Err(Errno::EPERM);
        }
        let mut g = groups;
        g.sort_unstable();
        g.dedup();
        self.groups = g;
        Ok(())
    }

    /// `capset` with these effective and permitted sets (as "any bit set"): the new
    /// permitted set must be within the old one.
    pub fn capset(&mut self, effective: bool, permitted: bool) -> Result<(), Errno> {
        if (permitted && !self.permitted) || (effective && !permitted) {
            return Err(Errno::EPERM);
        }
        self.permitted = permitted;
        self.effective = effective;
        Ok(())
    }

    /// After an `execve` of a file with the set-user-ID (`suid`: its owner) or set-group-ID
    /// bit (`sgid`): the effective ids change, the saved and filesystem ids follow them, and
    /// capabilities follow as they do for root (`cap_bprm_creds_from_file`).
    pub fn exec(&mut self, suid: Option<u32>, sgid: Option<u32>) {
        if let Some(u) = suid {
            self.uid[E] = u;
        }
        if let Some(g) = sgid {
            self.gid[E] = g;
        }
        self.uid[S] = self.uid[E];
        self.uid[FS] = self.uid[E];
        self.gid[S] = self.gid[E];
        self.gid[FS] = self.gid[E];
        // Root (real or effective) gets a full set; anyone else none.
        let root = self.uid[R] == 0 || self.uid[E] == 0;
        self.permitted = root;
        self.effective = self.uid[E] == 0 && root;
    }
}

// The kernel's rules, the same for uids (CAP_SETUID) and gids (CAP_SETGID); `cap`: the
// thread holds the capability. `ids`: real, effective, saved, filesystem.

/// `setuid`/`setgid`.
fn set_one(ids: &mut [u32; 4], v: u32, cap: bool) -> Result<(), Errno> {
    if v == KEEP {
        return Err(Errno::EINVAL);
    }
    if cap {
        ids[R] = v;
        ids[S] = v;
    } else if v != ids[R] && v != ids[S] {
        return Err(Errno::EPERM);
    }
    ids[E] = v;
    ids[FS] = v;
    Ok(())
}

/// `setreuid`/`setregid`.
fn set_re(ids: &mut [u32; 4], r: u32, e: u32, cap: bool) -> Result<(), Errno> {
    let old = *ids;
    if r != KEEP && r != old[R] && r != old[E] && !cap {
        return Err(Errno::EPERM);
    }
    if e != KEEP && e != old[R] && e != old[E] && e != old[S] && !cap {
        return Err(Errno::EPERM);
    }
    if r != KEEP {
        ids[R] = r;
    }
    if e != KEEP {
        ids[E] = e;
    }
    if r != KEEP || (e != KEEP && e != old[R]) {
        ids[S] = ids[E];
    }
    ids[FS] = ids[E];
    Ok(())
}

/// `setresuid`/`setresgid`.
fn set_res(ids: &mut [u32; 4], r: u32, e: u32, s: u32, cap: bool) -> Result<(), Errno> {
    let old = *ids;
    let ok = |v: u32| v == KEEP || v == old[R] || v == old[E] || v == old[S];
    if !cap && !(ok(r) && ok(e) && ok(s)) {
        return Err(Errno::EPERM);
    }
    for (slot, v) in [(R, r), (E, e), (S, s)] {
        if v != KEEP {
            ids[slot] = v;
        }
    }
    ids[FS] = ids[E];
    Ok(())
}

/// `setfsuid`/`setfsgid`: the previous value, changed only to one of the ids or with `cap`.
fn set_fs(ids: &mut [u32; 4], v: u32, cap: bool) -> u32 {
    let old = ids[FS];
    if v != KEEP && (ids.contains(&v) || cap) {
        ids[FS] = v;
    }
    old
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_drops_and_cannot_come_back() {
        let mut c = Creds::new(0, 0, vec![]);
        c.setuid(1000).unwrap();
        assert_eq!(c.uid, [1000; 4]);
        assert!(!c.permitted && !c.effective);
        assert_eq!(c.setuid(0), Err(Errno::EPERM));
        assert_eq!(c.setgroups(vec![1]), Err(Errno::EPERM));
    }

    #[test]
    fn seteuid_keeps_the_way_back() {
        let mut c = Creds::new(0, 0, vec![]);
        c.setresuid(KEEP, 1000, KEEP).unwrap();
        assert_eq!(c.uid, [0, 1000, 0, 1000]);
        assert!(!c.effective && c.permitted);
        // Not privileged now, but 0 is the real and saved uid.
        c.setresuid(KEEP, 0, KEEP).unwrap();
        assert!(c.effective);
        assert_eq!(c.uid, [0; 4]);
    }

    #[test]
    fn setreuid_sets_saved_as_the_kernel_does() {
        let mut c = Creds::new(0, 0, vec![]);
        c.setreuid(KEEP, 5).unwrap();
        // e != old real: saved follows the new effective.
        assert_eq!(c.uid, [0, 5, 5, 5]);
        let mut c = Creds::new(0, 0, vec![]);
        c.setreuid(7, KEEP).unwrap();
        assert_eq!(c.uid, [7, 0, 0, 0]);
    }

    #[test]
    fn unprivileged_rules() {
        let mut c = Creds::new(1000, 1000, vec![]);
        assert_eq!(c.setuid(0), Err(Errno::EPERM));
        assert_eq!(c.setresgid(KEEP, 5, KEEP), Err(Errno::EPERM));
        assert_eq!(c.setfsuid(0), 1000);
        assert_eq!(c.uid[FS], 1000);
        assert_eq!(c.capset(true, true), Err(Errno::EPERM));
    }

    #[test]
    fn setuid_exec_makes_root() {
        let mut c = Creds::new(1000, 1000, vec![]);
        c.exec(Some(0), None);
        assert_eq!(c.uid, [1000, 0, 0, 0]);
        assert!(c.effective && c.permitted);
        c.setuid(0).unwrap();
        assert_eq!(c.uid, [0; 4]);
    }

    proptest::proptest! {
        /// Whatever an unprivileged thread asks, it only ever holds ids it held before.
        #[test]
        fn unprivileged_never_gains(ops in proptest::collection::vec((0u8..8, 0u32..4, 0u32..4, 0u32..4), 0..20)) {
            let pick = |v: u32| if v == 3 { KEEP } else { v * 1000 + 1000 };
            let mut c = Creds::new(1000, 1000, vec![]);
            c.uid = [1000, 2000, 1000, 2000];
            for (op, a, b, d) in ops {
                let _ = match op {
                    0 => c.setuid(pick(a)),
                    1 => c.setreuid(pick(a), pick(b)),
                    2 => c.setresuid(pick(a), pick(b), pick(d)),
                    3 => { c.setfsuid(pick(a)); Ok(()) }
                    4 => c.setgroups(vec![pick(a)]),
                    5 => c.capset(a == 0, b == 0),
                    6 => c.setgid(pick(a)),
                    _ => c.setresgid(pick(a), pick(b), pick(d)),
                };
                for u in c.uid {
                    proptest::prop_assert!(u == 1000 || u == 2000);
                }
                proptest::prop_assert!(!c.effective && !c.permitted);
            }
        }
    }
}
