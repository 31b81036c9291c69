//! `--postgres`: the candles' history from what `store` keeps, so the charts reach back
//! further than the bars topic's retention. Loaded once at start, before the topic is read;
//! when PostgreSQL cannot be read, the page carries on with the topic alone and the log says
//! why.

use super::board::HISTORY;
use super::hub::Hub;
use super::LOG;
use crate::postgres::history::latest;
use crate::postgres::Postgres;

/// Feeds the newest `HISTORY` stored bars of every symbol to the board, oldest first.
pub fn load(pg: &Postgres, hub: &Hub) {
    let read = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(async {
                let client = pg.connect().await?;
                let asked = latest(&client, i64::try_from(HISTORY).unwrap_or(i64::MAX));
                tokio::time::timeout(pg.timeout, asked)
                    .await
                    .map_err(|_| anyhow::anyhow!("no answer within {:?}", pg.timeout))?
            })
        });
    match read {
        Ok(bars) => {
            for b in &bars {
                hub.bar(b);
            }
            super::metrics::history(bars.len());
            tracing::info!(target: LOG, "🗄️  {} bars of history from PostgreSQL at {}", bars.len(), pg.shown);
        }
        Err(e) => tracing::warn!(
            target: LOG,
            "reading the stored bars from PostgreSQL at {}: {e:#}; the charts start from the topic alone",
            pg.shown
        ),
    }
}
