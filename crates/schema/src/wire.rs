//! The Confluent wire format: magic byte `0`, the schema id as 4 bytes big
//! endian, then the payload; Protobuf puts the message indexes (which message
//! of the schema's file) between the id and the payload.
//!
//! ```
//! use switchyard_schema::wire::{split, message_indexes};
//! let framed = [0u8, 0, 0, 1, 7, b'x'];
//! let (id, rest) = split(&framed).unwrap();
//! assert_eq!((id, rest), (263, &b"x"[..]));
//! // Protobuf: a single 0 byte stands for [0], the first message of the file
//! assert_eq!(message_indexes(&[0, 8, 5]).unwrap(), (vec![0], &[8u8, 5][..]));
//! // otherwise a count, then the indexes, each a zigzag varint: [1, 0]
//! assert_eq!(message_indexes(&[4, 2, 0, 8]).unwrap(), (vec![1, 0], &[8u8][..]));
//! ```

use crate::error::{FailureKind, SchemaError};

/// The first byte of every framed record.
pub const MAGIC: u8 = 0;
/// Magic byte and schema id.
pub const HEADER_LEN: usize = 5;

/// Split a framed payload into its schema id and the rest.
pub fn split(data: &[u8]) -> Result<(u32, &[u8]), SchemaError> {
    match data.first() {
        None => Err(SchemaError::new(
            FailureKind::WrongMagicByte,
            "empty payload, expected magic byte 0 and a schema id",
        )),
        Some(&b) if b != MAGIC => Err(SchemaError::new(
            FailureKind::WrongMagicByte,
            format!("first byte is {b:#04x}, expected magic byte 0x00 (Confluent wire format)"),
        )),
        Some(_) if data.len() < HEADER_LEN => Err(SchemaError::new(
            FailureKind::Truncated,
            format!(
                "{} bytes, shorter than the 5-byte wire-format header",
                data.len()
            ),
        )),
        Some(_) => {
            let id = u32::from_be_bytes([data[1], data[2], data[3], data[4]]);
            Ok((id, &data[HEADER_LEN..]))
        }
    }
}

/// Frame `payload` with `id` (for tests and tools; producers normally do this).
pub fn frame(id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.push(MAGIC);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Read the Protobuf message indexes after the schema id: the path of the
/// message in the schema's file (top-level index, then nested indexes).
pub fn message_indexes(data: &[u8]) -> Result<(Vec<usize>, &[u8]), SchemaError> {
    let (count, mut rest) = zigzag(data)?;
    if count == 0 {
        // the common case, written as one byte: the first message of the file
        return Ok((vec![0], rest));
    }
    if count < 0 || count as usize > rest.len() {
        return Err(SchemaError::new(
            FailureKind::Truncated,
            format!("invalid Protobuf message index count {count}"),
        ));
    }
    let mut indexes = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let (i, after) = zigzag(rest)?;
        if i < 0 {
            return Err(SchemaError::new(
                FailureKind::Truncated,
                format!("negative Protobuf message index {i}"),
            ));
        }
        indexes.push(i as usize);
        rest = after;
    }
    Ok((indexes, rest))
}

/// Encode message indexes as the Confluent serializers do.
pub fn encode_message_indexes(indexes: &[usize]) -> Vec<u8> {
    if indexes == [0] {
        return vec![0];
    }
    let mut out = Vec::new();
    put_zigzag(&mut out, indexes.len() as i64);
    for &i in indexes {
        put_zigzag(&mut out, i as i64);
    }
    out
}

fn zigzag(data: &[u8]) -> Result<(i64, &[u8]), SchemaError> {
    let mut value: u64 = 0;
    for (n, &b) in data.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * n);
        if b & 0x80 == 0 {
            let decoded = ((value >> 1) as i64) ^ -((value & 1) as i64);
            return Ok((decoded, &data[n + 1..]));
        }
    }
    Err(SchemaError::new(
        FailureKind::Truncated,
        "truncated varint in the Protobuf message indexes",
    ))
}

fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (u & 0x7f) as u8;
        u >>= 7;
        if u == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_magic_and_short_headers_are_named() {
        assert_eq!(
            split(b"{\"id\":1}").unwrap_err().kind,
            FailureKind::WrongMagicByte
        );
        assert_eq!(split(&[]).unwrap_err().kind, FailureKind::WrongMagicByte);
        assert_eq!(split(&[0, 0, 1]).unwrap_err().kind, FailureKind::Truncated);
    }

    #[test]
    fn frame_round_trips() {
        let f = frame(0x01020304, b"abc");
        assert_eq!(split(&f).unwrap(), (0x01020304, &b"abc"[..]));
    }

    #[test]
    fn message_indexes_round_trip() {
        for idx in [vec![0], vec![1], vec![0, 2], vec![3, 1, 70], vec![200]] {
            let mut data = encode_message_indexes(&idx);
            data.extend_from_slice(b"p");
            let (got, rest) = message_indexes(&data).unwrap();
            assert_eq!((got, rest), (idx, &b"p"[..]));
        }
    }

    #[test]
    fn bad_message_indexes_are_truncated_errors() {
        assert_eq!(
            message_indexes(&[0x80]).unwrap_err().kind,
            FailureKind::Truncated
        );
        assert_eq!(
            message_indexes(&[20, 2]).unwrap_err().kind,
            FailureKind::Truncated
        );
        assert_eq!(
            message_indexes(&[1]).unwrap_err().kind,
            FailureKind::Truncated
        );
    }
}
