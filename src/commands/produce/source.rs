//! What `produce` sends: ticks from the market generator, stamped with the wall clock or
//! dated by a backfill's event-time schedule, or the checked lines of an input.

use anyhow::anyhow;

use super::backfill::Backfill;
use super::deliveries::LOG;
use super::input::{BadLines, Input, Lines};
use crate::market::Market;
use crate::numbers::{count, thousands};
use crate::record::{event_millis, Symbol};

/// Where the records come from, as the settings say.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    /// The market generator; with a backfill, dated from its start at its event rate.
    Generate {
        symbols: Vec<Symbol>,
        seed: Option<u64>,
        backfill: Option<Backfill>,
    },
    /// Recorded JSON lines.
    Input(Input),
}

pub enum Source {
    Generate {
        // Boxed: the generator's state is large beside an input's.
        market: Box<Market>,
        backfill: Option<Backfill>,
        made: u64,
    },
    Lines(Lines),
}

impl Source {
    pub fn open(origin: &Origin) -> anyhow::Result<Self> {
        Ok(match origin {
            Origin::Generate {
                symbols,
                seed,
                backfill,
            } => Source::Generate {
                market: Box::new(Market::new(symbols, *seed)),
                backfill: *backfill,
                made: 0,
            },
            Origin::Input(input) => Source::Lines(Lines::open(input)?),
        })
    }

    /// Puts the next record's payload in `payload` and returns its symbol, the key; `None`
    /// when there is no more (the end of the input, or a backfill that reached the
    /// present). `now` is the wall clock, Unix seconds.
    pub fn next(&mut self, now: f64, payload: &mut Vec<u8>) -> anyhow::Result<Option<Symbol>> {
        match self {
            Source::Generate {
                market,
                backfill,
                made,
            } => {
                let at = match backfill {
                    Some(b) => {
                        if b.in_the_future(*made, event_millis(now)).is_some() {
                            tracing::info!(
                                target: LOG,
                                "⏹️ The backfill reached the present after {}: stopping (a backfill loads history)",
                                count(*made, "tick", "ticks")
                            );
                            return Ok(None);
                        }
                        b.at(*made)
                    }
                    None => now,
                };
                let tick = market.next_tick(at);
                *made += 1;
                // The generator only makes valid ticks; a failure here is a bug worth stopping for.
                let tick = tick
                    .validated()
                    .map_err(|e| anyhow!("generated an invalid tick {tick:?}: {e}"))?;
                tick.encode_into(payload);
                Ok(Some(tick.symbol))
            }
            // A recorded line is sent as it is: aggregate then judges the very bytes that
            // were checked here, and no digit of a price is rounded away.
            Source::Lines(lines) => Ok(lines.next_record(event_millis(now))?.map(|record| {
                payload.extend_from_slice(lines.line());
                record.symbol
            })),
        }
    }

    /// What is sent, for the line at start: "AAPL MSFT" or "the lines of `ticks.jsonl`".
    pub fn describe(&self) -> String {
        match self {
            Source::Generate {
                market, backfill, ..
            } => {
                let symbols = market
                    .symbols()
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                match backfill {
                    Some(b) => format!("{symbols} ({})", b.describe()),
                    None => symbols,
                }
            }
            Source::Lines(lines) => format!("the lines of {}", lines.name()),
        }
    }

    /// The summary's first words: "5,000 generated" or "5,003 lines read, 3 bad".
    pub fn describe_counts(&self, sent: u64) -> String {
        match self {
            Source::Generate { .. } => format!("{} generated", thousands(sent)),
            Source::Lines(lines) => lines.describe_counts(),
        }
    }

    /// The lines that were not sent, for an input.
    pub fn bad_lines(&self) -> Option<(&str, &BadLines)> {
        match self {
            Source::Generate { .. } => None,
            Source::Lines(lines) => Some((lines.name(), lines.bad())),
        }
    }
}
