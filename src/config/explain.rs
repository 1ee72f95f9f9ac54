//! `jail explain`: the resolved policy in readable form, every value with
//! where it came from.

use std::fmt::Write;

use super::spec::{JailSpec, Sourced};

pub fn render(spec: &JailSpec, env_removed: usize) -> String {
    let mut o = String::new();
    // Writing to a String cannot fail.
    let _ = render_into(&mut o, spec, env_removed);
    o
}

fn line<T: std::fmt::Debug>(o: &mut String, key: &str, v: &Sourced<T>) -> std::fmt::Result {
    writeln!(
        o,
        "  {key:<14} {:<28} # {}",
        format!("{:?}", v.value).to_lowercase(),
        v.source
    )
}

fn list<T: std::fmt::Display>(o: &mut String, key: &str, v: &[Sourced<T>]) -> std::fmt::Result {
    if v.is_empty() {
        return writeln!(o, "  {key:<14} (none)");
    }
    writeln!(o, "  {key}:")?;
    for s in v {
        match &s.via {
            Some(via) => writeln!(o, "    {:<40} # {} ({via})", s.value.to_string(), s.source)?,
            None => writeln!(o, "    {:<40} # {}", s.value.to_string(), s.source)?,
        }
    }
    Ok(())
}

fn render_into(o: &mut String, spec: &JailSpec, env_removed: usize) -> std::fmt::Result {
    let paths = |v: &[Sourced<std::path::PathBuf>]| -> Vec<Sourced<String>> {
        v.iter()
            .map(|s| Sourced::new(s.value.display().to_string(), s.source.clone()))
            .collect()
    };
    writeln!(
        o,
        "profile          {:<28} # {}",
        spec.profile.value, spec.profile.source
    )?;
    writeln!(o, "command          {}", shell_words(&spec.command))?;
    writeln!(
        o,
        "user             {} (uid {}, gid {}), home {}",
        spec.user.name,
        spec.user.uid,
        spec.user.gid,
        spec.user.home.display()
    )?;
    writeln!(
        o,
        "project (rw)     {:<28} # {}",
        spec.project.value.display(),
        spec.project.source
    )?;
    writeln!(o, "cwd              {}", spec.cwd.display())?;
    writeln!(o, "[filesystem]")?;
    line(o, "home", &spec.filesystem.home)?;
    let sys: Vec<String> = spec
        .filesystem
        .system_ro
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    writeln!(
        o,
        "  {:<14} {}  # jail's system view",
        "system (ro)",
        sys.join(" ")
    )?;
    writeln!(
        o,
        "  {:<14} private /tmp /var/tmp, minimal /dev, fresh /proc and /sys (ro), /run tmpfs",
        "always"
    )?;
    list(o, "ro", &paths(&spec.filesystem.ro))?;
    list(o, "rw", &paths(&spec.filesystem.rw))?;
    list(o, "hide (ENOENT)", &paths(&spec.filesystem.hide))?;
    list(o, "create", &paths(&spec.filesystem.create))?;
    writeln!(
        o,
        "  {:<14} {:<28} # {}",
        "review",
        spec.review.value.name(),
        spec.review.source
    )?;
    writeln!(o, "[network]")?;
    line(o, "mode", &spec.network.mode)?;
    list(o, "allow", &spec.network.allow)?;
    list(o, "deny", &spec.network.deny)?;
    list(o, "ports", &spec.network.ports)?;
    match &spec.network.dns_upstream {
        Some(d) => writeln!(o, "  {:<14} {:<28} # {}", "dns_upstream", d.value, d.source)?,
        None => writeln!(
            o,
            "  {:<14} first nameserver of /etc/resolv.conf (read again when it changes)",
            "dns_upstream"
        )?,
    }
    list(o, "expose_host_ports", &spec.network.expose_host_ports)?;
    match &spec.network.proxy {
        Some(p) => writeln!(o, "  {:<14} {:<28} # {}", "proxy", p.value, p.source)?,
        None => writeln!(o, "  {:<14} (none: the helper connects directly)", "proxy")?,
    }
    writeln!(o, "[env]")?;
    writeln!(
        o,
        "  {:<14} {env_removed} host variable(s) removed (credentials by name and pattern)",
        "scrub"
    )?;
    list(o, "pass", &spec.env.pass)?;
    list(o, "block", &spec.env.block)?;
    if spec.env.set.is_empty() {
        writeln!(o, "  {:<14} (none)", "set")?;
    } else {
        writeln!(o, "  set:")?;
        for (k, v) in &spec.env.set {
            writeln!(o, "    {:<40} # {}", format!("{k}={}", v.value), v.source)?;
        }
    }
    writeln!(o, "[devices]")?;
    line(o, "gpu", &spec.gpu)?;
    render_limits(o, &spec.limits)?;
    writeln!(o, "[slurm]")?;
    let sl = &spec.slurm;
    line(o, "enabled", &sl.enabled)?;
    for (key, list) in [
        ("partitions", &sl.partitions),
        ("accounts", &sl.accounts),
        ("qos", &sl.qos),
    ] {
        match list {
            Some(l) => writeln!(o, "  {:<14} {:<28} # {}", key, l.value.join(", "), l.source)?,
            None => writeln!(o, "  {key:<14} (any)")?,
        }
    }
    match &sl.max_jobs {
        Some(m) => writeln!(o, "  {:<14} {:<28} # {}", "max_jobs", m.value, m.source)?,
        None => writeln!(o, "  {:<14} (no cap)", "max_jobs")?,
    }
    if sl.enabled.value {
        writeln!(o, "  {:<14} {}", "job network", job_network(spec))?;
    }
    if !spec.notes.is_empty() {
        writeln!(o, "[layers]")?;
        for n in &spec.notes {
            writeln!(o, "  {n}")?;
        }
    }
    Ok(())
}

/// The network rule of the jobs this jail submits: every task, on every
/// node, keeps this jail's network policy (the rule until a site can name
/// its cluster networks); ranks find each other through PMI.
fn job_network(spec: &JailSpec) -> String {
    use super::profile::{JobNetwork, NetMode};
    let jn = &spec.slurm.job_network;
    if jn.value == JobNetwork::Node {
        return format!(
            "node: each task uses its compute node's network (ranks reach each other) # {}",
            jn.source
        );
    }
    if jn.value == JobNetwork::Cluster && spec.network.mode.value != NetMode::Host {
        let mut reach = String::from("the job's own nodes");
        for n in &spec.slurm.cluster_networks {
            reach.push_str(&format!(" and {n}"));
        }
        let policy = match spec.network.mode.value {
            NetMode::None => "none",
            _ => "allowlist, whose names are not reached from the job's tasks",
        };
        return format!(
            "cluster: each task uses its node's network; it reaches {reach} (not loopback); \
             nothing else (the policy: {policy}) # {}",
            jn.source
        );
    }
    let rest = "other nodes of the job included; ranks wire up through PMIx (srun --mpi=pmix)";
    match spec.network.mode.value {
        NetMode::Host => "host: each task uses its compute node's network".to_string(),
        NetMode::None => format!("none on every node: each task reaches no host, {rest}"),
        NetMode::Allowlist | NetMode::Learn => format!(
            "this allowlist on every node: each task reaches only the allowed names, {rest}"
        ),
    }
}

fn render_limits(o: &mut String, l: &crate::config::limits::Limits) -> std::fmt::Result {
    use crate::config::limits::{show_cpus, show_duration, show_size};
    writeln!(o, "[limits]")?;
    let mut one = |key: &str, v: Option<(String, &crate::config::spec::Source)>| match v {
        Some((v, src)) => writeln!(o, "  {key:<14} {v:<28} # {src}"),
        None => writeln!(o, "  {key:<14} (none)"),
    };
    one(
        "timeout",
        l.timeout
            .as_ref()
            .map(|t| (show_duration(t.value), &t.source)),
    )?;
    if l.timeout.is_some() {
        one(
            "grace",
            Some((show_duration(l.grace.value), &l.grace.source)),
        )?;
    }
    one(
        "memory",
        l.memory.as_ref().map(|m| (show_size(m.value), &m.source)),
    )?;
    one(
        "pids",
        l.pids.as_ref().map(|p| (p.value.to_string(), &p.source)),
    )?;
    one(
        "cpus",
        l.cpus.as_ref().map(|c| (show_cpus(c.value), &c.source)),
    )?;
    if let Some(t) = &l.tmpfs {
        one("tmpfs", Some((show_size(t.value), &t.source)))?;
        writeln!(
            o,
            "  {:<14} one tmpfs holds /tmp, /var/tmp, /dev/shm, /run, /dev (and a tmpfs home): \
             together at most that much, ENOSPC when full",
            ""
        )?;
    }
    if let Some(m) = &l.mechanism {
        for (i, line) in m.lines().enumerate() {
            let key = if i == 0 { "enforced by" } else { "" };
            writeln!(o, "  {key:<14} {line}")?;
        }
    }
    Ok(())
}

/// Quotes argv for display so it can be pasted into a shell.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
