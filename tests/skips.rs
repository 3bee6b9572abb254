//! The README's `cargo test --workspace` passes on a machine without PostgreSQL: a test whose
//! server is missing prints a SKIPPED line naming the install command and passes, and
//! `CITYDB_REQUIRE_ALL=1` (set by `.ci/run`) makes the same test fail.
//!
//! Checked for real: this test binary runs its own PostgreSQL-backed test again in a child
//! process, with the PostgreSQL binaries out of reach (`CITYDB_PG_BIN` names an empty
//! directory, which the testkit then searches alone).

use std::process::{Command, Output};

use citydb_log::EventLog;
use citydb_postgres::testkit::{REQUIRE_ALL, TestCluster};
use citydb_postgres::{PostgresConfig, PostgresLog};

/// A test that needs a PostgreSQL server: a fresh database holds an empty log.
#[tokio::test]
async fn a_fresh_postgres_log_is_empty() {
    let Some(cluster) = TestCluster::shared_or_skip("a_fresh_postgres_log_is_empty") else {
        return;
    };
    let url = cluster.create_database().await.unwrap();
    let log = PostgresLog::connect(&url, PostgresConfig::default())
        .await
        .unwrap();
    assert_eq!(log.head().await.unwrap(), None);
}

fn rerun_without_postgres(require_all: bool) -> Output {
    let nowhere = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "a_fresh_postgres_log_is_empty",
            "--exact",
            "--test-threads=1",
        ])
        .env("CITYDB_PG_BIN", nowhere.path())
        .env_remove(REQUIRE_ALL);
    if require_all {
        child.env(REQUIRE_ALL, "1");
    }
    child.output().unwrap()
}

#[test]
fn without_postgres_a_test_is_skipped_loudly_unless_all_are_required() {
    let skipped = rerun_without_postgres(false);
    let (out, err) = (
        String::from_utf8_lossy(&skipped.stdout),
        String::from_utf8_lossy(&skipped.stderr),
    );
    assert!(skipped.status.success(), "{out}\n{err}");
    assert!(out.contains("1 passed"), "{out}");
    assert!(
        err.contains("SKIPPED a_fresh_postgres_log_is_empty")
            && err.contains("apt-get install postgresql"),
        "the skip was not announced:\n{err}"
    );

    let required = rerun_without_postgres(true);
    let (out, err) = (
        String::from_utf8_lossy(&required.stdout),
        String::from_utf8_lossy(&required.stderr),
    );
    assert!(!required.status.success(), "{out}\n{err}");
    assert!(out.contains("1 failed"), "{out}");
    assert!(
        format!("{out}{err}").contains("SKIPPED a_fresh_postgres_log_is_empty"),
        "{out}\n{err}"
    );
}
