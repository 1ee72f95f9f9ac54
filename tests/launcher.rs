//! The core launcher, end to end: the real binary, as an unprivileged user.

mod common;
use common::*;

#[test]
fn runs_a_command_and_propagates_its_status() {
    let sb = Sandbox::new("status");
    assert_code(&sb.jail(&["true"]), 0);
    assert_code(&sb.jail(&["false"]), 1);
    assert_code(&sb.jail_sh(&[], "exit 42"), 42);
}
