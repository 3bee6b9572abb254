//! Checking proofs, as RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) specify:
//! what a witness, `citydb verify --proof` and an auditor's own tool do.

use crate::TlogError;
use crate::hash::{TreeHash, node_hash};

/// Checks that `leaf` (a leaf hash) is at `index` in the tree of `size` leaves whose root is
/// `root`.
pub fn verify_inclusion(
    leaf: &TreeHash,
    index: u64,
    size: u64,
    proof: &[TreeHash],
    root: &TreeHash,
) -> Result<(), TlogError> {
    if index >= size {
        return Err(TlogError::OutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(TlogError::ProofFailed("the inclusion proof is too long"));
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(TlogError::ProofFailed("the inclusion proof is too short"));
    }
    if &r != root {
        return Err(TlogError::ProofFailed(
            "the inclusion proof does not lead to the root",
        ));
    }
    Ok(())
}

/// Checks that the tree of `old` leaves with root `old_root` is a prefix of the tree of `new`
/// leaves with root `new_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &TreeHash,
    new_root: &TreeHash,
    proof: &[TreeHash],
) -> Result<(), TlogError> {
    if old > new {
        return Err(TlogError::OutOfRange {
            index: old,
            size: new,
        });
    }
    if old == new {
        if !proof.is_empty() {
            return Err(TlogError::ProofFailed(
                "a proof between equal sizes must be empty",
            ));
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(TlogError::ProofFailed("two different roots at one size"))
        };
    }
    if old == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(TlogError::ProofFailed(
                "a proof from the empty tree must be empty",
            ))
        };
    }
    if proof.is_empty() {
        return Err(TlogError::ProofFailed("the consistency proof is empty"));
    }
    let mut path: Vec<TreeHash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(TlogError::ProofFailed("the consistency proof is too long"));
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(TlogError::ProofFailed("the consistency proof is too short"));
    }
    if &fr != old_root || &sr != new_root {
        return Err(TlogError::ProofFailed(
            "the consistency proof does not lead to both roots",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Query;
    use crate::tree::tests::grown;

    #[test]
    fn every_consistency_proof_up_to_70_leaves_verifies_and_no_altered_one_does() {
        let tiles = grown(70);
        let root = |size| Query::Root { size }.answer(&tiles).unwrap()[0];
        for new in 1..=70u64 {
            for old in 1..=new {
                let proof = Query::Consistency { old, new }.answer(&tiles).unwrap();
                verify_consistency(old, new, &root(old), &root(new), &proof)
                    .unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
                if old < new {
                    assert!(
                        verify_consistency(old, new, &root(old - 1), &root(new), &proof).is_err()
                    );
                    for i in 0..proof.len() {
                        let mut bad = proof.clone();
                        bad[i][7] ^= 1;
                        assert!(
                            verify_consistency(old, new, &root(old), &root(new), &bad).is_err()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_inclusion_proof_up_to_70_leaves_verifies_and_no_altered_one_does() {
        use crate::hash::leaf_hash;
        use crate::tree::tests::entry;
        let tiles = grown(70);
        for size in 1..=70u64 {
            let root = Query::Root { size }.answer(&tiles).unwrap()[0];
            for index in 0..size {
                let proof = Query::Inclusion { index, size }.answer(&tiles).unwrap();
                let leaf = leaf_hash(&entry(index));
                verify_inclusion(&leaf, index, size, &proof, &root).unwrap();
                if size > 1 {
                    assert!(
                        verify_inclusion(&leaf, (index + 1) % size, size, &proof, &root).is_err()
                    );
                }
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i][0] ^= 0x80;
                    assert!(verify_inclusion(&leaf, index, size, &bad, &root).is_err());
                }
            }
        }
    }
}
