//! Test harness: runs the real `jail` binary as an unprivileged user.
//!
//! As root (CI), every jail runs as the user `jailtest` (created if
//! missing) through `setpriv`, so the tests prove unprivileged use. As a
//! normal user, they run as that user. Each test gets its own directory
//! tree under /tmp/jail-tests with a fake home (holding fake secrets) and a
//! project, owned by the test user.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

pub const TEST_USER: &str = "jailtest";
pub const PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// True when we are root and switch to `name` for every run.
    pub switch: bool,
}

fn id(flag: &str, name: &str) -> Option<u32> {
    let out = Command::new("id").arg(flag).arg(name).output().ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// The unprivileged user tests run jails as.
pub fn user() -> &'static User {
    static U: OnceLock<User> = OnceLock::new();
    U.get_or_init(|| {
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        if uid != 0 {
            let name = std::env::var("USER").unwrap_or_else(|_| uid.to_string());
            // SAFETY: getgid has no preconditions.
            return User {
                name,
                uid,
                gid: unsafe { libc::getgid() },
                switch: false,
            };
        }
        if id("-u", TEST_USER).is_none() {
            let st = Command::new("useradd")
                .args(["-m", "-s", "/bin/bash", TEST_USER])
                .status();
            assert!(
                matches!(st, Ok(s) if s.success()),
                "cannot create test user {TEST_USER}"
            );
        }
        User {
            name: TEST_USER.into(),
            uid: id("-u", TEST_USER).expect("uid"),
            gid: id("-g", TEST_USER).expect("gid"),
            switch: true,
        }
    })
}

/// The jail binary, where the test user can execute it.
pub fn jail_bin() -> &'static Path {
    static B: OnceLock<PathBuf> = OnceLock::new();
    B.get_or_init(|| {
        let built = PathBuf::from(env!("CARGO_BIN_EXE_jail"));
        if !user().switch {
            return built;
        }
        // /root is not traversable by the test user: copy the binary out.
        let dir = PathBuf::from(format!("/tmp/jail-tests/bin-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let dst = dir.join("jail");
        fs::copy(&built, &dst).unwrap();
        fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).unwrap();
        dst
    })
}

/// A per-test tree: `root/home` (the user's $HOME) and `root/project`.
pub struct Sandbox {
    pub root: PathBuf,
    pub home: PathBuf,
    pub project: PathBuf,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        let base = Path::new("/tmp/jail-tests");
        fs::create_dir_all(base).unwrap();
        let _ = fs::set_permissions(base, fs::Permissions::from_mode(0o1777));
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let root = base.join(format!("{name}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let sb = Sandbox {
            home: root.join("home"),
            project: root.join("project"),
            root,
        };
        sb.mkdir(&sb.root);
        sb.mkdir(&sb.home);
        sb.mkdir(&sb.project);
        sb
    }

    /// A sandbox whose home holds the usual credentials (fake ones).
    pub fn with_secrets(name: &str) -> Sandbox {
        let sb = Sandbox::new(name);
        sb.write(sb.home.join(".ssh/id_ed25519"), "FAKE-SSH-KEY");
        sb.write(
            sb.home.join(".aws/credentials"),
            "[default]\naws_secret_access_key=FAKE",
        );
        sb.write(sb.home.join(".netrc"), "machine x login u password FAKE");
        sb.write(sb.home.join(".gnupg/private-keys-v1.d/k.key"), "FAKE-GPG");
        sb.write(sb.home.join(".config/gh/hosts.yml"), "oauth_token: FAKE");
        sb.write(sb.home.join(".gitconfig"), "[user]\nname = t\n");
        sb.write(sb.home.join("other-project/notes.txt"), "PRIVATE-NOTES");
        sb
    }

    /// Creates a directory (and parents) owned by the test user.
    pub fn mkdir(&self, p: impl AsRef<Path>) {
        let p = p.as_ref();
        fs::create_dir_all(p).unwrap();
        let mut cur = p.to_path_buf();
        while cur.starts_with(&self.root) {
            own(&cur);
            if !cur.pop() {
                break;
            }
        }
    }

    /// Writes a file (creating parents) owned by the test user.
    pub fn write(&self, p: impl AsRef<Path>, content: &str) {
        let p = p.as_ref();
        self.mkdir(p.parent().unwrap());
        fs::write(p, content).unwrap();
        own(p);
    }

    /// `jail ARGS...` as the test user, in the project, with a clean env.
    pub fn jail(&self, args: &[&str]) -> Output {
        self.jail_cmd(args).output().unwrap()
    }

    /// A `jail ARGS...` command to adjust (cwd, env, stdin) before running.
    pub fn jail_cmd(&self, args: &[&str]) -> Command {
        let mut c = self.as_user(jail_bin().as_os_str());
        c.args(args);
        c
    }

    /// Runs `prog` as the test user outside any jail (for "the attack works
    /// without the jail" checks).
    pub fn as_user(&self, prog: &OsStr) -> Command {
        let u = user();
        let mut c = if u.switch {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={}", u.uid))
                .arg(format!("--regid={}", u.gid))
                .arg("--clear-groups")
                .arg("--")
                .arg(prog);
            c
        } else {
            Command::new(prog)
        };
        c.env_clear()
            .env("HOME", &self.home)
            .env("USER", &u.name)
            .env("LOGNAME", &u.name)
            .env("PATH", PATH)
            .env("LANG", "C.UTF-8")
            .env("SHELL", "/bin/sh")
            .current_dir(&self.project)
            .stdin(Stdio::null());
        c
    }

    /// `sh -c SCRIPT` as the test user outside any jail.
    pub fn host_sh(&self, script: &str) -> Output {
        let mut c = self.as_user(OsStr::new("/bin/sh"));
        c.arg("-c").arg(script);
        c.output().unwrap()
    }

    /// `jail [opts] -- sh -c SCRIPT`.
    pub fn jail_sh(&self, opts: &[&str], script: &str) -> Output {
        let mut args: Vec<&str> = opts.to_vec();
        args.extend(["--", "sh", "-c", script]);
        self.jail(&args)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn own(p: &Path) {
    let u = user();
    if u.switch {
        chown(p, Some(u.uid), Some(u.gid)).unwrap();
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the run exited with `code`, showing its output otherwise.
#[track_caller]
pub fn assert_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
        stdout(o),
        stderr(o)
    );
}

/// A root-owned site directory passed by JAIL_SITE_DIR. Only root can make
/// one, so tests using it are skipped (with a reason) as a normal user.
pub struct SiteDir {
    pub dir: PathBuf,
}

static SITE_N: AtomicUsize = AtomicUsize::new(0);

impl SiteDir {
    pub fn new(jail_toml: &str) -> Option<SiteDir> {
        if !user().switch {
            skip(
                Lack::Setup,
                "a root-owned site directory needs the tests to run as root",
            );
            return None;
        }
        let n = SITE_N.fetch_add(1, Ordering::SeqCst);
        let dir = PathBuf::from(format!("/tmp/jail-tests/site-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let site = SiteDir { dir };
        site.write("jail.toml", jail_toml);
        Some(site)
    }

    pub fn file(&self) -> PathBuf {
        self.dir.join("jail.toml")
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::set_permissions(p.parent().unwrap(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    }
}

impl Drop for SiteDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// `jail ARGS...` with the site directory `site`.
pub fn with_site(sb: &Sandbox, site: &Path, args: &[&str]) -> Output {
    sb.jail_cmd(args)
        .env("JAIL_SITE_DIR", site)
        .output()
        .unwrap()
}

/// Runs `argv` as the test user on a pty of `rows`x`cols` driven by
/// tests/helpers/pty_drive.py with `script`, `env` set (TERM=xterm
/// always); returns the driver's output, asserting it succeeded.
pub fn pty_drive(
    sb: &Sandbox,
    rows: u16,
    cols: u16,
    argv: &[&str],
    env: &[(&str, &str)],
    script: &str,
) -> String {
    use std::io::Write;
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/helpers/pty_drive.py");
    let copy = sb.root.join("pty_drive.py");
    fs::copy(&driver, &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o644)).unwrap();
    let mut c = sb.as_user(OsStr::new("python3"));
    c.arg(&copy)
        .arg(rows.to_string())
        .arg(cols.to_string())
        .arg("--")
        .args(argv)
        .env("TERM", "xterm")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let out = stdout(&o);
    assert!(
        o.status.success(),
        "pty session failed:\n{out}\n{}",
        stderr(&o)
    );
    out
}

/// Why a test could not run. `Machine`: this machine truly lacks the thing
/// (a GPU, a delegated cgroup, a kernel feature or architecture); a skip
/// for it is allowed under CI. `Setup`: something a test run should bring
/// (a package, root, Slurm); under CI=true such a skip is a failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lack {
    Machine,
    Setup,
}

/// Skips the calling test: says why, and records it where `cargo xtask ci`
/// counts skipped tests apart from passed ones (libtest has no runtime
/// skip; a test that returns early would otherwise count as passed). The
/// caller returns right after. Under CI=true a `Setup` skip panics instead.
pub fn skip(lack: Lack, why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed")
        .to_string();
    if lack == Lack::Setup && std::env::var_os("CI").is_some() {
        panic!("CI=true, but this test cannot run: {why} (.ci/run must provide it)");
    }
    eprintln!("SKIPPED: {why}");
    let dir = skips_dir();
    let _ = fs::create_dir_all(&dir);
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    // One file per skipped test: parallel tests never write the same file.
    let name: String = format!("{exe}-{}-{test}", std::process::id())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let kind = match lack {
        Lack::Machine => "machine",
        Lack::Setup => "setup",
    };
    let _ = fs::write(
        dir.join(name),
        format!(
            "{kind}\t{}\t{test}\t{}\n",
            exe.split('-').next().unwrap_or(""),
            why.replace('\n', " ")
        ),
    );
}

/// Where skips are recorded: `cargo xtask ci` reads (and first empties) it.
pub fn skips_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("jail-skips")
}
