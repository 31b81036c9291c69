//! A PostgreSQL connection string as the user gives it (a `postgres://` URL or libpq's
//! `key=value` form): split into what tokio-postgres reads and the TLS settings it does not
//! (`sslmode=verify-ca|verify-full`, `sslrootcert`), and shown with its password hidden.

use std::path::PathBuf;

/// How TLS is used, as libpq's `sslmode` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// TLS when the server offers it (libpq's default, and `allow`).
    Prefer,
    /// TLS, the server's certificate not checked.
    Require,
    /// TLS with a certificate signed by the root certificate (`sslrootcert`).
    VerifyCa,
    /// As `VerifyCa`, and the certificate names the host connected to.
    VerifyFull,
}

/// A connection string taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What tokio-postgres parses: the string without the TLS settings it does not know.
    pub config: String,
    pub ssl: SslMode,
    pub root_cert: Option<PathBuf>,
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, String> {
        let mut ssl = SslMode::Prefer;
        let mut root_cert = None;
        let mut take = |key: &str, value: &str| -> Result<bool, String> {
            match key {
                "sslmode" => {
                    ssl = match value {
                        "disable" => SslMode::Disable,
                        "allow" | "prefer" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        "verify-ca" => SslMode::VerifyCa,
                        "verify-full" => SslMode::VerifyFull,
                        other => {
                            return Err(format!(
                                "sslmode `{other}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                            ))
                        }
                    };
                    Ok(true)
                }
                "sslrootcert" => {
                    root_cert = Some(PathBuf::from(percent_decode(value)));
                    Ok(true)
                }
                _ => Ok(false),
            }
        };
        let config = if is_url(text) {
            let (base, query) = text.split_once('?').unwrap_or((text, ""));
            let mut kept = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                if !take(key, value)? {
                    kept.push(pair);
                }
            }
            if kept.is_empty() {
                base.to_string()
            } else {
                format!("{base}?{}", kept.join("&"))
            }
        } else {
            let mut kept = Vec::new();
            for pair in text.split_whitespace() {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                if !take(key.trim(), value.trim_matches('\''))? {
                    kept.push(pair);
                }
            }
            kept.join(" ")
        };
        Ok(Target {
            config,
            ssl,
            root_cert,
        })
    }
}

fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// The connection string with its password replaced by `***`: the only form in which it
/// is ever printed.
pub fn redact(text: &str) -> String {
    if is_url(text) {
        let (scheme, rest) = text.split_once("://").unwrap_or(("", text));
        let (authority, tail) = match rest.find(['/', '?']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let authority = match authority.rsplit_once('@') {
            Some((user, host)) => match user.split_once(':') {
                Some((name, _)) => format!("{name}:***@{host}"),
                None => format!("{user}@{host}"),
            },
            None => authority.to_string(),
        };
        let tail: Vec<String> = match tail.split_once('?') {
            Some((path, query)) => {
                let pairs: Vec<String> = query
                    .split('&')
                    .map(|p| match p.split_once('=') {
                        Some(("password", _)) => "password=***".to_string(),
                        _ => p.to_string(),
                    })
                    .collect();
                vec![path.to_string(), pairs.join("&")]
            }
            None => vec![tail.to_string()],
        };
        return format!("{scheme}://{authority}{}", tail.join("?"));
    }
    text.split_whitespace()
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_string(),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `%xx` escapes decoded (a path in a URL's query).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_of_a_url_is_hidden() {
        assert_eq!(
            redact("postgres://bob:s3cret@db:5432/bars?sslmode=require"),
            "postgres://bob:***@db:5432/bars?sslmode=require"
        );
        assert_eq!(
            redact("postgresql://bob@db/bars?password=s3cret&x=1"),
            "postgresql://bob@db/bars?password=***&x=1"
        );
        assert_eq!(redact("postgres://db"), "postgres://db");
        // An @ in the password: the last @ ends the user part.
        assert_eq!(
            redact("postgres://bob:p@ss@db/x"),
            "postgres://bob:***@db/x"
        );
    }

    #[test]
    fn the_password_of_key_value_settings_is_hidden() {
        assert_eq!(
            redact("host=db user=bob password=s3cret dbname=bars"),
            "host=db user=bob password=*** dbname=bars"
        );
    }

    #[test]
    fn tls_settings_tokio_postgres_does_not_know_are_taken_out() {
        let t = Target::parse(
            "postgres://bob:pw@db/bars?sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(t.config, "postgres://bob:pw@db/bars?application_name=x");
        assert_eq!(t.ssl, SslMode::VerifyFull);
        assert_eq!(t.root_cert, Some(PathBuf::from("/tmp/ca.pem")));
        let t = Target::parse("host=db sslmode=require user=bob").unwrap();
        assert_eq!(t.config, "host=db user=bob");
        assert_eq!(t.ssl, SslMode::Require);
        assert_eq!(Target::parse("postgres://db").unwrap().ssl, SslMode::Prefer);
        assert!(Target::parse("postgres://db?sslmode=always")
            .unwrap_err()
            .contains("verify-full"));
    }
}
