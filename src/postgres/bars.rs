//! Bars into PostgreSQL exactly once: a batch of bars and the offsets they were read up to
//! are written in one transaction, after checking under a row lock that the offsets are
//! still where this writer last left them (another writer that took the partitions over,
//! or a commit whose answer was lost, moved them).

use std::collections::{BTreeMap, HashMap};

use tokio_postgres::GenericClient;

use super::db::PgResult as _;
use crate::aggregate::Bar;
use crate::record::Symbol;

/// Per partition, the next offset to read as the database has it (`None`: from the start).
pub type Offsets = BTreeMap<i32, Option<i64>>;

/// Bars waiting to be written, one per (symbol, window): a later revision replaces an
/// earlier one, and a final bar is kept over anything after it.
#[derive(Default, Clone)]
pub struct Batch {
    bars: HashMap<(Symbol, i64, i64), Bar>,
}

impl Batch {
    pub fn add(&mut self, bar: Bar) {
        let key = (bar.symbol, bar.window_start, bar.window_end);
        match self.bars.get(&key) {
            Some(kept) if kept.is_final => {}
            _ => {
                self.bars.insert(key, bar);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.bars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bars.is_empty()
    }

    pub fn clear(&mut self) {
        self.bars.clear();
    }

    pub fn finals(&self) -> usize {
        self.bars.values().filter(|b| b.is_final).count()
    }
}

/// Makes sure each partition has a row, and reads where each is.
pub async fn claim(
    client: &impl GenericClient,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<Offsets> {
    client
        .execute(
            "INSERT INTO store_offsets (consumer_group, topic, partition)
             SELECT $1, $2, p FROM unnest($3::int4[]) AS p
             ON CONFLICT DO NOTHING",
            &[&group, &topic, &partitions],
        )
        .await
        .pg()?;
    read(client, group, topic, partitions, false).await
}

async fn read(
    client: &impl GenericClient,
    group: &str,
    topic: &str,
    partitions: &[i32],
    lock: bool,
) -> anyhow::Result<Offsets> {
    let sql = format!(
        "SELECT partition, next_offset FROM store_offsets
         WHERE consumer_group = $1 AND topic = $2 AND partition = ANY($3::int4[])
         ORDER BY partition{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let rows = client
        .query(&sql, &[&group, &topic, &partitions])
        .await
        .pg()?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, i32>(0), r.get::<_, Option<i64>>(1)))
        .collect())
}

/// How a write ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// The bars and the new offsets are in.
    Committed,
    /// The offsets were already the new ones: an earlier attempt committed (its answer was
    /// lost). Nothing was written.
    AlreadyThere,
    /// The offsets are neither where this writer left them nor the new ones: another writer
    /// moved them. Nothing was written; reading must go on from these.
    Moved(Offsets),
}

/// Writes `batch` and moves the offsets of the partitions in `to` from `from` to `to`,
/// in one transaction.
pub async fn write(
    client: &mut tokio_postgres::Client,
    group: &str,
    topic: &str,
    from: &Offsets,
    to: &BTreeMap<i32, i64>,
    batch: &Batch,
) -> anyhow::Result<Written> {
    let partitions: Vec<i32> = to.keys().copied().collect();
    let tx = client.transaction().await.pg()?;
    let found = read(&tx, group, topic, &partitions, true).await?;
    let expected: Offsets = partitions
        .iter()
        .map(|p| (*p, from.get(p).copied().flatten()))
        .collect();
    if found != expected {
        let already: Offsets = to.iter().map(|(p, o)| (*p, Some(*o))).collect();
        tx.rollback().await.pg()?;
        return Ok(if found == already {
            Written::AlreadyThere
        } else {
            Written::Moved(found)
        });
    }
    if !batch.is_empty() {
        upsert(&tx, batch).await?;
    }
    let offsets: Vec<i64> = to.values().copied().collect();
    tx.execute(
        "UPDATE store_offsets SET next_offset = u.next_offset, updated_at = now()
         FROM unnest($3::int4[], $4::int8[]) AS u(partition, next_offset)
         WHERE store_offsets.consumer_group = $1 AND store_offsets.topic = $2
           AND store_offsets.partition = u.partition",
        &[&group, &topic, &partitions, &offsets],
    )
    .await
    .pg()?;
    tx.commit().await.pg()?;
    Ok(Written::Committed)
}

/// One statement for the whole batch: the columns as arrays, unnested into rows, sorted by
/// the primary key. A final bar in the table is never replaced.
async fn upsert(client: &impl GenericClient, batch: &Batch) -> anyhow::Result<()> {
    let n = batch.len();
    let mut symbol = Vec::with_capacity(n);
    let mut start = Vec::with_capacity(n);
    let mut end = Vec::with_capacity(n);
    let (mut open, mut high, mut low, mut close) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut volume, mut trades) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut vwap, mut avg, mut fin) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    // In the primary key's order: the index is walked forward instead of at random.
    let mut rows: Vec<&Bar> = batch.bars.values().collect();
    rows.sort_unstable_by_key(|b| (b.symbol.as_str(), b.window_start, b.window_end));
    for b in rows {
        symbol.push(b.symbol.as_str());
        start.push(b.window_start);
        end.push(b.window_end);
        open.push(b.open);
        high.push(b.high);
        low.push(b.low);
        close.push(b.close);
        // Checked when the bar was read: it fits.
        volume.push(i64::try_from(b.volume).unwrap_or(i64::MAX));
        trades.push(i64::try_from(b.trades).unwrap_or(i64::MAX));
        vwap.push(b.vwap);
        avg.push(b.avg_price);
        fin.push(b.is_final);
    }
    client
        .execute(
            "INSERT INTO bars (symbol, window_start, window_end, open, high, low, close,
                               volume, trades, vwap, avg_price, final, stored_at)
             SELECT s, timestamptz 'epoch' + ws * interval '1 millisecond',
                    timestamptz 'epoch' + we * interval '1 millisecond',
                    o, h, l, c, v, t, vw, ap, f, now()
             FROM unnest($1::text[], $2::int8[], $3::int8[], $4::float8[], $5::float8[],
                         $6::float8[], $7::float8[], $8::int8[], $9::int8[], $10::float8[],
                         $11::float8[], $12::bool[])
                  AS u(s, ws, we, o, h, l, c, v, t, vw, ap, f)
             ON CONFLICT (symbol, window_start, window_end) DO UPDATE SET
                 open = excluded.open, high = excluded.high, low = excluded.low,
                 close = excluded.close, volume = excluded.volume, trades = excluded.trades,
                 vwap = excluded.vwap, avg_price = excluded.avg_price, final = excluded.final,
                 stored_at = excluded.stored_at
             WHERE NOT bars.final",
            &[
                &symbol, &start, &end, &open, &high, &low, &close, &volume, &trades, &vwap, &avg,
                &fin,
            ],
        )
        .await
        .pg()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(close: f64, is_final: bool) -> Bar {
        Bar {
            symbol: Symbol::AAPL,
            window_start: 0,
            window_end: 10_000,
            open: 1.0,
            high: 2.0,
            low: 0.5,
            close,
            volume: 10,
            trades: 2,
            vwap: Some(1.5),
            avg_price: 1.5,
            is_final,
        }
    }

    #[test]
    fn a_later_revision_replaces_and_a_final_bar_stays() {
        let mut batch = Batch::default();
        batch.add(bar(1.0, false));
        batch.add(bar(1.1, false));
        assert_eq!(batch.len(), 1);
        assert_eq!(batch.bars.values().next().unwrap().close, 1.1);
        batch.add(bar(1.2, true));
        batch.add(bar(1.3, false));
        let kept = batch.bars.values().next().unwrap();
        assert!(kept.is_final);
        assert_eq!(kept.close, 1.2);
        assert_eq!(batch.finals(), 1);
    }
}
