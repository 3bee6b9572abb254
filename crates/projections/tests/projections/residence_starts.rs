//! Residence starts as known now (issue 16, item 4): moves, corrections that fix the past or
//! change from a date, direct or approved, a rejected proposal, a merge and a redaction, read
//! back a month of one commune at a time, page by page.

use citydb_domain::redaction::{ApproveRedaction, ProposeRedaction};
use citydb_log::{Direction, StreamId};

use super::*;

const X: &str = "11311";
const Y: &str = "10507";

/// Citizen `n`'s residence of `kind` as its JSON field value (the address [`move_to`] gives).
fn lived(n: u128, commune: &str, since: &str) -> serde_json::Value {
    json!({ "commune": commune, "address": format!("Số {n} Lạch Tray"), "since": since })
}

fn correction(n: u128) -> CorrectionId {
    CorrectionId(uuid::Uuid::from_u128(0xF000 + n))
}

fn temporary(n: u128, commune: &str, since: &str) -> Command {
    Command::ChangeResidence(citizen::ChangeResidence {
        citizen: cid(n),
        kind: ResidenceKind::Temporary,
        commune: unit(commune),
        address: format!("Số {n} Lạch Tray"),
        since: date(since),
    })
}

fn correct(n: u128, field: &str, old: serde_json::Value, new: serde_json::Value) -> Command {
    Command::CorrectRecord(command::CorrectRecord {
        record: cid(n).into(),
        changes: vec![fc(field, old, new)],
        reason: "sai địa chỉ".to_owned(),
        legal_basis: basis(),
    })
}

fn propose(n: u128, field: &str, old: serde_json::Value, new: serde_json::Value) -> Command {
    Command::ProposeCorrection(command::ProposeCorrection {
        record: cid(n).into(),
        correction: correction(n),
        changes: vec![fc(field, old, new)],
        reason: "sai địa chỉ".to_owned(),
        legal_basis: basis(),
    })
}

async fn approve(w: &World, n: u128) {
    w.try_run_as(
        &Command::ApproveCorrection(command::ApproveCorrection {
            record: cid(n).into(),
            correction: correction(n),
        }),
        &supervisor(),
    )
    .await
    .expect("approve");
}

/// Runs `command` with `effective_at` in its events' metadata.
async fn run_from(w: &World, command: Command, effective_at: &str) {
    w.try_run_at(&command, &steward(), Some(date(effective_at)))
        .await
        .expect("command");
}

/// Redacts (proposes, approves as a supervisor, blanks as the registry does) the event at
/// `position` of citizen `n`'s stream.
async fn redact(w: &World, n: u128, position: u64) {
    let order = LegalBasis {
        document_number: "15/2026/QĐ-TA".to_owned(),
        document_date: date("2026-03-02"),
    };
    w.run(Command::ProposeRedaction(ProposeRedaction {
        record: cid(n).into(),
        position,
        reason: "court order".to_owned(),
        legal_basis: order,
    }))
    .await;
    w.try_run_as(
        &Command::ApproveRedaction(ApproveRedaction {
            record: cid(n).into(),
            position,
        }),
        &supervisor(),
    )
    .await
    .expect("approve redaction");
    let hash = w.log.read_all(position, 1).await.expect("read")[0].hash;
    w.log.redact(position, hash).await.expect("redact");
}

/// The log position of citizen `n`'s event at stream version `version`.
async fn position_of(w: &World, n: u128, version: u64) -> u64 {
    let stream: StreamId = RecordId::from(cid(n)).to_string().parse().expect("stream");
    w.log
        .read_stream(&stream, version, Direction::Forward, 1)
        .await
        .expect("read")[0]
        .position
}

/// The residence history the tests (and the bulk path's parity test) read, on citizens 50-59:
/// - 50 moves into X in March and away to Y in May (still in March's feed);
/// - 51's move into X in March is corrected, fixing the past, to Y;
/// - 52's move into X in January is corrected from 20 March on to Y (both rows stay);
/// - 53's move into X on 12 March is corrected by an approved proposal fixing the past to 1 March;
/// - 54's temporary residence in Y is changed by an approved proposal from 1 June on to X;
/// - 55 moves into X, away, and back within March (two rows in March);
/// - 56's proposal to move its March start is rejected (nothing changes);
/// - 58 is merged into 57, both having moved into X in March;
/// - 59's move into X in March is redacted (its address blanked; the row is kept).
pub(super) async fn residence_history(w: &World) {
    for n in 50..60u128 {
        w.run(register_citizen(n, ("Đỗ", "Văn", "Khoa"), Sex::Male, 1990))
            .await;
    }
    w.run(move_to(50, X, "2025-03-10")).await;
    w.run(move_to(50, Y, "2025-05-02")).await;

    w.run(move_to(51, X, "2025-03-05")).await;
    w.run(correct(
        51,
        "permanent_residence",
        lived(51, X, "2025-03-05"),
        lived(51, Y, "2025-03-05"),
    ))
    .await;

    w.run(move_to(52, X, "2025-01-15")).await;
    run_from(
        w,
        correct(
            52,
            "permanent_residence",
            lived(52, X, "2025-01-15"),
            lived(52, Y, "2025-03-20"),
        ),
        "2025-03-20",
    )
    .await;

    w.run(move_to(53, X, "2025-03-12")).await;
    w.run(propose(
        53,
        "permanent_residence",
        lived(53, X, "2025-03-12"),
        lived(53, X, "2025-03-01"),
    ))
    .await;
    approve(w, 53).await;

    w.run(temporary(54, Y, "2025-02-01")).await;
    run_from(
        w,
        propose(
            54,
            "temporary_residence",
            lived(54, Y, "2025-02-01"),
            lived(54, X, "2025-06-01"),
        ),
        "2025-06-01",
    )
    .await;
    approve(w, 54).await;

    w.run(move_to(55, X, "2025-03-01")).await;
    w.run(move_to(55, Y, "2025-03-15")).await;
    w.run(move_to(55, X, "2025-03-28")).await;

    w.run(move_to(56, X, "2025-03-07")).await;
    w.run(propose(
        56,
        "permanent_residence",
        lived(56, X, "2025-03-07"),
        lived(56, X, "2025-03-08"),
    ))
    .await;
    w.try_run_as(
        &Command::RejectCorrection(command::RejectCorrection {
            record: cid(56).into(),
            correction: correction(56),
            reason: "the register is right".to_owned(),
        }),
        &supervisor(),
    )
    .await
    .expect("reject");

    w.run(move_to(57, X, "2025-03-20")).await;
    w.run(move_to(58, X, "2025-03-21")).await;
    w.run(Command::MergeCitizens(MergeCitizens {
        survivor: cid(57),
        duplicate: cid(58),
        reason: "two records of one person".to_owned(),
        legal_basis: basis(),
    }))
    .await;

    w.run(move_to(59, X, "2025-03-30")).await;
    let moved = position_of(w, 59, 1).await;
    redact(w, 59, moved).await;
}

type Row = (CitizenId, ResidenceKind, String);

/// Every start of `commune` in `month` (`YYYY-MM`), of `kind` if given, walked two at a time.
pub(super) async fn feed(
    p: &Projections,
    commune: &str,
    month: &str,
    kind: Option<ResidenceKind>,
) -> Vec<Row> {
    let from = date(&format!("{month}-01"));
    let until = if from.month() == 12 {
        date(&format!("{}-01-01", from.year() + 1))
    } else {
        date(&format!("{}-{:02}-01", from.year(), from.month() + 1))
    };
    let filter = ResidenceStartFilter {
        commune: unit(commune),
        from,
        until,
        kind,
    };
    let mut rows = Vec::new();
    let mut after = None;
    loop {
        let page = p
            .residence_starts(&filter, 2, after.clone())
            .await
            .expect("page");
        assert!(page.edges.len() <= 2);
        for edge in &page.edges {
            assert_eq!(edge.node.commune, unit(commune));
            rows.push((
                edge.node.citizen.state.id,
                edge.node.kind,
                edge.node.since.to_string(),
            ));
        }
        if !page.has_next_page {
            return rows;
        }
        after = page.end_cursor().cloned();
    }
}

fn row(n: u128, kind: ResidenceKind, since: &str) -> Row {
    (cid(n), kind, since.to_owned())
}

use ResidenceKind::{Permanent, Temporary};

/// What [`residence_history`] leaves in the feed, as known now.
async fn check(p: &Projections) {
    assert_eq!(
        feed(p, X, "2025-03", None).await,
        [
            row(53, Permanent, "2025-03-01"),
            row(55, Permanent, "2025-03-01"),
            row(56, Permanent, "2025-03-07"),
            row(50, Permanent, "2025-03-10"),
            row(57, Permanent, "2025-03-20"),
            row(58, Permanent, "2025-03-21"),
            row(55, Permanent, "2025-03-28"),
            row(59, Permanent, "2025-03-30"),
        ],
        "a move away keeps the start (50, 55); a fix of the past moves it (53) or takes it \
         away (51); a rejected proposal changes nothing (56); a merged duplicate keeps its own \
         (58); a redaction leaves the start (59)"
    );
    assert_eq!(
        feed(p, Y, "2025-03", None).await,
        [
            row(51, Permanent, "2025-03-05"),
            row(55, Permanent, "2025-03-15"),
            row(52, Permanent, "2025-03-20"),
        ],
        "a fix of the past starts where it says (51); a change from a date starts then (52)"
    );
    assert_eq!(
        feed(p, X, "2025-01", None).await,
        [row(52, Permanent, "2025-01-15")],
        "a change from a date keeps the old start"
    );
    assert_eq!(
        feed(p, Y, "2025-05", None).await,
        [row(50, Permanent, "2025-05-02")]
    );
    assert_eq!(
        feed(p, X, "2025-06", None).await,
        [row(54, Temporary, "2025-06-01")],
        "an approval changing from a date starts on the proposal's effective_at"
    );
    assert_eq!(
        feed(p, Y, "2025-02", Some(Temporary)).await,
        [row(54, Temporary, "2025-02-01")],
        "and keeps the old start"
    );
    assert_eq!(feed(p, Y, "2025-02", Some(Permanent)).await, []);
    let merged = feed(p, X, "2025-03", None).await;
    let duplicate = p.citizen(cid(58)).await.expect("read").expect("row");
    assert_eq!(duplicate.state.merged_into, Some(cid(57)));
    assert!(merged.contains(&row(58, Permanent, "2025-03-21")));
}

#[tokio::test]
async fn the_feed_lists_starts_as_known_now() {
    let w = World::new();
    let p = w.manual("live.db").await;
    // Live: batch by batch as the history is written, so each event meets the rows before it.
    w.run(register_citizen(99, ("Vũ", "", "An"), Sex::Female, 1999))
        .await;
    p.catch_up().await.expect("catch up");
    residence_history(&w).await;
    p.catch_up().await.expect("catch up");
    check(&p).await;
    // From scratch, one event per batch.
    let q = w.manual("one-by-one.db").await;
    while q.project_batch(1).await.expect("batch") > 0 {}
    check(&q).await;
    assert_eq!(
        q.digest().await.expect("digest"),
        p.digest().await.expect("digest")
    );
}

#[tokio::test]
async fn proposals_are_kept_only_until_closed_and_never_with_an_address() {
    let w = World::new();
    residence_history(&w).await;
    let p = w.manual("proposals.db").await;
    p.catch_up().await.expect("catch up");
    let conn = rusqlite::Connection::open(w.path("proposals.db")).expect("open");
    let kept: i64 = conn
        .query_row("SELECT count(*) FROM residence_proposals", [], |r| r.get(0))
        .expect("count");
    assert_eq!(kept, 0, "approved and rejected proposals are not kept");
    // A pending one is kept, with the residences' communes and dates but no address.
    let w2 = World::new();
    w2.run(register_citizen(61, ("Đỗ", "", "Lan"), Sex::Female, 1990))
        .await;
    w2.run(move_to(61, X, "2025-04-01")).await;
    w2.run(propose(
        61,
        "permanent_residence",
        lived(61, X, "2025-04-01"),
        lived(61, Y, "2025-04-01"),
    ))
    .await;
    let p2 = w2.manual("pending.db").await;
    p2.catch_up().await.expect("catch up");
    let conn = rusqlite::Connection::open(w2.path("pending.db")).expect("open");
    let (from, fixes): (Option<String>, String) = conn
        .query_row(
            "SELECT effective_at, fixes FROM residence_proposals",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("a pending proposal is kept");
    assert_eq!(from, None, "no effective_at: it fixes the past");
    assert!(fixes.contains(Y) && !fixes.contains("Lạch Tray"), "{fixes}");
    assert_eq!(
        feed(&p2, X, "2025-04", None).await,
        [row(61, Permanent, "2025-04-01")],
        "a pending proposal changes no start"
    );
}

#[tokio::test]
async fn a_redacted_move_keeps_its_start_through_a_rebuild() {
    let w = World::new();
    residence_history(&w).await;
    let live = w.manual("live.db").await;
    live.catch_up().await.expect("catch up");
    // A rebuild meets 59's move blanked: the bulk path cannot fold it, so the row comes from
    // the re-fold of the redacted stream with its replacement.
    let rebuilt = w.manual("rebuilt.db").await;
    rebuilt.rebuild().await.expect("rebuild");
    assert!(rebuilt.bulk_loaded() > 0);
    for p in [&live, &rebuilt] {
        let march = feed(p, X, "2025-03", None).await;
        assert!(
            march.contains(&row(59, Permanent, "2025-03-30")),
            "{march:?}"
        );
    }
    assert_eq!(
        rebuilt.digest().await.expect("digest"),
        live.digest().await.expect("digest")
    );
    // Nothing of a blanked payload is in the tables of the feed.
    let conn = rusqlite::Connection::open(w.path("rebuilt.db")).expect("open");
    let text: String = conn
        .query_row(
            "SELECT group_concat(commune || since || kind, ' ') FROM residence_starts",
            [],
            |r| r.get(0),
        )
        .expect("rows");
    assert!(!text.contains("Lạch Tray"), "{text}");
}

#[tokio::test]
async fn a_cursor_of_another_order_is_refused() {
    let w = World::new();
    residence_history(&w).await;
    let p = w.manual("cursor.db").await;
    p.catch_up().await.expect("catch up");
    // A name search's cursor holds a name, not a date.
    w.run(register_citizen(70, ("Đỗ", "Văn", "Khoa"), Sex::Male, 1990))
        .await;
    p.catch_up().await.expect("catch up");
    let search = p
        .search_citizens(
            &CitizenFilter {
                name: Some("Đỗ Văn".to_owned()),
                ..CitizenFilter::default()
            },
            1,
            None,
        )
        .await
        .expect("search");
    let foreign = search.end_cursor().cloned().expect("a cursor");
    let filter = ResidenceStartFilter {
        commune: unit(X),
        from: date("2025-03-01"),
        until: date("2025-04-01"),
        kind: None,
    };
    let refused = p.residence_starts(&filter, 2, Some(foreign)).await;
    assert!(
        matches!(refused, Err(ProjectionError::InvalidCursor)),
        "{refused:?}"
    );
}
