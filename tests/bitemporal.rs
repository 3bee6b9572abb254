//! Reads on both time axes (issue 16, items 2 and 5), through the GraphQL API of a real node:
//! `asOf { validAt }` — the state as it held on a date — alone (services, within their field
//! groups) or with `position`/`time` — as known then (stewards, supervisors, auditors); the
//! answer's `basis` repeats it; relations are read at the same point; a field's `timeline`;
//! `history` in valid order. The scenarios of docs/domain.md, "Two kinds of time".

mod common;

use serde_json::{Value, json};
use uuid::Uuid;

use common::*;

const CITIZEN_AT: &str = r#"query($pin: String!, $at: AsOf) { citizen(pin: $pin, asOf: $at) {
  status deathDate permanentResidence { commune { code } since }
  name { given } birthPlace { code }
  spouse { id marriedSince basis { validAt } }
  basis { knownAt validAt current } } }"#;

async fn citizen_at(s: &Server, who: &str, pin: &str, at: Value) -> Value {
    s.ok(who, CITIZEN_AT, json!({ "pin": pin, "at": at })).await["citizen"].clone()
}

async fn head(s: &Server) -> i64 {
    s.node.log.head().await.unwrap().unwrap().position as i64
}

async fn reads_logged(s: &Server, citizen: Uuid) -> usize {
    s.ok(
        "auditor-1",
        "query($c: String!) { accessLog(citizen: $c) { principal } }",
        json!({ "c": format!("citizen-{citizen}") }),
    )
    .await["accessLog"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_death_registration_changes_the_past_as_known_now_only() {
    let s = start().await;
    let (id, pin) = citizen(&s, 41, "Trần", "Văn", "Quý", false, 1950).await;
    let before_death = head(&s).await;
    s.ok(
        "steward-1",
        "mutation($i: RecordDeathInput!) { recordDeath(input: $i) { position } }",
        json!({ "i": { "citizen": id, "date": "2023-06-01" } }),
    )
    .await;

    // A service asks its own question on the valid axis: alive on the day of the claim?
    let logged = reads_logged(&s, id).await;
    let day_before = citizen_at(
        &s,
        "social-insurance",
        &pin,
        json!({ "validAt": "2023-05-31" }),
    )
    .await;
    assert_eq!(day_before["status"], "ALIVE", "{day_before}");
    assert_eq!(day_before["deathDate"], Value::Null);
    assert_eq!(day_before["basis"]["validAt"], "2023-05-31");
    assert_eq!(day_before["basis"]["current"], false);
    let known_at = day_before["basis"]["knownAt"].as_i64().unwrap();
    assert!(known_at > before_death, "pinned to the head when asked");
    assert!(
        reads_logged(&s, id).await > logged,
        "a read on the valid axis is a personal read, logged"
    );
    let on_the_day = citizen_at(
        &s,
        "social-insurance",
        &pin,
        json!({ "validAt": "2023-06-01" }),
    )
    .await;
    assert_eq!(on_the_day["status"], "DECEASED");
    assert_eq!(on_the_day["deathDate"], "2023-06-01");
    let now = citizen_at(&s, "social-insurance", &pin, Value::Null).await;
    assert_eq!(now["status"], "DECEASED");
    assert_eq!(now["basis"]["current"], true);
    assert_eq!(now["basis"]["validAt"], Value::Null);

    // As known before the registration of the death, the person was alive in 2024.
    let then = json!({ "position": before_death, "validAt": "2024-01-01" });
    let as_known_then = citizen_at(&s, "steward-1", &pin, then.clone()).await;
    assert_eq!(as_known_then["status"], "ALIVE", "{as_known_then}");
    assert_eq!(as_known_then["basis"]["knownAt"], before_death);
    // The recorded axis is not the services'.
    let refused = s
        .gql(
            "social-insurance",
            CITIZEN_AT,
            json!({ "pin": pin, "at": then }),
        )
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");

    // The basis repeats the answer.
    let again = json!({ "position": known_at, "validAt": "2023-05-31" });
    let repeated = citizen_at(&s, "steward-1", &pin, again).await;
    assert_eq!(repeated["status"], day_before["status"]);
    assert_eq!(repeated["basis"], day_before["basis"]);

    // Before the citizen's birth there is no record on the valid axis; a bad date is named.
    let unborn = s
        .ok(
            "social-insurance",
            CITIZEN_AT,
            json!({ "pin": pin, "at": { "validAt": "1949-12-31" } }),
        )
        .await;
    assert_eq!(unborn["citizen"], Value::Null);
    let bad = s
        .gql(
            "social-insurance",
            CITIZEN_AT,
            json!({ "pin": pin, "at": { "validAt": "2023-02-30" } }),
        )
        .await;
    assert_eq!(code(&bad), "INVALID_INPUT", "{bad}");
    assert_eq!(bad["errors"][0]["extensions"]["field"], "asOf.validAt");
    let empty = s
        .gql(
            "social-insurance",
            CITIZEN_AT,
            json!({ "pin": pin, "at": {} }),
        )
        .await;
    assert_eq!(code(&empty), "INVALID_INPUT", "{empty}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backdated_move_holds_from_its_date_with_a_timeline_as_known_now_and_then() {
    let s = start().await;
    let (id, pin) = citizen(&s, 42, "Lê", "Thị", "Thu", true, 1980).await;
    s.ok(
        "steward-1",
        CHANGE_RESIDENCE,
        json!({ "input": change_residence(id, "11311", "Số 2 phố Cầu Đất", "2010-01-01") }),
    )
    .await;
    let before_move = head(&s).await;
    // Declared weeks after the move.
    s.ok(
        "steward-1",
        CHANGE_RESIDENCE,
        json!({ "input": change_residence(id, "10507", "Số 9 phố Thanh Niên", "2024-03-01") }),
    )
    .await;
    let commune = |c: &Value| c["permanentResidence"]["commune"]["code"].clone();
    let before = citizen_at(
        &s,
        "social-insurance",
        &pin,
        json!({ "validAt": "2024-02-29" }),
    )
    .await;
    assert_eq!(commune(&before), "11311");
    let after = citizen_at(
        &s,
        "social-insurance",
        &pin,
        json!({ "validAt": "2024-03-01" }),
    )
    .await;
    assert_eq!(commune(&after), "10507");
    let as_known_then = citizen_at(
        &s,
        "auditor-1",
        &pin,
        json!({ "position": before_move, "validAt": "2024-03-10" }),
    )
    .await;
    assert_eq!(
        commune(&as_known_then),
        "11311",
        "the move was not known yet"
    );

    let timeline = |at: Value| {
        let s = &s;
        let pin = pin.clone();
        async move {
            let q = r#"query($pin: String!, $at: AsOf) { citizen(pin: $pin, asOf: $at) {
                timeline(field: "permanent_residence") { from until value setByVersion } } }"#;
            s.ok("auditor-1", q, json!({ "pin": pin, "at": at })).await["citizen"]["timeline"]
                .clone()
        }
    };
    let periods = |t: &Value| -> Vec<(Value, Value, Value)> {
        t.as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["from"].clone(),
                    p["until"].clone(),
                    p["value"]["commune"].clone(),
                )
            })
            .collect()
    };
    let now = timeline(Value::Null).await;
    assert_eq!(
        periods(&now),
        [
            (json!("1980-01-01"), json!("2010-01-01"), Value::Null),
            (json!("2010-01-01"), json!("2024-03-01"), json!("11311")),
            (json!("2024-03-01"), Value::Null, json!("10507")),
        ],
        "{now}"
    );
    assert_eq!(now[2]["setByVersion"], 2);
    let then = timeline(json!({ "position": before_move })).await;
    assert_eq!(
        periods(&then),
        [
            (json!("1980-01-01"), json!("2010-01-01"), Value::Null),
            (json!("2010-01-01"), Value::Null, json!("11311")),
        ]
    );
    // An unknown field is refused by name, before any read is noted in the access log (the
    // auditor's own look at the log is counted by calibrating with two looks first).
    let first_look = reads_logged(&s, id).await;
    let second_look = reads_logged(&s, id).await;
    let bad = s
        .gql(
            "social-insurance",
            r#"query($id: String!) { citizen(id: $id) { timeline(field: "nickname") { from } } }"#,
            json!({ "id": format!("citizen-{id}") }),
        )
        .await;
    assert_eq!(code(&bad), "INVALID_INPUT", "{bad}");
    assert_eq!(bad["errors"][0]["extensions"]["field"], "field");
    assert_eq!(
        reads_logged(&s, id).await - second_look,
        second_look - first_look,
        "a refused timeline is no read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_fixes_the_past_or_changes_from_a_date() {
    let s = start().await;
    let (id, pin) = citizen(&s, 43, "Vũ", "Thị", "Hạnh", true, 1975).await;
    let record = format!("citizen-{id}");
    // Fixing the past: the birthplace was mistyped when registered.
    s.ok(
        "steward-1",
        "mutation($i: CorrectRecordInput!) { correctRecord(input: $i) { position } }",
        json!({ "i": { "record": record,
            "changes": [{ "field": "birth_place", "old": "11311", "new": "10507" }],
            "reason": "nhập sai", "legalBasis": { "documentNumber": "12/QĐ", "documentDate": "2026-10-01" } } }),
    )
    .await;
    let at_birth = citizen_at(
        &s,
        "social-insurance",
        &pin,
        json!({ "validAt": "1975-01-01" }),
    )
    .await;
    assert_eq!(at_birth["birthPlace"]["code"], "10507", "{at_birth}");

    // A change from a date: a legal change of name decided on 2020-07-01.
    let change = Uuid::now_v7();
    s.ok(
        "steward-1",
        r#"mutation($i: ProposeCorrectionInput!) { proposeCorrection(input: $i, effectiveAt: "2020-07-01") { position } }"#,
        json!({ "i": { "record": record, "correction": change,
            "changes": [{ "field": "name.given", "old": "Hạnh", "new": "Hân" }],
            "reason": "quyết định thay đổi tên",
            "legalBasis": { "documentNumber": "45/QĐ-UBND", "documentDate": "2020-06-20" } } }),
    )
    .await;
    let pending = citizen_at(
        &s,
        "social-insurance",
        &pin,
        json!({ "validAt": "2021-01-01" }),
    )
    .await;
    assert_eq!(
        pending["name"]["given"], "Hạnh",
        "a pending proposal changes no date"
    );
    s.ok(
        "supervisor-1",
        "mutation($i: ApproveCorrectionInput!) { approveCorrection(input: $i) { position } }",
        json!({ "i": { "record": record, "correction": change } }),
    )
    .await;
    let day_before = citizen_at(
        &s,
        "social-insurance",
        &pin,
        json!({ "validAt": "2020-06-30" }),
    )
    .await;
    assert_eq!(day_before["name"]["given"], "Hạnh");
    let from = citizen_at(
        &s,
        "social-insurance",
        &pin,
        json!({ "validAt": "2020-07-01" }),
    )
    .await;
    assert_eq!(from["name"]["given"], "Hân");
    let q = r#"query($pin: String!) { citizen(pin: $pin) {
        timeline(field: "name.given") { from until value } } }"#;
    let t = s.ok("social-insurance", q, json!({ "pin": pin })).await;
    assert_eq!(
        t["citizen"]["timeline"],
        json!([
            { "from": "1975-01-01", "until": "2020-07-01", "value": "Hạnh" },
            { "from": "2020-07-01", "until": null, "value": "Hân" }
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relations_are_read_at_the_same_point_and_a_parcel_key_crosses_the_reorganisation() {
    let s = start().await;
    let (a, pin_a) = citizen(&s, 44, "Phan", "Văn", "Đức", false, 1985).await;
    let (b, _) = citizen(&s, 45, "Đỗ", "Thị", "Lan", true, 1987).await;
    s.ok(
        "steward-1",
        "mutation($i: RegisterMarriageInput!) { registerMarriage(input: $i) { position } }",
        json!({ "i": { "citizen": a, "spouse": b, "date": "2015-05-01" } }),
    )
    .await;
    let single = citizen_at(
        &s,
        "social-insurance",
        &pin_a,
        json!({ "validAt": "2015-04-30" }),
    )
    .await;
    assert_eq!(single["spouse"], Value::Null, "{single}");
    let married = citizen_at(
        &s,
        "social-insurance",
        &pin_a,
        json!({ "validAt": "2015-05-01" }),
    )
    .await;
    assert_eq!(married["spouse"]["id"], format!("citizen-{b}"));
    assert_eq!(
        married["spouse"]["basis"]["validAt"], "2015-05-01",
        "read at the same point"
    );
    assert_eq!(married["spouse"]["marriedSince"], "2015-05-01");

    // A parcel surveyed in 2000 on a map sheet of Phường Bình Hàn (before 2025), now in
    // Phường Thành Đông; given to b on 2021-03-15.
    let parcel = Uuid::now_v7();
    let key = "10507/10510:7/21";
    s.ok(
        "steward-1",
        r#"mutation($i: RegisterParcelInput!) { registerParcel(input: $i, effectiveAt: "2000-01-01") { position } }"#,
        json!({ "i": { "parcel": parcel, "key": key, "area": "120", "landUse": ["ODT"],
            "address": "Số 3 phố Bình Hàn",
            "holders": [{ "holder": { "kind": "CITIZEN", "id": a }, "share": "1" }] } }),
    )
    .await;
    s.ok(
        "steward-1",
        "mutation($i: TransferRightsInput!) { transferRights(input: $i) { position } }",
        json!({ "i": { "parcel": parcel, "kind": "GIFT", "date": "2021-03-15",
            "holders": [{ "holder": { "kind": "CITIZEN", "id": b }, "share": "1" }] } }),
    )
    .await;
    let q = r#"query($key: String!, $at: AsOf) { parcel(key: $key, asOf: $at) {
        key commune { code } formerCommune { code nameOn(date: "2020-01-01") }
        holders { holder { ... on Citizen { id basis { validAt } } } }
        basis { validAt } } }"#;
    let holder_on = |day: &'static str| {
        let s = &s;
        async move {
            s.ok(
                "social-insurance",
                q,
                json!({ "key": key, "at": { "validAt": day } }),
            )
            .await["parcel"]
                .clone()
        }
    };
    let on_contract_eve = holder_on("2021-03-14").await;
    assert_eq!(
        on_contract_eve["holders"][0]["holder"]["id"],
        format!("citizen-{a}")
    );
    assert_eq!(
        on_contract_eve["holders"][0]["holder"]["basis"]["validAt"],
        "2021-03-14"
    );
    let on_contract_day = holder_on("2021-03-15").await;
    assert_eq!(
        on_contract_day["holders"][0]["holder"]["id"],
        format!("citizen-{b}")
    );
    // The old document's unit resolves through the key's predecessor part.
    assert_eq!(on_contract_day["formerCommune"]["code"], "10510");
    assert_eq!(
        on_contract_day["formerCommune"]["nameOn"],
        "Phường Bình Hàn"
    );
    assert_eq!(on_contract_day["commune"]["code"], "10507");
    let before_survey = s
        .ok(
            "social-insurance",
            q,
            json!({ "key": key, "at": { "validAt": "1999-12-31" } }),
        )
        .await;
    assert_eq!(before_survey["parcel"], Value::Null);
    // Who held it on a date, field by field.
    let t = s
        .ok(
            "social-insurance",
            r#"query($key: String!) { parcel(key: $key) { timeline(field: "holders") { from until } } }"#,
            json!({ "key": key }),
        )
        .await;
    assert_eq!(
        t["parcel"]["timeline"],
        json!([{ "from": "2000-01-01", "until": "2021-03-15" }, { "from": "2021-03-15", "until": null }])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_reads_in_valid_or_recorded_order() {
    let s = start().await;
    let (child, _) = citizen(&s, 46, "Ngô", "Minh", "Khoa", false, 2009).await;
    let (father, _) = citizen(&s, 47, "Ngô", "Văn", "Tài", false, 1979).await;
    s.ok(
        "steward-1",
        CHANGE_RESIDENCE,
        json!({ "input": change_residence(child, "11311", "Số 4 phố Lạch Tray", "2024-03-01") }),
    )
    .await;
    // Recorded after the move, holding from long before it.
    s.ok(
        "steward-1",
        r#"mutation($i: SetParentsInput!) { setParents(input: $i, effectiveAt: "2010-03-15") { position } }"#,
        json!({ "i": { "citizen": child, "father": father } }),
    )
    .await;
    let q = r#"query($r: String!, $o: HistoryOrder, $at: AsOf) {
        history(record: $r, order: $o, asOf: $at) { eventType streamVersion } }"#;
    let types = |v: &Value| -> Vec<String> {
        v["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["eventType"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = format!("citizen-{child}");
    let recorded = s.ok("auditor-1", q, json!({ "r": r })).await;
    assert_eq!(
        types(&recorded),
        ["CitizenRegistered", "ResidenceChanged", "ParentsSet"]
    );
    let valid = s.ok("auditor-1", q, json!({ "r": r, "o": "VALID" })).await;
    assert_eq!(
        types(&valid),
        ["CitizenRegistered", "ParentsSet", "ResidenceChanged"]
    );
    let by_2020 = s
        .ok(
            "auditor-1",
            q,
            json!({ "r": r, "o": "VALID", "at": { "validAt": "2020-01-01" } }),
        )
        .await;
    assert_eq!(types(&by_2020), ["CitizenRegistered", "ParentsSet"]);
    // Paging in valid order continues after the version last seen.
    let page = s
        .ok(
            "auditor-1",
            r#"query($r: String!) { history(record: $r, order: VALID, first: 1, afterVersion: 2) { eventType } }"#,
            json!({ "r": r }),
        )
        .await;
    assert_eq!(types(&page), ["ResidenceChanged"]);
}

/// A stream written before valid time existed — `ResidenceChanged` in its v1 shape (no `kind`),
/// metadata without `effective_at`, a correction without it — answers on the valid axis with
/// nothing rewritten: the log's head hash is the same after the reads, and the stored bytes
/// are as appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_written_before_valid_time_answers_on_both_axes_unchanged() {
    use citydb_log::{ExpectedVersion, Metadata, NewEvent, StreamAppend, StreamId};
    let s = start().await;
    let id = Uuid::now_v7();
    let stream: StreamId = format!("citizen-{id}").parse().unwrap();
    let old = Metadata {
        actor: Some("import-2019".into()),
        ..Metadata::default()
    };
    let registered = json!({ "type": "CitizenRegistered", "citizen": id,
        "pin": pin(48, true, 1968), "name": { "family": "Bùi", "middle": "Thị", "given": "Nga" },
        "sex": "female", "birth_date": "1968", "birth_place": "11311",
        "father": null, "mother": null, "origin": { "kind": "registration" } });
    let moved_v1 = json!({ "type": "ResidenceChanged", "commune": "11311",
        "address": "Số 6 phố Cầu Đất", "since": "2001-09-01" });
    let moved_again_v1 = json!({ "type": "ResidenceChanged", "commune": "10507",
        "address": "Số 1 phố Thanh Niên", "since": "2018-04-01" });
    let fixed = json!({ "type": "RecordCorrected",
        "changes": [{ "field": "permanent_residence",
            "old": { "commune": "10507", "address": "Số 1 phố Thanh Niên", "since": "2018-04-01" },
            "new": { "commune": "10507", "address": "Số 11 phố Thanh Niên", "since": "2018-04-01" } }],
        "reason": "sai số nhà", "legal_basis": { "document_number": "7/QĐ", "document_date": "2019-01-02" },
        "steward": "steward-cu" });
    let events = vec![
        NewEvent::new("CitizenRegistered", 1, &registered, &old).unwrap(),
        NewEvent::new("ResidenceChanged", 1, &moved_v1, &old).unwrap(),
        NewEvent::new("ResidenceChanged", 1, &moved_again_v1, &old).unwrap(),
        NewEvent::new("RecordCorrected", 1, &fixed, &old).unwrap(),
    ];
    let stored: Vec<Vec<u8>> = events.iter().map(|e| e.data.clone()).collect();
    s.node
        .log
        .append(vec![StreamAppend::new(
            stream.clone(),
            ExpectedVersion::NoStream,
            events,
        )])
        .await
        .unwrap();
    let head_before = s.node.log.head().await.unwrap().unwrap();

    let q = r#"query($id: String!, $at: AsOf) { citizen(id: $id, asOf: $at) {
        permanentResidence { commune { code } address since } } }"#;
    let address_on = |day: &'static str| {
        let s = &s;
        async move {
            s.ok(
                "social-insurance",
                q,
                json!({ "id": format!("citizen-{id}"), "at": { "validAt": day } }),
            )
            .await["citizen"]["permanentResidence"]
                .clone()
        }
    };
    assert_eq!(
        address_on("2010-01-01").await["address"],
        "Số 6 phố Cầu Đất"
    );
    assert_eq!(
        address_on("2018-04-01").await["address"],
        "Số 11 phố Thanh Niên",
        "a correction written before valid time fixes the past"
    );
    assert_eq!(address_on("1967-12-31").await, Value::Null);

    let head_after = s.node.log.head().await.unwrap().unwrap();
    assert_eq!(
        head_after.hash, head_before.hash,
        "reading wrote nothing to the log"
    );
    let read_back = s
        .node
        .log
        .read_stream(&stream, 0, citydb_log::Direction::Forward, 10)
        .await
        .unwrap();
    let bytes: Vec<Vec<u8>> = read_back.iter().map(|e| e.data.clone()).collect();
    assert_eq!(bytes, stored, "stored payloads are as written");
    assert!(
        read_back
            .iter()
            .all(|e| e.metadata().effective_at.is_none())
    );
    assert_eq!(read_back[1].schema_version, 1, "no upcast is written back");
}
