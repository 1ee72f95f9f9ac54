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

/// The syscalls the supervisor decides.
pub const SUPERVISED: [i64; 4] = [
    libc::SYS_connect,
    libc::SYS_sendto,
    libc::SYS_sendmsg,
    libc::SYS_sendmmsg,
];

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jeq(k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: BPF_JEQ_K,
        jt,
        jf,
        k,
    }
}

/// The filter: another architecture (or x32) fails with EPERM (the main
/// filter denies those anyway); the supervised syscalls notify; the rest
/// is allowed.
pub fn program() -> BpfProgram {
    let n = SUPERVISED.len() as u8;
    let mut p = vec![stmt(BPF_LD_W_ABS, OFF_ARCH)];
    // Not the native arch: to `deny`, past the nr load, the x32 check, the
    // n comparisons, allow and notify.
    let x32 = u8::from(cfg!(target_arch = "x86_64"));
    p.push(jeq(NATIVE_ARCH, 0, 1 + x32 + n + 2));
    p.push(stmt(BPF_LD_W_ABS, OFF_NR));
    #[cfg(target_arch = "x86_64")]
    p.push(sock_filter {
        code: super::seccomp::BPF_JGE_K,
        jt: n + 2,
        jf: 0,
        k: super::seccomp::X32_BIT,
    });
    for (i, nr) in SUPERVISED.iter().enumerate() {
        // Matched: to `notify`, after the remaining comparisons and allow.
        let rest = n - 1 - i as u8;
        p.push(jeq(*nr as u32, rest + 1, 0));
    }
    p.push(stmt(BPF_RET_K, RET_ALLOW));
    p.push(stmt(BPF_RET_K, libc::SECCOMP_RET_USER_NOTIF));
    p.push(stmt(BPF_RET_K, RET_ERRNO | libc::EPERM as u32));
    p
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
    // SAFETY: fprog points at a live program of `len` instructions.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &fprog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(crate::sys::errno());
    }
    Ok(rc as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program on (nr, arch) with a tiny interpreter of the
    /// instructions it uses.
    fn run(prog: &[sock_filter], nr: u32, arch: u32) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let ins = &prog[pc];
            match ins.code {
                BPF_LD_W_ABS => {
                    acc = match ins.k {
                        OFF_NR => nr,
                        OFF_ARCH => arch,
                        k => panic!("loads only nr and arch, not {k}"),
                    };
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
        for nr in SUPERVISED {
            assert_eq!(
                run(&p, nr as u32, NATIVE_ARCH),
                libc::SECCOMP_RET_USER_NOTIF,
                "{nr}"
            );
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_socket,
            libc::SYS_bind,
            libc::SYS_recvmsg,
            libc::SYS_sendfile,
            libc::SYS_accept4,
        ] {
            assert_eq!(run(&p, nr as u32, NATIVE_ARCH), RET_ALLOW, "{nr}");
        }
        let eperm = RET_ERRNO | libc::EPERM as u32;
        // i386's socketcall reaches connect without its number.
        assert_eq!(run(&p, 102, 0x4000_0003), eperm);
        assert_eq!(run(&p, libc::SYS_connect as u32, 0x4000_0003), eperm);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            run(
                &p,
                libc::SYS_connect as u32 | super::super::seccomp::X32_BIT,
                NATIVE_ARCH
            ),
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
