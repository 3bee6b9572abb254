//! The snapshot a read of the projections runs in (`Shared::read`, `Shared::read_page`): one
//! read transaction per reader connection, kept from one read to the next while the projector
//! has committed nothing since it began.
//!
//! Why: a read transaction's start and end are not free. SQLite takes and releases a lock on a
//! read mark of the WAL index for each (two `fcntl` calls), and sizes the database file again
//! (`fstat`) when the WAL holds nothing; a parcel with its holders and their names is three
//! reads, so five `fcntl`s and two `fstat`s a request, and the shared lock words pass between
//! the cores every time. While serving, the projections change only when the projector commits
//! (seconds apart, or never for hours of reads), so a reader can go on reading the snapshot it
//! has until then (docs/benchmarks.md, "A reader's snapshot kept until the projector commits").
//!
//! Invariant: a read never sees less than what was committed to the file, by any connection,
//! when the read began. A reader keeps its snapshot only while the file's WAL index header is
//! the one it read before the snapshot began ([`citydb_sqlite::WalIndexWatch`]: every commit
//! rewrites it; the read takes no lock and makes no system call) and the [`ReadEpoch`] has not
//! moved. The projector moves the epoch after each of its writer jobs and before it publishes
//! the position that `Projections::wait_for` waits on (read-your-writes), and readers idle in
//! the pool end their snapshots when it moves ([`Reader::release`]), as does a read the epoch
//! moved under ([`Reader::settle`]): a snapshot kept past a commit would hold the WAL's
//! checkpoints back. A reader whose index cannot be mapped never keeps one.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use citydb_sqlite::{WalIndexHeader, WalIndexWatch};
use rusqlite::Connection;

use crate::error::{ProjectionError, storage};

/// The projector's writes, as readers count them (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct ReadEpoch {
    moves: AtomicU64,
    /// Writer jobs under way. While one runs, no reader keeps a snapshot: a job may need the
    /// whole WAL to itself (a bulk load's `wal_checkpoint(TRUNCATE)` waits for every reader).
    writing: AtomicU32,
}

impl ReadEpoch {
    /// The epoch a snapshot begun now may be kept at; `None` while a writer job runs.
    pub(crate) fn current(&self) -> Option<u64> {
        // Acquire: pairs with the writer's Release; a reader that sees an epoch begins its
        // snapshot after the commits it counts.
        if self.writing.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(self.moves.load(Ordering::Acquire))
    }

    /// A writer job begins: snapshots held from before it are not kept past their read.
    pub(crate) fn begin_write(&self) {
        self.writing.fetch_add(1, Ordering::AcqRel);
        self.moved();
    }

    /// A writer job ended (committed or not).
    pub(crate) fn end_write(&self) {
        self.moved();
        self.writing.fetch_sub(1, Ordering::AcqRel);
    }

    /// After a commit, before anything that announces it.
    pub(crate) fn moved(&self) {
        self.moves.fetch_add(1, Ordering::Release);
    }
}

/// A read connection of the pool, with the snapshot it holds.
pub(crate) struct Reader {
    /// Declared first, dropped first: the mapping goes before the connection that keeps the
    /// `-shm` file from being truncated under it.
    watch: Option<WalIndexWatch>,
    conn: Connection,
    /// The epoch and WAL index header read before its open read transaction began; `None`
    /// when it holds none (or its header could not be read).
    held: Option<(u64, WalIndexHeader)>,
}

impl Reader {
    /// `conn` reads the WAL-mode file at `path`: read from once, so that SQLite has made the
    /// WAL index, before the index is mapped.
    pub(crate) fn open(conn: Connection, path: &std::path::Path) -> Result<Self, ProjectionError> {
        conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
            .map_err(storage)?;
        Ok(Reader {
            watch: WalIndexWatch::open(path),
            conn,
            held: None,
        })
    }

    /// The connection inside a read transaction that holds every commit made to the file
    /// before now: the one it holds if nothing was committed since it began, else a new one.
    /// `BEGIN` starts the snapshot at the first read, after the header and epoch were read.
    pub(crate) fn snapshot(&mut self, epoch: &ReadEpoch) -> Result<&Connection, ProjectionError> {
        let now = epoch.current();
        let header = self.watch.as_ref().and_then(WalIndexWatch::header);
        let keepable = now.zip(header);
        if let (Some(held), Some(keepable)) = (self.held, keepable)
            && held == keepable
            && !self.conn.is_autocommit()
        {
            return Ok(&self.conn);
        }
        self.release_or_fail()?;
        self.conn
            .prepare_cached("BEGIN")
            .and_then(|mut s| s.execute([]))
            .map_err(storage)?;
        self.held = keepable;
        Ok(&self.conn)
    }

    /// After a read: a read that failed, or that the epoch moved under, ends its snapshot
    /// before the connection goes back to the pool (a failed statement may have left the
    /// transaction in any state; a moved epoch would keep the WAL from its checkpoints).
    pub(crate) fn settle(&mut self, epoch: &ReadEpoch, ok: bool) {
        if !ok || self.held.is_none() || self.held.map(|(at, _)| at) != epoch.current() {
            self.release();
        }
    }

    /// Ends the snapshot it holds, if any. Should that fail, the next
    /// [`snapshot`](Self::snapshot) tries again before it begins one.
    pub(crate) fn release(&mut self) {
        let _ = self.release_or_fail();
    }

    fn release_or_fail(&mut self) -> Result<(), ProjectionError> {
        self.held = None;
        if self.conn.is_autocommit() {
            return Ok(());
        }
        self.conn
            .prepare_cached("ROLLBACK")
            .and_then(|mut s| s.execute([]))
            .map(|_| ())
            .map_err(storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    /// A WAL file holding one row, with a writer and a reader.
    fn file() -> (tempfile::TempDir, Connection, Reader) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);",
            )
            .unwrap();
        let reader = Reader::open(Connection::open(&path).unwrap(), &path).unwrap();
        assert!(reader.watch.is_some(), "the WAL index is mapped");
        (dir, writer, reader)
    }

    #[test]
    fn a_reader_keeps_its_snapshot_while_nothing_is_committed() {
        let (_dir, _writer, mut reader) = file();
        let epoch = ReadEpoch::default();
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 1);
        reader.settle(&epoch, true);
        let held = reader.held;
        assert!(
            held.is_some() && !reader.conn.is_autocommit(),
            "kept between reads"
        );
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 1);
        reader.settle(&epoch, true);
        assert_eq!(reader.held, held, "the same transaction, not a new one");
    }

    #[test]
    fn another_connection_s_commit_is_seen_at_the_next_read() {
        let (_dir, writer, mut reader) = file();
        let epoch = ReadEpoch::default();
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 1);
        reader.settle(&epoch, true);
        // Committed beside the projector (a tool, a test damaging the file): the epoch stands,
        // the WAL index does not.
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 2, "a new snapshot");
        reader.settle(&epoch, true);
        writer.execute("INSERT INTO t VALUES (3)", []).unwrap();
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 3);
    }

    #[test]
    fn a_read_the_epoch_moved_under_ends_its_snapshot() {
        let (_dir, _writer, mut reader) = file();
        let epoch = ReadEpoch::default();
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 1);
        epoch.moved();
        reader.settle(&epoch, true);
        assert!(reader.conn.is_autocommit(), "ended before it goes back");
        assert_eq!(reader.held, None);
        // And the next read begins a snapshot at the new epoch.
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 1);
        assert_eq!(reader.held.map(|(at, _)| at), epoch.current());
    }

    #[test]
    fn no_snapshot_is_kept_while_a_writer_job_runs_so_the_wal_can_be_truncated() {
        let (_dir, writer, mut reader) = file();
        let epoch = ReadEpoch::default();
        // Frames in the WAL: a snapshot now takes a read mark a truncation waits for.
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 2);
        reader.settle(&epoch, true);
        // SQLite answers "busy" at once instead of after rusqlite's 5 s wait.
        writer.busy_timeout(std::time::Duration::ZERO).unwrap();
        let truncate = |c: &Connection| -> i64 {
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(truncate(&writer), 1, "a kept snapshot holds the WAL");
        // A job begins: the pool ends what its idle readers hold, and reads during the job
        // keep nothing.
        epoch.begin_write();
        reader.release();
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 2);
        reader.settle(&epoch, true);
        assert!(reader.conn.is_autocommit(), "nothing kept during a job");
        assert_eq!(truncate(&writer), 0, "the job has the WAL to itself");
        epoch.end_write();
        writer.execute("INSERT INTO t VALUES (3)", []).unwrap();
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 3);
        reader.settle(&epoch, true);
        assert!(!reader.conn.is_autocommit(), "kept again after the job");
    }

    #[test]
    fn a_failed_read_ends_its_snapshot() {
        let (_dir, _writer, mut reader) = file();
        let epoch = ReadEpoch::default();
        let conn = reader.snapshot(&epoch).unwrap();
        assert!(
            conn.query_row("SELECT * FROM missing", [], |_| Ok(()))
                .is_err()
        );
        reader.settle(&epoch, false);
        assert!(reader.conn.is_autocommit());
    }

    #[test]
    fn a_released_reader_holds_nothing() {
        let (_dir, _writer, mut reader) = file();
        let epoch = ReadEpoch::default();
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 1);
        reader.release();
        assert!(reader.conn.is_autocommit());
        assert_eq!(reader.held, None);
    }

    #[test]
    fn a_transaction_left_open_by_someone_else_is_ended_first() {
        let (_dir, writer, mut reader) = file();
        let epoch = ReadEpoch::default();
        // As if an earlier end had failed: inside a snapshot the reader does not know of.
        reader.conn.execute_batch("BEGIN").unwrap();
        assert_eq!(count(&reader.conn), 1);
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        assert_eq!(
            count(reader.snapshot(&epoch).unwrap()),
            2,
            "a fresh snapshot"
        );
    }

    #[test]
    fn without_a_wal_index_no_snapshot_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let setup = Connection::open(&path).unwrap();
        setup
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        let mut reader = Reader::open(Connection::open(&path).unwrap(), &path).unwrap();
        assert!(reader.watch.is_none());
        let epoch = ReadEpoch::default();
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 1);
        reader.settle(&epoch, true);
        assert!(
            reader.conn.is_autocommit(),
            "ended: nothing would tell it stale"
        );
    }
}
