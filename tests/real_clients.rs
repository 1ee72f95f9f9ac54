//! Real package managers through the network allowlist, against the real
//! registries (the only outside network these tests use): with the
//! ecosystem's preset the command works; without it, the registry's name
//! is denied with one clear line. Run as the unprivileged test user. A
//! test is skipped, saying why, only when the registry cannot be reached
//! from this machine at all (checked outside the jail first).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn out(o: &std::process::Output) -> String {
    format!("--- stdout\n{}\n--- stderr\n{}", stdout(o), stderr(o))
}

/// Whether `url` answers from this machine (outside any jail); the
/// reason when it does not.
fn unreachable(sb: &Sandbox, url: &str) -> Option<String> {
    let o = sb.host_sh(&format!(
        "curl -sS -m 20 -o /dev/null -w '%{{http_code}}' {url}"
    ));
    let code = stdout(&o);
    if o.status.success() && code.starts_with(['2', '3']) {
        None
    } else {
        Some(format!(
            "{url} is not reachable from this machine ({} {})",
            code.trim(),
            stderr(&o).trim()
        ))
    }
}

macro_rules! need {
    ($sb:expr, $url:expr) => {
        if let Some(why) = unreachable(&$sb, $url) {
            skip(Lack::Machine, &why);
            return;
        }
    };
}

/// A toolchain (cargo, rustc and rustc's libraries) the test user can
/// run: the one building these tests, linked (or copied) out of root's
/// home when the tests run as root.
fn toolchain() -> PathBuf {
    static T: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let o = Command::new(rustc)
            .args(["--print", "sysroot"])
            .output()
            .expect("rustc");
        let sysroot = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        if !user().switch {
            return sysroot;
        }
        // One per toolchain, shared by test runs (built under a temporary
        // name and renamed, so concurrent runs never see half of one).
        let tag: u64 = sysroot
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .fold(0xcbf2_9ce4_8422_2325, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        let dst = PathBuf::from(format!("/tmp/jail-tests/toolchain-{tag:016x}"));
        if dst.join("bin/cargo").exists() {
            return dst;
        }
        let tmp = PathBuf::from(format!("{}.tmp-{}", dst.display(), std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        for d in ["bin", "lib"] {
            std::fs::create_dir_all(tmp.join(d)).unwrap();
        }
        let mut files = vec![sysroot.join("bin/cargo"), sysroot.join("bin/rustc")];
        for e in std::fs::read_dir(sysroot.join("lib")).unwrap().flatten() {
            if e.file_name().to_string_lossy().contains(".so") {
                files.push(e.path());
            }
        }
        for f in files {
            let rel = f.strip_prefix(&sysroot).unwrap();
            let to = tmp.join(rel);
            if std::fs::hard_link(&f, &to).is_err() {
                std::fs::copy(&f, &to).unwrap();
            }
        }
        use std::os::unix::fs::PermissionsExt;
        for d in [tmp.clone(), tmp.join("bin"), tmp.join("lib")] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        if std::fs::rename(&tmp, &dst).is_err() {
            // Another run made it first.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        dst
    })
    .clone()
}

fn path_with(bin: &Path) -> String {
    format!("PATH={}:/usr/local/bin:/usr/bin:/bin", bin.display())
}

#[test]
fn cargo_fetch_with_the_crates_preset_and_denied_without() {
    let sb = Sandbox::new("real-cargo");
    need!(sb, "https://index.crates.io/config.json");
    let tc = toolchain();
    sb.write(
        sb.project.join("Cargo.toml"),
        "[package]\nname = \"probe\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"=1.0.11\"\n",
    );
    sb.write(sb.project.join("src/main.rs"), "fn main() {}\n");
    let home = format!("CARGO_HOME={}", sb.project.join(".cargo-home").display());
    let path = path_with(&tc.join("bin"));
    let tcs = tc.display().to_string();
    let args = |preset: &str| -> Vec<String> {
        [
            "--allow-domain",
            preset,
            "--ro",
            &tcs,
            "--env",
            &home,
            "--env",
            &path,
            "--",
            "cargo",
            "fetch",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |a: Vec<String>| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        sb.jail(&a)
    };
    let o = run(args("@pypi"));
    assert_ne!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        stderr(&o).contains("jail: net: denied index.crates.io (not in the allowlist)"),
        "{}",
        out(&o)
    );
    let o = run(args("@crates"));
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("Downloaded itoa v1.0.11"),
        "{}",
        out(&o)
    );
    let crate_file = std::fs::read_dir(sb.project.join(".cargo-home/registry/cache"))
        .unwrap()
        .flatten()
        .any(|d| d.path().join("itoa-1.0.11.crate").exists());
    assert!(crate_file, "the .crate file is in the project's CARGO_HOME");
}

#[test]
fn pip_download_with_the_pypi_preset_and_denied_without() {
    let sb = Sandbox::new("real-pip");
    need!(sb, "https://pypi.org/simple/six/");
    let has_pip = sb.host_sh("python3 -m pip --version");
    if !has_pip.status.success() {
        skip(
            Lack::Setup,
            "python3 has no pip here (.ci/run installs python3-pip)",
        );
        return;
    }
    let cmd = "python3 -m pip download --no-deps --disable-pip-version-check -d dl six==1.16.0";
    let o = sb.jail_sh(&["--allow-domain", "@npm", "--env", "PIP_RETRIES=0"], cmd);
    assert_ne!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        stderr(&o).contains("jail: net: denied pypi.org (not in the allowlist)"),
        "{}",
        out(&o)
    );
    let o = sb.jail_sh(&["--allow-domain", "@pypi"], cmd);
    assert_code(&o, 0);
    assert!(
        sb.project
            .join("dl/six-1.16.0-py2.py3-none-any.whl")
            .exists(),
        "{}",
        out(&o)
    );
}

#[test]
fn npm_install_with_the_npm_preset_and_denied_without() {
    let sb = Sandbox::new("real-npm");
    need!(sb, "https://registry.npmjs.org/is-number");
    if !sb.host_sh("npm --version").status.success() {
        skip(Lack::Setup, "no npm here (.ci/run installs it)");
        return;
    }
    sb.write(
        sb.project.join("package.json"),
        "{\"name\": \"probe\", \"version\": \"1.0.0\", \"dependencies\": {\"is-number\": \"7.0.0\"}}\n",
    );
    let cmd = "npm install --no-audit --no-fund --fetch-retries=0";
    let o = sb.jail_sh(&["--allow-domain", "@pypi"], cmd);
    assert_ne!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        stderr(&o).contains("jail: net: denied registry.npmjs.org (not in the allowlist)"),
        "{}",
        out(&o)
    );
    let o = sb.jail_sh(&["--allow-domain", "@npm"], cmd);
    assert_code(&o, 0);
    assert!(
        sb.project
            .join("node_modules/is-number/package.json")
            .exists(),
        "{}",
        out(&o)
    );
}

#[test]
fn under_network_none_npm_fails_at_once_and_jail_says_why() {
    let sb = Sandbox::new("real-none");
    if !sb.host_sh("npm --version").status.success() {
        skip(Lack::Setup, "no npm here (.ci/run installs it)");
        return;
    }
    sb.write(
        sb.project.join("package.json"),
        "{\"name\": \"probe\", \"version\": \"1.0.0\", \"dependencies\": {\"is-number\": \"7.0.0\"}}\n",
    );
    // Without jail's hints npm retries a name that does not resolve for
    // about 70 s; told the network is off it answers from its cache, at
    // once: ENOTCACHED, not a retry loop.
    let o = sb.jail_sh(&[], "npm install --no-audit --no-fund");
    assert_ne!(o.status.code(), Some(0), "{}", out(&o));
    let err = stderr(&o);
    assert!(err.contains("ENOTCACHED"), "{}", out(&o));
    assert!(err.contains("jail: net: the network is off"), "{}", out(&o));
}
