//! What jail knows of git's on-disk layout: which files of a git directory
//! make git run code or point it elsewhere (its control files), where the
//! git directories of a repository are (worktrees, submodules), and when a
//! control file created inside a jail is harmless.
//!
//! Git's config syntax is read by a small parser of our own: the launcher
//! needs two keys (`core.hooksPath`, include paths) on every start, and the
//! guard a list of key names; a full implementation (gix-config) would add
//! far more code and start-up time than these few lines.

use std::fs;
use std::path::{Component, Path, PathBuf};

/// Entries of a git directory that make git run code or redirect it:
/// `config` (core.fsmonitor, aliases, filters, hooksPath, includes...),
/// `config.worktree` (the same, per worktree), `commondir` (where the
/// config and hooks really are), `hooks/`, `info/` (attributes, sparse
/// checkout), and in a worktree's admin directory `gitdir`.
pub const CONTROL: &[&str] = &["config", "config.worktree", "commondir", "hooks", "info"];

/// The hooks git runs (githooks(5)), by name in the hook directory.
pub const HOOK_NAMES: &[&str] = &[
    "applypatch-msg",
    "pre-applypatch",
    "post-applypatch",
    "pre-commit",
    "pre-merge-commit",
    "prepare-commit-msg",
    "commit-msg",
    "post-commit",
    "pre-rebase",
    "post-checkout",
    "post-merge",
    "pre-push",
    "pre-receive",
    "update",
    "proc-receive",
    "post-receive",
    "post-update",
    "reference-transaction",
    "push-to-checkout",
    "pre-auto-gc",
    "post-rewrite",
    "sendemail-validate",
    "fsmonitor-watchman",
    "p4-changelist",
    "p4-prepare-changelist",
    "p4-post-changelist",
    "p4-pre-submit",
    "post-index-change",
];

/// The largest `.git` file git reads (its `read_gitfile_gently` limit).
pub const GITFILE_MAX: u64 = 1 << 20;

/// The largest git control file the launcher or guard reads (a config or
/// `commondir`); a bigger one is suspect.
pub const CONTROL_MAX: u64 = 8 << 20;

/// What a `.git` entry names, as git itself finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Not a repository git would use (absent, or a `.git` file git
    /// refuses).
    None,
    /// A git directory: the `.git` directory itself, or the physical
    /// target of a `.git` symlink or of a `gitdir:` file.
    Dir(PathBuf),
    /// Something jail cannot judge (a FIFO or device, a link leading
    /// nowhere, an unreadable file); why.
    Suspect(String),
}

/// The git directory a `.git` entry names, resolved as git does: a
/// directory is itself; a symlink is followed (to a directory, or to a
/// `.git` file); a file of up to 1 MiB holding `gitdir: PATH` (trailing
/// newlines stripped, as git's `read_gitfile_gently` does) names PATH, relative to the `.git` file's
/// directory, resolved physically (symlinks and `..` by the kernel).
/// Never opens anything but a regular file, never blocks.
pub fn resolve_dotgit(dotgit: &Path) -> Found {
    let Ok(m) = fs::symlink_metadata(dotgit) else {
        return Found::None;
    };
    if m.is_dir() {
        return Found::Dir(dotgit.to_path_buf());
    }
    let file = if m.file_type().is_symlink() {
        if process_dependent(dotgit) {
            return Found::Suspect(
                "a symlink through /proc or /dev: it leads elsewhere for each process".into(),
            );
        }
        match fs::canonicalize(dotgit) {
            Ok(t) if t.is_dir() => return Found::Dir(t),
            Ok(t) => t,
            Err(e) => return Found::Suspect(format!("a symlink that git cannot follow ({e})")),
        }
    } else {
        dotgit.to_path_buf()
    };
    let text = match crate::host::read_regular(&file, GITFILE_MAX) {
        crate::host::Read::Text(t) => t,
        crate::host::Read::Absent => return Found::None,
        crate::host::Read::Suspect(why) => return Found::Suspect(why),
    };
    // git reads a C string: up to the first NUL, trailing newlines (CR,
    // LF) cut, and nothing else.
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    let mut t = &text[..end];
    while let Some((last, rest)) = t.split_last() {
        if *last == b'\n' || *last == b'\r' {
            t = rest;
        } else {
            break;
        }
    }
    let Some(target) = t.strip_prefix(b"gitdir: ") else {
        // git refuses it ("invalid gitfile format"): no repository.
        return Found::None;
    };
    use std::os::unix::ffi::OsStrExt;
    let target = Path::new(std::ffi::OsStr::from_bytes(target));
    let Some(base) = dotgit.parent() else {
        return Found::None;
    };
    if process_dependent(&base.join(target)) {
        return Found::Suspect(
            "names a git directory through /proc or /dev: it is elsewhere for each process".into(),
        );
    }
    match fs::canonicalize(base.join(target)) {
        Ok(d) if d.is_dir() => Found::Dir(d),
        Ok(_) => Found::None,
        Err(e) => Found::Suspect(format!(
            "names a git directory that cannot be resolved ({e})"
        )),
    }
}

/// Whether resolving `p` passes through a path whose meaning depends on
/// the process that resolves it (`/proc/self/cwd`, `/proc/<pid>`,
/// `/dev/fd`, `/dev/stdin`): git, run in another directory, would find
/// something other than what jail checked. Links are followed one hop
/// at a time (at most 40, as the kernel), each hop's target judged too.
pub fn process_dependent(p: &Path) -> bool {
    fn walk(p: &Path, hops: &mut u32) -> bool {
        let mut cur = PathBuf::from("/");
        for c in p.components() {
            match c {
                Component::RootDir | Component::Prefix(_) => cur = PathBuf::from("/"),
                Component::CurDir => {}
                Component::ParentDir => {
                    cur.pop();
                }
                Component::Normal(n) => {
                    let next = cur.join(n);
                    if next.starts_with("/proc") || next.starts_with("/dev") {
                        return true;
                    }
                    match fs::read_link(&next) {
                        Ok(t) => {
                            *hops += 1;
                            if *hops > 40 {
                                return true;
                            }
                            let t = if t.is_absolute() { t } else { cur.join(t) };
                            if walk(&t, hops) {
                                return true;
                            }
                            cur = fs::canonicalize(&next).unwrap_or(next);
                        }
                        Err(_) => cur = next,
                    }
                }
            }
        }
        false
    }
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(d) => d.join(p),
            Err(_) => return true,
        }
    };
    walk(&abs, &mut 0)
}

/// The git directory a `.git` entry names (see `resolve_dotgit`), if any.
pub fn gitdir_of(dotgit: &Path) -> Option<PathBuf> {
    match resolve_dotgit(dotgit) {
        Found::Dir(d) => Some(d),
        _ => None,
    }
}

/// Whether `dir` has the shape git's `is_git_directory` accepts (a bare
/// repository git finds when run there, unless `safe.bareRepository =
/// explicit`): a `HEAD`, and `objects` and `refs` in its common
/// directory, which a `commondir` file moves elsewhere. git only asks
/// `access(X_OK)` of `objects` and `refs` (an executable file will do),
/// so any entry counts, and any `commondir` (what it names is for the
/// caller to follow). A superset of what git accepts (HEAD's content is
/// not checked): fail closed.
pub fn is_bare_shape(dir: &Path) -> bool {
    bare_shape_by(|n| fs::symlink_metadata(dir.join(n)).is_ok())
}

/// `is_bare_shape`, asking `has(NAME)` whether the directory holds an
/// entry NAME (of any type).
pub fn bare_shape_by(has: impl Fn(&str) -> bool) -> bool {
    has("HEAD") && (has("commondir") || (has("objects") && has("refs")))
}

/// Names whose presence makes a directory a candidate for
/// `is_bare_shape`.
pub const BARE_SHAPE_NAMES: &[&str] = &["HEAD", "objects", "refs", "commondir"];

/// The common directory of a git directory: what `commondir` names
/// (relative to the git directory, resolved physically as git does), else
/// the directory itself. A `commondir` that is not a small regular file
/// (a FIFO) is not read: the git directory is its own common directory
/// then, and the file itself is a control file for the caller to judge.
pub fn common_dir(gitdir: &Path) -> PathBuf {
    let text = crate::host::read_regular(&gitdir.join("commondir"), CONTROL_MAX).text();
    match text {
        Some(t) if !t.trim().is_empty() => {
            let p = gitdir.join(t.trim());
            fs::canonicalize(&p).unwrap_or_else(|_| normalize(&p))
        }
        _ => gitdir.to_path_buf(),
    }
}

/// Every git directory that belongs to the repository whose common
/// directory is `common`: itself, its worktrees' admin directories, and
/// the git directories of its submodules (`modules/**`, nested).
pub fn related_gitdirs(common: &Path) -> Vec<PathBuf> {
    let mut out = vec![common.to_path_buf()];
    for e in read_dir_sorted(&common.join("worktrees")) {
        if e.is_dir() {
            out.push(e);
        }
    }
    let mut stack = read_dir_sorted(&common.join("modules"));
    while let Some(d) = stack.pop() {
        if !fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        // A submodule's git directory holds HEAD (a file, or a symlink
        // `refs/...` that git reads as a symbolic ref even when it
        // dangles: the ref may be packed); names may nest (a/b).
        if fs::symlink_metadata(d.join("HEAD")).is_ok() {
            out.extend(related_gitdirs(&d));
        } else {
            stack.extend(read_dir_sorted(&d));
        }
    }
    out
}

/// The control paths of one git directory (whether or not they exist).
pub fn control_paths(gitdir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = CONTROL.iter().map(|c| gitdir.join(c)).collect();
    if is_worktree_admin(gitdir) {
        v.push(gitdir.join("gitdir"));
    }
    v
}

/// `.../worktrees/NAME`: a linked worktree's admin directory.
pub fn is_worktree_admin(gitdir: &Path) -> bool {
    gitdir
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == "worktrees")
}

fn read_dir_sorted(d: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(d)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    v.sort();
    v
}

/// Lexical normalization (no symlinks followed).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// One `key = value` of a git config file: the full key lowercased as git
/// compares it (`section.subsection.key`, the subsection keeping its case)
/// and the unquoted value (`None` for a bare boolean key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub section: String,
    pub subsection: Option<String>,
    pub key: String,
    pub value: Option<String>,
}

impl Entry {
    /// `section.key` or `section.*.key` (any subsection), for matching.
    fn pattern(&self) -> String {
        match &self.subsection {
            Some(_) => format!("{}.*.{}", self.section, self.key),
            None => format!("{}.{}", self.section, self.key),
        }
    }
}

/// Parses git config text. Lines that do not parse are returned as `Err`
/// entries' line numbers in the second vector (the caller decides: a
/// created file with anything unparsable is not harmless).
pub fn parse_config(text: &str) -> (Vec<Entry>, Vec<usize>) {
    let mut entries = Vec::new();
    let mut bad = Vec::new();
    let (mut section, mut sub) = (String::new(), None::<String>);
    let mut lines = text.lines().enumerate().peekable();
    while let Some((no, raw)) = lines.next() {
        let mut line = raw.to_string();
        // A backslash at the end continues the value on the next line.
        while line.ends_with('\\') && !line.ends_with("\\\\") {
            line.pop();
            match lines.next() {
                Some((_, next)) => line.push_str(next),
                None => break,
            }
        }
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        let mut rest = t;
        if rest.starts_with('[') {
            let Some(end) = header_end(rest) else {
                bad.push(no + 1);
                continue;
            };
            let header = &rest[1..end];
            match header.split_once(|c: char| c.is_whitespace()) {
                Some((s, q)) => {
                    let q = q.trim();
                    let q = q.strip_prefix('"').and_then(|q| q.strip_suffix('"'));
                    match q {
                        Some(q) => {
                            section = s.to_ascii_lowercase();
                            sub = Some(q.replace("\\\"", "\"").replace("\\\\", "\\"));
                        }
                        None => {
                            bad.push(no + 1);
                            continue;
                        }
                    }
                }
                None => match header.split_once('.') {
                    // Deprecated [section.subsection]: subsection lowercased.
                    Some((s, q)) => {
                        section = s.to_ascii_lowercase();
                        sub = Some(q.to_ascii_lowercase());
                    }
                    None => {
                        section = header.to_ascii_lowercase();
                        sub = None;
                    }
                },
            }
            rest = rest[end + 1..].trim_start();
            if rest.is_empty() || rest.starts_with('#') || rest.starts_with(';') {
                continue;
            }
        }
        if section.is_empty() {
            bad.push(no + 1);
            continue;
        }
        let (name, value) = match rest.split_once('=') {
            Some((k, v)) => (k.trim(), Some(unquote(v))),
            None => (rest.split(['#', ';']).next().unwrap_or("").trim(), None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            bad.push(no + 1);
            continue;
        }
        entries.push(Entry {
            section: section.clone(),
            subsection: sub.clone(),
            key: name.to_ascii_lowercase(),
            value,
        });
    }
    (entries, bad)
}

/// Index of the `]` closing a section header (quotes respected).
fn header_end(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ']' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// A config value: quotes removed, escapes applied, comments cut.
fn unquote(v: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = v.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('b') => {
                    out.pop();
                }
                Some(o) => out.push(o),
                None => {}
            },
            '#' | ';' if !quoted => break,
            c => out.push(c),
        }
    }
    out.trim_end().to_string()
}

/// Values of `section.key` (no subsection), e.g. `core.hookspath`.
pub fn values(entries: &[Entry], section: &str, key: &str) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e.section == section && e.subsection.is_none() && e.key == key)
        .filter_map(|e| e.value.clone())
        .collect()
}

/// Paths named by `[include] path` and `[includeIf "..."] path`.
pub fn include_paths(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| (e.section == "include" || e.section == "includeif") && e.key == "path")
        .filter_map(|e| e.value.clone())
        .collect()
}

/// Keys a config created inside a jail may hold and still be harmless:
/// what `git init`, `git clone`, `git submodule add`, `git worktree add`
/// and `git remote`/`git branch` write. Everything else (fsmonitor,
/// hooksPath, aliases, filters, pagers, editors, sshCommand, includes,
/// uploadpack, credential helpers, ...) makes the config suspect.
const HARMLESS_KEYS: &[&str] = &[
    "core.repositoryformatversion",
    "core.filemode",
    "core.bare",
    "core.logallrefupdates",
    "core.ignorecase",
    "core.precomposeunicode",
    "core.symlinks",
    "core.worktree",
    "core.autocrlf",
    "core.eol",
    "core.safecrlf",
    "core.quotepath",
    "core.sparsecheckout",
    "core.sparsecheckoutcone",
    "extensions.objectformat",
    "extensions.refstorage",
    "extensions.worktreeconfig",
    "extensions.partialclone",
    "remote.*.url",
    "remote.*.pushurl",
    "remote.*.fetch",
    "remote.*.push",
    "remote.*.tagopt",
    "remote.*.prune",
    "remote.*.promisor",
    "remote.*.partialclonefilter",
    "remote.*.mirror",
    "branch.*.remote",
    "branch.*.merge",
    "branch.*.rebase",
    "branch.*.pushremote",
    "branch.*.description",
    "user.name",
    "user.email",
    "init.defaultbranch",
    "submodule.*.url",
    "submodule.*.active",
    "submodule.*.branch",
    "submodule.*.ignore",
    "submodule.*.shallow",
    "submodule.*.update",
    "lfs.repositoryformatversion",
    "gc.auto",
    "pull.rebase",
    "pull.ff",
    "fetch.prune",
    "push.default",
];

/// Whether a config (or config.worktree) created or changed inside a jail
/// can only hold harmless keys. `!command` updates and `ext::` remotes run
/// commands, so those values are suspect even under a harmless key.
pub fn harmless_config(text: &str) -> bool {
    let (entries, bad) = parse_config(text);
    bad.is_empty()
        && entries.iter().all(|e| {
            let v = e.value.as_deref().unwrap_or("");
            HARMLESS_KEYS.contains(&e.pattern().as_str())
                && !(e.key == "update" && v.trim_start().starts_with('!'))
                && !(e.key.ends_with("url")
                    && v.trim_start().to_ascii_lowercase().starts_with("ext::"))
        })
}

/// Whether a control file created inside a jail is harmless, judged by
/// its kind and content: a worktree admin directory's `commondir` that
/// names its own repository, its `gitdir`, `info/` files, sample hooks
/// (git never runs `*.sample`), and configs of harmless keys only.
pub fn harmless_created(gitdir: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(gitdir) else {
        return false;
    };
    let first = rel.components().next().map(|c| c.as_os_str().to_owned());
    let meta = fs::symlink_metadata(path);
    let regular_small = meta
        .as_ref()
        .is_ok_and(|m| m.is_file() && m.len() <= 1 << 20);
    match first.as_ref().and_then(|f| f.to_str()) {
        Some("commondir") if regular_small && is_worktree_admin(gitdir) => {
            let named = crate::host::read_regular(path, 1 << 20).text();
            if named.is_none_or(|t| process_dependent(&gitdir.join(t.trim()))) {
                return false;
            }
            gitdir.parent().and_then(Path::parent).is_some_and(|repo| {
                let c = common_dir(gitdir);
                c == normalize(repo) || fs::canonicalize(repo).is_ok_and(|r| r == c)
            })
        }
        Some("gitdir") => regular_small && is_worktree_admin(gitdir),
        Some("info") => meta.is_ok_and(|m| m.is_file() || m.is_dir()),
        Some("hooks") => {
            let m = match meta {
                Ok(m) => m,
                Err(_) => return false,
            };
            if m.is_dir() {
                // Harmless if everything in it is a sample.
                return read_dir_sorted(path)
                    .iter()
                    .all(|p| harmless_created(gitdir, p));
            }
            m.is_file()
                && rel.components().count() == 2
                && path.extension().is_some_and(|e| e == "sample")
        }
        Some("config") | Some("config.worktree") => {
            regular_small
                && crate::host::read_regular(path, 1 << 20)
                    .text()
                    .is_some_and(|t| harmless_config(&t))
        }
        _ => false,
    }
}

/// Whether a config entry is a command git runs (with the shell or as a
/// program): fsmonitor, pager, editors, filters, diff and merge drivers,
/// credential helpers, aliases, gpg and ssh programs.
pub fn runs_command(e: &Entry) -> bool {
    let sub = e.subsection.is_some();
    match (e.section.as_str(), e.key.as_str()) {
        ("core", "fsmonitor" | "pager" | "editor" | "sshcommand" | "askpass") => !sub,
        ("sequence", "editor") | ("diff", "external") | ("interactive", "difffilter") => !sub,
        ("gpg", "program") | ("credential", "helper") => true,
        ("alias", _) | ("pager", _) => true,
        ("diff", "command" | "textconv") => sub,
        ("filter", "clean" | "smudge" | "process") => sub,
        ("merge", "driver") | ("mergetool" | "difftool", "cmd") => sub,
        ("uploadpack", "packobjectshook") => !sub,
        _ => false,
    }
}

/// Whether a rebase or sequencer todo list runs commands: an `exec` (or
/// `x`) line, which git runs with the shell at `--continue`.
pub fn todo_runs_commands(text: &str) -> bool {
    text.lines().any(|l| {
        let w = l.split_whitespace().next().unwrap_or("");
        w == "exec" || w == "x"
    })
}

/// Whether a merge strategy name is a plain word (`ort`, `recursive`, a
/// `git-merge-NAME` on PATH), not a path git would run from the work
/// tree.
pub fn plain_strategy(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn todo_lists_with_exec_lines_run_commands() {
        assert!(todo_runs_commands("pick 1 a\n  exec make test\n"));
        assert!(todo_runs_commands("x id\n"));
        assert!(!todo_runs_commands(
            "pick 1 a\n# exec is a command\nbreak\n"
        ));
    }

    #[test]
    fn config_keys_sections_and_values_parse_like_git() {
        let text = "[core]\n\trepositoryformatversion = 0\n\tbare\n[remote \"origin\"]\n\turl = \"https://x/y\" # c\n[Core]\n  hooksPath = .husky/_ ; why\n[include]\npath = ../extra.cfg\n[alias.x]\n";
        let (e, bad) = parse_config(text);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(values(&e, "core", "hookspath"), [".husky/_"]);
        assert_eq!(include_paths(&e), ["../extra.cfg"]);
        let url = e.iter().find(|x| x.key == "url").unwrap();
        assert_eq!(url.subsection.as_deref(), Some("origin"));
        assert_eq!(url.value.as_deref(), Some("https://x/y"));
        assert!(e.iter().any(|x| x.key == "bare" && x.value.is_none()));
    }

    #[test]
    fn a_config_is_harmless_only_with_harmless_keys_and_values() {
        let init = "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n";
        assert!(harmless_config(init));
        assert!(harmless_config(&format!(
            "{init}[remote \"origin\"]\n\turl = https://github.com/a/b\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n[branch \"main\"]\n\tremote = origin\n\tmerge = refs/heads/main\n"
        )));
        for evil in [
            "[core]\n\tfsmonitor = touch /tmp/x; false\n",
            "[core]\n\thooksPath = ../evil\n",
            "[alias]\n\tst = !sh -c id\n",
            "[include]\n\tpath = ../evil.cfg\n",
            "[remote \"o\"]\n\turl = ext::sh -c id\n",
            "[submodule \"s\"]\n\tupdate = !sh -c id\n",
            "[core]\n\tsshCommand = evil\n",
            "[core]\nfsmon\\\nitor = evil\n",
            "garbage line\n",
        ] {
            assert!(!harmless_config(evil), "{evil}");
        }
    }

    #[test]
    fn gitdirs_of_worktrees_and_nested_submodules_are_found() {
        let t = std::env::temp_dir().join(format!("jail-git-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        let g = t.join(".git");
        fs::create_dir_all(g.join("worktrees/wt")).unwrap();
        fs::write(g.join("worktrees/wt/commondir"), "../..\n").unwrap();
        fs::create_dir_all(g.join("modules/a/b")).unwrap();
        fs::write(g.join("modules/a/b/HEAD"), "ref: x").unwrap();
        fs::create_dir_all(g.join("modules/c/modules/d")).unwrap();
        fs::write(g.join("modules/c/HEAD"), "ref: x").unwrap();
        fs::write(g.join("modules/c/modules/d/HEAD"), "ref: x").unwrap();
        // HEAD a dangling symlink to a packed ref: git's all the same.
        fs::create_dir_all(g.join("modules/e")).unwrap();
        std::os::unix::fs::symlink("refs/heads/main", g.join("modules/e/HEAD")).unwrap();
        let all = related_gitdirs(&g);
        assert!(all.contains(&g.join("modules/e")), "{all:?}");
        for d in [
            "",
            "worktrees/wt",
            "modules/a/b",
            "modules/c",
            "modules/c/modules/d",
        ] {
            let p = if d.is_empty() { g.clone() } else { g.join(d) };
            assert!(all.contains(&p), "{d}: {all:?}");
        }
        assert_eq!(common_dir(&g.join("worktrees/wt")), g);
        assert!(harmless_created(
            &g.join("worktrees/wt"),
            &g.join("worktrees/wt/commondir")
        ));
        fs::write(g.join("worktrees/wt/commondir"), "../../../evil\n").unwrap();
        assert!(!harmless_created(
            &g.join("worktrees/wt"),
            &g.join("worktrees/wt/commondir")
        ));
        assert!(!harmless_created(&g, &g.join("commondir")));
        fs::create_dir_all(g.join("hooks")).unwrap();
        fs::write(g.join("hooks/pre-commit.sample"), "").unwrap();
        assert!(harmless_created(&g, &g.join("hooks")));
        fs::write(g.join("hooks/pre-commit"), "#!/bin/sh\nid\n").unwrap();
        assert!(!harmless_created(&g, &g.join("hooks")));
        let gitfile = t.join("sub/.git");
        fs::create_dir_all(gitfile.parent().unwrap()).unwrap();
        fs::write(&gitfile, "gitdir: ../.git/modules/c\n").unwrap();
        assert_eq!(gitdir_of(&gitfile), Some(g.join("modules/c")));
        fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn dotgit_entries_resolve_as_git_resolves_them() {
        let t = std::env::temp_dir().join(format!("jail-git-dotgit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        fs::create_dir_all(t.join("store")).unwrap();
        let t = fs::canonicalize(&t).unwrap();
        // A symlinked .git.
        fs::create_dir_all(t.join("a")).unwrap();
        std::os::unix::fs::symlink("../store", t.join("a/.git")).unwrap();
        assert_eq!(
            resolve_dotgit(&t.join("a/.git")),
            Found::Dir(t.join("store"))
        );
        // A .git file over 4 KiB: padding after the path is whitespace.
        fs::create_dir_all(t.join("b")).unwrap();
        let padded = format!("gitdir: ../store{}", "\r\n".repeat(4000));
        fs::write(t.join("b/.git"), padded).unwrap();
        assert_eq!(
            resolve_dotgit(&t.join("b/.git")),
            Found::Dir(t.join("store"))
        );
        // Over git's 1 MiB: not a repository for git.
        fs::create_dir_all(t.join("big")).unwrap();
        fs::write(t.join("big/.git"), " ".repeat(2 << 20)).unwrap();
        assert!(matches!(
            resolve_dotgit(&t.join("big/.git")),
            Found::Suspect(_)
        ));
        // gitdir: through a symlink and `..`, resolved physically.
        fs::create_dir_all(t.join("deep/er/store2")).unwrap();
        fs::create_dir_all(t.join("deep/er/x")).unwrap();
        std::os::unix::fs::symlink("deep/er/x", t.join("link")).unwrap();
        fs::create_dir_all(t.join("c")).unwrap();
        fs::write(t.join("c/.git"), "gitdir: ../link/../store2\n").unwrap();
        assert_eq!(
            resolve_dotgit(&t.join("c/.git")),
            Found::Dir(t.join("deep/er/store2"))
        );
        // Through /proc/self/cwd: another directory for each process.
        fs::create_dir_all(t.join("e")).unwrap();
        std::os::unix::fs::symlink("/proc/self/cwd/store", t.join("e/.git")).unwrap();
        assert!(matches!(
            resolve_dotgit(&t.join("e/.git")),
            Found::Suspect(_)
        ));
        fs::create_dir_all(t.join("f")).unwrap();
        fs::write(
            t.join("f/.git"),
            "gitdir: ../../../../../../../../proc/self/cwd\n",
        )
        .unwrap();
        assert!(matches!(
            resolve_dotgit(&t.join("f/.git")),
            Found::Suspect(_)
        ));
        // A FIFO is never opened.
        fs::create_dir_all(t.join("d")).unwrap();
        let c = std::ffi::CString::new(t.join("d/.git").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo on a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert!(matches!(
            resolve_dotgit(&t.join("d/.git")),
            Found::Suspect(_)
        ));
        let c = std::ffi::CString::new(t.join("store/commondir").as_os_str().as_encoded_bytes())
            .unwrap();
        // SAFETY: mkfifo on a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert_eq!(common_dir(&t.join("store")), t.join("store"));
        // Bare repositories by shape.
        fs::create_dir_all(t.join("bare/objects")).unwrap();
        fs::create_dir_all(t.join("bare/refs")).unwrap();
        assert!(!is_bare_shape(&t.join("bare")));
        fs::write(t.join("bare/HEAD"), "ref: refs/heads/main\n").unwrap();
        assert!(is_bare_shape(&t.join("bare")));
        // As git's access(X_OK): objects and refs may be files; or a
        // commondir names where they are.
        fs::create_dir_all(t.join("files")).unwrap();
        for n in ["HEAD", "objects", "refs"] {
            fs::write(t.join("files").join(n), "").unwrap();
        }
        assert!(is_bare_shape(&t.join("files")));
        fs::create_dir_all(t.join("borrow")).unwrap();
        fs::write(t.join("borrow/HEAD"), "ref: refs/heads/main\n").unwrap();
        assert!(!is_bare_shape(&t.join("borrow")));
        fs::write(t.join("borrow/commondir"), "../bare\n").unwrap();
        assert!(is_bare_shape(&t.join("borrow")));
        fs::remove_dir_all(&t).unwrap();
    }
}
