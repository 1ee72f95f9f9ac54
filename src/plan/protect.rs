//! Paths in the jail's writable areas that would let the program plant
//! code that later runs OUTSIDE the jail: every git control file of the
//! project's repository (its worktrees and submodules too, and hook
//! directories named by `core.hooksPath`), direnv, editor and agent
//! project config, and the agent's own command-running config in its home
//! directory. They are read-only inside, and every directory from the
//! writable area's root down to them is a mount point, so neither a
//! symlink swap nor renaming a parent (`mv .git g`) gets around it (EBUSY).
//! A protected path that is a symlink is protected at its target when the
//! target lies in a writable area.
//!
//! A protected path that does not exist at start cannot be held by a mount
//! (jail leaves no placeholder in the user's tree). If the program creates
//! one, the guard (`outside::guard`) moves it away once every process of
//! the jail is gone, unless it is harmless by content (`git`). Files that
//! an agent rewrites all the time but that also hold command-running
//! entries (Claude's `.claude.json`: MCP servers) are watched instead:
//! those entries are put back as they were if the program changed them.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::git;
use super::Step;

/// Relative to the project root (git's control files are found apart).
/// Each entry names the tool that runs it; docs/hardening.md lists the
/// sources.
pub const PROTECTED: &[&str] = &[
    // direnv: sourced by the shell on `cd`.
    ".envrc",
    // Editors: tasks, launch configs, language servers run on open.
    ".vscode",
    ".idea",
    ".zed",
    ".nvim.lua",
    ".nvimrc",
    ".exrc",
    ".dir-locals.el",
    ".dir-locals-2.el",
    // Dev containers: `initializeCommand` runs on the host.
    ".devcontainer",
    ".devcontainer.json",
    // Agents' project config: hooks, MCP servers, permissions.
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".mcp.json",
    ".gemini/settings.json",
    ".cursor/mcp.json",
    ".codex/config.toml",
    ".codex/rules",
    // Git hook managers: the installed hook runs what these say at the
    // host's next commit.
    ".pre-commit-config.yaml",
    ".pre-commit-config.yml",
    "lefthook.yml",
    ".lefthook.yml",
    "lefthook.yaml",
    ".lefthook.yaml",
    "lefthook.toml",
    ".lefthook.toml",
    "lefthook.json",
    ".lefthook.json",
    "lefthook.jsonc",
    ".lefthook.jsonc",
    "lefthook-local.yml",
    ".lefthook-local.yml",
    "lefthook-local.yaml",
    ".lefthook-local.yaml",
    "lefthook-local.toml",
    ".lefthook-local.toml",
    "lefthook-local.json",
    ".lefthook-local.json",
    ".config/lefthook.yml",
    ".config/lefthook.yaml",
    ".lefthook",
    ".lefthook-local",
    ".overcommit.yml",
    ".git-hooks",
    ".husky",
    ".simple-git-hooks.json",
    ".simple-git-hooks.js",
    ".simple-git-hooks.cjs",
    ".simple-git-hooks.mjs",
    "simple-git-hooks.json",
    "simple-git-hooks.js",
    "simple-git-hooks.cjs",
    "simple-git-hooks.mjs",
    ".cargo-husky",
    ".lintstagedrc",
    ".lintstagedrc.json",
    ".lintstagedrc.yaml",
    ".lintstagedrc.yml",
    ".lintstagedrc.js",
    ".lintstagedrc.cjs",
    ".lintstagedrc.mjs",
    "lint-staged.config.js",
    "lint-staged.config.cjs",
    "lint-staged.config.mjs",
    // mise: hooks, env and tasks of a trusted config (trust is by path).
    "mise.toml",
    ".mise.toml",
    "mise.local.toml",
    ".mise.local.toml",
    "mise/config.toml",
    ".mise/config.toml",
    ".config/mise.toml",
    ".config/mise",
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
    /// Present, but reached through a symlinked parent, at this physical
    /// path (which is held itself): changed only if the path now leads
    /// elsewhere (the parent link was swapped).
    Via(PathBuf),
    /// A JSON file the program may rewrite, whose entries at these key
    /// paths (`*` = any key) are put back at exit if they changed; the
    /// snapshot is those entries as they were (JSON text).
    Watched { keys: Vec<String>, snapshot: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protected {
    pub path: PathBuf,
    pub start: Start,
    /// The writable area it lies in (the project, a `--rw` directory, an
    /// agent's directory): the directories from here down are mount points.
    pub root: PathBuf,
    /// For a git control file: its git directory (a created one may be
    /// harmless by content, see `git::harmless_created`).
    pub gitdir: Option<PathBuf>,
}

/// What to protect, found before the jail starts.
#[derive(Debug, Clone, Default)]
pub struct Survey {
    pub protected: Vec<Protected>,
    /// The git directories of the project's repository known at start;
    /// the guard checks any other git directory it finds at exit.
    pub gitdirs: Vec<PathBuf>,
}

/// Inputs of a survey.
#[derive(Debug, Clone)]
pub struct Areas<'a> {
    pub project: &'a Path,
    /// The jail's writable host areas (the project first).
    pub writable: &'a [PathBuf],
    /// Paths the user named read-write themselves: their choice, relaxed.
    pub relaxed: &'a [PathBuf],
    /// Agent configuration in home that runs commands (from the profile).
    pub extra: &'a [PathBuf],
    /// JSON files with command-running entries: (file, key paths).
    pub watched: &'a [(PathBuf, Vec<String>)],
    /// Git config files outside the project that may name hook
    /// directories or includes (~/.gitconfig, /etc/gitconfig).
    pub global_git_configs: &'a [PathBuf],
    pub home: &'a Path,
}

/// git's own bound on nested `include.path` (MAX_INCLUDE_DEPTH).
const MAX_INCLUDE_DEPTH: usize = 10;

/// A path to protect, as found.
#[derive(Debug, Clone)]
struct Cand {
    path: PathBuf,
    gitdir: Option<PathBuf>,
    /// A hook directory (`hooks`, a `core.hooksPath`): each entry that is
    /// a symlink is protected at its target too.
    hookdir: bool,
}

impl Cand {
    fn plain(path: PathBuf) -> Cand {
        Cand {
            path,
            gitdir: None,
            hookdir: false,
        }
    }
}

/// Finds every protected path and how it starts.
pub fn survey(a: &Areas) -> Survey {
    let mut cands: Vec<Cand> = PROTECTED
        .iter()
        .map(|r| Cand::plain(a.project.join(r)))
        .chain(a.extra.iter().map(|p| Cand::plain(p.clone())))
        .collect();
    // A watched file that is a symlink (a dotfiles checkout) is protected
    // as a link instead, at its target: the guard never rewrites a file
    // through a link, and would otherwise move the link away every run.
    let linked = |f: &Path| fs::symlink_metadata(f).is_ok_and(|m| m.file_type().is_symlink());
    for (file, _) in a.watched {
        if linked(file) {
            cands.push(Cand::plain(file.clone()));
        }
    }
    let mut gitdirs = Vec::new();
    let dotgit = a.project.join(".git");
    let found = git::resolve_dotgit(&dotgit);
    if let git::Found::Suspect(why) = &found {
        tracing::warn!(
            "{}: {why}; jail did not read it and git cannot use it: inspect it",
            dotgit.display()
        );
        cands.push(Cand::plain(dotgit.clone()));
    }
    if let git::Found::Dir(g) = found {
        if !fs::symlink_metadata(&dotgit).is_ok_and(|m| m.is_dir()) {
            // A `.git` file names the git directory: a planted
            // `gitdir: ./evil` would bring hooks the host's git runs.
            cands.push(Cand::plain(dotgit.clone()));
        }
        let common = git::common_dir(&g);
        gitdirs.push(g.clone());
        for d in git::related_gitdirs(&common) {
            if !gitdirs.contains(&d) {
                gitdirs.push(d);
            }
        }
        for d in &gitdirs {
            for c in git::control_paths(d) {
                warn_if_special(&c);
                cands.push(Cand {
                    hookdir: c.file_name().is_some_and(|n| n == "hooks"),
                    path: c,
                    gitdir: Some(d.clone()),
                });
            }
        }
        // Every git directory's own configs (a submodule's may name hooks
        // too), then the user's and the system's.
        let mut configs = vec![common.join("config"), g.join("config.worktree")];
        for d in &gitdirs {
            configs.extend([d.join("config"), d.join("config.worktree")]);
        }
        let mut read = BTreeSet::new();
        for cfg in configs.iter().chain(a.global_git_configs) {
            named_by_config(cfg, a.project, a.home, 0, &mut read, &mut cands);
        }
    }

    let mut out: Vec<Protected> = Vec::new();
    // Hashed: a BTreeSet compares paths component by component, which
    // for the ~80 candidates of every start cost more than their lstats.
    let mut seen = std::collections::HashSet::with_capacity(cands.len());
    while let Some(Cand {
        path,
        gitdir,
        hookdir,
    }) = cands.pop()
    {
        if !seen.insert(path.clone()) || a.relaxed.contains(&path) {
            continue;
        }
        let Some(root) = area_of(&path, a.writable) else {
            continue; // not writable inside the jail: nothing to protect
        };
        let start = match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                // Protect where it leads, one link at a time (each link
                // of a chain could be swapped), if that is writable too.
                if let Some(t) = next_hop(&path) {
                    cands.push(Cand {
                        path: t,
                        gitdir: gitdir.clone(),
                        hookdir,
                    });
                }
                Start::Symlink(fs::read_link(&path).unwrap_or_default())
            }
            Ok(m) if inside_without_symlinks(&root, &path) => {
                if hookdir && m.is_dir() {
                    // A hook that is a symlink (`pre-commit ->
                    // ../../scripts/pre-commit.sh`) runs its target.
                    for e in fs::read_dir(&path).into_iter().flatten().flatten() {
                        if e.file_type().is_ok_and(|t| t.is_symlink()) {
                            cands.push(Cand {
                                path: e.path(),
                                gitdir: gitdir.clone(),
                                hookdir: false,
                            });
                        }
                    }
                }
                Start::Held
            }
            // Reached through a symlinked parent: the parent is what could
            // be swapped; its target is protected as itself.
            Ok(_) => {
                let c = crate::host::canonical(&path).unwrap_or_default();
                cands.push(Cand {
                    path: c.clone(),
                    gitdir: gitdir.clone(),
                    hookdir,
                });
                Start::Via(c)
            }
            Err(_) => {
                // Absent (lstat failed): only its parent can be resolved,
                // so the path itself is not looked up again.
                if let Some(t) = physical(&path).filter(|t| t != &path) {
                    cands.push(Cand {
                        path: t,
                        gitdir: gitdir.clone(),
                        hookdir,
                    });
                }
                Start::Absent
            }
        };
        out.push(Protected {
            path,
            start,
            root,
            gitdir,
        });
    }
    for (file, keys) in a.watched {
        if linked(file) {
            continue;
        }
        if a.relaxed.contains(file) {
            continue;
        }
        let Some(root) = area_of(file, a.writable) else {
            continue;
        };
        // Absent at start: watched as holding none of those entries, so
        // the file the agent creates on its first run stays, and only the
        // entries that run commands or grant permissions are taken out.
        // Read as the guard reads: a regular file only, never blocking.
        let snapshot = match crate::host::read_regular(file, 64 << 20) {
            crate::host::Read::Text(b) => {
                watched_entries(&String::from_utf8_lossy(&b), keys).unwrap_or_default()
            }
            crate::host::Read::Absent => "{}".to_string(),
            crate::host::Read::Suspect(_) => continue,
        };
        out.retain(|p| &p.path != file);
        out.push(Protected {
            path: file.clone(),
            start: Start::Watched {
                keys: keys.clone(),
                snapshot,
            },
            root,
            gitdir: None,
        });
    }
    Survey {
        protected: sorted(out),
        gitdirs,
    }
}

/// In path order (component by component, as `Path::cmp`), each path
/// split into components once: comparing two Paths parses both again,
/// and sorting the ~80 entries of every start that way took as long as
/// their lstats. Each path is there once (`seen`, and a watched file
/// replaces its entry), so an unstable sort gives the one order.
fn sorted(list: Vec<Protected>) -> Vec<Protected> {
    let order: Vec<usize> = {
        let keys: Vec<Vec<std::path::Component<'_>>> =
            list.iter().map(|p| p.path.components().collect()).collect();
        let mut order: Vec<usize> = (0..list.len()).collect();
        order.sort_unstable_by(|&i, &j| keys[i].cmp(&keys[j]));
        order
    };
    let mut slots: Vec<Option<Protected>> = list.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// Says so when a git control file is a FIFO, socket or device: git
/// would hang or fail on it, and jail does not read it.
fn warn_if_special(p: &Path) {
    if let Ok(m) = fs::symlink_metadata(p) {
        let ft = m.file_type();
        if !(ft.is_file() || ft.is_dir() || ft.is_symlink()) {
            tracing::warn!(
                "{} is not a regular file (a FIFO, socket or device): jail did not read it, \
                 and git will hang or fail on it; inspect and remove it",
                p.display()
            );
        }
    }
}

/// The deepest writable area holding `p`.
fn area_of(p: &Path, writable: &[PathBuf]) -> Option<PathBuf> {
    writable
        .iter()
        .filter(|w| p.starts_with(w) && p != w.as_path())
        .max_by_key(|w| w.components().count())
        .cloned()
}

/// `p` with its parent resolved physically (symlinks and `..`, as the
/// kernel resolves them) and its last component kept as it is (it may be
/// a symlink itself, or missing). Where the parent does not exist (yet:
/// a hook linked to `../../tools/hooks/pre-commit` with no `tools/`), its
/// deepest existing ancestor is resolved and the rest kept as written,
/// `..` included (the kernel resolves it at exit, through whatever the
/// program made there).
fn physical(p: &Path) -> Option<PathBuf> {
    let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
        return crate::host::canonical(p).ok();
    };
    if let Ok(c) = crate::host::canonical(parent) {
        return Some(c.join(name));
    }
    let comps: Vec<_> = parent.components().collect();
    (1..comps.len()).rev().find_map(|i| {
        let base: PathBuf = comps[..i].iter().collect();
        let c = crate::host::canonical(&base).ok()?;
        Some(comps[i..].iter().fold(c, |acc, n| acc.join(n)).join(name))
    })
}

/// Where one symlink leads, its own target's last component unresolved.
fn next_hop(link: &Path) -> Option<PathBuf> {
    let t = fs::read_link(link).ok()?;
    let t = if t.is_absolute() {
        t
    } else {
        link.parent()?.join(t)
    };
    physical(&t)
}

/// What a git config (`cfg`, of a repository whose work tree is
/// `worktree`) names that makes git run code: hook directories (true) and
/// included config files (false), followed as `named_by_config` follows
/// them. For the guard's check of repositories it did not know at start.
pub fn named_by_git_config(cfg: &Path, worktree: &Path, home: &Path) -> Vec<(PathBuf, bool)> {
    let mut read = BTreeSet::new();
    let mut out = Vec::new();
    named_by_config(cfg, worktree, home, 0, &mut read, &mut out);
    out.into_iter().map(|c| (c.path, c.hookdir)).collect()
}

/// Hook directories (`core.hooksPath`, relative to the work tree) and
/// included config files (relative to the including file's directory, as
/// git resolves them) that a git config names, and recursively those
/// that its included files name, to git's own depth bound.
fn named_by_config(
    cfg: &Path,
    worktree: &Path,
    home: &Path,
    depth: usize,
    read: &mut BTreeSet<PathBuf>,
    out: &mut Vec<Cand>,
) {
    if depth > MAX_INCLUDE_DEPTH {
        return;
    }
    let real = crate::host::canonical(cfg).unwrap_or_else(|_| cfg.to_path_buf());
    if !read.insert(real.clone()) {
        return;
    }
    let text = match crate::host::read_regular(&real, git::CONTROL_MAX) {
        crate::host::Read::Text(t) => String::from_utf8_lossy(&t).into_owned(),
        crate::host::Read::Absent => return,
        crate::host::Read::Suspect(why) => {
            tracing::warn!(
                "{}: {why}; jail did not read this git config: inspect it",
                cfg.display()
            );
            return;
        }
    };
    let (entries, _) = git::parse_config(&text);
    let tilde = |s: &str, base: &Path| -> PathBuf {
        match s.strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => base.join(s),
        }
    };
    // A submodule's config names its work tree (relative to its git
    // directory): its relative hook paths start there.
    let own_tree = git::values(&entries, "core", "worktree")
        .last()
        .zip(cfg.parent())
        .and_then(|(w, dir)| crate::host::canonical(&dir.join(w)).ok());
    let worktree = own_tree.as_deref().unwrap_or(worktree);
    for h in git::values(&entries, "core", "hookspath") {
        let p = tilde(&h, worktree);
        out.push(Cand {
            path: physical(&p).unwrap_or(p),
            gitdir: None,
            hookdir: true,
        });
    }
    // Programs a config runs that are files of the project
    // (`core.fsmonitor = tools/watch.sh`, `filter.x.clean = ./clean`):
    // every path-like word of such a command (relative ones from the
    // work tree, where git runs them).
    for e in entries.iter().filter(|e| git::runs_command(e)) {
        for w in e.value.as_deref().unwrap_or("").split_whitespace() {
            let w = w.trim_start_matches('!').trim_matches(['"', '\'']);
            if w.contains('/') && !w.starts_with('-') && !w.contains("://") {
                let p = tilde(w, worktree);
                out.push(Cand::plain(physical(&p).unwrap_or(p)));
            }
        }
    }
    // The template every `git init` and `git clone` copies (hooks, a
    // config): what is planted there runs in the next repository made.
    for t in git::values(&entries, "init", "templatedir") {
        let p = tilde(&t, worktree);
        let p = physical(&p).unwrap_or(p);
        out.push(Cand {
            path: p.join("hooks"),
            gitdir: None,
            hookdir: true,
        });
        out.push(Cand::plain(p));
    }
    // Relative to the directory of the file as git named it (a symlinked
    // config's includes are relative to the link's directory).
    if let Some(dir) = cfg.parent() {
        for i in git::include_paths(&entries) {
            let p = tilde(&i, dir);
            let p = physical(&p).unwrap_or(p);
            out.push(Cand::plain(p.clone()));
            named_by_config(&p, worktree, home, depth + 1, read, out);
        }
    }
}

fn inside_without_symlinks(root: &Path, path: &Path) -> bool {
    match (crate::host::canonical(root), crate::host::canonical(path)) {
        (Ok(r), Ok(c)) => {
            c.starts_with(&r) && c.strip_prefix(&r).ok() == path.strip_prefix(root).ok()
        }
        _ => false,
    }
}

/// Mount steps holding the present protected paths: every directory
/// between the writable area's root and the path bound onto itself
/// (read-write, but now a mount point), then the path itself read-only.
pub fn steps(list: &[Protected]) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    for p in list.iter().filter(|p| p.start == Start::Held) {
        if p.path.strip_prefix(&p.root).is_err() {
            continue;
        }
        pin_parents(&p.root, &p.path, &mut out);
        out.push(Step::Bind {
            src: p.path.clone(),
            dest: p.path.clone(),
            dir: p.path.is_dir(),
            ro: true,
        });
    }
    out
}

/// Makes every directory between `root` (exclusive) and `path`'s parent
/// (inclusive) a mount point (a read-write bind onto itself, once), so
/// none of them can be renamed away to put something else at `path`.
pub fn pin_parents(root: &Path, path: &Path, steps: &mut Vec<Step>) {
    let Some(rel) = path.parent().and_then(|p| p.strip_prefix(root).ok()) else {
        return;
    };
    let mut dir = root.to_path_buf();
    for c in rel.components() {
        dir.push(c);
        let step = Step::Bind {
            src: dir.clone(),
            dest: dir.clone(),
            dir: true,
            ro: false,
        };
        if !steps.contains(&step) {
            steps.push(step);
        }
    }
}

/// Protected paths the program created or changed, as they are now
/// (watched files are handled by `restore_watched`). A created git
/// control file that is harmless by content is left alone.
pub fn changed(list: &[Protected], since: (i64, i64)) -> Vec<PathBuf> {
    // An absent path whose directory has not changed since the run began
    // is absent still: creating, removing or renaming an entry changes
    // its directory's change time, which no program can set back (a
    // missing directory holds nothing). One lstat per directory instead
    // of one per name (~60 names below the project root, each start).
    let mut unchanged: std::collections::HashMap<PathBuf, bool> = std::collections::HashMap::new();
    let mut still_absent = |p: &Protected| {
        let Some(dir) = p.path.parent() else {
            return false;
        };
        *unchanged.entry(dir.to_path_buf()).or_insert_with(|| {
            use std::os::unix::fs::MetadataExt;
            fs::symlink_metadata(dir).map_or(true, |m| (m.ctime(), m.ctime_nsec()) < since)
        })
    };
    list.iter()
        .filter(|p| !(p.start == Start::Absent && still_absent(p)))
        .filter(|p| match (&p.start, fs::symlink_metadata(&p.path)) {
            (Start::Held | Start::Watched { .. }, _) => false,
            (Start::Absent, Ok(_)) => !p
                .gitdir
                .as_ref()
                .is_some_and(|g| git::harmless_created(g, &p.path)),
            (Start::Symlink(t), Ok(m)) => {
                !m.file_type().is_symlink() || fs::read_link(&p.path).ok().as_ref() != Some(t)
            }
            // Leads elsewhere now: what it leads to is new.
            (Start::Via(c), Ok(_)) => fs::canonicalize(&p.path).ok().as_ref() != Some(c),
            (_, Err(_)) => false,
        })
        .map(|p| p.path.clone())
        .collect()
}

/// A watched file's text as a document: JSON (Claude's and Gemini's
/// files), or else TOML (Codex's `config.toml`); None when it is neither.
fn parse_doc(text: &str) -> Option<(serde_json::Value, bool)> {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        return v.is_object().then_some((v, false));
    }
    let t: toml::Table = toml::from_str(text).ok()?;
    Some((serde_json::to_value(t).ok()?, true))
}

/// A document as text again, in the format it was read in. TOML comes
/// back without its comments: this happens only when a command-running
/// entry was put back, and a copy of the file as it was is kept.
fn write_doc(v: &serde_json::Value, toml: bool) -> Option<String> {
    if toml {
        let t: toml::Table = serde_json::from_value(v.clone()).ok()?;
        toml::to_string_pretty(&t).ok()
    } else {
        serde_json::to_string_pretty(v).ok()
    }
}

/// The entries of `text` (a JSON or TOML document) at the key paths, as
/// canonical JSON text; None when the text is neither.
pub fn watched_entries(text: &str, keys: &[String]) -> Option<String> {
    let (v, _) = parse_doc(text)?;
    let mut found = serde_json::Map::new();
    for k in keys {
        let parts: Vec<&str> = k.split('.').collect();
        collect_at(&v, &parts, String::new(), &mut found);
    }
    Some(serde_json::Value::Object(found).to_string())
}

fn collect_at(
    v: &serde_json::Value,
    parts: &[&str],
    prefix: String,
    out: &mut serde_json::Map<String, serde_json::Value>,
) {
    let Some((first, rest)) = parts.split_first() else {
        out.insert(prefix, v.clone());
        return;
    };
    let Some(obj) = v.as_object() else {
        return;
    };
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            // A separator no JSON key of these files holds, so dots in
            // keys (project paths) stay apart.
            format!("{prefix}\u{1f}{k}")
        }
    };
    if *first == "*" {
        for (k, child) in obj {
            collect_at(child, rest, join(k), out);
        }
    } else if let Some(child) = obj.get(*first) {
        collect_at(child, rest, join(first), out);
    }
}

/// The outcome of checking a watched file at exit.
#[derive(Debug, PartialEq, Eq)]
pub enum Watch {
    Unchanged,
    /// The entries changed; `restored` is the file's new text with the old
    /// entries put back (None: the file no longer parses, move it away).
    Changed {
        restored: Option<String>,
        /// The entries that changed (dotted key paths), for the notice.
        entries: Vec<String>,
    },
}

/// Compares a watched file's entries with the snapshot.
pub fn check_watched(text: &str, keys: &[String], snapshot: &str) -> Watch {
    let Some(now) = watched_entries(text, keys) else {
        return Watch::Changed {
            restored: None,
            entries: Vec::new(),
        };
    };
    if now == snapshot {
        return Watch::Unchanged;
    }
    let (
        Some((mut doc, toml)),
        Ok(serde_json::Value::Object(old)),
        Ok(serde_json::Value::Object(new)),
    ) = (
        parse_doc(text),
        serde_json::from_str::<serde_json::Value>(snapshot),
        serde_json::from_str::<serde_json::Value>(&now),
    )
    else {
        return Watch::Changed {
            restored: None,
            entries: Vec::new(),
        };
    };
    // What the program added or changed, and what it removed (a removed
    // deny list widens too); an entry it added empty grants nothing (the
    // agent writes `"mcpServers": {}` for each new project).
    let mut changed: Vec<String> = new
        .iter()
        .filter(|(k, v)| match old.get(*k) {
            Some(o) => o != *v,
            None => !harmless_addition(k, v),
        })
        .chain(old.iter().filter(|(k, _)| !new.contains_key(*k)))
        .map(|(k, _)| k.clone())
        .collect();
    changed.sort();
    changed.dedup();
    if changed.is_empty() {
        return Watch::Unchanged;
    }
    // Put back the old (or take out what was not there).
    for path in &changed {
        set_at(&mut doc, path, old.get(path).cloned());
    }
    let entries = changed.iter().map(|k| k.replace('\u{1f}', ".")).collect();
    Watch::Changed {
        restored: write_doc(&doc, toml),
        entries,
    }
}

/// An entry added with a value that grants nothing: empty, or a flag
/// named has*/enable* turned off (Claude writes `hasTrustDialogAccepted:
/// false`, `allowedTools: []` for each new project).
fn harmless_addition(path: &str, v: &serde_json::Value) -> bool {
    use serde_json::Value;
    let last = path.rsplit('\u{1f}').next().unwrap_or(path);
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Bool(false) => last.starts_with("has") || last.starts_with("enable"),
        _ => false,
    }
}

fn set_at(doc: &mut serde_json::Value, path: &str, v: Option<serde_json::Value>) {
    let parts: Vec<&str> = path.split('\u{1f}').collect();
    let Some((last, parents)) = parts.split_last() else {
        return;
    };
    let mut cur = doc;
    for p in parents {
        let Some(obj) = cur.as_object_mut() else {
            return;
        };
        cur = obj
            .entry(p.to_string())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
    }
    if let Some(obj) = cur.as_object_mut() {
        match v {
            Some(v) => {
                obj.insert(last.to_string(), v);
            }
            None => {
                obj.remove(*last);
            }
        }
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

/// A trust entry that a jailed agent wrote to its own config, which jail
/// keeps for the profile's jailed runs instead of only putting it back:
/// the host's agent never gets it (it is put back in the host's file), and
/// the jailed agent reads it from a config layer jail shows only inside
/// the jail, built from jail's own storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    /// The watched file, relative to $HOME.
    pub file: &'static str,
    /// The table of per-folder entries in it, and the key kept for each.
    pub table: &'static str,
    pub key: &'static str,
    /// How the jailed agent is told.
    pub via: Via,
    /// In jail's storage of the profile: what was kept.
    pub store: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A system-wide config file of the agent, its lowest layer (the
    /// user's own file still overrides it), shown only inside the jail.
    Layer(&'static str),
    /// A variable set for the jailed program when the kept entry for the
    /// working directory or a folder above it (in the project) is `true`.
    Env(&'static str),
}

/// Codex keeps its folder trust in `~/.codex/config.toml` (`[projects."P"]
/// trust_level`) and also reads `/etc/codex/config.toml`, its "system"
/// layer, beneath the user's file (codex 0.171). Claude keeps it in
/// `~/.claude/.claude.json` (`projects.P.hasTrustDialogAccepted`, for the
/// working directory or any folder above it) and has no other file for
/// it, but counts the folder trusted when `CLAUDE_CODE_SANDBOXED` is set
/// (claude-code 2.1: its trust check reads nothing else of that variable).
pub const KEPT: &[Kept] = &[
    Kept {
        file: ".codex/config.toml",
        table: "projects",
        key: "trust_level",
        via: Via::Layer("/etc/codex/config.toml"),
        store: "kept-codex-trust.toml",
    },
    Kept {
        file: ".claude/.claude.json",
        table: "projects",
        key: "hasTrustDialogAccepted",
        via: Via::Env("CLAUDE_CODE_SANDBOXED"),
        store: "kept-claude-trust.toml",
    },
];

/// The largest kept store or host layer file read.
const KEPT_CAP: u64 = 1 << 20;

impl Kept {
    /// The kept entries of a watched file's text for folders in `project`
    /// (itself or below: what a program in this jail may speak for), as
    /// `(folder, value)`; string values only.
    pub fn entries(&self, text: &str, project: &Path) -> Vec<(String, toml::Value)> {
        let Some((doc, _)) = parse_doc(text) else {
            return Vec::new();
        };
        let Some(folders) = doc.get(self.table).and_then(|v| v.as_object()) else {
            return Vec::new();
        };
        folders
            .iter()
            .filter(|(f, _)| Path::new(f).is_absolute() && inside_lexically(Path::new(f), project))
            .filter_map(|(f, v)| {
                let val = match v.as_object()?.get(self.key)? {
                    serde_json::Value::String(s) => toml::Value::String(s.clone()),
                    serde_json::Value::Bool(b) => toml::Value::Boolean(*b),
                    _ => return None,
                };
                Some((f.clone(), val))
            })
            .collect()
    }

    /// What was kept for folders of `project` (jail's storage).
    fn kept(&self, storage: &Path, project: &Path) -> Vec<(String, toml::Value)> {
        match crate::host::read_regular(&storage.join(self.store), KEPT_CAP) {
            crate::host::Read::Text(b) => self.entries(&String::from_utf8_lossy(&b), project),
            _ => Vec::new(),
        }
    }

    /// For `Via::Env`: the variable to set for a run in `project` from
    /// `cwd`, when the trust kept for `cwd` or a folder above it (in the
    /// project) is `true`, as the agent would read it from its own file.
    pub fn env(&self, storage: &Path, project: &Path, cwd: &Path) -> Option<(String, String)> {
        let Via::Env(name) = self.via else {
            return None;
        };
        self.kept(storage, project)
            .iter()
            .any(|(f, v)| cwd.starts_with(f) && *v == toml::Value::Boolean(true))
            .then(|| (name.to_string(), "1".to_string()))
    }

    /// The dotted name a put-back notice uses for a folder's entry.
    pub fn entry_name(&self, folder: &str) -> String {
        format!("{}.{folder}.{}", self.table, self.key)
    }

    /// Adds `entries` to the store in `storage` (jail's own, never visible
    /// inside): written beside it and renamed over it.
    pub fn remember(
        &self,
        storage: &Path,
        entries: &[(String, toml::Value)],
    ) -> std::io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let store = storage.join(self.store);
        let mut t = match crate::host::read_regular(&store, KEPT_CAP) {
            crate::host::Read::Text(b) => {
                toml::from_str::<toml::Table>(&String::from_utf8_lossy(&b)).unwrap_or_default()
            }
            _ => toml::Table::new(),
        };
        let folders = t
            .entry(self.table)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(folders) = folders.as_table_mut() else {
            return Ok(());
        };
        for (f, v) in entries {
            let mut e = toml::Table::new();
            e.insert(self.key.into(), v.clone());
            folders.insert(f.clone(), toml::Value::Table(e));
        }
        let text = toml::to_string_pretty(&t).map_err(std::io::Error::other)?;
        let tmp = storage.join(format!("{}.tmp-{}", self.store, std::process::id()));
        fs::write(&tmp, text)?;
        fs::rename(&tmp, &store).inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    }

    /// The layer file jail shows inside for a run in `project`: the host's
    /// own file (an admin's) with the kept entries for this project added
    /// where it says nothing of them. None: nothing kept, or the host's
    /// file cannot be read as TOML (then it is left as it is).
    pub fn layer_text(&self, storage: &Path, project: &Path) -> Option<String> {
        let Via::Layer(layer) = self.via else {
            return None;
        };
        let kept = self.kept(storage, project);
        if kept.is_empty() {
            return None;
        }
        let mut t = match crate::host::read_regular(Path::new(layer), KEPT_CAP) {
            crate::host::Read::Text(b) => {
                toml::from_str::<toml::Table>(std::str::from_utf8(&b).ok()?).ok()?
            }
            crate::host::Read::Absent => toml::Table::new(),
            crate::host::Read::Suspect(_) => return None,
        };
        let folders = t
            .entry(self.table)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()?;
        for (f, v) in kept {
            let e = folders
                .entry(f)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()?;
            e.entry(self.key).or_insert(v);
        }
        toml::to_string_pretty(&t).ok()
    }
}

/// `p` is `root` or below it, by its components (`..` refused).
fn inside_lexically(p: &Path, root: &Path) -> bool {
    p.starts_with(root)
        && !p
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_is_the_order_of_paths() {
        let paths = [
            "/p/a-b",
            "/p/a/b",
            "/p/a",
            "/p/.git-hooks",
            "/p/.git/hooks",
            "/p/.git",
            "/p/tools/../x",
            "/p/tools/-x",
            "/p/tools/x",
            "/p/A",
            "/p/a b",
            "/q",
            "/p",
        ];
        let list: Vec<Protected> = paths
            .iter()
            .map(|p| Protected {
                path: PathBuf::from(p),
                start: Start::Absent,
                root: PathBuf::from("/p"),
                gitdir: None,
            })
            .collect();
        let mut want = list.clone();
        want.sort_by(|x, y| x.path.cmp(&y.path));
        let got = sorted(list);
        assert_eq!(
            got.iter().map(|p| &p.path).collect::<Vec<_>>(),
            want.iter().map(|p| &p.path).collect::<Vec<_>>()
        );
    }

    fn tmp(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("jail-protect-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        fs::canonicalize(&p).unwrap()
    }

    fn survey_of(p: &Path, rw: &[PathBuf]) -> Survey {
        let writable = vec![p.to_path_buf()];
        survey(&Areas {
            project: p,
            writable: &writable,
            relaxed: rw,
            extra: &[],
            watched: &[],
            global_git_configs: &[],
            home: Path::new("/nonexistent"),
        })
    }

    fn start_of(s: &Survey, p: &Path) -> Option<Start> {
        s.protected
            .iter()
            .find(|x| x.path == p)
            .map(|x| x.start.clone())
    }

    #[test]
    fn survey_holds_present_paths_and_makes_parents_mount_points() {
        let p = tmp("survey");
        fs::create_dir_all(p.join(".git/hooks")).unwrap();
        fs::write(p.join(".git/config"), "").unwrap();
        fs::write(p.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        fs::create_dir_all(p.join(".claude")).unwrap();
        std::os::unix::fs::symlink("elsewhere", p.join(".envrc")).unwrap();
        let s = survey_of(&p, &[p.join(".vscode")]);
        assert_eq!(start_of(&s, &p.join(".git/hooks")), Some(Start::Held));
        assert_eq!(start_of(&s, &p.join(".git/config")), Some(Start::Held));
        assert_eq!(start_of(&s, &p.join(".git/commondir")), Some(Start::Absent));
        assert_eq!(
            start_of(&s, &p.join(".envrc")),
            Some(Start::Symlink("elsewhere".into()))
        );
        assert_eq!(start_of(&s, &p.join(".mcp.json")), Some(Start::Absent));
        assert_eq!(
            start_of(&s, &p.join(".vscode")),
            None,
            "named in rw: relaxed"
        );
        let st = steps(&s.protected);
        let git = Step::Bind {
            src: p.join(".git"),
            dest: p.join(".git"),
            dir: true,
            ro: false,
        };
        assert_eq!(st.iter().filter(|x| **x == git).count(), 1, "{st:#?}");
        assert!(st.contains(&Step::Bind {
            src: p.join(".git/config"),
            dest: p.join(".git/config"),
            dir: false,
            ro: true
        }));
        fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn a_symlinked_protected_path_is_protected_at_its_target() {
        let p = tmp("symtarget");
        fs::create_dir_all(p.join("tools")).unwrap();
        fs::write(p.join("tools/mcp.json"), "{}").unwrap();
        std::os::unix::fs::symlink("tools/mcp.json", p.join(".mcp.json")).unwrap();
        fs::create_dir_all(p.join(".git")).unwrap();
        fs::create_dir_all(p.join("githooks")).unwrap();
        std::os::unix::fs::symlink("../githooks", p.join(".git/hooks")).unwrap();
        // A dangling link: its target's creation is caught.
        std::os::unix::fs::symlink("cfg/envrc", p.join(".envrc")).unwrap();
        fs::create_dir_all(p.join("cfg")).unwrap();
        let s = survey_of(&p, &[]);
        assert_eq!(start_of(&s, &p.join("tools/mcp.json")), Some(Start::Held));
        assert_eq!(start_of(&s, &p.join("githooks")), Some(Start::Held));
        assert_eq!(start_of(&s, &p.join("cfg/envrc")), Some(Start::Absent));
        // Its directory missing too: still caught where it would be made.
        fs::remove_file(p.join(".mcp.json")).unwrap();
        std::os::unix::fs::symlink("gen/tools/mcp.json", p.join(".mcp.json")).unwrap();
        let s = survey_of(&p, &[]);
        assert_eq!(
            start_of(&s, &p.join("gen/tools/mcp.json")),
            Some(Start::Absent)
        );
        fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn hooks_path_includes_and_every_gitdir_are_protected() {
        let p = tmp("hookspath");
        fs::create_dir_all(p.join(".git/modules/sub")).unwrap();
        fs::write(p.join(".git/modules/sub/HEAD"), "ref: x").unwrap();
        fs::write(p.join(".git/modules/sub/config"), "").unwrap();
        fs::create_dir_all(p.join(".git/worktrees/wt")).unwrap();
        fs::write(p.join(".git/worktrees/wt/commondir"), "../..").unwrap();
        fs::write(
            p.join(".git/config"),
            "[core]\n\thooksPath = .husky\n[include]\n\tpath = ../team.gitconfig\n",
        )
        .unwrap();
        fs::create_dir_all(p.join(".husky")).unwrap();
        fs::write(p.join("team.gitconfig"), "").unwrap();
        let s = survey_of(&p, &[]);
        for (rel, st) in [
            (".husky", Start::Held),
            ("team.gitconfig", Start::Held),
            (".git/modules/sub/config", Start::Held),
            (".git/modules/sub/hooks", Start::Absent),
            (".git/worktrees/wt/commondir", Start::Held),
            (".git/worktrees/wt/config.worktree", Start::Absent),
        ] {
            assert_eq!(start_of(&s, &p.join(rel)), Some(st), "{rel}");
        }
        assert!(s.gitdirs.contains(&p.join(".git/modules/sub")));
        fs::remove_dir_all(&p).unwrap();
    }

    /// When a run begins, as the guard takes it (the coarse clock, as the
    /// kernel stamps change times).
    fn run_began() -> (i64, i64) {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime fills the timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
        (ts.tv_sec, ts.tv_nsec)
    }

    #[test]
    fn a_name_created_in_a_directory_whose_times_were_set_back_is_found() {
        let p = tmp("changed-since");
        let s = survey_of(&p, &[]);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let since = run_began();
        assert!(changed(&s.protected, since).is_empty());
        // Created at once (the same tick as `since`), and the project's
        // times set back to before the run: its change time still moved.
        fs::write(p.join(".envrc"), "x").unwrap();
        let old = std::fs::FileTimes::new()
            .set_modified(std::time::SystemTime::UNIX_EPOCH)
            .set_accessed(std::time::SystemTime::UNIX_EPOCH);
        fs::File::open(&p).unwrap().set_times(old).unwrap();
        assert_eq!(changed(&s.protected, since), vec![p.join(".envrc")]);
        // And in a directory missing at start.
        fs::create_dir(p.join(".vscode")).unwrap();
        fs::write(p.join(".vscode/tasks.json"), "{}").unwrap();
        let mut c = changed(&s.protected, since);
        c.sort();
        assert!(c.contains(&p.join(".vscode")), "{c:?}");
        fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn created_and_changed_paths_are_found_but_harmless_git_files_are_not() {
        let p = tmp("changed");
        std::os::unix::fs::symlink("a", p.join(".envrc")).unwrap();
        fs::create_dir_all(p.join(".git")).unwrap();
        fs::create_dir_all(p.join(".git/worktrees/new")).unwrap();
        let s = survey_of(&p, &[]);
        let since = run_began();
        assert!(changed(&s.protected, since).is_empty());
        fs::create_dir_all(p.join(".claude")).unwrap();
        fs::write(p.join(".claude/settings.json"), "{\"hooks\":1}").unwrap();
        fs::remove_file(p.join(".envrc")).unwrap();
        std::os::unix::fs::symlink("b", p.join(".envrc")).unwrap();
        fs::write(p.join(".git/commondir"), "../evil").unwrap();
        fs::write(p.join(".git/worktrees/new/commondir"), "../..").unwrap();
        let mut c = changed(&s.protected, since);
        c.sort();
        assert_eq!(
            c,
            vec![
                p.join(".claude/settings.json"),
                p.join(".envrc"),
                p.join(".git/commondir")
            ]
        );
        fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn watched_files_absent_toml_or_symlinked() {
        let p = tmp("watched");
        fs::create_dir_all(p.join("dot")).unwrap();
        fs::write(p.join("dot/settings.json"), "{}").unwrap();
        std::os::unix::fs::symlink("dot/settings.json", p.join("settings.json")).unwrap();
        let writable = vec![p.clone()];
        let watched = vec![
            (p.join("settings.json"), vec!["hooks".to_string()]),
            (p.join("config.toml"), vec!["mcp_servers".to_string()]),
        ];
        let s = survey(&Areas {
            project: &p,
            writable: &writable,
            relaxed: &[],
            extra: &[],
            watched: &watched,
            global_git_configs: &[],
            home: Path::new("/nonexistent"),
        });
        assert_eq!(
            start_of(&s, &p.join("settings.json")),
            Some(Start::Symlink("dot/settings.json".into()))
        );
        assert_eq!(
            start_of(&s, &p.join("dot/settings.json")),
            Some(Start::Held)
        );
        let Some(Start::Watched { keys, snapshot }) = start_of(&s, &p.join("config.toml")) else {
            panic!("absent at start: watched");
        };
        assert_eq!(snapshot, "{}");
        let made = "model = \"b\"\n[mcp_servers.x]\ncommand = \"sh\"\n";
        let Watch::Changed {
            restored: Some(text),
            entries,
        } = check_watched(made, &keys, &snapshot)
        else {
            panic!("not restored");
        };
        assert_eq!(entries, ["mcp_servers"]);
        assert_eq!(text.trim(), "model = \"b\"");
        assert_eq!(
            check_watched("model = \"c\"\n", &keys, &snapshot),
            Watch::Unchanged
        );
        fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn watched_entries_are_put_back_and_the_rest_kept() {
        let keys = vec![
            "mcpServers".to_string(),
            "projects.*.mcpServers".to_string(),
        ];
        let before = r#"{"numStartups":1,"mcpServers":{"ok":{"command":"a"}},"projects":{"/p":{"mcpServers":{}}}}"#;
        let snap = watched_entries(before, &keys).unwrap();
        assert_eq!(check_watched(before, &keys, &snap), Watch::Unchanged);
        let after = r#"{"numStartups":2,"mcpServers":{"ok":{"command":"a"},"evil":{"command":"sh"}},"projects":{"/p":{"mcpServers":{"x":{"command":"id"}}},"/q":{"mcpServers":{"y":{}}}}}"#;
        let Watch::Changed {
            restored: Some(text),
            entries,
        } = check_watched(after, &keys, &snap)
        else {
            panic!("not restored");
        };
        assert_eq!(
            entries,
            [
                "mcpServers",
                "projects./p.mcpServers",
                "projects./q.mcpServers"
            ]
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["numStartups"], 2, "the rest is kept");
        assert!(v["mcpServers"].get("evil").is_none());
        assert_eq!(v["projects"]["/p"]["mcpServers"], serde_json::json!({}));
        assert!(v["projects"]["/q"].get("mcpServers").is_none());
        assert_eq!(check_watched(&text, &keys, &snap), Watch::Unchanged);
        // A new project's empty entries grant nothing: kept, quietly.
        let fresh = r#"{"numStartups":1,"mcpServers":{"ok":{"command":"a"}},"projects":{"/p":{"mcpServers":{}},"/n":{"mcpServers":{},"allowedTools":[],"hasTrustDialogAccepted":false}}}"#;
        let keys2 = vec![
            "mcpServers".to_string(),
            "projects.*.mcpServers".to_string(),
            "projects.*.allowedTools".to_string(),
            "projects.*.hasTrustDialogAccepted".to_string(),
        ];
        let snap2 = watched_entries(before, &keys2).unwrap();
        assert_eq!(check_watched(fresh, &keys2, &snap2), Watch::Unchanged);
        // Emptying an existing entry is a change (a deny list removed).
        let emptied = r#"{"numStartups":1,"mcpServers":{},"projects":{"/p":{"mcpServers":{}}}}"#;
        assert!(matches!(
            check_watched(emptied, &keys2, &snap2),
            Watch::Changed { .. }
        ));
        assert_eq!(
            check_watched("not json", &keys, &snap),
            Watch::Changed {
                restored: None,
                entries: Vec::new()
            }
        );
    }

    #[test]
    fn hook_links_nested_includes_and_relative_includes_are_followed() {
        let p = tmp("hooklinks");
        fs::create_dir_all(p.join(".git/hooks")).unwrap();
        fs::create_dir_all(p.join("scripts")).unwrap();
        fs::write(p.join("scripts/pre-commit.sh"), "#!/bin/sh\n").unwrap();
        std::os::unix::fs::symlink(
            "../../scripts/pre-commit.sh",
            p.join(".git/hooks/pre-commit"),
        )
        .unwrap();
        fs::write(p.join(".git/config"), "[include]\n\tpath = ../.gitconfig\n").unwrap();
        fs::write(p.join(".gitconfig"), "[include]\n\tpath = cfg/more\n").unwrap();
        fs::create_dir_all(p.join("cfg")).unwrap();
        fs::write(p.join("cfg/more"), "[core]\n\thooksPath = hooks2\n").unwrap();
        fs::create_dir_all(p.join("hooks2")).unwrap();
        let s = survey_of(&p, &[]);
        for rel in ["scripts/pre-commit.sh", ".gitconfig", "cfg/more", "hooks2"] {
            assert_eq!(
                start_of(&s, &p.join(rel)),
                Some(Start::Held),
                "{rel}: {s:#?}"
            );
        }
        // The relative include is held where it is, never as a path
        // "through" .git that changed() would take for a swapped link.
        assert!(s
            .protected
            .iter()
            .all(|x| !x.path.to_string_lossy().contains("..")));
        assert!(changed(&s.protected, run_began()).is_empty());
        fs::remove_dir_all(&p).unwrap();
    }

    #[test]
    fn kept_trust_is_the_projects_own_and_extends_the_hosts_layer() {
        let t = tmp("kept");
        let layer: &'static str = Box::leak(
            t.join("etc-config.toml")
                .display()
                .to_string()
                .into_boxed_str(),
        );
        let k = Kept {
            via: Via::Layer(layer),
            ..KEPT[0]
        };
        let proj = t.join("proj");
        let text = format!(
            "model = \"x\"\n[projects.\"{p}\"]\ntrust_level = \"trusted\"\n\
             [projects.\"{p}/sub\"]\ntrust_level = \"untrusted\"\n\
             [projects.\"{p}/../other\"]\ntrust_level = \"trusted\"\n\
             [projects.\"{p}x\"]\ntrust_level = \"trusted\"\n\
             [projects.\"/\"]\ntrust_level = \"trusted\"\n\
             [projects.\"relative\"]\ntrust_level = \"trusted\"\n",
            p = proj.display()
        );
        let mut got = k.entries(&text, &proj);
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let p = proj.display().to_string();
        assert_eq!(
            got,
            vec![
                (p.clone(), toml::Value::String("trusted".into())),
                (format!("{p}/sub"), toml::Value::String("untrusted".into()))
            ]
        );
        assert_eq!(k.entry_name(&p), format!("projects.{p}.trust_level"));
        // Nothing kept: no layer.
        assert_eq!(k.layer_text(&t, &proj), None);
        k.remember(&t, &got[..1]).unwrap();
        // Kept for another project: not shown here.
        assert_eq!(k.layer_text(&t, &t.join("elsewhere")), None);
        let shown = k.layer_text(&t, &proj).unwrap();
        let v: toml::Table = toml::from_str(&shown).unwrap();
        assert_eq!(v["projects"][&p]["trust_level"].as_str(), Some("trusted"));
        // The host's own file (an admin's) stays in it and wins.
        fs::write(
            layer,
            format!("model = \"admin\"\n[projects.\"{p}\"]\ntrust_level = \"untrusted\"\n"),
        )
        .unwrap();
        let v: toml::Table = toml::from_str(&k.layer_text(&t, &proj).unwrap()).unwrap();
        assert_eq!(v["model"].as_str(), Some("admin"));
        assert_eq!(v["projects"][&p]["trust_level"].as_str(), Some("untrusted"));
        // One it cannot read as TOML is not replaced.
        fs::write(layer, "not = [toml").unwrap();
        assert_eq!(k.layer_text(&t, &proj), None);
    }
}
