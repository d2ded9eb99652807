//! End-to-end tests of Switchyard against a real broker (Apache Kafka in KRaft
//! mode, started once for this test binary on free ports by
//! `switchyard-testkit`).
//!
//! One binary with one module per area, so the broker and the build are
//! shared; tests run in parallel with topics and groups named per test.

mod e2e {
    mod app_delivery;
    mod commit_policies;
    pub mod common;
    mod compression;
    mod config_errors;
    mod consumer_groups;
    mod control;
    mod decode_errors;
    mod delivery;
    mod demo;
    mod deploy;
    mod exit_codes;
    mod group_protocol;
    mod instance;
    mod ipv6;
    mod java_peers;
    mod lag;
    mod logs;
    mod metrics;
    mod parallel;
    mod pause;
    mod peers;
    mod record_fidelity;
    mod run_admin;
    mod run_fleet;
    mod run_schema;
    mod run_slow_app;
    mod schema_registry;
    mod secured;
    mod seek_reset;
    mod shutdown;
    mod static_membership;
    mod subscriptions;
    mod topics;
}
