//! The network helper's relay (runs in the helper, outside the jail, as
//! the user): one thread, one epoll set. This file holds the event loop
//! and the `Relay` type: the slot table with generations, the timers, the
//! connections taken from the jail's listening sockets (at most what the
//! helper's descriptors can serve: `budget_from`, the accept pause), and
//! the helper's lines (`say`). The parts, each in its own file:
//! - `flow`: one TCP connection from the jail: the gate on the client's
//!   first bytes (`peek`), the verdict (`policy`), the upstream connect,
//!   the relay and the check of every plain-HTTP request; a denial resets;
//! - `splice`: one direction of a relayed connection, socket → pipe →
//!   socket with splice() (the bytes never enter this process);
//! - `proxy`: the CONNECT request to an upstream HTTP proxy and its reply;
//! - `dns_jail`: DNS for the jail over UDP and TCP (framing, bounded
//!   buffers);
//! - `dns_upstream`: asking the upstream resolver (a socket made on first
//!   use, so an unreachable one fails lookups, never the start; TCP after
//!   a truncated answer; resolv.conf followed).
//!
//! Edge-triggered: every handler reads or splices until EAGAIN. Tokens
//! carry a generation, so an event for a slot that was freed and reused
//! within one batch is recognized as stale.

mod dns_jail;
mod dns_upstream;
mod flow;
mod proxy;
mod splice;
#[cfg(test)]
mod testkit;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::time::{Duration, Instant};

use super::peek::PEEK_MAX;
use super::policy::{Pins, Rules};
use super::report::Report;
use crate::outside::notice::Notices;
use crate::outside::Channel;
use crate::sys::{self, net as sn};

use dns_jail::{DnsTcp, Waiting};
use dns_upstream::UpTcp;
use flow::Conn;

const CHANNEL: u64 = u64::MAX;

/// Descriptors kept for everything but the jail's connections
/// (listeners, upstream DNS sockets, the channel, epoll).
const FD_RESERVE: u64 = 64;
/// Descriptors one relayed connection holds: two sockets, two pipes.
const FDS_PER_CONN: u64 = 6;

/// How many connections (relayed, or DNS over TCP) the helper takes at
/// once: what its open-files limit can serve whole. Beyond it the
/// listeners pause and further connections wait in the kernel's accept
/// queue, instead of being taken and then reset half-way for want of a
/// descriptor (a program exhausting its own descriptors must not make
/// the helper fail the connections it can serve).
fn conn_budget() -> usize {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills a local struct.
    let n = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0 {
        r.rlim_cur
    } else {
        1024
    };
    budget_from(n)
}

/// The connection budget for an open-files limit of `nofile`: what is
/// left after the reserve, whole connections only, at least one.
fn budget_from(nofile: u64) -> usize {
    (nofile.min(1 << 24).saturating_sub(FD_RESERVE) / FDS_PER_CONN).max(1) as usize
}

/// Everything the loop needs, prepared by `main` before confinement.
pub struct Setup {
    pub rules: Rules,
    pub host: Vec<IpAddr>,
    /// Where allowed names are resolved (None: nowhere, as under `none`
    /// or through a proxy).
    pub upstream: Option<Upstream>,
    /// An upstream HTTP proxy (CONNECT), if configured.
    pub proxy: Option<SocketAddr>,
    /// Why the configured proxy could not be resolved at start: its flows
    /// then fail with this (the jail still starts: offline is no error).
    pub proxy_error: Option<String>,
    pub report: Report,
}

/// The upstream resolver. Nothing is connected at start, so an
/// unreachable one cannot fail the jail: each lookup finds out, and fails
/// at once with a line naming the server.
pub struct Upstream {
    /// The server asked now (None: resolv.conf names none).
    pub addr: Option<SocketAddr>,
    /// The resolv.conf it came from, re-read while the helper runs
    /// (roaming, VPNs); None for `--dns-upstream`.
    pub follow: Option<std::path::PathBuf>,
}
enum Slot {
    Free,
    Listener { fd: RawFd, dns: bool, paused: bool },
    Udp { fd: RawFd },
    Upstream { fd: RawFd },
    Conn(Box<Conn>),
    DnsTcp(Box<DnsTcp>),
    UpTcp(Box<UpTcp>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    Slot(usize, u32),
    Dns(u16),
}

pub struct Relay {
    ep: RawFd,
    chan: Channel,
    s: Setup,
    pins: Pins,
    slots: Vec<Slot>,
    gens: Vec<u32>,
    /// Per slot: a connection from the jail (counts in `live`).
    client: Vec<bool>,
    /// Connections from the jail held now, and the most at once.
    live: usize,
    budget: usize,
    free: Vec<usize>,
    timers: BinaryHeap<Reverse<(Instant, Timer)>>,
    pending: HashMap<u16, Waiting>,
    peekbuf: Vec<u8>,
    any_paused: bool,
    /// Proxy mode: stand-in addresses handed out, by name, and the next.
    stand_ins: HashMap<String, std::net::Ipv4Addr>,
    next_stand_in: u32,
    /// The connected UDP socket to the upstream resolver (-1: none yet)
    /// and its slot; when resolv.conf was last read.
    up_fd: RawFd,
    up_slot: usize,
    up_read: Instant,
    /// The server let a query time out, and has not answered since.
    up_silent: bool,
}

fn token(slot: usize, gen: u32, side: u64) -> u64 {
    (u64::from(gen) << 32) | ((slot as u64) << 1) | side
}

/// The slot, generation and side a `token` carries.
fn untoken(t: u64) -> (usize, u32, u64) {
    (((t & 0xffff_ffff) >> 1) as usize, (t >> 32) as u32, t & 1)
}

fn errtext(e: i32) -> String {
    crate::sys::errno_text(e)
}

/// The launcher's "wait for me" pipe: one byte on it before the helper
/// says anything, so `jail` waits for the helper's last lines (the
/// summary) before it exits, and does not wait for a helper that has
/// nothing to say. -1 once written (or when there is none).
static SPEAK: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Sets the launcher's pipe (see `SPEAK`).
pub fn speak_to(fd: RawFd) {
    SPEAK.store(fd, std::sync::atomic::Ordering::Relaxed);
}

/// Tells the launcher to wait for this helper's last lines (once).
pub fn will_speak() {
    let fd = SPEAK.swap(-1, std::sync::atomic::Ordering::Relaxed);
    if fd >= 0 {
        let _ = sys::write_all(fd, b"1");
        sys::close(fd);
    }
}

thread_local! {
    /// Where the helper's lines go while the program runs (the helper is
    /// single-threaded).
    static NOTICES: std::cell::RefCell<Notices> = std::cell::RefCell::new(Notices::default());
}

/// Sets where the helper's lines go (see `notice`).
pub fn notices_to(n: Notices) {
    NOTICES.with(|c| *c.borrow_mut() = n);
}

/// The lines kept while a program owned the terminal, for the exit.
pub fn kept_notices() -> Vec<String> {
    NOTICES.with(|c| c.borrow_mut().at_exit())
}

/// Says a line while the program runs: printed, or kept for the exit
/// while a full-screen program owns the terminal (and logged).
fn say(line: Option<String>) {
    if let Some(l) = line {
        // Printed now or at exit: the launcher waits for the helper's end.
        will_speak();
        NOTICES.with(|c| c.borrow_mut().say(&l));
    }
}

const EV_IN: u32 = libc::EPOLLIN as u32;
const EV_OUT: u32 = libc::EPOLLOUT as u32;
const EV_ET: u32 = libc::EPOLLET as u32;
const EV_RDHUP: u32 = libc::EPOLLRDHUP as u32;

impl Relay {
    /// The relay on `chan`, pid 1's link (its EOF ends `run`). On failure
    /// the channel comes back: the helper says why before it closes.
    pub fn new(chan: Channel, s: Setup) -> Result<Relay, (i32, Channel)> {
        let ep = match sn::epoll_create() {
            Ok(ep) => ep,
            Err(e) => return Err((e, chan)),
        };
        if let Err(e) = sn::epoll_ctl(ep, chan.as_raw_fd(), EV_IN, CHANNEL, true) {
            sys::close(ep);
            return Err((e, chan));
        }
        let r = Relay {
            ep,
            chan,
            s,
            pins: Pins::default(),
            slots: Vec::new(),
            gens: Vec::new(),
            client: Vec::new(),
            live: 0,
            budget: conn_budget(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            pending: HashMap::new(),
            peekbuf: vec![0; PEEK_MAX],
            any_paused: false,
            stand_ins: HashMap::new(),
            next_stand_in: 1,
            up_fd: -1,
            up_slot: usize::MAX,
            up_read: Instant::now(),
            up_silent: false,
        };
        Ok(r)
    }

    fn alloc(&mut self, s: Slot) -> usize {
        let client = matches!(s, Slot::Conn(_) | Slot::DnsTcp(_));
        self.live += usize::from(client);
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = s;
                self.gens[i] = self.gens[i].wrapping_add(1);
                self.client[i] = client;
                i
            }
            None => {
                self.slots.push(s);
                self.gens.push(0);
                self.client.push(client);
                self.slots.len() - 1
            }
        }
    }

    fn release(&mut self, i: usize) {
        self.slots[i] = Slot::Free;
        self.free.push(i);
        if std::mem::take(&mut self.client[i]) {
            self.live -= 1;
        }
        if self.any_paused && self.live < self.budget {
            self.resume_listeners();
        }
    }

    fn timer(&mut self, after: Duration, t: Timer) {
        self.timers.push(Reverse((Instant::now() + after, t)));
    }

    /// Runs until the jail is gone (the channel reports EOF).
    pub fn run(&mut self) {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        while self.turn(&mut events, None) {}
    }

    /// One turn of the loop: waits for events (until the next timer, or
    /// `cap` ms at most), handles them, fires the timers due. False when
    /// the loop ends (the channel's EOF, or epoll failed).
    fn turn(&mut self, events: &mut [libc::epoll_event], cap: Option<i32>) -> bool {
        let mut timeout = match self.timers.peek() {
            Some(Reverse((at, _))) => {
                let now = Instant::now();
                if *at <= now {
                    0
                } else {
                    (*at - now).as_millis().min(60_000) as i32 + 1
                }
            }
            None => -1,
        };
        if let Some(cap) = cap {
            if timeout < 0 || timeout > cap {
                timeout = cap;
            }
        }
        let n = match sn::epoll_wait(self.ep, events, timeout) {
            Ok(n) => n,
            Err(e) => {
                say(Some(format!(
                    "jail: net: the network helper failed ({}): the jail has no network from now on",
                    errtext(e)
                )));
                return false;
            }
        };
        for ev in &events[..n] {
            let (t, bits) = (ev.u64, ev.events);
            if t == CHANNEL {
                if !self.on_channel() {
                    return false;
                }
                continue;
            }
            let (slot, gen, side) = untoken(t);
            if slot >= self.slots.len() || self.gens[slot] != gen {
                continue;
            }
            self.dispatch(slot, side, bits);
        }
        self.fire_timers();
        true
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, t))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            match t {
                Timer::Slot(slot, gen) => {
                    if slot < self.slots.len() && self.gens[slot] == gen {
                        self.on_timer(slot);
                    }
                }
                Timer::Dns(id) => self.dns_timeout(id),
            }
        }
    }

    /// Messages from the jail's pid 1: its sockets. False on EOF.
    fn on_channel(&mut self) -> bool {
        // Only pid 1's sockets may come now; anything else on this link
        // ends the helper (its flows then fail closed), never ignored.
        match self.chan.recv_as::<crate::outside::channel::NetHandoff>() {
            Ok(Some((crate::outside::channel::NetHandoff::Sockets { .. }, fds))) => {
                for fd in fds {
                    let fd = fd.into_raw_fd();
                    self.add_socket(fd);
                }
                true
            }
            Ok(None) => false,
            Err(e) => {
                say(Some(format!("jail: net: helper: {e}; it stops")));
                false
            }
        }
    }

    fn add_socket(&mut self, fd: RawFd) {
        let _ = sn::set_nonblocking(fd);
        let slot = match sn::kind(fd) {
            Ok((libc::SOCK_STREAM, _)) => {
                let dns = sn::local_addr(fd).map(|a| a.port() == 53).unwrap_or(false);
                self.alloc(Slot::Listener {
                    fd,
                    dns,
                    paused: false,
                })
            }
            Ok((libc::SOCK_DGRAM, _)) => self.alloc(Slot::Udp { fd }),
            _ => {
                sys::close(fd);
                return;
            }
        };
        if sn::epoll_ctl(self.ep, fd, EV_IN, token(slot, self.gens[slot], 0), true).is_err() {
            sys::close(fd);
            self.release(slot);
        }
    }

    fn dispatch(&mut self, slot: usize, side: u64, bits: u32) {
        match &self.slots[slot] {
            Slot::Free => {}
            Slot::Listener { fd, dns, .. } => {
                let (fd, dns) = (*fd, *dns);
                self.on_listener(slot, fd, dns)
            }
            Slot::Udp { fd } => {
                let fd = *fd;
                self.on_udp(fd)
            }
            Slot::Upstream { fd } => {
                let fd = *fd;
                self.on_upstream_udp(fd)
            }
            Slot::Conn(_) => self.on_conn(slot, side, bits),
            Slot::DnsTcp(_) => self.on_dns_tcp(slot),
            Slot::UpTcp(_) => self.on_up_tcp(slot),
        }
    }

    // ----------------------------------------------------------- accepting

    fn on_listener(&mut self, slot: usize, fd: RawFd, dns: bool) {
        loop {
            if self.live >= self.budget {
                self.pause(slot, fd);
                return;
            }
            match sn::accept(fd) {
                Ok(c) => {
                    if dns {
                        self.new_dns_tcp(c)
                    } else {
                        self.new_conn(c)
                    }
                }
                Err(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                    // Out of descriptors: stop listening until a
                    // connection ends (the queue waits in the kernel).
                    self.pause(slot, fd);
                    return;
                }
                Err(libc::EINTR | libc::ECONNABORTED) => continue,
                Err(_) => return,
            }
        }
    }

    fn pause(&mut self, slot: usize, fd: RawFd) {
        let _ = sn::epoll_ctl(self.ep, fd, 0, token(slot, self.gens[slot], 0), false);
        if let Slot::Listener { paused, .. } = &mut self.slots[slot] {
            *paused = true;
        }
        self.any_paused = true;
    }

    fn resume_listeners(&mut self) {
        self.any_paused = false;
        for i in 0..self.slots.len() {
            if let Slot::Listener { fd, paused, .. } = &mut self.slots[i] {
                if *paused {
                    *paused = false;
                    let _ = sn::epoll_ctl(self.ep, *fd, EV_IN, token(i, self.gens[i], 0), false);
                }
            }
        }
    }

    fn on_timer(&mut self, slot: usize) {
        match &self.slots[slot] {
            Slot::Conn(_) => self.on_conn_timer(slot),
            Slot::DnsTcp(_) => self.close_dns_tcp(slot),
            Slot::UpTcp(u) => {
                let id = u.id;
                self.close_up_tcp(slot);
                self.tcp_fail(id);
            }
            _ => {}
        }
    }

    /// The end: the summary, and every socket closed (the jail is gone).
    pub fn finish(self) -> Vec<String> {
        let lines = self.s.report.summary();
        for s in &self.slots {
            match s {
                Slot::Listener { fd, .. } | Slot::Udp { fd } | Slot::Upstream { fd } => {
                    sys::close(*fd)
                }
                Slot::Conn(c) => {
                    sys::close(c.client);
                    sys::close(c.up);
                }
                Slot::DnsTcp(t) => sys::close(t.fd),
                Slot::UpTcp(u) => sys::close(u.fd),
                Slot::Free => {}
            }
        }
        sys::close(self.ep);
        lines
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::IntoRawFd;
    use std::time::{Duration, Instant};

    use super::testkit::{self, read_some, send, settle};
    use super::*;

    #[test]
    fn the_budget_keeps_the_reserve_and_counts_whole_connections() {
        assert_eq!(budget_from(1024), (1024 - 64) / 6);
        assert_eq!(budget_from(64 + 6 * 3 + 5), 3);
        // Fewer descriptors than the reserve: still one at a time.
        assert_eq!(budget_from(0), 1);
        assert_eq!(budget_from(10), 1);
        // An unlimited limit is capped, not overflowed.
        assert_eq!(budget_from(u64::MAX), ((1 << 24) - 64) / 6);
    }

    #[test]
    fn tokens_carry_slot_generation_and_side() {
        for (slot, gen, side) in [(0, 0, 0), (1, 7, 1), (0x7fff_ffff, u32::MAX, 1)] {
            assert_eq!(untoken(token(slot, gen, side)), (slot, gen, side));
        }
        assert_ne!(token(3, 1, 0), token(3, 2, 0));
        assert_ne!(token(3, 1, 0), token(3, 1, 1));
        // The channel's token is never a slot's that can exist.
        assert_ne!(untoken(CHANNEL).0, 0);
    }

    fn paused(r: &Relay, slot: usize) -> bool {
        matches!(r.slots[slot], Slot::Listener { paused: true, .. })
    }

    #[test]
    fn accepting_pauses_at_the_budget_and_resumes_when_a_connection_ends() {
        let (mut r, _chan) = testkit::relay(testkit::rules(&[]));
        r.budget = 1;
        let (lfd, port) = testkit::listener();
        r.add_socket(lfd);
        assert!(matches!(r.slots[0], Slot::Listener { dns: false, .. }));
        let _a = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let _b = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        settle();
        r.on_listener(0, lfd, false);
        // One taken (silent: it waits for its first bytes); the other
        // waits in the kernel's queue.
        assert_eq!(r.live, 1);
        assert!(paused(&r, 0) && r.any_paused);
        let first = (1..r.slots.len())
            .find(|&i| matches!(r.slots[i], Slot::Conn(_)))
            .expect("a connection");
        r.close_conn(first, false);
        assert_eq!(r.live, 0);
        assert!(!paused(&r, 0) && !r.any_paused);
        r.on_listener(0, lfd, false);
        assert_eq!(r.live, 1, "the queued connection is taken now");
        assert!(paused(&r, 0));
    }

    #[test]
    fn a_stray_message_on_the_helpers_channel_stops_it_and_sockets_are_taken() {
        use crate::outside::Msg;
        let (mut r, chan) = testkit::relay(testkit::rules(&[]));
        // pid 1's sockets: taken, the helper goes on.
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        use std::os::fd::AsRawFd;
        chan.send(&Msg::NetSockets { more: false }, &[l.as_raw_fd()])
            .expect("send");
        assert!(r.on_channel());
        // Anything else on this link ends it (fails closed), never ignored.
        chan.send(&Msg::Go, &[]).expect("send");
        assert!(!r.on_channel());
    }

    #[test]
    fn within_the_budget_every_connection_is_taken() {
        let (mut r, _chan) = testkit::relay(testkit::rules(&[]));
        r.budget = 3;
        let (lfd, port) = testkit::listener();
        r.add_socket(lfd);
        let _c: Vec<TcpStream> = (0..2)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
            .collect();
        settle();
        r.on_listener(0, lfd, false);
        assert_eq!(r.live, 2);
        assert!(!paused(&r, 0) && !r.any_paused);
    }

    #[test]
    fn a_denied_connection_is_reset() {
        let (mut r, _chan) = testkit::relay(testkit::rules(&[]));
        let (lfd, port) = testkit::listener();
        r.add_socket(lfd);
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        send(&mut c, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
        settle();
        r.on_listener(0, lfd, false);
        let (got, err) = read_some(&mut c, 1);
        assert!(got.is_empty());
        assert_eq!(err, Some(ErrorKind::ConnectionReset), "reset, not closed");
        assert_eq!(r.live, 0);
    }

    #[test]
    fn a_connection_to_an_exposed_port_is_relayed_both_ways() {
        // The "host" server on 127.0.0.1:P, the jail's listener on
        // 127.0.0.2:P: an exposed port is relayed to the host's loopback.
        let server = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = server.local_addr().expect("addr").port();
        let jail_side = TcpListener::bind(("127.0.0.2", port)).expect("bind 127.0.0.2");
        let (mut r, _chan) = testkit::relay(testkit::rules(&[port]));
        r.add_socket(jail_side.into_raw_fd());
        let srv = std::thread::spawn(move || {
            let (mut s, _) = server.accept().expect("accept");
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let (req, _) = read_some(&mut s, 4);
            send(&mut s, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            req
        });
        let mut c = TcpStream::connect(("127.0.0.2", port)).expect("connect");
        send(&mut c, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        drop(c.shutdown(std::net::Shutdown::Write));
        c.set_nonblocking(true).expect("nonblocking");
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 16];
        let (mut got, until) = (Vec::new(), Instant::now() + Duration::from_secs(10));
        let mut closed = false;
        while !closed && Instant::now() < until {
            assert!(r.turn(&mut events, Some(50)));
            let mut buf = [0u8; 4096];
            match std::io::Read::read(&mut c, &mut buf) {
                Ok(0) => closed = true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("client: {e}"),
            }
        }
        let req = srv.join().expect("server");
        assert!(req.starts_with(b"GET / HTTP/1.1\r\n"), "{req:?}");
        assert!(got.ends_with(b"\r\n\r\nok"), "{got:?}");
        assert!(closed, "the server's end reached the client");
        // Both ends done: the connection is gone from the table.
        for _ in 0..10 {
            if r.live == 0 {
                break;
            }
            r.turn(&mut events, Some(50));
        }
        assert_eq!(r.live, 0);
    }

    #[test]
    fn a_reused_slot_has_a_new_generation() {
        let (mut r, _chan) = testkit::relay(testkit::rules(&[]));
        let (fd, _far) = testkit::tcp_pair();
        let a = r.alloc(Slot::Udp { fd });
        let gen = r.gens[a];
        r.release(a);
        let b = r.alloc(Slot::Udp { fd });
        assert_eq!(a, b, "the freed slot is reused");
        assert_ne!(r.gens[b], gen, "an event of the old one is stale");
        assert_eq!(r.live, 0, "not a connection from the jail");
        sys::close(fd);
    }

    #[test]
    fn a_silent_client_is_judged_when_its_timer_fires() {
        let (mut r, _chan) = testkit::relay(testkit::rules(&[]));
        let (lfd, port) = testkit::listener();
        r.add_socket(lfd);
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        settle();
        r.on_listener(0, lfd, false);
        assert_eq!(r.live, 1, "waiting for its first bytes");
        assert!(matches!(
            r.timers.peek(),
            Some(Reverse((_, Timer::Slot(1, _))))
        ));
        // Silent to a loopback address: denied, and reset.
        r.on_timer(1);
        assert_eq!(r.live, 0);
        assert_eq!(read_some(&mut c, 1).1, Some(ErrorKind::ConnectionReset));
    }

    #[test]
    fn a_dns_client_that_never_reads_is_closed_by_its_timer() {
        let (mut r, _chan) = testkit::relay(testkit::rules(&[]));
        let (fd, mut far) = testkit::tcp_pair();
        // Small buffers, so the answers back up quickly.
        sn::set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 4096).expect("sndbuf");
        let far_fd = std::os::fd::AsRawFd::as_raw_fd(&far);
        sn::set_int(far_fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 4096).expect("rcvbuf");
        r.new_dns_tcp(fd);
        let q = testkit::dns_query("example.com", 1);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        let chunk: Vec<u8> = framed
            .iter()
            .copied()
            .cycle()
            .take(framed.len() * 100)
            .collect();
        let mut backed_up = false;
        for _ in 0..200 {
            send(&mut far, &chunk);
            settle();
            r.on_dns_tcp(0);
            if let Slot::DnsTcp(t) = &r.slots[0] {
                backed_up |= !t.out.is_empty();
            }
            if backed_up {
                break;
            }
        }
        assert!(backed_up, "answers wait for a client that does not read");
        assert!(matches!(r.slots[0], Slot::DnsTcp(_)));
        r.on_timer(0);
        assert!(matches!(r.slots[0], Slot::Free));
        assert_eq!(r.live, 0);
    }
}
