//! PostgreSQL-specific behaviour, on a real server this test binary starts itself:
//! crash safety of a SIGKILLed appender (the log crate's harness), several independent nodes appending to one database,
//! hash-for-hash equality with the SQLite backend, schema handling, and the live head across
//! processes (LISTEN/NOTIFY, reconnection, polling).

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

citydb_log::crash_tests!(PgDatabase, run_if = crash_test_runs);

// ---------------------------------------------------------------------------------------------
// Several nodes on one database

/// Four independent `PostgresLog`s (separate pools and writers, as four citydb nodes would
/// have) append concurrently, some to their own streams, some under exact expected versions to
/// one shared stream; a fifth node, which never writes, follows the log with a subscription,
/// woken only by NOTIFY and polling. The log must be gapless, verify, hold every acknowledged
/// event exactly once where it was acknowledged, and the follower must have seen every
/// position in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_nodes_append_concurrently() {
    if TestCluster::shared_or_skip("independent_nodes_append_concurrently").is_none() {
        return;
    }
    const NODES: u64 = 4;
    const TASKS: u64 = 3;
    const APPENDS: u64 = 25;
    let url = fresh_db().await;
    let shared = stream("parcel");
    let follower: Arc<dyn EventLog> = Arc::new(open(&url).await);
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(Arc::new(open(&url).await));
    }
    // Every task appends the same number of events: two per shared-stream append, else 1 to 3.
    let per_task: u64 = (0..APPENDS)
        .map(|i| if i % 5 == 4 { 2 } else { 1 + i % 3 })
        .sum();
    let total = NODES * TASKS * per_task;
    let follow = {
        let follower = follower.clone();
        tokio::spawn(async move {
            let mut sub = subscribe(follower, 0);
            let mut seen = Vec::new();
            while (seen.len() as u64) < total {
                let event = tokio::time::timeout(Duration::from_secs(10), sub.next())
                    .await
                    .expect("the follower stalled");
                seen.push(event.unwrap().position);
            }
            // And nothing more.
            assert!(
                tokio::time::timeout(Duration::from_millis(200), sub.next())
                    .await
                    .is_err()
            );
            seen
        })
    };

    let mut tasks = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for t in 0..TASKS {
            let (node, shared) = (node.clone(), shared.clone());
            let w = n as u64 * TASKS + t;
            tasks.push(tokio::spawn(async move {
                let own = stream("citizen");
                let mut acks: Vec<(Uuid, u64)> = Vec::new();
                let mut shared_wins = 0u64;
                for i in 0..APPENDS {
                    let seq = w * 10_000 + i * 10;
                    if i % 5 == 4 {
                        // Read-modify-write on the shared stream, across nodes: retry on
                        // conflict with the version actually there.
                        loop {
                            let current = node.stream_version(&shared).await.unwrap();
                            let evs = vec![event(seq), event(seq + 1)];
                            let ids: Vec<_> = evs.iter().map(|e| e.event_id).collect();
                            let request = vec![
                                StreamAppend::new(
                                    shared.clone(),
                                    ExpectedVersion::from_current(current),
                                    evs,
                                ),
                                StreamAppend::new(own.clone(), ExpectedVersion::Any, vec![]),
                            ];
                            match node.append(request).await {
                                Ok(out) => {
                                    let first = out.first_position.unwrap();
                                    acks.extend(ids.into_iter().zip(first..));
                                    shared_wins += 1;
                                    break;
                                }
                                Err(LogError::WrongExpectedVersion { .. }) => continue,
                                Err(e) => panic!("{e:?}"),
                            }
                        }
                    } else {
                        let evs: Vec<_> = (0..1 + i % 3).map(|k| event(seq + k)).collect();
                        let ids: Vec<_> = evs.iter().map(|e| e.event_id).collect();
                        let out = node
                            .append(vec![StreamAppend::new(
                                own.clone(),
                                ExpectedVersion::Any,
                                evs,
                            )])
                            .await
                            .unwrap();
                        let first = out.first_position.unwrap();
                        acks.extend(ids.into_iter().zip(first..));
                    }
                }
                (acks, shared_wins)
            }));
        }
    }
    let mut acknowledged = Vec::new();
    let mut shared_wins = 0;
    for t in tasks {
        let (acks, wins) = t.await.unwrap();
        acknowledged.extend(acks);
        shared_wins += wins;
    }

    let all = read_everything(&*follower).await;
    assert_eq!(all.len() as u64, total);
    assert_eq!(
        all.len(),
        acknowledged.len(),
        "every event was acknowledged once"
    );
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.position, i as u64, "positions are gapless");
        if i > 0 {
            assert!(
                e.recorded_at >= all[i - 1].recorded_at,
                "time went backwards"
            );
        }
    }
    let mut ids = HashSet::new();
    for (id, position) in &acknowledged {
        assert!(ids.insert(*id), "event {id} acknowledged twice");
        assert_eq!(all[*position as usize].event_id, *id, "event {id} moved");
    }
    assert_eq!(
        follower.stream_version(&shared).await.unwrap(),
        Some(shared_wins * 2 - 1)
    );
    assert_intact(&*follower, None).await;
    for node in &nodes {
        assert_intact(&**node, None).await;
    }
    let seen = follow.await.unwrap();
    assert_eq!(
        seen,
        (0..all.len() as u64).collect::<Vec<_>>(),
        "the follower saw every position once, in order"
    );
}

// ---------------------------------------------------------------------------------------------
// Same chain as SQLite

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

const SQLITE_COLUMNS: &str = "position, stream_id, stream_version, event_id, event_type,
    schema_version, recorded_at, data, metadata, data_hash, prev_stream_hash, prev_log_hash, hash";

/// Copies every row of the SQLite log at `path` into the (migrated, empty) PostgreSQL log at
/// `url`, column for column, with no NOTIFY.
async fn copy_sqlite_to_pg(path: &Path, url: &str) -> usize {
    type SqliteRow = (
        i64,
        String,
        i64,
        Vec<u8>,
        String,
        i64,
        i64,
        Option<String>,
        String,
        Vec<u8>,
        Vec<u8>,
        Vec<u8>,
        Vec<u8>,
    );
    let rows: Vec<SqliteRow> = {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {SQLITE_COLUMNS} FROM events ORDER BY position"
            ))
            .unwrap();
        stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
                r.get(11)?,
                r.get(12)?,
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    let db = testkit::connect(url).await.unwrap();
    let insert = db
        .prepare(&format!(
            "INSERT INTO events ({SQLITE_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .await
        .unwrap();
    for r in &rows {
        let event_id = Uuid::from_slice(&r.3).unwrap();
        let data = r.7.as_ref().map(|d| d.as_bytes());
        db.execute(
            &insert,
            &[
                &r.0,
                &r.1,
                &r.2,
                &event_id,
                &r.4,
                &r.5,
                &r.6,
                &data,
                &r.8.as_bytes(),
                &r.9,
                &r.10,
                &r.11,
                &r.12,
            ],
        )
        .await
        .unwrap();
    }
    rows.len()
}

/// Copies every row of the PostgreSQL log at `url` into the (created, empty) SQLite log at
/// `path`, column for column.
async fn copy_pg_to_sqlite(url: &str, path: &Path) -> usize {
    let db = testkit::connect(url).await.unwrap();
    let rows = db
        .query(
            &format!("SELECT {SQLITE_COLUMNS} FROM events ORDER BY position"),
            &[],
        )
        .await
        .unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut insert = conn
        .prepare(&format!(
            "INSERT INTO events ({SQLITE_COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        ))
        .unwrap();
    for r in &rows {
        let event_id: Uuid = r.get(3);
        // SQLite stores the JSON as TEXT: the bytes are UTF-8 (the log refuses anything else).
        let data = r
            .get::<_, Option<&[u8]>>(7)
            .map(|d| std::str::from_utf8(d).unwrap());
        let metadata = std::str::from_utf8(r.get::<_, &[u8]>(8)).unwrap();
        insert
            .execute(rusqlite::params![
                r.get::<_, i64>(0),
                r.get::<_, &str>(1),
                r.get::<_, i64>(2),
                event_id.as_bytes().as_slice(),
                r.get::<_, &str>(4),
                r.get::<_, i64>(5),
                r.get::<_, i64>(6),
                data,
                metadata,
                r.get::<_, &[u8]>(9),
                r.get::<_, &[u8]>(10),
                r.get::<_, &[u8]>(11),
                r.get::<_, &[u8]>(12),
            ])
            .unwrap();
    }
    rows.len()
}

/// A log written by SQLite, copied row for row into PostgreSQL, verifies there with the same
/// head hash and reads back identically; PostgreSQL then continues its chain. And the other way
/// round: a log written by PostgreSQL, copied into SQLite, verifies there and SQLite continues
/// it. So both backends store the same hashes for the same history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_are_identical_across_backends() {
    if TestCluster::shared_or_skip("chains_are_identical_across_backends").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();

    // SQLite -> PostgreSQL.
    let lite_path = dir.path().join("from-sqlite.db");
    let (lite_head, lite_events) = {
        let lite = SqliteLog::open(&lite_path, SqliteConfig::default()).unwrap();
        write_history(&lite, 24).await;
        (
            assert_intact(&lite, None).await,
            read_everything(&lite).await,
        )
    };
    let url = fresh_db().await;
    let pg = PostgresLog::connect(
        &url,
        PostgresConfig {
            head_poll_interval: Duration::from_millis(100),
            ..PostgresConfig::default()
        },
    )
    .await
    .unwrap();
    let copied = copy_sqlite_to_pg(&lite_path, &url).await;
    assert_eq!(copied, lite_events.len());
    assert_eq!(assert_intact(&pg, Some(lite_head)).await, lite_head);
    assert_eq!(pg.head().await.unwrap(), Some(lite_head));
    assert_eq!(
        read_everything(&pg).await,
        lite_events,
        "identical events, byte for byte"
    );
    // Rows copied without a NOTIFY still reach the live head, through the poll.
    wait_for_head(
        &mut pg.watch_head(),
        lite_head.position,
        Duration::from_secs(5),
    )
    .await;
    write_history(&pg, 8).await;
    let pg_head = assert_intact(&pg, Some(lite_head)).await;
    assert!(pg_head.position > lite_head.position);

    // PostgreSQL (a pure PostgreSQL history) -> SQLite.
    let url = fresh_db().await;
    let pg = open(&url).await;
    write_history(&pg, 24).await;
    let pg_head = assert_intact(&pg, None).await;
    let pg_events = read_everything(&pg).await;
    let lite_path = dir.path().join("from-postgres.db");
    drop(SqliteLog::open(&lite_path, SqliteConfig::default()).unwrap()); // creates the schema
    assert_eq!(copy_pg_to_sqlite(&url, &lite_path).await, pg_events.len());
    let lite = SqliteLog::open(&lite_path, SqliteConfig::default()).unwrap();
    assert_eq!(assert_intact(&lite, Some(pg_head)).await, pg_head);
    assert_eq!(read_everything(&lite).await, pg_events);
    write_history(&lite, 8).await;
    assert_intact(&lite, Some(pg_head)).await;
}

/// `copy_log` migrates a log between backends hash for hash, through each backend's writer:
/// SQLite -> PostgreSQL -> a new SQLite file. The three heads and every event (a redacted one
/// included) are identical, another PostgreSQL node is woken by the copy's NOTIFY, and each log
/// then continues its own chain from the copied head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_log_migrates_across_backends() {
    if TestCluster::shared_or_skip("copy_log_migrates_across_backends").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let origin_path = dir.path().join("origin.db");
    let origin = SqliteLog::open(&origin_path, SqliteConfig::default()).unwrap();
    write_history(&origin, 30).await;
    // A court-ordered redaction: the payload goes, its digest stays and the chain verifies.
    rusqlite::Connection::open(&origin_path)
        .unwrap()
        .execute("UPDATE events SET data = NULL WHERE position = 5", [])
        .unwrap();
    let head = assert_intact(&origin, None).await;
    let events = read_everything(&origin).await;
    assert!(events[5].is_redacted());

    let url = fresh_db().await;
    let pg = open(&url).await;
    // Another node, which only a NOTIFY can wake in time (its poll is an hour away).
    let other = PostgresLog::connect(
        &url,
        PostgresConfig {
            head_poll_interval: Duration::from_secs(3600),
            ..PostgresConfig::default()
        },
    )
    .await
    .unwrap();
    let mut progress = Vec::new();
    let to_pg = copy_log(&origin, &pg, 16, |n| progress.push(n))
        .await
        .unwrap();
    assert_eq!(to_pg.events, events.len() as u64);
    assert_eq!(to_pg.target_head, Some(head));
    assert_eq!(progress.last(), Some(&(events.len() as u64)));
    wait_for_head(
        &mut other.watch_head(),
        head.position,
        Duration::from_secs(5),
    )
    .await;

    let restored =
        SqliteLog::open(dir.path().join("restored.db"), SqliteConfig::default()).unwrap();
    let to_lite = copy_log(&pg, &restored, 10, |_| {}).await.unwrap();
    assert_eq!(to_lite.events, events.len() as u64);
    assert_eq!(to_lite.target_head, Some(head));

    let logs: [(&str, &dyn EventLog); 3] = [
        ("origin", &origin),
        ("postgres", &pg),
        ("restored", &restored),
    ];
    for (name, log) in logs {
        assert_eq!(log.head().await.unwrap(), Some(head), "{name}");
        assert_eq!(assert_intact(log, Some(head)).await, head, "{name}");
        assert_eq!(
            read_everything(log).await,
            events,
            "{name}: identical events"
        );
    }
    // Each continues its own chain from the same head.
    for (name, log) in logs {
        write_history(log, 4).await;
        let new_head = assert_intact(log, Some(head)).await;
        assert!(new_head.position > head.position, "{name}");
        let next = &log.read_all(head.position + 1, 1).await.unwrap()[0];
        assert_eq!(next.prev_log_hash, head.hash, "{name}");
        assert!(
            next.recorded_at >= events[events.len() - 1].recorded_at,
            "{name}"
        );
    }
}

/// Data and metadata come back exactly as appended, whatever their JSON shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bytes_round_trip_exactly() {
    if TestCluster::shared_or_skip("json_bytes_round_trip_exactly").is_none() {
        return;
    }
    let log = open(&fresh_db().await).await;
    let s = stream("citizen");
    let shapes: [&[u8]; 6] = [
        b"{}",
        b"  {\"b\":1,   \"a\" : [ 1 , 2.0 , 3e0 ] }\n",
        b"\"just a string \\u0000 with an escaped NUL\"",
        "{\"tên\":\"Nguyễn Thị Hoà\",\"k\":\"Hoa\u{300}\"}".as_bytes(),
        b"[1,1.0,1.00,-0,1E400]",
        b"{\"dup\":1,\"dup\":2}",
    ];
    let mut sent = Vec::new();
    for (i, shape) in shapes.iter().enumerate() {
        let mut e = event(i as u64);
        e.data = shape.to_vec();
        e.metadata = format!("{{ \"case\" : {i} }}").into_bytes();
        sent.push(e);
    }
    log.append(vec![StreamAppend::new(
        s.clone(),
        ExpectedVersion::NoStream,
        sent.clone(),
    )])
    .await
    .unwrap();
    let back = log
        .read_stream(&s, 0, citydb_log::Direction::Forward, 100)
        .await
        .unwrap();
    for (b, e) in back.iter().zip(&sent) {
        assert_eq!(b.data, e.data);
        assert_eq!(b.metadata, e.metadata);
    }
    assert_intact(&log, None).await;
}

// ---------------------------------------------------------------------------------------------
// Schema

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_connections_migrate_once() {
    if TestCluster::shared_or_skip("concurrent_first_connections_migrate_once").is_none() {
        return;
    }
    let url = fresh_db().await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move { open(&url).await }));
    }
    let mut logs = Vec::new();
    for t in tasks {
        logs.push(t.await.unwrap());
    }
    let db = testkit::connect(&url).await.unwrap();
    let rows = db
        .query("SELECT key, value FROM citydb_meta ORDER BY key", &[])
        .await
        .unwrap();
    let meta: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        meta,
        [
            ("hash_format".to_owned(), "1".to_owned()),
            ("schema_version".to_owned(), SCHEMA_VERSION.to_string()),
        ]
    );
    // And the log works from every one of them.
    for (i, log) in logs.iter().enumerate() {
        log.append(vec![StreamAppend::new(
            stream("citizen"),
            ExpectedVersion::NoStream,
            vec![event(i as u64)],
        )])
        .await
        .unwrap();
    }
    assert_eq!(logs[0].head().await.unwrap().unwrap().position, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    if TestCluster::shared_or_skip("a_newer_schema_is_refused").is_none() {
        return;
    }
    let url = fresh_db().await;
    drop(open(&url).await);
    let db = testkit::connect(&url).await.unwrap();
    db.execute(
        "UPDATE citydb_meta SET value = $1 WHERE key = 'schema_version'",
        &[&(SCHEMA_VERSION + 1).to_string()],
    )
    .await
    .unwrap();
    let err = PostgresLog::connect(&url, PostgresConfig::default())
        .await
        .err()
        .unwrap();
    assert_eq!(
        err,
        LogError::NewerFormat {
            found: SCHEMA_VERSION + 1,
            supported: SCHEMA_VERSION
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_applications_events_table_is_refused() {
    if TestCluster::shared_or_skip("another_applications_events_table_is_refused").is_none() {
        return;
    }
    let url = fresh_db().await;
    let db = testkit::connect(&url).await.unwrap();
    db.batch_execute("CREATE TABLE events (id serial PRIMARY KEY, what text)")
        .await
        .unwrap();
    let err = PostgresLog::connect(&url, PostgresConfig::default())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, LogError::NotACitydbLog { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_failures_are_storage_errors() {
    if TestCluster::shared_or_skip("connection_failures_are_storage_errors").is_none() {
        return;
    }
    // A port nothing listens on (the cluster's port + 1 would race; bind one and drop it).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = PostgresLog::connect(
        &format!("postgres://postgres@127.0.0.1:{port}/nowhere"),
        PostgresConfig::default(),
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(err, LogError::Storage(_)), "{err:?}");
    let err = PostgresLog::connect("postgres://[not a url", PostgresConfig::default())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, LogError::Storage(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Live head across processes

/// Another node learns of an append through NOTIFY alone (its poll is set to an hour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_other_nodes() {
    if TestCluster::shared_or_skip("notify_wakes_other_nodes").is_none() {
        return;
    }
    let url = fresh_db().await;
    let no_poll = PostgresConfig {
        head_poll_interval: Duration::from_secs(3600),
        ..PostgresConfig::default()
    };
    let writer = PostgresLog::connect(&url, no_poll.clone()).await.unwrap();
    let reader = PostgresLog::connect(&url, no_poll).await.unwrap();
    let mut head = reader.watch_head();
    assert_eq!(*head.borrow_and_update(), None);
    for i in 0..3u64 {
        let out = writer
            .append(vec![StreamAppend::new(
                stream("citizen"),
                ExpectedVersion::Any,
                vec![event(i)],
            )])
            .await
            .unwrap();
        wait_for_head(
            &mut head,
            out.last_position.unwrap(),
            Duration::from_secs(5),
        )
        .await;
    }
}

/// The listener's connection is killed; appends made meanwhile (whose notifications are lost)
/// still reach the other node's head, through the reconnection and the poll, and notifications
/// flow again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_reconnects_after_losing_its_connection() {
    if TestCluster::shared_or_skip("the_listener_reconnects_after_losing_its_connection").is_none()
    {
        return;
    }
    let url = fresh_db().await;
    let config = PostgresConfig {
        head_poll_interval: Duration::from_millis(200),
        ..PostgresConfig::default()
    };
    let writer = PostgresLog::connect(&url, config.clone()).await.unwrap();
    let reader = PostgresLog::connect(&url, config).await.unwrap();
    let mut head = reader.watch_head();
    let append = |i: u64| {
        writer.append(vec![StreamAppend::new(
            stream("citizen"),
            ExpectedVersion::Any,
            vec![event(i)],
        )])
    };
    append(0).await.unwrap();
    wait_for_head(&mut head, 0, Duration::from_secs(5)).await;

    let db = testkit::connect(&url).await.unwrap();
    let killed: i64 = db
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'citydb-listener' AND datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 2, "both nodes' listeners");
    let out = append(1).await.unwrap();
    wait_for_head(
        &mut head,
        out.last_position.unwrap(),
        Duration::from_secs(5),
    )
    .await;

    // Reconnected and listening again.
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n: i64 = db
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE application_name = 'citydb-listener' AND datname = current_database()",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if n == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the listeners did not reconnect");
    let out = append(2).await.unwrap();
    wait_for_head(
        &mut head,
        out.last_position.unwrap(),
        Duration::from_secs(5),
    )
    .await;
}

/// Dropping the last handle stops the writer and the listener and closes every connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_log_closes_its_connections() {
    if TestCluster::shared_or_skip("dropping_the_log_closes_its_connections").is_none() {
        return;
    }
    let url = fresh_db().await;
    let db = testkit::connect(&url).await.unwrap();
    let count = || async {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        n
    };
    let log = open(&url).await;
    let clone = log.clone();
    write_history(&clone, 4).await;
    assert_intact(&log, None).await;
    assert!(
        count().await >= 3,
        "reader, writer and listener connections"
    );
    drop(log);
    drop(clone);
    tokio::time::timeout(Duration::from_secs(5), async {
        while count().await > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("connections were left open");
}

/// Requests queued together commit in one transaction, and a request whose INSERT fails inside
/// such a group is rolled back to its savepoint and fails alone. The failure is provoked with a
/// trigger that refuses one event type; a clash of event ids between members of one group
/// is refused too, and a failing request alone in its transaction leaves the connection usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_fail_alone() {
    if TestCluster::shared_or_skip("group_members_fail_alone").is_none() {
        return;
    }
    let url = fresh_db().await;
    let log = Arc::new(open(&url).await);
    install_poison(&url).await;
    let poisoned = || {
        let mut e = event(0);
        e.event_type = "Poison".into();
        e
    };
    let clash = event(1);
    let mut tasks = Vec::new();
    for w in 0..48u64 {
        let (log, clash) = (log.clone(), clash.clone());
        let e = match w % 8 {
            0 => poisoned(),
            4 => clash,
            _ => event(w),
        };
        tasks.push(tokio::spawn(async move {
            let r = log
                .append(vec![StreamAppend::new(
                    stream("citizen"),
                    ExpectedVersion::NoStream,
                    vec![e],
                )])
                .await;
            (w, r)
        }));
    }
    let (mut ok, mut conflicts) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            (w, Err(LogError::Storage(msg))) if w % 8 == 0 => {
                assert!(msg.detail.contains("poisoned"), "{msg}")
            }
            (w, Ok(_)) if w % 8 != 0 => ok += 1,
            (w, Err(LogError::IdempotencyConflict { .. })) if w % 8 == 4 => conflicts += 1,
            (w, r) => panic!("request {w}: {r:?}"),
        }
    }
    // The clashing id lands once; its five other senders conflict.
    assert_eq!((ok, conflicts), (37, 5));
    let all = read_everything(&*log).await;
    assert_eq!(all.len(), 37);
    assert_eq!(
        all.iter().filter(|e| e.event_id == clash.event_id).count(),
        1
    );
    // One transaction reads the clock once: fewer timestamps than requests means requests
    // were committed together.
    let stamps: HashSet<i64> = all.iter().map(|e| e.recorded_at).collect();
    assert!(
        stamps.len() < all.len(),
        "no two requests shared a transaction"
    );
    assert_intact(&*log, None).await;

    // Alone in its transaction, a failing request leaves the writer's connection usable.
    let err = log
        .append(vec![StreamAppend::new(
            stream("citizen"),
            ExpectedVersion::Any,
            vec![poisoned()],
        )])
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::Storage(_)), "{err:?}");
    let out = log
        .append(vec![StreamAppend::new(
            stream("citizen"),
            ExpectedVersion::Any,
            vec![event(99)],
        )])
        .await
        .unwrap();
    assert_eq!(out.first_position, Some(37));
    assert_intact(&*log, None).await;
}

/// Installs a trigger that refuses events of type `Poison`: an INSERT failure no check of the
/// log can foresee.
async fn install_poison(url: &str) {
    testkit::connect(url)
        .await
        .unwrap()
        .batch_execute(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.event_type = 'Poison' THEN RAISE EXCEPTION 'poisoned'; END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER poison BEFORE INSERT ON events
                 FOR EACH ROW EXECUTE FUNCTION poison();",
        )
        .await
        .unwrap();
}

/// When a request of a group fails at INSERT, the requests after it in the same group must not
/// keep answers that were computed against its effects. Here B would conflict with A (both
/// create stream S); A fails, so B must succeed. The two are forced into one group by holding
/// the append lock from another connection while they queue up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_request_does_not_decide_the_next_ones() {
    if TestCluster::shared_or_skip("a_failed_request_does_not_decide_the_next_ones").is_none() {
        return;
    }
    let url = fresh_db().await;
    let log = Arc::new(open(&url).await);
    install_poison(&url).await;
    let blocker = testkit::connect(&url).await.unwrap();
    blocker
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({})",
            citydb_postgres::APPEND_LOCK_KEY
        ))
        .await
        .unwrap();
    let send = |evs: Vec<NewEvent>, s: StreamId| {
        let log = log.clone();
        tokio::spawn(async move {
            log.append(vec![StreamAppend::new(s, ExpectedVersion::NoStream, evs)])
                .await
        })
    };
    // The writer takes the first request and waits for the lock; A and B queue behind it.
    let first = send(vec![event(0)], stream("citizen"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let s = stream("citizen");
    let mut poison = event(1);
    poison.event_type = "Poison".into();
    let a = send(vec![poison], s.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b = send(vec![event(2)], s.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    blocker.batch_execute("COMMIT").await.unwrap();

    first.await.unwrap().unwrap();
    let a = a.await.unwrap();
    assert!(
        matches!(a, Err(LogError::Storage(ref m)) if m.detail.contains("poisoned")),
        "{a:?}"
    );
    let b = b.await.unwrap().unwrap();
    assert_eq!(b.streams[0].first_version, Some(0));
    assert_eq!(log.stream_version(&s).await.unwrap(), Some(0));
    assert_intact(&*log, None).await;
}

// ---------------------------------------------------------------------------------------------
// The test kit itself

/// A private cluster (not the shared one) serves databases, and dropping it stops the server
/// and removes its directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_test_cluster_stops_when_dropped() {
    if TestCluster::shared_or_skip("a_private_test_cluster_stops_when_dropped").is_none() {
        return;
    }
    let private = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(private.port(), cluster().port());
    let url = private.create_database().await.unwrap();
    let log = open(&url).await;
    write_history(&log, 2).await;
    assert_intact(&log, None).await;
    drop(log);
    let data = private.data_dir().to_path_buf();
    let port = private.port();
    tokio::task::spawn_blocking(move || drop(private))
        .await
        .unwrap();
    assert!(!data.exists(), "{} was left behind", data.display());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server still accepts connections"
    );
}
