//! Step 5 of the walk-through: offsets are bookmarks. A consumer goes back to an offset of
//! its choosing and reads the same records again, byte for byte: reading removes nothing.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::bail;
use rdkafka::message::Message as _;
use rdkafka::Offset;

use super::placement::{self, Sent};
use super::read::{self, Consumer, Stretch};
use super::show::Show;
use super::LOG;
use crate::numbers::count;
use crate::record;
use crate::table::Table;

/// One record as read back.
struct Replayed {
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

/// Re-reads the second half of what the demo wrote to its busiest partition and checks that
/// every record the demo wrote comes back unchanged at its offset.
pub fn replay(
    show: &Show,
    consumer: &Consumer,
    topic: &str,
    sent: &[Sent],
    timeout: Duration,
) -> anyhow::Result<()> {
    let Some((partition, mine)) = busiest(sent) else {
        return Ok(());
    };
    let from = mine[mine.len() / 2].offset;
    let until = mine[mine.len() - 1].offset + 1;
    show.say(&format!(
        "The consumer seeks to offset {from} of partition {partition} and reads to the end again:"
    ));
    let stretch = Stretch {
        from: Offset::Offset(from),
        until,
    };
    let mut replayed = Vec::new();
    read::read(
        consumer,
        topic,
        &BTreeMap::from([(partition, stretch)]),
        timeout,
        |m| {
            replayed.push(Replayed {
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                payload: m.payload().unwrap_or_default().to_vec(),
            });
        },
    )?;

    let by_offset: HashMap<i64, &Sent> = mine.iter().map(|s| (s.offset, *s)).collect();
    let mut table = Table::new(vec!["OFFSET", "KEY", "PRICE", "VOLUME", "CHECK"]);
    let mut same = 0;
    for r in &replayed {
        let key = r
            .key
            .as_deref()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        let (price, volume) = match record::decode(&r.payload) {
            Ok(tick) => (format!("${:.2}", tick.price), tick.volume.to_string()),
            Err(_) => ("?".to_string(), "?".to_string()),
        };
        let check = match by_offset.get(&r.offset) {
            Some(s)
                if s.key.as_str().as_bytes() == r.key.as_deref().unwrap_or_default()
                    && s.payload == r.payload =>
            {
                same += 1;
                "✅ same as sent"
            }
            Some(_) => "❌ DIFFERS from what was sent",
            // A reused topic may have other writers between the demo's records.
            None => "(not written by this demo)",
        };
        table.row(vec![
            r.offset.to_string(),
            key.into_owned(),
            price,
            volume,
            check.to_string(),
        ]);
    }
    show.table(table);
    let expected = mine.iter().filter(|s| s.offset >= from).count();
    if same != expected {
        bail!(
            "replaying partition {partition} from offset {from} gave back {same} of the demo's \
             {} unchanged",
            count(expected as u64, "record", "records")
        );
    }
    tracing::info!(
        target: LOG,
        "✅ Replayed {} from offset {from} of partition {partition}: the same bytes at the same offsets",
        count(same as u64, "record", "records")
    );
    Ok(())
}

/// The partition that got the most of the demo's records (the lowest on a tie), and those
/// records in offset order.
fn busiest(sent: &[Sent]) -> Option<(i32, Vec<&Sent>)> {
    let mut best: Option<(i32, Vec<&Sent>)> = None;
    for (partition, records) in placement::lanes(sent) {
        if best.as_ref().is_none_or(|(_, b)| records.len() > b.len()) {
            best = Some((partition, records));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Symbol;

    fn sent(key: Symbol, partition: i32, offset: i64) -> Sent {
        Sent {
            key,
            payload: Vec::new(),
            partition,
            offset,
        }
    }

    #[test]
    fn the_busiest_lane_wins_and_the_lowest_on_a_tie() {
        let records = [
            sent(Symbol::AAPL, 1, 0),
            sent(Symbol::TSLA, 2, 5),
            sent(Symbol::AMZN, 2, 4),
            sent(Symbol::MSFT, 0, 0),
        ];
        let (p, lane) = busiest(&records).unwrap();
        assert_eq!(p, 2);
        assert_eq!(lane.iter().map(|s| s.offset).collect::<Vec<_>>(), [4, 5]);
        let (p, _) = busiest(&records[..1]).unwrap();
        assert_eq!(p, 1);
        let tie = [sent(Symbol::AAPL, 1, 0), sent(Symbol::MSFT, 0, 0)];
        assert_eq!(busiest(&tie).unwrap().0, 0);
        assert!(busiest(&[]).is_none());
    }
}
