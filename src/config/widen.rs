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

#[cfg(test)]
mod tests {
    use crate::config::testkit::*;

    #[test]
    fn a_project_file_widening_slurm_needs_trust() {
        let user = "[slurm]\npartitions = [\"debug\"]\nmax_jobs = 2\n";
        // Narrowing is fine untrusted.
        let c = cat(None, Some(user), Some(("[slurm]\nmax_jobs = 1\n", false)));
        assert_eq!(
            run(&c, &req(&["true"]))
                .unwrap()
                .slurm
                .max_jobs
                .unwrap()
                .value,
            1
        );
        for (text, key) in [
            (
                "[slurm]\npartitions = [\"debug\", \"big\"]\n",
                "slurm.partitions",
            ),
            ("[slurm]\nmax_jobs = 5\n", "slurm.max_jobs"),
        ] {
            let c = cat(None, Some(user), Some((text, false)));
            match run(&c, &req(&["true"])) {
                Err(ConfigError::Untrusted { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{text}: {other:?}"),
            }
            let c = cat(None, Some(user), Some((text, true)));
            assert!(run(&c, &req(&["true"])).is_ok(), "{text}");
        }
    }

    #[test]
    fn an_untrusted_project_cannot_expose_host_ports_or_set_a_proxy() {
        for (text, key) in [
            (
                "[network]\nexpose_host_ports = [11434]\n",
                "network.expose_host_ports",
            ),
            ("[network]\nproxy = \"http://p:1\"\n", "network.proxy"),
            ("[network]\nmode = \"learn\"\n", "network.mode"),
        ] {
            let c = cat(None, None, Some((text, false)));
            match run(&c, &req(&["true"])) {
                Err(ConfigError::Untrusted { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_untrusted_project_file_may_narrow_anything() {
        let narrow = "[filesystem]\nhome = \"tmpfs\"\nro = [\"vendor\"]\nhide = [\".env\", \"~/.gitconfig\"]\n\
                      [network]\nmode = \"none\"\ndeny = [\"pastebin.com\"]\n[env]\nset = { A = \"1\" }\n\
                      [slurm]\nenabled = false\n";
        let spec = run(&cat(None, None, Some((narrow, false))), &req(&["claude"])).unwrap();
        assert_eq!(spec.network.mode.value, NetMode::None);
        assert!(paths(&spec.filesystem.ro).contains(&"/home/u/proj/vendor".to_string()));
        assert!(paths(&spec.filesystem.hide).contains(&"/home/u/proj/.env".to_string()));
    }

    #[test]
    fn an_untrusted_project_file_may_not_widen() {
        let cases = [
            ("[network]\nmode = \"host\"\n", "network.mode"),
            ("[network]\nallow = [\"@pypi\"]\n", "network.allow"),
            ("[network]\nports = [22]\n", "network.ports"),
            (
                "[network]\ndns_upstream = \"1.1.1.1:53\"\n",
                "network.dns_upstream",
            ),
            (
                "[filesystem]\nro = [\"~/other-project\"]\n",
                "filesystem.ro",
            ),
            ("[filesystem]\nrw = [\"/scratch\"]\n", "filesystem.rw"),
            ("[filesystem]\ncreate = [\"~/.x\"]\n", "filesystem.rw"),
            ("[filesystem]\nro = [\"~/.ssh\"]\n", "filesystem.ro"),
            ("[filesystem]\nhome = \"rw\"\n", "filesystem.home"),
            ("[env]\npass = [\"GITHUB_TOKEN\"]\n", "env.pass"),
            ("[slurm]\nenabled = true\n", "slurm.enabled"),
        ];
        for (text, key) in cases {
            untrusted(
                run(&cat(None, None, Some((text, false))), &req(&["claude"])),
                key,
            );
            // the user's consent lets it apply
            assert!(
                run(&cat(None, None, Some((text, true))), &req(&["claude"])).is_ok(),
                "{text}"
            );
        }
        // showing a hidden path counts even when the path is inside the project
        let mut c = cat(
            None,
            None,
            Some(("[filesystem]\nro = [\"/home/u/proj/k\"]\n", false)),
        );
        let mut r = req(&["true"]);
        r.hide = vec![];
        c.user = Some(FileLayer {
            file: "/u/c.toml".into(),
            profile: parse(
                "[filesystem]\nhide = [\"/home/u/proj/k\"]\n",
                "/u/c.toml",
                FileKind::Layer,
            ),
            trusted: true,
        });
        untrusted(run(&c, &r), "filesystem.ro");
        // the message names `jail trust`
        let e = run(
            &cat(None, None, Some(("[network]\nmode = \"host\"\n", false))),
            &req(&["x"]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("jail trust") && e.contains("network.mode"),
            "{e}"
        );
    }

    #[test]
    fn project_read_only_of_visible_paths_is_a_narrowing() {
        // rw -> ro outside the project, for a path the profile shows
        let c = cat(
            None,
            None,
            Some(("[filesystem]\nro = [\"~/.claude\"]\n", false)),
        );
        let spec = run(&c, &req(&["claude"])).unwrap();
        assert!(paths(&spec.filesystem.ro).contains(&"/home/u/.claude".to_string()));
        assert!(!paths(&spec.filesystem.rw).contains(&"/home/u/.claude".to_string()));
        // but naming something below a hidden project directory shows it
        let mut c = cat(
            None,
            None,
            Some(("[filesystem]\nro = [\"keys/a\"]\n", false)),
        );
        c.user = Some(FileLayer {
            file: "/u/c.toml".into(),
            profile: parse(
                "[filesystem]\nhide = [\"/home/u/proj/keys\"]\n",
                "/u/c.toml",
                FileKind::Layer,
            ),
            trusted: true,
        });
        untrusted(run(&c, &req(&["true"])), "filesystem.ro");
    }

    #[test]
    fn an_untrusted_project_may_add_limits_and_review_but_not_lift_them() {
        let user = "review = true\n[limits]\ntimeout = \"1h\"\n";
        let c = cat(
            None,
            Some(user),
            Some((
                "review = \"keep\"\n[limits]\ntimeout = \"10m\"\npids = 50\n",
                false,
            )),
        );
        let spec = run(&c, &req(&["make"])).unwrap();
        assert_eq!(spec.review.value, ReviewMode::Keep);
        assert_eq!(spec.limits.timeout.unwrap().value, 600);
        let c = cat(None, Some(user), Some(("review = false\n", false)));
        untrusted(run(&c, &req(&["make"])), "review");
        let c = cat(None, Some(user), Some(("review = \"apply\"\n", false)));
        untrusted(run(&c, &req(&["make"])), "review");
        let c = cat(
            None,
            Some(user),
            Some(("[limits]\ntimeout = \"2h\"\n", false)),
        );
        untrusted(run(&c, &req(&["make"])), "limits.timeout");
        let c = cat(
            None,
            Some(user),
            Some(("[limits]\ntimeout = \"2h\"\n", true)),
        );
        assert_eq!(
            run(&c, &req(&["make"]))
                .unwrap()
                .limits
                .timeout
                .unwrap()
                .value,
            7200
        );
    }
}
