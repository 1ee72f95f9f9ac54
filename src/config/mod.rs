//! Policy: parses and layers profiles into a resolved `JailSpec`.
//! Plain data, no syscalls (host facts are passed in), fully unit-tested.

pub mod env;
pub mod explain;
pub mod init;
pub mod limits;
pub mod load;
pub mod presets;
pub mod profile;
pub mod resolve;
pub mod spec;
pub mod trust;

use std::path::PathBuf;

pub use resolve::{resolve, Catalogue, HostFacts, Request};
pub use spec::JailSpec;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Shown as `FILE:LINE:COL: message`, as the contract requires (docs/design.md).
    #[error("{}:{line}:{col}: {message}", file.display())]
    Parse {
        file: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("unknown profile `{0}` (see `jail profiles`)")]
    UnknownProfile(String),
    #[error("profile `{0}` extends itself through its `extends` chain")]
    ExtendsCycle(String),
    #[error("path `{path}` in {origin} must be absolute or start with `~/`")]
    RelativePath { path: String, origin: String },
    #[error("`{0}` is not a valid environment variable name")]
    BadEnvName(String),
    #[error(
        "refusing to use {} as the project directory: it would expose everything in it; \
         cd into a project (a git work tree or a directory below your home)",
        .0.display()
    )]
    BadProject(PathBuf),
    #[error(
        "refusing to use {} as the project directory: it is {what}, so other users' files \
         and sockets (tmux, ssh, editors) live in it; make a directory of your own in it",
        .dir.display()
    )]
    SharedProject { dir: PathBuf, what: &'static str },
    #[error("{} (from {origin}): {why}", .path.display())]
    NotApplied {
        path: PathBuf,
        origin: String,
        why: String,
    },
    #[error("`{domain}` in {origin} is not a domain name (e.g. `example.com`, `*.example.com`, `@github`)")]
    BadDomain { domain: String, origin: String },
    #[error(
        "unknown domain preset `@{name}` in {origin} (presets: {})",
        crate::config::presets::names()
    )]
    UnknownPreset { name: String, origin: String },
    /// A later layer tried to widen what the site enforces.
    #[error("{}: `{key}`: {message} (enforced by the site)", file.display())]
    Refused {
        file: PathBuf,
        key: String,
        message: String,
    },
    /// The project's .jail.toml widens the policy without the user's consent.
    #[error(
        "{}: `{key}` would widen the policy ({what}) and this file is not trusted; \
         review it, then run `jail trust` in the project",
        file.display()
    )]
    Untrusted {
        file: PathBuf,
        key: String,
        what: String,
    },
    /// A key that is valid TOML but not allowed in this kind of file.
    #[error("{}:{line}:{col}: {message}", file.display())]
    Misplaced {
        file: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("site directory {}: {message}", dir.display())]
    UnsafeSite { dir: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{name}` in `{key}` ({origin}) is not a Slurm name (letters, digits, `-`, `_`, `.`)")]
    BadSlurmName {
        key: String,
        name: String,
        origin: String,
    },
    #[error("{0}")]
    Init(String),
    #[error("{0}")]
    Network(String),
}
