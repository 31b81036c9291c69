//! The first Ctrl+C (or SIGTERM) ends a command within about a second, whatever it is doing,
//! even when the broker stops answering in the middle: the command says what it could not
//! finish, and what was lost is named, never hidden.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::broker::Dedicated;
use crate::support::kafka::{create_topic_on, end_offsets_on};
use crate::support::terminal::Terminal;
use crate::support::{stockstream, Running};

/// How soon after the signal each command must have ended: generous for a loaded 2-core
/// machine, far below any of their timeouts (30 s and more here).
const BOUND: Duration = Duration::from_secs(5);

/// `stockstream -b BOOTSTRAP ARGS…`, on the broker of the test's own.
fn on(bootstrap: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = stockstream();
    cmd.args(["-b", bootstrap]).args(args);
    cmd
}

/// Waits until `topic` holds at least one record.
fn wait_for_records(bootstrap: &str, topic: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while end_offsets_on(bootstrap, topic) == 0 {
        assert!(Instant::now() < deadline, "nothing arrived in {topic}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ctrl_c_ends_every_command_within_seconds_while_the_broker_is_frozen() {
    let kafka = Dedicated::start();
    let bootstrap = kafka.bootstrap.clone();
    let (input, output) = ("stops-in", "stops-bars");
    create_topic_on(&bootstrap, input, 2);
    // Ticks keep coming, so the producer has records in flight when the broker freezes.
    let producer = Running::spawn(on(
        &bootstrap,
        &[
            "produce",
            "--topic",
            input,
            "--rate",
            "50",
            "--timeout",
            "30s",
        ],
    ));
    // No commit before the stop: the last one is what the frozen broker cannot take.
    let aggregate = Running::spawn(on(
        &bootstrap,
        &[
            "aggregate",
            "--topic",
            input,
            "--output-topic",
            output,
            "--from",
            "earliest",
            "--window",
            "1s",
            "--watermark",
            "0s",
            "--commit-interval",
            "1h",
            "--instance-id",
            "stops",
        ],
    ));
    wait_for_records(&bootstrap, output);
    // demo-partitions at its first pause, its topic made.
    let mut walk = on(
        &bootstrap,
        &["demo-partitions", "--topic", "stops-walk", "--step"],
    );
    walk.stdout(Stdio::null());
    let mut walk = Terminal::spawn(walk);
    walk.wait_for_text("Press Enter", Duration::from_secs(60));

    kafka.freeze();
    // A topic command started while the broker does not answer.
    let describe = Running::spawn(on(
        &bootstrap,
        &["topic", "describe", input, "--timeout", "30s"],
    ));
    std::thread::sleep(Duration::from_secs(1));

    let signalled = Instant::now();
    walk.signal(libc::SIGINT);
    producer.signal(libc::SIGINT);
    aggregate.signal(libc::SIGTERM);
    describe.signal(libc::SIGINT);
    let within = |what: &str, output: &str| {
        let took = signalled.elapsed();
        assert!(took < BOUND, "{what} took {took:?} to end:\n{output}");
    };

    let produced = producer.wait(BOUND * 6);
    within("produce", &produced.stderr);
    // The records in flight are given up and named: exit 1.
    produced.assert_code(1);
    assert!(
        produced
            .stderr
            .contains("the brokers sent no delivery report for 1s"),
        "{}",
        produced.stderr
    );
    assert!(
        produced.stderr.contains("Not delivered"),
        "{}",
        produced.stderr
    );

    let aggregated = aggregate.wait(BOUND * 6);
    within("aggregate", &aggregated.stderr);
    aggregated.assert_code(130);
    assert!(
        aggregated.stderr.contains(
            "no last commit (the brokers did not answer within 1s of the stop; the next run redoes the work since the previous commit): stopped by Ctrl+C or SIGTERM"
        ),
        "{}",
        aggregated.stderr
    );
    assert!(
        !aggregated.stderr.contains("CRITICAL"),
        "{}",
        aggregated.stderr
    );

    let (code, shown) = walk.wait(BOUND * 6);
    within("demo-partitions", &shown);
    assert_eq!(code, Some(130), "{shown}");
    assert!(
        shown.contains(
            "removing topic `stops-walk` (`stockstream topic delete stops-walk` removes it later)"
        ),
        "{shown}"
    );

    // No handler of its own: the signal ends it at once.
    let described = describe.wait(BOUND * 6);
    within("topic describe", &described.stderr);
    assert_eq!(described.code, None, "ended by the signal: {described:?}");
}
