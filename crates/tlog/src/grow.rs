//! Growing the stored tree: new entries in, rewritten tiles out.
//!
//! Only the tiles at the right edge change when the tree grows: the partial entry bundle and
//! the partial tile of each level gain hashes, and every tile that fills up adds its MTH to the
//! level above. `extend` is pure (tiles in, tiles out) so every store persists the same bytes.

use crate::TlogError;
use crate::hash::{TreeHash, fold, leaf_hash};
use crate::tile::{HASH_LEN, Level, TILE_WIDTH, TileKey, edge};
use crate::tree::TileSet;

/// The tiles to write when the tree of `size` leaves gains `entries` (leaf data: 32-byte event
/// hashes). `stored` must hold the right-edge tiles of the tree at `size` ([`edge`]).
pub fn extend(
    size: u64,
    stored: &TileSet,
    entries: &[[u8; 32]],
) -> Result<Vec<(TileKey, Vec<u8>)>, TlogError> {
    let mut out = Vec::new();
    if entries.is_empty() {
        return Ok(out);
    }
    append(Level::Entries, size, stored, entries, &mut out)?;
    let mut hashes: Vec<TreeHash> = entries.iter().map(|e| leaf_hash(e)).collect();
    let mut before = size; // hashes at the current level before the append
    let mut level = 0u8;
    while !hashes.is_empty() {
        let full = append(Level::Hashes(level), before, stored, &hashes, &mut out)?;
        hashes = full;
        before /= TILE_WIDTH;
        level += 1;
    }
    Ok(out)
}

/// Appends `new` to a level holding `before` hashes; returns the MTH of every tile that became
/// full, in order (the hashes the level above gains).
fn append(
    level: Level,
    before: u64,
    stored: &TileSet,
    new: &[TreeHash],
    out: &mut Vec<(TileKey, Vec<u8>)>,
) -> Result<Vec<TreeHash>, TlogError> {
    let mut index = before / TILE_WIDTH;
    let kept = (before % TILE_WIDTH) as usize;
    let mut current: Vec<u8> = Vec::with_capacity(TILE_WIDTH as usize * HASH_LEN);
    if kept > 0 {
        let key = TileKey { level, index };
        let bytes = stored.get(&key).ok_or(TlogError::MissingTile(key))?;
        if bytes.len() < kept * HASH_LEN {
            return Err(TlogError::MissingTile(key));
        }
        current.extend_from_slice(&bytes[..kept * HASH_LEN]);
    }
    let mut full = Vec::new();
    for hash in new {
        current.extend_from_slice(hash);
        if current.len() == TILE_WIDTH as usize * HASH_LEN {
            if let Level::Hashes(_) = level {
                let hashes: Vec<TreeHash> = current
                    .chunks_exact(HASH_LEN)
                    .map(|c| c.try_into().unwrap_or([0; 32]))
                    .collect();
                full.push(fold(&hashes));
            }
            out.push((TileKey { level, index }, std::mem::take(&mut current)));
            current.reserve(TILE_WIDTH as usize * HASH_LEN);
            index += 1;
        }
    }
    if !current.is_empty() {
        out.push((TileKey { level, index }, current));
    }
    Ok(full)
}

/// The keys of the tiles `extend` needs from storage for a tree of `size` leaves.
pub fn edge_keys(size: u64) -> Vec<TileKey> {
    edge(size).into_iter().map(|(key, _)| key).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{entry, grown};

    #[test]
    fn growing_in_any_batches_stores_the_same_tiles() {
        let one_go = {
            let entries: Vec<[u8; 32]> = (0..1000).map(entry).collect();
            let mut tiles = TileSet::new();
            for (k, v) in extend(0, &TileSet::new(), &entries).unwrap() {
                tiles.insert(k, v);
            }
            tiles
        };
        let batches = grown(1000);
        for key in edge_keys(1000).into_iter().chain([TileKey {
            level: Level::Hashes(0),
            index: 2,
        }]) {
            assert_eq!(one_go.get(&key), batches.get(&key), "{key:?}");
            assert!(one_go.get(&key).is_some());
        }
    }

    #[test]
    fn a_missing_edge_tile_is_refused_not_guessed() {
        let err = extend(300, &TileSet::new(), &[entry(300)]).unwrap_err();
        assert!(matches!(err, TlogError::MissingTile(_)));
    }
}
