//! Resource limits, the mechanism (`config::limits` is the policy).
//!
//! Two ways, chosen per host by `detect`:
//! - cgroup v2, where the user has a delegated subtree: jail makes a
//!   cgroup `jail-PID` next to its own (in the parent the user owns, whose
//!   controllers are enabled for children), writes `memory.max` (and
//!   `memory.swap.max` = 0), `pids.max` and `cpu.max`, moves the jail's
//!   pid 1 into it before it builds anything, and removes it at the end.
//!   The whole jail shares each limit. Why next to, not below, its own
//!   cgroup: a cgroup with processes (jail's own) cannot enable
//!   controllers for children ("no internal processes"), and the move is
//!   allowed because the user owns the common ancestor (the parent).
//! - rlimits otherwise: pid 1 sets them before it starts the program, so
//!   they bind every process of the jail and cannot be raised again (no
//!   capabilities): `--pids` is RLIMIT_NPROC, which since Linux 5.14
//!   counts per user namespace (ucounts), so it counts the jail's own
//!   processes and never the user's others; `--memory` is RLIMIT_DATA
//!   (heap and private writable mappings) of each process; `--cpus` pins
//!   the jail to that many CPUs (CPU affinity, which a program may widen
//!   again: advisory, said so by `explain` and `doctor`).
//!
//! `--timeout` needs neither: the launcher outside the jail stops it
//! (`wait`).
//!
//! The launcher keeps the cgroup side (`Prepared`); what pid 1 sets itself
//! is handed to it as a `pid1::prepared::Limits`.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::config::limits::{show_duration, show_size, Limits};
use crate::pid1::prepared::Limits as InJail;
use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    #[error("cannot set up the jail's cgroup {}: {source}", path.display())]
    Cgroup {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Controllers a set of limits needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub memory: bool,
    pub pids: bool,
    pub cpu: bool,
}

impl Needs {
    pub fn of(l: &Limits) -> Needs {
        Needs {
            memory: l.memory.is_some(),
            pids: l.pids.is_some(),
            cpu: l.cpus.is_some(),
        }
    }

    pub fn all() -> Needs {
        Needs {
            memory: true,
            pids: true,
            cpu: true,
        }
    }

    fn names(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.memory {
            v.push("memory");
        }
        if self.pids {
            v.push("pids");
        }
        if self.cpu {
            v.push("cpu");
        }
        v
    }
}

/// How limits are enforced on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// A cgroup per jail, made in `parent` (delegated to the user).
    Cgroup { parent: PathBuf },
    /// rlimits in the jail, and why cgroup v2 cannot be used.
    Rlimits { why: String },
}

/// The cgroup2 mount and this process's cgroup below it, from
/// /proc/self/mountinfo and /proc/self/cgroup.
fn own_cgroup(mountinfo: &str, cgroup: &str) -> Result<PathBuf, String> {
    let own = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("this process is in no cgroup v2 hierarchy (cgroup v1 only)")?;
    // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - FSTYPE SOURCE SUPER
    let mount = mountinfo
        .lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(" - ")?;
            let fstype = b.split_whitespace().next()?;
            let f: Vec<&str> = a.split_whitespace().collect();
            (fstype == "cgroup2" && f.len() >= 5).then(|| (f[3].to_string(), f[4].to_string()))
        })
        .find(|(root, _)| own.starts_with(root.as_str()))
        .ok_or("no cgroup v2 filesystem is mounted")?;
    let (root, point) = mount;
    let rel = own.strip_prefix(root.as_str()).unwrap_or(own);
    let point = PathBuf::from(unescape(&point));
    match rel.trim_start_matches('/') {
        "" => Ok(point),
        rel => Ok(point.join(rel)),
    }
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn writable(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    CString::new(p.as_os_str().as_bytes())
        // SAFETY: access() on a valid C string.
        .map(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0)
        .unwrap_or(false)
}

fn words(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// Whether limits can go through a delegated cgroup v2 subtree here.
pub fn detect(needs: Needs) -> Mechanism {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    match own_cgroup(&read("/proc/self/mountinfo"), &read("/proc/self/cgroup")) {
        Ok(own) => detect_at(&own, needs),
        Err(why) => Mechanism::Rlimits { why },
    }
}

/// `detect` for the cgroup directory `own` (a parameter for tests).
pub fn detect_at(own: &Path, needs: Needs) -> Mechanism {
    let rlimits = |why: String| Mechanism::Rlimits { why };
    let Some(parent) = own.parent().filter(|p| p.join("cgroup.procs").exists()) else {
        return rlimits(format!(
            "jail runs in the root cgroup ({}): nothing is delegated to you",
            own.display()
        ));
    };
    if !writable(parent) || !writable(&parent.join("cgroup.procs")) {
        return rlimits(format!(
            "{} is not delegated to you (start jail inside a delegated scope, e.g. \
             `systemd-run --user --scope -p Delegate=yes jail ...`)",
            parent.display()
        ));
    }
    let enabled = words(&parent.join("cgroup.subtree_control"));
    let available = words(&parent.join("cgroup.controllers"));
    let missing: Vec<&str> = needs
        .names()
        .into_iter()
        .filter(|c| !enabled.iter().any(|e| e == c))
        .collect();
    if missing.is_empty() {
        return Mechanism::Cgroup {
            parent: parent.to_path_buf(),
        };
    }
    let unavailable: Vec<&str> = missing
        .iter()
        .copied()
        .filter(|c| !available.iter().any(|a| a == c))
        .collect();
    if !unavailable.is_empty() {
        return rlimits(format!(
            "the cgroup v2 controller(s) {} are not available in {}",
            unavailable.join(", "),
            parent.display()
        ));
    }
    if !words(&parent.join("cgroup.procs")).is_empty() {
        // Enabling a controller for children needs a cgroup without
        // processes of its own ("no internal processes").
        return rlimits(format!(
            "the controller(s) {} are not enabled in {}, which holds processes",
            missing.join(", "),
            parent.display()
        ));
    }
    if writable(&parent.join("cgroup.subtree_control")) {
        // Enabled when the cgroup is made (`prepare`).
        Mechanism::Cgroup {
            parent: parent.to_path_buf(),
        }
    } else {
        rlimits(format!(
            "the controller(s) {} are not enabled in {}",
            missing.join(", "),
            parent.display()
        ))
    }
}

/// How the limits are enforced here, a line each (for `explain`).
pub fn describe(l: &Limits) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &l.timeout {
        parts.push(format!(
            "timeout by jail outside the jail (SIGTERM to every process after {}, SIGKILL {} later)",
            show_duration(t.value),
            show_duration(l.grace.value)
        ));
    }
    if l.any_resource() {
        parts.push(match detect(Needs::of(l)) {
            Mechanism::Cgroup { parent } => format!(
                "cgroup v2: a cgroup for the whole jail in {} (delegated to you)",
                parent.display()
            ),
            Mechanism::Rlimits { why } => format!("rlimits ({why}): {}", rlimit_terms(l)),
        });
    }
    parts.join("\n")
}

fn rlimit_terms(l: &Limits) -> String {
    let mut t = Vec::new();
    if let Some(m) = &l.memory {
        t.push(format!(
            "memory {} per process (RLIMIT_DATA)",
            show_size(m.value)
        ));
    }
    if let Some(p) = &l.pids {
        t.push(format!(
            "{} processes for the whole jail (RLIMIT_NPROC, counted in the jail's user namespace)",
            p.value
        ));
    }
    if let Some(c) = &l.cpus {
        t.push(format!(
            "CPU affinity to {} CPU(s) (the program could widen it)",
            cpus_for_affinity(c.value)
        ));
    }
    t.join(", ")
}

/// `jail doctor`'s line: what `--memory`, `--pids` and `--cpus` would use.
pub fn doctor_line() -> (bool, String) {
    match detect(Needs::all()) {
        Mechanism::Cgroup { parent } => (
            true,
            format!(
                "cgroup v2, delegated: each jail gets its own cgroup in {}",
                parent.display()
            ),
        ),
        Mechanism::Rlimits { why } => (
            false,
            format!(
                "rlimits: {why}; --memory per process (RLIMIT_DATA), --pids per jail \
                 (RLIMIT_NPROC in its user namespace), --cpus as CPU affinity; --timeout works either way"
            ),
        ),
    }
}

/// The size of the jail's tmpfs: as resolved by the caller, else worked
/// out here from `--memory`, how it is enforced and the machine's RAM.
pub fn tmpfs(l: &Limits) -> crate::config::spec::Sourced<u64> {
    l.tmpfs.clone().unwrap_or_else(|| {
        // Probed only when there is a memory limit to share.
        let cgroup = l.memory.is_some() && matches!(detect(Needs::of(l)), Mechanism::Cgroup { .. });
        crate::config::limits::tmpfs_size(l.memory.as_ref(), sys::ram(), cgroup)
    })
}

/// Whole CPUs for affinity: the quota rounded up.
fn cpus_for_affinity(milli: u32) -> usize {
    milli.div_ceil(1000).max(1) as usize
}

/// What the launcher needs, made before the clone (pid 1's part is a
/// `pid1::prepared::Limits`).
#[derive(Debug, Default)]
pub struct Prepared {
    /// The jail's own cgroup (cgroup mode).
    pub cgroup: Option<Cgroup>,
    /// What was asked, for the messages at exit.
    memory: Option<u64>,
    pids: Option<u32>,
}

/// A cgroup made for one jail; removed by `finish`.
#[derive(Debug)]
pub struct Cgroup {
    pub dir: PathBuf,
    procs: CString,
}

impl Prepared {
    /// Sets up the limits of `l` (cgroup made and configured, or rlimit
    /// values worked out): the launcher's part and pid 1's. Nothing
    /// happens for a spec without limits.
    pub fn new(l: &Limits) -> Result<(Prepared, InJail), LimitsError> {
        let mut p = Prepared {
            memory: l.memory.as_ref().map(|m| m.value),
            pids: l.pids.as_ref().map(|m| m.value),
            ..Prepared::default()
        };
        let mut jail = InJail::default();
        if !l.any_resource() {
            return Ok((p, jail));
        }
        match detect(Needs::of(l)) {
            Mechanism::Cgroup { parent } => {
                p.cgroup = Some(make_cgroup(&parent, l)?);
                jail.late_cgroupns = true;
            }
            Mechanism::Rlimits { .. } => {
                // pid 1 itself counts in the jail's user namespace.
                if let Some(n) = &l.pids {
                    jail.rlimits.push((
                        libc::RLIMIT_NPROC,
                        clamp_hard(libc::RLIMIT_NPROC, u64::from(n.value) + 1),
                    ));
                }
                if let Some(m) = &l.memory {
                    jail.rlimits
                        .push((libc::RLIMIT_DATA, clamp_hard(libc::RLIMIT_DATA, m.value)));
                }
                if let Some(c) = &l.cpus {
                    jail.affinity = affinity(cpus_for_affinity(c.value));
                }
            }
        }
        Ok((p, jail))
    }

    /// Whether the jail must be cloned without its cgroup namespace (pid 1
    /// makes it after the move into its cgroup, so that is its root).
    pub fn late_cgroupns(&self) -> bool {
        self.cgroup.is_some()
    }

    /// Launcher, after the clone and before "go": moves the jail's pid 1
    /// into its cgroup, so everything it starts is inside.
    pub fn attach(&self, pid: libc::pid_t) -> Result<(), LimitsError> {
        let Some(cg) = &self.cgroup else {
            return Ok(());
        };
        write_at(&cg.procs, pid.to_string().as_bytes()).map_err(|e| LimitsError::Cgroup {
            path: cg.dir.clone(),
            source: std::io::Error::from_raw_os_error(e),
        })
    }

    /// Launcher, after the jail is gone: what the limits did (one line
    /// each), and the cgroup removed.
    pub fn finish(&self) -> Vec<String> {
        let Some(cg) = &self.cgroup else {
            return Vec::new();
        };
        let mut msgs = Vec::new();
        let count = |file: &str, key: &str| -> u64 {
            std::fs::read_to_string(cg.dir.join(file))
                .ok()
                .and_then(|s| {
                    s.lines().find_map(|l| {
                        let (k, v) = l.split_once(' ')?;
                        (k == key).then(|| v.trim().parse().ok()).flatten()
                    })
                })
                .unwrap_or(0)
        };
        let oom = count("memory.events", "oom_kill");
        if let (Some(m), true) = (self.memory, oom > 0) {
            msgs.push(format!(
                "the memory limit ({}) was reached: {oom} process(es) killed",
                show_size(m)
            ));
        }
        let refused = count("pids.events", "max");
        if let (Some(p), true) = (self.pids, refused > 0) {
            msgs.push(format!(
                "the process limit ({p}) was reached: {refused} fork(s) refused"
            ));
        }
        remove_cgroup(&cg.dir);
        msgs
    }
}

/// How the jail ended under `--timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Before the deadline, with this exit status.
    Exited(i32),
    /// Stopped at the deadline: SIGTERM to every process, and SIGKILL of
    /// pid 1 (which takes the whole pid namespace) if the grace ran out.
    TimedOut { killed: bool },
}

/// Launcher: waits for the jail's pid 1 until `deadline`, then stops the
/// jail. Reaps pid 1 in every case.
pub fn wait(pid: libc::pid_t, deadline: std::time::Instant, grace: std::time::Duration) -> Ended {
    let pidfd = sys::pidfd_open(pid).ok();
    let ended = if exits_by(pid, pidfd, deadline) {
        Ended::Exited(super::init::wait_for(pid, false))
    } else {
        super::init::terminate_all(pid);
        let killed = !exits_by(pid, pidfd, std::time::Instant::now() + grace);
        if killed {
            // SAFETY: SIGKILL to our own child, the jail's pid 1; the
            // kernel then kills every process of its pid namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        super::init::wait_for(pid, false);
        Ended::TimedOut { killed }
    };
    if let Some(fd) = pidfd {
        sys::close(fd);
    }
    ended
}

/// Whether `pid` (our child) exits before `deadline`; it is not reaped.
fn exits_by(pid: libc::pid_t, pidfd: Option<i32>, deadline: std::time::Instant) -> bool {
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if let Some(fd) = pidfd {
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            match sys::poll_in(fd, ms) {
                Ok(0) if left.is_zero() => return false,
                Ok(0) => continue,
                Ok(_) => return true,
                Err(_) => {}
            }
        }
        if sys::exited(pid) {
            return true;
        }
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(std::time::Duration::from_millis(50)));
    }
}

/// The rlimit `want`, but never above the current hard limit (raising
/// that needs a capability jail does not have).
fn clamp_hard(res: libc::__rlimit_resource_t, want: u64) -> libc::rlim_t {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills a local struct.
    if unsafe { libc::getrlimit(res, &mut r) } == 0 && r.rlim_max != libc::RLIM_INFINITY {
        return want.min(r.rlim_max);
    }
    want
}

/// The first `n` CPUs this process may use; None when that is all of them.
fn affinity(n: usize) -> Option<nix::sched::CpuSet> {
    let now = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok()?;
    let allowed: Vec<usize> = (0..nix::sched::CpuSet::count())
        .filter(|&c| now.is_set(c).unwrap_or(false))
        .collect();
    if allowed.len() <= n {
        return None;
    }
    let mut set = nix::sched::CpuSet::new();
    for &c in &allowed[..n] {
        set.set(c).ok()?;
    }
    Some(set)
}

fn write_at(path: &CString, data: &[u8]) -> Result<(), i32> {
    // SAFETY: open on a valid C string; the fd is closed below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(sys::errno());
    }
    let r = sys::write_all(fd, data);
    sys::close(fd);
    r
}

/// Makes `parent/jail-PID` with the limits of `l`.
fn make_cgroup(parent: &Path, l: &Limits) -> Result<Cgroup, LimitsError> {
    use std::os::unix::ffi::OsStrExt;
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LimitsError::Cgroup { path, source }
    };
    sweep_stale(parent);
    let needs = Needs::of(l);
    let enabled = words(&parent.join("cgroup.subtree_control"));
    let enable: Vec<String> = needs
        .names()
        .into_iter()
        .filter(|c| !enabled.iter().any(|e| e == c))
        .map(|c| format!("+{c}"))
        .collect();
    if !enable.is_empty() {
        std::fs::write(parent.join("cgroup.subtree_control"), enable.join(" "))
            .map_err(err(&parent.join("cgroup.subtree_control")))?;
    }
    let dir = parent.join(format!("jail-{}", std::process::id()));
    std::fs::create_dir(&dir).map_err(err(&dir))?;
    let set = |file: &str, value: String| -> Result<(), LimitsError> {
        std::fs::write(dir.join(file), value).map_err(err(&dir.join(file)))
    };
    let result = (|| {
        if let Some(m) = &l.memory {
            set("memory.max", m.value.to_string())?;
            // Swap would let a hog go on past the limit, slowly.
            if dir.join("memory.swap.max").exists() {
                set("memory.swap.max", "0".into())?;
            }
        }
        if let Some(p) = &l.pids {
            // pid 1 counts too.
            set("pids.max", (u64::from(p.value) + 1).to_string())?;
        }
        if let Some(c) = &l.cpus {
            let period = 100_000u64;
            set(
                "cpu.max",
                format!("{} {period}", u64::from(c.value) * period / 1000),
            )?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        remove_cgroup(&dir);
        return Err(e);
    }
    let procs = CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
        .map_err(|e| err(&dir)(std::io::Error::other(e)))?;
    Ok(Cgroup { dir, procs })
}

/// Removes the cgroup once its processes are gone (a dying process may
/// still be counted for a moment after its parent reaped it).
fn remove_cgroup(dir: &Path) {
    for _ in 0..100 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    tracing::warn!("could not remove the jail's cgroup {}", dir.display());
}

/// Removes empty `jail-PID` cgroups of jails that were killed (SIGKILL
/// leaves them behind; they hold no process).
fn sweep_stale(parent: &Path) {
    for e in std::fs::read_dir(parent).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("jail-").and_then(|p| p.parse().ok()) else {
            continue;
        };
        if !sys::alive(pid) && words(&e.path().join("cgroup.procs")).is_empty() {
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "29 23 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
        30 29 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n\
        31 29 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";

    #[test]
    fn own_cgroup_is_found_in_unified_and_hybrid_layouts() {
        let unified = "25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let cg = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n";
        assert_eq!(
            own_cgroup(unified, cg).unwrap(),
            PathBuf::from(
                "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope"
            )
        );
        assert_eq!(
            own_cgroup(HYBRID, "4:memory:/a\n0::/\n").unwrap(),
            PathBuf::from("/sys/fs/cgroup/unified")
        );
        assert!(own_cgroup(HYBRID, "4:memory:/a\n").is_err(), "v1 only");
        assert!(own_cgroup("", "0::/x\n").is_err(), "no cgroup2 mount");
        // Inside a cgroup namespace the mount's root is not /.
        let ns = "40 1 0:22 /jail /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            own_cgroup(ns, "0::/jail/inner\n").unwrap(),
            PathBuf::from("/sys/fs/cgroup/inner")
        );
        assert_eq!(unescape(r"/a\040b"), "/a b");
    }

    fn fake(root: &Path, controllers: &str, enabled: &str) -> PathBuf {
        let _ = std::fs::remove_dir_all(root);
        let parent = root.join("app.slice");
        let own = parent.join("x.scope");
        std::fs::create_dir_all(&own).unwrap();
        for d in [root, parent.as_path(), own.as_path()] {
            std::fs::write(d.join("cgroup.procs"), "").unwrap();
        }
        std::fs::write(parent.join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(parent.join("cgroup.subtree_control"), enabled).unwrap();
        own
    }

    #[test]
    fn detection_needs_the_parent_and_its_controllers() {
        let root = std::env::temp_dir().join(format!("jail-cg-{}", std::process::id()));
        let own = fake(&root, "cpu memory pids", "memory pids");
        let need = Needs {
            memory: true,
            pids: true,
            cpu: false,
        };
        assert_eq!(
            detect_at(&own, need),
            Mechanism::Cgroup {
                parent: root.join("app.slice")
            }
        );
        // cpu is available and (we own the file) can be enabled.
        assert!(matches!(
            detect_at(&own, Needs::all()),
            Mechanism::Cgroup { .. }
        ));
        let own = fake(&root, "memory", "memory");
        match detect_at(&own, Needs::all()) {
            Mechanism::Rlimits { why } => assert!(why.contains("pids, cpu"), "{why}"),
            m => panic!("{m:?}"),
        }
        // The root cgroup has no parent to make a sibling in.
        assert!(matches!(detect_at(&root, need), Mechanism::Rlimits { .. }));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_jail_cgroup_gets_every_limit_and_the_controllers_it_needs() {
        let root = std::env::temp_dir().join(format!("jail-cg-make-{}", std::process::id()));
        let own = fake(&root, "cpu memory pids", "memory");
        let parent = own.parent().unwrap();
        let mut l = Limits::default();
        l.apply_cli(None, Some(64 << 20), Some(10), Some(1500));
        let cg = make_cgroup(parent, &l).unwrap();
        let read = |f: &str| std::fs::read_to_string(cg.dir.join(f)).unwrap();
        assert_eq!(read("memory.max"), (64u64 << 20).to_string());
        assert_eq!(read("pids.max"), "11", "pid 1 counts too");
        assert_eq!(read("cpu.max"), "150000 100000");
        assert_eq!(
            std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap(),
            "+pids +cpu"
        );
        assert_eq!(cg.dir, parent.join(format!("jail-{}", std::process::id())));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn rlimit_mode_computes_values_for_pid_1() {
        let mut l = Limits::default();
        l.apply_cli(None, Some(64 << 20), Some(10), Some(1000));
        let terms = rlimit_terms(&l);
        assert!(terms.contains("64 MiB per process"), "{terms}");
        assert!(terms.contains("10 processes"), "{terms}");
        assert_eq!(cpus_for_affinity(1500), 2);
        assert_eq!(cpus_for_affinity(10), 1);
    }
}
