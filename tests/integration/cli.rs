//! The command line itself: help, version, completions, the man page, usage errors and
//! their exit codes, a closed stdout. No broker needed.

use std::os::fd::{FromRawFd as _, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::terminal::Terminal;
use crate::support::{run_for, stockstream, unique, Run};

/// Runs `cmd` and checks that it is a usage error (exit 2) said within 3 s: nothing was
/// waited for (a run that tried to reach a broker on port 1 would wait its timeout).
#[track_caller]
fn refused_at_once(cmd: Command, what: &str) -> Run {
    let started = std::time::Instant::now();
    let run = run_for(cmd, Duration::from_secs(30));
    run.assert_code(2);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{what} took {:?}",
        started.elapsed()
    );
    run
}

/// Checks that stderr holds each of `words`.
#[track_caller]
fn assert_says(run: &Run, words: &[&str]) {
    for word in words {
        assert!(run.stderr.contains(word), "no `{word}` in\n{}", run.stderr);
    }
}

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

/// Runs `cmd` with stdout a pipe whose reader is already closed (as after `| head -1` has
/// read its line), and returns the exit code and stderr.
fn with_closed_stdout(mut cmd: Command) -> (Option<i32>, String) {
    let mut fds = [0; 2];
    // SAFETY: pipe(2) fills both descriptors, which are then owned here exactly once.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe(2)");
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    let out = cmd
        .stdout(Stdio::from(writer))
        .output()
        .expect("running stockstream");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_ends_quietly_with_exit_0() {
    let profiles: String = (0..500)
        .map(|i| format!("[profiles.cluster{i}]\nbrokers = \"kafka-{i}:9092\"\n"))
        .collect();
    let dir = std::env::temp_dir().join(unique("stockstream-closed-stdout"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.toml");
    std::fs::write(&file, profiles).unwrap();
    let file = file.to_str().unwrap();
    for args in [
        &["completions", "bash"][..],
        &["man"],
        &["--config-file", file, "profile", "list"],
        &["--config-file", file, "profile", "list", "-o", "json"],
        &["--config-file", file, "profile", "show", "cluster7"],
    ] {
        let mut cmd = stockstream();
        cmd.args(args);
        let (code, stderr) = with_closed_stdout(cmd);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("Broken pipe"),
            "{args:?} said nothing: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let mut cmd = stockstream();
        cmd.args(["completions", shell]);
        let run = run_for(cmd, Duration::from_secs(10));
        run.assert_code(0);
        for word in ["stockstream", "aggregate", "demo-partitions", "--brokers"] {
            assert!(
                run.stdout.contains(word),
                "{shell}: no `{word}` in\n{}",
                run.stdout
            );
        }
    }
    let mut cmd = stockstream();
    cmd.args(["completions", "tcsh"]);
    run_for(cmd, Duration::from_secs(10)).assert_code(2);
}

#[test]
fn man_page_on_stdout_and_one_per_subcommand_in_a_directory() {
    let mut cmd = stockstream();
    cmd.arg("man");
    let run = run_for(cmd, Duration::from_secs(10));
    run.assert_code(0);
    assert!(run.stdout.contains(".TH stockstream 1"), "{}", run.stdout);
    assert!(run.stdout.contains("aggregate"), "{}", run.stdout);

    let dir = std::env::temp_dir().join(unique("stockstream-man"));
    let mut cmd = stockstream();
    cmd.arg("man").arg("--dir").arg(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    run_for(cmd, Duration::from_secs(10)).assert_code(0);
    let page = std::fs::read_to_string(dir.join("stockstream-aggregate.1")).unwrap();
    assert!(page.contains(".TH stockstream-aggregate 1"), "{page}");
    assert!(page.contains("window"), "{page}");
    assert!(dir.join("stockstream-topic-create.1").exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn version_names_librdkafka_and_its_features() {
    let mut cmd = stockstream();
    cmd.arg("--version");
    let run = run_for(cmd, Duration::from_secs(10));
    run.assert_code(0);
    assert!(run.stdout.starts_with("stockstream 0."), "{}", run.stdout);
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("librdkafka "))
        .unwrap_or_else(|| panic!("no librdkafka line in\n{}", run.stdout));
    let version = line.split_whitespace().nth(1).unwrap_or_default();
    assert!(
        version.split('.').count() == 3 && version.split('.').all(|n| n.parse::<u32>().is_ok()),
        "{line}"
    );
    assert!(
        run.stdout.contains("features:") && run.stdout.contains("ssl"),
        "{}",
        run.stdout
    );
}

#[test]
fn bad_values_are_refused_before_any_broker_is_contacted() {
    for (args, flag) in [
        (&["produce", "--interval", "0"][..], "--interval"),
        (&["produce", "--interval", "0ms"], "--interval"),
        (&["produce", "--rate", "0"], "--rate"),
        (&["aggregate", "--window", "0s"], "--window"),
        (&["aggregate", "--slide", "0s"], "--slide"),
        (
            &["aggregate", "--slide", "20s", "--window", "10s"],
            "--window 10s",
        ),
        (
            &["aggregate", "--commit-interval", "0"],
            "--commit-interval",
        ),
        (
            &["aggregate", "--progress-interval", "0"],
            "--progress-interval",
        ),
        (
            &["aggregate", "--emit", "update", "--update-interval", "0"],
            "--update-interval",
        ),
        (&["demo", "--interval", "0"], "--interval"),
        (&["topic", "list", "-b", ""], "--brokers"),
        (
            &["topic", "list", "-b", "host:notaport"],
            "the port `notaport`",
        ),
        (&["produce", "-b", "a:9092,:9093"], "no host name"),
    ] {
        // Nothing listens on port 1: a run that tried to connect would wait its --timeout.
        let mut cmd = stockstream();
        cmd.args(["-b", "127.0.0.1:1"]).args(args);
        let run = refused_at_once(cmd, &format!("{args:?}"));
        assert!(
            run.stderr.contains(flag),
            "{args:?}: no `{flag}` in {}",
            run.stderr
        );
        assert!(!run.stderr.contains("ms)"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn a_stop_while_waiting_for_the_brokers_ends_the_wait_at_once() {
    for (command, signal) in [("produce", libc::SIGINT), ("aggregate", libc::SIGTERM)] {
        // Nothing listens on port 1: without the stop, each would wait its 20 s.
        let mut cmd = stockstream();
        cmd.args(["-b", "127.0.0.1:1", command, "--timeout", "20s"])
            .stdout(std::process::Stdio::null());
        // On a terminal, so that what it says is seen as it says it: a wait longer than a
        // second says what it waits for, and the stop comes during that wait.
        let mut job = Terminal::spawn(cmd);
        job.wait_for_text("Waiting for Kafka at 127.0.0.1:1", Duration::from_secs(10));
        let asked = std::time::Instant::now();
        job.signal(signal);
        let (code, shown) = job.wait(Duration::from_secs(10));
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{command} took {:?} to stop",
            asked.elapsed()
        );
        assert_eq!(code, Some(130), "{command}: {shown}");
        assert!(
            shown.contains("stopped before Kafka at 127.0.0.1:1 answered; nothing was done"),
            "{command}: {shown}"
        );
        assert!(!shown.contains("CRITICAL"), "{shown}");
    }
}

/// Every command that makes Kafka clients (all take -X), before anything is contacted.
const CLIENT_COMMANDS: [&[&str]; 9] = [
    &["produce"],
    &["aggregate"],
    &["topic", "create", "t"],
    &["topic", "describe", "t"],
    &["topic", "list"],
    &["topic", "delete", "t", "--yes"],
    &["demo-partitions"],
    &["demo"],
    &["demo", "-b", "127.0.0.1:1"],
];

#[test]
fn an_unknown_or_invalid_client_setting_is_a_usage_error_in_librdkafka_s_words() {
    for command in CLIENT_COMMANDS {
        for (setting, says) in [
            ("linger.ms=abc", "Invalid value for configuration property"),
            ("linger.ms=-5", "outside allowed range 0..900000"),
            (
                "nonsense=1",
                r#"No such configuration property: "nonsense""#,
            ),
            (
                "sasl.pasword=hunter2",
                r#"No such configuration property: "sasl.pasword""#,
            ),
        ] {
            // Nothing listens on port 1: a run that tried to connect would wait its timeout.
            let mut cmd = stockstream();
            cmd.args(["-b", "127.0.0.1:1", "-X", setting]).args(command);
            let run = refused_at_once(cmd, &format!("{command:?} -X {setting}"));
            let key = setting.split('=').next().unwrap_or_default();
            let named = format!("invalid -X setting `{key}=");
            assert_says(&run, &[&named, says, "CONFIGURATION.md"]);
            assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
        }
    }
}

#[test]
fn settings_librdkafka_refuses_together_are_a_usage_error_before_any_contact() {
    // Each is valid alone; with produce's idempotent producer, acks must be all.
    let mut cmd = stockstream();
    cmd.args([
        "-b",
        "127.0.0.1:1",
        "-X",
        "acks=1",
        "produce",
        "--timeout",
        "20s",
    ]);
    let run = refused_at_once(cmd, "the run");
    assert_says(
        &run,
        &[
            "librdkafka refused the client settings: `acks` must be set to `all`",
            "check the -X settings",
        ],
    );
}

#[test]
fn a_profile_setting_librdkafka_refuses_is_a_usage_error_naming_the_profile() {
    let dir = std::env::temp_dir().join(unique("stockstream-bad-profile"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.toml");
    std::fs::write(
        &file,
        "[profiles.slow]\nbrokers = \"127.0.0.1:1\"\n[profiles.slow.settings]\n\"linger.ms\" = \"soon\"\n",
    )
    .unwrap();
    let mut cmd = stockstream();
    cmd.arg("--config-file").arg(&file).args([
        "--profile",
        "slow",
        "topic",
        "list",
        "--timeout",
        "20s",
    ]);
    let run = refused_at_once(cmd, "the run");
    assert_says(
        &run,
        &[
            "profile `slow` sets `linger.ms=soon`, which librdkafka refuses",
            "Invalid value",
        ],
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn tables_on_stdout_follow_color() {
    let dir = std::env::temp_dir().join(unique("stockstream-color"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.toml");
    std::fs::write(&file, "[profiles.local]\nbrokers = \"127.0.0.1:9092\"\n").unwrap();
    for (color, bold) in [("always", true), ("never", false), ("auto", false)] {
        for command in ["list", "show local"] {
            let mut cmd = stockstream();
            // `auto` on a pipe: no colour, whatever NO_COLOR says.
            cmd.env_remove("NO_COLOR")
                .arg("--config-file")
                .arg(&file)
                .args(["--color", color, "profile"])
                .args(command.split(' '));
            let run = run_for(cmd, Duration::from_secs(10));
            run.assert_code(0);
            assert_eq!(
                run.stdout.starts_with("\x1b[1m"),
                bold,
                "--color {color} profile {command}: {:?}",
                run.stdout
            );
            assert_eq!(run.stdout.contains('\x1b'), bold, "{:?}", run.stdout);
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_help_has_examples_and_the_global_flags_under_their_own_heading() {
    for command in [
        "produce",
        "aggregate",
        "topic create",
        "topic describe",
        "topic list",
        "topic delete",
        "demo-partitions",
        "demo",
        "profile list",
        "profile show",
        "completions",
        "man",
    ] {
        let mut cmd = stockstream();
        cmd.args(command.split(' ')).arg("--help");
        let run = run_for(cmd, Duration::from_secs(10));
        run.assert_code(0);
        let help = &run.stdout;
        let example = format!("Examples:\n  stockstream {command}");
        assert!(help.contains(&example), "{command}: no examples\n{help}");
        let (own, global) = help
            .split_once("\nGlobal options:\n")
            .unwrap_or_else(|| panic!("{command}: no global heading\n{help}"));
        for flag in [
            "--brokers",
            "-X <KEY=VALUE>",
            "--profile",
            "--color",
            "--verbose",
        ] {
            assert!(
                global.contains(flag) && !own.contains(&format!("  {flag}")),
                "{command}: {flag} is not under the global heading\n{help}"
            );
        }
    }
}

#[test]
fn the_top_level_long_help_lists_the_exit_codes() {
    let mut cmd = stockstream();
    cmd.arg("--help");
    let run = run_for(cmd, Duration::from_secs(10));
    run.assert_code(0);
    let codes = run
        .stdout
        .split_once("\nExit codes:\n")
        .unwrap_or_else(|| panic!("no exit codes in\n{}", run.stdout))
        .1;
    for (code, says) in [
        ("0", "success"),
        ("1", "failure"),
        ("2", "usage error"),
        ("3", "Kafka unreachable"),
        ("4", "the topic does not exist"),
        ("5", "the topic already exists"),
        ("7", "PostgreSQL unreachable"),
        ("130", "a second Ctrl+C"),
    ] {
        assert!(
            codes.contains(&format!("{code:>5}  {says}")),
            "exit code {code}:\n{codes}"
        );
    }
    // -h stays a summary.
    let mut cmd = stockstream();
    cmd.arg("-h");
    let run = run_for(cmd, Duration::from_secs(10));
    run.assert_code(0);
    assert!(!run.stdout.contains("Exit codes:"), "{}", run.stdout);
}

#[test]
fn help_says_what_demo_does_with_brokers_and_what_the_instance_id_defaults_to() {
    let help = |command: &str| {
        let mut cmd = stockstream();
        cmd.env("STOCKSTREAM_BROKERS", "kafka-from-env:9092")
            .args(command.split(' '))
            .arg("--help");
        let run = run_for(cmd, Duration::from_secs(10));
        run.assert_code(0);
        run.stdout
    };
    // What --help says of one flag: its paragraph, unwrapped.
    let flag = |help: &str, flag: &str| -> String {
        let (_, rest) = help
            .split_once(flag)
            .unwrap_or_else(|| panic!("no {flag} in\n{help}"));
        let paragraph = rest.split("\n\n").next().unwrap_or_default();
        paragraph.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let demo = flag(&help("demo"), "--brokers <BROKERS>");
    assert!(
        !demo.contains("[env: STOCKSTREAM_BROKERS") && !demo.contains("[default:"),
        "{demo}"
    );
    assert!(demo.contains("STOCKSTREAM_BROKERS does not"), "{demo}");
    // Everywhere else, -b reads the environment.
    let produce = flag(&help("produce"), "--brokers <BROKERS>");
    assert!(
        produce.contains("[env: STOCKSTREAM_BROKERS=kafka-from-env:9092]"),
        "{produce}"
    );
    let instance = flag(&help("aggregate"), "--instance-id <ID>");
    assert!(instance.contains("Default: the host name"), "{instance}");
}
