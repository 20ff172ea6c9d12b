//! Policy → filter. The layout (see the crate docs): check `arch`, load `nr`, send x32
//! numbers away, then a binary search over the numbers the policy lists.
//!
//! The search runs over a piecewise-constant map `u32 → action`. Runs of equal actions
//! become ranges (one `jge` per boundary); a lone number whose neighbours agree becomes a
//! point (one `jeq`), which is half the cost of its two boundaries. Code is emitted back to
//! front (see [`Emitter`]) so every forward jump knows its exact distance.

use std::collections::BTreeMap;

use viewos_abi::Abi;

use crate::bpf::*;
use crate::{Policy, SeccompData, Test};

/// Why a policy has no filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompileError {
    /// The filter would need `len` instructions, more than [`BPF_MAXINSNS`].
    TooLong { len: usize },
    /// `Policy::syscalls` lists a number with `X32_SYSCALL_BIT` set; such numbers always
    /// take the `x32` action, so the entry could never apply.
    X32Number { nr: u32 },
    /// A [`crate::Split`] names an argument past the sixth.
    BadSplit { nr: u32 },
}

impl core::fmt::Display for CompileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CompileError::TooLong { len } => write!(f, "filter needs {len} instructions (max {BPF_MAXINSNS})"),
            CompileError::X32Number { nr } => write!(f, "syscall number {nr:#x} has the x32 bit set"),
            CompileError::BadSplit { nr } => write!(f, "syscall number {nr:#x} splits on an argument that does not exist"),
        }
    }
}

impl std::error::Error for CompileError {}

/// Stand-in verdicts (a `SECCOMP_RET_TRAP` value, never produced) for split numbers: a
/// jump to one goes to that number's block instead.
const PLACEHOLDER: u32 = crate::SECCOMP_RET_TRAP;

/// Point comparisons tested one after another before the search splits again: chains are
/// cheaper in instructions, splits in depth.
const CHAIN: usize = 4;

/// Compiles `policy` to a seccomp filter with the same verdicts as [`Policy::decide`] for
/// every `seccomp_data`. The filter loads only `arch` and `nr` (and, for a split number, one
/// argument in that number's own block), so the kernel can cache its `Allow` verdicts (see
/// [`crate::is_cacheable`]).
pub fn compile(policy: &Policy) -> Result<Vec<SockFilter>, CompileError> {
    if let Some(&nr) = policy.syscalls.keys().find(|&&nr| nr & Abi::X32_SYSCALL_BIT != 0) {
        return Err(CompileError::X32Number { nr });
    }
    if let Some(&nr) = policy.splits.iter().find(|(nr, s)| s.arg >= 6 || **nr & Abi::X32_SYSCALL_BIT != 0).map(|(nr, _)| nr) {
        return Err(CompileError::BadSplit { nr });
    }
    let mut e = Emitter::default();
    // Each split number gets a block at the end of the filter (`ld args[i]; jset mask`),
    // which the search reaches through a placeholder verdict of its own.
    let mut placeholders = BTreeMap::new();
    for (i, (&nr, split)) in policy.splits.iter().enumerate() {
        let base = policy.syscalls.get(&nr).copied().unwrap_or(policy.default).ret_value();
        let offset = SeccompData::arg_offset(usize::from(split.arg));
        let hit = Target::Ret(split.when_set.ret_value());
        let mut next = Target::Ret(base);
        match split.test {
            Test::AnySet(mask) => {
                // ld low; jset low_mask -> hit; ld high; jset high_mask -> hit; base (emitted
                // back to front; a zero half is not tested).
                let (low, high) = (mask as u32, (mask >> 32) as u32);
                for (half, word_offset) in [(high, offset + 4), (low, offset)] {
                    if half != 0 {
                        e.jump(BPF_JSET, half, hit, next);
                        next = Target::At(e.push(SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, word_offset)));
                    }
                }
            }
            Test::LowEq { mask, value } => {
                // ld low; and mask; jeq value -> hit; base.
                e.jump(BPF_JEQ, value, hit, next);
                e.push(SockFilter::stmt(BPF_ALU | BPF_AND | BPF_K, mask));
                next = Target::At(e.push(SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, offset)));
            }
        }
        let block = match next {
            Target::At(at) => at,
            // An empty mask: the number's own action, through a block that returns it.
            Target::Ret(v) => e.push(SockFilter::stmt(BPF_RET | BPF_K, v)),
        };
        let placeholder = PLACEHOLDER | i as u32;
        e.blocks.insert(placeholder, block);
        placeholders.insert(nr, placeholder);
    }
    let (first, keys) = search_keys(policy, &placeholders);

    let search = e.search(&keys, first);
    e.jump(BPF_JSET, Abi::X32_SYSCALL_BIT, Target::Ret(policy.x32.ret_value()), search);
    let load_nr = e.push(SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, SeccompData::NR_OFFSET));
    let not_native = if policy.i386 == policy.unknown_arch {
        Target::Ret(policy.i386.ret_value())
    } else {
        let t = (Target::Ret(policy.i386.ret_value()), Target::Ret(policy.unknown_arch.ret_value()));
        Target::At(e.jump(BPF_JEQ, Abi::AUDIT_ARCH_I386, t.0, t.1))
    };
    e.jump(BPF_JEQ, Abi::AUDIT_ARCH_X86_64, Target::At(load_nr), not_native);
    e.push(SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, SeccompData::ARCH_OFFSET));

    let len = e.rev.len();
    if len > BPF_MAXINSNS {
        return Err(CompileError::TooLong { len });
    }
    let mut filter = e.rev;
    filter.reverse();
    debug_assert_eq!(crate::verify(&filter), Ok(()));
    Ok(filter)
}

/// One comparison the search may make: where the map changes.
#[derive(Clone, Copy, Debug)]
struct Key {
    nr: u32,
    /// `Some(ret)`: only `nr` itself returns `ret`; `None`: a range starts at `nr`.
    point: Option<u32>,
    /// The verdict of the surrounding range from `nr` on (for a point: on both sides of it).
    background: u32,
}

/// A maximal run of numbers with one verdict, except for `points` inside it.
struct Run {
    lo: u32,
    hi: u32,
    ret: u32,
    points: Vec<(u32, u32)>,
}

/// The verdict for `nr` 0, and the sorted keys where the verdict changes from there on.
fn search_keys(policy: &Policy, placeholders: &BTreeMap<u32, u32>) -> (u32, Vec<Key>) {
    fn push(runs: &mut Vec<Run>, lo: u32, hi: u32, ret: u32) {
        match runs.last_mut() {
            Some(last) if last.ret == ret => last.hi = hi,
            _ => runs.push(Run { lo, hi, ret, points: Vec::new() }),
        }
        // A one-number run between two runs that agree becomes a point in their merger.
        while let [.., a, b, c] = runs.as_slice() {
            if b.lo != b.hi || !b.points.is_empty() || a.ret != c.ret {
                break;
            }
            let (c, b) = (runs.pop().unwrap(), runs.pop().unwrap());
            let a = runs.last_mut().unwrap();
            a.hi = c.hi;
            a.points.push((b.lo, b.ret));
            a.points.extend(c.points);
        }
    }
    let default = policy.default.ret_value();
    let mut runs: Vec<Run> = Vec::new();
    let mut next: u64 = 0;
    let mut verdicts: BTreeMap<u32, u32> = policy.syscalls.iter().map(|(&nr, a)| (nr, a.ret_value())).collect();
    verdicts.extend(placeholders);
    for (&nr, &ret) in &verdicts {
        if u64::from(nr) > next {
            push(&mut runs, next as u32, nr - 1, default);
        }
        push(&mut runs, nr, nr, ret);
        next = u64::from(nr) + 1;
    }
    if next <= u64::from(u32::MAX) {
        push(&mut runs, next as u32, u32::MAX, default);
    }

    let mut keys = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        if i > 0 {
            keys.push(Key { nr: run.lo, point: None, background: run.ret });
        }
        keys.extend(run.points.iter().map(|&(nr, ret)| Key { nr, point: Some(ret), background: run.ret }));
    }
    (runs[0].ret, keys)
}

/// Where a jump goes: to "return this value" (wherever such a `ret` sits) or to an emitted
/// instruction, named by its index from the end of the filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Ret(u32),
    At(usize),
}

/// Emits the filter back to front: `rev[0]` is the last instruction. A jump is emitted after
/// its targets, so its offsets are exact. Out-of-range targets (offsets are 8 bits) are
/// fixed on the spot: a `ret` is simply emitted again next to the jump, anything else gets a
/// `ja` (32-bit offset) trampoline.
#[derive(Default)]
struct Emitter {
    rev: Vec<SockFilter>,
    /// Return value → index of its nearest copy so far.
    rets: BTreeMap<u32, usize>,
    /// Placeholder verdict → index of the split block it stands for.
    blocks: BTreeMap<u32, usize>,
}

impl Emitter {
    fn push(&mut self, insn: SockFilter) -> usize {
        self.rev.push(insn);
        self.rev.len() - 1
    }

    /// The offset from the next instruction emitted to `at`.
    fn offset(&self, at: usize) -> usize {
        self.rev.len() - at - 1
    }

    fn locate(&self, t: Target) -> Option<usize> {
        match t {
            Target::Ret(v) if self.blocks.contains_key(&v) => self.blocks.get(&v).copied(),
            Target::Ret(v) => self.rets.get(&v).copied(),
            Target::At(at) => Some(at),
        }
    }

    /// Makes `t` reachable from the next instruction, emitting a `ret` or `ja` if needed.
    fn bring_near(&mut self, t: Target) -> Target {
        match t {
            Target::Ret(v) if self.blocks.contains_key(&v) => {
                let k = self.offset(self.blocks[&v]) as u32;
                let at = self.push(SockFilter::stmt(BPF_JMP | BPF_JA, k));
                self.blocks.insert(v, at);
                t
            }
            Target::Ret(v) => {
                let at = self.push(SockFilter::stmt(BPF_RET | BPF_K, v));
                self.rets.insert(v, at);
                t
            }
            Target::At(at) => {
                let k = self.offset(at) as u32;
                Target::At(self.push(SockFilter::stmt(BPF_JMP | BPF_JA, k)))
            }
        }
    }

    /// Emits `jmp op #k` going to `t` if true and `f` if false; returns its index.
    fn jump(&mut self, op: u16, k: u32, mut t: Target, mut f: Target) -> usize {
        loop {
            let reach = |e: &Self, x| e.locate(x).map(|at| e.offset(at)).filter(|&o| o <= usize::from(u8::MAX));
            match (reach(self, t), reach(self, f)) {
                (Some(jt), Some(jf)) => {
                    return self.push(SockFilter::jump(BPF_JMP | op | BPF_K, k, jt as u8, jf as u8));
                }
                (None, _) => t = self.bring_near(t),
                (_, None) => f = self.bring_near(f),
            }
        }
    }

    /// Emits the search over `keys` for numbers whose verdict is `background` below the first
    /// key; returns where it starts.
    fn search(&mut self, keys: &[Key], background: u32) -> Target {
        if keys.is_empty() {
            return Target::Ret(background);
        }
        if keys.len() <= CHAIN && keys.iter().all(|k| k.point.is_some()) {
            let mut next = Target::Ret(background);
            for key in keys.iter().rev() {
                let hit = Target::Ret(key.point.expect("all points"));
                next = Target::At(self.jump(BPF_JEQ, key.nr, hit, next));
            }
            return next;
        }
        // Split at a range boundary near the middle if there is one (every boundary costs a
        // comparison somewhere anyway, a split at a point costs one extra); otherwise at the
        // middle point, which stays on the right. Small slices take any boundary.
        let mid = keys.len() / 2;
        let slack = (keys.len() / 4).max(CHAIN);
        let boundary = (mid.saturating_sub(slack)..=(mid + slack).min(keys.len() - 1))
            .filter(|&i| keys[i].point.is_none())
            .min_by_key(|&i| i.abs_diff(mid));
        let (pivot, right) = match boundary {
            Some(i) => (i, &keys[i + 1..]),
            None => (mid, &keys[mid..]),
        };
        let right = self.search(right, keys[pivot].background);
        let left = self.search(&keys[..pivot], background);
        if right == left {
            return right;
        }
        Target::At(self.jump(BPF_JGE, keys[pivot].nr, right, left))
    }
}
