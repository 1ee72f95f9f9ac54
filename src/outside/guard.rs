//! The quarantine guard: outside the jail, it waits until the jail's pid 1
//! and with it every process of the jail is gone, then moves away the
//! protected paths the program created (`sandbox::protect`). Being its own
//! process, it does so also when `jail` itself is killed with SIGKILL.
//!
//! When the jail is over: the kernel reports pid 1's exit (its pidfd turns
//! readable, or the pid disappears) only after every other process of the
//! jail's pid namespace has been killed and reaped, so nothing of the jail
//! can still rename files while the guard looks.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Channel, Msg};
use crate::sandbox::protect;
use crate::sys;

/// What the guard watches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub project: PathBuf,
    /// This run's quarantine directory (created only when needed).
    pub quarantine: PathBuf,
    pub protected: Vec<protect::Protected>,
}

/// Whether a guard is needed: some protected path could be created or
/// changed (one that is held by a mount cannot).
pub fn needed(protected: &[protect::Protected]) -> bool {
    protected.iter().any(|p| p.start != protect::Start::Held)
}

/// `jail __outside guard`.
pub fn main(chan: Channel) -> i32 {
    let config = match chan.recv() {
        Ok(Some((Msg::Guard(c), _))) => c,
        // The launcher died or gave up before the jail existed.
        _ => return 0,
    };
    let pidfd = match chan.recv() {
        Ok(Some((Msg::JailStarted { pid }, mut fds))) => (pid, fds.pop()),
        _ => return 0,
    };
    chan.close();
    wait_for_jail(pidfd.0, pidfd.1.as_ref());
    check(&config);
    0
}

fn wait_for_jail(pid: libc::pid_t, pidfd: Option<&std::os::fd::OwnedFd>) {
    use std::os::fd::AsRawFd;
    if let Some(fd) = pidfd {
        if sys::poll_in(fd.as_raw_fd(), -1).is_ok() {
            return;
        }
    }
    // No pidfds (Linux < 5.3): the pid stays (as a zombie) until pid 1
    // has reaped its whole namespace and been reaped itself.
    while sys::alive(pid) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn check(config: &Config) {
    let changed = protect::changed(&config.protected);
    if changed.is_empty() {
        return;
    }
    let project = &config.project;
    let rel = |p: &Path| p.strip_prefix(project).unwrap_or(p).display().to_string();
    let (moved, failed) = protect::quarantine(project, &changed, &config.quarantine);
    if !moved.is_empty() {
        let names: Vec<String> = moved.iter().map(|p| rel(p)).collect();
        eprintln!(
            "jail: moved {} (created in the jail; it could run code outside it) to {}",
            names.join(", "),
            config.quarantine.display()
        );
    }
    for (p, e) in failed {
        eprintln!(
            "jail: WARNING: {} was created in the jail and could run code outside it; not moved ({e}): inspect it before use",
            rel(&p)
        );
    }
}
