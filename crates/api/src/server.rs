//! The HTTP server: `/graphql` over POST, GET and WebSocket, health and readiness probes,
//! GraphiQL and Prometheus metrics.
//!
//! Every request is counted in [`Metrics`] (route template, method, status, latency) and logged
//! as ONE `tracing` event (target `citydb::http`) with its method, path (never the query
//! string, which may hold a GraphQL document with personal data), status, latency and the
//! authenticated principal's id — never a token, a header value or a body.
//!
//! Authentication happens here, before any GraphQL work: a request without a valid token never
//! reaches the schema. The [`RequestContext`] then travels in the request's (or WebSocket
//! connection's) data, where resolvers find it.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, parse_query_string};
use async_graphql::parser::types::OperationType;
use async_graphql::{
    BatchRequest, BatchResponse, Data, ErrorExtensions, ObjectType, Schema, SubscriptionType,
};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath, Request, State, WebSocketUpgrade};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::auth::{
    Authenticator, CASE_HEADERS, CORRELATION_HEADER, END_USER_HEADERS, PURPOSE_HEADER,
    RequestContext,
};
use crate::documents::DocumentCache;
use crate::error::ApiError;
use crate::metrics::{Metrics, OUTCOME_OK};
use crate::throttle::{ConnectionAdmission, Permit, PrincipalLimits, Throttle};

/// Limits the server enforces on every request, before GraphQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// Largest request body (and WebSocket message), in bytes.
    pub max_body_bytes: usize,
    /// Longest an HTTP request may take, body reading included. WebSocket connections are not
    /// bounded by it, only their upgrade.
    pub request_timeout: Duration,
    /// Most operations in one batched POST; each is checked against the query limits on its own,
    /// so without this bound a batch would multiply them.
    pub max_batch_len: usize,
    /// What each principal may use ([`crate::throttle`]).
    pub per_principal: PrincipalLimits,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            max_batch_len: 10,
            per_principal: PrincipalLimits::default(),
        }
    }
}

/// Whether the server is ready for traffic (projections caught up, logs open): `/readyz` asks.
#[derive(Clone)]
pub struct Readiness(Arc<dyn Fn() -> Result<(), String> + Send + Sync>);

impl Readiness {
    pub fn always() -> Self {
        Readiness(Arc::new(|| Ok(())))
    }

    pub fn from_fn(f: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Readiness(Arc::new(move || {
            if f() {
                Ok(())
            } else {
                Err("not ready".to_owned())
            }
        }))
    }

    /// Ready when `f` answers `Ok`; its `Err` is the reason `/readyz` gives.
    pub fn from_check(f: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        Readiness(Arc::new(f))
    }

    /// Ready while the channel's current value is `true`.
    pub fn from_watch(rx: watch::Receiver<bool>) -> Self {
        Self::from_fn(move || *rx.borrow())
    }

    pub fn is_ready(&self) -> bool {
        self.check().is_ok()
    }

    /// `Ok`, or why the server is not ready.
    pub fn check(&self) -> Result<(), String> {
        (self.0)()
    }
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Readiness").field(&self.is_ready()).finish()
    }
}

/// What the router needs besides the schema.
#[derive(Clone, Debug)]
pub struct ServerState {
    pub authenticator: Arc<Authenticator>,
    pub readiness: Readiness,
    pub limits: ServerLimits,
    /// Where requests and operations are counted.
    pub metrics: Arc<Metrics>,
    /// Serve `/metrics` on this router (else only through [`metrics_router`], e.g. on a
    /// separate listen address).
    pub expose_metrics: bool,
    /// Per-principal admission, built from `limits.per_principal`.
    pub throttle: Arc<Throttle>,
    /// Routes served without a token (the published logs' hashes), merged before the
    /// fallback so that they are observed and limited like the rest.
    pub public_routes: Option<Router>,
}

impl ServerState {
    /// Always ready, default limits, fresh metrics served on `/metrics`.
    pub fn new(authenticator: Arc<Authenticator>) -> Self {
        ServerState {
            authenticator,
            readiness: Readiness::always(),
            limits: ServerLimits::default(),
            metrics: Arc::new(Metrics::new()),
            expose_metrics: true,
            throttle: Arc::new(Throttle::new(PrincipalLimits::default())),
            public_routes: None,
        }
    }

    /// Routes served without a token (see [`ServerState::public_routes`]).
    pub fn with_public_routes(self, routes: Router) -> Self {
        ServerState {
            public_routes: Some(routes),
            ..self
        }
    }

    pub fn with_metrics(self, metrics: Arc<Metrics>) -> Self {
        ServerState { metrics, ..self }
    }

    /// Whether the router itself answers `/metrics`.
    pub fn expose_metrics(self, expose_metrics: bool) -> Self {
        ServerState {
            expose_metrics,
            ..self
        }
    }

    pub fn with_readiness(self, readiness: Readiness) -> Self {
        ServerState { readiness, ..self }
    }

    pub fn with_limits(self, limits: ServerLimits) -> Self {
        ServerState {
            throttle: Arc::new(Throttle::new(limits.per_principal)),
            limits,
            ..self
        }
    }
}

struct App<Q, M, S> {
    schema: Schema<Q, M, S>,
    state: ServerState,
    /// Parsed documents by text (`crate::documents`).
    documents: DocumentCache,
}

/// The whole HTTP surface:
/// - `/graphql`: POST (JSON, batches allowed), GET (queries only) and WebSocket upgrade
///   (`graphql-transport-ws` and legacy `graphql-ws`);
/// - `/healthz` (always 200), `/readyz` (200 when ready, else 503 with the reason in the
///   JSON body: `{"status": "not ready", "reason": …}`);
/// - `/graphiql` and its assets; `/console/` (the web console) and its assets;
/// - `/metrics` (Prometheus text format, no token) unless `state.expose_metrics` is off;
/// - `state.public_routes` (the published logs' checkpoints and tiles, no token).
///
/// Build the schema with [`crate::apply_limits`] so that limits and error codes apply.
pub fn router<Q, M, S>(schema: Schema<Q, M, S>, state: ServerState) -> Router
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let timeout = state.limits.request_timeout;
    let readiness = state.readiness.clone();
    let metrics = state.metrics.clone();
    let metrics_routes = state
        .expose_metrics
        .then(|| metrics_router(metrics.clone(), readiness.clone()));
    let public_routes = state.public_routes.clone();
    let app = Arc::new(App {
        schema,
        state,
        documents: DocumentCache::default(),
    });
    let graphql = Router::new()
        .route(
            "/graphql",
            get(graphql_get::<Q, M, S>)
                .post(graphql_post::<Q, M, S>)
                .fallback(method_not_allowed),
        )
        .with_state(app)
        .layer(middleware::from_fn_with_state(timeout, enforce_timeout));
    let router = Router::new()
        .route(
            "/healthz",
            get(|| async { json_status(StatusCode::OK, "ok") }),
        )
        .route(
            "/readyz",
            get(move || {
                let ready = readiness.check();
                async move {
                    match ready {
                        Ok(()) => json_status(StatusCode::OK, "ready"),
                        Err(reason) => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            axum::Json(
                                serde_json::json!({ "status": "not ready", "reason": reason }),
                            ),
                        )
                            .into_response(),
                    }
                }
            }),
        )
        .merge(crate::graphiql::routes())
        .merge(crate::console::routes())
        .merge(graphql);
    let router = match metrics_routes {
        Some(routes) => router.merge(routes),
        None => router,
    };
    let router = match public_routes {
        Some(routes) => {
            router.merge(routes.layer(middleware::from_fn_with_state(timeout, enforce_timeout)))
        }
        None => router,
    };
    let router = router.fallback(not_found);
    router.layer(middleware::from_fn_with_state(metrics, observe))
}

/// `/metrics` alone (Prometheus text format), to serve on a separate address. It needs no
/// token: serve it only where the scraper, not the public, can reach it.
pub fn metrics_router(metrics: Arc<Metrics>, readiness: Readiness) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let body = metrics.render(readiness.is_ready());
            async move {
                (
                    [(
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                    )],
                    body,
                )
                    .into_response()
            }
        }),
    )
}

/// The authenticated principal of a request, left in the response's extensions by the
/// handlers so that the request log can name it.
#[derive(Clone, Debug)]
struct PrincipalId(String);

/// Counts and logs every request: one `tracing` event per request, at INFO (WARN for 5xx).
async fn observe(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    // The path only: a GET query string may carry a GraphQL document with personal data.
    let path: String = req.uri().path().chars().take(200).collect();
    let response = next.run(req).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    metrics.http_request(&route, method, status, elapsed);
    let principal = response
        .extensions()
        .get::<PrincipalId>()
        .map_or("-", |p| p.0.as_str());
    let latency_ms = elapsed.as_micros() as f64 / 1000.0;
    if route == "/healthz" || route == "/readyz" {
        // Probes come every few seconds and a 503 from /readyz is an answer, not a fault:
        // readiness logs its own changes (crate::readiness), once each.
        tracing::debug!(target: "citydb::http", method, path, status, latency_ms, principal, "request");
    } else if status >= 500 {
        tracing::warn!(target: "citydb::http", method, path, status, latency_ms, principal, "request");
    } else {
        tracing::info!(target: "citydb::http", method, path, status, latency_ms, principal, "request");
    }
    response
}

/// The method as a label: the standard ones by name, anything else as `OTHER`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

/// `query`, `mutation` or `subscription` for the operation the request will run; `unknown`
/// when the document does not parse or does not name one operation.
fn operation_kind(documents: &DocumentCache, request: &mut async_graphql::Request) -> &'static str {
    // Text nested too deep is not parsed here (`DocumentCache::parse` scans it first; the
    // schema's bounds refuse it with a typed error).
    let name = request.operation_name.clone();
    let Ok(doc) = documents.parse(request) else {
        return "unknown";
    };
    let op = crate::documents::chosen_operation(doc, name.as_deref());
    match op.map(|op| op.node.ty) {
        Some(OperationType::Query) => "query",
        Some(OperationType::Mutation) => "mutation",
        Some(OperationType::Subscription) => "subscription",
        None => "unknown",
    }
}

/// `ok`, or the code of the response's first error.
fn operation_outcome(response: &async_graphql::Response) -> String {
    match response.errors.first() {
        None => OUTCOME_OK.to_owned(),
        Some(e) => match e.extensions.as_ref().and_then(|x| x.get("code")) {
            Some(async_graphql::Value::String(code)) => code.clone(),
            _ => "OTHER".to_owned(),
        },
    }
}

fn count_operations(metrics: &Metrics, kinds: &[&'static str], batch: &BatchResponse) {
    let responses: Vec<&async_graphql::Response> = match batch {
        BatchResponse::Single(r) => vec![r],
        BatchResponse::Batch(rs) => rs.iter().collect(),
    };
    for (kind, response) in kinds.iter().zip(responses) {
        metrics.graphql_operation(kind, &operation_outcome(response));
    }
}

/// A request refused before any operation ran: counted as one operation of unknown type.
fn refused(metrics: &Metrics, status: Option<StatusCode>, err: ApiError) -> Response {
    metrics.graphql_operation("unknown", err.code().as_str());
    match status {
        Some(status) => error_response_with(status, err),
        None => error_response(err),
    }
}

/// Admits one request of the context's principal, or answers `429` with `Retry-After`.
fn admit(state: &ServerState, ctx: &RequestContext) -> Result<Permit, Box<Response>> {
    state.throttle.admit(&ctx.principal.id).map_err(|refusal| {
        let secs = refusal.retry_after_secs();
        let err = ApiError::RateLimited {
            message: refusal.message(&ctx.principal.id),
            retry_after_secs: secs,
        };
        let mut response = refused(&state.metrics, None, err);
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
        Box::new(with_principal(response, ctx))
    })
}

fn with_principal(mut response: Response, ctx: &RequestContext) -> Response {
    response
        .extensions_mut()
        .insert(PrincipalId(ctx.principal.id.clone()));
    response
}

/// Serves until `shutdown` completes, then stops accepting connections and lets in-flight
/// HTTP requests finish. WebSocket connections already upgraded are not waited for.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM (what orchestrators send).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

fn json_status(status: StatusCode, text: &'static str) -> Response {
    (status, axum::Json(serde_json::json!({ "status": text }))).into_response()
}

/// A GraphQL-shaped error response with the error's own status.
fn error_response(err: ApiError) -> Response {
    let status = err.http_status();
    error_response_with(status, err)
}

fn error_response_with(status: StatusCode, err: ApiError) -> Response {
    let mut response = (status, axum::Json(err.to_response_body())).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

fn graphql_response(batch: BatchResponse, ctx: &RequestContext) -> Response {
    // Sized for a point read's answer (~500 bytes) and a search page's (~3.4 KB) at once:
    // grown from serde_json's 128 bytes (`to_vec`), a page's buffer was reallocated and copied
    // five times.
    let mut body = Vec::with_capacity(4096);
    let body = match serde_json::to_writer(&mut body, &batch) {
        Ok(()) => body,
        Err(e) => {
            return error_response(ApiError::internal(format!(
                "cannot serialise a response: {e}"
            )));
        }
    };
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.extend(batch.http_headers());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    // Responses hold personal data: no cache anywhere may keep them.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&ctx.correlation_id.to_string()) {
        headers.insert(HeaderName::from_static(CORRELATION_HEADER), v);
    }
    response
}

async fn enforce_timeout(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        // The handler future is dropped here, which cancels the execution: nothing is returned,
        // so an unfinished read can leak nothing.
        Err(_) => error_response_with(
            StatusCode::SERVICE_UNAVAILABLE,
            ApiError::limit_exceeded(format!(
                "the request took longer than the limit of {} ms",
                timeout.as_millis()
            )),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// Any method but GET and POST on `/graphql`: a typed answer, not axum's empty 405.
async fn method_not_allowed() -> Response {
    let mut response = error_response_with(
        StatusCode::METHOD_NOT_ALLOWED,
        ApiError::invalid_input("/graphql takes GET (queries) and POST"),
    );
    response.headers_mut().insert(
        axum::http::header::ALLOW,
        HeaderValue::from_static("GET, POST"),
    );
    response
}

/// A path the server does not serve.
async fn not_found() -> Response {
    error_response_with(
        StatusCode::NOT_FOUND,
        ApiError::not_found("no such path; GraphQL is served at /graphql"),
    )
}

fn context_for(auth: &Authenticator, headers: &HeaderMap) -> Result<RequestContext, ApiError> {
    let principal = auth.authenticate(headers)?;
    RequestContext::from_headers(principal, headers)
}

async fn graphql_post<Q, M, S>(State(app): State<Arc<App<Q, M, S>>>, req: Request) -> Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let (parts, body) = req.into_parts();
    let metrics = &app.state.metrics;
    let ctx = match context_for(&app.state.authenticator, &parts.headers) {
        Ok(ctx) => ctx,
        Err(e) => return refused(metrics, None, e),
    };
    let _permit = match admit(&app.state, &ctx) {
        Ok(permit) => permit,
        Err(response) => return *response,
    };
    if let Some(ct) = parts.headers.get(CONTENT_TYPE)
        && !ct
            .to_str()
            .is_ok_and(|ct| ct.to_ascii_lowercase().contains("json"))
    {
        let response = refused(
            metrics,
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            ApiError::invalid_input("POST /graphql takes application/json"),
        );
        return with_principal(response, &ctx);
    }
    let bytes = match read_body(body, &parts.headers, app.state.limits.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(e) => return with_principal(refused(metrics, None, e), &ctx),
    };
    let mut batch = match batch_request(&bytes) {
        Ok(batch) => batch,
        Err(e) => {
            let err = ApiError::invalid_input(format!("the body is not a GraphQL request: {e}"));
            return with_principal(refused(metrics, None, err), &ctx);
        }
    };
    if let BatchRequest::Batch(requests) = &batch {
        let refusal = if requests.is_empty() {
            Some(ApiError::invalid_input("the batch is empty"))
        } else if requests.len() > app.state.limits.max_batch_len {
            Some(ApiError::limit_exceeded(format!(
                "the batch holds {} operations, over the limit of {}",
                requests.len(),
                app.state.limits.max_batch_len
            )))
        } else {
            None
        };
        if let Some(err) = refusal {
            return with_principal(refused(metrics, None, err), &ctx);
        }
    }
    // Parsing here caches the document in the request: the schema does not parse it again.
    let kinds: Vec<&'static str> = batch
        .iter_mut()
        .map(|r| operation_kind(&app.documents, r))
        .collect();
    // Each operation gets its access recorder inside the schema (`SchemaHooks`, run by the limits' extension).
    let response = app.schema.execute_batch(batch.data(ctx.clone())).await;
    count_operations(metrics, &kinds, &response);
    with_principal(graphql_response(response, &ctx), &ctx)
}

/// A POST body as async-graphql's `BatchRequest`: a JSON array is a batch, anything else one
/// request. Its derived reading (an untagged enum) first copies the whole body into an
/// intermediate tree, a string for every key and text value, and then tries each variant on the
/// copy: 3 % of a PIN lookup's instructions (docs/benchmarks.md, "Point reads without a
/// temporary b-tree, the POST body read once").
/// Deciding by the first byte reads the body once, into the same values; a body that is neither
/// is refused with serde's own reason instead of "did not match any variant". One difference,
/// deliberate: the derive read an array that is not a list of requests as one request's fields
/// by position (`["{ a }"]` ran `{ a }`, `[]` an empty document); an array is always a batch
/// here, and `[]` gets the handler's "the batch is empty".
fn batch_request(body: &[u8]) -> serde_json::Result<BatchRequest> {
    // JSON's whitespace (RFC 8259): anything else before the value is refused by the parser.
    let first = body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    // The body checked as UTF-8 once (SIMD) and read as a `str`, whose strings serde then
    // trusts; bytes that are not UTF-8 go through `from_slice`, for its error and position.
    match (first == Some(&b'['), simdutf8::basic::from_utf8(body)) {
        (true, Ok(text)) => serde_json::from_str(text).map(BatchRequest::Batch),
        (false, Ok(text)) => serde_json::from_str(text).map(BatchRequest::Single),
        (true, Err(_)) => serde_json::from_slice(body).map(BatchRequest::Batch),
        (false, Err(_)) => serde_json::from_slice(body).map(BatchRequest::Single),
    }
}

async fn graphql_get<Q, M, S>(State(app): State<Arc<App<Q, M, S>>>, req: Request) -> Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let (parts, _body) = req.into_parts();
    if is_websocket_upgrade(&parts.headers) {
        return websocket(app, parts).await;
    }
    let metrics = &app.state.metrics;
    let ctx = match context_for(&app.state.authenticator, &parts.headers) {
        Ok(ctx) => ctx,
        Err(e) => return refused(metrics, None, e),
    };
    let _permit = match admit(&app.state, &ctx) {
        Ok(permit) => permit,
        Err(response) => return *response,
    };
    let mut request = match parse_query_string(parts.uri.query().unwrap_or_default()) {
        Ok(request) => request,
        Err(e) => {
            let err = ApiError::invalid_input(format!("bad GraphQL GET request: {e}"));
            return with_principal(refused(metrics, None, err), &ctx);
        }
    };
    // GET must not change anything (links, prefetchers and caches replay it), so a document
    // holding any mutation or subscription is refused outright. A document that does not parse
    // goes on, and execution reports the parse error with its usual code.
    // (Text nested too deep is not parsed here: the schema refuses it before parsing.)
    if let Ok(doc) = app.documents.parse(&mut request)
        && doc
            .operations
            .iter()
            .any(|(_, op)| op.node.ty != OperationType::Query)
    {
        let mut response = refused(
            metrics,
            Some(StatusCode::METHOD_NOT_ALLOWED),
            ApiError::invalid_input("only queries may be sent with GET; use POST"),
        );
        response.headers_mut().insert(
            axum::http::header::ALLOW,
            HeaderValue::from_static("GET, POST"),
        );
        return with_principal(response, &ctx);
    }
    let kind = operation_kind(&app.documents, &mut request);
    let response = app.schema.execute(request.data(ctx.clone())).await;
    let response = BatchResponse::Single(response);
    count_operations(metrics, &[kind], &response);
    with_principal(graphql_response(response, &ctx), &ctx)
}

/// Reads the body, refusing more than `limit` bytes. A declared length over the limit is
/// refused before reading anything.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::limit_exceeded(format!(
            "the request body is over the limit of {limit} bytes"
        ))
    };
    if let Some(len) = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::invalid_input(format!("cannot read the body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

async fn websocket<Q, M, S>(app: Arc<App<Q, M, S>>, mut parts: Parts) -> Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let Ok(protocol) = GraphQLProtocol::from_request_parts(&mut parts, &()).await else {
        return error_response(ApiError::invalid_input(
            "WebSocket clients must offer the graphql-transport-ws or graphql-ws subprotocol",
        ));
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    // A token on the upgrade request must be valid. Browsers cannot set headers on an upgrade,
    // so a token may instead come in the connection_init payload, checked below.
    if parts.headers.contains_key(AUTHORIZATION)
        && let Err(e) = app.state.authenticator.authenticate(&parts.headers)
    {
        return error_response(e.into());
    }
    let authenticator = app.state.authenticator.clone();
    let throttle = app.state.throttle.clone();
    let schema = app.schema.clone();
    let headers = parts.headers;
    let max = app.state.limits.max_body_bytes;
    upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let ctx = connection_context(&authenticator, headers, &payload)
                        .map_err(|e| e.extend())?;
                    // An open connection counts as one request in flight until it closes (the
                    // permit lives in the connection's data).
                    let permit = throttle.admit(&ctx.principal.id).map_err(|refusal| {
                        ApiError::RateLimited {
                            message: refusal.message(&ctx.principal.id),
                            retry_after_secs: refusal.retry_after_secs(),
                        }
                        .extend()
                    })?;
                    let admission = ConnectionAdmission {
                        throttle: throttle.clone(),
                        principal: ctx.principal.id.clone(),
                        permit,
                    };
                    let mut data = Data::default();
                    data.insert(ctx);
                    data.insert(admission);
                    Ok(data)
                })
                .serve()
        })
}

/// The headers a `connection_init` payload may set, as keys of the payload itself or of its
/// `headers` object (Apollo's clients nest them there). Anything else in it is ignored.
fn context_header_names() -> impl Iterator<Item = &'static str> {
    [AUTHORIZATION.as_str(), PURPOSE_HEADER, CORRELATION_HEADER]
        .into_iter()
        .chain(END_USER_HEADERS)
        .chain(CASE_HEADERS)
}

/// Authenticates a WebSocket connection: the upgrade request's headers, overridden by the
/// context headers found in the `connection_init` payload.
fn connection_context(
    auth: &Authenticator,
    mut headers: HeaderMap,
    payload: &serde_json::Value,
) -> Result<RequestContext, ApiError> {
    let objects = [Some(payload), payload.get("headers")];
    for object in objects.into_iter().flatten().filter_map(|v| v.as_object()) {
        for (key, value) in object {
            let Some(name) = context_header_names().find(|n| key.eq_ignore_ascii_case(n)) else {
                continue;
            };
            let Some(text) = value.as_str() else { continue };
            let value = HeaderValue::from_str(text).map_err(|_| {
                ApiError::invalid_field(
                    format!("connection_init {key} is not valid header text"),
                    key.as_str(),
                )
            })?;
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    context_for(auth, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The body read by its first byte gives what async-graphql's derived reading gives, for
    /// every shape a client sends, and refuses what it refuses (arrays aside, below).
    #[test]
    fn a_body_reads_as_the_derived_batch_request_reads_it() {
        let bodies = [
            r#"{"query":"{ a }"}"#,
            r#"  {"query":"query Q($p: String!) { citizen(pin: $p) { id } }","variables":{"p":"030174835130"},"operationName":"Q"}"#,
            r#"{"query":"{ a }","variables":{"i":1,"f":1.5,"n":null,"b":true,"l":[1,"x",{"k":[]}],"o":{"deep":{"er":-7}}},"extensions":{"persistedQuery":{"version":1}}}"#,
            r#"{"variables":null,"query":"{ a }","operationName":null}"#,
            "\n\t [{\"query\":\"{ a }\"},{\"query\":\"{ b }\",\"variables\":{\"x\":2}}]",
            r#"[{"query":"{ a }"}]"#,
            r#"{}"#,
            // Not ASCII, and escapes: read as a checked `str` now, not as bytes.
            r#"{"query":"{ a }","variables":{"search":"Nguyễn Văn Đức","s":"\u0110\u00e0 N\u1eb5ng \"q\"\n"}}"#,
            r#"[{"query":"{ a }","variables":{"x":"Hải Phòng"}}]"#,
        ];
        for body in bodies {
            let derived: BatchRequest = serde_json::from_str(body).unwrap();
            let read = batch_request(body.as_bytes()).unwrap();
            assert_eq!(format!("{read:?}"), format!("{derived:?}"), "{body}");
        }
        for bad in [
            "",
            "   ",
            "null",
            "42",
            r#""{ a }""#,
            r#"{"query":1}"#,
            r#"[{"query":"{ a }"},7]"#,
            r#"{"query":"{ a }"} trailing"#,
            "\u{c}{\"query\":\"{ a }\"}",
            r#"[{"query":"{ a }""#,
        ] {
            assert!(serde_json::from_str::<BatchRequest>(bad).is_err(), "{bad}");
            assert!(batch_request(bad.as_bytes()).is_err(), "{bad:?}");
        }
        // Bytes that are not UTF-8, in a string or outside one, in a request and in a batch:
        // refused as the derived reading of bytes refuses them.
        for bad in [
            &b"{\"query\":\"{ a }\",\"variables\":{\"x\":\"\xff\"}}"[..],
            b"{\"query\":\"{ a }\"}\xc3",
            b"[{\"query\":\"{ \xe1\xba a }\"}]",
        ] {
            assert!(
                serde_json::from_slice::<BatchRequest>(bad).is_err(),
                "{bad:?}"
            );
            assert!(batch_request(bad).is_err(), "{bad:?}");
        }
        // Where the derive differed, and no longer does: it read an array that was not a list
        // of requests as one request's fields by position (serde's derived structs accept a
        // sequence), so `[]` ran an empty document and `["{ a }"]` ran `{ a }`. An array is a
        // batch now: `[]` is the empty batch the handler refuses, the other is not a request.
        assert!(matches!(
            serde_json::from_str::<BatchRequest>(r#"["{ a }"]"#),
            Ok(BatchRequest::Single(r)) if r.query == "{ a }"
        ));
        assert!(batch_request(br#"["{ a }"]"#).is_err());
        assert!(matches!(
            serde_json::from_str::<BatchRequest>("[]"),
            Ok(BatchRequest::Single(r)) if r.query.is_empty()
        ));
        assert!(matches!(batch_request(b" []"), Ok(BatchRequest::Batch(b)) if b.is_empty()));
    }
}
