//! Review mode (in the launcher, after the jail ended; or `jail review`):
//! the project is an overlay while the program runs, so the
//! real project is untouched; at exit the user sees what changed and
//! decides what lands.
//!
//! A session lives in jail's state directory (never visible inside a
//! jail): `~/.local/state/jail/review/PROJECT-HASH/TIME-PID/` holds
//! `session.json` (the project, when the jail started), `upper/` and
//! `work/` (overlayfs's directories) and `lock`. The launcher holds an
//! exclusive lock on `lock`, and so does the jail's pid 1 (it inherits the
//! open file at the clone and never closes it): while anything could
//! still write upper, `jail review` refuses the session. Nothing is lost
//! when jail is killed: upper stays, and `jail review` lists it.
//!
//! Conflicts: the session records when the jail started (minus a margin
//! for coarse timestamps and clock skew). A host object whose status
//! change time (ctime, which no user can set) is later changed on the
//! host meanwhile: it is never overwritten without an explicit yes.
//!
//! Applying (`apply`) writes the project from outside the jail, so it is
//! where an attacker inside would aim: it never follows a symlink, drops
//! setuid/setgid bits, never creates special files, keeps sparse files
//! sparse, and never applies a protected path (git hooks and config,
//! editor and agent config, `.jail.toml`, ...): those go to quarantine as
//! they would without review, unless the user says yes to that path
//! alone on a terminal (each is marked "runs on the host", with why).
//! Only the project is reviewed; other
//! read-write paths (`--rw`, an agent's state directory) are written
//! directly.

pub mod apply;
pub mod changes;
pub mod ui;

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::spec::{JailSpec, ReviewMode};
use crate::plan::OverlayDirs;
use changes::{Block, Change};

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("review mode: cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("review: {0}")]
    Session(String),
}

/// `session.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub project: PathBuf,
    /// When the jail started (CLOCK_REALTIME).
    pub started_secs: u64,
    pub started_nanos: u32,
    pub command: Vec<String>,
    pub profile: String,
    /// Protected paths (relative) the user made read-write with `rw`:
    /// applied like other changes.
    #[serde(default)]
    pub relaxed: Vec<PathBuf>,
    /// The filesystem's clock at the start (ns), where the project and
    /// jail's state share the kernel's clock: a host object whose ctime is
    /// later changed meanwhile, one stamped at or before it did not (the
    /// session is made only after that clock moved past it). Without it
    /// (a file server's clock), the start less a margin.
    #[serde(default)]
    pub stamp_ns: Option<i64>,
}

/// How much earlier than the recorded start a host change still counts
/// as "meanwhile": file timestamps come from a coarse clock (one tick,
/// at most 10 ms, behind the real one). A change just before the start
/// asks needlessly; one just after is never missed.
const MARGIN_NS: i128 = 100_000_000;

/// One review session, locked by this process.
pub struct Session {
    pub dir: PathBuf,
    pub meta: Meta,
    _lock: OwnedFd,
}

impl Session {
    /// A new session for `spec`'s project under `state`.
    pub fn create(state: &Path, spec: &JailSpec) -> Result<Session, ReviewError> {
        use std::os::unix::fs::DirBuilderExt;
        let project = &spec.project.value;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let dir = state
            .join("review")
            .join(project_key(project))
            .join(format!("{}-{}", now.as_secs(), std::process::id()));
        if dir.starts_with(project) {
            return Err(ReviewError::Session(format!(
                "jail's state directory {} is inside the project: review mode cannot keep changes there",
                state.display()
            )));
        }
        let mk = |p: &Path, mode: u32| {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(p)
                .map_err(|source| ReviewError::Create {
                    path: p.to_path_buf(),
                    source,
                })
        };
        mk(&dir, 0o700)?;
        mk(&dir.join("work"), 0o700)?;
        mk(&dir.join("upper"), 0o700)?;
        // The overlay's root shows upper's own mode.
        if let Ok(m) = fs::metadata(project) {
            use std::os::unix::fs::{MetadataExt, PermissionsExt};
            let _ = fs::set_permissions(
                dir.join("upper"),
                fs::Permissions::from_mode(m.permissions().mode() & 0o7777),
            );
            if m.uid() != spec.user.uid || m.gid() != spec.user.gid {
                tracing::warn!(
                    "review mode: {} belongs to uid {} gid {}; only your own uid {} and group {} \
                     exist in the jail, so files of other owners or groups cannot be changed \
                     (\"Value too large for defined data type\")",
                    project.display(),
                    m.uid(),
                    m.gid(),
                    spec.user.uid,
                    spec.user.gid
                );
            }
        }
        let stamp_ns = fs_stamp(&dir, project);
        let meta = Meta {
            stamp_ns,
            project: project.clone(),
            started_secs: now.as_secs(),
            started_nanos: now.subsec_nanos(),
            command: spec.command.clone(),
            profile: spec.profile.value.clone(),
            relaxed: crate::plan::protect::PROTECTED
                .iter()
                .map(PathBuf::from)
                .filter(|p| {
                    spec.filesystem
                        .rw
                        .iter()
                        .any(|r| r.value == project.join(p))
                })
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&meta)
            .map_err(|e| ReviewError::Session(format!("session.json: {e}")))?;
        fs::write(dir.join("session.json"), json).map_err(|source| ReviewError::Create {
            path: dir.join("session.json"),
            source,
        })?;
        let lock = lock(&dir)?
            .ok_or_else(|| ReviewError::Session(format!("{} is in use", dir.display())))?;
        Ok(Session {
            dir,
            meta,
            _lock: lock,
        })
    }

    /// An existing session: PATH is its directory or its `upper`, and it
    /// must lie in this user's state directory (a directory planted
    /// elsewhere, e.g. in a project, is never applied).
    pub fn open(state: &Path, path: &Path) -> Result<Session, ReviewError> {
        let bad = |why: &str| ReviewError::Session(format!("{}: {why}", path.display()));
        let mut dir = fs::canonicalize(path).map_err(|e| bad(&e.to_string()))?;
        if dir.file_name().is_some_and(|n| n == "upper") {
            dir.pop();
        }
        let root = fs::canonicalize(state.join("review"))
            .map_err(|_| bad("not a review session (there are none)"))?;
        if dir.parent().and_then(Path::parent) != Some(root.as_path()) {
            return Err(bad(&format!(
                "not a review session (they live in {})",
                root.display()
            )));
        }
        let meta = read_meta(&dir).map_err(|e| bad(&e))?;
        let lock = lock(&dir)?.ok_or_else(|| {
            bad("the jail of this session is still running (or another `jail review` has it)")
        })?;
        Ok(Session {
            dir,
            meta,
            _lock: lock,
        })
    }

    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }

    pub fn overlay(&self) -> OverlayDirs {
        OverlayDirs {
            upper: self.upper(),
            work: self.dir.join("work"),
        }
    }

    /// Where a session of this project keeps its changes, as `jail
    /// explain` shows it: the session's own name (TIME-PID) is only
    /// known when the run starts.
    pub fn planned(state: &Path, project: &Path) -> OverlayDirs {
        let dir = state
            .join("review")
            .join(project_key(project))
            .join("TIME-PID");
        OverlayDirs {
            upper: dir.join("upper"),
            work: dir.join("work"),
        }
    }

    /// ctime (ns) from which a host object changed meanwhile.
    fn since(&self) -> i128 {
        since(&self.dir, &self.meta)
    }

    /// Removes the whole session (upper must be empty or worthless).
    fn remove(self) {
        // overlayfs leaves work/work with mode 000.
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(
            self.dir.join("work/work"),
            fs::Permissions::from_mode(0o700),
        );
        let _ = fs::remove_dir_all(&self.dir);
        if let Some(parent) = self.dir.parent() {
            let _ = fs::remove_dir(parent);
        }
    }

    /// After a jail that never ran: drops the session if upper is empty.
    pub fn abandon(self) {
        let empty = fs::read_dir(self.upper())
            .map(|mut d| d.next().is_none())
            .unwrap_or(true);
        if empty {
            self.remove();
        }
    }
}

fn project_key(project: &Path) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(project.as_os_str().as_encoded_bytes());
    let name = project
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into());
    let hex: String = h[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{name}-{hex}")
}

/// Locks the session in `dir`; Ok(None) when someone else holds it.
fn lock(dir: &Path) -> Result<Option<OwnedFd>, ReviewError> {
    let path = dir.join("lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| ReviewError::Create { path, source })?;
    match crate::sys::try_lock(f.as_raw_fd()) {
        Ok(()) => Ok(Some(f.into())),
        Err(_) => Ok(None),
    }
}

/// The start as the clock says, or as the filesystem stamped
/// session.json if earlier (a file server's clock may lag ours), minus
/// the margin. Where the filesystems share the kernel's clock, exactly
/// after the stamp taken at the start.
fn since(dir: &Path, meta: &Meta) -> i128 {
    if let Some(s) = meta.stamp_ns {
        return i128::from(s) + 1;
    }
    let clock = i128::from(meta.started_secs) * 1_000_000_000 + i128::from(meta.started_nanos);
    let stamped = changes::Node::at(&dir.join("session.json")).map_or(clock, |n| n.ctime);
    clock.min(stamped) - MARGIN_NS
}

/// Filesystems whose timestamps come from this kernel's clock (a file
/// server stamps with its own, which may differ from ours).
fn kernel_stamped(p: &Path) -> bool {
    const LOCAL: &[i64] = &[
        0xEF53,      // ext2/3/4
        0x5846_5342, // xfs
        0x9123_683E, // btrfs
        0x0102_1994, // tmpfs
        0xF2F5_2010, // f2fs
        0x794C_7630, // overlayfs
        0x2FC1_2FC1, // zfs
        0xCA45_1A4E, // bcachefs
    ];
    nix::sys::statfs::statfs(p).is_ok_and(|s| LOCAL.contains(&s.filesystem_type().0))
}

/// The filesystem clock at the start (ns), taken as the ctime of a file
/// made in `dir`, once that clock has moved past it: an object changed
/// before this call is stamped at or before it, one changed after the
/// call returns is stamped later (file timestamps tick with a coarse
/// clock, so a change just before and one just after could otherwise
/// carry the same time). None where `dir` or `project` is stamped by
/// another clock or the clock did not move within 200 ms.
fn fs_stamp(dir: &Path, project: &Path) -> Option<i64> {
    if !kernel_stamped(dir) || !kernel_stamped(project) {
        return None;
    }
    let ctime = |p: &Path| -> Option<i128> {
        fs::File::create(p).ok()?;
        changes::Node::at(p).map(|n| n.ctime)
    };
    let first = dir.join("stamp");
    let s = ctime(&first)?;
    let probe = dir.join("stamp.probe");
    let mut moved = false;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(2));
        if ctime(&probe)? > s {
            moved = true;
            break;
        }
    }
    let _ = fs::remove_file(&probe);
    let _ = fs::remove_file(&first);
    if moved {
        i64::try_from(s).ok()
    } else {
        None
    }
}

fn read_meta(dir: &Path) -> Result<Meta, String> {
    let text = fs::read(dir.join("session.json")).map_err(|e| format!("session.json: {e}"))?;
    let meta: Meta = serde_json::from_slice(&text).map_err(|e| format!("session.json: {e}"))?;
    if !meta.project.is_absolute() || meta.project == Path::new("/") {
        return Err("session.json names no usable project".into());
    }
    Ok(meta)
}

/// What to do with one change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Apply,
    /// Apply over a conflicting host change (the user said so).
    Force,
    /// Apply a path that runs on the host (the user said yes to it alone).
    HostRun,
    Discard,
    Keep,
}

/// Reviews `session` in `mode` (`Ask` without a terminal keeps). Returns
/// false when something the mode asked for did not happen (a conflict or
/// an error left a change unapplied): jail then exits 125.
pub fn finish(session: Session, mode: ReviewMode, state: &Path) -> bool {
    let upper = session.upper();
    let project = session.meta.project.clone();
    let scan = changes::scan(&upper, &project, session.since(), &session.meta.relaxed);
    if scan.changes.is_empty() {
        eprintln!("jail: review: no changes to {}", ui::name(&project));
        session.remove();
        return true;
    }
    let interactive = mode == ReviewMode::Ask && crate::sys::is_tty(0) && crate::sys::is_tty(2);
    let mode = match mode {
        ReviewMode::Ask if !interactive => ReviewMode::Keep,
        ReviewMode::Off => ReviewMode::Keep,
        m => m,
    };
    let list = || ui::summary(&scan.changes, &upper, &project);
    let n = scan.changes.len();
    let decisions: Vec<Decision> = match mode {
        ReviewMode::Ask => {
            eprint!(
                "jail: review: {n} change(s) to {}:\n{}",
                ui::name(&project),
                list()
            );
            ui::catch_interrupt();
            interactive_decisions(&scan.changes, &upper, &project)
        }
        ReviewMode::Apply => {
            eprint!(
                "jail: review: {n} change(s) to {}:\n{}",
                ui::name(&project),
                list()
            );
            scan.changes
                .iter()
                .map(|c| {
                    if c.conflict.is_some() && c.block.is_none() {
                        Decision::Keep
                    } else {
                        Decision::Apply
                    }
                })
                .collect()
        }
        ReviewMode::Discard => vec![Decision::Discard; n],
        _ => {
            eprint!(
                "jail: review: {n} change(s) to {}:\n{}",
                ui::name(&project),
                list()
            );
            vec![Decision::Keep; n]
        }
    };
    execute(session, scan, &decisions, mode, state)
}

/// The questions on a terminal.
fn interactive_decisions(changes: &[Change], upper: &Path, host: &Path) -> Vec<Decision> {
    let mut out = vec![Decision::Keep; changes.len()];
    loop {
        let Some(a) = ui::ask(
            "jail: review: [a]pply all, [r]eview one by one, [d]iscard all, [k]eep for later, [s]how the diffs? ",
            "ardks",
        ) else {
            return out;
        };
        match a {
            's' => {
                let text: String = changes
                    .iter()
                    .filter(|c| c.block.is_none())
                    .map(|c| ui::full(c, upper, host))
                    .collect();
                ui::show(&text);
            }
            'd' => return vec![Decision::Discard; changes.len()],
            'k' => return out,
            'a' => {
                for (i, c) in changes.iter().enumerate() {
                    out[i] = match (&c.block, &c.conflict) {
                        (None, Some(_)) => match ask_conflict(c, upper, host) {
                            Some(d) => d,
                            None => return out,
                        },
                        // "Apply all" is no yes to these: each is asked.
                        (Some(Block::Protected), _) => match ask_host_run(c, upper, host) {
                            Some(d) => d,
                            None => return out,
                        },
                        _ => Decision::Apply,
                    };
                }
                return out;
            }
            _ => {
                for (i, c) in changes.iter().enumerate() {
                    let d = match (&c.block, &c.conflict) {
                        (Some(Block::Protected), _) => ask_host_run(c, upper, host),
                        (Some(_), _) => Some(Decision::Apply),
                        (None, Some(_)) => ask_conflict(c, upper, host),
                        (None, None) => {
                            ui::show(&ui::full(c, upper, host));
                            match ui::ask(
                                "jail: apply this change? [y]es, [n]o (discard it), [k]eep it for later, [q]uit (keep the rest) ",
                                "ynkq",
                            ) {
                                Some('y') => Some(Decision::Apply),
                                Some('n') => Some(Decision::Discard),
                                Some('k') => Some(Decision::Keep),
                                _ => None,
                            }
                        }
                    };
                    match d {
                        Some(d) => out[i] = d,
                        None => return out,
                    }
                }
                return out;
            }
        }
    }
}

/// A path that runs on the host: applied only on its own explicit yes.
fn ask_host_run(c: &Change, upper: &Path, host: &Path) -> Option<Decision> {
    ui::show(&ui::full(c, upper, host));
    eprintln!(
        "jail: {} RUNS ON THE HOST: {}.",
        ui::name(&c.rel),
        changes::why_protected(&c.rel)
    );
    match ui::ask(
        "jail: apply it anyway? [y]es, apply it; [n]o, move it to quarantine; [k]eep it for later; [q]uit (keep the rest) ",
        "ynkq",
    ) {
        Some('y') => Some(Decision::HostRun),
        Some('n') => Some(Decision::Discard),
        Some('k') => Some(Decision::Keep),
        _ => None,
    }
}

fn ask_conflict(c: &Change, upper: &Path, host: &Path) -> Option<Decision> {
    ui::show(&ui::full(c, upper, host));
    match ui::ask(
        "jail: the project's version changed meanwhile: [o]verwrite it with the jail's, [n]o (discard the jail's), [k]eep for later, [q]uit (keep the rest) ",
        "onkq",
    ) {
        Some('o') => Some(Decision::Force),
        Some('n') => Some(Decision::Discard),
        Some('k') => Some(Decision::Keep),
        _ => None,
    }
}

fn execute(
    session: Session,
    scan: changes::Scan,
    decisions: &[Decision],
    mode: ReviewMode,
    state: &Path,
) -> bool {
    let upper = session.upper();
    let project = session.meta.project.clone();
    let host = match apply::Host::open(&project, session.since()) {
        Ok(h) => Some(h),
        Err(e) => {
            eprintln!(
                "jail: review: cannot open the project {}: {e}",
                ui::name(&project)
            );
            None
        }
    };
    let qdir = crate::plan::protect::quarantine_dir(state, &project);
    let (mut applied, mut discarded, mut moved) = (0, 0, Vec::new());
    let mut kept: Vec<PathBuf> = Vec::new();
    let mut conflicts = Vec::new();
    let mut ok = true;
    for (c, &d) in scan.changes.iter().zip(decisions) {
        match (d, &c.block) {
            (Decision::Keep, _) => kept.push(c.rel.clone()),
            (Decision::HostRun, Some(Block::Protected)) => {
                let Some(h) = &host else {
                    kept.push(c.rel.clone());
                    ok = false;
                    continue;
                };
                match h.apply(c, &upper, false) {
                    Ok(()) => applied += 1,
                    Err(apply::ApplyError::Conflict(why)) => {
                        conflicts.push(format!("{} ({why})", ui::name(&c.rel)));
                        kept.push(c.rel.clone());
                    }
                    Err(apply::ApplyError::Io(e)) => {
                        eprintln!("jail: review: {e}");
                        kept.push(c.rel.clone());
                        ok = false;
                    }
                }
            }
            (_, Some(Block::Protected)) => match apply::quarantine(c, &upper, &qdir) {
                Ok(Some(_)) => moved.push(ui::name(&c.rel)),
                Ok(None) => discarded += 1,
                Err(e) => {
                    eprintln!(
                        "jail: review: WARNING: {} could make a program outside the jail run code; \
                         not applied and not moved ({e}): it stays in {}",
                        ui::name(&c.rel),
                        upper.display()
                    );
                    kept.push(c.rel.clone());
                    ok = false;
                }
            },
            (Decision::Discard, _) | (_, Some(Block::Special(_))) => {
                apply::discard(c, &upper);
                discarded += 1;
            }
            (Decision::Apply | Decision::Force | Decision::HostRun, None) => {
                let Some(h) = &host else {
                    kept.push(c.rel.clone());
                    ok = false;
                    continue;
                };
                match h.apply(c, &upper, d == Decision::Force) {
                    Ok(()) => applied += 1,
                    Err(apply::ApplyError::Conflict(why)) => {
                        conflicts.push(format!("{} ({why})", ui::name(&c.rel)));
                        kept.push(c.rel.clone());
                    }
                    Err(apply::ApplyError::Io(e)) => {
                        eprintln!("jail: review: {e}");
                        kept.push(c.rel.clone());
                        ok = false;
                    }
                }
            }
        }
    }
    // Kept decisions may have been made on conflicts the scan found.
    for (c, &d) in scan.changes.iter().zip(decisions) {
        if d == Decision::Keep && c.conflict.is_some() && c.block.is_none() {
            conflicts.push(format!(
                "{} ({})",
                ui::name(&c.rel),
                c.conflict.as_deref().unwrap_or("")
            ));
        }
    }
    cleanup(&upper, &scan.noise, &kept);
    if !moved.is_empty() {
        eprintln!(
            "jail: moved {} (created in the jail; it could run code outside it) to {}",
            moved.join(", "),
            qdir.display()
        );
    }
    let mut parts = Vec::new();
    if applied > 0 {
        parts.push(format!("applied {applied}"));
    }
    if discarded > 0 {
        parts.push(format!("discarded {discarded}"));
    }
    if !parts.is_empty() {
        eprintln!(
            "jail: review: {} change(s) to {}",
            parts.join(", "),
            ui::name(&project)
        );
    }
    let upper_shown = upper.display().to_string();
    if !conflicts.is_empty() && mode != ReviewMode::Keep {
        eprintln!(
            "jail: review: not applied, changed on the host meanwhile: {}",
            conflicts.join(", ")
        );
        if mode == ReviewMode::Apply {
            ok = false;
        }
    }
    if kept.is_empty() {
        session.remove();
    } else {
        eprintln!(
            "jail: review: kept {} change(s) in {upper_shown}; `jail review {upper_shown}` to review them",
            kept.len()
        );
    }
    ok
}

/// After the decisions: opaque marks whose deletions were all decided go,
/// then worthless copies, then empty directories; kept entries stay.
fn cleanup(upper: &Path, noise: &[PathBuf], kept: &[PathBuf]) {
    apply::prune(upper, kept);
    for n in noise {
        // Below a directory that is still opaque, a copy is what keeps
        // the host's file from counting as deleted.
        let under_opaque = n.ancestors().skip(1).any(|a| {
            !a.as_os_str().is_empty() && {
                let mut b = [0u8; 4];
                crate::sys::lgetxattr(&upper.join(a), c"user.overlay.opaque", &mut b).is_ok()
            }
        });
        if !under_opaque {
            apply::remove_upper(&upper.join(n));
        }
    }
    apply::prune(upper, kept);
}

/// `jail review` without PATH: the sessions waiting for a review.
pub fn list(state: &Path) -> String {
    let root = state.join("review");
    let mut rows = Vec::new();
    for p in fs::read_dir(&root).into_iter().flatten().flatten() {
        for s in fs::read_dir(p.path()).into_iter().flatten().flatten() {
            let dir = s.path();
            let Ok(meta) = read_meta(&dir) else { continue };
            let busy = lock(&dir).ok().flatten().is_none();
            let n = changes::scan(
                &dir.join("upper"),
                &meta.project,
                since(&dir, &meta),
                &meta.relaxed,
            )
            .changes
            .len();
            let age = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs().saturating_sub(meta.started_secs))
                .unwrap_or(0);
            rows.push((
                meta.started_secs,
                format!(
                    "{}\n    project {}, {} change(s), started {} ago{}\n",
                    dir.join("upper").display(),
                    ui::name(&meta.project),
                    n,
                    crate::config::limits::show_duration(age.max(1)),
                    if busy { ", still running" } else { "" }
                ),
            ));
        }
    }
    rows.sort();
    if rows.is_empty() {
        return "no review sessions are waiting\n".into();
    }
    let mut out = String::new();
    for (_, r) in rows {
        out.push_str(&r);
    }
    out.push_str("review one with `jail review PATH` (add --review=apply|discard|keep to decide without asking)\n");
    out
}
