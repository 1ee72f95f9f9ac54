//! The second seccomp filter of a Slurm task under `slurm_job_network =
//! "cluster"`: `connect`, `sendto`, `sendmsg` and `sendmmsg` stop and wait
//! for the supervisor outside the jail (`outside::connect`), which decides
//! each on the socket's family and the destination; every other syscall is
//! allowed here (the main filter, `seccomp`, still applies: the kernel
//! takes the most restrictive result of all filters).
//!
//! Built by hand: seccompiler has no SECCOMP_RET_USER_NOTIF action. It is
//! installed with SECCOMP_FILTER_FLAG_NEW_LISTENER, which hands back the
//! listener fd the supervisor reads the stopped syscalls from. If the
//! listener is closed (the supervisor died), the kernel fails these
//! syscalls with ENOSYS: closed, never open.

use seccompiler::{sock_filter, BpfProgram};

use super::seccomp::{
    BPF_JEQ_K, BPF_LD_W_ABS, BPF_RET_K, NATIVE_ARCH, OFF_ARCH, OFF_NR, RET_ALLOW, RET_ERRNO,
};

const BPF_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;

/// The syscalls the supervisor decides.
pub const SUPERVISED: [i64; 4] = [
    libc::SYS_connect,
    libc::SYS_sendto,
    libc::SYS_sendmsg,
    libc::SYS_sendmmsg,
];

/// Where a jump goes.
#[derive(Clone, Copy)]
enum To {
    Next,
    Allow,
    Notify,
    Deny,
    Label(usize),
}

enum Op {
    Stmt(u16, u32),
    Jump(u16, u32, To, To),
    Place(usize),
}

/// Resolves the labels (`Allow`, `Notify`, `Deny` are the last three
/// instructions) into classic BPF with relative forward jumps.
fn assemble(ops: &[Op]) -> BpfProgram {
    let mut at = std::collections::HashMap::new();
    let mut pc = 0usize;
    for op in ops {
        match op {
            Op::Place(l) => {
                at.insert(*l, pc);
            }
            _ => pc += 1,
        }
    }
    let (allow, notify, deny) = (pc, pc + 1, pc + 2);
    let mut out = Vec::new();
    let off = |from: usize, to: To| -> u8 {
        let target = match to {
            To::Next => from + 1,
            To::Allow => allow,
            To::Notify => notify,
            To::Deny => deny,
            To::Label(l) => at[&l],
        };
        u8::try_from(target - from - 1).expect("a short program")
    };
    for op in ops {
        let pc = out.len();
        match *op {
            Op::Place(_) => {}
            Op::Stmt(code, k) => out.push(sock_filter {
                code,
                jt: 0,
                jf: 0,
                k,
            }),
            Op::Jump(code, k, jt, jf) => out.push(sock_filter {
                code,
                jt: off(pc, jt),
                jf: off(pc, jf),
                k,
            }),
        }
    }
    let ret = |k| sock_filter {
        code: BPF_RET_K,
        jt: 0,
        jf: 0,
        k,
    };
    out.push(ret(RET_ALLOW));
    out.push(ret(libc::SECCOMP_RET_USER_NOTIF));
    out.push(ret(RET_ERRNO | libc::EPERM as u32));
    out
}

/// Socket families a cluster-mode task may create: others (RDS, TIPC,
/// ...) could carry traffic to any host without an address the
/// supervisor understands.
const FAMILIES: [u32; 4] = [
    libc::AF_UNIX as u32,
    libc::AF_NETLINK as u32,
    libc::AF_INET as u32,
    libc::AF_INET6 as u32,
];

/// Protocols refused on inet sockets: SCTP connects through a socket
/// option (SCTP_SOCKOPT_CONNECTX) and sends to addresses the peer
/// announces; MPTCP opens subflows the supervisor never sees.
const PROTOCOLS: [u32; 2] = [libc::IPPROTO_SCTP as u32, libc::IPPROTO_MPTCP as u32];

/// (level, option) pairs of setsockopt that send packets elsewhere than
/// the connected address: IPv4 source routing (IP_OPTIONS with LSRR),
/// IPv6 routing headers (segment routing), and the old API that sets them.
const OPTIONS: [(u32, u32); 4] = [
    (libc::IPPROTO_IP as u32, libc::IP_OPTIONS as u32),
    (libc::IPPROTO_IPV6 as u32, libc::IPV6_RTHDR as u32),
    (libc::IPPROTO_IPV6 as u32, 5), // IPV6_2292RTHDR
    (libc::IPPROTO_IPV6 as u32, 6), // IPV6_2292PKTOPTIONS
];

/// SECCOMP_FILTER_FLAG_NEW_LISTENER, refused to the task (see `program`).
const NEW_LISTENER: u32 = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;

/// seccomp_data.args[i], low 32 bits (little-endian).
fn arg(i: u32) -> u32 {
    16 + 8 * i
}

/// The filter: another architecture (or x32) fails with EPERM (the main
/// filter denies those anyway); the supervised syscalls notify; socket()
/// of other families, SCTP and MPTCP, the routing socket options, and a
/// seccomp filter with a listener of its own fail with EPERM; the rest is
/// allowed.
pub fn program() -> BpfProgram {
    use Op::*;
    const SOCKET: usize = 0;
    const SETSOCKOPT: usize = 1;
    const INET: usize = 2;
    const SECCOMP: usize = 3;
    let mut p = vec![
        Stmt(BPF_LD_W_ABS, OFF_ARCH),
        Jump(BPF_JEQ_K, NATIVE_ARCH, To::Next, To::Deny),
        Stmt(BPF_LD_W_ABS, OFF_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    p.push(Jump(
        super::seccomp::BPF_JGE_K,
        super::seccomp::X32_BIT,
        To::Deny,
        To::Next,
    ));
    for nr in SUPERVISED {
        p.push(Jump(BPF_JEQ_K, nr as u32, To::Notify, To::Next));
    }
    p.push(Jump(
        BPF_JEQ_K,
        libc::SYS_socket as u32,
        To::Label(SOCKET),
        To::Next,
    ));
    p.push(Jump(
        BPF_JEQ_K,
        libc::SYS_setsockopt as u32,
        To::Label(SETSOCKOPT),
        To::Next,
    ));
    p.push(Jump(
        BPF_JEQ_K,
        libc::SYS_seccomp as u32,
        To::Label(SECCOMP),
        To::Allow,
    ));
    // socket(domain, type, protocol)
    p.push(Place(SOCKET));
    p.push(Stmt(BPF_LD_W_ABS, arg(0)));
    p.push(Jump(BPF_JEQ_K, FAMILIES[0], To::Allow, To::Next));
    p.push(Jump(BPF_JEQ_K, FAMILIES[1], To::Allow, To::Next));
    p.push(Jump(BPF_JEQ_K, FAMILIES[2], To::Label(INET), To::Next));
    p.push(Jump(BPF_JEQ_K, FAMILIES[3], To::Label(INET), To::Deny));
    p.push(Place(INET));
    p.push(Stmt(BPF_LD_W_ABS, arg(2)));
    for proto in PROTOCOLS {
        p.push(Jump(BPF_JEQ_K, proto, To::Deny, To::Next));
    }
    // SOCK_SEQPACKET with protocol 0 is SCTP (the type's low 4 bits; the
    // rest are SOCK_NONBLOCK and SOCK_CLOEXEC).
    p.push(Stmt(BPF_LD_W_ABS, arg(1)));
    p.push(Stmt(BPF_AND_K, 0xf));
    p.push(Jump(
        BPF_JEQ_K,
        libc::SOCK_SEQPACKET as u32,
        To::Deny,
        To::Allow,
    ));
    // seccomp(op, flags, args): a filter of the task's own with a listener
    // would take these syscalls' notifications once ours is gone (the
    // newest of equal actions wins; the kernel refuses a second listener
    // only while ours is open) and could let them run as asked.
    p.push(Place(SECCOMP));
    p.push(Stmt(BPF_LD_W_ABS, arg(1)));
    p.push(Stmt(BPF_AND_K, NEW_LISTENER));
    p.push(Jump(BPF_JEQ_K, NEW_LISTENER, To::Deny, To::Allow));
    // setsockopt(fd, level, optname, ...)
    p.push(Place(SETSOCKOPT));
    for (i, (level, name)) in OPTIONS.iter().enumerate() {
        let skip = 10 + i;
        p.push(Stmt(BPF_LD_W_ABS, arg(1)));
        p.push(Jump(BPF_JEQ_K, *level, To::Next, To::Label(skip)));
        p.push(Stmt(BPF_LD_W_ABS, arg(2)));
        p.push(Jump(BPF_JEQ_K, *name, To::Deny, To::Next));
        p.push(Place(skip));
    }
    assemble(&p)
}

/// Installs `prog` on the calling thread with a new listener and returns
/// the listener fd (close-on-exec). Needs no_new_privs (or
/// CAP_SYS_ADMIN); a raw syscall on prepared data, allocation-free.
pub fn install(prog: &[sock_filter]) -> Result<i32, i32> {
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        // seccompiler's sock_filter is repr(C) with the kernel's layout.
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    let set = |flags: libc::c_ulong| {
        // SAFETY: fprog points at a live program of `len` instructions.
        unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                flags,
                &fprog as *const libc::sock_fprog,
            )
        }
    };
    // Once the supervisor has a call, only a fatal signal ends the task's
    // wait: an ordinary one (a profiler's timer, SIGALRM) would otherwise
    // restart the call after the supervisor performed it, and the bytes
    // would be sent twice. Kernels before 5.19 lack the flag.
    let mut rc =
        set(libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);
    if rc < 0 && crate::sys::errno() == libc::EINVAL {
        rc = set(libc::SECCOMP_FILTER_FLAG_NEW_LISTENER);
    }
    if rc < 0 {
        return Err(crate::sys::errno());
    }
    Ok(rc as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on (nr, arch, args) with a tiny interpreter of
    /// the instructions it uses.
    fn run(prog: &[sock_filter], nr: u32, arch: u32, args: [u32; 3]) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let ins = &prog[pc];
            match ins.code {
                BPF_LD_W_ABS => {
                    acc = match ins.k {
                        OFF_NR => nr,
                        OFF_ARCH => arch,
                        k if (16..40).contains(&k) && (k - 16) % 8 == 0 => {
                            args[((k - 16) / 8) as usize]
                        }
                        k => panic!("unexpected load at {k}"),
                    };
                    pc += 1;
                }
                BPF_AND_K => {
                    acc &= ins.k;
                    pc += 1;
                }
                BPF_JEQ_K => pc += 1 + usize::from(if acc == ins.k { ins.jt } else { ins.jf }),
                #[cfg(target_arch = "x86_64")]
                super::super::seccomp::BPF_JGE_K => {
                    pc += 1 + usize::from(if acc >= ins.k { ins.jt } else { ins.jf })
                }
                BPF_RET_K => return ins.k,
                c => panic!("unexpected instruction {c:#x}"),
            }
        }
    }

    #[test]
    fn the_supervised_syscalls_notify_and_the_rest_is_allowed() {
        let p = program();
        let nat = |nr: i64, args: [i32; 3]| run(&p, nr as u32, NATIVE_ARCH, args.map(|a| a as u32));
        let eperm = RET_ERRNO | libc::EPERM as u32;
        for nr in SUPERVISED {
            assert_eq!(nat(nr, [3, 0, 0]), libc::SECCOMP_RET_USER_NOTIF, "{nr}");
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_bind,
            libc::SYS_recvmsg,
            libc::SYS_sendfile,
            libc::SYS_accept4,
            libc::SYS_getsockopt,
        ] {
            assert_eq!(nat(nr, [3, 0, 4]), RET_ALLOW, "{nr}");
        }
        // i386's socketcall reaches connect without its number.
        assert_eq!(run(&p, 102, 0x4000_0003, [0; 3]), eperm);
        assert_eq!(
            run(&p, libc::SYS_connect as u32, 0x4000_0003, [0; 3]),
            eperm
        );
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            run(
                &p,
                libc::SYS_connect as u32 | super::super::seccomp::X32_BIT,
                NATIVE_ARCH,
                [0; 3]
            ),
            eperm
        );
        use libc::*;
        let sock = |d: i32, t: i32, pr: i32| nat(SYS_socket, [d, t, pr]);
        assert_eq!(sock(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), RET_ALLOW);
        assert_eq!(sock(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0), RET_ALLOW);
        assert_eq!(sock(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), RET_ALLOW);
        assert_eq!(sock(AF_UNIX, SOCK_SEQPACKET, 0), RET_ALLOW);
        assert_eq!(sock(AF_NETLINK, SOCK_RAW, 0), RET_ALLOW);
        assert_eq!(sock(AF_INET, SOCK_STREAM, IPPROTO_SCTP), eperm);
        assert_eq!(sock(AF_INET6, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), eperm);
        assert_eq!(sock(AF_INET, SOCK_STREAM, IPPROTO_MPTCP), eperm);
        assert_eq!(sock(21, SOCK_SEQPACKET, 0), eperm, "AF_RDS");
        assert_eq!(sock(30, SOCK_DGRAM, 0), eperm, "AF_TIPC");
        let opt = |level: i32, name: i32| nat(SYS_setsockopt, [3, level, name]);
        assert_eq!(opt(IPPROTO_IP, IP_OPTIONS), eperm);
        assert_eq!(opt(IPPROTO_IPV6, IPV6_RTHDR), eperm);
        assert_eq!(opt(IPPROTO_IPV6, 5), eperm);
        assert_eq!(opt(IPPROTO_IPV6, 6), eperm);
        assert_eq!(opt(IPPROTO_IP, IP_TOS), RET_ALLOW);
        assert_eq!(opt(SOL_SOCKET, SO_REUSEADDR), RET_ALLOW);
        assert_eq!(opt(IPPROTO_TCP, TCP_NODELAY), RET_ALLOW);
        // IP_OPTIONS's number at another level is another option.
        assert_eq!(opt(IPPROTO_TCP, IP_OPTIONS), RET_ALLOW);
        // A filter of the task's own: yes; with a listener: no.
        let filter = |flags: u32| nat(SYS_seccomp, [1, flags as i32, 0]);
        assert_eq!(filter(0), RET_ALLOW);
        assert_eq!(filter(SECCOMP_FILTER_FLAG_TSYNC as u32), RET_ALLOW);
        assert_eq!(filter(SECCOMP_FILTER_FLAG_NEW_LISTENER as u32), eperm);
        assert_eq!(
            filter((SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_TSYNC) as u32),
            eperm
        );
    }

    #[test]
    fn a_process_with_the_filter_gets_a_listener_and_its_connect_stops() {
        // In a forked child (the filter stays with the process): connect
        // with the listener closed fails with ENOSYS, never goes through.
        // SAFETY: fork in a test; the child only makes syscalls and exits.
        let prog = program();
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: prctl with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            let code = match install(&prog) {
                Ok(fd) => {
                    crate::sys::close(fd);
                    // SAFETY: plain socket/connect on a local struct.
                    unsafe {
                        let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
                        let mut a: libc::sockaddr_in = std::mem::zeroed();
                        a.sin_family = libc::AF_INET as u16;
                        a.sin_port = 9u16.to_be();
                        a.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
                        let rc = libc::connect(
                            s,
                            (&a as *const libc::sockaddr_in).cast(),
                            std::mem::size_of::<libc::sockaddr_in>() as u32,
                        );
                        if rc == -1 && crate::sys::errno() == libc::ENOSYS {
                            0
                        } else {
                            1
                        }
                    }
                }
                Err(_) => 2,
            };
            crate::sys::exit_now(code);
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status));
        assert_eq!(libc::WEXITSTATUS(status), 0);
    }
}
