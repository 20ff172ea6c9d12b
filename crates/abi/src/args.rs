//! Raw syscall arguments: six registers, kept bit for bit.

/// An address in the guest's address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct GuestAddr(pub u64);

impl GuestAddr {
    /// The NULL pointer.
    pub const NULL: GuestAddr = GuestAddr(0);

    /// True for NULL.
    pub fn is_null(self) -> bool {
        self.0 == 0
    }
}

/// The six argument registers of a syscall, exactly as the guest set them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct SyscallArgs(pub [u64; 6]);

impl SyscallArgs {
    /// Argument `i` (0-based) as the raw register value.
    pub fn get(&self, i: usize) -> u64 {
        self.0[i]
    }

    /// Replaces argument `i`.
    pub fn set(&mut self, i: usize, v: u64) {
        self.0[i] = v;
    }
}
