//! Helpers shared by the integration tests: run the built binary with a bound on its run
//! time, set up or read back topics on the real broker with a plain rdkafka client, and
//! databases on the real PostgreSQL with psql.

pub mod broker;
pub mod cluster;
pub mod kafka;
pub mod launcher;
pub mod model;
pub mod postgres;
pub mod terminal;

use std::io::Read as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use broker::broker;
pub use postgres::{postgres, psql};

/// The output of one finished run.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// `stockstream` with colors off, pointed at the test broker.
pub fn stockstream() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stockstream"));
    cmd.env_remove("STOCKSTREAM_BROKERS")
        .env_remove("STOCKSTREAM_POSTGRES_URL")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// `stockstream -b <test broker> ARGS…`
pub fn on_broker(args: &[&str]) -> Command {
    let mut cmd = stockstream();
    cmd.args(["-b", &broker().bootstrap]).args(args);
    cmd
}

/// Runs to completion, killing the process (and failing) after `limit`.
#[track_caller]
pub fn run_for(mut cmd: Command, limit: Duration) -> Run {
    let child = cmd.spawn().expect("starting stockstream");
    wait_for(child, limit)
}

#[track_caller]
pub fn wait_for(child: Child, limit: Duration) -> Run {
    Drained::new(child).wait(limit)
}

/// A child whose output is read on threads from the start, so that a chatty child never
/// blocks on a full pipe, however long it runs.
struct Drained {
    child: Child,
    out: JoinHandle<String>,
    err: JoinHandle<String>,
}

impl Drained {
    fn new(mut child: Child) -> Self {
        let mut out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Drained { child, out, err }
    }

    /// Waits for the exit, killing the child (and failing) after `limit`.
    #[track_caller]
    fn wait(mut self, limit: Duration) -> Run {
        let Some(status) = exit_within(&mut self.child, limit, || {}) else {
            panic!(
                "stockstream did not finish within {limit:?}\n--- stderr\n{}",
                self.err.join().unwrap_or_default()
            );
        };
        Run {
            code: status.code(),
            stdout: self.out.join().unwrap_or_default(),
            stderr: self.err.join().unwrap_or_default(),
        }
    }
}

/// Waits for `child` to exit, at most `limit`, calling `meanwhile` between two looks; kills
/// it and returns `None` when it overran.
pub fn exit_within(
    child: &mut Child,
    limit: Duration,
    mut meanwhile: impl FnMut(),
) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for stockstream") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        meanwhile();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to the child process `pid`.
pub fn send_signal(pid: u32, signal: i32) {
    // SAFETY: signalling a child process of this test.
    unsafe { libc::kill(i32::try_from(pid).expect("a pid"), signal) };
}

/// A running `stockstream` that is killed if the test ends without stopping it (a failed
/// assertion), so no process outlives the tests.
pub struct Running(Option<Drained>);

impl Running {
    pub fn spawn(mut cmd: Command) -> Self {
        Running(Some(Drained::new(
            cmd.spawn().expect("starting stockstream"),
        )))
    }

    pub fn pid(&self) -> u32 {
        self.0.as_ref().map_or(0, |d| d.child.id())
    }

    /// Waits for the exit, at most `limit`.
    #[track_caller]
    pub fn wait(mut self, limit: Duration) -> Run {
        self.0.take().expect("still running").wait(limit)
    }

    /// Whether it has exited (without waiting).
    pub fn exited(&mut self) -> bool {
        self.0.as_mut().is_some_and(|d| {
            d.child
                .try_wait()
                .expect("looking at stockstream")
                .is_some()
        })
    }

    /// Sends `signal` and waits for the exit, at most `limit`.
    #[track_caller]
    pub fn signal_and_wait(self, signal: i32, limit: Duration) -> Run {
        self.signal(signal);
        self.wait(limit)
    }

    /// Sends `signal`.
    pub fn signal(&self, signal: i32) {
        send_signal(self.pid(), signal);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut running) = self.0.take() {
            let _ = running.child.kill();
            let _ = running.child.wait();
        }
    }
}

/// Runs `stockstream -b 127.0.0.1:1 ARGS` (nothing listens there) and checks the one clear
/// error: exit 3, the brokers named, nothing on stdout.
#[track_caller]
pub fn assert_unreachable(args: &[&str]) -> Run {
    let mut cmd = stockstream();
    cmd.args(["-b", "127.0.0.1:1"]).args(args);
    let run = run_for(cmd, Duration::from_secs(15));
    run.assert_code(3);
    assert!(
        run.stderr.contains("could not reach Kafka at 127.0.0.1:1"),
        "{args:?}: {}",
        run.stderr
    );
    assert!(run.stdout.is_empty(), "nothing on stdout: {}", run.stdout);
    run
}

/// A topic name no other test uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A count from the summary line of produce or aggregate, e.g. `delivered` in "…, 12,345
/// delivered, …" or `records read` in "Summary: 1,024 records read, …".
#[track_caller]
pub fn summary_count(stderr: &str, what: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("Summary:"))
        .unwrap_or_else(|| panic!("no summary line in:\n{stderr}"));
    let before = line
        .split(&format!(" {what}"))
        .next()
        .unwrap_or_else(|| panic!("no `{what}` in {line}"));
    let number = before.rsplit(' ').next().unwrap().replace(',', "");
    number
        .parse()
        .unwrap_or_else(|_| panic!("no count before `{what}` in {line}"))
}

/// The wall clock in Unix ms.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970");
    i64::try_from(since.as_millis()).expect("ms fit an i64")
}

/// Every thread's stack of the process `pid`, by gdb, for a test that failed while a job was
/// still running: it shows where the job was. Says why when there is none to show.
pub fn stacks(pid: u32) -> String {
    let run = Command::new("timeout")
        .args(["60", "gdb", "-p", &pid.to_string(), "-batch", "-nx"])
        .args(["-ex", "set pagination off", "-ex", "thread apply all bt"])
        .stdin(Stdio::null())
        .output();
    match run {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => format!(
            "(gdb could not show the stacks: {})",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => format!("(no stacks: gdb could not run: {e})"),
    }
}

/// A loopback port free at the call, for a server a test starts.
pub fn free_port() -> u16 {
    broker::free_port()
}

/// `GET path` over HTTP/1.0 (the answer ends with the connection): status and body.
pub fn http_get(address: &str, path: &str) -> std::io::Result<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}
