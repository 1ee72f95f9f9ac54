//! The helper's own confinement, applied once it has read everything it
//! needs (its configuration, resolv.conf, the host's addresses) and
//! before it receives the jail's sockets: no_new_privs; Landlock with
//! every filesystem right handled and none granted but reading files in
//! the directories of resolv.conf when it is followed (no other file can
//! be opened, none written), no TCP bind, TCP connect only to the ports it relays to, and
//! abstract-socket and signal scoping; then a seccomp allow-list of the
//! syscalls a socket relay makes (anything else: EPERM). A jailed program
//! that found a bug in the relay would hold a process that can do little
//! more than the relay already does.
//!
//! Unlike the jail's deny-list filter (`harden::seccomp`), this is an
//! allow-list built with seccompiler: a syscall with the x32 bit set has
//! another number, matches no rule and is refused.

use std::collections::BTreeMap;

use landlock::{
    Access, AccessFs, AccessNet, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// What confinement the kernel gave the helper (for `-v` and doctor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confined {
    pub landlock: bool,
    pub seccomp: bool,
}

/// Syscalls the relay makes once confined (std's allocator, stderr, the
/// epoll loop, sockets, splice, pipes, randomness, exit and panics).
fn allowed() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_writev,
        libc::SYS_close,
        libc::SYS_epoll_pwait,
        libc::SYS_epoll_ctl,
        libc::SYS_accept4,
        libc::SYS_connect,
        libc::SYS_setsockopt,
        libc::SYS_getsockopt,
        libc::SYS_getsockname,
        libc::SYS_getpeername,
        libc::SYS_sendmsg,
        libc::SYS_recvmsg,
        libc::SYS_sendto,
        libc::SYS_recvfrom,
        libc::SYS_shutdown,
        libc::SYS_splice,
        libc::SYS_pipe2,
        libc::SYS_fcntl,
        libc::SYS_getrandom,
        libc::SYS_mmap,
        libc::SYS_munmap,
        libc::SYS_mremap,
        libc::SYS_mprotect,
        libc::SYS_brk,
        libc::SYS_madvise,
        libc::SYS_futex,
        libc::SYS_rt_sigreturn,
        libc::SYS_rt_sigprocmask,
        libc::SYS_sigaltstack,
        libc::SYS_clock_gettime,
        libc::SYS_gettid,
        libc::SYS_getpid,
        libc::SYS_tgkill,
        libc::SYS_sched_yield,
        libc::SYS_restart_syscall,
        libc::SYS_exit,
        libc::SYS_exit_group,
    ];
    #[cfg(target_arch = "x86_64")]
    v.push(libc::SYS_epoll_wait);
    v
}

/// `files`: the helper reads a file again while it runs (resolv.conf):
/// opening read-only and stat-ing are allowed too (Landlock says where).
fn seccomp_program(files: bool) -> Result<BpfProgram, String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        allowed().into_iter().map(|n| (n, vec![])).collect();
    // New sockets: IPv4 and IPv6 only (no unix, netlink, packet, vsock).
    let domain = |d: libc::c_int| {
        SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, d as u64)
            .and_then(|c| SeccompRule::new(vec![c]))
            .map_err(|e| e.to_string())
    };
    rules.insert(
        libc::SYS_socket,
        vec![domain(libc::AF_INET)?, domain(libc::AF_INET6)?],
    );
    // Whether the terminal is a full-screen program's (report::Notices):
    // TCGETS, on any fd, reads terminal settings and nothing else.
    let tcgets = SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, libc::TCGETS)
        .and_then(|c| SeccompRule::new(vec![c]))
        .map_err(|e| e.to_string())?;
    rules.insert(libc::SYS_ioctl, vec![tcgets]);
    if files {
        let read_only = SeccompCondition::new(
            2,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(libc::O_ACCMODE as u64),
            libc::O_RDONLY as u64,
        )
        .and_then(|c| SeccompRule::new(vec![c]))
        .map_err(|e| e.to_string())?;
        rules.insert(libc::SYS_openat, vec![read_only]);
        for n in [
            libc::SYS_statx,
            libc::SYS_newfstatat,
            libc::SYS_fstat,
            libc::SYS_lseek,
        ] {
            rules.insert(n, vec![]);
        }
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )
    .map_err(|e| e.to_string())?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())
}

/// Confines the calling process (single-threaded). `ports`: the TCP
/// ports it may connect to; `read`: directories whose files it may read
/// (where resolv.conf lives). Errors name what could not be applied; the
/// caller says so and goes on (never silently).
pub fn apply(ports: &[u16], read: &[std::path::PathBuf]) -> Result<Confined, String> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
    }
    let abi = ABI::V6;
    let status =
        Ruleset::default()
            .handle_access(AccessFs::from_all(abi))
            .and_then(|r| r.handle_access(AccessNet::from_all(abi)))
            .and_then(|r| r.scope(Scope::from_all(abi)))
            .and_then(|r| r.create())
            .and_then(|r| {
                r.add_rules(ports.iter().map(|&p| {
                    Ok::<_, landlock::RulesetError>(NetPort::new(p, AccessNet::ConnectTcp))
                }))
            })
            .and_then(|r| {
                // A directory that cannot be opened gets no rule: the file
                // is then not followed, which the helper survives.
                r.add_rules(read.iter().filter_map(|d| PathFd::new(d).ok()).map(|fd| {
                    Ok::<_, landlock::RulesetError>(PathBeneath::new(fd, AccessFs::ReadFile))
                }))
            })
            .and_then(|r| r.restrict_self())
            .map_err(|e| format!("Landlock: {e}"))?;
    let landlock = status.ruleset != RulesetStatus::NotEnforced;
    let prog = seccomp_program(!read.is_empty())?;
    seccompiler::apply_filter(&prog).map_err(|e| format!("seccomp: {e}"))?;
    Ok(Confined {
        landlock,
        seccomp: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles_for_this_architecture() {
        let p = seccomp_program(false).unwrap();
        assert!(seccomp_program(true).unwrap().len() > p.len());
        assert!(p.len() > allowed().len());
    }

    /// In a child (the filter is for life): a confined process relays on
    /// sockets but opens no file and creates no unix socket.
    /// The one read it may keep: files in the directories it was given.
    #[test]
    fn a_followed_directory_stays_readable_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("jail-confine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("resolv.conf"), "nameserver 198.51.100.2\n").unwrap();
        let pid = crate::sys::fork().unwrap();
        if pid == 0 {
            let code = (|| match apply(&[53], std::slice::from_ref(&dir)) {
                Ok(c) if !c.landlock => 0, // nothing to show on this kernel
                Ok(_) => {
                    if std::fs::read_to_string(dir.join("resolv.conf")).is_err() {
                        return 11;
                    }
                    if std::fs::read_to_string("/etc/hostname").is_ok() {
                        return 12;
                    }
                    if std::fs::write(dir.join("x"), "x").is_ok() {
                        return 13;
                    }
                    0
                }
                Err(_) => 10,
            })();
            crate::sys::exit_now(code);
        }
        let code = crate::reap::wait_for(pid, false);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(code, 0);
    }

    #[test]
    fn a_confined_process_opens_no_file_and_no_unix_socket() {
        let pid = crate::sys::fork().unwrap();
        if pid == 0 {
            let code = (|| {
                if apply(&[443], &[]).is_err() {
                    return 10;
                }
                // SAFETY: open on a constant C string.
                if unsafe { libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY) } >= 0 {
                    return 11;
                }
                if crate::sys::net::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0).is_ok() {
                    return 12;
                }
                if crate::sys::net::socket(libc::AF_INET, libc::SOCK_STREAM, 0).is_err() {
                    return 13;
                }
                if crate::sys::pipe().is_err() {
                    return 14;
                }
                0
            })();
            crate::sys::exit_now(code);
        }
        assert_eq!(crate::reap::wait_for(pid, false), 0);
    }
}
