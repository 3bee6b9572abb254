//! The tree's storage beside the embedded log: the `TileStore` contract, and a tree that
//! survives closing and reopening the file.

use std::sync::Arc;

use citydb_sqlite::{SqliteConfig, SqliteLog, SqliteTiles};
use citydb_tlog::contract::{TestLeaves, check};
use citydb_tlog::{TileStore, Tlog};

#[tokio::test]
async fn the_embedded_tree_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    // The tables live in the log's own file.
    let _log = SqliteLog::open(&path, SqliteConfig::default()).unwrap();
    check(Arc::new(
        SqliteTiles::open(&path, &SqliteConfig::default()).unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn the_tree_and_its_checkpoints_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let _log = SqliteLog::open(&path, SqliteConfig::default()).unwrap();
    let leaves = TestLeaves::first(1000);
    let key =
        citydb_tlog::SignerKey::from_seed("t/log", citydb_tlog::KeyKind::Log, [5; 32]).unwrap();
    let (root, note) = {
        let tlog = Tlog::new(
            Arc::new(SqliteTiles::open(&path, &SqliteConfig::default()).unwrap()),
            "t/log",
        );
        let note = tlog.sign(&key, &leaves).await.unwrap();
        (tlog.root(1000).await.unwrap(), note)
    };
    let store = Arc::new(SqliteTiles::open(&path, &SqliteConfig::default()).unwrap());
    assert_eq!(store.size().await.unwrap(), 1000);
    assert_eq!(store.latest_checkpoint().await.unwrap(), Some(note));
    let tlog = Tlog::new(store, "t/log");
    assert_eq!(tlog.root(1000).await.unwrap(), root);
}
