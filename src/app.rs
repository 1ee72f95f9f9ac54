//! Dispatch: parse the command line, resolve the policy, run or print it.
//! Every error of jail itself is one `jail: ` line and exit status 125.

use clap::Parser;

use crate::cli::{Cli, JailOpts, Sub};
use crate::config::spec::NetMode;
use crate::config::{self, env, explain, ConfigError, JailSpec, Request};
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
}

pub fn main() -> i32 {
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
        .with_target(false)
        .without_time()
        .try_init();
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
        Some(Sub::Profiles) => return Ok(profiles()?),
        Some(Sub::Doctor) => return Ok(crate::doctor::run()),
        Some(Sub::Init { .. }) => return Err(AppError::NotYet("init")),
        Some(Sub::Trust) => return Err(AppError::NotYet("trust")),
    };
    let facts = host::facts()?;
    let catalogue = config::Catalogue::builtin()?;
    let spec = config::resolve(&request(&cli.opts, command), &facts, &catalogue)?;
    let (env, removed) = jail_environment(&spec);
    if explain_only {
        print!("{}", explain::render(&spec, removed));
        return Ok(0);
    }
    run(spec, env)
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

fn run(mut spec: JailSpec, env: Vec<(String, String)>) -> Result<i32, AppError> {
    if spec.network.mode.value == NetMode::Allowlist {
        // Never wider: until the network helper exists, allowlist is none.
        tracing::warn!(
            "network mode `allowlist` is not available yet: running with `none` (loopback only)"
        );
        spec.network.mode.value = NetMode::None;
    }
    tracing::info!(
        "profile {} ({}), project {}",
        spec.profile.value,
        spec.profile.source,
        spec.project.value.display()
    );
    Ok(sandbox::run(&spec, &env)?)
}

fn profiles() -> Result<i32, AppError> {
    let cat = config::Catalogue::builtin()?;
    for p in &cat.profiles {
        println!(
            "{:<12} {:<40} {}",
            p.name,
            p.profile.description.as_deref().unwrap_or(""),
            p.source
        );
    }
    Ok(0)
}
