//! The ConsumerProtocol assignment encoding: what a classic group's member
//! holds, as DescribeGroups returns it (raw bytes per member). Decoded here
//! for the description of groups, which covers groups of both protocols and
//! re-exports [`decode_assignment`].

use crate::error::GroupError;

/// Decode a ConsumerProtocol assignment (a classic member's assignment bytes
/// from DescribeGroups): version `i16`, then an array (`i32` count) of topic
/// (`i16` length + UTF-8) with an array (`i32` count) of `i32` partitions,
/// all big-endian; trailing user data is ignored.
///
/// ```
/// use switchyard_admin::group::decode_assignment;
/// let mut b = vec![0, 1, 0, 0, 0, 1, 0, 6];
/// b.extend_from_slice(b"orders");
/// b.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3]);
/// b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // no user data
/// assert_eq!(decode_assignment(&b).unwrap(), vec![("orders".to_string(), vec![0, 3])]);
/// assert!(decode_assignment(&[0, 1, 0]).is_err());
/// ```
pub fn decode_assignment(bytes: &[u8]) -> Result<Vec<(String, Vec<i32>)>, GroupError> {
    let mut r = Reader { bytes, at: 0 };
    let _version = r.i16()?;
    let topics = r.i32()?;
    let mut out = Vec::new();
    for _ in 0..topics.max(0) {
        let len = r.i16()?;
        let name = r.take(len.max(0) as usize)?;
        let name = String::from_utf8(name.to_vec())
            .map_err(|_| GroupError::Assignment("topic name is not UTF-8".into()))?;
        let n = r.i32()?;
        let mut ps = Vec::with_capacity(n.clamp(0, 1 << 16) as usize);
        for _ in 0..n.max(0) {
            ps.push(r.i32()?);
        }
        out.push((name, ps));
    }
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], GroupError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end =
            end.ok_or_else(|| GroupError::Assignment(format!("truncated at byte {}", self.at)))?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn i16(&mut self) -> Result<i16, GroupError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, GroupError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut b = 3i16.to_be_bytes().to_vec();
        b.extend((topics.len() as i32).to_be_bytes());
        for (t, ps) in topics {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
            b.extend((ps.len() as i32).to_be_bytes());
            for p in *ps {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend(4i32.to_be_bytes());
        b.extend(b"user");
        b
    }

    #[test]
    fn decodes_several_topics_and_ignores_user_data() {
        let b = encode(&[("a", &[0, 1]), ("bb", &[]), ("c", &[7])]);
        assert_eq!(
            decode_assignment(&b).unwrap(),
            vec![
                ("a".into(), vec![0, 1]),
                ("bb".into(), vec![]),
                ("c".into(), vec![7])
            ]
        );
    }

    #[test]
    fn truncated_bytes_are_an_error() {
        let b = encode(&[("orders", &[0, 1, 2])]);
        for cut in [1, 5, 9, 14, 20] {
            assert!(decode_assignment(&b[..cut]).is_err(), "cut at {cut}");
        }
    }
}
