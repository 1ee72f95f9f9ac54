//! The jail's pid 1, after the launcher's clone: in the new namespaces
//! it waits for the launcher's "go" (the user is mapped), builds the
//! jail's filesystem (`exec`) and network (`net`), writes the run's files,
//! sets the limits, hardens itself, starts the program (`program`),
//! forwards signals and reaps, reports the processes left at the end, and
//! exits with the program's status (which ends every process left).
//!
//! Runs on a copy of the launcher's memory: only async-signal-safe,
//! allocation-free calls on what the launcher prepared (`prepared`). It
//! never returns (it ends in _exit), so no destructor runs at the end of
//! its scope; what it closes at a point it drops there.

use std::ffi::CString;

use super::prepared::Prepared;
use super::{exec, net, program};
use crate::harden;
use crate::outside::channel::{ToPid1, LEFTOVERS_NAMED};
use crate::outside::{self, Channel, Msg};
use crate::reap as init;
use crate::sys;
use exec::Stage;

/// The jail's pid 1. Never returns (so it drops nothing it is not told
/// to: it ends in _exit). `helper` and `chaperon`: the network helper's
/// and the chaperon's links, kept open for pid 1's whole life (their EOF
/// is the jail's end).
pub fn run(
    prep: &Prepared,
    chan: Channel,
    leftovers: Channel,
    chaperon: Option<Channel>,
    helper: Option<Channel>,
    connect: Option<Channel>,
) -> ! {
    let fail = |stage: Stage, index: u32, errno: i32| -> ! {
        report(&chan, stage, index, errno);
        sys::exit_now(125)
    };
    sys::die_with_parent(libc::SIGKILL);
    // EOF before "go": the launcher died or gave up (its death before
    // PDEATHSIG was set is caught here too).
    let mut buf = [0u8; 64];
    if chan.recv_small_as(&mut buf) != Ok(Some(ToPid1::Go)) {
        sys::exit_now(125);
    }
    if prep.limits.late_cgroupns {
        // Now inside its own cgroup: that becomes the root of its view.
        // SAFETY: unshare with a flag only. Without cgroup namespaces the
        // jail only sees more of the hierarchy (read-only).
        unsafe { libc::unshare(libc::CLONE_NEWCGROUP) };
    }
    if let Err((stage, index, errno)) = exec::build_root(&prep.steps) {
        fail(stage, index, errno);
    }
    if prep.loopback {
        if let Err(e) = exec::loopback_up() {
            fail(Stage::Loopback, 0, e);
        }
    }
    if let Some(h) = &helper {
        if let Err((index, errno)) = net::execute(&prep.net, h) {
            fail(Stage::Network, index, errno);
        }
    }
    // SAFETY: chdir on a prepared C string.
    if unsafe { libc::chdir(prep.cwd.as_ptr()) } != 0 {
        fail(Stage::Chdir, 0, sys::errno());
    }
    if let Some(c) = &chaperon {
        if let Err(e) = outside::chaperon::listen_in_jail(c) {
            fail(Stage::Slurm, 0, e);
        }
    }
    for (i, (path, content, mode)) in prep.files.iter().enumerate() {
        if let Err(e) = write_file(path, content, *mode) {
            fail(Stage::Files, i as u32, e);
        }
    }
    if let Err(errno) = prep.limits.apply() {
        fail(Stage::Limits, 0, errno);
    }
    if let Some(n) = &prep.last_pid {
        // While pid 1 still holds CAP_SYS_ADMIN in the user namespace that
        // owns its pid namespace, and before it forks anything more.
        if let Err(e) = sys::write_existing(c"/proc/sys/kernel/ns_last_pid", n.as_bytes()) {
            fail(Stage::Pid, 0, e);
        }
    }
    if let Err((part, errno)) = harden::apply(&prep.harden) {
        fail(Stage::Harden, part, errno);
    }
    if let (Some(c), Some(prog)) = (&connect, &prep.notify) {
        if let Err(errno) = connect_filter(prog, c) {
            fail(Stage::Harden, harden::Part::Notify as u32, errno);
        }
    }
    // Nothing in the jail may ptrace or read the memory of pid 1.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };

    let pid = match program::spawn(prep, &chan) {
        Ok(p) => p,
        Err(e) => fail(Stage::Fork, 0, e),
    };
    // pid 1 keeps no channel to the launcher.
    drop(chan);
    init::forward_signals_to(pid);
    let code = init::wait_for(pid, true);
    report_leftovers(leftovers);
    // Exiting pid 1 kills everything left in the jail.
    sys::exit_now(code)
}

/// Reports a setup failure to the launcher (allocation-free).
pub(super) fn report(chan: &Channel, stage: Stage, index: u32, errno: i32) {
    let _ = chan.send(
        &Msg::SetupFailed {
            stage,
            index,
            errno,
        },
        &[],
    );
}

/// pid 1, once the program has ended: tells the launcher which processes
/// are still running (they end with pid 1), and closes the channel.
/// Allocation-free.
fn report_leftovers(chan: Channel) {
    let mut total = 0u32;
    let mut pids = [0i32; LEFTOVERS_NAMED];
    let mut names = [[0u8; 16]; LEFTOVERS_NAMED];
    init::leftovers(|pid, comm| {
        let i = total as usize;
        if i < LEFTOVERS_NAMED {
            pids[i] = pid;
            names[i] = comm;
        }
        total = total.saturating_add(1);
    });
    if total > 0 {
        let _ = chan.send(&Msg::Leftovers { total, pids, names }, &[]);
    }
}

/// Writes a prepared file into the jail (pid 1, before hardening;
/// allocation-free). The file must not exist: nothing is overwritten.
fn write_file(path: &CString, content: &[u8], mode: u32) -> Result<(), i32> {
    // SAFETY: open on a prepared C string; the fd is closed below.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(sys::errno());
    }
    let r = sys::write_all(fd, content);
    sys::close(fd);
    r
}

/// pid 1, after its hardening (no_new_privs is set), under cluster
/// networks: installs `harden::notify`'s filter, so the connect
/// supervisor decides every connect and send from here on, and hands it
/// the listener. write() and recvmsg() are not stopped by the filter
/// (sendmsg is): pid 1 writes the fd's number and the supervisor takes the
/// fd itself (pidfd_getfd), then says it holds it. pid 1 keeps the
/// channel open for its whole life: its EOF ends the supervisor.
/// Allocation-free.
fn connect_filter(prog: &[seccompiler::sock_filter], c: &Channel) -> Result<(), i32> {
    let fd = harden::notify::install(prog)?;
    let mut buf = [0u8; 64];
    let ready = match c.write_small(&Msg::ConnectListener { fd }) {
        Ok(()) => c.recv_small_as::<outside::channel::FromSupervisor>(&mut buf),
        Err(e) => Err(e),
    };
    // Closed before any failure report: that report is a sendmsg, which
    // with no listener left fails (ENOSYS) rather than waiting for an
    // answer that never comes.
    sys::close(fd);
    match ready {
        Ok(Some(outside::channel::FromSupervisor::Ready)) => Ok(()),
        Err(e) => Err(e),
        Ok(_) => Err(libc::ECONNRESET),
    }
}
