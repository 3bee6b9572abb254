//! Issue 15's "done when", on the demo as a newcomer runs it (`citydb serve --demo`): the demo
//! citizen reads their own record and sees the service's read of it, is refused on another
//! citizen, files a correction request that a steward acknowledges and resolves through a
//! four-eyes correction, and a supervisor-approved redaction blanks a payload while `citydb
//! verify` stays intact and reports the redaction.

use super::*;
use common::binary::Serving;
use serde_json::json;

const DEMO_PIN: &str = "030174835130";
const DEMO_RECORD: &str = "citizen-22ed2420-9431-8001-b22c-d4ed4c85775b";
const SERVICE: &[(&str, &str)] = &[
    ("X-Road-UserId", "officer-7"),
    ("X-Road-Issue", "HS-2026-0042"),
    ("X-Purpose", "demo"),
];

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("OK")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_citizens_rights_on_the_demo() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let server = Serving::start(&["--data", s(&data), "--demo"]);
    server.wait_ready().await;
    let tokens: Value =
        serde_json::from_slice(&std::fs::read(data.join("demo-tokens.json")).unwrap()).unwrap();
    let token = |role: &str| tokens[role].as_str().unwrap().to_owned();
    let ok = |body: Value| {
        assert!(body.get("errors").is_none(), "{body:#}");
        body["data"].clone()
    };

    // The service reads the citizen (officer, case, purpose); the citizen sees that read.
    ok(server
        .gql(
            &token("service"),
            "query($p: String!) { citizen(pin: $p) { birthDate } }",
            json!({ "p": DEMO_PIN }),
            SERVICE,
        )
        .await);
    let mine = ok(server
        .gql(
            &token("citizen"),
            "query($p: String!, $r: String!) { citizen(pin: $p) { id name { full } }
               accessLog(citizen: $r) { principal endUser case purpose fieldGroups } }",
            json!({ "p": DEMO_PIN, "r": DEMO_RECORD }),
            &[],
        )
        .await);
    assert_eq!(mine["citizen"]["id"], DEMO_RECORD);
    assert!(
        mine["accessLog"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["principal"] == "demo-service"
                && e["endUser"] == "officer-7"
                && e["case"] == "HS-2026-0042"
                && e["purpose"] == "demo"),
        "{mine:#}"
    );
    // Refused on another citizen.
    let other = server
        .gql(
            &token("citizen"),
            "{ citizen(pin: \"031190000001\") { id } }",
            json!({}),
            &[],
        )
        .await;
    assert_eq!(code(&other), "FORBIDDEN", "{other}");

    // A correction request: filed by the citizen, acknowledged by a steward, resolved through
    // a four-eyes correction (a steward proposes, a different supervisor approves).
    let filed = ok(server
        .gql(
            &token("citizen"),
            "mutation { requestCorrection(input: { field: \"name.given\", proposedValue: \"Hiển\",
               reason: \"Tên trên giấy khai sinh là Hiển\", evidence: [\"GKS 123/2026\"] })
               { request { id status acknowledgeBy dueBy } } }",
            json!({}),
            &[],
        )
        .await);
    let request = filed["requestCorrection"]["request"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(filed["requestCorrection"]["request"]["status"], "SUBMITTED");
    assert!(
        filed["requestCorrection"]["request"]["dueBy"].is_string(),
        "{filed}"
    );
    let acknowledged = ok(server
        .gql(
            &token("steward"),
            "mutation($r: String!) { acknowledgeCorrectionRequest(request: $r) { request { status proposedValue } } }",
            json!({ "r": request }),
            &[],
        )
        .await);
    assert_eq!(
        acknowledged["acknowledgeCorrectionRequest"]["request"]["status"],
        "ACKNOWLEDGED"
    );
    let correction = "0193e3a4-7c1b-7d2e-8f00-00000000c1a0";
    ok(server
        .gql(
            &token("steward"),
            "mutation($i: ProposeCorrectionInput!) { proposeCorrection(input: $i) { commandId } }",
            json!({ "i": { "record": DEMO_RECORD, "correction": correction,
                "changes": [{ "field": "name.given", "old": "Hiền", "new": "Hiển" }],
                "reason": "Theo yêu cầu đính chính của công dân",
                "legalBasis": { "documentNumber": "45/QĐ-UBND", "documentDate": "2026-11-02" } } }),
            &[],
        )
        .await);
    ok(server
        .gql(
            &token("supervisor"),
            "mutation($i: ApproveCorrectionInput!) { approveCorrection(input: $i) { commandId } }",
            json!({ "i": { "record": DEMO_RECORD, "correction": correction } }),
            &[],
        )
        .await);
    let resolved = ok(server
        .gql(
            &token("steward"),
            "mutation($r: String!, $c: String!) { resolveCorrectionRequest(request: $r, correction: $c)
               { request { status resolvedByCorrection } } }",
            json!({ "r": request, "c": correction }),
            &[],
        )
        .await);
    assert_eq!(
        resolved["resolveCorrectionRequest"]["request"]["status"],
        "RESOLVED"
    );
    // The citizen sees the whole path, and their corrected name.
    let path = ok(server
        .gql(
            &token("citizen"),
            "query($p: String!) { citizen(pin: $p) { name { full } }
               correctionRequests { requests { id status history { eventType } } } }",
            json!({ "p": DEMO_PIN }),
            &[],
        )
        .await);
    assert_eq!(path["citizen"]["name"]["full"], "Ngô Thị Hiển", "{path:#}");
    let mine = &path["correctionRequests"]["requests"][0];
    assert_eq!(
        (mine["id"].as_str(), mine["status"].as_str()),
        (Some(request.as_str()), Some("RESOLVED"))
    );
    let steps: Vec<&str> = mine["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["eventType"].as_str())
        .collect();
    assert!(
        steps.len() >= 3,
        "submitted, acknowledged, resolved: {steps:?}"
    );

    // A steward reading only the request's history is a logged read of the citizen's data.
    let steward_reads = |log: &Value| {
        log["accessLog"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["principal"] == "demo-steward")
            .count()
    };
    let access_log = "query($r: String!) { accessLog(citizen: $r, first: 100) { principal } }";
    let before = ok(server
        .gql(
            &token("auditor"),
            access_log,
            json!({ "r": DEMO_RECORD }),
            &[],
        )
        .await);
    ok(server
        .gql(
            &token("steward"),
            "query($r: String!) { correctionRequest(id: $r) { history { eventType } } }",
            json!({ "r": request }),
            &[],
        )
        .await);
    let after = ok(server
        .gql(
            &token("auditor"),
            access_log,
            json!({ "r": DEMO_RECORD }),
            &[],
        )
        .await);
    assert_eq!(steward_reads(&after), steward_reads(&before) + 1, "{after}");

    // A supervisor-approved redaction of the citizen's residence change.
    let history = ok(server
        .gql(
            &token("auditor"),
            "query($r: String!) { history(record: $r) { position eventType } }",
            json!({ "r": DEMO_RECORD }),
            &[],
        )
        .await);
    let moved = history["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventType"] == "ResidenceChanged")
        .expect("the demo citizen moved once")["position"]
        .as_u64()
        .unwrap();
    let order = json!({ "documentNumber": "12/2026/QĐ-TA", "documentDate": "2026-11-20" });
    ok(server
        .gql(
            &token("steward"),
            "mutation($i: ProposeRedactionInput!) { proposeRedaction(input: $i) { commandId } }",
            json!({ "i": { "record": DEMO_RECORD, "position": moved,
                "reason": "quyết định của Tòa án", "legalBasis": order } }),
            &[],
        )
        .await);
    ok(server
        .gql(
            &token("supervisor"),
            "mutation($i: ApproveRedactionInput!) { approveRedaction(input: $i) { commandId } }",
            json!({ "i": { "record": DEMO_RECORD, "position": moved } }),
            &[],
        )
        .await);
    let after = ok(server
        .gql(
            &token("auditor"),
            "query($r: String!) { history(record: $r) { position eventType redacted data } }",
            json!({ "r": DEMO_RECORD }),
            &[],
        )
        .await);
    let event = after["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["position"] == json!(moved))
        .unwrap()
        .clone();
    assert_eq!(
        (event["redacted"].clone(), event["data"].clone()),
        (json!(true), Value::Null)
    );

    // `citydb verify` (beside the running server): intact, and it reports the redaction.
    let out = citydb(&["verify", "--data", s(&data), "--format", "json"]);
    expect_code(&out, 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["outcome"], "success", "{report}");
    let positions = report["redacted"]["positions"].as_array().unwrap();
    assert!(positions.contains(&json!(moved)), "{report}");
    server.stop();
}
