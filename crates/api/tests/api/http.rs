//! HTTP: authentication, scopes and purposes, limits, GET, batches, health, GraphiQL.

use super::*;

#[tokio::test]
async fn no_or_wrong_token_is_401_unauthenticated() {
    let s = start().await;
    let (status, body) = s.gql(None, "{ whoami }").await;
    assert_eq!(status, 401);
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert!(body["errors"][0]["message"].is_string());

    let wrong = Token::generate().unwrap();
    let (status, body) = s.gql(Some(&wrong), "{ whoami }").await;
    assert_eq!(status, 401);
    assert_eq!(code(&body), "UNAUTHENTICATED");

    let (status, body) = send(
        s.post(None, json!({"query": "{ whoami }"}))
            .header("Authorization", "Basic dXNlcjpwYXNz"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(code(&body), "UNAUTHENTICATED");

    // GET is authenticated the same way.
    let resp = s
        .client
        .get(format!("{}/graphql?query=%7Bwhoami%7D", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers().get("www-authenticate").unwrap(), "Bearer");
}

#[tokio::test]
async fn valid_token_reaches_resolvers_with_context() {
    let s = start().await;
    let correlation = Uuid::now_v7();
    let (status, body) = send(
        s.post(Some(&s.tokens.steward), json!({"query": "{ whoami }"}))
            .header("X-Correlation-Id", correlation.to_string()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["whoami"], format!("steward-lan {correlation}"));
}

#[tokio::test]
async fn service_without_end_user_and_case_is_forbidden() {
    let s = start().await;
    let id = Uuid::now_v7();
    let query = format!(r#"{{ citizen(id: "{id}") {{ name }} }}"#);
    let (status, body) = s.gql(Some(&s.tokens.tax), &query).await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), "FORBIDDEN");
    assert!(body["data"].is_null(), "{body}");

    // An end user without a case is not enough either.
    let (_, body) = send(
        s.post(Some(&s.tokens.tax), json!({ "query": query }))
            .header(OFFICER.0, OFFICER.1),
    )
    .await;
    assert_eq!(code(&body), "FORBIDDEN");

    // Nothing was logged for refused reads.
    assert!(s.access.for_citizen(id, 10, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn field_group_out_of_scope_is_forbidden_and_named() {
    let s = start().await;
    let (status, body) = send(
        s.post(Some(&s.tokens.tax), json!({"query": "{ landParcels }"}))
            .header(OFFICER.0, OFFICER.1)
            .header(CASE.0, CASE.1),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), "FORBIDDEN");
    assert_eq!(body["errors"][0]["extensions"]["field"], "land");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("land"),
        "{body}"
    );

    // The land registry has the scope.
    let (_, body) = send(
        s.post(Some(&s.tokens.land), json!({"query": "{ landParcels }"}))
            .header("X-End-User", "officer-7")
            .header("X-Case-Id", "LR-1"),
    )
    .await;
    assert_eq!(body["data"]["landParcels"][0], "HP-0001", "{body}");
}

#[tokio::test]
async fn purpose_must_be_among_the_services_purposes() {
    let s = start().await;
    let id = Uuid::now_v7();
    let query = format!(r#"{{ citizen(id: "{id}") {{ name }} }}"#);
    let req = |purpose: &str| {
        s.post(Some(&s.tokens.tax), json!({ "query": query }))
            .header(OFFICER.0, OFFICER.1)
            .header(CASE.0, CASE.1)
            .header("X-Purpose", purpose)
    };
    let (_, body) = send(req("marketing")).await;
    assert_eq!(code(&body), "FORBIDDEN");
    assert_eq!(body["errors"][0]["extensions"]["field"], "purpose");
    let (_, body) = send(req("tax-registration")).await;
    assert_eq!(body["data"]["citizen"]["name"], "Nguyễn Văn An", "{body}");
}

#[tokio::test]
async fn service_calling_steward_mutation_is_forbidden() {
    let s = start().await;
    let m = r#"mutation { correctName(id: "c-1") }"#;
    let (status, body) = s.gql(Some(&s.tokens.tax), m).await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), "FORBIDDEN");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("steward")
    );
    let (_, body) = s.gql(Some(&s.tokens.steward), m).await;
    assert_eq!(body["data"]["correctName"], "c-1", "{body}");
}

#[tokio::test]
async fn oversized_body_is_413_limit_exceeded() {
    let s = start().await;
    let padding = " ".repeat(MAX_BODY * 2);
    let (status, body) = s
        .gql(Some(&s.tokens.steward), &format!("{{ whoami {padding}}}"))
        .await;
    assert_eq!(status, 413);
    assert_eq!(code(&body), "LIMIT_EXCEEDED");
    // The server goes on serving.
    let (status, _) = s.gql(Some(&s.tokens.steward), "{ whoami }").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn too_deep_and_too_complex_are_limit_exceeded() {
    let s = start().await;
    let deep = "{ nested { child { child { child { child { child { child { value } } } } } } } }";
    let (status, body) = s.gql(Some(&s.tokens.steward), deep).await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), "LIMIT_EXCEEDED", "{body}");

    let wide: String = (0..60).map(|i| format!(" a{i}: whoami")).collect();
    let (_, body) = s
        .gql(Some(&s.tokens.steward), &format!("{{{wide} }}"))
        .await;
    assert_eq!(code(&body), "LIMIT_EXCEEDED", "{body}");

    // A hostile nesting far beyond the depth limit is refused without harming the server.
    let hostile = format!(
        "{{ nested {} value {} }}",
        "{ child ".repeat(1500),
        "}".repeat(1500)
    );
    let (_, body) = s.gql(Some(&s.tokens.steward), &hostile).await;
    assert_eq!(code(&body), "LIMIT_EXCEEDED", "{body}");
    // …and its message does not echo the whole query back.
    assert!(
        body["errors"][0]["message"].as_str().unwrap().len() < 200,
        "{body}"
    );

    // Within the limits all is well.
    let (_, body) = s
        .gql(Some(&s.tokens.steward), "{ nested { child { value } } }")
        .await;
    assert_eq!(body["data"]["nested"]["child"]["value"], 1, "{body}");
}

#[tokio::test]
async fn page_size_limit_from_context_data() {
    let s = start().await;
    let (_, body) = s
        .gql(Some(&s.tokens.steward), "{ items(first: 500) }")
        .await;
    assert_eq!(code(&body), "LIMIT_EXCEEDED");
    let (_, body) = s.gql(Some(&s.tokens.steward), "{ items(first: -1) }").await;
    assert_eq!(code(&body), "INVALID_INPUT");
    let (_, body) = s.gql(Some(&s.tokens.steward), "{ items }").await;
    assert_eq!(body["data"]["items"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn syntax_and_validation_errors_are_invalid_input_and_server_keeps_serving() {
    let s = start().await;
    let (status, body) = s.gql(Some(&s.tokens.steward), "{ citizen(").await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");

    let (_, body) = s.gql(Some(&s.tokens.steward), "{ noSuchField }").await;
    assert_eq!(code(&body), "INVALID_INPUT", "{body}");

    // Not JSON at all.
    let resp = s
        .client
        .post(format!("{}/graphql", s.base))
        .bearer_auth(s.tokens.steward.as_str())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "INVALID_INPUT");

    let (status, body) = s.gql(Some(&s.tokens.steward), "{ whoami }").await;
    assert_eq!(status, 200);
    assert!(body["data"]["whoami"].is_string());
}

#[tokio::test]
async fn timeout_is_limit_exceeded() {
    let s = start().await;
    let (status, body) = s.gql(Some(&s.tokens.steward), "{ slow }").await;
    assert_eq!(status, 503);
    assert_eq!(code(&body), "LIMIT_EXCEEDED");
}

#[tokio::test]
async fn get_serves_queries_only() {
    let s = start().await;
    let resp = s
        .client
        .get(format!("{}/graphql", s.base))
        .query(&[("query", "{ whoami }")])
        .bearer_auth(s.tokens.steward.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers().get("cache-control").unwrap(), "no-store");
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["data"]["whoami"]
            .as_str()
            .unwrap()
            .starts_with("steward-lan")
    );

    let resp = s
        .client
        .get(format!("{}/graphql", s.base))
        .query(&[("query", r#"mutation { correctName(id: "x") }"#)])
        .bearer_auth(s.tokens.steward.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(code(&body), "INVALID_INPUT");
}

#[tokio::test]
async fn batches_are_bounded() {
    let s = start().await;
    let (status, body) = send(s.post(
        Some(&s.tokens.steward),
        json!([{ "query": "{ whoami }" }, { "query": "{ items(first: 1) }" }]),
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(body[1]["data"]["items"], json!([0]), "{body}");

    let many: Vec<Value> = (0..11).map(|_| json!({ "query": "{ whoami }" })).collect();
    let (status, body) = send(s.post(Some(&s.tokens.steward), Value::Array(many))).await;
    assert_eq!(status, 413);
    assert_eq!(code(&body), "LIMIT_EXCEEDED");
}

#[tokio::test]
async fn health_and_readiness() {
    let s = start().await;
    let get = |path: &str| s.client.get(format!("{}{path}", s.base)).send();
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 503);
    s.ready.send_replace(true);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
}

#[tokio::test]
async fn graphiql_is_self_contained() {
    let s = start().await;
    let resp = s
        .client
        .get(format!("{}/graphiql", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = resp.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    assert!(!html.contains("//unpkg") && !html.contains("cdn"), "{html}");

    let mut assets = 0;
    for part in html.split(['"', '\'']) {
        let Some(name) = part.strip_prefix("/graphiql/assets/") else {
            continue;
        };
        assets += 1;
        let resp = s
            .client
            .get(format!("{}{part}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{part}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        if name.ends_with(".js") {
            assert!(ct.starts_with("text/javascript"), "{part}: {ct}");
        } else {
            assert!(ct.starts_with("text/css"), "{part}: {ct}");
        }
        assert!(!resp.bytes().await.unwrap().is_empty());
    }
    assert_eq!(assets, 6, "every asset is referenced from the page");
}
