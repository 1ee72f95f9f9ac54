//! The packages' life on this machine, run by `cargo xtask package --check`
//! as `xtask __package-deb-check DEB NEXT_DEB RPM VERSION SCRATCH` in a private
//! mount namespace (`unshare --mount --propagation private`): /etc, /usr
//! and /var become overlays whose upper layers live on a tmpfs of this
//! namespace, so dpkg, apt and the maintainer scripts work on the
//! machine's real files and database while nothing reaches the machine
//! itself, and it all vanishes with the namespace.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::package::{Outcome, Steps, TEST_USER};

const SITE: &str = "/etc/jail/jail.toml";
const PROFILE: &str = "/etc/apparmor.d/jail";
const ABI4: &str = "/etc/apparmor.d/abi/4.0";
const EDIT: &str = "\n# edited on this machine by the package check\n[network]\ndeny = [\"edited-by-the-admin.example\"]\n";

pub fn run(args: &[String]) -> Result<(), String> {
    let [deb, next, rpm, version, scratch] = args else {
        return Err(format!(
            "usage: xtask {} DEB NEXT_DEB RPM VERSION SCRATCH_DIR",
            crate::package::DEB_CHECK
        ));
    };
    // The tmpfs and the overlays go with the namespace; the caller removes
    // the empty directory they were mounted on.
    let scratch = Path::new(scratch);
    isolate(scratch)?;
    lifecycle(
        Path::new(deb),
        Path::new(next),
        Path::new(rpm),
        version,
        scratch,
    )
}

fn sh(program: &str, args: &[&str]) -> Result<Output, String> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .map_err(|e| format!("{program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> Result<String, String> {
    let o = sh(program, args)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    if o.status.success() {
        Ok(text)
    } else {
        Err(format!(
            "`{program} {}` failed ({}):\n{text}",
            args.join(" "),
            o.status
        ))
    }
}

/// Makes /etc, /usr and /var copy-on-write for this namespace only.
fn isolate(scratch: &Path) -> Result<(), String> {
    // Refuse to run where the namespace is not private (`unshare` execs
    // this process; its parent is the xtask that ran it): the overlays
    // would then be the machine's.
    let own = std::fs::read_link("/proc/self/ns/mnt").map_err(|e| e.to_string())?;
    // SAFETY: getppid has no preconditions.
    let parent = format!("/proc/{}/ns/mnt", unsafe { libc::getppid() });
    let theirs = std::fs::read_link(&parent).map_err(|e| format!("{parent}: {e}"))?;
    if own == theirs {
        return Err(
            "not in a private mount namespace (run through `cargo xtask package --check`)".into(),
        );
    }
    std::fs::create_dir_all(scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
    ok(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "mode=755",
            "jail-package-check",
            &scratch.display().to_string(),
        ],
    )?;
    for d in ["etc", "usr", "var"] {
        let upper = scratch.join(d).join("upper");
        let work = scratch.join(d).join("work");
        for p in [&upper, &work] {
            std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        let opts = format!(
            "lowerdir=/{d},upperdir={},workdir={}",
            upper.display(),
            work.display()
        );
        ok(
            "mount",
            &["-t", "overlay", "overlay", "-o", &opts, &format!("/{d}")],
        )?;
    }
    Ok(())
}

fn status(pkg: &str) -> String {
    sh(
        "dpkg-query",
        &["-W", "-f=${db:Status-Abbrev}|${Version}", pkg],
    )
    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    .unwrap_or_default()
}

fn read(p: impl AsRef<Path>) -> Result<String, String> {
    let p = p.as_ref();
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn uid_gid(user: &str) -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        ok("id", &[flag, user])?
            .trim()
            .parse()
            .map_err(|e| format!("id {flag} {user}: {e}"))
    };
    Ok((id("-u")?, id("-g")?))
}

/// `/usr/bin/jail ARGS` as the test user, in `project`, with `home`.
fn as_user(home: &Path, project: &Path, args: &[&str]) -> Result<Output, String> {
    let (uid, gid) = uid_gid(TEST_USER)?;
    Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .args(["--clear-groups", "--"])
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("USER", TEST_USER)
        .env("LOGNAME", TEST_USER)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .env("SHELL", "/bin/sh")
        .current_dir(project)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("setpriv: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn lifecycle(
    deb: &Path,
    next: &Path,
    rpm: &Path,
    version: &str,
    scratch: &Path,
) -> Result<(), String> {
    let mut steps = Steps::new();
    let root = crate::root();
    // Start from a machine without jail, in this namespace only.
    let prior = status("jail");
    if !prior.is_empty() && !prior.starts_with("un") {
        println!("package check: jail is installed here ({prior}); purged in the namespace only");
        ok("dpkg", &["--purge", "jail"])?;
    }
    for p in ["/etc/jail", "/usr/bin/jail", PROFILE] {
        let p = Path::new(p);
        if p.symlink_metadata().is_ok() {
            println!(
                "package check: {} exists here; hidden in the namespace only",
                p.display()
            );
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
        }
    }
    // The AppArmor 4 branch of the scripts: where the kernel has no
    // AppArmor (nothing can be loaded), stand in the userspace's ABI file
    // so postinst installs the profile and postrm removes it.
    let apparmor_on = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|v| v.trim() == "Y");
    let abi4 = if !apparmor_on && !Path::new(ABI4).exists() {
        std::fs::create_dir_all("/etc/apparmor.d/abi").map_err(|e| e.to_string())?;
        std::fs::write(ABI4, "# stand-in for the package check\n").map_err(|e| e.to_string())?;
        true
    } else {
        Path::new(ABI4).exists()
    };

    let home = scratch.join("home");
    let project = scratch.join("project");
    let (uid, gid) = uid_gid(TEST_USER)?;
    for d in [&home, &project, &home.join(".ssh")] {
        std::fs::create_dir_all(d).map_err(|e| e.to_string())?;
        std::os::unix::fs::chown(d, Some(uid), Some(gid)).map_err(|e| e.to_string())?;
    }
    let key = home.join(".ssh/id_ed25519");
    std::fs::write(&key, "FAKE-KEY-OF-THE-PACKAGE-CHECK").map_err(|e| e.to_string())?;
    std::os::unix::fs::chown(&key, Some(uid), Some(gid)).map_err(|e| e.to_string())?;

    let deb_s = deb.display().to_string();
    let installed = steps.run("apt-get install ./jail.deb", || {
        ok(
            "apt-get",
            &["install", "-y", "-q", "--no-install-recommends", &deb_s],
        )?;
        let s = status("jail");
        if s != format!("ii |{version}-1") {
            return Err(format!("dpkg status {s:?} after install"));
        }
        Ok(Outcome::Passed)
    });
    if !installed {
        return steps.result("package lifecycle");
    }
    steps.run("installed files where the system looks", || {
        for (p, mode) in [
            ("/usr/bin/jail", 0o755),
            ("/usr/share/man/man1/jail.1.gz", 0o644),
            ("/usr/share/man/man1/jail-explain.1.gz", 0o644),
            ("/usr/share/man/man5/jail.toml.5.gz", 0o644),
            ("/usr/share/bash-completion/completions/jail", 0o644),
            ("/usr/share/zsh/vendor-completions/_jail", 0o644),
            ("/usr/share/fish/vendor_completions.d/jail.fish", 0o644),
            ("/usr/share/jail/apparmor/jail", 0o644),
            ("/usr/share/doc/jail/admin.md", 0o644),
            (SITE, 0o644),
        ] {
            let m = std::fs::metadata(p).map_err(|e| format!("{p}: {e}"))?;
            if m.mode() & 0o7777 != mode || m.uid() != 0 {
                return Err(format!("{p}: mode {:o} uid {}", m.mode() & 0o7777, m.uid()));
            }
        }
        if read(SITE)? != read(root.join("contrib/site/jail.toml"))? {
            return Err(format!("{SITE} is not contrib/site/jail.toml"));
        }
        let conffiles = ok("dpkg-query", &["-W", "-f=${Conffiles}", "jail"])?;
        if !conffiles.contains(SITE) {
            return Err(format!("{SITE} is not a conffile: {conffiles:?}"));
        }
        if abi4 {
            let want = read(root.join("contrib/apparmor/jail"))?;
            if read(PROFILE)? != want {
                return Err(format!("postinst did not install {PROFILE} where {ABI4} exists"));
            }
        } else if Path::new(PROFILE).exists() {
            return Err(format!("postinst installed {PROFILE} without AppArmor 4 ({ABI4})"));
        }
        // Found by the tools themselves, from the system locations.
        let man = ok("man", &["-w", "jail"])?;
        if man.trim() != "/usr/share/man/man1/jail.1.gz" {
            return Err(format!("man -w jail: {man}"));
        }
        let bash = ok(
            "bash",
            &["--norc", "-c", ". /usr/share/bash-completion/bash_completion; _completion_loader jail; complete -p jail"],
        )?;
        if !bash.contains("complete -F _jail jail") {
            return Err(format!("bash-completion did not load jail's: {bash}"));
        }
        let zsh = ok("zsh", &["-f", "-c", "autoload -Uz compinit; compinit -u -D; print -r -- $_comps[jail]"])?;
        if zsh.trim() != "_jail" {
            return Err(format!("zsh (default fpath) did not find _jail: {zsh:?}"));
        }
        // Not --no-config: that skips fish's own share/config.fish, which
        // sets up the vendor completion path; a fresh HOME keeps any
        // user's configuration out.
        let fish = Command::new("fish")
            .args(["-c", "complete -C 'jail --ne'"])
            .env("HOME", scratch)
            .env("XDG_CONFIG_HOME", scratch)
            .env("XDG_DATA_HOME", scratch)
            .output()
            .map_err(|e| format!("fish: {e}"))?;
        if !text(&fish).contains("--net") {
            return Err(format!("fish did not complete `jail --ne`: {}", text(&fish)));
        }
        Ok(Outcome::Passed)
    });
    steps.run("jail doctor as jailtest from /usr/bin/jail", || {
        let o = as_user(&home, &project, &["/usr/bin/jail", "doctor"])?;
        if o.status.code() != Some(0) {
            return Err(format!("exit {:?}:\n{}", o.status.code(), text(&o)));
        }
        let verdict = text(&o)
            .lines()
            .find(|l| l.starts_with("verdict"))
            .unwrap_or("")
            .to_string();
        println!("package check: {verdict}");
        Ok(Outcome::Passed)
    });
    let probe = "cat ~/.ssh/id_ed25519 2>&1; echo; echo \"profile=$JAIL_PROFILE uid=$(id -u)\"";
    steps.run(
        "a jail as jailtest from /usr/bin/jail: the host's ~/.ssh key is unreadable",
        || {
            // The same probe outside the jail reads the key: the check can fail.
            let outside = as_user(&home, &project, &["/bin/sh", "-c", probe])?;
            if !text(&outside).contains("FAKE-KEY-OF-THE-PACKAGE-CHECK") {
                return Err(format!(
                    "outside the jail the key is not readable: {}",
                    text(&outside)
                ));
            }
            let o = as_user(&home, &project, &["/usr/bin/jail", "--", "sh", "-c", probe])?;
            let t = text(&o);
            if o.status.code() != Some(0)
                || t.contains("FAKE-KEY")
                || !t.contains("No such file or directory")
                || !t.contains(&format!("profile=default uid={uid}"))
            {
                return Err(format!("exit {:?}:\n{t}", o.status.code()));
            }
            Ok(Outcome::Passed)
        },
    );
    let edited = format!("{}{EDIT}", read(SITE)?);
    steps.run(
        "the admin's edit of /etc/jail/jail.toml is in force",
        || {
            std::fs::write(SITE, &edited).map_err(|e| format!("{SITE}: {e}"))?;
            std::fs::set_permissions(SITE, std::fs::Permissions::from_mode(0o644))
                .map_err(|e| e.to_string())?;
            let o = as_user(&home, &project, &["/usr/bin/jail", "explain"])?;
            if o.status.code() != Some(0) || !text(&o).contains("edited-by-the-admin.example") {
                return Err(format!(
                    "jail explain does not show the site's deny:\n{}",
                    text(&o)
                ));
            }
            Ok(Outcome::Passed)
        },
    );
    let next_s = next.display().to_string();
    steps.run(
        "upgrade (dpkg -i of the next revision) keeps the edit",
        || {
            ok("dpkg", &["-i", &next_s])?;
            let s = status("jail");
            if s != format!("ii |{version}-2") {
                return Err(format!("dpkg status {s:?} after the upgrade"));
            }
            if read(SITE)? != edited {
                return Err(format!("{SITE} lost the local edit:\n{}", read(SITE)?));
            }
            for leftover in [".dpkg-new", ".dpkg-dist", ".dpkg-old"] {
                let p = format!("{SITE}{leftover}");
                if Path::new(&p).exists() {
                    return Err(format!("{p} exists after the upgrade"));
                }
            }
            let o = as_user(&home, &project, &["/usr/bin/jail", "explain"])?;
            if !text(&o).contains("edited-by-the-admin.example") {
                return Err(format!("after the upgrade, jail explain:\n{}", text(&o)));
            }
            Ok(Outcome::Passed)
        },
    );
    let files = ok("dpkg-query", &["-L", "jail"]).unwrap_or_default();
    steps.run(
        "remove: nothing of jail left but /etc/jail/jail.toml",
        || {
            ok("dpkg", &["--remove", "jail"])?;
            let s = status("jail");
            if !s.starts_with("rc") {
                return Err(format!("dpkg status {s:?} after remove"));
            }
            let mut left: Vec<String> = files
                .lines()
                .filter(|p| p.contains("jail") && !p.starts_with("/etc/jail"))
                .filter(|p| Path::new(p).symlink_metadata().is_ok())
                .map(String::from)
                .collect();
            for p in [PROFILE, "/usr/bin/jail", "/usr/share/jail"] {
                if Path::new(p).symlink_metadata().is_ok() && !left.iter().any(|l| l == p) {
                    left.push(p.into());
                }
            }
            if let Ok(caches) = std::fs::read_dir("/var/cache/apparmor") {
                for c in caches.flatten() {
                    let p = c.path().join("jail");
                    if p.exists() {
                        left.push(p.display().to_string());
                    }
                }
            }
            if !left.is_empty() {
                return Err(format!("left after remove: {left:?}"));
            }
            if files.lines().count() < 10 {
                return Err(format!("dpkg -L listed too little to check: {files:?}"));
            }
            if read(SITE)? != edited {
                return Err(format!("{SITE} (a conffile) is not kept with its edit"));
            }
            Ok(Outcome::Passed)
        },
    );
    steps.run("purge: /etc/jail gone", || {
        ok("dpkg", &["--purge", "jail"])?;
        let s = status("jail");
        if !(s.is_empty() || s.starts_with("un") || s.starts_with("pn")) {
            return Err(format!("dpkg status {s:?} after purge"));
        }
        if Path::new("/etc/jail").symlink_metadata().is_ok() {
            return Err("/etc/jail is still there after purge".into());
        }
        Ok(Outcome::Passed)
    });
    // The .rpm's scriptlets and %config(noreplace), for real: Debian's
    // rpm installs into this namespace's copy of the system (--nodeps:
    // its database knows none of Debian's packages).
    let rpm_s = rpm.display().to_string();
    let rpm_i = || ok("rpm", &["-i", "--nodeps", &rpm_s]);
    steps.run("rpm -i and -e: %post, %postun, nothing left", || {
        if !crate::package::have("rpm") {
            return crate::package::skip("rpm is not installed (Debian package `rpm`)".into());
        }
        rpm_i()?;
        ok("/usr/bin/jail", &["--version"])?;
        if read(SITE)? != read(root.join("contrib/site/jail.toml"))? {
            return Err(format!("{SITE} is not contrib/site/jail.toml"));
        }
        if abi4 != Path::new(PROFILE).exists() {
            return Err(format!("%post: {PROFILE} exists: {}", !abi4));
        }
        ok("rpm", &["-e", "jail"])?;
        for p in [
            "/etc/jail",
            "/usr/bin/jail",
            "/usr/share/jail",
            "/usr/share/doc/jail",
            "/usr/share/licenses/jail",
            PROFILE,
        ] {
            if Path::new(p).symlink_metadata().is_ok() {
                return Err(format!("{p} is left after rpm -e"));
            }
        }
        Ok(Outcome::Passed)
    });
    steps.run(
        "rpm -e keeps an edited /etc/jail/jail.toml as .rpmsave",
        || {
            rpm_i()?;
            let edited = format!("{}{EDIT}", read(SITE)?);
            std::fs::write(SITE, &edited).map_err(|e| format!("{SITE}: {e}"))?;
            ok("rpm", &["-e", "jail"])?;
            let saved = format!("{SITE}.rpmsave");
            if read(&saved)? != edited {
                return Err(format!("{saved} is not the edited file"));
            }
            if Path::new(SITE).exists() || Path::new("/usr/bin/jail").exists() {
                return Err(format!("{SITE} or /usr/bin/jail left after rpm -e"));
            }
            Ok(Outcome::Passed)
        },
    );
    steps.result("package lifecycle")
}
