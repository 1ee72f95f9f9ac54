//! Trust: what an untrusted project file widens. The project's .jail.toml
//! arrives with a cloned repository; whatever it would widen needs
//! `jail trust`.

use std::path::Path;

use super::resolve::{slurm_rank, Acc, SlurmLists};
use super::spec::*;

/// What the project layer widened, as (key, what) pairs: compares the
/// policy before and after it.
pub(super) fn widenings(before: &Acc, after: &Acc, project: &Path) -> Vec<(String, String)> {
    let mut w = Vec::new();
    let is_project = |s: &Source| matches!(s, Source::Project(_));
    if after.home.value > before.home.value {
        w.push((
            "filesystem.home".into(),
            format!("home {:?}", after.home.value).to_lowercase(),
        ));
    }
    for r in after.ro.iter().filter(|r| is_project(&r.source)) {
        // Read-only is a narrowing for what was visible already: the same
        // path before (ro or rw), or a project path under no hidden path
        // (naming something below a hidden directory would show it).
        let was_visible = before
            .ro
            .iter()
            .chain(&before.rw)
            .any(|b| b.value == r.value);
        let in_project = r.value.starts_with(project)
            && !before.hide.iter().any(|h| r.value.starts_with(&h.value));
        if !was_visible && !in_project {
            w.push((
                "filesystem.ro".into(),
                format!("shows {}", r.value.display()),
            ));
        }
    }
    for r in after.rw.iter().filter(|r| is_project(&r.source)) {
        if !before.rw.iter().any(|b| b.value == r.value) {
            w.push((
                "filesystem.rw".into(),
                format!("{} read-write", r.value.display()),
            ));
        }
    }
    for c in after.create.iter().filter(|c| is_project(&c.source)) {
        if !before.create.iter().any(|b| b.value == c.value) {
            w.push((
                "filesystem.create".into(),
                format!("creates {}", c.value.display()),
            ));
        }
    }
    for h in &before.hide {
        if !after.hide.iter().any(|a| a.value == h.value) {
            w.push((
                "filesystem.ro/rw".into(),
                format!("shows hidden {}", h.value.display()),
            ));
        }
    }
    if after.net_mode.value > before.net_mode.value {
        w.push((
            "network.mode".into(),
            format!("network {:?}", after.net_mode.value).to_lowercase(),
        ));
    }
    for a in &after.allow {
        if !before.allow.iter().any(|b| b.value == a.value) {
            w.push(("network.allow".into(), format!("allows {}", a.value)));
        }
    }
    for p in &after.ports {
        if !before.ports.iter().any(|b| b.value == p.value) {
            w.push(("network.ports".into(), format!("port {}", p.value)));
        }
    }
    let dns = |a: &Acc| a.dns_upstream.as_ref().map(|d| d.value.clone());
    if dns(after) != dns(before) {
        w.push(("network.dns_upstream".into(), "another DNS server".into()));
    }
    for p in &after.expose {
        if !before.expose.iter().any(|b| b.value == p.value) {
            w.push((
                "network.expose_host_ports".into(),
                format!("host port {}", p.value),
            ));
        }
    }
    let proxy = |a: &Acc| a.proxy.as_ref().map(|d| d.value.clone());
    if proxy(after) != proxy(before) {
        w.push(("network.proxy".into(), "an upstream proxy".into()));
    }
    for p in &after.pass {
        if !before.pass.iter().any(|b| b.value == p.value) {
            w.push(("env.pass".into(), format!("passes ${}", p.value)));
        }
    }
    if slurm_rank(after.slurm.value) > slurm_rank(before.slurm.value) {
        w.push(("slurm.enabled".into(), "Slurm submission".into()));
    }
    // A list narrows what was allowed (any, or a list it stays within).
    for (key, _) in SlurmLists::KEYS {
        if let (Some(b), Some(a)) = (before.slurm_lists.get(key), after.slurm_lists.get(key)) {
            if let Some(extra) = a.value.iter().find(|n| !b.value.contains(n)) {
                w.push((format!("slurm.{key}"), format!("allows {extra}")));
            }
        }
    }
    if let (Some(b), Some(a)) = (&before.slurm_max_jobs, &after.slurm_max_jobs) {
        if a.value > b.value {
            w.push(("slurm.max_jobs".into(), format!("{} jobs", a.value)));
        }
    }
    if after.review.value.rank() < before.review.value.rank() {
        w.push((
            "review".into(),
            format!("review mode {}", after.review.value.name()),
        ));
    }
    w.extend(before.limits.raised(&after.limits));
    w
}
