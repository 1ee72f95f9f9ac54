//! The command line (contract: docs/design.md, "The contract"). Parsed by the
//! launcher (`app`).
//!
//! The jail's own options (`JailOpts`) belong to running a command: they
//! are accepted before a subcommand (`jail -p x explain`) and, for
//! `explain` and `run`, after it (`jail explain -p x`); `merged` joins the
//! two. They are not `global`, so the pages of `doctor`, `profiles`,
//! `init` and `trust` list only what applies to them; `-v`/`-q` are.

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum, ValueHint};

use crate::config::limits::{self, ReviewMode};
use crate::config::profile::{HomeMode, NetMode};

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
    override_usage = "jail [OPTIONS] [--] [COMMAND [ARGS...]]\n       jail <explain|doctor|profiles|init|trust|cache|review|run> [OPTIONS] [ARGS...]"
)]
pub struct Cli {
    #[command(flatten)]
    pub opts: JailOpts,

    /// Print the resolved policy instead of running (same as `explain`).
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub log: Verbosity,

    #[command(subcommand)]
    pub sub: Option<Sub>,

    /// The program to run and its arguments (default: your shell).
    #[arg(value_name = "COMMAND", trailing_var_arg = true, value_hint = ValueHint::CommandWithArguments)]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// Print the resolved policy, each value with its source.
    #[command(
        long_about = "Print the policy `jail [OPTIONS] COMMAND` would run with: the profile, \
                      every path, the network, the environment, each value with the file or \
                      option it came from. A project .jail.toml that is not trusted and would \
                      widen the policy is shown as it would apply, marked untrusted and not in \
                      force, with the `jail trust` command that consents to it."
    )]
    Explain {
        #[command(flatten)]
        opts: JailOpts,
        /// The command whose policy to show (it picks the profile).
        #[arg(
            value_name = "COMMAND",
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_hint = ValueHint::CommandWithArguments
        )]
        command: Vec<String>,
    },
    /// Probe the kernel's features and say what will degrade.
    Doctor,
    /// List the profiles and where each comes from.
    Profiles {
        /// Only the names of the profiles that may be used, one a line (for completion).
        #[arg(long)]
        names: bool,
    },
    /// Write a starter .jail.toml for this project.
    Init {
        /// Overwrite an existing .jail.toml.
        #[arg(long)]
        force: bool,
    },
    /// Consent to this project's .jail.toml as it is now.
    Trust,
    /// Show or clear jail's persistent homes and cache layers.
    #[command(
        long_about = "Show jail's own storage under ~/.local/share/jail: for each profile, its \
                      persistent home and the layer of each cache (what programs in the jail \
                      downloaded into ~/.cargo/registry, ~/.cache/pip, ~/.npm, ...; the host's \
                      own caches are never written). `jail cache clear` removes the caches' \
                      layers, `--home` the persistent homes too."
    )]
    Cache {
        /// Remove instead of show.
        #[arg(value_parser = ["clear"])]
        action: Option<String>,
        /// Only this profile.
        #[arg(short = 'p', long = "profile", value_name = "NAME")]
        profile: Option<String>,
        /// With `clear`: the persistent homes too.
        #[arg(long)]
        home: bool,
    },
    /// Review the changes of a kept or interrupted review session (list them without PATH).
    Review {
        /// The session's directory or its upper directory (as `--review=keep` prints it).
        #[arg(value_name = "PATH")]
        path: Option<std::path::PathBuf>,
        /// Decide without asking: apply, discard or keep the changes.
        #[arg(
            long,
            value_enum,
            value_name = "MODE",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "ask"
        )]
        review: Option<ReviewArg>,
    },
    /// Run a program whose name is also a jail subcommand.
    Run {
        #[command(flatten)]
        opts: JailOpts,
        /// Print the resolved policy instead of running (same as `explain`).
        #[arg(long)]
        dry_run: bool,
        /// The program to run and its arguments.
        #[arg(
            value_name = "COMMAND",
            trailing_var_arg = true,
            allow_hyphen_values = true,
            required = true,
            value_hint = ValueHint::CommandWithArguments
        )]
        command: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetArg {
    /// Loopback only (the jail's own network namespace).
    None,
    /// Only the allowed domains and ports, through jail's network helper.
    Allowlist,
    /// Allow and record every name (the floor still holds); print the
    /// `[network] allow` list at exit.
    Learn,
    /// The host's network (no isolation).
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

/// How much jail says on stderr; accepted anywhere on the line.
#[derive(Debug, Args)]
pub struct Verbosity {
    /// More detail on stderr (repeat for more).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr (and at exit, the network's denials and failures).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// The policy options of a jail: before a subcommand, or after `explain`/`run`.
#[derive(Debug, Default, Clone, PartialEq, Args)]
pub struct JailOpts {
    /// Use this profile (default: the one named like COMMAND, else `default`; `shell` with no COMMAND).
    #[arg(short, long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Make PATH visible read-only (repeatable).
    #[arg(long, value_name = "PATH", value_hint = ValueHint::AnyPath)]
    pub ro: Vec<String>,
    /// Make PATH visible read-write (repeatable).
    #[arg(long, value_name = "PATH", value_hint = ValueHint::AnyPath)]
    pub rw: Vec<String>,
    /// Hide PATH: absent (ENOENT) inside the jail (repeatable).
    #[arg(long, value_name = "PATH", value_hint = ValueHint::AnyPath)]
    pub hide: Vec<String>,
    /// Network: loopback only, the domain allowlist, learn (allow and record
    /// every name, print the allowlist at exit), or the host's network.
    #[arg(long, value_enum, value_name = "MODE")]
    pub net: Option<NetArg>,
    /// Allow a domain (`*.example.com` for subdomains, `NAME:PORT` for one
    /// port, `@crates` and other presets); repeatable. Turns `--net none`
    /// from a profile into `allowlist`.
    #[arg(long, value_name = "NAME", value_hint = ValueHint::Hostname)]
    pub allow_domain: Vec<String>,
    /// Allow a TCP port for allowed domains (default 443); repeatable.
    #[arg(long, value_name = "PORT")]
    pub allow_port: Vec<u16>,
    /// Let the jail reach this port of the host's loopback at its own
    /// 127.0.0.1 or ::1 (e.g. a local model server); repeatable.
    #[arg(long, value_name = "PORT")]
    pub expose_host_port: Vec<u16>,
    /// DNS server the network helper asks (default: from /etc/resolv.conf).
    #[arg(long, value_name = "IP:PORT")]
    pub dns_upstream: Option<String>,
    /// Pass NAME from the host, or set NAME=VALUE; repeatable.
    #[arg(long, value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,
    /// Make GPU devices (NVIDIA, AMD, DRI) visible.
    #[arg(long)]
    pub gpu: bool,
    /// Home: jail's own, kept per profile (persist), empty each run
    /// (tmpfs), or the real one read-only (ro) or read-write (rw).
    #[arg(long, value_enum, value_name = "MODE")]
    pub home: Option<HomeArg>,
    /// Review mode: the project is an overlay while the program runs; at exit, see its changes and apply all, some or none (`=apply|discard|keep`: without asking).
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "ask"
    )]
    pub review: Option<ReviewArg>,
    /// Stop the jail after DURATION (`90s`, `15m`, `2h`): SIGTERM, a grace period, then SIGKILL; exit status 124.
    #[arg(long, value_name = "DURATION", value_parser = limits::parse_duration)]
    pub timeout: Option<u64>,
    /// Limit memory (`512M`, `8G`): the whole jail with cgroup v2, each process otherwise.
    #[arg(long, value_name = "SIZE", value_parser = limits::parse_size)]
    pub memory: Option<u64>,
    /// Limit the program's processes and threads (a fork bomb stops there).
    #[arg(long, value_name = "N", value_parser = limits::parse_pids)]
    pub pids: Option<u32>,
    /// Limit CPU use (`2`, `0.5`): a cgroup v2 quota, else CPU affinity to that many CPUs.
    #[arg(long, value_name = "N", value_parser = limits::parse_cpus)]
    pub cpus: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HomeArg {
    /// jail's own directory for the profile, kept between runs.
    Persist,
    /// An empty home each run (what programs write there is lost).
    Tmpfs,
    /// Your real home, read-only (hidden paths absent).
    Ro,
    /// Your real home, read-write (hidden paths masked).
    Rw,
}

impl From<HomeArg> for HomeMode {
    fn from(h: HomeArg) -> HomeMode {
        match h {
            HomeArg::Persist => HomeMode::Persist,
            HomeArg::Tmpfs => HomeMode::Tmpfs,
            HomeArg::Ro => HomeMode::Ro,
            HomeArg::Rw => HomeMode::Rw,
        }
    }
}

impl JailOpts {
    /// Options given before the subcommand (`self`) joined with those
    /// after it: lists in command-line order, a single value from the
    /// later place.
    pub fn merged(mut self, after: JailOpts) -> JailOpts {
        self.profile = after.profile.or(self.profile);
        self.ro.extend(after.ro);
        self.rw.extend(after.rw);
        self.hide.extend(after.hide);
        self.net = after.net.or(self.net);
        self.allow_domain.extend(after.allow_domain);
        self.allow_port.extend(after.allow_port);
        self.expose_host_port.extend(after.expose_host_port);
        self.dns_upstream = after.dns_upstream.or(self.dns_upstream);
        self.env.extend(after.env);
        self.gpu |= after.gpu;
        self.home = after.home.or(self.home);
        self.review = after.review.or(self.review);
        self.timeout = after.timeout.or(self.timeout);
        self.memory = after.memory.or(self.memory);
        self.pids = after.pids.or(self.pids);
        self.cpus = after.cpus.or(self.cpus);
        self
    }

    /// The first option given, as typed (for "does not apply" messages).
    pub fn first_given(&self) -> Option<&'static str> {
        let given = [
            (self.profile.is_some(), "--profile"),
            (!self.ro.is_empty(), "--ro"),
            (!self.rw.is_empty(), "--rw"),
            (!self.hide.is_empty(), "--hide"),
            (self.net.is_some(), "--net"),
            (!self.allow_domain.is_empty(), "--allow-domain"),
            (!self.allow_port.is_empty(), "--allow-port"),
            (!self.expose_host_port.is_empty(), "--expose-host-port"),
            (self.dns_upstream.is_some(), "--dns-upstream"),
            (!self.env.is_empty(), "--env"),
            (self.gpu, "--gpu"),
            (self.home.is_some(), "--home"),
            (self.review.is_some(), "--review"),
            (self.timeout.is_some(), "--timeout"),
            (self.memory.is_some(), "--memory"),
            (self.pids.is_some(), "--pids"),
            (self.cpus.is_some(), "--cpus"),
        ];
        given.iter().find(|(g, _)| *g).map(|(_, n)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("jail").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn jail_options_work_before_and_after_explain_and_run() {
        for args in [
            &["-p", "x", "--ro", "/a", "explain", "--ro", "/b", "--", "ls"][..],
            &["--ro", "/a", "run", "-p", "x", "--ro", "/b", "--", "ls"][..],
        ] {
            let cli = parse(args);
            let (after, command) = match cli.sub {
                Some(Sub::Explain { opts, command }) | Some(Sub::Run { opts, command, .. }) => {
                    (opts, command)
                }
                other => panic!("{other:?}"),
            };
            let o = cli.opts.merged(after);
            assert_eq!(o.profile.as_deref(), Some("x"));
            assert_eq!(o.ro, ["/a", "/b"]);
            assert_eq!(command, ["ls"]);
        }
        let cli = parse(&["-p", "a", "--net", "host", "explain", "-p", "b", "make"]);
        let Some(Sub::Explain { opts, .. }) = cli.sub else {
            panic!("not explain")
        };
        let o = cli.opts.merged(opts);
        assert_eq!(o.profile.as_deref(), Some("b"), "the later one wins");
        assert_eq!(o.net, Some(NetArg::Host));
        // -v and -q anywhere.
        assert_eq!(parse(&["doctor", "-v"]).log.verbose, 1);
        assert!(parse(&["profiles", "-q"]).log.quiet);
    }

    #[test]
    fn subcommands_that_run_nothing_take_no_jail_options() {
        for args in [
            &["doctor", "--ro", "/x"][..],
            &["profiles", "-p", "x"][..],
            &["trust", "--gpu"][..],
            &["init", "--net", "none"][..],
        ] {
            let e = Cli::try_parse_from(std::iter::once("jail").chain(args.iter().copied()));
            assert!(e.is_err(), "{args:?} parsed");
        }
        let cmd = Cli::command();
        let doctor = cmd.find_subcommand("doctor").unwrap();
        let ids: Vec<&str> = doctor
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .collect();
        assert!(!ids.contains(&"profile"), "{ids:?}");
    }

    #[test]
    fn a_program_after_the_options_keeps_its_own_options() {
        let cli = parse(&["--ro", "/a", "make", "-p", "--ro"]);
        assert!(cli.sub.is_none());
        assert_eq!(cli.opts.ro, ["/a"]);
        assert_eq!(cli.command, ["make", "-p", "--ro"]);
    }

    #[test]
    fn first_given_names_an_option() {
        assert_eq!(JailOpts::default().first_given(), None);
        let o = JailOpts {
            gpu: true,
            ..Default::default()
        };
        assert_eq!(o.first_given(), Some("--gpu"));
    }
}
