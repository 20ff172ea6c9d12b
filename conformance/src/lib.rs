//! The conformance harness: each case runs natively and under viewos (as the
//! current user and, when root, as uid 65534), and the normalized outcomes
//! (exit status, stdout or the probe's fields, stderr, files) must match
//! except for differences the case declares and explains. The native outcome
//! is also snapshotted, so a change in the probe or the machine shows too.
//!
//! Adding a case is one call chain in `tests/<topic>.rs`:
//! `Case::new("name").probe(["scenario", ...]).expect_same()`, with
//! `.differs(key, viewos_value, why)` for a deliberate difference and
//! `.unstable(key)` for a machine-specific value; then record its snapshots
//! once, as root, with `INSTA_UPDATE=always cargo test -p viewos-conformance`.
//!
//! Binaries come from `$VIEWOS_BIN`/`$VIEWOS_PROBE` or the workspace target
//! directory; build them with `cargo build --release --workspace --bins`.
//! `$VIEWOS_OPTS` adds options to every viewos run (`--mechanism=ptrace`).

mod binaries;
mod case;
mod difference;
mod outcome;
mod run;
mod user;

pub use binaries::{probe, viewos, viewos_options, workspace_root};
pub use case::{Case, TMP};
pub use difference::{Difference, compare};
pub use outcome::{Outcome, Side, normalize, signal_name, status_text};
pub use run::{ENV, Finished, Invocation, Status, run};
pub use user::{User, is_root};
