//! What the kernel would look up by itself during `execve`, outside the view: the ELF
//! program interpreter (`PT_INTERP`) and a script's `#!` interpreter. When the view maps
//! those paths elsewhere (`-r`, or a bind over `/lib64`), the monitor runs the interpreter
//! itself: the call becomes `execve(interpreter, [interpreter, ..., program, args...])`, with
//! every path the guest's, looked up in the view.

/// What running a file involves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interp {
    /// A static ELF, or anything the kernel decides about alone.
    None,
    /// A dynamic ELF: its `PT_INTERP` path.
    Elf(Vec<u8>),
    /// A `#!` script: the interpreter and its optional argument.
    Script(Vec<u8>, Option<Vec<u8>>),
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the head of a file (its first bytes) for what `execve` would do with it. Never
/// fails: a head that is not understood is [`Interp::None`] (the kernel then decides).
pub fn interp_of(head: &[u8]) -> Interp {
    if let Some(rest) = head.strip_prefix(b"#!") {
        // The kernel reads at most BINPRM_BUF_SIZE (256) bytes of the line.
        let line = &rest[..rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len()).min(254)];
        let line: Vec<u8> = line.iter().copied().skip_while(|b| *b == b' ' || *b == b'\t').collect();
        let end = line.iter().position(|&b| b == b' ' || b == b'\t').unwrap_or(line.len());
        let (name, arg) = line.split_at(end);
        if name.is_empty() {
            return Interp::None;
        }
        let arg: Vec<u8> = arg.iter().copied().skip_while(|b| *b == b' ' || *b == b'\t').collect();
        let arg = arg.iter().rposition(|&b| b != b' ' && b != b'\t').map(|e| arg[..=e].to_vec());
        return Interp::Script(name.to_vec(), arg);
    }
    elf_interp(head).map_or(Interp::None, Interp::Elf)
}

/// `PT_INTERP` of a 64-bit little-endian ELF whose program headers lie within `head`.
fn elf_interp(head: &[u8]) -> Option<Vec<u8>> {
    if head.get(..5)? != b"\x7fELF\x02" || head.get(5)? != &1 {
        return None;
    }
    let (phoff, phentsize, phnum) = (u64_at(head, 0x20)? as usize, u16_at(head, 0x36)? as usize, u16_at(head, 0x38)? as usize);
    for i in 0..phnum.min(64) {
        let ph = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32_at(head, ph)? == 3 {
            let (off, size) = (u64_at(head, ph + 8)? as usize, u64_at(head, ph + 32)? as usize);
            let bytes = head.get(off..off.checked_add(size)?)?;
            return Some(bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())].to_vec());
        }
    }
    None
}

/// A new argv in one scratch blob: the pointer array, then the new strings. `Own(bytes)`
/// entries are strings placed in the blob (their pointers relocated); `Guest(addr)` entries
/// point at the guest's own strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    Own(Vec<u8>),
    Guest(u64),
}

/// The blob and its relocations for `argv`.
pub fn argv_blob(argv: &[Arg]) -> (Vec<u8>, Vec<usize>) {
    let table = (argv.len() + 1) * 8;
    let mut data = vec![0u8; table];
    let mut relocs = Vec::new();
    for (i, a) in argv.iter().enumerate() {
        let value = match a {
            Arg::Guest(addr) => *addr,
            Arg::Own(s) => {
                let at = data.len() as u64;
                data.extend_from_slice(s);
                data.push(0);
                relocs.push(i * 8);
                at
            }
        };
        data[i * 8..i * 8 + 8].copy_from_slice(&value.to_le_bytes());
    }
    (data, relocs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebang_lines_split_like_the_kernel() {
        assert_eq!(interp_of(b"#!/bin/sh\necho"), Interp::Script(b"/bin/sh".to_vec(), None));
        assert_eq!(interp_of(b"#! /usr/bin/env  python3 -u \n"), Interp::Script(b"/usr/bin/env".to_vec(), Some(b"python3 -u".to_vec())));
        assert_eq!(interp_of(b"#!\n"), Interp::None);
        assert_eq!(interp_of(b"plain text"), Interp::None);
    }

    #[test]
    fn elf_interpreter_is_found_and_garbage_is_not_a_panic() {
        let mut elf = vec![0u8; 0x200];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        elf[0x40..0x44].copy_from_slice(&3u32.to_le_bytes());
        elf[0x48..0x50].copy_from_slice(&0x100u64.to_le_bytes());
        elf[0x60..0x68].copy_from_slice(&11u64.to_le_bytes());
        elf[0x100..0x10b].copy_from_slice(b"/lib/ld.so\0");
        assert_eq!(interp_of(&elf), Interp::Elf(b"/lib/ld.so".to_vec()));
        elf[0x48..0x50].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(interp_of(&elf), Interp::None);
        for n in 0..80 {
            let _ = interp_of(&elf[..n]);
        }
    }

    #[test]
    fn argv_blobs_mix_own_strings_and_guest_pointers() {
        let (data, relocs) = argv_blob(&[Arg::Own(b"/ld.so".to_vec()), Arg::Guest(0x7000)]);
        assert_eq!(relocs, vec![0]);
        assert_eq!(u64::from_le_bytes(data[..8].try_into().unwrap()), 24);
        assert_eq!(u64::from_le_bytes(data[8..16].try_into().unwrap()), 0x7000);
        assert_eq!(u64::from_le_bytes(data[16..24].try_into().unwrap()), 0, "NULL-terminated");
        assert_eq!(&data[24..], b"/ld.so\0");
    }
}
