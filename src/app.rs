//! Dispatch of jail's one binary: by argv[0] a Slurm stub (`inside`),
//! `__outside ROLE` a process outside the jail (`outside`), `__slurm-job`
//! the job launcher on a node (`node`); else the launcher: parse the
//! command line, resolve the policy, run it (`launcher`) or print it.
//! Every error of jail itself is one `jail: ` line and exit status 125.

use clap::Parser;
use std::path::Path;

use crate::cli::{Cli, JailOpts, Sub, Verbosity};
use crate::config::spec::ReviewMode;
use crate::config::{self, env, explain, load, ConfigError, JailSpec, Request};
use crate::host;
use crate::launcher::{self, SandboxError};
use crate::node as slurm_job;
use crate::review;

pub use crate::exit::EXIT_JAIL_ERROR;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Review(#[from] review::ReviewError),
    #[error("cannot read the current directory or user: {0}")]
    Host(#[from] std::io::Error),
    #[error("{0} applies to running a command, not to `jail {1}`")]
    NotApplicable(&'static str, &'static str),
    #[error("cannot create {}: {}", .0.display(), .1)]
    Create(std::path::PathBuf, std::io::Error),
    #[error("cannot remove what jail keeps in {}: {}", .0.display(), .1)]
    Remove(std::path::PathBuf, std::io::Error),
}

pub fn main() -> i32 {
    let argv0 = std::env::args_os()
        .next()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Inside a jail with Slurm on, jail's binary is also `sbatch` & co.
    if let Some(stub) = crate::inside::stub::name(&argv0) {
        let args = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        return crate::inside::stub::main(stub, args);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some(crate::outside::ARG) => return crate::outside::main(&args[1..]),
        Some(mode @ (slurm_job::JOB_ARG | slurm_job::STEP_ARG)) => {
            return slurm_job::main(mode, &args[1..])
        }
        _ => {}
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    init_logging(&cli.log);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jail: {}", crate::display::safe(&e.to_string()));
            EXIT_JAIL_ERROR
        }
    }
}

/// Help and version go to stdout with status 0; a usage error is one
/// `jail: ` line (clap's first line) and 125.
fn usage_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            0
        }
        _ => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let msg = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("jail: {} (see `jail --help`)", crate::display::safe(msg));
            EXIT_JAIL_ERROR
        }
    }
}

fn init_logging(opts: &Verbosity) {
    let level = match (opts.quiet, opts.verbose) {
        (true, _) => tracing::Level::ERROR,
        (false, 0) => tracing::Level::WARN,
        (false, 1) => tracing::Level::INFO,
        (false, 2) => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .event_format(JailFormat)
        .try_init();
}

/// Log lines read like jail's other messages: `jail: warning: ...`.
struct JailFormat;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JailFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error: ",
            tracing::Level::WARN => "warning: ",
            tracing::Level::INFO => "",
            tracing::Level::DEBUG => "debug: ",
            tracing::Level::TRACE => "trace: ",
        };
        // Fields are formatted first, then written with control characters
        // escaped: log lines carry paths and configuration values.
        let mut text = String::new();
        tracing_subscriber::fmt::FormatFields::format_fields(
            ctx,
            tracing_subscriber::fmt::format::Writer::new(&mut text),
            event,
        )?;
        writeln!(writer, "jail: {level}{}", crate::display::safe(&text))
    }
}

fn request(opts: &JailOpts, command: Vec<String>) -> Request {
    Request {
        profile: opts.profile.clone(),
        command,
        ro: opts.ro.clone(),
        rw: opts.rw.clone(),
        hide: opts.hide.clone(),
        net: opts.net.map(Into::into),
        allow_domain: opts.allow_domain.clone(),
        allow_port: opts.allow_port.clone(),
        expose_host_port: opts.expose_host_port.clone(),
        dns_upstream: opts.dns_upstream.clone(),
        env: opts.env.clone(),
        gpu: opts.gpu,
        home: opts.home.map(Into::into),
        review: opts.review.map(Into::into),
        timeout: opts.timeout,
        memory: opts.memory,
        pids: opts.pids,
        cpus: opts.cpus,
    }
}

fn dispatch(cli: Cli) -> Result<i32, AppError> {
    // `jail --ro /x doctor`: an option that would be silently ignored.
    let not_for = |sub: &'static str| -> Result<(), AppError> {
        match cli
            .opts
            .first_given()
            .or(cli.dry_run.then_some("--dry-run"))
        {
            Some(opt) => Err(AppError::NotApplicable(opt, sub)),
            None => Ok(()),
        }
    };
    let (opts, command, explain_only) = match cli.sub {
        None => (cli.opts, cli.command, cli.dry_run),
        Some(Sub::Run {
            opts,
            dry_run,
            command,
        }) => (cli.opts.merged(opts), command, cli.dry_run || dry_run),
        Some(Sub::Explain { opts, command }) => (cli.opts.merged(opts), command, true),
        Some(Sub::Profiles { names }) => return not_for("profiles").and_then(|()| profiles(names)),
        Some(Sub::Doctor) => return not_for("doctor").map(|()| crate::doctor::run()),
        Some(Sub::Init { force }) => return not_for("init").and_then(|()| init(force)),
        Some(Sub::Trust) => return not_for("trust").and_then(|()| trust()),
        Some(Sub::Cache {
            action,
            profile,
            home,
        }) => return not_for("cache").and_then(|()| cache(action.is_some(), profile, home)),
        // `jail --review=apply review PATH`: the mode is the one option
        // that applies.
        Some(Sub::Review { path, review: r }) => {
            let mode = r.or(cli.opts.review).map(Into::into);
            let rest = JailOpts {
                review: None,
                ..cli.opts.clone()
            };
            if let Some(opt) = rest.first_given() {
                return Err(AppError::NotApplicable(opt, "review"));
            }
            return review(path, mode);
        }
    };
    let facts = host::facts()?;
    let dirs = load::dirs(&facts.user.home, |v| std::env::var_os(v))?;
    let mut catalogue = catalogue(&facts, &dirs)?;
    let req = request(&opts, command);
    let (spec, untrusted) = match config::resolve(&req, &facts, &catalogue) {
        // explain shows what an untrusted project file would do, marked
        // as not in force; running still refuses (below, the error).
        Err(ConfigError::Untrusted { file, key, what }) if explain_only => {
            if let Some(p) = catalogue.project.as_mut() {
                p.trusted = true;
            }
            let spec = config::resolve(&req, &facts, &catalogue)?;
            (spec, Some((file, format!("`{key}`: {what}"))))
        }
        r => (r?, None),
    };
    config::site::enforce_site_on_host(&spec, &catalogue)?;
    for w in host::check_paths(&spec)? {
        tracing::warn!("{w}");
    }
    if spec.user.uid == 0 && !explain_only {
        tracing::warn!(
            "running as root: the program is uid 0 inside the jail (without capabilities), \
             so files only root may read stay readable unless hidden; run jail as a normal user"
        );
    }
    let (mut env, removed) = jail_environment(&spec);
    let mut spec = spec;
    // Resolved here (a probe of the RAM) so that explain shows what the
    // plan mounts.
    spec.limits.tmpfs = Some(launcher::limits::tmpfs(&spec.limits));
    if explain_only && (spec.limits.any_resource() || spec.limits.timeout.is_some()) {
        // Probed only here: a run that sets no limit does no extra work.
        spec.limits.mechanism = Some(launcher::limits::describe(&spec.limits));
    }
    if explain_only {
        let mut text = explain::render(&spec, removed);
        text.push_str(&crate::plan::net::explain(&spec.network));
        // The steps a run executes (`plan::for_run`, as the launcher).
        let review = spec
            .review
            .value
            .is_on()
            .then(|| review::Session::planned(&dirs.state, &spec.project.value));
        let plan = crate::plan::for_run(&spec, host::terminal().as_deref(), review.as_ref());
        text.push_str(&crate::plan::explain(&plan));
        // Part of [protection]; the kernel's Landlock ABI decides it.
        let (_, sockets) =
            crate::harden::ruleset::unix_socket_protection(crate::harden::ruleset::probe_abi());
        text.push_str(&format!("  unix sockets    {sockets}\n"));
        if tracing::enabled!(tracing::Level::INFO) {
            text.push_str(&crate::plan::explain_steps(&plan));
        }
        text.push_str(&crate::plan::hostrun::explain(
            &spec.project.value,
            &spec.user.home,
        ));
        let text = match untrusted {
            Some((file, first)) => {
                let widens = catalogue
                    .project
                    .as_ref()
                    .map(|p| config::trust::may_widen(&p.profile))
                    .unwrap_or_default();
                untrusted_explain(&text, &file, &first, &widens, &spec.project.value)
            }
            None => text,
        };
        out(&crate::display::safe_lines(&text));
        return Ok(0);
    }
    if req.command.is_empty() && nix::unistd::isatty(std::io::stdin()).unwrap_or(false) {
        interactive_prompt(&mut spec, &mut env);
    }
    run(spec, env, &dirs.state)
}

/// A bare `jail` on a terminal: the shell's prompt shows the jail
/// (`$JAIL_PROMPT`, see `prompt`), unless JAIL_PROMPT is set empty.
fn interactive_prompt(spec: &mut JailSpec, env: &mut Vec<(String, String)>) {
    let prefix = match env.iter().find(|(k, _)| k == crate::prompt::VAR) {
        Some((_, v)) => v.clone(),
        None => {
            let p = crate::prompt::default_prefix(&spec.profile.value);
            env.push((crate::prompt::VAR.to_string(), p.clone()));
            p
        }
    };
    if prefix.is_empty() {
        return;
    }
    if let Some(command) = spec.command.first().and_then(|s| crate::prompt::wrap(s)) {
        spec.command = command;
    }
}

/// `jail explain` of a policy that includes an untrusted, widening project
/// file: a banner saying it is not in force and how to consent, and every
/// value the file set marked as untrusted.
fn untrusted_explain(
    text: &str,
    file: &Path,
    first: &str,
    widens: &[String],
    project: &Path,
) -> String {
    let mut o = format!(
        "# NOT IN FORCE: {} is not trusted and would widen the policy ({first}).\n\
         # Below is the policy it would give; running refuses (exit 125) until you\n\
         # review the file and consent to it as it is now:\n\
         #     cd {} && jail trust\n",
        file.display(),
        crate::launcher::hint::quote(&project.display().to_string()),
    );
    if !widens.is_empty() {
        o.push_str("# It may widen:\n");
        for w in widens {
            o.push_str(&format!("#     {w}\n"));
        }
    }
    let from = format!("# project {}", file.display());
    let to = format!("# UNTRUSTED project {} (not in force)", file.display());
    // resolve() saw the file as trusted to show its effect; say it is not.
    let note = format!(
        "project config {} (trusted with `jail trust`)",
        file.display()
    );
    let not_trusted = format!(
        "project config {} (NOT trusted: shown as it would apply, not in force)",
        file.display()
    );
    o.push_str(&text.replace(&from, &to).replace(&note, &not_trusted));
    o
}

/// The program's environment: the scrubbed host environment plus what
/// jail sets.
fn jail_environment(spec: &JailSpec) -> (Vec<(String, String)>, usize) {
    let extra = vec![
        ("JAIL".to_string(), "1".to_string()),
        ("JAIL_PROFILE".to_string(), spec.profile.value.clone()),
        ("PWD".to_string(), spec.cwd.display().to_string()),
        ("HOME".to_string(), spec.user.home.display().to_string()),
    ];
    let (mut env, removed) = env::scrub(&host::environment(), &spec.env, &extra);
    if spec.slurm.enabled.value {
        crate::outside::chaperon::with_stub_path(&mut env);
    }
    (env, removed)
}

/// Writes to stdout; a closed pipe (`jail profiles | head`) is not an error.
fn out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Every configuration layer for this user and project.
fn catalogue(facts: &config::HostFacts, dirs: &load::Dirs) -> Result<config::Catalogue, AppError> {
    // Without a usable project (cwd is $HOME), load the other layers:
    // `jail profiles` works anywhere, and a run reports the project error.
    let project = config::paths::project_dir(facts).ok().map(|(p, _)| p);
    Ok(load::load(
        dirs,
        project.as_ref().map(|p| p.value.as_path()),
    )?)
}

/// Creates the profile's missing read-write state directories on the host
/// (e.g. ~/.claude on a first run), so what the program writes there, such
/// as a first login, persists. Mode 0700: they hold credentials. Called
/// only when the command resolves on the host: `jail claude` without
/// claude installed leaves nothing behind.
fn create_dirs(spec: &JailSpec) -> Result<(), AppError> {
    use std::os::unix::fs::DirBuilderExt;
    for d in &spec.filesystem.create {
        if std::fs::symlink_metadata(&d.value).is_err() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d.value)
                .map_err(|e| AppError::Create(d.value.clone(), e))?;
            tracing::info!("created {} ({})", d.value.display(), d.source);
        }
    }
    Ok(())
}

/// `state` is jail's state directory (quarantine of protected paths).
fn run(mut spec: JailSpec, env: Vec<(String, String)>, state: &Path) -> Result<i32, AppError> {
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str());
    let cmd = spec.command.first().map(String::as_str).unwrap_or("");
    if host::find_command(cmd, path, &spec.cwd).is_some() {
        create_dirs(&spec)?;
    } else {
        // A program that is not installed gets nothing made for it (no
        // ~/.claude, no storage): the run only reports why it cannot start.
        for d in spec.filesystem.create.iter().filter(|d| !d.value.exists()) {
            tracing::info!(
                "not creating {} ({}): {cmd} is not installed",
                d.value.display(),
                d.source
            );
        }
        spec.filesystem.storage = None;
    }
    tracing::info!(
        "profile {} ({}), project {}",
        spec.profile.value,
        spec.profile.source,
        spec.project.value.display()
    );
    if !spec.review.value.is_on() {
        return Ok(launcher::run(&spec, &env, state, None)?);
    }
    let session = review::Session::create(state, &spec)?;
    tracing::info!(
        "review mode: the project's changes go to {} until you decide",
        session.upper().display()
    );
    let code = match launcher::run(&spec, &env, state, Some(&session.overlay())) {
        Ok(c) => c,
        Err(e) => {
            session.abandon();
            return Err(e.into());
        }
    };
    // The jail is gone: Ctrl-C now belongs to the review.
    crate::reap::reset_signals();
    if review::finish(session, spec.review.value, state) {
        Ok(code)
    } else {
        Ok(EXIT_JAIL_ERROR)
    }
}

/// `jail review [PATH]`: resumes a session, or lists them.
fn review(path: Option<std::path::PathBuf>, mode: Option<ReviewMode>) -> Result<i32, AppError> {
    let facts = host::facts()?;
    let dirs = load::dirs(&facts.user.home, |v| std::env::var_os(v))?;
    let Some(path) = path else {
        out(&review::list(&dirs.state));
        return Ok(0);
    };
    let session = review::Session::open(&dirs.state, &path)?;
    let mode = mode.unwrap_or(ReviewMode::Ask);
    Ok(if review::finish(session, mode, &dirs.state) {
        0
    } else {
        EXIT_JAIL_ERROR
    })
}

/// `jail profiles`: every profile with its origin, the one each bare
/// `jail` and `jail claude` would pick, and what shadows what.
/// `--names`: only the usable names, one a line, for shell completion.
fn profiles(names_only: bool) -> Result<i32, AppError> {
    let facts = host::facts()?;
    let dirs = load::dirs(&facts.user.home, |v| std::env::var_os(v))?;
    let cat = catalogue(&facts, &dirs)?;
    let allowed = cat.site.as_ref().and_then(|s| s.site.profiles.clone());
    if names_only {
        let names: std::collections::BTreeSet<&str> = cat
            .profiles
            .iter()
            .map(|p| p.name.as_str())
            .filter(|n| allowed.as_ref().is_none_or(|a| a.iter().any(|x| x == n)))
            .collect();
        out(&names
            .into_iter()
            .map(|n| format!("{n}\n"))
            .collect::<String>());
        return Ok(0);
    }
    let pick = |command: &[&str]| {
        let req = Request {
            command: command.iter().map(|s| s.to_string()).collect(),
            ..Request::default()
        };
        config::catalogue::select_profile(&req, &cat).value
    };
    let (bare, claude) = (pick(&[]), pick(&["claude"]));
    let mut text = format!("{:<14} {:<44} DESCRIPTION\n", "NAME", "ORIGIN");
    for (i, p) in cat.profiles.iter().enumerate() {
        let winner = !cat.profiles[i + 1..].iter().any(|q| q.name == p.name);
        let mut marks = Vec::new();
        if winner && p.name == bare {
            marks.push("picked by a bare `jail`".to_string());
        }
        if winner && p.name == claude {
            marks.push("picked by `jail claude`".to_string());
        }
        if !winner {
            marks.push("shadowed by a later layer".to_string());
        }
        if allowed.as_ref().is_some_and(|a| !a.contains(&p.name)) {
            marks.push("not allowed by the site".to_string());
        }
        let origin = match &p.source {
            config::spec::Source::Builtin(_) => "builtin".to_string(),
            s => s.to_string(),
        };
        let mut desc = p.profile()?.description.clone().unwrap_or_default();
        if !marks.is_empty() {
            desc = format!("{desc} [{}]", marks.join("; "));
        }
        text.push_str(&format!("{:<14} {:<44} {desc}\n", p.name, origin));
    }
    out(&text);
    Ok(0)
}

/// `jail init`: writes a starter .jail.toml for the project's ecosystem,
/// never over an existing one without `--force`, and trusts it.
fn init(force: bool) -> Result<i32, AppError> {
    let facts = host::facts()?;
    let (project, _) = config::paths::project_dir(&facts)?;
    let file = project.value.join(load::PROJECT_FILE);
    if !force && std::fs::symlink_metadata(&file).is_ok() {
        return Err(ConfigError::Init(format!(
            "{} exists; `jail init --force` overwrites it",
            file.display()
        ))
        .into());
    }
    let names: Vec<String> = std::fs::read_dir(&project.value)
        .map_err(AppError::Host)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    let found = config::init::detect(&names);
    // Before writing: a file jail could not trust is not written at all.
    let dirs = load::dirs(&facts.user.home, |v| std::env::var_os(v))?;
    let text = config::init::render(&found);
    // Replace, never write through: a symlink planted at .jail.toml must
    // not make jail write elsewhere.
    let _ = std::fs::remove_file(&file);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .map_err(|e| AppError::Create(file.clone(), e))?;
    std::io::Write::write_all(&mut f, text.as_bytes())
        .map_err(|e| AppError::Create(file.clone(), e))?;
    load::trust_project(&dirs, &project.value)?;
    let eco: Vec<&str> = found.iter().map(|e| e.name).collect();
    out(&format!(
        "wrote and trusted {} ({})\n",
        file.display(),
        if eco.is_empty() {
            "no known ecosystem".to_string()
        } else {
            eco.join(", ")
        }
    ));
    Ok(0)
}

/// `jail cache [clear] [-p NAME] [--home]`: jail's own storage per profile.
fn cache(clear: bool, profile: Option<String>, home: bool) -> Result<i32, AppError> {
    let facts = host::facts()?;
    let dirs = load::dirs(&facts.user.home, |v| std::env::var_os(v))?;
    let only = profile.as_deref();
    let show = |e: &crate::storage::Entry| {
        let what = if e.what == "home" {
            "persistent home".to_string()
        } else {
            format!("cache of {}", e.what)
        };
        format!(
            "{:<14} {:>10}  {what}  ({})\n",
            e.profile,
            crate::storage::human(e.bytes),
            e.path.display()
        )
    };
    let mut text = String::new();
    if clear {
        let removed = crate::storage::clear(&dirs.data, only, home)
            .map_err(|e| AppError::Remove(dirs.data.clone(), e))?;
        if removed.is_empty() {
            text.push_str("nothing to clear\n");
        }
        for e in &removed {
            text.push_str(&format!("removed {}", show(e)));
        }
    } else {
        let all = crate::storage::list(&dirs.data, only);
        if all.is_empty() {
            text.push_str(&format!(
                "jail keeps nothing yet (in {})\n",
                dirs.data.display()
            ));
        } else {
            text.push_str(&format!("{:<14} {:>10}  WHAT\n", "PROFILE", "SIZE"));
            for e in &all {
                text.push_str(&show(e));
            }
            let total: u64 = all.iter().map(|e| e.bytes).sum();
            text.push_str(&format!(
                "{} in all; `jail cache clear` removes the caches, `--home` the homes too\n",
                crate::storage::human(total)
            ));
        }
    }
    out(&crate::display::safe_lines(&text));
    Ok(0)
}

/// `jail trust`: consent to the project's .jail.toml as it is now.
fn trust() -> Result<i32, AppError> {
    let facts = host::facts()?;
    let (project, _) = config::paths::project_dir(&facts)?;
    let dirs = load::dirs(&facts.user.home, |v| std::env::var_os(v))?;
    let (hash, widen) = load::trust_project(&dirs, &project.value)?;
    let mut text = format!(
        "trusted {} (sha256 {}); an edit needs `jail trust` again\n",
        project.value.join(load::PROJECT_FILE).display(),
        hash.get(..16).unwrap_or(&hash)
    );
    if !widen.is_empty() {
        text.push_str("it may widen:\n");
        for w in widen {
            text.push_str(&format!("  {w}\n"));
        }
    }
    out(&text);
    Ok(0)
}
