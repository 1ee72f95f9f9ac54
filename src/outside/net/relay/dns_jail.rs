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
pub(super) struct DnsTcp {
    pub(super) fd: RawFd,
    pub(super) inbuf: Vec<u8>,
    pub(super) out: Vec<u8>,
    /// Queries of this client waiting upstream.
    pub(super) waiting: usize,
    pub(super) eof: bool,
}
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
