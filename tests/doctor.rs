//! `jail doctor`, through the real binary as the unprivileged test user.

mod common;
use common::*;

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};

const FEATURES: &[&str] = &[
    "user namespaces",
    "mount namespace",
    "pid namespace",
    "network namespace",
    "ipc namespace",
    "uts namespace",
    "cgroup namespace",
    "/proc mount",
    "review mode (overlay)",
    "Landlock",
    "seccomp",
    "TUN (/dev/net/tun)",
    "resource limits",
    "Slurm",
    "GPU devices",
    "AppArmor userns restriction",
    "max_user_namespaces",
    "network allowlist",
];

fn status_of<'a>(out: &'a str, feature: &str) -> Option<&'a str> {
    out.lines()
        .find(|l| l.trim_start().starts_with(feature))
        .and_then(|l| l.trim_start()[feature.len()..].split_whitespace().next())
}

#[test]
fn doctor_names_every_feature_and_passes_here() {
    let sb = Sandbox::new("doctor");
    let o = sb.jail(&["doctor"]);
    assert_code(&o, 0);
    let out = stdout(&o);
    for f in FEATURES {
        assert!(status_of(&out, f).is_some(), "no line for {f}:\n{out}");
    }
    // This host (and CI) can run the jail: the essentials are ok.
    for f in [
        "user namespaces",
        "mount namespace",
        "pid namespace",
        "network namespace",
        "/proc mount",
        "review mode (overlay)",
        "seccomp",
        "network allowlist",
    ] {
        assert_eq!(status_of(&out, f), Some("ok"), "{f}:\n{out}");
    }
    assert!(out.contains("verdict: the jail runs"), "{out}");
}

#[test]
fn doctor_fails_where_user_namespaces_are_refused() {
    // Inside a jail, seccomp refuses nested user namespaces: the doctor
    // must say so and exit non-zero.
    let sb = Sandbox::new("doctor-nested");
    let bin = sb.project.join("jail-copy");
    fs::copy(jail_bin(), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    if user().switch {
        chown(&bin, Some(user().uid), Some(user().gid)).unwrap();
    }
    let o = sb.jail(&["--", "./jail-copy", "doctor"]);
    assert_code(&o, 1);
    let out = stdout(&o);
    assert_eq!(status_of(&out, "user namespaces"), Some("MISSING"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("verdict: the jail cannot run safely"), "{out}");
}
