//! The Slurm chaperon against real Slurm (.ci/slurm/start-local-slurm.sh,
//! which .ci/run starts and stops, with two nodes). Jails run as the unprivileged test user,
//! the commands inside are the stubs, and what they do is checked with the
//! real Slurm commands outside. Each test names its jobs uniquely and
//! cancels whatever it started.
//!
//! Without a running Slurm the tests are skipped (and counted so), except
//! under CI (CI=true), where Slurm must be up.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Whether a Slurm cluster answers (as the test user).
fn slurm() -> bool {
    static UP: OnceLock<bool> = OnceLock::new();
    let up = *UP.get_or_init(|| {
        let sb = Sandbox::new("slurm-probe");
        let o = sb.host_sh("scontrol ping 2>&1");
        let up = o.status.success() && stdout(&o).contains("is UP");
        if !up {
            println!("slurm probe: {}", stdout(&o));
        }
        up
    });
    if !up {
        skip(
            Lack::Setup,
            "no Slurm cluster answers (run .ci/slurm/start-local-slurm.sh as root)",
        );
    }
    up
}

/// A unique job name for this test process.
fn uniq(tag: &str) -> String {
    format!("jt{}-{tag}", std::process::id())
}

/// Cancels, at the end of a test, every job whose name starts with the
/// test's prefix (jobs it made inside and outside the jail).
struct Cleanup<'a> {
    sb: &'a Sandbox,
    names: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = self.sb.host_sh(&format!("scancel --name={n} 2>/dev/null"));
        }
    }
}

fn cleanup<'a>(sb: &'a Sandbox, names: &[&str]) -> Cleanup<'a> {
    Cleanup {
        sb,
        names: names.iter().map(|s| s.to_string()).collect(),
    }
}

/// `sh -c SCRIPT` in a jail (default profile: Slurm `auto`, on here).
fn jailed(sb: &Sandbox, script: &str) -> Output {
    sb.jail_sh(&[], script)
}

/// Polls (as the test user, outside) until the job is in a final state.
fn wait_done(sb: &Sandbox, id: &str) -> String {
    let start = Instant::now();
    loop {
        let o = sb.host_sh(&format!("scontrol show job -o {id}"));
        let text = stdout(&o);
        let state = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("JobState="))
            .unwrap_or("")
            .to_string();
        if [
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "TIMEOUT",
            "OUT_OF_MEMORY",
            "NODE_FAIL",
            "PREEMPTED",
            "DEADLINE",
        ]
        .contains(&state.as_str())
        {
            return text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "job {id} did not finish: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `sacct -o FIELDS` and `scontrol show job` of job `id`, as the jail
/// sees them, once `done` holds of them or after 30 s (the accounting
/// daemon records a job's end a little after Slurm ends it).
fn record_of(sb: &Sandbox, id: &str, fields: &str, done: &dyn Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let o = jailed(
            sb,
            &format!("sacct -n -X -j {id} -o {fields}; scontrol show job {id}"),
        );
        let text = stdout(&o);
        if done(&text) || start.elapsed() > Duration::from_secs(30) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Builds tests/helpers/SRC.c into the project as `bin` (outside the
/// jail, as the test user); false (skipped) where no C compiler works.
fn build_helper(sb: &Sandbox, src: &str, bin: &str) -> bool {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/helpers/{src}.c"));
    sb.write(
        sb.project.join(format!("{bin}.c")),
        &std::fs::read_to_string(&path).unwrap(),
    );
    let o = sb.host_sh(&format!(
        "cd {} && cc -O1 -Wall -pthread -o {bin} {bin}.c",
        sb.project.display()
    ));
    if !o.status.success() {
        skip(
            Lack::Setup,
            &format!("cannot build the {bin} helper: {}", stderr(&o)),
        );
    }
    o.status.success()
}

/// Whether Open MPI's compiler is there (skipped, and said, if not).
fn mpicc() -> bool {
    let there = std::path::Path::new("/usr/bin/mpicc").exists();
    if !there {
        skip(
            Lack::Setup,
            "no mpicc (apt-get install openmpi-bin libopenmpi-dev)",
        );
    }
    there
}

fn job_id(text: &str) -> String {
    text.split_whitespace()
        .last()
        .expect("a job id")
        .trim()
        .to_string()
}

#[test]
fn sbatch_runs_the_script_jailed_and_output_lands_in_the_project() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::with_secrets("slurm-batch");
    let name = uniq("batch");
    let _c = cleanup(&sb, &[&name]);
    // A directory visible read-only: writing there must fail in the job.
    let shared = sb.root.join("shared");
    sb.mkdir(&shared);
    sb.write(
        sb.project.join("job.sh"),
        &format!(
            "#!/bin/sh\n#SBATCH --job-name={name}\n#SBATCH -o out/%x-%j.log\n\
             echo \"args: $*\"\n\
             echo \"in jail: $JAIL job $SLURM_JOB_ID\"\n\
             cat {home}/.ssh/id_ed25519 2>/dev/null && echo SECRET-READ || echo secret-hidden\n\
             echo x > {shared}/planted 2>/dev/null && echo OUTSIDE-WRITTEN || echo outside-refused\n\
             echo done > result.txt\n",
            home = sb.home.display(),
            shared = shared.display()
        ),
    );
    sb.mkdir(sb.project.join("out"));
    let o = sb.jail(&[
        "--ro",
        shared.to_str().unwrap(),
        "--",
        "sbatch",
        "job.sh",
        "a1",
        "b 2",
    ]);
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.starts_with("Submitted batch job "), "{out}");
    let id = job_id(&out);
    let info = wait_done(&sb, &id);
    assert!(info.contains("JobState=COMPLETED"), "{info}");
    let log = std::fs::read_to_string(sb.project.join(format!("out/{name}-{id}.log")))
        .unwrap_or_else(|e| panic!("no output file: {e}; {info}"));
    assert!(log.contains("args: a1 b 2"), "{log}");
    assert!(log.contains(&format!("in jail: 1 job {id}")), "{log}");
    assert!(
        log.contains("secret-hidden"),
        "the job read a hidden file: {log}"
    );
    assert!(log.contains("outside-refused"), "{log}");
    assert!(
        !shared.join("planted").exists(),
        "the job wrote outside the project"
    );
    assert_eq!(
        std::fs::read_to_string(sb.project.join("result.txt")).unwrap(),
        "done\n"
    );

    // Without the jail the same job reads the secret: it is the jail that
    // stops it.
    let o = sb.host_sh(&format!(
        "sbatch --wait -J {name} -o plain.log --wrap 'cat {}/.ssh/id_ed25519' >/dev/null; cat plain.log",
        sb.home.display()
    ));
    assert!(stdout(&o).contains("FAKE-SSH-KEY"), "{}", stdout(&o));
}

#[test]
fn srun_streams_reads_stdin_and_returns_the_status() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::new("slurm-srun");
    let name = uniq("srun");
    let _c = cleanup(&sb, &[&name]);
    let o = jailed(
        &sb,
        &format!(
            "echo piped | srun -J {name} cat; echo rc=$?; \
             srun -J {name} sh -c 'exit 7'; echo rc=$?; \
             srun -J {name} -n2 -o 'task-%t.txt' sh -c 'echo I am $SLURM_PROCID'; echo rc=$?; \
             echo from-file > in.txt; echo not-this | srun -J {name} -i in.txt cat; \
             srun -J {name} -o both.txt sh -c 'echo out; echo err >&2'"
        ),
    );
    assert!(stdout(&o).contains("from-file\n"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("not-this"), "{}", stdout(&o));
    assert_eq!(
        std::fs::read_to_string(sb.project.join("both.txt")).unwrap(),
        "out\nerr\n",
        "stderr follows stdout into the file"
    );
    let out = stdout(&o);
    assert!(out.contains("piped\nrc=0\n"), "{out}\n{}", stderr(&o));
    assert!(out.contains("rc=7\n"), "{out}");
    assert!(out.contains("rc=0\n"), "{out}");
    for t in 0..2 {
        let f = std::fs::read_to_string(sb.project.join(format!("task-{t}.txt"))).unwrap();
        assert_eq!(f, format!("I am {t}\n"));
    }

    // Output streams while the step runs: the first line arrives long
    // before the step ends.
    let mut child = sb
        .jail_cmd(&[
            "--",
            "srun",
            "-J",
            &name,
            "sh",
            "-c",
            "echo first; sleep 8; echo second",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut r = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let first_at = start.elapsed();
    assert_eq!(line, "first\n");
    let mut rest = String::new();
    r.read_to_string(&mut rest).unwrap();
    let total = start.elapsed();
    assert_eq!(rest, "second\n");
    assert!(child.wait().unwrap().success());
    assert!(
        total - first_at >= Duration::from_secs(6),
        "not streamed: first line after {first_at:?}, end after {total:?}"
    );
}

#[test]
fn a_step_longer_than_a_minute_is_not_cut() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::new("slurm-long");
    let name = uniq("long");
    let _c = cleanup(&sb, &[&name]);
    let start = Instant::now();
    let o = jailed(&sb, &format!("srun -J {name} sh -c 'sleep 65; echo woke'"));
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "woke\n");
    assert!(start.elapsed() >= Duration::from_secs(65));
}

fn spawn_jail(sb: &Sandbox, args: &[&str]) -> Child {
    sb.jail_cmd(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the job named `name` runs; returns its id.
fn running(sb: &Sandbox, name: &str) -> String {
    let start = Instant::now();
    loop {
        let o = sb.host_sh(&format!("squeue -h --name={name} -t R -o %A"));
        let id = stdout(&o).trim().to_string();
        if !id.is_empty() {
            return id;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name} never ran"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn gone(sb: &Sandbox, name: &str) -> bool {
    let start = Instant::now();
    loop {
        let o = sb.host_sh(&format!("squeue -h --name={name} -o %A"));
        if stdout(&o).trim().is_empty() {
            return true;
        }
        if start.elapsed() > Duration::from_secs(30) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn ctrl_c_reaches_the_step() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::new("slurm-int");
    let name = uniq("int");
    let _c = cleanup(&sb, &[&name]);
    let mut child = spawn_jail(&sb, &["--", "srun", "-J", &name, "sleep", "120"]);
    running(&sb, &name);
    // The job runs before its step does; srun answers Ctrl-C by its own
    // rule only once the step has started.
    let start = Instant::now();
    while stdout(&sb.host_sh(&format!("squeue -h -s --name={name} -o %i")))
        .trim()
        .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the step never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // srun's own rule: one Ctrl-C reports, a second within a second aborts.
    let pid = child.id() as libc::pid_t;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let start = Instant::now();
    let st = child.wait().unwrap();
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(st.code(), Some(130), "srun's status after Ctrl-C");
    assert!(gone(&sb, &name), "the step still runs");
}

#[test]
fn scancel_cancels_the_projects_job() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::new("slurm-cancel");
    let name = uniq("cancel");
    let _c = cleanup(&sb, &[&name]);
    let o = jailed(
        &sb,
        &format!("sbatch --parsable -J {name} -o /dev/null --wrap 'sleep 300'"),
    );
    assert_code(&o, 0);
    let id = stdout(&o).trim().to_string();
    running(&sb, &name);
    let o = jailed(
        &sb,
        &format!("squeue -h -o '%i %j'; scancel {id}; echo rc=$?"),
    );
    assert!(
        stdout(&o).contains(&format!("{id} {name}")),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("rc=0"), "{}", stdout(&o));
    let info = wait_done(&sb, &id);
    assert!(info.contains("JobState=CANCELLED"), "{info}");
}

/// What the real command prints for a job that does not exist, with that
/// job's number written in.
fn native_for_missing(sb: &Sandbox, cmd: &str, id: &str) -> (String, String, Option<i32>) {
    let missing = (1u64 << 26).to_string();
    let o = sb.host_sh(&cmd.replace("ID", &missing));
    (
        stdout(&o).replace(&missing, id),
        stderr(&o).replace(&missing, id),
        o.status.code(),
    )
}

#[test]
fn another_job_of_the_user_looks_like_no_job_at_all() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::new("slurm-scope");
    let name = uniq("foreign");
    let _c = cleanup(&sb, &[&name]);
    // The same user submits outside the jail.
    let o = sb.host_sh(&format!(
        "sbatch --parsable -J {name} -o /dev/null --wrap 'sleep 300'"
    ));
    let id = stdout(&o).trim().to_string();
    assert!(!id.is_empty(), "{}", stderr(&o));
    running(&sb, &name);
    for cmd in [
        "squeue -j ID",
        "squeue -h -j ID,ID",
        "scontrol show job ID",
        "scancel ID",
        "scancel -v ID",
        "sacct -n -j ID",
        "scontrol hold ID",
    ] {
        let inside = jailed(&sb, &cmd.replace("ID", &id));
        let (out, err, code) = native_for_missing(&sb, cmd, &id);
        assert_eq!(
            (stdout(&inside), stderr(&inside), inside.status.code()),
            (out, err, code),
            "{cmd}"
        );
    }
    // Listings leave it out; it still runs, untouched.
    let o = jailed(
        &sb,
        "squeue -h; scontrol show job; scancel --me; sacct -n -X",
    );
    assert!(!stdout(&o).contains(&name), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("No jobs in the system"),
        "{}",
        stdout(&o)
    );
    let o = sb.host_sh(&format!("squeue -h -j {id} -o %T"));
    assert_eq!(stdout(&o).trim(), "RUNNING");
}

#[test]
fn every_refusal_rule_holds_end_to_end() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::with_secrets("slurm-refuse");
    let name = uniq("refused");
    let _c = cleanup(&sb, &[&name]);
    let home = sb.home.display().to_string();
    let refusals: Vec<(String, &str)> = vec![
        ("--uid=0".into(), "--uid=0"),
        ("--gid=0".into(), "--gid=0"),
        ("--get-user-env".into(), "--get-user-env"),
        ("--chdir=/etc".into(), "--chdir=/etc"),
        ("-D /tmp".into(), "-D /tmp"),
        ("--export=ALL,BASH_ENV=x".into(), "--export=ALL,BASH_ENV=x"),
        (
            "--export=LD_PRELOAD=/x.so".into(),
            "--export=LD_PRELOAD=/x.so",
        ),
        ("--export=ENV=x".into(), "--export=ENV=x"),
        (
            "--export=PROMPT_COMMAND=x".into(),
            "--export=PROMPT_COMMAND=x",
        ),
        ("--export-file=x".into(), "--export-file=x"),
        ("--container=x".into(), "--container=x"),
        (format!("-o {home}/.bashrc"), "-o "),
        (format!("--error={home}/x"), "--error="),
        (format!("-i {home}/.ssh/id_ed25519"), "-i "),
        ("--mail-user=a@example.com".into(), "--mail-user="),
        ("--nodefile=x".into(), "--nodefile=x"),
        ("-M other".into(), "-M other"),
        ("--bbf=x".into(), "--bbf=x"),
    ];
    let mut script = String::new();
    for (i, (opt, _)) in refusals.iter().enumerate() {
        // The option on the command line, then as a directive smuggled
        // behind a harmless short flag.
        script.push_str(&format!(
            "sbatch -J {name} {opt} --wrap true 2>>cli.err; echo \"cli {i} $?\" >>codes\n\
             printf '#!/bin/sh\\n#SBATCH -t 5 {opt}\\ntrue\\n' > d{i}.sh\n\
             sbatch -J {name} d{i}.sh 2>>dir.err; echo \"dir {i} $?\" >>codes\n"
        ));
    }
    for (opt, shown) in [
        ("--prolog=x", "--prolog=x"),
        ("--task-epilog=x", "--task-epilog=x"),
        ("--multi-prog", "--multi-prog"),
        ("--bcast=/tmp/x", "--bcast=/tmp/x"),
        ("--pty", "--pty"),
    ] {
        script.push_str(&format!(
            "srun -J {name} {opt} true 2>>srun.err; echo \"srun {shown} $?\" >>codes\n"
        ));
    }
    script.push_str("salloc -J x 2>>srun.err; echo \"salloc $?\" >>codes\n");
    let o = jailed(&sb, &script);
    assert_code(&o, 0);
    let codes = std::fs::read_to_string(sb.project.join("codes")).unwrap();
    for line in codes.lines() {
        assert!(
            line.ends_with(" 1"),
            "not refused with status 1: {line}\n{codes}"
        );
    }
    assert_eq!(codes.lines().count(), refusals.len() * 2 + 6);
    let cli = std::fs::read_to_string(sb.project.join("cli.err")).unwrap();
    let dir = std::fs::read_to_string(sb.project.join("dir.err")).unwrap();
    let srun = std::fs::read_to_string(sb.project.join("srun.err")).unwrap();
    for (text, n) in [(&cli, refusals.len()), (&dir, refusals.len()), (&srun, 6)] {
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), n, "one line per refusal:\n{text}");
        for l in lines {
            assert!(l.starts_with("jail: slurm: refused "), "{l}");
            assert!(l.contains(": "), "{l}");
        }
    }
    for (opt, shown) in &refusals {
        assert!(cli.contains(&format!("refused {shown}")), "{opt}:\n{cli}");
        assert!(
            dir.contains(&format!("refused #SBATCH {shown}")),
            "{opt}:\n{dir}"
        );
    }
    // Nothing was submitted.
    let o = sb.host_sh(&format!(
        "squeue -h --name={name}; sacct -n -X --name={name}"
    ));
    assert_eq!(stdout(&o).trim(), "", "a refused job ran");
}

#[test]
fn munge_and_the_real_commands_are_unusable_inside() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::new("slurm-munge");
    // With the host's network, slurmctld is reachable: only munge is not.
    let o = sb.jail_sh(
        &["--net", "host"],
        "ls /run/munge/munge.socket.2 2>&1; ls /etc/munge/munge.key 2>&1; \
         /usr/bin/sbatch --wrap true 2>&1; echo rc=$?; /usr/bin/squeue 2>&1; echo rc=$?; \
         echo PATH=$PATH; command -v sbatch",
    );
    let out = stdout(&o);
    assert!(
        out.contains("munge.socket.2': No such file or directory"),
        "{out}"
    );
    assert!(
        out.contains("munge.key': No such file or directory"),
        "{out}"
    );
    assert_eq!(
        out.matches("rc=1").count(),
        2,
        "the real commands cannot authenticate: {out}"
    );
    assert!(out.contains("Munge encode failed"), "{out}");
    assert!(out.contains("PATH=/run/jail/bin:"), "{out}");
    assert!(out.trim_end().ends_with("/run/jail/bin/sbatch"), "{out}");
    // Outside the jail the same user reaches munge (the jail hides it).
    let o = sb.host_sh("ls /run/munge/munge.socket.2");
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn nothing_is_left_behind_when_the_jail_dies() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::new("slurm-leftover");
    let name = uniq("left");
    let _c = cleanup(&sb, &[&name]);
    let mut child = spawn_jail(
        &sb,
        &["--", "sh", "-c", &format!("srun -J {name} sleep 300")],
    );
    running(&sb, &name);
    let before = descendants(child.id());
    assert!(
        before.iter().any(|(_, c)| c.contains("__outside slurm")),
        "no chaperon: {before:?}"
    );
    assert!(
        before.iter().any(|(_, c)| c.starts_with("srun")),
        "{before:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(gone(&sb, &name), "the step outlived the jail");
    let start = Instant::now();
    loop {
        let left: Vec<&(u32, String)> = before.iter().filter(|(p, c)| alive(*p, c)).collect();
        if left.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "left behind: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn proc_cmd(pid: u32) -> Option<String> {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        String::from_utf8_lossy(&cmd)
            .replace('\0', " ")
            .trim()
            .to_string(),
    )
}

/// Live (not zombie) and still the same program.
fn alive(pid: u32, cmd: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().next());
    state != Some("Z") && proc_cmd(pid).as_deref() == Some(cmd)
}

/// Every process below `root` (pid, command line).
fn descendants(root: u32) -> Vec<(u32, String)> {
    let mut parent = std::collections::HashMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pp) = ppid {
            parent.insert(pid, pp);
        }
    }
    let below = |mut p: u32| loop {
        match parent.get(&p) {
            Some(&pp) if pp == root => return true,
            Some(&pp) if pp > 1 => p = pp,
            _ => return false,
        }
    };
    parent
        .keys()
        .filter(|&&p| below(p))
        .filter_map(|&p| Some((p, proc_cmd(p)?)))
        .collect()
}

#[test]
fn stubs_outside_a_jail_say_so() {
    let sb = Sandbox::new("slurm-nostub");
    let link = sb.root.join("sbatch");
    std::os::unix::fs::symlink(common::jail_bin(), &link).unwrap();
    let o = sb
        .as_user(link.as_os_str())
        .arg("--wrap=true")
        .output()
        .unwrap();
    assert_code(&o, 1);
    assert!(
        stderr(&o).starts_with("jail: slurm: sbatch: no Slurm chaperon in this jail"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn doctor_says_whether_the_chaperon_applies() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::new("slurm-doctor");
    let o = sb.jail(&["doctor"]);
    let line = stdout(&o)
        .lines()
        .find(|l| l.trim_start().starts_with("Slurm"))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.contains(" ok ") && line.contains("the chaperon applies"),
        "{line}"
    );
    let Some(site) = SiteDir::new("[slurm]\nenabled = false\n") else {
        return;
    };
    let o = with_site(&sb, &site.dir, &["doctor"]);
    assert!(
        stdout(&o).contains("but jails do not submit jobs ([slurm] enabled = false, site "),
        "{}",
        stdout(&o)
    );
    // Off: no stubs, no chaperon; the real command is useless inside.
    let o = with_site(
        &sb,
        &site.dir,
        &["--", "sh", "-c", "command -v sbatch; sbatch --wrap true"],
    );
    assert!(stdout(&o).starts_with("/usr/bin/sbatch"), "{}", stdout(&o));
    assert_code(&o, 1);
}

#[test]
fn the_site_limits_partitions_and_the_number_of_jobs() {
    if !slurm() {
        return;
    }
    let Some(site) = SiteDir::new("[slurm]\npartitions = [\"debug\"]\nmax_jobs = 1\n") else {
        return;
    };
    let sb = Sandbox::new("slurm-site");
    let name = uniq("site");
    let _c = cleanup(&sb, &[&name]);
    let o = with_site(&sb, &site.dir, &["explain"]);
    assert!(
        stdout(&o).contains("partitions     debug"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("max_jobs       1"), "{}", stdout(&o));
    let run = |script: &str| with_site(&sb, &site.dir, &["--", "sh", "-c", script]);
    let o = run(&format!("sbatch -J {name} -p gpu --wrap true"));
    assert_code(&o, 1);
    assert!(
        stderr(&o).starts_with(
            "jail: slurm: refused -p gpu: gpu is not allowed here (allowed: debug; site "
        ),
        "{}",
        stderr(&o)
    );
    let o = run(&format!(
        "sbatch -J {name} -o /dev/null --wrap 'sleep 300' && sbatch -J {name} --wrap true"
    ));
    assert_code(&o, 1);
    assert!(
        stderr(&o).starts_with("jail: slurm: refused submission: 1 job(s) of this project are pending or running and at most 1 are allowed"),
        "{}",
        stderr(&o)
    );
    let o = sb.host_sh(&format!("squeue -h --name={name} -o %P"));
    assert_eq!(
        stdout(&o).trim(),
        "debug",
        "one job, in the allowed partition"
    );
}

#[test]
fn sbatch_wait_and_a_script_on_stdin() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::with_secrets("slurm-wait");
    let name = uniq("wait");
    let _c = cleanup(&sb, &[&name]);
    let o = jailed(
        &sb,
        &format!(
            "printf '#!/bin/sh\\necho from-stdin\\nexit 4\\n' | sbatch --wait -J {name} -o stdin.out; \
             echo rc=$?; \
             srun -J {name} cat {}/.ssh/id_ed25519; echo srun-rc=$?",
            sb.home.display()
        ),
    );
    let out = stdout(&o);
    assert!(
        out.contains("rc=4\n"),
        "sbatch --wait returns the job's status: {out}"
    );
    assert_eq!(
        std::fs::read_to_string(sb.project.join("stdin.out")).unwrap(),
        "from-stdin\n"
    );
    // A step is jailed too: the hidden key is not there.
    assert!(out.contains("srun-rc=1\n"), "{out}");
    assert!(!out.contains("FAKE-SSH-KEY"), "{out}");
    assert!(
        stderr(&o).contains("No such file or directory"),
        "{}",
        stderr(&o)
    );
}

/// slurmstepd opens output files as the user, outside any jail: a symlink
/// or a protected path in the project must not let a job write there.
#[test]
fn job_output_cannot_reach_outside_through_the_project() {
    if !slurm() {
        return;
    }
    let sb = Sandbox::new("slurm-plant");
    let name = uniq("plant");
    let _c = cleanup(&sb, &[&name]);
    sb.mkdir(sb.project.join(".git/hooks"));
    sb.write(sb.home.join(".bashrc"), "# mine\n");
    std::os::unix::fs::symlink(sb.home.join(".bashrc"), sb.project.join("out.log")).unwrap();
    let submit = |opts: &str| {
        let o = jailed(
            &sb,
            &format!("sbatch --parsable -J {name} {opts} --wrap 'echo touch pwned'"),
        );
        assert_code(&o, 0);
        wait_done(&sb, stdout(&o).trim())
    };
    let info = submit("-o .git/hooks/post-checkout");
    assert!(info.contains("JobState=FAILED"), "{info}");
    assert!(
        !sb.project.join(".git/hooks/post-checkout").exists(),
        "a hook was planted"
    );
    // ~/.bashrc is read-only in the jail: the job cannot even start.
    let info = submit("-o out.log");
    assert!(info.contains("JobState=FAILED"), "{info}");
    assert_eq!(
        std::fs::read_to_string(sb.home.join(".bashrc")).unwrap(),
        "# mine\n",
        "the job wrote through the symlink"
    );
    // Without the jail, Slurm does both: the attack is real.
    let o = sb.host_sh(&format!(
        "sbatch --wait -J {name} -o out.log --wrap 'echo touch pwned' >/dev/null; \
         sbatch --wait -J {name} -o .git/hooks/post-checkout --wrap 'echo touch pwned' >/dev/null; \
         cat {}/.bashrc .git/hooks/post-checkout",
        sb.home.display()
    ));
    // (slurmstepd truncated ~/.bashrc through the symlink.)
    assert_eq!(stdout(&o), "touch pwned\ntouch pwned\n");
}

/// The cluster's compute nodes (names), when it has at least two. Without
/// them the multi-node tests are skipped, except under CI (CI=true), where
/// .ci/run starts two (LOCAL_SLURM_NODES=2).
fn two_nodes(sb: &Sandbox) -> Option<Vec<String>> {
    if !slurm() {
        return None;
    }
    let o = sb.host_sh("sinfo -h -N -o %N");
    let mut nodes: Vec<String> = stdout(&o).split_whitespace().map(String::from).collect();
    nodes.sort();
    nodes.dedup();
    if nodes.len() >= 2 {
        return Some(nodes);
    }
    skip(
        Lack::Setup,
        &format!(
            "the cluster has {} node(s) (LOCAL_SLURM_NODES=2 .ci/slurm/start-local-slurm.sh)",
            nodes.len()
        ),
    );
    None
}

/// What each task checks on its node, one line per check, prefixed with
/// its rank.
fn task_probe(sb: &Sandbox, outside: &std::path::Path) -> String {
    format!(
        "r=$SLURM_PROCID; h=$(hostname); \
         echo \"$r host $h jail=$JAIL\"; \
         cat /etc/munge/munge.key >/dev/null 2>&1 && echo \"$r MUNGE-KEY-READ\" || echo \"$r munge-key-hidden\"; \
         test -e /run/munge/munge.socket.2 && echo \"$r MUNGE-SOCKET\" || echo \"$r munge-socket-hidden\"; \
         cat {home}/.ssh/id_ed25519 2>/dev/null && echo \"$r SECRET-READ\" || echo \"$r secret-hidden\"; \
         cat {home}/other-project/notes.txt 2>/dev/null && echo \"$r OTHER-READ\" || echo \"$r other-hidden\"; \
         test -d {outside} && echo \"$r outside-visible\"; \
         echo x > {outside}/planted-$h 2>/dev/null && echo \"$r OUTSIDE-WRITTEN\" || echo \"$r outside-refused\"; \
         echo $h > from-$h && echo \"$r project-written\"",
        home = sb.home.display(),
        outside = outside.display(),
    )
}

/// Checks the probe's lines for `ranks` tasks spread over `nodes`.
fn check_probe(out: &str, ranks: usize, nodes: &[String], sb: &Sandbox) {
    let mut seen = std::collections::BTreeSet::new();
    for r in 0..ranks {
        let host = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{r} host ")))
            .unwrap_or_else(|| panic!("rank {r} did not run: {out}"));
        let (h, jail) = host.split_once(' ').unwrap_or((host, ""));
        assert_eq!(jail, "jail=1", "rank {r} not jailed: {out}");
        seen.insert(h.to_string());
        for want in [
            "munge-key-hidden",
            "munge-socket-hidden",
            "secret-hidden",
            "other-hidden",
            "outside-visible",
            "outside-refused",
            "project-written",
        ] {
            assert!(
                out.lines().any(|l| l == format!("{r} {want}")),
                "rank {r} on {h}: no '{want}': {out}"
            );
        }
        assert_eq!(
            std::fs::read_to_string(sb.project.join(format!("from-{h}"))).unwrap_or_default(),
            format!("{h}\n")
        );
    }
    let want: std::collections::BTreeSet<String> = nodes[..2].iter().cloned().collect();
    assert_eq!(seen, want, "tasks did not run on both nodes: {out}");
}

#[test]
fn srun_on_two_nodes_runs_each_task_jailed_on_its_node() {
    let sb = Sandbox::with_secrets("slurm-2n-srun");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    let name = uniq("2nsrun");
    let _c = cleanup(&sb, &[&name]);
    let outside = sb.root.join("outside");
    sb.mkdir(&outside);
    let w = format!("-w {},{}", nodes[0], nodes[1]);
    // The directory outside is visible read-only in the jail (and so in
    // each task's): writing there must fail on every node.
    let o = sb.jail_sh(
        &["--ro", outside.to_str().unwrap()],
        &format!(
            "srun -J {name} -N2 {w} hostname | sort; echo rc=$?; \
             srun -J {name} -N2 -n4 {w} sh -c '{}'",
            task_probe(&sb, &outside).replace('\'', "'\\''")
        ),
    );
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!("{}\n{}\nrc=0\n", nodes[0], nodes[1])),
        "srun -N2 hostname: {out}\n{}",
        stderr(&o)
    );
    check_probe(&out, 4, &nodes, &sb);
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "a task wrote outside the project"
    );
    // Without the jail, the same step on the same nodes reads the key and
    // writes outside: it is the jail on each node that stops it.
    let o = sb.host_sh(&format!(
        "cd {} && srun -J {name} -N2 -n2 {w} sh -c '{}'",
        sb.project.display(),
        task_probe(&sb, &outside).replace('\'', "'\\''")
    ));
    let out = stdout(&o);
    assert!(out.contains("0 SECRET-READ"), "{out}");
    assert!(out.contains("1 SECRET-READ"), "{out}");
    assert!(out.contains("OUTSIDE-WRITTEN"), "{out}");

    // Another user's world-readable file in /home: readable on the nodes
    // without the jail, absent in every task's.
    if !user().switch {
        return;
    }
    let other = std::path::PathBuf::from(format!("/home/jt-other-{}", std::process::id()));
    let _gone = BinDir(other.clone());
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "OTHER-USER\n").unwrap();
    let _ = std::process::Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&other)
        .status();
    let step = format!("srun -J {name} -N2 {w} cat {}/notes.txt", other.display());
    let o = sb.host_sh(&format!("cd {} && {step}", sb.project.display()));
    assert_eq!(stdout(&o), "OTHER-USER\nOTHER-USER\n", "{}", stderr(&o));
    let o = jailed(&sb, &step);
    assert_eq!(stdout(&o), "", "another user's file in a task");
    assert_eq!(
        stderr(&o).matches("No such file or directory").count(),
        2,
        "{}",
        stderr(&o)
    );
}

#[test]
fn sbatch_on_two_nodes_runs_its_steps_jailed_on_both() {
    let sb = Sandbox::with_secrets("slurm-2n-batch");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    let name = uniq("2nbatch");
    let _c = cleanup(&sb, &[&name]);
    let outside = sb.root.join("outside");
    sb.mkdir(&outside);
    sb.write(
        sb.project.join("job.sh"),
        &format!(
            "#!/bin/sh\n#SBATCH -N2 -n4 -w {},{}\n#SBATCH -o job-%j.out\n\
             echo \"batch on $(hostname) nodes $SLURM_JOB_NUM_NODES\"\n\
             srun -n2 --ntasks-per-node=1 hostname | sort | sed 's/^/step: /'\n\
             srun -n4 sh -c '{}'\n\
             echo \"batch end $?\"\n",
            nodes[0],
            nodes[1],
            task_probe(&sb, &outside).replace('\'', "'\\''")
        ),
    );
    let o = sb.jail_sh(
        &["--ro", outside.to_str().unwrap()],
        &format!("sbatch --parsable -J {name} job.sh"),
    );
    assert_code(&o, 0);
    let id = stdout(&o).trim().to_string();
    let info = wait_done(&sb, &id);
    assert!(info.contains("JobState=COMPLETED"), "{info}");
    let log = std::fs::read_to_string(sb.project.join(format!("job-{id}.out")))
        .unwrap_or_else(|e| panic!("no output file: {e}; {info}"));
    assert!(
        log.contains(&format!(
            "nodes 2\nstep: {}\nstep: {}\n",
            nodes[0], nodes[1]
        )),
        "{log}"
    );
    assert!(log.contains("batch end 0"), "{log}");
    check_probe(&log, 4, &nodes, &sb);
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0, "{log}");
}

/// A PMI-2 client (the wire protocol Slurm's `--mpi=pmi2` serves on the
/// task's `PMI_FD`) that asks for a program to be started (`spawn`):
/// srun, outside any jail, would start it on the node. It writes MARKER.
const PMI_SPAWN: &str = r#"import os, sys, time, signal
signal.alarm(20)
fd = int(os.environ["PMI_FD"])
os.write(fd, b"cmd=init pmi_version=2 pmi_subversion=0\n")
os.read(fd, 1024)
def send(body):
    os.write(fd, b"%-6d" % len(body) + body)
    n = int(os.read(fd, 6).decode().strip())
    return os.read(fd, n)
send(b"cmd=fullinit;pmijobid=x;pmirank=0;threaded=FALSE;")
cmd = "grep -E 'Seccomp:' /proc/self/status > " + sys.argv[1]
send(b"cmd=spawn;ncmds=1;preputcount=0;subcmd=/bin/sh;maxprocs=1;argc=2;argv0=-c;argv1=" + cmd.encode() + b";")
time.sleep(5)
"#;

/// PMI-2 (`--mpi=pmi2`, and PMI-1 over it) lets a task have srun start
/// any program on the nodes, outside any jail: it is refused, by the
/// chaperon when asked for and by the job launcher on the node when the
/// step gets it anyway (the user's SLURM_MPI_TYPE, a site's MpiDefault),
/// before the task runs.
#[test]
fn pmi2_which_starts_programs_outside_the_jail_is_refused() {
    let sb = Sandbox::new("slurm-pmi2");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    let name = uniq("pmi2");
    let _c = cleanup(&sb, &[&name]);
    sb.write(sb.project.join("spawn.py"), PMI_SPAWN);
    let marker = sb.project.join("spawned");
    // The attack, without a jail: srun starts the program it is asked to
    // (in an allocation with room for it).
    let step = format!(
        "srun -J {name} -n1 -w {} --mpi=pmi2 --overlap python3 spawn.py {}",
        nodes[0],
        marker.display()
    );
    let o = sb.host_sh(&format!(
        "cd {} && timeout 60 sbatch --wait -J {name} -n2 -N1 -w {} -o /dev/null --wrap '{step}'",
        sb.project.display(),
        nodes[0]
    ));
    let start = Instant::now();
    while !marker.exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(marker.exists(), "{}{}", stdout(&o), stderr(&o));
    std::fs::remove_file(&marker).unwrap();
    // Asked for inside the jail: refused.
    let o = jailed(&sb, &step);
    assert_code(&o, 1);
    assert!(
        stderr(&o).starts_with("jail: slurm: refused --mpi=pmi2: "),
        "{}",
        stderr(&o)
    );
    // Given by the environment: the task never runs.
    let o = sb
        .jail_cmd(&["--", "sh", "-c", &step.replace("--mpi=pmi2 ", "")])
        .env("SLURM_MPI_TYPE", "pmi2")
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("jail: slurm job: the step's MPI plugin is pmi2"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(!marker.exists(), "the program ran outside the jail");
}

#[test]
fn arrays_and_dependencies_on_the_projects_own_jobs_run_on_both_nodes() {
    let sb = Sandbox::new("slurm-2n-array");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    let name = uniq("2narray");
    let _c = cleanup(&sb, &[&name]);
    let w = format!("{},{}", nodes[0], nodes[1]);
    // Each array task spans both nodes; the dependent job runs only after
    // all of them succeeded, and reads what they wrote.
    sb.write(
        sb.project.join("task.sh"),
        "#!/bin/sh\nsrun hostname | sort > \"part-$SLURM_ARRAY_TASK_ID\"\n",
    );
    sb.write(
        sb.project.join("after.sh"),
        "#!/bin/sh\ncat part-0 part-1 part-2 > joined\n",
    );
    let o = jailed(
        &sb,
        &format!(
            "a=$(sbatch --parsable -J {name} -N2 -w {w} --array=0-2 -o 'arr-%A_%a.out' task.sh) || exit 1; \
             echo array=$a; \
             sbatch --parsable -J {name} -d afterok:$a -o after.out after.sh"
        ),
    );
    assert_code(&o, 0);
    let out = stdout(&o);
    let array = out
        .lines()
        .find_map(|l| l.strip_prefix("array="))
        .expect("array id")
        .to_string();
    let after = out.lines().last().unwrap_or_default().trim().to_string();
    let info = wait_done(&sb, &after);
    assert!(info.contains("JobState=COMPLETED"), "{info}");
    let want = format!("{}\n{}\n", nodes[0], nodes[1]);
    assert_eq!(
        std::fs::read_to_string(sb.project.join("joined")).unwrap_or_default(),
        want.repeat(3),
        "array {array}"
    );
    for t in 0..3 {
        assert!(
            sb.project.join(format!("arr-{array}_{t}.out")).exists(),
            "array task {t}'s output file"
        );
    }

    // A dependency on a job that is not the project's is refused, and
    // nothing is submitted.
    let o = sb.host_sh(&format!(
        "sbatch --parsable -J {name} -o /dev/null --wrap 'sleep 300'"
    ));
    let foreign = stdout(&o).trim().to_string();
    assert!(!foreign.is_empty(), "{}", stderr(&o));
    let o = jailed(
        &sb,
        &format!("sbatch -J {name}-dep -d afterok:{foreign} --wrap true"),
    );
    assert_code(&o, 1);
    assert_eq!(
        stderr(&o),
        format!(
            "jail: slurm: refused -d afterok:{foreign}: job {foreign} is not one of this project's jobs\n"
        )
    );
    let o = sb.host_sh(&format!("squeue -h --name={name}-dep"));
    assert_eq!(stdout(&o).trim(), "");
}

/// Tries TCP to each `ADDR:PORT` argument; one line per target.
const REACH: &str = r#"import socket, sys, os
for t in sys.argv[1:]:
    a, p = t.rsplit(":", 1)
    try:
        socket.create_connection((a, int(p)), timeout=3).close()
        r = "open"
    except OSError as e:
        r = "closed " + type(e).__name__
    print(os.environ["SLURM_PROCID"], t, r, flush=True)
"#;

#[test]
fn a_task_keeps_its_jails_network_policy_on_every_node() {
    let sb = Sandbox::new("slurm-2n-net");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    let name = uniq("2nnet");
    let _c = cleanup(&sb, &[&name]);
    sb.write(sb.project.join("reach.py"), REACH);
    // The nodes' and the controller's addresses, as Slurm has them.
    let (addrs, ctl) = addresses(&sb);
    // Each rank tries the other node's slurmd and the controller.
    let targets = format!(
        "{}:6818 {}:6818 {ctl}:6817",
        node_addr(&addrs, &nodes[0]),
        node_addr(&addrs, &nodes[1])
    );
    let step = format!(
        "srun -J {name} -N2 -n2 -w {},{} python3 reach.py {targets}",
        nodes[0], nodes[1]
    );
    let o = sb.jail_sh(&[], &step);
    let inside = stdout(&o);
    let o = sb.jail(&["explain"]);
    assert!(
        stdout(&o).contains("job network    none on every node: each task reaches no host"),
        "{}",
        stdout(&o)
    );
    let o = sb.host_sh(&format!("cd {} && {step}", sb.project.display()));
    let outside = stdout(&o);
    // Without the jail every target answers: it is the policy that stops
    // the ranks.
    assert_eq!(
        outside.matches(" open").count(),
        6,
        "{outside}{}",
        stderr(&o)
    );
    assert_eq!(inside.lines().count(), 6, "{inside}");
    assert_eq!(inside.matches(" closed ").count(), 6, "{inside}");
    // A site that vouches for its compute nodes' network lets the tasks
    // use it (and says so in explain).
    let Some(site) = SiteDir::new("[site]\nslurm_job_network = \"node\"\n") else {
        return;
    };
    let o = with_site(&sb, &site.dir, &["--", "sh", "-c", &step]);
    let node = stdout(&o);
    assert_eq!(node.matches(" open").count(), 6, "{node}{}", stderr(&o));
}

/// The nodes' and the controller's addresses, as Slurm has them:
/// (node address by name, controller address).
fn addresses(sb: &Sandbox) -> (Vec<(String, String)>, String) {
    let o = sb.host_sh("sinfo -h -N -o '%N %o'; scontrol show config");
    let text = stdout(&o);
    let nodes = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(n, a)| !n.is_empty() && a.parse::<std::net::IpAddr>().is_ok())
        .map(|(n, a)| (n.to_string(), a.trim().to_string()))
        .collect();
    let ctl = text
        .lines()
        .find(|l| l.starts_with("SlurmctldHost"))
        .and_then(|l| l.split_once('(')?.1.split_once(')'))
        .map(|(a, _)| a.to_string())
        .unwrap_or_else(|| panic!("no controller address: {text}"));
    (nodes, ctl)
}

/// `node`'s address in `addresses`' list.
fn node_addr(addrs: &[(String, String)], node: &str) -> String {
    addrs
        .iter()
        .find(|(n, _)| n == node)
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| panic!("no address of {node}: {addrs:?}"))
}

#[test]
fn under_cluster_networks_a_task_reaches_its_jobs_nodes_and_the_sites_networks_only() {
    let sb = Sandbox::new("slurm-2n-cluster");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    let name = uniq("2nclu");
    let _c = cleanup(&sb, &[&name]);
    sb.write(sb.project.join("reach.py"), REACH);
    let (addrs, ctl) = addresses(&sb);
    let addr = |n: &str| {
        addrs
            .iter()
            .find(|(m, _)| m == n)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("no address of {n}: {addrs:?}"))
    };
    let (a0, a1) = (addr(&nodes[0]), addr(&nodes[1]));
    // Each rank tries both nodes' slurmd (the job's allocation), the
    // controller (neither in the allocation nor a listed network) and
    // its own node's loopback.
    let targets = format!("{a0}:6818 {a1}:6818 {ctl}:6817 127.0.0.1:6818");
    let step = format!(
        "srun -J {name} -N2 -n2 -w {},{} python3 reach.py {targets}",
        nodes[0], nodes[1]
    );
    // Without the jail every remote target answers.
    let o = sb.host_sh(&format!("cd {} && {step}", sb.project.display()));
    let outside = stdout(&o);
    for t in [
        format!("{a0}:6818"),
        format!("{a1}:6818"),
        format!("{ctl}:6817"),
    ] {
        assert_eq!(
            outside.matches(&format!("{t} open")).count(),
            2,
            "{outside}{}",
            stderr(&o)
        );
    }
    let Some(site) = SiteDir::new(
        "[site]\nslurm_job_network = \"cluster\"\n[slurm]\ncluster_networks = [\"10.99.0.0/16\"]\n",
    ) else {
        return;
    };
    let o = with_site(&sb, &site.dir, &["explain"]);
    assert!(
        stdout(&o).contains(
            "job network    cluster: each task uses its node's network; it reaches the job's \
             own nodes and 10.99.0.0/16 (not loopback); nothing else (the policy: none)"
        ),
        "{}",
        stdout(&o)
    );
    let o = with_site(&sb, &site.dir, &["--", "sh", "-c", &step]);
    let inside = stdout(&o);
    let err = stderr(&o);
    assert_eq!(inside.lines().count(), 8, "{inside}{err}");
    for rank in ["0", "1"] {
        for t in [&a0, &a1] {
            assert!(
                inside.contains(&format!("{rank} {t}:6818 open\n")),
                "rank {rank} cannot reach {t}: {inside}{err}"
            );
        }
        assert!(
            inside.contains(&format!("{rank} {ctl}:6817 closed PermissionError\n")),
            "rank {rank} reached the controller: {inside}{err}"
        );
        assert!(
            inside.contains(&format!("{rank} 127.0.0.1:6818 closed PermissionError\n")),
            "rank {rank} reached loopback: {inside}{err}"
        );
    }
    assert!(
        err.contains(&format!(
            "jail: cluster network: refused a connection to {ctl}:6817: not a node of this job"
        )),
        "{err}"
    );
    // A site that lists the controller's network opens it too.
    let Some(site) = SiteDir::new(&format!(
        "[site]\nslurm_job_network = \"cluster\"\n[slurm]\ncluster_networks = [\"{ctl}/32\"]\n"
    )) else {
        return;
    };
    let o = with_site(&sb, &site.dir, &["--", "sh", "-c", &step]);
    let inside = stdout(&o);
    assert_eq!(
        inside.matches(&format!("{ctl}:6817 open")).count(),
        2,
        "{inside}{}",
        stderr(&o)
    );
    assert_eq!(
        inside.matches("127.0.0.1:6818 closed").count(),
        2,
        "{inside}"
    );
    // A batch job: its script's own jail and its steps get the rule (the
    // stubs reach the job's chaperon through the supervisor, fds and all).
    let Some(site) = SiteDir::new("[site]\nslurm_job_network = \"cluster\"\n") else {
        return;
    };
    sb.write(
        sb.project.join("batch.sh"),
        &format!(
            "#!/bin/sh\n#SBATCH -N2 -w {},{}\n#SBATCH -o batch.out\n\
             SLURM_PROCID=b python3 reach.py {a1}:6818 {ctl}:6817\n\
             srun -N2 -n2 python3 reach.py {a0}:6818 {a1}:6818 {ctl}:6817\n",
            nodes[0], nodes[1]
        ),
    );
    let o = with_site(
        &sb,
        &site.dir,
        &[
            "--",
            "sh",
            "-c",
            &format!("sbatch --wait -J {name} batch.sh >/dev/null; cat batch.out"),
        ],
    );
    let out = stdout(&o);
    assert!(
        out.contains(&format!("b {a1}:6818 open\n")),
        "{out}{}",
        stderr(&o)
    );
    assert!(
        out.contains(&format!("b {ctl}:6817 closed PermissionError\n")),
        "{out}"
    );
    for rank in ["0", "1"] {
        assert!(out.contains(&format!("{rank} {a0}:6818 open\n")), "{out}");
        assert!(out.contains(&format!("{rank} {a1}:6818 open\n")), "{out}");
        assert!(
            out.contains(&format!("{rank} {ctl}:6817 closed PermissionError\n")),
            "{out}"
        );
    }
}

/// An MPI ring: rank 0 sends a token round all ranks and back.
const RING_C: &str = r#"#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
    int rank, size, token = 0, len;
    char host[MPI_MAX_PROCESSOR_NAME];
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Get_processor_name(host, &len);
    if (rank == 0) {
        token = 1;
        MPI_Send(&token, 1, MPI_INT, 1 % size, 0, MPI_COMM_WORLD);
        MPI_Recv(&token, 1, MPI_INT, size - 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else {
        MPI_Recv(&token, 1, MPI_INT, rank - 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        token++;
        MPI_Send(&token, 1, MPI_INT, (rank + 1) % size, 0, MPI_COMM_WORLD);
    }
    printf("rank %d of %d on %s token %d\n", rank, size, host, token);
    MPI_Finalize();
    return 0;
}
"#;

/// Counts what reaches `ip` on a fresh port over TCP (connections) and UDP
/// (datagrams) until dropped: the denied side of the race test.
struct Counter {
    port: u16,
    tcp: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    udp: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Counter {
    fn new(ip: &str) -> Counter {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        use std::sync::Arc;
        let (tcp_l, udp_s) = (0..50)
            .find_map(|_| {
                let t = std::net::TcpListener::bind((ip, 0)).ok()?;
                let port = t.local_addr().ok()?.port();
                let u = std::net::UdpSocket::bind((ip, port)).ok()?;
                Some((t, u))
            })
            .expect("a TCP and UDP port on the controller side");
        let port = tcp_l.local_addr().unwrap().port();
        let (tcp, udp) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let stop = Arc::new(AtomicBool::new(false));
        tcp_l.set_nonblocking(true).unwrap();
        udp_s
            .set_read_timeout(Some(std::time::Duration::from_millis(50)))
            .unwrap();
        let (t, st) = (Arc::clone(&tcp), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match tcp_l.accept() {
                    Ok(_) => {
                        t.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
                }
            }
        });
        let (u, st) = (Arc::clone(&udp), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !st.load(Ordering::SeqCst) {
                if udp_s.recv(&mut buf).is_ok() {
                    u.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Counter {
            port,
            tcp,
            udp,
            stop,
        }
    }

    /// (connections, datagrams) so far.
    fn counts(&self) -> (usize, usize) {
        use std::sync::atomic::Ordering;
        // Let what is in flight arrive.
        std::thread::sleep(std::time::Duration::from_millis(300));
        (
            self.tcp.load(Ordering::SeqCst),
            self.udp.load(Ordering::SeqCst),
        )
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn under_cluster_networks_a_racing_thread_never_gets_a_denied_address_through() {
    let sb = Sandbox::new("slurm-2n-cluster-race");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    let name = uniq("2nrace");
    let _c = cleanup(&sb, &[&name]);
    if !build_helper(&sb, "cluster_race", "race") {
        return;
    }
    let (addrs, ctl) = addresses(&sb);
    let a0 = node_addr(&addrs, &nodes[0]);
    let run = |site: Option<&SiteDir>| {
        // The allowed side: the task's own listener on its node (an
        // address of the job's allocation); the denied side: fresh ports
        // on the controller's address (one per race), counting what
        // arrives.
        let denied = Counter::new(&ctl);
        let denied2 = Counter::new(&ctl);
        let allowed_port = 20000 + denied.port % 20000;
        let step = format!(
            "srun -J {name} -N1 -n1 -w {} ./race {a0} {allowed_port} {ctl} {} 1500 {}",
            nodes[0], denied.port, denied2.port
        );
        let o = match site {
            Some(site) => with_site(&sb, &site.dir, &["--", "sh", "-c", &step]),
            None => sb.host_sh(&format!("cd {} && {step}", sb.project.display())),
        };
        let (tcp, udp) = denied.counts();
        let (tcp2, _) = denied2.counts();
        eprintln!(
            "race ({}): {} tcp={tcp} udp={udp} fd-race tcp={tcp2}",
            if site.is_some() { "jailed" } else { "host" },
            stdout(&o).trim().replace('\n', "; ")
        );
        (stdout(&o), stderr(&o), tcp, udp, tcp2)
    };
    // Without the jail the flipping address wins often: the test can fail.
    let (out, err, tcp, udp, tcp2) = run(None);
    assert!(out.starts_with("allowed="), "{out}{err}");
    assert!(!out.starts_with("allowed=0 "), "{out}{err}");
    assert!(
        !out.lines().next().unwrap_or("").contains(" escaped=0 "),
        "{out}{err}"
    );
    assert!(out.contains("\nfd-race unix="), "{out}{err}");
    assert!(tcp > 0 && udp > 0, "tcp {tcp} udp {udp}: {out}{err}");
    assert!(
        tcp2 > 0,
        "the fd race never won without the jail: {out}{err}"
    );
    let Some(site) = SiteDir::new("[site]\nslurm_job_network = \"cluster\"\n") else {
        return;
    };
    let (out, err, tcp, udp, tcp2) = run(Some(&site));
    assert!(out.starts_with("allowed="), "{out}{err}");
    // The allowed address still works while the denied one never does.
    assert!(!out.starts_with("allowed=0 "), "{out}");
    assert!(out.contains(" escaped=0 "), "{out}");
    // A thread other than the main one connects as well.
    assert!(out.contains(" thread=1\n"), "{out}");
    assert_eq!((tcp, udp), (0, 0), "the denied side got traffic: {out}");
    // The fd race: the inet socket swapped onto the fd number of a unix
    // connect never reaches the denied address. (That pathname unix
    // sockets work, resolved in the jail's view, the batch job's stubs
    // show: they reach its chaperon so.)
    assert!(out.contains("\nfd-race unix="), "{out}{err}");
    assert_eq!(tcp2, 0, "the fd race got through: {out}");
    assert!(err.contains("jail: cluster network: refused"), "{err}");
}

#[test]
fn under_cluster_networks_a_signal_never_sends_the_same_bytes_twice() {
    // A send the supervisor performed, then restarted by the task after
    // an ordinary signal, was sent twice (tests/helpers/cluster_dup.c):
    // the task waits for the supervisor's answer killably only.
    let sb = Sandbox::new("slurm-2n-cluster-dup");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    let name = uniq("2ndup");
    let _c = cleanup(&sb, &[&name]);
    if !build_helper(&sb, "cluster_dup", "dup") {
        return;
    }
    let ip = node_addr(&addresses(&sb).0, &nodes[0]);
    let step = format!("srun -J {name} -N1 -n1 -w {} ./dup {ip}", nodes[0]);
    let Some(site) = SiteDir::new("[site]\nslurm_job_network = \"cluster\"\n") else {
        return;
    };
    let o = with_site(&sb, &site.dir, &["--", "sh", "-c", &step]);
    let out = stdout(&o);
    assert!(out.contains(" same"), "{out}{}", stderr(&o));
    assert!(out.contains("told sent=13107200 "), "{out}");
}

#[test]
fn under_cluster_networks_the_supervisor_survives_the_task_and_no_own_listener_takes_over() {
    // A control message whose length wraps the supervisor's arithmetic
    // aborted it (release builds); with its listener closed, a filter of
    // the task's own with a listener took the connects and let them run
    // to the controller (tests/helpers/cluster_poison.c).
    let sb = Sandbox::new("slurm-2n-cluster-poison");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    let name = uniq("2npois");
    let _c = cleanup(&sb, &[&name]);
    if !build_helper(&sb, "cluster_poison", "poison") {
        return;
    }
    let (_, ctl) = addresses(&sb);
    let step = format!("srun -J {name} -N1 -n1 -w {} ./poison {ctl} 6817", nodes[0]);
    // Without the jail, a listener of its own lets a connect run as asked.
    let o = sb.host_sh(&format!("cd {} && {step}", sb.project.display()));
    let out = stdout(&o);
    assert!(out.contains("denied=CONNECTED\n"), "{out}{}", stderr(&o));
    assert!(out.contains("listener=ok\nown=CONNECTED\n"), "{out}");
    let Some(site) = SiteDir::new("[site]\nslurm_job_network = \"cluster\"\n") else {
        return;
    };
    let o = with_site(&sb, &site.dir, &["--", "sh", "-c", &step]);
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(out.contains("denied=Permission denied\n"), "{out}{err}");
    // The malformed message is refused, and the supervisor still decides.
    assert!(out.contains("poison=-1 Invalid argument\n"), "{out}{err}");
    assert!(out.contains("after=Permission denied\n"), "{out}{err}");
    assert!(
        out.contains("listener=Operation not permitted\n"),
        "{out}{err}"
    );
    assert!(!out.contains("CONNECTED"), "{out}{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn under_cluster_networks_mpi_ranks_exchange_over_tcp_across_two_nodes() {
    let sb = Sandbox::new("slurm-2n-mpi-cluster");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    if !mpicc() {
        return;
    }
    let name = uniq("2nmpic");
    let _c = cleanup(&sb, &[&name]);
    sb.write(sb.project.join("ring.c"), RING_C);
    let script = format!(
        "test -x ring || mpicc -o ring ring.c || exit 9; \
         srun -J {name} -N2 -n4 -w {},{} --mpi=pmix ./ring",
        nodes[0], nodes[1]
    );
    let Some(site) = SiteDir::new("[site]\nslurm_job_network = \"cluster\"\n") else {
        return;
    };
    // The jail's own policy is `none`: only the rule lets ranks talk.
    let o = with_site(
        &sb,
        &site.dir,
        &["--net", "none", "--", "sh", "-c", &script],
    );
    let out = stdout(&o);
    assert_code(&o, 0);
    assert_eq!(out.lines().count(), 4, "{out}\n{}", stderr(&o));
    assert!(
        out.contains(&format!("rank 0 of 4 on {} token 4\n", nodes[0])),
        "{out}"
    );
    for n in &nodes[..2] {
        assert!(
            out.contains(&format!(" on {n} token ")),
            "no rank on {n}: {out}"
        );
    }
}

#[test]
fn an_mpi_program_built_in_the_jail_runs_its_ranks_jailed_on_both_nodes() {
    let sb = Sandbox::with_secrets("slurm-2n-mpi");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    if !mpicc() {
        return;
    }
    let name = uniq("2nmpi");
    let _c = cleanup(&sb, &[&name]);
    sb.write(sb.project.join("ring.c"), RING_C);
    // Ranks talk TCP to each other, so their network must reach the other
    // node: a jail on the host's network, or (below) any jail where the
    // site lets jobs use the nodes' network. PMIx, its client directory
    // and the ranks' session directories work inside each task's jail.
    let script = format!(
        "test -x ring || mpicc -o ring ring.c || exit 9; \
         srun -J {name} -N2 -n4 -w {},{} --mpi=pmix sh -c \
         'cat {}/.ssh/id_ed25519 2>/dev/null && exit 3; exec ./ring'",
        nodes[0],
        nodes[1],
        sb.home.display()
    );
    let check = |o: &Output| {
        let out = stdout(o);
        assert_code(o, 0);
        assert_eq!(out.lines().count(), 4, "{out}\n{}", stderr(o));
        // The token went round all four ranks.
        assert!(
            out.contains(&format!("rank 0 of 4 on {} token 4\n", nodes[0])),
            "{out}"
        );
        for n in &nodes[..2] {
            assert!(
                out.contains(&format!(" on {n} token ")),
                "no rank on {n}: {out}"
            );
        }
    };
    check(&sb.jail_sh(&["--net", "host"], &script));
    // The step's PMIx client directory, which slurmstepd deletes
    // recursively (as root) when the step ends, takes no link from a rank.
    let base = std::fs::read_to_string("/etc/slurm/mpi.conf")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("PMIxCliTmpDirBase=")
                    .map(String::from)
            })
        })
        .unwrap_or_else(|| "/tmp".into());
    let plant = format!(
        "srun -J {name} -n1 --mpi=pmix sh -c \
         'ln -s / {base}/spmix_appdir_$(id -u)_$SLURM_JOB_ID.$SLURM_STEP_ID/x 2>/dev/null \
          && echo PLANTED || echo refused'"
    );
    let o = sb.jail_sh(&["--net", "host"], &plant);
    assert_eq!(stdout(&o), "refused\n", "{}", stderr(&o));
    let o = sb.host_sh(&format!("cd {} && {plant}", sb.project.display()));
    assert_eq!(stdout(&o), "PLANTED\n", "{}", stderr(&o));
    // From inside `jail -p claude` (allowlist) with the site's rule.
    let Some(site) = SiteDir::new("[site]\nslurm_job_network = \"node\"\n") else {
        return;
    };
    let o = with_site(&sb, &site.dir, &["-p", "claude", "explain"]);
    assert!(
        stdout(&o).contains("job network    node: each task uses its compute node's network"),
        "{}",
        stdout(&o)
    );
    check(&with_site(
        &sb,
        &site.dir,
        &["-p", "claude", "--", "sh", "-c", &script],
    ));
    // mpirun inside a batch allocation, as the site's MPI normally runs
    // (its daemons start through srun, jailed; the ranks are theirs).
    sb.write(
        sb.project.join("mpirun.sh"),
        &format!(
            "#!/bin/sh\n#SBATCH -N2 -n4 -w {},{}\n#SBATCH -o mpirun.out\nmpirun ./ring\n",
            nodes[0], nodes[1]
        ),
    );
    let o = with_site(
        &sb,
        &site.dir,
        &[
            "-p",
            "claude",
            "--",
            "sh",
            "-c",
            &format!("sbatch --parsable -J {name} mpirun.sh"),
        ],
    );
    assert_code(&o, 0);
    let info = wait_done(&sb, stdout(&o).trim());
    assert!(info.contains("JobState=COMPLETED"), "{info}");
    let out = std::fs::read_to_string(sb.project.join("mpirun.out")).unwrap_or_default();
    assert!(
        out.contains(&format!("rank 0 of 4 on {} token 4\n", nodes[0])),
        "{out}"
    );
    assert!(out.contains(&format!(" on {} token ", nodes[1])), "{out}");
}

/// The ranks of one node share memory under `srun`: Open MPI's
/// shared-memory transport alone (`btl=self,vader`, no TCP) carries the
/// ring between two tasks on one node, each in its own jail. The step's
/// /dev/shm is its own on the node (not the host's), and gone after.
#[test]
fn ranks_on_one_node_share_memory_under_srun() {
    let sb = Sandbox::with_secrets("slurm-shm");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    if !mpicc() {
        return;
    }
    let name = uniq("shm");
    let _c = cleanup(&sb, &[&name]);
    sb.write(sb.project.join("ring.c"), RING_C);
    // A file of the user's in the host's /dev/shm: not in a task's.
    let host_file = format!("/dev/shm/jail-test-host-{}", std::process::id());
    let o = sb.host_sh(&format!("echo secret > {host_file}"));
    assert_code(&o, 0);
    // In the default policy (no network): PMIx's server, on the node's
    // loopback, is the one port a task reaches there.
    let script = format!(
        "test -x ring || mpicc -o ring ring.c || exit 9; \
         OMPI_MCA_btl=self,vader srun -J {name} -N1 -n2 -w {} --mpi=pmix sh -c \
         'test -e {host_file} && exit 4; \
          test $SLURM_LOCALID = 0 && echo step $SLURM_JOB_ID.$SLURM_STEP_ID; exec ./ring'",
        nodes[0]
    );
    let o = jailed(&sb, &script);
    let _ = std::fs::remove_file(&host_file);
    let out = stdout(&o);
    assert_code(&o, 0);
    assert!(
        out.contains(&format!("rank 0 of 2 on {} token 2\n", nodes[0]))
            && out.contains(&format!("rank 1 of 2 on {} token 2\n", nodes[0])),
        "{out}\n{}",
        stderr(&o)
    );
    // The last task of the step removed the step's directory.
    let step = out
        .lines()
        .find_map(|l| l.strip_prefix("step "))
        .unwrap_or_else(|| panic!("no step id: {out}"));
    let dir = format!("/dev/shm/jail-{}/{step}", user().uid);
    assert!(!std::path::Path::new(&dir).exists(), "{dir} is left");
}

/// Whatever a task leaves in the step's shared /dev/shm (a chain of
/// directories deeper than the launcher has file descriptors, directories
/// it made unreadable, its /dev/shm itself mode 000), the last task
/// removes it: it lives in the node's memory, outside the jail's limits.
#[test]
fn a_steps_shared_shm_is_removed_whatever_the_program_left() {
    let sb = Sandbox::new("slurm-shm-left");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    let name = uniq("shmleft");
    let _c = cleanup(&sb, &[&name]);
    sb.write(
        sb.project.join("leave.py"),
        "import os\n\
         print('step', os.environ['SLURM_JOB_ID'] + '.' + os.environ['SLURM_STEP_ID'])\n\
         os.chdir('/dev/shm')\n\
         os.mkdir('ro'); open('ro/f', 'w').write('x'); os.chmod('ro', 0o500)\n\
         os.mkdir('none'); os.mkdir('none/d'); os.chmod('none', 0)\n\
         for i in range(3000): os.mkdir('d'); os.chdir('d')\n\
         os.chmod('/dev/shm', 0)\n",
    );
    let script = format!("srun -J {name} -N1 -n1 -w {} python3 leave.py", nodes[0]);
    let o = jailed(&sb, &script);
    let out = stdout(&o);
    assert_code(&o, 0);
    let step = out
        .lines()
        .find_map(|l| l.strip_prefix("step "))
        .unwrap_or_else(|| panic!("no step id: {out}{}", stderr(&o)));
    let dir = format!("/dev/shm/jail-{}/{step}", user().uid);
    assert!(!std::path::Path::new(&dir).exists(), "{dir} is left");
    // A step whose tasks were killed before they could remove it (what
    // a program that ignores SIGTERM gets): the next step sweeps it.
    let killed = format!(
        "srun -J {name} -N1 -n1 -w {node} sh -c 'echo step $SLURM_JOB_ID.$SLURM_STEP_ID; \
         head -c 1000000 /dev/zero > /dev/shm/big; chmod 0 /dev/shm; trap \"\" TERM; \
         echo ready; sleep 120' > killed.out 2>&1 & \
         for i in $(seq 300); do grep -q ready killed.out && break; sleep 0.2; done; \
         scancel --name={name}; wait; cat killed.out; \
         srun -J {name} -N1 -n1 -w {node} true",
        node = nodes[0]
    );
    let o = jailed(&sb, &killed);
    let out = stdout(&o);
    let step = out
        .lines()
        .find_map(|l| l.strip_prefix("step "))
        .unwrap_or_else(|| panic!("no step id: {out}{}", stderr(&o)));
    let dir = format!("/dev/shm/jail-{}/{step}", user().uid);
    assert!(!std::path::Path::new(&dir).exists(), "{dir} is left");
}

/// The PMIx server's port is exposed from slurmstepd's own environment
/// only: a program that names another port of the node's loopback in
/// the variables it submits with (`PMIX_SERVER_URI41`) reaches nothing.
#[test]
fn a_forged_pmix_server_address_exposes_nothing() {
    let sb = Sandbox::new("slurm-pmix-forge");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    let name = uniq("forge");
    let _c = cleanup(&sb, &[&name]);
    sb.write(sb.project.join("reach.py"), REACH);
    // A service on node1's own loopback (what another user might run).
    let pidfile = format!("/run/local-slurm/slurmd-{}.pid", nodes[0]);
    let Ok(pid) = std::fs::read_to_string(&pidfile) else {
        skip(Lack::Setup, &format!("no {pidfile}: not the local cluster"));
        return;
    };
    let port = 20000 + std::process::id() % 20000;
    let mut server = std::process::Command::new("nsenter")
        .args(["-t", pid.trim(), "-n", "python3", "-c"])
        .arg(format!(
            "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
             s.bind(('127.0.0.1',{port}))\ns.listen(64)\ntime.sleep(120)"
        ))
        .spawn()
        .expect("nsenter");
    std::thread::sleep(Duration::from_millis(500));
    let step = format!(
        "SLURM_MPI_TYPE=pmix PMIX_SERVER_URI41='pmix-server.1;tcp4://127.0.0.1:{port}' \
         srun -J {name} -N1 -n1 -w {} --mpi=none python3 reach.py 127.0.0.1:{port}",
        nodes[0]
    );
    let inside = jailed(&sb, &step);
    let outside = sb.host_sh(&format!("cd {} && {step}", sb.project.display()));
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        stdout(&outside).contains(&format!("127.0.0.1:{port} open")),
        "{}{}",
        stdout(&outside),
        stderr(&outside)
    );
    assert!(
        stdout(&inside).contains(&format!("127.0.0.1:{port} closed")),
        "{}{}",
        stdout(&inside),
        stderr(&inside)
    );
}

/// A mount made only in one node's mount namespace (the local cluster's
/// nodes each have one), undone when dropped.
struct NodeMount {
    pid: String,
    path: std::path::PathBuf,
}

impl NodeMount {
    /// An empty tmpfs over `path` on `node`: what is below is gone there.
    fn hide(node: &str, path: &std::path::Path) -> Option<NodeMount> {
        let pidfile = format!("/run/local-slurm/slurmd-{node}.pid");
        let pid = std::fs::read_to_string(&pidfile).ok()?.trim().to_string();
        let o = std::process::Command::new("nsenter")
            .args(["-t", &pid, "-m", "mount", "-t", "tmpfs", "none"])
            .arg(path)
            .output()
            .ok()?;
        assert!(o.status.success(), "{}", stderr(&o));
        Some(NodeMount {
            pid,
            path: path.to_path_buf(),
        })
    }
}

impl Drop for NodeMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("nsenter")
            .args(["-t", &self.pid, "-m", "umount"])
            .arg(&self.path)
            .status();
    }
}

/// Removes a directory when dropped.
struct BinDir(std::path::PathBuf);

impl Drop for BinDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_node_that_cannot_build_the_jail_ends_the_job_with_the_reason() {
    let sb = Sandbox::new("slurm-2n-fail");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    let node = &nodes[1];
    let name = uniq("2nfail");
    let _c = cleanup(&sb, &[&name]);
    let local = std::path::Path::new(&format!("/run/local-slurm/slurmd-{node}.pid")).exists();
    if !user().switch || !local {
        skip(
            Lack::Setup,
            "needs root and .ci/slurm/start-local-slurm.sh's nodes",
        );
        return;
    }
    // A copy of jail's binary of this test's own: hiding it on the node
    // must not fail the other tests' jobs there.
    let bin = std::path::PathBuf::from(format!("/tmp/jail-tests/bin-fail-{}", std::process::id()));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(common::jail_bin(), bin.join("jail")).unwrap();
    let _bin_gone = BinDir(bin.clone());
    let submit = |sb: &Sandbox| {
        // The user's PATH has a relative entry, which the preamble (run
        // in the project, outside any jail) must not search: the program
        // plants a `scontrol` there.
        let o = sb
            .as_user(bin.join("jail").as_os_str())
            .env("PATH", format!("bin:{PATH}"))
            .args(["--", "sh", "-c"])
            .arg(format!(
                "mkdir -p bin && printf '#!/bin/sh\\necho ran > ran-scontrol\\n' > bin/scontrol && \
                 chmod +x bin/scontrol; \
                 srun -J {name} -w {node} sh -c 'echo ran > ran-step'; echo rc=$?; \
                 sbatch --parsable -J {name} -w {node} -o out.txt --wrap 'echo ran > ran-batch'"
            ))
            .output()
            .unwrap();
        let out = stdout(&o);
        let id = out.lines().last().unwrap_or_default().trim().to_string();
        let info = wait_done(sb, &id);
        (out, stderr(&o), id, info)
    };

    // The project is not on that node: the jail cannot be built there.
    {
        let _m = NodeMount::hide(node, &sb.root).expect("node mount");
        let (out, err, id, info) = submit(&sb);
        assert!(out.starts_with("rc=125\n"), "{out}\n{err}");
        let reason =
            "jail: slurm job: setting up the jail failed: cannot enter the working directory";
        assert_eq!(
            err.lines()
                .filter(|l| l.starts_with("jail: slurm job: "))
                .count(),
            1,
            "one line from the step: {err}"
        );
        assert!(err.contains(reason), "{err}");
        assert!(info.contains("JobState=FAILED"), "{info}");
        assert!(info.contains("ExitCode=125:0"), "{info}");
        // The batch job's reason is in its record, as the jail sees it.
        let acct = record_of(&sb, &id, "State,ExitCode,Comment%300", &|a: &str| {
            a.matches(reason).count() == 2
        });
        assert!(acct.contains("FAILED"), "{acct}");
        assert_eq!(
            acct.matches(reason).count(),
            2,
            "sacct and scontrol: {acct}"
        );
    }
    // jail's binary is not on that node: nothing runs, jailed or not;
    // the batch job's record says why.
    {
        let _m = NodeMount::hide(node, &bin).expect("node mount");
        let (out, err, id, info) = submit(&sb);
        assert!(!out.starts_with("rc=0\n"), "{out}\n{err}");
        assert!(
            err.contains(&format!("execve(): {}", bin.join("jail").display())),
            "{err}"
        );
        assert!(info.contains("JobState=FAILED"), "{info}");
        assert!(info.contains("ExitCode=125:0"), "{info}");
        let reason = format!(
            "jail: slurm job: no jail binary at {} on {node}: the job did not run",
            bin.join("jail").display()
        );
        let acct = record_of(&sb, &id, "Comment%300", &|a: &str| {
            a.matches(reason.as_str()).count() == 2
        });
        assert_eq!(
            acct.matches(&reason).count(),
            2,
            "sacct and scontrol: {acct}"
        );
    }
    for f in ["ran-step", "ran-batch", "ran-scontrol"] {
        assert!(!sb.project.join(f).exists(), "{f}: the job ran unjailed");
    }
    // The node is fine again: the same job runs.
    let (out, err, _id, info) = submit(&sb);
    assert!(out.starts_with("rc=0\n"), "{out}\n{err}");
    assert!(info.contains("JobState=COMPLETED"), "{info}");
}

#[test]
fn a_batch_job_whose_jail_fails_tells_its_output_file_and_nothing_else() {
    let sb = Sandbox::new("slurm-2n-why");
    let Some(nodes) = two_nodes(&sb) else {
        return;
    };
    let node = &nodes[1];
    let name = uniq("2nwhy");
    let _c = cleanup(&sb, &[&name]);
    let pidfile = format!("/run/local-slurm/slurmd-{node}.pid");
    let Some(pid) = std::fs::read_to_string(&pidfile)
        .ok()
        .filter(|_| user().switch)
    else {
        skip(
            Lack::Setup,
            "needs root and .ci/slurm/start-local-slurm.sh's nodes",
        );
        return;
    };
    let pid = pid.trim().to_string();
    let o = sb.host_sh(&format!(
        "cd {} && git init -q && mkdir -p work logs .git/hooks",
        sb.project.display()
    ));
    assert_code(&o, 0);
    sb.write(sb.root.join("victim.txt"), "mine\n");
    std::os::unix::fs::symlink(sb.root.join("victim.txt"), sb.project.join("logs/link.txt"))
        .unwrap();
    let stage = sb.root.join("stage");
    sb.mkdir(&stage);
    // On that node the working directory is gone (the project is an empty
    // directory there) but logs/ is the real one: the jail cannot be built,
    // and the reason can reach the output file.
    let (p, l, s) = (
        sb.project.display().to_string(),
        sb.project.join("logs").display().to_string(),
        stage.display().to_string(),
    );
    let o = std::process::Command::new("nsenter")
        .args(["-t", &pid, "-m", "sh", "-c"])
        .arg(format!(
            "mount --bind {l} {s} && mount -t tmpfs none {p} && mkdir {l} && mount --move {s} {l}"
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let _undo_p = NodeMount {
        pid: pid.clone(),
        path: sb.project.clone(),
    };
    let _undo_l = NodeMount {
        pid: pid.clone(),
        path: sb.project.join("logs"),
    };
    let mut ids = Vec::new();
    for out in ["../logs/out-%j.txt", "../logs/link.txt", "../logs/.envrc"] {
        let o = sb
            .jail_cmd(&[
                "--",
                "sbatch",
                "--parsable",
                "-J",
                &name,
                "-w",
                node,
                "-o",
                out,
                "--wrap",
                "echo ran",
            ])
            .current_dir(sb.project.join("work"))
            .output()
            .unwrap();
        assert_code(&o, 0);
        ids.push(stdout(&o).trim().to_string());
    }
    for id in &ids {
        let info = wait_done(&sb, id);
        assert!(info.contains("JobState=FAILED"), "{info}");
    }
    drop(_undo_l);
    drop(_undo_p);
    let log = std::fs::read_to_string(sb.project.join(format!("logs/out-{}.txt", ids[0])))
        .unwrap_or_else(|e| panic!("no output file: {e}"));
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(
        log.starts_with(
            "jail: slurm job: setting up the jail failed: cannot enter the working directory"
        ),
        "{log}"
    );
    // Not through a link, not into a protected path: that write happens
    // outside any jail.
    assert_eq!(
        std::fs::read_to_string(sb.root.join("victim.txt")).unwrap(),
        "mine\n"
    );
    assert!(
        !sb.project.join("logs/.envrc").exists(),
        "a dot file (.envrc, .git/...) was written"
    );
}
