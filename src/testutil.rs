//! Helpers for unit tests.

use std::fs;
use std::path::PathBuf;

/// A fresh directory under the system's temporary directory, named after
/// the test and the process, removed when dropped. `.0` is canonical.
pub struct Tmp(pub PathBuf);

impl Tmp {
    pub fn new(name: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("jail-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(fs::canonicalize(&p).unwrap())
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Host facts of a user `u` (uid/gid `id`) with `home`, working in `cwd`
/// (no git root, no sbatch unless set after).
pub fn facts(id: u32, home: &std::path::Path, cwd: &std::path::Path) -> crate::config::HostFacts {
    crate::config::HostFacts {
        user: crate::config::spec::UserInfo {
            uid: id,
            gid: id,
            name: "u".into(),
            home: home.to_path_buf(),
        },
        cwd: cwd.to_path_buf(),
        shell: "/bin/sh".into(),
        git_root: None,
        has_sbatch: false,
        dir_modes: vec![],
    }
}

/// The resolved builtin policy of `true` for user `u` (1000) in
/// /home/u/p, with or without sbatch on the host.
pub fn spec(has_sbatch: bool) -> crate::config::JailSpec {
    use crate::config::{resolve, Catalogue, Request};
    let mut facts = facts(
        1000,
        std::path::Path::new("/home/u"),
        std::path::Path::new("/home/u/p"),
    );
    facts.has_sbatch = has_sbatch;
    let req = Request {
        command: vec!["true".into()],
        ..Default::default()
    };
    resolve(&req, &facts, &Catalogue::builtin().unwrap()).unwrap()
}
