//! Seeking the partitions of a running listener: to the beginning, the end,
//! an offset, or the first record at or after a timestamp
//! (`offsets_for_times`).
//!
//! A seek drops the partition's waiting records and restarts its offset
//! tracking at the target, so the next commit is the target (records in
//! flight at that moment finish, but no longer count). Logical positions are
//! resolved to absolute offsets first (watermarks), so the commit point is
//! always known.

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};
use switchyard_config::Tp;

use crate::command::SeekTo;
use crate::coordinator::Coordinator;
use crate::error::RuntimeError;

impl Coordinator {
    /// Seek `tp` (or every assigned partition) to `to`, counting the offsets
    /// `done_above` it as finished (a handoff's); returns the absolute offsets.
    pub fn seek(
        &mut self,
        kafka: &BaseConsumer<impl ConsumerContext>,
        tp: Option<Tp>,
        to: SeekTo,
        done_above: Vec<i64>,
    ) -> Result<Vec<(String, i32, i64)>, RuntimeError> {
        let targets: Vec<Tp> = match tp {
            Some(tp) if self.parts.contains_key(&tp) => vec![tp],
            Some((topic, partition)) => return Err(RuntimeError::NotAssigned { topic, partition }),
            None => self.parts.keys().cloned().collect(),
        };
        let timeout = self.settings.api_timeout;
        let mut done = Vec::new();
        for tp in targets {
            let offset = resolve(kafka, &tp, to, timeout)?;
            let part = self.parts.get_mut(&tp).expect("checked above");
            part.queue.drain_all();
            part.tracker.reset(offset);
            part.tracker
                .seed_done(done_above.iter().copied().filter(|o| *o > offset));
            if !part.fetch_paused() {
                kafka.seek(&tp.0, tp.1, Offset::Offset(offset), timeout)?;
            }
            self.dirty = true;
            tracing::info!(listener = %self.name, topic = %tp.0, partition = tp.1, offset, ?to, "seek");
            done.push((tp.0, tp.1, offset));
        }
        Ok(done)
    }
}

/// The absolute offset `to` means for `tp`.
fn resolve(
    kafka: &BaseConsumer<impl ConsumerContext>,
    tp: &Tp,
    to: SeekTo,
    timeout: std::time::Duration,
) -> Result<i64, RuntimeError> {
    Ok(match to {
        SeekTo::Offset(o) => o,
        SeekTo::Beginning => kafka.fetch_watermarks(&tp.0, tp.1, timeout)?.0,
        SeekTo::End => kafka.fetch_watermarks(&tp.0, tp.1, timeout)?.1,
        SeekTo::Timestamp(ms) => {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(&tp.0, tp.1, Offset::Offset(ms))?;
            let found = kafka.offsets_for_times(tpl, timeout)?;
            match found.find_partition(&tp.0, tp.1).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                // no record at or after the time: the end
                _ => kafka.fetch_watermarks(&tp.0, tp.1, timeout)?.1,
            }
        }
    })
}
