//! `cargo xtask`: project chores that need more than cargo.
//!
//!   cargo xtask man                      man/jail.1, man/jail-SUB.1 (clap_mangen), man/jail.toml.5
//!   cargo xtask completions              man/completions/{jail.bash,_jail,jail.fish}
//!   cargo xtask install [--prefix DIR]   binary, man pages, completions (default DIR ~/.local)
//!   cargo xtask package [--check]      .deb and .rpm (cargo-deb, cargo-generate-rpm) into
//!                                        target/package; --check installs, upgrades, removes
//!   cargo xtask bench [--quick] [--runs N] [--update-readme] [--breakdown] [--no-net]
//!                                        startup of /bin/true: jail vs bwrap vs unshare, and the
//!                                        network: jail's helper vs pasta, slirp4netns, the
//!                                        handoff prototype (root)
//!   cargo xtask harden-bench             Landlock + seccomp overhead (also part of bench)
//!   cargo xtask ci                       release build, every test, generated files up to date

mod bench;
mod ci;
mod completions;
mod debcheck;
mod gen;
mod harden_bench;
mod install;
mod netbench;
mod package;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <man|completions|install|package|bench|harden-bench|ci>
  man                    write man pages into man/
  completions            write bash, zsh, fish completions into man/completions/
  install [--prefix DIR] build the release binary and install it, the man pages and the
                         completions below DIR (default ~/.local): bin/, share/man/,
                         share/bash-completion/, share/zsh/site-functions/, share/fish/
  package [--check] [--out DIR]
                         build a .deb and an .rpm (x86_64) into DIR (default target/package);
                         --check: check the .rpm with rpm, install the .deb (as root, in a
                         private mount namespace), run jail from it as jailtest, upgrade, remove,
                         purge, and load the modulefile with Lmod
  bench [--quick] [--runs N] [--update-readme] [--breakdown] [--no-net]
                         measure startup of /bin/true, and network throughput, latency and
                         helper RSS against pasta, slirp4netns and the handoff prototype
                         (as root; results in bench-results/)
                         --quick: 10 runs instead of 60, 3 s transfers; --update-readme: rewrite
                         the README block between <!-- bench:start --> and <!-- bench:end -->;
                         --breakdown: extra cases that split jail's startup into phases;
                         --no-net: startup only
  harden-bench           overhead of Landlock + seccomp on syscall-heavy work (also run by bench)
  ci                     release build, cargo test --workspace, check man/ and completions are
                         current, install into a temporary prefix and check it works";

/// The workspace root (xtask's parent directory).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("man") => gen::write_man(&root().join("man")).map(|files| {
            for f in files {
                println!("wrote {}", f.display());
            }
        }),
        Some("completions") => {
            gen::write_completions(&root().join(gen::COMPLETIONS_DIR)).map(|files| {
                for f in files {
                    println!("wrote {}", f.display());
                }
            })
        }
        Some("install") => install::run(&args[1..]),
        Some("package") => package::run(&args[1..]),
        Some(package::DEB_CHECK) => debcheck::run(&args[1..]),
        Some("bench") => bench::Options::parse(&args[1..]).and_then(|o| bench::run(&o)),
        Some("ci") => ci::run(),
        Some("harden-bench") => harden_bench::run().map(|report| print!("{report}")),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Run a command from the workspace root, inheriting stdio; Err on failure.
pub fn run_cmd(program: &str, args: &[&str]) -> Result<(), String> {
    eprintln!("$ {program} {}", args.join(" "));
    let status = std::process::Command::new(program)
        .args(args)
        .current_dir(root())
        .status()
        .map_err(|e| format!("{program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed: {status}", args.join(" ")))
    }
}
