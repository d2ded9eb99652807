//! Switchyard's test harness for end-to-end tests against a real broker: Apache Kafka 4 in KRaft mode (or nisshi,
//! a Kafka-compatible broker, when `SWITCHYARD_TEST_BROKER=nisshi`).
//!
//! The parts fit together like this:
//!
//! * [`broker`] starts the broker on free 127.0.0.1 ports: one [`Broker::shared`] broker per test binary, or a
//!   [`Broker::start`]ed broker owned by a test that must stop it.
//! * [`topics`] gives every test its own uniquely named topic ([`new_topic`]) and reads end offsets.
//! * [`produce`] writes sequence-numbered records ([`SeqProducer`]) or a steady background stream
//!   ([`SteadyProducer`]).
//! * [`process`] runs a consumer under test as a child process ([`Child`]) whose stdout lines can be waited for.
//! * [`processed_log`] is the file those consumers append one line per processed record to ([`LogWriter`]), and
//!   the checks run on it afterwards ([`ProcessedLog`]): no gaps, duplicates, per-key order.
//! * [`group`] reads a consumer group's committed offsets and membership from the broker.
//! * [`wait`] is how everything waits: for a condition, with a deadline, never a bare sleep.
//! * [`client`] holds the client configuration (short timeouts) that all of the above use.
//! * [`registry`] starts a Schema Registry (Apicurio Registry, Confluent-compatible API) for the schema tests.
//! * [`http`] is a plain HTTP client ([`http_get`], [`http_request`]) for the registry and for the admin APIs,
//!   exporters and applications under test.
//!
//! Every child process (broker or consumer) is spawned from one dedicated thread with
//! `prctl(PR_SET_PDEATHSIG, SIGKILL)`, so nothing outlives the test process.

pub mod broker;
pub mod client;
pub mod group;
pub mod http;
pub mod memory;
pub mod process;
pub mod processed_log;
pub mod produce;
pub mod registry;
mod spawner;
pub mod topics;
pub mod wait;

pub use broker::{free_port, java_command, Broker, BrokerKind, Secured, SecuredOptions};
pub use client::client_config;
pub use group::{committed_offsets, committed_with_metadata, group_members};
pub use http::{http_get, http_request};
pub use process::Child;
pub use processed_log::{LogWriter, Processed, ProcessedLog};
pub use produce::{SeqProducer, SteadyProducer};
pub use registry::Registry;
pub use topics::{add_partitions, create_topic, end_offsets, new_topic, unique_name};
pub use wait::{wait_for, wait_until};
