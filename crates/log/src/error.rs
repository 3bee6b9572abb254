//! The log's typed errors.

use uuid::Uuid;

use crate::append::ExpectedVersion;
use crate::chain::{Breach, Hash};
use crate::stream::StreamId;

/// Everything that can go wrong talking to an event log. Input errors are distinct variants so
/// that callers (the GraphQL API, the CLI) can map them to precise codes; none of them writes
/// anything.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogError {
    /// Optimistic concurrency: the stream is not at the version the caller expected.
    /// `actual` is the stream's current version, `None` when it has no events.
    #[error("wrong expected version for {stream}: expected {expected}, actual {}", display_version(.actual))]
    WrongExpectedVersion {
        stream: StreamId,
        expected: ExpectedVersion,
        actual: Option<u64>,
    },
    #[error("event {event_id} is {size} bytes, over the limit of {limit}")]
    EventTooLarge {
        event_id: Uuid,
        size: usize,
        limit: usize,
    },
    #[error("invalid stream id {stream:?}: {reason}")]
    InvalidStreamId {
        stream: String,
        reason: &'static str,
    },
    #[error("the {field} of event {event_id} is not valid JSON")]
    InvalidJson { event_id: Uuid, field: &'static str },
    #[error("invalid event: {reason}")]
    InvalidEvent { reason: String },
    #[error("invalid append: {reason}")]
    InvalidAppend { reason: String },
    /// Some of the request's event ids were already recorded, but the request is not a faithful
    /// re-send of the original append.
    #[error("event {event_id} was already appended with different content: {reason}")]
    IdempotencyConflict { event_id: Uuid, reason: String },
    /// The stored log fails verification or cannot be decoded.
    #[error("log corrupted at position {position}: {reason}")]
    Corrupted { position: u64, reason: String },
    /// A batch given to [`EventLog::copy_in`](crate::EventLog::copy_in) does not continue this
    /// log exactly, or does not verify; nothing of it was written.
    #[error("copy refused at position {position}: {reason}")]
    CopyRefused { position: u64, reason: CopyRefusal },
    /// [`copy_log`](crate::copy_log): the target does not hold a prefix of the source (it has
    /// other events, or more of them), or their heads differ once the copy is done. `source_hash`
    /// is `None` when the source has no event at `position`, `target_hash` likewise.
    #[error(
        "the target log diverges from the source at position {position}: source {}, target {}",
        display_hash(.source_hash),
        display_hash(.target_hash)
    )]
    CopyDiverged {
        position: u64,
        source_hash: Option<Hash>,
        target_hash: Option<Hash>,
    },
    /// The backend does not implement this operation.
    #[error("this log does not support {operation}")]
    Unsupported { operation: &'static str },
    #[error("{path} is not a citydb log: {reason}")]
    NotACitydbLog { path: String, reason: String },
    #[error("the log's format version {found} is newer than this build supports ({supported})")]
    NewerFormat { found: u32, supported: u32 },
    /// The storage engine failed (I/O, disk full, lost connection). The append, if any, was not
    /// acknowledged; whether it committed is unknown only when the engine says so.
    #[error("storage error: {0}")]
    Storage(String),
    #[error("the log is closed")]
    Closed,
}

fn display_version(v: &Option<u64>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "no stream".to_owned(),
    }
}

fn display_hash(h: &Option<Hash>) -> String {
    match h {
        Some(h) => h.to_hex(),
        None => "no event".to_owned(),
    }
}

/// Why [`EventLog::copy_in`](crate::EventLog::copy_in) refused a batch.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CopyRefusal {
    /// The event does not continue the chain (of the log, or of the batch before it), or its
    /// own hashes do not recompute: the breach a verifier would report there.
    #[error("{0}")]
    Chain(Breach),
    /// The event id is already recorded in the log, or given twice in the batch.
    #[error("event id {event_id} is already recorded")]
    DuplicateEventId { event_id: Uuid },
}
