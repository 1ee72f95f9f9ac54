//! The one typed channel between the launcher, the jail's pid 1 and the
//! processes outside the jail: a SOCK_SEQPACKET unix socket pair carrying
//! `Msg` values (serde, encoded with postcard) and, with any message,
//! file descriptors (SCM_RIGHTS). Sequenced packets keep message
//! boundaries, and EOF tells a peer that every holder of the other end is
//! gone, which is how processes outside learn that the jail ended.
//!
//! Every link (a pair of processes, one channel) has its own message type
//! (`ToPid1`, `SetupReport`, `ToGuard`, ...): the typed half of `Msg`
//! that link carries. A receiver takes only its link's type (`recv_as`,
//! `recv_small_as`), so a message the link does not carry is an error
//! (`ChannelError::Unexpected`, EPROTO allocation-free) that the receiver
//! fails closed on, never one it skips. On the wire every link shares
//! `Msg`, whose variant tags are unique, so a message sent on the wrong
//! link is recognised as such rather than read as another type.
//!
//! Small messages are encoded on the stack, so pid 1 may send them after
//! fork (no allocation); larger ones (configurations) are only sent by
//! the launcher and decoded by processes outside, which may allocate.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};

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
    SetupFailed {
        stage: Stage,
        index: u32,
        errno: i32,
    },
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
    /// launcher → connect supervisor: its rules.
    Connect(super::connect::Config),
    /// launcher → connect supervisor: the jail's pid 1 (its pidfd
    /// attached), whose fd the listener is taken from.
    ConnectJail { pid: i32 },
    /// jail's pid 1 → connect supervisor: the seccomp listener is its fd
    /// `fd`. Written with write(), not sent with SCM_RIGHTS: sendmsg is
    /// one of the syscalls the new filter stops, and only the supervisor
    /// could answer it.
    ConnectListener { fd: i32 },
    /// connect supervisor → jail's pid 1: it holds the listener.
    ConnectReady,
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

/// Stages of the jail's setup (pid 1, the program's child), reported to
/// the launcher on failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    Private,
    Stage,
    Pivot1,
    Step,
    Pivot2,
    Loopback,
    Chdir,
    Harden,
    Fork,
    Exec,
    Slurm,
    Files,
    Stdio,
    Limits,
    /// The jail's network (routes, sockets, handoff to the helper).
    Network,
    /// The program's pid (a Slurm step's task: ns_last_pid).
    Pid,
}

impl Msg {
    /// The variant's name, for errors.
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Go => "Go",
            Msg::SetupFailed { .. } => "SetupFailed",
            Msg::Guard(_) => "Guard",
            Msg::JailStarted { .. } => "JailStarted",
            Msg::Slurm(_) => "Slurm",
            Msg::SlurmListener => "SlurmListener",
            Msg::SlurmRequest(_) => "SlurmRequest",
            Msg::SlurmSignal { .. } => "SlurmSignal",
            Msg::SlurmExit { .. } => "SlurmExit",
            Msg::Net(_) => "Net",
            Msg::NetSockets { .. } => "NetSockets",
            Msg::Leftovers { .. } => "Leftovers",
            Msg::Connect(_) => "Connect",
            Msg::ConnectJail { .. } => "ConnectJail",
            Msg::ConnectListener { .. } => "ConnectListener",
            Msg::ConnectReady => "ConnectReady",
        }
    }
}

/// The message type of one link: the part of `Msg` it carries.
pub trait Link: TryFrom<Msg, Error = Msg> {
    /// The link, for errors ("launcher → guard").
    const NAME: &'static str;
}

/// Declares a link's message type and its conversion from `Msg`; any
/// other `Msg` is handed back as the error.
macro_rules! link {
    ($(#[$m:meta])* $name:ident ($label:literal) { $($(#[$vm:meta])* $v:ident $(($($t:ty),*))? $({ $($f:ident: $ft:ty),* })? = $msg:pat => $make:expr),+ $(,)? }) => {
        $(#[$m])*
        // Received once per message and taken apart at once, as `Msg`.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, PartialEq)]
        pub enum $name {
            $($(#[$vm])* $v $(($($t),*))? $({ $($f: $ft),* })?),+
        }
        impl TryFrom<Msg> for $name {
            type Error = Msg;
            fn try_from(m: Msg) -> Result<Self, Msg> {
                #[allow(unused_imports)]
                use $name::*;
                match m {
                    $($msg => Ok($make),)+
                    other => Err(other),
                }
            }
        }
        impl Link for $name {
            const NAME: &'static str = $label;
        }
    };
}

link! {
    /// launcher → pid 1, on the setup channel.
    ToPid1 ("launcher → pid 1") { Go = Msg::Go => Go }
}
link! {
    /// pid 1 (or the program's child) → launcher, on the setup channel.
    SetupReport ("pid 1 → launcher (setup)") {
        Failed { stage: Stage, index: u32, errno: i32 } =
            Msg::SetupFailed { stage, index, errno } => Failed { stage, index, errno },
    }
}
link! {
    /// pid 1 → launcher, once the program ended.
    LeftoversReport ("pid 1 → launcher (leftovers)") {
        Leftovers {
            total: u32,
            pids: [i32; LEFTOVERS_NAMED],
            names: [[u8; 16]; LEFTOVERS_NAMED]
        } = Msg::Leftovers { total, pids, names } => Leftovers { total, pids, names },
    }
}
link! {
    /// pid 1 → launcher: the stubs' listening socket (attached), for the
    /// chaperon the launcher starts on demand.
    SlurmHandoff ("pid 1 → launcher (slurm)") { Listener = Msg::SlurmListener => Listener }
}
link! {
    /// pid 1 → network helper (or → launcher, for a helper started on
    /// demand): the jail's sockets (attached).
    NetHandoff ("pid 1 → network helper") {
        Sockets { more: bool } = Msg::NetSockets { more } => Sockets { more },
    }
}
link! {
    /// launcher → guard.
    ToGuard ("launcher → guard") {
        Config(super::guard::Config) = Msg::Guard(c) => Config(c),
        JailStarted { pid: i32 } = Msg::JailStarted { pid } => JailStarted { pid },
    }
}
link! {
    /// launcher → Slurm chaperon.
    ToChaperon ("launcher → chaperon") {
        Config(Box<super::chaperon::Config>) = Msg::Slurm(c) => Config(c),
        Listener = Msg::SlurmListener => Listener,
    }
}
link! {
    /// stub → chaperon.
    FromStub ("stub → chaperon") {
        Request(Box<super::chaperon::Request>) = Msg::SlurmRequest(r) => Request(r),
        Signal { sig: i32 } = Msg::SlurmSignal { sig } => Signal { sig },
    }
}
link! {
    /// chaperon → stub.
    ToStub ("chaperon → stub") { Exit { code: i32 } = Msg::SlurmExit { code } => Exit { code } }
}
link! {
    /// launcher → network helper (pid 1's sockets come as `NetHandoff`).
    ToHelper ("launcher → network helper") {
        Config(super::net::Config) = Msg::Net(c) => Config(c),
        Sockets { more: bool } = Msg::NetSockets { more } => Sockets { more },
    }
}

link! {
    /// launcher → connect supervisor (its rules), then jail's pid 1 →
    /// connect supervisor (the seccomp listener), on one channel.
    ToSupervisor ("→ connect supervisor") {
        Config(super::connect::Config) = Msg::Connect(c) => Config(c),
        Jail { pid: i32 } = Msg::ConnectJail { pid } => Jail { pid },
        Listener { fd: i32 } = Msg::ConnectListener { fd } => Listener { fd },
    }
}
link! {
    /// connect supervisor → jail's pid 1.
    FromSupervisor ("connect supervisor → pid 1") { Ready = Msg::ConnectReady => Ready }
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("unexpected message {got} on the {link} link")]
    Unexpected {
        link: &'static str,
        got: &'static str,
    },
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

/// One end of a channel. It owns its fd and closes it when dropped:
/// send and receive through `&Channel`, move it to hand it on, and
/// `drop` it where it must be closed at that point (EOF for the peer).
/// Not `Clone`: each end is closed exactly once, by its owner. After
/// fork each process owns its own copy of the fd table, so parent and
/// child each drop (close) their own copy; a child that ends in `_exit`
/// never runs destructors, and one that must hand an end past its exec
/// says so (`into_raw_fd`).
#[derive(Debug)]
pub struct Channel(OwnedFd);

impl Channel {
    /// A connected pair of ends, both close-on-exec.
    pub fn pair() -> Result<(Channel, Channel), ChannelError> {
        let (a, b) = sys::seqpacket_pair()?;
        // SAFETY: socketpair just made both fds; each is owned by exactly
        // one Channel from here on.
        Ok(unsafe { (Channel::from_raw_fd(a), Channel::from_raw_fd(b)) })
    }

    /// Sends `msg` with `fds` attached. Messages up to 256 bytes are
    /// encoded on the stack (allocation-free: pid 1 may call this).
    pub fn send(&self, msg: &Msg, fds: &[RawFd]) -> Result<(), ChannelError> {
        let mut stack = [0u8; 256];
        match postcard::to_slice(msg, &mut stack) {
            Ok(bytes) => Ok(sys::send_with_fds(self.as_raw_fd(), bytes, fds)?),
            Err(postcard::Error::SerializeBufferFull) => {
                let bytes = postcard::to_allocvec(msg)?;
                if bytes.len() > MAX_MSG {
                    return Err(ChannelError::Os(libc::EMSGSIZE));
                }
                Ok(sys::send_with_fds(self.as_raw_fd(), &bytes, fds)?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sends `msg` with write() (no fds), encoded on the stack: for a
    /// process whose sendmsg is stopped by a seccomp filter (pid 1 handing
    /// over the connect supervisor's listener). Allocation-free.
    pub fn write_small(&self, msg: &Msg) -> Result<(), i32> {
        let mut stack = [0u8; 256];
        let bytes = postcard::to_slice(msg, &mut stack).map_err(|_| libc::EMSGSIZE)?;
        sys::write_all(self.0.as_raw_fd(), bytes)
    }

    /// Receives one small message into `buf` without allocating (pid 1,
    /// and the launcher reading the setup report). Ok(None) is EOF; fds
    /// sent with it are closed; a message that does not decode is EPROTO.
    pub fn recv_small(&self, buf: &mut [u8]) -> Result<Option<Msg>, i32> {
        let mut fds = [-1; sys::MAX_FDS];
        let (n, k) = sys::recv_with_fds(self.as_raw_fd(), buf, &mut fds)?;
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
        // A buffer of the message's size, not of MAX_MSG: a 128 KiB
        // allocation makes malloc first merge its free chunks, writing to
        // heap pages that the processes just forked (guard, pid 1) share
        // copy-on-write, so each such page is copied (the launcher's
        // reads after the clone cost ~0.1 ms that way).
        let len = sys::peek_len(self.0.as_raw_fd())?;
        let mut buf = vec![0u8; len.clamp(1, MAX_MSG)];
        let mut raw = [-1; sys::MAX_FDS];
        let (n, k) = sys::recv_with_fds(self.as_raw_fd(), &mut buf, &mut raw)?;
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

    /// Receives one message of link `L` and the fds sent with it
    /// (allocates). Ok(None) is EOF; any other message is `Unexpected`.
    pub fn recv_as<L: Link>(&self) -> Result<Option<(L, Vec<OwnedFd>)>, ChannelError> {
        match self.recv()? {
            None => Ok(None),
            Some((m, fds)) => match L::try_from(m) {
                Ok(l) => Ok(Some((l, fds))),
                Err(other) => Err(ChannelError::Unexpected {
                    link: L::NAME,
                    got: other.name(),
                }),
            },
        }
    }

    /// `recv_small` for link `L`, allocation-free: a message the link
    /// does not carry is EPROTO, as one that does not decode.
    pub fn recv_small_as<L: Link>(&self, buf: &mut [u8]) -> Result<Option<L>, i32> {
        match self.recv_small(buf)? {
            None => Ok(None),
            Some(m) => L::try_from(m).map(Some).map_err(|_| libc::EPROTO),
        }
    }
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl FromRawFd for Channel {
    /// Takes ownership of `fd`, a SOCK_SEQPACKET unix socket end (an fd
    /// inherited at a fixed number, a connected stub's socket).
    ///
    /// # Safety
    /// `fd` must be open and owned by nothing else in this process: the
    /// channel closes it when dropped.
    unsafe fn from_raw_fd(fd: RawFd) -> Channel {
        // SAFETY: the caller's guarantee, passed on.
        Channel(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

impl IntoRawFd for Channel {
    fn into_raw_fd(self) -> RawFd {
        self.0.into_raw_fd()
    }
}

impl From<OwnedFd> for Channel {
    fn from(fd: OwnedFd) -> Channel {
        Channel(fd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_fds_round_trip_and_eof_follows_drop() {
        let (a, b) = Channel::pair().unwrap();
        let (r, w) = sys::pipe().unwrap();
        a.send(
            &Msg::SetupFailed {
                stage: Stage::Pivot1,
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
                stage: Stage::Pivot1,
                index: 7,
                errno: libc::ENOENT
            }
        );
        assert_eq!(fds.len(), 1);
        a.send(&Msg::Go, &[]).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(b.recv_small(&mut buf), Ok(Some(Msg::Go)));
        // Dropping the only other end is EOF.
        drop(a);
        assert_eq!(b.recv_small(&mut buf), Ok(None));
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

    /// Sends `ok` then `wrong` over a fresh pair: link `L` takes the
    /// first and refuses the second, allocating or not.
    fn takes_only_its_own<L: Link + std::fmt::Debug>(ok: Msg, wrong: Msg) {
        let (a, b) = Channel::pair().unwrap();
        a.send(&ok, &[]).unwrap();
        assert!(matches!(b.recv_as::<L>(), Ok(Some(_))), "{}", L::NAME);
        a.send(&wrong, &[]).unwrap();
        match b.recv_as::<L>() {
            Err(ChannelError::Unexpected { link, got }) => {
                assert_eq!((link, got), (L::NAME, wrong.name()));
            }
            other => panic!("{}: {other:?}", L::NAME),
        }
        a.send(&wrong, &[]).unwrap();
        let mut buf = [0u8; 256];
        assert_eq!(
            b.recv_small_as::<L>(&mut buf).map(|_| ()),
            Err(libc::EPROTO),
            "{}",
            L::NAME
        );
        drop(a);
        assert!(matches!(b.recv_as::<L>(), Ok(None)));
    }

    #[test]
    fn an_unexpected_message_on_each_link_is_an_error() {
        let failed = Msg::SetupFailed {
            stage: Stage::Network,
            index: 1,
            errno: libc::EPERM,
        };
        let leftovers = Msg::Leftovers {
            total: 1,
            pids: [0; LEFTOVERS_NAMED],
            names: [[0; 16]; LEFTOVERS_NAMED],
        };
        let sockets = || Msg::NetSockets { more: false };
        takes_only_its_own::<ToPid1>(Msg::Go, failed.clone());
        takes_only_its_own::<SetupReport>(failed.clone(), Msg::Go);
        takes_only_its_own::<LeftoversReport>(leftovers.clone(), failed.clone());
        takes_only_its_own::<SlurmHandoff>(Msg::SlurmListener, sockets());
        takes_only_its_own::<NetHandoff>(sockets(), Msg::SlurmListener);
        takes_only_its_own::<ToGuard>(Msg::JailStarted { pid: 1 }, Msg::Go);
        takes_only_its_own::<ToChaperon>(Msg::SlurmListener, Msg::SlurmSignal { sig: 2 });
        takes_only_its_own::<FromStub>(Msg::SlurmSignal { sig: 2 }, Msg::SlurmExit { code: 0 });
        takes_only_its_own::<ToStub>(Msg::SlurmExit { code: 0 }, Msg::SlurmSignal { sig: 2 });
        takes_only_its_own::<ToHelper>(sockets(), leftovers);
    }

    #[test]
    fn the_setup_stage_travels_as_itself() {
        let (a, b) = Channel::pair().unwrap();
        let mut buf = [0u8; 64];
        for stage in [Stage::Private, Stage::Step, Stage::Exec, Stage::Network] {
            let m = Msg::SetupFailed {
                stage,
                index: 2,
                errno: libc::ENOENT,
            };
            a.send(&m, &[]).unwrap();
            assert_eq!(
                b.recv_small_as::<SetupReport>(&mut buf),
                Ok(Some(SetupReport::Failed {
                    stage,
                    index: 2,
                    errno: libc::ENOENT
                }))
            );
        }
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
            kept: vec![],
        };
        a.send(&Msg::Guard(cfg.clone()), &[]).unwrap();
        let (m, _) = b.recv().unwrap().unwrap();
        assert_eq!(m, Msg::Guard(cfg));
    }
}
