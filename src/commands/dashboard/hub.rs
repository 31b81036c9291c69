//! Where the feeds (threads reading Kafka) meet the browser streams (tasks on the async
//! runtime): the board behind one lock, and a broadcast channel of events framed once for
//! every stream. A change is applied and announced under the lock, and a new stream takes
//! its snapshot and subscribes under it too: no stream misses a change or sees one twice.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use tokio::sync::broadcast;

use super::board::{About, Board, Feed, Health};
use crate::aggregate::bar::Bar;
use crate::record::StockRecord;

/// Events a slow stream may fall behind by before it is sent a fresh snapshot instead.
const BACKLOG: usize = 4096;

/// One server-sent event as it goes on the wire (`event: KIND`, `data: JSON`), shared by
/// every stream: a clone is a reference, so a thousand streams cost one copy.
pub type Message = Bytes;

fn message(kind: &str, data: &str) -> Message {
    Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
}

fn json(kind: &str, value: &impl serde::Serialize) -> Message {
    // Maps of strings and numbers always serialize.
    message(kind, &serde_json::to_string(value).unwrap_or_default())
}

pub struct Hub {
    shared: Mutex<Shared>,
    events: broadcast::Sender<Message>,
    about: About,
}

struct Shared {
    board: Board,
    /// The board's snapshot event until the next change: streams that open together (a
    /// page reloaded by many people) share one.
    snapshot: Option<Message>,
}

/// Which part of the health a feed reports on.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    Bars,
    Input,
    Group,
    DeadLetters,
}

impl Hub {
    pub fn new(about: About) -> Arc<Hub> {
        Arc::new(Hub {
            shared: Mutex::new(Shared {
                board: Board::default(),
                snapshot: None,
            }),
            events: broadcast::channel(BACKLOG).0,
            about,
        })
    }

    pub fn about(&self) -> &About {
        &self.about
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        // A feed that panicked left a board that is still whole: every change is one call.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The board as a first event, and the events from then on.
    pub fn subscribe(&self) -> (Message, broadcast::Receiver<Message>) {
        let mut shared = self.shared();
        let about = &self.about;
        let Shared { board, snapshot } = &mut *shared;
        let first = snapshot
            .get_or_insert_with(|| json("snapshot", &board.snapshot(about)))
            .clone();
        (first, self.events.subscribe())
    }

    /// The board as JSON (`/api/state`).
    pub fn snapshot(&self) -> serde_json::Value {
        self.shared().board.snapshot(&self.about)
    }

    /// Tells every stream of a change made to `shared`.
    fn announce(&self, shared: &mut Shared, message: Message) {
        shared.snapshot = None;
        // No stream open: nobody to tell.
        let _ = self.events.send(message);
    }

    pub fn bar(&self, bar: &Bar) {
        let mut shared = self.shared();
        if shared.board.bar(bar) {
            let event = message("bar", &String::from_utf8_lossy(&bar.to_json()));
            self.announce(&mut shared, event);
        }
    }

    /// Takes the ticks in; the page hears of the last ticks once, if any was new.
    pub fn ticks(&self, ticks: impl IntoIterator<Item = StockRecord>) {
        let mut shared = self.shared();
        let mut changed = false;
        for t in ticks {
            changed |= shared.board.tick(t);
        }
        if changed {
            let event = json("ticks", &shared.board.ticks());
            self.announce(&mut shared, event);
        }
    }

    /// Changes the health; the page hears of it if it changed.
    pub fn health(&self, change: impl FnOnce(&mut Health)) {
        let mut shared = self.shared();
        let before = shared.board.health.clone();
        change(&mut shared.board.health);
        if shared.board.health != before {
            let event = json("health", &shared.board.health);
            self.announce(&mut shared, event);
        }
    }

    /// How a source is doing.
    pub fn feed(&self, source: Source, feed: Feed) {
        self.health(|h| {
            *match source {
                Source::Bars => &mut h.bars,
                Source::Input => &mut h.input,
                Source::Group => &mut h.group,
                Source::DeadLetters => &mut h.dead_letter_feed,
            } = feed;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_gets_the_board_then_each_change_once_framed_as_an_event() {
        let hub = Hub::new(About {
            brokers: "b:1".into(),
            topic: "bars".into(),
            input: "ticks".into(),
            group: "g".into(),
            dead_letters: "ticks.dlq".into(),
        });
        let (empty, mut changes) = hub.subscribe();
        assert!(empty.starts_with(b"event: snapshot\ndata: {"), "{empty:?}");
        assert!(empty.ends_with(b"}\n\n"), "{empty:?}");
        let payload = br#"{"symbol":"MSFT","window_start":"2026-01-01T00:00:00Z","window_end":"2026-01-01T00:00:10Z","open":1.0,"high":2.0,"low":0.5,"close":1.5,"volume":3,"trades":2,"vwap":1.25,"avg_price":1.25,"final":true}"#;
        let bar = crate::aggregate::bar::Bar::from_json(payload).unwrap();
        hub.bar(&bar);
        hub.bar(&bar);
        let event = changes.try_recv().unwrap();
        let expected = format!(
            "event: bar\ndata: {}\n\n",
            std::str::from_utf8(payload).unwrap()
        );
        assert_eq!(event, expected.as_bytes());
        assert!(
            changes.try_recv().is_err(),
            "the same bar again is no change"
        );
        let (now, _) = hub.subscribe();
        assert!(std::str::from_utf8(&now).unwrap().contains("\"MSFT\":[{"));
        let (again, _) = hub.subscribe();
        assert_eq!(
            now.as_ptr(),
            again.as_ptr(),
            "one snapshot until the next change"
        );
    }
}
