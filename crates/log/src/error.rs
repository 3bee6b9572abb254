//! The log's typed errors.

use uuid::Uuid;

use crate::append::ExpectedVersion;
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
