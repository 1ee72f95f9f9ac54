//! One direction of a relayed connection, in the network helper (outside
//! the jail): socket → pipe → socket with splice(), so the kernel moves
//! the bytes and they never enter this process. A direction that turns
//! out to be a bulk transfer gets a bigger pipe. The caller (`flow`)
//! keeps the readiness epoll reported and the gate's limit.

use std::os::fd::RawFd;

use crate::sys::net as sn;

/// Bytes one splice call moves at most (bounded by the pipe's size).
const SPLICE_LEN: usize = 1 << 20;
/// A direction that has moved this much is a bulk transfer: its pipe
/// grows from the kernel's default (64 KiB) to `BULK_PIPE`, so each
/// splice moves more. Only then: pipe buffers count against a per-user
/// budget (fs.pipe-user-pages-soft) that the user's other programs share.
const BULK_AFTER: u64 = 4 << 20;
const BULK_PIPE: usize = 1 << 20;

/// One direction of a relayed connection: its pipe and how far it got.
pub(super) struct Dir {
    pub(super) r: RawFd,
    pub(super) w: RawFd,
    /// Bytes in the pipe, and what it holds at most.
    pub(super) fill: usize,
    pub(super) cap: usize,
    /// Bytes moved so far (to tell a bulk transfer), and whether its
    /// pipe was grown (or tried).
    pub(super) moved: u64,
    pub(super) grown: bool,
    pub(super) eof: bool,
    pub(super) shut: bool,
}

impl Dir {
    pub(super) fn done(&self) -> bool {
        self.eof && self.fill == 0
    }
}

/// The two sockets of one direction and their known readiness.
pub(super) struct Ends {
    pub(super) src: RawFd,
    pub(super) dst: RawFd,
    pub(super) readable: bool,
    pub(super) writable: bool,
}

/// One direction of a relayed connection: src → pipe → dst, until
/// nothing moves, reading at most `limit` bytes from src. The bytes read
/// from src, or Err on a socket error (the caller resets both sides).
pub(super) fn pump_dir(d: &mut Dir, e: &mut Ends, limit: u64) -> Result<u64, i32> {
    let mut read = 0u64;
    loop {
        let mut moved = false;
        if d.fill > 0 && e.writable {
            match sn::splice(d.r, e.dst, d.fill) {
                Ok(0) => return Err(libc::EPIPE),
                Ok(n) => {
                    d.fill -= n;
                    moved = true;
                }
                Err(libc::EAGAIN) => e.writable = false,
                Err(libc::EINTR) => moved = true,
                Err(err) => return Err(err),
            }
        }
        let allowed = usize::try_from(limit - read).unwrap_or(usize::MAX);
        if !d.eof && e.readable && d.fill < d.cap && allowed > 0 {
            match sn::splice(e.src, d.w, SPLICE_LEN.min(d.cap - d.fill).min(allowed)) {
                Ok(0) => {
                    d.eof = true;
                    moved = true;
                }
                Ok(n) => {
                    d.fill += n;
                    d.moved += n as u64;
                    read += n as u64;
                    moved = true;
                    if d.moved >= BULK_AFTER && !d.grown {
                        d.grown = true;
                        // Best effort: over the user's budget it stays.
                        if let Ok(n) = sn::grow_pipe(d.w, BULK_PIPE) {
                            d.cap = n;
                        }
                    }
                }
                // With an empty pipe EAGAIN means the socket is empty;
                // otherwise the pipe may be out of slots (partly filled
                // pages): try again once it drained.
                Err(libc::EAGAIN) => {
                    if d.fill == 0 {
                        e.readable = false;
                    }
                }
                Err(libc::EINTR) => moved = true,
                Err(err) => return Err(err),
            }
        }
        if d.eof && d.fill == 0 {
            if !d.shut {
                sn::shutdown_write(e.dst);
                d.shut = true;
            }
            return Ok(read);
        }
        if !moved {
            return Ok(read);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{read_some, send, settle, tcp_pair};
    use super::*;
    use crate::sys;

    fn dir() -> Dir {
        let (r, w) = sn::pipe().expect("pipe");
        Dir {
            r,
            w,
            fill: 0,
            cap: sn::pipe_size(w).expect("pipe size"),
            moved: 0,
            grown: false,
            eof: false,
            shut: false,
        }
    }

    fn ends(src: RawFd, dst: RawFd) -> Ends {
        Ends {
            src,
            dst,
            readable: true,
            writable: true,
        }
    }

    #[test]
    fn bytes_move_and_the_end_is_passed_on() {
        let (a, mut afar) = tcp_pair();
        let (b, mut bfar) = tcp_pair();
        let mut d = dir();
        send(&mut afar, b"hello");
        afar.shutdown(std::net::Shutdown::Write).expect("shutdown");
        settle();
        let mut e = ends(a, b);
        assert_eq!(pump_dir(&mut d, &mut e, u64::MAX), Ok(5));
        assert!(d.done() && d.shut && d.moved == 5);
        assert_eq!(read_some(&mut bfar, 6), (b"hello".to_vec(), None));
        for fd in [a, b, d.r, d.w] {
            sys::close(fd);
        }
    }

    #[test]
    fn no_more_than_the_limit_is_read_and_an_empty_socket_stops_reading() {
        let (a, mut afar) = tcp_pair();
        let (b, mut bfar) = tcp_pair();
        let mut d = dir();
        send(&mut afar, b"0123456789");
        settle();
        let mut e = ends(a, b);
        assert_eq!(pump_dir(&mut d, &mut e, 4), Ok(4));
        assert_eq!(read_some(&mut bfar, 4), (b"0123".to_vec(), None));
        assert!(e.readable, "bytes are left in the socket");
        assert_eq!(pump_dir(&mut d, &mut e, 0), Ok(0));
        assert_eq!(pump_dir(&mut d, &mut e, u64::MAX), Ok(6));
        assert!(!e.readable, "EAGAIN on an empty pipe: the socket is empty");
        assert!(!d.eof);
        assert_eq!(read_some(&mut bfar, 6), (b"456789".to_vec(), None));
        for fd in [a, b, d.r, d.w] {
            sys::close(fd);
        }
    }

    #[test]
    fn a_full_destination_keeps_the_bytes_in_the_pipe() {
        let (a, mut afar) = tcp_pair();
        let (b, mut bfar) = tcp_pair();
        let mut d = dir();
        send(&mut afar, b"wait");
        settle();
        let mut e = ends(a, b);
        e.writable = false;
        assert_eq!(pump_dir(&mut d, &mut e, u64::MAX), Ok(4));
        assert_eq!(d.fill, 4);
        e.writable = true;
        assert_eq!(pump_dir(&mut d, &mut e, u64::MAX), Ok(0));
        assert_eq!(d.fill, 0);
        assert_eq!(read_some(&mut bfar, 4), (b"wait".to_vec(), None));
        for fd in [a, b, d.r, d.w] {
            sys::close(fd);
        }
    }

    #[test]
    fn a_reset_source_is_an_error() {
        let (a, afar) = tcp_pair();
        let (b, mut bfar) = tcp_pair();
        let mut d = dir();
        {
            use std::os::fd::IntoRawFd;
            sn::reset(afar.into_raw_fd());
        }
        settle();
        let mut e = ends(a, b);
        assert_eq!(pump_dir(&mut d, &mut e, u64::MAX), Err(libc::ECONNRESET));
        sys::close(b);
        assert_eq!(read_some(&mut bfar, 1), (Vec::new(), None));
        for fd in [a, d.r, d.w] {
            sys::close(fd);
        }
    }
}
