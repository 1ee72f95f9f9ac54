//! Facts about the host and the calling user, gathered once before the
//! policy is resolved (the only impure input of `config`).

use std::path::{Path, PathBuf};

use crate::config::catalogue::chosen_by_user;
use crate::config::spec::{Source, UserInfo};
use crate::config::{ConfigError, HostFacts, JailSpec};

pub fn facts() -> std::io::Result<HostFacts> {
    let uid = nix::unistd::getuid();
    let gid = nix::unistd::getgid();
    let pw = nix::unistd::User::from_uid(uid).ok().flatten();
    let env_home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute() && h.is_dir());
    let home = env_home
        .or_else(|| pw.as_ref().map(|p| p.dir.clone()))
        .unwrap_or_else(|| PathBuf::from("/"));
    let name = pw
        .as_ref()
        .map(|p| p.name.clone())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| uid.to_string());
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| s.starts_with('/'))
        .or_else(|| pw.as_ref().map(|p| p.shell.to_string_lossy().into_owned()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    let cwd = std::env::current_dir()?;
    let git_root = git_root(&cwd, &home);
    let dir_modes = [Some(&cwd), git_root.as_ref()]
        .into_iter()
        .flatten()
        .filter_map(|d| {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(d).ok()?.permissions().mode() & 0o7777;
            Some((d.clone(), m))
        })
        .collect();
    Ok(HostFacts {
        git_root,
        dir_modes,
        user: UserInfo {
            uid: uid.as_raw(),
            gid: gid.as_raw(),
            name,
            home,
        },
        cwd,
        shell,
        has_sbatch: on_path("sbatch").is_some(),
    })
}

/// The nearest directory at or above `cwd` holding `.git`, never `home`
/// itself or anything above it (a dotfiles repo in $HOME is not a project).
fn git_root(cwd: &Path, home: &Path) -> Option<PathBuf> {
    let mut dir = Some(cwd);
    while let Some(d) = dir {
        if d == home || d == Path::new("/") || (cwd.starts_with(home) && !d.starts_with(home)) {
            return None;
        }
        if d.join(".git").exists() {
            return Some(d.to_path_buf());
        }
        dir = d.parent();
    }
    None
}

/// Checks the paths the user chose (command line, their config, the
/// project file) against the host: a missing `--ro`/`--rw` path is an
/// error on the command line (a note in explain otherwise); a missing
/// hidden path is worth a warning (it hides nothing: from a
/// subdirectory, `--hide .env` names `SUBDIR/.env`); a world-writable or
/// sticky directory (/tmp, /dev/shm, /var/tmp) cannot be shown: other
/// users' files and sockets live there. Returns the warnings.
pub fn check_paths(spec: &JailSpec) -> Result<Vec<String>, ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let mut warnings = Vec::new();
    let fs = &spec.filesystem;
    for (v, kind) in fs
        .ro
        .iter()
        .map(|v| (v, "--ro"))
        .chain(fs.rw.iter().map(|v| (v, "--rw")))
    {
        if !chosen_by_user(&v.source) {
            continue;
        }
        match std::fs::metadata(&v.value) {
            Err(_) if matches!(v.source, Source::Cli(_)) => {
                return Err(ConfigError::NotApplied {
                    path: v.value.clone(),
                    origin: v.source.to_string(),
                    why: format!("does not exist, so {kind} cannot show it"),
                })
            }
            Err(_) => warnings.push(format!(
                "{} (from {}) does not exist: not shown",
                v.value.display(),
                v.source
            )),
            Ok(m) if m.is_dir() && m.permissions().mode() & 0o1002 != 0 => {
                return Err(ConfigError::NotApplied {
                    path: v.value.clone(),
                    origin: v.source.to_string(),
                    why: "a world-writable or sticky directory holds other users' files and \
                          sockets (tmux, ssh, editors); name a directory of your own in it"
                        .into(),
                })
            }
            Ok(_) => {}
        }
    }
    for h in fs.hide.iter().filter(|h| chosen_by_user(&h.source)) {
        if std::fs::symlink_metadata(&h.value).is_err() {
            warnings.push(format!(
                "{} (from {}) does not exist: nothing to hide there",
                h.value.display(),
                h.source
            ));
        }
    }
    Ok(warnings)
}

/// Where `cmd` is found on the host's PATH.
pub fn on_path(cmd: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

/// Where `cmd` resolves on the host, as execvp would find it: a name with
/// a slash relative to `cwd`, else the first entry of `path` (a PATH
/// value; the host's when `None`) holding an executable file of that name.
pub fn find_command(cmd: &str, path: Option<&str>, cwd: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if cmd.is_empty() {
        return None;
    }
    if cmd.contains('/') {
        let p = cwd.join(cmd);
        return runnable(&p).then_some(p);
    }
    let host_path = std::env::var("PATH").ok();
    let path = path.or(host_path.as_deref())?;
    path.split(':')
        .map(|d| if d.is_empty() { "." } else { d })
        .map(|d| cwd.join(d).join(cmd))
        .find(|p| runnable(p))
}

/// The terminal on jail's stdin, stdout or stderr (the first that is one),
/// as the host names it: a character device under /dev.
pub fn terminal() -> Option<PathBuf> {
    use nix::unistd::ttyname;
    use std::os::unix::fs::FileTypeExt;
    [
        ttyname(std::io::stdin()),
        ttyname(std::io::stdout()),
        ttyname(std::io::stderr()),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .find(|p| {
        p.starts_with("/dev/") && std::fs::metadata(p).is_ok_and(|m| m.file_type().is_char_device())
    })
}

/// The host environment as UTF-8 pairs (others are dropped: they cannot be
/// checked against the scrub rules).
pub fn environment() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// `fs::canonicalize`, remembered while a plan is made (`with_canonical_cache`):
/// the plan asks for the same host paths dozens of times (every
/// component of each is a readlink). Outside that scope (the guard's check
/// at exit, after the program could have changed the files) it always
/// asks the kernel.
pub fn canonical(p: &Path) -> std::io::Result<PathBuf> {
    CANON.with(|c| {
        let mut c = c.borrow_mut();
        let Some(map) = c.as_mut() else {
            return std::fs::canonicalize(p);
        };
        resolve_cached(map, p)
    })
}

/// realpath with every resolved prefix remembered: a path below an
/// already resolved directory costs one lstat of its last component (and
/// a real realpath only where that is a symlink). Paths with `.` or `..`
/// or relative ones go to realpath whole.
fn resolve_cached(
    map: &mut std::collections::HashMap<PathBuf, Option<PathBuf>>,
    p: &Path,
) -> std::io::Result<PathBuf> {
    use std::path::Component;
    if let Some(r) = map.get(p) {
        return r
            .clone()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound));
    }
    let plain = p.is_absolute()
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    let r = match (plain, p.parent(), p.file_name()) {
        (true, Some(parent), Some(name)) => resolve_cached(map, parent).and_then(|base| {
            let cand = base.join(name);
            if std::fs::symlink_metadata(&cand)?.file_type().is_symlink() {
                std::fs::canonicalize(&cand)
            } else {
                Ok(cand)
            }
        }),
        _ => std::fs::canonicalize(p),
    };
    map.insert(p.to_path_buf(), r.as_ref().ok().cloned());
    r
}

/// Runs `f` with `canonical` remembering its answers; forgets them after.
pub fn with_canonical_cache<T>(f: impl FnOnce() -> T) -> T {
    CANON.with(|c| *c.borrow_mut() = Some(std::collections::HashMap::new()));
    let r = f();
    CANON.with(|c| *c.borrow_mut() = None);
    r
}

/// What reading a file that a jail could have written found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// Nothing there (or a parent is not a directory).
    Absent,
    /// A regular file's bytes (at most the cap).
    Text(Vec<u8>),
    /// Something that cannot be judged: not a regular file (a FIFO,
    /// socket, device, a symlink where a file should be), over the cap,
    /// or unreadable. Said why.
    Suspect(String),
}

impl Read {
    /// The text, lossily; None unless a regular file was read.
    pub fn text(&self) -> Option<String> {
        match self {
            Read::Text(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// Reads `p` only if it is a regular file of at most `cap` bytes: never
/// follows a symlink in its last component, never blocks (a FIFO or
/// device is not even opened: lstat first, then O_NOFOLLOW|O_NONBLOCK|
/// O_NOCTTY and fstat, so a swap between the two is caught), never reads
/// more than `cap`. Used for every file a jail could have written that a
/// process outside reads (git's files at start, the guard's check).
pub fn read_regular(p: &Path, cap: u64) -> Read {
    use std::io::Read as _;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let kind = |ft: std::fs::FileType| {
        if ft.is_symlink() {
            "a symlink"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        }
    };
    match std::fs::symlink_metadata(p) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
            return Read::Absent
        }
        Err(e) => return Read::Suspect(format!("cannot inspect it: {e}")),
        Ok(m) if !m.file_type().is_file() => {
            return Read::Suspect(format!("{} where a file was expected", kind(m.file_type())))
        }
        Ok(_) => {}
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(p);
    let f = match f {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Read::Absent,
        Err(e) => return Read::Suspect(format!("cannot open it: {e}")),
    };
    let m = match f.metadata() {
        Ok(m) => m,
        Err(e) => return Read::Suspect(format!("cannot inspect it: {e}")),
    };
    if !m.file_type().is_file() {
        return Read::Suspect(format!("{} where a file was expected", kind(m.file_type())));
    }
    if m.len() > cap {
        return Read::Suspect(format!("{} bytes, more than {cap}", m.len()));
    }
    let mut buf = Vec::with_capacity(m.len() as usize);
    // One byte over the cap tells a file that grew meanwhile.
    match f.take(cap + 1).read_to_end(&mut buf) {
        Ok(n) if n as u64 > cap => Read::Suspect(format!("more than {cap} bytes")),
        Ok(_) => Read::Text(buf),
        Err(e) => Read::Suspect(format!("cannot read it: {e}")),
    }
}

thread_local! {
    static CANON: std::cell::RefCell<Option<std::collections::HashMap<PathBuf, Option<PathBuf>>>> =
        const { std::cell::RefCell::new(None) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_command_follows_path_and_slashes() {
        let base = std::env::temp_dir().join(format!("jail-find-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(a.join("tool"), "not executable").unwrap();
        std::fs::write(b.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(b.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:{}", a.display(), b.display());
        assert_eq!(
            find_command("tool", Some(&path), &base),
            Some(b.join("tool"))
        );
        assert_eq!(
            find_command("b/tool", Some(""), &base),
            Some(base.join("b/tool"))
        );
        assert_eq!(find_command("a/tool", Some(&path), &base), None);
        assert_eq!(find_command("none", Some(&path), &base), None);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn git_root_stops_below_home() {
        let base = std::env::temp_dir().join(format!("jail-host-{}", std::process::id()));
        let home = base.join("home");
        std::fs::create_dir_all(home.join(".git")).unwrap();
        std::fs::create_dir_all(home.join("p/.git")).unwrap();
        std::fs::create_dir_all(home.join("p/a/b")).unwrap();
        std::fs::create_dir_all(home.join("q/c")).unwrap();
        assert_eq!(git_root(&home.join("p/a/b"), &home), Some(home.join("p")));
        assert_eq!(
            git_root(&home.join("q/c"), &home),
            None,
            "home's own .git is not a project"
        );
        assert_eq!(git_root(&home, &home), None);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn remembered_canonical_paths_are_what_realpath_says() {
        use std::os::unix::fs::symlink;
        let t = crate::testutil::Tmp::new("canon");
        let (real, link) = (t.0.join("real"), t.0.join("link"));
        std::fs::create_dir_all(real.join("sub")).unwrap();
        std::fs::write(real.join("sub/f"), "").unwrap();
        symlink("real", &link).unwrap();
        symlink("../real/sub/f", real.join("sub/rel")).unwrap();
        symlink("/nonexistent-jail-test", real.join("dangling")).unwrap();
        let paths = [
            t.0.clone(),
            link.join("sub/f"),
            link.join("sub/rel"),
            real.join("sub/rel"),
            link.join("sub"),
            real.join("dangling"),
            real.join("missing/x"),
            real.join("sub/f/x"),
            link.join("sub/../sub/f"),
            PathBuf::from("/"),
        ];
        with_canonical_cache(|| {
            // Twice: the second answers come from what was remembered.
            for _ in 0..2 {
                for p in &paths {
                    let want = std::fs::canonicalize(p).ok();
                    assert_eq!(canonical(p).ok(), want, "{}", p.display());
                }
            }
        });
    }

    #[test]
    fn read_regular_reads_only_small_regular_files_and_never_blocks() {
        let d = std::env::temp_dir().join(format!("jail-read-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("f"), "abc").unwrap();
        assert_eq!(read_regular(&d.join("f"), 3), Read::Text(b"abc".to_vec()));
        assert!(matches!(read_regular(&d.join("f"), 2), Read::Suspect(_)));
        assert_eq!(read_regular(&d.join("none"), 3), Read::Absent);
        std::os::unix::fs::symlink("f", d.join("l")).unwrap();
        assert!(matches!(read_regular(&d.join("l"), 3), Read::Suspect(_)));
        let c = std::ffi::CString::new(d.join("fifo").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo on a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert!(matches!(read_regular(&d.join("fifo"), 3), Read::Suspect(_)));
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), 3),
            Read::Suspect(_)
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
