//! Layering: profiles (following `extends`), the user's config, the
//! project's .jail.toml and the command line are merged into one
//! `JailSpec`, then the site's enforced policy is applied. Pure: files are
//! read by `load`, host facts come in as data.
//!
//! Who may do what:
//! - builtin and site profiles are clamped to the site policy silently
//!   (explain says so): the user did not ask for more;
//! - the user's files, the project file and the command line are refused
//!   (exit 125, naming the site file and key) when they exceed it;
//! - the project file may narrow anything; what it widens needs `jail trust`
//!   (`widen`). The site's rules are in `site`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::agents;
use super::catalogue::{chosen_by_user, select_profile, Catalogue, HostFacts, Request};
use super::domain::{expand_domain, push_domain, Domain};
use super::env::{check_env_name, check_env_pattern};
use super::limits::{Limits, ReviewMode};
use super::paths::{
    abs_cli_path, check_not_internal, expand_tilde, layer_path, project_dir, push_unique, put_path,
    SameAs, OFFLINE_ENV, ROOT_SECRETS, SYSTEM_RO,
};
use super::profile::{self, HomeMode, NetMode, Profile, SlurmEnabled};
use super::proxy::check_proxy;
use super::site::{check_choices, check_project, enforce_site};
use super::spec::*;
use super::widen::widenings;
use super::ConfigError;

/// Paths the layers refer to, for resolving relative and `~` paths.
pub(super) struct Ctx<'a> {
    pub(super) home: &'a Path,
    pub(super) project: &'a Path,
}

/// The policy being built, layer by layer.
#[derive(Debug, Clone)]
pub(super) struct Acc {
    pub(super) home: Sourced<HomeMode>,
    pub(super) net_mode: Sourced<NetMode>,
    pub(super) dns_upstream: Option<Sourced<String>>,
    pub(super) slurm: Sourced<SlurmEnabled>,
    pub(super) slurm_lists: SlurmLists,
    pub(super) slurm_max_jobs: Option<Sourced<u32>>,
    pub(super) slurm_job_network: Sourced<super::profile::JobNetwork>,
    pub(super) cluster_networks: Vec<super::cidr::Cidr>,
    pub(super) ro: Vec<Sourced<PathBuf>>,
    pub(super) rw: Vec<Sourced<PathBuf>>,
    pub(super) hide: Vec<Sourced<PathBuf>>,
    pub(super) create: Vec<Sourced<PathBuf>>,
    pub(super) protect: Vec<Sourced<PathBuf>>,
    pub(super) watch: Vec<Watched>,
    pub(super) cache: Vec<Sourced<PathBuf>>,
    pub(super) own: Vec<Sourced<PathBuf>>,
    pub(super) allow: Vec<Sourced<Domain>>,
    pub(super) deny: Vec<Sourced<Domain>>,
    pub(super) ports: Vec<Sourced<u16>>,
    pub(super) expose: Vec<Sourced<u16>>,
    pub(super) proxy: Option<Sourced<String>>,
    pub(super) pass: Vec<Sourced<String>>,
    pub(super) set: Vec<(String, Sourced<String>)>,
    pub(super) block: Vec<Sourced<String>>,
    pub(super) review: Sourced<ReviewMode>,
    pub(super) limits: Limits,
    pub(super) notes: Vec<String>,
}

impl Acc {
    fn new() -> Acc {
        let dflt = || Source::Derived("jail's default".into());
        Acc {
            home: Sourced::new(HomeMode::Tmpfs, dflt()),
            net_mode: Sourced::new(NetMode::None, dflt()),
            dns_upstream: None,
            slurm: Sourced::new(SlurmEnabled::Bool(false), dflt()),
            slurm_lists: SlurmLists::default(),
            slurm_max_jobs: None,
            slurm_job_network: Sourced::new(Default::default(), dflt()),
            cluster_networks: Vec::new(),
            ro: Vec::new(),
            rw: Vec::new(),
            hide: Vec::new(),
            create: Vec::new(),
            protect: Vec::new(),
            watch: Vec::new(),
            cache: Vec::new(),
            own: Vec::new(),
            allow: Vec::new(),
            deny: Vec::new(),
            ports: Vec::new(),
            expose: Vec::new(),
            proxy: None,
            pass: Vec::new(),
            set: Vec::new(),
            block: Vec::new(),
            review: Sourced::new(ReviewMode::Off, dflt()),
            limits: Limits::default(),
            notes: Vec::new(),
        }
    }

    /// Merges one profile-schema layer. `unhide`: naming a hidden path
    /// itself in `ro`/`rw` shows it (the user's own files do this; profiles
    /// do not).
    fn apply(
        &mut self,
        p: &Profile,
        src: &Source,
        ctx: &Ctx,
        unhide: bool,
    ) -> Result<(), ConfigError> {
        let path = |s: &str| layer_path(s, ctx, src);
        if let Some(h) = p.filesystem.home {
            self.home = Sourced::new(h, src.clone());
        }
        let mut named = Vec::new();
        for s in &p.filesystem.ro {
            let p = path(s)?;
            named.push(p.clone());
            put_path(&mut self.ro, &mut self.rw, p, src.clone());
        }
        for s in p.filesystem.rw.iter().chain(&p.filesystem.create) {
            let p = path(s)?;
            named.push(p.clone());
            put_path(&mut self.rw, &mut self.ro, p, src.clone());
        }
        for s in &p.filesystem.create {
            push_unique(&mut self.create, path(s)?, src.clone());
        }
        // Protection only adds up along layers: no layer removes one
        // (naming the path itself in `rw` relaxes it, as for the project's).
        for s in &p.filesystem.protect {
            push_unique(&mut self.protect, path(s)?, src.clone());
        }
        for s in &p.filesystem.cache {
            push_unique(&mut self.cache, path(s)?, src.clone());
        }
        for s in &p.filesystem.own {
            push_unique(&mut self.own, path(s)?, src.clone());
        }
        for (f, keys) in &p.filesystem.watch {
            let file = path(f)?;
            match self.watch.iter_mut().find(|w| w.file == file) {
                Some(w) => {
                    for k in keys {
                        if !w.keys.contains(k) {
                            w.keys.push(k.clone());
                        }
                    }
                }
                None => self.watch.push(Watched {
                    file,
                    keys: keys.clone(),
                    source: src.clone(),
                }),
            }
        }
        if unhide {
            self.hide
                .retain(|h| !named.iter().any(|n| n.same_as(&h.value)));
        }
        for s in &p.filesystem.hide {
            push_unique(&mut self.hide, path(s)?, src.clone());
        }
        if let Some(m) = p.network.mode {
            self.net_mode = Sourced::new(m, src.clone());
        }
        for d in p.network.allow.iter().flatten() {
            for (domain, via) in expand_domain(d, src)? {
                push_domain(&mut self.allow, domain, src.clone(), via);
            }
        }
        for d in &p.network.deny {
            for (domain, via) in expand_domain(d, src)? {
                push_domain(&mut self.deny, domain, src.clone(), via);
            }
        }
        for &port in p.network.ports.iter().flatten() {
            push_unique(&mut self.ports, port, src.clone());
        }
        if let Some(d) = &p.network.dns_upstream {
            self.dns_upstream = Some(Sourced::new(d.clone(), src.clone()));
        }
        for &port in p.network.expose_host_ports.iter().flatten() {
            push_unique(&mut self.expose, port, src.clone());
        }
        if let Some(x) = &p.network.proxy {
            check_proxy(x, src)?;
            self.proxy = Some(Sourced::new(x.clone(), src.clone()));
        }
        for v in &p.env.pass {
            check_env_name(v)?;
            push_unique(&mut self.pass, v.clone(), src.clone());
        }
        for (k, v) in &p.env.set {
            check_env_name(k)?;
            self.set.retain(|(name, _)| name != k);
            self.set.push((
                k.clone(),
                Sourced::new(expand_tilde(v, ctx.home), src.clone()),
            ));
        }
        for b in &p.env.block {
            check_env_pattern(b)?;
            push_unique(&mut self.block, b.clone(), src.clone());
        }
        if let Some(e) = p.slurm.enabled {
            self.slurm = Sourced::new(e, src.clone());
        }
        for (key, list) in SlurmLists::KEYS {
            if let Some(l) = list(&p.slurm) {
                check_slurm_names(key, l, src)?;
                *self.slurm_lists.get_mut(key) = Some(Sourced::new(l.clone(), src.clone()));
            }
        }
        if let Some(m) = p.slurm.max_jobs {
            self.slurm_max_jobs = Some(Sourced::new(m, src.clone()));
        }
        if let Some(r) = p.review {
            self.review = Sourced::new(r.mode(), src.clone());
        }
        self.limits.apply(&p.limits, src);
        Ok(())
    }

    /// The command line: the last layer. Paths may be relative to the cwd.
    fn apply_cli(&mut self, req: &Request, home: &Path, cwd: &Path) -> Result<(), ConfigError> {
        let cli = |flag: &str| Source::Cli(flag.to_string());
        for (list, flag) in [(&req.ro, "--ro"), (&req.rw, "--rw"), (&req.hide, "--hide")] {
            if list.iter().any(|s| s.trim().is_empty()) {
                return Err(ConfigError::NotApplied {
                    path: PathBuf::new(),
                    origin: cli(flag).to_string(),
                    why: "an empty path (it would name the current directory; write `.` if you \
                          mean it)"
                        .into(),
                });
            }
        }
        for s in &req.ro {
            put_path(
                &mut self.ro,
                &mut self.rw,
                abs_cli_path(s, home, cwd),
                cli("--ro"),
            );
        }
        for s in &req.rw {
            put_path(
                &mut self.rw,
                &mut self.ro,
                abs_cli_path(s, home, cwd),
                cli("--rw"),
            );
        }
        // A hidden path shows only when the command line names that path itself.
        let named: BTreeSet<PathBuf> = req
            .ro
            .iter()
            .chain(&req.rw)
            .map(|s| abs_cli_path(s, home, cwd))
            .collect();
        self.hide
            .retain(|h| !named.iter().any(|n| n.same_as(&h.value)));
        for s in &req.hide {
            push_unique(&mut self.hide, abs_cli_path(s, home, cwd), cli("--hide"));
        }
        if let Some(m) = req.net {
            self.net_mode = Sourced::new(m, cli("--net"));
        }
        if let Some(h) = req.home {
            self.home = Sourced::new(h, cli("--home"));
        }
        // Naming a domain or a host port on the command line asks for the
        // network: a profile's `none` becomes `allowlist` (an explicit
        // `--net none` contradicts it).
        let asks = if !req.allow_domain.is_empty() {
            Some("--allow-domain")
        } else if !req.expose_host_port.is_empty() {
            Some("--expose-host-port")
        } else {
            None
        };
        if let Some(flag) = asks {
            if self.net_mode.value == NetMode::None {
                if req.net.is_some() {
                    return Err(ConfigError::Network(format!(
                        "{flag} needs the network, but --net none turns it off                          (use --net allowlist)"
                    )));
                }
                self.net_mode = Sourced::new(NetMode::Allowlist, cli(flag));
            }
        }
        for &p in &req.expose_host_port {
            push_unique(&mut self.expose, p, cli("--expose-host-port"));
        }
        for d in &req.allow_domain {
            for (domain, via) in expand_domain(d, &cli("--allow-domain"))? {
                push_domain(&mut self.allow, domain, cli("--allow-domain"), via);
            }
        }
        for &p in &req.allow_port {
            push_unique(&mut self.ports, p, cli("--allow-port"));
        }
        if let Some(d) = &req.dns_upstream {
            self.dns_upstream = Some(Sourced::new(d.clone(), cli("--dns-upstream")));
        }
        for e in &req.env {
            match e.split_once('=') {
                Some((k, v)) => {
                    check_env_name(k)?;
                    self.set.retain(|(name, _)| name != k);
                    self.set
                        .push((k.to_string(), Sourced::new(v.to_string(), cli("--env"))));
                }
                None => {
                    check_env_name(e)?;
                    push_unique(&mut self.pass, e.clone(), cli("--env"));
                }
            }
        }
        if let Some(r) = req.review {
            self.review = Sourced::new(r, cli("--review"));
        }
        self.limits
            .apply_cli(req.timeout, req.memory, req.pids, req.cpus);
        Ok(())
    }
}

/// The Slurm name lists (partitions, accounts, QOS) being layered.
#[derive(Debug, Clone, Default)]
pub(super) struct SlurmLists {
    pub(super) partitions: Option<Sourced<Vec<String>>>,
    pub(super) accounts: Option<Sourced<Vec<String>>>,
    pub(super) qos: Option<Sourced<Vec<String>>>,
}

type SlurmListOf = fn(&profile::SlurmSection) -> Option<&Vec<String>>;

impl SlurmLists {
    pub(super) const KEYS: [(&'static str, SlurmListOf); 3] = [
        ("partitions", |s| s.partitions.as_ref()),
        ("accounts", |s| s.accounts.as_ref()),
        ("qos", |s| s.qos.as_ref()),
    ];

    pub(super) fn get(&self, key: &str) -> &Option<Sourced<Vec<String>>> {
        match key {
            "partitions" => &self.partitions,
            "accounts" => &self.accounts,
            _ => &self.qos,
        }
    }

    pub(super) fn get_mut(&mut self, key: &str) -> &mut Option<Sourced<Vec<String>>> {
        match key {
            "partitions" => &mut self.partitions,
            "accounts" => &mut self.accounts,
            _ => &mut self.qos,
        }
    }
}

/// Partition, account and QOS names: what Slurm accepts in a list.
pub(super) fn check_slurm_names(
    key: &str,
    names: &[String],
    src: &Source,
) -> Result<(), ConfigError> {
    for n in names {
        if n.is_empty()
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(ConfigError::BadSlurmName {
                key: format!("slurm.{key}"),
                name: n.clone(),
                origin: src.to_string(),
            });
        }
    }
    Ok(())
}

pub(super) fn slurm_rank(s: SlurmEnabled) -> u8 {
    match s {
        SlurmEnabled::Bool(false) => 0,
        SlurmEnabled::Auto(_) => 1,
        SlurmEnabled::Bool(true) => 2,
    }
}

pub fn resolve(req: &Request, facts: &HostFacts, cat: &Catalogue) -> Result<JailSpec, ConfigError> {
    let profile = select_profile(req, cat);
    if let Some(site) = &cat.site {
        check_choices(site, req, &profile)?;
    }
    let chain = cat.chain(&profile.value)?;
    let (project, cwd) = project_dir(facts)?;
    if let Some(site) = &cat.site {
        check_project(site, &project.value)?;
    }
    let home = &facts.user.home;
    let ctx = Ctx {
        home,
        project: &project.value,
    };

    let mut acc = Acc::new();
    for np in &chain {
        let unhide = matches!(np.source, Source::User(_));
        acc.apply(np.profile()?, &np.source, &ctx, unhide)?;
        // A builtin agent profile hides the other agents' logins (one
        // list for all of them), as if its own `hide` named them.
        if let Source::Builtin(name) = &np.source {
            let src = agents::source();
            for f in agents::others(name) {
                push_unique(&mut acc.hide, layer_path(f, &ctx, &src)?, src.clone());
            }
        }
    }
    if let Some(u) = &cat.user {
        acc.apply(&u.profile, &Source::User(u.file.clone()), &ctx, true)?;
        acc.notes.push(format!("user config {}", u.file.display()));
    }
    if let Some(p) = &cat.project {
        let before = acc.clone();
        acc.apply(&p.profile, &Source::Project(p.file.clone()), &ctx, true)?;
        let wide = widenings(&before, &acc, &project.value);
        if let Some((key, what)) = wide.first() {
            if !p.trusted {
                return Err(ConfigError::Untrusted {
                    file: p.file.clone(),
                    key: key.clone(),
                    what: what.clone(),
                });
            }
            if let Some(site) = cat
                .site
                .as_ref()
                .filter(|s| s.site.trust_projects == Some(false))
            {
                return Err(ConfigError::Refused {
                    file: site.file.clone(),
                    key: "site.trust_projects".into(),
                    message: format!(
                        "{}: `{key}` would widen the policy ({what}); the site lets project \
                         files only narrow it",
                        p.file.display()
                    ),
                });
            }
        }
        acc.notes.push(format!(
            "project config {} ({})",
            p.file.display(),
            match (p.trusted, wide.is_empty()) {
                (true, _) => "trusted with `jail trust`",
                (false, true) => "not trusted; it only narrows",
                (false, false) => "not trusted",
            }
        ));
    }
    acc.apply_cli(req, home, &facts.cwd)?;
    check_not_internal(&acc, &project.value, home)?;
    if let Some(h) = acc
        .hide
        .iter()
        .find(|h| chosen_by_user(&h.source) && project.value.starts_with(&h.value))
    {
        return Err(ConfigError::NotApplied {
            path: h.value.clone(),
            origin: h.source.to_string(),
            why: format!(
                "it would hide the project {} itself",
                project.value.display()
            ),
        });
    }
    if facts.user.uid == 0 {
        // Root inside is root without capabilities: files readable by
        // uid 0 stay readable, so the usual root-only secrets are hidden.
        for p in ROOT_SECRETS {
            push_unique(
                &mut acc.hide,
                PathBuf::from(p),
                Source::Derived("running as root".into()),
            );
        }
        acc.notes.push(
            "running as root: the program is uid 0 inside, without capabilities; \
             root-only system secrets are hidden"
                .into(),
        );
    }
    if acc.ports.is_empty() {
        acc.ports.push(Sourced::new(
            443,
            Source::Derived("jail's default port (HTTPS)".into()),
        ));
    }
    if let Some(site) = &cat.site {
        enforce_site(&mut acc, site, &ctx)?;
        acc.notes
            .push(format!("site policy {}", site.file.display()));
    }
    // jail's own config and state: never visible, whatever the layers say.
    for d in &cat.jail_dirs {
        acc.ro.retain(|r| !r.value.starts_with(d));
        acc.rw.retain(|r| !r.value.starts_with(d));
        acc.create.retain(|r| !r.value.starts_with(d));
        push_unique(
            &mut acc.hide,
            d.clone(),
            Source::Derived("jail's own config and state".into()),
        );
    }

    let profile_name = profile.value.clone();
    if acc.net_mode.value == NetMode::None {
        // Package tools retry a network they do not have for minutes
        // (npm ~70 s, pip ~8 s per package): told the network is off,
        // they use their caches or fail at once. Unless a layer set them.
        for (k, v) in OFFLINE_ENV {
            if !acc.set.iter().any(|(n, _)| n == k) && !acc.pass.iter().any(|p| p.value == *k) {
                acc.set.push((
                    k.to_string(),
                    Sourced::new(
                        v.to_string(),
                        Source::Derived("network none: package tools offline".into()),
                    ),
                ));
            }
        }
    }
    let command = if req.command.is_empty() {
        vec![facts.shell.clone()]
    } else {
        req.command.clone()
    };
    let slurm_on = match acc.slurm.value {
        SlurmEnabled::Bool(b) => b,
        SlurmEnabled::Auto(_) => facts.has_sbatch,
    };
    // Only directories that stayed read-write are created.
    let rw_now: Vec<PathBuf> = acc.rw.iter().map(|r| r.value.clone()).collect();
    acc.create.retain(|c| rw_now.contains(&c.value));

    Ok(JailSpec {
        profile,
        command,
        user: facts.user.clone(),
        project,
        cwd,
        filesystem: FsPolicy {
            home: acc.home,
            system_ro: SYSTEM_RO.iter().map(PathBuf::from).collect(),
            ro: acc.ro,
            rw: acc.rw,
            hide: acc.hide,
            create: acc.create,
            protect: acc.protect,
            watch: acc.watch,
            cache: acc.cache,
            own: acc.own,
            storage: cat
                .data_dir
                .as_ref()
                .map(|d| d.join("profiles").join(&profile_name)),
        },
        network: NetPolicy {
            mode: acc.net_mode,
            allow: acc.allow,
            deny: acc.deny,
            ports: acc.ports,
            dns_upstream: acc.dns_upstream,
            expose_host_ports: acc.expose,
            proxy: acc.proxy,
        },
        env: EnvPolicy {
            pass: acc.pass,
            set: acc.set,
            block: acc.block,
        },
        gpu: if req.gpu {
            Sourced::new(true, Source::Cli("--gpu".into()))
        } else {
            Sourced::new(false, Source::Derived("jail's default".into()))
        },
        slurm: SlurmPolicy {
            enabled: Sourced::new(slurm_on, acc.slurm.source),
            partitions: acc.slurm_lists.partitions,
            accounts: acc.slurm_lists.accounts,
            qos: acc.slurm_lists.qos,
            max_jobs: acc.slurm_max_jobs,
            job_network: acc.slurm_job_network,
            cluster_networks: acc.cluster_networks,
        },
        review: acc.review,
        limits: acc.limits,
        notes: acc.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testkit::*;

    #[test]
    fn default_profile_and_project_from_git() {
        let spec = resolve(
            &req(&["make", "test"]),
            &facts(),
            &Catalogue::builtin().unwrap(),
        )
        .unwrap();
        assert_eq!(spec.profile.value, "default");
        assert_eq!(spec.project.value, PathBuf::from("/home/u/proj"));
        assert_eq!(spec.cwd, PathBuf::from("/home/u/proj/sub"));
        assert_eq!(spec.network.mode.value, NetMode::None);
        assert_eq!(spec.filesystem.home.value, HomeMode::Persist);
        assert!(paths(&spec.filesystem.hide).contains(&"/home/u/.ssh".to_string()));
        assert_eq!(
            spec.filesystem.home.source,
            Source::Builtin("default".into())
        );
    }

    #[test]
    fn no_command_runs_the_shell_profile() {
        let spec = resolve(&req(&[]), &facts(), &Catalogue::builtin().unwrap()).unwrap();
        assert_eq!(spec.command, vec!["/bin/bash"]);
        assert_eq!(spec.profile.value, "shell");
        // shell extends default: the credential list is inherited
        assert!(paths(&spec.filesystem.hide).contains(&"/home/u/.aws".to_string()));
    }

    #[test]
    fn profile_named_like_command_is_picked() {
        let spec = resolve(
            &req(&["/usr/bin/shell", "-c", "x"]),
            &facts(),
            &Catalogue::builtin().unwrap(),
        )
        .unwrap();
        assert_eq!(spec.profile.value, "shell");
        assert!(matches!(spec.profile.source, Source::Derived(_)));
    }

    #[test]
    fn explicit_profile_wins_and_unknown_is_an_error() {
        let mut r = req(&["shell"]);
        r.profile = Some("default".into());
        let spec = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap();
        assert_eq!(spec.profile.value, "default");
        r.profile = Some("nope".into());
        let err = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap_err();
        assert!(matches!(err, ConfigError::UnknownProfile(n) if n == "nope"));
    }

    #[test]
    fn cli_paths_are_absolute_and_sourced() {
        let mut r = req(&["true"]);
        r.ro = vec!["../data".into(), "~/.config/x/".into()];
        r.rw = vec!["/scratch/u/./run".into()];
        r.hide = vec!["secret.txt".into()];
        let spec = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap();
        let ro = paths(&spec.filesystem.ro);
        assert!(ro.contains(&"/home/u/proj/data".to_string()), "{ro:?}");
        assert!(ro.contains(&"/home/u/.config/x".to_string()), "{ro:?}");
        assert_eq!(paths(&spec.filesystem.rw), vec!["/scratch/u/run"]);
        let last = spec.filesystem.hide.last().unwrap();
        assert_eq!(last.value, PathBuf::from("/home/u/proj/sub/secret.txt"));
        assert_eq!(last.source, Source::Cli("--hide".into()));
    }

    #[test]
    fn naming_a_hidden_path_itself_unhides_it_but_a_parent_does_not() {
        let mut r = req(&["true"]);
        r.ro = vec!["~/.config".into()];
        let spec = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap();
        assert!(paths(&spec.filesystem.hide).contains(&"/home/u/.config/gh".to_string()));
        r.ro = vec!["~/.config/gh".into()];
        let spec = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap();
        assert!(!paths(&spec.filesystem.hide).contains(&"/home/u/.config/gh".to_string()));
    }

    #[test]
    fn later_rw_replaces_earlier_ro() {
        let mut r = req(&["true"]);
        r.rw = vec!["~/.gitconfig".into()];
        let spec = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap();
        assert!(!paths(&spec.filesystem.ro).contains(&"/home/u/.gitconfig".to_string()));
        assert!(paths(&spec.filesystem.rw).contains(&"/home/u/.gitconfig".to_string()));
    }

    #[test]
    fn env_flags_split_into_pass_and_set() {
        let mut r = req(&["true"]);
        r.env = vec!["FOO".into(), "BAR=1=2".into()];
        let spec = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap();
        assert!(spec.env.pass.iter().any(|p| p.value == "FOO"));
        assert!(spec
            .env
            .set
            .iter()
            .any(|(k, v)| k == "BAR" && v.value == "1=2"));
        r.env = vec!["BAD-NAME=1".into()];
        assert!(resolve(&r, &facts(), &Catalogue::builtin().unwrap()).is_err());
    }

    #[test]
    fn home_as_project_is_refused() {
        let mut f = facts();
        f.git_root = None;
        f.cwd = "/home/u".into();
        let err = resolve(&req(&["true"]), &f, &Catalogue::builtin().unwrap()).unwrap_err();
        assert!(matches!(err, ConfigError::BadProject(_)));
    }

    #[test]
    fn net_flag_overrides_profile() {
        let mut r = req(&["true"]);
        r.net = Some(NetMode::Host);
        let spec = resolve(&r, &facts(), &Catalogue::builtin().unwrap()).unwrap();
        assert_eq!(spec.network.mode.value, NetMode::Host);
        assert_eq!(spec.network.mode.source, Source::Cli("--net".into()));
    }

    #[test]
    fn extends_cycle_is_an_error() {
        let mut cat = Catalogue::default();
        for (n, e) in [("a", "b"), ("b", "a")] {
            cat.profiles.push(NamedProfile::new(
                n,
                Profile {
                    extends: Some(e.into()),
                    ..Profile::default()
                },
                Source::Builtin(n.into()),
            ));
        }
        let mut r = req(&["true"]);
        r.profile = Some("a".into());
        assert!(matches!(
            resolve(&r, &facts(), &cat),
            Err(ConfigError::ExtendsCycle(_))
        ));
    }

    #[test]
    fn later_layers_override_earlier_ones_and_keep_their_source() {
        let c = cat(
            None,
            Some("[filesystem]\nhome = \"ro\"\n[network]\nmode = \"host\"\n"),
            Some(("[network]\nmode = \"none\"\n", false)),
        );
        let spec = run(&c, &req(&["claude"])).unwrap();
        assert_eq!(spec.filesystem.home.value, HomeMode::Ro);
        assert!(matches!(spec.filesystem.home.source, Source::User(_)));
        // the project narrowed the user's choice: allowed untrusted
        assert_eq!(spec.network.mode.value, NetMode::None);
        assert!(matches!(spec.network.mode.source, Source::Project(_)));
        let mut r = req(&["claude"]);
        r.net = Some(NetMode::Allowlist);
        let spec = run(&c, &r).unwrap();
        assert_eq!(spec.network.mode.source, Source::Cli("--net".into()));
        assert!(spec
            .notes
            .iter()
            .any(|n| n.contains("not trusted; it only narrows")));
    }

    #[test]
    fn user_profiles_extend_builtins_and_user_files_unhide_named_paths() {
        let mut c = cat(None, Some("[filesystem]\nro = [\"~/.config/gh\"]\n"), None);
        c.profiles.push(NamedProfile::new(
            "mine",
            parse(
                "extends = \"claude\"\n[network]\nallow = [\"@pypi\"]\n",
                "/u/profiles/mine.toml",
                FileKind::Profile,
            ),
            Source::User("/u/profiles/mine.toml".into()),
        ));
        let mut r = req(&["x"]);
        r.profile = Some("mine".into());
        let spec = run(&c, &r).unwrap();
        let a = allow(&spec);
        assert!(a.contains(&"api.anthropic.com".into()) && a.contains(&"pypi.org".into()));
        let pypi = spec
            .network
            .allow
            .iter()
            .find(|a| a.value.to_string() == "pypi.org")
            .unwrap();
        assert_eq!(pypi.via.as_deref(), Some("@pypi"));
        assert!(!paths(&spec.filesystem.hide).contains(&"/home/u/.config/gh".to_string()));
    }

    #[test]
    fn naming_a_domain_asks_for_the_network_unless_none_was_said() {
        let c = cat(None, None, None);
        let mut r = req(&["cargo", "fetch"]);
        r.allow_domain = vec!["@crates".into()];
        let spec = run(&c, &r).unwrap();
        assert_eq!(spec.network.mode.value, NetMode::Allowlist);
        assert_eq!(
            spec.network.mode.source,
            Source::Cli("--allow-domain".into())
        );
        let mut e = req(&["true"]);
        e.expose_host_port = vec![11434];
        let spec = run(&c, &e).unwrap();
        assert_eq!(
            spec.network.mode.source,
            Source::Cli("--expose-host-port".into())
        );
        assert_eq!(spec.network.expose_host_ports[0].value, 11434);
        r.net = Some(NetMode::None);
        assert!(matches!(run(&c, &r), Err(ConfigError::Network(_))));
        // A site whose maximum is `none` refuses it, naming the flag.
        let c = cat(Some("[network]\nmode = \"none\"\n"), None, None);
        let mut r = req(&["true"]);
        r.allow_domain = vec!["x.org".into()];
        let msg = refused(run(&c, &r), "network.mode");
        assert!(msg.contains("--allow-domain"), "{msg}");
    }

    #[test]
    fn learn_is_wider_than_allowlist_and_ports_default_to_https() {
        let c = cat(Some("[network]\nmode = \"allowlist\"\n"), None, None);
        let mut r = req(&["true"]);
        r.net = Some(NetMode::Learn);
        refused(run(&c, &r), "network.mode");
        let spec = run(&cat(None, None, None), &r).unwrap();
        assert_eq!(spec.network.mode.value, NetMode::Learn);
        let ports: Vec<u16> = spec.network.ports.iter().map(|p| p.value).collect();
        assert_eq!(ports, vec![443]);
        assert_eq!(
            spec.network.ports[0].source,
            Source::Builtin("default".into())
        );
    }

    #[test]
    fn network_none_tells_package_tools_they_are_offline() {
        let spec = run(&cat(None, None, None), &req(&["true"])).unwrap();
        let set: Vec<&str> = spec.env.set.iter().map(|(k, _)| k.as_str()).collect();
        for (k, _) in OFFLINE_ENV {
            assert!(set.contains(k), "{k}");
        }
        let mut r = req(&["true"]);
        r.env = vec!["npm_config_offline=false".into()];
        let spec = run(&cat(None, None, None), &r).unwrap();
        let v = spec
            .env
            .set
            .iter()
            .find(|(k, _)| k == "npm_config_offline")
            .unwrap();
        assert_eq!(v.1.value, "false", "a layer's own value wins");
        let mut r = req(&["true"]);
        r.net = Some(NetMode::Allowlist);
        let spec = run(&cat(None, None, None), &r).unwrap();
        assert!(!spec.env.set.iter().any(|(k, _)| k == "CARGO_NET_OFFLINE"));
    }

    #[test]
    fn a_profile_extending_its_own_name_builds_on_the_earlier_layer() {
        let mut c = cat(None, None, None);
        c.profiles.push(NamedProfile::new(
            "claude",
            parse(
                "extends = \"claude\"\n[network]\nallow = [\"@github\"]\n",
                "/u/profiles/claude.toml",
                FileKind::Profile,
            ),
            Source::User("/u/profiles/claude.toml".into()),
        ));
        let spec = run(&c, &req(&["claude"])).unwrap();
        let a = allow(&spec);
        assert!(a.contains(&"api.anthropic.com".into()) && a.contains(&"github.com".into()));
        // a real cycle is still an error
        let mut r = req(&["true"]);
        for (n, e) in [("a", "b"), ("b", "a")] {
            c.profiles.push(NamedProfile::new(
                n,
                Profile {
                    extends: Some(e.into()),
                    ..Profile::default()
                },
                Source::User(format!("/u/{n}").into()),
            ));
        }
        r.profile = Some("a".into());
        assert!(matches!(run(&c, &r), Err(ConfigError::ExtendsCycle(_))));
    }

    #[test]
    fn jails_own_config_and_state_stay_hidden() {
        let mut c = cat(None, None, None);
        c.jail_dirs = vec![
            "/home/u/.config/jail".into(),
            "/home/u/.local/state/jail".into(),
        ];
        let mut r = req(&["true"]);
        r.rw = vec!["~/.config".into(), "~/.config/jail".into()];
        let spec = run(&c, &r).unwrap();
        let h = paths(&spec.filesystem.hide);
        assert!(h.contains(&"/home/u/.config/jail".to_string()));
        assert!(h.contains(&"/home/u/.local/state/jail".to_string()));
        assert!(!paths(&spec.filesystem.rw).contains(&"/home/u/.config/jail".to_string()));
    }

    #[test]
    fn domains_are_checked_and_presets_must_exist() {
        let mut r = req(&["true"]);
        r.allow_domain = vec!["@nope".into()];
        assert!(matches!(
            run(&cat(None, None, None), &r),
            Err(ConfigError::UnknownPreset { .. })
        ));
        for bad in ["http://x.com", "a b.com", "x.com/path", "", "*.", "-x.com"] {
            r.allow_domain = vec![bad.into()];
            assert!(
                matches!(
                    run(&cat(None, None, None), &r),
                    Err(ConfigError::BadDomain { .. })
                ),
                "{bad}"
            );
        }
        r.allow_domain = vec!["Example.COM.".into(), "*.example.org".into()];
        let spec = run(&cat(None, None, None), &r).unwrap();
        assert_eq!(allow(&spec), ["example.com", "*.example.org"]);
    }

    #[test]
    fn project_paths_are_relative_to_the_project_root() {
        let c = cat(
            None,
            None,
            Some(("[filesystem]\nro = [\"docs/../src\"]\n", false)),
        );
        let spec = run(&c, &req(&["true"])).unwrap();
        assert!(paths(&spec.filesystem.ro).contains(&"/home/u/proj/src".to_string()));
        // the user's files need absolute or ~ paths
        // (the loader reports this with a location; resolve checks again)
        let mut c = cat(None, None, None);
        let mut p = Profile::default();
        p.filesystem.ro = vec!["data".into()];
        c.user = Some(FileLayer {
            file: "/u/c.toml".into(),
            profile: p,
            trusted: true,
        });
        assert!(matches!(
            run(&c, &req(&["true"])),
            Err(ConfigError::RelativePath { .. })
        ));
    }

    #[test]
    fn every_agent_profile_passes_only_its_keys_and_hides_the_others_logins() {
        let creds = [
            ("claude", "/home/u/.claude/.credentials.json"),
            ("codex", "/home/u/.codex/auth.json"),
            ("gemini", "/home/u/.gemini/oauth_creds.json"),
            ("opencode", "/home/u/.local/share/opencode/auth.json"),
            ("pi", "/home/u/.pi/agent/auth.json"),
            ("goose", "/home/u/.config/goose/secrets.yaml"),
            ("aider", "/home/u/.aider/oauth-keys.env"),
            ("cursor-agent", "/home/u/.config/cursor/auth.json"),
        ];
        let c = Catalogue::builtin().unwrap();
        for (agent, _) in creds {
            let spec = run(&c, &req(&[agent])).unwrap();
            assert_eq!(spec.profile.value, agent);
            assert_eq!(spec.network.mode.value, NetMode::Allowlist, "{agent}");
            assert!(!spec.network.allow.is_empty(), "{agent}");
            let hide = paths(&spec.filesystem.hide);
            for (other, file) in creds {
                assert_eq!(
                    hide.contains(&file.to_string()),
                    other != agent,
                    "{agent}: {file}"
                );
            }
            assert!(!spec.filesystem.create.is_empty(), "{agent}");
            for cr in &spec.filesystem.create {
                assert!(spec.filesystem.rw.iter().any(|r| r.value == cr.value));
            }
            assert!(!spec.env.pass.is_empty(), "{agent}");
        }
        let keys = |a: &str| -> Vec<String> {
            run(&c, &req(&[a]))
                .unwrap()
                .env
                .pass
                .iter()
                .map(|p| p.value.clone())
                .collect()
        };
        assert!(keys("claude").contains(&"ANTHROPIC_API_KEY".into()));
        assert!(!keys("claude").contains(&"OPENAI_API_KEY".into()));
        assert!(keys("codex").contains(&"OPENAI_API_KEY".into()));
        assert!(!keys("codex").contains(&"ANTHROPIC_API_KEY".into()));
        assert!(keys("gemini").contains(&"GEMINI_API_KEY".into()));
        assert!(!keys("gemini").contains(&"OPENAI_API_KEY".into()));
        // Claude's config file lives in its directory (rename-safe).
        let spec = run(&c, &req(&["claude"])).unwrap();
        assert!(spec
            .env
            .set
            .iter()
            .any(|(k, v)| k == "CLAUDE_CONFIG_DIR" && v.value == "/home/u/.claude"));
        assert!(!paths(&spec.filesystem.rw).contains(&"/home/u/.claude.json".to_string()));
    }

    #[test]
    fn review_and_limits_layer_with_sources() {
        let c = cat(
            None,
            Some("review = true\n[limits]\nmemory = \"4G\"\ntimeout = \"1h\"\n"),
            None,
        );
        let spec = run(&c, &req(&["make"])).unwrap();
        assert_eq!(spec.review.value, ReviewMode::Ask);
        assert!(matches!(spec.review.source, Source::User(_)));
        assert_eq!(spec.limits.memory.as_ref().unwrap().value, 4 << 30);
        assert_eq!(spec.limits.timeout.as_ref().unwrap().value, 3600);
        let mut r = req(&["make"]);
        r.review = Some(ReviewMode::Keep);
        r.memory = Some(1 << 30);
        r.pids = Some(32);
        let spec = run(&c, &r).unwrap();
        assert_eq!(spec.review.value, ReviewMode::Keep);
        assert_eq!(spec.review.source, Source::Cli("--review".into()));
        assert_eq!(spec.limits.memory.as_ref().unwrap().value, 1 << 30);
        assert_eq!(spec.limits.pids.as_ref().unwrap().value, 32);
        let plain = run(&cat(None, None, None), &req(&["make"])).unwrap();
        assert_eq!(plain.review.value, ReviewMode::Off);
        assert!(!plain.limits.any_resource() && plain.limits.timeout.is_none());
    }
}
