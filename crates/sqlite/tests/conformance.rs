//! The log's conformance suite against the SQLite backend, plus tamper hooks that edit the file
//! directly, as an attacker with write access to it would.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, params};

use citydb_log::conformance::{Backend, Tamper, flipped, forged_event};
use citydb_log::{Hash, conformance_tests};
use citydb_sqlite::{SqliteConfig, SqliteLog};

struct SqliteBackend {
    _dir: tempfile::TempDir,
    path: PathBuf,
    second: PathBuf,
}

async fn sqlite_backend() -> SqliteBackend {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let second = dir.path().join("second.db");
    SqliteBackend {
        _dir: dir,
        path,
        second,
    }
}

/// Verify even these small logs in parallel segments, so that every tamper case also exercises
/// the seams between segments, and with their stream links set aside in partitions (more than
/// 3 events: `LogVerifier::bounded`), as a city's log is.
fn config() -> SqliteConfig {
    SqliteConfig {
        parallel_verify_threshold: 2,
        verify_segments: 4,
        verify_streams_in_memory: 3,
        ..SqliteConfig::default()
    }
}

fn hash_at(conn: &Connection, position: u64) -> Hash {
    let bytes: Vec<u8> = conn
        .query_row(
            "SELECT hash FROM events WHERE position = ?1",
            [position as i64],
            |r| r.get(0),
        )
        .unwrap();
    Hash::from_slice(&bytes).unwrap()
}

#[async_trait]
impl Backend for SqliteBackend {
    type Log = SqliteLog;

    async fn open(&self) -> Arc<SqliteLog> {
        Arc::new(SqliteLog::open(&self.path, config()).unwrap())
    }

    async fn open_second(&self) -> Arc<SqliteLog> {
        Arc::new(SqliteLog::open(&self.second, config()).unwrap())
    }

    async fn tamper(&self, tamper: Tamper) {
        let conn = Connection::open(&self.path).unwrap();
        let flip = |column: &str, position: u64| {
            let text: String = conn
                .query_row(
                    &format!("SELECT {column} FROM events WHERE position = ?1"),
                    [position as i64],
                    |r| r.get(0),
                )
                .unwrap();
            let changed = flipped(&text);
            assert_ne!(changed, text);
            conn.execute(
                &format!("UPDATE events SET {column} = ?1 WHERE position = ?2"),
                params![changed, position as i64],
            )
            .unwrap();
        };
        match tamper {
            Tamper::FlipDataByte { position } => flip("data", position),
            Tamper::FlipMetadataByte { position } => flip("metadata", position),
            Tamper::Delete { position } => {
                conn.execute("DELETE FROM events WHERE position = ?1", [position as i64])
                    .unwrap();
            }
            Tamper::SwapWithNext { position } => {
                let p = position as i64;
                conn.execute_batch(&format!(
                    "UPDATE events SET position = -1 WHERE position = {p};
                     UPDATE events SET position = {p} WHERE position = {p} + 1;
                     UPDATE events SET position = {p} + 1 WHERE position = -1;"
                ))
                .unwrap();
            }
            Tamper::InsertForged { after } => {
                let a = after as i64;
                conn.execute_batch(&format!(
                    "UPDATE events SET position = -position - 1 WHERE position > {a};
                     UPDATE events SET position = -position WHERE position < 0;"
                ))
                .unwrap();
                let prev = hash_at(&conn, after);
                let recorded_at: i64 = conn
                    .query_row(
                        "SELECT recorded_at FROM events WHERE position = ?1",
                        [a],
                        |r| r.get(0),
                    )
                    .unwrap();
                let forged = forged_event(after + 1, prev, recorded_at);
                conn.execute(
                    "INSERT INTO events VALUES (?1, ?2, 0, ?3, 'Forged', 1, ?4, '{}', '{}', ?5, ?6, ?7, ?8)",
                    params![
                        a + 1,
                        forged.stream_id.as_str(),
                        forged.event_id.as_bytes().as_slice(),
                        recorded_at,
                        forged.data_hash.as_bytes().as_slice(),
                        forged.prev_stream_hash.as_bytes().as_slice(),
                        forged.prev_log_hash.as_bytes().as_slice(),
                        forged.hash.as_bytes().as_slice()
                    ],
                )
                .unwrap();
            }
            Tamper::TruncateAfter { keep_through } => {
                conn.execute(
                    "DELETE FROM events WHERE position > ?1",
                    [keep_through as i64],
                )
                .unwrap();
            }
            Tamper::Redact { position } => {
                conn.execute(
                    "UPDATE events SET data = NULL WHERE position = ?1",
                    [position as i64],
                )
                .unwrap();
            }
        }
    }
}

conformance_tests!(sqlite_backend);
