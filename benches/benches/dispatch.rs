//! The cost of one dispatch decision in the core, with no process and no kernel in the way:
//! what the monitor adds on top of the interception mechanism itself (µs-scale, see
//! `viewos-compare`). Three calls: one the intercept module passes, one the uname module
//! emulates with a guest memory write, and one no module claims.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use viewos_core::modules::{Intercept, Uname, Utsname};
use viewos_core::{Disposition, FakeMem, FsState, Monitor, Nanos, Syscall, SyscallArgs, Sysno, Tid};

const UTS_BUF: u64 = 0x1000;
/// `sizeof(struct new_utsname)`: six 65-byte fields.
const UTS_LEN: usize = 6 * 65;

fn host_utsname() -> Utsname {
    let mut u = Utsname::from_bytes(&[0; UTS_LEN]).expect("right size");
    for (i, v) in [&b"Linux"[..], b"benchhost", b"6.18.0", b"#1 SMP", b"x86_64", b"(none)"].iter().enumerate() {
        u.set(i, v).expect("fits");
    }
    u
}

fn monitor() -> Monitor {
    let mut m = Monitor::new(vec![
        Box::new(Intercept::new(vec![Sysno(39)], false)),
        Box::new(Uname::new(host_utsname(), b"bench").expect("short name")),
    ]);
    m.on_spawn(Tid(1), FsState::default());
    m
}

fn call(nr: u32, args: [u64; 6]) -> Syscall {
    Syscall::from_raw(Sysno(nr), SyscallArgs(args))
}

fn dispatch(c: &mut Criterion) {
    let mut g = c.benchmark_group("on_syscall_enter");
    g.measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));

    let cases = [
        ("getpid_pass", call(39, [0; 6]), Disposition::PASS),
        ("uname_emulate", call(63, [UTS_BUF, 0, 0, 0, 0, 0]), Disposition::Emulate(Ok(0))),
        ("getppid_unclaimed", call(110, [0; 6]), Disposition::PASS),
    ];
    for (name, sc, expect) in cases {
        let mut m = monitor();
        let mut mem = FakeMem::new();
        mem.map(UTS_BUF, vec![0; 4096]);
        // A benchmark of the wrong decision would be worthless: check it once up front.
        assert_eq!(m.on_syscall_enter(Nanos(0), Tid(1), sc, &mut mem), expect, "{name}");
        g.bench_function(name, |b| b.iter(|| m.on_syscall_enter(Nanos(0), Tid(1), black_box(sc), &mut mem)));
    }
    g.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
