//! Helpers for the configuration's unit tests: host facts, requests and
//! catalogues with given site, user and project layers.

pub(crate) use std::path::{Path, PathBuf};

pub(crate) use super::catalogue::*;
pub(crate) use super::domain::Domain;
pub(crate) use super::profile::Profile;
pub(crate) use super::resolve::resolve;
pub(crate) use super::spec::*;
pub(crate) use super::ConfigError;

pub(crate) fn facts() -> HostFacts {
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
        dir_modes: vec![],
    }
}

pub(crate) fn req(cmd: &[&str]) -> Request {
    Request {
        command: cmd.iter().map(|s| s.to_string()).collect(),
        ..Request::default()
    }
}

pub(crate) fn paths(v: &[Sourced<PathBuf>]) -> Vec<String> {
    v.iter().map(|s| s.value.display().to_string()).collect()
}

pub(crate) use crate::config::load::{parse_kind, FileKind};

pub(crate) fn parse(text: &str, file: &str, kind: FileKind) -> Profile {
    parse_kind(text.as_bytes(), Path::new(file), kind).unwrap()
}

pub(crate) const SITE: &str = "/etc/jail/jail.toml";

pub(crate) const PROJ: &str = "/home/u/proj/.jail.toml";

/// A catalogue with the builtins plus the given layers.
pub(crate) fn cat(
    site: Option<&str>,
    user: Option<&str>,
    project: Option<(&str, bool)>,
) -> Catalogue {
    let mut c = Catalogue::builtin().unwrap();
    if let Some(t) = site {
        let mut p = parse(t, SITE, FileKind::Site);
        let site = p.site.take().map(|s| s.into_inner()).unwrap_or_default();
        let project_roots = site
            .project_roots
            .as_ref()
            .map(|r| r.iter().map(PathBuf::from).collect());
        c.site = Some(SiteLayer {
            file: SITE.into(),
            profile: p,
            site,
            project_roots,
            other_homes: vec!["/home/real-u".into()],
        });
    }
    if let Some(t) = user {
        c.user = Some(FileLayer {
            file: "/home/u/.config/jail/config.toml".into(),
            profile: parse(t, "/home/u/.config/jail/config.toml", FileKind::Layer),
            trusted: true,
        });
    }
    if let Some((t, trusted)) = project {
        c.project = Some(FileLayer {
            file: PROJ.into(),
            profile: parse(t, PROJ, FileKind::Project),
            trusted,
        });
    }
    c
}

pub(crate) fn run(c: &Catalogue, r: &Request) -> Result<JailSpec, ConfigError> {
    resolve(r, &facts(), c)
}

#[track_caller]
pub(crate) fn refused(r: Result<JailSpec, ConfigError>, want_key: &str) -> String {
    match r {
        Err(e @ ConfigError::Refused { .. }) => {
            let msg = e.to_string();
            if let ConfigError::Refused { file, key, .. } = &e {
                assert_eq!(file, Path::new(SITE), "{msg}");
                assert_eq!(key, want_key, "{msg}");
            }
            assert!(msg.starts_with(SITE), "{msg}");
            msg
        }
        other => panic!("expected a refusal of {want_key}, got {other:?}"),
    }
}

#[track_caller]
pub(crate) fn untrusted(r: Result<JailSpec, ConfigError>, want_key: &str) {
    match r {
        Err(ConfigError::Untrusted { key, file, .. }) => {
            assert_eq!(key, want_key);
            assert_eq!(file, Path::new(PROJ));
        }
        other => panic!("expected untrusted {want_key}, got {other:?}"),
    }
}

pub(crate) fn allow(spec: &JailSpec) -> Vec<String> {
    spec.network
        .allow
        .iter()
        .map(|a| a.value.to_string())
        .collect()
}

pub(crate) fn domain_covers(ceiling: &str, domain: &str) -> bool {
    let d = |s: &str| Domain::parse(s).unwrap();
    d(ceiling).covers(&d(domain))
}
