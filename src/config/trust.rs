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

use super::ConfigError;

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
