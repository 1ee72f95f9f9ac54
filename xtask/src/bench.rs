//! `cargo xtask bench`: startup of `/bin/true` under jail, side by side with
//! the anchors of /work/shared/bench/baseline.sh (bare, unshare, bubblewrap
//! minimal, bubblewrap with an agent's view), in ONE hyperfine run, every
//! case as the unprivileged user `benchuser` (the user baseline.sh uses).
//! Needs root: it installs what is missing, creates the user and its home,
//! and copies the release binary where the user can run it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub const USER: &str = "benchuser";
const HOME: &str = "/home/benchuser";
const BIN_DIR: &str = "/usr/local/lib/jail-bench";
const USER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const README_START: &str = "<!-- bench:start -->";
const README_END: &str = "<!-- bench:end -->";
/// The agent's home as baseline.sh lays it out: rw dirs, a project, secrets.
const HOME_DIRS: [&str; 12] = [
    "project",
    ".cache",
    ".config/gh",
    ".config/gcloud",
    ".local/share",
    ".local/state",
    ".cargo",
    ".rustup",
    ".npm",
    ".claude",
    ".codex",
    ".gemini",
];
const SECRETS: [&str; 3] = [
    "project/.env",
    ".cargo/credentials.toml",
    ".codex/auth.json",
];
/// (apt package, program it provides)
const TOOLS: [(&str, &str); 4] = [
    ("hyperfine", "hyperfine"),
    ("bubblewrap", "bwrap"),
    ("util-linux", "unshare"),
    ("util-linux", "runuser"),
];

#[derive(Debug, PartialEq)]
pub struct Options {
    pub runs: u32,
    pub update_readme: bool,
    /// Extra cases that split jail's startup into phases.
    pub breakdown: bool,
    /// The network part (throughput, latency, RSS against pasta,
    /// slirp4netns and the handoff prototype).
    pub net: bool,
    /// `--quick`: fewer runs, shorter transfers.
    pub quick: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            runs: 60,
            update_readme: false,
            breakdown: false,
            net: true,
            quick: false,
        };
        let mut runs = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--quick" => {
                    o.runs = 10;
                    o.quick = true;
                }
                "--update-readme" => o.update_readme = true,
                "--breakdown" => o.breakdown = true,
                "--no-net" => o.net = false,
                "--runs" => {
                    let n = it.next().ok_or("--runs needs a number")?;
                    runs = Some(n.parse().map_err(|_| format!("--runs {n}: not a number"))?);
                }
                other => return Err(format!("bench: unknown option {other}")),
            }
        }
        if let Some(n) = runs {
            o.runs = n;
        }
        if o.runs < 2 {
            return Err("--runs must be at least 2".into());
        }
        Ok(o)
    }
}

/// bubblewrap with an agent's view: exactly `agent_bwrap ''` of baseline.sh.
pub fn agent_bwrap(home: &str) -> String {
    let mut a = String::from(
        "bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr --ro-bind /etc /etc",
    );
    a += " --ro-bind /opt /opt --symlink usr/bin /bin --symlink usr/sbin /sbin --symlink usr/lib /lib";
    a +=
        &format!(" --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp --tmpfs {home}");
    for d in [
        ".cache",
        ".config",
        ".local/share",
        ".local/state",
        ".cargo",
        ".rustup",
        ".npm",
        ".claude",
        ".codex",
        ".gemini",
        "project",
    ] {
        a += &format!(" --bind {home}/{d} {home}/{d}");
    }
    a += &format!(
        " --tmpfs {home}/.config/gh --tmpfs {home}/.config/gcloud --ro-bind /dev/null {home}/.cargo/credentials.toml"
    );
    a += &format!(
        " --ro-bind /dev/null {home}/.codex/auth.json --ro-bind /dev/null {home}/project/.env"
    );
    format!("{a} --setenv HOME {home} --chdir {home}/project")
}

/// Cases that split jail's startup (`--breakdown`): each differs from the
/// next by one phase, see [`breakdown`].
pub fn breakdown_cases(jail: &str) -> Vec<(String, String)> {
    [
        ("x-jail-version", format!("{jail} --version")),
        ("x-jail-dry-run", format!("{jail} --dry-run -- /bin/true")),
        (
            "x-unshare-7ns",
            "unshare -Urmnpiu -C --fork /bin/true".to_string(),
        ),
        ("x-jail-net-host", format!("{jail} --net host -- /bin/true")),
    ]
    .into_iter()
    .map(|(n, c)| (n.to_string(), c))
    .collect()
}

/// Where jail's mean startup goes, from differences between cases of one run
/// (ms): exec + CLI = version - bare; config + plan = dry-run - version;
/// namespaces = unshare-7ns - bare (of which network = jail - jail-net-host);
/// the rest (mounts, pivot, hardening, pid 1 + second fork, teardown) =
/// jail - dry-run - namespaces.
pub fn breakdown(json: &Value) -> Option<String> {
    let mut mean = std::collections::HashMap::new();
    for r in json["results"].as_array()? {
        mean.insert(
            r["command"].as_str()?.to_string(),
            r["mean"].as_f64()? * 1e3,
        );
    }
    let m = |k: &str| mean.get(k).copied();
    let (bare, version, dry, ns, jail) = (
        m("a-bare")?,
        m("x-jail-version")?,
        m("x-jail-dry-run")?,
        m("x-unshare-7ns")?,
        m("j-jail")?,
    );
    let mut rows = vec![
        ("exec jail + parse the command line", version - bare),
        ("load config, resolve policy, plan (dry run)", dry - version),
        (
            "clone 7 namespaces + fork (unshare -Urmnpiu -C --fork)",
            ns - bare,
        ),
    ];
    if let Some(host) = m("x-jail-net-host") {
        rows.push((
            "  of which the network namespace (jail - jail --net host)",
            jail - host,
        ));
    }
    rows.push((
        "mounts, pivot_root, hardening, pid 1, teardown (rest)",
        jail - dry - (ns - bare),
    ));
    let mut out = format!(
        "Where j-jail's {jail:.2} ms go (differences of means, same run; /bin/true itself: {bare:.2} ms):\n\n| phase | ms |\n|---|---|\n"
    );
    for (what, ms) in rows {
        out += &format!("| {what} | {ms:.2} |\n");
    }
    Some(out)
}

/// A directory like /etc/munge (a key inside, root-only), made for the
/// run and removed after it: hiding it must not cost a bind per entry of
/// /etc.
pub const MUNGE_LIKE: &str = "/etc/jail-bench-munge";

/// Creates MUNGE_LIKE for the run; removes it when dropped.
struct MungeLike;

impl MungeLike {
    fn create() -> Result<MungeLike, String> {
        use std::os::unix::fs::PermissionsExt;
        let d = Path::new(MUNGE_LIKE);
        std::fs::create_dir_all(d).map_err(|e| format!("{MUNGE_LIKE}: {e}"))?;
        std::fs::write(d.join("munge.key"), [0u8; 1024])
            .map_err(|e| format!("{MUNGE_LIKE}/munge.key: {e}"))?;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{MUNGE_LIKE}: {e}"))?;
        Ok(MungeLike)
    }
}

impl Drop for MungeLike {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(MUNGE_LIKE);
    }
}

/// (name, command) of every case, in table order.
pub fn cases(jail: &str) -> Vec<(String, String)> {
    let min = "bwrap --unshare-all --die-with-parent --ro-bind /usr /usr --symlink usr/bin /bin \
               --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp";
    [
        ("a-bare", "/bin/true".to_string()),
        ("b-unshare", "unshare -Urmnp --fork /bin/true".to_string()),
        ("c-bwrap-min", format!("{min} /bin/true")),
        ("d-bwrap-agent", format!("{} /bin/true", agent_bwrap(HOME))),
        ("j-jail", format!("{jail} -- /bin/true")),
        ("j-jail-claude", format!("{jail} -p claude -- /bin/true")),
        // An HPC login node: a munge-like directory in /etc, hidden.
        (
            "j-jail-munge",
            format!("{jail} --hide {MUNGE_LIKE} -- /bin/true"),
        ),
        // The network modes: `none` (the default above) runs the helper
        // for its DNS answers; `allowlist` adds routes and listeners;
        // `host` runs no helper.
        (
            "j-jail-allowlist",
            format!("{jail} --net allowlist -- /bin/true"),
        ),
        ("j-jail-host-net", format!("{jail} --net host -- /bin/true")),
    ]
    .into_iter()
    .map(|(n, c)| (n.to_string(), c))
    .collect()
}

pub fn run(o: &Options) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(format!(
            "bench must run as root (it installs tools, creates the user {USER} and runs every case as that user)"
        ));
    }
    ensure_tools()?;
    ensure_user()?;
    let jail = install_jail()?;
    let jail_s = jail.display().to_string();
    let _munge = MungeLike::create()?;

    let mut kept = Vec::new();
    let mut notes = Vec::new();
    let mut all = cases(&jail_s);
    if o.breakdown {
        all.extend(breakdown_cases(&jail_s));
    }
    for (name, cmd) in all {
        let ok = as_user(&split(&cmd))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            kept.push((name, cmd));
        } else {
            eprintln!("bench: {name} fails as {USER}, left out: {cmd}");
            notes.push(format!("{name} fails as {USER}, left out"));
        }
    }

    // One hyperfine run over every case; its JSON goes where the user can write.
    let tmp = PathBuf::from(format!("/tmp/jail-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let (uid, gid) = user_ids()?;
    std::os::unix::fs::chown(&tmp, Some(uid), Some(gid)).map_err(|e| format!("chown: {e}"))?;
    let json_tmp = tmp.join("startup.json");
    let mut args: Vec<String> = ["hyperfine", "-N", "--style", "basic", "--warmup", "5"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--runs".into(), o.runs.to_string()]);
    args.extend(["--export-json".into(), json_tmp.display().to_string()]);
    for (name, cmd) in &kept {
        args.extend(["-n".into(), name.clone(), cmd.clone()]);
    }
    eprintln!("$ {}", args.join(" "));
    let status = as_user(&args)
        .status()
        .map_err(|e| format!("hyperfine: {e}"))?;
    if !status.success() {
        return Err(format!("hyperfine failed: {status}"));
    }
    let json_text =
        std::fs::read_to_string(&json_tmp).map_err(|e| format!("{}: {e}", json_tmp.display()))?;
    let _ = std::fs::remove_dir_all(&tmp);
    let json: Value =
        serde_json::from_str(&json_text).map_err(|e| format!("hyperfine JSON: {e}"))?;

    let out = crate::root().join("bench-results");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    std::fs::write(out.join("startup.json"), &json_text)
        .map_err(|e| format!("writing startup.json: {e}"))?;

    let table = summary_table(&json)?;
    let header = header(&jail, o.runs);
    let mut summary = format!("{header}\n{table}");
    if let Some(b) = breakdown(&json).filter(|_| o.breakdown) {
        summary += &format!("\n{b}");
    }
    for n in &notes {
        summary += &format!("\nNote: {n}.\n");
    }
    summary += &format!("\nCommands (run as {USER} from {HOME}/project by `hyperfine -N`):\n\n");
    for (name, cmd) in &kept {
        summary += &format!("- {name}: `{cmd}`\n");
    }

    // Landlock + seccomp overhead, measured by harden_bench.
    match crate::harden_bench::run() {
        Ok(md) => summary += &format!("\n{md}\n"),
        Err(e) => {
            summary += &format!("\nNote: harden bench not run: {e}\n");
            eprintln!("bench: note: harden bench: {e}");
        }
    }
    // ---- end harden_bench ----

    let mut net_section = String::new();
    if o.net {
        let no = crate::netbench::NetOptions {
            seconds: if o.quick { 3 } else { 10 },
            reps: if o.quick { 1 } else { 3 },
            curl_runs: if o.quick { 20 } else { 100 },
        };
        match crate::netbench::run(&jail, &no) {
            Ok(md) => {
                net_section = md;
                summary += &format!("\n{net_section}");
            }
            Err(e) => {
                summary += &format!("\nNote: network bench not run: {e}\n");
                eprintln!("bench: note: network bench: {e}");
            }
        }
    }
    std::fs::write(out.join("summary.md"), &summary)
        .map_err(|e| format!("writing summary.md: {e}"))?;
    println!("\n{summary}");
    println!("results: {}/startup.json, summary.md", out.display());

    if o.update_readme {
        let readme = crate::root().join("README.md");
        let mut block = format!("{header}\n{table}");
        if !net_section.is_empty() {
            block += &format!("\n{net_section}");
        }
        match std::fs::read_to_string(&readme) {
            Ok(text) => match replace_block(&text, &block) {
                Some(new) => {
                    std::fs::write(&readme, new)
                        .map_err(|e| format!("{}: {e}", readme.display()))?;
                    println!("updated the bench block in {}", readme.display());
                }
                None => eprintln!(
                    "bench: warning: {} has no {README_START} ... {README_END} block; not updated",
                    readme.display()
                ),
            },
            Err(e) => eprintln!("bench: warning: {}: {e}; not updated", readme.display()),
        }
    }
    Ok(())
}

/// Split a case's command on whitespace (hyperfine -N does the same for these).
fn split(cmd: &str) -> Vec<String> {
    cmd.split_whitespace().map(String::from).collect()
}

/// `runuser -u benchuser -- env -C ~/project HOME=.. USER=.. PATH=.. ARGS...`
fn as_user(args: &[String]) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", USER, "--", "env", "-i", "-C"])
        .arg(format!("{HOME}/project"))
        .arg(format!("HOME={HOME}"))
        .arg(format!("USER={USER}"))
        .arg(format!("LOGNAME={USER}"))
        .arg(format!("PATH={USER_PATH}"))
        .arg("TERM=dumb")
        .args(args);
    c
}

fn on_path(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(prog).is_file()))
        .unwrap_or(false)
        || Path::new("/usr/bin").join(prog).is_file()
        || Path::new("/usr/sbin").join(prog).is_file()
}

fn ensure_tools() -> Result<(), String> {
    let mut need: Vec<&str> = TOOLS
        .iter()
        .filter(|(_, p)| !on_path(p))
        .map(|(k, _)| *k)
        .collect();
    need.dedup();
    if need.is_empty() {
        return Ok(());
    }
    eprintln!("bench: installing {}", need.join(" "));
    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq"])
        .args(&need)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("apt-get: {e}"))?;
    if !status.success() {
        return Err(format!("apt-get install {} failed", need.join(" ")));
    }
    Ok(())
}

pub fn user_ids() -> Result<(u32, u32), String> {
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, USER])
            .output()
            .map_err(|e| format!("id: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| format!("no user {USER}"))
    };
    Ok((id("-u")?, id("-g")?))
}

fn ensure_user() -> Result<(), String> {
    if user_ids().is_err() {
        crate::run_cmd("useradd", &["-m", "-s", "/bin/bash", USER])?;
    }
    let (uid, gid) = user_ids()?;
    // Create the layout as the user, like baseline.sh's `as_user mkdir -p ...`.
    for d in HOME_DIRS {
        let p = Path::new(HOME).join(d);
        std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        // chown each component below HOME (create_dir_all made them as root)
        let mut q = p.as_path();
        while q != Path::new(HOME) {
            std::os::unix::fs::lchown(q, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", q.display()))?;
            q = q.parent().unwrap_or(Path::new(HOME));
        }
    }
    for f in SECRETS {
        let p = Path::new(HOME).join(f);
        if !p.exists() {
            std::fs::write(&p, b"").map_err(|e| format!("{}: {e}", p.display()))?;
        }
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", p.display()))?;
    }
    Ok(())
}

/// `cargo build --release -p jail`, then a copy the user can execute.
fn install_jail() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::run_cmd(
        &cargo,
        &["build", "--release", "--package", "jail", "--bin", "jail"],
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target"));
    let built = target.join("release/jail");
    let dest = Path::new(BIN_DIR).join("jail");
    std::fs::create_dir_all(BIN_DIR).map_err(|e| format!("{BIN_DIR}: {e}"))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(BIN_DIR, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{BIN_DIR}: {e}"))?;
    // Copy to a temporary name and rename: a running old copy is never overwritten in place.
    let tmp = Path::new(BIN_DIR).join(".jail.new");
    std::fs::copy(&built, &tmp)
        .map_err(|e| format!("{} -> {}: {e}", built.display(), tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &dest).map_err(|e| format!("{}: {e}", dest.display()))?;
    Ok(dest)
}

fn pkg_version(pkg: &str) -> String {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Version}", pkg])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_else(|| "absent".into())
}

fn header(jail: &Path, runs: u32) -> String {
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    // Other work on the machine skews every case; say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let size = std::fs::metadata(jail).map(|m| m.len()).unwrap_or(0);
    format!(
        "Startup of `/bin/true` (`cargo xtask bench`, {date}; kernel {}, {cpus} cpus, load average {}). \
         One `hyperfine -N` run, warmup 5, {runs} runs, every case as `{USER}`. \
         jail {} release binary: {size} bytes ({:.1} MiB). bubblewrap {}, util-linux {}, hyperfine {}.\n",
        kernel.trim(),
        load.join(" "),
        env!("CARGO_PKG_VERSION"),
        size as f64 / (1024.0 * 1024.0),
        pkg_version("bubblewrap"),
        pkg_version("util-linux"),
        pkg_version("hyperfine"),
    )
}

/// The markdown table of a hyperfine JSON export, and the jail/bwrap-agent ratio.
pub fn summary_table(json: &Value) -> Result<String, String> {
    let results = json["results"]
        .as_array()
        .ok_or("hyperfine JSON has no results")?;
    let ms = |r: &Value, k: &str| r[k].as_f64().map(|s| s * 1e3);
    let mut out = String::from(
        "| case | mean ms | median ms | min ms | stddev ms | runs |\n|---|---|---|---|---|---|\n",
    );
    let mut by_name = std::collections::HashMap::new();
    for r in results {
        let name = r["command"]
            .as_str()
            .ok_or("result without a command name")?;
        let (Some(mean), Some(median), Some(min)) = (ms(r, "mean"), ms(r, "median"), ms(r, "min"))
        else {
            return Err(format!("{name}: missing mean/median/min"));
        };
        let stddev = ms(r, "stddev").unwrap_or(0.0);
        let runs = r["times"].as_array().map(|t| t.len()).unwrap_or(0);
        out += &format!("| {name} | {mean:.2} | {median:.2} | {min:.2} | {stddev:.2} | {runs} |\n");
        by_name.insert(name.to_string(), (mean, median));
    }
    let ratio = |a: &str, b: &str| -> Option<String> {
        let (am, amed) = by_name.get(a)?;
        let (bm, bmed) = by_name.get(b)?;
        Some(format!(
            "{a} / {b}: {:.2}x mean, {:.2}x median\n",
            am / bm,
            amed / bmed
        ))
    };
    out += "\n";
    for (a, b) in [
        ("j-jail", "d-bwrap-agent"),
        ("j-jail-munge", "d-bwrap-agent"),
        ("j-jail", "b-unshare"),
    ] {
        if let Some(l) = ratio(a, b) {
            out += &l;
            out += "\n";
        }
    }
    Ok(out.trim_end().to_string() + "\n")
}

/// `text` with the lines between the bench markers replaced by `block`;
/// None when the markers are absent or out of order.
pub fn replace_block(text: &str, block: &str) -> Option<String> {
    let start = text.find(README_START)?;
    let after_start = start + README_START.len();
    let end = after_start + text[after_start..].find(README_END)?;
    Some(format!(
        "{}\n{}\n{}",
        &text[..after_start],
        block.trim_end(),
        &text[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"results":[
      {"command":"d-bwrap-agent","mean":0.004,"stddev":0.0004,"median":0.0038,"min":0.0036,"max":0.005,
       "times":[0.0036,0.0038,0.0040]},
      {"command":"j-jail","mean":0.006,"stddev":0.0002,"median":0.0057,"min":0.0055,"max":0.007,
       "times":[0.0055,0.0057]}]}"#;

    #[test]
    fn table_and_ratio_from_hyperfine_json() {
        let t = summary_table(&serde_json::from_str(SAMPLE).unwrap()).unwrap();
        assert!(
            t.contains("| d-bwrap-agent | 4.00 | 3.80 | 3.60 | 0.40 | 3 |"),
            "{t}"
        );
        assert!(
            t.contains("| j-jail | 6.00 | 5.70 | 5.50 | 0.20 | 2 |"),
            "{t}"
        );
        assert!(
            t.contains("j-jail / d-bwrap-agent: 1.50x mean, 1.50x median"),
            "{t}"
        );
        assert!(!t.contains("b-unshare"), "no ratio without the case: {t}");
    }

    #[test]
    fn breakdown_is_differences_of_means() {
        let r = |n: &str, ms: f64| serde_json::json!({"command": n, "mean": ms / 1e3});
        let json = serde_json::json!({"results": [
            r("a-bare", 0.5), r("j-jail", 4.0), r("x-jail-version", 0.8),
            r("x-jail-dry-run", 1.3), r("x-unshare-7ns", 1.9), r("x-jail-net-host", 3.6)]});
        let b = breakdown(&json).unwrap();
        assert!(
            b.contains("| exec jail + parse the command line | 0.30 |"),
            "{b}"
        );
        assert!(
            b.contains("| load config, resolve policy, plan (dry run) | 0.50 |"),
            "{b}"
        );
        assert!(
            b.contains("| clone 7 namespaces + fork (unshare -Urmnpiu -C --fork) | 1.40 |"),
            "{b}"
        );
        assert!(b.contains("(jail - jail --net host) | 0.40 |"), "{b}");
        assert!(b.contains("teardown (rest) | 1.30 |"), "{b}");
        // Without the extra cases there is no breakdown.
        let json = serde_json::json!({"results": [r("a-bare", 0.5), r("j-jail", 4.0)]});
        assert!(breakdown(&json).is_none());
    }

    #[test]
    fn bad_json_is_an_error() {
        assert!(summary_table(&serde_json::json!({"x": 1})).is_err());
        assert!(summary_table(&serde_json::json!({"results": [{"command": "a"}]})).is_err());
    }

    #[test]
    fn readme_block_is_replaced_and_the_rest_kept() {
        let text =
            "# jail\nintro\n<!-- bench:start -->\nold table\nmore\n<!-- bench:end -->\ntail\n";
        let new = replace_block(text, "| new |\n").unwrap();
        assert_eq!(
            new,
            "# jail\nintro\n<!-- bench:start -->\n| new |\n<!-- bench:end -->\ntail\n"
        );
        // Idempotent: replacing again gives the same text.
        assert_eq!(replace_block(&new, "| new |").unwrap(), new);
        assert_eq!(replace_block("no markers here", "x"), None);
        assert_eq!(
            replace_block("<!-- bench:end --> <!-- bench:start -->", "x"),
            None
        );
    }

    #[test]
    fn agent_view_matches_baseline() {
        // d-bwrap-agent exactly as shared/bench/RESULTS.md lists it (2026-11-24 baseline).
        let baseline = "bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr --ro-bind /etc /etc --ro-bind /opt /opt --symlink usr/bin /bin --symlink usr/sbin /sbin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp --tmpfs /home/benchuser --bind /home/benchuser/.cache /home/benchuser/.cache --bind /home/benchuser/.config /home/benchuser/.config --bind /home/benchuser/.local/share /home/benchuser/.local/share --bind /home/benchuser/.local/state /home/benchuser/.local/state --bind /home/benchuser/.cargo /home/benchuser/.cargo --bind /home/benchuser/.rustup /home/benchuser/.rustup --bind /home/benchuser/.npm /home/benchuser/.npm --bind /home/benchuser/.claude /home/benchuser/.claude --bind /home/benchuser/.codex /home/benchuser/.codex --bind /home/benchuser/.gemini /home/benchuser/.gemini --bind /home/benchuser/project /home/benchuser/project --tmpfs /home/benchuser/.config/gh --tmpfs /home/benchuser/.config/gcloud --ro-bind /dev/null /home/benchuser/.cargo/credentials.toml --ro-bind /dev/null /home/benchuser/.codex/auth.json --ro-bind /dev/null /home/benchuser/project/.env --setenv HOME /home/benchuser --chdir /home/benchuser/project /bin/true";
        assert_eq!(format!("{} /bin/true", agent_bwrap(HOME)), baseline);
        assert_eq!(agent_bwrap(HOME).matches("--bind ").count(), 11);
    }

    #[test]
    fn options() {
        let p = |v: &[&str]| Options::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(p(&[]).unwrap().runs, 60);
        assert!(p(&["--breakdown"]).unwrap().breakdown);
        assert!(!p(&[]).unwrap().breakdown);
        assert_eq!(p(&["--quick"]).unwrap().runs, 10);
        assert_eq!(p(&["--runs", "7", "--quick"]).unwrap().runs, 7);
        assert!(p(&["--runs"]).is_err());
        assert!(p(&["--bogus"]).is_err());
        assert!(p(&[]).unwrap().net && !p(&["--no-net"]).unwrap().net);
        assert!(p(&["--quick"]).unwrap().quick);
    }
}
