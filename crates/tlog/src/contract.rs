//! The behaviour every [`TileStore`] must have, as one function a store's tests call
//! (`MemoryTiles` here, SQLite and PostgreSQL in their crates).

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::TlogError;
use crate::note::{KeyKind, SignerKey};
use crate::store::{Leaves, TileStore, Tlog};
use crate::tree::Query;

/// Leaves in memory: e_i = SHA-256(decimal i), the test entries of docs/audit-format.md.
pub struct TestLeaves(pub Vec<[u8; 32]>);

impl TestLeaves {
    pub fn first(n: u64) -> TestLeaves {
        TestLeaves(
            (0..n)
                .map(|i| Sha256::digest(i.to_string().as_bytes()).into())
                .collect(),
        )
    }
}

#[async_trait]
impl Leaves for TestLeaves {
    async fn count(&self) -> Result<u64, TlogError> {
        Ok(self.0.len() as u64)
    }

    async fn read(&self, from: u64, max: usize) -> Result<Vec<[u8; 32]>, TlogError> {
        let from = (from as usize).min(self.0.len());
        Ok(self.0[from..(from + max).min(self.0.len())].to_vec())
    }
}

/// Runs the contract against an empty store (panics on a breach, naming it).
pub async fn check(store: Arc<dyn TileStore>) {
    let tlog = Tlog::new(store.clone(), "citydb.test/log");
    assert_eq!(
        store.size().await.unwrap(),
        0,
        "a new store holds an empty tree"
    );
    assert!(store.latest_checkpoint().await.unwrap().is_none());

    // Grown in steps, the stored tree answers like the definition (checked in tree.rs).
    let leaves = TestLeaves::first(70_001);
    let partial = TestLeaves(leaves.0[..1000].to_vec());
    assert_eq!(tlog.catch_up(&partial).await.unwrap(), 1000);
    let root_1000 = tlog.root(1000).await.unwrap();
    assert_eq!(tlog.catch_up(&leaves).await.unwrap(), 70_001);
    assert_eq!(
        tlog.root(1000).await.unwrap(),
        root_1000,
        "growing changed an older root"
    );
    let proof = tlog
        .answer(Query::Inclusion {
            index: 999,
            size: 70_001,
        })
        .await
        .unwrap();
    let root = tlog.root(70_001).await.unwrap();
    crate::proof::verify_inclusion(
        &crate::hash::leaf_hash(&leaves.0[999]),
        999,
        70_001,
        &proof,
        &root,
    )
    .unwrap();
    assert_eq!(tlog.entry(70_000).await.unwrap(), leaves.0[70_000]);

    // A grow from a stale size is refused and writes nothing.
    let err = store.grow(5, 6, vec![]).await.unwrap_err();
    assert!(matches!(err, TlogError::Conflict { .. }), "{err}");
    assert_eq!(store.size().await.unwrap(), 70_001);

    // Checkpoints: the latest by size; the same size saved again replaces the note.
    let key = SignerKey::from_seed("citydb.test/log", KeyKind::Log, [1; 32]).unwrap();
    let note = tlog.sign(&key, &leaves).await.unwrap();
    assert_eq!(
        store.latest_checkpoint().await.unwrap().as_deref(),
        Some(note.as_str())
    );
    assert_eq!(
        tlog.sign(&key, &leaves).await.unwrap(),
        note,
        "no new checkpoint without growth"
    );
    store
        .save_checkpoint(70_001, &note)
        .await
        .unwrap();

    // A log rewritten under its tree is detected, and nothing is signed over it.
    let mut rewritten = TestLeaves::first(70_010);
    rewritten.0[70_000][0] ^= 1;
    let err = tlog.sign(&key, &rewritten).await.unwrap_err();
    assert!(
        matches!(err, TlogError::Diverged { position: 70_000 }),
        "{err}"
    );
    assert_eq!(
        store.latest_checkpoint().await.unwrap().as_deref(),
        Some(note.as_str())
    );

    // A latest checkpoint the tree does not agree with (another root at its size) is never
    // signed over, however the tree grows.
    let forged = crate::checkpoint::Checkpoint {
        origin: "citydb.test/log".into(),
        size: 70_001,
        root: [9; 32],
    };
    let text = forged.text();
    let forged = crate::note::Note {
        signatures: vec![key.sign(&text)],
        text,
    }
    .to_string();
    store.save_checkpoint(70_001, &forged).await.unwrap();
    let err = tlog
        .sign(&key, &TestLeaves::first(70_010))
        .await
        .unwrap_err();
    assert!(matches!(err, TlogError::Inconsistent(_)), "{err}");
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn the_memory_store_keeps_the_contract() {
        super::check(std::sync::Arc::new(crate::memory::MemoryTiles::new())).await;
    }
}
