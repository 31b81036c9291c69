//! Plain rdkafka clients for test set-up and for reading back what stockstream wrote.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};

use super::broker;

/// One record as read back from the broker.
#[derive(Debug, Clone)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, String)>,
    /// The record's Kafka timestamp, Unix ms (`None`: it has none).
    pub timestamp: Option<i64>,
}

fn to_read(m: &rdkafka::message::BorrowedMessage<'_>) -> Read {
    use rdkafka::message::Headers as _;
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Read {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().unwrap_or_default().to_vec(),
        headers,
        timestamp: m.timestamp().to_millis(),
    }
}

fn config() -> ClientConfig {
    config_on(&broker().bootstrap)
}

fn config_on(bootstrap: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap);
    cfg
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(f)
}

pub fn create_topic(name: &str, partitions: i32) {
    create_topic_on(&broker().bootstrap, name, partitions);
}

pub fn create_topic_on(bootstrap: &str, name: &str, partitions: i32) {
    create_topic_with_on(bootstrap, name, partitions, &[]);
}

/// Creates a topic with topic-level settings, e.g. `("max.message.bytes", "100000")`.
pub fn create_topic_with_on(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let admin: AdminClient<DefaultClientContext> =
        config_on(bootstrap).create().expect("admin client");
    let topic = configs.iter().fold(
        NewTopic::new(name, partitions, TopicReplication::Fixed(1)),
        |topic, (key, value)| topic.set(key, value),
    );
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = block_on(admin.create_topics([&topic], &opts)).expect("create_topics");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating test topic {t}: {e}"));
    }
    wait_for_topic(bootstrap, name, partitions);
}

fn wait_for_topic(bootstrap: &str, name: &str, partitions: i32) {
    let consumer: BaseConsumer = config_on(bootstrap).create().expect("consumer");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(md) = consumer.fetch_metadata(Some(name), Duration::from_secs(5)) {
            if md.topics().first().is_some_and(|t| {
                t.error().is_none() && t.partitions().len() == usize::try_from(partitions).unwrap()
            }) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("topic {name} did not appear");
}

/// Every record in `topic`, from the beginning to the high watermarks seen at the call.
pub fn read_all(topic: &str) -> Vec<Read> {
    read_all_on(&broker().bootstrap, topic)
}

pub fn read_all_on(bootstrap: &str, topic: &str) -> Vec<Read> {
    let consumer: BaseConsumer = config_on(bootstrap)
        .set("group.id", "stockstream-tests-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut ends = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        let (_, high) = consumer
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .expect("watermarks");
        if high > 0 {
            ends.insert(p.id(), high);
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .unwrap();
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return out;
    }
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut next: HashMap<i32, i64> = HashMap::new();
    while ends
        .iter()
        .any(|(p, end)| next.get(p).copied().unwrap_or(0) < *end)
    {
        assert!(Instant::now() < deadline, "reading {topic} back timed out");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                next.insert(m.partition(), m.offset() + 1);
                out.push(to_read(&m));
            }
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out
}

/// The sum of `topic`'s high watermarks on `bootstrap`: how many records it holds (no
/// transactions write to the topics this is used on).
///
/// Right after a broker restarted, a partition may have no leader for a moment
/// (NotLeaderForPartition): asked again until it answers, for at most a minute.
pub fn end_offsets_on(bootstrap: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = config_on(bootstrap).create().expect("consumer");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ends = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .and_then(|md| {
                md.topics()[0]
                    .partitions()
                    .iter()
                    .map(|p| {
                        consumer
                            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                            .map(|(_, high)| high)
                    })
                    .sum::<Result<i64, _>>()
            });
        match ends {
            Ok(total) => return total,
            Err(e) if Instant::now() < deadline => {
                eprintln!("end offsets of {topic}: {e}; asking again");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("end offsets of {topic}: {e}"),
        }
    }
}

/// One raw record for `produce_raw`: its partition, key and value.
pub struct Raw {
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Writes raw records to chosen partitions, in order, and waits for every acknowledgement.
pub fn produce_raw(topic: &str, records: &[Raw]) {
    produce_raw_on(&broker().bootstrap, topic, records);
}

pub fn produce_raw_on(bootstrap: &str, topic: &str, records: &[Raw]) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
    let producer: BaseProducer = config_on(bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    for raw in records {
        let mut r: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).partition(raw.partition);
        if let Some(k) = &raw.key {
            r = r.key(k.as_slice());
        }
        if let Some(v) = &raw.value {
            r = r.payload(v.as_slice());
        }
        producer
            .send(r)
            .map_err(|(e, _)| e)
            .expect("queueing a test record");
        producer.poll(Duration::ZERO);
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("flushing test records");
}

/// Reads `topic` as a read_committed consumer until `want` records have arrived, then goes
/// on for `linger` to catch any extra (duplicate) record. Fails after `limit`.
pub fn read_committed(topic: &str, want: usize, limit: Duration, linger: Duration) -> Vec<Read> {
    read_committed_on(&broker().bootstrap, topic, want, limit, linger)
}

/// A read_committed consumer of a group of its own, subscribed to `topic` from its start.
pub fn subscriber(topic: &str) -> BaseConsumer {
    subscriber_on(&broker().bootstrap, topic)
}

pub fn subscriber_on(bootstrap: &str, topic: &str) -> BaseConsumer {
    let consumer: BaseConsumer = config_on(bootstrap)
        .set("group.id", super::unique("stockstream-tests-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

pub fn read_committed_on(
    bootstrap: &str,
    topic: &str,
    want: usize,
    limit: Duration,
    linger: Duration,
) -> Vec<Read> {
    let (out, complete) = read_committed_within(bootstrap, topic, want, limit, linger);
    assert!(
        complete,
        "read {} of {want} records from {topic} within {limit:?}:\n{}",
        out.len(),
        out.iter()
            .map(|r: &Read| String::from_utf8_lossy(&r.payload).into_owned())
            .collect::<Vec<_>>()
            .join("\n")
    );
    out
}

/// `read_committed_on`, but what arrived within `limit` is returned rather than failed
/// on, with whether `want` records arrived, so the caller can say which are missing.
pub fn read_committed_within(
    bootstrap: &str,
    topic: &str,
    want: usize,
    limit: Duration,
    linger: Duration,
) -> (Vec<Read>, bool) {
    let consumer = subscriber_on(bootstrap, topic);
    let deadline = Instant::now() + limit;
    let mut out = Vec::new();
    let mut linger_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if linger_until.is_some_and(|t| now >= t) {
            return (out, true);
        }
        if now >= deadline {
            return (out, false);
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(to_read(&m)),
            // The topic may not exist yet: whoever writes it creates it.
            Some(Err(rdkafka::error::KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
            ))) => {}
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
        if out.len() >= want && linger_until.is_none() {
            linger_until = Some(Instant::now() + linger);
        }
    }
}

/// Kafka's own key placement (the Java client's and kafka-python's): murmur2 of the key,
/// made positive, modulo the partition count. Written here from the algorithm, not taken
/// from stockstream, so the test checks the placement independently.
pub fn murmur2_partition(key: &[u8], partitions: u32) -> i32 {
    i32::try_from((murmur2(key) & 0x7fff_ffff) % partitions).unwrap()
}

fn murmur2(key: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = key.len();
    let mut h: u32 = SEED ^ u32::try_from(len).unwrap();
    let chunks = key.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[test]
fn murmur2_matches_kafkas_reference_values() {
    // The cases of Kafka's own UtilsTest.testMurmur2.
    let cases: [(&[u8], i32); 6] = [
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        (b"abc", 479_470_107),
    ];
    for (key, expected) in cases {
        assert_eq!(
            murmur2(key).cast_signed(),
            expected,
            "{}",
            String::from_utf8_lossy(key)
        );
    }
}

/// Commits an offset for a throw-away group, which makes the broker create
/// `__consumer_offsets` if it does not exist yet.
pub fn commit_something(topic: &str) -> rdkafka::error::KafkaResult<()> {
    let consumer: BaseConsumer = config()
        .set("group.id", format!("stockstream-tests-{topic}"))
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(0))?;
    consumer.commit(&tpl, rdkafka::consumer::CommitMode::Sync)
}

/// Dead letters counted by their `stockstream.error.reason` header.
#[track_caller]
pub fn dead_letters_by_reason(dead_letters: &[Read]) -> BTreeMap<String, u64> {
    let mut held = BTreeMap::new();
    for record in dead_letters {
        let reason = record
            .headers
            .iter()
            .find(|(k, _)| k == "stockstream.error.reason")
            .map(|(_, v)| v.clone())
            .expect("a dead letter names its reason");
        *held.entry(reason).or_default() += 1;
    }
    held
}
