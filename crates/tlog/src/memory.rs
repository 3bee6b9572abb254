//! A tree kept in memory: for `MemoryLog` and for tests that need a tree but not a store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::TlogError;
use crate::store::TileStore;
use crate::tile::TileKey;

#[derive(Default)]
struct State {
    size: u64,
    tiles: HashMap<TileKey, Vec<u8>>,
    checkpoints: BTreeMap<u64, String>,
}

/// [`TileStore`] in memory.
#[derive(Default)]
pub struct MemoryTiles(Mutex<State>);

impl MemoryTiles {
    pub fn new() -> MemoryTiles {
        MemoryTiles::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written: every write
        // below is a single insert after all checks.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl TileStore for MemoryTiles {
    async fn size(&self) -> Result<u64, TlogError> {
        Ok(self.state().size)
    }

    async fn read_tiles(&self, keys: &[TileKey]) -> Result<Vec<Option<Vec<u8>>>, TlogError> {
        let state = self.state();
        Ok(keys.iter().map(|k| state.tiles.get(k).cloned()).collect())
    }

    async fn grow(
        &self,
        from: u64,
        to: u64,
        tiles: Vec<(TileKey, Vec<u8>)>,
    ) -> Result<(), TlogError> {
        let mut state = self.state();
        if state.size != from {
            return Err(TlogError::Conflict { expected: from });
        }
        state.tiles.extend(tiles);
        state.size = to;
        Ok(())
    }

    async fn latest_checkpoint(&self) -> Result<Option<String>, TlogError> {
        Ok(self.state().checkpoints.values().next_back().cloned())
    }

    async fn save_checkpoint(&self, size: u64, note: &str) -> Result<(), TlogError> {
        self.state().checkpoints.insert(size, note.to_owned());
        Ok(())
    }
}
