//! The log's conformance suite against the PostgreSQL backend, on a real server that this test
//! binary starts itself (one cluster, one fresh database per test), plus tamper hooks that edit
//! the rows with raw SQL, as someone with write access to the database would.

use std::sync::Arc;

use async_trait::async_trait;

use citydb_log::conformance::{Backend, Tamper, flipped, forged_event};
use citydb_log::{Hash, conformance_tests};
use citydb_postgres::testkit::{self, TestCluster};
use citydb_postgres::{PostgresConfig, PostgresLog};

struct PgBackend {
    cluster: &'static TestCluster,
    url: String,
    /// The second database, created on first use.
    second: tokio::sync::OnceCell<String>,
}

async fn pg_backend() -> PgBackend {
    let cluster = TestCluster::shared().expect("cannot start the PostgreSQL test cluster");
    let url = cluster.create_database().await.unwrap();
    PgBackend {
        cluster,
        url,
        second: tokio::sync::OnceCell::new(),
    }
}

/// Verify even these small logs in parallel segments and small chunks, so that every tamper
/// case also exercises the seams between segments and between chunks, and with their stream
/// links set aside in partitions (more than 3 events: `LogVerifier::bounded`), as a city's is.
fn config() -> PostgresConfig {
    PostgresConfig {
        parallel_verify_threshold: 2,
        verify_chunk: 3,
        verify_streams_in_memory: 3,
        read_connections: 4,
        ..PostgresConfig::default()
    }
}

/// Moves rows out of the way of the primary key while renumbering.
const OFFSET: i64 = 1_000_000_000;

#[async_trait]
impl Backend for PgBackend {
    type Log = PostgresLog;

    async fn open(&self) -> Arc<PostgresLog> {
        Arc::new(PostgresLog::connect(&self.url, config()).await.unwrap())
    }

    async fn open_second(&self) -> Arc<PostgresLog> {
        let url = self
            .second
            .get_or_init(|| async { self.cluster.create_database().await.unwrap() })
            .await;
        Arc::new(PostgresLog::connect(url, config()).await.unwrap())
    }

    async fn tamper(&self, tamper: Tamper) {
        let db = testkit::connect(&self.url).await.unwrap();
        let flip = |column: &'static str, position: u64| {
            let db = &db;
            async move {
                let row = db
                    .query_one(
                        &format!("SELECT {column} FROM events WHERE position = $1"),
                        &[&(position as i64)],
                    )
                    .await
                    .unwrap();
                let text = String::from_utf8(row.get::<_, Vec<u8>>(0)).unwrap();
                let changed = flipped(&text);
                assert_ne!(changed, text);
                db.execute(
                    &format!("UPDATE events SET {column} = $1 WHERE position = $2"),
                    &[&changed.into_bytes(), &(position as i64)],
                )
                .await
                .unwrap();
            }
        };
        match tamper {
            Tamper::FlipDataByte { position } => flip("data", position).await,
            Tamper::FlipMetadataByte { position } => flip("metadata", position).await,
            Tamper::Delete { position } => {
                db.execute(
                    "DELETE FROM events WHERE position = $1",
                    &[&(position as i64)],
                )
                .await
                .unwrap();
            }
            Tamper::SwapWithNext { position } => {
                let p = position as i64;
                db.batch_execute(&format!(
                    "BEGIN;
                     UPDATE events SET position = {p} + {OFFSET} WHERE position = {p};
                     UPDATE events SET position = {p} WHERE position = {p} + 1;
                     UPDATE events SET position = {p} + 1 WHERE position = {p} + {OFFSET};
                     COMMIT;"
                ))
                .await
                .unwrap();
            }
            Tamper::InsertForged { after } => {
                let a = after as i64;
                db.batch_execute(&format!(
                    "BEGIN;
                     UPDATE events SET position = position + {OFFSET} WHERE position > {a};
                     UPDATE events SET position = position - {OFFSET} + 1
                         WHERE position >= {OFFSET};
                     COMMIT;"
                ))
                .await
                .unwrap();
                let row = db
                    .query_one(
                        "SELECT hash, recorded_at FROM events WHERE position = $1",
                        &[&a],
                    )
                    .await
                    .unwrap();
                let prev = Hash::from_slice(row.get::<_, &[u8]>(0)).unwrap();
                let recorded_at: i64 = row.get(1);
                let forged = forged_event(after + 1, prev, recorded_at);
                db.execute(
                    "INSERT INTO events VALUES ($1, $2, 0, $3, 'Forged', 1, $4,
                         '\\x7b7d', '\\x7b7d', $5, $6, $7, $8)",
                    &[
                        &(a + 1),
                        &forged.stream_id.as_str(),
                        &forged.event_id,
                        &recorded_at,
                        &forged.data_hash.as_bytes().as_slice(),
                        &forged.prev_stream_hash.as_bytes().as_slice(),
                        &forged.prev_log_hash.as_bytes().as_slice(),
                        &forged.hash.as_bytes().as_slice(),
                    ],
                )
                .await
                .unwrap();
            }
            Tamper::TruncateAfter { keep_through } => {
                db.execute(
                    "DELETE FROM events WHERE position > $1",
                    &[&(keep_through as i64)],
                )
                .await
                .unwrap();
            }
            Tamper::Redact { position } => {
                db.execute(
                    "UPDATE events SET data = NULL WHERE position = $1",
                    &[&(position as i64)],
                )
                .await
                .unwrap();
            }
        }
    }
}

/// Runs a conformance test only where PostgreSQL is installed (else a loud SKIPPED line, or a
/// failure under CITYDB_REQUIRE_ALL=1).
fn postgres_installed(test: &str) -> bool {
    TestCluster::shared_or_skip(test).is_some()
}

conformance_tests!(pg_backend, run_if = postgres_installed);
