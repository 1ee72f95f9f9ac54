//! A real agent, run twice in a row on a terminal as a new user would:
//! the second run asks nothing the first one asked, and jail says nothing
//! about the agent's own files. Gemini CLI and Codex (from the npm
//! registry, the only outside network this uses; skipped, saying why, when
//! the registry cannot be reached from this machine). Their first start
//! asks whether to trust the folder and how to log in; no API call is made
//! (no network but the registry, a fake key).

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;

const GEMINI: &str = "@google/gemini-cli@0.61";
const CODEX: &str = "@openai/codex@0.171";

/// Gemini CLI installed where the test user can run it, or why not.
fn gemini() -> Result<PathBuf, String> {
    npm_agent(GEMINI, "agents-gemini-0.61", "gemini")
}

/// Codex installed where the test user can run it, or why not.
fn codex() -> Result<PathBuf, String> {
    npm_agent(CODEX, "agents-codex-0.171", "codex")
}

/// The npm package `spec` installed where the test user can run it (one
/// per version, shared by test runs, renamed into place whole), or why not.
fn npm_agent(spec: &str, name: &str, bin: &str) -> Result<PathBuf, String> {
    let dir = PathBuf::from("/tmp/jail-tests").join(name);
    let bin = dir.join("node_modules/.bin").join(bin);
    if bin.exists() {
        return Ok(dir);
    }
    let npm = Command::new("npm")
        .arg("--version")
        .env("PATH", PATH)
        .output();
    if !npm.is_ok_and(|o| o.status.success()) {
        return Err("npm is not installed".into());
    }
    let reach = Command::new("curl")
        .args(["-sS", "-m", "20", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg("https://registry.npmjs.org/")
        .output();
    match reach {
        Ok(o) if String::from_utf8_lossy(&o.stdout).starts_with('2') => {}
        _ => return Err("registry.npmjs.org is not reachable from this machine".into()),
    }
    let tmp = PathBuf::from(format!("{}.tmp-{}", dir.display(), std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let o = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--prefix",
        ])
        .arg(&tmp)
        .arg(spec)
        .env("PATH", PATH)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "npm install {spec}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&tmp)
        .output()
        .unwrap();
    assert!(o.status.success());
    if std::fs::rename(&tmp, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&tmp); // another run was first
    }
    Ok(dir)
}

/// jail's own lines in a transcript, other than the network summary.
fn jail_notices(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.find("jail: ").map(|i| l[i..].to_string()))
        .filter(|l| !l.starts_with("jail: net:"))
        .collect()
}

#[test]
fn gemini_twice_in_a_row_asks_once_and_jail_stays_quiet() {
    let dir = match gemini() {
        Ok(d) => d,
        Err(why) => {
            skip(Lack::Machine, &why);
            return;
        }
    };
    let sb = Sandbox::new("real-gemini");
    sb.mkdir(sb.project.join(".git"));
    let jail = jail_bin().display().to_string();
    let bin = dir.join("node_modules/.bin/gemini").display().to_string();
    let d = dir.display().to_string();
    let argv = [jail.as_str(), "--ro", &d, "-p", "gemini", "--", &bin];
    let first = pty_drive(
        &sb,
        40,
        120,
        &argv,
        &[],
        "sleep 10\n\
         expect trust the files in this folder\n\
         sleep 1\n\
         send \n\
         expect How would you like to authenticate\n\
         sleep 1\n\
         type 2\n\
         expect Enter Gemini API Key\n\
         sleep 2\n\
         type AIzaFAKEFAKEFAKE0123456789\n\
         sleep 2\n\
         send \n\
         sleep 5\n\
         expect Type your message\n\
         sleep 1\n\
         ctrl C\n\
         sleep 1\n\
         ctrl C\n\
         wait\n\
         dump\n",
    );
    assert!(first.contains("exit=0"), "{first}");
    assert!(
        jail_notices(&first).is_empty(),
        "{:?}",
        jail_notices(&first)
    );
    let second = pty_drive(
        &sb,
        40,
        120,
        &argv,
        &[],
        "sleep 10\n\
         expect Type your message\n\
         sleep 1\n\
         ctrl C\n\
         sleep 1\n\
         ctrl C\n\
         wait\n\
         dump\n",
    );
    assert!(second.contains("exit=0"), "{second}");
    for asked in ["trust the files", "How would you like to authenticate"] {
        assert!(!second.contains(asked), "asked again: {asked}\n{second}");
    }
    assert!(
        jail_notices(&second).is_empty(),
        "{:?}",
        jail_notices(&second)
    );
    // What the answers changed on the host: the login method (kept), not
    // the folder's trust (jail's own).
    let settings = std::fs::read_to_string(sb.home.join(".gemini/settings.json")).unwrap();
    assert!(settings.contains("gemini-api-key"), "{settings}");
    assert!(!sb.home.join(".gemini/trustedFolders.json").exists());
}

#[test]
fn codex_twice_in_a_row_asks_once_and_jail_stays_quiet() {
    let dir = match codex() {
        Ok(d) => d,
        Err(why) => {
            skip(Lack::Machine, &why);
            return;
        }
    };
    let sb = Sandbox::new("real-codex");
    // Codex asks to trust a folder only in a git repository.
    let init = sb.host_sh("git init -q .");
    assert_code(&init, 0);
    let jail = jail_bin().display().to_string();
    let bin = dir.join("node_modules/.bin/codex").display().to_string();
    let d = dir.display().to_string();
    let argv = [jail.as_str(), "--ro", &d, "-p", "codex", "--", &bin];
    let first = pty_drive(
        &sb,
        40,
        120,
        &argv,
        &[],
        "sleep 8\n\
         expect Sign in another way\n\
         sleep 1\n\
         type 3\n\
         sleep 1\n\
         send \n\
         expect type your API key\n\
         sleep 1\n\
         type sk-FAKEFAKEFAKE0123456789\n\
         sleep 1\n\
         send \n\
         sleep 4\n\
         expect Trust.{1,12}this.{1,12}folder\n\
         sleep 1\n\
         send \n\
         sleep 4\n\
         expect Ask Codex\n\
         sleep 1\n\
         ctrl C\n\
         sleep 1\n\
         ctrl C\n\
         wait\n\
         dump\n",
    );
    assert!(first.contains("exit=0"), "{first}");
    // What the second run must not show again, as the first showed it.
    assert!(screen_text(&first).contains("Trust this folder"), "{first}");
    assert!(quiet(&first), "{:?}", jail_notices(&first));
    let second = pty_drive(
        &sb,
        40,
        120,
        &argv,
        &[],
        "sleep 8\n\
         expect Ask Codex\n\
         sleep 1\n\
         ctrl C\n\
         sleep 1\n\
         ctrl C\n\
         wait\n\
         dump\n",
    );
    assert!(second.contains("exit=0"), "{second}");
    let screen = screen_text(&second);
    assert!(screen.contains("Ask Codex"), "{screen}");
    for asked in ["Trust this folder", "Sign in"] {
        assert!(!screen.contains(asked), "asked again: {asked}\n{second}");
    }
    assert!(quiet(&second), "{:?}", jail_notices(&second));
    // The host's codex got the login (kept), not the folder's trust (a
    // grant the host's codex would honour: jail's own, for jailed runs).
    let config = std::fs::read_to_string(sb.home.join(".codex/config.toml")).unwrap();
    assert!(!config.contains("trust_level"), "{config}");
    assert!(sb.home.join(".codex/auth.json").exists());
}

/// A transcript's text with each terminal control sequence (cursor moves
/// between the words of a line, colours) turned into one space.
fn screen_text(out: &str) -> String {
    let mut text = String::new();
    let mut chars = out.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            text.push(c);
            continue;
        }
        if chars.next_if_eq(&'[').is_some() {
            // CSI: parameters and intermediates, then one final byte.
            for p in chars.by_ref() {
                if ('@'..='~').contains(&p) {
                    break;
                }
            }
        } else {
            chars.next();
        }
        text.push(' ');
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// No jail notice about the agent's files: only the network summary and
/// the line naming codex's own app-server daemon, which jail ends with
/// the jail on every run (issue 21).
fn quiet(out: &str) -> bool {
    jail_notices(out)
        .iter()
        .all(|l| l.starts_with("jail: ended ") && l.contains("background process"))
}
