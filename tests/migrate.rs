//! `citydb migrate`: an embedded log copied to PostgreSQL and back, hash for hash, through the
//! real binary; both sides verify and report the same head, and a broken source is refused.

use std::process::Command;

use citydb_postgres::testkit::TestCluster;

fn citydb(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_citydb"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// The `head: position P hash H` line `citydb verify` prints.
fn head(verify_output: &str) -> String {
    verify_output
        .lines()
        .find(|l| l.contains("head"))
        .unwrap_or_else(|| panic!("no head in {verify_output}"))
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_log_moves_to_postgres_and_back_hash_for_hash() {
    let Some(cluster) =
        TestCluster::shared_or_skip("an_embedded_log_moves_to_postgres_and_back_hash_for_hash")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a");
    let fixture = dir.path().join("f.ndjson");
    let d = data.to_str().unwrap();
    assert_eq!(
        citydb(&[
            "fixtures",
            "--citizens",
            "40",
            "--seed",
            "7",
            "--out",
            fixture.to_str().unwrap()
        ])
        .0,
        0
    );
    let (code, out) = citydb(&["import", "--data", d, fixture.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let (code, embedded) = citydb(&["verify", "--data", d]);
    assert_eq!(code, 0, "{embedded}");

    let url = cluster.create_database().await.unwrap();
    let log_db = data.join("log.db");
    let (code, out) = citydb(&["migrate", "--from", log_db.to_str().unwrap(), "--to", &url]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("both heads at position"), "{out}");
    let (code, on_pg) = citydb(&["verify", "--data", d, "--store", &url]);
    assert_eq!(code, 0, "{on_pg}");
    assert_eq!(
        head(&on_pg),
        head(&embedded),
        "PostgreSQL holds the same chain"
    );

    // Running it again copies nothing and still succeeds (resumable, idempotent).
    let (code, out) = citydb(&["migrate", "--from", log_db.to_str().unwrap(), "--to", &url]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("copied 0 events"), "{out}");

    // And back into a new embedded store.
    let back = dir.path().join("b");
    let (code, out) = citydb(&[
        "migrate",
        "--from",
        &url,
        "--to",
        back.join("log.db").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, round_trip) = citydb(&["verify", "--data", back.to_str().unwrap()]);
    assert_eq!(code, 0, "{round_trip}");
    assert_eq!(head(&round_trip), head(&embedded));

    // A tampered source is refused, and the target is left as it was.
    let conn = rusqlite::Connection::open(&log_db).unwrap();
    conn.execute(
        "UPDATE events SET data = replace(data, 'a', 'b') WHERE position = 5",
        [],
    )
    .unwrap();
    drop(conn);
    let fresh = dir.path().join("c").join("log.db");
    let (code, out) = citydb(&[
        "migrate",
        "--from",
        log_db.to_str().unwrap(),
        "--to",
        fresh.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("5"), "{out}");
}
