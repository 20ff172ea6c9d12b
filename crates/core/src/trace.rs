//! `--trace` lines, strace-style: `  0.001234 [1234] openat(AT_FDCWD, "/etc/hosts", 0x80000, 0) -> pass`.

use std::fmt::Write;

use viewos_abi::{Errno, Syscall};

use crate::dispatch::{Disposition, ExitFixup, Nanos};
use crate::mem::GuestMem;
use crate::process::Tid;

/// True if argument `i` of syscall `nr` is a C string: a path (per the ABI's path table) or
/// the content of a new symlink.
fn is_string_arg(nr: u32, i: usize) -> bool {
    use viewos_abi::x86_64::{nr, paths::path_args};
    path_args(nr).iter().any(|a| a.path == i) || (i == 0 && (nr == nr::SYMLINK || nr == nr::SYMLINKAT))
}
/// Longest string shown before `...`.
const MAX_SHOWN: usize = 256;
const AT_FDCWD: i32 = -100;

fn prefix(now: Nanos, tid: Tid) -> String {
    format!("{:>4}.{:06} [{}] ", now.0 / 1_000_000_000, (now.0 / 1000) % 1_000_000, tid.0)
}

/// Quotes bytes like strace does (printable ASCII as is, the rest escaped).
pub fn quote(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes.iter().take(MAX_SHOWN) {
        match b {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    s.push('"');
    if bytes.len() > MAX_SHOWN {
        s.push_str("...");
    }
    s
}

/// Renders a call with its arguments, reading string arguments from guest memory. Calls
/// without a typed view show their six registers, paths among them as strings.
pub fn render_call(call: &Syscall, mem: &mut dyn GuestMem) -> String {
    let args = call.args();
    let nr = call.sysno().0;
    let names = call.field_names();
    let count = if matches!(call, Syscall::Other(..)) { 6 } else { names.len() };
    let shown: Vec<String> = (0..count)
        .map(|i| {
            let raw = args.get(i);
            let name = names.get(i).copied().unwrap_or("");
            if is_string_arg(nr, i) {
                if raw == 0 {
                    return "NULL".to_string();
                }
                return match mem.read_cstr(viewos_abi::GuestAddr(raw), crate::mem::MAX_CSTR) {
                    Ok(Some(s)) => quote(&s),
                    Ok(None) => format!("{raw:#x} (too long)"),
                    Err(_) => format!("{raw:#x}"),
                };
            }
            if name.ends_with("fd") && raw as u32 as i32 == AT_FDCWD {
                return "AT_FDCWD".to_string();
            }
            if name.ends_with("fd") || matches!(name, "pid" | "tid" | "tgid" | "sig" | "status") {
                return (raw as u32 as i32).to_string();
            }
            format!("{raw:#x}")
        })
        .collect();
    format!("{}({})", call.sysno(), shown.join(", "))
}

fn result(r: Result<u64, Errno>) -> String {
    match r {
        Ok(v) => (v as i64).to_string(),
        Err(e) => format!("-1 {e}"),
    }
}

/// The line printed when a module chains another host op on a performed call's outcome.
pub fn then_line(now: Nanos, tid: Tid, op: &crate::hostop::HostOp, module: &str) -> String {
    let mut s = prefix(now, tid);
    let _ = write!(s, "  then {}", op.name());
    for p in op.paths() {
        let _ = write!(s, " {:?}", String::from_utf8_lossy(p));
    }
    let _ = write!(s, " [{module}]");
    s
}

/// The line printed when a call is decided.
pub fn enter_line(now: Nanos, tid: Tid, call: &Syscall, mem: &mut dyn GuestMem, module: &str, d: &Disposition) -> String {
    let mut s = prefix(now, tid);
    s.push_str(&render_call(call, mem));
    match d {
        Disposition::Pass { inspect } => {
            let _ = write!(s, " -> pass{}", if *inspect { " (inspect)" } else { "" });
        }
        Disposition::Rewrite { nr, args, .. } => {
            let _ = write!(s, " -> rewrite{}{:x?}", nr.map(|n| format!(" as {n}")).unwrap_or_default(), args.0);
        }
        Disposition::Emulate(r) => {
            let _ = write!(s, " = {} (emulated)", result(*r));
        }
        Disposition::Block => s.push_str(" -> block"),
        Disposition::Perform { op, .. } => {
            let _ = write!(s, " -> perform {}", op.name());
            for p in op.paths() {
                let _ = write!(s, " {:?}", String::from_utf8_lossy(p));
            }
        }
    }
    if module != "-" {
        let _ = write!(s, " [{module}]");
    }
    s
}

/// The line printed at an inspected call's exit.
pub fn exit_line(now: Nanos, tid: Tid, call: &Syscall, ret: i64, fix: ExitFixup) -> String {
    let real = match Errno::from_ret(ret) {
        Some(e) => format!("-1 {e}"),
        None => ret.to_string(),
    };
    let mut s = format!("{}{}(...) = {real}", prefix(now, tid), call.sysno());
    match fix {
        ExitFixup::SetReturn(r) => {
            let _ = write!(s, " -> {}", result(r));
        }
        ExitFixup::Restart => s.push_str(" -> restart"),
        ExitFixup::Keep => {}
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::FakeMem;
    use viewos_abi::{GuestAddr, Openat};

    #[test]
    fn renders_paths_and_dirfds() {
        let mut m = FakeMem::new();
        m.map_cstr(0x1000, b"/etc/ho\"sts\n");
        let c = Syscall::Openat(Openat::new(-100, GuestAddr(0x1000), 0x80000, 0));
        assert_eq!(render_call(&c, &mut m), r#"openat(AT_FDCWD, "/etc/ho\"sts\n", 0x80000, 0x0)"#);
        let line = enter_line(Nanos(1_500_000), Tid(7), &c, &mut m, "test", &Disposition::Emulate(Err(Errno::ENOENT)));
        assert_eq!(line, r#"   0.001500 [7] openat(AT_FDCWD, "/etc/ho\"sts\n", 0x80000, 0x0) = -1 ENOENT (emulated) [test]"#);
    }

    #[test]
    fn calls_without_arguments_show_none() {
        let c = Syscall::from_raw(viewos_abi::Sysno(viewos_abi::x86_64::nr::GETPID), viewos_abi::SyscallArgs([1, 2, 3, 4, 5, 6]));
        assert_eq!(render_call(&c, &mut FakeMem::new()), "getpid()");
    }

    #[test]
    fn untyped_calls_show_registers_and_their_paths() {
        let mut m = FakeMem::new();
        m.map_cstr(0x1000, b"/dev/null");
        let c = Syscall::from_raw(viewos_abi::Sysno(viewos_abi::x86_64::nr::MKNOD), viewos_abi::SyscallArgs([0x1000, 0o20644, 0x103, 0, 0, 0]));
        assert_eq!(render_call(&c, &mut m), r#"mknod("/dev/null", 0x21a4, 0x103, 0x0, 0x0, 0x0)"#);
    }

    #[test]
    fn unreadable_path_shows_the_address() {
        let c = Syscall::Openat(Openat::new(3, GuestAddr(0xdead), 0, 0));
        assert_eq!(render_call(&c, &mut FakeMem::new()), "openat(3, 0xdead, 0x0, 0x0)");
    }
}
