//! The upstream proxy setting: `env` or `http://HOST:PORT`.

use super::spec::Source;
use super::ConfigError;

/// An upstream proxy is `env` or `http://HOST:PORT` (no credentials, no
/// path: the helper speaks plain HTTP CONNECT to it).
pub(super) fn check_proxy(x: &str, src: &Source) -> Result<(), ConfigError> {
    if x == "env" || parse_proxy(x).is_some() {
        return Ok(());
    }
    Err(ConfigError::Network(format!(
        "proxy `{x}` in {src} must be `env` or `http://HOST:PORT`"
    )))
}

/// `http://HOST:PORT[/]` → (HOST, PORT).
pub fn parse_proxy(x: &str) -> Option<(String, u16)> {
    let rest = x.strip_prefix("http://")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = rest.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().ok()?;
    let ok = !host.is_empty()
        && port > 0
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c));
    ok.then(|| (host.to_string(), port))
}
