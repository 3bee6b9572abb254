//! The registry's typed errors.

use citydb_domain::{DomainError, RecordId};
use citydb_log::{LogError, StreamId};
use uuid::Uuid;

/// Why a command was not executed, or a record could not be read.
///
/// Only [`RegistryError::Domain`] is the requester's fault (a refused command); everything else
/// is contention, storage or a bug. None of them leaves a partial write: the decision is one
/// atomic append.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The domain refused the command. Nothing was written.
    #[error("command refused: {0}")]
    Domain(#[from] DomainError),
    /// The streams the command depends on kept changing under it: every one of `attempts`
    /// appends failed on an expected version, the last one on `stream`. Nothing was written;
    /// the command can be sent again with the same command id.
    #[error("{stream} kept changing concurrently; gave up after {attempts} attempts")]
    Conflict { stream: StreamId, attempts: usize },
    /// The log failed (storage, closed, invalid input).
    #[error(transparent)]
    Log(#[from] LogError),
    /// A stored stream cannot be folded: an event fails to upcast or to evolve, or belongs to
    /// another record. Never caused by a request; the stream needs a steward and a developer.
    #[error("stream {stream} cannot be read: {reason}")]
    Corrupt { stream: String, reason: String },
    /// The command id was already used for a different command. Command ids are idempotency
    /// keys: one id, one command.
    #[error("command id {command_id} was already used for a different command")]
    CommandIdReused { command_id: Uuid },
    /// The caller's optimistic-concurrency condition failed: the record is not at the version
    /// the caller last saw. Nothing was written; re-read the record and decide again.
    #[error("{record} is at version {}, not the expected {expected}", display_version(.actual))]
    StaleVersion {
        record: RecordId,
        expected: u64,
        actual: Option<u64>,
    },
    /// `decide` kept asking for streams that were already loaded, or for more than the handler
    /// loads for one decision. A bug in the domain rules, not a user error.
    #[error("decide keeps asking for {target}; giving up")]
    Unresolved { target: String },
}

fn display_version(v: &Option<u64>) -> String {
    v.map_or_else(|| "no record".to_owned(), |v| v.to_string())
}

impl RegistryError {
    /// Stable machine-readable code. A refusal keeps the domain's code
    /// ([`DomainError::code`]) so the API reports `DUPLICATE_KEY`, `CITIZEN_DECEASED`, …
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::StaleVersion { .. } => "STALE_VERSION",
            Self::Domain(e) => e.code(),
            Self::Conflict { .. } => "CONFLICT",
            Self::Log(LogError::Storage(_) | LogError::Closed) => "STORAGE_UNAVAILABLE",
            Self::Log(_) => "LOG_ERROR",
            Self::Corrupt { .. } => "CORRUPT_STREAM",
            Self::CommandIdReused { .. } => "COMMAND_ID_REUSED",
            Self::Unresolved { .. } => "UNRESOLVED_READS",
        }
    }

    /// The domain refusal, if this is one.
    pub fn domain(&self) -> Option<&DomainError> {
        match self {
            Self::Domain(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn corrupt(stream: impl ToString, reason: impl ToString) -> Self {
        Self::Corrupt {
            stream: stream.to_string(),
            reason: reason.to_string(),
        }
    }
}
