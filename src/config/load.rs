//! The thin loader: finds and reads the configuration files, checks the
//! site directory's ownership, looks up the project file's trust record,
//! and hands parsed data to `resolve` (which does no I/O).

use std::ffi::OsString;
use std::fs;

use std::path::{Path, PathBuf};

use super::catalogue::{Catalogue, FileLayer, NamedProfile};
use super::domain::expand_domain;
use super::env::{check_env_name, check_env_pattern};
use super::profile::{self, line_col, Profile};
use super::spec::Source;
use super::{trust, ConfigError};

pub const DEFAULT_SITE_DIR: &str = "/etc/jail";
pub const PROJECT_FILE: &str = ".jail.toml";

/// Where each layer's files live.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// The site directory, checked to be root-owned and not user-writable.
    pub site: Option<PathBuf>,
    /// ~/.config/jail (XDG_CONFIG_HOME honoured).
    pub user: PathBuf,
    /// ~/.local/state/jail (XDG_STATE_HOME honoured).
    pub state: PathBuf,
    /// ~/.local/share/jail (XDG_DATA_HOME honoured): jail's own storage,
    /// the persistent homes and the caches' own layers.
    pub data: PathBuf,
}

impl Dirs {
    pub fn trust_store(&self) -> PathBuf {
        self.state.join("trust")
    }
}

/// Works out the directories from the environment (`env` reads a variable).
pub fn dirs(home: &Path, env: impl Fn(&str) -> Option<OsString>) -> Result<Dirs, ConfigError> {
    dirs_with(home, env, Path::new(DEFAULT_SITE_DIR))
}

/// `dirs` with the default site directory as a parameter (for tests).
fn dirs_with(
    home: &Path,
    env: impl Fn(&str) -> Option<OsString>,
    default_site: &Path,
) -> Result<Dirs, ConfigError> {
    let xdg = |var: &str, fallback: &str| {
        env(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| home.join(fallback))
            .join("jail")
    };
    let site = super::site::site_dir(&env, default_site)?;
    Ok(Dirs {
        site,
        user: xdg("XDG_CONFIG_HOME", ".config"),
        state: xdg("XDG_STATE_HOME", ".local/state"),
        data: xdg("XDG_DATA_HOME", ".local/share"),
    })
}

/// What a file may contain, beyond the profile schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A file in some profiles/ directory: `extends` allowed.
    Profile,
    /// The site's jail.toml: `[site]` allowed.
    Site,
    /// The user's config.toml.
    Layer,
    /// The project's .jail.toml: paths may be relative to the project.
    Project,
}

/// Reads a file; `None` when it does not exist. Only a regular file (a
/// symlink to one is fine) is opened, without blocking: a FIFO planted
/// as `.jail.toml` must not hang the next start.
fn read(path: &Path) -> Result<Option<Vec<u8>>, ConfigError> {
    let regular = || -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let not_regular = || std::io::Error::other("not a regular file");
        if !fs::metadata(path)?.is_file() {
            return Err(not_regular());
        }
        let mut f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)?;
        if !f.metadata()?.is_file() {
            return Err(not_regular());
        }
        let mut b = Vec::new();
        f.read_to_end(&mut b)?;
        Ok(b)
    };
    match regular() {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ConfigError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Parses a file of the given kind: the profile schema, then the keys that
/// only some kinds of file may hold, reported at their line and column.
pub fn parse_kind(bytes: &[u8], file: &Path, kind: FileKind) -> Result<Profile, ConfigError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, col) = line_col(
            &String::from_utf8_lossy(&bytes[..e.valid_up_to()]),
            e.valid_up_to(),
        );
        ConfigError::Parse {
            file: file.to_path_buf(),
            line,
            col,
            message: "not valid UTF-8".into(),
        }
    })?;
    let p = profile::parse(text, file)?;
    let misplaced = |offset: usize, message: &str| {
        let (line, col) = line_col(text, offset);
        ConfigError::Misplaced {
            file: file.to_path_buf(),
            line,
            col,
            message: message.to_string(),
        }
    };
    if let Some(s) = &p.site {
        if kind != FileKind::Site {
            return Err(misplaced(
                s.span().start,
                "`[site]` is only allowed in the site's jail.toml",
            ));
        }
    }
    if let Some(n) = &p.slurm.cluster_networks {
        if kind != FileKind::Site {
            return Err(misplaced(
                n.span().start,
                "`[slurm] cluster_networks` is only allowed in the site's jail.toml",
            ));
        }
    }
    if p.extends.is_some() && kind != FileKind::Profile {
        return Err(misplaced(
            key_offset(text, "extends"),
            "`extends` is only allowed in profile files (profiles/NAME.toml)",
        ));
    }
    validate(&p, kind).map_err(|(value, message)| {
        let (line, col) = line_col(text, value_offset(text, &value));
        ConfigError::Parse {
            file: file.to_path_buf(),
            line,
            col,
            message,
        }
    })?;
    Ok(p)
}

/// Checks values the schema cannot (domain names, presets, variable names,
/// path forms), so their errors carry a location too. Returns the
/// offending value and the message.
fn validate(p: &Profile, kind: FileKind) -> Result<(), (String, String)> {
    let src = Source::Derived(String::new());
    let fs = &p.filesystem;
    for path in fs.ro.iter().chain(&fs.rw).chain(&fs.hide).chain(&fs.create) {
        let ok = path.starts_with('/')
            || path == "~"
            || path.starts_with("~/")
            || (kind == FileKind::Project && !path.is_empty() && !path.starts_with('~'));
        if !ok {
            let form = if kind == FileKind::Project {
                "absolute, `~/...` or relative to the project"
            } else {
                "absolute or start with `~/`"
            };
            return Err((path.clone(), format!("path `{path}` must be {form}")));
        }
    }
    for d in p.network.allow.iter().flatten().chain(&p.network.deny) {
        if let Err(e) = expand_domain(d, &src) {
            let msg = match e {
                ConfigError::UnknownPreset { name, .. } => format!(
                    "unknown domain preset `@{name}` (presets: {})",
                    crate::config::presets::names()
                ),
                _ => format!(
                    "`{d}` is not a domain name (e.g. `example.com`, `*.example.com`, `@github`)"
                ),
            };
            return Err((d.clone(), msg));
        }
    }
    for v in p.env.pass.iter().chain(p.env.set.keys()) {
        if check_env_name(v).is_err() {
            return Err((
                v.clone(),
                format!("`{v}` is not a valid environment variable name"),
            ));
        }
    }
    for r in p
        .site
        .iter()
        .flat_map(|s| s.get_ref().project_roots.iter().flatten())
    {
        if !r.starts_with('/') {
            return Err((r.clone(), format!("project root `{r}` must be absolute")));
        }
    }
    for v in &p.env.block {
        if check_env_pattern(v).is_err() {
            return Err((
                v.clone(),
                format!("`{v}` is not a variable name or `*` pattern"),
            ));
        }
    }
    Ok(())
}

/// Byte offset of a string value as written (quoted), else 0: the values
/// checked after parsing carry no span of their own.
fn value_offset(text: &str, value: &str) -> usize {
    for q in ['"', '\'', ' ', '{'] {
        let needle = if q == ' ' || q == '{' {
            format!("{q}{value} =")
        } else {
            format!("{q}{value}{q}")
        };
        if let Some(i) = text.find(&needle) {
            return i + usize::from(q == ' ' || q == '{');
        }
    }
    0
}

/// Byte offset of the line that sets top-level `key` (for error locations
/// of keys whose value carries no span).
fn key_offset(text: &str, key: &str) -> usize {
    let mut off = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with(key) && t[key.len()..].trim_start().starts_with('=') {
            return off + (line.len() - t.len());
        }
        off += line.len();
    }
    0
}

/// The profiles/*.toml of a directory, sorted by name.
fn profiles_in(dir: &Path, site: bool) -> Result<Vec<NamedProfile>, ConfigError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    if site {
        super::site::check_site_file(dir)?;
    }
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let Some(name) = f.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        if site {
            super::site::check_site_file(&f)?;
        }
        let Some(bytes) = read(&f)? else { continue };
        let profile = parse_kind(&bytes, &f, FileKind::Profile)?;
        let source = if site {
            Source::Site(f.clone())
        } else {
            Source::User(f.clone())
        };
        out.push(NamedProfile::new(name, profile, source));
    }
    Ok(out)
}

/// Reads every layer for a jail in `project` (`None`: no project layer,
/// e.g. `jail profiles` run where no project can be).
pub fn load(dirs: &Dirs, project: Option<&Path>) -> Result<Catalogue, ConfigError> {
    let mut cat = Catalogue::builtin()?;
    if let Some(site_dir) = &dirs.site {
        let file = site_dir.join("jail.toml");
        if let Some(bytes) = read(&file)? {
            cat.site = Some(super::site::read_layer(file, &bytes)?);
        }
        cat.profiles
            .extend(profiles_in(&site_dir.join("profiles"), true)?);
    }
    let file = dirs.user.join("config.toml");
    if let Some(bytes) = read(&file)? {
        let profile = parse_kind(&bytes, &file, FileKind::Layer)?;
        cat.user = Some(FileLayer {
            file,
            profile,
            trusted: true,
        });
    }
    cat.profiles
        .extend(profiles_in(&dirs.user.join("profiles"), false)?);
    if let Some(project) = project {
        let file = project.join(PROJECT_FILE);
        if let Some(bytes) = read(&file)? {
            // Parse and hash the same bytes: what was trusted is what applies.
            let profile = parse_kind(&bytes, &file, FileKind::Project)?;
            let hash = trust::sha256_hex(&bytes);
            cat.project = Some(FileLayer {
                trusted: trust::lookup(&dirs.trust_store(), project, &hash),
                file,
                profile,
            });
        }
    }
    cat.jail_dirs = vec![dirs.user.clone(), dirs.state.clone(), dirs.data.clone()];
    cat.data_dir = Some(dirs.data.clone());
    Ok(cat)
}

/// `jail trust`: records consent to the project's .jail.toml as it is now
/// (it must parse). Returns the file's hash and what it may widen.
pub fn trust_project(dirs: &Dirs, project: &Path) -> Result<(String, Vec<String>), ConfigError> {
    let file = project.join(PROJECT_FILE);
    let bytes = read(&file)?.ok_or_else(|| {
        ConfigError::Init(format!(
            "{} does not exist: nothing to trust (`jail init` writes one)",
            file.display()
        ))
    })?;
    let profile = parse_kind(&bytes, &file, FileKind::Project)?;
    let hash = trust::sha256_hex(&bytes);
    trust::record(&dirs.trust_store(), project, &hash)?;
    Ok((hash, trust::may_widen(&profile)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::catalogue::SiteLayer;
    use crate::config::site::enforce_site_on_host;
    use std::os::unix::fs::MetadataExt;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn xdg_dirs_are_honoured() {
        let d = dirs(
            Path::new("/home/u"),
            env(&[("XDG_CONFIG_HOME", "/cfg"), ("XDG_STATE_HOME", "rel")]),
        )
        .unwrap();
        assert_eq!(d.user, PathBuf::from("/cfg/jail"));
        assert_eq!(
            d.state,
            PathBuf::from("/home/u/.local/state/jail"),
            "relative ignored"
        );
        let d = dirs(Path::new("/home/u"), env(&[])).unwrap();
        assert_eq!(d.user, PathBuf::from("/home/u/.config/jail"));
    }

    #[test]
    fn site_dir_must_be_absolute_and_exist() {
        let e = dirs(Path::new("/h"), env(&[("JAIL_SITE_DIR", "rel/dir")])).unwrap_err();
        assert!(e.to_string().contains("absolute"), "{e}");
        let e = dirs(Path::new("/h"), env(&[("JAIL_SITE_DIR", "/nonexistent/x")])).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    #[test]
    fn jail_site_dir_cannot_replace_an_installed_site_policy() {
        // "/" stands for an installed /etc/jail (a root-owned directory),
        // /usr for the directory JAIL_SITE_DIR names instead.
        if !fs::metadata("/usr").is_ok_and(|m| m.uid() == 0 && m.mode() & 0o022 == 0) {
            eprintln!("skipped: /usr is not a root-owned, non-writable directory here");
            return;
        }
        let e = dirs_with(
            Path::new("/h"),
            env(&[("JAIL_SITE_DIR", "/usr")]),
            Path::new("/"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("cannot replace the site policy installed in /"),
            "{e}"
        );
        let d = dirs_with(
            Path::new("/h"),
            env(&[("JAIL_SITE_DIR", "/usr")]),
            Path::new("/nonexistent-site"),
        )
        .unwrap();
        assert_eq!(d.site, Some(fs::canonicalize("/usr").unwrap()));
        let d = dirs_with(
            Path::new("/h"),
            env(&[("JAIL_SITE_DIR", "/")]),
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(d.site, Some(PathBuf::from("/")));
    }

    #[test]
    fn a_world_writable_site_dir_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = std::env::temp_dir().join(format!("jail-site-ww-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
        let e = crate::config::site::check_site_dir(&d)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be owned by root"), "{e}");
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
        // As root a 0755 root-owned dir under sticky /tmp is accepted;
        // as a user it is refused for its owner.
        let ok = crate::config::site::check_site_dir(&d);
        // SAFETY: getuid has no preconditions.
        if unsafe { libc::getuid() } == 0 {
            assert!(ok.is_ok(), "{ok:?}");
        } else {
            assert!(ok.is_err());
        }
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn cluster_networks_are_typed_and_only_in_the_site_file() {
        let t = b"[site]\nslurm_job_network = \"cluster\"\n[slurm]\ncluster_networks = [\"10.1.0.0/16\", \"fd00:1::/64\"]\n";
        let p = parse_kind(t, Path::new("/etc/jail/jail.toml"), FileKind::Site).unwrap();
        let nets = p.slurm.cluster_networks.unwrap().into_inner();
        assert_eq!(nets.len(), 2);
        assert_eq!(nets[1].to_string(), "fd00:1::/64");
        let t = b"[slurm]\ncluster_networks = [\"10.1.0.0/16\"]\n";
        for kind in [FileKind::Layer, FileKind::Project, FileKind::Profile] {
            let e = parse_kind(t, Path::new("/u/config.toml"), kind)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("/u/config.toml:2:"), "{e}");
            assert!(e.contains("only allowed in the site"), "{e}");
        }
        let t = b"[slurm]\ncluster_networks = [\"10.1.0.0/16\", \"10.1.2.3/16\"]\n";
        let e = parse_kind(t, Path::new("/etc/jail/jail.toml"), FileKind::Site)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/etc/jail/jail.toml:2:"), "{e}");
        assert!(e.contains("host bits"), "{e}");
    }

    #[test]
    fn site_section_only_in_site_file_and_extends_only_in_profiles() {
        let t = b"[network]\nmode = \"none\"\n\n[site]\ngpu = false\n";
        let e = parse_kind(t, Path::new("/u/config.toml"), FileKind::Layer)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/u/config.toml:"), "{e}");
        assert!(e.contains("[site]"), "{e}");
        assert!(parse_kind(t, Path::new("/etc/jail/jail.toml"), FileKind::Site).is_ok());
        let t = b"description = \"x\"\nextends = \"default\"\n";
        let e = parse_kind(t, Path::new("/p/.jail.toml"), FileKind::Project)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("/p/.jail.toml:2:1: "), "{e}");
        assert!(parse_kind(t, Path::new("/u/profiles/x.toml"), FileKind::Profile).is_ok());
    }

    #[test]
    fn bad_values_have_a_location() {
        let cases: &[(&str, FileKind, (usize, usize))] = &[
            (
                "[network]\nallow = [\"a.com\", \"@nope\"]\n",
                FileKind::Layer,
                (2, 19),
            ),
            (
                "[network]\ndeny = [\n  \"bad domain\",\n]\n",
                FileKind::Layer,
                (3, 3),
            ),
            ("[env]\npass = ['A-B']\n", FileKind::Layer, (2, 9)),
            ("[env]\nset = { 1X = \"v\" }\n", FileKind::Layer, (2, 9)),
            ("[env]\nblock = [\"A?\"]\n", FileKind::Layer, (2, 10)),
            ("[filesystem]\nro = [\"data\"]\n", FileKind::Layer, (2, 7)),
            (
                "[filesystem]\nro = [\"~user/x\"]\n",
                FileKind::Project,
                (2, 7),
            ),
            (
                "[site]\nproject_roots = [\"~/p\"]\n",
                FileKind::Site,
                (2, 18),
            ),
        ];
        for (text, kind, (line, col)) in cases {
            let e = parse_kind(text.as_bytes(), Path::new("f"), *kind)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(&format!("f:{line}:{col}: ")), "{text}: {e}");
        }
        let ok = b"[filesystem]\nro = [\"data\"]\n";
        assert!(parse_kind(ok, Path::new("f"), FileKind::Project).is_ok());
    }

    #[test]
    fn symlinks_do_not_get_past_the_site() {
        use crate::config::{resolve, Request};
        use std::os::unix::fs::symlink;
        let base = std::env::temp_dir().join(format!("jail-site-ln-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let (home, data) = (base.join("home"), base.join("data"));
        fs::create_dir_all(home.join("proj")).unwrap();
        fs::create_dir_all(data.join("secret")).unwrap();
        fs::create_dir_all(data.join("ref")).unwrap();
        symlink(data.join("secret"), home.join("s")).unwrap();
        symlink(data.join("ref"), home.join("r")).unwrap();
        let text = format!(
            "[filesystem]\nhide = [\"{0}/secret\"]\nro = [\"{0}/ref\"]\n",
            data.display()
        );
        let file = base.join("jail.toml");
        let mut cat = Catalogue::builtin().unwrap();
        cat.site = Some(SiteLayer {
            profile: parse_kind(text.as_bytes(), &file, FileKind::Site).unwrap(),
            file,
            site: Default::default(),
            project_roots: None,
            other_homes: vec![],
        });
        let facts = crate::testutil::facts(1, &home, &home.join("proj"));
        let check = |ro: &str, rw: &str| {
            let req = Request {
                command: vec!["true".into()],
                ro: [ro]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.to_string())
                    .collect(),
                rw: [rw]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .map(|s| s.to_string())
                    .collect(),
                ..Request::default()
            };
            let spec = resolve(&req, &facts, &cat).unwrap();
            enforce_site_on_host(&spec, &cat)
        };
        assert!(check("", "").is_ok());
        let e = check("~/s", "").unwrap_err().to_string();
        assert!(e.contains("`filesystem.hide`"), "{e}");
        let e = check("", "~/r").unwrap_err().to_string();
        assert!(e.contains("`filesystem.ro`"), "{e}");
        assert!(
            check("~/r", "").is_ok(),
            "read-only through the link is fine"
        );
        fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn invalid_utf8_has_a_location() {
        let e = parse_kind(b"a = 1\n\xff", Path::new("f"), FileKind::Layer)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("f:2:1: "), "{e}");
    }

    #[test]
    fn load_reads_layers_and_trust() {
        let base = std::env::temp_dir().join(format!("jail-load-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let (user, state, project) = (base.join("cfg"), base.join("state"), base.join("proj"));
        fs::create_dir_all(user.join("profiles")).unwrap();
        fs::create_dir_all(&project).unwrap();
        fs::write(user.join("config.toml"), "[filesystem]\nro = [\"/data\"]\n").unwrap();
        fs::write(
            user.join("profiles/mine.toml"),
            "extends = \"default\"\n[network]\nmode = \"host\"\n",
        )
        .unwrap();
        fs::write(project.join(".jail.toml"), "[env]\npass = [\"X\"]\n").unwrap();
        let d = Dirs {
            site: None,
            user: user.clone(),
            data: state.join("data"),
            state,
        };
        let cat = load(&d, Some(&project)).unwrap();
        assert!(cat.user.is_some());
        assert!(matches!(cat.get("mine").unwrap().source, Source::User(_)));
        assert!(!cat.project.as_ref().unwrap().trusted);
        trust_project(&d, &project).unwrap();
        assert!(load(&d, Some(&project)).unwrap().project.unwrap().trusted);
        fs::write(project.join(".jail.toml"), "[env]\npass = [\"Y\"]\n").unwrap();
        assert!(!load(&d, Some(&project)).unwrap().project.unwrap().trusted);
        assert_eq!(cat.jail_dirs, vec![user, d.state.clone(), d.data.clone()]);
        fs::remove_dir_all(&base).unwrap();
    }
}
