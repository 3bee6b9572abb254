//! The behaviour every [`EventLog`] backend must show, as one async function per behaviour, run
//! against each backend through [`conformance_tests!`](crate::conformance_tests).
//!
//! A backend provides a [`Backend`]: a way to open its store (the same store again after the
//! last handle is dropped, to test restarts) and to tamper with the stored bytes directly, to
//! prove that verification catches it. Each test gets a fresh backend.
//!
//! [`crash`]: the SIGKILL crash test, for any backend that can be opened from another process
//! ([`crash_tests!`](crate::crash_tests)).

mod copy;
pub mod crash;
mod redact;

pub use copy::{
    copy_in_is_serialised_with_appends, copy_in_refusals_leave_the_log_unchanged,
    copy_in_then_appends_continue, copy_keeps_redactions, copy_log_copies_identically,
    copy_log_refuses_a_corrupted_source, copy_log_resumes,
};
pub use redact::{
    redact_blanks_the_payload_and_keeps_every_hash, redact_is_idempotent_and_durable,
    redact_refuses_a_missing_position_or_another_hash,
};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use uuid::Uuid;

use crate::bulk::StreamFilter;
use crate::chain::{ChainLink, Envelope, EventView};
use crate::{
    Breach, CopyRefusal, Direction, EventLog, ExpectedVersion, Hash, LogError, LogHead, Metadata,
    NewEvent, READ_BATCH, RecordedEvent, StreamAppend, StreamId, copy_log, subscribe,
};

/// A change made behind the log's back, straight in its storage.
#[derive(Clone, Copy, Debug)]
pub enum Tamper {
    /// Flip one bit of the stored data of the event at this position.
    FlipDataByte { position: u64 },
    /// Flip one bit of the stored metadata.
    FlipMetadataByte { position: u64 },
    /// Delete the event, leaving the others where they are.
    Delete { position: u64 },
    /// Exchange the contents of the events at `position` and `position + 1`.
    SwapWithNext { position: u64 },
    /// Shift every event after `after` one position up and insert, at `after + 1`, a forged event
    /// (new id, stream `forged-…`) whose own hashes are correctly computed.
    InsertForged { after: u64 },
    /// Delete every event after `keep_through`.
    TruncateAfter { keep_through: u64 },
    /// Blank the payload as a court-ordered redaction does: the stored data becomes absent
    /// (NULL), its `data_hash` stays.
    Redact { position: u64 },
}

/// A backend under test.
#[async_trait]
pub trait Backend: Send + Sync {
    type Log: EventLog;
    /// Opens the store; after every handle of a previous `open` is dropped, the same store again.
    async fn open(&self) -> Arc<Self::Log>;
    /// Opens a second store of the same backend, independent of the first (the target of a
    /// copy): empty at first; after every handle of a previous `open_second` is dropped, the
    /// same store again.
    async fn open_second(&self) -> Arc<Self::Log>;
    /// Applies `tamper` directly to the stored bytes.
    async fn tamper(&self, tamper: Tamper);
}

/// Runs every conformance test against the backend made by `$make` (an async fn returning a
/// [`Backend`]). Expands to a module of `#[tokio::test]`s.
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!($make, run_if = $crate::conformance::always);
    };
    // `$run_if(test_name)` false: the backend is not installed here; it reported the skip
    // itself and the test returns (e.g. PostgreSQL's testkit skip, see citydb-postgres).
    ($make:path, run_if = $run_if:path) => {
        $crate::conformance_tests!(@tests $make, $run_if;
            append_and_read_stream, read_stream_to_end, read_backward, expected_versions, multi_stream_all_or_nothing,
            version_check_without_events, idempotent_by_event_id, global_order_is_gapless,
            concurrent_writers_conflict_correctly, group_commit_isolates_failures,
            subscription_catches_up_then_goes_live, subscription_from_the_middle, subscription_reads_ahead,
            reopen_after_restart, rejects_bad_input, rejects_bad_input_in_multi_append,
            detects_changed_data, detects_changed_metadata, detects_deleted_event,
            detects_reordered_pair, detects_inserted_event, detects_truncated_tail,
            verify_stream_scopes_to_the_stream, held_streams_lists_every_stream, position_at_time,
            chain_is_recomputable,
            copy_in_then_appends_continue, copy_in_refusals_leave_the_log_unchanged,
            copy_in_is_serialised_with_appends, copy_log_copies_identically, copy_log_resumes,
            copy_log_refuses_a_corrupted_source, copy_keeps_redactions,
            redact_blanks_the_payload_and_keeps_every_hash, redact_is_idempotent_and_durable,
            redact_refuses_a_missing_position_or_another_hash,
        );
    };
    (@tests $make:path, $run_if:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if !$run_if(stringify!($name)) {
                    return;
                }
                let backend = $make().await;
                $crate::conformance::$name(&backend).await;
            }
        )*
    };
}

/// The default condition of [`conformance_tests!`]: every backend runs.
pub fn always(_test: &str) -> bool {
    true
}

fn stream(category: &str) -> StreamId {
    StreamId::new(category, Uuid::now_v7()).unwrap()
}

/// What [`Tamper::FlipDataByte`] and [`Tamper::FlipMetadataByte`] make of the stored JSON text
/// of an [`event`]: one digit or letter changed, still valid JSON.
pub fn flipped(text: &str) -> String {
    text.replacen("conformance", "conformancf", 1)
        .replacen("\"n\":", "\"m\":", 1)
}

/// The event [`Tamper::InsertForged`] inserts at `position`, after an event whose hash is
/// `prev_log` and whose `recorded_at` it takes: in a stream of its own (`forged-…`), with data
/// and metadata `{}`, and its own hashes correctly computed.
pub fn forged_event(position: u64, prev_log: Hash, recorded_at: i64) -> RecordedEvent {
    let stream_id = StreamId::new("forged", Uuid::now_v7()).expect("a valid stream id");
    let event_id = Uuid::now_v7();
    let link = ChainLink::compute(
        &Envelope {
            position,
            stream_id: stream_id.as_str(),
            stream_version: 0,
            event_id,
            event_type: "Forged",
            schema_version: 1,
            recorded_at,
            metadata: b"{}",
        },
        b"{}",
        Hash::ZERO,
        prev_log,
    );
    RecordedEvent {
        position,
        stream_id,
        stream_version: 0,
        event_id,
        event_type: "Forged".into(),
        schema_version: 1,
        recorded_at,
        data: b"{}".to_vec(),
        metadata: b"{}".to_vec(),
        data_hash: link.data_hash,
        prev_stream_hash: link.prev_stream_hash,
        prev_log_hash: link.prev_log_hash,
        hash: link.hash,
    }
}

/// An event of realistic shape and a distinct payload.
pub fn event(n: u64) -> NewEvent {
    NewEvent::new(
        "TestEvent",
        1,
        &json!({ "n": n, "name": "Nguyễn Thị Hoà", "commune": "11311" }),
        &Metadata {
            actor: Some("conformance".into()),
            reason: Some("test".into()),
            ..Metadata::default()
        },
    )
    .unwrap()
}

fn events(range: std::ops::Range<u64>) -> Vec<NewEvent> {
    range.map(event).collect()
}

async fn append_one<L: EventLog + ?Sized>(
    log: &L,
    s: &StreamId,
    expected: ExpectedVersion,
    evs: Vec<NewEvent>,
) -> Result<crate::AppendOutcome, LogError> {
    log.append(vec![StreamAppend::new(s.clone(), expected, evs)])
        .await
}

async fn read_everything<L: EventLog + ?Sized>(log: &L) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    loop {
        let batch = log.read_all(out.len() as u64, 100).await.unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

/// Appends `n` events spread over a few streams; returns the streams.
async fn fill<L: EventLog + ?Sized>(log: &L, n: u64) -> Vec<StreamId> {
    let streams: Vec<_> = (0..3).map(|_| stream("citizen")).collect();
    for i in 0..n {
        let s = &streams[(i % 3) as usize];
        append_one(log, s, ExpectedVersion::Any, vec![event(i)])
            .await
            .unwrap();
    }
    streams
}

async fn assert_intact<L: EventLog + ?Sized>(log: &L) {
    let report = log.verify_log(None).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.corruption);
}

pub async fn append_and_read_stream<B: Backend>(b: &B) {
    let log = b.open().await;
    let s = stream("citizen");
    assert_eq!(log.stream_version(&s).await.unwrap(), None);
    assert!(
        log.read_stream(&s, 0, Direction::Forward, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let sent = events(0..5);
    let out = append_one(&*log, &s, ExpectedVersion::NoStream, sent.clone())
        .await
        .unwrap();
    assert_eq!(out.first_position, Some(0));
    assert_eq!(out.last_position, Some(4));
    assert_eq!(out.streams[0].first_version, Some(0));
    assert_eq!(out.streams[0].current_version, Some(4));
    assert!(!out.already_recorded);
    let read = log
        .read_stream(&s, 0, Direction::Forward, 100)
        .await
        .unwrap();
    assert_eq!(read.len(), 5);
    for (i, (r, e)) in read.iter().zip(&sent).enumerate() {
        assert_eq!(r.stream_version, i as u64);
        assert_eq!(r.position, i as u64);
        assert_eq!(r.event_id, e.event_id);
        assert_eq!(r.event_type, e.event_type);
        assert_eq!(r.data, e.data, "data bytes must come back exactly");
        assert_eq!(r.metadata, e.metadata);
        assert_eq!(&r.stream_id, &s);
    }
    let part = log.read_stream(&s, 2, Direction::Forward, 2).await.unwrap();
    assert_eq!(
        part.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        [2, 3]
    );
    assert_eq!(log.stream_version(&s).await.unwrap(), Some(4));
    assert_eq!(log.head().await.unwrap().map(|h| h.position), Some(4));
    assert_eq!(read[4].hash, log.head().await.unwrap().unwrap().hash);
}

/// A whole stream in one call, past [`READ_BATCH`] events and from the middle, with another
/// stream's events between its own in the log.
pub async fn read_stream_to_end<B: Backend>(b: &B) {
    let log = b.open().await;
    let (s, other) = (stream("citizen"), stream("citizen"));
    assert!(log.read_stream_to_end(&s, 0).await.unwrap().is_empty());
    let n = READ_BATCH as u64 + 7;
    append_one(&*log, &s, ExpectedVersion::NoStream, events(0..n))
        .await
        .unwrap();
    append_one(&*log, &other, ExpectedVersion::NoStream, events(0..3))
        .await
        .unwrap();
    append_one(&*log, &s, ExpectedVersion::Exact(n - 1), events(n..n + 2))
        .await
        .unwrap();
    let whole = log.read_stream_to_end(&s, 0).await.unwrap();
    assert_eq!(
        whole.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        (0..n + 2).collect::<Vec<_>>()
    );
    assert!(whole.iter().all(|e| e.stream_id == s));
    assert_eq!(
        whole[n as usize].position,
        n + 3,
        "after the other stream's events"
    );
    let rest = log.read_stream_to_end(&s, n - 1).await.unwrap();
    assert_eq!(
        rest.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        [n - 1, n, n + 1]
    );
    assert_eq!(rest[..], whole[n as usize - 1..]);
    assert!(log.read_stream_to_end(&s, n + 2).await.unwrap().is_empty());
}

pub async fn read_backward<B: Backend>(b: &B) {
    let log = b.open().await;
    let s = stream("parcel");
    append_one(&*log, &s, ExpectedVersion::NoStream, events(0..6))
        .await
        .unwrap();
    let back = log
        .read_stream(&s, u64::MAX, Direction::Backward, 3)
        .await
        .unwrap();
    assert_eq!(
        back.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        [5, 4, 3]
    );
    let back = log
        .read_stream(&s, 1, Direction::Backward, 10)
        .await
        .unwrap();
    assert_eq!(
        back.iter().map(|e| e.stream_version).collect::<Vec<_>>(),
        [1, 0]
    );
}

pub async fn expected_versions<B: Backend>(b: &B) {
    let log = b.open().await;
    let s = stream("business");
    let err = append_one(&*log, &s, ExpectedVersion::StreamExists, vec![event(0)])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LogError::WrongExpectedVersion {
            stream: s.clone(),
            expected: ExpectedVersion::StreamExists,
            actual: None
        }
    );
    let err = append_one(&*log, &s, ExpectedVersion::Exact(0), vec![event(0)])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        LogError::WrongExpectedVersion { actual: None, .. }
    ));
    append_one(&*log, &s, ExpectedVersion::NoStream, vec![event(0)])
        .await
        .unwrap();
    let err = append_one(&*log, &s, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        LogError::WrongExpectedVersion {
            actual: Some(0),
            ..
        }
    ));
    let err = append_one(&*log, &s, ExpectedVersion::Exact(5), vec![event(1)])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        LogError::WrongExpectedVersion {
            actual: Some(0),
            ..
        }
    ));
    append_one(&*log, &s, ExpectedVersion::Exact(0), vec![event(1)])
        .await
        .unwrap();
    append_one(&*log, &s, ExpectedVersion::StreamExists, vec![event(2)])
        .await
        .unwrap();
    append_one(&*log, &s, ExpectedVersion::Any, vec![event(3)])
        .await
        .unwrap();
    assert_eq!(log.stream_version(&s).await.unwrap(), Some(3));
    // Failed appends wrote nothing: positions stayed gapless.
    let all = read_everything(&*log).await;
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
}

pub async fn multi_stream_all_or_nothing<B: Backend>(b: &B) {
    let log = b.open().await;
    let (a, c) = (stream("parcel"), stream("parcel"));
    append_one(&*log, &c, ExpectedVersion::NoStream, vec![event(0)])
        .await
        .unwrap();
    // The second stream's condition fails: the first stream must get nothing either.
    let err = log
        .append(vec![
            StreamAppend::new(a.clone(), ExpectedVersion::NoStream, events(1..3)),
            StreamAppend::new(c.clone(), ExpectedVersion::Exact(7), events(3..4)),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::WrongExpectedVersion { ref stream, .. } if stream == &c));
    assert_eq!(log.stream_version(&a).await.unwrap(), None);
    assert_eq!(log.head().await.unwrap().unwrap().position, 0);
    let out = log
        .append(vec![
            StreamAppend::new(a.clone(), ExpectedVersion::NoStream, events(1..3)),
            StreamAppend::new(c.clone(), ExpectedVersion::Exact(0), events(3..4)),
        ])
        .await
        .unwrap();
    assert_eq!(out.first_position, Some(1));
    assert_eq!(out.last_position, Some(3));
    assert_eq!(out.streams[0].current_version, Some(1));
    assert_eq!(out.streams[1].first_version, Some(1));
    assert_intact(&*log).await;
}

pub async fn version_check_without_events<B: Backend>(b: &B) {
    let log = b.open().await;
    let (target, dependency) = (stream("business"), stream("citizen"));
    append_one(
        &*log,
        &dependency,
        ExpectedVersion::NoStream,
        vec![event(0)],
    )
    .await
    .unwrap();
    let ok = log
        .append(vec![
            StreamAppend::new(target.clone(), ExpectedVersion::NoStream, vec![event(1)]),
            StreamAppend::new(dependency.clone(), ExpectedVersion::Exact(0), vec![]),
        ])
        .await
        .unwrap();
    assert_eq!(ok.streams[1].first_version, None);
    assert_eq!(ok.streams[1].current_version, Some(0));
    assert_eq!(log.stream_version(&dependency).await.unwrap(), Some(0));
    // The dependency moved on: the append that relied on it fails and writes nothing.
    append_one(
        &*log,
        &dependency,
        ExpectedVersion::Exact(0),
        vec![event(2)],
    )
    .await
    .unwrap();
    let err = log
        .append(vec![
            StreamAppend::new(target.clone(), ExpectedVersion::Exact(0), vec![event(3)]),
            StreamAppend::new(dependency.clone(), ExpectedVersion::Exact(0), vec![]),
        ])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        LogError::WrongExpectedVersion {
            actual: Some(1),
            ..
        }
    ));
    assert_eq!(log.stream_version(&target).await.unwrap(), Some(0));
}

pub async fn idempotent_by_event_id<B: Backend>(b: &B) {
    let log = b.open().await;
    let (s, t) = (stream("citizen"), stream("key"));
    let request = vec![
        StreamAppend::new(s.clone(), ExpectedVersion::NoStream, events(0..3)),
        StreamAppend::new(t.clone(), ExpectedVersion::NoStream, events(3..4)),
    ];
    let first = log.append(request.clone()).await.unwrap();
    append_one(&*log, &s, ExpectedVersion::Exact(2), vec![event(9)])
        .await
        .unwrap();
    let head = log.head().await.unwrap();
    // Re-sent after the stream moved on (its expected version no longer holds): still the
    // original answer, and nothing written.
    let again = log.append(request.clone()).await.unwrap();
    assert!(again.already_recorded);
    assert_eq!(again.first_position, first.first_position);
    assert_eq!(again.last_position, first.last_position);
    assert_eq!(again.streams[0].first_version, Some(0));
    assert_eq!(again.streams[0].current_version, Some(2));
    assert_eq!(log.head().await.unwrap(), head);
    // A partial re-send mixed with new events is refused, whichever comes first.
    let mixed = vec![request[0].events[0].clone(), event(11)];
    let err = append_one(&*log, &s, ExpectedVersion::Any, mixed)
        .await
        .unwrap_err();
    assert!(
        matches!(err, LogError::IdempotencyConflict { .. }),
        "{err:?}"
    );
    let mut new_first = vec![event(12)];
    new_first.push(request[0].events[1].clone());
    let err = append_one(&*log, &s, ExpectedVersion::Any, new_first)
        .await
        .unwrap_err();
    assert!(
        matches!(err, LogError::IdempotencyConflict { .. }),
        "{err:?}"
    );
    // The same id in another stream is refused.
    let err = append_one(
        &*log,
        &stream("citizen"),
        ExpectedVersion::Any,
        vec![request[0].events[0].clone()],
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, LogError::IdempotencyConflict { .. }),
        "{err:?}"
    );
    assert_eq!(log.head().await.unwrap(), head);
    assert_intact(&*log).await;
}

pub async fn global_order_is_gapless<B: Backend>(b: &B) {
    let log = b.open().await;
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let s = stream("citizen");
            for i in 0..25u64 {
                append_one(&*log, &s, ExpectedVersion::Any, vec![event(w * 100 + i)])
                    .await
                    .unwrap();
            }
            s
        }));
    }
    let mut streams = Vec::new();
    for t in tasks {
        streams.push(t.await.unwrap());
    }
    let all = read_everything(&*log).await;
    assert_eq!(all.len(), 200);
    let mut versions: HashMap<&StreamId, u64> = HashMap::new();
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e.position, i as u64);
        if i > 0 {
            assert!(
                e.recorded_at >= all[i - 1].recorded_at,
                "time went backwards"
            );
        }
        let v = versions.entry(&e.stream_id).or_insert(0);
        assert_eq!(
            e.stream_version, *v,
            "stream versions must be gapless in log order"
        );
        *v += 1;
    }
    assert!(streams.iter().all(|s| versions[s] == 25));
    assert_intact(&*log).await;
}

pub async fn concurrent_writers_conflict_correctly<B: Backend>(b: &B) {
    let log = b.open().await;
    let s = stream("parcel");
    append_one(&*log, &s, ExpectedVersion::NoStream, vec![event(0)])
        .await
        .unwrap();
    // 16 writers race to append at version 0; exactly one may win.
    let mut tasks = Vec::new();
    for w in 0..16u64 {
        let (log, s) = (log.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            append_one(&*log, &s, ExpectedVersion::Exact(0), vec![event(100 + w)]).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(LogError::WrongExpectedVersion {
                actual: Some(1), ..
            }) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(log.stream_version(&s).await.unwrap(), Some(1));
}

pub async fn group_commit_isolates_failures<B: Backend>(b: &B) {
    let log = b.open().await;
    let shared = stream("citizen");
    append_one(&*log, &shared, ExpectedVersion::NoStream, vec![event(0)])
        .await
        .unwrap();
    // Many requests at once, every third one doomed: the good ones must all commit.
    let mut tasks = Vec::new();
    for w in 0..48u64 {
        let (log, shared) = (log.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            if w % 3 == 0 {
                let r =
                    append_one(&*log, &shared, ExpectedVersion::Exact(99), vec![event(w)]).await;
                (false, r)
            } else {
                let r = append_one(
                    &*log,
                    &stream("citizen"),
                    ExpectedVersion::NoStream,
                    vec![event(w)],
                )
                .await;
                (true, r)
            }
        }));
    }
    for t in tasks {
        let (good, result) = t.await.unwrap();
        assert_eq!(good, result.is_ok(), "{result:?}");
    }
    assert_eq!(read_everything(&*log).await.len(), 1 + 32);
    assert_intact(&*log).await;
}

pub async fn subscription_catches_up_then_goes_live<B: Backend>(b: &B) {
    let log = b.open().await;
    fill(&*log, 30).await;
    let dyn_log: Arc<dyn EventLog> = log.clone();
    let mut sub = subscribe(dyn_log, 0);
    // Writers append concurrently while the subscriber catches up and crosses into live mode.
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let log = log.clone();
        writers.push(tokio::spawn(async move {
            let s = stream("business");
            for i in 0..50u64 {
                let evs = if i % 10 == 0 {
                    events(w * 1000 + i..w * 1000 + i + 3)
                } else {
                    vec![event(w * 1000 + i)]
                };
                append_one(&*log, &s, ExpectedVersion::Any, evs)
                    .await
                    .unwrap();
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    let total = 30 + 4 * (45 + 5 * 3);
    let mut seen = Vec::with_capacity(total);
    while seen.len() < total {
        let e = tokio::time::timeout(Duration::from_secs(20), sub.next())
            .await
            .expect("subscription stalled")
            .unwrap();
        seen.push(e.position);
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(
        seen,
        (0..total as u64).collect::<Vec<_>>(),
        "every event once, in order"
    );
    // Nothing more arrives.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), sub.next())
            .await
            .is_err()
    );
    assert_eq!(sub.position(), total as u64);
}

pub async fn subscription_from_the_middle<B: Backend>(b: &B) {
    let log = b.open().await;
    fill(&*log, 10).await;
    let dyn_log: Arc<dyn EventLog> = log.clone();
    let mut sub = subscribe(dyn_log, 7);
    let batch = sub.next_batch(100).await.unwrap();
    assert_eq!(
        batch.iter().map(|e| e.position).collect::<Vec<_>>(),
        [7, 8, 9]
    );
    assert!(sub.next_batch(100).await.unwrap().is_empty());
    let waiter = tokio::spawn(async move {
        sub.wait().await.unwrap();
        sub.next_batch(100).await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    append_one(
        &*log,
        &stream("citizen"),
        ExpectedVersion::Any,
        vec![event(10)],
    )
    .await
    .unwrap();
    let live = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("no wake-up")
        .unwrap();
    assert_eq!(live.iter().map(|e| e.position).collect::<Vec<_>>(), [10]);
}

/// A batch read ahead is delivered once, in order, and only after the one before it.
pub async fn subscription_reads_ahead<B: Backend>(b: &B) {
    let log = b.open().await;
    fill(&*log, 10).await;
    let dyn_log: Arc<dyn EventLog> = log.clone();
    let mut sub = subscribe(dyn_log, 0);
    let positions =
        |batch: Vec<RecordedEvent>| batch.iter().map(|e| e.position).collect::<Vec<_>>();
    assert_eq!(positions(sub.next_batch(4).await.unwrap()), [0, 1, 2, 3]);
    sub.read_ahead(4).await.unwrap();
    // Already read ahead: a second call reads nothing more.
    sub.read_ahead(4).await.unwrap();
    assert_eq!(sub.position(), 4, "reading ahead delivers nothing");
    assert_eq!(positions(sub.next_batch(100).await.unwrap()), [4, 5, 6, 7]);
    assert_eq!(positions(sub.next_batch(100).await.unwrap()), [8, 9]);
    sub.read_ahead(4).await.unwrap();
    assert!(sub.next_batch(100).await.unwrap().is_empty());
    append_one(
        &*log,
        &stream("citizen"),
        ExpectedVersion::Any,
        vec![event(10)],
    )
    .await
    .unwrap();
    sub.read_ahead(4).await.unwrap();
    assert_eq!(positions(sub.next_batch(100).await.unwrap()), [10]);
    assert_eq!(sub.position(), 11);
}

pub async fn reopen_after_restart<B: Backend>(b: &B) {
    let streams;
    let head;
    {
        let log = b.open().await;
        streams = fill(&*log, 20).await;
        head = log.head().await.unwrap();
    }
    let log = b.open().await;
    assert_eq!(log.head().await.unwrap(), head);
    assert_eq!(log.stream_version(&streams[0]).await.unwrap(), Some(6));
    let out = append_one(
        &*log,
        &streams[0],
        ExpectedVersion::Exact(6),
        vec![event(99)],
    )
    .await
    .unwrap();
    assert_eq!(out.first_position, Some(20));
    let report = log.verify_log(head).await.unwrap();
    assert!(report.is_intact());
    assert_eq!(report.events, 21);
    assert_eq!(report.streams, 3);
}

pub async fn rejects_bad_input<B: Backend>(b: &B) {
    let log = b.open().await;
    let s = stream("citizen");
    append_one(&*log, &s, ExpectedVersion::NoStream, vec![event(0)])
        .await
        .unwrap();
    let head = log.head().await.unwrap();

    let mut big = event(1);
    big.data = format!("\"{}\"", "x".repeat(crate::DEFAULT_MAX_EVENT_SIZE)).into_bytes();
    let err = append_one(&*log, &s, ExpectedVersion::Any, vec![big])
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::EventTooLarge { .. }), "{err:?}");

    let mut not_json = event(2);
    not_json.data = b"{\"unterminated\": ".to_vec();
    let err = append_one(&*log, &s, ExpectedVersion::Any, vec![not_json])
        .await
        .unwrap_err();
    assert!(
        matches!(err, LogError::InvalidJson { field: "data", .. }),
        "{err:?}"
    );

    let mut bad_meta = event(3);
    bad_meta.metadata = b"[1,2]".to_vec();
    let err = append_one(&*log, &s, ExpectedVersion::Any, vec![bad_meta])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LogError::InvalidJson {
                field: "metadata",
                ..
            }
        ),
        "{err:?}"
    );

    let mut invalid_utf8 = event(4);
    invalid_utf8.data = vec![b'"', 0xff, b'"'];
    let err = append_one(&*log, &s, ExpectedVersion::Any, vec![invalid_utf8])
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::InvalidJson { .. }), "{err:?}");

    for bad_type in ["", "has space", &"x".repeat(200)] {
        let mut e = event(5);
        e.event_type = bad_type.to_owned();
        let err = append_one(&*log, &s, ExpectedVersion::Any, vec![e])
            .await
            .unwrap_err();
        assert!(matches!(err, LogError::InvalidEvent { .. }), "{err:?}");
    }

    let err = log.append(vec![]).await.unwrap_err();
    assert!(matches!(err, LogError::InvalidAppend { .. }));
    let err = log
        .append(vec![
            StreamAppend::new(s.clone(), ExpectedVersion::Any, vec![event(6)]),
            StreamAppend::new(s.clone(), ExpectedVersion::Any, vec![event(7)]),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::InvalidAppend { .. }));
    let dup = event(8);
    let err = append_one(&*log, &s, ExpectedVersion::Any, vec![dup.clone(), dup])
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::InvalidAppend { .. }));

    assert!(matches!(
        "Citizen-x".parse::<StreamId>(),
        Err(LogError::InvalidStreamId { .. })
    ));
    assert_eq!(log.head().await.unwrap(), head, "nothing was written");
    assert_intact(&*log).await;
}

pub async fn rejects_bad_input_in_multi_append<B: Backend>(b: &B) {
    let log = b.open().await;
    let (a, c) = (stream("citizen"), stream("citizen"));
    let mut bad = event(1);
    bad.data = b"nope".to_vec();
    let err = log
        .append(vec![
            StreamAppend::new(a.clone(), ExpectedVersion::Any, vec![event(0)]),
            StreamAppend::new(c.clone(), ExpectedVersion::Any, vec![bad]),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, LogError::InvalidJson { .. }));
    assert_eq!(log.head().await.unwrap(), None);
}

/// Appends a small history and returns its head.
async fn history<B: Backend>(b: &B) -> (Arc<B::Log>, LogHead) {
    let log = b.open().await;
    fill(&*log, 12).await;
    assert_intact(&*log).await;
    let head = log.head().await.unwrap().unwrap();
    (log, head)
}

async fn expect_breach<B: Backend>(
    b: &B,
    tamper: Tamper,
    position: u64,
    check: fn(&Breach) -> bool,
) {
    let (log, head) = history(b).await;
    b.tamper(tamper).await;
    let report = log.verify_log(Some(head)).await.unwrap();
    let corruption = report
        .corruption
        .unwrap_or_else(|| panic!("{tamper:?} was not detected"));
    assert_eq!(corruption.position, position, "{tamper:?}: {corruption:?}");
    assert!(check(&corruption.breach), "{tamper:?}: {corruption:?}");
}

pub async fn detects_changed_data<B: Backend>(b: &B) {
    expect_breach(b, Tamper::FlipDataByte { position: 5 }, 5, |b| {
        *b == Breach::DataChanged
    })
    .await;
}

pub async fn detects_changed_metadata<B: Backend>(b: &B) {
    expect_breach(b, Tamper::FlipMetadataByte { position: 3 }, 3, |b| {
        *b == Breach::HashMismatch
    })
    .await;
}

pub async fn detects_deleted_event<B: Backend>(b: &B) {
    expect_breach(b, Tamper::Delete { position: 4 }, 5, |b| {
        matches!(
            b,
            Breach::PositionGap {
                expected: 4,
                found: 5
            }
        )
    })
    .await;
}

pub async fn detects_reordered_pair<B: Backend>(b: &B) {
    expect_breach(b, Tamper::SwapWithNext { position: 6 }, 6, |b| {
        *b == Breach::HashMismatch
    })
    .await;
}

pub async fn detects_inserted_event<B: Backend>(b: &B) {
    // The forged event itself is well-formed; the original that it displaced no longer is.
    expect_breach(b, Tamper::InsertForged { after: 7 }, 9, |b| {
        *b == Breach::HashMismatch
    })
    .await;
}

pub async fn detects_truncated_tail<B: Backend>(b: &B) {
    expect_breach(b, Tamper::TruncateAfter { keep_through: 8 }, 11, |b| {
        *b == Breach::Truncated
    })
    .await;
}

pub async fn verify_stream_scopes_to_the_stream<B: Backend>(b: &B) {
    let log = b.open().await;
    let streams = fill(&*log, 9).await;
    // Position 4 belongs to streams[1] (round robin over three streams).
    b.tamper(Tamper::FlipDataByte { position: 4 }).await;
    let clean = log.verify_stream(&streams[0]).await.unwrap();
    assert!(clean.is_intact());
    assert_eq!(clean.events, 3);
    let broken = log.verify_stream(&streams[1]).await.unwrap();
    assert_eq!(
        broken.corruption.map(|c| (c.position, c.breach)),
        Some((4, Breach::DataChanged))
    );
}

/// Every storage backend lists its streams for a bulk import (`EventLog::held_streams`): no
/// stream it holds is missing — a stream started in a multi-stream append, or by a copy, too —
/// and the ids it never held mostly answer "no" (a filter saying "maybe" to everything would
/// make the import ask about every stream again).
pub async fn held_streams_lists_every_stream<B: Backend>(b: &B) {
    let never: Vec<StreamId> = (0..1000).map(|_| stream("citizen")).collect();
    let listed = |held: Option<StreamFilter>, streams: &[StreamId]| {
        let held = held.expect("a storage backend lists its streams");
        for s in streams {
            assert!(held.may_hold(s.as_str()), "{s} is held but not listed");
        }
        let imagined = never.iter().filter(|s| held.may_hold(s.as_str())).count();
        assert!(
            imagined < 20,
            "{imagined} of 1,000 streams never held answer \"maybe\""
        );
    };
    let log = b.open().await;
    listed(log.held_streams().await.unwrap(), &[]);
    let mut streams = copy::copy_source(&*log, 9).await;
    listed(log.held_streams().await.unwrap(), &streams);
    // A copy starts streams as an append does, and appends after it start more.
    let target = b.open_second().await;
    target.copy_in(read_everything(&*log).await).await.unwrap();
    let opened = stream("business");
    append_one(&*target, &opened, ExpectedVersion::NoStream, vec![event(7)])
        .await
        .unwrap();
    streams.push(opened);
    listed(target.held_streams().await.unwrap(), &streams);
}

pub async fn position_at_time<B: Backend>(b: &B) {
    let log = b.open().await;
    assert_eq!(log.position_at(i64::MAX).await.unwrap(), None);
    fill(&*log, 3).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    fill(&*log, 3).await;
    let all = read_everything(&*log).await;
    assert_eq!(log.position_at(all[0].recorded_at - 1).await.unwrap(), None);
    assert_eq!(log.position_at(i64::MAX).await.unwrap(), Some(5));
    let t = all[2].recorded_at;
    let p = log.position_at(t).await.unwrap().unwrap();
    assert!(all[p as usize].recorded_at <= t);
    assert!(all.get(p as usize + 1).is_none_or(|e| e.recorded_at > t));
}

/// Every stored hash is what `chain::ChainLink` computes from the stored bytes, so another
/// backend (or an auditor) recomputes the same chain.
pub async fn chain_is_recomputable<B: Backend>(b: &B) {
    let log = b.open().await;
    fill(&*log, 7).await;
    let all = read_everything(&*log).await;
    let mut prev_log = crate::Hash::ZERO;
    let mut prev_stream: HashMap<StreamId, crate::Hash> = HashMap::new();
    let mut ids = HashSet::new();
    for e in &all {
        let ps = prev_stream
            .get(&e.stream_id)
            .copied()
            .unwrap_or(crate::Hash::ZERO);
        let view = crate::chain::EventView::from(e);
        let link = crate::chain::ChainLink::compute(&view.envelope, &e.data, ps, prev_log);
        assert_eq!(link.data_hash, e.data_hash);
        assert_eq!(link.prev_stream_hash, e.prev_stream_hash);
        assert_eq!(link.prev_log_hash, e.prev_log_hash);
        assert_eq!(link.hash, e.hash);
        prev_log = e.hash;
        prev_stream.insert(e.stream_id.clone(), e.hash);
        assert!(ids.insert(e.hash), "hashes must be distinct");
    }
    // `read_hashes` (the Merkle tree's leaves) is exactly the hash column, in position order,
    // from any position, and bounded by `max`.
    let hashes: Vec<crate::Hash> = all.iter().map(|e| e.hash).collect();
    assert_eq!(log.read_hashes(0, usize::MAX).await.unwrap(), hashes);
    assert_eq!(log.read_hashes(3, 2).await.unwrap(), hashes[3..5].to_vec());
    assert!(
        log.read_hashes(hashes.len() as u64, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
