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

const METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

/// Classifies the start of a connection. `full`: no more bytes will come
/// (the peek buffer is full, or the client stopped sending), so an
/// unfinished ClientHello or request head is `Incomplete`.
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
    let n = buf.len().min(8);
    let method_prefix = METHODS
        .iter()
        .any(|m| m.starts_with(&buf[..n]) || buf.starts_with(m));
    if method_prefix {
        if METHODS.iter().any(|m| buf.starts_with(m)) {
            return http(buf, full);
        }
        // "GE": could still become "GET ".
        return if full {
            Peek::Said(Said::Other)
        } else {
            Peek::NeedMore
        };
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
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return if full {
                Peek::Said(Said::Incomplete)
            } else {
                Peek::NeedMore
            }
        }
        Err(_) => return Peek::Said(Said::Http(None)),
    }
    let host = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("host"))
        .and_then(|h| authority_host(h.value));
    // An absolute-form target (`GET http://other/ HTTP/1.1`) names a host
    // too: it must agree with Host, or the request goes to neither.
    let target = req.path.and_then(|p| {
        let rest = p
            .strip_prefix("http://")
            .or_else(|| p.strip_prefix("https://"))?;
        let auth = rest.split('/').next().unwrap_or(rest);
        Some(authority_host(auth.as_bytes()))
    });
    let host = match (req.method, target) {
        // CONNECT's target is the authority itself.
        (Some("CONNECT"), _) => req.path.and_then(|p| authority_host(p.as_bytes())),
        (_, Some(t)) if t != host => None,
        _ => host,
    };
    Peek::Said(Said::Http(host))
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
        assert_eq!(
            c("GET http://evil.test/ HTTP/1.1\r\nHost: good.test\r\n\r\n"),
            Peek::Said(Said::Http(None)),
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
        assert_eq!(c("SSH-2.0-OpenSSH_9.2\r\n"), Peek::Said(Said::Other));
        assert_eq!(classify(b"", true), Peek::Said(Said::Silent));
        assert_eq!(classify(b"", false), Peek::NeedMore);
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

        /// HTTP-looking heads of any content.
        #[test]
        fn http_like_bytes_are_classified(s in "(GET|POST|CONNECT) [ -~]{0,40}\r\n([ -~]{0,30}\r\n){0,5}\r?\n?") {
            let _ = classify(s.as_bytes(), false);
        }
    }
}
