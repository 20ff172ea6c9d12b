//! A monitor's memory: its resident set while many guests are alive at once.
//!
//! The monitor is the spawned process itself; its guests are all its descendants, found
//! by walking the parent links in `/proc/*/stat`.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// What the sampling saw.
#[derive(Clone, Debug, Default)]
pub struct Footprint {
    /// VmRSS at the first sample with at least one guest, KiB.
    pub rss_first_kib: u64,
    /// Largest VmRSS while at least `want` guests were alive, KiB (0 if never).
    pub rss_full_kib: u64,
    /// Most guests seen alive at once.
    pub max_guests: usize,
}

/// Runs `cmd`, sampling every 10 ms until it exits, and the tail of its stderr.
pub fn sample(mut cmd: Command, want: usize, timeout: Duration) -> io::Result<(Footprint, ExitStatus, String)> {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let mut err = child.stderr.take().expect("piped");
    let stderr = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let mut fp = Footprint::default();
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if start.elapsed() > timeout {
            // SAFETY: plain kill(2) of the group we created; the leader is unreaped.
            unsafe { libc::kill(-(pid as libc::pid_t), libc::SIGKILL) };
            break child.wait()?;
        }
        let guests = descendants(pid);
        if let Some(rss) = vm_rss_kib(pid) {
            if guests > 0 && fp.rss_first_kib == 0 {
                fp.rss_first_kib = rss;
            }
            if guests >= want {
                fp.rss_full_kib = fp.rss_full_kib.max(rss);
            }
        }
        fp.max_guests = fp.max_guests.max(guests);
        thread::sleep(Duration::from_millis(10));
    };
    let tail = stderr.join().unwrap_or_default();
    Ok((fp, status, tail))
}

/// `VmRSS` of `pid` in KiB.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&s)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The parent pid from a `/proc/PID/stat` line (the command name may contain spaces
/// and parentheses, so parse from the last `)`).
fn parse_ppid(stat: &str) -> Option<u32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// How many live processes descend from `root`.
pub fn descendants(root: u32) -> usize {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if let Some(ppid) = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().as_deref().and_then(parse_ppid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut stack = vec![root];
    let mut n = 0;
    while let Some(p) = stack.pop() {
        if let Some(kids) = children.get(&p) {
            n += kids.len();
            stack.extend(kids);
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_parse() {
        assert_eq!(parse_vm_rss("Name:\tx\nVmRSS:\t   2048 kB\n"), Some(2048));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_ppid("123 (a) b) S 77 123 123 0"), Some(77));
    }
}
