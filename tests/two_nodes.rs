//! Two (then three) API nodes on one PostgreSQL log, each with its own projections: a
//! steward's write on one node is visible on the other within a second, a node started later
//! builds its projections from the shared log, and the access log is shared too. The
//! PostgreSQL server is a throwaway cluster the test starts itself.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use uuid::Uuid;

use citydb_postgres::testkit::TestCluster;
use citydb_store::Store;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_sharing_a_postgres_log_see_each_others_writes() {
    let Some(cluster) =
        TestCluster::shared_or_skip("nodes_sharing_a_postgres_log_see_each_others_writes")
    else {
        return;
    };
    let url = cluster.create_database().await.unwrap();
    let a = start_on(Store::Postgres(url.clone())).await;
    let b = start_on(Store::Postgres(url.clone())).await;

    let id = Uuid::now_v7();
    let pin = pin(11, true, 1991);
    let input = register_citizen(id, &pin, "Đặng", "Thu", "Hà", true, "1991-03-08");
    a.ok("steward-1", REGISTER_CITIZEN, json!({ "input": input }))
        .await;

    // Node B's projector follows the shared log (LISTEN/NOTIFY): within a second.
    let started = Instant::now();
    let query = "query($pin: String!) { citizen(pin: $pin) { id name { full } } }";
    loop {
        let data = b.ok("auditor-1", query, json!({ "pin": pin })).await;
        if !data["citizen"].is_null() {
            assert_eq!(data["citizen"]["name"]["full"], "Đặng Thu Hà");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "node B did not see node A's write within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A write on B with A's last-seen version; both nodes agree on the result.
    let expected = json!({ "record": format!("citizen-{id}"), "version": 0 });
    b.ok("steward-2", CHANGE_RESIDENCE, json!({ "input": change_residence(id, "10507", "Số 2 Quang Trung", "2026-01-01"), "expected": expected })).await;
    // The same expected version on A is now stale: the version check is on the shared log.
    let body = a.gql("steward-1", CHANGE_RESIDENCE, json!({ "input": change_residence(id, "11311", "Số 4", "2026-01-02"), "expected": expected })).await;
    assert_eq!(
        body["errors"][0]["extensions"]["reason"], "STALE_VERSION",
        "{body}"
    );

    // A service reads on B; the auditor on A sees that read: the access log is shared.
    b.ok("social-insurance", query, json!({ "pin": pin })).await;
    let log = a
        .ok(
            "auditor-1",
            "query($c: String!) { accessLog(citizen: $c) { principal } }",
            json!({ "c": format!("citizen-{id}") }),
        )
        .await;
    assert!(
        log["accessLog"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["principal"] == "social-insurance"),
        "{log}"
    );

    // A node started later builds its projections from the shared log.
    let c = start_on(Store::Postgres(url.clone())).await;
    let head = c.node.log.head().await.unwrap().unwrap();
    c.node
        .projections
        .wait_for(head.position, Duration::from_secs(30))
        .await
        .unwrap();
    let data = c.ok("auditor-1", "query($pin: String!) { citizen(pin: $pin) { version permanentResidence { address } } }", json!({ "pin": pin })).await;
    assert_eq!(data["citizen"]["version"], 1);
    assert_eq!(
        data["citizen"]["permanentResidence"]["address"],
        "Số 2 Quang Trung"
    );
    let v = c
        .ok("auditor-1", "{ verifyLog { intact events } }", json!({}))
        .await;
    assert_eq!(v["verifyLog"]["intact"], true);
}
