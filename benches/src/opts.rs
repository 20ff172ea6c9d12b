//! The command line of `viewos-compare`.

use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "usage: viewos-compare [OPTIONS]

Runs each workload natively, under viewos and under PRoot, R times each (interleaved), and
prints markdown tables of the medians on stdout. Progress goes to stderr.

options:
  --reps R          repetitions per workload and monitor (default 5; 1 with --quick)
  --only LIST       comma-separated workloads to run (see --list)
  --quick           fewer iterations and smaller trees, for smoke-testing
  --list            list the workload names and exit
  --viewos PATH     viewos binary (default: `viewos` next to this binary)
  --workload PATH   viewos-workload binary (default: next to this binary)
  --proot PATH      proot binary (default: `proot` on $PATH)
  --no-proot        leave PRoot out (its column shows n/a)
  --cproj DIR       the C project for the make workload (default: benches/cproj)
  --timeout SECS    kill a run after this long (default 300)
  --pin CPU         pin the harness and everything it runs to one CPU
  -h, --help        this text";

/// Parsed options.
#[derive(Clone, Debug)]
pub struct Opts {
    pub reps: usize,
    pub only: Option<Vec<String>>,
    pub quick: bool,
    pub list: bool,
    pub viewos: Option<PathBuf>,
    pub workload: Option<PathBuf>,
    pub proot: Option<PathBuf>,
    pub no_proot: bool,
    pub cproj: Option<PathBuf>,
    pub timeout: Duration,
    pub pin: Option<usize>,
}

/// `Ok(None)` means help was asked for.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        reps: 0,
        only: None,
        quick: false,
        list: false,
        viewos: None,
        workload: None,
        proot: None,
        no_proot: false,
        cproj: None,
        timeout: Duration::from_secs(300),
        pin: None,
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--quick" => o.quick = true,
            "--list" => o.list = true,
            "--no-proot" => o.no_proot = true,
            "--reps" => o.reps = number(&value("--reps")?, "--reps")?,
            "--only" => o.only = Some(value("--only")?.split(',').map(str::to_owned).collect()),
            "--viewos" => o.viewos = Some(value("--viewos")?.into()),
            "--workload" => o.workload = Some(value("--workload")?.into()),
            "--proot" => o.proot = Some(value("--proot")?.into()),
            "--cproj" => o.cproj = Some(value("--cproj")?.into()),
            "--timeout" => o.timeout = Duration::from_secs(number(&value("--timeout")?, "--timeout")? as u64),
            "--pin" => o.pin = Some(value("--pin")?.parse().map_err(|_| "--pin needs a CPU number".to_string())?),
            _ => return Err(format!("unknown argument {a:?}\n\n{USAGE}")),
        }
    }
    if o.reps == 0 {
        o.reps = if o.quick { 1 } else { 5 };
    }
    Ok(Some(o))
}

fn number(s: &str, name: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{name} needs a positive number, not {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Option<Opts>, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_quick() {
        let o = p(&[]).unwrap().unwrap();
        assert_eq!((o.reps, o.quick, o.only), (5, false, None));
        let o = p(&["--quick", "--only", "getpid,find"]).unwrap().unwrap();
        assert_eq!(o.reps, 1);
        assert_eq!(o.only.unwrap(), ["getpid", "find"]);
        assert_eq!(p(&["--quick", "--reps", "3"]).unwrap().unwrap().reps, 3);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(p(&["--reps", "0"]).is_err());
        assert!(p(&["--reps"]).is_err());
        assert!(p(&["--frobnicate"]).is_err());
        assert!(p(&["--help"]).unwrap().is_none());
    }
}
