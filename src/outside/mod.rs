//! Processes that live outside the jail, as the user: the quarantine
//! guard, the network helper and the Slurm chaperon. Each is started by
//! fork+exec of this same binary (`jail __outside ROLE`), because the
//! launcher must stay single-threaded until its clone and a helper may
//! then use threads of its own. The child's end of its `Channel` is fd 3;
//! its configuration arrives as the first message. Terminal signals are
//! ignored: a helper ends when the jail does, never on Ctrl-C.

pub mod channel;
pub mod chaperon;
pub mod connect;
pub mod guard;
pub mod net;
pub mod notice;
pub mod quarantine;

use std::ffi::CString;
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};

pub use channel::{Channel, ChannelError, Msg};

use crate::sys;

/// The hidden first argument that starts a process outside the jail.
pub const ARG: &str = "__outside";

/// The fd a helper finds its channel on.
const CHANNEL_FD: i32 = 3;

/// The processes outside the jail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Guard,
    Slurm,
    Net,
    Connect,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Guard => "guard",
            Role::Slurm => "slurm",
            Role::Net => "net",
            Role::Connect => "connect",
        }
    }

    fn from_name(s: &str) -> Option<Role> {
        [Role::Guard, Role::Slurm, Role::Net, Role::Connect]
            .into_iter()
            .find(|r| r.name() == s)
    }
}

/// A started process outside the jail and the launcher's end of its channel.
#[derive(Debug)]
pub struct Outside {
    pub pid: libc::pid_t,
    pub chan: Channel,
}

/// A process outside the jail that the launcher starts only when the
/// jail first needs it (the Slurm chaperon, the network helper of `--net
/// none`): a jail that never submits a job or looks up a name pays no
/// process for it. pid 1 makes the socket the jail would use and hands it
/// to the launcher over a channel made before the clone; the launcher
/// polls it (`launcher::wait`) and starts the process on its first event,
/// handing the socket on.
pub trait OnDemand {
    /// pid 1's end of the channel between them, given once: it goes to
    /// pid 1 through the clone, and the launcher closes its copy then.
    fn take_jail_end(&mut self) -> Option<Channel>;
    /// In pid 1, right after the clone: closes pid 1's copy of the
    /// launcher's end (pid 1 keeps only its own).
    fn close_launcher_end(&mut self);
    /// Once the program runs: takes what pid 1 handed over (without
    /// blocking: pid 1 sends it before the exec) and returns the fds whose
    /// readiness means "needed now".
    fn arm(&mut self) -> Vec<RawFd>;
    /// Starts the process now.
    fn start(&mut self);
    /// After pid 1 was reaped: ends the link and waits for the process as
    /// far as its role needs.
    fn finish(&mut self);
}

/// How a process outside the jail starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// fork+exec of this binary: a fresh process, free to use threads and
    /// to keep its memory small (the network helper relaying traffic, the
    /// Slurm chaperon).
    Exec,
    /// fork only: no exec and no dynamic loading on jail's start-up path
    /// (about a millisecond each), for a role that stays single-threaded
    /// and short (the guard, the network helper of `--net none`). Safe
    /// because the launcher is single-threaded when it forks, so the
    /// child may allocate.
    Fork,
}

/// Starts `role` by fork (+exec, see `Start`) of this binary. The caller
/// must be single-threaded. Everything the child needs is built before
/// the fork.
pub fn spawn(role: Role, how: Start) -> Result<Outside, ChannelError> {
    let exe = CString::new("/proc/self/exe").expect("no NUL");
    let argv0 = CString::new("jail").expect("no NUL");
    let arg = CString::new(ARG).expect("no NUL");
    let name = CString::new(role.name()).expect("no NUL");
    let argv = [
        argv0.as_ptr(),
        arg.as_ptr(),
        name.as_ptr(),
        std::ptr::null(),
    ];
    let (ours, theirs) = Channel::pair()?;
    let pid = sys::fork()?;
    if pid == 0 {
        // The child's copies: the launcher's end closed, its own moved to
        // CHANNEL_FD (move_fd closes the old number, so it is no longer
        // the Channel's to close).
        drop(ours);
        if sys::move_fd(theirs.into_raw_fd(), CHANNEL_FD).is_err() {
            sys::exit_now(127);
        }
        sys::ignore_terminal_signals();
        if how == Start::Fork {
            // Only its channel: an inherited copy of another channel's
            // end would hold back the EOF its peer waits for.
            sys::close_from(CHANNEL_FD + 1);
            // SAFETY: CHANNEL_FD is the end moved there just above, owned
            // by nothing else in this process.
            sys::exit_now(run(role, unsafe { Channel::from_raw_fd(CHANNEL_FD) }));
        }
        // SAFETY: execv with prepared NUL-terminated strings and a
        // NULL-terminated pointer array; environ is inherited.
        unsafe { libc::execv(exe.as_ptr(), argv.as_ptr()) };
        sys::exit_now(127);
    }
    drop(theirs);
    Ok(Outside { pid, chan: ours })
}

/// Entry point of `jail __outside ROLE`; returns the exit status.
pub fn main(args: &[String]) -> i32 {
    let Some(role) = args.first().and_then(|r| Role::from_name(r)) else {
        eprintln!("jail: `{ARG}` is internal to jail (a process outside the jail)");
        return crate::exit::EXIT_JAIL_ERROR;
    };
    // Run by hand, without the launcher's channel there: the same refusal
    // (and no fd taken over that is not a channel end).
    if !sys::is_socket(CHANNEL_FD) {
        eprintln!("jail: `{ARG}` is internal to jail (a process outside the jail)");
        return crate::exit::EXIT_JAIL_ERROR;
    }
    // SAFETY: `spawn` placed this process's end of its channel at
    // CHANNEL_FD before the exec (checked just above to be a socket);
    // nothing else here owns that fd.
    run(role, unsafe { Channel::from_raw_fd(CHANNEL_FD) })
}

fn run(role: Role, chan: Channel) -> i32 {
    match role {
        Role::Guard => guard::main(chan),
        Role::Slurm => chaperon::main(chan),
        Role::Net => net::main(chan),
        Role::Connect => connect::main(chan),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard_config() -> guard::Config {
        guard::Config {
            project: "/p".into(),
            quarantine: "/q".into(),
            protected: vec![],
            gitdirs: vec![],
            writable: vec!["/p".into()],
            since: (1, 2),
            persist: None,
            home_mounts: vec![],
            pending: None,
            kept: vec![],
        }
    }

    /// Runs `main` on one end after `msgs` were sent on the other (then
    /// closed), as the process would.
    fn run_after(main: fn(Channel) -> i32, msgs: &[Msg]) -> i32 {
        let (a, b) = Channel::pair().unwrap();
        for m in msgs {
            a.send(m, &[]).unwrap();
        }
        drop(a);
        main(b)
    }

    #[test]
    fn the_guard_refuses_an_unexpected_message_instead_of_succeeding() {
        // EOF before anything: the launcher gave up, nothing to check.
        assert_eq!(run_after(guard::main, &[]), 0);
        assert_eq!(
            run_after(guard::main, &[Msg::Guard(guard_config())]),
            0,
            "no jail started"
        );
        let code = run_after(guard::main, &[Msg::JailStarted { pid: 1 }]);
        assert_eq!(code, crate::exit::EXIT_JAIL_ERROR);
        let code = run_after(guard::main, &[Msg::Guard(guard_config()), Msg::Go]);
        assert_eq!(code, crate::exit::EXIT_JAIL_ERROR);
        let code = run_after(
            guard::main,
            &[Msg::Guard(guard_config()), Msg::Guard(guard_config())],
        );
        assert_eq!(code, crate::exit::EXIT_JAIL_ERROR);
    }

    #[test]
    fn the_chaperon_refuses_an_unexpected_message_instead_of_succeeding() {
        assert_eq!(run_after(chaperon::main, &[]), 0);
        let code = run_after(chaperon::main, &[Msg::SlurmListener]);
        assert_eq!(code, crate::exit::EXIT_JAIL_ERROR);
        let code = run_after(chaperon::main, &[Msg::SlurmSignal { sig: 2 }]);
        assert_eq!(code, crate::exit::EXIT_JAIL_ERROR);
    }
}
