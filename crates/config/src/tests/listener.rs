//! Tests for `listener.rs`: listener validation, serde forms and helpers.

use super::assert_mentions;
use crate::{
    CommitPolicy, ConfigError, ConsumerConfig, DecodeErrorPolicy, ListenerConfig, ListenerSource,
    TopicPartitions,
};

#[track_caller]
fn listener_error(l: &ListenerConfig, parts: &[&str]) {
    let err = l.validate().unwrap_err();
    assert!(matches!(err, ConfigError::Listener { .. }), "{err:?}");
    assert_mentions(&err, parts);
}

#[test]
fn exactly_one_source_is_required() {
    listener_error(
        &ListenerConfig::new("none"),
        &["`none`", "topics", "pattern", "assign"],
    );
    let two = ListenerConfig::new("two")
        .with_topics(["a"])
        .with_pattern("^a.*");
    listener_error(
        &two,
        &["`two`", "`topics` and `pattern`", "mutually exclusive"],
    );
    let also = ListenerConfig::new("also")
        .with_pattern("^a")
        .with_assign([TopicPartitions::all("a")]);
    listener_error(&also, &["`also`", "`pattern` and `assign`"]);
    let three = ListenerConfig::new("three")
        .with_topics(["a"])
        .with_pattern("^a")
        .with_assign([TopicPartitions::all("a")]);
    listener_error(&three, &["`topics` and `pattern` and `assign`"]);

    ListenerConfig::new("t")
        .with_topics(["a"])
        .validate()
        .unwrap();
    ListenerConfig::new("p")
        .with_pattern("a.*")
        .validate()
        .unwrap();
    ListenerConfig::new("s")
        .with_assign([TopicPartitions::new("a", [0, 1])])
        .validate()
        .unwrap();
}

#[test]
fn blank_name_is_rejected() {
    let l = ListenerConfig::new("  ").with_topics(["a"]);
    listener_error(&l, &["`name` must not be blank"]);
}

#[test]
fn topic_entries_are_checked() {
    listener_error(
        &ListenerConfig::new("l").with_topics(["a", ""]),
        &["`l`", "entry 1"],
    );
    listener_error(
        &ListenerConfig::new("l").with_topics(["a", "a"]),
        &["`a`", "twice"],
    );
    listener_error(
        &ListenerConfig::new("l").with_topics(["^a.*"]),
        &["`^a.*`", "pattern"],
    );
    listener_error(
        &ListenerConfig::new("l").with_pattern(" ^ "),
        &["`pattern`", "empty"],
    );
}

#[test]
fn assignment_entries_are_checked() {
    let l = ListenerConfig::new("l").with_assign([TopicPartitions::new("t", [0, -1])]);
    listener_error(&l, &["`t`", "-1", "negative"]);
    let l = ListenerConfig::new("l").with_assign([TopicPartitions::new("t", [2, 2])]);
    listener_error(&l, &["partition 2", "twice"]);
    let l = ListenerConfig::new("l")
        .with_assign([TopicPartitions::all("t"), TopicPartitions::all("t")]);
    listener_error(&l, &["`t`", "twice"]);
    let l = ListenerConfig::new("l").with_assign([TopicPartitions::all(" ")]);
    listener_error(&l, &["blank topic"]);
}

#[test]
fn other_fields_are_checked() {
    let ok = ListenerConfig::new("l").with_topics(["a"]);
    listener_error(&ok.clone().with_group(""), &["`group_id`"]);
    listener_error(
        &ok.clone().with_dead_letter_topic(" "),
        &["`dead_letter_topic`"],
    );
    listener_error(
        &ok.clone().with_commit(CommitPolicy::EveryN { records: 0 }),
        &["every-n", "records", "0"],
    );
    ok.with_commit(CommitPolicy::EveryN { records: 1 })
        .validate()
        .unwrap();
}

#[test]
fn toml_defaults() {
    let l: ListenerConfig = toml::from_str("name = \"l\"\ntopics = [\"a\"]").unwrap();
    assert_eq!(l, ListenerConfig::new("l").with_topics(["a"]));
    assert_eq!(l.commit, CommitPolicy::Async);
    assert_eq!(l.on_decode_error, DecodeErrorPolicy::DeadLetter);
    assert_eq!(l.shutdown_timeout_ms, 10_000);
    assert!(toml::from_str::<ListenerConfig>("topics = [\"a\"]").is_err()); // name required
}

#[test]
fn commit_policy_toml_forms() {
    #[derive(serde::Deserialize, serde::Serialize, PartialEq, Debug)]
    struct W {
        commit: CommitPolicy,
    }
    for (text, policy) in [
        (r#"commit = { mode = "auto" }"#, CommitPolicy::Auto),
        (
            r#"commit = { mode = "sync-per-batch" }"#,
            CommitPolicy::SyncPerBatch,
        ),
        (r#"commit = { mode = "async" }"#, CommitPolicy::Async),
        (
            r#"commit = { mode = "every-n", records = 100 }"#,
            CommitPolicy::EveryN { records: 100 },
        ),
    ] {
        let w: W = toml::from_str(text).unwrap();
        assert_eq!(w.commit, policy, "{text}");
        let back: W = toml::from_str(&toml::to_string(&w).unwrap()).unwrap();
        assert_eq!(back, w);
    }
    for (bad, reason) in [
        (
            r#"commit = { mode = "sometimes" }"#,
            "unknown commit mode `sometimes`",
        ),
        (r#"commit = { mode = "every-n" }"#, "requires `records`"),
        (
            r#"commit = { mode = "async", records = 3 }"#,
            "only applies",
        ),
        (
            r#"commit = { mode = "async", extra = 1 }"#,
            "unknown field `extra`",
        ),
    ] {
        let err = toml::from_str::<W>(bad).unwrap_err().to_string();
        assert!(err.contains(reason), "{bad}: {err}");
    }
}

#[test]
fn decode_error_policy_spellings() {
    #[derive(serde::Deserialize)]
    struct W {
        p: DecodeErrorPolicy,
    }
    let w: W = toml::from_str("p = \"dead-letter\"").unwrap();
    assert_eq!(w.p, DecodeErrorPolicy::DeadLetter);
    let w: W = toml::from_str("p = \"skip\"").unwrap();
    assert_eq!(w.p, DecodeErrorPolicy::Skip);
}

#[test]
fn assignment_toml_form() {
    let l: ListenerConfig = toml::from_str(
        r#"
        name = "replay"
        assign = [{ topic = "t", partitions = [0, 1] }, { topic = "u" }]
        "#,
    )
    .unwrap();
    assert_eq!(
        l.source(),
        Some(ListenerSource::Assign(&[
            TopicPartitions::new("t", [0, 1]),
            TopicPartitions::all("u")
        ]))
    );
}

#[test]
fn helpers() {
    let l = ListenerConfig::new("l").with_pattern("  orders\\..*");
    assert_eq!(l.librdkafka_pattern().as_deref(), Some("^orders\\..*"));
    assert_eq!(ListenerConfig::new("l").librdkafka_pattern(), None);
    assert_eq!(l.dead_letter_topic_for("orders.v1"), "orders.v1.DLT");

    let base = ConsumerConfig::new("k:1").with_group("base");
    let mut auto_on = base.clone();
    auto_on.enable_auto_commit = true;
    let effective = l.effective_consumer(&auto_on);
    assert_eq!(effective.group_id.as_deref(), Some("base"));
    assert!(!effective.enable_auto_commit, "the commit policy decides");
    let effective = l
        .clone()
        .with_group("own")
        .with_commit(CommitPolicy::Auto)
        .effective_consumer(&base);
    assert_eq!(effective.group_id.as_deref(), Some("own"));
    assert!(effective.enable_auto_commit);
}
