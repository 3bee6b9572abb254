//! Live head across processes: NOTIFY, reconnection of the listener, closing on drop.

use super::*;

/// Another node learns of an append through NOTIFY alone (its poll is set to an hour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_other_nodes() {
    if TestCluster::shared_or_skip("notify_wakes_other_nodes").is_none() {
        return;
    }
    let url = fresh_db().await;
    let no_poll = PostgresConfig {
        head_poll_interval: Duration::from_secs(3600),
        ..PostgresConfig::default()
    };
    let writer = PostgresLog::connect(&url, no_poll.clone()).await.unwrap();
    let reader = PostgresLog::connect(&url, no_poll).await.unwrap();
    let mut head = reader.watch_head();
    assert_eq!(*head.borrow_and_update(), None);
    for i in 0..3u64 {
        let out = writer
            .append(vec![StreamAppend::new(
                stream("citizen"),
                ExpectedVersion::Any,
                vec![event(i)],
            )])
            .await
            .unwrap();
        wait_for_head(
            &mut head,
            out.last_position.unwrap(),
            Duration::from_secs(5),
        )
        .await;
    }
}

/// The listener's connection is killed; appends made meanwhile (whose notifications are lost)
/// still reach the other node's head, through the reconnection and the poll, and notifications
/// flow again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_reconnects_after_losing_its_connection() {
    if TestCluster::shared_or_skip("the_listener_reconnects_after_losing_its_connection").is_none()
    {
        return;
    }
    let url = fresh_db().await;
    let config = PostgresConfig {
        head_poll_interval: Duration::from_millis(200),
        ..PostgresConfig::default()
    };
    let writer = PostgresLog::connect(&url, config.clone()).await.unwrap();
    let reader = PostgresLog::connect(&url, config).await.unwrap();
    let mut head = reader.watch_head();
    let append = |i: u64| {
        writer.append(vec![StreamAppend::new(
            stream("citizen"),
            ExpectedVersion::Any,
            vec![event(i)],
        )])
    };
    append(0).await.unwrap();
    wait_for_head(&mut head, 0, Duration::from_secs(5)).await;

    let db = testkit::connect(&url).await.unwrap();
    let killed: i64 = db
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'citydb-listener' AND datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(killed, 2, "both nodes' listeners");
    let out = append(1).await.unwrap();
    wait_for_head(
        &mut head,
        out.last_position.unwrap(),
        Duration::from_secs(5),
    )
    .await;

    // Reconnected and listening again.
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n: i64 = db
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE application_name = 'citydb-listener' AND datname = current_database()",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if n == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the listeners did not reconnect");
    let out = append(2).await.unwrap();
    wait_for_head(
        &mut head,
        out.last_position.unwrap(),
        Duration::from_secs(5),
    )
    .await;
}

/// Dropping the last handle stops the writer and the listener and closes every connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_log_closes_its_connections() {
    if TestCluster::shared_or_skip("dropping_the_log_closes_its_connections").is_none() {
        return;
    }
    let url = fresh_db().await;
    let db = testkit::connect(&url).await.unwrap();
    let count = || async {
        let n: i64 = db
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        n
    };
    let log = open(&url).await;
    let clone = log.clone();
    write_history(&clone, 4).await;
    assert_intact(&log, None).await;
    assert!(
        count().await >= 3,
        "reader, writer and listener connections"
    );
    drop(log);
    drop(clone);
    tokio::time::timeout(Duration::from_secs(5), async {
        while count().await > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("connections were left open");
}
