//! `cargo xtask install --prefix DIR`: the binary, man pages and shell
//! completions where `man`, bash-completion, zsh and fish look for them:
//!
//!   DIR/bin/jail
//!   DIR/share/man/man1/jail.1, jail-SUB.1    DIR/share/man/man5/jail.toml.5
//!   DIR/share/bash-completion/completions/jail
//!   DIR/share/zsh/site-functions/_jail
//!   DIR/share/fish/vendor_completions.d/jail.fish
//!
//! With DIR = ~/.local (the default) `man jail` works at once when
//! ~/.local/bin is on PATH (man-db looks in ../share/man of each PATH
//! entry), and bash-completion and fish find the completions by themselves.
//! `check` proves an installed tree works: CI installs into a temporary
//! prefix and runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::gen;

const USAGE: &str = "usage: cargo xtask install [--prefix DIR]   (default DIR: ~/.local)";

/// Paths below the prefix.
pub const BIN: &str = "bin/jail";
pub const MAN: &str = "share/man";
pub const BASH: &str = "share/bash-completion/completions/jail";
pub const ZSH: &str = "share/zsh/site-functions/_jail";
pub const FISH: &str = "share/fish/vendor_completions.d/jail.fish";

pub fn run(args: &[String]) -> Result<(), String> {
    let prefix = match args {
        [] => PathBuf::from(std::env::var_os("HOME").ok_or("HOME is not set")?).join(".local"),
        [flag, dir] if flag == "--prefix" => PathBuf::from(dir),
        [arg] if arg.starts_with("--prefix=") => PathBuf::from(&arg["--prefix=".len()..]),
        _ => return Err(USAGE.into()),
    };
    let prefix = if prefix.is_absolute() {
        prefix
    } else {
        std::env::current_dir()
            .map_err(|e| format!("current directory: {e}"))?
            .join(prefix)
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::run_cmd(&cargo, &["build", "--release", "--locked", "-p", "jail"])?;
    let binary = crate::root().join("target/release/jail");
    for p in install(&prefix, &binary)? {
        println!("installed {}", p.display());
    }
    check(&prefix)?;
    if !std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d == prefix.join("bin")))
        .unwrap_or(false)
    {
        println!(
            "note: {} is not on your PATH; add it so `jail` and `man jail` find it",
            prefix.join("bin").display()
        );
    }
    Ok(())
}

/// Copies `binary`, the man pages and the completions below `prefix`.
pub fn install(prefix: &Path, binary: &Path) -> Result<Vec<PathBuf>, String> {
    let mut done = Vec::new();
    let bin = prefix.join(BIN);
    let body = std::fs::read(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    put(&bin, &body, 0o755)?;
    done.push(bin);
    for (name, body) in gen::man_pages()? {
        let section = name.rsplit('.').next().unwrap_or("1");
        let path = prefix.join(MAN).join(format!("man{section}")).join(&name);
        put(&path, &body, 0o644)?;
        done.push(path);
    }
    let scripts = gen::completions();
    for (name, rel) in [("jail.bash", BASH), ("_jail", ZSH), ("jail.fish", FISH)] {
        let body = scripts
            .get(name)
            .ok_or_else(|| format!("no completion script {name}"))?;
        let path = prefix.join(rel);
        put(&path, body, 0o644)?;
        done.push(path);
    }
    Ok(done)
}

/// Writes `path` by rename, so a running binary is replaced, not rewritten.
fn put(path: &Path, body: &[u8], mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().ok_or("no parent directory")?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.xtask-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("f"),
        std::process::id()
    ));
    std::fs::write(&tmp, body).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Standard output of a command, or why it failed (a non-zero status, or
/// anything on standard error when `quiet`). `Ok(None)`: the program is
/// not installed (allowed only outside CI).
fn output(
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    quiet: bool,
) -> Result<Option<String>, String> {
    let mut c = Command::new(program);
    c.args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    match c.output() {
        Ok(o) => {
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            if !o.status.success() || (quiet && !err.trim().is_empty()) {
                return Err(format!(
                    "`{program} {}` failed ({}):\n{out}{err}",
                    args.join(" "),
                    o.status
                ));
            }
            Ok(Some(out))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var_os("CI").is_some() {
                Err(format!("{program} is not installed (.ci/run installs it)"))
            } else {
                println!("install check: {program} not installed, skipped");
                Ok(None)
            }
        }
        Err(e) => Err(format!("{program}: {e}")),
    }
}

fn expect(what: &str, out: Option<String>, needles: &[&str]) -> Result<(), String> {
    let Some(out) = out else { return Ok(()) };
    for n in needles {
        if !out.contains(n) {
            return Err(format!("{what}: `{n}` not in its output:\n{out}"));
        }
    }
    Ok(())
}

/// Proves an installed tree works: the binary runs, `man` renders both
/// pages without a groff warning, and each shell loads its completion.
pub fn check(prefix: &Path) -> Result<(), String> {
    let p = |rel: &str| prefix.join(rel).display().to_string();
    let jail = p(BIN);
    expect(
        "jail --version",
        output(&jail, &["--version"], &[], false)?,
        &["jail "],
    )?;
    let man_env = [("MANPAGER", "cat"), ("MANWIDTH", "80"), ("LANG", "C.UTF-8")];
    let man_dir = p(MAN);
    for (args, needles) in [
        (
            vec!["--warnings", "-M", &man_dir, "jail"],
            &[
                "EXIT STATUS",
                "ENVIRONMENT",
                "SECURITY",
                "EXAMPLES",
                "jail.toml(5)",
            ][..],
        ),
        (
            vec!["--warnings", "-M", &man_dir, "5", "jail.toml"],
            &["THE SITE LAYER", "jail trust", "dns_upstream"][..],
        ),
        (
            vec!["--warnings", "-M", &man_dir, "jail-explain"],
            &["--profile"][..],
        ),
    ] {
        // --warnings: groff's warnings go to stderr, which must be empty.
        let what = format!("man {}", args.join(" "));
        expect(&what, output("man", &args, &man_env, true)?, needles)?;
    }
    let bash = format!("source {} && complete -p jail", p(BASH));
    expect(
        "bash completion",
        output("bash", &["--norc", "-c", &bash], &[], true)?,
        &["complete -F _jail jail"],
    )?;
    let zsh = format!(
        "fpath=({} $fpath); autoload -Uz compinit; compinit -u -D; print -r -- $_comps[jail]",
        Path::new(&p(ZSH))
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    );
    expect(
        "zsh completion",
        output("zsh", &["-f", "-c", &zsh], &[], true)?,
        &["_jail"],
    )?;
    let fish = format!(
        "set fish_complete_path {} $fish_complete_path; complete -C 'jail --ne'",
        Path::new(&p(FISH))
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    );
    // fish (3.6, Debian 12's) autoloads a command's completion only when it
    // finds the command on PATH: put the prefix's bin first, as a user who
    // installed there has it, so the check does not lean on some other
    // `jail` that a machine happens to have. A fresh HOME keeps the user's
    // own fish state out of it.
    let path = std::env::join_paths(
        std::iter::once(prefix.join("bin")).chain(
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .unwrap_or_default(),
        ),
    )
    .map_err(|e| format!("PATH: {e}"))?;
    let path = path.to_string_lossy().into_owned();
    let home = prefix.join("fish-home").display().to_string();
    std::fs::create_dir_all(&home).map_err(|e| format!("{home}: {e}"))?;
    expect(
        "fish completion",
        output(
            "fish",
            &["--no-config", "-c", &fish],
            &[("PATH", &path), ("HOME", &home), ("XDG_CONFIG_HOME", &home), ("XDG_DATA_HOME", &home)],
            true,
        )?,
        &["--net"],
    )?;
    println!("install check: binary, man pages and completions work");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_puts_files_where_the_tools_look() {
        let prefix = std::env::temp_dir().join(format!("xtask-install-{}", std::process::id()));
        let fake = prefix.join("src-binary");
        std::fs::create_dir_all(&prefix).unwrap();
        std::fs::write(&fake, b"#!/bin/sh\n").unwrap();
        let done = install(&prefix, &fake).unwrap();
        for rel in [
            BIN,
            "share/man/man1/jail.1",
            "share/man/man1/jail-explain.1",
            "share/man/man5/jail.toml.5",
            BASH,
            ZSH,
            FISH,
        ] {
            assert!(prefix.join(rel).is_file(), "{rel} missing: {done:?}");
        }
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(prefix.join(BIN))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
        std::fs::remove_dir_all(&prefix).unwrap();
    }
}
