//! The launcher: executes a `JailSpec`. Runs in `jail` itself, on the
//! host, as the user, up to its clone: it prepares everything (plan →
//! `pid1::Prepared`: mount steps, hardening, network steps, C strings;
//! the processes outside), clones the jail's pid 1 into new user, mount,
//! pid, ipc, uts, cgroup and network namespaces, maps the user to itself,
//! says "go", and waits (`wait`), then explains a setup failure
//! (`diagnose`, `hint`) and reports what was left. The code that runs
//! after the clone, in pid 1 and in the program's child, is `pid1`'s.

pub mod diagnose;
pub mod hint;
pub mod limits;
pub mod wait;

use std::ffi::{CString, NulError};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::config::spec::NetMode;
use crate::config::JailSpec;
use crate::harden;
use crate::outside::{self, Channel, Msg, OnDemand};
use crate::plan::{self, protect};
// pid 1 and the program's child run code of `pid1` (cloned from here).
use crate::pid1::{self, exec, net};
// Waiting and signal forwarding, shared with pid 1 (`reap`).
use crate::reap as init;
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
    #[error("network: {0}")]
    Network(String),
    #[error(transparent)]
    Limits(#[from] limits::LimitsError),
}

pub use crate::plan::OverlayDirs;

/// What a run adds to the policy (the Slurm job wrapper uses it): files
/// pid 1 writes into the jail, and the program's standard streams opened
/// inside the jail.
#[derive(Debug, Default)]
pub struct Extra {
    /// (jail path, contents, mode), written by pid 1 before hardening,
    /// never over an existing file.
    pub files: Vec<(PathBuf, Vec<u8>, u32)>,
    pub stdio: Vec<Redirect>,
    /// A host directory shown at /dev/shm instead of the jail's own (the
    /// tasks of one Slurm step on a node share it: `Plan::share_shm`).
    pub shm: Option<PathBuf>,
    /// The pid the program gets in the jail's pid namespace (instead of
    /// 2): tasks of a step on one node then have distinct pids, which
    /// Open MPI's shared memory tells its peers apart by.
    pub program_pid: Option<u32>,
    /// A Slurm task under cluster networks: the connect supervisor's
    /// rules (`outside::connect`); pid 1 installs `harden::notify`.
    pub connect: Option<outside::connect::Config>,
}

/// One of the program's standard streams, opened by its own process
/// inside the jail just before exec (so the jail's view and Landlock
/// decide what it may name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub path: PathBuf,
    pub write: bool,
    pub append: bool,
    /// The fds it becomes (0, 1, 2).
    pub fds: Vec<i32>,
}

/// Everything built before the clone: what pid 1 and the program's child
/// consume (`jail`, no allocation after the clone) and what the launcher
/// keeps for itself.
struct Prepared {
    jail: pid1::Prepared,
    /// The jail's PATH (for the launcher's hint when the exec fails).
    path: Option<String>,
    clone_flags: libc::c_int,
    /// The cgroup side of the limits (pid 1's side is `jail.limits`).
    limits: limits::Prepared,
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
    run_with(spec, env, state, overlay, Extra::default())
}

/// `run` with extra files and redirections (Slurm jobs).
pub fn run_with(
    spec: &JailSpec,
    env: &[(String, String)],
    state: &Path,
    overlay: Option<&OverlayDirs>,
    extra: Extra,
) -> Result<i32, SandboxError> {
    // The tmpfs size is probed here unless the caller did (`jail` does,
    // for explain; a Slurm job's launcher does not).
    let resolved;
    let spec = if spec.limits.tmpfs.is_none() {
        let mut s = spec.clone();
        s.limits.tmpfs = Some(limits::tmpfs(&spec.limits));
        resolved = s;
        &resolved
    } else {
        spec
    };
    let mut plan = plan::for_run(spec, crate::host::terminal().as_deref(), overlay);
    if let Some(dir) = &extra.shm {
        plan.share_shm(dir);
    }
    for s in &plan.steps {
        tracing::debug!("plan: {}", s.describe());
    }
    // jail's own storage (persistent home, caches' layers), as the user.
    for d in plan::storage_dirs(&plan, spec) {
        crate::storage::make_dir(&d)
            .map_err(|e| SandboxError::Setup(format!("cannot create {}: {e}", d.display())))?;
    }
    let netplan = plan::net::plan(&spec.network);
    for s in &netplan.steps {
        tracing::debug!("network: {}", s.describe());
    }
    let helper_config = if netplan.helper() {
        let mut c =
            outside::net::config(spec, &netplan, helper_level()).map_err(SandboxError::Network)?;
        c.state = Some(state.to_path_buf());
        Some(c)
    } else {
        None
    };
    let argv: Vec<CString> = spec
        .command
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let envp: Vec<CString> = env
        .iter()
        .chain(plan.env.iter())
        .map(|(k, v)| CString::new(format!("{k}={v}")))
        .collect::<Result<_, _>>()?;
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str());
    let (limits, jail_limits) = limits::Prepared::new(&spec.limits)?;
    let mut clone_flags = if spec.network.mode.value == NetMode::Host {
        NS_FLAGS & !libc::CLONE_NEWNET
    } else {
        NS_FLAGS
    };
    if limits.late_cgroupns() {
        // pid 1 makes it after the move into its cgroup (its root then).
        clone_flags &= !libc::CLONE_NEWCGROUP;
    }
    let jail = pid1::Prepared {
        steps: exec::prepare(&plan.steps)?,
        candidates: candidates(&spec.command[0], path_var, &spec.cwd)?,
        argv_ptrs: Vec::with_capacity(argv.len() + 1),
        envp_ptrs: Vec::with_capacity(envp.len() + 1),
        argv,
        envp,
        cwd: CString::new(spec.cwd.as_os_str().as_bytes())?,
        // `host` shares the host's network namespace; every other mode
        // gets a fresh one with only loopback.
        loopback: spec.network.mode.value != NetMode::Host,
        harden: harden::prepare(&plan)?,
        files: extra
            .files
            .into_iter()
            .map(|(p, c, m)| Ok((CString::new(p.as_os_str().as_bytes())?, c, m)))
            .collect::<Result<_, NulError>>()?,
        last_pid: extra
            .program_pid
            .filter(|&n| n > 2)
            .map(|n| CString::new((n - 1).to_string()))
            .transpose()?,
        redirects: extra
            .stdio
            .into_iter()
            .map(|r| {
                let flags = if r.write {
                    libc::O_WRONLY
                        | libc::O_CREAT
                        | if r.append {
                            libc::O_APPEND
                        } else {
                            libc::O_TRUNC
                        }
                } else {
                    libc::O_RDONLY
                } | libc::O_CLOEXEC;
                Ok(pid1::prepared::Stream {
                    path: CString::new(r.path.as_os_str().as_bytes())?,
                    flags,
                    fds: r.fds,
                })
            })
            .collect::<Result<_, NulError>>()?,
        limits: jail_limits,
        net: net::prepare(&netplan),
        notify: extra
            .connect
            .as_ref()
            .map(|_| crate::harden::notify::program()),
    };
    let prep = Prepared {
        jail: jail.with_pointers(),
        path: path_var.map(String::from),
        clone_flags,
        limits,
    };
    // Every fork below (processes outside, the jail) needs a
    // single-threaded process.
    let threads = sys::thread_count();
    if threads != 1 {
        return Err(SandboxError::Threads(threads));
    }
    // The network helper first: it starts (exec, reads its configuration)
    // while the jail is being built. Under `none` it only answers names
    // "no such name": it starts on the first query (`outside::OnDemand`).
    let mut net_lazy = None;
    let mut helper = match helper_config {
        Some(c) if spec.network.mode.value == NetMode::None => {
            net_lazy = Some(outside::net::Pending::new(c)?);
            None
        }
        Some(c) => Some(outside::net::Helper::start(outside::Start::Exec, &c)?),
        None => None,
    };
    // The connect supervisor (a Slurm task under cluster networks): pid 1
    // sends it the listener of the filter it installs.
    let (supervisor, connect_chan) = match &extra.connect {
        Some(c) => {
            let s = outside::connect::start(c)?;
            (Some(s.pid), Some(s.chan))
        }
        None => (None, None),
    };
    // Whenever the jail can write to the host, the guard checks at exit
    // what was created there (protected paths, new git directories).
    let guard = if plan.writable.is_empty() {
        None
    } else {
        // An earlier run's check cut short (jail or guard killed) is
        // finished before this run can change anything.
        outside::guard::finish_pending(state, &spec.project.value);
        let g = outside::spawn(outside::Role::Guard, outside::Start::Fork)?;
        g.chan.send(
            &outside::Msg::Guard(outside::guard::Config {
                project: spec.project.value.clone(),
                quarantine: protect::quarantine_dir(state, &spec.project.value),
                protected: plan.protected.clone(),
                gitdirs: plan.gitdirs.clone(),
                writable: plan.writable.clone(),
                since: outside::guard::start_time(),
                persist: match (spec.filesystem.home.value, &spec.filesystem.storage) {
                    (crate::config::spec::HomeMode::Persist, Some(st)) => {
                        Some((crate::storage::home_dir(st), spec.user.home.clone()))
                    }
                    _ => None,
                },
                home_mounts: plan
                    .steps
                    .iter()
                    .filter_map(|s| s.dest().strip_prefix(&spec.user.home).ok())
                    .filter(|r| !r.as_os_str().is_empty())
                    .map(PathBuf::from)
                    .collect(),
                pending: Some(outside::guard::pending_dir(state, &spec.project.value)),
                kept: plan.kept.clone(),
            }),
            &[],
        )?;
        Some(g)
    };
    // The Slurm chaperon starts only when a stub first connects.
    let mut slurm = if spec.slurm.enabled.value {
        Some(outside::chaperon::Pending::new(spec, env, state)?)
    } else {
        None
    };
    // pid 1's ends, handed over: `launch` gives them to pid 1 and closes
    // the launcher's copies.
    let links = Links {
        helper: helper
            .as_mut()
            .and_then(|h| h.chan.take())
            .or_else(|| net_lazy.as_mut().and_then(|n| n.take_jail_end())),
        chaperon: slurm.as_mut().and_then(|s| s.take_jail_end()),
        connect: connect_chan,
    };
    let mut lazy: Vec<&mut dyn outside::OnDemand> = Vec::new();
    if let Some(s) = slurm.as_mut() {
        lazy.push(s);
    }
    // A helper that dies while the program runs is reported.
    let mut net_watch = helper
        .as_ref()
        .map(|h| outside::net::Watch::new(h.pid, state));
    if let Some(w) = net_watch.as_mut() {
        lazy.push(w);
    }
    if let Some(n) = net_lazy.as_mut() {
        lazy.push(n);
    }
    let code = launch(
        spec,
        &plan,
        &netplan,
        &prep,
        guard.as_ref(),
        links,
        &mut lazy,
    );
    for m in prep.limits.finish() {
        eprintln!("jail: {m}");
    }
    // The chaperon stops what it still runs for the jail.
    if let Some(s) = slurm.as_mut() {
        s.finish();
    }
    if let Some(g) = guard {
        // Nothing more for it (a guard still waiting for the jail's start
        // sees EOF and ends). It is done when it closes its end (after its
        // check, before its exit): its one-line message comes before the
        // shell's next prompt.
        // SAFETY: shutdown of a socket we own.
        unsafe { libc::shutdown(g.chan.as_raw_fd(), libc::SHUT_WR) };
        // Bounded: a check that takes longer goes on alone (it is
        // recorded, and the next start here finishes it if it is cut).
        if sys::poll_in(g.chan.as_raw_fd(), GUARD_WAIT_MS) == Ok(0) {
            eprintln!(
                "jail: WARNING: the exit check (created git files, protected paths) did not \
                 finish within {} s; it goes on in the background (pid {}), and if it is cut \
                 short the next jail started here finishes it; until then do not run git here",
                GUARD_WAIT_MS / 1000,
                g.pid
            );
        }
        drop(g.chan);
        // Reaped here if already gone, else by init once jail exits.
        // SAFETY: waitpid on our own child, no status wanted.
        unsafe { libc::waitpid(g.pid, std::ptr::null_mut(), libc::WNOHANG) };
    }
    if let Some(n) = net_lazy.as_mut() {
        n.finish();
    }
    if let Some(w) = net_watch.as_mut() {
        w.finish();
    }
    if let Some(h) = helper {
        // Its channel was closed by `launch`: it ends with the jail (EOF).
        h.finish();
    }
    if let Some(pid) = supervisor {
        // Its channel went to pid 1 (`launch`): it ends at pid 1's EOF.
        // SAFETY: waitpid on our own child, no status wanted.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    }
    code
}

/// The channels pid 1 uses to reach processes outside the jail; they go
/// to pid 1 through the clone and the launcher drops its copies right
/// after, so each peer sees EOF exactly when pid 1 is gone.
#[derive(Debug, Default)]
struct Links {
    /// The network helper's (or, under `none`, the launcher's for it).
    helper: Option<Channel>,
    /// The launcher's for the Slurm chaperon.
    chaperon: Option<Channel>,
    /// The connect supervisor's (cluster networks).
    connect: Option<Channel>,
}

/// How much the network helper says, following jail's own -q/-v.
fn helper_level() -> outside::net::report::Level {
    use outside::net::report::Level;
    if tracing::enabled!(tracing::Level::INFO) {
        Level::Verbose
    } else if tracing::enabled!(tracing::Level::WARN) {
        Level::Normal
    } else {
        Level::Quiet
    }
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

/// How long the launcher waits for the guard's check after the jail
/// ended before it returns anyway.
const GUARD_WAIT_MS: i32 = 60_000;

pub use crate::exit::EXIT_TIMEOUT;

/// Namespaces of the jail. The cgroup namespace is dropped on kernels
/// that lack it.
const NS_FLAGS: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP;

/// `links` go to pid 1 through the clone and are closed here (dropped, on
/// every path); `lazy`: the processes outside started on first use.
fn launch(
    spec: &JailSpec,
    plan: &plan::Plan,
    netplan: &plan::net::NetPlan,
    prep: &Prepared,
    guard: Option<&outside::Outside>,
    links: Links,
    lazy: &mut [&mut dyn outside::OnDemand],
) -> Result<i32, SandboxError> {
    // The launcher's end and the jail's end: "go" goes in, a setup
    // failure report comes out; EOF once the program was exec'd.
    let (ours, jails) = Channel::pair()?;
    // pid 1 → launcher: the processes that outlived the program.
    let (left_ours, left_jails) = Channel::pair()?;

    let mut flags = prep.clone_flags;
    // Signals sent from here on wait until someone can forward them.
    init::block_forwarded();
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
        // pid 1 (its own copy of the fd table and of this memory): its
        // copies of the launcher's ends are closed; each value dropped
        // here is pid 1's copy, the launcher drops its own below. From
        // here on it runs `pid1::main`, which never returns.
        drop(ours);
        drop(left_ours);
        if let Some(g) = guard {
            // By number: the guard's `Outside` is borrowed, and this copy
            // of it is never dropped (`pid1::main::run` never returns; pid
            // 1 ends in _exit), so the fd is closed once.
            sys::close(g.chan.as_raw_fd());
        }
        for l in lazy.iter_mut() {
            l.close_launcher_end();
        }
        pid1::main::run(
            &prep.jail,
            jails,
            left_jails,
            links.chaperon,
            links.helper,
            links.connect,
        );
    }
    drop(jails);
    drop(left_jails);
    if let (Some(c), true) = (&links.connect, pid > 0) {
        // The connect supervisor takes its listener from pid 1's fds.
        // A failure shows in pid 1, which waits for the supervisor.
        let pidfd = sys::pidfd_open(pid).ok();
        let _ = c.send(&Msg::ConnectJail { pid }, pidfd.as_slice());
        if let Some(fd) = pidfd {
            sys::close(fd);
        }
    }
    // Pid 1 alone holds these now: their EOF is the jail's end.
    drop(links);
    if pid < 0 {
        let e = sys::errno();
        init::unblock_forwarded();
        return Err(SandboxError::Namespaces(diagnose::clone_failure(e)));
    }
    init::forward_signals_to(pid);

    if let Err(e) = write_maps(pid, spec.user.uid, spec.user.gid) {
        // Closing our end before "go" makes the child exit at once.
        drop(ours);
        drop(left_ours);
        init::wait_for(pid, false);
        return Err(SandboxError::UidMap(diagnose::uid_map_failure(&e)));
    }
    if let Err(e) = prep.limits.attach(pid) {
        drop(ours);
        drop(left_ours);
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
            drop(ours);
            drop(left_ours);
            init::wait_for(pid, false);
            return Err(e.into());
        }
    }
    let go = ours.send(&Msg::Go, &[]);
    // (when to stop the jail, the grace between SIGTERM and SIGKILL)
    let deadline = spec.limits.timeout.as_ref().map(|t| {
        (
            std::time::Instant::now() + std::time::Duration::from_secs(t.value),
            std::time::Duration::from_secs(spec.limits.grace.value),
        )
    });
    // One report, or EOF when the program was exec'd.
    let mut buf = [0u8; 64];
    let report = if go.is_ok() {
        ours.recv_small_as::<outside::channel::SetupReport>(&mut buf)
    } else {
        Ok(None)
    };
    drop(ours);
    // pid 1 is waited for with the timeout, if any; processes outside
    // start on first use meanwhile.
    let ended = wait::jail(pid, deadline, lazy);
    let leftovers = read_leftovers(left_ours);
    let code = match ended {
        limits::Ended::Exited(code) => code,
        limits::Ended::TimedOut { killed } => {
            let secs = spec.limits.timeout.as_ref().map(|t| t.value).unwrap_or(0);
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
    };
    // A report that is not a setup failure (EPROTO) fails closed: the
    // launcher says so and the run is an error, whatever pid 1's status.
    if report == Err(libc::EPROTO) {
        return Err(SandboxError::Setup(
            "pid 1 sent a setup report the launcher does not take".into(),
        ));
    }
    if let Ok(Some(outside::channel::SetupReport::Failed {
        stage,
        index,
        errno,
    })) = report
    {
        if stage == Stage::Stdio {
            let path = prep
                .jail
                .redirects
                .get(index as usize)
                .map(|r| r.path.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Err(SandboxError::Setup(format!(
                "cannot open {path} inside the jail: {}",
                diagnose::errno_text(errno)
            )));
        }
        if stage == Stage::Network {
            return Err(SandboxError::Setup(plan::net::failure(
                netplan, index, errno,
            )));
        }
        if stage == Stage::Exec {
            // Whether the jail is the cause, from host facts (the child
            // only said which candidate existed inside).
            let candidates: Vec<PathBuf> = prep
                .jail
                .candidates
                .iter()
                .map(|c| PathBuf::from(std::ffi::OsStr::from_bytes(c.as_bytes())))
                .collect();
            let hidden: Vec<PathBuf> = spec
                .filesystem
                .hide
                .iter()
                .map(|h| h.value.clone())
                .collect();
            let (msg, _) = hint::exec_failure(
                &hint::ExecFailure {
                    cmd: &spec.command[0],
                    candidates: &candidates,
                    found_inside: index,
                    errno,
                    path: prep.path.as_deref(),
                    cwd: &spec.cwd,
                    home: &spec.user.home,
                    hidden: &hidden,
                },
                plan,
            );
            eprintln!("jail: {msg}");
            return Ok(code);
        }
        return Err(SandboxError::Setup(diagnose::setup_failure(
            stage, index, errno, plan,
        )));
    }
    // At exit, so never into a program that owns the terminal; -q hides it.
    if let Some(line) = leftovers {
        if tracing::enabled!(tracing::Level::WARN) {
            eprintln!("jail: {line}");
        }
    }
    Ok(code)
}

/// The launcher, once pid 1 is gone: pid 1's report of the processes
/// that outlived the program, as a line. Never waits (pid 1's end is
/// closed, so the report is there or never comes).
fn read_leftovers(chan: Channel) -> Option<String> {
    let _ = sys::net::set_nonblocking(chan.as_raw_fd());
    let mut buf = [0u8; 256];
    match chan.recv_small_as(&mut buf) {
        Ok(Some(outside::channel::LeftoversReport::Leftovers { total, pids, names })) => {
            let named: Vec<(i32, [u8; 16])> = pids.into_iter().zip(names).collect();
            init::leftovers_line(total, &named)
        }
        Err(libc::EPROTO) => {
            Some("pid 1 sent a report of leftover processes the launcher does not take".into())
        }
        _ => None,
    }
}

fn write_maps(pid: libc::pid_t, uid: u32, gid: u32) -> std::io::Result<()> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    std::fs::write(base.join("uid_map"), format!("{uid} {uid} 1\n"))?;
    std::fs::write(base.join("setgroups"), "deny")?;
    std::fs::write(base.join("gid_map"), format!("{gid} {gid} 1\n"))
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
