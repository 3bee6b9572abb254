//! This crate against an independent implementation: Cloudflare's `tlog_tiles` (azul), a port
//! of Go's `golang.org/x/mod/sumdb/tlog`, which computes the tree from its own "stored hashes"
//! (not from tiles) and proves and checks with Go's algorithms.
//!
//! For trees of many sizes (every size up to 600, and the sizes around each tile and level
//! boundary up to three levels of tiles), both must give the same roots, the same inclusion and
//! consistency proofs, accept each other's proofs, name and fill the same tiles, and read the
//! same checkpoint text. `tlog_tiles` 0.2 has no signed-note code: notes are checked against
//! the Go-compatible vectors of docs/audit-format.md instead (tests/vectors.rs).

use std::collections::HashSet;
use std::sync::Arc;

use citydb_tlog::contract::TestLeaves;
use citydb_tlog::memory::MemoryTiles;
use citydb_tlog::proof::{verify_consistency, verify_inclusion};
use citydb_tlog::{Checkpoint, Level, Query, TileKey, TileRequest, Tlog};
use tlog_tiles::{HashReader, TileHashReader, TileReader};

/// Go's stored hashes of the tree, appended record by record (`stored_hashes`).
struct Stored(Vec<tlog_tiles::Hash>);

impl HashReader for Stored {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                self.0
                    .get(i as usize)
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

/// This crate's published tiles, as the oracle's tile client reads them (height 8).
struct Published<'a> {
    tlog: &'a Tlog,
    rt: &'a tokio::runtime::Runtime,
}

fn request(tile: &tlog_tiles::Tile) -> TileRequest {
    TileRequest {
        key: TileKey {
            level: Level::Hashes(tile.level()),
            index: tile.level_index(),
        },
        width: u64::from(tile.width()),
    }
}

impl TileReader for Published<'_> {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|t| {
                self.rt
                    .block_on(self.tlog.tile(request(t)))
                    .ok()
                    .flatten()
                    .ok_or(tlog_tiles::Error::InvalidTile)
            })
            .collect()
    }

    fn save_tiles(&self, _: &[tlog_tiles::Tile], _: &[Vec<u8>]) {}
}

fn raw(hashes: &[tlog_tiles::Hash]) -> Vec<[u8; 32]> {
    hashes.iter().map(|h| h.0).collect()
}

/// The sizes checked: every size up to 600, then both sides of tile and level boundaries.
fn sizes(max: u64) -> Vec<u64> {
    let mut out: Vec<u64> = (1..=600).collect();
    for edge in [1_000u64, 4_096, 65_536, 70_000, 131_072] {
        for s in [edge - 257, edge - 256, edge - 1, edge, edge + 1, edge + 255] {
            if s <= max && !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out.push(max);
    out
}

const MAX: u64 = 131_329; // past 2·256², so level 2 holds a full hash and a partial tile
const ORIGIN: &str = "citydb.test/log";

#[test]
fn roots_proofs_tiles_and_checkpoints_agree_with_tlog_tiles() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let entries = TestLeaves::first(MAX).0;

    // The oracle's tree, record by record.
    let mut stored = Stored(Vec::new());
    for (n, e) in entries.iter().enumerate() {
        let new = tlog_tiles::stored_hashes(n as u64, e, &stored).unwrap();
        stored.0.extend(new);
    }

    // Ours, grown in uneven batches as a keeper grows it.
    let tlog = Tlog::new(Arc::new(MemoryTiles::new()), ORIGIN);
    let (mut size, mut step) = (0u64, 1u64);
    while size < MAX {
        let to = (size + step).min(MAX);
        size = rt
            .block_on(tlog.extend(size, &entries[size as usize..to as usize]))
            .unwrap();
        step = step * 3 + 1;
    }

    let mut proofs = 0;
    for s in sizes(MAX) {
        let root = rt.block_on(tlog.root(s)).unwrap();
        let oracle_root = tlog_tiles::tree_hash(s, &stored).unwrap();
        assert_eq!(root, oracle_root.0, "root of {s}");

        // Inclusion proofs: equal, and each side accepts the other's.
        let mut indexes = vec![0, s / 3, s / 2, s - 1];
        if s <= 40 {
            indexes = (0..s).collect();
        }
        for i in indexes {
            let ours = rt
                .block_on(tlog.answer(Query::Inclusion { index: i, size: s }))
                .unwrap();
            let theirs = tlog_tiles::prove_record(s, i, &stored).unwrap();
            assert_eq!(ours, raw(&theirs), "inclusion of {i} in {s}");
            let leaf = tlog_tiles::record_hash(&entries[i as usize]);
            let ours_as_theirs: Vec<tlog_tiles::Hash> =
                ours.iter().map(|h| tlog_tiles::Hash(*h)).collect();
            tlog_tiles::check_record(&ours_as_theirs, s, oracle_root, i, leaf).unwrap();
            verify_inclusion(&leaf.0, i, s, &raw(&theirs), &root).unwrap();
            proofs += 1;
        }

        // Consistency proofs from smaller trees.
        let mut olds = vec![1, s / 2, s - 1, s];
        if s <= 40 {
            olds = (1..=s).collect();
        }
        for old in olds.into_iter().filter(|&o| o >= 1) {
            let old_root = rt.block_on(tlog.root(old)).unwrap();
            let ours = rt
                .block_on(tlog.answer(Query::Consistency { old, new: s }))
                .unwrap();
            let theirs = tlog_tiles::prove_tree(s, old, &stored).unwrap();
            assert_eq!(ours, raw(&theirs), "consistency {old} -> {s}");
            let ours_as_theirs: Vec<tlog_tiles::Hash> =
                ours.iter().map(|h| tlog_tiles::Hash(*h)).collect();
            tlog_tiles::check_tree(
                &ours_as_theirs,
                s,
                oracle_root,
                old,
                tlog_tiles::Hash(old_root),
            )
            .unwrap();
            verify_consistency(old, s, &old_root, &root, &raw(&theirs)).unwrap();
            proofs += 1;
        }

        // Tiles: the tiles the oracle publishes for a tree of size s are exactly those ours
        // has at that size, under the same path (tlog-tiles drops Go's height element), with
        // the same bytes.
        let theirs = tlog_tiles::Tile::new_tiles(8, 0, s);
        let listed: HashSet<(u8, u64, u32)> = theirs
            .iter()
            .map(|t| (t.level(), t.level_index(), t.width()))
            .collect();
        for t in &theirs {
            let r = request(t);
            assert_eq!(t.path(), format!("tile/8/{}", r.path()), "path");
            let parsed = TileRequest::parse(t.path().strip_prefix("tile/8/").unwrap()).unwrap();
            assert_eq!(parsed, r);
            assert!(r.exists_at(s), "{} at {s}", t.path());
            let bytes = rt.block_on(tlog.tile(r)).unwrap().expect("the tile");
            assert_eq!(bytes, t.read_data(&stored).unwrap(), "{} at {s}", t.path());
        }
        for level in 0..3u8 {
            let hashes = s >> (8 * u32::from(level));
            for index in 0..=(hashes / 256 + 1) {
                for width in [1, 2, 255, 256, hashes % 256] {
                    if width == 0 {
                        continue;
                    }
                    let r = TileRequest {
                        key: TileKey {
                            level: Level::Hashes(level),
                            index,
                        },
                        width,
                    };
                    assert_eq!(
                        r.exists_at(s),
                        listed.contains(&(level, index, width as u32)),
                        "{} at {s}",
                        r.path()
                    );
                }
            }
        }

        // The oracle's tile client reads our tiles, authenticates them against the root it
        // computed itself, and proves from them.
        if s % 97 == 0 || s == MAX {
            let published = Published {
                tlog: &tlog,
                rt: &rt,
            };
            let reader = TileHashReader::new(s, oracle_root, &published);
            let i = s / 2;
            let from_tiles = tlog_tiles::prove_record(s, i, &reader).unwrap();
            assert_eq!(
                raw(&from_tiles),
                raw(&tlog_tiles::prove_record(s, i, &stored).unwrap())
            );
            assert_eq!(tlog_tiles::tree_hash(s, &reader).unwrap().0, root);
        }

        // Checkpoint text, both ways.
        let ours = Checkpoint {
            origin: ORIGIN.into(),
            size: s,
            root,
        };
        let parsed = tlog_tiles::Checkpoint::from_bytes(ours.text().as_bytes()).unwrap();
        assert_eq!(
            (
                parsed.origin(),
                parsed.size(),
                parsed.hash().0,
                parsed.extension()
            ),
            (ORIGIN, s, root, "")
        );
        let theirs = tlog_tiles::Checkpoint::new(ORIGIN, s, oracle_root, "").unwrap();
        assert_eq!(String::from_utf8(theirs.to_bytes()).unwrap(), ours.text());
        assert_eq!(
            Checkpoint::parse_text(std::str::from_utf8(&theirs.to_bytes()).unwrap()).unwrap(),
            ours
        );
    }
    assert!(proofs > 5_000, "{proofs} proofs compared");
}

/// Tile paths both ways, at indexes with several 3-digit groups.
#[test]
fn tile_paths_agree_with_tlog_tiles() {
    for index in [0u64, 7, 999, 1_000, 1_234_067, 999_999_999, 1_000_000_000] {
        for level in [0u8, 1, 2, 5] {
            for width in [1u32, 17, 255, 256] {
                let theirs = tlog_tiles::Tile::new(8, level, index, width, false);
                let ours = TileRequest {
                    key: TileKey {
                        level: Level::Hashes(level),
                        index,
                    },
                    width: u64::from(width),
                };
                assert_eq!(theirs.path(), format!("tile/8/{}", ours.path()));
                let back = tlog_tiles::Tile::from_path(&format!("tile/8/{}", ours.path())).unwrap();
                assert_eq!(back, theirs);
            }
        }
    }
}
