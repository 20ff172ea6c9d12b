//! How the upper layer is kept on disk (the store of `--cow DIR:STORE`): a directory tree
//! in which a whiteout for `NAME` is an empty file named `.wh.NAME` and an opaque directory
//! holds an empty file named `.wh..wh..opq` (the aufs convention, which needs no privilege:
//! overlayfs's whiteouts are 0/0 character devices). Guest names beginning with `.wh.` are
//! refused in a cow view (`EINVAL`), so that no guest file can pass for a marker.

use viewos_abi::Errno;

/// The prefix of a whiteout's name.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The name of the opaque marker.
pub const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// The prefix of a metadata-only copy's marker: `.wh..wh.mc.NAME` beside the file `NAME`
/// says its content is still the lower file's. (No guest name starts with `.wh.`, so no
/// whiteout can have this name.)
pub const METACOPY_PREFIX: &[u8] = b".wh..wh.mc.";
/// The prefix of every name the store keeps for itself (markers and the monitor's
/// temporary files), none of which a guest sees.
pub const PRIVATE_PREFIX: &[u8] = b".wh..wh.";

/// What one raw name of an upper directory stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Raw {
    /// A guest entry of that name.
    Entry(Vec<u8>),
    /// A whiteout for that name.
    Whiteout(Vec<u8>),
    /// The directory is opaque.
    Opaque,
    /// The file of that name is a metadata-only copy.
    Metacopy(Vec<u8>),
    /// A name the monitor keeps for itself (a temporary file).
    Private,
}

/// Decodes one raw name found in an upper directory.
pub fn decode(raw: &[u8]) -> Raw {
    if raw == OPAQUE_MARKER {
        return Raw::Opaque;
    }
    if let Some(name) = raw.strip_prefix(METACOPY_PREFIX).filter(|n| !n.is_empty()) {
        return Raw::Metacopy(name.to_vec());
    }
    if raw.starts_with(PRIVATE_PREFIX) {
        return Raw::Private;
    }
    match raw.strip_prefix(WHITEOUT_PREFIX) {
        Some(name) if !name.is_empty() => Raw::Whiteout(name.to_vec()),
        _ => Raw::Entry(raw.to_vec()),
    }
}

/// The raw name of the whiteout for `name`.
pub fn whiteout(name: &[u8]) -> Vec<u8> {
    [WHITEOUT_PREFIX, name].concat()
}

/// The raw name of the marker saying `name` is a metadata-only copy.
pub fn metacopy_marker(name: &[u8]) -> Vec<u8> {
    [METACOPY_PREFIX, name].concat()
}

/// Whether a guest may use `name` in a cow view: not one a marker could have (`EINVAL`).
pub fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.starts_with(WHITEOUT_PREFIX) { Err(Errno::EINVAL) } else { Ok(()) }
}

/// A whole upper directory's raw names, decoded: the guest names present, the whiteouts,
/// and whether it is opaque. A whiteout longer than a name may be (`NAME_MAX` less the
/// prefix) cannot exist on disk; the adapter refuses such a removal before it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dir {
    pub entries: Vec<Vec<u8>>,
    pub whiteouts: Vec<Vec<u8>>,
    pub opaque: bool,
    /// Entries that are metadata-only copies.
    pub metacopies: Vec<Vec<u8>>,
}

pub fn decode_dir<'a>(raw: impl IntoIterator<Item = &'a [u8]>) -> Dir {
    let mut d = Dir::default();
    for r in raw {
        match decode(r) {
            Raw::Entry(n) => d.entries.push(n),
            Raw::Whiteout(n) => d.whiteouts.push(n),
            Raw::Opaque => d.opaque = true,
            Raw::Metacopy(n) => d.metacopies.push(n),
            Raw::Private => {}
        }
    }
    d.entries.sort();
    d.whiteouts.sort();
    d.metacopies.sort();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn markers_are_recognised() {
        assert_eq!(decode(b".wh.a"), Raw::Whiteout(b"a".to_vec()));
        assert_eq!(decode(b".wh..wh..opq"), Raw::Opaque);
        assert_eq!(decode(b".wh."), Raw::Entry(b".wh.".to_vec()));
        assert_eq!(decode(b"a.wh.b"), Raw::Entry(b"a.wh.b".to_vec()));
        assert_eq!(decode(b".wh..wh.mc.f"), Raw::Metacopy(b"f".to_vec()));
        assert_eq!(decode(b".wh..wh.tmp.f"), Raw::Private);
        assert_eq!(check_name(b".wh.x"), Err(Errno::EINVAL));
        assert_eq!(check_name(b".whx"), Ok(()));
    }

    proptest! {
        /// Any guest name and any whiteout read back as what was written.
        #[test]
        fn names_round_trip(names in proptest::collection::btree_set(proptest::collection::vec(any::<u8>().prop_filter("no / or NUL", |b| *b != b'/' && *b != 0), 1..12), 0..8),
                            gone in proptest::collection::btree_set(proptest::collection::vec(b'a'..=b'z', 1..6), 0..5),
                            opaque in any::<bool>()) {
            let names: Vec<Vec<u8>> = names.into_iter().filter(|n| check_name(n).is_ok()).collect();
            let mut raw: Vec<Vec<u8>> = names.clone();
            raw.extend(gone.iter().map(|g| whiteout(g)));
            if opaque {
                raw.push(OPAQUE_MARKER.to_vec());
            }
            let metas: Vec<Vec<u8>> = names.iter().take(2).cloned().collect();
            raw.extend(metas.iter().map(|m| metacopy_marker(m)));
            let d = decode_dir(raw.iter().map(Vec::as_slice));
            let mut want = names.clone();
            want.sort();
            prop_assert_eq!(d.entries, want);
            let mut metas = metas;
            metas.sort();
            prop_assert_eq!(d.metacopies, metas);
            prop_assert_eq!(d.whiteouts, gone.into_iter().collect::<Vec<_>>());
            prop_assert_eq!(d.opaque, opaque);
        }
    }
}
