//! `--stats`: how many syscalls were intercepted, by number and by decision.

use std::collections::BTreeMap;
use std::fmt::Write;

use viewos_abi::Sysno;

use crate::dispatch::DecisionKind;

const KINDS: [DecisionKind; N] = [DecisionKind::Pass, DecisionKind::Rewrite, DecisionKind::Emulate, DecisionKind::Block, DecisionKind::Perform];
const N: usize = 5;

/// Counters of intercepted calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    counts: BTreeMap<Sysno, [u64; N]>,
}

impl Stats {
    /// Counts one decided call.
    pub fn record(&mut self, nr: Sysno, kind: DecisionKind) {
        let row = self.counts.entry(nr).or_default();
        row[KINDS.iter().position(|&k| k == kind).expect("all kinds listed")] += 1;
    }

    /// Calls intercepted in all.
    pub fn total(&self) -> u64 {
        self.counts.values().flat_map(|r| r.iter()).sum()
    }

    /// Count for one call and decision.
    pub fn count(&self, nr: Sysno, kind: DecisionKind) -> u64 {
        self.counts.get(&nr).map_or(0, |r| r[KINDS.iter().position(|&k| k == kind).expect("all kinds listed")])
    }

    /// The table printed at exit.
    pub fn render(&self) -> String {
        let mut s = format!("viewos: {} syscalls intercepted\n", self.total());
        if self.counts.is_empty() {
            return s;
        }
        let _ = writeln!(s, "{:<20} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}", "syscall", "pass", "rewrite", "emulate", "block", "perform", "total");
        let mut rows: Vec<_> = self.counts.iter().collect();
        rows.sort_by(|a, b| b.1.iter().sum::<u64>().cmp(&a.1.iter().sum::<u64>()).then(a.0.cmp(b.0)));
        for (nr, r) in rows {
            let _ = writeln!(s, "{:<20} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}", nr.to_string(), r[0], r[1], r[2], r[3], r[4], r.iter().sum::<u64>());
        }
        let mut tot = [0u64; N];
        for r in self.counts.values() {
            for i in 0..N {
                tot[i] += r[i];
            }
        }
        let _ = writeln!(s, "{:<20} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}", "total", tot[0], tot[1], tot[2], tot[3], tot[4], self.total());
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders() {
        let mut s = Stats::default();
        s.record(Sysno(39), DecisionKind::Pass);
        s.record(Sysno(39), DecisionKind::Emulate);
        s.record(Sysno(257), DecisionKind::Pass);
        assert_eq!(s.total(), 3);
        assert_eq!(s.count(Sysno(39), DecisionKind::Emulate), 1);
        let r = s.render();
        assert!(r.starts_with("viewos: 3 syscalls intercepted\n"), "{r}");
        assert!(r.lines().nth(2).unwrap().starts_with("getpid "), "busiest first: {r}");
    }
}
