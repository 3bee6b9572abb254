//! A forward scan of `events` by position through SQLite's C API, for verification.
//!
//! Verifying reads every column of every row once: a whole city is 21.8 M rows of 13 columns.
//! Through rusqlite each column costs four C calls (count, type, pointer, length) and their
//! wrappers, each call entering the connection's (absent) mutex: about a sixth of
//! `citydb verify`'s CPU (docs/benchmarks.md, "Verification: rows read through the C API").
//! Here a column is one `sqlite3_column_value` and reads of the value itself, which take no
//! lock. Everything else — the statement, the snapshot, the checks of types and lengths —
//! is as it was: [`Columns`] lets `with_view` read a row of either kind the same way.

use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr;

use rusqlite::{Connection, ffi};

use citydb_log::LogError;

use crate::storage_error;

/// A row's columns as `with_view` reads them: `None` when the column is not of that type.
pub(crate) trait Columns {
    fn integer(&self, i: usize) -> Result<Option<i64>, LogError>;
    fn text(&self, i: usize) -> Result<Option<&[u8]>, LogError>;
    fn blob(&self, i: usize) -> Result<Option<&[u8]>, LogError>;
    fn is_null(&self, i: usize) -> Result<bool, LogError>;
}

impl Columns for rusqlite::Row<'_> {
    fn integer(&self, i: usize) -> Result<Option<i64>, LogError> {
        Ok(self.get_ref(i).map_err(storage_error)?.as_i64().ok())
    }
    fn text(&self, i: usize) -> Result<Option<&[u8]>, LogError> {
        Ok(match self.get_ref(i).map_err(storage_error)? {
            rusqlite::types::ValueRef::Text(t) => Some(t),
            _ => None,
        })
    }
    fn blob(&self, i: usize) -> Result<Option<&[u8]>, LogError> {
        Ok(self.get_ref(i).map_err(storage_error)?.as_blob().ok())
    }
    fn is_null(&self, i: usize) -> Result<bool, LogError> {
        Ok(matches!(
            self.get_ref(i).map_err(storage_error)?,
            rusqlite::types::ValueRef::Null
        ))
    }
}

/// A prepared statement stepped by hand. Borrows its connection, so it cannot outlive it.
pub(crate) struct Scan<'c> {
    stmt: *mut ffi::sqlite3_stmt,
    db: *mut ffi::sqlite3,
    columns: usize,
    _conn: PhantomData<&'c Connection>,
}

impl<'c> Scan<'c> {
    /// Prepares `sql` (one statement) with its integer parameters bound, in order.
    pub(crate) fn new(conn: &'c Connection, sql: &str, params: &[i64]) -> Result<Self, LogError> {
        // SAFETY: the handle is used only while `conn` is borrowed, on this thread, and
        // rusqlite holds no statement of its own in flight on it during the scan.
        let db = unsafe { conn.handle() };
        let len = c_int::try_from(sql.len())
            .map_err(|_| LogError::Storage("a statement too long to prepare".into()))?;
        let mut stmt = ptr::null_mut();
        // SAFETY: `sql` is valid for `len` bytes; SQLite does not keep the pointer.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(db, sql.as_ptr().cast(), len, &mut stmt, ptr::null_mut())
        };
        let mut scan = Scan {
            stmt,
            db,
            columns: 0,
            _conn: PhantomData,
        };
        if rc != ffi::SQLITE_OK || stmt.is_null() {
            return Err(scan.error(rc));
        }
        for (i, value) in params.iter().enumerate() {
            // SAFETY: `stmt` is a live statement; parameters are numbered from 1.
            let rc = unsafe { ffi::sqlite3_bind_int64(stmt, i as c_int + 1, *value) };
            if rc != ffi::SQLITE_OK {
                return Err(scan.error(rc));
            }
        }
        // SAFETY: `stmt` is a live statement.
        let columns = unsafe { ffi::sqlite3_column_count(stmt) };
        // Set in place: `Scan { columns, ..scan }` would copy the pointer and then finalise
        // the statement when `scan` drops.
        scan.columns = usize::try_from(columns).unwrap_or(0);
        Ok(scan)
    }

    /// The next row, valid until the next call; `None` at the end.
    pub(crate) fn next(&mut self) -> Result<Option<ScanRow<'_>>, LogError> {
        // SAFETY: `stmt` is a live statement, stepped only here.
        match unsafe { ffi::sqlite3_step(self.stmt) } {
            ffi::SQLITE_ROW => Ok(Some(ScanRow { scan: self })),
            ffi::SQLITE_DONE => Ok(None),
            rc => Err(self.error(rc)),
        }
    }

    /// `rc` as rusqlite reports it, so that [`storage_error`] classifies it as everywhere else.
    fn error(&self, rc: c_int) -> LogError {
        // SAFETY: `db` is live; the message is copied before any other call on it.
        let message = unsafe {
            let text = ffi::sqlite3_errmsg(self.db);
            (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
        };
        storage_error(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), message))
    }
}

impl Drop for Scan<'_> {
    fn drop(&mut self) {
        // SAFETY: finalising a null pointer is a no-op; otherwise the statement is ours.
        unsafe { ffi::sqlite3_finalize(self.stmt) };
    }
}

/// The row a [`Scan`] stands on.
pub(crate) struct ScanRow<'s> {
    scan: &'s Scan<'s>,
}

impl ScanRow<'_> {
    /// The column's value and its type; out-of-range columns are an error, not UB.
    fn value(&self, i: usize) -> Result<(*mut ffi::sqlite3_value, c_int), LogError> {
        if i >= self.scan.columns {
            return Err(LogError::Storage(
                format!("column {i} of a scan of {}", self.scan.columns).into(),
            ));
        }
        // SAFETY: the statement stands on a row (`next` returned it) and `i` is in range.
        // The value is protected until the next step, which needs `&mut Scan`.
        unsafe {
            let value = ffi::sqlite3_column_value(self.scan.stmt, i as c_int);
            Ok((value, ffi::sqlite3_value_type(value)))
        }
    }

    /// The bytes of a text or blob value. SQLite returns a null pointer for an empty one.
    fn bytes(&self, value: *mut ffi::sqlite3_value, text: bool) -> &[u8] {
        // SAFETY: `value` is of the asked type, so no conversion moves its bytes; the pointer
        // is then valid for `sqlite3_value_bytes` bytes until the next step, which cannot come
        // while this row (and so the slice) is borrowed.
        unsafe {
            let data: *const u8 = if text {
                ffi::sqlite3_value_text(value)
            } else {
                ffi::sqlite3_value_blob(value).cast()
            };
            let len = usize::try_from(ffi::sqlite3_value_bytes(value)).unwrap_or(0);
            if data.is_null() || len == 0 {
                &[]
            } else {
                std::slice::from_raw_parts(data, len)
            }
        }
    }
}

impl Columns for ScanRow<'_> {
    fn integer(&self, i: usize) -> Result<Option<i64>, LogError> {
        let (value, kind) = self.value(i)?;
        // SAFETY: a live value of integer type.
        Ok((kind == ffi::SQLITE_INTEGER).then(|| unsafe { ffi::sqlite3_value_int64(value) }))
    }
    fn text(&self, i: usize) -> Result<Option<&[u8]>, LogError> {
        let (value, kind) = self.value(i)?;
        Ok((kind == ffi::SQLITE_TEXT).then(|| self.bytes(value, true)))
    }
    fn blob(&self, i: usize) -> Result<Option<&[u8]>, LogError> {
        let (value, kind) = self.value(i)?;
        Ok((kind == ffi::SQLITE_BLOB).then(|| self.bytes(value, false)))
    }
    fn is_null(&self, i: usize) -> Result<bool, LogError> {
        Ok(self.value(i)?.1 == ffi::SQLITE_NULL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (n INTEGER, s TEXT, b BLOB, z);
             INSERT INTO t VALUES (1, 'één', x'0102', NULL), (2, '', x'', 7), (3, 'x', 'not a blob', 'y');",
        )
        .unwrap();
        conn
    }

    /// Each column reads as rusqlite reads it, types included, for every row.
    #[test]
    fn a_scan_reads_what_rusqlite_reads() {
        let conn = table();
        let sql = "SELECT n, s, b, z FROM t WHERE n >= ?1 AND n < ?2 ORDER BY n";
        let mut scan = Scan::new(&conn, sql, &[1, 4]).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        let mut rows = stmt.query((1, 4)).unwrap();
        let mut seen = 0;
        while let Some(raw) = scan.next().unwrap() {
            let row = rows.next().unwrap().unwrap();
            for i in 0..4 {
                assert_eq!(raw.integer(i).unwrap(), row.integer(i).unwrap(), "{i}");
                assert_eq!(raw.text(i).unwrap(), row.text(i).unwrap(), "{i}");
                assert_eq!(raw.blob(i).unwrap(), row.blob(i).unwrap(), "{i}");
                assert_eq!(raw.is_null(i).unwrap(), row.is_null(i).unwrap(), "{i}");
            }
            assert!(raw.integer(4).is_err(), "past the last column");
            seen += 1;
        }
        assert!(rows.next().unwrap().is_none());
        assert_eq!(seen, 3);
        // The bound parameters select.
        let mut scan = Scan::new(&conn, sql, &[2, 3]).unwrap();
        assert_eq!(scan.next().unwrap().unwrap().integer(0).unwrap(), Some(2));
        assert!(scan.next().unwrap().is_none());
    }

    #[test]
    fn errors_are_storage_errors() {
        let conn = table();
        assert!(matches!(
            Scan::new(&conn, "SELECT nothing FROM nowhere", &[]),
            Err(LogError::Storage(_))
        ));
        assert!(
            Scan::new(&conn, "SELECT ?1", &[1, 2]).is_err(),
            "a parameter too many"
        );
    }
}
