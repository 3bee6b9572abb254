//! Schema: migration, refusal of newer or foreign schemas, connection failures.

use super::*;

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
