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

use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use citydb_log::chain::{ChainLink, Envelope};
use citydb_log::{
    AppendOutcome, CopyBase, CopyRefusal, Hash, LogError, LogHead, RecordedEvent, StreamAppend,
    StreamWritten, validate_copy,
};

use crate::{corrupted, schema, storage_error};

pub(crate) use citydb_log::backend::{WriteRequest, Written};

/// Limits on one group, so that one commit stays short.
const MAX_GROUP_REQUESTS: usize = 1024;
const MAX_GROUP_EVENTS: usize = 16 * 1024;

pub(crate) fn run(
    mut conn: Connection,
    mut queue: mpsc::Receiver<WriteRequest>,
    head_tx: watch::Sender<Option<u64>>,
    checkpointer: Checkpointer,
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
        if last_visible.is_some() {
            checkpointer.nudge();
            head_tx.send_if_modified(|h| {
                if *h < last_visible {
                    *h = last_visible;
                    true
                } else {
                    false
                }
            });
        }
        for (request, result) in group.drain(..).zip(results) {
            request.answer(result);
        }
    }
    // Closed: the checkpoint thread's connection first, so that closing the log closes every
    // connection it opened (a reopen in the same process must not share the old WAL index).
    checkpointer.close();
    // Then leave a compact file behind (empty WAL), so plain `sqlite3` sees everything without
    // a -wal file. Best effort: the WAL is just as durable.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

/// Moves WAL checkpoints off the writer thread.
///
/// With SQLite's automatic checkpoints, every few megabytes one commit would also copy the WAL
/// into the database file and fsync it, stalling every append in that group for tens of
/// milliseconds. Instead the writer runs with `wal_autocheckpoint=0` and nudges this thread
/// after each commit; it runs PASSIVE checkpoints (which never block the writer) on its own
/// connection, at most every `MIN_INTERVAL`.
pub(crate) struct Checkpointer {
    nudge: std::sync::mpsc::SyncSender<()>,
    restart_due: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

    /// How long the writer waits for readers of older snapshots before giving a rewind up.
    const RESTART_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

    /// `restart_pages`: WAL frames (pages) past which the writer restarts the WAL.
    pub(crate) fn start(conn: Connection, restart_pages: i64) -> std::io::Result<Checkpointer> {
        let (nudge, nudged) = std::sync::mpsc::sync_channel::<()>(1);
        let restart_due = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let due = restart_due.clone();
        let thread = std::thread::Builder::new()
            .name("citydb-log-checkpoint".into())
            .spawn(move || {
                use std::sync::mpsc::RecvTimeoutError;
                let mut nudged_meanwhile = false;
                while nudged_meanwhile || nudged.recv().is_ok() {
                    let started = std::time::Instant::now();
                    // Errors (a busy database) only postpone the checkpoint to the next nudge.
                    let frames = conn
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))
                        .unwrap_or(0);
                    if frames >= restart_pages {
                        due.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    // At most one checkpoint per interval; a nudge meanwhile is kept for after
                    // it, and the closing of the log ends the wait at once.
                    nudged_meanwhile = false;
                    let deadline = started + Self::MIN_INTERVAL;
                    loop {
                        let left = deadline.saturating_duration_since(std::time::Instant::now());
                        match nudged.recv_timeout(left) {
                            Ok(()) => nudged_meanwhile = true,
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                }
            })?;
        Ok(Checkpointer {
            nudge,
            restart_due,
            thread,
        })
    }

    /// Stops the thread and waits until its connection is closed.
    fn close(self) {
        drop(self.nudge);
        let _ = self.thread.join();
    }

    /// Restarts the WAL from its beginning once it has grown past `RESTART_FRAMES`.
    ///
    /// A PASSIVE checkpoint copies pages back but never rewinds the WAL: SQLite rewinds it only
    /// when a writer starts while every page is copied back and no reader still reads from it.
    /// Under constant appends and reads that moment never comes, and the WAL grew by the size of
    /// every page each commit touched (23 GB in five minutes of bulk import). Run on the writer
    /// thread between groups, a RESTART checkpoint waits for the readers of older snapshots
    /// (milliseconds), copies the few pages the background thread has not, and lets the next
    /// commit write from the WAL's start. Appends wait for it; nothing else does.
    fn restart_if_due(&self, conn: &Connection) {
        if self
            .restart_due
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            // Best effort, and brief: a reader in a long scan (a whole-log verification) must
            // not stall appends for the connection's full busy timeout. It only postpones the
            // rewind to the next time it is due.
            let _ = conn.busy_timeout(Self::RESTART_WAIT);
            let _ = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
            let _ = conn.busy_timeout(crate::BUSY_TIMEOUT);
        }
    }

    fn nudge(&self) {
        // Full means a checkpoint is already due; nothing is lost by dropping this nudge.
        let _ = self.nudge.try_send(());
    }
}

/// The log's tip while a group is being written.
#[derive(Clone, Copy)]
struct Tip {
    next_position: u64,
    hash: Hash,
    recorded_at: i64,
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
        Some((position, hash, recorded_at)) => Tip {
            next_position: position + 1,
            hash: Hash::from_slice(&hash)
                .ok_or_else(|| corrupted(position, "hash is not 32 bytes"))?,
            recorded_at,
        },
        None => Tip {
            next_position: 0,
            hash: Hash::ZERO,
            recorded_at: i64::MIN,
        },
    };
    let now = now_micros();
    let mut results = Vec::with_capacity(group.len());
    for request in group {
        control(conn, "SAVEPOINT request")?;
        let mut request_tip = tip;
        let applied = match request {
            WriteRequest::Append { appends, .. } => {
                apply(conn, appends, &mut request_tip, now).map(Written::Append)
            }
            WriteRequest::Copy { events, .. } => {
                copy(conn, events, &mut request_tip, max_event_size).map(Written::Copy)
            }
        };
        match applied {
            Ok(outcome) => {
                control(conn, "RELEASE request")?;
                tip = request_tip;
                results.push(Ok(outcome));
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

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

const STREAM_TIP_SQL: &str = "SELECT stream_version, hash FROM events WHERE stream_id = ?1
    ORDER BY stream_version DESC LIMIT 1";

const INSERT_SQL: &str = "INSERT INTO events (position, stream_id, stream_version, event_id,
        event_type, schema_version, recorded_at, data, metadata, data_hash, prev_stream_hash,
        prev_log_hash, hash)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/// The stream's last version and hash; `None` when it has no events.
fn stream_tip(
    select_stream: &mut rusqlite::CachedStatement<'_>,
    stream: &str,
) -> Result<Option<(u64, Hash)>, LogError> {
    select_stream
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

/// Writes a batch of recorded events verbatim inside the open transaction, once
/// `citydb_log::validate_copy` has checked, against the state read here, that it continues the
/// log exactly. On error the caller rolls back its savepoint, so nothing of it survives.
fn copy(
    conn: &Connection,
    events: &[RecordedEvent],
    tip: &mut Tip,
    max_event_size: usize,
) -> Result<LogHead, LogError> {
    let mut base = CopyBase {
        tip: tip.next_position.checked_sub(1).map(|position| {
            (
                LogHead {
                    position,
                    hash: tip.hash,
                },
                tip.recorded_at,
            )
        }),
        ..CopyBase::default()
    };
    let mut select_stream = conn.prepare_cached(STREAM_TIP_SQL).map_err(storage_error)?;
    let mut lookup = conn
        .prepare_cached("SELECT 1 FROM events WHERE event_id = ?1")
        .map_err(storage_error)?;
    let mut looked_up = std::collections::HashSet::new();
    for event in events {
        let stream = event.stream_id.as_str();
        if looked_up.insert(stream)
            && let Some(current) = stream_tip(&mut select_stream, stream)?
        {
            base.streams.insert(stream.to_owned(), current);
        }
        if lookup
            .exists([event.event_id.as_bytes().as_slice()])
            .map_err(storage_error)?
        {
            base.recorded.insert(event.event_id);
        }
    }
    let head = validate_copy(events, &base, max_event_size)?;
    let mut insert = conn.prepare_cached(INSERT_SQL).map_err(storage_error)?;
    for event in events {
        // Validated: the metadata and any data are UTF-8 JSON text; a redacted payload is NULL.
        let data = event
            .stored_data()
            .map(|d| utf8(d, event.event_id, "data"))
            .transpose()?;
        let metadata = utf8(&event.metadata, event.event_id, "metadata")?;
        insert
            .execute(params![
                clamp_position(event.position)?,
                event.stream_id.as_str(),
                clamp_position(event.stream_version)?,
                event.event_id.as_bytes().as_slice(),
                event.event_type,
                event.schema_version,
                event.recorded_at,
                data,
                metadata,
                event.data_hash.as_bytes().as_slice(),
                event.prev_stream_hash.as_bytes().as_slice(),
                event.prev_log_hash.as_bytes().as_slice(),
                event.hash.as_bytes().as_slice(),
            ])
            .map_err(|e| match e.sqlite_error_code() {
                // Checked above; only a row written behind the writer's back can clash.
                Some(rusqlite::ErrorCode::ConstraintViolation)
                    if e.to_string().contains("event_id") =>
                {
                    LogError::CopyRefused {
                        position: event.position,
                        reason: CopyRefusal::DuplicateEventId {
                            event_id: event.event_id,
                        },
                    }
                }
                _ => storage_error(e),
            })?;
    }
    if let Some(last) = events.last() {
        *tip = Tip {
            next_position: head.position + 1,
            hash: head.hash,
            recorded_at: last.recorded_at,
        };
    }
    Ok(head)
}

fn utf8<'a>(bytes: &'a [u8], event_id: Uuid, field: &'static str) -> Result<&'a str, LogError> {
    std::str::from_utf8(bytes).map_err(|_| LogError::InvalidJson { event_id, field })
}

/// A position or version as SQLite's signed 64-bit integer.
fn clamp_position(n: u64) -> Result<i64, LogError> {
    i64::try_from(n).map_err(|_| LogError::InvalidEvent {
        reason: format!("position or version {n} is out of range"),
    })
}

/// Applies one request inside the open transaction. On error the caller rolls back its
/// savepoint, so a half-applied request never survives.
fn apply(
    conn: &Connection,
    appends: &[StreamAppend],
    tip: &mut Tip,
    now: i64,
) -> Result<AppendOutcome, LogError> {
    if let Some(outcome) = already_recorded(conn, appends)? {
        return Ok(outcome);
    }
    let mut select_stream = conn.prepare_cached(STREAM_TIP_SQL).map_err(storage_error)?;
    let mut insert = conn.prepare_cached(INSERT_SQL).map_err(storage_error)?;
    let recorded_at = now.max(tip.recorded_at);
    let first_position = tip.next_position;
    let mut streams = Vec::with_capacity(appends.len());
    for append in appends {
        let current = stream_tip(&mut select_stream, append.stream.as_str())?;
        let actual = current.map(|(v, _)| v);
        if !append.expected.accepts(actual) {
            return Err(LogError::WrongExpectedVersion {
                stream: append.stream.clone(),
                expected: append.expected,
                actual,
            });
        }
        let (mut next_version, mut prev_stream) = match current {
            Some((v, h)) => (v + 1, h),
            None => (0, Hash::ZERO),
        };
        let first_version = (!append.events.is_empty()).then_some(next_version);
        for event in &append.events {
            let env = Envelope {
                position: tip.next_position,
                stream_id: append.stream.as_str(),
                stream_version: next_version,
                event_id: event.event_id,
                event_type: &event.event_type,
                schema_version: event.schema_version,
                recorded_at,
                metadata: &event.metadata,
            };
            let link = ChainLink::compute(&env, &event.data, prev_stream, tip.hash);
            let data = std::str::from_utf8(&event.data).map_err(|_| LogError::InvalidJson {
                event_id: event.event_id,
                field: "data",
            })?;
            let metadata =
                std::str::from_utf8(&event.metadata).map_err(|_| LogError::InvalidJson {
                    event_id: event.event_id,
                    field: "metadata",
                })?;
            insert
                .execute(params![
                    tip.next_position as i64,
                    append.stream.as_str(),
                    next_version as i64,
                    event.event_id.as_bytes().as_slice(),
                    event.event_type,
                    event.schema_version,
                    recorded_at,
                    data,
                    metadata,
                    link.data_hash.as_bytes().as_slice(),
                    link.prev_stream_hash.as_bytes().as_slice(),
                    link.prev_log_hash.as_bytes().as_slice(),
                    link.hash.as_bytes().as_slice(),
                ])
                .map_err(|e| match e.sqlite_error_code() {
                    // Versions are computed in this transaction, so only the event id can clash:
                    // a partial re-send, or two requests carrying the same id.
                    Some(rusqlite::ErrorCode::ConstraintViolation) => LogError::IdempotencyConflict {
                        event_id: event.event_id,
                        reason: "this event id is already recorded, but not the request's first event".into(),
                    },
                    _ => storage_error(e),
                })?;
            prev_stream = link.hash;
            tip.hash = link.hash;
            tip.next_position += 1;
            next_version += 1;
        }
        tip.recorded_at = recorded_at;
        streams.push(StreamWritten {
            stream: append.stream.clone(),
            first_version,
            current_version: next_version.checked_sub(1).or(actual),
        });
    }
    let written = tip.next_position > first_position;
    Ok(AppendOutcome {
        streams,
        first_position: written.then_some(first_position),
        last_position: written.then(|| tip.next_position - 1),
        already_recorded: false,
    })
}

/// If the request's events are all recorded already, the original outcome; if none are, `None`;
/// if only some are, or in other streams, an `IdempotencyConflict`.
///
/// Only the first event is looked up on the common path: if it is new, any later event that is
/// not trips the unique index on insert, which `apply` reports as the same conflict.
fn already_recorded(
    conn: &Connection,
    appends: &[StreamAppend],
) -> Result<Option<AppendOutcome>, LogError> {
    let mut lookup = conn
        .prepare_cached(
            "SELECT stream_id, stream_version, position FROM events WHERE event_id = ?1",
        )
        .map_err(storage_error)?;
    let Some(first) = appends.iter().flat_map(|a| &a.events).next() else {
        return Ok(None);
    };
    if !lookup
        .exists([first.event_id.as_bytes().as_slice()])
        .map_err(storage_error)?
    {
        return Ok(None);
    }
    let mut found_any = false;
    let mut missing: Option<Uuid> = None;
    let mut streams = Vec::with_capacity(appends.len());
    let (mut first_position, mut last_position) = (None::<u64>, None::<u64>);
    for append in appends {
        let (mut first_version, mut last_version) = (None, None);
        for event in &append.events {
            let row: Option<(String, i64, i64)> = lookup
                .query_row([event.event_id.as_bytes().as_slice()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()
                .map_err(storage_error)?;
            match row {
                None => missing = missing.or(Some(event.event_id)),
                Some((stream, version, position)) => {
                    found_any = true;
                    if stream != append.stream.as_str() {
                        return Err(LogError::IdempotencyConflict {
                            event_id: event.event_id,
                            reason: format!("it was recorded in stream {stream}"),
                        });
                    }
                    let (version, position) = (version as u64, position as u64);
                    first_version = first_version.or(Some(version));
                    last_version = Some(version);
                    first_position = Some(first_position.map_or(position, |p| p.min(position)));
                    last_position = Some(last_position.map_or(position, |p| p.max(position)));
                }
            }
        }
        streams.push(StreamWritten {
            stream: append.stream.clone(),
            first_version,
            current_version: last_version,
        });
    }
    match (found_any, missing) {
        (false, _) => Ok(None),
        (true, None) => Ok(Some(AppendOutcome {
            streams,
            first_position,
            last_position,
            already_recorded: true,
        })),
        (true, Some(event_id)) => Err(LogError::IdempotencyConflict {
            event_id,
            reason: "some of the request's events were already recorded, this one was not".into(),
        }),
    }
}
