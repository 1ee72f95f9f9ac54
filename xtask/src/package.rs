//! `cargo xtask package [--check] [--out DIR]`: a .deb (cargo-deb) and an
//! .rpm (cargo-generate-rpm) of the release binary, the man pages, the
//! shell completions, the AppArmor profile and the commented site policy
//! /etc/jail/jail.toml (a conffile), as `[package.metadata.deb]` and
//! `[package.metadata.generate-rpm]` in Cargo.toml describe them.
//!
//! The two tools are binaries (cargo-generate-rpm has no library), pinned
//! here and installed once with `cargo install --locked` into
//! ~/.cache/jail-xtask/pkg-tools, unless that exact version is on PATH.
//!
//! `--check` proves the packages on this machine: the .rpm's file list,
//! scriptlets and dependencies with `rpm`; the .deb installed with apt,
//! `jail doctor` and a jail run as the test user from /usr/bin/jail, an
//! upgrade to a rebuilt package that keeps an edited /etc/jail/jail.toml,
//! removal (nothing of jail left but the conffile) and purge; the
//! modulefile loaded with Lmod. The .deb's life runs in a private mount
//! namespace whose /etc, /usr and /var are copy-on-write layers over the
//! machine's own (real dpkg, real database, real maintainer scripts), so
//! tests running in parallel never see /usr/bin/jail or /etc/jail (which
//! would switch JAIL_SITE_DIR off for them), and nothing stays behind even
//! if the check is killed; the machine's state is compared before and after.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const USAGE: &str =
    "usage: cargo xtask package [--check] [--out DIR]   (default DIR: target/package)";

/// A packaging tool, pinned.
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
}

pub const CARGO_DEB: Tool = Tool {
    name: "cargo-deb",
    version: "3.8.0",
};
pub const CARGO_GENERATE_RPM: Tool = Tool {
    name: "cargo-generate-rpm",
    version: "0.21.1",
};

/// Where the tools are installed: a cache outside the checkout, so that a
/// fresh clone on the same machine (CI) does not compile them again, and
/// apart from ~/.cargo/bin, so that a developer's own cargo-deb stays.
fn tools_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| crate::root().join("target"));
    cache.join("jail-xtask/pkg-tools")
}
/// The test user the tests run jails as (tests/common).
pub(crate) const TEST_USER: &str = "jailtest";
/// The hidden subcommand that runs the .deb's life in the private namespace.
pub const DEB_CHECK: &str = "__package-deb-check";

/// The machine's architecture as Debian and RPM name it: the tools build
/// for the host (x86_64 here; a native aarch64 build gives arm64/aarch64).
fn arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => ("arm64", "aarch64"),
        _ => ("amd64", "x86_64"),
    }
}

/// The packages one run built.
pub struct Packages {
    pub version: String,
    pub deb: PathBuf,
    /// The same package with the next Debian revision (the upgrade).
    pub deb_next: Option<PathBuf>,
    pub rpm: PathBuf,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let mut check = false;
    let mut out = crate::root().join("target/package");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--check" => check = true,
            "--out" => {
                let dir = PathBuf::from(it.next().ok_or(USAGE)?);
                // The tools run in the workspace root.
                out = std::env::current_dir()
                    .map_err(|e| format!("current directory: {e}"))?
                    .join(dir);
            }
            _ => return Err(USAGE.into()),
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::run_cmd(&cargo, &["build", "--release", "--locked", "-p", "jail"])?;
    let pkgs = build(&out, check)?;
    println!("package: {}", pkgs.deb.display());
    println!("package: {}", pkgs.rpm.display());
    if check {
        self::check(&pkgs)?;
    }
    Ok(())
}

/// Builds the .deb and the .rpm into `out` from target/release/jail (built
/// already); with `upgrade`, also the .deb of the next revision, in
/// `out/check/`.
pub fn build(out: &Path, upgrade: bool) -> Result<Packages, String> {
    let root = crate::root();
    let binary = root.join("target/release/jail");
    let version = jail_version(&binary)?;
    let deb_tool = tool(&CARGO_DEB)?;
    let rpm_tool = tool(&CARGO_GENERATE_RPM)?;
    // The installed binaries are all that is needed (the build is ~0.5 GB).
    let _ = std::fs::remove_dir_all(tools_dir().join("build"));
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let deb = |revision: &str, dir: &Path| -> Result<PathBuf, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let file = dir.join(format!("jail_{version}-{revision}_{}.deb", arch().0));
        let t = Instant::now();
        // --no-strip: the release profile strips already.
        run_quiet(
            Command::new(&deb_tool)
                .args(["--no-build", "--no-strip", "--locked", "-p", "jail"])
                .args(["--deb-revision", revision, "--output"])
                .arg(&file)
                .current_dir(&root),
        )?;
        println!(
            "package: built {} in {:.1} s",
            file.display(),
            t.elapsed().as_secs_f64()
        );
        Ok(file)
    };
    let deb_file = deb("1", out)?;
    let deb_next = if upgrade {
        Some(deb("2", &out.join("check"))?)
    } else {
        None
    };
    let rpm = out.join(format!("jail-{version}-1.{}.rpm", arch().1));
    let t = Instant::now();
    run_quiet(
        Command::new(&rpm_tool)
            .arg("--target-dir")
            .arg(root.join("target"))
            .arg("--output")
            .arg(&rpm)
            .current_dir(&root),
    )?;
    println!(
        "package: built {} in {:.1} s",
        rpm.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(Packages {
        version,
        deb: deb_file,
        deb_next,
        rpm,
    })
}

/// `jail 0.1.0` → `0.1.0`.
fn jail_version(binary: &Path) -> Result<String, String> {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .filter(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .ok_or_else(|| format!("{} --version printed {text:?}", binary.display()))
}

fn version_of(program: &Path) -> Option<String> {
    let out = Command::new(program)
        .arg("--version")
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .next()?
        .split_whitespace()
        .last()
        .map(str::to_string)
}

/// The pinned tool: from the tools cache, else PATH, else installed into
/// the cache with `cargo install --locked`.
fn tool(t: &Tool) -> Result<PathBuf, String> {
    let root = crate::root();
    let tools = tools_dir();
    let local = tools.join("bin").join(t.name);
    for cand in [local.clone(), PathBuf::from(t.name)] {
        if version_of(&cand).as_deref() == Some(t.version) {
            return Ok(cand);
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let spec = format!("{}@{}", t.name, t.version);
    let build = tools.join("build");
    let start = Instant::now();
    eprintln!(
        "$ {cargo} install --locked --root {} {spec}",
        tools.display()
    );
    // Compiled once per machine, on 2 cores in CI: opt-level 0 halves the
    // time cargo-generate-rpm's dependencies take (its PGP signing, unused
    // here, is most of them) and still packs a 4 MB binary in seconds;
    // cargo-deb's own profile keeps xz and its other hot crates at
    // opt-level 2. Both share one build directory, removed afterwards.
    let status = Command::new(&cargo)
        .args(["install", "--locked", "--root"])
        .arg(&tools)
        .arg(&spec)
        .env("CARGO_TARGET_DIR", &build)
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0")
        .env("CARGO_PROFILE_RELEASE_LTO", "false")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .current_dir(&root)
        .status()
        .map_err(|e| format!("{cargo} install: {e}"))?;
    if !status.success() {
        return Err(format!("`cargo install --locked {spec}` failed: {status}"));
    }
    println!(
        "package: installed {spec} into {} in {:.0} s",
        tools.display(),
        start.elapsed().as_secs_f64()
    );
    match version_of(&local) {
        Some(v) if v == t.version => Ok(local),
        v => Err(format!(
            "{}: version {v:?} after installing {spec}",
            local.display()
        )),
    }
}

/// Runs a command, showing its output only when it fails.
fn run_quiet(c: &mut Command) -> Result<String, String> {
    let what = format!("{c:?}");
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{what} failed ({}):\n{text}", out.status))
    }
}

/// Standard output of `program args`, or why it failed.
fn stdout_of(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{program} {}` failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs the named checks, each one's result on a line; all are run.
pub(crate) struct Steps {
    failed: Vec<String>,
    passed: usize,
    skipped: usize,
}

impl Steps {
    pub(crate) fn new() -> Steps {
        Steps {
            failed: Vec::new(),
            passed: 0,
            skipped: 0,
        }
    }

    pub(crate) fn run(&mut self, name: &str, f: impl FnOnce() -> Result<Outcome, String>) -> bool {
        let t = Instant::now();
        let r = f();
        let secs = t.elapsed().as_secs_f64();
        match r {
            Ok(Outcome::Passed) => {
                println!("package check: ok    {name} ({secs:.1} s)");
                self.passed += 1;
                true
            }
            Ok(Outcome::Skipped(why)) => {
                println!("package check: SKIP  {name}: {why}");
                self.skipped += 1;
                true
            }
            Err(e) => {
                println!("package check: FAIL  {name} ({secs:.1} s): {e}");
                self.failed.push(format!("{name}: {e}"));
                false
            }
        }
    }

    pub(crate) fn result(self, what: &str) -> Result<(), String> {
        println!(
            "{what}: {} passed, {} failed, {} skipped",
            self.passed,
            self.failed.len(),
            self.skipped
        );
        if self.failed.is_empty() {
            Ok(())
        } else {
            Err(format!("{what} failed:\n  {}", self.failed.join("\n  ")))
        }
    }
}

pub(crate) enum Outcome {
    Passed,
    Skipped(String),
}

fn passed(r: Result<(), String>) -> Result<Outcome, String> {
    r.map(|()| Outcome::Passed)
}

/// A skip: fails under CI=true (the machine has what CI installs).
pub(crate) fn skip(why: String) -> Result<Outcome, String> {
    if std::env::var_os("CI").is_some() {
        Err(format!("{why} (under CI this must run)"))
    } else {
        Ok(Outcome::Skipped(why))
    }
}

pub(crate) fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        || Path::new(program).is_file()
}

/// `cargo xtask package --check` after `build(.., true)`.
pub fn check(p: &Packages) -> Result<(), String> {
    let root = crate::root();
    let mut steps = Steps::new();
    steps.run("deb control: depends, suggests, conffiles", || {
        if !have("dpkg-deb") {
            return skip("dpkg-deb is not installed".into());
        }
        passed(check_deb_control(&p.deb))
    });
    steps.run("rpm: file list, config files, scriptlets, requires", || {
        if !have("rpm") {
            return skip("rpm is not installed (Debian package `rpm`)".into());
        }
        passed(check_rpm(&p.rpm, &root))
    });
    steps.run("modulefile with Lmod: PATH and MANPATH", || {
        if !Path::new(LMOD_INIT).is_file() {
            return skip(format!("Lmod is not installed ({LMOD_INIT})"));
        }
        passed(check_lmod(&root, &p.version))
    });
    steps.run("spack recipe parses (python3)", || {
        let recipe = root.join("contrib/spack/packages/jail/package.py");
        let script = "import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])";
        let r = stdout_of("python3", &["-c", script, &recipe.display().to_string()]);
        passed(r.map(|_| ()))
    });
    steps.run("install, jail as the test user, upgrade, remove, purge (.deb; .rpm too)", || {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return skip("installing the .deb needs root".into());
        }
        let Some(next) = &p.deb_next else {
            return Err("no upgrade package was built".into());
        };
        let before = machine_state();
        let exe = std::env::current_exe().map_err(|e| format!("xtask's own path: {e}"))?;
        // The overlays' mount point (a tmpfs in the namespace).
        let scratch = std::env::temp_dir().join(format!("jail-package-check-{}", std::process::id()));
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        // A private mount namespace: what dpkg does there is gone with it.
        let status = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--"])
            .arg(&exe)
            .arg(DEB_CHECK)
            .arg(&p.deb)
            .arg(next)
            .arg(&p.rpm)
            .arg(&p.version)
            .arg(&scratch)
            .status()
            .map_err(|e| format!("unshare: {e}"));
        let _ = std::fs::remove_dir(&scratch);
        let status = status?;
        let mut after = machine_state();
        // The one thing a mount namespace cannot hold back: the kernel's
        // AppArmor profiles (where AppArmor is on, the scripts load and
        // unload jail's). Put back a profile the machine had loaded.
        let loaded = "AppArmor profile jail loaded: true";
        if before.contains(loaded) && !after.contains(loaded) {
            let r = stdout_of("apparmor_parser", &["-r", "/etc/apparmor.d/jail"]);
            println!("package check: reloaded the machine's AppArmor profile jail: {r:?}");
            after = machine_state();
        }
        if before != after {
            return Err(format!(
                "the machine changed:\nbefore:\n{before}\nafter:\n{after}"
            ));
        }
        println!("package check: the machine is as before (/etc/jail, /usr/bin/jail, dpkg's record, AppArmor)");
        if status.success() {
            Ok(Outcome::Passed)
        } else {
            Err(format!("the steps above failed ({status})"))
        }
    });
    steps.result("package check")
}

/// What the .deb check must leave as it found it.
fn machine_state() -> String {
    use std::os::unix::fs::MetadataExt;
    let mut s = String::new();
    for p in [
        "/etc/jail",
        "/etc/jail/jail.toml",
        "/etc/jail/profiles",
        "/usr/bin/jail",
        "/etc/apparmor.d/jail",
        "/usr/share/jail",
    ] {
        let line = match std::fs::symlink_metadata(p) {
            Ok(m) => format!(
                "{p}: ino {} mode {:o} size {} mtime {}",
                m.ino(),
                m.mode(),
                m.size(),
                m.mtime()
            ),
            Err(e) => format!("{p}: {}", e.kind()),
        };
        s.push_str(&line);
        s.push('\n');
    }
    let dpkg = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev} ${Version}", "jail"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    s.push_str(&format!("dpkg jail: {dpkg:?}\n"));
    let aa = std::fs::read_to_string("/sys/kernel/security/apparmor/profiles")
        .map(|t| t.lines().any(|l| l.starts_with("jail ")))
        .unwrap_or(false);
    s.push_str(&format!("AppArmor profile jail loaded: {aa}\n"));
    s
}

fn check_deb_control(deb: &Path) -> Result<(), String> {
    let deb = deb.display().to_string();
    let field = |f: &str| -> Result<String, String> {
        Ok(stdout_of("dpkg-deb", &["-f", &deb, f])?.trim().to_string())
    };
    let depends = field("Depends")?;
    let names: Vec<&str> = depends
        .split(',')
        .map(|d| d.split_whitespace().next().unwrap_or(""))
        .collect();
    if !names.contains(&"libc6") || names.iter().any(|n| !["libc6", "libgcc-s1"].contains(n)) {
        return Err(format!("Depends: {depends} (expected the C library only)"));
    }
    for (f, want) in [
        ("Recommends", ""),
        ("Suggests", "apparmor"),
        ("Architecture", arch().0),
    ] {
        let got = field(f)?;
        if got != want {
            return Err(format!("{f}: {got:?}, expected {want:?}"));
        }
    }
    let conffiles = stdout_of("dpkg-deb", &["-I", &deb, "conffiles"])?;
    if conffiles.trim() != "/etc/jail/jail.toml" {
        return Err(format!(
            "conffiles: {conffiles:?}, expected /etc/jail/jail.toml only"
        ));
    }
    Ok(())
}

/// The files both packages hold, from the repository's own lists.
fn packaged_files(root: &Path, zsh: &str) -> Result<BTreeSet<String>, String> {
    let mut files: BTreeSet<String> = [
        "/usr/bin/jail",
        "/usr/share/man/man5/jail.toml.5",
        "/usr/share/bash-completion/completions/jail",
        "/usr/share/fish/vendor_completions.d/jail.fish",
        "/usr/share/jail/apparmor/jail",
        "/etc/jail/jail.toml",
        "/usr/share/doc/jail/README.md",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    files.insert(zsh.to_string());
    for (dir, ext, dest) in [
        ("man", ".1", "/usr/share/man/man1"),
        ("docs", ".md", "/usr/share/doc/jail"),
    ] {
        let rd = std::fs::read_dir(root.join(dir)).map_err(|e| format!("{dir}: {e}"))?;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(ext) {
                files.insert(format!("{dest}/{name}"));
            }
        }
    }
    Ok(files)
}

fn check_rpm(rpm: &Path, root: &Path) -> Result<(), String> {
    let rpm = rpm.display().to_string();
    let q = |args: &[&str]| -> Result<String, String> {
        let mut a = vec!["-qp"];
        a.extend_from_slice(args);
        a.push(&rpm);
        stdout_of("rpm", &a)
    };
    let listed: BTreeSet<String> = q(&["-l"])?.lines().map(String::from).collect();
    let mut want = packaged_files(root, "/usr/share/zsh/site-functions/_jail")?;
    // RPM-family place for the license text.
    want.insert("/usr/share/licenses/jail/LICENSE".into());
    if listed != want {
        return Err(format!(
            "rpm -qlp: missing {:?}, unexpected {:?}",
            want.difference(&listed).collect::<Vec<_>>(),
            listed.difference(&want).collect::<Vec<_>>()
        ));
    }
    // Config files, and %config(noreplace) ('n') for the site policy.
    let flags = q(&["--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\\n]"])?;
    let config: Vec<&str> = flags
        .lines()
        .filter(|l| l.rsplit(' ').next().is_some_and(|f| f.contains('c')))
        .collect();
    if config != ["/etc/jail/jail.toml cn"] {
        return Err(format!(
            "config files and flags: {config:?}, expected [\"/etc/jail/jail.toml cn\"]"
        ));
    }
    let modes = q(&[
        "--qf",
        "[%{FILENAMES} %{FILEMODES:perms} %{FILEUSERNAME}\\n]",
    ])?;
    if !modes.lines().any(|l| l == "/usr/bin/jail -rwxr-xr-x root") {
        return Err(format!("/usr/bin/jail is not -rwxr-xr-x root:\n{modes}"));
    }
    let scripts = q(&["--scripts"])?;
    for (head, file) in [
        ("postinstall scriptlet", "contrib/rpm/post.sh"),
        ("preuninstall scriptlet", "contrib/rpm/preun.sh"),
        ("postuninstall scriptlet", "contrib/rpm/postun.sh"),
    ] {
        let body = std::fs::read_to_string(root.join(file)).map_err(|e| format!("{file}: {e}"))?;
        let Some(at) = scripts.find(head) else {
            return Err(format!("no {head} in rpm --scripts:\n{scripts}"));
        };
        if !scripts[at..].contains(body.trim()) {
            return Err(format!("the {head} is not {file}:\n{scripts}"));
        }
    }
    for gone in ["preinstall scriptlet", "pretrans", "posttrans", "trigger"] {
        if scripts.contains(gone) {
            return Err(format!("unexpected {gone} in rpm --scripts:\n{scripts}"));
        }
    }
    let requires = q(&["-R"])?;
    const LIBS: [&str; 5] = [
        "libc.so.6",
        "libm.so.6",
        "libgcc_s.so.1",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
    ];
    let allowed = |r: &str| {
        r == "/bin/sh"
            // What rpm adds for each %config file.
            || r.starts_with("config(jail) = ")
            || r.starts_with("rpmlib(")
            || r == "rtld(GNU_HASH)"
            || LIBS.iter().any(|l| r.starts_with(l))
    };
    let reqs: Vec<&str> = requires.lines().map(str::trim).collect();
    if !reqs.contains(&"/bin/sh")
        || !reqs.iter().any(|r| r.starts_with("libc.so.6"))
        || reqs.iter().any(|r| !allowed(r))
    {
        return Err(format!(
            "rpm -qpR: expected /bin/sh and the C library only:\n{requires}"
        ));
    }
    let arch = q(&["--qf", "%{ARCH}"])?;
    if arch != self::arch().1 {
        return Err(format!("architecture {arch}, expected {}", self::arch().1));
    }
    Ok(())
}

const LMOD_INIT: &str = "/usr/share/lmod/lmod/init/bash";

/// Installs into a temporary prefix as `cargo xtask install` does, points
/// a copy of the modulefile at it (the one line an admin edits), and
/// loads it with Lmod in a clean shell.
fn check_lmod(root: &Path, version: &str) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("jail-module-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let r = lmod_in(root, version, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn lmod_in(root: &Path, version: &str, dir: &Path) -> Result<(), String> {
    let prefix = dir.join("opt/jail").join(version);
    crate::install::install(&prefix, &root.join("target/release/jail"))?;
    let src = root.join("contrib/modules/jail").join(version);
    let text = std::fs::read_to_string(&src).map_err(|e| {
        format!(
            "{}: {e} (the modulefile is named after the version in Cargo.toml)",
            src.display()
        )
    })?;
    let set = format!("set prefix /opt/jail/{version}\n");
    if !text.contains(&set) {
        return Err(format!("{}: no line `{}`", src.display(), set.trim()));
    }
    let modules = dir.join("modulefiles");
    let file = modules.join("jail").join(version);
    std::fs::create_dir_all(file.parent().ok_or("no parent")?).map_err(|e| e.to_string())?;
    std::fs::write(
        &file,
        text.replace(&set, &format!("set prefix {}\n", prefix.display())),
    )
    .map_err(|e| format!("{}: {e}", file.display()))?;
    let home = dir.join("home");
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let script = format!(
        r#"source {LMOD_INIT}
module use {modules}
module load jail || exit 1
echo "jail=$(command -v jail)"
echo "version=$(jail --version)"
echo "man=$(man -w jail)"
echo "manpath=$MANPATH"
echo "sysman=$(man -w 5 passwd 2>/dev/null || man -w man 2>/dev/null || echo none)"
echo "listed=$(module -t list 2>&1 | tr '\n' ' ')"
module unload jail
echo "after=$PATH"
"#,
        modules = modules.display()
    );
    let out = Command::new("bash")
        .args(["--noprofile", "--norc", "-c", &script])
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &home)
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("bash: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let value = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or("")
            .to_string()
    };
    let bin = prefix.join("bin/jail").display().to_string();
    let man = prefix.join("share/man/man1/jail.1").display().to_string();
    let problems: Vec<String> = [
        (
            value("jail") == bin,
            format!("`command -v jail` is not {bin}"),
        ),
        (
            value("version") == format!("jail {version}"),
            "`jail --version` after `module load jail`".into(),
        ),
        (value("man") == man, format!("`man -w jail` is not {man}")),
        (
            value("listed").contains(&format!("jail/{version}")),
            "`module list` does not list jail".into(),
        ),
        // The system's own pages still found (Lmod keeps MANPATH's
        // trailing `:`, which means "and the default path").
        (
            value("sysman").starts_with("/usr/share/man/"),
            "the system's man pages are lost after `module load jail`".into(),
        ),
        (
            !value("after").contains(&prefix.display().to_string()),
            "`module unload jail` left it on PATH".into(),
        ),
    ]
    .into_iter()
    .filter(|(ok, _)| !ok)
    .map(|(_, m)| m)
    .collect();
    if out.status.success() && problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}:\n{text}", problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> toml::Table {
        let text = std::fs::read_to_string(crate::root().join("Cargo.toml")).unwrap();
        toml::from_str(&text).unwrap()
    }

    /// `dir/pre*suf` (one `*` at most, in the file name) against the tree.
    fn matches(pattern: &str) -> Vec<String> {
        let (dir, name) = pattern.rsplit_once('/').unwrap_or((".", pattern));
        let (pre, suf) = name.split_once('*').unwrap_or((name, ""));
        let exact = !name.contains('*');
        let mut found = Vec::new();
        for e in std::fs::read_dir(crate::root().join(dir))
            .unwrap()
            .flatten()
        {
            let n = e.file_name().to_string_lossy().into_owned();
            let hit = if exact {
                n == name
            } else {
                n.starts_with(pre) && n.ends_with(suf) && n.len() >= pre.len() + suf.len()
            };
            if hit && e.path().is_file() {
                found.push(format!("{dir}/{n}"));
            }
        }
        found
    }

    #[test]
    fn every_package_asset_exists_and_both_packages_ship_the_same_sources() {
        let m = manifest();
        let meta = &m["package"]["metadata"];
        let deb: Vec<String> = meta["deb"]["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a[0].as_str().unwrap().to_string())
            .collect();
        let rpm: Vec<String> = meta["generate-rpm"]["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["source"].as_str().unwrap().to_string())
            .collect();
        for src in deb.iter().chain(&rpm) {
            if src.starts_with("target/") {
                continue;
            }
            assert!(!matches(src).is_empty(), "asset {src} matches no file");
        }
        // The same files, whatever each family calls them (the .rpm adds
        // the license, which Debian's copyright file carries).
        let files = |v: &[String]| -> BTreeSet<String> {
            v.iter()
                .flat_map(|s| {
                    if s.starts_with("target/") {
                        vec![s.clone()]
                    } else {
                        matches(s)
                    }
                })
                .filter(|f| f != "./LICENSE")
                .collect()
        };
        assert_eq!(files(&deb), files(&rpm));
        assert!(files(&deb).contains("contrib/site/jail.toml"));
        assert!(files(&deb).contains("man/jail.toml.5"));
    }

    #[test]
    fn the_modulefile_is_named_after_the_version() {
        let m = manifest();
        let version = m["package"]["version"].as_str().unwrap();
        let file = crate::root().join("contrib/modules/jail").join(version);
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(text.starts_with("#%Module"), "not a modulefile");
        assert!(text.contains(&format!("set prefix /opt/jail/{version}\n")));
    }

    #[test]
    fn maintainer_scripts_are_valid_sh() {
        let root = crate::root();
        let mut n = 0;
        for dir in ["contrib/debian", "contrib/rpm"] {
            for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
                let o = Command::new("sh").arg("-n").arg(e.path()).output().unwrap();
                assert!(
                    o.status.success(),
                    "{}: {}",
                    e.path().display(),
                    String::from_utf8_lossy(&o.stderr)
                );
                n += 1;
            }
        }
        assert_eq!(n, 6, "postinst, prerm, postrm; post, preun, postun");
        use std::os::unix::fs::PermissionsExt;
        for s in ["postinst", "prerm", "postrm"] {
            let m = std::fs::metadata(root.join("contrib/debian").join(s)).unwrap();
            assert_eq!(
                m.permissions().mode() & 0o111,
                0o111,
                "{s} is not executable"
            );
        }
    }
}
