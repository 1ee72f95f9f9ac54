//! Where hidden paths go (part of the mount plan; reads the host, changes
//! nothing). A hidden path that exists and lies under a visible bind is
//! hidden at a constant number of mounts, whatever the size of its
//! directory (docs/design.md, "Hidden paths"):
//! - in a writable directory (the project, `--rw` paths, `home = "rw"`)
//!   it is masked: an empty, unreadable, read-only file or directory is
//!   mounted over it (EACCES), so the directory itself stays writable;
//! - in a read-only directory it is absent (ENOENT): the directory is
//!   shown through a read-only overlay whose top layer holds a whiteout
//!   per hidden entry (one overlay per directory).
//!
//! Fallback, per directory: a tmpfs holding binds of every other entry
//! (the pre-overlay method, one bind per sibling) where the kernel has no
//! unprivileged overlayfs (< 5.11) or a visible path lies below a hidden
//! entry (a mount point must be created there).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;

use serde::Serialize;

use super::{bind_with_holes, Step, Visible};

/// How one hidden path is hidden.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Hiding {
    /// In a writable directory: exists, empty and unreadable (EACCES).
    Masked,
    /// In a read-only directory: absent (ENOENT).
    Absent,
    /// Under no visible path: absent (ENOENT) by construction.
    NotVisible,
}

impl Hiding {
    pub fn describe(&self) -> &'static str {
        match self {
            Hiding::Masked => "masked: exists, empty and unreadable (its directory is writable)",
            Hiding::Absent => "absent (ENOENT)",
            Hiding::NotVisible => "absent (ENOENT): nothing above it is visible",
        }
    }
}

/// The hiding part of a plan.
#[derive(Debug, Default)]
pub struct Placement {
    /// (path, is a directory, the writable area it lies in).
    masks: Vec<(PathBuf, bool, PathBuf)>,
    /// Read-only directory (canonical) → hidden entry names.
    whiteouts: BTreeMap<PathBuf, Vec<OsString>>,
    /// Read-only directory (canonical) → jail's own files shown in it
    /// (relative path, bytes), in the same top layer as its whiteouts.
    files: BTreeMap<PathBuf, Vec<(PathBuf, Vec<u8>)>>,
    /// Directories that need the tmpfs-of-binds fallback: (dir, ro, names).
    holes: Vec<(PathBuf, bool, Vec<PathBuf>)>,
    pub report: Vec<(PathBuf, Hiding)>,
}

/// Whether this kernel mounts overlayfs in a user namespace (5.11+).
pub fn overlay_usable() -> bool {
    let Ok(rel) = fs::read_to_string("/proc/sys/kernel/osrelease") else {
        return false;
    };
    let mut nums = rel
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let (major, minor) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    (major, minor) >= (5, 11)
}

/// Decides how each hidden path (existing, by name and by target) is
/// hidden, given what is visible.
pub(super) fn place(hidden: &BTreeSet<PathBuf>, visible: &[Visible], overlay: bool) -> Placement {
    let mut out = Placement::default();
    // (canonical directory, entry name) of every hidden path that exists.
    let mut entries: BTreeSet<(PathBuf, OsString)> = BTreeSet::new();
    for h in hidden {
        let (Some(parent), Some(name)) = (h.parent(), h.file_name()) else {
            continue;
        };
        let Ok(dir) = crate::host::canonical(parent) else {
            continue;
        };
        if fs::symlink_metadata(dir.join(name)).is_ok() {
            entries.insert((dir, name.to_os_string()));
        }
    }
    let placed: Vec<PathBuf> = entries.iter().map(|(d, n)| d.join(n)).collect();
    for (dir, name) in &entries {
        let path = dir.join(name);
        // Inside another hidden entry: covered by it.
        if placed.iter().any(|p| p != &path && path.starts_with(p)) {
            continue;
        }
        let Some(owner) = visible
            .iter()
            .filter(|v| v.dir && dir.starts_with(&v.canonical))
            .max_by_key(|v| v.canonical.components().count())
        else {
            out.report.push((path, Hiding::NotVisible));
            continue;
        };
        // A visible path below the hidden entry needs a mount point there.
        let shows_below = visible
            .iter()
            .any(|v| v.canonical != path && v.canonical.starts_with(&path));
        if !owner.ro && !shows_below {
            let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            out.masks
                .push((path.clone(), is_dir, owner.canonical.clone()));
            out.report.push((path, Hiding::Masked));
        } else if overlay && !shows_below {
            out.whiteouts
                .entry(dir.clone())
                .or_default()
                .push(name.clone());
            out.report.push((path, Hiding::Absent));
        } else {
            match out.holes.iter_mut().find(|(d, _, _)| d == dir) {
                Some((_, _, names)) => names.push(PathBuf::from(name)),
                None => out
                    .holes
                    .push((dir.clone(), owner.ro, vec![PathBuf::from(name)])),
            }
            out.report.push((path, Hiding::Absent));
        }
    }
    out
}

impl Placement {
    /// Shows jail's own file at `rel` in the read-only system directory
    /// `dir` (an overlay's top layer, with the directory's whiteouts if
    /// any). Only with an unprivileged overlayfs, and not where `dir`
    /// takes the fallback of binds.
    pub(super) fn add_file(&mut self, dir: PathBuf, rel: PathBuf, contents: Vec<u8>) -> bool {
        if self.holes.iter().any(|(d, _, _)| d == &dir) {
            return false;
        }
        self.files.entry(dir).or_default().push((rel, contents));
        true
    }

    /// Appends the mount steps (`late`: read-only remounts at the end).
    pub fn steps(&self, steps: &mut Vec<Step>, late: &mut Vec<Step>) {
        let mut mounts = None;
        let dirs: BTreeSet<&PathBuf> = self.whiteouts.keys().chain(self.files.keys()).collect();
        for dir in dirs {
            let names = self.whiteouts.get(dir).cloned().unwrap_or_default();
            steps.push(Step::Whiteout {
                src: dir.clone(),
                dest: dir.clone(),
                names: names.clone(),
                files: self.files.get(dir).cloned().unwrap_or_default(),
            });
            // An overlay does not show the host's mounts below its lower
            // directory (e.g. /etc/resolv.conf bound into a container):
            // bind them again on top.
            let all = mounts.get_or_insert_with(host_mounts);
            for m in all.iter().filter(|m| m.starts_with(dir) && *m != dir) {
                if !names.iter().any(|n| m.starts_with(dir.join(n))) {
                    steps.push(Step::Bind {
                        src: m.clone(),
                        dest: m.clone(),
                        dir: m.is_dir(),
                        ro: true,
                    });
                }
            }
        }
        for (path, dir, root) in &self.masks {
            // Every directory between the writable area and the mask is a
            // mount point, so none can be renamed away to put something
            // else at the hidden path (with `home = "rw"`, jail's own
            // state under ~/.local/state would be such a path).
            super::protect::pin_parents(root, path, steps);
            if *dir {
                steps.push(Step::Tmpfs {
                    dest: path.clone(),
                    mode: 0,
                });
                late.push(Step::RemountRo { dest: path.clone() });
            } else {
                steps.push(Step::MaskFile { dest: path.clone() });
            }
        }
        for (dir, ro, names) in &self.holes {
            bind_with_holes(steps, late, dir, dir, true, *ro, names);
        }
    }
}

/// Mount points of the host (from /proc/self/mountinfo), unescaped.
fn host_mounts() -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_octal(p)))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as \\ooo.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..=i + 3].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_jails_own_in_a_system_dir_is_one_read_only_overlay() {
        let mut p = place(&BTreeSet::new(), &[], true);
        assert!(p.add_file(
            "/etc".into(),
            "codex/config.toml".into(),
            b"x = 1\n".to_vec()
        ));
        let (mut steps, mut late) = (Vec::new(), Vec::new());
        p.steps(&mut steps, &mut late);
        assert_eq!(
            steps.first(),
            Some(&Step::Whiteout {
                src: "/etc".into(),
                dest: "/etc".into(),
                names: vec![],
                files: vec![("codex/config.toml".into(), b"x = 1\n".to_vec())],
            })
        );
        assert_eq!(
            steps
                .iter()
                .filter(|s| matches!(s, Step::Whiteout { .. }))
                .count(),
            1
        );
        // Where the directory takes the fallback of binds: not shown.
        p.holes.push(("/opt".into(), true, vec![]));
        assert!(!p.add_file("/opt".into(), "f".into(), vec![]));
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_octal("/a\\040b"), "/a b");
        assert_eq!(unescape_octal("/plain"), "/plain");
        assert_eq!(unescape_octal("/x\\134y"), "/x\\y");
    }
}
