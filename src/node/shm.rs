//! Shared memory for the tasks of one Slurm step on a node. Each task
//! builds its own jail (its own pid namespace and /dev/shm), so MPI
//! ranks of one node could not map each other's segments. The job
//! launcher gives the step's tasks on a node one directory as their
//! /dev/shm, private to the user (`/dev/shm/jail-UID/JOB.STEP`, made and
//! checked outside the jail), and each task's program a pid of its own
//! (Open MPI tells a segment's creator from its users by pid). The last
//! task of the step on the node to end removes the directory.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::sys;

/// Where the users' step directories are made.
const SHM: &str = "/dev/shm";

/// Pids between the program pids of two tasks (room for what pid 1
/// starts in between, which is nothing today).
const PID_STRIDE: u32 = 100;

/// A step's shared directory on this node, held (a shared flock) while
/// this task runs.
#[derive(Debug)]
pub struct StepShm {
    dir: PathBuf,
    lock: fs::File,
}

impl StepShm {
    /// Makes (or joins) the directory of step `job`.`step` for user `uid`
    /// under `root` (/dev/shm). `root/jail-UID` must be a directory of the
    /// user's with mode 0700 and no symbolic link: /dev/shm is shared
    /// with every user, and its sticky bit keeps others from replacing
    /// an entry once it is the user's.
    pub fn open(root: &Path, uid: u32, job: &str, step: &str) -> Result<StepShm, String> {
        let valid =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid(job) || !valid(step) {
            return Err(format!("unexpected job or step id {job:?}.{step:?}"));
        }
        let top = root.join(format!("jail-{uid}"));
        private_dir(&top, uid)?;
        let err = |p: &Path, e: i32| format!("{}: {}", p.display(), sys::errno_text(e));
        // One task at a time makes, joins or sweeps steps' directories, so
        // a sweep never takes one a task made but holds no lock on yet.
        let guard = fs::File::open(&top).map_err(|e| format!("{}: {e}", top.display()))?;
        sys::lock(guard.as_raw_fd()).map_err(|e| err(&top, e))?;
        let name = format!("{job}.{step}");
        sweep(&top, &name);
        let dir = top.join(&name);
        private_dir(&dir, uid)?;
        let lock = fs::File::open(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        sys::lock_shared(lock.as_raw_fd()).map_err(|e| err(&dir, e))?;
        drop(guard);
        Ok(StepShm { dir, lock })
    }

    /// The step's directory on this node, for `/dev/shm/` in the jail.
    pub fn open_for_step(
        uid: u32,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<StepShm, String> {
        let job = env("SLURM_JOB_ID").ok_or("SLURM_JOB_ID is not set")?;
        let step = env("SLURM_STEP_ID").ok_or("SLURM_STEP_ID is not set")?;
        StepShm::open(Path::new(SHM), uid, &job, &step)
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// This task ended: the last of the step's tasks on the node (no
    /// other holds the lock) removes the directory, never following a
    /// symbolic link the program left there (`remove_tree`).
    pub fn finish(self) {
        // Under the user's guard, as `open`: a sibling task between its
        // open and its lock never gets a directory removed under it.
        let guard = self.dir.parent().and_then(|top| fs::File::open(top).ok());
        if let Some(g) = &guard {
            if sys::lock(g.as_raw_fd()).is_err() {
                return;
            }
        }
        if sys::try_lock(self.lock.as_raw_fd()).is_ok() {
            if let Err(e) = remove_tree(&self.dir) {
                tracing::debug!("cannot remove {}: {e}", self.dir.display());
            }
        }
    }
}

/// Removes the directories of steps whose tasks are all gone (killed
/// before they could remove it: every live task holds its lock), which
/// would otherwise keep their segments in memory.
fn sweep(top: &Path, keep: &str) {
    let Ok(entries) = fs::read_dir(top) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name() == keep || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        // A program can chmod its /dev/shm (this directory) to 000, which
        // would keep it from being opened, so never swept; its tasks hold
        // their locks on what they opened before.
        let _ = fs::set_permissions(e.path(), fs::Permissions::from_mode(0o700));
        let stale = fs::File::open(e.path()).is_ok_and(|f| sys::try_lock(f.as_raw_fd()).is_ok());
        if stale {
            let _ = remove_tree(&e.path());
        }
    }
}

/// Removes the directory `path` and all below it, never following a
/// symbolic link and never holding more than two directories open: the
/// program may leave a chain of directories deeper than the launcher
/// has file descriptors for, where `remove_dir_all` (one open directory
/// per level) gives up and the step's memory would stay taken for good.
/// Each pass moves the subdirectories of `path`'s subdirectories up into
/// `path` (under fresh names, never replacing an entry) and removes the
/// rest. Only for directories no live task uses (none can add to them).
fn remove_tree(path: &Path) -> Result<(), nix::errno::Errno> {
    use nix::fcntl::{open, openat, renameat2, OFlag, RenameFlags};
    use nix::sys::stat::{fchmodat, fstatat, FchmodatFlags, Mode, SFlag};
    use nix::unistd::{unlinkat, UnlinkatFlags};
    use std::ffi::OsString;
    use std::os::fd::OwnedFd;
    use std::os::unix::ffi::OsStrExt;
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let names = |d: &OwnedFd| -> Result<Vec<OsString>, nix::errno::Errno> {
        let mut listing =
            nix::dir::Dir::from_fd(d.try_clone().map_err(|_| nix::errno::Errno::EMFILE)?)?;
        let mut out = Vec::new();
        for e in listing.iter() {
            let n = e?.file_name().to_bytes().to_vec();
            if n != b"." && n != b".." {
                out.push(std::ffi::OsStr::from_bytes(&n).to_os_string());
            }
        }
        Ok(out)
    };
    let is_dir = |d: &OwnedFd, n: &OsString| {
        fstatat(d, n.as_os_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
    };
    // The program may have taken its own rights away (chmod 0 of a
    // directory it made, or of /dev/shm itself): it and the launcher are
    // one user, so they are given back. Entries are checked to be
    // directories (no link) first, and no live task can change them.
    let mine = Mode::from_bits_truncate(0o700);
    let own =
        |d: &OwnedFd, n: &OsString| fchmodat(d, n.as_os_str(), mine, FchmodatFlags::FollowSymlink);
    let _ = fchmodat(
        nix::fcntl::AT_FDCWD,
        path,
        mine,
        FchmodatFlags::FollowSymlink,
    );
    let top = open(path, dir_flags, Mode::empty())?;
    let mut fresh = 0u64;
    loop {
        let entries = names(&top)?;
        if entries.is_empty() {
            break;
        }
        for n in entries {
            if !is_dir(&top, &n)? {
                unlinkat(&top, n.as_os_str(), UnlinkatFlags::NoRemoveDir)?;
                continue;
            }
            own(&top, &n)?;
            let d = openat(&top, n.as_os_str(), dir_flags, Mode::empty())?;
            for m in names(&d)? {
                if !is_dir(&d, &m)? {
                    unlinkat(&d, m.as_os_str(), UnlinkatFlags::NoRemoveDir)?;
                    continue;
                }
                loop {
                    fresh += 1;
                    let to = format!(".jail-rm-{fresh}");
                    match renameat2(
                        &d,
                        m.as_os_str(),
                        &top,
                        to.as_str(),
                        RenameFlags::RENAME_NOREPLACE,
                    ) {
                        Err(nix::errno::Errno::EEXIST) => continue,
                        r => break r?,
                    }
                }
            }
            drop(d);
            unlinkat(&top, n.as_os_str(), UnlinkatFlags::RemoveDir)?;
        }
    }
    drop(top);
    nix::unistd::unlinkat(nix::fcntl::AT_FDCWD, path, UnlinkatFlags::RemoveDir)
}

/// `path` as a directory of `uid`'s, mode 0700, made if missing.
fn private_dir(path: &Path, uid: u32) -> Result<(), String> {
    match fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
    }
    let m = fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !m.file_type().is_dir() || m.uid() != uid || m.permissions().mode() & 0o7777 != 0o700 {
        return Err(format!(
            "{} is not a directory of yours with mode 0700 (another user made it?)",
            path.display()
        ));
    }
    Ok(())
}

/// The program's pid for task `localid` of a step on this node (distinct
/// for each task of the node), if `pid_max` leaves room for it.
pub fn program_pid(localid: u32, pid_max: u32) -> Option<u32> {
    let pid = localid.checked_add(1)?.checked_mul(PID_STRIDE)?;
    (pid.checked_add(PID_STRIDE)? <= pid_max).then_some(pid)
}

/// The kernel's largest pid (the jail's pid namespace has the same).
pub fn pid_max() -> Option<u32> {
    fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> u32 {
        // SAFETY: getuid cannot fail.
        unsafe { libc::getuid() }
    }

    #[test]
    fn tasks_of_a_step_share_one_private_directory_the_last_removes() {
        let t = crate::testutil::Tmp::new("shm-share");
        let r = t.0.clone();
        let a = StepShm::open(&r, me(), "42", "0").unwrap();
        let b = StepShm::open(&r, me(), "42", "0").unwrap();
        assert_eq!(a.path(), b.path());
        assert_eq!(a.path(), r.join(format!("jail-{}/42.0", me())));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(a.path()), 0o700);
        assert_eq!(mode(a.path().parent().unwrap()), 0o700);
        fs::write(a.path().join("seg"), b"x").unwrap();
        // A link the program left is removed, never followed.
        let outside = r.join("keep");
        fs::write(&outside, b"k").unwrap();
        std::os::unix::fs::symlink(&r, a.path().join("link")).unwrap();
        let other = StepShm::open(&r, me(), "42", "1").unwrap();
        assert_ne!(other.path(), a.path());
        a.finish();
        assert!(b.path().join("seg").exists(), "b still runs");
        let dir = b.path().to_path_buf();
        b.finish();
        assert!(!dir.exists());
        assert!(outside.exists());
        assert!(other.path().exists());
        other.finish();
        // A step whose tasks were killed (no lock held) is swept by the
        // next step's first task; a live step's directory is not.
        let live = StepShm::open(&r, me(), "43", "0").unwrap();
        let top = r.join(format!("jail-{}", me()));
        fs::create_dir(top.join("41.0")).unwrap();
        fs::write(top.join("41.0/seg"), b"x").unwrap();
        let next = StepShm::open(&r, me(), "44", "0").unwrap();
        assert!(!top.join("41.0").exists());
        assert!(live.path().exists());
        live.finish();
        next.finish();
        let _ = fs::remove_dir_all(&r);
    }

    /// A chain of directories deeper than the launcher has file
    /// descriptors (what a program can leave in its /dev/shm) is removed
    /// by the last task, and by the sweep, like any other.
    #[test]
    fn a_tree_deeper_than_the_fd_limit_is_removed() {
        use nix::fcntl::{openat, OFlag};
        use nix::sys::stat::{mkdirat, Mode};
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit into a struct we own.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        let soft = lim.rlim_cur;
        let depth = (soft + 200).clamp(2000, 50_000);
        let chain = |at: &Path| {
            let mut fd = std::os::fd::OwnedFd::from(fs::File::open(at).unwrap());
            for _ in 0..depth {
                mkdirat(&fd, "d", Mode::from_bits_truncate(0o700)).unwrap();
                let next = openat(
                    &fd,
                    "d",
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY,
                    Mode::empty(),
                )
                .unwrap();
                fs::write(format!("/proc/self/fd/{}/f", next.as_raw_fd()), b"x").unwrap();
                fd = next;
            }
        };
        let t = crate::testutil::Tmp::new("shm-deep");
        let r = t.0.clone();
        let a = StepShm::open(&r, me(), "50", "0").unwrap();
        chain(a.path());
        std::os::unix::fs::symlink(&r, a.path().join("d/d/link")).unwrap();
        // Directories the program made unwritable or unreadable, and
        // its /dev/shm itself.
        for (d, m) in [("d/d/d", 0o500), ("d/d", 0o000), (".", 0o000)] {
            fs::set_permissions(a.path().join(d), fs::Permissions::from_mode(m)).unwrap();
        }
        let dir = a.path().to_path_buf();
        a.finish();
        assert!(!dir.exists(), "the last task left {}", dir.display());
        // Killed tasks: the next step's sweep removes it.
        let top = r.join(format!("jail-{}", me()));
        fs::create_dir(top.join("51.0")).unwrap();
        chain(&top.join("51.0"));
        fs::set_permissions(top.join("51.0"), fs::Permissions::from_mode(0o000)).unwrap();
        let next = StepShm::open(&r, me(), "52", "0").unwrap();
        assert!(!top.join("51.0").exists(), "the sweep left 51.0");
        next.finish();
        assert!(r.exists());
        let _ = fs::remove_dir_all(&r);
    }

    #[test]
    fn a_directory_that_is_not_the_users_own_is_refused() {
        let t = crate::testutil::Tmp::new("shm-refuse");
        let r = t.0.clone();
        let top = r.join(format!("jail-{}", me()));
        // Too open: anyone could plant segments.
        fs::create_dir(&top).unwrap();
        fs::set_permissions(&top, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(StepShm::open(&r, me(), "1", "0")
            .unwrap_err()
            .contains("mode 0700"));
        fs::remove_dir(&top).unwrap();
        // A link planted in its place.
        std::os::unix::fs::symlink(&r, &top).unwrap();
        assert!(StepShm::open(&r, me(), "1", "0").is_err());
        fs::remove_file(&top).unwrap();
        // Another user's (what root's tests can show: root owns it, the
        // uid asked for is another).
        fs::create_dir(&top).unwrap();
        fs::set_permissions(&top, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(StepShm::open(&r, me(), "1", "0").is_ok());
        assert!(StepShm::open(&r, me() + 1, "1", "0").is_err());
        for (job, step) in [("../x", "0"), ("1", ""), ("1", "0/.."), ("", "0")] {
            assert!(StepShm::open(&r, me(), job, step).is_err(), "{job} {step}");
        }
        let _ = fs::remove_dir_all(&r);
    }

    #[test]
    fn each_task_of_a_node_gets_its_own_pid_within_pid_max() {
        assert_eq!(program_pid(0, 4_194_304), Some(100));
        assert_eq!(program_pid(1, 4_194_304), Some(200));
        assert_eq!(program_pid(325, 32_768), Some(32_600));
        assert_eq!(program_pid(326, 32_768), None);
        assert_eq!(program_pid(u32::MAX, u32::MAX), None);
    }
}
