//! Networks written as CIDR (`10.1.0.0/16`, `fd00:1::/64`), typed: the
//! site's `[slurm] cluster_networks`. A network with host bits set
//! (`10.1.2.3/16`) is an error, not silently widened or narrowed.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 address
    /// (`::ffff:10.1.2.3`, what an AF_INET6 socket uses to reach IPv4)
    /// is the IPv4 address it maps.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, canonical(*ip)) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = mask32(self.prefix);
                u32::from(a) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = mask128(self.prefix);
                u128::from(a) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

/// `ip` with an IPv4-mapped IPv6 address turned into its IPv4 address.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad =
            |why: &str| format!("`{s}` is not a network (ADDRESS/PREFIX, e.g. 10.1.0.0/16): {why}");
        let (a, p) = s.split_once('/').ok_or_else(|| bad("no /PREFIX"))?;
        let addr: IpAddr = a.parse().map_err(|_| bad("not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|n| *n <= max && p.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| bad(&format!("the prefix must be 0 to {max}")))?;
        let host_bits = match addr {
            IpAddr::V4(v4) => u32::from(v4) & !mask32(prefix) != 0,
            IpAddr::V6(v6) => u128::from(v6) & !mask128(prefix) != 0,
        };
        if host_bits {
            return Err(bad("host bits are set after the prefix"));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_matches_ipv4_and_ipv6() {
        let n: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(n.contains(&ip("10.1.0.0")));
        assert!(n.contains(&ip("10.1.255.255")));
        assert!(!n.contains(&ip("10.2.0.1")));
        assert!(!n.contains(&ip("fd00:1::1")));
        // An AF_INET6 socket reaching IPv4 through a mapped address.
        assert!(n.contains(&ip("::ffff:10.1.2.3")));
        assert!(!n.contains(&ip("::ffff:10.2.2.3")));
        let n6: Cidr = "fd00:1::/64".parse().unwrap();
        assert!(n6.contains(&ip("fd00:1::5")));
        assert!(!n6.contains(&ip("fd00:2::5")));
        assert!(!n6.contains(&ip("10.1.0.1")));
        assert_eq!(n6.to_string(), "fd00:1::/64");
        let host: Cidr = "198.18.0.12/32".parse().unwrap();
        assert!(host.contains(&ip("198.18.0.12")));
        assert!(!host.contains(&ip("198.18.0.13")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(&ip("1.2.3.4")));
        assert!(!all.contains(&ip("::1")));
    }

    #[test]
    fn bad_networks_are_errors() {
        for bad in [
            "10.1.0.0",
            "10.1.0.0/33",
            "10.1.0.0/-1",
            "10.1.0.0/+8",
            "10.1.2.3/16",
            "fd00:1::1/64",
            "fd00::/129",
            "example.org/8",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn round_trips_through_serde_as_a_string() {
        let n: Cidr = "fd00:1::/64".parse().unwrap();
        let s = serde_json::to_string(&n).unwrap();
        assert_eq!(s, "\"fd00:1::/64\"");
        assert_eq!(serde_json::from_str::<Cidr>(&s).unwrap(), n);
    }
}
