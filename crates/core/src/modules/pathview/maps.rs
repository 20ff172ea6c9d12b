//! `/proc/PID/maps` (and `smaps`) of a guest in a view with the monitor's own filesystems:
//! a mapping of one of their files names the monitor's backing file (`/#INO (deleted)`,
//! `/memfd:...`); the guest gets a copy in which it names the file's guest path instead.

use viewos_path::{GuestPath, HostPath, View};

use super::Host;

/// Whether host path `path` is the `maps` or `smaps` file of a process or thread.
pub fn is_maps(path: &[u8]) -> bool {
    let parts: Vec<&[u8]> = path.split(|&b| b == b'/').skip(1).collect();
    let num = |p: &[u8]| !p.is_empty() && p.iter().all(u8::is_ascii_digit);
    match parts.as_slice() {
        [b"proc", pid, b"maps" | b"smaps"] => num(pid),
        [b"proc", pid, b"task", tid, b"maps" | b"smaps"] => num(pid) && num(tid),
        _ => false,
    }
}

/// `st_dev` of a `MAJOR:MINOR` field (hex, as the kernel prints it).
fn dev_of(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let (ma, mi) = text.split_once(':')?;
    let (ma, mi) = (u64::from_str_radix(ma, 16).ok()?, u64::from_str_radix(mi, 16).ok()?);
    Some(((ma & 0xfff) << 8) | (mi & 0xff) | ((mi & !0xff) << 12) | ((ma & !0xfff) << 32))
}

/// The text with every mapping of a file of the monitor's own filesystems named by its
/// guest path (`PATH (deleted)` kept as such); other lines unchanged.
pub fn edit(text: &[u8], view: &View, host: &dyn Host) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    for line in text.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(&edit_line(line, view, host).unwrap_or_else(|| line.to_vec()));
    }
    out
}

fn edit_line(line: &[u8], view: &View, host: &dyn Host) -> Option<Vec<u8>> {
    // address perms offset dev inode [padding] pathname
    let mut fields = Vec::new();
    let mut i = 0;
    while fields.len() < 5 {
        while line.get(i) == Some(&b' ') {
            i += 1;
        }
        let start = i;
        while line.get(i).is_some_and(|&b| b != b' ' && b != b'\n') {
            i += 1;
        }
        if start == i {
            return None;
        }
        fields.push(&line[start..i]);
    }
    let ino: u64 = std::str::from_utf8(fields[4]).ok()?.parse().ok().filter(|&n| n != 0)?;
    let dev = dev_of(fields[3])?;
    let name = host.virtual_name(dev, ino)?;
    let (path, deleted) = match name.strip_suffix(b" (deleted)") {
        Some(p) => (p, true),
        None => (name.as_slice(), false),
    };
    let guest = HostPath::new(path.to_vec()).ok().and_then(|h| view.untranslate(&h)).map(GuestPath::into_bytes)?;
    // The pathname column starts after the padding that follows the inode.
    let mut start = i;
    while line.get(start) == Some(&b' ') {
        start += 1;
    }
    let mut new = line[..start.max(i + 1).min(line.len())].to_vec();
    if new.last() != Some(&b' ') {
        new.push(b' ');
    }
    new.extend_from_slice(&guest);
    if deleted {
        new.extend_from_slice(b" (deleted)");
    }
    if line.ends_with(b"\n") {
        new.push(b'\n');
    }
    Some(new)
}
