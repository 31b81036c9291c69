//! The questions `history` asks of the bars table: bars of some symbols over a time range,
//! as stored or merged into coarser bars in SQL.

use tokio_postgres::Client;

use super::db::PgResult as _;
use crate::aggregate::Bar;
use crate::record::Symbol;

/// What to read. Times are Unix milliseconds; a bar is in range when its window starts in
/// `[from, to)`.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Empty: every symbol.
    pub symbols: Vec<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Merge into bars of this many milliseconds, aligned to the Unix epoch: a stored bar
    /// goes to the one its window starts in.
    pub resample: Option<i64>,
}

const STORED: &str = "
    SELECT symbol,
           (extract(epoch FROM window_start) * 1000)::int8,
           (extract(epoch FROM window_end) * 1000)::int8,
           open, high, low, close, volume, trades, vwap, avg_price, final
    FROM bars
    WHERE (cardinality($1::text[]) = 0 OR symbol = ANY($1::text[]))
      AND ($2::int8 IS NULL OR window_start >= timestamptz 'epoch' + $2::int8 * interval '1 millisecond')
      AND ($3::int8 IS NULL OR window_start < timestamptz 'epoch' + $3::int8 * interval '1 millisecond')
    ORDER BY window_start, symbol, window_end";

/// Open: the first bar's; close: the last's; high and low: the extremes; volume and trades
/// summed; VWAP weighted by volume, the average price by trades (both to 4 decimals, as
/// `aggregate` rounds them).
const RESAMPLED: &str = "
    WITH picked AS (
        SELECT *, floor((extract(epoch FROM window_start) * 1000) / $4::int8)::int8 * $4::int8 AS bucket
        FROM bars
        WHERE (cardinality($1::text[]) = 0 OR symbol = ANY($1::text[]))
          AND ($2::int8 IS NULL OR window_start >= timestamptz 'epoch' + $2::int8 * interval '1 millisecond')
          AND ($3::int8 IS NULL OR window_start < timestamptz 'epoch' + $3::int8 * interval '1 millisecond')
    )
    SELECT symbol, bucket, bucket + $4::int8,
           (array_agg(open ORDER BY window_start, window_end))[1],
           max(high), min(low),
           (array_agg(close ORDER BY window_start DESC, window_end DESC))[1],
           sum(volume)::int8, sum(trades)::int8,
           round((sum(vwap * volume) / nullif(sum(volume) FILTER (WHERE vwap IS NOT NULL), 0))::numeric, 4)::float8,
           round((sum(avg_price * trades) / nullif(sum(trades), 0))::numeric, 4)::float8,
           bool_and(final)
    FROM picked
    GROUP BY symbol, bucket
    ORDER BY bucket, symbol";

/// The newest `per_symbol` stored bars of every symbol, oldest first.
const LATEST: &str = "
    SELECT symbol,
           (extract(epoch FROM window_start) * 1000)::int8,
           (extract(epoch FROM window_end) * 1000)::int8,
           open, high, low, close, volume, trades, vwap, avg_price, final
    FROM (
        SELECT *, row_number() OVER (PARTITION BY symbol ORDER BY window_start DESC, window_end DESC) AS n
        FROM bars
    ) newest
    WHERE n <= $1
    ORDER BY window_start, symbol";

/// The bars asked for, oldest first (a merged bar is final when every bar in it is).
pub async fn bars(client: &Client, query: &Query) -> anyhow::Result<Vec<Bar>> {
    let symbols = &query.symbols;
    let rows = match query.resample {
        None => client
            .query(STORED, &[symbols, &query.from, &query.to])
            .await
            .pg()?,
        Some(ms) => client
            .query(RESAMPLED, &[symbols, &query.from, &query.to, &ms])
            .await
            .pg()?,
    };
    Ok(rows.iter().filter_map(bar).collect())
}

pub async fn latest(client: &Client, per_symbol: i64) -> anyhow::Result<Vec<Bar>> {
    let rows = client.query(LATEST, &[&per_symbol]).await.pg()?;
    Ok(rows.iter().filter_map(bar).collect())
}

/// A row as a bar; `None` for a symbol stockstream does not know (a row not `store`'s).
fn bar(r: &tokio_postgres::Row) -> Option<Bar> {
    Some(Bar {
        symbol: Symbol::from_wire(r.get(0))?,
        window_start: r.get(1),
        window_end: r.get(2),
        open: r.get(3),
        high: r.get(4),
        low: r.get(5),
        close: r.get(6),
        // `store` writes only what fits both.
        volume: u64::try_from(r.get::<_, i64>(7)).ok()?,
        trades: u64::try_from(r.get::<_, i64>(8)).ok()?,
        vwap: r.get(9),
        avg_price: r.get::<_, Option<f64>>(10).unwrap_or(0.0),
        is_final: r.get(11),
    })
}
