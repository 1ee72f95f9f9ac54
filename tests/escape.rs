//! Escape attempts against the real binary, as the unprivileged test user.
//! Each attack runs in its own process (a C helper, tests/helpers/escape.c,
//! built here with `cc`), inside the jail and, where safe, outside it as
//! the same user, so every test shows the kernel allows the attack and the
//! jail is what stops it. A test skips (`common::skip`, counted as skipped)
//! only when the host truly lacks the feature; under CI a missing tool fails.

mod common;
use common::*;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Builds the helper once per test binary; None (with the reason printed)
/// when no C compiler can build it.
fn helper() -> Option<&'static Path> {
    static H: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let r = H.get_or_init(|| {
        // One build per version of the source, reused across runs (no
        // directory left behind per test process).
        use std::hash::{Hash, Hasher};
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/escape.c");
        let text = fs::read(&src).map_err(|e| e.to_string())?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        let dir = PathBuf::from(format!("/tmp/jail-tests/helper-{:016x}", h.finish()));
        let out = dir.join("escape");
        if out.is_file() {
            return Ok(out);
        }
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let _ = fs::set_permissions("/tmp/jail-tests", fs::Permissions::from_mode(0o1777));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        let tmp = dir.join(format!("escape.{}", std::process::id()));
        let o = Command::new("cc")
            .args(["-O1", "-Wall", "-o"])
            .arg(&tmp)
            .arg(&src)
            .output()
            .map_err(|e| format!("cannot run cc: {e}"))?;
        if !o.status.success() {
            return Err(format!("cc failed: {}", String::from_utf8_lossy(&o.stderr)));
        }
        // Atomic: a concurrent run sees the old file or the new, never half.
        fs::rename(&tmp, &out).map_err(|e| e.to_string())?;
        Ok(out)
    });
    match r {
        Ok(p) => Some(p.as_path()),
        Err(e) => {
            skip(
                Lack::Setup,
                &format!("cannot build tests/helpers/escape.c: {e}"),
            );
            None
        }
    }
}

/// The helper inside the sandbox's project (the jail's /tmp is private;
/// the project is visible at the same path), owned by the test user.
fn stage(sb: &Sandbox) -> Option<PathBuf> {
    let h = helper()?;
    let dst = sb.project.join("escape");
    fs::copy(h, &dst).unwrap();
    fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).unwrap();
    if user().switch {
        chown(&dst, Some(user().uid), Some(user().gid)).unwrap();
    }
    Some(dst)
}

fn inside(sb: &Sandbox, opts: &[&str], args: &[&str]) -> String {
    let mut a: Vec<&str> = opts.to_vec();
    a.push("--");
    a.push("./escape");
    a.extend(args);
    let o = sb.jail(&a);
    assert_code(&o, 0);
    stdout(&o).trim().to_string()
}

fn outside(sb: &Sandbox, args: &[&str]) -> String {
    let o = sb
        .as_user(sb.project.join("escape").as_os_str())
        .args(args)
        .output()
        .unwrap();
    assert_code(&o, 0);
    stdout(&o).trim().to_string()
}

fn sysctl(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// One attack: `outside_ok` says what the kernel answers the test user
/// outside the jail (a prefix), `jailed` the exact answer inside.
fn attack(name: &str, mode: &str, outside_expect: &str, jailed: &str) {
    let sb = Sandbox::new(name);
    if stage(&sb).is_none() {
        return;
    }
    let out = outside(&sb, &[mode]);
    assert!(
        out.starts_with(outside_expect),
        "{mode} outside the jail: expected `{outside_expect}`, got `{out}`"
    );
    let got = inside(&sb, &[], &[mode]);
    assert_eq!(got, jailed, "{mode} inside the jail");
}

#[test]
fn capabilities_dropped_and_no_new_privs() {
    let sb = Sandbox::new("caps");
    let o = sb.jail_sh(&[], "cat /proc/self/status");
    assert_code(&o, 0);
    let s = stdout(&o);
    for (key, want) in [
        ("CapInh", "0000000000000000"),
        ("CapPrm", "0000000000000000"),
        ("CapEff", "0000000000000000"),
        ("CapBnd", "0000000000000000"),
        ("CapAmb", "0000000000000000"),
        ("NoNewPrivs", "1"),
        ("Seccomp", "2"),
    ] {
        let line = s
            .lines()
            .find(|l| l.starts_with(&format!("{key}:")))
            .unwrap_or_else(|| panic!("no {key} in /proc/self/status:\n{s}"));
        assert_eq!(line.split_whitespace().nth(1), Some(want), "{line}");
    }
    // Normal builds have no switch to turn hardening off.
    if !cfg!(feature = "bench-unhardened") {
        for v in ["1", "landlock", "seccomp"] {
            let o = sb
                .jail_cmd(&["--", "grep", "^Seccomp:", "/proc/self/status"])
                .env("JAIL_BENCH_UNHARDENED", v)
                .output()
                .unwrap();
            assert_code(&o, 0);
            assert_eq!(stdout(&o), "Seccomp:\t2\n", "JAIL_BENCH_UNHARDENED={v}");
        }
    }
    // Outside, the same user keeps a full bounding set and no filter.
    let host = stdout(&sb.host_sh("grep -E '^(CapBnd|NoNewPrivs):' /proc/self/status"));
    assert!(!host.contains("CapBnd:\t0000000000000000"), "{host}");
}

#[test]
fn tiocsti_injection_is_refused() {
    let sb = Sandbox::new("tiocsti");
    if stage(&sb).is_none() {
        return;
    }
    for mode in ["tiocsti", "tiocsti-high"] {
        let out = outside(&sb, &[mode]);
        if sysctl("/proc/sys/dev/tty/legacy_tiocsti").as_deref() == Some("0") {
            println!(
                "NOTE: dev.tty.legacy_tiocsti=0: the kernel refuses TIOCSTI outside too ({out})"
            );
        } else {
            assert_eq!(out, "ok 0\ninjected X", "{mode} outside the jail");
        }
        assert_eq!(inside(&sb, &[], &[mode]), "err EPERM", "{mode} inside");
    }
}

/// Runs `cmd` as the test user under `script`, so its stdin is a fresh
/// pty that is also its controlling terminal (as for a user at a shell).
fn under_pty(sb: &Sandbox, cmd: &str) -> Option<String> {
    let o = sb
        .as_user(std::ffi::OsStr::new("script"))
        .args(["-qec", cmd, "/dev/null"])
        .output()
        .ok()?;
    Some(stdout(&o).replace('\r', ""))
}

#[test]
fn tiocsti_into_the_users_terminal_is_refused() {
    // The attack that matters: the jailed program pushes keystrokes into
    // the terminal the user started jail from.
    let sb = Sandbox::new("tiocsti-tty");
    if stage(&sb).is_none() {
        return;
    }
    let Some(out) = under_pty(&sb, "./escape tiocsti-stdin") else {
        skip(Lack::Setup, "`script` (bsdutils) is not installed");
        return;
    };
    if sysctl("/proc/sys/dev/tty/legacy_tiocsti").as_deref() == Some("0") {
        println!("NOTE: dev.tty.legacy_tiocsti=0: the kernel refuses TIOCSTI outside too ({out})");
    } else {
        // The injected byte is echoed by the terminal before the report.
        assert_eq!(out, "#ok 0\n", "outside the jail");
    }
    let jail = format!("{} -q -- ./escape tiocsti-stdin", jail_bin().display());
    let out = under_pty(&sb, &jail).unwrap_or_default();
    assert_eq!(out, "err EPERM\n", "inside the jail");
}

#[test]
fn tiocsti_through_the_terminal_name_is_refused() {
    // The user's terminal is reachable by name inside (/dev/console, so
    // that `tty` works): reopened that way it is still no way to type
    // into the user's shell.
    let sb = Sandbox::new("tiocsti-console");
    if stage(&sb).is_none() {
        return;
    }
    let jail = format!(
        "{} -q -- sh -c 'test -c /dev/console && ./escape tiocsti-stdin < /dev/console'",
        jail_bin().display()
    );
    let Some(out) = under_pty(&sb, &jail) else {
        skip(Lack::Setup, "`script` (bsdutils) is not installed");
        return;
    };
    assert_eq!(out, "err EPERM\n", "inside the jail");
}

#[test]
fn tioclinux_is_refused() {
    // Outside, a pty answers ENOTTY (not a virtual console): the call
    // reached the tty layer. Inside, seccomp answers before it.
    attack("tioclinux", "tioclinux", "err ENOTTY", "err EPERM");
}

#[test]
fn io_uring_is_refused() {
    let expect = match sysctl("/proc/sys/kernel/io_uring_disabled").as_deref() {
        Some("0") | None => "ok",
        _ => "err",
    };
    attack("io_uring", "io_uring", expect, "err EPERM");
}

#[test]
fn userfaultfd_is_refused() {
    attack("uffd", "userfaultfd", "ok", "err EPERM");
}

#[test]
fn bpf_is_refused() {
    // An unknown command: the kernel says EINVAL, so EPERM is the filter's.
    attack("bpf", "bpf", "err EINVAL", "err EPERM");
}

#[test]
fn perf_event_open_is_refused() {
    let expect =
        match sysctl("/proc/sys/kernel/perf_event_paranoid").and_then(|v| v.parse::<i32>().ok()) {
            Some(p) if p <= 2 => "ok",
            _ => "err",
        };
    attack("perf", "perf", expect, "err EPERM");
}

#[test]
fn keyrings_are_refused() {
    attack("keyctl", "keyctl", "ok", "err EPERM");
    attack("add_key", "add_key", "ok", "err EPERM");
}

#[test]
fn mount_family_is_refused() {
    // Invalid flags: EINVAL from the kernel, so EPERM is the filter's.
    attack("mount", "mount", "err EINVAL", "err EPERM");
    attack("umount", "umount", "err EINVAL", "err EPERM");
}

#[test]
fn nested_user_namespaces_are_refused() {
    attack("unshare", "unshare-user", "ok", "err EPERM");
    attack("clonens", "clone-newuser", "ok", "err EPERM");
    // clone3 hides its flags from seccomp: ENOSYS sends libc to clone.
    attack("clone3", "clone3", "ok", "err ENOSYS");
    let sb = Sandbox::new("unshare-cmd");
    assert_code(&sb.host_sh("unshare -U true"), 0);
    let o = sb.jail(&["unshare", "-U", "true"]);
    assert_code(&o, 1);
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn personality_read_implies_exec_is_refused() {
    attack("persona", "personality", "ok", "err EPERM");
}

#[test]
fn ptrace_is_refused() {
    attack("ptrace", "ptrace-child", "ok 0", "err EPERM");
    // A sibling: `sleep` started by the shell, attacked by the helper.
    let sb = Sandbox::new("ptrace-sib");
    if stage(&sb).is_none() {
        return;
    }
    let o = sb.jail_sh(&[], "sleep 30 & ./escape ptrace $!; kill $!");
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "err EPERM");
}

#[test]
fn vsock_is_refused() {
    // vsock is not confined by the network namespace: on a VM it reaches
    // the hypervisor host even with --net none.
    let sb = Sandbox::new("vsock");
    if stage(&sb).is_none() {
        return;
    }
    for mode in ["vsock", "vsock-high"] {
        let out = outside(&sb, &[mode]);
        if out == "err EAFNOSUPPORT" {
            println!("NOTE: no vsock on this host ({out}); checking the jail's answer only");
        } else {
            assert!(out.starts_with("ok "), "{mode} outside the jail: {out}");
        }
        assert_eq!(inside(&sb, &[], &[mode]), "err EPERM", "{mode} inside");
    }
}

#[test]
fn x32_syscalls_are_refused() {
    // Without x32 support the kernel answers ENOSYS; the filter's EPERM
    // comes first either way.
    if !cfg!(target_arch = "x86_64") {
        skip(Lack::Machine, "x32 exists only on x86_64");
        return;
    }
    attack("x32", "x32", "", "err EPERM");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn i386_int80_syscalls_are_refused() {
    let sb = Sandbox::new("int80");
    if stage(&sb).is_none() {
        return;
    }
    let o = sb
        .as_user(sb.project.join("escape").as_os_str())
        .arg("int80")
        .output()
        .unwrap();
    if o.status.code() != Some(0) {
        skip(
            Lack::Machine,
            &format!(
                "int 0x80 is unavailable on this kernel (no IA32 emulation): {:?}",
                o.status
            ),
        );
        return;
    }
    assert!(stdout(&o).starts_with("ok "), "outside: {}", stdout(&o));
    assert_eq!(inside(&sb, &[], &["int80"]), "err EPERM");
}

fn landlock_abi() -> i64 {
    // SAFETY: the version query takes no pointer.
    unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    }
}

/// Waits for the first stdout line of a child (e.g. "ready").
fn first_line(child: &mut Child) -> String {
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    line.trim().to_string()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn host_abstract_unix_sockets_are_unreachable() {
    let sb = Sandbox::new("abstract");
    if stage(&sb).is_none() {
        return;
    }
    let name = format!("jail-test-{}", std::process::id());
    let mut l = sb
        .as_user(sb.project.join("escape").as_os_str())
        .args(["abstract-listen", &name])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(first_line(&mut l), "ready");
    let _listener = Killed(l);
    assert_eq!(outside(&sb, &["abstract-connect", &name]), "ok 0");
    // Own network namespace: the host's abstract namespace is not there.
    assert_eq!(
        inside(&sb, &[], &["abstract-connect", &name]),
        "err ECONNREFUSED"
    );
    // Host network: only Landlock's scoping stands in the way.
    if landlock_abi() < 6 {
        skip(
            Lack::Machine,
            "the --net host part: Landlock ABI < 6 cannot scope abstract unix sockets",
        );
        return;
    }
    assert_eq!(
        inside(&sb, &["--net", "host"], &["abstract-connect", &name]),
        "err EPERM"
    );
}

/// Children of `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

#[test]
fn processes_joining_from_outside_cannot_be_signalled_or_traced() {
    // A host process of the same user enters the jail's user and pid
    // namespaces (nsenter): visible inside, but outside the jail's Landlock
    // domain. The jailed program must not signal or ptrace it.
    if landlock_abi() < 6 {
        skip(Lack::Machine, "Landlock ABI < 6 has no signal scoping");
        return;
    }
    if Command::new("nsenter").arg("--version").output().is_err() {
        skip(Lack::Setup, "nsenter (util-linux) is not installed");
        return;
    }
    let sb = Sandbox::new("intruder");
    if stage(&sb).is_none() {
        return;
    }
    let marker = format!("{}", 700000 + std::process::id() % 100000);
    let jail = sb
        .jail_cmd(&["--", "./escape", "hunt", "sleep", &marker])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let launcher = jail.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let program = loop {
        // The launcher's children are the jail's pid 1 and the quarantine
        // guard; the program is a child of pid 1.
        let found = children_of(launcher)
            .into_iter()
            .flat_map(children_of)
            .find(|p| {
                fs::read_to_string(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.starts_with("./escape"))
            });
        if let Some(p) = found {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "the jailed program never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let intruder = sb
        .as_user(std::ffi::OsStr::new("nsenter"))
        .args([
            "-t",
            &program.to_string(),
            "-U",
            "-p",
            "--preserve-credentials",
        ])
        .args(["--", "sleep", &marker])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _intruder = Killed(intruder);
    let o = jail.wait_with_output().unwrap();
    assert_code(&o, 0);
    let s = stdout(&o);
    let lines: Vec<&str> = s.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.starts_with("found ")),
        "{s}"
    );
    assert_eq!(
        lines.get(1..),
        Some(&["ptrace err EPERM", "kill err EPERM"][..]),
        "{s}"
    );
}

#[test]
fn setuid_binaries_gain_nothing() {
    let sb = Sandbox::new("setuid");
    let Some(h) = stage(&sb) else { return };
    if !user().switch {
        skip(
            Lack::Setup,
            "making a setuid-root binary needs root (CI runs as root)",
        );
        return;
    }
    // A setuid-root copy of the helper, in the project (visible inside).
    let suid = sb.project.join("suid-escape");
    fs::copy(&h, &suid).unwrap();
    chown(&suid, Some(0), Some(0)).unwrap();
    fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).unwrap();
    let o = sb.as_user(suid.as_os_str()).arg("euid").output().unwrap();
    let out = stdout(&o);
    if out.trim() != "euid 0" {
        println!("NOTE: setuid does not work here outside the jail either ({out}): nosuid /tmp?");
    }
    let o = sb.jail(&["--", "./suid-escape", "euid"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), format!("euid {}", user().uid));
    // And the system's own setuid programs: no root either.
    if Path::new("/usr/bin/su").exists() {
        let o = sb.jail(&["su", "-c", "id -u", "root"]);
        assert_ne!(o.status.code(), Some(0), "su succeeded: {}", stdout(&o));
        assert!(!stdout(&o).contains('0'), "{}", stdout(&o));
    }
}

#[test]
fn landlock_mirrors_the_mount_policy() {
    if landlock_abi() < 1 {
        skip(Lack::Machine, "Landlock is not available on this kernel");
        return;
    }
    let sb = Sandbox::new("landlock");
    // /dev and /run are tmpfs the user owns: only Landlock refuses writes
    // there. The project, /tmp and home stay writable; renames across
    // directories (REFER) work.
    let o = sb.jail_sh(
        &[],
        "for p in /dev/x /run/x; do touch $p 2>&1 | grep -q 'Permission denied' && echo denied $p; done; \
         mkdir -p a b && echo hi > a/f && mv a/f b/f && cat b/f; \
         echo t > /tmp/t && cat /tmp/t; echo h > ~/h && cat ~/h; \
         cat /usr/bin/env > /dev/null && echo read-usr; \
         echo x > /usr/x 2>/dev/null || echo ro-usr",
    );
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o),
        "denied /dev/x\ndenied /run/x\nhi\nt\nh\nread-usr\nro-usr\n"
    );
}

#[test]
fn without_landlock_the_jail_warns_and_keeps_the_other_walls() {
    // The helper makes the Landlock syscalls answer ENOSYS, as a kernel
    // without Landlock does, then execs jail.
    let sb = Sandbox::new("no-landlock");
    let Some(h) = stage(&sb) else { return };
    let o = sb
        .as_user(h.as_os_str())
        .arg("without-landlock")
        .arg(jail_bin())
        .args([
            "--",
            "sh",
            "-c",
            "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status",
        ])
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("Landlock not built into this kernel")
            && stderr(&o).contains("no filesystem second wall"),
        "no warning naming the missing feature: {}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "NoNewPrivs:\t1\nSeccomp:\t2\n");
    let o = sb
        .as_user(h.as_os_str())
        .arg("without-landlock")
        .arg(jail_bin())
        .arg("doctor")
        .output()
        .unwrap();
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("Landlock") && l.contains("degraded")),
        "{out}"
    );
    assert!(
        out.contains("verdict: the jail runs, with less protection"),
        "{out}"
    );
}
