//! One real PostgreSQL server per test binary, for the tests of `store` and `history`:
//! started with the project's own launcher (`scripts/postgres-local run --ssl`) on a free
//! loopback port and a throw-away data folder, unless `STOCKSTREAM_TEST_POSTGRES` names a
//! running one (a URL whose role may create databases). Each test makes a database of its
//! own (`Postgres::database`). Like the broker, the server never outlives the tests.
//!
//! A test that stops or crashes PostgreSQL under a running job takes a server of its own
//! (`DedicatedPostgres`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::broker::free_port;
use super::launcher::Launcher;

/// The password of the role `stockstream` on the servers the tests start: recognizable in
/// any output it must never appear in, and needing no escaping in a URL.
pub const PASSWORD: &str = "pg-Pa55-word";

/// scripts/postgres-local, as the tests run it.
const POSTGRES_LOCAL: Launcher = Launcher {
    script: "postgres-local",
    folder: "test-postgres",
    watch: "--parent-pid",
    env: &[("POSTGRES_LOCAL_PASSWORD", PASSWORD)],
    headline: "POSTGRESQL DID NOT START",
    needs: "The store and history tests need a real PostgreSQL. They start one with \
            scripts/postgres-local, which runs the system's PostgreSQL (initdb and postgres; \
            as root, as the `postgres` user) and makes a test CA with openssl.\n\
            Fix: install them (Debian/Ubuntu: apt-get install postgresql openssl; .ci/run \
            does), or point STOCKSTREAM_TEST_POSTGRES at a running server (a URL whose role \
            may create databases).",
};

pub struct Postgres {
    /// The role and the database `stockstream`, with the password, without TLS.
    pub url: String,
    /// The test CA that signed the server's certificate, on the server the tests start
    /// themselves (clients connect with sslmode=verify-full and sslrootcert=CA).
    pub ca: Option<PathBuf>,
}

static POSTGRES: OnceLock<Result<Postgres, String>> = OnceLock::new();

/// The shared server. Panics with the reason and the fix when it cannot start.
pub fn postgres() -> &'static Postgres {
    match POSTGRES.get_or_init(start) {
        Ok(p) => p,
        Err(msg) => panic!("{msg}"),
    }
}

fn start() -> Result<Postgres, String> {
    if let Ok(url) = std::env::var("STOCKSTREAM_TEST_POSTGRES") {
        if !url.trim().is_empty() {
            return Ok(Postgres { url, ca: None });
        }
    }
    let port = free_port().to_string();
    let (said, log_path, _) = POSTGRES_LOCAL
        .launch_shared("postgres", &["--ssl", "--timeout", "120", "--port", &port])?;
    let (Some(url), Some(ca)) = (said_value(&said, "URL"), said_value(&said, "CA")) else {
        return Err(POSTGRES_LOCAL.failure(
            "scripts/postgres-local did not say its URL and CA",
            &log_path,
        ));
    };
    Ok(Postgres {
        url: format!("{url}?sslmode=disable"),
        ca: Some(PathBuf::from(ca)),
    })
}

/// The value of the launcher's line `NAME value`, printed before READY.
fn said_value<'a>(said: &'a [String], name: &str) -> Option<&'a str> {
    said.iter()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
}

impl Postgres {
    /// Makes a new, empty database NAME (a unique name, e.g. from `support::unique`; one a
    /// run before left is dropped first) and returns its URL.
    #[track_caller]
    pub fn database(&self, name: &str) -> String {
        create_database(&self.url, name)
    }
}

#[track_caller]
fn create_database(url: &str, name: &str) -> String {
    // Letters, digits, - and _: as they are in SQL (quoted) and in a URL, and no longer
    // than PostgreSQL keeps (63 bytes; it cuts longer names short).
    assert!(
        !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "a database name of 1 to 63 letters, digits, - and _, not {name:?}"
    );
    psql(
        url,
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE);\nCREATE DATABASE \"{name}\";"),
    );
    with_database(url, name)
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let host = base.find("://").map_or(0, |at| at + 3);
    let path = base[host..].find('/').map_or(base.len(), |at| host + at);
    let mut out = format!("{}/{name}", &base[..path]);
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Runs `sql` (statements one after another, stopping at the first error) with the system's
/// `psql` on `url`, and returns the rows the statements return: unaligned, fields separated
/// by tabs, one line a row (quiet: no command tags such as `INSERT 0 1`). Panics with
/// psql's errors when it fails.
#[track_caller]
pub fn psql(url: &str, sql: &str) -> String {
    let mut child = Command::new("psql")
        .args(["-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-f", "-"])
        .args(["-d", url])
        // Bounded, so that a test fails rather than hangs on a lock or a dead server.
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGOPTIONS", "-c statement_timeout=120s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("could not run psql: {e}. Install it (Debian/Ubuntu: apt-get install postgresql-client).")
        });
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = sql.to_string();
    // Written beside the reading, so that neither side waits on a full pipe.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("waiting for psql");
    let _ = writer.join();
    assert!(
        out.status.success(),
        "psql failed ({}) on:\n{sql}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A PostgreSQL server of a test's own, which the test may stop, crash and start again
/// (same port, same data) under a running job. It stops when dropped, and with the test
/// process in any case.
pub struct DedicatedPostgres {
    /// The role and the database `stockstream`, with the password, without TLS.
    pub url: String,
    port: u16,
    data: PathBuf,
    launcher: Option<Child>,
}

impl DedicatedPostgres {
    pub fn start() -> DedicatedPostgres {
        let port = free_port();
        let data = POSTGRES_LOCAL.data(&format!("dedicated-{}-{port}", std::process::id()));
        let mut server = DedicatedPostgres {
            url: String::new(),
            port,
            data,
            launcher: None,
        };
        server.resume();
        server
    }

    /// Makes a new, empty database NAME on this server and returns its URL.
    #[track_caller]
    pub fn database(&self, name: &str) -> String {
        create_database(&self.url, name)
    }

    /// Starts the server again on its port and data (after `stop` or `kill`; after a kill
    /// it recovers from its write-ahead log first).
    #[track_caller]
    pub fn resume(&mut self) {
        let port = self.port.to_string();
        match POSTGRES_LOCAL.start(&self.data, &["--timeout", "120", "--port", &port]) {
            Ok((child, said)) => {
                let url = said_value(&said, "URL").expect("the launcher says its URL");
                self.url = format!("{url}?sslmode=disable");
                self.launcher = Some(child);
            }
            Err(msg) => panic!("{msg}"),
        }
    }

    /// Stops the server with a fast shutdown (open sessions are ended, what they committed
    /// is kept), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.launcher.take() {
            // SAFETY: signalling our own child process; the launcher stops the server.
            unsafe { libc::kill(i32::try_from(child.id()).unwrap(), libc::SIGTERM) };
            let _ = child.wait();
        }
    }

    /// Kills the postmaster at once (SIGKILL), as a crash would, keeping its data; its
    /// other processes end by themselves, and so does the launcher. Returns once they have
    /// all gone, so that `resume` finds the port and the shared memory free.
    pub fn kill(&mut self) {
        let Some(mut launcher) = self.launcher.take() else {
            return;
        };
        let postmaster = self.postmaster_pid();
        let children = children(postmaster);
        // SAFETY: signalling the server this test started.
        unsafe { libc::kill(postmaster, libc::SIGKILL) };
        let _ = launcher.wait();
        let deadline = Instant::now() + Duration::from_secs(30);
        while children.iter().any(|&pid| alive(pid)) {
            if Instant::now() > deadline {
                for &pid in &children {
                    // SAFETY: the server's own processes, which outlived it too long.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freezes the server (SIGSTOP to the postmaster and every process of it), as a machine
    /// that stops answering would: connections stay open, nothing is answered. Thawed when
    /// the guard goes, a failed assertion included.
    pub fn freeze(&self) -> Frozen {
        let postmaster = self.postmaster_pid();
        let mut pids = children(postmaster);
        pids.push(postmaster);
        for &pid in &pids {
            // SAFETY: the server's own processes, started by this test.
            unsafe { libc::kill(pid, libc::SIGSTOP) };
        }
        Frozen(pids)
    }

    /// The postmaster, as PostgreSQL recorded it.
    fn postmaster_pid(&self) -> i32 {
        let file = self.data.join("cluster").join("postmaster.pid");
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let first = text.lines().next().unwrap_or_default();
        first.trim().parse().expect("a pid in postmaster.pid")
    }
}

/// A frozen server's processes; dropping this thaws them.
pub struct Frozen(Vec<i32>);

impl Drop for Frozen {
    fn drop(&mut self) {
        for &pid in &self.0 {
            // SAFETY: the server's own processes, stopped by `freeze`.
            unsafe { libc::kill(pid, libc::SIGCONT) };
        }
    }
}

impl Drop for DedicatedPostgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// The processes whose parent is `pid`.
fn children(pid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let child: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // After "(comm)": the state, then the parent's pid.
            let parent: i32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (parent == pid).then_some(child)
        })
        .collect()
}

/// Whether process `pid` still runs (a zombie has ended).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}
