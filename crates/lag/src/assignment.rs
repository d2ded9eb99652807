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
