//! `stockstream demo` with no Kafka anywhere: it runs produce and aggregate on its embedded
//! cluster, prints bars for every symbol, and stops by itself; with --brokers it goes to
//! that cluster and nowhere else.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::assert_unreachable;
use crate::support::terminal::{bars_table, screen, Terminal};
use crate::support::{run_for, stockstream, Running};

const SYMBOLS: [&str; 7] = ["AAPL", "GOOGL", "AMZN", "MSFT", "TSLA", "META", "NFLX"];

#[test]
fn the_demo_needs_no_broker_and_shows_bars_for_every_symbol() {
    let mut cmd = stockstream();
    // `just demo` exports STOCKSTREAM_BROKERS: only a typed --brokers leaves the embedded
    // cluster, so this unreachable address must not matter.
    cmd.env("STOCKSTREAM_BROKERS", "127.0.0.1:1")
        .args(["demo", "--duration", "10s"]);
    let started = Instant::now();
    let run = run_for(cmd, Duration::from_secs(40));
    run.assert_code(0);
    let took = started.elapsed();

    let mut symbols = BTreeSet::new();
    for line in run.stdout.lines() {
        let bar: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON bar ({e}): {line}\n{}", run.stderr));
        assert_eq!(bar["final"], true, "{line}");
        assert!(bar["trades"].as_u64() > Some(0), "{line}");
        symbols.insert(bar["symbol"].as_str().unwrap_or_default().to_string());
    }
    let want: BTreeSet<String> = SYMBOLS.iter().map(|s| s.to_string()).collect();
    assert_eq!(symbols, want, "bars for every symbol\n{}", run.stderr);

    // The producer's lines, the limits of the embedded cluster said plainly, a summary.
    assert!(
        run.stderr.contains("StockProducer - ✨ INFO - ✅"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no real transactions")
            && run.stderr.contains("at-least-once, not exactly-once"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("📋 Demo summary:"), "{}", run.stderr);
    assert!(!run.stderr.contains("127.0.0.1:1"), "{}", run.stderr);
    // 10s of ticks, then the last windows close: a few seconds, not a minute.
    assert!(took < Duration::from_secs(25), "took {took:?}");
}

#[test]
fn with_brokers_the_demo_goes_there_and_says_when_it_cannot() {
    let run = assert_unreachable(&["demo", "--duration", "2s", "--timeout", "1s"]);
    assert!(!run.stderr.contains("Embedded"), "{}", run.stderr);
}

/// Runs a short demo with stderr on a terminal (NO_COLOR unset), and returns what the
/// terminal showed.
fn demo_on_a_terminal(color: &str) -> String {
    let mut cmd = stockstream();
    cmd.env_remove("NO_COLOR")
        .args(["--color", color, "demo", "--duration", "4s"])
        .args(["--interval", "20ms", "--window", "1s"])
        .stdout(std::process::Stdio::null());
    let (code, shown) = Terminal::spawn(cmd).wait(Duration::from_secs(60));
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains("SYMBOL  WINDOW (UTC)"),
        "the live table was drawn:\n{shown}"
    );
    shown
}

/// Whether `text` holds an ANSI colour or style sequence (ESC [ … m); the live table's
/// cursor moves (ESC [ 1A, ESC [ 2K) are not colour.
fn has_color(text: &str) -> bool {
    text.split("\x1b[").skip(1).any(|rest| {
        let params: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ';')
            .collect();
        rest[params.len()..].starts_with('m')
    })
}

#[test]
fn color_never_holds_for_the_logs_and_the_live_table() {
    let shown = demo_on_a_terminal("never");
    assert!(
        !has_color(&shown),
        "colour despite --color never:\n{shown:?}"
    );

    // The same run with --color always paints the table's rows green or red.
    let shown = demo_on_a_terminal("always");
    let painted = SYMBOLS.iter().any(|s| {
        shown.contains(&format!("\x1b[32m{s} ")) || shown.contains(&format!("\x1b[31m{s} "))
    });
    assert!(painted, "no coloured row with --color always:\n{shown:?}");
}

#[test]
fn the_demo_leaves_its_last_table_on_screen() {
    let mut cmd = stockstream();
    cmd.args(["demo", "--duration", "4s", "--seed", "7"])
        .stdout(std::process::Stdio::null());
    let terminal = Terminal::spawn(cmd);
    let (code, shown) = terminal.wait(Duration::from_secs(40));
    assert_eq!(code, Some(0), "{shown}");
    let screen = screen(&shown);
    let text = screen.join("\n");
    let rows = bars_table(&screen);
    assert!(!rows.is_empty(), "a header without rows:\n{text}");
    // One row per symbol, the summary below them.
    let symbols: BTreeSet<&str> = rows.iter().filter_map(|r| r.split(' ').next()).collect();
    assert_eq!(symbols.len(), rows.len(), "{text}");
    let last_row = screen.iter().position(|l| *l == rows[rows.len() - 1]);
    let summary = screen.iter().position(|l| l.contains("📋 Demo summary:"));
    assert!(last_row < summary, "{text}");
}

#[test]
fn ctrl_c_stops_the_demo_at_once_without_waiting_for_the_last_windows() {
    let mut cmd = stockstream();
    // Windows of 10s: closing the last ones would take more than 10s.
    cmd.args(["demo", "--window", "10s"]);
    let demo = Running::spawn(cmd);
    std::thread::sleep(Duration::from_secs(4));
    // Ended within 5 s of the signal, or the wait fails.
    let run = demo.signal_and_wait(libc::SIGINT, Duration::from_secs(5));
    run.assert_code(0);
    assert!(run.stderr.contains("📋 Demo summary:"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("the last windows close"),
        "{}",
        run.stderr
    );
}
