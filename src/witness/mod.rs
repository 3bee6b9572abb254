//! A C2SP tlog-witness over HTTP (`citydb witness`): `POST /add-checkpoint` and the monitor
//! retrieval `GET /<hex sha256(origin)>/checkpoint`, with the submission and monitoring
//! prefixes both at the root. The decision is `citydb_tlog::witness::add_checkpoint`; this
//! module only bounds and parses requests, keeps the state ([`state`]) and answers with the
//! status codes the specification assigns.

pub mod state;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sha2::{Digest as _, Sha256};

use citydb_tlog::witness::Refusal;
use citydb_tlog::{SignerKey, VerifierKey};
use state::WitnessState;

/// The largest request body accepted (413 beyond): a checkpoint with 63 proof lines and the
/// 16 signatures the signed-note spec asks a verifier to accept is under 8 KiB.
pub const MAX_BODY: usize = 64 * 1024;

/// The content type of a 409's body (the size the witness holds), as the spec requires.
const SIZE_TYPE: &str = "text/x.tlog.size";
const TEXT_TYPE: &str = "text/plain; charset=utf-8";

pub struct Witness {
    pub key: SignerKey,
    pub logs: Vec<VerifierKey>,
    pub state: WitnessState,
    /// hex(SHA-256(origin)) → origin, for the monitor retrieval path.
    origins: HashMap<String, String>,
}

impl Witness {
    pub fn new(key: SignerKey, logs: Vec<VerifierKey>, state: WitnessState) -> Witness {
        let origins = logs
            .iter()
            .map(|k| (origin_hash(k.name()), k.name().to_owned()))
            .collect();
        Witness {
            key,
            logs,
            state,
            origins,
        }
    }
}

/// The lowercase hex SHA-256 of an origin, as the monitoring path names a log.
pub fn origin_hash(origin: &str) -> String {
    Sha256::digest(origin.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/{origin_hash}/checkpoint", get(checkpoint))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(witness)
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn server_error(what: &str, e: &anyhow::Error) -> Response {
    tracing::error!(error = format!("{e:#}"), "{what}");
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        TEXT_TYPE,
        format!("{what}\n"),
    )
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    let Ok(request) = String::from_utf8(body.to_vec()) else {
        return text(
            StatusCode::BAD_REQUEST,
            TEXT_TYPE,
            "the body is not UTF-8\n".into(),
        );
    };
    // The cosignature's timestamp must not be zero (tlog-cosignature).
    let now = match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) if d.as_secs() > 0 => d.as_secs(),
        _ => {
            return server_error(
                "the clock is not set",
                &anyhow::anyhow!("the system time is not after 1970"),
            );
        }
    };
    let decided = {
        let witness = witness.clone();
        let request = request.clone();
        tokio::task::spawn_blocking(move || {
            witness
                .state
                .add(&request, &witness.logs, &witness.key, now)
        })
        .await
    };
    match decided {
        Ok(Ok(Ok(cosignature))) => text(StatusCode::OK, TEXT_TYPE, cosignature.to_string()),
        Ok(Ok(Err(refusal))) => refused(&refusal, &request),
        Ok(Err(e)) => server_error("the witness state could not be updated", &e),
        Err(e) => server_error("the request's task failed", &anyhow::Error::new(e)),
    }
}

/// Answers a refusal with its status; logs it, and a 422 with the whole request: a checkpoint
/// signed by the log that contradicts one it signed before is evidence of a fork.
fn refused(refusal: &Refusal, request: &str) -> Response {
    let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
    match refusal {
        Refusal::Inconsistent(_) => tracing::warn!(
            status = status.as_u16(),
            reason = %refusal,
            request,
            "refused an inconsistent checkpoint: the log may have forked"
        ),
        _ => tracing::info!(status = status.as_u16(), reason = %refusal, "refused a checkpoint"),
    }
    match refusal {
        Refusal::Conflict { latest } => text(status, SIZE_TYPE, format!("{latest}\n")),
        _ => text(status, TEXT_TYPE, format!("{refusal}\n")),
    }
}

async fn checkpoint(
    State(witness): State<Arc<Witness>>,
    Path(origin_hash): Path<String>,
) -> Response {
    let not_found = || {
        text(
            StatusCode::NOT_FOUND,
            TEXT_TYPE,
            "this witness has cosigned no checkpoint of that log\n".into(),
        )
    };
    let Some(origin) = witness.origins.get(&origin_hash).cloned() else {
        return not_found();
    };
    let found = {
        let witness = witness.clone();
        tokio::task::spawn_blocking(move || witness.state.latest(&origin)).await
    };
    match found {
        Ok(Ok(Some(note))) => text(StatusCode::OK, TEXT_TYPE, note),
        Ok(Ok(None)) => not_found(),
        Ok(Err(e)) => server_error("the witness state could not be read", &e),
        Err(e) => server_error("the request's task failed", &anyhow::Error::new(e)),
    }
}
