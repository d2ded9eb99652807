//! Commits: turning low watermarks into committed offsets under the
//! listener's [`CommitPolicy`].
//!
//! | policy | during processing | on revoke, pause, shutdown |
//! |---|---|---|
//! | `Auto` | offsets of finished records are *stored*; librdkafka commits them every `auto.commit.interval.ms` | stored offsets committed synchronously |
//! | `SyncPerBatch` | synchronous commit after each finished job (batch) | synchronous commit |
//! | `Async` (default) | asynchronous commit at most every commit interval, with the sequence guard | synchronous commit |
//! | `EveryN { records }` | asynchronous commit whenever `records` more records finished (also inside a large batch), at the end of each batch, and at the interval | synchronous commit |
//!
//! Only the low watermark of a partition is ever committed or stored, so no
//! policy commits a record that was not processed. Records finished above it
//! travel in the commit metadata ([`crate::offset_metadata`]). A failed async commit is
//! retried (with the then-current offsets) only when the sequence guard
//! ([`crate::commit_sequence`]) says no newer commit was sent since.

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};
use switchyard_config::CommitPolicy;

use crate::commit_sequence::{CommitOffsets, Verdict};
use switchyard_config::Tp;

use crate::coordinator::Coordinator;
use crate::offset_metadata::{encode, MAX_METADATA_BYTES};

impl Coordinator {
    /// Commit now if the policy says so.
    pub fn maybe_commit(&mut self, kafka: &BaseConsumer<impl ConsumerContext>) {
        if !self.dirty {
            return;
        }
        let interval_due = self.last_commit.elapsed() >= self.settings.commit_interval;
        let due = match self.settings.commit {
            CommitPolicy::Auto => true,
            CommitPolicy::SyncPerBatch => self.job_ended,
            CommitPolicy::Async => interval_due,
            CommitPolicy::EveryN { records } => {
                self.records_since_commit >= u64::from(records) || self.job_ended || interval_due
            }
        };
        if !due {
            return;
        }
        let mode = match self.settings.commit {
            CommitPolicy::SyncPerBatch => CommitMode::Sync,
            _ => CommitMode::Async,
        };
        if let Err(e) = self.commit(kafka, mode, None) {
            tracing::warn!(listener = %self.name, error = %e, "commit failed");
        }
    }

    /// Commit the low watermark of every partition (or of `only`) that moved.
    /// Returns what was committed (sync) or sent (async).
    pub fn commit(
        &mut self,
        kafka: &BaseConsumer<impl ConsumerContext>,
        mode: CommitMode,
        only: Option<&[Tp]>,
    ) -> KafkaResult<Vec<(String, i32, i64)>> {
        if only.is_none() {
            // a commit of some partitions (pause, revoke) leaves what the
            // others finished to the policy's next commit
            self.dirty = false;
            self.job_ended = false;
            self.records_since_commit = 0;
            self.last_commit = std::time::Instant::now();
        }
        let mut tpl = TopicPartitionList::new();
        let mut sent = Vec::new();
        let mut metas = Vec::new();
        for (tp, part) in &self.parts {
            if only.is_some_and(|o| !o.contains(tp)) {
                continue;
            }
            let Some(w) = part.tracker.low_watermark() else {
                continue;
            };
            let meta = encode(w, part.tracker.done_above(), MAX_METADATA_BYTES);
            let moved = part.committed.is_none_or(|c| w > c);
            // finished-above offsets changed although the watermark did not
            let meta_changed = meta.is_some() && meta != part.commit_meta;
            if !moved && !meta_changed {
                continue;
            }
            if matches!(mode, CommitMode::Async)
                && part.commit_sent == Some(w)
                && part.commit_meta == meta
            {
                continue; // already on its way
            }
            tpl.add_partition_offset(&tp.0, tp.1, Offset::Offset(w))?;
            if let Some(m) = &meta {
                if let Some(mut e) = tpl.find_partition(&tp.0, tp.1) {
                    e.set_metadata(m);
                }
            }
            metas.push(meta);
            sent.push((tp.0.clone(), tp.1, w));
        }
        if sent.is_empty() {
            return Ok(sent);
        }
        self.stats.commits.inc();
        for ((t, p, _), meta) in sent.iter().zip(metas) {
            if let Some(part) = self.parts.get_mut(&(t.clone(), *p)) {
                part.commit_meta = meta;
            }
        }
        let result = if self.settings.commit == CommitPolicy::Auto {
            kafka.store_offsets(&tpl).and_then(|()| match mode {
                CommitMode::Sync => {
                    self.commit_sync(|| kafka.commit_consumer_state(CommitMode::Sync))
                }
                CommitMode::Async => Ok(()),
            })
        } else {
            match mode {
                CommitMode::Async => {
                    self.seq.issued(to_commit_offsets(&sent));
                    commit_async(kafka, &tpl)
                }
                CommitMode::Sync => self.commit_sync(|| kafka.commit(&tpl, mode)),
            }
        };
        match (&result, mode) {
            (Err(_), _) => self.stats.commit_failures.inc(),
            (Ok(()), CommitMode::Sync) => self.mark_committed(&sent),
            (Ok(()), CommitMode::Async) => {
                for (t, p, o) in &sent {
                    if let Some(part) = self.parts.get_mut(&(t.clone(), *p)) {
                        part.commit_sent = Some(*o);
                    }
                }
                if self.settings.commit == CommitPolicy::Auto {
                    // stored, librdkafka commits them: count them as ours
                    self.mark_committed(&sent);
                }
            }
        }
        result.map(|()| sent)
    }

    /// A synchronous commit, tried again while the broker answers that the
    /// member epoch is stale (KIP-848's consumer protocol: the commit carries
    /// the member epoch, which the broker bumps with every assignment the
    /// member confirms; a commit sent before the heartbeat response that
    /// brings the new epoch is refused, and librdkafka does not retry a
    /// manual commit but sends that heartbeat at once). A commit on revoke
    /// hits this whenever a rebalance follows another closely, and giving
    /// up would hand the partition over without its latest offsets. Tries
    /// for up to `default.api.timeout.ms`, 20 ms apart at first.
    fn commit_sync(&self, commit: impl Fn() -> KafkaResult<()>) -> KafkaResult<()> {
        let deadline = std::time::Instant::now() + self.settings.api_timeout;
        let mut pause = std::time::Duration::from_millis(20);
        let mut tries = 1;
        loop {
            match commit() {
                Err(e) if stale_epoch(&e) && std::time::Instant::now() + pause < deadline => {
                    tracing::debug!(listener = %self.name, tries, "commit refused for a stale member epoch; trying again");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(200));
                    tries += 1;
                }
                Err(e) if stale_epoch(&e) => {
                    tracing::warn!(listener = %self.name, tries, "commit refused for a stale member epoch until the deadline");
                    return Err(e);
                }
                other => {
                    if tries > 1 {
                        tracing::info!(listener = %self.name, tries, ok = other.is_ok(), "commit after a stale member epoch");
                    }
                    return other;
                }
            }
        }
    }

    fn mark_committed(&mut self, offsets: &[(String, i32, i64)]) {
        for (t, p, o) in offsets {
            if let Some(part) = self.parts.get_mut(&(t.clone(), *p)) {
                part.committed = Some(part.committed.map_or(*o, |c| c.max(*o)));
            }
        }
        self.start_floors.committed(offsets);
    }

    /// librdkafka reports the outcome of a commit (the consumer's commit callback).
    pub fn on_commit_result(&mut self, ok: bool, offsets: &TopicPartitionList) {
        let list: Vec<(String, i32, i64)> = offsets
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.topic().to_string(), e.partition(), o)),
                _ => None,
            })
            .collect();
        let key = to_commit_offsets(&list);
        if ok {
            self.seq.succeeded(&key);
            self.mark_committed(&list);
            return;
        }
        self.stats.commit_failures.inc();
        match self.seq.failed(&key) {
            Verdict::Retry => {
                tracing::warn!(listener = %self.name, "async commit failed; retrying with current offsets");
                for (t, p, _) in &list {
                    if let Some(part) = self.parts.get_mut(&(t.clone(), *p)) {
                        part.commit_sent = None;
                    }
                }
                self.dirty = true;
            }
            Verdict::Stale => {
                self.stats.stale_commit_failures.inc();
                tracing::info!(listener = %self.name, "stale async commit failure ignored: a newer commit was sent");
            }
            Verdict::Unknown => {}
        }
    }
}

/// An async commit whose result comes back through the consumer queue (and
/// so to [`Coordinator::on_commit_result`]); `rd_kafka_commit` in async mode
/// reports nothing unless a global callback is set.
fn commit_async(
    kafka: &BaseConsumer<impl ConsumerContext>,
    tpl: &TopicPartitionList,
) -> KafkaResult<()> {
    use rdkafka::bindings as rdsys;
    // SAFETY: the queue handle is a new reference released right after the
    // call; the offsets are copied by librdkafka.
    let err = unsafe {
        let rk = kafka.client().native_ptr();
        let queue = rdsys::rd_kafka_queue_get_consumer(rk);
        if queue.is_null() {
            return kafka.commit(tpl, CommitMode::Async);
        }
        let err = rdsys::rd_kafka_commit_queue(rk, tpl.ptr(), queue, None, std::ptr::null_mut());
        rdsys::rd_kafka_queue_destroy(queue);
        err
    };
    if err == rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
        Ok(())
    } else {
        Err(rdkafka::error::KafkaError::ConsumerCommit(err.into()))
    }
}

/// The broker refused a commit for a member epoch that is no longer the
/// member's (KIP-848).
fn stale_epoch(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode;
    matches!(
        e.rdkafka_error_code(),
        Some(RDKafkaErrorCode::StaleMemberEpoch)
    )
}

fn to_commit_offsets(list: &[(String, i32, i64)]) -> CommitOffsets {
    list.iter().map(|(t, p, o)| ((t.clone(), *p), *o)).collect()
}
