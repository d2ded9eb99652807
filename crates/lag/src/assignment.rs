//! The ConsumerProtocol assignment that DescribeGroups returns for each
//! member of a classic consumer group (`member_assignment`): which partitions
//! the member holds. The decoder is `switchyard-admin`'s
//! ([`switchyard_admin::group::decode_assignment`]), which describes groups
//! for this crate; here with this crate's error.

use crate::LagError;

/// Decode a ConsumerProtocol assignment (the `member_assignment` bytes of
/// DescribeGroups): version `i16`, then an array (`i32` count) of topic
/// (`i16` length + UTF-8) with an array (`i32` count) of `i32` partitions,
/// all big-endian; trailing user data is ignored.
///
/// ```
/// use switchyard_lag::assignment::decode_assignment;
/// let mut b = vec![0, 1, 0, 0, 0, 1, 0, 6];
/// b.extend_from_slice(b"orders");
/// b.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3]);
/// b.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]); // no user data
/// assert_eq!(decode_assignment(&b).unwrap(), vec![("orders".to_string(), vec![0, 3])]);
/// assert!(decode_assignment(&[0, 1, 0]).is_err());
/// ```
pub fn decode_assignment(bytes: &[u8]) -> Result<Vec<(String, Vec<i32>)>, LagError> {
    switchyard_admin::group::decode_assignment(bytes).map_err(|e| match e {
        switchyard_admin::group::GroupError::Assignment(why) => LagError::Assignment(why),
        e => LagError::Assignment(e.to_string()),
    })
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
