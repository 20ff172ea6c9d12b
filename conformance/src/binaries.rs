//! Where the binaries under test are: `$VIEWOS_BIN` / `$VIEWOS_PROBE`, else
//! the workspace's `target/release`, else `target/debug` (whichever is newer
//! when both exist, so a stale release build is not tested); and the extra
//! viewos options from `$VIEWOS_OPTS` (e.g. `--mechanism=ptrace`), so the
//! whole suite can run against each mechanism.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const BUILD_HINT: &str = "run `cargo build --release --workspace --bins` first";

/// The viewos binary. Panics with a build hint when it is missing.
pub fn viewos() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| locate("VIEWOS_BIN", "viewos"))
}

/// The viewos-probe binary. Panics with a build hint when it is missing.
pub fn probe() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| locate("VIEWOS_PROBE", "viewos-probe"))
}

/// Options placed before `--` in every viewos run: `$VIEWOS_OPTS`, split on whitespace.
pub fn viewos_options() -> &'static [String] {
    static OPTS: OnceLock<Vec<String>> = OnceLock::new();
    OPTS.get_or_init(|| {
        std::env::var("VIEWOS_OPTS")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect()
    })
}

fn locate(var: &str, name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(var) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "${var} is set to {} but no such file exists; {BUILD_HINT}",
            path.display()
        );
        return absolute(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let candidates = [
        target.join("release").join(name),
        target.join("debug").join(name),
    ];
    // Release is preferred, but not a stale one left behind by an older build.
    let newest = candidates
        .iter()
        .filter_map(|p| Some((std::fs::metadata(p).ok()?.modified().ok()?, p)))
        .reduce(|best, next| if next.0 > best.0 { next } else { best });
    match newest {
        Some((_, path)) => absolute(path.clone()),
        None => panic!(
            "{name} not found (looked at ${var}, {} and {}); {BUILD_HINT}",
            candidates[0].display(),
            candidates[1].display()
        ),
    }
}

fn absolute(path: PathBuf) -> PathBuf {
    std::fs::canonicalize(&path).unwrap_or(path)
}

/// The workspace root: this package lives one level below it.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("conformance/ has a parent")
        .to_path_buf()
}
