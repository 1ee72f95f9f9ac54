//! Helpers for the relay's unit tests: connected TCP pairs on 127.0.0.1
//! (nothing leaves the machine) and a `Relay` with no jail behind it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{IntoRawFd, RawFd};
use std::time::{Duration, Instant};

use super::{Relay, Setup};
use crate::config::spec::NetMode;
use crate::outside::net::policy::Rules;
use crate::outside::net::report::{Level, Report};
use crate::outside::Channel;
use crate::sys::net as sn;

/// A connected pair on loopback: (our end, non-blocking raw fd; the far
/// end, a blocking stream with a read timeout).
pub fn tcp_pair() -> (RawFd, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
    let far = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
    far.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let (near, _) = l.accept().expect("accept");
    let fd = near.into_raw_fd();
    sn::set_nonblocking(fd).expect("nonblocking");
    (fd, far)
}

/// A listening socket on 127.0.0.1 (non-blocking raw fd) and its port.
pub fn listener() -> (RawFd, u16) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind on loopback");
    let port = l.local_addr().expect("addr").port();
    (l.into_raw_fd(), port)
}

/// Rules of `--net allowlist` with nothing allowed but `expose`.
pub fn rules(expose: &[u16]) -> Rules {
    Rules::new(NetMode::Allowlist, &[], &[], &[443], expose)
}

/// A relay with these rules, no upstream resolver and no proxy; the far
/// end of its channel is returned too (dropping it would end `run`).
pub fn relay(rules: Rules) -> (Relay, Channel) {
    let (a, b) = Channel::pair().expect("channel pair");
    let setup = Setup {
        rules,
        host: Vec::new(),
        upstream: None,
        proxy: None,
        proxy_error: None,
        report: Report::new(Level::Normal, false, None),
    };
    (Relay::new(a, setup).expect("relay"), b)
}

/// Reads from `s` until `want` bytes came, its end, an error, or 5 s:
/// the bytes, and the error that ended it.
pub fn read_some(s: &mut TcpStream, want: usize) -> (Vec<u8>, Option<std::io::ErrorKind>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let until = Instant::now() + Duration::from_secs(5);
    while got.len() < want && Instant::now() < until {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Some(e.kind())),
        }
    }
    (got, None)
}

/// Writes all of `b` to `s`.
pub fn send(s: &mut TcpStream, b: &[u8]) {
    s.write_all(b).expect("write on loopback");
}

/// Waits a little for loopback to deliver what was just written.
pub fn settle() {
    std::thread::sleep(Duration::from_millis(30));
}

/// A DNS query for `name` (type A) with this id.
pub fn dns_query(name: &str, id: u16) -> Vec<u8> {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};
    let mut m = Message::new();
    m.set_id(id).set_recursion_desired(true);
    m.add_query(Query::query(
        Name::from_ascii(name).expect("name"),
        RecordType::A,
    ));
    m.to_vec().expect("encode")
}

/// A DNS message as hickory reads it.
pub fn dns_parse(b: &[u8]) -> hickory_proto::op::Message {
    hickory_proto::op::Message::from_vec(b).expect("a DNS message")
}

/// Reads one length-framed DNS message from a TCP stream.
pub fn read_framed(s: &mut TcpStream) -> hickory_proto::op::Message {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).expect("a length prefix");
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut msg).expect("the whole message");
    dns_parse(&msg)
}
