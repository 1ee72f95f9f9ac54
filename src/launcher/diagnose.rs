//! Turns a bare errno from setup into a message that says what is wrong
//! with this host and what to do, for the hostile environments jail knows
//! (docs/design.md, "Hostile hosts"). Runs in the launcher (and `jail
//! doctor`), after pid 1 reported the failure.

use std::path::Path;

use crate::pid1::exec::Stage;
use crate::plan::Plan;

/// A sysctl (or another small /proc file), trimmed.
pub fn read_sysctl(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

pub use crate::sys::errno_text;

/// Why user namespaces cannot be created here, as precisely as we can tell.
pub fn userns_blocker() -> Option<String> {
    if read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1")
    {
        return Some(
            "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1, \
             as on Ubuntu 23.10+); install contrib/apparmor/jail from jail's source (root), or ask an admin to allow `userns` for jail"
                .into(),
        );
    }
    if read_sysctl("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Some("user namespaces are disabled (user.max_user_namespaces = 0)".into());
    }
    if read_sysctl("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return Some(
            "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0)"
                .into(),
        );
    }
    if !Path::new("/proc/self/ns/user").exists() {
        return Some(
            "this kernel has no user namespaces (CONFIG_USER_NS is off, or a RHEL 7-era kernel)"
                .into(),
        );
    }
    None
}

pub fn clone_failure(errno: i32) -> String {
    if errno == libc::EPERM && std::env::var_os("JAIL").is_some_and(|v| v == "1") {
        return format!(
            "{} — this already runs inside a jail, whose seccomp filter refuses new namespaces (jails do not nest)",
            errno_text(errno)
        );
    }
    let why = match (errno, userns_blocker()) {
        (_, Some(b)) => b,
        (libc::ENOSPC, None) => "the per-user namespace limit is reached (user.max_user_namespaces)".into(),
        (libc::EPERM, None) => {
            "the kernel refused (running inside a container or seccomp profile that forbids namespaces?)".into()
        }
        (libc::EINVAL, None) => "this kernel lacks a namespace jail needs".into(),
        _ => "unexpected failure".into(),
    };
    format!(
        "{} — {why}; run `jail doctor` for details",
        errno_text(errno)
    )
}

pub fn uid_map_failure(e: &std::io::Error) -> String {
    match userns_blocker() {
        Some(b) => format!("{e} — {b}"),
        None => {
            format!("{e} — writing /proc/PID/uid_map was refused; run `jail doctor` for details")
        }
    }
}

pub fn setup_failure(stage: Stage, index: u32, errno: i32, plan: &Plan) -> String {
    let e = errno_text(errno);
    match stage {
        Stage::Private => format!(
            "cannot make the mount tree private ({e}) — inside a container that forbids it? run `jail doctor`"
        ),
        Stage::Stage | Stage::Pivot1 | Stage::Pivot2 => {
            format!("cannot switch to the jail's root filesystem ({e}) — is / a mount point here? run `jail doctor`")
        }
        Stage::Step => {
            let step = plan.steps.get(index as usize);
            let what = step.map_or_else(|| format!("mount step {index}"), |s| s.describe());
            let hint = match step {
                Some(crate::plan::Step::Proc { .. }) if errno == libc::EPERM => {
                    " — the kernel refused a fresh /proc: this usually means jail runs inside a container \
                     whose /proc is partly masked (nested containers); run it on the host or with an \
                     unmasked /proc"
                }
                Some(crate::plan::Step::ReviewOverlay { .. }) => {
                    " — review mode needs an overlay of the project with its upper directory in \
                     jail's state (~/.local/state/jail); overlayfs refuses an upper directory on \
                     NFS and some other filesystems: set XDG_STATE_HOME to a local disk"
                }
                Some(crate::plan::Step::Bind { .. }) if errno == libc::EACCES => {
                    " — the source is not accessible to you (NFS with root_squash needs no root: check its permissions)"
                }
                _ => "",
            };
            format!("cannot {what}: {e}{hint}")
        }
        Stage::Loopback => format!("cannot bring up loopback in the jail's network namespace: {e}"),
        Stage::Chdir => format!(
            "cannot enter the working directory inside the jail: {e} (is it hidden by the policy? see `jail explain`)"
        ),
        Stage::Harden => format!("{} failed: {e}", crate::harden::Part::describe(index)),
        Stage::Fork => format!("cannot start the program: {e}"),
        Stage::Slurm => format!("cannot create the Slurm chaperon's socket in the jail: {e}"),
        Stage::Files => format!("cannot write the job's script into the jail: {e}"),
        Stage::Stdio => format!("cannot open the job's output or input file: {e}"),
        Stage::Limits => format!("cannot set the jail's resource limits: {e}"),
        Stage::Pid => format!("cannot choose the program's pid in the jail: {e}"),
        Stage::Network => format!("cannot set up the jail's network: {e}"),
        Stage::Exec => format!("setup failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Step;

    fn plan_of(steps: Vec<Step>) -> Plan {
        Plan {
            steps,
            ..Default::default()
        }
    }

    #[test]
    fn the_review_hint_goes_with_the_review_overlay_not_a_cache_overlay() {
        let (lower, upper, work) = ("/p".into(), "/s/u".into(), "/s/w".into());
        let review = plan_of(vec![Step::ReviewOverlay { lower, upper, work }]);
        let msg = setup_failure(Stage::Step, 0, libc::EINVAL, &review);
        assert!(msg.contains("review mode needs an overlay"), "{msg}");
        let cache = plan_of(vec![Step::Overlay {
            lower: "/c".into(),
            dest: "/c".into(),
            upper: "/s/u".into(),
            work: "/s/w".into(),
        }]);
        let msg = setup_failure(Stage::Step, 0, libc::EINVAL, &cache);
        assert!(msg.starts_with("cannot show /c"), "{msg}");
        assert!(!msg.contains("review"), "{msg}");
    }
}
