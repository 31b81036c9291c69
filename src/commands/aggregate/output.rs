//! The bars on the console: on a terminal, a live table of the latest bar per symbol (green
//! when it closed up, red when down, against the previous close), left on screen as it last
//! was when the job ends; elsewhere, one JSON line per emitted bar on stdout.

use std::collections::BTreeMap;
use std::io::Write as _;

use indicatif::{ProgressBar, ProgressStyle};
use nu_ansi_term::Color;

use crate::aggregate::bar::rfc3339;
use crate::aggregate::Bar;
use crate::logging;
use crate::record::Symbol;
use crate::terminal::Terminal;

pub enum Console {
    Off,
    Lines,
    Table {
        bar: ProgressBar,
        latest: BTreeMap<Symbol, (Bar, Option<f64>)>,
        color: bool,
    },
}

impl Console {
    /// The bars as `terminal` allows: a live table on a terminal, coloured only if stderr
    /// gets colour.
    pub fn new(enabled: bool, terminal: Terminal) -> Self {
        if !enabled {
            return Console::Off;
        }
        if !terminal.live {
            return Console::Lines;
        }
        let bar = logging::progress().add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Console::Table {
            bar,
            latest: BTreeMap::new(),
            color: terminal.stderr_color,
        }
    }

    pub fn show(&mut self, b: &Bar) {
        match self {
            Console::Off => {}
            Console::Lines => {
                let mut out = std::io::stdout().lock();
                let line = b.to_json();
                if out
                    .write_all(&line)
                    .and_then(|()| out.write_all(b"\n"))
                    .is_err()
                {
                    // Whoever read stdout has gone (a closed pipe): stop writing, keep working.
                    *self = Console::Off;
                }
            }
            Console::Table { bar, latest, color } => {
                let previous_close = latest.get(&b.symbol).map(|(prev, _)| prev.close);
                latest.insert(b.symbol, (b.clone(), previous_close));
                bar.set_message(render(latest, *color));
            }
        }
    }

    /// Ends the live table: its last state is written once more as plain lines, which no
    /// later redraw moves or erases, so the bars stay on screen above the summary.
    pub fn finish(&mut self) {
        if let Console::Table { bar, latest, color } = self {
            bar.finish_and_clear();
            logging::progress().remove(bar);
            if !latest.is_empty() {
                let table = render(latest, *color);
                // The terminal may have gone (a closed window): nothing left to show it on.
                let _ =
                    logging::progress().suspend(|| writeln!(std::io::stderr().lock(), "{table}"));
            }
            *self = Console::Off;
        }
    }
}

fn render(latest: &BTreeMap<Symbol, (Bar, Option<f64>)>, color: bool) -> String {
    let mut out = String::from(
        "SYMBOL  WINDOW (UTC)                  OPEN      HIGH       LOW     CLOSE      VWAP     VOLUME  TRADES",
    );
    for (symbol, (b, prev)) in latest {
        let window = format!(
            "{} +{}s",
            rfc3339(b.window_start),
            (b.window_end - b.window_start) / 1000
        );
        let vwap = b
            .vwap
            .map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
        let line = format!(
            "{symbol:<6}  {window:<26} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {vwap:>9} {:>10} {:>7}{}",
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume,
            b.trades,
            if b.is_final { "" } else { " …" }
        );
        let paint = match prev {
            Some(p) if color && b.close > *p => Color::Green.paint(line).to_string(),
            Some(p) if color && b.close < *p => Color::Red.paint(line).to_string(),
            _ => line,
        };
        out.push('\n');
        out.push_str(&paint);
    }
    out
}
