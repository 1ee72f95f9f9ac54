//! Mechanism: executes a `JailSpec`. The launcher (outside) clones the
//! jail's pid 1 into new user, mount, pid, ipc, uts, cgroup and network
//! namespaces, maps the user to itself, and waits. Pid 1 builds the
//! filesystem (plan → executor), hardens itself, forks the program and
//! reaps. Everything the children need is prepared before the clone.

pub mod diagnose;
pub mod exec;
mod guard;
pub mod init;
pub mod plan;
pub mod protect;

use std::ffi::{CString, NulError};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::config::spec::NetMode;
use crate::config::JailSpec;
use crate::harden;
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
}

/// What the children need, built before the clone (no allocation after).
struct Prepared {
    steps: Vec<exec::Prepared>,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// Full paths to try in order (PATH search done here, run inside).
    candidates: Vec<CString>,
    cwd: CString,
    loopback: bool,
    clone_flags: libc::c_int,
    harden: harden::Prepared,
}

/// Runs the jail and returns the exit status for `jail` itself.
/// `state` is jail's state directory (~/.local/state/jail), where created
/// protected paths are quarantined.
pub fn run(spec: &JailSpec, env: &[(String, String)], state: &Path) -> Result<i32, SandboxError> {
    let plan = plan::plan(spec);
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
    let prep = Prepared {
        steps: exec::prepare(&plan.steps)?,
        candidates: candidates(&spec.command[0], path_var, &spec.cwd)?,
        argv,
        envp,
        cwd: CString::new(spec.cwd.as_os_str().as_bytes())?,
        loopback: spec.network.mode.value != NetMode::Host,
        // `host` shares the host's network namespace; every other mode
        // gets a fresh one with only loopback.
        clone_flags: if spec.network.mode.value == NetMode::Host {
            NS_FLAGS & !libc::CLONE_NEWNET
        } else {
            NS_FLAGS
        },
        harden: harden::prepare(spec, &plan)?,
    };
    // Every fork below (guard, jail) needs a single-threaded process.
    let threads = thread_count();
    if threads != 1 {
        return Err(SandboxError::Threads(threads));
    }
    let guard = guard::Guard::spawn(&plan, &spec.project.value, state)?;
    let code = launch(spec, &plan, &prep, guard.as_ref().map(|g| g.write));
    if let Some(g) = guard {
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

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1)
}

/// Namespaces of the jail. The cgroup namespace is dropped on kernels
/// that lack it.
const NS_FLAGS: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP;

fn pipe() -> Result<(libc::c_int, libc::c_int), std::io::Error> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

/// A setup failure as the child reports it: stage, index, errno.
const REPORT_LEN: usize = 12;

fn report(fd: libc::c_int, stage: Stage, index: u32, errno: i32) {
    let mut buf = [0u8; REPORT_LEN];
    buf[..4].copy_from_slice(&(stage as u32).to_ne_bytes());
    buf[4..8].copy_from_slice(&index.to_ne_bytes());
    buf[8..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: writing a stack buffer to a pipe; a short write is harmless.
    unsafe { libc::write(fd, buf.as_ptr().cast(), REPORT_LEN) };
}

fn launch(
    spec: &JailSpec,
    plan: &plan::Plan,
    prep: &Prepared,
    guard_write: Option<libc::c_int>,
) -> Result<i32, SandboxError> {
    let (sync_r, sync_w) = pipe()?;
    let (err_r, err_w) = pipe()?;

    let mut flags = prep.clone_flags;
    let pid = loop {
        // SAFETY: a fork-like clone (no new stack): the child continues
        // here on a copy of our memory. We are single-threaded (checked).
        let pid = unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD, 0, 0, 0, 0) }
            as libc::pid_t;
        if pid < 0 && exec::errno() == libc::EINVAL && flags & libc::CLONE_NEWCGROUP != 0 {
            flags &= !libc::CLONE_NEWCGROUP;
            continue;
        }
        break pid;
    };
    if pid == 0 {
        // SAFETY: closing our copies of the parent's pipe ends.
        unsafe {
            libc::close(sync_w);
            libc::close(err_r);
        }
        child(prep, sync_r, err_w);
    }
    // SAFETY: closing the child's pipe ends in the parent.
    unsafe {
        libc::close(sync_r);
        libc::close(err_w);
    }
    if let Some(fd) = guard_write {
        // SAFETY: only pid 1 holds the guard's pipe from now on.
        unsafe { libc::close(fd) };
    }
    if pid < 0 {
        let e = exec::errno();
        unsafe { libc::close(sync_w) };
        return Err(SandboxError::Namespaces(diagnose::clone_failure(e)));
    }
    init::forward_signals_to(pid);

    if let Err(e) = write_maps(pid, spec.user.uid, spec.user.gid) {
        // SAFETY: closing the go pipe makes the child exit at once.
        unsafe { libc::close(sync_w) };
        init::wait_for(pid, false);
        return Err(SandboxError::UidMap(diagnose::uid_map_failure(&e)));
    }
    // SAFETY: one byte from a static buffer, then close: "go".
    unsafe {
        libc::write(sync_w, b"g".as_ptr().cast(), 1);
        libc::close(sync_w);
    }

    // Read one report, or EOF when the program was exec'd.
    let mut buf = [0u8; REPORT_LEN];
    let n = loop {
        // SAFETY: reading into a stack buffer.
        let n = unsafe { libc::read(err_r, buf.as_mut_ptr().cast(), REPORT_LEN) };
        if n < 0 && exec::errno() == libc::EINTR {
            continue;
        }
        break n;
    };
    unsafe { libc::close(err_r) };
    let code = init::wait_for(pid, false);
    if n as usize == REPORT_LEN {
        let stage = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let index = u32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let errno = i32::from_ne_bytes([buf[8], buf[9], buf[10], buf[11]]);
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
fn child(prep: &Prepared, sync_r: libc::c_int, err_w: libc::c_int) -> ! {
    let fail = |stage: Stage, index: u32, errno: i32| -> ! {
        report(err_w, stage, index, errno);
        // SAFETY: _exit skips destructors and atexit handlers, as a forked
        // child must.
        unsafe { libc::_exit(125) }
    };
    // SAFETY: prctl and read with a stack buffer.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        let mut b = [0u8; 1];
        // EOF before "go": the launcher died or gave up (its death before
        // PDEATHSIG was set is caught here too).
        if libc::read(sync_r, b.as_mut_ptr().cast(), 1) != 1 {
            libc::_exit(125);
        }
        libc::close(sync_r);
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
        fail(Stage::Chdir, 0, exec::errno());
    }
    if let Err((part, errno)) = harden::apply(&prep.harden) {
        fail(Stage::Harden, part, errno);
    }
    // Nothing in the jail may ptrace or read the memory of pid 1.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };

    // The pointer arrays are built here, on prepared strings: Vec::with_capacity
    // would allocate, so they live in fixed stack arrays.
    let mut argv = [std::ptr::null::<libc::c_char>(); 4096];
    let mut envp = [std::ptr::null::<libc::c_char>(); 4096];
    if prep.argv.len() >= argv.len() || prep.envp.len() >= envp.len() {
        fail(Stage::Exec, 0, libc::E2BIG);
    }
    for (i, a) in prep.argv.iter().enumerate() {
        argv[i] = a.as_ptr();
    }
    for (i, e) in prep.envp.iter().enumerate() {
        envp[i] = e.as_ptr();
    }

    // SAFETY: fork in a single-threaded process.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        fail(Stage::Fork, 0, exec::errno());
    }
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
            // SAFETY: NUL-terminated pointer arrays of prepared strings.
            unsafe { libc::execve(c.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
            err = exec::errno();
            match err {
                libc::EACCES => denied = true,
                libc::ENOENT | libc::ENOTDIR => {}
                _ => break,
            }
        }
        if denied && (err == libc::ENOENT || err == libc::ENOTDIR) {
            err = libc::EACCES;
        }
        report(err_w, Stage::Exec, 0, err);
        let code = if err == libc::ENOENT || err == libc::ENOTDIR {
            127
        } else {
            126
        };
        // SAFETY: see above.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: pid 1 keeps no pipe to the launcher.
    unsafe { libc::close(err_w) };
    init::forward_signals_to(pid);
    let code = init::wait_for(pid, true);
    // SAFETY: exiting pid 1 kills everything left in the jail.
    unsafe { libc::_exit(code) }
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
