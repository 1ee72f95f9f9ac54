//! The domain grammar of `network.allow`/`deny` and `--allow-domain`, once:
//! `NAME`, `NAME:PORT`, `*.suffix` (strict subdomains), `*` (every name),
//! and presets (`@github`, expanded here). Parsed into a typed `Domain`
//! that the spec stores and the network helper matches names with.
//!
//! Names are compared lowercase and without the trailing dot of the DNS
//! root; an IPv4 address is a name like any other (its labels are digits).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::presets;
use super::spec::*;
use super::ConfigError;

/// What a domain entry matches, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pattern {
    /// `*`: every name.
    Any,
    /// One name, e.g. `example.com`.
    Exact(String),
    /// `*.example.com`, stored as `example.com`: strict subdomains only.
    Suffix(String),
}

/// One allow or deny entry: a name pattern and, for `NAME:PORT`, the one
/// port it is allowed on (else the global port list applies).
///
/// Serialized as its text (`*.example.com:22`), parsed back on the way in,
/// so a message carrying it cannot smuggle in an unchecked name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Domain {
    pattern: Pattern,
    port: Option<u16>,
}

/// Why an entry is not a domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("it is empty")]
    Empty,
    #[error("`{0}` is not a port (1 to 65535)")]
    BadPort(String),
    #[error("`*` may stand only alone or as a leading `*.`")]
    Wildcard,
    #[error("label `{0}` must be letters, digits and `-`, not starting with `-`")]
    BadLabel(String),
    #[error("it has an empty label (`..`, or a leading dot)")]
    EmptyLabel,
}

impl Domain {
    /// Parses one entry (not a preset): lowercases it and drops one
    /// trailing dot.
    pub fn parse(entry: &str) -> Result<Domain, DomainError> {
        // `NAME:PORT` allows NAME on that one port (`github.com:22`).
        let (name, port) = match entry.rsplit_once(':') {
            Some((name, p)) => match p.parse::<u16>() {
                Ok(p) if p > 0 => (name, Some(p)),
                _ => return Err(DomainError::BadPort(p.to_string())),
            },
            None => (entry, None),
        };
        let lower = name.to_ascii_lowercase();
        // One trailing dot (the DNS root) is the same name.
        let n = lower
            .strip_suffix('.')
            .filter(|x| !x.is_empty() && *x != "*")
            .unwrap_or(&lower);
        if n.is_empty() {
            return Err(DomainError::Empty);
        }
        if n == "*" {
            return Ok(Domain {
                pattern: Pattern::Any,
                port,
            });
        }
        let (body, wild) = match n.strip_prefix("*.") {
            Some(b) => (b, true),
            None => (n, false),
        };
        if body.is_empty() {
            return Err(DomainError::EmptyLabel);
        }
        for l in body.split('.') {
            if l.is_empty() {
                return Err(DomainError::EmptyLabel);
            }
            if l.contains('*') {
                return Err(DomainError::Wildcard);
            }
            if l.starts_with('-') || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(DomainError::BadLabel(l.to_string()));
            }
        }
        let pattern = if wild {
            Pattern::Suffix(body.to_string())
        } else {
            Pattern::Exact(body.to_string())
        };
        Ok(Domain { pattern, port })
    }

    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// The one port of a `NAME:PORT` entry.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The name of an exact entry (not a wildcard).
    pub fn exact(&self) -> Option<&str> {
        match &self.pattern {
            Pattern::Exact(n) => Some(n),
            _ => None,
        }
    }

    /// Whether `name` matches by name. `name` must be as `normalize` gives
    /// it (lowercase, no trailing dot).
    pub fn matches(&self, name: &str) -> bool {
        match &self.pattern {
            Pattern::Any => true,
            Pattern::Exact(n) => n == name,
            Pattern::Suffix(s) => name
                .strip_suffix(s.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }

    /// Whether this entry, as a site ceiling, covers `other`: equal names,
    /// a `*.suffix` that the other (or its own wildcard) lies under, or
    /// `*`. A `NAME:PORT` entry is covered by a ceiling for NAME (any port)
    /// or for NAME:PORT itself; the site's `ports` list bounds the port
    /// separately.
    pub fn covers(&self, other: &Domain) -> bool {
        if self.port.is_some() && self.port != other.port {
            return false;
        }
        match (&self.pattern, &other.pattern) {
            (Pattern::Any, _) => true,
            (Pattern::Exact(c), Pattern::Exact(d)) => c == d,
            (Pattern::Suffix(c), Pattern::Exact(d)) => d.ends_with(&format!(".{c}")),
            (Pattern::Suffix(c), Pattern::Suffix(d)) => c == d || d.ends_with(&format!(".{c}")),
            _ => false,
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.pattern {
            Pattern::Any => f.write_str("*")?,
            Pattern::Exact(n) => f.write_str(n)?,
            Pattern::Suffix(s) => write!(f, "*.{s}")?,
        }
        match self.port {
            Some(p) => write!(f, ":{p}"),
            None => Ok(()),
        }
    }
}

impl std::str::FromStr for Domain {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Domain, DomainError> {
        Domain::parse(s)
    }
}

impl TryFrom<String> for Domain {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Domain, DomainError> {
        Domain::parse(&s)
    }
}

impl From<Domain> for String {
    fn from(d: Domain) -> String {
        d.to_string()
    }
}

/// A name as the policy compares it: lowercase, no trailing dot.
pub fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Expands a preset (`@github`) or parses one domain, as a layer (`src`)
/// names it. Returns (domain, preset it came from).
pub(crate) fn expand_domain(
    d: &str,
    src: &Source,
) -> Result<Vec<(Domain, Option<String>)>, ConfigError> {
    let bad = |why: DomainError| ConfigError::BadDomain {
        domain: d.to_string(),
        origin: src.to_string(),
        why: why.to_string(),
    };
    if let Some(name) = d.strip_prefix('@') {
        let list = presets::get(name).ok_or_else(|| ConfigError::UnknownPreset {
            name: name.to_string(),
            origin: src.to_string(),
        })?;
        return list
            .iter()
            .map(|x| Ok((Domain::parse(x).map_err(bad)?, Some(d.to_string()))))
            .collect();
    }
    Ok(vec![(Domain::parse(d).map_err(bad)?, None)])
}

pub(super) fn push_domain(
    v: &mut Vec<Sourced<Domain>>,
    domain: Domain,
    source: Source,
    via: Option<String>,
) {
    if !v.iter().any(|s| s.value == domain) {
        let mut s = Sourced::new(domain, source);
        s.via = via;
        v.push(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Domain {
        Domain::parse(s).unwrap()
    }

    fn covers(ceiling: &str, domain: &str) -> bool {
        d(ceiling).covers(&d(domain))
    }

    #[test]
    fn parse_and_display_round_trip_in_canonical_form() {
        for (input, canonical) in [
            ("example.com", "example.com"),
            ("Example.COM", "example.com"),
            ("example.com.", "example.com"),
            ("*.Example.com.", "*.example.com"),
            ("*", "*"),
            ("*:8443", "*:8443"),
            ("github.com:22", "github.com:22"),
            ("GitHub.com.:22", "github.com:22"),
            ("198.51.100.2", "198.51.100.2"),
            ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ] {
            let parsed = d(input);
            assert_eq!(parsed.to_string(), canonical, "{input}");
            assert_eq!(d(canonical), parsed, "{input}");
        }
        assert_eq!(d("*.a.org").pattern(), &Pattern::Suffix("a.org".into()));
        assert_eq!(d("a.org").exact(), Some("a.org"));
        assert_eq!(d("*.a.org").exact(), None);
        assert_eq!(d("a.org:22").port(), Some(22));
        assert_eq!(d("a.org").port(), None);
    }

    #[test]
    fn bad_entries_say_why() {
        for (input, want) in [
            ("", DomainError::Empty),
            (".", DomainError::EmptyLabel),
            ("*.", DomainError::EmptyLabel),
            ("a..b", DomainError::EmptyLabel),
            (".a.b", DomainError::EmptyLabel),
            ("a.org:0", DomainError::BadPort("0".into())),
            ("a.org:", DomainError::BadPort("".into())),
            ("a.org:65536", DomainError::BadPort("65536".into())),
            ("a.org:http", DomainError::BadPort("http".into())),
            ("::1", DomainError::BadLabel(":".into())),
            ("*.*.a.org", DomainError::Wildcard),
            ("a*.org", DomainError::Wildcard),
            ("a.*.org", DomainError::Wildcard),
            ("-a.org", DomainError::BadLabel("-a".into())),
            ("a_b.org", DomainError::BadLabel("a_b".into())),
            ("a b.org", DomainError::BadLabel("a b".into())),
            ("http://a.org", DomainError::BadPort("//a.org".into())),
            ("a.org/path", DomainError::BadLabel("org/path".into())),
        ] {
            assert_eq!(Domain::parse(input), Err(want), "{input:?}");
        }
        let e = expand_domain("a_b.org", &Source::Cli("--allow-domain".into()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`a_b.org` in command line --allow-domain is not a domain name")
                && e.contains("label `a_b`"),
            "{e}"
        );
    }

    #[test]
    fn matching_is_exact_or_strict_subdomain() {
        let exact = d("a.org");
        assert!(exact.matches("a.org"));
        assert!(!exact.matches("b.a.org"));
        assert!(!exact.matches("a.org.evil"));
        let wild = d("*.a.org");
        assert!(wild.matches("b.a.org"));
        assert!(wild.matches("c.b.a.org"));
        assert!(!wild.matches("a.org"), "a wildcard is strict subdomains");
        assert!(!wild.matches("evila.org"));
        assert!(!wild.matches(".a.org"), "an empty label is no subdomain");
        assert!(d("*").matches("anything.example"));
        // Matching takes normalized names; `normalize` gives them.
        assert_eq!(normalize("B.A.Org."), "b.a.org");
        assert!(d("*.A.ORG").matches(&normalize("B.a.org.")));
    }

    #[test]
    fn ceilings_cover_names_wildcards_and_ports() {
        assert!(covers("*.github.com", "api.github.com"));
        assert!(covers("*.github.com", "*.api.github.com"));
        assert!(covers("*.github.com", "*.github.com"));
        assert!(!covers("*.github.com", "github.com"));
        assert!(!covers("*.github.com", "evilgithub.com"));
        assert!(!covers("*.github.com", "*"));
        assert!(!covers("github.com", "*.github.com"));
        assert!(!covers("github.com", "*"));
        assert!(covers("*", "anything.org"));
        assert!(covers("*", "*"));
        assert!(covers("github.com", "github.com:22"));
        assert!(covers("*.github.com", "api.github.com:22"));
        assert!(covers("github.com:22", "github.com:22"));
        assert!(!covers("github.com:22", "github.com:443"));
        assert!(!covers("github.com:22", "github.com"));
    }

    #[test]
    fn serde_carries_the_text_and_checks_it_on_the_way_in() {
        let v = vec![d("*.a.org:22"), d("b.org")];
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, r#"["*.a.org:22","b.org"]"#);
        let back: Vec<Domain> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, v);
        assert!(serde_json::from_str::<Domain>(r#""a..b""#).is_err());
    }

    #[test]
    fn a_resolved_spec_carries_its_domains_through_json() {
        // The Slurm chaperon gets the spec as JSON; the helper its config.
        use crate::config::testkit::*;
        let mut r = req(&["claude"]);
        r.allow_domain = vec!["*.Example.org.".into(), "git.example:22".into()];
        let spec = run(&cat(None, None, None), &r).unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains(r#""value":"*.example.org""#), "{json}");
        let back: JailSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        assert!(back
            .network
            .allow
            .iter()
            .any(|a| a.value == d("git.example:22")));
    }

    #[test]
    fn every_preset_parses_and_presets_expand_with_their_name() {
        for (name, list) in presets::PRESETS {
            for x in *list {
                assert!(Domain::parse(x).is_ok(), "@{name}: {x}");
            }
        }
        let src = Source::Cli("--allow-domain".into());
        let got = expand_domain("@pypi", &src).unwrap();
        assert_eq!(
            got,
            vec![
                (d("pypi.org"), Some("@pypi".to_string())),
                (d("files.pythonhosted.org"), Some("@pypi".to_string())),
            ]
        );
        assert!(matches!(
            expand_domain("@nope", &src),
            Err(ConfigError::UnknownPreset { .. })
        ));
    }
}
