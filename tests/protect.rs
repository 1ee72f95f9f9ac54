//! Protected paths inside the project (git hooks and config, direnv,
//! editor and agent config): read-only, unrenamable parents, and created
//! ones quarantined at exit, even when jail is killed.

mod common;
use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn quarantined(sb: &Sandbox) -> Vec<String> {
    let q = sb.home.join(".local/state/jail/quarantine");
    let mut found = Vec::new();
    let mut stack = vec![q];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn existing_protected_paths_are_read_only_and_cannot_be_moved_away() {
    let sb = Sandbox::new("protect-ro");
    sb.write(
        sb.project.join(".git/hooks/pre-commit.sample"),
        "#!/bin/sh\n",
    );
    sb.write(sb.project.join(".git/config"), "[core]\n");
    sb.write(sb.project.join(".git/HEAD"), "ref: refs/heads/main\n");
    sb.write(sb.project.join(".envrc"), "export A=1\n");
    sb.write(sb.project.join(".claude/settings.json"), "{}");
    sb.write(sb.project.join(".vscode/tasks.json"), "{}");
    let script = "echo evil > .git/hooks/pre-commit; echo 2>&1; \
                  echo '[core] fsmonitor=evil' >> .git/config; \
                  echo evil >> .envrc; echo evil > .claude/settings.json; echo evil > .vscode/tasks.json; \
                  mv .git moved-git; mv .claude c2; rm -rf .git/hooks; ln -sf /tmp/x .envrc; \
                  echo ok > .git/HEAD2 && echo ordinary-git-files-writable; echo x > notes.txt";
    let o = sb.jail_sh(&[], script);
    let err = stderr(&o);
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(err.contains("Device or resource busy"), "{err}");
    assert!(
        stdout(&o).contains("ordinary-git-files-writable"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read_to_string(sb.project.join(".git/config")).unwrap(),
        "[core]\n"
    );
    assert_eq!(
        std::fs::read_to_string(sb.project.join(".envrc")).unwrap(),
        "export A=1\n"
    );
    assert_eq!(
        std::fs::read_to_string(sb.project.join(".claude/settings.json")).unwrap(),
        "{}"
    );
    assert_eq!(
        std::fs::read_to_string(sb.project.join(".vscode/tasks.json")).unwrap(),
        "{}"
    );
    assert!(!sb.project.join(".git/hooks/pre-commit").exists());
    assert!(sb.project.join(".git/hooks").is_dir() && !sb.project.join("moved-git").exists());
    assert!(sb.project.join("notes.txt").exists());
}

#[test]
fn created_protected_paths_are_quarantined_at_exit() {
    let sb = Sandbox::new("protect-new");
    let o = sb.jail_sh(&[], "echo '{\"mcpServers\":{}}' > .mcp.json; mkdir -p .vscode .claude; echo x > .vscode/tasks.json; echo '{}' > .claude/settings.local.json; echo x > keep.txt");
    assert_code(&o, 0);
    let err = stderr(&o);
    assert!(err.starts_with("jail: moved "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!sb.project.join(".mcp.json").exists());
    assert!(!sb.project.join(".vscode").exists());
    assert!(!sb.project.join(".claude/settings.local.json").exists());
    assert!(sb.project.join(".claude").is_dir() && sb.project.join("keep.txt").exists());
    assert_eq!(
        quarantined(&sb),
        [".mcp.json", "settings.local.json", "tasks.json"]
    );
}

#[test]
fn quarantine_happens_even_when_jail_is_killed() {
    let sb = Sandbox::new("protect-kill");
    let mut child = sb
        .jail_cmd(&["--", "sh", "-c", "echo '{}' > .mcp.json; sleep 60"])
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !sb.project.join(".mcp.json").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the program never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: SIGKILL to our own child: jail gets no chance to clean up.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    while sb.project.join(".mcp.json").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            ".mcp.json was not quarantined after SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(quarantined(&sb), [".mcp.json"]);
}

#[test]
fn naming_a_protected_path_in_rw_relaxes_it() {
    let sb = Sandbox::new("protect-rw");
    sb.write(sb.project.join(".vscode/settings.json"), "{}");
    let vscode = sb.project.join(".vscode").display().to_string();
    let o = sb.jail_sh(
        &["--rw", &vscode],
        "echo '{\"a\":1}' > .vscode/settings.json",
    );
    assert_code(&o, 0);
    assert_eq!(
        std::fs::read_to_string(Path::new(&vscode).join("settings.json")).unwrap(),
        "{\"a\":1}\n"
    );
}

#[test]
fn a_git_file_cannot_be_pointed_at_planted_hooks() {
    // Worktrees and submodules have a `.git` file naming the git directory.
    let sb = Sandbox::new("protect-gitfile");
    sb.write(
        sb.project.join(".git"),
        "gitdir: /elsewhere/.git/worktrees/w\n",
    );
    let o = sb.jail_sh(&[], "mkdir -p evil/hooks && echo 'gitdir: ./evil' > .git; mv .git g 2>&1; rm -f .git 2>&1; true");
    let err = stderr(&o) + &stdout(&o);
    assert!(
        err.contains("Read-only file system") && err.contains("busy"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(sb.project.join(".git")).unwrap(),
        "gitdir: /elsewhere/.git/worktrees/w\n"
    );
}
