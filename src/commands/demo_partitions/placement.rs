//! Steps 2 to 4 of the walk-through: keyed ticks go out, each key's partition is worked out
//! in advance with murmur2 and checked against the broker's delivery report, offsets grow
//! lane by lane, and each key's records keep the order they were sent in.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use super::show::Show;
use super::LOG;
use crate::commands::topic::DEFAULT_PARTITIONS;
use crate::kafka::{CreateClient as _, Kafka, Observer, ProducerProfile};
use crate::market::{unix_now, Market};
use crate::numbers::{count, thousands};
use crate::partitioner;
use crate::record::Symbol;
use crate::table::{share, Table};

/// The longest the delivery wait goes without looking for a stop.
const FLUSH_SLICE: Duration = Duration::from_millis(100);

/// How wide a lane may get before it wraps.
const LANE_WIDTH: usize = 78;

/// One record the demo wrote, and where the broker says it put it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub key: Symbol,
    pub payload: Vec<u8>,
    pub partition: i32,
    pub offset: i64,
}

/// Sends one tick per symbol per round, each keyed by its symbol.
pub struct Sender {
    producer: FutureProducer<Observer>,
    runtime: tokio::runtime::Runtime,
    /// One market per symbol, so that every round has one tick of each.
    markets: Vec<Market>,
    topic: String,
    timeout: Duration,
}

impl Sender {
    pub fn new(kafka: &Kafka, topic: &str, timeout: Duration) -> anyhow::Result<Self> {
        let producer = kafka
            .producer_config(ProducerProfile::Latency, timeout)
            .create_client(Observer::default())
            .context("creating the Kafka producer")?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .context("starting the async runtime")?;
        Ok(Sender {
            producer,
            runtime,
            markets: Symbol::ALL
                .iter()
                .map(|s| Market::new(&[*s], None))
                .collect(),
            topic: topic.to_string(),
            timeout,
        })
    }

    /// Sends `rounds` rounds and waits for every delivery report; the records come back in
    /// the order they were sent, each with its partition and offset.
    pub fn send(&mut self, rounds: u32) -> anyhow::Result<Vec<Sent>> {
        let mut pending = Vec::new();
        for _ in 0..rounds {
            for market in &mut self.markets {
                let tick = market
                    .next_tick(unix_now())
                    .validated()
                    .map_err(|e| anyhow!("the generator made an invalid tick: {e}"))?;
                let mut payload = Vec::with_capacity(96);
                tick.encode_into(&mut payload);
                let record = FutureRecord::to(&self.topic)
                    .key(tick.symbol.as_str())
                    .payload(&payload)
                    .timestamp((tick.timestamp * 1000.0).round() as i64);
                let delivery = self
                    .producer
                    .send_result(record)
                    .map_err(|(e, _)| anyhow!("could not queue a record: {e}"))?;
                pending.push((tick.symbol, payload, delivery));
            }
        }
        // Every report is in once the flush returns; awaiting them below does not wait. It
        // is done in slices, so that Ctrl+C or SIGTERM is heard meanwhile.
        let deadline = Instant::now() + self.timeout;
        while let Err(e) = self.producer.flush(FLUSH_SLICE) {
            crate::signals::unless_stopped()?;
            if Instant::now() >= deadline {
                return Err(anyhow!(
                    "the records were not delivered to `{}` within {}: {e}",
                    self.topic,
                    humantime::format_duration(self.timeout)
                ));
            }
        }
        pending
            .into_iter()
            .map(
                |(key, payload, delivery)| match self.runtime.block_on(delivery) {
                    Ok(Ok(d)) => Ok(Sent {
                        key,
                        payload,
                        partition: d.partition,
                        offset: d.offset,
                    }),
                    Ok(Err((e, _))) => Err(anyhow!("a {key} record was not delivered: {e}")),
                    Err(_) => Err(anyhow!("a {key} record got no delivery report")),
                },
            )
            .collect()
    }
}

/// Step 2: for each key, the arithmetic, the partition it gives, and the broker's answer.
/// Fails, after showing them all, when any key landed elsewhere than murmur2 says.
pub fn check_placement(show: &Show, sent: &[Sent], partitions: usize) -> anyhow::Result<()> {
    let mut table = Table::new(vec![
        "KEY",
        "MURMUR2(KEY)",
        "& 0x7fffffff",
        "% PARTITIONS",
        "BROKER SAYS",
        "CHECK",
    ]);
    let mut wrong = Vec::new();
    for s in sent {
        let place = partitioner::place(s.key.as_str().as_bytes(), partitions)
            .ok_or_else(|| anyhow!("the topic has no partitions"))?;
        let check = if place.partition == s.partition {
            "✅ match".to_string()
        } else {
            wrong.push(format!(
                "{} → murmur2 says partition {}, the broker put it in partition {}",
                s.key, place.partition, s.partition
            ));
            "❌ MISMATCH".to_string()
        };
        table.row(vec![
            s.key.to_string(),
            place.signed_hash().to_string(),
            place.positive.to_string(),
            place.partition.to_string(),
            s.partition.to_string(),
            check,
        ]);
    }
    show.table(table);
    if !wrong.is_empty() {
        bail!(
            "a key did not land where Kafka's murmur2 partitioner puts it:\n  {}\n  \
             hint: was `partitioner` changed with -X? The Java client and stockstream use murmur2",
            wrong.join("\n  ")
        );
    }
    tracing::info!(
        target: LOG,
        "✅ All {} landed in the partition murmur2 gave, as the broker's delivery reports confirm",
        count(sent.len() as u64, "key", "keys")
    );
    Ok(())
}

/// The records of each partition that got any, in offset order.
pub fn lanes(sent: &[Sent]) -> BTreeMap<i32, Vec<&Sent>> {
    let mut lanes: BTreeMap<i32, Vec<&Sent>> = BTreeMap::new();
    for s in sent {
        lanes.entry(s.partition).or_default().push(s);
    }
    for records in lanes.values_mut() {
        records.sort_by_key(|s| s.offset);
    }
    lanes
}

/// Step 3: each partition as a lane, its records in offset order.
pub fn show_lanes(show: &Show, sent: &[Sent], partitions: usize) {
    let mut lanes = lanes(sent);
    for p in (0..partitions).filter_map(|p| i32::try_from(p).ok()) {
        lanes.entry(p).or_default();
    }
    let label_width = format!("partition {}", partitions.saturating_sub(1)).len();
    for (partition, records) in lanes {
        let label = format!("{:<label_width$}", format!("partition {partition}"));
        let mut line = format!("{} │", show.strong(&label));
        let mut width = label_width + 2;
        if records.is_empty() {
            line.push_str(" (no key of this demo hashes here)");
        }
        for s in records {
            let cell = format!(" {}:{}", s.offset, s.key);
            if width + cell.len() > LANE_WIDTH {
                show.line(&line);
                line = format!("{:label_width$} │", "");
                width = label_width + 2;
            }
            width += cell.len();
            line.push_str(&format!(" {}:{}", s.offset, show.key_tight(s.key)));
        }
        show.line(&line);
    }
}

/// Partitions of `stock_prices` as `stockstream topic create` makes it.
const STOCK_PARTITIONS: usize = DEFAULT_PARTITIONS.unsigned_abs() as usize;

/// Step 3, continued: key skew. The key alone picks the lane, so a lane gets what its keys
/// bring, and with few distinct keys some lanes get several while others get none, for ever.
pub fn show_skew(show: &Show, sent: &[Sent], partitions: usize) {
    let by_partition = partitioner::symbols_by_partition(partitions);
    let lanes = lanes(sent);
    let total = i64::try_from(sent.len()).unwrap_or(i64::MAX);
    let mut table = Table::new(vec!["PARTITION", "KEYS", "RECORDS", "SHARE"]);
    for (partition, keys) in by_partition.iter().enumerate() {
        let records = i32::try_from(partition)
            .ok()
            .and_then(|p| lanes.get(&p))
            .map_or(0, Vec::len);
        let names: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        table.row(vec![
            partition.to_string(),
            if names.is_empty() {
                "-".to_string()
            } else {
                names.join(" ")
            },
            thousands(records as u64),
            share(i64::try_from(records).unwrap_or(0), total),
        ]);
    }
    show.say(&format!(
        "Key skew: nothing balances the lanes. A lane gets the records of the keys that hash to\n\
         it. {} over {}: {}.",
        count(Symbol::ALL.len() as u64, "key", "keys"),
        count(partitions as u64, "partition", "partitions"),
        spread(&by_partition)
    ));
    show.table(table);
    if partitions != STOCK_PARTITIONS {
        show.say(&format!(
            "`stock_prices`, as `stockstream topic create` makes it, has {STOCK_PARTITIONS} partitions:\n{}.",
            spread(&partitioner::symbols_by_partition(STOCK_PARTITIONS))
        ));
    }
    show.say(
        "A lane without keys stays empty, and a consumer that owns only such lanes idles: more\n\
         partitions than distinct keys add no parallelism, and a busy key makes a busy lane.\n\
         Keys with many distinct values spread the load; `stockstream topic describe` shows\n\
         each partition's share of the records.",
    );
}

/// How the keys spread, busiest partition first: "4 keys on partition 1, 2 on partition 2,
/// 1 on partition 4;\nnone on partitions 0 and 3, which stay empty for ever" (the empty ones
/// on a line of their own).
fn spread(by_partition: &[Vec<Symbol>]) -> String {
    let mut busy: Vec<(usize, usize)> = by_partition
        .iter()
        .enumerate()
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(p, keys)| (keys.len(), p))
        .collect();
    busy.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let parts: Vec<String> = busy
        .iter()
        .enumerate()
        .map(|(i, (keys, p))| {
            let noun = match (i, keys) {
                (0, 1) => " key",
                (0, _) => " keys",
                _ => "",
            };
            format!("{keys}{noun} on partition {p}")
        })
        .collect();
    let empty: Vec<String> = by_partition
        .iter()
        .enumerate()
        .filter(|(_, keys)| keys.is_empty())
        .map(|(p, _)| p.to_string())
        .collect();
    let mut text = parts.join(", ");
    match empty.as_slice() {
        [] => {}
        [one] => text.push_str(&format!(
            ";\nnone on partition {one}, which stays empty for ever"
        )),
        [rest @ .., last] => text.push_str(&format!(
            ";\nnone on partitions {} and {last}, which stay empty for ever",
            rest.join(", ")
        )),
    }
    text
}

/// Step 4: each key's records, in the order sent: one partition, rising offsets. Fails when
/// a key is split over partitions or its offsets do not rise, which Kafka never does.
pub fn check_order(show: &Show, sent: &[Sent]) -> anyhow::Result<()> {
    for key in Symbol::ALL {
        let mine: Vec<&Sent> = sent.iter().filter(|s| s.key == key).collect();
        let Some(first) = mine.first() else {
            continue;
        };
        let one_partition = mine.iter().all(|s| s.partition == first.partition);
        let rising = mine.windows(2).all(|w| w[0].offset < w[1].offset);
        let kept = one_partition && rising;
        let offsets: Vec<String> = mine.iter().map(|s| s.offset.to_string()).collect();
        show.line(&format!(
            "{} → partition {} at offset{} {}  {}",
            show.key(key),
            first.partition,
            if offsets.len() == 1 { "" } else { "s" },
            offsets.join(" < "),
            if kept {
                show.good("✅ in the order sent")
            } else {
                "❌ NOT in the order sent".to_string()
            }
        ));
        if !kept {
            bail!(
                "{key}'s records were not kept in one partition in the order sent: {:?}",
                mine.iter()
                    .map(|s| (s.partition, s.offset))
                    .collect::<Vec<_>>()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partitioner::symbols_by_partition;

    #[test]
    fn the_spread_names_the_busiest_lanes_first_and_the_empty_ones() {
        assert_eq!(
            spread(&symbols_by_partition(5)),
            "4 keys on partition 1, 2 on partition 2, 1 on partition 4;\n\
             none on partitions 0 and 3, which stay empty for ever"
        );
        assert_eq!(
            spread(&symbols_by_partition(3)),
            "3 keys on partition 0, 2 on partition 1, 2 on partition 2"
        );
        assert_eq!(spread(&symbols_by_partition(1)), "7 keys on partition 0");
        let one_empty = [vec![Symbol::AAPL], vec![]];
        assert_eq!(
            spread(&one_empty),
            "1 key on partition 0;\nnone on partition 1, which stays empty for ever"
        );
    }
}
