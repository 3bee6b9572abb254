//! Errors of the read models.

use citydb_log::{FaultKind, LogError, StorageFault};
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
    /// The projections file met an outage of what is under it (full, read-only, unavailable),
    /// classified as the event log's faults are, so that a client gets the same code.
    #[error("projections store: {0}")]
    Fault(StorageFault),
}

/// An SQLite error of the projections file: a classified fault, or (`Other`: a bug or damage)
/// plain storage.
pub(crate) fn storage(e: rusqlite::Error) -> ProjectionError {
    match citydb_sqlite::fault_kind(&e) {
        // SQLite's own finding that a page or an index is not what it wrote is damage of the
        // file, as a row this crate cannot read is: one variant, one code for the client.
        FaultKind::Damaged => ProjectionError::Corrupt(e.to_string()),
        FaultKind::Other => ProjectionError::Storage(e.to_string()),
        kind => ProjectionError::Fault(StorageFault {
            kind,
            detail: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn outages_are_classified_damage_is_told_apart_and_bugs_are_neither() {
        let full = storage(sqlite(rusqlite::ffi::SQLITE_FULL));
        assert!(matches!(
            full,
            ProjectionError::Fault(StorageFault {
                kind: FaultKind::Full,
                ..
            })
        ));
        let read_only = storage(sqlite(rusqlite::ffi::SQLITE_READONLY));
        assert!(matches!(
            read_only,
            ProjectionError::Fault(StorageFault {
                kind: FaultKind::ReadOnly,
                ..
            })
        ));
        let busy = storage(sqlite(rusqlite::ffi::SQLITE_BUSY));
        assert!(matches!(
            busy,
            ProjectionError::Fault(StorageFault {
                kind: FaultKind::Unavailable,
                ..
            })
        ));
        let corrupt = storage(sqlite(rusqlite::ffi::SQLITE_CORRUPT));
        assert!(matches!(corrupt, ProjectionError::Corrupt(_)));
        let index = storage(sqlite(rusqlite::ffi::SQLITE_CORRUPT_INDEX));
        assert!(matches!(index, ProjectionError::Corrupt(_)));
        let misuse = storage(sqlite(rusqlite::ffi::SQLITE_MISUSE));
        assert!(matches!(misuse, ProjectionError::Storage(_)));
    }
}
