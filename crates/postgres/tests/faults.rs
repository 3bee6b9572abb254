//! Storage faults on PostgreSQL reach the caller classified: a server that stops under a
//! running log is `FaultKind::Unavailable` (for appends and reads alike), a database that
//! refuses writes (`default_transaction_read_only`, as on a hot standby: SQLSTATE 25006) is
//! `FaultKind::ReadOnly`. PostgreSQL's disk-full (53100) cannot be provoked here; its mapping
//! is checked by SQLSTATE in the crate's unit tests.

use std::time::Duration;

use uuid::Uuid;

use citydb_log::conformance::event;
use citydb_log::{EventLog, ExpectedVersion, FaultKind, LogError, StreamAppend, StreamId};
use citydb_postgres::testkit::{self, TestCluster};
use citydb_postgres::{PostgresConfig, PostgresLog};

fn append_to(stream: &StreamId, n: u64) -> Vec<StreamAppend> {
    vec![StreamAppend::new(
        stream.clone(),
        ExpectedVersion::Any,
        vec![event(n)],
    )]
}

fn config() -> PostgresConfig {
    PostgresConfig {
        // The pool gives up on a dead server after this long.
        connect_timeout: Duration::from_secs(2),
        ..PostgresConfig::default()
    }
}

fn assert_fault<T: std::fmt::Debug>(result: Result<T, LogError>, kind: FaultKind, what: &str) {
    match result {
        Err(e) => assert_eq!(e.fault_kind(), Some(kind), "{what}: {e}"),
        Ok(v) => panic!("{what} succeeded: {v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stopped_under_a_running_log_is_unavailable() {
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .expect("join")
        .expect("cannot start a private PostgreSQL cluster");
    let url = cluster.create_database().await.expect("database");
    let log = PostgresLog::connect(&url, config()).await.expect("connect");
    let stream = StreamId::new("citizen", Uuid::now_v7()).expect("stream");
    log.append(append_to(&stream, 1))
        .await
        .expect("append while up");

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster
    })
    .await
    .expect("join");
    assert_fault(
        log.append(append_to(&stream, 2)).await,
        FaultKind::Unavailable,
        "append after the stop",
    );
    assert_fault(
        log.read_all(0, 10).await,
        FaultKind::Unavailable,
        "read after the stop",
    );
    assert_fault(
        log.head().await,
        FaultKind::Unavailable,
        "head after the stop",
    );
    drop(log);
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_is_read_only() {
    let cluster = TestCluster::shared().expect("cannot start the PostgreSQL test cluster");
    let url = cluster.create_database().await.expect("database");
    let stream = StreamId::new("citizen", Uuid::now_v7()).expect("stream");
    {
        let log = PostgresLog::connect(&url, config()).await.expect("connect");
        log.append(append_to(&stream, 1)).await.expect("append");
    }
    let database = url.rsplit('/').next().expect("database name").to_owned();
    let admin = testkit::connect(&cluster.url("postgres"))
        .await
        .expect("admin");
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {database} SET default_transaction_read_only = on"
        ))
        .await
        .expect("make the database read-only");

    // New sessions are read-only, as on a standby: the log opens and reads, appends fail.
    let log = PostgresLog::connect(&url, config())
        .await
        .expect("a read-only database opens for reading");
    assert_eq!(log.read_all(0, 10).await.expect("read").len(), 1);
    assert_fault(
        log.append(append_to(&stream, 2)).await,
        FaultKind::ReadOnly,
        "append to a read-only database",
    );
}
