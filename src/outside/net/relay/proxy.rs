//! The upstream HTTP proxy client of the network helper (outside the
//! jail): a flow that goes through the proxy (HTTPS_PROXY) first sends
//! `CONNECT NAME:PORT`, then reads the proxy's reply head exactly, leaving
//! whatever follows for the relay. Anything but a 200 fails the flow with
//! the proxy's status line.

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
        let up = c.up;
        let mut head = [0u8; 4096];
        let n = match sn::peek(up, &mut head) {
            Ok(0) => {
                self.proxy_failed(slot, "the proxy closed the connection");
                return;
            }
            Ok(n) => n,
            Err(libc::EAGAIN) => return,
            Err(e) => {
                self.proxy_failed(slot, &errtext(e));
                return;
            }
        };
        let Some(end) = head[..n].windows(4).position(|w| w == b"\r\n\r\n") else {
            if n == head.len() {
                self.proxy_failed(slot, "the proxy's reply is too long");
            }
            return;
        };
        let status_ok = head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200");
        if !status_ok {
            let first = String::from_utf8_lossy(
                &head[..head[..n].iter().position(|&b| b == b'\r').unwrap_or(0)],
            )
            .into_owned();
            self.proxy_failed(
                slot,
                &format!("the proxy answered {}", policy::printable(&first)),
            );
            return;
        }
        let mut sink = [0u8; 4096];
        if sn::recv(up, &mut sink[..end + 4]) != Ok(end + 4) {
            self.proxy_failed(slot, "short read from the proxy");
            return;
        }
        self.start_relay(slot);
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
