//! scripts/postgres-local as people use it: `start` a PostgreSQL that the printed URL
//! reaches, `status`, `stop`; a taken port named with the way to choose another; `--ssl`
//! with a CA that clients verify the server by. And the test servers the store and history
//! tests stand on: a database of each test's own, a dedicated server that keeps its data
//! across a stop and a crash.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::broker::repo_root;
use crate::support::launcher::{assert_answering, assert_stopped, Started};
use crate::support::postgres::{DedicatedPostgres, PASSWORD};
use crate::support::{free_port, postgres, psql, run_for, unique, Run};

/// `scripts/postgres-local ARGS --data DATA`, with none of the caller's settings.
fn launcher(data: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(repo_root().join("scripts/postgres-local"));
    cmd.args(args)
        .arg("--data")
        .arg(data)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let settings = std::env::vars_os().map(|(var, _)| var);
    for var in settings.filter(|var| var.to_string_lossy().starts_with("POSTGRES_LOCAL_")) {
        cmd.env_remove(var);
    }
    cmd
}

#[track_caller]
fn run(data: &Path, args: &[&str]) -> Run {
    run_for(launcher(data, args), Duration::from_secs(120))
}

/// A data folder of a test's own, for a server it starts.
fn local(name: &str) -> Started {
    let data = repo_root()
        .join("target")
        .join("test-postgres")
        .join(unique(name));
    let _ = std::fs::remove_dir_all(&data);
    Started {
        script: "postgres-local",
        data,
    }
}

/// The URL in the `export STOCKSTREAM_POSTGRES_URL=…` line that `start` prints.
#[track_caller]
fn printed_url(start: &Run) -> String {
    start
        .stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("export STOCKSTREAM_POSTGRES_URL="))
        .unwrap_or_else(|| {
            panic!(
                "`start` shows no STOCKSTREAM_POSTGRES_URL:\n{}",
                start.stderr
            )
        })
        .to_string()
}

#[test]
fn start_status_and_stop_a_local_postgres_that_the_printed_url_reaches() {
    let local = local("pg-local");
    let port = free_port();
    let started = run(&local.data, &["start", "--port", &port.to_string()]);
    started.assert_code(0);
    assert!(
        started
            .stderr
            .contains(&format!("PostgreSQL is ready at 127.0.0.1:{port}")),
        "{}",
        started.stderr
    );
    let url = printed_url(&started);
    assert_eq!(
        url,
        format!("postgres://stockstream:stockstream@127.0.0.1:{port}/stockstream")
    );
    assert_eq!(psql(&url, "SELECT 1").trim(), "1");

    // Without --port: the port `start` used, remembered in the data folder.
    assert_answering(&run(&local.data, &["status"]), port);
    let again = run(&local.data, &["start"]);
    again.assert_code(0);
    assert!(again.stderr.contains("already running"), "{}", again.stderr);
    assert_eq!(printed_url(&again), url);
    let said = run(&local.data, &["url"]);
    said.assert_code(0);
    assert_eq!(said.stdout.trim(), url);
    // Only on 127.0.0.1, and the socket in the data folder.
    assert!(local.data.join(format!(".s.PGSQL.{port}")).exists());

    let stopped = run(&local.data, &["stop"]);
    stopped.assert_code(0);
    assert!(stopped.stderr.contains("stopped"), "{}", stopped.stderr);
    assert_stopped(&run(&local.data, &["status"]), port);
}

#[test]
fn a_taken_port_is_named_with_the_way_to_choose_another() {
    let local = local("pg-taken");
    let taken = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let port = taken.local_addr().expect("its address").port();
    let started = run(&local.data, &["start", "--port", &port.to_string()]);
    started.assert_code(1);
    assert!(
        started.stderr.contains(&format!(
            "port {port} on 127.0.0.1 is already in use; choose another with --port N, or stop what uses it"
        )),
        "{}",
        started.stderr
    );
    // A caller that sets the port its own way (the justfile) is named that way.
    let mut cmd = launcher(&local.data, &["start"]);
    cmd.env("POSTGRES_LOCAL_PORT", port.to_string()).env(
        "POSTGRES_LOCAL_PORT_SETTING",
        "`just POSTGRES_LOCAL_PORT=N pg-up`",
    );
    let started = run_for(cmd, Duration::from_secs(120));
    started.assert_code(1);
    assert!(
        started
            .stderr
            .contains("choose another with `just POSTGRES_LOCAL_PORT=N pg-up`"),
        "{}",
        started.stderr
    );
    assert!(!local.data.exists(), "a failed start made {:?}", local.data);
}

/// Whether this session talks TLS: `t` or `f`.
const SESSION_TLS: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

/// The connection string of a client that verifies the local server on `host` by `root`.
fn verifying(host: &str, port: u16, root: &str) -> String {
    format!(
        "host={host} port={port} user=stockstream dbname=stockstream password=stockstream \
         sslmode=verify-full sslrootcert={root}"
    )
}

#[test]
fn with_ssl_clients_verify_the_server_by_the_test_ca() {
    let local = local("pg-ssl");
    let port = free_port();
    let started = run(
        &local.data,
        &["start", "--ssl", "--port", &port.to_string()],
    );
    started.assert_code(0);
    let ca = run(&local.data, &["ca"]);
    ca.assert_code(0);
    let ca = ca.stdout.trim().to_string();
    assert_eq!(Path::new(&ca), local.data.join("tls").join("ca.pem"));
    assert!(
        started
            .stderr
            .contains(&format!("sslmode=verify-full&sslrootcert={ca}")),
        "`start --ssl` shows how to trust the CA:\n{}",
        started.stderr
    );
    for host in ["127.0.0.1", "localhost"] {
        let session = psql(&verifying(host, port, &ca), SESSION_TLS);
        assert_eq!(session.trim(), "t", "{host}");
    }
    // Verified for real: another CA's client refuses the server.
    let stranger = local.data.join("stranger.pem");
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=stranger", "-keyout", "/dev/null", "-out"])
        .arg(&stranger)
        .output()
        .expect("running openssl");
    assert!(made.status.success(), "{made:?}");
    let refused = Command::new("psql")
        .args(["-X", "-c", "SELECT 1"])
        .arg(verifying(
            "127.0.0.1",
            port,
            &stranger.display().to_string(),
        ))
        .output()
        .expect("running psql");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("certificate verify failed"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // Still open to clients without TLS.
    let url = run(&local.data, &["url"]).stdout.trim().to_string();
    let plain = psql(&format!("{url}?sslmode=disable"), SESSION_TLS);
    assert_eq!(plain.trim(), "f");
}

#[test]
fn the_test_server_gives_each_test_a_database_of_its_own() {
    let server = postgres();
    // On the server the tests start themselves (not one STOCKSTREAM_TEST_POSTGRES names).
    if let Some(ca) = &server.ca {
        assert!(ca.exists(), "{}", ca.display());
        assert!(server.url.contains(PASSWORD), "{}", server.url);
        assert!(server.url.ends_with("?sslmode=disable"), "{}", server.url);
    }
    let (a, b) = (unique("pg-own"), unique("pg-own"));
    let (url_a, url_b) = (server.database(&a), server.database(&b));
    assert!(url_a.contains(&format!("/{a}")), "{url_a}");
    let quiet = psql(&url_a, "CREATE TABLE t (n int); INSERT INTO t VALUES (7);");
    assert_eq!(quiet, "", "rows only, no command tags");
    assert_eq!(
        psql(&url_a, "SELECT current_database(), n FROM t"),
        format!("{a}\t7\n")
    );
    let elsewhere = psql(
        &url_b,
        "SELECT count(*) FROM pg_tables WHERE tablename = 't'",
    );
    assert_eq!(elsewhere.trim(), "0");
    // Asked again, the name is a new, empty database.
    let url_a = server.database(&a);
    let gone = psql(
        &url_a,
        "SELECT count(*) FROM pg_tables WHERE tablename = 't'",
    );
    assert_eq!(gone.trim(), "0");
}

/// The port of a URL on 127.0.0.1.
fn port_of(url: &str) -> u16 {
    let (_, rest) = url.split_once("@127.0.0.1:").expect("a URL on 127.0.0.1");
    let port = rest.split('/').next().unwrap_or_default();
    port.parse().expect("a port in the URL")
}

#[test]
fn a_dedicated_server_keeps_its_data_across_a_stop_and_a_crash() {
    let mut server = DedicatedPostgres::start();
    let url = server.database(&unique("pg-dedicated"));
    psql(&url, "CREATE TABLE t (n int); INSERT INTO t VALUES (1);");
    let port = port_of(&server.url);

    server.stop();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "stopped");
    server.resume();
    psql(&url, "INSERT INTO t VALUES (2);");

    server.kill();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "killed");
    server.resume();
    // What was committed before the crash is back after the recovery.
    assert_eq!(
        psql(&url, "SELECT string_agg(n::text, ',' ORDER BY n) FROM t").trim(),
        "1,2"
    );
}
