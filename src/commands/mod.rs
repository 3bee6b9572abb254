//! The bodies of the `citydb` subcommands, one module per command (`main.rs` holds their
//! command-line definitions and the dispatch), and what several of them share: opening an
//! existing log of a data directory or store.

pub mod export;
pub mod fixtures;
pub mod import;
pub mod keygen;
pub mod migrate;
pub mod prove;
pub mod rebuild;
pub mod serve;
pub mod token;
pub mod verify;
pub mod witness;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use citydb_log::EventLog;
use citydb_sqlite::{SqliteConfig, SqliteLog};
use citydb_store::{Store, StoreConfig};

/// Opens an existing log: a file of the data directory, or the PostgreSQL store's event log
/// (`log.db`) or access log (`access-log.db`).
pub async fn open_existing_log(
    data: &Path,
    store: &Store,
    file: &str,
) -> anyhow::Result<Arc<dyn EventLog>> {
    if let Store::Postgres(_) = store {
        let opened = citydb_store::open(store, data, &StoreConfig::default())
            .await
            .context("cannot open the PostgreSQL store")?;
        return Ok(if file == "access-log.db" {
            opened.access.v1
        } else {
            opened.log
        });
    }
    let path = data.join(file);
    if !path.exists() {
        anyhow::bail!("no log at {}", path.display());
    }
    let log = SqliteLog::open(&path, SqliteConfig::default())
        .with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Arc::new(log))
}

/// Opens an existing access log (its v1 events and v2 entries): the data directory's
/// `access-log.db`, or the PostgreSQL store's.
pub async fn open_access_log(
    data: &Path,
    store: &Store,
) -> anyhow::Result<citydb_access::AccessLogStore> {
    if let Store::Postgres(_) = store {
        let opened = citydb_store::open(store, data, &StoreConfig::default())
            .await
            .context("cannot open the PostgreSQL store")?;
        return Ok(opened.access);
    }
    let path = data.join("access-log.db");
    if !path.exists() {
        anyhow::bail!("no log at {}", path.display());
    }
    citydb_store::open_embedded_access_log_to_read(&path, &SqliteConfig::default())
        .with_context(|| format!("cannot open {}", path.display()))
}

/// `export` and `migrate` carry an event log; an access log's v2 entries are not events, and
/// carrying only its v1 events would drop them without a word. Refused until they are carried.
pub async fn refuse_v2_entries(
    access: &citydb_access::AccessLogStore,
    what: &str,
) -> anyhow::Result<()> {
    if access.v2.first_seq().await?.is_some() {
        anyhow::bail!(
            "{what} holds access-log entries in format v2, which this command does not carry yet; \
             verify it with `citydb verify --access-log` and copy it whole (docs/operations.md, \
             \"The access log: size, retention, archiving\")"
        );
    }
    Ok(())
}

/// Grows a log's stored Merkle tree (`citydb-tlog`) to the log's head: every command that
/// writes a log (import, migrate) leaves its tree caught up, so that the next checkpoint signs
/// at once. A server keeping the same tree at the same moment wins the race harmlessly.
pub async fn keep_tree(
    tree: Arc<dyn citydb_tlog::TileStore>,
    leaves: &dyn citydb_tlog::Leaves,
) -> anyhow::Result<u64> {
    let started = std::time::Instant::now();
    let tlog = citydb_tlog::Tlog::new(tree, "");
    match tlog.catch_up(leaves).await {
        Ok(size) => {
            tracing::info!(size, elapsed = ?started.elapsed(), "Merkle tree caught up");
            Ok(size)
        }
        Err(citydb_tlog::TlogError::Conflict { expected }) => Ok(expected),
        Err(e) => Err(anyhow::anyhow!("cannot keep the log's Merkle tree: {e}")),
    }
}

/// The file name of the log asked for: the access log or the event log.
pub fn log_file(access_log: bool) -> &'static str {
    if access_log {
        "access-log.db"
    } else {
        "log.db"
    }
}
