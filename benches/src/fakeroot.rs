//! The fakeroot table: packaging workloads under Debian's fakeroot, PRoot's `-0` and
//! `viewos -0`, side by side, with the same steps run natively (no ownership faked) for
//! reference. Each step is timed from spawn to exit; its untimed preparation runs natively.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::report::Unit;

/// Who runs a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Faker {
    Native,
    Fakeroot,
    Proot,
    Viewos,
}

impl Faker {
    pub const ALL: [Faker; 4] = [Faker::Native, Faker::Fakeroot, Faker::Proot, Faker::Viewos];

    pub fn name(self) -> &'static str {
        match self {
            Faker::Native => "native",
            Faker::Fakeroot => "fakeroot",
            Faker::Proot => "proot -0",
            Faker::Viewos => "viewos -0",
        }
    }

    /// `sh -c script` run this way, or `None` if the program is missing.
    pub fn argv(self, fakeroot: Option<&Path>, proot: Option<&Path>, viewos: Option<&Path>, script: &str) -> Option<Vec<OsString>> {
        let mut v: Vec<OsString> = match self {
            Faker::Native => vec![],
            Faker::Fakeroot => vec![fakeroot?.into(), "--".into()],
            Faker::Proot => vec![proot?.into(), "-0".into()],
            Faker::Viewos => vec![viewos?.into(), "-0".into(), "--".into()],
        };
        v.extend(["sh".into(), "-c".into(), script.into()]);
        Some(v)
    }
}

/// One measured step.
#[derive(Clone, Debug)]
pub struct Step {
    pub name: &'static str,
    pub label: String,
    pub unit: Unit,
    /// Run natively before each timed run (and then `sync`, so that one run's writeback
    /// does not land in the next one's time).
    pub prepare: String,
    /// Timed.
    pub script: String,
}

/// What the steps work on, made once (natively) under `dir`: an archive of a source tree
/// (`/usr/include`, or its `linux/` part with `quick`), that tree extracted, and a package
/// tree of 5,000 files (500 with `quick`).
pub fn setup_script(dir: &Path, quick: bool) -> String {
    let d = dir.display();
    let (src, files) = if quick { ("/usr/include/linux", 500) } else { ("/usr/include", 5000) };
    format!(
        r#"set -e
cd {d}
tar cf src.tar -C "$(dirname {src})" "$(basename {src})"
mkdir -p tree && tar xf src.tar -C tree
mkdir -p pkg/DEBIAN
printf 'Package: bench\nVersion: 1.0\nArchitecture: all\nMaintainer: b <b@e>\nDescription: bench\n' > pkg/DEBIAN/control
i=0
while [ $i -lt {files} ]; do
  sub=pkg/usr/share/bench/d$((i / 100)); mkdir -p $sub; echo $i > $sub/f$i; i=$((i + 1))
done
"#
    )
}

pub fn steps(dir: &Path, quick: bool) -> Vec<Step> {
    let d = dir.display();
    let what = if quick { "/usr/include/linux" } else { "/usr/include" };
    let files = if quick { "500" } else { "5,000" };
    vec![
        Step {
            name: "fakeroot-tar-x",
            label: format!("`tar xpf` of {what} (as archived, root-owned), s"),
            unit: Unit::S,
            prepare: format!("rm -rf {d}/x && mkdir {d}/x"),
            script: format!("tar xpf {d}/src.tar -C {d}/x"),
        },
        Step {
            name: "fakeroot-chown",
            label: format!("`chown -R 1000:1000` of that tree, s"),
            unit: Unit::S,
            prepare: "true".to_string(),
            script: format!("chown -R 1000:1000 {d}/tree"),
        },
        Step {
            name: "fakeroot-tar-c",
            label: "`tar cf` of that tree to a file, s".to_string(),
            unit: Unit::S,
            prepare: format!("rm -f {d}/out.tar"),
            script: format!("tar cf {d}/out.tar -C {d}/tree ."),
        },
        Step {
            name: "fakeroot-dpkg-deb",
            label: format!("`dpkg-deb -Znone --build` of a package of {files} files, s"),
            unit: Unit::S,
            prepare: format!("rm -f {d}/out.deb"),
            script: format!("dpkg-deb -Znone --build {d}/pkg {d}/out.deb >/dev/null"),
        },
    ]
}

/// A directory for the fakeroot steps: in `/dev/shm` (tmpfs) when there is one, so that
/// the disk's writeback (seconds for `/usr/include`, and noisy) does not drown what the
/// tools themselves cost; else under `scratch`.
pub fn dir_in(scratch: &Path) -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.join(format!("viewos-bench-fakeroot-{}", std::process::id()))
    } else {
        scratch.join("fakeroot")
    }
}
