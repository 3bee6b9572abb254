//! Issue 15 item 4 end to end, on the real binary: a steward proposes redacting one event, a
//! different supervisor approves, the payload is blanked, `citydb verify` exits 0 and lists the
//! redacted positions, projections rebuilt afterwards still show the redacted state; the
//! steward cannot approve (FORBIDDEN), nor can a supervisor their own proposal; a restricted
//! record gives RESTRICTED to a service and its data to an auditor.

mod common;

use std::path::Path;

use serde_json::{Value, json};
use uuid::Uuid;

use common::binary::{Serving, run};
use common::{CHANGE_RESIDENCE, PRINCIPALS, REGISTER_CITIZEN, XROAD, change_residence, pin};

const ADDRESS: &str = "12 Lý Thái Tổ";
const GIVEN: &str = "Quỳnh";
const PLACEHOLDER: &str = "[redacted: 15/2026/QĐ-TA]";
const ORDER: &str = r#"{"documentNumber": "15/2026/QĐ-TA", "documentDate": "2026-03-02"}"#;

/// A principals file for `serve --config`, and each principal's token.
fn principals(
    dir: &Path,
) -> (
    std::path::PathBuf,
    std::collections::HashMap<&'static str, String>,
) {
    let mut toml = String::new();
    let mut tokens = std::collections::HashMap::new();
    for (id, role, groups, purposes) in PRINCIPALS {
        let token = citydb_api::Token::generate().unwrap();
        toml.push_str(&format!(
            "[[principal]]\nid = {id:?}\nrole = {role:?}\ntoken_hash = {:?}\nfield_groups = {groups:?}\npurposes = {purposes:?}\n\n",
            token.hash()
        ));
        tokens.insert(*id, token.as_str().to_owned());
    }
    let path = dir.join("principals.toml");
    std::fs::write(&path, toml).unwrap();
    (path, tokens)
}

struct Node {
    serving: Serving,
    tokens: std::collections::HashMap<&'static str, String>,
}

impl Node {
    async fn gql(&self, who: &str, query: &str, variables: Value) -> Value {
        let service = PRINCIPALS
            .iter()
            .any(|(id, role, _, _)| *id == who && *role == "service");
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if service {
            headers.extend(XROAD);
            headers.push(("X-Purpose", "social-insurance"));
        }
        self.serving
            .gql(&self.tokens[who], query, variables, &headers)
            .await
    }

    async fn ok(&self, who: &str, query: &str, variables: Value) -> Value {
        let body = self.gql(who, query, variables).await;
        assert!(body.get("errors").is_none(), "{who}: {query}\n{body:#}");
        body["data"].clone()
    }
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("OK")
}

async fn start(
    data: &Path,
    config: &Path,
    tokens: &std::collections::HashMap<&'static str, String>,
) -> Node {
    let serving = Serving::start(&[
        "--data",
        data.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    serving.wait_ready().await;
    Node {
        serving,
        tokens: tokens.clone(),
    }
}

const HISTORY: &str =
    r#"query($r: String!) { history(record: $r) { position eventType redacted data } }"#;
const CITIZEN: &str = r#"query($id: String!) { citizen(id: $id) {
  restricted name { given } permanentResidence { address } } }"#;
const SEARCH: &str =
    r#"query($name: String!) { citizens(search: $name) { edges { node { id } } } }"#;

fn mutation(name: &str, input: &str) -> String {
    format!("mutation($input: {input}!) {{ {name}(input: $input) {{ commandId position }} }}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_four_eyes_redaction_and_a_restriction_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (config, tokens) = principals(dir.path());
    let node = start(&data, &config, &tokens).await;

    let id = Uuid::now_v7();
    let record = format!("citizen-{id}");
    let input = common::register_citizen(
        id,
        &pin(1, true, 1990),
        "Nguyễn",
        "Thị",
        GIVEN,
        true,
        "1990",
    );
    node.ok("steward-1", REGISTER_CITIZEN, json!({ "input": input }))
        .await;
    node.ok(
        "steward-1",
        CHANGE_RESIDENCE,
        json!({ "input": change_residence(id, "11311", ADDRESS, "2020-01-01") }),
    )
    .await;
    let history = node.ok("auditor-1", HISTORY, json!({ "r": record })).await;
    let position_of = |t: &str| {
        history["history"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["eventType"] == t)
            .unwrap()["position"]
            .as_u64()
            .unwrap()
    };
    let (registered, moved) = (
        position_of("CitizenRegistered"),
        position_of("ResidenceChanged"),
    );

    // Propose (a steward), then approve: not by a steward, not by the proposer, by another
    // supervisor.
    let order: Value = serde_json::from_str(ORDER).unwrap();
    let propose = mutation("proposeRedaction", "ProposeRedactionInput");
    let approve = mutation("approveRedaction", "ApproveRedactionInput");
    for position in [registered, moved] {
        let proposal = json!({ "input": { "record": record, "position": position,
            "reason": "court order to erase", "legalBasis": order } });
        node.ok("steward-1", &propose, proposal).await;
        let approval = json!({ "input": { "record": record, "position": position } });
        let refused = node.gql("steward-1", &approve, approval.clone()).await;
        assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
        node.ok("supervisor-1", &approve, approval).await;
    }
    // Reason and order are required; a supervisor's own proposal is not theirs to approve.
    let no_reason = json!({ "input": { "record": record, "position": moved,
        "reason": " ", "legalBasis": order } });
    let missing = node.gql("steward-1", &propose, no_reason).await;
    assert_eq!(code(&missing), "INVALID_INPUT", "{missing}");
    node.ok(
        "steward-1",
        CHANGE_RESIDENCE,
        json!({ "input": change_residence(id, "11311", "3 Hàng Bài", "2026-04-01") }),
    )
    .await;
    let history = node.ok("auditor-1", HISTORY, json!({ "r": record })).await;
    let latest = history["history"].as_array().unwrap().last().unwrap()["position"].clone();
    let own = json!({ "input": { "record": record, "position": latest,
        "reason": "court order", "legalBasis": order } });
    node.ok("supervisor-1", &propose, own).await;
    let self_approved = node
        .gql(
            "supervisor-1",
            &approve,
            json!({ "input": { "record": record, "position": latest } }),
        )
        .await;
    assert_eq!(code(&self_approved), "FORBIDDEN", "{self_approved}");
    assert_eq!(
        self_approved["errors"][0]["extensions"]["reason"], "SELF_REVIEW",
        "{self_approved}"
    );

    let history = node.ok("auditor-1", HISTORY, json!({ "r": record })).await;
    let events = history["history"].as_array().unwrap();
    for position in [registered, moved] {
        let e = events.iter().find(|e| e["position"] == position).unwrap();
        assert_eq!(
            (e["redacted"].as_bool(), &e["data"]),
            (Some(true), &Value::Null)
        );
    }
    assert_eq!(
        events
            .iter()
            .filter(|e| e["eventType"] == "RedactionApproved")
            .count(),
        2
    );
    let shown = node.ok("auditor-1", CITIZEN, json!({ "id": record })).await;
    assert_eq!(shown["citizen"]["name"]["given"], PLACEHOLDER);
    assert_eq!(
        shown["citizen"]["permanentResidence"]["address"],
        "3 Hàng Bài"
    );

    // Restriction: a service is refused, an auditor and a steward still read.
    let restrict = mutation("restrictRecord", "RestrictRecordInput");
    node.ok(
        "steward-1",
        &restrict,
        json!({ "input": { "record": record, "reason": "objection to processing", "legalBasis": order } }),
    )
    .await;
    let refused = node
        .gql("social-insurance", CITIZEN, json!({ "id": record }))
        .await;
    assert_eq!(code(&refused), "RESTRICTED", "{refused}");
    for who in ["auditor-1", "steward-1"] {
        let read = node.ok(who, CITIZEN, json!({ "id": record })).await;
        assert_eq!(read["citizen"]["restricted"], true, "{who}");
    }
    node.serving.stop();

    // The binary's verify: intact, the two events and their commands' markers listed.
    let verified = run(&[
        "verify",
        "--data",
        data.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(verified.status.code(), Some(0), "{verified:?}");
    let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
    let listed: Vec<u64> = report["redacted"]["positions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(listed.len(), 4, "{report}");
    assert!(
        listed.contains(&registered) && listed.contains(&moved),
        "{report}"
    );

    // Projections rebuilt from the log: the same redacted state, nothing found by the name.
    let rebuilt = run(&["rebuild-projections", "--data", data.to_str().unwrap()]);
    assert_eq!(rebuilt.status.code(), Some(0), "{rebuilt:?}");
    // Closed cleanly by the rebuild (its WAL checkpointed), the log's files hold the originals
    // nowhere: the redaction zeroed the freed bytes (SQLite's secure_delete).
    for file in ["log.db", "log.db-wal", "projections.db"] {
        let bytes = std::fs::read(data.join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(ADDRESS), "the address is still in {file}");
    }
    let node = start(&data, &config, &tokens).await;
    let shown = node.ok("auditor-1", CITIZEN, json!({ "id": record })).await;
    assert_eq!(shown["citizen"]["name"]["given"], PLACEHOLDER);
    assert_eq!(
        shown["citizen"]["permanentResidence"]["address"],
        "3 Hàng Bài"
    );
    assert_eq!(shown["citizen"]["restricted"], true);
    let found = node.ok("steward-1", SEARCH, json!({ "name": GIVEN })).await;
    assert_eq!(found["citizens"]["edges"], json!([]), "{found}");
    let refused = node
        .gql("social-insurance", CITIZEN, json!({ "id": record }))
        .await;
    assert_eq!(code(&refused), "RESTRICTED", "{refused}");
    node.serving.stop();
}
