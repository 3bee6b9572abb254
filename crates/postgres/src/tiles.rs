//! The Merkle tree of a log, stored beside it in the same PostgreSQL schema (`citydb-tlog`'s
//! [`TileStore`]): the same three tables as the embedded store (`tlog_tiles`, `tlog_size`,
//! `tlog_checkpoints`; see `citydb_sqlite::SqliteTiles`), so one backup holds the log, its tree
//! and the checkpoints signed over it.
//!
//! Several nodes may keep the same tree: growing locks the size row (`FOR UPDATE`) and refuses
//! with `Conflict` if another node grew it first, so the tree grows exactly once per leaf.

use async_trait::async_trait;
use citydb_tlog::{TileKey, TileStore, TlogError};
use deadpool_postgres::Pool;

use crate::{PostgresConfig, describe, make_pool};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tlog_tiles (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hashes BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
CREATE TABLE IF NOT EXISTS tlog_size (
    one INTEGER PRIMARY KEY CHECK (one = 0),
    size BIGINT NOT NULL
);
INSERT INTO tlog_size (one, size) VALUES (0, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS tlog_checkpoints (
    size BIGINT PRIMARY KEY,
    note TEXT NOT NULL
);
";

/// [`TileStore`] in a log's PostgreSQL schema.
pub struct PgTiles {
    pool: Pool,
}

fn storage(e: tokio_postgres::Error) -> TlogError {
    TlogError::Storage(describe(&e))
}

fn pool(e: deadpool_postgres::PoolError) -> TlogError {
    TlogError::Storage(e.to_string())
}

impl PgTiles {
    /// Connects to the database at `url` (the log's own URL, search path included) and creates
    /// the tree's tables if they are missing.
    pub async fn connect(url: &str, config: &PostgresConfig) -> Result<PgTiles, TlogError> {
        let pg: tokio_postgres::Config = url.parse().map_err(|e| {
            TlogError::Storage(format!("invalid PostgreSQL connection string: {e}"))
        })?;
        let pool = make_pool(&pg, 4, config.connect_timeout)
            .map_err(|e| TlogError::Storage(e.to_string()))?;
        {
            let client = pool.get().await.map_err(self::pool)?;
            // Two nodes starting at once may both create: the unique catalog entry makes one
            // of them fail, and it retries once the other has committed.
            if let Err(first) = client.batch_execute(SCHEMA).await {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                client
                    .batch_execute(SCHEMA)
                    .await
                    .map_err(|_| storage(first))?;
            }
        }
        Ok(PgTiles { pool })
    }
}

#[async_trait]
impl TileStore for PgTiles {
    async fn size(&self) -> Result<u64, TlogError> {
        let client = self.pool.get().await.map_err(pool)?;
        let row = client
            .query_one("SELECT size FROM tlog_size WHERE one = 0", &[])
            .await
            .map_err(storage)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn read_tiles(&self, keys: &[TileKey]) -> Result<Vec<Option<Vec<u8>>>, TlogError> {
        let client = self.pool.get().await.map_err(pool)?;
        let levels: Vec<i32> = keys.iter().map(|k| k.level.code() as i32).collect();
        let indexes: Vec<i64> = keys.iter().map(|k| k.index as i64).collect();
        // One round trip for the whole query (a proof needs a few tiles per level).
        let rows = client
            .query(
                "SELECT t.level, t.idx, t.hashes FROM tlog_tiles t
                 JOIN unnest($1::int[], $2::bigint[]) AS k(level, idx)
                   ON t.level = k.level AND t.idx = k.idx",
                &[&levels, &indexes],
            )
            .await
            .map_err(storage)?;
        let mut found: std::collections::HashMap<(i32, i64), Vec<u8>> = rows
            .into_iter()
            .map(|r| ((r.get(0), r.get(1)), r.get(2)))
            .collect();
        Ok(levels
            .iter()
            .zip(&indexes)
            .map(|(l, i)| found.remove(&(*l, *i)))
            .collect())
    }

    async fn grow(
        &self,
        from: u64,
        to: u64,
        tiles: Vec<(TileKey, Vec<u8>)>,
    ) -> Result<(), TlogError> {
        let mut client = self.pool.get().await.map_err(pool)?;
        let tx = client.transaction().await.map_err(storage)?;
        let row = tx
            .query_one("SELECT size FROM tlog_size WHERE one = 0 FOR UPDATE", &[])
            .await
            .map_err(storage)?;
        if row.get::<_, i64>(0) as u64 != from {
            return Err(TlogError::Conflict { expected: from });
        }
        let levels: Vec<i32> = tiles.iter().map(|(k, _)| k.level.code() as i32).collect();
        let indexes: Vec<i64> = tiles.iter().map(|(k, _)| k.index as i64).collect();
        let hashes: Vec<&[u8]> = tiles.iter().map(|(_, b)| b.as_slice()).collect();
        tx.execute(
            "INSERT INTO tlog_tiles (level, idx, hashes)
             SELECT * FROM unnest($1::int[], $2::bigint[], $3::bytea[])
             ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes",
            &[&levels, &indexes, &hashes],
        )
        .await
        .map_err(storage)?;
        tx.execute(
            "UPDATE tlog_size SET size = $1 WHERE one = 0",
            &[&(to as i64)],
        )
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)
    }

    async fn latest_checkpoint(&self) -> Result<Option<String>, TlogError> {
        let client = self.pool.get().await.map_err(pool)?;
        let row = client
            .query_opt(
                "SELECT note FROM tlog_checkpoints ORDER BY size DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(storage)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn save_checkpoint(&self, size: u64, note: &str) -> Result<(), TlogError> {
        let client = self.pool.get().await.map_err(pool)?;
        client
            .execute(
                "INSERT INTO tlog_checkpoints (size, note) VALUES ($1, $2)
                 ON CONFLICT (size) DO UPDATE SET note = excluded.note",
                &[&(size as i64), &note],
            )
            .await
            .map_err(storage)?;
        Ok(())
    }
}
