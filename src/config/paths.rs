//! Paths in the policy: normalization, `~` and project-relative paths,
//! the project directory, and the paths jail itself decides (system
//! read-only dirs, root-only secrets, rules that could not be in force).

use std::path::{Component, Path, PathBuf};

use super::catalogue::{chosen_by_user, HostFacts};
use super::resolve::{Acc, Ctx};
use super::spec::*;
use super::ConfigError;

/// Root-only secrets hidden when jail runs as root (uid 0 keeps reading
/// what its uid owns, even without capabilities).
pub const ROOT_SECRETS: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
    "/etc/ssl/private",
    "/etc/krb5.keytab",
    "/etc/slurm/jwt_hs256.key",
    "/var/lib/sss",
];

/// Paths that are the jail's own (fresh or private) whatever the host
/// has: a rule about them could not be in force.
const JAIL_OWN: &[&str] = &["/tmp", "/var/tmp", "/dev", "/proc", "/sys", "/run"];

/// Refuses rules the user chose that jail could not put in force: hiding
/// `/` or a path of the jail's own (private /tmp, fresh /proc, ...), and
/// showing the host's `/`, /proc or /sys (that would expose the host's
/// processes and kernel knobs).
pub(super) fn check_not_internal(
    acc: &Acc,
    project: &Path,
    home: &Path,
) -> Result<(), ConfigError> {
    // Under a host path the jail shows (a project in /tmp/x), a hidden
    // path is the host's and can be hidden.
    let shown = |p: &Path| {
        p.starts_with(project)
            || p.starts_with(home)
            || acc
                .ro
                .iter()
                .chain(&acc.rw)
                .any(|v| p.starts_with(&v.value))
    };
    let own = |p: &Path| JAIL_OWN.iter().any(|o| p.starts_with(o)) && !shown(p);
    for h in acc.hide.iter().filter(|h| chosen_by_user(&h.source)) {
        if h.value == Path::new("/") || own(&h.value) {
            return Err(ConfigError::NotApplied {
                path: h.value.clone(),
                origin: h.source.to_string(),
                why: "jail cannot hide it: it is the jail's root or one of its own private \
                      directories (/tmp, /var/tmp, /dev, /proc, /sys, /run), which never \
                      show the host's files"
                    .into(),
            });
        }
    }
    for v in acc
        .ro
        .iter()
        .chain(&acc.rw)
        .filter(|v| chosen_by_user(&v.source))
    {
        let p = &v.value;
        if p == Path::new("/") || p.starts_with("/proc") || p.starts_with("/sys") {
            return Err(ConfigError::NotApplied {
                path: p.clone(),
                origin: v.source.to_string(),
                why: "showing the host's / , /proc or /sys would expose the host's processes \
                      and kernel settings; name the directories you need"
                    .into(),
            });
        }
    }
    Ok(())
}

/// Variables that make package tools work offline (from their caches) or
/// fail at once under `--net none`.
pub const OFFLINE_ENV: &[(&str, &str)] = &[
    ("npm_config_offline", "true"),
    ("YARN_ENABLE_OFFLINE_MODE", "1"),
    ("CARGO_NET_OFFLINE", "true"),
    ("PIP_RETRIES", "0"),
    ("UV_OFFLINE", "1"),
    ("GOPROXY", "off"),
    ("HF_HUB_OFFLINE", "1"),
    ("CONDA_OFFLINE", "true"),
];

/// System directories every jail sees read-only (those that exist).
pub const SYSTEM_RO: &[&str] = &[
    "/usr",
    "/etc",
    "/opt",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/var/lib",
    "/var/cache",
];

/// The project: the git root above the cwd (found below $HOME), else the cwd.
/// Home itself and `/` are refused: either would expose everything.
pub fn project_dir(facts: &HostFacts) -> Result<(Sourced<PathBuf>, PathBuf), ConfigError> {
    let (dir, source) = match &facts.git_root {
        Some(g) => (
            g.clone(),
            Source::Derived("git work tree root above the cwd".into()),
        ),
        None => (
            facts.cwd.clone(),
            Source::Derived("the current directory".into()),
        ),
    };
    if facts.user.home.starts_with(&dir) {
        // `/`, /home, $HOME itself: everything of the user (and others).
        return Err(ConfigError::BadProject(dir));
    }
    if let Some((_, mode)) = facts.dir_modes.iter().find(|(d, _)| d == &dir) {
        if mode & 0o1002 != 0 {
            return Err(ConfigError::SharedProject {
                dir,
                what: if mode & 0o1000 != 0 {
                    "sticky"
                } else {
                    "world-writable"
                },
            });
        }
    }
    Ok((Sourced::new(dir, source), facts.cwd.clone()))
}

pub(super) fn push_unique<T: SameAs>(v: &mut Vec<Sourced<T>>, value: T, source: Source) {
    if !v.iter().any(|s| s.value.same_as(&value)) {
        v.push(Sourced::new(value, source));
    }
}

/// Equality for the accumulator's lists. Its paths are normalized
/// (`layer_path`, `abs_cli_path`), so equal paths have equal bytes:
/// comparing bytes is exact and far cheaper than `Path`'s component-wise
/// `==` (every push scans a list; the hide list alone has ~100 entries,
/// and this was a measurable share of every start).
pub(super) trait SameAs {
    fn same_as(&self, other: &Self) -> bool;
}

impl SameAs for PathBuf {
    fn same_as(&self, other: &Self) -> bool {
        self.as_os_str() == other.as_os_str()
    }
}

impl SameAs for String {
    fn same_as(&self, other: &Self) -> bool {
        self == other
    }
}

impl SameAs for u16 {
    fn same_as(&self, other: &Self) -> bool {
        self == other
    }
}

/// Adds `path` to `into`, removing it from `other` (a later layer's choice
/// between ro and rw replaces an earlier one's).
pub(super) fn put_path(
    into: &mut Vec<Sourced<PathBuf>>,
    other: &mut Vec<Sourced<PathBuf>>,
    path: PathBuf,
    source: Source,
) {
    other.retain(|s| !s.value.same_as(&path));
    into.retain(|s| !s.value.same_as(&path));
    into.push(Sourced::new(path, source));
}

pub fn expand_tilde(s: &str, home: &Path) -> String {
    if s == "~" {
        home.to_string_lossy().into_owned()
    } else if let Some(rest) = s.strip_prefix("~/") {
        home.join(rest).to_string_lossy().into_owned()
    } else {
        s.to_string()
    }
}

/// Paths in files must be absolute or start with `~/`; the project's
/// .jail.toml may also name paths relative to the project root.
pub(super) fn layer_path(s: &str, ctx: &Ctx, source: &Source) -> Result<PathBuf, ConfigError> {
    let mut p = PathBuf::from(expand_tilde(s, ctx.home));
    if !p.is_absolute() && matches!(source, Source::Project(_)) && !s.is_empty() {
        p = ctx.project.join(p);
    }
    if !p.is_absolute() {
        return Err(ConfigError::RelativePath {
            path: s.to_string(),
            origin: source.to_string(),
        });
    }
    Ok(normalize(&p))
}

/// Command-line paths may be relative to the cwd.
pub(super) fn abs_cli_path(s: &str, home: &Path, cwd: &Path) -> PathBuf {
    normalize(&cwd.join(expand_tilde(s, home)))
}

/// Lexical normalization: removes `.`, resolves `..`, drops trailing slashes.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c/")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/../..")), PathBuf::from("/"));
    }
}
