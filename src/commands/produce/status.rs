//! The live status at high rates: records/s, delivered, in flight and failed, as a bar on a
//! terminal (with progress when --count is given) or a log line every few seconds elsewhere.
//! Never a line per record.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::deliveries::{Deliveries, LOG};
use crate::logging;
use crate::numbers::{count, thousands};

const BAR_EVERY: Duration = Duration::from_millis(100);
const LINE_EVERY: Duration = Duration::from_secs(5);

pub struct Status {
    bar: Option<ProgressBar>,
    enabled: bool,
    last: Instant,
    last_delivered: u64,
}

impl Status {
    /// No status at a human pace, where each record has its own line; a bar only where
    /// stderr is `live` (a terminal).
    pub fn new(human: bool, count: Option<u64>, live: bool) -> Self {
        let enabled = !human;
        let bar = (enabled && live).then(|| {
            let bar = match count {
                Some(n) => ProgressBar::new(n).with_style(
                    ProgressStyle::with_template(
                        "{spinner} [{bar:30}] {human_pos}/{human_len} {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                ),
                None => ProgressBar::new_spinner(),
            };
            logging::progress().add(bar)
        });
        Status {
            bar,
            enabled,
            last: Instant::now(),
            last_delivered: 0,
        }
    }

    pub fn update(&mut self, generated: u64, deliveries: &Deliveries) {
        if !self.enabled || generated % 256 != 0 {
            return;
        }
        let every = if self.bar.is_some() {
            BAR_EVERY
        } else {
            LINE_EVERY
        };
        let elapsed = self.last.elapsed();
        if elapsed < every {
            return;
        }
        let delivered = deliveries.delivered();
        let failed = deliveries.failed();
        let rate = ((delivered - self.last_delivered) as f64 / elapsed.as_secs_f64()) as u64;
        let in_flight = generated.saturating_sub(delivered + failed);
        let text = format!(
            "{} | delivered {} | in flight {} | failed {}",
            count(rate, "record/s", "records/s"),
            thousands(delivered),
            thousands(in_flight),
            thousands(failed)
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(generated);
                bar.set_message(text);
            }
            None => tracing::info!(target: LOG, "📈 {text}"),
        }
        self.last = Instant::now();
        self.last_delivered = delivered;
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            logging::progress().remove(&bar);
        }
    }
}
