//! Exactly-once `aggregate` under faults: killed and restarted, one of two instances killed,
//! the broker restarted, an instance frozen until it is fenced. Each time a read_committed
//! consumer of the output must hold exactly the bars an independent computation over the
//! input log expects, each once, and the dead-letter topic each bad and late record once.

use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::broker::Dedicated;
use crate::support::kafka::{create_topic_on, read_committed_on};
use crate::support::model::{assert_bars_match, assert_dead_letters, expected, log_on};
use crate::support::{broker, stockstream, unique, Run, Running};

/// Window and lateness of every run here (2s windows, 1s lateness).
pub(crate) const RULES: [&str; 4] = ["--window", "2s", "--watermark", "1s"];

/// The idle timeout of every run here, but those with a broker outage.
const IDLE: &str = "2s";

/// A small deterministic generator for the chaos moments; the seed is printed so a failure
/// can be replayed.
struct Chaos(u64);

impl Chaos {
    fn new() -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        eprintln!("chaos seed: {seed}");
        Chaos(seed | 1)
    }

    /// A pause of `min..max` seconds.
    fn pause(&mut self, min: u64, max: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(min * 1000 + self.0 % ((max - min) * 1000))
    }
}

/// Writes ticks steadily for `seconds` (stockstream produce), plus every second a record
/// that is not JSON and one far behind the watermark, into each partition in turn.
fn feed(bootstrap: &str, topic: &str, seconds: u64) -> JoinHandle<Run> {
    feed_with(bootstrap, topic, seconds, &[])
}

/// `feed`, with global flags (`-X …`) for its producer.
fn feed_with(bootstrap: &str, topic: &str, seconds: u64, flags: &[&str]) -> JoinHandle<Run> {
    let flags: Vec<String> = flags.iter().map(|f| (*f).to_string()).collect();
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    let injector = {
        let (bootstrap, topic) = (bootstrap.clone(), topic.clone());
        let mut each = 0..seconds;
        std::thread::spawn(move || inject(&bootstrap, &topic, move || each.next().is_some()))
    };
    std::thread::spawn(move || {
        let mut cmd = stockstream();
        cmd.args(&flags)
            .args([
                "-b", &bootstrap, "produce", "--topic", &topic, "--rate", "150",
            ])
            // A broker restarted under the feed may take up to ~2 minutes to come back
            // on a busy machine (see `Dedicated::resume`): the feed's records wait for it
            // that long, in flight and at the end (one run with the default 30 s flush
            // gave up on them while the broker was still starting).
            .args([
                "--duration",
                &format!("{seconds}s"),
                "--delivery-timeout",
                "2m",
                "--flush-timeout",
                "2m",
            ]);
        let run = crate::support::run_for(cmd, Duration::from_secs(seconds + 180));
        injector.join().expect("the injector thread");
        run
    })
}

/// Every second while `more()` says so, one record that is not JSON and one far behind the
/// watermark, into each partition in turn. One producer for the whole feed, which waits
/// out a broker outage (it keeps the records until the broker is back), as `produce` does.
pub(crate) fn inject(bootstrap: &str, topic: &str, mut more: impl FnMut() -> bool) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
    let producer: BaseProducer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "150000")
        .set("reconnect.backoff.max.ms", "1000")
        .create()
        .expect("the injector's producer");
    let mut i = 0u64;
    while more() {
        std::thread::sleep(Duration::from_secs(1));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let partition = i32::try_from(i % 3).unwrap();
        let late = format!(
            r#"{{"symbol":"AAPL","price":1.5,"volume":1,"timestamp":{}}}"#,
            now - 120.0
        );
        for value in [&b"not json at all"[..], late.as_bytes()] {
            let record = BaseRecord::<[u8], [u8]>::to(topic)
                .partition(partition)
                .key(&b"AAPL"[..])
                .payload(value);
            producer
                .send(record)
                .map_err(|(e, _)| e)
                .expect("queueing an injected record");
        }
        producer.poll(Duration::ZERO);
        i += 1;
    }
    producer
        .flush(Duration::from_secs(180))
        .expect("every injected record delivered");
}

fn aggregate(bootstrap: &str, topic: &str, group: &str, instance: &str) -> Running {
    aggregate_idle(bootstrap, topic, group, instance, IDLE)
}

pub(crate) fn aggregate_idle(
    bootstrap: &str,
    topic: &str,
    group: &str,
    instance: &str,
    idle: &str,
) -> Running {
    let mut cmd = stockstream();
    cmd.args([
        "-v",
        "-b",
        bootstrap,
        "aggregate",
        "--topic",
        topic,
        "--group",
        group,
    ])
    .args([
        "--output-topic",
        &format!("{topic}.bars"),
        "--from",
        "earliest",
    ])
    .args(["--instance-id", instance, "--progress-interval", "2s"])
    .args(RULES)
    .args(["--idle-timeout", idle]);
    Running::spawn(cmd)
}

/// Waits for the feed to end and the last windows to close, then checks the output.
#[track_caller]
fn check(bootstrap: &str, topic: &str, feed: JoinHandle<Run>) {
    let produced = feed.join().expect("the feeding thread");
    produced.assert_code(0);
    let log = log_on(bootstrap, topic);
    let (bars, dead) = expected(&log, 2_000, 2_000, 1_000);
    assert!(
        bars.len() > 20 && dead.len() > 10,
        "a real load: {} bars, {} dead letters",
        bars.len(),
        dead.len()
    );
    let out = read_committed_on(
        bootstrap,
        &format!("{topic}.bars"),
        bars.len(),
        Duration::from_secs(120),
        Duration::from_secs(5),
    );
    assert_bars_match(&out, &bars, 2_000);
    assert_eq!(out.len(), bars.len(), "no bar more than once");
    let dlq = read_committed_on(
        bootstrap,
        &format!("{topic}.dlq"),
        dead.len(),
        Duration::from_secs(60),
        Duration::from_secs(2),
    );
    assert_dead_letters(&dlq, &dead, topic, &log);
}

/// Runs `check`; if it fails, shows what the aggregate jobs said before failing the test.
#[track_caller]
pub(crate) fn check_or_explain(
    bootstrap: &str,
    topic: &str,
    feed: JoinHandle<Run>,
    jobs: Vec<Running>,
) -> Vec<Running> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check(bootstrap, topic, feed)
    }));
    if let Err(panic) = outcome {
        for job in jobs {
            eprintln!(
                "--- where aggregate is\n{}",
                crate::support::stacks(job.pid())
            );
            let run = job.signal_and_wait(libc::SIGKILL, Duration::from_secs(30));
            eprintln!("--- aggregate stderr\n{}", run.stderr);
        }
        std::panic::resume_unwind(panic);
    }
    jobs
}

fn kill(child: Running) {
    let run = child.signal_and_wait(libc::SIGKILL, Duration::from_secs(30));
    assert_eq!(run.code, None, "killed by a signal");
}

#[test]
fn sigkilled_three_times_and_restarted_every_bar_is_there_once() {
    let bootstrap = broker().bootstrap.clone();
    let topic = unique("eos-crash");
    create_topic_on(&bootstrap, &topic, 3);
    let group = unique("g-crash");
    let mut chaos = Chaos::new();
    let feed = feed(&bootstrap, &topic, 20);
    let mut job = aggregate(&bootstrap, &topic, &group, "crash");
    for _ in 0..3 {
        std::thread::sleep(chaos.pause(3, 6));
        kill(job);
        job = aggregate(&bootstrap, &topic, &group, "crash");
    }
    check(&bootstrap, &topic, feed);
    job.signal_and_wait(libc::SIGINT, Duration::from_secs(60))
        .assert_code(0);
}

#[test]
fn one_of_two_instances_killed_the_other_takes_over() {
    let bootstrap = broker().bootstrap.clone();
    let topic = unique("eos-two");
    create_topic_on(&bootstrap, &topic, 3);
    let group = unique("g-two");
    let mut chaos = Chaos::new();
    let feed = feed(&bootstrap, &topic, 20);
    let a = aggregate(&bootstrap, &topic, &group, "a");
    let b = aggregate(&bootstrap, &topic, &group, "b");
    std::thread::sleep(chaos.pause(4, 8));
    kill(b);
    let a = check_or_explain(&bootstrap, &topic, feed, vec![a]).remove(0);
    let run = a.signal_and_wait(libc::SIGINT, Duration::from_secs(60));
    run.assert_code(0);
    // The survivor owned all three partitions in the end.
    let last = run
        .stderr
        .lines()
        .rev()
        .find(|l| l.contains("Partitions assigned"))
        .unwrap_or_default();
    assert!(
        last.contains("0@") && last.contains("1@") && last.contains("2@"),
        "{}",
        run.stderr
    );
}

/// Two instances given the same --instance-id fence each other's producer (one
/// transactional id): one of them stops and says why instead of fencing back and forth,
/// and the output stays exact.
#[test]
fn two_instances_with_one_instance_id_one_stops_and_says_why() {
    let bootstrap = broker().bootstrap.clone();
    let topic = unique("eos-twins");
    create_topic_on(&bootstrap, &topic, 3);
    let group = unique("g-twins");
    let feed = feed(&bootstrap, &topic, 20);
    let a = aggregate(&bootstrap, &topic, &group, "twin");
    std::thread::sleep(Duration::from_secs(3));
    let b = aggregate(&bootstrap, &topic, &group, "twin");
    let jobs = check_or_explain(&bootstrap, &topic, feed, vec![a, b]);
    let runs: Vec<Run> = jobs
        .into_iter()
        .map(|job| job.signal_and_wait(libc::SIGINT, Duration::from_secs(60)))
        .collect();
    let stopped: Vec<&Run> = runs
        .iter()
        .filter(|run| {
            run.stderr
                .contains("another instance with the same --instance-id took over")
        })
        .collect();
    assert_eq!(
        stopped.len(),
        1,
        "exactly one of the twins stops on being fenced:\n{}\n---\n{}",
        runs[0].stderr,
        runs[1].stderr
    );
    assert_ne!(stopped[0].code, Some(0), "{}", stopped[0].stderr);
    assert!(
        stopped[0]
            .stderr
            .contains("give every instance of a group its own --instance-id"),
        "{}",
        stopped[0].stderr
    );
}

/// How the broker goes down under a running aggregate.
enum BrokerFault {
    /// SIGTERM: a clean stop.
    Stop,
    /// SIGKILL: a crash; open transactions and unflushed state are cut short.
    Kill,
}

/// The broker goes down mid-stream for longer than the idle timeout and comes back on the
/// same data; the output must still hold exactly the expected bars and dead letters: the
/// outage's silence is not taken for an idle stream (the broker cannot confirm that
/// nothing is waiting), so the ticks written meanwhile are aggregated, not called late.
///
/// The idle timeout (5s) is longer than the feed's producer can be held back after the
/// broker is back: its reconnect backoff is capped at 1s here (librdkafka's default cap,
/// 10s, would be a real pause in the stream that an idle rule cannot tell from idleness).
fn broker_goes_down_mid_stream(fault: BrokerFault, name: &str) {
    let mut kafka = Dedicated::start();
    let bootstrap = kafka.bootstrap.clone();
    let topic = unique(&format!("eos-{name}"));
    create_topic_on(&bootstrap, &topic, 3);
    let group = unique(&format!("g-{name}"));
    let feed = feed_with(
        &bootstrap,
        &topic,
        25,
        &["-X", "reconnect.backoff.max.ms=1000"],
    );
    let job = aggregate_idle(&bootstrap, &topic, &group, name, "5s");
    std::thread::sleep(Duration::from_secs(7));
    match fault {
        BrokerFault::Stop => kafka.stop(),
        BrokerFault::Kill => kafka.kill(),
    }
    std::thread::sleep(Duration::from_secs(8));
    kafka.resume();
    for job in check_or_explain(&bootstrap, &topic, feed, vec![job]) {
        job.signal_and_wait(libc::SIGINT, Duration::from_secs(60))
            .assert_code(0);
    }
}

#[test]
fn the_broker_restarts_mid_stream_and_aggregate_carries_on() {
    broker_goes_down_mid_stream(BrokerFault::Stop, "restart");
}

#[test]
fn the_broker_is_killed_mid_stream_and_aggregate_carries_on() {
    broker_goes_down_mid_stream(BrokerFault::Kill, "broker-kill");
}

#[test]
fn a_frozen_instance_is_fenced_and_commits_nothing() {
    let bootstrap = broker().bootstrap.clone();
    let topic = unique("eos-frozen");
    create_topic_on(&bootstrap, &topic, 3);
    let group = unique("g-frozen");
    let feed = feed(&bootstrap, &topic, 30);
    let a = aggregate(&bootstrap, &topic, &group, "a");
    let b = aggregate(&bootstrap, &topic, &group, "b");
    std::thread::sleep(Duration::from_secs(5));
    let frozen = i32::try_from(b.pid()).unwrap();
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(frozen, libc::SIGSTOP) };
    // Past the session timeout (10s): its partitions move to `a`.
    std::thread::sleep(Duration::from_secs(16));
    // SAFETY: as above.
    unsafe { libc::kill(frozen, libc::SIGCONT) };
    for job in check_or_explain(&bootstrap, &topic, feed, vec![a, b]) {
        // The thawed one may have stopped on being fenced; neither may hang.
        let run = job.signal_and_wait(libc::SIGINT, Duration::from_secs(60));
        assert!(run.code.is_some(), "{}", run.stderr);
    }
}
