//! One client cannot starve the others: per-principal rate and in-flight limits answer
//! `429 RATE_LIMITED` with `Retry-After`; and principals are reloaded without a restart, so a
//! leaked token is revoked at once.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use citydb_api::{AuthConfig, PrincipalLimits, Token};

fn principals(entries: &[(&str, &Token)]) -> String {
    entries
        .iter()
        .map(|(id, token)| {
            format!(
                "[[principal]]\nid = {id:?}\nrole = \"auditor\"\ntoken_hash = {:?}\n\n",
                token.hash()
            )
        })
        .collect()
}

/// A node with these principals and admission limits.
async fn run(auth: &str, limits: PrincipalLimits) -> common::Server {
    let auth = AuthConfig::from_toml_str(auth).unwrap();
    common::start_with(move |options| {
        options.auth = auth;
        options.server_limits.per_principal = limits;
    })
    .await
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A `graphql-transport-ws` connection with `connection_init` sent (not yet acknowledged).
async fn ws_init(r: &common::Server, token: &Token) -> Socket {
    let mut req = format!("ws://{}/graphql", r.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", token.as_str()) } });
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    ws
}

async fn me(r: &common::Server, token: &Token) -> (u16, Option<String>, Value) {
    let resp = reqwest::Client::new()
        .post(r.url())
        .bearer_auth(token.as_str())
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_over_its_rate_is_refused_and_others_are_not() {
    let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
    let r = run(
        &principals(&[("portal", &a), ("tax", &b)]),
        PrincipalLimits {
            // One per minute after a burst of two: the third request is refused however slow
            // the machine is.
            requests_per_second: 1,
            burst: 2,
            max_in_flight: 0,
        },
    )
    .await;
    // The burst of two passes; of the next three, sent in far less time than the rate refills
    // three places (3 s), at least one is refused.
    assert_eq!(me(&r, &a).await.0, 200);
    assert_eq!(me(&r, &a).await.0, 200);
    let started = std::time::Instant::now();
    let mut refusal = None;
    for _ in 0..3 {
        let (status, retry, body) = me(&r, &a).await;
        if status == 429 {
            refusal = Some((retry, body));
            break;
        }
        assert_eq!(status, 200);
    }
    if started.elapsed() < Duration::from_secs(2) {
        let (retry, body) = refusal.expect("a request over the rate was refused");
        assert_eq!(retry.as_deref(), Some("1"));
        assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
        assert_eq!(body["errors"][0]["extensions"]["retryAfterSeconds"], 1);
    }
    assert_eq!(me(&r, &b).await.0, 200, "another principal is not affected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_are_bounded_per_principal() {
    let (a, b) = (Token::generate().unwrap(), Token::generate().unwrap());
    let r = run(
        &principals(&[("portal", &a), ("tax", &b)]),
        PrincipalLimits {
            requests_per_second: 0,
            burst: 0,
            max_in_flight: 1,
        },
    )
    .await;
    // An open WebSocket connection holds the principal's one place.
    let mut ws = ws_init(&r, &a).await;
    let ack = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");
    let (status, retry, body) = me(&r, &a).await;
    assert_eq!((status, retry.as_deref()), (429, Some("1")), "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    assert_eq!(me(&r, &b).await.0, 200, "another principal is not affected");
    // Closing the connection frees the place.
    ws.close(None).await.unwrap();
    drop(ws);
    let mut freed = false;
    for _ in 0..100 {
        if me(&r, &a).await.0 == 200 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "the closed connection's place was never freed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn principals_reload_when_their_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("principals.toml");
    let (leaked, kept, new) = (
        Token::generate().unwrap(),
        Token::generate().unwrap(),
        Token::generate().unwrap(),
    );
    std::fs::write(&path, principals(&[("portal", &leaked), ("tax", &kept)])).unwrap();
    let r = run(
        &std::fs::read_to_string(&path).unwrap(),
        PrincipalLimits::default(),
    )
    .await;
    let _watch = citydb_api::reload::spawn_reload(
        r.node.authenticator(),
        path.clone(),
        Duration::from_millis(20),
    );
    assert_eq!(me(&r, &leaked).await.0, 200);

    // The portal's token leaked: the operator issues a new one and rewrites the file.
    std::fs::write(&path, principals(&[("portal", &new), ("tax", &kept)])).unwrap();
    let mut revoked = false;
    for _ in 0..200 {
        if me(&r, &leaked).await.0 == 401 {
            revoked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(revoked, "the leaked token still works");
    assert_eq!(me(&r, &new).await.0, 200);
    assert_eq!(me(&r, &kept).await.0, 200);

    // A broken file is reported and the principals in force stay.
    std::fs::write(&path, "[[principal]]\nid = \"portal\"\n").unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!citydb_api::reload::reload(
        &r.node.authenticator(),
        &path,
        "test"
    ));
    assert_eq!(me(&r, &new).await.0, 200);
    assert_eq!(me(&r, &kept).await.0, 200);
}

/// The real binary: `kill -HUP` reloads the principals. The file is rewritten with the same
/// length and its old modification time, so only the signal can have caused the reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_principals_of_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("principals.toml");
    let (leaked, new) = (Token::generate().unwrap(), Token::generate().unwrap());
    std::fs::write(&path, principals(&[("portal", &leaked)])).unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let data = dir.path().join("data");
    let server = common::binary::Serving::start(&[
        "--data",
        data.to_str().unwrap(),
        "--config",
        path.to_str().unwrap(),
    ]);
    server.wait_ready().await;
    let me = |token: String| {
        let url = format!("{}/graphql", server.base);
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "query": "{ me { id } }" }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(me(leaked.as_str().to_owned()).await, 200);
    let rewritten = principals(&[("portal", &new)]);
    assert_eq!(
        rewritten.len(),
        std::fs::metadata(&path).unwrap().len() as usize
    );
    std::fs::write(&path, rewritten).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    // The poll sees no change: the old token still works.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(me(leaked.as_str().to_owned()).await, 200);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut revoked = false;
    for _ in 0..200 {
        if me(leaked.as_str().to_owned()).await == 401 {
            revoked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(revoked, "SIGHUP did not reload the principals");
    assert_eq!(me(new.as_str().to_owned()).await, 200);
    let log = server.stop().join("\n");
    assert!(log.contains("principals reloaded"), "{log}");
}

/// Every operation sent over an open WebSocket connection counts against the rate: one
/// connection cannot send without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_over_a_websocket_count_against_the_rate() {
    let a = Token::generate().unwrap();
    let r = run(
        &principals(&[("portal", &a)]),
        PrincipalLimits {
            requests_per_second: 1,
            burst: 3,
            max_in_flight: 0,
        },
    )
    .await;
    let mut ws = ws_init(&r, &a).await;
    let started = std::time::Instant::now();
    // The connection took one place of the burst of three; of six operations sent at once, at
    // most two more (plus what refills meanwhile) pass.
    for id in 0..6 {
        let sub = json!({ "id": id.to_string(), "type": "subscribe", "payload": { "query": "{ me { id } }" } });
        ws.send(Message::Text(sub.to_string().into()))
            .await
            .unwrap();
    }
    let (mut answered, mut refused) = (0, 0);
    while answered + refused < 6 {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an answer")
            .unwrap()
            .unwrap();
        let Message::Text(t) = msg else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str().unwrap_or_default() {
            "next" if v["payload"]["data"]["me"]["id"] == "portal" => answered += 1,
            "next" | "error" => {
                assert!(t.contains("RATE_LIMITED"), "{t}");
                refused += 1;
            }
            _ => {}
        }
    }
    if started.elapsed() < Duration::from_secs(2) {
        assert!(refused >= 2, "answered {answered}, refused {refused}");
    }
    assert!(answered >= 1, "answered {answered}, refused {refused}");
}
