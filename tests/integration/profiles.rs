//! `--profile`: a named cluster from the profiles file, on the real broker's three kinds of
//! secured listener (SASL/SCRAM over TLS, SASL/PLAIN over TLS, mutual TLS), each used by
//! produce, the topic commands and exactly-once aggregate. The command line wins over the
//! profile; a secret written inline is refused; `profile show` never shows a secret.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::broker::{SCRAM_PASSWORD, SCRAM_USER};
use crate::support::kafka::{produce_raw, read_all, read_committed, Raw};
use crate::support::{broker, run_for, stockstream, unique, Run, Running};

/// The environment variable the profiles' passwords come from.
const PASSWORD_VAR: &str = "STOCKSTREAM_TEST_PROFILE_PASSWORD";

/// A profiles file of the test broker's three secured listeners, and the `scram` profile
/// once more with its password inline (which must be refused).
fn profiles_file() -> PathBuf {
    let b = broker::broker();
    let (secure, mtls) = (b.secure(), b.mtls());
    let text = format!(
        r#"
[profiles.scram]
brokers = "{sasl}"
[profiles.scram.settings]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "{SCRAM_USER}"
"sasl.password" = "env:{PASSWORD_VAR}"
"ssl.ca.location" = "{ca}"

[profiles.plain]
brokers = "{sasl}"
[profiles.plain.settings]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "PLAIN"
"sasl.username" = "{SCRAM_USER}"
"sasl.password" = "env:{PASSWORD_VAR}"
"ssl.ca.location" = "{ca}"

[profiles.mtls]
brokers = "{tls}"
[profiles.mtls.settings]
"security.protocol" = "SSL"
"ssl.ca.location" = "{tls_ca}"
"ssl.certificate.location" = "{cert}"
"ssl.key.location" = "{key}"

[profiles.stranger]
brokers = "{tls}"
[profiles.stranger.settings]
"security.protocol" = "SSL"
"ssl.ca.location" = "{ca}"
"ssl.certificate.location" = "{stranger_cert}"
"ssl.key.location" = "{stranger_key}"
"#,
        sasl = secure.bootstrap,
        ca = secure.ca.display(),
        tls = mtls.bootstrap,
        tls_ca = mtls.ca.display(),
        cert = mtls.cert.display(),
        key = mtls.key.display(),
        stranger_cert = mtls.stranger_cert.display(),
        stranger_key = mtls.stranger_key.display(),
    );
    write_file("profiles.toml", &text)
}

fn write_file(name: &str, text: &str) -> PathBuf {
    let dir = broker::repo_root()
        .join("target")
        .join("test-secrets")
        .join(unique("profiles"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

/// `stockstream --config-file FILE --profile NAME`, the password in the environment.
fn with_profile(file: &PathBuf, name: &str) -> Command {
    let mut cmd = stockstream();
    cmd.env_remove("STOCKSTREAM_SASL_PASSWORD")
        .env(PASSWORD_VAR, SCRAM_PASSWORD)
        .arg("--config-file")
        .arg(file)
        .args(["--profile", name]);
    cmd
}

#[track_caller]
fn assert_no_secret(run: &Run) {
    assert!(
        !run.stderr.contains(SCRAM_PASSWORD) && !run.stdout.contains(SCRAM_PASSWORD),
        "the password reached the output:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

/// topic create/describe/list, produce, exactly-once aggregate and topic delete, all
/// through the profile `name`.
fn everything_through(name: &str) {
    let file = profiles_file();
    let topic = unique(&format!("profile-{name}"));
    let run_profile = |args: &[&str]| {
        let mut cmd = with_profile(&file, name);
        cmd.args(["-v"]).args(args);
        let run = run_for(cmd, Duration::from_secs(90));
        assert_no_secret(&run);
        run
    };
    run_profile(&["topic", "create", &topic, "--partitions", "1"]).assert_code(0);
    let described = run_profile(&["topic", "describe", &topic, "-o", "json"]);
    described.assert_code(0);
    assert!(described.stdout.contains(&topic), "{}", described.stdout);
    run_profile(&[
        "produce", "--topic", &topic, "--count", "200", "--rate", "max",
    ])
    .assert_code(0);
    assert_eq!(read_all(&topic).len(), 200);
    let listed = run_profile(&["topic", "list", "-o", "json"]);
    listed.assert_code(0);
    assert!(listed.stdout.contains(&topic), "{}", listed.stdout);

    // Exactly-once aggregate over the profile: two old ticks, and one that closes their window.
    let t0 = 1_767_225_600.0;
    let tick = |at: f64, price: f64| Raw {
        partition: 0,
        key: Some(b"NFLX".to_vec()),
        value: Some(
            format!(
                r#"{{"symbol":"NFLX","price":{price},"volume":10,"timestamp":{}}}"#,
                t0 + at
            )
            .into_bytes(),
        ),
    };
    let input = unique(&format!("profile-{name}-agg"));
    crate::support::kafka::create_topic(&input, 1);
    produce_raw(
        &input,
        &[tick(0.5, 600.0), tick(2.0, 602.0), tick(25.0, 601.0)],
    );
    let output = format!("{input}.bars");
    let mut cmd = with_profile(&file, name);
    cmd.args(["aggregate", "--topic", &input, "--from", "earliest"])
        .args(["--group", &unique("g-profile"), "--output-topic", &output])
        // Bars of 2026-01-01 outlive the broker's default retention (7 days).
        .args(["--output-retention", "forever"])
        .args(["--window", "10s", "--no-console"]);
    let job = Running::spawn(cmd);
    let bars = read_committed(&output, 1, Duration::from_secs(90), Duration::from_secs(2));
    let run = job.signal_and_wait(libc::SIGINT, Duration::from_secs(60));
    run.assert_code(0);
    assert_no_secret(&run);
    assert!(run.stderr.contains("exactly-once"), "{}", run.stderr);
    assert_eq!(bars.len(), 1);
    let bar: serde_json::Value = serde_json::from_slice(&bars[0].payload).unwrap();
    assert_eq!(
        (bar["open"].as_f64(), bar["trades"].as_u64()),
        (Some(600.0), Some(2))
    );

    run_profile(&["topic", "delete", &topic, "--yes"]).assert_code(0);
}

#[test]
fn scram_over_tls_through_a_profile() {
    everything_through("scram");
}

#[test]
fn plain_over_tls_through_a_profile() {
    everything_through("plain");
}

#[test]
fn mutual_tls_through_a_profile() {
    everything_through("mtls");
}

#[test]
fn a_client_certificate_of_another_ca_fails_fast_with_a_hint() {
    let file = profiles_file();
    let mut cmd = with_profile(&file, "stranger");
    cmd.args(["topic", "list", "--timeout", "20s"]);
    let started = std::time::Instant::now();
    let run = run_for(cmd, Duration::from_secs(60));
    run.assert_code(3);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused at once, not at the timeout: {:?}",
        started.elapsed()
    );
    assert!(
        run.stderr.contains("refused this client's certificate"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_command_line_wins_over_the_profile() {
    let file = profiles_file();
    // -b typed: the profile's brokers are not used.
    let mut cmd = with_profile(&file, "scram");
    cmd.args(["-b", "127.0.0.1:1", "topic", "list", "--timeout", "2s"]);
    let run = run_for(cmd, Duration::from_secs(30));
    run.assert_code(3);
    assert!(run.stderr.contains("127.0.0.1:1"), "{}", run.stderr);
    // -X wins: a wrong password on the command line is the one used.
    let mut cmd = with_profile(&file, "scram");
    cmd.args(["-X", "sasl.password=not-the-password"])
        .args(["topic", "list", "--timeout", "20s"]);
    let run = run_for(cmd, Duration::from_secs(60));
    run.assert_code(3);
    assert!(run.stderr.contains("Authentication"), "{}", run.stderr);
    assert!(!run.stderr.contains("not-the-password"), "{}", run.stderr);
    // STOCKSTREAM_BROKERS does not: the profile's brokers are.
    let mut cmd = with_profile(&file, "scram");
    cmd.env("STOCKSTREAM_BROKERS", "127.0.0.1:1")
        .args(["topic", "list", "-o", "json"]);
    run_for(cmd, Duration::from_secs(60)).assert_code(0);
}

#[test]
fn a_secret_written_in_the_profile_is_refused_with_the_fix() {
    let file = write_file(
        "inline.toml",
        "[profiles.bad]\nbrokers = \"127.0.0.1:1\"\n[profiles.bad.settings]\n\"sasl.password\" = \"Inl1ne-Secret\"\n",
    );
    let mut cmd = stockstream();
    cmd.arg("--config-file")
        .arg(&file)
        .args(["--profile", "bad", "topic", "list"]);
    let run = run_for(cmd, Duration::from_secs(30));
    run.assert_code(1);
    assert!(!run.stderr.contains("Inl1ne-Secret"), "{}", run.stderr);
    assert!(
        run.stderr.contains("inline") && run.stderr.contains("env:"),
        "{}",
        run.stderr
    );
}

#[test]
fn profile_list_and_show_never_show_a_secret() {
    let file = profiles_file();
    let mut cmd = with_profile(&file, "scram");
    cmd.args(["profile", "list", "-o", "json"]);
    let run = run_for(cmd, Duration::from_secs(30));
    run.assert_code(0);
    let list: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mtls", "plain", "scram", "stranger"]);
    let mut cmd = with_profile(&file, "scram");
    cmd.args(["profile", "show", "scram"]);
    let run = run_for(cmd, Duration::from_secs(30));
    run.assert_code(0);
    assert_no_secret(&run);
    assert!(
        run.stdout.contains(&format!("env:{PASSWORD_VAR}")),
        "the reference, not the secret:\n{}",
        run.stdout
    );
    let mut cmd = with_profile(&file, "scram");
    cmd.args(["profile", "show", "nope"]);
    let run = run_for(cmd, Duration::from_secs(30));
    run.assert_code(1);
    assert!(
        run.stderr.contains("mtls, plain, scram, stranger"),
        "{}",
        run.stderr
    );
}
