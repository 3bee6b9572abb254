//! The bulk path (a rebuild, a catch-up far behind the log) against the per-batch path: the same
//! read models, the same failures recorded, and a half-built file never taken for a good one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use citydb_domain::parcel::{ChangeLandUse, MergeParcels, NewParcel, SplitParcel};
use citydb_log::{
    AppendOutcome, Direction, EventLog, LogError, LogHead, RecordedEvent, StreamAppend, StreamId,
};
use tokio::sync::watch;

use super::*;

/// Never the bulk path: the reference.
fn per_batch() -> ProjectionConfig {
    ProjectionConfig {
        follow: false,
        bulk: BulkConfig {
            threshold: u64::MAX,
            ..BulkConfig::default()
        },
        ..ProjectionConfig::default()
    }
}

/// The bulk path whenever behind, with transactions of 5 events and at most 3 states kept in
/// memory: on a small log, every commit path runs, and states are dropped and read back.
fn bulk_small() -> ProjectionConfig {
    ProjectionConfig {
        follow: false,
        bulk: BulkConfig {
            threshold: 1,
            commit_every: 5,
            records_in_memory: 3,
        },
        ..ProjectionConfig::default()
    }
}

/// More of every record kind's lifecycle after [`small_city`]: an approved name correction, a
/// direct correction, a business rename, land-use changes, a parcel split and a merge, more
/// people — and events that cannot be applied.
async fn busier_city(w: &World) {
    for n in 20..40u128 {
        let given = ["Hoà", "Lan", "Minh", "Hùng"][n as usize % 4];
        w.run(register_citizen(
            n,
            ("Phạm", "Thị", given),
            Sex::Female,
            1970,
        ))
        .await;
        w.run(move_to(n, "11311", "2015-01-01")).await;
    }
    w.try_run_as(
        &Command::ApproveCorrection(command::ApproveCorrection {
            record: cid(2).into(),
            correction: CorrectionId(uuid::Uuid::from_u128(0xD001)),
        }),
        &supervisor(),
    )
    .await
    .expect("approve");
    w.run(Command::CorrectRecord(command::CorrectRecord {
        record: cid(21).into(),
        changes: vec![fc("birth_place", json!("11311"), json!("10507"))],
        reason: "sai nơi sinh".to_owned(),
        legal_basis: basis(),
    }))
    .await;
    w.run(Command::RenameBusiness(RenameBusiness {
        business: bid(1),
        names: names("Công ty TNHH Cảng Xanh"),
        date: date("2025-08-01"),
    }))
    .await;
    w.run(Command::ChangeLandUse(ChangeLandUse {
        parcel: pid(3),
        land_use: vec!["TMD".parse().expect("land use")],
        date: date("2025-08-02"),
        legal_basis: basis(),
    }))
    .await;
    w.run(register_parcel(
        5,
        pkey_in("11311", 12, 400),
        "ODT",
        whole(Holder::Citizen(cid(20))),
    ))
    .await;
    w.run(register_parcel(
        6,
        pkey_in("11311", 12, 401),
        "ODT",
        whole(Holder::Citizen(cid(20))),
    ))
    .await;
    w.run(Command::MergeParcels(MergeParcels {
        sources: vec![pid(5), pid(6)],
        into: NewParcel {
            parcel: pid(7),
            key: pkey_in("11311", 12, 402),
            area: "241".parse().expect("area"),
        },
        date: date("2025-09-01"),
    }))
    .await;
    w.run(Command::SplitParcel(SplitParcel {
        source: pid(7),
        parts: vec![
            NewParcel {
                parcel: pid(8),
                key: pkey_in("11311", 12, 403),
                area: "120".parse().expect("area"),
            },
            NewParcel {
                parcel: pid(9),
                key: pkey_in("11311", 12, 404),
                area: "121".parse().expect("area"),
            },
        ],
        date: date("2025-10-01"),
    }))
    .await;
    // Cannot be applied: a death with no registration before it, an event type this build
    // does not know, and one written by a newer schema.
    w.append_raw(
        "citizen-00000000-0000-0000-0000-00000000dead",
        &[
            ("CitizenDeceased", 1, json!({"date": "2020"})),
            ("CitizenTeleported", 1, json!({})),
        ],
    )
    .await;
    let c30 = RecordId::from(cid(30)).to_string();
    w.append_raw(&c30, &[("CitizenDeceased", 99, json!({"date": "2021"}))])
        .await;
}

/// The indexes of the projections file `name`, by name.
fn indexes(w: &World, name: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(w.path(name)).expect("open");
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name")
        .expect("prepare");
    stmt.query_map([], |r| r.get(0))
        .expect("indexes")
        .collect::<Result<_, _>>()
        .expect("indexes")
}

/// Names searched in the comparisons: FTS5 rows come from the bulk path's final fill.
const NAMES: &[&str] = &["Lan", "Lân", "hoa", "Phạm Thị", "Minh", "Trần Thị L"];

/// What the read models answer beyond the digest (which leaves out the FTS5 tables): name
/// searches of citizens and businesses, and the failures.
async fn answers(p: &Projections) -> Vec<String> {
    let mut out = Vec::new();
    for name in NAMES {
        let filter = CitizenFilter {
            name: Some((*name).to_owned()),
            ..CitizenFilter::default()
        };
        let page = p.search_citizens(&filter, 50, None).await.expect("search");
        out.push(format!("citizens {name}: {:?}", citizen_ids(&page)));
    }
    for name in ["Cảng", "cang xanh", "Đồ Sơn", "Hải"] {
        let filter = BusinessFilter {
            name: Some(name.to_owned()),
            ..BusinessFilter::default()
        };
        let page = p
            .search_businesses(&filter, 50, None)
            .await
            .expect("search");
        out.push(format!(
            "businesses {name}: {:?}",
            ids(&page, |b| b.id.into())
        ));
    }
    let failures = p.failures(None, 100).await.expect("failures");
    out.push(format!(
        "failures: {:?}",
        failures.iter().map(|f| f.position).collect::<Vec<_>>()
    ));
    out
}

#[tokio::test]
async fn the_bulk_path_builds_the_read_models_of_the_per_batch_path() {
    let w = World::new();
    small_city(&w).await;
    busier_city(&w).await;
    // Residence starts: moves, corrections fixing the past and from a date, approvals, a
    // rejection, a merge and a redaction (the digest covers their tables).
    super::residence_starts::residence_history(&w).await;
    for flavour in [SearchFlavour::Fts5, SearchFlavour::Plain] {
        let end = w.head().await + 1;
        let with_flavour = |config: ProjectionConfig| ProjectionConfig {
            search: Some(flavour),
            ..config
        };
        let reference = w
            .projections(
                &format!("{}-per-batch.db", flavour.as_str()),
                with_flavour(per_batch()),
            )
            .await;
        let reference_indexing = reference.watch_building_indexes();
        reference.catch_up().await.expect("catch up");
        assert_eq!(
            reference.bulk_loaded(),
            0,
            "the reference takes no bulk path"
        );
        assert!(
            !reference_indexing.has_changed().expect("open"),
            "the per-batch path builds no indexes at its end"
        );
        let digest = reference.digest().await.expect("digest");
        let expected = answers(&reference).await;
        let march = super::residence_starts::feed(&reference, "11311", "2025-03", None).await;
        assert_eq!(
            march.len(),
            8,
            "the residence history is in the reference: {march:?}"
        );
        let expected_indexes = indexes(&w, &format!("{}-per-batch.db", flavour.as_str()));
        assert!(
            expected_indexes.contains(&"citizens_name_folded".to_owned()),
            "{expected_indexes:?}"
        );
        assert_eq!(
            reference.failures(None, 100).await.expect("failures").len(),
            3,
            "the events that cannot be applied are recorded"
        );
        for (name, config) in [
            (
                "bulk-default.db",
                ProjectionConfig {
                    follow: false,
                    ..ProjectionConfig::default()
                },
            ),
            ("bulk-small.db", bulk_small()),
        ] {
            let file = format!("{}-{name}", flavour.as_str());
            let p = w.projections(&file, with_flavour(config)).await;
            let mut indexing = p.watch_building_indexes();
            p.rebuild().await.expect("rebuild");
            // Woken only by changes: it went to true (the indexes) and back.
            assert!(
                indexing.has_changed().expect("open"),
                "{file}: the index build was announced"
            );
            assert!(!*indexing.borrow_and_update(), "{file}: and is over");
            assert_eq!(p.position(), end);
            assert_eq!(
                p.bulk_loaded(),
                end,
                "{file}: the rebuild took the bulk path"
            );
            assert_eq!(p.digest().await.expect("digest"), digest, "{file}");
            assert_eq!(answers(&p).await, expected, "{file}");
            // The name searches' ordered ranges among them: answers alone would not tell.
            assert_eq!(
                indexes(&w, &file),
                expected_indexes,
                "{file}: the same indexes"
            );
            drop(p);
            let p = w.projections(&file, with_flavour(per_batch())).await;
            assert_eq!(p.position(), end, "{file}: the build was committed");
        }

        // More events, row by row on top of the bulk-built file: still the same.
        let bulk = w
            .projections(
                &format!("{}-bulk-small.db", flavour.as_str()),
                with_flavour(per_batch()),
            )
            .await;
        let n = if flavour == SearchFlavour::Fts5 {
            25
        } else {
            26
        };
        w.run(move_to(n, "10507", "2026-01-01")).await;
        w.run(Command::RenameBusiness(RenameBusiness {
            business: bid(2),
            names: names(&format!("Công ty Cổ phần Lan Hạ {n}")),
            date: date("2026-01-02"),
        }))
        .await;
        reference.catch_up().await.expect("catch up");
        bulk.catch_up().await.expect("catch up");
        assert_eq!(
            bulk.digest().await.expect("digest"),
            reference.digest().await.expect("digest")
        );
        assert_eq!(answers(&bulk).await, answers(&reference).await);
    }
}

/// Builds `file` from `rows` handed over in chunks of 7, as a bulk load of the log hands its
/// stored rows over, then tells the build that the log ends at `end` (`None`: the load failed).
fn build_beside_load(
    w: &World,
    file: &str,
    config: &ProjectionConfig,
    rows: &[RecordedEvent],
    end: Option<u64>,
) -> Result<u64, ProjectionError> {
    let (to_build, handed_over) = std::sync::mpsc::sync_channel(2);
    let (tell_end, ended) = std::sync::mpsc::sync_channel(1);
    let path = w.path(file);
    std::thread::scope(|scope| {
        let build = scope.spawn(|| {
            let observer = BulkObserver {
                publish: &|_| {},
                indexing: &|_| {},
            };
            Projections::build_beside_load(&path, config, handed_over, ended, observer)
        });
        for chunk in rows.chunks(7) {
            if to_build.send(chunk.to_vec()).is_err() {
                break;
            }
        }
        drop(to_build);
        if let Some(end) = end {
            tell_end.send(end).expect("the build waits for the end");
        }
        drop(tell_end);
        build.join().expect("the build does not panic")
    })
}

#[tokio::test]
async fn rows_handed_over_by_a_load_build_the_read_models_of_the_per_batch_path() {
    let w = World::new();
    small_city(&w).await;
    busier_city(&w).await;
    super::residence_starts::residence_history(&w).await;
    let end = w.head().await + 1;
    let reference = w.projections("per-batch.db", per_batch()).await;
    reference.catch_up().await.expect("catch up");
    let digest = reference.digest().await.expect("digest");
    let expected = answers(&reference).await;
    let rows = w.log.read_all(0, end as usize).await.expect("the log");
    assert_eq!(rows.len() as u64, end);
    for (file, config) in [
        ("fed-default.db", per_batch()),
        ("fed-small.db", bulk_small()),
    ] {
        let built = build_beside_load(&w, file, &config, &rows, Some(end)).expect("built");
        assert_eq!(built, end, "{file}");
        let p = w.projections(file, per_batch()).await;
        assert_eq!(
            p.position(),
            end,
            "{file}: complete, nothing left to catch up"
        );
        // What the import does next, as a server does at its start.
        p.refold_redacted().await.expect("refold");
        assert_eq!(p.digest().await.expect("digest"), digest, "{file}");
        assert_eq!(answers(&p).await, expected, "{file}");
        assert_eq!(indexes(&w, file), indexes(&w, "per-batch.db"), "{file}");
    }

    // A load that failed, or whose log ends before the rows it handed over (a transaction
    // not committed): the build fails, and the next open rebuilds the file from the log.
    for (file, told) in [("fed-failed.db", None), ("fed-short.db", Some(end - 1))] {
        let built = build_beside_load(&w, file, &per_batch(), &rows, told);
        assert!(built.is_err(), "{file}: {built:?}");
        let p = w.projections(file, per_batch()).await;
        assert_eq!(p.position(), 0, "{file}: the half-built file was not kept");
        p.catch_up().await.expect("catch up");
        assert_eq!(p.digest().await.expect("digest"), digest, "{file}");
    }
}

#[tokio::test]
async fn a_catch_up_far_behind_takes_the_bulk_path_from_its_checkpoint() {
    let w = World::new();
    small_city(&w).await;
    let p = w.projections("behind.db", per_batch()).await;
    p.catch_up().await.expect("catch up");
    let checkpoint = p.position();
    assert!(checkpoint > 0);
    drop(p);
    // The log grows by more than the file holds while the node is down.
    busier_city(&w).await;
    let end = w.head().await + 1;
    assert!(end - checkpoint >= checkpoint);

    let reference = w.projections("per-batch.db", per_batch()).await;
    reference.catch_up().await.expect("catch up");

    // On start, with the background projector: the catch-up the node does before it is ready.
    let p = w
        .projections(
            "behind.db",
            ProjectionConfig {
                follow: true,
                ..bulk_small()
            },
        )
        .await;
    p.wait_for(end - 1, WAIT).await.expect("caught up");
    assert_eq!(
        p.bulk_loaded(),
        end - checkpoint,
        "bulk from the checkpoint on, not from 0"
    );
    assert_eq!(
        p.digest().await.expect("digest"),
        reference.digest().await.expect("digest")
    );
    assert_eq!(answers(&p).await, answers(&reference).await);

    // Near the head again, new events go batch by batch.
    w.run(move_to(20, "10507", "2026-01-01")).await;
    p.wait_for(end, WAIT).await.expect("caught up");
    assert_eq!(p.bulk_loaded(), end - checkpoint);

    // Behind by fewer events than the file holds: row by row, the indexes kept.
    drop(p);
    for n in 21..24 {
        w.run(move_to(n, "10507", "2026-02-01")).await;
    }
    let p = w.projections("behind.db", bulk_small()).await;
    p.catch_up().await.expect("catch up");
    assert_eq!(p.bulk_loaded(), 0);
    reference.catch_up().await.expect("catch up");
    assert_eq!(
        p.digest().await.expect("digest"),
        reference.digest().await.expect("digest")
    );
}

/// A log whose `read_all` fails from a position on, as a disk error would.
struct FailingLog {
    inner: Arc<dyn EventLog>,
    fail_from: AtomicU64,
}

#[async_trait::async_trait]
impl EventLog for FailingLog {
    async fn append(&self, appends: Vec<StreamAppend>) -> Result<AppendOutcome, LogError> {
        self.inner.append(appends).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
        direction: Direction,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, LogError> {
        self.inner.read_stream(stream, from, direction, max).await
    }

    async fn read_all(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let fail_from = self.fail_from.load(Ordering::SeqCst);
        if from >= fail_from {
            return Err(LogError::Corrupted {
                position: from,
                reason: "injected read failure".to_owned(),
            });
        }
        let max = max.min(usize::try_from(fail_from - from).unwrap_or(usize::MAX));
        self.inner.read_all(from, max).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<u64>, LogError> {
        self.inner.stream_version(stream).await
    }

    async fn head(&self) -> Result<Option<LogHead>, LogError> {
        self.inner.head().await
    }

    fn watch_head(&self) -> watch::Receiver<Option<u64>> {
        self.inner.watch_head()
    }
}

fn has_mark_and_index(path: &std::path::Path) -> (bool, bool) {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mark = conn
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM meta WHERE key = 'bulk-build')",
            [],
            |r| r.get(0),
        )
        .expect("mark");
    let index = conn
        .query_row(
            "SELECT EXISTS(SELECT 1 FROM sqlite_master WHERE name = 'citizens_pin')",
            [],
            |r| r.get(0),
        )
        .expect("index");
    (mark, index)
}

#[tokio::test]
async fn an_interrupted_bulk_build_is_resumed_in_process_and_rebuilt_after_a_restart() {
    let w = World::new();
    small_city(&w).await;
    busier_city(&w).await;
    let reference = w.projections("per-batch.db", per_batch()).await;
    reference.catch_up().await.expect("catch up");
    let digest = reference.digest().await.expect("digest");
    let end = w.head().await + 1;

    let failing = Arc::new(FailingLog {
        inner: w.log.clone(),
        fail_from: AtomicU64::new(end / 2),
    });
    let path = w.path("interrupted.db");
    let p = Projections::open(&path, failing.clone(), bulk_small())
        .await
        .expect("open");
    assert!(p.rebuild().await.is_err(), "the read failure is reported");
    let reached = p.position();
    assert!(
        reached > 0 && reached <= end / 2,
        "commits went in: {reached}"
    );
    assert_eq!(
        has_mark_and_index(&path),
        (true, false),
        "half built: marked, indexes not there yet"
    );

    // In process, the next step resumes the load (not a batch on a file without indexes).
    failing.fail_from.store(u64::MAX, Ordering::SeqCst);
    let consumed = p.project_batch(1).await.expect("resume");
    assert_eq!(consumed as u64, end - reached);
    assert_eq!(p.position(), end);
    assert_eq!(has_mark_and_index(&path), (false, true));
    assert_eq!(p.digest().await.expect("digest"), digest);
    assert_eq!(answers(&p).await, answers(&reference).await);
    drop(p);

    // Interrupted again, then the process ends: the next open finds the mark and starts over.
    failing.fail_from.store(end / 3, Ordering::SeqCst);
    let p = Projections::open(&path, failing.clone(), bulk_small())
        .await
        .expect("open");
    assert!(p.rebuild().await.is_err());
    assert!(p.position() > 0);
    drop(p);
    assert_eq!(has_mark_and_index(&path), (true, false));
    let p = w.projections("interrupted.db", per_batch()).await;
    assert_eq!(
        p.position(),
        0,
        "the half-built file was not taken for a good one"
    );
    p.catch_up().await.expect("catch up");
    assert_eq!(p.digest().await.expect("digest"), digest);
}

/// Readers keep their snapshot between reads (`read_snapshot`); a bulk load begins with a
/// `wal_checkpoint(TRUNCATE)`, which waits for every reader with a snapshot in the WAL. A
/// catch-up that turns to the bulk path right after reads must not find a kept snapshot in its
/// way (it would wait the busy timeout and fail, again at every retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_catch_up_after_reads_is_not_held_up_by_kept_snapshots() {
    let w = World::new();
    small_city(&w).await;
    let p = w
        .projections(
            "kept.db",
            ProjectionConfig {
                follow: false,
                bulk: BulkConfig {
                    threshold: 1,
                    ..BulkConfig::default()
                },
                ..ProjectionConfig::default()
            },
        )
        .await;
    p.catch_up().await.expect("first load");
    // A few events: a batch, whose commit leaves frames in the WAL ...
    // (Two: the first may checkpoint the load's WAL whole, the second leaves its frames.)
    w.run(move_to(1, "11311", "2021-01-01")).await;
    p.catch_up().await.expect("a batch");
    w.run(move_to(2, "11311", "2021-01-01")).await;
    p.catch_up().await.expect("another batch");
    // ... then reads, whose snapshots the readers keep.
    let digest = p.digest().await.expect("digest");
    assert_eq!(p.digest().await.expect("digest again"), digest);
    // As many events again as projected: far behind, so the bulk path.
    let projected = p.position();
    for n in 0..projected as u128 {
        w.run(register_citizen(
            500 + n,
            ("Đỗ", "Văn", "An"),
            Sex::Male,
            1990,
        ))
        .await;
    }
    let started = std::time::Instant::now();
    let bulk_before = p.bulk_loaded();
    p.catch_up().await.expect("the bulk catch-up");
    assert_eq!(p.position(), w.head().await + 1);
    assert!(p.bulk_loaded() > bulk_before, "the bulk path ran");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "no wait for a busy timeout: {:?}",
        started.elapsed()
    );
}
