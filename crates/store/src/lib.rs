//! Opens the configured backend from a URL; the only crate that knows every store.
//!
//! A node keeps two logs: the event log (the truth) and the access log (the hash-chained log of
//! personal-data reads: its v1 events, still read and verified, and its compact v2 entries,
//! written now; see `citydb_access`). [`open`] opens both on the [`Store`] named on the command
//! line, with a [`WriteProbe`] that readiness asks whether the store accepts writes; the API
//! receives them as an `Arc<dyn EventLog>` and an [`AccessLogStore`] and knows no backend.
//! Where the logs live:
//! - embedded (default): `DIR/log.db` and `DIR/access-log.db`, SQLite files in the data
//!   directory — back both up;
//! - PostgreSQL: the event log in the database's current schema and the access log in schema
//!   [`ACCESS_LOG_SCHEMA`] of the same database, shared by every node that points at it.
//!
//! A new backend is one more [`Store`] variant, its arm in [`open`] and its [`WriteProbe`].

mod probe;

use std::path::Path;
use std::sync::Arc;

use citydb_access::{AccessError, AccessLogStore, PostgresEntries, SqliteEntries};
use citydb_log::backend::WriteProbe;
use citydb_log::bulk::{BulkSink, CopySink};
use citydb_log::{EventLog, LogError};
use citydb_postgres::{PgTiles, PostgresConfig, PostgresLog};
use citydb_sqlite::{SqliteBulk, SqliteConfig, SqliteLog, SqliteTiles};
use citydb_tlog::TileStore;

pub use probe::{PostgresProbe, SqliteProbe};

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {reason}")]
    DataDir { path: String, reason: String },
    #[error("event log: {0}")]
    Log(#[from] LogError),
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

/// How each backend is opened; only the one [`Store`] names is used.
#[derive(Clone, Debug, Default)]
pub struct StoreConfig {
    pub sqlite: SqliteConfig,
    pub postgres: PostgresConfig,
}

/// A node's two logs, opened, and how to ask their store whether it accepts writes.
pub struct OpenedStore {
    pub log: Arc<dyn EventLog>,
    pub access: AccessLogStore,
    pub probe: Arc<dyn WriteProbe>,
    /// The event log's Merkle tree, stored beside it (`citydb-tlog`).
    pub tree: Arc<dyn TileStore>,
    /// The access log's Merkle tree, stored beside it.
    pub access_tree: Arc<dyn TileStore>,
}

/// The PostgreSQL schema that holds the access log, beside the event log.
pub const ACCESS_LOG_SCHEMA: &str = "citydb_access";

/// Opens the event log and the access log of `store` (the embedded store's files in
/// `data_dir`, created with it if missing).
pub async fn open(
    store: &Store,
    data_dir: &Path,
    config: &StoreConfig,
) -> Result<OpenedStore, StoreError> {
    match store {
        Store::Embedded => {
            std::fs::create_dir_all(data_dir).map_err(|e| StoreError::DataDir {
                path: data_dir.display().to_string(),
                reason: e.to_string(),
            })?;
            let (log_path, access_path) = (data_dir.join("log.db"), data_dir.join("access-log.db"));
            let log = SqliteLog::open(&log_path, config.sqlite.clone())?;
            let access = open_embedded_access_log(&access_path, &config.sqlite)?;
            let tree = SqliteTiles::open(&log_path, &config.sqlite).map_err(tree_error)?;
            let access_tree =
                SqliteTiles::open(&access_path, &config.sqlite).map_err(tree_error)?;
            Ok(OpenedStore {
                log: Arc::new(log),
                access,
                tree: Arc::new(tree),
                access_tree: Arc::new(access_tree),
                probe: Arc::new(SqliteProbe {
                    log: log_path,
                    access: access_path,
                }),
            })
        }
        Store::Postgres(url) => {
            let log = PostgresLog::connect(url, config.postgres.clone()).await?;
            // The access log is a second log of the same kind; it lives in its own schema of
            // the same database, so every node shares it and one backup holds both.
            let access_url = with_search_path(url, ACCESS_LOG_SCHEMA)?;
            create_schema(url, ACCESS_LOG_SCHEMA).await?;
            let v1 = PostgresLog::connect(&access_url, config.postgres.clone()).await?;
            // The v2 tables beside the v1 `events` table, which must exist first.
            let v2 = PostgresEntries::connect(&access_url, config.postgres.connect_timeout)
                .await
                .map_err(access_error)?;
            let tree = PgTiles::connect(url, &config.postgres)
                .await
                .map_err(tree_error)?;
            let access_tree = PgTiles::connect(&access_url, &config.postgres)
                .await
                .map_err(tree_error)?;
            Ok(OpenedStore {
                log: Arc::new(log),
                tree: Arc::new(tree),
                access_tree: Arc::new(access_tree),
                access: AccessLogStore {
                    v1: Arc::new(v1),
                    v2: Arc::new(v2),
                },
                probe: Arc::new(PostgresProbe { url: url.clone() }),
            })
        }
    }
}

/// Opens an embedded access log file (`access-log.db`, created if missing): its v1 log first
/// (the file's identity and `events` table), then the v2 tables beside it.
pub fn open_embedded_access_log(
    path: &Path,
    config: &SqliteConfig,
) -> Result<AccessLogStore, StoreError> {
    access_log_file(path, config, SqliteEntries::open)
}

/// [`open_embedded_access_log`] for a tool that reads the file and does not serve (`verify`,
/// `export`, `prove`, the source of `migrate`): it never writes the citizen index's derived
/// rows ([`SqliteEntries::open_to_read`]).
pub fn open_embedded_access_log_to_read(
    path: &Path,
    config: &SqliteConfig,
) -> Result<AccessLogStore, StoreError> {
    access_log_file(path, config, SqliteEntries::open_to_read)
}

/// The file's v1 log first (its identity and `events` table), then its v2 tables by `v2`.
fn access_log_file(
    path: &Path,
    config: &SqliteConfig,
    v2: fn(&Path, &SqliteConfig) -> Result<SqliteEntries, AccessError>,
) -> Result<AccessLogStore, StoreError> {
    let v1 = SqliteLog::open(path, config.clone())?;
    let v2 = v2(path, config).map_err(access_error)?;
    Ok(AccessLogStore {
        v1: Arc::new(v1),
        v2: Arc::new(v2),
    })
}

fn tree_error(e: citydb_tlog::TlogError) -> StoreError {
    StoreError::Store(format!("the Merkle tree's tables: {e}"))
}

/// Opens the stored Merkle tree of one log of `store` (the event log's, or the access log's),
/// for tools that keep or read it without serving (`citydb prove`, `citydb import`). The log
/// must exist: an embedded tree lives in its log's file, which is never created here.
pub async fn open_tree(
    store: &Store,
    data_dir: &Path,
    config: &StoreConfig,
    access_log: bool,
) -> Result<Arc<dyn TileStore>, StoreError> {
    match store {
        Store::Embedded => {
            let path = data_dir.join(if access_log {
                "access-log.db"
            } else {
                "log.db"
            });
            if !path.exists() {
                return Err(StoreError::Store(format!("no log at {}", path.display())));
            }
            Ok(Arc::new(
                SqliteTiles::open(&path, &config.sqlite).map_err(tree_error)?,
            ))
        }
        Store::Postgres(url) => {
            let url = if access_log {
                with_search_path(url, ACCESS_LOG_SCHEMA)?
            } else {
                url.clone()
            };
            Ok(Arc::new(
                PgTiles::connect(&url, &config.postgres)
                    .await
                    .map_err(tree_error)?,
            ))
        }
    }
}

fn access_error(e: AccessError) -> StoreError {
    match e {
        AccessError::Storage(e) => StoreError::Log(e),
        e => StoreError::Store(e.to_string()),
    }
}

/// Opens the event log of `store` for a bulk load by this process alone (`citydb import`'s
/// bulk mode; see `citydb_log::bulk`). Embedded: the file, held exclusively until the sink is
/// finished or dropped ([`SqliteBulk`]). PostgreSQL: [`CopySink`] over the shared log, whose
/// copies are refused if another writer moves the log's tip meanwhile.
pub async fn open_bulk(
    store: &Store,
    data_dir: &Path,
    config: &StoreConfig,
) -> Result<Box<dyn BulkSink>, StoreError> {
    match store {
        Store::Embedded => {
            std::fs::create_dir_all(data_dir).map_err(|e| StoreError::DataDir {
                path: data_dir.display().to_string(),
                reason: e.to_string(),
            })?;
            Ok(Box::new(SqliteBulk::open(
                data_dir.join("log.db"),
                &config.sqlite,
            )?))
        }
        Store::Postgres(url) => {
            let log = PostgresLog::connect(url, config.postgres.clone()).await?;
            Ok(Box::new(CopySink::open(Arc::new(log)).await?))
        }
    }
}

fn with_search_path(url: &str, schema: &str) -> Result<String, StoreError> {
    if url.contains("options=") {
        return Err(StoreError::Store(
            "the PostgreSQL URL already sets `options`; citydb sets the access log's search_path itself".into(),
        ));
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
}

async fn create_schema(url: &str, schema: &str) -> Result<(), StoreError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| StoreError::Store(format!("cannot connect to PostgreSQL: {e}")))?;
    let task = tokio::spawn(connection);
    let created = client
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await
        .map_err(|e| StoreError::Store(format!("cannot create schema {schema}: {e}")));
    drop(client);
    let _ = task.await;
    created
}

#[cfg(test)]
mod tests;
