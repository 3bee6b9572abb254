//! Redactions in the read models (`citydb_domain::redaction`).
//!
//! A record's row is folded event by event, but an approved redaction changes an event long
//! folded (live), or one met before its approval with its payload already blanked (a rebuild).
//! Either way the record is **re-folded from its whole stream**, read from the log, applying
//! each approval's replacement where it meets the event it names — the registry's rule
//! (`citydb_registry::fold_record_until`), so the row equals what the registry serves:
//! - the per-batch path re-folds every record whose batch holds a blanked event or an approval,
//!   in the batch's own transaction (so a crash leaves both or neither);
//! - the bulk path (a rebuild) re-folds, once it has ended, every record with an approval in
//!   the change feed ([`refold_redacted`]); the server runs the same at start, which also
//!   covers a crash between the end of a bulk load and that pass.
//!
//! The row is written with the stream's last version, which may be past the batch: later
//! events of the record are then skipped as already folded. The name index follows the new
//! state, so a redacted name is no longer found by search.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Connection;

use citydb_domain::redaction::{in_place, replacements};
use citydb_domain::{Event, Record, RecordId, RecordKind, evolve, upcast_slice};
use citydb_log::{EventLog, RecordedEvent};

use crate::apply::{Prior, StoredRecord, encode, load_stored, store, to_i64};
use crate::error::{ProjectionError, storage};
use crate::residence_starts::{self, StartChange};
use crate::schema::{SearchFlavour, WordWrites};

/// A record re-folded from its whole stream.
pub(crate) struct Refold {
    pub id: RecordId,
    pub stream: String,
    pub state: Record,
    pub version: u64,
    pub first_position: u64,
    pub last_position: u64,
    /// A citizen's residence starts, derived from the whole stream as replaced (empty for
    /// other records): they replace the rows the per-event path wrote.
    pub starts: Vec<StartChange>,
}

/// The records of `events` that need a re-fold: a blanked payload or an approval among them.
pub(crate) fn touched(events: &[RecordedEvent]) -> BTreeSet<RecordId> {
    events
        .iter()
        .filter(|e| RecordKind::from_category(e.stream_id.category()).is_some())
        .filter(|e| e.is_redacted() || e.event_type == "RedactionApproved")
        .filter_map(|e| e.stream_id.as_str().parse().ok())
        .collect()
}

/// Reads `id`'s whole stream and folds it with the replacements. `None` (and a warning) when
/// the stream does not fold: the per-event path then records its errors as for any stream.
pub(crate) async fn refold(
    log: &dyn EventLog,
    id: RecordId,
) -> Result<Option<Refold>, ProjectionError> {
    let stream: citydb_log::StreamId = id
        .to_string()
        .parse()
        .map_err(|e| ProjectionError::Corrupt(format!("{id}: {e}")))?;
    let events = log.read_stream_to_end(&stream, 0).await?;
    match fold(id, &events) {
        Ok(refold) => Ok(refold),
        Err(reason) => {
            tracing::warn!(record = %id, reason, "a redacted record cannot be re-folded");
            Ok(None)
        }
    }
}

fn fold(id: RecordId, events: &[RecordedEvent]) -> Result<Option<Refold>, String> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Ok(None);
    };
    let decoded = events
        .iter()
        .map(|e| {
            if e.is_redacted() {
                return Ok(None);
            }
            upcast_slice(&e.event_type, e.schema_version, &e.data)
                .map(Some)
                .map_err(|err| format!("position {}: {err}", e.position))
        })
        .collect::<Result<Vec<Option<Event>>, String>>()?;
    let replacements: BTreeMap<u64, Event> = replacements(decoded.iter().flatten());
    let mut state = None;
    let mut starts = Vec::new();
    let citizen = matches!(id, RecordId::Citizen(_));
    for (recorded, event) in events.iter().zip(&decoded) {
        let event =
            in_place(&replacements, recorded.position, event.as_ref()).ok_or_else(|| {
                format!(
                    "position {} is redacted, but no approval names it",
                    recorded.position
                )
            })?;
        state = Some(evolve(state, event).map_err(|e| e.to_string())?);
        if citizen {
            starts.extend(residence_starts::changes_of(event, recorded));
        }
    }
    let state = state.ok_or("empty stream")?;
    if state.id() != id {
        return Err(format!("the stream holds {}", state.id()));
    }
    Ok(Some(Refold {
        id,
        stream: first.stream_id.as_str().to_owned(),
        state,
        version: last.stream_version,
        first_position: first.position,
        last_position: last.position,
        starts,
    }))
}

/// Writes a re-folded record over its row (and its index rows), and forgets the errors its
/// stream's blanked events caused in the per-event path.
pub(crate) fn store_refold(
    tx: &Connection,
    refold: &Refold,
    flavour: SearchFlavour,
    words: &mut WordWrites,
) -> Result<(), ProjectionError> {
    let before = load_stored(tx, refold.id)?;
    let seq = before
        .as_ref()
        .map_or(to_i64(refold.first_position), |b| b.seq);
    let row = StoredRecord {
        id: refold.id,
        seq,
        version: refold.version,
        last_position: refold.last_position,
        record: &refold.state,
    };
    let encoded = encode(refold.id, &refold.state)?;
    store(
        tx,
        &row,
        &encoded,
        Prior::State(before.as_ref().map(|b| &b.state)),
        flavour,
        words,
    )?;
    if let RecordId::Citizen(_) = refold.id {
        residence_starts::forget(tx, seq)?;
        residence_starts::write(tx, seq, &refold.starts)?;
    }
    tx.prepare_cached("DELETE FROM projection_errors WHERE stream_id = ?1")
        .and_then(|mut s| s.execute([&refold.stream]))
        .map_err(storage)?;
    Ok(())
}

/// The records with an approved redaction, from the change feed.
pub(crate) fn approved(conn: &Connection) -> Result<Vec<RecordId>, ProjectionError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT DISTINCT stream_id FROM changes WHERE kind IN
                 (SELECT code FROM change_kinds WHERE event_type = 'RedactionApproved')",
        )
        .map_err(storage)?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(storage)?;
    let mut ids = Vec::new();
    for row in rows {
        let stream = row.map_err(storage)?;
        let id = stream
            .parse()
            .map_err(|_| ProjectionError::Corrupt(format!("{stream} is not a record stream")))?;
        ids.push(id);
    }
    Ok(ids)
}
