//! The random operations of the memfs property tests, against the model (`src/tests.rs`)
//! and against the kernel's tmpfs (`tests/kernel.rs`): one generator, over whichever path
//! type each test uses. Included by `#[path]`; the including module provides `Kind` and the
//! rename flags.

use proptest::prelude::*;

use super::{Kind, RENAME_EXCHANGE, RENAME_NOREPLACE};

#[derive(Clone, Debug)]
pub enum Op<P> {
    Create(P, Kind),
    Write(P, u64, usize, u8),
    Truncate(P, u64),
    Unlink(P),
    Rmdir(P),
    Rename(P, P, u32),
    Link(P, P),
    Chmod(P, u32),
}

/// Operations on paths from `path`, chmods to modes from `mode`.
pub fn op<P, S, M>(path: fn() -> S, mode: M) -> impl Strategy<Value = Op<P>>
where
    P: Clone + std::fmt::Debug + 'static,
    S: Strategy<Value = P> + 'static,
    M: Strategy<Value = u32> + 'static,
{
    let kind = prop_oneof![Just(Kind::File), Just(Kind::File), Just(Kind::Dir), Just(Kind::Dir), Just(Kind::Symlink), Just(Kind::Fifo)];
    prop_oneof![
        3 => (path(), kind).prop_map(|(p, k)| Op::Create(p, k)),
        3 => (path(), 0u64..12_000, 0usize..6000, any::<u8>()).prop_map(|(p, o, l, b)| Op::Write(p, o, l, b)),
        2 => (path(), 0u64..14_000).prop_map(|(p, l)| Op::Truncate(p, l)),
        1 => path().prop_map(Op::Unlink),
        1 => path().prop_map(Op::Rmdir),
        2 => (path(), path(), prop_oneof![Just(0u32), Just(RENAME_NOREPLACE), Just(RENAME_EXCHANGE)]).prop_map(|(a, b, f)| Op::Rename(a, b, f)),
        1 => (path(), path()).prop_map(|(a, b)| Op::Link(a, b)),
        1 => (path(), mode).prop_map(|(p, m)| Op::Chmod(p, m)),
    ]
}
