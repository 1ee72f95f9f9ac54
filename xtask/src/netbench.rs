//! `cargo xtask bench`, network part: TCP throughput each way, connect()
//! latency, 1,000 connections at once, an HTTP round trip with curl, and
//! the helper's peak RSS, for
//! the host itself, pasta, slirp4netns, ../shared/bench/handoff-prototype
//! and jail's network helper, to the same test host, in one run.
//!
//! Everything happens in two network namespaces of the bench's own (the
//! machine's real network is never used): `outer` plays the host (where
//! pasta, slirp4netns, the prototype and jail run, as `benchuser`), and
//! `remote` is the test host at 198.51.100.2 with iperf3, an HTTP server
//! on 8000, an accept-and-close server on 8001 (deep backlog) and one
//! that reads a byte before it closes on 8002, as in
//! ../shared/bench/baseline.sh, whose slirp4netns plumbing (`__ns 1`) is
//! used as is.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bench::USER;

const REMOTE: &str = "198.51.100.2";
const PYACCEPT: &str = "import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind((sys.argv[1],int(sys.argv[2]))); s.listen(4096)
while True: s.accept()[0].close()";
/// Accepts, reads the one byte the client sends (a close with unread
/// data would be a reset), closes.
const PYREADCLOSE: &str = "import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1); s.bind((sys.argv[1],int(sys.argv[2]))); s.listen(4096)
while True:
    c=s.accept()[0]; c.settimeout(5)
    try: c.recv(1)
    except OSError: pass
    c.close()";
const PYCONN: &str = "import socket,sys,time,json,statistics as st
h,p,n=sys.argv[1],int(sys.argv[2]),int(sys.argv[3]); t=[]
for i in range(n+20):
    a=time.perf_counter(); c=socket.create_connection((h,p)); b=time.perf_counter(); c.close()
    if i>=20: t.append((b-a)*1e6)
t.sort(); print(json.dumps({\"n\":n,\"min_us\":round(t[0]),\"median_us\":round(st.median(t)),\"p90_us\":round(t[int(.9*n)])}))";

/// Opens N connections at once to a server that reads one byte and
/// closes, sends a byte on each, and waits until every one has seen the
/// server's close:
/// N flows through the mode together. Prints the wall time.
const PYMANY: &str = "import socket,sys,time,json,resource
h,p,n=sys.argv[1],int(sys.argv[2]),int(sys.argv[3])
s,hd=resource.getrlimit(resource.RLIMIT_NOFILE); resource.setrlimit(resource.RLIMIT_NOFILE,(hd,hd))
a=time.perf_counter(); cs=[socket.create_connection((h,p),timeout=60) for _ in range(n)]
for c in cs: c.sendall(b'x')
for c in cs:
    while c.recv(4096): pass
    c.close()
print(json.dumps({\"n\":n,\"ms\":round((time.perf_counter()-a)*1e3,1)}))";

/// Connections opened at once by the load case.
const MANY: u32 = 1000;

pub struct NetOptions {
    pub seconds: u32,
    pub reps: u32,
    pub curl_runs: u32,
}

/// One way of reaching the test host.
struct Mode {
    name: &'static str,
    /// Put before the client command (split on whitespace).
    prefix: String,
    /// How to find the helper process whose RSS is measured.
    helper: Helper,
}

enum Helper {
    None,
    /// A pid file the tool writes.
    PidFile(PathBuf),
    /// The newest process of the user whose command line contains this.
    Cmdline(&'static str),
}

#[derive(Default)]
struct Row {
    up: Vec<f64>,
    down: Vec<f64>,
    rss_kib: u64,
    connect: Option<Value>,
    /// `MANY` connections at once (PYMANY's JSON).
    many: Option<Value>,
    curl: Option<Value>,
    failed: Vec<String>,
}

struct Lab {
    outer: String,
    remote: String,
    servers: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.outer])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.remote])
            .status();
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let s = Command::new("ip")
        .args(args)
        .status()
        .map_err(|e| format!("ip: {e}"))?;
    if s.success() {
        Ok(())
    } else {
        Err(format!("ip {} failed", args.join(" ")))
    }
}

fn lab(dir: &Path) -> Result<Lab, String> {
    let id = std::process::id();
    let lab = Lab {
        outer: format!("jbench-o-{id}"),
        remote: format!("jbench-r-{id}"),
        servers: Vec::new(),
    };
    let (o, r) = (lab.outer.clone(), lab.remote.clone());
    let (vo, vr) = (format!("jbo{id}"), format!("jbr{id}"));
    ip(&["netns", "add", &o])?;
    ip(&["netns", "add", &r])?;
    ip(&[
        "-n", &o, "link", "add", &vo, "type", "veth", "peer", "name", &vr, "netns", &r,
    ])?;
    for (ns, dev) in [(&o, &vo), (&r, &vr)] {
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        ip(&["-n", ns, "link", "set", dev, "up"])?;
    }
    ip(&["-n", &o, "addr", "add", "198.51.100.1/24", "dev", &vo])?;
    ip(&["-n", &r, "addr", "add", "198.51.100.2/24", "dev", &vr])?;
    // pasta and slirp4netns copy the host's default route. Its gateway is
    // another address of the test host: pasta maps the gateway's address
    // to the host's loopback.
    ip(&["-n", &r, "addr", "add", "198.51.100.254/24", "dev", &vr])?;
    ip(&["-n", &o, "route", "add", "default", "via", "198.51.100.254"])?;
    let mut lab = lab;
    let www = dir.join("www");
    std::fs::create_dir_all(&www).map_err(|e| e.to_string())?;
    std::fs::write(www.join("index.html"), "ok\n").map_err(|e| e.to_string())?;
    let spawn = |args: &[&str]| -> Result<Child, String> {
        Command::new("ip")
            .args(["netns", "exec", &r])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{}: {e}", args[0]))
    };
    lab.servers.push(spawn(&["iperf3", "-s", "-B", REMOTE])?);
    lab.servers.push(spawn(&[
        "python3",
        "-m",
        "http.server",
        "8000",
        "--bind",
        REMOTE,
        "--directory",
        &www.display().to_string(),
    ])?);
    lab.servers
        .push(spawn(&["python3", "-c", PYACCEPT, REMOTE, "8001"])?);
    lab.servers
        .push(spawn(&["python3", "-c", PYREADCLOSE, REMOTE, "8002"])?);
    let t = Instant::now();
    loop {
        let ok = Command::new("ip")
            .args([
                "netns",
                "exec",
                &o,
                "curl",
                "-s",
                "-o",
                "/dev/null",
                &format!("http://{REMOTE}:8000/"),
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            break;
        }
        if t.elapsed() > Duration::from_secs(15) {
            return Err("the bench's test host did not start".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(lab)
}

/// `ip netns exec OUTER runuser -u benchuser -- env ... ARGS`.
fn in_outer(outer: &str, args: &[String]) -> Command {
    let mut c = Command::new("ip");
    c.args([
        "netns", "exec", outer, "runuser", "-u", USER, "--", "env", "-i", "-C",
    ])
    .arg("/home/benchuser/project")
    .arg("HOME=/home/benchuser")
    .arg(format!("USER={USER}"))
    .arg("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    .args(args);
    c
}

fn split(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

fn vm_hwm(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The newest process of the bench's user whose command line contains
/// `needle` (other users' helpers, e.g. test runs on the same machine,
/// are not this mode's).
fn find_cmdline(needle: &str) -> Option<u32> {
    let uid = crate::bench::user_ids().ok()?.0;
    let mut best = None;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let mine = e
            .metadata()
            .is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == uid);
        if !mine {
            continue;
        }
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) && best.is_none_or(|b| pid > b) {
            best = Some(pid);
        }
    }
    best
}

/// Runs `cmd` (in `mode`), polling the helper's peak RSS meanwhile.
fn run_measured(
    outer: &str,
    mode: &Mode,
    cmd: &[&str],
    limit: Duration,
) -> (Result<String, String>, u64) {
    use std::os::unix::process::CommandExt;
    let mut args = split(&mode.prefix);
    args.extend(cmd.iter().map(|s| s.to_string()));
    // Its own process group, so a case that hangs is stopped whole.
    let child = in_outer(outer, &args)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (Err(e.to_string()), 0),
    };
    let mut peak = 0;
    let mut pid = None;
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if start.elapsed() > limit {
            // SAFETY: signals the process group of our own child only.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            return (Err(format!("timed out after {} s", limit.as_secs())), peak);
        }
        if pid.is_none() {
            pid = match &mode.helper {
                Helper::None => None,
                Helper::PidFile(f) => std::fs::read_to_string(f)
                    .ok()
                    .and_then(|s| s.trim().parse().ok()),
                Helper::Cmdline(n) => find_cmdline(n),
            };
        }
        if let Some(p) = pid {
            peak = peak.max(vm_hwm(p));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let out = child.wait_with_output();
    match out {
        Ok(o) if o.status.success() => (Ok(String::from_utf8_lossy(&o.stdout).into_owned()), peak),
        Ok(o) => (
            Err(format!(
                "exit {:?}: {}",
                o.status.code(),
                // The end says why (a traceback ends with its exception).
                tail(&String::from_utf8_lossy(&o.stderr), 300)
            )),
            peak,
        ),
        Err(e) => (Err(e.to_string()), peak),
    }
}

/// The last `n` characters of `s`.
fn tail(s: &str, n: usize) -> String {
    let skip = s.chars().count().saturating_sub(n);
    s.chars().skip(skip).collect()
}

fn gbps(json: &str) -> Option<f64> {
    let v: Value = serde_json::from_str(json).ok()?;
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|b| b / 1e9)
}

fn modes(jail: &Path, dir: &Path) -> Vec<Mode> {
    let shared = crate::root().join("../shared/bench");
    let mut m = vec![
        Mode {
            name: "host",
            prefix: String::new(),
            helper: Helper::None,
        },
        Mode {
            name: "pasta",
            prefix: format!(
                "pasta --config-net --quiet -P {} --",
                dir.join("pasta.pid").display()
            ),
            helper: Helper::PidFile(dir.join("pasta.pid")),
        },
    ];
    if shared.join("baseline.sh").exists() {
        m.push(Mode {
            name: "slirp4netns",
            prefix: format!(
                "env BENCH_OUT={} bash {} __ns 1",
                dir.display(),
                shared.join("baseline.sh").display()
            ),
            helper: Helper::PidFile(dir.join(".run/helper.pid")),
        });
    }
    if shared.join("handoff-prototype/outside.py").exists() {
        m.push(Mode {
            name: "handoff-prototype",
            prefix: format!(
                "python3 {}",
                shared.join("handoff-prototype/outside.py").display()
            ),
            helper: Helper::Cmdline("handoff-prototype/outside.py"),
        });
    }
    m.push(Mode {
        name: "jail",
        prefix: format!(
            "{} -q --dns-upstream {REMOTE}:53 --allow-domain {REMOTE} --allow-port 5201 --allow-port 8000 --allow-port 8001 --allow-port 8002 --",
            jail.display()
        ),
        helper: Helper::Cmdline("__outside net"),
    });
    m
}

/// Runs the network bench; returns its markdown section.
pub fn run(jail: &Path, o: &NetOptions) -> Result<String, String> {
    for t in [
        "pasta",
        "slirp4netns",
        "iperf3",
        "python3",
        "curl",
        "hyperfine",
    ] {
        if !Path::new("/usr/bin").join(t).exists() {
            return Err(format!(
                "{t} is missing (apt-get install passt slirp4netns iperf3 curl)"
            ));
        }
    }
    // pasta and slirp4netns open /dev/net/tun inside the user namespace.
    let _ = Command::new("chmod")
        .args(["0666", "/dev/net/tun"])
        .status();
    let dir = PathBuf::from(format!("/tmp/jail-netbench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join(".run")).map_err(|e| e.to_string())?;
    let (uid, gid) = crate::bench::user_ids()?;
    for d in [dir.clone(), dir.join(".run")] {
        std::os::unix::fs::chown(&d, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
    }
    let lab = lab(&dir)?;
    let modes = modes(jail, &dir);
    let mut rows = Vec::new();
    for m in &modes {
        let mut row = Row::default();
        for dir_name in ["up", "down"] {
            for _ in 0..o.reps {
                let secs = o.seconds.to_string();
                let mut cmd = vec!["iperf3", "-c", REMOTE, "-t", &secs, "-J"];
                if dir_name == "down" {
                    cmd.push("-R");
                }
                let limit = Duration::from_secs(u64::from(o.seconds) * 3 + 30);
                let (r, peak) = run_measured(&lab.outer, m, &cmd, limit);
                row.rss_kib = row.rss_kib.max(peak);
                match r.as_deref().ok().and_then(gbps) {
                    Some(g) => {
                        eprintln!("netbench: {} {dir_name}: {g:.2} Gbit/s", m.name);
                        if dir_name == "up" {
                            row.up.push(g)
                        } else {
                            row.down.push(g)
                        }
                    }
                    None => row.failed.push(format!(
                        "iperf3 {dir_name}: {}",
                        r.err().unwrap_or_default()
                    )),
                }
            }
        }
        let (r, _) = run_measured(
            &lab.outer,
            m,
            &["python3", "-c", PYCONN, REMOTE, "8001", "300"],
            Duration::from_secs(120),
        );
        match r {
            Ok(s) => row.connect = serde_json::from_str(s.trim()).ok(),
            Err(e) => row.failed.push(format!("connect: {e}")),
        }
        let (r, peak) = run_measured(
            &lab.outer,
            m,
            &["python3", "-c", PYMANY, REMOTE, "8002", &MANY.to_string()],
            Duration::from_secs(120),
        );
        row.rss_kib = row.rss_kib.max(peak);
        match r {
            Ok(s) => row.many = serde_json::from_str(s.trim()).ok(),
            // The last line says why (a traceback's exception).
            Err(e) => row.failed.push(format!(
                "{MANY} at once: {}",
                e.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("")
            )),
        }
        // In the project: the one place every mode (the jail too) sees.
        let json = PathBuf::from(format!(
            "/home/benchuser/project/.netbench-curl-{}.json",
            m.name
        ));
        let _ = std::fs::remove_file(&json);
        let (runs, json_s) = (o.curl_runs.to_string(), json.display().to_string());
        let get = format!("curl -s -o /dev/null http://{REMOTE}:8000/");
        let hf = [
            "hyperfine",
            "-N",
            "--style",
            "none",
            "--warmup",
            "5",
            "--runs",
            &runs,
            "--export-json",
            &json_s,
            &get,
        ];
        let (r, _) = run_measured(&lab.outer, m, &hf, Duration::from_secs(300));
        match r {
            Ok(_) => {
                row.curl = std::fs::read_to_string(&json)
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                    .map(|v| v["results"][0].clone())
            }
            Err(e) => row.failed.push(format!("curl: {e}")),
        }
        let _ = std::fs::remove_file(&json);
        rows.push((m.name, row));
    }
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(table(&rows, o))
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn table(rows: &[(&str, Row)], o: &NetOptions) -> String {
    let f = |x: Option<f64>| x.map_or("failed".to_string(), |v| format!("{v:.2}"));
    let mut s = format!(
        "Network, to a test host at {REMOTE} in a network namespace (iperf3, 1 stream, {} s x {} per direction; \
         connect(): 300 sequential to an accept-and-close server; {MANY} at once: that many connections \
         opened together to a server that reads a byte and closes, a byte sent on each, until each saw \
         the close; curl: GET \
         of a small file from python's http.server, hyperfine {} runs, measured inside each mode; peak RSS: \
         VmHWM of the helper process during the transfers and the {MANY} connections). up = the sandboxed \
         program sends.\n\n\
         | mode | up Gbit/s | down Gbit/s | connect() median us | {MANY} at once ms | curl GET mean ms | helper peak RSS MiB |\n\
         |---|---|---|---|---|---|---|\n",
        o.seconds, o.reps, o.curl_runs
    );
    for (name, r) in rows {
        let rss = if r.rss_kib > 0 {
            format!("{:.1}", r.rss_kib as f64 / 1024.0)
        } else {
            "-".into()
        };
        let conn = r
            .connect
            .as_ref()
            .and_then(|c| c["median_us"].as_u64())
            .map_or("-".into(), |v| v.to_string());
        let many = r
            .many
            .as_ref()
            .and_then(|c| c["ms"].as_f64())
            .map_or("-".into(), |v| format!("{v:.0}"));
        let curl = r
            .curl
            .as_ref()
            .and_then(|c| c["mean"].as_f64())
            .map_or("-".into(), |v| format!("{:.2}", v * 1e3));
        s += &format!(
            "| {name} | {} | {} | {conn} | {many} | {curl} | {rss} |\n",
            f(mean(&r.up)),
            f(mean(&r.down))
        );
    }
    for (name, r) in rows {
        for e in &r.failed {
            s += &format!("\nNote: {name}: {e}\n");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_row_per_mode_and_means() {
        let rows = vec![
            (
                "jail",
                Row {
                    up: vec![10.0, 12.0],
                    down: vec![9.0],
                    rss_kib: 3072,
                    connect: serde_json::from_str("{\"median_us\": 40}").ok(),
                    many: serde_json::from_str("{\"ms\": 812.4}").ok(),
                    curl: serde_json::from_str("{\"mean\": 0.005}").ok(),
                    failed: vec![],
                },
            ),
            ("host", Row::default()),
        ];
        let t = table(
            &rows,
            &NetOptions {
                seconds: 10,
                reps: 2,
                curl_runs: 100,
            },
        );
        assert!(
            t.contains("| jail | 11.00 | 9.00 | 40 | 812 | 5.00 | 3.0 |"),
            "{t}"
        );
        assert!(
            t.contains("| host | failed | failed | - | - | - | - |"),
            "{t}"
        );
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("ab", 3), "ab");
        assert_eq!(
            gbps("{\"end\":{\"sum_received\":{\"bits_per_second\":2.5e9}}}"),
            Some(2.5)
        );
    }
}
