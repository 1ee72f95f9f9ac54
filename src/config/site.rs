//! Site enforcement, in one place: where the site policy lives (the
//! root-owned site directory), how its jail.toml is read, and how it bounds
//! every later layer (floors, maxima, ceilings; refused when the user asked
//! for more, clamped when a builtin profile did).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::catalogue::{chosen_by_user, Request, SiteLayer};
use super::domain::expand_domain;
use super::env::{check_env_name, check_env_pattern};
use super::load::{parse_kind, FileKind};
use super::paths::{expand_tilde, layer_path, push_unique, put_path};
use super::profile::{HomeMode, SlurmEnabled};
use super::proxy::check_proxy;
use super::resolve::{check_slurm_names, Acc, Ctx, SlurmLists};
use super::spec::*;
use super::ConfigError;

/// What the site decides before any layer is merged: which profiles may
/// be used, and whether `--gpu` may.
pub(super) fn check_choices(
    site: &SiteLayer,
    req: &Request,
    profile: &Sourced<String>,
) -> Result<(), ConfigError> {
    if let Some(allowed) = &site.site.profiles {
        if !allowed.contains(&profile.value) {
            return Err(ConfigError::Refused {
                file: site.file.clone(),
                key: "site.profiles".into(),
                message: format!(
                    "profile `{}` ({}) is not one the site allows: {}",
                    profile.value,
                    profile.source,
                    allowed.join(", ")
                ),
            });
        }
    }
    if req.gpu && site.site.gpu == Some(false) {
        return Err(ConfigError::Refused {
            file: site.file.clone(),
            key: "site.gpu".into(),
            message: "--gpu is not allowed".into(),
        });
    }
    Ok(())
}

/// `[site] project_roots`: the project must lie below one of them.
pub(super) fn check_project(site: &SiteLayer, project: &Path) -> Result<(), ConfigError> {
    if let Some(roots) = &site.project_roots {
        if !roots.iter().any(|r| project.starts_with(r)) {
            return Err(ConfigError::Refused {
                file: site.file.clone(),
                key: "site.project_roots".into(),
                message: format!(
                    "project {} is not below an allowed project directory",
                    project.display()
                ),
            });
        }
    }
    Ok(())
}

/// Applies the site's jail.toml to the merged policy: floors are added,
/// maxima and ceilings clamp builtin values and refuse the user's.
pub(super) fn enforce_site(acc: &mut Acc, site: &SiteLayer, ctx: &Ctx) -> Result<(), ConfigError> {
    let sp = &site.profile;
    let ssrc = Source::Site(site.file.clone());
    let refuse = |key: &str, message: String| ConfigError::Refused {
        file: site.file.clone(),
        key: key.to_string(),
        message,
    };
    let path = |s: &str| layer_path(s, ctx, &ssrc);
    if let Some(n) = site.site.slurm_job_network {
        acc.slurm_job_network = Sourced::new(n, ssrc.clone());
    }
    // Floors (hide, ro) hold for `~` under every home the user has.
    let floor_paths = |list: &[String]| -> Result<Vec<PathBuf>, ConfigError> {
        let mut out = Vec::new();
        for s in list {
            out.push(path(s)?);
            if s.starts_with('~') {
                for h in site.other_homes.iter().filter(|h| h.as_path() != ctx.home) {
                    let other = Ctx {
                        home: h,
                        project: ctx.project,
                    };
                    out.push(layer_path(s, &other, &ssrc)?);
                }
            }
        }
        Ok(out)
    };
    let under_any = |p: &Path, roots: &[PathBuf]| roots.iter().any(|r| p.starts_with(r));

    // Hidden paths: a floor, and nothing the user names below one shows.
    let site_hide = floor_paths(&sp.filesystem.hide)?;
    for v in acc.ro.iter().chain(&acc.rw) {
        if chosen_by_user(&v.source) && under_any(&v.value, &site_hide) {
            return Err(refuse(
                "filesystem.hide",
                format!(
                    "{} (from {}) is hidden by the site",
                    v.value.display(),
                    v.source
                ),
            ));
        }
    }
    for h in site_hide {
        acc.hide.retain(|x| x.value != h);
        acc.hide.push(Sourced::new(h, ssrc.clone()));
    }

    // Read-only paths never become read-write.
    let site_ro = floor_paths(&sp.filesystem.ro)?;
    let mut demoted = Vec::new();
    for v in &acc.rw {
        if under_any(&v.value, &site_ro) {
            if chosen_by_user(&v.source) {
                return Err(refuse(
                    "filesystem.ro",
                    format!(
                        "{} (from {}) is read-only by site policy",
                        v.value.display(),
                        v.source
                    ),
                ));
            }
            demoted.push(v.clone());
        }
    }
    for v in demoted {
        acc.notes.push(format!(
            "site made {} read-only (was read-write in {})",
            v.value.display(),
            v.source
        ));
        put_path(&mut acc.ro, &mut acc.rw, v.value, ssrc.clone());
    }
    for r in site_ro {
        put_path(&mut acc.ro, &mut acc.rw, r, ssrc.clone());
    }

    // Read-write outside the project, if the site forbids it.
    if site.site.rw_outside_project == Some(false) {
        for v in &acc.rw {
            if chosen_by_user(&v.source) && !v.value.starts_with(ctx.project) {
                return Err(refuse(
                    "site.rw_outside_project",
                    format!(
                        "{} (from {}) is outside the project {}",
                        v.value.display(),
                        v.source,
                        ctx.project.display()
                    ),
                ));
            }
        }
        if acc.home.value == HomeMode::Rw && chosen_by_user(&acc.home.source) {
            return Err(refuse(
                "site.rw_outside_project",
                format!("home = \"rw\" (from {})", acc.home.source),
            ));
        }
    }
    // The site's own read-write grants (scratch space), unless narrowed.
    for s in sp.filesystem.rw.iter().chain(&sp.filesystem.create) {
        let p = path(s)?;
        if !acc
            .ro
            .iter()
            .any(|r| r.value == p && chosen_by_user(&r.source))
        {
            put_path(&mut acc.rw, &mut acc.ro, p, ssrc.clone());
        }
    }
    for s in &sp.filesystem.create {
        push_unique(&mut acc.create, path(s)?, ssrc.clone());
    }

    // Home mode and network mode: the site value is a maximum.
    if let Some(max) = sp.filesystem.home {
        if acc.home.value > max {
            if chosen_by_user(&acc.home.source) {
                return Err(refuse(
                    "filesystem.home",
                    format!(
                        "home {:?} (from {}) is wider than the site's maximum {:?}",
                        acc.home.value, acc.home.source, max
                    )
                    .to_lowercase(),
                ));
            }
            acc.home = Sourced::new(max, ssrc.clone());
        }
    }
    if let Some(max) = sp.network.mode {
        if acc.net_mode.value > max {
            if chosen_by_user(&acc.net_mode.source) {
                return Err(refuse(
                    "network.mode",
                    format!(
                        "network {:?} (from {}) is wider than the site's maximum {:?}",
                        acc.net_mode.value, acc.net_mode.source, max
                    )
                    .to_lowercase(),
                ));
            }
            acc.notes.push(format!(
                "site lowered network mode {:?} to {:?}",
                acc.net_mode.value, max
            ));
            acc.net_mode = Sourced::new(max, ssrc.clone());
        }
    }

    // The site's allow list and ports: ceilings.
    if let Some(ceiling) = &sp.network.allow {
        let mut names = Vec::new();
        for d in ceiling {
            names.extend(expand_domain(d, &ssrc)?.into_iter().map(|(n, _)| n));
        }
        let mut kept = Vec::new();
        for a in std::mem::take(&mut acc.allow) {
            if names.iter().any(|c| c.covers(&a.value)) {
                kept.push(a);
            } else if chosen_by_user(&a.source) {
                return Err(refuse(
                    "network.allow",
                    format!(
                        "{} (from {}) is not in the site's allow list",
                        a.value, a.source
                    ),
                ));
            } else {
                acc.notes.push(format!(
                    "site allow list removed {} (from {})",
                    a.value, a.source
                ));
            }
        }
        acc.allow = kept;
    }
    if let Some(ceiling) = &sp.network.ports {
        let mut kept = Vec::new();
        for p in std::mem::take(&mut acc.ports) {
            if ceiling.contains(&p.value) {
                kept.push(p);
            } else if chosen_by_user(&p.source) {
                return Err(refuse(
                    "network.ports",
                    format!(
                        "port {} (from {}) is not in the site's ports",
                        p.value, p.source
                    ),
                ));
            } else {
                acc.notes.push(format!(
                    "site ports removed {} (from {})",
                    p.value, p.source
                ));
            }
        }
        acc.ports = kept;
    }
    // Exposed host ports: a site list is a ceiling (`[]` forbids them).
    if let Some(ceiling) = &sp.network.expose_host_ports {
        let mut kept = Vec::new();
        for p in std::mem::take(&mut acc.expose) {
            if ceiling.contains(&p.value) {
                kept.push(p);
            } else if chosen_by_user(&p.source) {
                return Err(refuse(
                    "network.expose_host_ports",
                    format!(
                        "host port {} (from {}) is not in the site's expose_host_ports",
                        p.value, p.source
                    ),
                ));
            } else {
                acc.notes.push(format!(
                    "site removed exposed host port {} (from {})",
                    p.value, p.source
                ));
            }
        }
        acc.expose = kept;
    }
    if let Some(x) = &sp.network.proxy {
        check_proxy(x, &ssrc)?;
        if let Some(cur) = &acc.proxy {
            if chosen_by_user(&cur.source) && &cur.value != x {
                return Err(refuse(
                    "network.proxy",
                    format!("the upstream proxy is fixed to {x} (asked: {})", cur.value),
                ));
            }
        }
        acc.proxy = Some(Sourced::new(x.clone(), ssrc.clone()));
    }
    // Denied domains: a floor.
    for d in &sp.network.deny {
        for (domain, via) in expand_domain(d, &ssrc)? {
            acc.deny.retain(|x| x.value != domain);
            let mut s = Sourced::new(domain, ssrc.clone());
            s.via = via;
            acc.deny.push(s);
        }
    }
    if let Some(d) = &sp.network.dns_upstream {
        if let Some(cur) = &acc.dns_upstream {
            if chosen_by_user(&cur.source) && &cur.value != d {
                return Err(refuse(
                    "network.dns_upstream",
                    format!("the DNS server is fixed to {d} (asked: {})", cur.value),
                ));
            }
        }
        acc.dns_upstream = Some(Sourced::new(d.clone(), ssrc.clone()));
    }

    // Environment: the site's blocks are a floor no pass gets through.
    for b in &sp.env.block {
        check_env_pattern(b)?;
        let mut kept = Vec::new();
        for p in std::mem::take(&mut acc.pass) {
            if !crate::config::env::glob(b, &p.value) {
                kept.push(p);
            } else if chosen_by_user(&p.source) {
                return Err(refuse(
                    "env.block",
                    format!("${} (passed by {}) is blocked by `{b}`", p.value, p.source),
                ));
            } else {
                acc.notes.push(format!(
                    "site blocked ${} (passed by {})",
                    p.value, p.source
                ));
            }
        }
        acc.pass = kept;
        acc.block.retain(|x| &x.value != b);
        acc.block.push(Sourced::new(b.clone(), ssrc.clone()));
    }
    // The site's passes are added; its values are fixed.
    for v in &sp.env.pass {
        check_env_name(v)?;
        push_unique(&mut acc.pass, v.clone(), ssrc.clone());
    }
    for (k, v) in &sp.env.set {
        check_env_name(k)?;
        let v = expand_tilde(v, ctx.home);
        if let Some((_, cur)) = acc.set.iter().find(|(n, _)| n == k) {
            if chosen_by_user(&cur.source) && cur.value != v {
                return Err(refuse(
                    &format!("env.set.{k}"),
                    format!("{k} is set by the site (asked by {})", cur.source),
                ));
            }
        }
        acc.set.retain(|(n, _)| n != k);
        acc.set.push((k.clone(), Sourced::new(v, ssrc.clone())));
    }

    // Slurm: a site `false` forbids it.
    if sp.slurm.enabled == Some(SlurmEnabled::Bool(false)) {
        let cur = acc.slurm.value;
        if cur == SlurmEnabled::Bool(true) && chosen_by_user(&acc.slurm.source) {
            return Err(refuse(
                "slurm.enabled",
                format!("Slurm (asked by {}) is disabled", acc.slurm.source),
            ));
        }
        if cur != SlurmEnabled::Bool(false) {
            acc.slurm = Sourced::new(SlurmEnabled::Bool(false), ssrc.clone());
        }
    }
    // Partitions, accounts, QOS: the site's lists are ceilings.
    for (key, list) in SlurmLists::KEYS {
        let Some(ceiling) = list(&sp.slurm) else {
            continue;
        };
        check_slurm_names(key, ceiling, &ssrc)?;
        let cur = acc.slurm_lists.get_mut(key);
        if let Some(c) = cur.as_ref() {
            if let Some(extra) = c.value.iter().find(|n| !ceiling.contains(n)) {
                if chosen_by_user(&c.source) {
                    return Err(refuse(
                        &format!("slurm.{key}"),
                        format!(
                            "{extra} (from {}) is not one the site allows: {}",
                            c.source,
                            ceiling.join(", ")
                        ),
                    ));
                }
            } else {
                continue;
            }
        }
        *cur = Some(Sourced::new(ceiling.clone(), ssrc.clone()));
    }
    if let Some(max) = sp.slurm.max_jobs {
        match &acc.slurm_max_jobs {
            Some(c) if c.value <= max => {}
            Some(c) if chosen_by_user(&c.source) => {
                return Err(refuse(
                    "slurm.max_jobs",
                    format!(
                        "{} jobs (from {}) is more than the site's {max}",
                        c.value, c.source
                    ),
                ))
            }
            _ => acc.slurm_max_jobs = Some(Sourced::new(max, ssrc.clone())),
        }
    }

    // Review: the site's mode is a floor; limits: the site's are maxima.
    if let Some(floor) = sp.review.map(|r| r.mode()) {
        if acc.review.value.rank() < floor.rank() {
            if chosen_by_user(&acc.review.source) {
                return Err(refuse(
                    "review",
                    format!(
                        "review mode {} (from {}) is weaker than the site's `{}`",
                        acc.review.value.name(),
                        acc.review.source,
                        floor.name()
                    ),
                ));
            }
            acc.review = Sourced::new(floor, ssrc.clone());
        }
    }
    let notes = acc
        .limits
        .enforce_site(&sp.limits, &ssrc, chosen_by_user)
        .map_err(|(key, message)| refuse(&key, message))?;
    acc.notes.extend(notes);
    Ok(())
}

/// The site directory: `JAIL_SITE_DIR` (only a root-owned directory, and
/// never in place of an installed site policy), else `default_site` if it
/// exists.
pub(super) fn site_dir(
    env: &impl Fn(&str) -> Option<OsString>,
    default_site: &Path,
) -> Result<Option<PathBuf>, ConfigError> {
    Ok(match env("JAIL_SITE_DIR").filter(|v| !v.is_empty()) {
        Some(d) => {
            let d = PathBuf::from(d);
            if !d.is_absolute() {
                return Err(ConfigError::UnsafeSite {
                    dir: d,
                    message: "JAIL_SITE_DIR must be an absolute path".into(),
                });
            }
            if !d.is_dir() {
                return Err(ConfigError::UnsafeSite {
                    dir: d,
                    message: "JAIL_SITE_DIR is not a directory".into(),
                });
            }
            let real = check_site_dir(&d)?;
            // Any root-owned directory would do, e.g. an empty one: so
            // where an administrator installed a site policy, the variable
            // must not swap it for another.
            if default_site.is_dir() && fs::canonicalize(default_site).ok() != Some(real.clone()) {
                return Err(ConfigError::UnsafeSite {
                    dir: d,
                    message: format!(
                        "JAIL_SITE_DIR cannot replace the site policy installed in {}",
                        default_site.display()
                    ),
                });
            }
            Some(real)
        }
        None if default_site.is_dir() => Some(check_site_dir(default_site)?),
        None => None,
    })
}

/// The site directory must be owned by root and writable by nobody else,
/// and so must every directory above it (a sticky root-owned directory such
/// as /tmp is fine: others cannot replace what root put there). Otherwise
/// the user could write the policy that is supposed to bind them.
pub fn check_site_dir(dir: &Path) -> Result<PathBuf, ConfigError> {
    let unsafe_site = |message: String| ConfigError::UnsafeSite {
        dir: dir.to_path_buf(),
        message,
    };
    let real = fs::canonicalize(dir).map_err(|e| unsafe_site(e.to_string()))?;
    let md = fs::metadata(&real).map_err(|e| unsafe_site(e.to_string()))?;
    if md.uid() != 0 || md.mode() & 0o022 != 0 {
        return Err(unsafe_site(format!(
            "must be owned by root and not writable by group or others \
             (owner uid {}, mode {:o})",
            md.uid(),
            md.mode() & 0o7777
        )));
    }
    for a in real.ancestors().skip(1) {
        let m = fs::metadata(a).map_err(|e| unsafe_site(e.to_string()))?;
        let sticky = m.mode() & 0o1000 != 0;
        if m.uid() != 0 || (m.mode() & 0o022 != 0 && !sticky) {
            return Err(unsafe_site(format!(
                "its parent {} must be owned by root and not writable by others \
                 (owner uid {}, mode {:o})",
                a.display(),
                m.uid(),
                m.mode() & 0o7777
            )));
        }
    }
    Ok(real)
}

/// A file inside the site directory: root's, and writable by root only.
pub(super) fn check_site_file(path: &Path) -> Result<(), ConfigError> {
    let md = fs::metadata(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if md.uid() != 0 || md.mode() & 0o022 != 0 {
        return Err(ConfigError::UnsafeSite {
            dir: path.to_path_buf(),
            message: format!(
                "must be owned by root and not writable by group or others \
                 (owner uid {}, mode {:o})",
                md.uid(),
                md.mode() & 0o7777
            ),
        });
    }
    Ok(())
}

/// Reads the site's jail.toml (`bytes`, read from `file`) into its layer.
pub(super) fn read_layer(file: PathBuf, bytes: &[u8]) -> Result<SiteLayer, ConfigError> {
    check_site_file(&file)?;
    let mut profile = parse_kind(bytes, &file, FileKind::Site)?;
    let site = profile
        .site
        .take()
        .map(|s| s.into_inner())
        .unwrap_or_default();
    let project_roots = site.project_roots.as_ref().map(|roots| {
        roots
            .iter()
            .map(|r| fs::canonicalize(r).unwrap_or_else(|_| PathBuf::from(r)))
            .collect()
    });
    let passwd_home = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.dir);
    Ok(SiteLayer {
        file,
        profile,
        site,
        project_roots,
        other_homes: passwd_home.into_iter().collect(),
    })
}
