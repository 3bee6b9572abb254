//! Same chain as SQLite: logs copied between the backends verify hash for hash and continue.

use super::*;

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
