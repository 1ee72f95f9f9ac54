//! The command line's shape: jail's options before a subcommand or after
//! `explain`/`run`, and refused where they would be silently ignored.

mod common;
use common::*;

#[test]
fn options_before_or_after_explain_give_the_same_policy() {
    let sb = Sandbox::new("cli-order");
    let before = sb.jail(&["--ro", "/srv", "-p", "codex", "explain", "--", "make"]);
    let after = sb.jail(&["explain", "--ro", "/srv", "-p", "codex", "--", "make"]);
    let split = sb.jail(&["--ro", "/srv", "explain", "-p", "codex", "--", "make"]);
    assert_code(&before, 0);
    assert!(stdout(&before).contains("codex"), "{}", stdout(&before));
    assert_eq!(stdout(&before), stdout(&after));
    assert_eq!(stdout(&before), stdout(&split));
    let o = sb.jail(&[
        "--ro",
        "/srv",
        "run",
        "--dry-run",
        "-p",
        "codex",
        "--",
        "make",
    ]);
    assert_code(&o, 0);
    assert_eq!(stdout(&o), stdout(&before));
}

#[test]
fn options_that_do_not_apply_are_refused_not_ignored() {
    let sb = Sandbox::new("cli-na");
    let o = sb.jail(&["--ro", "/srv", "doctor"]);
    assert_code(&o, 125);
    assert_eq!(
        stderr(&o),
        "jail: --ro applies to running a command, not to `jail doctor`\n"
    );
    let o = sb.jail(&["profiles", "-p", "claude"]);
    assert_code(&o, 125);
    assert!(stderr(&o).starts_with("jail: "), "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    // -v and -q go anywhere.
    assert_code(&sb.jail(&["profiles", "-q"]), 0);
}

#[test]
fn explain_shows_what_an_untrusted_widening_project_file_would_do() {
    let sb = Sandbox::new("cli-untrusted");
    let file = sb.project.join(".jail.toml");
    sb.write(
        &file,
        "[filesystem]\nro = [\"/opt\"]\n[network]\nmode = \"allowlist\"\nallow = [\"pypi.org\"]\n",
    );
    for args in [&["explain", "--", "true"][..], &["--dry-run", "--", "true"]] {
        let o = sb.jail(args);
        assert_code(&o, 0);
        let out = stdout(&o);
        assert!(
            out.starts_with(&format!(
                "# NOT IN FORCE: {} is not trusted and would widen the policy",
                file.display()
            )),
            "{out}"
        );
        assert!(
            out.contains(&format!(
                "#     cd {} && jail trust\n",
                sb.project.display()
            )),
            "{out}"
        );
        let opt = out
            .lines()
            .find(|l| l.trim_start().starts_with("/opt "))
            .unwrap_or("");
        assert!(opt.contains("# UNTRUSTED project"), "{out}");
        let allow = out
            .lines()
            .find(|l| l.trim_start().starts_with("pypi.org"))
            .unwrap_or("");
        assert!(allow.contains("(not in force)"), "{out}");
        assert!(!out.contains("trusted with `jail trust`"), "{out}");
    }
    // Running still refuses.
    let o = sb.jail(&["--", "true"]);
    assert_code(&o, 125);
    assert!(stderr(&o).contains("jail trust"), "{}", stderr(&o));
    // Once trusted, explain shows it without the banner.
    assert_code(&sb.jail(&["trust"]), 0);
    let out = stdout(&sb.jail(&["explain", "--", "true"]));
    assert!(
        !out.contains("NOT IN FORCE") && !out.contains("UNTRUSTED"),
        "{out}"
    );
    assert!(out.contains("trusted with `jail trust`"), "{out}");
}
