//! Valid time on events (issue 16, item 1), through the GraphQL API of a real node: each event
//! of a record's history says from when its fact holds and on what basis — its own data, the
//! command's `effectiveAt` (kept in the hashed metadata), or the day it was recorded — and a
//! correction says whether it fixes the past or changes from a date. A command whose input
//! states its own date refuses a second one.

mod common;

use serde_json::{Value, json};
use uuid::Uuid;

use common::*;

const HISTORY: &str = r#"query($r: String!) { history(record: $r) {
  eventType metadata valid { from basis field correction } } }"#;

async fn history(s: &Server, record: &str) -> Vec<Value> {
    let data = s.ok("auditor-1", HISTORY, json!({ "r": record })).await;
    data["history"].as_array().cloned().unwrap_or_default()
}

fn valid_of<'a>(events: &'a [Value], event_type: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["eventType"] == event_type)
        .map(|e| &e["valid"])
        .collect()
}

/// Today in Hải Phòng (UTC+7), `YYYY-MM-DD`.
fn today_in_vietnam() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 7 * 3600;
    let (y, m, d) = citydb_domain::date::civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_register_event_says_from_when_it_holds() {
    let s = start().await;
    let (child, _) = citizen(&s, 31, "Phạm", "Minh", "An", false, 2010).await;
    let (father, _) = citizen(&s, 32, "Phạm", "Văn", "Bình", false, 1980).await;
    let record = format!("citizen-{child}");

    // Data states it: the birth for a registration, `since` for a move.
    s.ok(
        "steward-1",
        CHANGE_RESIDENCE,
        json!({ "input": change_residence(child, "11311", "Số 8 phố Minh Khai", "2026-10-01") }),
    )
    .await;
    // No date in the input: the command's effectiveAt, kept in the hashed metadata.
    s.ok(
        "steward-1",
        r#"mutation($i: SetParentsInput!) { setParents(input: $i, effectiveAt: "2010-03-15",
             reason: "khai sinh bổ sung") { position } }"#,
        json!({ "i": { "citizen": child, "father": father } }),
    )
    .await;
    let events = history(&s, &record).await;
    assert_eq!(
        valid_of(&events, "CitizenRegistered"),
        [&json!({ "from": "2010", "basis": "STATED", "field": "birth_date", "correction": null })]
    );
    assert_eq!(
        valid_of(&events, "ResidenceChanged"),
        [&json!({ "from": "2026-10-01", "basis": "STATED", "field": "since", "correction": null })]
    );
    assert_eq!(
        valid_of(&events, "ParentsSet"),
        [
            &json!({ "from": "2010-03-15", "basis": "EFFECTIVE_AT", "field": null, "correction": null })
        ]
    );
    let parents_set = events
        .iter()
        .find(|e| e["eventType"] == "ParentsSet")
        .unwrap();
    assert_eq!(parents_set["metadata"]["effective_at"], "2010-03-15");
    // The other events of the same record carry no effective_at: their bytes are as before.
    assert!(
        events
            .iter()
            .filter(|e| e["eventType"] != "ParentsSet")
            .all(|e| e["metadata"].get("effective_at").is_none()),
        "{events:?}"
    );

    // Nothing stated: the day it was recorded, in Vietnam's time zone.
    let parcel = json!({
        "parcel": Uuid::now_v7(), "key": "11311/11311:12/346", "area": "80",
        "landUse": ["ODT"], "address": "Số 10 phố Minh Khai",
        "holders": [{ "holder": { "kind": "CITIZEN", "id": father }, "share": "1" }]
    });
    let done = s
        .ok(
            "steward-1",
            "mutation($i: RegisterParcelInput!) { registerParcel(input: $i) { changed { id } } }",
            json!({ "i": parcel }),
        )
        .await;
    let parcel_id = done["registerParcel"]["changed"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let today = today_in_vietnam();
    let events = history(&s, &parcel_id).await;
    assert_eq!(
        valid_of(&events, "ParcelRegistered"),
        [&json!({ "from": today, "basis": "RECORDED", "field": null, "correction": null })]
    );

    // A late-registered death holds from its (partial) date, not from the day it was recorded.
    s.ok(
        "steward-1",
        "mutation($i: RecordDeathInput!) { recordDeath(input: $i) { position } }",
        json!({ "i": { "citizen": father, "date": "2025-12" } }),
    )
    .await;
    let events = history(&s, &format!("citizen-{father}")).await;
    assert_eq!(valid_of(&events, "CitizenDeceased")[0]["from"], "2025-12");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_fix_the_past_or_change_from_a_date() {
    let s = start().await;
    let (id, _) = citizen(&s, 33, "Vũ", "Thị", "Hạnh", true, 1975).await;
    let record = format!("citizen-{id}");
    let propose = |from: Option<&str>| {
        let args = match from {
            Some(d) => format!(r#", effectiveAt: "{d}""#),
            None => String::new(),
        };
        format!(
            r#"mutation($i: ProposeCorrectionInput!) {{ proposeCorrection(input: $i{args}) {{ position }} }}"#
        )
    };
    let input = |correction: Uuid, new: &str| {
        json!({ "i": {
            "record": record, "correction": correction,
            "changes": [{ "field": "name.given", "old": "Hạnh", "new": new }],
            "reason": "theo quyết định",
            "legalBasis": { "documentNumber": "45/QĐ-UBND", "documentDate": "2026-11-02" } } })
    };
    // A misspelling: the right name held all along.
    let fix = Uuid::now_v7();
    s.ok("steward-1", &propose(None), input(fix, "Hành")).await;
    s.ok(
        "steward-1",
        "mutation($i: WithdrawCorrectionInput!) { withdrawCorrection(input: $i) { position } }",
        json!({ "i": { "record": record, "correction": fix } }),
    )
    .await;
    // A change from a date (a legal change of name decided on 2026-11-02).
    let change = Uuid::now_v7();
    s.ok(
        "steward-1",
        &propose(Some("2026-11-02")),
        input(change, "Hân"),
    )
    .await;
    s.ok(
        "supervisor-1",
        "mutation($i: ApproveCorrectionInput!) { approveCorrection(input: $i) { position } }",
        json!({ "i": { "record": record, "correction": change } }),
    )
    .await;
    let events = history(&s, &record).await;
    let proposed = valid_of(&events, "CorrectionProposed");
    assert_eq!(proposed[0]["basis"], "FIXES_PAST", "{events:?}");
    assert_eq!(proposed[0]["from"], Value::Null);
    assert_eq!(
        proposed[1],
        &json!({ "from": "2026-11-02", "basis": "EFFECTIVE_AT", "field": null, "correction": null })
    );
    assert_eq!(
        valid_of(&events, "CorrectionApproved"),
        [
            &json!({ "from": null, "basis": "AS_PROPOSED", "field": null,
                   "correction": change.to_string() })
        ]
    );
    assert_eq!(
        valid_of(&events, "CorrectionWithdrawn")[0]["basis"],
        "NOT_A_FACT"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_stated_twice_is_refused() {
    let s = start().await;
    let (id, _) = citizen(&s, 34, "Đặng", "Văn", "Hùng", false, 1990).await;
    let head = s.node.log.head().await.unwrap();
    let body = s
        .gql(
            "steward-1",
            r#"mutation($input: ChangeResidenceInput!) {
                 changeResidence(input: $input, effectiveAt: "2026-01-01") { position } }"#,
            json!({ "input": change_residence(id, "11311", "Số 8 phố Minh Khai", "2026-10-01") }),
        )
        .await;
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["reason"], "EFFECTIVE_AT_REFUSED",
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("since"),
        "{body}"
    );
    // Not a date at all.
    let body = s
        .gql(
            "steward-1",
            r#"mutation($i: SetParentsInput!) { setParents(input: $i, effectiveAt: "2026-13-01") { position } }"#,
            json!({ "i": { "citizen": id } }),
        )
        .await;
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["field"], "effectiveAt");
    assert_eq!(s.node.log.head().await.unwrap(), head, "nothing appended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_is_named_as_on_a_date_across_the_2025_reorganisation() {
    let s = start().await;
    let (id, pin) = citizen(&s, 35, "Hoàng", "Văn", "Long", false, 1960).await;
    // A residence declared in 2020 in a pre-2025 ward of Hải Dương (now part of Hải Phòng).
    let old = s
        .ok(
            "steward-1",
            "mutation($input: ChangeResidenceInput!) { changeResidence(input: $input) { warnings } }",
            json!({ "input": change_residence(id, "10510", "Số 5 phố Bình Hàn", "2020-03-01") }),
        )
        .await;
    assert_eq!(
        old["changeResidence"]["warnings"],
        json!([]),
        "a documented predecessor needs no warning: {old}"
    );
    let q = r#"query($pin: String!) { citizen(pin: $pin) { permanentResidence { since commune {
        code name nameOn(date: "2020-03-01") today: nameOn(date: "2026-11-30")
        formerly { name district validUntil successors { code name } source } } } } }"#;
    let data = s.ok("social-insurance", q, json!({ "pin": pin })).await;
    let unit = &data["citizen"]["permanentResidence"]["commune"];
    assert_eq!(unit["code"], "10510");
    assert_eq!(unit["name"], Value::Null, "not a 2025 unit: {unit}");
    assert_eq!(unit["nameOn"], "Phường Bình Hàn");
    assert_eq!(
        unit["today"],
        Value::Null,
        "the code names no unit after 2025-07-01"
    );
    assert_eq!(unit["formerly"]["district"], "Thành phố Hải Dương");
    assert_eq!(unit["formerly"]["validUntil"], "2025-07-01");
    assert_eq!(
        unit["formerly"]["successors"],
        json!([{ "code": "10507", "name": "Phường Thành Đông" }])
    );
    assert!(
        unit["formerly"]["source"]
            .as_str()
            .is_some_and(|s| s.contains("1669/NQ-UBTVQH15")),
        "{unit}"
    );

    // A 2025 unit lists the units merged into it, a divided one among them.
    let (id2, pin2) = citizen(&s, 36, "Hoàng", "Thị", "Mai", true, 1962).await;
    s.ok(
        "steward-1",
        CHANGE_RESIDENCE,
        json!({ "input": change_residence(id2, "10843", "Thôn Đông", "2025-08-01") }),
    )
    .await;
    let data = s
        .ok(
            "social-insurance",
            r#"query($pin: String!) { citizen(pin: $pin) { permanentResidence { commune {
                 name predecessors { code successors { code } } } } } }"#,
            json!({ "pin": pin2 }),
        )
        .await;
    let unit = &data["citizen"]["permanentResidence"]["commune"];
    assert_eq!(unit["name"], "Xã Hà Nam");
    let predecessors = unit["predecessors"].as_array().cloned().unwrap_or_default();
    let codes: Vec<&str> = predecessors
        .iter()
        .filter_map(|p| p["code"].as_str())
        .collect();
    assert!(
        codes.contains(&"10798") && codes.contains(&"10831"),
        "{codes:?}"
    );
    let hoa_binh = predecessors.iter().find(|p| p["code"] == "10798").unwrap();
    assert_eq!(
        hoa_binh["successors"],
        json!([{ "code": "10804" }, { "code": "10843" }]),
        "Xã Hòa Bình was divided"
    );
}
