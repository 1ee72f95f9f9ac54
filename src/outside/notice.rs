//! jail's notices while the program runs (a denial, a DNS server that
//! cannot be reached, a network helper that died): they must never draw
//! into a program that owns the terminal. A full-screen program (an
//! agent's TUI, an editor, a shell at its prompt) turns the terminal's
//! canonical mode off; while it is off, a notice is not printed but kept
//! for the summary after the program exits. Whenever stderr is a terminal,
//! every notice is also appended to a log file in jail's state
//! (`~/.local/state/jail/notices.log`, never writable inside a jail) that
//! `tail -f` follows from another terminal. Pure line handling here; the
//! callers decide what to say.

use std::io::Write;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// Notices kept for the exit at most (the log has them all).
pub const MAX_DEFERRED: usize = 200;
/// Deferred lines printed at exit at most; the rest are counted.
pub const SHOWN_AT_EXIT: usize = 20;
/// The log is started afresh when it grew past this.
const LOG_MAX: u64 = 1 << 20;

/// The log file of jail's notices in jail's state directory `state`.
pub fn log_path(state: &Path) -> PathBuf {
    state.join("notices.log")
}

/// Whether `fd` is a terminal in non-canonical mode: a full-screen
/// program (or a line editor) owns it, and a line written there would
/// land inside its screen.
pub fn owns_terminal(fd: RawFd) -> bool {
    // SAFETY: tcgetattr writes into a zeroed local termios.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        libc::tcgetattr(fd, &mut t) == 0 && t.c_lflag & libc::ICANON == 0
    }
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty takes any integer.
    unsafe { libc::isatty(fd) == 1 }
}

/// Where one process's notices go.
#[derive(Debug, Default)]
pub struct Notices {
    log: Option<std::fs::File>,
    /// Where the log is, to name it at exit.
    log_path: Option<PathBuf>,
    deferred: Vec<String>,
    /// Deferred notices beyond `MAX_DEFERRED`.
    more: usize,
    /// Test hook: pretend the terminal is owned (unit tests).
    owned: Option<bool>,
}

impl Notices {
    /// Opens the log when stderr is a terminal (before any confinement:
    /// the file stays open). Never blocks, never follows a link, never
    /// writes into anything but a regular file of its own.
    pub fn open(state: Option<&Path>) -> Notices {
        let mut n = Notices::default();
        let Some(state) = state.filter(|_| is_terminal(2)) else {
            return n;
        };
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state);
        let path = log_path(state);
        let f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path);
        if let Ok(f) = f {
            if let Ok(m) = f.metadata() {
                if m.file_type().is_file() {
                    if m.len() > LOG_MAX {
                        let _ = f.set_len(0);
                    }
                    n.log = Some(f);
                    n.log_path = Some(path);
                }
            }
        }
        n
    }

    fn owned(&self) -> bool {
        self.owned.unwrap_or_else(|| owns_terminal(2))
    }

    /// Says `line`: logged, and printed unless a program owns the
    /// terminal (then kept for `at_exit`). True when it was kept.
    pub fn say(&mut self, line: &str) -> bool {
        if let Some(f) = self.log.as_mut() {
            let _ = writeln!(f, "{} {line}", utc_now());
        }
        if !self.owned() {
            eprintln!("{line}");
            return false;
        }
        if self.deferred.len() < MAX_DEFERRED {
            self.deferred.push(line.to_string());
        } else {
            self.more += 1;
        }
        true
    }

    /// The notices kept during the run, for after the program exited.
    pub fn at_exit(&mut self) -> Vec<String> {
        let kept = std::mem::take(&mut self.deferred);
        let mut out: Vec<String> = kept.iter().take(SHOWN_AT_EXIT).cloned().collect();
        let more = kept.len().saturating_sub(SHOWN_AT_EXIT) + std::mem::take(&mut self.more);
        if more > 0 {
            let where_ = match &self.log_path {
                Some(p) => format!(" (all in {})", p.display()),
                None => String::new(),
            };
            out.push(format!(
                "jail: {more} more notice(s) during the run{where_}"
            ));
        }
        out
    }
}

/// Now, as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    utc(secs)
}

/// Seconds since the epoch as a UTC date and time (days to a civil
/// date: H. Hinnant's algorithm).
fn utc(secs: u64) -> String {
    let (days, rem) = ((secs / 86400) as i64, secs % 86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_643_723), "2026-12-07T11:42:03Z");
    }

    #[test]
    fn notices_wait_while_a_program_owns_the_terminal() {
        let mut n = Notices {
            owned: Some(true),
            ..Notices::default()
        };
        assert!(n.say("jail: net: denied a.test (not in the allowlist)"));
        for i in 0..(SHOWN_AT_EXIT + 5) {
            n.say(&format!("line {i}"));
        }
        let out = n.at_exit();
        assert_eq!(out.len(), SHOWN_AT_EXIT + 1);
        assert_eq!(out[0], "jail: net: denied a.test (not in the allowlist)");
        assert_eq!(out.last().unwrap(), "jail: 6 more notice(s) during the run");
        assert!(n.at_exit().is_empty(), "said once");
        let mut free = Notices {
            owned: Some(false),
            ..Notices::default()
        };
        assert!(!free.say("jail: net: x"), "printed at once");
        assert!(free.at_exit().is_empty());
    }

    #[test]
    fn a_pipe_is_no_terminal() {
        let (r, w) = crate::sys::pipe().unwrap();
        assert!(!owns_terminal(r) && !is_terminal(w));
        crate::sys::close(r);
        crate::sys::close(w);
    }
}
