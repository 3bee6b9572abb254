//! Rebuilding: from scratch, after a stop between batches, and from a damaged or foreign file.

use super::*;

#[tokio::test]
async fn rebuilding_from_scratch_gives_an_identical_digest() {
    let w = World::new();
    small_city(&w).await;
    w.append_raw(
        "citizen-00000000-0000-0000-0000-00000000dead",
        &[("CitizenDeceased", 1, json!({"date": "2020"}))],
    )
    .await;
    let p = w.manual("projections.db").await;
    p.catch_up().await.expect("catch up");
    let digest = p.digest().await.expect("digest");

    p.rebuild().await.expect("rebuild");
    assert_eq!(p.position(), w.head().await + 1);
    assert_eq!(p.digest().await.expect("digest"), digest);

    // Other files, other batch sizes: the same read models.
    for batch_size in [1, 3, 1000] {
        let other = w
            .projections(
                &format!("other-{batch_size}.db"),
                ProjectionConfig {
                    follow: false,
                    batch_size,
                    ..ProjectionConfig::default()
                },
            )
            .await;
        other.catch_up().await.expect("catch up");
        assert_eq!(
            other.digest().await.expect("digest"),
            digest,
            "batch {batch_size}"
        );
    }

    // One more event changes the digest.
    w.run(move_to(2, "11311", "2025-07-01")).await;
    p.catch_up().await.expect("catch up");
    assert_ne!(p.digest().await.expect("digest"), digest);
}

/// A batch of at least 4,096 events (`ahead::AHEAD_FROM`) is upcast, and its records encoded,
/// on a second thread beside its writes: the results must still meet their events and rows in
/// order, failures included.
#[tokio::test]
async fn a_batch_large_enough_for_a_second_thread_gives_the_read_models_of_small_ones() {
    const CITIZENS: u128 = 4_500;
    let w = World::new();
    let given = ["Hoà", "Hùng", "Lan", "Minh", "Tú"];
    for n in 1..=CITIZENS {
        let name = ("Trần", "Thị", given[(n % 5) as usize]);
        w.run(register_citizen(
            n,
            name,
            Sex::Female,
            1980 + (n % 30) as u16,
        ))
        .await;
        if n % 1_000 == 0 {
            // Among the others: events that cannot be applied, on a new stream and on a
            // stream with a state, and a move of a citizen registered in the same batch.
            w.append_raw(
                &format!("citizen-00000000-0000-0000-dead-{n:012x}"),
                &[("CitizenTeleported", 1, json!({}))],
            )
            .await;
            w.append_raw(
                &RecordId::from(cid(n - 1)).to_string(),
                &[("CitizenDeceased", 99, json!({"date": "2021"}))],
            )
            .await;
            w.run(move_to(n - 2, "11311", "2024-01-01")).await;
        }
    }
    let end = w.head().await + 1;
    let reference = w.manual("small-batches.db").await;
    reference.catch_up().await.expect("catch up");
    let digest = reference.digest().await.expect("digest");
    let failures = reference.failures(None, 100).await.expect("failures");
    assert_eq!(
        failures.len(),
        8,
        "the events that cannot be applied are recorded"
    );

    let one_batch = |file: &'static str| {
        w.projections(
            file,
            ProjectionConfig {
                follow: false,
                batch_size: 1_000_000,
                bulk: BulkConfig {
                    threshold: u64::MAX,
                    ..BulkConfig::default()
                },
                ..ProjectionConfig::default()
            },
        )
    };
    let large = one_batch("one-batch.db").await;
    assert_eq!(
        large.project_batch(1_000_000).await.expect("batch") as u64,
        end
    );
    assert_eq!(large.digest().await.expect("digest"), digest);
    assert_eq!(large.failures(None, 100).await.expect("failures"), failures);

    // Half of it in small batches first: the large batch then also folds stored records.
    let half = w
        .projections(
            "half.db",
            ProjectionConfig {
                follow: false,
                batch_size: 512,
                ..ProjectionConfig::default()
            },
        )
        .await;
    while half.position() < end / 2 {
        half.project_batch(512).await.expect("batch");
    }
    drop(half);
    let half = one_batch("half.db").await;
    half.catch_up().await.expect("catch up");
    assert_eq!(half.position(), end);
    assert_eq!(half.digest().await.expect("digest"), digest);
    assert_eq!(half.failures(None, 100).await.expect("failures"), failures);
}

#[tokio::test]
async fn stopping_between_batches_neither_loses_nor_doubles_events() {
    let w = World::new();
    small_city(&w).await;
    // Counters that double application would show: branches and moves accumulate.
    for suffix in 3..=12u16 {
        w.run(register_branch(
            100 + u128::from(suffix),
            1,
            suffix,
            vec![cid(2)],
        ))
        .await;
    }
    for (i, commune) in ["11311", "10507", "11311", "10507", "11311"]
        .iter()
        .enumerate()
    {
        w.run(move_to(2, commune, &format!("202{i}-02-01"))).await;
    }
    let fresh = w.manual("fresh.db").await;
    fresh.catch_up().await.expect("catch up");
    let expected = fresh.digest().await.expect("digest");
    let end = fresh.position();

    // Stop after a few batches, reopen, go on; several times, with odd batch sizes.
    let config = ProjectionConfig {
        follow: false,
        batch_size: 7,
        ..ProjectionConfig::default()
    };
    let mut stops = 0;
    loop {
        let p = w.projections("interrupted.db", config.clone()).await;
        let before = p.position();
        for _ in 0..3 {
            p.project_batch(7).await.expect("batch");
        }
        let after = p.position();
        assert!(after <= before + 21);
        drop(p);
        stops += 1;
        if after == end {
            break;
        }
    }
    assert!(stops > 3);
    let p = w.projections("interrupted.db", config).await;
    assert_eq!(p.position(), end);
    assert_eq!(p.digest().await.expect("digest"), expected);
    let b1 = p.business(bid(1)).await.expect("q").expect("b1");
    assert_eq!(b1.state.branches.len(), 12, "each BranchAdded applied once");
    let stream: citydb_log::StreamId = RecordId::from(bid(1)).to_string().parse().expect("id");
    assert_eq!(
        Some(b1.version),
        w.log.stream_version(&stream).await.expect("v")
    );
    let c2 = p.citizen(cid(2)).await.expect("q").expect("c2");
    assert_eq!(
        c2.version, 7,
        "registration, 6 moves and a proposal, each once"
    );

    // The same with the background follower dropped at arbitrary points.
    for round in 0..4u64 {
        let p = w
            .projections(
                &format!("followed-{round}.db"),
                ProjectionConfig {
                    batch_size: 2 + round as usize,
                    ..ProjectionConfig::default()
                },
            )
            .await;
        tokio::time::sleep(Duration::from_millis(2 * round)).await;
        drop(p);
        let p = w
            .projections(&format!("followed-{round}.db"), ProjectionConfig::default())
            .await;
        p.wait_for(end - 1, WAIT).await.expect("caught up");
        assert_eq!(p.digest().await.expect("digest"), expected, "round {round}");
    }
}

#[tokio::test]
async fn a_damaged_file_is_found_on_open_and_rebuilt_from_the_log() {
    let w = World::new();
    small_city(&w).await;
    let p = w.manual("projections.db").await;
    p.catch_up().await.expect("catch up");
    let digest = p.digest().await.expect("digest");
    drop(p);

    let path = w.path("projections.db");
    damage_pages(&path);

    let p = w.manual("projections.db").await;
    assert_eq!(
        p.position(),
        0,
        "the damaged file was kept (its checkpoint survived)"
    );
    p.catch_up().await.expect("catch up");
    assert_eq!(p.digest().await.expect("digest"), digest);
    drop(p);

    // A WAL left without its file is not replayed onto a new one.
    std::fs::remove_file(&path).expect("remove");
    std::fs::write(w.path("projections.db-wal"), b"stale").expect("write");
    let p = w.manual("projections.db").await;
    assert_eq!(p.position(), 0);
    p.catch_up().await.expect("catch up");
    assert_eq!(p.digest().await.expect("digest"), digest);
}

/// Garbage over four whole pages in the middle of the file at `path`, as a disk fault leaves
/// it (the header, and so the application_id, intact).
fn damage_pages(path: &std::path::Path) {
    rusqlite::Connection::open(path)
        .expect("open")
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    let page = 4096u64;
    let len = std::fs::metadata(path).expect("size").len();
    assert!(len >= 8 * page, "too small to damage in the middle: {len}");
    use std::io::{Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open");
    file.seek(SeekFrom::Start(len / 2 / page * page))
        .expect("seek");
    let garbage: Vec<u8> = (0..4 * page).map(|i| (i * 7 + 0xA5) as u8).collect();
    file.write_all(&garbage).expect("write");
}

#[tokio::test]
async fn a_check_after_open_marks_damage_and_the_next_open_rebuilds() {
    let w = World::new();
    small_city(&w).await;
    let after_open = ProjectionConfig {
        follow: false,
        integrity_check: IntegrityCheck::AfterOpen,
        ..ProjectionConfig::default()
    };
    let p = w.projections("projections.db", after_open.clone()).await;
    p.catch_up().await.expect("catch up");
    let digest = p.digest().await.expect("digest");
    let position = p.position();
    assert_eq!(
        p.check_integrity().await.expect("check"),
        None,
        "a sound file"
    );
    drop(p);
    let path = w.path("projections.db");
    let mark = w.path("projections.db.damaged");
    assert!(!mark.exists(), "a sound file was marked");

    damage_pages(&path);
    // Opening does not read the whole file: the damaged file is used as it is…
    let p = w.projections("projections.db", after_open.clone()).await;
    assert_eq!(p.position(), position, "opening read the whole file");
    // …until the check finds the damage and marks it.
    let reason = p
        .check_integrity()
        .await
        .expect("check")
        .expect("damage found");
    assert!(!reason.is_empty());
    assert_eq!(
        std::fs::read_to_string(&mark).expect("the mark"),
        reason,
        "the mark holds what the check found"
    );
    drop(p);

    // The next open, in either mode, removes the file and its mark and rebuilds.
    let p = w.projections("projections.db", after_open).await;
    assert_eq!(p.position(), 0, "the damaged file was kept");
    assert!(!mark.exists(), "the mark outlived the file it was about");
    p.catch_up().await.expect("catch up");
    assert_eq!(p.digest().await.expect("digest"), digest);
    assert_eq!(p.check_integrity().await.expect("check"), None);
}

/// `Projections::check_file` is the open's check run ahead of it (a bulk import runs it beside
/// its lines): sound and absent files pass, damage is marked, and an open that does not check
/// then rebuilds as an open that checks would have.
#[tokio::test]
async fn a_check_before_open_marks_damage_for_an_open_that_does_not_check() {
    let w = World::new();
    small_city(&w).await;
    let path = w.path("projections.db");
    let mark = w.path("projections.db.damaged");
    assert_eq!(
        Projections::check_file(&path).expect("check"),
        None,
        "no file yet"
    );
    let p = w.manual("projections.db").await;
    p.catch_up().await.expect("catch up");
    let digest = p.digest().await.expect("digest");
    drop(p);
    assert_eq!(
        Projections::check_file(&path).expect("check"),
        None,
        "a sound file"
    );
    assert!(!mark.exists(), "a sound file was marked");

    damage_pages(&path);
    let reason = Projections::check_file(&path)
        .expect("check")
        .expect("damage found");
    assert_eq!(std::fs::read_to_string(&mark).expect("the mark"), reason);
    let after_open = ProjectionConfig {
        follow: false,
        integrity_check: IntegrityCheck::AfterOpen,
        ..ProjectionConfig::default()
    };
    let p = w.projections("projections.db", after_open).await;
    assert_eq!(p.position(), 0, "the damaged file was kept");
    assert!(!mark.exists(), "the mark outlived the file it was about");
    p.catch_up().await.expect("catch up");
    assert_eq!(p.digest().await.expect("digest"), digest);

    // A file that is not a projections file is not marked: the open refuses it untouched.
    drop(p);
    let foreign = w.path("foreign.db");
    rusqlite::Connection::open(&foreign)
        .expect("open")
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .expect("foreign file");
    assert_eq!(Projections::check_file(&foreign).expect("check"), None);
    assert!(!w.path("foreign.db.damaged").exists());
}

#[tokio::test]
async fn a_file_from_another_schema_is_rebuilt_and_a_foreign_file_refused() {
    let w = World::on_sqlite();
    small_city(&w).await;
    let p = w.manual("projections.db").await;
    p.catch_up().await.expect("catch up");
    let digest = p.digest().await.expect("digest");
    drop(p);

    {
        let conn = rusqlite::Connection::open(w.path("projections.db")).expect("open");
        conn.execute_batch("PRAGMA user_version = 999; DELETE FROM records;")
            .expect("tamper");
    }
    let p = w.manual("projections.db").await;
    assert_eq!(p.position(), 0, "dropped for the version mismatch");
    assert!(p.citizen(cid(1)).await.expect("query").is_none());
    p.catch_up().await.expect("catch up");
    assert_eq!(p.digest().await.expect("digest"), digest);
    drop(p);

    // Switching search flavour rebuilds too.
    let plain = w
        .projections(
            "projections.db",
            ProjectionConfig {
                follow: false,
                search: Some(SearchFlavour::Plain),
                ..ProjectionConfig::default()
            },
        )
        .await;
    assert_eq!(plain.position(), 0);
    drop(plain);

    // The log file itself (or any other database) is refused and left alone.
    let log_path = w.path("log.db");
    // Every page in the file first: the log's own checkpointer may otherwise copy its WAL into
    // the file at any moment, between the two reads (seen under the whole suite's load).
    rusqlite::Connection::open(&log_path)
        .expect("open")
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    let before = std::fs::read(&log_path).expect("read log");
    let refused = Projections::open(&log_path, w.log.clone(), ProjectionConfig::default()).await;
    assert!(matches!(
        refused,
        Err(ProjectionError::NotAProjectionsFile { .. })
    ));
    assert_eq!(std::fs::read(&log_path).expect("read log"), before);
}

/// A stored state that is not a record any more — here a byte that is not UTF-8 inside a
/// string, which the read path, reading states as bytes, leaves to the decode to refuse — is a
/// typed `Corrupt` error on every read path (by id, by key, in a search page, several at once),
/// never a panic and never the record's last good decoding; other records still read.
#[tokio::test]
async fn a_damaged_stored_state_is_a_corrupt_error_on_every_read_path() {
    let w = World::on_sqlite();
    small_city(&w).await;
    let p = w.manual("projections.db").await;
    p.catch_up().await.expect("catch up");
    // Read it once, so the good text's decoding is kept.
    let good = p.citizen(cid(1)).await.expect("read").expect("citizen 1");
    let pin = good.state.pin;
    drop(p);

    {
        let conn = rusqlite::Connection::open(w.path("projections.db")).expect("open");
        let id = RecordId::from(cid(1)).to_string();
        let state: String = conn
            .query_row(
                "SELECT state FROM records WHERE record_id = ?1",
                [&id],
                |r| r.get(0),
            )
            .expect("state");
        let mut bytes = state.into_bytes();
        let at = bytes
            .windows(4)
            .position(|w| w == b"Tray")
            .expect("the address");
        bytes[at + 1] = 0xff;
        let changed = conn
            .execute(
                "UPDATE records SET state = CAST(?1 AS TEXT) WHERE record_id = ?2",
                rusqlite::params![bytes, id],
            )
            .expect("tamper");
        assert_eq!(changed, 1);
    }

    let p = w.manual("projections.db").await;
    let corrupt = |r: Result<_, ProjectionError>, path: &str| match r {
        Err(ProjectionError::Corrupt(m)) => assert!(m.contains("state"), "{path}: {m}"),
        other => panic!("{path}: {other:?}"),
    };
    corrupt(p.citizen(cid(1)).await.map(|_| ()), "by id");
    corrupt(p.citizen_by_pin(&pin).await.map(|_| ()), "by PIN");
    let by_name = CitizenFilter {
        name: Some("Nguyễn Văn Hoà".into()),
        ..CitizenFilter::default()
    };
    corrupt(
        p.search_citizens(&by_name, 10, None).await.map(|_| ()),
        "a search page",
    );
    corrupt(
        p.citizens_by_ids(&[cid(1), cid(2)]).await.map(|_| ()),
        "several at once",
    );
    let other = p.citizen(cid(2)).await.expect("citizen 2 reads");
    assert!(other.is_some());
}
