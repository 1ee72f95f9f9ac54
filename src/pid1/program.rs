//! The program's child: started by pid 1 (`main`) as posix_spawn does,
//! it resets signals, opens the program's redirected standard streams,
//! marks every other inherited fd close-on-exec and execs the program,
//! trying each candidate path; a failure is reported to the launcher.
//!
//! It shares pid 1's memory until its exec: it only reads what the
//! launcher prepared (`prepared`), borrows everything, drops nothing, and
//! makes only async-signal-safe, allocation-free calls.

use super::exec::Stage;
use super::main::report;
use super::prepared::{Prepared, Stream};
use crate::outside::Channel;
use crate::reap as init;
use crate::sys;

/// What the program's process gets from pid 1 (on pid 1's stack). All
/// borrowed: the process shares pid 1's memory until its exec, and owns
/// nothing of it (it drops nothing; it ends in exec or _exit).
struct ProgramArgs<'a> {
    prep: &'a Prepared,
    chan: &'a Channel,
}

/// Size of the stack the program's process runs on until its exec.
const SPAWN_STACK: usize = 256 * 1024;

/// Starts the program from pid 1 as posix_spawn does: clone with
/// CLONE_VM | CLONE_VFORK on a stack of its own, so pid 1's memory map is
/// not copied (page tables, then a copy-on-write fault per page touched)
/// only to be thrown away by the exec; pid 1 resumes once the exec
/// happened or failed. The child shares pid 1's memory until then: it
/// only reads prepared data and makes syscalls (errno, which it shares,
/// is not read by pid 1 after a successful clone).
pub fn spawn(prep: &Prepared, chan: &Channel) -> Result<libc::pid_t, i32> {
    // SAFETY: an anonymous private mapping; checked for failure.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            SPAWN_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(sys::errno());
    }
    let args = ProgramArgs { prep, chan };
    // SAFETY: the stack grows down from the end of the mapping (aligned);
    // `args` lives on this frame, which stays put until the child has
    // exec'd or exited (CLONE_VFORK suspends us until then).
    let pid = unsafe {
        libc::clone(
            program,
            stack.cast::<u8>().add(SPAWN_STACK).cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&args as *const ProgramArgs).cast_mut().cast(),
        )
    };
    let err = sys::errno();
    // SAFETY: the child no longer runs on it (it exec'd or exited).
    unsafe { libc::munmap(stack, SPAWN_STACK) };
    if pid < 0 {
        return Err(err);
    }
    Ok(pid)
}

/// The program's process until its exec (see `spawn`).
extern "C" fn program(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the ProgramArgs of spawn's frame, alive while
    // this runs.
    let ProgramArgs { prep, chan } = unsafe { &*(arg as *const ProgramArgs) };
    let (prep, chan) = (*prep, *chan);
    init::reset_signals();
    for (i, r) in prep.redirects.iter().enumerate() {
        if let Err(e) = redirect(r) {
            report(chan, Stage::Stdio, i as u32, e);
            sys::exit_now(125);
        }
    }
    // SAFETY: mark every inherited fd but stdio close-on-exec, so the
    // program gets nothing from the host but its terminal/pipes.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    let mut err = libc::ENOENT;
    let mut denied = false;
    // 1 + the index of a candidate that is there although execve said
    // ENOENT: its interpreter (#! or ELF loader) is what is missing.
    let mut found_inside = 0u32;
    for (i, c) in prep.candidates.iter().enumerate() {
        // SAFETY: NULL-terminated pointer arrays of prepared strings
        // (built before the clone; `prep` outlives the call).
        unsafe { libc::execve(c.as_ptr(), prep.argv_ptrs.as_ptr(), prep.envp_ptrs.as_ptr()) };
        err = sys::errno();
        match err {
            libc::EACCES => denied = true,
            libc::ENOENT | libc::ENOTDIR => {
                // SAFETY: access on a prepared C string.
                if found_inside == 0 && unsafe { libc::access(c.as_ptr(), libc::F_OK) } == 0 {
                    found_inside = i as u32 + 1;
                }
            }
            _ => break,
        }
    }
    if denied && (err == libc::ENOENT || err == libc::ENOTDIR) {
        err = libc::EACCES;
    }
    report(chan, Stage::Exec, found_inside, err);
    // Found but not startable is 126, as in shells.
    let not_found = (err == libc::ENOENT || err == libc::ENOTDIR) && found_inside == 0;
    sys::exit_now(if not_found { 127 } else { 126 });
}

/// Opens one standard stream of the program (its child, before exec).
fn redirect(r: &Stream) -> Result<(), i32> {
    // SAFETY: open on a prepared C string.
    let fd = unsafe { libc::open(r.path.as_ptr(), r.flags, 0o666 as libc::c_uint) };
    if fd < 0 {
        return Err(sys::errno());
    }
    for &t in &r.fds {
        // SAFETY: dup2 between fds of this process (clears CLOEXEC).
        if unsafe { libc::dup2(fd, t) } < 0 {
            return Err(sys::errno());
        }
    }
    if !r.fds.contains(&fd) {
        sys::close(fd);
    }
    Ok(())
}
