//! Tiles as C2SP tlog-tiles names and serves them.
//!
//! A hash tile at level `l`, index `n` holds up to 256 consecutive tree hashes: the MTH of
//! leaves `[(n·256 + i)·256^l, (n·256 + i + 1)·256^l)` for `i` in `0..256`. An entry bundle at
//! index `n` holds the leaf data of entries `n·256 ..`. A tile is *partial* while the tree's
//! size does not fill it; a partial tile is a prefix of the full tile it grows into, so one
//! stored row per tile, overwritten as it grows, serves every width.

use crate::TlogError;

/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Bytes of one hash or one entry (citydb's entries are 32-byte event hashes).
pub const HASH_LEN: usize = 32;
/// The highest level tlog-tiles allows.
pub const MAX_LEVEL: u8 = 63;

/// Which kind of tile: hashes at a level, or the entries themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// Hash tiles at level 0..=63.
    Hashes(u8),
    /// Entry bundles (`tile/entries/...`).
    Entries,
}

impl Level {
    /// The level as stored (`-1` for entry bundles), so one table keys both.
    pub fn code(self) -> i64 {
        match self {
            Level::Hashes(l) => i64::from(l),
            Level::Entries => -1,
        }
    }

    pub fn from_code(code: i64) -> Option<Level> {
        match code {
            -1 => Some(Level::Entries),
            0..=63 => Some(Level::Hashes(code as u8)),
            _ => None,
        }
    }
}

/// One stored tile: its level and index (its width is how many hashes it holds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileKey {
    pub level: Level,
    pub index: u64,
}

/// A tile resource as requested over HTTP: a key and the width asked for (256 for a full tile).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRequest {
    pub key: TileKey,
    pub width: u64,
}

impl TileRequest {
    /// Parses the part of a tlog-tiles URL after `tile/`, strictly (one spelling per tile, so
    /// caches hold one copy): `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`.
    pub fn parse(path: &str) -> Result<TileRequest, TlogError> {
        let bad = || TlogError::BadTilePath(path.to_owned());
        let (level_part, rest) = path.split_once('/').ok_or_else(bad)?;
        let level = if level_part == "entries" {
            Level::Entries
        } else {
            let l = strict_decimal(level_part).ok_or_else(bad)?;
            if l > u64::from(MAX_LEVEL) {
                return Err(bad());
            }
            Level::Hashes(l as u8)
        };
        let (index_part, width) = match rest.split_once(".p/") {
            Some((index, w)) => {
                let w = strict_decimal(w).ok_or_else(bad)?;
                if !(1..TILE_WIDTH).contains(&w) {
                    return Err(bad());
                }
                (index, w)
            }
            None => (rest, TILE_WIDTH),
        };
        let elements: Vec<&str> = index_part.split('/').collect();
        let mut index: u64 = 0;
        for (i, element) in elements.iter().enumerate() {
            let last = i + 1 == elements.len();
            let digits = if last {
                *element
            } else {
                element.strip_prefix('x').ok_or_else(bad)?
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let value: u64 = digits.parse().map_err(|_| bad())?;
            index = index
                .checked_mul(1000)
                .and_then(|i| i.checked_add(value))
                .ok_or_else(bad)?;
        }
        let request = TileRequest {
            key: TileKey { level, index },
            width,
        };
        // Exactly one spelling: leading "x000/" elements would name the same tile twice.
        if request.path() != path {
            return Err(bad());
        }
        Ok(request)
    }

    /// The path below `tile/`, as tlog-tiles spells it.
    pub fn path(&self) -> String {
        let level = match self.key.level {
            Level::Hashes(l) => l.to_string(),
            Level::Entries => "entries".to_owned(),
        };
        let mut groups = Vec::new();
        let mut n = self.key.index;
        loop {
            groups.push(n % 1000);
            n /= 1000;
            if n == 0 {
                break;
            }
        }
        let mut index = String::new();
        for (i, g) in groups.iter().rev().enumerate() {
            if i + 1 < groups.len() {
                index.push_str(&format!("x{g:03}/"));
            } else {
                index.push_str(&format!("{g:03}"));
            }
        }
        if self.width == TILE_WIDTH {
            format!("{level}/{index}")
        } else {
            format!("{level}/{index}.p/{}", self.width)
        }
    }

    /// Whether a tree of `size` leaves has this tile at this width (full tiles below the
    /// size, and the partial tile of exactly the width the size gives: tlog-tiles serves no
    /// other partial tile).
    pub fn exists_at(&self, size: u64) -> bool {
        let span = match self.key.level {
            Level::Entries => 1u128,
            Level::Hashes(l) => 1u128 << (8 * u32::from(l)),
        };
        // Hashes at this level that the tree holds.
        let count = u128::from(size) / span;
        let start = u128::from(self.key.index) * u128::from(TILE_WIDTH);
        if self.width == TILE_WIDTH {
            count >= start + u128::from(TILE_WIDTH)
        } else {
            count >= start && count - start == u128::from(self.width)
        }
    }
}

fn strict_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// The tiles at the right edge of a tree of `size` leaves that are partial (the entry bundle
/// and one tile per level), with the number of hashes each holds: what growing the tree
/// rewrites.
pub fn edge(size: u64) -> Vec<(TileKey, u64)> {
    let mut out = Vec::new();
    let width = size % TILE_WIDTH;
    if width > 0 {
        out.push((
            TileKey {
                level: Level::Entries,
                index: size / TILE_WIDTH,
            },
            width,
        ));
    }
    let mut hashes = size; // hashes at the current level
    let mut level = 0u8;
    while hashes > 0 {
        let width = hashes % TILE_WIDTH;
        if width > 0 {
            out.push((
                TileKey {
                    level: Level::Hashes(level),
                    index: hashes / TILE_WIDTH,
                },
                width,
            ));
        }
        hashes /= TILE_WIDTH;
        level += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip_in_the_spelling_of_the_spec() {
        for (path, level, index, width) in [
            ("0/000", Level::Hashes(0), 0, 256),
            ("1/x001/x234/067", Level::Hashes(1), 1_234_067, 256),
            ("0/x001/x234/067.p/8", Level::Hashes(0), 1_234_067, 8),
            ("entries/999", Level::Entries, 999, 256),
            ("entries/x001/000.p/255", Level::Entries, 1000, 255),
        ] {
            let r = TileRequest::parse(path).unwrap();
            assert_eq!(
                (r.key.level, r.key.index, r.width),
                (level, index, width),
                "{path}"
            );
            assert_eq!(r.path(), path);
        }
    }

    #[test]
    fn every_other_spelling_is_refused() {
        for path in [
            "",
            "0",
            "0/",
            "0/0",
            "0/0000",
            "0/x000/001",
            "0/001.p/0",
            "0/001.p/256",
            "0/001.p/08",
            "64/000",
            "01/000",
            "-1/000",
            "0/001/002",
            "0/x001",
            "x/000",
            "entries",
            "0/abc",
            "0/000.p/",
            "0/x1000/000",
        ] {
            assert!(TileRequest::parse(path).is_err(), "{path:?} was accepted");
        }
    }

    #[test]
    fn the_spec_example_of_70000_leaves() {
        // tlog-tiles: "a tree of size 70,000 will be represented by 273 full level 0 tiles, one
        // partial level 0 tile of width 112, one full level 1 tile, one partial level 1 tile of
        // width 17, and one partial level 2 tile of width 1."
        let edge70k = edge(70_000);
        assert!(edge70k.contains(&(
            TileKey {
                level: Level::Hashes(0),
                index: 273
            },
            112
        )));
        assert!(edge70k.contains(&(
            TileKey {
                level: Level::Hashes(1),
                index: 1
            },
            17
        )));
        assert!(edge70k.contains(&(
            TileKey {
                level: Level::Hashes(2),
                index: 0
            },
            1
        )));
        let tile = |level, index, width| TileRequest {
            key: TileKey { level, index },
            width,
        };
        assert!(tile(Level::Hashes(0), 272, 256).exists_at(70_000));
        assert!(!tile(Level::Hashes(0), 273, 256).exists_at(70_000));
        assert!(tile(Level::Hashes(0), 273, 112).exists_at(70_000));
        assert!(!tile(Level::Hashes(0), 273, 111).exists_at(70_000));
        assert!(tile(Level::Hashes(1), 0, 256).exists_at(70_000));
        assert!(tile(Level::Hashes(1), 1, 17).exists_at(70_000));
        assert!(tile(Level::Hashes(2), 0, 1).exists_at(70_000));
        assert!(!tile(Level::Hashes(3), 0, 1).exists_at(70_000));
        // "a tree of size 256 will be represented by a full level 0 tile and a partial level 1
        // tile of width 1."
        assert_eq!(
            edge(256),
            vec![(
                TileKey {
                    level: Level::Hashes(1),
                    index: 0
                },
                1
            )]
        );
    }
}
