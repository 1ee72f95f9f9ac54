//! The jail's filesystem view, and escape attempts against it. Each attack
//! is also run outside the jail (as the same user) where that is safe, to
//! show the test would notice a leak.

mod common;
use common::*;
use std::os::unix::fs::symlink;

/// `cat PATH` inside the jail must fail with ENOENT, and work on the host.
#[track_caller]
fn absent_inside_present_outside(sb: &Sandbox, opts: &[&str], path: &str, secret: &str) {
    let host = sb.host_sh(&format!("cat '{path}'"));
    assert!(
        stdout(&host).contains(secret),
        "the attack must work outside the jail: {}",
        stderr(&host)
    );
    let o = sb.jail_sh(opts, &format!("cat '{path}'; echo rc=$?"));
    assert!(
        !stdout(&o).contains(secret),
        "{path} leaked: {}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("No such file or directory"),
        "{path}: expected ENOENT, got: {}",
        stderr(&o)
    );
}

/// `cat PATH` inside the jail must fail with EACCES (masked: the path is in
/// a writable directory), and work on the host.
#[track_caller]
fn masked_inside_present_outside(sb: &Sandbox, opts: &[&str], path: &str, secret: &str) {
    let host = sb.host_sh(&format!("cat '{path}' 2>/dev/null || cat '{path}'/*"));
    assert!(
        stdout(&host).contains(secret),
        "the attack must work outside the jail: {}",
        stderr(&host)
    );
    let o = sb.jail_sh(
        opts,
        &format!("cat '{path}'; ls -A '{path}'; cp -r '{path}' /tmp/x; cat /tmp/x /tmp/x/* 2>/dev/null; echo rc=$?"),
    );
    assert!(
        !stdout(&o).contains(secret),
        "{path} leaked: {}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("Permission denied"),
        "{path}: expected EACCES (masked), got: {}",
        stderr(&o)
    );
}

#[test]
fn credentials_in_home_are_absent() {
    let sb = Sandbox::with_secrets("creds");
    let h = sb.home.display().to_string();
    absent_inside_present_outside(&sb, &[], &format!("{h}/.ssh/id_ed25519"), "FAKE-SSH-KEY");
    absent_inside_present_outside(&sb, &[], &format!("{h}/.aws/credentials"), "FAKE");
    absent_inside_present_outside(&sb, &[], &format!("{h}/.netrc"), "password FAKE");
    absent_inside_present_outside(
        &sb,
        &[],
        &format!("{h}/.gnupg/private-keys-v1.d/k.key"),
        "FAKE-GPG",
    );
}

#[test]
fn credentials_stay_absent_when_home_is_visible_read_only() {
    let sb = Sandbox::with_secrets("credsro");
    let h = sb.home.display().to_string();
    for path in [
        ".ssh/id_ed25519",
        ".aws/credentials",
        ".netrc",
        ".config/gh/hosts.yml",
    ] {
        let secret = if path.contains("gh") {
            "oauth_token"
        } else {
            "FAKE"
        };
        absent_inside_present_outside(&sb, &["--ro", &h], &format!("{h}/{path}"), secret);
    }
    // The rest of home is there, read-only; hidden names are not listed.
    let o = sb.jail_sh(
        &["--ro", &h],
        "cat ~/.gitconfig; ls -a ~; ls -a ~/.config; touch ~/new 2>&1",
    );
    let out = stdout(&o);
    assert!(out.contains("name = t"), "{out}");
    assert!(out.contains("other-project"), "{out}");
    for hidden in [".ssh", ".aws", ".netrc", ".gnupg", "gh"] {
        assert!(!out.lines().any(|l| l == hidden), "{hidden} listed: {out}");
    }
    assert!(out.contains("Read-only file system"), "{out}");
}

#[test]
fn a_visible_parent_never_reveals_a_hidden_path() {
    let sb = Sandbox::with_secrets("parent");
    let h = sb.home.display().to_string();
    // Read-only parent: absent.
    absent_inside_present_outside(
        &sb,
        &["--ro", &format!("{h}/.config")],
        &format!("{h}/.config/gh/hosts.yml"),
        "oauth_token",
    );
    // Writable parent: masked (exists, unreadable), and the parent stays
    // fully writable.
    masked_inside_present_outside(
        &sb,
        &["--rw", &format!("{h}/.config")],
        &format!("{h}/.config/gh"),
        "oauth_token",
    );
    let o = sb.jail_sh(
        &["--rw", &format!("{h}/.config")],
        "echo x > ~/.config/new && rm -rf ~/.config/gh; ls -d ~/.config/gh",
    );
    assert!(stderr(&o).contains("busy"), "{}", stderr(&o));
    assert!(sb.home.join(".config/new").exists());
    assert!(sb.home.join(".config/gh/hosts.yml").exists());
    // ... but naming the hidden path itself shows it (the user's choice).
    let o = sb.jail(&[
        "--ro",
        &format!("{h}/.config/gh"),
        "--",
        "cat",
        &format!("{h}/.config/gh/hosts.yml"),
    ]);
    assert_code(&o, 0);
}

#[test]
fn another_project_is_absent() {
    let sb = Sandbox::with_secrets("otherproj");
    let p = sb
        .home
        .join("other-project/notes.txt")
        .display()
        .to_string();
    absent_inside_present_outside(&sb, &[], &p, "PRIVATE-NOTES");
}

#[test]
fn symlink_from_the_project_to_secrets_leads_nowhere() {
    let sb = Sandbox::with_secrets("symlink");
    symlink(sb.home.join(".ssh"), sb.project.join("innocent")).unwrap();
    symlink(sb.home.join(".aws/credentials"), sb.project.join("creds")).unwrap();
    absent_inside_present_outside(&sb, &[], "innocent/id_ed25519", "FAKE-SSH-KEY");
    absent_inside_present_outside(&sb, &[], "creds", "aws_secret");
}

#[test]
fn proc_root_and_cwd_tricks_stay_inside() {
    let sb = Sandbox::with_secrets("procroot");
    let key = sb.home.join(".ssh/id_ed25519").display().to_string();
    for p in [
        format!("/proc/1/root{key}"),
        format!("/proc/self/root{key}"),
        "/proc/self/cwd/../home/.ssh/id_ed25519".to_string(),
    ] {
        let o = sb.jail_sh(&[], &format!("cat '{p}'"));
        assert!(!stdout(&o).contains("FAKE"), "{p} leaked");
        assert_ne!(o.status.code(), Some(0), "{p} readable");
    }
    // pid 1 is jail's own init; its root is the jail's root, not the host's.
    let o = sb.jail_sh(&[], "ls /proc/1/root/ 2>&1; ls /proc/1/cwd/ 2>&1");
    assert!(!stdout(&o).contains("oldroot"), "{}", stdout(&o));
    assert!(
        !stdout(&o).contains("root") || stdout(&o).contains("Permission denied"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn system_directories_are_read_only() {
    let sb = Sandbox::new("sysro");
    for dir in ["/usr", "/etc", "/usr/local", "/var/lib", "/"] {
        let o = sb.jail_sh(&[], &format!("touch {dir}/jail-was-here 2>&1"));
        let out = stdout(&o);
        assert!(
            out.contains("Read-only file system") || out.contains("Permission denied"),
            "{dir}: {out}"
        );
        assert!(!std::path::Path::new(&format!("{dir}/jail-was-here")).exists());
    }
    // The root itself is read-only too.
    let o = sb.jail_sh(&[], "mkdir /new-top-level-dir 2>&1");

    assert!(
        stdout(&o).contains("Read-only file system"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn etc_secrets_are_unreadable() {
    let sb = Sandbox::new("shadow");
    let o = sb.jail_sh(&[], "cat /etc/shadow");
    assert_ne!(o.status.code(), Some(0));
    assert!(stdout(&o).is_empty());
}

#[test]
fn project_is_read_write_at_the_same_path() {
    let sb = Sandbox::new("projrw");
    sb.mkdir(sb.project.join("sub"));
    let o = sb
        .jail_cmd(&[
            "--",
            "sh",
            "-c",
            "pwd; echo built > out.txt; mkdir -p target/x",
        ])
        .current_dir(sb.project.join("sub"))
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o).trim(),
        sb.project.join("sub").display().to_string()
    );
    assert_eq!(
        std::fs::read_to_string(sb.project.join("sub/out.txt")).unwrap(),
        "built\n"
    );
    assert!(sb.project.join("sub/target/x").is_dir());
}

#[test]
fn git_root_is_the_project() {
    let sb = Sandbox::new("gitroot");
    sb.mkdir(sb.project.join(".git"));
    sb.mkdir(sb.project.join("a/b"));
    let o = sb
        .jail_cmd(&["--", "sh", "-c", "touch ../../top-was-writable && pwd"])
        .current_dir(sb.project.join("a/b"))
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert!(sb.project.join("top-was-writable").exists());
}

#[test]
fn home_is_an_empty_tmpfs_with_only_the_profile_binds() {
    let sb = Sandbox::with_secrets("hometmpfs");
    let o = sb.jail_sh(&[], "ls -A ~; echo scratch > ~/scratch && cat ~/scratch; cat ~/.gitconfig; echo x >> ~/.gitconfig");
    let out = stdout(&o);
    assert_eq!(
        out.lines().next(),
        Some(".gitconfig"),
        "only the ro dotfile is there: {out}"
    );
    assert!(out.contains("scratch"), "{out}");
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    assert!(
        !sb.home.join("scratch").exists(),
        "tmpfs home writes stay in the jail"
    );
    assert_eq!(
        std::fs::read_to_string(sb.home.join(".gitconfig")).unwrap(),
        "[user]\nname = t\n"
    );
}

#[test]
fn hidden_file_inside_the_project_is_masked_and_the_project_stays_writable() {
    let sb = Sandbox::new("hideproj");
    sb.write(sb.project.join(".env"), "API_SECRET=FAKE");
    sb.write(sb.project.join("src/main.c"), "int main(){}");
    masked_inside_present_outside(&sb, &["--hide", ".env"], ".env", "API_SECRET");
    let o = sb.jail_sh(
        &["--hide", ".env"],
        "echo more >> src/main.c; echo new > new.c; echo top > README; rm -f .env 2>&1; mv .env x 2>&1; true",
    );
    assert_code(&o, 0);
    assert!(stdout(&o).contains("busy"), "{}", stdout(&o));
    assert!(std::fs::read_to_string(sb.project.join("src/main.c"))
        .unwrap()
        .ends_with("more\n"));
    assert!(
        sb.project.join("new.c").exists(),
        "new files at the project root"
    );
    assert!(sb.project.join("README").exists());
    assert_eq!(
        std::fs::read_to_string(sb.project.join(".env")).unwrap(),
        "API_SECRET=FAKE"
    );
}

#[test]
fn a_hidden_directory_in_a_large_system_directory_is_absent() {
    // Like /etc/munge on an HPC node: one overlay, not one bind per entry
    // of the parent; the parent's other entries stay readable.
    let sb = Sandbox::new("hidesys");
    for i in 0..50 {
        sb.write(sb.root.join(format!("sys/f{i}")), "ok");
    }
    sb.write(sb.root.join("sys/munge/munge.key"), "MUNGE-KEY");
    let sys = sb.root.join("sys").display().to_string();
    absent_inside_present_outside(
        &sb,
        &["--ro", &sys, "--hide", &format!("{sys}/munge")],
        &format!("{sys}/munge/munge.key"),
        "MUNGE-KEY",
    );
    let o = sb.jail_sh(
        &["--ro", &sys, "--hide", &format!("{sys}/munge"), "-vv"],
        &format!("cat {sys}/f7; echo; ls {sys} | wc -l"),
    );
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o).split_whitespace().collect::<Vec<_>>(),
        ["ok", "50"]
    );
    let binds = stderr(&o)
        .lines()
        .filter(|l| l.contains(&format!("at {sys}/")))
        .count();
    assert_eq!(binds, 0, "no bind per entry: {}", stderr(&o));
}

#[test]
fn host_tmp_is_private() {
    let sb = Sandbox::new("tmp");
    let marker = format!("/tmp/jail-host-marker-{}", std::process::id());
    std::fs::write(&marker, "host").unwrap();
    let o = sb.jail_sh(
        &[],
        &format!(
            "ls {marker} 2>&1; echo inside > /tmp/inside-{}; ls -A /tmp",
            std::process::id()
        ),
    );
    std::fs::remove_file(&marker).unwrap();
    assert!(stdout(&o).contains("No such file"), "{}", stdout(&o));
    assert!(!std::path::Path::new(&format!("/tmp/inside-{}", std::process::id())).exists());
}

#[test]
fn ro_and_rw_options() {
    let sb = Sandbox::new("rorw");
    sb.write(sb.root.join("data/in.txt"), "input");
    sb.mkdir(sb.root.join("out"));
    let (data, out) = (
        sb.root.join("data").display().to_string(),
        sb.root.join("out").display().to_string(),
    );
    let o = sb.jail_sh(
        &["--ro", &data, "--rw", &out],
        &format!("cat {data}/in.txt > {out}/copy; echo x > {data}/nope"),
    );
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(sb.root.join("out/copy")).unwrap(),
        "input"
    );
    assert!(!sb.root.join("data/nope").exists());
    // Without the options, neither is visible.
    let o = sb.jail_sh(&[], &format!("ls {data}"));
    assert_ne!(o.status.code(), Some(0));
}

#[test]
fn dev_is_minimal_and_has_a_private_pty() {
    let sb = Sandbox::new("dev");
    let o = sb.jail_sh(
        &[],
        "ls /dev; echo x > /dev/null && head -c4 /dev/urandom | wc -c; ls /dev/pts",
    );
    assert_code(&o, 0);
    let out = stdout(&o);
    let names: Vec<&str> = out.lines().collect();
    for want in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm", "fd",
    ] {
        assert!(names.contains(&want), "{want} missing: {out}");
    }
    for not in ["sda", "vda", "mem", "kmsg", "net", "loop0"] {
        assert!(!names.contains(&not), "{not} present: {out}");
    }
    assert!(out.contains("\n4\n"), "{out}");
    // `script` allocates a pty from the jail's own devpts.
    let o = sb.jail_sh(&[], "script -qec 'tty' /dev/null");
    assert!(
        stdout(&o).contains("/dev/pts/0"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
fn run_is_an_empty_tmpfs() {
    let sb = Sandbox::new("run");
    let o = sb.jail_sh(
        &[],
        "ls -A /run; ls /run/user /run/dbus /run/munge 2>&1 | grep -c 'No such'",
    );
    assert_eq!(stdout(&o).lines().last(), Some("3"), "{}", stdout(&o));
}

#[test]
fn gpu_flag_binds_only_devices_that_exist() {
    let _one = GPU_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    let sb = Sandbox::new("gpu");
    let o = sb.jail_sh(&["--gpu"], "ls /dev");
    assert_code(&o, 0);
    let host: Vec<String> = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("nvidia") || n == "kfd" || n == "dri")
        .collect();
    for n in &host {
        assert!(
            stdout(&o).lines().any(|l| l == n),
            "{n} not bound: {}",
            stdout(&o)
        );
    }
    let without = sb.jail_sh(&[], "ls /dev");
    for n in &host {
        assert!(
            !stdout(&without).lines().any(|l| l == n),
            "{n} bound without --gpu"
        );
    }
}

#[test]
fn toolchains_in_home_run_read_only_without_their_credentials() {
    let sb = Sandbox::with_secrets("toolchain");
    sb.write(
        sb.home.join(".cargo/bin/mytool"),
        "#!/bin/sh\necho toolchain-ran\n",
    );
    std::fs::set_permissions(
        sb.home.join(".cargo/bin/mytool"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    sb.write(
        sb.home.join(".cargo/credentials.toml"),
        "[registry]\ntoken = \"FAKE-CARGO\"\n",
    );
    let path = format!("{}:{}", sb.home.join(".cargo/bin").display(), PATH);
    let o = sb
        .jail_cmd(&["--", "sh", "-c", "mytool; echo evil > ~/.cargo/bin/mytool; cat ~/.cargo/credentials.toml; touch ~/.cargo/.package-cache && echo lock-ok"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(out.contains("toolchain-ran"), "{out}{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(
        !out.contains("FAKE-CARGO") && err.contains("No such file"),
        "{out}{err}"
    );
    assert!(out.contains("lock-ok"), "{out}{err}");
    assert_eq!(
        std::fs::read_to_string(sb.home.join(".cargo/bin/mytool")).unwrap(),
        "#!/bin/sh\necho toolchain-ran\n"
    );
}

/// The GPU tests look at the host's /dev, where one of them adds a node.
static GPU_TESTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Removes a device node created for a test, even when the test fails.
struct NodeGuard(&'static str);
impl Drop for NodeGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

#[test]
fn gpu_flag_binds_a_gpu_node_and_it_works() {
    // A stand-in GPU node (the null device's numbers) named like an NVIDIA
    // one: only root can create it, so as a normal user this test skips.
    if !user().switch {
        skip(
            Lack::Setup,
            "creating a stand-in /dev/nvidia node needs root",
        );
        return;
    }
    let _one = GPU_TESTS.lock().unwrap_or_else(|e| e.into_inner());
    const NODE: &str = "/dev/nvidia-jailtest";
    let _guard = NodeGuard(NODE);
    let mk = std::process::Command::new("mknod")
        .args(["-m", "666", NODE, "c", "1", "3"])
        .status()
        .unwrap();
    assert!(mk.success(), "mknod failed");
    let sb = Sandbox::new("gpu-node");
    let o = sb.jail_sh(
        &["--gpu"],
        &format!("echo x > {NODE} && echo wrote-gpu-node"),
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "wrote-gpu-node");
    let o = sb.jail_sh(&[], &format!("ls {NODE}"));
    assert_ne!(o.status.code(), Some(0), "bound without --gpu");
}

#[test]
fn threads_can_be_named_through_proc_but_proc_stays_the_jails() {
    // CUDA's cuInit names its threads through /proc/self/task/TID/comm;
    // refusing that write made it fail with error 304.
    let sb = Sandbox::new("proccomm");
    let o = sb.jail_sh(
        &[],
        "printf renamed > /proc/self/task/$$/comm && cat /proc/$$/comm; \
         echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null || echo sysctl-refused",
    );
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "renamed\nsysctl-refused\n", "{}", stderr(&o));
}

#[test]
fn every_mount_inside_is_nosuid() {
    let sb = Sandbox::new("nosuid");
    sb.mkdir(sb.home.join(".cargo"));
    let o = sb.jail(&["--", "cat", "/proc/self/mountinfo"]);
    assert_code(&o, 0);
    let s = stdout(&o);
    // Read-write binds (the project, the home, caches) and read-only ones.
    assert!(s.lines().count() > 10, "{s}");
    for line in s.lines() {
        // Field 6: the mount's own options.
        let opts = line.split(' ').nth(5).unwrap_or("");
        assert!(opts.split(',').any(|o| o == "nosuid"), "not nosuid: {line}");
    }
}
