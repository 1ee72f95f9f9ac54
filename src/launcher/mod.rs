//! The launcher: executes a `JailSpec`. Runs in `jail` itself, on the
//! host: it prepares everything (plan → prepared steps, hardening, the
//! processes outside), clones the jail's pid 1 into new user, mount, pid,
//! ipc, uts, cgroup and network namespaces, maps the user to itself, and
//! waits (`wait`). `child` runs in pid 1 after the clone (it builds the
//! filesystem with `pid1::exec`, hardens itself, forks the program and
//! reaps) and `spawn_program` in the program's child: both only make
//! async-signal-safe calls on what was prepared here.

pub mod diagnose;
pub mod hint;
pub mod limits;
pub mod wait;

use std::ffi::{CString, NulError};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::config::spec::NetMode;
use crate::config::JailSpec;
use crate::harden;
use crate::outside::{self, Channel, Msg, OnDemand};
use crate::plan::{self, protect};
// pid 1 and the program's child run code of `pid1` (forked from here).
use crate::pid1::{exec, net};
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
    /// Inherited fds the program keeps (a Slurm task's PMI socket);
    /// every other fd above 2 is closed at its exec.
    pub keep_fds: Vec<i32>,
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

/// `Redirect` as the program's child uses it (prepared before fork).
struct PreparedRedirect {
    path: CString,
    flags: libc::c_int,
    fds: Vec<i32>,
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
    /// The jail's PATH (for the launcher's hint when the exec fails).
    path: Option<String>,
    cwd: CString,
    loopback: bool,
    clone_flags: libc::c_int,
    harden: harden::Prepared,
    files: Vec<(CString, Vec<u8>, u32)>,
    redirects: Vec<PreparedRedirect>,
    keep_fds: Vec<i32>,
    limits: limits::Prepared,
    /// The network steps pid 1 runs (routes, sockets, handoff).
    net: net::Prepared,
    /// The connect supervisor's filter (cluster networks), installed by
    /// pid 1 after its hardening.
    notify: Option<seccompiler::BpfProgram>,
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
    let plan = plan::for_run(spec, crate::host::terminal().as_deref(), overlay);
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
        path: path_var.map(String::from),
        argv_ptrs: Vec::with_capacity(argv.len() + 1),
        envp_ptrs: Vec::with_capacity(envp.len() + 1),
        argv,
        envp,
        cwd: CString::new(spec.cwd.as_os_str().as_bytes())?,
        loopback: spec.network.mode.value != NetMode::Host,
        // `host` shares the host's network namespace; every other mode
        // gets a fresh one with only loopback.
        clone_flags,
        harden: harden::prepare(&plan)?,
        files: extra
            .files
            .into_iter()
            .map(|(p, c, m)| Ok((CString::new(p.as_os_str().as_bytes())?, c, m)))
            .collect::<Result<_, NulError>>()?,
        keep_fds: extra.keep_fds,
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
                Ok(PreparedRedirect {
                    path: CString::new(r.path.as_os_str().as_bytes())?,
                    flags,
                    fds: r.fds,
                })
            })
            .collect::<Result<_, NulError>>()?,
        limits,
        net: net::prepare(&netplan),
        notify: extra
            .connect
            .as_ref()
            .map(|_| crate::harden::notify::program()),
    };
    let prep = prep.with_pointers();
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
    let helper = match helper_config {
        Some(c) if spec.network.mode.value == NetMode::None => {
            net_lazy = Some(outside::net::Pending::new(c)?);
            None
        }
        Some(c) => Some(outside::net::Helper::start(outside::Start::Exec, &c)?),
        None => None,
    };
    // The connect supervisor (a Slurm task under cluster networks): pid 1
    // sends it the listener of the filter it installs.
    let supervisor = match &extra.connect {
        Some(c) => Some(outside::connect::start(c)?),
        None => None,
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
    let links = Links {
        helper: helper
            .as_ref()
            .map(|h| h.proc.chan)
            .or(net_lazy.as_ref().map(|n| n.ends().1)),
        chaperon: slurm.as_ref().map(|s| s.ends().1),
        connect: supervisor.as_ref().map(|s| s.chan),
    };
    let mut lazy: Vec<&mut dyn outside::OnDemand> = Vec::new();
    if let Some(s) = slurm.as_mut() {
        lazy.push(s);
    }
    // A helper that dies while the program runs is reported.
    let mut net_watch = helper
        .as_ref()
        .map(|h| outside::net::Watch::new(h.proc.pid, state));
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
        unsafe { libc::shutdown(g.chan.0, libc::SHUT_WR) };
        // Bounded: a check that takes longer goes on alone (it is
        // recorded, and the next start here finishes it if it is cut).
        if sys::poll_in(g.chan.0, GUARD_WAIT_MS) == Ok(0) {
            eprintln!(
                "jail: WARNING: the exit check (created git files, protected paths) did not \
                 finish within {} s; it goes on in the background (pid {}), and if it is cut \
                 short the next jail started here finishes it; until then do not run git here",
                GUARD_WAIT_MS / 1000,
                g.pid
            );
        }
        g.chan.close();
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
    if let Some(s) = supervisor {
        // Its channel was closed by `launch`: it ends at pid 1's EOF.
        // SAFETY: waitpid on our own child, no status wanted.
        unsafe { libc::waitpid(s.pid, std::ptr::null_mut(), 0) };
    }
    code
}

/// The channels pid 1 uses to reach processes outside the jail; the
/// launcher closes its copies right after the clone, so each peer sees
/// EOF exactly when pid 1 is gone.
#[derive(Debug, Clone, Copy, Default)]
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

/// Reports a setup failure to the launcher (allocation-free).
fn report(chan: Channel, stage: Stage, index: u32, errno: i32) {
    let _ = chan.send(
        &Msg::SetupFailed {
            stage,
            index,
            errno,
        },
        &[],
    );
}

/// `links` go to pid 1 through the clone and are closed here (on every
/// path); `lazy`: the processes outside started on first use.
fn launch(
    spec: &JailSpec,
    plan: &plan::Plan,
    netplan: &plan::net::NetPlan,
    prep: &Prepared,
    guard: Option<&outside::Outside>,
    links: Links,
    lazy: &mut [&mut dyn outside::OnDemand],
) -> Result<i32, SandboxError> {
    let close_links = || {
        for c in [links.helper, links.chaperon, links.connect]
            .into_iter()
            .flatten()
        {
            c.close();
        }
    };
    // The launcher's end and the jail's end: "go" goes in, a setup
    // failure report comes out; EOF once the program was exec'd.
    let (ours, jails) = match Channel::pair() {
        Ok(p) => p,
        Err(e) => {
            close_links();
            return Err(e.into());
        }
    };

    // pid 1 → launcher: the processes that outlived the program.
    let (left_ours, left_jails) = match Channel::pair() {
        Ok(p) => p,
        Err(e) => {
            close_links();
            ours.close();
            jails.close();
            return Err(e.into());
        }
    };

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
        ours.close();
        left_ours.close();
        if let Some(g) = guard {
            g.chan.close();
        }
        for l in lazy.iter() {
            l.ends().0.close();
        }
        child(prep, jails, left_jails, links);
    }
    jails.close();
    left_jails.close();
    if let (Some(c), true) = (links.connect, pid > 0) {
        // The connect supervisor takes its listener from pid 1's fds.
        // A failure shows in pid 1, which waits for the supervisor.
        let pidfd = sys::pidfd_open(pid).ok();
        let _ = c.send(&Msg::ConnectJail { pid }, pidfd.as_slice());
        if let Some(fd) = pidfd {
            sys::close(fd);
        }
    }
    // Pid 1 alone holds these now: their EOF is the jail's end.
    close_links();
    if pid < 0 {
        let e = sys::errno();
        init::unblock_forwarded();
        ours.close();
        left_ours.close();
        return Err(SandboxError::Namespaces(diagnose::clone_failure(e)));
    }
    init::forward_signals_to(pid);

    if let Err(e) = write_maps(pid, spec.user.uid, spec.user.gid) {
        // Closing our end before "go" makes the child exit at once.
        ours.close();
        left_ours.close();
        init::wait_for(pid, false);
        return Err(SandboxError::UidMap(diagnose::uid_map_failure(&e)));
    }
    if let Err(e) = prep.limits.attach(pid) {
        ours.close();
        left_ours.close();
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
            left_ours.close();
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
    ours.close();
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
    let _ = sys::net::set_nonblocking(chan.0);
    let mut buf = [0u8; 256];
    let line = match chan.recv_small_as(&mut buf) {
        Ok(Some(outside::channel::LeftoversReport::Leftovers { total, pids, names })) => {
            let named: Vec<(i32, [u8; 16])> = pids.into_iter().zip(names).collect();
            init::leftovers_line(total, &named)
        }
        Err(libc::EPROTO) => {
            Some("pid 1 sent a report of leftover processes the launcher does not take".into())
        }
        _ => None,
    };
    chan.close();
    line
}

/// pid 1, once the program has ended: tells the launcher which processes
/// are still running (they end with pid 1). Allocation-free.
fn report_leftovers(chan: Channel) {
    use crate::outside::channel::LEFTOVERS_NAMED;
    let mut total = 0u32;
    let mut pids = [0i32; LEFTOVERS_NAMED];
    let mut names = [[0u8; 16]; LEFTOVERS_NAMED];
    init::leftovers(|pid, comm| {
        let i = total as usize;
        if i < LEFTOVERS_NAMED {
            pids[i] = pid;
            names[i] = comm;
        }
        total = total.saturating_add(1);
    });
    if total > 0 {
        let _ = chan.send(&Msg::Leftovers { total, pids, names }, &[]);
    }
    chan.close();
}

fn write_maps(pid: libc::pid_t, uid: u32, gid: u32) -> std::io::Result<()> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    std::fs::write(base.join("uid_map"), format!("{uid} {uid} 1\n"))?;
    std::fs::write(base.join("setgroups"), "deny")?;
    std::fs::write(base.join("gid_map"), format!("{gid} {gid} 1\n"))
}

/// The jail's pid 1. Never returns. `helper`: the network helper's
/// channel, kept open for pid 1's whole life.
fn child(prep: &Prepared, chan: Channel, leftovers: Channel, links: Links) -> ! {
    let Links {
        helper,
        chaperon,
        connect,
    } = links;
    let fail = |stage: Stage, index: u32, errno: i32| -> ! {
        report(chan, stage, index, errno);
        sys::exit_now(125)
    };
    sys::die_with_parent(libc::SIGKILL);
    // EOF before "go": the launcher died or gave up (its death before
    // PDEATHSIG was set is caught here too).
    let mut buf = [0u8; 64];
    if chan.recv_small_as(&mut buf) != Ok(Some(outside::channel::ToPid1::Go)) {
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
    if let Some(h) = helper {
        if let Err((index, errno)) = net::execute(&prep.net, h) {
            fail(Stage::Network, index, errno);
        }
    }
    // SAFETY: chdir on a prepared C string.
    if unsafe { libc::chdir(prep.cwd.as_ptr()) } != 0 {
        fail(Stage::Chdir, 0, sys::errno());
    }
    if let Some(c) = chaperon {
        if let Err(e) = outside::chaperon::listen_in_jail(c) {
            fail(Stage::Slurm, 0, e);
        }
    }
    for (i, (path, content, mode)) in prep.files.iter().enumerate() {
        if let Err(e) = write_file(path, content, *mode) {
            fail(Stage::Files, i as u32, e);
        }
    }
    if let Err(errno) = prep.limits.apply_in_jail() {
        fail(Stage::Limits, 0, errno);
    }
    if let Err((part, errno)) = harden::apply(&prep.harden) {
        fail(Stage::Harden, part, errno);
    }
    if let (Some(c), Some(prog)) = (connect, &prep.notify) {
        if let Err(errno) = connect_filter(prog, c) {
            fail(Stage::Harden, harden::Part::Notify as u32, errno);
        }
    }
    // Nothing in the jail may ptrace or read the memory of pid 1.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };

    let pid = match spawn_program(prep, chan) {
        Ok(p) => p,
        Err(e) => fail(Stage::Fork, 0, e),
    };
    // pid 1 keeps no channel to the launcher.
    chan.close();
    init::forward_signals_to(pid);
    let code = init::wait_for(pid, true);
    report_leftovers(leftovers);
    // Exiting pid 1 kills everything left in the jail.
    sys::exit_now(code)
}

/// pid 1, after its hardening (no_new_privs is set), under cluster
/// networks: installs `harden::notify`'s filter, so the connect
/// supervisor decides every connect and send from here on, and hands it
/// the listener. write() and recvmsg() are not stopped by the filter
/// (sendmsg is): pid 1 writes the fd's number and the supervisor takes the
/// fd itself (pidfd_getfd), then says it holds it. pid 1 keeps the
/// channel open for its whole life: its EOF ends the supervisor.
/// Allocation-free.
fn connect_filter(prog: &[seccompiler::sock_filter], c: Channel) -> Result<(), i32> {
    let fd = harden::notify::install(prog)?;
    let mut buf = [0u8; 64];
    let ready = match c.write_small(&Msg::ConnectListener { fd }) {
        Ok(()) => c.recv_small_as::<outside::channel::FromSupervisor>(&mut buf),
        Err(e) => Err(e),
    };
    // Closed before any failure report: that report is a sendmsg, which
    // with no listener left fails (ENOSYS) rather than waiting for an
    // answer that never comes.
    sys::close(fd);
    match ready {
        Ok(Some(outside::channel::FromSupervisor::Ready)) => Ok(()),
        Err(e) => Err(e),
        Ok(_) => Err(libc::ECONNRESET),
    }
}

/// What the program's process gets from pid 1 (on pid 1's stack).
struct ProgramArgs<'a> {
    prep: &'a Prepared,
    chan: Channel,
}

/// Size of the stack the program's process runs on until its exec.
const SPAWN_STACK: usize = 256 * 1024;

/// Starts the program from pid 1 as posix_spawn does: clone with
/// CLONE_VM | CLONE_VFORK on a stack of its own, so pid 1's memory map is
/// not copied (page tables, then a copy-on-write fault per page touched)
/// only to be thrown away by the exec; pid 1 resumes once the exec
/// happened or failed. The child shares pid 1's memory until then: it
/// only reads prepared data and makes syscalls (errno, which it shares,
/// is not read by pid 1 after a successful clone).
fn spawn_program(prep: &Prepared, chan: Channel) -> Result<libc::pid_t, i32> {
    // SAFETY: an anonymous private mapping; checked for failure.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            SPAWN_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(sys::errno());
    }
    let args = ProgramArgs { prep, chan };
    // SAFETY: the stack grows down from the end of the mapping (aligned);
    // `args` lives on this frame, which stays put until the child has
    // exec'd or exited (CLONE_VFORK suspends us until then).
    let pid = unsafe {
        libc::clone(
            program,
            stack.cast::<u8>().add(SPAWN_STACK).cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&args as *const ProgramArgs).cast_mut().cast(),
        )
    };
    let err = sys::errno();
    // SAFETY: the child no longer runs on it (it exec'd or exited).
    unsafe { libc::munmap(stack, SPAWN_STACK) };
    if pid < 0 {
        return Err(err);
    }
    Ok(pid)
}

/// The program's process until its exec (see `spawn_program`).
extern "C" fn program(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the ProgramArgs of spawn_program's frame, alive
    // while this runs.
    let ProgramArgs { prep, chan } = unsafe { &*(arg as *const ProgramArgs) };
    let (prep, chan) = (*prep, *chan);
    init::reset_signals();
    for (i, r) in prep.redirects.iter().enumerate() {
        if let Err(e) = redirect(r) {
            report(chan, Stage::Stdio, i as u32, e);
            sys::exit_now(125);
        }
    }
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
    for &fd in &prep.keep_fds {
        // A kept fd that is gone is the program's to notice (its PMI
        // client reports it).
        let _ = sys::keep_on_exec(fd);
    }
    let mut err = libc::ENOENT;
    let mut denied = false;
    // 1 + the index of a candidate that is there although execve said
    // ENOENT: its interpreter (#! or ELF loader) is what is missing.
    let mut found_inside = 0u32;
    for (i, c) in prep.candidates.iter().enumerate() {
        // SAFETY: NULL-terminated pointer arrays of prepared strings
        // (built before the clone; `prep` outlives the call).
        unsafe { libc::execve(c.as_ptr(), prep.argv_ptrs.as_ptr(), prep.envp_ptrs.as_ptr()) };
        err = sys::errno();
        match err {
            libc::EACCES => denied = true,
            libc::ENOENT | libc::ENOTDIR => {
                // SAFETY: access on a prepared C string.
                if found_inside == 0 && unsafe { libc::access(c.as_ptr(), libc::F_OK) } == 0 {
                    found_inside = i as u32 + 1;
                }
            }
            _ => break,
        }
    }
    if denied && (err == libc::ENOENT || err == libc::ENOTDIR) {
        err = libc::EACCES;
    }
    report(chan, Stage::Exec, found_inside, err);
    // Found but not startable is 126, as in shells.
    let not_found = (err == libc::ENOENT || err == libc::ENOTDIR) && found_inside == 0;
    sys::exit_now(if not_found { 127 } else { 126 });
}

/// Writes a prepared file into the jail (pid 1, before hardening;
/// allocation-free). The file must not exist: nothing is overwritten.
fn write_file(path: &CString, content: &[u8], mode: u32) -> Result<(), i32> {
    // SAFETY: open on a prepared C string; the fd is closed below.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(sys::errno());
    }
    let r = sys::write_all(fd, content);
    sys::close(fd);
    r
}

/// Opens one standard stream of the program (its child, before exec).
fn redirect(r: &PreparedRedirect) -> Result<(), i32> {
    // SAFETY: open on a prepared C string.
    let fd = unsafe { libc::open(r.path.as_ptr(), r.flags, 0o666 as libc::c_uint) };
    if fd < 0 {
        return Err(sys::errno());
    }
    for &t in &r.fds {
        // SAFETY: dup2 between fds of this process (clears CLOEXEC).
        if unsafe { libc::dup2(fd, t) } < 0 {
            return Err(sys::errno());
        }
    }
    if !r.fds.contains(&fd) {
        sys::close(fd);
    }
    Ok(())
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
