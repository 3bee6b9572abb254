//! The Merkle tree of a log, stored beside it in the same SQLite file (`citydb-tlog`'s
//! [`TileStore`]): a backup or a restore of the file carries the tree and the checkpoints
//! signed over it with the log.
//!
//! Tables (readable with the stock `sqlite3` tool):
//! - `tlog_tiles(level, idx, hashes)`: one row per tile, `level` -1 for entry bundles (raw
//!   32-byte event hashes, without the bundle's length prefixes); a partial tile is
//!   overwritten as it grows (always with a longer prefix of itself).
//! - `tlog_size(size)`: the leaves the stored tree holds, one row.
//! - `tlog_checkpoints(size, note)`: every checkpoint signed, cosignatures included.
//!
//! Growing runs on a connection of its own, in one `BEGIN IMMEDIATE` transaction whose first
//! step re-reads the size: two keepers cannot both grow from the same size. It takes the file's
//! write lock for a few milliseconds per 64 Ki leaves, between two of the log writer's groups.
//! A bulk load, which holds the file alone, grows the tree in its own transactions instead,
//! through the same functions ([`read_edge`], [`write_growth`]): see `bulk.rs`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use citydb_log::backend::BlockingPool;
use citydb_tlog::{TileKey, TileSet, TileStore, TlogError};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{SqliteConfig, configure, open_connection, open_reader};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tlog_tiles (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hashes BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tlog_size (
    one INTEGER PRIMARY KEY CHECK (one = 0),
    size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tlog_checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL
);
";

/// [`TileStore`] in a log's SQLite file.
#[derive(Clone)]
pub struct SqliteTiles {
    path: PathBuf,
    vfs: Option<String>,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<BlockingPool<Connection>>,
}

fn storage(e: impl std::fmt::Display) -> TlogError {
    TlogError::Storage(e.to_string())
}

impl SqliteTiles {
    /// Opens the tree tables of the log file at `path` (created if missing).
    pub fn open(path: impl AsRef<Path>, config: &SqliteConfig) -> Result<SqliteTiles, TlogError> {
        let path = path.as_ref().to_path_buf();
        let conn = open_connection(&path, config).map_err(storage)?;
        configure(&conn, config, &path.display().to_string()).map_err(storage)?;
        create_tables(&conn).map_err(storage)?;
        Ok(SqliteTiles {
            path,
            vfs: config.vfs.clone(),
            writer: Arc::new(Mutex::new(conn)),
            readers: BlockingPool::new(4),
        })
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, TlogError> {
        let path = self.path.clone();
        let vfs = self.vfs.clone();
        self.readers
            .run(
                move || open_reader(&path, vfs.as_deref()).map_err(storage),
                move |conn| f(conn).map_err(storage),
            )
            .await
            .map_err(storage)?
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, TlogError> + Send + 'static,
    ) -> Result<T, TlogError> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            // A panic inside `f` rolls its transaction back when the Transaction drops, so the
            // connection is clean even if the lock was poisoned.
            let mut conn = writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(storage)?
    }
}

/// Creates the tree's tables if the file has none yet.
pub(crate) fn create_tables(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)
}

/// The stored bytes of each tile of `keys`, `None` where nothing is stored.
fn read_tiles_in(conn: &Connection, keys: &[TileKey]) -> rusqlite::Result<Vec<Option<Vec<u8>>>> {
    let mut stmt =
        conn.prepare_cached("SELECT hashes FROM tlog_tiles WHERE level = ?1 AND idx = ?2")?;
    keys.iter()
        .map(|k| {
            stmt.query_row(params![k.level.code(), k.index as i64], |r| r.get(0))
                .optional()
        })
        .collect()
}

/// The right-edge tiles of the stored tree of `size` leaves: what [`extend`] needs to grow it.
///
/// [`extend`]: citydb_tlog::grow::extend
pub(crate) fn read_edge(conn: &Connection, size: u64) -> rusqlite::Result<TileSet> {
    let keys = citydb_tlog::grow::edge_keys(size);
    let mut edge = TileSet::new();
    for (key, bytes) in keys.iter().zip(read_tiles_in(conn, &keys)?) {
        if let Some(bytes) = bytes {
            edge.insert(*key, bytes);
        }
    }
    Ok(edge)
}

/// Stores `tiles` and the new size `to`, inside the caller's transaction (the caller has
/// checked that the stored size is the one the tiles grow from).
pub(crate) fn write_growth(
    conn: &Connection,
    to: u64,
    tiles: &[(TileKey, Vec<u8>)],
) -> rusqlite::Result<()> {
    let mut put = conn.prepare_cached(
        "INSERT INTO tlog_tiles (level, idx, hashes) VALUES (?1, ?2, ?3)
         ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes",
    )?;
    for (key, bytes) in tiles {
        put.execute(params![key.level.code(), key.index as i64, bytes])?;
    }
    conn.prepare_cached(
        "INSERT INTO tlog_size (one, size) VALUES (0, ?1)
         ON CONFLICT (one) DO UPDATE SET size = excluded.size",
    )?
    .execute([to as i64])?;
    Ok(())
}

pub(crate) fn stored_size(conn: &Connection) -> rusqlite::Result<u64> {
    let size: Option<i64> = conn
        .query_row("SELECT size FROM tlog_size WHERE one = 0", [], |r| r.get(0))
        .optional()?;
    Ok(size.unwrap_or(0) as u64)
}

#[async_trait]
impl TileStore for SqliteTiles {
    async fn size(&self) -> Result<u64, TlogError> {
        self.read(stored_size).await
    }

    async fn read_tiles(&self, keys: &[TileKey]) -> Result<Vec<Option<Vec<u8>>>, TlogError> {
        let keys = keys.to_vec();
        self.read(move |conn| read_tiles_in(conn, &keys)).await
    }

    async fn grow(
        &self,
        from: u64,
        to: u64,
        tiles: Vec<(TileKey, Vec<u8>)>,
    ) -> Result<(), TlogError> {
        self.write(move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(storage)?;
            if stored_size(&tx).map_err(storage)? != from {
                return Err(TlogError::Conflict { expected: from });
            }
            write_growth(&tx, to, &tiles).map_err(storage)?;
            tx.commit().map_err(storage)
        })
        .await
    }

    async fn latest_checkpoint(&self) -> Result<Option<String>, TlogError> {
        self.read(|conn| {
            conn.query_row(
                "SELECT note FROM tlog_checkpoints ORDER BY size DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
        })
        .await
    }

    async fn save_checkpoint(&self, size: u64, note: &str) -> Result<(), TlogError> {
        let note = note.to_owned();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO tlog_checkpoints (size, note) VALUES (?1, ?2)
                 ON CONFLICT (size) DO UPDATE SET note = excluded.note",
                params![size as i64, note],
            )
            .map(drop)
            .map_err(storage)
        })
        .await
    }
}
