//! The uname view (`--hostname NAME`): the view has its own host name. `uname` reports it,
//! `sethostname` inside the view changes it for the view only (the host is never touched).

use viewos_abi::{Errno, Sysno, Syscall, x86_64::nr};

use crate::dispatch::{Ctx, Disposition, Module, Need};
use crate::mem::GuestMem;

/// Length of each `struct utsname` field (`__NEW_UTS_LEN + 1`).
pub const UTS_FIELD: usize = 65;

/// `struct new_utsname`: sysname, nodename, release, version, machine, domainname.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Utsname(pub [[u8; UTS_FIELD]; 6]);

impl Utsname {
    /// Index of `nodename`.
    pub const NODENAME: usize = 1;

    /// Parses the raw struct (6 × 65 bytes).
    pub fn from_bytes(b: &[u8]) -> Option<Utsname> {
        if b.len() != 6 * UTS_FIELD {
            return None;
        }
        let mut u = [[0u8; UTS_FIELD]; 6];
        for (i, f) in u.iter_mut().enumerate() {
            f.copy_from_slice(&b[i * UTS_FIELD..(i + 1) * UTS_FIELD]);
        }
        Some(Utsname(u))
    }

    /// The raw struct.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.concat()
    }

    /// Sets a field, NUL-padded. Fails (EINVAL) if it does not fit with its NUL.
    pub fn set(&mut self, field: usize, value: &[u8]) -> Result<(), Errno> {
        if value.len() >= UTS_FIELD {
            return Err(Errno::EINVAL);
        }
        self.0[field] = [0; UTS_FIELD];
        self.0[field][..value.len()].copy_from_slice(value);
        Ok(())
    }
}

/// The uname module: one utsname for the whole view.
#[derive(Clone, Debug)]
pub struct Uname {
    uts: Utsname,
}

impl Uname {
    /// `host` is the real utsname (read by the adapter); `nodename` replaces its host name.
    pub fn new(host: Utsname, nodename: &[u8]) -> Result<Uname, Errno> {
        let mut uts = host;
        uts.set(Utsname::NODENAME, nodename)?;
        Ok(Uname { uts })
    }

    /// The view's current utsname.
    pub fn utsname(&self) -> &Utsname {
        &self.uts
    }
}

impl Module for Uname {
    fn name(&self) -> &'static str {
        "uname"
    }

    fn interest(&self) -> Vec<(Sysno, Need)> {
        vec![(Sysno(nr::UNAME), Need::Decide), (Sysno(nr::SETHOSTNAME), Need::Decide)]
    }

    fn enter(&mut self, _ctx: &mut Ctx<'_>, call: &Syscall, mem: &mut dyn GuestMem) -> Option<Disposition> {
        let result = match call {
            Syscall::Uname(c) => mem.write(c.buf(), &self.uts.to_bytes()).map(|()| 0).map_err(Errno::from),
            Syscall::Sethostname(c) => {
                // The kernel rejects len > __NEW_UTS_LEN (64) with EINVAL before reading.
                let len = c.len();
                if len > (UTS_FIELD - 1) as u64 {
                    Err(Errno::EINVAL)
                } else {
                    let mut name = vec![0u8; len as usize];
                    match mem.read(c.name(), &mut name) {
                        // Like the kernel, the name may contain NULs; it is stored as given.
                        Ok(()) => self.uts.set(Utsname::NODENAME, &name).map(|()| 0),
                        Err(f) => Err(Errno::from(f)),
                    }
                }
            }
            _ => return None,
        };
        Some(Disposition::Emulate(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Monitor;
    use crate::mem::FakeMem;
    use crate::process::{FsState, Tid};
    use crate::{GuestAddr, Nanos, Sethostname};

    fn host() -> Utsname {
        let mut u = Utsname([[0; UTS_FIELD]; 6]);
        for (i, v) in [&b"Linux"[..], b"realhost", b"6.18.0", b"#1 SMP", b"x86_64", b"(none)"].iter().enumerate() {
            u.set(i, v).unwrap();
        }
        u
    }

    #[test]
    fn uname_reports_the_view_hostname_and_sethostname_stays_in_the_view() {
        let mut m = Monitor::new(vec![Box::new(Uname::new(host(), b"inview").unwrap())]);
        m.on_spawn(Tid(1), FsState::default());
        let mut mem = FakeMem::new();
        mem.map(0x1000, vec![0xff; 6 * UTS_FIELD]);
        let call = Syscall::from_raw(Sysno(nr::UNAME), viewos_abi::SyscallArgs([0x1000, 0, 0, 0, 0, 0]));
        assert_eq!(m.on_syscall_enter(Nanos(0), Tid(1), call, &mut mem), Disposition::Emulate(Ok(0)));
        let mut buf = vec![0; 6 * UTS_FIELD];
        mem.read(GuestAddr(0x1000), &mut buf).unwrap();
        let u = Utsname::from_bytes(&buf).unwrap();
        assert_eq!(&u.0[1][..7], b"inview\0");
        assert_eq!(&u.0[0][..6], b"Linux\0");

        mem.map_cstr(0x3000, b"renamed");
        let set = Syscall::Sethostname(Sethostname::new(GuestAddr(0x3000), 7));
        assert_eq!(m.on_syscall_enter(Nanos(1), Tid(1), set, &mut mem), Disposition::Emulate(Ok(0)));
        assert_eq!(m.on_syscall_enter(Nanos(2), Tid(1), call, &mut mem), Disposition::Emulate(Ok(0)));
        mem.read(GuestAddr(0x1000), &mut buf).unwrap();
        assert_eq!(&Utsname::from_bytes(&buf).unwrap().0[1][..8], b"renamed\0");
    }

    #[test]
    fn bad_buffers_are_efault_and_long_names_einval() {
        let mut u = Uname::new(host(), b"x").unwrap();
        let mut procs = crate::Processes::new();
        let mut ctx = Ctx { now: Nanos(0), tid: Tid(1), procs: &mut procs, exact: false };
        let mut mem = FakeMem::new();
        let call = Syscall::from_raw(Sysno(nr::UNAME), viewos_abi::SyscallArgs([0x9000, 0, 0, 0, 0, 0]));
        assert_eq!(u.enter(&mut ctx, &call, &mut mem), Some(Disposition::Emulate(Err(Errno::EFAULT))));
        let set = Syscall::Sethostname(Sethostname::new(GuestAddr(0x3000), 65));
        assert_eq!(u.enter(&mut ctx, &set, &mut mem), Some(Disposition::Emulate(Err(Errno::EINVAL))));
        assert!(Uname::new(host(), &[b'a'; 65]).is_err());
    }
}
