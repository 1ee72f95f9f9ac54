//! What the launcher prepares for the jail's pid 1 and the program's
//! child before its clone: every C string, pointer array, mount step,
//! BPF program and limit they use, so that after the clone they only
//! read this and make async-signal-safe, allocation-free calls. Built in
//! `launcher`; consumed by `main` (pid 1) and `program` (the program's
//! child).

use std::ffi::CString;

use super::{exec, net};
use crate::harden;
use crate::sys;

/// Everything pid 1 and the program's child need (no allocation after
/// the clone).
pub struct Prepared {
    pub steps: Vec<exec::Prepared>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// NULL-terminated pointers into `argv` and `envp`, for execve.
    pub argv_ptrs: Vec<*const libc::c_char>,
    pub envp_ptrs: Vec<*const libc::c_char>,
    /// Full paths to try in order (PATH search done by the launcher, run
    /// inside).
    pub candidates: Vec<CString>,
    pub cwd: CString,
    pub loopback: bool,
    pub harden: harden::Prepared,
    /// (jail path, contents, mode), written by pid 1 before hardening.
    pub files: Vec<(CString, Vec<u8>, u32)>,
    pub redirects: Vec<Stream>,
    /// "N-1" for /proc/sys/kernel/ns_last_pid: the program gets pid N.
    pub last_pid: Option<CString>,
    pub limits: Limits,
    /// The network steps pid 1 runs (routes, sockets, handoff).
    pub net: net::Prepared,
    /// The connect supervisor's filter (cluster networks), installed by
    /// pid 1 after its hardening.
    pub notify: Option<seccompiler::BpfProgram>,
}

impl Prepared {
    /// Fills the execve pointer arrays (any length: no fixed limit).
    pub fn with_pointers(mut self) -> Prepared {
        self.argv_ptrs = self.argv.iter().map(|a| a.as_ptr()).collect();
        self.argv_ptrs.push(std::ptr::null());
        self.envp_ptrs = self.envp.iter().map(|e| e.as_ptr()).collect();
        self.envp_ptrs.push(std::ptr::null());
        self
    }
}

/// One of the program's standard streams, opened by the program's child
/// inside the jail just before exec (the launcher's `Redirect`, prepared).
pub struct Stream {
    pub path: CString,
    pub flags: libc::c_int,
    /// The fds it becomes (0, 1, 2).
    pub fds: Vec<i32>,
}

/// The resource limits pid 1 sets itself before it starts the program
/// (`launcher::limits` chooses them and keeps the cgroup side).
#[derive(Debug, Default)]
pub struct Limits {
    /// cgroup mode: the jail was cloned without its cgroup namespace, and
    /// pid 1 makes it once it is in its cgroup (that is then its root).
    pub late_cgroupns: bool,
    /// (resource, value) pairs, soft = hard (rlimit mode).
    pub rlimits: Vec<(libc::__rlimit_resource_t, libc::rlim_t)>,
    /// CPUs the jail is pinned to (rlimit mode).
    pub affinity: Option<nix::sched::CpuSet>,
}

impl Limits {
    /// pid 1, before it starts the program: the rlimits and the CPU
    /// affinity. Allocation-free. Returns the errno of a failure.
    pub fn apply(&self) -> Result<(), i32> {
        for &(res, v) in &self.rlimits {
            let r = libc::rlimit {
                rlim_cur: v,
                rlim_max: v,
            };
            // SAFETY: setrlimit reads a local struct.
            if unsafe { libc::setrlimit(res, &r) } != 0 {
                return Err(sys::errno());
            }
        }
        if let Some(set) = &self.affinity {
            nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), set)
                .map_err(|e| e as i32)?;
        }
        Ok(())
    }
}
