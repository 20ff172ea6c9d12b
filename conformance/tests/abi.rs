//! Syscalls through the i386 (`int 0x80`) and x32 entry points.

use viewos_conformance::Case;

#[test]
fn foreign_syscall_abis_in_an_empty_view() {
    // A view that virtualizes nothing installs no filter: nothing can be bypassed, so
    // 32-bit calls behave exactly as natively.
    Case::new("int80-x32")
        .exact_view().probe(["int80"]).expect_same();
}

#[test]
fn foreign_syscall_abis_in_a_view() {
    Case::new("int80-x32-in-a-view")
        .exact_view()
        .viewos_args(["--hostname=probe-view"])
        .probe(["int80"])
        .differs(
            "int80.getpid",
            "ENOSYS",
            "viewos refuses i386 syscalls in any view that virtualizes something: its tables speak \
             x86_64 only, and passing them through would let a tracee bypass the view",
        )
        .expect_same();
}
