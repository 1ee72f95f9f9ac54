//! Reads an overlay's upper directory into the list of changes it makes
//! to the project, in overlayfs's own terms: a file or symlink in upper is
//! new content at that path; a character device 0/0 is a whiteout (the
//! path was deleted); a directory with `user.overlay.opaque = y` replaced
//! the project's directory of that name (what the project has there and
//! upper does not was deleted); any other directory only holds changes
//! (or a new mode). Each change is compared with what the host has now:
//! copies without a difference are noise, a host path that changed since
//! the jail started is a conflict, and paths that could make a process
//! outside the jail run code (the protected paths) or special files are
//! blocked: never applied.
//!
//! Read-only: nothing here writes the host or the upper directory.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// What kind of filesystem object a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    Device,
    /// overlayfs's mark of a deleted path (a character device 0/0).
    Whiteout,
}

impl Type {
    pub fn name(self) -> &'static str {
        match self {
            Type::File => "file",
            Type::Dir => "directory",
            Type::Symlink => "symlink",
            Type::Fifo => "fifo",
            Type::Socket => "socket",
            Type::Device => "device node",
            Type::Whiteout => "whiteout",
        }
    }
}

/// One filesystem object, as lstat sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub ty: Type,
    /// Permission bits with setuid, setgid and sticky (mode & 0o7777).
    pub mode: u32,
    pub size: u64,
    /// 512-byte blocks allocated (a sparse file has fewer than its size).
    pub blocks: u64,
    /// Status change time, in nanoseconds since the epoch.
    pub ctime: i128,
    /// A symlink's target.
    pub link: Option<PathBuf>,
}

impl Node {
    pub fn of(md: &fs::Metadata, path: &Path) -> Node {
        let ft = md.file_type();
        let ty = if ft.is_symlink() {
            Type::Symlink
        } else if ft.is_dir() {
            Type::Dir
        } else if ft.is_file() {
            Type::File
        } else if ft.is_fifo() {
            Type::Fifo
        } else if ft.is_socket() {
            Type::Socket
        } else if ft.is_char_device() && md.rdev() == 0 {
            Type::Whiteout
        } else {
            Type::Device
        };
        Node {
            ty,
            mode: md.mode() & 0o7777,
            size: md.size(),
            blocks: md.blocks(),
            ctime: i128::from(md.ctime()) * 1_000_000_000 + i128::from(md.ctime_nsec()),
            link: (ty == Type::Symlink)
                .then(|| fs::read_link(path).ok())
                .flatten(),
        }
    }

    /// lstat of `path`; None when absent.
    pub fn at(path: &Path) -> Option<Node> {
        fs::symlink_metadata(path).ok().map(|m| Node::of(&m, path))
    }

    pub fn sparse(&self) -> bool {
        self.ty == Type::File && self.blocks.saturating_mul(512) < self.size / 2
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A new file, symlink or special file where the host has nothing.
    Added,
    /// Replaces what the host has (other content, or another type).
    Modified,
    /// The host's file or directory tree is removed.
    Deleted,
    /// A file moved: deleted at `from`, added with the same content here.
    Renamed { from: PathBuf },
    /// Only the permission bits differ.
    Mode,
    /// A new, empty directory.
    NewDir,
}

/// Why a change is never applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A path through which a process outside the jail could be made to
    /// run code (git hooks and config, editor and agent config, .jail.toml):
    /// moved to quarantine, as without review.
    Protected,
    /// A fifo, socket or device node: not project content.
    Special(Type),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Relative to the project root (and to the upper directory).
    pub rel: PathBuf,
    pub kind: Kind,
    /// What upper holds (None for a deletion).
    pub new: Option<Node>,
    /// What the host holds now (None where it has nothing).
    pub old: Option<Node>,
    /// For a deleted directory: how many entries it holds.
    pub entries: usize,
    /// Why this change would overwrite something changed on the host
    /// since the jail started (never applied without the user's yes).
    pub conflict: Option<String>,
    pub block: Option<Block>,
}

/// Everything upper holds.
#[derive(Debug, Default)]
pub struct Scan {
    pub changes: Vec<Change>,
    /// Upper entries that change nothing (copied up, not modified; a
    /// whiteout of a path the host no longer has): dropped at the end.
    pub noise: Vec<PathBuf>,
}

/// Reads `upper` against the project `host`. A host object whose ctime
/// is at or after `since` (ns) changed while the jail ran. `relaxed`:
/// protected paths (relative) the user made read-write on purpose.
pub fn scan(upper: &Path, host: &Path, since: i128, relaxed: &[PathBuf]) -> Scan {
    let mut s = Scanner {
        upper,
        host,
        since,
        relaxed,
        out: Scan::default(),
        dir_ok: BTreeMap::new(),
        named: BTreeMap::new(),
    };
    s.dir(Path::new(""), false);
    let mut scan = s.out;
    pair_renames(&mut scan.changes, upper, host);
    scan.changes.sort_by(|a, b| a.rel.cmp(&b.rel));
    scan
}

struct Scanner<'a> {
    upper: &'a Path,
    host: &'a Path,
    since: i128,
    relaxed: &'a [PathBuf],
    out: Scan,
    /// Host directories (relative) known to be real directories, not
    /// symlinks, from the root down: Ok, or why not.
    dir_ok: BTreeMap<PathBuf, Result<(), String>>,
    /// Per host directory holding a `.git`: what that repository's
    /// configs name that runs code (hook directories, included configs,
    /// what its hooks' links lead to), as host paths.
    named: BTreeMap<PathBuf, Vec<PathBuf>>,
}

impl Scanner<'_> {
    /// Whether every directory from the project root to `rel`'s parent is
    /// a real directory on the host (never a symlink: applying never
    /// follows one), or where it is not.
    fn parents_ok(&mut self, rel: &Path) -> Result<(), String> {
        let mut cur = PathBuf::new();
        for c in rel.parent().into_iter().flat_map(Path::components) {
            cur.push(c);
            let r = self.dir_ok.entry(cur.clone()).or_insert_with(|| {
                match fs::symlink_metadata(self.host.join(&cur)) {
                    Ok(m) if m.is_dir() => Ok(()),
                    Ok(m) if m.file_type().is_symlink() => {
                        Err(format!("{} is a symlink on the host now", cur.display()))
                    }
                    Ok(_) => Err(format!(
                        "{} is no longer a directory on the host",
                        cur.display()
                    )),
                    // Created when applied.
                    Err(_) => Ok(()),
                }
            });
            r.clone()?;
        }
        Ok(())
    }

    /// Whether `rel` is a control file (config, hooks, ...) of a
    /// directory shaped like a bare repository or its common directory
    /// (HEAD, objects, refs or commondir in the project as the jail left it): git run in that directory uses
    /// it, so it runs on the host like `.git/config`.
    fn in_bare_repository_control(&self, rel: &Path) -> bool {
        let comps: Vec<&std::ffi::OsStr> = rel.iter().collect();
        (1..comps.len()).any(|i| {
            GIT_CONTROL.iter().any(|g| comps[i] == *g) && {
                let dir: PathBuf = comps[..i].iter().collect();
                let has = |n: &str| {
                    [self.upper, self.host]
                        .iter()
                        .any(|base| fs::symlink_metadata(base.join(&dir).join(n)).is_ok())
                };
                // As git's is_git_directory (objects and refs of any type,
                // or a commondir), or a common directory another one's
                // commondir may name (objects and refs without HEAD).
                crate::plan::git::bare_shape_by(has) || (has("objects") && has("refs"))
            }
        })
    }

    /// Whether `rel` is in a hook directory (`core.hooksPath`), an
    /// included config, or what a hook's link leads to, of a repository
    /// the host holds at or above it (a nested clone's `.githooks/`): git
    /// on the host runs it like the repository's own hooks. (A config
    /// changed inside is blocked itself, so the host's configs say.)
    fn in_hook_path(&mut self, rel: &Path) -> bool {
        let abs = self.host.join(rel);
        let phys = abs
            .parent()
            .and_then(|d| fs::canonicalize(d).ok())
            .zip(abs.file_name())
            .map(|(d, n)| d.join(n));
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/nonexistent"));
        let comps: Vec<Component> = rel.components().collect();
        (0..comps.len()).any(|i| {
            let a: PathBuf = comps[..i].iter().collect();
            let host = self.host;
            let named = self.named.entry(a.clone()).or_insert_with(|| {
                let tree = host.join(&a);
                let Some(d) = crate::plan::git::gitdir_of(&tree.join(".git")) else {
                    return Vec::new();
                };
                let common = crate::plan::git::common_dir(&d);
                let mut out = vec![(d.join("hooks"), true)];
                for cfg in [
                    common.join("config"),
                    d.join("config"),
                    d.join("config.worktree"),
                ] {
                    out.extend(crate::plan::protect::named_by_git_config(
                        &cfg, &tree, &home,
                    ));
                }
                let mut paths = Vec::new();
                for (p, hookdir) in out {
                    if hookdir {
                        for e in fs::read_dir(&p).into_iter().flatten().flatten() {
                            if let Ok(t) = fs::canonicalize(e.path()) {
                                paths.push(t);
                            }
                        }
                    }
                    paths.push(p);
                }
                paths
            });
            named
                .iter()
                .any(|n| abs.starts_with(n) || phys.as_ref().is_some_and(|p| p.starts_with(n)))
        })
    }

    /// Whether `rel` is a rebase's or cherry-pick's state that makes the
    /// host's `git rebase --continue` run a command: a todo list with
    /// `exec` lines, or a merge strategy naming a path.
    fn runs_at_continue(&self, rel: &Path) -> bool {
        use crate::plan::git;
        let judge: fn(&str) -> bool =
            if rel.ends_with("rebase-merge/git-rebase-todo") || rel.ends_with("sequencer/todo") {
                git::todo_runs_commands
            } else if rel.ends_with("rebase-merge/strategy") {
                |t| !git::plain_strategy(t.trim_end())
            } else if rel.ends_with("sequencer/opts") {
                |t| {
                    let (entries, _) = git::parse_config(t);
                    git::values(&entries, "options", "strategy")
                        .iter()
                        .any(|s| !git::plain_strategy(s))
                }
            } else {
                return false;
            };
        match crate::host::read_regular(&self.upper.join(rel), git::CONTROL_MAX) {
            crate::host::Read::Text(b) => judge(&String::from_utf8_lossy(&b)),
            crate::host::Read::Absent => false,
            crate::host::Read::Suspect(_) => true,
        }
    }

    fn changed(&self, n: &Node) -> bool {
        n.ctime >= self.since
    }

    fn push(&mut self, rel: PathBuf, kind: Kind, new: Option<Node>, old: Option<Node>) {
        let block = blocked(&rel, new.as_ref(), self.relaxed).or_else(|| {
            self.in_bare_repository_control(&rel)
                .then_some(Block::Protected)
        });
        let block = block
            .or_else(|| self.in_hook_path(&rel).then_some(Block::Protected))
            .or_else(|| self.runs_at_continue(&rel).then_some(Block::Protected));
        let mut c = Change {
            rel,
            kind,
            new,
            old,
            entries: 0,
            conflict: None,
            block,
        };
        if let Err(why) = self.parents_ok(&c.rel) {
            c.conflict = Some(why);
        } else if let Some(old) = &c.old {
            if old.ty == Type::Dir && !c.new.as_ref().is_some_and(|n| n.ty == Type::Dir) {
                // A host directory goes away: anything in it changed counts.
                let (n, changed) = tree(&self.host.join(&c.rel), self.since);
                c.entries = n;
                if changed || self.changed(old) {
                    c.conflict =
                        Some("something in it changed on the host since the jail started".into());
                }
            } else if self.changed(old) {
                c.conflict = Some("changed on the host since the jail started".into());
            }
        }
        self.out.changes.push(c);
    }

    /// The upper directory `rel` (the root is ""). Below an opaque
    /// directory nothing of the host shows, so every directory there
    /// replaces the host's.
    fn dir(&mut self, rel: &Path, opaque_above: bool) {
        let up = self.upper.join(rel);
        let Ok(rd) = fs::read_dir(&up) else { return };
        let mut names: Vec<OsString> = rd.flatten().map(|e| e.file_name()).collect();
        names.sort();
        let opaque_here = opaque_above || (!rel.as_os_str().is_empty() && opaque(&up));
        if opaque_here {
            // What the project has here and upper does not was deleted.
            let host_dir = self.host.join(rel);
            if fs::symlink_metadata(&host_dir).is_ok_and(|m| m.is_dir()) {
                let mut gone: Vec<OsString> = fs::read_dir(&host_dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.file_name())
                    .filter(|n| !names.contains(n))
                    .collect();
                gone.sort();
                for n in gone {
                    let r = rel.join(&n);
                    let old = Node::at(&self.host.join(&r));
                    self.push(r, Kind::Deleted, None, old);
                }
            }
        }
        for name in names {
            let r = rel.join(&name);
            let Some(new) = Node::at(&self.upper.join(&r)) else {
                continue;
            };
            let old = if self.parents_ok(&r).is_ok() {
                Node::at(&self.host.join(&r))
            } else {
                None
            };
            match new.ty {
                Type::Whiteout => match old {
                    Some(o) => self.push(r, Kind::Deleted, None, Some(o)),
                    None => self.out.noise.push(r),
                },
                Type::Dir => {
                    let children = fs::read_dir(self.upper.join(&r))
                        .map(|mut d| d.next().is_some())
                        .unwrap_or(false);
                    match &old {
                        None if !children => self.push(r.clone(), Kind::NewDir, Some(new), None),
                        None => {}
                        Some(o) if o.ty != Type::Dir => {
                            self.push(r.clone(), Kind::Modified, Some(new), old.clone())
                        }
                        Some(o) if o.mode != new.mode => {
                            self.push(r.clone(), Kind::Mode, Some(new), old.clone())
                        }
                        Some(_) => {}
                    }
                    self.dir(&r, opaque_here);
                }
                _ => match old {
                    None => self.push(r, Kind::Added, Some(new), None),
                    Some(o)
                        if same_content(&self.upper.join(&r), &new, &self.host.join(&r), &o) =>
                    {
                        if o.mode == new.mode {
                            self.out.noise.push(r);
                        } else {
                            self.push(r, Kind::Mode, Some(new), Some(o));
                        }
                    }
                    Some(o) => self.push(r, Kind::Modified, Some(new), Some(o)),
                },
            }
        }
    }
}

/// Whether overlayfs marked the upper directory as opaque.
fn opaque(dir: &Path) -> bool {
    let mut buf = [0u8; 4];
    crate::sys::lgetxattr(dir, c"user.overlay.opaque", &mut buf)
        .is_ok_and(|n| n >= 1 && buf[0] == b'y')
}

/// Entries in the host tree at `path` (not following symlinks), and
/// whether any of them changed at or after `since`.
pub fn tree(path: &Path, since: i128) -> (usize, bool) {
    let (mut n, mut changed) = (0, false);
    let mut stack = vec![path.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            n += 1;
            if let Ok(m) = e.metadata() {
                let node = Node::of(&m, &e.path());
                changed |= node.ctime >= since;
                if node.ty == Type::Dir {
                    stack.push(e.path());
                }
            }
        }
    }
    (n, changed)
}

/// Whether two objects have the same type and content (files: bytes;
/// symlinks: target). Modes are compared by the caller.
fn same_content(a: &Path, na: &Node, b: &Path, nb: &Node) -> bool {
    if na.ty != nb.ty {
        return false;
    }
    match na.ty {
        Type::Symlink => na.link == nb.link,
        Type::File => na.size == nb.size && same_bytes(a, b),
        _ => false,
    }
}

/// Compares two files chunk by chunk (never all in memory).
pub fn same_bytes(a: &Path, b: &Path) -> bool {
    let (Ok(mut fa), Ok(mut fb)) = (fs::File::open(a), fs::File::open(b)) else {
        return false;
    };
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    loop {
        let Ok(n) = read_full(&mut fa, &mut ba) else {
            return false;
        };
        let Ok(m) = read_full(&mut fb, &mut bb) else {
            return false;
        };
        if n != m || ba[..n] != bb[..m] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Deleted files whose content was added elsewhere are shown as renames.
fn pair_renames(changes: &mut Vec<Change>, upper: &Path, host: &Path) {
    let mut i = 0;
    while i < changes.len() {
        let c = &changes[i];
        let is_file = |n: &Option<Node>| n.as_ref().is_some_and(|n| n.ty == Type::File);
        if c.kind != Kind::Deleted || !is_file(&c.old) || c.conflict.is_some() || c.block.is_some()
        {
            i += 1;
            continue;
        }
        let (from, size) = (c.rel.clone(), c.old.as_ref().map_or(0, |o| o.size));
        let partner = changes.iter().position(|a| {
            a.kind == Kind::Added
                && a.block.is_none()
                && a.conflict.is_none()
                && a.new
                    .as_ref()
                    .is_some_and(|n| n.ty == Type::File && n.size == size)
                && same_bytes(&upper.join(&a.rel), &host.join(&from))
        });
        match partner {
            Some(p) => {
                changes[p].kind = Kind::Renamed { from };
                changes.remove(i);
            }
            None => i += 1,
        }
    }
}

/// Top-level protected paths (`plan::protect::PROTECTED`) and, in any
/// git directory at any depth, the control files git runs code from.
const GIT_CONTROL: &[&str] = &[
    "hooks",
    "config",
    "config.worktree",
    "commondir",
    "info",
    "modules",
    "worktrees",
];

/// Whether applying a change at `rel` (to `new`) could make a process
/// outside the jail run code: protected paths and what is below them; a
/// git directory's control files at any depth; a `.git` that is not a
/// directory (it would name another git directory); and any directory on
/// the way to a protected path replaced by something else (a symlink
/// would redirect it). A protected path in `relaxed` (named in `rw` by
/// the user) is applied like any other, as it is written without review.
/// Why a protected path runs on the host: which program outside the jail
/// runs it or runs what it says, and when.
pub fn why_protected(rel: &Path) -> &'static str {
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    let s = rel.to_string_lossy();
    let is = |prefixes: &[&str]| {
        prefixes
            .iter()
            .any(|p| first.starts_with(p) || s.starts_with(p))
    };
    if rel.components().any(|c| c.as_os_str() == ".git") {
        "your git runs it or reads it to run code (a hook, a config naming a program)"
    } else if is(&[
        ".pre-commit-config",
        "lefthook",
        ".lefthook",
        ".config/lefthook",
        ".overcommit",
        ".git-hooks",
        ".husky",
        ".simple-git-hooks",
        "simple-git-hooks",
        ".cargo-husky",
        ".lintstagedrc",
        "lint-staged.config",
    ]) {
        "the git hook its manager installed runs what it says at your next commit"
    } else if is(&[".envrc"]) {
        "direnv sources it in your shell when you cd into the project"
    } else if is(&["mise", ".mise", ".config/mise"]) {
        "mise runs its hooks and environment when you cd into the project"
    } else if is(&[".devcontainer"]) {
        "its initializeCommand runs on the host when the dev container is built"
    } else if is(&[".vscode", ".idea", ".zed", ".nvim", ".exrc", ".dir-locals"]) {
        "your editor runs its tasks or servers when it opens the project"
    } else if is(&[".claude", ".mcp.json", ".gemini", ".cursor", ".codex"]) {
        "your agent runs its hooks and MCP servers or takes its permissions"
    } else if is(&[".jail.toml"]) {
        "it sets what the next jail allows"
    } else {
        "it could make a program outside the jail run code"
    }
}

pub fn blocked(rel: &Path, new: Option<&Node>, relaxed: &[PathBuf]) -> Option<Block> {
    if let Some(n) = new {
        if matches!(n.ty, Type::Fifo | Type::Socket | Type::Device) {
            return Some(Block::Special(n.ty));
        }
    }
    let protected: Vec<&str> = crate::plan::protect::PROTECTED
        .iter()
        .copied()
        .filter(|p| !relaxed.iter().any(|r| r == Path::new(p)))
        .collect();
    if protected.iter().any(|p| rel.starts_with(p)) {
        return Some(Block::Protected);
    }
    let comps: Vec<&std::ffi::OsStr> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    for (i, c) in comps.iter().enumerate() {
        if *c == ".git" {
            match comps.get(i + 1) {
                Some(next) if GIT_CONTROL.iter().any(|g| next == g) => {
                    return Some(Block::Protected)
                }
                None if new.is_some_and(|n| n.ty != Type::Dir) => return Some(Block::Protected),
                _ => {}
            }
        }
    }
    let not_dir = new.is_some_and(|n| n.ty != Type::Dir);
    if not_dir && protected.iter().any(|p| Path::new(p).starts_with(rel)) {
        return Some(Block::Protected);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Node {
        Node {
            ty: Type::File,
            mode: 0o644,
            size: 1,
            blocks: 8,
            ctime: 0,
            link: None,
        }
    }

    #[test]
    fn protected_paths_and_git_control_files_are_blocked() {
        let f = file();
        let dir = Node {
            ty: Type::Dir,
            ..file()
        };
        let link = Node {
            ty: Type::Symlink,
            ..file()
        };
        for p in [
            ".mcp.json",
            ".jail.toml",
            ".git/hooks/pre-commit",
            ".git/config",
            ".vscode/tasks.json",
            "sub/.git/hooks/post-checkout",
            "vendor/x/.git/config",
            ".git/modules/m/hooks/x",
            ".git/info/attributes",
        ] {
            assert_eq!(
                blocked(Path::new(p), Some(&f), &[]),
                Some(Block::Protected),
                "{p}"
            );
        }
        // A .git file or symlink names another git directory.
        assert_eq!(
            blocked(Path::new(".git"), Some(&f), &[]),
            Some(Block::Protected)
        );
        assert_eq!(
            blocked(Path::new("lib/.git"), Some(&link), &[]),
            Some(Block::Protected)
        );
        assert_eq!(blocked(Path::new(".git"), Some(&dir), &[]), None);
        // A parent of a protected path replaced by a symlink redirects it.
        assert_eq!(
            blocked(Path::new(".claude"), Some(&link), &[]),
            Some(Block::Protected)
        );
        assert_eq!(blocked(Path::new(".claude"), Some(&dir), &[]), None);
        // Ordinary project files, and git's object store, are not.
        for p in [
            "src/main.rs",
            ".git/objects/ab/cd",
            ".git/refs/heads/main",
            ".claude/commands/x.md",
            ".gitignore",
        ] {
            assert_eq!(blocked(Path::new(p), Some(&f), &[]), None, "{p}");
        }
        let fifo = Node {
            ty: Type::Fifo,
            ..file()
        };
        assert_eq!(
            blocked(Path::new("p"), Some(&fifo), &[]),
            Some(Block::Special(Type::Fifo))
        );
        // Named in `rw` by the user: applied, as without review.
        let relaxed = [PathBuf::from(".vscode")];
        assert_eq!(
            blocked(Path::new(".vscode/tasks.json"), Some(&f), &relaxed),
            None
        );
        assert_eq!(
            blocked(Path::new(".mcp.json"), Some(&f), &relaxed),
            Some(Block::Protected)
        );
    }
}
