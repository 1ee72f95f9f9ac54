//! The command line (contract: DESIGN.md "Command line").

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::config::limits::{self, ReviewMode};
use crate::config::profile::NetMode;

#[derive(Debug, Parser)]
#[command(
    name = "jail",
    version,
    about = "Run a command (or an AI coding agent) in an unprivileged jail",
    long_about = "Run a command in an unprivileged jail: its own user, mount, pid, ipc, uts and \
                  network namespaces; the project read-write, the system read-only, an empty home, \
                  credentials hidden, no network but loopback unless a profile allows it.",
    after_help = "Examples:\n  jail make test        run the tests with the default profile\n  \
                  jail claude           Claude Code with its builtin profile\n  \
                  jail                  an interactive shell in the jail\n  \
                  jail explain -- npm i  show the policy a command would get",
    disable_help_subcommand = true,
    override_usage = "jail [OPTIONS] [--] [COMMAND [ARGS...]]\n       jail <explain|doctor|profiles|init|trust|review|run> [OPTIONS] [ARGS...]"
)]
pub struct Cli {
    #[command(flatten)]
    pub opts: JailOpts,

    #[command(subcommand)]
    pub sub: Option<Sub>,

    /// The program to run and its arguments (default: your shell).
    #[arg(value_name = "COMMAND", trailing_var_arg = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Print the resolved policy, each value with its source.
    Explain {
        #[arg(
            value_name = "COMMAND",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        command: Vec<String>,
    },
    /// Probe the kernel's features and say what will degrade.
    Doctor,
    /// List the profiles and where each comes from.
    Profiles,
    /// Write a starter .jail.toml for this project.
    Init {
        /// Overwrite an existing .jail.toml.
        #[arg(long)]
        force: bool,
    },
    /// Consent to this project's .jail.toml as it is now.
    Trust,
    /// Review the changes of a kept or interrupted review session (list them without PATH).
    Review {
        /// The session's directory or its upper directory (as `--review=keep` prints it).
        #[arg(value_name = "PATH")]
        path: Option<std::path::PathBuf>,
    },
    /// Run a program whose name is also a jail subcommand.
    Run {
        #[arg(
            value_name = "COMMAND",
            trailing_var_arg = true,
            allow_hyphen_values = true,
            required = true
        )]
        command: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReviewArg {
    /// Ask at exit (on a terminal; without one, keep the changes).
    Ask,
    /// Apply every change that can be applied safely.
    Apply,
    /// Throw the changes away.
    Discard,
    /// Keep the changes for `jail review PATH`.
    Keep,
}

impl From<ReviewArg> for ReviewMode {
    fn from(r: ReviewArg) -> ReviewMode {
        match r {
            ReviewArg::Ask => ReviewMode::Ask,
            ReviewArg::Apply => ReviewMode::Apply,
            ReviewArg::Discard => ReviewMode::Discard,
            ReviewArg::Keep => ReviewMode::Keep,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NetArg {
    None,
    Allowlist,
    Host,
}

impl From<NetArg> for NetMode {
    fn from(n: NetArg) -> NetMode {
        match n {
            NetArg::None => NetMode::None,
            NetArg::Allowlist => NetMode::Allowlist,
            NetArg::Host => NetMode::Host,
        }
    }
}

/// Options of the jail itself; accepted before or after a subcommand.
#[derive(Debug, Args)]
pub struct JailOpts {
    /// Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND).
    #[arg(short, long, value_name = "NAME", global = true)]
    pub profile: Option<String>,
    /// Make PATH visible read-only (repeatable).
    #[arg(long, value_name = "PATH", global = true)]
    pub ro: Vec<String>,
    /// Make PATH visible read-write (repeatable).
    #[arg(long, value_name = "PATH", global = true)]
    pub rw: Vec<String>,
    /// Hide PATH: absent (ENOENT) inside the jail (repeatable).
    #[arg(long, value_name = "PATH", global = true)]
    pub hide: Vec<String>,
    /// Network: loopback only, the domain allowlist, or the host's network.
    #[arg(long, value_enum, value_name = "MODE", global = true)]
    pub net: Option<NetArg>,
    /// Allow a domain (`*.example.com` for subdomains); repeatable.
    #[arg(long, value_name = "NAME", global = true)]
    pub allow_domain: Vec<String>,
    /// Allow a TCP port for allowed domains; repeatable.
    #[arg(long, value_name = "PORT", global = true)]
    pub allow_port: Vec<u16>,
    /// DNS server the network helper asks (default: from /etc/resolv.conf).
    #[arg(long, value_name = "IP:PORT", global = true)]
    pub dns_upstream: Option<String>,
    /// Pass NAME from the host, or set NAME=VALUE; repeatable.
    #[arg(long, value_name = "NAME[=VALUE]", global = true)]
    pub env: Vec<String>,
    /// Make GPU devices (NVIDIA, AMD, DRI) visible.
    #[arg(long, global = true)]
    pub gpu: bool,
    /// Review mode: the project is an overlay while the program runs; at exit, see its changes and apply all, some or none (`=apply|discard|keep`: without asking).
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "ask",
        global = true
    )]
    pub review: Option<ReviewArg>,
    /// Stop the jail after DURATION (`90s`, `15m`, `2h`): SIGTERM, a grace period, then SIGKILL; exit status 124.
    #[arg(long, value_name = "DURATION", value_parser = limits::parse_duration, global = true)]
    pub timeout: Option<u64>,
    /// Limit memory (`512M`, `8G`): the whole jail with cgroup v2, each process otherwise.
    #[arg(long, value_name = "SIZE", value_parser = limits::parse_size, global = true)]
    pub memory: Option<u64>,
    /// Limit the program's processes and threads (a fork bomb stops there).
    #[arg(long, value_name = "N", value_parser = limits::parse_pids, global = true)]
    pub pids: Option<u32>,
    /// Limit CPU use (`2`, `0.5`): a cgroup v2 quota, else CPU affinity to that many CPUs.
    #[arg(long, value_name = "N", value_parser = limits::parse_cpus, global = true)]
    pub cpus: Option<u32>,
    /// Print the resolved policy instead of running (same as `explain`).
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// More detail on stderr (repeat for more).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}
