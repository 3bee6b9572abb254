use serde_json::json;
use uuid::Uuid;

use citydb_log::{ExpectedVersion, Metadata, NewEvent, StreamAppend, StreamId};
use citydb_postgres::testkit::TestCluster;

use super::*;
use crate::probe::sqlite_writable;

fn one_event() -> Vec<StreamAppend> {
    let stream = StreamId::new("citizen", Uuid::now_v7()).expect("a valid stream id");
    let event = NewEvent::new("TestEvent", 1, &json!({ "n": 1 }), &Metadata::default())
        .expect("serialisable");
    vec![StreamAppend::new(
        stream,
        ExpectedVersion::NoStream,
        vec![event],
    )]
}

#[test]
fn store_names_parse_and_unknown_ones_are_refused() {
    assert_eq!("embedded".parse::<Store>(), Ok(Store::Embedded));
    assert_eq!("sqlite".parse::<Store>(), Ok(Store::Embedded));
    assert_eq!(
        "postgresql://u@h/db".parse::<Store>(),
        Ok(Store::Postgres("postgresql://u@h/db".into()))
    );
    let refused = "kurrentdb://h".parse::<Store>().expect_err("unknown");
    assert!(refused.contains("expected `embedded`"), "{refused}");
}

#[test]
fn the_access_log_search_path_is_added_to_the_url_unless_options_are_set() {
    assert_eq!(
        with_search_path("postgres://h/db", "s").expect("no options"),
        "postgres://h/db?options=-c%20search_path%3Ds"
    );
    assert_eq!(
        with_search_path("postgres://h/db?sslmode=disable", "s").expect("no options"),
        "postgres://h/db?sslmode=disable&options=-c%20search_path%3Ds"
    );
    assert!(matches!(
        with_search_path("postgres://h/db?options=-c%20x%3D1", "s"),
        Err(StoreError::Store(_))
    ));
}

#[test]
fn a_writer_holding_the_lock_counts_as_writable_and_a_missing_file_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log.db");
    let writer = rusqlite::Connection::open(&path).expect("open");
    writer
        .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t(x); BEGIN IMMEDIATE;")
        .expect("hold the write lock");
    assert_eq!(sqlite_writable(&path), Ok(()));
    writer.execute_batch("ROLLBACK;").expect("release");
    assert_eq!(sqlite_writable(&path), Ok(()));
    assert!(sqlite_writable(&dir.path().join("gone.db")).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_store_opens_two_files_in_a_new_data_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("new").join("data");
    let opened = open(&Store::Embedded, &data, &StoreConfig::default())
        .await
        .expect("opened");
    assert!(data.join("log.db").exists() && data.join("access-log.db").exists());
    opened.log.append(one_event()).await.expect("appended");
    assert_eq!(
        opened.log.head().await.expect("head").map(|h| h.position),
        Some(0)
    );
    assert_eq!(opened.access.v1.head().await.expect("head"), None);
    assert_eq!(opened.access.v2.first_seq().await.expect("v2 tables"), None);
    assert_eq!(opened.probe.check().await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_keeps_the_access_log_in_its_own_schema() {
    let Some(cluster) =
        TestCluster::shared_or_skip("the_postgres_store_keeps_the_access_log_in_its_own_schema")
    else {
        return;
    };
    let url = cluster.create_database().await.expect("a database");
    let opened = open(
        &Store::Postgres(url.clone()),
        Path::new("."),
        &StoreConfig::default(),
    )
    .await
    .expect("opened");
    opened
        .access
        .v1
        .append(one_event())
        .await
        .expect("appended");
    assert_eq!(opened.log.head().await.expect("head"), None);
    let db = citydb_postgres::testkit::connect(&url)
        .await
        .expect("connect");
    let counted: i64 = db
        .query_one(
            &format!("SELECT count(*) FROM {ACCESS_LOG_SCHEMA}.events"),
            &[],
        )
        .await
        .expect("the access log's table")
        .get(0);
    assert_eq!(counted, 1);
    // The v2 entries live beside the v1 events, in the same schema.
    let v2: i64 = db
        .query_one(
            &format!("SELECT count(*) FROM {ACCESS_LOG_SCHEMA}.access_entries"),
            &[],
        )
        .await
        .expect("the v2 table")
        .get(0);
    assert_eq!(v2, 0);
    assert_eq!(opened.probe.check().await, Ok(()));
}
