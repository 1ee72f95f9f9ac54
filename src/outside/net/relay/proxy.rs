//! The upstream HTTP proxy client of the network helper (outside the
//! jail): a flow that goes through the proxy (HTTPS_PROXY) first sends
//! `CONNECT NAME:PORT`, then reads the proxy's reply head exactly, leaving
//! whatever follows for the relay. Anything but a 200 fails the flow with
//! the proxy's status line.

use std::net::SocketAddr;
use std::os::fd::RawFd;

use super::flow::State;
use super::{errtext, say, Relay};
use crate::outside::net::policy;
use crate::sys::net as sn;

impl Relay {
    /// CONNECT through the upstream proxy: send the request, read the
    /// reply head (exactly, leaving whatever follows for the relay).
    pub(super) fn proxy_step(&mut self, slot: usize) {
        let Some(c) = self.conn(slot) else { return };
        if let State::ProxySend(mut off) = c.state {
            while off < c.connect_req.len() {
                match sn::send(c.up, &c.connect_req[off..]) {
                    Ok(n) => off += n,
                    Err(libc::EAGAIN) => {
                        c.state = State::ProxySend(off);
                        return;
                    }
                    Err(_) => {
                        self.proxy_failed(slot, "the proxy closed the connection");
                        return;
                    }
                }
            }
            c.state = State::ProxyRecv;
        }
        let Some(c) = self.conn(slot) else { return };
        match read_reply(c.up) {
            Reply::Wait => {}
            Reply::Failed(why) => self.proxy_failed(slot, &why),
            Reply::Done => self.start_relay(slot),
        }
    }

    pub(super) fn proxy_failed(&mut self, slot: usize, why: &str) {
        if let Some(c) = self.conn(slot) {
            let (name, port) = (c.name.clone(), c.dst.port());
            say(self
                .s
                .report
                .unreachable(&name, port, &format!("via the proxy: {why}")));
        }
        self.close_conn(slot, true);
    }
}

/// The CONNECT request for a flow allowed for `name` to `to` (an address
/// allowed as such, whose name is the address, is asked for as one).
pub(super) fn connect_request(name: &str, to: SocketAddr) -> Vec<u8> {
    let authority = match to.ip().to_string() == name {
        true => to.to_string(),
        false => format!("{name}:{}", to.port()),
    };
    format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").into_bytes()
}

/// The longest reply head taken from a proxy.
const HEAD_MAX: usize = 4096;

/// What the proxy's reply so far says.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Head {
    /// The head has not ended yet.
    NeedMore,
    /// No end within `HEAD_MAX` bytes.
    TooLong,
    /// Not a 200: the status line (unfiltered).
    Refused(String),
    /// A 200 whose head is this long (the tunnel starts after it).
    Ok(usize),
}

/// Reads a reply head from the first bytes the proxy sent (`buf`, at
/// most `HEAD_MAX` of them).
pub(super) fn parse_head(buf: &[u8]) -> Head {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return match buf.len() >= HEAD_MAX {
            true => Head::TooLong,
            false => Head::NeedMore,
        };
    };
    if !(buf.starts_with(b"HTTP/1.1 200") || buf.starts_with(b"HTTP/1.0 200")) {
        let line = &buf[..buf.iter().position(|&b| b == b'\r').unwrap_or(0)];
        return Head::Refused(String::from_utf8_lossy(line).into_owned());
    }
    Head::Ok(end + 4)
}

/// Where reading the proxy's reply stands.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reply {
    /// More bytes must come.
    Wait,
    /// The head was a 200 and is consumed: what follows is the tunnel's.
    Done,
    /// The flow fails: why.
    Failed(String),
}

/// Peeks at the proxy's reply on `up` and, once its head is complete and
/// a 200, consumes exactly the head.
pub(super) fn read_reply(up: RawFd) -> Reply {
    let mut head = [0u8; HEAD_MAX];
    let n = match sn::peek(up, &mut head) {
        Ok(0) => return Reply::Failed("the proxy closed the connection".into()),
        Ok(n) => n,
        Err(libc::EAGAIN) => return Reply::Wait,
        Err(e) => return Reply::Failed(errtext(e)),
    };
    match parse_head(&head[..n]) {
        Head::NeedMore => Reply::Wait,
        Head::TooLong => Reply::Failed("the proxy's reply is too long".into()),
        Head::Refused(first) => {
            Reply::Failed(format!("the proxy answered {}", policy::printable(&first)))
        }
        Head::Ok(len) => {
            let mut sink = [0u8; HEAD_MAX];
            match sn::recv(up, &mut sink[..len]) == Ok(len) {
                true => Reply::Done,
                false => Reply::Failed("short read from the proxy".into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    use super::super::flow::{Conn, Gate};
    use super::super::testkit::{self, read_some, settle};
    use super::super::{Slot, EV_IN};
    use super::*;

    #[test]
    fn the_request_names_the_flow_and_an_address_as_itself() {
        let to: SocketAddr = "198.51.100.7:443".parse().expect("addr");
        assert_eq!(
            connect_request("example.com", to),
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        );
        assert_eq!(
            connect_request("198.51.100.7", to),
            b"CONNECT 198.51.100.7:443 HTTP/1.1\r\nHost: 198.51.100.7:443\r\n\r\n"
        );
        let v6: SocketAddr = "[2001:db8::1]:8443".parse().expect("addr");
        assert_eq!(
            connect_request("2001:db8::1", v6),
            b"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n"
        );
    }

    #[test]
    fn reply_heads_are_read_exactly() {
        assert_eq!(parse_head(b""), Head::NeedMore);
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n"), Head::NeedMore);
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n\r\n"), Head::Ok(19));
        assert_eq!(
            parse_head(b"HTTP/1.0 200 Connection established\r\nVia: x\r\n\r\nTLS..."),
            Head::Ok(47)
        );
        assert_eq!(
            parse_head(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"),
            Head::Refused("HTTP/1.1 407 Proxy Authentication Required".into())
        );
        assert_eq!(parse_head(b"HTTP/1.1 2000\r\n\r\n"), Head::Ok(17));
        assert_eq!(parse_head(b"\r\n\r\n"), Head::Refused(String::new()));
        assert_eq!(parse_head(&[b'x'; HEAD_MAX - 1]), Head::NeedMore);
        assert_eq!(parse_head(&[b'x'; HEAD_MAX]), Head::TooLong);
    }

    /// A fake proxy on loopback that reads one request head, answers
    /// `reply` and keeps the connection open a moment.
    fn fake_proxy(reply: &'static [u8]) -> (SocketAddr, std::thread::JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().expect("accept");
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut req = Vec::new();
            let mut b = [0u8; 512];
            while !req.ends_with(b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
            }
            let _ = s.write_all(reply);
            std::thread::sleep(Duration::from_millis(300));
            req
        });
        (addr, t)
    }

    #[test]
    fn read_reply_consumes_the_head_and_leaves_the_tunnel() {
        let (addr, t) = fake_proxy(b"HTTP/1.1 200 Connection established\r\n\r\nTUNNEL");
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(b"CONNECT a:1 HTTP/1.1\r\n\r\n").expect("write");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
        let until = Instant::now() + Duration::from_secs(5);
        s.set_nonblocking(true).expect("nonblocking");
        let mut r = read_reply(fd);
        while r == Reply::Wait && Instant::now() < until {
            settle();
            r = read_reply(fd);
        }
        assert_eq!(r, Reply::Done);
        s.set_nonblocking(false).expect("blocking");
        assert_eq!(read_some(&mut s, 6).0, b"TUNNEL");
        t.join().expect("proxy");
    }

    #[test]
    fn read_reply_fails_on_a_refusal_and_on_a_close() {
        let (addr, t) = fake_proxy(b"HTTP/1.1 403 Forbidden\x1b[2J\r\n\r\n");
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(b"CONNECT a:1 HTTP/1.1\r\n\r\n").expect("write");
        std::thread::sleep(Duration::from_millis(100));
        s.set_nonblocking(true).expect("nonblocking");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
        match read_reply(fd) {
            Reply::Failed(why) => {
                // The status line as `policy::printable` shows it.
                let line = r"the proxy answered HTTP/1.1\x20403\x20Forbidden\x1b[2J";
                assert_eq!(why, line);
                assert!(!why.contains('\x1b'), "printed as is: {why:?}");
            }
            other => panic!("{other:?}"),
        }
        t.join().expect("proxy");
        let (addr, t) = fake_proxy(b"");
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(b"CONNECT a:1 HTTP/1.1\r\n\r\n").expect("write");
        t.join().expect("proxy");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
        assert_eq!(
            read_reply(fd),
            Reply::Failed("the proxy closed the connection".into())
        );
    }

    /// A flow to `example.com:443` through the fake proxy at `proxy`:
    /// (slot, the client's far end).
    fn via_proxy(r: &mut Relay, proxy: SocketAddr) -> (usize, TcpStream) {
        let (c, cfar) = testkit::tcp_pair();
        let up = sn::connect_start(proxy).expect("connect");
        let to: SocketAddr = "198.51.100.7:443".parse().expect("addr");
        let conn = Conn {
            client: c,
            up,
            dst: to,
            name: "example.com".into(),
            state: State::Connecting,
            since: Instant::now(),
            dirs: None,
            readable: [true; 2],
            writable: [true; 2],
            connect_req: connect_request("example.com", to),
            gate: Gate::Open,
            client_done: false,
        };
        let slot = r.alloc(Slot::Conn(Box::new(conn)));
        assert!(r.watch_stream(c, slot, 0, true) && r.watch_stream(up, slot, 1, true));
        settle();
        r.on_conn(slot, 1, EV_IN);
        (slot, cfar)
    }

    #[test]
    fn a_flow_through_the_proxy_asks_connect_then_relays() {
        let (addr, t) = fake_proxy(b"HTTP/1.1 200 OK\r\n\r\nserver-first");
        let (mut r, _chan) = testkit::relay(testkit::rules(&[]));
        let (slot, mut cfar) = via_proxy(&mut r, addr);
        let until = Instant::now() + Duration::from_secs(5);
        while !matches!(r.conn(slot).map(|c| &c.state), Some(State::Relay) | None)
            && Instant::now() < until
        {
            settle();
            r.on_conn(slot, 1, EV_IN);
        }
        assert!(matches!(r.conn(slot).map(|c| &c.state), Some(State::Relay)));
        assert_eq!(read_some(&mut cfar, 12).0, b"server-first");
        let req = t.join().expect("proxy");
        assert_eq!(
            req,
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        );
    }

    #[test]
    fn a_refusing_proxy_resets_the_client() {
        let (addr, t) = fake_proxy(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        let (mut r, _chan) = testkit::relay(testkit::rules(&[]));
        let (slot, mut cfar) = via_proxy(&mut r, addr);
        let until = Instant::now() + Duration::from_secs(5);
        while r.conn(slot).is_some() && Instant::now() < until {
            settle();
            r.on_conn(slot, 1, EV_IN);
        }
        assert!(r.conn(slot).is_none());
        assert_eq!(read_some(&mut cfar, 1).1, Some(ErrorKind::ConnectionReset));
        t.join().expect("proxy");
    }
}
