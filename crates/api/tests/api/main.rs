//! The router end to end: a real server on 127.0.0.1:0, a tiny test schema, reqwest for HTTP
//! and tokio-tungstenite for both WebSocket protocols.

mod access_log;
mod config;
mod http;
mod websocket;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql::{Context, EmptyMutation, ID, Object, Schema, SimpleObject, Subscription};
use citydb_access::{
    AccessError, AccessLogStore, CitizenRead, Committed, DerivedDigest, Draft, EntryStore,
    MemoryEntries, StoredEntry,
};
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

/// The access log's v2 entries, failing whenever the [`FlakyLog`] beside them does.
struct FlakyEntries {
    log: Arc<FlakyLog>,
    inner: MemoryEntries,
}

#[async_graphql::async_trait::async_trait]
impl EntryStore for FlakyEntries {
    async fn append(&self, draft: Draft) -> Result<Committed, AccessError> {
        if self.log.fail.load(Ordering::SeqCst) {
            return Err(AccessError::Storage(LogError::Storage(
                "disk /dev/sdb1 is full".into(),
            )));
        }
        self.inner.append(draft).await
    }
    async fn for_citizen(
        &self,
        citizen: Uuid,
        before: Option<u64>,
        first: usize,
    ) -> Result<Vec<CitizenRead>, AccessError> {
        self.inner.for_citizen(citizen, before, first).await
    }
    async fn entries(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>, AccessError> {
        self.inner.entries(from, limit).await
    }
    async fn first_seq(&self) -> Result<Option<u64>, AccessError> {
        self.inner.first_seq().await
    }
    async fn last_seq(&self) -> Result<Option<u64>, AccessError> {
        self.inner.last_seq().await
    }
    async fn derived_digest(&self) -> Result<DerivedDigest, AccessError> {
        self.inner.derived_digest().await
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
    let access = AccessLog::new(AccessLogStore {
        v1: flaky.clone(),
        v2: Arc::new(FlakyEntries {
            log: flaky.clone(),
            inner: MemoryEntries::new(),
        }),
    });
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

#[allow(dead_code)]
fn _schema_without_mutations_also_routes(s: Schema<Query, EmptyMutation, Subscription>) {
    let _ = router(s, ServerState::new(Arc::new(Authenticator::default())));
}
