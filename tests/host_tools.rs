//! Host tools that execute project files without asking again: a git
//! hook manager's configuration, read by the hook installed in the
//! repository at the host's next commit. Written as the attack: the
//! host's own `git commit` runs afterwards and a marker shows whether the
//! planted entry ran.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// pre-commit, the real tool, or None (SKIP; a failure under CI=true,
/// where .ci/run installs it).
fn pre_commit() -> Option<()> {
    let found = std::process::Command::new("pre-commit")
        .arg("--version")
        .env("PATH", PATH)
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(());
    }
    skip(
        Lack::Setup,
        "pre-commit is not installed (.ci/run installs it)",
    );
    None
}

fn config(entry: &str) -> String {
    format!(
        "repos:\n- repo: local\n  hooks:\n  - id: check\n    name: check\n    entry: {entry}\n    \
         language: system\n    pass_filenames: false\n    always_run: true\n"
    )
}

/// A repository with one commit and pre-commit's hook installed by the
/// test user, as a developer would have it.
fn repo_with_pre_commit(sb: &Sandbox, with_config: bool) {
    if with_config {
        sb.write(sb.project.join(".pre-commit-config.yaml"), &config("true"));
    }
    sb.write(sb.project.join("src.txt"), "one\n");
    let o = sb.host_sh(
        "git init -q -b main . && git config user.email t@t && git config user.name t && \
         git add -A && git commit -qm init && pre-commit install",
    );
    assert_code(&o, 0);
    assert!(sb.project.join(".git/hooks/pre-commit").exists());
}

/// The host's next commit, as the user makes it; whether `marker` appeared.
fn host_commit_runs(sb: &Sandbox, marker: &Path) -> bool {
    let _ = sb.host_sh("echo more >> src.txt && git add src.txt && git commit -qm next");
    marker.exists()
}

#[test]
fn a_pre_commit_config_rewritten_inside_does_not_run_at_the_hosts_next_commit() {
    if pre_commit().is_none() {
        return;
    }
    let sb = Sandbox::new("pre-commit-rewrite");
    repo_with_pre_commit(&sb, true);
    let marker = sb.root.join("PLANTED-RAN");
    let evil = config(&format!("touch {}", marker.display()));
    let o = sb.jail_sh(
        &[],
        &format!(
            "printf '%s' '{evil}' > .pre-commit-config.yaml; \
             mv .pre-commit-config.yaml moved.yaml; \
             printf '%s' '{evil}' > new.yaml && mv -f new.yaml .pre-commit-config.yaml; \
             git add -A 2>/dev/null; true"
        ),
    );
    assert_code(&o, 0);
    assert!(
        !host_commit_runs(&sb, &marker),
        "the host's commit ran the planted entry"
    );
    // Without the jail the same rewrite runs at the next commit.
    sb.write(sb.project.join(".pre-commit-config.yaml"), &evil);
    assert_code(&sb.host_sh("git add .pre-commit-config.yaml"), 0);
    assert!(host_commit_runs(&sb, &marker), "the attack works unjailed");
}

#[test]
fn a_pre_commit_config_created_inside_is_moved_away_before_the_hosts_commit() {
    if pre_commit().is_none() {
        return;
    }
    let sb = Sandbox::new("pre-commit-create");
    // Hook installed, no configuration yet (pre-commit then skips, with
    // PRE_COMMIT_ALLOW_NO_CONFIG, or refuses the commit).
    repo_with_pre_commit(&sb, false);
    let marker = sb.root.join("PLANTED-RAN");
    let evil = config(&format!("touch {}", marker.display()));
    let o = sb.jail_sh(
        &[],
        &format!("printf '%s' '{evil}' > .pre-commit-config.yaml && git add -A"),
    );
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains(".pre-commit-config.yaml"),
        "{}",
        stderr(&o)
    );
    assert!(!sb.project.join(".pre-commit-config.yaml").exists());
    assert!(!host_commit_runs(&sb, &marker));
}

#[test]
fn lefthook_overcommit_and_husky_configs_are_read_only_inside() {
    let sb = Sandbox::new("hook-managers");
    for f in [
        "lefthook.yml",
        ".lefthook-local.yml",
        ".overcommit.yml",
        ".husky/pre-commit",
        "mise.toml",
        ".lintstagedrc.json",
        ".devcontainer/devcontainer.json",
    ] {
        sb.write(sb.project.join(f), "original\n");
    }
    let o = sb.jail_sh(
        &[],
        "for f in lefthook.yml .lefthook-local.yml .overcommit.yml .husky/pre-commit mise.toml \
         .lintstagedrc.json .devcontainer/devcontainer.json; do \
           echo evil > $f 2>/dev/null && echo \"wrote $f\"; done; \
         mv .husky h 2>/dev/null && echo moved-husky; \
         echo evil > .lefthook.yml; echo evil > lefthook-local.yml; true",
    );
    assert_code(&o, 0);
    assert!(!stdout(&o).contains("wrote"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("moved-husky"), "{}", stdout(&o));
    for f in [
        "lefthook.yml",
        ".overcommit.yml",
        ".husky/pre-commit",
        "mise.toml",
    ] {
        assert_eq!(
            fs::read_to_string(sb.project.join(f)).unwrap(),
            "original\n",
            "{f}"
        );
    }
    // Created inside: moved away at exit.
    assert!(!sb.project.join(".lefthook.yml").exists());
    assert!(!sb.project.join("lefthook-local.yml").exists());
}

#[test]
fn explain_and_doctor_say_when_an_installed_hook_runs_project_code() {
    let sb = Sandbox::new("hook-explain");
    sb.write(sb.project.join("f"), "x\n");
    let o = sb.host_sh("git init -q -b main .");
    assert_code(&o, 0);
    let hook = sb.project.join(".git/hooks/pre-push");
    sb.write(&hook, "#!/bin/sh\nnpm test\n");
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    let e = sb.jail(&["explain"]);
    assert_code(&e, 0);
    let out = stdout(&e);
    assert!(out.contains("[host tools]"), "{out}");
    assert!(out.contains("pre-push runs project code: `npm`"), "{out}");
    assert!(out.contains("--review"), "{out}");
    assert!(out.contains("commit inside the jail"), "{out}");
    let d = sb.jail(&["doctor"]);
    let out = stdout(&d);
    assert!(
        out.lines()
            .any(|l| l.contains("git hooks") && l.contains("degraded") && l.contains("--review")),
        "{out}"
    );
    // A hook that runs nothing of the project: no warning.
    sb.write(&hook, "#!/bin/sh\nexit 0\n");
    let e = sb.jail(&["explain"]);
    assert!(!stdout(&e).contains("runs project code"), "{}", stdout(&e));
}
