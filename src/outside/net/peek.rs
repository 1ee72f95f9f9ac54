//! What the first bytes of a connection say: a TLS ClientHello and its
//! server name (tls-parser), an HTTP request head and its Host (httparse),
//! or another protocol. Pure functions over a byte slice: the relay peeks
//! (MSG_PEEK) and asks again as more arrives; nothing is consumed, so the
//! bytes reach the server unchanged (no interception).

use tls_parser::{
    parse_tls_client_hello_extensions, parse_tls_message_handshake, parse_tls_raw_record, SNIType,
    TlsExtension, TlsMessage, TlsMessageHandshake, TlsRecordType,
};

use super::policy::Said;

/// How much of a connection's start is looked at, at most. A ClientHello
/// with post-quantum key shares is ~2 KiB; 16 KiB leaves room for
/// fragmented ones and long HTTP heads.
pub const PEEK_MAX: usize = 16 * 1024;

/// The verdict on the bytes seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek {
    /// Too few bytes to tell yet.
    NeedMore,
    Said(Said),
}

/// A token character (RFC 9110 §5.6.2): what a method is made of.
fn tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Classifies the start of a connection. `full`: no more bytes will come
/// (the peek buffer is full, or the client stopped sending), so an
/// unfinished ClientHello or request head is `Incomplete`.
///
/// Any request line (`TOKEN SP ... SP HTTP/x`) is HTTP, whatever its
/// method: servers accept methods no list here would know.
pub fn classify(buf: &[u8], full: bool) -> Peek {
    if buf.is_empty() {
        return if full {
            Peek::Said(Said::Silent)
        } else {
            Peek::NeedMore
        };
    }
    if buf[0] == 0x16 {
        return tls(buf, full);
    }
    // Servers skip empty lines before a request line (RFC 9112 §2.2),
    // some any whitespace: what follows is judged, never waved through.
    let blank = buf
        .iter()
        .take_while(|c| matches!(c, b'\r' | b'\n' | b' ' | b'\t'))
        .count();
    if blank > 0 {
        if blank == buf.len() {
            return if full {
                Peek::Said(Said::Incomplete)
            } else {
                Peek::NeedMore
            };
        }
        return match classify(&buf[blank..], full) {
            // Parsed from the start, as the server will.
            Peek::Said(Said::Http(_)) => http(buf, full),
            other => other,
        };
    }
    let method = buf.iter().take_while(|&&c| tchar(c)).count();
    if method == 0 {
        return Peek::Said(Said::Other);
    }
    match buf.get(method) {
        // "GE": could still become "GET ".
        None if !full => return Peek::NeedMore,
        Some(b' ' | b'\t') => {}
        _ => return Peek::Said(Said::Other),
    }
    let Some(eol) = buf.iter().position(|&c| c == b'\n') else {
        return if full {
            Peek::Said(Said::Incomplete)
        } else {
            Peek::NeedMore
        };
    };
    // Wherever "HTTP/" stands in the line (a lenient server may take
    // trailing blanks): strictly parsed, and denied if malformed.
    let line = &buf[..eol];
    if line.windows(5).any(|w| w.eq_ignore_ascii_case(b"HTTP/")) {
        return http(buf, full);
    }
    if [&b"GET"[..], b"HEAD", b"POST"].contains(&&buf[..method]) {
        // HTTP/0.9 (`GET /`): no Host at all, yet some servers answer.
        return Peek::Said(Said::BadHttp("HTTP/0.9 request (no Host)"));
    }
    Peek::Said(Said::Other)
}

/// A ClientHello, possibly fragmented over several handshake records.
fn tls(buf: &[u8], full: bool) -> Peek {
    let more = || {
        if full {
            Peek::Said(Said::Incomplete)
        } else {
            Peek::NeedMore
        }
    };
    let mut hs: Vec<u8> = Vec::new();
    let mut rest = buf;
    loop {
        let (after, rec) = match parse_tls_raw_record(rest) {
            Ok(r) => r,
            Err(tls_parser::Err::Incomplete(_)) => return more(),
            // Starts with 0x16 but is no TLS record: some other protocol.
            Err(_) => return Peek::Said(Said::Tls(None)),
        };
        if rec.hdr.record_type != TlsRecordType::Handshake {
            return Peek::Said(Said::Tls(None));
        }
        hs.extend_from_slice(rec.data);
        rest = after;
        if hs.len() >= 4 {
            let want =
                4 + (usize::from(hs[1]) << 16 | usize::from(hs[2]) << 8 | usize::from(hs[3]));
            if hs[0] != 1 {
                // The first handshake message of a client is its hello.
                return Peek::Said(Said::Tls(None));
            }
            if hs.len() >= want {
                return Peek::Said(Said::Tls(sni(&hs[..want])));
            }
            if want > PEEK_MAX {
                return Peek::Said(Said::Incomplete);
            }
        }
        if rest.is_empty() {
            return more();
        }
    }
}

/// The host_name of a complete ClientHello handshake message, if any.
fn sni(hello: &[u8]) -> Option<String> {
    let Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)))) =
        parse_tls_message_handshake(hello)
    else {
        return None;
    };
    let (_, exts) = parse_tls_client_hello_extensions(ch.ext?).ok()?;
    exts.iter().find_map(|e| match e {
        TlsExtension::SNI(names) => names
            .iter()
            .find(|(t, _)| *t == SNIType::HostName)
            .and_then(|(_, n)| host_name(n)),
        _ => None,
    })
}

/// A DNS host name as sent by a client: letters, digits, `-`, `_`, `.`
/// only (anything else is no name we could have pinned).
fn host_name(b: &[u8]) -> Option<String> {
    let ok = !b.is_empty()
        && b.len() <= 253
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
    ok.then(|| String::from_utf8_lossy(b).to_ascii_lowercase())
}

fn http(buf: &[u8], full: bool) -> Peek {
    match request(buf, full) {
        Request::NeedMore => Peek::NeedMore,
        Request::Incomplete => Peek::Said(Said::Incomplete),
        Request::Bad(why) => Peek::Said(Said::BadHttp(why)),
        Request::Head(h) => Peek::Said(Said::Http(h.host)),
    }
}

/// How the body of a request is delimited (RFC 9112 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    Length(u64),
    Chunked,
}

/// A complete request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Bytes of the head, up to and including its empty line.
    pub len: usize,
    pub host: Option<String>,
    pub body: Body,
    /// `Upgrade:` or CONNECT: the connection may stop being HTTP.
    pub upgrade: bool,
}

/// What the bytes at a request boundary are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    NeedMore,
    /// Started, but cannot complete (`full`).
    Incomplete,
    /// A request no check can vouch for (two Hosts, two lengths, ...).
    Bad(&'static str),
    Head(Head),
}

/// Parses the request head at the start of `buf`. Anything two servers
/// could read differently is `Bad`: the check must see what the server
/// will act on.
pub fn request(buf: &[u8], full: bool) -> Request {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if full {
                Request::Incomplete
            } else {
                Request::NeedMore
            }
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Request::Bad("HTTP request with too many headers")
        }
        Err(_) => return Request::Bad("malformed HTTP request"),
    };
    let named = |n: &'static str| {
        req.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(n))
    };
    let hosts: Vec<&httparse::Header> = named("host").collect();
    if hosts.len() > 1 {
        return Request::Bad("HTTP request with more than one Host header");
    }
    let host = match hosts.first() {
        Some(h) => match authority_host(h.value) {
            Some(n) => Some(n),
            None => return Request::Bad("HTTP request with an unusable Host header"),
        },
        None => None,
    };
    // An absolute-form target (`GET http://other/ HTTP/1.1`) names a host
    // too: it must agree with Host, or the request goes to neither.
    let target = req.path.and_then(|p| {
        let lower = p.get(..8).map(str::to_ascii_lowercase).unwrap_or_default();
        let rest = if lower.starts_with("http://") {
            &p[7..]
        } else if lower.starts_with("https://") {
            &p[8..]
        } else {
            return None;
        };
        let auth = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        let auth = auth.rsplit('@').next().unwrap_or(auth);
        Some(authority_host(auth.as_bytes()))
    });
    let connect = req.method == Some("CONNECT");
    let host = match target {
        _ if connect => req.path.and_then(|p| authority_host(p.as_bytes())),
        Some(t) if t != host || t.is_none() => {
            return Request::Bad("HTTP request whose target and Host name different hosts")
        }
        _ => host,
    };
    let lengths: Vec<&httparse::Header> = named("content-length").collect();
    let codings: Vec<&httparse::Header> = named("transfer-encoding").collect();
    let body = match (lengths.as_slice(), codings.as_slice()) {
        ([], []) => Body::None,
        ([l], []) => {
            let v = std::str::from_utf8(l.value).unwrap_or("").trim();
            match v.parse::<u64>() {
                Ok(n) if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) => {
                    if n == 0 {
                        Body::None
                    } else {
                        Body::Length(n)
                    }
                }
                _ => return Request::Bad("HTTP request with an unusable Content-Length"),
            }
        }
        ([], [t]) if t.value.trim_ascii().eq_ignore_ascii_case(b"chunked") => Body::Chunked,
        ([], _) => return Request::Bad("HTTP request with a transfer coding other than chunked"),
        ([_, _, ..], _) => return Request::Bad("HTTP request with more than one Content-Length"),
        (_, _) => {
            return Request::Bad("HTTP request with both Content-Length and Transfer-Encoding")
        }
    };
    let upgrades: Vec<&httparse::Header> = named("upgrade").collect();
    if upgrades
        .iter()
        .any(|u| u.value.windows(3).any(|w| w.eq_ignore_ascii_case(b"h2c")))
    {
        // Its streams would each name a host of their own, unseen.
        return Request::Bad("HTTP/2 upgrade (h2c): its requests could not be checked");
    }
    let upgrade = connect || !upgrades.is_empty();
    Request::Head(Head {
        len,
        host,
        body,
        upgrade,
    })
}

/// A chunk-size line of a chunked body: `HEX[;ext]\r\n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    NeedMore,
    Bad,
    /// The line's length and the chunk's size.
    Size(usize, u64),
}

/// Longest chunk-size line accepted (extensions included).
const CHUNK_LINE_MAX: usize = 4096;

pub fn chunk_line(buf: &[u8]) -> Chunk {
    let Some(end) = buf.iter().take(CHUNK_LINE_MAX).position(|&b| b == b'\n') else {
        return if buf.len() >= CHUNK_LINE_MAX {
            Chunk::Bad
        } else {
            Chunk::NeedMore
        };
    };
    if end == 0 || buf[end - 1] != b'\r' {
        return Chunk::Bad;
    }
    let line = &buf[..end - 1];
    let digits = line.iter().take_while(|c| c.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 {
        return Chunk::Bad;
    }
    let rest = &line[digits..];
    // Extensions: `;name[=value]`, no bare CR or LF, nothing else.
    if !(rest.is_empty() || rest[0] == b';') || rest.iter().any(|&c| c == b'\r' || c < 0x09) {
        return Chunk::Bad;
    }
    let size = std::str::from_utf8(&line[..digits])
        .ok()
        .and_then(|h| u64::from_str_radix(h, 16).ok());
    match size {
        Some(n) => Chunk::Size(end + 1, n),
        None => Chunk::Bad,
    }
}

/// The trailer section after the last chunk, up to and including its
/// empty line: `Size(length, 0)` (an empty section is the CRLF alone),
/// `NeedMore` while incomplete, `Bad` when it cannot complete.
pub fn trailers(buf: &[u8], full: bool) -> Chunk {
    if buf.starts_with(b"\r\n") {
        return Chunk::Size(2, 0);
    }
    if buf.len() < 2 && !full {
        return Chunk::NeedMore;
    }
    match buf.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => Chunk::Size(i + 4, 0),
        None if full || buf.len() >= PEEK_MAX => Chunk::Bad,
        None => Chunk::NeedMore,
    }
}

/// What is judged next in the client's stream of a plain-HTTP
/// connection (the relay forwards the bytes before it unread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Head,
    ChunkLine,
    ChunkEnd,
    Trailers,
    /// After a first request that asked to switch protocols (`Upgrade:`,
    /// or CONNECT when `connect`): the client waits until the server's
    /// status says whether it did (101, or 2xx for CONNECT).
    Upgrade {
        connect: bool,
    },
}

/// What the bytes at a boundary of a plain-HTTP client stream are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    NeedMore,
    /// A head that cannot complete (`full`).
    Incomplete,
    Bad(&'static str),
    /// `pass` bytes may go on, then `next` is judged. `head`: they start
    /// with a request head, whose host (if any) must be checked first.
    Pass {
        pass: u64,
        next: Next,
        head: Option<Option<String>>,
    },
}

/// Frames a plain-HTTP client stream at a boundary: `buf` starts where
/// `next` is expected. `fresh`: a request here may switch protocols (the
/// first, before the server said anything). Pure: the property tests run
/// it over generated streams.
pub fn frame(next: Next, fresh: bool, buf: &[u8], full: bool) -> Framed {
    let pass = |pass: u64, next: Next| Framed::Pass {
        pass,
        next,
        head: None,
    };
    match next {
        Next::Head => {
            let h = match request(buf, full) {
                Request::NeedMore => return Framed::NeedMore,
                Request::Incomplete => return Framed::Incomplete,
                Request::Bad(why) => return Framed::Bad(why),
                Request::Head(h) => h,
            };
            let after = if h.upgrade && fresh {
                Next::Upgrade {
                    connect: buf[..h.len].trim_ascii_start().starts_with(b"CONNECT "),
                }
            } else {
                Next::Head
            };
            let head = h.len as u64;
            let (pass, next) = match h.body {
                Body::None => (head, after),
                Body::Length(len) => (head.saturating_add(len), after),
                Body::Chunked => (head, Next::ChunkLine),
            };
            Framed::Pass {
                pass,
                next,
                head: Some(h.host),
            }
        }
        Next::ChunkLine => match chunk_line(buf) {
            Chunk::NeedMore if !full => Framed::NeedMore,
            Chunk::NeedMore | Chunk::Bad => Framed::Bad("malformed chunked body"),
            Chunk::Size(line, 0) => pass(line as u64, Next::Trailers),
            Chunk::Size(line, size) => pass(line as u64 + size, Next::ChunkEnd),
        },
        Next::ChunkEnd => match buf.get(..2) {
            None => Framed::NeedMore,
            Some(b"\r\n") => pass(2, Next::ChunkLine),
            Some(_) => Framed::Bad("malformed chunked body"),
        },
        Next::Trailers => match trailers(buf, full) {
            Chunk::NeedMore => Framed::NeedMore,
            Chunk::Bad => Framed::Bad("malformed chunked body"),
            Chunk::Size(len, _) => pass(len as u64, Next::Head),
        },
        Next::Upgrade { .. } => Framed::NeedMore,
    }
}

/// The host of `host[:port]` or `[v6]:port`.
fn authority_host(v: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let host = if let Some(r) = s.strip_prefix('[') {
        r.split(']').next()?
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|c| c.is_ascii_digit()) => h,
            _ => s,
        }
    };
    if host.contains(':') {
        // An IPv6 literal: no name.
        return Some(host.to_ascii_lowercase());
    }
    host_name(host.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A minimal TLS 1.2-style ClientHello with an SNI extension, built
    /// byte by byte as RFC 8446 §4.1.2 lays it out.
    fn client_hello(sni: Option<&str>) -> Vec<u8> {
        let mut ext = Vec::new();
        if let Some(n) = sni {
            let n = n.as_bytes();
            let list_len = 3 + n.len();
            ext.extend_from_slice(&[0x00, 0x00]); // server_name
            ext.extend_from_slice(&((list_len + 2) as u16).to_be_bytes());
            ext.extend_from_slice(&(list_len as u16).to_be_bytes());
            ext.push(0); // host_name
            ext.extend_from_slice(&(n.len() as u16).to_be_bytes());
            ext.extend_from_slice(n);
        }
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7u8; 32]); // random
        body.push(0); // session id
        body.extend_from_slice(&[0x00, 0x02, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[0x01, 0x00]); // null compression
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![0x01];
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        hs
    }

    fn records(hs: &[u8], size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in hs.chunks(size) {
            out.extend_from_slice(&[0x16, 0x03, 0x01]);
            out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
            out.extend_from_slice(chunk);
        }
        out
    }

    #[test]
    fn the_server_name_comes_out_of_a_client_hello() {
        let b = records(&client_hello(Some("API.Example.com")), 1 << 14);
        assert_eq!(
            classify(&b, false),
            Peek::Said(Said::Tls(Some("api.example.com".into())))
        );
        let none = records(&client_hello(None), 1 << 14);
        assert_eq!(classify(&none, false), Peek::Said(Said::Tls(None)));
    }

    #[test]
    fn a_fragmented_or_partial_hello_waits_for_more() {
        let hs = client_hello(Some("a.example"));
        let b = records(&hs, 10);
        assert_eq!(
            classify(&b, false),
            Peek::Said(Said::Tls(Some("a.example".into()))),
            "reassembled from 10-byte records"
        );
        for cut in 1..b.len() {
            assert_eq!(classify(&b[..cut], false), Peek::NeedMore, "cut {cut}");
            assert_eq!(classify(&b[..cut], true), Peek::Said(Said::Incomplete));
        }
    }

    #[test]
    fn a_name_with_bytes_no_dns_name_has_is_no_name() {
        let b = records(&client_hello(Some("evil\u{1b}.example")), 1 << 14);
        assert_eq!(classify(&b, false), Peek::Said(Said::Tls(None)));
    }

    #[test]
    fn http_host_and_absolute_targets() {
        let c = |s: &str| classify(s.as_bytes(), false);
        assert_eq!(
            c("GET / HTTP/1.1\r\nHost: Example.com:8080\r\n\r\n"),
            Peek::Said(Said::Http(Some("example.com".into())))
        );
        assert_eq!(c("GET / HTTP/1.1\r\nHost: a"), Peek::NeedMore);
        assert_eq!(
            c("GET / HTTP/1.0\r\n\r\n"),
            Peek::Said(Said::Http(None)),
            "no Host"
        );
        assert!(
            matches!(
                c("GET http://evil.test/ HTTP/1.1\r\nHost: good.test\r\n\r\n"),
                Peek::Said(Said::BadHttp(_))
            ),
            "target and Host disagree"
        );
        assert_eq!(
            c("GET http://good.test/x HTTP/1.1\r\nHost: good.test\r\n\r\n"),
            Peek::Said(Said::Http(Some("good.test".into())))
        );
        assert_eq!(
            c("CONNECT evil.test:443 HTTP/1.1\r\nHost: good.test\r\n\r\n"),
            Peek::Said(Said::Http(Some("evil.test".into())))
        );
        assert_eq!(c("GE"), Peek::NeedMore);
        assert_eq!(c("FOO / HT"), Peek::NeedMore);
        assert_eq!(
            c("FOO / HTTP/1.1\r\nHost: other.test\r\n\r\n"),
            Peek::Said(Said::Http(Some("other.test".into()))),
            "any method is HTTP"
        );
        assert!(matches!(c("GET /\r\n"), Peek::Said(Said::BadHttp(_))));
        assert!(matches!(
            c("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Peek::Said(Said::BadHttp(_))
        ));
        assert_eq!(c("AUTH x\r\n"), Peek::Said(Said::Other));
        assert_eq!(
            c("\r\n\r\nGET / HTTP/1.1\r\nHost: other.test\r\n\r\n"),
            Peek::Said(Said::Http(Some("other.test".into()))),
            "empty lines before a request are the server's to skip, not ours to wave through"
        );
        assert!(matches!(
            c(" GET / HTTP/1.1\r\nHost: other.test\r\n\r\n"),
            Peek::Said(Said::BadHttp(_))
        ));
        assert_eq!(c("\r\n"), Peek::NeedMore);
        for odd in [
            "GET\t/ HTTP/1.1\r\nHost: other.test\r\n\r\n",
            "GET / HTTP/1.1 \r\nHost: other.test\r\n\r\n",
        ] {
            assert!(
                matches!(c(odd), Peek::Said(Said::BadHttp(_) | Said::Http(_))),
                "{odd:?}: {:?}",
                c(odd)
            );
        }
        assert_eq!(classify(b"HELLO", true), Peek::Said(Said::Other));
        assert_eq!(classify(b"GET /aaaa", true), Peek::Said(Said::Incomplete));
        assert_eq!(c("SSH-2.0-OpenSSH_9.2\r\n"), Peek::Said(Said::Other));
        assert_eq!(classify(b"", true), Peek::Said(Said::Silent));
        assert_eq!(classify(b"", false), Peek::NeedMore);
    }

    #[test]
    fn heads_that_servers_could_read_two_ways_are_bad() {
        let r = |s: &str| request(s.as_bytes(), false);
        for bad in [
            "GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a.test\r\nhost: a.test\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: +3\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a.test\r\nUpgrade: H2C\r\n\r\n",
        ] {
            assert!(matches!(r(bad), Request::Bad(_)), "{bad:?}: {:?}", r(bad));
        }
        let h = |s: &str| match r(s) {
            Request::Head(h) => h,
            other => panic!("{s:?}: {other:?}"),
        };
        let g = h("GET / HTTP/1.1\r\nHost: a.test\r\n\r\nGET");
        assert_eq!((g.len, g.body, g.upgrade), (32, Body::None, false));
        let p = h("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 12\r\n\r\n");
        assert_eq!(p.body, Body::Length(12));
        let c = h("POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert_eq!(c.body, Body::Chunked);
        let u = h("GET / HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n\r\n");
        assert!(u.upgrade);
        assert_eq!(r("GET / HTTP/1.1\r\nHost: a"), Request::NeedMore);
        let blank = h("\r\nGET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
        assert_eq!(
            blank.len, 34,
            "the empty line is part of what is let through"
        );
        assert_eq!(
            request(b"GET / HTTP/1.1\r\nHost: a", true),
            Request::Incomplete
        );
    }

    #[test]
    fn chunk_framing() {
        assert_eq!(chunk_line(b"1a\r\nxyz"), Chunk::Size(4, 26));
        assert_eq!(chunk_line(b"0;x=y\r\n"), Chunk::Size(7, 0));
        assert_eq!(chunk_line(b"1a"), Chunk::NeedMore);
        for bad in [
            &b"\r\n"[..],
            b"x\r\n",
            b"1a\n",
            b"1 a\r\n",
            b"10000000000000000\r\n",
        ] {
            assert_eq!(chunk_line(bad), Chunk::Bad, "{bad:?}");
        }
        assert_eq!(trailers(b"\r\nGET", false), Chunk::Size(2, 0));
        assert_eq!(trailers(b"X: y\r\n\r\n", false), Chunk::Size(8, 0));
        assert_eq!(trailers(b"X: y\r\n", false), Chunk::NeedMore);
        assert_eq!(trailers(b"X: y\r\n", true), Chunk::Bad);
    }

    /// A client stream of requests, with Content-Length and chunked
    /// bodies whose bytes look like requests for other hosts.
    fn stream(reqs: &[(String, u8, Vec<usize>)]) -> Vec<u8> {
        let evil = b"GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n";
        let mut out = Vec::new();
        for (host, kind, chunks) in reqs {
            let body: Vec<u8> = evil
                .iter()
                .cycle()
                .take(chunks.iter().sum())
                .copied()
                .collect();
            match kind % 3 {
                0 => out.extend_from_slice(
                    format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
                ),
                1 => {
                    out.extend_from_slice(
                        format!(
                            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    );
                    out.extend_from_slice(&body);
                }
                _ => {
                    out.extend_from_slice(
                        format!(
                            "POST / HTTP/1.1\r\nhost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    let mut at = 0;
                    for &c in chunks.iter().filter(|&&c| c > 0) {
                        out.extend_from_slice(format!("{c:x};ext=1\r\n").as_bytes());
                        out.extend_from_slice(&body[at..at + c]);
                        out.extend_from_slice(b"\r\n");
                        at += c;
                    }
                    out.extend_from_slice(if *kind % 2 == 0 {
                        b"0\r\n\r\n"
                    } else {
                        b"0\r\nX-T: 1\r\n\r\n"
                    });
                }
            }
        }
        out
    }

    /// Runs the framer over `s` as the relay does: the hosts of every
    /// head, in order, or the first refusal.
    fn heads(s: &[u8]) -> Result<Vec<Option<String>>, Framed> {
        let (mut at, mut next, mut out) = (0usize, Next::Head, Vec::new());
        while at < s.len() {
            let rest = &s[at..s.len().min(at + PEEK_MAX)];
            match frame(next, out.is_empty(), rest, true) {
                Framed::Pass {
                    pass,
                    next: n,
                    head,
                } => {
                    out.extend(head);
                    at += pass as usize;
                    next = n;
                }
                other => return Err(other),
            }
        }
        Ok(out)
    }

    #[test]
    fn a_kept_alive_stream_is_framed_request_by_request() {
        let reqs = vec![
            ("a.test".to_string(), 0, vec![]),
            ("a.test".to_string(), 1, vec![40]),
            ("a.test".to_string(), 2, vec![3, 50, 1]),
            ("b.test".to_string(), 0, vec![]),
        ];
        let hosts = heads(&stream(&reqs)).unwrap();
        assert_eq!(
            hosts,
            ["a.test", "a.test", "a.test", "b.test"].map(|h| Some(h.to_string()))
        );
        // Partial input waits; a bad chunk is refused.
        assert_eq!(frame(Next::ChunkLine, false, b"1", false), Framed::NeedMore);
        assert_eq!(
            frame(Next::ChunkEnd, false, b"xy", false),
            Framed::Bad("malformed chunked body")
        );
        let up = b"GET / HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n\r\n";
        assert!(matches!(
            frame(Next::Head, true, up, false),
            Framed::Pass {
                next: Next::Upgrade { connect: false },
                ..
            }
        ));
        assert!(
            matches!(
                frame(Next::Head, false, up, false),
                Framed::Pass {
                    next: Next::Head,
                    ..
                }
            ),
            "only a first request switches"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Any bytes: an answer, never a panic (and no endless loop: the
        /// function returns).
        #[test]
        fn any_bytes_are_classified(b in proptest::collection::vec(any::<u8>(), 0..3000), full: bool) {
            let _ = classify(&b, full);
        }

        /// Bytes that start like TLS records, the hard case for the parser.
        #[test]
        fn tls_like_bytes_are_classified(
            b in proptest::collection::vec(any::<u8>(), 0..600),
            len in 0u16..700,
            full: bool,
        ) {
            let mut v = vec![0x16, 0x03, 0x01];
            v.extend_from_slice(&len.to_be_bytes());
            v.push(1);
            v.extend_from_slice(&b);
            let _ = classify(&v, full);
        }

        /// A mutated real ClientHello never panics either.
        #[test]
        fn mutated_hellos_are_classified(i in 0usize..200, x: u8, cut in 0usize..400) {
            let mut b = records(&client_hello(Some("a.example")), 1 << 14);
            let n = b.len();
            b[i % n] ^= x;
            b.truncate(cut.max(1).min(n));
            let _ = classify(&b, true);
        }

        /// Every head of a generated kept-alive stream is found, however
        /// its bodies are cut, and no body byte is taken for a head.
        #[test]
        fn every_request_of_a_stream_is_seen(
            reqs in proptest::collection::vec(
                ("[a-z]{1,8}\\.test", 0u8..6, proptest::collection::vec(0usize..300, 0..4)),
                1..6,
            )
        ) {
            let s = stream(&reqs);
            let hosts = heads(&s).unwrap();
            let want: Vec<Option<String>> = reqs.iter().map(|(h, _, _)| Some(h.clone())).collect();
            prop_assert_eq!(hosts, want);
        }

        /// Any bytes at any boundary: an answer, never a panic.
        #[test]
        fn any_bytes_are_framed(b in proptest::collection::vec(any::<u8>(), 0..600), k in 0usize..4, full: bool) {
            let next = [Next::Head, Next::ChunkLine, Next::ChunkEnd, Next::Trailers][k];
            let _ = frame(next, true, &b, full);
        }

        /// HTTP-looking heads of any content.
        #[test]
        fn http_like_bytes_are_classified(s in "(GET|POST|CONNECT) [ -~]{0,40}\r\n([ -~]{0,30}\r\n){0,5}\r?\n?") {
            let _ = classify(s.as_bytes(), false);
            let _ = request(s.as_bytes(), true);
            let _ = chunk_line(s.as_bytes());
            let _ = trailers(s.as_bytes(), true);
        }
    }
}
