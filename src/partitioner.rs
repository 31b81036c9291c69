//! Where a keyed record lands: Kafka's default partitioner (the Java client's, kafka-python's,
//! and librdkafka's `murmur2_random`, which stockstream's producers use), so that stockstream
//! can say in advance which partition a key goes to, and show the arithmetic.

use crate::record::Symbol;

/// Kafka's seed for `Utils.murmur2`.
const SEED: u32 = 0x9747_b28c;

/// Each step of placing one key, for showing the arithmetic as well as the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The raw 32-bit murmur2 hash of the key.
    pub hash: u32,
    /// The hash with its sign bit cleared (Kafka's `toPositive`).
    pub positive: u32,
    /// `positive % partitions`.
    pub partition: i32,
}

impl Placement {
    /// The hash as Java prints it (a signed int), as in Kafka's own tests and tools.
    pub fn signed_hash(self) -> i32 {
        i32::from_ne_bytes(self.hash.to_ne_bytes())
    }
}

/// Places `key` on a topic of `partitions` partitions as Kafka's default partitioner does.
/// `None` for a topic without partitions, where no key can land.
pub fn place(key: &[u8], partitions: usize) -> Option<Placement> {
    let count = u32::try_from(partitions).ok().filter(|&n| n > 0)?;
    let hash = murmur2(key);
    // `toPositive`, not `abs`: abs(i32::MIN) would overflow, and Kafka clears the bit.
    let positive = hash & 0x7fff_ffff;
    let partition = i32::try_from(positive % count).ok()?;
    Some(Placement {
        hash,
        positive,
        partition,
    })
}

/// The symbols each partition of a topic of `partitions` partitions gets, by partition:
/// how evenly (or not) the seven keys spread.
pub fn symbols_by_partition(partitions: usize) -> Vec<Vec<Symbol>> {
    let mut lanes = vec![Vec::new(); partitions];
    for symbol in Symbol::ALL {
        let lane = place(symbol.as_str().as_bytes(), partitions)
            .and_then(|p| usize::try_from(p.partition).ok());
        if let Some(lane) = lane {
            lanes[lane].push(symbol);
        }
    }
    lanes
}

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 over the key bytes with Kafka's seed,
/// little-endian 4-byte blocks and the tail folded in as Java's switch fall-through does.
pub fn murmur2(key: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Java hashes an `int` length; keys are far below 2 GiB, and Kafka truncates the same way.
    let mut h = SEED ^ (key.len() as u32);
    let blocks = key.chunks_exact(4);
    let tail = blocks.remainder();
    for block in blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    // Java's switch falls through from the third tail byte down to the first.
    let folded = match *tail {
        [a, b, c] => Some((u32::from(c) << 16) ^ (u32::from(b) << 8) ^ u32::from(a)),
        [a, b] => Some((u32::from(b) << 8) ^ u32::from(a)),
        [a] => Some(u32::from(a)),
        _ => None,
    };
    if let Some(bytes) = folded {
        h = (h ^ bytes).wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_reference_values() {
        // Kafka's own UtilsTest.testMurmur2, which prints the hash as a signed int.
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for (key, expected) in cases {
            let placement = place(key.as_bytes(), 1).unwrap();
            assert_eq!(placement.signed_hash(), expected, "{key}");
        }
    }

    #[test]
    fn the_symbols_land_where_the_java_client_puts_them() {
        // Hash and partitions (of 3 and of 5) from Kafka 4.1.1's Utils.murmur2 and
        // toPositive; "a", "abcde" and "abcdefg" cover the one- and three-byte tails.
        let cases: [(&str, i32, i32, i32); 10] = [
            ("AAPL", 1_691_292_177, 0, 2),
            ("GOOGL", 282_752_101, 1, 1),
            ("AMZN", -1_488_710_007, 2, 1),
            ("MSFT", -1_895_496_446, 0, 2),
            ("TSLA", 866_263_391, 2, 1),
            ("META", -1_694_578_004, 0, 4),
            ("NFLX", -2_113_184_092, 1, 1),
            ("a", -1_563_381_124, 1, 4),
            ("abcde", 461_995_741, 1, 1),
            ("abcdefg", -346_467_175, 1, 3),
        ];
        for (key, hash, of3, of5) in cases {
            let three = place(key.as_bytes(), 3).unwrap();
            assert_eq!((three.signed_hash(), three.partition), (hash, of3), "{key}");
            assert_eq!(place(key.as_bytes(), 5).unwrap().partition, of5, "{key}");
        }
    }

    #[test]
    fn the_partition_is_the_positive_hash_modulo_the_count() {
        // "21" hashes to a negative int: the sign bit is cleared, not negated.
        let p = place(b"21", 5).unwrap();
        assert_eq!(p.positive, p.hash & 0x7fff_ffff);
        assert_ne!(i64::from(p.positive), i64::from(p.signed_hash()).abs());
        assert_eq!(i64::from(p.partition), i64::from(p.positive % 5));
        for n in 1..=64 {
            let p = place(b"AAPL", n).unwrap();
            assert!((0..i32::try_from(n).unwrap()).contains(&p.partition));
        }
    }

    #[test]
    fn five_partitions_leave_two_without_a_symbol() {
        use Symbol::*;
        assert_eq!(
            symbols_by_partition(5),
            [
                vec![],
                vec![GOOGL, AMZN, TSLA, NFLX],
                vec![AAPL, MSFT],
                vec![],
                vec![META]
            ]
        );
        assert_eq!(
            symbols_by_partition(3),
            [vec![AAPL, MSFT, META], vec![GOOGL, NFLX], vec![AMZN, TSLA]]
        );
        assert!(symbols_by_partition(0).is_empty());
    }

    #[test]
    fn no_partitions_no_placement() {
        assert_eq!(place(b"AAPL", 0), None);
    }
}
