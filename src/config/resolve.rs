//! Layering: profiles (following `extends`) and the command line are merged
//! into one `JailSpec`. Pure: host facts come in as data.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use super::profile::{self, NetMode, Profile, SlurmEnabled};
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
    pub dns_upstream: Option<String>,
    pub env: Vec<String>,
    pub gpu: bool,
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
}

/// A profile found in some layer.
#[derive(Debug, Clone)]
pub struct NamedProfile {
    pub name: String,
    pub profile: Profile,
    pub source: Source,
}

/// Every profile known, in layer order (later entries of one name win).
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub profiles: Vec<NamedProfile>,
}

impl Catalogue {
    /// The builtin profiles only.
    pub fn builtin() -> Result<Catalogue, ConfigError> {
        let mut profiles = Vec::new();
        for (name, text) in profile::BUILTIN {
            profiles.push(NamedProfile {
                name: name.to_string(),
                profile: profile::parse(text, &profile::builtin_path(name))?,
                source: Source::Builtin(name.to_string()),
            });
        }
        Ok(Catalogue { profiles })
    }

    pub fn get(&self, name: &str) -> Option<&NamedProfile> {
        self.profiles.iter().rev().find(|p| p.name == name)
    }

    /// The `extends` chain of `name`, root first.
    fn chain(&self, name: &str) -> Result<Vec<&NamedProfile>, ConfigError> {
        let mut chain = Vec::new();
        let mut seen = BTreeSet::new();
        let mut next = Some(name.to_string());
        while let Some(n) = next {
            if !seen.insert(n.clone()) {
                return Err(ConfigError::ExtendsCycle(name.to_string()));
            }
            let p = self
                .get(&n)
                .ok_or_else(|| ConfigError::UnknownProfile(n.clone()))?;
            next = p.profile.extends.clone();
            chain.push(p);
        }
        chain.reverse();
        Ok(chain)
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

pub fn resolve(req: &Request, facts: &HostFacts, cat: &Catalogue) -> Result<JailSpec, ConfigError> {
    let profile = select_profile(req, cat);
    let chain = cat.chain(&profile.value)?;
    let home = &facts.user.home;

    let mut home_mode = Sourced::new(HomeMode::Tmpfs, Source::Derived("jail's default".into()));
    let mut net_mode = Sourced::new(NetMode::None, Source::Derived("jail's default".into()));
    let mut dns_upstream = None;
    let mut slurm = Sourced::new(
        SlurmEnabled::Bool(false),
        Source::Derived("jail's default".into()),
    );
    let (mut ro, mut rw, mut hide) = (Vec::new(), Vec::new(), Vec::new());
    let (mut allow, mut deny, mut ports) = (Vec::new(), Vec::new(), Vec::new());
    let (mut pass, mut set) = (Vec::new(), Vec::<(String, Sourced<String>)>::new());

    for np in &chain {
        let p = &np.profile;
        let src = || np.source.clone();
        if let Some(h) = p.filesystem.home {
            home_mode = Sourced::new(h, src());
        }
        for s in &p.filesystem.ro {
            put_path(
                &mut ro,
                &mut rw,
                abs_profile_path(s, home, &np.source)?,
                src(),
            );
        }
        for s in &p.filesystem.rw {
            put_path(
                &mut rw,
                &mut ro,
                abs_profile_path(s, home, &np.source)?,
                src(),
            );
        }
        for s in &p.filesystem.hide {
            push_unique(&mut hide, abs_profile_path(s, home, &np.source)?, src());
        }
        if let Some(m) = p.network.mode {
            net_mode = Sourced::new(m, src());
        }
        for d in &p.network.allow {
            push_unique(&mut allow, d.to_ascii_lowercase(), src());
        }
        for d in &p.network.deny {
            push_unique(&mut deny, d.to_ascii_lowercase(), src());
        }
        for &port in &p.network.ports {
            push_unique(&mut ports, port, src());
        }
        if let Some(d) = &p.network.dns_upstream {
            dns_upstream = Some(Sourced::new(d.clone(), src()));
        }
        for v in &p.env.pass {
            push_unique(&mut pass, v.clone(), src());
        }
        for (k, v) in &p.env.set {
            set.retain(|(name, _)| name != k);
            set.push((k.clone(), Sourced::new(expand_tilde(v, home), src())));
        }
        if let Some(e) = p.slurm.enabled {
            slurm = Sourced::new(e, src());
        }
    }

    // The command line: the last layer.
    let cli = |flag: &str| Source::Cli(flag.to_string());
    for s in &req.ro {
        put_path(
            &mut ro,
            &mut rw,
            abs_cli_path(s, home, &facts.cwd),
            cli("--ro"),
        );
    }
    for s in &req.rw {
        put_path(
            &mut rw,
            &mut ro,
            abs_cli_path(s, home, &facts.cwd),
            cli("--rw"),
        );
    }
    // A hidden path shows only when the command line names that path itself.
    let named: BTreeSet<PathBuf> = req
        .ro
        .iter()
        .chain(&req.rw)
        .map(|s| abs_cli_path(s, home, &facts.cwd))
        .collect();
    hide.retain(|h: &Sourced<PathBuf>| !named.contains(&h.value));
    for s in &req.hide {
        push_unique(&mut hide, abs_cli_path(s, home, &facts.cwd), cli("--hide"));
    }
    if let Some(m) = req.net {
        net_mode = Sourced::new(m, cli("--net"));
    }
    for d in &req.allow_domain {
        push_unique(&mut allow, d.to_ascii_lowercase(), cli("--allow-domain"));
    }
    for &p in &req.allow_port {
        push_unique(&mut ports, p, cli("--allow-port"));
    }
    if let Some(d) = &req.dns_upstream {
        dns_upstream = Some(Sourced::new(d.clone(), cli("--dns-upstream")));
    }
    for e in &req.env {
        match e.split_once('=') {
            Some((k, v)) => {
                check_env_name(k)?;
                set.retain(|(name, _)| name != k);
                set.push((k.to_string(), Sourced::new(v.to_string(), cli("--env"))));
            }
            None => {
                check_env_name(e)?;
                push_unique(&mut pass, e.clone(), cli("--env"));
            }
        }
    }

    let (project, cwd) = project_dir(facts)?;
    let command = if req.command.is_empty() {
        vec![facts.shell.clone()]
    } else {
        req.command.clone()
    };
    let slurm_on = match slurm.value {
        SlurmEnabled::Bool(b) => b,
        SlurmEnabled::Auto(_) => facts.has_sbatch,
    };

    Ok(JailSpec {
        profile,
        command,
        user: facts.user.clone(),
        project,
        cwd,
        filesystem: FsPolicy {
            home: home_mode,
            system_ro: SYSTEM_RO.iter().map(PathBuf::from).collect(),
            ro,
            rw,
            hide,
        },
        network: NetPolicy {
            mode: net_mode,
            allow,
            deny,
            ports,
            dns_upstream,
        },
        env: EnvPolicy { pass, set },
        gpu: if req.gpu {
            Sourced::new(true, cli("--gpu"))
        } else {
            Sourced::new(false, Source::Derived("jail's default".into()))
        },
        slurm: Sourced::new(slurm_on, slurm.source),
    })
}

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
fn project_dir(facts: &HostFacts) -> Result<(Sourced<PathBuf>, PathBuf), ConfigError> {
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
    if dir == facts.user.home || dir == Path::new("/") {
        return Err(ConfigError::BadProject(dir));
    }
    Ok((Sourced::new(dir, source), facts.cwd.clone()))
}

fn check_env_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::BadEnvName(name.to_string()))
    }
}

fn push_unique<T: PartialEq>(v: &mut Vec<Sourced<T>>, value: T, source: Source) {
    if !v.iter().any(|s| s.value == value) {
        v.push(Sourced::new(value, source));
    }
}

/// Adds `path` to `into`, removing it from `other` (a later layer's choice
/// between ro and rw replaces an earlier one's).
fn put_path(
    into: &mut Vec<Sourced<PathBuf>>,
    other: &mut Vec<Sourced<PathBuf>>,
    path: PathBuf,
    source: Source,
) {
    other.retain(|s| s.value != path);
    into.retain(|s| s.value != path);
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

/// Profile paths must be absolute or start with `~/`.
fn abs_profile_path(s: &str, home: &Path, source: &Source) -> Result<PathBuf, ConfigError> {
    let p = PathBuf::from(expand_tilde(s, home));
    if !p.is_absolute() {
        return Err(ConfigError::RelativePath {
            path: s.to_string(),
            origin: source.to_string(),
        });
    }
    Ok(normalize(&p))
}

/// Command-line paths may be relative to the cwd.
fn abs_cli_path(s: &str, home: &Path, cwd: &Path) -> PathBuf {
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

    fn facts() -> HostFacts {
        HostFacts {
            user: UserInfo {
                uid: 1000,
                gid: 1000,
                name: "u".into(),
                home: "/home/u".into(),
            },
            cwd: "/home/u/proj/sub".into(),
            shell: "/bin/bash".into(),
            git_root: Some("/home/u/proj".into()),
            has_sbatch: false,
        }
    }

    fn req(cmd: &[&str]) -> Request {
        Request {
            command: cmd.iter().map(|s| s.to_string()).collect(),
            ..Request::default()
        }
    }

    fn paths(v: &[Sourced<PathBuf>]) -> Vec<String> {
        v.iter().map(|s| s.value.display().to_string()).collect()
    }

    #[test]
    fn default_profile_and_project_from_git() {
        let spec = resolve(
            &req(&["make", "test"]),
            &facts(),
            &Catalogue::builtin().unwrap(),
        )
        .unwrap();
        assert_eq!(spec.profile.value, "default");
        assert_eq!(spec.project.value, PathBuf::from("/home/u/proj"));
        assert_eq!(spec.cwd, PathBuf::from("/home/u/proj/sub"));
        assert_eq!(spec.network.mode.value, NetMode::None);
        assert_eq!(spec.filesystem.home.value, HomeMode::Tmpfs);
        assert!(paths(&spec.filesystem.hide).contains(&"/home/u/.ssh".to_string()));
        assert_eq!(
            spec.filesystem.home.source,
            Source::Builtin("default".into())
        );
    }

    #[test]
    fn no_command_runs_the_shell_profile() {
        let spec = resolve(&req(&[]), &facts(), &Catalogue::builtin().unwrap()).unwrap();
        assert_eq!(spec.command, vec!["/bin/bash"]);
        assert_eq!(spec.profile.value, "shell");
        // shell extends default: the credential list is inherited
        assert!(paths(&spec.filesystem.hide).contains(&"/home/u/.aws".to_string()));
    }

    #[test]
    fn profile_named_like_command_is_picked() {
        let spec = resolve(
            &req(&["/usr/bin/shell", "-c", "x"]),
            &facts(),
            &Catalogue::builtin().unwrap(),
        )
        .unwrap();
        assert_eq!(spec.profile.value, "shell");
        assert!(matches!(spec.profile.source, Source::Derived(_)));
    }

    #[test]
    fn explicit_profile_wins_and_unknown_is_an_error() {
        let mut r = req(&["shell"]);
        r.profile = Some("default".into());
        let spec = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap();
        assert_eq!(spec.profile.value, "default");
        r.profile = Some("nope".into());
        let err = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownProfile(n) if n == "nope"));
    }

    #[test]
    fn cli_paths_are_absolute_and_sourced() {
        let mut r = req(&["true"]);
        r.ro = vec!["../data".into(), "~/.config/x/".into()];
        r.rw = vec!["/scratch/u/./run".into()];
        r.hide = vec!["secret.txt".into()];
        let spec = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap();
        let ro = paths(&spec.filesystem.ro);
        assert!(ro.contains(&"/home/u/proj/data".to_string()), "{ro:?}");
        assert!(ro.contains(&"/home/u/.config/x".to_string()), "{ro:?}");
        assert_eq!(paths(&spec.filesystem.rw), vec!["/scratch/u/run"]);
        let last = spec.filesystem.hide.last().unwrap();
        assert_eq!(last.value, PathBuf::from("/home/u/proj/sub/secret.txt"));
        assert_eq!(last.source, Source::Cli("--hide".into()));
    }

    #[test]
    fn naming_a_hidden_path_itself_unhides_it_but_a_parent_does_not() {
        let mut r = req(&["true"]);
        r.ro = vec!["~/.config".into()];
        let spec = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap();
        assert!(paths(&spec.filesystem.hide).contains(&"/home/u/.config/gh".to_string()));
        r.ro = vec!["~/.config/gh".into()];
        let spec = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap();
        assert!(!paths(&spec.filesystem.hide).contains(&"/home/u/.config/gh".to_string()));
    }

    #[test]
    fn later_rw_replaces_earlier_ro() {
        let mut r = req(&["true"]);
        r.rw = vec!["~/.gitconfig".into()];
        let spec = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap();
        assert!(!paths(&spec.filesystem.ro).contains(&"/home/u/.gitconfig".to_string()));
        assert!(paths(&spec.filesystem.rw).contains(&"/home/u/.gitconfig".to_string()));
    }

    #[test]
    fn env_flags_split_into_pass_and_set() {
        let mut r = req(&["true"]);
        r.env = vec!["FOO".into(), "BAR=1=2".into()];
        let spec = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap();
        assert!(spec.env.pass.iter().any(|p| p.value == "FOO"));
        assert!(spec
            .env
            .set
            .iter()
            .any(|(k, v)| k == "BAR" && v.value == "1=2"));
        r.env = vec!["BAD-NAME=1".into()];
        assert!(resolve(&r, &facts(), &Catalogue::builtin().unwrap()).is_err());
    }

    #[test]
    fn home_as_project_is_refused() {
        let mut f = facts();
        f.git_root = None;
        f.cwd = "/home/u".into();
        let err = resolve(&req(&["true"]), &f, &Catalogue::builtin().unwrap()).unwrap_err();
        assert!(matches!(err, ConfigError::BadProject(_)));
    }

    #[test]
    fn net_flag_overrides_profile() {
        let mut r = req(&["true"]);
        r.net = Some(NetMode::Host);
        let spec = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap();
        assert_eq!(spec.network.mode.value, NetMode::Host);
        assert_eq!(spec.network.mode.source, Source::Cli("--net".into()));
    }

    #[test]
    fn extends_cycle_is_an_error() {
        let mut cat = Catalogue::default();
        for (n, e) in [("a", "b"), ("b", "a")] {
            cat.profiles.push(NamedProfile {
                name: n.into(),
                profile: Profile {
                    extends: Some(e.into()),
                    ..Profile::default()
                },
                source: Source::Builtin(n.into()),
            });
        }
        let mut r = req(&["true"]);
        r.profile = Some("a".into());
        assert!(matches!(
            resolve(&r, &facts(), &cat),
            Err(ConfigError::ExtendsCycle(_))
        ));
    }

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(normalize(Path::new("/a/./b/../c/")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/../..")), PathBuf::from("/"));
    }
}
