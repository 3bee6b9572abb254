//! citydb's PostgreSQL event log: the [`EventLog`] contract on one PostgreSQL database, which
//! any number of citydb processes (nodes) may append to and read from at once.
//!
//! Invariants, and how they are kept:
//! - **Positions are gapless and follow commit order, across processes.** No sequence is used
//!   (sequences leave gaps on rollback and hand out numbers in an order commits need not
//!   follow). Every append transaction first takes the transaction-scoped advisory lock
//!   [`APPEND_LOCK_KEY`], then reads the tip and assigns positions tip + 1, tip + 2, …, computes
//!   the chain links, inserts and commits. PostgreSQL releases the lock only after the commit is
//!   durable and visible, so the next appender — in this process or another — reads a tip that
//!   includes it. Hence position `p` is visible before `p + 1` is even assigned, and a reader
//!   by position never skips an event that commits later with a lower position.
//! - **The same hash chain as every backend**: links come from
//!   [`citydb_log::chain::ChainLink`]; `data` and `metadata` are BYTEA holding the exact appended
//!   bytes (never JSONB, which re-serialises), so rows copied from SQLite verify hash for hash.
//! - **Group commit**: one writer task per process batches the requests waiting in its queue
//!   into one transaction — one lock acquisition, four round trips and one WAL flush however
//!   many requests — checking and chaining them in memory against state read under the lock;
//!   a request that fails does so alone (`src/writer.rs`).
//! - Appends are idempotent by event id, all-or-nothing across streams, checked against each
//!   stream's expected version, and bad input is refused before anything is written — exactly
//!   as in `citydb-sqlite`.
//! - `recorded_at` is the database server's clock (one clock for every node), clamped to the
//!   previous event's, so it never decreases along the log.
//! - **Copies** (`EventLog::copy_in`, for migrating a log here from another backend with
//!   `citydb_log::copy_log`) go through the same writer, group commit and append lock as
//!   appends, keeping every field and hash as recorded.
//! - **Live head**: the writer publishes its last position after each commit; a listener on a
//!   dedicated connection LISTENs on [`NOTIFY_CHANNEL`] (every append NOTIFYs inside its own
//!   transaction, so the notification is delivered on commit) and also polls the head
//!   periodically in case a notification is lost; it reconnects on connection loss
//!   (`src/listener.rs`).
//! - Durability follows the server's `synchronous_commit` (it must not be `off`): an
//!   acknowledged append has been committed.
//! - The schema is versioned in `citydb_meta` and migrated on connect (`src/schema.rs`); a database
//!   with a newer schema is refused with [`LogError::NewerFormat`].

mod listener;
mod redact;
mod schema;
#[cfg(feature = "testkit")]
pub mod testkit;
mod tiles;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use citydb_log::bulk::StreamFilter;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use futures_util::TryStreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

use citydb_log::backend::plan::decode as decode_view;
use citydb_log::backend::{join_segments, send_append, send_copy, verify_ranges};
use citydb_log::chain::{Envelope, EventView, LogVerifier, StreamVerifier, VERIFY_BATCH};
use citydb_log::{
    AppendOutcome, Direction, EventLog, FaultKind, Hash, LogError, LogHead, RecordedEvent,
    Redacted, StreamAppend, StreamId, VerifyReport,
};

pub use schema::{APPEND_LOCK_KEY, MIGRATE_LOCK_KEY, NOTIFY_CHANNEL, SCHEMA_VERSION};
pub use tiles::PgTiles;

/// Options for [`PostgresLog::connect`].
#[derive(Clone, Debug)]
pub struct PostgresConfig {
    /// Largest event (data + metadata + type), in bytes.
    pub max_event_size: usize,
    /// Connections kept for reads (the writer and the listener have one each besides).
    pub read_connections: usize,
    /// How often the listener re-reads the head, in case a notification was lost.
    pub head_poll_interval: Duration,
    /// Limit on connecting, and on waiting for a free pooled connection.
    pub connect_timeout: Duration,
    /// `idle_in_transaction_session_timeout` of the writer's connection: a process that stops
    /// mid-append (frozen, partitioned away) holds the append lock, and so stalls every other
    /// node's appends, for at most this long before the server aborts its transaction.
    pub writer_idle_timeout: Duration,
    /// Logs with at least this many events are verified in parallel segments.
    pub parallel_verify_threshold: u64,
    /// Segments (each on its own connection) a large log is verified in.
    pub verify_segments: usize,
    /// Rows fetched per round trip while verifying: bounds the verifier's memory.
    pub verify_chunk: usize,
    /// Logs of more events than this are verified with their stream links set aside, so that
    /// memory does not grow with the number of streams (`LogVerifier::bounded`).
    pub verify_streams_in_memory: u64,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        PostgresConfig {
            max_event_size: citydb_log::DEFAULT_MAX_EVENT_SIZE,
            read_connections: 8,
            head_poll_interval: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(10),
            writer_idle_timeout: Duration::from_secs(30),
            parallel_verify_threshold: 50_000,
            verify_segments: 4,
            verify_chunk: 1024,
            verify_streams_in_memory: citydb_log::chain::STREAMS_IN_MEMORY,
        }
    }
}

/// An event log in a PostgreSQL database. Cheap to clone; its writer and listener tasks stop
/// when the last clone is dropped.
#[derive(Clone)]
pub struct PostgresLog {
    inner: Arc<Inner>,
}

struct Inner {
    config: PostgresConfig,
    database: String,
    pool: Pool,
    queue: mpsc::Sender<writer::WriteRequest>,
    head: watch::Receiver<Option<u64>>,
    listener: tokio::task::AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer stops by itself once the queue closes (after answering what it holds).
        self.listener.abort();
    }
}

impl PostgresLog {
    /// Connects to the database at `url` (a `postgres://` URL or a `key=value` string; no TLS),
    /// creating or migrating the schema, and starts this process's writer and listener tasks.
    /// Must be called inside a tokio runtime, which then runs those tasks.
    pub async fn connect(url: &str, config: PostgresConfig) -> Result<PostgresLog, LogError> {
        let mut pg: tokio_postgres::Config = url.parse().map_err(|e| {
            LogError::Storage(format!("invalid PostgreSQL connection string: {e}").into())
        })?;
        if pg.get_application_name().is_none() {
            pg.application_name("citydb");
        }
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(config.connect_timeout);
        }
        let database = pg
            .get_dbname()
            .or(pg.get_user())
            .unwrap_or("postgres")
            .to_owned();
        let pool = make_pool(&pg, config.read_connections, config.connect_timeout)?;
        let mut write_pg = pg.clone();
        let options = format!(
            "{} -c idle_in_transaction_session_timeout={}",
            pg.get_options().unwrap_or_default(),
            config.writer_idle_timeout.as_millis().max(1)
        );
        write_pg.options(options.trim_start());
        let write_pool = make_pool(&write_pg, 1, config.connect_timeout)?;
        {
            let client = write_pool.get().await.map_err(pool_error)?;
            schema::prepare(&client, &database).await?;
        }
        let head = last_position(&*pool.get().await.map_err(pool_error)?).await?;
        let (head_tx, head_rx) = watch::channel(head);
        let head_tx = Arc::new(head_tx);
        let (queue_tx, queue_rx) = mpsc::channel(4096);
        tokio::spawn(writer::run(
            write_pool,
            queue_rx,
            head_tx.clone(),
            config.max_event_size,
        ));
        let mut listen = pg.clone();
        listen.application_name(listener::APPLICATION_NAME);
        let (ready_tx, ready) = oneshot::channel();
        let listener = tokio::spawn(listener::run(
            listen,
            head_tx,
            config.head_poll_interval,
            ready_tx,
        ))
        .abort_handle();
        let timeout = config.connect_timeout;
        // Built before waiting, so that a cancelled `connect` still stops the tasks.
        let log = PostgresLog {
            inner: Arc::new(Inner {
                config,
                database,
                pool,
                queue: queue_tx,
                head: head_rx,
                listener,
            }),
        };
        // Once `connect` returns, the listener is listening: no later append can go unnoticed.
        // (Should its first attempt fail, it keeps retrying, and polling covers the gap.)
        let _ = tokio::time::timeout(timeout, ready).await;
        Ok(log)
    }

    /// The database's name.
    pub fn database(&self) -> &str {
        &self.inner.database
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, LogError> {
        self.inner.pool.get().await.map_err(pool_error)
    }

    async fn query_events(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(storage_error)?;
        let rows = client.query(&stmt, params).await.map_err(storage_error)?;
        rows.iter().map(decode).collect()
    }
}

/// A connection pool as every citydb component on PostgreSQL opens one (the event log, the
/// access log): no TLS, fast recycling, `timeout` for waiting, connecting and recycling.
pub fn make_pool(
    pg: &tokio_postgres::Config,
    size: usize,
    timeout: Duration,
) -> Result<Pool, LogError> {
    let manager = Manager::from_config(
        pg.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size.max(1))
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()
        .map_err(|e| LogError::Storage(format!("cannot build the connection pool: {e}").into()))
}

/// Describes a PostgreSQL error with the server's code and message when there is one.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("PostgreSQL {}: {}", db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            s.push_str(&format!(" ({detail})"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// The one place PostgreSQL's errors become [`LogError::Storage`], classified by SQLSTATE (or,
/// for a failure below SQL, by the connection's state), never by message.
pub(crate) fn storage_error(e: tokio_postgres::Error) -> LogError {
    storage_fault(&e)
}

pub(crate) fn storage_fault(e: &tokio_postgres::Error) -> LogError {
    LogError::storage(fault_kind(e), describe(e))
}

/// The class of a PostgreSQL client error (see [`FaultKind`]).
pub fn fault_kind(e: &tokio_postgres::Error) -> FaultKind {
    if let Some(db) = e.as_db_error() {
        return sqlstate_fault_kind(db.code());
    }
    // No SQLSTATE: the connection could not be made or was lost (an I/O error underneath, or
    // the connection closed), or a row did not decode (a bug).
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if cause.is::<std::io::Error>() {
            return FaultKind::Unavailable;
        }
        source = cause.source();
    }
    if e.is_closed() {
        FaultKind::Unavailable
    } else {
        FaultKind::Other
    }
}

/// The class of a server error by its SQLSTATE.
pub fn sqlstate_fault_kind(code: &SqlState) -> FaultKind {
    let class = &code.code()[..2.min(code.code().len())];
    if *code == SqlState::DISK_FULL {
        FaultKind::Full
    } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        FaultKind::ReadOnly
    } else if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED {
        FaultKind::Damaged
    } else if matches!(class, "08" | "53" | "57") && *code != SqlState::QUERY_CANCELED {
        // 08 connection exception, 53 insufficient resources (out of memory, too many
        // connections), 57 operator intervention (shutdown, cannot connect now). A statement
        // cancelled by `statement_timeout` (57014) is the query's fault, not the store's.
        FaultKind::Unavailable
    } else {
        FaultKind::Other
    }
}

pub(crate) fn pool_error(e: PoolError) -> LogError {
    match e {
        PoolError::Backend(e) => storage_error(e),
        PoolError::Timeout(kind) => LogError::storage(
            FaultKind::Unavailable,
            format!("timed out getting a connection ({kind:?})"),
        ),
        PoolError::Closed => LogError::Closed,
        e => LogError::storage(
            FaultKind::Unavailable,
            format!("cannot get a connection: {e}"),
        ),
    }
}

pub(crate) fn corrupted(position: u64, reason: &str) -> LogError {
    LogError::Corrupted {
        position,
        reason: reason.to_owned(),
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored BIGINT that must not be negative.
pub(crate) fn non_negative(value: i64, position: u64, what: &str) -> Result<u64, LogError> {
    u64::try_from(value).map_err(|_| corrupted(position, &format!("{what} {value} is negative")))
}

/// The last position; `None` when the log is empty.
async fn last_position(client: &tokio_postgres::Client) -> Result<Option<u64>, LogError> {
    let row = client
        .query_one("SELECT max(position) FROM events", &[])
        .await
        .map_err(storage_error)?;
    row.try_get::<_, Option<i64>>(0)
        .map_err(storage_error)?
        .map(|p| non_negative(p, 0, "position"))
        .transpose()
}

pub(crate) const SELECT_EVENT: &str = "SELECT position, stream_id, stream_version, event_id,
    event_type, schema_version, recorded_at, data, metadata, data_hash, prev_stream_hash,
    prev_log_hash, hash FROM events";

/// A row's columns, borrowed, as the verifier wants them.
fn view(row: &Row) -> Result<EventView<'_>, LogError> {
    let position = non_negative(row.try_get(0).map_err(storage_error)?, 0, "position")?;
    let bad = |what: &str| corrupted(position, what);
    let hash = |i: usize| -> Result<Hash, LogError> {
        let bytes: &[u8] = row.try_get(i).map_err(storage_error)?;
        Hash::from_slice(bytes).ok_or_else(|| bad("a hash is not 32 bytes"))
    };
    let schema_version: i64 = row.try_get(5).map_err(storage_error)?;
    let view = EventView {
        envelope: Envelope {
            position,
            stream_id: row.try_get(1).map_err(storage_error)?,
            stream_version: non_negative(
                row.try_get(2).map_err(storage_error)?,
                position,
                "stream version",
            )?,
            event_id: row.try_get::<_, Uuid>(3).map_err(storage_error)?,
            event_type: row.try_get(4).map_err(storage_error)?,
            schema_version: u32::try_from(schema_version)
                .map_err(|_| bad("the schema version is out of range"))?,
            recorded_at: row.try_get(6).map_err(storage_error)?,
            metadata: row.try_get(8).map_err(storage_error)?,
        },
        data: row.try_get(7).map_err(storage_error)?,
        data_hash: hash(9)?,
        prev_stream_hash: hash(10)?,
        prev_log_hash: hash(11)?,
        hash: hash(12)?,
    };
    Ok(view)
}

fn decode(row: &Row) -> Result<RecordedEvent, LogError> {
    decode_view(&view(row)?)
}

/// Verifies positions `from..to` (`to = None`: to the end) as one segment, on its own pooled
/// connection, `chunk` rows per round trip: memory stays bounded whatever the log's size.
async fn verify_range(
    pool: Pool,
    from: u64,
    to: Option<u64>,
    expected_head: Option<LogHead>,
    chunk: usize,
    (log_events, streams_in_memory): (u64, u64),
    checked: Arc<AtomicU64>,
) -> Result<LogVerifier, LogError> {
    let client = pool.get().await.map_err(pool_error)?;
    let stmt = client
        .prepare_cached(&format!(
            "{SELECT_EVENT} WHERE position >= $1 AND position < $2 ORDER BY position LIMIT $3"
        ))
        .await
        .map_err(storage_error)?;
    // Stream links set aside past `STREAMS_IN_MEMORY` events, see `LogVerifier::bounded`.
    let mut verifier = LogVerifier::bounded(from, expected_head, log_events, streams_in_memory);
    let (end, limit) = (to.map_or(i64::MAX, clamp), clamp(chunk.max(1) as u64));
    let mut next = clamp(from);
    loop {
        let rows = client
            .query(&stmt, &[&next, &end, &limit])
            .await
            .map_err(storage_error)?;
        // The rows are borrowed as views and hashed many at a time (`check_views`). A row
        // that cannot be read stops the run there, once the rows before it are checked: a
        // breach among them comes first, as in a pass one row at a time.
        let mut views = Vec::with_capacity(rows.len());
        let mut stop = None;
        for row in &rows {
            match view(row) {
                Ok(v) => views.push(v),
                Err(e) => {
                    stop = Some(e);
                    break;
                }
            }
        }
        for batch in views.chunks(VERIFY_BATCH) {
            if verifier.check_views(batch).is_err() {
                return Ok(verifier);
            }
        }
        match stop {
            None => {}
            // Reported at the end unless a breach comes before it (a stream link set aside
            // may).
            Some(LogError::Corrupted { position, reason }) => {
                verifier.unreadable_at(position, reason);
                return Ok(verifier);
            }
            Some(e) => return Err(e),
        }
        checked.fetch_add(rows.len() as u64, Ordering::Relaxed);
        match rows.last() {
            Some(last) if rows.len() as i64 == limit => {
                next = last
                    .try_get::<_, i64>(0)
                    .map_err(storage_error)?
                    .saturating_add(1);
            }
            _ => return Ok(verifier),
        }
    }
}

#[async_trait]
impl EventLog for PostgresLog {
    async fn append(&self, appends: Vec<StreamAppend>) -> Result<AppendOutcome, LogError> {
        citydb_log::validate_append(&appends, self.inner.config.max_event_size)?;
        send_append(&self.inner.queue, appends).await
    }

    /// Checked and written by this process's writer, in its group commit under the append lock
    /// ([`APPEND_LOCK_KEY`]), against the tip, streams and event ids read under that lock: so it
    /// is serialised with every node's appends, and it NOTIFYs the new head like an append.
    async fn copy_in(&self, events: Vec<RecordedEvent>) -> Result<LogHead, LogError> {
        send_copy(&self.inner.queue, events).await
    }

    /// In a transaction of its own, outside the append lock (`src/redact.rs` says why).
    async fn redact(&self, position: u64, expected_event_hash: Hash) -> Result<Redacted, LogError> {
        let mut client = self.client().await?;
        redact::redact(&mut client, position, expected_event_hash).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let (from, max) = (clamp(from), clamp(max as u64));
        let sql = match direction {
            Direction::Forward => format!(
                "{SELECT_EVENT} WHERE stream_id = $1 AND stream_version >= $2
                 ORDER BY stream_version LIMIT $3"
            ),
            Direction::Backward => format!(
                "{SELECT_EVENT} WHERE stream_id = $1 AND stream_version <= $2
                 ORDER BY stream_version DESC LIMIT $3"
            ),
        };
        self.query_events(&sql, &[&stream.as_str(), &from, &max])
            .await
    }

    async fn read_stream_to_end(
        &self,
        stream: &StreamId,
        from: u64,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        // One statement: one snapshot and one round trip.
        self.query_events(
            &format!(
                "{SELECT_EVENT} WHERE stream_id = $1 AND stream_version >= $2
                 ORDER BY stream_version"
            ),
            &[&stream.as_str(), &clamp(from)],
        )
        .await
    }

    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let (from, max) = (clamp(from), clamp(max as u64));
        self.query_events(
            &format!("{SELECT_EVENT} WHERE position >= $1 ORDER BY position LIMIT $2"),
            &[&from, &max],
        )
        .await
    }

    async fn read_hashes(&self, from: u64, max: usize) -> Result<Vec<Hash>, LogError> {
        // The hash column alone (the tree's catch-up reads the whole log through here).
        let (from, max) = (clamp(from), clamp(max as u64));
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT position, hash FROM events WHERE position >= $1 ORDER BY position LIMIT $2",
            )
            .await
            .map_err(storage_error)?;
        let rows = client
            .query(&stmt, &[&from, &max])
            .await
            .map_err(storage_error)?;
        rows.iter()
            .map(|row| {
                let position: i64 = row.try_get(0).map_err(storage_error)?;
                let hash: &[u8] = row.try_get(1).map_err(storage_error)?;
                Hash::from_slice(hash)
                    .ok_or_else(|| corrupted(position as u64, "hash is not 32 bytes"))
            })
            .collect()
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<u64>, LogError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT max(stream_version) FROM events WHERE stream_id = $1")
            .await
            .map_err(storage_error)?;
        let row = client
            .query_one(&stmt, &[&stream.as_str()])
            .await
            .map_err(storage_error)?;
        row.try_get::<_, Option<i64>>(0)
            .map_err(storage_error)?
            .map(|v| non_negative(v, 0, "stream version"))
            .transpose()
    }

    /// One statement whose rows stream in as the server sends them (not gathered first: a
    /// whole city has 15.6 million streams), sized by the head read just before.
    async fn held_streams(&self) -> Result<Option<StreamFilter>, LogError> {
        let client = self.client().await?;
        let events = last_position(&client).await?.map_or(0, |last| last + 1);
        let mut filter = StreamFilter::with_capacity(events);
        let stmt = client
            .prepare_cached("SELECT stream_id FROM events WHERE stream_version = 0")
            .await
            .map_err(storage_error)?;
        let rows = client
            .query_raw(&stmt, std::iter::empty::<&str>())
            .await
            .map_err(storage_error)?;
        let mut rows = std::pin::pin!(rows);
        while let Some(row) = rows.try_next().await.map_err(storage_error)? {
            filter.insert(row.try_get(0).map_err(storage_error)?);
        }
        Ok(Some(filter))
    }

    /// `VACUUM (ANALYZE)` of the log's table: statistics for the planner and the visibility
    /// map that lets [`EventLog::held_streams`] read the stream index alone. It reads only the
    /// pages not yet marked all-visible, so after a small load into a large log it is short.
    async fn copied_in_bulk(&self) -> Result<(), LogError> {
        let client = self.client().await?;
        client
            .batch_execute("VACUUM (ANALYZE) events")
            .await
            .map_err(storage_error)
    }

    async fn head(&self) -> Result<Option<LogHead>, LogError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")
            .await
            .map_err(storage_error)?;
        let Some(row) = client.query_opt(&stmt, &[]).await.map_err(storage_error)? else {
            return Ok(None);
        };
        let position = non_negative(row.try_get(0).map_err(storage_error)?, 0, "position")?;
        let hash: &[u8] = row.try_get(1).map_err(storage_error)?;
        let hash =
            Hash::from_slice(hash).ok_or_else(|| corrupted(position, "hash is not 32 bytes"))?;
        Ok(Some(LogHead { position, hash }))
    }

    fn watch_head(&self) -> watch::Receiver<Option<u64>> {
        self.inner.head.clone()
    }

    /// Streams rows into the verifier chunk by chunk, borrowing each row's bytes. A large log is
    /// cut into consecutive position ranges verified concurrently, each on its own connection,
    /// and the segments are joined in order (`LogVerifier::join` checks the seams).
    async fn verify_log(&self, expected_head: Option<LogHead>) -> Result<VerifyReport, LogError> {
        self.verify_log_counting(expected_head, Arc::default())
            .await
    }

    /// [`EventLog::verify_log`], counting as it reads (see `verify_log`'s notes above).
    async fn verify_log_counting(
        &self,
        expected_head: Option<LogHead>,
        checked: Arc<AtomicU64>,
    ) -> Result<VerifyReport, LogError> {
        let config = &self.inner.config;
        let Some(last) = last_position(&*self.client().await?).await? else {
            return Ok(LogVerifier::new(expected_head).finish());
        };
        let ranges = verify_ranges(
            last + 1,
            config.parallel_verify_threshold,
            config.verify_segments as u64,
        );
        let tasks: Vec<_> = ranges
            .into_iter()
            .map(|(from, to)| {
                tokio::spawn(verify_range(
                    self.inner.pool.clone(),
                    from,
                    to,
                    expected_head,
                    config.verify_chunk,
                    (last + 1, config.verify_streams_in_memory),
                    checked.clone(),
                ))
            })
            .collect();
        let mut segments = Vec::with_capacity(tasks.len());
        for task in tasks {
            segments.push(task.await.map_err(|e| {
                LogError::Storage(format!("a verification task failed: {e}").into())
            })?);
        }
        join_segments(segments, expected_head)
    }

    async fn verify_stream(&self, stream: &StreamId) -> Result<VerifyReport, LogError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(&format!(
                "{SELECT_EVENT} WHERE stream_id = $1 AND stream_version >= $2
                 ORDER BY stream_version LIMIT $3"
            ))
            .await
            .map_err(storage_error)?;
        let mut verifier = StreamVerifier::new();
        let limit = clamp(self.inner.config.verify_chunk.max(1) as u64);
        let mut next = 0i64;
        loop {
            let rows = client
                .query(&stmt, &[&stream.as_str(), &next, &limit])
                .await
                .map_err(storage_error)?;
            for row in &rows {
                if verifier.check(&view(row)?).is_err() {
                    return Ok(verifier.finish());
                }
            }
            match rows.last() {
                Some(last) if rows.len() as i64 == limit => {
                    next = last
                        .try_get::<_, i64>(2)
                        .map_err(storage_error)?
                        .saturating_add(1);
                }
                _ => return Ok(verifier.finish()),
            }
        }
    }

    async fn position_at(&self, at: i64) -> Result<Option<u64>, LogError> {
        // `recorded_at` never decreases along the log, so the last event at or before `at` is
        // found by a binary search over the primary key, on one connection.
        let client = self.client().await?;
        let Some(last) = last_position(&client).await? else {
            return Ok(None);
        };
        let stmt = client
            .prepare_cached("SELECT recorded_at FROM events WHERE position = $1")
            .await
            .map_err(storage_error)?;
        let (mut lo, mut hi) = (0u64, last + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let t: Option<i64> = client
                .query_opt(&stmt, &[&clamp(mid)])
                .await
                .map_err(storage_error)?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(storage_error)?;
            match t {
                Some(t) if t <= at => lo = mid + 1,
                _ => hi = mid,
            }
        }
        Ok(lo.checked_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_classified_by_sqlstate() {
        for (code, kind) in [
            (SqlState::DISK_FULL, FaultKind::Full),
            (SqlState::READ_ONLY_SQL_TRANSACTION, FaultKind::ReadOnly),
            (SqlState::ADMIN_SHUTDOWN, FaultKind::Unavailable),
            (SqlState::CANNOT_CONNECT_NOW, FaultKind::Unavailable),
            (SqlState::TOO_MANY_CONNECTIONS, FaultKind::Unavailable),
            (SqlState::CONNECTION_FAILURE, FaultKind::Unavailable),
            (SqlState::QUERY_CANCELED, FaultKind::Other),
            (SqlState::DATA_CORRUPTED, FaultKind::Damaged),
            (SqlState::INDEX_CORRUPTED, FaultKind::Damaged),
            (SqlState::UNIQUE_VIOLATION, FaultKind::Other),
            (SqlState::UNDEFINED_TABLE, FaultKind::Other),
        ] {
            assert_eq!(sqlstate_fault_kind(&code), kind, "{}", code.code());
        }
    }
}
