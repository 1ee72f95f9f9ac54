//! What the chaperon lets a jailed program ask of Slurm: one table of
//! rules per option (sbatch, srun) and per query command, applied to the
//! options as `opts` parsed them (command line and `#SBATCH` lines
//! alike). The result is the real command line, rebuilt from canonical
//! `--name=value` options, plus what the job needs to run jailed.
//!
//! Pure: the scope of jobs comes in through the `Scope` trait; every rule
//! is unit-tested. Refusals read `refused OPTION: reason` (the chaperon
//! prefixes `jail: slurm: `), exit status 1.
//!
//! Files: slurmstepd opens --output/--error/--input on the compute node
//! as the user, OUTSIDE any jail, and follows symlinks the program may
//! have planted (or swaps in later, while the job waits). So jail never
//! gives Slurm those paths: slurmstepd gets /dev/null, and the job's
//! jail opens the files itself, inside the jail, where hidden paths are
//! absent and only the project is writable. The paths must still name
//! the project (or /dev/null), so nothing is silently lost.

use std::path::{Path, PathBuf};

use super::opts::{self, Opt, Parsed, Table};
use super::scope::{self, Rewriter};
use crate::config::spec::SlurmPolicy;

/// Why a request is not run. Both exit with status 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deny {
    /// `jail: slurm: refused WHAT: REASON`
    Refused { what: String, reason: String },
    /// What the real command would print (`PROG: error: LINE`).
    Native { prog: String, lines: Vec<String> },
}

impl Deny {
    fn refused(what: impl Into<String>, reason: impl Into<String>) -> Deny {
        Deny::Refused {
            what: what.into(),
            reason: reason.into(),
        }
    }

    fn native(prog: &str, line: impl Into<String>) -> Deny {
        Deny::Native {
            prog: prog.into(),
            lines: vec![line.into()],
        }
    }

    /// The stderr text, one line per message.
    pub fn message(&self) -> String {
        match self {
            Deny::Refused { what, reason } => format!("jail: slurm: refused {what}: {reason}\n"),
            Deny::Native { prog, lines } => lines
                .iter()
                .map(|l| format!("{prog}: error: {l}\n"))
                .collect(),
        }
    }
}

/// The jobs this jail may see (records of the project's chaperons).
pub trait Scope {
    /// Whether a job (by its number, or the array/hetjob it belongs to)
    /// was submitted by a chaperon of this user and project.
    fn contains(&self, id: u64) -> bool;
    /// Every job recorded for the project.
    fn recorded(&self) -> Vec<u64>;
    /// The recorded jobs that are pending or running now.
    fn active(&self) -> Vec<u64>;
}

/// What the program's environment becomes inside the job (`--export`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Export {
    /// The submitting environment (Slurm's default), plus `set`.
    All { set: Vec<(String, String)> },
    /// A fresh jail's environment, plus `set` (`NONE`).
    Fresh { set: Vec<(String, String)> },
    /// Only these names from the submitting environment, plus `set`.
    Only {
        names: Vec<String>,
        set: Vec<(String, String)>,
    },
}

/// Output, error and input of a job or step, opened inside its jail.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Io {
    /// File name patterns (`%j` ...), absolute (resolved against the
    /// working directory here).
    pub output: Option<String>,
    pub error: Option<String>,
    pub input: Option<String>,
    /// `--open-mode`: append (true) or truncate (false, Slurm's default).
    pub append: bool,
}

/// A validated sbatch or srun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// Options for the real command (canonical), before the command.
    pub real: Vec<String>,
    /// The job's working directory (inside the project).
    pub cwd: PathBuf,
    /// Where the real command runs (the submit directory).
    pub submit_dir: PathBuf,
    pub export: Export,
    pub io: Io,
    /// It asks for a new allocation: a job to record (and to count
    /// against the cap).
    pub new_job: bool,
    /// srun: the command and its arguments; sbatch: the script's arguments.
    pub command: Vec<String>,
    /// sbatch: the script; srun: None.
    pub script: Option<Vec<u8>>,
    /// Nothing is submitted (`--test-only`).
    pub test_only: bool,
    /// `--array` (its tasks count against the cap).
    pub array: Option<String>,
}

/// What to run for a query command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub args: Vec<String>,
    pub rewrite: Rewriter,
    /// `scontrol show job` without an id: keep only the jobs in scope.
    pub filter_jobs: bool,
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Job(Box<Job>),
    Query(Query),
    /// Answer without running anything: (stdout, exit status).
    Answer(String, i32),
}

pub struct Ctx<'a> {
    pub project: &'a Path,
    /// The stub's working directory (as seen in the jail).
    pub cwd: &'a Path,
    pub policy: &'a SlurmPolicy,
    pub user: &'a str,
    pub uid: u32,
    /// The chaperon runs inside a Slurm job: srun makes steps of it.
    pub in_job: bool,
    pub scope: &'a dyn Scope,
}

/// Variables that make a program run code it was not asked to (shells,
/// the dynamic loader, interpreters): never set through `--export`.
const CODE_VARS: &[&str] = &[
    "BASH_ENV",
    "ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "IFS",
    "CDPATH",
    "GLOBIGNORE",
    "ZDOTDIR",
    "PYTHONSTARTUP",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONINSPECT",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "PERL5DB",
    "RUBYOPT",
    "RUBYLIB",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "LUA_INIT",
    "TCLLIBPATH",
    "GCONV_PATH",
    "GLIBC_TUNABLES",
    "HOSTALIASES",
    "RESOLV_HOST_CONF",
    "LOCALDOMAIN",
    "NLSPATH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
];
const CODE_PREFIXES: &[&str] = &["LD_", "BASH_FUNC_", "MALLOC_", "JAIL", "SLURM_", "SPANK_"];

fn code_var(name: &str) -> bool {
    CODE_VARS.contains(&name) || CODE_PREFIXES.iter().any(|p| name.starts_with(p))
}

fn env_name_ok(n: &str) -> bool {
    !n.is_empty()
        && !n.starts_with(|c: char| c.is_ascii_digit())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What each sbatch/srun option may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Pass,
    Refuse(&'static str),
    Partition,
    Account,
    Qos,
    Output,
    Error,
    Input,
    OpenMode,
    Export,
    Chdir,
    Wrap,
    NodeList,
    Dependency,
    Info,
    TestOnly,
    JobName,
    Mpi,
}

const OTHER_CLUSTERS: &str = "other clusters are not reachable through the chaperon";
const RUNS_OUTSIDE: &str = "it runs a program outside the jail";
const READS_FILE: &str = "Slurm would read that file outside the jail";
const AS_YOU: &str = "jobs always run as you";

fn rule(key: &str) -> Rule {
    use Rule::*;
    match key {
        "account" => Account,
        "partition" => Partition,
        "qos" => Qos,
        "output" => Output,
        "error" => Error,
        "input" => Input,
        "open-mode" => OpenMode,
        "export" => Export,
        "chdir" => Chdir,
        "wrap" => Wrap,
        "nodelist" | "exclude" => NodeList,
        "dependency" => Dependency,
        "help" | "usage" | "version" => Info,
        "test-only" => TestOnly,
        "job-name" => JobName,
        "mpi" => Mpi,
        "bb" | "bbf" => Refuse("burst buffers stage files outside the jail"),
        "cluster-constraint" | "cluster" | "clusters" => Refuse(OTHER_CLUSTERS),
        "container" => Refuse("containers run outside the jail"),
        "context" | "mcs-label" => Refuse("jail does not set security labels"),
        "export-file" | "nodefile" => Refuse(READS_FILE),
        "get-user-env" => {
            Refuse("it runs your login shell's startup files outside the jail on the node")
        }
        "uid" | "gid" => Refuse(AS_YOU),
        "mail-user" => {
            Refuse("Slurm would mail any address (a way out of the jail); --mail-type mails you")
        }
        "network" => Refuse("network options are not supported in a jail"),
        "propagate" => Refuse("the login node's resource limits are not passed on from a jail"),
        "reboot" | "no-allocate" | "slurmd-debug" | "debugger-test" | "interactive" => {
            Refuse("an option for administrators and debuggers")
        }
        "prolog" | "epilog" | "task-prolog" | "task-epilog" => Refuse(RUNS_OUTSIDE),
        "bcast" | "bcast-exclude" | "send-libs" => {
            Refuse("it copies a program to the nodes and runs it there, outside the jail")
        }
        "multi-prog" => {
            Refuse("its configuration file names programs that would run outside the jail")
        }
        "het-group" => Refuse("heterogeneous jobs are not supported in a jail"),
        "jobid" => Refuse("steps join their job through the job's own environment"),
        "pty" => Refuse("pseudo-terminal steps are not supported in a jail yet"),
        "kill-command" | "bell" | "no-bell" | "no-shell" => {
            Refuse("salloc is not available in a jail")
        }
        _ => Pass,
    }
}

fn absolute(base: &Path, p: &str) -> PathBuf {
    crate::config::paths::normalize(&base.join(p))
}

fn in_project(ctx: &Ctx, p: &Path) -> bool {
    p.starts_with(ctx.project)
}

/// A file option: the pattern as an absolute path, or a refusal.
fn file_pattern(ctx: &Ctx, o: &Opt, what: &str, cwd: &Path) -> Result<String, Deny> {
    let v = o.value.clone().unwrap_or_default();
    if v == "/dev/null" {
        return Ok(v);
    }
    let p = absolute(cwd, &v);
    if !in_project(ctx, &p) {
        return Err(Deny::refused(
            what,
            format!(
                "{} is outside the project ({}); slurmstepd would open it outside the jail",
                p.display(),
                ctx.project.display()
            ),
        ));
    }
    Ok(p.display().to_string())
}

/// srun's stdio values that name no file.
fn srun_io_word(v: &str) -> bool {
    v == "all" || v == "none" || (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

fn check_names(
    what: &str,
    names: &[&str],
    allowed: &Option<crate::config::spec::Sourced<Vec<String>>>,
) -> Result<(), Deny> {
    if let Some(a) = allowed {
        if let Some(bad) = names.iter().find(|n| !a.value.iter().any(|x| x == *n)) {
            return Err(Deny::refused(
                what,
                format!(
                    "{bad} is not allowed here (allowed: {}; {})",
                    a.value.join(", "),
                    a.source
                ),
            ));
        }
    }
    Ok(())
}

fn parse_export(o: &Opt, what: &str) -> Result<Export, Deny> {
    let v = o.value.clone().unwrap_or_default();
    let (mut all, mut none) = (false, false);
    let (mut names, mut set) = (Vec::new(), Vec::new());
    for tok in v.split(',') {
        let upper = tok.to_ascii_uppercase();
        if upper == "ALL" {
            all = true;
            continue;
        }
        if upper == "NONE" || upper == "NIL" {
            none = true;
            continue;
        }
        let (name, val) = match tok.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (tok, None),
        };
        if !env_name_ok(name) {
            return Err(Deny::refused(
                what,
                format!("`{tok}` is not a variable name"),
            ));
        }
        if code_var(name) {
            return Err(Deny::refused(
                what,
                format!(
                    "{name} can make programs run code they were not asked to \
                     (like BASH_ENV, LD_PRELOAD)"
                ),
            ));
        }
        match val {
            Some(v) => set.push((name.to_string(), v.to_string())),
            None => names.push(name.to_string()),
        }
    }
    Ok(if all || (!none && names.is_empty() && set.is_empty()) {
        Export::All { set }
    } else if none && names.is_empty() {
        Export::Fresh { set }
    } else {
        Export::Only { names, set }
    })
}

/// Where an option came from, for refusals.
fn shown(o: &Opt, directive: bool) -> String {
    if directive {
        format!("#SBATCH {}", o.shown())
    } else {
        o.shown()
    }
}

/// Where sbatch reads its script from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptFrom {
    /// `--wrap=COMMAND`
    Wrap(String),
    /// The operand (the stub opened it and sent the file).
    File(String),
    /// Standard input.
    Stdin,
    /// `--help`, `--usage`, `--version`: no script at all.
    None,
}

/// Step 1 of sbatch: parse the command line and say where the script is.
pub fn sbatch_source(args: &[String]) -> Result<(Parsed, ScriptFrom), Deny> {
    let p = parse(&Table::SBATCH, "sbatch", args)?;
    if p.opts.iter().any(|o| rule(o.key) == Rule::Info) {
        return Ok((p, ScriptFrom::None));
    }
    let from = match (p.last("wrap"), p.operands.first()) {
        (Some(_), Some(_)) => {
            return Err(Deny::native(
                "sbatch",
                "Script arguments not permitted with --wrap option",
            ))
        }
        (Some(w), None) => ScriptFrom::Wrap(w.value.clone().unwrap_or_default()),
        (None, Some(f)) => ScriptFrom::File(f.clone()),
        (None, None) => ScriptFrom::Stdin,
    };
    Ok((p, from))
}

fn parse(table: &Table, prog: &str, args: &[String]) -> Result<Parsed, Deny> {
    opts::parse(table, args).map_err(|e| match e {
        opts::ParseError::Unknown(o) => Deny::refused(
            o,
            format!("not an option jail lets {prog} take (unknown to Slurm 22.05, or unsafe)"),
        ),
        e => Deny::native(prog, format!("{}: {e}", e.option())),
    })
}

/// Options only for the help text: run the real command with them alone.
fn info_only(p: &Parsed) -> Option<Vec<String>> {
    let info: Vec<String> = p
        .opts
        .iter()
        .filter(|o| rule(o.key) == Rule::Info)
        .map(Opt::canonical)
        .collect();
    (!info.is_empty()).then_some(info)
}

/// Step 2 of sbatch: validate the command line and the script's
/// directives together.
pub fn sbatch(ctx: &Ctx, cli: Parsed, from: &ScriptFrom, script: Vec<u8>) -> Result<Plan, Deny> {
    if let Some(info) = info_only(&cli) {
        return Ok(Plan::Query(Query {
            args: info,
            rewrite: Rewriter::default(),
            filter_jobs: false,
        }));
    }
    super::script::check_body(&script).map_err(script_deny)?;
    let ignore_pbs = cli.has("ignore-pbs");
    let dir = super::script::directives(&script, ignore_pbs).map_err(script_deny)?;
    if let Some(w) = dir.last("wrap") {
        return Err(Deny::refused(
            shown(w, true),
            "--wrap belongs on the command line",
        ));
    }
    let tagged: Vec<(Opt, bool)> = dir
        .opts
        .into_iter()
        .map(|o| (o, true))
        .chain(cli.opts.into_iter().map(|o| (o, false)))
        .collect();
    let mut job = common(ctx, &tagged, false)?;
    job.command = cli.operands.iter().skip(1).cloned().collect();
    if !tagged.iter().any(|(o, _)| o.key == "job-name") {
        let name = match from {
            ScriptFrom::Wrap(_) => "wrap".to_string(),
            ScriptFrom::File(f) => Path::new(f)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "sbatch".into()),
            _ => "sbatch".into(),
        };
        job.real.push(format!("--job-name={name}"));
    }
    if job.io.output.is_none() {
        let array = tagged.iter().any(|(o, _)| o.key == "array");
        let name = if array {
            "slurm-%A_%a.out"
        } else {
            "slurm-%j.out"
        };
        job.io.output = Some(job.cwd.join(name).display().to_string());
    }
    // slurmstepd gets nothing to open; the job's jail opens the files.
    job.real.extend([
        "--output=/dev/null".to_string(),
        "--error=/dev/null".to_string(),
        "--input=/dev/null".to_string(),
        // Never NONE: that runs the login shell's startup files (which a
        // jail with a writable home could have changed) on the node.
        "--export=ALL".to_string(),
    ]);
    job.script = Some(script);
    job.new_job = !job.test_only;
    cap(ctx, &job)?;
    Ok(Plan::Job(Box::new(job)))
}

fn script_deny(e: super::script::ScriptError) -> Deny {
    use super::script::ScriptError as E;
    match e {
        E::Native(lines) => Deny::Native {
            prog: "sbatch".into(),
            lines,
        },
        E::Refused(what, why) => Deny::refused(what, why),
        E::Option(what, opts::ParseError::Unknown(_)) => Deny::refused(
            what,
            "not an option jail lets sbatch take (unknown to Slurm 22.05, or unsafe)",
        ),
        E::Option(what, e) => Deny::native("sbatch", format!("{what}: {e}")),
    }
}

/// How many tasks an `--array` spec makes (`0-15:4,20%2`), or None.
pub fn array_tasks(spec: &str) -> Option<u64> {
    let spec = spec.split('%').next()?;
    let mut n: u64 = 0;
    for part in spec.split(',') {
        let (range, step) = match part.split_once(':') {
            Some((r, s)) => (r, s.parse::<u64>().ok().filter(|s| *s > 0)?),
            None => (part, 1),
        };
        let count = match range.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (a.parse::<u64>().ok()?, b.parse::<u64>().ok()?);
                if b < a {
                    return None;
                }
                (b - a) / step + 1
            }
            None => {
                range.parse::<u64>().ok()?;
                1
            }
        };
        n = n.checked_add(count)?;
    }
    Some(n)
}

/// The site's cap on the project's jobs (an array counts its tasks).
fn cap(ctx: &Ctx, job: &Job) -> Result<(), Deny> {
    if let (true, Some(max)) = (job.new_job, &ctx.policy.max_jobs) {
        let tasks = match &job.array {
            Some(spec) => array_tasks(spec).ok_or_else(|| {
                Deny::refused(
                    format!("--array={spec}"),
                    "jail cannot count its tasks against the site's cap on jobs",
                )
            })?,
            None => 1,
        };
        let n = ctx.scope.active().len() as u64;
        if n + tasks > u64::from(max.value) {
            return Err(Deny::refused(
                "submission",
                format!(
                    "{n} job(s) of this project are pending or running and at most {} are \
                     allowed ({})",
                    max.value, max.source
                ),
            ));
        }
    }
    Ok(())
}

/// The rules sbatch and srun share, over (option, from a directive).
fn common(ctx: &Ctx, opts: &[(Opt, bool)], srun: bool) -> Result<Job, Deny> {
    // The working directory first: file options are relative to it. The
    // stub's directory is what the program says it is: taken lexically.
    let here = absolute(Path::new("/"), &ctx.cwd.to_string_lossy());
    let mut cwd = here.clone();
    let mut chdir = false;
    for (o, d) in opts.iter().filter(|(o, _)| o.key == "chdir") {
        let p = absolute(&here, o.value.as_deref().unwrap_or_default());
        if !in_project(ctx, &p) {
            return Err(Deny::refused(
                shown(o, *d),
                format!(
                    "{} is outside the project ({})",
                    p.display(),
                    ctx.project.display()
                ),
            ));
        }
        cwd = p;
        chdir = true;
    }
    if !in_project(ctx, &cwd) {
        return Err(Deny::refused(
            format!("the working directory {}", cwd.display()),
            format!(
                "jobs start inside the project ({}); cd there or give --chdir",
                ctx.project.display()
            ),
        ));
    }
    let step = srun && ctx.in_job;
    let mut job = Job {
        real: Vec::new(),
        cwd: cwd.clone(),
        submit_dir: if in_project(ctx, &here) {
            here.clone()
        } else {
            ctx.project.to_path_buf()
        },
        export: Export::All { set: Vec::new() },
        io: Io::default(),
        new_job: !step,
        command: Vec::new(),
        script: None,
        test_only: false,
        array: None,
    };
    let (mut partition, mut account, mut qos) = (false, false, false);
    for (o, d) in opts {
        let what = shown(o, *d);
        let value = o.value.as_deref().unwrap_or_default();
        match rule(o.key) {
            Rule::Refuse(why) => return Err(Deny::refused(what, why)),
            Rule::Info => return Err(Deny::refused(what, "only on its own (it prints help)")),
            Rule::Wrap => {} // sbatch took it already
            Rule::Partition => {
                check_names(
                    &what,
                    &value.split(',').collect::<Vec<_>>(),
                    &ctx.policy.partitions,
                )?;
                partition = true;
                job.real.push(o.canonical());
            }
            Rule::Account => {
                check_names(&what, &[value], &ctx.policy.accounts)?;
                account = true;
                job.real.push(o.canonical());
            }
            Rule::Qos => {
                check_names(&what, &[value], &ctx.policy.qos)?;
                qos = true;
                job.real.push(o.canonical());
            }
            Rule::Output | Rule::Error | Rule::Input => {
                if srun && srun_io_word(value) {
                    job.real.push(o.canonical());
                    continue;
                }
                let p = file_pattern(ctx, o, &what, &cwd)?;
                match rule(o.key) {
                    Rule::Output => job.io.output = Some(p),
                    Rule::Error => job.io.error = Some(p),
                    _ => job.io.input = Some(p),
                }
            }
            Rule::OpenMode => {
                let v = value.to_ascii_lowercase();
                job.io.append = if v.starts_with('a') {
                    true
                } else if v.starts_with('t') {
                    false
                } else {
                    return Err(Deny::native(
                        if srun { "srun" } else { "sbatch" },
                        format!("Invalid --open-mode argument: {value}. Ignored"),
                    ));
                };
            }
            Rule::Export => job.export = parse_export(o, &what)?,
            Rule::Chdir => {} // done above
            Rule::NodeList => {
                if value.contains('/') {
                    return Err(Deny::refused(what, READS_FILE));
                }
                job.real.push(o.canonical());
            }
            Rule::Dependency => {
                for part in value.split([',', '?']) {
                    let ids = part.split_once(':').map(|(_, ids)| ids).unwrap_or("");
                    for id in ids.split(':').filter(|s| !s.is_empty()) {
                        let id = id.split('+').next().unwrap_or(id);
                        let ok = scope::base_id(id).is_some_and(|b| ctx.scope.contains(b));
                        if !ok {
                            return Err(Deny::refused(
                                what,
                                format!("job {id} is not one of this project's jobs"),
                            ));
                        }
                    }
                }
                job.real.push(o.canonical());
            }
            Rule::TestOnly => {
                job.test_only = true;
                job.real.push(o.canonical());
            }
            Rule::Mpi => {
                // PMI-2 (and PMI-1) take a task's `spawn`: srun, outside
                // any jail, would start the program it names unjailed.
                // The job launcher on the node refuses them too (a site's
                // MpiDefault needs no option).
                let ok = ["none", "pmix", "list"].contains(&value) || value.starts_with("pmix_v");
                if !ok {
                    return Err(Deny::refused(
                        what,
                        "its tasks could have srun start programs outside any jail (PMI spawn); \
                         use --mpi=pmix or --mpi=none",
                    ));
                }
                job.real.push(o.canonical());
            }
            Rule::JobName | Rule::Pass => {
                if o.key == "array" {
                    job.array = o.value.clone();
                }
                job.real.push(o.canonical())
            }
        }
    }
    if chdir || !step {
        job.real.push(format!("--chdir={}", cwd.display()));
    }
    if !step {
        let p = &ctx.policy;
        if let (false, Some(list)) = (partition, &p.partitions) {
            job.real
                .push(format!("--partition={}", list.value.join(",")));
        }
        for (given, list, opt) in [(account, &p.accounts, "--account"), (qos, &p.qos, "--qos")] {
            if let (false, Some(l)) = (given, list) {
                return Err(Deny::refused(
                    format!("a job without {opt}"),
                    format!("name one of {} ({})", l.value.join(", "), l.source),
                ));
            }
        }
    }
    Ok(job)
}

/// srun: validate; the command runs jailed on the nodes.
pub fn srun(ctx: &Ctx, args: &[String]) -> Result<Plan, Deny> {
    let p = parse(&Table::SRUN, "srun", args)?;
    if let Some(info) = info_only(&p) {
        return Ok(Plan::Query(Query {
            args: info,
            rewrite: Rewriter::default(),
            filter_jobs: false,
        }));
    }
    let tagged: Vec<(Opt, bool)> = p.opts.iter().cloned().map(|o| (o, false)).collect();
    let mut job = common(ctx, &tagged, true)?;
    if let (true, Some(c)) = (job.new_job, p.last("comment")) {
        return Err(Deny::refused(
            c.shown(),
            "the chaperon finds the job srun makes by its comment (sbatch takes --comment)",
        ));
    }
    if p.operands.is_empty() {
        return Err(Deny::Native {
            prog: "srun".into(),
            lines: vec!["No command given to execute.".into()],
        });
    }
    job.command = p.operands.clone();
    // Files the step's jail opens: slurmstepd gives the tasks nothing for
    // them, and srun neither reads its stdin nor prints that output.
    for (set, opt) in [
        (job.io.input.is_some(), "--input=none"),
        (job.io.output.is_some(), "--output=none"),
        (
            job.io.error.is_some() || job.io.output.is_some(),
            "--error=none",
        ),
    ] {
        if set {
            job.real.push(opt.into());
        }
    }
    // The real command is jail's binary: name the job after the program,
    // as srun would.
    if job.new_job && !p.has("job-name") {
        let base = p.operands[0].rsplit('/').next().unwrap_or_default();
        job.real.push(format!("--job-name={base}"));
    }
    job.real.push("--export=ALL".into());
    if job.test_only {
        job.new_job = false;
    }
    cap(ctx, &job)?;
    Ok(Plan::Job(Box::new(job)))
}

/// salloc would start a shell (or command) on the login node, outside the
/// jail, holding the allocation.
pub fn salloc() -> Deny {
    Deny::refused(
        "salloc",
        "its shell would run outside the jail; use `srun COMMAND` (one step) or `sbatch`",
    )
}

/// `-u`/`--user` naming anyone but the caller.
fn user_ok(ctx: &Ctx, v: &str) -> bool {
    v.split(',')
        .all(|u| u == ctx.user || u.parse::<u32>().ok() == Some(ctx.uid))
}

fn query_common(ctx: &Ctx, o: &Opt, refuse: &[(&str, &str)]) -> Result<(), Deny> {
    if let Some((_, why)) = refuse.iter().find(|(k, _)| *k == o.key) {
        return Err(Deny::refused(o.shown(), *why));
    }
    if o.key == "user" && !user_ok(ctx, o.value.as_deref().unwrap_or_default()) {
        return Err(Deny::refused(
            o.shown(),
            "other users' jobs are not visible from a jail",
        ));
    }
    Ok(())
}

const OTHER_JOBS: &str = "only this project's jobs are visible from a jail";

/// The recorded jobs as a --jobs list; with none, a list of two ids that
/// never exist (one alone is an error to squeue, two are an empty list).
fn scope_list(ctx: &Ctx) -> String {
    let ids = ctx.scope.recorded();
    if ids.is_empty() {
        let s = scope::sentinel(0);
        format!("{s},{s}")
    } else {
        ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
    }
}

fn in_scope<'a>(ctx: &'a Ctx) -> impl Fn(u64) -> bool + 'a {
    move |id| ctx.scope.contains(id)
}

fn too_many(what: &str) -> Deny {
    Deny::refused(
        what,
        "not a job id, or too many jobs of others named at once",
    )
}

pub fn squeue(ctx: &Ctx, args: &[String]) -> Result<Plan, Deny> {
    let p = parse(&Table::SQUEUE, "squeue", args)?;
    let refuse = [
        ("clusters", OTHER_CLUSTERS),
        ("federation", OTHER_CLUSTERS),
        ("sibling", OTHER_CLUSTERS),
        ("U", "not an option jail passes on"),
        (
            "json",
            "machine-readable listings bypass the job filter in Slurm 22.05",
        ),
        (
            "yaml",
            "machine-readable listings bypass the job filter in Slurm 22.05",
        ),
    ];
    let scope_fn = in_scope(ctx);
    let mut rw = Rewriter::default();
    let mut args = Vec::new();
    let mut jobs = None;
    let mut steps = None;
    for o in &p.opts {
        query_common(ctx, o, &refuse)?;
        match o.key {
            // `-j` alone: every job (in scope), or the list that follows.
            "jobs" => jobs = Some(o.value.clone()),
            "steps" => steps = Some(o.value.clone()),
            _ => args.push(o.canonical()),
        }
    }
    // squeue reads `-j LIST` / `-s LIST` (optional values given apart)
    // from the first operand; any other operand is an error.
    let mut operands = p.operands.iter();
    if let Some(first) = operands.next() {
        match (&mut jobs, &mut steps) {
            (Some(j), _) => *j = Some(first.clone()),
            (None, Some(s)) => *s = Some(first.clone()),
            _ => {
                return Err(Deny::native(
                    "squeue",
                    format!("Unrecognized option: {first}"),
                ))
            }
        }
    }
    if let Some(extra) = operands.next() {
        return Err(Deny::native(
            "squeue",
            format!("Unrecognized option: {extra}"),
        ));
    }
    if let Some(s) = steps {
        match s {
            Some(v) => args.push(format!(
                "--steps={}",
                rw.list(&v, &scope_fn).map_err(|_| too_many(&v))?
            )),
            None => args.push("--steps".into()),
        }
    }
    let jobs = match jobs.flatten() {
        Some(v) => Some(rw.list(&v, &scope_fn).map_err(|_| too_many(&v))?),
        None => None,
    };
    if !p
        .opts
        .iter()
        .any(|o| matches!(o.key, "help" | "usage" | "version"))
    {
        args.push(format!(
            "--jobs={}",
            jobs.unwrap_or_else(|| scope_list(ctx))
        ));
    }
    Ok(Plan::Query(Query {
        args,
        rewrite: rw,
        filter_jobs: false,
    }))
}

pub fn scancel(ctx: &Ctx, args: &[String]) -> Result<Plan, Deny> {
    let p = parse(&Table::SCANCEL, "scancel", args)?;
    let refuse = [("clusters", OTHER_CLUSTERS), ("sibling", OTHER_CLUSTERS)];
    let mut args = Vec::new();
    let mut filters = false;
    for o in &p.opts {
        query_common(ctx, o, &refuse)?;
        if matches!(
            o.key,
            "account"
                | "name"
                | "partition"
                | "qos"
                | "reservation"
                | "state"
                | "nodelist"
                | "wckey"
                | "me"
                | "user"
        ) {
            filters = true;
        }
        args.push(o.canonical());
    }
    if p.opts
        .iter()
        .any(|o| matches!(o.key, "help" | "usage" | "version"))
    {
        return Ok(Plan::Query(Query {
            args,
            rewrite: Rewriter::default(),
            filter_jobs: false,
        }));
    }
    let scope_fn = in_scope(ctx);
    let mut rw = Rewriter::default();
    if p.operands.is_empty() {
        if filters {
            // scancel -u me, --name=x ...: every matching job of the
            // user; here only the project's jobs that are still active.
            let active = ctx.scope.active();
            if active.is_empty() {
                return Ok(Plan::Answer(String::new(), 0));
            }
            args.extend(active.iter().map(u64::to_string));
        }
    } else {
        for t in &p.operands {
            args.push(rw.token(t, &scope_fn).map_err(|_| too_many(t))?);
        }
    }
    Ok(Plan::Query(Query {
        args,
        rewrite: rw,
        filter_jobs: false,
    }))
}

pub fn sacct(ctx: &Ctx, args: &[String]) -> Result<Plan, Deny> {
    let p = parse(&Table::SACCT, "sacct", args)?;
    let refuse = [
        ("allusers", OTHER_JOBS),
        ("clusters", OTHER_CLUSTERS),
        ("allclusters", OTHER_CLUSTERS),
        ("federation", OTHER_CLUSTERS),
        (
            "env-vars",
            "a job's environment holds your login environment, which the jail hides",
        ),
        ("file", READS_FILE),
        ("group", OTHER_JOBS),
        ("use-local-uid", "not an option jail passes on"),
    ];
    let scope_fn = in_scope(ctx);
    let mut rw = Rewriter::default();
    let mut args = Vec::new();
    let mut jobs = None;
    for o in &p.opts {
        query_common(ctx, o, &refuse)?;
        match o.key {
            "jobs" => {
                let v = o.value.as_deref().unwrap_or_default();
                jobs = Some(rw.list(v, &scope_fn).map_err(|_| too_many(&o.shown()))?);
            }
            _ => args.push(o.canonical()),
        }
    }
    if let Some(first) = p.operands.first() {
        return Err(Deny::native("sacct", format!("Unknown arguments: {first}")));
    }
    if p.opts
        .iter()
        .any(|o| matches!(o.key, "help" | "usage" | "version" | "helpformat"))
    {
        return Ok(Plan::Query(Query {
            args,
            rewrite: rw,
            filter_jobs: false,
        }));
    }
    let asked = jobs.is_some();
    args.push(format!(
        "--jobs={}",
        jobs.unwrap_or_else(|| match ctx.scope.recorded().is_empty() {
            true => scope::sentinel(0).to_string(),
            false => scope_list(ctx),
        })
    ));
    // Without -j sacct lists today's jobs; the forced --jobs would lift
    // that window, so keep it.
    if !asked && !p.has("starttime") {
        args.push("--starttime=00:00:00".into());
    }
    Ok(Plan::Query(Query {
        args,
        rewrite: rw,
        filter_jobs: false,
    }))
}

/// scontrol: `show` of jobs (scoped), partitions, nodes, config, steps;
/// hold/release/requeue and a few `update` keys of the project's jobs.
pub fn scontrol(ctx: &Ctx, args: &[String]) -> Result<Plan, Deny> {
    let p = parse(&Table::SCONTROL, "scontrol", args)?;
    let refuse = [
        ("clusters", OTHER_CLUSTERS),
        ("federation", OTHER_CLUSTERS),
        ("sibling", OTHER_CLUSTERS),
        ("uid", AS_YOU),
    ];
    let mut out: Vec<String> = Vec::new();
    for o in &p.opts {
        query_common(ctx, o, &refuse)?;
        out.push(o.canonical());
    }
    let info = p.opts.iter().any(|o| matches!(o.key, "help" | "version"));
    let words = &p.operands;
    let plan = |args: Vec<String>, rewrite: Rewriter, filter_jobs: bool| {
        Ok(Plan::Query(Query {
            args,
            rewrite,
            filter_jobs,
        }))
    };
    if words.is_empty() {
        if info {
            return plan(out, Rewriter::default(), false);
        }
        return Err(Deny::refused(
            "scontrol",
            "interactive scontrol is not available in a jail; give a command",
        ));
    }
    let is = |w: &str, full: &str, min: usize| {
        w.len() >= min.min(full.len()) && full.starts_with(&w.to_ascii_lowercase())
    };
    let scope_fn = in_scope(ctx);
    let mut rw = Rewriter::default();
    let cmd = words[0].as_str();
    let rest = &words[1..];
    if is(cmd, "show", 3) {
        let entity = rest.first().map(String::as_str).unwrap_or("");
        let ent = entity.to_ascii_lowercase();
        let target = rest.get(1);
        if rest.len() > 2 {
            return Err(Deny::native(
                "scontrol",
                "too many arguments for keyword:show",
            ));
        }
        out.push("show".into());
        if ent == "job" || ent == "jobs" || ent == "jobid" {
            out.push("job".into());
            return match target {
                Some(t) => {
                    out.push(rw.token(t, &scope_fn).map_err(|_| too_many(t))?);
                    plan(out, rw, false)
                }
                None => plan(out, rw, true),
            };
        }
        if ent == "step" || ent == "steps" {
            let Some(t) = target else {
                return Err(Deny::refused(
                    "scontrol show step",
                    "name the step (JOBID.STEP): other users' steps are not visible",
                ));
            };
            out.push("step".into());
            out.push(rw.token(t, &scope_fn).map_err(|_| too_many(t))?);
            return plan(out, rw, false);
        }
        let public = [
            "partition",
            "partitions",
            "node",
            "nodes",
            "config",
            "hostnames",
            "hostlist",
            "hostlistsorted",
            "topology",
            "licenses",
            "reservation",
            "reservations",
            "daemons",
        ];
        if public.contains(&ent.as_str()) {
            out.extend(rest.iter().cloned());
            return plan(out, rw, false);
        }
        return Err(Deny::refused(
            format!("scontrol show {entity}"),
            "not available in a jail (jobs, steps, partitions, nodes, config are)",
        ));
    }
    if ["hold", "uhold", "release", "requeue", "requeuehold"]
        .contains(&cmd.to_ascii_lowercase().as_str())
    {
        out.push(cmd.to_ascii_lowercase());
        let mut tokens = Vec::new();
        for w in rest {
            if w.contains('=') {
                // State=SpecialExit / Incomplete for requeuehold
                if w.to_ascii_lowercase().starts_with("state=") {
                    tokens.push(w.clone());
                    continue;
                }
                return Err(Deny::refused(format!("scontrol {cmd} {w}"), "name job ids"));
            }
            tokens.push(rw.list(w, &scope_fn).map_err(|_| too_many(w))?);
        }
        out.extend(tokens);
        return plan(out, rw, false);
    }
    if is(cmd, "update", 2) {
        return scontrol_update(ctx, out, rest);
    }
    if ["ping", "version"].contains(&cmd.to_ascii_lowercase().as_str()) {
        out.push(cmd.to_ascii_lowercase());
        return plan(out, rw, false);
    }
    Err(Deny::refused(
        format!("scontrol {cmd}"),
        "not available in a jail (show, hold, release, requeue, update of your jobs are)",
    ))
}

/// Keys of `scontrol update job` a jailed program may change.
const UPDATE_KEYS: &[&str] = &[
    "timelimit",
    "name",
    "jobname",
    "nice",
    "comment",
    "starttime",
    "deadline",
    "numnodes",
    "numtasks",
    "numcpus",
    "minmemorynode",
    "minmemorycpu",
    "partition",
    "qos",
    "account",
];

fn scontrol_update(ctx: &Ctx, mut out: Vec<String>, words: &[String]) -> Result<Plan, Deny> {
    let scope_fn = in_scope(ctx);
    let mut rw = Rewriter::default();
    out.push("update".into());
    let mut job = false;
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(Deny::refused(
                format!("scontrol update {w}"),
                "expected KEY=VALUE",
            ));
        };
        let key = k.to_ascii_lowercase();
        if key == "jobid" || key == "job" {
            out.push(format!(
                "JobId={}",
                rw.list(v, &scope_fn).map_err(|_| too_many(w))?
            ));
            job = true;
            continue;
        }
        if !UPDATE_KEYS.contains(&key.as_str()) {
            return Err(Deny::refused(
                format!("scontrol update {k}"),
                format!("jail lets you change only {}", UPDATE_KEYS.join(", ")),
            ));
        }
        let what = format!("scontrol update {w}");
        match key.as_str() {
            "partition" => check_names(
                &what,
                &v.split(',').collect::<Vec<_>>(),
                &ctx.policy.partitions,
            )?,
            "qos" => check_names(&what, &[v], &ctx.policy.qos)?,
            "account" => check_names(&what, &[v], &ctx.policy.accounts)?,
            _ => {}
        }
        out.push(w.clone());
    }
    if !job {
        return Err(Deny::refused(
            "scontrol update",
            "only jobs may be updated from a jail (name JobId=)",
        ));
    }
    Ok(Plan::Query(Query {
        args: out,
        rewrite: rw,
        filter_jobs: false,
    }))
}

/// Keeps the jobs in scope in `scontrol show job` output (blocks, or one
/// line per job with --oneliner); says so when none is left.
pub fn filter_jobs(text: &str, scope: &dyn Scope) -> String {
    let keep = |block: &str| {
        let field = |name: &str| {
            block
                .split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .and_then(|v| v.parse::<u64>().ok())
        };
        ["JobId=", "ArrayJobId=", "HetJobId="]
            .iter()
            .filter_map(|f| field(f))
            .any(|id| scope.contains(id))
    };
    let mut out = String::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut String| {
        if !cur.trim().is_empty() && keep(cur) {
            out.push_str(cur);
        }
        cur.clear();
    };
    for line in text.split_inclusive('\n') {
        if line.starts_with("JobId=") {
            flush(&mut cur, &mut out);
        }
        cur.push_str(line);
    }
    flush(&mut cur, &mut out);
    if out.trim().is_empty() {
        "No jobs in the system\n".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::spec::{Source, Sourced};

    struct Fake {
        ids: Vec<u64>,
        active: Vec<u64>,
    }

    impl Scope for Fake {
        fn contains(&self, id: u64) -> bool {
            self.ids.contains(&id)
        }
        fn recorded(&self) -> Vec<u64> {
            self.ids.clone()
        }
        fn active(&self) -> Vec<u64> {
            self.active.clone()
        }
    }

    fn policy() -> SlurmPolicy {
        SlurmPolicy {
            enabled: Sourced::new(true, Source::Derived("t".into())),
            partitions: None,
            accounts: None,
            qos: None,
            max_jobs: None,
            job_network: Sourced::new(Default::default(), Source::Derived("t".into())),
            cluster_networks: Vec::new(),
        }
    }

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    struct T {
        policy: SlurmPolicy,
        scope: Fake,
        in_job: bool,
        cwd: PathBuf,
    }

    impl T {
        fn new() -> T {
            T {
                policy: policy(),
                scope: Fake {
                    ids: vec![5, 6],
                    active: vec![5],
                },
                in_job: false,
                cwd: "/p/sub".into(),
            }
        }
        fn ctx(&self) -> Ctx<'_> {
            Ctx {
                project: Path::new("/p"),
                cwd: &self.cwd,
                policy: &self.policy,
                user: "u",
                uid: 1000,
                in_job: self.in_job,
                scope: &self.scope,
            }
        }
        fn sbatch(&self, args: &[&str], script: &str) -> Result<Job, Deny> {
            let (p, from) = sbatch_source(&v(args))?;
            match sbatch(&self.ctx(), p, &from, script.as_bytes().to_vec())? {
                Plan::Job(j) => Ok(*j),
                other => panic!("{other:?}"),
            }
        }
        fn srun(&self, args: &[&str]) -> Result<Job, Deny> {
            match srun(&self.ctx(), &v(args))? {
                Plan::Job(j) => Ok(*j),
                other => panic!("{other:?}"),
            }
        }
        fn query(
            &self,
            f: fn(&Ctx, &[String]) -> Result<Plan, Deny>,
            args: &[&str],
        ) -> Result<Query, Deny> {
            match f(&self.ctx(), &v(args))? {
                Plan::Query(q) => Ok(q),
                other => panic!("{other:?}"),
            }
        }
    }

    const SH: &str = "#!/bin/sh\necho hi\n";

    #[track_caller]
    fn refused(r: Result<impl std::fmt::Debug, Deny>, what: &str) {
        match r {
            Err(Deny::Refused { what: w, reason }) => {
                assert!(w.contains(what), "refused {w}: {reason}, expected {what}")
            }
            other => panic!("expected a refusal of {what}, got {other:?}"),
        }
    }

    #[test]
    fn refusal_format_is_the_contract() {
        let d = Deny::refused("--uid=0", "jobs always run as you");
        assert_eq!(
            d.message(),
            "jail: slurm: refused --uid=0: jobs always run as you\n"
        );
    }

    /// Every refusal rule, on the command line and in `#SBATCH` lines.
    #[test]
    fn dangerous_options_are_refused_in_every_form() {
        let t = T::new();
        let cases: &[(&[&str], &str)] = &[
            (&["--uid=0"], "--uid"),
            (&["--gid", "0"], "--gid"),
            (&["--get-user-env"], "--get-user-env"),
            (&["--chdir=/etc"], "--chdir"),
            (&["-D", "/tmp"], "-D"),
            (&["-D../../etc"], "-D"),
            (&["--export=ALL,BASH_ENV=/p/x"], "--export"),
            (&["--export=LD_PRELOAD=/p/x.so"], "--export"),
            (&["--export=ENV=/p/x"], "--export"),
            (&["--export=LD_LIBRARY_PATH"], "--export"),
            (&["--export=PROMPT_COMMAND=x"], "--export"),
            (&["--export=BASH_FUNC_ls%%=x"], "--export"),
            (&["--export-file=/home/u/.ssh/id_rsa"], "--export-file"),
            (&["--container=/p/c"], "--container"),
            (&["-o", "/home/u/.bashrc"], "-o"),
            (&["--output=../../x"], "--output"),
            (&["-e/etc/x"], "-e"),
            (&["--input=/home/u/.ssh/id_rsa"], "--input"),
            (&["-i", "../../.ssh/id_rsa"], "-i"),
            (&["--mail-user=x@evil.example"], "--mail-user"),
            (&["--nodefile=/etc/hosts"], "--nodefile"),
            (&["-w", "/home/u/.ssh/id_rsa"], "-w"),
            (&["--bbf=/p/x"], "--bbf"),
            (&["-M", "other"], "-M"),
            (&["--dependency=afterok:99"], "--dependency"),
            (&["--propagate=ALL"], "--propagate"),
            (&["--get"], "--get"),
        ];
        for (args, what) in cases {
            let mut a = args.to_vec();
            a.push("job.sh");
            refused(t.sbatch(&a, SH), what);
            // The same option as a directive.
            let line = args.join(" ");
            let script = format!("#!/bin/sh\n#SBATCH {line}\necho\n");
            refused(t.sbatch(&["job.sh"], &script), what);
        }
    }

    #[test]
    fn short_flag_smuggling_in_directives_is_caught() {
        let t = T::new();
        refused(
            t.sbatch(
                &["j.sh"],
                "#!/bin/sh\n#SBATCH -t 5 -i /home/u/.ssh/id_rsa\n",
            ),
            "-i",
        );
        refused(
            t.sbatch(&["j.sh"], "#!/bin/sh\n#SBATCH -t 5 -o/etc/cron.d/x\n"),
            "-o",
        );
        refused(t.sbatch(&["j.sh"], "#!/bin/sh\n#SBATCH -HD /\n"), "-D");
        refused(
            t.sbatch(&["j.sh"], "#!/bin/sh\n#SBATCH --out\n#SBATCH /home/u/x\n"),
            "--out",
        );
        refused(t.sbatch(&["j.sh"], "#!/bin/sh\n#SLURM --uid=0\n"), "--uid");
    }

    #[test]
    fn a_plain_submission_is_rebuilt_safely() {
        let t = T::new();
        let j = t
            .sbatch(
                &[
                    "-J",
                    "n",
                    "-t5",
                    "--output=logs/%x-%j.out",
                    "job.sh",
                    "a",
                    "b",
                ],
                "#!/bin/sh\n#SBATCH -n 1\n#SBATCH --export=FOO=1\necho\n",
            )
            .unwrap();
        assert_eq!(
            j.real,
            v(&[
                "--ntasks=1",
                "--job-name=n",
                "--time=5",
                "--chdir=/p/sub",
                "--output=/dev/null",
                "--error=/dev/null",
                "--input=/dev/null",
                "--export=ALL",
            ])
        );
        assert_eq!(j.io.output.as_deref(), Some("/p/sub/logs/%x-%j.out"));
        assert_eq!(j.command, v(&["a", "b"]));
        assert_eq!(
            j.export,
            Export::Only {
                names: vec![],
                set: vec![("FOO".into(), "1".into())]
            }
        );
        assert!(j.new_job);
    }

    #[test]
    fn command_line_beats_directives_and_defaults_follow_sbatch() {
        let t = T::new();
        let j = t
            .sbatch(
                &["-o", "cli.out", "j.sh"],
                "#!/bin/sh\n#SBATCH -o dir.out\n",
            )
            .unwrap();
        assert_eq!(j.io.output.as_deref(), Some("/p/sub/cli.out"));
        assert!(j.real.contains(&"--job-name=j.sh".into()));
        let j = t.sbatch(&["--array=1-3", "j.sh"], SH).unwrap();
        assert_eq!(j.io.output.as_deref(), Some("/p/sub/slurm-%A_%a.out"));
        let j = t.sbatch(&["-D", "..", "j.sh"], SH).unwrap();
        assert_eq!(j.cwd, Path::new("/p"));
        assert_eq!(j.io.output.as_deref(), Some("/p/slurm-%j.out"));
        let j = t.sbatch(&["-o", "/dev/null", "j.sh"], SH).unwrap();
        assert_eq!(j.io.output.as_deref(), Some("/dev/null"));
    }

    #[test]
    fn wrap_and_stdin_scripts() {
        let (p, from) = sbatch_source(&v(&["--wrap", "echo hi"])).unwrap();
        assert_eq!(from, ScriptFrom::Wrap("echo hi".into()));
        let t = T::new();
        // The wrap script's directives are checked as sbatch would read them.
        let body = crate::outside::chaperon::script::wrap("#SBATCH --uid=0\ntrue");
        refused(sbatch(&t.ctx(), p.clone(), &from, body), "--uid");
        let body = crate::outside::chaperon::script::wrap("echo hi");
        match sbatch(&t.ctx(), p, &from, body).unwrap() {
            Plan::Job(j) => assert!(j.real.contains(&"--job-name=wrap".into())),
            other => panic!("{other:?}"),
        }
        assert_eq!(sbatch_source(&v(&["-n1"])).unwrap().1, ScriptFrom::Stdin);
        assert!(matches!(
            sbatch_source(&v(&["--wrap=x", "s.sh"])),
            Err(Deny::Native { .. })
        ));
        assert_eq!(sbatch_source(&v(&["--help"])).unwrap().1, ScriptFrom::None);
        refused(
            t.sbatch(&["j.sh"], "#!/bin/sh\n#SBATCH --wrap=id\n"),
            "--wrap",
        );
    }

    #[test]
    fn the_working_directory_must_be_in_the_project() {
        let mut t = T::new();
        t.cwd = "/p/../etc".into();
        refused(t.sbatch(&["j.sh"], SH), "working directory");
        t.cwd = "/tmp".into();
        refused(t.sbatch(&["j.sh"], SH), "working directory");
        refused(t.srun(&["true"]), "working directory");
        let j = t.sbatch(&["-D", "/p/x", "j.sh"], SH).unwrap();
        assert_eq!(j.submit_dir, Path::new("/p"));
    }

    #[test]
    fn site_lists_and_the_cap() {
        let mut t = T::new();
        t.policy.partitions = Some(Sourced::new(
            v(&["debug", "gpu"]),
            Source::Derived("site".into()),
        ));
        t.policy.accounts = Some(Sourced::new(v(&["lab"]), Source::Derived("site".into())));
        refused(t.sbatch(&["-p", "big", "-A", "lab", "j.sh"], SH), "-p");
        refused(
            t.sbatch(&["-p", "debug,big", "-A", "lab", "j.sh"], SH),
            "-p",
        );
        refused(t.sbatch(&["-A", "other", "j.sh"], SH), "-A");
        refused(t.sbatch(&["j.sh"], SH), "without --account");
        let j = t.sbatch(&["-A", "lab", "j.sh"], SH).unwrap();
        assert!(
            j.real.contains(&"--partition=debug,gpu".into()),
            "{:?}",
            j.real
        );
        refused(
            t.sbatch(&["-A", "lab", "j.sh"], "#!/bin/sh\n#SBATCH -p big\n"),
            "#SBATCH -p",
        );
        t.policy.max_jobs = Some(Sourced::new(1, Source::Derived("site".into())));
        refused(t.sbatch(&["-A", "lab", "j.sh"], SH), "submission");
        refused(t.srun(&["-A", "lab", "true"]), "submission");
        // Steps inside a job are not new jobs.
        t.in_job = true;
        assert!(t.srun(&["true"]).is_ok());
        t.policy.max_jobs = Some(Sourced::new(2, Source::Derived("site".into())));
        t.in_job = false;
        assert!(t.sbatch(&["-A", "lab", "--test-only", "j.sh"], SH).is_ok());
        // An array counts its tasks: 1 active + 2 tasks > 2.
        refused(
            t.sbatch(&["-A", "lab", "--array=1-2", "j.sh"], SH),
            "submission",
        );
        assert!(t.sbatch(&["-A", "lab", "--array=7", "j.sh"], SH).is_ok());
        refused(t.sbatch(&["-A", "lab", "--array=x", "j.sh"], SH), "--array");
    }

    #[test]
    fn array_specs_count_their_tasks() {
        assert_eq!(array_tasks("0-15"), Some(16));
        assert_eq!(array_tasks("0,6,16-32"), Some(19));
        assert_eq!(array_tasks("0-15:4"), Some(4));
        assert_eq!(array_tasks("1-5,7%2"), Some(6));
        assert_eq!(array_tasks("5-1"), None);
        assert_eq!(array_tasks("a"), None);
        assert_eq!(array_tasks("1-3:0"), None);
    }

    #[test]
    fn srun_steps_and_io() {
        let t = T::new();
        let j = t
            .srun(&[
                "-n2", "-o", "out-%t", "-i", "none", "--label", "cmd", "-x", "y",
            ])
            .unwrap();
        assert_eq!(j.command, v(&["cmd", "-x", "y"]));
        assert_eq!(j.io.output.as_deref(), Some("/p/sub/out-%t"));
        assert_eq!(j.io.input, None);
        assert_eq!(
            j.real,
            v(&[
                "--ntasks=2",
                "--input=none",
                "--label",
                "--chdir=/p/sub",
                "--output=none",
                "--error=none",
                "--job-name=cmd",
                "--export=ALL"
            ])
        );
        for bad in [
            &["--pty", "bash"][..],
            &["--multi-prog", "conf"],
            &["--bcast=/tmp/x", "cmd"],
            &["--prolog=/p/x", "cmd"],
            &["--task-epilog=/p/x", "cmd"],
            &["--jobid=1", "cmd"],
            &["--export=BASH_ENV=/p/x", "cmd"],
            &["-o", "/etc/x", "cmd"],
            &["--comment=x", "cmd"],
            &["--mpi=pmi2", "cmd"],
            &["--mpi", "pmi1", "cmd"],
        ] {
            assert!(matches!(t.srun(bad), Err(Deny::Refused { .. })), "{bad:?}");
        }
        for ok in ["none", "pmix", "pmix_v4"] {
            let j = t.srun(&["--mpi", ok, "cmd"]).unwrap();
            assert!(j.real.contains(&format!("--mpi={ok}")), "{:?}", j.real);
        }
        assert!(matches!(t.srun(&["-n1"]), Err(Deny::Native { .. })));
        // salloc is refused whole.
        assert!(matches!(salloc(), Deny::Refused { .. }));
    }

    #[test]
    fn queries_see_only_the_project() {
        let t = T::new();
        let q = t.query(squeue, &["-h", "-o", "%i"]).unwrap();
        assert_eq!(q.args, v(&["--noheader", "--format=%i", "--jobs=5,6"]));
        let q = t.query(squeue, &["-j", "5,9"]).unwrap();
        assert_eq!(q.args, v(&[&format!("--jobs=5,{}", 1u64 << 26)]));
        assert_eq!(q.rewrite.swapped, vec![(1u64 << 26, "9".to_string())]);
        refused(t.query(squeue, &["-u", "root"]), "-u");
        assert!(t.query(squeue, &["-u", "u", "--me"]).is_ok());
        refused(t.query(squeue, &["--json"]), "--json");

        let q = t.query(scancel, &["9", "5"]).unwrap();
        assert_eq!(q.args, v(&[&(1u64 << 26).to_string(), "5"]));
        let q = t.query(scancel, &["--me"]).unwrap();
        assert_eq!(q.args, v(&["--me", "5"]), "only the project's active jobs");
        refused(t.query(scancel, &["-u", "other", "1"]), "-u");
        refused(t.query(scancel, &["5;id"]), "5;id");

        let q = t.query(sacct, &["-n", "-X"]).unwrap();
        assert_eq!(
            q.args,
            v(&[
                "--noheader",
                "--allocations",
                "--jobs=5,6",
                "--starttime=00:00:00"
            ])
        );
        refused(t.query(sacct, &["-a"]), "-a");
        refused(t.query(sacct, &["--env-vars", "-j", "5"]), "--env-vars");

        let q = t.query(scontrol, &["show", "job", "9"]).unwrap();
        assert_eq!(q.args, v(&["show", "job", &(1u64 << 26).to_string()]));
        let q = t.query(scontrol, &["-o", "show", "job"]).unwrap();
        assert!(q.filter_jobs);
        refused(
            t.query(scontrol, &["update", "JobId=5", "WorkDir=/"]),
            "WorkDir",
        );
        refused(t.query(scontrol, &["create", "res"]), "create");
        refused(t.query(scontrol, &["show", "assoc_mgr"]), "assoc_mgr");
        assert!(t
            .query(scontrol, &["update", "jobid=5", "TimeLimit=5"])
            .is_ok());
        assert!(t.query(scontrol, &["hold", "5,9"]).is_ok());
    }

    #[test]
    fn empty_scope_lists_nothing() {
        let mut t = T::new();
        t.scope.ids.clear();
        t.scope.active.clear();
        let s = 1u64 << 26;
        let q = t.query(squeue, &[]).unwrap();
        assert_eq!(q.args, v(&[&format!("--jobs={s},{s}")]));
        assert_eq!(
            scancel(&t.ctx(), &v(&["--me"])).unwrap(),
            Plan::Answer(String::new(), 0)
        );
    }

    #[test]
    fn scontrol_show_job_output_is_filtered() {
        let f = Fake {
            ids: vec![5],
            active: vec![],
        };
        let text = "JobId=5 JobName=a\n   UserId=u(1)\n\nJobId=7 JobName=b\n   UserId=v(2)\n\nJobId=8 ArrayJobId=5 ArrayTaskId=1\n\n";
        let out = filter_jobs(text, &f);
        assert!(
            out.contains("JobId=5 JobName=a") && out.contains("JobId=8"),
            "{out}"
        );
        assert!(!out.contains("JobId=7"), "{out}");
        let oneliner = "JobId=7 JobName=b UserId=v(2)\n";
        assert_eq!(filter_jobs(oneliner, &f), "No jobs in the system\n");
    }
}
