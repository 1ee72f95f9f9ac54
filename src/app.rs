//! Dispatch: parse the command line, resolve the policy, run or print it.
//! Every error of jail itself is one `jail: ` line and exit status 125.

use clap::Parser;
use std::path::Path;

use crate::cli::{Cli, JailOpts, Sub};
use crate::config::{self, env, explain, load, ConfigError, JailSpec, Request};
use crate::host;
use crate::sandbox::{self, SandboxError};

/// Exit status for an error of jail itself.
pub const EXIT_JAIL_ERROR: i32 = 125;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("cannot read the current directory or user: {0}")]
    Host(#[from] std::io::Error),
    #[error("`jail {0}` is not available yet in this version")]
    NotYet(&'static str),
    #[error("cannot create {}: {}", .0.display(), .1)]
    Create(std::path::PathBuf, std::io::Error),
}

pub fn main() -> i32 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(crate::outside::ARG) {
        return crate::outside::main(&args[1..]);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage_error(e),
    };
    init_logging(&cli.opts);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jail: {e}");
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
            eprintln!("jail: {msg} (see `jail --help`)");
            EXIT_JAIL_ERROR
        }
    }
}

fn init_logging(opts: &JailOpts) {
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
        write!(writer, "jail: {level}")?;
        tracing_subscriber::fmt::FormatFields::format_fields(ctx, writer.by_ref(), event)?;
        writeln!(writer)
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
    }
}

fn dispatch(cli: Cli) -> Result<i32, AppError> {
    let (command, explain_only) = match cli.sub {
        None => (cli.command, cli.opts.dry_run),
        Some(Sub::Run { command }) => (command, cli.opts.dry_run),
        Some(Sub::Explain { command }) => (command, true),
        Some(Sub::Profiles) => return profiles(),
        Some(Sub::Doctor) => return Ok(crate::doctor::run()),
        Some(Sub::Init { force }) => return init(force),
        Some(Sub::Trust) => return trust(),
    };
    let facts = host::facts()?;
    let dirs = load::dirs(&facts.user.home, |v| std::env::var_os(v))?;
    let catalogue = catalogue(&facts, &dirs)?;
    let spec = config::resolve(&request(&cli.opts, command), &facts, &catalogue)?;
    load::enforce_site_on_host(&spec, &catalogue)?;
    let (env, removed) = jail_environment(&spec);
    if explain_only {
        let mut text = explain::render(&spec, removed);
        text.push_str(&sandbox::net::explain(&spec.network));
        out(&text);
        return Ok(0);
    }
    run(spec, env, &dirs.state)
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
    env::scrub(&host::environment(), &spec.env, &extra)
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
    let project = config::resolve::project_dir(facts).ok().map(|(p, _)| p);
    Ok(load::load(
        dirs,
        project.as_ref().map(|p| p.value.as_path()),
    )?)
}

/// Creates the profile's missing read-write state directories on the host
/// (e.g. ~/.claude on a first run), so what the program writes there, such
/// as a first login, persists. Mode 0700: they hold credentials.
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
fn run(spec: JailSpec, env: Vec<(String, String)>, state: &Path) -> Result<i32, AppError> {
    create_dirs(&spec)?;
    tracing::info!(
        "profile {} ({}), project {}",
        spec.profile.value,
        spec.profile.source,
        spec.project.value.display()
    );
    Ok(sandbox::run(&spec, &env, state)?)
}

/// `jail profiles`: every profile with its origin, the one each bare
/// `jail` and `jail claude` would pick, and what shadows what.
fn profiles() -> Result<i32, AppError> {
    let facts = host::facts()?;
    let dirs = load::dirs(&facts.user.home, |v| std::env::var_os(v))?;
    let cat = catalogue(&facts, &dirs)?;
    let pick = |command: &[&str]| {
        let req = Request {
            command: command.iter().map(|s| s.to_string()).collect(),
            ..Request::default()
        };
        config::resolve::select_profile(&req, &cat).value
    };
    let (bare, claude) = (pick(&[]), pick(&["claude"]));
    let allowed = cat.site.as_ref().and_then(|s| s.site.profiles.clone());
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
        let mut desc = p.profile.description.clone().unwrap_or_default();
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
    let (project, _) = config::resolve::project_dir(&facts)?;
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

/// `jail trust`: consent to the project's .jail.toml as it is now.
fn trust() -> Result<i32, AppError> {
    let facts = host::facts()?;
    let (project, _) = config::resolve::project_dir(&facts)?;
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
