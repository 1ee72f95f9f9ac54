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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_is_env_or_plain_http_host_and_port() {
        assert_eq!(
            parse_proxy("http://p.example:3128"),
            Some(("p.example".into(), 3128))
        );
        assert_eq!(
            parse_proxy("http://10.0.0.1:8080/"),
            Some(("10.0.0.1".into(), 8080))
        );
        for bad in [
            "https://p:3128",
            "http://user:pw@p:3128",
            "http://p:3128/path",
            "http://p",
            "http://:3128",
            "http://p:0",
            "p:3128",
        ] {
            assert_eq!(parse_proxy(bad), None, "{bad}");
        }
        let src = Source::Cli("test".into());
        assert!(check_proxy("env", &src).is_ok());
        assert!(check_proxy("http://p:1", &src).is_ok());
        let e = check_proxy("socks5://p:1", &src).unwrap_err().to_string();
        assert!(e.contains("must be `env` or `http://HOST:PORT`"), "{e}");
    }
}
