//! The `EventLog` trait: what every storage backend provides.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::append::{AppendOutcome, StreamAppend};
use crate::bulk::StreamFilter;
use crate::chain::{EventView, Hash, LogHead, LogVerifier, StreamVerifier, VerifyReport};
use crate::error::LogError;
use crate::event::RecordedEvent;
use crate::redact::Redacted;
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
/// Contract every backend keeps (the conformance suite, module `conformance` behind the
/// feature of that name, checks it):
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
/// - `copy_in` writes events recorded elsewhere verbatim, hashes included, only where they
///   continue this log's chain exactly; it is serialised with appends, and normal appends
///   continue the chain after it, so a log migrated with [`crate::copy_log`] carries on as if it
///   had always lived in this backend.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends to one or several streams atomically, each under its own expected version. A
    /// stream may be named with no events: its condition is then checked, and nothing written to
    /// it (a read dependency held to a version). A stream may be named once per append.
    async fn append(&self, appends: Vec<StreamAppend>) -> Result<AppendOutcome, LogError>;

    /// Writes events already recorded in another log, **verbatim**, to migrate or restore a log
    /// ([`crate::copy_log`] copies a whole log through it): every field is kept as given —
    /// position, stream and version, event id, type and schema version, `recorded_at`, the exact
    /// data and metadata bytes (a redacted payload, read back as empty data, stays redacted) and
    /// the four hashes. Returns the log's new head.
    ///
    /// The batch must continue this log exactly, or it is refused and **nothing** of it is
    /// written (one transaction):
    /// - its first position is the head's + 1 (0 for an empty log), and positions are
    ///   contiguous;
    /// - each event's `prev_log_hash` is the previous event's hash (the head's for the first,
    ///   zero at position 0), and `recorded_at` never decreases (from the head's on);
    /// - stream versions and `prev_stream_hash` continue the streams already in this log (a new
    ///   stream starts at version 0 with a zero link);
    /// - every hash recomputes ([`crate::chain::ChainLink`]: `data_hash`, unless redacted, and
    ///   the event hash);
    /// - event ids are new to the log and distinct within the batch;
    /// - every event is valid on its own, as for `append` (type, JSON, size limit).
    ///
    /// A breach of the chain or a duplicate id is [`LogError::CopyRefused`] with the position
    /// and a [`crate::CopyRefusal`]; an invalid event is the error `append` would give; an empty
    /// batch is [`LogError::InvalidAppend`]. [`crate::validate_copy`] makes these checks, on
    /// state the backend reads inside its write transaction.
    ///
    /// A copy goes through the backend's writer, serialised with appends exactly like another
    /// append, and publishes the new head ([`EventLog::watch_head`]) like one. Normal appends
    /// continue the chain after it: the next append links to the copied head, its streams
    /// continue from the copied versions, and its `recorded_at` is clamped to the copied
    /// head's, so it never decreases even if the source's clock ran ahead.
    ///
    /// The default refuses with [`LogError::Unsupported`]; every storage backend implements it,
    /// and a wrapper around a log should forward it.
    async fn copy_in(&self, events: Vec<RecordedEvent>) -> Result<LogHead, LogError> {
        let _ = events;
        Err(LogError::Unsupported {
            operation: "copy_in",
        })
    }

    /// Blanks the payload of the event at `position` (its `data` becomes absent, read back as
    /// empty data and [`RecordedEvent::is_redacted`]), as a court or legal order requires,
    /// **without touching any hash**: the chain covers `data_hash`, which stays, so the log
    /// still verifies and lists the position among its redactions. `expected_event_hash` is the
    /// event hash of the event the caller means: another hash there is
    /// [`LogError::RedactionRefused`], no event there [`LogError::NoSuchPosition`], and nothing
    /// is written. Idempotent: an event already redacted answers `Ok` with
    /// [`Redacted::already_redacted`]. Durable as an append is once acknowledged.
    ///
    /// The default refuses with [`LogError::Unsupported`]; every storage backend implements it,
    /// and a wrapper around a log should forward it.
    async fn redact(&self, position: u64, expected_event_hash: Hash) -> Result<Redacted, LogError> {
        let _ = (position, expected_event_hash);
        Err(LogError::Unsupported {
            operation: "redact",
        })
    }

    /// Reads up to `max` events of one stream from version `from`. A stream with no events reads
    /// as empty.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, LogError>;

    /// Every event of one stream from version `from` to its end, oldest first (empty for a
    /// stream with no events).
    ///
    /// The default reads [`READ_BATCH`] at a time until an empty batch (a short batch does not
    /// prove the end: `read_stream` promises "up to `max`"), so it costs one extra round trip
    /// and its batches may straddle appends. A store that can should read the rest in one
    /// query, as one snapshot: every point read of a record in the past goes through here.
    async fn read_stream_to_end(
        &self,
        stream: &StreamId,
        from: u64,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let mut events = Vec::new();
        let mut from = from;
        loop {
            let batch = self
                .read_stream(stream, from, Direction::Forward, READ_BATCH)
                .await?;
            let Some(last) = batch.last() else {
                return Ok(events);
            };
            from = last.stream_version + 1;
            events.extend(batch);
        }
    }

    /// Reads up to `max` events of the whole log from position `from`, in position order.
    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, LogError>;

    /// The event hashes of up to `max` positions from `from`, in position order: the leaves of
    /// the log's Merkle tree (`citydb-tlog`). A backend may read just the hash column.
    async fn read_hashes(&self, from: u64, max: usize) -> Result<Vec<Hash>, LogError> {
        let events = self.read_all(from, max).await?;
        Ok(events.into_iter().map(|e| e.hash).collect())
    }

    /// Every stream the log holds, as a filter that may say "maybe" for a stream it does not
    /// hold but never "no" for one it does; `None` when the store cannot list them (the
    /// default: then a caller asks about each stream). A stream whose first event becomes
    /// visible after the call may be missing: it is for a bulk import
    /// ([`crate::bulk::CopySink`]), whose copies are refused anyway if another writer moves the
    /// log's tip after it opened. A store reads every stream id once (a whole city's 15.6
    /// million in seconds, not one round trip per stream the import meets).
    async fn held_streams(&self) -> Result<Option<StreamFilter>, LogError> {
        Ok(None)
    }

    /// A bulk load through [`EventLog::copy_in`] has ended ([`crate::bulk::CopySink`]'s
    /// finish, [`crate::copy_log`]'s copy): the store brings up to date what it keeps about its
    /// tables beside the rows. PostgreSQL: `VACUUM (ANALYZE)`, since a load leaves its planner's
    /// statistics and visibility map behind (a 1/10 city's 1.7 million streams were estimated
    /// at 31,693, and [`EventLog::held_streams`] read the whole heap, 12.3 s cold, instead of
    /// the stream index alone, 2.9 s). Not needed for correctness. The default does nothing.
    async fn copied_in_bulk(&self) -> Result<(), LogError> {
        Ok(())
    }

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

    /// [`EventLog::verify_log`], adding the events it has checked to `checked` as it goes, for
    /// a progress bar to read. The default adds them all when it is done; the stores count as
    /// they read.
    async fn verify_log_counting(
        &self,
        expected_head: Option<LogHead>,
        checked: Arc<AtomicU64>,
    ) -> Result<VerifyReport, LogError> {
        let report = self.verify_log(expected_head).await?;
        checked.fetch_add(report.events, Ordering::Relaxed);
        Ok(report)
    }

    /// Recomputes the hashes and stream links of one stream.
    async fn verify_stream(&self, stream: &StreamId) -> Result<VerifyReport, LogError> {
        let mut verifier = StreamVerifier::new();
        for event in &self.read_stream_to_end(stream, 0).await? {
            if verifier.check(&EventView::from(event)).is_err() {
                break;
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
