//! The pure part of the harness: medians, the workload's own output format, number
//! formatting and the markdown tables.

use std::fmt::Write;

/// Median of the samples; the mean of the middle two for an even count.
pub fn median(samples: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 })
}

/// The value of the `ns_per_op=` line `viewos-workload` prints, if there is exactly one.
pub fn parse_ns_per_op(stdout: &str) -> Option<f64> {
    let mut found = stdout.lines().filter_map(|l| l.trim().strip_prefix("ns_per_op="));
    let v = found.next()?.parse::<f64>().ok()?;
    if found.next().is_some() || !v.is_finite() || v < 0.0 {
        return None;
    }
    Some(v)
}

/// The unit a row is shown in; values are kept in nanoseconds until display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Us,
    Ms,
    S,
}

impl Unit {
    fn ns(self) -> f64 {
        match self {
            Unit::Us => 1e3,
            Unit::Ms => 1e6,
            Unit::S => 1e9,
        }
    }

    /// Symbol used in row labels.
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Us => "µs",
            Unit::Ms => "ms",
            Unit::S => "s",
        }
    }

    /// `ns` in this unit, with about three significant digits.
    pub fn show(self, ns: f64) -> String {
        number(ns / self.ns())
    }
}

/// About three significant digits, without exponent notation.
pub fn number(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// `num / den` as a factor, e.g. `3.4×`.
pub fn ratio(num: f64, den: f64) -> String {
    if den <= 0.0 || !num.is_finite() {
        return "–".into();
    }
    let r = num / den;
    if r >= 10.0 { format!("{r:.0}×") } else { format!("{r:.1}×") }
}

/// One table cell's outcome.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Median in nanoseconds.
    Value(f64),
    /// The monitor is not available (not built, not installed, or an option it lacks).
    NotAvailable,
    /// The run failed; the reason is in the notes.
    Failed,
}

impl Cell {
    /// The cell made from the samples of one tool: failed wins, then no samples means n/a.
    pub fn from_samples(samples: &[f64], failed: bool) -> Cell {
        match (failed, median(samples)) {
            (true, _) => Cell::Failed,
            (false, Some(m)) => Cell::Value(m),
            (false, None) => Cell::NotAvailable,
        }
    }

    fn show(&self, unit: Unit) -> String {
        self.show_with(|ns| unit.show(ns))
    }

    /// The cell with its value (nanoseconds) shown by `f`.
    fn show_with(&self, f: impl Fn(f64) -> String) -> String {
        match self {
            Cell::Value(ns) => f(*ns),
            Cell::NotAvailable => "n/a".into(),
            Cell::Failed => "fail".into(),
        }
    }

    fn value(&self) -> Option<f64> {
        match self {
            Cell::Value(v) => Some(*v),
            _ => None,
        }
    }
}

/// One row of the main table: native, viewos, proot.
#[derive(Clone, Debug)]
pub struct Row {
    pub label: String,
    pub unit: Unit,
    pub native: Cell,
    pub viewos: Cell,
    pub proot: Cell,
}

fn ratio_cell(c: &Cell, native: &Cell) -> String {
    match (c.value(), native.value()) {
        (Some(v), Some(n)) => ratio(v, n),
        _ => "–".into(),
    }
}

/// The main table: workload | native | viewos | proot | viewos/native | proot/native.
pub fn main_table(rows: &[Row]) -> String {
    let mut s = String::from("| workload | native | viewos | proot | viewos/native | proot/native |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            r.label,
            r.native.show(r.unit),
            r.viewos.show(r.unit),
            r.proot.show(r.unit),
            ratio_cell(&r.viewos, &r.native),
            ratio_cell(&r.proot, &r.native),
        );
    }
    s
}

/// One row of the intercepted-calls table, all in µs per call.
#[derive(Clone, Debug)]
pub struct InterceptRow {
    pub label: String,
    pub native: Cell,
    pub monitored: Cell,
}

/// case | native | monitored | added per call.
pub fn intercept_table(rows: &[InterceptRow]) -> String {
    let mut s = String::from("| case | native µs/call | under viewos µs/call | added µs/call |\n");
    s.push_str("|---|---:|---:|---:|\n");
    for r in rows {
        let added = match (r.monitored.value(), r.native.value()) {
            (Some(m), Some(n)) => Unit::Us.show(m - n),
            _ => "n/a".into(),
        };
        let _ =
            writeln!(s, "| {} | {} | {} | {} |", r.label, r.native.show(Unit::Us), r.monitored.show(Unit::Us), added);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tmpfs_table_shows_throughput_and_times() {
        use crate::tmpfs::Show;
        let t = tmpfs_table(&[
            // 1 MiB in 1 ms native, 2 ms under viewos.
            TmpfsRow { label: "w".into(), show: Show::Throughput, native: Cell::Value(1e6), viewos: Cell::Value(2e6) },
            TmpfsRow { label: "c".into(), show: Show::Us, native: Cell::Value(12_000.0), viewos: Cell::Failed },
        ]);
        assert!(t.contains("| w | 1.05 | 0.524 | 2.0× |\n"), "{t}");
        assert!(t.ends_with("| c | 12.0 | fail | – |\n"), "{t}");
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
    }

    #[test]
    fn ns_per_op_line_is_parsed_strictly() {
        assert_eq!(parse_ns_per_op("ns_per_op=1234.5\n"), Some(1234.5));
        assert_eq!(parse_ns_per_op("noise\nns_per_op=7\n"), Some(7.0));
        assert_eq!(parse_ns_per_op("ns_per_op=1\nns_per_op=2\n"), None);
        assert_eq!(parse_ns_per_op("ns_per_op=x\n"), None);
        assert_eq!(parse_ns_per_op(""), None);
    }

    #[test]
    fn numbers_keep_about_three_digits() {
        assert_eq!(number(0.1412), "0.141");
        assert_eq!(number(7.06), "7.06");
        assert_eq!(number(41.14), "41.1");
        assert_eq!(number(84354.0), "84354");
        assert_eq!(ratio(91.0, 27.0), "3.4×");
        assert_eq!(ratio(2100.0, 100.0), "21×");
        assert_eq!(ratio(1.0, 0.0), "–");
    }

    #[test]
    fn main_table_shows_units_ratios_and_missing_cells() {
        let rows = [Row {
            label: "getpid (µs/call)".into(),
            unit: Unit::Us,
            native: Cell::Value(140.0),
            viewos: Cell::Failed,
            proot: Cell::Value(78_234.0),
        }];
        let t = main_table(&rows);
        assert!(t.ends_with("| getpid (µs/call) | 0.140 | fail | 78.2 | – | 559× |\n"), "{t}");
        let i = intercept_table(&[InterceptRow {
            label: "x".into(),
            native: Cell::Value(140.0),
            monitored: Cell::NotAvailable,
        }]);
        assert!(i.ends_with("| x | 0.140 | n/a | n/a |\n"), "{i}");
    }
}

/// One row of the fakeroot table.
#[derive(Clone, Debug)]
pub struct FakerootRow {
    pub label: String,
    pub unit: Unit,
    pub native: Cell,
    pub fakeroot: Cell,
    pub proot: Cell,
    pub viewos: Cell,
}

/// The fakeroot table: step | native | fakeroot | proot -0 | viewos -0 | fakeroot/viewos |
/// proot/viewos (how many times faster viewos is).
pub fn fakeroot_table(rows: &[FakerootRow]) -> String {
    let mut s = String::from("| step | native (nothing faked) | Debian fakeroot | proot -0 | viewos -0 | fakeroot/viewos | proot/viewos |\n");
    s.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.label,
            r.native.show(r.unit),
            r.fakeroot.show(r.unit),
            r.proot.show(r.unit),
            r.viewos.show(r.unit),
            ratio_cell(&r.fakeroot, &r.viewos),
            ratio_cell(&r.proot, &r.viewos),
        );
    }
    s
}

/// One row of the tmpfs table: the kernel's tmpfs and viewos's, nanoseconds per operation.
#[derive(Clone, Debug)]
pub struct TmpfsRow {
    pub label: String,
    pub show: crate::tmpfs::Show,
    pub native: Cell,
    pub viewos: Cell,
}

/// The tmpfs table: workload | kernel tmpfs | viewos --mount tmpfs | viewos/native time.
pub fn tmpfs_table(rows: &[TmpfsRow]) -> String {
    let mut s = String::from("| workload | kernel tmpfs (/dev/shm) | viewos --mount tmpfs | viewos/native time |\n|---|---:|---:|---:|\n");
    for r in rows {
        let show = |c: &Cell| c.show_with(|ns| number(crate::tmpfs::figure(r.show, ns)));
        let _ = writeln!(s, "| {} | {} | {} | {} |", r.label, show(&r.native), show(&r.viewos), ratio_cell(&r.viewos, &r.native));
    }
    s
}

/// One row of the cow table: the same step in a copy-on-write view made three ways.
#[derive(Clone, Debug)]
pub struct CowRow {
    pub label: String,
    pub unit: Unit,
    pub overlayfs: Cell,
    pub fuse_overlayfs: Cell,
    pub viewos: Cell,
}

/// The cow table: workload | kernel overlayfs | fuse-overlayfs | viewos --cow |
/// viewos/overlayfs | viewos/fuse-overlayfs. `why_na` says, per column (in that order), why
/// a whole column could not run (not installed, needs root): its n/a cells show the reason.
pub fn cow_table(rows: &[CowRow], why_na: &[Option<String>; 3]) -> String {
    let mut s = String::from(
        "| workload | kernel overlayfs | fuse-overlayfs | viewos --cow | viewos/overlayfs | viewos/fuse-overlayfs |\n",
    );
    s.push_str("|---|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let show = |c: &Cell, why: &Option<String>| match (c, why) {
            (Cell::NotAvailable, Some(w)) => format!("n/a ({w})"),
            _ => c.show(r.unit),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} |",
            r.label,
            show(&r.overlayfs, &why_na[0]),
            show(&r.fuse_overlayfs, &why_na[1]),
            show(&r.viewos, &why_na[2]),
            ratio_cell(&r.viewos, &r.overlayfs),
            ratio_cell(&r.viewos, &r.fuse_overlayfs),
        );
    }
    s
}

#[cfg(test)]
mod cow_tests {
    use super::*;

    #[test]
    fn the_cow_table_shows_ratios_against_both_references_and_why_a_column_is_missing() {
        let t = cow_table(
            &[
                CowRow {
                    label: "git status, ms".into(),
                    unit: Unit::Ms,
                    overlayfs: Cell::Value(20e6),
                    fuse_overlayfs: Cell::Value(60e6),
                    viewos: Cell::Value(30e6),
                },
                CowRow {
                    label: "rm, ms".into(),
                    unit: Unit::Ms,
                    overlayfs: Cell::Value(100e6),
                    fuse_overlayfs: Cell::NotAvailable,
                    viewos: Cell::Failed,
                },
            ],
            &[None, Some("not installed".into()), None],
        );
        assert!(t.contains("| git status, ms | 20.0 | 60.0 | 30.0 | 1.5× | 0.5× |\n"), "{t}");
        assert!(t.ends_with("| rm, ms | 100 | n/a (not installed) | fail | – | – |\n"), "{t}");
    }
}
