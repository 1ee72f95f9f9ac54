//! Generated files: man pages (clap_mangen) and shell completions (clap_complete),
//! both from `jail::cli::Cli`. Rendered in memory so `ci` can compare them with
//! the committed copies without touching the work tree.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::{Generator, Shell};

/// Where completions go, relative to the workspace root.
pub const COMPLETIONS_DIR: &str = "man/completions";
const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// File name → contents for jail.1 and one page per visible subcommand (jail-explain.1, ...).
pub fn man_pages() -> Result<BTreeMap<String, Vec<u8>>, String> {
    fn walk(cmd: clap::Command, out: &mut BTreeMap<String, Vec<u8>>) -> Result<(), String> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            walk(sub, out)?;
        }
        let man = clap_mangen::Man::new(cmd);
        let mut buf = Vec::new();
        man.render(&mut buf)
            .map_err(|e| format!("rendering man page: {e}"))?;
        out.insert(man.get_filename(), buf);
        Ok(())
    }
    let mut cmd = jail::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut out = BTreeMap::new();
    walk(cmd, &mut out)?;
    Ok(out)
}

/// File name → contents for the bash, zsh and fish completions.
pub fn completions() -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for shell in SHELLS {
        let mut cmd = jail::cli::Cli::command();
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, "jail", &mut buf);
        out.insert(shell.file_name("jail"), buf);
    }
    out
}

fn write_all(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for (name, body) in files {
        let path = dir.join(name);
        std::fs::write(&path, body).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

pub fn write_man(dir: &Path) -> Result<Vec<PathBuf>, String> {
    write_all(dir, &man_pages()?)
}

pub fn write_completions(dir: &Path) -> Result<Vec<PathBuf>, String> {
    write_all(dir, &completions())
}

/// Names of the files in `dir` (not recursive) whose extension marks them as ours.
fn files_in(dir: &Path, is_ours: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| is_ours(n))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Differences between what is generated now and what is in `dir`:
/// missing, different, or left over (a page for a subcommand that is gone).
pub fn compare(
    dir: &Path,
    want: &BTreeMap<String, Vec<u8>>,
    is_ours: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (name, body) in want {
        let path = dir.join(name);
        match std::fs::read(&path) {
            Ok(have) if &have == body => {}
            Ok(_) => problems.push(format!("{} is stale", path.display())),
            Err(_) => problems.push(format!("{} is missing", path.display())),
        }
    }
    for name in files_in(dir, is_ours) {
        if !want.contains_key(&name) {
            problems.push(format!(
                "{} is no longer generated",
                dir.join(name).display()
            ));
        }
    }
    problems
}

/// Ok when man/ and the completions match what `cargo xtask man` and
/// `cargo xtask completions` would write now.
pub fn check_current(root: &Path) -> Result<(), String> {
    let mut problems = compare(&root.join("man"), &man_pages()?, |n| n.ends_with(".1"));
    let names: Vec<String> = SHELLS.iter().map(|s| s.file_name("jail")).collect();
    problems.extend(compare(&root.join(COMPLETIONS_DIR), &completions(), |n| {
        names.iter().any(|m| m == n)
    }));
    if problems.is_empty() {
        println!("man pages and completions are up to date");
        Ok(())
    } else {
        Err(format!(
            "generated files are out of date:\n  {}\nrun `cargo xtask man && cargo xtask completions` and commit the result",
            problems.join("\n  ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_page_per_subcommand() {
        let pages = man_pages().unwrap();
        for name in ["jail.1", "jail-explain.1", "jail-doctor.1", "jail-run.1"] {
            assert!(
                pages.contains_key(name),
                "{name} missing: {:?}",
                pages.keys()
            );
        }
        let top = String::from_utf8(pages["jail.1"].clone()).unwrap();
        assert!(
            top.contains("\\-\\-profile"),
            "options section lacks --profile"
        );
    }

    #[test]
    fn compare_reports_stale_missing_and_leftover() {
        let dir = std::env::temp_dir().join(format!("xtask-gen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.1"), b"old").unwrap();
        std::fs::write(dir.join("gone.1"), b"x").unwrap();
        std::fs::write(dir.join("notes.txt"), b"not ours").unwrap();
        let want: BTreeMap<String, Vec<u8>> = [
            ("a.1".to_string(), b"new".to_vec()),
            ("b.1".to_string(), b"b".to_vec()),
        ]
        .into();
        let problems = compare(&dir, &want, |n| n.ends_with(".1"));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].ends_with("a.1 is stale"));
        assert!(problems[1].ends_with("b.1 is missing"));
        assert!(problems[2].ends_with("gone.1 is no longer generated"));
    }
}
