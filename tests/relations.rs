//! What the console (issue 17) reads beyond a record's own fields: a parent's children, with the
//! family scope, the restriction and the access log of `father`/`mother`; and the redaction
//! proposals, on each record and as the supervisors' queue, for stewards, supervisors and
//! auditors only.

mod common;

use common::*;
use serde_json::{Value, json};
use uuid::Uuid;

const SET_PARENTS: &str = "mutation($i: SetParentsInput!) { setParents(input: $i) { position } }";
const CHILDREN: &str =
    "query($id: String!) { citizen(id: $id) { children { id name { full } birthDate } } }";
const ORDER: &str = "15/2026/QĐ-TA";

fn order() -> Value {
    json!({ "documentNumber": ORDER, "documentDate": "2026-03-02" })
}

/// Registers citizen `n` born on `birth` with these parents; returns its id.
async fn child(
    s: &Server,
    n: u32,
    given: &str,
    birth: &str,
    father: Option<Uuid>,
    mother: Option<Uuid>,
) -> Uuid {
    let id = Uuid::now_v7();
    let year: u16 = birth[..4].parse().unwrap();
    let mut input = register_citizen(id, &pin(n, true, year), "Trần", "Thị", given, true, birth);
    input["father"] = json!(father);
    input["mother"] = json!(mother);
    s.ok("steward-1", REGISTER_CITIZEN, json!({ "input": input }))
        .await;
    id
}

/// The ids of `parent`'s children as `who` reads them.
async fn children_of(s: &Server, who: &str, parent: Uuid) -> Vec<String> {
    let data = s
        .ok(who, CHILDREN, json!({ "id": format!("citizen-{parent}") }))
        .await;
    data["citizen"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

fn record(id: Uuid) -> String {
    format!("citizen-{id}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_s_children_follow_the_family_scope_restriction_and_access_log() {
    let s = start().await;
    let (father, _) = citizen(&s, 1, "Trần", "Văn", "Bình", false, 1960).await;
    let (mother, _) = citizen(&s, 2, "Lê", "Thị", "Hoa", true, 1962).await;
    let (other, _) = citizen(&s, 3, "Phạm", "Văn", "Tùng", false, 1958).await;
    let an = child(&s, 4, "An", "1990-05-01", Some(father), Some(mother)).await;
    let bao = child(&s, 5, "Bảo", "1988", Some(father), Some(mother)).await;
    let cuc = child(&s, 6, "Cúc", "1990", Some(father), None).await;

    // By birth date as recorded: a year alone before the full dates of that year.
    let data = s
        .ok("steward-1", CHILDREN, json!({ "id": record(father) }))
        .await;
    let listed = &data["citizen"]["children"];
    assert_eq!(listed[0]["name"]["full"], "Trần Thị Bảo", "{data}");
    assert_eq!(listed[0]["birthDate"], "1988");
    assert_eq!(
        children_of(&s, "steward-1", father).await,
        [record(bao), record(cuc), record(an)]
    );
    assert_eq!(
        children_of(&s, "auditor-1", mother).await,
        [record(bao), record(an)]
    );
    assert!(children_of(&s, "steward-1", an).await.is_empty());

    // A new father: the old one no longer lists her, at once (read-your-writes).
    s.ok(
        "steward-1",
        SET_PARENTS,
        json!({ "i": { "citizen": an, "father": other, "mother": mother } }),
    )
    .await;
    assert_eq!(
        children_of(&s, "steward-1", father).await,
        [record(bao), record(cuc)]
    );
    assert_eq!(children_of(&s, "steward-1", other).await, [record(an)]);

    // A service with the family group reads them, and the read is in the father's access log
    // as family data; a service without it is refused, naming the field.
    assert_eq!(
        children_of(&s, "social-insurance", father).await,
        [record(bao), record(cuc)]
    );
    let refused = s
        .gql("portal", CHILDREN, json!({ "id": record(father) }))
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    assert_eq!(
        refused["errors"][0]["extensions"]["field"], "children",
        "{refused}"
    );
    let log = s
        .ok(
            "auditor-1",
            "query($c: String!) { accessLog(citizen: $c) { principal fieldGroups } }",
            json!({ "c": record(father) }),
        )
        .await;
    assert!(
        log["accessLog"].as_array().unwrap().iter().any(|e| {
            e["principal"] == "social-insurance"
                && e["fieldGroups"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("family"))
        }),
        "{log:#}"
    );

    // A restricted parent: a service gets RESTRICTED, as for `father`; a steward still reads.
    s.ok(
        "steward-1",
        "mutation($i: RestrictRecordInput!) { restrictRecord(input: $i) { position } }",
        json!({ "i": { "record": record(father), "reason": "objection to processing",
            "legalBasis": order() } }),
    )
    .await;
    let restricted = s
        .gql(
            "social-insurance",
            CHILDREN,
            json!({ "id": record(father) }),
        )
        .await;
    assert_eq!(code(&restricted), "RESTRICTED", "{restricted}");
    assert_eq!(children_of(&s, "steward-1", father).await.len(), 2);
}

const OPEN: &str = "query($first: Int) { openRedactions(first: $first) { record proposedAt
  redaction { position eventType status proposedBy proposedAt reason legalBasisDocument legalBasisDate decidedBy decidedAt } } }";
const CITIZEN_REDACTIONS: &str = "query($id: String!) { citizen(id: $id) { redactions {
  position eventType eventHash status reason legalBasisDocument proposedBy proposedAt decidedBy decidedAt
  rejectionReason replacement } } }";

/// The log position of the first `event_type` event of `record`.
async fn position(s: &Server, record: &str, event_type: &str) -> u64 {
    let h = s
        .ok(
            "auditor-1",
            "query($r: String!) { history(record: $r) { position eventType } }",
            json!({ "r": record }),
        )
        .await;
    h["history"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventType"] == event_type)
        .unwrap_or_else(|| panic!("no {event_type} in {h}"))["position"]
        .as_u64()
        .unwrap()
}

async fn propose(s: &Server, who: &str, record: &str, position: u64) {
    s.ok(
        who,
        "mutation($i: ProposeRedactionInput!) { proposeRedaction(input: $i) { position } }",
        json!({ "i": { "record": record, "position": position,
            "reason": "court order to erase", "legalBasis": order() } }),
    )
    .await;
}

/// (record, position, status) of each open redaction.
async fn open(s: &Server, first: Option<i32>) -> Vec<(String, u64, String)> {
    let data = s.ok("supervisor-1", OPEN, json!({ "first": first })).await;
    data["openRedactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["record"].as_str().unwrap().to_owned(),
                o["redaction"]["position"].as_u64().unwrap(),
                o["redaction"]["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redactions_are_listed_to_stewards_supervisors_and_auditors_and_queued_until_decided() {
    let s = start().await;
    let (x, _) = citizen(&s, 1, "Nguyễn", "Thị", "Quỳnh", true, 1990).await;
    let citizen_id = record(x);
    s.ok(
        "steward-1",
        CHANGE_RESIDENCE,
        json!({ "input": change_residence(x, "11311", "12 Lý Thái Tổ", "2020-01-01") }),
    )
    .await;
    let business = Uuid::now_v7();
    s.ok(
        "steward-1",
        "mutation($i: RegisterBusinessInput!) { registerBusiness(input: $i) { position } }",
        json!({ "i": {
            "business": business, "code": "0200566628",
            "names": { "vietnamese": "Công ty TNHH Cảng Xanh" },
            "headOffice": { "commune": "11311", "street": "Số 1 Điện Biên Phủ" },
            "legalRepresentatives": [x], "charterCapital": 5000000000u64,
            "businessLines": ["5210"], "registrationDate": "2024-03-01",
            "origin": { "kind": "REGISTRATION" } } }),
    )
    .await;
    let parcel = Uuid::now_v7();
    s.ok(
        "steward-1",
        "mutation($i: RegisterParcelInput!) { registerParcel(input: $i) { position } }",
        json!({ "i": { "parcel": parcel, "key": "11311/10507:12/345", "area": "125.50",
            "landUse": ["ODT"], "address": "Thửa 345",
            "holders": [{ "holder": { "kind": "CITIZEN", "id": x }, "share": "1/1" }] } }),
    )
    .await;
    let (business_id, parcel_id) = (format!("business-{business}"), format!("parcel-{parcel}"));
    let registered = position(&s, &citizen_id, "CitizenRegistered").await;
    let moved = position(&s, &citizen_id, "ResidenceChanged").await;
    let business_registered = position(&s, &business_id, "BusinessRegistered").await;
    let parcel_registered = position(&s, &parcel_id, "ParcelRegistered").await;

    propose(&s, "steward-1", &citizen_id, moved).await;
    propose(&s, "steward-2", &citizen_id, registered).await;
    propose(&s, "steward-1", &business_id, business_registered).await;
    propose(&s, "steward-1", &parcel_id, parcel_registered).await;
    let pending = |r: &str, p: u64| (r.to_owned(), p, "PENDING".to_owned());
    assert_eq!(
        open(&s, None).await,
        [
            pending(&citizen_id, moved),
            pending(&citizen_id, registered),
            pending(&business_id, business_registered),
            pending(&parcel_id, parcel_registered),
        ]
    );
    assert_eq!(open(&s, Some(2)).await.len(), 2);
    let data = s.ok("auditor-1", OPEN, json!({ "first": 1 })).await;
    let first = &data["openRedactions"][0];
    assert_eq!(
        first["redaction"]["eventType"], "ResidenceChanged",
        "{data}"
    );
    assert_eq!(first["redaction"]["proposedBy"], "steward-1");
    assert_eq!(first["redaction"]["reason"], "court order to erase");
    assert_eq!(first["redaction"]["legalBasisDocument"], ORDER);
    assert_eq!(first["redaction"]["legalBasisDate"], "2026-03-02");
    assert!(first["redaction"]["decidedBy"].is_null());
    assert!(
        first["proposedAt"].as_str().unwrap().ends_with('Z'),
        "{data}"
    );
    assert_eq!(first["redaction"]["proposedAt"], first["proposedAt"]);
    assert!(first["redaction"]["decidedAt"].is_null());

    // Decided: approved or rejected, they leave the queue and stay on the record.
    s.ok(
        "supervisor-1",
        "mutation($i: ApproveRedactionInput!) { approveRedaction(input: $i) { position } }",
        json!({ "i": { "record": citizen_id, "position": moved } }),
    )
    .await;
    s.ok(
        "supervisor-1",
        "mutation($i: RejectRedactionInput!) { rejectRedaction(input: $i) { position } }",
        json!({ "i": { "record": citizen_id, "position": registered,
            "reason": "the order names another person" } }),
    )
    .await;
    assert_eq!(
        open(&s, None).await,
        [
            pending(&business_id, business_registered),
            pending(&parcel_id, parcel_registered),
        ]
    );
    // Proposed again after the rejection: listed once, the pending one.
    propose(&s, "steward-1", &citizen_id, registered).await;
    assert_eq!(
        open(&s, None).await,
        [
            pending(&business_id, business_registered),
            pending(&parcel_id, parcel_registered),
            pending(&citizen_id, registered),
        ]
    );

    let data = s
        .ok("auditor-1", CITIZEN_REDACTIONS, json!({ "id": citizen_id }))
        .await;
    let listed = data["citizen"]["redactions"].as_array().unwrap();
    let summary: Vec<(u64, &str, &str, &str, Option<&str>)> = listed
        .iter()
        .map(|r| {
            (
                r["position"].as_u64().unwrap(),
                r["status"].as_str().unwrap(),
                r["proposedBy"].as_str().unwrap(),
                r["decidedBy"].as_str().unwrap_or("-"),
                r["rejectionReason"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (moved, "APPROVED", "steward-1", "supervisor-1", None),
            (
                registered,
                "REJECTED",
                "steward-2",
                "supervisor-1",
                Some("the order names another person")
            ),
            (registered, "PENDING", "steward-1", "-", None),
        ]
    );
    // Times from the record's redaction events: each decision after its own proposal, the
    // pending proposal after the rejection of the first.
    let at = |i: usize, field: &str| listed[i][field].as_str().map(str::to_owned);
    for i in 0..2 {
        let (proposed, decided) = (at(i, "proposedAt"), at(i, "decidedAt"));
        assert!(
            proposed.is_some() && decided.is_some() && proposed <= decided,
            "{data:#}"
        );
    }
    assert!(at(2, "decidedAt").is_none(), "{data:#}");
    assert!(at(2, "proposedAt") >= at(1, "decidedAt"), "{data:#}");
    assert_eq!(listed[0]["eventType"], "ResidenceChanged");
    assert_eq!(listed[0]["eventHash"].as_str().unwrap().len(), 64);
    assert_eq!(
        listed[0]["replacement"]["address"],
        format!("[redacted: {ORDER}]"),
        "{data}"
    );
    for (who, query, id) in [
        (
            "steward-1",
            "query($id: String!) { business(id: $id) { redactions { position status } } }",
            &business_id,
        ),
        (
            "supervisor-1",
            "query($id: String!) { parcel(id: $id) { redactions { position status } } }",
            &parcel_id,
        ),
    ] {
        let data = s.ok(who, query, json!({ "id": id })).await;
        let kind = if id.starts_with("business") {
            "business"
        } else {
            "parcel"
        };
        let position = if kind == "business" {
            business_registered
        } else {
            parcel_registered
        };
        assert_eq!(
            data[kind]["redactions"],
            json!([{ "position": position, "status": "PENDING" }]),
            "{data}"
        );
    }

    // Listing them is a read of the citizen's identity data: in the access log.
    let log = s
        .ok(
            "auditor-1",
            "query($c: String!) { accessLog(citizen: $c) { principal fieldGroups } }",
            json!({ "c": citizen_id }),
        )
        .await;
    assert!(
        log["accessLog"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["principal"] == "supervisor-1" && e["fieldGroups"] == json!(["identity"])),
        "{log:#}"
    );

    // Nobody else: services (even with every field group), admins.
    for (who, query, variables) in [
        (
            "social-insurance",
            "query($id: String!) { citizen(id: $id) { redactions { position } } }",
            json!({ "id": citizen_id }),
        ),
        (
            "social-insurance",
            "query($id: String!) { parcel(id: $id) { redactions { position } } }",
            json!({ "id": parcel_id }),
        ),
        (
            "tax-office",
            "query($id: String!) { business(id: $id) { redactions { position } } }",
            json!({ "id": business_id }),
        ),
        ("social-insurance", OPEN, json!({})),
        ("admin-1", OPEN, json!({})),
    ] {
        let body = s.gql(who, query, variables).await;
        assert_eq!(code(&body), "FORBIDDEN", "{who}: {query}: {body}");
    }
}
