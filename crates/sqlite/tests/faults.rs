//! Storage faults reach the caller classified (`LogError::Storage` with its `FaultKind`), the
//! failed append leaves nothing behind, and the log works again once the fault is gone. The
//! faults are injected by the test kit's VFS: a full disk (`SQLITE_FULL` from every write), an
//! I/O error, and a file system that opens the database read-only; and a write lock another
//! connection holds past the busy timeout (`SQLITE_BUSY`).

use uuid::Uuid;

use citydb_log::conformance::event;
use citydb_log::{Direction, EventLog, ExpectedVersion, FaultKind, StreamAppend, StreamId};
use citydb_sqlite::testkit::PowerCutVfs;
use citydb_sqlite::{SqliteConfig, SqliteLog};
use rusqlite::ffi;

fn append_to(stream: &StreamId, n: u64) -> Vec<StreamAppend> {
    vec![StreamAppend::new(
        stream.clone(),
        ExpectedVersion::Any,
        vec![event(n)],
    )]
}

fn through(vfs: &PowerCutVfs) -> SqliteConfig {
    SqliteConfig {
        vfs: Some(vfs.name().to_owned()),
        ..SqliteConfig::default()
    }
}

/// A write fault of `code` is reported as `kind`; nothing of the failed append is kept; the
/// same append succeeds once writes work again.
async fn write_fault_is_reported_as(code: i32, kind: FaultKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let vfs = PowerCutVfs::register().expect("register");
    let log = SqliteLog::open(dir.path().join("log.db"), through(&vfs)).expect("open");
    let stream = StreamId::new("citizen", Uuid::now_v7()).expect("stream");
    log.append(append_to(&stream, 1))
        .await
        .expect("first append");

    vfs.fail_writes(Some(code));
    let refused = log.append(append_to(&stream, 2)).await;
    let error = refused.expect_err("an append on a failing disk was acknowledged");
    assert_eq!(error.fault_kind(), Some(kind), "{error}");
    // Reads still work, and show nothing of the refused append.
    let events = log
        .read_stream(&stream, 0, Direction::Forward, 10)
        .await
        .expect("read during the fault");
    assert_eq!(events.len(), 1);

    vfs.fail_writes(None);
    let retried = log.append(append_to(&stream, 3)).await.expect("retry");
    assert_eq!(
        retried.first_position,
        Some(1),
        "the failed append left a gap"
    );
    assert!(log.verify_log(None).await.expect("verify").is_intact());
}

#[tokio::test]
async fn a_full_disk_is_reported_as_full() {
    write_fault_is_reported_as(ffi::SQLITE_FULL, FaultKind::Full).await;
}

#[tokio::test]
async fn an_io_error_is_reported_as_unavailable() {
    write_fault_is_reported_as(ffi::SQLITE_IOERR_WRITE, FaultKind::Unavailable).await;
}

#[tokio::test]
async fn a_read_only_file_system_is_reported_as_read_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log.db");
    let stream = StreamId::new("citizen", Uuid::now_v7()).expect("stream");
    {
        let log = SqliteLog::open(&path, SqliteConfig::default()).expect("create");
        log.append(append_to(&stream, 1)).await.expect("append");
    }
    let vfs = PowerCutVfs::register().expect("register");
    vfs.open_read_only(true);
    let log = SqliteLog::open(&path, through(&vfs)).expect("a read-only store opens for reading");
    let error = log
        .append(append_to(&stream, 2))
        .await
        .expect_err("an append to a read-only store was acknowledged");
    assert_eq!(error.fault_kind(), Some(FaultKind::ReadOnly), "{error}");
    let events = log
        .read_stream(&stream, 0, Direction::Forward, 10)
        .await
        .expect("reads work");
    assert_eq!(events.len(), 1);
}

/// Another process holding the write lock past the 10 s busy timeout: `SQLITE_BUSY`, reported
/// as unavailable (retryable), and the append goes through once the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_lock_held_past_the_busy_timeout_is_unavailable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log.db");
    let log = SqliteLog::open(&path, SqliteConfig::default()).expect("open");
    let stream = StreamId::new("citizen", Uuid::now_v7()).expect("stream");
    log.append(append_to(&stream, 1)).await.expect("append");

    let other = rusqlite::Connection::open(&path).expect("another writer");
    other
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let error = log
        .append(append_to(&stream, 2))
        .await
        .expect_err("an append went through a held write lock");
    assert_eq!(error.fault_kind(), Some(FaultKind::Unavailable), "{error}");
    other.execute_batch("ROLLBACK").expect("release");
    log.append(append_to(&stream, 3)).await.expect("retry");
}
