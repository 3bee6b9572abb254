//! The tree's storage beside the PostgreSQL log: the `TileStore` contract, and two nodes
//! keeping one tree.

use super::*;
use citydb_postgres::PgTiles;
use citydb_tlog::Tlog;
use citydb_tlog::contract::{TestLeaves, check};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_tree_keeps_the_contract() {
    if TestCluster::shared_or_skip("the_postgres_tree_keeps_the_contract").is_none() {
        return;
    }
    let url = fresh_db().await;
    check(Arc::new(
        PgTiles::connect(&url, &PostgresConfig::default())
            .await
            .unwrap(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_grow_one_tree_once() {
    if TestCluster::shared_or_skip("two_nodes_grow_one_tree_once").is_none() {
        return;
    }
    let url = fresh_db().await;
    let a = Tlog::new(
        Arc::new(
            PgTiles::connect(&url, &PostgresConfig::default())
                .await
                .unwrap(),
        ),
        "t/log",
    );
    let b = Tlog::new(
        Arc::new(
            PgTiles::connect(&url, &PostgresConfig::default())
                .await
                .unwrap(),
        ),
        "t/log",
    );
    let leaves = TestLeaves::first(5000);
    // Both catch up at once: each step is grown by one of them (the other's grow is refused
    // and it carries on from the size the winner left), and both end at the whole tree.
    let (ra, rb) = tokio::join!(a.catch_up(&leaves), b.catch_up(&leaves));
    assert_eq!((ra.unwrap(), rb.unwrap()), (5000, 5000));
    assert_eq!(b.catch_up(&leaves).await.unwrap(), 5000);
    assert_eq!(a.store().size().await.unwrap(), 5000);
    let memory = Tlog::new(Arc::new(citydb_tlog::memory::MemoryTiles::new()), "t/log");
    memory.catch_up(&leaves).await.unwrap();
    assert_eq!(
        a.root(5000).await.unwrap(),
        memory.root(5000).await.unwrap()
    );
}
