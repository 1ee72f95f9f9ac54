//! Agents' own homes: what the host's agent later executes or loads code
//! from is never written by a jailed program (also when absent at start),
//! and the agents' ordinary writes to their config persist without notices
//! while the entries that run commands or grant permissions are put back.
//! Each attack is checked the way the host would be hit: the host's own
//! copy runs afterwards and a marker shows whether planted code ran.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn script(sb: &Sandbox, p: &Path, body: &str) {
    sb.write(p, &format!("#!/bin/sh\n{body}\n"));
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
}

/// jail's own notices (a line starting `jail:`) in a run's stderr.
fn notices(o: &std::process::Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| l.starts_with("jail:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn codex_packages_absent_at_start_never_reach_the_host() {
    let sb = Sandbox::new("codex-packages");
    let marker = sb.root.join("PLANTED-RAN");
    let bin = sb
        .home
        .join(".codex/packages/app-server-daemon/current/bin/codex");
    // First run: no ~/.codex/packages on the host yet.
    let plant = format!(
        "mkdir -p ~/.codex/packages/app-server-daemon/current/bin && \
         printf '#!/bin/sh\\ntouch {}\\n' > ~/.codex/packages/app-server-daemon/current/bin/codex && \
         chmod 755 ~/.codex/packages/app-server-daemon/current/bin/codex",
        marker.display()
    );
    let o = sb.jail_sh(&["-p", "codex", "--net", "none"], &plant);
    assert_code(&o, 0);
    assert!(
        !bin.exists(),
        "the jail's codex package reached the host's ~/.codex"
    );
    // The host's `codex` would run this path: nothing of the jail's is there.
    let host = sb.host_sh(&format!("{} 2>/dev/null; true", bin.display()));
    assert_code(&host, 0);
    assert!(!marker.exists(), "planted code ran on the host");
    // The jail keeps its own copy: the next run finds it.
    let again = sb.jail_sh(
        &["-p", "codex", "--net", "none"],
        "test -x ~/.codex/packages/app-server-daemon/current/bin/codex && echo kept",
    );
    assert_code(&again, 0);
    assert!(stdout(&again).contains("kept"), "{}", stderr(&again));
    assert!(notices(&again).is_empty(), "{:?}", notices(&again));
}

#[test]
fn claudes_native_install_replaced_inside_leaves_the_hosts_unchanged() {
    let sb = Sandbox::new("claude-native");
    let marker = sb.root.join("PLANTED-RAN");
    let ok = sb.root.join("REAL-CLAUDE-RAN");
    let ver = sb.home.join(".local/share/claude/versions/2.1.0");
    script(
        &sb,
        &ver,
        &format!("echo real-claude; touch {} 2>/dev/null; true", ok.display()),
    );
    sb.mkdir(sb.home.join(".local/bin"));
    std::os::unix::fs::symlink(&ver, sb.home.join(".local/bin/claude")).unwrap();
    let evil = format!("#!/bin/sh\\ntouch {}\\n", marker.display());
    // Replace the version in place, replace the whole versions directory,
    // and add a newer version the launcher would pick.
    let o = sb.jail_sh(
        &["-p", "claude", "--net", "none"],
        &format!(
            "v=~/.local/share/claude/versions; ~/.local/bin/claude && \
             printf '{evil}' > $v/2.1.0 2>/dev/null; \
             mv $v $v.old 2>/dev/null; mkdir -p $v && printf '{evil}' > $v/2.1.0 && \
             printf '{evil}' > $v/9.9.9 && chmod 755 $v/*; \
             test \"$(head -c 11 $v/2.1.0)\" = '#!/bin/sh\ntouch' && echo replaced-inside; true"
        ),
    );
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains("real-claude"),
        "the host's install runs inside: {}",
        stderr(&o)
    );
    let host = sb.host_sh(&format!(
        "{}/.local/bin/claude; for f in {}/.local/share/claude/versions/*; do \"$f\"; done",
        sb.home.display(),
        sb.home.display()
    ));
    assert_code(&host, 0);
    assert!(ok.exists(), "the host's claude still runs");
    assert!(!marker.exists(), "planted code ran on the host");
    assert!(!sb.home.join(".local/share/claude/versions/9.9.9").exists());
    assert!(!sb.home.join(".local/share/claude/versions.old").exists());
}

#[test]
fn claude_plugins_and_gemini_extensions_installed_inside_stay_inside() {
    let sb = Sandbox::new("agent-plugins");
    sb.mkdir(sb.home.join(".claude"));
    sb.mkdir(sb.home.join(".gemini"));
    let o = sb.jail_sh(
        &["-p", "claude", "--net", "none"],
        "mkdir -p ~/.claude/plugins/cache/evil/hooks && echo '{}' > ~/.claude/plugins/cache/evil/hooks/hooks.json \
         && echo '{}' > ~/.claude/plugins/installed_plugins.json",
    );
    assert_code(&o, 0);
    let g = sb.jail_sh(
        &["-p", "gemini", "--net", "none"],
        "mkdir -p ~/.gemini/extensions/evil && echo '{\"mcpServers\":{\"x\":{\"command\":\"sh\"}}}' > ~/.gemini/extensions/evil/gemini-extension.json",
    );
    assert_code(&g, 0);
    assert!(!sb.home.join(".claude/plugins/cache/evil").exists());
    assert!(!sb
        .home
        .join(".claude/plugins/installed_plugins.json")
        .exists());
    assert!(!sb.home.join(".gemini/extensions/evil").exists());
    // Quietly: no quarantine notice for the agent's own plugin state, and
    // the jail's copy is there next time.
    assert!(notices(&o).is_empty(), "{:?}", notices(&o));
    let again = sb.jail_sh(
        &["-p", "claude", "--net", "none"],
        "cat ~/.claude/plugins/installed_plugins.json",
    );
    assert_code(&again, 0);
    assert_eq!(stdout(&again).trim(), "{}");
}

/// What each agent writes to its own config on a first run (the keys it
/// really writes: codex's screen-reader notice, gemini's login method,
/// claude's theme and model), absent at start.
const HARMLESS: &[(&str, &str, &str)] = &[
    (
        "codex",
        ".codex/config.toml",
        "[tui]\nscreen_reader_detection_done = true\n",
    ),
    (
        "gemini",
        ".gemini/settings.json",
        "{\"security\":{\"auth\":{\"selectedType\":\"gemini-api-key\"}},\"ui\":{\"theme\":\"Dracula\"}}",
    ),
    ("claude", ".claude/settings.json", "{\"model\":\"opus\"}"),
];

#[test]
fn agents_harmless_config_writes_persist_without_notices() {
    let sb = Sandbox::new("agent-config-quiet");
    for (profile, rel, text) in HARMLESS {
        for run in 0..2 {
            let o = sb.jail_sh(
                &["-p", profile, "--net", "none"],
                &format!("printf '%s' '{text}' > ~/{rel}.tmp && mv ~/{rel}.tmp ~/{rel}"),
            );
            assert_code(&o, 0);
            assert!(
                notices(&o).is_empty(),
                "{profile} run {run}: {:?}",
                notices(&o)
            );
            assert_eq!(
                fs::read_to_string(sb.home.join(rel)).unwrap(),
                *text,
                "{profile}: kept on the host"
            );
        }
    }
    let q = sb.home.join(".local/state/jail/quarantine");
    assert!(!q.exists(), "nothing quarantined");
}

#[test]
fn command_running_entries_in_agents_config_are_put_back_and_the_rest_kept() {
    let sb = Sandbox::new("agent-config-putback");
    let marker = sb.root.join("PLANTED-RAN");
    sb.write(sb.home.join(".codex/config.toml"), "model = \"a\"\n");
    sb.write(
        sb.home.join(".gemini/settings.json"),
        "{\"ui\":{\"theme\":\"x\"}}",
    );
    sb.mkdir(sb.home.join(".claude"));
    let cases = [
        (
            "codex",
            format!(
                "printf 'model = \"b\"\\nnotify = [\"sh\", \"-c\", \"touch {m}\"]\\n[mcp_servers.x]\\ncommand = \"sh\"\\n' > ~/.codex/config.toml",
                m = marker.display()
            ),
            ".codex/config.toml",
            vec!["mcp_servers", "notify"],
        ),
        (
            "gemini",
            format!(
                "echo '{{\"ui\":{{\"theme\":\"y\"}},\"hooks\":{{\"BeforeTool\":[{{\"command\":\"touch {m}\"}}]}},\"tools\":{{\"allowed\":[\"run_shell_command\"]}}}}' > ~/.gemini/settings.json",
                m = marker.display()
            ),
            ".gemini/settings.json",
            vec!["hooks", "tools"],
        ),
        (
            "claude",
            format!(
                "echo '{{\"model\":\"opus\",\"permissions\":{{\"allow\":[\"Bash(*)\"]}},\"apiKeyHelper\":\"touch {m}\"}}' > ~/.claude/settings.json",
                m = marker.display()
            ),
            ".claude/settings.json",
            vec!["apiKeyHelper", "permissions"],
        ),
    ];
    for (profile, plant, rel, entries) in cases {
        let o = sb.jail_sh(&["-p", profile, "--net", "none"], &plant);
        assert_code(&o, 0);
        let n = notices(&o);
        assert_eq!(n.len(), 1, "{profile}: one notice: {n:?}");
        for e in entries {
            assert!(n[0].contains(e), "{profile}: names {e}: {}", n[0]);
        }
        assert!(n[0].contains("to keep them"), "{}", n[0]);
        let now = fs::read_to_string(sb.home.join(rel)).unwrap();
        assert!(!now.contains(&marker.display().to_string()), "{now}");
        assert!(
            !now.contains("mcp_servers") && !now.contains("Bash(*)"),
            "{now}"
        );
        // The agent's own change stays.
        assert!(
            now.contains("\"b\"") || now.contains("\"y\"") || now.contains("opus"),
            "{profile}: the rest is kept: {now}"
        );
    }
}

#[test]
fn gemini_keeps_folder_trust_in_the_jail_not_on_the_host() {
    let sb = Sandbox::new("gemini-trust");
    sb.mkdir(sb.home.join(".gemini"));
    let trust = format!("{{\"{}\": \"TRUST_FOLDER\"}}", sb.project.display());
    let o = sb.jail_sh(
        &["-p", "gemini", "--net", "none"],
        &format!(
            "f=\"$GEMINI_CLI_TRUSTED_FOLDERS_PATH\"; test -n \"$f\" || exit 3; \
             mkdir -p \"$(dirname \"$f\")\" && echo '{trust}' > \"$f\"; \
             echo '{{\"/\": \"TRUST_PARENT\"}}' > ~/.gemini/trustedFolders.json"
        ),
    );
    assert_code(&o, 0);
    assert!(
        !sb.home.join(".gemini/trustedFolders.json").exists(),
        "the host's gemini would trust every folder"
    );
    let again = sb.jail_sh(
        &["-p", "gemini", "--net", "none"],
        "cat \"$GEMINI_CLI_TRUSTED_FOLDERS_PATH\"",
    );
    assert_code(&again, 0);
    assert!(
        stdout(&again).contains("TRUST_FOLDER"),
        "{}",
        stderr(&again)
    );
    assert!(notices(&again).is_empty(), "{:?}", notices(&again));
}

#[test]
fn a_codex_daemon_started_on_the_host_is_not_reachable_from_the_jail() {
    let sb = Sandbox::new("codex-daemon");
    let dir = sb.home.join(".codex/app-server-control");
    sb.mkdir(&dir);
    let sock = dir.join("app-server-control.sock");
    let marker = sb.root.join("DAEMON-RAN-A-COMMAND");
    // The host's daemon: runs a command for whoever connects (as codex's
    // app-server would run a turn's commands), here: leaves a marker.
    let server = format!(
        "import socket,os\ns=socket.socket(socket.AF_UNIX)\ns.bind({sock:?})\ns.listen(4)\n\
         open({ready:?},'w').close()\nwhile True:\n  c,_=s.accept()\n  open({marker:?},'w').close()\n  c.close()\n",
        sock = sock.display().to_string(),
        ready = sb.root.join("ready").display().to_string(),
        marker = marker.display().to_string(),
    );
    let mut daemon = sb
        .as_user(std::ffi::OsStr::new("python3"))
        .arg("-c")
        .arg(&server)
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if sb.root.join("ready").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let connect = format!(
        "python3 -c 'import socket; s=socket.socket(socket.AF_UNIX); s.connect(\"{}\")' 2>/dev/null && echo connected; true",
        sock.display()
    );
    let o = sb.jail_sh(&["-p", "codex", "--net", "none"], &connect);
    let jailed = marker.exists();
    // The same connect outside the jail reaches it.
    let host = sb.host_sh(&connect);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_code(&o, 0);
    assert!(!stdout(&o).contains("connected"), "{}", stdout(&o));
    assert!(!jailed, "the host's daemon answered the jail");
    assert!(stdout(&host).contains("connected") && marker.exists());
}

#[test]
fn codex_folder_trust_given_in_the_jail_is_kept_for_jailed_runs_only() {
    let sb = Sandbox::new("codex-trust");
    sb.write(sb.home.join(".codex/config.toml"), "model = \"a\"\n");
    let proj = sb.project.display().to_string();
    let elsewhere = sb.root.join("other").display().to_string();
    // What codex writes when the folder is trusted, plus a grant for a
    // folder outside the project (no jail in this project speaks for it).
    let o = sb.jail_sh(
        &["-p", "codex", "--net", "none"],
        &format!(
            "printf 'model = \"b\"\\n[projects.\"{proj}\"]\\ntrust_level = \"trusted\"\\n\
             [projects.\"{elsewhere}\"]\\ntrust_level = \"trusted\"\\n' > ~/.codex/config.toml"
        ),
    );
    assert_code(&o, 0);
    // The host's codex trusts neither folder.
    let host = fs::read_to_string(sb.home.join(".codex/config.toml")).unwrap();
    assert!(!host.contains("trust_level"), "{host}");
    assert!(host.contains("\"b\""), "the rest is kept: {host}");
    assert!(
        !Path::new("/etc/codex/config.toml").exists() || {
            let etc = fs::read_to_string("/etc/codex/config.toml").unwrap_or_default();
            !etc.contains(&proj)
        }
    );
    // Only the outside folder's entry is worth a notice.
    let n = notices(&o);
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(
        n[0].contains(&elsewhere) && !n[0].contains(&format!("{proj}.")),
        "{}",
        n[0]
    );

    // The next jailed codex reads the project's trust from its own system
    // layer, which the program cannot change; the other folder is absent.
    let again = sb.jail_sh(
        &["-p", "codex", "--net", "none"],
        "cat /etc/codex/config.toml; (echo '[projects.\"/\"]' >> /etc/codex/config.toml) 2>/dev/null && echo WROTE; true",
    );
    assert_code(&again, 0);
    let out = stdout(&again);
    assert!(
        out.contains(&format!("[projects.\"{proj}\"]"))
            && out.contains("trust_level = \"trusted\""),
        "{out}"
    );
    assert!(!out.contains(&elsewhere), "{out}");
    assert!(!out.contains("WROTE"), "the layer is read-only: {out}");
    assert!(notices(&again).is_empty(), "{:?}", notices(&again));
    // Another profile's jail does not see it.
    let other = sb.jail_sh(&["--net", "none"], "cat /etc/codex/config.toml");
    assert!(
        !stdout(&other).contains("trust_level"),
        "{}",
        stdout(&other)
    );
}

#[test]
fn claude_folder_trust_given_in_the_jail_is_kept_for_jailed_runs_only() {
    let sb = Sandbox::new("claude-trust");
    sb.mkdir(sb.home.join(".claude"));
    let proj = sb.project.display().to_string();
    let elsewhere = sb.root.join("other").display().to_string();
    let o = sb.jail_sh(
        &["-p", "claude", "--net", "none"],
        &format!(
            "test -z \"$CLAUDE_CODE_SANDBOXED\" || exit 3; \
             echo '{{\"theme\":\"dark\",\"projects\":{{\"{proj}\":{{\"hasTrustDialogAccepted\":true}},\
             \"{elsewhere}\":{{\"hasTrustDialogAccepted\":true}}}}}}' > ~/.claude/.claude.json"
        ),
    );
    assert_code(&o, 0);
    // The host's claude trusts neither folder; the rest is kept.
    let host = fs::read_to_string(sb.home.join(".claude/.claude.json")).unwrap();
    assert!(!host.contains("true"), "{host}");
    assert!(host.contains("dark"), "{host}");
    let n = notices(&o);
    assert_eq!(n.len(), 1, "{n:?}");
    assert!(
        n[0].contains(&elsewhere) && !n[0].contains(&format!("{proj}.")),
        "{}",
        n[0]
    );
    // The next jailed claude in this project counts it trusted (claude
    // reads CLAUDE_CODE_SANDBOXED as a trusted folder), with no notice.
    let again = sb.jail_sh(
        &["-p", "claude", "--net", "none"],
        "echo \"S=$CLAUDE_CODE_SANDBOXED\"",
    );
    assert_code(&again, 0);
    assert!(stdout(&again).contains("S=1"), "{}", stdout(&again));
    assert!(notices(&again).is_empty(), "{:?}", notices(&again));
    // Not in another project, nor under another profile.
    let other = sb.root.join("other");
    sb.mkdir(&other);
    let o = sb
        .jail_cmd(&[
            "-p",
            "claude",
            "--net",
            "none",
            "--",
            "sh",
            "-c",
            "echo \"S=$CLAUDE_CODE_SANDBOXED\"",
        ])
        .current_dir(&other)
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert!(stdout(&o).contains("S=\n"), "{}", stdout(&o));
    let o = sb.jail_sh(&["--net", "none"], "echo \"S=$CLAUDE_CODE_SANDBOXED\"");
    assert!(stdout(&o).contains("S=\n"), "{}", stdout(&o));
}
