//! Typed mutation inputs (issue 17 item 5), through the GraphQL API of a real node: the inputs
//! are introspectable input objects; inline literals and variables in the typed spelling work
//! with no warning; a refusal names the field in GraphQL spelling; and the old JSON shape
//! (snake_case keys, lower-case enum values) still works as a variable for one release, with
//! the warning `DEPRECATED_INPUT_SHAPE` and the same result as the typed spelling.

mod common;

use serde_json::{Value, json};
use uuid::Uuid;

use common::*;

fn field(body: &Value) -> String {
    body["errors"][0]["extensions"]["field"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inputs_are_introspectable_input_objects() {
    let s = start().await;
    let data = s
        .ok(
            "steward-1",
            r#"{ __type(name: "ChangeResidenceInput") { kind inputFields { name
                 type { kind name ofType { kind name enumValues { name } } } } } }"#,
            json!({}),
        )
        .await;
    let t = &data["__type"];
    assert_eq!(t["kind"], "INPUT_OBJECT", "{data}");
    let fields: Vec<&Value> = t["inputFields"].as_array().unwrap().iter().collect();
    let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["citizen", "kind", "commune", "address", "since"]);
    let since = fields.iter().find(|f| f["name"] == "since").unwrap();
    assert_eq!(since["type"]["kind"], "NON_NULL");
    assert_eq!(since["type"]["ofType"]["name"], "Date");
    let kind = fields.iter().find(|f| f["name"] == "kind").unwrap();
    assert_eq!(
        kind["type"]["ofType"]["enumValues"],
        json!([{ "name": "PERMANENT" }, { "name": "TEMPORARY" }])
    );
    // Every mutation's `input` is an input object now: no JSON scalar is left.
    let data = s
        .ok(
            "steward-1",
            r#"{ __schema { mutationType { fields { name args { name type { ofType { kind name } } } } } } }"#,
            json!({}),
        )
        .await;
    let mut typed = 0;
    for f in data["__schema"]["mutationType"]["fields"]
        .as_array()
        .unwrap()
    {
        for a in f["args"].as_array().unwrap() {
            if a["name"] == "input" {
                assert_eq!(a["type"]["ofType"]["kind"], "INPUT_OBJECT", "{f}");
                typed += 1;
            }
        }
    }
    assert!(typed >= 40, "{typed} typed inputs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_typed_spelling_works_inline_and_as_variables() {
    let s = start().await;
    let (id, _) = citizen(&s, 11, "Trần", "Thị", "Mai", true, 1990).await;
    // Inline literal: enum value unquoted, nested camelCase fields.
    let query = format!(
        r#"mutation {{ changeResidence(input: {{ citizen: "{id}", kind: PERMANENT,
             commune: "11311", address: "Số 3 Lạch Tray", since: "2026-11-20" }}) {{
             warnings citizens {{ permanentResidence {{ address since }} }} }} }}"#
    );
    let data = s.ok("steward-1", &query, json!({})).await;
    let done = &data["changeResidence"];
    assert_eq!(done["warnings"], json!([]), "{data}");
    assert_eq!(
        done["citizens"][0]["permanentResidence"],
        json!({ "address": "Số 3 Lạch Tray", "since": "2026-11-20" })
    );
    // A business's capital above GraphQL's 32-bit Int, as the `Vnd` scalar.
    let bid = Uuid::now_v7();
    let business = json!({
        "business": bid, "code": "0200566628",
        "names": { "vietnamese": "Công ty TNHH Biển Đông" },
        "headOffice": { "commune": "11311", "street": "Số 2 Điện Biên Phủ" },
        "legalRepresentatives": [id], "charterCapital": 5_000_000_000u64,
        "businessLines": ["5210"], "registrationDate": "2024-03-01",
        "origin": { "kind": "INITIAL_LOAD", "source": "ĐKKD Hải Phòng" }
    });
    let data = s
        .ok(
            "steward-1",
            "mutation($i: RegisterBusinessInput!) { registerBusiness(input: $i) { warnings businesses { charterCapital } } }",
            json!({ "i": business }),
        )
        .await;
    assert_eq!(data["registerBusiness"]["warnings"], json!([]), "{data}");
    assert_eq!(
        data["registerBusiness"]["businesses"][0]["charterCapital"]
            .to_string()
            .trim_matches('"'),
        "5000000000"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_names_the_field_in_graphql_spelling() {
    let s = start().await;
    let (id, _) = citizen(&s, 12, "Lê", "Văn", "Nam", false, 1985).await;
    let head = s.node.log.head().await.unwrap();

    let bad_date = change_residence(id, "11311", "Số 8 phố Minh Khai", "2026-02-30");
    let body = s
        .gql("steward-1", CHANGE_RESIDENCE, json!({ "input": bad_date }))
        .await;
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");
    assert_eq!(field(&body), "input.since", "{body}");

    let unknown_commune = change_residence(id, "99999", "Số 8 phố Minh Khai", "2026-11-20");
    let body = s
        .gql(
            "steward-1",
            CHANGE_RESIDENCE,
            json!({ "input": unknown_commune }),
        )
        .await;
    // Codes are judged against their list when the command is decided, after the input's
    // shape: the refusal names the list and the code (see tests/domain_input.rs), and the
    // input field that holds the code.
    assert_eq!(code(&body), "UNKNOWN_CODE", "{body}");
    assert_eq!(field(&body), "input.commune", "{body}");

    // Nested: the legal basis's date of a correction proposal.
    let propose = json!({
        "record": format!("citizen-{id}"), "correction": Uuid::now_v7(),
        "changes": [{ "field": "name.given", "old": "Nam", "new": "Năm" }],
        "reason": "sai chính tả",
        "legalBasis": { "documentNumber": "45/QĐ-UBND", "documentDate": "02/11/2026" }
    });
    let body = s
        .gql(
            "steward-1",
            "mutation($i: ProposeCorrectionInput!) { proposeCorrection(input: $i) { position } }",
            json!({ "i": propose }),
        )
        .await;
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");
    assert_eq!(field(&body), "input.legalBasis.documentDate", "{body}");

    // In a list: the second holder's share.
    let parcel = json!({
        "parcel": Uuid::now_v7(), "key": "11311/11311:12/345", "area": "120.50",
        "landUse": ["ODT"], "address": "Số 8 phố Minh Khai",
        "holders": [
            { "holder": { "kind": "CITIZEN", "id": id }, "share": "1/2" },
            { "holder": { "kind": "CITIZEN", "id": id }, "share": "half" }
        ]
    });
    let body = s
        .gql(
            "steward-1",
            "mutation($i: RegisterParcelInput!) { registerParcel(input: $i) { position } }",
            json!({ "i": parcel }),
        )
        .await;
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");
    assert_eq!(field(&body), "input.holders[1].share", "{body}");

    // A missing required field and a wrong enum value are refused before any work.
    let body = s
        .gql(
            "steward-1",
            CHANGE_RESIDENCE,
            json!({ "input": { "citizen": id, "kind": "SIDEWAYS", "commune": "11311",
                               "address": "x", "since": "2026-11-20" } }),
        )
        .await;
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");
    assert_eq!(s.node.log.head().await.unwrap(), head, "nothing appended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_json_shape_still_works_as_a_variable_with_a_warning() {
    let s = start().await;
    // The same registration in both spellings gives the same record.
    let typed_id = Uuid::now_v7();
    let typed = register_citizen(
        typed_id,
        &pin(21, true, 1970),
        "Ngô",
        "Thị",
        "Lan",
        true,
        "1970-05",
    );
    let old_id = Uuid::now_v7();
    let old = json!({
        "citizen": old_id, "pin": pin(22, true, 1970),
        "name": { "family": "Ngô", "middle": "Thị", "given": "Lan" },
        "sex": "female", "birth_date": "1970-05", "birth_place": "11311",
        "father": null, "mother": null,
        "origin": { "kind": "registration" }
    });
    let query = r#"mutation($input: RegisterCitizenInput!) {
      registerCitizen(input: $input) { warnings citizens { name { full } sex birthDate birthPlace { code } } } }"#;
    let t = s.ok("steward-1", query, json!({ "input": typed })).await;
    let o = s.ok("steward-1", query, json!({ "input": old })).await;
    assert_eq!(t["registerCitizen"]["warnings"], json!([]), "{t}");
    let warnings = o["registerCitizen"]["warnings"].to_string();
    assert!(warnings.contains("DEPRECATED_INPUT_SHAPE"), "{o}");
    assert!(warnings.contains("input"), "names the variable: {o}");
    assert_eq!(
        t["registerCitizen"]["citizens"], o["registerCitizen"]["citizens"],
        "same record either way"
    );
    assert_eq!(o["registerCitizen"]["citizens"][0]["sex"], "FEMALE");

    // Old-shape residence (lower-case enum value only) and correction (nested snake_case keys;
    // `old`/`new` are JSON and untouched).
    let body = s
        .gql(
            "steward-1",
            CHANGE_RESIDENCE,
            json!({ "input": { "citizen": old_id, "kind": "permanent", "commune": "11311",
                               "address": "Số 8 phố Minh Khai", "since": "2026-11-20" } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let propose = json!({
        "record": format!("citizen-{old_id}"), "correction": Uuid::now_v7(),
        "changes": [{ "field": "birth_date", "old": "1970-05", "new": "1970-05-12" }],
        "reason": "bổ sung ngày sinh",
        "legal_basis": { "document_number": "45/QĐ-UBND", "document_date": "2026-11-02" }
    });
    let data = s
        .ok(
            "steward-1",
            "mutation($i: ProposeCorrectionInput!) { proposeCorrection(input: $i) { warnings citizens { corrections { status } } } }",
            json!({ "i": propose }),
        )
        .await;
    assert!(
        data["proposeCorrection"]["warnings"]
            .to_string()
            .contains("DEPRECATED_INPUT_SHAPE"),
        "{data}"
    );
    let status = &data["proposeCorrection"]["citizens"][0]["corrections"][0]["status"];
    assert_eq!(
        status.as_str().map(str::to_lowercase).as_deref(),
        Some("pending"),
        "{data}"
    );

    // Inline literals are not rewritten: the old spelling is refused, nothing appended.
    let head = s.node.log.head().await.unwrap();
    let query = format!(
        r#"mutation {{ changeResidence(input: {{ citizen: "{old_id}", kind: PERMANENT,
             commune: "11311", address: "x", since: "2026-11-21", birth_date: "1970" }}) {{ position }} }}"#
    );
    let body = s.gql("steward-1", &query, json!({})).await;
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");
    assert_eq!(s.node.log.head().await.unwrap(), head);
}
