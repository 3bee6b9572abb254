use serde_json::json;

use super::*;
use crate::chain::LogVerifier;
use crate::{ExpectedVersion, Metadata, NewEvent, StreamId};

fn stream(category: &str, n: u128) -> StreamId {
    StreamId::new(category, Uuid::from_u128(n)).expect("a valid stream id")
}

fn event(n: u64) -> NewEvent {
    NewEvent::with_id(
        Uuid::from_u128(0x1000 + u128::from(n)),
        "TestEvent",
        1,
        &json!({ "n": n }),
        &Metadata::default(),
    )
    .expect("serialisable")
}

fn append(stream: &StreamId, expected: ExpectedVersion, ns: &[u64]) -> StreamAppend {
    StreamAppend::new(
        stream.clone(),
        expected,
        ns.iter().copied().map(event).collect(),
    )
}

/// A whole log kept in memory, as a store would keep it: the plans' rows, decoded.
#[derive(Default)]
struct Log {
    state: KnownState,
    tip: Option<Tip>,
    events: Vec<RecordedEvent>,
}

impl Log {
    fn tip(&self) -> Tip {
        self.tip.unwrap_or(Tip::EMPTY)
    }

    fn apply(&mut self, appends: &[StreamAppend], now: i64) -> Result<AppendOutcome, LogError> {
        let plan = plan_append(appends, self.tip(), now, &mut self.state)?;
        self.take(&plan);
        match plan.written {
            Written::Append(outcome) => Ok(outcome),
            Written::Copy(_) => panic!("an append planned as a copy"),
        }
    }

    fn take(&mut self, plan: &Plan<'_>) {
        self.state.record(plan);
        self.tip = Some(plan.tip);
        for row in &plan.rows {
            self.events.push(decode(row).expect("decodable"));
        }
    }

    fn verify(&self) -> bool {
        let mut verifier = LogVerifier::new(None);
        self.events
            .iter()
            .all(|e| verifier.check(&EventView::from(e)).is_ok())
            && verifier.finish().is_intact()
    }
}

#[test]
fn appends_get_gapless_positions_versions_and_a_chain_that_verifies() {
    let (a, b) = (stream("citizen", 1), stream("business", 2));
    let mut log = Log::default();
    let out = log
        .apply(&[append(&a, ExpectedVersion::NoStream, &[0, 1])], 100)
        .expect("appended");
    assert_eq!((out.first_position, out.last_position), (Some(0), Some(1)));
    let out = log
        .apply(
            &[
                append(&a, ExpectedVersion::Exact(1), &[2]),
                append(&b, ExpectedVersion::Any, &[3, 4]),
            ],
            200,
        )
        .expect("appended");
    assert_eq!((out.first_position, out.last_position), (Some(2), Some(4)));
    assert_eq!(out.streams[0].first_version, Some(2));
    assert_eq!(out.streams[1].current_version, Some(1));
    let positions: Vec<u64> = log.events.iter().map(|e| e.position).collect();
    assert_eq!(positions, [0, 1, 2, 3, 4]);
    let versions: Vec<u64> = log.events.iter().map(|e| e.stream_version).collect();
    assert_eq!(versions, [0, 1, 2, 0, 1]);
    assert!(log.verify(), "the planned chain does not verify");
    assert_eq!(log.tip().next_position, 5);
    assert_eq!(log.tip().hash, log.events[4].hash);
}

#[test]
fn recorded_at_never_goes_back_even_when_the_clock_does() {
    let s = stream("citizen", 1);
    let mut log = Log::default();
    log.apply(&[append(&s, ExpectedVersion::Any, &[0])], 500)
        .expect("appended");
    log.apply(&[append(&s, ExpectedVersion::Any, &[1, 2])], 100)
        .expect("appended");
    let times: Vec<i64> = log.events.iter().map(|e| e.recorded_at).collect();
    assert_eq!(times, [500, 500, 500]);
}

#[test]
fn a_wrong_expected_version_is_typed_and_plans_nothing() {
    let (a, b) = (stream("citizen", 1), stream("citizen", 2));
    let mut log = Log::default();
    log.apply(&[append(&a, ExpectedVersion::Any, &[0])], 1)
        .expect("appended");
    let before = log.tip();
    let err = log
        .apply(
            &[
                append(&b, ExpectedVersion::NoStream, &[1]),
                append(&a, ExpectedVersion::Exact(4), &[2]),
            ],
            2,
        )
        .expect_err("stream a is at version 0");
    assert_eq!(
        err,
        LogError::WrongExpectedVersion {
            stream: a.clone(),
            expected: ExpectedVersion::Exact(4),
            actual: Some(0),
        }
    );
    assert_eq!(log.tip(), before);
    assert_eq!(log.events.len(), 1);
}

#[test]
fn a_version_check_without_events_writes_nothing_and_keeps_the_tip() {
    let s = stream("citizen", 1);
    let mut log = Log::default();
    log.apply(&[append(&s, ExpectedVersion::Any, &[0])], 10)
        .expect("appended");
    let before = log.tip();
    let out = log
        .apply(&[append(&s, ExpectedVersion::Exact(0), &[])], 99)
        .expect("the version matches");
    assert_eq!((out.first_position, out.last_position), (None, None));
    assert_eq!(out.streams[0].current_version, Some(0));
    assert_eq!(log.tip(), before);
}

#[test]
fn a_resend_is_answered_with_the_original_positions_and_a_partial_one_conflicts() {
    let (a, b) = (stream("citizen", 1), stream("citizen", 2));
    let mut log = Log::default();
    let first = log
        .apply(&[append(&a, ExpectedVersion::NoStream, &[0, 1])], 1)
        .expect("appended");
    let again = log
        .apply(&[append(&a, ExpectedVersion::NoStream, &[0, 1])], 2)
        .expect("a faithful re-send");
    assert!(again.already_recorded);
    assert_eq!(again.first_position, first.first_position);
    assert_eq!(again.last_position, first.last_position);
    assert_eq!(log.events.len(), 2);

    let partial = log.apply(&[append(&a, ExpectedVersion::Any, &[1, 7])], 3);
    assert!(
        matches!(partial, Err(LogError::IdempotencyConflict { event_id, .. }) if event_id == event(7).event_id),
        "{partial:?}"
    );
    let elsewhere = log.apply(&[append(&b, ExpectedVersion::Any, &[0])], 3);
    assert!(
        matches!(&elsewhere, Err(LogError::IdempotencyConflict { reason, .. }) if reason.contains("citizen-")),
        "{elsewhere:?}"
    );
}

/// A store that looks ids up one query at a time: counts its lookups.
struct Counting {
    inner: KnownState,
    lookups: usize,
}

impl LogState for Counting {
    const CHECKS_EVERY_ID: bool = false;
    fn stream_tip(&mut self, stream: &str) -> Result<Option<(u64, Hash)>, LogError> {
        self.inner.stream_tip(stream)
    }
    fn recorded(&mut self, event_id: Uuid) -> Result<Option<Recorded>, LogError> {
        self.lookups += 1;
        self.inner.recorded(event_id)
    }
}

#[test]
fn a_store_that_queries_ids_looks_up_only_the_first_event_of_a_new_request() {
    let s = stream("citizen", 1);
    let mut state = Counting {
        inner: KnownState::default(),
        lookups: 0,
    };
    let appends = [append(&s, ExpectedVersion::Any, &[0, 1, 2, 3])];
    let plan = plan_append(&appends, Tip::EMPTY, 1, &mut state).expect("planned");
    assert_eq!(plan.rows.len(), 4);
    assert_eq!(state.lookups, 1);
    state.inner.record(&plan);
    state.lookups = 0;
    let again = plan_append(&appends, plan.tip, 2, &mut state).expect("a re-send");
    assert!(again.rows.is_empty());
    // The first lookup finds it recorded; then every event is looked up.
    assert_eq!(state.lookups, 1 + 4);
}

#[test]
fn a_copy_keeps_the_recorded_rows_and_moves_the_tip_to_its_last() {
    let s = stream("citizen", 1);
    let mut source = Log::default();
    source
        .apply(&[append(&s, ExpectedVersion::Any, &[0, 1, 2])], 7)
        .expect("appended");
    let mut target = Log::default();
    let batch = source.events[..2].to_vec();
    let plan = plan_copy(&batch, Tip::EMPTY, &mut target.state, 1 << 20).expect("continues");
    assert_eq!(plan.rows.len(), 2);
    assert_eq!(plan.tip.next_position, 2);
    assert_eq!(plan.tip.hash, source.events[1].hash);
    assert_eq!(plan.streams, [(s.as_str(), 1, source.events[1].hash)]);
    target.take(&plan);
    assert_eq!(target.events, batch);

    // Position 2 again: not the continuation of the target.
    let refused = plan_copy(&batch[1..], target.tip(), &mut target.state, 1 << 20);
    assert!(
        matches!(refused, Err(LogError::CopyRefused { position: 1, .. })),
        "{refused:?}"
    );
    // Then the appends continue the copied chain.
    target
        .apply(&[append(&s, ExpectedVersion::Exact(1), &[9])], 8)
        .expect("appended after the copy");
    assert!(target.verify());
}

#[test]
fn decoding_refuses_a_stored_stream_id_that_is_not_canonical() {
    let s = stream("citizen", 1);
    let mut log = Log::default();
    log.apply(&[append(&s, ExpectedVersion::Any, &[0])], 1)
        .expect("appended");
    let mut view = EventView::from(&log.events[0]);
    assert_eq!(decode(&view).as_ref(), Ok(&log.events[0]));
    view.envelope.stream_id = "Citizen-not a uuid";
    assert!(matches!(
        decode(&view),
        Err(LogError::Corrupted { position: 0, .. })
    ));
}

#[test]
fn a_tip_read_from_a_store_must_hold_a_32_byte_hash() {
    assert_eq!(
        Tip::after(4, &[7; 32], 9),
        Ok(Tip {
            next_position: 5,
            hash: Hash([7; 32]),
            recorded_at: 9
        })
    );
    assert!(matches!(
        Tip::after(4, &[7; 31], 9),
        Err(LogError::Corrupted { position: 4, .. })
    ));
    assert_eq!(Tip::EMPTY.last(), None);
}
