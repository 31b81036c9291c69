//! stockstream on a secured listener of the real broker: SASL/SCRAM over TLS, with the test
//! CA the launcher made. The right settings work for produce, topic and aggregate; a wrong
//! password, an untrusted CA and a plaintext client each fail fast or within the timeout,
//! saying which; no secret ever reaches the output, even at the highest verbosity.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::broker::{Secure, SCRAM_PASSWORD, SCRAM_USER};
use crate::support::kafka::{create_topic, produce_raw, read_all, read_committed, Raw};
use crate::support::{broker, run_for, stockstream, unique, Run, Running};

/// `stockstream` on the SASL_SSL listener with `mechanism`; the password is given by the
/// caller (an environment variable, a file, or -X).
fn secured(secure: &Secure, mechanism: &str) -> Command {
    let mut cmd = stockstream();
    cmd.env_remove("STOCKSTREAM_SASL_PASSWORD")
        .args(["-b", &secure.bootstrap])
        .args(["-X", "security.protocol=SASL_SSL"])
        .args(["-X", &format!("sasl.mechanism={mechanism}")])
        .args(["-X", &format!("sasl.username={SCRAM_USER}")])
        .args(["-X", &format!("ssl.ca.location={}", secure.ca.display())]);
    cmd
}

/// Fails if the password shows anywhere in what the run printed.
#[track_caller]
fn assert_no_secret(run: &Run, secret: &str) {
    assert!(
        !run.stderr.contains(secret) && !run.stdout.contains(secret),
        "a secret reached the output:\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout,
        run.stderr
    );
}

fn scratch_dir() -> PathBuf {
    let dir = broker::repo_root()
        .join("target")
        .join("test-secrets")
        .join(unique("s"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn password_file(dir: &Path, password: &str) -> PathBuf {
    let file = dir.join("password");
    std::fs::write(&file, format!("{password}\n")).unwrap();
    file
}

#[test]
fn produce_topic_and_aggregate_work_over_sasl_ssl_with_scram() {
    let secure = broker::broker().secure();
    let dir = scratch_dir();
    let file = password_file(&dir, SCRAM_PASSWORD);
    let topic = unique("secure");

    // topic create and describe, with the password from the environment, at -v (which
    // dumps the client configuration).
    let mut cmd = secured(secure, "SCRAM-SHA-512");
    cmd.env("STOCKSTREAM_SASL_PASSWORD", SCRAM_PASSWORD).args([
        "-v",
        "topic",
        "create",
        &topic,
        "--partitions",
        "2",
    ]);
    let run = run_for(cmd, Duration::from_secs(60));
    run.assert_code(0);
    assert_no_secret(&run, SCRAM_PASSWORD);
    assert!(
        run.stderr.contains("sasl.password=[redacted]"),
        "-v shows the configuration, with the password redacted:\n{}",
        run.stderr
    );

    let mut cmd = secured(secure, "SCRAM-SHA-512");
    cmd.env("STOCKSTREAM_SASL_PASSWORD", SCRAM_PASSWORD)
        .args(["topic", "describe", &topic, "-o", "json"]);
    let run = run_for(cmd, Duration::from_secs(60));
    run.assert_code(0);
    let described: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(described["partitions"].as_array().map(Vec::len), Some(2));

    // produce, with SCRAM-SHA-256 and the password from a file, at -vv with librdkafka's
    // own security and configuration debug output on.
    let mut cmd = secured(secure, "SCRAM-SHA-256");
    cmd.args(["-X", &format!("sasl.password=@{}", file.display())])
        .args(["-vv", "-X", "debug=security,conf,broker"])
        .args([
            "produce", "--topic", &topic, "--count", "300", "--rate", "max",
        ]);
    let run = run_for(cmd, Duration::from_secs(60));
    run.assert_code(0);
    assert_no_secret(&run, SCRAM_PASSWORD);
    assert_eq!(read_all(&topic).len(), 300, "records in the topic");

    // topic list sees it.
    let mut cmd = secured(secure, "SCRAM-SHA-512");
    cmd.env("STOCKSTREAM_SASL_PASSWORD", SCRAM_PASSWORD)
        .args(["topic", "list", "-o", "json"]);
    let run = run_for(cmd, Duration::from_secs(60));
    run.assert_code(0);
    assert!(run.stdout.contains(&topic), "{}", run.stdout);

    // topic delete.
    let mut cmd = secured(secure, "SCRAM-SHA-512");
    cmd.env("STOCKSTREAM_SASL_PASSWORD", SCRAM_PASSWORD)
        .args(["topic", "delete", &topic, "--yes"]);
    run_for(cmd, Duration::from_secs(60)).assert_code(0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn aggregate_commits_its_bars_over_sasl_ssl() {
    let secure = broker::broker().secure();
    let topic = unique("secure-agg");
    create_topic(&topic, 1);
    // 2026-01-01T00:00:00Z; the third tick moves the watermark past the first window.
    let t0 = 1_767_225_600.0;
    let tick = |at: f64, price: f64, volume: u64| Raw {
        partition: 0,
        key: Some(b"AAPL".to_vec()),
        value: Some(
            format!(
                r#"{{"symbol":"AAPL","price":{price},"volume":{volume},"timestamp":{}}}"#,
                t0 + at
            )
            .into_bytes(),
        ),
    };
    produce_raw(
        &topic,
        &[
            tick(0.5, 100.0, 10),
            tick(2.0, 102.0, 30),
            tick(25.0, 101.0, 5),
        ],
    );
    let output = format!("{topic}.bars");
    let mut cmd = secured(secure, "SCRAM-SHA-512");
    cmd.env("STOCKSTREAM_SASL_PASSWORD", SCRAM_PASSWORD).args([
        "aggregate",
        "--topic",
        &topic,
        "--group",
        &unique("g-secure"),
        "--from",
        "earliest",
        "--output-topic",
        &output,
        // Bars of 2026-01-01 outlive the broker's default retention (7 days).
        "--output-retention",
        "forever",
        "--window",
        "10s",
        "--no-console",
    ]);
    let job = Running::spawn(cmd);
    let bars = read_committed(&output, 1, Duration::from_secs(90), Duration::from_secs(2));
    let run = job.signal_and_wait(libc::SIGINT, Duration::from_secs(60));
    run.assert_code(0);
    assert_no_secret(&run, SCRAM_PASSWORD);
    assert_eq!(bars.len(), 1, "one final bar");
    let bar: serde_json::Value = serde_json::from_slice(&bars[0].payload).unwrap();
    assert_eq!(bar["window_start"], "2026-01-01T00:00:00Z", "{bar}");
    assert_eq!(bar["open"], 100.0, "{bar}");
    assert_eq!(bar["close"], 102.0, "{bar}");
    assert_eq!(bar["volume"], 40, "{bar}");
    assert_eq!(bar["trades"], 2, "{bar}");
    assert_eq!(bar["vwap"], 101.5, "{bar}");
}

#[test]
fn a_wrong_password_or_user_fails_fast_with_an_authentication_error() {
    let secure = broker::broker().secure();
    let wrong = "not-the-Pa55-word";
    let cases: [(&[&str], &str, &str); 3] = [
        (&["topic", "list"], SCRAM_USER, wrong),
        (
            &["produce", "--topic", "stock_prices", "--count", "1"],
            SCRAM_USER,
            wrong,
        ),
        (&["topic", "list"], "mallory", SCRAM_PASSWORD),
    ];
    for (args, user, password) in cases {
        let started = Instant::now();
        let mut cmd = secured(secure, "SCRAM-SHA-512");
        cmd.env("STOCKSTREAM_SASL_PASSWORD", password)
            .args(["-X", &format!("sasl.username={user}")])
            .args(["-vv", "-X", "debug=security"])
            .args(args)
            .args(["--timeout", "30s"]);
        let run = run_for(cmd, Duration::from_secs(60));
        run.assert_code(3);
        let last = run
            .stderr
            .lines()
            .rev()
            .take(2)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            last.contains("Authentication failed") && last.contains("refused the credentials"),
            "{args:?}: the error says authentication failed:\n{last}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{args:?}: failing took {:?}, not fast (the timeout was 30s)",
            started.elapsed()
        );
        assert_no_secret(&run, password);
    }
}

#[test]
fn an_untrusted_ca_fails_fast_with_a_tls_error() {
    let secure = broker::broker().secure();
    // A CA of its own, which did not sign the broker's certificate.
    let dir = scratch_dir();
    let other_ca = dir.join("other-ca.pem");
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=not the broker's CA"])
        .arg("-keyout")
        .arg(dir.join("other-ca.key"))
        .arg("-out")
        .arg(&other_ca)
        .output()
        .expect("openssl (which scripts/kafka-local needs too)");
    assert!(made.status.success(), "{made:?}");

    let started = Instant::now();
    let mut cmd = secured(secure, "SCRAM-SHA-512");
    // A later -X wins: this CA replaces the test CA.
    cmd.env("STOCKSTREAM_SASL_PASSWORD", SCRAM_PASSWORD)
        .args(["-X", &format!("ssl.ca.location={}", other_ca.display())])
        .args(["topic", "list", "--timeout", "30s"]);
    let run = run_for(cmd, Duration::from_secs(60));
    run.assert_code(3);
    assert!(
        run.stderr.contains("certificate verify failed")
            && run.stderr.contains("certificate is not trusted"),
        "the error says the certificate is not trusted:\n{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "failing took {:?}, not fast (the timeout was 30s)",
        started.elapsed()
    );
    assert_no_secret(&run, SCRAM_PASSWORD);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_plaintext_client_on_the_tls_port_is_told_so_within_its_timeout() {
    let secure = broker::broker().secure();
    let started = Instant::now();
    let mut cmd = stockstream();
    cmd.args(["-b", &secure.bootstrap, "topic", "list", "--timeout", "4s"]);
    let run = run_for(cmd, Duration::from_secs(30));
    run.assert_code(3);
    assert!(
        run.stderr.contains("is this a TLS listener?")
            && run.stderr.contains("security.protocol=SSL"),
        "the error points at security.protocol:\n{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_malformed_secret_setting_is_a_usage_error_that_does_not_echo_it() {
    let mut cmd = stockstream();
    cmd.args(["-X", "sasl.passwordhunter2", "topic", "list"]);
    let run = run_for(cmd, Duration::from_secs(30));
    run.assert_code(2);
    assert_no_secret(&run, "hunter2");
    assert!(run.stderr.contains("KEY=VALUE"), "{}", run.stderr);

    // The @ may have been meant as the password's first character: the rest is not echoed.
    let mut cmd = stockstream();
    cmd.args(["-X", "sasl.password=@nonexistent-Pa55", "topic", "list"]);
    let run = run_for(cmd, Duration::from_secs(30));
    run.assert_code(2);
    assert_no_secret(&run, "nonexistent-Pa55");
    assert!(
        run.stderr.contains("could not read sasl.password") && run.stderr.contains("@@"),
        "the error says what failed and how to write a literal @:\n{}",
        run.stderr
    );

    // A misspelled secret key: librdkafka refuses it, and its value is not echoed.
    let mut cmd = stockstream();
    cmd.args(["-X", "sasl.pasword=hunter2", "topic", "list"]);
    let run = run_for(cmd, Duration::from_secs(30));
    run.assert_code(2);
    assert_no_secret(&run, "hunter2");
    assert!(
        run.stderr.contains("sasl.pasword"),
        "the error names the setting:\n{}",
        run.stderr
    );
}

/// The leak once found: at `-v` the client configuration dump showed the value of a
/// misspelled secret key in full. Such a key is now refused as it is parsed; the refusal
/// shows the key, not its value, at every verbosity.
#[test]
fn a_misspelled_secret_key_is_redacted_at_every_verbosity() {
    for verbosity in ["-v", "-vv"] {
        for key in ["sasl.pasword", "ssl.key.pasword"] {
            let mut cmd = stockstream();
            cmd.args([verbosity, "-b", "127.0.0.1:1", "-X"])
                .arg(format!("{key}=SECRETVALUE"))
                .args(["topic", "list", "--timeout", "2s"]);
            let run = run_for(cmd, Duration::from_secs(30));
            assert_no_secret(&run, "SECRETVALUE");
            assert!(
                run.stderr.contains(&format!("{key}=[redacted]")),
                "{verbosity} {key}: the error shows the key, not its value:\n{}",
                run.stderr
            );
        }
    }
}

/// Key names near secret ones (one-letter edits) and names librdkafka does not know: no
/// value of theirs reaches any output of a run at `-vv -X debug=conf`, whatever fails.
#[test]
fn no_value_of_an_unknown_or_misspelled_key_reaches_the_output() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let secret_keys = [
        "sasl.password",
        "ssl.key.password",
        "ssl.keystore.password",
        "sasl.oauthbearer.client.secret",
        "sasl.jaas.config",
    ];
    let key = (
        0..secret_keys.len(),
        0usize..40,
        proptest::char::range('a', 'z'),
        0u8..4,
    )
        .prop_map(move |(which, at, letter, edit)| {
            let mut chars: Vec<char> = secret_keys[which].chars().collect();
            let at = at % chars.len();
            match edit {
                0 => {
                    chars.remove(at);
                }
                1 => chars[at] = letter,
                2 => chars.insert(at, letter),
                _ => chars.insert(0, letter),
            }
            chars.into_iter().collect::<String>()
        })
        .boxed()
        .prop_union("[a-z]{2,8}\\.[a-z]{2,10}".boxed());
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&key, |key| {
            let secret = "Zq7SECRETxW";
            let mut cmd = stockstream();
            cmd.args(["-vv", "-b", "127.0.0.1:1", "-X", "debug=conf", "-X"])
                .arg(format!("{key}={secret}"))
                .args(["topic", "list", "--timeout", "1s"]);
            let run = run_for(cmd, Duration::from_secs(30));
            prop_assert!(
                !run.stderr.contains(secret) && !run.stdout.contains(secret),
                "{key}:\n{}",
                run.stderr
            );
            Ok(())
        })
        .unwrap();
}
