//! Start floors: where a partition starts when it is assigned later, at the
//! earliest. A deployment handoff hands a partition over with the previous
//! owner's committed offset; the member that holds the partition at that
//! moment seeks to `max(own committed, handoff)`, but if that member dies
//! before committing, or a rebalance moves the partition within its group,
//! the next holder would start at the group's older committed offset and
//! process again what the previous owner already did. With the handoff
//! offsets as start floors, every assignment starts at
//! `max(committed, floor)`, whichever member gets the partition.
//!
//! The floor is applied inside the rebalance callback, before the partition
//! is assigned in librdkafka (the assignment carries the start offset; a seek
//! right after an assignment races librdkafka's own committed-offset fetch),
//! and the start becomes the partition's next commit.

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use crate::coordinator::{Coordinator, Kafka, Tp};

impl Coordinator {
    /// Replace the start floors.
    pub fn set_start_floors(&mut self, floors: Vec<(String, i32, i64)>) {
        self.start_floors = floors.into_iter().map(|(t, p, o)| ((t, p), o)).collect();
    }

    /// Before an assignment: raise the start offset of every partition of
    /// `tpl` whose floor is above its committed offset (or that has none);
    /// remembers them for [`Coordinator::on_assign`].
    pub fn apply_start_floors(&mut self, kafka: &Kafka, tpl: &mut TopicPartitionList) {
        let mut floored = TopicPartitionList::new();
        for e in tpl.elements() {
            if self
                .start_floors
                .contains_key(&(e.topic().to_string(), e.partition()))
            {
                floored.add_partition(e.topic(), e.partition());
            }
        }
        if floored.count() == 0 {
            return;
        }
        let committed = match kafka.committed_offsets(floored, self.settings.api_timeout) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(listener = %self.name, error = %e, "cannot read committed offsets for the start floors");
                return;
            }
        };
        for e in committed.elements() {
            let tp: Tp = (e.topic().to_string(), e.partition());
            let floor = self.start_floors[&tp];
            let below = match e.offset() {
                Offset::Offset(c) => c < floor,
                _ => true,
            };
            if below
                && tpl
                    .set_partition_offset(&tp.0, tp.1, Offset::Offset(floor))
                    .is_ok()
            {
                tracing::info!(listener = %self.name, topic = %tp.0, partition = tp.1, floor, committed = ?e.offset(), "start floor: starting above the committed offset");
                self.floored.insert(tp, floor);
            }
        }
    }
}
