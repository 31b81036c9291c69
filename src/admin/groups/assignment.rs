//! A group member's assignment as the broker hands it over: the bytes of Kafka's consumer
//! protocol (`ConsumerProtocolAssignment`), which the old ListGroups/DescribeGroups answer
//! carries undecoded. Decoded here, with no I/O, so it is tested with plain bytes.

use std::collections::BTreeMap;

/// The partitions assigned to one member, by topic (topics sorted, partitions sorted).
pub type Assignment = BTreeMap<String, Vec<i32>>;

/// Reads `ConsumerProtocolAssignment` (versions 0 to 3 share its layout, big-endian):
/// version (int16), then an array (int32 count) of topic (int16 length + UTF-8) with an
/// array (int32 count) of partitions (int32), then user data (int32 length, −1 for none),
/// which is not needed and not read. An empty buffer (a member between two rebalances)
/// is an empty assignment; anything malformed is `None`.
pub fn decode(bytes: &[u8]) -> Option<Assignment> {
    let mut out = Assignment::new();
    if bytes.is_empty() {
        return Some(out);
    }
    let mut r = Reader(bytes);
    let version = r.i16()?;
    if version < 0 {
        return None;
    }
    for _ in 0..r.count()? {
        let length = usize::try_from(r.i16()?).ok()?;
        let topic = std::str::from_utf8(r.take(length)?).ok()?.to_string();
        let mut partitions = Vec::new();
        for _ in 0..r.count()? {
            partitions.push(r.i32()?);
        }
        let entry = out.entry(topic).or_default();
        entry.extend(partitions);
        entry.sort_unstable();
        entry.dedup();
    }
    Some(out)
}

/// A cursor over the bytes: each read fails (`None`) past their end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// An array's element count; a negative one (a null array) counts as none. A count
    /// larger than what the bytes could hold fails before anything is allocated.
    fn count(&mut self) -> Option<usize> {
        let n = usize::try_from(self.i32()?.max(0)).ok()?;
        (n <= self.0.len()).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes Kafka's Java client writes for `topics`, with `user_data`.
    fn encode(version: i16, topics: &[(&str, &[i32])], user_data: Option<&[u8]>) -> Vec<u8> {
        let mut out = version.to_be_bytes().to_vec();
        out.extend(i32::try_from(topics.len()).unwrap().to_be_bytes());
        for (topic, partitions) in topics {
            out.extend(i16::try_from(topic.len()).unwrap().to_be_bytes());
            out.extend(topic.as_bytes());
            out.extend(i32::try_from(partitions.len()).unwrap().to_be_bytes());
            for p in *partitions {
                out.extend(p.to_be_bytes());
            }
        }
        match user_data {
            Some(d) => {
                out.extend(i32::try_from(d.len()).unwrap().to_be_bytes());
                out.extend(d);
            }
            None => out.extend((-1i32).to_be_bytes()),
        }
        out
    }

    #[test]
    fn topics_and_partitions_are_read_in_order() {
        let bytes = encode(1, &[("ticks", &[3, 0, 1]), ("bars", &[2])], Some(b"x"));
        let a = decode(&bytes).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a["ticks"], vec![0, 1, 3]);
        assert_eq!(a["bars"], vec![2]);
        assert_eq!(a.keys().collect::<Vec<_>>(), ["bars", "ticks"]);
    }

    #[test]
    fn every_version_and_no_user_data_decode_alike() {
        for version in 0..=3 {
            let bytes = encode(version, &[("t", &[0])], None);
            assert_eq!(decode(&bytes).unwrap()["t"], vec![0], "v{version}");
        }
    }

    #[test]
    fn an_empty_assignment_is_no_partitions() {
        assert!(decode(&[]).unwrap().is_empty());
        assert!(decode(&encode(0, &[], None)).unwrap().is_empty());
    }

    #[test]
    fn truncated_or_malformed_bytes_are_refused_not_misread() {
        let bytes = encode(0, &[("ticks", &[0, 1])], None);
        // Cut anywhere before the user data: the partitions are incomplete.
        for cut in 1..bytes.len() - 4 {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
        }
        assert_eq!(decode(&encode(-1, &[], None)), None, "a negative version");
        // A count far larger than the bytes: refused, not allocated.
        let mut huge = 0i16.to_be_bytes().to_vec();
        huge.extend(i32::MAX.to_be_bytes());
        assert_eq!(decode(&huge), None);
        let mut bad_utf8 = 0i16.to_be_bytes().to_vec();
        bad_utf8.extend(1i32.to_be_bytes());
        bad_utf8.extend(1i16.to_be_bytes());
        bad_utf8.push(0xff);
        bad_utf8.extend(0i32.to_be_bytes());
        assert_eq!(decode(&bad_utf8), None);
    }
}
