//! An event log held in memory: the whole [`EventLog`] contract (hash chain, expected versions,
//! idempotency, subscriptions, copies, verification) and nothing durable.
//!
//! For tests that need a log but are not about a store, and as the smallest example of a
//! backend: everything a store does not own comes from [`crate::backend::plan`] (planning the
//! rows of a write, decoding them) and from the trait's default verification; what is left here
//! is the storage — a vector of events in position order and an index by stream. It passes the
//! whole conformance suite (`tests/memory_conformance.rs`).
//!
//! Clones share one log, so a clone kept aside survives the handles a test drops, as a file
//! does ("reopen after restart").

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::append::{AppendOutcome, StreamAppend, validate_append};
use crate::backend::plan::{KnownState, Plan, Tip, decode, now_micros, plan_append, plan_copy};
use crate::backend::{Written, publish_head};
use crate::bulk::StreamFilter;
use crate::chain::{Hash, LogHead};
use crate::error::LogError;
use crate::event::RecordedEvent;
use crate::log::{DEFAULT_MAX_EVENT_SIZE, Direction, EventLog};
use crate::redact::{Redacted, check_redaction};
use crate::stream::StreamId;

#[cfg(feature = "conformance")]
mod tamper;

/// An event log in memory. Cheap to clone; clones share the log.
#[derive(Clone)]
pub struct MemoryLog {
    inner: Arc<Shared>,
}

struct Shared {
    stored: Mutex<Stored>,
    head: watch::Sender<Option<u64>>,
    max_event_size: usize,
}

/// The storage, and what is derived from it to plan writes.
#[derive(Default)]
struct Stored {
    /// In position order.
    events: Vec<RecordedEvent>,
    /// Indexes into `events` of each stream's events, in version order.
    by_stream: HashMap<String, Vec<usize>>,
    known: KnownState,
    tip: Option<Tip>,
}

impl Default for MemoryLog {
    fn default() -> Self {
        MemoryLog::new()
    }
}

impl MemoryLog {
    /// An empty log with the default event size limit.
    pub fn new() -> MemoryLog {
        MemoryLog::with_max_event_size(DEFAULT_MAX_EVENT_SIZE)
    }

    /// An empty log refusing events over `max_event_size` bytes (data + metadata + type).
    pub fn with_max_event_size(max_event_size: usize) -> MemoryLog {
        MemoryLog {
            inner: Arc::new(Shared {
                stored: Mutex::new(Stored::default()),
                head: watch::channel(None).0,
                max_event_size,
            }),
        }
    }

    fn stored(&self) -> MutexGuard<'_, Stored> {
        // A panic while holding the lock leaves at worst a half-taken plan behind, which the
        // next `rebuild` would not see; the log is a test fixture, so carry on with it.
        self.inner
            .stored
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores a plan's rows and moves the tip; publishes the new head.
    fn take(&self, stored: &mut Stored, plan: &Plan<'_>) -> Result<(), LogError> {
        for row in &plan.rows {
            let event = decode(row)?;
            stored
                .by_stream
                .entry(event.stream_id.as_str().to_owned())
                .or_default()
                .push(stored.events.len());
            stored.events.push(event);
        }
        stored.known.record(plan);
        stored.tip = Some(plan.tip);
        if let Some(last) = plan.rows.last() {
            publish_head(&self.inner.head, last.envelope.position);
        }
        Ok(())
    }

    /// Changes the stored events behind the log's back, as someone with access to its memory
    /// would, so that the conformance suite can show that verification catches it.
    #[cfg(feature = "conformance")]
    pub fn tamper(&self, tamper: crate::conformance::Tamper) {
        let mut stored = self.stored();
        tamper::apply(&mut stored.events, tamper);
        stored.rebuild();
        let head = stored.events.last().map(|e| e.position);
        self.inner.head.send_replace(head);
    }
}

impl Stored {
    /// Derives the index, the known state and the tip from `events` again, as a store that
    /// re-reads its file would (after a tamper).
    #[cfg(feature = "conformance")]
    fn rebuild(&mut self) {
        self.by_stream.clear();
        self.known = KnownState::default();
        for (i, e) in self.events.iter().enumerate() {
            self.by_stream
                .entry(e.stream_id.as_str().to_owned())
                .or_default()
                .push(i);
            self.known.recorded.insert(
                e.event_id,
                crate::backend::plan::Recorded {
                    stream: e.stream_id.as_str().to_owned(),
                    version: e.stream_version,
                    position: e.position,
                },
            );
        }
        for (stream, indexes) in &mut self.by_stream {
            indexes.sort_by_key(|&i| self.events[i].stream_version);
            if let Some(&last) = indexes.last() {
                let e = &self.events[last];
                self.known
                    .streams
                    .insert(stream.clone(), (e.stream_version, e.hash));
            }
        }
        self.tip = self.events.last().map(|e| Tip {
            next_position: e.position + 1,
            hash: e.hash,
            recorded_at: e.recorded_at,
        });
    }
}

#[async_trait]
impl EventLog for MemoryLog {
    async fn append(&self, appends: Vec<StreamAppend>) -> Result<AppendOutcome, LogError> {
        validate_append(&appends, self.inner.max_event_size)?;
        let mut stored = self.stored();
        let tip = stored.tip.unwrap_or(Tip::EMPTY);
        let plan = plan_append(&appends, tip, now_micros(), &mut stored.known)?;
        self.take(&mut stored, &plan)?;
        match plan.written {
            Written::Append(outcome) => Ok(outcome),
            Written::Copy(_) => Err(LogError::Storage(
                "an append was planned as a copy".to_owned().into(),
            )),
        }
    }

    async fn copy_in(&self, events: Vec<RecordedEvent>) -> Result<LogHead, LogError> {
        let mut stored = self.stored();
        let tip = stored.tip.unwrap_or(Tip::EMPTY);
        let plan = plan_copy(&events, tip, &mut stored.known, self.inner.max_event_size)?;
        self.take(&mut stored, &plan)?;
        match plan.written {
            Written::Copy(head) => Ok(head),
            Written::Append(_) => Err(LogError::Storage(
                "a copy was planned as an append".to_owned().into(),
            )),
        }
    }

    async fn redact(&self, position: u64, expected_event_hash: Hash) -> Result<Redacted, LogError> {
        let mut stored = self.stored();
        let at = stored.events.partition_point(|e| e.position < position);
        let event = stored.events.get_mut(at).filter(|e| e.position == position);
        let found = event.as_ref().map(|e| (e.hash, e.is_redacted()));
        let redacted = check_redaction(position, expected_event_hash, found)?;
        if let Some(event) = event {
            event.data.clear();
        }
        Ok(redacted)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let stored = self.stored();
        let Some(indexes) = stored.by_stream.get(stream.as_str()) else {
            return Ok(Vec::new());
        };
        let events = indexes.iter().map(|&i| &stored.events[i]);
        Ok(match direction {
            Direction::Forward => events
                .filter(|e| e.stream_version >= from)
                .take(max)
                .cloned()
                .collect(),
            Direction::Backward => events
                .rev()
                .filter(|e| e.stream_version <= from)
                .take(max)
                .cloned()
                .collect(),
        })
    }

    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let stored = self.stored();
        let start = stored.events.partition_point(|e| e.position < from);
        Ok(stored.events[start..].iter().take(max).cloned().collect())
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<u64>, LogError> {
        Ok(self
            .stored()
            .known
            .streams
            .get(stream.as_str())
            .map(|(version, _)| *version))
    }

    async fn held_streams(&self) -> Result<Option<StreamFilter>, LogError> {
        let stored = self.stored();
        let mut filter = StreamFilter::with_capacity(stored.by_stream.len() as u64);
        for stream in stored.by_stream.keys() {
            filter.insert(stream);
        }
        Ok(Some(filter))
    }

    async fn head(&self) -> Result<Option<LogHead>, LogError> {
        Ok(self.stored().events.last().map(|e| LogHead {
            position: e.position,
            hash: e.hash,
        }))
    }

    fn watch_head(&self) -> watch::Receiver<Option<u64>> {
        self.inner.head.subscribe()
    }
}
