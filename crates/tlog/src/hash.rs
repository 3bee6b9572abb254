//! RFC 6962 §2.1 hashing with SHA-256, as C2SP tlog-tiles requires: a leaf is hashed with a
//! 0x00 prefix and an interior node with 0x01, so no leaf can pose as a node.

use sha2::{Digest, Sha256};

/// A SHA-256 Merkle tree hash.
pub type TreeHash = [u8; 32];

/// The root of the empty tree: SHA-256 of nothing (RFC 6962 §2.1).
pub fn empty_root() -> TreeHash {
    Sha256::digest([]).into()
}

/// The hash of leaf data `entry` (for citydb, the 32-byte blake3 event hash): SHA-256(0x00 ‖ entry).
pub fn leaf_hash(entry: &[u8]) -> TreeHash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &TreeHash, right: &TreeHash) -> TreeHash {
    let mut buf = [0u8; 65];
    buf[0] = 1;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    Sha256::digest(buf).into()
}

/// The root of a complete subtree whose `2^k` bottom hashes are given in order.
pub(crate) fn fold(hashes: &[TreeHash]) -> TreeHash {
    debug_assert!(hashes.len().is_power_of_two());
    let mut level: Vec<TreeHash> = hashes.to_vec();
    while level.len() > 1 {
        level = level.chunks(2).map(|p| node_hash(&p[0], &p[1])).collect();
    }
    level[0]
}

/// The largest power of two strictly below `n` (`n` ≥ 2): where RFC 6962 splits a range.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        for (n, k) in [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
        ] {
            assert_eq!(split_point(n), k, "n = {n}");
        }
    }

    #[test]
    fn the_empty_root_is_sha256_of_nothing() {
        let hex: String = empty_root().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
