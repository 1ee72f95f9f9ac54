//! A network lab for one test: two network namespaces of its own, never
//! the machine's real network.
//!
//! - `outer` plays the host the jail runs on: veth 198.51.100.1/24 and
//!   2001:db8:5133::1/64, `lo` up, and routes that send 10.0.0.0/8 and
//!   169.254.0.0/16 to the test host too, so that reaching a floor address
//!   would succeed without the jail (the attack works) and its absence
//!   under the jail is proven by the test host's log.
//! - `remote` is the test host: 198.51.100.2 and .3, 2001:db8:5133::2, and
//!   the floor addresses 10.1.2.3 and 169.254.169.254, all on its veth;
//!   dnsmasq on 198.51.100.2:53 (the jail's `--dns-upstream`), logging
//!   every query it gets; tests/helpers/net_server.py logging every
//!   connection.
//!
//! Names are unique per test process and lab (pid and counter), so labs
//! of concurrent test runs never meet. Needs root (CI runs as root); a
//! jail inside runs as the unprivileged test user through `ip netns exec
//! OUTER setpriv ...`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{jail_bin, user, Sandbox, PATH};

pub const HOST: &str = "198.51.100.1";
pub const REMOTE: &str = "198.51.100.2";
pub const REMOTE2: &str = "198.51.100.3";
pub const HOST6: &str = "2001:db8:5133::1";
pub const REMOTE6: &str = "2001:db8:5133::2";
pub const DNS: &str = "198.51.100.2:53";

/// The names dnsmasq answers (everything else: no answer it knows).
const RECORDS: &[&str] = &[
    "--host-record=allowed.test,198.51.100.2,2001:db8:5133::2",
    "--host-record=other.test,198.51.100.3",
    "--host-record=second.test,198.51.100.3",
    "--address=/wild.test/198.51.100.2",
    "--host-record=private.test,10.1.2.3",
    "--host-record=meta.test,169.254.169.254",
    "--host-record=self.test,198.51.100.1",
    "--host-record=loop.test,127.0.0.1",
    "--host-record=v6.test,2001:db8:5133::2",
    // NXDOMAIN, and a zone whose server does not answer (SERVFAIL).
    "--address=/gone.test/",
    "--server=/broken.test/198.51.100.2#5353",
];

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Why network tests cannot run here, if they cannot: not root, or a
/// tool missing. Under CI every tool must be there (.ci/run installs
/// them), so a missing one fails instead of skipping.
pub fn unavailable() -> Option<String> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return Some(
            "network tests build test hosts in network namespaces and need root (CI runs them)"
                .into(),
        );
    }
    let missing: Vec<&str> = ["ip", "dnsmasq", "openssl", "python3", "curl"]
        .into_iter()
        .filter(|t| !on_path(t))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let why = format!("missing {} (.ci/run installs them)", missing.join(", "));
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have every tool: {why}"
    );
    Some(why)
}

pub fn on_path(t: &str) -> bool {
    [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ]
    .iter()
    .any(|d| Path::new(d).join(t).exists())
}

/// Skips the calling test (with a printed reason) when labs cannot run.
#[macro_export]
macro_rules! need_lab {
    () => {
        if let Some(why) = netlab::unavailable() {
            $crate::common::skip($crate::common::Lack::Setup, &why);
            return;
        }
    };
}

pub struct Lab {
    pub outer: String,
    pub remote: String,
    pub dir: PathBuf,
    children: Vec<Child>,
}

fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect(args[0]);
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn helpers() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/helpers")
}

impl Lab {
    pub fn new() -> Lab {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("{}{}", std::process::id(), n);
        let lab = Lab {
            outer: format!("jnet-o-{id}"),
            remote: format!("jnet-r-{id}"),
            dir: PathBuf::from(format!("/tmp/jail-tests/netlab-{id}")),
            children: Vec::new(),
        };
        let _ = std::fs::remove_dir_all(&lab.dir);
        std::fs::create_dir_all(&lab.dir).unwrap();
        lab.wire();
        let mut lab = lab;
        lab.start_services();
        lab
    }

    fn wire(&self) {
        let (o, r) = (self.outer.as_str(), self.remote.as_str());
        // veth names: at most 15 bytes, unique per lab.
        let tag = &self.outer["jnet-o-".len()..];
        let (vo, vr) = (format!("jo{tag}"), format!("jr{tag}"));
        let (vo, vr) = (&vo[..vo.len().min(15)], &vr[..vr.len().min(15)]);
        sh(&["ip", "netns", "add", o]);
        sh(&["ip", "netns", "add", r]);
        sh(&[
            "ip", "-n", o, "link", "add", vo, "type", "veth", "peer", "name", vr, "netns", r,
        ]);
        for (ns, dev) in [(o, vo), (r, vr)] {
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        sh(&["ip", "-n", o, "addr", "add", "198.51.100.1/24", "dev", vo]);
        sh(&[
            "ip",
            "-n",
            o,
            "-6",
            "addr",
            "add",
            "2001:db8:5133::1/64",
            "dev",
            vo,
            "nodad",
        ]);
        for a in [
            "198.51.100.2/24",
            "198.51.100.3/24",
            "10.1.2.3/8",
            "169.254.169.254/16",
        ] {
            sh(&["ip", "-n", r, "addr", "add", a, "dev", vr]);
        }
        sh(&[
            "ip",
            "-n",
            r,
            "-6",
            "addr",
            "add",
            "2001:db8:5133::2/64",
            "dev",
            vr,
            "nodad",
        ]);
        // Floor addresses are on the test host: reachable without a jail.
        sh(&["ip", "-n", o, "route", "add", "10.0.0.0/8", "dev", vo]);
        sh(&["ip", "-n", o, "route", "add", "169.254.0.0/16", "dev", vo]);
        sh(&["ip", "-n", r, "route", "add", "default", "dev", vr]);
    }

    fn start_services(&mut self) {
        let (cert, key) = cert();
        let log = self.dir.join("server.log");
        let ready = self.dir.join("server.ready");
        std::fs::write(&log, "").unwrap();
        let server = Command::new("ip")
            .args(["netns", "exec", &self.remote, "python3"])
            .arg(helpers().join("net_server.py"))
            .args([&log, &cert, &key, &ready])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("net_server.py");
        self.children.push(server);
        let dns = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.remote,
                "dnsmasq",
                "-k",
                "--conf-file=/dev/null",
            ])
            .args([
                "--no-resolv",
                "--no-hosts",
                "--user=root",
                "--bind-interfaces",
            ])
            .arg(format!("--listen-address={REMOTE}"))
            .arg("--log-queries")
            .arg(format!(
                "--log-facility={}",
                self.dir.join("dns.log").display()
            ))
            .arg(format!("--pid-file={}", self.dir.join("dns.pid").display()))
            .args(RECORDS)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq");
        self.children.push(dns);
        let t = Instant::now();
        while !(ready.exists() && self.dir.join("dns.pid").exists()) {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "test host did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `jail --dns-upstream 198.51.100.2:53 ARGS` as the test user, on
    /// the lab's host side, in the sandbox's project.
    pub fn jail_cmd(&self, sb: &Sandbox, args: &[&str]) -> Command {
        self.jail_cmd_dns(sb, Some(DNS), args)
    }

    /// `jail [--dns-upstream DNS] ARGS` as the test user (without one, the
    /// helper follows a resolv.conf).
    pub fn jail_cmd_dns(&self, sb: &Sandbox, dns: Option<&str>, args: &[&str]) -> Command {
        let u = user();
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.outer]);
        if u.switch {
            c.arg("setpriv")
                .arg(format!("--reuid={}", u.uid))
                .arg(format!("--regid={}", u.gid))
                .arg("--clear-groups")
                .arg("--");
        }
        c.arg(jail_bin());
        if let Some(d) = dns {
            c.args(["--dns-upstream", d]);
        }
        c.args(args)
            .env_clear()
            .env("HOME", &sb.home)
            .env("USER", &u.name)
            .env("LOGNAME", &u.name)
            .env("PATH", PATH)
            .env("LANG", "C.UTF-8")
            .env("SHELL", "/bin/sh")
            .current_dir(&sb.project)
            .stdin(Stdio::null());
        c
    }

    /// `jail [opts] -- sh -c SCRIPT`, run to the end.
    pub fn jail_sh(&self, sb: &Sandbox, opts: &[&str], script: &str) -> Output {
        let mut args = opts.to_vec();
        args.extend(["--", "sh", "-c", script]);
        self.jail_cmd(sb, &args).output().unwrap()
    }

    /// `sh -c SCRIPT` as the test user on the lab's host side, no jail
    /// (the same attack, to show it works without one).
    pub fn host_sh(&self, sb: &Sandbox, script: &str) -> Output {
        let u = user();
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.outer]);
        if u.switch {
            c.arg("setpriv")
                .arg(format!("--reuid={}", u.uid))
                .arg(format!("--regid={}", u.gid))
                .arg("--clear-groups")
                .arg("--");
        }
        c.args(["sh", "-c", script])
            .env_clear()
            .env("HOME", &sb.home)
            .env("PATH", PATH)
            .current_dir(&sb.project)
            .stdin(Stdio::null());
        c.output().unwrap()
    }

    /// What the test host saw: one line per connection or datagram.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The names dnsmasq (the upstream resolver) was asked for.
    pub fn dns_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dns.log")).unwrap_or_default()
    }

    /// Runs `f` in the host side (for servers on its loopback).
    pub fn spawn_in_outer(&self, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.outer])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// The CA certificate a client in the jail trusts (copied into the
    /// project, where the jail sees it).
    pub fn ca_into(&self, sb: &Sandbox) -> PathBuf {
        let (cert, _) = cert();
        let dst = sb.project.join("ca.pem");
        sb.write(&dst, &std::fs::read_to_string(cert).unwrap());
        dst
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // dnsmasq runs under `ip netns exec`, which execs it: killed above.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.outer])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.remote])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A self-signed certificate for the test host's names, made with
/// openssl once and shared by test runs (made under a temporary name and
/// renamed, so concurrent runs never see half of one).
pub fn cert() -> (PathBuf, PathBuf) {
    static C: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    C.get_or_init(|| {
        let done = PathBuf::from("/tmp/jail-tests/netcert-v1");
        if done.join("cert.pem").exists() && done.join("key.pem").exists() {
            return (done.join("cert.pem"), done.join("key.pem"));
        }
        let dir = PathBuf::from(format!("/tmp/jail-tests/netcert-v1.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        sh(&[
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "3650", "-subj", "/CN=allowed.test",
            "-addext", "subjectAltName=DNS:allowed.test,DNS:*.wild.test,DNS:other.test,DNS:second.test,DNS:v6.test",
            "-keyout", key.to_str().unwrap(), "-out", cert.to_str().unwrap(),
        ]);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cert, std::fs::Permissions::from_mode(0o644)).unwrap();
        if std::fs::rename(&dir, &done).is_err() {
            let _ = std::fs::remove_dir_all(&dir); // another run made it first
        }
        (done.join("cert.pem"), done.join("key.pem"))
    })
    .clone()
}

/// The pid of the network helper started by the jail launcher `launcher`.
pub fn helper_of(launcher: u32) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(launcher)
            && cmd.split(|&b| b == 0).any(|a| a == b"net")
            && cmd.windows(9).any(|w| w == b"__outside")
        {
            return Some(pid);
        }
    }
    None
}

/// Waits until `cond` holds (up to `secs`), polling.
pub fn wait_until(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}
