//! The decisions of one partition: pause, drain, commit failure, stop,
//! resume (with and without skipping), revoke, backpressure and the fetch
//! state librdkafka must take, without a Kafka client.

use super::*;
use crate::jobs_queue::test_record as msg;

/// A running partition in key mode that took records `offsets` (keys `k<o>`,
/// so a lane each).
fn partition_with(offsets: impl IntoIterator<Item = i64>) -> Partition {
    let mut p = Partition::new(1, "t".into(), 0, Ordering::Key);
    for o in offsets {
        p.offer(msg(o, &format!("k{o}")), false);
    }
    p
}

/// The lanes of `taken` ended, their records finished.
fn end(taken: Taken) -> LaneEnds {
    LaneEnds {
        done: taken.records.iter().map(|m| m.offset()).collect(),
        lanes: taken.lanes.into_iter().map(|(lane, _)| lane).collect(),
        unstarted: Vec::new(),
    }
}

#[test]
fn a_pause_of_an_idle_partition_is_drained_at_once_and_paused_once_committed() {
    let mut p = partition_with([]);
    assert_eq!(p.begin_pause(), PauseStart::Drained);
    assert_eq!(p.state(), PartitionState::Draining);
    assert!(!p.pause_settled(), "not committed yet: not acknowledged");
    assert_eq!(p.fetch_change(false), Some(Fetch::Pause));
    assert_eq!(p.fetch_change(false), None, "paused once");
    assert!(p.pause_committed(None));
    assert_eq!(p.state(), PartitionState::Paused);
    assert!(p.pause_settled());
    assert_eq!(
        p.begin_pause(),
        PauseStart::NotRunning,
        "a second pause changes nothing"
    );
}

#[test]
fn a_pause_drops_waiting_records_and_waits_for_the_lanes_in_flight() {
    let mut p = partition_with(0..4);
    let taken = p.take_job(1, 10, 10).expect("a lane is ready");
    assert_eq!(taken.records.len(), 1);
    assert_eq!(p.in_flight_lanes(), 1);
    assert_eq!(p.begin_pause(), PauseStart::Draining);
    assert!(
        taken.halt.load(AtomicOrdering::Relaxed),
        "the running job is told to halt"
    );
    assert_eq!(p.queue.len(), 0, "records waiting for a worker are dropped");
    assert_eq!(
        p.tracker.next(),
        Some(1),
        "fetching starts again at the first dropped"
    );
    assert!(
        p.take_job(1, 10, 10).is_none(),
        "nothing is dispatched while draining"
    );
    assert!(!p.pause_settled());

    let ended = p.lanes_ended(end(taken));
    assert_eq!(
        ended,
        LanesEnded {
            finished: 1,
            drained: true
        }
    );
    assert_eq!(
        p.tracker.low_watermark(),
        Some(1),
        "the finished record is committable"
    );
    assert!(p.pause_committed(None));
    assert!(p.pause_settled());
}

#[test]
fn records_a_halted_lane_did_not_start_are_fetched_again() {
    let mut p = Partition::new(1, "t".into(), 0, Ordering::Partition);
    for o in 0..5 {
        p.offer(msg(o, "k"), false);
    }
    let taken = p.take_job(1, 10, 10).expect("the partition's lane");
    assert_eq!(taken.records.len(), 5);
    assert_eq!(p.begin_pause(), PauseStart::Draining);
    let ended = p.lanes_ended(LaneEnds {
        lanes: taken.lanes.into_iter().map(|(l, _)| l).collect(),
        done: vec![0, 1],
        unstarted: vec![2, 3, 4],
    });
    assert!(ended.drained);
    assert_eq!(ended.finished, 2);
    assert_eq!(p.tracker.low_watermark(), Some(2));
    assert_eq!(
        p.tracker.next(),
        Some(2),
        "fetched again from the first not started"
    );
}

#[test]
fn a_failed_pause_commit_keeps_it_draining_with_the_reason_until_a_commit_succeeds() {
    let mut p = partition_with([]);
    p.begin_pause();
    assert!(!p.pause_committed(Some("commit on pause failed: timed out".into())));
    assert_eq!(
        p.state(),
        PartitionState::Draining,
        "not paused: not committed"
    );
    assert!(p.pause_settled(), "the pause is answered, with the failure");
    assert!(p.drained_uncommitted(), "a later pause commits it again");
    assert_eq!(
        p.status().reason.as_deref(),
        Some("commit on pause failed: timed out")
    );
    assert!(p.pause_committed(None));
    assert_eq!(p.state(), PartitionState::Paused);
    assert_eq!(p.pause_failure(), None);
}

#[test]
fn records_fetched_after_the_pause_are_dropped_and_fetched_again_on_resume() {
    let mut p = partition_with(0..2);
    p.begin_pause();
    p.pause_committed(None);
    assert_eq!(p.fetch_change(false), Some(Fetch::Pause));
    // already on their way from the broker when the fetch was paused
    p.offer(msg(2, "k2"), false);
    p.offer(msg(3, "k3"), false);
    assert_eq!(p.queue.len(), 0);
    assert_eq!(p.tracker.pending(), 0);
    assert_eq!(p.resume(false), None);
    assert_eq!(
        p.fetch_change(false),
        Some(Fetch::Resume { from: Some(0) }),
        "the first record dropped by the pause comes first"
    );
}

#[test]
fn a_stopped_partition_resumes_at_the_failed_record_or_after_it_when_skipped() {
    let mut p = partition_with(0..3);
    let first = p.take_job(1, 10, 10).unwrap();
    let second = p.take_job(1, 10, 10).unwrap();
    p.lanes_ended(end(first)); // offset 0 done
    p.stop_at(1, "handler failed: boom".into());
    assert_eq!(p.state(), PartitionState::Stopped);
    assert_eq!(p.fetch_change(false), Some(Fetch::Pause));
    assert!(!p.pause_settled(), "its failed lane has not ended yet");
    assert_eq!(p.status().state, PartitionState::Draining);
    let ended = p.lanes_ended(LaneEnds {
        lanes: second.lanes.into_iter().map(|(l, _)| l).collect(),
        done: vec![],
        unstarted: vec![],
    });
    assert!(
        ended.drained,
        "stopped with nothing running: its commit is due"
    );
    assert!(p.pause_settled());
    assert_eq!(p.status().state, PartitionState::Stopped);
    assert_eq!(p.status().reason.as_deref(), Some("handler failed: boom"));
    assert_eq!(
        p.tracker.low_watermark(),
        Some(1),
        "committed below the failed record"
    );

    let mut retried = p_clone_stopped();
    assert_eq!(retried.resume(false), None);
    assert_eq!(
        retried.fetch_change(false),
        Some(Fetch::Resume { from: Some(1) })
    );

    assert_eq!(p.resume(true), Some(1));
    assert_eq!(p.state(), PartitionState::Running);
    assert_eq!(
        p.tracker.low_watermark(),
        Some(2),
        "the skipped record counts as done"
    );
    assert_eq!(p.status().reason, None);
}

/// A partition stopped at offset 1, the record its handler failed on, after
/// finishing 0; nothing in flight any more.
fn p_clone_stopped() -> Partition {
    let mut p = partition_with(0..3);
    let first = p.take_job(1, 10, 10).unwrap();
    let failed = p.take_job(1, 10, 10).unwrap();
    p.lanes_ended(end(first));
    p.stop_at(1, "boom".into());
    p.lanes_ended(LaneEnds {
        lanes: failed.lanes.into_iter().map(|(l, _)| l).collect(),
        done: vec![],
        unstarted: vec![],
    });
    p.fetch_change(false);
    p
}

#[test]
fn a_revoke_drains_a_running_partition_and_keeps_a_paused_one_paused() {
    let mut p = partition_with(0..3);
    let taken = p.take_job(1, 10, 10).unwrap();
    p.begin_revoke();
    assert_eq!(p.state(), PartitionState::Draining);
    assert_eq!(p.queue.len(), 0);
    assert!(taken.halt.load(AtomicOrdering::Relaxed));
    let mut q = partition_with([]);
    q.start_paused();
    q.begin_revoke();
    assert_eq!(q.state(), PartitionState::Paused);
}

#[test]
fn backpressure_stops_at_the_bound_and_goes_on_below_half() {
    let mut p = partition_with([]);
    assert!(p.backpressure(true, false));
    assert!(!p.backpressure(true, false), "once");
    assert!(!p.takes_records());
    assert_eq!(p.fetch_change(false), Some(Fetch::Pause));
    assert!(
        !p.backpressure(false, false),
        "between half and the bound: unchanged"
    );
    assert!(p.backpressured());
    assert!(p.backpressure(false, true));
    assert!(p.takes_records());
    assert_eq!(p.fetch_change(false), Some(Fetch::Resume { from: None }));
}

#[test]
fn a_partition_with_its_own_fetch_queue_is_backpressured_without_pausing_its_fetch() {
    let mut p = partition_with([]);
    p.own_queue = true;
    assert!(p.backpressure(true, false));
    assert!(!p.takes_records(), "its records are not taken");
    assert_eq!(p.fetch_change(false), None, "its fetch goes on");
}

#[test]
fn shutting_down_pauses_the_fetch_and_drops_what_arrives() {
    let mut p = partition_with([]);
    assert_eq!(p.fetch_change(true), Some(Fetch::Pause));
    p.offer(msg(7, "k"), true);
    assert_eq!(p.queue.len(), 0);
    assert_eq!(p.tracker.next(), Some(7));
}

#[test]
fn abandoned_handler_calls_give_their_records_back() {
    let mut p = partition_with(0..3);
    let taken = p.take_job(2, 10, 10).unwrap();
    assert_eq!(taken.lanes.len(), 2);
    p.begin_pause();
    assert_eq!(p.abandoned(2), 2, "the two records in flight");
    assert_eq!(p.in_flight_lanes(), 0);
    assert_eq!(p.tracker.pending(), 0);
    assert_eq!(
        p.tracker.next(),
        Some(0),
        "delivered again from the first of them"
    );
    assert!(p.pause_committed(None));
}

#[test]
fn records_finished_by_a_previous_owner_are_not_queued() {
    let mut p = Partition::new(1, "t".into(), 0, Ordering::Key);
    p.tracker.seed_done([1]);
    for o in 0..3 {
        p.offer(msg(o, &format!("k{o}")), false);
    }
    assert_eq!(p.queue.len(), 2, "offset 1 was finished above the commit");
}
