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
//! Invariant: a read never sees less than what the projector had committed when the read
//! began. The projector moves the [`ReadEpoch`] after each commit and before it publishes the
//! position that `Projections::wait_for` waits on (read-your-writes); a reader keeps its
//! snapshot only while the epoch it began at is still the current one, and its snapshot begins
//! after it read the epoch, so it holds every commit that epoch counted. A snapshot kept
//! while the epoch moves would stop the WAL's checkpoints at it, so readers back in the pool
//! are ended whenever the epoch moves ([`Reader::release`]), and a read that finds the epoch
//! moved under it ends its snapshot before going back ([`Reader::settle`]).
//!
//! Only this process writes the projections while it serves them: a tool that wrote the file
//! beside a node would be seen by the node's readers only at the projector's next commit.

use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::Connection;

use crate::error::{ProjectionError, storage};

/// The projector's commits, as readers count them (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct ReadEpoch(AtomicU64);

impl ReadEpoch {
    pub(crate) fn current(&self) -> u64 {
        // Acquire: pairs with `moved`; a reader that sees the new epoch begins its snapshot
        // after the commit it counts.
        self.0.load(Ordering::Acquire)
    }

    /// After a commit, before anything that announces it.
    pub(crate) fn moved(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }
}

/// A read connection of the pool, with the snapshot it holds.
pub(crate) struct Reader {
    conn: Connection,
    /// The epoch its open read transaction began at; `None` when it holds none.
    held: Option<u64>,
}

impl Reader {
    pub(crate) fn new(conn: Connection) -> Self {
        Reader { conn, held: None }
    }

    /// The connection inside a read transaction that holds every commit counted by `epoch`
    /// now: the one it holds if it began at the current epoch, else a new one. `BEGIN` starts
    /// the snapshot at the first read, after the epoch was read.
    pub(crate) fn snapshot(&mut self, epoch: &ReadEpoch) -> Result<&Connection, ProjectionError> {
        let now = epoch.current();
        if self.held == Some(now) && !self.conn.is_autocommit() {
            return Ok(&self.conn);
        }
        self.release_or_fail()?;
        self.conn
            .prepare_cached("BEGIN")
            .and_then(|mut s| s.execute([]))
            .map_err(storage)?;
        self.held = Some(now);
        Ok(&self.conn)
    }

    /// After a read: a read that failed, or that the epoch moved under, ends its snapshot
    /// before the connection goes back to the pool (a failed statement may have left the
    /// transaction in any state; a moved epoch would keep the WAL from its checkpoints).
    pub(crate) fn settle(&mut self, epoch: &ReadEpoch, ok: bool) {
        if !ok || self.held != Some(epoch.current()) {
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
        let reader = Reader::new(Connection::open(&path).unwrap());
        (dir, writer, reader)
    }

    #[test]
    fn a_reader_keeps_its_snapshot_until_the_epoch_moves() {
        let (_dir, writer, mut reader) = file();
        let epoch = ReadEpoch::default();
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 1);
        reader.settle(&epoch, true);
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        // Not yet counted: the same snapshot, kept from one read to the next.
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 1);
        reader.settle(&epoch, true);
        assert!(!reader.conn.is_autocommit(), "kept between reads");
        epoch.moved();
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 2, "a new snapshot");
    }

    #[test]
    fn a_read_the_epoch_moved_under_ends_its_snapshot() {
        let (_dir, writer, mut reader) = file();
        let epoch = ReadEpoch::default();
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 1);
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        epoch.moved();
        reader.settle(&epoch, true);
        assert!(reader.conn.is_autocommit(), "ended before it goes back");
        assert_eq!(reader.held, None);
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
    fn a_released_reader_holds_nothing_and_begins_anew() {
        let (_dir, writer, mut reader) = file();
        let epoch = ReadEpoch::default();
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 1);
        reader.release();
        assert!(reader.conn.is_autocommit());
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        assert_eq!(count(reader.snapshot(&epoch).unwrap()), 2);
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
}
