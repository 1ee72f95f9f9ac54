//! Policy: parses and layers profiles into a resolved `JailSpec`.
//! Plain data, no syscalls (host facts are passed in), fully unit-tested.

pub mod env;
pub mod explain;
pub mod profile;
pub mod resolve;
pub mod spec;

use std::path::PathBuf;

pub use resolve::{resolve, Catalogue, HostFacts, Request};
pub use spec::JailSpec;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Shown as `FILE:LINE:COL: message`, as the contract requires.
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
}
