//! Interactive use on a real pseudo-terminal: a shell in the jail, job
//! control, Ctrl-C, window size and resize, and `jail` itself as a job of
//! the user's shell. Driven by tests/helpers/pty_drive.py as the test user.

mod common;
use common::*;

/// Runs `argv` on a pty of `rows`x`cols` with the given script; returns the
/// driver's output (ending in `exit=N` when the script waits).
fn drive(sb: &Sandbox, rows: u16, cols: u16, argv: &[&str], script: &str) -> String {
    // One terminal session at a time: keystroke timing (Ctrl-Z after a
    // program started) is less likely to race on a loaded 2-core CI box.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    pty_drive(sb, rows, cols, argv, &[("PS1", "PROMPT$ ")], script)
}

#[test]
fn interactive_shell_with_job_control_ctrl_c_and_resize() {
    let sb = Sandbox::new("tty-shell");
    let jail = jail_bin().display().to_string();
    let out = drive(
        &sb,
        40,
        120,
        &[&jail, "--", "bash", "--norc", "--noprofile", "-i"],
        "expect PROMPT\\$ \n\
         send echo $((6*7)) $JAIL\n\
         expect 42 1\n\
         send test -t 0 && echo is-a-tty\n\
         expect is-a-tty\n\
         send echo via-dev-stdout > /dev/stdout; echo via-dev-tty > /dev/tty\n\
         expect via-dev-stdout\\s+via-dev-tty\n\
         send stty size\n\
         expect 40 120\n\
         resize 50 132\n\
         sleep 0.2\n\
         send stty size\n\
         expect 50 132\n\
         send sleep 30\n\
         sleep 0.5\n\
         ctrl c\n\
         send echo after-ctrl-c $?\n\
         expect after-ctrl-c 130\n\
         send sleep 31\n\
         sleep 0.5\n\
         ctrl z\n\
         expect Stopped\n\
         send jobs\n\
         expect sleep 31\n\
         send fg\n\
         expect sleep 31\n\
         sleep 0.5\n\
         ctrl c\n\
         send echo back-from-fg $?\n\
         expect back-from-fg 130\n\
         send exit 7\n\
         wait\n",
    );
    assert!(out.trim_end().ends_with("exit=7"), "{out}");
}

#[test]
fn jail_is_a_job_of_the_users_shell() {
    let sb = Sandbox::new("tty-job");
    let jail = jail_bin().display().to_string();
    // The user's own shell runs jail; Ctrl-Z stops it, fg resumes it,
    // Ctrl-C ends the jailed program with 130.
    let out = drive(
        &sb,
        30,
        100,
        &["bash", "--norc", "--noprofile", "-i"],
        &format!(
            "expect PROMPT\\$ \n\
             send {jail} -- sh -c 'echo started; sleep 40; echo not-interrupted'\n\
             expect started\n\
             sleep 0.5\n\
             ctrl z\n\
             expect Stopped\n\
             send fg\n\
             sleep 0.5\n\
             ctrl c\n\
             send echo status=$?\n\
             expect status=130\n\
             send {jail} -- sh -c 'stty size'\n\
             expect 30 100\n\
             send exit 0\n\
             wait\n"
        ),
    );
    assert!(!out.contains("not-interrupted"), "{out}");
    assert!(out.trim_end().ends_with("exit=0"), "{out}");
}

#[test]
fn full_screen_program_gets_raw_keys_and_the_window_size() {
    let sb = Sandbox::new("tty-tui");
    let jail = jail_bin().display().to_string();
    let tui = "import curses\n\
               def main(s):\n    y,x=s.getmaxyx(); s.addstr(0,0,'SIZE %dx%d' % (y,x)); s.refresh()\n    \
               k=s.getkey(); curses.endwin(); print('KEY', repr(k))\n\
               curses.wrapper(main)";
    let out = drive(
        &sb,
        24,
        80,
        &[&jail, "--", "python3", "-c", tui],
        "expect SIZE 24x80\n\
         send q\n\
         expect KEY 'q'\n\
         wait\n",
    );
    assert!(out.trim_end().ends_with("exit=0"), "{out}");
}

#[test]
fn tty_names_the_terminal_inside() {
    // `tty` (ttyname(3)) must resolve inside, as GPG_TTY=$(tty) and
    // others rely on it; writing to that name reaches the same terminal.
    let sb = Sandbox::new("tty-name");
    let jail = jail_bin().display().to_string();
    let out = drive(
        &sb,
        24,
        80,
        &[
            &jail,
            "--",
            "sh",
            "-c",
            "echo name=$(tty); echo via-name > \"$(tty)\"; test -c \"$(tty)\" && echo is-char",
        ],
        "expect name=/dev/console\n\
         expect via-name\n\
         expect is-char\n\
         wait\n",
    );
    assert!(out.trim_end().ends_with("exit=0"), "{out}");
    // Not on a terminal: still "not a tty", and no /dev/console.
    let o = sb.jail(&[
        "--",
        "sh",
        "-c",
        "tty; test -e /dev/console || echo no-console",
    ]);
    assert_eq!(stdout(&o), "not a tty\nno-console\n");
}

/// A bare `jail` on a terminal with SHELL=`shell`: the prompt carries the
/// jail's prefix after the user's own startup files ran, also when they
/// rebuild the prompt before every line.
#[test]
fn the_interactive_shell_shows_it_is_in_a_jail() {
    let sb = Sandbox::new("tty-prompt");
    // A prompt framework's way: PS1 rebuilt before each prompt.
    sb.write(
        sb.home.join(".bashrc"),
        "PS1='MINE$ '\nPROMPT_COMMAND='PS1=\"MINE\\$ \"'\n",
    );
    let jail = jail_bin().display().to_string();
    let bash = ["env", "SHELL=/bin/bash", &jail];
    let out = drive(
        &sb,
        24,
        80,
        &bash,
        "expect \\(jail\\) MINE\\$ \n\
         send true\n\
         expect \\(jail\\) MINE\\$ \n\
         send echo \"[$PS1]\" $JAIL_PROFILE\n\
         expect \\[\\(jail\\) MINE\\$ \\] shell\n\
         send echo left=$(ls -A /tmp | grep -c jail-shell)\n\
         expect left=0\n\
         send exit 3\n\
         wait\n",
    );
    assert!(out.trim_end().ends_with("exit=3"), "{out}");

    // JAIL_PROMPT changes it; empty turns it off.
    let mut custom = bash.to_vec();
    custom.extend(["--env", "JAIL_PROMPT=[lab] "]);
    drive(
        &sb,
        24,
        80,
        &custom,
        "send echo \"<$PS1>\"\n\
         expect <\\[lab\\] MINE\\$ >\n\
         send exit\n\
         wait\n",
    );
    let mut off = bash.to_vec();
    off.extend(["--env", "JAIL_PROMPT="]);
    drive(
        &sb,
        24,
        80,
        &off,
        "send echo \"<$PS1>\"\n\
         expect <MINE\\$ >\n\
         send exit\n\
         wait\n",
    );
}

/// Where a shell is installed; in CI (.ci/run installs it) it must be.
fn installed(program: &str) -> Option<String> {
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .ok()
        .filter(|o| o.status.success());
    if o.is_none() {
        skip(Lack::Setup, &format!("{program} is not installed"));
    }
    o.map(|o| stdout(&o).trim().to_string())
}

#[test]
fn zsh_and_fish_prompts_show_the_jail_too() {
    let sb = Sandbox::new("tty-prompt-zf");
    let jail = jail_bin().display().to_string();
    if let Some(zsh) = installed("zsh") {
        sb.write(
            sb.home.join(".zshrc"),
            "PROMPT='ZMINE%# '\nprecmd() { PROMPT='ZMINE%# ' }\n",
        );
        let zsh = format!("SHELL={zsh}");
        let out = drive(
            &sb,
            24,
            80,
            &["env", &zsh, &jail],
            "expect \\(jail\\) ZMINE\n\
             send true\n\
             expect \\(jail\\) ZMINE\n\
             send echo \"<$ZDOTDIR>\"\n\
             expect <[^>]*home>\n\
             send exit 4\n\
             wait\n",
        );
        assert!(out.trim_end().ends_with("exit=4"), "{out}");
    }
    if let Some(fish) = installed("fish") {
        sb.write(
            sb.home.join(".config/fish/functions/fish_prompt.fish"),
            "function fish_prompt\n  printf 'FMINE> '\nend\n",
        );
        let fish = format!("SHELL={fish}");
        let out = drive(
            &sb,
            24,
            80,
            &["env", &fish, &jail],
            "expect \\(jail\\) FMINE> \n\
             send exit 5\n\
             wait\n",
        );
        assert!(out.trim_end().ends_with("exit=5"), "{out}");
    }
}
