//! The normalized outcome of one run: an ordered list of `key=value` fields
//! (status, the probe's own fields or raw stdout, stderr, files), with
//! run-specific paths replaced by placeholders so native and viewos runs,
//! and runs on different machines, compare equal.

use crate::run::{Finished, Status};

/// Ordered fields; keys are unique (repeats get a `#n` suffix).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    fields: Vec<(String, String)>,
}

/// Which side of the comparison a run is, since a signal means different
/// things: natively it is the command's death, under viewos it is viewos's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Native,
    Viewos,
}

impl Outcome {
    /// Builds the outcome of a run. `key_value` parses stdout as the probe's
    /// `key=value` lines; otherwise stdout is one text field.
    pub fn from_run(
        run: &Finished,
        side: Side,
        key_value: bool,
        placeholders: &[(String, &str)],
    ) -> Outcome {
        let mut outcome = Outcome::default();
        outcome.push("status", status_text(run.status, side));
        let stdout = normalize(&String::from_utf8_lossy(&run.stdout), placeholders);
        if key_value {
            for line in stdout.lines() {
                match line.split_once('=') {
                    Some((key, value)) => outcome.push(key, value),
                    None => outcome.push("stdout", line),
                }
            }
        } else {
            outcome.push("stdout", &stdout);
        }
        outcome.push(
            "stderr",
            normalize(&String::from_utf8_lossy(&run.stderr), placeholders),
        );
        if run.pipes_held {
            outcome.push("pipes_held_open", "true");
        }
        outcome
    }

    /// Appends a field, suffixing the key if it already exists.
    pub fn push(&mut self, key: &str, value: impl Into<String>) {
        let mut unique = key.to_string();
        let mut n = 1;
        while self.get(&unique).is_some() {
            n += 1;
            unique = format!("{key}#{n}");
        }
        self.fields.push((unique, value.into()));
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(k, _)| k.as_str())
    }

    /// One field per line; multi-line values as an indented block. Values of
    /// keys in `redact` become `<unstable>` (compared, but machine-specific).
    pub fn render(&self, redact: &[String]) -> String {
        let mut out = String::new();
        for (key, value) in &self.fields {
            let base = key.split('#').next().unwrap_or(key);
            if redact.iter().any(|r| r == base) {
                out.push_str(&format!("{key}=<unstable>\n"));
            } else if value.contains('\n') {
                out.push_str(&format!("{key}:\n"));
                for line in value.lines() {
                    out.push_str(&format!("  | {line}\n"));
                }
                if !value.ends_with('\n') {
                    out.push_str("  (no newline at end)\n");
                }
            } else {
                out.push_str(&format!("{key}={value}\n"));
            }
        }
        out
    }
}

/// A shell-like status: death by signal N reads as exit 128+N, which is
/// also what viewos exits with when its command dies by N.
pub fn status_text(status: Status, side: Side) -> String {
    match (status, side) {
        (Status::TimedOut, _) => "timed out (killed by the harness)".to_string(),
        (Status::Signaled(sig), Side::Viewos) => {
            format!("viewos itself died by {}", signal_name(sig))
        }
        (Status::Signaled(sig), Side::Native) => exit_text(128 + sig),
        (Status::Exited(code), _) => exit_text(code),
    }
}

fn exit_text(code: i32) -> String {
    match code {
        129..=192 => format!("exit {code} ({})", signal_name(code - 128)),
        _ => format!("exit {code}"),
    }
}

/// `SIGTERM`-style name, or `SIG<n>`.
pub fn signal_name(sig: i32) -> String {
    const NAMES: &[&str] = &[
        "", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV",
        "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
        "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    match NAMES.get(sig as usize) {
        Some(name) if !name.is_empty() => format!("SIG{name}"),
        _ => format!("SIG{sig}"),
    }
}

/// Replaces each path with its placeholder, longest path first so a path
/// inside another is not half-replaced.
pub fn normalize(text: &str, placeholders: &[(String, &str)]) -> String {
    let mut sorted: Vec<&(String, &str)> =
        placeholders.iter().filter(|(p, _)| !p.is_empty()).collect();
    sorted.sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
    sorted
        .iter()
        .fold(text.to_string(), |acc, (path, placeholder)| {
            acc.replace(path.as_str(), placeholder)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(status: Status, stdout: &str) -> Finished {
        Finished {
            status,
            stdout: stdout.into(),
            stderr: Vec::new(),
            pipes_held: false,
        }
    }

    #[test]
    fn signal_death_reads_like_a_shell_exit_code() {
        assert_eq!(
            status_text(Status::Signaled(15), Side::Native),
            "exit 143 (SIGTERM)"
        );
        assert_eq!(
            status_text(Status::Exited(143), Side::Viewos),
            "exit 143 (SIGTERM)"
        );
        assert_eq!(status_text(Status::Exited(255), Side::Viewos), "exit 255");
        assert_eq!(
            status_text(Status::Signaled(9), Side::Viewos),
            "viewos itself died by SIGKILL"
        );
    }

    #[test]
    fn probe_lines_become_fields_and_repeats_get_suffixes() {
        let run = finished(Status::Exited(0), "a=1\na=2\nb=x=y\n");
        let outcome = Outcome::from_run(&run, Side::Native, true, &[]);
        assert_eq!(outcome.get("a"), Some("1"));
        assert_eq!(outcome.get("a#2"), Some("2"));
        assert_eq!(outcome.get("b"), Some("x=y"));
    }

    #[test]
    fn longest_path_is_replaced_first() {
        let places = [
            ("/t".to_string(), "{tmp}"),
            ("/t/probe".to_string(), "{probe}"),
        ];
        assert_eq!(normalize("/t/probe in /t/x", &places), "{probe} in {tmp}/x");
    }

    #[test]
    fn unstable_values_are_redacted_and_blocks_indented() {
        let run = finished(Status::Exited(0), "one\ntwo\n");
        let mut outcome = Outcome::from_run(&run, Side::Native, false, &[]);
        outcome.push("hw", "0x1f");
        let text = outcome.render(&["hw".to_string()]);
        assert_eq!(
            text,
            "status=exit 0\nstdout:\n  | one\n  | two\nstderr=\nhw=<unstable>\n"
        );
    }
}
