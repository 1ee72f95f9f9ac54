//! Resource limits end to end, as the unprivileged test user: a fork bomb
//! stopped by --pids (and the user's other processes untouched), a memory
//! hog stopped by --memory, a whole tree stopped by --timeout, limits from
//! profiles and site maxima; nothing left behind. The cgroup v2 path runs
//! where the test user has a delegated subtree, and says why it is
//! skipped elsewhere. The tmpfs mounts bounded together; processes left
//! at exit named. The network helper under load (1,000 connections at
//! once, a program that exhausts its descriptors, a DNS flood), in a
//! network lab of its own (tests/common/netlab.rs).

mod common;
#[macro_use]
#[path = "common/netlab.rs"]
mod netlab;
use common::*;
use netlab::Lab;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Forks until it cannot, the children sleeping; prints how many it made.
const BOMB_PY: &str = r#"import os, sys, time
kids, err = 0, None
for i in range(int(sys.argv[1])):
    try:
        pid = os.fork()
    except OSError as e:
        err = e.strerror
        break
    if pid == 0:
        time.sleep(2)
        os._exit(0)
    kids += 1
print('forked', kids, err, flush=True)
"#;

fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pids of processes whose command line contains `marker`.
fn procs_with(marker: &str) -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let c = fs::read(e.path().join("cmdline")).ok()?;
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            (c.contains(marker) && !c.contains("sh -c")).then_some(pid)
        })
        .collect()
}

/// The pid namespace of a process.
fn pidns(pid: u32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// Processes in the pid namespace `ns`.
fn members(ns: &Path) -> usize {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter(|e| fs::read_link(e.path().join("ns/pid")).ok().as_deref() == Some(ns))
        .count()
}

/// The jail's pid 1: the launcher's child in another pid namespace (the
/// launcher's other children, such as the quarantine guard, are outside).
fn jail_init(launcher: u32) -> Option<u32> {
    let ours = fs::read_link("/proc/self/ns/pid").ok()?;
    let t = fs::read_to_string(format!("/proc/{launcher}/task/{launcher}/children")).ok()?;
    t.split_whitespace()
        .filter_map(|p| p.parse().ok())
        .find(|&p| pidns(p).is_some_and(|ns| ns != ours))
}

fn write_script(sb: &Sandbox) {
    sb.write(sb.project.join("bomb.py"), BOMB_PY);
}

#[test]
fn pids_counts_exactly_the_programs_processes() {
    let sb = Sandbox::new("limits-pids-exact");
    write_script(&sb);
    let o = sb.jail(&["--pids", "20", "--", "python3", "bomb.py", "200"]);
    assert_code(&o, 0);
    // python itself and 19 children make the 20.
    assert_eq!(
        stdout(&o).trim(),
        "forked 19 Resource temporarily unavailable",
        "{}",
        stderr(&o)
    );
}

#[test]
fn pids_stops_a_fork_bomb_without_touching_the_users_other_processes() {
    let sb = Sandbox::new("limits-bomb");
    write_script(&sb);
    // The user's other work: 40 processes of the same user, outside.
    let marker = format!("{}", 7_000_000 + std::process::id());
    let _others = Others(
        marker.clone(),
        sb.as_user("/bin/sh".as_ref())
            .arg("-c")
            .arg(format!(
                "for i in $(seq 40); do sleep {marker} & done; wait"
            ))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the user's other processes", 10, || {
        procs_with(&format!("sleep {marker}")).len() >= 40
    });

    // Without the jail, the same limit as an rlimit counts them and stops
    // the user at once: that is what --pids must not do.
    let o = sb.host_sh(
        "python3 -c 'import resource, os; resource.setrlimit(resource.RLIMIT_NPROC, (24, 24)); os.fork()' 2>&1",
    );
    assert!(
        stdout(&o).contains("Resource temporarily unavailable"),
        "{}",
        stdout(&o)
    );

    // A real fork bomb in the jail.
    let bomb = sb
        .jail_cmd(&[
            "--pids",
            "24",
            "--timeout",
            "3",
            "--",
            "bash",
            "-c",
            "b(){ b | b; }; b",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let launcher = bomb.id();
    let mut init = None;
    wait_until("the jail's pid 1", 10, || {
        init = jail_init(launcher);
        init.is_some()
    });
    let ns = pidns(init.unwrap()).unwrap();
    let mut peak = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        peak = peak.max(members(&ns));
        std::thread::sleep(Duration::from_millis(20));
    }
    // Meanwhile the user can still start processes outside the jail.
    let o = sb.host_sh("sleep 0.01 & sleep 0.01 & wait; echo host-forks-fine");
    assert_code(&o, 0);
    assert!(stdout(&o).contains("host-forks-fine"));
    let o = bomb.wait_with_output().unwrap();
    assert_code(&o, 124);
    // pid 1 and at most 24 processes of the program.
    assert!(peak > 10 && peak <= 25, "peak {peak} processes in the jail");
    wait_until("the bomb to be gone", 10, || members(&ns) == 0);
    assert_eq!(
        procs_with(&format!("sleep {marker}")).len(),
        40,
        "the user's processes live on"
    );
}

/// The stand-ins for the user's other processes, ended however the test ends.
struct Others(String, std::process::Child);

impl Drop for Others {
    fn drop(&mut self) {
        for p in procs_with(&format!("sleep {}", self.0)) {
            // SAFETY: SIGKILL to a sleep this test started.
            unsafe { libc::kill(p as i32, libc::SIGKILL) };
        }
        let _ = self.1.wait();
    }
}

#[test]
fn memory_stops_a_hog() {
    let sb = Sandbox::new("limits-memory");
    let o = sb.jail(&[
        "--memory",
        "64M",
        "--",
        "python3",
        "-c",
        "b = bytearray(512 * 1024 * 1024); print('allocated', len(b))",
    ]);
    assert!(!stdout(&o).contains("allocated"), "{}", stdout(&o));
    let err = stderr(&o);
    // rlimits: the allocation fails; cgroup v2: the kernel kills it.
    assert!(
        (o.status.code() == Some(1) && err.contains("MemoryError"))
            || (o.status.code() == Some(137) && err.contains("memory limit (64 MiB) was reached")),
        "{:?}\n{err}",
        o.status
    );
    let o = sb.jail(&[
        "--memory",
        "64M",
        "--",
        "python3",
        "-c",
        "b = bytearray(16 << 20); print('ok')",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "ok");
}

#[test]
fn timeout_stops_the_whole_tree_with_status_124() {
    let sb = Sandbox::new("limits-timeout");
    sb.write(
        sb.home.join(".config/jail/config.toml"),
        "[limits]\ngrace = \"1s\"\n",
    );
    let marker = format!("{}", 8_000_000 + std::process::id());
    // Children that ignore SIGTERM, one in its own session.
    let script = format!(
        "(trap '' TERM; exec sleep {marker}1) & setsid sh -c \"trap '' TERM; exec sleep {marker}2\" & \
         trap '' TERM; sleep {marker}3"
    );
    let start = Instant::now();
    let o = sb.jail_sh(&["--timeout", "1"], &script);
    assert_code(&o, 124);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(
        stderr(&o).trim(),
        "jail: timed out after 1s: stopped every process of the jail (SIGTERM, then SIGKILL after 1s)"
    );
    wait_until("every process of the jail to die", 10, || {
        procs_with(&marker).is_empty()
    });

    // A program that ends on SIGTERM needs no SIGKILL; each of its
    // processes gets the SIGTERM.
    let o = sb.jail_sh(
        &["--timeout", "1"],
        "(trap 'echo child-got-term; exit 0' TERM; sleep 30 & wait) & trap 'echo got-term; wait; exit 3' TERM; sleep 30 & wait",
    );
    assert_code(&o, 124);
    assert!(
        stdout(&o).contains("got-term") && stdout(&o).contains("child-got-term"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).ends_with("(SIGTERM)\n"), "{}", stderr(&o));

    // Before the deadline the program's own status stands.
    let o = sb.jail_sh(&["--timeout", "30"], "exit 7");
    assert_code(&o, 7);
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
}

#[test]
fn limits_come_from_profiles_and_explain_says_how_they_are_enforced() {
    let sb = Sandbox::new("limits-profile");
    write_script(&sb);
    sb.write(
        sb.home.join(".config/jail/config.toml"),
        "[limits]\npids = 8\ntimeout = \"1h\"\n",
    );
    let o = sb.jail(&["--", "python3", "bomb.py", "50"]);
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o).trim(),
        "forked 7 Resource temporarily unavailable"
    );
    let e = sb.jail(&["explain", "--memory", "1.5G", "--", "true"]);
    assert_code(&e, 0);
    let out = stdout(&e);
    let line = |k: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with(k))
            .unwrap_or("")
            .to_string()
    };
    assert!(
        line("pids").contains("8") && line("pids").contains("config.toml"),
        "{out}"
    );
    assert!(line("timeout").contains("1h"), "{out}");
    assert!(
        line("memory").contains("1.5 GiB") && line("memory").contains("--memory"),
        "{out}"
    );
    assert!(
        line("enforced by").contains("timeout by jail")
            && (out.contains("rlimits (") || out.contains("cgroup v2: a cgroup")),
        "{out}"
    );
    // Bad values are jail's own errors.
    let o = sb.jail(&["--pids", "0", "--", "true"]);
    assert_code(&o, 125);
    assert!(stderr(&o).starts_with("jail: "), "{}", stderr(&o));
}

#[test]
fn site_maxima_bind_every_later_layer() {
    if !user().switch {
        skip(
            Lack::Setup,
            "a root-owned site directory needs the tests to run as root",
        );
        return;
    }
    let sb = Sandbox::new("limits-site");
    let site = PathBuf::from(format!(
        "/tmp/jail-tests/site-limits-{}",
        std::process::id()
    ));
    fs::create_dir_all(&site).unwrap();
    fs::set_permissions(&site, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        site.join("jail.toml"),
        "[limits]\nmemory = \"1G\"\npids = 100\n",
    )
    .unwrap();
    fs::set_permissions(site.join("jail.toml"), fs::Permissions::from_mode(0o644)).unwrap();
    let run = |args: &[&str]| {
        sb.jail_cmd(args)
            .env("JAIL_SITE_DIR", &site)
            .output()
            .unwrap()
    };
    let o = run(&["--memory", "2G", "--", "true"]);
    assert_code(&o, 125);
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!("jail: {}", site.join("jail.toml").display()))
            && err.contains("`limits.memory`")
            && err.contains("above the site's maximum 1 GiB"),
        "{err}"
    );
    // Unset limits take the site's value; lower ones are fine.
    let o = run(&["explain", "--pids", "50", "--", "true"]);
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l.contains("memory") && l.contains("1 GiB") && l.contains("site")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.contains("pids") && l.contains("50")),
        "{out}"
    );
    let _ = fs::remove_dir_all(&site);
}

#[test]
fn cgroup_limits_where_a_delegated_subtree_exists() {
    let sb = Sandbox::new("limits-cgroup");
    let d = sb.jail(&["doctor"]);
    let line = stdout(&d)
        .lines()
        .find(|l| l.trim_start().starts_with("resource limits"))
        .unwrap_or("")
        .to_string();
    if !line.contains("cgroup v2, delegated") {
        skip(
            Lack::Machine,
            &format!(
                "no delegated cgroup v2 subtree for the test user here ({})",
                line.trim()
            ),
        );
        return;
    }
    let o = sb.jail(&[
        "--memory",
        "32M",
        "--",
        "python3",
        "-c",
        "b = bytearray(256 << 20); b[::4096] = b'x' * len(b[::4096]); print('survived')",
    ]);
    assert_code(&o, 137);
    assert!(
        stderr(&o).contains("the memory limit (32 MiB) was reached"),
        "{}",
        stderr(&o)
    );
    write_script(&sb);
    let o = sb.jail(&["--pids", "12", "--", "python3", "bomb.py", "100"]);
    assert_eq!(
        stdout(&o).trim(),
        "forked 11 Resource temporarily unavailable"
    );
    assert!(
        stderr(&o).contains("the process limit (12) was reached"),
        "{}",
        stderr(&o)
    );
    // The jail's cgroup is gone.
    let parent = line.rsplit(' ').next().unwrap_or("/nonexistent");
    let left: Vec<_> = fs::read_dir(parent)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("jail-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// `dd` of `mb` MiB into `path`; prints `PATH ok` or `PATH full` (ENOSPC).
fn fill(path: &str, mb: u32) -> String {
    format!(
        "if dd if=/dev/zero of={path} bs=1M count={mb} 2>&1 | grep -q 'No space left on device'; \
         then echo {path} full; else echo {path} ok; fi; "
    )
}

/// `jail doctor`'s cgroup parent, where the test user has a delegated
/// cgroup v2 subtree.
fn delegated_cgroup(sb: &Sandbox) -> Option<String> {
    let d = sb.jail(&["doctor"]);
    let line = stdout(&d)
        .lines()
        .find(|l| l.trim_start().starts_with("resource limits"))
        .unwrap_or("")
        .to_string();
    line.contains("cgroup v2, delegated")
        .then(|| line.rsplit(' ').next().unwrap_or("").to_string())
}

#[test]
fn memory_bounds_the_tmpfs_mounts_together_and_full_is_enospc() {
    let sb = Sandbox::new("limits-tmpfs");
    // The issue's reproducer: 600 MiB into /dev/shm under a 64 MiB limit.
    let o = sb.jail(&[
        "--memory",
        "64M",
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/shm/x",
        "bs=1M",
        "count=600",
    ]);
    assert_code(&o, 1);
    assert!(
        stderr(&o).contains("No space left on device"),
        "{}",
        stderr(&o)
    );
    // The whole limit without a cgroup (the size is then the only bound
    // on the files); half of it where a cgroup counts files and processes.
    let (size_mib, kib) = if delegated_cgroup(&sb).is_some() {
        (32, "32768")
    } else {
        (64, "65536")
    };
    // The sum is bounded, not each mount: 5/8 of it fit in /tmp, and then
    // not as much again in /dev/shm or /var/tmp; freeing space in one
    // makes room in another. Each is an ordinary ENOSPC the program sees.
    let part = size_mib * 5 / 8;
    let script = format!(
        "{}{}{}rm -f /tmp/a /dev/shm/b; {}df -k /tmp /dev/shm | tail -n +2",
        fill("/tmp/a", part),
        fill("/dev/shm/b", part),
        fill("/var/tmp/c", part),
        fill("/dev/shm/d", part),
    );
    let o = sb.jail_sh(&["--memory", "64M"], &script);
    assert_code(&o, 0);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..4],
        &[
            "/tmp/a ok",
            "/dev/shm/b full",
            "/var/tmp/c full",
            "/dev/shm/d ok"
        ],
        "{out}\n{}",
        stderr(&o)
    );
    // df shows the one bound for each.
    for l in &lines[4..] {
        assert_eq!(l.split_whitespace().nth(1), Some(kib), "{out}");
    }

    // Without --memory the default fits the machine: all together half
    // the RAM, not half for each.
    let ram_kib: u64 = fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let o = sb.jail_sh(&[], "df -k /tmp | tail -n 1");
    assert_code(&o, 0);
    let size: u64 = stdout(&o)
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        size > 0 && size <= ram_kib / 2 + 4,
        "/tmp has {size} KiB of {ram_kib} KiB RAM"
    );
}

#[test]
fn explain_shows_the_tmpfs_size_and_where_it_comes_from() {
    let sb = Sandbox::new("limits-tmpfs-explain");
    let line = |out: &str| {
        out.lines()
            .find(|l| l.trim_start().starts_with("tmpfs "))
            .unwrap_or("")
            .to_string()
    };
    let o = sb.jail(&["explain", "--memory", "64M", "--", "true"]);
    assert_code(&o, 0);
    let out = stdout(&o);
    let l = line(&out);
    let size = match delegated_cgroup(&sb) {
        Some(_) => "32 MiB",
        None => "64 MiB",
    };
    assert!(l.contains(size) && l.contains("--memory"), "{out}");
    assert!(
        out.contains("/tmp, /var/tmp, /dev/shm, /run") && out.contains("ENOSPC"),
        "{out}"
    );
    let o = sb.jail(&["explain", "--", "true"]);
    let out = stdout(&o);
    let l = line(&out);
    assert!(l.contains("half of this machine's"), "{out}");
}

#[test]
fn processes_that_outlive_the_program_are_ended_and_named_at_exit() {
    let sb = Sandbox::new("limits-leftovers");
    let marker = format!("{}", 9_000_000 + std::process::id());
    // Two daemons left running, as "run in background" does; the
    // program's own status stands.
    // (Once both have exec'd sleep: until then they are `sh`.)
    let script = format!(
        "sleep {marker}1 & a=$!; sleep {marker}2 & b=$!; \
         until grep -qx sleep /proc/$a/comm && grep -qx sleep /proc/$b/comm; do :; done; \
         echo started; exit 4"
    );
    let o = sb.jail_sh(&[], &script);
    assert_code(&o, 4);
    assert_eq!(stdout(&o), "started\n");
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    let rest = lines[0]
        .strip_prefix("jail: ended 2 background processes: ")
        .unwrap_or_else(|| panic!("{err}"));
    let named: Vec<&str> = rest.split(", ").collect();
    assert_eq!(named.len(), 2, "{err}");
    for n in named {
        let pid = n
            .strip_prefix("sleep (pid ")
            .and_then(|p| p.strip_suffix(')'))
            .and_then(|p| p.parse::<u32>().ok());
        assert!(pid.is_some_and(|p| p > 1), "{err}");
    }
    wait_until("the background processes to end", 10, || {
        procs_with(&marker).is_empty()
    });

    // -q says nothing, but they are ended all the same.
    let o = sb.jail_sh(&["-q"], &format!("sleep {marker}3 & exit 0"));
    assert_code(&o, 0);
    assert_eq!(stderr(&o), "", "{}", stderr(&o));
    wait_until("the quiet run's process to end", 10, || {
        procs_with(&marker).is_empty()
    });

    // Nothing left: nothing said.
    let o = sb.jail_sh(&[], "sleep 0 & wait; echo done");
    assert_code(&o, 0);
    assert_eq!(stderr(&o), "", "{}", stderr(&o));
}

/// Opens N connections to allowed.test:80 at once, then sends a request
/// on each, then reads every answer; prints `ok COUNT`. Then waits for
/// the file `go` (so the test can look at the helper meanwhile).
const MANY_PY: &str = r#"import os, resource, socket, sys, time
n = int(sys.argv[1])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
addr = socket.getaddrinfo("allowed.test", 80, socket.AF_INET, socket.SOCK_STREAM)[0][4]
socks = [socket.create_connection(addr, timeout=60) for _ in range(n)]
for s in socks:
    s.sendall(b"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
ok = 0
for s in socks:
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    ok += b"hello allowed.test via http" in data
    s.close()
print("ok", ok, flush=True)
open("ready", "w").close()
while not os.path.exists("go"):
    time.sleep(0.05)
"#;

/// The helper's peak and current resident memory, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Runs `cmd` (and the jail, its helper and program) with at most `n`
/// open files.
fn with_nofile(cmd: &mut std::process::Command, n: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between
    // fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let r = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
}

/// The most the helper may hold resident, whatever the load (KiB).
const HELPER_RSS_MAX_KIB: u64 = 32 << 10;

#[test]
fn the_network_helper_relays_1000_connections_at_once_in_bounded_memory() {
    need_lab!();
    let lab = Lab::new();
    let sb = Sandbox::new("limits-net-1000");
    sb.write(sb.project.join("many.py"), MANY_PY);
    let start = Instant::now();
    let mut cmd = lab.jail_cmd(
        &sb,
        &[
            "--allow-domain",
            "allowed.test",
            "--allow-port",
            "80",
            "--",
            "python3",
            "many.py",
            "1000",
        ],
    );
    // A common hard limit on open files (RHEL's default): 1,000 relayed
    // connections take six descriptors each in the helper, more than it.
    with_nofile(&mut cmd, 4096);
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ready = sb.project.join("ready");
    let up = netlab::wait_until(120, || {
        ready.exists() || child.try_wait().ok().flatten().is_some()
    }) && ready.exists();
    let helper = netlab::helper_of(child.id());
    let (peak, now) = helper.map(rss_kib).unwrap_or((0, 0));
    sb.write(sb.project.join("go"), "");
    let o = child.wait_with_output().unwrap();
    assert!(up, "the program did not finish: {}", stderr(&o));
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "ok 1000", "{}", stderr(&o));
    assert!(helper.is_some(), "no helper");
    assert!(
        peak > 0 && peak < HELPER_RSS_MAX_KIB,
        "helper peak RSS {peak} KiB (now {now} KiB)"
    );
    // Each reached the test host, none was dropped on the way.
    let seen = lab
        .server_log()
        .lines()
        .filter(|l| *l == format!("tcp 80 {}", netlab::REMOTE))
        .count();
    assert_eq!(seen, 1000);
    eprintln!(
        "1000 connections in {:?}; helper peak RSS {peak} KiB",
        start.elapsed()
    );
}

/// Opens connections to allowed.test:80 until its own descriptors run
/// out, holding them silent; then checks that names still resolve, that
/// none of them was reset, and that a later request works once they are
/// closed. Waits for `go` at the end.
const HOG_PY: &str = r#"import os, resource, socket, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
addr = socket.getaddrinfo("allowed.test", 80, socket.AF_INET, socket.SOCK_STREAM)[0][4]
held, why = [], None
while True:
    try:
        s = socket.socket()
    except OSError as e:
        why = os.strerror(e.errno)
        break
    s.settimeout(5)
    try:
        s.connect(addr)
    except OSError as e:
        s.close()
        why = "connect: %s" % e
        break
    held.append(s)
print("held", len(held), why, flush=True)
time.sleep(1.5)
held.pop().close()
print("resolves", socket.gethostbyname("allowed.test"), flush=True)
reset = 0
for s in held:
    s.setblocking(False)
    try:
        if s.recv(1, socket.MSG_PEEK) == b"":
            reset += 1
    except BlockingIOError:
        pass
    except OSError:
        reset += 1
print("reset", reset, flush=True)
for s in held:
    s.close()
t = time.time()
s = socket.create_connection(addr, timeout=20)
s.sendall(b"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
print("later", b"hello allowed.test via http" in data, flush=True)
open("ready", "w").close()
while not os.path.exists("go"):
    time.sleep(0.05)
"#;

/// Sends FLOOD DNS queries over UDP as fast as it can, half for new
/// names under the allowed *.wild.test (asked upstream), half for new
/// denied names, never waiting for answers; then pipelines queries over
/// TCP_CLIENTS TCP connections that never read their answers; then a
/// lookup and a request must still work. Waits for `go` at the end.
const DNS_FLOOD_PY: &str = r#"import os, random, socket, struct, time
n = int(os.environ["FLOOD"])
def query(name, qid):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + q + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
sent = 0
t = time.time()
for i in range(n):
    name = ("f%d-%d.wild.test" if i % 2 else "f%d-%d.denied.example") % (i, random.randrange(1 << 30))
    try:
        s.sendto(query(name, i & 0xffff), ("127.0.0.53", 53))
        sent += 1
    except BlockingIOError:
        time.sleep(0.001)
    try:
        while True:
            s.recv(4096)
    except BlockingIOError:
        pass
print("sent", sent, round(time.time() - t, 1), flush=True)
# Over TCP too: many clients pipelining queries, none reading answers.
tcp, queued = [], 0
for k in range(int(os.environ["TCP_CLIENTS"])):
    c = socket.create_connection(("127.0.0.53", 53), timeout=5)
    c.setblocking(False)
    burst = b"".join(struct.pack(">H", len(m)) + m for m in (query("t%d-%d.denied.example" % (k, i), i) for i in range(2000)))
    for _ in range(int(os.environ["BURSTS"])):
        try:
            queued += c.send(burst)
        except BlockingIOError:
            time.sleep(0.01)
        except OSError:
            break  # the helper gave up on a client that never reads
    tcp.append(c)
print("tcp", len(tcp), queued, flush=True)
time.sleep(1)
addr = socket.getaddrinfo("allowed.test", 80, socket.AF_INET, socket.SOCK_STREAM)[0][4]
c = socket.create_connection(addr, timeout=20)
c.sendall(b"GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n")
data = b""
while True:
    d = c.recv(65536)
    if not d:
        break
    data += d
print("later", b"hello allowed.test via http" in data, flush=True)
open("ready", "w").close()
while not os.path.exists("go"):
    time.sleep(0.05)
"#;

/// Runs `script` (a file in the project) in a jail allowing allowed.test
/// and *.wild.test on port 80, with at most `nofile` open files for the
/// jail and its helper; returns (stdout, stderr, helper's peak RSS KiB,
/// whether the helper still ran at the end).
fn under_load(
    name: &str,
    script: &str,
    nofile: u64,
    env: &[(&str, &str)],
) -> (String, String, u64, bool) {
    let lab = Lab::new();
    let sb = Sandbox::new(name);
    sb.write(sb.project.join("load.py"), script);
    let mut cmd = lab.jail_cmd(
        &sb,
        &[
            "--allow-domain",
            "allowed.test",
            "--allow-domain",
            "*.wild.test",
            "--allow-port",
            "80",
            "--",
            "python3",
            "load.py",
        ],
    );
    with_nofile(&mut cmd, nofile);
    let mut child = cmd
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ready = sb.project.join("ready");
    netlab::wait_until(120, || {
        ready.exists() || child.try_wait().ok().flatten().is_some()
    });
    let helper = netlab::helper_of(child.id());
    let peak = helper.map(rss_kib).unwrap_or((0, 0)).0;
    let alive = helper.is_some_and(|h| {
        fs::read_to_string(format!("/proc/{h}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                != Some("Z")
        })
    });
    sb.write(sb.project.join("go"), "");
    let o = child.wait_with_output().unwrap();
    (stdout(&o), stderr(&o), peak, alive)
}

#[test]
fn a_program_that_exhausts_its_descriptors_leaves_the_helper_serving() {
    need_lab!();
    // 1,024 files for the jail and the helper alike: the program can
    // hold more connections than the helper could relay.
    let (out, err, peak, alive) = under_load("limits-net-fds", HOG_PY, 1024, &[]);
    let line = |k: &str| {
        out.lines()
            .find(|l| l.starts_with(k))
            .unwrap_or("")
            .to_string()
    };
    let held: usize = line("held ")
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(held > 900, "{out}\n{err}");
    assert!(
        line("held ").contains("Too many open files"),
        "{out}\n{err}"
    );
    assert_eq!(line("resolves "), "resolves 198.51.100.2", "{out}\n{err}");
    // The helper took what it could serve and left the rest waiting:
    // it reset none of them for want of descriptors of its own.
    assert_eq!(line("reset "), "reset 0", "{out}\n{err}");
    assert_eq!(line("later "), "later True", "{out}\n{err}");
    assert!(!err.contains("Too many open files"), "{err}");
    assert!(alive, "the helper died\n{err}");
    assert!(
        peak > 0 && peak < HELPER_RSS_MAX_KIB,
        "helper peak RSS {peak} KiB"
    );
}

#[test]
fn a_dns_flood_leaves_the_helper_answering_in_bounded_memory() {
    need_lab!();
    let (out, err, peak, alive) = under_load(
        "limits-net-dns",
        DNS_FLOOD_PY,
        4096,
        &[("FLOOD", "100000"), ("TCP_CLIENTS", "50"), ("BURSTS", "40")],
    );
    assert!(out.contains("sent "), "{out}\n{err}");
    assert!(out.contains("later True"), "{out}\n{err}");
    assert!(alive, "the helper died\n{err}");
    assert!(
        peak > 0 && peak < HELPER_RSS_MAX_KIB,
        "helper peak RSS {peak} KiB\n{out}"
    );
    // Denials are capped on the terminal, not one line per name.
    assert!(err.lines().count() < 100, "{} lines", err.lines().count());
}
