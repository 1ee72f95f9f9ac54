//! When the program cannot be started inside the jail, say whether the
//! jail is the cause, and what would fix it. Worked out in the launcher
//! after pid 1's report, from host facts (the child only reports an errno
//! and which candidate path existed inside: no allocation there).
//!
//! - not found inside, but on the host: where it is, and the `--ro` that
//!   would show it (a venv or toolchain prefix rather than its `bin/`);
//! - found inside, but execve said ENOENT: the kernel could not find its
//!   interpreter (the `#!` line, or an ELF loader); named as such;
//! - found nowhere: a plain "command not found", not the jail's doing.

use std::path::{Path, PathBuf};

use super::plan::{Plan, Step};

/// What the launcher knows when the exec failed.
pub struct ExecFailure<'a> {
    /// The command as given (`pytest`, `./run.sh`).
    pub cmd: &'a str,
    /// The paths tried inside, in order (PATH search done before fork).
    pub candidates: &'a [PathBuf],
    /// 1 + the index of the candidate that exists inside the jail (0: none).
    pub found_inside: u32,
    pub errno: i32,
    /// The jail's PATH.
    pub path: Option<&'a str>,
    pub cwd: &'a Path,
    pub home: &'a Path,
    /// Paths the profile hides (no `--ro` can show them).
    pub hidden: &'a [PathBuf],
}

/// The one-line message (without `jail: `) and the exit status.
pub fn exec_failure(f: &ExecFailure, plan: &Plan) -> (String, i32) {
    let cmd = f.cmd;
    if f.errno != libc::ENOENT && f.errno != libc::ENOTDIR {
        let what = super::diagnose::errno_text(f.errno).to_lowercase();
        return (format!("{cmd}: {what}"), 126);
    }
    if f.found_inside > 0 {
        if let Some(c) = f.candidates.get(f.found_inside as usize - 1) {
            return (interpreter_missing(f, c, plan), 126);
        }
    }
    match crate::host::find_command(cmd, f.path, f.cwd) {
        Some(p) => (not_shown(f, &p, plan), 127),
        None => (format!("{cmd}: command not found"), 127),
    }
}

/// `cmd` exists on the host at `p`, but not in the jail.
fn not_shown(f: &ExecFailure, p: &Path, plan: &Plan) -> String {
    let mut msg = format!(
        "{}: not found in the jail; on the host it is {}",
        f.cmd,
        show(p, f.home)
    );
    msg.push_str(&fix(f, p, plan));
    msg
}

/// `c` exists inside, but the kernel said ENOENT: its interpreter is missing.
fn interpreter_missing(f: &ExecFailure, c: &Path, plan: &Plan) -> String {
    let Some(interp) = shebang(c) else {
        return format!(
            "{}: {} is in the jail but cannot be started: its ELF interpreter (dynamic loader) is not in the jail",
            f.cmd,
            show(c, f.home)
        );
    };
    let mut msg = format!(
        "{}: its interpreter {} (the #! line of {}) ",
        f.cmd,
        show(&interp, f.home),
        show(c, f.home)
    );
    if interp.exists() {
        msg.push_str("is not in the jail");
        msg.push_str(&fix(f, &interp, plan));
    } else {
        msg.push_str("does not exist, on the host either");
    }
    msg
}

/// ` (add --ro DIR)`, or why no option helps.
fn fix(f: &ExecFailure, p: &Path, plan: &Plan) -> String {
    if let Some(h) = f
        .hidden
        .iter()
        .find(|h| p.starts_with(h) || canonical(p).starts_with(h))
    {
        return format!(", under {}, which the profile hides", show(h, f.home));
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    for q in [p.to_path_buf(), canonical(p)] {
        if !visible(plan, &q) {
            let d = prefix(&q, f.home);
            if !dirs.iter().any(|x| d.starts_with(x)) {
                dirs.push(d);
            }
        }
    }
    if dirs.is_empty() {
        return String::new();
    }
    let opts: Vec<String> = dirs
        .iter()
        .map(|d| format!("--ro {}", quote(&show(d, f.home))))
        .collect();
    format!(" (add {})", opts.join(" "))
}

/// The directory to show for an executable at `p`: the prefix above a
/// `bin` directory (a venv, a toolchain: it needs its lib/ too), else its
/// own directory. Never the home itself or `/`.
fn prefix(p: &Path, home: &Path) -> PathBuf {
    let dir = p.parent().unwrap_or(Path::new("/"));
    if dir.file_name().is_some_and(|n| n == "bin") {
        if let Some(up) = dir.parent() {
            if up != home && up != Path::new("/") && up.parent().is_some() {
                return up.to_path_buf();
            }
        }
    }
    dir.to_path_buf()
}

/// Whether the plan shows host path `p` inside: the deepest step at or
/// above it is a bind (a tmpfs above it shows nothing of the host).
fn visible(plan: &Plan, p: &Path) -> bool {
    let mut best: Option<(usize, bool)> = None;
    for s in &plan.steps {
        let (dest, shows) = match s {
            // A bind shows the host's path only when it binds it onto
            // itself (the persistent home is jail's own directory).
            Step::Bind { src, dest, .. } => (dest, src == dest),
            Step::Overlay { lower, dest, .. } => (dest, lower == dest),
            Step::Tmpfs { dest, .. } => (dest, false),
            _ => continue,
        };
        if p.starts_with(dest) {
            let depth = dest.components().count();
            if best.is_none_or(|(d, _)| depth >= d) {
                best = Some((depth, shows));
            }
        }
    }
    best.is_some_and(|(_, shows)| shows)
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The interpreter named by a `#!` line, if the file starts with one.
fn shebang(p: &Path) -> Option<PathBuf> {
    use std::io::Read;
    let mut buf = [0u8; 256];
    let n = std::fs::File::open(p).ok()?.read(&mut buf).ok()?;
    let head = buf[..n].strip_prefix(b"#!")?;
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim();
    let interp = line.split_whitespace().next()?;
    interp.starts_with('/').then(|| PathBuf::from(interp))
}

/// `~/x` for paths in the home, as the user would type them.
fn show(p: &Path, home: &Path) -> String {
    match p.strip_prefix(home) {
        Ok(rest) if home != Path::new("/") => format!("~/{}", rest.display()),
        _ => p.display().to_string(),
    }
}

/// `s` quoted for a POSIX shell when it needs it.
pub fn quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/~._-+@:".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn plan(binds: &[&str], tmpfs: &[&str]) -> Plan {
        let mut steps: Vec<Step> = tmpfs
            .iter()
            .map(|d| Step::Tmpfs {
                dest: d.into(),
                mode: 0o755,
            })
            .collect();
        steps.extend(binds.iter().map(|d| Step::Bind {
            src: d.into(),
            dest: d.into(),
            dir: true,
            ro: true,
        }));
        Plan {
            steps,
            ..Plan::default()
        }
    }

    #[test]
    fn visibility_follows_the_deepest_step() {
        let p = plan(&["/usr", "/h/.cargo/bin"], &["/h", "/tmp"]);
        assert!(visible(&p, Path::new("/usr/bin/python3")));
        assert!(visible(&p, Path::new("/h/.cargo/bin/cargo")));
        assert!(!visible(&p, Path::new("/h/venv/bin/pytest")));
        assert!(!visible(&p, Path::new("/opt/x")));
    }

    #[test]
    fn prefix_is_above_bin_but_never_home() {
        let home = Path::new("/h");
        assert_eq!(
            prefix(Path::new("/h/venv/bin/pytest"), home),
            Path::new("/h/venv")
        );
        assert_eq!(prefix(Path::new("/h/bin/tool"), home), Path::new("/h/bin"));
        assert_eq!(prefix(Path::new("/h/tools/x"), home), Path::new("/h/tools"));
        assert_eq!(prefix(Path::new("/bin/x"), home), Path::new("/bin"));
        assert_eq!(show(Path::new("/h/venv"), home), "~/venv");
        assert_eq!(quote("~/my venv"), "'~/my venv'");
    }

    #[test]
    fn messages_name_the_jail_only_when_it_is_the_cause() {
        let base = std::env::temp_dir().join(format!("jail-hint-{}", std::process::id()));
        let home = base.join("home");
        let venv = home.join("venv/bin");
        std::fs::create_dir_all(&venv).unwrap();
        let tool = venv.join("pytest");
        std::fs::write(&tool, format!("#!{}/python\nimport x\n", venv.display())).unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = venv.display().to_string();
        let candidates = vec![tool.clone()];
        let p = plan(&["/usr"], &[home.to_str().unwrap()]);
        let mut f = ExecFailure {
            cmd: "pytest",
            candidates: &candidates,
            found_inside: 0,
            errno: libc::ENOENT,
            path: Some(&path),
            cwd: &base,
            home: &home,
            hidden: &[],
        };
        let (msg, code) = exec_failure(&f, &p);
        assert_eq!(code, 127);
        assert_eq!(
            msg,
            "pytest: not found in the jail; on the host it is ~/venv/bin/pytest (add --ro ~/venv)"
        );
        // Shown, but its interpreter is not there (on the host either).
        f.found_inside = 1;
        let (msg, code) = exec_failure(&f, &p);
        assert_eq!(code, 126);
        assert_eq!(
            msg,
            "pytest: its interpreter ~/venv/bin/python (the #! line of ~/venv/bin/pytest) does not exist, on the host either"
        );
        std::os::unix::fs::symlink("/usr/bin/env", venv.join("python")).unwrap();
        let (msg, _) = exec_failure(&f, &p);
        assert!(
            msg.ends_with("is not in the jail (add --ro ~/venv)"),
            "{msg}"
        );
        // Hidden: no option would show it.
        let hidden = [home.join("venv")];
        f.found_inside = 0;
        f.hidden = &hidden;
        let (msg, _) = exec_failure(&f, &p);
        assert!(
            msg.ends_with(", under ~/venv, which the profile hides"),
            "{msg}"
        );
        // Nowhere at all.
        f.cmd = "no-such-tool";
        assert_eq!(exec_failure(&f, &p).0, "no-such-tool: command not found");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
