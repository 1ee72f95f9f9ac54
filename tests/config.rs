//! Configuration end to end: the real binary, as an unprivileged user,
//! with user, project and (root-owned, temporary) site layers.

mod common;
use common::*;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Output;

/// Asserts a configuration error: exit 125 and one `jail: FILE:LINE:COL: `
/// line naming `file`.
#[track_caller]
fn assert_located(o: &Output, file: &Path) -> (usize, usize) {
    assert_code(o, 125);
    let err = stderr(o);
    let prefix = format!("jail: {}:", file.display());
    let line = err
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no `{prefix}LINE:COL:` in:\n{err}"));
    let mut parts = line[prefix.len()..].splitn(3, ':');
    let l: usize = parts.next().unwrap().parse().expect("line number");
    let c: usize = parts.next().unwrap().parse().expect("column number");
    (l, c)
}

const BAD_FILES: &[(&str, &str, (usize, usize))] = &[
    // syntax error: an unclosed array
    ("syntax", "[network]\nallow = [\"a.com\"\n", (2, 0)),
    // an unknown key
    (
        "unknown",
        "[filesystem]\nhome = \"tmpfs\"\nwritable = [\"/x\"]\n",
        (3, 1),
    ),
    // a wrong type
    ("type", "[network]\nmode = 3\n", (2, 8)),
    // a value the schema cannot check: an unknown domain preset
    ("preset", "[network]\nallow = [\"@nope\"]\n", (2, 10)),
];

#[test]
fn bad_user_config_is_exit_125_with_file_line_and_column() {
    for (what, text, (line, col)) in BAD_FILES {
        let sb = Sandbox::new("bad-user");
        let file = sb.home.join(".config/jail/config.toml");
        sb.write(&file, text);
        let (l, c) = assert_located(&sb.jail(&["true"]), &file);
        assert_eq!(l, *line, "{what}");
        if *col != 0 {
            assert_eq!(c, *col, "{what}");
        }
    }
}

#[test]
fn bad_user_profile_and_project_file_are_located_too() {
    for (what, text, (line, _)) in BAD_FILES {
        let sb = Sandbox::new("bad-proj");
        let file = sb.project.join(".jail.toml");
        sb.write(&file, text);
        let (l, _) = assert_located(&sb.jail(&["true"]), &file);
        assert_eq!(l, *line, "{what}");
        // `jail trust` refuses to trust a file that does not parse
        assert_located(&sb.jail(&["trust"]), &file);
    }
    let sb = Sandbox::new("bad-prof");
    let file = sb.home.join(".config/jail/profiles/mine.toml");
    sb.write(&file, "extends = \"default\"\n[network]\nmode = \"wide\"\n");
    let (l, _) = assert_located(&sb.jail(&["-p", "mine", "--", "true"]), &file);
    assert_eq!(l, 3);
}

#[test]
fn xdg_config_home_is_honoured() {
    let sb = Sandbox::new("xdg");
    let xdg = sb.root.join("xdg");
    let file = xdg.join("jail/config.toml");
    sb.write(&file, "bogus = 1\n");
    let o = sb
        .jail_cmd(&["true"])
        .env("XDG_CONFIG_HOME", &xdg)
        .output()
        .unwrap();
    assert_located(&o, &file);
    // without it, ~/.config is read (and holds nothing here)
    assert_code(&sb.jail(&["true"]), 0);
}

#[test]
fn a_user_config_applies_and_explain_names_it() {
    let sb = Sandbox::new("user-cfg");
    let file = sb.home.join(".config/jail/config.toml");
    sb.write(&file, "[filesystem]\nhide = [\"~/notes.txt\"]\n");
    sb.write(sb.home.join("notes.txt"), "x");
    let o = sb.jail(&["explain", "--", "true"]);
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains(&format!("# user {}", file.display())), "{out}");
}

#[test]
fn an_unsafe_site_dir_is_refused() {
    // owned by the test user: they could write the policy meant to bind them
    let sb = Sandbox::new("site-unsafe");
    let dir = sb.root.join("site");
    sb.write(dir.join("jail.toml"), "[network]\nmode = \"none\"\n");
    let o = with_site(&sb, &dir, &["true"]);
    assert_code(&o, 125);
    let err = stderr(&o);
    assert!(
        err.starts_with("jail: site directory ") && err.contains("owned by root"),
        "{err}"
    );
    let o = with_site(&sb, Path::new("relative/site"), &["true"]);
    assert_code(&o, 125);
    assert!(stderr(&o).contains("absolute"), "{}", stderr(&o));

    // root-owned but writable by others: refused too
    let Some(site) = SiteDir::new("") else { return };
    fs::set_permissions(&site.dir, fs::Permissions::from_mode(0o777)).unwrap();
    let o = with_site(&sb, &site.dir, &["true"]);
    assert_code(&o, 125);
    assert!(
        stderr(&o).contains("not writable by group or others"),
        "{}",
        stderr(&o)
    );
    // and a user-writable jail.toml inside a safe directory
    fs::set_permissions(&site.dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(site.file(), fs::Permissions::from_mode(0o666)).unwrap();
    assert_code(&with_site(&sb, &site.dir, &["true"]), 125);
    fs::set_permissions(site.file(), fs::Permissions::from_mode(0o644)).unwrap();
    assert_code(&with_site(&sb, &site.dir, &["true"]), 0);
}

#[test]
fn refused_overrides_name_the_site_file_and_key() {
    let Some(site) = SiteDir::new(
        "[network]\nmode = \"allowlist\"\nallow = [\"@anthropic\"]\n\
         [filesystem]\nhide = [\"~/lab-secret\"]\n\
         [site]\nprofiles = [\"default\", \"shell\", \"claude\"]\n",
    ) else {
        return;
    };
    let sb = Sandbox::new("site-refuse");
    let cases: &[(&[&str], &str)] = &[
        (&["--net", "host", "--", "true"], "network.mode"),
        (
            &["--allow-domain", "evil.example", "--", "true"],
            "network.allow",
        ),
        (&["--ro", "~/lab-secret", "--", "true"], "filesystem.hide"),
        (&["-p", "codex", "--", "true"], "site.profiles"),
    ];
    for (args, key) in cases {
        let o = with_site(&sb, &site.dir, args);
        assert_code(&o, 125);
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!("jail: {}: `{key}`", site.file().display())),
            "{args:?}: {err}"
        );
    }
    // the same in the user's own config file
    sb.write(
        sb.home.join(".config/jail/config.toml"),
        "[network]\nmode = \"host\"\n",
    );
    let o = with_site(&sb, &site.dir, &["true"]);
    assert_code(&o, 125);
    assert!(stderr(&o).contains("`network.mode`"), "{}", stderr(&o));
    // what the site allows still runs
    fs::remove_file(sb.home.join(".config/jail/config.toml")).unwrap();
    assert_code(
        &with_site(
            &sb,
            &site.dir,
            &["--allow-domain", "api.anthropic.com", "--", "true"],
        ),
        0,
    );
}

#[test]
fn site_policy_reaches_the_jail() {
    let sb = Sandbox::new("site-apply");
    sb.write(sb.project.join("secret.txt"), "SITE-SECRET");
    sb.write(sb.project.join("ok.txt"), "fine");
    let Some(site) = SiteDir::new(&format!(
        "[filesystem]\nhide = [\"{}\"]\n",
        sb.project.join("secret.txt").display()
    )) else {
        return;
    };
    let o = with_site(&sb, &site.dir, &["sh", "-c", "cat ok.txt; cat secret.txt"]);
    assert_code(&o, 1);
    assert!(stdout(&o).contains("fine") && !stdout(&o).contains("SITE-SECRET"));
    // and the user cannot show it again
    let o = with_site(&sb, &site.dir, &["--ro", "secret.txt", "--", "true"]);
    assert_code(&o, 125);
    // not even through a symlink
    std::os::unix::fs::symlink(sb.project.join("secret.txt"), sb.root.join("link")).unwrap();
    let link = sb.root.join("link");
    let o = with_site(
        &sb,
        &site.dir,
        &["--ro", link.to_str().unwrap(), "--", "true"],
    );
    assert_code(&o, 125);
    assert!(stderr(&o).contains("`filesystem.hide`"), "{}", stderr(&o));
    // without the site, the file is there (the test can fail)
    assert_code(&sb.jail(&["cat", "secret.txt"]), 0);
}

#[test]
fn site_profiles_are_listed_and_used() {
    let Some(site) = SiteDir::new("") else { return };
    site.write(
        "profiles/lab.toml",
        "description = \"lab profile\"\nextends = \"default\"\n[env]\nset = { LAB = \"1\" }\n",
    );
    let sb = Sandbox::new("site-prof");
    let o = with_site(&sb, &site.dir, &["profiles"]);
    assert_code(&o, 0);
    let out = stdout(&o);
    let line = out.lines().find(|l| l.starts_with("lab ")).unwrap_or("");
    assert!(
        line.contains(&format!(
            "site {}",
            site.dir.join("profiles/lab.toml").display()
        )),
        "{out}"
    );
    let o = with_site(
        &sb,
        &site.dir,
        &["-p", "lab", "--", "sh", "-c", "echo $LAB"],
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "1");
    // a user profile of the same name may not replace it
    sb.write(
        sb.home.join(".config/jail/profiles/lab.toml"),
        "extends = \"default\"\n",
    );
    let o = with_site(&sb, &site.dir, &["-p", "lab", "--", "true"]);
    assert_code(&o, 125);
    assert!(stderr(&o).contains("profiles/lab.toml"), "{}", stderr(&o));
}

#[test]
fn untrusted_project_widening_needs_jail_trust() {
    let sb = Sandbox::new("trust");
    let file = sb.project.join(".jail.toml");
    sb.write(&file, "[env]\npass = [\"DEMO_TOKEN\"]\n");
    let run = |sb: &Sandbox| {
        sb.jail_cmd(&["sh", "-c", "echo token=$DEMO_TOKEN"])
            .env("DEMO_TOKEN", "t0k3n")
            .output()
            .unwrap()
    };
    let o = run(&sb);
    assert_code(&o, 125);
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!("jail: {}: `env.pass`", file.display()))
            && err.contains("jail trust"),
        "{err}"
    );
    let o = sb.jail(&["trust"]);
    assert_code(&o, 0);
    // it says what the consent covers
    assert!(
        stdout(&o).contains("env.pass: DEMO_TOKEN"),
        "{}",
        stdout(&o)
    );
    let o = run(&sb);
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "token=t0k3n");
    // an edit loses the consent
    sb.write(&file, "[env]\npass = [\"DEMO_TOKEN\"]\n# edited\n");
    assert_code(&run(&sb), 125);
    assert_code(&sb.jail(&["trust"]), 0);
    assert_code(&run(&sb), 0);
    // the same file in another project is not trusted
    let other = Sandbox::new("trust-other");
    other.write(
        other.project.join(".jail.toml"),
        "[env]\npass = [\"DEMO_TOKEN\"]\n# edited\n",
    );
    // share the first user's state: only the project differs
    let o = other
        .jail_cmd(&["true"])
        .env("XDG_STATE_HOME", sb.home.join(".local/state"))
        .output()
        .unwrap();
    assert_code(&o, 125);
    // the trust store is not visible inside the jail
    let o = sb.jail(&[
        "--ro",
        "~/.local",
        "--",
        "sh",
        "-c",
        "ls -a ~/.local/state/jail",
    ]);
    assert_ne!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn an_untrusted_project_file_may_narrow() {
    let sb = Sandbox::new("narrow");
    sb.write(sb.project.join("secret.txt"), "PROJECT-SECRET");
    sb.write(
        sb.project.join(".jail.toml"),
        "[filesystem]\nhide = [\"secret.txt\"]\n[network]\nmode = \"none\"\n",
    );
    let o = sb.jail(&["cat", "secret.txt"]);
    assert_code(&o, 1);
    assert!(!stdout(&o).contains("PROJECT-SECRET"));
}

#[test]
fn every_builtin_profile_parses_and_launches() {
    let sb = Sandbox::new("profiles");
    let o = sb.jail(&["profiles"]);
    assert_code(&o, 0);
    let names: Vec<String> = stdout(&o)
        .lines()
        .skip(1)
        .filter(|l| l.split_whitespace().nth(1) == Some("builtin"))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    for want in [
        "default", "shell", "claude", "codex", "gemini", "aider", "opencode", "goose",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    for name in &names {
        let o = sb.jail(&["-p", name, "--", "true"]);
        assert_code(&o, 0);
    }
    // agent state directories were created on the host, private
    let claude = fs::metadata(sb.home.join(".claude")).expect("~/.claude created");
    assert!(claude.is_dir());
    assert_eq!(claude.mode() & 0o777, 0o700);
    assert_eq!(claude.uid(), user().uid);
}

#[test]
fn agent_state_written_inside_persists() {
    let sb = Sandbox::new("persist");
    let o = sb.jail(&[
        "-p",
        "codex",
        "--",
        "sh",
        "-c",
        "echo login > ~/.codex/auth.json",
    ]);
    assert_code(&o, 0);
    assert_eq!(
        fs::read_to_string(sb.home.join(".codex/auth.json")).unwrap(),
        "login\n"
    );
    // and another agent's profile cannot read it
    let o = sb.jail(&["-p", "claude", "--", "sh", "-c", "cat ~/.codex/auth.json"]);
    assert_code(&o, 1);
    let o = sb.jail(&[
        "-p",
        "claude",
        "--ro",
        "~/.codex",
        "--",
        "sh",
        "-c",
        "ls ~/.codex; cat ~/.codex/auth.json",
    ]);
    assert_code(&o, 1);
    assert!(!stdout(&o).contains("login"), "{}", stdout(&o));
}

/// A stub named like an agent, on PATH, printing the profile jail picked.
fn stub(sb: &Sandbox, name: &str) {
    let p = sb.project.join("bin").join(name);
    sb.write(&p, "#!/bin/sh\necho \"profile=$JAIL_PROFILE\"\n");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn profile_is_picked_by_command_name() {
    let sb = Sandbox::new("autoselect");
    for name in ["claude", "codex", "mytool"] {
        stub(&sb, name);
    }
    let path = format!("{}:{PATH}", sb.project.join("bin").display());
    for (cmd, want) in [
        ("claude", "claude"),
        ("codex", "codex"),
        ("mytool", "default"),
    ] {
        let o = sb.jail_cmd(&[cmd]).env("PATH", &path).output().unwrap();
        assert_code(&o, 0);
        assert_eq!(stdout(&o).trim(), format!("profile={want}"), "{cmd}");
    }
    // --profile wins over the name
    let o = sb
        .jail_cmd(&["-p", "default", "claude"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(stdout(&o).trim(), "profile=default");
    // `jail profiles` marks what `jail claude` and a bare `jail` pick
    let out = stdout(&sb.jail(&["profiles"]));
    let claude = out.lines().find(|l| l.starts_with("claude ")).unwrap_or("");
    assert!(claude.contains("picked by `jail claude`"), "{out}");
    let shell = out.lines().find(|l| l.starts_with("shell ")).unwrap_or("");
    assert!(shell.contains("picked by a bare `jail`"), "{out}");
}

#[test]
fn a_user_profile_shadows_a_builtin_one() {
    let sb = Sandbox::new("shadow");
    let file = sb.home.join(".config/jail/profiles/claude.toml");
    sb.write(
        &file,
        "description = \"my claude\"\nextends = \"claude\"\n[env]\nset = { MINE = \"yes\" }\n",
    );
    let o = sb.jail(&["profiles"]);
    assert_code(&o, 0);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("claude ")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains("builtin") && lines[0].contains("shadowed"),
        "{out}"
    );
    assert!(
        lines[1].contains(&format!("user {}", file.display()))
            && lines[1].contains("picked by `jail claude`"),
        "{out}"
    );
    stub(&sb, "claude");
    let path = format!("{}:{PATH}", sb.project.join("bin").display());
    let o = sb
        .jail_cmd(&["explain", "claude"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let out = stdout(&o);
    // it builds on the builtin claude (extends its own name)
    assert!(
        out.contains("MINE=yes") && out.contains("api.anthropic.com"),
        "{out}"
    );
    assert_code(&sb.jail(&["claude"]), 127);
}

#[test]
fn init_writes_a_trusted_starter_and_never_overwrites() {
    let sb = Sandbox::new("init");
    sb.write(sb.project.join("Cargo.toml"), "[package]\nname = \"x\"\n");
    sb.write(sb.project.join("requirements.txt"), "numpy\n");
    let o = sb.jail(&["init"]);
    assert_code(&o, 0);
    let file = sb.project.join(".jail.toml");
    let text = fs::read_to_string(&file).unwrap();
    assert!(text.contains("@crates") && text.contains("@pypi"), "{text}");
    // it parses, and its widening (the allow list) is trusted
    let o = sb.jail(&["explain", "-p", "claude"]);
    assert_code(&o, 0);
    assert!(stdout(&o).contains("static.crates.io"), "{}", stdout(&o));
    assert!(stdout(&o).contains("(@crates)"), "{}", stdout(&o));
    assert_code(&sb.jail(&["true"]), 0);
    // never overwritten without --force
    sb.write(&file, "# mine\n");
    let o = sb.jail(&["init"]);
    assert_code(&o, 125);
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(&file).unwrap(), "# mine\n");
    assert_code(&sb.jail(&["init", "--force"]), 0);
    assert!(fs::read_to_string(&file).unwrap().contains("@crates"));
}

#[test]
fn jails_own_config_is_never_visible_inside() {
    let sb = Sandbox::new("own-cfg");
    sb.write(sb.home.join(".config/jail/config.toml"), "# nothing\n");
    sb.write(sb.home.join(".config/other/x"), "x");
    let o = sb.jail(&[
        "--rw",
        "~/.config",
        "--",
        "sh",
        "-c",
        "ls ~/.config/other && ! ls ~/.config/jail && ! touch ~/.config/jail/config.toml",
    ]);
    assert_code(&o, 0);
}

#[test]
fn site_blocked_variables_never_reach_the_jail() {
    let sb = Sandbox::new("site-env");
    let run = |site: Option<&Path>, args: &[&str]| {
        let mut c = sb.jail_cmd(args);
        c.env("LAB_ID", "lab-42");
        if let Some(s) = site {
            c.env("JAIL_SITE_DIR", s);
        }
        c.output().unwrap()
    };
    let echo = ["sh", "-c", "echo ${LAB_ID:-gone}"];
    // not a credential by jail's own rules: it passes without a site
    assert_eq!(stdout(&run(None, &echo)).trim(), "lab-42");
    let Some(site) = SiteDir::new("[env]\nblock = [\"LAB_*\"]\n") else {
        return;
    };
    let o = run(Some(&site.dir), &echo);
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "gone");
    let o = run(Some(&site.dir), &["--env", "LAB_ID", "--", "true"]);
    assert_code(&o, 125);
    assert!(stderr(&o).contains("`env.block`"), "{}", stderr(&o));
}
