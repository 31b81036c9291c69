//! PostgreSQL: where `store` keeps bars and `history` reads them. Connecting (TLS as the
//! URL's sslmode says, the password never shown), the schema and its migrations, the
//! exactly-once write of bars with their offsets, and the queries of history.

pub mod bars;
pub mod db;
mod flag;
pub mod history;
pub mod schema;
pub mod url;

pub use db::Postgres;
pub use flag::{Flag, OptionalFlag};
