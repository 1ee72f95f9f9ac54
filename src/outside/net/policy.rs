//! The network helper's decisions, as pure functions over plain data (no
//! sockets): which names resolve, which addresses are never reached (the
//! floor), which connection goes where. Everything the relay does is
//! decided here, so every rule is unit-tested.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`, as a dual-stack
// socket reports it) is that IPv4 address.
pub use crate::config::cidr::canonical;
use crate::config::domain::Domain;
use crate::config::spec::NetMode;

pub use crate::plan::net::MAIL_PORTS;

/// Stand-in addresses for allowed names when flows go through a proxy
/// (198.18.0.0/15, the benchmarking range: never routed on the internet).
pub const SYNTHETIC: (Ipv4Addr, u32) = (Ipv4Addr::new(198, 18, 0, 0), 15);

/// Whether `ip` is a stand-in address.
pub fn synthetic(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => v4_in(v4, SYNTHETIC.0.octets(), SYNTHETIC.1),
        IpAddr::V6(_) => false,
    }
}

/// Pinned addresses kept at most (a program resolving names without end
/// cannot grow the helper without bound; the oldest pins go first).
pub const MAX_PINS: usize = 8192;

/// Allow and deny entries are `config::domain::Domain`s: the grammar and
/// the matching live there, once, for the configuration and the helper.
/// Names are compared as `normalize` gives them.
pub use crate::config::domain::normalize;

/// Why something was denied; `Display` is the text in the denial line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    NetworkOff,
    NotAllowed,
    DeniedName,
    Floor(&'static str),
    MailPort,
    NotPinned,
    PortNotAllowed,
    NameMismatch { said: String, pinned: String },
    NoName(&'static str),
    Incomplete,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NetworkOff => write!(f, "the network is off"),
            Reason::NotAllowed => write!(f, "not in the allowlist"),
            Reason::DeniedName => write!(f, "on the deny list"),
            Reason::Floor(what) => write!(f, "{what}: never reachable"),
            Reason::MailPort => write!(f, "mail port: never reachable"),
            Reason::NotPinned => write!(f, "address not from an allowed name"),
            Reason::PortNotAllowed => write!(f, "port not allowed"),
            Reason::NameMismatch { said, pinned } => write!(
                f,
                "asked for {} at an address of {}",
                printable(said),
                printable(pinned)
            ),
            Reason::NoName(what) => write!(f, "{what}"),
            Reason::Incomplete => write!(f, "no complete TLS ClientHello or HTTP request"),
        }
    }
}

/// What a name lookup gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameVerdict {
    /// Resolved upstream; its addresses get pinned to the name.
    Resolve,
    /// Answered "no such name" at once. `quiet`: not worth a line
    /// (reverse lookups).
    Deny { reason: Reason, quiet: bool },
}

/// What the first bytes of a connection said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// A TLS ClientHello, with its server name (SNI) if any.
    Tls(Option<String>),
    /// An HTTP request head, with its Host (and absolute-form target).
    Http(Option<String>),
    /// An HTTP request no name check can vouch for, and why (two Host
    /// headers, two lengths, HTTP/0.9, ...).
    BadHttp(&'static str),
    /// Bytes of some other protocol.
    Other,
    /// Nothing yet (a protocol where the server speaks first).
    Silent,
    /// Bytes that started like TLS or HTTP but did not complete in time.
    Incomplete,
}

/// Where a connection goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// To `to`, on behalf of `name` (the allowed name the address was
    /// pinned for, checked against SNI/Host).
    Connect {
        to: SocketAddr,
        name: String,
    },
    /// To the host's own loopback port (`expose_host_ports`).
    Expose {
        to: SocketAddr,
    },
    Deny(Reason),
}

/// The rules of one jail.
#[derive(Debug, Clone)]
pub struct Rules {
    pub mode: NetMode,
    pub allow: Vec<Domain>,
    pub deny: Vec<Domain>,
    pub ports: Vec<u16>,
    pub expose: Vec<u16>,
    /// Flows go through an upstream proxy, which resolves names itself:
    /// allowed names are answered with stand-in addresses (`SYNTHETIC`).
    pub proxy: bool,
}

impl Rules {
    pub fn new(
        mode: NetMode,
        allow: &[Domain],
        deny: &[Domain],
        ports: &[u16],
        expose: &[u16],
    ) -> Rules {
        Rules {
            mode,
            allow: allow.to_vec(),
            deny: deny.to_vec(),
            ports: ports.to_vec(),
            expose: expose.to_vec(),
            proxy: false,
        }
    }

    /// Whether `name` (normalized) may be looked up.
    pub fn name(&self, name: &str) -> NameVerdict {
        let quiet = name.ends_with(".arpa") || name == "arpa";
        let deny = |reason| NameVerdict::Deny { reason, quiet };
        if self.mode == NetMode::None {
            return deny(Reason::NetworkOff);
        }
        if quiet {
            // Reverse lookups would name addresses, not hosts: no one is
            // pinned through them.
            return deny(Reason::NotAllowed);
        }
        if self.deny.iter().any(|d| d.matches(name)) {
            return deny(Reason::DeniedName);
        }
        if self.mode == NetMode::Learn || self.allow.iter().any(|a| a.matches(name)) {
            return NameVerdict::Resolve;
        }
        deny(Reason::NotAllowed)
    }

    /// Whether `name` is allowed by name (not by a wildcard or `learn`):
    /// one the user expects to exist, so "no such name" is worth saying.
    pub fn named(&self, name: &str) -> bool {
        self.allow.iter().any(|a| a.exact() == Some(name))
    }

    /// Whether connections to `name` (allowed, normalized) may use `port`.
    pub fn port_allowed(&self, name: &str, port: u16) -> bool {
        if self.mode == NetMode::Learn {
            return true;
        }
        self.allow.iter().any(|a| {
            a.matches(name)
                && match a.port() {
                    Some(p) => p == port,
                    None => self.ports.contains(&port),
                }
        })
    }
}

/// Addresses every name resolves to, as answered upstream: the pins.
/// Only answers for allowed names are ever pinned.
#[derive(Debug, Default)]
pub struct Pins {
    by_addr: HashMap<IpAddr, Vec<String>>,
    order: std::collections::VecDeque<IpAddr>,
}

impl Pins {
    pub fn pin(&mut self, ip: IpAddr, name: &str) {
        let ip = canonical(ip);
        let names = match self.by_addr.get_mut(&ip) {
            Some(n) => n,
            None => {
                if self.order.len() >= MAX_PINS {
                    if let Some(old) = self.order.pop_front() {
                        self.by_addr.remove(&old);
                    }
                }
                self.order.push_back(ip);
                self.by_addr.entry(ip).or_default()
            }
        };
        if !names.iter().any(|n| n == name) {
            // A handful of names per address at most (CDNs share some).
            if names.len() >= 64 {
                names.remove(0);
            }
            names.push(name.to_string());
        }
    }

    pub fn names(&self, ip: IpAddr) -> &[String] {
        self.by_addr
            .get(&canonical(ip))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.by_addr.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_addr.is_empty()
    }
}

fn v4_in(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn v6_in(ip: Ipv6Addr, net: Ipv6Addr, bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits)
    };
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

/// IPv4 ranges never reached, with what they are.
const FLOOR_V4: &[([u8; 4], u32, &str)] = &[
    ([0, 0, 0, 0], 8, "\"this network\" (0.0.0.0/8)"),
    ([10, 0, 0, 0], 8, "private address (10.0.0.0/8)"),
    ([100, 64, 0, 0], 10, "carrier-grade NAT (100.64.0.0/10)"),
    ([127, 0, 0, 0], 8, "loopback"),
    (
        [169, 254, 0, 0],
        16,
        "link-local / cloud metadata (169.254.0.0/16)",
    ),
    ([172, 16, 0, 0], 12, "private address (172.16.0.0/12)"),
    (
        [192, 0, 0, 0],
        24,
        "IETF protocol assignments (192.0.0.0/24)",
    ),
    ([192, 168, 0, 0], 16, "private address (192.168.0.0/16)"),
    ([198, 18, 0, 0], 15, "benchmarking network (198.18.0.0/15)"),
    ([224, 0, 0, 0], 4, "multicast"),
    ([240, 0, 0, 0], 4, "reserved (240.0.0.0/4)"),
];

/// The floor: whether `ip` is never reached whatever the policy (and
/// why). `host` are the addresses of this host's own interfaces.
pub fn floor(ip: IpAddr, host: &[IpAddr]) -> Option<&'static str> {
    let ip = canonical(ip);
    let class = class(ip, host);
    if class.is_some() {
        return class;
    }
    if host.iter().any(|h| canonical(*h) == ip) {
        return Some("this host's own address");
    }
    None
}

/// The floor's address classes (without the host's own addresses).
fn class(ip: IpAddr, host: &[IpAddr]) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => FLOOR_V4
            .iter()
            .find(|(net, bits, _)| v4_in(v4, *net, *bits))
            .map(|(_, _, what)| *what),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            // Addresses that embed an IPv4 one reach it: judge that.
            let embedded = |v6: Ipv6Addr, at: usize| {
                let o = v6.octets();
                Ipv4Addr::new(o[at], o[at + 1], o[at + 2], o[at + 3])
            };
            if v6_in(v6, "64:ff9b::".parse().expect("literal"), 96)
                || v6_in(v6, "64:ff9b:1::".parse().expect("literal"), 48)
            {
                // NAT64: fine to a public address, floored to a private one.
                return floor(IpAddr::V4(embedded(v6, 12)), host)
                    .map(|_| "NAT64 address of a blocked IPv4 address");
            }
            if s[0] == 0x2002 {
                return floor(IpAddr::V4(embedded(v6, 2)), host)
                    .map(|_| "6to4 address of a blocked IPv4 address");
            }
            if v6.is_loopback() {
                Some("loopback")
            } else if v6_in(v6, Ipv6Addr::UNSPECIFIED, 8) {
                Some("reserved IPv6 (::/8, IPv4-compatible)")
            } else if v6_in(v6, "fc00::".parse().expect("literal"), 7) {
                Some("unique local address (fc00::/7)")
            } else if v6_in(v6, "fe80::".parse().expect("literal"), 10) {
                Some("link-local (fe80::/10)")
            } else if v6_in(v6, "fec0::".parse().expect("literal"), 10) {
                Some("site-local (fec0::/10)")
            } else if s[0] >> 8 == 0xff {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

/// Decides where a connection that arrived for `dst` goes. `pins` are
/// the answers given to the jail, `host` this host's addresses.
pub fn flow(rules: &Rules, pins: &Pins, host: &[IpAddr], dst: SocketAddr, said: &Said) -> Flow {
    let ip = canonical(dst.ip());
    let port = dst.port();
    if ip.is_loopback() && rules.expose.contains(&port) {
        // The host's own loopback, same family: the one deliberate hole.
        let to = if ip.is_ipv4() {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
        } else {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port)
        };
        return Flow::Expose { to };
    }
    if rules.mode == NetMode::None {
        return Flow::Deny(Reason::NetworkOff);
    }
    if MAIL_PORTS.contains(&port) {
        return Flow::Deny(Reason::MailPort);
    }
    // A stand-in address (proxy mode) is no destination: the proxy is
    // asked for the name it was pinned to.
    let stand_in = rules.proxy && synthetic(ip) && !pins.names(ip).is_empty();
    if let Some(what) = floor(ip, host).filter(|_| !stand_in) {
        return Flow::Deny(Reason::Floor(what));
    }
    let to = SocketAddr::new(ip, port);
    // An address allowed as such (`--allow-domain 198.51.100.2`): no name
    // to check.
    let literal = ip.to_string();
    if rules
        .allow
        .iter()
        .any(|a| a.exact() == Some(literal.as_str()))
    {
        return if rules.port_allowed(&literal, port) {
            Flow::Connect { to, name: literal }
        } else {
            Flow::Deny(Reason::PortNotAllowed)
        };
    }
    let pinned = pins.names(ip);
    if pinned.is_empty() {
        return Flow::Deny(Reason::NotPinned);
    }
    let named = |said_name: &str| -> Flow {
        let n = normalize(said_name);
        match pinned.iter().find(|p| **p == n) {
            Some(p) if rules.port_allowed(p, port) => Flow::Connect {
                to,
                name: p.clone(),
            },
            Some(_) => Flow::Deny(Reason::PortNotAllowed),
            None => Flow::Deny(Reason::NameMismatch {
                said: n,
                pinned: pinned[0].clone(),
            }),
        }
    };
    match said {
        Said::Tls(Some(sni)) => named(sni),
        Said::Tls(None) => Flow::Deny(Reason::NoName("TLS without a server name (SNI)")),
        Said::Http(Some(host)) => named(host),
        Said::Http(None) => Flow::Deny(Reason::NoName("HTTP request without a Host")),
        Said::BadHttp(why) => Flow::Deny(Reason::NoName(why)),
        Said::Incomplete => Flow::Deny(Reason::Incomplete),
        Said::Other | Said::Silent => match pinned.iter().find(|p| rules.port_allowed(p, port)) {
            Some(p) => Flow::Connect {
                to,
                name: p.clone(),
            },
            None => Flow::Deny(Reason::PortNotAllowed),
        },
    }
}

/// A name or other peer-chosen text as it may be printed on the user's
/// terminal: printable ASCII only (anything else as `\xNN`), at most 100
/// characters. Names come from the jailed program: unescaped, they could
/// carry terminal escape sequences.
pub fn printable(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes().take(100) {
        if (0x21..0x7f).contains(&b) && b != b'\\' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if s.len() > 100 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(mode: NetMode, allow: &[&str], deny: &[&str]) -> Rules {
        let s = |v: &[&str]| {
            v.iter()
                .map(|x| Domain::parse(x).unwrap())
                .collect::<Vec<_>>()
        };
        Rules::new(mode, &s(allow), &s(deny), &[443], &[11434])
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn names_follow_exact_wildcard_deny_and_mode() {
        let r = rules(
            NetMode::Allowlist,
            &["api.anthropic.com", "*.github.com", "x.org:22"],
            &["gist.github.com"],
        );
        assert_eq!(r.name("api.anthropic.com"), NameVerdict::Resolve);
        assert_eq!(r.name("api.github.com"), NameVerdict::Resolve);
        assert_eq!(r.name("a.b.github.com"), NameVerdict::Resolve);
        assert_eq!(r.name("x.org"), NameVerdict::Resolve);
        let denied = |reason| NameVerdict::Deny {
            reason,
            quiet: false,
        };
        assert_eq!(
            r.name("github.com"),
            denied(Reason::NotAllowed),
            "*. is strict"
        );
        assert_eq!(r.name("evilgithub.com"), denied(Reason::NotAllowed));
        assert_eq!(r.name("anthropic.com"), denied(Reason::NotAllowed));
        assert_eq!(r.name("gist.github.com"), denied(Reason::DeniedName));
        assert!(matches!(
            r.name("1.0.0.127.in-addr.arpa"),
            NameVerdict::Deny { quiet: true, .. }
        ));
        let off = rules(NetMode::None, &["*"], &[]);
        assert_eq!(off.name("api.anthropic.com"), denied(Reason::NetworkOff));
        let learn = rules(NetMode::Learn, &[], &["pastebin.com"]);
        assert_eq!(learn.name("anything.example"), NameVerdict::Resolve);
        assert_eq!(learn.name("pastebin.com"), denied(Reason::DeniedName));
        let any = rules(NetMode::Allowlist, &["*"], &[]);
        assert_eq!(any.name("whatever.example"), NameVerdict::Resolve);
        assert!(r.named("api.anthropic.com") && r.named("x.org"));
        assert!(!r.named("api.github.com"), "a wildcard names no one");
    }

    #[test]
    fn ports_are_global_or_per_name() {
        let r = rules(NetMode::Allowlist, &["a.org", "git.org:22"], &[]);
        assert!(r.port_allowed("a.org", 443));
        assert!(!r.port_allowed("a.org", 22));
        assert!(r.port_allowed("git.org", 22));
        assert!(
            !r.port_allowed("git.org", 443),
            "a NAME:PORT entry is that port only"
        );
        assert!(!r.port_allowed("other.org", 443));
        assert!(rules(NetMode::Learn, &[], &[]).port_allowed("x", 8080));
    }

    #[test]
    fn the_floor_covers_every_class_and_spares_public_and_test_nets() {
        let host = [ip("192.0.2.2"), ip("2001:db8:1::2")];
        for a in [
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "127.9.9.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "192.0.0.170",
            "198.18.0.1",
            "224.0.0.251",
            "255.255.255.255",
            "192.0.2.2",
            "::1",
            "::",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "2002:a00:1::1",
            "2001:db8:1::2",
            "::a00:1",
        ] {
            assert!(floor(ip(a), &host).is_some(), "{a} must be floored");
        }
        for a in [
            "198.51.100.2",
            "203.0.113.80",
            "160.79.104.10",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2607:6bc0::10",
            "2001:db8::2",
            "64:ff9b::808:808",
        ] {
            assert_eq!(floor(ip(a), &host), None, "{a} is public (or a test net)");
        }
    }

    #[test]
    fn flows_need_a_pinned_address_a_matching_name_and_an_allowed_port() {
        let r = rules(
            NetMode::Allowlist,
            &["allowed.test", "*.cdn.test", "git.test:22"],
            &[],
        );
        let host = [ip("198.51.100.1")];
        let mut pins = Pins::default();
        pins.pin(ip("198.51.100.2"), "allowed.test");
        pins.pin(ip("198.51.100.2"), "a.cdn.test");
        pins.pin(ip("198.51.100.3"), "git.test");
        let go = |dst: &str, said: Said| flow(&r, &pins, &host, sa(dst), &said);
        let tls = |n: &str| Said::Tls(Some(n.into()));
        assert_eq!(
            go("198.51.100.2:443", tls("allowed.test")),
            Flow::Connect {
                to: sa("198.51.100.2:443"),
                name: "allowed.test".into()
            }
        );
        assert_eq!(
            go("[::ffff:198.51.100.2]:443", tls("A.CDN.TEST.")),
            Flow::Connect {
                to: sa("198.51.100.2:443"),
                name: "a.cdn.test".into()
            },
            "v4-mapped and case-insensitive"
        );
        assert!(matches!(
            go("198.51.100.2:443", tls("evil.test")),
            Flow::Deny(Reason::NameMismatch { .. })
        ));
        assert!(matches!(
            go("198.51.100.2:443", Said::Http(Some("evil.test".into()))),
            Flow::Deny(Reason::NameMismatch { .. })
        ));
        assert_eq!(
            go("198.51.100.9:443", tls("allowed.test")),
            Flow::Deny(Reason::NotPinned),
            "direct IP, or another address than the name's"
        );
        assert_eq!(
            go("198.51.100.2:8080", tls("allowed.test")),
            Flow::Deny(Reason::PortNotAllowed)
        );
        assert_eq!(
            go("198.51.100.3:22", Said::Other),
            Flow::Connect {
                to: sa("198.51.100.3:22"),
                name: "git.test".into()
            }
        );
        assert_eq!(
            go("198.51.100.3:443", Said::Silent),
            Flow::Deny(Reason::PortNotAllowed)
        );
        assert!(matches!(
            go("198.51.100.2:443", Said::Tls(None)),
            Flow::Deny(Reason::NoName(_))
        ));
        assert!(matches!(
            go("198.51.100.2:443", Said::Http(None)),
            Flow::Deny(Reason::NoName(_))
        ));
        assert_eq!(
            go("198.51.100.2:443", Said::Incomplete),
            Flow::Deny(Reason::Incomplete)
        );
        assert_eq!(
            go("198.51.100.2:25", tls("allowed.test")),
            Flow::Deny(Reason::MailPort)
        );
    }

    #[test]
    fn the_floor_beats_a_pin_and_exposure_is_loopback_only() {
        let r = rules(NetMode::Allowlist, &["internal.test"], &[]);
        let mut pins = Pins::default();
        pins.pin(ip("10.0.0.5"), "internal.test");
        pins.pin(ip("198.51.100.1"), "internal.test");
        let host = [ip("198.51.100.1")];
        let tls = Said::Tls(Some("internal.test".into()));
        assert!(matches!(
            flow(&r, &pins, &host, sa("10.0.0.5:443"), &tls),
            Flow::Deny(Reason::Floor(_))
        ));
        assert_eq!(
            flow(&r, &pins, &host, sa("198.51.100.1:443"), &tls),
            Flow::Deny(Reason::Floor("this host's own address"))
        );
        assert_eq!(
            flow(&r, &pins, &host, sa("127.0.0.1:11434"), &Said::Silent),
            Flow::Expose {
                to: sa("127.0.0.1:11434")
            }
        );
        assert_eq!(
            flow(&r, &pins, &host, sa("[::1]:11434"), &Said::Silent),
            Flow::Expose {
                to: sa("[::1]:11434")
            }
        );
        assert!(matches!(
            flow(&r, &pins, &host, sa("127.0.0.1:443"), &Said::Silent),
            Flow::Deny(Reason::Floor("loopback"))
        ));
        assert!(matches!(
            flow(&r, &pins, &host, sa("198.51.100.2:11434"), &Said::Silent),
            Flow::Deny(Reason::NotPinned)
        ));
    }

    #[test]
    fn an_address_allowed_as_such_needs_no_name_but_keeps_the_floor_and_ports() {
        let r = rules(NetMode::Allowlist, &["198.51.100.2", "10.0.0.1"], &[]);
        let pins = Pins::default();
        let go = |dst: &str| flow(&r, &pins, &[], sa(dst), &Said::Http(Some("x.test".into())));
        assert_eq!(
            go("198.51.100.2:443"),
            Flow::Connect {
                to: sa("198.51.100.2:443"),
                name: "198.51.100.2".into()
            }
        );
        assert_eq!(go("198.51.100.2:80"), Flow::Deny(Reason::PortNotAllowed));
        assert!(matches!(go("10.0.0.1:443"), Flow::Deny(Reason::Floor(_))));
        assert_eq!(go("198.51.100.3:443"), Flow::Deny(Reason::NotPinned));
    }

    #[test]
    fn stand_in_addresses_pass_the_floor_only_through_a_proxy() {
        let mut r = rules(NetMode::Allowlist, &["allowed.test"], &[]);
        let mut pins = Pins::default();
        pins.pin(ip("198.18.0.1"), "allowed.test");
        let tls = Said::Tls(Some("allowed.test".into()));
        assert!(matches!(
            flow(&r, &pins, &[], sa("198.18.0.1:443"), &tls),
            Flow::Deny(Reason::Floor(_))
        ));
        r.proxy = true;
        assert_eq!(
            flow(&r, &pins, &[], sa("198.18.0.1:443"), &tls),
            Flow::Connect {
                to: sa("198.18.0.1:443"),
                name: "allowed.test".into()
            }
        );
        assert!(
            matches!(
                flow(&r, &pins, &[], sa("198.18.0.2:443"), &tls),
                Flow::Deny(Reason::Floor(_))
            ),
            "an unpinned stand-in is floored"
        );
        assert!(synthetic(ip("198.19.255.255")) && !synthetic(ip("198.20.0.0")));
    }

    #[test]
    fn pins_are_bounded() {
        let mut p = Pins::default();
        for i in 0..(MAX_PINS as u32 + 10) {
            p.pin(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), "n");
        }
        assert_eq!(p.len(), MAX_PINS);
        assert!(p.names(ip("10.0.0.0")).is_empty(), "the oldest went first");
    }

    #[test]
    fn printed_names_cannot_carry_escapes() {
        assert_eq!(printable("a.b-c"), "a.b-c");
        assert_eq!(printable("\x1b]0;x\x07"), "\\x1b]0;x\\x07");
        assert_eq!(printable("a b\\"), "a\\x20b\\x5c");
        assert!(printable(&"x".repeat(500)).len() < 110);
    }
}
