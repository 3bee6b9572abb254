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
    /// [`EventLog::redact`](crate::EventLog::redact): no event is recorded at this position.
    #[error("no event is recorded at position {position}")]
    NoSuchPosition { position: u64 },
    /// [`EventLog::redact`](crate::EventLog::redact): the event at `position` is not the one
    /// the caller named (its hash differs); nothing was blanked.
    #[error("refused to redact position {position}: its event hash is {found}, not {expected}")]
    RedactionRefused {
        position: u64,
        expected: Hash,
        found: Hash,
    },
    /// The backend does not implement this operation.
    #[error("this log does not support {operation}")]
    Unsupported { operation: &'static str },
    #[error("{path} is not a citydb log: {reason}")]
    NotACitydbLog { path: String, reason: String },
    #[error("the log's format version {found} is newer than this build supports ({supported})")]
    NewerFormat { found: u32, supported: u32 },
    /// The storage engine failed (I/O, disk full, lost connection). The append, if any, was not
    /// acknowledged; whether it committed is unknown only for [`FaultKind::Unavailable`] (a
    /// connection lost during COMMIT). Each backend classifies its engine's error codes into a
    /// [`FaultKind`] once, where it converts them, so that every caller reports a fault the same
    /// way whatever the backend (the API's `STORE_FULL`, `STORE_READ_ONLY`, `STORE_UNAVAILABLE`).
    #[error("storage error: {0}")]
    Storage(StorageFault),
    #[error("the log is closed")]
    Closed,
}

impl LogError {
    /// A storage fault of the given kind.
    pub fn storage(kind: FaultKind, detail: impl Into<String>) -> Self {
        LogError::Storage(StorageFault {
            kind,
            detail: detail.into(),
        })
    }

    /// The kind of storage fault this is, if it is one.
    pub fn fault_kind(&self) -> Option<FaultKind> {
        match self {
            LogError::Storage(fault) => Some(fault.kind),
            _ => None,
        }
    }
}

/// A failure of the storage engine or of what is under it, with its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageFault {
    pub kind: FaultKind,
    /// The engine's own words, for the server log; never shown to a client.
    pub detail: String,
}

impl std::fmt::Display for StorageFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

/// An unclassified fault ([`FaultKind::Other`]): what a backend says of a failure that is none
/// of the operator's classes, such as a task that panicked.
impl From<String> for StorageFault {
    fn from(detail: String) -> Self {
        StorageFault {
            kind: FaultKind::Other,
            detail,
        }
    }
}

impl From<&str> for StorageFault {
    fn from(detail: &str) -> Self {
        detail.to_owned().into()
    }
}

/// The classes of storage fault a client or an operator can act on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultKind {
    /// No space left: a full disk or quota (`SQLITE_FULL`), PostgreSQL's `53100 disk_full`.
    /// Nothing was written; a retry succeeds once space is freed.
    Full,
    /// The store refuses writes: a read-only file or file system (`SQLITE_READONLY*`),
    /// PostgreSQL's `25006 read_only_sql_transaction` (a hot standby, or
    /// `default_transaction_read_only`). Nothing was written.
    ReadOnly,
    /// The store could not be reached or did not answer in time: PostgreSQL down or
    /// unreachable, a connection lost, the pool's wait timed out, a lock wait timed out
    /// (`SQLITE_BUSY`), an I/O error (`SQLITE_IOERR*`, `SQLITE_CANTOPEN`). A write may have
    /// committed only if the connection was lost during its COMMIT; re-sending it with the
    /// same event ids (the same command id) is always safe.
    Unavailable,
    /// The store's own files fail the engine's checks: a page or an index that is not what the
    /// engine wrote (`SQLITE_CORRUPT*`, `SQLITE_NOTADB` after the file was opened as a log),
    /// PostgreSQL's `XX001 data_corrupted` and `XX002 index_corrupted`. Neither an outage (a
    /// retry meets the same damage) nor a bug of ours: the operator restores or repairs the
    /// file, and an auditor hears of it. Nothing was written.
    Damaged,
    /// A fault of no class above (an engine error that should not happen, a task that
    /// panicked): a bug until shown otherwise.
    Other,
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FaultKind::Full => "the store is full",
            FaultKind::ReadOnly => "the store is read-only",
            FaultKind::Unavailable => "the store is unavailable",
            FaultKind::Damaged => "the store's files are damaged",
            FaultKind::Other => "the store failed",
        })
    }
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
