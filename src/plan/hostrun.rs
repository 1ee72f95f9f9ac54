//! Git hooks installed in the project's repository, as the host's git
//! will run them: which hook manager reads which project file at commit
//! time (those files are protected, see `protect::PROTECTED`), and which
//! hooks run project code (`npm test`, `npx lint-staged`, `make`): what
//! that code is, a jailed program may have written, and no protection of
//! single files can change that. `jail explain` and `jail doctor` say so
//! and give the way out (`--review`, or committing inside the jail).
//!
//! Only reads, and only regular files, opened without blocking (a FIFO
//! planted where a hook should be cannot hang `explain` or `doctor`),
//! size-capped.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::git;

/// A hook the host's git would run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub name: String,
    pub path: PathBuf,
    /// The hook manager that wrote it, if recognised.
    pub manager: Option<&'static str>,
    /// What in it (or in the manager's configuration) runs project code.
    pub project_code: Option<String>,
}

/// Hook managers: (name, a word its hooks contain, the project files its
/// hooks read at run time).
const MANAGERS: &[(&str, &str, &[&str])] = &[
    (
        "pre-commit",
        "pre-commit",
        &[".pre-commit-config.yaml", ".pre-commit-config.yml"],
    ),
    (
        "lefthook",
        "lefthook",
        &[
            "lefthook.yml",
            ".lefthook.yml",
            "lefthook.yaml",
            ".lefthook.yaml",
            "lefthook.toml",
            ".lefthook.toml",
            "lefthook.json",
            ".lefthook.json",
            "lefthook-local.yml",
            ".lefthook-local.yml",
            ".config/lefthook.yml",
        ],
    ),
    ("overcommit", "overcommit", &[".overcommit.yml"]),
    ("husky", "husky", &[]),
    ("simple-git-hooks", "simple-git-hooks", &[]),
    ("git-lfs", "git lfs", &[]),
];

/// Commands that run the project's own code (package scripts, build
/// files, test runners, scripts in the tree, packages in node_modules).
const PROJECT_CODE: &[&str] = &[
    "npm ",
    "npx ",
    "yarn",
    "pnpm",
    "bun ",
    "node_modules",
    "lint-staged",
    "make",
    "cargo ",
    "go test",
    "go run",
    "go generate",
    "python",
    "pytest",
    "tox",
    "nox",
    "uv run",
    "poetry",
    "gradle",
    "mvn",
    "composer",
    "bundle exec",
    "rake",
    "just ",
    "task ",
    "./",
    "repo: local",
];

/// At most this much of a hook or configuration is read.
const CAP: u64 = 256 << 10;

/// A regular file's text, opened without blocking and size-capped; None
/// for anything else (a FIFO, a device, a directory, unreadable).
fn read_small(p: &Path) -> Option<String> {
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(p)
        .ok()?;
    let m = f.metadata().ok()?;
    if !m.is_file() {
        return None;
    }
    let mut buf = Vec::new();
    f.take(CAP).read_to_end(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// The hooks directory the host's git uses for the repository at
/// `worktree`: the last `core.hooksPath` of the system, global and
/// repository configs (relative to the work tree), else `hooks` in the
/// common git directory.
fn hooks_dir(worktree: &Path, home: &Path) -> Option<PathBuf> {
    let gitdir = git::gitdir_of(&worktree.join(".git"))?;
    let common = git::common_dir(&gitdir);
    let mut dir = common.join("hooks");
    for cfg in [
        PathBuf::from("/etc/gitconfig"),
        home.join(".config/git/config"),
        home.join(".gitconfig"),
        common.join("config"),
        gitdir.join("config.worktree"),
    ] {
        let Some(text) = read_small(&cfg) else {
            continue;
        };
        let (entries, _) = git::parse_config(&text);
        if let Some(h) = git::values(&entries, "core", "hookspath").pop() {
            dir = match h.strip_prefix("~/") {
                Some(rest) => home.join(rest),
                None => worktree.join(h),
            };
        }
    }
    Some(dir)
}

fn project_code_in(text: &str) -> Option<&'static str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| PROJECT_CODE.iter().find(|w| l.contains(*w)).copied())
}

/// The hooks installed for the repository at `worktree`, sorted by name.
pub fn installed(worktree: &Path, home: &Path) -> Vec<Hook> {
    let Some(dir) = hooks_dir(worktree, home) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // Only the hooks git runs (githooks(5)); anything else there is not
        // run by git itself.
        if !super::git::HOOK_NAMES.contains(&name.as_str()) {
            continue;
        }
        let path = e.path();
        // As git runs it: an executable regular file (a link is followed).
        let Ok(m) = fs::metadata(&path) else { continue };
        if !m.is_file() || m.mode() & 0o111 == 0 {
            continue;
        }
        let Some(text) = read_small(&path) else {
            continue;
        };
        // husky 9's hooks (.husky/_/NAME) only source a helper.
        let manager = if dir.components().any(|c| c.as_os_str() == ".husky") {
            Some("husky")
        } else {
            MANAGERS
                .iter()
                .find(|(_, word, _)| text.contains(word))
                .map(|(n, _, _)| *n)
        };
        let scan = |files: &[PathBuf]| {
            files.iter().find_map(|f| {
                let t = read_small(f)?;
                let w = project_code_in(&t)?;
                let rel = f.strip_prefix(worktree).unwrap_or(f);
                Some(format!("`{}` in {}", w.trim(), rel.display()))
            })
        };
        // A manager's own hook only starts the manager (from its install,
        // which may mention python or node_modules): what runs is in its
        // configuration. Any other hook runs what it says.
        let code = match manager {
            Some("husky") => scan(&[
                dir.parent().unwrap_or(&dir).join(&name),
                worktree.join(".husky").join(&name),
            ]),
            Some("git-lfs") => None,
            Some(m) => {
                let files: &[&str] = MANAGERS
                    .iter()
                    .find(|(n, _, _)| *n == m)
                    .map_or(&[], |(_, _, f)| *f);
                if files.is_empty() {
                    // simple-git-hooks copies the command into the hook.
                    project_code_in(&text).map(|w| format!("`{}`", w.trim()))
                } else {
                    scan(&files.iter().map(|f| worktree.join(f)).collect::<Vec<_>>())
                }
            }
            None => project_code_in(&text).map(|w| format!("`{}`", w.trim())),
        };
        out.push(Hook {
            name,
            path,
            manager,
            project_code: code,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The way out, said wherever a hook runs project code.
pub const WAY_OUT: &str = "jail cannot protect what such a hook runs (a jailed program may have \
     written it): review the changes with `jail --review ...` before your next commit, or commit \
     inside the jail";

/// One line per installed hook, for `jail explain` and `jail doctor`.
pub fn describe(h: &Hook) -> String {
    let by = h.manager.map(|m| format!(" ({m})")).unwrap_or_default();
    match &h.project_code {
        Some(what) => format!("{}{by} runs project code: {what}", h.name),
        None => format!(
            "{}{by}: its configuration in the project is protected",
            h.name
        ),
    }
}

/// The `[host tools]` section of `jail explain`.
pub fn explain(worktree: &Path, home: &Path) -> String {
    use std::fmt::Write;
    let hooks = installed(worktree, home);
    let mut o = String::from("[host tools]\n");
    if hooks.is_empty() {
        o.push_str("  git hooks       none installed in the project's repository\n");
        return o;
    }
    o.push_str(
        "  git hooks       installed: your git runs them outside the jail, with the project as \
         the jail left it\n",
    );
    for h in &hooks {
        let _ = writeln!(o, "    {}", crate::display::safe(&describe(h)));
    }
    if hooks.iter().any(|h| h.project_code.is_some()) {
        let _ = writeln!(o, "  WARNING         {WAY_OUT}");
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn every_file_a_hook_manager_reads_is_protected() {
        // The two lists serve apart (what the guard holds; what a hook
        // scan reads), but a manager's file missing from the protected
        // list would be a hole: keep them in step.
        for (name, _, files) in MANAGERS {
            for f in *files {
                assert!(
                    super::super::protect::PROTECTED.contains(f),
                    "{name}'s {f} is not in protect::PROTECTED"
                );
            }
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("jail-hostrun-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(p.join(".git/hooks")).unwrap();
        fs::write(p.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        fs::write(p.join(".git/config"), "[core]\n\tbare = false\n").unwrap();
        p
    }

    fn hook(p: &Path, text: &str) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn managers_and_project_code_are_recognised() {
        let p = tmp("managers");
        let home = p.join("home");
        hook(
            &p.join(".git/hooks/pre-commit"),
            "#!/usr/bin/env bash\n# File generated by pre-commit: https://pre-commit.com\nARGS=(hook-impl --config=.pre-commit-config.yaml)\n",
        );
        fs::write(
            p.join(".pre-commit-config.yaml"),
            "repos:\n- repo: https://github.com/psf/black\n  rev: 24.1.0\n  hooks: [{id: black}]\n",
        )
        .unwrap();
        hook(&p.join(".git/hooks/pre-push"), "#!/bin/sh\nnpm test\n");
        hook(
            &p.join(".git/hooks/post-commit.sample"),
            "#!/bin/sh\nmake\n",
        );
        fs::write(p.join(".git/hooks/not-executable"), "make\n").unwrap();
        let h = installed(&p, &home);
        assert_eq!(h.len(), 2, "{h:?}");
        assert_eq!(h[0].name, "pre-commit");
        assert_eq!(h[0].manager, Some("pre-commit"));
        assert_eq!(h[0].project_code, None);
        assert_eq!(h[1].project_code.as_deref(), Some("`npm`"));
        // A local hook in the manager's configuration is project code.
        fs::write(
            p.join(".pre-commit-config.yaml"),
            "repos:\n- repo: local\n  hooks:\n  - id: t\n    entry: scripts/check.sh\n    language: script\n",
        )
        .unwrap();
        let h = installed(&p, &home);
        assert_eq!(
            h[0].project_code.as_deref(),
            Some("`repo: local` in .pre-commit-config.yaml")
        );
        fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn husky_through_hooks_path_and_a_fifo_does_not_block() {
        let p = tmp("husky");
        let home = p.join("home");
        fs::write(p.join(".git/config"), "[core]\n\thooksPath = .husky/_\n").unwrap();
        hook(
            &p.join(".husky/_/pre-commit"),
            "#!/usr/bin/env sh\n. \"$(dirname \"$0\")/h\"\n",
        );
        hook(
            &p.join(".husky/_/h"),
            "#!/usr/bin/env sh\n# husky\nsh -e \"$s\"\n",
        );
        hook(&p.join(".husky/pre-commit"), "npx lint-staged\n");
        nix::unistd::mkfifo(&p.join(".husky/_/pre-push"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let h = installed(&p, &home);
        let pc = h.iter().find(|h| h.name == "pre-commit").unwrap();
        assert_eq!(
            pc.project_code.as_deref(),
            Some("`npx` in .husky/pre-commit"),
            "{h:?}"
        );
        assert!(!h.iter().any(|h| h.name == "pre-push"), "a FIFO is no hook");
        fs::remove_dir_all(&p).unwrap();
    }
}
