//! Turning a write request into the rows a store inserts: the part of every backend's writer
//! that needs no storage engine, written once.
//!
//! A writer reads the log's tip ([`Tip`]) and the clock inside its write transaction, then asks
//! [`plan`] for each request of its group. The planner asks the store what it needs through
//! [`LogState`] (a stream's last version and hash, where an event id is recorded), checks the
//! request against it, and returns the rows with their positions, versions, `recorded_at` and
//! chain links ([`Plan`]). The store then only inserts [`Plan::rows`] and, once they are in
//! (or will be, in the same transaction), moves its tip to [`Plan::tip`].
//!
//! Invariants every store gets from here rather than keeping them itself:
//! - positions are the tip's next position onwards, gapless; versions continue each stream;
//! - each row links to the previous row of the log and of its stream
//!   ([`ChainLink::compute`], byte for byte as `docs/audit-format.md` specifies);
//! - `recorded_at` is the store's clock clamped to the tip's, so it never decreases along the
//!   log, and is the same for every row of one append;
//! - expected versions, idempotent re-sends and partial re-sends are decided the same way in
//!   every store (the typed [`LogError`]s of the conformance suite);
//! - a copy ([`EventLog::copy_in`](crate::EventLog::copy_in)) is checked with
//!   [`validate_copy`] against the same state, and its rows are the recorded ones, verbatim.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use crate::append::{AppendOutcome, StreamAppend, StreamWritten};
use crate::backend::{WriteRequest, Written};
use crate::chain::{ChainLink, Envelope, EventView, Hash, LogHead};
use crate::copy::{CopyBase, validate_copy};
use crate::error::LogError;
use crate::event::RecordedEvent;

/// The log's tip while a group is being written: what the next row continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tip {
    /// The position the next row gets (the number of events in the log).
    pub next_position: u64,
    /// The last event's hash; zero for an empty log.
    pub hash: Hash,
    /// The last event's `recorded_at`; `i64::MIN` for an empty log, so any clock is later.
    pub recorded_at: i64,
}

impl Tip {
    /// The tip of an empty log.
    pub const EMPTY: Tip = Tip {
        next_position: 0,
        hash: Hash::ZERO,
        recorded_at: i64::MIN,
    };

    /// The tip after the stored event at `position`, whose stored hash is `hash`: `Corrupted`
    /// when the stored hash is not 32 bytes.
    pub fn after(position: u64, hash: &[u8], recorded_at: i64) -> Result<Tip, LogError> {
        let hash = Hash::from_slice(hash).ok_or_else(|| LogError::Corrupted {
            position,
            reason: "hash is not 32 bytes".into(),
        })?;
        Ok(Tip {
            next_position: position + 1,
            hash,
            recorded_at,
        })
    }

    /// The last event and its `recorded_at`, as [`CopyBase::tip`] wants them; `None` when the
    /// log is empty.
    pub fn last(&self) -> Option<(LogHead, i64)> {
        self.next_position.checked_sub(1).map(|position| {
            (
                LogHead {
                    position,
                    hash: self.hash,
                },
                self.recorded_at,
            )
        })
    }
}

/// Where an event id is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub stream: String,
    pub version: u64,
    pub position: u64,
}

/// What the planner asks the store, inside its write transaction.
pub trait LogState {
    /// Whether [`LogState::recorded`] is asked for every event of an append. A store that
    /// answers from memory says yes. A store whose every lookup is a query may say no: then
    /// only the request's first event id is looked up when it is new, and the store must
    /// refuse any later one that is already recorded when it inserts it (a unique index on
    /// event ids), as [`LogError::IdempotencyConflict`].
    const CHECKS_EVERY_ID: bool = true;

    /// The stream's last version and that event's hash; `None` when it has no events.
    fn stream_tip(&mut self, stream: &str) -> Result<Option<(u64, Hash)>, LogError>;

    /// Where `event_id` is recorded, if it is.
    fn recorded(&mut self, event_id: Uuid) -> Result<Option<Recorded>, LogError>;
}

/// One request, planned: what to insert and what it answers.
#[derive(Debug)]
pub struct Plan<'a> {
    /// The answer to send once the rows are committed.
    pub written: Written,
    /// The rows to insert, in position order (none for a re-send or a pure version check).
    pub rows: Vec<EventView<'a>>,
    /// The log's tip once the rows are in.
    pub tip: Tip,
    /// The new last version and hash of each stream written.
    pub streams: Vec<(&'a str, u64, Hash)>,
}

/// Plans one request of a group against `tip`, `now` (the store's clock, microseconds since
/// the Unix epoch) and the stored state. Writes nothing; on error, nothing of the request is to
/// be written and the tip stays.
pub fn plan<'a>(
    request: &'a WriteRequest,
    tip: Tip,
    now: i64,
    state: &mut impl LogState,
    max_event_size: usize,
) -> Result<Plan<'a>, LogError> {
    match request {
        WriteRequest::Append { appends, .. } => plan_append(appends, tip, now, state),
        WriteRequest::Copy { events, .. } => plan_copy(events, tip, state, max_event_size),
    }
}

/// Plans an append (see [`plan`]).
pub fn plan_append<'a>(
    appends: &'a [StreamAppend],
    tip: Tip,
    now: i64,
    state: &mut impl LogState,
) -> Result<Plan<'a>, LogError> {
    if let Some(outcome) = already_recorded(appends, state)? {
        return Ok(Plan {
            written: Written::Append(outcome),
            rows: Vec::new(),
            tip,
            streams: Vec::new(),
        });
    }
    let mut tip = tip;
    let recorded_at = now.max(tip.recorded_at);
    let first_position = tip.next_position;
    let mut rows = Vec::with_capacity(appends.iter().map(|a| a.events.len()).sum());
    let mut streams = Vec::with_capacity(appends.len());
    let mut written = Vec::with_capacity(appends.len());
    for append in appends {
        let current = state.stream_tip(append.stream.as_str())?;
        let actual = current.map(|(v, _)| v);
        if !append.expected.accepts(actual) {
            return Err(LogError::WrongExpectedVersion {
                stream: append.stream.clone(),
                expected: append.expected,
                actual,
            });
        }
        let (mut next_version, mut prev_stream) = match current {
            Some((v, h)) => (v + 1, h),
            None => (0, Hash::ZERO),
        };
        let first_version = (!append.events.is_empty()).then_some(next_version);
        for event in &append.events {
            let envelope = Envelope {
                position: tip.next_position,
                stream_id: append.stream.as_str(),
                stream_version: next_version,
                event_id: event.event_id,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                recorded_at,
                metadata: &event.metadata,
            };
            let link = ChainLink::compute(&envelope, &event.data, prev_stream, tip.hash);
            rows.push(EventView {
                envelope,
                data: Some(&event.data),
                data_hash: link.data_hash,
                prev_stream_hash: link.prev_stream_hash,
                prev_log_hash: link.prev_log_hash,
                hash: link.hash,
            });
            prev_stream = link.hash;
            tip.hash = link.hash;
            tip.next_position += 1;
            next_version += 1;
        }
        if let (Some(_), Some(last)) = (first_version, next_version.checked_sub(1)) {
            written.push((append.stream.as_str(), last, prev_stream));
        }
        streams.push(StreamWritten {
            stream: append.stream.clone(),
            first_version,
            current_version: next_version.checked_sub(1).or(actual),
        });
    }
    let wrote = tip.next_position > first_position;
    if wrote {
        tip.recorded_at = recorded_at;
    }
    Ok(Plan {
        written: Written::Append(AppendOutcome {
            streams,
            first_position: wrote.then_some(first_position),
            last_position: wrote.then(|| tip.next_position - 1),
            already_recorded: false,
        }),
        rows,
        tip,
        streams: written,
    })
}

/// If the request's events are all recorded already, the original outcome; if none are, `None`;
/// if only some are, or in other streams, an `IdempotencyConflict`.
fn already_recorded<S: LogState>(
    appends: &[StreamAppend],
    state: &mut S,
) -> Result<Option<AppendOutcome>, LogError> {
    let Some(first) = appends.iter().flat_map(|a| &a.events).next() else {
        return Ok(None);
    };
    // The common path of a store that looks ids up one query at a time: a new first event
    // means a new request; its unique index catches a later id that is not new.
    if !S::CHECKS_EVERY_ID && state.recorded(first.event_id)?.is_none() {
        return Ok(None);
    }
    let mut found_any = false;
    let mut missing: Option<Uuid> = None;
    let mut streams = Vec::with_capacity(appends.len());
    let (mut first_position, mut last_position) = (None::<u64>, None::<u64>);
    for append in appends {
        let (mut first_version, mut last_version) = (None, None);
        for event in &append.events {
            match state.recorded(event.event_id)? {
                None => missing = missing.or(Some(event.event_id)),
                Some(Recorded {
                    stream,
                    version,
                    position,
                }) => {
                    found_any = true;
                    if stream != append.stream.as_str() {
                        return Err(LogError::IdempotencyConflict {
                            event_id: event.event_id,
                            reason: format!("it was recorded in stream {stream}"),
                        });
                    }
                    first_version = first_version.or(Some(version));
                    last_version = Some(version);
                    first_position = Some(first_position.map_or(position, |p| p.min(position)));
                    last_position = Some(last_position.map_or(position, |p| p.max(position)));
                }
            }
        }
        streams.push(StreamWritten {
            stream: append.stream.clone(),
            first_version,
            current_version: last_version,
        });
    }
    match (found_any, missing) {
        (false, _) => Ok(None),
        (true, None) => Ok(Some(AppendOutcome {
            streams,
            first_position,
            last_position,
            already_recorded: true,
        })),
        (true, Some(event_id)) => Err(LogError::IdempotencyConflict {
            event_id,
            reason: "some of the request's events were already recorded, this one was not".into(),
        }),
    }
}

/// Plans a copy of recorded events (see [`plan`]): [`validate_copy`] against the tip, the
/// copied streams' tips and the copied ids already recorded; the rows are the events verbatim
/// (a redacted payload stays absent).
pub fn plan_copy<'a>(
    events: &'a [RecordedEvent],
    tip: Tip,
    state: &mut impl LogState,
    max_event_size: usize,
) -> Result<Plan<'a>, LogError> {
    let mut base = CopyBase {
        tip: tip.last(),
        ..CopyBase::default()
    };
    let mut looked_up = std::collections::HashSet::new();
    for event in events {
        let stream = event.stream_id.as_str();
        if looked_up.insert(stream)
            && let Some(current) = state.stream_tip(stream)?
        {
            base.streams.insert(stream.to_owned(), current);
        }
        if state.recorded(event.event_id)?.is_some() {
            base.recorded.insert(event.event_id);
        }
    }
    let head = validate_copy(events, &base, max_event_size)?;
    let mut last_of_stream: HashMap<&'a str, (u64, Hash)> = HashMap::new();
    for event in events {
        last_of_stream.insert(event.stream_id.as_str(), (event.stream_version, event.hash));
    }
    let recorded_at = events.last().map_or(tip.recorded_at, |e| e.recorded_at);
    Ok(Plan {
        written: Written::Copy(head),
        rows: events.iter().map(EventView::from).collect(),
        tip: Tip {
            next_position: head.position + 1,
            hash: head.hash,
            recorded_at,
        },
        streams: last_of_stream
            .into_iter()
            .map(|(stream, (version, hash))| (stream, version, hash))
            .collect(),
    })
}

/// The state of a log (or of the part of it a group names) held in memory: each stream's last
/// version and hash, and where each event id is recorded. What the PostgreSQL writer reads
/// under its lock for a group, and what the in-memory store keeps for its whole log.
#[derive(Clone, Debug, Default)]
pub struct KnownState {
    pub streams: HashMap<String, (u64, Hash)>,
    pub recorded: HashMap<Uuid, Recorded>,
}

impl KnownState {
    /// Takes in a plan's effects once its rows are (or will be) stored, so that the next
    /// request is checked against them.
    pub fn record(&mut self, plan: &Plan<'_>) {
        for (stream, version, hash) in &plan.streams {
            self.streams.insert((*stream).to_owned(), (*version, *hash));
        }
        for row in &plan.rows {
            self.recorded.insert(
                row.envelope.event_id,
                Recorded {
                    stream: row.envelope.stream_id.to_owned(),
                    version: row.envelope.stream_version,
                    position: row.envelope.position,
                },
            );
        }
    }
}

impl LogState for KnownState {
    fn stream_tip(&mut self, stream: &str) -> Result<Option<(u64, Hash)>, LogError> {
        Ok(self.streams.get(stream).copied())
    }

    fn recorded(&mut self, event_id: Uuid) -> Result<Option<Recorded>, LogError> {
        Ok(self.recorded.get(&event_id).cloned())
    }
}

/// This machine's clock, in microseconds since the Unix epoch: the `now` of a store that has no
/// clock of its own (PostgreSQL uses the server's).
pub fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A stored row as a [`RecordedEvent`]: the one way every store decodes what it reads, once
/// its columns are borrowed as an [`EventView`]. `Corrupted` when the stored stream id is not
/// canonical. A redacted payload (absent) reads as empty data.
pub fn decode(view: &EventView<'_>) -> Result<RecordedEvent, LogError> {
    let env = &view.envelope;
    let stream_id = env.stream_id.parse().map_err(|_| LogError::Corrupted {
        position: env.position,
        reason: "the stream id is not canonical".into(),
    })?;
    Ok(RecordedEvent {
        position: env.position,
        stream_id,
        stream_version: env.stream_version,
        event_id: env.event_id,
        event_type: env.event_type.to_owned(),
        schema_version: env.schema_version,
        recorded_at: env.recorded_at,
        data: view.data.unwrap_or_default().to_vec(),
        metadata: env.metadata.to_vec(),
        data_hash: view.data_hash,
        prev_stream_hash: view.prev_stream_hash,
        prev_log_hash: view.prev_log_hash,
        hash: view.hash,
    })
}

/// A row's JSON bytes as text, for a store that keeps them as text: `InvalidJson` when they
/// are not UTF-8 (validation refused that before, so only a bug gets here).
pub fn json_text<'a>(
    bytes: &'a [u8],
    event_id: Uuid,
    field: &'static str,
) -> Result<&'a str, LogError> {
    simdutf8::basic::from_utf8(bytes).map_err(|_| LogError::InvalidJson { event_id, field })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
