//! The domain grammar of `network.allow`/`deny` and `--allow-domain`.

use super::presets;
use super::spec::*;
use super::ConfigError;

/// Whether `ceiling` (a site allow entry) covers `domain`: equal names, or
/// a `*.suffix` that the domain (or its own wildcard) lies under, or `*`.
/// A `NAME:PORT` entry is covered by a ceiling for NAME (any port) or for
/// NAME:PORT itself; the site's `ports` list bounds the port separately.
pub fn domain_covers(ceiling: &str, domain: &str) -> bool {
    let (ceiling, cport) = split_port(ceiling);
    let (domain, dport) = split_port(domain);
    if cport.is_some() && cport != dport {
        return false;
    }
    if ceiling == "*" || ceiling == domain {
        return true;
    }
    match ceiling.strip_prefix("*.") {
        Some(suffix) => {
            let bare = domain.strip_prefix("*.").unwrap_or(domain);
            bare.ends_with(&format!(".{suffix}")) || (domain.starts_with("*.") && bare == suffix)
        }
        None => false,
    }
}

/// Expands a preset (`@github`) or checks and normalizes one domain.
/// Returns (domain, preset it came from).
pub(crate) fn expand_domain(
    d: &str,
    src: &Source,
) -> Result<Vec<(String, Option<String>)>, ConfigError> {
    if let Some(name) = d.strip_prefix('@') {
        let list = presets::get(name).ok_or_else(|| ConfigError::UnknownPreset {
            name: name.to_string(),
            origin: src.to_string(),
        })?;
        return Ok(list
            .iter()
            .map(|x| (x.to_string(), Some(d.to_string())))
            .collect());
    }
    // `NAME:PORT` allows NAME on that one port (`github.com:22`).
    let (d, port) = match d.rsplit_once(':') {
        Some((name, p)) => match p.parse::<u16>() {
            Ok(p) if p > 0 => (name, Some(p)),
            _ => {
                return Err(ConfigError::BadDomain {
                    domain: d.to_string(),
                    origin: src.to_string(),
                })
            }
        },
        None => (d, None),
    };
    // One trailing dot (the DNS root) is the same name.
    let lower = d.to_ascii_lowercase();
    let n = lower
        .strip_suffix('.')
        .filter(|x| !x.is_empty() && *x != "*")
        .unwrap_or(&lower)
        .to_string();
    let body = n.strip_prefix("*.").unwrap_or(&n);
    let ok = n == "*"
        || (!body.is_empty()
            && body.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }));
    if !ok {
        return Err(ConfigError::BadDomain {
            domain: d.to_string(),
            origin: src.to_string(),
        });
    }
    Ok(vec![(
        match port {
            Some(p) => format!("{n}:{p}"),
            None => n,
        },
        None,
    )])
}

/// Splits `NAME:PORT` (the port of an allow entry) from the name.
pub fn split_port(entry: &str) -> (&str, Option<u16>) {
    match entry.rsplit_once(':') {
        Some((n, p)) => match p.parse() {
            Ok(p) => (n, Some(p)),
            Err(_) => (entry, None),
        },
        None => (entry, None),
    }
}

pub(super) fn push_domain(
    v: &mut Vec<Sourced<String>>,
    domain: String,
    source: Source,
    via: Option<String>,
) {
    if !v.iter().any(|s| s.value == domain) {
        let mut s = Sourced::new(domain, source);
        s.via = via;
        v.push(s);
    }
}
