//! (doc below)

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
