//! The conformance suite's tampering, on the memory store's events: the same edits the SQLite
//! and PostgreSQL backends make with raw SQL.

use crate::conformance::{Tamper, flipped, forged_event};
use crate::event::RecordedEvent;

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
            events.insert(i + 1, forged_event(after + 1, prev, recorded_at));
        }
        Tamper::TruncateAfter { keep_through } => events.retain(|e| e.position <= keep_through),
        Tamper::Redact { position } => {
            if let Some(i) = at(events, position) {
                events[i].data.clear();
            }
        }
    }
}

fn flip(bytes: &[u8]) -> Vec<u8> {
    flipped(&String::from_utf8_lossy(bytes)).into_bytes()
}
