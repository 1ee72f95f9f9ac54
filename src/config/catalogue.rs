//! The configuration's inputs as data: what the command line asked for,
//! facts about the host, and the catalogue of profiles and layers (site,
//! user, project) that `resolve` merges. Files are read by `load`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::limits::ReviewMode;
use super::profile::{self, HomeMode, NetMode, Profile, SiteSection};
use super::spec::*;
use super::ConfigError;

/// What the user asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub profile: Option<String>,
    pub command: Vec<String>,
    pub ro: Vec<String>,
    pub rw: Vec<String>,
    pub hide: Vec<String>,
    pub net: Option<NetMode>,
    pub allow_domain: Vec<String>,
    pub allow_port: Vec<u16>,
    pub expose_host_port: Vec<u16>,
    pub dns_upstream: Option<String>,
    pub env: Vec<String>,
    pub gpu: bool,
    pub home: Option<HomeMode>,
    /// `--review[=MODE]`.
    pub review: Option<ReviewMode>,
    /// `--timeout`, in seconds.
    pub timeout: Option<u64>,
    /// `--memory`, in bytes.
    pub memory: Option<u64>,
    /// `--pids`.
    pub pids: Option<u32>,
    /// `--cpus`, in thousandths.
    pub cpus: Option<u32>,
}

/// Facts about the host that resolution needs, gathered by the caller.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub user: UserInfo,
    pub cwd: PathBuf,
    /// The user's login shell, used when no command is given.
    pub shell: String,
    /// The git work tree root above (or at) cwd, below $HOME.
    pub git_root: Option<PathBuf>,
    pub has_sbatch: bool,
    /// Permission bits (with the sticky bit) of the candidate project
    /// directories (the cwd and the git root), as the host reports them.
    pub dir_modes: Vec<(PathBuf, u32)>,
}

/// A profile found in some layer.
#[derive(Debug, Clone)]
pub struct NamedProfile {
    pub name: String,
    body: Body,
    pub source: Source,
}

/// A builtin profile is parsed when first used: a run needs one or two
/// of them, and parsing all ten was a measurable part of every start.
#[derive(Debug, Clone)]
enum Body {
    Parsed(Profile),
    Builtin(&'static str, std::cell::OnceCell<Profile>),
}

impl NamedProfile {
    pub fn new(name: impl Into<String>, profile: Profile, source: Source) -> NamedProfile {
        NamedProfile {
            name: name.into(),
            body: Body::Parsed(profile),
            source,
        }
    }

    fn builtin(name: &str, text: &'static str) -> NamedProfile {
        NamedProfile {
            name: name.to_string(),
            body: Body::Builtin(text, std::cell::OnceCell::new()),
            source: Source::Builtin(name.to_string()),
        }
    }

    /// The profile's settings (a builtin one is parsed here, once).
    pub fn profile(&self) -> Result<&Profile, ConfigError> {
        match &self.body {
            Body::Parsed(p) => Ok(p),
            Body::Builtin(text, cell) => {
                if let Some(p) = cell.get() {
                    return Ok(p);
                }
                let p = profile::parse(text, &profile::builtin_path(&self.name))?;
                Ok(cell.get_or_init(|| p))
            }
        }
    }
}

/// The site's jail.toml: bounds for every layer after it.
#[derive(Debug, Clone)]
pub struct SiteLayer {
    pub file: PathBuf,
    pub profile: Profile,
    pub site: SiteSection,
    /// `[site] project_roots`, resolved by the loader (symlinks followed).
    pub project_roots: Option<Vec<PathBuf>>,
    /// Other homes `~` in the site file also means for hidden and read-only
    /// paths: the passwd home when $HOME points elsewhere, so setting HOME
    /// cannot move a site-hidden path out of the way.
    pub other_homes: Vec<PathBuf>,
}

/// The user's config.toml or the project's .jail.toml.
#[derive(Debug, Clone)]
pub struct FileLayer {
    pub file: PathBuf,
    pub profile: Profile,
    /// For the project file: whether `jail trust` recorded this content.
    pub trusted: bool,
}

/// Every configuration input: profiles in layer order (later entries of
/// one name win) and the non-profile layers.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub profiles: Vec<NamedProfile>,
    pub site: Option<SiteLayer>,
    pub user: Option<FileLayer>,
    pub project: Option<FileLayer>,
    /// Directories that stay hidden whatever the layers say: jail's own
    /// user config and state (a jailed program could otherwise widen the
    /// next run).
    pub jail_dirs: Vec<PathBuf>,
    /// jail's own storage (~/.local/share/jail), when known.
    pub data_dir: Option<PathBuf>,
}

impl Catalogue {
    /// The builtin profiles only.
    pub fn builtin() -> Result<Catalogue, ConfigError> {
        let mut profiles = Vec::new();
        for (name, text) in profile::BUILTIN {
            profiles.push(NamedProfile::builtin(name, text));
        }
        Ok(Catalogue {
            profiles,
            ..Catalogue::default()
        })
    }

    pub fn get(&self, name: &str) -> Option<&NamedProfile> {
        self.profiles.iter().rev().find(|p| p.name == name)
    }

    /// The `extends` chain of `name`, root first. A profile that extends
    /// its own name builds on the definition from an earlier layer (your
    /// `claude` with `extends = "claude"` adds to the builtin one). A user
    /// profile may not replace a site profile of the same name (it would
    /// drop the admin's choices): it must use another name and `extends`.
    pub(super) fn chain(&self, name: &str) -> Result<Vec<&NamedProfile>, ConfigError> {
        let mut chain = Vec::new();
        let mut seen = BTreeSet::new();
        // (name, search only below this index)
        let mut next = Some((name.to_string(), self.profiles.len()));
        while let Some((n, below)) = next {
            let (i, p) = self.profiles[..below]
                .iter()
                .enumerate()
                .rev()
                .find(|(_, p)| p.name == n)
                .ok_or_else(|| ConfigError::UnknownProfile(n.clone()))?;
            if !seen.insert(i) {
                return Err(ConfigError::ExtendsCycle(name.to_string()));
            }
            if !matches!(p.source, Source::Site(_)) {
                if let Some(site) = self
                    .profiles
                    .iter()
                    .find(|q| q.name == n && matches!(q.source, Source::Site(_)))
                {
                    return Err(ConfigError::Refused {
                        file: source_file(&site.source),
                        key: format!("profile {n}"),
                        message: format!(
                            "{} may not replace the site's profile `{n}`; give it another \
                             name and `extends = \"{n}\"`",
                            p.source
                        ),
                    });
                }
            }
            next = p.profile()?.extends.clone().map(|e| {
                let below = if e == p.name { i } else { self.profiles.len() };
                (e, below)
            });
            chain.push(p);
        }
        chain.reverse();
        Ok(chain)
    }
}

pub(super) fn source_file(s: &Source) -> PathBuf {
    match s {
        Source::Site(p) | Source::User(p) | Source::Project(p) => p.clone(),
        Source::Builtin(n) => profile::builtin_path(n),
        Source::Cli(f) | Source::Derived(f) => PathBuf::from(f),
    }
}

/// Chooses the profile: `--profile`, else one named like the command, else
/// `shell` for an interactive shell, else `default`.
pub fn select_profile(req: &Request, cat: &Catalogue) -> Sourced<String> {
    if let Some(p) = &req.profile {
        return Sourced::new(p.clone(), Source::Cli("--profile".into()));
    }
    match req.command.first() {
        Some(cmd) => {
            let base = Path::new(cmd)
                .file_name()
                .map(|b| b.to_string_lossy().into_owned())
                .unwrap_or_default();
            if cat.get(&base).is_some() {
                return Sourced::new(base, Source::Derived("named like the command".into()));
            }
            Sourced::new(
                "default".into(),
                Source::Derived("no profile named like the command".into()),
            )
        }
        None => Sourced::new(
            "shell".into(),
            Source::Derived("no command: interactive shell".into()),
        ),
    }
}

/// Whether a value was chosen by the user (their files, the project file,
/// the command line): such values are refused when they exceed the site
/// policy; builtin and site values are clamped instead.
pub fn chosen_by_user(s: &Source) -> bool {
    matches!(s, Source::User(_) | Source::Project(_) | Source::Cli(_))
}
