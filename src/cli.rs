//! The command line (contract: DESIGN.md "Command line").

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

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
    override_usage = "jail [OPTIONS] [--] [COMMAND [ARGS...]]\n       jail <explain|doctor|profiles|init|trust|run> [OPTIONS] [ARGS...]"
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
pub enum NetArg {
    None,
    Allowlist,
    Learn,
    Host,
}

impl From<NetArg> for NetMode {
    fn from(n: NetArg) -> NetMode {
        match n {
            NetArg::None => NetMode::None,
            NetArg::Allowlist => NetMode::Allowlist,
            NetArg::Learn => NetMode::Learn,
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
    /// Network: loopback only, the domain allowlist, learn (allow and record
    /// every name, print the allowlist at exit), or the host's network.
    #[arg(long, value_enum, value_name = "MODE", global = true)]
    pub net: Option<NetArg>,
    /// Allow a domain (`*.example.com` for subdomains, `NAME:PORT` for one
    /// port, `@crates` and other presets); repeatable. Turns `--net none`
    /// from a profile into `allowlist`.
    #[arg(long, value_name = "NAME", global = true)]
    pub allow_domain: Vec<String>,
    /// Allow a TCP port for allowed domains (default 443); repeatable.
    #[arg(long, value_name = "PORT", global = true)]
    pub allow_port: Vec<u16>,
    /// Let the jail reach this port of the host's loopback at its own
    /// 127.0.0.1 or ::1 (e.g. a local model server); repeatable.
    #[arg(long, value_name = "PORT", global = true)]
    pub expose_host_port: Vec<u16>,
    /// DNS server the network helper asks (default: from /etc/resolv.conf).
    #[arg(long, value_name = "IP:PORT", global = true)]
    pub dns_upstream: Option<String>,
    /// Pass NAME from the host, or set NAME=VALUE; repeatable.
    #[arg(long, value_name = "NAME[=VALUE]", global = true)]
    pub env: Vec<String>,
    /// Make GPU devices (NVIDIA, AMD, DRI) visible.
    #[arg(long, global = true)]
    pub gpu: bool,
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
