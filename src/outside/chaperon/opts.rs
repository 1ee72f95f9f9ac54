//! The option tables of Slurm's commands and a parser that reads an
//! argument vector exactly as their getopt_long does (GNU semantics:
//! `--name=value` and `--name value`, unique abbreviations of long names,
//! clustered short flags `-vH`, attached values `-ofile`, optional values
//! only attached, `--` ends the options; sbatch/srun/salloc stop at the
//! first operand ("+"), the query commands permute operands).
//!
//! Pure: the chaperon validates what this returns and rebuilds the real
//! command line from it in canonical `--name=value` form, so an option is
//! never read one way here and another way by Slurm.
//!
//! The sbatch/srun/salloc table is Slurm 22.05's `common_options`
//! (src/common/slurm_opt.c); the others come from each command's own
//! `long_options` (22.05). An option a newer Slurm adds is unknown here
//! and refused, never passed through.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    No,
    Req,
    Opt,
}

/// Which commands an option belongs to.
pub const SALLOC: u8 = 1;
pub const SBATCH: u8 = 2;
pub const SRUN: u8 = 4;

#[derive(Debug, PartialEq, Eq)]
pub struct Def {
    /// The long name as getopt matches it.
    pub name: &'static str,
    /// The canonical name (aliases share it): what rules are keyed on and
    /// what the chaperon passes on.
    pub key: &'static str,
    pub short: Option<char>,
    pub arg: Arg,
    pub cmds: u8,
}

const fn o(name: &'static str, key: &'static str, short: Option<char>, arg: Arg, cmds: u8) -> Def {
    Def {
        name,
        key,
        short,
        arg,
        cmds,
    }
}

use Arg::Opt as Optional;
use Arg::{No, Req};

/// sbatch, srun and salloc (Slurm 22.05 common_options).
pub static JOB_OPTIONS: &[Def] = &[
    o("accel-bind", "accel-bind", None, Req, SRUN),
    o("account", "account", Some('A'), Req, SALLOC | SBATCH | SRUN),
    o(
        "acctg-freq",
        "acctg-freq",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("array", "array", Some('a'), Req, SBATCH),
    o("batch", "batch", None, Req, SBATCH),
    o("bcast", "bcast", None, Optional, SRUN),
    o("bcast-exclude", "bcast-exclude", None, Req, SRUN),
    o("begin", "begin", Some('b'), Req, SALLOC | SBATCH | SRUN),
    o("bell", "bell", None, No, SALLOC),
    o("bb", "bb", None, Req, SALLOC | SBATCH | SRUN),
    o("bbf", "bbf", None, Req, SALLOC | SBATCH | SRUN),
    o(
        "cluster-constraint",
        "cluster-constraint",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("chdir", "chdir", Some('D'), Req, SALLOC | SBATCH | SRUN),
    o("cluster", "cluster", None, Req, SALLOC | SBATCH | SRUN),
    o(
        "clusters",
        "clusters",
        Some('M'),
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("comment", "comment", None, Req, SALLOC | SBATCH | SRUN),
    o("compress", "compress", None, Optional, SRUN),
    o("container", "container", None, Req, SALLOC | SBATCH | SRUN),
    o("context", "context", None, Req, SALLOC | SBATCH | SRUN),
    o("contiguous", "contiguous", None, No, SALLOC | SBATCH | SRUN),
    o(
        "constraint",
        "constraint",
        Some('C'),
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o(
        "core-spec",
        "core-spec",
        Some('S'),
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o(
        "cores-per-socket",
        "cores-per-socket",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("cpu-bind", "cpu-bind", None, Req, SRUN),
    o("cpu_bind", "cpu-bind", None, Req, SRUN),
    o("cpu-freq", "cpu-freq", None, Req, SALLOC | SBATCH | SRUN),
    o(
        "cpus-per-gpu",
        "cpus-per-gpu",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o(
        "cpus-per-task",
        "cpus-per-task",
        Some('c'),
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("deadline", "deadline", None, Req, SALLOC | SBATCH | SRUN),
    o("debugger-test", "debugger-test", None, No, SRUN),
    o(
        "delay-boot",
        "delay-boot",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o(
        "dependency",
        "dependency",
        Some('d'),
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("disable-status", "disable-status", Some('X'), No, SRUN),
    o(
        "distribution",
        "distribution",
        Some('m'),
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("epilog", "epilog", None, Req, SRUN),
    o("error", "error", Some('e'), Req, SBATCH | SRUN),
    o("exact", "exact", None, No, SRUN),
    o("exclude", "exclude", Some('x'), Req, SALLOC | SBATCH | SRUN),
    o(
        "exclusive",
        "exclusive",
        None,
        Optional,
        SALLOC | SBATCH | SRUN,
    ),
    o("export", "export", None, Req, SBATCH | SRUN),
    o("export-file", "export-file", None, Req, SBATCH),
    o(
        "extra-node-info",
        "extra-node-info",
        Some('B'),
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o(
        "get-user-env",
        "get-user-env",
        None,
        Optional,
        SALLOC | SBATCH,
    ),
    o("gid", "gid", None, Req, SALLOC | SBATCH | SRUN),
    o("gpu-bind", "gpu-bind", None, Req, SALLOC | SBATCH | SRUN),
    o("gpu-freq", "gpu-freq", None, Req, SALLOC | SBATCH | SRUN),
    o("gpus", "gpus", Some('G'), Req, SALLOC | SBATCH | SRUN),
    o(
        "gpus-per-node",
        "gpus-per-node",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o(
        "gpus-per-socket",
        "gpus-per-socket",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o(
        "gpus-per-task",
        "gpus-per-task",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("gres", "gres", None, Req, SALLOC | SBATCH | SRUN),
    o(
        "gres-flags",
        "gres-flags",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("help", "help", Some('h'), No, SALLOC | SBATCH | SRUN),
    o("het-group", "het-group", None, Req, SRUN),
    o("hint", "hint", None, Req, SALLOC | SBATCH | SRUN),
    o("hold", "hold", Some('H'), No, SALLOC | SBATCH | SRUN),
    o("ignore-pbs", "ignore-pbs", None, No, SBATCH),
    o("immediate", "immediate", Some('I'), Optional, SALLOC | SRUN),
    o("input", "input", Some('i'), Req, SBATCH | SRUN),
    o("interactive", "interactive", None, No, SRUN),
    o("jobid", "jobid", None, Req, SRUN),
    o(
        "job-name",
        "job-name",
        Some('J'),
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("kill-command", "kill-command", Some('K'), Optional, SALLOC),
    o(
        "kill-on-bad-exit",
        "kill-on-bad-exit",
        Some('K'),
        Optional,
        SRUN,
    ),
    o(
        "kill-on-invalid-dep",
        "kill-on-invalid-dep",
        None,
        Req,
        SBATCH,
    ),
    o("label", "label", Some('l'), No, SRUN),
    o(
        "licenses",
        "licenses",
        Some('L'),
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("mail-type", "mail-type", None, Req, SALLOC | SBATCH | SRUN),
    o("mail-user", "mail-user", None, Req, SALLOC | SBATCH | SRUN),
    o("threads", "threads", Some('T'), Req, SRUN),
    o("mcs-label", "mcs-label", None, Req, SALLOC | SBATCH | SRUN),
    o("mem", "mem", None, Req, SALLOC | SBATCH | SRUN),
    o("mem-bind", "mem-bind", None, Req, SALLOC | SBATCH | SRUN),
    o(
        "mem-per-cpu",
        "mem-per-cpu",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o(
        "mem-per-gpu",
        "mem-per-gpu",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("mincpus", "mincpus", None, Req, SALLOC | SBATCH | SRUN),
    o("mpi", "mpi", None, Req, SRUN),
    o("msg-timeout", "msg-timeout", None, Req, SRUN),
    o("multi-prog", "multi-prog", None, No, SRUN),
    o("network", "network", None, Req, SALLOC | SBATCH | SRUN),
    o("nice", "nice", None, Optional, SALLOC | SBATCH | SRUN),
    o("no-allocate", "no-allocate", Some('Z'), No, SRUN),
    o("no-bell", "no-bell", None, No, SALLOC),
    o(
        "no-kill",
        "no-kill",
        Some('k'),
        Optional,
        SALLOC | SBATCH | SRUN,
    ),
    o("no-shell", "no-shell", None, No, SALLOC),
    o("no-requeue", "no-requeue", None, No, SBATCH),
    o(
        "nodefile",
        "nodefile",
        Some('F'),
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o(
        "nodelist",
        "nodelist",
        Some('w'),
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("nodes", "nodes", Some('N'), Req, SALLOC | SBATCH | SRUN),
    o("ntasks", "ntasks", Some('n'), Req, SALLOC | SBATCH | SRUN),
    o(
        "ntasks-per-core",
        "ntasks-per-core",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o(
        "ntasks-per-gpu",
        "ntasks-per-gpu",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o(
        "ntasks-per-node",
        "ntasks-per-node",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o(
        "ntasks-per-socket",
        "ntasks-per-socket",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o(
        "ntasks-per-tres",
        "ntasks-per-tres",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("open-mode", "open-mode", None, Req, SBATCH | SRUN),
    o("output", "output", Some('o'), Req, SBATCH | SRUN),
    o(
        "overcommit",
        "overcommit",
        Some('O'),
        No,
        SALLOC | SBATCH | SRUN,
    ),
    o("overlap", "overlap", None, Optional, SRUN),
    o(
        "oversubscribe",
        "oversubscribe",
        Some('s'),
        No,
        SALLOC | SBATCH | SRUN,
    ),
    o("pack-group", "het-group", None, Req, SRUN),
    o("parsable", "parsable", None, No, SBATCH),
    o(
        "partition",
        "partition",
        Some('p'),
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("power", "power", None, Req, SALLOC | SBATCH | SRUN),
    o("prefer", "prefer", None, Req, SALLOC | SBATCH | SRUN),
    o("preserve-env", "preserve-env", Some('E'), No, SRUN),
    o("priority", "priority", None, Req, SALLOC | SBATCH | SRUN),
    o("profile", "profile", None, Req, SALLOC | SBATCH | SRUN),
    o("prolog", "prolog", None, Req, SRUN),
    o("propagate", "propagate", None, Optional, SBATCH | SRUN),
    o("pty", "pty", None, No, SRUN),
    o("qos", "qos", Some('q'), Req, SALLOC | SBATCH | SRUN),
    o("quiet", "quiet", Some('Q'), No, SALLOC | SBATCH | SRUN),
    o("quit-on-interrupt", "quit-on-interrupt", None, No, SRUN),
    o("reboot", "reboot", None, No, SALLOC | SBATCH | SRUN),
    o("relative", "relative", Some('r'), Req, SRUN),
    o("requeue", "requeue", None, No, SBATCH),
    o(
        "reservation",
        "reservation",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("resv-ports", "resv-ports", None, Optional, SRUN),
    o("send-libs", "send-libs", None, Optional, SRUN),
    o("signal", "signal", None, Req, SALLOC | SBATCH | SRUN),
    o("slurmd-debug", "slurmd-debug", None, Req, SRUN),
    o(
        "sockets-per-node",
        "sockets-per-node",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("spread-job", "spread-job", None, No, SALLOC | SBATCH | SRUN),
    o("switches", "switches", None, Req, SALLOC | SBATCH | SRUN),
    o("task-epilog", "task-epilog", None, Req, SRUN),
    o("task-prolog", "task-prolog", None, Req, SRUN),
    o(
        "tasks-per-node",
        "ntasks-per-node",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("test-only", "test-only", None, No, SBATCH | SRUN),
    o(
        "thread-spec",
        "thread-spec",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o(
        "threads-per-core",
        "threads-per-core",
        None,
        Req,
        SALLOC | SBATCH | SRUN,
    ),
    o("time", "time", Some('t'), Req, SALLOC | SBATCH | SRUN),
    o("time-min", "time-min", None, Req, SALLOC | SBATCH | SRUN),
    o("tmp", "tmp", None, Req, SALLOC | SBATCH | SRUN),
    o("uid", "uid", None, Req, SALLOC | SBATCH | SRUN),
    o("unbuffered", "unbuffered", Some('u'), No, SRUN),
    o(
        "use-min-nodes",
        "use-min-nodes",
        None,
        No,
        SALLOC | SBATCH | SRUN,
    ),
    o("verbose", "verbose", Some('v'), No, SALLOC | SBATCH | SRUN),
    o("version", "version", Some('V'), No, SALLOC | SBATCH | SRUN),
    o("usage", "usage", None, No, SALLOC | SBATCH | SRUN),
    o("wait", "wait", Some('W'), No, SBATCH),
    o(
        "wait-all-nodes",
        "wait-all-nodes",
        None,
        Req,
        SALLOC | SBATCH,
    ),
    o("wait", "wait", Some('W'), Req, SRUN),
    o("wckey", "wckey", None, Req, SALLOC | SBATCH | SRUN),
    o("whole", "whole", None, No, SRUN),
    o("wrap", "wrap", None, Req, SBATCH),
];

const Q: u8 = 0xff;

/// squeue (src/squeue/opts.c).
pub static SQUEUE: &[Def] = &[
    o("accounts", "accounts", Some('A'), Req, Q),
    o("all", "all", Some('a'), No, Q),
    o("array", "array", Some('r'), No, Q),
    o("array-unique", "array-unique", None, No, Q),
    o("Format", "Format", Some('O'), Req, Q),
    o("format", "format", Some('o'), Req, Q),
    o("federation", "federation", None, No, Q),
    o("help", "help", None, No, Q),
    o("hide", "hide", None, No, Q),
    o("iterate", "iterate", Some('i'), Req, Q),
    o("jobs", "jobs", Some('j'), Optional, Q),
    o("local", "local", None, No, Q),
    o("long", "long", Some('l'), No, Q),
    o("licenses", "licenses", Some('L'), Req, Q),
    o("cluster", "clusters", None, Req, Q),
    o("clusters", "clusters", Some('M'), Req, Q),
    o("me", "me", None, No, Q),
    o("name", "name", Some('n'), Req, Q),
    o("noconvert", "noconvert", None, No, Q),
    o("node", "nodelist", None, Req, Q),
    o("nodes", "nodelist", None, Req, Q),
    o("nodelist", "nodelist", Some('w'), Req, Q),
    o("noheader", "noheader", Some('h'), No, Q),
    o("partitions", "partitions", Some('p'), Req, Q),
    o("priority", "priority", Some('P'), No, Q),
    o("qos", "qos", Some('q'), Req, Q),
    o("reservation", "reservation", Some('R'), Req, Q),
    o("sib", "sibling", None, No, Q),
    o("sibling", "sibling", None, No, Q),
    o("sort", "sort", Some('S'), Req, Q),
    o("start", "start", None, No, Q),
    o("steps", "steps", Some('s'), Optional, Q),
    o("states", "states", Some('t'), Req, Q),
    o("usage", "usage", None, No, Q),
    o("user", "user", Some('u'), Req, Q),
    o("users", "user", None, Req, Q),
    o("", "U", Some('U'), Req, Q),
    o("verbose", "verbose", Some('v'), No, Q),
    o("version", "version", Some('V'), No, Q),
    o("json", "json", None, No, Q),
    o("yaml", "yaml", None, No, Q),
];

/// scancel (src/scancel/opt.c).
pub static SCANCEL: &[Def] = &[
    o("account", "account", Some('A'), Req, Q),
    o("batch", "batch", Some('b'), No, Q),
    o("ctld", "ctld", None, No, Q),
    o("full", "full", Some('f'), No, Q),
    o("help", "help", None, No, Q),
    o("hurry", "hurry", Some('H'), No, Q),
    o("interactive", "interactive", Some('i'), No, Q),
    o("cluster", "clusters", None, Req, Q),
    o("clusters", "clusters", Some('M'), Req, Q),
    o("jobname", "name", None, Req, Q),
    o("me", "me", None, No, Q),
    o("name", "name", Some('n'), Req, Q),
    o("nodelist", "nodelist", Some('w'), Req, Q),
    o("partition", "partition", Some('p'), Req, Q),
    o("qos", "qos", Some('q'), Req, Q),
    o("quiet", "quiet", Some('Q'), No, Q),
    o("reservation", "reservation", Some('R'), Req, Q),
    o("sibling", "sibling", None, Req, Q),
    o("signal", "signal", Some('s'), Req, Q),
    o("state", "state", Some('t'), Req, Q),
    o("usage", "usage", None, No, Q),
    o("user", "user", Some('u'), Req, Q),
    o("verbose", "verbose", Some('v'), No, Q),
    o("version", "version", Some('V'), No, Q),
    o("wckey", "wckey", None, Req, Q),
];

/// scontrol's options (src/scontrol/scontrol.c); its words are operands.
pub static SCONTROL: &[Def] = &[
    o("all", "all", Some('a'), No, Q),
    o("cluster", "clusters", None, Req, Q),
    o("clusters", "clusters", Some('M'), Req, Q),
    o("details", "details", Some('d'), No, Q),
    o("federation", "federation", None, No, Q),
    o("future", "future", Some('F'), No, Q),
    o("help", "help", Some('h'), No, Q),
    o("hide", "hide", None, No, Q),
    o("local", "local", None, No, Q),
    o("oneliner", "oneliner", Some('o'), No, Q),
    o("quiet", "quiet", Some('Q'), No, Q),
    o("sibling", "sibling", None, No, Q),
    o("uid", "uid", Some('u'), Req, Q),
    o("usage", "help", None, No, Q),
    o("verbose", "verbose", Some('v'), No, Q),
    o("version", "version", Some('V'), No, Q),
];

/// sacct (src/sacct/options.c).
pub static SACCT: &[Def] = &[
    o("allusers", "allusers", Some('a'), No, Q),
    o("accounts", "accounts", Some('A'), Req, Q),
    o("allocations", "allocations", Some('X'), No, Q),
    o("brief", "brief", Some('b'), No, Q),
    o("batch-script", "batch-script", Some('B'), No, Q),
    o("completion", "completion", Some('c'), No, Q),
    o("constraints", "constraints", Some('C'), Req, Q),
    o("delimiter", "delimiter", None, Req, Q),
    o("duplicates", "duplicates", Some('D'), No, Q),
    o("federation", "federation", None, No, Q),
    o("helpformat", "helpformat", Some('e'), No, Q),
    o("help-fields", "helpformat", None, No, Q),
    o("endtime", "endtime", Some('E'), Req, Q),
    o("env-vars", "env-vars", None, No, Q),
    o("file", "file", Some('f'), Req, Q),
    o("flags", "flags", Some('F'), Req, Q),
    o("gid", "group", None, Req, Q),
    o("group", "group", Some('g'), Req, Q),
    o("help", "help", Some('h'), No, Q),
    o("local", "local", None, No, Q),
    o("name", "name", None, Req, Q),
    o("nnodes", "nnodes", Some('i'), Req, Q),
    o("ncpus", "ncpus", Some('I'), Req, Q),
    o("jobs", "jobs", Some('j'), Req, Q),
    o("timelimit-min", "timelimit-min", Some('k'), Req, Q),
    o("timelimit-max", "timelimit-max", Some('K'), Req, Q),
    o("long", "long", Some('l'), No, Q),
    o("allclusters", "allclusters", Some('L'), No, Q),
    o("cluster", "clusters", None, Req, Q),
    o("clusters", "clusters", Some('M'), Req, Q),
    o("nodelist", "nodelist", Some('N'), Req, Q),
    o("noconvert", "noconvert", None, No, Q),
    o("units", "units", None, Req, Q),
    o("noheader", "noheader", Some('n'), No, Q),
    o("fields", "format", None, Req, Q),
    o("format", "format", Some('o'), Req, Q),
    o("parsable", "parsable", Some('p'), No, Q),
    o("parsable2", "parsable2", Some('P'), No, Q),
    o("qos", "qos", Some('q'), Req, Q),
    o("partition", "partition", Some('r'), Req, Q),
    o("reason", "reason", Some('R'), Req, Q),
    o("state", "state", Some('s'), Req, Q),
    o("starttime", "starttime", Some('S'), Req, Q),
    o("truncate", "truncate", Some('T'), No, Q),
    o("", "t", Some('t'), No, Q),
    o("uid", "user", None, Req, Q),
    o("use-local-uid", "use-local-uid", None, No, Q),
    o("usage", "usage", Some('U'), No, Q),
    o("user", "user", Some('u'), Req, Q),
    o("verbose", "verbose", Some('v'), No, Q),
    o("version", "version", Some('V'), No, Q),
    o("wckeys", "wckeys", Some('W'), Req, Q),
    o("whole-hetjob", "whole-hetjob", None, Optional, Q),
    o("associations", "associations", Some('x'), Req, Q),
    o("json", "json", None, No, Q),
    o("yaml", "yaml", None, No, Q),
];

/// One command's options and how its getopt treats operands.
#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub defs: &'static [Def],
    /// Only options of these commands (JOB_OPTIONS is shared).
    pub cmd: u8,
    /// GNU's default: operands may come between options. Without it
    /// ("+" in the optstring) the first operand ends the options.
    pub permute: bool,
}

impl Table {
    pub const SBATCH: Table = Table {
        defs: JOB_OPTIONS,
        cmd: SBATCH,
        permute: false,
    };
    pub const SRUN: Table = Table {
        defs: JOB_OPTIONS,
        cmd: SRUN,
        permute: false,
    };
    pub const SALLOC: Table = Table {
        defs: JOB_OPTIONS,
        cmd: SALLOC,
        permute: false,
    };
    pub const SQUEUE: Table = Table {
        defs: SQUEUE,
        cmd: Q,
        permute: true,
    };
    pub const SCANCEL: Table = Table {
        defs: SCANCEL,
        cmd: Q,
        permute: true,
    };
    pub const SCONTROL: Table = Table {
        defs: SCONTROL,
        cmd: Q,
        permute: true,
    };
    pub const SACCT: Table = Table {
        defs: SACCT,
        cmd: Q,
        permute: true,
    };

    fn defs(&self) -> impl Iterator<Item = &'static Def> + '_ {
        self.defs.iter().filter(move |d| d.cmds & self.cmd != 0)
    }

    fn short(&self, c: char) -> Option<&'static Def> {
        self.defs().find(|d| d.short == Some(c))
    }

    /// getopt_long's lookup: an exact name, else the one option a prefix
    /// names (several names of one option are not ambiguous).
    fn long(&self, name: &str) -> Result<&'static Def, Vec<&'static str>> {
        if let Some(d) = self.defs().find(|d| !d.name.is_empty() && d.name == name) {
            return Ok(d);
        }
        let hits: Vec<&'static Def> = self
            .defs()
            .filter(|d| !d.name.is_empty() && !name.is_empty() && d.name.starts_with(name))
            .collect();
        match hits.first() {
            Some(first)
                if hits
                    .iter()
                    .all(|d| d.key == first.key && d.arg == first.arg) =>
            {
                Ok(first)
            }
            _ => Err(hits.iter().map(|d| d.name).collect()),
        }
    }
}

/// One option as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opt {
    /// The canonical name (`Def::key`).
    pub key: &'static str,
    pub value: Option<String>,
    /// How it was written (`-o`, `--out`), for messages.
    pub written: String,
    /// The short letter, if it has one (for messages and rebuilding).
    pub short: Option<char>,
}

impl Opt {
    /// `--key=value` or `--key`: the form the real command gets.
    pub fn canonical(&self) -> String {
        match &self.value {
            Some(v) => format!("--{}={v}", self.key),
            None => format!("--{}", self.key),
        }
    }

    /// How a refusal names it: as written, with its value.
    pub fn shown(&self) -> String {
        match &self.value {
            Some(v) if self.written.starts_with("--") => format!("{}={v}", self.written),
            Some(v) => format!("{} {v}", self.written),
            None => self.written.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    pub opts: Vec<Opt>,
    /// Operands in order (with `permute` off: everything from the first
    /// operand on, options of the program included).
    pub operands: Vec<String>,
}

impl Parsed {
    pub fn has(&self, key: &str) -> bool {
        self.opts.iter().any(|o| o.key == key)
    }

    /// The last value given for `key` (Slurm: the last one wins).
    pub fn last(&self, key: &str) -> Option<&Opt> {
        self.opts.iter().rev().find(|o| o.key == key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unrecognized option")]
    Unknown(String),
    #[error("ambiguous option (could be {})", .1.join(", "))]
    Ambiguous(String, Vec<&'static str>),
    #[error("requires a value")]
    Missing(String),
    #[error("takes no value")]
    Unexpected(String),
}

impl ParseError {
    /// The option as written.
    pub fn option(&self) -> &str {
        match self {
            ParseError::Unknown(o)
            | ParseError::Ambiguous(o, _)
            | ParseError::Missing(o)
            | ParseError::Unexpected(o) => o,
        }
    }
}

/// Reads `args` (without argv[0]) as `table`'s getopt_long would.
pub fn parse(table: &Table, args: &[String]) -> Result<Parsed, ParseError> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            out.operands.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, attached) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let written = format!("--{name}");
            let def = table.long(name).map_err(|hits| {
                if hits.is_empty() {
                    ParseError::Unknown(written.clone())
                } else {
                    ParseError::Ambiguous(written.clone(), hits)
                }
            })?;
            let value = match (def.arg, attached) {
                (Arg::No, Some(_)) => return Err(ParseError::Unexpected(written)),
                (Arg::No, None) => None,
                (Arg::Opt, v) => v,
                (Arg::Req, Some(v)) => Some(v),
                (Arg::Req, None) => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        Some(v.clone())
                    }
                    None => return Err(ParseError::Missing(written)),
                },
            };
            out.opts.push(Opt {
                key: def.key,
                value,
                written,
                short: def.short,
            });
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut k = 0;
            while k < chars.len() {
                let c = chars[k];
                k += 1;
                let written = format!("-{c}");
                let def = table
                    .short(c)
                    .ok_or_else(|| ParseError::Unknown(written.clone()))?;
                let rest: String = chars[k..].iter().collect();
                let value = match def.arg {
                    Arg::No => None,
                    Arg::Opt => {
                        k = chars.len();
                        (!rest.is_empty()).then_some(rest)
                    }
                    Arg::Req => {
                        k = chars.len();
                        if !rest.is_empty() {
                            Some(rest)
                        } else if let Some(v) = args.get(i) {
                            i += 1;
                            Some(v.clone())
                        } else {
                            return Err(ParseError::Missing(written));
                        }
                    }
                };
                out.opts.push(Opt {
                    key: def.key,
                    value,
                    written,
                    short: def.short,
                });
            }
            continue;
        }
        // An operand ("-" alone is one too).
        if table.permute {
            out.operands.push(a.clone());
        } else {
            out.operands.extend(args[i - 1..].iter().cloned());
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn keys(p: &Parsed) -> Vec<(&str, Option<&str>)> {
        p.opts.iter().map(|o| (o.key, o.value.as_deref())).collect()
    }

    #[test]
    fn every_form_getopt_reads() {
        let p = parse(
            &Table::SBATCH,
            &v(&[
                "-ofile",
                "-o",
                "f2",
                "--output=f3",
                "--output",
                "f4",
                "-vHJname",
                "--part=debug",
                "script.sh",
                "-o",
                "arg",
            ]),
        )
        .unwrap();
        assert_eq!(
            keys(&p),
            vec![
                ("output", Some("file")),
                ("output", Some("f2")),
                ("output", Some("f3")),
                ("output", Some("f4")),
                ("verbose", None),
                ("hold", None),
                ("job-name", Some("name")),
                ("partition", Some("debug")),
            ]
        );
        assert_eq!(p.operands, v(&["script.sh", "-o", "arg"]));
    }

    #[test]
    fn a_required_value_is_taken_even_when_it_looks_like_an_option() {
        let p = parse(&Table::SBATCH, &v(&["-o", "--wrap=x", "-e"])).unwrap_err();
        assert_eq!(p, ParseError::Missing("-e".into()));
        let p = parse(&Table::SBATCH, &v(&["-o", "--wrap=x"])).unwrap();
        assert_eq!(keys(&p), vec![("output", Some("--wrap=x"))]);
    }

    #[test]
    fn abbreviations_follow_getopt() {
        // Unique prefix.
        let p = parse(&Table::SBATCH, &v(&["--chd=/x"])).unwrap();
        assert_eq!(keys(&p), vec![("chdir", Some("/x"))]);
        // Ambiguous prefix.
        assert!(matches!(
            parse(&Table::SBATCH, &v(&["--cpu=1"])),
            Err(ParseError::Ambiguous(..))
        ));
        // Aliases of one option are not ambiguous.
        let p = parse(&Table::SRUN, &v(&["--cpu_b=none"])).unwrap();
        assert_eq!(keys(&p), vec![("cpu-bind", Some("none"))]);
        // An exact name beats longer ones it prefixes.
        let p = parse(&Table::SBATCH, &v(&["--mem=1G"])).unwrap();
        assert_eq!(keys(&p), vec![("mem", Some("1G"))]);
    }

    #[test]
    fn optional_values_are_only_attached() {
        let p = parse(&Table::SBATCH, &v(&["--exclusive", "script"])).unwrap();
        assert_eq!(keys(&p), vec![("exclusive", None)]);
        assert_eq!(p.operands, v(&["script"]));
        let p = parse(&Table::SRUN, &v(&["-K1", "-K", "cmd"])).unwrap();
        assert_eq!(
            keys(&p),
            vec![("kill-on-bad-exit", Some("1")), ("kill-on-bad-exit", None)]
        );
    }

    #[test]
    fn no_value_options_refuse_one() {
        assert_eq!(
            parse(&Table::SBATCH, &v(&["--hold=1"])),
            Err(ParseError::Unexpected("--hold".into()))
        );
    }

    #[test]
    fn unknown_options_and_commands_differ() {
        assert_eq!(
            parse(&Table::SBATCH, &v(&["--pty"])),
            Err(ParseError::Unknown("--pty".into()))
        );
        assert!(parse(&Table::SRUN, &v(&["--pty"])).is_ok());
        // `-W` is --wait for sbatch (no value) and --wait=SECONDS for srun.
        let p = parse(&Table::SRUN, &v(&["-W", "5", "true"])).unwrap();
        assert_eq!(keys(&p), vec![("wait", Some("5"))]);
        let p = parse(&Table::SBATCH, &v(&["-W", "s.sh"])).unwrap();
        assert_eq!(keys(&p), vec![("wait", None)]);
    }

    #[test]
    fn query_commands_permute_operands() {
        let p = parse(&Table::SCANCEL, &v(&["12", "-s", "KILL", "13", "--", "-x"])).unwrap();
        assert_eq!(keys(&p), vec![("signal", Some("KILL"))]);
        assert_eq!(p.operands, v(&["12", "13", "-x"]));
        let p = parse(&Table::SRUN, &v(&["-n1", "cmd", "-n", "2"])).unwrap();
        assert_eq!(p.operands, v(&["cmd", "-n", "2"]));
    }

    #[test]
    fn short_only_letters_have_no_long_name() {
        assert!(parse(&Table::SQUEUE, &v(&["--U=x"])).is_err());
        assert!(parse(&Table::SQUEUE, &v(&["-Ux"])).is_ok());
    }

    #[test]
    fn canonical_forms_keep_the_value_whole() {
        let p = parse(&Table::SBATCH, &v(&["-Jx y=z"])).unwrap();
        assert_eq!(p.opts[0].canonical(), "--job-name=x y=z");
        assert_eq!(p.opts[0].shown(), "-J x y=z");
    }
}
