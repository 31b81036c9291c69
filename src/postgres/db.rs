//! Connecting to PostgreSQL: the connection string's TLS settings applied (libpq's sslmode
//! meanings, verify-ca and verify-full included), a bound on how long connecting may take,
//! and errors that name the server (password hidden) and what to do.

use std::time::Duration;

use anyhow::{anyhow, Context as _};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;
use tokio_postgres::Client;

use super::url::{redact, SslMode, Target};
use crate::exit::Failure;

/// Where to find PostgreSQL, as the user gave it.
#[derive(Clone)]
pub struct Postgres {
    url: String,
    /// The URL as it may be shown: the password hidden.
    pub shown: String,
    /// The longest connecting (and each query of `history`) may take.
    pub timeout: Duration,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Postgres {
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<Postgres> {
        let shown = redact(url);
        Target::parse(url).map_err(|e| anyhow!("the PostgreSQL URL {shown}: {e}"))?;
        Ok(Postgres {
            url: url.to_string(),
            shown,
            timeout,
        })
    }

    /// A new connection, its background task spawned on the current runtime.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        let fail = |what: &str| format!("{what} PostgreSQL at {}", self.shown);
        let target = Target::parse(&self.url).map_err(|e| anyhow!("{}: {e}", fail("reaching")))?;
        let mut config: tokio_postgres::Config = target.config.parse().map_err(|e| {
            anyhow!(
                "the PostgreSQL URL {} is not understood: {e}\n  \
                 hint: postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=require",
                self.shown
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.timeout);
        }
        config.ssl_mode(match target.ssl {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        if config.get_application_name().is_none() {
            config.application_name("stockstream");
        }
        let tls = tls(&target).with_context(|| fail("setting up TLS to"))?;
        let connecting = config.connect(tls);
        let unreachable = |what: String, cause: String| {
            let hint = if cause.contains("certificate") {
                "sslrootcert must name the CA that signed the server's certificate \
                 (sslmode=verify-full also checks the host name against it; verify-ca does not)"
            } else {
                "is PostgreSQL running there, and are the user, password and database right? \
                 (scripts/postgres-local start runs one here; the URL comes from --postgres or \
                 STOCKSTREAM_POSTGRES_URL)"
            };
            Failure::PostgresUnreachable {
                what,
                cause,
                hint: hint.into(),
            }
        };
        let (client, connection) =
            tokio::time::timeout(self.timeout + Duration::from_secs(1), connecting)
                .await
                .map_err(|_| {
                    unreachable(
                        fail("reaching"),
                        format!(
                            "no answer within {}",
                            humantime::format_duration(self.timeout)
                        ),
                    )
                })?
                .map_err(|e| unreachable(fail("connecting to"), cause(&e)))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(target: "stockstream", "the PostgreSQL connection ended: {e}");
            }
        });
        Ok(client)
    }
}

/// A tokio-postgres error with its cause (its Display alone says only "db error").
pub fn cause(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

fn tls(target: &Target) -> anyhow::Result<MakeTlsConnector> {
    let mut builder = SslConnector::builder(SslMethod::tls_client())?;
    if let Some(ca) = &target.root_cert {
        builder
            .set_ca_file(ca)
            .with_context(|| format!("reading the root certificate {}", ca.display()))?;
    }
    let verify = matches!(target.ssl, SslMode::VerifyCa | SslMode::VerifyFull);
    if !verify {
        builder.set_verify(SslVerifyMode::NONE);
    }
    let mut tls = MakeTlsConnector::new(builder.build());
    if target.ssl != SslMode::VerifyFull {
        tls.set_callback(|config, _| {
            config.set_verify_hostname(false);
            Ok(())
        });
    }
    Ok(tls)
}

/// A PostgreSQL error in the server's own words, and whether trying again (on a new
/// connection) may help.
#[derive(Debug)]
pub struct PgError {
    text: String,
    pub retriable: bool,
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for PgError {}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> PgError {
        // Connection trouble (08), the server shutting down or starting (57), out of
        // resources (53) and transaction conflicts (40) pass; a refused statement does not.
        let retriable = e
            .as_db_error()
            .is_none_or(|db| matches!(&db.code().code()[..2], "08" | "57" | "53" | "40"));
        PgError {
            text: cause(&e),
            retriable,
        }
    }
}

/// Whether an error is one trying again may cure (anything but a refused statement).
pub fn retriable(e: &anyhow::Error) -> bool {
    e.downcast_ref::<PgError>().is_none_or(|pg| pg.retriable)
}

/// tokio-postgres results with the server's own words in the error.
pub trait PgResult<T> {
    fn pg(self) -> anyhow::Result<T>;
}

impl<T> PgResult<T> for Result<T, tokio_postgres::Error> {
    fn pg(self) -> anyhow::Result<T> {
        self.map_err(|e| anyhow::Error::new(PgError::from(e)))
    }
}
