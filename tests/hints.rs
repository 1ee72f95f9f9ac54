//! When a command cannot start in the jail, jail says whether the jail is
//! the cause and what would fix it; and a program that is not installed
//! leaves nothing behind on the host.

mod common;
use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// A venv in the home (outside the project), "activated": its bin first
/// on PATH. Its python is a link to the system's, as `python3 -m venv`
/// makes it.
fn venv(sb: &Sandbox) -> (String, std::path::PathBuf) {
    let bin = sb.home.join("venv/bin");
    sb.mkdir(&bin);
    std::os::unix::fs::symlink("/usr/bin/python3", bin.join("python")).unwrap();
    let tool = bin.join("pytest");
    sb.write(
        &tool,
        &format!("#!{}/python\nprint('pytest ran')\n", bin.display()),
    );
    fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).unwrap();
    (format!("{}:{PATH}", bin.display()), tool)
}

#[test]
fn a_command_on_the_host_but_not_in_the_jail_says_where_and_what_to_add() {
    let sb = Sandbox::new("hint-venv");
    let (path, _) = venv(&sb);
    // Outside the jail it runs.
    let o = sb
        .as_user("pytest".as_ref())
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "pytest ran\n", "{}", stderr(&o));

    let o = sb
        .jail_cmd(&["pytest"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_code(&o, 127);
    let err = stderr(&o);
    assert_eq!(
        err,
        "jail: pytest: not found in the jail; on the host it is ~/venv/bin/pytest (add --ro ~/venv)\n"
    );
    // The advice works as given.
    let o = sb
        .jail_cmd(&["--ro", "~/venv", "pytest"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "pytest ran\n");
}

#[test]
fn a_script_whose_interpreter_is_missing_is_named_as_such() {
    let sb = Sandbox::new("hint-interp");
    let (_, _) = venv(&sb);
    // A project script (visible) run by the venv's python (not visible).
    let script = sb.project.join("tool.py");
    sb.write(
        &script,
        &format!(
            "#!{}/venv/bin/python\nprint('tool ran')\n",
            sb.home.display()
        ),
    );
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let o = sb.jail(&["./tool.py"]);
    assert_code(&o, 126);
    let err = stderr(&o);
    assert!(
        err.starts_with("jail: ./tool.py: its interpreter ~/venv/bin/python (the #! line of ")
            && err.ends_with("tool.py) is not in the jail (add --ro ~/venv)\n"),
        "{err}"
    );
    assert!(!err.contains("not found"), "{err}");
    let o = sb.jail(&["--ro", "~/venv", "./tool.py"]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "tool ran\n");

    // An interpreter missing everywhere is not the jail's doing.
    sb.write(&script, "#!/no/such/interpreter\n");
    let o = sb.jail(&["./tool.py"]);
    assert_code(&o, 126);
    assert!(
        stderr(&o).contains("/no/such/interpreter (the #! line of")
            && stderr(&o).contains("does not exist, on the host either"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_command_found_nowhere_is_plainly_not_found() {
    let sb = Sandbox::new("hint-none");
    let o = sb.jail(&["no-such-command-xyz"]);
    assert_code(&o, 127);
    assert_eq!(stderr(&o), "jail: no-such-command-xyz: command not found\n");
}

#[test]
fn an_agent_that_is_not_installed_creates_nothing_on_the_host() {
    let sb = Sandbox::new("no-agent");
    let o = sb.jail(&["claude"]);
    assert_code(&o, 127);
    // (After any warning about the profile's network.)
    assert!(
        stderr(&o).ends_with("\njail: claude: command not found\n")
            || stderr(&o) == "jail: claude: command not found\n",
        "{}",
        stderr(&o)
    );
    let left: Vec<_> = fs::read_dir(&sb.home)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "created in the home: {left:?}");

    // Installed (a stub on PATH, in the project so the jail shows it):
    // its state directory is made, private.
    let bin = sb.project.join("bin");
    sb.write(bin.join("claude"), "#!/bin/sh\necho agent-ran\n");
    fs::set_permissions(bin.join("claude"), fs::Permissions::from_mode(0o755)).unwrap();
    let o = sb
        .jail_cmd(&["claude"])
        .env("PATH", format!("{}:{PATH}", bin.display()))
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert_eq!(stdout(&o), "agent-ran\n");
    let m = fs::metadata(sb.home.join(".claude")).expect("~/.claude created");
    assert!(m.is_dir());
    assert_eq!(m.permissions().mode() & 0o777, 0o700);
}
