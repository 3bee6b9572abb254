//! `SqliteBulk`, the embedded store opened for a bulk load: held alone, refusing rows that do not
//! continue the chain, and durable at a commit even through a power cut.

use std::sync::Arc;

use citydb_log::bulk::BulkSink;
use citydb_log::conformance::event;
use citydb_log::memory::MemoryLog;
use citydb_log::{
    CopyRefusal, Direction, EventLog, ExpectedVersion, FaultKind, LogError, RecordedEvent,
    StreamAppend, StreamId,
};
use citydb_sqlite::testkit::PowerCutVfs;
use citydb_sqlite::{SqliteBulk, SqliteConfig, SqliteLog, SqliteTiles};
use citydb_tlog::contract::TestLeaves;
use citydb_tlog::memory::MemoryTiles;
use citydb_tlog::{TileStore, Tlog};
use uuid::Uuid;

/// `calls` batches of chained rows, `per_call` events each, planned by a log of their own (the
/// rows a bulk import would hand over).
async fn planned(calls: usize, per_call: u64) -> Vec<Vec<RecordedEvent>> {
    let log = MemoryLog::new();
    let stream = StreamId::new("citizen", Uuid::now_v7()).unwrap();
    let mut out = Vec::new();
    for call in 0..calls as u64 {
        let outcome = log
            .append(vec![StreamAppend::new(
                stream.clone(),
                ExpectedVersion::Any,
                (0..per_call).map(|i| event(call * per_call + i)).collect(),
            )])
            .await
            .unwrap();
        let first = outcome.first_position.unwrap();
        out.push(log.read_all(first, per_call as usize).await.unwrap());
    }
    out
}

fn unavailable(e: &LogError) -> bool {
    matches!(e, LogError::Storage(f) if f.kind == FaultKind::Unavailable)
}

#[tokio::test]
async fn the_store_is_held_alone_until_the_load_is_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let mut sink = SqliteBulk::open(&path, &SqliteConfig::default()).unwrap();
    for rows in planned(2, 3).await {
        sink.write(rows).await.unwrap();
    }
    // Another loader, and a server's log, are refused while the load holds the file.
    let second = SqliteBulk::open(&path, &SqliteConfig::default()).map(drop);
    assert!(second.as_ref().is_err_and(unavailable), "{second:?}");
    let config = SqliteConfig {
        read_connections: 1,
        ..SqliteConfig::default()
    };
    match SqliteLog::open(&path, config.clone()) {
        Err(e) => assert!(unavailable(&e), "{e:?}"),
        Ok(log) => {
            let append = log
                .append(vec![StreamAppend::new(
                    StreamId::new("citizen", Uuid::now_v7()).unwrap(),
                    ExpectedVersion::NoStream,
                    vec![event(99)],
                )])
                .await;
            assert!(append.as_ref().is_err_and(unavailable), "{append:?}");
        }
    }
    Box::new(sink).finish().await.unwrap();
    // Finished: an ordinary log, holding every row, verifying, taking appends.
    let log = SqliteLog::open(&path, config).unwrap();
    assert_eq!(log.head().await.unwrap().unwrap().position, 5);
    assert!(log.verify_log(None).await.unwrap().is_intact());
    log.append(vec![StreamAppend::new(
        StreamId::new("citizen", Uuid::now_v7()).unwrap(),
        ExpectedVersion::NoStream,
        vec![event(100)],
    )])
    .await
    .unwrap();
}

#[tokio::test]
async fn a_row_that_does_not_continue_the_chain_fails_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let calls = planned(3, 2).await;
    let mut sink = SqliteBulk::open(&path, &SqliteConfig::default()).unwrap();
    sink.write(calls[0].clone()).await.unwrap();
    sink.commit().await.unwrap();
    sink.write(calls[1].clone()).await.unwrap();
    // The third call skips a position: refused, and with it everything not yet committed.
    let mut gap = calls[2].clone();
    for row in &mut gap {
        row.position += 1;
    }
    sink.write(gap).await.unwrap();
    let failed = sink.commit().await.unwrap_err();
    assert!(
        matches!(
            failed,
            LogError::CopyRefused {
                position: 5,
                reason: CopyRefusal::Chain(_)
            }
        ),
        "{failed:?}"
    );
    // Every later call answers the failure; nothing more is written.
    let again = sink.write(calls[2].clone()).await.and(sink.commit().await);
    assert!(again.is_err(), "{again:?}");
    drop(sink);
    let log = SqliteLog::open(&path, SqliteConfig::default()).unwrap();
    assert_eq!(log.head().await.unwrap().unwrap().position, 1);
    assert!(log.verify_log(None).await.unwrap().is_intact());
}

/// Stored rows are handed over in log order, once stored; none after a failure, and the
/// channel closes then, so the consumer cannot take a refused row for a stored one.
#[tokio::test]
async fn stored_rows_are_handed_over_in_order_and_none_after_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let calls = planned(3, 3).await;
    let mut sink = SqliteBulk::open(&path, &SqliteConfig::default()).unwrap();
    let (to, handed_over) = std::sync::mpsc::sync_channel(4);
    assert!(
        sink.hand_over_rows(to).await.unwrap(),
        "SQLite hands rows over"
    );
    sink.write(calls[0].clone()).await.unwrap();
    sink.write(calls[1].clone()).await.unwrap();
    sink.commit().await.unwrap();
    assert_eq!(handed_over.recv().unwrap(), calls[0]);
    assert_eq!(handed_over.recv().unwrap(), calls[1]);
    // The third call skips a position: refused, not handed over, and the handing over ends.
    let mut gap = calls[2].clone();
    for row in &mut gap {
        row.position += 1;
    }
    sink.write(gap).await.unwrap();
    assert!(sink.commit().await.is_err());
    assert!(
        handed_over.recv().is_err(),
        "the channel closed without the refused rows"
    );
}

#[tokio::test]
async fn a_commit_survives_a_power_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let vfs = Arc::new(PowerCutVfs::register().unwrap());
    let config = SqliteConfig {
        vfs: Some(vfs.name().to_owned()),
        ..SqliteConfig::default()
    };
    let calls = planned(3, 50).await;
    let mut sink = SqliteBulk::open(&path, &config).unwrap();
    sink.write(calls[0].clone()).await.unwrap();
    sink.write(calls[1].clone()).await.unwrap();
    sink.commit().await.unwrap();
    // Written, not committed: may be lost, never torn into the committed ones.
    sink.write(calls[2].clone()).await.unwrap();
    let report = vfs.cut_power(None);
    drop(sink);
    println!("{report:?}");
    let log = SqliteLog::open(&path, SqliteConfig::default()).unwrap();
    let head = log.head().await.unwrap().unwrap();
    assert_eq!(head.position, 99, "the committed calls, and only them");
    assert!(log.verify_log(None).await.unwrap().is_intact());
}

/// The load runs on a rollback journal and gives the file back in WAL mode: no page of a load
/// goes through the WAL (each would be written twice), and the servers that open the file
/// next read beside its writer as before.
#[tokio::test]
async fn a_load_writes_its_pages_once_and_leaves_the_file_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let wal = dir.path().join("log.db-wal");
    let wal_len = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let calls = planned(3, 200).await;
    let mut sink = SqliteBulk::open(&path, &SqliteConfig::default()).unwrap();
    for call in &calls {
        sink.write(call.clone()).await.unwrap();
        sink.commit().await.unwrap();
        assert_eq!(wal_len(), 0, "a committed load left pages in the WAL");
    }
    Box::new(sink).finish().await.unwrap();
    // Bytes 18 and 19 of the header: 2 and 2 for WAL, 1 and 1 for a rollback journal.
    let header = std::fs::read(&path).unwrap();
    assert_eq!(&header[18..20], &[2, 2], "the file is not back in WAL mode");
    let log = SqliteLog::open(&path, SqliteConfig::default()).unwrap();
    assert_eq!(log.head().await.unwrap().unwrap().position, 599);
    assert!(log.verify_log(None).await.unwrap().is_intact());
}

/// A load into an empty log hands each commit's pages back to the kernel: at the whole city its
/// 21 GB would otherwise push the projections built beside it out of the page cache
/// (docs/benchmarks.md, "A bulk load's pages out of the page cache").
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_load_into_an_empty_log_leaves_its_committed_pages_out_of_the_page_cache() {
    use citydb_sqlite::testkit::resident_pages;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let calls = planned(4, 1_500).await;
    let mut sink = SqliteBulk::open(&path, &SqliteConfig::default()).unwrap();
    for call in &calls {
        sink.write(call.clone()).await.unwrap();
        sink.commit().await.unwrap();
        let Some((cached, pages)) = resident_pages(&path) else {
            eprintln!("skipped: the temporary directory keeps its pages (tmpfs)");
            return;
        };
        assert!(pages > 100, "only {pages} pages written");
        assert!(
            cached < pages / 10,
            "{cached} of {pages} pages still cached"
        );
    }
    Box::new(sink).finish().await.unwrap();
    let log = SqliteLog::open(&path, SqliteConfig::default()).unwrap();
    assert_eq!(log.head().await.unwrap().unwrap().position, 5_999);
    assert!(log.verify_log(None).await.unwrap().is_intact());
}

/// A power cut at any write of a load (pages torn at random or not) leaves what the last
/// acknowledged commit held, or what the commit under way held, and a log that verifies: the
/// rollback journal is rolled back by the next open, which then builds the deferred indexes.
#[tokio::test]
async fn a_power_cut_at_any_write_of_a_load_leaves_a_committed_prefix() {
    let calls = planned(4, 60).await;
    let mut cases = 0;
    for n in 1u64.. {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.db");
        let vfs = PowerCutVfs::register().unwrap();
        let config = SqliteConfig {
            vfs: Some(vfs.name().to_owned()),
            ..SqliteConfig::default()
        };
        vfs.cut_power_at_write(n, (n % 2 == 0).then_some(n));
        // The head of the last acknowledged commit, and of the one under way at the cut.
        let mut acknowledged: Option<u64> = None;
        let mut under_way: Option<u64> = None;
        if let Ok(mut sink) = SqliteBulk::open(&path, &config) {
            for call in &calls {
                let head = call.last().unwrap().position;
                under_way = Some(head);
                if sink.write(call.clone()).await.is_err() || sink.commit().await.is_err() {
                    break;
                }
                acknowledged = Some(head);
            }
            if !vfs.is_cut() {
                let _ = Box::new(sink).finish().await;
            }
        }
        if !vfs.is_cut() {
            // Past the load's last write: every write of it was a case.
            assert_eq!(acknowledged, Some(239));
            break;
        }
        cases += 1;
        let log = SqliteLog::open(&path, SqliteConfig::default()).unwrap();
        let head = log.head().await.unwrap().map(|h| h.position);
        assert!(
            head == acknowledged || head == under_way,
            "cut at write {n}: head {head:?}, acknowledged {acknowledged:?}, under way {under_way:?}"
        );
        assert!(
            log.verify_log(None).await.unwrap().is_intact(),
            "cut at write {n}"
        );
        // The tree grew in the same transactions: it holds exactly the rows that survived.
        assert_eq!(
            tree_size(&path).await,
            head.map_or(0, |h| h + 1),
            "cut at write {n}"
        );
    }
    assert!(cases > 20, "only {cases} writes in a load of 240 events");
}

/// `n` streams of two events each, planned by a log of their own (returned, to plan more rows
/// after them) and bulk-loaded into a new log at `path`.
async fn loaded_streams(path: &std::path::Path, n: usize) -> (MemoryLog, Vec<StreamId>) {
    let log = MemoryLog::new();
    let streams: Vec<StreamId> = (0..n)
        .map(|_| StreamId::new("citizen", Uuid::now_v7()).unwrap())
        .collect();
    for (i, stream) in streams.iter().enumerate() {
        log.append(vec![StreamAppend::new(
            stream.clone(),
            ExpectedVersion::NoStream,
            vec![event(i as u64), event(1000 + i as u64)],
        )])
        .await
        .unwrap();
    }
    let mut sink = SqliteBulk::open(path, &SqliteConfig::default()).unwrap();
    sink.write(log.read_all(0, 2 * n).await.unwrap())
        .await
        .unwrap();
    Box::new(sink).finish().await.unwrap();
    (log, streams)
}

#[tokio::test]
async fn a_reopened_store_lists_every_stream_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let (_, streams) = loaded_streams(&path, 200).await;

    let mut sink = SqliteBulk::open(&path, &SqliteConfig::default()).unwrap();
    let filter = sink
        .held_streams()
        .await
        .unwrap()
        .expect("SQLite lists its streams");
    assert!(streams.iter().all(|s| filter.may_hold(s.as_str())));
    let strangers = (0..1000)
        .filter(|_| filter.may_hold(StreamId::new("citizen", Uuid::now_v7()).unwrap().as_str()))
        .count();
    assert!(
        strangers < 100,
        "{strangers} of 1,000 new streams taken for held ones"
    );
}

/// The indexes of `events` in the file, read without opening it as a log (which builds them).
fn event_indexes(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events' ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn an_interrupted_load_into_an_empty_log_gets_its_indexes_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let calls = planned(3, 4).await;
    let mut sink = SqliteBulk::open(&path, &SqliteConfig::default()).unwrap();
    sink.write(calls[0].clone()).await.unwrap();
    sink.write(calls[1].clone()).await.unwrap();
    sink.commit().await.unwrap();
    sink.write(calls[2].clone()).await.unwrap();
    // Interrupted: committed rows, and (deferred to the end that never came) no unique indexes.
    drop(sink);
    assert_eq!(event_indexes(&path), Vec::<String>::new());

    let log = SqliteLog::open(&path, SqliteConfig::default()).unwrap();
    drop(log);
    assert_eq!(
        event_indexes(&path),
        ["events_by_event_id", "events_by_stream"]
    );
    // Resuming: a bulk load into the now non-empty log keeps them, and the store is whole.
    let mut sink = SqliteBulk::open(&path, &SqliteConfig::default()).unwrap();
    sink.write(calls[2].clone()).await.unwrap();
    Box::new(sink).finish().await.unwrap();
    assert_eq!(
        event_indexes(&path),
        ["events_by_event_id", "events_by_stream"]
    );
    let log = SqliteLog::open(&path, SqliteConfig::default()).unwrap();
    assert_eq!(log.head().await.unwrap().unwrap().position, 11);
    assert!(log.verify_log(None).await.unwrap().is_intact());
    let stream = calls[0][0].stream_id.clone();
    assert_eq!(
        log.read_stream(&stream, 0, Direction::Forward, 100)
            .await
            .unwrap()
            .len(),
        12
    );
    // The rebuilt stream index refuses a second version 0.
    let again = log
        .append(vec![StreamAppend::new(
            stream,
            ExpectedVersion::NoStream,
            vec![event(500)],
        )])
        .await;
    assert!(again.is_err(), "{again:?}");
}

#[tokio::test]
async fn a_duplicated_event_id_fails_the_deferred_index_build_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let mut calls = planned(2, 2).await;
    // A bug upstream: the same event id twice (the loader checks links, not ids).
    calls[1][1].event_id = calls[0][0].event_id;
    let mut sink = SqliteBulk::open(&path, &SqliteConfig::default()).unwrap();
    for rows in calls {
        sink.write(rows).await.unwrap();
    }
    let finished = Box::new(sink).finish().await;
    assert!(
        matches!(finished, Err(LogError::Corrupted { .. })),
        "{finished:?}"
    );
    // Never silently: the file refuses to open as a log until somebody looks at it.
    let opened = SqliteLog::open(&path, SqliteConfig::default()).map(drop);
    assert!(
        matches!(opened, Err(LogError::Corrupted { .. })),
        "{opened:?}"
    );
}

/// The size of the Merkle tree stored in the file (its connections closed again).
async fn tree_size(path: &std::path::Path) -> u64 {
    let tree = SqliteTiles::open(path, &SqliteConfig::default()).unwrap();
    tree.size().await.unwrap()
}

/// The hashes of `calls`' rows: the leaves of the log's Merkle tree.
fn leaves(calls: &[Vec<RecordedEvent>]) -> TestLeaves {
    TestLeaves(calls.iter().flatten().map(|r| r.hash.0).collect())
}

/// Roots of the stored tree at sizes around every tile edge up to `size`, against the roots of
/// a tree grown in memory from the same leaves (each root reads different tiles).
async fn assert_same_tree(path: &std::path::Path, leaves: &TestLeaves) {
    let size = leaves.0.len() as u64;
    let stored = Tlog::new(
        Arc::new(SqliteTiles::open(path, &SqliteConfig::default()).unwrap()),
        "",
    );
    let reference = Tlog::new(Arc::new(MemoryTiles::new()), "");
    reference.catch_up(leaves).await.unwrap();
    for n in [1, 2, 255, 256, 257, 300, 511, 512, 513, 600, size - 1, size] {
        assert_eq!(
            stored.root(n).await.unwrap(),
            reference.root(n).await.unwrap(),
            "root of the first {n} leaves"
        );
    }
}

/// The loader grows the Merkle tree with the rows it stores, in their transactions: after the
/// load the tree already holds every row (nothing to catch up from the file), with the tiles a
/// tree grown leaf by leaf has, and a resumed load goes on growing it.
#[tokio::test]
async fn a_load_grows_the_merkle_tree_in_the_transactions_of_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let calls = planned(3, 300).await;
    let mut sink = SqliteBulk::open(&path, &SqliteConfig::default()).unwrap();
    sink.write(calls[0].clone()).await.unwrap();
    sink.commit().await.unwrap();
    sink.write(calls[1].clone()).await.unwrap();
    Box::new(sink).finish().await.unwrap();
    assert_eq!(tree_size(&path).await, 600);
    assert_same_tree(&path, &leaves(&calls[..2])).await;

    // Into the now non-empty log, whose tree is in step: grown on, in commits small enough
    // that most leave the upper levels' edge tiles as they were.
    let mut sink = SqliteBulk::open(&path, &SqliteConfig::default()).unwrap();
    for rows in calls[2].chunks(20) {
        sink.write(rows.to_vec()).await.unwrap();
        sink.commit().await.unwrap();
    }
    Box::new(sink).finish().await.unwrap();
    assert_eq!(tree_size(&path).await, 900);
    assert_same_tree(&path, &leaves(&calls)).await;
}

/// A tree that is not the log's at open (behind it here: the log was written without one) is
/// left alone by the load, for the catch-up after it, which then grows it as usual.
#[tokio::test]
async fn a_tree_behind_the_log_is_left_to_the_catch_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let calls = planned(2, 300).await;
    {
        let log = SqliteLog::open(&path, SqliteConfig::default()).unwrap();
        log.copy_in(calls[0].clone()).await.unwrap();
    }
    let mut sink = SqliteBulk::open(&path, &SqliteConfig::default()).unwrap();
    sink.write(calls[1].clone()).await.unwrap();
    Box::new(sink).finish().await.unwrap();
    let tree = Arc::new(SqliteTiles::open(&path, &SqliteConfig::default()).unwrap());
    assert_eq!(tree.size().await.unwrap(), 0);
    let all = leaves(&calls);
    Tlog::new(tree.clone(), "").catch_up(&all).await.unwrap();
    assert_same_tree(&path, &all).await;
}

/// Into a log that held rows at open, a read of a stream it held is answered while the rows of
/// the load are still being written (the loader answers between slices of the write at hand,
/// not after the queue): with the same events as before the load, every time, and the load's
/// rows all stored in the end.
#[tokio::test]
async fn a_held_stream_is_read_while_the_load_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let (log, held) = loaded_streams(&path, 50).await;

    // The load: 20 calls of 1,500 rows each, of streams the store did not hold.
    let mut calls = Vec::new();
    for call in 0..20u64 {
        let outcome = log
            .append(
                (0..500u64)
                    .map(|i| {
                        StreamAppend::new(
                            StreamId::new("parcel", Uuid::now_v7()).unwrap(),
                            ExpectedVersion::NoStream,
                            (0..3).map(|j| event(call * 10_000 + i * 3 + j)).collect(),
                        )
                    })
                    .collect(),
            )
            .await
            .unwrap();
        let first = outcome.first_position.unwrap();
        calls.push(log.read_all(first, 1500).await.unwrap());
    }
    let mut sink = SqliteBulk::open(&path, &SqliteConfig::default()).unwrap();
    for (n, call) in calls.iter().enumerate() {
        sink.write(call.clone()).await.unwrap();
        let stream = &held[n % held.len()];
        let read = sink.read_stream(stream).await.unwrap();
        let expected = log.read_stream_to_end(stream, 0).await.unwrap();
        assert_eq!(read.len(), 2, "{stream} after call {n}");
        assert_eq!(read, expected, "{stream} after call {n}");
    }
    sink.commit().await.unwrap();
    // With nothing queued, the loader is woken for the read.
    assert_eq!(
        sink.read_stream(&held[0]).await.unwrap(),
        log.read_stream_to_end(&held[0], 0).await.unwrap()
    );
    Box::new(sink).finish().await.unwrap();

    let stored = SqliteLog::open(&path, SqliteConfig::default()).unwrap();
    let all = stored.read_all(0, 100_000).await.unwrap();
    assert_eq!(all.len(), 100 + 20 * 1500);
    assert_eq!(all, log.read_all(0, 100_000).await.unwrap());
}
