//! A service can match its writes to the change feed: a mutation answers the feed entries it
//! produced (positions, types, command id), and the feed carries the same command id.

mod common;

use serde_json::json;
use uuid::Uuid;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_answers_the_feed_entries_it_produced() {
    let s = start().await;
    citizen(&s, 21, "Vũ", "Minh", "Châu", false, 1980).await;
    let id = Uuid::now_v7();
    let input = register_citizen(id, &pin(22, true, 1991), "Vũ", "Thị", "Hà", true, "1991");
    let data = s
        .ok(
            "steward-1",
            r#"mutation($input: RegisterCitizenInput!) {
                 registerCitizen(input: $input, reason: "khai sinh") {
                   commandId position events { position streamId eventType commandId }
                 }
               }"#,
            json!({ "input": input }),
        )
        .await;
    let written = &data["registerCitizen"];
    let events = written["events"].as_array().unwrap();
    assert!(!events.is_empty(), "{written}");
    for e in events {
        assert_eq!(e["commandId"], written["commandId"]);
        assert!(e["position"].as_i64().unwrap() < written["position"].as_i64().unwrap());
    }
    assert_eq!(events[0]["streamId"], format!("citizen-{id}"));
    assert_eq!(events[0]["eventType"], "CitizenRegistered");

    // The feed, read from just before the first entry, holds exactly these, with the same
    // command id (key and command-marker streams are not record changes).
    let after = events[0]["position"].as_i64().unwrap() - 1;
    let feed = s
        .ok(
            "auditor-1",
            "query($a: Int) { changes(after: $a) { changes { position streamId eventType commandId } } }",
            json!({ "a": after }),
        )
        .await;
    assert_eq!(&feed["changes"]["changes"], &written["events"]);
}
