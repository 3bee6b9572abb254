//! Errors of the read models.

use citydb_log::LogError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ProjectionError {
    /// The projections file could not be read or written.
    #[error("projections store: {0}")]
    Storage(String),
    /// Reading the event log failed.
    #[error("event log: {0}")]
    Log(#[from] LogError),
    /// The file exists but belongs to something else (the log itself, another application).
    /// It is left untouched.
    #[error("{path} is not a citydb projections file; refusing to overwrite it")]
    NotAProjectionsFile { path: String },
    /// The file holds something this build did not write.
    #[error("projections file is corrupt: {0}")]
    Corrupt(String),
    /// `wait_for` gave up: `position` was not projected in time.
    #[error("position {position} was not projected in time (next to project: {projected})")]
    Timeout { position: u64, projected: u64 },
    /// A pagination cursor that this crate did not issue.
    #[error("invalid cursor")]
    InvalidCursor,
    /// A search the read models cannot run.
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// The projections were shut down.
    #[error("projections are closed")]
    Closed,
}

pub(crate) fn storage(e: rusqlite::Error) -> ProjectionError {
    ProjectionError::Storage(e.to_string())
}
