//! The router end to end: a real server on 127.0.0.1:0, a tiny test schema, reqwest for HTTP
//! and tokio-tungstenite for both WebSocket protocols.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql::{Context, EmptyMutation, ID, Object, Schema, SimpleObject, Subscription};
use citydb_api::{
    AccessLog, ApiError, AuthConfig, Authenticator, FieldGroup, QueryLimits, Readiness,
    RequestContext, Role, ServerLimits, ServerState, Token, apply_limits, router, serve,
};
use citydb_log::memory::MemoryLog;
use citydb_log::{
    AppendOutcome, Direction, EventLog, LogError, LogHead, RecordedEvent, StreamAppend, StreamId,
};
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// The test schema

#[derive(SimpleObject)]
struct Citizen {
    id: ID,
    name: String,
}

struct Node;

#[Object]
impl Node {
    async fn child(&self) -> Node {
        Node
    }
    async fn value(&self) -> i32 {
        1
    }
}

struct Query;

#[Object]
impl Query {
    /// Reads a fake citizen: checks access, records the read, then returns the data.
    async fn citizen(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Citizen> {
        let rc = RequestContext::of(ctx)?;
        rc.require_personal_data_access(&[FieldGroup::Identity])?;
        let citizen =
            Uuid::parse_str(&id).map_err(|_| ApiError::invalid_field("not a UUID", "id"))?;
        ctx.data::<AccessLog>()?
            .record(rc, &[(citizen, vec![FieldGroup::Identity])], "citizen")
            .await?;
        Ok(Citizen {
            id,
            name: "Nguyễn Văn An".into(),
        })
    }

    /// Needs the `land` scope.
    async fn land_parcels(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        RequestContext::of(ctx)?.require_personal_data_access(&[FieldGroup::Land])?;
        Ok(vec!["HP-0001".into()])
    }

    async fn whoami(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let rc = RequestContext::of(ctx)?;
        Ok(format!("{} {}", rc.principal.id, rc.correlation_id))
    }

    async fn items(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<i32>> {
        let n = ctx.data::<QueryLimits>()?.page_size(first)?;
        Ok((0..n as i32).collect())
    }

    async fn nested(&self) -> Node {
        Node
    }

    async fn slow(&self) -> i32 {
        tokio::time::sleep(Duration::from_secs(10)).await;
        1
    }
}

struct Mutation;

#[Object]
impl Mutation {
    async fn correct_name(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<ID> {
        RequestContext::of(ctx)?.require_role(&[Role::Steward, Role::Supervisor])?;
        Ok(id)
    }
}

struct Subscription;

#[Subscription]
impl Subscription {
    async fn ticks(
        &self,
        ctx: &Context<'_>,
        n: i32,
    ) -> async_graphql::Result<impl Stream<Item = i32> + use<>> {
        // Only reachable with an authenticated connection.
        RequestContext::of(ctx)?;
        Ok(futures_util::stream::iter(0..n))
    }
}

type TestSchema = Schema<Query, Mutation, Subscription>;

// ---------------------------------------------------------------------------------------------
// A log whose appends can be made to fail, to check that reads fail closed.

struct FlakyLog {
    inner: MemoryLog,
    fail: AtomicBool,
}

#[async_graphql::async_trait::async_trait]
impl EventLog for FlakyLog {
    async fn append(&self, appends: Vec<StreamAppend>) -> Result<AppendOutcome, LogError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(LogError::Storage("disk /dev/sdb1 is full".into()));
        }
        self.inner.append(appends).await
    }
    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        self.inner.read_stream(stream, from, direction, max).await
    }
    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, LogError> {
        self.inner.read_all(from, max).await
    }
    async fn stream_version(&self, stream: &StreamId) -> Result<Option<u64>, LogError> {
        self.inner.stream_version(stream).await
    }
    async fn head(&self) -> Result<Option<LogHead>, LogError> {
        self.inner.head().await
    }
    fn watch_head(&self) -> watch::Receiver<Option<u64>> {
        self.inner.watch_head()
    }
}

// ---------------------------------------------------------------------------------------------
// Harness

struct Tokens {
    tax: Token,
    land: Token,
    steward: Token,
    auditor: Token,
}

struct TestServer {
    base: String,
    ws: String,
    client: reqwest::Client,
    tokens: Tokens,
    access: AccessLog,
    flaky: Arc<FlakyLog>,
    ready: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

const MAX_BODY: usize = 16 * 1024;

fn auth_toml(t: &Tokens) -> String {
    format!(
        r#"
[[principal]]
id = "tax-office"
role = "service"
token_hash = "{}"
field_groups = ["identity", "business"]
purposes = ["tax-registration"]

[[principal]]
id = "land-registry"
role = "service"
token_hash = "{}"
field_groups = ["identity", "land"]

[[principal]]
id = "steward-lan"
role = "steward"
token_hash = "{}"

[[principal]]
id = "auditor-minh"
role = "auditor"
token_hash = "{}"
"#,
        t.tax.hash(),
        t.land.hash(),
        t.steward.hash(),
        t.auditor.hash()
    )
}

async fn start() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let flaky = Arc::new(FlakyLog {
        inner: MemoryLog::new(),
        fail: AtomicBool::new(false),
    });
    let access = AccessLog::new(flaky.clone());
    let tokens = Tokens {
        tax: Token::generate().unwrap(),
        land: Token::generate().unwrap(),
        steward: Token::generate().unwrap(),
        auditor: Token::generate().unwrap(),
    };
    let config = AuthConfig::from_toml_str(&auth_toml(&tokens)).unwrap();
    let limits = QueryLimits {
        max_depth: 6,
        max_complexity: 50,
        max_page_size: 20,
    };
    let schema: TestSchema = apply_limits(Schema::build(Query, Mutation, Subscription), &limits)
        .data(access.clone())
        .finish();
    let (ready_tx, ready_rx) = watch::channel(false);
    let state = ServerState::new(Arc::new(Authenticator::new(config)))
        .with_readiness(Readiness::from_watch(ready_rx))
        .with_limits(ServerLimits {
            max_body_bytes: MAX_BODY,
            request_timeout: Duration::from_secs(2),
            ..ServerLimits::default()
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(
        listener,
        router(schema, state),
        std::future::pending(),
    ));
    TestServer {
        base: format!("http://{addr}"),
        ws: format!("ws://{addr}/graphql"),
        client: reqwest::Client::new(),
        tokens,
        access,
        flaky,
        ready: ready_tx,
        _dir: dir,
    }
}

impl TestServer {
    fn post(&self, token: Option<&Token>, body: Value) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.base))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t.as_str());
        }
        req
    }

    /// POSTs a query and returns (status, body).
    async fn gql(&self, token: Option<&Token>, query: &str) -> (u16, Value) {
        send(self.post(token, json!({ "query": query }))).await
    }
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    (status, body)
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

const OFFICER: (&str, &str) = ("X-Road-UserId", "VN-officer-042");
const CASE: (&str, &str) = ("X-Road-Issue", "HP-TAX-2025-0173");

// ---------------------------------------------------------------------------------------------
// HTTP

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

// ---------------------------------------------------------------------------------------------
// Access log

#[tokio::test]
async fn reads_are_access_logged_and_chain_verifies() {
    let s = start().await;
    let a = Uuid::now_v7();
    let b = Uuid::now_v7();
    let query = format!(r#"{{ x: citizen(id: "{a}") {{ name }} y: citizen(id: "{b}") {{ id }} }}"#);
    let (status, body) = send(
        s.post(Some(&s.tokens.tax), json!({ "query": query }))
            .header(OFFICER.0, OFFICER.1)
            .header(CASE.0, CASE.1)
            .header("X-Purpose", "tax-registration"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(body["errors"].is_null(), "{body}");
    assert_eq!(body["data"]["x"]["name"], "Nguyễn Văn An");

    let entries = s.access.for_citizen(a, 10, None).await.unwrap();
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e.read.principal, "tax-office");
    assert_eq!(e.read.role, Role::Service);
    assert_eq!(e.read.end_user.as_deref(), Some(OFFICER.1));
    assert_eq!(e.read.case.as_deref(), Some(CASE.1));
    assert_eq!(e.read.purpose.as_deref(), Some("tax-registration"));
    assert_eq!(e.read.field_groups, vec![FieldGroup::Identity]);
    assert_eq!(e.read.operation, "citizen");
    assert_eq!(e.hash.len(), 64);

    // A second read by an auditor: newest first, paging by version.
    let (_, body) = s
        .gql(
            Some(&s.tokens.auditor),
            &format!(r#"{{ citizen(id: "{a}") {{ name }} }}"#),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let entries = s.access.for_citizen(a, 10, None).await.unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].read.principal, "auditor-minh");
    assert_eq!(entries[0].version, 1);
    let older = s
        .access
        .for_citizen(a, 10, Some(entries[0].version))
        .await
        .unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].read.principal, "tax-office");
    assert!(
        s.access
            .for_citizen(a, 10, Some(0))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.access.for_citizen(b, 10, None).await.unwrap().len(), 1);

    let report = s.access.verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 3);
}

#[tokio::test]
async fn reads_fail_closed_when_the_access_log_cannot_record() {
    let s = start().await;
    s.flaky.fail.store(true, Ordering::SeqCst);
    let (status, body) = s
        .gql(
            Some(&s.tokens.steward),
            &format!(r#"{{ citizen(id: "{}") {{ name }} }}"#, Uuid::now_v7()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), "INTERNAL");
    assert!(body["data"].is_null(), "data leaked: {body}");
    assert!(!body.to_string().contains("sdb1"), "detail leaked: {body}");
}

// ---------------------------------------------------------------------------------------------
// WebSocket

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(url: &str, protocol: &str, authorization: Option<&str>) -> Result<Ws, u16> {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    if let Some(a) = authorization {
        req.headers_mut()
            .insert("Authorization", a.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("WebSocket connect failed: {e}"),
    }
}

async fn ws_send(ws: &mut Ws, msg: Value) {
    ws.send(Message::Text(msg.to_string().into()))
        .await
        .unwrap();
}

/// The next JSON message, or `None` when the server closed the connection (with its reason).
async fn ws_next(ws: &mut Ws) -> Result<Value, String> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("no WebSocket message within 5 s");
        match msg {
            Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(frame))) => {
                return Err(frame
                    .map(|f| format!("{} {}", f.code, f.reason))
                    .unwrap_or_default());
            }
            None => return Err(String::new()),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
        }
    }
}

#[tokio::test]
async fn graphql_transport_ws_delivers_subscription_items() {
    let s = start().await;
    let mut ws = ws_connect(&s.ws, "graphql-transport-ws", None)
        .await
        .unwrap();
    ws_send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", s.tokens.land.as_str())}}),
    )
    .await;
    assert_eq!(ws_next(&mut ws).await.unwrap()["type"], "connection_ack");
    ws_send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { ticks(n: 3) }"}}),
    )
    .await;
    for i in 0..3 {
        let msg = ws_next(&mut ws).await.unwrap();
        assert_eq!(msg["type"], "next", "{msg}");
        assert_eq!(msg["payload"]["data"]["ticks"], i);
    }
    assert_eq!(ws_next(&mut ws).await.unwrap()["type"], "complete");

    // Queries work over the socket too, with the connection's context.
    ws_send(
        &mut ws,
        json!({"id": "2", "type": "subscribe", "payload": {"query": "{ whoami }"}}),
    )
    .await;
    let msg = ws_next(&mut ws).await.unwrap();
    assert!(
        msg["payload"]["data"]["whoami"]
            .as_str()
            .unwrap()
            .starts_with("land-registry"),
        "{msg}"
    );
}

#[tokio::test]
async fn legacy_graphql_ws_delivers_subscription_items() {
    let s = start().await;
    // Token on the upgrade request this time.
    let auth = format!("Bearer {}", s.tokens.steward.as_str());
    let mut ws = ws_connect(&s.ws, "graphql-ws", Some(&auth)).await.unwrap();
    ws_send(&mut ws, json!({"type": "connection_init", "payload": {}})).await;
    assert_eq!(ws_next(&mut ws).await.unwrap()["type"], "connection_ack");
    ws_send(
        &mut ws,
        json!({"id": "1", "type": "start", "payload": {"query": "subscription { ticks(n: 2) }"}}),
    )
    .await;
    for i in 0..2 {
        let msg = ws_next(&mut ws).await.unwrap();
        assert_eq!(msg["type"], "data", "{msg}");
        assert_eq!(msg["payload"]["data"]["ticks"], i);
    }
    assert_eq!(ws_next(&mut ws).await.unwrap()["type"], "complete");
}

#[tokio::test]
async fn websockets_reject_bad_tokens() {
    let s = start().await;
    let wrong = format!("Bearer {}", Token::generate().unwrap().as_str());

    // graphql-transport-ws: the server closes the connection.
    let mut ws = ws_connect(&s.ws, "graphql-transport-ws", None)
        .await
        .unwrap();
    ws_send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": wrong}}),
    )
    .await;
    let closed = ws_next(&mut ws).await.unwrap_err();
    assert!(closed.contains("invalid bearer token"), "{closed}");

    // No token at all.
    let mut ws = ws_connect(&s.ws, "graphql-transport-ws", None)
        .await
        .unwrap();
    ws_send(&mut ws, json!({"type": "connection_init"})).await;
    let closed = ws_next(&mut ws).await.unwrap_err();
    assert!(closed.contains("missing bearer token"), "{closed}");

    // Legacy graphql-ws: connection_error.
    let mut ws = ws_connect(&s.ws, "graphql-ws", None).await.unwrap();
    ws_send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"authorization": wrong}}),
    )
    .await;
    let msg = ws_next(&mut ws).await.unwrap();
    assert_eq!(msg["type"], "connection_error", "{msg}");

    // A bad token on the upgrade request itself is refused with 401 before upgrading.
    assert_eq!(
        ws_connect(&s.ws, "graphql-transport-ws", Some(&wrong))
            .await
            .err(),
        Some(401)
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration and tokens

#[test]
fn token_hash_round_trip() {
    let token = Token::generate().unwrap();
    let hash = token.hash();
    assert_eq!(hash, citydb_api::hash_token(token.as_str()));
    assert!(hash.starts_with("blake3:") && hash.len() == 7 + 64);
    let config = AuthConfig::from_toml_str(&format!(
        "[[principal]]\nid = \"a\"\nrole = \"admin\"\ntoken_hash = \"{}\"\n",
        hash.to_uppercase().replace("BLAKE3:", "blake3:")
    ))
    .unwrap();
    let auth = Authenticator::new(config);
    let p = auth.authenticate_token(token.as_str()).unwrap();
    assert_eq!(p.id, "a");
    assert_eq!(p.role, Role::Admin);
    // Non-service roles see every field group.
    assert_eq!(p.field_groups.len(), FieldGroup::ALL.len());
    assert!(
        auth.authenticate_token(Token::generate().unwrap().as_str())
            .is_err()
    );
}

#[test]
fn auth_config_errors_are_typed() {
    use citydb_api::AuthConfigError as E;
    let h1 = Token::generate().unwrap().hash();
    let h2 = Token::generate().unwrap().hash();
    let one = |id: &str, role: &str, hash: &str, extra: &str| {
        format!(
            "[[principal]]\nid = \"{id}\"\nrole = \"{role}\"\ntoken_hash = \"{hash}\"\n{extra}\n"
        )
    };
    let parse = AuthConfig::from_toml_str;

    assert!(matches!(
        parse(&one("a", "mayor", &h1, "")),
        Err(E::UnknownRole { id, role }) if id == "a" && role == "mayor"
    ));
    assert!(matches!(
        parse(&one("a", "service", "sha256:00", "")),
        Err(E::BadHash { id, .. }) if id == "a"
    ));
    assert!(matches!(
        parse(&one("a", "service", "blake3:abc", "")),
        Err(E::BadHash { .. })
    ));
    // The token itself instead of its hash.
    assert!(matches!(
        parse(&one(
            "a",
            "service",
            Token::generate().unwrap().as_str(),
            ""
        )),
        Err(E::BadHash { .. })
    ));
    assert!(matches!(
        parse(&format!("{}{}", one("a", "service", &h1, ""), one("a", "steward", &h2, ""))),
        Err(E::DuplicateId(id)) if id == "a"
    ));
    assert!(matches!(
        parse(&format!("{}{}", one("a", "service", &h1, ""), one("b", "steward", &h1, ""))),
        Err(E::DuplicateHash { first, second }) if first == "a" && second == "b"
    ));
    assert!(matches!(
        parse(&one("a", "service", &h1, "field_groups = [\"health\"]")),
        Err(E::UnknownFieldGroup { group, .. }) if group == "health"
    ));
    assert!(matches!(
        parse(&one("a", "service", &h1, "token = \"cdb_x\"")),
        Err(E::Syntax(_))
    ));
    assert!(matches!(parse("[[principal]\n"), Err(E::Syntax(_))));
    assert!(matches!(
        parse(&one(" ", "service", &h1, "")),
        Err(E::EmptyId { index: 0 })
    ));
    assert!(matches!(
        AuthConfig::load("/nonexistent/citydb-auth.toml"),
        Err(E::Io { .. })
    ));

    // A service keeps exactly its groups.
    let config = parse(&one("a", "service", &h1, "field_groups = [\"land\"]")).unwrap();
    let p = &config.principals[0].principal;
    assert_eq!(
        p.field_groups.iter().copied().collect::<Vec<_>>(),
        vec![FieldGroup::Land]
    );
    assert!(parse("").unwrap().principals.is_empty());
}

#[test]
fn request_context_from_headers() {
    use axum_headers::*;
    let principal = citydb_api::Principal {
        id: "tax-office".into(),
        role: Role::Service,
        field_groups: [FieldGroup::Identity].into(),
        purposes: ["tax-registration".to_owned()].into(),
    };
    let mut h = HeaderMap::new();
    h.insert("x-end-user", HeaderValue::from_static("fallback"));
    h.insert("x-road-userid", HeaderValue::from_static("EE-officer"));
    h.insert("x-case-id", HeaderValue::from_static("case-9"));
    h.insert("x-correlation-id", HeaderValue::from_static("not-a-uuid"));
    let ctx = RequestContext::from_headers(principal.clone(), &h).unwrap();
    assert_eq!(ctx.end_user.as_deref(), Some("EE-officer"));
    assert_eq!(ctx.case.as_deref(), Some("case-9"));
    assert_eq!(ctx.purpose, None);
    assert_eq!(ctx.correlation_id.get_version_num(), 7);
    assert!(
        ctx.require_personal_data_access(&[FieldGroup::Identity])
            .is_ok()
    );
    let err = ctx
        .require_personal_data_access(&[FieldGroup::Identity, FieldGroup::Family])
        .unwrap_err();
    assert_eq!(err.code().as_str(), "FORBIDDEN");
    assert_eq!(err.extensions_json()["field"], "family");
    assert!(ctx.require_role(&[Role::Steward]).is_err());
    assert!(ctx.require_role(&[Role::Service]).is_ok());

    let id = Uuid::now_v7();
    h.insert(
        "x-correlation-id",
        HeaderValue::from_str(&id.to_string()).unwrap(),
    );
    assert_eq!(
        RequestContext::from_headers(principal.clone(), &h)
            .unwrap()
            .correlation_id,
        id
    );

    h.insert(
        "x-case-id",
        HeaderValue::from_str(&"x".repeat(300)).unwrap(),
    );
    let err = RequestContext::from_headers(principal, &h).unwrap_err();
    assert_eq!(err.code().as_str(), "INVALID_INPUT");
}

mod axum_headers {
    pub use axum::http::{HeaderMap, HeaderValue};
}

#[allow(dead_code)]
fn _schema_without_mutations_also_routes(s: Schema<Query, EmptyMutation, Subscription>) {
    let _ = router(s, ServerState::new(Arc::new(Authenticator::default())));
}
