//! Everyday use: package caches that keep what is downloaded without
//! writing the host's, a home that persists in jail's own storage, login
//! shells that find rustup's `~/.cargo/env`, and writes outside the
//! project said at exit.

mod common;
use common::*;

use std::fs;

#[test]
fn a_cache_reads_the_hosts_and_keeps_downloads_without_writing_it() {
    let sb = Sandbox::new("cache");
    sb.write(
        sb.home.join(".cargo/registry/cache/host-crate.crate"),
        "HOST\n",
    );
    let o = sb.jail_sh(
        &[],
        "cat ~/.cargo/registry/cache/host-crate.crate && echo DL > ~/.cargo/registry/cache/new.crate \
         && echo CHANGED > ~/.cargo/registry/cache/host-crate.crate && echo ok",
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "HOST\nok\n", "{}", stderr(&o));
    // The host's cache is untouched: a poisoned crate never lands there.
    let host = sb.home.join(".cargo/registry/cache");
    assert_eq!(
        fs::read_to_string(host.join("host-crate.crate")).unwrap(),
        "HOST\n"
    );
    assert!(!host.join("new.crate").exists());
    // The next run sees what was downloaded (and changed) before.
    let o = sb.jail_sh(
        &[],
        "cat ~/.cargo/registry/cache/new.crate ~/.cargo/registry/cache/host-crate.crate",
    );
    assert_eq!(stdout(&o), "DL\nCHANGED\n", "{}", stderr(&o));
    // Another profile keeps its own.
    let o = sb.jail_sh(
        &["-p", "shell"],
        "cat ~/.cargo/registry/cache/new.crate 2>&1; true",
    );
    assert!(stdout(&o).contains("No such file"), "{}", stdout(&o));
    // `jail cache` shows it, `jail cache clear` removes it.
    let o = sb.jail(&["cache"]);
    assert_code(&o, 0);
    assert!(stdout(&o).contains(".cargo/registry"), "{}", stdout(&o));
    let o = sb.jail(&["cache", "clear", "-p", "default"]);
    assert_code(&o, 0);
    assert!(stdout(&o).contains("removed"), "{}", stdout(&o));
    let o = sb.jail_sh(&[], "cat ~/.cargo/registry/cache/new.crate 2>&1; true");
    assert!(stdout(&o).contains("No such file"), "{}", stdout(&o));
}

#[test]
fn a_cache_the_host_does_not_have_still_keeps_downloads() {
    let sb = Sandbox::new("cache-new");
    let o = sb.jail_sh(
        &["--home", "tmpfs"],
        "mkdir -p ~/.cache/pip && echo W > ~/.cache/pip/wheel",
    );
    assert_code(&o, 0);
    let o = sb.jail_sh(&["--home", "tmpfs"], "cat ~/.cache/pip/wheel");
    assert_eq!(stdout(&o), "W\n", "{}", stderr(&o));
    assert!(
        !sb.home.join(".cache/pip").exists(),
        "nothing in the host's home"
    );
}

#[test]
fn the_home_persists_in_jails_storage_per_profile_never_in_yours() {
    let sb = Sandbox::new("persist");
    let o = sb.jail_sh(
        &[],
        "echo remembered > ~/.tool-settings && echo history >> ~/.sh_history",
    );
    assert_code(&o, 0);
    assert!(
        !sb.home.join(".tool-settings").exists(),
        "not in the real home"
    );
    let o = sb.jail_sh(&[], "cat ~/.tool-settings");
    assert_eq!(stdout(&o), "remembered\n");
    // Another profile has another home; `--home tmpfs` an empty one.
    let o = sb.jail_sh(&["-p", "shell"], "cat ~/.tool-settings 2>&1; true");
    assert!(stdout(&o).contains("No such file"), "{}", stdout(&o));
    let o = sb.jail_sh(&["--home", "tmpfs"], "cat ~/.tool-settings 2>&1; true");
    assert!(stdout(&o).contains("No such file"), "{}", stdout(&o));
}

#[test]
fn a_persistent_home_never_shows_another_agents_login() {
    let sb = Sandbox::new("persist-login");
    // Codex run under the claude profile leaves its login in claude's home.
    let o = sb.jail_sh(
        &["-p", "claude"],
        "mkdir -p ~/.codex && echo TOKEN > ~/.codex/auth.json",
    );
    assert_code(&o, 0);
    let o = sb.jail_sh(&["-p", "claude"], "cat ~/.codex/auth.json 2>&1; true");
    assert!(!stdout(&o).contains("TOKEN"), "{}", stdout(&o));
    assert!(stdout(&o).contains("Permission denied"), "{}", stdout(&o));
}

#[test]
fn login_shells_find_rustups_cargo_env() {
    let sb = Sandbox::new("cargoenv");
    sb.write(
        sb.home.join(".cargo/env"),
        "export PATH=\"$HOME/.cargo/bin:$PATH\"\n",
    );
    sb.write(
        sb.home.join(".cargo/bin/cargo"),
        "#!/bin/sh\necho fake-cargo\n",
    );
    fs::set_permissions(
        sb.home.join(".cargo/bin/cargo"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    sb.write(sb.home.join(".profile"), ". \"$HOME/.cargo/env\"\n");
    let o = sb.jail(&["--", "bash", "-lc", "cargo"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "fake-cargo\n");
    assert!(!stderr(&o).contains("No such file"), "{}", stderr(&o));
}

#[test]
fn writes_outside_the_project_are_said_at_exit() {
    let sb = Sandbox::new("outside");
    // A project in the home, as usual: its parent is the jail's home.
    let proj = sb.home.join("work/proj");
    sb.mkdir(&proj);
    let run = |script: &str| {
        sb.jail_cmd(&["--", "sh", "-c", script])
            .current_dir(&proj)
            .output()
            .unwrap()
    };
    let o =
        run("echo hi > ../note.txt && echo hidden > ../.tool && echo top > ~/top.txt && echo ok");
    assert_code(&o, 0);
    let err = stderr(&o);
    assert!(
        err.contains("~/work/note.txt")
            && err.contains("~/top.txt")
            && err.contains("not in yours"),
        "{err}"
    );
    assert!(
        !err.contains(".tool"),
        "tools' own dotfiles are not listed: {err}"
    );
    assert!(!sb.home.join("work/note.txt").exists());
    // A run that writes nothing there says nothing.
    let o = run("echo x > in-project.txt");
    assert!(!stderr(&o).contains("not in yours"), "{}", stderr(&o));
}
