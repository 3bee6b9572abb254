//! Where a tree lives and how it is kept: [`TileStore`] (implemented by each store beside its
//! log), [`Leaves`] (what the tree is built from) and [`Tlog`], which grows the tree from its
//! leaves, answers queries with O(log n) tile reads, and signs checkpoints.

use std::sync::Arc;

use async_trait::async_trait;
use citydb_log::EventLog;
use tokio::sync::Mutex;

use crate::TlogError;
use crate::checkpoint::Checkpoint;
use crate::grow::{edge_keys, extend};
use crate::hash::TreeHash;
use crate::note::{Note, SignerKey};
use crate::tile::{HASH_LEN, Level, TileKey, TileRequest};
use crate::tree::{Query, TileSet};

/// Storage of one tree: its tiles, its size and the checkpoints signed over it.
///
/// Contract (the conformance tests in `memory.rs` hold every store to it):
/// - `grow` is atomic and durable: after it returns, the tiles and the new size are stored
///   together; after a crash, either all of it or none of it is.
/// - `grow` refuses with [`TlogError::Conflict`] when the stored size is not `from` (another
///   keeper grew the tree first), writing nothing.
/// - A tile is stored once per key, overwritten only with a longer prefix of itself.
#[async_trait]
pub trait TileStore: Send + Sync + 'static {
    /// Leaves the stored tree holds.
    async fn size(&self) -> Result<u64, TlogError>;
    /// The stored bytes of each tile asked for, `None` where nothing is stored.
    async fn read_tiles(&self, keys: &[TileKey]) -> Result<Vec<Option<Vec<u8>>>, TlogError>;
    /// Writes `tiles` and moves the size from `from` to `to`, atomically and durably.
    async fn grow(
        &self,
        from: u64,
        to: u64,
        tiles: Vec<(TileKey, Vec<u8>)>,
    ) -> Result<(), TlogError>;
    /// The latest signed checkpoint (the whole note, cosignatures included), if any.
    async fn latest_checkpoint(&self) -> Result<Option<String>, TlogError>;
    /// Records a signed checkpoint of `size` leaves; a later note of the same size (the same
    /// checkpoint with more cosignatures) replaces the earlier one.
    async fn save_checkpoint(&self, size: u64, note: &str) -> Result<(), TlogError>;
}

/// What a tree is built from: its entries (32-byte hashes) in order.
#[async_trait]
pub trait Leaves: Send + Sync {
    /// How many entries there are.
    async fn count(&self) -> Result<u64, TlogError>;
    /// Up to `max` entries from index `from`.
    async fn read(&self, from: u64, max: usize) -> Result<Vec<[u8; 32]>, TlogError>;
}

/// The event log's leaves: the event hash of each position.
pub struct LogLeaves(pub Arc<dyn EventLog>);

#[async_trait]
impl Leaves for LogLeaves {
    async fn count(&self) -> Result<u64, TlogError> {
        let head = self
            .0
            .head()
            .await
            .map_err(|e| TlogError::Storage(e.to_string()))?;
        Ok(head.map_or(0, |h| h.position + 1))
    }

    async fn read(&self, from: u64, max: usize) -> Result<Vec<[u8; 32]>, TlogError> {
        let hashes = self
            .0
            .read_hashes(from, max)
            .await
            .map_err(|e| TlogError::Storage(e.to_string()))?;
        Ok(hashes.into_iter().map(|h| h.0).collect())
    }
}

/// Entries read and stored per step while catching up: 64 Ki entries is 2 MiB of leaf data,
/// so catching up a whole city runs in bounded memory.
pub const CATCH_UP_BATCH: usize = 1 << 16;

/// One tree: grown from its leaves, queried, and signed under its origin.
pub struct Tlog {
    store: Arc<dyn TileStore>,
    origin: String,
    /// Serialises growing and signing within this process (stores refuse a concurrent grow
    /// from another process with `Conflict`).
    lock: Mutex<()>,
}

impl Tlog {
    pub fn new(store: Arc<dyn TileStore>, origin: impl Into<String>) -> Tlog {
        Tlog {
            store,
            origin: origin.into(),
            lock: Mutex::new(()),
        }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn store(&self) -> &Arc<dyn TileStore> {
        &self.store
    }

    /// Grows the stored tree to every entry `leaves` holds; returns the tree's size.
    ///
    /// Before growing, the stored last leaf is compared with the log's entry at that index
    /// ([`TlogError::Diverged`] if they differ).
    pub async fn catch_up(&self, leaves: &dyn Leaves) -> Result<u64, TlogError> {
        let _guard = self.lock.lock().await;
        self.catch_up_locked(leaves).await
    }

    async fn catch_up_locked(&self, leaves: &dyn Leaves) -> Result<u64, TlogError> {
        let mut size = self.store.size().await?;
        let target = leaves.count().await?;
        if size > 0 {
            let last = size - 1;
            let stored = self.entry(last).await?;
            let current = leaves.read(last, 1).await?;
            if current.first() != Some(&stored) {
                return Err(TlogError::Diverged { position: last });
            }
        }
        // The next batch is read while the current one is hashed and stored: reading the log
        // (a store's reader thread) and growing the tree (hashing here, then the tile store's
        // writer) overlap, so catching up costs the slower of the two, not their sum. At most
        // two batches are held.
        let batch_from = |from: u64| ((target.saturating_sub(from)) as usize).min(CATCH_UP_BATCH);
        let mut entries = match batch_from(size) {
            0 => Vec::new(),
            want => leaves.read(size, want).await?,
        };
        while !entries.is_empty() {
            let next_from = size + entries.len() as u64;
            let read_next = async {
                match batch_from(next_from) {
                    0 => Ok(Vec::new()),
                    want => leaves.read(next_from, want).await,
                }
            };
            let (grown, next) = tokio::join!(self.grow_locked(size, &entries), read_next);
            match grown {
                Ok(grown) => {
                    size = grown;
                    entries = next?;
                }
                // Another node grew the shared tree first: carry on from where it is (its
                // leaves are the same log's, checked like ours before it grew).
                Err(TlogError::Conflict { .. }) => {
                    size = self.store.size().await?;
                    entries = match batch_from(size) {
                        0 => Vec::new(),
                        want => leaves.read(size, want).await?,
                    };
                }
                Err(e) => return Err(e),
            }
        }
        Ok(size.max(self.store.size().await?))
    }

    /// Adds `entries` to a tree of `size` leaves (a bulk writer that has the hashes at hand);
    /// returns the new size.
    pub async fn extend(&self, size: u64, entries: &[[u8; 32]]) -> Result<u64, TlogError> {
        let _guard = self.lock.lock().await;
        self.grow_locked(size, entries).await
    }

    async fn grow_locked(&self, size: u64, entries: &[[u8; 32]]) -> Result<u64, TlogError> {
        let tiles = self.read(&edge_keys(size)).await?;
        let written = extend(size, &tiles, entries)?;
        let to = size + entries.len() as u64;
        self.store.grow(size, to, written).await?;
        Ok(to)
    }

    async fn read(&self, keys: &[TileKey]) -> Result<TileSet, TlogError> {
        let found = self.store.read_tiles(keys).await?;
        let mut set = TileSet::new();
        for (key, bytes) in keys.iter().zip(found) {
            if let Some(bytes) = bytes {
                set.insert(*key, bytes);
            }
        }
        Ok(set)
    }

    /// The stored entry (leaf data) at `index`.
    pub async fn entry(&self, index: u64) -> Result<[u8; 32], TlogError> {
        let key = TileKey {
            level: Level::Entries,
            index: index / 256,
        };
        let tiles = self.read(&[key]).await?;
        let at = (index % 256) as usize * HASH_LEN;
        tiles
            .get(&key)
            .and_then(|b| b.get(at..at + HASH_LEN))
            .and_then(|b| b.try_into().ok())
            .ok_or(TlogError::MissingTile(key))
    }

    /// The stored tree's size.
    pub async fn size(&self) -> Result<u64, TlogError> {
        self.store.size().await
    }

    /// Answers a query about the stored tree (sizes beyond it are out of range).
    pub async fn answer(&self, query: Query) -> Result<Vec<TreeHash>, TlogError> {
        let size = self.store.size().await?;
        let limit = match query {
            Query::Root { size } => size,
            Query::Inclusion { size, .. } => size,
            Query::Consistency { new, .. } => new,
        };
        if limit > size {
            return Err(TlogError::OutOfRange { index: limit, size });
        }
        let tiles = self.read(&query.tiles()?).await?;
        query.answer(&tiles)
    }

    pub async fn root(&self, size: u64) -> Result<TreeHash, TlogError> {
        Ok(self.answer(Query::Root { size }).await?[0])
    }

    /// The bytes of a tile resource (`tile/<L>/<N>[.p/<W>]`; entry bundles length-prefixed),
    /// `None` when the tree does not hold it at that width yet. The bytes at a path never
    /// change, so they may be cached for ever.
    pub async fn tile(&self, request: TileRequest) -> Result<Option<Vec<u8>>, TlogError> {
        let tiles = self.read(&[request.key]).await?;
        let want = request.width as usize * HASH_LEN;
        let Some(bytes) = tiles.get(&request.key).filter(|b| b.len() >= want) else {
            return Ok(None);
        };
        let bytes = &bytes[..want];
        Ok(Some(match request.key.level {
            Level::Entries => entry_bundle(bytes),
            Level::Hashes(_) => bytes.to_vec(),
        }))
    }

    /// The latest signed checkpoint, parsed, with its note as stored.
    pub async fn latest(&self) -> Result<Option<(Checkpoint, String)>, TlogError> {
        let Some(note) = self.store.latest_checkpoint().await? else {
            return Ok(None);
        };
        let parsed = Note::parse(&note)?;
        Ok(Some((Checkpoint::parse_text(&parsed.text)?, note)))
    }

    /// Catches the tree up and signs a checkpoint of its size, unless the latest one already
    /// has that size (then it is returned as it is). Returns the signed note.
    ///
    /// Never signs a checkpoint inconsistent with the latest one signed: the stored tree must
    /// not be smaller, and its root at the latest checkpoint's size must be that checkpoint's
    /// root ([`TlogError::Inconsistent`] otherwise).
    pub async fn sign(&self, signer: &SignerKey, leaves: &dyn Leaves) -> Result<String, TlogError> {
        let _guard = self.lock.lock().await;
        let size = self.catch_up_locked(leaves).await?;
        let latest = self.latest().await?;
        if let Some((last, note)) = &latest {
            if last.origin != self.origin {
                return Err(TlogError::Inconsistent(format!(
                    "the latest checkpoint is of origin {:?}, this log's is {:?}",
                    last.origin, self.origin
                )));
            }
            if last.size > size {
                return Err(TlogError::Inconsistent(format!(
                    "the tree has {size} leaves, fewer than the {} of the latest checkpoint",
                    last.size
                )));
            }
            if self.root(last.size).await? != last.root {
                return Err(TlogError::Inconsistent(format!(
                    "the tree's root at {} leaves is not the latest checkpoint's",
                    last.size
                )));
            }
            if last.size == size {
                return Ok(note.clone());
            }
        }
        let checkpoint = Checkpoint {
            origin: self.origin.clone(),
            size,
            root: self.root(size).await?,
        };
        let text = checkpoint.text();
        let note = Note {
            signatures: vec![signer.sign(&text)],
            text,
        }
        .to_string();
        self.store.save_checkpoint(size, &note).await?;
        Ok(note)
    }
}

/// An entry bundle as tlog-tiles serves it: each entry prefixed by its length (two bytes, big
/// endian; always 32 for citydb).
pub fn entry_bundle(entries: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() / HASH_LEN * (HASH_LEN + 2));
    for e in entries.chunks_exact(HASH_LEN) {
        out.extend_from_slice(&(HASH_LEN as u16).to_be_bytes());
        out.extend_from_slice(e);
    }
    out
}
