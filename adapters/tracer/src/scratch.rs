//! Per-thread scratch memory for rewritten arguments.
//!
//! A rewritten argument (a translated path, say) must live in guest memory, and no other
//! guest thread may change it between the monitor's write and the kernel's read. Each
//! thread that needs one gets its own private anonymous mapping, mapped *read-only* for
//! the guest: the monitor writes it through `/proc/TID/mem`, which ignores page
//! protection. Nothing else in the guest knows or uses the mapping.
//!
//! The mapping is created lazily, the first time a thread's call is rewritten, by running
//! an `mmap` in place of the trapped call and then re-running the trapped call:
//! 1. at the seccomp stop, save the registers and turn the call into `mmap(...)`;
//! 2. resume with `PTRACE_SYSCALL`; at the exit stop read the address;
//! 3. run `mseal` on the mapping the same way (PC backed up over the `syscall` instruction),
//!    so the guest cannot unmap, remap or `mprotect` it (Linux 6.10+; older kernels leave
//!    it unsealed);
//! 4. restore the registers with the PC backed up over the `syscall` instruction, so the
//!    original call runs again and is trapped again; the monitor then applies the decision
//!    it already took (it is not asked twice).

use std::io;

use viewos_core::{Errno, GuestAddr, Scratch, SyscallArgs, x86_64};

use crate::mem::ProcMem;
use crate::sys;

/// Size of each thread's scratch mapping: room for several `PATH_MAX` strings.
pub const SIZE: u64 = 16 * 4096;

const MMAP: u64 = 9;

/// Turns the stopped call into `mmap(NULL, SIZE, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS)`.
pub fn begin(tid: i32, saved: &libc::user_regs_struct) -> io::Result<()> {
    let mut r = *saved;
    r.orig_rax = MMAP;
    r.rdi = 0;
    r.rsi = SIZE;
    r.rdx = libc::PROT_READ as u64;
    r.r10 = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
    r.r8 = u64::MAX;
    r.r9 = 0;
    sys::set_regs(tid, &r)
}

/// At the injected mmap's exit stop: returns the mapping's address (or the error) and sets
/// the thread up to re-run its original call.
pub fn finish(tid: i32, saved: &libc::user_regs_struct) -> io::Result<Result<u64, Errno>> {
    let now = sys::get_regs(tid)?;
    let result = match Errno::from_ret(now.rax as i64) {
        Some(e) => Err(e),
        None => Ok(now.rax),
    };
    let mut r = *saved;
    r.rip -= x86_64::SYSCALL_INSN_LEN;
    r.rax = saved.orig_rax;
    sys::set_regs(tid, &r)?;
    Ok(result)
}

const MSEAL: u64 = 462;

/// At the injected mmap's exit stop, with the mapping at `addr`: runs `mseal(addr, SIZE, 0)`
/// next (Linux 6.10+), so the guest can neither unmap, remap nor `mprotect` its scratch
/// area to write into it while a rewritten call reads it. Resume with `PTRACE_SYSCALL`; two
/// syscall stops follow (its entry, then its exit, where [`finish`] restores the call).
pub fn seal(tid: i32, addr: u64) -> io::Result<()> {
    let mut r = sys::get_regs(tid)?;
    r.rip -= x86_64::SYSCALL_INSN_LEN;
    r.rax = MSEAL;
    r.orig_rax = MSEAL;
    r.rdi = addr;
    r.rsi = SIZE;
    r.rdx = 0;
    sys::set_regs(tid, &r)
}

/// Writes the blobs one after the other (16-byte aligned) into the scratch area at `base`
/// and points their arguments at them.
pub fn place(mem: &mut ProcMem, base: u64, blobs: &[Scratch], args: &mut SyscallArgs) -> Result<(), Errno> {
    let mut off = 0u64;
    for b in blobs {
        let len = b.data.len() as u64;
        if off + len > SIZE || b.arg >= 6 {
            return Err(Errno::ENAMETOOLONG);
        }
        let at = base + off;
        // Only a blob with pointers into itself needs a patched copy.
        let mut data = std::borrow::Cow::Borrowed(&b.data[..]);
        for &r in &b.relocs {
            let word = data.to_mut().get_mut(r..r + 8).ok_or(Errno::EFAULT)?;
            let v = u64::from_le_bytes((&*word).try_into().expect("8 bytes")) + at;
            word.copy_from_slice(&v.to_le_bytes());
        }
        mem.force_write(GuestAddr(at), &data).map_err(|_| Errno::EFAULT)?;
        args.set(b.arg, base + off);
        off = (off + len).next_multiple_of(16);
    }
    Ok(())
}

/// Loads the six argument registers from `args`.
pub fn set_args(r: &mut libc::user_regs_struct, args: &SyscallArgs) {
    let a = args.0;
    (r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9) = (a[0], a[1], a[2], a[3], a[4], a[5]);
}
