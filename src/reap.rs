//! Shared by the launcher, the jail's pid 1 and the processes outside
//! (`wait_for`, `status_code`). The jail's pid 1 and the outer launcher
//! share one job: wait for a child, forward the signals other processes
//! send, reap, and turn the child's end into an exit status. Signals the terminal sends (Ctrl-C, Ctrl-\) already
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

/// pid 1, once the program has ended: every other live process of the
/// jail (its pid and comm, NUL-padded), from the jail's own /proc, in
/// pid order. Allocation-free.
pub fn leftovers(mut each: impl FnMut(i32, [u8; 16])) {
    // Every other process of the jail descends from pid 1 (orphans are
    // adopted by it): without a child, alive or unreaped, there is none,
    // and reading /proc (its whole root, generated) is saved.
    // SAFETY: siginfo_t is plain data, valid all zero.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes into a live siginfo_t; WNOWAIT reaps nothing.
    let rc = unsafe {
        libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc < 0 && crate::sys::errno() == libc::ECHILD {
        return;
    }
    // SAFETY: open of a constant path; closed below.
    let dir = unsafe {
        libc::open(
            c"/proc".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir < 0 {
        return;
    }
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: getdents64 fills at most `buf.len()` bytes of `buf`.
        let n = unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len()) };
        if n <= 0 {
            break;
        }
        let n = (n as usize).min(buf.len());
        let mut off = 0;
        // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name.
        while off + 19 < n {
            let reclen = usize::from(u16::from_ne_bytes([buf[off + 16], buf[off + 17]]));
            if reclen < 20 || off + reclen > n {
                break;
            }
            let name = &buf[off + 19..off + reclen];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
            if let Some(pid) = parse_pid(name).filter(|&p| p != 1) {
                if let Some(comm) = live_comm(pid) {
                    each(pid, comm);
                }
            }
            off += reclen;
        }
    }
    crate::sys::close(dir);
}

fn parse_pid(name: &[u8]) -> Option<i32> {
    if name.is_empty() || name.len() > 9 || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(name.iter().fold(0i32, |v, &d| v * 10 + i32::from(d - b'0')))
}

/// The comm of `pid` from /proc/PID/stat, unless it is a zombie (or
/// gone).
fn live_comm(pid: i32) -> Option<[u8; 16]> {
    // "/proc/" + up to 10 digits + "/stat" + NUL.
    let mut path = [0u8; 32];
    path[..6].copy_from_slice(b"/proc/");
    let mut digits = [0u8; 10];
    let mut k = 0;
    let mut v = pid;
    while v > 0 && k < digits.len() {
        digits[k] = b'0' + (v % 10) as u8;
        v /= 10;
        k += 1;
    }
    let mut at = 6;
    for &d in digits[..k].iter().rev() {
        path[at] = d;
        at += 1;
    }
    path[at..at + 5].copy_from_slice(b"/stat");
    // SAFETY: `path` is NUL-terminated (zeroed beyond what was written).
    let fd = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let mut stat = [0u8; 512];
    // SAFETY: read into a local buffer of its length.
    let n = unsafe { libc::read(fd, stat.as_mut_ptr().cast(), stat.len()) };
    crate::sys::close(fd);
    if n <= 0 {
        return None;
    }
    parse_stat(&stat[..n as usize])
}

/// `PID (COMM) STATE ...`: COMM (which may hold anything, `)` too) up to
/// the last `)`; None for a zombie or a dead process.
fn parse_stat(stat: &[u8]) -> Option<[u8; 16]> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let state = *stat.get(close + 2)?;
    if close <= open || matches!(state, b'Z' | b'X' | b'x') {
        return None;
    }
    let mut comm = [0u8; 16];
    let name = &stat[open + 1..close];
    let len = name.len().min(comm.len());
    comm[..len].copy_from_slice(&name[..len]);
    Some(comm)
}

/// The launcher's line for processes that outlived the program:
/// `ended 2 background processes: codex (pid 12), sleep (pid 14)`.
pub fn leftovers_line(total: u32, named: &[(i32, [u8; 16])]) -> Option<String> {
    if total == 0 {
        return None;
    }
    let names: Vec<String> = named
        .iter()
        .filter(|(pid, _)| *pid > 0)
        .map(|(pid, comm)| {
            let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
            let name = String::from_utf8_lossy(&comm[..len]);
            format!("{} (pid {pid})", crate::display::safe(&name))
        })
        .collect();
    let more = (total as usize).saturating_sub(names.len());
    let mut line = format!(
        "ended {total} background process{}: {}",
        if total == 1 { "" } else { "es" },
        names.join(", ")
    );
    if more > 0 {
        line.push_str(&format!(", and {more} more"));
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_give_the_name_of_live_processes() {
        let c = parse_stat(b"12 (codex) S 1 12 12 0 -1").unwrap();
        assert_eq!(&c[..6], b"codex\0");
        // A name with `) ` in it, as a program may set.
        let c = parse_stat(b"14 (a) Z (b) R 1 14").unwrap();
        assert_eq!(&c[..8], b"a) Z (b\0");
        assert!(parse_stat(b"15 (sleep) Z 1 15").is_none(), "zombie");
        assert!(parse_stat(b"garbage").is_none());
        assert_eq!(parse_pid(b"123"), Some(123));
        assert_eq!(parse_pid(b"self"), None);
        assert_eq!(parse_pid(b""), None);
    }

    #[test]
    fn leftover_lines_name_the_first_and_count_the_rest() {
        let name = |s: &str| {
            let mut c = [0u8; 16];
            c[..s.len()].copy_from_slice(s.as_bytes());
            c
        };
        assert_eq!(leftovers_line(0, &[]), None);
        assert_eq!(
            leftovers_line(2, &[(12, name("codex")), (14, name("sleep")), (0, [0; 16])]).unwrap(),
            "ended 2 background processes: codex (pid 12), sleep (pid 14)"
        );
        assert_eq!(
            leftovers_line(1, &[(7, name("x"))]).unwrap(),
            "ended 1 background process: x (pid 7)"
        );
        assert_eq!(
            leftovers_line(10, &[(7, name("x"))]).unwrap(),
            "ended 10 background processes: x (pid 7), and 9 more"
        );
        // A name is the program's to choose: no escape sequences through.
        let line = leftovers_line(1, &[(3, name("\x1b[2Jevil"))]).unwrap();
        assert!(!line.contains('\x1b'), "{line:?}");
    }

    #[test]
    fn status_codes_follow_the_shell() {
        // Encoded as the kernel does: exit code in bits 8..16, signal in 0..7.
        assert_eq!(status_code(3 << 8), 3);
        assert_eq!(status_code(0), 0);
        assert_eq!(status_code(libc::SIGKILL), 128 + 9);
        assert_eq!(status_code(libc::SIGTERM), 128 + 15);
    }
}
