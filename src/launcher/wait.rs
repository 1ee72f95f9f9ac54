//! The launcher's wait for the jail: until pid 1 ends (the timeout, if
//! any, stops it), starting each on-demand process outside the jail
//! (`outside::OnDemand`) when what it serves first turns readable.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::{init, limits};
use crate::outside::OnDemand;
use crate::sys;

/// Waits for pid 1 and reaps it. `deadline`: when to stop the jail, and
/// the grace between SIGTERM and SIGKILL.
pub fn jail(
    pid: libc::pid_t,
    deadline: Option<(Instant, Duration)>,
    lazy: &mut [&mut dyn OnDemand],
) -> limits::Ended {
    // (index into `lazy`, fd)
    let mut armed: Vec<(usize, RawFd)> = Vec::new();
    for (i, l) in lazy.iter_mut().enumerate() {
        armed.extend(l.arm().into_iter().map(|fd| (i, fd)));
    }
    let pidfd = if armed.is_empty() {
        None
    } else {
        sys::pidfd_open(pid).ok()
    };
    match pidfd {
        Some(pidfd) => {
            watch(pidfd, deadline, lazy, armed);
            sys::close(pidfd);
        }
        // Without pidfds (Linux < 5.3) the wait cannot watch both: start
        // everything at once.
        None => {
            let mut started: Vec<usize> = armed.iter().map(|(i, _)| *i).collect();
            started.dedup();
            for i in started {
                lazy[i].start();
            }
        }
    }
    match deadline {
        None => limits::Ended::Exited(init::wait_for(pid, false)),
        Some((at, grace)) => limits::wait(pid, at, grace),
    }
}

/// Polls pid 1's pidfd and the armed fds until pid 1 ends, the deadline
/// passes or nothing is left to start.
fn watch(
    pidfd: RawFd,
    deadline: Option<(Instant, Duration)>,
    lazy: &mut [&mut dyn OnDemand],
    mut armed: Vec<(usize, RawFd)>,
) {
    while !armed.is_empty() {
        let timeout = match deadline {
            None => -1,
            Some((at, _)) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                // Rounded up: never wake just before the deadline.
                left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
            }
        };
        let mut fds: Vec<libc::pollfd> = std::iter::once(pidfd)
            .chain(armed.iter().map(|(_, fd)| *fd))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: a live vector of pollfd of the length passed.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            // A forwarded signal: poll again (with the time left).
            if sys::errno() == libc::EINTR {
                continue;
            }
            return;
        }
        if fds[0].revents != 0 {
            return;
        }
        let ready: Vec<usize> = armed
            .iter()
            .zip(&fds[1..])
            .filter(|(_, p)| p.revents != 0)
            .map(|((i, _), _)| *i)
            .collect();
        for i in ready {
            if armed.iter().any(|(j, _)| *j == i) {
                lazy[i].start();
                armed.retain(|(j, _)| *j != i);
            }
        }
    }
}
