//! The verifiable log as this node publishes it (`citydb-tlog`): each log's Merkle tree kept
//! caught up with the log, checkpoints signed on an interval and on demand (and cosigned by
//! the configured witnesses), and the read-only resources any verifier fetches without a
//! token — the one documented exception to "every call is authenticated", because they hold
//! hashes only, never personal data:
//!
//! - `GET /log/checkpoint`, `GET /log/tile/<L>/<N>[.p/<W>]`, `GET /log/tile/entries/<N>[.p/<W>]`
//!   for the event log (entries: the 32-byte event hashes);
//! - the same under `/access-log/` for the access log (entries: the access-log entry hashes).
//!
//! Invariant: nothing is signed over a tree that disagrees with its log or with the last
//! checkpoint signed (`Tlog::sign` checks both); such a node answers `TREE_INCONSISTENT`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use citydb_log::FaultKind;
use citydb_tlog::{Leaves, SignerKey, TileRequest, TileStore, Tlog, TlogError};
use tokio::sync::{Mutex, watch};

use crate::error::ApiError;
use crate::witnesses::{WitnessOutcome, Witnesses};

/// How often a growing log gets a new checkpoint, unless configured.
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

/// One published log: its tree, where its leaves come from, and who signs and cosigns.
pub struct PublishedLog {
    tlog: Tlog,
    leaves: Arc<dyn Leaves>,
    signer: Option<Arc<SignerKey>>,
    witnesses: Option<Witnesses>,
    /// The latest note published (with cosignatures), for `/checkpoint`.
    latest: watch::Sender<Option<String>>,
    /// The last witness outcomes, for operators (`/metrics`, logs).
    outcomes: Mutex<Vec<WitnessOutcome>>,
}

/// How a node publishes its logs.
#[derive(Clone)]
pub struct PublishOptions {
    /// Where the two trees are kept: the store's own tables (`citydb-store` opens them).
    /// `None`: in memory, rebuilt from the logs at every start (tests, tools).
    pub trees: Option<Trees>,
    /// Signs checkpoints; `None`: the trees are kept and proofs answered, nothing signed.
    pub signer: Option<Arc<SignerKey>>,
    pub witnesses: Vec<crate::witnesses::WitnessConfig>,
    pub interval: Duration,
}

impl Default for PublishOptions {
    fn default() -> Self {
        PublishOptions {
            trees: None,
            signer: None,
            witnesses: Vec::new(),
            interval: DEFAULT_CHECKPOINT_INTERVAL,
        }
    }
}

impl std::fmt::Debug for PublishOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishOptions")
            .field("stored", &self.trees.is_some())
            .field("signer", &self.signer)
            .field("witnesses", &self.witnesses.len())
            .field("interval", &self.interval)
            .finish()
    }
}

/// The stores of the event log's tree and of the access log's.
#[derive(Clone)]
pub struct Trees {
    pub events: Arc<dyn TileStore>,
    pub access: Arc<dyn TileStore>,
}

impl Published {
    /// Both logs' trees, kept and (with a signer) signed on `options.interval` by tasks that
    /// run as long as the runtime does.
    pub fn start(
        log: Arc<dyn citydb_log::EventLog>,
        access: citydb_access::AccessLogStore,
        options: &PublishOptions,
    ) -> Published {
        let trees = options.trees.clone().unwrap_or_else(|| Trees {
            events: Arc::new(citydb_tlog::memory::MemoryTiles::new()),
            access: Arc::new(citydb_tlog::memory::MemoryTiles::new()),
        });
        let origin = options
            .signer
            .as_ref()
            .map_or_else(|| "citydb.unsigned/log".to_owned(), |s| s.name().to_owned());
        // The access log is signed by the same key under its own name (signed-note key ids
        // commit to the name, so the two vkeys differ).
        let access_signer = options
            .signer
            .as_ref()
            .and_then(|s| s.renamed(&access_origin(s.name())).ok())
            .map(Arc::new);
        let events = PublishedLog::new(
            trees.events,
            Arc::new(citydb_tlog::LogLeaves(log)),
            &origin,
            options.signer.clone(),
            &options.witnesses,
        );
        let access = PublishedLog::new(
            trees.access,
            Arc::new(AccessLeaves(access)),
            &access_origin(&origin),
            access_signer,
            &options.witnesses,
        );
        events.spawn(options.interval);
        access.spawn(options.interval);
        Published { events, access }
    }
}

/// The access log's origin: the event log's, with `/access-log` appended (its own tree, its own
/// checkpoints, signed by the same key under that name).
pub fn access_origin(origin: &str) -> String {
    format!("{origin}/access-log")
}

impl PublishedLog {
    pub fn new(
        tiles: Arc<dyn TileStore>,
        leaves: Arc<dyn Leaves>,
        origin: &str,
        signer: Option<Arc<SignerKey>>,
        witnesses: &[crate::witnesses::WitnessConfig],
    ) -> Arc<PublishedLog> {
        let (latest, _) = watch::channel(None);
        Arc::new(PublishedLog {
            tlog: Tlog::new(tiles, origin),
            leaves,
            signer,
            witnesses: (!witnesses.is_empty()).then(|| Witnesses::new(witnesses.to_vec())),
            latest,
            outcomes: Mutex::new(Vec::new()),
        })
    }

    pub fn tlog(&self) -> &Tlog {
        &self.tlog
    }

    pub fn signs(&self) -> bool {
        self.signer.is_some()
    }

    /// Catches the tree up with the log; returns its size.
    pub async fn catch_up(&self) -> Result<u64, ApiError> {
        self.tlog.catch_up(&*self.leaves).await.map_err(tree_error)
    }

    /// Catches the tree up and, with a signer, signs a checkpoint of its size (unless the latest
    /// already has it), has the witnesses cosign it, stores and publishes the cosigned note.
    /// Returns the latest note (`None` without a signer).
    pub async fn refresh(&self) -> Result<Option<String>, ApiError> {
        let Some(signer) = &self.signer else {
            self.catch_up().await?;
            return Ok(None);
        };
        let previous = self.latest.borrow().clone();
        let note = self
            .tlog
            .sign(signer, &*self.leaves)
            .await
            .map_err(tree_error)?;
        if previous
            .as_deref()
            .is_some_and(|p| same_checkpoint(p, &note))
        {
            return Ok(previous);
        }
        let note = match &self.witnesses {
            Some(witnesses) => {
                let (cosigned, outcomes) = witnesses.cosign(&self.tlog, &note).await;
                for outcome in &outcomes {
                    if !outcome.cosigned() {
                        tracing::error!(origin = %self.tlog.origin(), %outcome, "a witness did not cosign");
                    }
                }
                *self.outcomes.lock().await = outcomes;
                if cosigned != note {
                    let size = citydb_tlog::Checkpoint::parse_text(
                        &citydb_tlog::Note::parse(&cosigned)
                            .map_err(tree_error)?
                            .text,
                    )
                    .map_err(tree_error)?
                    .size;
                    self.tlog
                        .store()
                        .save_checkpoint(size, &cosigned)
                        .await
                        .map_err(tree_error)?;
                }
                cosigned
            }
            None => note,
        };
        self.latest.send_replace(Some(note.clone()));
        Ok(Some(note))
    }

    /// The latest checkpoint published, as stored (with cosignatures).
    pub async fn latest_note(&self) -> Result<Option<String>, ApiError> {
        if let Some(note) = self.latest.borrow().clone() {
            return Ok(Some(note));
        }
        Ok(self
            .tlog
            .latest()
            .await
            .map_err(tree_error)?
            .map(|(_, n)| n))
    }

    /// The last outcome of each witness.
    pub async fn witness_outcomes(&self) -> Vec<WitnessOutcome> {
        self.outcomes.lock().await.clone()
    }

    /// Keeps the tree caught up and signs on `interval` (and when the log grows, at most once
    /// per interval), for as long as the returned task runs.
    pub fn spawn(self: &Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tick.tick().await;
                match this.refresh().await {
                    Ok(_) => {
                        if failing {
                            tracing::info!(origin = %this.tlog.origin(), "the tree is kept again");
                        }
                        failing = false;
                    }
                    // Logged once per episode, not once per tick.
                    Err(e) if !failing => {
                        tracing::error!(origin = %this.tlog.origin(), error = %e, "cannot keep the tree or sign");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
        })
    }
}

/// Whether two notes sign the same checkpoint text (one may carry more cosignatures).
fn same_checkpoint(a: &str, b: &str) -> bool {
    match (citydb_tlog::Note::parse(a), citydb_tlog::Note::parse(b)) {
        (Ok(a), Ok(b)) => a.text == b.text,
        _ => false,
    }
}

/// The API's error for a tree failure.
pub fn tree_error(e: TlogError) -> ApiError {
    match e {
        TlogError::OutOfRange { .. } => ApiError::invalid_input(e.to_string()),
        TlogError::Storage(detail) => ApiError::store(FaultKind::Unavailable, detail),
        // Another node grew the shared tree at that moment: retrying succeeds.
        e @ TlogError::Conflict { .. } => ApiError::store(FaultKind::Unavailable, e),
        TlogError::Diverged { .. } | TlogError::Inconsistent(_) | TlogError::MissingTile(_) => {
            tracing::error!(error = %e, "the log's tree is inconsistent");
            ApiError::TreeInconsistent {
                message: format!("the log's Merkle tree cannot be trusted: {e}"),
            }
        }
        other => ApiError::internal(other),
    }
}

/// The public, read-only routes of both logs.
pub fn routes(events: Arc<PublishedLog>, access: Arc<PublishedLog>) -> Router {
    Router::new()
        .nest("/log", log_routes(events))
        .nest("/access-log", log_routes(access))
}

fn log_routes(log: Arc<PublishedLog>) -> Router {
    Router::new()
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .with_state(log)
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn checkpoint(State(log): State<Arc<PublishedLog>>) -> Response {
    match log.latest_note().await {
        Ok(Some(note)) => {
            let mut r = text(StatusCode::OK, note);
            // Mutable: tlog-tiles asks that it not be cached beyond a few seconds.
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("no-cache, max-age=2"),
            );
            r
        }
        Ok(None) => text(
            StatusCode::NOT_FOUND,
            if log.signs() {
                "no checkpoint signed yet\n".into()
            } else {
                "this node signs no checkpoints (start it with --signing-key)\n".into()
            },
        ),
        Err(e) => text(e.http_status(), format!("{e}\n")),
    }
}

async fn tile(State(log): State<Arc<PublishedLog>>, Path(path): Path<String>) -> Response {
    let request = match TileRequest::parse(&path) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::NOT_FOUND, format!("{e}\n")),
    };
    match log.tlog.tile(request).await {
        Ok(Some(bytes)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                // Immutable: the bytes at a tile path never change.
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            bytes,
        )
            .into_response(),
        Ok(None) => text(
            StatusCode::NOT_FOUND,
            "no such tile in the tree yet\n".into(),
        ),
        Err(e) => {
            let e = tree_error(e);
            text(e.http_status(), format!("{e}\n"))
        }
    }
}

/// The event log's and the access log's published trees, as the schema and the router use
/// them.
#[derive(Clone)]
pub struct Published {
    pub events: Arc<PublishedLog>,
    pub access: Arc<PublishedLog>,
}

/// The access log's leaves: the hashes of its v1 events, then of its v2 entries (one chain:
/// the entries' `seq` continues the v1 positions).
pub struct AccessLeaves(pub citydb_access::AccessLogStore);

impl AccessLeaves {
    async fn v1_count(&self) -> Result<u64, TlogError> {
        let head = self
            .0
            .v1
            .head()
            .await
            .map_err(|e| TlogError::Storage(e.to_string()))?;
        Ok(head.map_or(0, |h| h.position + 1))
    }
}

#[async_trait::async_trait]
impl Leaves for AccessLeaves {
    async fn count(&self) -> Result<u64, TlogError> {
        match self.0.v2.last_seq().await {
            Ok(Some(seq)) => Ok(seq + 1),
            Ok(None) => self.v1_count().await,
            Err(e) => Err(TlogError::Storage(e.to_string())),
        }
    }

    async fn read(&self, from: u64, max: usize) -> Result<Vec<[u8; 32]>, TlogError> {
        let v1 = self.v1_count().await?;
        if from < v1 {
            let n = (max as u64).min(v1 - from) as usize;
            let hashes = self
                .0
                .v1
                .read_hashes(from, n)
                .await
                .map_err(|e| TlogError::Storage(e.to_string()))?;
            return Ok(hashes.into_iter().map(|h| h.0).collect());
        }
        let entries = self
            .0
            .v2
            .entries(from, max)
            .await
            .map_err(|e| TlogError::Storage(e.to_string()))?;
        let mut out = Vec::with_capacity(entries.len());
        for (i, e) in entries.into_iter().enumerate() {
            // Gapless by the access log's contract; a gap would shift every later leaf.
            if e.seq != from + i as u64 {
                return Err(TlogError::Diverged {
                    position: from + i as u64,
                });
            }
            out.push(e.hash);
        }
        Ok(out)
    }
}
