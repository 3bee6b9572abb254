//! The GraphQL API against a real node over HTTP: read-your-writes, field scopes, the access
//! log, four-eyes corrections, history and as-of state, the authorization matrix, the change
//! subscription over both WebSocket protocols, and bad requests.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

use common::*;

#[test]
fn committed_sdl_matches_the_schema() {
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/graphql/schema.graphql"
    ))
    .unwrap();
    let current = citydb_api::schema::sdl();
    if committed != current {
        if std::env::var_os("CITYDB_UPDATE_SDL").is_some() {
            std::fs::write(
                concat!(env!("CARGO_MANIFEST_DIR"), "/graphql/schema.graphql"),
                &current,
            )
            .unwrap();
        }
        panic!(
            "graphql/schema.graphql is out of date: run `cargo run -- schema > graphql/schema.graphql` (or set CITYDB_UPDATE_SDL=1) and review the diff"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutation_returns_the_record_as_now_projected() {
    let s = start().await;
    let id = Uuid::now_v7();
    let input = register_citizen(
        id,
        &pin(1, true, 1990),
        "Nguyễn",
        "Thị",
        "Hoà",
        true,
        "1990-05-02",
    );
    let data = s
        .ok("steward-1", REGISTER_CITIZEN, json!({ "input": input }))
        .await;
    let c = &data["registerCitizen"]["citizens"][0];
    assert_eq!(c["id"], format!("citizen-{id}"));
    assert_eq!(c["name"]["full"], "Nguyễn Thị Hoà");
    assert_eq!(c["version"], 0);

    // Read-your-writes on an update, with optimistic concurrency.
    let expected = json!({ "record": format!("citizen-{id}"), "version": 0 });
    let data = s
        .ok("steward-1", CHANGE_RESIDENCE, json!({ "input": change_residence(id, "10507", "Số 3 Trần Hưng Đạo", "2025-08-01"), "expected": expected }))
        .await;
    let c = &data["changeResidence"]["citizens"][0];
    assert_eq!(c["version"], 1);
    assert_eq!(c["permanentResidence"]["address"], "Số 3 Trần Hưng Đạo");
    assert_eq!(c["permanentResidence"]["commune"]["code"], "10507");
    assert_eq!(
        c["permanentResidence"]["commune"]["name"],
        "Phường Thành Đông"
    );

    // The same expected version again is stale now.
    let body = s
        .gql("steward-2", CHANGE_RESIDENCE, json!({ "input": change_residence(id, "11311", "Số 9 Lạch Tray", "2025-09-01"), "expected": expected }))
        .await;
    assert_eq!(code(&body), "CONFLICT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "STALE_VERSION");

    // A domain refusal keeps its own reason: the same PIN twice.
    let dup = register_citizen(
        Uuid::now_v7(),
        &pin(1, true, 1990),
        "Trần",
        "Văn",
        "An",
        true,
        "1990",
    );
    let body = s
        .gql("steward-1", REGISTER_CITIZEN, json!({ "input": dup }))
        .await;
    assert_eq!(code(&body), "CONFLICT");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "DUPLICATE_KEY");

    // Malformed input is INVALID_INPUT naming the problem, and writes nothing.
    let head = s.node.log.head().await.unwrap();
    let body = s
        .gql(
            "steward-1",
            REGISTER_CITIZEN,
            json!({ "input": { "citizen": id, "pin": "12" } }),
        )
        .await;
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");
    assert_eq!(s.node.log.head().await.unwrap(), head);
}

const CITIZEN_BY_PIN: &str = "query($pin: String!) { citizen(pin: $pin) { id pin name { full } birthDate permanentResidence { address } } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_reads_by_pin_and_the_read_is_in_the_access_log() {
    let s = start().await;
    let (id, pin) = citizen(&s, 2, "Lê", "Văn", "Bình", false, 1985).await;
    let data = s
        .ok("social-insurance", CITIZEN_BY_PIN, json!({ "pin": pin }))
        .await;
    assert_eq!(data["citizen"]["name"]["full"], "Lê Văn Bình");

    // The auditor sees who read what, on whose behalf, for which case.
    let log = s
        .ok("auditor-1", "query($c: String!) { accessLog(citizen: $c) { principal role endUser case fieldGroups operation hash } }", json!({ "c": format!("citizen-{id}") }))
        .await;
    let entries = log["accessLog"].as_array().unwrap();
    let service_read = entries
        .iter()
        .find(|e| e["principal"] == "social-insurance")
        .expect("the service's read is logged");
    assert_eq!(service_read["endUser"], "officer-7");
    assert_eq!(service_read["case"], "HS-2026-0042");
    assert_eq!(service_read["role"], "service");
    let groups: Vec<&str> = service_read["fieldGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert_eq!(groups, ["identity", "residence"]);
    assert_eq!(service_read["hash"].as_str().unwrap().len(), 64);
    let v = s
        .ok(
            "auditor-1",
            "{ verifyAccessLog { intact events } }",
            json!({}),
        )
        .await;
    assert_eq!(v["verifyAccessLog"]["intact"], true);
    assert!(v["verifyAccessLog"]["events"].as_i64().unwrap() >= 1);

    // Without the officer and the case, the service is refused and nothing is logged.
    let before = entries.len();
    let (_, body) = s
        .gql_with(
            "social-insurance",
            CITIZEN_BY_PIN,
            json!({ "pin": pin }),
            &[],
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN");
    let log = s
        .ok(
            "auditor-1",
            "query($c: String!) { accessLog(citizen: $c) { principal } }",
            json!({ "c": format!("citizen-{id}") }),
        )
        .await;
    assert_eq!(log["accessLog"].as_array().unwrap().len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_outside_the_scopes_is_refused_by_name() {
    let s = start().await;
    let (_, pin) = citizen(&s, 3, "Phạm", "Thu", "Trang", true, 1992).await;
    // The tax office may read businesses only.
    let body = s
        .gql(
            "tax-office",
            "query($pin: String!) { citizen(pin: $pin) { id } }",
            json!({ "pin": pin }),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    // A service with identity but not ... : social insurance reading a parcel list is fine, but
    // the tax office asking a citizen's name through a business is refused naming the field.
    let (cid, _) = citizen(&s, 4, "Vũ", "Đức", "Thắng", false, 1970).await;
    let bid = Uuid::now_v7();
    let business = json!({
        "business": bid, "code": "0200566628",
        "names": { "vietnamese": "Công ty TNHH Cảng Xanh" },
        "headOffice": { "commune": "11311", "street": "Số 1 Điện Biên Phủ" },
        "legalRepresentatives": [cid], "charterCapital": 5000000000u64,
        "businessLines": ["5210"], "registrationDate": "2024-03-01",
        "origin": { "kind": "REGISTRATION" }
    });
    s.ok(
        "steward-1",
        "mutation($i: RegisterBusinessInput!) { registerBusiness(input: $i) { position } }",
        json!({ "i": business }),
    )
    .await;
    let data = s
        .ok(
            "tax-office",
            "{ business(code: \"0200566628\") { name legalRepresentatives { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["business"]["name"], "Công ty TNHH Cảng Xanh");
    assert_eq!(
        data["business"]["legalRepresentatives"][0]["id"],
        format!("citizen-{cid}")
    );
    let body = s
        .gql(
            "tax-office",
            "{ business(code: \"0200566628\") { legalRepresentatives { name { full } } } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN");
    assert_eq!(body["errors"][0]["extensions"]["field"], "name", "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("identity")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_corrections_need_a_different_supervisor() {
    let s = start().await;
    let (id, _) = citizen(&s, 5, "Đỗ", "Minh", "Khoa", false, 1988).await;
    let record = format!("citizen-{id}");
    let correction = Uuid::now_v7();
    let propose = json!({
        "record": record, "correction": correction,
        "changes": [{ "field": "birth_date", "old": "1988", "new": "1988-11-20" }],
        "reason": "sai ngày sinh so với giấy khai sinh gốc",
        "legalBasis": { "documentNumber": "45/QĐ-UBND", "documentDate": "2026-11-02" }
    });
    // A protected field cannot be corrected directly.
    let direct = json!({
        "record": record, "changes": [{ "field": "birth_date", "old": "1988", "new": "1988-11-20" }],
        "reason": "x", "legalBasis": { "documentNumber": "45/QĐ-UBND", "documentDate": "2026-11-02" }
    });
    let body = s
        .gql(
            "steward-1",
            "mutation($i: CorrectRecordInput!) { correctRecord(input: $i) { position } }",
            json!({ "i": direct }),
        )
        .await;
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "PROTECTED_FIELD");

    s.ok(
        "steward-1",
        "mutation($i: ProposeCorrectionInput!) { proposeCorrection(input: $i) { position } }",
        json!({ "i": propose }),
    )
    .await;
    let approve = json!({ "record": record, "correction": correction });
    const APPROVE: &str = "mutation($i: ApproveCorrectionInput!) { approveCorrection(input: $i) { citizens { birthDate corrections { status proposedBy reviewedBy } } } }";
    // A steward may not approve at all.
    assert_eq!(
        code(&s.gql("steward-2", APPROVE, json!({ "i": approve })).await),
        "FORBIDDEN"
    );
    let data = s.ok("supervisor-1", APPROVE, json!({ "i": approve })).await;
    let c = &data["approveCorrection"]["citizens"][0];
    assert_eq!(c["birthDate"], "1988-11-20");
    assert_eq!(c["corrections"][0]["status"], "APPROVED");
    assert_eq!(c["corrections"][0]["proposedBy"], "steward-1");
    assert_eq!(c["corrections"][0]["reviewedBy"], "supervisor-1");

    // The auditor sees both steps with their actors, and the stream verifies.
    let h = s
        .ok("auditor-1", "query($r: String!) { history(record: $r) { eventType actor reason hash prevStreamHash } verifyStream(record: $r) { intact events } }", json!({ "r": record }))
        .await;
    let types: Vec<&str> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "CitizenRegistered",
            "CorrectionProposed",
            "CorrectionApproved"
        ]
    );
    assert_eq!(h["history"][1]["actor"], "steward-1");
    assert_eq!(h["history"][2]["actor"], "supervisor-1");
    assert_eq!(h["history"][1]["prevStreamHash"], h["history"][0]["hash"]);
    assert_eq!(h["verifyStream"], json!({ "intact": true, "events": 3 }));

    // As of the proposal, the birth date was still the old one.
    let past = s
        .ok("auditor-1", "query($id: String!, $p: Int!) { citizen(id: $id, asOf: { position: $p }) { birthDate version } }", json!({ "id": record, "p": s.node.log.head().await.unwrap().unwrap().position - 2 }))
        .await;
    assert_eq!(past["citizen"]["birthDate"], "1988");
    // A service may not look into the past.
    let body = s
        .gql(
            "social-insurance",
            "query($id: String!) { citizen(id: $id, asOf: { position: 0 }) { birthDate } }",
            json!({ "id": record }),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN");
}

/// Every role against every kind of operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix() {
    let s = start().await;
    let (id, pin) = citizen(&s, 6, "Hoàng", "Văn", "Nam", false, 1975).await;
    let record = format!("citizen-{id}");
    let ops: Vec<(&str, String, Value)> = vec![
        (
            "identity",
            "query($p: String!) { citizen(pin: $p) { name { full } } }".into(),
            json!({ "p": pin }),
        ),
        (
            "residence",
            "query($r: String!) { citizen(id: $r) { permanentResidence { address } } }".into(),
            json!({ "r": record }),
        ),
        (
            "family",
            "query($r: String!) { citizen(id: $r) { spouse { id } } }".into(),
            json!({ "r": record }),
        ),
        (
            "land",
            "query($r: String!) { citizen(id: $r) { parcels { id } } }".into(),
            json!({ "r": record }),
        ),
        (
            "search",
            "{ citizens(search: \"hoang\") { edges { node { id } } } }".into(),
            json!({}),
        ),
        (
            "businesses",
            "{ businesses { edges { node { id } } } }".into(),
            json!({}),
        ),
        (
            "changes",
            "{ changes { changes { position } } }".into(),
            json!({}),
        ),
        (
            "history",
            "query($r: String!) { history(record: $r) { hash } }".into(),
            json!({ "r": record }),
        ),
        ("verify", "{ verifyLog { intact } }".into(), json!({})),
        (
            "accessLog",
            "query($r: String!) { accessLog(citizen: $r) { principal } }".into(),
            json!({ "r": record }),
        ),
        (
            "mutate",
            CHANGE_RESIDENCE.into(),
            json!({ "input": change_residence(id, "11311", "Số 1", "2025-01-01") }),
        ),
    ];
    use std::collections::HashMap;
    let expect: HashMap<&str, [&str; 11]> = HashMap::from([
        //                 identity     residence    family       land         search       businesses   changes  history      verify       accessLog    mutate
        (
            "social-insurance",
            [
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
            ],
        ),
        (
            "tax-office",
            [
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "OK",
                "OK",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
            ],
        ),
        (
            "steward-1",
            [
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "FORBIDDEN",
                "FORBIDDEN",
                "OK",
            ],
        ),
        (
            "supervisor-1",
            [
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "FORBIDDEN",
                "FORBIDDEN",
                "OK",
            ],
        ),
        (
            "auditor-1",
            [
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "OK",
                "FORBIDDEN",
            ],
        ),
        (
            "admin-1",
            [
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "FORBIDDEN",
                "OK",
                "OK",
                "FORBIDDEN",
                "OK",
                "OK",
                "FORBIDDEN",
            ],
        ),
        ("", ["UNAUTHENTICATED"; 11]),
        ("cdb_not-a-real-token", ["UNAUTHENTICATED"; 11]),
    ]);
    let mut failures = Vec::new();
    for (who, row) in &expect {
        for ((name, query, vars), want) in ops.iter().zip(row) {
            let body = s.gql(who, query, vars.clone()).await;
            let got = code(&body);
            if got != *want {
                failures.push(format!(
                    "{who:>18} {name:<10} expected {want}, got {got}: {body}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "authorization matrix:\n{}",
        failures.join("\n")
    );
}

async fn ws_connect(
    s: &Server,
    protocol: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut req = format!("ws://{}/graphql", s.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws
}

async fn next_json(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] != "ka" && v["type"] != "ping" {
                return v;
            }
        }
    }
}

/// Social insurance learns of a death as it happens, over either WebSocket protocol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_change_subscription_delivers_deaths_live() {
    let s = start().await;
    for (n, protocol, start_type, data_type) in [
        (7, "graphql-transport-ws", "subscribe", "next"),
        (8, "graphql-ws", "start", "data"),
    ] {
        let (id, _) = citizen(&s, n, "Bùi", "Thị", "Lan", true, 1940).await;
        let mut ws = ws_connect(&s, protocol).await;
        let token = &s.tokens["social-insurance"];
        ws.send(Message::Text(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }).to_string().into())).await.unwrap();
        assert_eq!(next_json(&mut ws).await["type"], "connection_ack");
        // Subscribe from the current head, so the death below is delivered however late the
        // subscription starts (catch-up, then live).
        let head = s.node.log.head().await.unwrap().unwrap().position;
        let sub = json!({ "id": "1", "type": start_type, "payload": {
            "query": "subscription($after: Int) { changes(after: $after, categories: [\"citizen\"], eventTypes: [\"CitizenDeceased\"]) { streamId eventType position } }",
            "variables": { "after": head }
        } });
        ws.send(Message::Text(sub.to_string().into()))
            .await
            .unwrap();
        s.ok(
            "steward-1",
            "mutation($i: RecordDeathInput!) { recordDeath(input: $i) { position } }",
            json!({ "i": { "citizen": id, "date": "2026-11-20" } }),
        )
        .await;
        let msg = next_json(&mut ws).await;
        assert_eq!(msg["type"], data_type, "{protocol}: {msg}");
        assert_eq!(
            msg["payload"]["data"]["changes"]["streamId"],
            format!("citizen-{id}")
        );
        assert_eq!(
            msg["payload"]["data"]["changes"]["eventType"],
            "CitizenDeceased"
        );
    }
    // A bad token is refused at connection_init.
    let mut ws = ws_connect(&s, "graphql-transport-ws").await;
    ws.send(Message::Text(
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer cdb_wrong" } })
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("an answer");
    assert!(
        !matches!(refused, Some(Ok(Message::Text(ref t))) if t.contains("connection_ack")),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_the_server_keeps_serving() {
    let s = start().await;
    let me = "{ me { id role } }";
    let cases: Vec<(&str, String, &str)> = vec![
        ("syntax", "{ me { id ".into(), "INVALID_INPUT"),
        ("unknown field", "{ me { nope } }".into(), "INVALID_INPUT"),
        (
            "too deep",
            format!(
                "{{ citizens {{ edges {{ node {{ {} id {} }} }} }} }}",
                "father { ".repeat(12),
                "} ".repeat(12)
            ),
            "LIMIT_EXCEEDED",
        ),
        (
            "page too big",
            "{ businesses(first: 100000) { edges { cursor } } }".into(),
            "LIMIT_EXCEEDED",
        ),
        (
            "bad cursor",
            "{ businesses(after: \"zz\") { edges { cursor } } }".into(),
            "INVALID_INPUT",
        ),
        (
            "bad pin",
            "{ citizen(pin: \"123\") { id } }".into(),
            "INVALID_INPUT",
        ),
        (
            "both id and pin",
            "{ citizen(id: \"x\", pin: \"y\") { id } }".into(),
            "INVALID_INPUT",
        ),
    ];
    for (name, query, want) in cases {
        let body = s.gql("auditor-1", &query, json!({})).await;
        assert_eq!(code(&body), want, "{name}: {body}");
        assert_eq!(
            s.ok("auditor-1", me, json!({})).await["me"]["id"],
            "auditor-1",
            "still serving after {name}"
        );
    }
    // An oversized body is refused from its declared length, before it is read: a raw client
    // that declares 2 MiB gets 413 after sending only the headers.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            s.addr,
            s.tokens["auditor-1"],
            2 << 20
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
            .await
            .expect("an answer")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("LIMIT_EXCEEDED"), "{answer}");
    }
    // Wrong or missing tokens.
    let (status, body) = s.gql_with("cdb_forged", me, json!({}), &[]).await;
    assert_eq!((status, code(&body).as_str()), (401, "UNAUTHENTICATED"));
    let (status, _) = s.gql_with("", me, json!({}), &[]).await;
    assert_eq!(status, 401);
    assert_eq!(
        s.ok("auditor-1", me, json!({})).await["me"]["role"],
        "auditor"
    );
    // Probes.
    let health = s
        .http
        .get(format!("http://{}/healthz", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready = s
        .http
        .get(format!("http://{}/readyz", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

/// What a name search asks of its citizens, without `sex` (summary fields only, through a
/// fragment) and with it (whole states).
const SUMMARY_PAGE: &str = r#"query($s: String!) {
  citizens(search: $s, first: 10) {
    edges { cursor node { __typename id version restricted basis { knownAt validAt current } ...N } }
    pageInfo { hasNextPage endCursor }
  }
}
fragment N on Citizen { name { family middle given full } birthDate }"#;

/// The (code, path) of every error but those on `sex`, in order.
fn refusals_of(body: &Value) -> Vec<(String, Value)> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter(|e| {
                    e["path"]
                        .as_array()
                        .is_some_and(|p| p.last() != Some(&json!("sex")))
                })
                .map(|e| {
                    let code = e["extensions"]["code"].as_str().unwrap_or("none");
                    (code.to_owned(), e["path"].clone())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A search page whose selection asks its citizens only for `SUMMARY_FIELDS` reads them as
/// summaries, skipping the rest of each stored state; it is the page whole states give —
/// the same citizens, values, restriction refusals and cursors. A stored state damaged in a
/// field the summary skips proves which path ran: the summary page still reads, the page
/// that also asks for `sex` cannot. The same for a business's representatives and a parcel's
/// holders (a union: the fragment on `Business` asks nothing of a citizen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_page_of_summaries_is_the_page_of_whole_states() {
    let s = start().await;
    let mut ids = Vec::new();
    for (n, given, year) in [(1, "An", 1990), (2, "Anh", 1985), (3, "Bình", 1970)] {
        ids.push(citizen(&s, n, "Nguyễn", "Văn", given, false, year).await.0);
    }
    let dated = Uuid::now_v7();
    let input = register_citizen(
        dated,
        &pin(4, true, 2001),
        "Nguyễn",
        "Thị",
        "Ân",
        true,
        "2001-12-31",
    );
    s.ok("steward-1", REGISTER_CITIZEN, json!({ "input": input }))
        .await;
    s.ok(
        "steward-1",
        "mutation($i: RestrictRecordInput!) { restrictRecord(input: $i) { position } }",
        json!({ "i": { "record": format!("citizen-{}", ids[2]), "reason": "objection to processing",
            "legalBasis": { "documentNumber": "15/2026/QĐ-TA", "documentDate": "2026-03-02" } } }),
    )
    .await;

    // A business they represent (one restricted) and a parcel one of them holds with it.
    let business = Uuid::now_v7();
    s.ok(
        "steward-1",
        "mutation($i: RegisterBusinessInput!) { registerBusiness(input: $i) { position } }",
        json!({ "i": {
            "business": business, "code": "0200566628",
            "names": { "vietnamese": "Công ty TNHH Cảng Xanh" },
            "headOffice": { "commune": "11311", "street": "Số 1 Điện Biên Phủ" },
            "legalRepresentatives": [ids[0], ids[2]], "charterCapital": 5000000000u64,
            "businessLines": ["5210"], "registrationDate": "2024-03-01",
            "origin": { "kind": "REGISTRATION" } } }),
    )
    .await;
    s.ok(
        "steward-1",
        "mutation($i: RegisterParcelInput!) { registerParcel(input: $i) { position } }",
        json!({ "i": { "parcel": Uuid::now_v7(), "key": "11311/10507:12/345", "area": "125.50",
            "landUse": ["ODT"], "address": "Thửa 345",
            "holders": [{ "holder": { "kind": "CITIZEN", "id": ids[0] }, "share": "1/2" },
                        { "holder": { "kind": "BUSINESS", "id": business }, "share": "1/2" }] } }),
    )
    .await;
    let related = |citizen: &str| {
        format!(
            r#"{{ business(code: "0200566628") {{ legalRepresentatives {{ {citizen} }} }}
                 parcel(key: "11311/10507:12/345") {{ holders {{ shareNumerator holder {{
                   __typename ... on Citizen {{ {citizen} }} ... on Business {{ id code name }} }} }} }} }}"#
        )
    };
    let related_summaries = related("id version restricted name { full given } birthDate");
    let related_whole = related("id version restricted name { full given } birthDate sex");
    let strip_sex = |mut body: Value| {
        fn strip(v: &mut Value) {
            match v {
                Value::Object(m) => {
                    m.remove("sex");
                    m.values_mut().for_each(strip);
                }
                Value::Array(a) => a.iter_mut().for_each(strip),
                _ => {}
            }
        }
        strip(&mut body["data"]);
        body["data"].clone()
    };
    let relations = s
        .gql("social-insurance", &related_summaries, json!({}))
        .await;
    let relations_whole = s.gql("social-insurance", &related_whole, json!({})).await;
    let reps = relations["data"]["business"]["legalRepresentatives"]
        .as_array()
        .unwrap();
    assert_eq!(reps.len(), 2, "{relations}");
    assert_eq!(reps[0]["name"]["full"], "Nguyễn Văn An", "{relations}");
    assert_eq!(
        relations["data"]["parcel"]["holders"][0]["holder"]["name"]["given"], "An",
        "{relations}"
    );
    assert_eq!(
        relations["data"],
        strip_sex(relations_whole.clone()),
        "{relations_whole}"
    );
    assert_eq!(refusals_of(&relations), refusals_of(&relations_whole));
    assert_eq!(
        refusals_of(&relations).len(),
        2,
        "the restricted one's name and birth date"
    );

    // Asked for their ids only, the related citizens are not read at all (`CitizenBody::Id`):
    // the same ids, the same refusals (none: an id is not refused).
    let related_ids = related("id");
    let relations_ids = s.gql("social-insurance", &related_ids, json!({})).await;
    let ids_of = |body: &Value| {
        let reps = body["data"]["business"]["legalRepresentatives"]
            .as_array()
            .unwrap();
        let holders = body["data"]["parcel"]["holders"].as_array().unwrap();
        reps.iter()
            .map(|r| r["id"].clone())
            .chain(holders.iter().map(|h| h["holder"]["id"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids_of(&relations_ids),
        ids_of(&relations),
        "{relations_ids}"
    );
    assert_eq!(ids_of(&relations_ids).len(), 4, "{relations_ids}");
    assert!(relations_ids.get("errors").is_none(), "{relations_ids}");

    let vars = json!({ "s": "nguyen" });
    let whole_query = SUMMARY_PAGE.replace("birthDate }", "birthDate sex }");
    let summaries = s.gql("social-insurance", SUMMARY_PAGE, vars.clone()).await;
    let whole = s.gql("social-insurance", &whole_query, vars.clone()).await;
    let edges = summaries["data"]["citizens"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 4, "{summaries}");
    let mut whole_edges = whole["data"]["citizens"]["edges"]
        .as_array()
        .unwrap()
        .clone();
    for e in &mut whole_edges {
        if let Some(node) = e["node"].as_object_mut() {
            node.remove("sex");
        }
    }
    assert_eq!(edges, &whole_edges, "{summaries}\n{whole}");
    assert_eq!(
        summaries["data"]["citizens"]["pageInfo"],
        whole["data"]["citizens"]["pageInfo"]
    );
    // The restricted citizen: RESTRICTED for each field the summary page asks, on both paths.
    let refused = refusals_of(&summaries);
    assert_eq!(
        refused.len(),
        2,
        "name and birthDate of the restricted one: {summaries}"
    );
    assert!(
        refused.iter().all(|(code, _)| code == "RESTRICTED"),
        "{refused:?}"
    );
    assert_eq!(refused, refusals_of(&whole));
    assert!(edges.iter().any(|e| e["node"]["birthDate"] == "2001-12-31"));

    // Damage a field of one stored state that a summary does not read.
    let target = format!("citizen-{}", ids[0]);
    let projections = rusqlite::Connection::open(s.data_dir().join("projections.db")).unwrap();
    projections.busy_timeout(Duration::from_secs(10)).unwrap();
    let damaged = projections
        .execute(
            r#"UPDATE records SET state = replace(state, '"sex":"male"', '"sex":"bogus"')
               WHERE record_id = ?1"#,
            [&target],
        )
        .unwrap();
    assert_eq!(damaged, 1);
    drop(projections);
    let again = s.gql("social-insurance", SUMMARY_PAGE, vars.clone()).await;
    assert_eq!(again["data"], summaries["data"], "{again}");
    let relations_again = s
        .gql("social-insurance", &related_summaries, json!({}))
        .await;
    assert_eq!(
        relations_again["data"], relations["data"],
        "{relations_again}"
    );
    let relations_whole_again = s.gql("social-insurance", &related_whole, json!({})).await;
    assert!(
        relations_whole_again["errors"].as_array().is_some_and(|e| e
            .iter()
            .any(|e| e["extensions"]["code"] == "PROJECTION_DAMAGED")),
        "a damaged state read whole must fail: {relations_whole_again}"
    );
    let whole_again = s.gql("social-insurance", &whole_query, vars).await;
    assert!(
        whole_again["errors"].as_array().is_some_and(|e| e
            .iter()
            .any(|e| e["extensions"]["code"] == "PROJECTION_DAMAGED")),
        "a damaged state read whole must fail: {whole_again}"
    );

    // Damage its summary too: summaries fail, the relations' ids do not read it.
    let projections = rusqlite::Connection::open(s.data_dir().join("projections.db")).unwrap();
    projections.busy_timeout(Duration::from_secs(10)).unwrap();
    let damaged = projections
        .execute(
            "UPDATE records SET family = NULL WHERE record_id = ?1",
            [&target],
        )
        .unwrap();
    assert_eq!(damaged, 1);
    drop(projections);
    let relations_summaries_damaged = s
        .gql("social-insurance", &related_summaries, json!({}))
        .await;
    assert!(
        relations_summaries_damaged["errors"]
            .as_array()
            .is_some_and(|e| e
                .iter()
                .any(|e| e["extensions"]["code"] == "PROJECTION_DAMAGED")),
        "a damaged summary must fail: {relations_summaries_damaged}"
    );
    let relations_ids_again = s.gql("social-insurance", &related_ids, json!({})).await;
    assert_eq!(relations_ids_again, relations_ids);

    // Read as summaries, every citizen shown is still a logged personal read: the page's
    // names (identity), the representative (business) and the holder (land).
    let groups_read = |log: &Value| -> Vec<String> {
        let mut groups: Vec<String> = log["accessLog"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["principal"] == "social-insurance")
            .flat_map(|e| e["fieldGroups"].as_array().unwrap().clone())
            .map(|g| g.as_str().unwrap().to_owned())
            .collect();
        groups.sort();
        groups.dedup();
        groups
    };
    let log_of = |id: Uuid| {
        s.ok(
            "auditor-1",
            "query($c: String!) { accessLog(citizen: $c) { principal fieldGroups } }",
            json!({ "c": format!("citizen-{id}") }),
        )
    };
    assert_eq!(
        groups_read(&log_of(ids[0]).await),
        ["business", "identity", "land"]
    );
    assert_eq!(groups_read(&log_of(ids[1]).await), ["identity"]);
    assert_eq!(groups_read(&log_of(dated).await), ["identity"]);
}

/// The server keeps parsed documents and runs a kept one without copying it (async-graphql's
/// fifth vendored change). The same text sent again must still follow each request's own
/// variables: `@skip`/`@include` applied to that request's copy alone (in the operation and in
/// a fragment), never to the kept document; and `operationName` picks each operation of a
/// document with several, the kept document unchanged by the one before.
#[tokio::test]
async fn a_kept_document_follows_each_requests_variables_and_operation_name() {
    let s = start().await;
    const CONDITIONAL: &str = "query Q($with: Boolean!, $without: Boolean!) {
        me { id role @skip(if: $without) ...Groups @include(if: $with) }
    }
    fragment Groups on Me { fieldGroups purposes @include(if: $with) }";
    // The keys of `me`, sorted (serde_json's map sorts them).
    let fields = |body: &Value| -> Vec<String> {
        let me = body["me"].as_object().unwrap_or_else(|| panic!("{body}"));
        me.keys().cloned().collect()
    };
    for (with, without, expected) in [
        (false, true, vec!["id"]),
        (true, false, vec!["fieldGroups", "id", "purposes", "role"]),
        (false, false, vec!["id", "role"]),
        (true, true, vec!["fieldGroups", "id", "purposes"]),
        (false, true, vec!["id"]),
    ] {
        let body = s
            .ok(
                "auditor-1",
                CONDITIONAL,
                json!({ "with": with, "without": without }),
            )
            .await;
        assert_eq!(fields(&body), expected, "with {with}, without {without}");
    }

    // No condition at all: the kept document itself runs, request after request.
    for _ in 0..3 {
        let body = s.ok("auditor-1", "{ me { id role } }", json!({})).await;
        assert_eq!(fields(&body), ["id", "role"]);
    }

    const TWO: &str = "query A { me { id } } query B { me { role } }";
    let run = |name: Option<&'static str>| {
        let request = s
            .http
            .post(s.url())
            .bearer_auth(&s.tokens["auditor-1"])
            .json(&json!({ "query": TWO, "operationName": name }));
        async move {
            let response = request.send().await.unwrap();
            response.json::<Value>().await.unwrap()
        }
    };
    for (name, expected) in [("B", "role"), ("A", "id"), ("B", "role")] {
        let body = run(Some(name)).await;
        assert_eq!(fields(&body["data"]), [expected], "{name}: {body}");
    }
    for name in [Some("C"), None] {
        let body = run(name).await;
        assert!(body["data"].is_null(), "{name:?}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("Unknown operation") || message.contains("name required"),
            "{name:?}: {body}"
        );
    }
}
