//! The command line itself: help, usage errors and their exit codes. No broker needed.

use std::time::Duration;

use crate::support::{run_for, stockstream};

#[test]
fn help_lists_the_subcommands() {
    let mut cmd = stockstream();
    cmd.arg("--help");
    let run = run_for(cmd, Duration::from_secs(10));
    run.assert_code(0);
    assert!(run.stdout.contains("produce"), "{}", run.stdout);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["produce", "--rate", "fast"][..],
        &["produce", "--symbols", "IBM"],
        &["produce", "--interval", "1s", "--rate", "10"],
        &["no-such-command"],
    ] {
        let mut cmd = stockstream();
        cmd.args(args);
        let run = run_for(cmd, Duration::from_secs(10));
        run.assert_code(2);
        assert!(!run.stderr.is_empty(), "{args:?} printed no reason");
    }
}
