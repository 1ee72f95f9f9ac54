//! Cost of Landlock + seccomp on syscall-heavy work: the same workloads in
//! the jail with and without them. Builds a release jail with the
//! `bench-unhardened` feature (JAIL_BENCH_UNHARDENED=1 then skips Landlock
//! and seccomp; release builds without the feature have no such switch)
//! and a small C workload, runs both variants interleaved, and returns a
//! markdown report. Target: < 2% overhead.
//!
//! Workloads:
//! - `statloop`: openat + fstat + close + stat of a file under /usr, timed
//!   inside the program (jail start-up excluded): path walks through
//!   Landlock and four syscalls through seccomp per iteration;
//! - `getppid`, `ioctl`: one cheap syscall in a loop. getppid is one the
//!   filter allows whatever its arguments (the kernel's constant-action
//!   cache skips the program: what is left is the cost of having a filter
//!   at all); ioctl's arguments are checked, so the program runs;
//! - `find /usr`: wall time of a whole `jail -- find /usr` run;
//! - `cc`: compiling that C file, a typical build step.
//!
//! Each is run with neither, both, and each one alone, to show where the
//! cost goes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const STATLOOP_C: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 200000;
    const char *path = argc > 2 ? argv[2] : "/usr/bin/env";
    const char *mode = argc > 3 ? argv[3] : "open";
    struct stat st;
    struct termios t;
    struct timespec a, b;
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0) { perror("/dev/null"); return 1; }
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (!strcmp(mode, "getppid")) {
        for (long i = 0; i < n; i++) syscall(SYS_getppid);
    } else if (!strcmp(mode, "ioctl")) {
        for (long i = 0; i < n; i++) ioctl(null, TCGETS, &t);
    } else {
        for (long i = 0; i < n; i++) {
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) { perror("open"); return 1; }
            fstat(fd, &st);
            close(fd);
            stat(path, &st);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
    printf("%.1f\n", ns);
    return 0;
}
"#;

const ROUNDS: usize = 9;
const ITERATIONS: &str = "200000";
const SYSCALLS: &str = "2000000";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run_cmd(c: &mut Command) -> Result<String, String> {
    let o = c.output().map_err(|e| format!("{c:?}: {e}"))?;
    if !o.status.success() {
        return Err(format!(
            "{c:?} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Wall time of a run in ms; its output is discarded.
fn wall(mut c: Command) -> Result<f64, String> {
    let t = Instant::now();
    let st = c
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    // find exits 1 for unreadable directories; anything else is a failure.
    if !st.success() && st.code() != Some(1) {
        return Err(format!("{c:?} failed: {st}"));
    }
    Ok(ms)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

struct Env {
    jail: PathBuf,
    project: PathBuf,
    home: PathBuf,
}

impl Env {
    fn jail(&self, skip: Option<&str>, args: &[&str]) -> Command {
        let mut c = Command::new(&self.jail);
        c.env_clear()
            .env("HOME", &self.home)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .current_dir(&self.project)
            .arg("-q")
            .arg("--")
            .args(args);
        if let Some(v) = skip {
            c.env("JAIL_BENCH_UNHARDENED", v);
        }
        c
    }
}

/// Runs the benchmark; the markdown report, or why it could not run.
pub fn run() -> Result<String, String> {
    let ws = workspace();
    let target = ws.join("target/harden-bench");
    run_cmd(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&ws)
            .args(["build", "--release", "--quiet", "-p", "jail"])
            .args(["--features", "bench-unhardened", "--target-dir"])
            .arg(&target),
    )?;
    let base = std::env::temp_dir().join(format!("jail-harden-bench-{}", std::process::id()));
    let project = base.join("project");
    let home = base.join("home");
    std::fs::create_dir_all(project.join(".git")).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let result = measure(&Env {
        jail: target.join("release/jail"),
        project,
        home,
    });
    let _ = std::fs::remove_dir_all(&base);
    result
}

fn measure(env: &Env) -> Result<String, String> {
    let src = env.project.join("statloop.c");
    std::fs::write(&src, STATLOOP_C).map_err(|e| e.to_string())?;
    run_cmd(
        Command::new("cc")
            .args(["-O2", "-o"])
            .arg(env.project.join("statloop"))
            .arg(&src),
    )?;
    // The hardened run must really be hardened, the other really not.
    let status = |skip| run_cmd(&mut env.jail(skip, &["grep", "^Seccomp:", "/proc/self/status"]));
    let (h, u) = (status(None)?, status(Some("1"))?);
    if !h.contains('2') || !u.contains('0') {
        return Err(format!(
            "variants are not what they claim: hardened {h:?}, unhardened {u:?}"
        ));
    }

    // (label, JAIL_BENCH_UNHARDENED value): "1" skips both, "seccomp"
    // skips seccomp (Landlock only), "landlock" skips Landlock.
    let variants: [(&str, Option<&str>); 4] = [
        ("none", Some("1")),
        ("both", None),
        ("Landlock only", Some("seccomp")),
        ("seccomp only", Some("landlock")),
    ];
    // results[workload][variant]
    let mut results = vec![vec![Vec::new(); variants.len()]; 5];
    let timed = |skip, args: &[&str]| -> Result<f64, String> {
        let out = run_cmd(&mut env.jail(skip, args))?;
        out.trim()
            .parse()
            .map_err(|e| format!("statloop printed {out:?}: {e}"))
    };
    for round in 0..ROUNDS {
        // Rotate the order so drift affects every variant alike.
        for k in 0..variants.len() {
            let vi = (k + round) % variants.len();
            let skip = variants[vi].1;
            results[0][vi].push(timed(skip, &["./statloop", ITERATIONS])?);
            for (w, mode) in [(1, "getppid"), (2, "ioctl")] {
                let args = ["./statloop", SYSCALLS, "/usr/bin/env", mode];
                results[w][vi].push(timed(skip, &args)?);
            }
            results[3][vi].push(wall(env.jail(skip, &["find", "/usr"]))?);
            results[4][vi].push(wall(
                env.jail(skip, &["cc", "-O2", "-o", "/tmp/statloop", "statloop.c"]),
            )?);
        }
    }
    let names = [
        "statloop: open+fstat+close+stat of /usr/bin/env (ns/iteration, timed inside)",
        "getppid (ns/call, timed inside; allowed without looking at arguments)",
        "ioctl(TCGETS) on /dev/null (ns/call, timed inside; arguments checked)",
        "`jail -- find /usr` (ms, wall, includes jail start-up)",
        "`jail -- cc -O2 statloop.c` (ms, wall, includes jail start-up)",
    ];
    let mut s = String::new();
    let _ = writeln!(s, "## Hardening overhead (Landlock + seccomp)\n");
    let _ = writeln!(
        s,
        "Medians of {ROUNDS} rotated runs; kernel {}; overhead relative to `none`.\n",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );
    let _ = write!(s, "| workload |");
    for (label, _) in &variants {
        let _ = write!(s, " {label} |");
    }
    let _ = writeln!(s, "\n|---|---|---|---|---|");
    let mut worst: f64 = f64::MIN;
    for (w, name) in names.iter().enumerate() {
        let med: Vec<f64> = results[w].iter_mut().map(|v| median(v)).collect();
        let _ = write!(s, "| {name} | {:.1} |", med[0]);
        for m in &med[1..] {
            let pct = (m - med[0]) / med[0] * 100.0;
            let _ = write!(s, " {m:.1} ({pct:+.1}%) |");
        }
        let _ = writeln!(s);
        worst = worst.max((med[1] - med[0]) / med[0] * 100.0);
    }
    let _ = writeln!(
        s,
        "\nTarget < 2% (both vs none): {} (worst {worst:+.1}%)",
        if worst < 2.0 { "met" } else { "NOT met" }
    );
    Ok(s)
}
