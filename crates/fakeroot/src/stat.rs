//! The fields fakeroot reads and changes in the kernel's `struct stat` (x86-64, 144 bytes)
//! and `struct statx` (256 bytes).

pub const S_IFMT: u32 = 0o170000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFBLK: u32 = 0o060000;

const STATX_TYPE: u32 = 0x1;
const STATX_MODE: u32 = 0x2;
const STATX_UID: u32 = 0x8;
const STATX_GID: u32 = 0x10;
const STATX_INO: u32 = 0x100;

/// Which structure the bytes hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatLayout {
    /// `struct stat`, 144 bytes.
    Stat,
    /// `struct statx`, 256 bytes.
    Statx,
}

impl StatLayout {
    pub fn size(self) -> usize {
        match self {
            StatLayout::Stat => 144,
            StatLayout::Statx => 256,
        }
    }
}

/// The kernel's `new_encode_dev`, which `struct stat` uses.
pub fn encode_dev(major: u32, minor: u32) -> u64 {
    u64::from(minor & 0xff) | (u64::from(major) << 8) | (u64::from(minor & !0xff) << 12)
}

fn decode_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) as u32 | (((dev >> 32) & !0xfff) as u32);
    let minor = (dev & 0xff) as u32 | (((dev >> 12) & !0xff) as u32);
    (major, minor)
}

/// The fields of one stat result fakeroot cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    /// `st_mode`: type and permission bits.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: u64,
    pub blocks: u64,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("in range"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("in range"))
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

impl Stat {
    /// Reads the fields; `None` if `b` is too short, or a statx result lacks the type,
    /// inode or owner (the caller then leaves it as the kernel wrote it).
    pub fn parse(layout: StatLayout, b: &[u8]) -> Option<Stat> {
        if b.len() < layout.size() {
            return None;
        }
        Some(match layout {
            StatLayout::Stat => Stat {
                dev: u64_at(b, 0),
                ino: u64_at(b, 8),
                nlink: u64_at(b, 16),
                mode: u32_at(b, 24),
                uid: u32_at(b, 28),
                gid: u32_at(b, 32),
                rdev: u64_at(b, 40),
                size: u64_at(b, 48),
                blocks: u64_at(b, 64),
            },
            StatLayout::Statx => {
                let mask = u32_at(b, 0);
                let need = STATX_TYPE | STATX_INO;
                if mask & need != need {
                    return None;
                }
                Stat {
                    dev: encode_dev(u32_at(b, 136), u32_at(b, 140)),
                    ino: u64_at(b, 32),
                    nlink: u64::from(u32_at(b, 16)),
                    mode: u32::from(u16::from_le_bytes([b[28], b[29]])),
                    uid: u32_at(b, 20),
                    gid: u32_at(b, 24),
                    rdev: encode_dev(u32_at(b, 128), u32_at(b, 132)),
                    size: u64_at(b, 40),
                    blocks: u64_at(b, 48),
                }
            }
        })
    }

    /// Writes mode, owner, group, device number, size and blocks back into `b` (as
    /// parsed from it). A statx result gets them only where its mask says it has them.
    pub fn write(&self, layout: StatLayout, b: &mut [u8]) {
        if b.len() < layout.size() {
            return;
        }
        match layout {
            StatLayout::Stat => {
                put32(b, 24, self.mode);
                put32(b, 28, self.uid);
                put32(b, 32, self.gid);
                put64(b, 40, self.rdev);
                put64(b, 48, self.size);
                put64(b, 64, self.blocks);
            }
            StatLayout::Statx => {
                let mask = u32_at(b, 0);
                if mask & (STATX_TYPE | STATX_MODE) != 0 {
                    let old = u16::from_le_bytes([b[28], b[29]]);
                    let mut m = old;
                    if mask & STATX_TYPE != 0 {
                        m = (m & 0o7777) | (self.mode & S_IFMT) as u16;
                    }
                    if mask & STATX_MODE != 0 {
                        m = (m & S_IFMT as u16) | (self.mode & 0o7777) as u16;
                    }
                    b[28..30].copy_from_slice(&m.to_le_bytes());
                }
                if mask & STATX_UID != 0 {
                    put32(b, 20, self.uid);
                }
                if mask & STATX_GID != 0 {
                    put32(b, 24, self.gid);
                }
                let (ma, mi) = decode_dev(self.rdev);
                put32(b, 128, ma);
                put32(b, 132, mi);
                put64(b, 40, self.size);
                put64(b, 48, self.blocks);
            }
        }
    }

    /// The file's identity.
    pub fn key(&self) -> crate::FileKey {
        crate::FileKey { dev: self.dev, ino: self.ino }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_numbers_round_trip() {
        for (ma, mi) in [(8, 1), (259, 0), (0, 0x12345), (4095, 255), (1, 3)] {
            assert_eq!(decode_dev(encode_dev(ma, mi)), (ma, mi));
        }
        // The encoding `struct stat` and glibc's makedev agree on small numbers.
        assert_eq!(encode_dev(8, 1), 0x801);
    }

    #[test]
    fn statx_round_trip_respects_mask() {
        let mut b = vec![0u8; 256];
        b[0..4].copy_from_slice(&(STATX_TYPE | STATX_INO | STATX_UID).to_le_bytes());
        b[28..30].copy_from_slice(&((S_IFREG | 0o644) as u16).to_le_bytes());
        b[20..24].copy_from_slice(&1000u32.to_le_bytes());
        b[24..28].copy_from_slice(&1000u32.to_le_bytes());
        let mut s = Stat::parse(StatLayout::Statx, &b).unwrap();
        s.uid = 0;
        s.gid = 0;
        s.mode = S_IFCHR | 0o600;
        s.write(StatLayout::Statx, &mut b);
        let back = Stat::parse(StatLayout::Statx, &b).unwrap();
        assert_eq!(back.uid, 0);
        // Not asked for: left alone.
        assert_eq!(back.gid, 1000);
        // Type written, permission bits not (no STATX_MODE).
        assert_eq!(back.mode, S_IFCHR | 0o644);
    }

    #[test]
    fn short_or_partial_results_are_not_parsed() {
        assert!(Stat::parse(StatLayout::Stat, &[0; 100]).is_none());
        assert!(Stat::parse(StatLayout::Statx, &[0; 256]).is_none());
    }
}
