//! Raw process, fd and socket syscalls, each behind a small safe wrapper
//! with its SAFETY comment. Everything here is async-signal-safe and
//! allocation-free unless its doc says otherwise, so the forked jail
//! child (pid 1) may call it. The mount executor (`pid1::exec`) and
//! the Landlock/seccomp installers (`harden`) keep their own syscalls
//! next to the data they apply.

use std::os::fd::RawFd;

pub mod net;

/// The calling thread's errno, read before anything else can change it.
pub fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// The machine's RAM in bytes (sysinfo(2)); 0 when unknown.
pub fn ram() -> u64 {
    // SAFETY: sysinfo fills a zeroed local struct.
    let mut si: libc::sysinfo = unsafe { std::mem::zeroed() };
    // SAFETY: as above; a valid pointer to it.
    if unsafe { libc::sysinfo(&mut si) } != 0 {
        return 0;
    }
    // c_ulong: u64 here, u32 on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    let total = u64::from(si.totalram);
    total.saturating_mul(u64::from(si.mem_unit.max(1)))
}

/// "No such file or directory", without Rust's " (os error 2)".
pub fn errno_text(e: i32) -> String {
    let s = std::io::Error::from_raw_os_error(e).to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn cvt(rc: libc::c_int) -> Result<libc::c_int, i32> {
    if rc < 0 {
        Err(errno())
    } else {
        Ok(rc)
    }
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> Result<(RawFd, RawFd), i32> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array it is given.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok((fds[0], fds[1]))
}

/// A close-on-exec SOCK_SEQPACKET unix socket pair: message boundaries are
/// kept, and EOF arrives when every holder of the other end is gone.
pub fn seqpacket_pair() -> Result<(RawFd, RawFd), i32> {
    let mut fds = [0; 2];
    // SAFETY: socketpair writes two fds into the array it is given.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    Ok((fds[0], fds[1]))
}

/// A unix socket address for `path`, on the stack (allocation-free).
fn unix_addr(path: &std::ffi::CStr) -> Result<(libc::sockaddr_un, libc::socklen_t), i32> {
    // SAFETY: an all-zero sockaddr_un is valid (empty path).
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.to_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(libc::ENAMETOOLONG);
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

fn seqpacket_socket() -> Result<RawFd, i32> {
    // SAFETY: socket() takes integers only.
    cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) })
}

/// A listening SOCK_SEQPACKET unix socket bound at `path` (close-on-exec).
pub fn seqpacket_listen(path: &std::ffi::CStr) -> Result<RawFd, i32> {
    let (addr, len) = unix_addr(path)?;
    let fd = seqpacket_socket()?;
    // SAFETY: addr is a valid sockaddr_un of `len` bytes; fd is ours.
    let rc = unsafe {
        let rc = libc::bind(fd, (&addr as *const libc::sockaddr_un).cast(), len);
        if rc == 0 {
            libc::listen(fd, 64)
        } else {
            rc
        }
    };
    if rc != 0 {
        let e = errno();
        close(fd);
        return Err(e);
    }
    Ok(fd)
}

/// Connects a SOCK_SEQPACKET unix socket to `path` (close-on-exec).
pub fn seqpacket_connect(path: &std::ffi::CStr) -> Result<RawFd, i32> {
    let (addr, len) = unix_addr(path)?;
    let fd = seqpacket_socket()?;
    loop {
        // SAFETY: addr is a valid sockaddr_un of `len` bytes; fd is ours.
        let rc = unsafe { libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len) };
        if rc == 0 {
            return Ok(fd);
        }
        if errno() != libc::EINTR {
            let e = errno();
            close(fd);
            return Err(e);
        }
    }
}

/// Accepts one connection (close-on-exec).
pub fn accept(fd: RawFd) -> Result<RawFd, i32> {
    loop {
        // SAFETY: accept4 without an address buffer.
        let c = unsafe {
            libc::accept4(
                fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        if c >= 0 {
            return Ok(c);
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

/// poll() over several fds, retried on EINTR (-1: no timeout).
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<usize, i32> {
    loop {
        // SAFETY: a live slice of pollfd of the length passed.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n >= 0 {
            return Ok(n as usize);
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

/// Closes an fd we own; errors are ignored (the fd is gone either way).
pub fn close(fd: RawFd) {
    if fd >= 0 {
        // SAFETY: closing an fd the caller owns and no longer uses.
        unsafe { libc::close(fd) };
    }
}

/// Closes every fd from `first` up (a freshly forked child that keeps only
/// what it was given). close_range (Linux 5.9); else one by one up to the
/// soft limit on open files.
pub fn close_from(first: RawFd) {
    // SAFETY: close_range with plain integer arguments.
    if unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0,
        )
    } == 0
    {
        return;
    }
    // SAFETY: sysconf has no preconditions.
    let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(first as libc::c_long, 1 << 16);
    for fd in first..max as RawFd {
        // SAFETY: closing fds this process will not use; EBADF is harmless.
        unsafe { libc::close(fd) };
    }
}

/// openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
/// RESOLVE_NO_MAGICLINKS: `rel` below `dir`, through no link at all
/// (Linux 5.6). Returns an owned fd.
pub fn open_beneath(
    dir: RawFd,
    rel: &std::ffi::CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> Result<std::os::fd::OwnedFd, i32> {
    use std::os::fd::FromRawFd;
    // SAFETY: open_how is plain data; zeroed is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = mode as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: openat2 reads `how` (its size given) and the NUL-terminated
    // `rel`, both alive for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            rel.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: a fresh fd from openat2, owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Clears FD_CLOEXEC so `fd` survives an exec.
pub fn keep_on_exec(fd: RawFd) -> Result<(), i32> {
    // SAFETY: F_SETFD with integer flags on an fd we own.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(|_| ())
}

/// Moves `fd` to exactly `target` (dup2, then closes the original),
/// keeping it open across exec.
pub fn move_fd(fd: RawFd, target: RawFd) -> Result<(), i32> {
    if fd == target {
        return keep_on_exec(fd);
    }
    // SAFETY: dup2 between fds of this process; dup2 clears FD_CLOEXEC.
    cvt(unsafe { libc::dup2(fd, target) })?;
    close(fd);
    Ok(())
}

/// Writes all of `buf`, retrying on EINTR; a short write on a closed pipe
/// is reported as its errno.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> Result<(), i32> {
    while !buf.is_empty() {
        // SAFETY: writing from a live slice of the given length.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(errno());
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Writes `buf` to the existing file `path` (a /proc or /sys knob):
/// open (no create), write, close; allocation-free.
pub fn write_existing(path: &std::ffi::CStr, buf: &[u8]) -> Result<(), i32> {
    // SAFETY: open on a valid C string; the fd is closed below.
    let fd = cvt(unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) })?;
    let r = write_all(fd, buf);
    close(fd);
    r
}

/// Reads into `buf` once, retrying on EINTR; Ok(0) is EOF.
pub fn read(fd: RawFd, buf: &mut [u8]) -> Result<usize, i32> {
    loop {
        // SAFETY: reading into a live mutable slice of the given length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

/// Reads into `buf` once; EINTR is returned (a signal handler may want
/// the wait to end), not retried.
pub fn read_interruptible(fd: RawFd, buf: &mut [u8]) -> Result<usize, i32> {
    // SAFETY: reading into a live mutable slice of the given length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(errno())
    } else {
        Ok(n as usize)
    }
}

/// fork(). The caller must be single-threaded (see `thread_count`).
pub fn fork() -> Result<libc::pid_t, i32> {
    // SAFETY: fork in a process the caller checked is single-threaded, so
    // no other thread can hold a lock the child would inherit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(errno())
    } else {
        Ok(pid)
    }
}

/// Ends a forked child without running destructors or atexit handlers.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no user-space state.
    unsafe { libc::_exit(code) }
}

/// Threads of this process (the launcher must fork single-threaded).
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1)
}

/// Sets the signal this process gets when its parent dies.
pub fn die_with_parent(sig: libc::c_int) {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig, 0, 0, 0) };
}

/// Ignores the signals a terminal or a job-control shell sends to the
/// whole process group, so a process outside the jail outlives Ctrl-C
/// and ends on its own terms (when the jail is gone).
pub fn ignore_terminal_signals() {
    for s in [
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGHUP,
        libc::SIGTERM,
        libc::SIGTSTP,
    ] {
        // SAFETY: setting a disposition to SIG_IGN.
        unsafe { libc::signal(s, libc::SIG_IGN) };
    }
}

/// Restores `sig`'s default action and unblocks it.
pub fn default_signal(sig: libc::c_int) {
    // SAFETY: sigset manipulation on a local set; signal() with SIG_DFL.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::signal(sig, libc::SIG_DFL);
    }
}

/// SIGALRM in `secs` seconds (0 cancels).
pub fn alarm(secs: u32) {
    // SAFETY: alarm takes a number, no pointers.
    unsafe { libc::alarm(secs) };
}

/// A pidfd for `pid` (Linux 5.3+), close-on-exec; Err(errno) where the
/// kernel lacks it.
pub fn pidfd_open(pid: libc::pid_t) -> Result<RawFd, i32> {
    // SAFETY: pidfd_open takes a pid and flags, no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        Err(errno())
    } else {
        Ok(fd as RawFd)
    }
}

/// Blocks until `fd` is readable or hung up (-1: forever, else ms).
/// Returns the revents (0 on timeout).
pub fn poll_in(fd: RawFd, timeout_ms: i32) -> Result<i16, i32> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one live pollfd.
        let n = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if n >= 0 {
            return Ok(if n == 0 { 0 } else { p.revents });
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

/// Whether `pid` still exists (a zombie counts until it is reaped).
pub fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    unsafe { libc::kill(pid, 0) == 0 || errno() == libc::EPERM }
}

/// Whether our child `pid` has exited (it stays a zombie: not reaped).
pub fn exited(pid: libc::pid_t) -> bool {
    // SAFETY: a zeroed siginfo_t that waitid fills.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid on our own child, WNOWAIT: it stays waitable.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: si_pid is set (non-zero) only when a child was found.
    rc != 0 || unsafe { info.si_pid() } != 0
}

/// A path as a C string (allocates: not for use after fork).
fn cpath(p: &std::path::Path) -> Result<std::ffi::CString, i32> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)
}

/// Reads extended attribute `name` of `path` itself (never a symlink's
/// target) into `buf`; returns its length.
pub fn lgetxattr(
    path: &std::path::Path,
    name: &std::ffi::CStr,
    buf: &mut [u8],
) -> Result<usize, i32> {
    let p = cpath(path)?;
    // SAFETY: valid C strings; the kernel writes at most buf.len() bytes.
    let n = unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        Err(errno())
    } else {
        Ok(n as usize)
    }
}

/// The names of the extended attributes of `path` itself (allocates).
pub fn llistxattr(path: &std::path::Path) -> Result<Vec<std::ffi::CString>, i32> {
    let p = cpath(path)?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: a valid C string and a buffer of the length passed.
        let n = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        if errno() != libc::ERANGE || buf.len() > 1 << 20 {
            return Err(errno());
        }
        buf.resize(buf.len() * 4, 0);
    }
    Ok(buf
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .filter_map(|n| std::ffi::CString::new(n).ok())
        .collect())
}

/// Removes extended attribute `name` from `path` itself.
pub fn lremovexattr(path: &std::path::Path, name: &std::ffi::CStr) -> Result<(), i32> {
    let p = cpath(path)?;
    // SAFETY: valid C strings.
    cvt(unsafe { libc::lremovexattr(p.as_ptr(), name.as_ptr()) }).map(|_| ())
}

/// An exclusive advisory lock on `fd` (flock), without waiting:
/// Err(EWOULDBLOCK) when another open file description holds it.
pub fn try_lock(fd: RawFd) -> Result<(), i32> {
    // SAFETY: flock on an fd the caller owns.
    cvt(unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) }).map(|_| ())
}

/// Whether `fd` is open and a socket.
pub fn is_socket(fd: RawFd) -> bool {
    // SAFETY: fstat into a zeroed local struct.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
    }
}

/// An exclusive advisory lock on `fd` (flock), waiting for it.
pub fn lock(fd: RawFd) -> Result<(), i32> {
    // SAFETY: flock on an fd the caller owns.
    cvt(unsafe { libc::flock(fd, libc::LOCK_EX) }).map(|_| ())
}

/// A shared advisory lock on `fd` (flock), waiting for it.
pub fn lock_shared(fd: RawFd) -> Result<(), i32> {
    // SAFETY: flock on an fd the caller owns.
    cvt(unsafe { libc::flock(fd, libc::LOCK_SH) }).map(|_| ())
}

/// Whether `fd` is a terminal.
pub fn is_tty(fd: RawFd) -> bool {
    // SAFETY: isatty only queries the fd.
    unsafe { libc::isatty(fd) == 1 }
}

/// Rows of the terminal on `fd`, if it is one.
pub fn term_rows(fd: RawFd) -> Option<u16> {
    // SAFETY: a zeroed winsize that TIOCGWINSZ fills.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize into the pointer.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0).then_some(ws.ws_row)
}

/// Room for this many fds in one message.
pub const MAX_FDS: usize = 16;

/// Control-message buffer for MAX_FDS fds, aligned for cmsghdr.
#[repr(C, align(8))]
struct CmsgBuf([u8; 128]);

const _: () = assert!(
    // CMSG_SPACE(16 * 4) on 64-bit = 16 + 64.
    16 + MAX_FDS * 4 <= 128
);

/// sendmsg of `data` with `fds` attached (SCM_RIGHTS). No allocation.
pub fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> Result<(), i32> {
    if fds.len() > MAX_FDS {
        return Err(libc::E2BIG);
    }
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut cbuf = CmsgBuf([0; 128]);
    // SAFETY: a zeroed msghdr is valid; fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let bytes = std::mem::size_of_val(fds) as u32;
        // SAFETY: CMSG_SPACE/CMSG_LEN are pure arithmetic.
        msg.msg_control = cbuf.0.as_mut_ptr().cast();
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(bytes) } as _;
        // SAFETY: the control buffer is large and aligned enough for one
        // cmsghdr with `bytes` of data (checked above), so CMSG_FIRSTHDR
        // is non-null and CMSG_DATA points inside it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(c),
                bytes as usize,
            );
        }
    }
    loop {
        // SAFETY: msg points at live buffers for the duration of the call.
        let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        if n >= 0 {
            return Ok(());
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

/// The length of the next message on a SOCK_SEQPACKET socket, waiting
/// for one (recv with MSG_PEEK|MSG_TRUNC, no buffer): the message stays
/// queued, and fds sent with it are not taken. 0 is EOF (or an empty
/// message, which `recv_with_fds` then reads as EOF too).
pub fn peek_len(sock: RawFd) -> Result<usize, i32> {
    loop {
        // SAFETY: a zero-length read into no buffer; the kernel only
        // reports the message's length.
        let n = unsafe {
            libc::recv(
                sock,
                std::ptr::null_mut(),
                0,
                libc::MSG_PEEK | libc::MSG_TRUNC,
            )
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

/// recvmsg into `buf`, collecting passed fds (close-on-exec) into `fds`.
/// Returns (bytes, fd count); (0, 0) is EOF. A message longer than `buf`
/// is an error (EMSGSIZE), never silently cut.
pub fn recv_with_fds(
    sock: RawFd,
    buf: &mut [u8],
    fds: &mut [RawFd; MAX_FDS],
) -> Result<(usize, usize), i32> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = CmsgBuf([0; 128]);
    // SAFETY: a zeroed msghdr is valid; fields are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = cbuf.0.len() as _;
    let n = loop {
        // SAFETY: msg points at live buffers for the duration of the call.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    };
    let mut count = 0;
    // SAFETY: walking the control messages the kernel wrote into cbuf,
    // with the libc macros that bound every step by msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let len = (*c).cmsg_len as usize - (data as usize - c as usize);
                for i in 0..len / 4 {
                    let mut fd: RawFd = -1;
                    std::ptr::copy_nonoverlapping(
                        data.add(i * 4),
                        (&mut fd as *mut RawFd).cast::<u8>(),
                        4,
                    );
                    if count < MAX_FDS {
                        fds[count] = fd;
                        count += 1;
                    } else {
                        close(fd);
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
        for &fd in &fds[..count] {
            close(fd);
        }
        return Err(libc::EMSGSIZE);
    }
    Ok((n, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_len_says_how_long_the_next_message_is_and_leaves_it_and_its_fds() {
        let (a, b) = seqpacket_pair().unwrap();
        let (r, w) = pipe().unwrap();
        send_with_fds(a, &[7u8; 3000], &[w]).unwrap();
        close(w);
        assert_eq!(peek_len(b), Ok(3000));
        assert_eq!(peek_len(b), Ok(3000), "still queued");
        let mut buf = vec![0u8; 3000];
        let mut fds = [-1; MAX_FDS];
        assert_eq!(recv_with_fds(b, &mut buf, &mut fds), Ok((3000, 1)));
        close(fds[0]);
        // The peeks took no copy of the fd: the write end is gone now.
        let mut one = [0u8; 1];
        assert_eq!(read(r, &mut one).unwrap(), 0);
        close(r);
        close(a);
        close(b);
    }

    #[test]
    fn fds_travel_with_a_message() {
        let (a, b) = seqpacket_pair().unwrap();
        let (r, w) = pipe().unwrap();
        send_with_fds(a, b"hello", &[w]).unwrap();
        close(w);
        let mut buf = [0u8; 16];
        let mut fds = [-1; MAX_FDS];
        let (n, k) = recv_with_fds(b, &mut buf, &mut fds).unwrap();
        assert_eq!((&buf[..n], k), (&b"hello"[..], 1));
        write_all(fds[0], b"x").unwrap();
        close(fds[0]);
        let mut one = [0u8; 2];
        assert_eq!(read(r, &mut one).unwrap(), 1);
        assert_eq!(read(r, &mut one).unwrap(), 0, "every write end closed");
        close(a);
        assert_eq!(recv_with_fds(b, &mut buf, &mut fds).unwrap(), (0, 0), "EOF");
        assert_eq!(peek_len(b), Ok(0), "EOF");
        close(b);
        close(r);
    }

    #[test]
    fn a_listening_socket_accepts_and_carries_fds() {
        let dir = std::env::temp_dir().join(format!("jail-sys-sock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = std::ffi::CString::new(dir.join("s").as_os_str().as_encoded_bytes()).unwrap();
        let l = seqpacket_listen(&path).unwrap();
        let c = seqpacket_connect(&path).unwrap();
        let a = accept(l).unwrap();
        send_with_fds(c, b"hi", &[c]).unwrap();
        let mut buf = [0u8; 8];
        let mut fds = [-1; MAX_FDS];
        assert_eq!(recv_with_fds(a, &mut buf, &mut fds).unwrap(), (2, 1));
        for fd in [fds[0], a, c, l] {
            close(fd);
        }
        let long = std::ffi::CString::new(vec![b'x'; 200]).unwrap();
        assert_eq!(seqpacket_listen(&long), Err(libc::ENAMETOOLONG));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_oversized_message_is_an_error_not_a_cut() {
        let (a, b) = seqpacket_pair().unwrap();
        send_with_fds(a, &[7u8; 64], &[]).unwrap();
        let mut small = [0u8; 8];
        let mut fds = [-1; MAX_FDS];
        assert_eq!(recv_with_fds(b, &mut small, &mut fds), Err(libc::EMSGSIZE));
        close(a);
        close(b);
    }
}
