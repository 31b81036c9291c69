//! `topic alter`: more partitions, and settings set or removed one by one, shown before and
//! after. More partitions move keys to other partitions (a key's partition is its murmur2
//! hash modulo the count), so the symbols that move are named: their records from then on
//! land elsewhere, after the ones already written in the old partition.

use anyhow::{anyhow, bail};
use serde_json::json;

use super::create::LOG;
use super::Common;
use crate::admin::Change;
use crate::global::Global;
use crate::partitioner::place;
use crate::record::Symbol;
use crate::table::Table;
use crate::topic_name::TopicName;

const EXAMPLES: &str = "\
Examples:
  stockstream topic alter stock_prices --partitions 8      # names the symbols that move
  stockstream topic alter stock_prices --config retention.ms=3600000
  stockstream topic alter stock_prices --delete-config retention.ms -o json";

#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("change").required(true).multiple(true)
    .args(["partitions", "configs", "deletes"]))]
pub struct Args {
    /// Name of the topic.
    name: TopicName,

    /// The new partition count: more than now (Kafka cannot take partitions away). Keys
    /// then move to other partitions; the symbols that move are named.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=100_000))]
    partitions: Option<i32>,

    /// A setting to set, e.g. --config retention.ms=3600000 (repeatable). The topic's other
    /// settings stay as they are.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = crate::flags::parse_key_value)]
    configs: Vec<(String, String)>,

    /// A setting to remove, so that the broker's default applies again (repeatable).
    #[arg(long = "delete-config", value_name = "KEY")]
    deletes: Vec<String>,

    #[command(flatten)]
    common: Common,
}

impl Args {
    /// The setting changes, in the order typed: sets, then removals. A key both set and
    /// removed is refused, since the broker would have to choose.
    fn changes(&self) -> anyhow::Result<Vec<Change>> {
        if let Some(key) = self
            .deletes
            .iter()
            .find(|k| self.configs.iter().any(|(set, _)| set == *k))
        {
            bail!("`{key}` is both set (--config) and removed (--delete-config); choose one");
        }
        let sets = self
            .configs
            .iter()
            .map(|(k, v)| Change::Set(k.clone(), v.clone()));
        let deletes = self.deletes.iter().map(|k| Change::Delete(k.clone()));
        Ok(sets.chain(deletes).collect())
    }
}

/// Where one symbol's records land before and after the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Move {
    symbol: Symbol,
    before: i32,
    after: i32,
}

impl Move {
    fn moves(self) -> bool {
        self.before != self.after
    }
}

/// Each symbol's partition on a topic of `before` and of `after` partitions.
fn moves(before: usize, after: usize) -> Vec<Move> {
    Symbol::ALL
        .iter()
        .filter_map(|&symbol| {
            let key = symbol.as_str().as_bytes();
            Some(Move {
                symbol,
                before: place(key, before)?.partition,
                after: place(key, after)?.partition,
            })
        })
        .collect()
}

/// One setting's value before and after; `None` where the broker's default applies.
struct Setting {
    key: String,
    before: Option<String>,
    after: Option<String>,
    default_before: Option<String>,
    default_after: Option<String>,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<()> {
    let changes = args.changes()?;
    let name = args.name.as_str();
    let (admin, topic) = super::existing(name, &args.common, global)?;
    let before = topic.partitions.len();
    let target = args.partitions.and_then(|n| usize::try_from(n).ok());
    if let Some(n) = target.filter(|&n| n < before) {
        bail!(
            "`{name}` has {before} partitions; Kafka cannot take partitions away, so --partitions must be more than {before} (asked: {n})\n  hint: to have fewer, create a new topic and copy the records"
        );
    }
    let keys: Vec<String> = changes
        .iter()
        .map(|c| match c {
            Change::Set(k, _) | Change::Delete(k) => k.clone(),
        })
        .collect();
    let custom_before = admin.custom_configs(name)?;
    let all_before = admin.configs_of(name)?;
    if !changes.is_empty() {
        admin.alter_configs(name, &changes)?;
    }
    let grow = target.filter(|&n| n > before);
    if let Some(n) = grow {
        let total = i32::try_from(n).map_err(|_| anyhow!("--partitions {n} is too many"))?;
        admin.add_partitions(name, total)?;
    }
    let custom_after = admin.custom_configs(name)?;
    let all_after = admin.configs_of(name)?;
    let settings: Vec<Setting> = keys
        .iter()
        .map(|k| Setting {
            key: k.clone(),
            before: custom_before.get(k).cloned(),
            after: custom_after.get(k).cloned(),
            default_before: all_before.get(k).cloned(),
            default_after: all_after.get(k).cloned(),
        })
        .collect();
    let after = grow.unwrap_or(before);
    let moved = if after > before {
        moves(before, after)
    } else {
        Vec::new()
    };
    report(&args, global, name, (before, after), &moved, &settings)
}

fn report(
    args: &Args,
    global: &Global,
    name: &str,
    (before, after): (usize, usize),
    moved: &[Move],
    settings: &[Setting],
) -> anyhow::Result<()> {
    let movers: Vec<&str> = moved
        .iter()
        .filter(|m| m.moves())
        .map(|m| m.symbol.as_str())
        .collect();
    if !movers.is_empty() {
        tracing::warn!(
            target: LOG,
            "🔀 {} now go to other partitions of `{name}`: a key's partition is its hash modulo the partition count. Their new records land after the old ones, in another partition, so a reader of one partition no longer sees a symbol's whole history in order",
            movers.join(", ")
        );
    }
    if args.common.json() {
        let keys: Vec<_> = moved
            .iter()
            .map(|m| json!({"symbol": m.symbol.as_str(), "before": m.before, "after": m.after, "moves": m.moves()}))
            .collect();
        let configs: Vec<_> = settings
            .iter()
            .map(|s| {
                json!({
                    "key": s.key,
                    "before": s.before.as_ref().or(s.default_before.as_ref()),
                    "after": s.after.as_ref().or(s.default_after.as_ref()),
                    "before_is_default": s.before.is_none(),
                    "after_is_default": s.after.is_none(),
                })
            })
            .collect();
        return crate::stdout::json(&json!({
            "name": name,
            "partitions": {"before": before, "after": after},
            "keys": keys,
            "configs": configs,
        }));
    }
    let color = global.terminal.stdout_color;
    let mut text = if after > before {
        format!("Topic `{name}`: {before} → {after} partitions\n")
    } else if args.partitions.is_some() {
        format!("Topic `{name}`: already {after} partitions, left as they are\n")
    } else {
        format!("Topic `{name}`: {after} partitions\n")
    };
    if !moved.is_empty() {
        let mut table = Table::new(vec!["SYMBOL", "BEFORE", "AFTER", "MOVES"]);
        for m in moved {
            table.row(vec![
                m.symbol.as_str().to_string(),
                m.before.to_string(),
                m.after.to_string(),
                if m.moves() { "yes" } else { "no" }.to_string(),
            ]);
        }
        text.push_str(&table.render(color));
    }
    if !settings.is_empty() {
        let shown = |own: &Option<String>, default: &Option<String>| match (own, default) {
            (Some(v), _) => v.clone(),
            (None, Some(d)) => format!("{d} (default)"),
            (None, None) => "(default)".to_string(),
        };
        let mut table = Table::new(vec!["SETTING", "BEFORE", "AFTER"]);
        for s in settings {
            table.row(vec![
                s.key.clone(),
                shown(&s.before, &s.default_before),
                shown(&s.after, &s.default_after),
            ]);
        }
        text.push_str(&table.render(color));
    }
    Ok(crate::stdout::write(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Result<Args, clap::Error> {
        Cli::try_parse_from(std::iter::once("alter").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn symbols_move_as_murmur2_places_them() {
        let moved = moves(5, 8);
        assert_eq!(moved.len(), 7);
        for m in &moved {
            let key = m.symbol.as_str().as_bytes();
            let hash = crate::partitioner::murmur2(key) & 0x7fff_ffff;
            assert_eq!(m.before, i32::try_from(hash % 5).unwrap());
            assert_eq!(m.after, i32::try_from(hash % 8).unwrap());
        }
        // On one partition every symbol is on partition 0.
        assert!(moves(1, 1).iter().all(|m| m.before == 0 && m.after == 0));
        assert!(moves(3, 6).iter().any(|m| m.moves()));
    }

    #[test]
    fn something_to_change_is_required_and_set_and_delete_of_one_key_refused() {
        assert!(parse(&["t"]).is_err());
        assert!(parse(&["t", "--partitions", "0"]).is_err());
        let args = parse(&["t", "--config", "a=1", "--delete-config", "b"]).unwrap();
        assert_eq!(
            args.changes().unwrap(),
            vec![
                Change::Set("a".into(), "1".into()),
                Change::Delete("b".into())
            ]
        );
        let both = parse(&["t", "--config", "a=1", "--delete-config", "a"]).unwrap();
        assert!(both.changes().unwrap_err().to_string().contains("both set"));
    }
}
