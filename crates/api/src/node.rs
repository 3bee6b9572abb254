//! One citydb node: the event log, the access log, the projections and the schema, and the
//! router that serves them.
//!
//! The node receives its two logs opened (`citydb-store` opens them from the configured store,
//! embedded SQLite files or PostgreSQL) with a [`WriteProbe`] for readiness: nothing here knows
//! a backend. `DIR/projections.db` in the data directory holds this node's read models:
//! disposable, rebuilt from the log when missing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;

use citydb_log::backend::WriteProbe;
use citydb_log::{EventLog, LogError};
use citydb_projections::{IntegrityCheck, ProjectionConfig, ProjectionError, Projections};
use citydb_registry::Registry;

use crate::access_log::AccessLog;
use crate::auth::{AuthConfig, Authenticator};
use crate::citizen_token::CitizenTokens;
use crate::deadlines::{Clock, DeadlineKeeper};
use crate::limits::QueryLimits;
use crate::metrics::{LogKind, MeteredLog, Metrics};
use crate::published::{PublishOptions, Published};
use crate::readiness::{NodeReadiness, StartupHold};
use crate::schema::{CitySchema, NodeHandles, build_schema};
use crate::server::{Readiness, ServerLimits, ServerState, metrics_router, router};
use citydb_access::AccessLogStore;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot create the data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error("event log: {0}")]
    Log(#[from] LogError),
    #[error("projections: {0}")]
    Projections(#[from] ProjectionError),
}

/// What a node is opened with.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// Where the projections live (`projections.db`).
    pub data_dir: PathBuf,
    pub auth: AuthConfig,
    pub query_limits: QueryLimits,
    pub server_limits: ServerLimits,
    /// Serve `/metrics` on the main router; off when it is served elsewhere
    /// ([`Node::metrics_router`] on its own address).
    pub expose_metrics: bool,
    /// How often readiness asks the store whether it accepts writes (see
    /// [`crate::readiness`]).
    pub probe_interval: std::time::Duration,
    /// The logs' Merkle trees, checkpoints and witnesses ([`crate::published`]).
    pub publish: PublishOptions,
    /// Citizen tokens this node issues and accepts (`--citizen-token-key`); none by default.
    pub citizen_tokens: Option<Arc<CitizenTokens>>,
    /// Today's date for correction-request deadlines (the system clock in Viet Nam's time zone
    /// unless a test or demo fixes it).
    pub clock: Clock,
    /// How often the node records passed correction-request deadlines ([`DeadlineKeeper`]).
    pub deadline_interval: std::time::Duration,
}

impl NodeOptions {
    pub fn new(data_dir: impl Into<PathBuf>, auth: AuthConfig) -> Self {
        NodeOptions {
            data_dir: data_dir.into(),
            auth,
            query_limits: QueryLimits::default(),
            server_limits: ServerLimits::default(),
            expose_metrics: true,
            probe_interval: std::time::Duration::from_secs(5),
            publish: PublishOptions::default(),
            citizen_tokens: None,
            clock: Clock::system(),
            deadline_interval: std::time::Duration::from_secs(15 * 60),
        }
    }
}

/// An open node.
#[derive(Clone)]
pub struct Node {
    pub log: Arc<dyn EventLog>,
    pub access_log: AccessLog,
    pub registry: Registry,
    pub projections: Projections,
    pub schema: CitySchema,
    /// Counters of this node, served on `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The logs' trees and checkpoints, and their public routes.
    pub published: Published,
    /// Correction-request deadlines: the periodic task's handle, to run it now (tests).
    pub deadlines: DeadlineKeeper,
    /// Stops the periodic deadline task when the last clone of the node is dropped.
    _deadline_task: Arc<AbortOnDrop>,
    _integrity_task: Arc<AbortOnDrop>,
    authenticator: Arc<Authenticator>,
    server_limits: ServerLimits,
    expose_metrics: bool,
    ready: Arc<NodeReadiness>,
}

impl Node {
    /// A node over the event log and access log its store opened, with the store's probe:
    /// readiness asks it every `options.probe_interval` whether the store accepts writes. The
    /// projections live in `options.data_dir`, created if missing.
    pub async fn open(
        log: Arc<dyn EventLog>,
        access: AccessLogStore,
        probe: Arc<dyn WriteProbe>,
        options: NodeOptions,
    ) -> Result<Node, NodeError> {
        let dir = options.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| NodeError::DataDir {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::assemble(
            log,
            access,
            &dir.join("projections.db"),
            options,
            Some(probe),
        )
        .await
    }

    /// A node over logs without a probe (tests), its projections at `projections_path`. The
    /// event log is wrapped in a [`MeteredLog`] and the access log counts its own writes, so
    /// that both appear on `/metrics`. Readiness takes them as writable.
    pub async fn with_logs(
        log: Arc<dyn EventLog>,
        access: AccessLogStore,
        projections_path: &Path,
        options: NodeOptions,
    ) -> Result<Node, NodeError> {
        Self::assemble(log, access, projections_path, options, None).await
    }

    async fn assemble(
        log: Arc<dyn EventLog>,
        access: AccessLogStore,
        projections_path: &Path,
        options: NodeOptions,
        probe: Option<Arc<dyn WriteProbe>>,
    ) -> Result<Node, NodeError> {
        let metrics = Arc::new(Metrics::new());
        let log: Arc<dyn EventLog> =
            Arc::new(MeteredLog::new(log, metrics.clone(), LogKind::Events));
        // The whole file's check would delay `/readyz` by as long as reading it (15–38 s at
        // the whole city): it runs once the node is up instead (below).
        let projections = Projections::open(
            projections_path,
            log.clone(),
            ProjectionConfig {
                integrity_check: IntegrityCheck::AfterOpen,
                ..ProjectionConfig::default()
            },
        )
        .await?;
        let registry = Registry::new(log.clone());
        crate::redactions::complete_at_start(log.clone(), registry.clone(), projections.clone());
        // The access log's writes go to its v2 entries, which count themselves.
        let published = Published::start(log.clone(), access.clone(), &options.publish);
        let access_log = AccessLog::new(access).with_metrics(metrics.clone());
        let registers = NodeHandles {
            log: log.clone(),
            registry: registry.clone(),
            projections: projections.clone(),
            clock: options.clock.clone(),
        };
        let schema = build_schema(
            registers,
            access_log.clone(),
            published.clone(),
            options.citizen_tokens.clone(),
            &options.query_limits,
        );
        let authenticator = Arc::new(Authenticator::new(options.auth));
        if let Some(tokens) = options.citizen_tokens {
            authenticator.accept_citizen_tokens(tokens);
        }
        metrics.register_projection_gauges(log.watch_head(), projections.watch_position());
        {
            let projections = projections.clone();
            metrics.register_search_pages(Arc::new(move || projections.search_pages()));
        }
        let deadlines = DeadlineKeeper::new(
            registry.clone(),
            projections.clone(),
            options.clock.clone(),
            &metrics,
        );
        let deadline_task = Arc::new(AbortOnDrop(deadlines.spawn(options.deadline_interval)));
        let ready = NodeReadiness::start(
            probe,
            options.probe_interval,
            projections.watch_position(),
            log.watch_head(),
        )
        .await;
        let integrity_task = Arc::new(AbortOnDrop(tokio::spawn(check_projections(
            projections.clone(),
            Arc::downgrade(&ready),
        ))));
        Ok(Node {
            log,
            access_log,
            registry,
            projections,
            schema,
            metrics,
            published,
            deadlines,
            _deadline_task: deadline_task,
            _integrity_task: integrity_task,
            authenticator,
            server_limits: options.server_limits,
            expose_metrics: options.expose_metrics,
            ready,
        })
    }

    /// Ready when not starting up, the logs accept writes and the projections have caught up
    /// with the log as it was when asked (see [`crate::readiness`]); else the reason.
    pub fn readiness(&self) -> Readiness {
        let ready = self.ready.clone();
        Readiness::from_check(move || ready.check())
    }

    /// Not ready, for `reason`, until the guard is dropped: for start-up work done after the
    /// port is open, so that clients get `503` and the reason instead of a refused connection.
    pub fn hold_readiness(&self, reason: impl Into<String>) -> StartupHold {
        self.ready.hold(reason)
    }

    /// The principals this node authenticates against (replace them to reload).
    pub fn authenticator(&self) -> Arc<Authenticator> {
        self.authenticator.clone()
    }

    /// The HTTP router: `/graphql`, `/graphiql`, `/healthz`, `/readyz`, the published logs
    /// (`/log/...`, `/access-log/...`: [`crate::published`]), and `/metrics` unless the
    /// options moved it elsewhere.
    pub fn router(&self) -> Router {
        let state = ServerState::new(self.authenticator.clone())
            .with_readiness(self.readiness())
            .with_limits(self.server_limits)
            .with_metrics(self.metrics.clone())
            .expose_metrics(self.expose_metrics)
            .with_public_routes(crate::published::routes(
                self.published.events.clone(),
                self.published.access.clone(),
            ));
        router(self.schema.clone(), state)
    }

    /// `/metrics` alone, for a separate listen address.
    pub fn metrics_router(&self) -> Router {
        metrics_router(self.metrics.clone(), self.readiness())
    }
}

/// The projections file's check after open: damage keeps the node unready (its reason in
/// `/readyz`) until a restart rebuilds the file.
///
/// The node serves meanwhile, but the check reads the whole file (6 GB at the whole city, ~15 s
/// beside a load) and takes a share of the CPU and the disk while it does: its end is logged at
/// INFO with how long it took, so an operator (and the scale bench, which waits for it before
/// measuring) can tell the start-up window from steady state.
async fn check_projections(projections: Projections, ready: std::sync::Weak<NodeReadiness>) {
    let started = std::time::Instant::now();
    match projections.check_integrity().await {
        Ok(None) => tracing::info!(
            seconds = format_args!("{:.1}", started.elapsed().as_secs_f64()),
            "the projections file's b-trees are sound"
        ),
        Ok(Some(reason)) => {
            tracing::error!(%reason, "the projections file is damaged; a restart rebuilds it from the log");
            if let Some(ready) = ready.upgrade() {
                ready.projections_damaged(reason);
            }
        }
        Err(e) => tracing::warn!(error = %e, "the projections file could not be checked"),
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
