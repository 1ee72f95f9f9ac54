//! The network allowlist, with real parts: the real `jail` binary run as
//! the unprivileged test user, its network helper, a test host with
//! HTTP/HTTPS/other servers and real dnsmasq as the upstream resolver,
//! all in the test's own network namespaces (tests/common/netlab.rs). No
//! traffic goes anywhere else. Every denial is shown to be a denial:
//! the test host's log proves nothing arrived, and where it makes sense
//! the same request without the jail shows that it would have.

mod common;
#[macro_use]
#[path = "common/netlab.rs"]
mod netlab;

use common::*;
use netlab::*;
use std::io::Read;
use std::time::Duration;

fn out(o: &std::process::Output) -> String {
    format!("--- stdout\n{}\n--- stderr\n{}", stdout(o), stderr(o))
}

/// Whether process `pid` has ended (gone, or a zombie not reaped yet).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                == Some("Z")
        }
        Err(_) => true,
    }
}

fn curl(url: &str) -> String {
    format!("curl -sS -m 10 --cacert ca.pem {url}")
}

#[test]
fn allowed_names_work_over_https_http_and_ipv6() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-allow");
    lab.ca_into(&sb);
    let o = lab.jail_sh(
        &sb,
        &["--allow-domain", "allowed.test", "--allow-port", "80"],
        &format!(
            "cat /etc/resolv.conf; getent ahostsv4 allowed.test | head -1; \
             getent ahostsv6 allowed.test | head -1; {} && {} && {} -6",
            curl("https://allowed.test/"),
            curl("http://allowed.test/"),
            curl("https://allowed.test/")
        ),
    );
    assert_code(&o, 0);
    let s = stdout(&o);
    assert!(s.contains("nameserver 127.0.0.53"), "{}", out(&o));
    // One family at a time, with AI_ADDRCONFIG (the jail has addresses of
    // its own besides loopback).
    assert!(
        s.contains("198.51.100.2    STREAM allowed.test"),
        "{}",
        out(&o)
    );
    assert!(
        s.contains("2001:db8:5133::2 STREAM allowed.test"),
        "{}",
        out(&o)
    );
    assert!(
        s.contains("hello allowed.test via https on 198.51.100.2"),
        "{}",
        out(&o)
    );
    assert!(
        s.contains("hello allowed.test via http on 198.51.100.2"),
        "{}",
        out(&o)
    );
    assert!(
        s.contains("hello allowed.test via https on 2001:db8:5133::2"),
        "{}",
        out(&o)
    );
    assert_eq!(stderr(&o), "", "nothing denied, nothing said");
    assert!(lab.dns_log().contains("allowed.test"), "asked upstream");
}

#[test]
fn denied_names_are_nxdomain_at_once_and_never_asked_upstream() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-deny");
    let o = lab.jail_sh(
        &sb,
        &["--allow-domain", "allowed.test"],
        "getent hosts evil.test; echo rc=$?; getent hosts evil.test; getent hosts allowed.test",
    );
    assert_code(&o, 0);
    assert!(stdout(&o).contains("rc=2"), "not found: {}", out(&o));
    assert!(stdout(&o).contains(" allowed.test"), "{}", out(&o));
    let err = stderr(&o);
    assert_eq!(
        err.matches("jail: net: denied evil.test (not in the allowlist)")
            .count(),
        1,
        "once: {err}"
    );
    assert!(err.contains("1 denied (evil.test)"), "summary: {err}");
    let dns = lab.dns_log();
    assert!(dns.contains("allowed.test"), "{dns}");
    assert!(
        !dns.contains("evil.test"),
        "a denied name never leaves: {dns}"
    );
}

#[test]
fn wildcards_and_deny_rules() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-wild");
    sb.write(
        sb.home.join(".config/jail/config.toml"),
        "[network]\ndeny = [\"bad.wild.test\"]\n",
    );
    let o = lab.jail_sh(
        &sb,
        &["--allow-domain", "*.wild.test"],
        "for n in a.wild.test b.c.wild.test wild.test bad.wild.test; do getent hosts $n >/dev/null; echo $n=$?; done",
    );
    assert_code(&o, 0);
    let s = stdout(&o);
    for want in [
        "a.wild.test=0",
        "b.c.wild.test=0",
        "wild.test=2",
        "bad.wild.test=2",
    ] {
        assert!(s.contains(want), "{want}: {}", out(&o));
    }
    let err = stderr(&o);
    assert!(
        err.contains("denied wild.test (not in the allowlist)"),
        "{err}"
    );
    assert!(
        err.contains("denied bad.wild.test (on the deny list)"),
        "{err}"
    );
    assert!(!lab.dns_log().contains("bad.wild.test"));
}

#[test]
fn direct_addresses_and_unpinned_addresses_are_reset_and_never_reached() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-direct");
    let script = "curl -sS -m 10 http://198.51.100.2/; echo direct=$?; \
                  getent ahosts allowed.test >/dev/null; \
                  curl -sS -m 10 --resolve allowed.test:80:198.51.100.3 http://allowed.test/; echo other=$?";
    let o = lab.jail_sh(
        &sb,
        &["--allow-domain", "allowed.test", "--allow-port", "80"],
        script,
    );
    assert_code(&o, 0);
    let s = stdout(&o);
    // 56: "Recv failure: Connection reset by peer".
    assert!(
        s.contains("direct=56") && s.contains("other=56"),
        "{}",
        out(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains("jail: net: denied 198.51.100.2:80 (address not from an allowed name)"),
        "{err}"
    );
    assert!(
        err.contains("jail: net: denied allowed.test:80 (address not from an allowed name)"),
        "{err}"
    );
    assert_eq!(lab.server_log(), "", "nothing reached the test host");
    // Without the jail the same requests arrive.
    let h = lab.host_sh(&sb, "curl -sS -m 10 http://198.51.100.3/");
    assert!(
        stdout(&h).contains("via http on 198.51.100.3"),
        "{}",
        out(&h)
    );
}

#[test]
fn tls_server_name_and_http_host_must_be_the_pinned_name() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-sni");
    lab.ca_into(&sb);
    // second.test is allowed too, but lives at another address: naming it
    // in the TLS handshake to allowed.test's address is refused.
    let script = format!(
        "getent ahosts allowed.test >/dev/null; getent ahosts second.test >/dev/null; \
         {} --resolve other.test:443:198.51.100.2; echo sni=$?; \
         {} --resolve second.test:443:198.51.100.2; echo front=$?; \
         curl -sS -m 10 -H 'Host: other.test' http://allowed.test/; echo host=$?; \
         {}; echo ok=$?",
        curl("https://other.test/"),
        curl("https://second.test/"),
        curl("https://allowed.test/")
    );
    let o = lab.jail_sh(
        &sb,
        &[
            "--allow-domain",
            "allowed.test",
            "--allow-domain",
            "second.test",
            "--allow-port",
            "80",
        ],
        &script,
    );
    assert_code(&o, 0);
    let s = stdout(&o);
    for want in ["sni=35", "front=35", "host=56", "ok=0"] {
        assert!(s.contains(want), "{want}: {}", out(&o));
    }
    let err = stderr(&o);
    assert!(
        err.contains("denied other.test:443 (asked for other.test at an address of allowed.test)"),
        "{err}"
    );
    assert!(
        err.contains(
            "denied second.test:443 (asked for second.test at an address of allowed.test)"
        ),
        "{err}"
    );
    assert!(
        err.contains("denied other.test:80 (asked for other.test at an address of allowed.test)"),
        "{err}"
    );
    let log = lab.server_log();
    assert_eq!(
        log.lines().count(),
        1,
        "only the allowed request arrived: {log}"
    );
}

#[test]
fn floor_addresses_are_never_reached_whatever_the_allowlist() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-floor");
    let names = ["private.test", "meta.test", "self.test", "loop.test"];
    let mut args = vec!["--allow-port", "80", "--allow-domain", "10.1.2.3"];
    for n in &names {
        args.extend(["--allow-domain", n]);
    }
    let script = "for n in private.test meta.test self.test loop.test; do curl -sS -m 10 http://$n/; echo $n=$?; done; \
                  for a in 10.1.2.3 169.254.169.254 198.51.100.1 127.0.0.1; do curl -sS -m 10 http://$a/; echo $a=$?; done";
    let o = lab.jail_sh(&sb, &args, script);
    assert_code(&o, 0);
    let s = stdout(&o);
    for n in names {
        assert!(
            s.contains(&format!("{n}=6")),
            "{n} resolves to nothing: {}",
            out(&o)
        );
    }
    // Addresses: reset by the helper (56), loopback: nothing listens on
    // the jail's own port 80 (7).
    for a in [
        "10.1.2.3=56",
        "169.254.169.254=56",
        "198.51.100.1=56",
        "127.0.0.1=56",
    ] {
        assert!(s.contains(a), "{a}: {}", out(&o));
    }
    let err = stderr(&o);
    for want in [
        "denied private.test (resolves to a blocked address: private address (10.0.0.0/8))",
        "denied meta.test (resolves to a blocked address: link-local / cloud metadata (169.254.0.0/16))",
        "denied self.test (resolves to a blocked address: this host's own address)",
        "denied loop.test (resolves to a blocked address: loopback)",
        "denied 10.1.2.3:80 (private address (10.0.0.0/8): never reachable)",
        "denied 169.254.169.254:80 (link-local / cloud metadata (169.254.0.0/16): never reachable)",
        "denied 198.51.100.1:80 (this host's own address: never reachable)",
        "denied 127.0.0.1:80 (loopback: never reachable)",
    ] {
        assert!(err.contains(want), "{want}\n{err}");
    }
    assert_eq!(lab.server_log(), "", "no packet reached the test host");
    // Without the jail, the metadata and private addresses answer.
    let h = lab.host_sh(
        &sb,
        "curl -sS -m 10 http://169.254.169.254/ && curl -sS -m 10 http://10.1.2.3/",
    );
    assert!(
        stdout(&h).contains("via http on 169.254.169.254"),
        "{}",
        out(&h)
    );
    assert!(stdout(&h).contains("via http on 10.1.2.3"), "{}", out(&h));
}

#[test]
fn mail_ports_are_refused_at_once_even_when_allowed() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-smtp");
    let script = "python3 -c '
import socket
for p in (25, 587, 465, 2525):
    try:
        socket.create_connection((\"allowed.test\", p), timeout=10).recv(100)
        print(p, \"open\")
    except ConnectionRefusedError:
        print(p, \"refused\")
    except OSError as e:
        print(p, \"error\", e)
'";
    let o = lab.jail_sh(
        &sb,
        &[
            "--allow-domain",
            "allowed.test",
            "--allow-port",
            "25",
            "--allow-port",
            "587",
            "--allow-port",
            "465",
            "--allow-port",
            "2525",
        ],
        script,
    );
    assert_code(&o, 0);
    for p in [25, 587, 465, 2525] {
        assert!(
            stdout(&o).contains(&format!("{p} refused")),
            "{p}: {}",
            out(&o)
        );
    }
    assert_eq!(lab.server_log(), "");
    let h = lab.host_sh(&sb, "python3 -c 'import socket; print(socket.create_connection((\"198.51.100.2\", 25)).recv(100))'");
    assert!(stdout(&h).contains("220 test ESMTP"), "{}", out(&h));
    let e = lab
        .jail_cmd(
            &sb,
            &[
                "explain",
                "--allow-domain",
                "allowed.test",
                "--allow-port",
                "25",
            ],
        )
        .output()
        .unwrap();
    assert!(
        stdout(&e).contains("port 25 is a mail port: always denied"),
        "{}",
        out(&e)
    );
}

#[test]
fn udp_carries_dns_only() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-udp");
    let send = "python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5):
    try:
        s.sendto(b\"x\", (\"198.51.100.2\", 9999))
    except OSError as e:
        print(\"send\", e)
'";
    let o = lab.jail_sh(
        &sb,
        &[
            "--allow-domain",
            "allowed.test",
            "--allow-domain",
            "198.51.100.2",
        ],
        &format!("{send}; getent hosts allowed.test"),
    );
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains(" allowed.test"),
        "DNS works: {}",
        out(&o)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!lab.server_log().contains("udp"), "{}", lab.server_log());
    let h = lab.host_sh(&sb, send);
    assert_code(&h, 0);
    assert!(
        wait_until(5, || lab.server_log().contains("udp 9999")),
        "without the jail the datagrams arrive"
    );
}

#[test]
fn a_port_for_one_name_and_a_protocol_where_the_server_speaks_first() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-port");
    lab.ca_into(&sb);
    let script = format!(
        "python3 -c '
import socket
s = socket.create_connection((\"allowed.test\", 2222), timeout=10)
print(s.recv(100).decode().strip())
s.sendall(b\"hi\\n\")
print(s.recv(100).decode().strip())
'; {}; echo https=$?; curl -sS -m 10 http://allowed.test:8080/; echo other=$?",
        curl("https://allowed.test/")
    );
    let o = lab.jail_sh(&sb, &["--allow-domain", "allowed.test:2222"], &script);
    assert_code(&o, 0);
    let s = stdout(&o);
    assert!(s.contains("BANNER\necho hi"), "{}", out(&o));
    // 443 is listened on (the default port) but not allowed for this name.
    assert!(s.contains("https=35"), "{}", out(&o));
    // 8080 is allowed for no one: nothing listens, refused at once (7).
    assert!(s.contains("other=7"), "{}", out(&o));
    assert!(
        stderr(&o).contains("denied allowed.test:443 (port not allowed)"),
        "{}",
        out(&o)
    );
}

#[test]
fn the_helpers_death_ends_the_jails_network() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-hdeath");
    lab.ca_into(&sb);
    let script = format!(
        "{} >/dev/null && echo first-ok; touch ready; while [ ! -e go ]; do sleep 0.05; done; \
         {} ; echo rc=$?",
        curl("https://allowed.test/"),
        curl("https://allowed.test/")
    );
    let mut child = lab
        .jail_cmd(
            &sb,
            &["--allow-domain", "allowed.test", "--", "sh", "-c", &script],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_until(30, || sb.project.join("ready").exists()),
        "jail did not start"
    );
    let helper = helper_of(child.id()).expect("the helper runs");
    // SAFETY: kill with a pid and signal.
    assert_eq!(unsafe { libc::kill(helper as i32, libc::SIGKILL) }, 0);
    assert!(wait_until(10, || gone(helper)));
    sb.write(sb.project.join("go"), "");
    let status = child.wait().unwrap();
    let mut s = String::new();
    child.stdout.take().unwrap().read_to_string(&mut s).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{s}");
    assert!(s.contains("first-ok"), "{s}");
    // jail says so: the program does not run behind a dead helper unsaid.
    assert!(
        err.contains(
            "jail: net: the network helper ended (killed by signal 9) while the program runs"
        ),
        "{err}"
    );
    // 6: the name no longer resolves (nothing answers port 53), or 7:
    // refused; never 28 (a hang until curl's timeout).
    assert!(s.contains("rc=6") || s.contains("rc=7"), "{s}");
}

#[test]
fn the_jails_death_ends_the_helper() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-jdeath");
    let mut child = lab
        .jail_cmd(
            &sb,
            &["--allow-domain", "allowed.test", "--", "sleep", "60"],
        )
        .spawn()
        .unwrap();
    let mut helper = None;
    assert!(wait_until(30, || {
        helper = helper_of(child.id());
        helper.is_some()
    }));
    let helper = helper.unwrap();
    // The helper confines itself (no_new_privs, a seccomp filter) once it
    // has read its configuration.
    let confined = || {
        let status = std::fs::read_to_string(format!("/proc/{helper}/status")).unwrap_or_default();
        status
            .lines()
            .any(|l| l.split_whitespace().eq(["NoNewPrivs:", "1"]))
            && status
                .lines()
                .any(|l| l.split_whitespace().eq(["Seccomp:", "2"]))
    };
    assert!(wait_until(10, confined), "the helper is not confined");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        wait_until(10, || gone(helper)),
        "the helper outlived the jail"
    );
}

#[test]
fn learn_allows_and_prints_the_allowlist() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-learn");
    lab.ca_into(&sb);
    let o = lab.jail_sh(
        &sb,
        &["--net", "learn"],
        &format!(
            "{} >/dev/null && getent hosts other.test >/dev/null && echo ok",
            curl("https://allowed.test/")
        ),
    );
    assert_code(&o, 0);
    assert!(stdout(&o).contains("ok"), "{}", out(&o));
    let err = stderr(&o);
    assert!(
        err.contains("[network]\nmode = \"allowlist\"\nallow = [\"allowed.test\"]\nports = [443]"),
        "{err}"
    );
    assert!(
        err.contains("# resolved but never connected to: \"other.test\""),
        "{err}"
    );
}

#[test]
fn an_exposed_host_port_reaches_the_hosts_loopback_only_when_asked() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-expose");
    sb.write(sb.project.join("www/index.html"), "local model\n");
    let mut srv = lab.spawn_in_outer(&[
        "python3",
        "-m",
        "http.server",
        "18080",
        "--bind",
        "127.0.0.1",
        "--directory",
        sb.project.join("www").to_str().unwrap(),
    ]);
    let ready = wait_until(20, || {
        stdout(&lab.host_sh(&sb, "curl -sS -m 2 http://127.0.0.1:18080/")).contains("local model")
    });
    let get = "curl -sS -m 10 http://127.0.0.1:18080/; echo rc=$?";
    let with = lab.jail_sh(&sb, &["--expose-host-port", "18080"], get);
    let without = lab.jail_sh(&sb, &["--allow-domain", "allowed.test"], get);
    let _ = srv.kill();
    let _ = srv.wait();
    assert!(ready, "the host's server did not start");
    assert!(stdout(&with).contains("local model"), "{}", out(&with));
    assert!(
        stdout(&without).contains("rc=7"),
        "the jail's own loopback: {}",
        out(&without)
    );
}

#[test]
fn an_upstream_proxy_gets_connect_with_the_allowed_name() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-proxy");
    lab.ca_into(&sb);
    sb.write(
        sb.home.join(".config/jail/config.toml"),
        "[network]\nproxy = \"http://198.51.100.2:3128\"\n",
    );
    let o = lab.jail_sh(
        &sb,
        &["--allow-domain", "allowed.test"],
        &format!(
            "getent ahostsv4 allowed.test | head -1; {}; getent hosts evil.test; echo rc=$?",
            curl("https://allowed.test/")
        ),
    );
    assert_code(&o, 0);
    let s = stdout(&o);
    // The proxy resolves names: the jail gets a stand-in address.
    assert!(s.starts_with("198.18.0.1 "), "{}", out(&o));
    assert!(s.contains("hello allowed.test via https"), "{}", out(&o));
    assert!(
        s.contains("rc=2"),
        "other names are still denied: {}",
        out(&o)
    );
    let log = lab.server_log();
    assert!(log.contains("connect allowed.test:443"), "{log}");
    assert!(
        !lab.dns_log().contains("allowed.test"),
        "no one was asked: {}",
        lab.dns_log()
    );
}

#[test]
fn dns_to_any_server_over_udp_or_tcp_is_the_helpers_and_names_print_escaped() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-dns");
    let script = "python3 -c '
import socket, struct
def q(name, i):
    m = struct.pack(\">HHHHHH\", i, 0x0100, 1, 0, 0, 0)
    for l in name.split(b\".\"):
        m += bytes([len(l)]) + l
    return m + b\"\\0\" + struct.pack(\">HH\", 1, 1)
def rcode(r):
    return (struct.unpack(\">H\", r[:2])[0], struct.unpack(\">H\", r[2:4])[0] & 15, struct.unpack(\">H\", r[6:8])[0])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(5)
u.sendto(q(b\"allowed.test\", 7), (\"198.51.100.3\", 53))
print(\"udp\", rcode(u.recv(512)))
t = socket.create_connection((\"8.8.8.8\", 53), timeout=5)
m = q(b\"\\x1b[31mred.test\", 9)
t.sendall(struct.pack(\">H\", len(m)) + m)
n = struct.unpack(\">H\", t.recv(2))[0]
print(\"tcp\", rcode(t.recv(n)))
'";
    let o = lab.jail_sh(&sb, &["--allow-domain", "allowed.test"], script);
    assert_code(&o, 0);
    let s = stdout(&o);
    assert!(
        s.contains("udp (7, 0, 1)"),
        "answered with one address: {}",
        out(&o)
    );
    assert!(
        s.contains("tcp (9, 3, 0)"),
        "NXDOMAIN over TCP: {}",
        out(&o)
    );
    let err = stderr(&o);
    assert!(
        !err.contains('\x1b'),
        "no escape reaches the terminal: {err:?}"
    );
    assert!(err.contains("red.test (not in the allowlist)"), "{err}");
}

/// A DNS query from inside the jail with python: prints
/// `NAME rcode=N answers=N ms=N` (rcode 2: SERVFAIL).
fn dns_probe(names: &[&str]) -> String {
    let list = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "python3 -c '
import socket, struct, time
def q(name, i):
    m = struct.pack(\">HHHHHH\", i, 0x0100, 1, 0, 0, 0)
    for l in name.encode().split(b\".\"):
        m += bytes([len(l)]) + l
    return m + b\"\\0\" + struct.pack(\">HH\", 1, 1)
for i, n in enumerate([{list}]):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.settimeout(10)
    t = time.monotonic()
    u.sendto(q(n, i + 1), (\"127.0.0.53\", 53))
    r = u.recv(512)
    ms = int((time.monotonic() - t) * 1000)
    print(n, \"rcode=%d answers=%d ms=%d\" % (struct.unpack(\">H\", r[2:4])[0] & 15, struct.unpack(\">H\", r[6:8])[0], ms))
'"
    )
}

/// The number after `key=` on the line of `name` in `s`.
fn field(s: &str, name: &str, key: &str) -> Option<u64> {
    s.lines()
        .find(|l| l.starts_with(&format!("{name} ")))?
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))?
        .parse()
        .ok()
}

#[test]
fn offline_the_jail_starts_and_lookups_fail_at_once_naming_the_server() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-offline");
    // No route to 203.0.113.53 on the lab's host side: as a laptop
    // offline. 198.51.100.3:5454: the test host, where nothing listens.
    for (server, why) in [
        ("203.0.113.53:53", "Network is unreachable"),
        ("198.51.100.3:5454", "Connection refused"),
    ] {
        let o = lab
            .jail_cmd_dns(
                &sb,
                Some(server),
                &[
                    "--allow-domain",
                    "allowed.test",
                    "--",
                    "sh",
                    "-c",
                    &format!(
                        "echo started; {}; echo ran",
                        dns_probe(&["allowed.test", "allowed.test"])
                    ),
                ],
            )
            .output()
            .unwrap();
        assert_code(&o, 0);
        let s = stdout(&o);
        assert!(
            s.contains("started") && s.contains("ran"),
            "{server}: {}",
            out(&o)
        );
        assert_eq!(
            field(&s, "allowed.test", "rcode"),
            Some(2),
            "SERVFAIL: {}",
            out(&o)
        );
        for l in s.lines().filter(|l| l.starts_with("allowed.test")) {
            let ms: u64 = l.rsplit("ms=").next().unwrap().parse().unwrap();
            assert!(ms < 1000, "{server}: fails at once, not at a timeout: {l}");
        }
        let err = stderr(&o);
        let line = format!("cannot reach the DNS server {server} ({why})");
        assert_eq!(
            err.lines()
                .filter(|l| l.contains(&line) && l.contains("lookups fail at once"))
                .count(),
            1,
            "one line naming the server: {err}"
        );
        assert!(
            err.contains(&format!("allowed name allowed.test failed: {line}"))
                && err.contains("--dns-upstream"),
            "and at exit, with the fix: {err}"
        );
        assert!(!err.contains("denied"), "no denial: {err}");
    }
    assert_eq!(lab.server_log(), "");
}

#[test]
fn a_resolver_that_never_answers_costs_one_wait_not_one_per_lookup() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-silent");
    // The test host's UDP 9999 takes datagrams and never answers: a
    // firewalled resolver that drops queries.
    let o = lab
        .jail_cmd_dns(
            &sb,
            Some("198.51.100.2:9999"),
            &[
                "--allow-domain",
                "allowed.test",
                "--allow-domain",
                "second.test",
                "--",
                "sh",
                "-c",
                &dns_probe(&["allowed.test", "second.test"]),
            ],
        )
        .output()
        .unwrap();
    assert_code(&o, 0);
    let s = stdout(&o);
    assert_eq!(field(&s, "allowed.test", "rcode"), Some(2), "{}", out(&o));
    assert_eq!(field(&s, "second.test", "rcode"), Some(2), "{}", out(&o));
    let first = field(&s, "allowed.test", "ms").unwrap();
    let second = field(&s, "second.test", "ms").unwrap();
    assert!(
        (4500..6000).contains(&first),
        "the first waits: {}",
        out(&o)
    );
    assert!(second < 1500, "the next fails soon: {}", out(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "allowed name allowed.test failed: no answer from the DNS server 198.51.100.2:9999 (timeout)"
        ),
        "{err}"
    );
    assert!(lab.server_log().contains("udp 9999"), "it was asked");
}

#[test]
fn a_changed_resolv_conf_is_followed() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-roam");
    let conf = sb.root.join("etc/resolv.conf");
    sb.write(&conf, "# offline\nnameserver 203.0.113.53\n");
    let script = format!(
        "{}; touch ready; i=0; while [ ! -e go ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done; {}",
        dns_probe(&["allowed.test"]),
        dns_probe(&["second.test"])
    );
    let child = lab
        .jail_cmd_dns(
            &sb,
            None,
            &[
                "--allow-domain",
                "allowed.test",
                "--allow-domain",
                "second.test",
                "--",
                "sh",
                "-c",
                &script,
            ],
        )
        .env("JAIL_RESOLV_CONF", &conf)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        wait_until(30, || sb.project.join("ready").exists()),
        "jail did not start"
    );
    // Roaming: the network manager replaces the file (a rename).
    let tmp = sb.root.join("etc/resolv.conf.new");
    sb.write(&tmp, "nameserver 198.51.100.2\n");
    std::fs::rename(&tmp, &conf).unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    sb.write(sb.project.join("go"), "");
    let o = child.wait_with_output().unwrap();
    assert_code(&o, 0);
    let s = stdout(&o);
    assert_eq!(
        field(&s, "allowed.test", "rcode"),
        Some(2),
        "offline first: {}",
        out(&o)
    );
    assert_eq!(
        (
            field(&s, "second.test", "rcode"),
            field(&s, "second.test", "answers")
        ),
        (Some(0), Some(1)),
        "then the new server answers: {}",
        out(&o)
    );
    assert!(lab.dns_log().contains("second.test"), "{}", lab.dns_log());
    assert!(
        stderr(&o).contains("cannot reach the DNS server 203.0.113.53:53"),
        "{}",
        out(&o)
    );
}

#[test]
fn allowed_names_that_fail_upstream_are_reported_apart_from_denials() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-fail");
    let args = [
        "--allow-domain",
        "gone.test",
        "--allow-domain",
        "broken.test",
        "--allow-domain",
        "allowed.test",
        "--allow-domain",
        "*.gone.test",
    ];
    let script = "getent hosts gone.test; getent hosts broken.test; getent hosts evil.test; getent hosts x.gone.test; getent hosts allowed.test >/dev/null; echo done";
    let o = lab.jail_sh(&sb, &args, script);
    assert_code(&o, 0);
    assert!(stdout(&o).contains("done"), "{}", out(&o));
    let err = stderr(&o);
    let gone = "jail: net: allowed name gone.test failed: the DNS server 198.51.100.2:53 answered NXDOMAIN";
    let broken = "jail: net: allowed name broken.test failed: the DNS server 198.51.100.2:53 answered SERVFAIL";
    for want in [gone, broken] {
        assert_eq!(
            err.lines().filter(|l| l.starts_with(want)).count(),
            1,
            "at exit, once: {want}\n{err}"
        );
    }
    assert!(
        err.lines()
            .any(|l| l.starts_with(gone) && l.contains("proxy = \"http://HOST:PORT\"")),
        "the likely fix: {err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with(broken) && l.contains("--dns-upstream")),
        "{err}"
    );
    assert!(!err.contains("allowed.test failed"), "it resolved: {err}");
    assert!(
        !err.contains("x.gone.test"),
        "a name below a wildcard that does not exist is no failure: {err}"
    );
    assert!(
        err.contains("1 denied (evil.test)") && !err.contains("denied gone.test"),
        "failures are no denials: {err}"
    );
    // -v says it when it happens too; -q keeps it for the exit.
    let v = lab.jail_sh(
        &sb,
        &[&args[..], &["-v"]].concat(),
        "getent hosts gone.test; echo done",
    );
    assert_eq!(
        stderr(&v).lines().filter(|l| l.starts_with(gone)).count(),
        2,
        "{}",
        out(&v)
    );
    let q = lab.jail_sh(
        &sb,
        &[&args[..], &["-q"]].concat(),
        "getent hosts gone.test; getent hosts evil.test; echo done",
    );
    let qe = stderr(&q);
    assert!(
        qe.lines().any(|l| l.starts_with(gone)) && qe.contains("1 denied (evil.test)"),
        "{}",
        out(&q)
    );
    assert!(
        !qe.contains("jail: net: denied evil.test"),
        "no live line under -q: {qe}"
    );
}

/// Runs `jail ARGS` on a pseudo-terminal (tests/helpers/pty_drive.py),
/// as the test user on the lab's host side. The driver's exit status
/// and output.
fn lab_pty(lab: &Lab, sb: &Sandbox, args: &[&str], script: &str) -> (bool, String) {
    use std::io::Write;
    let driver =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/pty_drive.py");
    let copy = sb.root.join("pty_drive.py");
    std::fs::copy(&driver, &copy).unwrap();
    let u = user();
    let mut c = std::process::Command::new("ip");
    c.args(["netns", "exec", &lab.outer]);
    if u.switch {
        c.arg("setpriv")
            .arg(format!("--reuid={}", u.uid))
            .arg(format!("--regid={}", u.gid))
            .arg("--clear-groups")
            .arg("--");
    }
    c.arg("python3")
        .arg(&copy)
        .args(["24", "100", "--"])
        .arg(jail_bin())
        .args(["--dns-upstream", DNS])
        .args(args)
        .env_clear()
        .env("HOME", &sb.home)
        .env("PATH", PATH)
        .env("TERM", "xterm")
        .env("LANG", "C.UTF-8")
        .current_dir(&sb.project)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    (o.status.success(), stdout(&o))
}

#[test]
fn notices_wait_while_a_full_screen_program_owns_the_terminal() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-tty");
    // A full-screen program turns canonical mode off (raw), as claude's
    // or codex's TUI does; the denial comes while it owns the screen.
    let program = |raw: bool| {
        format!(
            "{} getent hosts evil.test; printf 'LOOKED\\r\\n'; sleep 1; stty sane; printf 'DONE\\r\\n'",
            if raw { "stty raw -echo;" } else { "" }
        )
    };
    let drive = "expect LOOKED\nsleep 1.5\nexpect (?s)\\A(?:(?!jail: net).)*DONE\nexpect jail: net: denied evil.test \\(not in the allowlist\\)\nexpect 1 denied \\(evil.test\\)\nwait\n";
    let (ok, o) = lab_pty(
        &lab,
        &sb,
        &[
            "--allow-domain",
            "allowed.test",
            "--",
            "sh",
            "-c",
            &program(true),
        ],
        drive,
    );
    assert!(
        ok,
        "nothing drawn into the program's screen, all said after it:\n{o}"
    );
    assert!(o.contains("exit=0"), "{o}");
    let log =
        std::fs::read_to_string(sb.home.join(".local/state/jail/notices.log")).unwrap_or_default();
    assert!(
        log.contains("Z jail: net: denied evil.test (not in the allowlist)"),
        "logged for `tail -f`: {log:?}"
    );
    // The check can fail: a line-oriented program (canonical mode) gets
    // the line at once, before DONE.
    let (ok, o) = lab_pty(
        &lab,
        &sb,
        &[
            "--allow-domain",
            "allowed.test",
            "--",
            "sh",
            "-c",
            &program(false),
        ],
        drive,
    );
    assert!(!ok, "the cooked terminal shows it at once:\n{o}");
    assert!(o.contains("FAIL"), "{o}");
}

#[test]
fn name_checks_cannot_be_waited_out() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("net-late");
    lab.ca_into(&sb);
    let script = r#"python3 -c '
import socket, ssl, time
def talk(port, reqs, delay=0.0, tls=None, banner=False):
    out = []
    try:
        s = socket.create_connection(("allowed.test", port), timeout=10)
        if banner:
            s.recv(100)
        time.sleep(delay)
        if tls:
            c = ssl.create_default_context(cafile="ca.pem")
            s = c.wrap_socket(s, server_hostname=tls)
        for r in reqs:
            s.sendall(r.encode())
            d = s.recv(4096).decode(errors="replace")
            out.append(d.split("\r\n")[-1].strip() or "EOF")
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError) as e:
        out.append("reset")
    except OSError as e:
        out.append("error %s" % e)
    return " | ".join(out)
def get(host, extra=""):
    return "GET / HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (host, extra)
print("late-host:", talk(80, [get("other.test")], 0.5))
print("late-ok:", talk(80, [get("allowed.test")], 0.5))
print("late-sni:", talk(443, [get("other.test")], 0.5, tls="other.test"))
print("late-sni-ok:", talk(443, [get("allowed.test")], 0.5, tls="allowed.test"))
print("after-banner:", talk(2222, [get("other.test")], 0, banner=True))
print("two-hosts:", talk(8081, [get("allowed.test", "Host: other.test\r\n")]))
print("kept-alive:", talk(8081, [get("allowed.test"), get("other.test")]))
print("upgraded:", talk(8081, [get("allowed.test", "Upgrade: echo\r\nConnection: Upgrade\r\n"), "any bytes"]))
print("upgrade-refused:", talk(8081, [get("allowed.test", "Upgrade: websocket\r\nConnection: Upgrade\r\n"), get("other.test")]))
body = get("other.test")
print("bodies:", talk(8081, [
    "POST / HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
    "POST / HTTP/1.1\r\nHost: allowed.test\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body),
    get("allowed.test"),
]))
'"#;
    let o = lab.jail_sh(
        &sb,
        &[
            "--allow-domain",
            "allowed.test:80",
            "--allow-domain",
            "allowed.test:443",
            "--allow-domain",
            "allowed.test:2222",
            "--allow-domain",
            "allowed.test:8081",
        ],
        script,
    );
    assert_code(&o, 0);
    let s = stdout(&o);
    for want in [
        "late-host: reset",
        "late-ok: hello allowed.test via http on 198.51.100.2",
        "late-sni: reset",
        "late-sni-ok: hello allowed.test via https on 198.51.100.2",
        "after-banner: reset",
        "two-hosts: reset",
        "kept-alive: hello allowed.test via keep-alive | reset",
        // The server switched (101): no longer HTTP, relayed as is.
        "upgraded: EOF | echo any bytes",
        // The server did not switch protocols (200, not 101): still HTTP.
        "upgrade-refused: hello allowed.test via keep-alive | reset",
        "bodies: hello allowed.test via keep-alive | hello allowed.test via keep-alive | hello allowed.test via keep-alive",
    ] {
        assert!(s.lines().any(|l| l == want), "{want}\n{}", out(&o));
    }
    let err = stderr(&o);
    assert!(
        err.contains("denied other.test:80 (asked for other.test at an address of allowed.test)"),
        "{err}"
    );
    assert!(
        err.contains("denied other.test:443 (asked for other.test at an address of allowed.test)"),
        "{err}"
    );
    assert!(
        err.contains("denied allowed.test:8081 (HTTP request with more than one Host header)"),
        "{err}"
    );
    assert!(
        err.contains("denied other.test:8081 (asked for other.test at an address of allowed.test)"),
        "{err}"
    );
    let log = lab.server_log();
    assert!(!log.contains("http 8081 other.test"), "{log}");
    assert_eq!(log.matches("http 8081 allowed.test").count(), 6, "{log}");
}

// ---- without a lab (no root needed) ----

#[test]
fn network_none_answers_names_at_once_and_says_so_once() {
    let sb = Sandbox::new("net-none");
    let o = sb.jail_sh(
        &[],
        "getent hosts a.example; echo rc=$?; getent hosts b.example; cat /etc/resolv.conf; echo $npm_config_offline $CARGO_NET_OFFLINE",
    );
    assert_code(&o, 0);
    let s = stdout(&o);
    assert!(s.contains("rc=2"), "{}", out(&o));
    assert!(s.contains("nameserver 127.0.0.53"), "{}", out(&o));
    assert!(
        s.contains("true true"),
        "package tools are told: {}",
        out(&o)
    );
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("jail: net: the network is off (--net none, from builtin profile default): a.example was not looked up"),
        "{err}"
    );
    let q = sb.jail_sh(&["-q"], "getent hosts a.example");
    assert_eq!(stderr(&q), "");
}

/// The live children of `pid` (zombies are done).
fn live_children(pid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let mut f = stat.rsplit(')').next().unwrap_or("").split_whitespace();
            let state = f.next();
            f.next().and_then(|p| p.parse::<u32>().ok()) == Some(pid) && state != Some("Z")
        })
        .count()
}

/// Waits (up to 20 s) until `path` exists.
fn wait_file(path: &std::path::Path) {
    let start = std::time::Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn under_none_the_name_helper_starts_only_when_a_name_is_looked_up() {
    // With and without a timeout: the launcher's wait starts it either way.
    for opts in [&[][..], &["--timeout", "60"][..]] {
        let sb = Sandbox::new("net-none-lazy");
        let mut args: Vec<&str> = opts.to_vec();
        args.extend([
            "--",
            "sh",
            "-c",
            // Each wait ends by itself after 10 s, should the test fail.
            "upto() { i=0; while [ ! -e $1 ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done; }; \
             touch s1; upto g1; getent hosts a.example; echo rc=$? > s2; upto g2",
        ]);
        let child = sb
            .jail_cmd(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        wait_file(&sb.project.join("s1"));
        // The guard and pid 1.
        let before = live_children(child.id());
        sb.write(sb.project.join("g1"), "");
        wait_file(&sb.project.join("s2"));
        let after = live_children(child.id());
        sb.write(sb.project.join("g2"), "");
        let o = child.wait_with_output().unwrap();
        assert_code(&o, 0);
        assert_eq!(
            std::fs::read_to_string(sb.project.join("s2")).unwrap(),
            "rc=2\n",
            "answered at once: {}",
            out(&o)
        );
        assert_eq!(before, 2, "{opts:?}: no helper before the first name");
        assert_eq!(after, 3, "{opts:?}: the helper answered it");
        assert!(
            stderr(&o).starts_with("jail: net: the network is off"),
            "{}",
            out(&o)
        );
    }
}

#[test]
fn explain_shows_the_effective_network_and_its_steps() {
    let sb = Sandbox::new("net-explain");
    let o = sb.jail(&[
        "explain",
        "--allow-domain",
        "@crates",
        "--expose-host-port",
        "11434",
        "--",
        "cargo",
        "fetch",
    ]);
    assert_code(&o, 0);
    let s = stdout(&o);
    for want in [
        "mode           allowlist                    # command line --allow-domain",
        "index.crates.io",
        "[network steps]",
        "effective      allowlist",
        "route every IPv4 destination to lo",
        "listen on TCP port 443 of every address (allowed port)",
        "listen on TCP port 11434 of every address (exposed host port)",
        "hand the sockets to the network helper",
    ] {
        assert!(s.contains(want), "{want}\n{s}");
    }
    let o = sb.jail(&[
        "explain",
        "--net",
        "none",
        "--allow-domain",
        "x.org",
        "--",
        "true",
    ]);
    assert_code(&o, 125);
    assert!(
        stderr(&o).starts_with("jail: --allow-domain needs the network"),
        "{}",
        out(&o)
    );
}
