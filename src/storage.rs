//! jail's own storage, per profile, under ~/.local/share/jail/profiles/NAME
//! (never visible inside a jail but as what it provides):
//! - `home/`: the persistent home (`home = "persist"`), bound at $HOME;
//! - `cache/PATH/{upper,work}`: each cache's own layer: the jail sees the
//!   host's cache directory with this layer on top (overlayfs), so what
//!   programs download persists between runs while the host's cache, which
//!   host tools later execute from, is never written.
//!
//! Everything here is made by the launcher before the jail starts, as the
//! user, mode 0700.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The persistent home of a profile's storage.
pub fn home_dir(storage: &Path) -> PathBuf {
    storage.join("home")
}

/// A cache's own layer: (upper, work) directories for `host` (a host path).
pub fn cache_layer(storage: &Path, host: &Path) -> (PathBuf, PathBuf) {
    let d = storage.join("cache").join(escape(host));
    (d.join("upper"), d.join("work"))
}

/// The directory jail keeps in place of `host` (profile key `own`).
pub fn own_dir(storage: &Path, host: &Path) -> PathBuf {
    storage.join("own").join(escape(host))
}

/// A path as one directory name: `/` becomes `%`, `%` becomes `%25`.
fn escape(p: &Path) -> String {
    p.to_string_lossy()
        .trim_start_matches('/')
        .replace('%', "%25")
        .replace('/', "%")
}

fn unescape(name: &str) -> String {
    format!("/{}", name.replace('%', "/").replace("/25", "%"))
}

/// Whether overlayfs can keep its upper layer in `dir`'s filesystem (NFS
/// and FUSE cannot hold one); without it a cache shows only its own
/// layer, not the host's cache beneath.
pub fn can_hold_upper(dir: &Path) -> bool {
    const NFS: i64 = 0x6969;
    const FUSE: i64 = 0x6573_5546;
    const SMB2: i64 = 0xfe53_4d42u32 as i64;
    const CIFS: i64 = 0xff53_4d42u32 as i64;
    let mut probe = dir.to_path_buf();
    while !probe.exists() {
        if !probe.pop() {
            return false;
        }
    }
    match nix::sys::statfs::statfs(&probe) {
        Ok(s) => {
            let t = s.filesystem_type().0;
            ![NFS, FUSE, SMB2, CIFS].contains(&t)
        }
        Err(_) => false,
    }
}

/// Makes `dir` (and parents) with mode 0700.
pub fn make_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// One line of `jail cache`.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub profile: String,
    /// "home" or the cache's host path.
    pub what: String,
    pub path: PathBuf,
    pub bytes: u64,
}

/// What jail keeps, per profile (`only`: one profile).
pub fn list(data: &Path, only: Option<&str>) -> Vec<Entry> {
    let mut out = Vec::new();
    let profiles = data.join("profiles");
    let mut names: Vec<String> = fs::read_dir(&profiles)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| only.is_none_or(|o| o == n))
        .collect();
    names.sort();
    for name in names {
        let st = profiles.join(&name);
        let home = home_dir(&st);
        if home.is_dir() {
            out.push(Entry {
                profile: name.clone(),
                what: "home".into(),
                bytes: du(&home),
                path: home,
            });
        }
        let mut caches: Vec<PathBuf> = fs::read_dir(st.join("cache"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .collect();
        caches.sort();
        for c in caches {
            let what = c
                .file_name()
                .map(|n| unescape(&n.to_string_lossy()))
                .unwrap_or_default();
            out.push(Entry {
                profile: name.clone(),
                what,
                bytes: du(&c.join("upper")),
                path: c,
            });
        }
    }
    out
}

/// Removes the caches' layers (and with `home`, the persistent homes) of
/// one profile or all; returns what was removed.
pub fn clear(data: &Path, only: Option<&str>, home: bool) -> io::Result<Vec<Entry>> {
    let mut removed = Vec::new();
    for e in list(data, only) {
        if e.what == "home" && !home {
            continue;
        }
        remove_all(&e.path)?;
        removed.push(e);
    }
    Ok(removed)
}

/// remove_dir_all, after giving the owner access to every directory:
/// overlayfs leaves its work directory mode 000.
fn remove_all(p: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        if fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir()) {
            fs::set_permissions(&d, fs::Permissions::from_mode(0o700))?;
            stack.extend(fs::read_dir(&d)?.flatten().map(|e| e.path()));
        }
    }
    fs::remove_dir_all(p)
}

/// Bytes held below `p` (allocated blocks, so sparse files count little),
/// without following symlinks or crossing filesystems.
fn du(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(root) = fs::symlink_metadata(p) else {
        return 0;
    };
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(m) = fs::symlink_metadata(e.path()) else {
                continue;
            };
            total += m.blocks() * 512;
            if m.is_dir() && m.dev() == root.dev() {
                stack.push(e.path());
            }
        }
    }
    total
}

/// 1.2 MiB style sizes.
pub fn human(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_names_round_trip_and_listing_clearing_work() {
        for p in ["/home/u/.cargo/registry", "/a/50%/b"] {
            assert_eq!(unescape(&escape(Path::new(p))), p);
        }
        let t = std::env::temp_dir().join(format!("jail-storage-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        let st = t.join("profiles/default");
        let (up, _) = cache_layer(&st, Path::new("/home/u/.cache/pip"));
        make_dir(&up).unwrap();
        fs::write(up.join("wheel"), vec![1u8; 8192]).unwrap();
        make_dir(&home_dir(&st)).unwrap();
        let l = list(&t, None);
        assert_eq!(l.len(), 2, "{l:?}");
        assert!(l
            .iter()
            .any(|e| e.what == "/home/u/.cache/pip" && e.bytes >= 8192));
        let r = clear(&t, Some("default"), false).unwrap();
        assert_eq!(r.len(), 1);
        assert!(home_dir(&st).is_dir(), "the home stays without --home");
        assert!(!up.exists());
        fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn sizes_read_like_du() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }
}
