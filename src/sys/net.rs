//! Raw socket, netlink, splice and epoll syscalls for the network: pid 1's
//! routes and sockets (after fork: allocation-free, async-signal-safe) and
//! the network helper's relay. Each wrapper carries its SAFETY comment;
//! addresses cross the boundary as std's `SocketAddr`, built on the stack.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

use super::{close, errno};

fn cvt(rc: libc::c_int) -> Result<libc::c_int, i32> {
    if rc < 0 {
        Err(errno())
    } else {
        Ok(rc)
    }
}

fn cvt_size(rc: libc::ssize_t) -> Result<usize, i32> {
    if rc < 0 {
        Err(errno())
    } else {
        Ok(rc as usize)
    }
}

/// A close-on-exec socket.
pub fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> Result<RawFd, i32> {
    // SAFETY: socket takes integers only.
    cvt(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) })
}

/// setsockopt with an int value.
pub fn set_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> Result<(), i32> {
    // SAFETY: the option value is a live int of the size passed.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// getsockopt of an int value.
pub fn get_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> Result<libc::c_int, i32> {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into a live int.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(v)
}

/// A socket address in the kernel's layout, on the stack.
struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
}

impl RawAddr {
    fn new(addr: SocketAddr) -> RawAddr {
        // SAFETY: an all-zero sockaddr_storage is valid; the family-specific
        // struct written into it below fits (sockaddr_storage is the
        // largest).
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = match addr {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from_ne_bytes(a.ip().octets()),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_in fits in sockaddr_storage.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin)
                };
                std::mem::size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: sockaddr_in6 fits in sockaddr_storage.
                unsafe {
                    std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6)
                };
                std::mem::size_of::<libc::sockaddr_in6>()
            }
        };
        RawAddr {
            storage,
            len: len as libc::socklen_t,
        }
    }

    fn empty() -> RawAddr {
        RawAddr {
            // SAFETY: an all-zero sockaddr_storage is valid.
            storage: unsafe { std::mem::zeroed() },
            len: std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    fn ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }

    fn mut_ptr(&mut self) -> *mut libc::sockaddr {
        (&mut self.storage as *mut libc::sockaddr_storage).cast()
    }

    /// The address the kernel wrote, if it is IPv4 or IPv6.
    fn get(&self) -> Option<SocketAddr> {
        match self.storage.ss_family as libc::c_int {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a sockaddr_in for AF_INET.
                let sin: libc::sockaddr_in = unsafe {
                    std::ptr::read((&self.storage as *const libc::sockaddr_storage).cast())
                };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes()),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the kernel wrote a sockaddr_in6 for AF_INET6.
                let sin6: libc::sockaddr_in6 = unsafe {
                    std::ptr::read((&self.storage as *const libc::sockaddr_storage).cast())
                };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    sin6.sin6_flowinfo,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// Binds `fd` to `addr`.
pub fn bind(fd: RawFd, addr: SocketAddr) -> Result<(), i32> {
    let a = RawAddr::new(addr);
    // SAFETY: a live sockaddr of the length passed.
    cvt(unsafe { libc::bind(fd, a.ptr(), a.len) }).map(|_| ())
}

pub fn listen(fd: RawFd, backlog: libc::c_int) -> Result<(), i32> {
    // SAFETY: listen takes integers only.
    cvt(unsafe { libc::listen(fd, backlog) }).map(|_| ())
}

/// A listening TCP socket on `port` of every address: IPv6 dual-stack
/// where the kernel has IPv6, else IPv4. Never SO_REUSEPORT, so nothing
/// else can bind the same port and share its connections.
pub fn tcp_listener(port: u16) -> Result<RawFd, i32> {
    let (fd, addr) = match socket(libc::AF_INET6, libc::SOCK_STREAM, 0) {
        Ok(fd) => {
            set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0).inspect_err(|_| close(fd))?;
            (fd, SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port))
        }
        Err(libc::EAFNOSUPPORT) => (
            socket(libc::AF_INET, libc::SOCK_STREAM, 0)?,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ),
        Err(e) => return Err(e),
    };
    let r = set_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)
        .and_then(|_| bind(fd, addr))
        .and_then(|_| listen(fd, 4096));
    match r {
        Ok(()) => Ok(fd),
        Err(e) => {
            close(fd);
            Err(e)
        }
    }
}

/// A UDP socket on `port` of every address of one family that reports
/// each datagram's destination address (so replies can come from it).
/// Err(EAFNOSUPPORT) for IPv6 on a kernel without it.
pub fn udp_any(port: u16, v6: bool) -> Result<RawFd, i32> {
    let fd = socket(
        if v6 { libc::AF_INET6 } else { libc::AF_INET },
        libc::SOCK_DGRAM,
        0,
    )?;
    let r = if v6 {
        set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)
            .and_then(|_| set_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, 1))
            .and_then(|_| bind(fd, SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)))
    } else {
        set_int(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, 1)
            .and_then(|_| bind(fd, SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)))
    };
    match r {
        Ok(()) => Ok(fd),
        Err(e) => {
            close(fd);
            Err(e)
        }
    }
}

/// The socket's own address (for an accepted connection in the jail: the
/// destination the program connected to).
pub fn local_addr(fd: RawFd) -> Result<SocketAddr, i32> {
    let mut a = RawAddr::empty();
    // SAFETY: getsockname writes at most `len` bytes into the storage.
    cvt(unsafe { libc::getsockname(fd, a.mut_ptr(), &mut a.len) })?;
    a.get().ok_or(libc::EAFNOSUPPORT)
}

pub fn peer_addr(fd: RawFd) -> Result<SocketAddr, i32> {
    let mut a = RawAddr::empty();
    // SAFETY: getpeername writes at most `len` bytes into the storage.
    cvt(unsafe { libc::getpeername(fd, a.mut_ptr(), &mut a.len) })?;
    a.get().ok_or(libc::EAFNOSUPPORT)
}

/// accept4, non-blocking and close-on-exec.
pub fn accept(fd: RawFd) -> Result<RawFd, i32> {
    // SAFETY: null address pointers: the peer address is not wanted.
    cvt(unsafe {
        libc::accept4(
            fd,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    })
}

/// A non-blocking TCP socket connecting to `addr` (EINPROGRESS is success:
/// writability tells when it is done, SO_ERROR how it went).
pub fn connect_start(addr: SocketAddr) -> Result<RawFd, i32> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let fd = socket(domain, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0)?;
    let a = RawAddr::new(addr);
    // SAFETY: a live sockaddr of the length passed.
    let rc = unsafe { libc::connect(fd, a.ptr(), a.len) };
    if rc == 0 || errno() == libc::EINPROGRESS {
        return Ok(fd);
    }
    let e = errno();
    close(fd);
    Err(e)
}

/// The pending error of a socket (0: none), e.g. a finished connect's.
pub fn take_error(fd: RawFd) -> i32 {
    get_int(fd, libc::SOL_SOCKET, libc::SO_ERROR).unwrap_or_else(|e| e)
}

/// Reads what has arrived without consuming it (non-blocking).
pub fn peek(fd: RawFd, buf: &mut [u8]) -> Result<usize, i32> {
    // SAFETY: recv writes at most buf.len() bytes into buf.
    cvt_size(unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    })
}

/// recv, non-blocking.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> Result<usize, i32> {
    // SAFETY: recv writes at most buf.len() bytes into buf.
    cvt_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) })
}

/// send, non-blocking, never SIGPIPE.
pub fn send(fd: RawFd, buf: &[u8]) -> Result<usize, i32> {
    // SAFETY: send reads buf.len() bytes from buf.
    cvt_size(unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    })
}

/// Closes a TCP socket with a reset (RST) instead of an orderly FIN: a
/// denied connection fails at once, never hangs.
pub fn reset(fd: RawFd) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a live linger struct of the size passed; then close.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    close(fd);
}

pub fn shutdown_write(fd: RawFd) {
    // SAFETY: shutdown takes integers only.
    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
}

/// splice between a socket and a pipe, non-blocking; Ok(0) is EOF.
pub fn splice(from: RawFd, to: RawFd, len: usize) -> Result<usize, i32> {
    // SAFETY: null offsets (sockets and pipes have none).
    cvt_size(unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    })
}

/// A non-blocking close-on-exec pipe (the kernel's default size).
pub fn pipe() -> Result<(RawFd, RawFd), i32> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
    Ok((fds[0], fds[1]))
}

/// Grows a pipe to `size` bytes; its new size, or the errno (EPERM: over
/// the user's pipe budget).
pub fn grow_pipe(fd: RawFd, size: usize) -> Result<usize, i32> {
    // SAFETY: F_SETPIPE_SZ with an integer argument.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, size as libc::c_int) }).map(|n| n as usize)
}

/// The capacity of a pipe in bytes.
pub fn pipe_size(fd: RawFd) -> Result<usize, i32> {
    // SAFETY: F_GETPIPE_SZ takes no argument.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) }).map(|n| n as usize)
}

pub fn set_nonblocking(fd: RawFd) -> Result<(), i32> {
    // SAFETY: F_GETFL/F_SETFL with integer flags.
    let fl = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) }).map(|_| ())
}

pub fn epoll_create() -> Result<RawFd, i32> {
    // SAFETY: epoll_create1 takes flags only.
    cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
}

/// Adds (`add`) or changes the interest of `fd` in `ep`, with `token`.
pub fn epoll_ctl(ep: RawFd, fd: RawFd, events: u32, token: u64, add: bool) -> Result<(), i32> {
    let mut ev = libc::epoll_event { events, u64: token };
    let op = if add {
        libc::EPOLL_CTL_ADD
    } else {
        libc::EPOLL_CTL_MOD
    };
    // SAFETY: a live epoll_event.
    cvt(unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) }).map(|_| ())
}

/// Waits for events (EINTR: zero events).
pub fn epoll_wait(
    ep: RawFd,
    events: &mut [libc::epoll_event],
    timeout_ms: i32,
) -> Result<usize, i32> {
    // SAFETY: the kernel writes at most events.len() entries.
    let n = unsafe {
        libc::epoll_wait(
            ep,
            events.as_mut_ptr(),
            events.len() as libc::c_int,
            timeout_ms,
        )
    };
    if n < 0 {
        if errno() == libc::EINTR {
            return Ok(0);
        }
        return Err(errno());
    }
    Ok(n as usize)
}

/// Control-message room for one IP_PKTINFO or IPV6_PKTINFO.
#[repr(C, align(8))]
struct PktinfoBuf([u8; 64]);

/// recvmsg of one datagram: (length, sender, the address it was sent to).
pub fn recv_from_to(fd: RawFd, buf: &mut [u8]) -> Result<(usize, SocketAddr, Option<IpAddr>), i32> {
    let mut from = RawAddr::empty();
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = PktinfoBuf([0; 64]);
    // SAFETY: a zeroed msghdr is valid; its pointers are set to live
    // buffers below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = from.mut_ptr().cast();
    msg.msg_namelen = from.len;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = cbuf.0.len() as _;
    // SAFETY: msg points at live buffers for the duration of the call.
    let n = cvt_size(unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) })?;
    from.len = msg.msg_namelen;
    let sender = from.get().ok_or(libc::EAFNOSUPPORT)?;
    let mut to = None;
    // SAFETY: walking the control messages the kernel wrote, with the
    // libc macros that bound every step by msg_controllen; each payload is
    // read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IP && (*c).cmsg_type == libc::IP_PKTINFO {
                let pi: libc::in_pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                to = Some(IpAddr::V4(Ipv4Addr::from(pi.ipi_addr.s_addr.to_ne_bytes())));
            } else if (*c).cmsg_level == libc::IPPROTO_IPV6 && (*c).cmsg_type == libc::IPV6_PKTINFO
            {
                let pi: libc::in6_pktinfo = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                to = Some(IpAddr::V6(Ipv6Addr::from(pi.ipi6_addr.s6_addr)));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & libc::MSG_TRUNC != 0 {
        return Err(libc::EMSGSIZE);
    }
    Ok((n, sender, to))
}

/// sendmsg of one datagram to `to`, sent from `from` when given (the
/// address the request went to, so the client accepts the answer).
pub fn send_to_from(
    fd: RawFd,
    buf: &[u8],
    to: SocketAddr,
    from: Option<IpAddr>,
) -> Result<(), i32> {
    let dst = RawAddr::new(to);
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let mut cbuf = PktinfoBuf([0; 64]);
    // SAFETY: a zeroed msghdr is valid; its pointers are set to live
    // buffers below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = dst.ptr() as *mut libc::c_void;
    msg.msg_namelen = dst.len;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    match from {
        Some(IpAddr::V4(a)) => {
            let pi = libc::in_pktinfo {
                ipi_ifindex: 0,
                ipi_spec_dst: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            // SAFETY: the control buffer is aligned and large enough for
            // one cmsghdr with an in_pktinfo (CMSG_SPACE(12) = 32).
            unsafe {
                let len = std::mem::size_of::<libc::in_pktinfo>() as u32;
                msg.msg_control = cbuf.0.as_mut_ptr().cast();
                msg.msg_controllen = libc::CMSG_SPACE(len) as _;
                let c = libc::CMSG_FIRSTHDR(&msg);
                (*c).cmsg_level = libc::IPPROTO_IP;
                (*c).cmsg_type = libc::IP_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(len) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), pi);
            }
        }
        Some(IpAddr::V6(a)) => {
            let pi = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                ipi6_ifindex: 0,
            };
            // SAFETY: as above, for an in6_pktinfo (CMSG_SPACE(20) = 40).
            unsafe {
                let len = std::mem::size_of::<libc::in6_pktinfo>() as u32;
                msg.msg_control = cbuf.0.as_mut_ptr().cast();
                msg.msg_controllen = libc::CMSG_SPACE(len) as _;
                let c = libc::CMSG_FIRSTHDR(&msg);
                (*c).cmsg_level = libc::IPPROTO_IPV6;
                (*c).cmsg_type = libc::IPV6_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(len) as _;
                std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), pi);
            }
        }
        None => {}
    }
    // SAFETY: msg points at live buffers for the duration of the call.
    cvt_size(unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) })
        .map(|_| ())
}

/// A UDP socket connected to `addr` (replies from anyone else are
/// dropped by the kernel), non-blocking.
pub fn udp_connected(addr: SocketAddr) -> Result<RawFd, i32> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let fd = socket(domain, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK, 0)?;
    let a = RawAddr::new(addr);
    // SAFETY: a live sockaddr of the length passed.
    if unsafe { libc::connect(fd, a.ptr(), a.len) } < 0 {
        let e = errno();
        close(fd);
        return Err(e);
    }
    Ok(fd)
}

/// (SO_TYPE, SO_DOMAIN) of a socket.
pub fn kind(fd: RawFd) -> Result<(libc::c_int, libc::c_int), i32> {
    Ok((
        get_int(fd, libc::SOL_SOCKET, libc::SO_TYPE)?,
        get_int(fd, libc::SOL_SOCKET, libc::SO_DOMAIN)?,
    ))
}

/// Sends one prepared rtnetlink request (NLM_F_ACK set) and waits for the
/// kernel's answer. Allocation-free, for pid 1.
pub fn netlink_request(req: &[u8]) -> Result<(), i32> {
    let fd = socket(libc::AF_NETLINK, libc::SOCK_RAW, libc::NETLINK_ROUTE)?;
    let r = netlink_exchange(fd, req);
    close(fd);
    r
}

fn netlink_exchange(fd: RawFd, req: &[u8]) -> Result<(), i32> {
    // SAFETY: a zeroed sockaddr_nl addresses the kernel (pid 0).
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: sendto reads req.len() bytes and a live sockaddr_nl.
    cvt_size(unsafe {
        libc::sendto(
            fd,
            req.as_ptr().cast(),
            req.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    })?;
    let mut buf = [0u8; 512];
    loop {
        // SAFETY: recv writes at most buf.len() bytes into buf.
        let n = cvt_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) });
        let n = match n {
            Err(libc::EINTR) => continue,
            r => r?,
        };
        // Parsed by hand: this runs in pid 1 after fork, where the crate's
        // decoder (which allocates) may not run. The answer is one
        // nlmsghdr (len u32, type u16, flags u16, seq u32, pid u32) and,
        // for NLMSG_ERROR, an i32 error (0 = the acknowledgement).
        if n < 20 {
            return Err(libc::EPROTO);
        }
        let ty = u16::from_ne_bytes([buf[4], buf[5]]);
        if ty as libc::c_int == libc::NLMSG_ERROR {
            let e = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
            return if e == 0 { Ok(()) } else { Err(-e) };
        }
        if ty as libc::c_int == libc::NLMSG_DONE {
            return Ok(());
        }
    }
}

/// Asks the kernel to map only the pages of the binary and its libraries
/// that this process touches from now on (MADV_RANDOM turns off
/// fault-around, which maps up to 16 neighbours per fault), and unmaps the
/// code pages mapped so far: the network helper is a small loop inside a
/// large binary, and this keeps its RSS to the code it runs. The contents
/// of no mapping change. Allocates (reads /proc/self/maps).
pub fn fault_single_pages() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        let mut f = line.split_whitespace();
        let (Some(range), Some(perms), Some(_off), Some(_dev), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        if inode == "0" {
            continue; // anonymous: heap, stack
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // SAFETY: advice on a range that is mapped in this process (read
        // from its own maps); MADV_RANDOM changes no data.
        unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_RANDOM) };
        if perms == "r-xp" {
            // Code is never written (r-x, private): dropping its mapped
            // pages loses nothing; those still needed fault back one by
            // one. (Never on r--p: relocated data lives there.)
            // SAFETY: as above; the range holds only unmodified file pages.
            unsafe { libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED) };
        }
    }
}

/// Every address of this host's interfaces (getifaddrs; allocates, for
/// the helper before it confines itself).
pub fn host_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getifaddrs returned.
        let a = unsafe { (*cur).ifa_addr };
        if !a.is_null() {
            // SAFETY: ifa_addr points at a sockaddr of the family it names.
            let fam = unsafe { (*a).sa_family } as libc::c_int;
            let mut raw = RawAddr::empty();
            let size = match fam {
                libc::AF_INET => std::mem::size_of::<libc::sockaddr_in>(),
                libc::AF_INET6 => std::mem::size_of::<libc::sockaddr_in6>(),
                _ => 0,
            };
            if size > 0 {
                // SAFETY: copying a sockaddr of its family's size.
                unsafe {
                    std::ptr::copy_nonoverlapping(a.cast::<u8>(), raw.mut_ptr().cast::<u8>(), size)
                };
                if let Some(s) = raw.get() {
                    out.push(s.ip());
                }
            }
        }
        // SAFETY: walking the list.
        cur = unsafe { (*cur).ifa_next };
    }
    // SAFETY: freeing the list getifaddrs returned.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_the_kernel_layout() {
        for a in [
            "127.0.0.1:53".parse::<SocketAddr>().unwrap(),
            "[2001:db8::1]:443".parse().unwrap(),
        ] {
            let r = RawAddr::new(a);
            assert_eq!(r.get(), Some(a));
        }
    }

    #[test]
    fn a_listener_reports_the_address_connected_to() {
        let l = socket(libc::AF_INET, libc::SOCK_STREAM, 0).unwrap();
        bind(l, "127.0.0.1:0".parse().unwrap()).unwrap();
        listen(l, 8).unwrap();
        let addr = local_addr(l).unwrap();
        let c = connect_start(addr).unwrap();
        let mut p = libc::pollfd {
            fd: c,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        unsafe { libc::poll(&mut p, 1, 5000) };
        assert_eq!(take_error(c), 0);
        let a = accept(l).unwrap();
        assert_eq!(local_addr(a).unwrap(), addr);
        assert_eq!(peer_addr(a).unwrap(), local_addr(c).unwrap());
        assert_eq!(send(c, b"hi").unwrap(), 2);
        let mut buf = [0u8; 8];
        let mut n = 0;
        for _ in 0..100 {
            if let Ok(k) = peek(a, &mut buf) {
                n = k;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(&buf[..n], b"hi");
        assert_eq!(recv(a, &mut buf).unwrap(), 2, "peek consumed nothing");
        reset(c);
        for fd in [a, l] {
            close(fd);
        }
    }

    #[test]
    fn datagrams_carry_their_destination_and_replies_come_from_it() {
        let s = udp_any(0, false).unwrap();
        let port = local_addr(s).unwrap().port();
        let c = udp_connected(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)).unwrap();
        send(c, b"q").unwrap();
        let mut buf = [0u8; 16];
        let mut got = None;
        for _ in 0..100 {
            if let Ok(r) = recv_from_to(s, &mut buf) {
                got = Some(r);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let (n, from, to) = got.unwrap();
        assert_eq!(
            (&buf[..n], to),
            (&b"q"[..], Some(Ipv4Addr::LOCALHOST.into()))
        );
        send_to_from(s, b"a", from, to).unwrap();
        let mut n = Err(0);
        for _ in 0..100 {
            n = recv(c, &mut buf);
            if n.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(n, Ok(1));
        close(s);
        close(c);
    }
}
