//! `cluster info`: the cluster id, every broker with its address and rack and how many
//! partitions it leads and holds a replica of (so an unbalanced or shrunken cluster shows),
//! and the count of topics and partitions.

use std::collections::BTreeMap;

use nu_ansi_term::Style;
use serde_json::json;

use crate::admin::{Admin, ClusterDescription, TopicInfo};
use crate::commands::common::Common;
use crate::global::Global;
use crate::kafka::Kafka;
use crate::numbers::{count, thousands};
use crate::table::Table;

const EXAMPLES: &str = "\
Examples:
  stockstream cluster info
  stockstream -b kafka-1:9092 cluster info -o json   # for a script";

/// On KRaft clusters (every Kafka from 4.0) the brokers answer "controller" with one of the
/// live brokers, which forwards controller requests to the quorum: the quorum's leader
/// is not visible to clients.
const CONTROLLER_NOTE: &str = "the broker the cluster names as controller; on KRaft, a live \
    broker that forwards to the controller quorum";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
pub struct Args {
    #[command(flatten)]
    common: Common,
}

/// Partitions a broker leads and holds a replica of.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Load {
    leaders: usize,
    replicas: usize,
}

pub fn run(args: &Args, global: &Global) -> anyhow::Result<()> {
    let kafka = Kafka::new(&global.connection)?;
    let admin = Admin::connect(&kafka, args.common.timeout)?;
    let cluster = admin.describe_cluster()?;
    let topics = admin.topics()?;
    let load = load_per_broker(&topics);
    let (internal, user): (Vec<&TopicInfo>, Vec<&TopicInfo>) =
        topics.iter().partition(|t| t.is_internal());
    let partitions = |ts: &[&TopicInfo]| ts.iter().map(|t| t.partitions.len()).sum::<usize>();

    if args.common.json() {
        let brokers: Vec<_> = cluster
            .brokers
            .iter()
            .map(|b| {
                let l = load.get(&b.id).copied().unwrap_or_default();
                json!({
                    "id": b.id,
                    "host": b.host,
                    "port": b.port,
                    "rack": b.rack,
                    "leaders": l.leaders,
                    "replicas": l.replicas,
                })
            })
            .collect();
        return crate::stdout::json(&json!({
            "cluster_id": cluster.id,
            "controller": cluster.controller,
            "brokers": brokers,
            "topics": user.len(),
            "partitions": partitions(&user),
            "internal_topics": internal.len(),
            "internal_partitions": partitions(&internal),
        }));
    }
    let color = global.terminal.stdout_color;
    let mut text = heading(&cluster, color);
    text.push_str(&brokers_table(&cluster, &load).render(color));
    text.push_str(&format!(
        "{} with {}; {} of Kafka's own with {}\n",
        count(user.len() as u64, "topic", "topics"),
        count(partitions(&user) as u64, "partition", "partitions"),
        count(internal.len() as u64, "topic", "topics"),
        count(partitions(&internal) as u64, "partition", "partitions"),
    ));
    if let Some(id) = cluster.controller {
        text.push_str(&format!("Controller: broker {id} ({CONTROLLER_NOTE})\n"));
    }
    Ok(crate::stdout::write(text)?)
}

fn heading(cluster: &ClusterDescription, color: bool) -> String {
    let title = format!(
        "Cluster {}",
        cluster.id.as_deref().unwrap_or("(no id given)")
    );
    let title = if color {
        Style::new().bold().paint(title).to_string()
    } else {
        title
    };
    format!(
        "{title}  {}\n",
        count(cluster.brokers.len() as u64, "broker", "brokers")
    )
}

fn brokers_table(cluster: &ClusterDescription, load: &BTreeMap<i32, Load>) -> Table {
    let mut table = Table::new(vec!["BROKER", "ADDRESS", "RACK", "LEADS", "REPLICAS"]);
    for b in &cluster.brokers {
        let l = load.get(&b.id).copied().unwrap_or_default();
        let mark = if cluster.controller == Some(b.id) {
            " *"
        } else {
            ""
        };
        table.row(vec![
            format!("{}{mark}", b.id),
            format!("{}:{}", b.host, b.port),
            b.rack.clone().unwrap_or_else(|| "-".into()),
            thousands(l.leaders as u64),
            thousands(l.replicas as u64),
        ]);
    }
    table
}

/// Per broker id, the partitions (of every topic, Kafka's own included) it leads and holds.
fn load_per_broker(topics: &[TopicInfo]) -> BTreeMap<i32, Load> {
    let mut load: BTreeMap<i32, Load> = BTreeMap::new();
    for p in topics.iter().flat_map(|t| &t.partitions) {
        if p.leader >= 0 {
            load.entry(p.leader).or_default().leaders += 1;
        }
        for r in &p.replicas {
            load.entry(*r).or_default().replicas += 1;
        }
    }
    load
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::PartitionInfo;

    fn partition(id: i32, leader: i32, replicas: &[i32]) -> PartitionInfo {
        PartitionInfo {
            id,
            leader,
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
        }
    }

    #[test]
    fn each_broker_counts_the_partitions_it_leads_and_holds() {
        let topics = vec![
            TopicInfo {
                name: "a".into(),
                partitions: vec![partition(0, 1, &[1, 2, 3]), partition(1, 2, &[2, 3, 1])],
            },
            TopicInfo {
                name: "__consumer_offsets".into(),
                partitions: vec![partition(0, -1, &[3])],
            },
        ];
        let load = load_per_broker(&topics);
        assert_eq!(
            load[&1],
            Load {
                leaders: 1,
                replicas: 2
            }
        );
        assert_eq!(
            load[&2],
            Load {
                leaders: 1,
                replicas: 2
            }
        );
        assert_eq!(
            load[&3],
            Load {
                leaders: 0,
                replicas: 3
            }
        );
    }
}
