//! The on-disk schema and its migrations.
//!
//! The file is an ordinary SQLite database, readable with the stock `sqlite3` tool:
//! `PRAGMA application_id` marks it as a citydb log and `PRAGMA user_version` holds the schema
//! version. Migrations run in one transaction each, forward only.

use rusqlite::{Connection, OptionalExtension};

use citydb_log::LogError;

use crate::storage_error;

/// `PRAGMA application_id` of a citydb log: "cdyb".
pub const APPLICATION_ID: i32 = 0x6364_7962;

/// The newest schema this build knows. Opening a file with a newer one fails with
/// `LogError::NewerFormat` rather than risk misreading it.
pub const SCHEMA_VERSION: u32 = 1;

/// Each entry migrates from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 0 -> 1: the log itself.
    r#"
    CREATE TABLE events (
        position         INTEGER PRIMARY KEY,  -- 0-based, gapless, commit order
        stream_id        TEXT    NOT NULL,     -- canonical `category-uuid`
        stream_version   INTEGER NOT NULL,     -- 0-based, gapless per stream
        event_id         BLOB    NOT NULL,     -- 16-byte UUID
        event_type       TEXT    NOT NULL,
        schema_version   INTEGER NOT NULL,
        recorded_at      INTEGER NOT NULL,     -- microseconds since the Unix epoch
        data             TEXT,                 -- exact JSON bytes as appended
        metadata         TEXT    NOT NULL,     -- exact JSON bytes as appended
        data_hash        BLOB    NOT NULL,     -- blake3(data)
        prev_stream_hash BLOB    NOT NULL,
        prev_log_hash    BLOB    NOT NULL,
        hash             BLOB    NOT NULL
    ) STRICT;
    CREATE UNIQUE INDEX events_by_stream ON events (stream_id, stream_version);
    CREATE UNIQUE INDEX events_by_event_id ON events (event_id);
    CREATE TABLE citydb_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;
    INSERT INTO citydb_meta (key, value) VALUES ('hash_format', '1');
    "#,
];

/// Checks that `conn` is a citydb log (or an empty file) and brings its schema up to date.
pub fn prepare(conn: &mut Connection, path: &str) -> Result<(), LogError> {
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| not_a_log(path, e))?;
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| not_a_log(path, e))?;
    if app_id == 0 {
        // Either a brand-new file, or somebody else's database: only the former is ours to take.
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(|e| not_a_log(path, e))?;
        if tables != 0 || version != 0 {
            return Err(LogError::NotACitydbLog {
                path: path.to_owned(),
                reason: "it is an SQLite database of another application".into(),
            });
        }
    } else if app_id != APPLICATION_ID {
        return Err(LogError::NotACitydbLog {
            path: path.to_owned(),
            reason: format!("its application id is {app_id:#x}"),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(LogError::NewerFormat {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction().map_err(storage_error)?;
        tx.execute_batch(sql).map_err(storage_error)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(storage_error)?;
        tx.pragma_update(None, "user_version", from as u32 + 1)
            .map_err(storage_error)?;
        tx.commit().map_err(storage_error)?;
    }
    // A bulk load into an empty log defers these indexes to its end (see `crate::bulk`); if it
    // was interrupted, they are built here, before anyone reads or appends through them.
    conn.execute_batch(EVENT_INDEXES)
        .map_err(|e| index_error(path, e))?;
    Ok(())
}

/// The unique indexes of `events`, as the first migration creates them. Named apart so that a
/// bulk load can drop them and build them once at its end (one sort each instead of a random
/// B-tree insertion per row), and [`prepare`] can rebuild them after an interrupted load.
pub(crate) const EVENT_INDEXES: &str = "
    CREATE UNIQUE INDEX IF NOT EXISTS events_by_stream ON events (stream_id, stream_version);
    CREATE UNIQUE INDEX IF NOT EXISTS events_by_event_id ON events (event_id);";

/// Drops [`EVENT_INDEXES`] (a bulk load into an empty log, in its first transaction).
pub(crate) const DROP_EVENT_INDEXES: &str = "
    DROP INDEX events_by_stream;
    DROP INDEX events_by_event_id;";

/// Building [`EVENT_INDEXES`] failed: a duplicated stream version or event id (only a bulk
/// load that deferred them could have written one) is named as corruption, anything else is a
/// storage fault.
pub(crate) fn index_error(path: &str, e: rusqlite::Error) -> LogError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => LogError::Corrupted {
            position: 0,
            reason: format!(
                "{path}: the log holds a duplicated stream version or event id, so its unique \
                 indexes cannot be built ({e})"
            ),
        },
        _ => storage_error(e),
    }
}

fn not_a_log(path: &str, e: rusqlite::Error) -> LogError {
    LogError::NotACitydbLog {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// The last event's position, hash and timestamp.
pub fn last_event(conn: &Connection) -> Result<Option<(u64, Vec<u8>, i64)>, LogError> {
    conn.prepare_cached(
        "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1",
    )
    .and_then(|mut s| {
        s.query_row([], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?, r.get(2)?))
        })
        .optional()
    })
    .map_err(storage_error)
}
