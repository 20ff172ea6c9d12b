//! Building the path view from `-b`, `--hide` and `-w`, with every error reported before
//! anything runs.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use viewos_core::modules::{PathView, fakeroot_path_calls};
use viewos_path::{Flags, Found, GuestPath, HostPath, Kind, View, resolve};
use viewos_tracer::HostFs;

/// A path view and where the command starts in it: (host directory, guest path).
pub struct Built {
    pub module: PathView,
    pub cwd: (Vec<u8>, Vec<u8>),
}

fn guest_path(what: &str, p: &OsStr) -> Result<GuestPath, String> {
    let b = p.as_bytes();
    if !b.starts_with(b"/") {
        return Err(format!("{what} {}: must be an absolute path", p.to_string_lossy()));
    }
    // Accept the usual spellings (`/a//b/`, `/a/./b`) but not `..`, which has no meaning
    // before the view exists.
    let mut canon = Vec::new();
    for c in b.split(|&c| c == b'/').filter(|c| !c.is_empty() && *c != b".") {
        if c == b".." {
            return Err(format!("{what} {}: must not contain '..'", p.to_string_lossy()));
        }
        canon.push(b'/');
        canon.extend_from_slice(c);
    }
    if canon.is_empty() {
        canon.push(b'/');
    }
    GuestPath::new(canon).map_err(|e| format!("{what} {}: {e}", p.to_string_lossy()))
}

/// `--mount TYPE:[SRC:]DST[:OPTS]`: where, and the filesystem's options. Only `tmpfs`
/// exists yet; its SRC (any name, as mount(8)'s) may be left out.
pub fn parse_mount(m: &OsStr) -> Result<(GuestPath, viewos_tracer::vfs::TmpfsOptions), String> {
    let text = m.to_str().ok_or_else(|| format!("--mount {}: not UTF-8", m.to_string_lossy()))?;
    let mut fields: Vec<&str> = text.splitn(4, ':').collect();
    let kind = fields.remove(0);
    if kind != "tmpfs" {
        return Err(format!("--mount {text}: unknown filesystem type '{kind}' (tmpfs)"));
    }
    // tmpfs:SRC:/DST[:OPTS] or tmpfs:/DST[:OPTS]: the destination is the first absolute field.
    if fields.len() >= 2 && fields[1].starts_with('/') {
        fields.remove(0);
    }
    let dst = fields.first().filter(|d| !d.is_empty()).ok_or_else(|| format!("--mount {text}: missing destination"))?;
    let dst = guest_path("--mount destination", OsStr::new(dst))?;
    let opts = fields[1..].join(":");
    let opts = viewos_tracer::vfs::TmpfsOptions::parse(&opts).map_err(|e| format!("--mount {text}: {e}"))?;
    Ok((dst, opts))
}

/// What the command line asks of the path view.
pub struct Request<'a> {
    pub root: Option<&'a OsStr>,
    pub bare_root: bool,
    pub binds: &'a [OsString],
    pub hides: &'a [OsString],
    pub mounts: &'a [OsString],
    pub cows: &'a [OsString],
    pub cwd: Option<&'a OsStr>,
    /// Fakeroot (with the view's first uid) needs the monitor to make the calls it
    /// changes, even in the identity view.
    pub fakeroot: Option<u32>,
}

/// Host directories bound through into a `-r` root unless `--bare-root`.
const THROUGH: [&str; 4] = ["/dev", "/proc", "/sys", "/tmp"];

/// Builds the view, or says why it cannot be built. `None` when no option asks for one.
pub fn build(req: Request<'_>) -> Result<Option<Built>, String> {
    let Request { root, bare_root, binds, hides, mounts, cows, cwd, fakeroot } = req;
    if root.is_none() && binds.is_empty() && hides.is_empty() && mounts.is_empty() && cows.is_empty() && cwd.is_none() {
        if let Some(uid) = fakeroot {
            let module = PathView::only(View::new(HostPath::root()), Box::new(HostFs), &fakeroot_path_calls(uid));
            let here = std::env::current_dir().map(|p| p.into_os_string().into_vec()).unwrap_or_else(|_| b"/".to_vec());
            return Ok(Some(Built { module, cwd: (here.clone(), here) }));
        }
        return Ok(None);
    }
    let mut view = match root {
        None => View::new(HostPath::root()),
        Some(r) => {
            let real = std::fs::canonicalize(r).map_err(|e| format!("--root {}: {e}", r.to_string_lossy()))?;
            if !real.is_dir() {
                return Err(format!("--root {}: not a directory", r.to_string_lossy()));
            }
            let host = HostPath::new(real.into_os_string().into_vec()).map_err(|e| format!("--root {}: {e}", r.to_string_lossy()))?;
            let mut v = View::new(host);
            if !bare_root {
                for d in THROUGH.iter().filter(|d| std::path::Path::new(d).is_dir()) {
                    let p = HostPath::new(d.as_bytes().to_vec()).expect("canonical");
                    let g = GuestPath::new(d.as_bytes().to_vec()).expect("canonical");
                    v.bind(p, g).map_err(|e| format!("--root: binding {d}: {e:?}"))?;
                }
            }
            v
        }
    };
    for b in binds {
        let bytes = b.as_bytes();
        let (src, dst) = match bytes.iter().position(|&c| c == b':') {
            Some(i) => (OsStr::from_bytes(&bytes[..i]), Some(OsStr::from_bytes(&bytes[i + 1..]))),
            None => (OsStr::from_bytes(bytes), None),
        };
        let real = std::fs::canonicalize(src).map_err(|e| format!("--bind {}: {e}", src.to_string_lossy()))?;
        let real = real.into_os_string().into_vec();
        let dst = match dst {
            Some(d) => guest_path("--bind destination", d)?,
            None => GuestPath::new(real.clone()).map_err(|e| format!("--bind {}: {e}", src.to_string_lossy()))?,
        };
        let host = HostPath::new(real).map_err(|e| format!("--bind {}: {e}", src.to_string_lossy()))?;
        view.bind(host, dst).map_err(|e| format!("--bind {}: {e:?}", b.to_string_lossy()))?;
    }
    for m in mounts {
        let (dst, opts) = parse_mount(m)?;
        let src = viewos_tracer::vfs::mount(opts).map_err(|e| format!("--mount {}: {e}", m.to_string_lossy()))?;
        let host = HostPath::new(src).expect("an absolute path");
        view.bind(host, dst).map_err(|e| format!("--mount {}: {e:?}", m.to_string_lossy()))?;
    }
    // Copy-on-write directories: DIR is a path of the view as built so far (so that
    // `-r ROOTFS --cow /` makes the root filesystem writable).
    let mut cow_dirs: Vec<(Vec<u8>, GuestPath)> = Vec::new();
    let mut stores = Vec::new();
    for c in cows {
        let bytes = c.as_bytes();
        let (dir, store) = match bytes.iter().position(|&b| b == b':') {
            Some(i) => (OsStr::from_bytes(&bytes[..i]), Some(std::path::Path::new(OsStr::from_bytes(&bytes[i + 1..])))),
            None => (OsStr::from_bytes(bytes), None),
        };
        let g = guest_path("--cow", dir)?;
        let r = resolve(&view, &HostFs, &GuestPath::root(), None, g.as_bytes(), Flags::EMPTY).map_err(|e| format!("--cow {}: {e}", dir.to_string_lossy()))?;
        if r.found != Found::Exists(Kind::Dir) {
            return Err(format!("--cow {}: not a directory", dir.to_string_lossy()));
        }
        if viewos_core::hostop::is_virtual(r.host.as_bytes()) {
            return Err(format!("--cow {}: lies in a filesystem of viewos's own", dir.to_string_lossy()));
        }
        let lower = std::path::PathBuf::from(OsStr::from_bytes(r.host.as_bytes()));
        let store_path = viewos_tracer::cow::open_store(&lower, store)?;
        if store.is_none() {
            eprintln!("viewos: --cow {}: changes go to {}", dir.to_string_lossy(), store_path.display());
        }
        let src = viewos_tracer::cow::mount(&lower, &store_path).map_err(|e| format!("--cow {}: {e}", c.to_string_lossy()))?;
        view.bind(HostPath::new(src).expect("an absolute path"), r.guest.clone()).map_err(|e| format!("--cow {}: {e:?}", c.to_string_lossy()))?;
        cow_dirs.push((r.host.into_bytes(), r.guest));
        stores.push(store_path);
    }
    // The store is the monitor's: no guest path reaches it.
    for s in stores {
        if let Some(g) = HostPath::new(s.into_os_string().into_vec()).ok().and_then(|h| view.untranslate(&h)) {
            let _ = view.hide(g);
        }
    }
    for h in hides {
        let g = guest_path("--hide", h)?;
        if g.is_root() {
            return Err("--hide /: would hide the whole view".to_string());
        }
        view.hide(g).map_err(|e| format!("--hide {}: {e:?}", h.to_string_lossy()))?;
    }
    let root = GuestPath::root();
    let (host_cwd, guest_cwd) = match cwd {
        Some(dir) => {
            let g = guest_path("--cwd", dir)?;
            let r = resolve(&view, &HostFs, &root, None, g.as_bytes(), Flags::EMPTY)
                .map_err(|e| format!("--cwd {}: {e} in the view", dir.to_string_lossy()))?;
            if r.found != Found::Exists(Kind::Dir) {
                return Err(format!("--cwd {}: not a directory in the view", dir.to_string_lossy()));
            }
            // A directory of the monitor's own filesystems has no host path the kernel could
            // enter: the command starts there in the view only (the monitor keeps its cwd).
            let host = if viewos_core::hostop::is_virtual(r.host.as_bytes()) { b"/".to_vec() } else { r.host.into_bytes() };
            (host, r.guest.into_bytes())
        }
        None => {
            // Start where viewos was started, if the view shows it; else at the view's root.
            let here = std::env::current_dir().map(|p| p.into_os_string().into_vec()).unwrap_or_default();
            // In a copy-on-write directory: the same place in the view (the kernel's cwd
            // cannot be there).
            let in_cow = cow_dirs.iter().find_map(|(lower, dst)| {
                let rest = here.strip_prefix(lower.as_slice()).filter(|r| r.is_empty() || r[0] == b'/' || lower == b"/")?;
                let mut g = dst.as_bytes().to_vec();
                if !rest.is_empty() && g != b"/" {
                    g.extend_from_slice(rest);
                } else if !rest.is_empty() {
                    g = if rest[0] == b'/' { rest.to_vec() } else { [b"/", rest].concat() };
                }
                GuestPath::new(g).ok().filter(|g| view.translate(g).is_some())
            });
            if let Some(g) = in_cow {
                (b"/".to_vec(), g.into_bytes())
            } else {
            match HostPath::new(here.clone()).ok().and_then(|h| view.untranslate(&h)) {
                Some(g) => (here, g.into_bytes()),
                None => (view.translate(&root).map(HostPath::into_bytes).unwrap_or_else(|| b"/".to_vec()), b"/".to_vec()),
            }
            }
        }
    };
    Ok(Some(Built { module: PathView::new(view, Box::new(HostFs)), cwd: (host_cwd, guest_cwd) }))
}
