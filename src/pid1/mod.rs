//! Code run by the jail's pid 1 (and by the program's child it forks),
//! inside the new namespaces: the executor that builds the filesystem from
//! the plan (`exec`) and the jail's side of its network (`net`). Both run
//! after fork, so they only make raw syscalls on buffers prepared before
//! it by the launcher.

pub mod exec;
pub mod net;
