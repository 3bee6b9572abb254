//! Every operation in `graphql/examples/` runs, in order, against a real server loaded with the
//! demo fixture, as the role its header names, without an error and with data.

mod common;

use std::collections::BTreeMap;

use serde_json::Value;

use citydb_registry::CommandRequest;
use common::*;

/// The principal of the test configuration that plays each role named in an example.
fn principal(role: &str) -> &'static str {
    match role {
        "service" => "social-insurance",
        "steward" => "steward-1",
        "supervisor" => "supervisor-1",
        "auditor" => "auditor-1",
        "admin" => "admin-1",
        other => panic!("unknown role {other:?} in an example"),
    }
}

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix(&format!("# {name}:")))
        .map(str::trim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_runs_against_the_demo_data() {
    let s = start().await;
    let fixture = include_str!("../fixtures/demo.ndjson");
    for (n, line) in fixture.lines().enumerate() {
        let request: CommandRequest = serde_json::from_str(line).unwrap();
        s.node
            .registry
            .execute(request)
            .await
            .unwrap_or_else(|e| panic!("demo line {}: {e}", n + 1));
    }
    let head = s.node.log.head().await.unwrap().unwrap();
    s.node
        .projections
        .wait_for(head.position, std::time::Duration::from_secs(60))
        .await
        .unwrap();

    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/graphql/examples");
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "graphql") {
            files.insert(
                path.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(&path).unwrap(),
            );
        }
    }
    assert!(files.len() >= 10, "examples went missing");
    let mut roles = std::collections::BTreeSet::new();
    for (name, text) in &files {
        let role = header(text, "As")
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("{name}: no `# As:` header"));
        roles.insert(role.to_owned());
        let variables: Value = serde_json::from_str(header(text, "Variables").unwrap_or("{}"))
            .unwrap_or_else(|e| panic!("{name}: bad variables: {e}"));
        let body = s.gql(principal(role), text, variables).await;
        assert!(body.get("errors").is_none(), "{name} failed: {body:#}");
        let data = body["data"]
            .as_object()
            .unwrap_or_else(|| panic!("{name}: no data: {body}"));
        for (field, value) in data {
            assert!(!value.is_null(), "{name}: `{field}` is null");
        }
    }
    assert_eq!(
        roles.len(),
        5,
        "every kind of user has an example: {roles:?}"
    );

    // As of position 2 the first demo citizen had only just been registered.
    let asof = s.ok("auditor-1", &files["10-auditor-as-of.graphql"], serde_json::json!({ "id": "citizen-22ed2420-9431-8001-b0a7-b5aa9efd24c5", "position": 2 })).await;
    assert_eq!(asof["then"]["version"], 0);
    assert!(asof["then"]["spouse"].is_null());
    assert!(asof["now"]["version"].as_i64().unwrap() > 0);
    assert!(!asof["now"]["spouse"].is_null());

    // The tour's steward and supervisor steps really changed the record.
    let data = s
        .ok(
            "auditor-1",
            "{ citizen(pin: \"030174835130\") { name { given } permanentResidence { address } } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(data["citizen"]["name"]["given"], "Hiển");
    assert_eq!(
        data["citizen"]["permanentResidence"]["address"],
        "Số 8 phố Minh Khai"
    );
}
