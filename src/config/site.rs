//! Site enforcement, in one place: where the site policy lives (the
//! root-owned site directory), how its jail.toml is read, and how it bounds
//! every later layer (floors, maxima, ceilings; refused when the user asked
//! for more, clamped when a builtin profile did).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::catalogue::{chosen_by_user, Catalogue, Request, SiteLayer};
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
    if let Some(nets) = &sp.slurm.cluster_networks {
        acc.cluster_networks = nets.get_ref().clone();
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

/// The site checks again on the host's real paths: `resolve` compares
/// paths as written, so a symlink (`--rw ~/link` pointing into a site
/// read-only tree) could otherwise get past it. Paths that do not exist
/// are skipped (nothing to bind).
pub fn enforce_site_on_host(spec: &JailSpec, cat: &Catalogue) -> Result<(), ConfigError> {
    let Some(site) = &cat.site else { return Ok(()) };
    let real = |p: &Path| fs::canonicalize(p).ok();
    let from_site = |s: &Source| matches!(s, Source::Site(f) if *f == site.file);
    let fsp = &spec.filesystem;
    let site_ro: Vec<PathBuf> = fsp
        .ro
        .iter()
        .filter(|r| from_site(&r.source))
        .filter_map(|r| real(&r.value))
        .collect();
    let site_hide: Vec<PathBuf> = fsp
        .hide
        .iter()
        .filter(|h| from_site(&h.source))
        .filter_map(|h| real(&h.value))
        .collect();
    let project = real(&spec.project.value).unwrap_or_else(|| spec.project.value.clone());
    let refuse = |key: &str, message: String| ConfigError::Refused {
        file: site.file.clone(),
        key: key.to_string(),
        message,
    };
    for (v, rw) in fsp
        .ro
        .iter()
        .map(|v| (v, false))
        .chain(fsp.rw.iter().map(|v| (v, true)))
    {
        if !chosen_by_user(&v.source) {
            continue;
        }
        let Some(r) = real(&v.value) else { continue };
        let shown = |what: &str| {
            format!(
                "{} (from {}) leads to {}, {what}",
                v.value.display(),
                v.source,
                r.display()
            )
        };
        if site_hide.iter().any(|h| r.starts_with(h)) {
            return Err(refuse("filesystem.hide", shown("which the site hides")));
        }
        if rw && site_ro.iter().any(|o| r.starts_with(o)) {
            return Err(refuse(
                "filesystem.ro",
                shown("which is read-only by site policy"),
            ));
        }
        if rw && site.site.rw_outside_project == Some(false) && !r.starts_with(&project) {
            return Err(refuse(
                "site.rw_outside_project",
                shown("which is outside the project"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::proxy::parse_proxy;
    use crate::config::testkit::*;

    #[test]
    fn site_hidden_paths_are_a_floor() {
        let c = cat(
            Some("[filesystem]\nhide = [\"/data/secret\"]\n"),
            None,
            None,
        );
        let spec = run(&c, &req(&["true"])).unwrap();
        let h = spec
            .filesystem
            .hide
            .iter()
            .find(|h| h.value == Path::new("/data/secret"))
            .unwrap();
        assert_eq!(h.source, Source::Site(SITE.into()));
        for p in ["/data/secret", "/data/secret/x"] {
            let mut r = req(&["true"]);
            r.ro = vec![p.into()];
            refused(run(&c, &r), "filesystem.hide");
        }
        // `~` means the passwd home too: HOME cannot move a floor away
        let c = cat(
            Some("[filesystem]\nhide = [\"~/lab\"]\nro = [\"~/ref\"]\n"),
            None,
            None,
        );
        let mut r = req(&["true"]);
        r.ro = vec!["/home/real-u/lab".into()];
        refused(run(&c, &r), "filesystem.hide");
        let mut r = req(&["true"]);
        r.rw = vec!["/home/real-u/ref".into()];
        refused(run(&c, &r), "filesystem.ro");
        let spec = run(&c, &req(&["true"])).unwrap();
        let h = paths(&spec.filesystem.hide);
        assert!(h.contains(&"/home/u/lab".into()) && h.contains(&"/home/real-u/lab".into()));
        let c = cat(
            Some("[filesystem]\nhide = [\"/data/secret\"]\n"),
            Some("[filesystem]\nrw = [\"/data/secret\"]\n"),
            None,
        );
        refused(run(&c, &req(&["true"])), "filesystem.hide");
    }

    #[test]
    fn site_network_mode_is_a_maximum() {
        let c = cat(Some("[network]\nmode = \"none\"\n"), None, None);
        // a builtin profile is clamped, and explain says so
        let spec = run(&c, &req(&["claude"])).unwrap();
        assert_eq!(spec.network.mode.value, NetMode::None);
        assert_eq!(spec.network.mode.source, Source::Site(SITE.into()));
        assert!(spec.notes.iter().any(|n| n.contains("lowered network")));
        let mut r = req(&["true"]);
        r.net = Some(NetMode::Host);
        let msg = refused(run(&c, &r), "network.mode");
        assert!(msg.contains("--net"), "{msg}");
        let c = cat(
            Some("[network]\nmode = \"allowlist\"\n"),
            Some("[network]\nmode = \"host\"\n"),
            None,
        );
        refused(run(&c, &req(&["true"])), "network.mode");
        // narrowing below the maximum is fine
        let mut r = req(&["claude"]);
        r.net = Some(NetMode::None);
        // the command line narrows the user's file below the maximum
        assert_eq!(run(&c, &r).unwrap().network.mode.value, NetMode::None);
        let c = cat(Some("[network]\nmode = \"allowlist\"\n"), None, None);
        assert_eq!(run(&c, &r).unwrap().network.mode.value, NetMode::None);
    }

    #[test]
    fn only_the_site_lets_jobs_use_the_nodes_network() {
        use crate::config::profile::JobNetwork;
        let spec = run(&cat(None, None, None), &req(&["true"])).unwrap();
        assert_eq!(spec.slurm.job_network.value, JobNetwork::Policy);
        let c = cat(Some("[site]\nslurm_job_network = \"node\"\n"), None, None);
        let spec = run(&c, &req(&["true"])).unwrap();
        assert_eq!(spec.slurm.job_network.value, JobNetwork::Node);
        assert_eq!(spec.slurm.job_network.source, Source::Site(SITE.into()));
    }

    #[test]
    fn the_site_names_the_cluster_networks_and_explain_shows_the_rule() {
        use crate::config::profile::JobNetwork;
        let site = "[site]\nslurm_job_network = \"cluster\"\n\
                    [slurm]\ncluster_networks = [\"10.1.0.0/16\"]\n";
        let mut r = req(&["true"]);
        r.net = Some(NetMode::None);
        let spec = run(&cat(Some(site), None, None), &r).unwrap();
        assert_eq!(spec.slurm.job_network.value, JobNetwork::Cluster);
        assert_eq!(spec.slurm.cluster_networks.len(), 1);
        let mut spec = spec;
        spec.slurm.enabled.value = true;
        let text = crate::config::explain::render(&spec, 0);
        assert!(
            text.contains(
                "job network    cluster: each task uses its node's network; it reaches \
                 the job's own nodes and 10.1.0.0/16 (not loopback); nothing else (the policy: none)"
            ),
            "{text}"
        );
    }

    #[test]
    fn slurm_lists_and_cap_are_site_ceilings() {
        let site = "[slurm]\npartitions = [\"debug\", \"gpu\"]\nmax_jobs = 4\n";
        let c = cat(Some(site), None, None);
        let spec = run(&c, &req(&["true"])).unwrap();
        let p = spec.slurm.partitions.unwrap();
        assert_eq!(p.value, vec!["debug", "gpu"]);
        assert_eq!(p.source, Source::Site(SITE.into()));
        assert_eq!(spec.slurm.max_jobs.unwrap().value, 4);
        assert!(spec.slurm.accounts.is_none());
        // The user may narrow...
        let c = cat(
            Some(site),
            Some("[slurm]\npartitions = [\"gpu\"]\nmax_jobs = 2\n"),
            None,
        );
        let spec = run(&c, &req(&["true"])).unwrap();
        assert_eq!(spec.slurm.partitions.unwrap().value, vec!["gpu"]);
        assert_eq!(spec.slurm.max_jobs.unwrap().value, 2);
        // ... never widen.
        let c = cat(Some(site), Some("[slurm]\npartitions = [\"big\"]\n"), None);
        refused(run(&c, &req(&["true"])), "slurm.partitions");
        let c = cat(Some(site), Some("[slurm]\nmax_jobs = 9\n"), None);
        refused(run(&c, &req(&["true"])), "slurm.max_jobs");
        let c = cat(
            Some("[slurm]\nqos = [\"low\"]\n"),
            Some("[slurm]\nqos = [\"high\"]\n"),
            None,
        );
        refused(run(&c, &req(&["true"])), "slurm.qos");
        let c = cat(Some("[slurm]\naccounts = [\"a b\"]\n"), None, None);
        assert!(matches!(
            run(&c, &req(&["true"])),
            Err(ConfigError::BadSlurmName { .. })
        ));
    }

    #[test]
    fn site_allow_list_is_a_ceiling() {
        let c = cat(
            Some("[network]\nallow = [\"@anthropic\", \"*.github.com\"]\n"),
            None,
            None,
        );
        let spec = run(&c, &req(&["claude"])).unwrap();
        assert!(allow(&spec).contains(&"api.anthropic.com".into()));
        // a builtin profile's extra names are dropped, and said so
        let spec = run(&c, &req(&["codex"])).unwrap();
        assert!(allow(&spec).is_empty(), "{:?}", allow(&spec));
        assert!(spec.notes.iter().any(|n| n.contains("api.openai.com")));
        let mut r = req(&["claude"]);
        r.allow_domain = vec!["api.github.com".into(), "*.x.github.com".into()];
        assert!(run(&c, &r).is_ok());
        r.allow_domain = vec!["github.com".into()];
        let msg = refused(run(&c, &r), "network.allow");
        assert!(
            msg.contains("github.com") && msg.contains("--allow-domain"),
            "{msg}"
        );
        let c = cat(Some("[network]\nallow = []\n"), None, None);
        let mut r = req(&["true"]);
        r.allow_domain = vec!["example.com".into()];
        refused(run(&c, &r), "network.allow");
    }

    #[test]
    fn allow_entries_take_a_port_and_the_site_ceiling_sees_the_name() {
        let c = cat(None, None, None);
        let mut r = req(&["true"]);
        r.allow_domain = vec!["GitHub.com:22".into(), "198.51.100.2".into()];
        let spec = run(&c, &r).unwrap();
        let allow = allow(&spec);
        assert_eq!(allow, vec!["github.com:22", "198.51.100.2"]);
        for bad in ["x.org:0", "x.org:99999", "x.org:ssh", ":22"] {
            r.allow_domain = vec![bad.into()];
            assert!(
                matches!(run(&c, &r), Err(ConfigError::BadDomain { .. })),
                "{bad}"
            );
        }
        assert!(domain_covers("github.com", "github.com:22"));
        assert!(domain_covers("*.github.com", "api.github.com:22"));
        assert!(domain_covers("github.com:22", "github.com:22"));
        assert!(!domain_covers("github.com:22", "github.com:443"));
        assert!(!domain_covers("github.com:22", "github.com"));
    }

    #[test]
    fn site_caps_exposed_ports_and_fixes_the_proxy() {
        let c = cat(
            Some("[network]\nexpose_host_ports = [11434]\nproxy = \"http://proxy.site:3128\"\n"),
            None,
            None,
        );
        let mut r = req(&["true"]);
        r.expose_host_port = vec![11434];
        let spec = run(&c, &r).unwrap();
        assert_eq!(
            spec.network.proxy.as_ref().unwrap().value,
            "http://proxy.site:3128"
        );
        r.expose_host_port = vec![8080];
        let msg = refused(run(&c, &r), "network.expose_host_ports");
        assert!(msg.contains("8080"), "{msg}");
        let c = cat(
            Some("[network]\nproxy = \"http://proxy.site:3128\"\n"),
            Some("[network]\nproxy = \"http://mine:8080\"\n"),
            None,
        );
        refused(run(&c, &req(&["true"])), "network.proxy");
        let c = cat(None, Some("[network]\nproxy = \"socks5://x:1\"\n"), None);
        assert!(matches!(
            run(&c, &req(&["true"])),
            Err(ConfigError::Network(_))
        ));
        assert_eq!(
            parse_proxy("http://[2001:db8::1]:3128/"),
            Some(("2001:db8::1".into(), 3128))
        );
        assert_eq!(parse_proxy("http://p:0"), None);
    }

    #[test]
    fn site_ports_are_a_ceiling() {
        let c = cat(Some("[network]\nports = [443]\n"), None, None);
        let mut r = req(&["claude"]);
        r.allow_port = vec![443];
        assert!(run(&c, &r).is_ok());
        r.allow_port = vec![22];
        refused(run(&c, &r), "network.ports");
    }

    #[test]
    fn site_denied_domains_are_unioned() {
        let c = cat(
            Some("[network]\ndeny = [\"pastebin.com\"]\n"),
            Some("[network]\ndeny = [\"transfer.sh\"]\n"),
            None,
        );
        let spec = run(&c, &req(&["claude"])).unwrap();
        let d: Vec<String> = spec
            .network
            .deny
            .iter()
            .map(|d| d.value.to_string())
            .collect();
        assert!(
            d.iter().any(|x| x == "pastebin.com") && d.iter().any(|x| x == "transfer.sh"),
            "{d:?}"
        );
    }

    #[test]
    fn site_read_only_never_becomes_read_write() {
        let mut c = cat(Some("[filesystem]\nro = [\"/data\"]\n"), None, None);
        let spec = run(&c, &req(&["true"])).unwrap();
        assert!(paths(&spec.filesystem.ro).contains(&"/data".to_string()));
        for p in ["/data", "/data/sub"] {
            let mut r = req(&["true"]);
            r.rw = vec![p.into()];
            refused(run(&c, &r), "filesystem.ro");
        }
        // a site profile that contradicts jail.toml is clamped
        c.profiles.push(NamedProfile::new(
            "lab",
            parse(
                "extends = \"default\"\n[filesystem]\nrw = [\"/data/x\"]\n",
                "/etc/jail/profiles/lab.toml",
                FileKind::Profile,
            ),
            Source::Site("/etc/jail/profiles/lab.toml".into()),
        ));
        let mut r = req(&["true"]);
        r.profile = Some("lab".into());
        let spec = run(&c, &r).unwrap();
        assert!(!paths(&spec.filesystem.rw).contains(&"/data/x".to_string()));
        assert!(paths(&spec.filesystem.ro).contains(&"/data/x".to_string()));
    }

    #[test]
    fn site_home_mode_is_a_maximum() {
        let c = cat(
            Some("[filesystem]\nhome = \"tmpfs\"\n"),
            Some("[filesystem]\nhome = \"ro\"\n"),
            None,
        );
        refused(run(&c, &req(&["true"])), "filesystem.home");
    }

    #[test]
    fn site_can_forbid_rw_outside_the_project() {
        let c = cat(Some("[site]\nrw_outside_project = false\n"), None, None);
        let mut r = req(&["claude"]);
        r.rw = vec!["/home/u/proj/build".into()];
        let spec = run(&c, &r).unwrap();
        // the builtin agent state stays read-write
        assert!(paths(&spec.filesystem.rw).contains(&"/home/u/.claude".to_string()));
        r.rw = vec!["/scratch".into()];
        refused(run(&c, &r), "site.rw_outside_project");
    }

    #[test]
    fn site_limits_profiles_project_dirs_and_gpu() {
        let c = cat(
            Some("[site]\nprofiles = [\"default\", \"shell\"]\n"),
            None,
            None,
        );
        assert!(run(&c, &req(&["make"])).is_ok());
        let msg = refused(run(&c, &req(&["claude"])), "site.profiles");
        assert!(msg.contains("claude"), "{msg}");
        let c = cat(Some("[site]\nproject_roots = [\"/home\"]\n"), None, None);
        assert!(run(&c, &req(&["true"])).is_ok());
        let c = cat(
            Some("[site]\nproject_roots = [\"/srv/projects\"]\n"),
            None,
            None,
        );
        refused(run(&c, &req(&["true"])), "site.project_roots");
        let c = cat(Some("[site]\ngpu = false\n"), None, None);
        let mut r = req(&["true"]);
        r.gpu = true;
        refused(run(&c, &r), "site.gpu");
    }

    #[test]
    fn site_env_values_dns_and_slurm_are_enforced() {
        let site = "[env]\nset = { HTTPS_PROXY = \"http://proxy:3128\" }\npass = [\"LAB_ID\"]\n\
                    [network]\ndns_upstream = \"10.0.0.53:53\"\n[slurm]\nenabled = false\n";
        let c = cat(Some(site), None, None);
        let spec = run(&c, &req(&["true"])).unwrap();
        assert!(spec.env.pass.iter().any(|p| p.value == "LAB_ID"));
        assert!(!spec.slurm.enabled.value);
        assert_eq!(spec.slurm.enabled.source, Source::Site(SITE.into()));
        let mut r = req(&["true"]);
        r.env = vec!["HTTPS_PROXY=http://evil".into()];
        refused(run(&c, &r), "env.set.HTTPS_PROXY");
        let mut r = req(&["true"]);
        r.dns_upstream = Some("1.1.1.1:53".into());
        refused(run(&c, &r), "network.dns_upstream");
        let c = cat(Some(site), Some("[slurm]\nenabled = true\n"), None);
        refused(run(&c, &req(&["true"])), "slurm.enabled");
    }

    #[test]
    fn site_blocked_variables_are_a_floor() {
        let c = cat(Some("[env]\nblock = [\"ANTHROPIC_*\"]\n"), None, None);
        let spec = run(&c, &req(&["claude"])).unwrap();
        assert!(!spec.env.pass.iter().any(|p| p.value == "ANTHROPIC_API_KEY"));
        assert!(spec
            .env
            .pass
            .iter()
            .any(|p| p.value == "CLAUDE_CODE_OAUTH_TOKEN"));
        assert!(spec.env.block.iter().any(|b| b.value == "ANTHROPIC_*"));
        assert!(spec.notes.iter().any(|n| n.contains("ANTHROPIC_API_KEY")));
        let mut r = req(&["true"]);
        r.env = vec!["ANTHROPIC_BASE_URL".into()];
        refused(run(&c, &r), "env.block");
        let bad = parse_kind(
            b"[env]\nblock = [\"bad-name\"]\n",
            Path::new(SITE),
            FileKind::Site,
        );
        assert!(bad.is_err());
    }

    #[test]
    fn a_user_profile_may_not_replace_a_site_profile() {
        let mut c = cat(None, None, None);
        for (src, file) in [
            (
                Source::Site("/etc/jail/profiles/lab.toml".into()),
                "/etc/jail/profiles/lab.toml",
            ),
            (
                Source::User("/u/profiles/lab.toml".into()),
                "/u/profiles/lab.toml",
            ),
        ] {
            c.profiles.push(NamedProfile::new(
                "lab",
                parse("extends = \"default\"\n", file, FileKind::Profile),
                src,
            ));
        }
        let mut r = req(&["true"]);
        r.profile = Some("lab".into());
        match run(&c, &r) {
            Err(ConfigError::Refused { file, key, .. }) => {
                assert_eq!(file, Path::new("/etc/jail/profiles/lab.toml"));
                assert_eq!(key, "profile lab");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_trusted_widening_still_obeys_the_site() {
        let c = cat(
            Some("[site]\ntrust_projects = false\n"),
            None,
            Some(("[network]\nallow = [\"@pypi\"]\n", true)),
        );
        refused(run(&c, &req(&["claude"])), "site.trust_projects");
        let c = cat(
            Some("[network]\nmode = \"none\"\n"),
            None,
            Some(("[network]\nmode = \"host\"\n", true)),
        );
        refused(run(&c, &req(&["true"])), "network.mode");
    }

    #[test]
    fn site_limits_are_maxima_and_site_review_a_floor() {
        let site = "review = true\n[limits]\nmemory = \"2G\"\npids = 100\n";
        let c = cat(Some(site), None, None);
        let spec = run(&c, &req(&["make"])).unwrap();
        assert_eq!(spec.review.value, ReviewMode::Ask);
        assert_eq!(spec.limits.memory.as_ref().unwrap().value, 2 << 30);
        assert!(matches!(
            spec.limits.pids.as_ref().unwrap().source,
            Source::Site(_)
        ));
        let mut r = req(&["make"]);
        r.memory = Some(8 << 30);
        let msg = refused(run(&c, &r), "limits.memory");
        assert!(msg.contains("above the site's maximum 2 GiB"), "{msg}");
        let mut r = req(&["make"]);
        r.review = Some(ReviewMode::Apply);
        refused(run(&c, &r), "review");
        let c = cat(Some(site), Some("review = false\n"), None);
        refused(run(&c, &req(&["make"])), "review");
        // Lower values and stronger review modes are fine.
        let mut r = req(&["make"]);
        r.memory = Some(1 << 30);
        r.review = Some(ReviewMode::Keep);
        let spec = run(&cat(Some(site), None, None), &r).unwrap();
        assert_eq!(spec.limits.memory.unwrap().value, 1 << 30);
    }
}
