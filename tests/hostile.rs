//! The hostile-input suite: requests an attacker holding a valid (service) token can send,
//! each answered with a typed error while the server keeps answering `/healthz`.
//!
//! To add a case: append it to `CASES` (a query answered with a code) or write a test beside
//! the others for anything that needs its own transport. That work is bounded *before* it is
//! done is shown by counting in `crates/api/src/bounds.rs`'s unit tests (selections visited for
//! a fragment bomb); here the server must simply answer, and answer `/healthz` meanwhile. The
//! timeouts below are only a safety net against a hang, never a performance assertion.

mod common;

use std::time::Duration;

use serde_json::{Value, json};

use common::*;

/// A service with every field group, and its X-Road headers: the least a hostile caller needs.
const ATTACKER: &str = "social-insurance";

async fn healthy(s: &Server) {
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        s.http.get(format!("http://{}/healthz", s.addr)).send(),
    )
    .await
    .expect("/healthz answers")
    .expect("/healthz reachable");
    assert_eq!(r.status().as_u16(), 200);
}

fn nested_object(levels: usize) -> String {
    format!("{}1{}", "{a:".repeat(levels), "}".repeat(levels))
}

fn fragment_bomb(levels: usize) -> String {
    let mut q = String::from("query { ...G0 }\n");
    for i in 0..levels {
        q.push_str(&format!(
            "fragment G{i} on Query {{ ...G{n} ...G{n} }}\n",
            n = i + 1
        ));
    }
    q.push_str(&format!("fragment G{levels} on Query {{ me {{ id }} }}\n"));
    q
}

/// (name, query, expected code): sent as a service, one after the other.
fn cases() -> Vec<(&'static str, String, &'static str)> {
    vec![
        (
            "deep object argument (1,500 levels)",
            format!(
                "mutation {{ changeResidence(input: {}) {{ commandId }} }}",
                nested_object(1500)
            ),
            "LIMIT_EXCEEDED",
        ),
        (
            "deep list literal (3,000 levels)",
            format!(
                "{{ changes(eventTypes: {}\"x\"{}) {{ hasMore }} }}",
                "[".repeat(3000),
                "]".repeat(3000)
            ),
            "LIMIT_EXCEEDED",
        ),
        (
            "unknown field with a deep argument",
            format!("{{ nope(a: {}) }}", nested_object(2000)),
            "LIMIT_EXCEEDED",
        ),
        (
            "deep selections",
            format!("{{ {} id {} }}", "me { ".repeat(200), "} ".repeat(200)),
            "LIMIT_EXCEEDED",
        ),
        (
            "fragment bomb (24 levels)",
            fragment_bomb(24),
            "LIMIT_EXCEEDED",
        ),
        (
            "fragment cycle",
            "{ ...A } fragment A on Query { ...B } fragment B on Query { me { id } ...A }".into(),
            "INVALID_INPUT",
        ),
        (
            "long fragment chain",
            {
                let mut q = String::from("{ ...F0 }\n");
                for i in 0..500 {
                    q.push_str(&format!("fragment F{i} on Query {{ ...F{} }}\n", i + 1));
                }
                q.push_str("fragment F500 on Query { me { id } }\n");
                q
            },
            "LIMIT_EXCEEDED",
        ),
        (
            "alias amplification (5,000 aliases)",
            format!(
                "{{ {} }}",
                (0..5000)
                    .map(|i| format!("a{i}: me {{ id }}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            "LIMIT_EXCEEDED",
        ),
        (
            "many directives",
            format!("{{ me {} {{ id }} }}", "@skip(if: false) ".repeat(500)),
            "LIMIT_EXCEEDED",
        ),
        (
            "unbalanced braces",
            "{ me { id } ".repeat(10),
            "INVALID_INPUT",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_documents_get_typed_errors_and_the_server_keeps_serving() {
    let s = start().await;
    for (name, query, want) in cases() {
        let body =
            tokio::time::timeout(Duration::from_secs(60), s.gql(ATTACKER, &query, json!({})))
                .await
                .unwrap_or_else(|_| panic!("{name}: no answer"));
        assert_eq!(code(&body), want, "{name}: {body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.len() < 2048, "{name}: the error echoes the input");
        healthy(&s).await;
    }
}

/// Two fragment bombs at once (the request took 8.3 s before and stalled `/healthz`;
/// 30 levels stalled the server for minutes): both are refused, and `/healthz` answers while
/// they are in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_fragment_bombs_do_not_stall_the_server() {
    let s = start().await;
    let bomb = fragment_bomb(30);
    let (a, b, _) = tokio::join!(
        s.gql(ATTACKER, &bomb, json!({})),
        s.gql(ATTACKER, &bomb, json!({})),
        healthy(&s)
    );
    assert_eq!(code(&a), "LIMIT_EXCEEDED", "{a}");
    assert_eq!(code(&b), "LIMIT_EXCEEDED", "{b}");
    assert!(
        a["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("fields once its fragments are expanded"),
        "{a}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_variables_get_typed_errors() {
    let s = start().await;
    // 100 levels: under serde_json's own 128, over the API's 64.
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!({ "a": deep });
    }
    let body = s
        .gql(
            ATTACKER,
            "mutation($i: ChangeResidenceInput!) { changeResidence(input: $i) { commandId } }",
            json!({ "i": deep }),
        )
        .await;
    assert_eq!(code(&body), "LIMIT_EXCEEDED", "{body}");
    // Past serde_json's limit: the body is not a request.
    let raw = format!(
        "{{\"query\":\"{{ me {{ id }} }}\",\"variables\":{{\"v\":{}1{}}}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let (status, body) = post_raw(&s, "application/json", raw.into_bytes()).await;
    assert_eq!((status, code(&body).as_str()), (400, "INVALID_INPUT"));
    // A huge list in a variable.
    let many: Vec<Value> = (0..20_000).map(|i| json!(i)).collect();
    let body = s
        .gql(
            ATTACKER,
            "query($v: [Int!]) { me { id } }",
            json!({ "v": many }),
        )
        .await;
    assert_eq!(code(&body), "LIMIT_EXCEEDED", "{body}");
    healthy(&s).await;
}

async fn post_raw(s: &Server, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = s
        .http
        .post(s.url())
        .bearer_auth(&s.tokens[ATTACKER])
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_and_headers_get_typed_errors() {
    let s = start().await;
    // Invalid UTF-8.
    let (status, body) =
        post_raw(&s, "application/json", b"{\"query\":\"\xff\xfe\"}".to_vec()).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (400, "INVALID_INPUT"),
        "{body}"
    );
    // Not JSON at all.
    let (status, body) = post_raw(&s, "application/json", b"query { me { id } }".to_vec()).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (400, "INVALID_INPUT"),
        "{body}"
    );
    // Wrong content type.
    let (status, body) =
        post_raw(&s, "text/plain", b"{\"query\":\"{ me { id } }\"}".to_vec()).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (415, "INVALID_INPUT"),
        "{body}"
    );
    // (A body over the limit is refused from its declared length before it is read:
    // tests/api.rs sends the headers alone. Sending it whole races the server's early answer
    // against the client's writes.)
    // An empty batch, and a batch holding something that is not a request.
    for (sent, reason) in [
        (&b" []"[..], "the batch is empty"),
        (
            &b"[{\"query\":\"{ me { id } }\"}, 7]"[..],
            "not a GraphQL request",
        ),
    ] {
        let (status, body) = post_raw(&s, "application/json", sent.to_vec()).await;
        assert_eq!(
            (status, code(&body).as_str()),
            (400, "INVALID_INPUT"),
            "{body}"
        );
        assert!(body.to_string().contains(reason), "{body}");
    }
    // Too many operations in a batch.
    let batch: Vec<Value> = (0..11)
        .map(|_| json!({ "query": "{ me { id } }" }))
        .collect();
    let (status, body) =
        post_raw(&s, "application/json", serde_json::to_vec(&batch).unwrap()).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (413, "LIMIT_EXCEEDED"),
        "{body}"
    );
    // Another method on /graphql, and an unknown path: typed JSON, not an empty body.
    let resp = s
        .http
        .put(s.url())
        .bearer_auth(&s.tokens[ATTACKER])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert!(resp.headers().get("allow").is_some());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");
    let resp = s
        .http
        .get(format!("http://{}/nope", s.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    // A 1 MiB header: refused by the HTTP layer, and the server goes on.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let head = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
            "a".repeat(1 << 20)
        );
        // The server may close before reading it all.
        let _ = tcp.write_all(head.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
            "{answer}"
        );
    }
    healthy(&s).await;
}

/// The same kind of bad input gets the same answer everywhere, always with a code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_a_code_and_like_input_gets_like_answers() {
    let s = start().await;
    citizen(&s, 11, "Đỗ", "Văn", "An", false, 1970).await;
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        (
            "page over i32",
            "{ citizens(first: 3000000000) { edges { cursor } } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "negative page",
            "{ citizens(first: -1) { edges { cursor } } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "two operations, no name",
            "query A { me { id } } query B { me { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "negative asOf",
            "{ citizen(pin: \"031070000011\", asOf: {position: -1}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "asOf past the head",
            "{ citizen(pin: \"031070000011\", asOf: {position: 99999999999}) { id } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "negative after",
            "{ changes(after: -5) { hasMore } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "after past the head",
            "{ changes(after: 99999999999) { hasMore } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "unknown event type",
            "{ changes(eventTypes: [\"CitizenDied\"]) { hasMore } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "punctuation-only search",
            "{ citizens(search: \"*\") { edges { cursor } } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "quote-only search",
            "{ citizens(search: \"\\\"\") { edges { cursor } } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "percent-only business search",
            "{ businesses(search: \"%\") { edges { cursor } } }",
            json!({}),
            "INVALID_INPUT",
        ),
        (
            "over-long search",
            "query($s: String) { citizens(search: $s) { edges { cursor } } }",
            json!({ "s": "a".repeat(10_000) }),
            "INVALID_INPUT",
        ),
    ];
    for (name, query, vars, want) in cases {
        let body = s.gql("auditor-1", query, vars.clone()).await;
        let body = if name.contains("search") || name.contains("page") {
            s.gql(ATTACKER, query, vars).await
        } else {
            body
        };
        assert_eq!(code(&body), want, "{name}: {body}");
    }
    let (_, body) = s
        .gql_with("auditor-1", "query A { me { id } }", json!({}), &[])
        .await;
    assert_eq!(code(&body), "OK");
    // An unknown operationName.
    let resp = s
        .http
        .post(s.url())
        .bearer_auth(&s.tokens["auditor-1"])
        .json(&json!({ "query": "query A { me { id } }", "operationName": "B" }))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");
}

/// An operation whose cost grows with the log or a page carries that cost in the complexity
/// limit: 200 aliased whole-log verifications are refused before any runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn costs_that_grow_with_the_log_count_towards_complexity() {
    let s = start().await;
    let many = format!(
        "{{ {} }}",
        (0..200)
            .map(|i| format!("v{i}: verifyLog {{ intact }}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let body = s.gql("auditor-1", &many, json!({})).await;
    assert_eq!(code(&body), "LIMIT_EXCEEDED", "{body}");
    let four = "{ a: verifyLog { intact } b: verifyAccessLog { intact } c: verifyLog { intact } d: verifyLog { intact } }";
    let body = s.gql("auditor-1", four, json!({})).await;
    assert_eq!(code(&body), "LIMIT_EXCEEDED", "{body}");
    let one = s
        .ok("auditor-1", "{ verifyLog { intact } }", json!({}))
        .await;
    assert_eq!(one["verifyLog"]["intact"], true);
    // Pages: a full page of citizens with every relation is over the limit; a small one is not.
    // 31 fields an item: 3,100.
    let wide = "{ citizens(first: 100) { edges { node { name { full family middle given } birthDate sex pin permanentResidence { address commune { code name } } father { id name { full family middle given } birthDate } mother { id name { full family middle given } birthDate } } } } }";
    let body = s.gql(ATTACKER, wide, json!({})).await;
    assert_eq!(code(&body), "LIMIT_EXCEEDED", "{body}");
    let narrow =
        "{ citizens(first: 5) { edges { node { name { full } father { name { full } } } } } }";
    let body = s.gql(ATTACKER, narrow, json!({})).await;
    assert_eq!(code(&body), "OK", "{body}");
}

/// A document validated once is not validated again for values of the same classes
/// (`crates/api/src/validated.rs`): each value below that would fail a fresh validation still
/// fails after the same document passed with another value, with the same code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_validated_once_still_refuses_what_a_fresh_validation_refuses() {
    let s = start().await;
    citizen(&s, 11, "Đỗ", "Văn", "An", false, 1970).await;
    let by_pin = "query P($pin: String!) { citizen(pin: $pin) { id } }";
    let on_date =
        "query D($pin: String!, $on: Date!) { citizen(pin: $pin, asOf: { validAt: $on }) { id } }";
    let ok = |v: Value| (by_pin, v, "OK");
    let wide = "query W($n: Int) { citizens(first: $n) { edges { node { name { full family middle given } birthDate sex pin permanentResidence { address commune { code name } } father { id name { full family middle given } birthDate } mother { id name { full family middle given } birthDate } } } } }";
    let cases: Vec<(&str, Value, &str)> = vec![
        ok(json!({ "pin": "031070000011" })),
        // The same document again: now from the kept validation.
        ok(json!({ "pin": "031070000012" })),
        (by_pin, json!({ "pin": 31070000011u64 }), "INVALID_INPUT"),
        (by_pin, json!({ "pin": null }), "INVALID_INPUT"),
        (by_pin, json!({}), "INVALID_INPUT"),
        (
            on_date,
            json!({ "pin": "031070000011", "on": "2020-01-01" }),
            "OK",
        ),
        // A custom scalar's value is part of what was validated, not only its kind.
        (
            on_date,
            json!({ "pin": "031070000011", "on": "2020-13-45" }),
            "INVALID_INPUT",
        ),
        (wide, json!({ "n": 2 }), "OK"),
        // Complexity reads `first`: a kept validation of a small page passes no large one.
        (wide, json!({ "n": 100 }), "LIMIT_EXCEEDED"),
        (wide, json!({ "n": 2 }), "OK"),
    ];
    for (i, (query, variables, want)) in cases.into_iter().enumerate() {
        let body = s.gql(ATTACKER, query, variables.clone()).await;
        assert_eq!(code(&body), want, "case {i}, {variables}: {body}");
    }
    healthy(&s).await;
}
