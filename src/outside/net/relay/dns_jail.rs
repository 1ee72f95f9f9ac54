//! DNS for the jail, in the network helper (outside the jail): queries
//! that come on the jail's port-53 sockets, over UDP and over TCP (two-
//! byte length framing, bounded client buffers, idle clients closed).
//! `dns` decides each one: answered here (NXDOMAIN for names not allowed,
//! stand-in addresses through a proxy) or asked upstream
//! (`dns_upstream`), and the answer goes back to the client that asked.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::{errtext, say, Relay, Slot, Timer};
use crate::outside::net::dns::{self, OnQuery, Pending};
use crate::outside::net::policy;
use crate::outside::net::report::Failure;
use crate::sys::{self, net as sn};

/// DNS: when to ask upstream again, and when to give up (SERVFAIL).
const DNS_RETRY: Duration = Duration::from_millis(1500);
pub(super) const DNS_LIMIT: Duration = Duration::from_secs(5);
/// After the server let a query time out, further queries fail this soon
/// without an answer (it is still asked: the first answer ends this), so
/// a firewalled resolver costs one wait, not one per lookup.
const DNS_LIMIT_SILENT: Duration = Duration::from_millis(700);
/// An idle DNS-over-TCP client is closed after this.
const DNS_TCP_IDLE: Duration = Duration::from_secs(10);
/// DNS queries waiting upstream at most.
const MAX_PENDING: usize = 1024;

/// A DNS-over-TCP client from the jail: its unread input, the answers
/// not yet sent, and how many of its queries wait upstream.
pub(super) struct DnsTcp {
    pub(super) fd: RawFd,
    pub(super) inbuf: Vec<u8>,
    pub(super) out: Vec<u8>,
    /// Queries of this client waiting upstream.
    pub(super) waiting: usize,
    pub(super) eof: bool,
}

/// Where an answer goes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Client {
    Udp {
        fd: RawFd,
        from: SocketAddr,
        to: Option<IpAddr>,
    },
    Tcp {
        slot: usize,
        gen: u32,
    },
}

/// A query waiting for the upstream server.
pub(super) struct Waiting {
    pub(super) p: Pending,
    pub(super) client: Client,
    pub(super) since: Instant,
    pub(super) retried: bool,
    /// When it fails (SERVFAIL) without an answer.
    pub(super) limit: Duration,
}

impl Relay {
    // ----------------------------------------------------------------- DNS

    pub(super) fn new_id(&self) -> u16 {
        loop {
            let mut b = [0u8; 2];
            // SAFETY: getrandom writes at most 2 bytes into b.
            unsafe { libc::getrandom(b.as_mut_ptr().cast(), 2, 0) };
            let id = u16::from_ne_bytes(b);
            if !self.pending.contains_key(&id) {
                return id;
            }
        }
    }

    /// One query from the jail, over UDP or TCP.
    pub(super) fn query(&mut self, msg: &[u8], client: Client) {
        let id = self.new_id();
        match dns::on_query(&self.s.rules, msg, id) {
            OnQuery::Drop => {}
            OnQuery::Reply { bytes, denied } => {
                if let Some((name, reason, quiet)) = denied {
                    say(self.s.report.denied_name(&name, &reason, quiet));
                }
                self.answer(client, bytes, None);
            }
            OnQuery::Forward(p) if self.s.rules.proxy => {
                // The proxy resolves names: answer with a stand-in address,
                // pinned to the name, and ask no one.
                let ip = self.stand_in(&p.name);
                if let Some(ip) = ip {
                    self.pins.pin(IpAddr::V4(ip), &p.name);
                    say(self.s.report.resolved(&p.name, 1));
                }
                let bytes = dns::stand_in(&p, ip);
                self.answer(client, bytes, Some(&p));
            }
            OnQuery::Forward(p) => {
                if self.pending.len() >= MAX_PENDING {
                    let bytes = dns::servfail(&p);
                    self.answer(client, bytes, None);
                    return;
                }
                // An unreachable server fails the lookup at once (SERVFAIL),
                // with one line naming it.
                let sent = self.upstream_fd().and_then(|(fd, addr)| {
                    match sn::send(fd, &p.upstream_query) {
                        Ok(_) | Err(libc::EAGAIN | libc::EINTR | libc::ENOBUFS) => Ok(()),
                        Err(e) => Err((e, addr)).map_err(|(e, addr)| {
                            format!("cannot reach the DNS server {addr} ({})", errtext(e))
                        }),
                    }
                });
                if let Err(why) = sent {
                    self.drop_upstream();
                    say(self
                        .s
                        .report
                        .name_failed(&p.name, Failure::Unreachable(why)));
                    let bytes = dns::servfail(&p);
                    self.answer(client, bytes, Some(&p));
                    return;
                }
                if let Client::Tcp { slot, .. } = client {
                    if let Slot::DnsTcp(t) = &mut self.slots[slot] {
                        t.waiting += 1;
                    }
                }
                let limit = if self.up_silent {
                    DNS_LIMIT_SILENT
                } else {
                    DNS_LIMIT
                };
                self.pending.insert(
                    id,
                    Waiting {
                        p: *p,
                        client,
                        since: Instant::now(),
                        retried: false,
                        limit,
                    },
                );
                self.timer(DNS_RETRY.min(limit), Timer::Dns(id));
            }
        }
    }

    /// The stand-in address of `name` (proxy mode), the same one each
    /// time; None once the range is used up.
    pub(super) fn stand_in(&mut self, name: &str) -> Option<std::net::Ipv4Addr> {
        if let Some(ip) = self.stand_ins.get(name) {
            return Some(*ip);
        }
        let (base, bits) = policy::SYNTHETIC;
        if self.next_stand_in >= (1u32 << (32 - bits)) - 1 {
            return None;
        }
        let ip = std::net::Ipv4Addr::from(u32::from(base) + self.next_stand_in);
        self.next_stand_in += 1;
        self.stand_ins.insert(name.to_string(), ip);
        Some(ip)
    }

    /// Sends a reply to a client; `p` for fitting it into UDP.
    pub(super) fn answer(&mut self, client: Client, bytes: Vec<u8>, p: Option<&Pending>) {
        match client {
            Client::Udp { fd, from, to } => {
                let bytes = match p {
                    Some(p) => dns::fit_udp(bytes, p),
                    None => bytes,
                };
                let _ = sn::send_to_from(fd, &bytes, from, to);
            }
            Client::Tcp { slot, gen } => {
                if self.gens[slot] != gen {
                    return;
                }
                if let Slot::DnsTcp(t) = &mut self.slots[slot] {
                    push_frame(&mut t.out, &bytes);
                }
                self.flush_dns_tcp(slot);
            }
        }
    }

    pub(super) fn on_udp(&mut self, fd: RawFd) {
        let mut buf = [0u8; 4096];
        loop {
            match sn::recv_from_to(fd, &mut buf) {
                Ok((n, from, to)) => {
                    let msg = buf[..n].to_vec();
                    self.query(&msg, Client::Udp { fd, from, to });
                }
                Err(libc::EAGAIN) => return,
                Err(libc::EINTR | libc::EMSGSIZE) => continue,
                Err(_) => return,
            }
        }
    }

    pub(super) fn done_waiting(&mut self, w: &Waiting) {
        if let Client::Tcp { slot, gen } = w.client {
            if self.gens[slot] == gen {
                if let Slot::DnsTcp(t) = &mut self.slots[slot] {
                    t.waiting = t.waiting.saturating_sub(1);
                }
            }
        }
    }

    pub(super) fn new_dns_tcp(&mut self, fd: RawFd) {
        let slot = self.alloc(Slot::DnsTcp(Box::new(DnsTcp {
            fd,
            inbuf: Vec::new(),
            out: Vec::new(),
            waiting: 0,
            eof: false,
        })));
        let gen = self.gens[slot];
        if !self.watch_stream(fd, slot, 0, true) {
            self.close_dns_tcp(slot);
            return;
        }
        self.timer(DNS_TCP_IDLE, Timer::Slot(slot, gen));
        self.on_dns_tcp(slot);
    }

    pub(super) fn on_dns_tcp(&mut self, slot: usize) {
        let gen = self.gens[slot];
        let Slot::DnsTcp(t) = &mut self.slots[slot] else {
            return;
        };
        if read_client(t.fd, &mut t.inbuf) {
            t.eof = true;
        }
        let queries = take_frames(&mut t.inbuf);
        for q in queries {
            self.query(&q, Client::Tcp { slot, gen });
        }
        self.flush_dns_tcp(slot);
    }

    pub(super) fn flush_dns_tcp(&mut self, slot: usize) {
        let Slot::DnsTcp(t) = &mut self.slots[slot] else {
            return;
        };
        while !t.out.is_empty() {
            match sn::send(t.fd, &t.out) {
                Ok(n) => {
                    t.out.drain(..n);
                }
                Err(libc::EAGAIN) => return,
                Err(_) => {
                    self.close_dns_tcp(slot);
                    return;
                }
            }
        }
        if t.eof && t.waiting == 0 {
            self.close_dns_tcp(slot);
        }
    }

    pub(super) fn close_dns_tcp(&mut self, slot: usize) {
        if let Slot::DnsTcp(t) = std::mem::replace(&mut self.slots[slot], Slot::Free) {
            sys::close(t.fd);
            self.release(slot);
        }
    }
}

/// The most a DNS-over-TCP client's unread input may hold: four of the
/// largest messages. A client that sends more is treated as gone.
const CLIENT_INBUF_MAX: usize = 4 * 65537;

/// Reads what a DNS-over-TCP client sent into `inbuf`, until EAGAIN.
/// True when the client is done: its end, an error, or more input than
/// `CLIENT_INBUF_MAX` (reading then stops).
pub(super) fn read_client(fd: RawFd, inbuf: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 16384];
    loop {
        match sn::recv(fd, &mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                inbuf.extend_from_slice(&buf[..n]);
                if inbuf.len() > CLIENT_INBUF_MAX {
                    return true;
                }
            }
            Err(libc::EAGAIN) => return false,
            Err(_) => return true,
        }
    }
}

/// Takes the complete messages (each after its two-byte big-endian
/// length) off the front of `inbuf`; a partial one stays.
pub(super) fn take_frames(inbuf: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut msgs = Vec::new();
    while inbuf.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([inbuf[0], inbuf[1]]));
        if inbuf.len() < 2 + len {
            break;
        }
        msgs.push(inbuf[2..2 + len].to_vec());
        inbuf.drain(..2 + len);
    }
    msgs
}

/// Appends `msg` to `out` with its length in front; a message too long
/// for the two-byte length is dropped (the client's query then times
/// out on its side, as for a lost UDP answer).
pub(super) fn push_frame(out: &mut Vec<u8>, msg: &[u8]) {
    if let Ok(len) = u16::try_from(msg.len()) {
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(msg);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::UdpSocket;
    use std::os::fd::IntoRawFd;
    use std::time::Duration;

    use hickory_proto::op::ResponseCode;

    use super::super::testkit::{self, dns_parse, dns_query, read_framed, send, settle};
    use super::*;

    #[test]
    fn frames_are_taken_whole_and_a_partial_one_stays() {
        let mut b = vec![0u8];
        assert!(take_frames(&mut b).is_empty(), "half a length prefix");
        assert_eq!(b, [0]);
        b.extend_from_slice(&[3, b'a', b'b']);
        assert!(take_frames(&mut b).is_empty(), "a partial message");
        assert_eq!(b.len(), 4);
        b.extend_from_slice(&[b'c', 0, 0, 0, 1, b'x', 0]);
        assert_eq!(
            take_frames(&mut b),
            [b"abc".to_vec(), vec![], b"x".to_vec()]
        );
        assert_eq!(b, [0], "the next one's first byte stays");
    }

    #[test]
    fn replies_are_framed_and_one_too_long_for_the_prefix_is_dropped() {
        let mut out = Vec::new();
        push_frame(&mut out, b"abc");
        assert_eq!(out, [0, 3, b'a', b'b', b'c']);
        push_frame(&mut out, &vec![7; 65536]);
        assert_eq!(out.len(), 5, "65536 bytes cannot be framed");
        push_frame(&mut out, &vec![7; 65535]);
        assert_eq!(out.len(), 5 + 2 + 65535);
        assert_eq!(out[5..7], [0xff, 0xff]);
    }

    #[test]
    fn a_client_is_read_until_eagain_its_end_or_the_bound() {
        let (fd, mut far) = testkit::tcp_pair();
        let mut inbuf = Vec::new();
        assert!(!read_client(fd, &mut inbuf), "nothing yet: EAGAIN");
        send(&mut far, b"\x00\x05ab");
        settle();
        assert!(!read_client(fd, &mut inbuf));
        assert_eq!(inbuf, b"\x00\x05ab");
        drop(far);
        settle();
        assert!(read_client(fd, &mut inbuf), "the client's end");
        sys::close(fd);

        // A client that sends more than the bound without its messages
        // ending is cut off.
        let (fd, mut far) = testkit::tcp_pair();
        let writer = std::thread::spawn(move || {
            far.set_write_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let junk = vec![0xffu8; 4 * 65537 + 65536];
            let _ = far.write_all(&junk);
            far
        });
        let mut inbuf = Vec::new();
        let until = std::time::Instant::now() + Duration::from_secs(10);
        let mut cut = false;
        while !cut && std::time::Instant::now() < until {
            cut = read_client(fd, &mut inbuf);
            settle();
        }
        assert!(cut, "read {} bytes", inbuf.len());
        assert!(inbuf.len() > CLIENT_INBUF_MAX && inbuf.len() <= CLIENT_INBUF_MAX + 16384);
        sys::close(fd);
        drop(writer.join());
    }

    #[test]
    fn a_tcp_query_in_pieces_is_answered_framed_then_the_client_closed() {
        let (mut r, _chan) = testkit::relay(testkit::rules(&[]));
        let (fd, mut far) = testkit::tcp_pair();
        let q = dns_query("example.com", 0x1234);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        send(&mut far, &framed[..1]);
        settle();
        r.new_dns_tcp(fd);
        let slot = (0..r.slots.len())
            .find(|&i| matches!(r.slots[i], Slot::DnsTcp(_)))
            .expect("a DNS client");
        assert_eq!(r.live, 1);
        send(&mut far, &framed[1..5]);
        settle();
        r.on_dns_tcp(slot);
        send(&mut far, &framed[5..]);
        settle();
        r.on_dns_tcp(slot);
        // A name not allowed: NXDOMAIN, from the helper itself.
        let m = read_framed(&mut far);
        assert_eq!(
            (m.id(), m.response_code()),
            (0x1234, ResponseCode::NXDomain)
        );
        far.shutdown(std::net::Shutdown::Write).expect("shutdown");
        settle();
        r.on_dns_tcp(slot);
        assert!(matches!(r.slots[slot], Slot::Free));
        assert_eq!(r.live, 0);
    }

    #[test]
    fn a_udp_query_is_answered_to_its_sender() {
        let (mut r, _chan) = testkit::relay(testkit::rules(&[]));
        let jail = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        client
            .connect(jail.local_addr().expect("addr"))
            .expect("connect");
        let fd = jail.into_raw_fd();
        sn::set_nonblocking(fd).expect("nonblocking");
        client
            .send(&dns_query("example.com", 0x4321))
            .expect("send");
        client.send(b"not DNS").expect("send");
        settle();
        r.on_udp(fd);
        let mut buf = [0u8; 4096];
        let n = client.recv(&mut buf).expect("an answer");
        let m = dns_parse(&buf[..n]);
        assert_eq!(
            (m.id(), m.response_code()),
            (0x4321, ResponseCode::NXDomain)
        );
        // The garbage got no answer.
        client.set_nonblocking(true).expect("nonblocking");
        assert!(client.recv(&mut buf).is_err());
        sys::close(fd);
    }
}
