//! Consent to a project's .jail.toml: `jail trust` records (canonical
//! project path, sha256 of the file's bytes) in the user's state dir, one
//! small file per project. A changed file or another project has no
//! matching record, so it loses the consent. Pure except `record`/`lookup`,
//! which take the store directory from the loader.

use sha2::{Digest, Sha256};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::profile::{HomeMode, NetMode, Profile, SlurmEnabled};
use super::ConfigError;

/// What a project file asks for that may widen a profile, as
/// `key: values` lines: shown by `jail trust` so the consent is informed.
/// (Whether it widens depends on the profile; `resolve` decides per run.)
pub fn may_widen(p: &Profile) -> Vec<String> {
    let mut out = Vec::new();
    let mut put = |key: &str, vals: Vec<String>| {
        if !vals.is_empty() {
            out.push(format!("{key}: {}", vals.join(", ")));
        }
    };
    let fs = &p.filesystem;
    put(
        "filesystem.home",
        fs.home
            .filter(|h| *h != HomeMode::Tmpfs)
            .map(|h| format!("{h:?}").to_lowercase())
            .into_iter()
            .collect(),
    );
    put("filesystem.ro", fs.ro.clone());
    // A directory of jail's own at any path: writable inside.
    put("filesystem.own", fs.own.clone());
    put(
        "filesystem.rw",
        fs.rw.iter().chain(&fs.create).cloned().collect(),
    );
    put(
        "network.mode",
        p.network
            .mode
            .filter(|m| *m != NetMode::None)
            .map(|m| format!("{m:?}").to_lowercase())
            .into_iter()
            .collect(),
    );
    put("network.allow", p.network.allow.clone().unwrap_or_default());
    put(
        "network.ports",
        p.network
            .ports
            .iter()
            .flatten()
            .map(|x| x.to_string())
            .collect(),
    );
    put(
        "network.dns_upstream",
        p.network.dns_upstream.clone().into_iter().collect(),
    );
    put(
        "network.expose_host_ports",
        p.network
            .expose_host_ports
            .iter()
            .flatten()
            .map(|x| x.to_string())
            .collect(),
    );
    put(
        "network.proxy",
        p.network.proxy.clone().into_iter().collect(),
    );
    put("env.pass", p.env.pass.clone());
    put(
        "slurm.enabled",
        p.slurm
            .enabled
            .filter(|e| *e != SlurmEnabled::Bool(false))
            .map(|_| "on".to_string())
            .into_iter()
            .collect(),
    );
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The record's file name: a hash of the project path, so any path works
/// as a key and two projects never share a record.
fn record_name(project: &Path) -> String {
    format!(
        "{}.trust",
        sha256_hex(project.as_os_str().as_encoded_bytes())
    )
}

/// The record's content: the project path (checked on lookup, so a record
/// is never applied to another project) and the file's hash.
pub fn render(project: &Path, file_hash: &str) -> String {
    let r = Record {
        project: project.display().to_string(),
        sha256: file_hash.to_string(),
    };
    // Serializing two strings cannot fail.
    toml::to_string(&r).unwrap_or_default()
}

#[derive(serde::Deserialize, serde::Serialize)]
struct Record {
    project: String,
    sha256: String,
}

/// Whether `content` (a record) grants trust to this project and hash.
pub fn matches(content: &str, project: &Path, file_hash: &str) -> bool {
    match toml::from_str::<Record>(content) {
        Ok(r) => Path::new(&r.project) == project && r.sha256 == file_hash,
        Err(_) => false,
    }
}

pub fn lookup(store: &Path, project: &Path, file_hash: &str) -> bool {
    fs::read_to_string(store.join(record_name(project)))
        .map(|c| matches(&c, project, file_hash))
        .unwrap_or(false)
}

/// Writes the record (atomically: temporary file, then rename).
pub fn record(store: &Path, project: &Path, file_hash: &str) -> Result<PathBuf, ConfigError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ConfigError::Io { path, source }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(store)
        .map_err(io(store))?;
    let dst = store.join(record_name(project));
    let tmp = store.join(format!(".{}.{}", record_name(project), std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(render(project, file_hash).as_bytes())
        .map_err(io(&tmp))?;
    fs::rename(&tmp, &dst).map_err(io(&dst))?;
    Ok(dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn may_widen_lists_only_widening_keys() {
        let p = crate::config::profile::parse(
            "[filesystem]\nhide = [\"x\"]\nrw = [\"/s\"]\n[network]\nmode = \"none\"\n\
             allow = [\"@pypi\"]\n[env]\npass = [\"A\"]\nset = { B = \"1\" }\n",
            Path::new("f"),
        )
        .unwrap();
        assert_eq!(
            may_widen(&p),
            ["filesystem.rw: /s", "network.allow: @pypi", "env.pass: A"]
        );
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_record_matches_only_its_project_and_hash() {
        let r = render(Path::new("/home/u/p"), "aa");
        assert!(matches(&r, Path::new("/home/u/p"), "aa"));
        assert!(!matches(&r, Path::new("/home/u/p"), "bb"), "edited file");
        assert!(!matches(&r, Path::new("/home/u/q"), "aa"), "other project");
        assert!(!matches("garbage", Path::new("/home/u/p"), "aa"));
    }

    #[test]
    fn record_then_lookup() {
        let dir = std::env::temp_dir().join(format!("jail-trust-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let p = Path::new("/x/\"quoted\" project");
        assert!(!lookup(&dir, p, "h1"));
        record(&dir, p, "h1").unwrap();
        assert!(lookup(&dir, p, "h1"));
        assert!(!lookup(&dir, p, "h2"));
        record(&dir, p, "h2").unwrap();
        assert!(lookup(&dir, p, "h2") && !lookup(&dir, p, "h1"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
