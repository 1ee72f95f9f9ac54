//! The upstream resolver, in the network helper (outside the jail): a
//! connected UDP socket made on first use (so an unreachable server fails
//! lookups with one line, never the start), retries and time limits, TCP
//! after a truncated answer, and resolv.conf followed while the helper
//! runs. Answers pin the addresses of allowed names (`policy::Pins`).

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::dns_jail::DNS_LIMIT;
use super::{errtext, say, token, Relay, Slot, Timer, EV_IN};
use crate::outside::net::dns;
use crate::outside::net::report::Failure;
use crate::sys::{self, net as sn};

/// How often resolv.conf is read again at most (on a lookup).
const REREAD: Duration = Duration::from_secs(1);

/// A query asked again over TCP (its UDP answer was truncated).
pub(super) struct UpTcp {
    pub(super) fd: RawFd,
    pub(super) id: u16,
    pub(super) out: Vec<u8>,
    pub(super) sent: usize,
    pub(super) inbuf: Vec<u8>,
}

impl Relay {
    /// The upstream resolver's socket, connected on first use (and again
    /// after a failure or a change of resolv.conf). Err: why no server can
    /// be asked, naming it.
    pub(super) fn upstream_fd(&mut self) -> Result<(RawFd, SocketAddr), String> {
        self.follow_resolv_conf(false);
        let Some(up) = &self.s.upstream else {
            return Err("no DNS server".into());
        };
        let Some(addr) = up.addr else {
            let from = up
                .follow
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            return Err(format!(
                "no DNS server: {from} names none (give one with --dns-upstream IP:PORT)"
            ));
        };
        if self.up_fd >= 0 {
            return Ok((self.up_fd, addr));
        }
        let fd = sn::udp_connected(addr)
            .map_err(|e| format!("cannot reach the DNS server {addr} ({})", errtext(e)))?;
        let _ = sn::set_nonblocking(fd);
        let slot = self.alloc(Slot::Upstream { fd });
        if sn::epoll_ctl(self.ep, fd, EV_IN, token(slot, self.gens[slot], 0), true).is_err() {
            sys::close(fd);
            self.release(slot);
            return Err(format!("cannot watch the socket to the DNS server {addr}"));
        }
        self.up_fd = fd;
        self.up_slot = slot;
        Ok((fd, addr))
    }

    /// Closes the upstream socket (the next lookup connects again: the
    /// route may be back, or resolv.conf name another server).
    pub(super) fn drop_upstream(&mut self) {
        if self.up_fd >= 0 {
            sys::close(self.up_fd);
            self.up_fd = -1;
            if self.up_slot < self.slots.len() {
                self.slots[self.up_slot] = Slot::Free;
                self.free.push(self.up_slot);
            }
            self.up_slot = usize::MAX;
        }
    }

    /// Reads resolv.conf again (at most every `REREAD`, unless `now`):
    /// another first nameserver is asked from then on.
    pub(super) fn follow_resolv_conf(&mut self, now: bool) {
        let Some(path) = self.s.upstream.as_ref().and_then(|u| u.follow.clone()) else {
            return;
        };
        if !now && self.up_read.elapsed() < REREAD {
            return;
        }
        self.up_read = Instant::now();
        // Unreadable or being rewritten: keep the server we have.
        let Ok(text) = std::fs::read_to_string(&path) else {
            return;
        };
        let addr = crate::outside::net::first_nameserver(&text);
        let Some(up) = self.s.upstream.as_mut() else {
            return;
        };
        if addr == up.addr || addr.is_none() && text.trim().is_empty() {
            return;
        }
        let was = up.addr;
        up.addr = addr;
        self.up_silent = false;
        self.drop_upstream();
        say(self.s.report.upstream_changed(was, addr, &path));
    }

    /// Fails every query waiting upstream at once, with `why`.
    pub(super) fn fail_all_pending(&mut self, why: &str) {
        let ids: Vec<u16> = self.pending.keys().copied().collect();
        for id in ids {
            self.dns_fail(id, Failure::Unreachable(why.to_string()));
        }
    }
    pub(super) fn on_upstream_udp(&mut self, fd: RawFd) {
        let mut buf = [0u8; 65535];
        loop {
            match sn::recv(fd, &mut buf) {
                Ok(n) => {
                    let msg = buf[..n].to_vec();
                    self.upstream_answer(&msg, false);
                }
                Err(libc::EINTR) => continue,
                Err(libc::EAGAIN) => return,
                // ICMP came back (nothing listens there, no route): every
                // query waiting there fails now rather than at its timeout.
                Err(e) => {
                    let addr = self.s.upstream.as_ref().and_then(|u| u.addr);
                    let why = match addr {
                        Some(a) => format!("cannot reach the DNS server {a} ({})", errtext(e)),
                        None => format!("cannot reach the DNS server ({})", errtext(e)),
                    };
                    self.drop_upstream();
                    self.fail_all_pending(&why);
                    return;
                }
            }
        }
    }

    /// An answer from upstream (UDP, or TCP after truncation).
    pub(super) fn upstream_answer(&mut self, msg: &[u8], tcp: bool) {
        if msg.len() < 2 {
            return;
        }
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        let Some(w) = self.pending.get(&id) else {
            return;
        };
        let Some(m) = dns::parse_answer(msg, &w.p) else {
            return;
        };
        self.up_silent = false;
        if m.truncated() && !tcp {
            self.upstream_tcp(id);
            return;
        }
        let Some(w) = self.pending.remove(&id) else {
            return;
        };
        self.done_waiting(&w);
        use hickory_proto::op::ResponseCode as R;
        let rcode = match m.response_code() {
            R::NoError => None,
            R::NXDomain => Some("NXDOMAIN".to_string()),
            R::ServFail => Some("SERVFAIL".to_string()),
            R::Refused => Some("REFUSED".to_string()),
            R::NotImp => Some("NOTIMP".to_string()),
            R::FormErr => Some("FORMERR".to_string()),
            other => Some(format!("rcode {}", u16::from(other))),
        };
        match rcode {
            None => self.s.report.name_ok(&w.p.name),
            // A name below a wildcard (or under `learn`) that does not
            // exist is the program's business, not a failure to report.
            Some(rcode) if rcode == "NXDOMAIN" && !self.s.rules.named(&w.p.name) => {}
            Some(rcode) => {
                let server = self.server_text();
                say(self
                    .s
                    .report
                    .name_failed(&w.p.name, Failure::Answered { server, rcode }));
            }
        }
        let a = dns::on_answer(&m, &w.p, &self.s.host);
        for ip in &a.pins {
            self.pins.pin(*ip, &w.p.name);
        }
        if !a.pins.is_empty() {
            say(self.s.report.resolved(&w.p.name, a.pins.len()));
        } else if let Some((_, why)) = a.floored.first() {
            say(self.s.report.floored(&w.p.name, why));
        }
        self.answer(w.client, a.reply, Some(&w.p));
    }

    pub(super) fn dns_timeout(&mut self, id: u16) {
        let Some(w) = self.pending.get_mut(&id) else {
            return;
        };
        if w.since.elapsed() >= w.limit {
            self.up_silent = true;
            let server = self.server_text();
            self.dns_fail(id, Failure::Timeout { server });
            return;
        }
        let retry = !w.retried;
        w.retried = true;
        let since = w.since;
        if retry {
            // To the server of now: resolv.conf may have changed.
            let query = w.p.upstream_query.clone();
            if let Ok((fd, _)) = self.upstream_fd() {
                let _ = sn::send(fd, &query);
            }
        }
        let limit = self.pending.get(&id).map_or(DNS_LIMIT, |w| w.limit);
        let left = limit.saturating_sub(since.elapsed());
        self.timer(left, Timer::Dns(id));
    }

    /// The upstream server, for messages.
    pub(super) fn server_text(&self) -> String {
        match self.s.upstream.as_ref().and_then(|u| u.addr) {
            Some(a) => a.to_string(),
            None => "(none)".into(),
        }
    }

    /// Answers a query that failed upstream SERVFAIL, and notes why.
    pub(super) fn dns_fail(&mut self, id: u16, why: Failure) {
        if let Some(w) = self.pending.remove(&id) {
            self.done_waiting(&w);
            say(self.s.report.name_failed(&w.p.name, why));
            let bytes = dns::servfail(&w.p);
            self.answer(w.client, bytes, Some(&w.p));
        }
    }

    /// `dns_fail` for the TCP retry.
    pub(super) fn tcp_fail(&mut self, id: u16) {
        let why = format!(
            "the DNS server {} gave no answer over TCP",
            self.server_text()
        );
        self.dns_fail(id, Failure::Unreachable(why));
    }

    /// Asks upstream again over TCP (the UDP answer was truncated).
    pub(super) fn upstream_tcp(&mut self, id: u16) {
        let addr = self.s.upstream.as_ref().and_then(|u| u.addr);
        let (Some(addr), Some(w)) = (addr, self.pending.get(&id)) else {
            return;
        };
        let q = &w.p.upstream_query;
        let mut out = (q.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(q);
        let Ok(fd) = sn::connect_start(addr) else {
            self.tcp_fail(id);
            return;
        };
        let slot = self.alloc(Slot::UpTcp(Box::new(UpTcp {
            fd,
            id,
            out,
            sent: 0,
            inbuf: Vec::new(),
        })));
        let gen = self.gens[slot];
        if !self.watch_stream(fd, slot, 0, true) {
            self.close_up_tcp(slot);
            self.tcp_fail(id);
            return;
        }
        self.timer(DNS_LIMIT, Timer::Slot(slot, gen));
    }

    pub(super) fn on_up_tcp(&mut self, slot: usize) {
        let Slot::UpTcp(u) = &mut self.slots[slot] else {
            return;
        };
        while u.sent < u.out.len() {
            match sn::send(u.fd, &u.out[u.sent..]) {
                Ok(n) => u.sent += n,
                Err(libc::EAGAIN | libc::ENOTCONN) => return,
                Err(_) => {
                    let id = u.id;
                    self.close_up_tcp(slot);
                    self.tcp_fail(id);
                    return;
                }
            }
        }
        let mut buf = [0u8; 16384];
        let mut eof = false;
        loop {
            match sn::recv(u.fd, &mut buf) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => {
                    if u.inbuf.len() + n > 2 + 65535 {
                        eof = true;
                        break;
                    }
                    u.inbuf.extend_from_slice(&buf[..n]);
                }
                Err(libc::EAGAIN) => break,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        let id = u.id;
        if let Some(msg) = framed_answer(&u.inbuf) {
            let msg = msg.to_vec();
            self.close_up_tcp(slot);
            self.upstream_answer(&msg, true);
            // Not answered (did not match): fail it.
            if self.pending.contains_key(&id) {
                self.tcp_fail(id);
            }
            return;
        }
        if eof {
            self.close_up_tcp(slot);
            self.tcp_fail(id);
        }
    }

    pub(super) fn close_up_tcp(&mut self, slot: usize) {
        if let Slot::UpTcp(u) = std::mem::replace(&mut self.slots[slot], Slot::Free) {
            sys::close(u.fd);
            self.release(slot);
        }
    }
}

/// The first complete message (after its two-byte big-endian length) in
/// what the upstream server sent over TCP; None while it is partial.
pub(super) fn framed_answer(inbuf: &[u8]) -> Option<&[u8]> {
    let len = usize::from(u16::from_be_bytes([*inbuf.first()?, *inbuf.get(1)?]));
    inbuf.get(2..2 + len)
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream, UdpSocket};
    use std::time::Duration;

    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record};

    use super::super::testkit::{self, dns_parse, dns_query, read_framed, send, settle};
    use super::super::{Relay, Upstream};
    use super::*;
    use crate::config::domain::Domain;
    use crate::config::spec::NetMode;
    use crate::outside::net::policy::Rules;

    const PINNED: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

    #[test]
    fn a_framed_answer_is_taken_once_whole() {
        assert_eq!(framed_answer(b""), None);
        assert_eq!(framed_answer(b"\x00"), None);
        assert_eq!(framed_answer(b"\x00\x03ab"), None);
        assert_eq!(framed_answer(b"\x00\x03abc"), Some(&b"abc"[..]));
        assert_eq!(framed_answer(b"\x00\x03abcdef"), Some(&b"abc"[..]));
        assert_eq!(framed_answer(b"\x00\x00"), Some(&b""[..]));
    }

    /// A relay allowing `example.com`, asking the resolver at `up`.
    fn relay_to(up: SocketAddr) -> Relay {
        let rules = Rules::new(
            NetMode::Allowlist,
            &[Domain::parse("example.com").expect("a domain")],
            &[],
            &[443],
            &[],
        );
        let (mut r, _chan) = testkit::relay(rules);
        r.s.upstream = Some(Upstream {
            addr: Some(up),
            follow: None,
        });
        r
    }

    /// Asks `example.com` over a DNS-over-TCP client of `r`: the client's
    /// far end.
    fn ask(r: &mut Relay) -> TcpStream {
        let (fd, mut far) = testkit::tcp_pair();
        let q = dns_query("example.com", 0x1234);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        send(&mut far, &framed);
        settle();
        r.new_dns_tcp(fd);
        far
    }

    /// The answer to `query` an upstream server gives: `PINNED`, or
    /// only the truncation bit.
    fn answer_to(query: &[u8], truncated: bool) -> Vec<u8> {
        let q = dns_parse(query);
        let mut m = Message::new();
        m.set_id(q.id()).set_message_type(MessageType::Response);
        m.set_recursion_desired(true).set_recursion_available(true);
        m.add_queries(q.queries().to_vec());
        if truncated {
            m.set_truncated(true);
        } else {
            let name = q.queries()[0].name().clone();
            m.add_answer(Record::from_rdata(name, 60, RData::A(A(PINNED))));
        }
        m.to_vec().expect("encode")
    }

    #[test]
    fn an_allowed_name_is_asked_upstream_answered_and_pinned() {
        let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut r = relay_to(server.local_addr().expect("addr"));
        let mut client = ask(&mut r);
        let mut buf = [0u8; 4096];
        let (n, from) = server.recv_from(&mut buf).expect("the query upstream");
        let up = dns_parse(&buf[..n]);
        assert_eq!(up.queries()[0].name().to_ascii(), "example.com.");
        assert_eq!(r.pending.len(), 1);
        server
            .send_to(&answer_to(&buf[..n], false), from)
            .expect("answer");
        settle();
        r.on_upstream_udp(r.up_fd);
        let m = read_framed(&mut client);
        assert_eq!((m.id(), m.response_code()), (0x1234, ResponseCode::NoError));
        assert_eq!(m.answers()[0].data(), &RData::A(A(PINNED)));
        assert!(r
            .pins
            .names(IpAddr::V4(PINNED))
            .contains(&"example.com".to_string()));
        assert!(r.pending.is_empty());
    }

    #[test]
    fn an_unreachable_server_fails_the_lookup_at_once() {
        // A port nothing listens on: the kernel answers ICMP, at once.
        let gone = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = gone.local_addr().expect("addr");
        drop(gone);
        let mut r = relay_to(addr);
        let mut client = ask(&mut r);
        settle();
        r.on_upstream_udp(r.up_fd);
        let m = read_framed(&mut client);
        assert_eq!(
            (m.id(), m.response_code()),
            (0x1234, ResponseCode::ServFail)
        );
        assert!(r.pending.is_empty());
        assert_eq!(r.up_fd, -1, "the next lookup connects again");
    }

    #[test]
    fn a_silent_server_times_out_and_then_costs_less_each_time() {
        let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let mut r = relay_to(server.local_addr().expect("addr"));
        let mut client = ask(&mut r);
        let id = *r.pending.keys().next().expect("a query waiting");
        assert_eq!(r.pending[&id].limit, DNS_LIMIT);
        if let Some(w) = r.pending.get_mut(&id) {
            w.since -= DNS_LIMIT;
        }
        r.dns_timeout(id);
        let m = read_framed(&mut client);
        assert_eq!(
            (m.id(), m.response_code()),
            (0x1234, ResponseCode::ServFail)
        );
        assert!(r.up_silent);
        let _again = ask(&mut r);
        let id = *r.pending.keys().next().expect("a query waiting");
        assert!(r.pending[&id].limit < DNS_LIMIT);
    }

    #[test]
    fn a_truncated_answer_is_asked_again_over_tcp() {
        let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let addr = server.local_addr().expect("addr");
        let tcp = TcpListener::bind(addr).expect("bind TCP on the same port");
        let mut r = relay_to(addr);
        let mut client = ask(&mut r);
        let mut buf = [0u8; 4096];
        let (n, from) = server.recv_from(&mut buf).expect("the query upstream");
        server
            .send_to(&answer_to(&buf[..n], true), from)
            .expect("answer");
        let tcp_server = std::thread::spawn(move || {
            let (mut s, _) = tcp.accept().expect("accept");
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut len = [0u8; 2];
            s.read_exact(&mut len).expect("length");
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
            s.read_exact(&mut q).expect("query");
            let a = answer_to(&q, false);
            let mut out = (a.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(&a);
            s.write_all(&out).expect("answer");
        });
        settle();
        r.on_upstream_udp(r.up_fd);
        let up_tcp = |r: &Relay| (0..r.slots.len()).find(|&i| matches!(r.slots[i], Slot::UpTcp(_)));
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while let Some(slot) = up_tcp(&r) {
            assert!(std::time::Instant::now() < until, "no TCP answer");
            r.on_up_tcp(slot);
            settle();
        }
        tcp_server.join().expect("TCP server");
        let m = read_framed(&mut client);
        assert_eq!((m.id(), m.response_code()), (0x1234, ResponseCode::NoError));
        assert_eq!(m.answers()[0].data(), &RData::A(A(PINNED)));
        assert!(r.pending.is_empty());
    }
}
