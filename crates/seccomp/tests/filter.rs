//! The compiled filter against the reference semantics (`Policy::decide`), and its shape.

use std::collections::BTreeMap;

use proptest::prelude::*;
use viewos_abi::x86_64::nr;
use viewos_abi::{Abi, Errno};
use viewos_seccomp::bpf::*;
use viewos_seccomp::*;

const X86_64: u32 = Abi::AUDIT_ARCH_X86_64;
const I386: u32 = Abi::AUDIT_ARCH_I386;

fn x64(nr: i32) -> SeccompData {
    SeccompData::syscall(X86_64, nr)
}

/// Compiles, checks what the kernel checks at load time, and compares every interesting
/// number on every arch with `decide`.
fn compile_and_check(p: &Policy) -> Vec<SockFilter> {
    let f = compile(p).expect("compiles");
    assert_eq!(verify(&f), Ok(()));
    assert!(is_cacheable(&f));
    let mut nrs: Vec<u32> = (0..1024).chain([0x3fff_ffff, 0x4000_0000, 0x4000_0001, 0x7fff_ffff]).collect();
    nrs.extend([0x8000_0000, 0x8000_0001, 0xbfff_ffff, 0xc000_0000, u32::MAX]);
    for &n in p.syscalls.keys() {
        nrs.extend([n.wrapping_sub(1), n, n.wrapping_add(1), n | Abi::X32_SYSCALL_BIT]);
    }
    for arch in [X86_64, I386, 0, 0xC000_00B7] {
        for &n in &nrs {
            let d = SeccompData::syscall(arch, n as i32);
            assert_eq!(run(&f, &d), Ok(p.decide(&d).ret_value()), "arch {arch:#x} nr {n:#x}\n{}", disassemble(&f));
        }
    }
    f
}

fn trapping(nrs: &[u32], action: Action) -> Policy {
    let mut p = Policy::allow_all();
    p.syscalls.extend(nrs.iter().map(|&n| (n, action)));
    p
}

#[test]
fn allow_all_is_tiny_and_checks_arch_first() {
    let f = compile_and_check(&Policy::allow_all());
    assert!(f.len() <= 8, "{}", disassemble(&f));
    assert_eq!(f[0], SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, SeccompData::ARCH_OFFSET));
    assert_eq!(f[1].code, BPF_JMP | BPF_JEQ | BPF_K);
    assert_eq!(f[1].k, X86_64);
}

#[test]
fn only_arch_and_nr_are_loaded() {
    let mut p = trapping(&[nr::OPENAT, nr::EXECVE, nr::UNAME], Action::Notify);
    p.syscalls.insert(nr::PTRACE, Action::Errno(Errno::EPERM));
    let f = compile_and_check(&p);
    let loads: Vec<u32> = f.iter().filter(|i| class(i.code) == BPF_LD).map(|i| i.k).collect();
    assert_eq!(loads, [SeccompData::ARCH_OFFSET, SeccompData::NR_OFFSET]);
    // The result cannot depend on anything else.
    let mut d = x64(nr::OPENAT as i32);
    d.instruction_pointer = 0xdead_beef;
    d.args = [u64::MAX; 6];
    assert_eq!(run(&f, &d), Ok(Action::Notify.ret_value()));
}

#[test]
fn a_typical_filter_is_short() {
    let ten = [
        nr::OPEN,
        nr::OPENAT,
        nr::STAT,
        nr::LSTAT,
        nr::EXECVE,
        nr::UNAME,
        nr::READLINK,
        nr::GETCWD,
        nr::CHDIR,
        nr::MKDIR,
    ];
    let f = compile_and_check(&trapping(&ten, Action::Notify));
    eprintln!("10 trapped syscalls: {} instructions\n{}", f.len(), disassemble(&f));
    assert!(f.len() <= 24, "{}", disassemble(&f));
    let rets = f.iter().filter(|i| class(i.code) == BPF_RET).count();
    assert_eq!(rets, 4, "each verdict returned once: Allow, Notify, ENOSYS, kill");
}

#[test]
fn alternating_actions_over_every_syscall() {
    for default in [Action::Allow, Action::Notify] {
        let mut p = Policy { default, ..Policy::allow_all() };
        let pair = [Action::Notify, Action::Errno(Errno::EPERM)];
        p.syscalls = (0..=469).map(|n| (n, pair[n as usize % 2])).collect();
        let f = compile_and_check(&p);
        eprintln!("alternating over 470: {} instructions", f.len());
    }
}

#[test]
fn no_two_neighbours_agree() {
    // Three actions in turn leave nothing to merge: ~470 boundaries, jumps past 255.
    let cycle = [Action::Notify, Action::Errno(Errno::EPERM), Action::Allow];
    let mut p = Policy::allow_all();
    p.syscalls = (0..=469).map(|n| (n, cycle[n as usize % 3])).collect();
    let f = compile_and_check(&p);
    eprintln!("3-cycle over 470: {} instructions", f.len());

    p.syscalls = (0..2000).map(|n| (n, cycle[n as usize % 3])).collect();
    let f = compile_and_check(&p);
    assert!(f.iter().any(|i| i.code == BPF_JMP | BPF_JA), "long subtrees need trampolines");
}

#[test]
fn too_long_and_x32_numbers_are_refused() {
    let p = trapping(&(0..10_000).step_by(2).collect::<Vec<_>>(), Action::Notify);
    assert!(matches!(compile(&p), Err(CompileError::TooLong { .. })));
    let p = trapping(&[Abi::X32_SYSCALL_BIT | 2], Action::Notify);
    assert_eq!(compile(&p), Err(CompileError::X32Number { nr: 0x4000_0002 }));
}

#[test]
fn to_bytes_is_eight_bytes_per_instruction() {
    let f = compile(&Policy::allow_all()).unwrap();
    let b = to_bytes(&f);
    assert_eq!(b.len(), 8 * f.len());
    assert_eq!(&b[..8], &[0x20, 0, 0, 0, 4, 0, 0, 0]); // ld [4]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Allow),
        Just(Action::Notify),
        Just(Action::Trace),
        Just(Action::Errno(Errno::EPERM)),
        Just(Action::Errno(Errno::ENOSYS)),
        (1..=4095u16).prop_map(|e| Action::Errno(Errno(e))),
        Just(Action::KillProcess),
    ]
}

fn syscalls() -> impl Strategy<Value = BTreeMap<u32, Action>> {
    prop_oneof![
        // Scattered numbers.
        proptest::collection::btree_map(0..470u32, action(), 0..470),
        // Runs of one action, some overlapping.
        proptest::collection::vec((0..470u32, 1..40u32, action()), 0..24).prop_map(|runs| {
            runs.into_iter().flat_map(|(lo, len, a)| (lo..lo + len).map(move |n| (n, a))).collect()
        }),
        // A few huge and odd numbers (bit 31 set, x32 bit clear).
        proptest::collection::btree_map(
            prop_oneof![0..470u32, 0x8000_0000..0xbfff_ffffu32, Just(0x3fff_ffff), Just(!Abi::X32_SYSCALL_BIT)],
            action(),
            0..16
        ),
    ]
}

fn test() -> impl Strategy<Value = Test> {
    let mask = prop_oneof![any::<u64>(), Just(0o10000000u64), Just(1u64), Just(u64::MAX), Just(1u64 << 40), Just(0)];
    prop_oneof![
        mask.prop_map(Test::AnySet),
        (prop_oneof![any::<u32>(), Just(0o7600u32), Just(0), Just(u32::MAX)], any::<u32>())
            .prop_map(|(mask, value)| Test::LowEq { mask, value: value & mask }),
        // A value the mask can never give: the split never hits.
        (any::<u32>(), any::<u32>()).prop_map(|(mask, value)| Test::LowEq { mask, value }),
    ]
}

fn splits() -> impl Strategy<Value = BTreeMap<u32, Split>> {
    proptest::collection::btree_map(
        0..470u32,
        (0..6u8, test(), action()).prop_map(|(arg, test, when_set)| Split { arg, test, when_set }),
        0..6,
    )
}

fn policy() -> impl Strategy<Value = Policy> {
    (action(), syscalls(), action(), action(), action(), splits()).prop_map(|(default, syscalls, i386, x32, unknown_arch, splits)| Policy {
        default,
        syscalls,
        i386,
        x32,
        unknown_arch,
        splits,
    })
}

fn data() -> impl Strategy<Value = SeccompData> {
    let arch = prop_oneof![Just(X86_64), Just(I386), any::<u32>()];
    let nr = prop_oneof![
        4 => 0..480i32,
        1 => (0..480i32).prop_map(|n| n | Abi::X32_SYSCALL_BIT as i32),
        1 => any::<i32>(),
        1 => Just(-1),
        1 => Just(i32::MIN),
    ];
    (arch, nr, any::<u64>(), any::<[u64; 6]>()).prop_map(|(arch, nr, instruction_pointer, args)| SeccompData {
        nr,
        arch,
        instruction_pointer,
        args,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn filter_agrees_with_decide(p in policy(), ds in proptest::collection::vec(data(), 64)) {
        let f = compile(&p).unwrap();
        prop_assert_eq!(verify(&f), Ok(()));
        // A split number that is allowed with all-zero arguments cannot be cached (the
        // kernel's emulation would have to look at the argument); every other ALLOW is.
        if p.splits.keys().all(|&n| p.decide(&x64(n as i32)) != Action::Allow) {
            prop_assert!(is_cacheable(&f));
        }
        for d in ds {
            prop_assert_eq!(run(&f, &d), Ok(p.decide(&d).ret_value()), "{:?}", d);
        }
        // Every listed number and its neighbours, natively.
        for &n in p.syscalls.keys() {
            for m in [n.wrapping_sub(1), n, n.wrapping_add(1)] {
                let d = x64(m as i32);
                prop_assert_eq!(run(&f, &d), Ok(p.decide(&d).ret_value()), "nr {:#x}", m);
            }
        }
        // Split numbers with the flag clear and set, in each argument.
        for (&n, s) in &p.splits {
            let probes = match s.test {
                Test::AnySet(mask) => vec![0u64, mask, mask << 32, mask >> 32, u64::MAX, 1 << 63],
                Test::LowEq { mask, value } => {
                    let v = u64::from(value);
                    vec![0, v, v | (1 << 40), v | u64::from(!mask), v ^ 1, v ^ u64::from(mask), u64::MAX]
                }
            };
            for bits in probes {
                let mut d = x64(n as i32);
                d.args[usize::from(s.arg)] = bits;
                prop_assert_eq!(run(&f, &d), Ok(p.decide(&d).ret_value()), "split nr {:#x} arg {:#x}", n, bits);
            }
        }
    }
}
