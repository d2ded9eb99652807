//! Handlers: the user's async code that processes records, one at a time
//! ([`HandlerKind::Record`]) or a batch at a time ([`HandlerKind::Batch`]).
//!
//! A handler is any `Fn(Record<K, V>) -> impl Future<Output = HandlerResult>`
//! (or `Fn(Vec<Record<K, V>>) -> ...` for batches). The listener builder pairs
//! it with a key and a value [`Deserializer`] and erases the types into a
//! [`Processor`], which the executor (executor.rs) calls on worker tasks.
//! Returning `Err` makes the runtime retry the record (or batch) by the
//! listener's retry policy; see [`crate::failure`].
//!
//! ```
//! use switchyard_runtime::{handler::HandlerResult, record::Record};
//! async fn handle(r: Record<String, String>) -> HandlerResult {
//!     println!("{} -> {}", r.key.unwrap_or_default(), r.value);
//!     Ok(())
//! }
//! ```

use std::future::Future;
use std::sync::Arc;

use crate::fetched::Fetched;
use futures::future::BoxFuture;
use futures::FutureExt;

use crate::deserializer::{DecodeError, Deserializer};
use crate::record::{headers_of, Record};

/// The error a handler returns; anything that is an `Error` converts into it.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;
/// The result of a handler call.
pub type HandlerResult = Result<(), HandlerError>;

/// Whether the listener's handler takes records one by one or in batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerKind {
    /// One call per record.
    Record,
    /// One call per batch of records of one partition (at most `max.poll.records`).
    Batch,
}

/// A type-erased handler with its deserializers.
pub(crate) trait Processor: Send + Sync + 'static {
    fn kind(&self) -> HandlerKind;
    /// Decode one message and start the handler on it.
    fn call_one(&self, msg: &Fetched) -> Result<BoxFuture<'static, HandlerResult>, DecodeError>;
    /// Decode messages and start the batch handler on the decodable ones
    /// (`None` when none decodes); undecodable ones are returned by index.
    fn call_batch(
        &self,
        msgs: &[Fetched],
    ) -> (
        Option<BoxFuture<'static, HandlerResult>>,
        Vec<(usize, DecodeError)>,
    );
}

pub(crate) struct Typed<KD, VD, F> {
    pub key: KD,
    pub value: VD,
    pub handler: F,
}

impl<KD: Deserializer, VD: Deserializer, F> Typed<KD, VD, F> {
    fn decode(&self, msg: &Fetched) -> Result<Record<KD::Output, VD::Output>, DecodeError> {
        let topic = msg.topic();
        let key = match msg.key() {
            None => None,
            Some(k) => Some(self.key.deserialize(topic, Some(k)).map_err(|mut e| {
                e.what = "key".into();
                e
            })?),
        };
        let value = self
            .value
            .deserialize(topic, msg.payload())
            .map_err(|mut e| {
                e.what = "value".into();
                e
            })?;
        Ok(Record {
            topic: topic.to_string(),
            partition: msg.partition(),
            offset: msg.offset(),
            timestamp_ms: msg.timestamp().to_millis(),
            headers: headers_of(msg),
            key,
            value,
        })
    }
}

/// Wraps a per-record closure.
pub(crate) struct PerRecord<F>(pub F);
/// Wraps a per-batch closure.
pub(crate) struct PerBatch<F>(pub F);

impl<KD, VD, F, Fut> Processor for Typed<KD, VD, PerRecord<F>>
where
    KD: Deserializer,
    VD: Deserializer,
    F: Fn(Record<KD::Output, VD::Output>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn kind(&self) -> HandlerKind {
        HandlerKind::Record
    }
    fn call_one(&self, msg: &Fetched) -> Result<BoxFuture<'static, HandlerResult>, DecodeError> {
        let record = self.decode(msg)?;
        Ok((self.handler.0)(record).boxed())
    }
    fn call_batch(
        &self,
        msgs: &[Fetched],
    ) -> (
        Option<BoxFuture<'static, HandlerResult>>,
        Vec<(usize, DecodeError)>,
    ) {
        // Not used for record handlers; run them one after the other.
        let mut futs = Vec::new();
        let mut bad = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            match self.call_one(m) {
                Ok(f) => futs.push(f),
                Err(e) => bad.push((i, e)),
            }
        }
        let fut = async move {
            for f in futs {
                f.await?;
            }
            Ok(())
        };
        (Some(fut.boxed()), bad)
    }
}

impl<KD, VD, F, Fut> Processor for Typed<KD, VD, PerBatch<F>>
where
    KD: Deserializer,
    VD: Deserializer,
    F: Fn(Vec<Record<KD::Output, VD::Output>>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn kind(&self) -> HandlerKind {
        HandlerKind::Batch
    }
    fn call_one(&self, msg: &Fetched) -> Result<BoxFuture<'static, HandlerResult>, DecodeError> {
        let record = self.decode(msg)?;
        Ok((self.handler.0)(vec![record]).boxed())
    }
    fn call_batch(
        &self,
        msgs: &[Fetched],
    ) -> (
        Option<BoxFuture<'static, HandlerResult>>,
        Vec<(usize, DecodeError)>,
    ) {
        let mut records = Vec::with_capacity(msgs.len());
        let mut bad = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            match self.decode(m) {
                Ok(r) => records.push(r),
                Err(e) => bad.push((i, e)),
            }
        }
        if records.is_empty() {
            return (None, bad);
        }
        (Some((self.handler.0)(records).boxed()), bad)
    }
}

pub(crate) type SharedProcessor = Arc<dyn Processor>;
