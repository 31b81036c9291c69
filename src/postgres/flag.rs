//! `--postgres URL` (or `STOCKSTREAM_POSTGRES_URL`): the PostgreSQL where `store` keeps the
//! bars, one flag for every command that reaches it. `store` and `history` cannot do
//! without it; the dashboard reads the history from it when it is given.

use std::time::Duration;

use super::Postgres;

/// What the flag takes, said once for every command.
const FORM: &str = "a URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE, TLS as its sslmode \
    says: disable, prefer, require, verify-ca, verify-full with sslrootcert) or libpq's \
    key=value settings. The password is never printed";

fn required_help() -> String {
    format!("PostgreSQL where `stockstream store` keeps the bars: {FORM}")
}

fn optional_help() -> String {
    format!(
        "Also load the history from the PostgreSQL where `stockstream store` keeps the bars, \
         so it reaches back further than the topic keeps bars: {FORM}"
    )
}

/// `--postgres`, for the commands that need PostgreSQL.
// No argument group: clap would name it after the struct, and `metrics::Flag` is there too.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct Flag {
    // The help is `required_help()`: the text is shared with `OptionalFlag`.
    #[arg(
        id = "postgres",
        long = "postgres",
        env = "STOCKSTREAM_POSTGRES_URL",
        value_name = "URL",
        hide_env_values = true,
        help = required_help()
    )]
    url: String,
}

impl Flag {
    /// The PostgreSQL named, its connection string checked; `timeout` bounds connecting.
    pub fn postgres(&self, timeout: Duration) -> anyhow::Result<Postgres> {
        Postgres::new(&self.url, timeout)
    }
}

/// `--postgres`, for the commands that can do without PostgreSQL.
#[derive(Debug, Clone, clap::Args)]
#[group(skip)]
pub struct OptionalFlag {
    // The help is `optional_help()`: the text is shared with `Flag`.
    #[arg(
        id = "postgres",
        long = "postgres",
        env = "STOCKSTREAM_POSTGRES_URL",
        value_name = "URL",
        hide_env_values = true,
        help = optional_help()
    )]
    url: Option<String>,
}

impl OptionalFlag {
    /// The PostgreSQL named, if any, as `Flag::postgres`.
    pub fn postgres(&self, timeout: Duration) -> anyhow::Result<Option<Postgres>> {
        self.url
            .as_deref()
            .map(|url| Postgres::new(url, timeout))
            .transpose()
    }
}
