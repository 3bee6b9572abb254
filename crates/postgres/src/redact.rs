//! [`EventLog::redact`](citydb_log::EventLog::redact) on PostgreSQL: one UPDATE setting `data`
//! to NULL, in a transaction of its own on a pooled connection.
//!
//! Why not through the writer and its append lock: a redaction assigns no position and touches
//! no hash, so the lock's invariant (gapless positions in commit order) does not concern it; the
//! row lock (`SELECT … FOR UPDATE`) serialises two nodes redacting the same event, and the
//! commit is durable under the server's `synchronous_commit` exactly as an append's is.

use citydb_log::{Hash, LogError, Redacted, check_redaction};

use crate::{corrupted, storage_error};

/// Blanks the data of the event at `position` if its hash is `expected`; see
/// [`check_redaction`] for the refusals.
pub(crate) async fn redact(
    client: &mut deadpool_postgres::Object,
    position: u64,
    expected: Hash,
) -> Result<Redacted, LogError> {
    let position_sql =
        i64::try_from(position).map_err(|_| LogError::NoSuchPosition { position })?;
    let tx = client.transaction().await.map_err(storage_error)?;
    let row = tx
        .query_opt(
            "SELECT hash, data IS NULL FROM events WHERE position = $1 FOR UPDATE",
            &[&position_sql],
        )
        .await
        .map_err(storage_error)?;
    let found = match row {
        None => None,
        Some(row) => {
            let hash: Vec<u8> = row.try_get(0).map_err(storage_error)?;
            let redacted: bool = row.try_get(1).map_err(storage_error)?;
            let hash = Hash::from_slice(&hash)
                .ok_or_else(|| corrupted(position, "hash is not 32 bytes"))?;
            Some((hash, redacted))
        }
    };
    // On a refusal the transaction is dropped, which rolls it back: nothing was written.
    let redacted = check_redaction(position, expected, found)?;
    if !redacted.already_redacted {
        tx.execute(
            "UPDATE events SET data = NULL WHERE position = $1",
            &[&position_sql],
        )
        .await
        .map_err(storage_error)?;
    }
    tx.commit().await.map_err(storage_error)?;
    Ok(redacted)
}
