//! The `EventLog` trait: what every storage backend provides.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::append::{AppendOutcome, StreamAppend};
use crate::chain::{EventView, LogHead, LogVerifier, StreamVerifier, VerifyReport};
use crate::error::LogError;
use crate::event::RecordedEvent;
use crate::stream::StreamId;
use crate::subscription::Subscription;

/// Default limit on one event's data + metadata + type, in bytes.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 1 << 20;

/// Events read per round trip by the provided methods.
pub const READ_BATCH: usize = 1024;

/// Which way to read a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Versions `from`, `from + 1`, …
    Forward,
    /// Versions `from`, `from - 1`, … down to 0. `from = u64::MAX` starts at the last event.
    Backward,
}

/// An append-only log of events, partitioned into streams, with one global order.
///
/// Contract every backend keeps (the conformance suite in [`crate::conformance`] checks it):
/// - `append` is atomic across all the streams it names: either every condition holds and every
///   event is written, or nothing is. An acknowledged append is durable.
/// - Appends are idempotent by event id: if every event id of a request is already recorded, in
///   the same streams, the original outcome is returned with `already_recorded` and nothing is
///   written; if only some are, or they were recorded in other streams, the append fails with
///   `IdempotencyConflict`.
/// - Global positions are 0-based, gapless, and follow commit order: an event at position `p` is
///   visible to readers only once every position below `p` is.
/// - Stream versions are 0-based and gapless.
/// - The hash chain is computed with [`crate::chain::ChainLink`], so every backend stores the
///   same hashes for the same history.
/// - Bad input is refused with a typed error before anything is written.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends to one or several streams atomically, each under its own expected version. A
    /// stream may be named with no events: its condition is then checked, and nothing written to
    /// it (a read dependency held to a version). A stream may be named once per append.
    async fn append(&self, appends: Vec<StreamAppend>) -> Result<AppendOutcome, LogError>;

    /// Reads up to `max` events of one stream from version `from`. A stream with no events reads
    /// as empty.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, LogError>;

    /// Reads up to `max` events of the whole log from position `from`, in position order.
    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, LogError>;

    /// The stream's current (last) version; `None` when it has no events.
    async fn stream_version(&self, stream: &StreamId) -> Result<Option<u64>, LogError>;

    /// The last event of the log; `None` when the log is empty.
    async fn head(&self) -> Result<Option<LogHead>, LogError>;

    /// Changes whenever new events become visible; carries the last visible position. This is a
    /// wake-up signal only: subscribers always read the events themselves.
    fn watch_head(&self) -> watch::Receiver<Option<u64>>;

    /// Recomputes every hash and link of the whole log. Corruption is reported in the
    /// [`VerifyReport`]; `Err` means the log could not be read at all.
    async fn verify_log(&self, expected_head: Option<LogHead>) -> Result<VerifyReport, LogError> {
        let mut verifier = LogVerifier::new(expected_head);
        let mut from = 0;
        loop {
            let batch = self.read_all(from, READ_BATCH).await?;
            let Some(last) = batch.last() else { break };
            from = last.position + 1;
            for event in &batch {
                if verifier.check(&EventView::from(event)).is_err() {
                    return Ok(verifier.finish());
                }
            }
        }
        Ok(verifier.finish())
    }

    /// Recomputes the hashes and stream links of one stream.
    async fn verify_stream(&self, stream: &StreamId) -> Result<VerifyReport, LogError> {
        let mut verifier = StreamVerifier::new();
        let mut from = 0;
        loop {
            let batch = self
                .read_stream(stream, from, Direction::Forward, READ_BATCH)
                .await?;
            let Some(last) = batch.last() else { break };
            from = last.stream_version + 1;
            for event in &batch {
                if verifier.check(&EventView::from(event)).is_err() {
                    return Ok(verifier.finish());
                }
            }
        }
        Ok(verifier.finish())
    }

    /// The last position recorded at or before `at` (µs since the epoch); `None` when the log
    /// started after it. Relies on timestamps never decreasing along the log.
    async fn position_at(&self, at: i64) -> Result<Option<u64>, LogError> {
        let Some(head) = self.head().await? else {
            return Ok(None);
        };
        // Binary search for the first position recorded after `at`.
        let (mut lo, mut hi) = (0u64, head.position + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let event = self.read_all(mid, 1).await?;
            match event.first() {
                Some(e) if e.recorded_at <= at => lo = mid + 1,
                _ => hi = mid,
            }
        }
        Ok(lo.checked_sub(1))
    }
}

/// Subscribes to the whole log from position `from`: every event from there on, exactly once, in
/// order, first the ones already recorded and then live ones, with no gap at the hand-over.
pub fn subscribe(log: Arc<dyn EventLog>, from: u64) -> Subscription {
    Subscription::new(log, from)
}
