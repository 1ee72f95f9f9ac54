//! The TOML profile schema and its parser. Unknown keys and wrong types are
//! errors that name the file, line and column.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// One profile file as written (every key optional so layers can be merged).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub description: Option<String>,
    pub extends: Option<String>,
    #[serde(default)]
    pub filesystem: FsSection,
    #[serde(default)]
    pub network: NetSection,
    #[serde(default)]
    pub env: EnvSection,
    #[serde(default)]
    pub slurm: SlurmSection,
    /// Review mode: the project is an overlay and its changes are shown
    /// for approval at exit (`true`, or a mode: ask, apply, discard, keep).
    pub review: Option<super::limits::ReviewSetting>,
    /// Resource limits (timeout, memory, pids, cpus).
    #[serde(default)]
    pub limits: super::limits::LimitsSection,
    /// Site-only keys: allowed in the site's jail.toml and nowhere else
    /// (spanned so a misplaced `[site]` is reported at its line).
    pub site: Option<toml::Spanned<SiteSection>>,
}

/// `[site]` in the site's jail.toml: what later layers may do at all.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SiteSection {
    /// Profiles that may be used (absent: all).
    pub profiles: Option<Vec<String>>,
    /// Whether user, project and command-line layers may make paths outside
    /// the project read-write (default: yes).
    pub rw_outside_project: Option<bool>,
    /// Project directories must lie at or below one of these (absent: any).
    pub project_roots: Option<Vec<String>>,
    /// Whether `--gpu` may be used (default: yes).
    pub gpu: Option<bool>,
    /// Whether `jail trust` may let a project's .jail.toml widen the policy
    /// (default: yes; `false`: project files may only narrow).
    pub trust_projects: Option<bool>,
    /// The network of the tasks of jobs submitted from a jail, on the
    /// compute nodes (default: `policy`, the jail's own).
    pub slurm_job_network: Option<JobNetwork>,
}

/// `[site] slurm_job_network`.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JobNetwork {
    /// Every task keeps the submitting jail's network policy.
    #[default]
    Policy,
    /// Every task uses its compute node's network (the site vouches that
    /// the nodes reach nothing the policy should deny), so the ranks of a
    /// job reach each other over TCP.
    Node,
    /// Every task uses its compute node's network, but reaches only the
    /// nodes of its job's allocation and the site's `[slurm]
    /// cluster_networks`; a supervisor outside the jail decides each
    /// connect and send (`outside::connect`).
    Cluster,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum HomeMode {
    /// An empty tmpfs holding only the profile's binds.
    Tmpfs,
    /// jail's own directory for this profile (under ~/.local/share/jail),
    /// kept between runs, holding the profile's binds: never the host's
    /// real dotfiles.
    Persist,
    /// The real home, read-only, hidden paths removed.
    Ro,
    /// The real home, read-write, hidden paths removed.
    Rw,
}

/// Ordered from narrowest to widest, so `max`/`min` express tightening.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum NetMode {
    None,
    Allowlist,
    /// Like `allowlist`, but every name is allowed and recorded; at exit
    /// jail prints the `[network]` snippet that allows what was used.
    Learn,
    Host,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum SlurmEnabled {
    Bool(bool),
    Auto(AutoWord),
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AutoWord {
    Auto,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FsSection {
    pub home: Option<HomeMode>,
    #[serde(default)]
    pub ro: Vec<String>,
    #[serde(default)]
    pub rw: Vec<String>,
    #[serde(default)]
    pub hide: Vec<String>,
    /// Read-write directories created on the host before launch when
    /// missing (an agent's state dir), so a first login persists.
    #[serde(default)]
    pub create: Vec<String>,
    /// Files in writable areas that make a program run commands or grant
    /// it permissions (an agent's hooks, MCP servers, permission lists):
    /// read-only inside; quarantined at exit if created.
    #[serde(default)]
    pub protect: Vec<String>,
    /// JSON files the program may rewrite whose entries at these key
    /// paths (`*` matches any key) are put back at exit if changed.
    #[serde(default)]
    pub watch: BTreeMap<String, Vec<String>>,
    /// Host directories (package caches) the program sees with its own
    /// writes on top: it reads the host's, and what it adds or changes is
    /// kept in jail's own storage for the profile, never in the host's.
    #[serde(default)]
    pub cache: Vec<String>,
    /// Directories under a read-write one that the jail gets its own of,
    /// empty at first and kept in jail's own storage, without the host's
    /// contents beneath: an agent's daemon sockets and locks (a host
    /// daemon's socket there must not be reachable from the jail, and the
    /// jail's daemon must not answer the host's agent).
    #[serde(default)]
    pub own: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetSection {
    pub mode: Option<NetMode>,
    /// Optional so a site file can tell "no ceiling" from "allow nothing".
    pub allow: Option<Vec<String>>,
    #[serde(default)]
    pub deny: Vec<String>,
    pub ports: Option<Vec<u16>>,
    pub dns_upstream: Option<String>,
    /// Host ports reachable from the jail at its own 127.0.0.1/::1 (a
    /// local model server): a deliberate hole through the floor.
    pub expose_host_ports: Option<Vec<u16>>,
    /// An upstream HTTP proxy the helper connects through (CONNECT):
    /// `http://HOST:PORT`, or `env` for $HTTPS_PROXY of jail's environment.
    pub proxy: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnvSection {
    #[serde(default)]
    pub pass: Vec<String>,
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Names or `*` patterns removed from the environment even if passed.
    #[serde(default)]
    pub block: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SlurmSection {
    pub enabled: Option<SlurmEnabled>,
    /// Partitions jobs may use (absent: any). In the site file: a ceiling.
    pub partitions: Option<Vec<String>>,
    /// Accounts jobs may be charged to (absent: any). Site: a ceiling.
    pub accounts: Option<Vec<String>>,
    /// QOS jobs may ask for (absent: any). Site: a ceiling.
    pub qos: Option<Vec<String>>,
    /// At most this many of the project's jobs pending or running when a
    /// new one is submitted (absent: no cap). Site: a maximum.
    pub max_jobs: Option<u32>,
    /// Site only: the networks a job's tasks reach under
    /// `slurm_job_network = "cluster"` (spanned so that a user's or a
    /// project's file setting it is reported at its line).
    pub cluster_networks: Option<toml::Spanned<Vec<super::cidr::Cidr>>>,
}

/// Parses profile text; `file` is only used to name the error's location.
pub fn parse(text: &str, file: &Path) -> Result<Profile, ConfigError> {
    toml::from_str::<Profile>(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ConfigError::Parse {
            file: file.to_path_buf(),
            line,
            col,
            message: e.message().trim().to_string(),
        }
    })
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    (line, col)
}

/// The builtin profiles, embedded so the binary needs no files.
pub const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../profiles/default.toml")),
    ("shell", include_str!("../../profiles/shell.toml")),
    ("claude", include_str!("../../profiles/claude.toml")),
    ("codex", include_str!("../../profiles/codex.toml")),
    ("gemini", include_str!("../../profiles/gemini.toml")),
    ("aider", include_str!("../../profiles/aider.toml")),
    ("opencode", include_str!("../../profiles/opencode.toml")),
    ("goose", include_str!("../../profiles/goose.toml")),
    ("pi", include_str!("../../profiles/pi.toml")),
    (
        "cursor-agent",
        include_str!("../../profiles/cursor-agent.toml"),
    ),
];

pub fn builtin_path(name: &str) -> PathBuf {
    PathBuf::from(format!("<builtin>/profiles/{name}.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_parses() {
        for (name, text) in BUILTIN {
            parse(text, &builtin_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let text = "description = \"x\"\n[filesystem]\nhome = \"tmpfs\"\nbogus = 1\n";
        let err = parse(text, Path::new("/p/x.toml")).unwrap_err().to_string();
        assert!(err.starts_with("/p/x.toml:4:1: "), "{err}");
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn wrong_type_names_line_and_column() {
        let text = "[network]\nmode = 42\n";
        let err = parse(text, Path::new("f.toml")).unwrap_err().to_string();
        assert!(err.starts_with("f.toml:2:8: "), "{err}");
    }

    #[test]
    fn bad_enum_value_is_rejected() {
        let err = parse("[filesystem]\nhome = \"everything\"\n", Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f:2:8: "), "{err}");
    }

    #[test]
    fn syntax_error_has_location() {
        let err = parse("a = [\n", Path::new("f")).unwrap_err().to_string();
        assert!(err.starts_with("f:"), "{err}");
    }

    #[test]
    fn slurm_enabled_accepts_bool_and_auto() {
        let p = parse("[slurm]\nenabled = \"auto\"\n", Path::new("f")).unwrap();
        assert_eq!(p.slurm.enabled, Some(SlurmEnabled::Auto(AutoWord::Auto)));
        let p = parse("[slurm]\nenabled = false\n", Path::new("f")).unwrap();
        assert_eq!(p.slurm.enabled, Some(SlurmEnabled::Bool(false)));
        let p = parse(
            "[slurm]\npartitions = [\"debug\"]\nmax_jobs = 3\n",
            Path::new("f"),
        )
        .unwrap();
        assert_eq!(p.slurm.partitions, Some(vec!["debug".to_string()]));
        assert_eq!(p.slurm.max_jobs, Some(3));
        let err = parse("[slurm]\nmax_jobs = -1\n", Path::new("f")).unwrap_err();
        assert!(err.to_string().starts_with("f:2:"), "{err}");
    }

    #[test]
    fn review_and_limits_parse_and_bad_values_have_locations() {
        use crate::config::limits::{ReviewMode, Seconds};
        let p = parse(
            "review = true\n[limits]\ntimeout = \"2h\"\nmemory = \"8G\"\npids = 64\ncpus = 2.5\n",
            Path::new("f"),
        )
        .unwrap();
        assert_eq!(p.review.map(|r| r.mode()), Some(ReviewMode::Ask));
        assert_eq!(p.limits.timeout, Some(Seconds(7200)));
        assert_eq!(p.limits.memory.map(|m| m.0), Some(8 << 30));
        assert_eq!(p.limits.cpus.map(|m| m.0), Some(2500));
        let p = parse(
            "review = \"keep\"\n[limits]\ntimeout = 90\n",
            Path::new("f"),
        )
        .unwrap();
        assert_eq!(p.review.map(|r| r.mode()), Some(ReviewMode::Keep));
        assert_eq!(p.limits.timeout, Some(Seconds(90)));
        let err = parse("[limits]\nmemory = \"lots\"\n", Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("f:2:10: ") && err.contains("not a size"),
            "{err}"
        );
        let err = parse("[limits]\npids = 0\n", Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f:2:8: "), "{err}");
        let err = parse("review = \"maybe\"\n", Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f:1:10: "), "{err}");
        let err = parse("[limits]\nswap = 1\n", Path::new("f"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f:2:1: ") && err.contains("swap"), "{err}");
    }

    #[test]
    fn net_modes_order_from_narrow_to_wide() {
        assert!(NetMode::None < NetMode::Allowlist && NetMode::Allowlist < NetMode::Learn);
        assert!(NetMode::Learn < NetMode::Host);
    }
}
