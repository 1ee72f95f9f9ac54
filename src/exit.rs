//! Exit statuses of jail itself (shared by every process: the launcher,
//! the processes outside, the stubs inside, the job launcher on a node).
//! The program's own status passes through unchanged; 128+N reports a
//! death by signal N (`reap::status_code`).

/// An error of jail itself (bad config, refused override, setup failure).
pub const EXIT_JAIL_ERROR: i32 = 125;

/// `--timeout` stopped the jail (as timeout(1)).
pub const EXIT_TIMEOUT: i32 = 124;
