//! The schema stockstream keeps in PostgreSQL, created and migrated by itself: numbered SQL
//! files embedded in the binary, applied in order under a lock, each recorded in
//! `stockstream_schema`. A database whose schema is newer than this build knows is refused.

use anyhow::{bail, Context as _};
use tokio_postgres::Client;

use super::db::PgResult as _;

/// Every migration, in order: (version, SQL).
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("migrations/001_bars.sql"))];

/// The newest schema this build knows.
pub fn known() -> i32 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// Brings the schema up to date; returns (the version found, the version now).
pub async fn migrate(client: &mut Client, shown: &str) -> anyhow::Result<(i32, i32)> {
    let tx = client
        .transaction()
        .await
        .pg()
        .with_context(|| format!("starting the schema check on {shown}"))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS stockstream_schema (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         );
         LOCK TABLE stockstream_schema IN EXCLUSIVE MODE;",
    )
    .await
    .pg()
    .with_context(|| format!("creating or locking stockstream_schema on {shown}"))?;
    let found: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM stockstream_schema",
            &[],
        )
        .await
        .pg()?
        .get(0);
    if found > known() {
        bail!(
            "the database at {shown} has stockstream schema version {found}, newer than this \
             stockstream knows ({}): it was written by a newer stockstream\n  \
             hint: upgrade stockstream, or point --postgres at another database",
            known()
        );
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql)
            .await
            .pg()
            .with_context(|| format!("applying schema migration {version} on {shown}"))?;
        tx.execute(
            "INSERT INTO stockstream_schema (version) VALUES ($1)",
            &[version],
        )
        .await
        .pg()?;
    }
    tx.commit()
        .await
        .pg()
        .with_context(|| format!("committing the schema on {shown}"))?;
    Ok((found, known()))
}

/// Whether the bars table is there (`store` has run against this database).
pub async fn exists(client: &Client) -> anyhow::Result<bool> {
    let row = client
        .query_one("SELECT to_regclass('bars') IS NOT NULL", &[])
        .await
        .pg()?;
    Ok(row.get(0))
}
