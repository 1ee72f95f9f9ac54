//! Paths inside the writable project that would let the program plant code
//! that later runs OUTSIDE the jail (git hooks, direnv, editor and agent
//! config): read-only inside, and every directory from the project root
//! down to them is a mount point, so neither a symlink swap nor renaming a
//! parent (`mv .git g`) gets around it (EBUSY).
//!
//! A protected path that does not exist at start cannot be held by a mount
//! (jail leaves no placeholder in the user's tree). If the program creates
//! one, it is moved at exit to ~/.local/state/jail/quarantine/. The move
//! is done by a small guard process outside the jail that waits for the
//! jail's pid 1 to die, so it happens even when `jail` itself is killed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::Step;

/// Relative to the project root.
pub const PROTECTED: &[&str] = &[
    ".git/hooks",
    ".git/config",
    ".envrc",
    ".vscode",
    ".idea",
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".mcp.json",
    ".gemini/settings.json",
    ".cursor/mcp.json",
    ".jail.toml",
];

/// What a protected path was when the jail started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Start {
    /// Absent: creating it inside is caught at exit.
    Absent,
    /// A symlink (cannot be mounted over): changing it is caught at exit.
    Symlink(PathBuf),
    /// Present and held read-only by a bind mount.
    Held,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protected {
    pub path: PathBuf,
    pub start: Start,
}

/// Looks at each protected path of `project`. Paths the user named in
/// `rw` themselves are relaxed (their explicit choice).
pub fn survey(project: &Path, rw: &[PathBuf]) -> Vec<Protected> {
    // A `.git` *file* (worktree, submodule) names the git directory: a
    // planted `gitdir: ./evil` would bring hooks the host's git runs. A
    // `.git` directory is left writable (its hooks and config are held).
    let git_file = fs::symlink_metadata(project.join(".git")).is_ok_and(|m| !m.is_dir());
    PROTECTED
        .iter()
        .copied()
        .chain(git_file.then_some(".git"))
        .map(|rel| project.join(rel))
        .filter(|p| !rw.contains(p))
        .map(|path| {
            let start = match fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => {
                    Start::Symlink(fs::read_link(&path).unwrap_or_default())
                }
                Ok(_) if inside_without_symlinks(project, &path) => Start::Held,
                // Reached through a symlinked parent: the parent is what
                // could be swapped, so treat it as changeable.
                Ok(_) => Start::Symlink(fs::canonicalize(&path).unwrap_or_default()),
                Err(_) => Start::Absent,
            };
            Protected { path, start }
        })
        .collect()
}

fn inside_without_symlinks(project: &Path, path: &Path) -> bool {
    match (fs::canonicalize(project), fs::canonicalize(path)) {
        (Ok(p), Ok(c)) => {
            c.starts_with(&p) && c.strip_prefix(&p).ok() == path.strip_prefix(project).ok()
        }
        _ => false,
    }
}

/// Mount steps holding the present protected paths: every directory
/// between the project root and the path bound onto itself (read-write,
/// but now a mount point), then the path itself read-only.
pub fn steps(project: &Path, list: &[Protected]) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    for p in list.iter().filter(|p| p.start == Start::Held) {
        let Ok(rel) = p.path.strip_prefix(project) else {
            continue;
        };
        let mut dir = project.to_path_buf();
        let comps: Vec<_> = rel.components().collect();
        for c in &comps[..comps.len().saturating_sub(1)] {
            dir.push(c);
            let step = Step::Bind {
                src: dir.clone(),
                dest: dir.clone(),
                dir: true,
                ro: false,
            };
            if !out.contains(&step) {
                out.push(step);
            }
        }
        out.push(Step::Bind {
            src: p.path.clone(),
            dest: p.path.clone(),
            dir: p.path.is_dir(),
            ro: true,
        });
    }
    out
}

/// Protected paths the program created or changed, as they are now.
pub fn changed(list: &[Protected]) -> Vec<PathBuf> {
    list.iter()
        .filter(|p| match (&p.start, fs::symlink_metadata(&p.path)) {
            (Start::Held, _) => false,
            (Start::Absent, Ok(_)) => true,
            (Start::Symlink(t), Ok(m)) => {
                !m.file_type().is_symlink() || fs::read_link(&p.path).ok().as_ref() != Some(t)
            }
            (_, Err(_)) => false,
        })
        .map(|p| p.path.clone())
        .collect()
}

/// Moves each path (relative layout kept) under `dest`; nothing is deleted
/// that was not first copied. Returns what moved and what could not.
pub fn quarantine(
    project: &Path,
    paths: &[PathBuf],
    dest: &Path,
) -> (Vec<PathBuf>, Vec<(PathBuf, io::Error)>) {
    let (mut moved, mut failed) = (Vec::new(), Vec::new());
    let root = fs::canonicalize(project).unwrap_or_else(|_| project.to_path_buf());
    for p in paths {
        match quarantine_one(&root, project, p, dest) {
            Ok(()) => moved.push(p.clone()),
            Err(e) => failed.push((p.clone(), e)),
        }
    }
    (moved, failed)
}

fn quarantine_one(root: &Path, project: &Path, p: &Path, dest: &Path) -> io::Result<()> {
    // The program may have made a parent a symlink out of the project:
    // never move (or copy) anything that is not inside it.
    let parent_inside = p
        .parent()
        .and_then(|d| fs::canonicalize(d).ok())
        .is_some_and(|d| d.starts_with(root));
    if !parent_inside {
        return Err(io::Error::other(
            "it leads out of the project through a symlink",
        ));
    }
    let to = dest.join(p.strip_prefix(project).unwrap_or(p));
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    move_path(p, &to)
}

fn move_path(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            copy_tree(from, to)?;
            remove_tree(from)
        }
        r => r,
    }
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let m = fs::symlink_metadata(from)?;
    if m.file_type().is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from)?, to)
    } else if m.is_dir() {
        fs::create_dir(to)?;
        for e in fs::read_dir(from)? {
            let e = e?;
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
        Ok(())
    } else {
        fs::copy(from, to).map(|_| ())
    }
}

fn remove_tree(p: &Path) -> io::Result<()> {
    if fs::symlink_metadata(p)?.is_dir() {
        fs::remove_dir_all(p)
    } else {
        fs::remove_file(p)
    }
}

/// ~/.local/state/jail/quarantine/NAME-HASH/SECONDS: one per run.
pub fn quarantine_dir(state: &Path, project: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    project.hash(&mut h);
    let name = project
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    state
        .join("quarantine")
        .join(format!("{name}-{:08x}", h.finish() as u32))
        .join(format!("{secs}-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("jail-protect-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        fs::canonicalize(&p).unwrap()
    }

    #[test]
    fn survey_holds_present_paths_and_makes_parents_mount_points() {
        let p = tmp("survey");
        fs::create_dir_all(p.join(".git/hooks")).unwrap();
        fs::write(p.join(".git/config"), "").unwrap();
        fs::create_dir_all(p.join(".claude")).unwrap();
        std::os::unix::fs::symlink("elsewhere", p.join(".envrc")).unwrap();
        let list = survey(&p, &[p.join(".vscode")]);
        let get = |r: &str| {
            list.iter()
                .find(|x| x.path == p.join(r))
                .map(|x| x.start.clone())
        };
        assert_eq!(get(".git/hooks"), Some(Start::Held));
        assert_eq!(get(".envrc"), Some(Start::Symlink("elsewhere".into())));
        assert_eq!(get(".mcp.json"), Some(Start::Absent));
        assert_eq!(get(".vscode"), None, "named in rw: relaxed");
        let s = steps(&p, &list);
        let git = Step::Bind {
            src: p.join(".git"),
            dest: p.join(".git"),
            dir: true,
            ro: false,
        };
        assert_eq!(s.iter().filter(|x| **x == git).count(), 1, "{s:#?}");
        assert!(s.contains(&Step::Bind {
            src: p.join(".git/hooks"),
            dest: p.join(".git/hooks"),
            dir: true,
            ro: true
        }));
        assert!(s.contains(&Step::Bind {
            src: p.join(".git/config"),
            dest: p.join(".git/config"),
            dir: false,
            ro: true
        }));
        fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn a_git_file_is_held_but_a_git_directory_is_not() {
        let p = tmp("gitfile");
        fs::write(p.join(".git"), "gitdir: /elsewhere/.git/worktrees/x\n").unwrap();
        let list = survey(&p, &[]);
        assert!(list.contains(&Protected {
            path: p.join(".git"),
            start: Start::Held
        }));
        fs::remove_file(p.join(".git")).unwrap();
        fs::create_dir(p.join(".git")).unwrap();
        assert!(!survey(&p, &[]).iter().any(|x| x.path == p.join(".git")));
        fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn created_and_changed_paths_are_found_and_moved() {
        let p = tmp("changed");
        std::os::unix::fs::symlink("a", p.join(".envrc")).unwrap();
        let list = survey(&p, &[]);
        assert!(changed(&list).is_empty());
        fs::create_dir_all(p.join(".claude")).unwrap();
        fs::write(p.join(".claude/settings.json"), "{\"hooks\":1}").unwrap();
        fs::remove_file(p.join(".envrc")).unwrap();
        std::os::unix::fs::symlink("b", p.join(".envrc")).unwrap();
        let mut c = changed(&list);
        c.sort();
        assert_eq!(c, vec![p.join(".claude/settings.json"), p.join(".envrc")]);
        let q = p.join("q");
        let (moved, failed) = quarantine(&p, &c, &q);
        assert_eq!((moved.len(), failed.len()), (2, 0));
        assert_eq!(
            fs::read_to_string(q.join(".claude/settings.json")).unwrap(),
            "{\"hooks\":1}"
        );
        assert!(!p.join(".claude/settings.json").exists());
        assert!(p.join(".claude").is_dir(), "only the protected path moves");
        fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn nothing_outside_the_project_is_moved() {
        let p = tmp("outside");
        let proj = p.join("proj");
        fs::create_dir_all(proj.join("..").join("elsewhere")).unwrap();
        fs::write(p.join("elsewhere/settings.json"), "victim").unwrap();
        fs::create_dir_all(&proj).unwrap();
        std::os::unix::fs::symlink(p.join("elsewhere"), proj.join(".claude")).unwrap();
        let target = proj.join(".claude/settings.json");
        let (moved, failed) = quarantine(&proj, &[target], &p.join("q"));
        assert!(moved.is_empty() && failed.len() == 1);
        assert_eq!(
            fs::read_to_string(p.join("elsewhere/settings.json")).unwrap(),
            "victim"
        );
        fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn copy_then_remove_keeps_a_tree() {
        let p = tmp("copy");
        fs::create_dir_all(p.join("a/b")).unwrap();
        fs::write(p.join("a/b/f"), "x").unwrap();
        std::os::unix::fs::symlink("b/f", p.join("a/l")).unwrap();
        copy_tree(&p.join("a"), &p.join("c")).unwrap();
        remove_tree(&p.join("a")).unwrap();
        assert_eq!(fs::read_to_string(p.join("c/b/f")).unwrap(), "x");
        assert_eq!(fs::read_link(p.join("c/l")).unwrap(), PathBuf::from("b/f"));
        fs::remove_dir_all(&p).unwrap();
    }
}
