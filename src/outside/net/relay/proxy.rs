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
