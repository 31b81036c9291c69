//! Ctrl+C and SIGTERM: the first asks for a graceful stop (finish in-flight work, report),
//! the second exits at once with code 130.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context as _;

use crate::exit;

/// A flag that turns true once a stop was asked for. `install` gives the one Ctrl+C sets;
/// `Stop::default()` one that only `request` sets, for a part of the program that another
/// part stops (the demo stops its producer first, its aggregate a little later).
#[derive(Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Asks for the stop, as a first Ctrl+C does.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
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

/// Installs the handler. Call once per process.
pub fn install() -> anyhow::Result<Stop> {
    let flag = Arc::new(AtomicBool::new(false));
    let presses = AtomicUsize::new(0);
    let handler_flag = Arc::clone(&flag);
    ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) == 0 {
            handler_flag.store(true, Ordering::SeqCst);
            tracing::warn!(target: "stockstream", "stopping gracefully (press Ctrl+C again to quit at once)");
        } else {
            crate::logging::progress().clear().ok();
            eprintln!("stockstream: interrupted twice, quitting without waiting");
            std::process::exit(i32::from(exit::INTERRUPTED));
        }
    })
    .context("installing the Ctrl+C / SIGTERM handler")?;
    let stop = Stop(flag);
    let _ = INSTALLED.set(stop.clone());
    Ok(stop)
}
