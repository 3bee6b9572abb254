//! The bulk loader's INSERT through SQLite's C API, its text and blobs bound without a copy.
//!
//! rusqlite binds every text and blob with `SQLITE_TRANSIENT`: SQLite copies each value into
//! memory of its own before the statement runs, and each of the 13 parameters goes through
//! rusqlite's `ToSql` conversion and wrappers. For the loader, which inserts every event of a
//! bulk import (21.8 M rows for the whole city), binding was 14 % of its thread's
//! instructions (docs/benchmarks.md, "The importer's ids, maps and buffers"). Here the values
//! are bound `SQLITE_STATIC`: SQLite reads them where they are.
//!
//! Invariant that makes `SQLITE_STATIC` sound: [`RawInsert::insert`] binds all 13 parameters
//! from one borrowed [`RowValues`], steps and resets the statement before it returns. SQLite
//! reads bound values only while stepping, so no pointer is read after the borrow ends; the
//! pointers left bound after the reset are overwritten by the next call before its step, and
//! finalising reads none.

use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr;

use rusqlite::{Connection, ffi};

use citydb_log::LogError;

use crate::storage_error;
use crate::writer::{INSERT_SQL, RowValues};

/// `INSERT_SQL`, prepared by hand on a connection it borrows.
pub(crate) struct RawInsert<'c> {
    stmt: *mut ffi::sqlite3_stmt,
    db: *mut ffi::sqlite3,
    _conn: PhantomData<&'c Connection>,
}

impl<'c> RawInsert<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Result<Self, LogError> {
        // SAFETY: the handle is used only while `conn` is borrowed, on this thread.
        let db = unsafe { conn.handle() };
        let mut stmt = ptr::null_mut();
        // SAFETY: `INSERT_SQL` is valid for its length (a short constant); SQLite does not keep
        // the pointer.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                db,
                INSERT_SQL.as_ptr().cast(),
                INSERT_SQL.len() as c_int,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        let insert = RawInsert {
            stmt,
            db,
            _conn: PhantomData,
        };
        if rc != ffi::SQLITE_OK || stmt.is_null() {
            return Err(storage_error(insert.error(rc)));
        }
        Ok(insert)
    }

    /// Inserts one row. The error is rusqlite's, as `insert_row`'s statement would report it
    /// (a constraint's code and message), so callers classify both alike.
    pub(crate) fn insert(&mut self, v: &RowValues<'_>) -> Result<(), rusqlite::Error> {
        let s = self.stmt;
        let mut rc = ffi::SQLITE_OK;
        // Each bind runs only while the ones before it succeeded: the first failure is reported.
        macro_rules! bind {
            ($call:expr) => {
                if rc == ffi::SQLITE_OK {
                    rc = $call;
                }
            };
        }
        // SAFETY: `s` is a live statement with 13 parameters; every pointer is valid for its
        // length until this function returns, and the statement is stepped and reset before
        // then (see the module documentation).
        unsafe {
            bind!(ffi::sqlite3_bind_int64(s, 1, v.position));
            bind!(bind_text(s, 2, v.stream_id));
            bind!(ffi::sqlite3_bind_int64(s, 3, v.stream_version));
            bind!(bind_blob(s, 4, v.event_id));
            bind!(bind_text(s, 5, v.event_type));
            bind!(ffi::sqlite3_bind_int64(s, 6, v.schema_version));
            bind!(ffi::sqlite3_bind_int64(s, 7, v.recorded_at));
            bind!(match v.data {
                Some(data) => bind_text(s, 8, data),
                None => ffi::sqlite3_bind_null(s, 8),
            });
            bind!(bind_text(s, 9, v.metadata));
            bind!(bind_blob(s, 10, v.data_hash));
            bind!(bind_blob(s, 11, v.prev_stream_hash));
            bind!(bind_blob(s, 12, v.prev_log_hash));
            bind!(bind_blob(s, 13, v.hash));
        }
        if rc != ffi::SQLITE_OK {
            let err = self.error(rc);
            // SAFETY: `s` is live; nothing bound is left to a later step.
            unsafe { ffi::sqlite3_clear_bindings(s) };
            return Err(err);
        }
        // SAFETY: `s` is live and fully bound.
        let rc = unsafe { ffi::sqlite3_step(s) };
        let result = if rc == ffi::SQLITE_DONE {
            Ok(())
        } else {
            // Read before the reset, which keeps the code but not necessarily the message.
            Err(self.error(rc))
        };
        // SAFETY: `s` is live. Its return repeats the step's error, already taken.
        unsafe { ffi::sqlite3_reset(s) };
        result
    }

    /// `rc` with the connection's message, as rusqlite reports a failed statement (a bind's
    /// error, `SQLITE_TOOBIG` for a value over SQLite's length limit, included).
    fn error(&self, rc: c_int) -> rusqlite::Error {
        // SAFETY: `db` is live; the message is copied before any other call on it.
        let message = unsafe {
            let text = ffi::sqlite3_errmsg(self.db);
            (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
        };
        rusqlite::Error::SqliteFailure(ffi::Error::new(rc), message)
    }
}

impl Drop for RawInsert<'_> {
    fn drop(&mut self) {
        // SAFETY: finalising a null pointer is a no-op; otherwise the statement is ours.
        unsafe { ffi::sqlite3_finalize(self.stmt) };
    }
}

/// # Safety
/// `s` is a live statement with parameter `i`; `text` outlives its next step.
unsafe fn bind_text(s: *mut ffi::sqlite3_stmt, i: c_int, text: &str) -> c_int {
    // SAFETY: as the caller promises; SQLITE_STATIC: SQLite reads it in place.
    unsafe {
        ffi::sqlite3_bind_text64(
            s,
            i,
            text.as_ptr().cast(),
            text.len() as u64,
            ffi::SQLITE_STATIC(),
            ffi::SQLITE_UTF8 as u8,
        )
    }
}

/// # Safety
/// `s` is a live statement with parameter `i`; `bytes` outlives its next step.
unsafe fn bind_blob(s: *mut ffi::sqlite3_stmt, i: c_int, bytes: &[u8]) -> c_int {
    // SAFETY: as the caller promises; SQLITE_STATIC: SQLite reads it in place.
    unsafe {
        ffi::sqlite3_bind_blob64(
            s,
            i,
            bytes.as_ptr().cast(),
            bytes.len() as u64,
            ffi::SQLITE_STATIC(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::schema::prepare(&mut conn, ":memory:").unwrap();
        conn
    }

    /// position, stream_id, event_id, data, metadata, hash, typeof(data)
    type StoredRow = (
        i64,
        String,
        Vec<u8>,
        Option<String>,
        String,
        Vec<u8>,
        String,
    );

    fn values<'a>(position: i64, event_id: &'a [u8], data: Option<&'a str>) -> RowValues<'a> {
        RowValues {
            position,
            stream_id: "citizen-0193e3a4-7c1b-7d2e-8f00-123456789abc",
            stream_version: position,
            event_id,
            event_type: "CitizenRegistered",
            schema_version: 2,
            recorded_at: 1_700_000_000_000_000 + position,
            data,
            metadata: r#"{"actor":"tester"}"#,
            data_hash: &[1; 32],
            prev_stream_hash: &[2; 32],
            prev_log_hash: &[3; 32],
            hash: &[4; 32],
        }
    }

    /// What the raw statement stores is what rusqlite's would: every column, with its type,
    /// read back through SQL; a redacted payload is NULL; values bound from buffers freed right
    /// after the call are stored intact.
    #[test]
    fn rows_are_stored_as_bound() {
        let conn = log();
        let mut insert = RawInsert::new(&conn).unwrap();
        for position in 0..3 {
            // Fresh buffers each time, dropped when the call returns.
            let id = vec![position as u8; 16];
            let data = format!(r#"{{"n":{position},"name":"Nguyễn Văn A"}}"#);
            let redacted = position == 1;
            insert
                .insert(&values(position, &id, (!redacted).then_some(&data)))
                .unwrap();
        }
        drop(insert);
        let rows: Vec<StoredRow> = conn
            .prepare(
                "SELECT position, stream_id, event_id, data, metadata, hash, typeof(data)
                 FROM events ORDER BY position",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 3);
        for (position, row) in rows.iter().enumerate() {
            assert_eq!(row.0, position as i64);
            assert_eq!(row.1, "citizen-0193e3a4-7c1b-7d2e-8f00-123456789abc");
            assert_eq!(row.2, vec![position as u8; 16]);
            assert_eq!(row.4, r#"{"actor":"tester"}"#);
            assert_eq!(row.5, vec![4; 32]);
        }
        assert_eq!(
            rows[0].3.as_deref(),
            Some(r#"{"n":0,"name":"Nguyễn Văn A"}"#)
        );
        assert_eq!((rows[1].3.as_deref(), rows[1].6.as_str()), (None, "null"));
        assert_eq!(rows[2].6, "text");
    }

    /// A duplicate event id fails as rusqlite would report it: a constraint violation whose
    /// message names the column (what the loader's refusal matches), and the statement is
    /// usable again after it.
    #[test]
    fn a_constraint_fails_like_rusqlite_and_the_statement_goes_on() {
        let conn = log();
        let mut insert = RawInsert::new(&conn).unwrap();
        insert.insert(&values(0, &[7; 16], Some("{}"))).unwrap();
        let err = insert.insert(&values(1, &[7; 16], Some("{}"))).unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation)
        );
        assert!(err.to_string().contains("event_id"), "{err}");
        insert.insert(&values(1, &[8; 16], Some("{}"))).unwrap();
        let count: i64 = conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 2);
    }
}
