//! `cargo xtask ci`: the full test run .ci/run calls.

use crate::gen;

/// `cargo xtask ci`: what .ci/run calls.
pub fn run() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::run_cmd(&cargo, &["build", "--release", "--workspace"])?;
    let (tests, totals) = run_tests(&cargo);
    // Check generated files even when tests failed: one run reports all.
    let stale = gen::check_current(&crate::root());
    let installed = check_install();
    let packaged = check_package();
    let lint = lint(&cargo);
    let mut failures = Vec::new();
    for e in [tests, stale, installed, packaged, lint]
        .into_iter()
        .filter_map(Result::err)
    {
        failures.push(e);
    }
    // The tests' totals once more as the last line (the checks after the
    // tests print lines of their own in between).
    let last = format!("ci: {}", totals.line());
    if failures.is_empty() {
        println!("xtask ci: all good (generated files, install, packages, lint)");
        println!("{last}");
        Ok(())
    } else {
        println!("{last}");
        Err(failures.join("\n"))
    }
}

/// `cargo fmt --check` and `cargo clippy -D warnings` over the workspace,
/// tests and xtask included: a style or lint slip fails CI like a test.
fn lint(cargo: &str) -> Result<(), String> {
    let fmt = crate::run_cmd(cargo, &["fmt", "--all", "--", "--check"]);
    let clippy = crate::run_cmd(
        cargo,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ],
    );
    let errors: Vec<String> = [fmt, clippy].into_iter().filter_map(Result::err).collect();
    if errors.is_empty() {
        println!("xtask ci: cargo fmt --check and cargo clippy -D warnings are clean");
        Ok(())
    } else {
        Err(format!("lint: {}", errors.join("; ")))
    }
}

/// `cargo xtask install` into a temporary prefix (with the release binary
/// built above), then `man`, bash, zsh and fish must find what it put there.
fn check_install() -> Result<(), String> {
    let prefix = std::env::temp_dir().join(format!("jail-install-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&prefix);
    let binary = crate::root().join("target/release/jail");
    let result =
        crate::install::install(&prefix, &binary).and_then(|_| crate::install::check(&prefix));
    let _ = std::fs::remove_dir_all(&prefix);
    result.map_err(|e| format!("install check: {e}"))
}

/// `cargo xtask package --check` with the release binary built above: the
/// .deb and .rpm built, checked with dpkg, rpm and Lmod, the .deb installed,
/// upgraded, removed and purged in a private mount namespace (run after
/// the tests, and nothing of it outlives the step).
fn check_package() -> Result<(), String> {
    let start = std::time::Instant::now();
    let out = crate::root().join("target/package");
    let r = crate::package::build(&out, true).and_then(|p| crate::package::check(&p));
    println!(
        "package check: {} in {:.0} s",
        if r.is_ok() { "passed" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    r.map_err(|e| format!("package check: {e}"))
}

/// `cargo test --workspace --no-fail-fast` (every test binary runs, so one
/// run reports every failure), its output passed through; the `test result:`
/// lines are repeated at the end with their totals.
fn run_tests(cargo: &str) -> (Result<(), String>, TestTotals) {
    let mut totals = TestTotals::default();
    let r = run_tests_into(cargo, &mut totals);
    (r, totals)
}

fn run_tests_into(cargo: &str, totals: &mut TestTotals) -> Result<(), String> {
    use std::io::{BufRead, BufReader, Write};
    let skips_dir = skips_dir();
    let _ = std::fs::remove_dir_all(&skips_dir);
    eprintln!("$ {cargo} test --workspace --no-fail-fast");
    let mut child = std::process::Command::new(cargo)
        .args(["test", "--workspace", "--no-fail-fast"])
        .current_dir(crate::root())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cargo} test: {e}"))?;
    let mut results = Vec::new();
    let out = child.stdout.take().expect("piped stdout");
    let mut stdout = std::io::stdout();
    for line in BufReader::new(out).lines() {
        let line = line.map_err(|e| format!("reading cargo test output: {e}"))?;
        let _ = writeln!(stdout, "{line}");
        if line.starts_with("test result:") {
            results.push(line);
        }
    }
    let status = child.wait().map_err(|e| format!("{cargo} test: {e}"))?;
    *totals = TestTotals::from_lines(&results);
    let skipped = Skip::read_all(&skips_dir);
    totals.count_skips(&skipped);
    println!("\n== test summary ({} test binaries)", results.len());
    for l in &results {
        println!("{l}");
    }
    if !skipped.is_empty() {
        println!(
            "\n== skipped ({}): returned early, not counted as passed",
            skipped.len()
        );
        for s in &skipped {
            println!("{s}");
        }
    }
    println!("{}", totals.line());
    if status.success() && totals.failed == 0 {
        Ok(())
    } else {
        Err(format!("cargo test --workspace failed: {status}"))
    }
}

/// Where the integration tests record a skip (`tests/common::skip`): one
/// file per skipped test under cargo's CARGO_TARGET_TMPDIR.
fn skips_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target"))
        .join("tmp/jail-skips")
}

/// A test that could not run, as `tests/common::skip` recorded it.
#[derive(Debug, PartialEq)]
pub struct Skip {
    /// `machine`: the machine truly lacks the thing (allowed under CI);
    /// `setup`: the run should have brought it.
    pub kind: String,
    pub binary: String,
    pub test: String,
    pub why: String,
}

impl Skip {
    pub fn parse(line: &str) -> Option<Skip> {
        let mut f = line.trim_end().splitn(4, '\t');
        Some(Skip {
            kind: f.next()?.to_string(),
            binary: f.next()?.to_string(),
            test: f.next()?.to_string(),
            why: f.next()?.to_string(),
        })
    }

    fn read_all(dir: &std::path::Path) -> Vec<Skip> {
        let mut v: Vec<Skip> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|s| Skip::parse(&s))
            .collect();
        v.sort_by(|a, b| (&a.binary, &a.test).cmp(&(&b.binary, &b.test)));
        v
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = if self.kind == "machine" {
            "this machine lacks it"
        } else {
            "not set up here"
        };
        write!(f, "  {}::{} ({what}): {}", self.binary, self.test, self.why)
    }
}

/// Totals over cargo's `test result:` lines.
#[derive(Debug, Default, PartialEq)]
pub struct TestTotals {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl TestTotals {
    pub fn from_lines(lines: &[String]) -> TestTotals {
        let mut t = TestTotals::default();
        for line in lines {
            // "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s"
            let words: Vec<&str> = line
                .split([' ', ';', '.'])
                .filter(|w| !w.is_empty())
                .collect();
            for pair in words.windows(2) {
                let Ok(n) = pair[0].parse::<u64>() else {
                    continue;
                };
                match pair[1] {
                    "passed" => t.passed += n,
                    "failed" => t.failed += n,
                    "ignored" => t.ignored += n,
                    _ => {}
                }
            }
        }
        t
    }

    /// A skipped test returned early and libtest counted it as passed: it
    /// moves from passed to skipped.
    pub fn count_skips(&mut self, skips: &[Skip]) {
        let n = skips.len() as u64;
        self.passed = self.passed.saturating_sub(n);
        self.ignored += n;
    }

    /// The plain closing line: `N passed, N failed, N skipped`.
    pub fn line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.ignored
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_over_binaries() {
        let lines = vec![
            "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s".to_string(),
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.50s".to_string(),
        ];
        let t = TestTotals::from_lines(&lines);
        assert_eq!(
            t,
            TestTotals {
                passed: 15,
                failed: 2,
                ignored: 1
            }
        );
        assert_eq!(t.line(), "15 passed, 2 failed, 1 skipped");
    }

    #[test]
    fn a_recorded_skip_moves_from_passed_to_skipped() {
        let s = Skip::parse("machine\tgpu\ta_cuda_program\tno NVIDIA GPU here\n").unwrap();
        assert_eq!(s.binary, "gpu");
        assert_eq!(s.why, "no NVIDIA GPU here");
        assert!(s.to_string().contains("this machine lacks it"));
        let mut t = TestTotals {
            passed: 10,
            failed: 0,
            ignored: 0,
        };
        t.count_skips(&[s]);
        assert_eq!(t.line(), "9 passed, 0 failed, 1 skipped");
        assert!(Skip::parse("garbage").is_none());
    }
}
