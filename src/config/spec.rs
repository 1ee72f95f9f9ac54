//! `JailSpec`: the resolved policy. Plain data, no syscalls; the sandbox only
//! executes it and `jail explain` prints it with the source of every value.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

use super::domain::Domain;

pub use super::limits::{Limits, ReviewMode};
pub use super::profile::{HomeMode, NetMode};

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "layer", content = "where", rename_all = "lowercase")]
pub enum Source {
    /// A builtin profile, by name.
    Builtin(String),
    /// The site's enforced configuration (file).
    Site(PathBuf),
    /// The user's configuration (file).
    User(PathBuf),
    /// The project's .jail.toml.
    Project(PathBuf),
    /// A command-line flag.
    Cli(String),
    /// Worked out by jail itself (e.g. the project directory from git).
    Derived(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Builtin(n) => write!(f, "builtin profile {n}"),
            Source::Site(p) => write!(f, "site {}", p.display()),
            Source::User(p) => write!(f, "user {}", p.display()),
            Source::Project(p) => write!(f, "project {}", p.display()),
            Source::Cli(flag) => write!(f, "command line {flag}"),
            Source::Derived(why) => write!(f, "{why}"),
        }
    }
}

/// A value with its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
    /// The domain preset (`@github`) a value was expanded from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

impl<T> Sourced<T> {
    pub fn new(value: T, source: Source) -> Self {
        Sourced {
            value,
            source,
            via: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JailSpec {
    pub profile: Sourced<String>,
    /// argv of the program to run (never empty: a shell when none was given).
    pub command: Vec<String>,
    pub user: UserInfo,
    /// Read-write at the same path: the git root above the cwd, else the cwd.
    pub project: Sourced<PathBuf>,
    /// Where the program starts (inside the project, or the project itself).
    pub cwd: PathBuf,
    pub filesystem: FsPolicy,
    pub network: NetPolicy,
    pub env: EnvPolicy,
    pub gpu: Sourced<bool>,
    pub slurm: SlurmPolicy,
    /// Review mode: the project is an overlay; its changes land only as
    /// approved at exit.
    pub review: Sourced<ReviewMode>,
    /// Resource limits.
    pub limits: Limits,
    /// What the configuration layers did that is worth saying: files read,
    /// values the site narrowed, the project file's trust state.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
    pub home: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FsPolicy {
    pub home: Sourced<HomeMode>,
    /// System directories bound read-only (absolute host paths).
    pub system_ro: Vec<PathBuf>,
    pub ro: Vec<Sourced<PathBuf>>,
    pub rw: Vec<Sourced<PathBuf>>,
    /// Absent inside the jail (ENOENT), even under a visible parent.
    pub hide: Vec<Sourced<PathBuf>>,
    /// Read-write directories (also in `rw`) that jail creates on the host
    /// before launch when missing, so an agent's first login persists.
    pub create: Vec<Sourced<PathBuf>>,
    /// Command-running config files in writable areas (agent hooks, MCP
    /// servers, permissions): read-only inside, quarantined if created.
    pub protect: Vec<Sourced<PathBuf>>,
    /// JSON files whose entries at the key paths are put back at exit.
    pub watch: Vec<Watched>,
    /// Host directories seen with the program's writes kept apart (in
    /// `storage`), e.g. package caches.
    pub cache: Vec<Sourced<PathBuf>>,
    /// Directories the jail gets its own of (in `storage`), never showing
    /// the host's contents: an agent's daemon sockets and locks.
    #[serde(default)]
    pub own: Vec<Sourced<PathBuf>>,
    /// jail's own storage for this profile (persistent home, caches'
    /// layers): ~/.local/share/jail/profiles/NAME.
    pub storage: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watched {
    pub file: PathBuf,
    pub keys: Vec<String>,
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetPolicy {
    pub mode: Sourced<NetMode>,
    pub allow: Vec<Sourced<Domain>>,
    pub deny: Vec<Sourced<Domain>>,
    pub ports: Vec<Sourced<u16>>,
    pub dns_upstream: Option<Sourced<String>>,
    pub expose_host_ports: Vec<Sourced<u16>>,
    pub proxy: Option<Sourced<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvPolicy {
    /// Variables passed even though the scrub would remove them.
    pub pass: Vec<Sourced<String>>,
    /// Variables set to a value inside the jail.
    pub set: Vec<(String, Sourced<String>)>,
    /// Extra names or `*` patterns the scrub removes even when passed
    /// (a site floor, or a profile's own narrowing).
    pub block: Vec<Sourced<String>>,
}

/// Slurm submission through the chaperon (docs/design.md, "Slurm").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlurmPolicy {
    pub enabled: Sourced<bool>,
    /// Partitions, accounts and QOS jobs may name (None: any).
    pub partitions: Option<Sourced<Vec<String>>>,
    pub accounts: Option<Sourced<Vec<String>>>,
    pub qos: Option<Sourced<Vec<String>>>,
    /// Most jobs of the project pending or running at a submission.
    pub max_jobs: Option<Sourced<u32>>,
    /// The network of the job's tasks on the compute nodes.
    pub job_network: Sourced<super::profile::JobNetwork>,
    /// The site's cluster networks (`cluster` job network); empty: none.
    #[serde(default)]
    pub cluster_networks: Vec<super::cidr::Cidr>,
}
