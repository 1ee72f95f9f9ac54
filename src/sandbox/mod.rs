//! Mechanism: executes a `JailSpec`. The launcher (outside) clones the
//! jail's pid 1 into new user, mount, pid, ipc, uts, cgroup and network
//! namespaces, maps the user to itself, and waits. Pid 1 builds the
//! filesystem (plan → executor), hardens itself, forks the program and
//! reaps. Everything the children need is prepared before the clone.

pub mod diagnose;
pub mod exec;
pub mod init;
pub mod limits;
pub mod plan;
pub mod protect;

use std::ffi::{CString, NulError};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::config::spec::NetMode;
use crate::config::JailSpec;
use crate::harden;
use crate::outside::{self, Channel, Msg};
use crate::sys;
use exec::Stage;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("a path or argument contains a NUL byte: {0}")]
    Nul(#[from] NulError),
    #[error("internal error: the launcher has {0} threads; it must fork single-threaded")]
    Threads(usize),
    #[error("cannot create the jail's namespaces: {0}")]
    Namespaces(String),
    #[error("cannot map your user into the jail: {0}")]
    UidMap(String),
    #[error("setting up the jail failed: {0}")]
    Setup(String),
    #[error(transparent)]
    Harden(#[from] harden::HardenError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Channel(#[from] outside::ChannelError),
    #[error(transparent)]
    Limits(#[from] limits::LimitsError),
}

/// Review mode: where the project's overlay keeps its changes (host
/// paths in jail's state, never visible inside a jail).
#[derive(Debug, Clone)]
pub struct OverlayDirs {
    pub upper: PathBuf,
    pub work: PathBuf,
}

/// What the children need, built before the clone (no allocation after).
struct Prepared {
    steps: Vec<exec::Prepared>,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// NULL-terminated pointers into `argv` and `envp`, for execve.
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    /// Full paths to try in order (PATH search done here, run inside).
    candidates: Vec<CString>,
    cwd: CString,
    loopback: bool,
    clone_flags: libc::c_int,
    harden: harden::Prepared,
    limits: limits::Prepared,
}

impl Prepared {
    /// Fills the execve pointer arrays (any length: no fixed limit).
    fn with_pointers(mut self) -> Prepared {
        self.argv_ptrs = self.argv.iter().map(|a| a.as_ptr()).collect();
        self.argv_ptrs.push(std::ptr::null());
        self.envp_ptrs = self.envp.iter().map(|e| e.as_ptr()).collect();
        self.envp_ptrs.push(std::ptr::null());
        self
    }
}

/// Runs the jail and returns the exit status for `jail` itself.
/// `state` is jail's state directory (~/.local/state/jail), where created
/// protected paths are quarantined. With `overlay` (review mode) the
/// project is an overlay whose changes go there.
pub fn run(
    spec: &JailSpec,
    env: &[(String, String)],
    state: &Path,
    overlay: Option<&OverlayDirs>,
) -> Result<i32, SandboxError> {
    let mut plan = plan::plan(spec);
    if let Some(o) = overlay {
        // First: every later bind of a project path then shows the overlay.
        plan.steps.insert(
            0,
            plan::Step::Overlay {
                lower: spec.project.value.clone(),
                upper: o.upper.clone(),
                work: o.work.clone(),
            },
        );
    }
    for s in &plan.steps {
        tracing::debug!("plan: {}", s.describe());
    }
    let argv: Vec<CString> = spec
        .command
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = env
        .iter()
        .map(|(k, v)| CString::new(format!("{k}={v}")))
        .collect::<Result<_, _>>()?;
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str());
    let limits = limits::Prepared::new(&spec.limits)?;
    let mut clone_flags = if spec.network.mode.value == NetMode::Host {
        NS_FLAGS & !libc::CLONE_NEWNET
    } else {
        NS_FLAGS
    };
    if limits.late_cgroupns() {
        // pid 1 makes it after the move into its cgroup (its root then).
        clone_flags &= !libc::CLONE_NEWCGROUP;
    }
    let prep = Prepared {
        steps: exec::prepare(&plan.steps)?,
        candidates: candidates(&spec.command[0], path_var, &spec.cwd)?,
        argv_ptrs: Vec::with_capacity(argv.len() + 1),
        envp_ptrs: Vec::with_capacity(envp.len() + 1),
        argv,
        envp,
        cwd: CString::new(spec.cwd.as_os_str().as_bytes())?,
        loopback: spec.network.mode.value != NetMode::Host,
        // `host` shares the host's network namespace; every other mode
        // gets a fresh one with only loopback.
        clone_flags,
        harden: harden::prepare(spec, &plan)?,
        limits,
    };
    let prep = prep.with_pointers();
    // Every fork below (processes outside, the jail) needs a
    // single-threaded process.
    let threads = sys::thread_count();
    if threads != 1 {
        return Err(SandboxError::Threads(threads));
    }
    let guard = if outside::guard::needed(&plan.protected) {
        let g = outside::spawn(outside::Role::Guard)?;
        g.chan.send(
            &outside::Msg::Guard(outside::guard::Config {
                project: spec.project.value.clone(),
                quarantine: protect::quarantine_dir(state, &spec.project.value),
                protected: plan.protected.clone(),
            }),
            &[],
        )?;
        Some(g)
    } else {
        None
    };
    let code = launch(spec, &plan, &prep, guard.as_ref());
    for m in prep.limits.finish() {
        eprintln!("jail: {m}");
    }
    if let Some(g) = guard {
        g.chan.close();
        // Its one-line message comes before the shell's next prompt.
        init::wait_for(g.pid, false);
    }
    code
}

/// execvp's search, done before fork: every PATH entry joined with the
/// command, or the command itself when it names a path.
fn candidates(cmd: &str, path: Option<&str>, cwd: &Path) -> Result<Vec<CString>, NulError> {
    if cmd.contains('/') {
        return Ok(vec![CString::new(cwd.join(cmd).as_os_str().as_bytes())?]);
    }
    path.unwrap_or("/usr/local/bin:/usr/bin:/bin")
        .split(':')
        .map(|d| if d.is_empty() { "." } else { d })
        .map(|d| CString::new(cwd.join(d).join(cmd).as_os_str().as_bytes()))
        .collect()
}

/// Exit status when `--timeout` stopped the jail (as timeout(1)).
pub const EXIT_TIMEOUT: i32 = 124;

/// Namespaces of the jail. The cgroup namespace is dropped on kernels
/// that lack it.
const NS_FLAGS: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP;

/// Reports a setup failure to the launcher (allocation-free).
fn report(chan: Channel, stage: Stage, index: u32, errno: i32) {
    let _ = chan.send(
        &Msg::SetupFailed {
            stage: stage as u32,
            index,
            errno,
        },
        &[],
    );
}

fn launch(
    spec: &JailSpec,
    plan: &plan::Plan,
    prep: &Prepared,
    guard: Option<&outside::Outside>,
) -> Result<i32, SandboxError> {
    // The launcher's end and the jail's end: "go" goes in, a setup
    // failure report comes out; EOF once the program was exec'd.
    let (ours, jails) = Channel::pair()?;

    let mut flags = prep.clone_flags;
    let pid = loop {
        // SAFETY: a fork-like clone (no new stack): the child continues
        // here on a copy of our memory. We are single-threaded (checked).
        let pid = unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD, 0, 0, 0, 0) }
            as libc::pid_t;
        if pid < 0 && sys::errno() == libc::EINVAL && flags & libc::CLONE_NEWCGROUP != 0 {
            flags &= !libc::CLONE_NEWCGROUP;
            continue;
        }
        break pid;
    };
    if pid == 0 {
        ours.close();
        if let Some(g) = guard {
            g.chan.close();
        }
        child(prep, jails);
    }
    jails.close();
    if pid < 0 {
        let e = sys::errno();
        ours.close();
        return Err(SandboxError::Namespaces(diagnose::clone_failure(e)));
    }
    init::forward_signals_to(pid);

    if let Err(e) = write_maps(pid, spec.user.uid, spec.user.gid) {
        // Closing our end before "go" makes the child exit at once.
        ours.close();
        init::wait_for(pid, false);
        return Err(SandboxError::UidMap(diagnose::uid_map_failure(&e)));
    }
    if let Err(e) = prep.limits.attach(pid) {
        ours.close();
        init::wait_for(pid, false);
        return Err(e.into());
    }
    if let Some(g) = guard {
        // Before "go": the guard must know the jail before it can run
        // anything. Without pidfds it watches the pid.
        let pidfd = sys::pidfd_open(pid).ok();
        let sent = g.chan.send(&Msg::JailStarted { pid }, pidfd.as_slice());
        if let Some(fd) = pidfd {
            sys::close(fd);
        }
        if let Err(e) = sent {
            ours.close();
            init::wait_for(pid, false);
            return Err(e.into());
        }
    }
    let go = ours.send(&Msg::Go, &[]);
    let deadline = spec.limits.timeout.as_ref().map(|t| {
        (
            std::time::Instant::now() + std::time::Duration::from_secs(t.value),
            t.value,
        )
    });
    // One report, or EOF when the program was exec'd.
    let mut buf = [0u8; 64];
    let report = if go.is_ok() {
        ours.recv_small(&mut buf)
    } else {
        Ok(None)
    };
    ours.close();
    let code = match deadline {
        None => init::wait_for(pid, false),
        Some((at, secs)) => {
            let grace = std::time::Duration::from_secs(spec.limits.grace.value);
            match limits::wait(pid, at, grace) {
                limits::Ended::Exited(code) => code,
                limits::Ended::TimedOut { killed } => {
                    let how = if killed {
                        format!(
                            "SIGTERM, then SIGKILL after {}",
                            crate::config::limits::show_duration(spec.limits.grace.value)
                        )
                    } else {
                        "SIGTERM".to_string()
                    };
                    eprintln!(
                        "jail: timed out after {}: stopped every process of the jail ({how})",
                        crate::config::limits::show_duration(secs)
                    );
                    return Ok(EXIT_TIMEOUT);
                }
            }
        }
    };
    if let Ok(Some(Msg::SetupFailed {
        stage,
        index,
        errno,
    })) = report
    {
        let stage = Stage::from_u32(stage).unwrap_or(Stage::Step);
        if stage == Stage::Exec {
            let cmd = &spec.command[0];
            let what = match errno {
                libc::ENOENT | libc::ENOTDIR => "command not found in the jail".to_string(),
                e => diagnose::errno_text(e).to_lowercase(),
            };
            eprintln!("jail: {cmd}: {what}");
            return Ok(code);
        }
        return Err(SandboxError::Setup(diagnose::setup_failure(
            stage, index, errno, plan,
        )));
    }
    Ok(code)
}

fn write_maps(pid: libc::pid_t, uid: u32, gid: u32) -> std::io::Result<()> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    std::fs::write(base.join("uid_map"), format!("{uid} {uid} 1\n"))?;
    std::fs::write(base.join("setgroups"), "deny")?;
    std::fs::write(base.join("gid_map"), format!("{gid} {gid} 1\n"))
}

/// The jail's pid 1. Never returns.
fn child(prep: &Prepared, chan: Channel) -> ! {
    let fail = |stage: Stage, index: u32, errno: i32| -> ! {
        report(chan, stage, index, errno);
        sys::exit_now(125)
    };
    sys::die_with_parent(libc::SIGKILL);
    // EOF before "go": the launcher died or gave up (its death before
    // PDEATHSIG was set is caught here too).
    let mut buf = [0u8; 64];
    if chan.recv_small(&mut buf) != Ok(Some(Msg::Go)) {
        sys::exit_now(125);
    }
    if prep.limits.late_cgroupns() {
        // Now inside its own cgroup: that becomes the root of its view.
        // SAFETY: unshare with a flag only. Without cgroup namespaces the
        // jail only sees more of the hierarchy (read-only).
        unsafe { libc::unshare(libc::CLONE_NEWCGROUP) };
    }
    if let Err((stage, index, errno)) = exec::build_root(&prep.steps) {
        fail(stage, index, errno);
    }
    if prep.loopback {
        if let Err(e) = exec::loopback_up() {
            fail(Stage::Loopback, 0, e);
        }
    }
    // SAFETY: chdir on a prepared C string.
    if unsafe { libc::chdir(prep.cwd.as_ptr()) } != 0 {
        fail(Stage::Chdir, 0, sys::errno());
    }
    if let Err(errno) = prep.limits.apply_in_jail() {
        fail(Stage::Limits, 0, errno);
    }
    if let Err((part, errno)) = harden::apply(&prep.harden) {
        fail(Stage::Harden, part, errno);
    }
    // Nothing in the jail may ptrace or read the memory of pid 1.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };

    let pid = match sys::fork() {
        Ok(p) => p,
        Err(e) => fail(Stage::Fork, 0, e),
    };
    if pid == 0 {
        init::reset_signals();
        // SAFETY: mark every inherited fd but stdio close-on-exec, so the
        // program gets nothing from the host but its terminal/pipes.
        unsafe {
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            )
        };
        let mut err = libc::ENOENT;
        let mut denied = false;
        for c in &prep.candidates {
            // SAFETY: NULL-terminated pointer arrays of prepared strings
            // (built before the clone; `prep` outlives the call).
            unsafe { libc::execve(c.as_ptr(), prep.argv_ptrs.as_ptr(), prep.envp_ptrs.as_ptr()) };
            err = sys::errno();
            match err {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR => {}
                _ => break,
            }
        }
        if denied && (err == libc::ENOENT || err == libc::ENOTDIR) {
            err = libc::EACCES;
        }
        report(chan, Stage::Exec, 0, err);
        sys::exit_now(if err == libc::ENOENT || err == libc::ENOTDIR {
            127
        } else {
            126
        });
    }
    // pid 1 keeps no channel to the launcher.
    chan.close();
    init::forward_signals_to(pid);
    let code = init::wait_for(pid, true);
    // Exiting pid 1 kills everything left in the jail.
    sys::exit_now(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_path_order() {
        let c = candidates("ls", Some("/a:/b/"), Path::new("/w")).unwrap();
        assert_eq!(
            c,
            vec![
                CString::new("/a/ls").unwrap(),
                CString::new("/b/ls").unwrap()
            ]
        );
        let c = candidates("./x", Some("/a"), Path::new("/w")).unwrap();
        assert_eq!(c, vec![CString::new("/w/./x").unwrap()]);
        let c = candidates("/bin/true", None, Path::new("/w")).unwrap();
        assert_eq!(c, vec![CString::new("/bin/true").unwrap()]);
    }
}
