//! The dead-letter record, one shape for every command that writes one (`aggregate`,
//! `store`): the original key and value, and headers saying why and where from. A value
//! (or key) too large for the dead-letter topic is cut to fit, and the headers say so.

use rdkafka::message::{Header, OwnedHeaders};

/// Room a record needs besides its key, value and header bytes: the batch header (61
/// bytes), the record's own varints, one per header, with a wide margin.
pub const RECORD_OVERHEAD: usize = 512;

/// The record that could not be handled, and where it was read.
pub struct Source<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// A record for the dead-letter topic.
pub struct DeadLetter {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: OwnedHeaders,
}

impl DeadLetter {
    /// `reason`: a short stable code (`invalid_json`); `message`: what was wrong, for people.
    /// The whole record fits `max_bytes` (the topic's max.message.bytes).
    pub fn new(source: Source<'_>, reason: &str, message: &str, max_bytes: usize) -> DeadLetter {
        let partition = source.partition.to_string();
        let offset = source.offset.to_string();
        let header = |key, value| Header {
            key,
            value: Some(value),
        };
        let mut headers = OwnedHeaders::new()
            .insert(header("stockstream.error.reason", reason))
            .insert(header("stockstream.error.message", message))
            .insert(header("stockstream.source.topic", source.topic))
            .insert(header("stockstream.source.partition", partition.as_str()))
            .insert(header("stockstream.source.offset", offset.as_str()));
        let (value, key) = (
            source.value.unwrap_or_default(),
            source.key.unwrap_or_default(),
        );
        let fit = fit_dead_letter(max_bytes, &headers, key.len(), value.len());
        let sizes = (value.len().to_string(), key.len().to_string());
        if fit.value < value.len() || fit.key < key.len() {
            headers = headers
                .insert(header("stockstream.error.truncated", "true"))
                .insert(header("stockstream.source.size", sizes.0.as_str()));
            if fit.key < key.len() {
                headers = headers.insert(header("stockstream.source.key_size", sizes.1.as_str()));
            }
        }
        DeadLetter {
            key: source.key.map(|_| key[..fit.key].to_vec()),
            value: source.value.map(|_| value[..fit.value].to_vec()),
            headers,
        }
    }
}

/// How many bytes of a dead letter's value and key to keep.
#[derive(Debug, PartialEq, Eq)]
struct Fit {
    value: usize,
    key: usize,
}

/// Keeps as much of the value (then of the key) as fits `max_bytes` beside the headers,
/// counting the two headers a cut adds.
fn fit_dead_letter(max_bytes: usize, headers: &OwnedHeaders, key: usize, value: usize) -> Fit {
    use rdkafka::message::Headers as _;
    let header_bytes: usize = headers
        .iter()
        .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
        .sum();
    let room = max_bytes.saturating_sub(header_bytes + RECORD_OVERHEAD);
    if key + value <= room {
        return Fit { value, key };
    }
    // Room for the headers a cut adds (truncated, the sizes); a key is kept up to 1 KiB.
    let room = room.saturating_sub(100);
    let key = key.min(1024).min(room);
    Fit {
        value: value.min(room - key),
        key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(bytes: usize) -> OwnedHeaders {
        OwnedHeaders::new().insert(Header {
            key: "h",
            value: Some(&vec![b'x'; bytes - 1][..]),
        })
    }

    #[test]
    fn a_dead_letter_that_fits_is_kept_whole() {
        let whole = fit_dead_letter(1_000_000, &headers(200), 4, 70_000);
        assert_eq!(
            whole,
            Fit {
                value: 70_000,
                key: 4
            }
        );
    }

    #[test]
    fn a_large_value_is_cut_to_what_fits_beside_the_headers() {
        let fit = fit_dead_letter(1_000_000, &headers(300), 4, 1_048_576);
        assert_eq!(fit.key, 4);
        assert_eq!(fit.value, 1_000_000 - 300 - 512 - 100 - 4);
    }

    #[test]
    fn a_large_key_is_cut_too() {
        let fit = fit_dead_letter(10_000, &headers(300), 50_000, 50_000);
        assert_eq!(fit.key, 1024);
        assert_eq!(fit.value, 10_000 - 300 - 512 - 100 - 1024);
        // Headers that fill the whole topic limit leave nothing, and nothing underflows.
        assert_eq!(
            fit_dead_letter(200, &headers(300), 10, 10),
            Fit { value: 0, key: 0 }
        );
    }
}
