//! Correction requests end to end on a real node: a citizen (principal built directly, as the
//! lead's citizen tokens will produce it) files, a steward acknowledges, the data is fixed
//! four-eyes, the steward resolves; overdue with an injected clock is recorded once.

mod common;

use async_graphql::Request;
use serde_json::{Value, json};
use uuid::Uuid;

use citydb_api::{Clock, Principal, RequestContext, Role};
use common::*;

fn citizen_ctx(record: Uuid) -> RequestContext {
    RequestContext {
        principal: Principal {
            id: format!("citizen-{record}"),
            role: Role::Citizen,
            // As a citizen token makes it (`CitizenClaims::principal`).
            field_groups: citydb_api::FieldGroup::ALL.into_iter().collect(),
            purposes: Default::default(),
            citizen: Some(record),
            issues_citizen_tokens: false,
        }
        .into(),
        end_user: None,
        case: None,
        purpose: None,
        correlation_id: Uuid::now_v7(),
    }
}

async fn as_citizen(s: &Server, record: Uuid, query: &str, vars: Value) -> Value {
    let request = Request::new(query)
        .variables(async_graphql::Variables::from_json(vars))
        .data(citizen_ctx(record));
    serde_json::to_value(s.node.schema.execute(request).await).unwrap()
}

const FILE: &str = "mutation($i: RequestCorrectionInput!) { requestCorrection(input: $i) { request { id status acknowledgeBy dueBy } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_files_and_a_steward_resolves_through_four_eyes() {
    let clock = Clock::fixed("2026-12-01".parse().unwrap());
    let c2 = clock.clone();
    let s = start_with(move |o| o.clock = c2).await;
    let (id, _) = citizen(&s, 5, "Đỗ", "Minh", "Khoa", false, 1988).await;
    let input = json!({ "field": "birth_date", "proposedValue": "1988-11-20", "reason": "thiếu ngày sinh", "evidence": ["GKS 45/1988"] });
    let body = as_citizen(&s, id, FILE, json!({ "i": input })).await;
    let req = &body["data"]["requestCorrection"]["request"];
    assert_eq!(req["status"], "SUBMITTED", "{body}");
    assert_eq!(req["acknowledgeBy"], "2026-12-03");
    assert_eq!(req["dueBy"], "2026-12-11");
    let rid = req["id"].as_str().unwrap().to_owned();
    // Other roles may not file.
    assert_eq!(
        code(&s.gql("steward-1", FILE, json!({ "i": input })).await),
        "FORBIDDEN"
    );
    s.ok("steward-1", "mutation($r: String!) { acknowledgeCorrectionRequest(request: $r) { request { status } } }", json!({ "r": rid })).await;
    let record = format!("citizen-{id}");
    let correction = Uuid::now_v7();
    s.ok("steward-1", "mutation($i: ProposeCorrectionInput!) { proposeCorrection(input: $i) { position } }", json!({ "i": {
        "record": record, "correction": correction,
        "changes": [{ "field": "birth_date", "old": "1988", "new": "1988-11-20" }],
        "reason": "theo yêu cầu", "legalBasis": { "documentNumber": "45/QĐ-UBND", "documentDate": "2026-11-02" } } })).await;
    const RESOLVE: &str = "mutation($r: String!, $c: String!) { resolveCorrectionRequest(request: $r, correction: $c) { request { status resolvedByCorrection history { eventType actor } } } }";
    let body = s
        .gql(
            "steward-1",
            RESOLVE,
            json!({ "r": rid, "c": correction.to_string() }),
        )
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    s.ok(
        "supervisor-1",
        "mutation($i: ApproveCorrectionInput!) { approveCorrection(input: $i) { position } }",
        json!({ "i": { "record": record, "correction": correction } }),
    )
    .await;
    let data = s
        .ok(
            "steward-1",
            RESOLVE,
            json!({ "r": rid, "c": correction.to_string() }),
        )
        .await;
    let r = &data["resolveCorrectionRequest"]["request"];
    assert_eq!(r["status"], "RESOLVED");
    assert_eq!(r["resolvedByCorrection"], correction.to_string());
    let types: Vec<&str> = r["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "CorrectionRequestSubmitted",
            "CorrectionRequestAcknowledged",
            "CorrectionRequestResolved"
        ]
    );
    assert_eq!(r["history"][0]["actor"], record);

    // Overdue: a second request, the clock moved past its acknowledgement deadline.
    let body = as_citizen(&s, id, FILE, json!({ "i": input })).await;
    let late = body["data"]["requestCorrection"]["request"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    clock.set("2026-12-04".parse().unwrap());
    let first = s.node.deadlines.run_once().await.unwrap();
    assert_eq!(first.recorded, 1);
    assert_eq!(first.overdue, 1);
    let again = s.node.deadlines.run_once().await.unwrap();
    assert_eq!(again.recorded, 0);
    let list = s
        .ok(
            "supervisor-1",
            "{ correctionRequests(overdue: true) { requests { id overdue dueBy } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list["correctionRequests"]["requests"][0]["id"],
        late.as_str()
    );
    let metrics = s
        .http
        .get(format!("http://{}/metrics", s.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("citydb_correction_requests_overdue 1"),
        "{metrics}"
    );
    // The citizen sees only their own requests; a service none.
    let mine = as_citizen(
        &s,
        id,
        "{ correctionRequests { requests { id } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        mine["data"]["correctionRequests"]["requests"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let other = as_citizen(
        &s,
        Uuid::now_v7(),
        "{ correctionRequests { requests { id } } }",
        json!({}),
    )
    .await;
    assert_eq!(
        other["data"]["correctionRequests"]["requests"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // Withdraw by the citizen.
    let w = as_citizen(&s, id, "mutation($r: String!) { withdrawCorrectionRequest(request: $r) { request { status overdue } } }", json!({ "r": late })).await;
    assert_eq!(
        w["data"]["withdrawCorrectionRequest"]["request"]["status"], "WITHDRAWN",
        "{w}"
    );
}
