//! Syscalls through the i386 (`int 0x80`) and x32 entry points.

use viewos_conformance::Case;

#[test]
fn foreign_syscall_abis() {
    Case::new("int80-x32")
        .probe(["int80"])
        .differs(
            "int80.getpid",
            "ENOSYS",
            "viewos refuses i386 syscalls by design: its seccomp filter and syscall tables speak x86_64 only, \
             and passing them through would let a tracee bypass the monitor",
        )
        .expect_same();
}
