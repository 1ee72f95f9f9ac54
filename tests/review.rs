//! Review mode end to end, as the unprivileged test user: the project is
//! an overlay while the program runs; its changes land as decided (apply,
//! discard, partly, later), never over a change made on the host
//! meanwhile, never through a symlink, and never onto a protected path.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// What a tree holds: path → (kind, content or target, mode).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (char, Vec<u8>, u32)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let mode = m.mode() & 0o7777;
            if m.file_type().is_symlink() {
                let t = fs::read_link(&p).unwrap();
                out.insert(rel, ('l', t.into_os_string().into_encoded_bytes(), mode));
            } else if m.is_dir() {
                out.insert(rel, ('d', Vec::new(), mode));
                stack.push(p);
            } else {
                out.insert(rel, ('f', fs::read(&p).unwrap_or_default(), mode));
            }
        }
    }
    out
}

fn state(sb: &Sandbox) -> PathBuf {
    sb.home.join(".local/state/jail")
}

/// The upper directories of the sessions waiting for a review.
fn sessions(sb: &Sandbox) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for p in fs::read_dir(state(sb).join("review"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for s in fs::read_dir(p.path()).into_iter().flatten().flatten() {
            v.push(s.path().join("upper"));
        }
    }
    v
}

fn quarantined(sb: &Sandbox) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![state(sb).join("quarantine")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                found.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

/// File timestamps are coarse: the project is prepared a little before
/// the jail starts, so only what changes after counts as "meanwhile".
fn settle() {
    std::thread::sleep(Duration::from_millis(250));
}

/// A project with one of every kind of thing a program changes.
fn project(name: &str) -> Sandbox {
    let sb = Sandbox::new(name);
    let p = &sb.project;
    sb.write(p.join("README.md"), "hello\n");
    sb.write(p.join("run.sh"), "#!/bin/sh\necho run\n");
    sb.write(p.join("old.txt"), "old\n");
    sb.write(p.join("moveme.txt"), "moving content\n");
    sb.write(p.join("dir/inner.txt"), "inner\n");
    sb.write(p.join("data.bin"), "");
    fs::write(p.join("data.bin"), [0u8, 1, 2, 255, 0, 7]).unwrap();
    settle();
    sb
}

/// Every kind of change: text, binary, mode, deletion (file and tree),
/// rename, new files in new directories, an empty directory, a symlink.
const CHANGES: &str = "echo world >> README.md; printf '\\000\\001changed' > data.bin; \
     chmod 755 run.sh; rm old.txt; mv moveme.txt moved.txt; rm -r dir; \
     mkdir -p newdir/sub && echo new > newdir/sub/new.txt; mkdir emptydir; ln -s README.md link";

#[track_caller]
fn assert_all_applied(p: &Path) {
    assert_eq!(
        fs::read_to_string(p.join("README.md")).unwrap(),
        "hello\nworld\n"
    );
    assert_eq!(fs::read(p.join("data.bin")).unwrap(), b"\0\x01changed");
    assert_eq!(
        fs::metadata(p.join("run.sh")).unwrap().mode() & 0o777,
        0o755
    );
    assert!(!p.join("old.txt").exists() && !p.join("moveme.txt").exists());
    assert_eq!(
        fs::read_to_string(p.join("moved.txt")).unwrap(),
        "moving content\n"
    );
    assert!(!p.join("dir").exists());
    assert_eq!(
        fs::read_to_string(p.join("newdir/sub/new.txt")).unwrap(),
        "new\n"
    );
    assert!(p.join("emptydir").is_dir());
    assert_eq!(
        fs::read_link(p.join("link")).unwrap(),
        Path::new("README.md")
    );
}

#[test]
fn apply_lands_every_kind_of_change_and_leaves_no_session() {
    let sb = project("review-apply");
    let o = sb.jail_sh(&["--review=apply"], CHANGES);
    assert_code(&o, 0);
    let err = stderr(&o);
    assert_all_applied(&sb.project);
    for want in [
        "modified   README.md",
        "binary",
        "mode 644 -> 755",
        "deleted    dir",
        "renamed    moved.txt",
        "from moveme.txt",
        "symlink -> README.md",
        "applied",
    ] {
        assert!(err.contains(want), "{want}:\n{err}");
    }
    assert!(sessions(&sb).is_empty(), "{:?}", sessions(&sb));
}

#[test]
fn the_project_is_untouched_while_the_program_runs_and_after_discard() {
    let sb = project("review-discard");
    let before = snapshot(&sb.project);
    // The program sees its own changes; the host does not, even mid-run.
    let script = format!("{CHANGES}; cat README.md; test -e old.txt || echo old-gone-inside");
    let o = sb.jail_sh(&["--review=discard"], &script);
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains("hello\nworld\nold-gone-inside"),
        "{}",
        stdout(&o)
    );
    assert_eq!(snapshot(&sb.project), before);
    assert!(sessions(&sb).is_empty());
    assert!(stderr(&o).contains("discarded"), "{}", stderr(&o));
}

#[test]
fn keep_then_resume_with_jail_review() {
    let sb = project("review-keep");
    let before = snapshot(&sb.project);
    let o = sb.jail_sh(&["--review=keep"], CHANGES);
    assert_code(&o, 0);
    assert_eq!(snapshot(&sb.project), before, "keep changes nothing");
    let upper = sessions(&sb);
    assert_eq!(upper.len(), 1);
    let upper = upper[0].display().to_string();
    assert!(
        stderr(&o).contains(&format!("`jail review {upper}`")),
        "{}",
        stderr(&o)
    );
    // Listed, with the project and the number of changes.
    let l = sb.jail(&["review"]);
    assert_code(&l, 0);
    assert!(stdout(&l).contains(&upper), "{}", stdout(&l));
    assert!(stdout(&l).contains("9 change(s)"), "{}", stdout(&l));
    // Without a terminal and without a mode, resuming keeps again.
    let again = sb.jail(&["review", &upper]);
    assert_code(&again, 0);
    assert_eq!(snapshot(&sb.project), before);
    let done = sb.jail(&["review", &upper, "--review=apply"]);
    assert_code(&done, 0);
    assert_all_applied(&sb.project);
    assert!(sessions(&sb).is_empty());
    assert!(stdout(&sb.jail(&["review"])).contains("no review sessions"));
}

#[test]
fn keep_then_apply_lands_files_written_just_before_the_start() {
    // The project is written and the jail started at once (a script, an
    // editor saving as the agent starts): those files did not change
    // "meanwhile", and a kept session applies them.
    let sb = Sandbox::new("review-keep-fresh");
    let mut c = sb.as_user(std::ffi::OsStr::new("/bin/sh"));
    c.arg("-c")
        .arg(format!(
            "printf 'hello\\n' > README.md && printf '#!/bin/sh\\necho run\\n' > run.sh && \
             echo old > old.txt && echo 'moving content' > moveme.txt && mkdir dir && \
             echo inner > dir/inner.txt && printf '\\000\\001\\002\\377\\000\\007' > data.bin && \
             chmod 644 run.sh && exec {} --review=keep -- sh -c \"$CHANGES\"",
            jail_bin().display()
        ))
        .env("CHANGES", CHANGES);
    let o = c.output().unwrap();
    assert_code(&o, 0);
    let upper = sessions(&sb);
    assert_eq!(upper.len(), 1, "{}", stderr(&o));
    let up = upper[0].display().to_string();
    let done = sb.jail(&["review", "--review=apply", &up]);
    assert_code(&done, 0);
    assert!(!stderr(&done).contains("CONFLICT"), "{}", stderr(&done));
    assert_all_applied(&sb.project);
    assert!(sessions(&sb).is_empty());
}

#[test]
fn jail_review_refuses_a_directory_outside_jails_state() {
    let sb = project("review-fake");
    // A session planted in the project by a jailed program, pointing at
    // the user's home: never applied.
    sb.write(
        sb.project.join("fake/session.json"),
        &format!(
            "{{\"project\":\"{}\",\"started_secs\":0,\"started_nanos\":0,\"command\":[],\"profile\":\"x\"}}",
            sb.home.display()
        ),
    );
    sb.write(sb.project.join("fake/upper/.bashrc"), "evil\n");
    let o = sb.jail(&["review", "fake/upper", "--review=apply"]);
    assert_code(&o, 125);
    assert!(stderr(&o).starts_with("jail: review: "), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not a review session"),
        "{}",
        stderr(&o)
    );
    assert!(!sb.home.join(".bashrc").exists());
}

/// Runs `jail ARGS -- sh -c SCRIPT` where SCRIPT prints `ready` and then
/// waits for a line on stdin; `meanwhile` runs on the host in between.
fn with_host_change(
    sb: &Sandbox,
    args: &[&str],
    script: &str,
    meanwhile: impl FnOnce(),
) -> std::process::Output {
    let mut a: Vec<&str> = args.to_vec();
    let full = format!("{script}; echo ready; read x");
    a.extend(["--", "sh", "-c", &full]);
    let mut child = sb
        .jail_cmd(&a)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    meanwhile();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut o = child.wait_with_output().unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut out, &mut rest).unwrap();
    o.stdout = rest;
    o
}

#[test]
fn a_file_changed_on_the_host_meanwhile_is_never_overwritten() {
    let sb = project("review-conflict");
    let o = with_host_change(
        &sb,
        &["--review=apply"],
        "echo from-jail > README.md; echo new > fresh.txt",
        || {
            let o = sb.host_sh("echo from-host > README.md");
            assert_code(&o, 0);
        },
    );
    // Not applied (status 125: something asked for did not happen), the
    // rest applied, the jail's version kept for a decision.
    assert_code(&o, 125);
    let err = stderr(&o);
    assert!(err.contains("CONFLICT"), "{err}");
    assert!(
        err.contains("not applied, changed on the host meanwhile: README.md"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(sb.project.join("README.md")).unwrap(),
        "from-host\n"
    );
    assert_eq!(
        fs::read_to_string(sb.project.join("fresh.txt")).unwrap(),
        "new\n"
    );
    let upper = sessions(&sb);
    assert_eq!(upper.len(), 1);
    assert_eq!(
        fs::read_to_string(upper[0].join("README.md")).unwrap(),
        "from-jail\n"
    );
    // Resumed: still a conflict; discarding keeps the host's version.
    let up = upper[0].display().to_string();
    let o = sb.jail(&["review", &up, "--review=apply"]);
    assert_code(&o, 125);
    assert_eq!(
        fs::read_to_string(sb.project.join("README.md")).unwrap(),
        "from-host\n"
    );
    assert_code(&sb.jail(&["review", &up, "--review=discard"]), 0);
    assert_eq!(
        fs::read_to_string(sb.project.join("README.md")).unwrap(),
        "from-host\n"
    );
    assert!(sessions(&sb).is_empty());
}

#[test]
fn nothing_is_lost_when_jail_is_killed() {
    let sb = project("review-kill");
    let mut child = sb
        .jail_cmd(&[
            "--review",
            "--",
            "sh",
            "-c",
            "echo kept > survivor.txt; echo ready; sleep 60",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    // SAFETY: SIGKILL to our own child: jail gets no chance to review.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    child.wait().unwrap();
    assert!(!sb.project.join("survivor.txt").exists());
    let upper = sessions(&sb);
    assert_eq!(upper.len(), 1);
    assert_eq!(
        fs::read_to_string(upper[0].join("survivor.txt")).unwrap(),
        "kept\n"
    );
    // Once the jail's pid 1 is gone too, the session can be resumed.
    let up = upper[0].display().to_string();
    let start = Instant::now();
    loop {
        let o = sb.jail(&["review", &up, "--review=apply"]);
        if o.status.code() == Some(0) {
            break;
        }
        assert!(stderr(&o).contains("still running"), "{}", stderr(&o));
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the jail never went away"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        fs::read_to_string(sb.project.join("survivor.txt")).unwrap(),
        "kept\n"
    );
}

#[test]
fn protected_paths_keep_their_rules_and_are_never_applied() {
    let sb = project("review-protect");
    sb.write(
        sb.project.join(".git/hooks/pre-commit.sample"),
        "#!/bin/sh\n",
    );
    sb.write(sb.project.join(".git/config"), "[core]\n");
    sb.write(sb.project.join(".git/HEAD"), "ref: refs/heads/main\n");
    settle();
    let script = "echo evil > .git/hooks/pre-commit 2>/dev/null || echo hooks-read-only; \
                  echo '[core] fsmonitor=evil' >> .git/config 2>/dev/null || echo config-read-only; \
                  echo '{\"mcpServers\":{}}' > .mcp.json; mkdir -p .vscode && echo x > .vscode/tasks.json; \
                  mkdir -p vendor/lib/.git/hooks && echo evil > vendor/lib/.git/hooks/post-checkout; \
                  echo 'ref: refs/heads/x' > .git/HEAD; echo x > ordinary.txt";
    let o = sb.jail_sh(&["--review=apply"], script);
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(
        out.contains("hooks-read-only") && out.contains("config-read-only"),
        "{out}"
    );
    let p = &sb.project;
    assert!(!p.join(".mcp.json").exists());
    assert!(!p.join(".vscode").exists());
    assert!(!p.join("vendor/lib/.git/hooks/post-checkout").exists());
    assert!(!p.join(".git/hooks/pre-commit").exists());
    assert_eq!(
        fs::read_to_string(p.join(".git/config")).unwrap(),
        "[core]\n"
    );
    // Ordinary git files and project files land.
    assert_eq!(
        fs::read_to_string(p.join(".git/HEAD")).unwrap(),
        "ref: refs/heads/x\n"
    );
    assert!(p.join("ordinary.txt").exists());
    assert_eq!(
        quarantined(&sb),
        [".mcp.json", "post-checkout", "tasks.json"]
    );
    assert!(stderr(&o).contains("jail: moved "), "{}", stderr(&o));
    assert!(sessions(&sb).is_empty());
}

#[test]
fn applying_never_follows_symlinks_nor_makes_special_or_setuid_files() {
    let sb = project("review-attack");
    let outside = sb.root.join("outside");
    sb.write(outside.join("victim.txt"), "victim\n");
    sb.write(sb.project.join("d/a.txt"), "a\n");
    settle();
    let script = format!(
        "echo planted > d/new.txt; ln -s {o}/victim.txt evil-link; ln -s {o} evil-dir; \
         mkfifo fifo; cp /bin/true suid && chmod 4755 suid; truncate -s 20G sparse.img",
        o = outside.display()
    );
    let o = with_host_change(&sb, &["--review=apply"], &script, || {
        // On the host, d becomes a symlink out of the project meanwhile.
        let o = sb.host_sh(&format!(
            "mv {p}/d {p}/d.orig && ln -s {o} {p}/d",
            p = sb.project.display(),
            o = outside.display()
        ));
        assert_code(&o, 0);
    });
    let err = stderr(&o);
    assert_code(&o, 125);
    assert!(err.contains("d is a symlink on the host"), "{err}");
    // Nothing was written through a symlink.
    assert!(!outside.join("new.txt").exists());
    assert_eq!(
        fs::read_to_string(outside.join("victim.txt")).unwrap(),
        "victim\n"
    );
    let p = &sb.project;
    assert_eq!(
        fs::read_link(p.join("evil-link")).unwrap(),
        outside.join("victim.txt")
    );
    assert!(err.contains("points outside the project"), "{err}");
    assert!(!p.join("fifo").exists(), "no special files");
    assert!(err.contains("fifo: not applied"), "{err}");
    let m = fs::metadata(p.join("suid")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o755, "setuid dropped");
    let m = fs::metadata(p.join("sparse.img")).unwrap();
    assert_eq!(m.len(), 20 << 30);
    assert!(
        m.blocks() * 512 < 1 << 20,
        "still sparse: {} blocks",
        m.blocks()
    );
    // The same upper file copied naively (cp) would land outside.
    let upper = sessions(&sb);
    assert_eq!(upper.len(), 1, "the conflicting change is kept");
    let naive = sb.host_sh(&format!(
        "cp {}/d/new.txt {}/d/",
        upper[0].display(),
        sb.project.display()
    ));
    assert_code(&naive, 0);
    assert!(
        outside.join("new.txt").exists(),
        "the naive copy follows the symlink"
    );
}

#[test]
fn review_is_set_by_a_profile_and_explained() {
    let sb = project("review-profile");
    sb.write(
        sb.home.join(".config/jail/config.toml"),
        "review = \"keep\"\n",
    );
    let e = sb.jail(&["explain", "--", "true"]);
    assert_code(&e, 0);
    assert!(
        stdout(&e)
            .lines()
            .any(|l| l.contains("review") && l.contains("keep") && l.contains("config.toml")),
        "{}",
        stdout(&e)
    );
    let o = sb.jail_sh(&[], "echo x > new.txt");
    assert_code(&o, 0);
    assert!(!sb.project.join("new.txt").exists());
    assert_eq!(sessions(&sb).len(), 1);
    // No change: nothing kept, one line.
    let sb2 = project("review-none");
    let o = sb2.jail_sh(&["--review=apply"], "cat README.md >/dev/null");
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("jail: review: no changes"),
        "{}",
        stderr(&o)
    );
    assert!(sessions(&sb2).is_empty());
}

/// Runs `argv` on a pty through tests/helpers/pty_drive.py with `env`.
fn drive(sb: &Sandbox, argv: &[&str], env: &[(&str, &str)], script: &str) -> String {
    pty_drive(sb, 24, 100, argv, env, script)
}

#[test]
fn partial_apply_on_a_terminal_one_change_at_a_time() {
    let sb = Sandbox::new("review-tty");
    for (f, c) in [
        ("a.txt", "a0\n"),
        ("b.txt", "b0\n"),
        ("c.txt", "c0\n"),
        ("gone.txt", "g\n"),
    ] {
        sb.write(sb.project.join(f), c);
    }
    settle();
    let jail = jail_bin().display().to_string();
    let out = drive(
        &sb,
        &[
            &jail,
            "--review",
            "--",
            "sh",
            "-c",
            "echo a1 > a.txt; echo b1 > b.txt; echo c1 > c.txt; rm gone.txt",
        ],
        &[("PAGER", "cat")],
        "expect 4 change\\(s\\)\n\
         expect \\[a\\]pply all\n\
         send r\n\
         expect \\+a1\n\
         expect apply this change\n\
         send y\n\
         expect \\+b1\n\
         expect apply this change\n\
         send n\n\
         expect \\+c1\n\
         expect apply this change\n\
         send k\n\
         expect deleted gone.txt\n\
         expect apply this change\n\
         send y\n\
         expect kept 1 change\n\
         wait\n",
    );
    assert!(out.trim_end().ends_with("exit=0"), "{out}");
    let p = &sb.project;
    let read = |f: &str| fs::read_to_string(p.join(f)).unwrap();
    assert_eq!(
        (read("a.txt"), read("b.txt"), read("c.txt")),
        ("a1\n".into(), "b0\n".into(), "c0\n".into())
    );
    assert!(!p.join("gone.txt").exists());
    let upper = sessions(&sb);
    assert_eq!(upper.len(), 1);
    let names: Vec<_> = fs::read_dir(&upper[0])
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names, ["c.txt"], "only the kept change stays");
    let up = upper[0].display().to_string();
    assert_code(&sb.jail(&["review", &up, "--review=apply"]), 0);
    assert_eq!(read("c.txt"), "c1\n");
}

#[test]
fn a_conflict_on_a_terminal_needs_an_explicit_overwrite_and_long_diffs_page() {
    let sb = Sandbox::new("review-tty-conflict");
    let long: String = (1..=120).map(|i| format!("line {i}\n")).collect();
    sb.write(sb.project.join("a.txt"), "a0\n");
    sb.write(sb.project.join("long.txt"), &long);
    settle();
    let jail = jail_bin().display().to_string();
    let a = sb.project.join("a.txt").display().to_string();
    let out = drive(
        &sb,
        &[
            &jail,
            "--review",
            "--",
            "sh",
            "-c",
            "echo jail > a.txt; sed -i 's/^line/LINE/' long.txt; echo ready; read x",
        ],
        &[("PAGER", "sed s/^/PAGED:/")],
        &format!(
            "expect ready\n\
             run echo host > {a}\n\
             send go\n\
             expect CONFLICT\n\
             send s\n\
             expect PAGED:\\+LINE 120\n\
             expect \\[a\\]pply all\n\
             send a\n\
             expect \\[o\\]verwrite\n\
             send y\n\
             expect \\[o\\]verwrite\n\
             send o\n\
             expect applied 2\n\
             wait\n"
        ),
    );
    assert!(out.trim_end().ends_with("exit=0"), "{out}");
    assert_eq!(
        fs::read_to_string(&a).unwrap(),
        "jail\n",
        "overwritten on request"
    );
    assert!(fs::read_to_string(sb.project.join("long.txt"))
        .unwrap()
        .contains("LINE 120"));
    assert!(sessions(&sb).is_empty());
}

#[test]
fn a_protected_path_named_in_rw_is_applied_like_without_review() {
    let sb = project("review-relaxed");
    sb.write(sb.project.join(".vscode/settings.json"), "{}");
    settle();
    let vscode = sb.project.join(".vscode").display().to_string();
    let o = sb.jail_sh(
        &["--review=apply", "--rw", &vscode],
        "echo '{\"a\":1}' > .vscode/settings.json; echo '{}' > .mcp.json",
    );
    assert_code(&o, 0);
    assert_eq!(
        fs::read_to_string(sb.project.join(".vscode/settings.json")).unwrap(),
        "{\"a\":1}\n"
    );
    assert!(
        !sb.project.join(".mcp.json").exists(),
        "others stay protected"
    );
    assert_eq!(quarantined(&sb), [".mcp.json"]);
}

#[test]
fn a_path_that_runs_on_the_host_is_applied_only_on_its_own_yes() {
    let sb = Sandbox::new("review-host-run");
    sb.write(sb.project.join("README.md"), "hello\n");
    settle();
    let jail = jail_bin().display().to_string();
    let out = drive(
        &sb,
        &[
            &jail,
            "--review",
            "--",
            "sh",
            "-c",
            "echo '{\"mcpServers\":{}}' > .mcp.json; echo 'repos: []' > .pre-commit-config.yaml; \
             echo x > ordinary.txt",
        ],
        &[("PAGER", "cat")],
        "expect host-run\n\
         expect \\[a\\]pply all\n\
         send a\n\
         expect your agent runs its hooks\n\
         expect apply it anyway\n\
         send n\n\
         expect git hook its manager installed runs what it says\n\
         expect apply it anyway\n\
         send y\n\
         wait\n",
    );
    assert!(out.trim_end().ends_with("exit=0"), "{out}");
    let p = &sb.project;
    // "Apply all" applied the ordinary file, but neither path that runs on
    // the host without its own answer: one yes, one no.
    assert_eq!(fs::read_to_string(p.join("ordinary.txt")).unwrap(), "x\n");
    assert_eq!(
        fs::read_to_string(p.join(".pre-commit-config.yaml")).unwrap(),
        "repos: []\n"
    );
    assert!(!p.join(".mcp.json").exists());
    assert_eq!(quarantined(&sb), [".mcp.json"]);
    // Without a terminal (--review=apply) such a path is never applied.
    let o = sb.jail_sh(
        &["--review=apply"],
        "echo evil > .envrc; echo y > other.txt",
    );
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("RUNS ON THE HOST: direnv"),
        "{}",
        stderr(&o)
    );
    assert!(!p.join(".envrc").exists());
    assert!(p.join("other.txt").exists());
}
