//! The core launcher, end to end: the real binary, as an unprivileged user.
//! Exit statuses, namespaces, pid 1, signals, orphans, environment, CLI.

mod common;
use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn runs_a_command_and_propagates_its_status() {
    let sb = Sandbox::new("status");
    assert_code(&sb.jail(&["true"]), 0);
    assert_code(&sb.jail(&["false"]), 1);
    assert_code(&sb.jail_sh(&[], "exit 42"), 42);
}

#[test]
fn death_by_signal_is_128_plus_n() {
    let sb = Sandbox::new("signal");
    assert_code(&sb.jail_sh(&[], "kill -TERM $$"), 128 + 15);
    assert_code(&sb.jail_sh(&[], "kill -KILL $$"), 128 + 9);
}

#[test]
fn missing_and_unexecutable_commands_are_127_and_126() {
    let sb = Sandbox::new("notfound");
    let o = sb.jail(&["no-such-command-xyz"]);
    assert_code(&o, 127);
    assert!(
        stderr(&o).starts_with("jail: no-such-command-xyz: "),
        "{}",
        stderr(&o)
    );
    sb.write(sb.project.join("notexec.sh"), "#!/bin/sh\necho hi\n");
    let o = sb.jail(&["./notexec.sh"]);
    assert_code(&o, 126);
    assert!(stderr(&o).contains("ermission denied"), "{}", stderr(&o));
}

#[test]
fn errors_of_jail_itself_are_125_with_one_prefixed_line() {
    let sb = Sandbox::new("usage");
    for args in [
        &["--no-such-flag"][..],
        &["--net", "bogus", "true"],
        &["-p", "no-such-profile", "true"],
    ] {
        let o = sb.jail(args);
        assert_code(&o, 125);
        let err = stderr(&o);
        assert!(err.starts_with("jail: "), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn home_directory_as_project_is_refused() {
    let sb = Sandbox::new("homeproj");
    let o = sb
        .jail_cmd(&["true"])
        .current_dir(&sb.home)
        .output()
        .unwrap();
    assert_code(&o, 125);
    assert!(stderr(&o).contains("refusing to use"), "{}", stderr(&o));
}

#[test]
fn user_is_mapped_to_itself_not_root() {
    let sb = Sandbox::new("uid");
    let o = sb.jail(&["id", "-u"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), user().uid.to_string());
    let o = sb.jail(&["id", "-g"]);
    assert_eq!(stdout(&o).trim(), user().gid.to_string());
}

#[test]
fn every_namespace_is_new() {
    let sb = Sandbox::new("ns");
    let script = "for n in user mnt pid net ipc uts cgroup; do readlink /proc/self/ns/$n; done";
    let inside = sb.jail_sh(&[], script);
    assert_code(&inside, 0);
    let outside = sb.host_sh(script);
    let (i, o) = (stdout(&inside), stdout(&outside));
    assert_eq!(i.lines().count(), 7, "{i}");
    for (a, b) in i.lines().zip(o.lines()) {
        assert_ne!(a, b, "namespace shared with the host");
    }
}

#[test]
fn host_processes_are_invisible_and_pid_1_is_the_jail() {
    let sb = Sandbox::new("pid");
    let o = sb.jail_sh(
        &[],
        "echo $$; cat /proc/1/comm; ls /proc | grep -c '^[0-9]'",
    );
    assert_code(&o, 0);
    let out = stdout(&o);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "2", "the program is pid 2, after jail's pid 1: {out}");
    assert_eq!(l[1], "jail", "{out}");
    let n: usize = l[2].parse().unwrap();
    assert!(n <= 4, "only the jail's own processes are visible: {out}");
}

#[test]
fn network_is_loopback_only_and_loopback_works() {
    let sb = Sandbox::new("net");
    let o = sb.jail_sh(&[], "ls /sys/class/net 2>/dev/null || cat /proc/net/dev");
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o).split_whitespace().collect::<Vec<_>>(),
        ["lo"],
        "{}",
        stdout(&o)
    );
    // A server and a client on loopback inside the jail.
    let py = "import socket\ns=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(1)\n\
              c=socket.create_connection(s.getsockname()); a,_=s.accept(); c.send(b'ok'); print(a.recv(2).decode())";
    let o = sb.jail(&["python3", "-c", py]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "ok");
}

#[test]
fn environment_is_scrubbed_but_ordinary_variables_stay() {
    let sb = Sandbox::new("env");
    let o = sb
        .jail_cmd(&["--env", "KEEP_TOKEN", "--env", "SET_ME=v1", "--", "env"])
        .env("SSH_AUTH_SOCK", "/run/user/1/ssh")
        .env("GITHUB_TOKEN", "ghp_FAKE")
        .env("AWS_SECRET_ACCESS_KEY", "FAKE")
        .env("OPENAI_API_KEY", "sk-FAKE")
        .env("DB_PASSWORD", "FAKE")
        .env("KEEP_TOKEN", "kept")
        .env("TERM", "xterm-256color")
        .env("MY_SETTING", "plain")
        .output()
        .unwrap();
    assert_code(&o, 0);
    let env = stdout(&o);
    for gone in [
        "SSH_AUTH_SOCK",
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "OPENAI_API_KEY",
        "DB_PASSWORD",
        "FAKE",
    ] {
        assert!(!env.contains(gone), "{gone} leaked:\n{env}");
    }
    for kept in [
        "PATH=",
        "TERM=xterm-256color",
        "MY_SETTING=plain",
        "KEEP_TOKEN=kept",
        "SET_ME=v1",
        "JAIL=1",
    ] {
        assert!(
            env.lines().any(|l| l.starts_with(kept)),
            "{kept} missing:\n{env}"
        );
    }
    assert!(
        env.contains(&format!("HOME={}", sb.home.display())),
        "{env}"
    );
}

#[test]
fn pid_1_environment_is_not_readable() {
    let sb = Sandbox::new("pid1env");
    let o = sb
        .jail_cmd(&["--", "sh", "-c", "cat /proc/1/environ; echo rc=$?"])
        .env("GITHUB_TOKEN", "ghp_FAKE")
        .output()
        .unwrap();
    assert!(!stdout(&o).contains("ghp_FAKE"), "{}", stdout(&o));
    assert!(stdout(&o).contains("rc=1"), "{}", stdout(&o));
}

#[test]
fn dry_run_and_explain_print_the_policy_with_sources() {
    let sb = Sandbox::new("explain");
    let a = sb.jail(&["explain", "--ro", "/srv", "--", "make", "test"]);
    assert_code(&a, 0);
    let b = sb.jail(&["--dry-run", "--ro", "/srv", "make", "test"]);
    assert_eq!(stdout(&a), stdout(&b));
    let out = stdout(&a);
    assert!(out.contains("command          make test"), "{out}");
    assert!(
        out.contains("/srv") && out.contains("command line --ro"),
        "{out}"
    );
    assert!(out.contains("builtin profile default"), "{out}");
    assert!(out.contains(&format!("{}", sb.project.display())), "{out}");
}

#[test]
fn run_subcommand_runs_programs_named_like_subcommands() {
    let sb = Sandbox::new("runsub");
    sb.write(
        sb.project.join("explain"),
        "#!/bin/sh\necho I am a program\n",
    );
    std::fs::set_permissions(
        sb.project.join("explain"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let o = sb.jail(&["run", "--", "./explain"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "I am a program");
}

#[test]
fn stdin_and_stdout_pass_through() {
    let sb = Sandbox::new("stdio");
    let mut child = sb
        .jail_cmd(&["tr", "a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello jail")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "HELLO JAIL");
}

#[test]
fn inherited_file_descriptors_do_not_reach_the_program() {
    let sb = Sandbox::new("fds");
    // fd 7 open on a host file outside the jail's view.
    sb.write(sb.root.join("outside.txt"), "OUTSIDE");
    let script = format!(
        "exec 7<{}; exec {} -- sh -c 'cat <&7; ls /proc/self/fd'",
        sb.root.join("outside.txt").display(),
        jail_bin().display()
    );
    let o = sb.host_sh(&script);
    assert_code(&o, 0);
    assert!(!stdout(&o).contains("OUTSIDE"), "{}", stdout(&o));
    assert!(!stdout(&o).lines().any(|l| l == "7"), "{}", stdout(&o));
}

/// Every process whose command line contains `marker`.
fn procs_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(marker) && !c.contains("sh -c") {
                found.push(format!("{}: {c}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn leaves_nothing_behind(signal: i32, name: &str) {
    let sb = Sandbox::new(name);
    // Background children that would outlive a careless launcher; one
    // ignores SIGTERM, one is in its own session.
    let marker = format!("{}{}", 1000 + signal, std::process::id() % 1000);
    let script =
        format!("(trap '' TERM; sleep {marker}) & setsid sleep {marker} & sleep {marker} & wait");
    let mut child = sb.jail_cmd(&["--", "sh", "-c", &script]).spawn().unwrap();
    wait_until("the jail's processes", || {
        procs_with(&format!("sleep {marker}")).len() >= 3
    });
    // SAFETY: kill on the pid of our own child (setpriv exec'd jail).
    unsafe { libc::kill(child.id() as i32, signal) };
    let status = child.wait().unwrap();
    wait_until("every jailed process to die", || {
        procs_with(&format!("sleep {marker}")).is_empty()
    });
    if signal == libc::SIGKILL {
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(libc::SIGKILL)
        );
    }
}

#[test]
fn sigkill_of_jail_leaves_no_process_behind() {
    leaves_nothing_behind(libc::SIGKILL, "orphan-kill");
}

#[test]
fn sigterm_of_jail_is_forwarded_and_leaves_no_process_behind() {
    leaves_nothing_behind(libc::SIGTERM, "orphan-term");
}

#[test]
fn sigterm_reaches_the_program_which_can_handle_it() {
    let sb = Sandbox::new("fwd");
    let mut child = sb
        .jail_cmd(&[
            "--",
            "sh",
            "-c",
            "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    use std::io::Read;
    out.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(rest.trim(), "got-term");
    assert_eq!(status.code(), Some(3));
}

#[test]
fn zombies_are_reaped_by_pid_1() {
    let sb = Sandbox::new("zombie");
    // The orphaned grandchildren exit at once and must not linger as
    // zombies while the program keeps running.
    let o = sb.jail_sh(&[], "for i in 1 2 3 4 5; do (sh -c 'exit 0' &) ; done; sleep 0.3; grep -l '^State:.*Z' /proc/[0-9]*/status | wc -l");
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "0", "zombies left: {}", stdout(&o));
}

#[test]
fn dev_stdout_and_stderr_can_be_reopened() {
    // Scripts often write `echo msg > /dev/stderr`: the file behind it
    // (here a log outside the jail's view) must stay reachable.
    let sb = Sandbox::new("devstdout");
    let log = sb.root.join("log.txt");
    sb.write(&log, "");
    sb.write(sb.root.join("in.txt"), "from-stdin\n");
    let f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let o = sb
        .jail_cmd(&[
            "--",
            "sh",
            "-c",
            "echo to-stdout >> /dev/stdout && echo to-stderr >> /dev/stderr && cat /dev/stdin",
        ])
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .stdin(std::fs::File::open(sb.root.join("in.txt")).unwrap())
        .status()
        .unwrap();
    assert_eq!(o.code(), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text, "to-stdout\nto-stderr\nfrom-stdin\n");
}

#[test]
fn a_jail_inside_a_jail_is_refused_with_a_reason() {
    let sb = Sandbox::new("nest");
    std::fs::copy(jail_bin(), sb.project.join("jail")).unwrap();
    let o = sb.jail(&["--", "./jail", "--", "true"]);
    assert_code(&o, 125);
    assert!(
        stderr(&o).contains("already runs inside a jail"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bare_jail_runs_the_users_shell_with_the_shell_profile() {
    let sb = Sandbox::new("bare");
    let mut c = sb.jail_cmd(&[]);
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo profile=$JAIL_PROFILE shell=$0\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "profile=shell shell=/bin/sh");
}

#[test]
fn jail_make_test_builds_in_the_project() {
    let sb = Sandbox::new("make");
    sb.write(
        sb.project.join("Makefile"),
        "test: out/result\n\tcat out/result\nout/result:\n\tmkdir -p out && echo built-by-make > out/result\n",
    );
    let o = sb.jail(&["make", "test"]);
    assert_code(&o, 0);
    assert!(stdout(&o).contains("built-by-make"), "{}", stdout(&o));
    assert_eq!(
        std::fs::read_to_string(sb.project.join("out/result")).unwrap(),
        "built-by-make\n"
    );
    // A failing target's status comes back.
    sb.write(sb.project.join("Makefile"), "test:\n\texit 3\n");
    assert_code(&sb.jail(&["make", "test"]), 2);
}
