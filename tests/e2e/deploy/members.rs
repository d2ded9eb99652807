//! Phase 2 of a separate-groups switch waits on the group's real member
//! list: a member of the active slot's group that is no Switchyard instance
//! (a plain consumer, which reports no status and acknowledges nothing) keeps
//! the freeze from completing, and the switch rolls back; once it has left
//! the group, the same switch goes through.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::*;

/// A plain librdkafka consumer in `group`, polling on a thread of its own
/// until dropped (then it leaves the group).
pub(super) struct Stranger {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Stranger {
    pub(super) fn join(group: &str, topic: &str) -> Stranger {
        let consumer: BaseConsumer = client_config(&bootstrap())
            .set("group.id", group)
            .set("partition.assignment.strategy", "range")
            .set("session.timeout.ms", "6000")
            .set("enable.auto.commit", "false")
            .create()
            .expect("create the stranger");
        consumer.subscribe(&[topic]).expect("subscribe");
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let _ = consumer.poll(Duration::from_millis(50));
            }
            consumer.unsubscribe();
            drop(consumer);
        });
        Stranger {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn phase_two_waits_for_every_member_of_the_active_group() {
    let mut d = Deployment::new("dpmem");
    let (code, out) = d.deploy("init", &["--slot", "blue", "--topics", &d.topic.clone()]);
    assert_eq!(code, 0, "{out}");
    let tail = d.plane.tail();
    let _b1 = d.probe("dpmem-blue-1", "blue");
    let _g1 = d.probe("dpmem-green-1", "green");
    d.wait_ready(&tail, &[("blue", 1), ("green", 1)]);
    let blue_group = format!("{}-blue", d.group);
    let stranger = Stranger::join(&blue_group, &d.topic);
    wait_until("two members in the blue group", WAIT, || {
        group_members(&bootstrap(), &blue_group).0 == 2
    });

    let (code, out) = d.deploy("switch", &["--to", "green", "--phase-timeout-ms", "4000"]);
    assert_ne!(code, 0, "the switch must not pass the freeze: {out}");
    assert!(
        out.contains("phase 2 (freeze) timed out") && out.contains("acknowledged 1 of 2 members"),
        "{out}"
    );
    assert!(all_owned_by(&d, "blue"), "rolled back: {:?}", d.owners());

    drop(stranger);
    wait_until("one member in the blue group", WAIT, || {
        group_members(&bootstrap(), &blue_group).0 == 1
    });
    let (code, out) = d.deploy("switch", &["--to", "green"]);
    assert_eq!(code, 0, "{out}");
    assert!(all_owned_by(&d, "green"), "{:?}", d.owners());
    tail.stop();
}
