//! The cow table: work in a copy-on-write view of a directory, three ways side by side:
//! the kernel's overlayfs (the native reference: root, in a private mount namespace made by
//! `unshare -m`, so nothing leaks), `fuse-overlayfs` (FUSE, in user space) and
//! `viewos --cow DIR:STORE`. The lower tree is made once per run and only ever read; every
//! run gets a fresh upper layer (overlayfs's upper and work directories, viewos's store).
//!
//! Each run is one `sh -c`: the untimed setup (removal of the previous run's upper layer,
//! `sync`, the mount), then `viewos-workload shell 1 SCRIPT` with its cwd in the view, which
//! times the workload's own shell command from spawn to exit and prints `ns_per_op=`. So
//! neither the mount nor viewos's start-up is in the figure.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::report::Unit;

/// How the copy-on-write view is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    Overlayfs,
    FuseOverlayfs,
    Viewos,
}

impl Way {
    pub const ALL: [Way; 3] = [Way::Overlayfs, Way::FuseOverlayfs, Way::Viewos];

    pub fn name(self) -> &'static str {
        match self {
            Way::Overlayfs => "overlayfs",
            Way::FuseOverlayfs => "fuse-overlayfs",
            Way::Viewos => "viewos --cow",
        }
    }

    /// The directory of this way's runs (upper layer, work directory, mount point, store).
    fn run_dir(self, work: &Path) -> PathBuf {
        work.join(match self {
            Way::Overlayfs => "run-overlayfs",
            Way::FuseOverlayfs => "run-fuse-overlayfs",
            Way::Viewos => "run-viewos",
        })
    }
}

/// Tree sizes: the full run, or `--quick`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// The git repository: directories, files per directory.
    pub repo_dirs: u32,
    pub repo_per_dir: u32,
    /// C files of the make project, `main.c` included.
    pub c_files: u32,
    /// The tree `rm -rf` removes: directories, files per directory.
    pub rm_dirs: u32,
    pub rm_per_dir: u32,
    /// The tree archived for `tar x`.
    pub tar_src: &'static str,
}

impl Sizes {
    pub fn new(quick: bool) -> Sizes {
        if quick {
            Sizes { repo_dirs: 20, repo_per_dir: 25, c_files: 20, rm_dirs: 20, rm_per_dir: 100, tar_src: "/usr/include/linux" }
        } else {
            Sizes { repo_dirs: 200, repo_per_dir: 25, c_files: 200, rm_dirs: 200, rm_per_dir: 100, tar_src: "/usr/include" }
        }
    }

    pub fn repo_files(&self) -> u32 {
        self.repo_dirs * self.repo_per_dir
    }

    /// Files the other branch differs in: every tenth file; of those, every tenth is removed
    /// on that branch and the others are changed.
    pub fn differ(&self) -> (u32, u32) {
        let n = self.repo_files();
        let removed = n.div_ceil(100);
        (n.div_ceil(10) - removed, removed)
    }

    pub fn rm_files(&self) -> u32 {
        self.rm_dirs * self.rm_per_dir
    }
}

/// `5000` → `5,000`.
pub fn thousands(n: u32) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A program a step needs besides the shell (the row is skipped without it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    Git,
    /// `cc` and `make`.
    Cc,
}

/// One measured step: `script` run by `sh -c` with its cwd at `subdir` of the view's root.
#[derive(Clone, Debug)]
pub struct Step {
    pub name: &'static str,
    pub label: String,
    pub unit: Unit,
    pub subdir: &'static str,
    pub script: String,
    pub needs: Needs,
}

/// The lower tree (read-only in every column): `repo/` (the git repository, branch `main`
/// checked out), `csrc/` (the C project) and `tree/` (what `rm -rf` removes).
pub fn lower(work: &Path) -> PathBuf {
    work.join("lower")
}

/// The archive `tar x` extracts, outside the lower tree.
pub fn tarball(work: &Path) -> PathBuf {
    work.join("src.tar")
}

pub fn steps(work: &Path, s: &Sizes) -> Vec<Step> {
    let (changed, removed) = s.differ();
    vec![
        Step {
            name: "cow-git-status",
            label: format!("`git status`, repository of {} files in {} dirs, ms", thousands(s.repo_files()), s.repo_dirs),
            unit: Unit::Ms,
            subdir: "repo",
            script: "git status >/dev/null".into(),
            needs: Needs::Git,
        },
        Step {
            name: "cow-git-checkout",
            label: format!(
                "`git checkout` of a branch differing in {} files ({} changed, {} removed), ms",
                thousands(changed + removed),
                changed,
                removed
            ),
            unit: Unit::Ms,
            subdir: "repo",
            script: "git checkout -q other".into(),
            needs: Needs::Git,
        },
        Step {
            name: "cow-make",
            label: format!("`make -j2` of {} C files, s", s.c_files),
            unit: Unit::S,
            subdir: "csrc",
            script: "make -j2 >/dev/null".into(),
            needs: Needs::Cc,
        },
        Step {
            name: "cow-rm",
            label: format!("`rm -rf` of {} files in {} dirs, ms", thousands(s.rm_files()), s.rm_dirs),
            unit: Unit::Ms,
            subdir: "",
            script: "rm -rf tree".into(),
            needs: Needs::Nothing,
        },
        Step {
            name: "cow-tar-x",
            label: format!("`tar x` of {} into a new directory, ms", s.tar_src),
            unit: Unit::Ms,
            subdir: "",
            script: format!("mkdir x && tar xf {} -C x", quote(&tarball(work).display().to_string())),
            needs: Needs::Nothing,
        },
    ]
}

/// `s` single-quoted for `sh`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Writes the lower tree's files (the repository's are committed by [`git_script`]) and
/// returns the shell script that finishes the setup (run in `work`). Everything is
/// deterministic: the same sizes give the same files and the same commits.
pub fn write_lower(work: &Path, s: &Sizes, git: bool, cc: bool) -> Result<String, String> {
    let l = lower(work);
    let write = |p: PathBuf, text: String| std::fs::write(&p, text).map_err(|e| format!("writing {}: {e}", p.display()));
    let mkdir = |p: &Path| std::fs::create_dir_all(p).map_err(|e| format!("creating {}: {e}", p.display()));
    mkdir(&l)?;
    if git {
        for d in 0..s.repo_dirs {
            let dir = l.join("repo").join(format!("d{d}"));
            mkdir(&dir)?;
            for f in 0..s.repo_per_dir {
                let text: String = (0..8).map(|line| format!("file {d}/{f}, line {line}: some text to make it a few hundred bytes\n")).collect();
                write(dir.join(format!("f{f}.txt")), text)?;
            }
        }
    }
    if cc {
        let dir = l.join("csrc");
        mkdir(&dir)?;
        let mut main = String::from("#include <stdio.h>\n");
        let funcs = s.c_files.saturating_sub(1);
        for i in 0..funcs {
            write(
                dir.join(format!("f{i}.c")),
                format!(
                    "#include <stdio.h>\n#include <string.h>\n\nint f{i}(const char *s)\n{{\n    int h = {i};\n    for (size_t j = 0; j < strlen(s); j++)\n        h = h * 31 + s[j];\n    return h;\n}}\n"
                ),
            )?;
            main.push_str(&format!("int f{i}(const char *s);\n"));
        }
        main.push_str("\nint main(int argc, char **argv)\n{\n    int h = 0;\n    const char *s = argc > 1 ? argv[1] : \"x\";\n");
        for i in 0..funcs {
            main.push_str(&format!("    h ^= f{i}(s);\n"));
        }
        main.push_str("    printf(\"%d\\n\", h);\n    return 0;\n}\n");
        write(dir.join("main.c"), main)?;
        write(
            dir.join("Makefile"),
            "# Generated by viewos-compare (the cow table).\nCC ?= cc\nCFLAGS ?= -O1\nOBJS = $(patsubst %.c,%.o,$(sort $(wildcard *.c)))\n\nprog: $(OBJS)\n\t$(CC) $(CFLAGS) -o $@ $(OBJS)\n\n%.o: %.c\n\t$(CC) $(CFLAGS) -c -o $@ $<\n".into(),
        )?;
    }
    for d in 0..s.rm_dirs {
        let dir = l.join("tree").join(format!("d{d}"));
        mkdir(&dir)?;
        for f in 0..s.rm_per_dir {
            write(dir.join(format!("f{f}")), format!("{}\n", d * s.rm_per_dir + f))?;
        }
    }
    let src = Path::new(s.tar_src);
    let (parent, base) = (src.parent().unwrap_or(Path::new("/")), src.file_name().unwrap_or_default());
    let mut sh = format!(
        "set -e\ntar cf {} -C {} {}\n",
        quote(&tarball(work).display().to_string()),
        quote(&parent.display().to_string()),
        quote(&base.to_string_lossy())
    );
    if git {
        sh.push_str(&git_script(&l.join("repo"), s));
    }
    Ok(sh)
}

/// Commits the repository's files as branch `main`, makes branch `other` (every tenth file
/// changed or, every hundredth, removed), checks `main` out again, and sets every file's
/// mtime in the past and refreshes the index, so that `git status` finds nothing racy and
/// nothing to rewrite.
pub fn git_script(repo: &Path, s: &Sizes) -> String {
    format!(
        r#"cd {repo}
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
export GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z GIT_CONFIG_NOSYSTEM=1
git init -q .
git symbolic-ref HEAD refs/heads/main
git add -A
git -c commit.gpgsign=false commit -q -m base
git checkout -q -b other
k=0; d=0
while [ $d -lt {dirs} ]; do
  f=0
  while [ $f -lt {per} ]; do
    if [ $((k % 100)) -eq 0 ]; then rm d$d/f$f.txt
    elif [ $((k % 10)) -eq 0 ]; then echo changed on the other branch >> d$d/f$f.txt
    fi
    f=$((f + 1)); k=$((k + 1))
  done
  d=$((d + 1))
done
git add -A
git -c commit.gpgsign=false commit -q -m other
git checkout -q main
find . -path ./.git -prune -o -type f -exec touch -d @1577836800 {{}} +
git update-index -q --really-refresh
git status --porcelain >/dev/null
"#,
        repo = quote(&repo.display().to_string()),
        dirs = s.repo_dirs,
        per = s.repo_per_dir,
    )
}

/// The programs a run uses.
#[derive(Clone, Debug)]
pub struct Bins {
    pub workload: PathBuf,
    pub viewos: Option<PathBuf>,
    pub fuse_overlayfs: Option<PathBuf>,
    pub fusermount: Option<PathBuf>,
    /// Running as root: overlayfs is possible, and fuse-overlayfs runs in a private mount
    /// namespace too (unprivileged, it mounts through the setuid `fusermount`).
    pub root: bool,
}

/// The argv of one run of `script` with its cwd at `subdir` of the view, made `way`, or
/// `None` if that way is missing a program. The lower tree is `lower(work)`.
pub fn argv(way: Way, b: &Bins, work: &Path, subdir: &str, script: &str) -> Option<Vec<OsString>> {
    let q = |p: &Path| quote(&p.display().to_string());
    let l = lower(work);
    let r = way.run_dir(work);
    let (u, w, m) = (r.join("u"), r.join("w"), r.join("m"));
    let inner = format!("{} shell 1 {}", q(&b.workload), quote(script));
    let fresh = |dirs: &[&PathBuf]| {
        let list: Vec<String> = dirs.iter().map(|d| q(d)).collect();
        format!("rm -rf {}; mkdir -p {}; sync", q(&r), list.join(" "))
    };
    let sh = |s: String| -> Vec<OsString> { vec!["sh".into(), "-c".into(), s.into()] };
    let private = |s: String| -> Vec<OsString> {
        let mut v: Vec<OsString> = ["unshare", "-m", "--propagation", "private"].map(OsString::from).to_vec();
        v.extend(sh(s));
        v
    };
    match way {
        Way::Overlayfs => Some(private(format!(
            "set -e; {}\nmount -t overlay overlay -o lowerdir={},upperdir={},workdir={},redirect_dir=on {}\ncd {}\nexec {inner}",
            fresh(&[&u, &w, &m]),
            q(&l),
            q(&u),
            q(&w),
            q(&m),
            q(&m.join(subdir)),
        ))),
        Way::FuseOverlayfs => {
            let fuse = b.fuse_overlayfs.as_deref()?;
            let fusermount = b.fusermount.as_deref()?;
            // In the foreground (-f) and in the run's process group, so that a run killed at
            // its timeout takes the file system down with it.
            let s = format!(
                "set -e; {fusermount} -u -z {m} 2>/dev/null || true; {fresh}\n\
                 {fuse} -f -o lowerdir={l},upperdir={u},workdir={w} {m} &\n\
                 p=$!; i=0\n\
                 until mountpoint -q {m}; do\n  \
                   kill -0 $p 2>/dev/null || {{ echo 'fuse-overlayfs exited before mounting' >&2; exit 1; }}\n  \
                   i=$((i + 1)); [ $i -lt 2000 ] || {{ echo 'fuse-overlayfs did not mount in 20 s' >&2; exit 1; }}\n  \
                   sleep 0.01\n\
                 done\n\
                 ls {m} >/dev/null\n\
                 cd {cwd}\n\
                 st=0; {inner} || st=$?\n\
                 cd /; {fusermount} -u {m}; wait $p || true; exit $st",
                fusermount = q(fusermount),
                fuse = q(fuse),
                fresh = fresh(&[&u, &w, &m]),
                l = q(&l),
                u = q(&u),
                w = q(&w),
                m = q(&m),
                cwd = q(&m.join(subdir)),
            );
            Some(if b.root { private(s) } else { sh(s) })
        }
        Way::Viewos => {
            let viewos = b.viewos.as_deref()?;
            let store = r.join("store");
            Some(sh(format!(
                "set -e; {}\ncd {}\nexec {} --cow {} -- {inner}",
                fresh(&[&store]),
                q(&l.join(subdir)),
                q(viewos),
                quote(&format!("{}:{}", l.display(), store.display())),
            )))
        }
    }
}

/// A directory for the cow table: in `/dev/shm` (tmpfs) when there is one, so that the
/// disk's writeback does not drown what the three ways themselves cost; else under
/// `scratch`. The kernel's tmpfs has the extended attributes overlayfs needs in its upper layer.
pub fn dir_in(scratch: &Path) -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { shm.join(format!("viewos-bench-cow-{}", std::process::id())) } else { scratch.join("cow") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_the_labels() {
        let s = Sizes::new(false);
        assert_eq!((s.repo_files(), s.differ(), s.rm_files()), (5000, (450, 50), 20_000));
        let q = Sizes::new(true);
        assert_eq!((q.repo_files(), q.differ(), q.rm_files()), (500, (45, 5), 2000));
        assert_eq!(thousands(20_000), "20,000");
        assert_eq!(thousands(500), "500");
        assert_eq!(thousands(1_234_567), "1,234,567");
        let labels: Vec<String> = steps(Path::new("/w"), &s).into_iter().map(|s| s.label).collect();
        assert!(labels[0].contains("5,000 files in 200 dirs"), "{labels:?}");
        assert!(labels[1].contains("500 files (450 changed, 50 removed)"), "{labels:?}");
        assert!(labels[2].contains("200 C files"), "{labels:?}");
    }

    #[test]
    fn each_way_gets_a_fresh_upper_layer_and_its_cwd_in_the_view() {
        let b = Bins {
            workload: "/b/viewos-workload".into(),
            viewos: Some("/b/viewos".into()),
            fuse_overlayfs: Some("/usr/bin/fuse-overlayfs".into()),
            fusermount: Some("/usr/bin/fusermount".into()),
            root: true,
        };
        let s = |v: Vec<OsString>| v.into_iter().map(|a| a.into_string().unwrap()).collect::<Vec<_>>();
        let o = s(argv(Way::Overlayfs, &b, Path::new("/w"), "repo", "git status").unwrap());
        assert_eq!(o[..6], ["unshare", "-m", "--propagation", "private", "sh", "-c"]);
        assert!(o[6].contains("rm -rf '/w/run-overlayfs'; mkdir -p '/w/run-overlayfs/u' '/w/run-overlayfs/w'"), "{}", o[6]);
        assert!(o[6].contains("lowerdir='/w/lower',upperdir='/w/run-overlayfs/u',workdir='/w/run-overlayfs/w',redirect_dir=on '/w/run-overlayfs/m'"), "{}", o[6]);
        assert!(o[6].ends_with("cd '/w/run-overlayfs/m/repo'\nexec '/b/viewos-workload' shell 1 'git status'"), "{}", o[6]);
        let f = s(argv(Way::FuseOverlayfs, &b, Path::new("/w"), "", "rm -rf tree").unwrap());
        assert_eq!(f[0], "unshare");
        assert!(f[6].contains("'/usr/bin/fuse-overlayfs' -f -o lowerdir='/w/lower',upperdir="), "{}", f[6]);
        assert!(f[6].ends_with("'/usr/bin/fusermount' -u '/w/run-fuse-overlayfs/m'; wait $p || true; exit $st"), "{}", f[6]);
        let f = s(argv(Way::FuseOverlayfs, &Bins { root: false, ..b.clone() }, Path::new("/w"), "", "x").unwrap());
        assert_eq!(f[..2], ["sh", "-c"]);
        let v = s(argv(Way::Viewos, &b, Path::new("/w"), "csrc", "make").unwrap());
        assert_eq!(v[..2], ["sh", "-c"]);
        assert!(v[2].ends_with("cd '/w/lower/csrc'\nexec '/b/viewos' --cow '/w/lower:/w/run-viewos/store' -- '/b/viewos-workload' shell 1 'make'"), "{}", v[2]);
        assert!(argv(Way::Viewos, &Bins { viewos: None, ..b.clone() }, Path::new("/w"), "", "x").is_none());
        assert!(argv(Way::FuseOverlayfs, &Bins { fuse_overlayfs: None, ..b }, Path::new("/w"), "", "x").is_none());
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("a'b"), "'a'\\''b'");
    }
}
