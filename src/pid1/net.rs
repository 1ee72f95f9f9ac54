//! pid 1's side of the jail's network (the plan is `plan::net`), run after
//! `lo` is up and before hardening (root of its own user namespace, so it
//! may still change routes and bind port 53): `prepare` builds the netlink
//! messages in the launcher before the clone; `execute` runs in pid 1
//! without allocating and hands the sockets to the network helper outside
//! (`outside::net`) over its channel.

use std::os::fd::RawFd;

use crate::config::spec::NetMode;
use crate::outside::{Channel, Msg};
use crate::plan::net::{NetPlan, NetStep, DNS_ADDR, MAX_PORTS, OWN_V6};
use crate::sys;

/// A step ready for pid 1.
enum Ready {
    Route {
        request: Vec<u8>,
        v6: bool,
    },
    Listen {
        port: u16,
    },
    Dns,
    /// `optional`: under `none` the helper only makes failures clearer;
    /// without it the jail is as closed, so a failed handoff is no error.
    Handoff {
        optional: bool,
    },
}

/// What pid 1 runs, built before the clone.
pub struct Prepared {
    steps: Vec<Ready>,
}

/// The rtnetlink request for a `local` default route of one family on
/// `lo` (ifindex 1 in every network namespace: it is registered first).
fn local_route_request(v6: bool) -> Vec<u8> {
    use netlink_packet_core::{NetlinkMessage, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};
    use netlink_packet_route::route::{
        RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType,
    };
    use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
    const RT_TABLE_LOCAL: u8 = 255;
    const LO_INDEX: u32 = 1;
    let mut m = RouteMessage::default();
    m.header.address_family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    m.header.destination_prefix_length = 0;
    m.header.table = RT_TABLE_LOCAL;
    m.header.protocol = RouteProtocol::Boot;
    m.header.scope = RouteScope::Host;
    m.header.kind = RouteType::Local;
    m.attributes.push(RouteAttribute::Oif(LO_INDEX));
    let mut nl = NetlinkMessage::from(RouteNetlinkMessage::NewRoute(m));
    nl.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    nl.header.sequence_number = if v6 { 2 } else { 1 };
    nl.finalize();
    let mut buf = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut buf);
    buf
}

/// The rtnetlink request adding the jail's own address of one family to
/// `lo` (ifindex 1), host scope, no duplicate detection.
fn own_address_request(v6: bool) -> Vec<u8> {
    use netlink_packet_core::{NetlinkMessage, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};
    use netlink_packet_route::address::{
        AddressAttribute, AddressFlags, AddressMessage, AddressScope,
    };
    use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
    let ip: std::net::IpAddr = if v6 {
        OWN_V6.parse().expect("literal")
    } else {
        DNS_ADDR.parse().expect("literal")
    };
    let mut m = AddressMessage::default();
    m.header.family = if v6 {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    m.header.prefix_len = if v6 { 128 } else { 32 };
    m.header.scope = AddressScope::Host;
    m.header.index = 1;
    m.attributes.push(AddressAttribute::Local(ip));
    m.attributes.push(AddressAttribute::Address(ip));
    m.attributes
        .push(AddressAttribute::Flags(AddressFlags::Nodad));
    let mut nl = NetlinkMessage::from(RouteNetlinkMessage::NewAddress(m));
    nl.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    nl.header.sequence_number = if v6 { 4 } else { 3 };
    nl.finalize();
    let mut buf = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut buf);
    buf
}

pub fn prepare(plan: &NetPlan) -> Prepared {
    Prepared {
        steps: plan
            .steps
            .iter()
            .map(|s| match s {
                NetStep::LocalRoute { v6 } => Ready::Route {
                    request: local_route_request(*v6),
                    v6: *v6,
                },
                NetStep::OwnAddress { v6 } => Ready::Route {
                    request: own_address_request(*v6),
                    v6: *v6,
                },
                NetStep::Listen { port, .. } => Ready::Listen { port: *port },
                NetStep::Dns => Ready::Dns,
                NetStep::Handoff => Ready::Handoff {
                    optional: plan.mode == NetMode::None,
                },
            })
            .collect(),
    }
}

/// Room for every socket pid 1 opens (ports and the three DNS sockets).
const MAX_FDS: usize = MAX_PORTS + 3;

/// Runs the plan in pid 1. On failure: (index of the failed step, errno).
/// Every socket opened is closed before returning, handed over or not;
/// `chan` stays open (pid 1 holds it for its whole life).
pub fn execute(p: &Prepared, chan: &Channel) -> Result<(), (u32, i32)> {
    let mut fds = [-1 as RawFd; MAX_FDS];
    let mut n = 0;
    let r = run(p, chan, &mut fds, &mut n);
    for &fd in &fds[..n] {
        sys::close(fd);
    }
    r
}

/// Records an opened socket (closed at once when there is no room).
fn keep(fds: &mut [RawFd; MAX_FDS], n: &mut usize, fd: RawFd) -> Result<(), i32> {
    if *n == MAX_FDS {
        sys::close(fd);
        return Err(libc::EMFILE);
    }
    fds[*n] = fd;
    *n += 1;
    Ok(())
}

fn run(
    p: &Prepared,
    chan: &Channel,
    fds: &mut [RawFd; MAX_FDS],
    n: &mut usize,
) -> Result<(), (u32, i32)> {
    for (i, s) in p.steps.iter().enumerate() {
        let at = |e: i32| (i as u32, e);
        match s {
            Ready::Route { request, v6 } => match sys::net::netlink_request(request) {
                Ok(()) => {}
                // A kernel without IPv6: IPv4 alone.
                Err(libc::EAFNOSUPPORT | libc::EOPNOTSUPP | libc::EPROTONOSUPPORT) if *v6 => {}
                Err(e) => return Err(at(e)),
            },
            Ready::Listen { port } => {
                let fd = sys::net::tcp_listener(*port).map_err(at)?;
                keep(fds, n, fd).map_err(at)?;
            }
            Ready::Dns => {
                let fd = sys::net::udp_any(53, false).map_err(at)?;
                keep(fds, n, fd).map_err(at)?;
                match sys::net::udp_any(53, true) {
                    Ok(fd) => keep(fds, n, fd).map_err(at)?,
                    Err(libc::EAFNOSUPPORT) => {}
                    Err(e) => return Err(at(e)),
                }
                let fd = sys::net::tcp_listener(53).map_err(at)?;
                keep(fds, n, fd).map_err(at)?;
            }
            Ready::Handoff { optional } => {
                let count = fds[..*n].chunks(sys::MAX_FDS).len();
                let mut sent = Ok(());
                for (k, chunk) in fds[..*n].chunks(sys::MAX_FDS).enumerate() {
                    sent = chan.send(
                        &Msg::NetSockets {
                            more: k + 1 < count,
                        },
                        chunk,
                    );
                    if sent.is_err() {
                        break;
                    }
                }
                if count == 0 {
                    sent = chan.send(&Msg::NetSockets { more: false }, &[]);
                }
                match sent {
                    Ok(()) => {}
                    Err(_) if *optional => {}
                    Err(crate::outside::ChannelError::Os(e)) => return Err(at(e)),
                    Err(_) => return Err(at(libc::EPROTO)),
                }
            }
        }
    }
    Ok(())
}

/// `jail doctor`'s probe of pid 1's IPv4 steps, in a fresh user and
/// network namespace: the local route, a listener, the DNS sockets.
pub fn probe_steps() -> impl Fn() -> Result<(), i32> {
    let route = local_route_request(false);
    move || {
        sys::net::netlink_request(&route)?;
        for fd in [sys::net::tcp_listener(443)?, sys::net::udp_any(53, false)?] {
            sys::close(fd);
        }
        Ok(())
    }
}

/// Whether this kernel takes the IPv6 local route (doctor).
pub fn probe_v6() -> Result<(), i32> {
    super::exec::loopback_up()?;
    sys::net::netlink_request(&local_route_request(true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_request_is_a_new_local_route_on_lo() {
        let req = local_route_request(false);
        // nlmsghdr: length, RTM_NEWROUTE (24), flags with ACK|CREATE|EXCL.
        assert_eq!(
            u32::from_ne_bytes(req[0..4].try_into().unwrap()) as usize,
            req.len()
        );
        assert_eq!(u16::from_ne_bytes(req[4..6].try_into().unwrap()), 24);
        let flags = u16::from_ne_bytes(req[6..8].try_into().unwrap());
        assert_eq!(flags, 0x1 | 0x4 | 0x400 | 0x200);
        // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type.
        assert_eq!(
            &req[16..24],
            &[libc::AF_INET as u8, 0, 0, 0, 255, 3, 254, 2]
        );
        assert_eq!(local_route_request(true)[16], libc::AF_INET6 as u8);
        // RTM_NEWADDR (20) for lo (ifindex 1), /32, host scope (254).
        let a = own_address_request(false);
        assert_eq!(u16::from_ne_bytes(a[4..6].try_into().unwrap()), 20);
        assert_eq!(&a[16..20], &[libc::AF_INET as u8, 32, 0, 254]);
        assert_eq!(u32::from_ne_bytes(a[20..24].try_into().unwrap()), 1);
    }
}
