//! No personal read without its trace, on every transport: HTTP POST, each operation of a
//! batch, GET, and both WebSocket protocols (`graphql-transport-ws`, `graphql-ws`). A lookup by
//! PIN and a relation that ties a citizen to a parcel are personal reads too, and the admin role
//! makes none.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use citydb_registry::CommandRequest;
use common::*;

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
