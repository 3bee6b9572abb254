//! No personal read without its trace, on every transport: HTTP POST, each operation of a
//! batch, GET, and both WebSocket protocols (`graphql-transport-ws`, `graphql-ws`). A lookup by
//! PIN and a relation that ties a citizen to a parcel are personal reads too, and the admin role
//! makes none. An access log written in format v1 stays listed and verified beside the v2
//! entries written after it.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use citydb_api::{AccessLog, FieldGroup, Principal, RequestContext, Role};
use citydb_registry::CommandRequest;
use citydb_store::{Store, StoreConfig};
use common::*;
use uuid::Uuid;

/// A citizen of the demo fixture (README's tour) and a parcel one citizen holds.
const PIN: &str = "030174835130";
const PARCEL: &str = "11065/11065:1/1";
const BY_PIN: &str =
    "query ByPin { citizen(pin: \"030174835130\") { id name { full } birthDate } }";

async fn seeded() -> Server {
    let s = start().await;
    for (n, line) in include_str!("../fixtures/demo.ndjson").lines().enumerate() {
        let request: CommandRequest = serde_json::from_str(line).unwrap();
        s.node
            .registry
            .execute(request)
            .await
            .unwrap_or_else(|e| panic!("demo line {}: {e}", n + 1));
    }
    let head = s.node.log.head().await.unwrap().unwrap();
    s.node
        .projections
        .wait_for(head.position, Duration::from_secs(60))
        .await
        .unwrap();
    s
}

async fn citizen_id(s: &Server) -> String {
    let data = s
        .ok(
            "steward-1",
            &format!("{{ citizen(pin: \"{PIN}\") {{ id }} }}"),
            json!({}),
        )
        .await;
    data["citizen"]["id"].as_str().unwrap().to_owned()
}

/// The citizen's access-log entries, oldest first: (principal, operation, field groups).
async fn entries(s: &Server, citizen: &str) -> Vec<(String, String, Vec<String>)> {
    let data = s
        .ok(
            "auditor-1",
            "query($c: String!) { accessLog(citizen: $c) { principal operation fieldGroups } }",
            json!({ "c": citizen }),
        )
        .await;
    let mut out: Vec<_> = data["accessLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["principal"].as_str().unwrap().to_owned(),
                e["operation"].as_str().unwrap().to_owned(),
                e["fieldGroups"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|g| g.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    out.reverse();
    out
}

async fn ws_query(s: &Server, protocol: &str, query: &str) -> Value {
    let mut req = format!("ws://{}/graphql", s.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let token = &s.tokens["social-insurance"];
    let init = json!({ "type": "connection_init", "payload": {
        "Authorization": format!("Bearer {token}"),
        "X-Road-UserId": "officer-7",
        "X-Road-Issue": "HS-2026-0042",
        "X-Purpose": "social-insurance",
    } });
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    let start = if protocol == "graphql-ws" {
        "start"
    } else {
        "subscribe"
    };
    let mut sent = false;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message")
            .unwrap()
            .unwrap();
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str().unwrap_or_default() {
            "connection_ack" if !sent => {
                sent = true;
                let sub = json!({ "id": "1", "type": start, "payload": { "query": query } });
                ws.send(Message::Text(sub.to_string().into()))
                    .await
                    .unwrap();
            }
            "next" | "data" | "error" => return v,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_transport_logs_every_personal_read() {
    let s = seeded().await;
    let id = citizen_id(&s).await;
    let mut expected = entries(&s, &id).await;
    let service = |op: &str, groups: &[&str]| {
        (
            "social-insurance".to_owned(),
            op.to_owned(),
            groups.iter().map(|g| (*g).to_owned()).collect::<Vec<_>>(),
        )
    };

    // HTTP POST.
    let data = s.ok("social-insurance", BY_PIN, json!({})).await;
    assert!(data["citizen"]["name"]["full"].is_string());
    expected.push(service("ByPin", &["identity"]));
    assert_eq!(entries(&s, &id).await, expected, "POST");

    // A batch: each operation is logged under its own name.
    let batch = json!([
        { "query": BY_PIN },
        { "query": "query Home { citizen(pin: \"030174835130\") { permanentResidence { address } } }" },
    ]);
    let resp = s
        .http
        .post(s.url())
        .bearer_auth(&s.tokens["social-insurance"])
        .header("X-Road-UserId", "officer-7")
        .header("X-Road-Issue", "HS-2026-0042")
        .header("X-Purpose", "social-insurance")
        .json(&batch)
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert!(
        body[1]["data"]["citizen"]["permanentResidence"].is_object(),
        "{body}"
    );
    // The operations of a batch run concurrently, so their entries may land in either order.
    expected.push(service("ByPin", &["identity"]));
    expected.push(service("Home", &["identity", "residence"]));
    let got = entries(&s, &id).await;
    let n = expected.len();
    let (mut got_sorted, mut expected_sorted) = (got.clone(), expected.clone());
    got_sorted[n.saturating_sub(2)..].sort();
    expected_sorted[n - 2..].sort();
    assert_eq!(got_sorted, expected_sorted, "batch");
    // Later steps append after the batch's entries in the order they were written.
    expected = got;

    // GET.
    let resp = s
        .http
        .get(s.url())
        .query(&[("query", BY_PIN)])
        .bearer_auth(&s.tokens["social-insurance"])
        .header("X-Road-UserId", "officer-7")
        .header("X-Road-Issue", "HS-2026-0042")
        .header("X-Purpose", "social-insurance")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert!(body["data"]["citizen"]["birthDate"].is_string(), "{body}");
    expected.push(service("ByPin", &["identity"]));
    assert_eq!(entries(&s, &id).await, expected, "GET");

    // Both WebSocket protocols.
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let msg = ws_query(&s, protocol, BY_PIN).await;
        assert!(
            msg["payload"]["data"]["citizen"]["name"]["full"].is_string(),
            "{protocol}: {msg}"
        );
        expected.push(service("ByPin", &["identity"]));
        assert_eq!(entries(&s, &id).await, expected, "{protocol}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_and_links_are_personal_reads_and_admin_makes_none() {
    let s = seeded().await;
    let id = citizen_id(&s).await;
    let before = entries(&s, &id).await.len();

    // A lookup by PIN that selects only the id still ties the number to the record: logged.
    let data = s
        .ok(
            "social-insurance",
            &format!("{{ citizen(pin: \"{PIN}\") {{ id }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(data["citizen"]["id"], id);
    let after = entries(&s, &id).await;
    assert_eq!(after.len(), before + 1);
    assert_eq!(after.last().unwrap().2, ["identity"]);

    // A parcel's holders: the link to each citizen holder is that citizen's land data.
    let q = format!(
        "{{ parcel(key: \"{PARCEL}\") {{ holders {{ holder {{ ... on Citizen {{ id }} }} }} }} }}"
    );
    let data = s.ok("social-insurance", &q, json!({})).await;
    let holder = data["parcel"]["holders"][0]["holder"]["id"]
        .as_str()
        .expect("a citizen holder")
        .to_owned();
    let logged = entries(&s, &holder).await;
    assert_eq!(logged.last().unwrap().0, "social-insurance");
    assert!(logged.last().unwrap().2.contains(&"land".to_owned()));

    // The admin role reads no personal data: neither by PIN nor through a parcel.
    let admin_before = entries(&s, &holder).await.len();
    let body = s
        .gql(
            "admin-1",
            &format!("{{ citizen(pin: \"{PIN}\") {{ id }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let body = s.gql("admin-1", &q, json!({})).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    assert!(body["data"].is_null() || body["data"]["parcel"]["holders"][0]["holder"].is_null());
    assert_eq!(entries(&s, &holder).await.len(), admin_before);
}

/// A request context as the old (v1) code path recorded it.
fn context(principal: &str, case: &str) -> RequestContext {
    RequestContext {
        principal: Principal {
            id: principal.to_owned(),
            role: Role::Service,
            field_groups: FieldGroup::ALL.into_iter().collect(),
            purposes: ["eligibility".to_owned()].into_iter().collect(),
            citizen: None,
            issues_citizen_tokens: false,
        }
        .into(),
        end_user: Some("officer-3".to_owned()),
        case: Some(case.to_owned()),
        purpose: Some("eligibility".to_owned()),
        correlation_id: Uuid::now_v7(),
    }
}

fn verify_cli(data: &std::path::Path, extra: &[&str]) -> (Option<i32>, String) {
    let data = data.to_str().unwrap();
    let mut args = vec!["verify", "--data", data, "--access-log"];
    args.extend_from_slice(extra);
    let out = common::binary::run(&args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// `tools/verify_access_log.py` (written from docs/audit-format.md alone) on the file: its exit
/// code and output, or `None` (a loud skip; a failure under CITYDB_REQUIRE_ALL=1) without
/// Python's blake3.
fn python_verify(data: &std::path::Path, extra: &[&str]) -> Option<(Option<i32>, String)> {
    let has_blake3 = std::process::Command::new("python3")
        .args(["-c", "import blake3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_blake3 {
        citydb_postgres::testkit::skip(
            "tools/verify_access_log.py in tests/access_log.rs",
            "`python3 -c 'import blake3'` fails",
            "python3 -m pip install blake3",
        );
        return None;
    }
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/verify_access_log.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(data.join("access-log.db"))
        .args(extra)
        .output()
        .expect("run python3");
    Some((
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// An access log written by the old code path (format v1, one event per citizen read) stays
/// listed and verified once the node writes v2 entries after it: one chain, one numbering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_access_log_stays_listed_and_verified_beside_v2_entries() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (citizen, other) = (Uuid::now_v7(), Uuid::now_v7());
    {
        let opened = citydb_store::open(&Store::Embedded, data, &StoreConfig::default())
            .await
            .unwrap();
        let old = AccessLog::new(opened.access);
        old.record_v1(
            &context("old-service", "HS-1"),
            &[(citizen, vec![FieldGroup::Identity])],
            "ByPin",
        )
        .await
        .unwrap();
        old.record_v1(
            &context("old-service", "HS-2"),
            &[
                (citizen, vec![FieldGroup::Identity, FieldGroup::Residence]),
                (other, vec![FieldGroup::Identity]),
            ],
            "Home",
        )
        .await
        .unwrap();
        assert_eq!(old.log().head().await.unwrap().unwrap().position, 2);
        assert_eq!(old.entries().first_seq().await.unwrap(), None);
    }
    let (code, text) = verify_cli(data, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("intact: 3 events"), "{text}");

    // The node writes v2 after them: the chain goes on at position 3.
    let opened = citydb_store::open(&Store::Embedded, data, &StoreConfig::default())
        .await
        .unwrap();
    let log = AccessLog::new(opened.access);
    log.record(
        &context("new-service", "HS-3"),
        &[
            (citizen, vec![FieldGroup::Land]),
            (other, vec![FieldGroup::Identity]),
        ],
        "Holders",
    )
    .await
    .unwrap();
    let entries = log.for_citizen(citizen, 10, None).await.unwrap();
    let seen: Vec<(u64, u64, &str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e.position,
                e.version,
                e.read.principal.as_str(),
                e.read.operation.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (3, 2, "new-service", "Holders"),
            (1, 1, "old-service", "Home"),
            (0, 0, "old-service", "ByPin"),
        ]
    );
    assert_eq!(entries[0].read.field_groups, [FieldGroup::Land]);
    assert_eq!(entries[0].read.case.as_deref(), Some("HS-3"));
    assert_eq!(entries[0].event_id, None);
    assert_eq!(
        entries[1].read.field_groups,
        [FieldGroup::Identity, FieldGroup::Residence]
    );
    // Paging crosses from v2 into v1 by version.
    let page = log.for_citizen(citizen, 1, Some(2)).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!((page[0].position, page[0].version), (1, 1));
    let report = log.verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 4);
    let head = report.head.unwrap();
    assert_eq!(head.position, 3);
    assert_eq!(head.hash.to_hex(), entries[0].hash);

    // The CLI proves the same, and checks a head written down earlier in either format.
    let (code, text) = verify_cli(data, &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("intact: 4 events"), "{text}");
    assert!(text.contains(&head.hash.to_hex()), "{text}");
    let v2_head = format!("3:{}", head.hash.to_hex());
    let (code, text) = verify_cli(data, &["--expected-head", &v2_head]);
    assert_eq!(code, Some(0), "{text}");
    let v1_event = log.log().read_all(1, 1).await.unwrap();
    let v1_head = format!("1:{}", v1_event[0].hash.to_hex());
    let (code, text) = verify_cli(data, &["--expected-head", &v1_head]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = verify_cli(
        data,
        &["--expected-head", &format!("4:{}", head.hash.to_hex())],
    );
    assert_eq!(code, Some(2), "a log shorter than its head: {text}");
    // An independent verifier, from the spec alone, agrees.
    if let Some((code, text)) = python_verify(data, &["--expected-head", &v2_head]) {
        assert_eq!(code, Some(0), "{text}");
        assert!(
            text.contains(&format!("intact: 4 entries; head 3 {}", head.hash.to_hex())),
            "{text}"
        );
    }

    // `export` and `migrate` carry v1 events only: with v2 entries they refuse rather than
    // drop them.
    let out = data.join("export.ndjson");
    let exported = common::binary::run(&[
        "export",
        "--data",
        data.to_str().unwrap(),
        "--access-log",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!exported.status.success());
    assert!(
        String::from_utf8_lossy(&exported.stderr).contains("format v2"),
        "{exported:?}"
    );
    let target = data.join("copy.db");
    let migrated = common::binary::run(&[
        "migrate",
        "--from",
        data.join("access-log.db").to_str().unwrap(),
        "--to",
        target.to_str().unwrap(),
        "--access-log",
    ]);
    assert!(!migrated.status.success());
    assert!(
        String::from_utf8_lossy(&migrated.stderr).contains("format v2"),
        "{migrated:?}"
    );

    // Changing the citizen index (derived from the chain) is found, and so is changing an
    // entry. (A row added: the node's own rows may still be in its tail, not yet in the table.)
    let db = rusqlite::Connection::open(data.join("access-log.db")).unwrap();
    db.execute("INSERT INTO access_by_citizen VALUES (0, 99, 3)", [])
        .unwrap();
    let (code, text) = verify_cli(data, &[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("access_by_citizen"), "{text}");
    if let Some((code, text)) = python_verify(data, &[]) {
        assert_eq!(code, Some(2), "{text}");
        assert!(text.contains("access_by_citizen"), "{text}");
    }
    db.execute("DELETE FROM access_by_citizen WHERE ordinal = 99", [])
        .unwrap();
    let (code, text) = verify_cli(data, &[]);
    assert_eq!(code, Some(0), "{text}");
    db.execute(
        "UPDATE access_entries SET body = substr(body, 1, length(body) - 1)",
        [],
    )
    .unwrap();
    let (code, text) = verify_cli(data, &[]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("BROKEN at position 3"), "{text}");
    if let Some((code, text)) = python_verify(data, &[]) {
        assert_eq!(code, Some(2), "{text}");
        assert!(
            text.contains("BROKEN at position 3: hash_mismatch"),
            "{text}"
        );
    }
}
