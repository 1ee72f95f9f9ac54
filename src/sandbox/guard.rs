//! The quarantine guard (see `protect`): a process outside the jail that
//! outlives even a SIGKILLed launcher and moves away protected paths the
//! program created, once the jail's pid 1 is gone.

use std::path::Path;

use super::{exec, pipe, plan, protect, SandboxError};

/// The quarantine guard: a process outside the jail that waits until the
/// jail's pid 1 is gone (EOF on a pipe only pid 1 holds), then moves away
/// protected paths the program created. Being separate, it also does so
/// when `jail` itself is killed with SIGKILL.
pub(super) struct Guard {
    pub(super) pid: libc::pid_t,
    /// The write end, handed to pid 1 by the clone, then closed here.
    pub(super) write: libc::c_int,
}

impl Guard {
    pub(super) fn spawn(
        plan: &plan::Plan,
        project: &Path,
        state: &Path,
    ) -> Result<Option<Guard>, SandboxError> {
        if plan
            .protected
            .iter()
            .all(|p| p.start == protect::Start::Held)
        {
            return Ok(None);
        }
        let (read, write) = pipe()?;
        let dest = protect::quarantine_dir(state, project);
        // SAFETY: fork of a single-threaded process (checked by run).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        if pid == 0 {
            // The guard allocates after fork: safe here because the parent
            // had a single thread, so no lock can be held by another one.
            // SAFETY: closing our copy of the write end; ignoring the
            // terminal's signals so Ctrl-C cannot skip the check.
            unsafe {
                libc::close(write);
                for s in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGTERM] {
                    libc::signal(s, libc::SIG_IGN);
                }
                let mut b = [0u8; 1];
                while libc::read(read, b.as_mut_ptr().cast(), 1) != 0
                    && exec::errno() == libc::EINTR
                {}
            }
            guard_check(&plan.protected, project, &dest);
            // SAFETY: no destructors or atexit handlers in a forked child.
            unsafe { libc::_exit(0) }
        }
        // SAFETY: the parent keeps only the write end, until the clone.
        unsafe { libc::close(read) };
        Ok(Some(Guard { pid, write }))
    }
}

fn guard_check(list: &[protect::Protected], project: &Path, dest: &Path) {
    let changed = protect::changed(list);
    if changed.is_empty() {
        return;
    }
    let rel = |p: &Path| p.strip_prefix(project).unwrap_or(p).display().to_string();
    let (moved, failed) = protect::quarantine(project, &changed, dest);
    if !moved.is_empty() {
        let names: Vec<String> = moved.iter().map(|p| rel(p)).collect();
        eprintln!(
            "jail: moved {} (created in the jail; it could run code outside it) to {}",
            names.join(", "),
            dest.display()
        );
    }
    for (p, e) in failed {
        eprintln!(
            "jail: WARNING: {} was created in the jail and could run code outside it; not moved ({e}): inspect it before use",
            rel(&p)
        );
    }
}
