//! The Slurm chaperon (docs/design.md, "Slurm"): a process outside the
//! jail, as the user (`jail __outside slurm`), that runs Slurm commands
//! for the program inside. The launcher starts it when a stub first
//! connects (a jail that never uses Slurm pays nothing for it); it is
//! gone with the jail.
//!
//! - Inside, `sbatch srun squeue scancel scontrol sacct salloc` are jail's
//!   own binary (bound read-only once in /run/jail/bin, first on PATH,
//!   with a symlink per command), which sees its name and becomes a stub
//!   (`stub`). The real commands are
//!   useless there: the munge socket and key are hidden.
//! - The jail's pid 1 makes a listening socket at /run/jail/slurm.sock,
//!   on the jail's own /run, and hands it over the typed channel to the
//!   launcher, which passes it on to the chaperon when the first stub
//!   connects: nothing is created on the host, and only this jail reaches
//!   it. A stub connects, sends its arguments, working directory and
//!   environment with its stdin, stdout and stderr (SCM_RIGHTS), passes
//!   on the signals it gets, and exits with the real command's status.
//!   Output streams, stdin works, nothing times out.
//! - The chaperon validates every request (`rules`, `script`), runs the
//!   real command with the user's scrubbed environment, wraps jobs and
//!   steps so they run under the same policy on the node (`job`), and
//!   scopes every query to the project's jobs (`scope`).
//! - It ends when the jail's link reaches EOF (pid 1, the only holder of
//!   the other end, is gone): it stops the commands it still runs (an
//!   srun's step is cancelled), then exits; the launcher waits for it.

pub mod job;
pub mod opts;
pub mod rules;
pub mod scope;
pub mod script;

use std::collections::HashMap;
use std::ffi::CStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::channel::{FromStub, SlurmHandoff, ToChaperon};
use super::{Channel, ChannelError, Msg, Outside, Role};
use crate::config::JailSpec;
use crate::sys;
use rules::{Deny, Plan, Scope};

pub use crate::plan::{STUBS, STUB_DIR};
/// The chaperon's socket, inside the jail.
pub const SOCKET: &CStr = c"/run/jail/slurm.sock";
const RUN_JAIL: &CStr = c"/run/jail";
/// Largest batch script read (Slurm's default max_script_size).
const MAX_SCRIPT: u64 = 4 << 20;

/// What the launcher tells the chaperon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// The jail's policy as JSON (jobs run under it).
    pub spec_json: String,
    /// The environment a fresh jail gives its program (`--export=NONE`).
    pub fresh_env: Vec<(String, String)>,
    /// jail's state directory (job records, quarantine).
    pub state: PathBuf,
}

/// One command from a stub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Which stub (one of STUBS).
    pub command: String,
    pub args: Vec<String>,
    /// The stub's working directory, as the jail sees it.
    pub cwd: PathBuf,
    /// The stub's environment (what a job's program gets).
    pub env: Vec<(String, String)>,
    /// A fourth fd carries the batch script the stub opened.
    pub script: bool,
}

/// A jail's Slurm link before any stub needs it: pid 1 hands the stubs'
/// listening socket to the launcher over it, and the launcher starts the
/// chaperon only when a stub first connects (a jail that never uses
/// Slurm pays no process for it). The chaperon then holds the launcher's
/// end: its EOF (pid 1, the only holder of the other end, is gone) is
/// the jail's end.
#[derive(Debug)]
pub struct Pending<'a> {
    /// The launcher's end, until the chaperon holds it.
    launcher: Option<Channel>,
    /// pid 1's end, until it goes to pid 1 through the clone.
    jail: Option<Channel>,
    listener: Option<OwnedFd>,
    chaperon: Option<Outside>,
    spec: &'a JailSpec,
    env: &'a [(String, String)],
    state: &'a Path,
}

impl<'a> Pending<'a> {
    /// Before the clone. `env` is the program's environment. The
    /// chaperon's configuration is made only if it starts.
    pub fn new(
        spec: &'a JailSpec,
        env: &'a [(String, String)],
        state: &'a Path,
    ) -> Result<Pending<'a>, ChannelError> {
        let (launcher, jail) = Channel::pair()?;
        Ok(Pending {
            launcher: Some(launcher),
            jail: Some(jail),
            listener: None,
            chaperon: None,
            spec,
            env,
            state,
        })
    }

    /// Starts the chaperon and hands it the listener and `launcher`, the
    /// launcher's end of pid 1's link (closed here once sent).
    fn start_chaperon(&self, listener: &OwnedFd, launcher: Channel) -> Option<Outside> {
        let c = super::spawn(Role::Slurm, super::Start::Exec).ok()?;
        let sent = c
            .chan
            .send(
                &Msg::Slurm(Box::new(Config {
                    spec_json: serde_json::to_string(self.spec).unwrap_or_default(),
                    fresh_env: self.env.to_vec(),
                    state: self.state.to_path_buf(),
                })),
                &[],
            )
            .and_then(|_| {
                c.chan.send(
                    &Msg::SlurmListener,
                    &[listener.as_raw_fd(), launcher.as_raw_fd()],
                )
            });
        if let Err(e) = sent {
            eprintln!("jail: slurm: cannot start the chaperon: {e}");
        }
        Some(c)
    }
}

impl super::OnDemand for Pending<'_> {
    fn take_jail_end(&mut self) -> Option<Channel> {
        self.jail.take()
    }

    fn close_launcher_end(&mut self) {
        drop(self.launcher.take());
    }

    fn arm(&mut self) -> Vec<std::os::fd::RawFd> {
        let Some(launcher) = &self.launcher else {
            return Vec::new();
        };
        if sys::poll_in(launcher.as_raw_fd(), 0).unwrap_or(0) & libc::POLLIN == 0 {
            return Vec::new();
        }
        // pid 1 sends its handoff and nothing else; anything else, and
        // the chaperon is not started (the stubs then find none).
        self.listener = match launcher.recv_as::<SlurmHandoff>() {
            Ok(Some((SlurmHandoff::Listener, mut fds))) => fds.pop(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("slurm: {e}");
                None
            }
        };
        self.listener.iter().map(|l| l.as_raw_fd()).collect()
    }

    fn start(&mut self) {
        if let Some(l) = self.listener.take() {
            // The chaperon holds the listener and the launcher's end now.
            if let Some(launcher) = self.launcher.take() {
                self.chaperon = self.start_chaperon(&l, launcher);
            }
        }
    }

    /// The chaperon stops what it still runs for the jail, then ends.
    fn finish(&mut self) {
        self.listener = None;
        self.launcher = None;
        if let Some(c) = self.chaperon.take() {
            drop(c.chan);
            crate::reap::wait_for(c.pid, false);
        }
    }
}

/// In the jail's pid 1 (after the new root, before hardening;
/// allocation-free): makes the stubs' socket and hands it to the launcher.
/// pid 1 keeps `link` open for its whole life: its EOF tells the chaperon
/// the jail is gone.
pub fn listen_in_jail(link: &Channel) -> Result<(), i32> {
    // SAFETY: mkdir on a constant C string.
    if unsafe { libc::mkdir(RUN_JAIL.as_ptr(), 0o755) } != 0 && sys::errno() != libc::EEXIST {
        return Err(sys::errno());
    }
    let fd = sys::seqpacket_listen(SOCKET)?;
    let sent = link.send(&Msg::SlurmListener, &[fd]);
    sys::close(fd);
    sent.map_err(|e| match e {
        ChannelError::Os(e) => e,
        ChannelError::Encode(_) | ChannelError::Unexpected { .. } => libc::EPROTO,
    })
}

/// Puts the stubs first on PATH.
pub fn with_stub_path(env: &mut Vec<(String, String)>) {
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    if path.split(':').next() == Some(STUB_DIR) {
        return;
    }
    let rest: Vec<&str> = path.split(':').filter(|d| *d != STUB_DIR).collect();
    env.retain(|(k, _)| k != "PATH");
    env.push(("PATH".into(), format!("{STUB_DIR}:{}", rest.join(":"))));
}

/// Input variables of Slurm's commands that would set options the rules
/// never saw (partition, prolog, output files, export mode ...): the real
/// commands run without them.
fn slurm_input_var(k: &str) -> bool {
    const NAMES: &[&str] = &[
        "SLURM_ACCOUNT",
        "SLURM_PARTITION",
        "SLURM_QOS",
        "SLURM_EXPORT_ENV",
        "SLURM_GET_USER_ENV",
        "SLURM_WORKING_DIR",
        "SLURM_STDINMODE",
        "SLURM_STDOUTMODE",
        "SLURM_STDERRMODE",
        "SLURM_PROLOG",
        "SLURM_EPILOG",
        "SLURM_TASK_PROLOG",
        "SLURM_TASK_EPILOG",
        "SLURM_CONTAINER",
        "SLURM_BCAST",
        "SLURM_CLUSTERS",
        "SLURM_NETWORK",
    ];
    [
        "SBATCH_",
        "SALLOC_",
        "SRUN_",
        "SQUEUE_",
        "SACCT_",
        "SCANCEL_",
        "SCONTROL_",
    ]
    .iter()
    .any(|p| k.starts_with(p))
        || NAMES.contains(&k)
        || k == job::STEP_VAR
}

/// The environment the real commands get: the user's, scrubbed by the
/// policy (credentials do not travel to the nodes), with what Slurm's
/// client needs to reach the cluster, minus input variables.
fn real_env(spec: &JailSpec) -> Vec<(String, String)> {
    let host = crate::host::environment();
    let (mut env, _) = crate::config::env::scrub(&host, &spec.env, &[]);
    for keep in ["SLURM_CONF", "SLURM_CONFIG_DIR", "SLURM_JWT"] {
        if let Some(kv) = host.iter().find(|(k, _)| k == keep) {
            env.retain(|(k, _)| k != keep);
            env.push(kv.clone());
        }
    }
    env.retain(|(k, _)| !slurm_input_var(k));
    env
}

struct Chaperon {
    spec: JailSpec,
    config: Config,
    exe: PathBuf,
    env: Vec<(String, String)>,
    records: scope::Records,
    /// Real commands running now (pids), stopped when the jail ends.
    kids: Mutex<std::collections::HashSet<u32>>,
    /// Where each command's program is (resolved once, on the host PATH).
    paths: HashMap<&'static str, PathBuf>,
}

/// `jail __outside slurm`: started by the launcher when a stub first
/// connects; gets the configuration, then the stubs' socket and the
/// jail's link (whose EOF ends it).
pub fn main(chan: Channel) -> i32 {
    // EOF: the launcher gave up before the jail needed the chaperon.
    // Anything but what this link carries, in its order: refused, loudly.
    let refuse = |what: String| {
        eprintln!("jail: slurm: {what}");
        crate::exit::EXIT_JAIL_ERROR
    };
    let config = match chan.recv_as::<ToChaperon>() {
        Ok(Some((ToChaperon::Config(c), _))) => *c,
        Ok(None) => return 0,
        Ok(Some((ToChaperon::Listener, _))) => {
            return refuse("the socket came before the policy".into())
        }
        Err(e) => return refuse(e.to_string()),
    };
    let (listener, link) = match chan.recv_as::<ToChaperon>() {
        Ok(Some((ToChaperon::Listener, fds))) => {
            let mut it = fds.into_iter();
            match (it.next(), it.next()) {
                (Some(l), Some(k)) => (l, k),
                _ => return refuse("the jail's socket came without its link".into()),
            }
        }
        Ok(None) => return 0,
        Ok(Some((ToChaperon::Config(_), _))) => return refuse("a second policy".into()),
        Err(e) => return refuse(e.to_string()),
    };
    // fd 3 is done with; the link (close-on-exec, as received) is ours.
    drop(chan);
    let link = Channel::from(link);
    // Most jails never submit a job: the chaperon makes itself ready at
    // the first stub, so a short jail does not wait for it at exit.
    let mut ready: Option<Arc<Chaperon>> = None;
    serve(&config, &mut ready, &link, listener);
    if let Some(ch) = ready {
        shutdown(&ch);
    }
    drop(link);
    0
}

fn ready(config: &Config) -> Result<Chaperon, String> {
    let spec: JailSpec = serde_json::from_str(&config.spec_json)
        .map_err(|e| format!("the chaperon cannot read the policy: {e}"))?;
    let me = std::env::current_exe().and_then(std::fs::canonicalize).ok();
    let exe = me
        .clone()
        .unwrap_or_else(|| PathBuf::from("/proc/self/exe"));
    let env = real_env(&spec);
    let writable = writable_roots(&spec);
    let paths = STUBS
        .iter()
        .filter_map(|c| {
            let p = on_path(c, &env, &writable)?;
            // Never ourselves (a PATH that leads back to jail's binary).
            let same = me.is_some() && std::fs::canonicalize(&p).ok() == me;
            (!same).then_some((*c, p))
        })
        .collect();
    Ok(Chaperon {
        records: scope::Records::new(&config.state, &spec.project.value),
        spec,
        config: config.clone(),
        exe,
        env,
        kids: Mutex::new(std::collections::HashSet::new()),
        paths,
    })
}

/// Where the program can write (as the host sees it): a real command
/// found there would be the program's, run outside the jail.
fn writable_roots(spec: &JailSpec) -> Vec<PathBuf> {
    let fs = &spec.filesystem;
    let mut roots: Vec<PathBuf> = std::iter::once(&spec.project)
        .chain(&fs.rw)
        .chain(&fs.cache)
        .chain(&fs.own)
        .map(|p| p.value.clone())
        .chain(fs.storage.clone())
        .collect();
    if fs.home.value == crate::config::profile::HomeMode::Rw {
        roots.push(spec.user.home.clone());
    }
    let real: Vec<PathBuf> = roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .collect();
    roots.extend(real);
    roots
}

/// `cmd` in the absolute directories of `env`'s PATH, never one below a
/// directory the program can write (a direnv `bin/`, a virtualenv in the
/// project), through a symbolic link or not.
fn on_path(cmd: &str, env: &[(String, String)], writable: &[PathBuf]) -> Option<PathBuf> {
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())?;
    let theirs = |p: &Path| writable.iter().any(|w| p.starts_with(w));
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| Path::new(d).join(cmd))
        .filter(|p| p.is_file())
        .find(|p| !theirs(p) && std::fs::canonicalize(p).is_ok_and(|r| !theirs(&r)))
}

/// Accepts stubs until the jail is gone.
fn serve(config: &Config, ready_ch: &mut Option<Arc<Chaperon>>, chan: &Channel, listener: OwnedFd) {
    loop {
        let mut fds = [
            libc::pollfd {
                fd: chan.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if sys::poll(&mut fds, -1).is_err() {
            return;
        }
        if fds[0].revents != 0 {
            // EOF on the jail's link: it is over. pid 1's handoff is all
            // it ever carries; anything else ends the chaperon too.
            match chan.recv_as::<SlurmHandoff>() {
                Ok(Some((SlurmHandoff::Listener, _))) => continue,
                Ok(None) => return,
                Err(e) => {
                    eprintln!("jail: slurm: {e}");
                    return;
                }
            }
        }
        if fds[1].revents & libc::POLLIN != 0 {
            if let Ok(c) = sys::accept(listener.as_raw_fd()) {
                // SAFETY: accept just returned this fd; the Channel is its
                // only owner.
                let conn = unsafe { Channel::from_raw_fd(c) };
                if ready_ch.is_none() {
                    match ready(config) {
                        Ok(ch) => *ready_ch = Some(Arc::new(ch)),
                        Err(e) => {
                            let _ = conn.send(&Msg::SlurmExit { code: 125 }, &[]);
                            eprintln!("jail: slurm: {e}");
                            drop(conn);
                            continue;
                        }
                    }
                }
                let Some(ch) = ready_ch.as_ref().map(Arc::clone) else {
                    continue;
                };
                // The connection closes when its thread is done with it.
                std::thread::spawn(move || handle(&ch, &conn));
            }
        }
    }
}

/// The jail is gone: stop what still runs for it. SIGTERM first (srun
/// cancels its step), SIGKILL for what is left after 10 s.
fn shutdown(ch: &Chaperon) {
    let kids: Vec<u32> = ch
        .kids
        .lock()
        .map(|k| k.iter().copied().collect())
        .unwrap_or_default();
    for &pid in &kids {
        // SAFETY: kill with integer arguments.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
    for _ in 0..100 {
        if ch.kids.lock().map(|k| k.is_empty()).unwrap_or(true) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let kids: Vec<u32> = ch
        .kids
        .lock()
        .map(|k| k.iter().copied().collect())
        .unwrap_or_default();
    for pid in kids {
        // SAFETY: kill with integer arguments.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
}

/// The stub's three streams (and script), as received.
struct Stdio3 {
    stdin: OwnedFd,
    stdout: OwnedFd,
    stderr: OwnedFd,
    script: Option<OwnedFd>,
}

fn handle(ch: &Chaperon, conn: &Channel) {
    let (req, fds) = match conn.recv_as::<FromStub>() {
        Ok(Some((FromStub::Request(r), fds))) => (*r, fds),
        Ok(None) => return,
        // A stub speaks first with its request; anything else is refused.
        Ok(Some((FromStub::Signal { .. }, _))) | Err(_) => {
            let _ = conn.send(&Msg::SlurmExit { code: 125 }, &[]);
            return;
        }
    };
    let mut it = fds.into_iter();
    let (Some(stdin), Some(stdout), Some(stderr)) = (it.next(), it.next(), it.next()) else {
        return;
    };
    let io = Stdio3 {
        stdin,
        stdout,
        stderr,
        script: if req.script { it.next() } else { None },
    };
    let code = match request(ch, conn, &req, &io) {
        Ok(code) => code,
        Err(deny) => {
            let _ = sys::write_all(io.stderr.as_raw_fd(), deny.message().as_bytes());
            1
        }
    };
    let _ = conn.send(&Msg::SlurmExit { code }, &[]);
}

/// The scope of this project's jobs, for one request.
struct JobScope<'a> {
    ch: &'a Chaperon,
    ids: std::collections::BTreeSet<u64>,
    /// Parents (array or hetjob) looked up for ids not recorded.
    seen: Mutex<HashMap<u64, bool>>,
}

impl JobScope<'_> {
    fn query(&self, args: &[String]) -> String {
        let Some(cmd) = self.ch.paths.get(args[0].as_str()) else {
            return String::new();
        };
        Command::new(cmd)
            .args(&args[1..])
            .env_clear()
            .envs(self.ch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Scope for JobScope<'_> {
    fn contains(&self, id: u64) -> bool {
        if self.ids.contains(&id) {
            return true;
        }
        if let Some(&known) = self
            .seen
            .lock()
            .ok()
            .and_then(|s| s.get(&id).copied())
            .as_ref()
        {
            return known;
        }
        // An array task or hetjob component has its own job id: it is in
        // scope when the array or hetjob it belongs to is.
        let out = self.query(&[
            "scontrol".into(),
            "show".into(),
            "job".into(),
            "-o".into(),
            id.to_string(),
        ]);
        let parent = out.split_whitespace().any(|w| {
            ["ArrayJobId=", "HetJobId="].iter().any(|f| {
                w.strip_prefix(f)
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|p| self.ids.contains(&p))
            })
        });
        if let Ok(mut s) = self.seen.lock() {
            s.insert(id, parent);
        }
        parent
    }

    fn recorded(&self) -> Vec<u64> {
        self.ids.iter().copied().collect()
    }

    fn active(&self) -> Vec<u64> {
        if self.ids.is_empty() {
            return Vec::new();
        }
        let list = self
            .recorded()
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let out = self.query(&[
            "squeue".into(),
            "--noheader".into(),
            "--format=%F".into(),
            format!("--jobs={list}"),
        ]);
        let mut ids: Vec<u64> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

fn request(ch: &Chaperon, conn: &Channel, req: &Request, io: &Stdio3) -> Result<i32, Deny> {
    let name = req.command.as_str();
    if !STUBS.contains(&name) {
        return Err(Deny::Refused {
            what: name.to_string(),
            reason: "not a Slurm command the chaperon runs".into(),
        });
    }
    if name == "salloc" {
        return Err(rules::salloc());
    }
    if !ch.paths.contains_key(name) {
        return Err(Deny::Native {
            prog: "jail: slurm".into(),
            lines: vec![format!("{name} is not installed outside the jail")],
        });
    }
    let scope = JobScope {
        ch,
        ids: ch.records.load(),
        seen: Mutex::new(HashMap::new()),
    };
    let in_job = ch.env.iter().any(|(k, _)| k == "SLURM_JOB_ID");
    let ctx = rules::Ctx {
        project: &ch.spec.project.value,
        cwd: &req.cwd,
        policy: &ch.spec.slurm,
        user: &ch.spec.user.name,
        uid: ch.spec.user.uid,
        in_job,
        scope: &scope,
    };
    let plan = match name {
        "sbatch" => {
            let (parsed, from) = rules::sbatch_source(&req.args)?;
            let script = match &from {
                rules::ScriptFrom::Wrap(cmd) => script::wrap(cmd),
                rules::ScriptFrom::File(f) => match &io.script {
                    Some(fd) => read_all(fd),
                    None => {
                        return Err(Deny::Native {
                            prog: "sbatch".into(),
                            lines: vec![format!("Unable to open file {f}")],
                        })
                    }
                },
                rules::ScriptFrom::Stdin => read_all(&io.stdin),
                rules::ScriptFrom::None => Vec::new(),
            };
            rules::sbatch(&ctx, parsed, &from, script)?
        }
        "srun" => rules::srun(&ctx, &req.args)?,
        "squeue" => rules::squeue(&ctx, &req.args)?,
        "scancel" => rules::scancel(&ctx, &req.args)?,
        "sacct" => rules::sacct(&ctx, &req.args)?,
        _ => rules::scontrol(&ctx, &req.args)?,
    };
    match plan {
        Plan::Answer(text, code) => {
            let _ = sys::write_all(io.stdout.as_raw_fd(), text.as_bytes());
            Ok(code)
        }
        Plan::Query(q) => Ok(run_query(ch, conn, name, &q, io, &scope)),
        Plan::Job(job) => run_job(ch, conn, name, &job, req, io),
    }
}

fn read_all(fd: &OwnedFd) -> Vec<u8> {
    let Ok(dup) = fd.try_clone() else {
        return Vec::new();
    };
    let mut buf = Vec::new();
    let _ = std::fs::File::from(dup)
        .take(MAX_SCRIPT)
        .read_to_end(&mut buf);
    buf
}

fn dup_stdio(fd: &OwnedFd) -> Stdio {
    fd.try_clone()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

fn command(ch: &Chaperon, name: &str, cwd: &Path) -> Command {
    let mut c = Command::new(&ch.paths[name]);
    c.env_clear()
        .envs(ch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(if cwd.is_dir() { cwd } else { Path::new("/") });
    // SAFETY: only async-signal-safe prctl between fork and exec. If the
    // chaperon dies (killed), its commands end too (srun cancels).
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0);
            Ok(())
        });
    }
    c
}

/// Runs a child to its end while passing on the stub's signals; if the
/// stub goes away (its jail ended, or it was killed), the child is
/// stopped. Returns the shell-style status.
fn supervise(ch: &Chaperon, conn: &Channel, child: &mut std::process::Child) -> i32 {
    let pid = child.id();
    if let Ok(mut k) = ch.kids.lock() {
        k.insert(pid);
    }
    let pidfd = sys::pidfd_open(pid as libc::pid_t).ok();
    let mut stub_gone = false;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        let mut fds = vec![libc::pollfd {
            fd: conn.as_raw_fd(),
            events: if stub_gone { 0 } else { libc::POLLIN },
            revents: 0,
        }];
        if let Some(p) = pidfd {
            fds.push(libc::pollfd {
                fd: p,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let timeout = if pidfd.is_some() { -1 } else { 100 };
        let _ = sys::poll(&mut fds, timeout);
        if !stub_gone && fds[0].revents != 0 {
            match conn.recv_as::<FromStub>() {
                Ok(Some((FromStub::Signal { sig }, _))) if (1..65).contains(&sig) => {
                    // SAFETY: kill with integer arguments, to our child.
                    unsafe { libc::kill(pid as libc::pid_t, sig) };
                }
                Ok(Some((FromStub::Signal { .. }, _))) => {}
                // EOF, or a message a running command's stub never sends:
                // the stub is gone (or not a stub); its command ends.
                Ok(Some((FromStub::Request(_), _))) | Ok(None) | Err(_) => {
                    stub_gone = true;
                    // SAFETY: kill with integer arguments, to our child.
                    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
                }
            }
        }
    };
    if let Some(p) = pidfd {
        sys::close(p);
    }
    if let Ok(mut k) = ch.kids.lock() {
        k.remove(&pid);
    }
    use std::os::unix::process::ExitStatusExt;
    crate::reap::status_code(status.into_raw())
}

fn run_query(
    ch: &Chaperon,
    conn: &Channel,
    name: &str,
    q: &rules::Query,
    io: &Stdio3,
    scope: &dyn Scope,
) -> i32 {
    let mut c = command(ch, name, &ch.spec.project.value);
    c.args(&q.args).stdin(dup_stdio(&io.stdin));
    let plain = q.rewrite.swapped.is_empty() && !q.filter_jobs;
    if plain {
        c.stdout(dup_stdio(&io.stdout))
            .stderr(dup_stdio(&io.stderr));
        return match c.spawn() {
            Ok(mut child) => supervise(ch, conn, &mut child),
            Err(e) => spawn_failed(name, &e, io),
        };
    }
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = match c.spawn() {
        Ok(c) => c,
        Err(e) => return spawn_failed(name, &e, io),
    };
    let copy = |from: Option<Box<dyn Read + Send>>, to: &OwnedFd, filter: bool| {
        let rw = q.rewrite.clone();
        let to = to.try_clone().ok();
        let from = from?;
        Some(std::thread::spawn(move || {
            let Some(to) = to else { return String::new() };
            let mut r = BufReader::new(from);
            let mut whole = String::new();
            let mut line = Vec::new();
            while r
                .read_until(b'\n', &mut line)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                let fixed = rw.restore(&line);
                if filter {
                    whole.push_str(&String::from_utf8_lossy(&fixed));
                } else {
                    let _ = sys::write_all(to.as_raw_fd(), &fixed);
                }
                line.clear();
            }
            whole
        }))
    };
    let out = copy(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        &io.stdout,
        q.filter_jobs,
    );
    let err = copy(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        &io.stderr,
        false,
    );
    let code = supervise(ch, conn, &mut child);
    let text = out.and_then(|t| t.join().ok()).unwrap_or_default();
    if let Some(e) = err {
        let _ = e.join();
    }
    if q.filter_jobs {
        let _ = sys::write_all(
            io.stdout.as_raw_fd(),
            rules::filter_jobs(&text, scope).as_bytes(),
        );
    }
    code
}

fn spawn_failed(name: &str, e: &std::io::Error, io: &Stdio3) -> i32 {
    let msg = format!("jail: slurm: cannot run {name}: {e}\n");
    let _ = sys::write_all(io.stderr.as_raw_fd(), msg.as_bytes());
    1
}

static NONCE: AtomicU64 = AtomicU64::new(0);

fn run_job(
    ch: &Chaperon,
    conn: &Channel,
    name: &str,
    job: &rules::Job,
    req: &Request,
    io: &Stdio3,
) -> Result<i32, Deny> {
    let env = job::export_env(&job.export, &req.env, &ch.config.fresh_env);
    let spec = job::JobSpec {
        spec: ch.spec.clone(),
        env,
        cwd: job.cwd.clone(),
        command: job.command.clone(),
        script: job.script.as_deref().map(job::encode_script),
        io: job.io.clone(),
        state: ch.config.state.clone(),
    };
    let mut c = command(ch, name, &job.submit_dir);
    c.args(&job.real);
    if name == "sbatch" {
        let scontrol = ch.paths.get("scontrol").map(PathBuf::as_path);
        let wrapper = job::wrapper(&ch.exe, scontrol, &spec).map_err(|e| Deny::Refused {
            what: "sbatch".into(),
            reason: e.to_string(),
        })?;
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(dup_stdio(&io.stderr));
        let mut child = match c.spawn() {
            Ok(c) => c,
            Err(e) => return Ok(spawn_failed(name, &e, io)),
        };
        if let Some(mut sin) = child.stdin.take() {
            std::thread::spawn(move || {
                let _ = sin.write_all(&wrapper);
            });
        }
        // Forward sbatch's output as it comes, noting the job id.
        let out = child.stdout.take();
        let to = io.stdout.try_clone().ok();
        let records = ch.records.clone();
        let project = ch.spec.project.value.clone();
        let record = job.new_job;
        let reader = std::thread::spawn(move || {
            let (Some(out), Some(to)) = (out, to) else {
                return;
            };
            let mut r = BufReader::new(out);
            let mut line = String::new();
            let mut noted = false;
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if record && !noted {
                    if let Some(id) = submitted_id(&line) {
                        let _ = records.add(id, &project);
                        noted = true;
                    }
                }
                let _ = sys::write_all(to.as_raw_fd(), line.as_bytes());
                line.clear();
            }
        });
        let code = supervise(ch, conn, &mut child);
        let _ = reader.join();
        return Ok(code);
    }
    // srun: each task is `jail __slurm-step`, its JobSpec in the
    // environment.
    let json = serde_json::to_string(&spec).map_err(|e| Deny::Refused {
        what: "srun".into(),
        reason: e.to_string(),
    })?;
    let marker = format!(
        "jail-srun-{}-{}",
        std::process::id(),
        NONCE.fetch_add(1, Ordering::Relaxed)
    );
    if job.new_job {
        c.arg(format!("--comment={marker}"));
    }
    c.arg(&ch.exe).arg(job::STEP_ARG).env(job::STEP_VAR, json);
    c.stdin(dup_stdio(&io.stdin))
        .stdout(dup_stdio(&io.stdout))
        .stderr(dup_stdio(&io.stderr));
    let mut child = match c.spawn() {
        Ok(c) => c,
        Err(e) => return Ok(spawn_failed(name, &e, io)),
    };
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finder = job.new_job.then(|| {
        let done = Arc::clone(&done);
        let squeue = ch.paths.get("squeue").cloned();
        let env = ch.env.clone();
        let records = ch.records.clone();
        let project = ch.spec.project.value.clone();
        std::thread::spawn(move || find_srun_job(squeue, &env, &marker, &done, &records, &project))
    });
    let code = supervise(ch, conn, &mut child);
    done.store(true, Ordering::Relaxed);
    if let Some(f) = finder {
        let _ = f.join();
    }
    Ok(code)
}

/// The job id in sbatch's answer (`Submitted batch job N`, or `N[;cluster]`
/// with --parsable).
fn submitted_id(line: &str) -> Option<u64> {
    let l = line.trim();
    if let Some(rest) = l.strip_prefix("Submitted batch job ") {
        return rest.split_whitespace().next()?.parse().ok();
    }
    l.split(';').next()?.parse().ok()
}

/// Finds the job an srun made (by the comment the chaperon gave it) and
/// records it, so the program can see and cancel it like its batch jobs.
fn find_srun_job(
    squeue: Option<PathBuf>,
    env: &[(String, String)],
    marker: &str,
    done: &std::sync::atomic::AtomicBool,
    records: &scope::Records,
    project: &Path,
) {
    let Some(squeue) = squeue else { return };
    let mut last = false;
    loop {
        let out = Command::new(&squeue)
            .args(["--me", "--noheader", "--states=all", "--format=%A %k"])
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output();
        if let Ok(o) = out {
            let text = String::from_utf8_lossy(&o.stdout);
            let found = text.lines().find_map(|l| {
                let (id, comment) = l.trim().split_once(' ')?;
                (comment.trim() == marker).then(|| id.parse::<u64>().ok())?
            });
            if let Some(id) = found {
                let _ = records.add(id, project);
                return;
            }
        }
        if last {
            return;
        }
        if done.load(Ordering::Relaxed) {
            last = true; // one more look: a short job may show only now
        } else {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_dir_goes_first_on_path_once() {
        let mut env = vec![(
            "PATH".to_string(),
            "/usr/bin:/run/jail/bin:/bin".to_string(),
        )];
        with_stub_path(&mut env);
        assert_eq!(
            env,
            vec![("PATH".into(), "/run/jail/bin:/usr/bin:/bin".into())]
        );
        with_stub_path(&mut env);
        assert_eq!(
            env,
            vec![("PATH".into(), "/run/jail/bin:/usr/bin:/bin".into())]
        );
    }

    #[test]
    fn sbatch_answers_name_the_job() {
        assert_eq!(submitted_id("Submitted batch job 42\n"), Some(42));
        assert_eq!(submitted_id("42;cluster\n"), Some(42));
        assert_eq!(submitted_id("43\n"), Some(43));
        assert_eq!(submitted_id("sbatch: error: x\n"), None);
    }

    /// A real command is never one the program could have put on the
    /// user's PATH (a project directory there, or a link into it).
    #[test]
    fn real_commands_are_never_found_where_the_program_writes() {
        let t = std::env::temp_dir().join(format!("jail-onpath-{}", std::process::id()));
        let (proj, sys) = (t.join("proj"), t.join("sys"));
        for d in [proj.join("bin"), sys.clone(), t.join("links")] {
            std::fs::create_dir_all(d).unwrap();
        }
        for f in [proj.join("bin/squeue"), sys.join("squeue")] {
            std::fs::write(f, "").unwrap();
        }
        std::os::unix::fs::symlink(proj.join("bin/squeue"), t.join("links/squeue")).unwrap();
        let env = |path: String| vec![("PATH".to_string(), path)];
        let writable = [proj.clone()];
        let found = |p: String| on_path("squeue", &env(p), &writable);
        let sys_path = format!("{}", sys.display());
        assert_eq!(
            found(format!("{}/bin:{sys_path}", proj.display())),
            Some(sys.join("squeue"))
        );
        assert_eq!(
            found(format!("{}/links:{sys_path}", t.display())),
            Some(sys.join("squeue"))
        );
        assert_eq!(found(format!("{}/bin", proj.display())), None);
        assert_eq!(
            on_path("squeue", &env(format!("{}/bin", proj.display())), &[]),
            Some(proj.join("bin/squeue"))
        );
        let _ = std::fs::remove_dir_all(&t);
    }

    #[test]
    fn slurm_input_variables_do_not_reach_the_real_commands() {
        for k in [
            "SBATCH_PARTITION",
            "SLURM_TASK_PROLOG",
            "SRUN_EXPORT_ENV",
            "JAIL_SLURM_STEP",
            "SLURM_EXPORT_ENV",
        ] {
            assert!(slurm_input_var(k), "{k}");
        }
        for k in ["SLURM_JOB_ID", "SLURM_CONF", "PATH"] {
            assert!(!slurm_input_var(k), "{k}");
        }
    }

    #[test]
    fn config_and_requests_cross_the_channel() {
        let (a, b) = Channel::pair().unwrap();
        let req = Request {
            command: "srun".into(),
            args: vec!["-n1".into(), "true".into()],
            cwd: "/p".into(),
            env: vec![("A".into(), "b".into())],
            script: false,
        };
        a.send(&Msg::SlurmRequest(Box::new(req.clone())), &[0, 1, 2])
            .unwrap();
        let (m, fds) = b.recv().unwrap().unwrap();
        assert_eq!(m, Msg::SlurmRequest(Box::new(req)));
        assert_eq!(fds.len(), 3);
    }
}
