//! A parent's children (`parents` table): written from each child's current father and mother,
//! the same rows by the per-batch path (any batch size) and the bulk path, through a
//! registration with parents, a `SetParents` that replaces one, a correction of a birth date
//! (the order), a merge and a redaction.

use citydb_domain::citizen::SetParents;
use citydb_domain::redaction::{ApproveRedaction, ProposeRedaction};

use super::*;

fn child(n: u128, birth: &str, father: Option<u128>, mother: Option<u128>) -> Command {
    let year: u16 = birth[..4].parse().expect("year");
    let mut c = register_named_citizen(n, ("Đỗ", "Văn", &format!("Con {n}")), Sex::Male, year);
    c.birth_date = birth.parse().expect("birth date");
    c.father = father.map(cid);
    c.mother = mother.map(cid);
    Command::RegisterCitizen(c)
}

/// Parents 1 (father), 2 (mother), 3 (another father) and their children; then 11 gets father
/// 3 instead of 1, 13's birth date is corrected, 12 is merged into 10 and 10's registration
/// is redacted.
async fn families(w: &World) {
    w.run(register_citizen(1, ("Đỗ", "Văn", "Hùng"), Sex::Male, 1950))
        .await;
    w.run(register_citizen(2, ("Vũ", "Thị", "Mai"), Sex::Female, 1955))
        .await;
    w.run(register_citizen(3, ("Lý", "Văn", "Tâm"), Sex::Male, 1952))
        .await;
    w.run(child(10, "1980-05-01", Some(1), Some(2))).await;
    w.run(child(11, "1978", Some(1), Some(2))).await;
    w.run(child(12, "1980", Some(1), None)).await;
    w.run(child(13, "1985-02-02", None, Some(2))).await;
    w.run(Command::SetParents(SetParents {
        citizen: cid(11),
        father: Some(cid(3)),
        mother: Some(cid(2)),
    }))
    .await;
    // 13's birth date corrected (within the year its PIN encodes): the order changes.
    let correction = CorrectionId(uuid::Uuid::from_u128(0xC13));
    w.run(Command::ProposeCorrection(command::ProposeCorrection {
        record: cid(13).into(),
        correction,
        changes: vec![fc("birth_date", json!("1985-02-02"), json!("1985-01-01"))],
        reason: "sai ngày sinh".to_owned(),
        legal_basis: basis(),
    }))
    .await;
    w.try_run_as(
        &Command::ApproveCorrection(command::ApproveCorrection {
            record: cid(13).into(),
            correction,
        }),
        &supervisor(),
    )
    .await
    .expect("approve");
    w.run(Command::MergeCitizens(MergeCitizens {
        survivor: cid(10),
        duplicate: cid(12),
        reason: "two records of one person".to_owned(),
        legal_basis: basis(),
    }))
    .await;
    let stream: citydb_log::StreamId = RecordId::from(cid(10)).to_string().parse().expect("id");
    let registered = w
        .log
        .read_stream(&stream, 0, citydb_log::Direction::Forward, 1)
        .await
        .expect("read")[0]
        .position;
    w.run(Command::ProposeRedaction(ProposeRedaction {
        record: cid(10).into(),
        position: registered,
        reason: "court order".to_owned(),
        legal_basis: basis(),
    }))
    .await;
    w.try_run_as(
        &Command::ApproveRedaction(ApproveRedaction {
            record: cid(10).into(),
            position: registered,
        }),
        &supervisor(),
    )
    .await
    .expect("approve");
    let hash = w.log.read_all(registered, 1).await.expect("read")[0].hash;
    w.log.redact(registered, hash).await.expect("redact");
}

const PARENTS: [u128; 5] = [1, 2, 3, 10, 99];

async fn children(p: &Projections) -> Vec<(u128, Vec<CitizenId>)> {
    let parents: Vec<CitizenId> = PARENTS.iter().map(|n| cid(*n)).collect();
    let mut found = p.children_of(&parents).await.expect("children");
    PARENTS
        .iter()
        .map(|n| {
            (
                *n,
                found
                    .remove(&cid(*n))
                    .expect("every parent asked is answered"),
            )
        })
        .collect()
}

#[tokio::test]
async fn children_are_the_same_rows_per_batch_and_in_bulk() {
    let w = World::new();
    families(&w).await;
    let reference = w
        .projections(
            "per-batch.db",
            ProjectionConfig {
                follow: false,
                bulk: BulkConfig {
                    threshold: u64::MAX,
                    ..BulkConfig::default()
                },
                ..ProjectionConfig::default()
            },
        )
        .await;
    reference.catch_up().await.expect("catch up");
    assert_eq!(reference.bulk_loaded(), 0);
    let expected = children(&reference).await;
    // By birth date as recorded (1980 before 1980-05-01), then id; 11 left father 1 for 3;
    // the merged duplicate 12 keeps its link, like a holder or a representative would.
    assert_eq!(
        expected,
        vec![
            (1, vec![cid(12), cid(10)]),
            (2, vec![cid(11), cid(10), cid(13)]),
            (3, vec![cid(11)]),
            (10, vec![]),
            (99, vec![]),
        ]
    );
    assert!(
        reference
            .failures(None, 10)
            .await
            .expect("failures")
            .is_empty()
    );
    let digest = reference.digest().await.expect("digest");

    // Batch by batch: every change of a child meets the rows of its earlier batches.
    for batch_size in [1, 2, 5] {
        let p = w
            .projections(
                &format!("batch-{batch_size}.db"),
                ProjectionConfig {
                    follow: false,
                    batch_size,
                    bulk: BulkConfig {
                        threshold: u64::MAX,
                        ..BulkConfig::default()
                    },
                    ..ProjectionConfig::default()
                },
            )
            .await;
        p.catch_up().await.expect("catch up");
        assert_eq!(children(&p).await, expected, "batch {batch_size}");
        assert_eq!(
            p.digest().await.expect("digest"),
            digest,
            "batch {batch_size}"
        );
    }

    // The bulk path, with tiny transactions and states dropped from memory and read back.
    let bulk = w
        .projections(
            "bulk.db",
            ProjectionConfig {
                follow: false,
                bulk: BulkConfig {
                    threshold: 1,
                    commit_every: 3,
                    records_in_memory: 2,
                },
                ..ProjectionConfig::default()
            },
        )
        .await;
    bulk.rebuild().await.expect("rebuild");
    assert!(bulk.bulk_loaded() > 0, "the rebuild took the bulk path");
    assert_eq!(children(&bulk).await, expected);
    assert_eq!(bulk.digest().await.expect("digest"), digest);

    // A parent replaced after the bulk load, row by row on the bulk-built file.
    w.run(Command::SetParents(SetParents {
        citizen: cid(13),
        father: Some(cid(3)),
        mother: None,
    }))
    .await;
    for p in [&reference, &bulk] {
        p.catch_up().await.expect("catch up");
        let now = children(p).await;
        assert_eq!(now[1], (2, vec![cid(11), cid(10)]));
        assert_eq!(now[2], (3, vec![cid(11), cid(13)]));
    }
    assert_eq!(
        bulk.digest().await.expect("digest"),
        reference.digest().await.expect("digest")
    );
}

#[tokio::test]
async fn a_parent_s_children_are_bounded() {
    let w = World::new();
    w.run(register_citizen(1, ("Đỗ", "Văn", "Hùng"), Sex::Male, 1950))
        .await;
    let many = MAX_CHILDREN as u128 + 3;
    for n in 0..many {
        // Born in reverse order of id: the list is by birth date, not by registration.
        let day = 28 - (n % 28);
        let month = 12 - (n / 28);
        w.run(child(
            100 + n,
            &format!("1980-{month:02}-{day:02}"),
            Some(1),
            None,
        ))
        .await;
    }
    let p = w.manual("projections.db").await;
    p.catch_up().await.expect("catch up");
    let found = p.children_of(&[cid(1), cid(1)]).await.expect("children");
    let listed = &found[&cid(1)];
    assert_eq!(listed.len(), MAX_CHILDREN);
    // The earliest born first: the last registered.
    assert_eq!(listed[0], cid(100 + many - 1));
    let births: Vec<String> = {
        let states = p.citizens_by_ids(listed).await.expect("states");
        listed
            .iter()
            .map(|c| states[c].state.birth_date.to_string())
            .collect()
    };
    let mut sorted = births.clone();
    sorted.sort();
    assert_eq!(births, sorted);
}
