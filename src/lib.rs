//! jail: an unprivileged process jail for AI coding agents and any command.
//!
//! One binary, several processes; each has its own home (docs/design.md,
//! "The processes"): the launcher (`app`, `launcher`), the jail's pid 1
//! and the program's child (`pid1`, `harden`), outside the jail the guard,
//! the network helper and the Slurm chaperon (`outside`), the stubs inside
//! (`inside`), the job launcher on a compute node (`node`), and review
//! mode (`review`). They stand on shared pieces: `sys` (raw syscalls),
//! `exit`, `reap`, `config` (policy → `JailSpec`, pure data), `host`, and
//! `plan` (what the jail will be, read from the host, nothing changed).
//! Imports run one way, from the processes down to the shared pieces;
//! the `layering` test fails on any circle.

// Shared, low-level (used by the processes below, import nothing above).
pub mod display;
pub mod exit;
pub mod prompt;
pub mod reap;
pub mod storage;
pub mod sys;
// Policy: configuration, host facts, the plan.
pub mod config;
pub mod host;
pub mod plan;
// Confinement applied by pid 1 and the program's child.
pub mod harden;
// The processes.
pub mod inside;
pub mod launcher;
pub mod node;
pub mod outside;
pub mod pid1;
pub mod review;
// Entry points.
pub mod app;
pub mod cli;
pub mod doctor;
#[cfg(test)]
mod layering;
#[cfg(test)]
pub mod testutil;
