//! Policy: parses and layers profiles into a resolved `JailSpec`.
//! Plain data, no syscalls (host facts are passed in), fully unit-tested.
//!
//! - `profile`: the TOML profile schema (what a file may say) and parsing
//!   with file:line:col errors; `load`: reads the layers from disk
//!   (profiles dirs, user config, project file and its trust record).
//! - `catalogue`: the inputs as data (request, host facts, profiles and
//!   layers) and the `extends` chain.
//! - `resolve`: layering, profile chain → user → project → command line,
//!   into one `JailSpec`; `widen`: what an untrusted project file widens;
//!   `site`: site enforcement, all of it (site directory, site layer,
//!   floors/maxima/ceilings, the check on the host's real paths).
//! - `domain`: the domain grammar (`NAME`, `NAME:PORT`, `*.suffix`, `*`,
//!   `@preset`), typed, shared with the network helper; `presets`: the
//!   `@preset` lists; `proxy`: the upstream proxy setting.
//! - `agents`: the agents' credential files, one list; `paths`: path
//!   normalization and the paths jail itself decides; `env`, `limits`:
//!   the environment scrub and resource limits.
//! - `spec`: the resolved policy; `explain` prints it; `init`, `trust`:
//!   `jail init` and `jail trust`.

pub mod agents;
pub mod catalogue;
pub mod cidr;
pub mod domain;
pub mod env;
pub mod explain;
pub mod init;
pub mod limits;
pub mod load;
pub mod paths;
pub mod presets;
pub mod profile;
pub mod proxy;
pub mod resolve;
pub mod site;
pub mod spec;
#[cfg(test)]
mod testkit;
pub mod trust;
pub mod widen;

use std::path::PathBuf;

pub use catalogue::{Catalogue, HostFacts, Request};
pub use resolve::resolve;
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
    #[error("`{domain}` in {origin} is not a domain name: {why} (e.g. `example.com`, `*.example.com`, `github.com:22`, `@github`)")]
    BadDomain {
        domain: String,
        origin: String,
        why: String,
    },
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
