//! PostgreSQL-specific behaviour, on a real server this test binary starts itself:
//! crash safety of a SIGKILLed appender (the log crate's harness), several independent nodes appending to one database,
//! hash-for-hash equality with the SQLite backend, schema handling, and the live head across
//! processes (LISTEN/NOTIFY, reconnection, polling).

mod groups;
mod live_head;
mod nodes;
mod same_chain;
mod schema;
mod test_cluster;
mod tiles;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use uuid::Uuid;

use citydb_log::conformance::crash::CrashStore;
use citydb_log::conformance::event;
use citydb_log::{
    EventLog, ExpectedVersion, LogError, LogHead, Metadata, NewEvent, RecordedEvent, StreamAppend,
    StreamId, copy_log, subscribe,
};
use citydb_postgres::testkit::{self, TestCluster};
use citydb_postgres::{PostgresConfig, PostgresLog, SCHEMA_VERSION};
use citydb_sqlite::{SqliteConfig, SqliteLog};

fn cluster() -> &'static TestCluster {
    TestCluster::shared().expect("cannot start the PostgreSQL test cluster")
}

async fn fresh_db() -> String {
    cluster().create_database().await.unwrap()
}

async fn open(url: &str) -> PostgresLog {
    PostgresLog::connect(url, PostgresConfig::default())
        .await
        .unwrap()
}

fn stream(category: &str) -> StreamId {
    StreamId::new(category, Uuid::now_v7()).unwrap()
}

async fn read_everything(log: &dyn EventLog) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    loop {
        let batch = log.read_all(out.len() as u64, 500).await.unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

async fn assert_intact(log: &dyn EventLog, expected: Option<LogHead>) -> LogHead {
    let report = log.verify_log(expected).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.corruption);
    report.head.unwrap()
}

/// Waits until `head` shows at least `position`.
async fn wait_for_head(head: &mut watch::Receiver<Option<u64>>, position: u64, within: Duration) {
    tokio::time::timeout(within, async {
        while head.borrow_and_update().is_none_or(|h| h < position) {
            head.changed().await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the head did not reach {position} within {within:?}"));
}

/// A history with everything the chain covers: several categories, batches, multi-stream
/// appends, a version check without events, non-ASCII text, and JSON bytes in a shape no
/// serialiser would produce (which must survive byte for byte).
async fn write_history(log: &dyn EventLog, n: u64) {
    let (a, b, c) = (stream("citizen"), stream("parcel"), stream("business"));
    for i in 0..n {
        let mut odd = event(i);
        odd.data = format!(
            "{{ \"n\" : {i} ,\n  \"tên\":\"Lê Văn Tám\\u00e9 é\", \"x\": 1.50e+2, {}",
            "\"dup\":1,\"dup\":2 }"
        )
        .into_bytes();
        odd.metadata =
            b"{\"actor\" :\"steward\" ,\"reason\":\"\\ud83d\\ude00 \xf0\x9f\x98\x80\"}".to_vec();
        let request = match i % 4 {
            0 => vec![StreamAppend::new(
                a.clone(),
                ExpectedVersion::Any,
                vec![odd],
            )],
            1 => vec![StreamAppend::new(
                b.clone(),
                ExpectedVersion::Any,
                vec![event(i * 10), event(i * 10 + 1), event(i * 10 + 2)],
            )],
            2 => vec![
                StreamAppend::new(c.clone(), ExpectedVersion::Any, vec![event(i)]),
                StreamAppend::new(a.clone(), ExpectedVersion::StreamExists, vec![]),
                StreamAppend::new(stream("key"), ExpectedVersion::NoStream, vec![event(i + 1)]),
            ],
            _ => vec![StreamAppend::new(
                b.clone(),
                ExpectedVersion::StreamExists,
                vec![
                    NewEvent::new(
                        "ParcelSplit",
                        2,
                        &json!({ "i": i, "area_m2": 1234.5, "ward": "Lạch Tray" }),
                        &Metadata {
                            actor: Some("cadastre".into()),
                            legal_basis: Some("QĐ 123/2026".into()),
                            ..Metadata::default()
                        },
                    )
                    .unwrap(),
                ],
            )],
        };
        log.append(request).await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Crash safety: the log crate's SIGKILL harness on a fresh database. (The client dies, not the
// server: what this proves is that a transaction cut off mid-way leaves nothing behind and that
// the advisory lock of a dead appender is released.)

struct PgDatabase {
    url: String,
}

#[async_trait::async_trait]
impl CrashStore for PgDatabase {
    async fn create() -> Self {
        PgDatabase {
            url: fresh_db().await,
        }
    }

    fn place(&self) -> String {
        self.url.clone()
    }

    async fn open(place: &str) -> Arc<dyn EventLog> {
        Arc::new(open(place).await)
    }
}

fn crash_test_runs(test: &str) -> bool {
    TestCluster::shared_or_skip(test).is_some()
}

// Expanded here, at the root of the binary and not in a module: the harness restarts this
// binary with the exact test name `crash_child_entry` as the child.
citydb_log::crash_tests!(PgDatabase, run_if = crash_test_runs);
