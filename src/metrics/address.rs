//! `--metrics-addr HOST:PORT`: checked while clap parses (a malformed one is a usage error,
//! exit 2), and resolved then, so the server binds exactly what the user was told.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::str::FromStr;

const EXAMPLE: &str = "expected HOST:PORT, e.g. 127.0.0.1:9464, localhost:9464 or 0.0.0.0:9464";

/// Where metrics are served: the address as typed, and the socket address it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    typed: String,
    socket: SocketAddr,
}

impl Address {
    pub fn socket(&self) -> SocketAddr {
        self.socket
    }

    /// The URL to scrape, for the start-up line: the host as typed (a name stays a name).
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.typed)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.typed == self.socket.to_string() {
            write!(f, "{}", self.typed)
        } else {
            write!(f, "{} ({})", self.typed, self.socket)
        }
    }
}

impl FromStr for Address {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let typed = text.trim();
        let (host, port) = match typed.strip_prefix('[') {
            Some(v6) => {
                let (host, rest) = v6.split_once(']').ok_or_else(|| {
                    format!("`{typed}`: no `]` after an IPv6 address ({EXAMPLE})")
                })?;
                let port = rest
                    .strip_prefix(':')
                    .ok_or_else(|| format!("`{typed}`: no port ({EXAMPLE})"))?;
                (host, port)
            }
            None => typed
                .rsplit_once(':')
                .ok_or_else(|| format!("`{typed}`: no port ({EXAMPLE})"))?,
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("`{typed}`: no host ({EXAMPLE})"));
        }
        // Port 0 would listen on a port nobody is told of.
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(format!(
                "`{typed}`: the port `{port}` is not a number from 1 to 65535 ({EXAMPLE})"
            ));
        }
        let socket = typed
            .to_socket_addrs()
            .map_err(|e| format!("`{typed}`: {e} ({EXAMPLE})"))?
            .next()
            .ok_or_else(|| format!("`{typed}`: the host has no address ({EXAMPLE})"))?;
        Ok(Address {
            typed: typed.to_string(),
            socket,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_taken_as_typed() {
        let a: Address = "127.0.0.1:9464".parse().unwrap();
        assert_eq!(a.socket(), "127.0.0.1:9464".parse().unwrap());
        assert_eq!(a.url(), "http://127.0.0.1:9464/metrics");
        assert_eq!(a.to_string(), "127.0.0.1:9464");
        let a: Address = "[::1]:9464".parse().unwrap();
        assert_eq!(a.socket(), "[::1]:9464".parse().unwrap());
        let a: Address = "0.0.0.0:9464".parse().unwrap();
        assert!(a.socket().ip().is_unspecified());
        let a: Address = "localhost:9464".parse().unwrap();
        assert!(a.socket().ip().is_loopback(), "{a}");
        assert!(a.to_string().starts_with("localhost:9464 ("), "{a}");
    }

    #[test]
    fn a_malformed_address_says_what_is_wrong() {
        for (bad, says) in [
            ("9464", "no port"),
            ("localhost", "no port"),
            (":9464", "no host"),
            ("127.0.0.1:", "the port ``"),
            ("127.0.0.1:0", "the port `0`"),
            ("127.0.0.1:70000", "the port `70000`"),
            ("127.0.0.1:http", "the port `http`"),
            ("[::1:9464", "no `]`"),
            ("[::1]", "no port"),
        ] {
            let err = bad.parse::<Address>().unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
            assert!(err.contains("127.0.0.1:9464"), "{bad}: {err}");
        }
    }
}
