//! One TCP connection from the jail, in the network helper (outside the
//! jail): peek at the client's first bytes (`peek`), ask `policy` where
//! it goes, connect from the host (or through the proxy: `proxy`), then
//! relay (`splice`). The client's bytes pass a gate (`Gate`): a silent
//! client's first bytes are judged whenever they come, and every request
//! of a plain-HTTP connection is (`peek::frame`). A denied connection is
//! reset (RST, SO_LINGER 0), never left hanging.

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::splice::{pump_dir, Dir, Ends};
use super::{errtext, say, token, Relay, Slot, Timer, EV_ET, EV_IN, EV_OUT, EV_RDHUP};
use crate::outside::net::peek::{self, Framed, Next, Peek, PEEK_MAX};
use crate::outside::net::policy::{self, Flow as Verdict, Pins, Said};
use crate::sys::{self, net as sn};

/// How long a connection may stay silent before the server is reached
/// for it (protocols where the server speaks first). Only the server's
/// bytes flow then: the client's first bytes are still judged whenever
/// they come (`Gate::Held`).
const SILENT: Duration = Duration::from_millis(250);
/// How long a started ClientHello or request head may take to complete.
const PEEK_LIMIT: Duration = Duration::from_secs(3);
/// Connecting upstream (the kernel's own SYN retries take minutes).
const CONNECT_LIMIT: Duration = Duration::from_secs(30);

/// Where a connection is: peeking at the client, connecting upstream,
/// talking to the proxy, or relaying.
pub(super) enum State {
    Peek,
    Connecting,
    ProxySend(usize),
    ProxyRecv,
    Relay,
}

/// A TCP connection from the jail.
pub(super) struct Conn {
    pub(super) client: RawFd,
    pub(super) up: RawFd,
    pub(super) dst: SocketAddr,
    /// The name (or address) it is allowed for: for logs and CONNECT.
    pub(super) name: String,
    pub(super) state: State,
    pub(super) since: Instant,
    pub(super) dirs: Option<[Dir; 2]>,
    /// Readiness as epoll last reported it, per side (client, upstream):
    /// cleared on EAGAIN, so the relay only makes calls that can move
    /// bytes.
    pub(super) readable: [bool; 2],
    pub(super) writable: [bool; 2],
    /// CONNECT request to the proxy.
    pub(super) connect_req: Vec<u8>,
    /// What the client's bytes must pass before they are forwarded.
    pub(super) gate: Gate,
    /// The client shut its sending side (epoll said RDHUP/HUP): what it
    /// sent is all there will be, so a head still incomplete is final.
    pub(super) client_done: bool,
}

/// The check on the client's bytes of a relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Gate {
    /// Forwarded as they come (TLS after its ClientHello was judged,
    /// other protocols, addresses allowed as such, exposed ports).
    Open,
    /// The client has said nothing yet; the server may speak (SSH, SMTP-
    /// like banners). The client's first bytes are judged like those of
    /// any connection before anything of them is forwarded.
    Held,
    /// Plain HTTP: `left` bytes may go on; then `next` is judged. Every
    /// request head of a kept-alive connection is checked.
    Http {
        left: u64,
        next: Next,
        requests: u32,
    },
}

impl Gate {
    /// The gate of a connection just allowed: `said` is what its client
    /// said first; `unnamed` when it was allowed as an address (or an
    /// exposed port), which has no name to check.
    pub(super) fn first(said: &Said, unnamed: bool) -> Gate {
        match said {
            _ if unnamed => Gate::Open,
            Said::Silent => Gate::Held,
            Said::Http(_) => Gate::Http {
                left: 0,
                next: Next::Head,
                requests: 0,
            },
            _ => Gate::Open,
        }
    }

    /// How many bytes each direction (client → upstream, upstream →
    /// client) may read now: a held client nothing, plain HTTP up to the
    /// end of the request judged, and after a request that asked to
    /// switch protocols neither, until the server's status is seen.
    pub(super) fn limits(self) -> [u64; 2] {
        match self {
            Gate::Open => [u64::MAX, u64::MAX],
            Gate::Held => [0, u64::MAX],
            Gate::Http {
                left: 0,
                next: Next::Upgrade { .. },
                ..
            } => [0, 0],
            Gate::Http { left, .. } => [left, u64::MAX],
        }
    }
}

/// Whether the server's first bytes `b` (at most 16) say it switched
/// protocols: `HTTP/1.x 101` after an Upgrade, any 2xx after CONNECT.
/// None: not enough bytes to tell yet.
pub(super) fn status_switched(b: &[u8], connect: bool) -> Option<bool> {
    // `HTTP/1.1 101 ` (13 bytes), or a shorter line that ended.
    if b.len() < 13 && !b.contains(&b'\n') {
        return None;
    }
    Some(
        b.len() >= 13
            && b.starts_with(b"HTTP/1.")
            && matches!(b[12], b' ' | b'\r' | b'\n')
            && if connect {
                b[9] == b'2'
            } else {
                &b[9..12] == b"101"
            },
    )
}

/// What judging the client's next bytes came to.
pub(super) enum Judged {
    /// Bytes may move (within the gate's limit).
    Go,
    /// Not enough bytes yet.
    Wait,
    /// Denied: what (`NAME:PORT`) and why.
    Deny(String, policy::Reason),
    /// The client's socket failed: reset both sides.
    Failed,
}
impl Relay {
    pub(super) fn new_conn(&mut self, c: RawFd) {
        let Ok(dst) = sn::local_addr(c) else {
            sn::reset(c);
            return;
        };
        let conn = Conn {
            client: c,
            up: -1,
            dst,
            name: String::new(),
            state: State::Peek,
            since: Instant::now(),
            dirs: None,
            readable: [true; 2],
            writable: [true; 2],
            connect_req: Vec::new(),
            gate: Gate::Open,
            client_done: false,
        };
        let slot = self.alloc(Slot::Conn(Box::new(conn)));
        let gen = self.gens[slot];
        if sn::epoll_ctl(
            self.ep,
            c,
            EV_IN | EV_RDHUP | EV_ET,
            token(slot, gen, 0),
            true,
        )
        .is_err()
        {
            sn::reset(c);
            self.release(slot);
            return;
        }
        self.timer(SILENT, Timer::Slot(slot, gen));
        self.try_peek(slot, false);
    }

    pub(super) fn conn(&mut self, slot: usize) -> Option<&mut Conn> {
        match &mut self.slots[slot] {
            Slot::Conn(c) => Some(c),
            _ => None,
        }
    }

    /// Looks at what the client sent so far; decides when it can.
    pub(super) fn try_peek(&mut self, slot: usize, last: bool) {
        let Some(c) = self.conn(slot) else { return };
        let fd = c.client;
        let n = match sn::peek(fd, &mut self.peekbuf) {
            Ok(0) => {
                // The client closed before saying anything we could judge.
                self.close_conn(slot, false);
                return;
            }
            Ok(n) => n,
            Err(libc::EAGAIN) => 0,
            Err(_) => {
                self.close_conn(slot, true);
                return;
            }
        };
        let full = last || n == PEEK_MAX;
        match peek::classify(&self.peekbuf[..n], full) {
            Peek::NeedMore => {}
            Peek::Said(said) => self.decide(slot, said),
        }
    }

    pub(super) fn label(dst: SocketAddr, said: &Said, pins: &Pins) -> String {
        let ip = policy::canonical(dst.ip());
        let name = match said {
            Said::Tls(Some(n)) | Said::Http(Some(n)) => Some(policy::normalize(n)),
            _ => pins.names(ip).first().cloned(),
        };
        match name {
            Some(n) => format!("{n}:{}", dst.port()),
            None => SocketAddr::new(ip, dst.port()).to_string(),
        }
    }

    pub(super) fn decide(&mut self, slot: usize, said: Said) {
        let Some(c) = self.conn(slot) else { return };
        let dst = c.dst;
        let verdict = policy::flow(&self.s.rules, &self.pins, &self.s.host, dst, &said);
        let (to, name, via_proxy, unnamed) = match verdict {
            Verdict::Deny(reason) => {
                let what = Self::label(dst, &said, &self.pins);
                say(self.s.report.denied_flow(&what, &reason));
                self.close_conn(slot, true);
                return;
            }
            // An address allowed as such has no name to check.
            Verdict::Connect { to, name } => {
                let literal = to.ip().to_string() == name;
                (to, name, self.s.proxy, literal)
            }
            Verdict::Expose { to } => (to, format!("host loopback port {}", to.port()), None, true),
        };
        let gate = Gate::first(&said, unnamed);
        if let (true, None, Some(why)) = (
            self.s.rules.proxy && !unnamed,
            via_proxy,
            self.s.proxy_error.clone(),
        ) {
            say(self.s.report.unreachable(&name, to.port(), &why));
            self.close_conn(slot, true);
            return;
        }
        let target = via_proxy.unwrap_or(to);
        let up = match sn::connect_start(target) {
            Ok(fd) => fd,
            Err(e) => {
                say(self.s.report.unreachable(&name, to.port(), &errtext(e)));
                self.close_conn(slot, true);
                return;
            }
        };
        let gen = self.gens[slot];
        if !self.watch_stream(up, slot, 1, true) {
            sys::close(up);
            self.close_conn(slot, true);
            return;
        }
        say(self
            .s
            .report
            .allowed_flow(&name, to.port(), &to.ip().to_string()));
        let Some(c) = self.conn(slot) else { return };
        c.up = up;
        c.gate = gate;
        c.name = name.clone();
        c.state = State::Connecting;
        c.since = Instant::now();
        if via_proxy.is_some() {
            c.connect_req = super::proxy::connect_request(&name, to);
        }
        self.timer(CONNECT_LIMIT, Timer::Slot(slot, gen));
    }

    /// A connection's timer: the client stayed silent (`SILENT`), its
    /// first bytes took too long (`PEEK_LIMIT`), or connecting did
    /// (`CONNECT_LIMIT`).
    pub(super) fn on_conn_timer(&mut self, slot: usize) {
        let Slot::Conn(c) = &self.slots[slot] else {
            return;
        };
        let (state_peek, state_connect, since) = (
            matches!(c.state, State::Peek),
            matches!(
                c.state,
                State::Connecting | State::ProxySend(_) | State::ProxyRecv
            ),
            c.since,
        );
        if state_peek {
            let fd = c.client;
            let waited = since.elapsed();
            let any = matches!(sn::peek(fd, &mut self.peekbuf[..1]), Ok(n) if n > 0);
            if !any || waited >= PEEK_LIMIT {
                self.try_peek(slot, true);
            } else {
                let gen = self.gens[slot];
                self.timer(PEEK_LIMIT.saturating_sub(waited), Timer::Slot(slot, gen));
            }
        } else if state_connect && since.elapsed() >= CONNECT_LIMIT {
            let (name, port) = (c.name.clone(), c.dst.port());
            say(self.s.report.unreachable(&name, port, "timed out"));
            self.close_conn(slot, true);
        }
    }

    pub(super) fn on_conn(&mut self, slot: usize, side: u64, bits: u32) {
        let Some(c) = self.conn(slot) else { return };
        match c.state {
            State::Peek => {
                if side == 0 {
                    let hup = bits & (EV_RDHUP | libc::EPOLLHUP as u32) != 0;
                    self.try_peek(slot, hup);
                }
            }
            State::Connecting => {
                if side == 1 {
                    self.on_connected(slot);
                }
            }
            State::ProxySend(_) | State::ProxyRecv => {
                if side == 1 {
                    self.proxy_step(slot);
                }
            }
            State::Relay => {
                let side = side as usize;
                let err = libc::EPOLLERR as u32 | libc::EPOLLHUP as u32;
                if bits & (EV_IN | EV_RDHUP | err) != 0 {
                    c.readable[side] = true;
                }
                if side == 0 && bits & (EV_RDHUP | libc::EPOLLHUP as u32) != 0 {
                    c.client_done = true;
                }
                if bits & (EV_OUT | err) != 0 {
                    c.writable[side] = true;
                }
                self.pump(slot)
            }
        }
    }

    pub(super) fn on_connected(&mut self, slot: usize) {
        let Some(c) = self.conn(slot) else { return };
        let up = c.up;
        let err = sn::take_error(up);
        if err != 0 {
            let (name, port) = (c.name.clone(), c.dst.port());
            say(self.s.report.unreachable(&name, port, &errtext(err)));
            self.close_conn(slot, true);
            return;
        }
        if sn::peer_addr(up).is_err() {
            return; // still connecting
        }
        if c.connect_req.is_empty() {
            self.start_relay(slot);
        } else {
            c.state = State::ProxySend(0);
            self.proxy_step(slot);
        }
    }

    /// Watches a stream socket of `slot` (`side` 0 or 1) for reading,
    /// writing and hang-up, edge-triggered; `add` false re-arms one
    /// already watched. False when epoll refuses.
    pub(super) fn watch_stream(&self, fd: RawFd, slot: usize, side: u64, add: bool) -> bool {
        sn::epoll_ctl(
            self.ep,
            fd,
            EV_IN | EV_OUT | EV_RDHUP | EV_ET,
            token(slot, self.gens[slot], side),
            add,
        )
        .is_ok()
    }

    pub(super) fn start_relay(&mut self, slot: usize) {
        let Some(c) = self.conn(slot) else { return };
        let pipes = (sn::pipe(), sn::pipe());
        let (a, b) = match pipes {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => {
                for (r, w) in [a, b].into_iter().flatten() {
                    sys::close(r);
                    sys::close(w);
                }
                self.close_conn(slot, true);
                return;
            }
        };
        let dir = |(r, w): (RawFd, RawFd)| Dir {
            r,
            w,
            fill: 0,
            cap: sn::pipe_size(w).unwrap_or(64 * 1024),
            moved: 0,
            grown: false,
            eof: false,
            shut: false,
        };
        c.dirs = Some([dir(a), dir(b)]);
        c.state = State::Relay;
        for fd in [c.client, c.up] {
            let _ = sn::set_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
        }
        let client = c.client;
        if !self.watch_stream(client, slot, 0, false) {
            self.close_conn(slot, true);
            return;
        }
        self.pump(slot);
    }

    /// Moves bytes both ways until nothing moves; closes when both
    /// directions are done, resets both sides on an error or a denial.
    /// The client's bytes pass its gate first.
    pub(super) fn pump(&mut self, slot: usize) {
        loop {
            let before = match self.conn(slot) {
                Some(c) => c.gate,
                None => return,
            };
            match self.judge(slot) {
                Judged::Deny(what, reason) => {
                    say(self.s.report.denied_flow(&what, &reason));
                    self.close_conn(slot, true);
                    return;
                }
                Judged::Failed => {
                    self.close_conn(slot, true);
                    return;
                }
                Judged::Go | Judged::Wait => {}
            }
            let switched = self.sniff_status(slot);
            let Some(c) = self.conn(slot) else { return };
            let fds = [c.client, c.up];
            let gate = c.gate;
            let limits = gate.limits();
            let (readable, writable) = (&mut c.readable, &mut c.writable);
            let Some(dirs) = c.dirs.as_mut() else { return };
            let mut failed = false;
            let mut read = [0u64; 2];
            for (i, d) in dirs.iter_mut().enumerate() {
                // Direction 0: client → upstream; 1: upstream → client.
                let (s, t) = (i, 1 - i);
                let mut ends = Ends {
                    src: fds[s],
                    dst: fds[t],
                    readable: readable[s],
                    writable: writable[t],
                };
                let r = pump_dir(d, &mut ends, limits[i]);
                readable[s] = ends.readable;
                writable[t] = ends.writable;
                match r {
                    Ok(n) => read[i] = n,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            if failed {
                self.close_conn(slot, true);
                return;
            }
            if dirs.iter().all(Dir::done) {
                self.close_conn(slot, false);
                return;
            }
            if let Gate::Http {
                left,
                next,
                requests,
            } = gate
            {
                c.gate = Gate::Http {
                    left: left - read[0],
                    next,
                    requests,
                };
            }
            // Again while the gate moved on (judged, or bytes let through):
            // the next request may be there. Ends: reading stops at EAGAIN.
            if !(switched || c.gate != before) {
                return;
            }
        }
    }

    /// Judges the client's bytes at its gate, without consuming them.
    pub(super) fn judge(&mut self, slot: usize) -> Judged {
        let Slot::Conn(c) = &mut self.slots[slot] else {
            return Judged::Wait;
        };
        match c.gate {
            Gate::Open | Gate::Http { left: 1.., .. } => return Judged::Go,
            Gate::Http {
                next: Next::Upgrade { .. },
                ..
            } => return Judged::Wait,
            _ => {}
        }
        let n = match sn::peek(c.client, &mut self.peekbuf) {
            Ok(0) => {
                // The client is done: its end travels on.
                c.gate = Gate::Open;
                return Judged::Go;
            }
            Ok(n) => n,
            Err(libc::EAGAIN) => return Judged::Wait,
            Err(_) => return Judged::Failed,
        };
        let buf = &self.peekbuf[..n];
        let full = n == PEEK_MAX;
        let (rules, pins, host) = (&self.s.rules, &self.pins, &self.s.host);
        let dst = c.dst;
        let bad = |why: &'static str| {
            Judged::Deny(
                format!("{}:{}", c.name, dst.port()),
                policy::Reason::NoName(why),
            )
        };
        match c.gate {
            Gate::Held => {
                let said = match peek::classify(buf, full || c.client_done) {
                    Peek::NeedMore => return Judged::Wait,
                    Peek::Said(s) => s,
                };
                match policy::flow(rules, pins, host, dst, &said) {
                    Verdict::Connect { name, .. } => {
                        c.name = name;
                        c.gate = match said {
                            Said::Http(_) => Gate::Http {
                                left: 0,
                                next: Next::Head,
                                requests: 0,
                            },
                            _ => Gate::Open,
                        };
                        Judged::Go
                    }
                    Verdict::Expose { .. } => {
                        c.gate = Gate::Open;
                        Judged::Go
                    }
                    Verdict::Deny(r) => Judged::Deny(Self::label(dst, &said, pins), r),
                }
            }
            Gate::Http { next, requests, .. } => {
                // Only a first request may switch protocols: the server's
                // next bytes are then its answer to it.
                let fresh = requests == 0 && c.dirs.as_ref().is_some_and(|d| d[1].moved == 0);
                let (pass, next, head) = match peek::frame(next, fresh, buf, full) {
                    // A head that can no longer be completed is judged as
                    // it is (else the connection would be held forever).
                    Framed::NeedMore if c.client_done => {
                        let what = format!("{}:{}", c.name, dst.port());
                        return Judged::Deny(what, policy::Reason::Incomplete);
                    }
                    Framed::NeedMore => return Judged::Wait,
                    Framed::Incomplete => {
                        let what = format!("{}:{}", c.name, dst.port());
                        return Judged::Deny(what, policy::Reason::Incomplete);
                    }
                    Framed::Bad(why) => return bad(why),
                    Framed::Pass { pass, next, head } => (pass, next, head),
                };
                let mut requests = requests;
                if let Some(h) = head {
                    let said = Said::Http(h);
                    match policy::flow(rules, pins, host, dst, &said) {
                        Verdict::Connect { name, .. } => c.name = name,
                        Verdict::Expose { .. } => {}
                        Verdict::Deny(r) => return Judged::Deny(Self::label(dst, &said, pins), r),
                    }
                    requests += 1;
                }
                let gate = Gate::Http {
                    left: pass,
                    next,
                    requests,
                };
                c.gate = gate;
                Judged::Go
            }
            Gate::Open => Judged::Go,
        }
    }

    /// After a first request that asked to switch protocols: whether the
    /// server's status says it did (the connection is then no longer
    /// HTTP: `Open`), or not (the next request is checked). True when
    /// the gate changed.
    pub(super) fn sniff_status(&mut self, slot: usize) -> bool {
        let Some(c) = self.conn(slot) else {
            return false;
        };
        let Gate::Http {
            left: 0,
            next: Next::Upgrade { connect },
            requests,
        } = c.gate
        else {
            return false;
        };
        let mut b = [0u8; 16];
        let switched = match sn::peek(c.up, &mut b) {
            Ok(0) => false,
            Ok(n) => match status_switched(&b[..n], connect) {
                Some(yes) => yes,
                None => return false,
            },
            Err(libc::EAGAIN) => return false,
            Err(_) => false,
        };
        c.gate = if switched {
            Gate::Open
        } else {
            Gate::Http {
                left: 0,
                next: Next::Head,
                requests,
            }
        };
        true
    }

    pub(super) fn close_conn(&mut self, slot: usize, reset: bool) {
        let Slot::Conn(c) = std::mem::replace(&mut self.slots[slot], Slot::Free) else {
            return;
        };
        for fd in [c.client, c.up] {
            if fd >= 0 {
                if reset {
                    sn::reset(fd);
                } else {
                    sys::close(fd);
                }
            }
        }
        if let Some(dirs) = c.dirs {
            for d in dirs {
                sys::close(d.r);
                sys::close(d.w);
            }
        }
        self.release(slot);
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::net::TcpStream;

    use super::super::testkit::{self, read_some, send, settle};
    use super::*;

    #[test]
    fn the_first_gate_follows_what_the_client_said() {
        let http = Gate::Http {
            left: 0,
            next: Next::Head,
            requests: 0,
        };
        assert_eq!(Gate::first(&Said::Http(Some("a.b".into())), false), http);
        assert_eq!(Gate::first(&Said::Silent, false), Gate::Held);
        assert_eq!(
            Gate::first(&Said::Tls(Some("a.b".into())), false),
            Gate::Open
        );
        // An address allowed as such has no name to check.
        assert_eq!(Gate::first(&Said::Silent, true), Gate::Open);
        assert_eq!(Gate::first(&Said::Http(None), true), Gate::Open);
    }

    #[test]
    fn gate_limits_hold_the_client_until_judged() {
        assert_eq!(Gate::Open.limits(), [u64::MAX, u64::MAX]);
        assert_eq!(Gate::Held.limits(), [0, u64::MAX]);
        let http = |left, next| Gate::Http {
            left,
            next,
            requests: 1,
        };
        assert_eq!(http(0, Next::Head).limits(), [0, u64::MAX]);
        assert_eq!(http(17, Next::Head).limits(), [17, u64::MAX]);
        // After a request to switch protocols nothing moves until the
        // server's status is seen.
        let up = Next::Upgrade { connect: false };
        assert_eq!(http(0, up).limits(), [0, 0]);
        assert_eq!(http(5, up).limits(), [5, u64::MAX]);
    }

    #[test]
    fn a_switch_of_protocols_is_read_from_the_status_line() {
        assert_eq!(
            status_switched(b"HTTP/1.1 101 Switching", false),
            Some(true)
        );
        assert_eq!(status_switched(b"HTTP/1.1 101\r\n", false), Some(true));
        assert_eq!(status_switched(b"HTTP/1.1 200 OK\r\n", false), Some(false));
        assert_eq!(status_switched(b"HTTP/1.1 200 OK\r\n", true), Some(true));
        assert_eq!(status_switched(b"HTTP/1.0 204 \r\n", true), Some(true));
        assert_eq!(status_switched(b"HTTP/1.1 407 Auth", true), Some(false));
        assert_eq!(status_switched(b"HTTP/1.1 1010 x", false), Some(false));
        assert_eq!(status_switched(b"SSH-2.0-x\r\n", false), Some(false));
        // Too short to tell, and no line end yet.
        assert_eq!(status_switched(b"HTTP/1.1 10", false), None);
        assert_eq!(status_switched(b"", true), None);
    }

    /// A connection in the table, relaying between two loopback pairs:
    /// (slot, the client's far end, the server's far end).
    fn relayed(r: &mut Relay, gate: Gate) -> (usize, TcpStream, TcpStream) {
        let (c, cfar) = testkit::tcp_pair();
        let (u, sfar) = testkit::tcp_pair();
        let dst = sn::local_addr(c).expect("addr");
        let conn = Conn {
            client: c,
            up: u,
            dst,
            name: "test".into(),
            state: State::Connecting,
            since: Instant::now(),
            dirs: None,
            readable: [true; 2],
            writable: [true; 2],
            connect_req: Vec::new(),
            gate,
            client_done: false,
        };
        let slot = r.alloc(Slot::Conn(Box::new(conn)));
        assert!(r.watch_stream(c, slot, 0, true) && r.watch_stream(u, slot, 1, true));
        r.start_relay(slot);
        assert!(matches!(r.conn(slot).map(|c| &c.state), Some(State::Relay)));
        (slot, cfar, sfar)
    }

    #[test]
    fn an_open_connection_relays_both_ways_and_passes_each_end_on() {
        let (mut r, _chan) = testkit::relay(testkit::rules(&[]));
        let (slot, mut cfar, mut sfar) = relayed(&mut r, Gate::Open);
        send(&mut cfar, b"ping");
        settle();
        r.on_conn(slot, 0, EV_IN);
        assert_eq!(read_some(&mut sfar, 4), (b"ping".to_vec(), None));
        send(&mut sfar, b"pong");
        settle();
        r.on_conn(slot, 1, EV_IN);
        assert_eq!(read_some(&mut cfar, 4), (b"pong".to_vec(), None));
        // The client's end reaches the server; the connection stays for
        // the other direction.
        cfar.shutdown(std::net::Shutdown::Write).expect("shutdown");
        settle();
        r.on_conn(slot, 0, EV_IN | EV_RDHUP);
        assert_eq!(read_some(&mut sfar, 1), (Vec::new(), None));
        assert!(matches!(r.slots[slot], Slot::Conn(_)));
        send(&mut sfar, b"last");
        sfar.shutdown(std::net::Shutdown::Write).expect("shutdown");
        settle();
        r.on_conn(slot, 1, EV_IN | EV_RDHUP);
        assert_eq!(read_some(&mut cfar, 5), (b"last".to_vec(), None));
        assert!(matches!(r.slots[slot], Slot::Free));
        assert_eq!(r.live, 0);
    }

    #[test]
    fn every_http_request_is_judged_before_a_byte_of_it_goes_on() {
        let (mut r, _chan) = testkit::relay(testkit::rules(&[]));
        let gate = Gate::first(&Said::Http(Some("x".into())), false);
        let (slot, mut cfar, mut sfar) = relayed(&mut r, gate);
        // Judged as a request to the connection's address: loopback,
        // never allowed, so it is denied and both sides reset.
        send(&mut cfar, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
        settle();
        r.on_conn(slot, 0, EV_IN);
        assert!(matches!(r.slots[slot], Slot::Free));
        let (got, err) = read_some(&mut sfar, 1);
        assert!(got.is_empty(), "the server saw {got:?}");
        assert_eq!(err, Some(ErrorKind::ConnectionReset));
        assert_eq!(read_some(&mut cfar, 1).1, Some(ErrorKind::ConnectionReset));
    }

    #[test]
    fn a_half_request_waits_and_is_not_let_through() {
        let (mut r, _chan) = testkit::relay(testkit::rules(&[]));
        let gate = Gate::first(&Said::Http(Some("x".into())), false);
        let (slot, mut cfar, mut sfar) = relayed(&mut r, gate);
        send(&mut cfar, b"GET / HTTP/1.1\r\nHo");
        settle();
        r.on_conn(slot, 0, EV_IN);
        // Still waiting: nothing forwarded, nothing reset.
        assert!(matches!(r.slots[slot], Slot::Conn(_)));
        sfar.set_nonblocking(true).expect("nonblocking");
        let mut b = [0u8; 16];
        let e = std::io::Read::read(&mut sfar, &mut b).expect_err("nothing to read");
        assert_eq!(e.kind(), ErrorKind::WouldBlock);
        // The client ends half-way through its head: still nothing of it
        // goes on.
        cfar.shutdown(std::net::Shutdown::Write).expect("shutdown");
        settle();
        r.on_conn(slot, 0, EV_IN | EV_RDHUP);
        // A head that can no longer be completed is judged as it is: the
        // connection is reset and its slot freed, never held forever.
        assert!(matches!(r.slots[slot], Slot::Free), "still held");
        sfar.set_nonblocking(false).expect("blocking");
        let (got, err) = read_some(&mut sfar, 1);
        assert!(got.is_empty(), "the server saw {got:?}");
        assert_eq!(err, Some(ErrorKind::ConnectionReset));
    }

    #[test]
    fn a_held_client_hears_the_server_but_its_own_bytes_are_judged_first() {
        let (mut r, _chan) = testkit::relay(testkit::rules(&[]));
        let (slot, mut cfar, mut sfar) = relayed(&mut r, Gate::Held);
        send(&mut sfar, b"SSH-2.0-server\r\n");
        settle();
        r.on_conn(slot, 1, EV_IN);
        assert_eq!(read_some(&mut cfar, 16).0, b"SSH-2.0-server\r\n");
        send(&mut cfar, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
        settle();
        r.on_conn(slot, 0, EV_IN);
        assert!(matches!(r.slots[slot], Slot::Free));
        let (got, err) = read_some(&mut sfar, 1);
        assert!(got.is_empty(), "the server saw {got:?}");
        assert_eq!(err, Some(ErrorKind::ConnectionReset));
    }
}
