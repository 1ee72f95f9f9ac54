//! `jail doctor` (its own process, never a jail): probes what the jail needs on this host, by trying it
//! (in forked children, so the probe process itself changes nothing),
//! and prints one line per feature: ok, degraded (the jail runs, with
//! less), missing (the jail cannot run safely) or info. Exits 1 when the
//! jail cannot run safely, else 0.

use std::fmt::Write as _;
use std::path::Path;

use crate::harden::{ruleset, seccomp};
use crate::host::on_path;
use crate::launcher::diagnose;
use crate::launcher::diagnose::read_sysctl;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works, with a protection or feature less.
    Degraded,
    /// The jail cannot run (safely) without it.
    Missing,
    /// Optional; only reported.
    Info,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Missing => "MISSING",
            Status::Info => "info",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    pub feature: &'static str,
    pub status: Status,
    pub detail: String,
}

fn check(feature: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        feature,
        status,
        detail: detail.into(),
    }
}

/// Whether Slurm is here and whether jails submit through the chaperon
/// (the resolved `[slurm]` policy of the `default` profile, site included).
fn slurm_check() -> Check {
    let Some(sbatch) = on_path("sbatch") else {
        return check(
            "Slurm",
            Status::Info,
            "no sbatch on PATH: Slurm support stays off",
        );
    };
    let policy = slurm_policy();
    let exe = std::env::current_exe()
        .and_then(std::fs::canonicalize)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let Some(policy) = policy else {
        return check(
            "Slurm",
            Status::Info,
            format!(
                "sbatch at {}; the configuration does not resolve here (see `jail explain`)",
                sbatch.display()
            ),
        );
    };
    if !policy.enabled.value {
        return check(
            "Slurm",
            Status::Info,
            format!(
                "sbatch at {}, but jails do not submit jobs ([slurm] enabled = false, {})",
                sbatch.display(),
                policy.enabled.source
            ),
        );
    }
    if exe.len() > 120 || exe.contains(char::is_whitespace) {
        return check(
            "Slurm",
            Status::Degraded,
            format!(
                "sbatch at {}, but jail's path {exe} cannot start batch jobs (#! line): install \
                 it at a short path without spaces",
                sbatch.display()
            ),
        );
    }
    check(
        "Slurm",
        Status::Ok,
        format!(
            "sbatch at {}: the chaperon applies ({}); jails run sbatch, srun, squeue, scancel, \
             scontrol, sacct through it and jobs run jailed by {exe}, which compute nodes \
             must have at that path",
            sbatch.display(),
            policy.enabled.source
        ),
    )
}

/// Under `slurm_job_network = "cluster"`: whether this kernel can run the
/// connect supervisor (a seccomp listener, and pidfd_getfd to take it),
/// as each compute node must.
fn cluster_check() -> Option<Check> {
    use crate::config::profile::JobNetwork;
    on_path("sbatch")?;
    let policy = slurm_policy()?;
    if !policy.enabled.value || policy.job_network.value != JobNetwork::Cluster {
        return None;
    }
    let prog = crate::harden::notify::program();
    let probe = in_child(|| {
        // SAFETY: prctl with integer arguments, in the forked child.
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        let fd = match crate::harden::notify::install(&prog) {
            Ok(fd) => fd,
            Err(e) => return e,
        };
        // SAFETY: getpid, pidfd_open and pidfd_getfd take integers.
        let got = unsafe {
            let pidfd = libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0);
            libc::syscall(libc::SYS_pidfd_getfd, pidfd as i32, fd, 0)
        };
        if got < 0 {
            crate::sys::errno()
        } else {
            0
        }
    });
    let nets = if policy.cluster_networks.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = policy
            .cluster_networks
            .iter()
            .map(|n| n.to_string())
            .collect();
        format!(" and {}", list.join(", "))
    };
    Some(match probe {
        Ok(()) => check(
            "cluster networks",
            Status::Ok,
            format!(
                "jobs' tasks reach only their job's nodes{nets} ({}); this kernel runs the \
                 connect supervisor (seccomp user notification, pidfd_getfd), and so must each \
                 compute node's (Linux 5.6 or later)",
                policy.job_network.source
            ),
        ),
        Err(e) => check(
            "cluster networks",
            Status::Degraded,
            format!(
                "slurm_job_network = \"cluster\" ({}), but this kernel cannot run the connect \
                 supervisor ({}): a job's task on such a node ends with status 125, never \
                 unrestricted",
                policy.job_network.source,
                crate::sys::errno_text(e)
            ),
        ),
    })
}

fn slurm_policy() -> Option<crate::config::spec::SlurmPolicy> {
    use crate::config::{load, resolve, Request};
    let mut facts = crate::host::facts().ok()?;
    // Any project will do: [slurm] does not depend on it.
    facts.cwd = "/nonexistent-jail-doctor-project".into();
    facts.git_root = None;
    let dirs = load::dirs(&facts.user.home, |v| std::env::var_os(v)).ok()?;
    let cat = load::load(&dirs, None).ok()?;
    let req = Request {
        profile: Some("default".into()),
        command: vec!["true".into()],
        ..Request::default()
    };
    resolve(&req, &facts, &cat).ok().map(|s| s.slurm)
}

/// Runs `f` in a forked child and returns its exit code (0: success, else
/// an errno), or the fork's errno. The doctor is single-threaded, so the
/// child may do anything; the probes use raw syscalls regardless.
fn in_child(f: impl FnOnce() -> i32) -> Result<(), i32> {
    // SAFETY: fork in a single-threaded process; the child only runs `f`
    // and _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(crate::sys::errno());
    }
    if pid == 0 {
        let code = f();
        // SAFETY: leave without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child into a local int.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
        (true, 0) => Ok(()),
        (true, e) => Err(e),
        _ => Err(libc::EINTR),
    }
}

fn errno() -> i32 {
    crate::sys::errno()
}

/// In a child: a new user namespace mapping us to ourselves.
fn enter_userns(uid: u32, gid: u32) -> i32 {
    // SAFETY: unshare with flags only.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        return errno();
    }
    let write = |path: &std::ffi::CStr, data: &[u8]| -> i32 {
        // SAFETY: open/write/close on a C string and a byte slice.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return errno();
            }
            let n = libc::write(fd, data.as_ptr().cast(), data.len());
            let e = errno();
            libc::close(fd);
            if n < 0 {
                return e;
            }
        }
        0
    };
    let e = write(c"/proc/self/uid_map", format!("{uid} {uid} 1\n").as_bytes());
    if e != 0 {
        return e;
    }
    let e = write(c"/proc/self/setgroups", b"deny");
    if e != 0 {
        return e;
    }
    write(c"/proc/self/gid_map", format!("{gid} {gid} 1\n").as_bytes())
}

fn errtext(e: i32) -> String {
    diagnose::errno_text(e)
}

fn userns_checks(out: &mut Vec<Check>) -> bool {
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let userns = in_child(|| enter_userns(uid, gid));
    match userns {
        Ok(()) => out.push(check(
            "user namespaces",
            Status::Ok,
            "unprivileged, your uid maps to itself",
        )),
        Err(e) => {
            let why = diagnose::userns_blocker().unwrap_or_else(|| match e {
                libc::EPERM => format!(
                    "{}: refused (inside a container, a jail, or under a seccomp profile that forbids namespaces?)",
                    errtext(e)
                ),
                _ => errtext(e),
            });
            out.push(check("user namespaces", Status::Missing, why));
            return false;
        }
    }
    let kinds: [(&'static str, libc::c_int, bool); 6] = [
        ("mount namespace", libc::CLONE_NEWNS, true),
        ("pid namespace", libc::CLONE_NEWPID, true),
        ("network namespace", libc::CLONE_NEWNET, true),
        ("ipc namespace", libc::CLONE_NEWIPC, true),
        ("uts namespace", libc::CLONE_NEWUTS, true),
        ("cgroup namespace", libc::CLONE_NEWCGROUP, false),
    ];
    let mut ok = true;
    for (name, flag, needed) in kinds {
        let r = in_child(|| {
            let e = enter_userns(uid, gid);
            if e != 0 {
                return e;
            }
            // SAFETY: unshare with flags only.
            if unsafe { libc::unshare(flag) } != 0 {
                return errno();
            }
            0
        });
        out.push(match r {
            Ok(()) => check(name, Status::Ok, ""),
            Err(e) if needed => {
                ok = false;
                check(name, Status::Missing, errtext(e))
            }
            Err(e) => check(
                name,
                Status::Degraded,
                format!("{}: the jail shares the host's cgroup view", errtext(e)),
            ),
        });
    }
    ok
}

/// A fresh /proc in new user, mount and pid namespaces, as the jail does.
fn proc_check(uid: u32, gid: u32) -> Check {
    let r = in_child(|| {
        let e = enter_userns(uid, gid);
        if e != 0 {
            return e;
        }
        // SAFETY: unshare, mount and fork with constant arguments; the
        // mounts happen in a private mount namespace that dies with us.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWPID) != 0 {
                return errno();
            }
            if libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return errno();
            }
            // The new pid namespace applies to children.
            let pid = libc::fork();
            if pid < 0 {
                return errno();
            }
            if pid == 0 {
                let rc = libc::mount(
                    c"proc".as_ptr(),
                    c"/proc".as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                );
                libc::_exit(if rc == 0 { 0 } else { errno() });
            }
            let mut st = 0;
            libc::waitpid(pid, &mut st, 0);
            if libc::WIFEXITED(st) {
                libc::WEXITSTATUS(st)
            } else {
                libc::EINTR
            }
        }
    });
    match r {
        Ok(()) => check(
            "/proc mount",
            Status::Ok,
            "a fresh /proc for the jail's pids",
        ),
        Err(e) => check(
            "/proc mount",
            Status::Missing,
            format!(
                "{}: the kernel refused a fresh /proc (inside a container with a masked /proc?)",
                errtext(e)
            ),
        ),
    }
}

fn unix_socket_check() -> Check {
    let (ok, text) = ruleset::unix_socket_protection(ruleset::probe_abi());
    check(
        "host unix sockets",
        if ok { Status::Ok } else { Status::Info },
        text,
    )
}

/// Review mode: an overlay of a directory with its upper directory in
/// jail's state directory (userxattr, as `jail --review` mounts it), and a
/// deletion in it (a whiteout), in a child's own namespaces. The probe's
/// directories are removed again.
fn review_check(uid: u32, gid: u32) -> Check {
    use std::os::unix::ffi::OsStrExt;
    let feature = "review mode (overlay)";
    let state = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .ok_or_else(|| "no HOME".to_string())
        .and_then(|h| {
            crate::config::load::dirs(&h, |v| std::env::var_os(v))
                .map(|d| d.state)
                .map_err(|e| e.to_string())
        });
    let state = match state {
        Ok(s) => s,
        Err(e) => return check(feature, Status::Info, format!("not tried: {e}")),
    };
    let base = state.join(format!("doctor-{}", std::process::id()));
    let made = ["lower", "upper", "work", "merged"]
        .iter()
        .try_for_each(|d| {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(base.join(d))
        })
        .and_then(|()| std::fs::write(base.join("lower/f"), b"x"));
    if let Err(e) = made {
        let _ = std::fs::remove_dir_all(&base);
        return check(
            feature,
            Status::Info,
            format!("unavailable: cannot write {}: {e}", state.display()),
        );
    }
    let c = |p: &std::path::Path| std::ffi::CString::new(p.as_os_str().as_bytes()).ok();
    let (merged, victim, data) = (
        c(&base.join("merged")),
        c(&base.join("merged/f")),
        std::ffi::CString::new(format!(
            "lowerdir={},upperdir={},workdir={},userxattr",
            base.join("lower").display(),
            base.join("upper").display(),
            base.join("work").display()
        ))
        .ok(),
    );
    let r = match (merged, victim, data) {
        (Some(merged), Some(victim), Some(data)) => in_child(|| {
            let e = enter_userns(uid, gid);
            if e != 0 {
                return e;
            }
            // SAFETY: unshare, mount and unlink on prepared C strings; the
            // mount lives in this child's private mount namespace.
            unsafe {
                if libc::unshare(libc::CLONE_NEWNS) != 0 {
                    return errno();
                }
                if libc::mount(
                    c"overlay".as_ptr(),
                    merged.as_ptr(),
                    c"overlay".as_ptr(),
                    0,
                    data.as_ptr().cast(),
                ) != 0
                {
                    return errno();
                }
                if libc::unlink(victim.as_ptr()) != 0 {
                    return errno();
                }
            }
            0
        }),
        _ => Err(libc::EINVAL),
    };
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(
            base.join("work/work"),
            std::fs::Permissions::from_mode(0o700),
        );
    }
    let _ = std::fs::remove_dir_all(&base);
    match r {
        Ok(()) => check(
            feature,
            Status::Ok,
            format!(
                "an overlay of the project with its changes in {}",
                state.display()
            ),
        ),
        Err(e) => check(
            feature,
            Status::Info,
            format!(
                "unavailable ({}): overlayfs refuses an upper directory in {} (NFS?); \
                 set XDG_STATE_HOME to a local disk for --review",
                errtext(e),
                state.display()
            ),
        ),
    }
}

fn landlock_check() -> Check {
    let abi = ruleset::probe_abi();
    let missing = ruleset::missing(abi);
    if abi <= 0 {
        return check("Landlock", Status::Degraded, missing.join("; "));
    }
    if let Err(e) = in_child(landlock_enforces) {
        return check(
            "Landlock",
            Status::Degraded,
            format!(
                "ABI {abi}, but a test ruleset did not enforce ({}): no filesystem second wall",
                if e == libc::EEXIST {
                    "a denied directory could be listed".to_string()
                } else {
                    errtext(e)
                }
            ),
        );
    }
    if missing.is_empty() {
        check(
            "Landlock",
            Status::Ok,
            format!(
                "ABI {abi}, enforcement verified: filesystem rules, abstract socket and signal scoping"
            ),
        )
    } else {
        check(
            "Landlock",
            Status::Degraded,
            format!("ABI {abi}: {}", missing.join("; ")),
        )
    }
}

/// In a child: a ruleset that handles directory listing with no rule must
/// make listing / fail with EACCES. 0 when it does.
fn landlock_enforces() -> i32 {
    let handled: [u64; 3] = [1 << 3, 0, 0]; // LANDLOCK_ACCESS_FS_READ_DIR
                                            // SAFETY: raw Landlock syscalls on a local attribute; prctl and open
                                            // with constant arguments.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_landlock_create_ruleset,
            handled.as_ptr(),
            8usize,
            0u32,
        ) as libc::c_int;
        if fd < 0 {
            return errno();
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return errno();
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) != 0 {
            return errno();
        }
        let d = libc::open(
            c"/".as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        );
        if d >= 0 {
            return libc::EEXIST; // opened: not enforced
        }
        if errno() == libc::EACCES {
            0
        } else {
            errno()
        }
    }
}

/// Installs the jail's real filter in a child and checks that it denies
/// io_uring_setup with EPERM while getpid still works.
fn seccomp_check() -> Check {
    let prog = match seccomp::compile(seccomp::POLICY) {
        Ok(p) => p,
        Err(e) => return check("seccomp", Status::Missing, e.to_string()),
    };
    let r = in_child(|| {
        // SAFETY: prctl and raw syscalls with integer arguments.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return errno();
            }
        }
        if let Err(e) = seccomp::install(&prog) {
            return e;
        }
        // SAFETY: io_uring_setup with a null params pointer: the filter
        // answers before the kernel would read it.
        let rc = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1, 0usize) };
        if rc >= 0 || errno() != libc::EPERM {
            return 200;
        }
        0
    });
    match r {
        Ok(()) => check(
            "seccomp",
            Status::Ok,
            format!("filter of {} instructions installs and denies", prog.len()),
        ),
        Err(200) => check(
            "seccomp",
            Status::Missing,
            "the filter installs but does not deny",
        ),
        Err(e) => check("seccomp", Status::Missing, errtext(e)),
    }
}

/// What `--net allowlist` needs: pid 1 must be able to route every
/// address to `lo` and bind port 53 in a new network namespace (probed
/// for real, in a child), the helper needs a DNS server to ask, and it
/// confines itself with what the kernel has.
fn network_check() -> Check {
    let probe = in_child(|| {
        // SAFETY: unshare with flags only, in the forked child.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } != 0 {
            return errno();
        }
        let steps = crate::pid1::net::probe_steps();
        match crate::pid1::exec::loopback_up().and_then(|_| steps()) {
            Ok(()) => 0,
            Err(e) => e,
        }
    });
    let v6 = in_child(|| {
        // SAFETY: as above.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } != 0 {
            return errno();
        }
        match crate::pid1::net::probe_v6() {
            Ok(()) => 0,
            Err(e) => e,
        }
    })
    .is_ok();
    if let Err(e) = probe {
        return check(
            "network allowlist",
            Status::Degraded,
            format!(
                "a jail's network namespace cannot be set up for the helper ({}): `allowlist` profiles fail; `--net none` works",
                errtext(e)
            ),
        );
    }
    let upstream = std::fs::read_to_string("/etc/resolv.conf")
        .ok()
        .as_deref()
        .and_then(crate::outside::net::first_nameserver);
    let abi = ruleset::probe_abi();
    let confine = match abi {
        0 => "seccomp allow-list (no Landlock on this kernel)".to_string(),
        1..=3 => format!("seccomp allow-list, Landlock ABI {abi} (no files; TCP port rules need ABI 4)"),
        4 | 5 => format!("seccomp allow-list, Landlock ABI {abi} (no files, TCP connect to relayed ports only)"),
        _ => format!("seccomp allow-list, Landlock ABI {abi} (no files, TCP connect to relayed ports only, scoped)"),
    };
    let proxy = if std::env::var_os("HTTPS_PROXY")
        .or(std::env::var_os("https_proxy"))
        .is_some()
    {
        "; HTTPS_PROXY is set: the helper connects directly unless the configuration has `proxy = \"env\"`"
    } else {
        ""
    };
    let ipv6 = if v6 {
        "IPv4 and IPv6"
    } else {
        "IPv4 only (no IPv6 in this kernel)"
    };
    match upstream {
        Some(u) => check(
            "network allowlist",
            Status::Ok,
            format!("the helper works here: {ipv6}; DNS asked at {u} (/etc/resolv.conf); {confine}{proxy}"),
        ),
        None => check(
            "network allowlist",
            Status::Degraded,
            format!(
                "/etc/resolv.conf names no DNS server: `allowlist` needs --dns-upstream IP:PORT; {ipv6}; {confine}{proxy}"
            ),
        ),
    }
}

fn host_checks(out: &mut Vec<Check>) {
    // TUN: not needed by jail's network design (kernel TCP on lo), listed
    // for tools that expect it.
    let tun = Path::new("/dev/net/tun");
    out.push(if !tun.exists() {
        check("TUN (/dev/net/tun)", Status::Info, "absent")
    } else {
        // SAFETY: access() on a constant C string.
        let rw = unsafe { libc::access(c"/dev/net/tun".as_ptr(), libc::R_OK | libc::W_OK) } == 0;
        check(
            "TUN (/dev/net/tun)",
            Status::Info,
            if rw {
                "present, usable by you"
            } else {
                "present, not readable/writable by you (distros ship it 0666)"
            },
        )
    });

    // Resource limits: a delegated cgroup v2 subtree, else rlimits.
    let (_, detail) = crate::launcher::limits::doctor_line();
    out.push(check("resource limits", Status::Info, detail));

    out.push(network_check());

    out.push(slurm_check());
    if let Some(c) = cluster_check() {
        out.push(c);
    }

    let mut gpus: Vec<String> = std::fs::read_dir("/dev")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("nvidia") || n == "kfd" || n == "dri")
        .map(|n| format!("/dev/{n}"))
        .collect();
    gpus.sort();
    out.push(if gpus.is_empty() {
        check(
            "GPU devices",
            Status::Info,
            "none (--gpu would add nothing)",
        )
    } else {
        check(
            "GPU devices",
            Status::Info,
            format!("{} (with --gpu)", gpus.join(" ")),
        )
    });

    out.push(
        match read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() {
            Some("1") => check(
                "AppArmor userns restriction",
                Status::Info,
                "kernel.apparmor_restrict_unprivileged_userns=1: jail needs its AppArmor profile (contrib/apparmor/jail)",
            ),
            Some(v) => check(
                "AppArmor userns restriction",
                Status::Info,
                format!("kernel.apparmor_restrict_unprivileged_userns={v}"),
            ),
            None => check(
                "AppArmor userns restriction",
                Status::Info,
                "sysctl absent (no AppArmor restriction)",
            ),
        },
    );

    out.push(match read_sysctl("/proc/sys/user/max_user_namespaces") {
        Some(v) if v == "0" => check(
            "max_user_namespaces",
            Status::Missing,
            "user.max_user_namespaces=0: user namespaces are disabled",
        ),
        Some(v) => check(
            "max_user_namespaces",
            Status::Info,
            format!("user.max_user_namespaces={v}"),
        ),
        None => check("max_user_namespaces", Status::Info, "sysctl absent"),
    });

    if let Some(c) = bare_repository_check() {
        out.push(c);
    }
    out.push(unfinished_check());

    if let Some(v) = read_sysctl("/proc/sys/dev/tty/legacy_tiocsti") {
        out.push(check(
            "TIOCSTI (kernel)",
            Status::Info,
            format!("dev.tty.legacy_tiocsti={v}; jail's seccomp filter refuses it either way"),
        ));
    }
}

/// Whether the host's git would run a bare repository it finds by
/// itself (`safe.bareRepository` other than `explicit`): a bare
/// repository planted in a project (HEAD, objects/, refs/ and a config
/// with core.fsmonitor) runs its config at `cd DIR && git status`. jail's
/// exit check moves such configs away; `explicit` closes the class.
fn bare_repository_check() -> Option<Check> {
    on_path("git")?;
    // From /, so no repository's own config is read; bounded.
    let mut child = std::process::Command::new("git")
        .args(["config", "--get", "safe.bareRepository"])
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let start = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if start.elapsed() < std::time::Duration::from_secs(5) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut value = String::new();
    if let Some(mut o) = child.stdout.take() {
        use std::io::Read;
        let _ = o.read_to_string(&mut value);
    }
    let value = value.trim().to_ascii_lowercase();
    Some(if value == "explicit" {
        check(
            "git bare repositories",
            Status::Ok,
            "safe.bareRepository = explicit: git never runs a bare repository it merely finds",
        )
    } else {
        check(
            "git bare repositories",
            Status::Info,
            format!(
                "safe.bareRepository = {}: git uses a bare repository found in any directory, \
                 so one planted in a project runs its config at `git status` there (jail's exit \
                 check moves such configs away); suggested: \
                 git config --global safe.bareRepository explicit",
                if value.is_empty() {
                    "all (default)"
                } else {
                    &value
                }
            ),
        )
    })
}

/// Exit checks of earlier jails that did not finish (jail or its guard
/// killed): the next jail started in that project finishes each.
fn unfinished_check() -> Check {
    let state = crate::host::facts()
        .ok()
        .and_then(|f| crate::config::load::dirs(&f.user.home, |v| std::env::var_os(v)).ok())
        .map(|d| d.state);
    let projects = state
        .map(|s| crate::outside::guard::unfinished_projects(&s))
        .unwrap_or_default();
    if projects.is_empty() {
        check(
            "exit checks",
            Status::Ok,
            "every earlier exit check finished",
        )
    } else {
        let names: Vec<String> = projects
            .iter()
            .map(|p| crate::display::safe(&p.display().to_string()).into_owned())
            .collect();
        check(
            "exit checks",
            Status::Degraded,
            format!(
                "did not finish (jail or its guard was killed) in {}: what the jail created \
                 there is not checked yet; run any jail in that project to finish it, and do \
                 not run git there before",
                names.join(", ")
            ),
        )
    }
}

/// Every probe, in table order.
pub fn checks() -> Vec<Check> {
    let mut out = Vec::new();
    // SAFETY: getuid/getgid cannot fail.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if userns_checks(&mut out) {
        out.push(proc_check(uid, gid));
        out.push(review_check(uid, gid));
    } else {
        out.push(check(
            "/proc mount",
            Status::Missing,
            "not tried: no user namespace",
        ));
    }
    out.push(landlock_check());
    out.push(unix_socket_check());
    out.push(seccomp_check());
    host_checks(&mut out);
    out.push(hooks_check());
    out
}

/// The git hooks installed in this directory's repository: what runs on
/// the host at the next commit, and whether jail can protect it.
fn hooks_check() -> Check {
    use crate::plan::hostrun;
    let Ok(facts) = crate::host::facts() else {
        return check("git hooks", Status::Info, "no project here");
    };
    let root = facts.git_root.clone().unwrap_or_else(|| facts.cwd.clone());
    let hooks = hostrun::installed(&root, &facts.user.home);
    if hooks.is_empty() {
        return check(
            "git hooks",
            Status::Info,
            format!("none installed in {}", root.display()),
        );
    }
    let list: Vec<String> = hooks.iter().map(hostrun::describe).collect();
    let detail = format!("in {}: {}", root.display(), list.join("; "));
    if hooks.iter().any(|h| h.project_code.is_some()) {
        check(
            "git hooks",
            Status::Degraded,
            format!("{detail}; {}", hostrun::WAY_OUT),
        )
    } else {
        check("git hooks", Status::Info, detail)
    }
}

pub fn render(checks: &[Check]) -> String {
    let mut s = String::new();
    let kernel = read_sysctl("/proc/sys/kernel/osrelease").unwrap_or_else(|| "?".into());
    let _ = writeln!(
        s,
        "jail doctor: Linux {kernel} ({})\n",
        std::env::consts::ARCH
    );
    let w = checks.iter().map(|c| c.feature.len()).max().unwrap_or(0);
    for c in checks {
        let _ = writeln!(
            s,
            "  {:<w$}  {:<8}  {}",
            c.feature,
            c.status.label(),
            c.detail
        );
    }
    let missing: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == Status::Missing)
        .map(|c| c.feature)
        .collect();
    let degraded: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == Status::Degraded)
        .map(|c| c.feature)
        .collect();
    let _ = writeln!(s);
    if !missing.is_empty() {
        let _ = writeln!(
            s,
            "verdict: the jail cannot run safely here (missing: {})",
            missing.join(", ")
        );
    } else if !degraded.is_empty() {
        let _ = writeln!(
            s,
            "verdict: the jail runs, with less protection (degraded: {})",
            degraded.join(", ")
        );
    } else {
        let _ = writeln!(s, "verdict: the jail runs with every protection");
    }
    s
}

/// `jail doctor`: prints the table; 1 when the jail cannot run safely.
pub fn run() -> i32 {
    let c = checks();
    print!("{}", render(&c));
    if c.iter().any(|c| c.status == Status::Missing) {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_follows_the_worst_status() {
        let ok = check("seccomp", Status::Ok, "");
        let info = check("Slurm", Status::Info, "no sbatch");
        let degraded = check("Landlock", Status::Degraded, "ABI 3");
        let missing = check("user namespaces", Status::Missing, "disabled");
        let r = render(&[ok.clone(), info.clone()]);
        assert!(
            r.contains("verdict: the jail runs with every protection"),
            "{r}"
        );
        let r = render(&[ok.clone(), degraded.clone()]);
        assert!(r.contains("degraded: Landlock"), "{r}");
        let r = render(&[ok, degraded, missing, info]);
        assert!(
            r.contains("cannot run safely here (missing: user namespaces)"),
            "{r}"
        );
        assert!(r.contains("  user namespaces  MISSING   disabled"), "{r}");
    }
}
