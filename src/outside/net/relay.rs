//! The helper's event loop: one thread, one epoll set. It accepts the
//! connections that land on the jail's listening sockets, peeks at their
//! first bytes, asks `policy` where each goes, connects from the host and
//! relays with splice() (the kernel moves the bytes; they never enter this
//! process). It answers DNS on the jail's port-53 sockets through `dns`.
//! A denied connection is reset (RST), never left hanging. The client's
//! bytes pass a gate (`Gate`): a silent client's first bytes are judged
//! whenever they come, and every request of a plain-HTTP connection is
//! (`peek::frame`). The upstream resolver is asked through a socket made
//! on first use, so an unreachable one fails lookups, never the start.
//!
//! Edge-triggered: every handler reads or splices until EAGAIN. Tokens
//! carry a generation, so an event for a slot that was freed and reused
//! within one batch is recognized as stale.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{IntoRawFd, RawFd};
use std::time::{Duration, Instant};

use super::dns::{self, OnQuery, Pending};
use super::peek::{self, Framed, Next, Peek, PEEK_MAX};
use super::policy::{self, Flow as Verdict, Pins, Rules, Said};
use super::report::{Failure, Report};
use crate::outside::notice::Notices;
use crate::outside::{Channel, Msg};
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
/// DNS: when to ask upstream again, and when to give up (SERVFAIL).
const DNS_RETRY: Duration = Duration::from_millis(1500);
const DNS_LIMIT: Duration = Duration::from_secs(5);
/// After the server let a query time out, further queries fail this soon
/// without an answer (it is still asked: the first answer ends this), so
/// a firewalled resolver costs one wait, not one per lookup.
const DNS_LIMIT_SILENT: Duration = Duration::from_millis(700);
/// An idle DNS-over-TCP client is closed after this.
const DNS_TCP_IDLE: Duration = Duration::from_secs(10);
/// DNS queries waiting upstream at most.
const MAX_PENDING: usize = 1024;
/// Bytes one splice call moves at most (bounded by the pipe's size).
const SPLICE_LEN: usize = 1 << 20;
/// A direction that has moved this much is a bulk transfer: its pipe
/// grows from the kernel's default (64 KiB) to `BULK_PIPE`, so each
/// splice moves more. Only then: pipe buffers count against a per-user
/// budget (fs.pipe-user-pages-soft) that the user's other programs share.
const BULK_AFTER: u64 = 4 << 20;
const BULK_PIPE: usize = 1 << 20;

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
    (n.min(1 << 24).saturating_sub(FD_RESERVE) / FDS_PER_CONN).max(1) as usize
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

/// How often resolv.conf is read again at most (on a lookup).
const REREAD: Duration = Duration::from_secs(1);

struct Dir {
    r: RawFd,
    w: RawFd,
    /// Bytes in the pipe, and what it holds at most.
    fill: usize,
    cap: usize,
    /// Bytes moved so far (to tell a bulk transfer), and whether its
    /// pipe was grown (or tried).
    moved: u64,
    grown: bool,
    eof: bool,
    shut: bool,
}

impl Dir {
    fn done(&self) -> bool {
        self.eof && self.fill == 0
    }
}

enum State {
    Peek,
    Connecting,
    ProxySend(usize),
    ProxyRecv,
    Relay,
}

struct Conn {
    client: RawFd,
    up: RawFd,
    dst: SocketAddr,
    /// The name (or address) it is allowed for: for logs and CONNECT.
    name: String,
    state: State,
    since: Instant,
    dirs: Option<[Dir; 2]>,
    /// Readiness as epoll last reported it, per side (client, upstream):
    /// cleared on EAGAIN, so the relay only makes calls that can move
    /// bytes.
    readable: [bool; 2],
    writable: [bool; 2],
    /// CONNECT request to the proxy.
    connect_req: Vec<u8>,
    /// What the client's bytes must pass before they are forwarded.
    gate: Gate,
}

/// The check on the client's bytes of a relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gate {
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

/// What judging the client's next bytes came to.
enum Judged {
    /// Bytes may move (within the gate's limit).
    Go,
    /// Not enough bytes yet.
    Wait,
    /// Denied: what (`NAME:PORT`) and why.
    Deny(String, policy::Reason),
    /// The client's socket failed: reset both sides.
    Failed,
}

struct DnsTcp {
    fd: RawFd,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    /// Queries of this client waiting upstream.
    waiting: usize,
    eof: bool,
}

struct UpTcp {
    fd: RawFd,
    id: u16,
    out: Vec<u8>,
    sent: usize,
    inbuf: Vec<u8>,
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

#[derive(Debug, Clone, Copy)]
enum Client {
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

struct Waiting {
    p: Pending,
    client: Client,
    since: Instant,
    retried: bool,
    /// When it fails (SERVFAIL) without an answer.
    limit: Duration,
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
    pub fn new(chan: Channel, s: Setup) -> Result<Relay, i32> {
        let ep = sn::epoll_create()?;
        sn::epoll_ctl(ep, chan.0, EV_IN, CHANNEL, true)?;
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

    /// The upstream resolver's socket, connected on first use (and again
    /// after a failure or a change of resolv.conf). Err: why no server can
    /// be asked, naming it.
    fn upstream_fd(&mut self) -> Result<(RawFd, SocketAddr), String> {
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
    fn drop_upstream(&mut self) {
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
    fn follow_resolv_conf(&mut self, now: bool) {
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
        let addr = super::first_nameserver(&text);
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
    fn fail_all_pending(&mut self, why: &str) {
        let ids: Vec<u16> = self.pending.keys().copied().collect();
        for id in ids {
            self.dns_fail(id, Failure::Unreachable(why.to_string()));
        }
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
        loop {
            let timeout = match self.timers.peek() {
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
            let n = match sn::epoll_wait(self.ep, &mut events, timeout) {
                Ok(n) => n,
                Err(e) => {
                    say(Some(format!(
                        "jail: net: the network helper failed ({}): the jail has no network from now on",
                        errtext(e)
                    )));
                    return;
                }
            };
            for ev in &events[..n] {
                let (t, bits) = (ev.u64, ev.events);
                if t == CHANNEL {
                    if !self.on_channel() {
                        return;
                    }
                    continue;
                }
                let slot = ((t & 0xffff_ffff) >> 1) as usize;
                let gen = (t >> 32) as u32;
                if slot >= self.slots.len() || self.gens[slot] != gen {
                    continue;
                }
                self.dispatch(slot, t & 1, bits);
            }
            self.fire_timers();
        }
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
        match self.chan.recv() {
            Ok(Some((Msg::NetSockets { .. }, fds))) => {
                for fd in fds {
                    let fd = fd.into_raw_fd();
                    self.add_socket(fd);
                }
                true
            }
            Ok(Some(_)) => true,
            Ok(None) | Err(_) => false,
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

    fn new_conn(&mut self, c: RawFd) {
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

    fn conn(&mut self, slot: usize) -> Option<&mut Conn> {
        match &mut self.slots[slot] {
            Slot::Conn(c) => Some(c),
            _ => None,
        }
    }

    /// Looks at what the client sent so far; decides when it can.
    fn try_peek(&mut self, slot: usize, last: bool) {
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

    fn label(dst: SocketAddr, said: &Said, pins: &Pins) -> String {
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

    fn decide(&mut self, slot: usize, said: Said) {
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
        let gate = match &said {
            _ if unnamed => Gate::Open,
            Said::Silent => Gate::Held,
            Said::Http(_) => Gate::Http {
                left: 0,
                next: Next::Head,
                requests: 0,
            },
            _ => Gate::Open,
        };
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
            let authority = match to.ip().to_string() == name {
                true => to.to_string(),
                false => format!("{name}:{}", to.port()),
            };
            c.connect_req =
                format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").into_bytes();
        }
        self.timer(CONNECT_LIMIT, Timer::Slot(slot, gen));
    }

    fn on_timer(&mut self, slot: usize) {
        match &self.slots[slot] {
            Slot::Conn(c) => {
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
            Slot::DnsTcp(_) => self.close_dns_tcp(slot),
            Slot::UpTcp(u) => {
                let id = u.id;
                self.close_up_tcp(slot);
                self.tcp_fail(id);
            }
            _ => {}
        }
    }

    // ------------------------------------------------------------ relaying

    fn on_conn(&mut self, slot: usize, side: u64, bits: u32) {
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
                if bits & (EV_OUT | err) != 0 {
                    c.writable[side] = true;
                }
                self.pump(slot)
            }
        }
    }

    fn on_connected(&mut self, slot: usize) {
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

    /// CONNECT through the upstream proxy: send the request, read the
    /// reply head (exactly, leaving whatever follows for the relay).
    fn proxy_step(&mut self, slot: usize) {
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

    fn proxy_failed(&mut self, slot: usize, why: &str) {
        if let Some(c) = self.conn(slot) {
            let (name, port) = (c.name.clone(), c.dst.port());
            say(self
                .s
                .report
                .unreachable(&name, port, &format!("via the proxy: {why}")));
        }
        self.close_conn(slot, true);
    }

    /// Watches a stream socket of `slot` (`side` 0 or 1) for reading,
    /// writing and hang-up, edge-triggered; `add` false re-arms one
    /// already watched. False when epoll refuses.
    fn watch_stream(&self, fd: RawFd, slot: usize, side: u64, add: bool) -> bool {
        sn::epoll_ctl(
            self.ep,
            fd,
            EV_IN | EV_OUT | EV_RDHUP | EV_ET,
            token(slot, self.gens[slot], side),
            add,
        )
        .is_ok()
    }

    fn start_relay(&mut self, slot: usize) {
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
    fn pump(&mut self, slot: usize) {
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
            let limits = match gate {
                Gate::Open => [u64::MAX, u64::MAX],
                Gate::Held => [0, u64::MAX],
                Gate::Http {
                    left: 0,
                    next: Next::Upgrade { .. },
                    ..
                } => [0, 0],
                Gate::Http { left, .. } => [left, u64::MAX],
            };
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
    fn judge(&mut self, slot: usize) -> Judged {
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
                let said = match peek::classify(buf, full) {
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
    fn sniff_status(&mut self, slot: usize) -> bool {
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
            Ok(n) => {
                // `HTTP/1.1 101 ` (13 bytes), or a shorter line that ended.
                if n < 13 && !b[..n].contains(&b'\n') {
                    return false;
                }
                let status = &b[..n];
                status.len() >= 13
                    && status.starts_with(b"HTTP/1.")
                    && matches!(status[12], b' ' | b'\r' | b'\n')
                    && if connect {
                        status[9] == b'2'
                    } else {
                        &status[9..12] == b"101"
                    }
            }
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

    fn close_conn(&mut self, slot: usize, reset: bool) {
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

    // ----------------------------------------------------------------- DNS

    fn new_id(&self) -> u16 {
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
    fn query(&mut self, msg: &[u8], client: Client) {
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
    fn stand_in(&mut self, name: &str) -> Option<std::net::Ipv4Addr> {
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
    fn answer(&mut self, client: Client, bytes: Vec<u8>, p: Option<&Pending>) {
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
                    if bytes.len() <= usize::from(u16::MAX) {
                        t.out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
                        t.out.extend_from_slice(&bytes);
                    }
                }
                self.flush_dns_tcp(slot);
            }
        }
    }

    fn on_udp(&mut self, fd: RawFd) {
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

    fn on_upstream_udp(&mut self, fd: RawFd) {
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
    fn upstream_answer(&mut self, msg: &[u8], tcp: bool) {
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

    fn done_waiting(&mut self, w: &Waiting) {
        if let Client::Tcp { slot, gen } = w.client {
            if self.gens[slot] == gen {
                if let Slot::DnsTcp(t) = &mut self.slots[slot] {
                    t.waiting = t.waiting.saturating_sub(1);
                }
            }
        }
    }

    fn dns_timeout(&mut self, id: u16) {
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
    fn server_text(&self) -> String {
        match self.s.upstream.as_ref().and_then(|u| u.addr) {
            Some(a) => a.to_string(),
            None => "(none)".into(),
        }
    }

    /// Answers a query that failed upstream SERVFAIL, and notes why.
    fn dns_fail(&mut self, id: u16, why: Failure) {
        if let Some(w) = self.pending.remove(&id) {
            self.done_waiting(&w);
            say(self.s.report.name_failed(&w.p.name, why));
            let bytes = dns::servfail(&w.p);
            self.answer(w.client, bytes, Some(&w.p));
        }
    }

    /// `dns_fail` for the TCP retry.
    fn tcp_fail(&mut self, id: u16) {
        let why = format!(
            "the DNS server {} gave no answer over TCP",
            self.server_text()
        );
        self.dns_fail(id, Failure::Unreachable(why));
    }

    /// Asks upstream again over TCP (the UDP answer was truncated).
    fn upstream_tcp(&mut self, id: u16) {
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

    fn on_up_tcp(&mut self, slot: usize) {
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
        if u.inbuf.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([u.inbuf[0], u.inbuf[1]]));
            if u.inbuf.len() >= 2 + len {
                let msg = u.inbuf[2..2 + len].to_vec();
                self.close_up_tcp(slot);
                self.upstream_answer(&msg, true);
                // Not answered (did not match): fail it.
                if self.pending.contains_key(&id) {
                    self.tcp_fail(id);
                }
                return;
            }
        }
        if eof {
            self.close_up_tcp(slot);
            self.tcp_fail(id);
        }
    }

    fn close_up_tcp(&mut self, slot: usize) {
        if let Slot::UpTcp(u) = std::mem::replace(&mut self.slots[slot], Slot::Free) {
            sys::close(u.fd);
            self.release(slot);
        }
    }

    fn new_dns_tcp(&mut self, fd: RawFd) {
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

    fn on_dns_tcp(&mut self, slot: usize) {
        let gen = self.gens[slot];
        let Slot::DnsTcp(t) = &mut self.slots[slot] else {
            return;
        };
        let mut buf = [0u8; 16384];
        loop {
            match sn::recv(t.fd, &mut buf) {
                Ok(0) => {
                    t.eof = true;
                    break;
                }
                Ok(n) => {
                    t.inbuf.extend_from_slice(&buf[..n]);
                    if t.inbuf.len() > 4 * 65537 {
                        t.eof = true;
                        break;
                    }
                }
                Err(libc::EAGAIN) => break,
                Err(_) => {
                    t.eof = true;
                    break;
                }
            }
        }
        let mut queries = Vec::new();
        while t.inbuf.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([t.inbuf[0], t.inbuf[1]]));
            if t.inbuf.len() < 2 + len {
                break;
            }
            queries.push(t.inbuf[2..2 + len].to_vec());
            t.inbuf.drain(..2 + len);
        }
        for q in queries {
            self.query(&q, Client::Tcp { slot, gen });
        }
        self.flush_dns_tcp(slot);
    }

    fn flush_dns_tcp(&mut self, slot: usize) {
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

    fn close_dns_tcp(&mut self, slot: usize) {
        if let Slot::DnsTcp(t) = std::mem::replace(&mut self.slots[slot], Slot::Free) {
            sys::close(t.fd);
            self.release(slot);
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

/// The two sockets of one direction and their known readiness.
struct Ends {
    src: RawFd,
    dst: RawFd,
    readable: bool,
    writable: bool,
}

/// One direction of a relayed connection: src → pipe → dst, until
/// nothing moves, reading at most `limit` bytes from src. The bytes read
/// from src, or Err on a socket error (the caller resets both sides).
fn pump_dir(d: &mut Dir, e: &mut Ends, limit: u64) -> Result<u64, i32> {
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
