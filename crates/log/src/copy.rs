//! Copying a log, hash for hash: the checks every backend's [`EventLog::copy_in`] makes
//! ([`validate_copy`]), and [`copy_log`], which migrates a whole log from one backend to another
//! (or restores it), resumably.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::chain::{Corruption, EventView, Hash, LogHead, LogVerifier};
use crate::error::{CopyRefusal, LogError};
use crate::event::{Json, RecordedEvent, validate_fields};
use crate::log::EventLog;

/// What a batch given to [`EventLog::copy_in`] must continue: the state of the log it is copied
/// into, as the backend reads it inside its write transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyBase {
    /// The log's last event and its `recorded_at`; `None` when the log is empty.
    pub tip: Option<(LogHead, i64)>,
    /// For each stream of the batch that already has events in the log: its last version and
    /// that event's hash. (Streams of the batch not listed have no events.)
    pub streams: HashMap<String, (u64, Hash)>,
    /// The batch's event ids that are already recorded in the log.
    pub recorded: HashSet<Uuid>,
}

/// Checks a batch of recorded events for [`EventLog::copy_in`], against the log's state `base`:
/// the batch must not be empty; its first position must follow the tip and positions be
/// contiguous; each event must link to the previous one (the tip for the first) and continue
/// its stream (version and `prev_stream_hash`); every hash must recompute (`data_hash`, except
/// for a redacted payload, and the event hash); `recorded_at` must never decrease; event ids
/// must be new and distinct; and every event must be valid on its own, as an appended one
/// ([`crate::NewEvent::validate`], with the log's `max_event_size`).
///
/// Returns the log's head once the batch is written. Writes nothing, checks everything that
/// does not need the storage engine: a backend calls it inside its write transaction, with
/// `base` read there, before inserting anything.
pub fn validate_copy(
    events: &[RecordedEvent],
    base: &CopyBase,
    max_event_size: usize,
) -> Result<LogHead, LogError> {
    let Some(last) = events.last() else {
        return Err(LogError::InvalidAppend {
            reason: "no events to copy".into(),
        });
    };
    let mut verifier = LogVerifier::continuing(
        base.tip,
        base.streams
            .iter()
            .map(|(stream, (version, hash))| (stream.clone(), *version, *hash)),
    );
    let mut ids = HashSet::with_capacity(events.len());
    for event in events {
        verifier
            .check(&EventView::from(event))
            .map_err(|c| LogError::CopyRefused {
                position: c.position,
                reason: CopyRefusal::Chain(c.breach),
            })?;
        if base.recorded.contains(&event.event_id) || !ids.insert(event.event_id) {
            return Err(LogError::CopyRefused {
                position: event.position,
                reason: CopyRefusal::DuplicateEventId {
                    event_id: event.event_id,
                },
            });
        }
        validate_fields(
            event.event_id,
            &event.event_type,
            event.stored_data(),
            &event.metadata,
            max_event_size,
            Json::Parse,
        )?;
    }
    Ok(LogHead {
        position: last.position,
        hash: last.hash,
    })
}

/// What [`copy_log`] did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyReport {
    /// Events copied by this run.
    pub events: u64,
    /// Events the target already held when this run started: the copy resumed after them.
    pub resumed_from: u64,
    /// Distinct streams in the target once copied.
    pub streams: u64,
    /// The source's head when the copy started: everything up to it was copied (events the
    /// source records meanwhile are left for a later run).
    pub source_head: Option<LogHead>,
    /// The target's head once copied, verified: equal to `source_head`.
    pub target_head: Option<LogHead>,
}

/// Copies the log `from` into the log `to`, hash for hash, through [`EventLog::copy_in`], in
/// batches of `batch` events (at least 1); `progress` is called after each batch written with
/// the number of events the target then holds.
///
/// - **Resumable**: the copy starts at the target's head + 1 (0 for an empty target), after
///   checking that the target holds a prefix of the source: the source's event at the target's
///   head position has the same hash (the hash chain then vouches for everything before it,
///   which the final verification recomputes). Otherwise [`LogError::CopyDiverged`], and nothing
///   is written.
/// - **The source is verified while it is read**, from position 0 even when resuming (the
///   stream links need the whole log), against its head as read at the start; a breach stops
///   the copy before the batch holding it is written, with [`LogError::Corrupted`] (the reason
///   names the source). What was copied before stays, and verifies.
/// - Copies up to the source's head as read at the start.
/// - Then the target is verified with [`EventLog::verify_log`]`(Some(source_head))` (a breach:
///   [`LogError::Corrupted`], the reason naming the target) and both heads must be equal,
///   position and hash ([`LogError::CopyDiverged`] otherwise, e.g. if the target was appended
///   to meanwhile).
///
/// Nothing else must append to the target while it is being copied into; appending to the
/// source is harmless.
pub async fn copy_log(
    from: &dyn EventLog,
    to: &dyn EventLog,
    batch: usize,
    mut progress: impl FnMut(u64),
) -> Result<CopyReport, LogError> {
    let batch = batch.max(1);
    let source_head = from.head().await?;
    let resume = match to.head().await? {
        None => 0,
        Some(target) => {
            let source_hash = source_hash_at(from, source_head, target.position).await?;
            if source_hash != Some(target.hash) {
                return Err(LogError::CopyDiverged {
                    position: target.position,
                    source_hash,
                    target_hash: Some(target.hash),
                });
            }
            target.position + 1
        }
    };
    let Some(source_head) = source_head else {
        return Ok(CopyReport {
            events: 0,
            resumed_from: 0,
            streams: 0,
            source_head: None,
            target_head: None,
        });
    };
    let end = source_head.position + 1;
    let mut verifier = LogVerifier::new(Some(source_head));
    let (mut next, mut copied) = (0u64, 0u64);
    while next < end {
        let want = usize::try_from(end - next).unwrap_or(usize::MAX).min(batch);
        let events = from.read_all(next, want).await?;
        let Some(last) = events.last() else {
            // The source ends before its head: the verifier reports the truncation.
            break;
        };
        next = last.position + 1;
        for event in &events {
            verifier
                .check(&EventView::from(event))
                .map_err(|c| corrupted("the source log", c))?;
        }
        let to_copy: Vec<RecordedEvent> = events
            .into_iter()
            .filter(|e| e.position >= resume)
            .collect();
        if !to_copy.is_empty() {
            let n = to_copy.len() as u64;
            let head = to.copy_in(to_copy).await?;
            copied += n;
            progress(head.position + 1);
        }
    }
    if let Some(c) = verifier.finish().corruption {
        return Err(corrupted("the source log", c));
    }
    if copied > 0 {
        to.copied_in_bulk().await?;
    }
    let report = to.verify_log(Some(source_head)).await?;
    if let Some(c) = report.corruption {
        return Err(corrupted("the target log", c));
    }
    let target_head = to.head().await?;
    if target_head != Some(source_head) {
        let position = target_head.map_or(source_head.position, |h| {
            h.position.min(source_head.position + 1)
        });
        let target_hash = to
            .read_all(position, 1)
            .await?
            .into_iter()
            .find(|e| e.position == position)
            .map(|e| e.hash);
        return Err(LogError::CopyDiverged {
            position,
            source_hash: (position == source_head.position).then_some(source_head.hash),
            target_hash,
        });
    }
    Ok(CopyReport {
        events: copied,
        resumed_from: resume,
        streams: report.streams,
        source_head: Some(source_head),
        target_head,
    })
}

/// The hash of the source's event at `position`; `None` when the source has none there.
async fn source_hash_at(
    from: &dyn EventLog,
    head: Option<LogHead>,
    position: u64,
) -> Result<Option<Hash>, LogError> {
    if head.is_none_or(|h| h.position < position) {
        return Ok(None);
    }
    Ok(from
        .read_all(position, 1)
        .await?
        .into_iter()
        .find(|e| e.position == position)
        .map(|e| e.hash))
}

fn corrupted(which: &str, c: Corruption) -> LogError {
    LogError::Corrupted {
        position: c.position,
        reason: format!("{which} fails verification: {}", c.breach),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `copy_log` can be spawned on a multi-threaded runtime (given a `Send` progress callback).
    #[allow(dead_code)]
    fn copy_log_is_send<'a>(
        from: &'a dyn EventLog,
        to: &'a dyn EventLog,
    ) -> impl std::future::Future<Output = Result<CopyReport, LogError>> + Send + 'a {
        copy_log(from, to, 1, |_| {})
    }
}
