//! Hardening, applied by pid 1 and the program's child (inside the jail)
//! after the filesystem is built and before the program runs, in this order: capabilities, no_new_privs,
//! Landlock (mirroring the mount plan), seccomp. `prepare` runs before fork
//! and may allocate; `apply` runs in the forked child and only makes
//! syscalls on prepared data.

pub mod caps;
pub mod notify;
pub mod ruleset;
pub mod seccomp;

use crate::plan::Plan;

#[derive(Debug, thiserror::Error)]
pub enum HardenError {
    #[error("{0}")]
    Prepare(String),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error("a jail path contains a NUL byte: {0}")]
    Nul(#[from] std::ffi::NulError),
}

/// Everything the child needs, built before fork.
#[derive(Debug)]
pub struct Prepared {
    pub landlock: ruleset::Prepared,
    pub seccomp: seccompiler::BpfProgram,
    /// The kernel's highest capability number (the bounding-set loop stops there).
    pub last_cap: libc::c_ulong,
    /// Only with the `bench-unhardened` feature and JAIL_BENCH_UNHARDENED
    /// set: skip Landlock and/or seccomp, to measure their cost.
    pub skip: Skip,
}

/// Builds the hardening for `spec`, whose mounts `plan` describes.
/// Prints one warning per protection this kernel lacks: never silently
/// unprotected.
pub fn prepare(plan: &Plan) -> Result<Prepared, HardenError> {
    let abi = ruleset::probe_abi();
    for m in ruleset::missing(abi) {
        tracing::warn!("{m}");
    }
    let skip = bench_unhardened();
    if skip.landlock || skip.seccomp {
        tracing::warn!(
            "JAIL_BENCH_UNHARDENED: benchmark build, Landlock {} and seccomp {}",
            if skip.landlock { "OFF" } else { "on" },
            if skip.seccomp { "OFF" } else { "on" }
        );
    }
    Ok(Prepared {
        landlock: ruleset::prepare(plan, abi)?,
        seccomp: seccomp::compile(seccomp::POLICY)?,
        last_cap: caps::last_cap(),
        skip,
    })
}

/// What a benchmark build skips.
#[derive(Debug, Default, Clone, Copy)]
pub struct Skip {
    pub landlock: bool,
    pub seccomp: bool,
}

/// JAIL_BENCH_UNHARDENED=1 skips both, `landlock` or `seccomp` one.
#[cfg(feature = "bench-unhardened")]
fn bench_unhardened() -> Skip {
    match std::env::var("JAIL_BENCH_UNHARDENED").as_deref() {
        Ok("1") => Skip {
            landlock: true,
            seccomp: true,
        },
        Ok("landlock") => Skip {
            landlock: true,
            seccomp: false,
        },
        Ok("seccomp") => Skip {
            landlock: false,
            seccomp: true,
        },
        _ => Skip::default(),
    }
}

/// Without the feature (every normal build) there is no switch.
#[cfg(not(feature = "bench-unhardened"))]
fn bench_unhardened() -> Skip {
    Skip::default()
}

/// Which hardening step failed (reported to the parent with the errno).
#[repr(u32)]
#[derive(Debug, Clone, Copy)]
pub enum Part {
    Capabilities = 1,
    NoNewPrivs,
    LandlockCreate,
    LandlockRule,
    LandlockRestrict,
    Seccomp,
    /// The connect supervisor's filter (`notify`).
    Notify,
}

impl Part {
    pub fn describe(v: u32) -> &'static str {
        match v {
            1 => "dropping capabilities",
            2 => "setting no_new_privs",
            3 => "creating the Landlock ruleset",
            4 => "adding a Landlock rule",
            5 => "enforcing Landlock",
            6 => "installing the seccomp filter",
            7 => "installing the cluster network filter (seccomp user notification)",
            _ => "hardening",
        }
    }
}

/// Applies the hardening to the calling process (inherited by its children).
pub fn apply(p: &Prepared) -> Result<(), (u32, i32)> {
    caps::drop_all(p.last_cap).map_err(|e| (Part::Capabilities as u32, e))?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err((Part::NoNewPrivs as u32, crate::sys::errno()));
    }
    if !p.skip.landlock {
        ruleset::apply(&p.landlock).map_err(|f| match f {
            ruleset::Failure::Create(e) => (Part::LandlockCreate as u32, e),
            ruleset::Failure::AddRule(e) => (Part::LandlockRule as u32, e),
            ruleset::Failure::Restrict(e) => (Part::LandlockRestrict as u32, e),
        })?;
    }
    if !p.skip.seccomp {
        seccomp::install(&p.seccomp).map_err(|e| (Part::Seccomp as u32, e))?;
    }
    Ok(())
}
