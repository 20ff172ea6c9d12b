//! AF_UNIX socket addresses are paths too: `bind`, `connect` and `sendto` name a socket file
//! in the view (rewritten to its host path, in a copy of the address), and `getsockname`/
//! `getpeername` report it back under its guest name. Abstract names (a leading NUL) and
//! unnamed sockets are not paths and pass unchanged.

use viewos_abi::{Errno, GuestAddr};
use viewos_path::{GuestPath, HostPath, View};

use crate::mem::GuestMem;

pub const AF_UNIX: u16 = 1;
/// `sizeof(struct sockaddr_un)`: family (2) + `sun_path[108]`.
pub const SOCKADDR_UN_SIZE: usize = 110;

/// The path in a `sockaddr_un` of `len` bytes at `addr`, if it is a filesystem socket.
/// `Ok(None)` for other families, abstract and unnamed addresses.
pub fn read_path(mem: &mut dyn GuestMem, addr: u64, len: u64) -> Result<Option<Vec<u8>>, Errno> {
    if addr == 0 || len < 3 {
        return Ok(None);
    }
    let len = (len as usize).min(SOCKADDR_UN_SIZE);
    let mut buf = vec![0u8; len];
    mem.read(GuestAddr(addr), &mut buf)?;
    if u16::from_le_bytes([buf[0], buf[1]]) != AF_UNIX || buf[2] == 0 {
        return Ok(None);
    }
    let path = &buf[2..];
    Ok(Some(path[..path.iter().position(|&b| b == 0).unwrap_or(path.len())].to_vec()))
}

/// A `sockaddr_un` for `path` (with its NUL), or `ENAMETOOLONG` if it does not fit.
pub fn sockaddr(path: &[u8]) -> Result<Vec<u8>, Errno> {
    if path.len() + 1 > SOCKADDR_UN_SIZE - 2 {
        return Err(Errno::ENAMETOOLONG);
    }
    let mut a = AF_UNIX.to_le_bytes().to_vec();
    a.extend_from_slice(path);
    a.push(0);
    Ok(a)
}

/// At the exit of `getsockname`/`getpeername`/`accept`/`recvfrom`: the kernel wrote a host
/// path at `addr`; put the guest name of it in its place, truncated to the caller's buffer
/// of `size` bytes, and report the full length at `lenp`, as the kernel does.
pub fn report_back(view: &View, host: &dyn super::Host, mem: &mut dyn GuestMem, addr: u64, lenp: u64, size: u32) -> Result<(), Errno> {
    if addr == 0 || lenp == 0 {
        return Ok(());
    }
    let mut lb = [0u8; 4];
    mem.read(GuestAddr(lenp), &mut lb)?;
    let written = u32::from_le_bytes(lb) as u64;
    let Some(kernel) = read_path(mem, addr, written.min(u64::from(size)))? else { return Ok(()) };
    // A socket of the monitor's own filesystems: the kernel knows it by its real name.
    let named = host.virtual_socket_name(&kernel).unwrap_or(kernel);
    let Ok(host) = HostPath::new(named) else { return Ok(()) };
    let guest = view.untranslate(&host).map(GuestPath::into_bytes).unwrap_or_default();
    let full = sockaddr(&guest)?;
    let n = full.len().min(size as usize);
    mem.write(GuestAddr(addr), &full[..n])?;
    mem.write(GuestAddr(lenp), &(full.len() as u32).to_le_bytes())?;
    Ok(())
}
