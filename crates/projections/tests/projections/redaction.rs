//! Redactions in the read models: a record folded live and then redacted, a rebuild (bulk) and
//! a per-batch replay that meet the blanked event before its approval all show the same
//! redacted state, and the original values are neither in a row nor found by search.

use super::*;
use citydb_domain::redaction::*;

const PLACEHOLDER: &str = "[redacted: 15/2026/QĐ-TA]";

fn order() -> LegalBasis {
    LegalBasis {
        document_number: "15/2026/QĐ-TA".to_owned(),
        document_date: "2026-03-02".parse().expect("date"),
    }
}

fn supervisor() -> Actor {
    Actor {
        id: "supervisor-tuan".to_owned(),
        role: StewardRole::Supervisor,
    }
}

/// Proposes, approves (another actor, a supervisor) and blanks — as the registry does — the
/// event at `position` of citizen 1's stream.
async fn redact(w: &World, position: u64) {
    w.run(Command::ProposeRedaction(ProposeRedaction {
        record: cid(1).into(),
        position,
        reason: "court order".to_owned(),
        legal_basis: order(),
    }))
    .await;
    w.try_run_as(
        &Command::ApproveRedaction(ApproveRedaction {
            record: cid(1).into(),
            position,
        }),
        &supervisor(),
    )
    .await
    .expect("approve");
    let hash = w.log.read_all(position, 1).await.expect("read")[0].hash;
    w.log.redact(position, hash).await.expect("redact");
}

/// No readable row of the file holds `text`, and searching for it finds nobody.
async fn nowhere(p: &Projections, text: &str) {
    let state = p.citizen(cid(1)).await.expect("read").expect("row").state;
    let json = serde_json::to_string(&state).expect("json");
    assert!(!json.contains(text), "{json}");
    let found = p
        .search_citizens(
            &CitizenFilter {
                name: Some(text.to_owned()),
                ..CitizenFilter::default()
            },
            10,
            None,
        )
        .await
        .expect("search");
    assert!(found.edges.is_empty(), "{text} still found");
}

#[tokio::test]
async fn a_redacted_record_reads_redacted_live_after_a_rebuild_and_per_batch() {
    let w = World::new();
    w.run(register_citizen(
        1,
        ("Nguyễn", "Văn", "Hoà"),
        Sex::Male,
        1980,
    ))
    .await;
    w.run(move_to(1, "11311", "2010-01-01")).await;
    let stream: citydb_log::StreamId = RecordId::from(cid(1)).to_string().parse().expect("stream");
    let history = w
        .log
        .read_stream(&stream, 0, citydb_log::Direction::Forward, 10)
        .await
        .expect("read");
    let (registered, moved) = (history[0].position, history[1].position);
    let p = w.manual("live.db").await;
    p.catch_up().await.expect("catch up");
    let before = p.citizen(cid(1)).await.expect("read").expect("row").state;
    assert_eq!(before.name.given(), "Hoà");

    redact(&w, moved).await;
    redact(&w, registered).await;
    p.catch_up().await.expect("catch up");
    let after = p.citizen(cid(1)).await.expect("read").expect("row").state;
    assert_eq!(after.name.given(), PLACEHOLDER);
    let residence = after.permanent_residence.as_ref().expect("residence");
    assert_eq!(residence.address, PLACEHOLDER);
    assert_eq!(
        residence.commune,
        before.permanent_residence.unwrap().commune
    );
    assert_eq!(
        Some(Record::Citizen(after)),
        w.replayed(cid(1).into()).await
    );
    nowhere(&p, "Hoà").await;
    nowhere(&p, "Lạch Tray").await;
    assert!(p.failures(None, 10).await.expect("failures").is_empty());
    let digest = p.digest().await.expect("digest");

    // A rebuild (the bulk path) meets the blanked events before their approvals.
    p.rebuild().await.expect("rebuild");
    assert_eq!(p.digest().await.expect("digest"), digest);
    nowhere(&p, "Hoà").await;
    assert!(p.failures(None, 10).await.expect("failures").is_empty());
    // So does the per-batch path, a batch at a time.
    let other = w
        .projections(
            "per-batch.db",
            ProjectionConfig {
                follow: false,
                batch_size: 1,
                ..ProjectionConfig::default()
            },
        )
        .await;
    other.catch_up().await.expect("catch up");
    assert_eq!(other.digest().await.expect("digest"), digest);
    assert!(other.failures(None, 10).await.expect("failures").is_empty());
    // Re-folding again at a node's start changes nothing.
    assert_eq!(p.refold_redacted().await.expect("refold"), 1);
    assert_eq!(p.digest().await.expect("digest"), digest);
}
