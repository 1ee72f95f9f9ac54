//! Hardening applied inside the jail after the filesystem is built and
//! before the program runs: capabilities, no_new_privs (then Landlock and
//! seccomp). `prepare` runs before fork and may allocate; `apply` runs in
//! the forked child and only makes syscalls on prepared data.

pub mod caps;

use crate::config::JailSpec;

#[derive(Debug, thiserror::Error)]
pub enum HardenError {
    #[error("{0}")]
    Prepare(String),
}

/// Everything the child needs, built before fork.
#[derive(Debug)]
pub struct Prepared {}

pub fn prepare(_spec: &JailSpec) -> Result<Prepared, HardenError> {
    Ok(Prepared {})
}

/// Which hardening step failed (reported to the parent with the errno).
#[repr(u32)]
#[derive(Debug, Clone, Copy)]
pub enum Part {
    Capabilities = 1,
    NoNewPrivs,
}

impl Part {
    pub fn describe(v: u32) -> &'static str {
        match v {
            1 => "dropping capabilities",
            2 => "setting no_new_privs",
            _ => "hardening",
        }
    }
}

/// Applies the hardening to the calling process (inherited by its children).
pub fn apply(_p: &Prepared) -> Result<(), (u32, i32)> {
    caps::drop_all().map_err(|e| (Part::Capabilities as u32, e))?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err((Part::NoNewPrivs as u32, crate::sandbox::exec::errno()));
    }
    Ok(())
}
