//! The WAL stays bounded under constant appends and reads, when no moment comes on its own
//! at which SQLite could rewind it.

use citydb_log::{EventLog, ExpectedVersion, Metadata, NewEvent, StreamAppend, StreamId};
use citydb_sqlite::{Durability, SqliteConfig, SqliteLog};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_is_rewound_while_readers_never_stop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let restart_pages = 1024; // 4 MiB of 4 KiB pages
    let config = SqliteConfig {
        durability: Durability::Normal,
        wal_restart_pages: restart_pages,
        ..SqliteConfig::default()
    };
    let log = SqliteLog::open(&path, config).unwrap();
    let streams: Vec<StreamId> = (0..500)
        .map(|i| StreamId::new("citizen", Uuid::from_u128(0x7000 + i)).unwrap())
        .collect();
    // Readers that always have a read open somewhere, as under a bulk import.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..4 {
        let (log, stop, streams) = (log.clone(), stop.clone(), streams.clone());
        readers.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = &streams[(n * 7 + r) % streams.len()];
                log.read_stream(s, 0, citydb_log::Direction::Forward, 100)
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }));
    }
    let payload = serde_json::json!({ "text": "x".repeat(600) });
    let mut largest_wal = 0u64;
    // About 110 MiB of WAL frames without rewinding: 2,000 commits touching spread-out pages.
    for round in 0..2_000u64 {
        let appends = (0..20)
            .map(|k| {
                let s = streams[((round * 20 + k) % streams.len() as u64) as usize].clone();
                let event = NewEvent::new("Noted", 1, &payload, &Metadata::default()).unwrap();
                StreamAppend::new(s, ExpectedVersion::Any, vec![event])
            })
            .collect();
        log.append(appends).await.unwrap();
        // A steady stream rather than flat out: how far the WAL grows past the limit before a
        // pass notices depends on how much is committed between two passes (100 ms apart), so
        // the bound below holds on a fast machine as on a loaded one.
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        let wal = std::fs::metadata(dir.path().join("log.db-wal")).map_or(0, |m| m.len());
        largest_wal = largest_wal.max(wal);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut reads = 0;
    for r in readers {
        reads += r.await.unwrap();
    }
    assert!(reads > 100, "the readers hardly ran ({reads} reads)");
    // Rewound at the limit, the file holds the limit plus what the commits between two
    // checkpoint passes wrote (≤ 5.5 MiB at this pace) and those until no reader stands in the
    // rewind's way (a few groups): 7–8 MiB here. Without rewinding the file grows past
    // 100 MiB; with the rewind given up after one try (a reader in the way), to 16–19 MiB.
    let limit = restart_pages as u64 * 4096;
    assert!(
        largest_wal < 3 * limit,
        "the WAL grew to {largest_wal} bytes (limit {limit})"
    );
    let report = log.verify_log(None).await.unwrap();
    assert!(report.is_intact());
    assert_eq!(report.events, 40_000);
}
