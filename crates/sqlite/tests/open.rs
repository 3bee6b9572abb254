//! Opening files that are not (or not yet) citydb logs: each is refused with a typed error and
//! left untouched.

use citydb_log::{EventLog, LogError};
use citydb_sqlite::{SCHEMA_VERSION, SqliteConfig, SqliteLog};

fn open(path: &std::path::Path) -> Result<SqliteLog, LogError> {
    SqliteLog::open(path, SqliteConfig::default())
}

#[test]
fn refuses_a_file_that_is_not_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        b"this is not a database, it is a text file of some length",
    )
    .unwrap();
    let err = open(&path).err().unwrap();
    assert!(matches!(err, LogError::NotACitydbLog { .. }), "{err:?}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"this is not a database, it is a text file of some length"
    );
}

#[test]
fn refuses_another_applications_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE accounts (id INTEGER); INSERT INTO accounts VALUES (1);")
        .unwrap();
    drop(conn);
    let err = open(&path).err().unwrap();
    assert!(matches!(err, LogError::NotACitydbLog { .. }), "{err:?}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "nothing was added to the foreign database");
}

#[test]
fn refuses_a_foreign_application_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "application_id", 0x1234).unwrap();
    drop(conn);
    assert!(matches!(
        open(&path).err().unwrap(),
        LogError::NotACitydbLog { .. }
    ));
}

#[tokio::test]
async fn refuses_a_newer_format_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    {
        let log = open(&path).unwrap();
        let s = "citizen-0193e3a4-7c1b-7d2e-8f00-123456789abc"
            .parse()
            .unwrap();
        log.append(vec![citydb_log::StreamAppend::new(
            s,
            citydb_log::ExpectedVersion::NoStream,
            vec![citydb_log::conformance::event(1)],
        )])
        .await
        .unwrap();
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = open(&path).err().unwrap();
    assert_eq!(
        err,
        LogError::NewerFormat {
            found: SCHEMA_VERSION + 1,
            supported: SCHEMA_VERSION
        }
    );
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_new_file_is_marked_and_readable_with_plain_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let log = open(&path).unwrap();
    assert_eq!(log.head().await.unwrap(), None);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(id, citydb_sqlite::APPLICATION_ID);
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(mode, "wal");
}

/// More segments than a small log can fill: rounding must not leave a range past the end.
#[tokio::test]
async fn parallel_verification_of_a_log_smaller_than_its_segments() {
    let dir = tempfile::tempdir().unwrap();
    for events in 1..=9u64 {
        let config = SqliteConfig {
            parallel_verify_threshold: 1,
            verify_segments: 4,
            ..SqliteConfig::default()
        };
        let log = SqliteLog::open(dir.path().join(format!("log{events}.db")), config).unwrap();
        let s: citydb_log::StreamId = "citizen-0193e3a4-7c1b-7d2e-8f00-123456789abc"
            .parse()
            .unwrap();
        for n in 0..events {
            log.append(vec![citydb_log::StreamAppend::new(
                s.clone(),
                citydb_log::ExpectedVersion::Any,
                vec![citydb_log::conformance::event(n)],
            )])
            .await
            .unwrap();
        }
        let report = log.verify_log(None).await.unwrap();
        assert!(
            report.is_intact(),
            "{events} events: {:?}",
            report.corruption
        );
        assert_eq!(report.events, events);
    }
}
