//! Ctrl+C and SIGTERM: the first asks for a graceful stop (finish in-flight work, report),
//! the second exits at once with code 130. A graceful stop waits for Kafka at most
//! `PATIENCE` more, so that the first Ctrl+C ends any command within about a second even
//! when the brokers do not answer.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::exit;

/// How long work still waits for Kafka once a stop was asked for: enough for a last commit
/// or a clean-up on brokers that answer (tens of milliseconds), short enough that a stop
/// is quick when they do not.
pub const PATIENCE: Duration = Duration::from_secs(1);

/// A flag that turns true once a stop was asked for. `install` gives the one Ctrl+C sets;
/// `Stop::default()` one that only `request` sets, for a part of the program that another
/// part stops (the demo stops its producer first, its aggregate a little later).
#[derive(Clone, Default)]
pub struct Stop(Arc<Asked>);

#[derive(Default)]
struct Asked {
    flag: AtomicBool,
    at: OnceLock<Instant>,
}

impl Stop {
    pub fn requested(&self) -> bool {
        self.0.flag.load(Ordering::Relaxed)
    }

    /// Asks for the stop, as a first Ctrl+C does.
    pub fn request(&self) {
        let _ = self.0.at.set(Instant::now());
        self.0.flag.store(true, Ordering::SeqCst);
    }

    /// Whether the stop was asked for more than `PATIENCE` ago: a wait for Kafka ends here.
    pub fn out_of_patience(&self) -> bool {
        self.requested() && self.0.at.get().is_none_or(|at| at.elapsed() >= PATIENCE)
    }
}

/// The stop Ctrl+C sets, once installed.
static INSTALLED: OnceLock<Stop> = OnceLock::new();

/// Whether Ctrl+C or SIGTERM asked the program to stop: for waits no `Stop` is handed to,
/// such as the first contact with the brokers.
pub fn stop_requested() -> bool {
    INSTALLED.get().is_some_and(Stop::requested)
}

/// Fails with `Failure::Interrupted` once Ctrl+C or SIGTERM asked the program to stop: for
/// a task with an end (a walk-through), at each point where it may stop part-way.
pub fn unless_stopped() -> Result<(), exit::Failure> {
    if stop_requested() {
        Err(exit::Failure::Interrupted)
    } else {
        Ok(())
    }
}

/// Whether Ctrl+C or SIGTERM asked the program to stop more than `PATIENCE` ago: for waits
/// for Kafka no `Stop` is handed to (admin requests).
pub fn out_of_patience() -> bool {
    INSTALLED.get().is_some_and(Stop::out_of_patience)
}

/// Runs a blocking Kafka request on a thread of its own and waits for its answer; once Ctrl+C
/// or SIGTERM asked for a stop, at most until `PATIENCE` after it. `None`: given up (the
/// request goes on, unheard, until its own timeout or the end of the process), or no
/// thread could be started.
pub fn patiently<T: Send + 'static>(request: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (answer, answered) = mpsc::channel();
    let asked = std::thread::Builder::new()
        .name("request".to_string())
        .spawn(move || {
            let _ = answer.send(request());
        });
    if asked.is_err() {
        return None;
    }
    loop {
        match answered.recv_timeout(Duration::from_millis(10)) {
            Ok(value) => return Some(value),
            Err(mpsc::RecvTimeoutError::Timeout) if !out_of_patience() => {}
            Err(_) => return None,
        }
    }
}

/// Installs the handler. Call once per process.
pub fn install() -> anyhow::Result<Stop> {
    let stop = Stop::default();
    let presses = AtomicUsize::new(0);
    let handler_stop = stop.clone();
    ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) == 0 {
            handler_stop.request();
            tracing::warn!(target: "stockstream", "stopping gracefully (press Ctrl+C again to quit at once)");
        } else {
            crate::logging::progress().clear().ok();
            eprintln!("stockstream: interrupted twice, quitting without waiting");
            std::process::exit(i32::from(exit::INTERRUPTED));
        }
    })
    .context("installing the Ctrl+C / SIGTERM handler")?;
    let _ = INSTALLED.set(stop.clone());
    Ok(stop)
}
