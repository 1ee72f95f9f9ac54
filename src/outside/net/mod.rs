//! The network helper (`jail __outside net`): the process outside the
//! jail that is the jail's only way to the network (docs/design.md, "Network").
//! It runs as the user, in the host's network namespace; the jail's pid 1
//! hands it the listening sockets every connection of the jail lands on,
//! and the DNS sockets. It ends when the jail's pid 1 does (its channel
//! reports EOF), and the jail's network ends with it (it holds the only
//! copies of those sockets).
//!
//! Split by responsibility: `policy` (every decision, pure), `dns`
//! (messages), `peek` (TLS ClientHello / HTTP head), `relay` (the event
//! loop: accept, connect, splice), `report` (what is said on the
//! terminal), `confine` (its own seccomp and Landlock).

pub mod confine;
pub mod dns;
pub mod peek;
pub mod policy;
pub mod relay;
pub mod report;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use serde::{Deserialize, Serialize};

use super::channel::{NetHandoff, ToHelper};
use super::{Channel, Msg};
use crate::config::domain::Domain;
use crate::config::spec::{JailSpec, NetMode};
use report::Level;

/// The helper's configuration, sent by the launcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub mode: NetMode,
    pub allow: Vec<Domain>,
    pub deny: Vec<Domain>,
    pub ports: Vec<u16>,
    pub expose: Vec<u16>,
    /// The ports the jail listens on: the only ones a flow can have, so
    /// the only ones the helper may connect to (Landlock).
    pub listen: Vec<u16>,
    /// `IP[:PORT]` of the resolver to ask (None: the first nameserver of
    /// the host's /etc/resolv.conf).
    pub upstream: Option<String>,
    /// The resolv.conf whose first nameserver is asked, followed while
    /// the helper runs (when `upstream` is None).
    pub resolv_conf: Option<std::path::PathBuf>,
    /// HOST and PORT of an upstream HTTP proxy (CONNECT).
    pub proxy: Option<(String, u16)>,
    pub level: Level,
    /// Under `none`: where that mode came from, for the one line that
    /// says the network is off.
    pub off: Option<String>,
    /// jail's state directory, for the log of notices (`notice`).
    pub state: Option<std::path::PathBuf>,
}

/// The helper's configuration for `spec` (launcher side). `level`: how
/// much to say.
pub fn config(
    spec: &JailSpec,
    plan: &crate::plan::net::NetPlan,
    level: Level,
) -> Result<Config, String> {
    let n = &spec.network;
    let proxy = match n.proxy.as_ref().map(|p| p.value.as_str()) {
        None => None,
        Some("env") => {
            let v = ["HTTPS_PROXY", "https_proxy"]
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
                .ok_or("network.proxy is `env`, but HTTPS_PROXY is not set")?;
            Some(crate::config::proxy::parse_proxy(&v).ok_or_else(|| {
                format!("HTTPS_PROXY={v}: jail's helper needs an http://HOST:PORT proxy")
            })?)
        }
        Some(p) => Some(
            crate::config::proxy::parse_proxy(p)
                .ok_or_else(|| format!("proxy `{p}` is not http://HOST:PORT"))?,
        ),
    };
    let listen = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            crate::plan::net::NetStep::Listen { port, .. } => Some(*port),
            _ => None,
        })
        .collect();
    Ok(Config {
        mode: n.mode.value,
        allow: n.allow.iter().map(|a| a.value.clone()).collect(),
        deny: n.deny.iter().map(|a| a.value.clone()).collect(),
        ports: n.ports.iter().map(|a| a.value).collect(),
        expose: n.expose_host_ports.iter().map(|a| a.value).collect(),
        listen,
        upstream: n.dns_upstream.as_ref().map(|d| d.value.clone()),
        resolv_conf: Some(resolv_conf()),
        proxy,
        level,
        off: (n.mode.value == NetMode::None).then(|| format!("--net none, from {}", n.mode.source)),
        state: None,
    })
}

/// A started network helper and the read end of a pipe it writes a byte to
/// before it says anything: jail waits at exit only for a helper that has
/// lines to finish (its summary), never for one starting up.
#[derive(Debug)]
pub struct Helper {
    pub pid: libc::pid_t,
    /// The launcher's end of its channel, until it is handed to the jail's
    /// pid 1 (`take`): the helper ends at its EOF.
    pub chan: Option<super::Channel>,
    speaks: std::os::fd::RawFd,
}

impl Helper {
    /// Starts the helper and hands it its configuration. The caller must
    /// be single-threaded.
    pub fn start(how: super::Start, config: &Config) -> Result<Helper, super::ChannelError> {
        let super::Outside { pid, chan } = super::spawn(super::Role::Net, how)?;
        // Its channel closed first: the helper then ends (EOF) and is reaped.
        let given_up = |chan: super::Channel| {
            drop(chan);
            crate::reap::wait_for(pid, false);
        };
        let (speaks, w) = match crate::sys::pipe() {
            Ok(p) => p,
            Err(e) => {
                given_up(chan);
                return Err(super::ChannelError::Os(e));
            }
        };
        let sent = chan.send(&Msg::Net(config.clone()), &[w]);
        crate::sys::close(w);
        if let Err(e) = sent {
            crate::sys::close(speaks);
            given_up(chan);
            return Err(e);
        }
        Ok(Helper {
            pid,
            chan: Some(chan),
            speaks,
        })
    }

    /// Closes its channel if the launcher still holds it (it ends with the
    /// jail: EOF). When it has said something, its last lines (the
    /// summary) come before jail exits; should it not end, jail does not
    /// hang.
    pub fn finish(mut self) {
        drop(self.chan.take());
        if crate::sys::poll_in(self.speaks, 0).unwrap_or(0) & libc::POLLIN != 0 {
            wait_or_kill(self.pid, std::time::Duration::from_secs(5));
        }
        crate::sys::close(self.speaks);
    }
}

/// Waits for the helper to end on its own, up to `limit`, then kills it.
fn wait_or_kill(pid: libc::pid_t, limit: std::time::Duration) {
    use crate::reap as init;
    // A pidfd turns readable when the process ends: no polling delay.
    if let Ok(fd) = crate::sys::pidfd_open(pid) {
        let ended = crate::sys::poll_in(fd, limit.as_millis() as i32).unwrap_or(0) != 0;
        crate::sys::close(fd);
        if !ended {
            tracing::warn!("the network helper did not end with the jail; stopped it");
            // SAFETY: kill our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        init::wait_for(pid, false);
        return;
    }
    let start = std::time::Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child into a local int.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid || (r < 0 && crate::sys::errno() != libc::EINTR) {
            return;
        }
        if start.elapsed() >= limit {
            tracing::warn!("the network helper did not end with the jail; stopped it");
            // SAFETY: kill our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            init::wait_for(pid, false);
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Watches the helper while the program runs: should it end (killed,
/// crashed), the jail's network is gone (its sockets with it: every flow
/// and lookup fails closed), and jail says so at once, or after the
/// program when a full-screen program owns the terminal. Nothing crosses
/// the clone: its pidfd is opened once the program runs.
#[derive(Debug)]
pub struct Watch {
    pid: libc::pid_t,
    pidfd: std::os::fd::RawFd,
    state: std::path::PathBuf,
    kept: Vec<String>,
}

impl Watch {
    pub fn new(pid: libc::pid_t, state: &std::path::Path) -> Watch {
        Watch {
            pid,
            pidfd: -1,
            state: state.to_path_buf(),
            kept: Vec::new(),
        }
    }
}

/// How `pid` (a child) ended, if it did, without reaping it: whether
/// cleanly (exit status 0), and in words.
fn ended(pid: libc::pid_t) -> Option<(bool, String)> {
    // SAFETY: waitid into a zeroed local siginfo; WNOWAIT leaves the
    // child to be reaped by its usual waiter.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        if r != 0 || info.si_pid() != pid {
            return None;
        }
        let status = info.si_status();
        Some(match info.si_code {
            libc::CLD_EXITED => (status == 0, format!("exit status {status}")),
            _ => (false, format!("killed by signal {status}")),
        })
    }
}

impl super::OnDemand for Watch {
    // No channel: it watches the helper's pid.
    fn take_jail_end(&mut self) -> Option<Channel> {
        None
    }

    fn close_launcher_end(&mut self) {}

    fn arm(&mut self) -> Vec<std::os::fd::RawFd> {
        self.pidfd = crate::sys::pidfd_open(self.pid).unwrap_or(-1);
        if self.pidfd >= 0 {
            vec![self.pidfd]
        } else {
            Vec::new()
        }
    }

    fn start(&mut self) {
        // Also called at once where pidfds are missing: only an ended
        // helper is news.
        let Some((clean, how)) = ended(self.pid) else {
            return;
        };
        if clean {
            // Its own end after the jail's (EOF), or a failure it said.
            return;
        }
        let line = format!(
            "jail: net: the network helper ended ({how}) while the program runs: \
             the jail has no network from now on (connections and lookups fail)"
        );
        let mut n = crate::outside::notice::Notices::open(Some(&self.state));
        if n.say(&line) {
            self.kept.extend(n.at_exit());
        }
    }

    fn finish(&mut self) {
        if self.pidfd >= 0 {
            crate::sys::close(self.pidfd);
            self.pidfd = -1;
        }
        for l in self.kept.drain(..) {
            eprintln!("{l}");
        }
    }
}

/// The helper of `--net none` before the jail needs it: there it only
/// answers names "no such name" and says once that the network is off,
/// so it starts on the first query (`OnDemand`). pid 1 hands the DNS
/// sockets to the launcher; the launcher hands them on to the helper
/// it forks, and holds the helper's channel until pid 1 is gone (the
/// helper's EOF, as for a helper started at once).
#[derive(Debug)]
pub struct Pending {
    /// The launcher's end, until pid 1's handoff is read.
    launcher: Option<Channel>,
    /// pid 1's end, until it goes to pid 1 through the clone.
    jail: Option<Channel>,
    config: Config,
    sockets: Vec<std::os::fd::OwnedFd>,
    started: Option<Helper>,
}

impl Pending {
    /// Before the clone.
    pub fn new(config: Config) -> Result<Pending, super::ChannelError> {
        let (launcher, jail) = Channel::pair()?;
        Ok(Pending {
            launcher: Some(launcher),
            jail: Some(jail),
            config,
            sockets: Vec::new(),
            started: None,
        })
    }
}

impl super::OnDemand for Pending {
    fn take_jail_end(&mut self) -> Option<Channel> {
        self.jail.take()
    }

    fn close_launcher_end(&mut self) {
        drop(self.launcher.take());
    }

    fn arm(&mut self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        // pid 1 sends nothing else: the launcher's end is closed after.
        if let Some(launcher) = self.launcher.take() {
            while crate::sys::poll_in(launcher.as_raw_fd(), 0).unwrap_or(0) & libc::POLLIN != 0 {
                match launcher.recv_as::<NetHandoff>() {
                    Ok(Some((NetHandoff::Sockets { more }, fds))) => {
                        self.sockets.extend(fds);
                        if !more {
                            break;
                        }
                    }
                    Ok(None) => break,
                    // Not pid 1's handoff: no sockets from it are taken.
                    Err(e) => {
                        tracing::warn!("network: {e}");
                        self.sockets.clear();
                        break;
                    }
                }
            }
        }
        self.sockets.iter().map(|f| f.as_raw_fd()).collect()
    }

    fn start(&mut self) {
        use std::os::fd::AsRawFd;
        let fds: Vec<i32> = self.sockets.iter().map(|f| f.as_raw_fd()).collect();
        let started = Helper::start(super::Start::Fork, &self.config).and_then(|h| {
            let sent = h
                .chan
                .as_ref()
                .map_or(Ok(()), |c| c.send(&Msg::NetSockets { more: false }, &fds));
            match sent {
                Ok(()) => Ok(h),
                Err(e) => {
                    // Its channel closed first (`finish`), then waited for.
                    h.finish();
                    Err(e)
                }
            }
        });
        // The helper holds the only copies now.
        self.sockets.clear();
        match started {
            Ok(h) => self.started = Some(h),
            // Names then time out instead of failing at once.
            Err(e) => eprintln!("jail: net: cannot start the helper: {e}"),
        }
    }

    fn finish(&mut self) {
        self.sockets.clear();
        self.launcher = None;
        if let Some(h) = self.started.take() {
            // Its channel closed (EOF: the jail is gone), then waited for.
            h.finish();
        }
    }
}

/// The resolv.conf to follow: /etc/resolv.conf, or for tests the file
/// `JAIL_RESOLV_CONF` names when it is a regular file of the user's own
/// (not a link): it only chooses whom the user's own lookups ask, which
/// `--dns-upstream` does too.
pub fn resolv_conf() -> std::path::PathBuf {
    use std::os::unix::fs::MetadataExt;
    let own = |p: &std::path::Path| {
        std::fs::symlink_metadata(p).is_ok_and(|m| {
            // SAFETY: getuid has no preconditions.
            m.file_type().is_file() && m.uid() == unsafe { libc::getuid() }
        })
    };
    match std::env::var_os("JAIL_RESOLV_CONF").map(std::path::PathBuf::from) {
        Some(p) if p.is_absolute() && own(&p) => p,
        Some(p) => {
            tracing::warn!(
                "JAIL_RESOLV_CONF={}: not an absolute path to a regular file of your own; \
                 following /etc/resolv.conf",
                p.display()
            );
            std::path::PathBuf::from("/etc/resolv.conf")
        }
        _ => std::path::PathBuf::from("/etc/resolv.conf"),
    }
}

/// `IP`, `IP:PORT` or `[IPv6]:PORT` → the resolver's address.
pub fn parse_upstream(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    s.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53))
}

/// The first usable `nameserver` of resolv.conf text.
pub fn first_nameserver(text: &str) -> Option<SocketAddr> {
    text.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        if w.next() != Some("nameserver") {
            return None;
        }
        // A link-local address with a %scope cannot be used from here.
        w.next()
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// Raises the soft limit on open files to the hard one: each relayed
/// connection holds six descriptors (two sockets, two pipes).
fn raise_nofile() {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max.min(1 << 20);
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

/// `jail __outside net`.
pub fn main(chan: Channel) -> i32 {
    crate::sys::net::fault_single_pages();
    let cfg = match chan.recv_as::<ToHelper>() {
        Ok(Some((ToHelper::Config(c), fds))) => {
            if let Some(fd) = fds.into_iter().next() {
                relay::speak_to(std::os::fd::IntoRawFd::into_raw_fd(fd));
            }
            c
        }
        // The launcher gave up before the jail existed.
        Ok(None) => return 0,
        // Without its rules the helper relays nothing: refused, loudly
        // (the jail's sockets then reach no one).
        Ok(Some((ToHelper::Sockets { .. }, _))) => {
            eprintln!("jail: network: sockets came before the rules");
            return crate::exit::EXIT_JAIL_ERROR;
        }
        Err(e) => {
            eprintln!("jail: network: {e}");
            return crate::exit::EXIT_JAIL_ERROR;
        }
    };
    if cfg.level == Level::Verbose || cfg.mode == NetMode::Learn {
        // A summary (or the learned allowlist) always comes at the end.
        relay::will_speak();
    }
    // Opened before confinement (no file can be written after).
    relay::notices_to(crate::outside::notice::Notices::open(cfg.state.as_deref()));
    match prepare(&cfg, chan) {
        Ok(mut relay) => {
            // Setup code (configuration, Landlock, seccomp) is done with:
            // its pages go, the loop's come back one by one.
            crate::sys::net::fault_single_pages();
            relay.run();
            // The program is gone: what was kept from its screen, then
            // the summary.
            for l in relay::kept_notices().into_iter().chain(relay.finish()) {
                eprintln!("{l}");
            }
            0
        }
        Err((e, chan)) => {
            // The jail's pid 1 finds the helper gone at its handoff and
            // fails the jail; this line says why, before the channel
            // closes.
            relay::will_speak();
            eprintln!("jail: net: {e}");
            drop(chan);
            1
        }
    }
}

/// Everything read and opened before confinement, then confinement. On
/// failure, why, and the channel back (closed once that is said).
fn prepare(cfg: &Config, chan: Channel) -> Result<relay::Relay, (String, Channel)> {
    match setup(cfg) {
        Ok((setup, ports, read)) => confined(cfg, chan, setup, &ports, &read),
        Err(e) => Err((e, chan)),
    }
}

/// The relay's setup, read before confinement; the ports it may connect
/// to and the paths it may read once confined.
fn setup(cfg: &Config) -> Result<(relay::Setup, Vec<u16>, Vec<std::path::PathBuf>), String> {
    // Under `none` nothing is resolved; through a proxy, the proxy
    // resolves (names get stand-in addresses). Nothing is connected here:
    // an unreachable server fails lookups, never the jail's start.
    let upstream = if cfg.mode == NetMode::None || cfg.proxy.is_some() {
        None
    } else {
        match &cfg.upstream {
            Some(s) => Some(relay::Upstream {
                addr: Some(
                    parse_upstream(s).ok_or_else(|| format!("--dns-upstream {s}: not IP:PORT"))?,
                ),
                follow: None,
            }),
            None => {
                let path = cfg
                    .resolv_conf
                    .clone()
                    .unwrap_or_else(|| std::path::PathBuf::from("/etc/resolv.conf"));
                let addr = std::fs::read_to_string(&path)
                    .ok()
                    .as_deref()
                    .and_then(first_nameserver);
                Some(relay::Upstream {
                    addr,
                    follow: Some(path),
                })
            }
        }
    };
    // The proxy's name is resolved now (resolving reads files it cannot once
    // confined); offline, its flows fail with a line instead of the jail.
    let (proxy, proxy_error) = match &cfg.proxy {
        Some((host, port)) => match (host.as_str(), *port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
        {
            Some(a) => (Some(a), None),
            None => (
                None,
                Some(format!("cannot resolve the proxy {host}:{port}")),
            ),
        },
        None => (None, None),
    };
    raise_nofile();
    let host = crate::sys::net::host_addresses();
    let mut rules = policy::Rules::new(cfg.mode, &cfg.allow, &cfg.deny, &cfg.ports, &cfg.expose);
    rules.proxy = proxy.is_some();
    let mut ports: Vec<u16> = cfg.listen.clone();
    let mut read = Vec::new();
    if let Some(u) = &upstream {
        ports.extend(u.addr.map(|a| a.port()));
        if let Some(p) = &u.follow {
            // A server named later is asked on port 53 (TCP for long
            // answers), and the file is read again: read access to the
            // directories that hold it (where a rename replaces it).
            ports.push(53);
            read.extend(p.parent().map(Into::into));
            if let Ok(real) = std::fs::canonicalize(p) {
                read.extend(real.parent().map(Into::into));
            }
        }
    }
    ports.extend(proxy.map(|a| a.port()));
    let setup = relay::Setup {
        rules,
        host,
        upstream,
        proxy,
        proxy_error,
        report: report::Report::new(cfg.level, cfg.mode == NetMode::Learn, cfg.off.clone()),
    };
    Ok((setup, ports, read))
}

/// The relay on `chan`, then the helper's own confinement.
fn confined(
    cfg: &Config,
    chan: Channel,
    setup: relay::Setup,
    ports: &[u16],
    read: &[std::path::PathBuf],
) -> Result<relay::Relay, (String, Channel)> {
    let relay = relay::Relay::new(chan, setup)
        .map_err(|(e, chan)| (format!("cannot start: {}", crate::sys::errno_text(e)), chan))?;
    match confine::apply(ports, read) {
        Ok(c) if !c.landlock && cfg.level == Level::Verbose => {
            relay::will_speak();
            eprintln!("jail: net: the helper runs without Landlock (this kernel lacks it); seccomp applies")
        }
        Ok(_) => {}
        Err(e) => {
            relay::will_speak();
            eprintln!(
                "jail: net: warning: the network helper runs without its own confinement ({e})"
            )
        }
    }
    Ok(relay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_comes_from_the_flag_or_resolv_conf() {
        assert_eq!(
            parse_upstream("198.51.100.2:5353"),
            Some("198.51.100.2:5353".parse().unwrap())
        );
        assert_eq!(
            parse_upstream("198.51.100.2"),
            Some("198.51.100.2:53".parse().unwrap())
        );
        assert_eq!(
            parse_upstream("[2001:db8::1]:53"),
            Some("[2001:db8::1]:53".parse().unwrap())
        );
        assert_eq!(parse_upstream("dns.example"), None);
        let text = "# x\nsearch a.example\nnameserver fe80::1%eth0\nnameserver 10.255.255.53\nnameserver 1.1.1.1\n";
        assert_eq!(
            first_nameserver(text),
            Some("10.255.255.53:53".parse().unwrap())
        );
        assert_eq!(first_nameserver("options edns0\n"), None);
    }
}
