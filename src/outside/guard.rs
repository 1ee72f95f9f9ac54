//! The quarantine guard: outside the jail, it waits until the jail's pid 1
//! and with it every process of the jail is gone, then undoes what could
//! make code run outside the jail later (`plan::protect`):
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

use super::channel::ToGuard;
use super::Channel;
use crate::exit::EXIT_JAIL_ERROR;
use crate::outside::quarantine;
use crate::plan::{git, protect};
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
    /// Where the guard records this check until it is done
    /// (`pending_dir`): a check cut short (the guard killed) is finished
    /// by the next jail start in the project, and `jail doctor` names it.
    #[serde(default)]
    pub pending: Option<PathBuf>,
    /// Watched files whose trust entries are kept for the profile's
    /// jailed runs (`protect::KEPT`): (the file, the profile's storage).
    #[serde(default)]
    pub kept: Vec<(PathBuf, PathBuf)>,
}

/// How long the check at exit may take before the guard gives up (and
/// leaves its record for the next start to finish): nothing jail starts
/// outside waits without a bound.
pub const CHECK_LIMIT_SECS: u32 = 600;

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
    // Terminal keys (Ctrl-C, hangup) go to the jail, not to the guard,
    // which must still check after the program ended; SIGTERM ends it
    // (its record then makes the next start finish the check).
    sys::default_signal(libc::SIGTERM);
    let config = match chan.recv_as::<ToGuard>() {
        Ok(Some((ToGuard::Config(c), _))) => c,
        // The launcher died or gave up before the jail existed.
        Ok(None) => return 0,
        // Without its configuration the guard cannot check anything:
        // it refuses, loudly (never a silent success).
        Ok(Some((ToGuard::JailStarted { .. }, _))) => {
            eprintln!("jail: guard: the jail started before the guard had its configuration");
            return EXIT_JAIL_ERROR;
        }
        Err(e) => {
            eprintln!("jail: guard: {e}");
            return EXIT_JAIL_ERROR;
        }
    };
    let record = config
        .pending
        .as_deref()
        .and_then(|p| Record::write(p, &config));
    let pidfd = match chan.recv_as::<ToGuard>() {
        Ok(Some((ToGuard::JailStarted { pid }, mut fds))) => (pid, fds.pop()),
        Ok(None) => {
            // No jail ran: nothing to check.
            let made = record.map(Record::done);
            let lock = made.as_ref().and_then(Made::lock);
            drop(chan);
            if let Some(m) = made {
                m.remove(lock);
            }
            return 0;
        }
        // Whether a jail runs is unknown: the check stays recorded as
        // unfinished, so the next start does it (fails closed).
        Ok(Some((ToGuard::Config(_), _))) => {
            eprintln!(
                "jail: guard: a second configuration; the exit check is left to the next start"
            );
            return EXIT_JAIL_ERROR;
        }
        Err(e) => {
            eprintln!("jail: guard: {e}; the exit check is left to the next start");
            return EXIT_JAIL_ERROR;
        }
    };
    // While the jail runs, index the project's directories, so that at
    // exit only what changed is read again (a long walk is then off the
    // user's path). If the jail ends first, the exit check walks it all.
    let index = pidfd
        .1
        .as_ref()
        .and_then(|fd| DirIndex::build(&config.project, fd, config.since));
    wait_for_jail(pidfd.0, pidfd.1.as_ref());
    // From here on the guard is bounded: SIGALRM (default action) ends it
    // if the check ever takes too long; the record stays for the next
    // start.
    sys::default_signal(libc::SIGALRM);
    sys::alarm(CHECK_LIMIT_SECS);
    check(&config, index.as_ref());
    // The check is over and nothing of it is left pending when the
    // launcher returns: the record goes before the EOF.
    let made = record.map(Record::done);
    let lock = made.as_ref().and_then(Made::lock);
    // The launcher waits for this EOF, not for the exit: tearing this
    // process down is then off the user's path, and so is removing the
    // record's directories (an rmdir waits on the filesystem's journal:
    // 4 of them took 0.3 ms, and 12 ms while the disk was busy, on ext4).
    drop(chan);
    if let Some(m) = made {
        m.remove(lock);
    }
    0
}

/// A check in progress, recorded on disk (the guard's config as JSON)
/// and locked (flock) while the guard lives: a record nobody holds is a
/// check that did not finish.
struct Record {
    path: PathBuf,
    file: fs::File,
    made: Made,
}

/// The directories a record's `write` made, deepest first: removed again
/// when empty, so a run that needed no record leaves nothing in the home.
struct Made(Vec<PathBuf>);

impl Record {
    fn write(dir: &Path, config: &Config) -> Option<Record> {
        use std::io::ErrorKind::NotFound;
        use std::io::Write;
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::OpenOptionsExt;
        // Never over an older record (a pid used again).
        let path = dir.join(format!("{}-{}.json", config.since.0, std::process::id()));
        let open = || {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
        };
        // Another guard of this project, finishing, removes the
        // directories it made once it finds them empty, one level after
        // the other, possibly between our mkdir and open: make them
        // again. Each such removal is one of that guard's few levels, so
        // a bounded number of tries always gets through.
        let mut made = Made(Vec::new());
        let mut file = None;
        // A guard that just finished (its launcher returned) may be
        // removing the directories it made: wait for it, so that it
        // either removed them all or finds this record in them.
        let lock = DirsLock::wait();
        for _ in 0..16 {
            match make_dirs(dir, &mut made.0) {
                Err(e) if e.kind() == NotFound => continue,
                r => r.ok()?,
            }
            match open() {
                Err(e) if e.kind() == NotFound => continue,
                r => {
                    file = Some(r.ok()?);
                    break;
                }
            }
        }
        // In its directory, the record keeps it from going.
        drop(lock);
        let mut file = file?;
        sys::try_lock(file.as_raw_fd()).ok()?;
        let text = serde_json::to_vec(config).ok()?;
        file.write_all(&text).ok()?;
        Some(Record { path, file, made })
    }

    /// The check is done: its record goes (and its lock). What is left
    /// is removing the directories it made.
    fn done(self) -> Made {
        let _ = fs::remove_file(&self.path);
        drop(self.file);
        self.made
    }
}

impl Made {
    /// Taken before the EOF, without waiting (a few microseconds), and
    /// held while the directories go: the next jail's guard, which starts
    /// only once the launcher returned, waits for it in `Record::write`,
    /// so it finds them either all there or all gone, never some made by
    /// this guard that it would then keep (and leave behind).
    fn lock(&self) -> Option<DirsLock> {
        if self.0.is_empty() {
            return None;
        }
        DirsLock::try_take()
    }

    /// After the launcher was told: the next jail here may be starting.
    fn remove(self, lock: Option<DirsLock>) {
        if self.0.is_empty() {
            return;
        }
        // Held by another guard a moment (its own mkdirs or rmdirs):
        // waited for; if it cannot be had, the directories go all the
        // same (`write` then makes them again as needed).
        let _lock = lock.or_else(DirsLock::wait);
        // Only what this record made, and only if empty (a quarantine or
        // another jail's record keeps its directory).
        for d in &self.0 {
            if fs::remove_dir(d).is_err() {
                break;
            }
        }
    }
}

/// Serializes making records' directories with removing them: a lock
/// (flock) on the user's home directory, which neither goes nor moves,
/// and which the jail's processes do not see (its home is another
/// directory) unless the home is shared read-write; holding it then only
/// makes guards wait a bounded time.
struct DirsLock {
    _held: fs::File,
}

impl DirsLock {
    fn open() -> Option<fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        let home = std::env::var_os("HOME")?;
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(home)
            .ok()
    }

    fn try_take() -> Option<DirsLock> {
        use std::os::fd::AsRawFd;
        let f = Self::open()?;
        sys::try_lock(f.as_raw_fd()).ok()?;
        Some(DirsLock { _held: f })
    }

    /// Waits at most 250 ms (others hold it for a few mkdir or rmdir
    /// calls; both waiters are off the user's path: the record is written
    /// while the jail is being built, the directories go after the EOF),
    /// then goes on without it.
    fn wait() -> Option<DirsLock> {
        use std::os::fd::AsRawFd;
        let f = Self::open()?;
        for _ in 0..250 {
            match sys::try_lock(f.as_raw_fd()) {
                Ok(()) => return Some(DirsLock { _held: f }),
                Err(libc::EWOULDBLOCK) => std::thread::sleep(std::time::Duration::from_millis(1)),
                Err(_) => return None,
            }
        }
        None
    }
}

/// Makes `dir` and its missing parents, adding each directory this call
/// made itself to `made` (deepest first, each once).
fn make_dirs(dir: &Path, made: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| fs::symlink_metadata(d).is_err())
        .collect();
    for d in missing.into_iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => {
                if !made.iter().any(|m| m == d) {
                    made.push(d.to_path_buf());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    // Deepest first, whatever order the tries made them in.
    made.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    Ok(())
}

/// ~/.local/state/jail/pending/NAME-HASH: the records of this project's
/// checks in progress.
pub fn pending_dir(state: &Path, project: &Path) -> PathBuf {
    let q = protect::quarantine_dir(state, project);
    let name = q
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_owned())
        .unwrap_or_default();
    state.join("pending").join(name)
}

/// The records under `dir` that no live guard holds: (file, its config
/// or None when unreadable), each still locked by the caller while the
/// returned files live.
fn unfinished(dir: &Path) -> Vec<(PathBuf, Option<Config>, fs::File)> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Ok(f) = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&p)
        else {
            continue;
        };
        if sys::try_lock(f.as_raw_fd()).is_err() {
            continue; // its guard still runs
        }
        // Removed by whoever finished it just before we locked it.
        if !f.metadata().is_ok_and(|m| m.is_file() && m.nlink() > 0) {
            continue;
        }
        let cfg = crate::host::read_regular(&p, 64 << 20)
            .text()
            .and_then(|t| serde_json::from_str::<Config>(&t).ok());
        out.push((p, cfg, f));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// At a jail's start in `project`: finishes every check of an earlier run
/// here that did not finish (jail or its guard killed), saying so.
pub fn finish_pending(state: &Path, project: &Path) {
    for (p, cfg, lock) in unfinished(&pending_dir(state, project)) {
        match cfg {
            Some(c) => {
                eprintln!(
                    "jail: the exit check of an earlier jail here did not finish (jail or its \
                     guard was killed); finishing it now"
                );
                check(&c, None);
            }
            None => eprintln!(
                "jail: WARNING: the exit check of an earlier jail here did not finish and its \
                 record {} cannot be read: inspect the project's git hooks and config before use",
                p.display()
            ),
        }
        let _ = fs::remove_file(&p);
        drop(lock);
    }
}

/// For `jail doctor`: projects with a check that did not finish.
pub fn unfinished_projects(state: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(state.join("pending"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for (p, cfg, _lock) in unfinished(&e.path()) {
            match cfg {
                // A project since removed has nothing left to check.
                Some(c) if !c.project.exists() => {}
                Some(c) => out.push(c.project),
                None => out.push(p),
            }
        }
    }
    out.sort();
    out.dedup();
    out
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
    let mut moving = protect::changed(&config.protected, config.since);
    let found = new_git_control_files(config, index);
    for p in found.suspect {
        if !moving.contains(&p) {
            moving.push(p);
        }
    }
    // A file that was held read-only inside cannot have been changed
    // there: never moved, whatever path led to it.
    let held: Vec<PathBuf> = config
        .protected
        .iter()
        .filter(|p| p.start == protect::Start::Held)
        .map(|p| fs::canonicalize(&p.path).unwrap_or_else(|_| p.path.clone()))
        .collect();
    moving.retain(|p| {
        let c = fs::canonicalize(p).unwrap_or_else(|_| p.clone());
        !held.contains(&c)
    });
    let mut restored = Vec::new();
    for p in &config.protected {
        if let protect::Start::Watched { keys, snapshot } = &p.start {
            match restore_watched(config, &p.path, keys, snapshot) {
                Ok(Some((mut entries, text))) => {
                    keep_for_jailed_runs(config, &p.path, &text, &mut entries);
                    if !entries.is_empty() {
                        restored.push((p.path.clone(), entries));
                    }
                }
                Ok(None) => {}
                Err(()) => moving.push(p.path.clone()),
            }
        }
    }
    // A protected path kept as written below a directory missing at
    // start (`tools/../x`): moved where the kernel finds it now.
    let moving: Vec<PathBuf> = moving
        .into_iter()
        .map(|p| {
            if !p.components().any(|c| c == std::path::Component::ParentDir) {
                return p;
            }
            match (
                p.parent().and_then(|d| fs::canonicalize(d).ok()),
                p.file_name(),
            ) {
                (Some(d), Some(n)) => d.join(n),
                _ => p,
            }
        })
        .collect();
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
    // A file held read-only inside that changed anyway: through another
    // hard link (a hook linked to a project file), or from outside. Not
    // moved (it may be the user's own change): said.
    for p in &config.protected {
        if p.start != protect::Start::Held {
            continue;
        }
        // The file itself, or the files of a held directory (hooks).
        let mut files = vec![p.path.clone()];
        if fs::symlink_metadata(&p.path).is_ok_and(|m| m.is_dir()) {
            files.extend(
                fs::read_dir(&p.path)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
        }
        for f in files {
            if fs::symlink_metadata(&f).is_ok_and(|m| m.is_file() && m.nlink() > 1)
                && changed_since(&f, config.since)
            {
                eprintln!(
                    "jail: WARNING: {} was read-only in the jail but changed during the run \
                     through another hard link to it: it could run code outside the jail; \
                     inspect it",
                    crate::display::safe(&rel(&f))
                );
            }
        }
    }
    for (p, why) in found.unchecked {
        eprintln!(
            "jail: WARNING: could not check {} ({why}): a repository planted below it would run \
             code outside the jail; inspect it before running git there",
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

/// Of the entries put back in a watched file, keeps the trust the program
/// gave folders of this project in jail's own storage (`protect::KEPT`),
/// which the profile's next jailed runs read from their own config layer:
/// those entries then need no notice (the host's file no longer has
/// them, and the jailed agent will not ask again). `text`: the file as
/// the jail left it.
fn keep_for_jailed_runs(config: &Config, path: &Path, text: &str, entries: &mut Vec<String>) {
    let Some((_, storage)) = config.kept.iter().find(|(f, _)| f == path) else {
        return;
    };
    let Some(k) = protect::KEPT.iter().find(|k| path.ends_with(k.file)) else {
        return;
    };
    let given: Vec<(String, toml::Value)> = k
        .entries(text, &config.project)
        .into_iter()
        .filter(|(f, _)| entries.contains(&k.entry_name(f)))
        .collect();
    if k.remember(storage, &given).is_ok() {
        entries.retain(|e| !given.iter().any(|(f, _)| &k.entry_name(f) == e));
    }
}

/// Puts back a watched file's entries. Ok(Some((entries, text))):
/// restored (a copy of the changed file kept; `text`: as the jail left
/// it); Ok(None): unchanged; Err: move the file away.
fn restore_watched(
    config: &Config,
    path: &Path,
    keys: &[String],
    snap: &str,
) -> Result<Option<(Vec<String>, String)>, ()> {
    let Ok(m) = fs::symlink_metadata(path) else {
        return Ok(None);
    };
    if !m.is_file() {
        return Err(());
    }
    let text = crate::host::read_regular(path, 64 << 20).text().ok_or(())?;
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
            Ok(Some((entries, text)))
        }
    }
}

/// What the exit check found in the project's git directories.
#[derive(Debug, Default)]
struct GitFindings {
    /// To move away: control files of git directories the guard did not
    /// know at start that changed during the run and are not harmless by
    /// content, and entries it cannot judge that changed during the run.
    suspect: Vec<PathBuf>,
    /// What it could not check and cannot move (unchanged since the
    /// start, so not the program's doing alone): with why.
    unchecked: Vec<(PathBuf, String)>,
}

/// Finds, as git itself would, every git directory in the project the
/// guard did not know at start (nested repositories through any `.git`
/// entry, embedded bare repositories, new worktrees and submodules) and
/// judges their control files.
fn new_git_control_files(config: &Config, index: Option<&DirIndex>) -> GitFindings {
    let mut out = GitFindings::default();
    let writable: Vec<PathBuf> = config
        .writable
        .iter()
        .map(|w| fs::canonicalize(w).unwrap_or_else(|_| w.clone()))
        .collect();
    // In the order found, each once (a set beside it: a project may hold
    // many thousands, and the check must stay linear in them).
    let mut gitdirs: Vec<PathBuf> = Vec::new();
    let mut listed: std::collections::HashSet<PathBuf> = config.gitdirs.iter().cloned().collect();
    // A git directory's work tree where its `.git` entry says (relative
    // hook paths start there); else core.worktree, else the directory.
    let mut trees: std::collections::HashMap<PathBuf, PathBuf> = Default::default();
    let mut add = |d: PathBuf, all: &mut Vec<PathBuf>| {
        for r in std::iter::once(d.clone()).chain(git::related_gitdirs(&git::common_dir(&d))) {
            if listed.insert(r.clone()) {
                all.push(r);
            }
        }
    };
    // New worktrees and submodules of the project's own repository.
    for d in config.gitdirs.clone() {
        add(d, &mut gitdirs);
    }
    let found = match index {
        Some(i) => i.found_now(config.since),
        None => find_all(&config.project),
    };
    // Every `.git` in the project (nested repositories, gitlinks), of any
    // type, resolved as git resolves it.
    for dotgit in found.dotgits {
        let changed = changed_since(&dotgit, config.since);
        match git::resolve_dotgit(&dotgit) {
            git::Found::Dir(d) => {
                let c = fs::canonicalize(&d).unwrap_or_else(|_| d.clone());
                if writable.iter().any(|w| c.starts_with(w)) {
                    if let Some(tree) = dotgit.parent() {
                        trees.entry(d.clone()).or_insert_with(|| tree.to_path_buf());
                    }
                    add(d, &mut gitdirs);
                } else if changed {
                    // It names a repository outside what the jail could
                    // write: not the program's to point at.
                    out.suspect.push(dotgit);
                }
            }
            git::Found::None => {}
            git::Found::Suspect(why) => {
                if changed {
                    out.suspect.push(dotgit);
                } else {
                    out.unchecked.push((dotgit, why));
                }
            }
        }
    }
    // Bare repositories by shape: git finds them when run in them.
    // (Where a `.git` there names a repository, git uses that instead.)
    for b in found
        .bare
        .into_iter()
        .filter(|b| !matches!(git::resolve_dotgit(&b.join(".git")), git::Found::Dir(_)))
    {
        add(b, &mut gitdirs);
    }
    // Directories that cannot be listed: what is below them is unknown.
    for u in found.unlistable {
        if changed_since(&u, config.since) {
            out.suspect.push(u);
        } else if nix::unistd::access(&u, nix::unistd::AccessFlags::X_OK).is_err() {
            // Unchanged and not even traversable by the user (another
            // user's 0700): the jail, running as the user, reached
            // nothing below it.
        } else {
            out.unchecked.push((u, "it cannot be listed".into()));
        }
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/nonexistent"));
    for d in &gitdirs {
        // A git directory put where it is during the run (`mv x sub/.git`)
        // brings its files whatever their own age: judged all by content.
        // One that predates the run is known from the walk during it, or
        // (without it) by its directory unchanged since the start.
        let dotgit = trees.get(d).map(|t| t.join(".git"));
        let physical = fs::canonicalize(d).unwrap_or_else(|_| d.clone());
        let moved_in = !index.is_some_and(|i| i.predates(&physical))
            && (physical
                .parent()
                .is_some_and(|p| changed_since(p, config.since))
                || dotgit.as_ref().is_some_and(|g| {
                    g.parent().is_some_and(|p| changed_since(p, config.since))
                        || (!fs::symlink_metadata(g).is_ok_and(|m| m.is_dir())
                            && changed_since(g, config.since))
                }));
        for c in git::control_paths(d) {
            // A control directory put there during the run (`mv x
            // .git/hooks`) brings its files whatever their own age.
            let whole = moved_in || changed_since(&c, config.since);
            for f in judged_files(&c, c.file_name().is_some_and(|n| n == "hooks")) {
                if (whole || changed_since(&f, config.since)) && !git::harmless_created(d, &f) {
                    out.suspect.push(f);
                }
            }
        }
        // What its configs name: hook directories (core.hooksPath) and
        // included files, and what the hooks' symlinks lead to. Changed
        // during the run, they run code on the host like its own hooks.
        let tree = trees.get(d).cloned().unwrap_or_else(|| d.clone());
        let common = git::common_dir(d);
        let mut named = vec![(d.join("hooks"), true)];
        for cfg in [
            common.join("config"),
            d.join("config"),
            d.join("config.worktree"),
        ] {
            named.extend(protect::named_by_git_config(&cfg, &tree, &home));
        }
        let inside = |f: &Path| writable.iter().any(|w| f.starts_with(w));
        for (p, hookdir) in named {
            if !inside(&p) {
                continue; // not the jail's to change
            }
            let whole = changed_since(&p, config.since);
            for f in judged_files(&p, hookdir) {
                if whole || changed_since(&f, config.since) {
                    out.suspect.push(f.clone());
                }
                // A link (a hook linked to a script elsewhere): where it
                // leads, if that changed.
                if fs::symlink_metadata(&f).is_ok_and(|m| m.file_type().is_symlink()) {
                    if let Ok(t) = fs::canonicalize(&f) {
                        if inside(&t) && !t.is_dir() && changed_since(&t, config.since) {
                            out.suspect.push(t);
                        }
                    }
                }
            }
        }
    }
    // A rebase or cherry-pick left in progress whose list of what is
    // still to do has `exec` lines: the host's `git rebase --continue`
    // would run them (`git status` shows only the next two). Its list
    // goes (`git rebase --abort` still works).
    // So does a merge strategy that names a program by a path (git runs
    // `git-merge-STRATEGY`, relative to the work tree when it holds a
    // slash).
    for d in config.gitdirs.iter().chain(gitdirs.iter()) {
        for (todo, judge) in [
            (
                "rebase-merge/git-rebase-todo",
                git::todo_runs_commands as fn(&str) -> bool,
            ),
            ("sequencer/todo", git::todo_runs_commands),
            ("rebase-merge/strategy", |t: &str| {
                !git::plain_strategy(t.trim_end())
            }),
            ("sequencer/opts", |t: &str| {
                let (entries, _) = git::parse_config(t);
                git::values(&entries, "options", "strategy")
                    .iter()
                    .any(|s| !git::plain_strategy(s))
            }),
        ] {
            let t = d.join(todo);
            if !changed_since(&t, config.since) {
                continue;
            }
            let runs = match crate::host::read_regular(&t, git::CONTROL_MAX) {
                crate::host::Read::Text(b) => judge(&String::from_utf8_lossy(&b)),
                crate::host::Read::Absent => false,
                crate::host::Read::Suspect(_) => true,
            };
            if runs {
                out.suspect.push(t);
            }
        }
    }
    // A FIFO, socket or device made where git opens its files (HEAD, the
    // index, packed-refs, refs, reflogs, info/, objects/info/): the
    // host's git would hang on it.
    for d in config.gitdirs.iter().chain(gitdirs.iter()) {
        let common = git::common_dir(d);
        let mut files: Vec<PathBuf> = Vec::new();
        for base in [d, &common] {
            files.extend(
                fs::read_dir(base)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path()),
            );
            for sub in ["refs", "logs", "info", "objects/info"] {
                files.extend(files_below(&base.join(sub)));
            }
        }
        files.sort();
        files.dedup();
        for f in files {
            if changed_since(&f, config.since)
                && fs::symlink_metadata(&f).is_ok_and(|m| {
                    let t = m.file_type();
                    !(t.is_file() || t.is_dir() || t.is_symlink())
                })
            {
                out.suspect.push(f);
            }
        }
    }
    // Below a path already moved: goes with it.
    let mut all = std::mem::take(&mut out.suspect);
    all.sort();
    all.dedup();
    // Sorted by components, what is below a path follows it at once.
    let mut kept: Vec<PathBuf> = Vec::new();
    for p in all {
        if !kept.last().is_some_and(|k| p.starts_with(k)) {
            kept.push(p);
        }
    }
    out.suspect = kept;
    out
}

/// The files of a control path git reads or runs: a hook directory's
/// hooks (the names git runs, nothing below: a `hooks` directory of a
/// project's sources is not all moved), `info/`'s files, else the path
/// itself unless it is a directory (git reads no config, commondir or
/// included file from a directory). A directory that cannot be listed is
/// returned whole (suspect).
fn judged_files(p: &Path, hookdir: bool) -> Vec<PathBuf> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            if fs::read_dir(p).is_err() {
                vec![p.to_path_buf()]
            } else if hookdir {
                git::HOOK_NAMES
                    .iter()
                    .map(|n| p.join(n))
                    .filter(|f| fs::symlink_metadata(f).is_ok())
                    .collect()
            } else if p.file_name().is_some_and(|n| n == "info") {
                files_below(p)
            } else {
                Vec::new()
            }
        }
        Ok(_) => vec![p.to_path_buf()],
        Err(_) => Vec::new(),
    }
}

/// `p` itself, or every non-directory below it when it is a directory; a
/// directory that cannot be listed is returned whole (suspect).
fn files_below(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![p.to_path_buf()];
    while let Some(x) = stack.pop() {
        match fs::symlink_metadata(&x) {
            Ok(m) if m.is_dir() => match fs::read_dir(&x) {
                Ok(rd) => stack.extend(rd.flatten().map(|e| e.path())),
                Err(_) => out.push(x),
            },
            Ok(_) => out.push(x),
            Err(_) => {}
        }
    }
    out
}

fn changed_since(p: &Path, since: (i64, i64)) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| (m.ctime(), m.ctime_nsec()) >= since)
}

/// What a walk of the project found.
#[derive(Debug, Default, Clone)]
struct Finds {
    /// Every entry named `.git`, of any type.
    dotgits: Vec<PathBuf>,
    /// Directories shaped like a bare repository.
    bare: Vec<PathBuf>,
    /// Directories that could not be listed.
    unlistable: Vec<PathBuf>,
}

impl Finds {
    fn tidy(&mut self) {
        for v in [&mut self.dotgits, &mut self.bare, &mut self.unlistable] {
            v.sort();
            v.dedup();
        }
    }
}

/// Everything `walk` finds below `root`.
fn find_all(root: &Path) -> Finds {
    let mut out = Finds::default();
    walk(root, &mut |_, _| true, &mut out, &mut |_, _| {});
    out.tidy();
    out
}

/// Looks at one directory's entries: `.git` entries of any type, the bare
/// repository shape; returns its subdirectories.
fn look(d: &Path, rd: fs::ReadDir, found: &mut Finds) -> Vec<PathBuf> {
    let mut subdirs = Vec::new();
    let mut shape: Vec<&str> = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name();
        let Ok(ft) = e.file_type() else {
            continue;
        };
        // Case ignored: on a case-insensitive filesystem (vfat, exFAT, a
        // Windows drive under WSL) git's lookup of `.git` finds `.GIT`.
        if name.eq_ignore_ascii_case(".git") {
            found.dotgits.push(e.path());
            continue;
        }
        if let Some(n) = git::BARE_SHAPE_NAMES
            .iter()
            .find(|n| name.eq_ignore_ascii_case(n))
        {
            shape.push(n);
        }
        if ft.is_dir() {
            subdirs.push(e.path());
        }
    }
    if git::bare_shape_by(|n| shape.contains(&n)) && git::is_bare_shape(d) {
        found.bare.push(d.to_path_buf());
    }
    subdirs
}

/// Walks `root` (and what is mounted below it unless read-only; no
/// symlinks, not into `.git`),
/// adding to `found` and telling `seen` each directory read with its
/// metadata; `go_on` may stop the walk (false).
fn walk(
    root: &Path,
    go_on: &mut dyn FnMut(usize, &Path) -> bool,
    found: &mut Finds,
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
        if !meta.is_dir() {
            continue;
        }
        // Another filesystem mounted below (a build tmpfs, a data disk):
        // the jail writes there too, so it is walked, unless mounted
        // read-only.
        if Some(meta.dev()) != dev
            && nix::sys::statvfs::statvfs(&d)
                .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        {
            continue;
        }
        let rd = match fs::read_dir(&d) {
            Ok(rd) => rd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(_) => {
                found.unlistable.push(d);
                continue;
            }
        };
        seen(&d, &meta);
        stack.extend(look(&d, rd, found));
    }
    true
}

/// The project's directories as they were while the jail ran: each one's
/// change time and inode, and what the walk found. At exit a directory
/// whose change time and inode are the same, and older than the run, has
/// the same entries as before the run began (creating, removing or
/// renaming an entry, or changing its mode, changes its directory's
/// change time, which no program can set back), so only changed
/// directories are read again.
struct DirIndex {
    dirs: std::collections::HashMap<PathBuf, (i64, i64, u64)>,
    found: Finds,
    /// Git directories (physical) that were where they are before the
    /// run began, with their inode: their directory had not changed when
    /// the walk was over, so no rename had put them there.
    old: std::collections::HashMap<PathBuf, u64>,
}

impl DirIndex {
    /// Walks `root` while the jail runs; None if the jail ended first.
    fn build(root: &Path, pidfd: &std::os::fd::OwnedFd, since: (i64, i64)) -> Option<DirIndex> {
        use std::os::fd::AsRawFd;
        let mut dirs = std::collections::HashMap::new();
        let mut found = Finds::default();
        let done = walk(
            root,
            &mut |n, _| n % 64 != 0 || sys::poll_in(pidfd.as_raw_fd(), 0) == Ok(0),
            &mut found,
            &mut |d, m| {
                dirs.insert(d.to_path_buf(), (m.ctime(), m.ctime_nsec(), m.ino()));
            },
        );
        if !done {
            return None;
        }
        let unchanged = |p: &Path| p.parent().is_some_and(|d| !changed_since(d, since));
        let mut old = std::collections::HashMap::new();
        let gitdirs = found
            .dotgits
            .iter()
            .filter(|g| {
                unchanged(g)
                    && (fs::symlink_metadata(g).is_ok_and(|m| m.is_dir())
                        || !changed_since(g, since))
            })
            .filter_map(|g| git::gitdir_of(g))
            .chain(found.bare.iter().cloned());
        for d in gitdirs {
            if let (Ok(c), Ok(m)) = (fs::canonicalize(&d), fs::symlink_metadata(&d)) {
                if unchanged(&c) {
                    old.insert(c, m.ino());
                }
            }
        }
        Some(DirIndex { dirs, found, old })
    }

    /// Whether the git directory `d` (physical) was there before the run.
    fn predates(&self, d: &Path) -> bool {
        self.old
            .get(d)
            .is_some_and(|ino| fs::symlink_metadata(d).is_ok_and(|m| m.ino() == *ino))
    }

    /// What is in the project now: what was seen during the run, and what
    /// is in every directory that changed (read again, and new
    /// directories below it walked whole). Directories unlistable during
    /// the run are walked again if they can be listed now.
    fn found_now(&self, since: (i64, i64)) -> Finds {
        let mut out = self.found.clone();
        out.unlistable.clear();
        for u in &self.found.unlistable {
            walk(u, &mut |_, _| true, &mut out, &mut |_, _| {});
        }
        for (d, &(sec, nsec, ino)) in &self.dirs {
            let Ok(m) = fs::symlink_metadata(d) else {
                continue;
            };
            let same = (m.ctime(), m.ctime_nsec(), m.ino()) == (sec, nsec, ino);
            if same && (sec, nsec) < since {
                continue;
            }
            if !m.is_dir() {
                continue;
            }
            let rd = match fs::read_dir(d) {
                Ok(rd) => rd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(_) => {
                    out.unlistable.push(d.clone());
                    continue;
                }
            };
            for sub in look(d, rd, &mut out) {
                if !self.dirs.contains_key(&sub) {
                    walk(&sub, &mut |_, _| true, &mut out, &mut |_, _| {});
                }
            }
        }
        out.tidy();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_walk_finds_every_dotgit_bare_shapes_and_unlistable_dirs() {
        let t = std::env::temp_dir().join(format!("jail-guard-walk-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        fs::create_dir_all(t.join("a/.git")).unwrap();
        fs::create_dir_all(t.join("b")).unwrap();
        std::os::unix::fs::symlink("../a/.git", t.join("b/.git")).unwrap();
        fs::create_dir_all(t.join("c/.GIT")).unwrap();
        fs::create_dir_all(t.join("src/objects")).unwrap();
        fs::create_dir_all(t.join("src/refs")).unwrap();
        fs::write(t.join("src/HEAD"), "ref: refs/heads/main\n").unwrap();
        fs::create_dir_all(t.join("locked/repo/.git")).unwrap();
        fs::set_permissions(t.join("locked"), fs::Permissions::from_mode(0o311)).unwrap();
        let f = find_all(&t);
        fs::set_permissions(t.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
        assert!(f.dotgits.contains(&t.join("a/.git")), "{f:?}");
        assert!(f.dotgits.contains(&t.join("b/.git")), "{f:?}");
        assert!(f.dotgits.contains(&t.join("c/.GIT")), "{f:?}");
        assert_eq!(f.bare, vec![t.join("src")]);
        // root reads every directory: only when not root is it unlistable.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert_eq!(f.unlistable, vec![t.join("locked")]);
        }
        fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn dotgits_naming_what_cannot_be_judged_or_lies_outside_are_suspect() {
        let base = std::env::temp_dir().join(format!("jail-guard-judge-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let t = base.join("project");
        let outside = base.join("outside-repo");
        fs::create_dir_all(outside.join("objects")).unwrap();
        fs::create_dir_all(t.join("a")).unwrap();
        fs::create_dir_all(t.join("b")).unwrap();
        fs::create_dir_all(t.join("c/.git")).unwrap();
        std::os::unix::fs::symlink(&outside, t.join("a/.git")).unwrap();
        let fifo = std::ffi::CString::new(t.join("b/.git").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo on a valid C string.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        fs::write(t.join("c/.git/config"), "[core]\n\tfsmonitor = evil\n").unwrap();
        fs::create_dir_all(t.join("c/.git/hooks")).unwrap();
        fs::write(t.join("c/.git/hooks/pre-commit.sample"), "").unwrap();
        let cfg = Config {
            project: t.clone(),
            quarantine: base.join("q"),
            protected: vec![],
            gitdirs: vec![],
            writable: vec![t.clone()],
            since: (0, 0),
            persist: None,
            home_mounts: vec![],
            pending: None,
            kept: vec![],
        };
        let f = new_git_control_files(&cfg, None);
        assert_eq!(
            f.suspect,
            vec![t.join("a/.git"), t.join("b/.git"), t.join("c/.git/config")],
            "{f:?}"
        );
        // Older than the run: not moved, and nothing reported for them
        // but what cannot be judged.
        let cfg = Config {
            since: (i64::MAX, 0),
            ..cfg
        };
        let f = new_git_control_files(&cfg, None);
        assert!(f.suspect.is_empty(), "{f:?}");
        assert_eq!(f.unchecked.len(), 1, "{f:?}");
        assert_eq!(f.unchecked[0].0, t.join("b/.git"));
        fs::remove_dir_all(&base).unwrap();
    }

    fn record_config(t: &Path, since: i64) -> Config {
        Config {
            project: t.to_path_buf(),
            quarantine: t.join("q"),
            protected: vec![],
            gitdirs: vec![],
            writable: vec![],
            since: (since, 0),
            persist: None,
            home_mounts: vec![],
            pending: None,
            kept: vec![],
        }
    }

    #[test]
    fn a_record_is_gone_when_done_and_its_directories_when_removed() {
        let t = crate::testutil::Tmp::new("guard-record");
        let dir = t.0.join("state/jail/pending/p-1");
        let r = Record::write(&dir, &record_config(&t.0, 7)).unwrap();
        let file = dir.join(format!("7-{}.json", std::process::id()));
        assert!(file.is_file());
        // Held by this (live) guard: not an unfinished check.
        assert!(unfinished(&dir).is_empty());
        assert_eq!(
            r.made.0,
            vec![
                dir.clone(),
                t.0.join("state/jail/pending"),
                t.0.join("state/jail"),
                t.0.join("state"),
            ]
        );
        let made = r.done();
        // The record goes with `done` (before the launcher is told)...
        assert!(!file.exists());
        assert!(dir.is_dir());
        // ...its directories after.
        made.remove(None);
        assert!(!t.0.join("state").exists());
    }

    #[test]
    fn a_record_keeps_what_it_did_not_make_and_what_is_not_empty() {
        let t = crate::testutil::Tmp::new("guard-record-keep");
        fs::create_dir_all(t.0.join("state/jail")).unwrap();
        let dir = t.0.join("state/jail/pending/p-1");
        let a = Record::write(&dir, &record_config(&t.0, 1)).unwrap();
        let b = Record::write(&dir, &record_config(&t.0, 2)).unwrap();
        assert_eq!(a.made.0, vec![dir.clone(), t.0.join("state/jail/pending")]);
        assert!(b.made.0.is_empty());
        // Another record is still in the directory: it stays.
        a.done().remove(None);
        assert!(dir.is_dir());
        b.done().remove(None);
        assert!(dir.is_dir(), "b made nothing, so removes nothing");
        assert!(t.0.join("state/jail").is_dir());
    }

    #[test]
    fn records_written_while_another_guard_removes_its_directories_are_written() {
        // Guards of the same project one after the other: one removes the
        // directories it made (found empty) while the next makes them
        // again and opens its record there.
        let t = crate::testutil::Tmp::new("guard-record-race");
        let dir = t.0.join("state/jail/pending/p-1");
        let threads: Vec<_> = (0..4i64)
            .map(|n| {
                let (dir, root) = (dir.clone(), t.0.clone());
                std::thread::spawn(move || {
                    for i in 0..300 {
                        let r = Record::write(&dir, &record_config(&root, n * 1000 + i));
                        let r = r.unwrap_or_else(|| panic!("thread {n}, try {i}: no record"));
                        let made = r.done();
                        let lock = made.lock();
                        made.remove(lock);
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
    }
}
