//! A conformance case: one command, run natively and under viewos for each
//! user, with the outcomes diffed and the native one snapshotted.
//!
//! ```no_run
//! use viewos_conformance::Case;
//! Case::new("exit-code-3").probe(["exit", "3"]).expect_same();
//! ```

use crate::binaries;
use crate::difference::{Difference, compare};
use crate::outcome::{Outcome, Side};
use crate::run::{Invocation, run};
use crate::user::{User, is_root};
use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Stands for the run's scratch directory in arguments (and in outcomes).
pub const TMP: &str = "{tmp}";

/// How long a daemonized straggler gets to write its file in a native run.
const STRAGGLER_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct Case {
    name: String,
    program: OsString,
    args: Vec<String>,
    key_value: bool,
    stdin: Option<Vec<u8>>,
    differences: Vec<Difference>,
    unstable: Vec<String>,
    files: Vec<String>,
    timeout: Duration,
    viewos_args: Vec<String>,
    exact_view: bool,
}

impl Case {
    /// A case named `name` (also its snapshot name); give it a command with
    /// [`Case::probe`] or [`Case::cmd`].
    pub fn new(name: &str) -> Case {
        Case {
            name: name.to_string(),
            program: OsString::new(),
            args: Vec::new(),
            key_value: true,
            stdin: None,
            differences: Vec::new(),
            unstable: Vec::new(),
            files: Vec::new(),
            timeout: Duration::from_secs(20),
            viewos_args: Vec::new(),
            exact_view: false,
        }
    }

    /// Runs `program` with `args`; `{tmp}` in an argument becomes the run's
    /// scratch directory. The probe's stdout is parsed as `key=value` fields,
    /// any other program's stdout is compared as text.
    pub fn cmd<I, S>(mut self, program: impl AsRef<OsStr>, args: I) -> Case
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.program = program.as_ref().to_os_string();
        self.key_value = Path::new(&self.program) == binaries::probe();
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Runs the probe with `args` (shorthand for `.cmd(probe(), args)`).
    pub fn probe<I, S>(self, args: I) -> Case
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.cmd(binaries::probe(), args)
    }

    /// Feeds `bytes` to stdin (default: /dev/null).
    pub fn stdin(mut self, bytes: &[u8]) -> Case {
        self.stdin = Some(bytes.to_vec());
        self
    }

    /// Declares that `key` differs under viewos, where it must equal `viewos`,
    /// for the stated reason.
    pub fn differs(mut self, key: &str, viewos: &str, why: &str) -> Case {
        assert!(
            !why.trim().is_empty(),
            "case {}: a difference needs a reason",
            self.name
        );
        self.differences.push(Difference {
            key: key.into(),
            viewos: viewos.into(),
            why: why.into(),
        });
        self
    }

    /// Marks `key` as machine-specific: still compared between native and
    /// viewos, but kept out of the snapshot.
    pub fn unstable(mut self, key: &str) -> Case {
        self.unstable.push(key.into());
        self
    }

    /// Reports the content of `{tmp}/name` as field `file.name`. Under viewos it
    /// is read the moment viewos returns (viewos waits for every tracee);
    /// natively, stragglers get a few seconds to write it.
    pub fn file_written(mut self, name: &str) -> Case {
        self.files.push(name.into());
        self
    }

    /// Passes `args` to viewos (before `--`), after any from `$VIEWOS_OPTS`.
    pub fn viewos_args<I, S>(mut self, args: I) -> Case
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.viewos_args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The case is about the view's own configuration (whether a filter is installed, say):
    /// `$VIEWOS_OPTS` does not apply to it.
    pub fn exact_view(mut self) -> Case {
        self.exact_view = true;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Case {
        self.timeout = timeout;
        self
    }

    /// Runs the case for every user, natively and under viewos; asserts the
    /// native snapshots, then fails if any run under viewos differed.
    pub fn expect_same(self) {
        assert!(
            !self.program.is_empty(),
            "case {}: no command given",
            self.name
        );
        let viewos = binaries::viewos();
        let mut failures = Vec::new();
        let mut snapshots = Vec::new();
        for user in User::all() {
            let native = self.outcome(user, Side::Native, viewos);
            let traced = self.outcome(user, Side::Viewos, viewos);
            let problems = compare(&native, &traced, &self.differences);
            if !problems.is_empty() {
                failures.push(format!(
                    "case {} as {user}: viewos differs from native\n{}\n--- native outcome:\n{}--- viewos outcome:\n{}",
                    self.name,
                    problems.join("\n"),
                    native.render(&[]),
                    traced.render(&[]),
                ));
            }
            snapshots.push((user, native));
        }
        for failure in &failures {
            eprintln!("{failure}");
        }
        if is_root() {
            for (user, native) in &snapshots {
                self.assert_snapshot(*user, native);
            }
        } else {
            eprintln!(
                "conformance: case {}: snapshots are recorded as root only, not checked",
                self.name
            );
        }
        assert!(
            failures.is_empty(),
            "case {}: {} run(s) under viewos differ from native (diff above)",
            self.name,
            failures.len()
        );
    }

    fn assert_snapshot(&self, user: User, native: &Outcome) {
        let mut text = native.render(&self.unstable);
        for d in &self.differences {
            text.push_str(&format!(
                "# under viewos {}={} because {}\n",
                d.key, d.viewos, d.why
            ));
        }
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_path(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots"));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_omit_expression(true);
        settings.set_description(format!("native outcome of case {} as {user}", self.name));
        settings.bind(|| insta::assert_snapshot!(format!("{}@{user}", self.name), text));
    }

    fn outcome(&self, user: User, side: Side, viewos: &Path) -> Outcome {
        let tmp = scratch_dir(&self.name, user, side);
        let tmp_text = tmp.to_string_lossy().into_owned();
        let mut argv: Vec<OsString> = user.prefix().into_iter().map(OsString::from).collect();
        if side == Side::Viewos {
            argv.push(viewos.into());
            if !self.exact_view {
                argv.extend(binaries::viewos_options().iter().map(OsString::from));
            }
            argv.extend(self.viewos_args.iter().map(OsString::from));
            argv.push("--".into());
        }
        argv.push(self.program.clone());
        argv.extend(
            self.args
                .iter()
                .map(|a| OsString::from(a.replace(TMP, &tmp_text))),
        );
        let inv = Invocation {
            argv,
            cwd: tmp.clone(),
            stdin: self.stdin.clone(),
            timeout: self.timeout,
        };
        let finished = run(&inv);
        let placeholders = [
            (tmp_text.clone(), TMP),
            (binaries::probe().to_string_lossy().into_owned(), "{probe}"),
            (viewos.to_string_lossy().into_owned(), "{viewos}"),
        ];
        let mut outcome = Outcome::from_run(&finished, side, self.key_value, &placeholders);
        for name in &self.files {
            let wait = if side == Side::Native {
                STRAGGLER_WAIT
            } else {
                Duration::ZERO
            };
            outcome.push(
                &format!("file.{name}"),
                read_eventually(&tmp.join(name), wait),
            );
        }
        let _ = std::fs::remove_dir_all(&tmp);
        outcome
    }
}

/// A fresh world-writable (sticky) directory, unique per case, user and side,
/// so parallel tests and uid 65534 can both use it.
fn scratch_dir(case: &str, user: User, side: Side) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "viewos-conformance-{}-{case}-{user}-{}",
        std::process::id(),
        if side == Side::Native {
            "native"
        } else {
            "viewos"
        }
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777))
        .expect("chmod 1777 scratch dir");
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

fn read_eventually(path: &Path, wait: Duration) -> String {
    let deadline = Instant::now() + wait;
    loop {
        match std::fs::read_to_string(path) {
            // An empty file may be one the straggler has created but not yet written.
            Ok(text) if !text.is_empty() => return text,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(text) => return text,
            Err(e) => return format!("unreadable: {}", e.kind()),
        }
    }
}
