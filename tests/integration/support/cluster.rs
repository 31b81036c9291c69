//! One real three-node Kafka cluster per test binary, started the first time a test asks for
//! it with the project's own launcher (`scripts/kafka-cluster run`) on free loopback ports
//! and a throw-away data folder. Like the single broker, it is stopped at process exit, and
//! the launcher stops it by itself when this process disappears.
//!
//! Tests that kill, stop or freeze nodes take the cluster for themselves (`faults()`), one at
//! a time, and leave it whole: every node up and every replica in sync, even when they fail.
//! Tests that only need a healthy cluster share it (`calm()`) while no fault test runs.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{OnceLock, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};

use super::broker::{free_port, repo_root, KAFKA_LOCAL};
use super::launcher::Launcher;
use super::{wait_for, Run};

pub struct Cluster {
    /// All three nodes' client listeners.
    pub bootstrap: String,
    ports: [u16; 3],
    data: PathBuf,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// Taken for reading by tests that need the cluster whole, for writing by tests that break it.
static USE: RwLock<()> = RwLock::new(());

/// The cluster, whole, shared with the other tests that do not break it.
pub fn calm() -> (&'static Cluster, RwLockReadGuard<'static, ()>) {
    let guard = USE.read().unwrap_or_else(PoisonError::into_inner);
    (cluster(), guard)
}

/// The cluster for this test alone, to break. Dropping the guard (also when the test
/// panics) brings every node back and waits until every replica is in sync again.
pub fn faults() -> Faults {
    let guard = USE.write().unwrap_or_else(PoisonError::into_inner);
    Faults {
        cluster: cluster(),
        _guard: guard,
    }
}

pub struct Faults {
    pub cluster: &'static Cluster,
    _guard: RwLockWriteGuard<'static, ()>,
}

impl std::ops::Deref for Faults {
    type Target = Cluster;

    fn deref(&self) -> &Cluster {
        self.cluster
    }
}

impl Drop for Faults {
    fn drop(&mut self) {
        // Runs before the guard is released: the next test finds the cluster whole.
        let restored = self.cluster.restore();
        match restored {
            Err(why) if std::thread::panicking() => {
                eprintln!("could not restore the cluster after the failed test: {why}");
            }
            Err(why) => panic!("could not restore the cluster: {why}"),
            Ok(()) => {}
        }
    }
}

fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_init(start) {
        Ok(c) => c,
        Err(msg) => panic!("{msg}"),
    }
}

/// A node's readiness after a start: log recovery after a SIGKILL, the controllers fencing
/// its old incarnation (9 s), and its replicas catching up.
const NODE_LIMIT: Duration = Duration::from_secs(300);

/// scripts/kafka-cluster, as the tests run it: the jars, needs and fixes of kafka-local.
const KAFKA_CLUSTER: Launcher = Launcher {
    script: "kafka-cluster",
    ..KAFKA_LOCAL
};

fn start() -> Result<Cluster, String> {
    // The shared broker fetches the launcher's jars first, so that two launchers never
    // download them into the same folder at once.
    let _ = super::broker();
    let ports = [free_port(), free_port(), free_port()];
    let controllers = [free_port(), free_port(), free_port()];
    let list = |p: &[u16; 3]| p.map(|p| p.to_string()).join(",");
    let (_, _, data) = KAFKA_CLUSTER.launch_shared(
        "cluster",
        &[
            "--timeout",
            "240",
            "--heap",
            "384m",
            "--ports",
            &list(&ports),
            "--controller-ports",
            &list(&controllers),
        ],
    )?;
    Ok(Cluster {
        bootstrap: ports.map(|p| format!("127.0.0.1:{p}")).join(","),
        ports,
        data,
    })
}

impl Cluster {
    /// One node's client listener alone.
    pub fn node(&self, n: i32) -> String {
        format!("127.0.0.1:{}", self.ports[usize::try_from(n - 1).unwrap()])
    }

    /// `scripts/kafka-cluster COMMAND [N]` on this cluster, within `limit`.
    fn launcher(&self, command: &str, node: Option<i32>, limit: Duration) -> Run {
        let mut cmd = Command::new(repo_root().join("scripts/kafka-cluster"));
        cmd.arg(command)
            .args(node.map(|n| n.to_string()))
            .arg("--data")
            .arg(&self.data)
            .args(["--timeout", &(limit.as_secs() - 30).to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("running scripts/kafka-cluster");
        wait_for(child, limit)
    }

    #[track_caller]
    fn node_command(&self, command: &str, n: i32, limit: Duration) {
        eprintln!("scripts/kafka-cluster {command} {n}");
        let run = self.launcher(command, Some(n), limit);
        assert_eq!(
            run.code,
            Some(0),
            "scripts/kafka-cluster {command} {n}:\n{}",
            run.stderr
        );
    }

    /// SIGKILL: node `n` crashes, its data stays.
    #[track_caller]
    pub fn kill_node(&self, n: i32) {
        self.node_command("kill-node", n, Duration::from_secs(60));
    }

    /// SIGTERM: node `n` hands its leaderships over and stops.
    #[track_caller]
    pub fn stop_node(&self, n: i32) {
        self.node_command("stop-node", n, Duration::from_secs(60));
    }

    /// Starts node `n` and waits until every replica is in sync again.
    #[track_caller]
    pub fn start_node(&self, n: i32) {
        self.node_command("start-node", n, NODE_LIMIT);
        eprintln!("node {n} is back and every replica in sync");
    }

    /// SIGSTOP: node `n` freezes with its connections open.
    #[track_caller]
    pub fn pause_node(&self, n: i32) {
        self.node_command("pause-node", n, Duration::from_secs(60));
    }

    /// SIGCONT: a frozen node carries on.
    #[track_caller]
    pub fn resume_node(&self, n: i32) {
        self.node_command("resume-node", n, Duration::from_secs(60));
    }

    /// Every node running and every replica in sync, whatever a test left behind.
    fn restore(&self) -> Result<(), String> {
        for n in 1..=3 {
            // A node that is not running has nothing to resume.
            let _ = self.launcher("resume-node", Some(n), Duration::from_secs(60));
        }
        let run = self.launcher("start", None, NODE_LIMIT);
        if run.code == Some(0) {
            Ok(())
        } else {
            Err(format!(
                "scripts/kafka-cluster start exited {:?}:\n{}",
                run.code, run.stderr
            ))
        }
    }

    /// The node that leads `topic`'s `partition` now; waits (at most a minute) while it
    /// has none.
    #[track_caller]
    pub fn leader(&self, topic: &str, partition: i32) -> i32 {
        self.leader_where(topic, partition, |_| true)
    }

    /// Waits (at most a minute) until a node other than `old` leads `topic`'s `partition`,
    /// and returns it.
    #[track_caller]
    pub fn new_leader(&self, topic: &str, partition: i32, old: i32) -> i32 {
        self.leader_where(topic, partition, |l| l != old)
    }

    #[track_caller]
    fn leader_where(&self, topic: &str, partition: i32, ok: impl Fn(i32) -> bool) -> i32 {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()
            .expect("a metadata client");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = None;
        while Instant::now() < deadline {
            let leader = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(5))
                .ok()
                .and_then(|md| {
                    md.topics()
                        .first()?
                        .partitions()
                        .iter()
                        .find(|p| p.id() == partition)
                        .map(rdkafka::metadata::MetadataPartition::leader)
                });
            if let Some(l) = leader.filter(|l| *l > 0 && ok(*l)) {
                return l;
            }
            seen = leader;
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("{topic}/{partition}: no fitting leader within 60s (last seen: {seen:?})");
    }

    /// The partition of `__consumer_offsets` whose leader coordinates `group`.
    pub fn group_coordinator(&self, group: &str) -> (&'static str, i32) {
        self.coordinator("__consumer_offsets", group)
    }

    /// The partition of `__transaction_state` whose leader coordinates `transactional_id`.
    pub fn transaction_coordinator(&self, transactional_id: &str) -> (&'static str, i32) {
        self.coordinator("__transaction_state", transactional_id)
    }

    /// Kafka places a group or a transactional id on the partition of its internal topic
    /// numbered by the Java hash of the id, made non-negative, modulo the partition count;
    /// the leader of that partition coordinates it.
    fn coordinator(&self, internal: &'static str, id: &str) -> (&'static str, i32) {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()
            .expect("a metadata client");
        let md = consumer
            .fetch_metadata(Some(internal), Duration::from_secs(10))
            .expect("metadata of an internal topic");
        let count = md.topics()[0].partitions().len();
        assert!(count > 0, "{internal} has no partitions");
        (internal, coordinator_partition(id, count))
    }
}

/// The partition of Kafka's `Utils.abs(id.hashCode()) % partitions`.
fn coordinator_partition(id: &str, partitions: usize) -> i32 {
    let hash = id
        .encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % i32::try_from(partitions).unwrap()
}

#[test]
fn coordinator_partitions_follow_the_java_hash() {
    // In Java: "".hashCode() = 0, "a".hashCode() = 97, "stockstream".hashCode() = -254534122.
    assert_eq!(coordinator_partition("", 3), 0);
    assert_eq!(coordinator_partition("a", 50), 47);
    assert_eq!(coordinator_partition("stockstream", 50), 254_534_122 % 50);
}
