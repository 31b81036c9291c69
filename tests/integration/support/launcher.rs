//! The project's launchers (scripts/kafka-local, kafka-cluster, postgres-local) as the tests
//! run them: `scripts/NAME run` in the foreground, which prints `READY` once its server
//! answers and stops the server when this process disappears (e.g. killed). Shared servers
//! are also stopped at process exit; a failed start fails loudly with what the tests need.
//! And the checks of what the launchers' `status` says, which they say alike.

use std::io::{BufRead as _, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, Once, PoisonError};
use std::time::Duration;

use super::broker::repo_root;
use super::Run;

/// One launcher, and what to say when its server does not start.
pub struct Launcher {
    /// Its file in scripts/.
    pub script: &'static str,
    /// The folder under target/ of its servers' throw-away data and logs.
    pub folder: &'static str,
    /// Its option naming the process whose end stops it.
    pub watch: &'static str,
    /// Its environment.
    pub env: &'static [(&'static str, &'static str)],
    /// The headline of a failed start, e.g. "KAFKA DID NOT START".
    pub headline: &'static str,
    /// What the tests need and the fix, said after the headline.
    pub needs: &'static str,
}

/// The longest wait for a launcher's READY line: more than any launcher's own --timeout.
const READY_LIMIT: Duration = Duration::from_secs(300);

/// The shared launchers to stop when the test process exits.
static LAUNCHERS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

impl Launcher {
    /// A data folder of this launcher's: target/FOLDER/NAME.
    pub fn data(&self, name: &str) -> PathBuf {
        repo_root().join("target").join(self.folder).join(name)
    }

    /// Runs `scripts/SCRIPT run --ephemeral ARGS` on a throw-away data folder
    /// (target/FOLDER/NAME-PID), stopped at exit and when this process disappears, and waits
    /// until it is ready. Returns what it printed before READY, its log and its data.
    pub fn launch_shared(
        &self,
        name: &str,
        args: &[&str],
    ) -> Result<(Vec<String>, PathBuf, PathBuf), String> {
        let data = self.data(&format!("{name}-{}", std::process::id()));
        let mut child = self.spawn(&data, &[&["--ephemeral"], args].concat())?;
        stop_at_exit(&child);
        let said = self.wait_ready(&mut child, &data)?;
        // The Child handle is dropped without killing: stop_at_exit owns the shutdown.
        Ok((said, log_path(&data), data))
    }

    /// Starts a server of a test's own (`spawn`) and waits until it is ready. Returns the
    /// launcher, which the test stops, and what it printed before READY.
    pub fn start(&self, data: &Path, args: &[&str]) -> Result<(Child, Vec<String>), String> {
        let mut child = self.spawn(data, args)?;
        let said = self.wait_ready(&mut child, data)?;
        Ok((child, said))
    }

    /// Starts `scripts/SCRIPT run ARGS --data DATA` in the background, its stderr appended
    /// to DATA.log; it stops its server when this process ends.
    fn spawn(&self, data: &Path, args: &[&str]) -> Result<Child, String> {
        let log_path = log_path(data);
        std::fs::create_dir_all(data.parent().expect("a data folder in a folder"))
            .map_err(|e| e.to_string())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| e.to_string())?;
        Command::new(repo_root().join("scripts").join(self.script))
            .arg("run")
            .args(args)
            .arg("--data")
            .arg(data)
            .args([self.watch, &std::process::id().to_string()])
            .envs(self.env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                let what = format!("could not run scripts/{}: {e}", self.script);
                self.failure(&what, &log_path)
            })
    }

    /// Waits for the READY line of a launcher `spawn` started on `data`; returns the lines
    /// it printed before it.
    fn wait_ready(&self, child: &mut Child, data: &Path) -> Result<Vec<String>, String> {
        let log_path = log_path(data);
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut before = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("READY") {
                    let _ = tx.send(std::mem::take(&mut before));
                } else {
                    before.push(line);
                }
            }
        });
        match rx.recv_timeout(READY_LIMIT) {
            Ok(lines) => Ok(lines),
            // The reader ended without READY: the launcher gave up (its own --timeout) or
            // failed, and said why in its log.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().map_or("unknown".into(), |s| s.to_string());
                Err(self.failure(
                    &format!("the launcher gave up or failed ({status})"),
                    &log_path,
                ))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                Err(self.failure(
                    &format!("the server did not start within {READY_LIMIT:?}"),
                    &log_path,
                ))
            }
        }
    }

    /// The message of a failed start: what failed, what the tests need and the fix, and the
    /// end of the launcher's log.
    pub fn failure(&self, what: &str, log_path: &Path) -> String {
        let tail = std::fs::read_to_string(log_path).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(25).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "\n\n{}: {what}.\n{}\nLauncher output ({}):\n{}\n",
            self.headline,
            self.needs,
            log_path.display(),
            tail.join("\n")
        )
    }
}

fn log_path(data: &Path) -> PathBuf {
    data.with_extension("log")
}

/// Stops the launcher `child` (SIGTERM: it stops what it started) when the test process
/// exits. The Child handle may be dropped: this owns the shutdown.
fn stop_at_exit(child: &Child) {
    static REGISTERED: Once = Once::new();
    let pid = i32::try_from(child.id()).unwrap_or(0);
    LAUNCHERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(pid);
    // SAFETY: registering a plain extern "C" function with atexit has no preconditions.
    REGISTERED.call_once(|| unsafe {
        libc::atexit(stop_launchers);
    });
}

extern "C" fn stop_launchers() {
    let pids = std::mem::take(&mut *LAUNCHERS.lock().unwrap_or_else(PoisonError::into_inner));
    // All asked first, so that they stop side by side.
    for &pid in &pids {
        // SAFETY: plain syscalls on child process ids this process started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    for pid in pids {
        // SAFETY: as above.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    }
}

/// Checks what a launcher's `status` says of its server on `port` while it runs: exit 0,
/// running and answering there.
#[track_caller]
pub fn assert_answering(status: &Run, port: u16) {
    status.assert_code(0);
    assert!(
        status
            .stdout
            .contains(&format!("running and answering at 127.0.0.1:{port}")),
        "{}",
        status.stdout
    );
}

/// Checks what a launcher's `status` says once its server on `port` was stopped: exit 3, not
/// running, and nothing answers on the port any more.
#[track_caller]
pub fn assert_stopped(status: &Run, port: u16) {
    status.assert_code(3);
    assert!(status.stdout.contains("not running"), "{}", status.stdout);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still answers after the stop"
    );
}

/// A server a test starts in the background with a launcher (`start`, or a recipe that
/// runs it) on a data folder of its own: stopped, and the folder deleted, when the test
/// ends, failed or not.
pub struct Started {
    /// The launcher's file in scripts/.
    pub script: &'static str,
    pub data: PathBuf,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = Command::new(repo_root().join("scripts").join(self.script))
            .arg("stop")
            .arg("--data")
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
