//! Faults a client meets, end to end over HTTP: each class has its own code with
//! `extensions.retryable` and words saying what happened to the write, and a write that
//! committed is never reported as if it had not.
//!
//! - `STORE_FULL`: the embedded logs on the test kit's VFS, whose writes answer `SQLITE_FULL`
//!   (for a mutation, and for a personal read whose access-log entry cannot be written);
//! - `STORE_UNAVAILABLE`: a PostgreSQL server stopped under a running node;
//! - `STORE_READ_ONLY`: a PostgreSQL database that refuses writes, as a hot standby does;
//! - `COMMITTED_NOT_VISIBLE`: the node's projections held off by a lock on `projections.db`
//!   while the append commits;
//! - `LOG_DAMAGED`, `PROJECTION_DAMAGED`: `log.db` and `projections.db` edited under a running
//!   node.

mod common;

use std::path::PathBuf;

use serde_json::{Value, json};
use uuid::Uuid;

use citydb_postgres::testkit::TestCluster;
use citydb_sqlite::testkit::PowerCutVfs;
use citydb_store::{Store, StoreConfig};
use common::*;

fn register(n: u32, command_id: Uuid) -> Value {
    json!({
        "input": register_citizen(Uuid::now_v7(), &pin(n, true, 1990), "Trần", "Thị", "Mai", true, "1990-03-04"),
        "commandId": command_id.to_string(),
    })
}

const REGISTER_WITH_ID: &str = r#"mutation($input: RegisterCitizenInput!, $commandId: String) {
  registerCitizen(input: $input, commandId: $commandId, reason: "khai sinh") {
    commandId alreadyExecuted position
  }
}"#;

/// The first error's extensions.
fn extensions(body: &Value) -> &Value {
    &body["errors"][0]["extensions"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_store_full_and_the_same_command_succeeds_afterwards() {
    let vfs = PowerCutVfs::register().expect("register the VFS");
    let mut config = StoreConfig::default();
    config.sqlite.vfs = Some(vfs.name().to_owned());
    let s = start_with_store(Store::Embedded, config, |_| {}).await;
    s.ok("steward-1", REGISTER_WITH_ID, register(1, Uuid::now_v7()))
        .await;

    vfs.fail_writes(Some(rusqlite::ffi::SQLITE_FULL));
    let command_id = Uuid::now_v7();
    let variables = register(2, command_id);
    let body = s
        .gql("steward-1", REGISTER_WITH_ID, variables.clone())
        .await;
    let ext = extensions(&body);
    assert_eq!(ext["code"], "STORE_FULL", "{body}");
    assert_eq!(ext["retryable"], true, "{body}");
    assert_eq!(ext["commandId"], command_id.to_string(), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("nothing was written"), "{message}");
    // A personal read cannot be recorded in the access log: withheld, and said why.
    let body = s
        .gql(
            "social-insurance",
            "query($pin: String!) { citizen(pin: $pin) { name { full } } }",
            json!({ "pin": pin(1, true, 1990) }),
        )
        .await;
    assert_eq!(code(&body), "STORE_FULL", "{body}");
    assert!(
        body["data"]["citizen"].is_null(),
        "data served unrecorded: {body}"
    );

    // Retried with the same command id once there is room: written once.
    vfs.fail_writes(None);
    let data = s.ok("steward-1", REGISTER_WITH_ID, variables).await;
    assert_eq!(data["registerCitizen"]["commandId"], command_id.to_string());
    assert_eq!(data["registerCitizen"]["alreadyExecuted"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_postgresql_answers_store_unavailable() {
    let cluster = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .expect("join")
        .expect("cannot start a private PostgreSQL cluster");
    let url = cluster.create_database().await.expect("database");
    let s = start_on(Store::Postgres(url)).await;
    s.ok("steward-1", REGISTER_WITH_ID, register(3, Uuid::now_v7()))
        .await;

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster
    })
    .await
    .expect("join");
    let command_id = Uuid::now_v7();
    let body = s
        .gql("steward-1", REGISTER_WITH_ID, register(4, command_id))
        .await;
    let ext = extensions(&body);
    assert_eq!(ext["code"], "STORE_UNAVAILABLE", "{body}");
    assert_eq!(ext["retryable"], true, "{body}");
    assert_eq!(ext["commandId"], command_id.to_string(), "{body}");
    // Reads fail the same way, not as INTERNAL.
    let body = s
        .gql("auditor-1", "{ verifyLog { intact } }", json!({}))
        .await;
    assert_eq!(code(&body), "STORE_UNAVAILABLE", "{body}");
    drop(s);
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .expect("join");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_postgresql_answers_store_read_only() {
    let cluster = TestCluster::shared().expect("cannot start the PostgreSQL test cluster");
    let url = cluster.create_database().await.expect("database");
    let s = start_on(Store::Postgres(url.clone())).await;
    s.ok("steward-1", REGISTER_WITH_ID, register(7, Uuid::now_v7()))
        .await;
    // The database turns read-only under the running node, as after a failover to a standby:
    // new sessions are read-only, and the node's sessions are cut.
    let database = url.rsplit('/').next().expect("database name").to_owned();
    let admin = citydb_postgres::testkit::connect(&cluster.url("postgres"))
        .await
        .expect("admin");
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {database} SET default_transaction_read_only = on;
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ))
        .await
        .expect("make the database read-only");

    // The cut sessions may first answer STORE_UNAVAILABLE; the reconnected ones are read-only.
    let mut answers = Vec::new();
    for _ in 0..5 {
        let command_id = Uuid::now_v7();
        let body = s
            .gql("steward-1", REGISTER_WITH_ID, register(8, command_id))
            .await;
        let ext = extensions(&body).clone();
        assert_eq!(ext["retryable"], true, "{body}");
        assert_eq!(ext["commandId"], command_id.to_string(), "{body}");
        answers.push(code(&body));
        if answers.last().is_some_and(|c| c == "STORE_READ_ONLY") {
            break;
        }
    }
    assert_eq!(
        answers.last().map(String::as_str),
        Some("STORE_READ_ONLY"),
        "{answers:?}"
    );
    assert!(
        answers[..answers.len() - 1]
            .iter()
            .all(|c| c == "STORE_UNAVAILABLE"),
        "{answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_write_whose_read_back_fails_says_it_is_durable() {
    let mut data_dir = PathBuf::new();
    let s = start_with(|o| data_dir = o.data_dir.clone()).await;
    s.ok("steward-1", REGISTER_WITH_ID, register(5, Uuid::now_v7()))
        .await;

    // Hold the projections' write lock: the append commits, the projections cannot apply it
    // within the read-your-writes wait.
    let blocker = rusqlite::Connection::open(data_dir.join("projections.db")).expect("open");
    blocker
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("lock the projections");
    let command_id = Uuid::now_v7();
    let body = s
        .gql("steward-1", REGISTER_WITH_ID, register(6, command_id))
        .await;
    blocker.execute_batch("ROLLBACK").expect("unlock");

    let ext = extensions(&body);
    assert_eq!(ext["code"], "COMMITTED_NOT_VISIBLE", "{body}");
    assert_eq!(ext["retryable"], false, "{body}");
    assert_eq!(ext["commandId"], command_id.to_string(), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("durable"), "{message}");
    // The position is the write's: its last event is in the log, there.
    let position = ext["position"].as_u64().expect("position");
    let events = s.node.log.read_all(position, 1).await.expect("read");
    let metadata: Value = serde_json::from_slice(&events[0].metadata).expect("metadata");
    assert_eq!(
        metadata["causation_id"],
        command_id.to_string(),
        "{metadata}"
    );
}

/// A file of ours damaged under a running node answers a code of its own, never `INTERNAL`:
/// an event whose hash is no longer 32 bytes `LOG_DAMAGED` (for the auditor reading its
/// history), a stored state that no longer decodes `PROJECTION_DAMAGED` (for a service
/// reading the record). Neither is retryable, and neither answer names the file or the row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_files_answer_their_own_codes() {
    let s = start().await;
    let variables = register(7, Uuid::now_v7());
    let id = variables["input"]["citizen"].as_str().unwrap().to_owned();
    s.ok("steward-1", REGISTER_WITH_ID, variables).await;
    let record = format!("citizen-{id}");
    const HISTORY: &str = "query($r: String!) { history(record: $r) { eventType hash } }";
    let intact = s.ok("auditor-1", HISTORY, json!({ "r": record })).await;
    assert_eq!(intact["history"][0]["eventType"], "CitizenRegistered");

    edit_row(
        &s.data_dir().join("log.db"),
        "UPDATE events SET hash = X'00' WHERE stream_id = ?1",
        &record,
    );
    let body = s.gql("auditor-1", HISTORY, json!({ "r": record })).await;
    assert_eq!(code(&body), "LOG_DAMAGED", "{body}");
    assert_eq!(extensions(&body)["retryable"], false, "{body}");
    assert!(body["data"].is_null(), "{body}");
    assert!(
        !body.to_string().contains("32 bytes"),
        "detail leaked: {body}"
    );

    edit_row(
        &s.data_dir().join("projections.db"),
        "UPDATE records SET state = '{\"kind\":' WHERE record_id = ?1",
        &record,
    );
    let body = s
        .gql(
            "social-insurance",
            "query($id: String!) { citizen(id: $id) { name { full } sex } }",
            json!({ "id": record }),
        )
        .await;
    assert_eq!(code(&body), "PROJECTION_DAMAGED", "{body}");
    assert_eq!(extensions(&body)["retryable"], false, "{body}");
    assert!(body["data"]["citizen"].is_null(), "{body}");
    assert!(!body.to_string().contains(&record), "detail leaked: {body}");
}

/// A page of `log.db` that SQLite itself finds damaged (here the stream index's root moved onto
/// the events table's, as a stray write into the file would leave it) is `LOG_DAMAGED` too, for
/// reads and for writes: not `INTERNAL`, not retryable, the engine's words kept out of the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_the_log_that_sqlite_finds_damaged_answers_log_damaged() {
    let s = start().await;
    let variables = register(8, Uuid::now_v7());
    let record = format!(
        "citizen-{}",
        variables["input"]["citizen"].as_str().unwrap()
    );
    s.ok("steward-1", REGISTER_WITH_ID, variables).await;
    const HISTORY: &str = "query($r: String!) { history(record: $r) { eventType } }";
    s.ok("auditor-1", HISTORY, json!({ "r": record })).await;

    let conn = rusqlite::Connection::open(s.data_dir().join("log.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let cookie: i64 = conn
        .query_row("PRAGMA schema_version", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch(&format!(
        "PRAGMA writable_schema = ON;
         UPDATE sqlite_schema SET rootpage =
             (SELECT rootpage FROM sqlite_schema WHERE name = 'events')
             WHERE name = 'events_by_stream';
         PRAGMA schema_version = {};",
        cookie + 1
    ))
    .unwrap();
    drop(conn);

    let body = s.gql("auditor-1", HISTORY, json!({ "r": record })).await;
    assert_eq!(code(&body), "LOG_DAMAGED", "{body}");
    assert_eq!(extensions(&body)["retryable"], false, "{body}");
    assert!(body["data"].is_null(), "{body}");
    assert!(
        !body.to_string().contains("malformed"),
        "detail leaked: {body}"
    );

    let body = s
        .gql("steward-1", REGISTER_WITH_ID, register(9, Uuid::now_v7()))
        .await;
    assert_eq!(code(&body), "LOG_DAMAGED", "{body}");
    assert!(
        !body.to_string().contains("malformed"),
        "detail leaked: {body}"
    );
}

/// Runs `sql` (one `?1`: `record`) on a file a node has open, as someone editing it outside
/// citydb would; it must change exactly one row.
fn edit_row(path: &std::path::Path, sql: &str, record: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    assert_eq!(conn.execute(sql, [record]).unwrap(), 1, "{sql}");
}
