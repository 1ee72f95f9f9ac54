//! The stubs inside the jail: jail's binary called as `sbatch`, `srun`,
//! `squeue`, `scancel`, `scontrol`, `sacct` or `salloc`. It sends the
//! command to the chaperon with its own stdin, stdout and stderr (and,
//! for sbatch, the script file it opened, so the file is read as the jail
//! sees it), passes on every signal it gets, and exits with the status the
//! chaperon reports. No timeouts: it waits as long as the command runs.

use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::outside::channel::ToStub;
use crate::outside::chaperon::{rules, Request, SOCKET, STUBS};
use crate::outside::{Channel, Msg};
use crate::sys;

/// The name a stub answers to, if argv[0] is one.
pub fn name(argv0: &str) -> Option<&'static str> {
    let base = argv0.rsplit('/').next().unwrap_or(argv0);
    STUBS.iter().copied().find(|s| *s == base)
}

/// Write end of the self-pipe the signal handler writes to.
static SIG_PIPE: AtomicI32 = AtomicI32::new(-1);

/// Signals passed on to the real command.
const FORWARD: &[libc::c_int] = &[
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGCONT,
];

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIG_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write is async-signal-safe; one byte from the stack.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
}

fn fail(name: &str, what: String) -> i32 {
    eprintln!("jail: slurm: {name}: {what}");
    1
}

/// A usable fd for stdio slot `fd` (a closed one becomes /dev/null).
fn stdio_fd(fd: RawFd, keep: &mut Vec<std::fs::File>) -> RawFd {
    // SAFETY: F_GETFD only queries the fd.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
        return fd;
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        Ok(f) => {
            let raw = f.as_raw_fd();
            keep.push(f);
            raw
        }
        Err(_) => fd,
    }
}

/// Runs the stub `name` with `args` (argv without argv[0]).
pub fn main(name: &str, args: Vec<String>) -> i32 {
    let mut keep = Vec::new();
    let mut fds: Vec<RawFd> = (0..3).map(|fd| stdio_fd(fd, &mut keep)).collect();
    let mut script = false;
    if name == "sbatch" {
        // The script is read as the jail sees it: opened here, sent as an fd.
        if let Ok((_, rules::ScriptFrom::File(f))) = rules::sbatch_source(&args) {
            match std::fs::File::open(&f) {
                Ok(file) => {
                    fds.push(file.as_raw_fd());
                    keep.push(file);
                    script = true;
                }
                Err(_) => {
                    eprintln!("sbatch: error: Unable to open file {f}");
                    return 1;
                }
            }
        }
    }
    let sock = match sys::seqpacket_connect(SOCKET) {
        Ok(fd) => fd,
        Err(e) => {
            return fail(
                name,
                format!(
                    "no Slurm chaperon in this jail ({}): Slurm is off for this jail \
                     (`jail explain` shows [slurm]), or this is not a jail",
                    crate::sys::errno_text(e)
                ),
            )
        }
    };
    // SAFETY: seqpacket_connect just made this socket; the Channel is
    // its only owner.
    let chan = unsafe { Channel::from_raw_fd(sock) };
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let req = Request {
        command: name.to_string(),
        args,
        cwd,
        env,
        script,
    };
    if let Err(e) = chan.send(&Msg::SlurmRequest(Box::new(req)), &fds) {
        return fail(name, format!("cannot reach the chaperon: {e}"));
    }
    drop(keep);
    let Ok((sig_r, sig_w)) = sys::pipe() else {
        return fail(name, "cannot make a pipe".into());
    };
    SIG_PIPE.store(sig_w, Ordering::Relaxed);
    for &s in FORWARD {
        // SAFETY: installing an async-signal-safe handler.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(s, &sa, std::ptr::null_mut());
        }
    }
    loop {
        let mut p = [
            libc::pollfd {
                fd: chan.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sig_r,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        if sys::poll(&mut p, -1).is_err() {
            return fail(name, "poll failed".into());
        }
        if p[1].revents & libc::POLLIN != 0 {
            let mut b = [0u8; 16];
            if let Ok(n) = sys::read(sig_r, &mut b) {
                for &sig in &b[..n] {
                    let _ = chan.send(&Msg::SlurmSignal { sig: sig as i32 }, &[]);
                }
            }
        }
        if p[0].revents != 0 {
            match chan.recv_as::<ToStub>() {
                Ok(Some((ToStub::Exit { code }, _))) => return code,
                Ok(None) => return fail(name, "the chaperon went away".into()),
                Err(e) => return fail(name, e.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stubs_answer_to_their_names_only() {
        assert_eq!(name("sbatch"), Some("sbatch"));
        assert_eq!(name("/run/jail/bin/srun"), Some("srun"));
        assert_eq!(name("jail"), None);
        assert_eq!(name("/usr/bin/sbatch2"), None);
    }
}
