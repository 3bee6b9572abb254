//! One read transaction per query of the projections (`Shared::read`), or none for a query of
//! one statement, which SQLite reads in a snapshot of its own.

use rusqlite::Connection;

use crate::error::{ProjectionError, storage};

/// A read transaction, begun and ended with cached statements: `rusqlite::Transaction` parses
/// `BEGIN` and `ROLLBACK` anew each time, a cost the size of a key lookup's own.
pub(crate) struct ReadSnapshot<'c>(pub(crate) &'c Connection);

impl<'c> ReadSnapshot<'c> {
    pub(crate) fn begin(conn: &'c Connection) -> Result<Self, ProjectionError> {
        if !conn.is_autocommit() {
            // The end of an earlier read failed: end it now, or BEGIN would fail and the old
            // snapshot would go on being read.
            conn.execute_batch("ROLLBACK").map_err(storage)?;
        }
        conn.prepare_cached("BEGIN")
            .and_then(|mut s| s.execute([]))
            .map_err(storage)?;
        Ok(Self(conn))
    }
}

/// `conn` ready for a read of one statement: SQLite runs a statement outside a transaction in a
/// read transaction of its own, one snapshot from its first step to its reset, so none is begun
/// around it (a `BEGIN` and a `ROLLBACK` fewer: ~1 % of a PIN lookup's instructions). One left
/// open by a failed end is ended first, as [`ReadSnapshot::begin`] does.
pub(crate) fn one_statement(conn: &Connection) -> Result<&Connection, ProjectionError> {
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK").map_err(storage)?;
    }
    Ok(conn)
}

impl Drop for ReadSnapshot<'_> {
    fn drop(&mut self) {
        // A read changes nothing, so ending it either way only releases the snapshot; should
        // this fail, the next `begin` on this connection ends it first.
        let _ = self
            .0
            .prepare_cached("ROLLBACK")
            .and_then(|mut s| s.execute([]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    /// A WAL file holding one row, with a writer and a reader connection.
    fn file() -> (tempfile::TempDir, Connection, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);",
            )
            .unwrap();
        let reader = Connection::open(&path).unwrap();
        (dir, writer, reader)
    }

    #[test]
    fn a_read_sees_one_snapshot_and_ends_with_it() {
        let (_dir, writer, reader) = file();
        {
            let snapshot = ReadSnapshot::begin(&reader).unwrap();
            assert_eq!(count(snapshot.0), 1);
            writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
            assert_eq!(count(snapshot.0), 1, "the same snapshot throughout");
        }
        assert!(reader.is_autocommit(), "ended on drop");
        let snapshot = ReadSnapshot::begin(&reader).unwrap();
        assert_eq!(count(snapshot.0), 2);
    }

    #[test]
    fn a_read_of_one_statement_sees_the_latest_commit_outside_any_transaction() {
        let (_dir, writer, reader) = file();
        // As if an earlier read's end had failed: still inside its snapshot.
        reader.execute_batch("BEGIN").unwrap();
        assert_eq!(count(&reader), 1);
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let conn = one_statement(&reader).unwrap();
        assert!(conn.is_autocommit(), "the old snapshot ended");
        assert_eq!(count(conn), 2);
        writer.execute("INSERT INTO t VALUES (3)", []).unwrap();
        assert_eq!(count(conn), 3, "each statement its own snapshot");
        assert!(conn.is_autocommit());
    }

    #[test]
    fn a_read_left_open_is_ended_before_the_next() {
        let (_dir, writer, reader) = file();
        // As if an earlier read's end had failed: still inside its snapshot.
        reader.execute_batch("BEGIN").unwrap();
        assert_eq!(count(&reader), 1);
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let snapshot = ReadSnapshot::begin(&reader).unwrap();
        assert_eq!(count(snapshot.0), 2, "a fresh snapshot, not the old one");
    }
}
