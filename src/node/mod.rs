//! The job launcher on a compute node (`jail __slurm-job` /
//! `__slurm-step`, started by Slurm): reads the `JobSpec` the chaperon
//! wrote (`outside::chaperon::job`) and runs the same launcher as `jail`
//! itself (`launcher`) with that policy, its redirections opened inside
//! the jail.

mod shm;

use std::path::PathBuf;

use crate::config::JailSpec;
use crate::outside::chaperon::job::{decode_script, parse_wrapper, JobError, JobSpec, SCRIPT_PATH};
pub use crate::outside::chaperon::job::{JOB_ARG, STEP_ARG, STEP_VAR};
use crate::outside::chaperon::rules::Io;

/// Slurm's file name patterns (`%j`, `%4t`, ...), expanded from the job's
/// environment as slurmstepd would.
pub fn expand(
    pattern: &str,
    env: &dyn Fn(&str) -> Option<String>,
    host: &str,
    user: &str,
) -> String {
    let var = |n: &str, dflt: &str| env(n).unwrap_or_else(|| dflt.to_string());
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut width = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(*d);
            chars.next();
        }
        let Some(k) = chars.next() else {
            out.push('%');
            out.push_str(&width);
            break;
        };
        let job = var("SLURM_JOB_ID", "0");
        let step = var("SLURM_STEP_ID", "batch");
        let val = match k {
            '%' => {
                out.push('%');
                continue;
            }
            'j' => job.clone(),
            'J' => format!("{job}.{step}"),
            'A' => var("SLURM_ARRAY_JOB_ID", &job),
            'a' => var("SLURM_ARRAY_TASK_ID", "4294967294"),
            's' => step,
            't' => var("SLURM_PROCID", "0"),
            'n' => var("SLURM_NODEID", "0"),
            'N' => host.to_string(),
            'u' => user.to_string(),
            'x' => var("SLURM_JOB_NAME", ""),
            other => {
                out.push('%');
                out.push_str(&width);
                out.push(other);
                continue;
            }
        };
        let w: usize = width.parse().unwrap_or(0).min(10);
        let numeric = !val.is_empty() && val.bytes().all(|b| b.is_ascii_digit());
        if numeric && val.len() < w {
            out.push_str(&"0".repeat(w - val.len()));
        }
        out.push_str(&val);
    }
    out
}

/// The short host name (slurmstepd's %N).
fn short_host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let h = String::from_utf8_lossy(&buf[..end]).into_owned();
    h.split('.').next().unwrap_or_default().to_string()
}

/// The redirections of the job's program, inside its jail.
fn redirects(
    io: &Io,
    env: &dyn Fn(&str) -> Option<String>,
    user: &str,
) -> Vec<crate::launcher::Redirect> {
    use crate::launcher::Redirect;
    let host = short_host();
    let x = |p: &String| PathBuf::from(expand(p, env, &host, user));
    let mut out = Vec::new();
    if let Some(i) = &io.input {
        out.push(Redirect {
            path: x(i),
            write: false,
            append: false,
            fds: vec![0],
        });
    }
    let o = io.output.as_ref().map(x);
    let e = io.error.as_ref().map(x);
    match (o, e) {
        (Some(o), Some(e)) if o == e => out.push(Redirect {
            path: o,
            write: true,
            append: io.append,
            fds: vec![1, 2],
        }),
        (o, e) => {
            // stderr goes with stdout unless --error names its own file
            // (sbatch and srun alike).
            let both = e.is_none();
            if let Some(o) = o {
                out.push(Redirect {
                    path: o,
                    write: true,
                    append: io.append,
                    fds: if both { vec![1, 2] } else { vec![1] },
                });
            }
            if let Some(e) = e {
                out.push(Redirect {
                    path: e,
                    write: true,
                    append: io.append,
                    fds: vec![2],
                });
            }
        }
    }
    out
}

/// Variables slurmstepd sets for the task that the program inside needs:
/// the job's own `SLURM_*`, and what the MPI plugin (`--mpi=pmix`) gives
/// its ranks to find their PMI server (`PMIX_*`; `PMI_*` of the PMI-2
/// steps `mpi_allowed` refuses never reach a program).
/// They reach only the jailed program (whose environment it controls
/// anyway); the scrub that follows still drops SLURM_CONF, SLURM_JWT...
fn from_slurmstepd(name: &str) -> bool {
    ["SLURM_", "PMIX_", "PMI_"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Whether a step's MPI plugin (`SLURM_MPI_TYPE`, from slurmstepd's
/// environment: `--mpi`, or the site's MpiDefault) can run in a jail:
/// none, or PMIx (Slurm's PMIx server starts no processes). PMI-2 (and
/// PMI-1 over it) cannot: a task's `spawn` command makes srun, which runs
/// outside any jail, start any program on the nodes unjailed.
fn mpi_allowed(mpi: Option<&str>) -> Result<(), String> {
    match mpi {
        None | Some("none") => Ok(()),
        Some(m) if m == "pmix" || m.starts_with("pmix_v") => Ok(()),
        Some(m) => Err(format!(
            "the step's MPI plugin is {m} (srun --mpi, or the site's MpiDefault): its tasks \
             could have srun start programs outside any jail (PMI spawn); use srun --mpi=pmix \
             or --mpi=none"
        )),
    }
}

/// A `--mpi=pmix` task. PMIx keeps the job's data in the rank's own
/// memory (`gds=hash`): the server's shared-memory store stays read-only
/// in the jail. The step's PMIx client directory stays read-only too:
/// slurmstepd deletes it recursively at the end of the step, and some
/// Slurm releases follow symbolic links there (pmixp_rmdir_recursively
/// stat()s each entry), so a link planted there would make it delete
/// outside the jail. Open MPI, which would make its session directories
/// there, makes them in the jail's own /tmp instead.
fn pmix_step(env: &mut Vec<(String, String)>, shared: bool) {
    let has = |env: &[(String, String)], k: &str| env.iter().any(|(n, _)| n == k);
    if !has(env, "PMIX_NAMESPACE") {
        return;
    }
    // Each task has its own pid namespace. With the step's shared
    // /dev/shm and a pid of its own (`shm`), Open MPI's shared-memory
    // transport (vader) maps its peers' segments; only its single-copy
    // path (process_vm_readv into a peer, in another pid namespace and
    // refused by seccomp) is off. Without them, the ranks of a node would
    // all have the same pid, and vader, which tells a segment's creator
    // from its users by pid, would never map its peers' segments (they
    // crash at the first send): ranks on one node talk over TCP instead.
    // The program's own choice stands.
    let vader = if shared {
        ("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
    } else {
        ("OMPI_MCA_btl", "^vader")
    };
    for (k, v) in [
        ("PMIX_MCA_gds", "hash"),
        ("OMPI_MCA_orte_top_session_dir", "/tmp/ompi-session"),
        vader,
    ] {
        if !has(env, k) {
            env.push((k.into(), v.into()));
        }
    }
}

/// `jail __slurm-job SCRIPT [ARGS]` (the batch wrapper's interpreter) and
/// `jail __slurm-step` (each task of a step). Returns the exit status.
pub fn main(mode: &str, args: &[String]) -> i32 {
    let mut out = None;
    match run(mode, args, &mut out) {
        Ok(code) => code,
        Err(e) => {
            let line = format!("jail: slurm job: {e}");
            eprintln!("{line}");
            // A step's stderr reaches its srun; a batch job's goes to
            // /dev/null (Slurm never opens the user's files): the reason
            // goes to the job's record and its output file instead.
            if mode == JOB_ARG {
                record_failure(&line);
                if let Some(o) = out {
                    o.append(&line);
                }
            }
            crate::exit::EXIT_JAIL_ERROR
        }
    }
}

/// The job's output file, for the reason when its jail cannot be built.
#[derive(Debug)]
struct ReasonFile {
    project: PathBuf,
    path: PathBuf,
    protected: Vec<PathBuf>,
}

impl ReasonFile {
    /// The job's stderr file (its stdout's when they share one).
    fn of(job: &JobSpec, spec: &JailSpec, env: &dyn Fn(&str) -> Option<String>) -> Option<Self> {
        let pattern = job.io.error.as_ref().or(job.io.output.as_ref())?;
        Some(ReasonFile {
            project: spec.project.value.clone(),
            path: PathBuf::from(expand(pattern, env, &short_host(), &spec.user.name)),
            protected: spec
                .filesystem
                .protect
                .iter()
                .map(|p| p.value.clone())
                .collect(),
        })
    }

    /// Where the line may go: a path inside the project, through no
    /// hidden (dot) file or directory (.git, .envrc, .vscode...) and no
    /// protected path, since the write happens outside any jail.
    fn relative(&self) -> Option<PathBuf> {
        use std::path::Component;
        let rel = self.path.strip_prefix(&self.project).ok()?;
        let mut out = PathBuf::new();
        for c in rel.components() {
            match c {
                Component::Normal(n) if !n.as_encoded_bytes().starts_with(b".") => out.push(n),
                _ => return None,
            }
        }
        let full = self.project.join(&out);
        if out.as_os_str().is_empty() || self.protected.iter().any(|p| full.starts_with(p)) {
            return None;
        }
        Some(out)
    }

    /// Appends `line` to the file if it is safe to: opened below the
    /// project through no symbolic link, a regular file with no other
    /// name (a hard link could be a file the jail only reads), never a
    /// FIFO or device (O_NONBLOCK, then checked).
    fn append(&self, line: &str) {
        use std::io::Write;
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::MetadataExt;
        let Some(rel) = self.relative() else {
            return;
        };
        let (Ok(dir), Ok(rel)) = (
            std::fs::File::open(&self.project),
            std::ffi::CString::new(rel.as_os_str().as_bytes()),
        ) else {
            return;
        };
        use std::os::fd::AsRawFd;
        let flags =
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_NOCTTY | libc::O_NONBLOCK;
        let Ok(fd) = crate::sys::open_beneath(dir.as_raw_fd(), &rel, flags, 0o644) else {
            return;
        };
        let mut f = std::fs::File::from(fd);
        match f.metadata() {
            Ok(m) if m.file_type().is_file() && m.nlink() == 1 => {
                let _ = writeln!(f, "{line}");
            }
            _ => {}
        }
    }
}

/// Puts `line` in the job's Comment (`scontrol show job`, and `sacct -o
/// Comment` where the site stores comments), waiting at most 10 s.
fn record_failure(line: &str) {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let Ok(id) = std::env::var("SLURM_JOB_ID") else {
        return;
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return;
    }
    let reason: String = line.chars().filter(|c| !c.is_control()).take(240).collect();
    let Ok(mut child) = Command::new("scontrol")
        .args([
            "update",
            &format!("JobId={id}"),
            &format!("Comment={reason}"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return;
    };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The source of the `host` network a job's jail gets from the site's rule.
const JOB_RULE: &str = "the site's slurm_job_network, on a compute node";

/// Applies the site's rule for the network of jobs' tasks to `spec`:
/// `node` and `cluster` use the node's network namespace; `cluster` also
/// returns the connect supervisor's rules (the allocation's nodes, the
/// site's cluster networks). A jail whose policy is `host` keeps it.
fn job_network(
    spec: &mut crate::config::JailSpec,
) -> Result<Option<crate::outside::connect::Config>, String> {
    use crate::config::profile::{JobNetwork, NetMode};
    use crate::config::spec::{Source, Sourced};
    let jn = spec.slurm.job_network.clone();
    // `host` set by this rule (the policy a batch script's jail hands on
    // to its steps) is not the jail's own `host`: the rule applies again.
    let by_rule = Source::Derived(JOB_RULE.into());
    let own_host = spec.network.mode.value == NetMode::Host && spec.network.mode.source != by_rule;
    if jn.value == JobNetwork::Policy || own_host {
        return Ok(None);
    }
    spec.network.mode = Sourced::new(NetMode::Host, by_rule);
    if jn.value == JobNetwork::Node {
        return Ok(None);
    }
    let nodelist = std::env::var("SLURM_JOB_NODELIST").map_err(|_| {
        "SLURM_JOB_NODELIST is not set: cannot tell the job's nodes (cluster networks)"
    })?;
    let hosts = allocation_addresses(&nodelist)?;
    Ok(Some(crate::outside::connect::Config {
        rules: crate::outside::connect::Rules {
            hosts,
            networks: spec.slurm.cluster_networks.clone(),
            endpoints: pmix_endpoints(std::env::vars())
                .into_iter()
                .filter(listened_by_root)
                .collect(),
        },
    }))
}

/// The loopback endpoints of the step's own PMIx server, from the
/// PMIX_SERVER_URI* variables slurmstepd sets (`NAMESPACE.RANK;tcp4://
/// 127.0.0.1:PORT`): its clients connect there over TCP.
fn pmix_endpoints(vars: impl Iterator<Item = (String, String)>) -> Vec<std::net::SocketAddr> {
    let mut out = Vec::new();
    for (k, v) in vars {
        if !k.starts_with("PMIX_SERVER_URI") {
            continue;
        }
        for part in v.split(';') {
            let addr = part
                .strip_prefix("tcp4://")
                .or_else(|| part.strip_prefix("tcp6://"))
                .and_then(|a| a.parse::<std::net::SocketAddr>().ok());
            if let Some(a) = addr.filter(|a| a.ip().is_loopback()) {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// Whether a root-owned socket listens on loopback endpoint `e` on this
/// node (/proc/net/tcp): slurmstepd's PMIx server is root's; a port a
/// variable names that some user's program listens on is not opened.
fn listened_by_root(e: &std::net::SocketAddr) -> bool {
    let std::net::IpAddr::V4(ip) = e.ip() else {
        return false;
    };
    // /proc/net/tcp: "sl local_address rem_address st ... uid": the
    // address as the kernel's u32 in hex (host order), the port in hex.
    let want = format!("{:08X}:{:04X}", u32::from_ne_bytes(ip.octets()), e.port());
    let Ok(text) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    text.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 7 && f[1] == want && f[3] == "0A" && f[7] == "0"
    })
}

/// The addresses of the nodes of `nodelist` (Slurm's compressed form):
/// expanded by `scontrol show hostnames`, each name resolved here, outside
/// the jail, before the task starts.
fn allocation_addresses(nodelist: &str) -> Result<Vec<std::net::IpAddr>, String> {
    let out = std::process::Command::new("scontrol")
        .args(["show", "hostnames", nodelist])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run scontrol to list the job's nodes: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "scontrol show hostnames {nodelist} failed ({})",
            out.status
        ));
    }
    let mut addrs = Vec::new();
    for name in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let found = std::net::ToSocketAddrs::to_socket_addrs(&(name, 0))
            .map_err(|e| format!("cannot resolve the job's node {name}: {e}"))?;
        for a in found {
            if !addrs.contains(&a.ip()) {
                addrs.push(a.ip());
            }
        }
    }
    if addrs.is_empty() {
        return Err(format!("the job's node list {nodelist} names no node"));
    }
    Ok(addrs)
}

fn run(mode: &str, args: &[String], out: &mut Option<ReasonFile>) -> Result<i32, String> {
    let batch = mode == JOB_ARG;
    if !batch {
        // Before anything runs: slurmstepd's own variable, never the
        // program's.
        mpi_allowed(std::env::var("SLURM_MPI_TYPE").ok().as_deref())?;
    }
    let job = if batch {
        let file = args.first().ok_or("no batch script given")?;
        let text = std::fs::read(file).map_err(|e| JobError::Read(file.clone(), e).to_string())?;
        parse_wrapper(&text, file).map_err(|e| e.to_string())?
    } else {
        let data = std::env::var(STEP_VAR)
            .map_err(|_| format!("{STEP_VAR} is not set: `jail {STEP_ARG}` runs only as a Slurm step started by jail"))?;
        serde_json::from_str::<JobSpec>(&data)
            .map_err(|e| JobError::Decode(e.to_string()).to_string())?
    };
    // The program's environment: what it had when submitting, plus the
    // job's own SLURM_* variables from slurmstepd, scrubbed by the policy
    // once more (SLURM_JWT, SLURM_CONF and the like go).
    let mut env = job.env.clone();
    for (k, v) in std::env::vars() {
        if from_slurmstepd(&k) {
            env.retain(|(n, _)| *n != k);
            env.push((k, v));
        }
    }
    let mut spec = job.spec.clone();
    spec.cwd = job.cwd.clone();
    // On the compute node the site's rule for jobs' networks decides.
    let connect = job_network(&mut spec)?;
    // The step's tasks on this node share a /dev/shm and get distinct
    // pids, so MPI ranks on one node use shared memory; where that cannot
    // be set up, ranks of a node talk over TCP (Open MPI's vader off).
    let shared = if batch { None } else { step_shm() };
    if !batch {
        pmix_step(&mut env, shared.is_some());
        // PMIx's server listens on the node's loopback (TCP): a jail with
        // its own network reaches that one port, as an exposed host port
        // (under cluster networks the supervisor lets it through).
        if spec.network.mode.value != crate::config::profile::NetMode::Host {
            for e in pmix_endpoints(std::env::vars())
                .into_iter()
                .filter(listened_by_root)
            {
                let src = crate::config::spec::Source::Derived(
                    "the Slurm step's PMIx server (slurmstepd)".into(),
                );
                spec.network
                    .expose_host_ports
                    .push(crate::config::spec::Sourced::new(e.port(), src));
            }
        }
    }
    spec.command = if batch {
        std::iter::once(SCRIPT_PATH.to_string())
            .chain(job.command.iter().cloned())
            .collect()
    } else {
        job.command.clone()
    };
    if spec.command.is_empty() {
        return Err("the step has no command".into());
    }
    let extra_vars = vec![
        ("JAIL".to_string(), "1".to_string()),
        ("JAIL_PROFILE".to_string(), spec.profile.value.clone()),
        ("PWD".to_string(), spec.cwd.display().to_string()),
    ];
    let (mut env, _) = crate::config::env::scrub(&env, &spec.env, &extra_vars);
    env.retain(|(k, _)| k != STEP_VAR);
    if spec.slurm.enabled.value {
        crate::outside::chaperon::with_stub_path(&mut env);
    }
    let lookup = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    if batch {
        *out = ReasonFile::of(&job, &spec, &lookup);
    }
    let mut extra = crate::launcher::Extra {
        stdio: redirects(&job.io, &lookup, &spec.user.name),
        shm: shared.as_ref().map(|(s, _)| s.path().to_path_buf()),
        program_pid: shared.as_ref().map(|(_, pid)| *pid),
        connect,
        ..Default::default()
    };
    if batch {
        let script =
            decode_script(job.script.as_deref().unwrap_or_default()).map_err(|e| e.to_string())?;
        extra
            .files
            .push((PathBuf::from(SCRIPT_PATH), script, 0o700));
    }
    let r =
        crate::launcher::run_with(&spec, &env, &job.state, None, extra).map_err(|e| e.to_string());
    if let Some((s, _)) = shared {
        s.finish();
    }
    r
}

/// The step's shared /dev/shm on this node and the program's pid, or
/// None (said at -v) when either cannot be had.
fn step_shm() -> Option<(shm::StepShm, u32)> {
    // slurmstepd's own variables for the task, never the program's.
    let get = |k: &str| std::env::var(k).ok();
    let localid: u32 = get("SLURM_LOCALID")?.parse().ok()?;
    // pid 1 chooses the program's pid there (kernels built without
    // checkpoint/restore lack it): without it, no sharing.
    if !std::path::Path::new("/proc/sys/kernel/ns_last_pid").exists() {
        return None;
    }
    let Some(pid) = shm::pid_max().and_then(|m| shm::program_pid(localid, m)) else {
        tracing::debug!("no pid of its own for local task {localid}: no shared /dev/shm");
        return None;
    };
    match shm::StepShm::open_for_step(nix::unistd::getuid().as_raw(), &get) {
        Ok(s) => Some((s, pid)),
        Err(e) => {
            tracing::warn!("the step's tasks on this node do not share /dev/shm: {e}");
            None
        }
    }
}

#[cfg(test)]
mod cluster_tests {
    use super::*;

    fn spec() -> JailSpec {
        crate::testutil::spec(false)
    }

    #[test]
    fn the_rule_gives_host_and_a_host_it_gave_is_not_the_jails_own() {
        use crate::config::profile::{JobNetwork, NetMode};
        use crate::config::spec::{Source, Sourced};
        let mut s = spec();
        s.network.mode = Sourced::new(NetMode::None, Source::Cli("--net".into()));
        s.slurm.job_network = Sourced::new(JobNetwork::Node, Source::Derived("t".into()));
        assert_eq!(job_network(&mut s), Ok(None));
        assert_eq!(s.network.mode.value, NetMode::Host);
        // The batch jail's policy, handed to its steps: under `cluster`
        // the rule applies again (it needs the job's node list), where a
        // jail's own `host` is kept as it is.
        s.slurm.job_network.value = JobNetwork::Cluster;
        let nodelist = std::env::var_os("SLURM_JOB_NODELIST");
        if nodelist.is_none() {
            assert!(job_network(&mut s.clone()).is_err());
        }
        s.network.mode = Sourced::new(NetMode::Host, Source::Cli("--net".into()));
        assert_eq!(job_network(&mut s), Ok(None));
        assert_eq!(s.network.mode.source, Source::Cli("--net".into()));
        s.slurm.job_network.value = JobNetwork::Policy;
        s.network.mode = Sourced::new(NetMode::None, Source::Cli("--net".into()));
        assert_eq!(job_network(&mut s), Ok(None));
        assert_eq!(s.network.mode.value, NetMode::None);
    }

    #[test]
    fn pmix_endpoints_are_the_servers_loopback_tcp_uris() {
        let vars = [
            ("PMIX_SERVER_URI3", "pmix-server.9;tcp4://127.0.0.1:36553"),
            ("PMIX_SERVER_URI21", "pmix-server.9;tcp4://127.0.0.1:36553"),
            ("PMIX_SERVER_URI2", "pmix-server.9;tcp6://[::1]:4000"),
            ("PMIX_SERVER_URI4", "x;tcp4://198.18.0.1:22"),
            ("OTHER", "x;tcp4://127.0.0.1:22"),
        ];
        let got = pmix_endpoints(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        assert_eq!(
            got,
            vec![
                "127.0.0.1:36553".parse().unwrap(),
                "[::1]:4000".parse().unwrap()
            ]
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_expand_like_slurmstepd() {
        let env = |k: &str| {
            match k {
                "SLURM_JOB_ID" => Some("42"),
                "SLURM_PROCID" => Some("3"),
                "SLURM_JOB_NAME" => Some("n/../x"),
                "SLURM_STEP_ID" => Some("0"),
                _ => None,
            }
            .map(str::to_string)
        };
        assert_eq!(
            expand("out-%j.%t-%4t-%%-%x-%N-%u-%J", &env, "h", "u"),
            "out-42.3-0003-%-n/../x-h-u-42.0"
        );
        assert_eq!(expand("%A_%a", &env, "h", "u"), "42_4294967294");
        assert_eq!(expand("50%", &env, "h", "u"), "50%");
        assert_eq!(expand("%q", &env, "h", "u"), "%q");
    }

    #[test]
    fn only_the_task_s_slurm_and_pmi_variables_come_from_slurmstepd() {
        for n in ["SLURM_JOB_ID", "PMIX_RANK", "PMI_FD", "PMI_RANK"] {
            assert!(from_slurmstepd(n), "{n}");
        }
        for n in ["LD_PRELOAD", "BASH_ENV", "PATH", "OMPI_MCA_x", "PMIXX"] {
            assert!(!from_slurmstepd(n), "{n}");
        }
    }

    #[test]
    fn a_pmix_task_gets_defaults_that_work_in_its_jail_unless_it_chose() {
        let mut env = vec![("OMPI_MCA_btl".to_string(), "self,tcp".to_string())];
        pmix_step(&mut env, false);
        assert_eq!(env.len(), 1, "not a PMIx task: untouched");
        env.push(("PMIX_NAMESPACE".into(), "slurm.pmix.1.0".into()));
        let mut shared = env.clone();
        pmix_step(&mut env, false);
        let get = |env: &[(String, String)], k: &str| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        };
        assert_eq!(get(&env, "OMPI_MCA_btl").as_deref(), Some("self,tcp"));
        assert_eq!(get(&env, "PMIX_MCA_gds").as_deref(), Some("hash"));
        assert_eq!(
            get(&env, "OMPI_MCA_orte_top_session_dir").as_deref(),
            Some("/tmp/ompi-session")
        );
        let mut tcp = vec![("PMIX_NAMESPACE".to_string(), "n".to_string())];
        pmix_step(&mut tcp, false);
        assert_eq!(get(&tcp, "OMPI_MCA_btl").as_deref(), Some("^vader"));
        assert_eq!(get(&tcp, "OMPI_MCA_btl_vader_single_copy_mechanism"), None);
        // With the step's shared /dev/shm, vader stays on.
        shared.retain(|(k, _)| k != "OMPI_MCA_btl");
        pmix_step(&mut shared, true);
        assert_eq!(get(&shared, "OMPI_MCA_btl"), None);
        assert_eq!(
            get(&shared, "OMPI_MCA_btl_vader_single_copy_mechanism").as_deref(),
            Some("none")
        );
    }

    #[test]
    fn the_failure_reason_goes_only_to_a_plain_file_of_the_project() {
        let root = std::env::temp_dir().join(format!("jail-reason-{}", std::process::id()));
        let p = root.join("p");
        std::fs::create_dir_all(p.join("logs")).unwrap();
        let rf = |path: &str| ReasonFile {
            project: p.clone(),
            path: p.join(path),
            protected: vec![p.join("lefthook.yml")],
        };
        let rel = |path: &str| rf(path).relative();
        assert_eq!(rel("logs/out.txt"), Some(PathBuf::from("logs/out.txt")));
        for bad in [".envrc", ".git/hooks/x", "logs/../../x", "lefthook.yml", ""] {
            assert_eq!(rel(bad), None, "{bad}");
        }
        let outside = ReasonFile {
            path: root.join("x"),
            ..rf("x")
        };
        assert_eq!(outside.relative(), None);
        // Written once, as one line.
        rf("logs/out.txt").append("jail: why");
        rf("logs/out.txt").append("jail: why");
        assert_eq!(
            std::fs::read_to_string(p.join("logs/out.txt")).unwrap(),
            "jail: why\njail: why\n"
        );
        // A second name of a file (a hard link) and a link are left alone.
        std::fs::write(root.join("ro.txt"), "ro\n").unwrap();
        std::fs::hard_link(root.join("ro.txt"), p.join("logs/hard.txt")).unwrap();
        std::os::unix::fs::symlink(root.join("ro.txt"), p.join("logs/soft.txt")).unwrap();
        rf("logs/hard.txt").append("jail: why");
        rf("logs/soft.txt").append("jail: why");
        assert_eq!(
            std::fs::read_to_string(root.join("ro.txt")).unwrap(),
            "ro\n"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn only_steps_without_a_spawning_pmi_run() {
        for ok in [None, Some("none"), Some("pmix"), Some("pmix_v4")] {
            assert!(mpi_allowed(ok).is_ok(), "{ok:?}");
        }
        for bad in ["pmi2", "pmi1", "cray_shasta", "openmpi", ""] {
            let e = mpi_allowed(Some(bad)).unwrap_err();
            assert!(e.contains("--mpi=pmix"), "{e}");
        }
    }
}
