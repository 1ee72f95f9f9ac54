//! The connect supervisor (`jail __outside connect`): outside the jail,
//! as the user, for a Slurm task under `slurm_job_network = "cluster"`.
//! The task runs in its node's network namespace; its jail's pid 1
//! installs `harden::notify`'s filter, whose listener comes here, so every
//! `connect`, `sendto`, `sendmsg` and `sendmmsg` of the jail waits for a
//! decision (docs/network.md, "Jobs on compute nodes").
//!
//! The rule (`rules`): inet destinations are the job's own nodes and the
//! site's cluster networks; loopback and everything else are refused with
//! EACCES and a one-line notice on stderr (the job's error output).
//!
//! Never CONTINUE (let the kernel run the syscall as asked) what a racing
//! thread could change after the check: the sockaddr and the message are
//! in the program's memory, and even the fd number can be made to name
//! another socket (dup2) between the check and the kernel's run. So the
//! supervisor performs every supervised syscall itself, on its duplicate
//! of the socket (pidfd_getfd: the same open file, options and
//! O_NONBLOCK included), with its own copy of the address and data, and
//! answers with the result. The one exception is `sendto` with a NULL
//! destination: the pointer is a register, not memory, and without an
//! address no socket can send anywhere it is not connected to already
//! (connections are made here).
//!
//! - inet: the decision above; control messages are refused (EPERM): some
//!   route packets (IP_RETOPTS, routing headers).
//! - unix: a pathname is resolved in the jail's own view (its root or
//!   cwd, `openat2` with RESOLVE_IN_ROOT / RESOLVE_BENEATH) and reached
//!   through /proc/self/fd; abstract names are refused (EPERM), because a
//!   connect from outside would step around the jail's Landlock scoping;
//!   SCM_RIGHTS are duplicated from the task, other control messages
//!   refused.
//! - netlink: performed as asked (its addresses name the kernel or
//!   processes, not hosts).
//! - any other family: EPERM (the filter already refuses creating them).
//!
//! Each decision runs on a thread of its own, so one slow connect never
//! holds up the rest. If this process dies the listener closes and the
//! supervised syscalls fail (ENOSYS): closed, not open. It ends when the
//! jail's pid 1 is gone (EOF on its link).

pub mod rules;

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::channel::{Channel, ToSupervisor};
use crate::exit::EXIT_JAIL_ERROR;
use crate::sys;

pub use rules::Rules;

/// launcher → supervisor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub rules: Rules,
}

/// Most bytes of data one supervised send carries (a stream socket's
/// send is then short, as the kernel may make it; a datagram that large
/// is EMSGSIZE).
const MAX_DATA: usize = 256 * 1024;
/// Most bytes of control messages (the kernel's optmem_max is smaller).
const MAX_CONTROL: usize = 64 * 1024;
/// The kernel's UIO_MAXIOV: more iovecs or messages are an error (or, for
/// sendmmsg, cut there).
const MAX_IOV: usize = 1024;
/// sizeof(struct sockaddr_storage).
const MAX_ADDR: usize = 128;

/// Starts the supervisor (fork+exec) and sends it its rules. The caller
/// passes `Outside::chan` to the jail's pid 1, which sends the listener.
pub fn start(config: &Config) -> Result<super::Outside, super::ChannelError> {
    let s = super::spawn(super::Role::Connect, super::Start::Exec)?;
    if let Err(e) = s.chan.send(&super::Msg::Connect(config.clone()), &[]) {
        drop(s.chan);
        return Err(e);
    }
    Ok(s)
}

/// Entry point of `jail __outside connect`.
pub fn main(chan: Channel) -> i32 {
    let config = match chan.recv_as::<ToSupervisor>() {
        Ok(Some((ToSupervisor::Config(c), _))) => c,
        Ok(None) => return 0,
        Ok(Some((other, _))) => {
            eprintln!("jail: connect supervisor: expected its rules, got {other:?}");
            return EXIT_JAIL_ERROR;
        }
        Err(e) => {
            eprintln!("jail: connect supervisor: {e}");
            return EXIT_JAIL_ERROR;
        }
    };
    let pidfd = match chan.recv_as::<ToSupervisor>() {
        Ok(Some((ToSupervisor::Jail { .. }, mut fds))) if fds.len() == 1 => fds.remove(0),
        // The jail did not start: nothing to supervise.
        Ok(None) => return 0,
        Ok(Some((other, fds))) => {
            eprintln!(
                "jail: connect supervisor: expected the jail's pid 1, got {other:?} with {} fds",
                fds.len()
            );
            return EXIT_JAIL_ERROR;
        }
        Err(e) => {
            eprintln!("jail: connect supervisor: {e}");
            return EXIT_JAIL_ERROR;
        }
    };
    let fd = match chan.recv_as::<ToSupervisor>() {
        Ok(Some((ToSupervisor::Listener { fd }, fds))) if fds.is_empty() => fd,
        // pid 1 ended before hardening: nothing to supervise.
        Ok(None) => return 0,
        Ok(Some((other, fds))) => {
            eprintln!(
                "jail: connect supervisor: expected the listener, got {other:?} with {} fds",
                fds.len()
            );
            return EXIT_JAIL_ERROR;
        }
        Err(e) => {
            eprintln!("jail: connect supervisor: {e}");
            return EXIT_JAIL_ERROR;
        }
    };
    // SAFETY: pidfd_getfd takes integers; the new fd is ours.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if r < 0 {
        // pid 1 waits for "ready" and fails at EOF instead.
        eprintln!(
            "jail: connect supervisor: cannot take the jail's seccomp listener: {}",
            sys::errno_text(sys::errno())
        );
        return EXIT_JAIL_ERROR;
    }
    // SAFETY: the kernel just gave us this fd; it is owned here only.
    let listener = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r as RawFd) };
    drop(pidfd);
    if let Err(e) = chan.send(&super::Msg::ConnectReady, &[]) {
        eprintln!("jail: connect supervisor: {e}");
        return EXIT_JAIL_ERROR;
    }
    serve(Arc::new(config.rules), listener, chan)
}

/// The loop: one notification at a time from the listener, until pid 1
/// is gone or the listener has no more tasks.
fn serve(rules: Arc<Rules>, listener: OwnedFd, chan: Channel) -> i32 {
    let listener = Arc::new(listener);
    loop {
        let mut fds = [
            libc::pollfd {
                fd: listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: chan.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if let Err(e) = sys::poll(&mut fds, -1) {
            eprintln!("jail: connect supervisor: poll: {}", sys::errno_text(e));
            return EXIT_JAIL_ERROR;
        }
        if fds[1].revents != 0 {
            // EOF (pid 1 is gone), or a message this link never carries
            // after the listener: either way the end (fail closed).
            return 0;
        }
        if fds[0].revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            return 0;
        }
        if fds[0].revents & libc::POLLIN == 0 {
            continue;
        }
        let Some(n) = recv(listener.as_raw_fd()) else {
            continue;
        };
        // The cheap safe case answers at once.
        if n.data.nr == libc::SYS_sendto as i32 && n.data.args[4] == 0 {
            respond(listener.as_raw_fd(), n.id, Answer::Continue);
            continue;
        }
        let (l, r) = (Arc::clone(&listener), Arc::clone(&rules));
        let spawned = std::thread::Builder::new()
            .name("connect".into())
            .spawn(move || {
                let answer = handle(l.as_raw_fd(), &n, &r);
                respond(l.as_raw_fd(), n.id, answer);
            });
        if spawned.is_err() {
            respond(listener.as_raw_fd(), n.id, Answer::Error(libc::EAGAIN));
        }
    }
}

/// One stopped syscall (the kernel's struct seccomp_notif).
fn recv(listener: RawFd) -> Option<libc::seccomp_notif> {
    // SAFETY: an all-zero seccomp_notif is valid (and the kernel wants it
    // zeroed).
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl writes one seccomp_notif into `n`.
    let rc = unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_RECV as _, &mut n) };
    // EINTR, or ENOENT: the task was gone before we read it.
    (rc == 0).then_some(n)
}

/// What the stopped syscall returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// This value (performed here).
    Value(i64),
    /// -1 with this errno.
    Error(i32),
    /// Let the kernel run it as asked (a NULL-destination sendto only).
    Continue,
}

fn respond(listener: RawFd, id: u64, answer: Answer) {
    let mut r = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: 0,
        flags: 0,
    };
    match answer {
        Answer::Value(v) => r.val = v,
        Answer::Error(e) => r.error = -e,
        Answer::Continue => r.flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
    }
    // SAFETY: the ioctl reads one seccomp_notif_resp. ENOENT (the task
    // is gone or was interrupted by a signal) needs nothing more.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_SEND as _, &mut r) };
}

/// Whether notification `id` still waits: its task is still the one
/// whose pid we used (checked after every look at that pid).
fn valid(listener: RawFd, id: u64) -> bool {
    let mut id = id;
    // SAFETY: the ioctl reads one u64.
    unsafe { libc::ioctl(listener, libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _, &mut id) == 0 }
}

/// An fd of ours, closed on drop.
struct Fd(RawFd);

impl Drop for Fd {
    fn drop(&mut self) {
        sys::close(self.0);
    }
}

/// The task of one notification: its pid (for /proc and memory) and a
/// pidfd (for its fds).
struct Task {
    pid: libc::pid_t,
    pidfd: Fd,
}

impl Task {
    /// Copies `len` bytes at `addr` of the task's memory.
    fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, i32> {
        let mut buf = vec![0u8; len];
        if len == 0 {
            return Ok(buf);
        }
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: len,
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: len,
        };
        // SAFETY: `local` is our buffer of `len` bytes; the remote range
        // is only read by the kernel, which checks it.
        let n = unsafe { libc::process_vm_readv(self.pid, &local, 1, &remote, 1, 0) };
        if n < 0 {
            return Err(libc::EFAULT);
        }
        if n as usize != len {
            return Err(libc::EFAULT);
        }
        Ok(buf)
    }

    /// Writes `data` at `addr` of the task's memory (sendmmsg's msg_len).
    fn write(&self, addr: u64, data: &[u8]) -> Result<(), i32> {
        let local = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: data.len(),
        };
        // SAFETY: the kernel reads `data` and checks the remote range.
        let n = unsafe { libc::process_vm_writev(self.pid, &local, 1, &remote, 1, 0) };
        if n < 0 || n as usize != data.len() {
            return Err(libc::EFAULT);
        }
        Ok(())
    }

    /// Our duplicate of the task's fd `fd` (the same open file).
    fn getfd(&self, fd: u64) -> Result<Fd, i32> {
        // The syscall takes an int: the argument's low 32 bits.
        let fd = fd as u32 as i32;
        // SAFETY: pidfd_getfd takes integers; the new fd is ours.
        let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, self.pidfd.0, fd, 0) };
        if r < 0 {
            // EPERM here would be jail's fault (ptrace rights), not the
            // program's; it still fails closed.
            return Err(sys::errno());
        }
        Ok(Fd(r as RawFd))
    }
}

fn sockopt(fd: RawFd, opt: libc::c_int) -> Result<i32, i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes one int into `v`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(sys::errno());
    }
    Ok(v)
}

/// Decides and performs one supervised syscall.
fn handle(listener: RawFd, n: &libc::seccomp_notif, rules: &Rules) -> Answer {
    let pid = n.pid as libc::pid_t;
    let pidfd = match thread_pidfd(pid) {
        Ok(fd) => fd,
        Err(e) => return Answer::Error(e),
    };
    // The pid was reused if the notification is gone; nothing to answer.
    if !valid(listener, n.id) {
        return Answer::Error(libc::ESRCH);
    }
    let task = Task { pid, pidfd };
    let args = n.data.args;
    let sock = match task.getfd(args[0]) {
        Ok(s) => s,
        Err(e) => return Answer::Error(e),
    };
    let family = match sockopt(sock.0, libc::SO_DOMAIN) {
        Ok(f) => f,
        Err(e) => return Answer::Error(e),
    };
    let op = Op {
        task: &task,
        sock: sock.0,
        family,
        rules,
        listener,
        id: n.id,
    };
    let nr = i64::from(n.data.nr);
    let r = if nr == libc::SYS_connect {
        op.connect(args[1], args[2])
    } else if nr == libc::SYS_sendto {
        op.sendto(args)
    } else if nr == libc::SYS_sendmsg {
        op.sendmsg(args[1], args[2] as i32)
    } else if nr == libc::SYS_sendmmsg {
        op.sendmmsg(args[1], args[2] as u32, args[3] as i32)
    } else {
        Err(libc::ENOSYS)
    };
    match r {
        Ok(v) => Answer::Value(v),
        Err(e) => Answer::Error(e),
    }
}

/// PIDFD_THREAD (Linux 6.9): a pidfd for a thread, not only a process.
const PIDFD_THREAD: libc::c_int = libc::O_EXCL;

/// A pidfd for the thread `tid` that made the syscall (its fd table may
/// be its own, after unshare(CLONE_FILES)); on kernels without thread
/// pidfds, its process's.
fn thread_pidfd(tid: libc::pid_t) -> Result<Fd, i32> {
    // SAFETY: pidfd_open takes a pid and flags, no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, tid, PIDFD_THREAD) };
    if fd >= 0 {
        return Ok(Fd(fd as RawFd));
    }
    let tgid = std::fs::read_to_string(format!("/proc/{tid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Tgid:"))
                .and_then(|v| v.trim().parse::<libc::pid_t>().ok())
        })
        .ok_or(libc::ESRCH)?;
    sys::pidfd_open(tgid).map(Fd)
}

/// One syscall of one task on one socket.
struct Op<'a> {
    task: &'a Task,
    sock: RawFd,
    family: i32,
    rules: &'a Rules,
    listener: RawFd,
    id: u64,
}

/// A destination ready to use: the sockaddr's bytes (ours), and the fd a
/// rewritten unix path names (kept open while in use).
struct Target {
    addr: Vec<u8>,
    _path: Option<Fd>,
}

/// A message as sendmsg takes it, copied: destination, data, control.
struct Message {
    target: Option<Target>,
    data: Vec<u8>,
    control: Vec<u8>,
    /// The SCM_RIGHTS fds duplicated from the task (kept open until sent).
    _fds: Vec<Fd>,
}

impl Op<'_> {
    fn inet(&self) -> bool {
        self.family == libc::AF_INET || self.family == libc::AF_INET6
    }

    /// Copies the sockaddr at `ptr` (`len` bytes) from the task.
    fn read_addr(&self, ptr: u64, len: u64) -> Result<Vec<u8>, i32> {
        let len = len as u32 as i32;
        if len < 0 || len as usize > MAX_ADDR {
            return Err(libc::EINVAL);
        }
        self.task.read(ptr, len as usize)
    }

    /// The decision on a destination, and what to use in its place.
    /// `send`: for a send (AF_UNSPEC reads differently, see `rules`).
    fn target(&self, addr: Vec<u8>, send: bool, what: &str) -> Result<Target, i32> {
        if self.inet() {
            return match rules::dest(&addr, send) {
                rules::Dest::None => Ok(Target { addr, _path: None }),
                rules::Dest::Refused(e) => Err(e),
                rules::Dest::Inet(sa) => match rules::decide(sa, self.rules) {
                    Ok(()) => Ok(Target { addr, _path: None }),
                    Err(why) => {
                        notice(&format!("refused {what} to {sa}: {}", why.why()));
                        Err(libc::EACCES)
                    }
                },
            };
        }
        if self.family == libc::AF_NETLINK {
            return Ok(Target { addr, _path: None });
        }
        if self.family != libc::AF_UNIX {
            return Err(libc::EPERM);
        }
        self.unix_target(addr)
    }

    /// A unix socket's address, resolved in the jail's view.
    fn unix_target(&self, addr: Vec<u8>) -> Result<Target, i32> {
        // sun_family, then the path; 2 bytes or fewer: unnamed (autobind).
        if addr.len() <= 2 {
            return Ok(Target { addr, _path: None });
        }
        let path = &addr[2..];
        if path[0] == 0 {
            // Abstract: Landlock's scoping holds for the task, not for us.
            notice(
                "refused an abstract unix socket (a job's task under cluster networks reaches \
                 only pathname unix sockets)",
            );
            return Err(libc::EPERM);
        }
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        let path = &path[..end];
        let (base, resolve) = if path.first() == Some(&b'/') {
            ("root", RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        } else {
            ("cwd", RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)
        };
        let dir = open_path(&format!("/proc/{}/{base}", self.task.pid))?;
        // The pid may have been reused while we opened its /proc entry.
        if !valid(self.listener, self.id) {
            return Err(libc::ESRCH);
        }
        let rel = if path.first() == Some(&b'/') {
            &path[1..]
        } else {
            path
        };
        let rel = if rel.is_empty() { &b"."[..] } else { rel };
        let found = openat2(dir.0, rel, resolve)?;
        let mut sun = vec![0u8; 2];
        sun.copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        sun.extend_from_slice(format!("/proc/self/fd/{}", found.0).as_bytes());
        sun.push(0);
        Ok(Target {
            addr: sun,
            _path: Some(found),
        })
    }

    fn connect(&self, ptr: u64, len: u64) -> Result<i64, i32> {
        let addr = self.read_addr(ptr, len)?;
        if !valid(self.listener, self.id) {
            return Err(libc::ESRCH);
        }
        let t = self.target(addr, false, "a connection")?;
        // SAFETY: connect on our fd with our buffer of `len` bytes.
        let rc = unsafe {
            libc::connect(
                self.sock,
                t.addr.as_ptr().cast(),
                t.addr.len() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(sys::errno());
        }
        Ok(0)
    }

    /// Copies `len` bytes of data at `ptr`, at most MAX_DATA: a stream
    /// socket's send is then short; a larger datagram is EMSGSIZE.
    fn data_len(&self, len: usize) -> Result<usize, i32> {
        if len <= MAX_DATA {
            return Ok(len);
        }
        if sockopt(self.sock, libc::SO_TYPE)? == libc::SOCK_STREAM {
            Ok(MAX_DATA)
        } else {
            Err(libc::EMSGSIZE)
        }
    }

    fn sendto(&self, args: [u64; 6]) -> Result<i64, i32> {
        let len = self.data_len(args[2] as usize)?;
        let data = self.task.read(args[1], len)?;
        let addr = self.read_addr(args[4], args[5])?;
        if !valid(self.listener, self.id) {
            return Err(libc::ESRCH);
        }
        let t = self.target(addr, true, "a send")?;
        // SAFETY: sendto on our fd with our buffers.
        let n = unsafe {
            libc::sendto(
                self.sock,
                data.as_ptr().cast(),
                data.len(),
                args[3] as i32,
                t.addr.as_ptr().cast(),
                t.addr.len() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(sys::errno());
        }
        Ok(n as i64)
    }

    /// Copies the msghdr at `ptr` and what it points to.
    fn read_message(&self, ptr: u64) -> Result<Message, i32> {
        let raw = self.task.read(ptr, std::mem::size_of::<libc::msghdr>())?;
        // SAFETY: `raw` holds size_of::<msghdr>() bytes; read_unaligned
        // copies them into a msghdr (plain integers and pointers we only
        // use as numbers).
        let m: libc::msghdr = unsafe { std::ptr::read_unaligned(raw.as_ptr().cast()) };
        let target = if m.msg_name.is_null() {
            None
        } else {
            let addr = self.read_addr(m.msg_name as u64, u64::from(m.msg_namelen))?;
            Some(addr)
        };
        if m.msg_iovlen > MAX_IOV {
            return Err(libc::EMSGSIZE);
        }
        let iov_size = std::mem::size_of::<libc::iovec>();
        let iovs = self.task.read(m.msg_iov as u64, m.msg_iovlen * iov_size)?;
        let mut data = Vec::new();
        for chunk in iovs.chunks_exact(iov_size) {
            // SAFETY: one iovec's bytes, copied as numbers.
            let v: libc::iovec = unsafe { std::ptr::read_unaligned(chunk.as_ptr().cast()) };
            let room = MAX_DATA.saturating_sub(data.len());
            if v.iov_len > room {
                let len = self.data_len(data.len().saturating_add(v.iov_len))? - data.len();
                data.extend(self.task.read(v.iov_base as u64, len)?);
                break;
            }
            data.extend(self.task.read(v.iov_base as u64, v.iov_len)?);
        }
        if m.msg_controllen > MAX_CONTROL {
            return Err(libc::ENOBUFS);
        }
        let mut control = if m.msg_controllen == 0 || m.msg_control.is_null() {
            Vec::new()
        } else {
            self.task.read(m.msg_control as u64, m.msg_controllen)?
        };
        let fds = self.control(&mut control)?;
        if !valid(self.listener, self.id) {
            return Err(libc::ESRCH);
        }
        let target = match target {
            Some(a) => Some(self.target(a, true, "a message")?),
            None => None,
        };
        Ok(Message {
            target,
            data,
            control,
            _fds: fds,
        })
    }

    /// Checks the control messages and turns SCM_RIGHTS's fds (the
    /// task's numbers) into our duplicates.
    fn control(&self, control: &mut [u8]) -> Result<Vec<Fd>, i32> {
        let mut fds = Vec::new();
        if control.is_empty() {
            return Ok(fds);
        }
        if self.family != libc::AF_UNIX {
            notice("refused a message with control data on a network socket");
            return Err(libc::EPERM);
        }
        let hdr = std::mem::size_of::<libc::cmsghdr>();
        let mut at = 0usize;
        while at + hdr <= control.len() {
            // SAFETY: `hdr` bytes at `at`, copied as numbers.
            let c: libc::cmsghdr =
                unsafe { std::ptr::read_unaligned(control[at..].as_ptr().cast()) };
            let len = c.cmsg_len;
            // cmsg_len is the task's: `at + len` could wrap (and a slice
            // out of order panics, which aborts the supervisor and with it
            // every decision). `at + hdr <= control.len()` holds here.
            if len < hdr || len > control.len() - at {
                return Err(libc::EINVAL);
            }
            if c.cmsg_level != libc::SOL_SOCKET || c.cmsg_type != libc::SCM_RIGHTS {
                return Err(libc::EPERM);
            }
            let body = &mut control[at + hdr..at + len];
            for slot in body.chunks_exact_mut(4) {
                let theirs = i32::from_ne_bytes([slot[0], slot[1], slot[2], slot[3]]);
                let ours = self.task.getfd(theirs as u32 as u64)?;
                slot.copy_from_slice(&ours.0.to_ne_bytes());
                fds.push(ours);
            }
            // CMSG_ALIGN: to the size of a long.
            let align = std::mem::size_of::<usize>();
            at += len.div_ceil(align) * align;
        }
        Ok(fds)
    }

    fn send_message(&self, m: &Message, flags: i32) -> Result<i64, i32> {
        let mut iov = libc::iovec {
            iov_base: m.data.as_ptr() as *mut libc::c_void,
            iov_len: m.data.len(),
        };
        // SAFETY: a zeroed msghdr is valid; its pointers are set to our
        // buffers below.
        let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
        if let Some(t) = &m.target {
            h.msg_name = t.addr.as_ptr() as *mut libc::c_void;
            h.msg_namelen = t.addr.len() as libc::socklen_t;
        }
        h.msg_iov = &mut iov;
        h.msg_iovlen = 1;
        if !m.control.is_empty() {
            h.msg_control = m.control.as_ptr() as *mut libc::c_void;
            h.msg_controllen = m.control.len();
        }
        // SAFETY: sendmsg on our fd with a msghdr of our live buffers.
        let n = unsafe { libc::sendmsg(self.sock, &h, flags) };
        if n < 0 {
            return Err(sys::errno());
        }
        Ok(n as i64)
    }

    fn sendmsg(&self, ptr: u64, flags: i32) -> Result<i64, i32> {
        let m = self.read_message(ptr)?;
        self.send_message(&m, flags)
    }

    /// Each message in turn; the count sent, or the first error if none
    /// was (as the kernel's sendmmsg). Each sent one's msg_len is written
    /// back into the task's vector.
    fn sendmmsg(&self, ptr: u64, vlen: u32, flags: i32) -> Result<i64, i32> {
        let size = std::mem::size_of::<libc::mmsghdr>();
        let len_at = std::mem::size_of::<libc::msghdr>() as u64;
        let mut sent = 0u64;
        for i in 0..(vlen as usize).min(MAX_IOV) {
            let at = ptr + (i * size) as u64;
            let r = self
                .read_message(at)
                .and_then(|m| self.send_message(&m, flags));
            match r {
                Ok(n) => {
                    // Still the same task (its pid not reused) before
                    // writing into its memory.
                    if !valid(self.listener, self.id) {
                        return Err(libc::ESRCH);
                    }
                    self.task.write(at + len_at, &(n as u32).to_ne_bytes())?;
                    sent += 1;
                }
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(sent as i64)
    }
}

/// Most refusals told on stderr; a program that retries in a loop would
/// otherwise bury the job's output.
const NOTICES: usize = 50;

/// One line on stderr (the job's error output) per refusal, up to
/// NOTICES, then one line saying the rest are not shown.
fn notice(line: &str) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static TOLD: AtomicUsize = AtomicUsize::new(0);
    let n = TOLD.fetch_add(1, Ordering::Relaxed);
    let text = if n < NOTICES {
        format!("jail: cluster network: {line}\n")
    } else if n == NOTICES {
        "jail: cluster network: further refusals are not shown\n".to_string()
    } else {
        return;
    };
    // Not eprintln!, which panics when the write fails, and a panic aborts
    // the supervisor: stderr is the job's, its open file shared with the
    // task, which can make it fail (O_NONBLOCK on a full pipe, a full disk).
    use std::io::Write;
    let _ = std::io::stderr().write_all(text.as_bytes());
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// struct open_how (openat2), which this libc does not define.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn open_path(path: &str) -> Result<Fd, i32> {
    let c = CString::new(path).map_err(|_| libc::EINVAL)?;
    // SAFETY: open on a C string; the fd is ours.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(sys::errno());
    }
    Ok(Fd(fd))
}

fn openat2(dir: RawFd, path: &[u8], resolve: u64) -> Result<Fd, i32> {
    let c = CString::new(path).map_err(|_| libc::EINVAL)?;
    let how = OpenHow {
        flags: (libc::O_PATH | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    // SAFETY: openat2 with a C string and an open_how of its size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(sys::errno());
    }
    Ok(Fd(fd as RawFd))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sin(port: u16) -> libc::sockaddr_in {
        // SAFETY: all-zero is a valid sockaddr_in.
        let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        a.sin_family = libc::AF_INET as u16;
        a.sin_port = port.to_be();
        a.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
        a
    }

    fn sun(path: &[u8]) -> libc::sockaddr_un {
        // SAFETY: all-zero is a valid sockaddr_un.
        let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        a.sun_family = libc::AF_UNIX as u16;
        for (d, s) in a.sun_path.iter_mut().zip(path) {
            *d = *s as libc::c_char;
        }
        a
    }

    /// connect() in the child: 0, or the errno.
    fn try_connect<T>(family: i32, addr: &T) -> i32 {
        // SAFETY: socket/connect/close on a live sockaddr of its size.
        unsafe {
            let s = libc::socket(family, libc::SOCK_STREAM, 0);
            let rc = libc::connect(
                s,
                (addr as *const T).cast(),
                std::mem::size_of::<T>() as libc::socklen_t,
            );
            let e = if rc == 0 { 0 } else { sys::errno() };
            libc::close(s);
            e
        }
    }

    #[test]
    fn a_notice_that_cannot_be_written_is_no_panic() {
        // In a child whose stderr is a pipe without a reader (EPIPE; the
        // test harness ignores SIGPIPE as the supervisor does), on a
        // thread of its own that the harness does not capture the output
        // of (its threads and theirs print into a buffer).
        extern "C" fn tell(_: *mut libc::c_void) -> *mut libc::c_void {
            let ok = std::panic::catch_unwind(|| notice("a refusal")).is_ok();
            usize::from(ok) as *mut libc::c_void
        }
        let pid = sys::fork().unwrap();
        if pid == 0 {
            let (r, w) = sys::pipe().unwrap();
            sys::close(r);
            // SAFETY: dup2 of our own fds; a thread on a function that
            // takes and returns no data, joined at once.
            let ok = unsafe {
                libc::dup2(w, 2);
                let mut t: libc::pthread_t = std::mem::zeroed();
                let mut ret: *mut libc::c_void = std::ptr::null_mut();
                libc::pthread_create(&mut t, std::ptr::null(), tell, std::ptr::null_mut()) == 0
                    && libc::pthread_join(t, &mut ret) == 0
                    && !ret.is_null()
            };
            sys::exit_now(if ok { 0 } else { 1 });
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status));
        assert_eq!(libc::WEXITSTATUS(status), 0, "notice panicked");
    }

    #[test]
    fn a_control_length_that_wraps_is_refused_not_a_panic() {
        // An empty SCM_RIGHTS, then one whose cmsg_len makes `at + len`
        // wrap round: EINVAL (a panic would abort the supervisor).
        let task = Task {
            pid: std::process::id() as libc::pid_t,
            pidfd: Fd(-1),
        };
        let op = Op {
            task: &task,
            sock: -1,
            family: libc::AF_UNIX,
            rules: &Rules::default(),
            listener: -1,
            id: 0,
        };
        let hdr = std::mem::size_of::<libc::cmsghdr>();
        let mut control = vec![0u8; 4 * hdr];
        for (at, len) in [(0, hdr), (hdr, usize::MAX - 7)] {
            // SAFETY: a zeroed cmsghdr is valid; written unaligned into
            // the buffer.
            let mut c: libc::cmsghdr = unsafe { std::mem::zeroed() };
            c.cmsg_len = len;
            c.cmsg_level = libc::SOL_SOCKET;
            c.cmsg_type = libc::SCM_RIGHTS;
            // SAFETY: `at + hdr` bytes fit in the buffer.
            unsafe { std::ptr::write_unaligned(control[at..].as_mut_ptr().cast(), c) };
        }
        assert_eq!(op.control(&mut control).err(), Some(libc::EINVAL));
    }

    #[test]
    fn a_process_under_the_filter_gets_the_supervisors_decisions() {
        // The real path in one process tree: a forked child installs the
        // filter; this process takes its listener (pidfd_getfd) and serves.
        let allowed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let denied = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let path = format!("/tmp/jail-connect-test-{}.sock", std::process::id());
        let _ = std::fs::remove_file(&path);
        let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let ok = sin(allowed.local_addr().unwrap().port());
        let bad = sin(denied.local_addr().unwrap().port());
        let named = sun(path.as_bytes());
        let abstract_ = sun(b"\0jail-connect-test");
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let to_udp = sin(udp.local_addr().unwrap().port());
        let prog = crate::harden::notify::program();
        let (fd_r, fd_w) = sys::pipe().unwrap();
        let (go_r, go_w) = sys::pipe().unwrap();
        let pid = sys::fork().unwrap();
        if pid == 0 {
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            let Ok(fd) = crate::harden::notify::install(&prog) else {
                sys::exit_now(100);
            };
            let _ = sys::write_all(fd_w, &fd.to_ne_bytes());
            let mut b = [0u8; 1];
            let _ = sys::read(go_r, &mut b);
            let mut failed = 0;
            if try_connect(libc::AF_INET, &ok) != 0 {
                failed |= 1;
            }
            if try_connect(libc::AF_INET, &bad) != libc::EACCES {
                failed |= 2;
            }
            if try_connect(libc::AF_UNIX, &named) != 0 {
                failed |= 4;
            }
            if try_connect(libc::AF_UNIX, &abstract_) != libc::EPERM {
                failed |= 8;
            }
            // SAFETY: socket with integer arguments.
            let sctp =
                unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_SCTP) };
            if sctp != -1 || sys::errno() != libc::EPERM {
                failed |= 16;
            }
            // SAFETY: UDP sends with live buffers prepared before fork
            // (the child has its own copy of this memory).
            unsafe {
                let u = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
                let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
                let mut iov = [
                    libc::iovec {
                        iov_base: b"one".as_ptr() as *mut libc::c_void,
                        iov_len: 3,
                    },
                    libc::iovec {
                        iov_base: b"three".as_ptr() as *mut libc::c_void,
                        iov_len: 5,
                    },
                ];
                let mut m: [libc::mmsghdr; 2] = std::mem::zeroed();
                for (k, h) in m.iter_mut().enumerate() {
                    h.msg_hdr.msg_name = (&to_udp as *const libc::sockaddr_in).cast_mut().cast();
                    h.msg_hdr.msg_namelen = len;
                    h.msg_hdr.msg_iov = &mut iov[k];
                    h.msg_hdr.msg_iovlen = 1;
                }
                if libc::sendmmsg(u, m.as_mut_ptr(), 2, 0) != 2
                    || m[0].msg_len != 3
                    || m[1].msg_len != 5
                {
                    failed |= 32;
                }
                // A name that is not allowed: refused, nothing sent.
                m[0].msg_hdr.msg_name = (&bad as *const libc::sockaddr_in).cast_mut().cast();
                if libc::sendmsg(u, &m[0].msg_hdr, 0) != -1 || sys::errno() != libc::EACCES {
                    failed |= 64;
                }
                // Connected to an allowed address, a send without one.
                let c = libc::connect(u, (&to_udp as *const libc::sockaddr_in).cast(), len);
                if c != 0 || libc::send(u, b"four".as_ptr().cast(), 4, 0) != 4 {
                    failed |= 128;
                }
            }
            sys::exit_now(failed);
        }
        let mut b = [0u8; 4];
        assert_eq!(sys::read(fd_r, &mut b), Ok(4));
        let fd = i32::from_ne_bytes(b);
        let pidfd = sys::pidfd_open(pid).unwrap();
        // SAFETY: pidfd_getfd takes integers; the new fd is ours.
        let l = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) };
        assert!(l >= 0, "pidfd_getfd: {}", sys::errno());
        // SAFETY: the kernel just gave us this fd.
        let listener = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(l as RawFd) };
        let (ours, theirs) = Channel::pair().unwrap();
        let rules = Rules {
            endpoints: vec![allowed.local_addr().unwrap(), udp.local_addr().unwrap()],
            ..Rules::default()
        };
        let server = std::thread::spawn(move || serve(Arc::new(rules), listener, theirs));
        sys::write_all(go_w, b"g").unwrap();
        let mut status = 0;
        // SAFETY: waitpid on our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        // The child is gone: the listener hangs up and the loop ends.
        assert_eq!(server.join().unwrap(), 0);
        drop(ours);
        for fd in [fd_r, fd_w, go_r, go_w, pidfd] {
            sys::close(fd);
        }
        drop(unix);
        let _ = std::fs::remove_file(&path);
        assert!(libc::WIFEXITED(status));
        assert_eq!(libc::WEXITSTATUS(status), 0, "failed checks (bits)");
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while let Ok(n) = udp.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            if got.len() == 3 {
                break;
            }
        }
        assert_eq!(got, ["one", "three", "four"]);
    }
}
