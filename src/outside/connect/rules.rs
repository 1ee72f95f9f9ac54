//! What a cluster-mode task may reach, as pure functions: the
//! destination a sockaddr names (as the kernel reads it for the socket's
//! family and the syscall) and the decision on it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::config::cidr::{canonical, Cidr};

/// The rule: the job's own nodes and the site's cluster networks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    /// The addresses of the nodes of the job's allocation.
    pub hosts: Vec<IpAddr>,
    pub networks: Vec<Cidr>,
    /// Exact loopback endpoints of the job's own step on this node: the
    /// PMIx server slurmstepd runs for it (PMIX_SERVER_URI*).
    #[serde(default)]
    pub endpoints: Vec<SocketAddr>,
}

/// Where an inet socket's syscall would send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// This address.
    Inet(SocketAddr),
    /// Nowhere new: connect(AF_UNSPEC) dissolves an association; an
    /// IPv6 datagram socket's send to AF_UNSPEC uses its connected peer.
    None,
    /// A sockaddr the kernel would refuse for an inet socket (too short:
    /// EINVAL; another family: EAFNOSUPPORT): refused with that errno
    /// without performing anything.
    Refused(i32),
}

const AF_INET: u16 = libc::AF_INET as u16;
const AF_INET6: u16 = libc::AF_INET6 as u16;
const AF_UNSPEC: u16 = libc::AF_UNSPEC as u16;

fn v4(b: &[u8]) -> Option<SocketAddr> {
    // sockaddr_in: family, port (network order), address.
    if b.len() < 16 {
        return None;
    }
    let port = u16::from_be_bytes([b[2], b[3]]);
    Some(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(b[4], b[5], b[6], b[7])),
        port,
    ))
}

fn v6(b: &[u8]) -> Option<SocketAddr> {
    // sockaddr_in6: family, port, flowinfo, address (16), scope id; the
    // kernel takes 24 bytes (RFC 2133's size) as enough.
    if b.len() < 24 {
        return None;
    }
    let port = u16::from_be_bytes([b[2], b[3]]);
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[8..24]);
    Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), port))
}

/// The destination of a connect (`send: false`) or a send with an
/// address (`send: true`) on an inet socket, from the sockaddr's bytes.
/// An AF_INET socket's UDP and ping send read an AF_UNSPEC sockaddr as
/// AF_INET (Linux's udp_sendmsg): so does this.
pub fn dest(sockaddr: &[u8], send: bool) -> Dest {
    if sockaddr.len() < 2 {
        return Dest::Refused(libc::EINVAL);
    }
    let family = u16::from_ne_bytes([sockaddr[0], sockaddr[1]]);
    let parsed = match family {
        AF_INET => v4(sockaddr),
        AF_INET6 => v6(sockaddr),
        AF_UNSPEC if send => match v4(sockaddr) {
            // Too short for an IPv4 reading: the kernel refuses it (v4)
            // or uses the connected peer (v6).
            None => return Dest::None,
            some => some,
        },
        AF_UNSPEC => return Dest::None,
        _ => return Dest::Refused(libc::EAFNOSUPPORT),
    };
    parsed.map_or(Dest::Refused(libc::EINVAL), Dest::Inet)
}

/// Why a destination is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Loopback and the unspecified address (this node itself): other
    /// users' node-local services listen there (the step's own PMIx
    /// server, an exact endpoint, excepted).
    ThisNode,
    /// Not a node of the job nor in a cluster network.
    Elsewhere,
}

impl Denied {
    pub fn why(self) -> &'static str {
        match self {
            Denied::ThisNode => {
                "loopback is not reachable from a job's task (node-local services of other users)"
            }
            Denied::Elsewhere => "not a node of this job nor in the site's cluster networks",
        }
    }
}

/// The decision on one destination.
pub fn decide(to: SocketAddr, rules: &Rules) -> Result<(), Denied> {
    let ip = canonical(to.ip());
    if rules
        .endpoints
        .iter()
        .any(|e| canonical(e.ip()) == ip && e.port() == to.port())
    {
        return Ok(());
    }
    if ip.is_loopback() || ip.is_unspecified() {
        return Err(Denied::ThisNode);
    }
    if rules.hosts.iter().any(|h| canonical(*h) == ip)
        || rules.networks.iter().any(|n| n.contains(&ip))
    {
        return Ok(());
    }
    Err(Denied::Elsewhere)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sin(a: [u8; 4], port: u16) -> Vec<u8> {
        let mut b = vec![0u8; 16];
        b[0..2].copy_from_slice(&AF_INET.to_ne_bytes());
        b[2..4].copy_from_slice(&port.to_be_bytes());
        b[4..8].copy_from_slice(&a);
        b
    }

    fn sin6(a: Ipv6Addr, port: u16) -> Vec<u8> {
        let mut b = vec![0u8; 28];
        b[0..2].copy_from_slice(&AF_INET6.to_ne_bytes());
        b[2..4].copy_from_slice(&port.to_be_bytes());
        b[8..24].copy_from_slice(&a.octets());
        b
    }

    fn rules() -> Rules {
        Rules {
            hosts: vec![
                "198.18.0.11".parse().unwrap(),
                "198.18.0.12".parse().unwrap(),
            ],
            networks: vec![
                "10.1.0.0/16".parse().unwrap(),
                "fd00:1::/64".parse().unwrap(),
            ],
            endpoints: vec![],
        }
    }

    fn at(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 7)
    }

    #[test]
    fn the_steps_own_pmix_server_on_loopback_and_nothing_else_there() {
        let mut r = rules();
        r.endpoints = vec!["127.0.0.1:36553".parse().unwrap()];
        assert_eq!(decide("127.0.0.1:36553".parse().unwrap(), &r), Ok(()));
        assert_eq!(
            decide("[::ffff:127.0.0.1]:36553".parse().unwrap(), &r),
            Ok(())
        );
        assert_eq!(
            decide("127.0.0.1:36554".parse().unwrap(), &r),
            Err(Denied::ThisNode)
        );
        assert_eq!(
            decide("[::1]:36553".parse().unwrap(), &r),
            Err(Denied::ThisNode)
        );
    }

    #[test]
    fn the_jobs_nodes_and_cluster_networks_only() {
        let r = rules();
        let ok = |s: &str| decide(at(s), &r);
        assert_eq!(ok("198.18.0.12"), Ok(()));
        assert_eq!(ok("10.1.3.4"), Ok(()));
        assert_eq!(ok("fd00:1::9"), Ok(()));
        assert_eq!(ok("::ffff:198.18.0.11"), Ok(()));
        assert_eq!(ok("198.18.0.1"), Err(Denied::Elsewhere));
        assert_eq!(ok("10.2.0.1"), Err(Denied::Elsewhere));
        assert_eq!(ok("fd00:2::1"), Err(Denied::Elsewhere));
        assert_eq!(ok("::ffff:198.18.0.1"), Err(Denied::Elsewhere));
        for local in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "0.0.0.0",
            "::",
            "::ffff:127.0.0.1",
        ] {
            assert_eq!(ok(local), Err(Denied::ThisNode), "{local}");
        }
        // Even a site network that includes loopback does not open it.
        let all = Rules {
            networks: vec!["0.0.0.0/0".parse().unwrap()],
            ..Rules::default()
        };
        assert_eq!(decide(at("127.0.0.1"), &all), Err(Denied::ThisNode));
        assert_eq!(decide(at("1.2.3.4"), &all), Ok(()));
        assert_eq!(
            decide(at("1.2.3.4"), &Rules::default()),
            Err(Denied::Elsewhere)
        );
    }

    #[test]
    fn sockaddrs_are_read_as_the_kernel_reads_them() {
        let a = sin([198, 18, 0, 1], 80);
        assert_eq!(
            dest(&a, false),
            Dest::Inet("198.18.0.1:80".parse().unwrap())
        );
        let b = sin6("fd00:1::5".parse().unwrap(), 443);
        assert_eq!(
            dest(&b, true),
            Dest::Inet("[fd00:1::5]:443".parse().unwrap())
        );
        assert_eq!(
            dest(&b[..24], true),
            Dest::Inet("[fd00:1::5]:443".parse().unwrap())
        );
        assert_eq!(dest(&b[..20], false), Dest::Refused(libc::EINVAL));
        assert_eq!(dest(&a[..8], false), Dest::Refused(libc::EINVAL));
        assert_eq!(dest(&[], false), Dest::Refused(libc::EINVAL));
        // AF_UNSPEC: connect dissolves; a send reads it as IPv4.
        let mut u = a.clone();
        u[0..2].copy_from_slice(&AF_UNSPEC.to_ne_bytes());
        assert_eq!(dest(&u, false), Dest::None);
        assert_eq!(dest(&u, true), Dest::Inet("198.18.0.1:80".parse().unwrap()));
        assert_eq!(dest(&u[..2], true), Dest::None);
        let mut x = a;
        x[0..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(dest(&x, true), Dest::Refused(libc::EAFNOSUPPORT));
    }
}
