//! Events for unit tests: the fields a projection reads, with zero hashes.

use citydb_log::{Hash, RecordedEvent};

/// An event of `stream` at log `position`, with an empty JSON object as its data.
pub(crate) fn recorded(
    position: u64,
    stream: &str,
    stream_version: u64,
    event_type: &str,
) -> RecordedEvent {
    RecordedEvent {
        position,
        stream_id: stream.parse().unwrap(),
        stream_version,
        event_id: uuid::Uuid::nil(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        recorded_at: 0,
        data: b"{}".to_vec(),
        metadata: b"{}".to_vec(),
        data_hash: Hash::ZERO,
        prev_stream_hash: Hash::ZERO,
        prev_log_hash: Hash::ZERO,
        hash: Hash::ZERO,
    }
}
