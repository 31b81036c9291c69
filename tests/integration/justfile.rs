//! The justfile, run for real with `just` (fetched by the tests into target/tools).
//! Every recipe that needs no container engine runs against a Kafka that `just up` starts
//! with the local launcher on free ports; the container recipes run against a stand-in
//! `docker` that records what it is asked; the rest (builds, tests, benchmarks) dry-run.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::support::broker::repo_root;
use crate::support::launcher::{assert_answering, assert_stopped, Started};
use crate::support::{broker, free_port, psql, run_for, wait_for, Run};

const RECIPES: [&str; 23] = [
    "up",
    "down",
    "restart",
    "nuke",
    "status",
    "logs",
    "pg-up",
    "pg-down",
    "produce",
    "aggregate",
    "store",
    "history",
    "demo",
    "demo-partitions",
    "topic-create",
    "topic-describe",
    "topic-list",
    "topic-delete",
    "test",
    "check",
    "bench",
    "clean",
    "install",
];

/// The version of `just` the tests fetch for themselves.
const JUST_VERSION: &str = "1.59.0";

/// A `just` of the tests' own, fetched once into target/tools (PyPI's prebuilt `rust-just`
/// wheel in seconds, or built by `cargo install` where pip is missing), so that `cargo test`
/// needs nothing installed by hand.
fn just_binary() -> &'static PathBuf {
    static JUST: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = JUST.get_or_init(|| {
        let dir = repo_root()
            .join("target")
            .join("tools")
            .join(format!("just-{JUST_VERSION}"));
        let bin = dir.join("bin").join("just");
        let works = |bin: &PathBuf| {
            Command::new(bin)
                .arg("--version")
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(JUST_VERSION))
        };
        if works(&bin) {
            return Ok(bin);
        }
        let pip = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(["--no-warn-script-location", "--upgrade", "--target"])
            .arg(&dir)
            .arg(format!("rust-just=={JUST_VERSION}"))
            .output();
        if works(&bin) {
            return Ok(bin);
        }
        let cargo = Command::new(env!("CARGO"))
            .args(["install", "just", "--locked", "--quiet", "--version", JUST_VERSION])
            .arg("--root")
            .arg(&dir)
            .output();
        if works(&bin) {
            return Ok(bin);
        }
        let said = |r: std::io::Result<std::process::Output>| match r {
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        Err(format!(
            "\n\ncould not fetch `just` {JUST_VERSION} into {}: these tests run the justfile with it.\n\
             pip install rust-just said: {}\ncargo install just said: {}\n\
             Fix: make PyPI or crates.io reachable (or install python3 and pip).\n",
            dir.display(),
            said(pip),
            said(cargo)
        ))
    });
    match found {
        Ok(bin) => bin,
        Err(why) => panic!("{why}"),
    }
}

/// `just` on the repository's justfile, with none of the caller's settings leaking in.
fn just() -> Command {
    let root = repo_root();
    let just = just_binary();
    // A recipe that runs `just` again finds the same one.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![just.parent().expect("a bin folder").to_path_buf()];
    dirs.extend(std::env::split_paths(&path));
    let mut cmd = Command::new(just);
    cmd.env("PATH", std::env::join_paths(dirs).expect("a PATH"))
        .arg("--justfile")
        .arg(root.join("justfile"))
        .current_dir(&root)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in [
        "STOCKSTREAM_BROKERS",
        "STOCKSTREAM_COMPOSE",
        "KAFKA_LOCAL_PORT",
        "KAFKA_LOCAL_DATA",
        "STOCKSTREAM_POSTGRES_URL",
        "POSTGRES_LOCAL_PORT",
        "POSTGRES_LOCAL_DATA",
        "POSTGRES_LOCAL_PASSWORD",
        "JUST_DRY_RUN",
        "JUST_YES",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The longest one recipe may take.
const LIMIT: Duration = Duration::from_secs(120);

/// Runs `cmd ARGS…` to completion. A recipe that overruns LIMIT is killed with everything
/// it started (its own process group), and fails the test.
#[track_caller]
fn run(mut cmd: Command, args: &[&str]) -> Run {
    cmd.args(args).process_group(0);
    let child = cmd.spawn().expect("starting just");
    let group = i32::try_from(child.id()).expect("a pid");
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let overran = finished.recv_timeout(LIMIT) == Err(RecvTimeoutError::Timeout);
        if overran {
            // SAFETY: signals the process group this test created for one recipe.
            unsafe { libc::kill(-group, libc::SIGKILL) };
        }
        overran
    });
    let run = wait_for(child, LIMIT * 2);
    let _ = done.send(());
    let overran = watchdog.join().unwrap_or(false);
    assert!(
        !overran,
        "`just {}` did not finish within {LIMIT:?}; killed it\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        run.stdout,
        run.stderr
    );
    run
}

fn scratch(name: &str) -> PathBuf {
    let dir = repo_root()
        .join("target")
        .join("test-kafka")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `just` alone runs the default recipe, which lists the others with their docs.
#[test]
fn just_alone_lists_every_recipe() {
    let listed = run(just(), &[]);
    listed.assert_code(0);
    for recipe in RECIPES {
        assert!(
            listed.stdout.lines().any(|l| {
                let l = l.trim_start();
                l.starts_with(&format!("{recipe} ")) && l.contains(" # ")
            }),
            "`just` does not list {recipe} with a description:\n{}",
            listed.stdout
        );
    }
}

/// Recipes too slow or too far-reaching to run from a test here (`demo` has its own test):
/// they must at least evaluate to the right commands.
#[test]
fn the_other_recipes_dry_run_to_their_commands() {
    for (recipe, command) in [
        ("test", "cargo test"),
        ("check", "cargo clippy --all-targets -- -D warnings"),
        ("bench", "bench/aggregate"),
        ("clean", "cargo clean"),
        ("install", "cargo install --locked --path ."),
        ("demo", "cargo run --release --quiet -- demo"),
        ("store", "cargo run --release --quiet -- store"),
        ("history", "cargo run --release --quiet -- history"),
    ] {
        let dry = run(just(), &["--dry-run", recipe]);
        dry.assert_code(0);
        assert!(dry.stderr.contains(command), "{recipe}: {}", dry.stderr);
    }
}

/// A loopback port whose successor (the launcher's controller port) is free too.
fn free_port_pair() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

fn topics(run: &Run) -> Vec<(String, u64, u64)> {
    run.assert_code(0);
    let list: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("topic-list -o json: {e}\n{}", run.stdout));
    let mut topics: Vec<(String, u64, u64)> = list
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or_default().to_string(),
                t["partitions"].as_u64().unwrap_or_default(),
                t["messages"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    topics.sort();
    topics
}

/// The first line `just logs` prints, then the whole process group is stopped (`logs`
/// follows the log until interrupted).
fn first_log_line(mut cmd: Command) -> String {
    cmd.arg("logs").process_group(0).stderr(Stdio::null());
    let mut child = cmd.spawn().expect("starting just logs");
    let group = i32::try_from(child.id()).expect("a pid");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let line = BufReader::new(stdout).lines().next();
        let _ = tx.send(line.and_then(Result::ok).unwrap_or_default());
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    // SAFETY: signals the process group this test just created.
    unsafe { libc::kill(-group, libc::SIGTERM) };
    let _ = child.wait();
    line
}

#[test]
fn recipes_run_kafka_with_the_local_launcher() {
    // The shared broker fetches the launcher's jars first, so that two launchers never
    // download them into the same folder at once.
    let _ = broker();
    let port = free_port_pair();
    // Stops the broker `just up` started even when the test fails half-way.
    let launcher = Started {
        script: "kafka-local",
        data: scratch("just-kafka"),
    };
    let binary = env!("CARGO_BIN_EXE_stockstream");
    let settings = [
        format!("KAFKA_LOCAL_PORT={port}"),
        format!("KAFKA_LOCAL_DATA={}", launcher.data.display()),
        format!("STOCKSTREAM={binary}"),
    ];
    let just_with = |more: &[&str]| -> Command {
        let mut cmd = just();
        // Options (--yes) go before the settings, recipes after them.
        cmd.env("STOCKSTREAM_COMPOSE", "none")
            .args(more)
            .args(&settings);
        cmd
    };
    let recipe = |more: &[&str], args: &[&str]| run(just_with(more), args);
    // As a user who started it on another port and then types plain recipes.
    let plain = |args: &[&str]| {
        let mut cmd = just();
        cmd.env("STOCKSTREAM_COMPOSE", "none")
            .args(&settings[1..])
            .args(args);
        run(cmd, &[])
    };

    let up = recipe(&[], &["up"]);
    up.assert_code(0);
    assert!(
        up.stderr.contains("using scripts/kafka-local"),
        "{}",
        up.stderr
    );
    // With KAFKA_LOCAL_PORT, and without: the recipes find the running launcher's port.
    for status in [recipe(&[], &["status"]), plain(&["status"])] {
        assert_answering(&status, port);
    }
    plain(&["topic-list"]).assert_code(0);

    // The three ways to give the partition count.
    recipe(&[], &["topic-create", "PARTITIONS=8"]).assert_code(0);
    recipe(&["TOPIC=other"], &["topic-create", "2"]).assert_code(0);
    recipe(&["PARTITIONS=3", "TOPIC=third"], &["topic-create"]).assert_code(0);
    let described = recipe(&[], &["topic-describe", "-o", "json"]);
    described.assert_code(0);
    assert!(
        described.stdout.contains("\"stock_prices\""),
        "{}",
        described.stdout
    );

    let produced = recipe(&[], &["produce", "--count", "5", "--interval", "100ms"]);
    produced.assert_code(0);
    assert!(
        produced.stderr.contains("5 delivered"),
        "{}",
        produced.stderr
    );
    let aggregated = recipe(
        &[],
        &[
            "aggregate",
            "--from",
            "earliest",
            "--stop-at-end",
            "--no-console",
        ],
    );
    aggregated.assert_code(0);
    assert!(
        aggregated.stderr.contains("5 records read"),
        "{}",
        aggregated.stderr
    );
    recipe(&[], &["demo-partitions"]).assert_code(0);
    let line = first_log_line(just_with(&[]));
    assert!(
        line.contains("INFO") || line.contains("WARN"),
        "just logs: {line:?}"
    );

    recipe(&["TOPIC=third"], &["topic-delete", "--yes"]).assert_code(0);
    let listed = topics(&recipe(&[], &["topic-list", "-o", "json"]));
    let names: Vec<(&str, u64)> = listed.iter().map(|(n, p, _)| (n.as_str(), *p)).collect();
    assert!(names.contains(&("stock_prices", 8)), "{names:?}");
    assert!(names.contains(&("other", 2)), "{names:?}");
    assert!(!names.iter().any(|(n, _)| *n == "third"), "{names:?}");

    // Data outlives a restart, not a nuke.
    recipe(&[], &["restart"]).assert_code(0);
    let listed = topics(&recipe(&[], &["topic-list", "-o", "json"]));
    assert!(
        listed
            .iter()
            .any(|(n, _, m)| n == "stock_prices" && *m == 5),
        "{listed:?}"
    );
    recipe(&[], &["down"]).assert_code(0);
    // Nothing runs: exit 3, said by the launcher alone, without just's own error line.
    let status = plain(&["status"]);
    assert_stopped(&status, port);
    assert!(!status.stderr.contains("error:"), "{}", status.stderr);
    recipe(&["--yes"], &["nuke"]).assert_code(0);
    assert!(
        !launcher.data.exists(),
        "`just nuke` left {:?}",
        launcher.data
    );
}

/// A `docker` that works, answers `inspect` with "true" and logs every call; a `podman` that
/// is installed but broken, so that a real one on the machine is not picked either.
fn stand_in_engine(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("creating the stand-in engine's folder");
    let write = |name: &str, script: &str| {
        let path = bin.join(name);
        std::fs::write(&path, script).expect("writing a stand-in engine");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("making it executable");
    };
    write(
        "docker",
        "#!/bin/sh\necho \"$*\" >>\"$ENGINE_LOG\"\n\
         if [ \"$1\" = info ] && [ -n \"$ENGINE_DOWN\" ]; then exit 1; fi\n\
         if [ \"$1\" = inspect ]; then echo true; fi\nexit 0\n",
    );
    write("podman", "#!/bin/sh\nexit 1\n");
    write("podman-compose", "#!/bin/sh\nexit 1\n");
    bin
}

/// What `scripts/kafka-stack engine` picks with the stand-in engine first on the PATH.
fn engine_found(path: &str, log: &Path, daemon_down: bool) -> Run {
    let mut cmd = Command::new(repo_root().join("scripts/kafka-stack"));
    cmd.arg("engine")
        .env("PATH", path)
        .env("ENGINE_LOG", log)
        .env_remove("STOCKSTREAM_COMPOSE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if daemon_down {
        cmd.env("ENGINE_DOWN", "1");
    }
    run_for(cmd, Duration::from_secs(60))
}

#[test]
fn recipes_drive_compose_when_a_container_engine_works() {
    let dir = scratch("just-engine");
    let bin = stand_in_engine(&dir);
    let log = dir.join("engine.log");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let compose = format!("compose -f {} ", repo_root().join("compose.yaml").display());
    let calls = |recipe: &[&str]| -> String {
        let _ = std::fs::remove_file(&log);
        let mut cmd = just();
        cmd.env("PATH", &path)
            .env("ENGINE_LOG", &log)
            .env("KAFKA_LOCAL_DATA", dir.join("data"));
        run(cmd, recipe).assert_code(0);
        std::fs::read_to_string(&log).unwrap_or_default()
    };

    let up = calls(&["up"]);
    assert!(up.contains(&format!("{compose}up -d")), "{up}");
    assert!(
        up.contains("exec stockstream-kafka /opt/kafka/bin/kafka-broker-api-versions.sh"),
        "`up` does not wait for the broker to answer: {up}"
    );
    let status = calls(&["status"]);
    assert!(status.contains(&format!("{compose}ps")), "{status}");
    let logs = calls(&["logs", "kafka-ui"]);
    assert!(
        logs.contains(&format!("{compose}logs -f kafka-ui")),
        "{logs}"
    );
    let down = calls(&["down"]);
    assert!(down.contains(&format!("{compose}down")), "{down}");
    let nuke = calls(&["--yes", "nuke"]);
    assert!(nuke.contains(&format!("{compose}down -v")), "{nuke}");

    let found = engine_found(&path, &log, false);
    found.assert_code(0);
    assert_eq!(found.stdout.trim(), "docker compose");
    // An engine whose daemon does not answer is no engine: `up` falls back to the launcher.
    let none = engine_found(&path, &log, true);
    none.assert_code(1);
    assert_eq!(none.stdout, "");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A port in use is named the way a user of the justfile chooses another: the just
/// variable, not the launcher's own --port.
#[test]
fn a_port_in_use_is_named_as_the_justfile_sets_it() {
    // The launcher's jars are fetched once, by the shared broker.
    let _ = broker();
    let taken = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let port = taken.local_addr().expect("its address").port();
    let data = scratch("just-taken");
    let mut cmd = just();
    cmd.env("STOCKSTREAM_COMPOSE", "none")
        .arg(format!("KAFKA_LOCAL_PORT={port}"))
        .arg(format!("KAFKA_LOCAL_DATA={}", data.display()));
    let up = run(cmd, &["up"]);
    up.assert_code(1);
    assert!(
        up.stderr.contains(&format!(
            "port {port} on 127.0.0.1 is already in use; choose another with `just KAFKA_LOCAL_PORT=N up`, or stop what uses it"
        )),
        "{}",
        up.stderr
    );
    assert!(!up.stderr.contains("--port"), "{}", up.stderr);
    assert!(!up.stderr.contains("error: recipe"), "{}", up.stderr);
    let _ = std::fs::remove_dir_all(&data);
}

/// `pg-up` and `pg-down` drive scripts/postgres-local; `store` and `history` connect to the
/// PostgreSQL it runs, found without being told its port, unless STOCKSTREAM_POSTGRES_URL
/// says otherwise.
#[test]
fn the_postgres_recipes_run_the_local_launcher() {
    let server = Started {
        script: "postgres-local",
        data: scratch("just-postgres"),
    };
    let data = format!("POSTGRES_LOCAL_DATA={}", server.data.display());
    let with = |settings: &[&str], args: &[&str]| {
        let mut cmd = just();
        cmd.arg(&data).args(settings);
        run(cmd, args)
    };

    // A port in use is named the way a user of the justfile chooses another.
    let taken = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let port = taken.local_addr().expect("its address").port();
    let up = with(&[&format!("POSTGRES_LOCAL_PORT={port}")], &["pg-up"]);
    up.assert_code(1);
    assert!(
        up.stderr
            .contains("choose another with `just POSTGRES_LOCAL_PORT=N pg-up`"),
        "{}",
        up.stderr
    );
    assert!(!up.stderr.contains("error: recipe"), "{}", up.stderr);
    drop(taken);

    let port = free_port();
    let up = with(&[&format!("POSTGRES_LOCAL_PORT={port}")], &["pg-up"]);
    up.assert_code(0);
    let url = format!("postgres://stockstream:stockstream@127.0.0.1:{port}/stockstream");
    assert!(up.stderr.contains(&url), "{}", up.stderr);
    assert_eq!(psql(&url, "SELECT 1").trim(), "1");
    // stockstream stood in for by a command that shows what it was given.
    let shows_url = r#"STOCKSTREAM=sh -c 'echo "$STOCKSTREAM_POSTGRES_URL"' -"#;
    for recipe in ["store", "history"] {
        let said = with(&[shows_url], &[recipe]);
        said.assert_code(0);
        assert_eq!(said.stdout.trim(), url, "{recipe}");
    }
    let mut elsewhere = just();
    elsewhere
        .env("STOCKSTREAM_POSTGRES_URL", "postgres://elsewhere/bars")
        .args([&data, shows_url]);
    assert_eq!(
        run(elsewhere, &["store"]).stdout.trim(),
        "postgres://elsewhere/bars"
    );

    let down = with(&[], &["pg-down"]);
    down.assert_code(0);
    assert!(down.stderr.contains("stopped"), "{}", down.stderr);
    let mut status = Command::new(repo_root().join("scripts/postgres-local"));
    status
        .args(["status", "--data"])
        .arg(&server.data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    assert_stopped(&run_for(status, LIMIT), port);
}

/// Fetching the broker's jars says one line, and writes nothing else to the terminal (Maven
/// writes colour resets even when quiet).
#[test]
fn the_launcher_fetches_its_jars_without_stray_escape_codes() {
    let home = scratch("kafka-local-home");
    let mut cmd = Command::new(repo_root().join("scripts/kafka-local"));
    cmd.arg("fetch")
        .env("KAFKA_LOCAL_HOME", &home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let fetched = run_for(cmd, LIMIT);
    fetched.assert_code(0);
    assert_eq!(fetched.stdout, "");
    assert_eq!(
        fetched.stderr,
        format!(
            "kafka-local: resolving broker jars from Maven Central into {}\n",
            home.join("libs").display()
        )
    );
    assert!(
        home.join("libs").join(".complete").exists(),
        "no jars in {home:?}"
    );
    let _ = std::fs::remove_dir_all(&home);
}

/// The three-node cluster's recipes drive scripts/kafka-cluster (the cluster tests run the
/// launcher itself).
#[test]
fn the_cluster_recipes_run_the_cluster_launcher() {
    let listed = run(just(), &["--list"]);
    listed.assert_code(0);
    for (recipe, command) in [
        ("up-cluster", "scripts/kafka-cluster start"),
        ("down-cluster", "scripts/kafka-cluster stop"),
        ("cluster", "scripts/kafka-cluster \"$@\""),
    ] {
        assert!(
            listed
                .stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{recipe} ")) && l.contains(" # ")),
            "`just` does not list {recipe} with a description:\n{}",
            listed.stdout
        );
        let dry = run(just(), &["--dry-run", recipe]);
        dry.assert_code(0);
        assert!(dry.stderr.contains(command), "{recipe}: {}", dry.stderr);
    }
    // Arguments reach the launcher: the bootstrap servers of a cluster on other ports.
    let bootstrap = run(just(), &["cluster", "bootstrap", "--port", "29192"]);
    bootstrap.assert_code(0);
    assert_eq!(
        bootstrap.stdout.trim(),
        "127.0.0.1:29192,127.0.0.1:29193,127.0.0.1:29194"
    );
}
