//! Each health state reached by feeding the evaluator real samples taken
//! from the broker over time: STALL, PAUSED, WARN, STOP, REWIND.

use std::collections::BTreeMap;
use std::time::Duration;

use switchyard_admin::{reset_offsets, ResetTo};
use switchyard_lag::health::Intent;
use switchyard_lag::{Intents, Status, TimeLagMode};
use switchyard_runtime::command::PauseTarget;
use switchyard_runtime::deserializer::Utf8;
use switchyard_runtime::record::Record;
use switchyard_runtime::Listener;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_group_shows_its_members_and_stalls_unless_known_paused() {
    let topic = new_topic(broker(), "lag-active", 2);
    let group = unique_name("lag-active-g");
    produce(&topic, 0, 10);
    produce(&topic, 1, 10);
    // The group committed 5 on both partitions; its consumer then takes the records from 5
    // on and never finishes them until released: the committed offset stays at 5.
    commit(&group, &topic, &[(0, 5), (1, 5)]);
    let (release, released) = tokio::sync::watch::channel(false);
    let started = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let started2 = started.clone();
    let listener = Listener::builder("lag-active")
        .config(config(&group))
        .topics([topic.clone()])
        .workers(2)
        .shutdown_timeout(Duration::from_secs(5))
        .handler(Utf8, Utf8, move |r: Record<String, String>| {
            started2.lock().unwrap().insert((r.partition, r.offset));
            let mut released = released.clone();
            async move {
                let _ = released.wait_for(|v| *v).await;
                Ok(())
            }
        })
        .start()
        .unwrap();
    eventually(
        "both partitions stuck at offset 5",
        Duration::from_secs(30),
        || {
            let s = started.lock().unwrap();
            s.contains(&(0, 5)) && s.contains(&(1, 5))
        },
    )
    .await;
    let member = listener
        .snapshot()
        .await
        .unwrap()
        .member_id
        .expect("member id");

    let mut s = sampler(&group, TimeLagMode::Read);
    let r = sample_until_blocking(&mut s, "STALL on both partitions", |r| {
        (0..2).all(|p| status(r, &group, &topic, p) == Status::Stall)
    });
    let g = r.group(&group).unwrap();
    assert_eq!((g.state.as_str(), g.members), ("Stable", 1));
    assert_eq!(
        figures(&r, &group, &topic),
        BTreeMap::from([
            (0, (0, 10, Some(5), Some(5))),
            (1, (0, 10, Some(5), Some(5)))
        ])
    );
    let members: Vec<&str> = g.member_list.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(members, [member.as_str()]);
    for p in &g.partitions {
        // every partition is owned by the listener's member, on its host and client id
        let owner = p.owner.as_ref().unwrap_or_else(|| panic!("owner of {p:?}"));
        assert_eq!(owner.member_id, member);
        assert!(owner.host.contains("127.0.0.1"), "{owner:?}");
        assert!(!owner.client_id.is_empty(), "{owner:?}");
        assert!(
            p.time_lag_ms.is_some_and(|ms| ms >= 0),
            "time lag read for {p:?}"
        );
    }
    assert_eq!(g.health, Status::Stall);

    // The control plane says partition 0 is paused: PAUSED, not STALL; partition 1 still STALL.
    let mut paused = Intents::default();
    paused.pause(format!("{group}:{topic}:0").parse().unwrap());
    s.set_intents(paused);
    let r = tokio::task::block_in_place(|| s.sample().unwrap());
    assert_eq!(status(&r, &group, &topic, 0), Status::Paused);
    assert_eq!(status(&r, &group, &topic, 1), Status::Stall);
    assert_eq!(r.group(&group).unwrap().health, Status::Stall);

    release.send(true).unwrap();
    listener.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_pause_with_growing_lag_is_paused_when_known_and_stall_otherwise() {
    let topic = new_topic(broker(), "lag-pause", 1);
    let group = unique_name("lag-pause-g");
    produce(&topic, 0, 10);
    let (builder, seen) = collecting(
        Listener::builder("lag-pause")
            .config(config(&group))
            .topics([topic.clone()]),
    );
    let listener = builder.start().unwrap();
    eventually("first 10 records", Duration::from_secs(30), || {
        count(&seen) == 10
    })
    .await;
    let ack = listener
        .pause(PauseTarget::Partition(topic.clone(), 0))
        .await
        .unwrap();
    assert_eq!(ack.partitions[0].committed, Some(10));
    produce(&topic, 0, 7);

    let mut s = sampler(&group, TimeLagMode::Read);
    let mut known = Intents::default();
    known.pause(format!("{group}:{topic}:*").parse().unwrap());
    s.set_intents(known);
    // Sampling at an interval: as many samples as the window needs.
    let mut reports = Vec::new();
    for _ in 0..short_window().min_samples {
        reports.push(tokio::task::block_in_place(|| s.sample().unwrap()));
        tokio::time::sleep(EVERY).await;
    }
    let r = reports.pop().unwrap();
    assert_eq!(
        figures(&r, &group, &topic),
        BTreeMap::from([(0, (0, 17, Some(10), Some(7)))])
    );
    assert_eq!(status(&r, &group, &topic, 0), Status::Paused);
    let window = s.window(&group, &topic, 0).unwrap();
    assert_eq!(
        window.evaluate(Intent::None).status,
        Status::Stall,
        "the same samples without the intent"
    );
    assert_eq!(count(&seen), 10, "nothing delivered while paused");
    listener.shutdown().await;
}

#[test]
fn a_growing_backlog_with_a_moving_consumer_warns() {
    let topic = new_topic(broker(), "lag-warn", 1);
    let group = unique_name("lag-warn-g");
    produce(&topic, 0, 10);
    let mut committed = 2;
    commit(&group, &topic, &[(0, committed)]);
    let mut produced = 10;
    let mut s = sampler(&group, TimeLagMode::Estimate);
    let r = sample_until(&mut s, "WARN", |r| {
        let st = status(r, &group, &topic, 0);
        if st != Status::Warn {
            // The consumer commits 1 more record while 5 more arrive.
            produce(&topic, 0, 5);
            produced += 5;
            committed += 1;
            commit(&group, &topic, &[(0, committed)]);
        }
        st == Status::Warn
    });
    assert_eq!(
        figures(&r, &group, &topic),
        BTreeMap::from([(
            0,
            (0, produced, Some(committed), Some(produced - committed))
        )])
    );
    assert!(r
        .group(&group)
        .unwrap()
        .partition(&topic, 0)
        .unwrap()
        .time_lag_ms
        .is_some());
    // It catches up: OK at once.
    commit(&group, &topic, &[(0, produced)]);
    let r = s.sample().unwrap();
    assert_eq!(status(&r, &group, &topic, 0), Status::Ok);
    assert_eq!(r.group(&group).unwrap().lag, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_consumer_turns_stop_unless_known_paused() {
    let topic = new_topic(broker(), "lag-stop", 2);
    let group = unique_name("lag-stop-g");
    produce(&topic, 0, 6);
    produce(&topic, 1, 4);
    let (builder, seen) = collecting(
        Listener::builder("lag-stop")
            .config(config(&group))
            .topics([topic.clone()]),
    );
    let listener = builder.start().unwrap();
    eventually("all 10 records", Duration::from_secs(30), || {
        count(&seen) == 10
    })
    .await;
    let mut s = sampler(&group, TimeLagMode::Read);
    sample_until_blocking(&mut s, "caught up and OK while running", |r| {
        (0..2).all(|p| {
            status(r, &group, &topic, p) == Status::Ok && r.group(&group).unwrap().lag == 0
        })
    });
    listener.shutdown().await;
    let b = bootstrap();
    let g2 = group.clone();
    tokio::task::spawn_blocking(move || {
        wait_until("group empty", Duration::from_secs(20), || {
            group_members(&b, &g2).0 == 0
        })
    })
    .await
    .unwrap();
    produce(&topic, 0, 3);
    let r = sample_until_blocking(&mut s, "STOP on partition 0", |r| {
        status(r, &group, &topic, 0) == Status::Stop
    });
    assert_eq!(
        figures(&r, &group, &topic),
        BTreeMap::from([(0, (0, 9, Some(6), Some(3))), (1, (0, 4, Some(4), Some(0)))])
    );
    assert_eq!(
        status(&r, &group, &topic, 1),
        Status::Ok,
        "no lag, no alarm"
    );
    let g = r.group(&group).unwrap();
    assert_eq!((g.members, g.health, g.lag), (0, Status::Stop, 3));
    assert!(g.partitions.iter().all(|p| p.owner.is_none()));

    let mut known = Intents::default();
    known.pause(format!("{group}:{topic}:0").parse().unwrap());
    s.set_intents(known);
    let r = tokio::task::block_in_place(|| s.sample().unwrap());
    assert_eq!(status(&r, &group, &topic, 0), Status::Paused);
    assert_eq!(r.group(&group).unwrap().health, Status::Paused);
}

#[test]
fn an_offset_reset_backwards_is_rewind() {
    let topic = new_topic(broker(), "lag-rewind", 2);
    let group = unique_name("lag-rewind-g");
    produce(&topic, 0, 20);
    produce(&topic, 1, 8);
    commit(&group, &topic, &[(0, 20), (1, 8)]);
    let mut s = sampler(&group, TimeLagMode::Off);
    let r = s.sample().unwrap();
    assert_eq!(status(&r, &group, &topic, 0), Status::Ok);
    reset_offsets(
        bootstrap(),
        &group,
        &topic,
        ResetTo::Offset(5),
        true,
        Duration::from_secs(10),
    )
    .unwrap();
    let r = s.sample().unwrap();
    assert_eq!(
        figures(&r, &group, &topic),
        BTreeMap::from([
            (0, (0, 20, Some(5), Some(15))),
            (1, (0, 8, Some(5), Some(3)))
        ])
    );
    assert_eq!(status(&r, &group, &topic, 0), Status::Rewind);
    assert_eq!(status(&r, &group, &topic, 1), Status::Rewind);
    assert!(r
        .group(&group)
        .unwrap()
        .partition(&topic, 0)
        .unwrap()
        .reason
        .contains("from 20 to 5"));
    // The rewind leaves the window with its sample: then an unmoved offset with lag and no owner.
    let r = sample_until(&mut s, "no longer REWIND", |r| {
        status(r, &group, &topic, 0) != Status::Rewind
    });
    assert_eq!(status(&r, &group, &topic, 0), Status::Stop);
}
