//! The one log formatter, in the original project's look:
//! `2025-11-02 10:50:08 - StockProducer - ✨ INFO - message`.
//!
//! Logs go to stderr through a writer that suspends the progress bars while it writes, so
//! log lines and bars never garble each other. Color is decided once, at `init`.

use std::fmt;
use std::io;
use std::sync::OnceLock;

use indicatif::MultiProgress;
use nu_ansi_term::{Color, Style};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Mark an ERROR event with `critical = true` to print it as the original's
/// `🚨 CRITICAL` (tracing has no level above ERROR): `error!(critical = true, "…")`.
pub const CRITICAL_FIELD: &str = "critical";

const TIME_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// Every progress bar is added here, so that log lines can suspend all of them.
pub fn progress() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(MultiProgress::new)
}

/// Installs the formatter on stderr. `verbosity` is -2 (errors only) to 2 (trace).
pub fn init(verbosity: i8, color: bool) {
    let level = match verbosity {
        i8::MIN..=-2 => Level::ERROR,
        -1 => Level::WARN,
        0 => Level::INFO,
        1 => Level::DEBUG,
        _ => Level::TRACE,
    };
    // librdkafka's own chatter is useful only when asked for twice.
    let rdkafka_level = if verbosity >= 2 {
        level
    } else {
        Level::WARN.min(level)
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(level)
        .with_target("rdkafka", rdkafka_level)
        .with_target("librdkafka", rdkafka_level);
    // The local offset can only be read safely while the process has one thread.
    let offset = UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC);
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(color)
        .with_writer(ProgressAwareStderr)
        .event_format(Formatter { offset });
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
}

/// Writes to stderr with every progress bar suspended for the duration of the write.
#[derive(Clone, Copy)]
struct ProgressAwareStderr;

impl io::Write for ProgressAwareStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        progress().suspend(|| io::stderr().lock().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> MakeWriter<'a> for ProgressAwareStderr {
    type Writer = ProgressAwareStderr;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

struct Formatter {
    offset: UtcOffset,
}

/// How a level looks: emoji, name and color, as in the original logger.
fn level_look(level: Level, critical: bool) -> (&'static str, &'static str, Color) {
    if critical {
        return ("🚨", "CRITICAL", Color::Magenta);
    }
    match level {
        Level::ERROR => ("❌", "ERROR", Color::Red),
        Level::WARN => ("⚠️", "WARNING", Color::Yellow),
        Level::INFO => ("✨", "INFO", Color::Green),
        Level::DEBUG => ("🔍", "DEBUG", Color::Cyan),
        Level::TRACE => ("🔬", "TRACE", Color::Blue),
    }
}

/// The component name shown in a line: an explicit target such as `StockProducer`, or
/// `librdkafka` for the client library's own messages.
fn component(target: &str) -> &str {
    // "log" is what events bridged from the `log` crate carry; rdkafka is its one user here.
    if target.starts_with("rdkafka") || target == "librdkafka" || target == "log" {
        "librdkafka"
    } else if target.contains("::") {
        "stockstream"
    } else {
        target
    }
}

impl<S, N> FormatEvent<S, N> for Formatter
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let (emoji, name, color) = level_look(*meta.level(), fields.critical);
        let now = OffsetDateTime::now_utc().to_offset(self.offset);
        let stamp = now.format(TIME_FORMAT).unwrap_or_default();
        let comp = component(meta.target());
        if w.has_ansi_escapes() {
            let dim = Style::new().dimmed();
            let style = color.bold();
            write!(
                w,
                "{} - {} - {} - {}",
                dim.paint(stamp),
                Color::Blue.paint(comp),
                style.paint(format!("{emoji} {name}")),
                color.paint(&fields.text)
            )?;
        } else {
            write!(w, "{stamp} - {comp} - {emoji} {name} - {}", fields.text)?;
        }
        writeln!(w)
    }
}

/// The message first, then any other fields as `key=value`; `critical` is not printed.
#[derive(Default)]
struct Fields {
    text: String,
    critical: bool,
}

impl Fields {
    fn push(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        use fmt::Write as _;
        if field.name() == "message" {
            let rest = std::mem::take(&mut self.text);
            let _ = write!(self.text, "{value}");
            if !rest.is_empty() {
                self.text.push(' ');
                self.text.push_str(&rest);
            }
        } else {
            if !self.text.is_empty() {
                self.text.push(' ');
            }
            let _ = write!(self.text, "{}={value}", field.name());
        }
    }
}

impl Visit for Fields {
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == CRITICAL_FIELD {
            self.critical = value;
        } else {
            self.push(field, format_args!("{value}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, format_args!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt as _;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    fn render(ansi: bool, emit: impl FnOnce()) -> String {
        let capture = Capture::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(capture.clone())
            .event_format(Formatter {
                offset: UtcOffset::UTC,
            });
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, emit);
        let bytes = capture.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn plain_line_has_the_original_shape() {
        let out = render(false, || tracing::info!(target: "StockProducer", "hello"));
        let (stamp, rest) = out.split_at(19);
        let shape: String = stamp
            .chars()
            .map(|c| if c.is_ascii_digit() { '9' } else { c })
            .collect();
        assert_eq!(shape, "9999-99-99 99:99:99", "{stamp}");
        assert_eq!(rest, " - StockProducer - ✨ INFO - hello\n");
        assert!(!out.contains('\x1b'));
    }

    #[test]
    fn each_level_has_its_emoji() {
        let out = render(false, || {
            tracing::error!(target: "T", "e");
            tracing::warn!(target: "T", "w");
            tracing::debug!(target: "T", "d");
            tracing::error!(target: "T", critical = true, "c");
        });
        assert!(out.contains("❌ ERROR - e"), "{out}");
        assert!(out.contains("⚠️ WARNING - w"), "{out}");
        assert!(out.contains("🔍 DEBUG - d"), "{out}");
        assert!(out.contains("🚨 CRITICAL - c"), "{out}");
        assert!(!out.contains("critical="), "{out}");
    }

    #[test]
    fn color_uses_the_levels_colors() {
        let out = render(true, || {
            tracing::info!(target: "T", "i");
            tracing::error!(target: "T", critical = true, "c");
        });
        assert!(
            out.contains(&Color::Green.bold().prefix().to_string()),
            "{out:?}"
        );
        assert!(
            out.contains(&Color::Magenta.bold().prefix().to_string()),
            "{out:?}"
        );
    }

    #[test]
    fn extra_fields_follow_the_message() {
        let out = render(false, || tracing::warn!(target: "T", partition = 3, "late"));
        assert!(out.ends_with(" - late partition=3\n"), "{out}");
    }

    #[test]
    fn module_targets_collapse_to_the_program_name() {
        assert_eq!(component("stockstream::kafka"), "stockstream");
        assert_eq!(component("rdkafka::client"), "librdkafka");
        assert_eq!(component("StockProducer"), "StockProducer");
    }
}
