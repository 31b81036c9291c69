//! Everything stockstream says to librdkafka and hears back, by concern: the connection
//! chosen at start, the settings of each kind of client, what librdkafka reports while a
//! client works, and the first request that tells whether Kafka is there at all.

mod client;
mod connection;
mod flush;
pub mod library;
mod observer;
pub mod profile;
mod reach;
mod setting;

pub use client::{transaction_timeout, CreateClient, Kafka, ProducerProfile};
pub use connection::Connection;
pub use flush::{flush, flush_unless};
pub(crate) use observer::observed_context;
pub use observer::Observer;
pub use reach::reach;
pub use setting::{Setting, SettingParser};
