//! The `--fakeroot-state` file: the ownership database as text, one file per line, closed
//! by a line with the count and a checksum so a truncated or edited file is refused whole.
//!
//! ```text
//! viewos-fakeroot-state 2
//! <dev> <ino> <uid|-> <gid|-> <MODE/REAL in octal|-> <c:RDEV|b:RDEV|->
//! ...
//! end <entries> <FNV-1a 64 of every byte before this line, 16 hex digits>
//! ```
//! Numbers are decimal except modes (octal) and device numbers (hex). `MODE/REAL`: the
//! view's permission bits and the real file's when they were recorded (see
//! [`crate::Entry::real`]). Format 1 had no `/REAL`; its files are refused with a note.

use std::fmt;

use crate::stat::{S_IFBLK, S_IFCHR};
use crate::{Db, Entry, FileKey};

const MAGIC: &str = "viewos-fakeroot-state 2";

/// Why a state file was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateError {
    /// 1-based line, 0 for the file as a whole.
    pub line: usize,
    pub what: String,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 { write!(f, "{}", self.what) } else { write!(f, "line {}: {}", self.line, self.what) }
    }
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The database as a state file.
pub fn save(db: &Db) -> Vec<u8> {
    let mut out = format!("{MAGIC}\n");
    let opt = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
    for (k, e) in db.iter() {
        let mode = e.mode.map_or("-".to_string(), |m| format!("{m:o}/{:o}", e.real));
        let node = match e.node {
            Some((t, rdev)) if t == S_IFCHR => format!("c:{rdev:x}"),
            Some((t, rdev)) if t == S_IFBLK => format!("b:{rdev:x}"),
            _ => "-".to_string(),
        };
        out.push_str(&format!("{} {} {} {} {} {}\n", k.dev, k.ino, opt(e.uid), opt(e.gid), mode, node));
    }
    let sum = fnv(out.as_bytes());
    out.push_str(&format!("end {} {sum:016x}\n", db.len()));
    out.into_bytes()
}

/// Reads a state file: all of it, or an error (never part of it).
pub fn load(data: &[u8]) -> Result<Db, StateError> {
    let whole = |what: &str| StateError { line: 0, what: what.to_string() };
    let text = std::str::from_utf8(data).map_err(|_| whole("not a viewos fakeroot state file (not text)"))?;
    if text.starts_with("viewos-fakeroot-state 1\n") {
        return Err(whole("written by an older viewos (format 1); run that pipeline again from the start"));
    }
    if !text.starts_with(&format!("{MAGIC}\n")) {
        return Err(whole("not a viewos fakeroot state file (no 'viewos-fakeroot-state 2' header)"));
    }
    let body_end = text.trim_end_matches('\n').rfind('\n').ok_or_else(|| whole("truncated: no end line"))? + 1;
    let (body, tail) = text.split_at(body_end);
    let tail_line = body.lines().count() + 1;
    let bad = |line: usize, what: String| StateError { line, what };
    let tail = tail.strip_suffix('\n').ok_or_else(|| bad(tail_line, "truncated: the end line has no newline".into()))?;
    let parts: Vec<&str> = tail.split(' ').collect();
    let [end, count, sum] = parts.as_slice() else { return Err(bad(tail_line, "truncated: no end line".into())) };
    if *end != "end" {
        return Err(bad(tail_line, "truncated: no end line".into()));
    }
    let count: usize = count.parse().map_err(|_| bad(tail_line, format!("bad entry count {count:?}")))?;
    let sum = u64::from_str_radix(sum, 16).map_err(|_| bad(tail_line, format!("bad checksum {sum:?}")))?;
    // Only the canonical spelling (a changed letter case or leading zero is damage too).
    if format!("end {count} {sum:016x}") != tail || fnv(body.as_bytes()) != sum {
        return Err(whole("checksum mismatch: the file was changed or damaged after viewos wrote it"));
    }
    let mut db = Db::new();
    let mut n = 0;
    for (i, line) in body.lines().enumerate().skip(1) {
        let no = i + 1;
        let f: Vec<&str> = line.split(' ').collect();
        let [dev, ino, uid, gid, mode, node] = f.as_slice() else { return Err(bad(no, "expected 6 fields".into())) };
        let num = |s: &str, what: &str| s.parse::<u64>().map_err(|_| bad(no, format!("bad {what} {s:?}")));
        let id = |s: &str, what: &str| -> Result<Option<u32>, StateError> {
            if s == "-" { Ok(None) } else { s.parse::<u32>().map(Some).map_err(|_| bad(no, format!("bad {what} {s:?}"))) }
        };
        let key = FileKey { dev: num(dev, "device")?, ino: num(ino, "inode")? };
        let octal = |s: &str| u32::from_str_radix(s, 8).ok().filter(|&m| m <= 0o7777 && format!("{m:o}") == s);
        let (mode, real) = if *mode == "-" {
            (None, 0)
        } else {
            match mode.split_once('/').map(|(m, r)| (octal(m), octal(r))) {
                Some((Some(m), Some(r))) => (Some(m), r),
                _ => return Err(bad(no, format!("bad mode {mode:?}"))),
            }
        };
        let node = match node.split_once(':') {
            None if *node == "-" => None,
            Some((t, r)) if t == "c" || t == "b" => {
                let rdev = u64::from_str_radix(r, 16).map_err(|_| bad(no, format!("bad device number {r:?}")))?;
                Some((if t == "c" { S_IFCHR } else { S_IFBLK }, rdev))
            }
            _ => return Err(bad(no, format!("bad node {node:?}"))),
        };
        if db.get(&key).is_some() {
            return Err(bad(no, format!("file {} {} listed twice", key.dev, key.ino)));
        }
        db.set(key, Entry { uid: id(uid, "uid")?, gid: id(gid, "gid")?, mode, real, node });
        n += 1;
    }
    if n != count {
        return Err(whole(&format!("the end line counts {count} entries, the file holds {n}")));
    }
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry() -> impl Strategy<Value = (FileKey, Entry)> {
        (
            any::<u64>(),
            any::<u64>(),
            proptest::option::of(any::<u32>()),
            proptest::option::of(any::<u32>()),
            proptest::option::of((0u32..=0o7777, 0u32..=0o7777)),
            proptest::option::of((prop_oneof![Just(S_IFCHR), Just(S_IFBLK)], any::<u64>())),
        )
            .prop_map(|(dev, ino, uid, gid, mode, node)| {
                let (mode, real) = mode.map_or((None, 0), |(m, r)| (Some(m), r));
                (FileKey { dev, ino }, Entry { uid, gid, mode, real, node })
            })
    }

    proptest! {
        #[test]
        fn round_trip(entries in proptest::collection::vec(entry(), 0..40)) {
            let mut db = Db::new();
            for (k, e) in entries {
                db.set(k, e);
            }
            prop_assert_eq!(load(&save(&db)).unwrap(), db);
        }

        /// Any bytes: an error or a database, never a panic; any change to a saved file
        /// (a flipped byte, a cut) is refused.
        #[test]
        fn damage_is_refused(entries in proptest::collection::vec(entry(), 1..10), at in any::<proptest::sample::Index>(), bit in 0u8..8, cut in any::<bool>()) {
            let mut db = Db::new();
            for (k, e) in entries {
                db.set(k, e);
            }
            let good = save(&db);
            let i = at.index(good.len());
            let mut bad = good.clone();
            if cut { bad.truncate(i) } else { bad[i] ^= 1 << bit }
            prop_assert!(load(&bad).is_err());
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = load(&data);
            let mut d = b"viewos-fakeroot-state 2\n".to_vec();
            d.extend_from_slice(&data);
            let _ = load(&d);
        }
    }

    #[test]
    fn foreign_files_get_a_clear_error() {
        let e = load(b"0 1 2 3\n").unwrap_err();
        assert!(e.to_string().contains("not a viewos fakeroot state file"), "{e}");
        let e = load(b"viewos-fakeroot-state 2\n1 2 0 0 644/644 -\n").unwrap_err();
        assert!(e.to_string().contains("end line") || e.to_string().contains("truncated"), "{e}");
        let e = load(b"viewos-fakeroot-state 1\n1 2 0 0 644 -\nend 1 0000000000000000\n").unwrap_err();
        assert!(e.to_string().contains("older viewos"), "{e}");
    }
}
