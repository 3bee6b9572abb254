//! Input the domain must refuse, through the GraphQL API of a real node: codes in no reference
//! list (issue 10 items 7 and 9), wrong old values that must not echo personal data (item 4),
//! a steward alone renaming a citizen (item 5), and unbounded text and unknown keys (item 10).
//! Every refusal leaves the log head where it was.

mod common;

use serde_json::{Value, json};
use uuid::Uuid;

use common::*;

fn message(body: &Value) -> String {
    body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn reason(body: &Value) -> String {
    body["errors"][0]["extensions"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

const CITIZEN_BY_PIN: &str = "query($pin: String!) { citizen(pin: $pin) { id } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_in_no_list_are_refused_on_commands_and_filters() {
    let s = start().await;
    let (id, _) = citizen(&s, 1, "Phạm", "Văn", "Đức", false, 1980).await;
    let head = s.node.log.head().await.unwrap();

    // A commune in no list: refused, named, nothing appended.
    let body = s
        .gql(
            "steward-1",
            CHANGE_RESIDENCE,
            json!({ "input": change_residence(id, "99999", "Số 8 phố Minh Khai", "2026-11-20") }),
        )
        .await;
    assert_eq!(code(&body), "UNKNOWN_CODE", "{body}");
    assert!(message(&body).contains("hai_phong_units_2025"), "{body}");
    assert_eq!(s.node.log.head().await.unwrap(), head);

    // A PIN whose province part is in no list, whichever part of the code space it is in.
    for bad in ["097199000123", "999199000123"] {
        let mut input = register_citizen(Uuid::now_v7(), bad, "Lê", "", "Na", true, "1999");
        input["birthPlace"] = json!("11311");
        let body = s
            .gql("steward-1", REGISTER_CITIZEN, json!({ "input": input }))
            .await;
        assert_eq!(code(&body), "UNKNOWN_CODE", "{bad}: {body}");
        let body = s
            .gql("social-insurance", CITIZEN_BY_PIN, json!({ "pin": bad }))
            .await;
        assert_eq!(code(&body), "UNKNOWN_CODE", "{bad}: {body}");
    }
    assert_eq!(s.node.log.head().await.unwrap(), head);
    // A birth registered in Hà Nội or Hải Dương is a valid Hải Phòng resident's PIN.
    for valid in ["001199000123", "030199000123"] {
        let data = s
            .ok("social-insurance", CITIZEN_BY_PIN, json!({ "pin": valid }))
            .await;
        assert_eq!(data["citizen"], Value::Null);
    }
    // A malformed PIN is still just malformed.
    let body = s
        .gql("social-insurance", CITIZEN_BY_PIN, json!({ "pin": "12" }))
        .await;
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");

    // Filters: the same codes, the same answer (not an empty page).
    for (who, query) in [
        (
            "social-insurance",
            r#"{ citizens(commune: "99999") { edges { node { id } } } }"#,
        ),
        (
            "tax-office",
            r#"{ businesses(commune: "99999") { edges { node { id } } } }"#,
        ),
        (
            "social-insurance",
            r#"{ parcels(commune: "99999") { edges { node { id } } } }"#,
        ),
        (
            "social-insurance",
            r#"{ parcels(landUse: "XYZ") { edges { node { id } } } }"#,
        ),
        (
            "social-insurance",
            r#"{ parcel(key: "99999/99999:1/1") { id } }"#,
        ),
    ] {
        let body = s.gql(who, query, json!({})).await;
        assert_eq!(code(&body), "UNKNOWN_CODE", "{query}: {body}");
    }
    // Known codes still filter.
    s.ok(
        "social-insurance",
        r#"{ citizens(commune: "11311") { edges { node { id } } } parcels(landUse: "odt") { edges { node { id } } } }"#,
        json!({}),
    )
    .await;
}

const PROPOSE: &str =
    "mutation($i: ProposeCorrectionInput!) { proposeCorrection(input: $i) { position } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_old_value_names_the_field_and_not_the_current_value() {
    let s = start().await;
    let (id, _) = citizen(&s, 2, "Vũ", "Thị", "Lan", true, 1975).await;
    let actual_pin = pin(2, true, 1975);
    let head = s.node.log.head().await.unwrap();
    for (field, wrong, new) in [
        ("pin", "000000000000", "031175000777"),
        ("pin", "031175999999", "031175000777"),
        ("birth_date", "1900", "1975-03-02"),
    ] {
        let propose = json!({
            "record": format!("citizen-{id}"), "correction": Uuid::now_v7(),
            "changes": [{ "field": field, "old": wrong, "new": new }],
            "reason": "sai", "legalBasis": { "documentNumber": "1/QĐ", "documentDate": "2026-01-02" }
        });
        let body = s.gql("steward-1", PROPOSE, json!({ "i": propose })).await;
        assert_eq!(reason(&body), "CORRECTION_CONFLICT", "{body}");
        let text = body.to_string();
        assert!(message(&body).contains(field), "{body}");
        assert!(message(&body).contains("does not match"), "{body}");
        assert!(!text.contains("meanwhile"), "{body}");
        assert!(!text.contains(&actual_pin), "the PIN leaked: {body}");
        assert!(
            !text.contains("\\\"1975\\\""),
            "the birth date leaked: {body}"
        );
    }
    assert_eq!(s.node.log.head().await.unwrap(), head);
}

const RENAME: &str = r#"mutation($i: ChangeCitizenNameInput!) {
  changeCitizenName(input: $i, reason: "đổi tên") { warnings citizens { name { full } } }
}"#;
const APPROVE: &str = "mutation($i: ApproveCorrectionInput!) { approveCorrection(input: $i) { citizens { name { full } } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steward_alone_cannot_rename_a_citizen() {
    let s = start().await;
    let (id, _) = citizen(&s, 3, "Hồ", "Thanh", "Việt", false, 2015).await;
    let correction = Uuid::now_v7();
    let rename = json!({
        "citizen": id, "correction": correction,
        "name": { "family": "Hồ", "middle": "Thanh", "given": "Vinh" },
        "legalBasis": { "documentNumber": "348/QĐ-UBND", "documentDate": "2026-09-30" }
    });
    let data = s.ok("steward-1", RENAME, json!({ "i": rename })).await;
    let done = &data["changeCitizenName"];
    assert_eq!(done["citizens"][0]["name"]["full"], "Hồ Thanh Việt");
    let warnings = done["warnings"].to_string();
    assert!(warnings.contains("APPROVAL_REQUIRED"), "{warnings}");
    assert!(warnings.contains(&correction.to_string()), "{warnings}");

    let approve = json!({ "record": format!("citizen-{id}"), "correction": correction });
    let body = s.gql("steward-2", APPROVE, json!({ "i": approve })).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let data = s.ok("supervisor-1", APPROVE, json!({ "i": approve })).await;
    assert_eq!(
        data["approveCorrection"]["citizens"][0]["name"]["full"],
        "Hồ Thanh Vinh"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_text_and_unknown_keys_are_refused_before_anything_is_appended() {
    let s = start().await;
    let (id, _) = citizen(&s, 4, "Ngô", "Bảo", "Châu", false, 1972).await;
    let head = s.node.log.head().await.unwrap();

    let long_address = "Số 8 ".repeat(40_000);
    let body = s
        .gql(
            "steward-1",
            CHANGE_RESIDENCE,
            json!({ "input": change_residence(id, "11311", &long_address, "2026-11-20") }),
        )
        .await;
    assert_eq!(code(&body), "INVALID_INPUT", "{}", message(&body));
    assert_eq!(reason(&body), "TEXT_TOO_LONG");
    assert!(message(&body).contains("address") && message(&body).contains("500"));

    let long_reason = format!(
        r#"mutation($input: ChangeResidenceInput!) {{ changeResidence(input: $input, reason: "{}") {{ position }} }}"#,
        "x".repeat(500_000)
    );
    let body = s
        .gql(
            "steward-1",
            &long_reason,
            json!({ "input": change_residence(id, "11311", "Số 8", "2026-11-20") }),
        )
        .await;
    assert_eq!(reason(&body), "TEXT_TOO_LONG", "{}", message(&body));
    assert!(message(&body).contains("reason") && message(&body).contains("2000"));

    let mut misspelt = change_residence(id, "11311", "Số 8", "2026-11-20");
    misspelt["adress"] = json!("Số 9");
    let body = s
        .gql("steward-1", CHANGE_RESIDENCE, json!({ "input": misspelt }))
        .await;
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");
    assert!(message(&body).contains("adress"), "{body}");

    assert_eq!(s.node.log.head().await.unwrap(), head);
}
