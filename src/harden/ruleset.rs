//! Landlock: a second wall that mirrors the mount policy. `prepare` (before
//! fork) probes the ABI, works out the handled rights and one rule per
//! mount of the plan; `apply` (in the jail's pid 1, after pivot_root,
//! because the rule paths only exist there) creates the ruleset, opens each
//! path O_PATH, adds the rules and restricts itself. The child side uses
//! raw syscalls on prepared data (the `landlock` crate allocates); the
//! crate supplies the per-ABI access sets.
//!
//! Mirror:
//! - read-only binds and read-only tmpfs (hole parents): read, list, execute;
//! - read-write binds, the home tmpfs, /tmp, /var/tmp, /dev/shm: everything
//!   but creating device nodes; devpts and device nodes: read, write, ioctl;
//! - /proc: read, and write as the kernel permits (thread names: CUDA);
//!   /dev and /run (tmpfs): list/read only; /: list only;
//! - everything else: denied.
//!
//! Cost (docs/hardening.md has the numbers): Landlock checks opens only,
//! ~320 ns each plus ~60-70 ns per directory level between the file and
//! the nearest rule granting every requested right. One rule per mount
//! on purpose: extra "shortcut" rules deeper in read-only trees (same
//! rights, so no new access) save one level per open but cost ~10 µs
//! each at jail start, a net loss for all but open-bound loops; the
//! list-only rule on `/` does not lengthen walks (they stop at the first
//! rule granting everything).
//!
//! Network: TCP port rules (ABI 4) are not used. Landlock matches ports,
//! not addresses, so it cannot say "loopback only"; in `none` mode the
//! jail's own network namespace (only `lo`) already is that wall, and port
//! rules would only break local test servers. Scoping (ABI 6) blocks
//! abstract unix sockets and signals that cross the jail boundary (the
//! only way out for them with `--net host`, or towards a process that
//! joined the jail's namespaces from outside).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ::landlock::{Access, AccessFs, ABI};

use crate::plan::{Plan, Step};

const CREATE_RULESET_VERSION: libc::c_uint = 1;
const RULE_PATH_BENEATH: libc::c_int = 1;
pub const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1;
pub const SCOPE_SIGNAL: u64 = 2;

/// The newest ABI whose features jail uses.
pub const WANTED_ABI: i32 = 9;

/// LANDLOCK_ACCESS_FS_RESOLVE_UNIX (ABI 9, Linux 7.1): connecting to a
/// pathname unix socket. Not in the `landlock` crate yet.
pub const RESOLVE_UNIX: u64 = 1 << 16;
pub const RESOLVE_UNIX_ABI: i32 = 9;

/// What holds for host unix sockets on this kernel, in one line (doctor
/// and explain).
pub fn unix_socket_protection(abi: i32) -> (bool, String) {
    if abi >= RESOLVE_UNIX_ABI {
        (
            true,
            "a host's pathname unix sockets are unreachable unless named with --ro/--rw \
             (Landlock ABI 9); abstract ones are scoped too"
                .into(),
        )
    } else {
        (
            false,
            format!(
                "Landlock ABI {} cannot stop connect() to a host's pathname unix socket in a \
                 visible directory (that needs ABI 9, Linux 7.1): jail shows no /run, /tmp or \
                 shared directory, and refuses those as the project, but a host daemon's \
                 socket inside the project or a --rw path stays reachable",
                abi.max(0)
            ),
        )
    }
}

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// One rule: a jail path and the rights beneath it.
#[derive(Debug, Clone)]
pub struct Rule {
    pub path: CString,
    pub access: u64,
}

#[derive(Debug, Default)]
pub struct Prepared {
    /// 0: Landlock unavailable (nothing is applied).
    pub abi: i32,
    pub handled_fs: u64,
    pub scoped: u64,
    pub rules: Vec<Rule>,
    /// Rights on the files behind stdin/stdout/stderr (terminal or regular
    /// file), so `echo x > /dev/stderr` reopens what the program already
    /// holds even though it lives outside the jail's view.
    pub stdio: u64,
}

/// The kernel's Landlock ABI version, or the negative errno (ENOSYS: not
/// built, EOPNOTSUPP: disabled at boot).
pub fn probe_abi() -> i32 {
    // SAFETY: the version query takes no attribute pointer.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    if v < 0 {
        -crate::sys::errno()
    } else {
        v as i32
    }
}

fn abi_enum(v: i32) -> ABI {
    // The crate's newest ABI is 6; later ABIs add rights handled here.
    match v {
        i32::MIN..=0 => ABI::Unsupported,
        1 => ABI::V1,
        2 => ABI::V2,
        3 => ABI::V3,
        4 => ABI::V4,
        5 => ABI::V5,
        _ => ABI::V6,
    }
}

/// What this kernel's Landlock lacks compared with what jail uses, one
/// line each (empty: nothing missing).
pub fn missing(abi: i32) -> Vec<String> {
    let mut m = Vec::new();
    if abi <= 0 {
        let why = match -abi {
            libc::EOPNOTSUPP => "disabled at boot (add `landlock` to the lsm= kernel parameter)",
            libc::ENOSYS => {
                "not built into this kernel (Linux 5.13+ with CONFIG_SECURITY_LANDLOCK)"
            }
            _ => "unavailable",
        };
        m.push(format!(
            "Landlock {why}: no filesystem second wall, no socket/signal scoping; \
             the jail rests on mounts, namespaces and seccomp"
        ));
        return m;
    }
    if abi < 2 {
        m.push("Landlock ABI 1: renaming or linking files across directories fails (EXDEV)".into());
    }
    if abi < 3 {
        m.push(
            "Landlock ABI < 3: truncating files outside the writable paths is not covered".into(),
        );
    }
    if abi < 5 {
        m.push("Landlock ABI < 5: device ioctls are not covered".into());
    }
    if abi < 6 {
        m.push(
            "Landlock ABI < 6: abstract unix sockets and signals are not scoped to the jail \
             (the network and pid namespaces still separate them, except with --net host)"
                .into(),
        );
    }
    m
}

fn bits(a: ::landlock::BitFlags<AccessFs>) -> u64 {
    a.bits()
}

pub fn prepare(plan: &Plan, abi: i32) -> Result<Prepared, std::ffi::NulError> {
    if abi <= 0 {
        return Ok(Prepared {
            abi: 0,
            ..Default::default()
        });
    }
    let all = bits(AccessFs::from_all(abi_enum(abi)));
    // Pathname unix sockets: handled where the kernel can, granted only on
    // sockets the user named (a bind whose source is a socket); sockets
    // the jail's own programs create are always reachable to them.
    let resolve_unix = if abi >= RESOLVE_UNIX_ABI {
        RESOLVE_UNIX
    } else {
        0
    };
    let file_rights = bits(AccessFs::from_file(abi_enum(abi)));
    let read = bits(AccessFs::ReadFile | AccessFs::ReadDir);
    // Read-only also grants TRUNCATE and IOCTL_DEV: a read-only mount
    // refuses truncation itself (EROFS) and allows device ioctls anyway,
    // so the mirror stays exact; and Landlock stops its path walk at the
    // first rule that grants every right an open asks for (these two are
    // always asked), instead of walking up to / on every open: measured
    // +25% on an open-heavy loop without them, ~0 with them.
    let ro = read | bits(AccessFs::Execute | AccessFs::Truncate | AccessFs::IoctlDev);
    let rw = all & !bits(AccessFs::MakeChar | AccessFs::MakeBlock);
    let dev = (read | bits(AccessFs::WriteFile | AccessFs::IoctlDev | AccessFs::Truncate)) & all;
    let list = bits(AccessFs::ReadDir.into());

    let remount_ro: Vec<&Path> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::RemountRo { dest } => Some(dest.as_path()),
            _ => None,
        })
        .collect();
    let mut rules: Vec<(PathBuf, u64, bool)> = vec![("/".into(), list, true)];
    let mut sockets: Vec<PathBuf> = Vec::new();
    for s in &plan.steps {
        match s {
            Step::Tmpfs { dest, .. } => {
                let access = if remount_ro.contains(&dest.as_path()) {
                    ro
                } else if dest == Path::new("/dev") {
                    list
                } else if dest == Path::new("/run") {
                    read
                } else {
                    rw
                };
                rules.push((dest.clone(), access, true));
            }
            Step::Bind {
                src,
                dest,
                dir,
                ro: r,
            } => {
                // Device nodes under /dev are opened, never created; a
                // Slurm step's shared /dev/shm (`Plan::share_shm`) is a
                // directory like the jail's own.
                let access = if *r {
                    ro
                } else if dest.starts_with("/dev") && dest != Path::new("/dev/shm") {
                    dev
                } else {
                    rw
                };
                let socket = resolve_unix != 0 && is_socket(src);
                rules.push((dest.clone(), access, *dir));
                if socket {
                    sockets.push(dest.clone());
                }
            }
            // The jail's own /proc: read, and write where the kernel's own
            // permissions allow it (a process naming its threads through
            // /proc/self/task/TID/comm, as CUDA's cuInit does: without it
            // CUDA fails with error 304). It shows only the jail's pid
            // namespace; the host's sysctls are not the user's to write.
            Step::Proc { dest } => rules.push((
                dest.clone(),
                read | bits(AccessFs::WriteFile | AccessFs::Truncate),
                true,
            )),
            Step::Sysfs { dest } | Step::Cgroup2 { dest } => rules.push((dest.clone(), read, true)),
            Step::Devpts { dest } => rules.push((dest.clone(), dev | list, true)),
            Step::MaskFile { dest } => rules.push((dest.clone(), ro, false)),
            Step::Whiteout { dest, .. } => rules.push((dest.clone(), ro, true)),
            Step::Overlay { dest, .. } => rules.push((dest.clone(), rw, true)),
            Step::File { dest, .. } => rules.push((dest.clone(), ro, false)),
            // The review overlay is bound like the project it replaces.
            // The scratch tmpfs is never shown; its directories are the
            // Tmpfs steps.
            Step::Symlink { .. }
            | Step::RemountRo { .. }
            | Step::ReviewOverlay { .. }
            | Step::Scratch { .. } => {}
        }
    }
    let rules = rules
        .into_iter()
        .map(|(p, access, dir)| {
            // A file may only carry file rights (else EINVAL); the kernel
            // rejects rights it does not handle.
            let mut access = if dir { access } else { access & file_rights } & all;
            if sockets.contains(&p) {
                access |= resolve_unix;
            }
            Ok(Rule {
                path: CString::new(p.as_os_str().as_bytes())?,
                access,
            })
        })
        .collect::<Result<Vec<_>, std::ffi::NulError>>()?;
    let scoped = if abi >= 6 {
        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
    } else {
        0
    };
    let stdio =
        (bits(AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev))
            & file_rights;
    Ok(Prepared {
        abi,
        handled_fs: all | resolve_unix,
        scoped,
        rules,
        stdio,
    })
}

fn is_socket(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

/// Which Landlock call failed, for the report.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    Create(i32),
    AddRule(i32),
    Restrict(i32),
}

/// Creates the ruleset and restricts the calling process. Raw syscalls on
/// prepared data only (runs in the forked child, no allocation). A rule
/// whose path cannot be opened is skipped: that only takes rights away.
pub fn apply(p: &Prepared) -> Result<(), Failure> {
    if p.abi <= 0 {
        return Ok(());
    }
    let errno = crate::sys::errno;
    let attr = RulesetAttr {
        handled_access_fs: p.handled_fs,
        handled_access_net: 0,
        scoped: p.scoped,
    };
    // Older kernels take a shorter struct: size it to the fields used.
    let size = if p.scoped != 0 {
        std::mem::size_of::<RulesetAttr>()
    } else {
        std::mem::size_of::<u64>()
    };
    // SAFETY: attr is a live landlock_ruleset_attr of at least `size` bytes.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            size,
            0u32,
        )
    } as libc::c_int;
    if fd < 0 {
        return Err(Failure::Create(errno()));
    }
    let result = (|| {
        for r in &p.rules {
            // SAFETY: opening a prepared C string; closed below.
            let pfd = unsafe { libc::open(r.path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
            if pfd < 0 {
                continue;
            }
            let rc = add_rule(fd, pfd, r.access);
            let e = errno();
            // SAFETY: closing the fd opened above.
            unsafe { libc::close(pfd) };
            if rc != 0 {
                return Err(Failure::AddRule(e));
            }
        }
        for std_fd in 0..=2 {
            // SAFETY: fstat into a zeroed local struct.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            if unsafe { libc::fstat(std_fd, &mut st) } != 0 {
                continue;
            }
            let kind = st.st_mode & libc::S_IFMT;
            if kind != libc::S_IFCHR && kind != libc::S_IFREG {
                continue; // pipes and sockets are never reopened by path
            }
            // Best effort: an fd the kernel refuses only takes rights away.
            add_rule(fd, std_fd, p.stdio);
        }
        // SAFETY: restricting ourselves with the ruleset fd; no pointers.
        if unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd, 0u32) } != 0 {
            return Err(Failure::Restrict(errno()));
        }
        Ok(())
    })();
    // SAFETY: closing the ruleset fd we created.
    unsafe { libc::close(fd) };
    result
}

/// landlock_add_rule(PATH_BENEATH) for the file or directory behind `parent_fd`.
fn add_rule(ruleset: libc::c_int, parent_fd: libc::c_int, access: u64) -> libc::c_long {
    let beneath = PathBeneathAttr {
        allowed_access: access,
        parent_fd,
    };
    // SAFETY: beneath is a live packed landlock_path_beneath_attr.
    unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset,
            RULE_PATH_BENEATH,
            &beneath as *const PathBeneathAttr,
            0u32,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            steps: vec![
                Step::Tmpfs {
                    dest: "/tmp".into(),
                    mode: 0o1777,
                },
                Step::Tmpfs {
                    dest: "/dev".into(),
                    mode: 0o755,
                },
                Step::Bind {
                    src: "/dev/null".into(),
                    dest: "/dev/null".into(),
                    dir: false,
                    ro: false,
                },
                Step::Bind {
                    src: "/usr".into(),
                    dest: "/usr".into(),
                    dir: true,
                    ro: true,
                },
                Step::Bind {
                    src: "/p".into(),
                    dest: "/p".into(),
                    dir: true,
                    ro: false,
                },
                Step::Tmpfs {
                    dest: "/p/hole".into(),
                    mode: 0o755,
                },
                Step::Proc {
                    dest: "/proc".into(),
                },
                Step::RemountRo {
                    dest: "/p/hole".into(),
                },
            ],
            protected: vec![],
            hidden: vec![],
            gitdirs: vec![],
            writable: vec![],
            kept: vec![],
            env: vec![],
        }
    }

    fn access(p: &Prepared, path: &str) -> u64 {
        p.rules
            .iter()
            .find(|r| r.path.as_bytes() == path.as_bytes())
            .map(|r| r.access)
            .unwrap_or_else(|| panic!("no rule for {path}"))
    }

    #[test]
    fn rules_mirror_the_mount_plan() {
        let p = prepare(&plan(), 6).unwrap();
        let w = bits(AccessFs::WriteFile.into());
        let x = bits(AccessFs::Execute.into());
        let r = bits(AccessFs::ReadFile.into());
        assert_eq!(access(&p, "/usr") & w, 0);
        assert_ne!(access(&p, "/usr") & x, 0);
        assert_ne!(access(&p, "/tmp") & w, 0);
        assert_ne!(access(&p, "/p") & w, 0);
        assert_eq!(access(&p, "/p/hole") & w, 0, "read-only tmpfs");
        assert_eq!(access(&p, "/dev") & (w | r), 0);
        assert_ne!(access(&p, "/proc") & w, 0, "thread names (CUDA)");
        assert_eq!(access(&p, "/proc") & x, 0);
        assert_eq!(access(&p, "/") & (w | r | x), 0);
        let null = access(&p, "/dev/null");
        assert_ne!(null & w, 0);
        assert_eq!(
            null & !bits(AccessFs::from_file(ABI::V6)),
            0,
            "file rights only"
        );
        assert_eq!(p.scoped, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL);
    }

    #[test]
    fn a_steps_shared_dev_shm_is_writable_like_the_jails_own() {
        let mut pl = plan();
        pl.steps.push(Step::Bind {
            src: "/dev/shm/jail-1000/7.0".into(),
            dest: "/dev/shm".into(),
            dir: true,
            ro: false,
        });
        let p = prepare(&pl, 6).unwrap();
        let make = bits(AccessFs::MakeReg.into());
        let dev = bits(AccessFs::MakeChar | AccessFs::MakeBlock);
        assert_ne!(access(&p, "/dev/shm") & make, 0);
        assert_eq!(access(&p, "/dev/shm") & dev, 0);
        assert_eq!(access(&p, "/dev/null") & make, 0);
    }

    #[test]
    fn old_abis_get_fewer_rights_and_no_scoping() {
        let p = prepare(&plan(), 1).unwrap();
        assert_eq!(p.handled_fs, bits(AccessFs::from_all(ABI::V1)));
        assert!(p.rules.iter().all(|r| r.access & !p.handled_fs == 0));
        assert_eq!(p.scoped, 0);
        assert_eq!(prepare(&plan(), -libc::ENOSYS).unwrap().abi, 0);
        assert!(missing(3).iter().any(|m| m.contains("abstract unix")));
        assert!(missing(-libc::EOPNOTSUPP)[0].contains("disabled at boot"));
        assert!(missing(6).is_empty());
    }
}
