//! The helper's DNS: every query from the jail is answered here. Allowed
//! names are asked upstream (a fresh query: the program's bytes never
//! leave) and the answer is filtered (addresses on the floor removed) and
//! pinned; other names get NXDOMAIN at once, without asking anyone, so a
//! denied name cannot carry data out through the resolver either.
//! Messages are parsed and built with hickory-proto; these functions
//! only turn bytes into bytes, the relay moves them.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};

use super::policy::{self, NameVerdict, Reason, Rules};

/// The EDNS payload size offered upstream and to clients (the DNS flag
/// day value: no fragmentation).
pub const EDNS_PAYLOAD: u16 = 1232;

/// Longest TTL handed to the jail (seconds).
const MAX_TTL: u32 = 3600;

/// A query sent upstream, waiting for its answer.
#[derive(Debug, Clone)]
pub struct Pending {
    /// The client's own id and question, echoed in the reply.
    pub client_id: u16,
    pub question: Query,
    /// The question's name, normalized (what was allowed and is pinned).
    pub name: String,
    pub rd: bool,
    /// Whether the client spoke EDNS (the reply then does too).
    pub edns: bool,
    /// The largest UDP reply the client takes.
    pub max_udp: u16,
    /// The id of the upstream query, and the query itself (for a retry
    /// or a retry over TCP).
    pub upstream_id: u16,
    pub upstream_query: Vec<u8>,
}

/// What to do with a query from the jail.
#[derive(Debug)]
pub enum OnQuery {
    /// Answer at once. `denied`: the name and why, for the denial line.
    Reply {
        bytes: Vec<u8>,
        denied: Option<(String, Reason, bool)>,
    },
    /// Ask upstream.
    Forward(Box<Pending>),
    /// Not a query we answer (garbage, or not a query at all).
    Drop,
}

fn reply(id: u16, q: &Query, rd: bool, edns: bool, rcode: ResponseCode) -> Message {
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Response)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(rd)
        .set_recursion_available(true)
        .set_response_code(rcode);
    m.add_query(q.clone());
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(EDNS_PAYLOAD);
        m.set_edns(e);
    }
    m
}

fn bytes(m: &Message) -> Option<Vec<u8>> {
    m.to_vec().ok()
}

/// Handles one query from the jail; `upstream_id` is a fresh random id
/// for the upstream query, should there be one.
pub fn on_query(rules: &Rules, msg: &[u8], upstream_id: u16) -> OnQuery {
    let Ok(m) = Message::from_vec(msg) else {
        return OnQuery::Drop;
    };
    if m.message_type() != MessageType::Query {
        return OnQuery::Drop;
    }
    let edns = m.extensions().is_some();
    let max_udp = m
        .extensions()
        .as_ref()
        .map_or(512, |e| e.max_payload().max(512));
    let rd = m.recursion_desired();
    let (q, answerable) = match (m.op_code(), m.queries()) {
        (OpCode::Query, [q]) => (q.clone(), true),
        (_, [q, ..]) => (q.clone(), false),
        _ => return OnQuery::Drop,
    };
    if !answerable {
        return match bytes(&reply(m.id(), &q, rd, edns, ResponseCode::NotImp)) {
            Some(bytes) => OnQuery::Reply {
                bytes,
                denied: None,
            },
            None => OnQuery::Drop,
        };
    }
    let name = policy::normalize(&q.name().to_ascii());
    match rules.name(&name) {
        NameVerdict::Deny { reason, quiet } => {
            match bytes(&reply(m.id(), &q, rd, edns, ResponseCode::NXDomain)) {
                Some(bytes) => OnQuery::Reply {
                    bytes,
                    denied: Some((name, reason, quiet)),
                },
                None => OnQuery::Drop,
            }
        }
        NameVerdict::Resolve => {
            // HTTPS/SVCB records carry address hints that would bypass the
            // pins, ANY is deprecated: "no such record" (clients then ask
            // A/AAAA).
            if matches!(
                q.query_type(),
                RecordType::HTTPS
                    | RecordType::SVCB
                    | RecordType::ANY
                    | RecordType::AXFR
                    | RecordType::IXFR
            ) {
                return match bytes(&reply(m.id(), &q, rd, edns, ResponseCode::NoError)) {
                    Some(bytes) => OnQuery::Reply {
                        bytes,
                        denied: None,
                    },
                    None => OnQuery::Drop,
                };
            }
            let mut up = Message::new();
            let mut uq = Query::query(q.name().clone(), q.query_type());
            uq.set_query_class(q.query_class());
            up.set_id(upstream_id)
                .set_message_type(MessageType::Query)
                .set_op_code(OpCode::Query)
                .set_recursion_desired(true);
            up.add_query(uq);
            let mut e = Edns::new();
            e.set_max_payload(EDNS_PAYLOAD);
            up.set_edns(e);
            let Some(upstream_query) = bytes(&up) else {
                return OnQuery::Drop;
            };
            OnQuery::Forward(Box::new(Pending {
                client_id: m.id(),
                question: q,
                name,
                rd,
                edns,
                max_udp,
                upstream_id,
                upstream_query,
            }))
        }
    }
}

/// The reply for a pending query, built from the upstream answer.
#[derive(Debug)]
pub struct Answered {
    pub reply: Vec<u8>,
    /// Addresses to pin to `Pending::name`.
    pub pins: Vec<IpAddr>,
    /// Addresses removed because the floor blocks them, and why.
    pub floored: Vec<(IpAddr, &'static str)>,
}

/// Whether `msg` is the upstream answer to `p` (id and question agree):
/// anything else is ignored, so a spoofed datagram cannot answer.
pub fn answers(msg: &Message, p: &Pending) -> bool {
    msg.message_type() == MessageType::Response
        && msg.id() == p.upstream_id
        && matches!(msg.queries(), [q] if q.query_type() == p.question.query_type()
            && q.query_class() == p.question.query_class()
            && q.name().eq_ignore_root(p.question.name()))
}

/// Parses an upstream answer (None: not one for `p`).
pub fn parse_answer(msg: &[u8], p: &Pending) -> Option<Message> {
    let m = Message::from_vec(msg).ok()?;
    answers(&m, p).then_some(m)
}

/// Builds the jail's reply from upstream's answer `m`: only the answer
/// section, only address records (floor removed, the rest pinned), the
/// CNAME chain, and records of the asked type; TTLs capped.
pub fn on_answer(m: &Message, p: &Pending, host: &[IpAddr]) -> Answered {
    let rcode = match m.response_code() {
        ResponseCode::NoError => ResponseCode::NoError,
        ResponseCode::NXDomain => ResponseCode::NXDomain,
        _ => ResponseCode::ServFail,
    };
    let mut out = reply(p.client_id, &p.question, p.rd, p.edns, rcode);
    let mut pins = Vec::new();
    let mut floored = Vec::new();
    let qtype = p.question.query_type();
    for r in m.answers() {
        let ip = match r.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        };
        let keep = match ip {
            Some(ip) => match policy::floor(ip, host) {
                Some(why) => {
                    floored.push((ip, why));
                    false
                }
                None => {
                    pins.push(ip);
                    true
                }
            },
            None => {
                r.record_type() == RecordType::CNAME
                    || (r.record_type() == qtype
                        && !matches!(qtype, RecordType::A | RecordType::AAAA))
            }
        };
        if keep {
            let mut r: Record = r.clone();
            let ttl = r.ttl().min(MAX_TTL);
            r.set_ttl(ttl);
            out.add_answer(r);
        }
    }
    let reply = bytes(&out)
        .or_else(|| {
            bytes(&reply(
                p.client_id,
                &p.question,
                p.rd,
                p.edns,
                ResponseCode::ServFail,
            ))
        })
        .unwrap_or_default();
    Answered {
        reply,
        pins,
        floored,
    }
}

/// The answer when flows go through a proxy: an A query gets the name's
/// stand-in address `v4`, every other type no record (the proxy resolves
/// the real name; clients then connect over IPv4 to the stand-in).
pub fn stand_in(p: &Pending, v4: Option<std::net::Ipv4Addr>) -> Vec<u8> {
    let mut m = reply(
        p.client_id,
        &p.question,
        p.rd,
        p.edns,
        ResponseCode::NoError,
    );
    if let Some(a) = v4.filter(|_| p.question.query_type() == RecordType::A) {
        m.add_answer(Record::from_rdata(
            p.question.name().clone(),
            60,
            RData::A(hickory_proto::rr::rdata::A(a)),
        ));
    }
    bytes(&m).unwrap_or_default()
}

/// SERVFAIL for a query upstream did not answer.
pub fn servfail(p: &Pending) -> Vec<u8> {
    bytes(&reply(
        p.client_id,
        &p.question,
        p.rd,
        p.edns,
        ResponseCode::ServFail,
    ))
    .unwrap_or_default()
}

/// The reply as it may go over UDP to the client: too large, it becomes
/// an empty truncated one (TC), and the client asks again over TCP.
pub fn fit_udp(reply: Vec<u8>, p: &Pending) -> Vec<u8> {
    if reply.len() <= usize::from(p.max_udp) {
        return reply;
    }
    let mut m = self::reply(
        p.client_id,
        &p.question,
        p.rd,
        p.edns,
        ResponseCode::NoError,
    );
    m.set_truncated(true);
    bytes(&m).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::spec::NetMode;
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use hickory_proto::rr::Name;
    use proptest::prelude::*;

    fn rules(mode: NetMode) -> Rules {
        Rules::new(
            mode,
            &[
                "allowed.test".parse().unwrap(),
                "*.wild.test".parse().unwrap(),
            ],
            &["bad.wild.test".parse().unwrap()],
            &[443],
            &[],
        )
    }

    fn query(name: &str, t: RecordType, edns: bool) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(0x1234).set_recursion_desired(true);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        if edns {
            m.set_edns(Edns::new());
        }
        m.to_vec().unwrap()
    }

    fn forward(r: &Rules, name: &str, t: RecordType) -> Pending {
        match on_query(r, &query(name, t, false), 77) {
            OnQuery::Forward(p) => *p,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn denied_names_get_nxdomain_without_asking_anyone() {
        let r = rules(NetMode::Allowlist);
        for (name, reason) in [
            ("evil.test.", Reason::NotAllowed),
            ("bad.wild.test.", Reason::DeniedName),
        ] {
            let OnQuery::Reply { bytes, denied } =
                on_query(&r, &query(name, RecordType::A, false), 1)
            else {
                panic!("{name}")
            };
            let m = Message::from_vec(&bytes).unwrap();
            assert_eq!(m.id(), 0x1234);
            assert_eq!(m.response_code(), ResponseCode::NXDomain);
            assert_eq!(m.queries().len(), 1);
            assert_eq!(
                denied,
                Some((name.trim_end_matches('.').to_string(), reason, false))
            );
        }
        let off = rules(NetMode::None);
        let OnQuery::Reply { denied, .. } =
            on_query(&off, &query("allowed.test.", RecordType::A, false), 1)
        else {
            panic!()
        };
        assert_eq!(denied.unwrap().1, Reason::NetworkOff);
    }

    #[test]
    fn allowed_names_are_asked_upstream_with_a_fresh_query() {
        let r = rules(NetMode::Allowlist);
        let p = forward(&r, "Allowed.Test.", RecordType::AAAA);
        assert_eq!(p.name, "allowed.test");
        assert_eq!(p.client_id, 0x1234);
        let up = Message::from_vec(&p.upstream_query).unwrap();
        assert_eq!(up.id(), 77);
        assert_eq!(up.queries()[0].query_type(), RecordType::AAAA);
        assert!(up.extensions().is_some());
        let p = forward(&r, "x.wild.test.", RecordType::TXT);
        assert_eq!(p.name, "x.wild.test");
        // HTTPS records would carry unpinned address hints: answered empty.
        let OnQuery::Reply { bytes, denied } =
            on_query(&r, &query("allowed.test.", RecordType::HTTPS, true), 1)
        else {
            panic!()
        };
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(
            (m.response_code(), m.answers().len(), denied),
            (ResponseCode::NoError, 0, None)
        );
        assert!(m.extensions().is_some(), "EDNS answered with EDNS");
    }

    fn upstream_answer(p: &Pending, records: Vec<Record>, id: u16) -> Message {
        let mut m = Message::new();
        m.set_id(id).set_message_type(MessageType::Response);
        m.add_query(p.question.clone());
        for r in records {
            m.add_answer(r);
        }
        Message::from_vec(&m.to_vec().unwrap()).unwrap()
    }

    #[test]
    fn answers_are_filtered_pinned_and_checked() {
        let r = rules(NetMode::Allowlist);
        let p = forward(&r, "allowed.test.", RecordType::A);
        let n = |s: &str| Name::from_ascii(s).unwrap();
        let recs = vec![
            Record::from_rdata(n("allowed.test."), 60, RData::CNAME(CNAME(n("edge.cdn.")))),
            Record::from_rdata(n("edge.cdn."), 99999, RData::A(A::new(198, 51, 100, 2))),
            Record::from_rdata(n("edge.cdn."), 60, RData::A(A::new(10, 0, 0, 1))),
            Record::from_rdata(n("edge.cdn."), 60, RData::A(A::new(198, 51, 100, 1))),
            Record::from_rdata(
                n("edge.cdn."),
                60,
                RData::AAAA(AAAA::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
            ),
        ];
        let wrong = upstream_answer(&p, recs.clone(), 78);
        assert!(!answers(&wrong, &p), "another id is not the answer");
        let m = upstream_answer(&p, recs, 77);
        assert!(answers(&m, &p));
        let host = ["198.51.100.1".parse().unwrap()];
        let a = on_answer(&m, &p, &host);
        assert_eq!(a.pins, vec!["198.51.100.2".parse::<IpAddr>().unwrap()]);
        assert_eq!(a.floored.len(), 3);
        let reply = Message::from_vec(&a.reply).unwrap();
        assert_eq!(reply.id(), 0x1234);
        assert_eq!(reply.answers().len(), 2, "CNAME and the one public address");
        assert!(reply.answers().iter().all(|r| r.ttl() <= MAX_TTL));
    }

    #[test]
    fn stand_ins_answer_a_and_nothing_else() {
        let r = rules(NetMode::Allowlist);
        let p = forward(&r, "allowed.test.", RecordType::A);
        let m =
            Message::from_vec(&stand_in(&p, Some(std::net::Ipv4Addr::new(198, 18, 0, 1)))).unwrap();
        assert_eq!(m.id(), 0x1234);
        assert_eq!(m.answers().len(), 1);
        assert_eq!(m.answers()[0].data(), &RData::A(A::new(198, 18, 0, 1)));
        let p = forward(&r, "allowed.test.", RecordType::AAAA);
        let m =
            Message::from_vec(&stand_in(&p, Some(std::net::Ipv4Addr::new(198, 18, 0, 1)))).unwrap();
        assert_eq!(
            (m.response_code(), m.answers().len()),
            (ResponseCode::NoError, 0)
        );
    }

    #[test]
    fn large_replies_are_truncated_for_udp() {
        let r = rules(NetMode::Allowlist);
        let p = forward(&r, "allowed.test.", RecordType::A);
        let n = Name::from_ascii("allowed.test.").unwrap();
        let recs = (0..100)
            .map(|i| Record::from_rdata(n.clone(), 60, RData::A(A::new(198, 51, 100, i))))
            .collect();
        let m = upstream_answer(&p, recs, 77);
        let a = on_answer(&m, &p, &[]);
        assert!(a.reply.len() > 512);
        let fit = fit_udp(a.reply, &p);
        let t = Message::from_vec(&fit).unwrap();
        assert!(t.truncated() && t.answers().is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Any bytes from the jail: an answer or nothing, never a panic.
        #[test]
        fn any_query_bytes_are_handled(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = on_query(&rules(NetMode::Allowlist), &b, 5);
            let _ = on_query(&rules(NetMode::Learn), &b, 5);
        }

        /// A real query with some bytes changed.
        #[test]
        fn mutated_queries_are_handled(i in 0usize..64, x: u8) {
            let mut b = query("allowed.test.", RecordType::A, true);
            let n = b.len();
            b[i % n] ^= x;
            let _ = on_query(&rules(NetMode::Allowlist), &b, 5);
        }

        /// Any bytes from upstream: ignored or answered, never a panic.
        #[test]
        fn any_answer_bytes_are_handled(b in proptest::collection::vec(any::<u8>(), 0..600), i in 0usize..40) {
            let p = forward(&rules(NetMode::Allowlist), "allowed.test.", RecordType::A);
            if let Some(m) = parse_answer(&b, &p) {
                let _ = on_answer(&m, &p, &[]);
            }
            // And a real answer with a byte flipped.
            let n = Name::from_ascii("allowed.test.").unwrap();
            let m = upstream_answer(&p, vec![Record::from_rdata(n, 60, RData::A(A::new(1, 2, 3, 4)))], 77);
            let mut raw = m.to_vec().unwrap();
            let len = raw.len();
            raw[i % len] ^= 0x5a;
            if let Some(m) = parse_answer(&raw, &p) {
                let _ = fit_udp(on_answer(&m, &p, &[]).reply, &p);
            }
        }
    }
}
