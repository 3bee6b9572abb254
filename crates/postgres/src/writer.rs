//! This process's writer task and its group commit.
//!
//! One task owns the process's writing connection. It takes every request waiting in its queue
//! (up to a limit) and commits them in one transaction of four round trips, however many
//! requests the group holds:
//!
//! 1. `BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(APPEND_LOCK_KEY)`.
//!    Every citydb process appending to this database takes the same lock, so from here to
//!    COMMIT this transaction is the only appender.
//! 2. Once the lock is granted (never in the same flight: a READ COMMITTED snapshot taken
//!    before the lock could miss the previous holder's commit), three independent reads,
//!    pipelined: the tip (last position, hash, `recorded_at`) with the server clock, every
//!    stored event among the group's event ids, and the last version and hash of every stream
//!    the group names. Their snapshots include every append committed before, by any process.
//! 3. The requests are applied one after the other in memory, against that state (updated as
//!    each succeeds, so later requests see earlier ones exactly as if run one by one): the
//!    idempotency and expected-version checks, positions, versions and chain links, all by
//!    `citydb_log::backend::plan`, as in every store. One multi-row INSERT then carries every
//!    row of the group.
//! 4. Once the INSERT succeeded: `SELECT pg_notify(NOTIFY_CHANNEL, last position); COMMIT`
//!    (the notification goes out only if the transaction commits).
//!
//! Under the lock the in-memory checks are authoritative, so the INSERT cannot fail because of
//! a request. Should it fail anyway (something outside citydb: a trigger, a constraint, a row
//! written without the lock), the group is rolled back and redone with each request's rows
//! inserted under its own SAVEPOINT, so that the failing request fails alone.
//!
//! PostgreSQL makes a commit visible before it releases the transaction's locks, so positions
//! are assigned, and become visible, strictly in order: the log is gapless at every instant a
//! reader can observe. Acknowledgements are sent only after COMMIT returns.
//!
//! Invariants:
//! - The tip is re-read inside every group's transaction, never cached across groups, so a
//!   failed commit or another process appending cannot desynchronise the chain.
//! - `recorded_at` is the server's `clock_timestamp()`, clamped to the previous event's.
//! - A copy (`EventLog::copy_in`) is one more kind of request in the same queue, group and lock:
//!   its streams and event ids are read with the group's, it is checked in memory with
//!   `citydb_log::validate_copy` against that state, and its rows go into the same INSERT
//!   verbatim (stored hashes, a redacted payload as NULL). The NOTIFY covers it like an append.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use deadpool_postgres::{Object, Pool};
use tokio::sync::{mpsc, watch};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use citydb_log::backend::plan::{KnownState, Recorded, Tip, plan};
use citydb_log::chain::{ChainLink, EventView};
use citydb_log::{FaultKind, Hash, LogError};

use crate::schema::{APPEND_LOCK_KEY, EVENT_ID_CONSTRAINT, NOTIFY_CHANNEL};
use crate::{corrupted, describe, non_negative, pool_error, storage_error, storage_fault};

use citydb_log::backend::publish_head;
pub(crate) use citydb_log::backend::{WriteRequest, Written};

/// Limits on one group, so that one transaction (and the lock it holds) stays short.
const MAX_GROUP_REQUESTS: usize = 1024;
const MAX_GROUP_EVENTS: usize = 8 * 1024;
const MAX_GROUP_BYTES: usize = 16 << 20;
/// Largest INSERT statement, in payload bytes (PostgreSQL refuses messages over 1 GiB).
const MAX_INSERT_BYTES: usize = 64 << 20;

const TIP_SQL: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
        t.position, t.hash, t.recorded_at
    FROM (SELECT 1) AS one
    LEFT JOIN LATERAL (
        SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1
    ) AS t ON true";

const STREAM_TIPS_SQL: &str = "SELECT s.stream_id, e.stream_version, e.hash
    FROM unnest($1::text[]) AS s(stream_id)
    JOIN LATERAL (
        SELECT stream_version, hash FROM events
        WHERE events.stream_id = s.stream_id
        ORDER BY stream_version DESC LIMIT 1
    ) AS e ON true";

const RECORDED_SQL: &str =
    "SELECT event_id, stream_id, stream_version, position FROM events WHERE event_id = ANY($1)";

const INSERT_SQL: &str = "INSERT INTO events (position, stream_id, stream_version, event_id,
        event_type, schema_version, recorded_at, data, metadata, data_hash, prev_stream_hash,
        prev_log_hash, hash)
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::uuid[], $5::text[],
        $6::bigint[], $7::bigint[], $8::bytea[], $9::bytea[], $10::bytea[], $11::bytea[],
        $12::bytea[], $13::bytea[])";

pub(crate) async fn run(
    pool: Pool,
    mut queue: mpsc::Receiver<WriteRequest>,
    head: Arc<watch::Sender<Option<u64>>>,
    max_event_size: usize,
) {
    let mut group = Vec::with_capacity(64);
    while let Some(first) = queue.recv().await {
        let (mut events, mut bytes) = (first.events(), first.bytes());
        group.push(first);
        while group.len() < MAX_GROUP_REQUESTS
            && events < MAX_GROUP_EVENTS
            && bytes < MAX_GROUP_BYTES
        {
            match queue.try_recv() {
                Ok(next) => {
                    events += next.events();
                    bytes += next.bytes();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let results = commit_group(&pool, &group, max_event_size).await;
        // Publish the new head before acknowledging, so that anyone told "appended" can
        // immediately read (or subscribe to) what was appended.
        if let Some(last) = results
            .iter()
            .filter_map(|r| r.as_ref().ok().and_then(Written::last_position))
            .max()
        {
            publish_head(&head, last);
        }
        for (request, result) in group.drain(..).zip(results) {
            request.answer(result);
        }
    }
}

/// How a group's transaction ended, short of a failure of the whole group.
enum Ended {
    /// Committed; one result per request.
    Committed(Vec<Result<Written, LogError>>),
    /// Nothing may be committed (the transaction must be rolled back), but the group's only
    /// request has its answer: it failed.
    RolledBack(Vec<Result<Written, LogError>>),
    /// The group's INSERT failed: redo the group with one savepoint per request.
    Isolate,
}

async fn commit_group(
    pool: &Pool,
    group: &[WriteRequest],
    max_event_size: usize,
) -> Vec<Result<Written, LogError>> {
    let fail_all = |e: LogError| group.iter().map(|_| Err(e.clone())).collect();
    let client = match pool.get().await {
        Ok(client) => client,
        Err(e) => return fail_all(pool_error(e)),
    };
    let mut isolate = false;
    loop {
        let ended = try_commit_group(&client, group, isolate, max_event_size).await;
        if !matches!(ended, Ok(Ended::Committed(_))) {
            // Never hand a connection with an open transaction back to the pool: roll back, or
            // throw the connection away.
            if client.is_closed() || client.batch_execute("ROLLBACK").await.is_err() {
                let _ = Object::take(client);
                return match ended {
                    Ok(Ended::RolledBack(results)) => results,
                    Err(e) => fail_all(e),
                    _ => fail_all(LogError::storage(
                        FaultKind::Unavailable,
                        "the connection failed while rolling back",
                    )),
                };
            }
        }
        match ended {
            Ok(Ended::Committed(results) | Ended::RolledBack(results)) => return results,
            Ok(Ended::Isolate) if !isolate => isolate = true,
            Ok(Ended::Isolate) => {
                return fail_all(LogError::Storage("the group could not be isolated".into()));
            }
            Err(e) => return fail_all(e),
        }
    }
}

/// What the group's requests are checked against: read once after taking the lock, then kept
/// up to date in memory as requests are planned (`KnownState::record`).
struct State {
    tip: Tip,
    now: i64,
    /// The last version and hash of each stream the group names that has events, and where
    /// each of the group's event ids already recorded is.
    known: KnownState,
}

async fn try_commit_group(
    client: &Object,
    group: &[WriteRequest],
    isolate: bool,
    max_event_size: usize,
) -> Result<Ended, LogError> {
    let mut state = read_state(client, group).await?;
    let mut results = Vec::with_capacity(group.len());
    let mut rows = Rows::default();
    for request in group {
        let planned = plan(
            request,
            state.tip,
            state.now,
            &mut state.known,
            max_event_size,
        )
        .and_then(|plan| Ok((Rows::of(&plan.rows, request)?, plan)));
        match planned {
            Ok((request_rows, plan)) => {
                if isolate
                    && !request_rows.is_empty()
                    && let Err(e) = insert_isolated(client, &request_rows).await?
                {
                    // Rolled back to its savepoint: it leaves no trace, in the database or
                    // in the state the next requests are checked against.
                    results.push(Err(e));
                    continue;
                }
                state.known.record(&plan);
                state.tip = plan.tip;
                if !isolate {
                    rows.extend(request_rows);
                }
                results.push(Ok(plan.written));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    let last = results
        .iter()
        .filter_map(|r| r.as_ref().ok().and_then(Written::last_position))
        .max();
    // The channel name is a constant and the payload a number: nothing to quote.
    let end = match last {
        Some(last) => format!("SELECT pg_notify('{NOTIFY_CHANNEL}', '{last}'); COMMIT"),
        None => "COMMIT".to_owned(),
    };
    let chunks = if isolate { Vec::new() } else { rows.chunks() };
    // The chunks' INSERTs are independent of each other: pipelined. The COMMIT is sent only
    // after all of them succeeded.
    let inserts = chunks
        .iter()
        .map(|range| insert(client, &rows, range.clone()));
    let inserted = join_all(inserts.collect()).await;
    if let Some(e) = inserted.into_iter().find_map(Result::err) {
        if e.as_db_error().is_none() {
            return Err(storage_error(e));
        }
        // Alone, the request simply fails. In a group, every request after the one that
        // failed was checked against its effects (a re-sent id found "already recorded", a
        // stream found to exist): the group is redone with each request under a savepoint.
        return Ok(if group.len() == 1 {
            Ended::RolledBack(vec![Err(insert_error(&e, &rows))])
        } else {
            Ended::Isolate
        });
    }
    client.batch_execute(&end).await.map_err(|e| {
        if e.as_db_error().is_some() {
            // The server refused: the transaction is rolled back.
            storage_error(e)
        } else {
            LogError::storage(
                FaultKind::Unavailable,
                format!(
                    "the connection failed during COMMIT, so whether the append committed is \
                     unknown; re-send it (appends are idempotent by event id): {}",
                    describe(&e)
                ),
            )
        }
    })?;
    Ok(Ended::Committed(results))
}

/// Awaits every future, all polled together (so that independent queries are pipelined);
/// the outputs in order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

/// Begins the transaction, takes the lock, then reads the group's state.
async fn read_state(client: &Object, group: &[WriteRequest]) -> Result<State, LogError> {
    let mut ids: Vec<Uuid> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    for request in group {
        let (streams, events) = request.names();
        names.extend(streams);
        ids.extend(events);
    }
    names.sort_unstable();
    names.dedup();
    // Prepared once per connection (cached), before the transaction, INSERT included.
    let (tip_stmt, recorded_stmt, streams_stmt, _) = tokio::try_join!(
        client.prepare_cached(TIP_SQL),
        client.prepare_cached(RECORDED_SQL),
        client.prepare_cached(STREAM_TIPS_SQL),
        client.prepare_cached(INSERT_SQL),
    )
    .map_err(storage_error)?;
    client
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL READ COMMITTED; \
             SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY})"
        ))
        .await
        .map_err(storage_error)?;
    // The lock is held: the reads, independent of each other, go out in one flight.
    let (ids_param, names_param): (&(dyn ToSql + Sync), &(dyn ToSql + Sync)) = (&ids, &names);
    let (tip, recorded, streams) = tokio::try_join!(
        client.query_one(&tip_stmt, &[]),
        client.query(&recorded_stmt, std::slice::from_ref(&ids_param)),
        client.query(&streams_stmt, std::slice::from_ref(&names_param)),
    )
    .map_err(storage_error)?;

    let now: i64 = tip.try_get(0).map_err(storage_error)?;
    let tip = match tip.try_get::<_, Option<i64>>(1).map_err(storage_error)? {
        Some(position) => {
            let position = non_negative(position, 0, "position")?;
            let hash: &[u8] = tip.try_get(2).map_err(storage_error)?;
            Tip::after(position, hash, tip.try_get(3).map_err(storage_error)?)?
        }
        None => Tip::EMPTY,
    };
    let mut state = State {
        tip,
        now,
        known: KnownState {
            streams: HashMap::with_capacity(streams.len()),
            recorded: HashMap::with_capacity(recorded.len()),
        },
    };
    for row in &streams {
        let stream: String = row.try_get(0).map_err(storage_error)?;
        let version = non_negative(row.try_get(1).map_err(storage_error)?, 0, "stream version")?;
        let hash = stored_hash(row, 2, 0)?;
        state.known.streams.insert(stream, (version, hash));
    }
    for row in &recorded {
        let id: Uuid = row.try_get(0).map_err(storage_error)?;
        let stream: String = row.try_get(1).map_err(storage_error)?;
        let position = non_negative(row.try_get(3).map_err(storage_error)?, 0, "position")?;
        let version = non_negative(
            row.try_get(2).map_err(storage_error)?,
            position,
            "stream version",
        )?;
        state.known.recorded.insert(
            id,
            Recorded {
                stream,
                version,
                position,
            },
        );
    }
    Ok(state)
}

fn stored_hash(row: &tokio_postgres::Row, i: usize, position: u64) -> Result<Hash, LogError> {
    let bytes: &[u8] = row.try_get(i).map_err(storage_error)?;
    Hash::from_slice(bytes).ok_or_else(|| corrupted(position, "hash is not 32 bytes"))
}

/// The columns of the rows to insert, as arrays for `INSERT … SELECT * FROM unnest(…)`.
#[derive(Default)]
struct Rows<'a> {
    position: Vec<i64>,
    stream_id: Vec<&'a str>,
    stream_version: Vec<i64>,
    event_id: Vec<Uuid>,
    event_type: Vec<&'a str>,
    schema_version: Vec<i64>,
    recorded_at: Vec<i64>,
    /// `None`: a redacted payload (copied), stored as NULL.
    data: Vec<Option<&'a [u8]>>,
    metadata: Vec<&'a [u8]>,
    links: Vec<ChainLink>,
}

impl<'a> Rows<'a> {
    /// The planned rows of `request` as columns. A position or version past PostgreSQL's
    /// BIGINT: for an append the log is full; for a copy the batch is invalid.
    fn of(planned: &[EventView<'a>], request: &WriteRequest) -> Result<Rows<'a>, LogError> {
        let copy = matches!(request, WriteRequest::Copy { .. });
        let bigint = |n: u64| {
            i64::try_from(n).map_err(|_| {
                if copy {
                    LogError::InvalidEvent {
                        reason: format!("position or version {n} is out of range"),
                    }
                } else {
                    LogError::storage(FaultKind::Full, "the log has reached 2^63 positions")
                }
            })
        };
        let mut rows = Rows::default();
        for row in planned {
            let env = &row.envelope;
            rows.position.push(bigint(env.position)?);
            rows.stream_id.push(env.stream_id);
            rows.stream_version.push(bigint(env.stream_version)?);
            rows.event_id.push(env.event_id);
            rows.event_type.push(env.event_type);
            rows.schema_version.push(i64::from(env.schema_version));
            rows.recorded_at.push(env.recorded_at);
            rows.data.push(row.data);
            rows.metadata.push(env.metadata);
            rows.links.push(ChainLink {
                data_hash: row.data_hash,
                prev_stream_hash: row.prev_stream_hash,
                prev_log_hash: row.prev_log_hash,
                hash: row.hash,
            });
        }
        Ok(rows)
    }

    fn len(&self) -> usize {
        self.position.len()
    }

    fn is_empty(&self) -> bool {
        self.position.is_empty()
    }

    fn extend(&mut self, mut other: Rows<'a>) {
        self.position.append(&mut other.position);
        self.stream_id.append(&mut other.stream_id);
        self.stream_version.append(&mut other.stream_version);
        self.event_id.append(&mut other.event_id);
        self.event_type.append(&mut other.event_type);
        self.schema_version.append(&mut other.schema_version);
        self.recorded_at.append(&mut other.recorded_at);
        self.data.append(&mut other.data);
        self.metadata.append(&mut other.metadata);
        self.links.append(&mut other.links);
    }

    /// Cuts the rows into INSERTs of at most [`MAX_INSERT_BYTES`] (at least one row each).
    fn chunks(&self) -> Vec<Range<usize>> {
        let mut chunks = Vec::new();
        let (mut start, mut bytes) = (0, 0);
        for i in 0..self.len() {
            let size = self.data[i].map_or(0, <[u8]>::len) + self.metadata[i].len() + 256;
            if i > start && bytes + size > MAX_INSERT_BYTES {
                chunks.push(start..i);
                (start, bytes) = (i, 0);
            }
            bytes += size;
        }
        if start < self.len() {
            chunks.push(start..self.len());
        }
        chunks
    }
}

async fn insert(
    client: &Object,
    rows: &Rows<'_>,
    range: Range<usize>,
) -> Result<u64, tokio_postgres::Error> {
    let stmt = client.prepare_cached(INSERT_SQL).await?;
    let links = &rows.links[range.clone()];
    let hashes = |f: fn(&ChainLink) -> &Hash| -> Vec<&[u8]> {
        links.iter().map(|l| f(l).as_bytes().as_slice()).collect()
    };
    let (data_hash, prev_stream_hash, prev_log_hash, hash) = (
        hashes(|l| &l.data_hash),
        hashes(|l| &l.prev_stream_hash),
        hashes(|l| &l.prev_log_hash),
        hashes(|l| &l.hash),
    );
    let r = range;
    client
        .execute(
            &stmt,
            &[
                &&rows.position[r.clone()],
                &&rows.stream_id[r.clone()],
                &&rows.stream_version[r.clone()],
                &&rows.event_id[r.clone()],
                &&rows.event_type[r.clone()],
                &&rows.schema_version[r.clone()],
                &&rows.recorded_at[r.clone()],
                &&rows.data[r.clone()],
                &&rows.metadata[r],
                &data_hash,
                &prev_stream_hash,
                &prev_log_hash,
                &hash,
            ],
        )
        .await
}

/// Inserts one request's rows under a savepoint. `Ok(Err(_))`: the request failed alone and
/// was rolled back; `Err(_)`: the transaction itself failed.
async fn insert_isolated(
    client: &Object,
    rows: &Rows<'_>,
) -> Result<Result<(), LogError>, LogError> {
    client
        .batch_execute("SAVEPOINT request")
        .await
        .map_err(storage_error)?;
    for range in rows.chunks() {
        if let Err(e) = insert(client, rows, range).await {
            if e.as_db_error().is_none() {
                return Err(storage_error(e));
            }
            client
                .batch_execute("ROLLBACK TO SAVEPOINT request; RELEASE SAVEPOINT request")
                .await
                .map_err(storage_error)?;
            return Ok(Err(insert_error(&e, rows)));
        }
    }
    client
        .batch_execute("RELEASE SAVEPOINT request")
        .await
        .map_err(storage_error)?;
    Ok(Ok(()))
}

/// What a failed INSERT means for the request(s) it carried. Under the lock only an event id
/// written behind citydb's back can clash: reported as an idempotency conflict.
fn insert_error(e: &tokio_postgres::Error, rows: &Rows<'_>) -> LogError {
    match e.as_db_error() {
        Some(db)
            if *db.code() == SqlState::UNIQUE_VIOLATION
                && db.constraint() == Some(EVENT_ID_CONSTRAINT) =>
        {
            // The detail reads `Key (event_id)=(<uuid>) already exists.`
            let event_id = db
                .detail()
                .and_then(|d| d.split_once("=(")?.1.split_once(')'))
                .and_then(|(id, _)| id.parse::<Uuid>().ok())
                .or_else(|| rows.event_id.first().copied())
                .unwrap_or_default();
            LogError::IdempotencyConflict {
                event_id,
                reason: "this event id is already recorded".into(),
            }
        }
        _ => storage_fault(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows_of(sizes: &[usize]) -> (Vec<Vec<u8>>, Vec<u8>) {
        (
            sizes.iter().map(|n| vec![b'1'; *n]).collect(),
            b"{}".to_vec(),
        )
    }

    fn rows<'a>(data: &'a [Vec<u8>], metadata: &'a [u8]) -> Rows<'a> {
        let mut rows = Rows::default();
        for (i, d) in data.iter().enumerate() {
            rows.position.push(i as i64);
            rows.data.push(Some(d));
            rows.metadata.push(metadata);
        }
        rows
    }

    #[test]
    fn inserts_are_cut_by_size_and_never_empty() {
        let (data, meta) = rows_of(&[]);
        assert!(rows(&data, &meta).chunks().is_empty());
        let (data, meta) = rows_of(&[10, 10, 10]);
        let chunks = rows(&data, &meta).chunks();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0], 0..3);
        let big = MAX_INSERT_BYTES / 2;
        let (data, meta) = rows_of(&[big, big, 10, MAX_INSERT_BYTES * 2, 10]);
        // A row over the limit still goes out, alone.
        assert_eq!(rows(&data, &meta).chunks(), [0..1, 1..3, 3..4, 4..5]);
    }
}
