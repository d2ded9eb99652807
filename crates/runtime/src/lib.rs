//! # switchyard-runtime
//!
//! The consumer runtime of Switchyard: listeners that poll Kafka through
//! librdkafka (the `rdkafka` crate), hand records to async handlers on a
//! bounded worker pool without losing offsets or reordering a partition or a
//! key, commit by policy, survive rebalances (eager and cooperative), pause and
//! resume without leaving the group, seek, and shut down within a deadline.
//!
//! How the parts fit (one file per concept; the path of a record):
//!
//! - [`listener`]: the builder users see, `handle` the [`ListenerHandle`] that
//!   steers a running one; [`concurrent`]: N of them in one group;
//! - `poller`: the poll thread, sole owner of the consumer, and
//!   `fetch_queues`, the partitions' own queues it takes records from;
//! - `coordinator`: per-partition state and dispatch decisions, with
//!   `committer`, `pause`, `rebalance`, `seek`, `shutdown`, `membership`
//!   (leave and join the group at run time) and `start_floor` (handoff
//!   offsets on later assignments) adding one duty each;
//! - `partition`, [`jobs_queue`], [`offset_tracker`]: one partition's state,
//!   its records waiting in lanes, and its commit point;
//! - `executor`: runs jobs on tokio with retries ([`failure`]) and dead
//!   letters ([`dead_letter`]);
//! - [`handler`], [`deserializer`], [`record`]: what the user writes and gets;
//! - [`commit_sequence`], [`metadata_watcher`], [`offset_metadata`]: pure helpers;
//! - [`command`], [`hooks`], [`stats`], [`error`]: vocabulary.
//!
//! See docs/architecture.md in the repository for the long form.

mod batch_queue;
mod client_problem;
pub mod command;
mod commit_sequence;
mod committer;
pub mod concurrent;
mod coordinator;
pub mod dead_letter;
pub mod deserializer;
pub mod error;
mod event;
mod executor;
pub mod failure;
mod fetch_queues;
mod fetched;
mod handle;
pub mod handler;
pub mod hooks;
mod jobs_queue;
pub mod listener;
mod log_ends;
mod membership;
pub mod metadata_watcher;
pub mod offset_metadata;
mod offset_tracker;
mod partition;
mod pause;
mod poller;
mod rebalance;
pub mod record;
mod seek;
mod shutdown;
mod start_floor;
pub mod stats;
mod subscription;

pub use command::{PauseAck, PauseTarget, SeekTo, ShutdownReport};
pub use concurrent::ConcurrentListener;
pub use error::RuntimeError;
pub use failure::{DeadLetterFallback, FailurePolicy, RetryPolicy};
pub use handle::ListenerHandle;
pub use jobs_queue::Ordering;
pub use listener::{Listener, ListenerBuilder};
pub use start_floor::{FloorScope, StartFloor};
pub use subscription::Subscription;
pub use switchyard_config as config;
