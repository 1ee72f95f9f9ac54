//! jail: an unprivileged process jail for AI coding agents and any command.
//!
//! `config` is policy (TOML layers → `JailSpec`, pure data), `sandbox` is
//! mechanism (namespaces, mounts, pid 1), `harden` confines the jail
//! (capabilities, no_new_privs, Landlock, seccomp), `app` ties them to the
//! command line. `outside` holds the processes that run outside the jail
//! (quarantine guard, network helper, Slurm chaperon); `sys` the raw
//! process, fd and socket syscalls; `review` shows and applies what a
//! program changed in review mode.

pub mod app;
pub mod cli;
pub mod config;
pub mod display;
pub mod doctor;
pub mod harden;
pub mod host;
pub mod outside;
pub mod prompt;
pub mod review;
pub mod sandbox;
pub mod storage;
pub mod sys;
#[cfg(test)]
pub mod testutil;
