//! A real agent, run twice in a row on a terminal as a new user would:
//! the second run asks nothing the first one asked, and jail says nothing
//! about the agent's own files. Gemini CLI (from the npm registry, the
//! only outside network this uses; skipped, saying why, when the registry
//! cannot be reached from this machine). Its first start asks whether to
//! trust the folder and how to log in; no API call is made (no network
//! but the registry, a fake key).

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;

const GEMINI: &str = "@google/gemini-cli@0.61";

/// Gemini CLI installed where the test user can run it (one per version,
/// shared by test runs, renamed into place whole), or why not.
fn gemini() -> Result<PathBuf, String> {
    let dir = PathBuf::from("/tmp/jail-tests/agents-gemini-0.61");
    let bin = dir.join("node_modules/.bin/gemini");
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
        .arg(GEMINI)
        .env("PATH", PATH)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "npm install {GEMINI}: {}",
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
