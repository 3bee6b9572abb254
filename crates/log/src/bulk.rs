//! Loading a log by one writer that holds it exclusively: what a bulk import writes through.
//!
//! A bulk import decides every command in memory (it is the store's only writer, so nothing it
//! read can change behind it), plans each command's rows with
//! [`backend::plan`](crate::backend::plan) against the tip it tracks itself, and hands the rows
//! — hashed, positioned, verbatim — to a [`BulkSink`]. The sink only stores them; it never plans.
//! Every store gets a sink: [`CopySink`] works on any [`EventLog`] through
//! [`EventLog::copy_in`] (which re-checks every row and the chain against the store's tip, so a
//! writer beside the import is caught, not interleaved); a store may offer a faster one of its
//! own (`citydb_sqlite::SqliteBulk` holds the file's lock for the whole load and inserts in
//! large transactions).
//!
//! Invariants every sink keeps:
//! - **Whole calls.** The rows of one [`BulkSink::write`] call become durable together or not
//!   at all, and a later call's rows never before an earlier one's. A sink commits when it
//!   sees fit (between calls; large transactions are the point) and at
//!   [`BulkSink::commit`]. The importer passes whole
//!   commands (a command's events and its marker), so a store killed at any moment holds a
//!   prefix of the file's commands and a re-run continues from there (the markers make the
//!   committed commands answer "already imported").
//! - **Continuation.** Rows are the tip's next positions, each linking to the one before:
//!   a row that does not continue the store's tip is refused (`CopyRefused`) and nothing of its
//!   call is stored.
//! - **Reads see writes.** [`BulkSink::read_event`] sees every row written through the sink,
//!   committed or not. [`BulkSink::read_stream`] sees every row the store held when the sink
//!   opened, and the rows written through the sink once they are stored, which may be after
//!   it answers: it is for streams the caller has not written in this load (the importer
//!   holds every stream it wrote), and a sink may answer it ahead of the writes queued before
//!   it (the embedded store's does, so that the importer does not wait for them).

use std::sync::Arc;

use async_trait::async_trait;

use crate::backend::plan::Tip;
use crate::bloom::{BlockedBloom, Digest};
use crate::chain::LogHead;
use crate::error::LogError;
use crate::event::RecordedEvent;
use crate::log::EventLog;
use crate::stream::StreamId;

/// A store opened for a bulk load by its only writer (see the module documentation).
#[async_trait]
pub trait BulkSink: Send {
    /// The tip the next written row continues: the store's, plus every row written since.
    fn tip(&self) -> Tip;

    /// The streams the store held when the sink opened, as a filter that may say "maybe" for a
    /// stream it does not hold but never "no" for one it does; `None` when the store cannot
    /// list them cheaply (then every stream the importer meets is looked up).
    async fn held_streams(&mut self) -> Result<Option<StreamFilter>, LogError> {
        Ok(None)
    }

    /// Every event of `stream`, oldest first; empty for a stream with no events. For a stream
    /// not written through this sink (see "Reads see writes" above).
    async fn read_stream(&mut self, stream: &StreamId) -> Result<Vec<RecordedEvent>, LogError>;

    /// The event at `position`, if the log has one.
    async fn read_event(&mut self, position: u64) -> Result<Option<RecordedEvent>, LogError>;

    /// Stores `rows` after the tip (see "Whole calls" and "Continuation" above). May return
    /// before they are written: a failure is then the answer of a later call.
    async fn write(&mut self, rows: Vec<RecordedEvent>) -> Result<(), LogError>;

    /// Makes every row written so far durable.
    async fn commit(&mut self) -> Result<(), LogError>;

    /// Hands every later batch of rows, once stored (not yet committed), to `to`, in log
    /// order, so that a consumer such as the projections can build from them while the load
    /// runs instead of reading the log again after it. A full channel makes the store wait; a
    /// closed one stops the handing over, not the load. The channel closes when the sink
    /// finishes or fails, so the consumer must learn from the caller whether the load
    /// completed. `false` when the store does not hand rows over (the default).
    async fn hand_over_rows(
        &mut self,
        to: std::sync::mpsc::SyncSender<Vec<RecordedEvent>>,
    ) -> Result<bool, LogError> {
        drop(to);
        Ok(false)
    }

    /// Commits, restores whatever the load set aside (indexes, locks) and closes the sink.
    async fn finish(self: Box<Self>) -> Result<(), LogError>;
}

/// A Bloom filter of stream ids: which streams a store may hold. A bulk import into a store
/// that holds records asks the store only about streams the filter may hold, so a file of new
/// records loads nearly as fast as into an empty store. No false "no": every inserted id answers
/// "maybe"; about 0.1 % of the others do too ([`BlockedBloom`]: 16 bits and 7 probes an id, in
/// one cache line). Every "maybe" is a read the importer waits for: at 10 bits an id, a
/// district-sized file of new records onto the whole city (the filter sized by its 21.8 M
/// events, 15.6 M streams) asked 2,288 times. Ids are hashed with blake3.
pub struct StreamFilter(BlockedBloom);

impl StreamFilter {
    /// A filter sized for `expected` ids.
    pub fn with_capacity(expected: u64) -> StreamFilter {
        StreamFilter(BlockedBloom::with_capacity(expected))
    }

    pub fn insert(&mut self, stream: &str) {
        self.0.insert(Self::digest(stream));
    }

    /// False only for a stream that was never inserted.
    pub fn may_hold(&self, stream: &str) -> bool {
        self.0.may_hold(Self::digest(stream))
    }

    fn digest(stream: &str) -> Digest {
        let digest = blake3::hash(stream.as_bytes());
        let bytes = digest.as_bytes();
        let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
        a.copy_from_slice(&bytes[..8]);
        b.copy_from_slice(&bytes[8..16]);
        [u64::from_le_bytes(a), u64::from_le_bytes(b)]
    }
}

/// Rows a [`CopySink`] gathers before one `copy_in`: large enough that a store's per-commit
/// cost is spread, small enough to hold in memory.
const COPY_BATCH_ROWS: usize = 16 * 1024;

/// A [`BulkSink`] over any [`EventLog`]: rows are gathered and stored with
/// [`EventLog::copy_in`], whole calls at a time. The store checks every row again, so this is
/// the correct, not the fastest, way to load a store; it is how PostgreSQL and the in-memory log
/// load in bulk.
///
/// One copy is in flight while the importer decides the rows of the next: a copy is a server's
/// round trip, its checks and a commit, and waiting for each left both the importer and
/// PostgreSQL half idle (0.4 and 0.65 of a core at 1/10 of the city). Copies still go one
/// after the other, in order, so "Whole calls" holds; a copy's failure is the answer of the
/// next call that waits for it (`write`, `commit`, `read_event`, `finish`).
pub struct CopySink {
    log: Arc<dyn EventLog>,
    pending: Vec<RecordedEvent>,
    in_flight: Option<tokio::task::JoinHandle<Result<LogHead, LogError>>>,
    tip: Tip,
}

impl CopySink {
    /// A sink continuing `log`'s current tip.
    pub async fn open(log: Arc<dyn EventLog>) -> Result<CopySink, LogError> {
        let tip = match log.head().await? {
            None => Tip::EMPTY,
            Some(head) => {
                let last = log
                    .read_all(head.position, 1)
                    .await?
                    .into_iter()
                    .next()
                    .ok_or(LogError::Corrupted {
                        position: head.position,
                        reason: "the head's event cannot be read".into(),
                    })?;
                Tip::after(head.position, head.hash.as_bytes(), last.recorded_at)?
            }
        };
        Ok(CopySink {
            log,
            pending: Vec::new(),
            in_flight: None,
            tip,
        })
    }

    /// Waits for the copy in flight, if any, and answers with its failure.
    async fn landed(&mut self) -> Result<(), LogError> {
        match self.in_flight.take() {
            None => Ok(()),
            Some(copy) => match copy.await {
                Ok(copied) => copied.map(|_| ()),
                Err(e) => Err(LogError::Storage(
                    format!("the bulk copy task failed: {e}").into(),
                )),
            },
        }
    }

    /// Starts copying the gathered rows once the copy before them has landed.
    async fn send(&mut self) -> Result<(), LogError> {
        self.landed().await?;
        if !self.pending.is_empty() {
            let rows = std::mem::take(&mut self.pending);
            let log = self.log.clone();
            self.in_flight = Some(tokio::spawn(async move { log.copy_in(rows).await }));
        }
        Ok(())
    }

    /// Every row written so far is stored.
    async fn flush(&mut self) -> Result<(), LogError> {
        self.send().await?;
        self.landed().await
    }
}

#[async_trait]
impl BulkSink for CopySink {
    fn tip(&self) -> Tip {
        self.tip
    }

    /// The log's own list ([`EventLog::held_streams`]), read after the sink took the tip: a
    /// stream another writer started since is missing from it, but that writer moved the tip,
    /// so the copies continuing the old one are refused and nothing decided on it is stored.
    async fn held_streams(&mut self) -> Result<Option<StreamFilter>, LogError> {
        self.log.held_streams().await
    }

    /// Straight from the log, without waiting for the rows gathered or in flight: none of them
    /// belongs to `stream` (see "Reads see writes").
    async fn read_stream(&mut self, stream: &StreamId) -> Result<Vec<RecordedEvent>, LogError> {
        self.log.read_stream_to_end(stream, 0).await
    }

    async fn read_event(&mut self, position: u64) -> Result<Option<RecordedEvent>, LogError> {
        self.flush().await?;
        Ok(self.log.read_all(position, 1).await?.into_iter().next())
    }

    async fn write(&mut self, rows: Vec<RecordedEvent>) -> Result<(), LogError> {
        if let Some(last) = rows.last() {
            self.tip = Tip {
                next_position: last.position + 1,
                hash: last.hash,
                recorded_at: last.recorded_at,
            };
        }
        self.pending.extend(rows);
        // Only between calls: a call's rows are never split over two copies.
        if self.pending.len() >= COPY_BATCH_ROWS {
            self.send().await?;
        }
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), LogError> {
        self.flush().await
    }

    async fn finish(mut self: Box<Self>) -> Result<(), LogError> {
        self.flush().await?;
        self.log.copied_in_bulk().await
    }
}

#[cfg(test)]
mod tests {
    use super::StreamFilter;
    use crate::bloom::BlockedBloom;

    #[test]
    fn a_filter_never_forgets_and_rarely_imagines() {
        let mut filter = StreamFilter::with_capacity(10_000);
        let held: Vec<String> = (0..10_000).map(|i| format!("citizen-{i:08}")).collect();
        for s in &held {
            filter.insert(s);
        }
        assert!(held.iter().all(|s| filter.may_hold(s)));
        let imagined = (0..10_000)
            .filter(|i| filter.may_hold(&format!("parcel-{i:08}")))
            .count();
        // 16 bits and 7 probes an id in blocks of 512 bits: ~10 expected (10 bits without
        // blocks gave ~82).
        assert!(imagined < 30, "{imagined} false positives of 10,000");
    }

    #[test]
    fn ids_whose_bits_wait_to_be_set_are_held_already() {
        let mut filter = StreamFilter::with_capacity(1_000);
        for i in 0..(BlockedBloom::PENDING as u32 + 3) {
            let id = format!("citizen-{i:08}");
            filter.insert(&id);
            assert!(filter.may_hold(&id), "{id} just inserted");
        }
        assert_eq!(
            filter.0.pending(),
            3,
            "one batch of bits set, three waiting"
        );
        assert!(
            (0..(BlockedBloom::PENDING as u32 + 3))
                .all(|i| filter.may_hold(&format!("citizen-{i:08}")))
        );
    }
}
