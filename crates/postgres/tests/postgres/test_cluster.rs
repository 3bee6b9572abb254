//! The test kit itself.

use super::*;

/// A private cluster (not the shared one) serves databases, and dropping it stops the server
/// and removes its directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_test_cluster_stops_when_dropped() {
    if TestCluster::shared_or_skip("a_private_test_cluster_stops_when_dropped").is_none() {
        return;
    }
    let private = tokio::task::spawn_blocking(TestCluster::start)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(private.port(), cluster().port());
    let url = private.create_database().await.unwrap();
    let log = open(&url).await;
    write_history(&log, 2).await;
    assert_intact(&log, None).await;
    drop(log);
    let data = private.data_dir().to_path_buf();
    let port = private.port();
    tokio::task::spawn_blocking(move || drop(private))
        .await
        .unwrap();
    assert!(!data.exists(), "{} was left behind", data.display());
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server still accepts connections"
    );
}
