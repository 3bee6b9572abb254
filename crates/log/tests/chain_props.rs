//! Property tests of the hash chain, on in-memory histories: any history built with
//! `ChainLink` verifies, and any single tampering of it is caught at or before the tampered
//! position.

use std::collections::HashMap;

use citydb_log::chain::{ChainLink, Envelope, EventView, LogVerifier, StreamVerifier};
use citydb_log::{CopyBase, Hash, LogError, LogHead, RecordedEvent, StreamId, validate_copy};
use proptest::prelude::*;
use uuid::Uuid;

/// Builds a history: `spec[i]` picks the stream of event i among `streams`.
fn build(spec: &[(u8, Vec<u8>)], streams: usize) -> Vec<RecordedEvent> {
    let ids: Vec<StreamId> = (0..streams)
        .map(|i| StreamId::new("citizen", Uuid::from_u128(i as u128 + 1)).unwrap())
        .collect();
    let mut versions: HashMap<usize, (u64, Hash)> = HashMap::new();
    let mut prev_log = Hash::ZERO;
    let mut out = Vec::new();
    for (i, (pick, payload)) in spec.iter().enumerate() {
        let s = *pick as usize % streams;
        let (version, prev_stream) = versions.get(&s).copied().unwrap_or((0, Hash::ZERO));
        let data = serde_json::to_vec(&serde_json::json!({ "i": i, "p": payload })).unwrap();
        let metadata = br#"{"actor":"prop"}"#.to_vec();
        let event_id = Uuid::from_u128(1_000_000 + i as u128);
        let recorded_at = 1_700_000_000_000_000 + i as i64;
        let env = Envelope {
            position: i as u64,
            stream_id: ids[s].as_str(),
            stream_version: version,
            event_id,
            event_type: "Prop",
            schema_version: 1,
            recorded_at,
            metadata: &metadata,
        };
        let link = ChainLink::compute(&env, &data, prev_stream, prev_log);
        out.push(RecordedEvent {
            position: i as u64,
            stream_id: ids[s].clone(),
            stream_version: version,
            event_id,
            event_type: "Prop".into(),
            schema_version: 1,
            recorded_at,
            data,
            metadata,
            data_hash: link.data_hash,
            prev_stream_hash: link.prev_stream_hash,
            prev_log_hash: link.prev_log_hash,
            hash: link.hash,
        });
        versions.insert(s, (version + 1, link.hash));
        prev_log = link.hash;
    }
    out
}

fn verify(events: &[RecordedEvent], head: Option<LogHead>) -> citydb_log::VerifyReport {
    let mut v = LogVerifier::new(head);
    for e in events {
        if v.check(&EventView::from(e)).is_err() {
            break;
        }
    }
    v.finish()
}

fn history() -> impl Strategy<Value = Vec<(u8, Vec<u8>)>> {
    prop::collection::vec(
        (any::<u8>(), prop::collection::vec(any::<u8>(), 0..40)),
        2..40,
    )
}

#[derive(Debug, Clone)]
enum Tamper {
    DataByte(usize, usize),
    MetadataByte(usize, usize),
    EventType(usize),
    Timestamp(usize),
    Delete(usize),
    Swap(usize),
    Duplicate(usize),
    Truncate(usize),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Tamper::DataByte(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Tamper::MetadataByte(a, b)),
        any::<usize>().prop_map(Tamper::EventType),
        any::<usize>().prop_map(Tamper::Timestamp),
        any::<usize>().prop_map(Tamper::Delete),
        any::<usize>().prop_map(Tamper::Swap),
        any::<usize>().prop_map(Tamper::Duplicate),
        any::<usize>().prop_map(Tamper::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn built_histories_verify(spec in history(), streams in 1usize..6) {
        let events = build(&spec, streams);
        let head = events.last().map(|e| LogHead { position: e.position, hash: e.hash });
        let report = verify(&events, head);
        prop_assert!(report.is_intact(), "{:?}", report.corruption);
        prop_assert_eq!(report.events, events.len() as u64);
        prop_assert_eq!(report.head, head);
        // Every stream verifies on its own too.
        let mut by_stream: HashMap<&StreamId, Vec<&RecordedEvent>> = HashMap::new();
        for e in &events {
            by_stream.entry(&e.stream_id).or_default().push(e);
        }
        for evs in by_stream.values() {
            let mut sv = StreamVerifier::new();
            for e in evs {
                prop_assert!(sv.check(&EventView::from(*e)).is_ok());
            }
        }
    }

    #[test]
    fn any_tampering_is_caught(spec in history(), streams in 1usize..6, t in tamper()) {
        let mut events = build(&spec, streams);
        let n = events.len();
        let head = events.last().map(|e| LogHead { position: e.position, hash: e.hash });
        let at = match &t {
            Tamper::DataByte(i, b) => {
                let e = &mut events[i % n];
                let k = b % e.data.len();
                e.data[k] ^= 0x01;
                i % n
            }
            Tamper::MetadataByte(i, b) => {
                let e = &mut events[i % n];
                let k = b % e.metadata.len();
                e.metadata[k] ^= 0x20;
                i % n
            }
            Tamper::EventType(i) => {
                events[i % n].event_type.push('X');
                i % n
            }
            Tamper::Timestamp(i) => {
                events[i % n].recorded_at += 1;
                i % n
            }
            Tamper::Delete(i) => {
                events.remove(i % n);
                i % n
            }
            Tamper::Swap(i) => {
                let i = i % (n - 1);
                events.swap(i, i + 1);
                i
            }
            Tamper::Duplicate(i) => {
                let copy = events[i % n].clone();
                events.insert(i % n + 1, copy);
                i % n + 1
            }
            Tamper::Truncate(i) => {
                events.truncate(i % n);
                i % n
            }
        };
        let report = verify(&events, head);
        let c = report.corruption.clone();
        prop_assert!(c.is_some(), "{:?} not caught", t);
        let c = c.unwrap();
        // Caught no later than the first event that differs from the original (a truncation
        // is reported at the recorded head).
        if !matches!(t, Tamper::Truncate(_)) {
            prop_assert!(c.position <= at as u64 + 1, "{:?} caught late: {:?}", t, c);
        }
    }
}

/// Verifies `events` cut into segments at `cuts` (positions), joined in order.
fn verify_segmented(
    events: &[RecordedEvent],
    cuts: &[usize],
    head: Option<LogHead>,
) -> citydb_log::VerifyReport {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (events.len() + 1)).collect();
    bounds.push(0);
    bounds.push(events.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut joined: Option<LogVerifier> = None;
    for w in bounds.windows(2) {
        // A segment starts at the position its first event should have.
        let start = w[0] as u64;
        let mut seg = LogVerifier::segment(start, head);
        for e in &events[w[0]..w[1]] {
            if seg.check(&EventView::from(e)).is_err() {
                break;
            }
        }
        joined = Some(match joined {
            None => seg,
            Some(j) => j.join(seg),
        });
    }
    joined.unwrap_or_else(|| LogVerifier::new(head)).finish()
}

/// Applies one tampering to a history of at least two events (a redacted payload, empty, has
/// no byte to change and is left as it is).
fn apply(t: &Tamper, events: &mut Vec<RecordedEvent>) {
    let n = events.len();
    match *t {
        Tamper::DataByte(i, b) => {
            let e = &mut events[i % n];
            if !e.data.is_empty() {
                let k = b % e.data.len();
                e.data[k] ^= 1;
            }
        }
        Tamper::MetadataByte(i, b) => {
            let e = &mut events[i % n];
            let k = b % e.metadata.len();
            e.metadata[k] ^= 0x20;
        }
        Tamper::EventType(i) => events[i % n].event_type.push('X'),
        Tamper::Timestamp(i) => events[i % n].recorded_at += 1,
        Tamper::Delete(i) => {
            events.remove(i % n);
        }
        Tamper::Swap(i) => {
            let i = i % (n - 1);
            events.swap(i, i + 1);
        }
        Tamper::Duplicate(i) => {
            let c = events[i % n].clone();
            events.insert(i % n + 1, c);
        }
        Tamper::Truncate(i) => events.truncate(i % n),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn segmented_verification_equals_sequential(
        spec in history(),
        streams in 1usize..6,
        t in prop::option::of(tamper()),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let mut events = build(&spec, streams);
        let head = events.last().map(|e| LogHead { position: e.position, hash: e.hash });
        if let Some(t) = &t {
            apply(t, &mut events);
        }
        let sequential = verify(&events, head);
        let segmented = verify_segmented(&events, &cuts, head);
        prop_assert_eq!(
            sequential.corruption.as_ref().map(|c| c.position),
            segmented.corruption.as_ref().map(|c| c.position)
        );
        if sequential.is_intact() {
            prop_assert_eq!(sequential, segmented);
        }
    }
}

/// Copies `events` in batches cut at `cuts` into an in-memory target, as a backend's `copy_in`
/// checks each batch (`validate_copy` against the state the previous batches left): the
/// position of the first refusal, or `None` when every batch was accepted.
fn copy_in_batches(events: &[RecordedEvent], cuts: &[usize]) -> Option<u64> {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (events.len() + 1)).collect();
    bounds.push(0);
    bounds.push(events.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut base = CopyBase::default();
    for w in bounds.windows(2) {
        let batch = &events[w[0]..w[1]];
        match validate_copy(batch, &base, citydb_log::DEFAULT_MAX_EVENT_SIZE) {
            Ok(head) => {
                let last = &batch[batch.len() - 1];
                assert_eq!(
                    head,
                    LogHead {
                        position: last.position,
                        hash: last.hash
                    }
                );
                base.tip = Some((head, last.recorded_at));
                for e in batch {
                    base.streams
                        .insert(e.stream_id.to_string(), (e.stream_version, e.hash));
                    base.recorded.insert(e.event_id);
                }
            }
            Err(LogError::CopyRefused { position, .. }) => return Some(position),
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Copying a history in batches, cut anywhere, accepts it exactly when it verifies, and
    /// otherwise refuses it where verification finds the first breach.
    #[test]
    fn batched_copy_checks_equal_verification(
        spec in history(),
        streams in 1usize..6,
        t in prop::option::of(tamper()),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
    ) {
        let mut events = build(&spec, streams);
        let n = events.len();
        match t {
            None => {}
            Some(Tamper::DataByte(i, b)) => { let e = &mut events[i % n]; let k = b % e.data.len(); e.data[k] ^= 1; }
            Some(Tamper::MetadataByte(i, b)) => { let e = &mut events[i % n]; let k = b % e.metadata.len(); e.metadata[k] ^= 0x20; }
            Some(Tamper::EventType(i)) => events[i % n].event_type.push('X'),
            Some(Tamper::Timestamp(i)) => events[i % n].recorded_at += 1,
            Some(Tamper::Delete(i)) => { events.remove(i % n); }
            Some(Tamper::Swap(i)) => { let i = i % (n - 1); events.swap(i, i + 1); }
            Some(Tamper::Duplicate(i)) => { let c = events[i % n].clone(); events.insert(i % n + 1, c); }
            Some(Tamper::Truncate(i)) => events.truncate(i % n),
        }
        let sequential = verify(&events, None);
        prop_assert_eq!(
            sequential.corruption.map(|c| c.position),
            copy_in_batches(&events, &cuts)
        );
    }
}

/// Verifies `events` fed in batches of `size` (`LogVerifier::check_batch`).
fn verify_batched(
    events: &[RecordedEvent],
    head: Option<LogHead>,
    size: usize,
) -> citydb_log::VerifyReport {
    let mut v = LogVerifier::new(head);
    let mut batch = citydb_log::chain::EventBatch::default();
    for chunk in events.chunks(size.max(1)) {
        batch.clear();
        for e in chunk {
            batch.push(&EventView::from(e));
        }
        if v.check_batch(&batch).is_err() {
            break;
        }
    }
    v.finish()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Hashing many events at a time (SIMD lanes) finds exactly what hashing one at a time
    /// finds: same report, same first breach and reason. Payloads run from a few bytes to past
    /// one blake3 chunk (1 KiB), where the batch falls back to the blake3 crate; some are
    /// redacted (no data: the stored digest is taken).
    #[test]
    fn batched_verification_equals_one_by_one(
        spec in prop::collection::vec(
            (any::<u8>(), prop::collection::vec(any::<u8>(), 0..300)), 2..60),
        streams in 1usize..6,
        t in prop::option::of(tamper()),
        redact in prop::option::of(any::<usize>()),
        size in 1usize..40,
    ) {
        let mut events = build(&spec, streams);
        let head = events.last().map(|e| LogHead { position: e.position, hash: e.hash });
        let n = events.len();
        if let Some(r) = redact {
            events[r % n].data.clear();
        }
        if let Some(t) = &t {
            apply(t, &mut events);
        }
        prop_assert_eq!(verify(&events, head), verify_batched(&events, head, size));
    }
}

/// Verifies `events` with their stream links set aside in `partitions` partitions written out
/// in blocks of `block_bytes` (`LogVerifier::partitioned`), cut into segments at `cuts` and
/// joined in order, as the stores verify a log of more events than `STREAMS_IN_MEMORY`.
fn verify_partitioned(
    events: &[RecordedEvent],
    cuts: &[usize],
    head: Option<LogHead>,
    partitions: usize,
    block_bytes: usize,
) -> citydb_log::VerifyReport {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (events.len() + 1)).collect();
    bounds.push(0);
    bounds.push(events.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut joined: Option<LogVerifier> = None;
    for w in bounds.windows(2) {
        let mut seg = LogVerifier::partitioned(w[0] as u64, head, partitions, block_bytes);
        for e in &events[w[0]..w[1]] {
            if seg.check(&EventView::from(e)).is_err() {
                break;
            }
        }
        joined = Some(match joined {
            None => seg,
            Some(j) => j.join(seg),
        });
    }
    joined
        .unwrap_or_else(|| LogVerifier::partitioned(0, head, partitions, block_bytes))
        .try_finish()
        .expect("the links set aside read back")
}

/// An event moved to another position with its hashes recomputed for it, as a forger who
/// rewrites one event would: its own hashes and its log link are right for where it now sits,
/// so only the stream checks (or the time, or the head) can fail there.
fn forge_at(events: &mut [RecordedEvent], from: usize, to: usize) {
    let n = events.len();
    let (from, to) = (from % n, to % n);
    let mut e = events[from].clone();
    // The position of the slot it takes (not `to`: a deletion before it shifted the slots), so
    // that a forgery never puts two events at one position, which no store can hold.
    e.position = events[to].position;
    e.prev_log_hash = if to == 0 {
        Hash::ZERO
    } else {
        events[to - 1].hash
    };
    let link = ChainLink::compute(
        &EventView::from(&e).envelope,
        &e.data,
        e.prev_stream_hash,
        e.prev_log_hash,
    );
    e.hash = link.hash;
    events[to] = e;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Stream links set aside and checked partition by partition find exactly what one pass
    /// finds — the same report: first breach and its reason, events checked, head, streams —
    /// after tamperings of every kind and forged events (whose own hashes and log link check
    /// out, so that the stream checks decide). Partitions from 1 to 4, blocks from one link to
    /// many, so that links are read back from memory and from the temporary file.
    #[test]
    fn partitioned_stream_links_equal_one_pass(
        spec in history(),
        streams in 1usize..6,
        ts in prop::collection::vec(tamper(), 0..3),
        forgeries in prop::collection::vec((any::<usize>(), any::<usize>()), 0..3),
        honest_head in any::<bool>(),
        partitions in 1usize..5,
        block_bytes in 1usize..400,
    ) {
        let mut events = build(&spec, streams);
        let last = events.last().map(|e| LogHead { position: e.position, hash: e.hash });
        let head = if honest_head { last } else { last.map(|h| LogHead { hash: Hash::ZERO, ..h }) };
        for t in &ts {
            if events.len() >= 2 {
                apply(t, &mut events);
            }
        }
        for &(from, to) in &forgeries {
            if !events.is_empty() {
                forge_at(&mut events, from, to);
            }
        }
        prop_assert_eq!(
            verify(&events, head),
            verify_partitioned(&events, &[], head, partitions, block_bytes)
        );
    }

    /// The same cut into segments joined in order: the first breach (position and reason) is
    /// one pass's, and an intact log gives one pass's whole report. (`Tamper::Duplicate` is
    /// left out: it puts two events at one position, which no store can hold — the position
    /// is its key — and a seam between the two makes positions no longer tell which event
    /// one pass meets first.)
    #[test]
    fn partitioned_segments_joined_equal_one_pass(
        spec in history(),
        streams in 1usize..6,
        t in prop::option::of(tamper()),
        forgery in prop::option::of((any::<usize>(), any::<usize>())),
        cuts in prop::collection::vec(any::<usize>(), 0..4),
        partitions in 1usize..5,
        block_bytes in 1usize..400,
    ) {
        let mut events = build(&spec, streams);
        let head = events.last().map(|e| LogHead { position: e.position, hash: e.hash });
        if let Some(t) = t.iter().find(|t| !matches!(t, Tamper::Duplicate(_))) {
            apply(t, &mut events);
        }
        if let (Some((from, to)), false) = (forgery, events.is_empty()) {
            forge_at(&mut events, from, to);
        }
        let one_pass = verify(&events, head);
        let partitioned = verify_partitioned(&events, &cuts, head, partitions, block_bytes);
        prop_assert_eq!(&one_pass.corruption, &partitioned.corruption);
        if one_pass.is_intact() {
            prop_assert_eq!(one_pass, partitioned);
        }
    }
}
