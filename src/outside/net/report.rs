//! What the helper says on the user's terminal: each denial once, one
//! line each (`jail: net: denied NAME:PORT (reason)`), allowed flows with
//! `-v`, a summary at exit, and for `--net learn` the `[network]` snippet
//! that allows what the program used. Pure: it returns lines, the loop
//! prints them. Every name in a line went through `policy::printable`.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::policy::{printable, Reason};

/// How much to say.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Level {
    /// `-q`: nothing while the program runs; at exit, the denials and the
    /// allowed names that failed.
    Quiet,
    /// Denials once, and a summary when there were any.
    Normal,
    /// `-v`: allowed flows and names too, and always a summary.
    Verbose,
}

/// Why an allowed name did not work: not a denial, so the fix is not a
/// wider allowlist but DNS or a proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The DNS server answered this (NXDOMAIN, SERVFAIL, REFUSED, ...).
    Answered { server: String, rcode: String },
    /// The DNS server did not answer in time.
    Timeout { server: String },
    /// No DNS server could be asked: why (names the server).
    Unreachable(String),
    /// The name resolved, but connecting to it failed.
    Connect { port: u16, why: String },
}

impl Failure {
    fn what(&self) -> String {
        match self {
            Failure::Answered { server, rcode } => {
                format!("the DNS server {server} answered {rcode}")
            }
            Failure::Timeout { server } => {
                format!("no answer from the DNS server {server} (timeout)")
            }
            Failure::Unreachable(why) => why.clone(),
            Failure::Connect { port, why } => format!("connecting to port {port} failed: {why}"),
        }
    }

    fn fix(&self) -> &'static str {
        match self {
            Failure::Answered { rcode, .. } if rcode == "NXDOMAIN" => {
                "check the name; where this network resolves outside names only through an HTTP \
                 proxy, set proxy = \"http://HOST:PORT\" under [network]"
            }
            Failure::Connect { .. } => {
                "where this network reaches outside hosts only through an HTTP proxy, set \
                 proxy = \"http://HOST:PORT\" under [network] (or proxy = \"env\")"
            }
            _ => {
                "check the network and its DNS server (--dns-upstream IP:PORT or \
                 dns_upstream under [network]); behind an HTTP proxy, set proxy = \"http://HOST:PORT\""
            }
        }
    }
}

/// Allowed names that failed, kept at most (the summary shows a few).
const MAX_FAILURES: usize = 1000;
/// Failure lines in the summary at most.
const FAILURE_LINES: usize = 10;

/// Distinct denial lines printed at most (a program trying names in a
/// loop must not flood the terminal); the summary counts the rest.
pub const MAX_LINES: usize = 50;

/// Names `learn` keeps at most (a program looking up names in a loop must
/// not grow the helper without bound); the snippet says when more were used.
pub const MAX_LEARNED: usize = 10_000;

#[derive(Debug)]
pub struct Report {
    level: Level,
    learn: bool,
    /// Said once under `--net none`, naming where `none` came from.
    off: Option<String>,
    off_said: bool,
    seen: HashSet<String>,
    /// Every distinct thing denied (counted once however often asked).
    denied_keys: HashSet<String>,
    lines: usize,
    pub allowed: u64,
    pub denied: u64,
    pub names: u64,
    /// A few denied things, for the summary.
    examples: BTreeSet<String>,
    /// `learn`: names resolved, and the ports each was used on.
    learned: BTreeMap<String, BTreeSet<u16>>,
    /// Allowed names (or `NAME:PORT`) that failed, and how (the last way).
    failed: BTreeMap<String, Failure>,
    /// `learn`: names left out once `MAX_LEARNED` were kept.
    unlearned: u64,
}

impl Report {
    pub fn new(level: Level, learn: bool, off: Option<String>) -> Report {
        Report {
            level,
            learn,
            off,
            off_said: false,
            seen: HashSet::new(),
            denied_keys: HashSet::new(),
            lines: 0,
            allowed: 0,
            denied: 0,
            names: 0,
            examples: BTreeSet::new(),
            learned: BTreeMap::new(),
            failed: BTreeMap::new(),
            unlearned: 0,
        }
    }

    /// An allowed name that failed. Said at once with `-v`; without it
    /// only a DNS server that cannot be reached is (once per server and
    /// cause: every lookup fails then); all of them again at exit.
    pub fn name_failed(&mut self, name: &str, f: Failure) -> Option<String> {
        let line = format!(
            "jail: net: allowed name {} failed: {}",
            printable(name),
            f.what()
        );
        // What makes a live line a repeat: the line itself, or for an
        // unreachable DNS server the server and cause.
        let (key, live) = match (&f, self.level) {
            (_, Level::Verbose) => (line.clone(), Some(line)),
            (Failure::Unreachable(why), Level::Normal) => (
                why.clone(),
                Some(format!(
                    "jail: net: {why}: lookups fail at once (first: {})",
                    printable(name)
                )),
            ),
            _ => (String::new(), None),
        };
        let at = match &f {
            Failure::Connect { port, .. } => format!("{name}:{port}"),
            _ => name.to_string(),
        };
        if self.failed.len() < MAX_FAILURES || self.failed.contains_key(&at) {
            self.failed.insert(at, f);
        }
        let live = live?;
        if self.lines >= MAX_LINES || !self.seen.insert(key) {
            return None;
        }
        self.lines += 1;
        Some(live)
    }

    /// resolv.conf names another server now (`-v` only).
    pub fn upstream_changed(
        &mut self,
        was: Option<std::net::SocketAddr>,
        now: Option<std::net::SocketAddr>,
        path: &std::path::Path,
    ) -> Option<String> {
        let show =
            |a: Option<std::net::SocketAddr>| a.map_or("none".to_string(), |a| a.to_string());
        (self.level == Level::Verbose).then(|| {
            format!(
                "jail: net: {} changed: the DNS server is {} (was {})",
                printable(&path.display().to_string()),
                show(now),
                show(was)
            )
        })
    }

    /// A name that resolved: whatever failed for it before is over.
    pub fn name_ok(&mut self, name: &str) {
        self.failed.remove(name);
    }

    fn once(&mut self, line: String) -> Option<String> {
        if self.level == Level::Quiet || self.lines >= MAX_LINES || !self.seen.insert(line.clone())
        {
            return None;
        }
        self.lines += 1;
        Some(line)
    }

    /// Counts a denied thing once, and keeps a few for the summary.
    fn example(&mut self, what: &str) {
        if self.denied_keys.len() < 100_000 && self.denied_keys.insert(what.to_string()) {
            self.denied += 1;
        }
        if self.examples.len() < 5 {
            self.examples.insert(printable(what));
        }
    }

    /// A name answered "no such name".
    pub fn denied_name(&mut self, name: &str, reason: &Reason, quiet: bool) -> Option<String> {
        if quiet {
            return None;
        }
        self.example(name);
        if *reason == Reason::NetworkOff {
            if self.off_said || self.level == Level::Quiet {
                return None;
            }
            self.off_said = true;
            let from = self.off.clone().unwrap_or_else(|| "--net none".into());
            return Some(format!(
                "jail: net: the network is off ({from}): {} was not looked up; \
                 allow names with --allow-domain NAME (or a preset such as @npm)",
                printable(name)
            ));
        }
        self.once(format!("jail: net: denied {} ({reason})", printable(name)))
    }

    /// A connection reset. `what` is `NAME:PORT` or `ADDRESS:PORT`.
    pub fn denied_flow(&mut self, what: &str, reason: &Reason) -> Option<String> {
        self.example(what);
        self.once(format!("jail: net: denied {} ({reason})", printable(what)))
    }

    /// A name resolved upstream.
    pub fn resolved(&mut self, name: &str, addrs: usize) -> Option<String> {
        self.names += 1;
        if self.learn {
            self.learn(name);
        }
        (self.level == Level::Verbose).then(|| {
            format!(
                "jail: net: resolved {} ({addrs} address(es) pinned)",
                printable(name)
            )
        })
    }

    /// `learn`: the ports kept for `name`, unless `MAX_LEARNED` other
    /// names are kept already.
    fn learn(&mut self, name: &str) -> Option<&mut BTreeSet<u16>> {
        if self.learned.len() >= MAX_LEARNED && !self.learned.contains_key(name) {
            self.unlearned += 1;
            return None;
        }
        Some(self.learned.entry(name.to_string()).or_default())
    }

    /// An answer whose addresses the floor removed.
    pub fn floored(&mut self, name: &str, why: &str) -> Option<String> {
        self.example(name);
        self.once(format!(
            "jail: net: denied {} (resolves to a blocked address: {why})",
            printable(name)
        ))
    }

    /// A connection relayed.
    pub fn allowed_flow(&mut self, name: &str, port: u16, to: &str) -> Option<String> {
        self.allowed += 1;
        if self.learn {
            if let Some(ports) = self.learn(name) {
                ports.insert(port);
            }
        }
        (self.level == Level::Verbose)
            .then(|| format!("jail: net: allowed {}:{port} ({to})", printable(name)))
    }

    /// A connection that was allowed but could not be made.
    pub fn unreachable(&mut self, name: &str, port: u16, why: &str) -> Option<String> {
        self.name_failed(
            name,
            Failure::Connect {
                port,
                why: why.to_string(),
            },
        )
    }

    /// The lines printed when the jail is gone: the allowed names that
    /// failed (with the likely fix), then the denials. `-q` keeps both.
    pub fn summary(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, f) in self.failed.iter().take(FAILURE_LINES) {
            let name = match f {
                Failure::Connect { port, .. } => name
                    .strip_suffix(&format!(":{port}"))
                    .unwrap_or(name)
                    .to_string(),
                _ => name.clone(),
            };
            out.push(format!(
                "jail: net: allowed name {} failed: {} ({})",
                printable(&name),
                f.what(),
                f.fix()
            ));
        }
        if self.failed.len() > FAILURE_LINES {
            out.push(format!(
                "jail: net: {} more allowed names failed",
                self.failed.len() - FAILURE_LINES
            ));
        }
        let show = self.level == Level::Verbose || (self.denied > 0 && self.off.is_none());
        if show {
            let mut line = format!(
                "jail: net: {} connection(s) relayed, {} denied",
                self.allowed, self.denied
            );
            if !self.examples.is_empty() {
                let list: Vec<&str> = self.examples.iter().map(String::as_str).collect();
                line.push_str(&format!(" ({}", list.join(", ")));
                if self.denied as usize > list.len() {
                    line.push_str(", ...");
                }
                line.push(')');
            }
            if self.lines >= MAX_LINES {
                line.push_str("; more denials than shown");
            }
            out.push(line);
        }
        if self.learn {
            out.extend(self.snippet());
        }
        out
    }

    /// `learn`: the configuration that allows what was used.
    fn snippet(&self) -> Vec<String> {
        let used: Vec<&String> = self
            .learned
            .iter()
            .filter(|(_, ports)| !ports.is_empty())
            .map(|(n, _)| n)
            .collect();
        let only_resolved: Vec<&String> = self
            .learned
            .iter()
            .filter(|(_, ports)| ports.is_empty())
            .map(|(n, _)| n)
            .collect();
        let mut ports: BTreeSet<u16> = self.learned.values().flatten().copied().collect();
        ports.insert(443);
        let quote = |v: &[&String]| {
            v.iter()
                .map(|n| format!("\"{}\"", printable(n)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = vec![format!(
            "jail: net: learned {} name(s); to allow them, add to .jail.toml (or ~/.config/jail/config.toml):",
            used.len()
        )];
        out.push("[network]".into());
        out.push("mode = \"allowlist\"".into());
        out.push(format!("allow = [{}]", quote(&used)));
        out.push(format!(
            "ports = [{}]",
            ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if !only_resolved.is_empty() {
            out.push(format!(
                "# resolved but never connected to: {}",
                quote(&only_resolved)
            ));
        }
        if self.unlearned > 0 {
            out.push(format!(
                "# {} more look-up(s) or connection(s) of names beyond the first {MAX_LEARNED} were not kept",
                self.unlearned
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_denial_is_said_once_and_counted_always() {
        let mut r = Report::new(Level::Normal, false, None);
        let l = r.denied_name("evil.test", &Reason::NotAllowed, false);
        assert_eq!(
            l.as_deref(),
            Some("jail: net: denied evil.test (not in the allowlist)")
        );
        assert_eq!(r.denied_name("evil.test", &Reason::NotAllowed, false), None);
        assert_eq!(
            r.denied_name("1.in-addr.arpa", &Reason::NotAllowed, true),
            None
        );
        let l = r
            .denied_flow("198.51.100.9:443", &Reason::NotPinned)
            .unwrap();
        assert_eq!(
            l,
            "jail: net: denied 198.51.100.9:443 (address not from an allowed name)"
        );
        assert_eq!(r.denied, 2, "each thing once; quiet ones not at all");
        let s = r.summary();
        assert_eq!(
            s,
            vec!["jail: net: 0 connection(s) relayed, 2 denied (198.51.100.9:443, evil.test)"]
        );
    }

    #[test]
    fn quiet_says_nothing_and_lines_are_capped() {
        let mut q = Report::new(Level::Quiet, false, None);
        assert_eq!(q.denied_flow("x:1", &Reason::MailPort), None);
        assert_eq!(
            q.summary(),
            vec!["jail: net: 0 connection(s) relayed, 1 denied (x:1)"],
            "-q keeps the exit summary's denials"
        );
        let mut r = Report::new(Level::Normal, false, None);
        let printed = (0..200)
            .filter_map(|i| r.denied_name(&format!("n{i}.test"), &Reason::NotAllowed, false))
            .count();
        assert_eq!(printed, MAX_LINES);
        assert!(r.summary()[0].ends_with("more denials than shown"));
    }

    #[test]
    fn the_network_off_line_comes_once_with_its_source() {
        let mut r = Report::new(
            Level::Normal,
            false,
            Some("--net none, from builtin profile default".into()),
        );
        let l = r
            .denied_name("registry.npmjs.org", &Reason::NetworkOff, false)
            .unwrap();
        assert!(
            l.contains("the network is off (--net none, from builtin profile default)"),
            "{l}"
        );
        assert!(l.contains("registry.npmjs.org"));
        assert_eq!(r.denied_name("pypi.org", &Reason::NetworkOff, false), None);
        assert!(r.summary().is_empty(), "the one line said it all");
    }

    #[test]
    fn verbose_shows_allowed_flows_and_learn_prints_a_snippet() {
        let mut r = Report::new(Level::Verbose, true, None);
        assert!(r.resolved("a.test", 1).is_some());
        r.resolved("b.test", 1);
        let l = r.allowed_flow("a.test", 8443, "198.51.100.2").unwrap();
        assert_eq!(l, "jail: net: allowed a.test:8443 (198.51.100.2)");
        let s = r.summary().join("\n");
        assert!(s.contains("1 connection(s) relayed, 0 denied"), "{s}");
        assert!(
            s.contains(
                "[network]\nmode = \"allowlist\"\nallow = [\"a.test\"]\nports = [443, 8443]"
            ),
            "{s}"
        );
        assert!(
            s.contains("# resolved but never connected to: \"b.test\""),
            "{s}"
        );
    }

    #[test]
    fn allowed_names_that_fail_are_reported_apart_from_denials() {
        let mut r = Report::new(Level::Normal, false, None);
        let nx = Failure::Answered {
            server: "198.51.100.2:53".into(),
            rcode: "NXDOMAIN".into(),
        };
        assert_eq!(r.name_failed("api.test", nx), None, "said at exit only");
        let down = || {
            Failure::Unreachable(
                "cannot reach the DNS server 203.0.113.53:53 (Network is unreachable)".into(),
            )
        };
        let l = r.name_failed("a.test", down()).unwrap();
        assert!(
            l.contains("cannot reach the DNS server 203.0.113.53:53"),
            "{l}"
        );
        assert_eq!(r.name_failed("b.test", down()), None, "one line per server");
        r.name_ok("b.test");
        assert_eq!(r.unreachable("c.test", 443, "Connection refused"), None);
        let s = r.summary();
        assert_eq!(s.len(), 3, "{s:?}");
        assert!(
            s[0].starts_with("jail: net: allowed name a.test failed: cannot reach the DNS server 203.0.113.53:53")
                && s[0].contains("--dns-upstream"),
            "{s:?}"
        );
        assert!(
            s[1].starts_with("jail: net: allowed name api.test failed: the DNS server 198.51.100.2:53 answered NXDOMAIN")
                && s[1].contains("proxy ="),
            "{s:?}"
        );
        assert!(s[2].starts_with("jail: net: allowed name c.test failed: connecting to port 443 failed: Connection refused"), "{s:?}");
        let mut v = Report::new(Level::Verbose, false, None);
        assert!(v
            .name_failed("api.test", Failure::Timeout { server: "x".into() })
            .is_some());
        let mut q = Report::new(Level::Quiet, false, None);
        assert_eq!(q.name_failed("a.test", down()), None);
        assert_eq!(q.summary().len(), 1, "-q keeps it for the exit");
    }

    #[test]
    fn learn_keeps_a_bounded_number_of_names() {
        let mut r = Report::new(Level::Normal, true, None);
        for i in 0..MAX_LEARNED + 5 {
            r.resolved(&format!("n{i}.test"), 1);
        }
        // A kept name still gets its ports; a new one is only counted.
        r.allowed_flow("n0.test", 8443, "198.51.100.2");
        r.allowed_flow("new.test", 443, "198.51.100.2");
        assert_eq!(r.learned.len(), MAX_LEARNED);
        let s = r.summary().join("\n");
        assert!(s.contains("allow = [\"n0.test\"]"), "{}", &s[..200]);
        assert!(s.contains("ports = [443, 8443]"));
        assert!(
            s.contains("# 6 more look-up(s) or connection(s) of names beyond the first 10000"),
            "{}",
            &s[s.len() - 300..]
        );
    }

    #[test]
    fn printed_names_are_escaped() {
        let mut r = Report::new(Level::Normal, false, None);
        let l = r
            .denied_name("\x1b[2J.test", &Reason::NotAllowed, false)
            .unwrap();
        assert!(!l.contains('\x1b'), "{l:?}");
    }
}
