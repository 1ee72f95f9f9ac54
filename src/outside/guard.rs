//! The quarantine guard: outside the jail, it waits until the jail's pid 1
//! and with it every process of the jail is gone, then undoes what could
//! make code run outside the jail later (`sandbox::protect`):
//! - protected paths the program created or changed are moved away;
//! - watched agent files get their command-running entries put back;
//! - any git directory in the project it did not know at start (a nested
//!   repository, a gitlink's, a new worktree or submodule) has each
//!   control file changed during the run and not harmless by content
//!   moved away, so the host's git never runs a planted hook or config.
//!
//! Being its own process, it does so also when `jail` itself is killed
//! with SIGKILL. When the jail is over: the kernel reports pid 1's exit
//! (its pidfd turns readable, or the pid disappears) only after every
//! other process of the jail's pid namespace has been killed and reaped,
//! so nothing of the jail can still rename files while the guard looks.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Channel, Msg};
use crate::sandbox::{git, protect, quarantine};
use crate::sys;

/// What the guard watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub project: PathBuf,
    /// This run's quarantine directory (created only when needed).
    pub quarantine: PathBuf,
    pub protected: Vec<protect::Protected>,
    /// The project repository's git directories known at start.
    pub gitdirs: Vec<PathBuf>,
    /// The host areas the jail could write.
    pub writable: Vec<PathBuf>,
    /// Files whose change time is at or after this (seconds, nanoseconds)
    /// were changed during the run.
    pub since: (i64, i64),
    /// With a persistent home: (its directory in jail's storage, $HOME),
    /// to say what the program wrote outside the project.
    pub persist: Option<(PathBuf, PathBuf)>,
    /// Mount points the jail's setup made below $HOME (not the program's
    /// writes), relative to $HOME.
    pub home_mounts: Vec<PathBuf>,
}

/// A start time for `Config::since`: the kernel stamps files from its
/// coarse clock, so take that clock, less a second for filesystems whose
/// server clock runs a little behind (NFS).
pub fn start_time() -> (i64, i64) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a live timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
    (ts.tv_sec - 1, ts.tv_nsec)
}

/// `jail __outside guard`.
pub fn main(chan: Channel) -> i32 {
    let config = match chan.recv() {
        Ok(Some((Msg::Guard(c), _))) => c,
        // The launcher died or gave up before the jail existed.
        _ => return 0,
    };
    let pidfd = match chan.recv() {
        Ok(Some((Msg::JailStarted { pid }, mut fds))) => (pid, fds.pop()),
        _ => return 0,
    };
    // While the jail runs, index the project's directories, so that at
    // exit only what changed is read again (a long walk is then off the
    // user's path). If the jail ends first, the exit check walks it all.
    let index = pidfd
        .1
        .as_ref()
        .and_then(|fd| DirIndex::build(&config.project, fd));
    wait_for_jail(pidfd.0, pidfd.1.as_ref());
    check(&config, index.as_ref());
    // The launcher waits for this EOF, not for the exit: tearing this
    // process down is then off the user's path.
    chan.close();
    0
}

fn wait_for_jail(pid: libc::pid_t, pidfd: Option<&std::os::fd::OwnedFd>) {
    use std::os::fd::AsRawFd;
    if let Some(fd) = pidfd {
        if sys::poll_in(fd.as_raw_fd(), -1).is_ok() {
            return;
        }
    }
    // No pidfds (Linux < 5.3): the pid stays (as a zombie) until pid 1
    // has reaped its whole namespace and been reaped itself.
    while sys::alive(pid) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn check(config: &Config, index: Option<&DirIndex>) {
    let project = &config.project;
    let rel = |p: &Path| p.strip_prefix(project).unwrap_or(p).display().to_string();
    let mut moving = protect::changed(&config.protected);
    for p in new_git_control_files(config, index) {
        if !moving.contains(&p) {
            moving.push(p);
        }
    }
    let mut restored = Vec::new();
    for p in &config.protected {
        if let protect::Start::Watched { keys, snapshot } = &p.start {
            match restore_watched(config, &p.path, keys, snapshot) {
                Ok(Some(entries)) => restored.push((p.path.clone(), entries)),
                Ok(None) => {}
                Err(()) => moving.push(p.path.clone()),
            }
        }
    }
    let (moved, failed) =
        quarantine::quarantine(project, &config.writable, &moving, &config.quarantine);
    if !moved.is_empty() {
        let names: Vec<String> = moved
            .iter()
            .map(|p| crate::display::safe(&rel(p)).into_owned())
            .collect();
        eprintln!(
            "jail: moved {} (created or changed in the jail; it could run code outside it) to {}; to keep it, read it and move it back yourself",
            names.join(", "),
            config.quarantine.display()
        );
    }
    for (p, entries) in restored {
        eprintln!(
            "jail: put back {} in {} (changed in the jail; they make a program outside it run \
             commands or allow it more); to keep them, set them yourself outside the jail; the \
             file as the jail left it is in {}",
            crate::display::safe(&entries.join(", ")),
            crate::display::safe(&rel(&p)),
            config.quarantine.display()
        );
    }
    for (p, e) in failed {
        eprintln!(
            "jail: WARNING: {} was created or changed in the jail and could run code outside it; not moved ({e}): inspect it before use",
            crate::display::safe(&rel(&p))
        );
    }
    if let Some((dir, home)) = &config.persist {
        // Without the NFS margin: only this run's writes, not the last one's.
        let started = (config.since.0 + 1, config.since.1);
        let outside = written_outside(dir, home, project, started, &config.home_mounts);
        if !outside.is_empty() {
            let names: Vec<String> = outside
                .iter()
                .map(|p| format!("~/{}", crate::display::safe(&p.display().to_string())))
                .collect();
            eprintln!(
                "jail: {}: written outside the project, so kept in jail's own home for this \
                 profile ({}), not in yours",
                names.join(", "),
                dir.display()
            );
        }
    }
}

/// What the program created in the persistent home outside the project
/// that a user would look for in their own home: entries not starting with
/// a dot (tools' own state does), at the top of the home and in each
/// directory on the way down to the project (`echo x > ../note.txt`,
/// `git worktree add ../wt`). Relative to the home.
fn written_outside(
    dir: &Path,
    home: &Path,
    project: &Path,
    since: (i64, i64),
    mounts: &[PathBuf],
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut levels = vec![PathBuf::new()];
    if let Ok(rel) = project.strip_prefix(home) {
        let mut acc = PathBuf::new();
        let comps: Vec<_> = rel.components().collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            acc.push(c);
            levels.push(acc.clone());
        }
    }
    let on_the_way: Vec<PathBuf> = {
        let mut v = Vec::new();
        if let Ok(rel) = project.strip_prefix(home) {
            let mut acc = PathBuf::new();
            for c in rel.components() {
                acc.push(c);
                v.push(acc.clone());
            }
        }
        v
    };
    for level in levels {
        for e in fs::read_dir(dir.join(&level))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name();
            let relp = level.join(&name);
            if name.to_string_lossy().starts_with('.')
                || on_the_way.contains(&relp)
                || mounts.iter().any(|m| m.starts_with(&relp))
            {
                continue;
            }
            if changed_since(&e.path(), since) {
                out.push(relp);
            }
        }
    }
    out.sort();
    out
}

/// Puts back a watched file's entries. Ok(Some(entries)): restored (a
/// copy of the changed file kept); Ok(None): unchanged; Err: move the
/// file away.
fn restore_watched(
    config: &Config,
    path: &Path,
    keys: &[String],
    snap: &str,
) -> Result<Option<Vec<String>>, ()> {
    let Ok(m) = fs::symlink_metadata(path) else {
        return Ok(None);
    };
    if !m.is_file() || m.len() > 64 << 20 {
        return Err(());
    }
    let text = fs::read_to_string(path).map_err(|_| ())?;
    match protect::check_watched(&text, keys, snap) {
        protect::Watch::Unchanged => Ok(None),
        protect::Watch::Changed { restored: None, .. } => Err(()),
        protect::Watch::Changed {
            restored: Some(new),
            entries,
        } => {
            let keep = quarantine::destination(&config.project, path, &config.quarantine);
            quarantine::keep_copy(path, &keep).map_err(|_| ())?;
            // Replace, never write through a link: a temporary file beside
            // it, renamed over it.
            let tmp = path.with_extension(format!("jail-restore-{}", std::process::id()));
            {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(m.mode() & 0o777)
                    .open(&tmp)
                    .map_err(|_| ())?;
                f.write_all(new.as_bytes()).map_err(|_| ())?;
            }
            fs::rename(&tmp, path).map_err(|_| {
                let _ = fs::remove_file(&tmp);
            })?;
            Ok(Some(entries))
        }
    }
}

/// Control files of git directories in the project that the guard did not
/// know at start, changed during the run, and not harmless by content.
fn new_git_control_files(config: &Config, index: Option<&DirIndex>) -> Vec<PathBuf> {
    let mut gitdirs: Vec<PathBuf> = Vec::new();
    let add = |d: PathBuf, all: &mut Vec<PathBuf>| {
        for r in std::iter::once(d.clone()).chain(git::related_gitdirs(&git::common_dir(&d))) {
            if !config.gitdirs.contains(&r) && !all.contains(&r) {
                all.push(r);
            }
        }
    };
    // New worktrees and submodules of the project's own repository.
    for d in config.gitdirs.clone() {
        add(d, &mut gitdirs);
    }
    // Every `.git` in the project (nested repositories, gitlinks).
    let dotgits = match index {
        Some(i) => i.dotgits_now(config.since),
        None => find_dotgits(&config.project),
    };
    for dotgit in dotgits {
        if let Some(d) = git::gitdir_of(&dotgit) {
            add(d, &mut gitdirs);
        }
    }
    let mut out = Vec::new();
    for d in &gitdirs {
        for c in git::control_paths(d) {
            for f in files_below(&c) {
                if changed_since(&f, config.since) && !git::harmless_created(d, &f) {
                    out.push(f);
                }
            }
        }
    }
    out
}

/// `p` itself, or every non-directory below it when it is a directory.
fn files_below(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![p.to_path_buf()];
    while let Some(x) = stack.pop() {
        match fs::symlink_metadata(&x) {
            Ok(m) if m.is_dir() => {
                stack.extend(
                    fs::read_dir(&x)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .map(|e| e.path()),
                );
            }
            Ok(_) => out.push(x),
            Err(_) => {}
        }
    }
    out
}

fn changed_since(p: &Path, since: (i64, i64)) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| (m.ctime(), m.ctime_nsec()) >= since)
}

/// Every entry named `.git` below `root` on its filesystem, without
/// following symlinks or entering git directories.
fn find_dotgits(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(root, &mut |_, _| true, &mut out, &mut |_, _| {});
    out
}

/// Walks `root` (its filesystem only, no symlinks, not into `.git`),
/// pushing `.git` entries to `dotgits` and telling `seen` each directory
/// read with its metadata; `go_on` may stop the walk (false).
fn walk(
    root: &Path,
    go_on: &mut dyn FnMut(usize, &Path) -> bool,
    dotgits: &mut Vec<PathBuf>,
    seen: &mut dyn FnMut(&Path, &fs::Metadata),
) -> bool {
    let dev = fs::symlink_metadata(root).map(|m| m.dev()).ok();
    let mut stack = vec![root.to_path_buf()];
    let mut n = 0;
    while let Some(d) = stack.pop() {
        n += 1;
        if !go_on(n, &d) {
            return false;
        }
        let Ok(meta) = fs::symlink_metadata(&d) else {
            continue;
        };
        if !meta.is_dir() || Some(meta.dev()) != dev {
            continue;
        }
        let Ok(rd) = fs::read_dir(&d) else {
            continue;
        };
        seen(&d, &meta);
        for e in rd.flatten() {
            let Ok(ft) = e.file_type() else {
                continue;
            };
            if e.file_name() == ".git" {
                if ft.is_dir() || ft.is_file() {
                    dotgits.push(e.path());
                }
            } else if ft.is_dir() {
                stack.push(e.path());
            }
        }
    }
    true
}

/// The project's directories as they were while the jail ran: each one's
/// change time and inode, and the `.git` entries seen. At exit a
/// directory whose change time and inode are the same, and older than the
/// run, has the same entries as before the run began (creating, removing
/// or renaming an entry changes its directory's change time, which no
/// program can set back), so only changed directories are read again.
struct DirIndex {
    dirs: std::collections::HashMap<PathBuf, (i64, i64, u64)>,
    dotgits: Vec<PathBuf>,
}

impl DirIndex {
    /// Walks `root` while the jail runs; None if the jail ended first.
    fn build(root: &Path, pidfd: &std::os::fd::OwnedFd) -> Option<DirIndex> {
        use std::os::fd::AsRawFd;
        let mut dirs = std::collections::HashMap::new();
        let mut dotgits = Vec::new();
        let done = walk(
            root,
            &mut |n, _| n % 64 != 0 || sys::poll_in(pidfd.as_raw_fd(), 0) == Ok(0),
            &mut dotgits,
            &mut |d, m| {
                dirs.insert(d.to_path_buf(), (m.ctime(), m.ctime_nsec(), m.ino()));
            },
        );
        done.then_some(DirIndex { dirs, dotgits })
    }

    /// The `.git` entries in the project now: those seen during the run,
    /// and those in every directory that changed (read again, and new
    /// directories below it walked whole).
    fn dotgits_now(&self, since: (i64, i64)) -> Vec<PathBuf> {
        let mut out = self.dotgits.clone();
        for (d, &(sec, nsec, ino)) in &self.dirs {
            let Ok(m) = fs::symlink_metadata(d) else {
                continue;
            };
            let same = (m.ctime(), m.ctime_nsec(), m.ino()) == (sec, nsec, ino);
            if same && (sec, nsec) < since {
                continue;
            }
            for e in fs::read_dir(d).into_iter().flatten().flatten() {
                let Ok(ft) = e.file_type() else {
                    continue;
                };
                let p = e.path();
                if e.file_name() == ".git" {
                    out.push(p);
                } else if ft.is_dir() && !self.dirs.contains_key(&p) {
                    walk(&p, &mut |_, _| true, &mut out, &mut |_, _| {});
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}
