//! Tidy checks that keep the architecture invariants true (see ARCHITECTURE.md):
//! the pure crates under `crates/` have no unsafe code, no kernel-facing dependencies and no
//! hidden inputs (I/O, clocks, randomness, hash iteration order), and the code map names
//! every crate.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn pure_crates() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(workspace().join("crates")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.join("Cargo.toml").exists()).collect();
    v.sort();
    assert!(v.len() >= 3, "expected the pure crates under crates/: {v:?}");
    v
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn pure_crates_depend_on_nothing_that_touches_the_kernel() {
    for c in pure_crates() {
        let manifest = std::fs::read_to_string(c.join("Cargo.toml")).unwrap();
        let mut section = String::new();
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line.to_string();
                continue;
            }
            if section == "[dependencies]" || section.starts_with("[target") {
                let name = line.split(['=', '.', ' ']).next().unwrap_or("");
                assert!(!["nix", "libc", "socket2", "rustix"].contains(&name), "{}: depends on {name}", c.display());
            }
        }
    }
}

#[test]
fn pure_crates_forbid_unsafe_and_hidden_inputs() {
    const BANNED: &[&str] = &["std::fs", "std::net", "std::process", "std::env", "Instant::now", "SystemTime", "HashMap", "HashSet", "thread_rng", "unsafe "];
    for c in pure_crates() {
        let lib = std::fs::read_to_string(c.join("src/lib.rs")).unwrap();
        assert!(lib.contains("#![forbid(unsafe_code)]"), "{}: lib.rs lacks #![forbid(unsafe_code)]", c.display());
        let mut files = Vec::new();
        rust_files(&c.join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap();
                for b in BANNED {
                    assert!(!code.contains(b), "{}:{}: `{b}` in a pure crate: {line}", f.display(), i + 1);
                }
            }
        }
    }
}

#[test]
fn the_code_map_names_every_crate() {
    let arch = std::fs::read_to_string(workspace().join("ARCHITECTURE.md")).unwrap();
    let manifest = std::fs::read_to_string(workspace().join("Cargo.toml")).unwrap();
    for line in manifest.lines() {
        let line = line.trim().trim_end_matches(',');
        if let Some(member) = line.strip_prefix('"').and_then(|l| l.strip_suffix('"')) {
            assert!(arch.contains(&format!("`{member}/`")), "ARCHITECTURE.md's code map does not mention `{member}/`");
        }
    }
}
