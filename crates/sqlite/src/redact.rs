//! [`EventLog::redact`](citydb_log::EventLog::redact) on SQLite: one UPDATE setting `data` to
//! NULL, on a connection of its own.
//!
//! Why not through the writer thread: a redaction assigns no position and touches no hash, so
//! none of the writer's invariants (gapless positions, the tip re-read per group) concern it;
//! SQLite's write lock (`BEGIN IMMEDIATE`, with the store's busy timeout) serialises it with the
//! writer's groups all the same, and the connection is configured as the writer's is
//! (`synchronous` from the store's durability), so an acknowledged redaction is as durable as
//! an acknowledged append. Redactions are rare (one per court order), so opening a connection
//! for each costs nothing that matters.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use citydb_log::{Hash, LogError, Redacted, check_redaction};

use crate::{SqliteConfig, configure, corrupted, open_connection, storage_error};

/// Blanks the data of the event at `position` if its hash is `expected`; see
/// [`check_redaction`] for the refusals.
pub(crate) fn redact(
    path: &Path,
    config: &SqliteConfig,
    position: u64,
    expected: Hash,
) -> Result<Redacted, LogError> {
    let position_sql =
        i64::try_from(position).map_err(|_| LogError::NoSuchPosition { position })?;
    let conn = open_connection(path, config).map_err(storage_error)?;
    // Configured as the writer's (`secure_delete` among it: the freed bytes of the rewritten
    // row are zeroed, not left where a raw read of the file would find them).
    configure(&conn, config, &path.display().to_string())?;
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(storage_error)?;
    let result = blank(&conn, position, position_sql, expected);
    match &result {
        Ok(_) => conn.execute_batch("COMMIT").map_err(storage_error)?,
        Err(_) => {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    result
}

fn blank(
    conn: &Connection,
    position: u64,
    position_sql: i64,
    expected: Hash,
) -> Result<Redacted, LogError> {
    let stored: Option<(Vec<u8>, bool)> = conn
        .query_row(
            "SELECT hash, data IS NULL FROM events WHERE position = ?1",
            [position_sql],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(storage_error)?;
    let found = stored
        .map(|(hash, redacted)| {
            Hash::from_slice(&hash)
                .map(|h| (h, redacted))
                .ok_or_else(|| corrupted(position, "hash is not 32 bytes"))
        })
        .transpose()?;
    let redacted = check_redaction(position, expected, found)?;
    if !redacted.already_redacted {
        conn.execute(
            "UPDATE events SET data = NULL WHERE position = ?1",
            [position_sql],
        )
        .map_err(storage_error)?;
    }
    Ok(redacted)
}
