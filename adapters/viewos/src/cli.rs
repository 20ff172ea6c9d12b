//! Command-line parsing (GNU style): options, then `--` or the first non-option, then the
//! command. Pure: returns what to do, or a one-line error for exit status 2.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

pub const USAGE: &str = "\
Usage: viewos [OPTIONS] [--] COMMAND [ARGS...]
       viewos demo
       viewos cow status STORE
       viewos cow commit [--dry-run] STORE

Run COMMAND in a view: a private, partial virtual machine at the system-call level.
Calls the view does not need are never stopped.

Options:
      --trace[=FILE]      print each intercepted system call and the decision taken
                          (to FILE, or to standard error)
      --stats             print how many calls were intercepted, by call and decision
      --intercept=LIST    intercept the listed calls (comma-separated names, or 'all')
                          and let them run unchanged: strace for chosen calls
      --hostname=NAME     the view has its own host name (uname, sethostname)
  -r, --root=DIR          DIR is the view's / (like chroot); /dev, /proc, /sys and /tmp
                          are bound through unless --bare-root
      --bare-root         with -r, bind nothing through
  -b, --bind=SRC[:DST]    show host path SRC at DST in the view (DST defaults to SRC)
      --hide=PATH         PATH and everything below it do not exist in the view
  -w, --cwd=DIR           start the command in DIR (a path in the view)
      --mount=tmpfs:DST[:OPTS]
                          an empty in-memory filesystem at DST, private to the view and
                          gone when it ends; OPTS: size=64M (k, m, g), mode=1777
      --cow=DIR[:STORE]   DIR (a path in the view) is writable copy-on-write: the real
                          DIR is never written, changes go to STORE (default: a fresh
                          directory under $XDG_STATE_HOME/viewos/cow, printed); run again
                          with the same STORE to see them; see 'viewos cow status|commit'
  -0, --fakeroot          the view's processes are root: ownership, permission bits and
                          device nodes are virtual (kept by viewos, not on disk)
      --uid=N, --gid=N    with fakeroot, be uid N / gid N instead of root
      --fakeroot-state=FILE
                          load fakeroot's ownership database from FILE (if it exists)
                          and save it there, atomically, when the view ends
      --mechanism=MECH    'hybrid' (default: seccomp user notification where it is
                          enough, ptrace where it is not) or 'ptrace' (always stop)
  -h, --help              print this help and exit
  -V, --version           print the version and exit

Exit status: COMMAND's own, 128+N if it died by signal N, 127 if it was not found,
126 if it could not be executed, 125 if viewos itself failed, 2 for a usage error.
";

/// Where trace lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceTo {
    Stderr,
    File(OsString),
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Args {
    pub trace: Option<TraceTo>,
    pub stats: bool,
    pub intercept: Vec<String>,
    pub hostname: Option<OsString>,
    pub root: Option<OsString>,
    pub bare_root: bool,
    pub binds: Vec<OsString>,
    pub hides: Vec<OsString>,
    /// `--mount` values, as given.
    pub mounts: Vec<OsString>,
    /// `--cow` values, as given.
    pub cows: Vec<OsString>,
    pub cwd: Option<OsString>,
    pub ptrace_only: bool,
    /// `-0` or any fakeroot option.
    pub fakeroot: bool,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub fakeroot_state: Option<OsString>,
    pub command: Vec<OsString>,
}

/// What the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Run(Args),
    Demo,
    /// `viewos cow status STORE`, `viewos cow commit [--dry-run] STORE`.
    Cow { commit: bool, dry_run: bool, store: OsString },
    Help,
    Version,
}

/// Options that take a value, with whether the value is optional.
const WITH_VALUE: &[(&str, bool)] = &[
    ("trace", true),
    ("intercept", false),
    ("hostname", false),
    ("mechanism", false),
    ("bind", false),
    ("root", false),
    ("hide", false),
    ("mount", false),
    ("cow", false),
    ("cwd", false),
    ("uid", false),
    ("gid", false),
    ("fakeroot-state", false),
];

/// Parses `args` (without the program name).
pub fn parse(args: &[OsString]) -> Result<Action, String> {
    if args.len() == 1 && args[0] == "demo" {
        return Ok(Action::Demo);
    }
    if args.first().is_some_and(|a| a == "cow") {
        let words: Vec<&std::ffi::OsStr> = args[1..].iter().map(OsString::as_os_str).collect();
        return match words.as_slice() {
            [w, store] if *w == "status" => Ok(Action::Cow { commit: false, dry_run: false, store: store.into() }),
            [w, store] if *w == "commit" => Ok(Action::Cow { commit: true, dry_run: false, store: store.into() }),
            [w, d, store] if *w == "commit" && *d == "--dry-run" => Ok(Action::Cow { commit: true, dry_run: true, store: store.into() }),
            _ => Err("usage: viewos cow status STORE | viewos cow commit [--dry-run] STORE".to_string()),
        };
    }
    let mut a = Args::default();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_bytes();
        i += 1;
        if arg == b"--" {
            break;
        }
        if !arg.starts_with(b"-") || arg == b"-" {
            i -= 1;
            break;
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let (name, inline) = match long.iter().position(|&b| b == b'=') {
                Some(eq) => (&long[..eq], Some(OsString::from(std::ffi::OsStr::from_bytes(&long[eq + 1..])))),
                None => (long, None),
            };
            let name = String::from_utf8_lossy(name).into_owned();
            let takes = WITH_VALUE.iter().find(|(n, _)| *n == name).map(|&(_, opt)| opt);
            let value = match (takes, inline) {
                (None, Some(_)) if ["stats", "help", "version", "bare-root", "fakeroot"].contains(&name.as_str()) => {
                    return Err(format!("option '--{name}' doesn't allow an argument"));
                }
                (Some(_), Some(v)) => Some(v),
                (Some(false), None) => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        Some(v.clone())
                    }
                    None => return Err(format!("option '--{name}' requires an argument")),
                },
                _ => None,
            };
            match name.as_str() {
                "help" => return Ok(Action::Help),
                "version" => return Ok(Action::Version),
                "stats" => a.stats = true,
                "bare-root" => a.bare_root = true,
                "root" => a.root = value,
                "trace" => a.trace = Some(value.map_or(TraceTo::Stderr, TraceTo::File)),
                "intercept" => {
                    let v = value.expect("required");
                    let list = v.to_str().ok_or("--intercept: not UTF-8")?;
                    a.intercept.extend(list.split(',').filter(|s| !s.is_empty()).map(str::to_string));
                }
                "hostname" => a.hostname = value,
                "bind" => a.binds.push(value.expect("required")),
                "hide" => a.hides.push(value.expect("required")),
                "mount" => a.mounts.push(value.expect("required")),
                "cow" => a.cows.push(value.expect("required")),
                "cwd" => a.cwd = value,
                "fakeroot" => a.fakeroot = true,
                "uid" | "gid" => {
                    let v = value.expect("required");
                    let n: u32 = v.to_str().and_then(|s| s.parse().ok()).filter(|&n| n != u32::MAX).ok_or_else(|| format!("--{name}: not a number: {}", v.to_string_lossy()))?;
                    if name == "uid" { a.uid = Some(n) } else { a.gid = Some(n) }
                    a.fakeroot = true;
                }
                "fakeroot-state" => {
                    a.fakeroot_state = value;
                    a.fakeroot = true;
                }
                "mechanism" => match value.as_deref().and_then(|v| v.to_str()) {
                    Some("hybrid") => a.ptrace_only = false,
                    Some("ptrace") => a.ptrace_only = true,
                    _ => return Err("--mechanism: expected 'hybrid' or 'ptrace'".to_string()),
                },
                _ => return Err(format!("unrecognized option '--{name}'")),
            }
            continue;
        }
        // Short options: -h and -V end parsing; -b and -w take a value, attached or next.
        match arg[1] {
            b'h' => return Ok(Action::Help),
            b'V' => return Ok(Action::Version),
            b'0' if arg.len() == 2 => a.fakeroot = true,
            c @ (b'b' | b'w' | b'r') => {
                let value = if arg.len() > 2 {
                    OsString::from(std::ffi::OsStr::from_bytes(&arg[2..]))
                } else {
                    let Some(v) = args.get(i) else {
                        return Err(format!("option requires an argument -- '{}'", c as char));
                    };
                    i += 1;
                    v.clone()
                };
                match c {
                    b'b' => a.binds.push(value),
                    b'r' => a.root = Some(value),
                    _ => a.cwd = Some(value),
                }
            }
            c => return Err(format!("invalid option -- '{}'", c as char)),
        }
    }
    a.command = args[i..].to_vec();
    if a.command.is_empty() {
        return Err("missing command".to_string());
    }
    Ok(Action::Run(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[&str]) -> Result<Action, String> {
        parse(&s.iter().map(OsString::from).collect::<Vec<_>>())
    }

    fn run(s: &[&str]) -> Args {
        match p(s) {
            Ok(Action::Run(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn options_then_command() {
        let a = run(&["--stats", "--trace=/tmp/t", "--intercept", "getpid,openat", "--", "ls", "-l"]);
        assert!(a.stats);
        assert_eq!(a.trace, Some(TraceTo::File("/tmp/t".into())));
        assert_eq!(a.intercept, vec!["getpid", "openat"]);
        assert_eq!(a.command, vec![OsString::from("ls"), "-l".into()]);
        let a = run(&["--trace", "ls", "--stats"]);
        assert_eq!(a.trace, Some(TraceTo::Stderr));
        assert!(!a.stats, "options after the command belong to the command");
        assert_eq!(run(&["--", "--stats"]).command, vec![OsString::from("--stats")]);
        assert!(run(&["--mechanism=ptrace", "true"]).ptrace_only);
        assert_eq!(run(&["--hostname", "h", "true"]).hostname, Some("h".into()));
        let a = run(&["-b", "/a:/b", "-b/c", "--bind=/d", "--hide", "/e", "-w", "/f", "true"]);
        assert_eq!(a.binds, vec![OsString::from("/a:/b"), "/c".into(), "/d".into()]);
        assert_eq!((a.hides, a.cwd), (vec![OsString::from("/e")], Some("/f".into())));
        assert_eq!(p(&["-b"]), Err("option requires an argument -- 'b'".into()));
        let a = run(&["-0", "--uid=5", "--gid", "6", "--fakeroot-state", "/s", "true"]);
        assert_eq!((a.fakeroot, a.uid, a.gid, a.fakeroot_state), (true, Some(5), Some(6), Some("/s".into())));
        assert!(run(&["--fakeroot", "true"]).fakeroot);
        assert_eq!(p(&["--uid=x", "true"]), Err("--uid: not a number: x".into()));
        let a = run(&["-r", "/rootfs", "--bare-root", "true"]);
        assert_eq!((a.root, a.bare_root), (Some("/rootfs".into()), true));
    }

    #[test]
    fn errors_are_one_line() {
        assert_eq!(p(&["--bogus", "ls"]), Err("unrecognized option '--bogus'".into()));
        assert_eq!(p(&["-x", "ls"]), Err("invalid option -- 'x'".into()));
        assert_eq!(p(&["--stats"]), Err("missing command".into()));
        assert_eq!(p(&[]), Err("missing command".into()));
        assert_eq!(p(&["--intercept"]), Err("option '--intercept' requires an argument".into()));
        assert_eq!(p(&["--stats=1", "ls"]), Err("option '--stats' doesn't allow an argument".into()));
        assert!(p(&["--mechanism=fast", "ls"]).is_err());
    }

    #[test]
    fn help_version_demo() {
        assert_eq!(p(&["--help"]), Ok(Action::Help));
        assert_eq!(p(&["-V"]), Ok(Action::Version));
        assert_eq!(p(&["demo"]), Ok(Action::Demo));
        assert_eq!(p(&["cow", "status", "/s"]), Ok(Action::Cow { commit: false, dry_run: false, store: "/s".into() }));
        assert_eq!(p(&["cow", "commit", "--dry-run", "/s"]), Ok(Action::Cow { commit: true, dry_run: true, store: "/s".into() }));
        assert!(p(&["cow", "frob", "/s"]).is_err());
        assert_eq!(run(&["--cow", "/a:/s", "--cow=/b", "true"]).cows, vec![OsString::from("/a:/s"), "/b".into()]);
        assert!(matches!(p(&["--", "demo"]), Ok(Action::Run(_))), "-- demo runs a program called demo");
        assert!(matches!(p(&["--stats", "demo"]), Ok(Action::Run(_))));
    }
}
