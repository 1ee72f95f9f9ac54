//! The site policies the project ships and documents are real: the
//! commented /etc/jail/jail.toml the packages install (contrib/site/) and
//! the HPC example in docs/admin.md parse, bind, and the refusals
//! docs/admin.md shows are what jail prints.

mod common;

use common::*;
use std::path::Path;

fn repo_file(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// contrib/site/jail.toml with its commented-out settings switched on:
/// every `# [table]` and `# key = value` line (prose comments stay).
fn uncommented(text: &str) -> (String, usize) {
    let mut n = 0;
    let out = text
        .lines()
        .map(|l| {
            let Some(rest) = l.strip_prefix("# ") else {
                return l.to_string();
            };
            let table = rest.starts_with('[')
                && rest
                    .trim_end()
                    .strip_suffix(']')
                    .is_some_and(|t| t[1..].chars().all(|c| c.is_ascii_lowercase()));
            let key = rest.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            });
            if table || key {
                n += 1;
                rest.to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    (out, n)
}

/// `project_roots` widened by the test's own tree (the sandboxes live in
/// /tmp/jail-tests, outside any documented project root).
fn with_test_root(policy: &str) -> String {
    let line = policy
        .lines()
        .find(|l| l.starts_with("project_roots = ["))
        .expect("a project_roots line");
    policy.replacen(line, &line.replacen('[', "[\"/tmp/jail-tests\", ", 1), 1)
}

#[test]
fn the_packaged_site_policy_changes_nothing_as_shipped() {
    let shipped = repo_file("contrib/site/jail.toml");
    let Some(site) = SiteDir::new(&shipped) else {
        return;
    };
    let sb = Sandbox::new("site-shipped");
    let plain = sb.jail(&["explain"]);
    assert_code(&plain, 0);
    let o = with_site(&sb, &site.dir, &["explain"]);
    assert_code(&o, 0);
    // Only the lines naming the site file differ from no site at all (and
    // the count of scrubbed variables: JAIL_SITE_DIR is one of them).
    let norm = |s: String| -> String {
        s.lines()
            .filter(|l| !l.contains("site policy") && *l != "[layers]")
            .filter(|l| !l.trim_start().starts_with("scrub "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(norm(stdout(&o)), norm(stdout(&plain)));
}

#[test]
fn the_packaged_site_policy_examples_parse_and_bind_when_switched_on() {
    let (on, n) = uncommented(&repo_file("contrib/site/jail.toml"));
    assert!(n >= 25, "only {n} commented settings found:\n{on}");
    let Some(site) = SiteDir::new(&on) else {
        return;
    };
    let sb = Sandbox::new("site-shipped-on");
    // Parsed (a parse error would come first), and project_roots binds.
    let o = with_site(&sb, &site.dir, &["explain"]);
    assert_code(&o, 125);
    assert!(
        stderr(&o).contains("`site.project_roots`"),
        "{}",
        stderr(&o)
    );
    site.write("jail.toml", &with_test_root(&on));
    let o = with_site(&sb, &site.dir, &["explain"]);
    assert_code(&o, 0);
    let out = stdout(&o);
    for (a, b) in [
        ("/etc/slurm/jwt_hs256.key", ""),
        ("/opt/site/share", ""),
        ("transfer.sh", ""),
        ("proxy", "proxy.example.org:3128"),
        ("SITE_LICENSE_*", ""),
        ("partitions", "debug, gpu"),
        ("max_jobs", "50"),
        ("memory", "16 GiB"),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(a) && l.contains(b))
            .unwrap_or_else(|| panic!("`{a}` `{b}` not in explain:\n{out}"));
        assert!(line.contains("# site "), "not from the site: {line}");
    }
    // The profile list binds: codex may be used, aider may not.
    let o = with_site(&sb, &site.dir, &["-p", "aider", "--", "true"]);
    assert_code(&o, 125);
    assert!(stderr(&o).contains("`site.profiles`"), "{}", stderr(&o));
}

/// The ```toml block under "An example for an HPC cluster".
fn hpc_example(doc: &str) -> String {
    let at = doc
        .find("### An example for an HPC cluster")
        .expect("the HPC example's heading");
    let rest = &doc[at..];
    let start = rest.find("```toml\n").expect("its toml block") + "```toml\n".len();
    let len = rest[start..].find("```").expect("the block's end");
    rest[start..start + len].to_string()
}

#[test]
fn the_admin_guides_hpc_example_parses_and_binds() {
    let doc = repo_file("docs/admin.md");
    let example = hpc_example(&doc);
    let Some(site) = SiteDir::new(&example) else {
        return;
    };
    let sb = Sandbox::new("site-hpc");
    // As written: the test's project is outside the site's project roots.
    let o = with_site(&sb, &site.dir, &["explain"]);
    assert_code(&o, 125);
    assert!(
        stderr(&o).contains("`site.project_roots`"),
        "{}",
        stderr(&o)
    );
    site.write("jail.toml", &with_test_root(&example));
    let o = with_site(&sb, &site.dir, &["explain", "claude"]);
    assert_code(&o, 0);
    let out = stdout(&o);
    for needle in [
        "/etc/slurm/slurm.key",
        "/var/spool/slurmd",
        "/apps",
        "webhook.site",
        "SLURM_JWT",
        "interactive, batch, gpu",
        "ai-agents",
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("`{needle}` not in explain:\n{out}"));
        assert!(line.contains("# site "), "not from the site: {line}");
    }
    // A site-hidden file is absent inside, though it exists outside and
    // its directory is shown (naming the directory is allowed, only the
    // hidden path itself or below it is refused).
    let dir = sb.root.join("etc-slurm");
    let secret = dir.join("slurm.key");
    sb.write(&secret, "FAKE-SLURM-KEY");
    sb.write(dir.join("slurm.conf"), "ClusterName=test");
    let policy = with_test_root(&example).replacen(
        "\"/etc/slurm/slurm.key\"",
        &format!("\"{}\"", secret.display()),
        1,
    );
    site.write("jail.toml", &policy);
    let probe = format!("cat {0}/slurm.conf {0}/slurm.key 2>&1", dir.display());
    let outside = sb.host_sh(&probe);
    assert!(
        stdout(&outside).contains("FAKE-SLURM-KEY"),
        "{}",
        stdout(&outside)
    );
    let o = with_site(
        &sb,
        &site.dir,
        &["--ro", &dir.display().to_string(), "--", "sh", "-c", &probe],
    );
    let out = stdout(&o);
    assert!(out.contains("ClusterName=test"), "{out}{}", stderr(&o));
    assert!(!out.contains("FAKE-SLURM-KEY"), "{out}");
    assert!(out.contains("No such file or directory"), "{out}");
}

/// Each `$ jail ARGS make` line of the guide's "What users see" section
/// with the `jail: ...` line under it.
fn documented_refusals(doc: &str) -> Vec<(Vec<String>, String)> {
    let at = doc
        .find("## What users see when the site narrows something")
        .expect("the section");
    let lines: Vec<&str> = doc[at..].lines().map(str::trim).collect();
    let mut cases = Vec::new();
    for w in lines.windows(2) {
        let Some(cmd) = w[0].strip_prefix("$ jail ") else {
            continue;
        };
        let args: Vec<String> = cmd
            .split_whitespace()
            .filter(|a| *a != "make")
            .map(String::from)
            .collect();
        assert!(w[1].starts_with("jail: "), "no message under `{}`", w[0]);
        cases.push((args, w[1].to_string()));
    }
    cases
}

#[test]
fn the_refusals_the_admin_guide_shows_are_what_jail_prints() {
    let doc = repo_file("docs/admin.md");
    let cases = documented_refusals(&doc);
    assert!(cases.len() >= 5, "{cases:?}");
    let Some(site) = SiteDir::new(&with_test_root(&hpc_example(&doc))) else {
        return;
    };
    let sb = Sandbox::new("site-hpc-refusals");
    sb.mkdir(sb.home.join("other-project"));
    let home = sb.home.display().to_string();
    for (args, want) in cases {
        let mut argv: Vec<String> = args
            .iter()
            .map(|a| a.replacen("~/", &format!("{home}/"), 1))
            .collect();
        argv.extend(["--".into(), "true".into()]);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let o = with_site(&sb, &site.dir, &argv);
        assert_code(&o, 125);
        // The guide's paths: the site file at /etc/jail, alice's home.
        let got = stderr(&o)
            .trim()
            .replace(&site.file().display().to_string(), "/etc/jail/jail.toml")
            .replace(&sb.project.display().to_string(), "/home/alice/proj")
            .replace(&home, "/home/alice");
        assert_eq!(got, want, "jail {args:?}");
    }
}
