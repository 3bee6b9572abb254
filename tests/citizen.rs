//! The citizen's own view (issue 15 items 1, 2, 5): a portal exchanges for a citizen token; the
//! citizen reads their own record, a relative's name, their history and who read their data,
//! and nothing else; their own reads are logged; revocation takes effect at once.

mod common;

use common::*;
use serde_json::{Value, json};
use uuid::Uuid;

const PORTAL_HEADERS: &[(&str, &str)] = &[
    ("X-Road-UserId", "e-id-session-7"),
    ("X-Road-Issue", "login-2026-0001"),
    ("X-Purpose", "citizen-login"),
];

const EXCHANGE: &str = "mutation($pin: String) { issueCitizenToken(pin: $pin, ttlSeconds: 600) { token tokenId citizen expiresAt } }";

/// Registers a father, and a citizen naming him; returns (citizen id, pin, father id).
async fn family(s: &Server) -> (Uuid, String, Uuid) {
    let (father, _) = citizen(s, 1, "Trần", "Văn", "Bình", false, 1960).await;
    let id = Uuid::now_v7();
    let pin = pin(2, true, 1990);
    let mut input = register_citizen(id, &pin, "Trần", "Thị", "An", true, "1990-05-01");
    input["father"] = json!(father);
    s.ok("steward-1", REGISTER_CITIZEN, json!({ "input": input }))
        .await;
    (id, pin, father)
}

async fn exchange(s: &Server, pin: &str) -> String {
    let (status, body) = s
        .gql_with("portal", EXCHANGE, json!({ "pin": pin }), PORTAL_HEADERS)
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{body:#}");
    body["data"]["issueCitizenToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn as_citizen(s: &Server, token: &str, query: &str, variables: Value) -> Value {
    s.gql_with(token, query, variables, &[]).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_citizen_reads_their_own_record_and_who_read_it_and_nothing_else() {
    let s = start().await;
    let (me, my_pin, father) = family(&s).await;
    let (other, other_pin) = citizen(&s, 3, "Lê", "Văn", "Cường", false, 1985).await;

    // Only a portal configured for it may exchange; the record is found by PIN.
    let (_, refused) = s
        .gql_with(
            "social-insurance",
            EXCHANGE,
            json!({ "pin": my_pin }),
            &[
                ("X-Road-UserId", "o"),
                ("X-Road-Issue", "c"),
                ("X-Purpose", "social-insurance"),
            ],
        )
        .await;
    assert_eq!(code(&refused), "FORBIDDEN", "{refused}");
    let token = exchange(&s, &my_pin).await;
    assert!(token.starts_with("cdbc_"));

    // A service reads the citizen's record, with officer, case and purpose.
    s.ok(
        "social-insurance",
        "query($p: String!) { citizen(pin: $p) { birthDate } }",
        json!({ "p": my_pin }),
    )
    .await;

    // The citizen: their own record, and their father's name only.
    let mine = as_citizen(
        &s,
        &token,
        "query($p: String!) { me { role } citizen(pin: $p) { id pin name { full } birthDate father { name { full } } } }",
        json!({ "p": my_pin }),
    )
    .await;
    assert!(mine.get("errors").is_none(), "{mine:#}");
    assert_eq!(mine["data"]["me"]["role"], "citizen");
    assert_eq!(mine["data"]["citizen"]["id"], format!("citizen-{me}"));
    assert_eq!(mine["data"]["citizen"]["name"]["full"], "Trần Thị An");
    assert_eq!(
        mine["data"]["citizen"]["father"]["name"]["full"],
        "Trần Văn Bình"
    );
    let fathers_pin = as_citizen(
        &s,
        &token,
        "query($p: String!) { citizen(pin: $p) { father { pin } } }",
        json!({ "p": my_pin }),
    )
    .await;
    assert_eq!(code(&fathers_pin), "FORBIDDEN", "{fathers_pin}");
    let by_id = as_citizen(
        &s,
        &token,
        "query($id: String!) { citizen(id: $id) { name { full } } }",
        json!({ "id": format!("citizen-{father}") }),
    )
    .await;
    assert_eq!(code(&by_id), "FORBIDDEN", "{by_id}");

    // Anyone else: refused, whether the number exists or not (no existence oracle).
    for p in [other_pin.as_str(), "031000999999"] {
        let body = as_citizen(
            &s,
            &token,
            "query($p: String!) { citizen(pin: $p) { id } }",
            json!({ "p": p }),
        )
        .await;
        assert_eq!(code(&body), "FORBIDDEN", "{body}");
        assert!(body["data"]["citizen"].is_null(), "{body}");
    }
    for (query, variables) in [
        (
            "{ citizens(search: \"tran\") { edges { node { id } } } }",
            json!({}),
        ),
        ("{ parcels { edges { node { id } } } }", json!({})),
        ("{ businesses { edges { node { id } } } }", json!({})),
        ("{ changes { changes { position } } }", json!({})),
        ("{ verifyLog { intact } }", json!({})),
        (
            "query { ...F } fragment F on Query { ... on Query { citizens { edges { node { id } } } } }",
            json!({}),
        ),
        (
            "query($c: String!) { accessLog(citizen: $c) { principal } }",
            json!({ "c": format!("citizen-{other}") }),
        ),
        (
            "query($c: String!) { history(record: $c) { eventType } }",
            json!({ "c": format!("citizen-{other}") }),
        ),
        (
            "mutation($i: RegisterCitizenInput!) { registerCitizen(input: $i) { commandId } }",
            json!({ "i": register_citizen(Uuid::now_v7(), &pin(9, false, 2000), "A", "B", "C", false, "2000") }),
        ),
        (EXCHANGE, json!({ "pin": other_pin })),
    ] {
        let body = as_citizen(&s, &token, query, variables).await;
        assert_eq!(code(&body), "FORBIDDEN", "{query}: {body}");
        assert!(
            body["data"].is_null()
                || body["data"]
                    .as_object()
                    .is_some_and(|d| d.values().all(Value::is_null)),
            "{query}: {body}"
        );
    }

    // Their own history, each event with its inclusion proof in the log's Merkle tree.
    let history = as_citizen(
        &s,
        &token,
        "query($c: String!) { history(record: $c) { eventType hash inclusionProof { entry } } }",
        json!({ "c": format!("citizen-{me}") }),
    )
    .await;
    assert_eq!(
        history["data"]["history"][0]["eventType"], "CitizenRegistered",
        "{history}"
    );
    assert_eq!(
        history["data"]["history"][0]["inclusionProof"]["entry"],
        history["data"]["history"][0]["hash"],
        "{history}"
    );

    // Who read my data: the portal's exchange, the service's read with officer, case and
    // purpose, and my own reads, newest first; never another citizen's.
    let log = as_citizen(
        &s,
        &token,
        "query($c: String!) { accessLog(citizen: $c) { principal role endUser case purpose fieldGroups recordedAt } }",
        json!({ "c": format!("citizen-{me}") }),
    )
    .await;
    assert!(log.get("errors").is_none(), "{log:#}");
    let entries = log["data"]["accessLog"].as_array().unwrap();
    let service = entries
        .iter()
        .find(|e| e["principal"] == "social-insurance")
        .unwrap_or_else(|| panic!("the service's read is missing: {log:#}"));
    assert_eq!(service["endUser"], "officer-7");
    assert_eq!(service["case"], "HS-2026-0042");
    assert_eq!(service["purpose"], "social-insurance");
    assert_eq!(service["fieldGroups"], json!(["identity"]));
    let portal = entries
        .iter()
        .find(|e| e["principal"] == "portal")
        .unwrap_or_else(|| panic!("the exchange is missing: {log:#}"));
    assert_eq!(portal["purpose"], "citizen-login");
    let own = entries
        .iter()
        .filter(|e| e["principal"] == format!("citizen-{me}"))
        .count();
    assert!(own >= 2, "the citizen's own reads are logged: {log:#}");
    // The father's record shows the citizen's read of his name, as a citizen's read.
    let fathers = s
        .ok(
            "auditor-1",
            "query($c: String!) { accessLog(citizen: $c) { principal role fieldGroups } }",
            json!({ "c": format!("citizen-{father}") }),
        )
        .await;
    assert!(
        fathers["accessLog"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["principal"] == format!("citizen-{me}") && e["role"] == "citizen"),
        "{fathers:#}"
    );

    // Log out: every token of the citizen stops working at once.
    let out = as_citizen(&s, &token, "mutation { revokeCitizenToken }", json!({})).await;
    assert_eq!(out["data"]["revokeCitizenToken"], true, "{out}");
    let (status, after) = s.gql_with(&token, "{ me { role } }", json!({}), &[]).await;
    assert_eq!(
        (status, code(&after).as_str()),
        (401, "UNAUTHENTICATED"),
        "{after}"
    );
    // A new exchange works again.
    let again = exchange(&s, &my_pin).await;
    let body = as_citizen(&s, &again, "{ me { role } }", json!({})).await;
    assert_eq!(body["data"]["me"]["role"], "citizen", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_reads_their_children_s_names_and_nothing_else_of_them() {
    let s = start().await;
    let (child, _, father) = family(&s).await;
    // `family` registered the father as citizen 1, a man born in 1960.
    let token = exchange(&s, &pin(1, false, 1960)).await;
    let query = "query($p: String!) { citizen(pin: $p) { id children { id name { full } } } }";
    let mine = as_citizen(&s, &token, query, json!({ "p": pin(1, false, 1960) })).await;
    assert!(mine.get("errors").is_none(), "{mine:#}");
    assert_eq!(mine["data"]["citizen"]["id"], format!("citizen-{father}"));
    assert_eq!(
        mine["data"]["citizen"]["children"],
        json!([{ "id": format!("citizen-{child}"), "name": { "full": "Trần Thị An" } }])
    );
    for field in [
        "pin",
        "birthDate",
        "permanentResidence { address }",
        "children { id }",
    ] {
        let body = as_citizen(
            &s,
            &token,
            &format!("query($p: String!) {{ citizen(pin: $p) {{ children {{ {field} }} }} }}"),
            json!({ "p": pin(1, false, 1960) }),
        )
        .await;
        assert_eq!(code(&body), "FORBIDDEN", "{field}: {body}");
    }
    // Her record shows her father's read of her name, as a citizen's read.
    let hers = s
        .ok(
            "auditor-1",
            "query($c: String!) { accessLog(citizen: $c) { principal role fieldGroups } }",
            json!({ "c": format!("citizen-{child}") }),
        )
        .await;
    assert!(
        hers["accessLog"].as_array().unwrap().iter().any(|e| {
            e["principal"] == format!("citizen-{father}")
                && e["role"] == "citizen"
                && e["fieldGroups"] == json!(["identity"])
        }),
        "{hers:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_with_purposes_must_name_one() {
    let s = start().await;
    let (_, p) = citizen(&s, 4, "Phạm", "Thị", "Dung", true, 1970).await;
    let query = "query($p: String!) { citizen(pin: $p) { birthDate } }";
    let (_, none) = s
        .gql_with(
            "social-insurance",
            query,
            json!({ "p": p }),
            &[("X-Road-UserId", "o"), ("X-Road-Issue", "c")],
        )
        .await;
    assert_eq!(code(&none), "FORBIDDEN", "{none}");
    assert_eq!(
        none["errors"][0]["extensions"]["field"], "purpose",
        "{none}"
    );
    let (_, wrong) = s
        .gql_with(
            "social-insurance",
            query,
            json!({ "p": p }),
            &[
                ("X-Road-UserId", "o"),
                ("X-Road-Issue", "c"),
                ("X-Purpose", "tax"),
            ],
        )
        .await;
    assert_eq!(code(&wrong), "FORBIDDEN", "{wrong}");
    let ok = s.ok("social-insurance", query, json!({ "p": p })).await;
    assert!(ok["citizen"]["birthDate"].is_string());
}
