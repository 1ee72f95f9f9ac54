//! The jail's pid 1 and the outer launcher share one job: wait for a child,
//! forward the signals other processes send, reap, and turn the child's end
//! into an exit status. Signals the terminal sends (Ctrl-C, Ctrl-\) already
//! reach the whole foreground process group, the program included, so they
//! are not forwarded twice; job control (Ctrl-Z) stops the program and the
//! launcher together, since no one calls setsid().

use std::sync::atomic::{AtomicI32, Ordering};

/// The pid signals are forwarded to (0: none yet).
static TARGET: AtomicI32 = AtomicI32::new(0);

/// Signals forwarded when another process sends them.
const FORWARDED: &[libc::c_int] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGWINCH,
];

/// The value the launcher queues with SIGTERM when `--timeout` fires: pid
/// 1 then sends SIGTERM to every process of the jail, not only the
/// program (a process inside that queues it only stops itself and its
/// fellows, which it could do anyway).
const TERMINATE_ALL: usize = 0x6a61_696c; // "jail"

extern "C" fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let code = unsafe { (*info).si_code };
    if code == libc::SI_QUEUE
        && sig == libc::SIGTERM
        // SAFETY: for SI_QUEUE the kernel filled si_value.
        && unsafe { (*info).si_value().sival_ptr } as usize == TERMINATE_ALL
    {
        // SAFETY: kill is async-signal-safe; -1 from a pid namespace's
        // init reaches every other process of the namespace.
        unsafe { libc::kill(-1, libc::SIGTERM) };
        return;
    }
    // si_code <= 0: sent by a process (kill, sigqueue, tkill). Signals the
    // kernel generates for the terminal (SI_KERNEL) reached the program too.
    let target = TARGET.load(Ordering::Relaxed);
    if code <= 0 && target > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(target, sig) };
    }
}

fn forwarded_set() -> libc::sigset_t {
    // SAFETY: building a sigset on the stack with the libc helpers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &sig in FORWARDED {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Holds the forwarded signals pending until `forward_signals_to` (or
/// `reset_signals`) runs: the launcher blocks them before its clone, so
/// neither it nor the jail's pid 1 (which inherits the mask) loses one
/// sent before there is a process to forward it to. (A pid namespace's
/// init drops a signal from outside that it has no handler for.)
pub fn block_forwarded() {
    let set = forwarded_set();
    // SAFETY: changing our own signal mask with a valid set.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Undoes `block_forwarded` when there is nothing to forward to.
pub fn unblock_forwarded() {
    let set = forwarded_set();
    // SAFETY: changing our own signal mask with a valid set.
    unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
}

/// Starts forwarding signals to `pid`, then lets pending ones through.
/// Allocation-free: callable after fork.
pub fn forward_signals_to(pid: libc::pid_t) {
    TARGET.store(pid, Ordering::Relaxed);
    for &sig in FORWARDED {
        // SAFETY: a zeroed sigaction with a valid handler and empty mask.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = forward as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    unblock_forwarded();
}

/// Asks the jail whose pid 1 is `pid` to send SIGTERM to every process
/// in it (the launcher, when `--timeout` fires). Before pid 1 has its
/// handlers the signal is ignored; SIGKILL after the grace period does not
/// depend on it.
pub fn terminate_all(pid: libc::pid_t) {
    let value = libc::sigval {
        sival_ptr: TERMINATE_ALL as *mut libc::c_void,
    };
    // SAFETY: sigqueue with a plain integer payload.
    unsafe { libc::sigqueue(pid, libc::SIGTERM, value) };
}

/// Restores default dispositions (for the program about to exec).
pub fn reset_signals() {
    for &sig in FORWARDED {
        // SAFETY: resetting a disposition to the default.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    // SAFETY: an empty mask on the stack.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// The shell convention: the exit code, or 128+N for death by signal N.
pub fn status_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        125
    }
}

/// Waits for `main`, reaping every other child on the way (pid 1 adopts
/// orphans), and returns its exit code. With `any`, reaps any child.
pub fn wait_for(main: libc::pid_t, any: bool) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes into a local int.
        let pid = unsafe { libc::waitpid(if any { -1 } else { main }, &mut status, 0) };
        if pid == main {
            return status_code(status);
        }
        if pid < 0 && crate::sys::errno() == libc::ECHILD {
            return 125;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_follow_the_shell() {
        // Encoded as the kernel does: exit code in bits 8..16, signal in 0..7.
        assert_eq!(status_code(3 << 8), 3);
        assert_eq!(status_code(0), 0);
        assert_eq!(status_code(libc::SIGKILL), 128 + 9);
        assert_eq!(status_code(libc::SIGTERM), 128 + 15);
    }
}
