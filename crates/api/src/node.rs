//! One citydb node on the embedded store: the event log, the access log, the projections and
//! the schema, opened from one data directory, and the router that serves them.
//!
//! Where the logs live ([`Store`]):
//! - embedded (default): `DIR/log.db` (the event log, the truth) and `DIR/access-log.db` (the
//!   hash-chained log of personal-data reads) — back both up;
//! - PostgreSQL: the event log in the database's current schema and the access log in schema
//!   `citydb_access` of the same database, shared by every node that points at it.
//!
//! Either way `DIR/projections.db` holds this node's read models: disposable, rebuilt from the
//! log when missing.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;

use citydb_log::{EventLog, LogError};
use citydb_postgres::{PostgresConfig, PostgresLog};
use citydb_projections::{ProjectionConfig, ProjectionError, Projections};
use citydb_registry::Registry;
use citydb_sqlite::{SqliteConfig, SqliteLog};

use crate::access_log::AccessLog;
use crate::auth::{AuthConfig, Authenticator};
use crate::limits::QueryLimits;
use crate::metrics::{LogKind, MeteredLog, Metrics};
use crate::readiness::{NodeReadiness, StartupHold, StoreProbe};
use crate::schema::{CitySchema, NodeHandles, build_schema};
use crate::server::{Readiness, ServerLimits, ServerState, metrics_router, router};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cannot create the data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error("event log: {0}")]
    Log(#[from] LogError),
    #[error("projections: {0}")]
    Projections(#[from] ProjectionError),
    #[error("store: {0}")]
    Store(String),
}

/// Where a node's logs live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Store {
    /// SQLite files in the data directory.
    Embedded,
    /// A PostgreSQL database (`postgres://…`), shared by any number of nodes.
    Postgres(String),
}

impl std::str::FromStr for Store {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "embedded" || s == "sqlite" {
            Ok(Store::Embedded)
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(Store::Postgres(s.to_owned()))
        } else {
            Err(format!(
                "unknown store {s:?}: expected `embedded` or a postgres:// URL"
            ))
        }
    }
}

/// The PostgreSQL schema that holds the access log, beside the event log.
pub const ACCESS_LOG_SCHEMA: &str = "citydb_access";

/// Opens the event log and the access log of `store`.
pub async fn open_logs(
    store: &Store,
    data_dir: &Path,
    sqlite: &SqliteConfig,
) -> Result<(Arc<dyn EventLog>, Arc<dyn EventLog>), NodeError> {
    match store {
        Store::Embedded => {
            std::fs::create_dir_all(data_dir).map_err(|e| NodeError::DataDir {
                path: data_dir.display().to_string(),
                reason: e.to_string(),
            })?;
            let log = SqliteLog::open(data_dir.join("log.db"), sqlite.clone())?;
            let access = SqliteLog::open(data_dir.join("access-log.db"), sqlite.clone())?;
            Ok((Arc::new(log), Arc::new(access)))
        }
        Store::Postgres(url) => {
            let log = PostgresLog::connect(url, PostgresConfig::default()).await?;
            // The access log is a second log of the same kind; it lives in its own schema of
            // the same database, so every node shares it and one backup holds both.
            let access_url = with_search_path(url, ACCESS_LOG_SCHEMA)?;
            create_schema(url, ACCESS_LOG_SCHEMA).await?;
            let access = PostgresLog::connect(&access_url, PostgresConfig::default()).await?;
            Ok((Arc::new(log), Arc::new(access)))
        }
    }
}

fn with_search_path(url: &str, schema: &str) -> Result<String, NodeError> {
    if url.contains("options=") {
        return Err(NodeError::Store(
            "the PostgreSQL URL already sets `options`; citydb sets the access log's search_path itself".into(),
        ));
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
}

async fn create_schema(url: &str, schema: &str) -> Result<(), NodeError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| NodeError::Store(format!("cannot connect to PostgreSQL: {e}")))?;
    let task = tokio::spawn(connection);
    let created = client
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await
        .map_err(|e| NodeError::Store(format!("cannot create schema {schema}: {e}")));
    drop(client);
    let _ = task.await;
    created
}

/// What a node is opened with.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    pub data_dir: PathBuf,
    pub store: Store,
    pub auth: AuthConfig,
    pub query_limits: QueryLimits,
    pub server_limits: ServerLimits,
    pub log_config: SqliteConfig,
    /// Serve `/metrics` on the main router; off when it is served elsewhere
    /// ([`Node::metrics_router`] on its own address).
    pub expose_metrics: bool,
    /// How often readiness asks the store whether it accepts writes (see
    /// [`crate::readiness`]).
    pub probe_interval: std::time::Duration,
}

impl NodeOptions {
    pub fn new(data_dir: impl Into<PathBuf>, auth: AuthConfig) -> Self {
        NodeOptions {
            data_dir: data_dir.into(),
            store: Store::Embedded,
            auth,
            query_limits: QueryLimits::default(),
            server_limits: ServerLimits::default(),
            log_config: SqliteConfig::default(),
            expose_metrics: true,
            probe_interval: std::time::Duration::from_secs(5),
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
    authenticator: Arc<Authenticator>,
    server_limits: ServerLimits,
    expose_metrics: bool,
    ready: Arc<NodeReadiness>,
}

impl Node {
    pub async fn open(options: NodeOptions) -> Result<Node, NodeError> {
        let dir = options.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| NodeError::DataDir {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let (log, access) = open_logs(&options.store, &dir, &options.log_config).await?;
        let probe = match &options.store {
            Store::Embedded => StoreProbe::Sqlite {
                log: dir.join("log.db"),
                access: dir.join("access-log.db"),
            },
            Store::Postgres(url) => StoreProbe::Postgres { url: url.clone() },
        };
        Self::assemble(log, access, &dir.join("projections.db"), options, probe).await
    }

    /// A node over logs opened elsewhere (another backend, or tests). Both logs are wrapped in
    /// a [`MeteredLog`] so that their appends are counted. Readiness cannot probe logs it did
    /// not open: it takes them as writable.
    pub async fn with_logs(
        log: Arc<dyn EventLog>,
        access: Arc<dyn EventLog>,
        projections_path: &Path,
        options: NodeOptions,
    ) -> Result<Node, NodeError> {
        Self::assemble(log, access, projections_path, options, StoreProbe::None).await
    }

    async fn assemble(
        log: Arc<dyn EventLog>,
        access: Arc<dyn EventLog>,
        projections_path: &Path,
        options: NodeOptions,
        probe: StoreProbe,
    ) -> Result<Node, NodeError> {
        let metrics = Arc::new(Metrics::new());
        let log: Arc<dyn EventLog> =
            Arc::new(MeteredLog::new(log, metrics.clone(), LogKind::Events));
        let access: Arc<dyn EventLog> =
            Arc::new(MeteredLog::new(access, metrics.clone(), LogKind::Access));
        let projections =
            Projections::open(projections_path, log.clone(), ProjectionConfig::default()).await?;
        let registry = Registry::new(log.clone());
        let access_log = AccessLog::new(access);
        let registers = NodeHandles {
            log: log.clone(),
            registry: registry.clone(),
            projections: projections.clone(),
        };
        let schema = build_schema(registers, access_log.clone(), &options.query_limits);
        metrics.register_projection_gauges(log.watch_head(), projections.watch_position());
        let ready = NodeReadiness::start(
            probe,
            options.probe_interval,
            projections.watch_position(),
            log.watch_head(),
        )
        .await;
        Ok(Node {
            log,
            access_log,
            registry,
            projections,
            schema,
            metrics,
            authenticator: Arc::new(Authenticator::new(options.auth)),
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

    /// The HTTP router: `/graphql`, `/graphiql`, `/healthz`, `/readyz`, and `/metrics` unless
    /// the options moved it elsewhere.
    pub fn router(&self) -> Router {
        let state = ServerState::new(self.authenticator.clone())
            .with_readiness(self.readiness())
            .with_limits(self.server_limits)
            .with_metrics(self.metrics.clone())
            .expose_metrics(self.expose_metrics);
        router(self.schema.clone(), state)
    }

    /// `/metrics` alone, for a separate listen address.
    pub fn metrics_router(&self) -> Router {
        metrics_router(self.metrics.clone(), self.readiness())
    }
}
