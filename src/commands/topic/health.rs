//! What `topic describe` says about a topic's replicas: which partitions have no leader
//! (offline: no reads, no writes), which are below min.insync.replicas (acks=all writes
//! refused) and which have replicas out of sync (under-replicated), so a broker outage is
//! plain to see without reading the ISR column.

use serde_json::{json, Value};

use crate::admin::PartitionInfo;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Health {
    /// Partitions without a leader.
    pub offline: Vec<i32>,
    /// Partitions with a leader but fewer replicas in sync than min.insync.replicas.
    pub under_min_isr: Vec<i32>,
    /// Partitions with a leader but fewer replicas in sync than assigned (the ones under
    /// min.insync.replicas included).
    pub under_replicated: Vec<i32>,
    min_isr: Option<usize>,
}

impl Health {
    pub fn of(partitions: &[PartitionInfo], min_isr: Option<usize>) -> Self {
        let mut health = Health {
            min_isr,
            ..Health::default()
        };
        for p in partitions {
            if p.leader < 0 {
                health.offline.push(p.id);
                continue;
            }
            if p.isr.len() < p.replicas.len() {
                health.under_replicated.push(p.id);
            }
            if min_isr.is_some_and(|min| p.isr.len() < min) {
                health.under_min_isr.push(p.id);
            }
        }
        health
    }

    /// The fields `topic describe -o json` adds.
    pub fn json(&self) -> Value {
        json!({
            "min_insync_replicas": self.min_isr,
            "offline_partitions": self.offline,
            "under_min_isr_partitions": self.under_min_isr,
            "under_replicated_partitions": self.under_replicated,
        })
    }

    /// The lines under the table: one line when every replica is in sync, else one per kind
    /// of trouble, naming the partitions and what it means.
    pub fn footer(&self) -> String {
        if self.offline.is_empty() && self.under_replicated.is_empty() {
            let min_isr = self
                .min_isr
                .map_or(String::new(), |m| format!(" (min.insync.replicas {m})"));
            return format!("Replicas: all in sync{min_isr}\n");
        }
        let mut text = String::new();
        if !self.offline.is_empty() {
            text.push_str(&format!(
                "OFFLINE: {} (no leader: no reads or writes until a replica's broker is back; offsets unknown, shown as 0)\n",
                list(&self.offline)
            ));
        }
        if !self.under_min_isr.is_empty() {
            text.push_str(&format!(
                "BELOW MIN ISR: {} (fewer replicas in sync than min.insync.replicas{}: acks=all writes are refused)\n",
                list(&self.under_min_isr),
                self.min_isr.map_or(String::new(), |m| format!(" = {m}"))
            ));
        }
        if !self.under_replicated.is_empty() {
            text.push_str(&format!(
                "UNDER-REPLICATED: {} (fewer replicas in sync than assigned{})\n",
                list(&self.under_replicated),
                self.min_isr
                    .map_or(String::new(), |m| format!("; min.insync.replicas {m}"))
            ));
        }
        text
    }
}

fn list(ids: &[i32]) -> String {
    let word = if ids.len() == 1 {
        "partition"
    } else {
        "partitions"
    };
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    format!("{word} {}", ids.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(id: i32, leader: i32, replicas: &[i32], isr: &[i32]) -> PartitionInfo {
        PartitionInfo {
            id,
            leader,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
        }
    }

    #[test]
    fn every_replica_in_sync_is_one_line() {
        let health = Health::of(&[partition(0, 1, &[1, 2, 3], &[2, 1, 3])], Some(2));
        assert_eq!(
            health.footer(),
            "Replicas: all in sync (min.insync.replicas 2)\n"
        );
        assert!(health.under_replicated.is_empty() && health.offline.is_empty());
    }

    #[test]
    fn a_broker_down_is_named_per_kind_of_trouble() {
        let partitions = [
            partition(0, 1, &[1, 2, 3], &[1, 3]),
            partition(1, 3, &[3, 1, 2], &[3]),
            partition(2, -1, &[2], &[2]),
            partition(3, 1, &[1, 3, 2], &[1, 3, 2]),
        ];
        let health = Health::of(&partitions, Some(2));
        assert_eq!(health.offline, [2]);
        assert_eq!(health.under_min_isr, [1]);
        assert_eq!(health.under_replicated, [0, 1]);
        let footer = health.footer();
        assert!(
            footer.contains("OFFLINE: partition 2 (no leader"),
            "{footer}"
        );
        assert!(footer.contains("BELOW MIN ISR: partition 1 ("), "{footer}");
        assert!(
            footer.contains("UNDER-REPLICATED: partitions 0, 1 ("),
            "{footer}"
        );
        assert_eq!(health.json()["offline_partitions"], json!([2]));
        assert_eq!(health.json()["under_min_isr_partitions"], json!([1]));
    }

    #[test]
    fn without_a_known_min_isr_only_replicas_count() {
        let health = Health::of(&[partition(0, 1, &[1, 2], &[1])], None);
        assert_eq!(health.under_replicated, [0]);
        assert!(health.under_min_isr.is_empty());
        assert_eq!(health.json()["min_insync_replicas"], Value::Null);
    }
}
