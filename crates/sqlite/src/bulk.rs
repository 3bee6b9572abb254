//! [`SqliteBulk`]: the embedded log opened for a bulk load by its only writer.
//!
//! What differs from [`SqliteLog`](crate::SqliteLog)'s writer, and why:
//! - **The file is held exclusively** (`PRAGMA locking_mode = EXCLUSIVE`, taken when it opens
//!   and kept until [`BulkSink::finish`] or a drop): the importer decides in memory on the premise
//!   that nobody else writes, so nobody else can — a server or a second import opening the file
//!   meanwhile gets "database is locked" (`STORE_UNAVAILABLE`) instead of interleaving.
//! - **Large transactions, not group commits.** Rows arrive already planned (positions, versions,
//!   links) and are inserted by one loader thread, while the importer decides the next commands
//!   on its own thread. A transaction ends after [`TRANSACTION_ROWS`] rows
//!   ([`INDEXED_TRANSACTION_ROWS`] into a log that held rows at open), at the end of a
//!   call (whole commands), or at [`BulkSink::commit`]. Every commit is fsync'd as the store's
//!   durability says (`synchronous = FULL` by default: one fsync per 100,000 rows costs
//!   nothing next to writing them), so what a commit returned survives a power cut (tested
//!   with the power-cut VFS).
//! - **A rollback journal, not the WAL, while loading** (`journal_mode = TRUNCATE`, back to the
//!   WAL at [`BulkSink::finish`]): appended pages are written once, into the file, instead of
//!   into the WAL and again by a checkpoint (see `set_journal_mode`).
//! - **Reads of whole streams skip the queue.** The importer asks about a stream only when it
//!   has not written it in this load, so no queued row belongs to it: the loader answers such
//!   a read between two slices of the write at hand ([`SqliteBulk::reads`]), not after every
//!   write queued before it. Reads of one event by position stay in the queue.
//! - **No planning here.** The loader checks only that each row continues the one before it
//!   (position and log link) and the store's tip, so a bug upstream cannot write a broken
//!   chain silently; the unique indexes still refuse a duplicated event id or stream version.
//! - **Into an empty log, the unique indexes come last.** The stream index is keyed at random
//!   (stream ids hold random UUIDs): inserted row by row it outgrows any page cache, and every
//!   commit rewrites an index page for almost every row (measured at the whole city: half of
//!   the loader's time in the kernel, docs/benchmarks.md). So when the log is
//!   empty at open, the first transaction drops them (atomically with the first rows) and
//!   [`BulkSink::finish`] builds them in one sort each; the build is the uniqueness check, and a
//!   duplicate fails it as corruption. Nothing reads through them meanwhile (the importer holds
//!   every stream it wrote; reads by stream still answer, by a scan). An interrupted load leaves
//!   them missing, and the next open of the file builds them ([`schema::prepare`]) before anyone
//!   reads or appends — so a resumed import runs on an indexed, non-empty log.
//! - **Committed pages go back to the kernel** ([`WrittenPages`]) during a load into an empty
//!   log: rows go to the right edge of the table, which the loader's own page cache holds, so
//!   nothing reads a committed page again before the index build;
//!   kept, the log's pages pushed out of the page cache those of the projections built beside
//!   the load.
//! - **The Merkle tree grows in the same transactions.** The tree's leaves are the hashes of
//!   the rows inserted, so the loader adds them to it ([`citydb_tlog::grow::extend`], the tiles
//!   written by the functions [`SqliteTiles`](crate::SqliteTiles) uses) before each commit,
//!   when the stored tree is the committed log's at open. Catching the tree up after the load
//!   instead read every row of the file back for its hash: 38 s for the whole city
//!   (docs/benchmarks.md). A kill or a power cut leaves a tree of exactly the committed rows. A
//!   tree behind the log, or not over it, is left alone and caught up after the load as before
//!   (`Tlog::catch_up`, which reports a divergence).

use std::path::Path;
use std::thread::JoinHandle;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use citydb_log::backend::plan::Tip;
use citydb_log::bulk::{BulkSink, StreamFilter};
use citydb_log::chain::{Breach, EventView};
use citydb_log::{CopyRefusal, LogError, RecordedEvent, StreamId};
use citydb_tlog::tile::{HASH_LEN, TILE_WIDTH};
use citydb_tlog::{Level, TileKey, TileSet};

use crate::insert::RawInsert;
use crate::page_cache::WrittenPages;
use crate::writer::RowValues;
use crate::{
    SELECT_EVENT, SqliteConfig, check_header, clamp, configure, not_a_log_unless_fault,
    open_connection, query_events, schema, storage_error,
};

/// Page cache of the loader's connection (KiB): the stream index of a whole city is probed and
/// grown at random, and every miss is a read from disk.
const LOADER_CACHE_KIB: i64 = 512 * 1024;

/// Page cache while the deferred indexes are built at the end (KiB), which is also what SQLite's
/// sorter holds in memory before it writes a sorted run: smaller runs keep its helper thread
/// sorting beside the thread that reads the rows. At the whole city (sqlite3, `events_by_stream`,
/// alternating) 70.1 and 64.8 s at 512 MiB, 65.6 and 56.8 s at 32 MiB; in a whole-city import
/// the log's index build 104 → 81 s (docs/benchmarks.md).
const INDEX_BUILD_CACHE_KIB: i64 = 32 * 1024;

/// Page cache while the unique indexes are deferred (KiB): rows only go to the end of the
/// table's B-tree (positions ascend), so a few pages are all a load touches; the rest of the
/// cache would hold pages never read again, on the heap the importer's records need.
const DEFERRED_CACHE_KIB: i64 = 16 * 1024;

/// Calls queued for the loader before `write` waits: bounds the rows held in memory.
const QUEUE: usize = 8;

/// Rows per transaction: the loader commits on its own once a transaction holds this many (at
/// the end of a call, never inside one), so the importer never waits for a commit. Large
/// enough to spread a commit's two syncs, small enough that a kill loses little work.
const TRANSACTION_ROWS: u64 = 100_000;

/// Rows per transaction, and the page cache (KiB), when the log held rows at open and its
/// unique indexes stay live. Every row then lands on a random leaf of both indexes, and the
/// rollback journal keeps each leaf a transaction changes, so a transaction writes every leaf
/// it touched twice (journal and file) and syncs twice: the more rows share a transaction, the
/// more of them share a leaf. The cache holds a transaction's changed leaves (~1.6 GB for a
/// million rows into the whole city's indexes) so that none is spilled before the commit. A
/// district-sized file onto the whole city: the lines 37.1 → 27.5 s, commits 17.4 → 8.7 s, at
/// a peak RSS of ~2.9 GB (docs/benchmarks.md). A kill loses at most ~10 s of work.
const INDEXED_TRANSACTION_ROWS: u64 = 1_000_000;
const INDEXED_CACHE_KIB: i64 = 2 * 1024 * 1024;

/// Rows inserted between two looks at the reads' lane ([`SqliteBulk::reads`]): ~6 ms of a
/// loader inserting into a whole city's indexes.
const READS_EVERY: usize = 512;

enum Job {
    Write(Vec<RecordedEvent>),
    HeldStreams(oneshot::Sender<Result<Option<StreamFilter>, LogError>>),
    /// Nothing to do but look at the reads' lane (a read was sent while the queue had room, so
    /// the loader may be waiting for a job).
    Wake,
    ReadEvent(
        u64,
        oneshot::Sender<Result<Option<RecordedEvent>, LogError>>,
    ),
    Commit(oneshot::Sender<Result<(), LogError>>),
    HandOver(std::sync::mpsc::SyncSender<Vec<RecordedEvent>>),
    Finish(oneshot::Sender<Result<(), LogError>>),
}

/// A stream's events asked for by the importer, on a lane of its own (see [`SqliteBulk::reads`]).
type StreamRead = (
    String,
    oneshot::Sender<Result<Vec<RecordedEvent>, LogError>>,
);

/// The embedded log opened for a bulk load (see the module documentation).
pub struct SqliteBulk {
    tip: Tip,
    queue: Option<mpsc::Sender<Job>>,
    /// Reads of whole streams, answered by the loader after the job at hand instead of behind
    /// every write queued before them. The importer only asks the store for a stream it has
    /// not written in this load (the streams it wrote, it holds), so no queued row belongs to
    /// one: answering first reads the same events. In the queue, each such read drained the
    /// pipeline: the importer waited for up to `QUEUE` writes, then the loader for the
    /// importer's next rows (a district-sized file onto the whole city: 2,288 reads, the
    /// loader idle 13.6 s of 47; docs/benchmarks.md).
    reads: std::sync::mpsc::Sender<StreamRead>,
    loader: Option<JoinHandle<()>>,
}

impl SqliteBulk {
    /// Opens (or creates) the log at `path` for a bulk load. Fails with a storage fault
    /// (`Unavailable`) when another connection holds the file.
    pub fn open(path: impl AsRef<Path>, config: &SqliteConfig) -> Result<SqliteBulk, LogError> {
        let path = path.as_ref();
        let display = path.display().to_string();
        check_header(path)?;
        let mut conn =
            open_connection(path, config).map_err(|e| not_a_log_unless_fault(&display, e))?;
        // Before the first access, so that the lock is taken by the first read and no
        // shared-memory index is used: no other connection can open the file until we close.
        conn.execute_batch("PRAGMA locking_mode = EXCLUSIVE")
            .map_err(|e| not_a_log_unless_fault(&display, e))?;
        configure(&conn, config, &display)?;
        schema::prepare(&mut conn, &display)?;
        conn.execute_batch(&format!("PRAGMA cache_size = -{LOADER_CACHE_KIB};"))
            .map_err(storage_error)?;
        // A write takes the exclusive lock now, not at the first row, so a running server is
        // refused at once rather than after the first command was decided.
        conn.execute_batch("BEGIN EXCLUSIVE")
            .map_err(storage_error)?;
        crate::tiles::create_tables(&conn)
            .and_then(|()| conn.execute_batch("COMMIT"))
            .map_err(storage_error)?;
        set_journal_mode(&conn, "truncate")?;
        let tip = match schema::last_event(&conn)? {
            Some((position, hash, recorded_at)) => Tip::after(position, &hash, recorded_at)?,
            None => Tip::EMPTY,
        };
        let tree = Tree::in_step(&conn, &tip).map_err(storage_error)?;
        let (queue, jobs) = mpsc::channel(QUEUE);
        let (reads, asked) = std::sync::mpsc::channel();
        let defer_indexes = tip.next_position == 0;
        if !defer_indexes {
            conn.execute_batch(&format!("PRAGMA cache_size = -{INDEXED_CACHE_KIB};"))
                .map_err(storage_error)?;
        }
        // Rows only go to the end of the table while its indexes are deferred: nothing reads
        // the committed pages again during the load (see `page_cache`).
        let written = defer_indexes.then(|| WrittenPages::of(path));
        let loader = std::thread::Builder::new()
            .name("citydb-bulk-loader".into())
            .spawn(move || {
                Loader::new(conn, tip, tree, defer_indexes, written, display).run(jobs, asked)
            })
            .map_err(|e| {
                LogError::Storage(format!("cannot start the loader thread: {e}").into())
            })?;
        Ok(SqliteBulk {
            tip,
            queue: Some(queue),
            reads,
            loader: Some(loader),
        })
    }

    async fn ask<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, LogError>>) -> Job,
    ) -> Result<T, LogError> {
        let queue = self.queue.as_ref().ok_or(LogError::Closed)?;
        let (tx, rx) = oneshot::channel();
        queue.send(job(tx)).await.map_err(|_| LogError::Closed)?;
        rx.await.map_err(|_| LogError::Closed)?
    }
}

impl Drop for SqliteBulk {
    fn drop(&mut self) {
        // The loader ends once its queue is closed; an open transaction is rolled back.
        self.queue.take();
        if let Some(loader) = self.loader.take() {
            let _ = loader.join();
        }
    }
}

#[async_trait]
impl BulkSink for SqliteBulk {
    fn tip(&self) -> Tip {
        self.tip
    }

    async fn held_streams(&mut self) -> Result<Option<StreamFilter>, LogError> {
        self.ask(Job::HeldStreams).await
    }

    async fn read_stream(&mut self, stream: &StreamId) -> Result<Vec<RecordedEvent>, LogError> {
        let queue = self.queue.as_ref().ok_or(LogError::Closed)?;
        let (tx, rx) = oneshot::channel();
        self.reads
            .send((stream.as_str().to_owned(), tx))
            .map_err(|_| LogError::Closed)?;
        // A full queue means a busy loader, which looks at the reads after its job at hand;
        // otherwise it may be waiting for a job, and this one wakes it.
        match queue.try_send(Job::Wake) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => return Err(LogError::Closed),
        }
        rx.await.map_err(|_| LogError::Closed)?
    }

    async fn read_event(&mut self, position: u64) -> Result<Option<RecordedEvent>, LogError> {
        self.ask(|tx| Job::ReadEvent(position, tx)).await
    }

    async fn write(&mut self, rows: Vec<RecordedEvent>) -> Result<(), LogError> {
        let Some(last) = rows.last() else {
            return Ok(());
        };
        let tip = Tip {
            next_position: last.position + 1,
            hash: last.hash,
            recorded_at: last.recorded_at,
        };
        let queue = self.queue.as_ref().ok_or(LogError::Closed)?;
        queue
            .send(Job::Write(rows))
            .await
            .map_err(|_| LogError::Closed)?;
        self.tip = tip;
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), LogError> {
        self.ask(Job::Commit).await
    }

    async fn hand_over_rows(
        &mut self,
        to: std::sync::mpsc::SyncSender<Vec<RecordedEvent>>,
    ) -> Result<bool, LogError> {
        let queue = self.queue.as_ref().ok_or(LogError::Closed)?;
        queue
            .send(Job::HandOver(to))
            .await
            .map_err(|_| LogError::Closed)?;
        Ok(true)
    }

    async fn finish(mut self: Box<Self>) -> Result<(), LogError> {
        let result = self.ask(Job::Finish).await;
        self.queue.take();
        if let Some(loader) = self.loader.take() {
            let _ = loader.join();
        }
        result
    }
}

/// The loader thread's state: its connection, whether a transaction is open, the tip of what
/// it inserted, and the first failure (every later call answers it: nothing after a failed
/// write may commit).
struct Loader {
    conn: Connection,
    in_transaction: bool,
    /// Rows inserted by the open transaction.
    uncommitted: u64,
    tip: Tip,
    failed: Option<LogError>,
    /// The log was empty at open: drop the unique indexes with the first rows (see the module
    /// documentation).
    defer_indexes: bool,
    /// When the loader commits on its own: [`TRANSACTION_ROWS`], or
    /// [`INDEXED_TRANSACTION_ROWS`] into a log whose indexes stay live.
    transaction_rows: u64,
    /// The open transaction or a committed one dropped them; [`Loader::finish`] builds them.
    indexes_dropped: bool,
    /// The file's path, for errors.
    path: String,
    /// Where stored rows go next ([`BulkSink::hand_over_rows`]); dropped on a failure, so the
    /// consumer never receives a row after one that failed.
    hand_over: Option<std::sync::mpsc::SyncSender<Vec<RecordedEvent>>>,
    /// The Merkle tree, when the loader keeps it (see the module documentation).
    tree: Option<Tree>,
    /// The file, when its committed pages go back to the kernel after each commit: a load
    /// into an empty log (see [`WrittenPages`]).
    written: Option<WrittenPages>,
}

/// The log's Merkle tree as the loader grows it.
struct Tree {
    /// Leaves the stored tree holds: the committed rows.
    size: u64,
    /// Its right-edge tiles, all `extend` reads.
    edge: TileSet,
    /// The hashes of the rows the open transaction inserted: the leaves its commit adds.
    pending: Vec<[u8; 32]>,
}

impl Tree {
    /// The stored tree, if it holds exactly the log's rows and its last leaf is the log's last
    /// hash; `None` leaves the tree to be caught up after the load.
    fn in_step(conn: &Connection, tip: &Tip) -> rusqlite::Result<Option<Tree>> {
        let size = crate::tiles::stored_size(conn)?;
        if size != tip.next_position {
            return Ok(None);
        }
        let edge = crate::tiles::read_edge(conn, size)?;
        if let Some(last) = size.checked_sub(1) {
            // The entry bundle holding the last leaf is on the edge unless it is full.
            let key = TileKey {
                level: Level::Entries,
                index: last / TILE_WIDTH,
            };
            let at = (last % TILE_WIDTH) as usize * HASH_LEN;
            let stored = match edge.get(&key) {
                Some(bytes) => bytes.get(at..at + HASH_LEN).map(<[u8]>::to_vec),
                None => conn
                    .query_row(
                        "SELECT substr(hashes, ?3, ?4) FROM tlog_tiles WHERE level = ?1 AND idx = ?2",
                        (
                            key.level.code(),
                            key.index as i64,
                            at as i64 + 1,
                            HASH_LEN as i64,
                        ),
                        |r| r.get::<_, Vec<u8>>(0),
                    )
                    .optional()?,
            };
            if stored.as_deref() != Some(&tip.hash.0[..]) {
                return Ok(None);
            }
        }
        Ok(Some(Tree {
            size,
            edge,
            pending: Vec::new(),
        }))
    }
}

impl Loader {
    fn new(
        conn: Connection,
        tip: Tip,
        tree: Option<Tree>,
        defer_indexes: bool,
        written: Option<WrittenPages>,
        path: String,
    ) -> Loader {
        Loader {
            conn,
            in_transaction: false,
            uncommitted: 0,
            tip,
            tree,
            failed: None,
            defer_indexes,
            transaction_rows: if defer_indexes {
                TRANSACTION_ROWS
            } else {
                INDEXED_TRANSACTION_ROWS
            },
            indexes_dropped: false,
            path,
            hand_over: None,
            written,
        }
    }

    fn run(mut self, mut jobs: mpsc::Receiver<Job>, reads: std::sync::mpsc::Receiver<StreamRead>) {
        while let Some(job) = jobs.blocking_recv() {
            match job {
                Job::Write(rows) => {
                    if self.failed.is_none()
                        && let Err(e) = self.insert_answering(&rows, &reads).and_then(|()| {
                            if self.uncommitted >= self.transaction_rows {
                                self.commit()
                            } else {
                                Ok(())
                            }
                        })
                    {
                        // Nothing of an uncommitted call may survive a failure of a later one.
                        if self.in_transaction {
                            let _ = self.conn.execute_batch("ROLLBACK");
                            self.in_transaction = false;
                        }
                        self.failed = Some(e);
                        self.hand_over = None;
                    }
                    if self.failed.is_none()
                        && let Some(to) = &self.hand_over
                        && to.send(rows).is_err()
                    {
                        // The consumer stopped: it reports why; the load goes on.
                        self.hand_over = None;
                    }
                }
                Job::HandOver(to) => self.hand_over = Some(to),
                Job::HeldStreams(reply) => {
                    let _ = reply.send(self.checked().and_then(|()| self.held_streams()));
                }
                Job::Wake => {}
                Job::ReadEvent(position, reply) => {
                    let _ = reply.send(self.checked().and_then(|()| {
                        Ok(query_events(
                            &self.conn,
                            &format!("{SELECT_EVENT} WHERE position = ?1"),
                            [clamp(position)],
                        )?
                        .into_iter()
                        .next())
                    }));
                }
                Job::Commit(reply) => {
                    let result = self.checked().and_then(|()| self.commit());
                    let _ = reply.send(result);
                }
                Job::Finish(reply) => {
                    let result = self.checked().and_then(|()| self.finish());
                    let _ = reply.send(result);
                    return;
                }
            }
            self.answer_reads(&reads);
        }
        if self.in_transaction {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// Answers the reads waiting in their lane (see [`SqliteBulk::reads`]).
    fn answer_reads(&self, reads: &std::sync::mpsc::Receiver<StreamRead>) {
        while let Ok((stream, reply)) = reads.try_recv() {
            let _ = reply.send(self.checked().and_then(|()| {
                query_events(
                    &self.conn,
                    &format!("{SELECT_EVENT} WHERE stream_id = ?1 ORDER BY stream_version"),
                    [stream],
                )
            }));
        }
    }

    fn held_streams(&self) -> Result<Option<StreamFilter>, LogError> {
        crate::held_streams(&self.conn, self.tip.next_position, !self.indexes_dropped).map(Some)
    }

    fn checked(&self) -> Result<(), LogError> {
        self.failed.clone().map_or(Ok(()), Err)
    }

    /// [`Self::insert`], answering the reads' lane every [`READS_EVERY`] rows: a call holds
    /// thousands of rows (~50 ms), and the importer waits for each answer.
    fn insert_answering(
        &mut self,
        rows: &[RecordedEvent],
        reads: &std::sync::mpsc::Receiver<StreamRead>,
    ) -> Result<(), LogError> {
        for chunk in rows.chunks(READS_EVERY) {
            self.insert(chunk)?;
            self.answer_reads(reads);
        }
        Ok(())
    }

    fn insert(&mut self, rows: &[RecordedEvent]) -> Result<(), LogError> {
        if !self.in_transaction {
            self.conn
                .execute_batch("BEGIN EXCLUSIVE")
                .map_err(storage_error)?;
            self.in_transaction = true;
            if self.defer_indexes && !self.indexes_dropped {
                // In the transaction of the first rows: a log that has rows has no indexes
                // only until `finish` or the next open builds them.
                self.conn
                    .execute_batch(schema::DROP_EVENT_INDEXES)
                    .map_err(storage_error)?;
                self.conn
                    .execute_batch(&format!("PRAGMA cache_size = -{DEFERRED_CACHE_KIB}"))
                    .map_err(storage_error)?;
                self.indexes_dropped = true;
            }
        }
        let mut insert = RawInsert::new(&self.conn)?;
        for row in rows {
            let breach = if row.position != self.tip.next_position {
                Some(Breach::PositionGap {
                    expected: self.tip.next_position,
                    found: row.position,
                })
            } else if row.prev_log_hash != self.tip.hash {
                Some(Breach::LogLinkBroken)
            } else if row.recorded_at < self.tip.recorded_at {
                Some(Breach::TimeWentBackwards)
            } else {
                None
            };
            if let Some(breach) = breach {
                return Err(LogError::CopyRefused {
                    position: row.position,
                    reason: CopyRefusal::Chain(breach),
                });
            }
            let view = EventView::from(row);
            insert
                .insert(&RowValues::of(&view)?)
                .map_err(|e| match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation)
                        if e.to_string().contains("event_id") =>
                    {
                        LogError::CopyRefused {
                            position: row.position,
                            reason: CopyRefusal::DuplicateEventId {
                                event_id: row.event_id,
                            },
                        }
                    }
                    _ => storage_error(e),
                })?;
            self.tip = Tip {
                next_position: row.position + 1,
                hash: row.hash,
                recorded_at: row.recorded_at,
            };
            self.uncommitted += 1;
            if let Some(tree) = &mut self.tree {
                tree.pending.push(row.hash.0);
            }
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), LogError> {
        if self.in_transaction {
            let grown = self.grow_tree()?;
            self.conn.execute_batch("COMMIT").map_err(storage_error)?;
            self.in_transaction = false;
            self.uncommitted = 0;
            if let (Some(tree), Some((size, edge))) = (&mut self.tree, grown) {
                tree.size = size;
                tree.edge = edge;
                tree.pending.clear();
            }
            if let Some(written) = &self.written {
                written.hand_back();
            }
        }
        Ok(())
    }

    /// Writes the tiles that the open transaction's rows add to the tree, in that transaction;
    /// returns the tree's size and edge once it commits.
    fn grow_tree(&mut self) -> Result<Option<(u64, TileSet)>, LogError> {
        let Some(tree) = &mut self.tree else {
            return Ok(None);
        };
        if tree.pending.is_empty() {
            return Ok(None);
        }
        let tiles = match citydb_tlog::grow::extend(tree.size, &tree.edge, &tree.pending) {
            Ok(tiles) => tiles,
            Err(_) => {
                // An edge tile missing from the stored tree: left to the catch-up after the
                // load, which reports it.
                self.tree = None;
                return Ok(None);
            }
        };
        let size = tree.size + tree.pending.len() as u64;
        crate::tiles::write_growth(&self.conn, size, &tiles).map_err(storage_error)?;
        let mut edge = TileSet::new();
        for key in citydb_tlog::grow::edge_keys(size) {
            let bytes = tiles
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, b)| b.as_slice())
                .or_else(|| tree.edge.get(&key));
            if let Some(bytes) = bytes {
                edge.insert(key, bytes.to_vec());
            }
        }
        Ok(Some((size, edge)))
    }

    /// Commits, builds the deferred indexes and switches the file back to its WAL; the
    /// connection closes with the loader, which releases the lock.
    fn finish(&mut self) -> Result<(), LogError> {
        self.commit()?;
        if self.indexes_dropped {
            // Both cores are free now (the importer waits for this): SQLite's sorter may use a
            // helper thread per index build.
            self.conn
                .execute_batch(&format!(
                    "PRAGMA threads = 2; PRAGMA cache_size = -{INDEX_BUILD_CACHE_KIB};"
                ))
                .map_err(storage_error)?;
            self.conn
                .execute_batch(&format!(
                    "BEGIN EXCLUSIVE; {} COMMIT;",
                    schema::EVENT_INDEXES
                ))
                .map_err(|e| {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    schema::index_error(&self.path, e)
                })?;
            self.indexes_dropped = false;
        }
        // Every commit is already in the file itself: back to the WAL every other connection
        // uses, before the lock is released.
        set_journal_mode(&self.conn, "wal")
    }
}

/// Switches the journal of `conn`, which holds the file exclusively, and checks that SQLite
/// did (it answers the mode in force, and keeps the old one when it cannot switch).
///
/// While loading, the log uses a rollback journal (`truncate`), not its WAL: rows only go to
/// the end of the file, and SQLite journals only pages that existed when a transaction began,
/// so each new page is written once, into the file. Through the WAL every page was written
/// twice, into the WAL and again by the checkpoint, and read once between: the checkpoints'
/// copies were most of the loader's kernel time (docs/benchmarks.md). The journal is as safe:
/// a commit syncs the file, then truncates the journal and syncs it (`synchronous = FULL`); a
/// journal left by a kill or a power cut is hot, and whoever opens the file next rolls the
/// unfinished transaction back before reading, then switches to the WAL as every open does.
/// Switching needs the file alone, which the loader has (`locking_mode = EXCLUSIVE`).
fn set_journal_mode(conn: &Connection, mode: &str) -> Result<(), LogError> {
    let now: String = conn
        .query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| r.get(0))
        .map_err(storage_error)?;
    if now.eq_ignore_ascii_case(mode) {
        Ok(())
    } else {
        Err(LogError::Storage(
            format!("the log's journal cannot be switched to {mode} (it is {now})").into(),
        ))
    }
}
