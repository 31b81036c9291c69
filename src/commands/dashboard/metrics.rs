//! The dashboard's Prometheus metrics (`--metrics-addr`): the browser streams open, the
//! bars it has pushed to them, and the history loaded from PostgreSQL. Changes are rare (a
//! few bars a second, a browser now and then), so each is recorded as it happens.

use metrics::{counter, describe_counter, describe_gauge, gauge, Unit};

pub const STREAMS: &str = "stockstream_dashboard_streams";
pub const BARS: &str = "stockstream_dashboard_bars_total";
pub const HISTORY_BARS: &str = "stockstream_dashboard_history_bars_total";

pub fn describe() {
    describe_gauge!(
        STREAMS,
        Unit::Count,
        "Browser streams (server-sent events) open now."
    );
    describe_counter!(
        BARS,
        Unit::Count,
        "Bars read from the bars topic and pushed to the page."
    );
    describe_counter!(
        HISTORY_BARS,
        Unit::Count,
        "Bars of history loaded from PostgreSQL (--postgres)."
    );
}

pub fn stream_opened() {
    gauge!(STREAMS).increment(1.0);
}

pub fn stream_closed() {
    gauge!(STREAMS).decrement(1.0);
}

pub fn bar() {
    counter!(BARS).increment(1);
}

pub fn history(bars: usize) {
    counter!(HISTORY_BARS).increment(bars as u64);
}
