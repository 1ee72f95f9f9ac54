//! The one typed channel between the launcher, the jail's pid 1 and the
//! processes outside the jail: a SOCK_SEQPACKET unix socket pair carrying
//! `Msg` values (serde, encoded with postcard) and, with any message,
//! file descriptors (SCM_RIGHTS). Sequenced packets keep message
//! boundaries, and EOF tells a peer that every holder of the other end is
//! gone, which is how processes outside learn that the jail ended.
//!
//! Small messages are encoded on the stack, so pid 1 may send them after
//! fork (no allocation); larger ones (configurations) are only sent by
//! the launcher and decoded by processes outside, which may allocate.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

use crate::sys;

/// Largest message a peer accepts (configurations included).
pub const MAX_MSG: usize = 128 * 1024;

/// Every message any link carries. Each variant says who sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    /// launcher → pid 1: the user namespace is mapped; build the jail.
    Go,
    /// pid 1 (or the program's child before exec) → launcher: setup failed
    /// at `stage` (step `index` of it) with `errno`.
    SetupFailed { stage: u32, index: u32, errno: i32 },
    /// launcher → guard: what to watch and where to quarantine.
    Guard(super::guard::Config),
    /// launcher → guard: the jail's pid 1 runs; its pidfd is attached
    /// when the kernel has pidfds.
    JailStarted { pid: i32 },
    /// launcher → Slurm chaperon: the policy and where to record jobs.
    Slurm(Box<super::chaperon::Config>),
    /// jail's pid 1 → Slurm chaperon: the listening socket the stubs
    /// connect to (attached), made inside the jail.
    SlurmListener,
    /// stub → chaperon: a Slurm command; stdin, stdout, stderr (and the
    /// batch script, when `script` says so) attached.
    SlurmRequest(Box<super::chaperon::Request>),
    /// stub → chaperon: the stub got this signal; pass it on.
    SlurmSignal { sig: i32 },
    /// chaperon → stub: the command ended with this status.
    SlurmExit { code: i32 },
    /// launcher → network helper: its rules.
    Net(super::net::Config),
    /// pid 1 → network helper: the jail's listening and DNS sockets are
    /// attached; `more`: another such message follows.
    NetSockets { more: bool },
    /// jail's pid 1 → launcher, once the program has ended: `total`
    /// processes are still running and end with pid 1; the first of
    /// them by pid and name (comm, NUL-padded; pid 0: none).
    Leftovers {
        total: u32,
        pids: [i32; LEFTOVERS_NAMED],
        names: [[u8; 16]; LEFTOVERS_NAMED],
    },
}

/// How many leftover processes pid 1 names (the rest are counted).
pub const LEFTOVERS_NAMED: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("cannot encode a message: {0}")]
    Encode(#[from] postcard::Error),
    #[error("channel: {}", crate::sys::errno_text(*.0))]
    Os(i32),
}

impl From<i32> for ChannelError {
    fn from(e: i32) -> Self {
        ChannelError::Os(e)
    }
}

/// One end of a channel. Not closed on drop: after fork the jail child
/// must not run destructors, so every end is closed explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Channel(pub RawFd);

impl Channel {
    /// A connected pair of ends, both close-on-exec.
    pub fn pair() -> Result<(Channel, Channel), ChannelError> {
        let (a, b) = sys::seqpacket_pair()?;
        Ok((Channel(a), Channel(b)))
    }

    /// Sends `msg` with `fds` attached. Messages up to 256 bytes are
    /// encoded on the stack (allocation-free: pid 1 may call this).
    pub fn send(&self, msg: &Msg, fds: &[RawFd]) -> Result<(), ChannelError> {
        let mut stack = [0u8; 256];
        match postcard::to_slice(msg, &mut stack) {
            Ok(bytes) => Ok(sys::send_with_fds(self.0, bytes, fds)?),
            Err(postcard::Error::SerializeBufferFull) => {
                let bytes = postcard::to_allocvec(msg)?;
                if bytes.len() > MAX_MSG {
                    return Err(ChannelError::Os(libc::EMSGSIZE));
                }
                Ok(sys::send_with_fds(self.0, &bytes, fds)?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Receives one small message into `buf` without allocating (pid 1,
    /// and the launcher reading the setup report). Ok(None) is EOF; fds
    /// sent with it are closed; a message that does not decode is EPROTO.
    pub fn recv_small(&self, buf: &mut [u8]) -> Result<Option<Msg>, i32> {
        let mut fds = [-1; sys::MAX_FDS];
        let (n, k) = sys::recv_with_fds(self.0, buf, &mut fds)?;
        for &fd in &fds[..k] {
            sys::close(fd);
        }
        if n == 0 {
            return Ok(None);
        }
        postcard::from_bytes(&buf[..n])
            .map(Some)
            .map_err(|_| libc::EPROTO)
    }

    /// Receives one message and the fds sent with it (allocates; for
    /// the launcher and processes outside). Ok(None) is EOF.
    pub fn recv(&self) -> Result<Option<(Msg, Vec<OwnedFd>)>, ChannelError> {
        let mut buf = vec![0u8; MAX_MSG];
        let mut raw = [-1; sys::MAX_FDS];
        let (n, k) = sys::recv_with_fds(self.0, &mut buf, &mut raw)?;
        // SAFETY: the kernel just installed these fds for us; each is
        // owned by exactly one OwnedFd from here on.
        let fds = raw[..k]
            .iter()
            .map(|&fd| unsafe { OwnedFd::from_raw_fd(fd) })
            .collect();
        if n == 0 {
            return Ok(None);
        }
        Ok(Some((postcard::from_bytes(&buf[..n])?, fds)))
    }

    pub fn close(self) {
        sys::close(self.0);
    }

    /// Closes it and leaves a closed handle in its place (a channel kept
    /// in a struct that is closed before the struct goes).
    pub fn close_in_place(&mut self) {
        sys::close(self.0);
        self.0 = -1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_fds_round_trip_and_eof_follows_close() {
        let (a, b) = Channel::pair().unwrap();
        let (r, w) = sys::pipe().unwrap();
        a.send(
            &Msg::SetupFailed {
                stage: 3,
                index: 7,
                errno: libc::ENOENT,
            },
            &[r],
        )
        .unwrap();
        sys::close(r);
        let (m, fds) = b.recv().unwrap().unwrap();
        assert_eq!(
            m,
            Msg::SetupFailed {
                stage: 3,
                index: 7,
                errno: libc::ENOENT
            }
        );
        assert_eq!(fds.len(), 1);
        a.send(&Msg::Go, &[]).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(b.recv_small(&mut buf), Ok(Some(Msg::Go)));
        a.close();
        assert_eq!(b.recv_small(&mut buf), Ok(None));
        b.close();
        sys::close(w);
    }

    #[test]
    fn the_leftover_report_fits_a_stack_message() {
        let msg = Msg::Leftovers {
            total: u32::MAX,
            pids: [i32::MAX; LEFTOVERS_NAMED],
            names: [[0xff; 16]; LEFTOVERS_NAMED],
        };
        let mut stack = [0u8; 256];
        assert!(postcard::to_slice(&msg, &mut stack).is_ok());
    }

    #[test]
    fn large_messages_are_sent_whole() {
        let (a, b) = Channel::pair().unwrap();
        let cfg = super::super::guard::Config {
            project: "/p".into(),
            quarantine: "/q".into(),
            protected: (0..500)
                .map(|i| crate::plan::protect::Protected {
                    path: format!("/p/f{i}").into(),
                    start: crate::plan::protect::Start::Absent,
                    root: "/p".into(),
                    gitdir: None,
                })
                .collect(),
            gitdirs: vec!["/p/.git".into()],
            writable: vec!["/p".into()],
            since: (1, 2),
            persist: None,
            home_mounts: vec![],
            pending: None,
        };
        a.send(&Msg::Guard(cfg.clone()), &[]).unwrap();
        let (m, _) = b.recv().unwrap().unwrap();
        assert_eq!(m, Msg::Guard(cfg));
        a.close();
        b.close();
    }
}
