//! The jail's pid 1 and the program's child: the code that runs after the
//! launcher's clone, inside the new namespaces. `main` is pid 1's body
//! (it builds the jail, hardens itself, starts the program, reaps);
//! `program` is the program's child it starts (the last confinement,
//! then exec). `exec` builds the filesystem from the plan and `net` the
//! jail's side of its network. What they all consume is `prepared` by the
//! launcher before the clone, so they only make raw, async-signal-safe,
//! allocation-free syscalls on it. Below `launcher` in the layering: the
//! launcher uses this module, never the reverse.

pub mod exec;
pub mod main;
pub mod net;
pub mod prepared;
pub mod program;

pub use prepared::Prepared;
