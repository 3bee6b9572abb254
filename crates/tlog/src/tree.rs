//! RFC 6962 §2.1 Merkle tree hashes and proofs, computed from stored tiles.
//!
//! Every algorithm here asks only for hashes of *complete* subtrees (height `h`, index `k`:
//! leaves `[k·2^h, (k+1)·2^h)`), and which ones it asks for depends on the sizes and indexes
//! alone, never on hash values. So a query runs twice: once with a recorder that lists the
//! tiles it will need (fetched from storage in one batch: O(log n) tiles), then over those
//! tiles. A complete subtree of height `h = 8l + r` is `2^r` consecutive hashes of one tile
//! at level `l`, folded `r` times.

use std::collections::{BTreeSet, HashMap};

use crate::TlogError;
use crate::hash::{TreeHash, empty_root, fold, node_hash, split_point};
use crate::tile::{HASH_LEN, Level, TILE_WIDTH, TileKey};

/// Tiles read from storage, each as stored (full, or as wide as the tree has grown).
#[derive(Default, Debug, Clone)]
pub struct TileSet {
    tiles: HashMap<TileKey, Vec<u8>>,
}

impl TileSet {
    pub fn new() -> TileSet {
        TileSet::default()
    }

    pub fn insert(&mut self, key: TileKey, bytes: Vec<u8>) {
        self.tiles.insert(key, bytes);
    }

    pub fn get(&self, key: &TileKey) -> Option<&[u8]> {
        self.tiles.get(key).map(Vec::as_slice)
    }
}

/// Where the algorithms get complete-subtree hashes from.
trait Subtrees {
    fn subtree(&mut self, height: u32, index: u64) -> Result<TreeHash, TlogError>;
}

/// The tile holding the hashes of a complete subtree, and the range of them it needs.
fn locate(height: u32, index: u64) -> (TileKey, usize, usize) {
    let level = height / 8;
    let r = height % 8;
    let first = index << r;
    let key = TileKey {
        level: Level::Hashes(level as u8),
        index: first / TILE_WIDTH,
    };
    let offset = (first % TILE_WIDTH) as usize;
    (key, offset, offset + (1usize << r))
}

/// The dry run: records which tiles a query needs.
#[derive(Default)]
struct Recorder(BTreeSet<TileKey>);

impl Subtrees for Recorder {
    fn subtree(&mut self, height: u32, index: u64) -> Result<TreeHash, TlogError> {
        self.0.insert(locate(height, index).0);
        Ok([0; 32])
    }
}

impl Subtrees for &TileSet {
    fn subtree(&mut self, height: u32, index: u64) -> Result<TreeHash, TlogError> {
        let (key, from, to) = locate(height, index);
        let bytes = self.get(&key).ok_or(TlogError::MissingTile(key))?;
        if bytes.len() < to * HASH_LEN {
            return Err(TlogError::MissingTile(key));
        }
        let hashes: Vec<TreeHash> = bytes[from * HASH_LEN..to * HASH_LEN]
            .chunks_exact(HASH_LEN)
            .map(|c| {
                let mut h = [0u8; 32];
                h.copy_from_slice(c);
                h
            })
            .collect();
        Ok(fold(&hashes))
    }
}

/// MTH(D[a:b]) (RFC 6962 §2.1), `a` aligned as the recursion from `[0, n)` keeps it.
fn mth<S: Subtrees>(s: &mut S, a: u64, b: u64) -> Result<TreeHash, TlogError> {
    let n = b - a;
    if n.is_power_of_two() && a.is_multiple_of(n) {
        return s.subtree(n.trailing_zeros(), a / n);
    }
    let k = split_point(n);
    let left = mth(s, a, a + k)?;
    let right = mth(s, a + k, b)?;
    Ok(node_hash(&left, &right))
}

/// PATH(m, D[a:b]) (RFC 6962 §2.1.1), leaf's sibling first.
fn path<S: Subtrees>(s: &mut S, m: u64, a: u64, b: u64) -> Result<Vec<TreeHash>, TlogError> {
    let n = b - a;
    if n == 1 {
        return Ok(Vec::new());
    }
    let k = split_point(n);
    let (mut proof, sibling) = if m < k {
        (path(s, m, a, a + k)?, mth(s, a + k, b)?)
    } else {
        (path(s, m - k, a + k, b)?, mth(s, a, a + k)?)
    };
    proof.push(sibling);
    Ok(proof)
}

/// SUBPROOF(m, D[a:b], start) (RFC 6962 §2.1.2).
fn subproof<S: Subtrees>(
    s: &mut S,
    m: u64,
    a: u64,
    b: u64,
    start: bool,
) -> Result<Vec<TreeHash>, TlogError> {
    let n = b - a;
    if m == n {
        return Ok(if start {
            Vec::new()
        } else {
            vec![mth(s, a, b)?]
        });
    }
    let k = split_point(n);
    let (mut proof, other) = if m <= k {
        (subproof(s, m, a, a + k, start)?, mth(s, a + k, b)?)
    } else {
        (subproof(s, m - k, a + k, b, false)?, mth(s, a, a + k)?)
    };
    proof.push(other);
    Ok(proof)
}

/// A question about the tree, answered from tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// The root hash of the tree of `size` leaves.
    Root { size: u64 },
    /// The inclusion proof of leaf `index` in the tree of `size` leaves.
    Inclusion { index: u64, size: u64 },
    /// The consistency proof from the tree of `old` leaves to the tree of `new` leaves.
    Consistency { old: u64, new: u64 },
}

impl Query {
    fn run<S: Subtrees>(&self, s: &mut S) -> Result<Vec<TreeHash>, TlogError> {
        match *self {
            Query::Root { size: 0 } => Ok(vec![empty_root()]),
            Query::Root { size } => Ok(vec![mth(s, 0, size)?]),
            Query::Inclusion { index, size } => {
                if index >= size {
                    return Err(TlogError::OutOfRange { index, size });
                }
                path(s, index, 0, size)
            }
            Query::Consistency { old, new } => {
                if old > new {
                    return Err(TlogError::OutOfRange {
                        index: old,
                        size: new,
                    });
                }
                if old == 0 || old == new {
                    return Ok(Vec::new());
                }
                subproof(s, old, 0, new, true)
            }
        }
    }

    /// The tiles answering this query needs (at most a few per level of the tree).
    pub fn tiles(&self) -> Result<Vec<TileKey>, TlogError> {
        let mut recorder = Recorder::default();
        self.run(&mut recorder)?;
        Ok(recorder.0.into_iter().collect())
    }

    /// The answer: `[root]` for a root, the proof's hashes (bottom up) for a proof.
    pub fn answer(&self, tiles: &TileSet) -> Result<Vec<TreeHash>, TlogError> {
        self.run(&mut &*tiles)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::grow::extend;
    use crate::hash::leaf_hash;
    use crate::proof::{verify_consistency, verify_inclusion};
    use sha2::{Digest, Sha256};

    /// The test entries of docs/audit-format.md: e_i = SHA-256(decimal i).
    pub fn entry(i: u64) -> [u8; 32] {
        Sha256::digest(i.to_string().as_bytes()).into()
    }

    /// RFC 6962's definition, straight from the leaves: the oracle.
    fn reference_mth(leaves: &[TreeHash]) -> TreeHash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&reference_mth(&leaves[..k]), &reference_mth(&leaves[k..]))
            }
        }
    }

    /// A tree of `size` test entries grown in uneven batches, as a keeper would.
    pub fn grown(size: u64) -> TileSet {
        let mut tiles = TileSet::new();
        let mut at = 0;
        let mut batch = 1;
        while at < size {
            let to = (at + batch).min(size);
            let entries: Vec<[u8; 32]> = (at..to).map(entry).collect();
            for (key, bytes) in extend(at, &tiles, &entries).unwrap() {
                tiles.insert(key, bytes);
            }
            at = to;
            batch = batch * 3 + 1;
        }
        tiles
    }

    #[test]
    fn roots_match_the_definition_for_every_size_up_to_600_and_past_two_levels() {
        let big = 70_001;
        let tiles = grown(big);
        let leaves: Vec<TreeHash> = (0..big).map(|i| leaf_hash(&entry(i))).collect();
        for size in (0..600).chain([65_535, 65_536, 65_537, 70_000, 70_001]) {
            let root = Query::Root { size }.answer(&tiles).unwrap();
            assert_eq!(
                root,
                vec![reference_mth(&leaves[..size as usize])],
                "size {size}"
            );
        }
    }

    #[test]
    fn proofs_verify_and_need_few_tiles() {
        let tiles = grown(70_001);
        for size in [1u64, 2, 3, 7, 8, 255, 256, 257, 1000, 65_536, 70_001] {
            let root = Query::Root { size }.answer(&tiles).unwrap()[0];
            for index in [0, size / 3, size / 2, size - 1] {
                let q = Query::Inclusion { index, size };
                let proof = q.answer(&tiles).unwrap();
                assert!(q.tiles().unwrap().len() <= 12, "{q:?}");
                verify_inclusion(&leaf_hash(&entry(index)), index, size, &proof, &root).unwrap();
                assert!(
                    verify_inclusion(&leaf_hash(&entry(index + 1)), index, size, &proof, &root)
                        .is_err()
                );
            }
            for old in [1, size / 2, size - 1, size] {
                if old == 0 {
                    continue;
                }
                let old_root = Query::Root { size: old }.answer(&tiles).unwrap()[0];
                let q = Query::Consistency { old, new: size };
                let proof = q.answer(&tiles).unwrap();
                verify_consistency(old, size, &old_root, &root, &proof).unwrap();
            }
        }
    }

    #[test]
    fn a_missing_tile_is_named() {
        let tiles = grown(300);
        let err = Query::Root { size: 600 }.answer(&tiles).unwrap_err();
        assert!(matches!(err, TlogError::MissingTile(_)), "{err}");
        let err = Query::Inclusion { index: 5, size: 5 }.tiles().unwrap_err();
        assert!(matches!(err, TlogError::OutOfRange { .. }));
    }
}
