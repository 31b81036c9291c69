//! Where the feeds (threads reading Kafka) meet the browser streams (tasks on the async
//! runtime): the board behind one lock, and a broadcast channel of ready-made events. A
//! change is applied and announced under the lock, and a new stream takes its snapshot and
//! subscribes under it too: no stream misses a change or sees one twice.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use super::board::{About, Board, Feed, Health};
use crate::aggregate::bar::Bar;
use crate::record::StockRecord;

/// Events a slow stream may fall behind by before it is sent a fresh snapshot instead.
const BACKLOG: usize = 4096;

/// One server-sent event: its type and its JSON.
#[derive(Debug)]
pub struct Message {
    pub kind: &'static str,
    pub data: String,
}

impl Message {
    fn new(kind: &'static str, value: &impl serde::Serialize) -> Arc<Message> {
        Arc::new(Message {
            kind,
            // Maps of strings and numbers always serialize.
            data: serde_json::to_string(value).unwrap_or_default(),
        })
    }
}

pub struct Hub {
    board: Mutex<Board>,
    events: broadcast::Sender<Arc<Message>>,
    about: About,
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
            board: Mutex::new(Board::default()),
            events: broadcast::channel(BACKLOG).0,
            about,
        })
    }

    pub fn about(&self) -> &About {
        &self.about
    }

    fn board(&self) -> MutexGuard<'_, Board> {
        // A feed that panicked left a board that is still whole: every change is one call.
        self.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The board as a first event, and the events from then on.
    pub fn subscribe(&self) -> (Arc<Message>, broadcast::Receiver<Arc<Message>>) {
        let board = self.board();
        let snapshot = Message::new("snapshot", &board.snapshot(&self.about));
        (snapshot, self.events.subscribe())
    }

    /// The board as JSON (`/api/state`).
    pub fn snapshot(&self) -> serde_json::Value {
        self.board().snapshot(&self.about)
    }

    fn announce(&self, message: Arc<Message>) {
        // No stream open: nobody to tell.
        let _ = self.events.send(message);
    }

    pub fn bar(&self, bar: &Bar) {
        let mut board = self.board();
        if board.bar(bar) {
            let data = String::from_utf8_lossy(&bar.to_json()).into_owned();
            self.announce(Arc::new(Message { kind: "bar", data }));
        }
    }

    /// Takes the ticks in; the page hears of the last ticks once, if any was new.
    pub fn ticks(&self, ticks: impl IntoIterator<Item = StockRecord>) {
        let mut board = self.board();
        let mut changed = false;
        for t in ticks {
            changed |= board.tick(t);
        }
        if changed {
            self.announce(Message::new("ticks", &board.ticks()));
        }
    }

    /// Changes the health; the page hears of it if it changed.
    pub fn health(&self, change: impl FnOnce(&mut Health)) {
        let mut board = self.board();
        let before = board.health.clone();
        change(&mut board.health);
        if board.health != before {
            self.announce(Message::new("health", &board.health));
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
