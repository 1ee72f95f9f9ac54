//! The seccomp filter: the policy in seccomp/policy.toml, compiled to
//! classic BPF before fork. Installing it in the child is one raw syscall
//! on the prepared program.
//!
//! jail emits the BPF itself (seccompiler's `sock_filter`/`BpfProgram` are
//! only the types; the unit tests still compile the policy with
//! seccompiler as the reference the new program must agree with) because
//! seccompiler cannot express the program we want:
//! - it tests syscall numbers one after another (a linear chain, ~2
//!   instructions per listed syscall), where we want a binary search
//!   (libseccomp's binary-tree layout): at most 7 comparisons here;
//! - it has one match action per filter, so other errnos (clone3 →
//!   ENOSYS) needed a hand-written prefix anyway;
//! - it does not test the x32 bit;
//! - it compares one value per rule, where "any of these flag bits" is a
//!   single JSET.
//!
//! Layout: architecture check, x32 check (both first: nothing else may be
//! decided for a foreign syscall), load nr, binary search over the listed
//! syscall numbers, per-syscall argument checks, shared returns.
//!
//! Cost: the kernel skips the filter entirely for syscalls whose verdict
//! does not depend on the arguments (its constant-action bitmap, computed
//! at install time by emulating the program with only nr and arch known).
//! Every syscall the policy does not list is such a syscall, as long as no
//! argument is loaded on its path (a unit test checks it). What remains on
//! every syscall is the kernel's slower syscall-entry path that any filter
//! implies; the search only matters for the argument-checked syscalls
//! (ioctl, socket, clone, unshare, personality) and the denied ones.

use std::collections::BTreeMap;

use seccompiler::{sock_filter, BpfProgram};
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
    #[error("seccomp/policy.toml: `{0}`: arg must be 0 to 5")]
    BadArg(String),
    #[error("seccomp/policy.toml: `{0}`: any_bit value {1:#x} is not a single bit")]
    NotABit(String, u32),
    #[error("the seccomp filter is too large for BPF's 8-bit conditional jumps")]
    TooLarge,
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
pub(super) const NATIVE_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
pub(super) const NATIVE_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// x32 syscalls are x86_64's with this bit set, under the same audit arch.
#[cfg(target_arch = "x86_64")]
pub(super) const X32_BIT: u32 = 0x4000_0000;

pub(super) const BPF_LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
pub(super) const BPF_JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
pub(super) const BPF_JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
pub(super) const BPF_JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const BPF_JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
pub(super) const BPF_RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
pub(super) const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
pub(super) const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
pub(super) const OFF_NR: u32 = 0;
pub(super) const OFF_ARCH: u32 = 4;
/// seccomp_data.args[i] is a u64 at 16 + 8 i; its low 32 bits come first
/// on the little-endian architectures jail supports.
const OFF_ARGS: u32 = 16;
#[cfg(target_endian = "big")]
compile_error!("seccomp argument offsets assume a little-endian architecture");

/// How the program treats one listed syscall number.
#[derive(Debug)]
enum Verdict {
    /// Refused whatever the arguments, with this errno.
    Deny(u32),
    /// Refused with EPERM when one of these checks matches.
    Args(Vec<ArgCheck>),
}

/// One check on the low 32 bits of an argument (what the kernel uses for
/// every argument checked; see policy.toml).
#[derive(Debug)]
enum ArgCheck {
    /// Denied when equal to one of the values.
    Equals(u8, Vec<u32>),
    /// Denied when any bit of the mask is set (one JSET).
    AnyBit(u8, u32),
    /// Denied unless equal to one of the values.
    NotIn(u8, Vec<u32>),
}

/// Parses and checks the policy: one verdict per syscall number.
fn verdicts(text: &str) -> Result<BTreeMap<u32, Verdict>, SeccompError> {
    let policy: Policy = toml::from_str(text)?;
    let mut out: BTreeMap<u32, Verdict> = BTreeMap::new();
    let lookup = |name: &str| match nr(name) {
        // Syscall numbers are small non-negative values on every ABI.
        Nr::Known(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| SeccompError::UnknownSyscall(name.into())),
        Nr::Absent => Ok(None),
        Nr::Unknown => Err(SeccompError::UnknownSyscall(name.into())),
    };
    for d in &policy.deny {
        let e = errno(d.errno.as_deref())?;
        for name in &d.syscalls {
            let Some(n) = lookup(name)? else { continue };
            if out.insert(n, Verdict::Deny(e)).is_some() {
                return Err(SeccompError::Conflict(name.clone()));
            }
        }
    }
    for d in &policy.deny_arg {
        let Some(n) = lookup(&d.syscall)? else {
            continue;
        };
        if d.arg > 5 {
            return Err(SeccompError::BadArg(d.syscall.clone()));
        }
        let mut checks = Vec::new();
        if !d.equals.is_empty() {
            checks.push(ArgCheck::Equals(d.arg, d.equals.clone()));
        }
        if !d.any_bit.is_empty() {
            let mut mask = 0u32;
            for &bit in &d.any_bit {
                // "any of these bits": a value with several bits would mean
                // "all of them", which one JSET cannot say. Refuse it.
                if bit.count_ones() != 1 {
                    return Err(SeccompError::NotABit(d.syscall.clone(), bit));
                }
                mask |= bit;
            }
            checks.push(ArgCheck::AnyBit(d.arg, mask));
        }
        if !d.not_in.is_empty() {
            checks.push(ArgCheck::NotIn(d.arg, d.not_in.clone()));
        }
        if checks.is_empty() {
            return Err(SeccompError::NoCondition(d.syscall.clone()));
        }
        match out.get_mut(&n) {
            Some(Verdict::Args(existing)) => existing.extend(checks),
            Some(Verdict::Deny(_)) => return Err(SeccompError::Conflict(d.syscall.clone())),
            None => {
                out.insert(n, Verdict::Args(checks));
            }
        }
    }
    Ok(out)
}

/// A jump target while the program is assembled.
#[derive(Debug, Clone, Copy, PartialEq)]
enum To {
    /// The next instruction.
    Next,
    Label(usize),
}

#[derive(Debug)]
enum Asm {
    Stmt(u16, u32),
    Jump(u16, u32, To, To),
    /// Unconditional jump (32-bit offset in k).
    Ja(To),
    Label(usize),
}

/// A tiny assembler: instructions with symbolic labels, resolved at the end.
#[derive(Default)]
struct Prog {
    ops: Vec<Asm>,
    labels: usize,
}

impl Prog {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }
    fn stmt(&mut self, code: u16, k: u32) {
        self.ops.push(Asm::Stmt(code, k));
    }
    fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.ops.push(Asm::Jump(code, k, jt, jf));
    }
    fn place(&mut self, l: usize) {
        self.ops.push(Asm::Label(l));
    }
    fn finish(self) -> Result<BpfProgram, SeccompError> {
        let mut at = vec![usize::MAX; self.labels];
        let mut pc = 0;
        for op in &self.ops {
            match op {
                Asm::Label(l) => at[*l] = pc,
                _ => pc += 1,
            }
        }
        // Offsets are relative to the instruction after the jump and only
        // forward (classic BPF has no backward jumps).
        let off = |from: usize, to: To| -> Result<u32, SeccompError> {
            match to {
                To::Next => Ok(0),
                To::Label(l) => {
                    let target = at[l];
                    target
                        .checked_sub(from + 1)
                        .and_then(|d| u32::try_from(d).ok())
                        .ok_or(SeccompError::TooLarge)
                }
            }
        };
        let short = |d: u32| u8::try_from(d).map_err(|_| SeccompError::TooLarge);
        let mut out = Vec::with_capacity(pc);
        for op in &self.ops {
            let pc = out.len();
            let ins = match *op {
                Asm::Label(_) => continue,
                Asm::Stmt(code, k) => sock_filter {
                    code,
                    jt: 0,
                    jf: 0,
                    k,
                },
                Asm::Jump(code, k, jt, jf) => sock_filter {
                    code,
                    jt: short(off(pc, jt)?)?,
                    jf: short(off(pc, jf)?)?,
                    k,
                },
                Asm::Ja(to) => sock_filter {
                    code: BPF_JA,
                    jt: 0,
                    jf: 0,
                    k: off(pc, to)?,
                },
            };
            out.push(ins);
        }
        if out.len() > usize::from(u16::MAX) {
            return Err(SeccompError::TooLarge);
        }
        Ok(out)
    }
}

/// Leaves of the search hold up to this many numbers, tested one by one
/// (a comparison per number beats a further split this small).
const LEAF: usize = 3;

/// Binary search over sorted syscall numbers (the accumulator holds nr):
/// jumps to each number's target, or to `allow` for any other number.
fn search(p: &mut Prog, entries: &[(u32, To)], allow: To) {
    if entries.len() <= LEAF {
        for (i, &(n, target)) in entries.iter().enumerate() {
            let jf = if i + 1 == entries.len() {
                allow
            } else {
                To::Next
            };
            p.jump(BPF_JEQ_K, n, target, jf);
        }
        if entries.is_empty() {
            p.ops.push(Asm::Ja(allow));
        }
        return;
    }
    let mid = entries.len() / 2;
    let right = p.label();
    p.jump(BPF_JGE_K, entries[mid].0, To::Label(right), To::Next);
    search(p, &entries[..mid], allow);
    p.place(right);
    search(p, &entries[mid..], allow);
}

/// Compiles a policy text to the BPF program installed in the jail.
pub fn compile(text: &str) -> Result<BpfProgram, SeccompError> {
    if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        return Err(SeccompError::Arch);
    }
    let verdicts = verdicts(text)?;
    let eperm = RET_ERRNO | libc::EPERM as u32;
    let mut p = Prog::default();
    let allow = p.label();
    let deny = p.label();

    // Security first: a foreign architecture's numbers mean other syscalls
    // (i386 `int 0x80` on x86_64), so nothing else is looked at for them.
    p.stmt(BPF_LD_W_ABS, OFF_ARCH);
    p.jump(BPF_JEQ_K, NATIVE_ARCH, To::Next, To::Label(deny));
    p.stmt(BPF_LD_W_ABS, OFF_NR);
    // x32 syscalls share x86_64's audit arch: refuse the whole ABI.
    #[cfg(target_arch = "x86_64")]
    p.jump(BPF_JSET_K, X32_BIT, To::Label(deny), To::Next);

    // One return per errno other than EPERM; one block per argument check.
    let mut errnos: BTreeMap<u32, usize> = BTreeMap::new();
    let mut blocks: Vec<(usize, &Vec<ArgCheck>)> = Vec::new();
    let mut entries = Vec::with_capacity(verdicts.len());
    for (&n, v) in &verdicts {
        let target = match v {
            Verdict::Deny(e) if *e == libc::EPERM as u32 => deny,
            Verdict::Deny(e) => *errnos.entry(*e).or_insert_with(|| p.label()),
            Verdict::Args(checks) => {
                let l = p.label();
                blocks.push((l, checks));
                l
            }
        };
        entries.push((n, To::Label(target)));
    }
    search(&mut p, &entries, To::Label(allow));

    for (l, checks) in blocks {
        p.place(l);
        for c in checks {
            let (ArgCheck::Equals(arg, _) | ArgCheck::AnyBit(arg, _) | ArgCheck::NotIn(arg, _)) = c;
            p.stmt(BPF_LD_W_ABS, OFF_ARGS + 8 * u32::from(*arg));
            match c {
                ArgCheck::Equals(_, values) => {
                    for &v in values {
                        p.jump(BPF_JEQ_K, v, To::Label(deny), To::Next);
                    }
                }
                ArgCheck::AnyBit(_, mask) => {
                    p.jump(BPF_JSET_K, *mask, To::Label(deny), To::Next);
                }
                ArgCheck::NotIn(_, values) => {
                    let ok = p.label();
                    for (i, &v) in values.iter().enumerate() {
                        let jf = if i + 1 == values.len() {
                            To::Label(deny)
                        } else {
                            To::Next
                        };
                        p.jump(BPF_JEQ_K, v, To::Label(ok), jf);
                    }
                    p.place(ok);
                }
            }
        }
        p.ops.push(Asm::Ja(To::Label(allow)));
    }

    p.place(allow);
    p.stmt(BPF_RET_K, RET_ALLOW);
    p.place(deny);
    p.stmt(BPF_RET_K, eperm);
    for (e, l) in errnos {
        p.place(l);
        p.stmt(BPF_RET_K, RET_ERRNO | e);
    }
    p.finish()
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
        return Err(crate::sys::errno());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny classic-BPF interpreter for the instructions we and
    /// seccompiler emit, so the program's decisions are tested without
    /// installing it. With `args: None` it emulates the kernel's
    /// constant-action check (seccomp_is_const_allow): only nr and arch are
    /// known, and loading an argument gives up (None). Also returns how many
    /// instructions ran.
    fn exec(
        prog: &[sock_filter],
        nr: u32,
        arch: u32,
        args: Option<[u64; 6]>,
    ) -> Option<(u32, usize)> {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_le_bytes());
        data[4..8].copy_from_slice(&arch.to_le_bytes());
        for (i, a) in args.unwrap_or_default().iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_le_bytes());
        }
        let mut acc: u32 = 0;
        let mut pc = 0usize;
        let mut steps = 0;
        loop {
            let ins = &prog[pc];
            steps += 1;
            let class = u32::from(ins.code) & 0x07;
            match class {
                0x00 => {
                    assert_eq!(ins.code, BPF_LD_W_ABS);
                    let k = ins.k as usize;
                    if args.is_none() && k != OFF_NR as usize && k != OFF_ARCH as usize {
                        return None;
                    }
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
                0x06 => return Some((ins.k, steps)),
                _ => panic!("unexpected instruction {:#x}", ins.code),
            }
        }
    }

    fn run(prog: &[sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        exec(prog, nr, arch, Some(args)).map(|r| r.0).unwrap()
    }

    /// The compiler jail used before its own BPF: seccompiler's linear
    /// program behind a hand-written prefix. Kept as the reference the new
    /// program must agree with, decision for decision.
    fn compile_reference(text: &str) -> BpfProgram {
        use seccompiler::{
            SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
            SeccompRule, TargetArch,
        };
        let cond = |arg: u8, op: SeccompCmpOp, v: u32| {
            SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, u64::from(v)).unwrap()
        };
        let policy: Policy = toml::from_str(text).unwrap();
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        let mut special: BTreeMap<i64, u32> = BTreeMap::new();
        let known = |name: &str| match nr(name) {
            Nr::Known(n) => Some(n),
            Nr::Absent => None,
            Nr::Unknown => panic!("{name}"),
        };
        for d in &policy.deny {
            let e = errno(d.errno.as_deref()).unwrap();
            for n in d.syscalls.iter().filter_map(|s| known(s)) {
                if e == libc::EPERM as u32 {
                    rules.insert(n, vec![]);
                } else {
                    special.insert(n, e);
                }
            }
        }
        for d in &policy.deny_arg {
            let Some(n) = known(&d.syscall) else { continue };
            let mut r = Vec::new();
            for &v in &d.equals {
                r.push(SeccompRule::new(vec![cond(d.arg, SeccompCmpOp::Eq, v)]).unwrap());
            }
            for &bit in &d.any_bit {
                let op = SeccompCmpOp::MaskedEq(u64::from(bit));
                r.push(SeccompRule::new(vec![cond(d.arg, op, bit)]).unwrap());
            }
            if !d.not_in.is_empty() {
                let conds = d.not_in.iter().map(|&v| cond(d.arg, SeccompCmpOp::Ne, v));
                r.push(SeccompRule::new(conds.collect()).unwrap());
            }
            rules.entry(n).or_default().extend(r);
        }
        let arch = if cfg!(target_arch = "x86_64") {
            TargetArch::x86_64
        } else {
            TargetArch::aarch64
        };
        let filter = SeccompFilter::new(
            rules,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::EPERM as u32),
            arch,
        )
        .unwrap();
        let body: BpfProgram = filter.try_into().unwrap();
        let eperm = RET_ERRNO | libc::EPERM as u32;
        let ins = |code, k, jt, jf| sock_filter { code, jt, jf, k };
        let mut p = vec![
            ins(BPF_LD_W_ABS, OFF_ARCH, 0, 0),
            ins(BPF_JEQ_K, NATIVE_ARCH, 1, 0),
            ins(BPF_RET_K, eperm, 0, 0),
            ins(BPF_LD_W_ABS, OFF_NR, 0, 0),
        ];
        #[cfg(target_arch = "x86_64")]
        {
            p.push(ins(BPF_JSET_K, X32_BIT, 0, 1));
            p.push(ins(BPF_RET_K, eperm, 0, 0));
        }
        for (&n, &e) in &special {
            p.push(ins(BPF_JEQ_K, n as u32, 0, 1));
            p.push(ins(BPF_RET_K, RET_ERRNO | e, 0, 0));
        }
        p.extend(body);
        p
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

    /// Argument values worth trying for the argument-checked syscalls:
    /// every value the policy names, its neighbours, its bits alone and
    /// combined with ordinary flags, with and without garbage in the high
    /// half, plus pseudo-random values.
    fn interesting_values() -> Vec<u64> {
        let policy: Policy = toml::from_str(POLICY).unwrap();
        let mut base: Vec<u32> = vec![0, 1, 0x11, 0x5401, 0x7fff_ffff, 0xffff_fffe, 0xffff_ffff];
        base.push((libc::SIGCHLD | libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID) as u32);
        base.push(0x3d0f00); // pthread_create
        for d in &policy.deny_arg {
            for &v in d.equals.iter().chain(&d.any_bit).chain(&d.not_in) {
                base.extend([
                    v,
                    v.wrapping_add(1),
                    v.wrapping_sub(1),
                    v | 0x11,
                    v | 0x3d0f00,
                ]);
                base.extend([v | 0x8000_0000, !v]);
            }
        }
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            base.push(x);
            base.push(x & 0x0004_00ff); // few bits set
        }
        let mut out = Vec::new();
        for v in base {
            for high in [0u64, 1 << 32, 0xdead_beef_0000_0000, 0xffff_ffff_0000_0000] {
                out.push(u64::from(v) | high);
            }
        }
        out
    }

    #[test]
    fn every_decision_matches_the_seccompiler_reference() {
        let new = compile(POLICY).unwrap();
        let old = compile_reference(POLICY);
        let arches = [NATIVE_ARCH, 0x4000_0003, 0xC000_00B7, 0xC000_003E, 0];
        let checked = [
            libc::SYS_ioctl,
            libc::SYS_socket,
            libc::SYS_clone,
            libc::SYS_unshare,
            libc::SYS_personality,
        ];
        let mut decisions = 0;
        for arch in arches {
            for n in (0u32..1024).chain([0x4000_0000, 0x4000_0010, 0x7fff_ffff, u32::MAX]) {
                for nr in [n, n | 0x4000_0000] {
                    let args = [0x5412, 0x5412, 40, 0, 0, 0];
                    assert_eq!(
                        run(&new, nr, arch, args),
                        run(&old, nr, arch, args),
                        "nr {nr:#x} arch {arch:#x}"
                    );
                    decisions += 1;
                }
            }
        }
        for nr in checked {
            for v in interesting_values() {
                for pos in 0..3 {
                    let mut args = [0u64; 6];
                    args[pos] = v;
                    assert_eq!(
                        run(&new, nr as u32, NATIVE_ARCH, args),
                        run(&old, nr as u32, NATIVE_ARCH, args),
                        "nr {nr} args {args:x?}"
                    );
                    decisions += 1;
                }
            }
        }
        assert!(decisions > 50_000, "{decisions}");
    }

    #[test]
    fn unlisted_syscalls_stay_in_the_kernels_constant_allow_cache() {
        // The kernel skips the filter for syscalls whose verdict the
        // emulation proves constant; an argument load on their path would
        // make every such syscall run the whole filter.
        let prog = compile(POLICY).unwrap();
        let listed = verdicts(POLICY).unwrap();
        for nr in 0u32..1024 {
            let c = exec(&prog, nr, NATIVE_ARCH, None);
            match listed.get(&nr) {
                None => assert_eq!(c, Some((ALLOW, c.map_or(0, |c| c.1))), "nr {nr}"),
                Some(Verdict::Deny(e)) => assert_eq!(c.map(|c| c.0), Some(RET_ERRNO | e)),
                Some(Verdict::Args(_)) => assert_eq!(c, None, "nr {nr} must look at args"),
            }
        }
        // A foreign architecture is constant too (always EPERM).
        assert_eq!(exec(&prog, 20, 0x4000_0003, None).map(|c| c.0), Some(EPERM));
    }

    #[test]
    fn paths_are_short() {
        // The search keeps every path short; the old linear program ran
        // 22 instructions for ioctl(TCGETS) and up to 125 for a listed
        // syscall (measured with this interpreter).
        let prog = compile(POLICY).unwrap();
        let old = compile_reference(POLICY);
        let steps = |p: &[sock_filter], nr: i64, args| {
            exec(p, nr as u32, NATIVE_ARCH, Some(args)).unwrap().1
        };
        let tcgets = [1, 0x5401, 0, 0, 0, 0];
        let (new_ioctl, old_ioctl) = (
            steps(&prog, libc::SYS_ioctl, tcgets),
            steps(&old, libc::SYS_ioctl, tcgets),
        );
        let worst = |p: &[sock_filter]| (0..1024).map(|nr| steps(p, nr, [0; 6])).max().unwrap();
        let (new_worst, old_worst) = (worst(&prog), worst(&old));
        eprintln!("ioctl {new_ioctl} (was {old_ioctl}), worst {new_worst} (was {old_worst})");
        assert!(
            new_ioctl <= 16,
            "ioctl(TCGETS) runs {new_ioctl} instructions"
        );
        assert!(new_worst <= 24, "worst path {new_worst} instructions");
        assert!(
            prog.len() < old.len() / 2,
            "{} vs {}",
            prog.len(),
            old.len()
        );
    }

    #[test]
    fn policy_mistakes_are_errors() {
        let arg = |body: &str| format!("[[deny_arg]]\nwhy = \"x\"\nsyscall = \"clone\"\n{body}");
        assert!(matches!(
            compile(&arg("arg = 0\nany_bit = [3]\n")),
            Err(SeccompError::NotABit(_, 3))
        ));
        assert!(matches!(
            compile(&arg("arg = 6\nequals = [1]\n")),
            Err(SeccompError::BadArg(_))
        ));
        assert!(matches!(
            compile(&arg("arg = 0\n")),
            Err(SeccompError::NoCondition(_))
        ));
        let both = "[[deny]]\nwhy = \"x\"\nsyscalls = [\"clone\"]\n".to_string()
            + &arg("arg = 0\nequals = [1]\n");
        assert!(matches!(compile(&both), Err(SeccompError::Conflict(_))));
        let twice = "[[deny]]\nwhy = \"x\"\nsyscalls = [\"bpf\", \"bpf\"]\n";
        assert!(matches!(compile(twice), Err(SeccompError::Conflict(_))));
    }

    #[test]
    fn not_in_denies_everything_else_and_empty_policies_allow() {
        let text =
            "[[deny_arg]]\nwhy = \"x\"\nsyscall = \"personality\"\narg = 0\nnot_in = [5, 7]\n";
        let prog = compile(text).unwrap();
        let p = libc::SYS_personality as u32;
        assert_eq!(run(&prog, p, NATIVE_ARCH, [5, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(&prog, p, NATIVE_ARCH, [7, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(&prog, p, NATIVE_ARCH, [6, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(
            run(&prog, p, NATIVE_ARCH, [5 | 1 << 32, 0, 0, 0, 0, 0]),
            ALLOW
        );
        let empty = compile("").unwrap();
        assert_eq!(run(&empty, p, NATIVE_ARCH, [6, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(&empty, p, 0x4000_0003, [0; 6]), EPERM);
    }
}
