//! `stockstream history`: what `store` kept in PostgreSQL. Bars of some symbols over a time
//! range, as stored or resampled into coarser bars by the database, as a table, JSON lines
//! (the bars topic's own format) or CSV.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::aggregate::bar::rfc3339;
use crate::aggregate::Bar;
use crate::global::Global;
use crate::numbers::count;
use crate::postgres::history::{self, Query};
use crate::postgres::schema;
use crate::record::{now_millis, Symbol};
use crate::table::Table;

const LOG: &str = "StockHistory";

const EXAMPLES: &str = "\
Examples:
  stockstream history --postgres postgres://127.0.0.1/bars --symbol AAPL --since 1h
  stockstream history --postgres postgres://127.0.0.1/bars -s AAPL --from 2026-11-30T09:30:00Z --resample 1m
  stockstream history --postgres postgres://127.0.0.1/bars --since 1d --resample 1h -o csv
  stockstream history --postgres postgres://127.0.0.1/bars -s TSLA --since 15m -o json";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    postgres: crate::postgres::Flag,

    /// Only this symbol (repeatable). Default: every symbol.
    #[arg(short, long = "symbol", value_name = "SYMBOL", ignore_case = true)]
    symbols: Vec<Symbol>,

    /// Bars of windows that started this long ago or later (e.g. 1h, 30m, 2d).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION", conflicts_with = "from")]
    since: Option<Duration>,

    /// Bars of windows that started at or after this time: RFC 3339
    /// (2026-11-30T09:30:00Z) or a time ago (-2h).
    #[arg(long, value_parser = parse_time, value_name = "TIME", allow_hyphen_values = true)]
    from: Option<i64>,

    /// …and before this time (same forms). Default: now and later.
    #[arg(long, value_parser = parse_time, value_name = "TIME", allow_hyphen_values = true)]
    to: Option<i64>,

    /// Merge the stored bars into bars this long (e.g. 1m, 5m, 1h), aligned to the hour
    /// and day: first open, highest high, lowest low, last close, summed volume and trades,
    /// volume-weighted VWAP. A stored bar goes to the one its window starts in, so pick a
    /// multiple of the stored windows.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    resample: Option<Duration>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    output: Format,

    /// The longest connecting and the query may take.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "30s")]
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    /// Aligned columns, for people.
    Table,
    /// One bar per line, in the bars topic's JSON.
    Json,
    /// A header line, then one bar per line.
    Csv,
}

/// An RFC 3339 time, or a time ago (`-2h`), as Unix milliseconds.
fn parse_time(text: &str) -> Result<i64, String> {
    let s = text.trim();
    if let Some(ago) = s.strip_prefix('-') {
        let d = humantime::parse_duration(ago.trim()).map_err(|e| format!("`{s}`: {e}"))?;
        return Ok(now_millis() - i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2));
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
        format!("`{s}` is neither an RFC 3339 time (2026-11-30T09:30:00Z) nor a time ago (-2h)")
    })?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("`{s}` is out of range"))
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let pg = args.postgres.postgres(args.timeout)?;
    let resample = match args.resample {
        Some(d) if d.as_millis() == 0 => anyhow::bail!("--resample must be longer than 0"),
        Some(d) => Some(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        None => None,
    };
    let from = args
        .since
        .map(|d| now_millis() - i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2))
        .or(args.from);
    let query = Query {
        symbols: args
            .symbols
            .iter()
            .map(|s| s.as_str().to_string())
            .collect(),
        from,
        to: args.to,
        resample,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the PostgreSQL runtime")?;
    let rows = rt.block_on(async {
        let client = pg.connect().await?;
        let asked = async {
            if !schema::exists(&client).await? {
                anyhow::bail!(
                    "PostgreSQL at {} holds no stored bars (no table `bars`)\n  hint: `stockstream store` keeps them there",
                    pg.shown
                );
            }
            history::bars(&client, &query).await
        };
        tokio::time::timeout(args.timeout, asked).await.map_err(|_| {
            anyhow::anyhow!(
                "PostgreSQL at {} did not answer within {} (--timeout waits longer)",
                pg.shown,
                humantime::format_duration(args.timeout)
            )
        })?
    })?;
    if rows.is_empty() {
        tracing::info!(target: LOG, "No bars stored for {}", describe(&query));
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = match args.output {
        Format::Table => {
            if !rows.is_empty() {
                write!(out, "{}", table(&rows).render(global.terminal.stdout_color))
            } else {
                Ok(())
            }
        }
        Format::Json => rows.iter().try_for_each(|r| {
            out.write_all(&r.to_json())?;
            writeln!(out)
        }),
        Format::Csv => csv(&rows, &mut out),
    };
    written.and_then(|()| out.flush())?;
    if !rows.is_empty() {
        tracing::debug!(target: LOG, "{}", count(rows.len() as u64, "bar", "bars"));
    }
    Ok(())
}

fn describe(query: &Query) -> String {
    let symbols = if query.symbols.is_empty() {
        "any symbol".to_string()
    } else {
        query.symbols.join(", ")
    };
    let from = query.from.map_or("the start".to_string(), rfc3339);
    let to = query.to.map_or("now".to_string(), rfc3339);
    format!("{symbols} from {from} to {to}")
}

fn table(rows: &[Bar]) -> Table {
    let mut t = Table::new(vec![
        "SYMBOL",
        "WINDOW START",
        "WINDOW END",
        "OPEN",
        "HIGH",
        "LOW",
        "CLOSE",
        "VWAP",
        "VOLUME",
        "TRADES",
        "FINAL",
    ]);
    for r in rows {
        t.row(vec![
            r.symbol.as_str().to_string(),
            rfc3339(r.window_start),
            rfc3339(r.window_end),
            format!("{:.2}", r.open),
            format!("{:.2}", r.high),
            format!("{:.2}", r.low),
            format!("{:.2}", r.close),
            r.vwap.map_or("-".to_string(), |v| format!("{v:.4}")),
            r.volume.to_string(),
            r.trades.to_string(),
            if r.is_final { "yes" } else { "no" }.to_string(),
        ]);
    }
    t
}

fn csv(rows: &[Bar], out: &mut impl std::io::Write) -> std::io::Result<()> {
    writeln!(
        out,
        "symbol,window_start,window_end,open,high,low,close,volume,trades,vwap,avg_price,final"
    )?;
    for r in rows {
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            r.symbol.as_str(),
            rfc3339(r.window_start),
            rfc3339(r.window_end),
            r.open,
            r.high,
            r.low,
            r.close,
            r.volume,
            r.trades,
            r.vwap.map_or(String::new(), |v| v.to_string()),
            r.avg_price,
            r.is_final
        )?;
    }
    Ok(())
}
