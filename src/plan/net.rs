//! The jail's side of its network, run by pid 1 after `lo` is up and
//! before hardening (root of its own user namespace, so it may still
//! change routes and bind port 53), as a prepared plan of steps:
//!
//! - `allowlist`/`learn`: `local` default routes for IPv4 and IPv6, so
//!   every destination is this namespace's own; one listening TCP socket
//!   per allowed port (never SO_REUSEPORT); DNS sockets (UDP and TCP) on
//!   port 53 of every address; then the handoff: the sockets go to the
//!   network helper outside (`outside::net`) over its channel, and pid 1
//!   closes its copies, so the helper's death ends the jail's network.
//! - `none`: only the DNS sockets, a listening socket per exposed host
//!   port (a Slurm step's PMIx server), and the handoff (no routes): the
//!   helper answers every name at once with "no such name" and says once
//!   that the network is off, instead of the minutes of retries a program
//!   does when its resolver is unreachable.
//! - `host`: nothing.
//!
//! `plan` is pure (explain prints it); pid 1 runs it (`pid1::net`).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Step;
use crate::config::spec::{NetMode, NetPolicy};

/// Mail submission and relay ports: never reached, whatever the policy
/// (the network helper refuses them too).
pub const MAIL_PORTS: &[u16] = &[25, 465, 587, 2525];

/// The resolver the jail's resolv.conf names. Any address would do in
/// `allowlist` (every destination is local there, and port 53 of every
/// address is answered); a loopback one also works in `none`.
pub const DNS_ADDR: &str = "127.0.0.53";

/// The jail's own IPv6 address on `lo` ("jail" in a unique-local prefix:
/// private to the jail's namespace, and on the floor for connections).
pub const OWN_V6: &str = "fd6a:6169:6c00::53";

/// Ports `learn` listens on besides the configured ones.
pub const LEARN_PORTS: &[u16] = &[80, 443];

/// At most this many listening ports (fds pid 1 holds at once).
pub const MAX_PORTS: usize = 100;

/// Why a port is listened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Why {
    /// An allowed port (`ports`, or a `NAME:PORT` entry).
    Allowed,
    /// `expose_host_ports`: the host's loopback port, reached at the
    /// jail's own 127.0.0.1/::1.
    Exposed,
    /// `learn` listens on the common web ports too.
    Learn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum NetStep {
    /// `local` default route: every destination of this family is one of
    /// the namespace's own addresses, delivered on `lo`. IPv6 is skipped
    /// where the kernel has none.
    LocalRoute { v6: bool },
    /// An address of the jail's own on `lo` besides 127.0.0.1/::1:
    /// resolvers asked for one family only with AI_ADDRCONFIG (glibc's
    /// getent ahostsv4, Node's `family: 4`) answer nothing on a host that
    /// has only the loopback addresses.
    OwnAddress { v6: bool },
    /// A listening TCP socket on `port` of every address.
    Listen { port: u16, why: Why },
    /// UDP (IPv4, IPv6) and TCP sockets on port 53 of every address.
    Dns,
    /// Every socket goes to the helper; pid 1 closes its copies.
    Handoff,
}

impl NetStep {
    pub fn describe(&self) -> String {
        match self {
            NetStep::LocalRoute { v6: false } => {
                "route every IPv4 destination to lo (local default route)".into()
            }
            NetStep::LocalRoute { v6: true } => {
                "route every IPv6 destination to lo (local default route)".into()
            }
            NetStep::OwnAddress { v6 } => format!(
                "give lo the address {} (a configured address for AI_ADDRCONFIG)",
                if *v6 { OWN_V6 } else { DNS_ADDR }
            ),
            NetStep::Listen { port, why } => format!(
                "listen on TCP port {port} of every address ({})",
                match why {
                    Why::Allowed => "allowed port",
                    Why::Exposed => "exposed host port",
                    Why::Learn => "learn",
                }
            ),
            NetStep::Dns => format!(
                "answer DNS on UDP and TCP port 53 of every address (resolv.conf names {DNS_ADDR})"
            ),
            NetStep::Handoff => {
                "hand the sockets to the network helper outside and close them here".into()
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetPlan {
    pub mode: NetMode,
    pub steps: Vec<NetStep>,
    /// What the plan left out, and why (explain shows it).
    pub notes: Vec<String>,
}

impl NetPlan {
    /// Whether a helper runs (every mode but `host`).
    pub fn helper(&self) -> bool {
        self.steps.contains(&NetStep::Handoff)
    }
}

/// The plan for `net`. Pure.
pub fn plan(net: &NetPolicy) -> NetPlan {
    let mode = net.mode.value;
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    match mode {
        NetMode::Host => {}
        NetMode::None => {
            // Loopback only: the host's exposed loopback ports are that.
            let mut exposed: Vec<u16> = Vec::new();
            for p in &net.expose_host_ports {
                if p.value != 53 && !exposed.contains(&p.value) && exposed.len() < MAX_PORTS {
                    exposed.push(p.value);
                }
            }
            steps.extend(exposed.into_iter().map(|port| NetStep::Listen {
                port,
                why: Why::Exposed,
            }));
            steps.push(NetStep::Dns);
            steps.push(NetStep::Handoff);
        }
        NetMode::Allowlist | NetMode::Learn => {
            steps.push(NetStep::LocalRoute { v6: false });
            steps.push(NetStep::LocalRoute { v6: true });
            steps.push(NetStep::OwnAddress { v6: false });
            steps.push(NetStep::OwnAddress { v6: true });
            let mut ports: Vec<(u16, Why)> = Vec::new();
            let mut add = |p: u16, why: Why, notes: &mut Vec<String>| {
                if p == 53 {
                    return; // the DNS sockets answer it
                }
                if MAIL_PORTS.contains(&p) && why != Why::Exposed {
                    let n = format!("port {p} is a mail port: always denied, not listened on");
                    if !notes.contains(&n) {
                        notes.push(n);
                    }
                    return;
                }
                if !ports.iter().any(|(q, _)| *q == p) {
                    ports.push((p, why));
                }
            };
            for p in &net.ports {
                add(p.value, Why::Allowed, &mut notes);
            }
            for a in &net.allow {
                if let Some(p) = a.value.port() {
                    add(p, Why::Allowed, &mut notes);
                }
            }
            for p in &net.expose_host_ports {
                add(p.value, Why::Exposed, &mut notes);
            }
            if mode == NetMode::Learn {
                for &p in LEARN_PORTS {
                    add(p, Why::Learn, &mut notes);
                }
            }
            if ports.len() > MAX_PORTS {
                notes.push(format!(
                    "{} ports asked; only the first {MAX_PORTS} are listened on",
                    ports.len()
                ));
                ports.truncate(MAX_PORTS);
            }
            steps.extend(
                ports
                    .into_iter()
                    .map(|(port, why)| NetStep::Listen { port, why }),
            );
            steps.push(NetStep::Dns);
            steps.push(NetStep::Handoff);
        }
    }
    NetPlan { mode, steps, notes }
}

/// The `[network steps]` section of `jail explain`: the effective mode
/// and what pid 1 will do.
pub fn explain(net: &NetPolicy) -> String {
    let p = plan(net);
    let mode = match p.mode {
        NetMode::None => "none: loopback only; names are answered \"no such name\" at once",
        NetMode::Allowlist => "allowlist: the helper relays allowed names only",
        NetMode::Learn => "learn: every name allowed and recorded (the floor still holds)",
        NetMode::Host => "host: the host's own network, no helper",
    };
    let mut o = format!("[network steps]\n  {:<14} {mode}\n", "effective");
    for (i, s) in p.steps.iter().enumerate() {
        o.push_str(&format!(
            "  {:<14} {}\n",
            format!("step {}", i + 1),
            s.describe()
        ));
    }
    if p.mode != NetMode::Host {
        o.push_str(&format!(
            "  {:<14} /etc/resolv.conf: jail's own, naming {DNS_ADDR}\n",
            "file"
        ));
    }
    for n in &p.notes {
        o.push_str(&format!("  {:<14} {n}\n", "note"));
    }
    o
}

/// The jail's own resolv.conf, naming the helper.
pub fn resolv_conf() -> Vec<u8> {
    format!(
        "# jail: names are answered by jail's network helper (see `jail explain`)\n\
         nameserver {DNS_ADDR}\n\
         options edns0\n"
    )
    .into_bytes()
}

/// Mount-plan steps for the network: the jail's own resolv.conf (every
/// mode with a helper), where the host's /etc/resolv.conf leads (it is
/// often a symlink into /run, which is the jail's own tmpfs).
pub fn file_steps(net: &NetPolicy) -> Vec<Step> {
    if net.mode.value == NetMode::Host {
        return Vec::new();
    }
    match resolv_conf_dest(Path::new("/etc/resolv.conf")) {
        Some(dest) => vec![Step::File {
            dest,
            contents: resolv_conf(),
        }],
        // No resolv.conf at all: resolvers then ask 127.0.0.1:53, which
        // the DNS sockets answer too.
        None => Vec::new(),
    }
}

/// Where the jail's resolv.conf must go so that `link` finds it: the end
/// of its symlink chain (followed lexically, up to 8 links), if that is
/// an existing file on the host or lies in a directory that is the
/// jail's own tmpfs; None when there is nothing to replace.
pub fn resolv_conf_dest(link: &Path) -> Option<PathBuf> {
    let mut cur = link.to_path_buf();
    for _ in 0..8 {
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = std::fs::read_link(&cur).ok()?;
                let base = cur.parent().unwrap_or(Path::new("/"));
                cur = crate::config::paths::normalize(&base.join(t));
            }
            Ok(_) => return Some(cur),
            // A dangling link into the jail's own /run (systemd-resolved,
            // resolvconf, NetworkManager keep it there): created there.
            Err(_) => return cur.starts_with("/run").then_some(cur),
        }
    }
    None
}

/// Says which step failed, for the launcher's error line.
pub fn failure(plan: &NetPlan, index: u32, errno: i32) -> String {
    let what = plan
        .steps
        .get(index as usize)
        .map_or_else(|| format!("network step {index}"), |s| s.describe());
    let e = crate::sys::errno_text(errno);
    let hint = match (plan.steps.get(index as usize), errno) {
        (Some(NetStep::Handoff), libc::EPIPE | libc::ECONNRESET) => {
            " (the network helper is gone; its own message says why)"
        }
        _ => "",
    };
    format!("cannot {what}: {e}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::spec::{Source, Sourced};

    fn policy(mode: NetMode, ports: &[u16], allow: &[&str], expose: &[u16]) -> NetPolicy {
        let s = || Source::Derived("test".into());
        NetPolicy {
            mode: Sourced::new(mode, s()),
            allow: allow
                .iter()
                .map(|a| Sourced::new(a.parse().unwrap(), s()))
                .collect(),
            deny: Vec::new(),
            ports: ports.iter().map(|&p| Sourced::new(p, s())).collect(),
            dns_upstream: None,
            expose_host_ports: expose.iter().map(|&p| Sourced::new(p, s())).collect(),
            proxy: None,
        }
    }

    #[test]
    fn allowlist_routes_listens_answers_dns_and_hands_over_last() {
        let p = plan(&policy(
            NetMode::Allowlist,
            &[443, 80, 443],
            &["github.com:22", "x.org"],
            &[11434],
        ));
        assert_eq!(
            p.steps,
            vec![
                NetStep::LocalRoute { v6: false },
                NetStep::LocalRoute { v6: true },
                NetStep::OwnAddress { v6: false },
                NetStep::OwnAddress { v6: true },
                NetStep::Listen {
                    port: 443,
                    why: Why::Allowed
                },
                NetStep::Listen {
                    port: 80,
                    why: Why::Allowed
                },
                NetStep::Listen {
                    port: 22,
                    why: Why::Allowed
                },
                NetStep::Listen {
                    port: 11434,
                    why: Why::Exposed
                },
                NetStep::Dns,
                NetStep::Handoff,
            ]
        );
        assert!(p.helper());
    }

    #[test]
    fn mail_ports_are_never_listened_on() {
        let p = plan(&policy(
            NetMode::Allowlist,
            &[25, 587, 443],
            &["m.org:465"],
            &[],
        ));
        let ports: Vec<u16> = p
            .steps
            .iter()
            .filter_map(|s| match s {
                NetStep::Listen { port, .. } => Some(*port),
                _ => None,
            })
            .collect();
        assert_eq!(ports, vec![443]);
        assert_eq!(p.notes.len(), 3, "{:?}", p.notes);
        assert!(p.notes[0].contains("port 25 is a mail port"));
    }

    #[test]
    fn none_only_answers_dns_and_host_does_nothing() {
        let p = plan(&policy(NetMode::None, &[443], &[], &[]));
        assert_eq!(p.steps, vec![NetStep::Dns, NetStep::Handoff]);
        // An exposed host port (a Slurm step's PMIx server) is loopback.
        let p = plan(&policy(NetMode::None, &[443], &[], &[40001, 53, 40001]));
        assert_eq!(
            p.steps,
            vec![
                NetStep::Listen {
                    port: 40001,
                    why: Why::Exposed
                },
                NetStep::Dns,
                NetStep::Handoff
            ]
        );
        let p = plan(&policy(NetMode::Host, &[443], &[], &[]));
        assert!(p.steps.is_empty() && !p.helper());
        assert!(file_steps(&policy(NetMode::Host, &[], &[], &[])).is_empty());
    }

    #[test]
    fn learn_listens_on_the_web_ports_too() {
        let p = plan(&policy(NetMode::Learn, &[8443], &[], &[]));
        let ports: Vec<u16> = p
            .steps
            .iter()
            .filter_map(|s| match s {
                NetStep::Listen { port, .. } => Some(*port),
                _ => None,
            })
            .collect();
        assert_eq!(ports, vec![8443, 80, 443]);
    }

    #[test]
    fn the_mount_plan_writes_the_jails_resolv_conf_last_except_under_host() {
        use crate::config::{resolve, Catalogue, Request};
        let root = std::env::temp_dir().join(format!("jail-netplan-{}", std::process::id()));
        std::fs::create_dir_all(root.join("home")).unwrap();
        std::fs::create_dir_all(root.join("proj")).unwrap();
        let facts = crate::testutil::facts(1, &root.join("home"), &root.join("proj"));
        let plan_for = |net: NetMode| {
            let req = Request {
                command: vec!["true".into()],
                net: Some(net),
                ..Default::default()
            };
            let spec = resolve(&req, &facts, &Catalogue::builtin().unwrap()).unwrap();
            crate::plan::plan(&spec).steps
        };
        let want = resolv_conf_dest(Path::new("/etc/resolv.conf"));
        for mode in [NetMode::None, NetMode::Allowlist, NetMode::Learn] {
            let steps = plan_for(mode);
            let files: Vec<&Step> = steps
                .iter()
                .filter(|s| matches!(s, Step::File { .. }))
                .collect();
            match &want {
                Some(dest) => {
                    assert_eq!(files.len(), 1, "{mode:?}");
                    assert_eq!(files[0].dest(), dest.as_path());
                    // After every bind (so no bind covers it), before the
                    // final read-only remounts.
                    let at = steps
                        .iter()
                        .position(|s| matches!(s, Step::File { .. }))
                        .unwrap();
                    assert!(steps[..at]
                        .iter()
                        .all(|s| !matches!(s, Step::RemountRo { dest } if dest == Path::new("/"))));
                    assert!(
                        !steps[at..].iter().any(|s| matches!(s, Step::Bind { .. })),
                        "{mode:?}"
                    );
                }
                None => assert!(files.is_empty()),
            }
            assert!(
                !steps
                    .iter()
                    .any(|s| s.dest().starts_with("/run/systemd/resolve")),
                "resolved's socket stays out ({mode:?})"
            );
        }
        assert!(!plan_for(NetMode::Host)
            .iter()
            .any(|s| matches!(s, Step::File { .. })));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn resolv_conf_goes_where_the_host_link_leads() {
        let d = std::env::temp_dir().join(format!("jail-resolv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(d.join("etc/real.conf"), "nameserver 1.1.1.1\n").unwrap();
        std::os::unix::fs::symlink("real.conf", d.join("etc/resolv.conf")).unwrap();
        assert_eq!(
            resolv_conf_dest(&d.join("etc/resolv.conf")),
            Some(d.join("etc/real.conf"))
        );
        std::os::unix::fs::symlink(
            "../run/jail-test-nowhere/resolv.conf",
            d.join("etc/dangling"),
        )
        .unwrap();
        // Followed lexically: d/etc/../run/... = d/run/..., not under /run.
        assert_eq!(resolv_conf_dest(&d.join("etc/dangling")), None);
        std::os::unix::fs::symlink("/run/jail-test-nowhere/r.conf", d.join("etc/r2")).unwrap();
        assert_eq!(
            resolv_conf_dest(&d.join("etc/r2")),
            Some(PathBuf::from("/run/jail-test-nowhere/r.conf"))
        );
        assert_eq!(resolv_conf_dest(&d.join("etc/missing")), None);
        let _ = std::fs::remove_dir_all(&d);
        let text = String::from_utf8(resolv_conf()).unwrap();
        assert!(text.contains(&format!("nameserver {DNS_ADDR}\n")));
    }
}
