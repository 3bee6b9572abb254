//! citydb's embedded event log: the [`EventLog`] contract on one SQLite file.
//!
//! - WAL journal, `synchronous=FULL` by default: an acknowledged append survives power loss.
//! - One writer thread with group commit (see [`writer`]); reads run on a small pool of
//!   read-only connections on tokio's blocking threads, and never block the writer. Copies of
//!   recorded events (`EventLog::copy_in`) go through the same writer as appends.
//! - The schema is versioned and migrated on open ([`schema`]); the file stays readable with the
//!   stock `sqlite3` tool (`docs/architecture.md` describes the tables).
//! - `testkit` (feature `testkit`, for tests only): a VFS that loses unsynced writes at a
//!   simulated power cut, and injects faults.

mod bulk;
mod checkpoint;
mod insert;
mod page_cache;
mod redact;
mod scan;
mod schema;
mod tiles;
mod wal_ahead;
mod wal_index;
mod writer;

#[cfg(feature = "testkit")]
pub mod testkit;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use citydb_log::backend::plan::decode as decode_view;
use citydb_log::backend::{BlockingPool, join_segments, send_append, send_copy, verify_ranges};
use citydb_log::bulk::StreamFilter;
use citydb_log::chain::{
    Envelope, EventBatch, EventView, LogVerifier, StreamVerifier, VERIFY_BATCH,
};
use citydb_log::{
    AppendOutcome, Direction, EventLog, FaultKind, Hash, LogError, LogHead, RecordedEvent,
    Redacted, StreamAppend, StreamId, VerifyReport,
};

use scan::{Columns, Scan};

pub use bulk::SqliteBulk;
pub use checkpoint::Checkpointer;
pub use page_cache::read_into_page_cache;
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};
pub use tiles::SqliteTiles;
pub use wal_ahead::WalAhead;
pub use wal_index::{WalIndexHeader, WalIndexWatch};

/// How hard a commit pushes to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync on every commit: an acknowledged append survives power loss. The default.
    Full,
    /// fsync at WAL checkpoints only: survives a process crash, not a power loss. For bulk loads
    /// that can be re-run.
    Normal,
    /// No fsync at all (`synchronous=OFF`): survives a process crash, loses the latest appends
    /// (or worse) on power loss. Never for a store that matters; it exists so that the
    /// power-loss test (`tests/power_loss.rs`) can show that it detects the loss.
    Off,
}

/// How long a connection waits for a lock held by another before failing with `SQLITE_BUSY`.
pub(crate) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Options for [`SqliteLog::open`].
#[derive(Clone, Debug)]
pub struct SqliteConfig {
    pub durability: Durability,
    /// Largest event (data + metadata + type), in bytes.
    pub max_event_size: usize,
    /// Read connections kept open.
    pub read_connections: usize,
    /// Logs with at least this many events are verified on parallel threads.
    pub parallel_verify_threshold: u64,
    /// How many segments (threads) a parallel verification uses.
    pub verify_segments: u64,
    /// Logs of more events than this are verified with their stream links set aside, so that
    /// memory does not grow with the number of streams (`LogVerifier::bounded`).
    pub verify_streams_in_memory: u64,
    /// WAL size (in pages) past which the writer rewinds the WAL between two commits; see
    /// [`Checkpointer::restart_if_due`]. Bounds the `-wal` file under constant load.
    pub wal_restart_pages: i64,
    /// Test hook: the name of a registered SQLite VFS that every connection of this log opens
    /// its files through (the power-loss and fault tests use the one of the `testkit`
    /// feature). `None`, the default and the only value a product path uses: the platform's.
    pub vfs: Option<String>,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            durability: Durability::Full,
            max_event_size: citydb_log::DEFAULT_MAX_EVENT_SIZE,
            read_connections: 4,
            parallel_verify_threshold: 50_000,
            verify_segments: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(4) as u64,
            verify_streams_in_memory: citydb_log::chain::STREAMS_IN_MEMORY,
            // 128 MiB of 4 KiB pages.
            wal_restart_pages: 32 * 1024,
            vfs: None,
        }
    }
}

/// An event log in one SQLite file. Cheap to clone; the writer thread stops when the last clone
/// is dropped.
#[derive(Clone)]
pub struct SqliteLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    config: SqliteConfig,
    queue: Option<mpsc::Sender<writer::WriteRequest>>,
    writer: Option<JoinHandle<()>>,
    head: watch::Receiver<Option<u64>>,
    readers: Arc<BlockingPool<Connection>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer loop once it has answered what it holds.
        self.queue.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl SqliteLog {
    /// Opens the log at `path`, creating it if it does not exist.
    pub fn open(path: impl AsRef<Path>, config: SqliteConfig) -> Result<Self, LogError> {
        let path = path.as_ref().to_path_buf();
        let display = path.display().to_string();
        check_header(&path)?;
        let mut conn =
            open_connection(&path, &config).map_err(|e| not_a_log_unless_fault(&display, e))?;
        configure(&conn, &config, &display)?;
        schema::prepare(&mut conn, &display)?;
        let head = schema::last_event(&conn)?.map(|(p, _, _)| p);
        // The writer never checkpoints itself (see [`Checkpointer`]); a bigger page cache
        // keeps the indexes it probes on every append in memory.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -8192;")
            .map_err(storage_error)?;
        let checkpoint_conn = open_connection(&path, &config).map_err(storage_error)?;
        configure(&checkpoint_conn, &config, &display)?;
        let checkpointer = Checkpointer::start(
            "citydb-log-checkpoint",
            checkpoint_conn,
            config.wal_restart_pages,
        )
        .map_err(|e| {
            LogError::Storage(format!("cannot start the checkpoint thread: {e}").into())
        })?;
        let ahead = WalAhead::new(&conn, config.wal_restart_pages);
        let (head_tx, head_rx) = watch::channel(head);
        let (queue_tx, queue_rx) = mpsc::channel(4096);
        let max_event_size = config.max_event_size;
        let readers = BlockingPool::new(config.read_connections);
        let writer = std::thread::Builder::new()
            .name("citydb-log-writer".into())
            .spawn(move || {
                writer::run(conn, queue_rx, head_tx, checkpointer, ahead, max_event_size)
            })
            .map_err(|e| {
                LogError::Storage(format!("cannot start the writer thread: {e}").into())
            })?;
        Ok(SqliteLog {
            inner: Arc::new(Inner {
                path,
                config,
                queue: Some(queue_tx),
                writer: Some(writer),
                head: head_rx,
                readers,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` with a read-only connection on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, LogError> + Send + 'static,
    ) -> Result<T, LogError> {
        let path = self.inner.path.clone();
        let vfs = self.inner.config.vfs.clone();
        self.inner
            .readers
            .run(
                move || open_reader(&path, vfs.as_deref()),
                move |conn| f(conn),
            )
            .await
            .map_err(|e| LogError::Storage(format!("read task failed: {e}").into()))?
    }
}

/// Refuses a file that exists, is not empty, and is not SQLite, before SQLite touches it.
fn check_header(path: &Path) -> Result<(), LogError> {
    use std::io::Read;
    let mut header = [0u8; 16];
    match std::fs::File::open(path) {
        Ok(mut f) => {
            let n = f.read(&mut header).map_err(|e| LogError::NotACitydbLog {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            // An empty file is a new log; anything else must carry SQLite's 16-byte magic.
            if n > 0 && header[..n] != b"SQLite format 3\0"[..] {
                return Err(LogError::NotACitydbLog {
                    path: path.display().to_string(),
                    reason: "it is not an SQLite database".into(),
                });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::storage(
            io_fault_kind(&e),
            format!("cannot open {}: {e}", path.display()),
        )),
    }
}

fn configure(conn: &Connection, config: &SqliteConfig, path: &str) -> Result<(), LogError> {
    let fail = |e: rusqlite::Error| not_a_log_unless_fault(path, e);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    stable_plans(conn).map_err(fail)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(fail)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(LogError::Storage(
            format!("cannot switch {path} to WAL (journal mode is {mode})").into(),
        ));
    }
    let sync = match config.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
        Durability::Off => "OFF",
    };
    conn.pragma_update(None, "synchronous", sync)
        .map_err(fail)?;
    // Freed bytes are zeroed, not left in a page's free space: a court-ordered redaction
    // (`EventLog::redact`) must not leave the payload readable in the file, neither where the
    // row was nor where a page split had copied it from. The log never deletes rows, so only
    // redactions and page rebalancing free anything: the cost on appends is negligible.
    conn.pragma_update(None, "secure_delete", "ON")
        .map_err(fail)?;
    Ok(())
}

/// Plans statements without looking at their bound values. Otherwise SQLite re-prepares a
/// cached statement on every run whose plan could depend on a parameter (any `LIMIT ?`): that
/// re-parsing was a fifth of an import's CPU.
fn stable_plans(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .map(drop)
}

/// A read-write connection, through the configured VFS if any.
fn open_connection(path: &Path, config: &SqliteConfig) -> rusqlite::Result<Connection> {
    match &config.vfs {
        None => Connection::open(path),
        Some(vfs) => Connection::open_with_flags_and_vfs(path, OpenFlags::default(), vfs.as_str()),
    }
}

/// The error of a file that could not be set up as a log: a storage fault when SQLite says so
/// (a read-only or unreachable file is not "not a citydb log"), `NotACitydbLog` otherwise.
fn not_a_log_unless_fault(path: &str, e: rusqlite::Error) -> LogError {
    // A file SQLite cannot read as a database at all is not a log (yet): what it is told
    // when it names the wrong file.
    match fault_kind(&e) {
        FaultKind::Other | FaultKind::Damaged => LogError::NotACitydbLog {
            path: path.to_owned(),
            reason: e.to_string(),
        },
        _ => storage_error(e),
    }
}

fn open_reader(path: &Path, vfs: Option<&str>) -> Result<Connection, LogError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match vfs {
        None => Connection::open_with_flags(path, flags),
        Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs),
    }
    .map_err(storage_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(storage_error)?;
    stable_plans(&conn).map_err(storage_error)?;
    // Nothing mapped between scans: a reader's own reads (a stream, an event, the head) are
    // random reads of a file larger than memory, and a fault on a mapping reads around the
    // page it needs (128 KiB by default) where pread(2) reads the page. From a cold cache the
    // whole city's as-of reads (a-v) read 6.4-7.0 GB from disk in 10 s through a mapping of
    // the whole file, against 75 MB through pread, at 1,721-2,380 req/s against 3,728
    // (docs/benchmarks.md, "The start-up check, and a reader's random reads through pread").
    // Scans map it ([`scanning`]).
    conn.pragma_update(None, "mmap_size", 0)
        .and_then(|()| conn.pragma_update(None, "cache_size", -16384))
        .map_err(storage_error)?;
    Ok(conn)
}

/// Runs `f`, a forward read of up to `rows` rows, on `conn`: a scan (at least [`SCAN_ROWS`])
/// with the whole file mapped, unmapped after it (also when `f` fails); fewer rows through
/// pread, as a reader's other reads. A scan reads every page in order, and through the mapping
/// it reads them without the copy into SQLite's cache that pread(2) makes: `citydb verify` of a
/// whole city spent 30-37 s of system time copying pages, 6-7 s mapped (docs/benchmarks.md,
/// "The log's readers map the whole file"); a read of one event by its position (a binary
/// search by time, the access log's tip) would only pay for the mapping. The mapping changes
/// between transactions, which is when a pooled connection is lent.
fn scanning<T>(
    conn: &Connection,
    rows: u64,
    f: impl FnOnce(&Connection) -> Result<T, LogError>,
) -> Result<T, LogError> {
    if rows < SCAN_ROWS {
        return f(conn);
    }
    conn.pragma_update(None, "mmap_size", MAP_WHOLE_FILE)
        .map_err(storage_error)?;
    let scanned = f(conn);
    let unmapped = conn
        .pragma_update(None, "mmap_size", 0)
        .map_err(storage_error);
    let scanned = scanned?;
    unmapped.map(|()| scanned)
}

/// The fewest rows a forward read asks for to be read as a scan ([`scanning`]): the log's own
/// batch for reading it whole.
const SCAN_ROWS: u64 = citydb_log::READ_BATCH as u64;

/// What a reader of a city's SQLite files asks to map (`PRAGMA mmap_size`, bytes): 64 GiB,
/// beyond any file a city has (the whole city's log is ~24 GB, its projections ~6 GB). SQLite
/// caps it at its compile-time maximum, which `.cargo/config.toml` raises to this from 2 GiB.
/// A mapping is address space: the pages are the kernel's page cache, read without a copy,
/// and counted in the process's resident size only while mapped and cached.
pub const MAP_WHOLE_FILE: i64 = 64 << 30;

/// The one place SQLite's errors become [`LogError::Storage`]: classified by SQLite's result
/// code, never by message.
pub(crate) fn storage_error(e: rusqlite::Error) -> LogError {
    LogError::storage(fault_kind(&e), e.to_string())
}

/// The class of an SQLite error (see [`FaultKind`]). Errors of no class (a constraint, a type
/// mismatch, misuse) are `Other`: they are bugs, not outages; damage is `Damaged`. Public so
/// that every SQLite file of a node (the projections too) classifies its faults the same way.
pub fn fault_kind(e: &rusqlite::Error) -> FaultKind {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DiskFull) => FaultKind::Full,
        Some(C::ReadOnly) => FaultKind::ReadOnly,
        // A lock held past the busy timeout, the disk failing or gone, a file that cannot be
        // opened or locked, memory exhausted: the store cannot serve now, and may later.
        Some(
            C::DatabaseBusy
            | C::DatabaseLocked
            | C::SystemIoFailure
            | C::CannotOpen
            | C::FileLockingProtocolFailed
            | C::PermissionDenied
            | C::OutOfMemory,
        ) => FaultKind::Unavailable,
        // SQLite's own finding that a page, an index or the header is not what it wrote.
        Some(C::DatabaseCorrupt | C::NotADatabase) => FaultKind::Damaged,
        _ => FaultKind::Other,
    }
}

/// The class of an I/O error met outside SQLite (reading the file's header).
fn io_fault_kind(e: &std::io::Error) -> FaultKind {
    match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => FaultKind::Full,
        std::io::ErrorKind::ReadOnlyFilesystem => FaultKind::ReadOnly,
        _ => FaultKind::Unavailable,
    }
}

pub(crate) fn corrupted(position: u64, reason: &str) -> LogError {
    LogError::Corrupted {
        position,
        reason: reason.to_owned(),
    }
}

/// Verifies positions `from..to` (`to = None`: to the end) as one segment.
/// `log_events` is the log's size when the run started: it decides whether the stream links are
/// set aside ([`LogVerifier::bounded`]). Events checked are added to `checked` as they are.
fn verify_range(
    conn: &Connection,
    from: u64,
    to: Option<u64>,
    expected_head: Option<LogHead>,
    (log_events, streams_in_memory): (u64, u64),
    checked: &AtomicU64,
) -> Result<LogVerifier, LogError> {
    let mut verifier = LogVerifier::bounded(from, expected_head, log_events, streams_in_memory);
    let mut rows = Scan::new(
        conn,
        &format!("{SELECT_EVENT} WHERE position >= ?1 AND position < ?2 ORDER BY position"),
        &[clamp(from), to.map_or(i64::MAX, clamp)],
    )?;
    // Rows are copied into batches so that their hashes are computed together
    // (`LogVerifier::check_batch`); the copy costs far less than the hashing it speeds up.
    let mut batch = EventBatch::default();
    while let Some(row) = rows.next()? {
        // A row that cannot even be decoded is reported as `Corrupted` at its position, unless
        // an event before it already broke the chain (`LogVerifier::unreadable_at`).
        if let Err(e) = with_view(&row, |view| batch.push(&view)) {
            if verifier.check_batch(&batch).is_ok() {
                match e {
                    LogError::Corrupted { position, reason } => {
                        verifier.unreadable_at(position, reason)
                    }
                    e => return Err(e),
                }
            }
            return Ok(verifier);
        }
        if batch.len() == VERIFY_BATCH {
            let broken = verifier.check_batch(&batch).is_err();
            checked.fetch_add(batch.len() as u64, Ordering::Relaxed);
            if broken {
                return Ok(verifier);
            }
            batch.clear();
        }
    }
    let _ = verifier.check_batch(&batch);
    checked.fetch_add(batch.len() as u64, Ordering::Relaxed);
    Ok(verifier)
}

/// The columns `with_view` reads. Reading the large text columns as blobs (`CAST(… AS BLOB)`)
/// would copy nothing less: SQLite's `OP_Column` already copies every string and blob into the
/// row's own memory, NUL-terminated, so handing text out costs no further copy.
const SELECT_EVENT: &str = "SELECT position, stream_id, stream_version, event_id, event_type,
    schema_version, recorded_at, data, metadata, data_hash, prev_stream_hash, prev_log_hash, hash
    FROM events";

/// Runs `f` on a row's columns, borrowed, as the verifier wants them.
fn with_view<T>(row: &impl Columns, f: impl FnOnce(EventView<'_>) -> T) -> Result<T, LogError> {
    let position = row
        .integer(0)?
        .ok_or_else(|| corrupted(0, "a position is not an integer"))? as u64;
    let bad = |what: &str| corrupted(position, what);
    let integer = |i: usize| {
        row.integer(i)?
            .ok_or_else(|| bad("an integer column is not an integer"))
    };
    let text = |i: usize| -> Result<&[u8], LogError> {
        row.text(i)?.ok_or_else(|| bad("a text column is not text"))
    };
    let str = |i: usize| -> Result<&str, LogError> {
        simdutf8::basic::from_utf8(text(i)?).map_err(|_| bad("a text column is not text"))
    };
    let hash = |i: usize| -> Result<Hash, LogError> {
        let bytes = row
            .blob(i)?
            .ok_or_else(|| bad("a hash column is not a blob"))?;
        Hash::from_slice(bytes).ok_or_else(|| bad("a hash is not 32 bytes"))
    };
    let event_id = row
        .blob(3)?
        .and_then(|b| Uuid::from_slice(b).ok())
        .ok_or_else(|| bad("the event id is not 16 bytes"))?;
    // Text, or a blob (as a column without a declared type could hold it): hashed as bytes.
    let bytes = |i: usize, what: &str| -> Result<&[u8], LogError> {
        match row.text(i)? {
            Some(text) => Ok(text),
            None => row.blob(i)?.ok_or_else(|| bad(what)),
        }
    };
    let data = if row.is_null(7)? {
        None
    } else {
        Some(bytes(7, "data is not text")?)
    };
    let view = EventView {
        envelope: Envelope {
            position,
            stream_id: str(1)?,
            stream_version: integer(2)? as u64,
            event_id,
            event_type: str(4)?,
            schema_version: u32::try_from(integer(5)?)
                .map_err(|_| bad("a schema version out of range"))?,
            recorded_at: integer(6)?,
            // Hashed as bytes: no need to check that the stored text is UTF-8 on this hot path.
            metadata: bytes(8, "metadata is not text")?,
        },
        data,
        data_hash: hash(9)?,
        prev_stream_hash: hash(10)?,
        prev_log_hash: hash(11)?,
        hash: hash(12)?,
    };
    Ok(f(view))
}

fn decode(row: &Row<'_>) -> Result<RecordedEvent, LogError> {
    with_view(row, |view| decode_view(&view))?
}

fn query_events(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<RecordedEvent>, LogError> {
    let mut stmt = conn.prepare_cached(sql).map_err(storage_error)?;
    let mut rows = stmt.query(params).map_err(storage_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(storage_error)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// Every stream's first event, as a filter sized for `events` ids, read from the stream index
/// alone when it exists (it covers the query; `indexed` false while a bulk load has set it
/// aside).
fn held_streams(conn: &Connection, events: u64, indexed: bool) -> Result<StreamFilter, LogError> {
    let mut filter = StreamFilter::with_capacity(events);
    let sql = if indexed {
        "SELECT stream_id FROM events INDEXED BY events_by_stream WHERE stream_version = 0"
    } else {
        "SELECT stream_id FROM events WHERE stream_version = 0"
    };
    let mut stmt = conn.prepare(sql).map_err(storage_error)?;
    let mut rows = stmt.query([]).map_err(storage_error)?;
    while let Some(row) = rows.next().map_err(storage_error)? {
        let stream = row.get_ref(0).map_err(storage_error)?;
        filter.insert(stream.as_str().map_err(|_| LogError::Corrupted {
            position: 0,
            reason: "a stream id is not text".into(),
        })?);
    }
    Ok(filter)
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[async_trait]
impl EventLog for SqliteLog {
    async fn append(&self, appends: Vec<StreamAppend>) -> Result<AppendOutcome, LogError> {
        citydb_log::validate_append(&appends, self.inner.config.max_event_size)?;
        let queue = self.inner.queue.as_ref().ok_or(LogError::Closed)?;
        send_append(queue, appends).await
    }

    /// Checked and written on the writer thread, in its group commit (under the request's own
    /// savepoint), so that it is serialised with appends; publishes the new head like them.
    async fn copy_in(&self, events: Vec<RecordedEvent>) -> Result<LogHead, LogError> {
        let queue = self.inner.queue.as_ref().ok_or(LogError::Closed)?;
        send_copy(queue, events).await
    }

    /// On a connection of its own, serialised with the writer by SQLite's write lock
    /// (`src/redact.rs` says why).
    async fn redact(&self, position: u64, expected_event_hash: Hash) -> Result<Redacted, LogError> {
        let (path, config) = (self.inner.path.clone(), self.inner.config.clone());
        tokio::task::spawn_blocking(move || {
            redact::redact(&path, &config, position, expected_event_hash)
        })
        .await
        .map_err(|e| LogError::Storage(format!("redaction task failed: {e}").into()))?
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        let stream = stream.as_str().to_owned();
        let max = clamp(max as u64);
        let from = clamp(from);
        self.read(move |conn| match direction {
            Direction::Forward => query_events(
                conn,
                &format!("{SELECT_EVENT} WHERE stream_id = ?1 AND stream_version >= ?2 ORDER BY stream_version LIMIT ?3"),
                (stream, from, max),
            ),
            Direction::Backward => query_events(
                conn,
                &format!("{SELECT_EVENT} WHERE stream_id = ?1 AND stream_version <= ?2 ORDER BY stream_version DESC LIMIT ?3"),
                (stream, from, max),
            ),
        })
        .await
    }

    async fn read_stream_to_end(
        &self,
        stream: &StreamId,
        from: u64,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        // One statement, one read transaction: one snapshot and one trip to the blocking pool.
        let stream = stream.as_str().to_owned();
        let from = clamp(from);
        self.read(move |conn| {
            query_events(
                conn,
                &format!("{SELECT_EVENT} WHERE stream_id = ?1 AND stream_version >= ?2 ORDER BY stream_version"),
                (stream, from),
            )
        })
        .await
    }

    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let (from, max) = (clamp(from), clamp(max as u64));
        self.read(move |conn| {
            scanning(conn, max as u64, |conn| {
                query_events(
                    conn,
                    &format!("{SELECT_EVENT} WHERE position >= ?1 ORDER BY position LIMIT ?2"),
                    (from, max),
                )
            })
        })
        .await
    }

    async fn read_hashes(&self, from: u64, max: usize) -> Result<Vec<Hash>, LogError> {
        // The hash column alone: no JSON decoded, no row built (the tree's catch-up reads the
        // whole log through here).
        let (from, max) = (clamp(from), clamp(max as u64));
        self.read(move |conn| scanning(conn, max as u64, |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT position, hash FROM events WHERE position >= ?1 ORDER BY position LIMIT ?2")
                .map_err(storage_error)?;
            let mut rows = stmt.query((from, max)).map_err(storage_error)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(storage_error)? {
                let position: i64 = row.get(0).map_err(storage_error)?;
                let hash: Vec<u8> = row.get(1).map_err(storage_error)?;
                out.push(
                    Hash::from_slice(&hash)
                        .ok_or_else(|| corrupted(position as u64, "hash is not 32 bytes"))?,
                );
            }
            Ok(out)
        }))
        .await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<u64>, LogError> {
        let stream = stream.as_str().to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT max(stream_version) FROM events WHERE stream_id = ?1")
                .and_then(|mut s| s.query_row([stream], |r| r.get::<_, Option<i64>>(0)))
                .map(|v| v.map(|v| v as u64))
                .map_err(storage_error)
        })
        .await
    }

    async fn held_streams(&self) -> Result<Option<StreamFilter>, LogError> {
        self.read(|conn| {
            // One read transaction: the filter is sized by the same log it lists.
            let tx = conn.unchecked_transaction().map_err(storage_error)?;
            let events = schema::last_event(&tx)?.map_or(0, |(last, _, _)| last + 1);
            held_streams(&tx, events, true).map(Some)
        })
        .await
    }

    async fn head(&self) -> Result<Option<LogHead>, LogError> {
        self.read(|conn| {
            schema::last_event(conn)?
                .map(|(position, hash, _)| {
                    Hash::from_slice(&hash)
                        .map(|hash| LogHead { position, hash })
                        .ok_or_else(|| corrupted(position, "hash is not 32 bytes"))
                })
                .transpose()
        })
        .await
    }

    fn watch_head(&self) -> watch::Receiver<Option<u64>> {
        self.inner.head.clone()
    }

    /// [`EventLog::verify_log_counting`], with nobody reading the count.
    async fn verify_log(&self, expected_head: Option<LogHead>) -> Result<VerifyReport, LogError> {
        self.verify_log_counting(expected_head, Arc::default())
            .await
    }

    /// Streams rows straight into the verifier, borrowing each row's bytes (no allocation per
    /// event beyond the first sight of each stream). A large log is cut into consecutive
    /// position ranges verified on parallel threads, each with its own read connection, and
    /// the segments are joined in order (`LogVerifier::join` checks the seams). A log of more
    /// events than `STREAMS_IN_MEMORY` sets its stream links aside ([`LogVerifier::bounded`]),
    /// so that memory does not grow with its streams.
    async fn verify_log_counting(
        &self,
        expected_head: Option<LogHead>,
        checked: Arc<AtomicU64>,
    ) -> Result<VerifyReport, LogError> {
        let path = self.inner.path.clone();
        let vfs = self.inner.config.vfs.clone();
        let threshold = self.inner.config.parallel_verify_threshold;
        let segments_wanted = self.inner.config.verify_segments;
        let streams_in_memory = self.inner.config.verify_streams_in_memory;
        self.read(move |conn| {
            let Some((last, _, _)) = schema::last_event(conn)? else {
                return Ok(LogVerifier::new(expected_head).finish());
            };
            let events = (last + 1, streams_in_memory);
            let ranges = verify_ranges(last + 1, threshold, segments_wanted);
            let checked = &*checked;
            // The first range runs here on the pooled connection, the others on their own.
            let results: Vec<Result<LogVerifier, LogError>> = std::thread::scope(|scope| {
                let handles: Vec<_> = ranges[1..]
                    .iter()
                    .map(|&(from, to)| {
                        let (path, vfs) = (&path, vfs.as_deref());
                        scope.spawn(move || {
                            let conn = open_reader(path, vfs)?;
                            scanning(&conn, u64::MAX, |conn| {
                                verify_range(conn, from, to, expected_head, events, checked)
                            })
                        })
                    })
                    .collect();
                let (from, to) = ranges[0];
                let mut results = vec![scanning(conn, u64::MAX, |conn| {
                    verify_range(conn, from, to, expected_head, events, checked)
                })];
                results.extend(handles.into_iter().map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(LogError::Storage("a verification thread panicked".into()))
                    })
                }));
                results
            });
            join_segments(results, expected_head)
        })
        .await
    }

    async fn verify_stream(&self, stream: &StreamId) -> Result<VerifyReport, LogError> {
        let stream = stream.as_str().to_owned();
        self.read(move |conn| {
            let mut verifier = StreamVerifier::new();
            let mut stmt = conn
                .prepare_cached(&format!(
                    "{SELECT_EVENT} WHERE stream_id = ?1 ORDER BY stream_version"
                ))
                .map_err(storage_error)?;
            let mut rows = stmt.query([stream]).map_err(storage_error)?;
            while let Some(row) = rows.next().map_err(storage_error)? {
                if !with_view(row, |view| verifier.check(&view).is_ok())? {
                    break;
                }
            }
            Ok(verifier.finish())
        })
        .await
    }

    async fn position_at(&self, at: i64) -> Result<Option<u64>, LogError> {
        // `recorded_at` never decreases along the log, so the last event at or before `at` is
        // found by a binary search over the primary key, without an index on time.
        self.read(move |conn| {
            let Some((last, _, _)) = schema::last_event(conn)? else {
                return Ok(None);
            };
            let mut stmt = conn
                .prepare_cached("SELECT recorded_at FROM events WHERE position = ?1")
                .map_err(storage_error)?;
            let (mut lo, mut hi) = (0u64, last + 1);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                let t: Option<i64> = stmt
                    .query_row([clamp(mid)], |r| r.get(0))
                    .optional()
                    .map_err(storage_error)?;
                match t {
                    Some(t) if t <= at => lo = mid + 1,
                    _ => hi = mid,
                }
            }
            Ok(lo.checked_sub(1))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::ffi;

    fn sqlite(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)
    }

    /// Classified by result code, extended codes included; anything else stays `Other`.
    #[test]
    fn sqlite_errors_are_classified_by_result_code() {
        for (code, kind) in [
            (ffi::SQLITE_FULL, FaultKind::Full),
            (ffi::SQLITE_READONLY, FaultKind::ReadOnly),
            (ffi::SQLITE_READONLY_DBMOVED, FaultKind::ReadOnly),
            (ffi::SQLITE_BUSY, FaultKind::Unavailable),
            (ffi::SQLITE_BUSY_SNAPSHOT, FaultKind::Unavailable),
            (ffi::SQLITE_IOERR_FSYNC, FaultKind::Unavailable),
            (ffi::SQLITE_CANTOPEN, FaultKind::Unavailable),
            (ffi::SQLITE_CONSTRAINT, FaultKind::Other),
            (ffi::SQLITE_CORRUPT, FaultKind::Damaged),
            (ffi::SQLITE_CORRUPT_INDEX, FaultKind::Damaged),
            (ffi::SQLITE_NOTADB, FaultKind::Damaged),
            (ffi::SQLITE_MISUSE, FaultKind::Other),
        ] {
            assert_eq!(
                storage_error(sqlite(code)).fault_kind(),
                Some(kind),
                "{code}"
            );
        }
        // Not an engine failure at all.
        assert_eq!(
            fault_kind(&rusqlite::Error::QueryReturnedNoRows),
            FaultKind::Other
        );
    }

    /// A scan maps the whole log of a city (~24 GB): SQLite silently caps a mapping at
    /// SQLITE_MAX_MMAP_SIZE (2 GiB unless `.cargo/config.toml` raises it), and past the mapping
    /// every page is copied by pread(2). Outside scans a reader maps nothing (random reads:
    /// a fault reads around the page), also after a scan that failed.
    #[test]
    fn scans_alone_map_a_whole_city_log() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("log.db");
        Connection::open(&path)
            .and_then(|c| c.execute_batch("CREATE TABLE t(x)"))
            .expect("a database file");
        let reader = open_reader(&path, None).expect("a reader");
        let mapped = |conn: &Connection| -> i64 {
            conn.query_row("PRAGMA mmap_size", [], |r| r.get(0))
                .expect("the mapping's size")
        };
        assert_eq!(mapped(&reader), 0, "a reader's own reads go through pread");
        let few = scanning(&reader, SCAN_ROWS - 1, |conn| Ok(mapped(conn))).expect("a read");
        assert_eq!(few, 0, "a read of a few rows goes through pread");
        let during = scanning(&reader, SCAN_ROWS, |conn| Ok(mapped(conn))).expect("a scan");
        assert!(
            during >= 32 << 30,
            "a scan maps {during} bytes of the file; a whole city's log is ~24 GB"
        );
        assert_eq!(mapped(&reader), 0, "the mapping ends with the scan");
        let failed: Result<(), LogError> = scanning(&reader, u64::MAX, |_| {
            Err(LogError::Storage("a failed scan".into()))
        });
        assert!(failed.is_err());
        assert_eq!(
            mapped(&reader),
            0,
            "the mapping ends with a failed scan too"
        );
    }
}
