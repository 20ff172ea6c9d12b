//! The three ways of running a command: natively, under viewos, under PRoot.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Who runs the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Native,
    Viewos,
    Proot,
}

impl Tool {
    pub const ALL: [Tool; 3] = [Tool::Native, Tool::Viewos, Tool::Proot];

    pub fn name(self) -> &'static str {
        match self {
            Tool::Native => "native",
            Tool::Viewos => "viewos",
            Tool::Proot => "proot",
        }
    }
}

/// The binaries in use. A monitor that is `None` shows as "n/a".
#[derive(Clone, Debug)]
pub struct Tools {
    pub workload: PathBuf,
    pub viewos: Option<PathBuf>,
    pub proot: Option<PathBuf>,
}

impl Tools {
    /// Whether `tool` can run at all.
    pub fn has(&self, tool: Tool) -> bool {
        match tool {
            Tool::Native => true,
            Tool::Viewos => self.viewos.is_some(),
            Tool::Proot => self.proot.is_some(),
        }
    }

    /// `argv` run by `tool`; `viewos_opts` go before viewos's `--`. PRoot runs with no
    /// root change and no bindings: the guest sees the host file system, as in an empty
    /// viewos view.
    pub fn command(&self, tool: Tool, viewos_opts: &[&str], argv: &[OsString]) -> Option<Command> {
        let viewos_opts: Vec<OsString> = viewos_opts.iter().map(OsString::from).collect();
        self.command_in(tool, &viewos_opts, &[], argv)
    }

    /// As [`Tools::command`], with options for PRoot too (a view: `-b`, `-r`).
    pub fn command_in(&self, tool: Tool, viewos_opts: &[OsString], proot_opts: &[OsString], argv: &[OsString]) -> Option<Command> {
        let (prog, rest) = argv.split_first()?;
        let mut c = match tool {
            Tool::Native => Command::new(prog),
            Tool::Viewos => {
                let mut c = Command::new(self.viewos.as_ref()?);
                c.args(viewos_opts).arg("--").arg(prog);
                c
            }
            Tool::Proot => {
                let mut c = Command::new(self.proot.as_ref()?);
                c.args(proot_opts).arg(prog);
                c
            }
        };
        c.args(rest);
        Some(c)
    }
}

/// The first executable `name` on `$PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

/// A regular file with an execute bit.
pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// argv from string pieces.
pub fn argv<I, S>(parts: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    parts.into_iter().map(|s| s.as_ref().to_owned()).collect()
}
