//! Describing consumer groups from outside: state, type, members, and the
//! partitions each member holds, for classic groups and for KIP-848 consumer
//! groups alike. Every part of Switchyard that asks who is in a group
//! (`switchyard lag`, the offset reset's refusal of an active group, the
//! deployment driver's member count, the testkit) asks here.
//!
//! # Which request answers
//!
//! Kafka has two requests that describe a group, one per group protocol:
//!
//! - **DescribeGroups** (API 15, what `BaseConsumer::fetch_group_list` sends,
//!   after ListGroups when no group is named) describes **classic** groups:
//!   state, protocol type, assignor, and per member its id, client id, host
//!   and the raw assignment bytes (for the `consumer` protocol type, the
//!   ConsumerProtocol encoding decoded by [`decode_assignment`]). A KIP-848
//!   group (`group.protocol=consumer`) is not a classic group: Kafka 4
//!   answers DescribeGroups for it as **Dead with no members**, whether or
//!   not it has members.
//! - **ConsumerGroupDescribe** (API 69, KIP-848) describes **consumer**
//!   groups: state, assignor, and per member its id, client id, host and
//!   assigned partitions. For a classic group it answers `GROUP_ID_NOT_FOUND`.
//!
//! librdkafka's admin call DescribeConsumerGroups ([`describe_consumer_groups`])
//! sends ConsumerGroupDescribe first and, where the broker answers
//! `GROUP_ID_NOT_FOUND` or does not support the request, DescribeGroups, so
//! it describes both kinds, with assignments decoded for both. It costs
//! more for a classic group (two round trips, one request per group), and it
//! refuses a classic group whose protocol type is not `consumer` (Kafka
//! Connect, for one) and fails the whole answer on an assignment it cannot
//! parse. So [`describe_group`] and [`describe_all`] ask DescribeGroups
//! first, which answers for classic groups in one round trip (and for every
//! group at once after ListGroups), and ask DescribeConsumerGroups again
//! only for the groups DescribeGroups does not describe or describes as
//! Dead: KIP-848 groups and groups the broker does not know. A group neither
//! request knows is [`GroupState::Dead`] with no members.
//!
//! Every librdkafka object this module creates (queue, admin options, result
//! event) is held by a guard that destroys it on every way out; strings and
//! partition lists read from a result are copied before the event is
//! destroyed.
//!
//! ```no_run
//! use rdkafka::consumer::BaseConsumer;
//! use rdkafka::ClientConfig;
//! use std::time::Duration;
//! use switchyard_admin::group::describe_group;
//!
//! let client: BaseConsumer = ClientConfig::new()
//!     .set("bootstrap.servers", "127.0.0.1:9092")
//!     .create()?;
//! let g = describe_group(&client, "billing", Duration::from_secs(10))?;
//! println!("{} ({}, {}): {} member(s)", g.group, g.group_type, g.state, g.members.len());
//! for m in &g.members {
//!     println!("{} {} {} holds {:?}", m.member_id, m.client_id, m.host, m.assignment);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::ffi::{c_char, CStr, CString};
use std::fmt;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::groups::GroupInfo;
use rdkafka::types::RDKafkaErrorCode;

pub use crate::assignment::decode_assignment;
pub use crate::error::GroupError;

/// A (topic, partition).
pub type TopicPartition = (String, i32);

/// Which group protocol a group runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupType {
    /// The classic protocol (JoinGroup/SyncGroup, client-side assignor).
    Classic,
    /// The KIP-848 consumer protocol (`group.protocol=consumer`, the broker
    /// assigns).
    Consumer,
    /// Not told: a group the broker does not know.
    Unknown,
}

impl GroupType {
    /// `Classic`, `Consumer` or `Unknown` (librdkafka's names).
    pub fn as_str(self) -> &'static str {
        match self {
            GroupType::Classic => "Classic",
            GroupType::Consumer => "Consumer",
            GroupType::Unknown => "Unknown",
        }
    }

    fn from_rd(t: rd::rd_kafka_consumer_group_type_t) -> GroupType {
        use rd::rd_kafka_consumer_group_type_t as T;
        match t {
            T::RD_KAFKA_CONSUMER_GROUP_TYPE_CLASSIC => GroupType::Classic,
            T::RD_KAFKA_CONSUMER_GROUP_TYPE_CONSUMER => GroupType::Consumer,
            _ => GroupType::Unknown,
        }
    }
}

impl fmt::Display for GroupType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A group's state as the broker reports it.
///
/// ```
/// use switchyard_admin::group::GroupState;
/// assert_eq!(GroupState::parse("Stable"), GroupState::Stable);
/// assert_eq!(GroupState::parse("stable"), GroupState::Stable);
/// assert_eq!(GroupState::parse("CompletingRebalance").to_string(), "CompletingRebalance");
/// assert_eq!(GroupState::parse("reconciling"), GroupState::Unknown);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// A classic group waits for its members to rejoin.
    PreparingRebalance,
    /// A classic group waits for the leader's assignment.
    CompletingRebalance,
    /// Members hold their assignment.
    Stable,
    /// The broker does not know the group (or it is being removed).
    Dead,
    /// No members; committed offsets may remain.
    Empty,
    /// Any other state (a KIP-848 group's `assigning` or `reconciling`).
    Unknown,
}

impl GroupState {
    /// Parse a state name (DescribeGroups' `Stable`, ConsumerGroupDescribe's
    /// `stable`, ...); names without a variant are [`GroupState::Unknown`].
    pub fn parse(s: &str) -> GroupState {
        [
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
            GroupState::Stable,
            GroupState::Dead,
            GroupState::Empty,
        ]
        .into_iter()
        .find(|state| state.as_str().eq_ignore_ascii_case(s))
        .unwrap_or(GroupState::Unknown)
    }

    /// The name as DescribeGroups spells it (`Stable`, `Empty`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
            GroupState::Empty => "Empty",
            GroupState::Unknown => "Unknown",
        }
    }

    fn from_rd(s: rd::rd_kafka_consumer_group_state_t) -> GroupState {
        use rd::rd_kafka_consumer_group_state_t as S;
        match s {
            S::RD_KAFKA_CONSUMER_GROUP_STATE_PREPARING_REBALANCE => GroupState::PreparingRebalance,
            S::RD_KAFKA_CONSUMER_GROUP_STATE_COMPLETING_REBALANCE => {
                GroupState::CompletingRebalance
            }
            S::RD_KAFKA_CONSUMER_GROUP_STATE_STABLE => GroupState::Stable,
            S::RD_KAFKA_CONSUMER_GROUP_STATE_DEAD => GroupState::Dead,
            S::RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY => GroupState::Empty,
            _ => GroupState::Unknown,
        }
    }
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The broker that coordinates a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    /// Broker id.
    pub id: i32,
    /// Host as the client knows the broker.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id given by the group coordinator.
    pub member_id: String,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host as the broker saw it (`/127.0.0.1`).
    pub host: String,
    /// `group.instance.id` of a static member.
    pub group_instance_id: Option<String>,
    /// The partitions the member holds, sorted. Empty where the broker gives
    /// no assignment (a classic group whose protocol type is not `consumer`,
    /// or a broker that answers DescribeGroups with member ids only).
    pub assignment: Vec<TopicPartition>,
}

/// A group as the broker describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group: String,
    /// Classic or consumer (KIP-848); `Unknown` for a group the broker does
    /// not know.
    pub group_type: GroupType,
    /// The group's state.
    pub state: GroupState,
    /// The assignor: a classic group's client-side protocol (`range`,
    /// `cooperative-sticky`, ...), a consumer group's broker-side assignor
    /// (`uniform`, `range`); empty when not told.
    pub assignor: String,
    /// The coordinator, when DescribeConsumerGroups answered (DescribeGroups
    /// through rust-rdkafka does not name it).
    pub coordinator: Option<Coordinator>,
    /// The members.
    pub members: Vec<MemberDescription>,
}

impl GroupDescription {
    /// The description of a group the broker does not know: Dead, no members.
    pub fn dead(group: &str) -> GroupDescription {
        GroupDescription {
            group: group.to_string(),
            group_type: GroupType::Unknown,
            state: GroupState::Dead,
            assignor: String::new(),
            coordinator: None,
            members: Vec::new(),
        }
    }

    /// Each held partition with the member holding it.
    ///
    /// ```
    /// use switchyard_admin::group::{GroupDescription, MemberDescription};
    /// let mut g = GroupDescription::dead("g");
    /// g.members.push(MemberDescription {
    ///     member_id: "m1".into(), client_id: "c".into(), host: "/10.0.0.1".into(),
    ///     group_instance_id: None, assignment: vec![("orders".into(), 0), ("orders".into(), 2)],
    /// });
    /// let owners = g.owners();
    /// assert_eq!(owners[&("orders".to_string(), 2)].member_id, "m1");
    /// assert_eq!(owners.len(), 2);
    /// ```
    pub fn owners(&self) -> BTreeMap<TopicPartition, &MemberDescription> {
        self.members
            .iter()
            .flat_map(|m| m.assignment.iter().map(move |tp| (tp.clone(), m)))
            .collect()
    }

    /// A classic group as DescribeGroups describes it, with each member's
    /// assignment decoded when its protocol type is `consumer` (an
    /// undecodable assignment is logged and left empty).
    pub fn from_classic(info: &GroupInfo) -> GroupDescription {
        let consumer_protocol =
            info.protocol_type().is_empty() || info.protocol_type() == "consumer";
        let members = info
            .members()
            .iter()
            .map(|m| {
                let bytes = m.assignment().filter(|b| !b.is_empty() && consumer_protocol);
                let assignment = match bytes.map(decode_assignment) {
                    None => Vec::new(),
                    Some(Ok(topics)) => {
                        let mut tps: Vec<TopicPartition> = topics
                            .into_iter()
                            .flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p)))
                            .collect();
                        tps.sort();
                        tps
                    }
                    Some(Err(e)) => {
                        tracing::warn!(group = info.name(), member = m.id(), error = %e, "undecodable assignment");
                        Vec::new()
                    }
                };
                MemberDescription {
                    member_id: m.id().to_string(),
                    client_id: m.client_id().to_string(),
                    host: m.client_host().to_string(),
                    group_instance_id: None,
                    assignment,
                }
            })
            .collect();
        GroupDescription {
            group: info.name().to_string(),
            group_type: GroupType::Classic,
            state: GroupState::parse(info.state()),
            assignor: info.protocol().to_string(),
            coordinator: None,
            members,
        }
    }
}

/// Describe `group`: DescribeGroups first, and DescribeConsumerGroups when
/// DescribeGroups does not describe it or describes it as Dead (a KIP-848
/// group; see the module's documentation). A group neither knows is Dead
/// with no members.
pub fn describe_group<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    group: &str,
    timeout: Duration,
) -> Result<GroupDescription, GroupError> {
    let list = consumer.fetch_group_list(Some(group), timeout)?;
    if let Some(info) = list
        .groups()
        .iter()
        .find(|g| g.name() == group && !described_as_dead(g))
    {
        return Ok(GroupDescription::from_classic(info));
    }
    describe_consumer_group(consumer.client(), group, timeout)
}

/// Describe every group of the cluster: ListGroups and DescribeGroups, then
/// one DescribeConsumerGroups for the groups described as Dead (KIP-848
/// groups). Sorted by group id. A group that DescribeConsumerGroups fails to
/// describe is logged and kept as DescribeGroups described it.
pub fn describe_all<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    timeout: Duration,
) -> Result<Vec<GroupDescription>, GroupError> {
    let list = consumer.fetch_group_list(None, timeout)?;
    let mut by_name: BTreeMap<String, GroupDescription> = BTreeMap::new();
    let mut again: Vec<&str> = Vec::new();
    for g in list.groups() {
        if described_as_dead(g) {
            again.push(g.name());
        }
        by_name.insert(g.name().to_string(), GroupDescription::from_classic(g));
    }
    again.sort_unstable();
    again.dedup();
    for (name, result) in again.iter().zip(describe_consumer_groups(
        consumer.client(),
        &again,
        timeout,
    )?) {
        match result {
            Ok(d) => {
                by_name.insert(name.to_string(), d);
            }
            Err(e) => tracing::warn!(group = *name, error = %e, "DescribeConsumerGroups failed"),
        }
    }
    Ok(by_name.into_values().collect())
}

/// Whether DescribeGroups left `g` undescribed: Dead, or no state at all.
fn described_as_dead(g: &GroupInfo) -> bool {
    g.state().is_empty() || GroupState::parse(g.state()) == GroupState::Dead
}

/// DescribeConsumerGroups of one group (see [`describe_consumer_groups`]).
///
/// ```no_run
/// use rdkafka::consumer::{BaseConsumer, Consumer};
/// use rdkafka::ClientConfig;
/// use std::time::Duration;
/// use switchyard_admin::group::{describe_consumer_group, GroupType};
///
/// let client: BaseConsumer = ClientConfig::new()
///     .set("bootstrap.servers", "127.0.0.1:9092")
///     .create()?;
/// let g = describe_consumer_group(client.client(), "billing", Duration::from_secs(10))?;
/// if g.group_type == GroupType::Consumer {
///     println!("KIP-848 group coordinated by {:?}", g.coordinator);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn describe_consumer_group<C: ClientContext>(
    client: &Client<C>,
    group: &str,
    timeout: Duration,
) -> Result<GroupDescription, GroupError> {
    describe_consumer_groups(client, &[group], timeout)?
        .pop()
        .unwrap_or_else(|| Ok(GroupDescription::dead(group)))
}

/// librdkafka's DescribeConsumerGroups of `groups` (duplicates are asked
/// once): one result per distinct group, in the order first asked. librdkafka
/// sends ConsumerGroupDescribe to each group's coordinator and, for a classic
/// group, DescribeGroups; a group the broker does not know is Dead with no
/// members. The outer error is the request as a whole failing (no answer
/// within `timeout`, the client shutting down); the inner one a group the
/// broker answered with an error for (a classic group whose protocol type
/// is not `consumer`, missing authorization).
///
/// ```no_run
/// use rdkafka::consumer::{BaseConsumer, Consumer};
/// use rdkafka::ClientConfig;
/// use std::time::Duration;
/// use switchyard_admin::group::describe_consumer_groups;
///
/// let client: BaseConsumer = ClientConfig::new()
///     .set("bootstrap.servers", "127.0.0.1:9092")
///     .create()?;
/// for g in describe_consumer_groups(client.client(), &["billing", "shipping"], Duration::from_secs(10))? {
///     match g {
///         Ok(g) => println!("{}: {} {} member(s)", g.group, g.state, g.members.len()),
///         Err(e) => eprintln!("{e}"),
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn describe_consumer_groups<C: ClientContext>(
    client: &Client<C>,
    groups: &[&str],
    timeout: Duration,
) -> Result<Vec<Result<GroupDescription, GroupError>>, GroupError> {
    let mut distinct: Vec<&str> = Vec::with_capacity(groups.len());
    for g in groups {
        if !distinct.contains(g) {
            distinct.push(g);
        }
    }
    if distinct.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<CString> = distinct
        .iter()
        .map(|g| CString::new(*g).map_err(|_| GroupError::InvalidGroupId(g.to_string())))
        .collect::<Result<_, _>>()?;
    let mut pointers: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let asked = distinct.join(", ");
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    let rk = client.native_ptr();

    // SAFETY: `rk` is the live client handle of `client`, borrowed for this
    // whole call; librdkafka returns a new queue owned by the guard.
    let queue = Queue(unsafe { rd::rd_kafka_queue_new(rk) });
    // SAFETY: as above; the options are owned by the guard.
    let options = Options(unsafe {
        rd::rd_kafka_AdminOptions_new(
            rk,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
        )
    });
    if queue.0.is_null() || options.0.is_null() {
        return Err(GroupError::Request {
            groups: asked,
            code: RDKafkaErrorCode::Fail,
            message: "librdkafka could not create a queue or admin options".into(),
        });
    }
    let mut errstr = [0 as c_char; 256];
    // SAFETY: the options are live (checked above); `errstr` is writable for
    // its whole length, which is passed along.
    let err = unsafe {
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options.0,
            ms,
            errstr.as_mut_ptr(),
            errstr.len(),
        )
    };
    if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        return Err(GroupError::Request {
            groups: asked,
            code: err.into(),
            // SAFETY: librdkafka wrote a NUL-terminated message into `errstr`
            // (zeroed, so terminated even if it wrote nothing).
            message: unsafe { text(errstr.as_ptr()) },
        });
    }
    // SAFETY: `pointers` holds `pointers.len()` NUL-terminated strings owned
    // by `names`, alive across this call (librdkafka copies them); the
    // options and queue are live and outlive the call.
    unsafe {
        rd::rd_kafka_DescribeConsumerGroups(
            rk,
            pointers.as_mut_ptr(),
            pointers.len(),
            options.0,
            queue.0,
        )
    };
    // The request times out by itself; a little longer for its event.
    // SAFETY: the queue is live; the event returned (or null) is owned by the
    // guard.
    let event = Event(unsafe { rd::rd_kafka_queue_poll(queue.0, ms.saturating_add(1000)) });
    if event.0.is_null() {
        return Err(GroupError::Timeout {
            groups: asked,
            timeout,
        });
    }
    // SAFETY: the event is live (not null) and is destroyed by its guard
    // only after everything read from it below has been copied.
    unsafe {
        let err = rd::rd_kafka_event_error(event.0);
        if err != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(GroupError::Request {
                groups: asked,
                code: err.into(),
                message: text(rd::rd_kafka_event_error_string(event.0)),
            });
        }
        let result = rd::rd_kafka_event_DescribeConsumerGroups_result(event.0);
        if result.is_null() {
            return Err(GroupError::Request {
                groups: asked,
                code: RDKafkaErrorCode::Fail,
                message: "the answer is not a DescribeConsumerGroups result".into(),
            });
        }
        let mut n = 0usize;
        let descriptions = rd::rd_kafka_DescribeConsumerGroups_result_groups(result, &mut n);
        let mut by_name: BTreeMap<String, Result<GroupDescription, GroupError>> = BTreeMap::new();
        for i in 0..n {
            let d = *descriptions.add(i);
            if d.is_null() {
                continue;
            }
            let name = text(rd::rd_kafka_ConsumerGroupDescription_group_id(d));
            let described = read_description(d, &name);
            by_name.insert(name, described);
        }
        Ok(distinct
            .iter()
            .map(|g| {
                by_name
                    .remove(*g)
                    .unwrap_or_else(|| Ok(GroupDescription::dead(g)))
            })
            .collect())
    }
}

/// Copy one group's description out of a result.
///
/// # Safety
/// `d` is a live description of a live DescribeConsumerGroups result event.
unsafe fn read_description(
    d: *const rd::rd_kafka_ConsumerGroupDescription_t,
    group: &str,
) -> Result<GroupDescription, GroupError> {
    // SAFETY: every pointer read here belongs to `d` and lives as long as
    // the event; strings are copied by `text`, partition lists by
    // `partitions`, before returning.
    unsafe {
        let error = rd::rd_kafka_ConsumerGroupDescription_error(d);
        if !error.is_null() {
            let code: RDKafkaErrorCode = rd::rd_kafka_error_code(error).into();
            if code == RDKafkaErrorCode::GroupIdNotFound {
                return Ok(GroupDescription::dead(group));
            }
            return Err(GroupError::Group {
                group: group.to_string(),
                code,
                message: text(rd::rd_kafka_error_string(error)),
            });
        }
        let node = rd::rd_kafka_ConsumerGroupDescription_coordinator(d);
        let coordinator = (!node.is_null()).then(|| Coordinator {
            id: rd::rd_kafka_Node_id(node),
            host: text(rd::rd_kafka_Node_host(node)),
            port: rd::rd_kafka_Node_port(node),
        });
        let count = rd::rd_kafka_ConsumerGroupDescription_member_count(d);
        let mut members = Vec::with_capacity(count);
        for i in 0..count {
            let m = rd::rd_kafka_ConsumerGroupDescription_member(d, i);
            if m.is_null() {
                continue;
            }
            let instance = rd::rd_kafka_MemberDescription_group_instance_id(m);
            let assignment = rd::rd_kafka_MemberDescription_assignment(m);
            members.push(MemberDescription {
                member_id: text(rd::rd_kafka_MemberDescription_consumer_id(m)),
                client_id: text(rd::rd_kafka_MemberDescription_client_id(m)),
                host: text(rd::rd_kafka_MemberDescription_host(m)),
                group_instance_id: (!instance.is_null()).then(|| text(instance)),
                assignment: if assignment.is_null() {
                    Vec::new()
                } else {
                    partitions(rd::rd_kafka_MemberAssignment_partitions(assignment))
                },
            });
        }
        Ok(GroupDescription {
            group: group.to_string(),
            group_type: GroupType::from_rd(rd::rd_kafka_ConsumerGroupDescription_type(d)),
            state: GroupState::from_rd(rd::rd_kafka_ConsumerGroupDescription_state(d)),
            assignor: text(rd::rd_kafka_ConsumerGroupDescription_partition_assignor(d)),
            coordinator,
            members,
        })
    }
}

/// The (topic, partition) pairs of a partition list, sorted.
///
/// # Safety
/// `list` is null or a live partition list.
unsafe fn partitions(list: *const rd::rd_kafka_topic_partition_list_t) -> Vec<TopicPartition> {
    if list.is_null() {
        return Vec::new();
    }
    // SAFETY: a live list holds `cnt` elements at `elems`.
    let (cnt, elems) = unsafe { ((*list).cnt.max(0) as usize, (*list).elems) };
    if elems.is_null() {
        return Vec::new();
    }
    let mut out: Vec<TopicPartition> = (0..cnt)
        .map(|i| {
            // SAFETY: `i < cnt`; the element's topic is a NUL-terminated
            // string (or null) owned by the list.
            let e = unsafe { &*elems.add(i) };
            (unsafe { text(e.topic) }, e.partition)
        })
        .collect();
    out.sort();
    out
}

/// A copy of a C string; empty for null.
///
/// # Safety
/// `p` is null or a NUL-terminated string that stays alive during the call.
unsafe fn text(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: the caller's promise.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// Owns a librdkafka queue.
struct Queue(*mut rd::rd_kafka_queue_t);

impl Drop for Queue {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by `rd_kafka_queue_new`, destroyed once, here.
            unsafe { rd::rd_kafka_queue_destroy(self.0) }
        }
    }
}

/// Owns librdkafka admin options.
struct Options(*mut rd::rd_kafka_AdminOptions_t);

impl Drop for Options {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by `rd_kafka_AdminOptions_new`, destroyed once,
            // here.
            unsafe { rd::rd_kafka_AdminOptions_destroy(self.0) }
        }
    }
}

/// Owns a librdkafka event (and so the result it carries).
struct Event(*mut rd::rd_kafka_event_t);

impl Drop for Event {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: returned by `rd_kafka_queue_poll` to this caller,
            // destroyed once, here.
            unsafe { rd::rd_kafka_event_destroy(self.0) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_of_both_protocols_parse() {
        for (name, state) in [
            ("PreparingRebalance", GroupState::PreparingRebalance),
            ("CompletingRebalance", GroupState::CompletingRebalance),
            ("Stable", GroupState::Stable),
            ("stable", GroupState::Stable),
            ("Empty", GroupState::Empty),
            ("empty", GroupState::Empty),
            ("Dead", GroupState::Dead),
            ("assigning", GroupState::Unknown),
            ("", GroupState::Unknown),
        ] {
            assert_eq!(GroupState::parse(name), state, "{name}");
        }
        assert_eq!(GroupState::Stable.to_string(), "Stable");
        assert_eq!(GroupType::Consumer.to_string(), "Consumer");
    }

    #[test]
    fn no_groups_asks_nothing_and_a_nul_byte_is_refused() {
        let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
        let client: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .create()
            .unwrap();
        let none = describe_consumer_groups(client.client(), &[], Duration::from_secs(1));
        assert!(none.unwrap().is_empty());
        let e =
            describe_consumer_group(client.client(), "a\0b", Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, GroupError::InvalidGroupId(_)), "{e}");
    }

    #[test]
    fn the_mock_cluster_cannot_list_groups_and_says_so() {
        let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
        let client: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .create()
            .unwrap();
        let e = describe_group(&client, "g", Duration::from_secs(5)).unwrap_err();
        assert!(e.is_unsupported(), "{e}");
        assert!(!GroupError::InvalidGroupId("x".into()).is_unsupported());
    }
}
