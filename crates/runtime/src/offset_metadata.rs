//! Finished-above-the-watermark offsets carried in the commit metadata, so a
//! restart or a new owner of the partition does not process them again (as
//! Confluent's Parallel Consumer does).
//!
//! In key and unordered modes records finish out of order: when offset 100 is
//! still running, 101..=150 may be done already. Only 100 can be committed;
//! without more, the next owner would process 101..=150 a second time. The
//! committed offset's metadata string therefore carries a bitset of the
//! finished offsets above it: `sy1:` followed by base64 (URL-safe, no
//! padding) of bytes whose bit *i* (least significant first) says that offset
//! `committed + 1 + i` has finished.
//!
//! The encoding is bounded ([`MAX_METADATA_BYTES`]): when the finished
//! offsets spread further than fits, nothing is encoded and those records are
//! processed again after a hand-over (at-least-once, never loss).
//!
//! ```
//! use switchyard_runtime::offset_metadata::{encode, decode};
//! let m = encode(100, [101, 103, 150], 4096).unwrap();
//! assert_eq!(decode(100, &m), vec![101, 103, 150]);
//! assert_eq!(encode(100, [], 4096), None);
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Default bound of the metadata string (brokers accept 4096 by default).
pub const MAX_METADATA_BYTES: usize = 4000;

const PREFIX: &str = "sy1:";

/// Encode the finished offsets above `committed`; `None` when there are none
/// or they do not fit in `max_len` characters.
pub fn encode(
    committed: i64,
    done_above: impl IntoIterator<Item = i64>,
    max_len: usize,
) -> Option<String> {
    let rel: Vec<u64> = done_above
        .into_iter()
        .filter(|o| *o > committed)
        .map(|o| (o - committed - 1) as u64)
        .collect();
    let max_bit = *rel.iter().max()?;
    let bytes_needed = (max_bit / 8 + 1) as usize;
    if PREFIX.len() + bytes_needed.div_ceil(3) * 4 > max_len {
        return None;
    }
    let mut bits = vec![0u8; bytes_needed];
    for b in rel {
        bits[(b / 8) as usize] |= 1 << (b % 8);
    }
    Some(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bits)))
}

/// Decode what [`encode`] wrote for `committed`; anything else (foreign
/// metadata, corruption) decodes to nothing.
pub fn decode(committed: i64, metadata: &str) -> Vec<i64> {
    let Some(b64) = metadata.strip_prefix(PREFIX) else {
        return Vec::new();
    };
    let Ok(bits) = URL_SAFE_NO_PAD.decode(b64) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, byte) in bits.iter().enumerate() {
        for bit in 0..8 {
            if byte & (1 << bit) != 0 {
                out.push(committed + 1 + (i * 8 + bit) as i64);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bound() {
        let done: Vec<i64> = (1..1000).map(|i| 10 + i * 3).collect();
        let m = encode(10, done.clone(), 4096).unwrap();
        assert_eq!(decode(10, &m), done);
        assert_eq!(encode(10, [10 + 100_000], 4096), None, "too far to fit");
    }

    #[test]
    fn foreign_metadata_decodes_to_nothing() {
        assert!(decode(5, "").is_empty());
        assert!(decode(5, "hello").is_empty());
        assert!(decode(5, "sy1:***").is_empty());
    }
}
