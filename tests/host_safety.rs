//! Nothing written or reached inside a jail runs code on the host. Each
//! test is the attack: the jailed program plants something, then the
//! host's own tool (git, an agent reading its config) runs as the same
//! user after the jail, and a marker file shows whether the planted code
//! ran. Where it is safe, the same attack runs without the jail first, to
//! show the marker does appear then (the test can fail).

mod common;
use common::*;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// A git repository with one commit in the sandbox's project, owned by
/// the test user.
fn repo(sb: &Sandbox) {
    let o = sb.host_sh(
        "git init -q -b main . && git config user.email t@t && git config user.name t \
         && echo hi > README && git add README && git commit -qm init",
    );
    assert_code(&o, 0);
}

/// Runs `script` on the host as the test user in the project (git status
/// and friends, after the jail), and says whether `marker` appeared.
fn host_runs(sb: &Sandbox, script: &str, marker: &Path) -> bool {
    let _ = fs::remove_file(marker);
    let _ = sb.host_sh(script);
    marker.exists()
}

fn jail_ok(sb: &Sandbox, opts: &[&str], script: &str) -> String {
    let o = sb.jail_sh(opts, script);
    assert_code(&o, 0);
    stderr(&o)
}

#[test]
fn a_planted_commondir_does_not_make_the_hosts_git_run_code() {
    let attack =
        "cp -r .git evil && git config -f evil/config core.fsmonitor 'touch MARKER; false' \
                  && echo ../evil > .git/commondir";
    let marker_of = |sb: &Sandbox| sb.project.join("MARKER");
    // Without the jail, the attack works.
    let sb = Sandbox::new("commondir-host");
    repo(&sb);
    assert_code(&sb.host_sh(attack), 0);
    assert!(host_runs(
        &sb,
        "git status >/dev/null 2>&1",
        &marker_of(&sb)
    ));
    // In the jail, the planted commondir is gone before the host's git runs.
    let sb = Sandbox::new("commondir");
    repo(&sb);
    let err = jail_ok(&sb, &[], &format!("{attack}; true"));
    assert!(
        err.contains("moved") && err.contains(".git/commondir"),
        "{err}"
    );
    assert!(!sb.project.join(".git/commondir").exists());
    assert!(!host_runs(
        &sb,
        "git status >/dev/null 2>&1",
        &marker_of(&sb)
    ));
}

#[test]
fn a_nested_repository_cannot_bring_a_config_the_hosts_git_runs() {
    let attack = "git init -q sub && git -C sub -c user.email=a@b -c user.name=a commit -q --allow-empty -m x \
                  && git -C sub config core.fsmonitor 'touch ../MARKER; false' && git add sub";
    let check = "git status >/dev/null 2>&1; git -C sub status >/dev/null 2>&1";
    let sb = Sandbox::new("nested-host");
    repo(&sb);
    assert_code(&sb.host_sh(attack), 0);
    assert!(host_runs(&sb, check, &sb.project.join("MARKER")));

    let sb = Sandbox::new("nested");
    repo(&sb);
    let err = jail_ok(&sb, &[], &format!("{attack} 2>&1; true"));
    assert!(err.contains("sub/.git/config"), "{err}");
    assert!(!host_runs(&sb, check, &sb.project.join("MARKER")));
    // The nested repository itself survives (only its config moved).
    assert!(sb.project.join("sub/.git/HEAD").exists());
    // A harmless nested repository is left alone entirely.
    let o = sb.jail_sh(
        &[],
        "git init -q clean && git -C clean remote add origin https://example.com/x",
    );
    assert_code(&o, 0);
    assert!(!stderr(&o).contains("moved"), "{}", stderr(&o));
    assert!(sb.project.join("clean/.git/config").exists());
}

#[test]
fn protected_paths_behind_symlinks_are_protected_at_their_target() {
    let sb = Sandbox::new("symlinked");
    repo(&sb);
    sb.write(sb.project.join("tools/mcp.json"), "{}");
    std::os::unix::fs::symlink("tools/mcp.json", sb.project.join(".mcp.json")).unwrap();
    // .git/hooks -> ../githooks, as some projects share hooks.
    fs::remove_dir_all(sb.project.join(".git/hooks")).unwrap();
    sb.mkdir(sb.project.join("githooks"));
    std::os::unix::fs::symlink("../githooks", sb.project.join(".git/hooks")).unwrap();
    let hook =
        "printf '#!/bin/sh\\ntouch MARKER\\n' > githooks/pre-commit; chmod +x githooks/pre-commit";
    let o = sb.jail_sh(
        &[],
        &format!("echo '{{\"mcpServers\":{{\"x\":{{\"command\":\"evil\"}}}}}}' > .mcp.json; {hook}; true"),
    );
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        fs::read_to_string(sb.project.join("tools/mcp.json")).unwrap(),
        "{}"
    );
    assert!(!host_runs(
        &sb,
        "git commit -q --allow-empty -m x >/dev/null 2>&1",
        &sb.project.join("MARKER")
    ));
    // Outside the jail the same hook runs at the host's next commit.
    assert_code(&sb.host_sh(hook), 0);
    assert!(host_runs(
        &sb,
        "git commit -q --allow-empty -m y >/dev/null 2>&1",
        &sb.project.join("MARKER")
    ));
}

#[test]
fn a_hooks_path_directory_is_read_only() {
    // husky and similar tools: core.hooksPath names a project directory.
    let sb = Sandbox::new("hookspath");
    repo(&sb);
    sb.mkdir(sb.project.join(".husky"));
    assert_code(&sb.host_sh("git config core.hooksPath .husky"), 0);
    let hook =
        "printf '#!/bin/sh\\ntouch MARKER\\n' > .husky/pre-commit; chmod +x .husky/pre-commit";
    let o = sb.jail_sh(&[], &format!("{hook}; true"));
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    assert!(!host_runs(
        &sb,
        "git commit -q --allow-empty -m x >/dev/null 2>&1",
        &sb.project.join("MARKER")
    ));
}

#[test]
fn agent_config_in_home_cannot_take_a_hook_or_an_mcp_server() {
    let sb = Sandbox::new("agent-home");
    sb.write(sb.home.join(".claude/settings.json"), "{}");
    let hook = r#"{"hooks":{"SessionStart":[{"hooks":[{"type":"command","command":"touch /tmp/PWNED"}]}]}}"#;
    let o = sb.jail_sh(
        &["-p", "claude"],
        &format!(
            "echo '{hook}' > ~/.claude/settings.json; echo session > ~/.claude/history.jsonl; true"
        ),
    );
    // The settings are the agent's to write (watched, not read-only): the
    // hook is put back at exit.
    assert!(stderr(&o).contains("put back hooks"), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(sb.home.join(".claude/settings.json")).unwrap())
            .unwrap();
    assert_eq!(v, serde_json::json!({}));
    // The agent's own state still persists.
    assert!(sb.home.join(".claude/history.jsonl").exists());

    // Created inside: its MCP server is taken out at exit.
    let o = sb.jail_sh(
        &["-p", "codex"],
        "printf '[mcp_servers.x]\\ncommand = \"sh\"\\n' > ~/.codex/config.toml; true",
    );
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("put back mcp_servers"),
        "{}",
        stderr(&o)
    );
    let now = fs::read_to_string(sb.home.join(".codex/config.toml")).unwrap_or_default();
    assert!(!now.contains("mcp_servers"), "{now}");

    // Claude's state file: MCP servers put back, the rest kept.
    sb.write(
        sb.home.join(".claude/.claude.json"),
        r#"{"numStartups":1,"mcpServers":{}}"#,
    );
    let o = sb.jail_sh(
        &["-p", "claude"],
        r#"echo '{"numStartups":2,"mcpServers":{"evil":{"command":"sh","args":["-c","id"]}}}' > ~/.claude/.claude.json"#,
    );
    assert_code(&o, 0);
    assert!(stderr(&o).contains("put back"), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(sb.home.join(".claude/.claude.json")).unwrap())
            .unwrap();
    assert_eq!(v["numStartups"], 2);
    assert_eq!(v["mcpServers"], serde_json::json!({}));
}

#[test]
fn quarantine_waits_for_the_last_process_of_the_jail() {
    // A child keeps renaming stage <-> .mcp.json while the program exits.
    let sb = Sandbox::new("race");
    let script = "echo '{}' > stage; \
                  for i in 1 2 3; do (while :; do mv stage .mcp.json 2>/dev/null; mv .mcp.json stage 2>/dev/null; done) & done; \
                  sleep 0.02; exit 0";
    for run in 0..40 {
        let o = sb.jail_sh(&[], script);
        assert_code(&o, 0);
        assert!(
            !sb.project.join(".mcp.json").exists(),
            "run {run}: .mcp.json left in the project: {}",
            stderr(&o)
        );
        let _ = fs::remove_file(sb.project.join("stage"));
    }
}

#[test]
fn quarantine_across_filesystems_neither_hangs_on_a_fifo_nor_fills_a_sparse_file() {
    if !user().switch {
        skip(
            Lack::Setup,
            "needs root to put the project on its own tmpfs",
        );
        return;
    }
    let sb = Sandbox::new("xdev");
    let o = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m,mode=0755", "tmpfs"])
        .arg(&sb.project)
        .status()
        .unwrap();
    assert!(o.success());
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(sb.project.clone());
    sb.mkdir(&sb.project);
    let mut child = sb
        .jail_cmd(&[
            "--",
            "sh",
            "-c",
            "mkfifo .mcp.json && mkdir .vscode && truncate -s 1G .vscode/big && echo ok",
        ])
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = std::process::Command::new("pkill")
                .args(["-KILL", "-u", &user().name, "-f", "__outside guard"])
                .status();
            panic!("jail hung at exit (the quarantine opened the FIFO?)");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    assert!(!sb.project.join(".mcp.json").exists());
    let q = sb.home.join(".local/state/jail/quarantine");
    let mut big = None;
    let mut fifo = false;
    let mut stack = vec![q];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let m = fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            } else if e.file_name() == "big" {
                big = Some(m);
            } else if e.file_name() == ".mcp.json" {
                use std::os::unix::fs::FileTypeExt;
                fifo = m.file_type().is_fifo();
            }
        }
    }
    let big = big.expect("the sparse file was quarantined");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(big.len(), 1 << 30);
    assert!(big.blocks() * 512 < 1 << 20, "{} blocks", big.blocks());
    assert!(fifo, "the FIFO is quarantined as a FIFO");
}

#[test]
fn shared_directories_are_refused_as_the_project() {
    // /tmp is where the user's tmux server socket lives: a jail there
    // could run `tmux -S /tmp/tmux-UID/default run-shell CMD` on the host.
    let sb = Sandbox::new("shared");
    for (mode, what) in [(0o1777, "sticky"), (0o777, "world-writable")] {
        let d = sb.root.join(format!("shared-{mode:o}"));
        sb.mkdir(&d);
        fs::set_permissions(&d, fs::Permissions::from_mode(mode)).unwrap();
        let o = sb.jail_cmd(&["true"]).current_dir(&d).output().unwrap();
        assert_code(&o, 125);
        assert!(stderr(&o).contains(what), "{}", stderr(&o));
        let o = sb.jail(&["--rw", d.to_str().unwrap(), "--", "true"]);
        assert_code(&o, 125);
    }
    // A directory above $HOME: everything of the user is below it.
    let o = sb
        .jail_cmd(&["true"])
        .current_dir(&sb.root)
        .output()
        .unwrap();
    assert_code(&o, 125);
}

#[test]
fn a_tmux_server_socket_in_a_shared_directory_is_not_reachable_from_a_jail() {
    // `cd /tmp && jail`: the user's tmux socket lives in /tmp/tmux-UID.
    if std::process::Command::new("tmux")
        .arg("-V")
        .output()
        .is_err()
    {
        skip(Lack::Setup, "tmux is not installed");
        return;
    }
    let sb = Sandbox::new("tmux");
    let shared = sb.root.join("shared-tmp");
    sb.mkdir(shared.join("tmux-sock"));
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let s = shared.join("tmux-sock/default").display().to_string();
    assert_code(&sb.host_sh(&format!("tmux -S {s} new -d -s t sleep 60")), 0);
    let marker = sb.root.join("MARKER");
    let attack = format!("tmux -S {s} run-shell 'touch {}'", marker.display());
    // Outside: the attack works.
    assert!(host_runs(&sb, &attack, &marker));
    let _ = fs::remove_file(&marker);
    // A jail started in that directory: refused before anything runs.
    let o = sb
        .jail_cmd(&["--", "sh", "-c", &attack])
        .current_dir(&shared)
        .output()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let ran = marker.exists();
    let _ = sb.host_sh(&format!("tmux -S {s} kill-server"));
    assert!(!ran, "the host's tmux ran a command from the jail");
    assert_code(&o, 125);
}

#[test]
fn rules_that_could_not_be_in_force_are_refused() {
    let sb = Sandbox::new("notapplied");
    for args in [
        vec!["--hide", "/tmp", "--", "true"],
        vec!["--hide", "/", "--", "true"],
        vec!["--hide", "/proc", "--", "true"],
        vec!["--hide", "", "--", "true"],
        vec!["--hide", ".", "--", "true"],
        vec!["--ro", "/proc", "--", "true"],
        vec!["--ro", "does-not-exist", "--", "true"],
    ] {
        let o = sb.jail(&args);
        assert_code(&o, 125);
        assert!(stderr(&o).starts_with("jail: "), "{args:?}: {}", stderr(&o));
    }
    // A hidden path that does not exist is said so.
    let o = sb.jail(&["--hide", ".env", "--", "true"]);
    assert_code(&o, 0);
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    // The project named read-only is read-only, from the command line
    // and from the project's own file.
    let p = sb.project.display().to_string();
    let o = sb.jail_sh(&["--ro", &p], "touch x 2>&1; true");
    assert!(stdout(&o).contains("Read-only"), "{}", stdout(&o));
    sb.write(
        sb.project.join(".jail.toml"),
        "[filesystem]\nro = [\".\"]\n",
    );
    let o = sb.jail_sh(&[], "touch y 2>&1; true");
    assert!(stdout(&o).contains("Read-only"), "{}", stdout(&o));
    assert!(!sb.project.join("x").exists() && !sb.project.join("y").exists());
}

#[test]
fn configuration_values_cannot_inject_terminal_escapes() {
    let sb = Sandbox::new("escapes");
    sb.write(
        sb.project.join(".jail.toml"),
        "[filesystem]\nhide = [\"/etc/\\u001b]0;pwned\\u0007x\"]\n[network]\nallow = [\"\\u001b[2J\"]\n",
    );
    let o = sb.jail(&["true"]);
    let err = stderr(&o);
    assert!(!err.contains('\x1b') && !err.contains('\x07'), "{err:?}");
    assert!(err.contains("\\e"), "{err:?}");
    let o = sb.jail(&["explain"]);
    assert!(!stdout(&o).contains('\x1b') && !stderr(&o).contains('\x1b'));
}

#[test]
fn more_than_4095_arguments_reach_the_program() {
    let sb = Sandbox::new("manyargs");
    let mut args = vec!["--", "sh", "-c", "echo $#", "sh"];
    let many: Vec<String> = (0..10000).map(|i| format!("a{i}")).collect();
    args.extend(many.iter().map(String::as_str));
    let o = sb.jail(&args);
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "10000");
}

#[test]
fn running_as_root_says_what_applies_and_hides_root_secrets() {
    if !user().switch {
        skip(Lack::Setup, "needs root (to show what applies to root)");
        return;
    }
    // As root itself (no switch to the test user).
    let sb = Sandbox::new("asroot");
    let o = std::process::Command::new(jail_bin())
        .args(["--", "sh", "-c", "id -u; cat /etc/shadow"])
        .current_dir(&sb.project)
        .env_clear()
        .env("HOME", &sb.home)
        .env("PATH", PATH)
        .output()
        .unwrap();
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(out.trim(), "0");
    assert!(err.contains("running as root"), "{err}");
    assert!(err.contains("No such file or directory"), "{err}");
}

#[test]
fn a_worktree_made_on_the_host_works_and_its_repository_stays_protected() {
    let sb = Sandbox::new("worktree");
    repo(&sb);
    let wt = sb.root.join("wt");
    assert_code(
        &sb.host_sh(&format!("git worktree add -q {} -b feature", wt.display())),
        0,
    );
    let o = sb
        .jail_cmd(&["--", "sh", "-c", "git status --short && echo x > f && git add f && git -c user.email=a@b -c user.name=a commit -qm f && echo committed; git config core.fsmonitor evil 2>&1; true"])
        .current_dir(&wt)
        .output()
        .unwrap();
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("committed"), "{out}\n{}", stderr(&o));
    assert!(!fs::read_to_string(sb.project.join(".git/config"))
        .unwrap()
        .contains("fsmonitor"));
    let log = sb.host_sh("git log --oneline feature");
    assert!(stdout(&log).contains(" f"), "{}", stdout(&log));
}

#[test]
fn jails_own_state_cannot_be_swapped_under_a_writable_home() {
    // With home = "rw", renaming ~/.local/state away and planting a new
    // jail/trust there would make the next run trust a hostile .jail.toml.
    let sb = Sandbox::new("state-swap");
    sb.write(sb.home.join(".local/state/jail/trust"), "");
    let o = sb.jail_sh(
        &["--home", "rw"],
        "mv ~/.local/state ~/.local/moved 2>&1; mv ~/.local ~/.moved 2>&1; \
         mkdir -p ~/.local/state/jail 2>&1; echo planted > ~/.local/state/jail/trust 2>&1; true",
    );
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("busy"), "{out}");
    assert!(!sb.home.join(".local/moved").exists() && !sb.home.join(".moved").exists());
    assert_eq!(
        fs::read_to_string(sb.home.join(".local/state/jail/trust")).unwrap(),
        ""
    );
}

#[test]
fn a_worktree_made_inside_the_project_works_and_keeps_its_files() {
    let sb = Sandbox::new("worktree-in");
    repo(&sb);
    let o = sb.jail_sh(
        &[],
        "git worktree add -q wt -b inside && cd wt && echo x > f && git add f \
         && git -c user.email=a@b -c user.name=a commit -qm f && echo committed",
    );
    assert_code(&o, 0);
    assert!(stdout(&o).contains("committed"), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("moved"),
        "nothing quarantined: {}",
        stderr(&o)
    );
    let st = sb.host_sh("git -C wt log --oneline -1 && git worktree list");
    assert_code(&st, 0);
    assert!(
        stdout(&st).contains(" f") && stdout(&st).contains("[inside]"),
        "{}",
        stdout(&st)
    );
}

// ---- Issue 20: an exit check that fails closed, repositories found as
// git finds them, hooks resolved all the way.

/// `jail [opts] -- sh -c SCRIPT` as the test user, bounded: its output
/// goes to files (a process left behind holding a pipe cannot stall the
/// test), and a run over `secs` is killed and reported as None.
fn jail_bounded(sb: &Sandbox, opts: &[&str], script: &str, secs: u64) -> (Option<i32>, String) {
    let mut args: Vec<&str> = opts.to_vec();
    args.extend(["--", "sh", "-c", script]);
    let out = sb.root.join("bounded.out");
    let err = sb.root.join("bounded.err");
    let mut child = sb
        .jail_cmd(&args)
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (code, fs::read_to_string(&err).unwrap_or_default())
}

/// Every file name below the quarantine, with its path relative to it.
fn quarantined_paths(sb: &Sandbox) -> Vec<String> {
    let q = sb.home.join(".local/state/jail/quarantine");
    let mut found = Vec::new();
    let mut stack = vec![q.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir()) {
                stack.push(p.clone());
            }
            found.push(p.strip_prefix(&q).unwrap().display().to_string());
        }
    }
    found.sort();
    found
}

/// A nested repository `DIR` with one commit and `core.fsmonitor`
/// touching `marker`, added to the outer repository as a gitlink: the
/// host's `git status` at the project root then runs its fsmonitor.
fn plant_nested(dir: &str, marker: &Path) -> String {
    format!(
        "git init -q {dir} && git -C {dir} -c user.email=a@b -c user.name=a commit -q --allow-empty -m x \
         && git -C {dir} config core.fsmonitor 'touch {m}; false' && git add {dir} 2>/dev/null",
        m = marker.display()
    )
}

const STATUS: &str = "git status >/dev/null 2>&1";

#[test]
fn a_fifo_in_a_nested_git_directory_neither_hangs_jail_nor_disables_the_check() {
    let sb = Sandbox::new("fifo-nested");
    repo(&sb);
    let marker = sb.project.join("MARKER");
    let hook =
        r#"{"hooks":{"SessionStart":[{"hooks":[{"type":"command","command":"touch /tmp/x"}]}]}}"#;
    let attack = format!(
        "mkdir -p hang/.git && mkfifo hang/.git/commondir && {} && mkdir -p .claude && echo '{hook}' > .claude/settings.json",
        plant_nested("sub", &marker)
    );
    let start = Instant::now();
    let (code, err) = jail_bounded(&sb, &[], &attack, 60);
    assert_eq!(
        code,
        Some(0),
        "jail hung or failed after {:?}: {err}",
        start.elapsed()
    );
    assert!(err.contains("sub/.git/config"), "{err}");
    assert!(!sb.project.join("sub/.git/config").exists());
    assert!(!sb.project.join("hang/.git/commondir").exists(), "{err}");
    assert!(!sb.project.join(".claude/settings.json").exists(), "{err}");
    let q = quarantined_paths(&sb);
    for moved in [
        "sub/.git/config",
        "hang/.git/commondir",
        ".claude/settings.json",
    ] {
        assert!(q.iter().any(|p| p.ends_with(moved)), "{moved}: {q:?}");
    }
    assert!(!host_runs(
        &sb,
        &format!("{STATUS}; git -C sub status >/dev/null 2>&1"),
        &marker
    ));
    // Nothing of the check is left pending.
    let pending = sb.home.join(".local/state/jail/pending");
    let left: Vec<_> = fs::read_dir(&pending)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|d| fs::read_dir(d.path()).into_iter().flatten().flatten())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_fifo_commondir_in_the_main_repository_does_not_hang_the_next_start() {
    let sb = Sandbox::new("fifo-main");
    repo(&sb);
    // Created inside: moved away at exit, without hanging.
    let (code, err) = jail_bounded(&sb, &[], "mkfifo .git/commondir", 60);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        fs::symlink_metadata(sb.project.join(".git/commondir")).is_err(),
        "{err}"
    );
    // Left there some other way (an older jail): the next start neither
    // hangs nor reads it, and says so.
    assert_code(&sb.host_sh("mkfifo .git/commondir"), 0);
    let (code, err) = jail_bounded(&sb, &[], "echo started", 60);
    assert_eq!(code, Some(0), "the start hung or failed: {err}");
    assert!(err.contains("commondir"), "{err}");
}

#[test]
fn a_symlinked_dotgit_is_found_as_git_finds_it() {
    let marker_of = |sb: &Sandbox| sb.project.join("MARKER");
    let attack = |m: &Path| {
        format!(
            "git init -q sub && git -C sub -c user.email=a@b -c user.name=a commit -q --allow-empty -m x \
             && mv sub/.git store && ln -s ../store sub/.git \
             && git -C sub config core.fsmonitor 'touch {}; false' && git add sub 2>/dev/null",
            m.display()
        )
    };
    let check = format!("{STATUS}; git -C sub status >/dev/null 2>&1");
    let sb = Sandbox::new("dotgit-link-host");
    repo(&sb);
    assert_code(&sb.host_sh(&attack(&marker_of(&sb))), 0);
    assert!(host_runs(&sb, &check, &marker_of(&sb)));

    let sb = Sandbox::new("dotgit-link");
    repo(&sb);
    let err = jail_ok(&sb, &[], &attack(&marker_of(&sb)));
    assert!(err.contains("store/config"), "{err}");
    assert!(!host_runs(&sb, &check, &marker_of(&sb)));
}

#[test]
fn a_dotgit_file_padded_past_4_kib_is_followed_like_git_does() {
    let sb = Sandbox::new("dotgit-big");
    repo(&sb);
    let marker = sb.project.join("MARKER");
    let attack = format!(
        "git init -q sub && git -C sub -c user.email=a@b -c user.name=a commit -q --allow-empty -m x \
         && mv sub/.git store && printf 'gitdir: ../store' > sub/.git \
         && head -c 8000 /dev/zero | tr '\\0' '\\n' >> sub/.git \
         && git -C sub config core.fsmonitor 'touch {}; false' && git add sub 2>/dev/null",
        marker.display()
    );
    let check = format!("{STATUS}; git -C sub status >/dev/null 2>&1");
    let err = jail_ok(&sb, &[], &attack);
    assert!(fs::metadata(sb.project.join("sub/.git")).unwrap().len() > 4096);
    assert!(err.contains("store/config"), "{err}");
    assert!(!host_runs(&sb, &check, &marker));
}

#[test]
fn a_gitdir_through_a_symlink_and_dotdot_is_resolved_physically() {
    let sb = Sandbox::new("gitdir-physical");
    repo(&sb);
    let marker = sb.project.join("MARKER");
    // Lexically sub/../link/../store is ./store (nothing there); the
    // kernel resolves link first: deep/er/store.
    let attack = format!(
        "mkdir -p deep/er/x && ln -s deep/er/x link \
         && git init -q sub && git -C sub -c user.email=a@b -c user.name=a commit -q --allow-empty -m x \
         && mv sub/.git deep/er/store && echo 'gitdir: ../link/../store' > sub/.git \
         && git -C sub config core.fsmonitor 'touch {}; false' && git add sub 2>/dev/null",
        marker.display()
    );
    let check = format!("{STATUS}; git -C sub status >/dev/null 2>&1");
    let err = jail_ok(&sb, &[], &attack);
    assert!(err.contains("deep/er/store/config"), "{err}");
    assert!(!host_runs(&sb, &check, &marker));
}

#[test]
fn a_repository_under_a_directory_that_cannot_be_listed_is_not_missed() {
    let sb = Sandbox::new("unlistable");
    repo(&sb);
    let marker = sb.project.join("MARKER");
    let attack = format!(
        "mkdir locked && {} && chmod 311 locked",
        plant_nested("locked/sub", &marker)
    );
    // Without the jail, the host's git status runs it.
    let host = Sandbox::new("unlistable-host");
    repo(&host);
    let hm = host.project.join("MARKER");
    assert_code(
        &host.host_sh(&format!(
            "mkdir locked && {} && chmod 311 locked",
            plant_nested("locked/sub", &hm)
        )),
        0,
    );
    assert!(host_runs(&host, STATUS, &hm));

    let err = jail_ok(&sb, &[], &attack);
    assert!(err.contains("moved") && err.contains("locked"), "{err}");
    assert!(!host_runs(&sb, STATUS, &marker));
}

#[test]
fn an_embedded_bare_repository_does_not_run_its_config_on_the_host() {
    let plant = |m: &Path| {
        format!(
            "mkdir -p src/objects src/refs && echo 'ref: refs/heads/main' > src/HEAD \
             && printf '[core]\\n\\trepositoryformatversion = 0\\n\\tbare = false\\n\\tworktree = ..\\n\\tfsmonitor = touch {}; false\\n' > src/config",
            m.display()
        )
    };
    let check = "cd src && git status >/dev/null 2>&1";
    let sb = Sandbox::new("bare-host");
    repo(&sb);
    let m = sb.project.join("MARKER");
    assert_code(&sb.host_sh(&plant(&m)), 0);
    assert!(host_runs(&sb, check, &m));

    let sb = Sandbox::new("bare");
    repo(&sb);
    let m = sb.project.join("MARKER");
    // After a pause: the guard has indexed the project, so the check at
    // exit reads only what changed (the other tests cover the full walk).
    let err = jail_ok(&sb, &[], &format!("sleep 0.5; {}", plant(&m)));
    assert!(err.contains("src/config"), "{err}");
    assert!(!host_runs(&sb, check, &m));

    // Under review, its config is not applied as an ordinary addition.
    let sb = Sandbox::new("bare-review");
    repo(&sb);
    let m = sb.project.join("MARKER");
    let o = sb.jail_sh(&["--review=apply"], &plant(&m));
    assert_code(&o, 0);
    assert!(!sb.project.join("src/config").exists(), "{}", stderr(&o));
    assert!(!host_runs(&sb, check, &m));
}

#[test]
fn a_hook_that_is_a_symlink_is_protected_at_its_target() {
    let sb = Sandbox::new("hook-link");
    repo(&sb);
    sb.write(
        sb.project.join("scripts/pre-commit.sh"),
        "#!/bin/sh\nexit 0\n",
    );
    fs::set_permissions(
        sb.project.join("scripts/pre-commit.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    assert_code(
        &sb.host_sh("ln -s ../../scripts/pre-commit.sh .git/hooks/pre-commit"),
        0,
    );
    let m = sb.project.join("MARKER");
    let attack = format!(
        "printf '#!/bin/sh\\ntouch {}\\n' > scripts/pre-commit.sh",
        m.display()
    );
    let o = sb.jail_sh(&[], &format!("{attack}; true"));
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    let commit = "git commit -q --allow-empty -m x >/dev/null 2>&1";
    assert!(!host_runs(&sb, commit, &m));
    // The same write on the host runs at the next commit.
    assert_code(&sb.host_sh(&attack), 0);
    assert!(host_runs(&sb, commit, &m));
}

#[test]
fn a_hooks_path_set_in_an_included_file_is_protected() {
    let sb = Sandbox::new("hookspath-include");
    repo(&sb);
    sb.write(
        sb.project.join("shared.gitconfig"),
        "[include]\n\tpath = hooks.gitconfig\n",
    );
    sb.write(
        sb.project.join("hooks.gitconfig"),
        "[core]\n\thooksPath = .githooks\n",
    );
    sb.mkdir(sb.project.join(".githooks"));
    assert_code(
        &sb.host_sh("git config include.path ../shared.gitconfig"),
        0,
    );
    let m = sb.project.join("MARKER");
    let attack = format!(
        "printf '#!/bin/sh\\ntouch {}\\n' > .githooks/pre-commit; chmod +x .githooks/pre-commit",
        m.display()
    );
    let o = sb.jail_sh(&[], &format!("{attack}; true"));
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    let commit = "git commit -q --allow-empty -m x >/dev/null 2>&1";
    assert!(!host_runs(&sb, commit, &m));
    assert_code(&sb.host_sh(&attack), 0);
    assert!(host_runs(&sb, commit, &m));
}

#[test]
fn a_relatively_included_gitconfig_is_never_moved() {
    let sb = Sandbox::new("include-relative");
    repo(&sb);
    sb.write(sb.project.join(".gitconfig"), "[user]\n\tname = team\n");
    assert_code(
        &sb.host_sh(
            "git add .gitconfig && git commit -qm cfg && git config include.path ../.gitconfig",
        ),
        0,
    );
    let o = sb.jail_sh(
        &[],
        "echo x > notes.txt; (echo evil >> .gitconfig) 2>&1; true",
    );
    assert_code(&o, 0);
    assert!(stdout(&o).contains("Read-only"), "{}", stdout(&o));
    assert!(!stderr(&o).contains("moved"), "{}", stderr(&o));
    assert_eq!(
        fs::read_to_string(sb.project.join(".gitconfig")).unwrap(),
        "[user]\n\tname = team\n"
    );
}

/// The pid of the guard of the jail whose launcher is `launcher`: the
/// launcher's child that is not in a new pid namespace (the jail's pid 1
/// has two NSpid entries).
fn guard_of(launcher: u32) -> Option<i32> {
    for e in fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(st) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |k: &str| {
            st.lines()
                .find(|l| l.starts_with(k))
                .map(|l| l[k.len()..].split_whitespace().count())
        };
        let ppid = st
            .lines()
            .find(|l| l.starts_with("PPid:"))
            .and_then(|l| l[5..].trim().parse::<u32>().ok());
        if ppid == Some(launcher) && field("NSpid:") == Some(1) {
            return Some(pid);
        }
    }
    None
}

#[test]
fn a_check_cut_short_is_finished_by_the_next_start_and_named_by_doctor() {
    let sb = Sandbox::new("cut-short");
    repo(&sb);
    let marker = sb.project.join("MARKER");
    let script = format!(
        "{} && touch planted && sleep 3",
        plant_nested("sub", &marker)
    );
    let mut child = sb
        .jail_cmd(&["--", "sh", "-c", &script])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !sb.project.join("planted").exists() {
        assert!(start.elapsed() < Duration::from_secs(30), "never planted");
        std::thread::sleep(Duration::from_millis(20));
    }
    let guard = guard_of(child.id()).expect("the guard runs");
    // The guard does not ignore SIGTERM (it did, and stayed forever when
    // its check hung); its record survives it.
    // SAFETY: SIGTERM to the guard this test started (as the test user).
    assert_eq!(unsafe { libc::kill(guard, libc::SIGTERM) }, 0);
    let st = child.wait().unwrap();
    assert!(st.success());
    assert!(
        sb.project.join("sub/.git/config").exists(),
        "nothing checked it"
    );
    // doctor's own line about exit checks (other lines name the project too).
    let exit_checks = |o: &std::process::Output| {
        stdout(o)
            .lines()
            .find(|l| l.trim_start().starts_with("exit checks"))
            .unwrap_or_default()
            .to_string()
    };
    let o = sb.jail(&["doctor"]);
    let line = exit_checks(&o);
    assert!(
        line.contains("degraded") && line.contains(&sb.project.display().to_string()),
        "{}",
        stdout(&o)
    );
    // The next start in the project finishes it before anything runs.
    let o = sb.jail(&["true"]);
    assert_code(&o, 0);
    assert!(stderr(&o).contains("did not finish"), "{}", stderr(&o));
    assert!(
        !sb.project.join("sub/.git/config").exists(),
        "{}",
        stderr(&o)
    );
    assert!(!host_runs(&sb, STATUS, &marker));
    let o = sb.jail(&["doctor"]);
    let line = exit_checks(&o);
    assert!(
        line.contains("every earlier exit check finished"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn doctor_suggests_explicit_bare_repositories() {
    let sb = Sandbox::new("doctor-bare");
    let o = sb.jail(&["doctor"]);
    assert!(
        stdout(&o).contains("git config --global safe.bareRepository explicit"),
        "{}",
        stdout(&o)
    );
    assert_code(
        &sb.host_sh("git config --global safe.bareRepository explicit"),
        0,
    );
    let o = sb.jail(&["doctor"]);
    let line = stdout(&o)
        .lines()
        .find(|l| l.contains("git bare repositories"))
        .map(String::from)
        .unwrap_or_default();
    assert!(line.contains("ok"), "{}", stdout(&o));
}

#[test]
fn git_init_clone_and_submodule_add_inside_keep_working_and_nothing_is_moved() {
    let sb = Sandbox::new("git-inside");
    repo(&sb);
    let o = sb.jail_sh(
        &[],
        "set -e; git init -q up && git -C up -c user.email=a@b -c user.name=a commit -q --allow-empty -m x \
         && git init -q --bare bare.git && git clone -q up cl && git clone -q --bare up cl.git \
         && git -c protocol.file.allow=always submodule add -q ./up sm \
         && git -C sm status >/dev/null && git -C cl status >/dev/null && echo all-ok",
    );
    assert_code(&o, 0);
    assert!(stdout(&o).contains("all-ok"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("moved"), "{}", stderr(&o));
    for kept in [
        "up/.git/config",
        "cl/.git/config",
        "bare.git/config",
        "cl.git/config",
    ] {
        assert!(sb.project.join(kept).exists(), "{kept}");
    }
    let st = sb
        .host_sh("git -C sm status --short && git -C cl log --oneline -1 && git submodule status");
    assert_code(&st, 0);
}

#[test]
fn a_hook_changed_through_a_hard_link_is_reported() {
    let sb = Sandbox::new("hook-hardlink");
    repo(&sb);
    sb.write(
        sb.project.join("scripts/pre-commit.sh"),
        "#!/bin/sh\nexit 0\n",
    );
    assert_code(
        &sb.host_sh(
            "chmod +x scripts/pre-commit.sh && ln scripts/pre-commit.sh .git/hooks/pre-commit",
        ),
        0,
    );
    std::thread::sleep(Duration::from_millis(1100));
    let o = sb.jail_sh(&[], "echo 'touch MARKER' >> scripts/pre-commit.sh");
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains(".git/hooks/pre-commit") && stderr(&o).contains("hard link"),
        "{}",
        stderr(&o)
    );
    // An untouched hard-linked hook is not reported (after the second of
    // margin the check allows for NFS clocks).
    std::thread::sleep(Duration::from_millis(1100));
    let o = sb.jail_sh(&[], "true");
    assert!(!stderr(&o).contains("hard link"), "{}", stderr(&o));
}

// ---- Attacks on the issue 20 fixes.

#[test]
fn a_bare_repository_with_objects_and_refs_as_files_is_found() {
    // git's is_git_directory asks only access(X_OK) of objects and refs:
    // executable files will do.
    let plant = |m: &Path| {
        format!(
            "mkdir -p src && echo 'ref: refs/heads/main' > src/HEAD \
             && touch src/objects src/refs && chmod +x src/objects src/refs \
             && printf '[core]\\n\\trepositoryformatversion = 0\\n\\tbare = false\\n\\tworktree = ..\\n\\tfsmonitor = touch {}; false\\n' > src/config",
            m.display()
        )
    };
    let check = "cd src && git status >/dev/null 2>&1";
    let sb = Sandbox::new("bare-files-host");
    repo(&sb);
    let m = sb.project.join("MARKER");
    assert_code(&sb.host_sh(&plant(&m)), 0);
    assert!(host_runs(&sb, check, &m));

    let sb = Sandbox::new("bare-files");
    repo(&sb);
    let m = sb.project.join("MARKER");
    let err = jail_ok(&sb, &[], &plant(&m));
    assert!(err.contains("src/config"), "{err}");
    assert!(!host_runs(&sb, check, &m));

    let sb = Sandbox::new("bare-files-review");
    repo(&sb);
    let m = sb.project.join("MARKER");
    let o = sb.jail_sh(&["--review=apply"], &plant(&m));
    assert_code(&o, 0);
    assert!(!sb.project.join("src/config").exists(), "{}", stderr(&o));
    assert!(!host_runs(&sb, check, &m));
}

#[test]
fn a_bare_repository_whose_commondir_names_its_objects_is_found() {
    // `src` has only HEAD and commondir; `store` (no HEAD) has objects,
    // refs and the config git reads for `src`. `git log` in `src`, in a
    // terminal, runs its pager.
    let plant = |m: &Path| {
        format!(
            "git clone -q --bare . store && rm store/HEAD \
             && mkdir -p src && echo 'ref: refs/heads/main' > src/HEAD && echo ../store > src/commondir \
             && git config -f store/config core.pager 'touch {}; cat'",
            m.display()
        )
    };
    let check = "cd src && script -qec 'git log' /dev/null >/dev/null 2>&1";
    let sb = Sandbox::new("bare-common-host");
    repo(&sb);
    let m = sb.project.join("MARKER");
    assert_code(&sb.host_sh(&plant(&m)), 0);
    assert!(host_runs(&sb, check, &m));

    let sb = Sandbox::new("bare-common");
    repo(&sb);
    let m = sb.project.join("MARKER");
    let err = jail_ok(&sb, &[], &plant(&m));
    assert!(err.contains("moved"), "{err}");
    assert!(!host_runs(&sb, check, &m));

    let sb = Sandbox::new("bare-common-review");
    repo(&sb);
    let m = sb.project.join("MARKER");
    let o = sb.jail_sh(&["--review=apply"], &plant(&m));
    assert_code(&o, 0);
    assert!(!host_runs(&sb, check, &m), "{}", stderr(&o));
}

#[test]
fn a_hook_linked_into_a_directory_missing_at_start_is_protected() {
    // `.git/hooks/pre-commit -> ../../tools/hooks/pre-commit`, and no
    // `tools/` yet (generated, or removed): the program makes it.
    let attack = |m: &Path| {
        format!(
            "mkdir -p tools/hooks && printf '#!/bin/sh\\ntouch {}\\n' > tools/hooks/pre-commit \
             && chmod +x tools/hooks/pre-commit",
            m.display()
        )
    };
    let commit = "git commit -q --allow-empty -m x >/dev/null 2>&1";
    let setup = "ln -s ../../tools/hooks/pre-commit .git/hooks/pre-commit";
    let sb = Sandbox::new("hook-link-missing-host");
    repo(&sb);
    assert_code(&sb.host_sh(setup), 0);
    let m = sb.project.join("MARKER");
    assert_code(&sb.host_sh(&attack(&m)), 0);
    assert!(host_runs(&sb, commit, &m));

    let sb = Sandbox::new("hook-link-missing");
    repo(&sb);
    assert_code(&sb.host_sh(setup), 0);
    let m = sb.project.join("MARKER");
    let err = jail_ok(&sb, &[], &attack(&m));
    assert!(err.contains("tools/hooks/pre-commit"), "{err}");
    assert!(!host_runs(&sb, commit, &m));
}

/// A git repository in the sandbox's project, as `repo`, then a pause so
/// that what the host made is older than the jail's start (the guard
/// allows a second of clock margin).
fn repo_settled(sb: &Sandbox, more: &str) {
    repo(sb);
    if !more.is_empty() {
        assert_code(&sb.host_sh(more), 0);
    }
    std::thread::sleep(Duration::from_millis(1200));
}

#[test]
fn a_nested_repositorys_hook_paths_and_includes_are_checked() {
    // A repository the project held before the jail (a workspace of
    // clones, a vendored checkout), with a hooks path and an included
    // config in its work tree: neither is its git directory.
    let setup = "git init -q lib && git -C lib config user.email t@t && git -C lib config user.name t \
                 && git -C lib config core.hooksPath .githooks && mkdir lib/.githooks \
                 && git -C lib config include.path ../team.gitconfig && echo '[user]' > lib/team.gitconfig \
                 && mkdir lib/scripts && echo '#!/bin/sh' > lib/scripts/post-commit && chmod +x lib/scripts/post-commit \
                 && ln -s ../scripts/post-commit lib/.githooks/post-commit";
    let attack = |m: &Path| {
        format!(
            "printf '#!/bin/sh\\ntouch {m}.hook\\n' > lib/.githooks/pre-commit && chmod +x lib/.githooks/pre-commit \
             && printf '[core]\\n\\tfsmonitor = touch {m}.include; false\\n' >> lib/team.gitconfig \
             && echo 'touch {m}.link' >> lib/scripts/post-commit",
            m = m.display()
        )
    };
    let runs = |sb: &Sandbox, m: &Path| {
        let _ = sb.host_sh("git -C lib commit -q --allow-empty -m x >/dev/null 2>&1");
        ["hook", "include", "link"]
            .into_iter()
            .filter(|k| m.with_extension(k).exists())
            .collect::<Vec<_>>()
    };
    let sb = Sandbox::new("nested-paths-host");
    repo_settled(&sb, setup);
    let m = sb.project.join("MARKER");
    assert_code(&sb.host_sh(&attack(&m)), 0);
    assert_eq!(runs(&sb, &m), ["hook", "include", "link"]);

    let sb = Sandbox::new("nested-paths");
    repo_settled(&sb, setup);
    let m = sb.project.join("MARKER");
    let err = jail_ok(&sb, &[], &attack(&m));
    assert!(err.contains("moved"), "{err}");
    assert_eq!(runs(&sb, &m), Vec::<&str>::new(), "{err}");
    // The nested repository's own config was not touched: still there.
    assert!(sb.project.join("lib/.git/config").exists(), "{err}");
}

#[test]
fn a_hooks_directory_moved_into_a_new_repository_brings_no_hook() {
    // The files keep their change time when their directory is renamed:
    // an old executable named like a hook (a project's own hook scripts,
    // or a cloned repository's) becomes a hook.
    let setup = "mkdir fixture && printf '#!/bin/sh\\ntouch MARKER\\n' > fixture/pre-commit \
                 && chmod +x fixture/pre-commit";
    let attack =
        "git init -q sub && git -C sub config user.email a@b && git -C sub config user.name a \
                  && rm -rf sub/.git/hooks && mv fixture sub/.git/hooks";
    let commit = "git -C sub commit -q --allow-empty -m x >/dev/null 2>&1";
    let sb = Sandbox::new("hooks-moved-host");
    repo_settled(&sb, setup);
    assert_code(&sb.host_sh(attack), 0);
    assert!(host_runs(&sb, commit, &sb.project.join("sub/MARKER")));

    let sb = Sandbox::new("hooks-moved");
    repo_settled(&sb, setup);
    let err = jail_ok(&sb, &[], attack);
    assert!(err.contains("sub/.git/hooks"), "{err}");
    assert!(!host_runs(&sb, commit, &sb.project.join("sub/MARKER")));
}

#[test]
fn a_git_directory_moved_into_place_brings_no_config() {
    // Inert files of the project (no HEAD: git never uses them) keep
    // their change time when their directory is renamed to `sub/.git`.
    let setup = "mkdir -p fixture/objects fixture/refs \
                 && printf '[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = touch MARKER; false\\n' > fixture/config";
    let attack = "mkdir sub && mv fixture sub/.git && echo 'ref: refs/heads/main' > sub/.git/HEAD";
    let status = "git -C sub status >/dev/null 2>&1";
    let sb = Sandbox::new("gitdir-moved-host");
    repo_settled(&sb, setup);
    assert_code(&sb.host_sh(attack), 0);
    assert!(host_runs(&sb, status, &sb.project.join("sub/MARKER")));

    let sb = Sandbox::new("gitdir-moved");
    repo_settled(&sb, setup);
    let err = jail_ok(&sb, &[], attack);
    assert!(err.contains("sub/.git/config"), "{err}");
    assert!(!host_runs(&sb, status, &sb.project.join("sub/MARKER")));
    // A repository that was there before, used inside (a commit, a new
    // file at its top), keeps its own config, whatever it holds.
    let sb = Sandbox::new("gitdir-kept");
    repo_settled(
        &sb,
        "git init -q lib && git -C lib config commit.gpgsign false && git -C lib config user.email a@b \
         && git -C lib config user.name a",
    );
    let err = jail_ok(
        &sb,
        &[],
        "sleep 0.5; echo x > lib/new && git -C lib add new && git -C lib commit -qm x",
    );
    assert!(!err.contains("moved"), "{err}");
    assert!(sb.project.join("lib/.git/config").exists());
}

#[test]
fn review_never_applies_a_nested_repositorys_hook_path() {
    let sb = Sandbox::new("review-nested-hooks");
    repo_settled(
        &sb,
        "git init -q lib && git -C lib config user.email t@t && git -C lib config user.name t \
         && git -C lib config core.hooksPath .githooks && mkdir lib/.githooks",
    );
    let m = sb.project.join("MARKER");
    let o = sb.jail_sh(
        &["--review=apply"],
        &format!(
            "printf '#!/bin/sh\\ntouch {}\\n' > lib/.githooks/pre-commit && chmod +x lib/.githooks/pre-commit \
             && echo ok > lib/notes.txt",
            m.display()
        ),
    );
    assert_code(&o, 0);
    // The ordinary file is applied, the hook is not.
    assert!(sb.project.join("lib/notes.txt").exists(), "{}", stderr(&o));
    assert!(
        !sb.project.join("lib/.githooks/pre-commit").exists(),
        "{}",
        stderr(&o)
    );
    assert!(!host_runs(
        &sb,
        "git -C lib commit -q --allow-empty -m x >/dev/null 2>&1",
        &m
    ));
}

#[test]
fn many_git_directories_do_not_outlast_the_exit_check() {
    // Tens of thousands of empty `.git` directories (seconds to make)
    // must not push the check past the launcher's wait: the planted
    // repository beside them would then stay until the next start.
    let sb = Sandbox::new("many-gitdirs");
    repo_settled(&sb, "");
    let marker = sb.project.join("MARKER");
    let attack = format!(
        "mkdir many && cd many && seq 1 30000 | sed 's,$,/.git,' | xargs mkdir -p && cd .. && {}",
        plant_nested("sub", &marker)
    );
    let start = Instant::now();
    let (code, err) = jail_bounded(&sb, &[], &attack, 300);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("did not finish"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    assert!(err.contains("sub/.git/config"), "{err}");
    assert!(!host_runs(&sb, STATUS, &marker));
}

#[test]
fn a_rebase_left_with_exec_lines_runs_nothing_on_the_host() {
    // An interactive rebase stopped at a `break`, with an `exec` line
    // after the picks: `git status` on the host shows only the next two
    // commands, and `git rebase --continue` runs the rest.
    let attack = |m: &Path| {
        format!(
            "printf 'break\\npick %s two\\nexec touch {}\\n' $(git rev-parse HEAD) > .git/todo \
             && GIT_SEQUENCE_EDITOR=\"cp $PWD/.git/todo\" git rebase -q -i HEAD~1; rm -f .git/todo",
            m.display()
        )
    };
    let setup = "echo 2 > b && git add b && git commit -qm two";
    let cont = "git rebase --continue >/dev/null 2>&1";
    let sb = Sandbox::new("rebase-exec-host");
    repo_settled(&sb, setup);
    let m = sb.project.join("MARKER");
    let _ = sb.host_sh(&attack(&m));
    assert!(host_runs(&sb, cont, &m));

    let sb = Sandbox::new("rebase-exec");
    repo_settled(&sb, setup);
    let m = sb.project.join("MARKER");
    let err = stderr(&sb.jail_sh(&[], &attack(&m)));
    assert!(err.contains("git-rebase-todo"), "{err}");
    assert!(!host_runs(&sb, cont, &m));
    // The rebase can still be given up.
    assert_code(&sb.host_sh("git rebase --abort"), 0);
    // Under review, the list is not applied as an ordinary file.
    let sb = Sandbox::new("rebase-exec-review");
    repo_settled(&sb, setup);
    let m = sb.project.join("MARKER");
    let o = sb.jail_sh(&["--review=apply"], &attack(&m));
    assert!(!host_runs(&sb, cont, &m), "{}", stderr(&o));
}

#[test]
fn a_rebase_left_with_a_merge_strategy_path_runs_nothing_on_the_host() {
    // No exec line: the strategy file names `../x`, and git runs
    // `git-merge-../x` (a path, relative to the work tree) for the next
    // pick that is not a fast-forward.
    let attack = |m: &Path| {
        format!(
            "printf 'break\\npick %s three\\npick %s two\\n' $(git rev-parse HEAD HEAD~1) > .git/todo \
             && GIT_SEQUENCE_EDITOR=\"cp $PWD/.git/todo\" git rebase -q -i HEAD~2; rm -f .git/todo; \
             mkdir -p git-merge-.. && printf '#!/bin/sh\\ntouch {}\\nexit 1\\n' > git-merge-../x \
             && chmod +x git-merge-../x && echo ../x > .git/rebase-merge/strategy",
            m.display()
        )
    };
    let setup = "echo 2 > b && git add b && git commit -qm two && echo 3 > c && git add c && git commit -qm three";
    let cont = "git rebase --continue >/dev/null 2>&1";
    let sb = Sandbox::new("rebase-strategy-host");
    repo_settled(&sb, setup);
    let m = sb.project.join("MARKER");
    let _ = sb.host_sh(&attack(&m));
    assert!(host_runs(&sb, cont, &m));

    let sb = Sandbox::new("rebase-strategy");
    repo_settled(&sb, setup);
    let m = sb.project.join("MARKER");
    let err = stderr(&sb.jail_sh(&[], &attack(&m)));
    assert!(err.contains("rebase-merge/strategy"), "{err}");
    assert!(!host_runs(&sb, cont, &m));
    let sb = Sandbox::new("rebase-strategy-review");
    repo_settled(&sb, setup);
    let m = sb.project.join("MARKER");
    let o = sb.jail_sh(&["--review=apply"], &attack(&m));
    assert!(!host_runs(&sb, cont, &m), "{}", stderr(&o));
}

#[test]
fn a_template_directory_named_by_the_users_git_config_is_protected() {
    // `init.templateDir` (a dotfiles repository's template): every later
    // `git clone` on the host copies its hooks, and runs post-checkout.
    let sb = Sandbox::new("template-dir");
    repo(&sb);
    sb.mkdir(sb.project.join("tmpl/hooks"));
    assert_code(
        &sb.host_sh(&format!(
            "git config --global init.templateDir {}/tmpl",
            sb.project.display()
        )),
        0,
    );
    let m = sb.project.join("MARKER");
    let attack = format!(
        "printf '#!/bin/sh\\ntouch {}\\n' > tmpl/hooks/post-checkout && chmod +x tmpl/hooks/post-checkout",
        m.display()
    );
    let clone = format!(
        "rm -rf {c} && git clone -q . {c} >/dev/null 2>&1",
        c = sb.root.join("clone").display()
    );
    let o = sb.jail_sh(&[], &format!("{attack}; true"));
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    assert!(!host_runs(&sb, &clone, &m));
    // The same write on the host runs at the next clone.
    assert_code(&sb.host_sh(&attack), 0);
    assert!(host_runs(&sb, &clone, &m));
}

#[test]
fn a_program_the_repository_config_runs_from_the_project_is_protected() {
    // The repository's own config (read-only inside) runs a file of the
    // work tree: `core.fsmonitor = tools/watch.sh`, a filter's `./clean`.
    let sb = Sandbox::new("config-command-path");
    repo(&sb);
    sb.write(sb.project.join("tools/watch.sh"), "#!/bin/sh\nexit 1\n");
    sb.write(sb.project.join("tools/clean"), "#!/bin/sh\ncat\n");
    sb.write(sb.project.join(".gitattributes"), "*.txt filter=x\n");
    assert_code(
        &sb.host_sh(
            "chmod +x tools/watch.sh tools/clean && git config core.fsmonitor tools/watch.sh \
             && git config filter.x.clean './tools/clean --quiet'",
        ),
        0,
    );
    let m = sb.project.join("MARKER");
    let attack = format!(
        "printf '#!/bin/sh\\ntouch {m}.fsmonitor\\nexit 1\\n' > tools/watch.sh; \
         printf '#!/bin/sh\\ntouch {m}.filter\\ncat\\n' > tools/clean; true",
        m = m.display()
    );
    let runs = |sb: &Sandbox| {
        let _ = fs::remove_file(m.with_extension("fsmonitor"));
        let _ = fs::remove_file(m.with_extension("filter"));
        let _ = sb.host_sh("echo x > a.txt && git add a.txt && git status >/dev/null 2>&1");
        ["fsmonitor", "filter"]
            .into_iter()
            .filter(|k| m.with_extension(k).exists())
            .collect::<Vec<_>>()
    };
    let o = sb.jail_sh(&[], &attack);
    assert_eq!(runs(&sb), Vec::<&str>::new(), "{}", stderr(&o));
    // The same writes on the host run.
    assert_code(&sb.host_sh(&attack), 0);
    assert_eq!(runs(&sb), ["fsmonitor", "filter"]);
}

#[test]
fn a_fifo_where_git_reads_its_state_does_not_hang_the_hosts_git() {
    // Not a control file: HEAD, the index, packed-refs, a loose ref.
    for (name, plant) in [
        ("head", "rm .git/HEAD && mkfifo .git/HEAD"),
        ("index", "rm .git/index && mkfifo .git/index"),
        ("packed", "mkfifo .git/packed-refs"),
        (
            "ref",
            "rm .git/refs/heads/main && mkfifo .git/refs/heads/main",
        ),
        // No info/ at start (nothing to hold): made inside.
        ("exclude", "mkdir .git/info && mkfifo .git/info/exclude"),
        ("alternates", "mkfifo .git/objects/info/alternates"),
    ] {
        let sb = Sandbox::new(&format!("fifo-state-{name}"));
        repo_settled(&sb, "rm -rf .git/info");
        let (code, err) = jail_bounded(&sb, &[], plant, 60);
        assert_eq!(code, Some(0), "{name}: {err}");
        let o = sb.host_sh("timeout 10 git status >/dev/null 2>&1; echo $?");
        assert_ne!(
            stdout(&o).trim(),
            "124",
            "{name}: the host's git hung: {err}"
        );
    }
}

#[test]
fn a_dotgit_naming_the_project_moves_none_of_its_files() {
    // `sub/.git -> ..` makes the project root a "git directory" for the
    // check: its `config/`, `hooks/` and `info/` source directories are
    // no git control files, and a check that moved their files would
    // hand the program a way to take the user's files away.
    let sb = Sandbox::new("dotgit-project");
    repo_settled(
        &sb,
        "mkdir -p config hooks info && echo db > config/database.yml && echo h > hooks/useThing.js \
         && echo i > info/about.txt && git add . && git commit -qm src",
    );
    let err = jail_ok(
        &sb,
        &[],
        "echo changed >> config/database.yml && mkdir sub && ln -s .. sub/.git",
    );
    for f in ["config/database.yml", "hooks/useThing.js", "info/about.txt"] {
        assert!(sb.project.join(f).exists(), "{f}: {err}");
    }
}

#[test]
fn a_dotgit_through_proc_self_cwd_is_not_judged_where_the_guard_stands() {
    // `/proc/self/cwd/x/.git/evil` is `x/.git/evil` below wherever the
    // resolving process runs: for the check, a harmless repository at
    // the project root; for the host's git (run in `sub` for the
    // gitlink), `sub/x/.git/evil`, inside a `.git` the walk skips.
    let sb = Sandbox::new("proc-cwd");
    repo_settled(&sb, "");
    let m = sb.project.join("MARKER");
    let attack = format!(
        "git init -q sub && git -C sub -c user.email=a@b -c user.name=a commit -q --allow-empty -m x \
         && git add sub 2>/dev/null && git init -q --bare x/.git/evil && mkdir -p sub/x/.git \
         && mv sub/.git sub/x/.git/evil && git -C sub/x/.git/evil config core.bare false \
         && git -C sub/x/.git/evil config core.fsmonitor 'touch {}; false' \
         && ln -s /proc/self/cwd/x/.git/evil sub/.git",
        m.display()
    );
    let err = jail_ok(&sb, &[], &attack);
    assert!(err.contains("sub/.git"), "{err}");
    assert!(!host_runs(&sb, STATUS, &m));
}

#[test]
fn a_repository_planted_on_a_filesystem_mounted_in_the_project_is_found() {
    // A build tmpfs or data disk mounted below the project is writable
    // inside the jail like the rest of it.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip(
            Lack::Setup,
            "mounting a filesystem in the project needs root",
        );
        return;
    }
    let sb = Sandbox::new("submount");
    repo(&sb);
    let build = sb.project.join("build");
    sb.mkdir(&build);
    let u = user();
    let o = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o"])
        .arg(format!("mode=755,uid={},gid={}", u.uid, u.gid))
        .arg("tmpfs")
        .arg(&build)
        .output()
        .unwrap();
    assert_code(&o, 0);
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(build.clone());
    // Older than the run, as a mount made at boot.
    std::thread::sleep(Duration::from_millis(1200));
    let m = sb.project.join("MARKER");
    let err = jail_ok(&sb, &[], &plant_nested("build/sub", &m));
    assert!(err.contains("build/sub/.git/config"), "{err}");
    assert!(!host_runs(&sb, STATUS, &m));
}
