//! Whether each store accepts writes, asked of the store itself (see `citydb_api::readiness`):
//! - SQLite: its own connection to each file runs `BEGIN IMMEDIATE; ROLLBACK`. That takes the
//!   write lock, which SQLite refuses with `SQLITE_READONLY` when the file, its WAL or its
//!   shared-memory file cannot be written (read-only directory or mount, immutable or
//!   write-protected files); nothing is written. `SQLITE_BUSY` means the node's writer holds
//!   the lock, i.e. writes are going through: that counts as writable.
//! - PostgreSQL: a fresh connection asks `pg_is_in_recovery()` and `transaction_read_only`;
//!   unreachable, a standby or a read-only default is not writable.
//!
//! A full disk is not detected in advance (the first append that hits it fails typed).

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use citydb_log::backend::WriteProbe;

/// The embedded store's two SQLite files.
#[derive(Clone, Debug)]
pub struct SqliteProbe {
    pub log: PathBuf,
    pub access: PathBuf,
}

#[async_trait]
impl WriteProbe for SqliteProbe {
    async fn check(&self) -> Result<(), String> {
        let (log, access) = (self.log.clone(), self.access.clone());
        // The file's name only: /readyz answers anyone, and where the data directory lives is
        // the operator's business.
        let name = |p: &PathBuf| {
            p.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
        };
        tokio::task::spawn_blocking(move || {
            sqlite_writable(&log).map_err(|e| {
                format!("the event log ({}) does not accept writes: {e}", name(&log))
            })?;
            sqlite_writable(&access)
                .map_err(|e| format!("the access log ({}) cannot be written: {e}", name(&access)))
        })
        .await
        .map_err(|e| format!("the store probe failed: {e}"))?
    }
}

/// Takes and releases SQLite's write lock on `path` with a connection of its own.
pub(crate) fn sqlite_writable(path: &Path) -> Result<(), String> {
    use rusqlite::{Connection, ErrorCode, OpenFlags};
    // No CREATE: a file that went missing is a fault, not something to recreate here.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())?;
    conn.busy_timeout(Duration::from_millis(200))
        .map_err(|e| e.to_string())?;
    if conn
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|e| e.to_string())?
    {
        return Err("the file is read-only".into());
    }
    match conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
        Ok(()) => Ok(()),
        // The writer holds the lock: writes are going through.
        Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == ErrorCode::DatabaseBusy => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// A PostgreSQL database (both logs live in it).
#[derive(Clone, Debug)]
pub struct PostgresProbe {
    pub url: String,
}

#[async_trait]
impl WriteProbe for PostgresProbe {
    async fn check(&self) -> Result<(), String> {
        let connect = tokio_postgres::connect(&self.url, tokio_postgres::NoTls);
        let (client, connection) = tokio::time::timeout(Duration::from_secs(5), connect)
            .await
            .map_err(|_| "PostgreSQL did not answer within 5 s".to_owned())?
            .map_err(|e| format!("PostgreSQL is unreachable: {e}"))?;
        let task = tokio::spawn(connection);
        let asked = client
            .query_one(
                "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'",
                &[],
            )
            .await;
        drop(client);
        let _ = task.await;
        let row = asked.map_err(|e| format!("PostgreSQL is unreachable: {e}"))?;
        let (standby, read_only): (bool, bool) = (row.get(0), row.get(1));
        if standby {
            Err("PostgreSQL is a standby (in recovery): it accepts no writes".into())
        } else if read_only {
            Err("PostgreSQL sessions are read-only (default_transaction_read_only)".into())
        } else {
            Ok(())
        }
    }
}
