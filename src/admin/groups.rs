//! Consumer groups as the cluster knows them, for the `group` commands: every group with
//! its state and members (each member's assignment decoded), a group's committed offsets
//! with their metadata, committing chosen offsets, and the offset of a time. Every call is
//! bounded by the command's `--timeout`, like the rest of `Admin`.

mod assignment;
mod offsets;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::Consumer as _;
use rdkafka::groups::GroupInfo;
use rdkafka::Offset;

pub use assignment::Assignment;
pub use offsets::Commit;

use super::native::{self, NoAnswer};
use super::Admin;
use crate::signals;

/// How long to wait before asking a loading coordinator again.
const PAUSE: Duration = Duration::from_millis(200);

fn passing(e: &anyhow::Error) -> bool {
    e.downcast_ref::<native::Failed>()
        .is_some_and(native::Failed::passing)
}

/// A group as the broker describes it.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    /// The broker's word: Stable, Empty, PreparingRebalance, CompletingRebalance, Dead.
    pub state: String,
    /// `consumer` for consumer groups; empty for a group that only holds offsets.
    pub protocol_type: String,
    /// The assignor the members agreed on (`range`, `cooperative-sticky`, …), if any.
    pub protocol: String,
    pub members: Vec<Member>,
}

/// One member of a group.
#[derive(Debug, Clone)]
pub struct Member {
    pub member_id: String,
    pub client_id: String,
    /// The address the member connects from, as the broker saw it.
    pub host: String,
    /// `None`: the assignment bytes were not the consumer protocol's.
    pub assignment: Option<Assignment>,
}

impl Group {
    fn from_info(info: &GroupInfo) -> Group {
        let members = info
            .members()
            .iter()
            .map(|m| Member {
                member_id: m.id().to_string(),
                client_id: m.client_id().to_string(),
                host: m.client_host().trim_start_matches('/').to_string(),
                assignment: assignment::decode(m.assignment().unwrap_or_default()),
            })
            .collect();
        Group {
            name: info.name().to_string(),
            state: info.state().to_string(),
            protocol_type: info.protocol_type().to_string(),
            protocol: info.protocol().to_string(),
            members,
        }
    }

    /// Whether the broker knows nothing of it (it answers "Dead" for a name it has never
    /// seen, or for a group whose last offsets expired).
    pub fn is_dead(&self) -> bool {
        self.state.is_empty() || self.state == "Dead"
    }

    /// The members, each as `client id (host)`, for a refusal that names them.
    pub fn member_names(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{} ({}) [{}]", m.client_id, m.host, m.member_id))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Admin {
    /// Every group on the cluster, sorted by name.
    pub fn groups(&self) -> anyhow::Result<Vec<Group>> {
        let mut groups = self
            .fetch_groups(None)
            .with_context(|| format!("listing consumer groups on {}", self.brokers()))?;
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(groups)
    }

    /// One group as its coordinator describes it (a dead one included: see `is_dead`).
    pub fn group(&self, name: &str) -> anyhow::Result<Group> {
        let groups = self
            .fetch_groups(Some(name.to_string()))
            .with_context(|| format!("describing consumer group `{name}` on {}", self.brokers()))?;
        Ok(groups
            .into_iter()
            .find(|g| g.name == name)
            .unwrap_or_else(|| Group {
                name: name.to_string(),
                state: String::new(),
                protocol_type: String::new(),
                protocol: String::new(),
                members: Vec::new(),
            }))
    }

    /// ListGroups and DescribeGroups (of one group, or of all), decoded on the request's
    /// thread: librdkafka's answer cannot leave it.
    fn fetch_groups(&self, one: Option<String>) -> anyhow::Result<Vec<Group>> {
        Ok(self.ask("describing consumer groups", move |c, timeout| {
            c.fetch_group_list(one.as_deref(), timeout)
                .map(|list| list.groups().iter().map(Group::from_info).collect())
        })??)
    }

    /// Every offset the group has committed, with its metadata, sorted by topic and
    /// partition.
    pub fn committed(&self, group: &str) -> anyhow::Result<Vec<Commit>> {
        let mut commits = self
            .group_offsets(group, &offsets::Request::List, "reading committed offsets")
            .with_context(|| format!("reading the committed offsets of group `{group}`"))?;
        commits.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(commits)
    }

    /// Commits exactly `commits` for the group, which must have no members (the broker
    /// refuses otherwise).
    pub fn commit_for(&self, group: &str, commits: &[Commit]) -> anyhow::Result<()> {
        self.group_offsets(
            group,
            &offsets::Request::Alter(commits),
            "committing offsets",
        )
        .with_context(|| format!("committing offsets for group `{group}`"))?;
        Ok(())
    }

    /// One offsets request, asked again while the group's coordinator is loading or moving
    /// (right after a broker started or failed over), until `--timeout` is spent.
    fn group_offsets(
        &self,
        group: &str,
        request: &offsets::Request,
        what: &str,
    ) -> anyhow::Result<Vec<Commit>> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let client = self.client.inner().native_ptr();
            match offsets::call(client, group, request, left, signals::out_of_patience) {
                Ok(Ok(commits)) => return Ok(commits),
                Ok(Err(NoAnswer::TimedOut)) => return Err(self.no_answer(what)),
                Ok(Err(NoAnswer::Stopped)) => return Err(self.given_up(what)),
                Err(e) if passing(&e) && Instant::now() + PAUSE < deadline => {
                    tracing::debug!("{what}: {e:#}; asking again");
                    std::thread::sleep(PAUSE);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// For each of `partitions` of `topic`, the offset of the first record with a timestamp
    /// at or after `at_ms` (Unix ms); `None` where there is none (every record is older).
    pub fn offsets_at(
        &self,
        topic: &str,
        partitions: &[i32],
        at_ms: i64,
    ) -> anyhow::Result<BTreeMap<i32, Option<i64>>> {
        // The broker answers -1 (librdkafka: End) when no record is that recent: `None`.
        self.offsets_seen_by(&self.offsets, topic, partitions, Offset::Offset(at_ms))
    }
}
