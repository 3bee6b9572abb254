//! The single writer thread and its group commit.
//!
//! One thread owns the only writing connection. It takes every request waiting in its queue
//! (up to a limit), applies each inside its own SAVEPOINT within one transaction, and commits
//! once: one fsync for the whole group. A request whose condition fails is rolled back to its
//! savepoint and fails alone; the others commit. Acknowledgements are sent only after COMMIT
//! returns, so an acknowledged append is on disk (with `synchronous=FULL`).
//!
//! Invariants:
//! - Positions are assigned here only, inside the write transaction, as last position + 1, so
//!   they are gapless and follow commit order; readers see a position only after its commit.
//! - The head is re-read from the file at the start of every group, never cached across groups,
//!   so a failed commit or another process writing the file cannot desynchronise the chain.
//! - `recorded_at` is clamped to the previous event's, so it never decreases along the log.
//! - A copy (`EventLog::copy_in`) is one more kind of request in the same queue and group: it
//!   is checked with `citydb_log::validate_copy` against the tip and stream tips read inside the
//!   transaction (so it is serialised with appends exactly like one) and its rows are inserted
//!   verbatim under its own savepoint; appends after it chain on from its last event.
//! - What a request writes (positions, versions, chain links, `recorded_at`, the answer) is
//!   planned by `citydb_log::backend::plan`, as in every store; this file holds only SQLite's
//!   transaction, lookups and INSERT.

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use citydb_log::backend::plan::{LogState, Recorded, Tip, json_text, now_micros, plan};
use citydb_log::chain::EventView;
use citydb_log::{CopyRefusal, Hash, LogError};

use crate::{corrupted, schema, storage_error};

use citydb_log::backend::publish_head;
pub(crate) use citydb_log::backend::{WriteRequest, Written};

/// Limits on one group, so that one commit stays short.
const MAX_GROUP_REQUESTS: usize = 1024;
const MAX_GROUP_EVENTS: usize = 16 * 1024;

pub(crate) fn run(
    mut conn: Connection,
    mut queue: mpsc::Receiver<WriteRequest>,
    head_tx: watch::Sender<Option<u64>>,
    checkpointer: crate::Checkpointer,
    mut ahead: crate::WalAhead,
    max_event_size: usize,
) {
    let mut group = Vec::with_capacity(64);
    while let Some(first) = queue.blocking_recv() {
        let mut events = first.events();
        group.push(first);
        while group.len() < MAX_GROUP_REQUESTS && events < MAX_GROUP_EVENTS {
            match queue.try_recv() {
                Ok(next) => {
                    events += next.events();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        checkpointer.restart_if_due(&conn);
        let results = commit_group(&mut conn, &group, max_event_size);
        // Publish the new head before acknowledging, so that anyone told "appended" can
        // immediately read (or subscribe to) what was appended.
        let last_visible = results
            .iter()
            .filter_map(|r| r.as_ref().ok().and_then(Written::last_position))
            .max();
        if let Some(last) = last_visible {
            checkpointer.nudge();
            publish_head(&head_tx, last);
        }
        let requests = group.len();
        for (request, result) in group.drain(..).zip(results) {
            request.answer(result);
        }
        ahead.after_group(&conn, requests, !queue.is_empty());
    }
    // Closed: the checkpoint thread's connection first, so that closing the log closes every
    // connection it opened (a reopen in the same process must not share the old WAL index).
    checkpointer.close();
    // Then leave a compact file behind (empty WAL), so plain `sqlite3` sees everything without
    // a -wal file. Best effort: the WAL is just as durable.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

fn commit_group(
    conn: &mut Connection,
    group: &[WriteRequest],
    max_event_size: usize,
) -> Vec<Result<Written, LogError>> {
    match try_commit_group(conn, group, max_event_size) {
        Ok(results) => results,
        Err(e) => {
            // The whole group failed (disk full, I/O error): nothing was acknowledged.
            let _ = conn.execute_batch("ROLLBACK");
            group.iter().map(|_| Err(e.clone())).collect()
        }
    }
}

fn try_commit_group(
    conn: &mut Connection,
    group: &[WriteRequest],
    max_event_size: usize,
) -> Result<Vec<Result<Written, LogError>>, LogError> {
    control(conn, "BEGIN IMMEDIATE")?;
    let mut tip = match schema::last_event(conn)? {
        Some((position, hash, recorded_at)) => Tip::after(position, &hash, recorded_at)?,
        None => Tip::EMPTY,
    };
    let now = now_micros();
    let mut results = Vec::with_capacity(group.len());
    for request in group {
        control(conn, "SAVEPOINT request")?;
        match apply(conn, request, tip, now, max_event_size) {
            Ok((written, request_tip)) => {
                control(conn, "RELEASE request")?;
                tip = request_tip;
                results.push(Ok(written));
            }
            Err(e) => {
                control(conn, "ROLLBACK TO request")?;
                control(conn, "RELEASE request")?;
                results.push(Err(e));
            }
        }
    }
    control(conn, "COMMIT")?;
    Ok(results)
}

/// Runs a transaction-control statement from the statement cache: a group of 64 requests
/// runs 130 of them, and parsing each anew showed up in profiles of bulk imports.
fn control(conn: &Connection, sql: &str) -> Result<(), LogError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.execute([]))
        .map(drop)
        .map_err(storage_error)
}

const STREAM_TIP_SQL: &str = "SELECT stream_version, hash FROM events WHERE stream_id = ?1
    ORDER BY stream_version DESC LIMIT 1";

const RECORDED_SQL: &str =
    "SELECT stream_id, stream_version, position FROM events WHERE event_id = ?1";

pub(crate) const INSERT_SQL: &str =
    "INSERT INTO events (position, stream_id, stream_version, event_id,
        event_type, schema_version, recorded_at, data, metadata, data_hash, prev_stream_hash,
        prev_log_hash, hash)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// What the planner asks, answered by queries inside the open write transaction.
struct Stored<'c> {
    conn: &'c Connection,
}

impl LogState for Stored<'_> {
    /// One indexed query per id: only the first event of a new request is looked up, and the
    /// unique index on `event_id` refuses a later one already recorded (see `apply`).
    const CHECKS_EVERY_ID: bool = false;

    fn stream_tip(&mut self, stream: &str) -> Result<Option<(u64, Hash)>, LogError> {
        let mut select = self
            .conn
            .prepare_cached(STREAM_TIP_SQL)
            .map_err(storage_error)?;
        select
            .query_row([stream], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, Vec<u8>>(1)?))
            })
            .optional()
            .map_err(storage_error)?
            .map(|(v, h)| {
                Hash::from_slice(&h)
                    .map(|h| (v, h))
                    .ok_or_else(|| corrupted(v, "stream hash is not 32 bytes"))
            })
            .transpose()
    }

    fn recorded(&mut self, event_id: Uuid) -> Result<Option<Recorded>, LogError> {
        let mut lookup = self
            .conn
            .prepare_cached(RECORDED_SQL)
            .map_err(storage_error)?;
        lookup
            .query_row([event_id.as_bytes().as_slice()], |r| {
                Ok(Recorded {
                    stream: r.get(0)?,
                    version: r.get::<_, i64>(1)? as u64,
                    position: r.get::<_, i64>(2)? as u64,
                })
            })
            .optional()
            .map_err(storage_error)
    }
}

/// Plans one request (`citydb_log::backend::plan`) against the state read inside the open
/// transaction and inserts its rows. On error the caller rolls back its savepoint, so a
/// half-applied request never survives.
fn apply(
    conn: &Connection,
    request: &WriteRequest,
    tip: Tip,
    now: i64,
    max_event_size: usize,
) -> Result<(Written, Tip), LogError> {
    let plan = plan(request, tip, now, &mut Stored { conn }, max_event_size)?;
    let copy = matches!(request, WriteRequest::Copy { .. });
    let mut insert = conn.prepare_cached(INSERT_SQL).map_err(storage_error)?;
    for row in &plan.rows {
        insert_row(&mut insert, row, |e| {
            let event_id = row.envelope.event_id;
            match e.sqlite_error_code() {
                // Checked by the planner; only a row written behind the writer's back can
                // clash with a copied one.
                Some(rusqlite::ErrorCode::ConstraintViolation)
                    if copy && e.to_string().contains("event_id") =>
                {
                    Some(LogError::CopyRefused {
                        position: row.envelope.position,
                        reason: CopyRefusal::DuplicateEventId { event_id },
                    })
                }
                // Versions are planned in this transaction, so only the event id can clash:
                // a partial re-send whose first event is new, or two requests carrying the
                // same id.
                Some(rusqlite::ErrorCode::ConstraintViolation) if !copy => {
                    Some(LogError::IdempotencyConflict {
                        event_id,
                        reason:
                            "this event id is already recorded, but not the request's first event"
                                .into(),
                    })
                }
                _ => None,
            }
        })?;
    }
    Ok((plan.written, plan.tip))
}

/// A planned row's 13 values, checked, in `INSERT_SQL`'s parameter order: what both ways of
/// inserting it bind ([`insert_row`] through rusqlite, [`crate::insert::RawInsert`] through the
/// C API).
pub(crate) struct RowValues<'a> {
    pub position: i64,
    pub stream_id: &'a str,
    pub stream_version: i64,
    pub event_id: &'a [u8],
    pub event_type: &'a str,
    pub schema_version: i64,
    pub recorded_at: i64,
    /// `None`: a redacted payload, stored as NULL.
    pub data: Option<&'a str>,
    pub metadata: &'a str,
    pub data_hash: &'a [u8],
    pub prev_stream_hash: &'a [u8],
    pub prev_log_hash: &'a [u8],
    pub hash: &'a [u8],
}

impl<'a> RowValues<'a> {
    /// Checks the row: positions in SQLite's range; the metadata and any data UTF-8 JSON text.
    pub(crate) fn of(row: &'a EventView<'a>) -> Result<Self, LogError> {
        let env = &row.envelope;
        let data = row
            .data
            .map(|d| json_text(d, env.event_id, "data"))
            .transpose()?;
        Ok(RowValues {
            position: clamp_position(env.position)?,
            stream_id: env.stream_id,
            stream_version: clamp_position(env.stream_version)?,
            event_id: env.event_id.as_bytes().as_slice(),
            event_type: env.event_type,
            schema_version: i64::from(env.schema_version),
            recorded_at: env.recorded_at,
            data,
            metadata: json_text(env.metadata, env.event_id, "metadata")?,
            data_hash: row.data_hash.as_bytes().as_slice(),
            prev_stream_hash: row.prev_stream_hash.as_bytes().as_slice(),
            prev_log_hash: row.prev_log_hash.as_bytes().as_slice(),
            hash: row.hash.as_bytes().as_slice(),
        })
    }
}

/// Inserts one planned row: the INSERT of the group-commit writer (the bulk loader's binds the
/// same [`RowValues`] through [`crate::insert::RawInsert`]). `refusal` names the error of a
/// failed insert (a constraint), `None` for a storage error.
pub(crate) fn insert_row(
    insert: &mut rusqlite::CachedStatement<'_>,
    row: &EventView<'_>,
    refusal: impl FnOnce(&rusqlite::Error) -> Option<LogError>,
) -> Result<(), LogError> {
    let v = RowValues::of(row)?;
    insert
        .execute(params![
            v.position,
            v.stream_id,
            v.stream_version,
            v.event_id,
            v.event_type,
            v.schema_version,
            v.recorded_at,
            v.data,
            v.metadata,
            v.data_hash,
            v.prev_stream_hash,
            v.prev_log_hash,
            v.hash,
        ])
        .map(drop)
        .map_err(|e| refusal(&e).unwrap_or_else(|| storage_error(e)))
}

/// A position or version as SQLite's signed 64-bit integer.
fn clamp_position(n: u64) -> Result<i64, LogError> {
    i64::try_from(n).map_err(|_| LogError::InvalidEvent {
        reason: format!("position or version {n} is out of range"),
    })
}
