//! The seccomp filter: the policy in seccomp/policy.toml, compiled to BPF
//! with seccompiler before fork, behind a prefix of our own checks that
//! seccompiler does not make (foreign architecture, the x32 bit, errnos
//! other than EPERM). Installing it in the child is one raw syscall on the
//! prepared program.

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};
use serde::Deserialize;

/// The policy, embedded so the binary cannot run with a missing one.
pub const POLICY: &str = include_str!("../../seccomp/policy.toml");

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp/policy.toml: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("seccomp/policy.toml: unknown syscall `{0}` on this architecture")]
    UnknownSyscall(String),
    #[error("seccomp/policy.toml: unknown errno `{0}`")]
    UnknownErrno(String),
    #[error("seccomp/policy.toml: `{0}` has no condition (equals, any_bit or not_in)")]
    NoCondition(String),
    #[error("seccomp/policy.toml: syscall `{0}` appears twice with different actions")]
    Conflict(String),
    #[error("compiling the seccomp filter: {0}")]
    Compile(#[from] seccompiler::BackendError),
    #[error("this architecture has no seccomp filter in jail")]
    Arch,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Policy {
    #[serde(default)]
    deny: Vec<Deny>,
    #[serde(default)]
    deny_arg: Vec<DenyArg>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Deny {
    #[allow(dead_code)]
    why: String,
    syscalls: Vec<String>,
    errno: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyArg {
    #[allow(dead_code)]
    why: String,
    syscall: String,
    arg: u8,
    #[serde(default)]
    equals: Vec<u32>,
    #[serde(default)]
    any_bit: Vec<u32>,
    #[serde(default)]
    not_in: Vec<u32>,
}

/// A syscall number on the build architecture.
enum Nr {
    Known(i64),
    /// The architecture has no such syscall (nothing to deny).
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    Absent,
    Unknown,
}

fn nr(name: &str) -> Nr {
    use libc::*;
    let n = match name {
        "io_uring_setup" => SYS_io_uring_setup,
        "io_uring_enter" => SYS_io_uring_enter,
        "io_uring_register" => SYS_io_uring_register,
        "userfaultfd" => SYS_userfaultfd,
        "bpf" => SYS_bpf,
        "perf_event_open" => SYS_perf_event_open,
        "kexec_load" => SYS_kexec_load,
        "kexec_file_load" => SYS_kexec_file_load,
        "init_module" => SYS_init_module,
        "finit_module" => SYS_finit_module,
        "delete_module" => SYS_delete_module,
        "mount" => SYS_mount,
        "umount2" => SYS_umount2,
        "pivot_root" => SYS_pivot_root,
        "move_mount" => SYS_move_mount,
        "open_tree" => SYS_open_tree,
        "fsopen" => SYS_fsopen,
        "fsconfig" => SYS_fsconfig,
        "fsmount" => SYS_fsmount,
        "fspick" => SYS_fspick,
        "mount_setattr" => SYS_mount_setattr,
        "chroot" => SYS_chroot,
        "setns" => SYS_setns,
        "unshare" => SYS_unshare,
        "clone" => SYS_clone,
        "clone3" => SYS_clone3,
        "keyctl" => SYS_keyctl,
        "add_key" => SYS_add_key,
        "request_key" => SYS_request_key,
        "ptrace" => SYS_ptrace,
        "process_vm_readv" => SYS_process_vm_readv,
        "process_vm_writev" => SYS_process_vm_writev,
        "kcmp" => SYS_kcmp,
        "pidfd_getfd" => SYS_pidfd_getfd,
        "personality" => SYS_personality,
        "acct" => SYS_acct,
        "swapon" => SYS_swapon,
        "swapoff" => SYS_swapoff,
        "reboot" => SYS_reboot,
        "quotactl" => SYS_quotactl,
        "quotactl_fd" => SYS_quotactl_fd,
        "lookup_dcookie" => SYS_lookup_dcookie,
        "syslog" => SYS_syslog,
        "open_by_handle_at" => SYS_open_by_handle_at,
        "name_to_handle_at" => SYS_name_to_handle_at,
        "ioctl" => SYS_ioctl,
        "socket" => SYS_socket,
        #[cfg(target_arch = "x86_64")]
        "iopl" => SYS_iopl,
        #[cfg(target_arch = "x86_64")]
        "ioperm" => SYS_ioperm,
        #[cfg(target_arch = "x86_64")]
        "uselib" => SYS_uselib,
        #[cfg(target_arch = "x86_64")]
        "_sysctl" => SYS__sysctl,
        #[cfg(not(target_arch = "x86_64"))]
        "iopl" | "ioperm" | "uselib" | "_sysctl" => return Nr::Absent,
        _ => return Nr::Unknown,
    };
    Nr::Known(n)
}

fn errno(name: Option<&str>) -> Result<u32, SeccompError> {
    Ok(match name {
        None | Some("EPERM") => libc::EPERM as u32,
        Some("ENOSYS") => libc::ENOSYS as u32,
        Some("EACCES") => libc::EACCES as u32,
        Some(other) => return Err(SeccompError::UnknownErrno(other.into())),
    })
}

#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// x32 syscalls are x86_64's with this bit set, under the same audit arch.
#[cfg(target_arch = "x86_64")]
const X32_BIT: u32 = 0x4000_0000;

const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
#[cfg(target_arch = "x86_64")]
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Our checks, run before seccompiler's program: any other architecture
/// and the x32 bit get EPERM; syscalls with their own errno get it.
fn prefix(special: &BTreeMap<i64, u32>) -> BpfProgram {
    let eperm = RET_ERRNO | libc::EPERM as u32;
    let mut p = vec![
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JEQ_K, NATIVE_ARCH, 1, 0),
        stmt(BPF_RET_K, eperm),
        stmt(BPF_LD_W_ABS, OFF_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        p.push(jump(BPF_JSET_K, X32_BIT, 0, 1));
        p.push(stmt(BPF_RET_K, eperm));
    }
    for (&n, &e) in special {
        // Syscall numbers are small positive values.
        p.push(jump(BPF_JEQ_K, n as u32, 0, 1));
        p.push(stmt(BPF_RET_K, RET_ERRNO | e));
    }
    p
}

fn cond(arg: u8, op: SeccompCmpOp, value: u32) -> Result<SeccompCondition, SeccompError> {
    Ok(SeccompCondition::new(
        arg,
        SeccompCmpArgLen::Dword,
        op,
        u64::from(value),
    )?)
}

fn target_arch() -> Result<TargetArch, SeccompError> {
    if cfg!(target_arch = "x86_64") {
        Ok(TargetArch::x86_64)
    } else if cfg!(target_arch = "aarch64") {
        Ok(TargetArch::aarch64)
    } else {
        Err(SeccompError::Arch)
    }
}

/// Compiles a policy text to the BPF program installed in the jail.
pub fn compile(text: &str) -> Result<BpfProgram, SeccompError> {
    let policy: Policy = toml::from_str(text)?;
    let mut eperm: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut special: BTreeMap<i64, u32> = BTreeMap::new();
    let lookup = |name: &str| match nr(name) {
        Nr::Known(n) => Ok(Some(n)),
        Nr::Absent => Ok(None),
        Nr::Unknown => Err(SeccompError::UnknownSyscall(name.into())),
    };
    for d in &policy.deny {
        let e = errno(d.errno.as_deref())?;
        for name in &d.syscalls {
            let Some(n) = lookup(name)? else { continue };
            if e == libc::EPERM as u32 {
                // An empty rule list denies the syscall unconditionally.
                if eperm.insert(n, vec![]).is_some() {
                    return Err(SeccompError::Conflict(name.clone()));
                }
            } else if special.insert(n, e).is_some() {
                return Err(SeccompError::Conflict(name.clone()));
            }
        }
    }
    for d in &policy.deny_arg {
        let Some(n) = lookup(&d.syscall)? else {
            continue;
        };
        let mut rules = Vec::new();
        for &v in &d.equals {
            rules.push(SeccompRule::new(vec![cond(d.arg, SeccompCmpOp::Eq, v)?])?);
        }
        for &bit in &d.any_bit {
            let op = SeccompCmpOp::MaskedEq(u64::from(bit));
            rules.push(SeccompRule::new(vec![cond(d.arg, op, bit)?])?);
        }
        if !d.not_in.is_empty() {
            // One rule, all conditions: matches when the value is none of them.
            let conds = d
                .not_in
                .iter()
                .map(|&v| cond(d.arg, SeccompCmpOp::Ne, v))
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(SeccompRule::new(conds)?);
        }
        if rules.is_empty() {
            return Err(SeccompError::NoCondition(d.syscall.clone()));
        }
        match eperm.get_mut(&n) {
            Some(existing) if existing.is_empty() => {
                return Err(SeccompError::Conflict(d.syscall.clone()))
            }
            Some(existing) => existing.extend(rules),
            None => {
                eperm.insert(n, rules);
            }
        }
    }
    let filter = SeccompFilter::new(
        eperm,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        target_arch()?,
    )?;
    let body: BpfProgram = filter.try_into()?;
    let mut prog = prefix(&special);
    prog.extend(body);
    Ok(prog)
}

/// Installs the prepared program on the calling thread (inherited by
/// children). Raw syscall: no allocation after fork.
pub fn install(prog: &[sock_filter]) -> Result<(), i32> {
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        // seccompiler's sock_filter is repr(C) with the kernel's layout.
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: fprog points at a live program of `len` instructions.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc != 0 {
        return Err(crate::sandbox::exec::errno());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny classic-BPF interpreter for the instructions we emit, so the
    /// program's decisions are tested without installing it.
    fn run(prog: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut acc: u32 = 0;
        let mut pc = 0usize;
        loop {
            let ins = &prog[pc];
            let class = u32::from(ins.code) & 0x07;
            match class {
                0x00 => {
                    // BPF_LD | BPF_W | BPF_ABS
                    let k = ins.k as usize;
                    acc = u32::from_le_bytes([data[k], data[k + 1], data[k + 2], data[k + 3]]);
                    pc += 1;
                }
                0x04 => {
                    // BPF_ALU (seccompiler uses AND for masked compares)
                    assert_eq!(
                        u32::from(ins.code),
                        libc::BPF_ALU | libc::BPF_AND | libc::BPF_K
                    );
                    acc &= ins.k;
                    pc += 1;
                }
                0x05 => {
                    let op = u32::from(ins.code) & 0xf0;
                    let taken = match op {
                        0x00 => {
                            pc += 1 + ins.k as usize;
                            continue;
                        }
                        0x10 => acc == ins.k,
                        0x20 => acc > ins.k,
                        0x30 => acc >= ins.k,
                        0x40 => acc & ins.k != 0,
                        _ => panic!("unexpected jump {:#x}", ins.code),
                    };
                    pc += 1 + if taken { ins.jt } else { ins.jf } as usize;
                }
                0x06 => return ins.k,
                _ => panic!("unexpected instruction {:#x}", ins.code),
            }
        }
    }

    const ALLOW: u32 = 0x7fff_0000;
    const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;

    fn decide(nr: i64, args: [u64; 6]) -> u32 {
        let prog = compile(POLICY).unwrap();
        run(&prog, nr as u32, NATIVE_ARCH, args)
    }

    #[test]
    fn builtin_policy_compiles() {
        let prog = compile(POLICY).unwrap();
        assert!(prog.len() < 4096);
    }

    #[test]
    fn plain_syscalls_are_allowed_and_listed_ones_denied() {
        assert_eq!(decide(libc::SYS_getpid, [0; 6]), ALLOW);
        assert_eq!(decide(libc::SYS_openat, [0; 6]), ALLOW);
        for n in [
            libc::SYS_io_uring_setup,
            libc::SYS_userfaultfd,
            libc::SYS_bpf,
            libc::SYS_mount,
            libc::SYS_ptrace,
            libc::SYS_keyctl,
            libc::SYS_setns,
        ] {
            assert_eq!(decide(n, [0; 6]), EPERM, "syscall {n}");
        }
        assert_eq!(
            decide(libc::SYS_clone3, [0; 6]),
            RET_ERRNO | libc::ENOSYS as u32
        );
    }

    #[test]
    fn foreign_arch_and_x32_are_denied() {
        let prog = compile(POLICY).unwrap();
        // AUDIT_ARCH_I386: getpid is 20 there.
        assert_eq!(run(&prog, 20, 0x4000_0003, [0; 6]), EPERM);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            run(&prog, 39 | X32_BIT, NATIVE_ARCH, [0; 6]),
            EPERM,
            "x32 getpid"
        );
    }

    #[test]
    fn ioctl_checks_the_low_32_bits() {
        let sti = 0x5412u64;
        assert_eq!(decide(libc::SYS_ioctl, [0, sti, 0, 0, 0, 0]), EPERM);
        assert_eq!(
            decide(libc::SYS_ioctl, [0, sti | 0xdead_0000_0000, 0, 0, 0, 0]),
            EPERM
        );
        assert_eq!(decide(libc::SYS_ioctl, [0, 0x541C, 0, 0, 0, 0]), EPERM);
        assert_eq!(decide(libc::SYS_ioctl, [0, 0x5401, 0, 0, 0, 0]), ALLOW); // TCGETS
    }

    #[test]
    fn clone_and_unshare_namespace_flags() {
        let fork = (libc::SIGCHLD | libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID) as u64;
        assert_eq!(decide(libc::SYS_clone, [fork, 0, 0, 0, 0, 0]), ALLOW);
        let thread = 0x3d0f00u64; // glibc's pthread_create flags
        assert_eq!(decide(libc::SYS_clone, [thread, 0, 0, 0, 0, 0]), ALLOW);
        for f in [
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWNET,
            libc::CLONE_NEWPID,
        ] {
            assert_eq!(
                decide(libc::SYS_clone, [fork | f as u64, 0, 0, 0, 0, 0]),
                EPERM
            );
            assert_eq!(decide(libc::SYS_unshare, [f as u64, 0, 0, 0, 0, 0]), EPERM);
        }
        assert_eq!(
            decide(libc::SYS_unshare, [libc::CLONE_FILES as u64, 0, 0, 0, 0, 0]),
            ALLOW
        );
    }

    #[test]
    fn vsock_sockets_are_denied_whatever_the_high_bits() {
        let stream = libc::SOCK_STREAM as u64;
        assert_eq!(decide(libc::SYS_socket, [40, stream, 0, 0, 0, 0]), EPERM);
        assert_eq!(
            decide(libc::SYS_socket, [40 | 1 << 32, stream, 0, 0, 0, 0]),
            EPERM
        );
        assert_eq!(
            decide(libc::SYS_socket, [libc::AF_INET as u64, stream, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            decide(libc::SYS_socket, [libc::AF_UNIX as u64, stream, 0, 0, 0, 0]),
            ALLOW
        );
    }

    #[test]
    fn personality_allows_only_safe_values() {
        assert_eq!(
            decide(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            decide(libc::SYS_personality, [0x40000, 0, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            decide(libc::SYS_personality, [0x0400000, 0, 0, 0, 0, 0]),
            EPERM
        ); // READ_IMPLIES_EXEC
    }

    #[test]
    fn unknown_names_and_errnos_are_errors() {
        let bad = "[[deny]]\nwhy = \"x\"\nsyscalls = [\"no_such_call\"]\n";
        assert!(matches!(compile(bad), Err(SeccompError::UnknownSyscall(_))));
        let bad = "[[deny]]\nwhy = \"x\"\nsyscalls = [\"bpf\"]\nerrno = \"EWHAT\"\n";
        assert!(matches!(compile(bad), Err(SeccompError::UnknownErrno(_))));
    }
}
