//! The conformance suite's tampering, on the memory store's events: the same edits the SQLite
//! and PostgreSQL backends make with raw SQL.

use uuid::Uuid;

use crate::chain::{ChainLink, Envelope, Hash};
use crate::conformance::Tamper;
use crate::event::RecordedEvent;
use crate::stream::StreamId;

/// Applies `tamper` to `events` (in position order), keeping them in position order.
pub(super) fn apply(events: &mut Vec<RecordedEvent>, tamper: Tamper) {
    let at = |events: &[RecordedEvent], position: u64| {
        events.iter().position(|e| e.position == position)
    };
    match tamper {
        Tamper::FlipDataByte { position } => {
            if let Some(i) = at(events, position) {
                events[i].data = flip(&events[i].data);
            }
        }
        Tamper::FlipMetadataByte { position } => {
            if let Some(i) = at(events, position) {
                events[i].metadata = flip(&events[i].metadata);
            }
        }
        Tamper::Delete { position } => events.retain(|e| e.position != position),
        Tamper::SwapWithNext { position } => {
            if let (Some(i), Some(j)) = (at(events, position), at(events, position + 1)) {
                events.swap(i, j);
                events[i].position = position;
                events[j].position = position + 1;
            }
        }
        Tamper::InsertForged { after } => {
            let Some(i) = at(events, after) else { return };
            let (prev, recorded_at) = (events[i].hash, events[i].recorded_at);
            for e in events.iter_mut().filter(|e| e.position > after) {
                e.position += 1;
            }
            if let Some(forged) = forged(after + 1, prev, recorded_at) {
                events.insert(i + 1, forged);
            }
        }
        Tamper::TruncateAfter { keep_through } => events.retain(|e| e.position <= keep_through),
        Tamper::Redact { position } => {
            if let Some(i) = at(events, position) {
                events[i].data.clear();
            }
        }
    }
}

/// Changes one digit or letter, keeping the text valid JSON (as the SQL backends' hooks do).
fn flip(bytes: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(bytes)
        .replacen("conformance", "conformancf", 1)
        .replacen("\"n\":", "\"m\":", 1)
        .into_bytes()
}

/// An event in a stream of its own whose own hashes are correctly computed.
fn forged(position: u64, prev_log: Hash, recorded_at: i64) -> Option<RecordedEvent> {
    let stream_id = StreamId::new("forged", Uuid::now_v7()).ok()?;
    let event_id = Uuid::now_v7();
    let env = Envelope {
        position,
        stream_id: stream_id.as_str(),
        stream_version: 0,
        event_id,
        event_type: "Forged",
        schema_version: 1,
        recorded_at,
        metadata: b"{}",
    };
    let link = ChainLink::compute(&env, b"{}", Hash::ZERO, prev_log);
    Some(RecordedEvent {
        position,
        stream_id: stream_id.clone(),
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
    })
}
