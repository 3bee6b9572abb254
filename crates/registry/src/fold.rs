//! Reading stored streams back into domain state: decode (upcast) each [`RecordedEvent`] and
//! fold it with `evolve` / `evolve_key`. Shared by the command handler, the readers and anyone
//! rebuilding state from the log (projections, the replay tests).

use citydb_domain::valid_time::{Dated, recorded_on};
use citydb_domain::{
    Date, Event, KeyClaim, NaturalKey, Record, RecordId, Target, evolve, evolve_key,
};
use citydb_log::{RecordedEvent, StreamId};

use crate::error::RegistryError;

/// The stream id of a record or key target, as the log spells it.
pub fn stream_of(target: &Target) -> Result<StreamId, RegistryError> {
    let (category, id) = target.stream_parts();
    Ok(StreamId::new(category, id)?)
}

/// The stream id of a record.
pub fn record_stream(id: RecordId) -> Result<StreamId, RegistryError> {
    stream_of(&Target::Record(id))
}

/// The stream id of a natural key's reservation stream.
pub fn key_stream(key: &NaturalKey) -> Result<StreamId, RegistryError> {
    stream_of(&Target::Key(*key))
}

/// Reads one stored event as the current [`Event`] shape, upcasting old schema versions.
pub fn decode(event: &RecordedEvent) -> Result<Event, RegistryError> {
    let corrupt = |reason: String| {
        RegistryError::corrupt(
            &event.stream_id,
            format!(
                "event {} (version {}, {} v{}): {reason}",
                event.event_id, event.stream_version, event.event_type, event.schema_version
            ),
        )
    };
    citydb_domain::upcast_slice(&event.event_type, event.schema_version, &event.data)
        .map_err(|e| corrupt(e.to_string()))
}

/// Folds a record stream from its first event; `None` for an empty stream.
///
/// Checks that the stream really is `id`'s: a registration for another record is corruption,
/// not a state to serve.
pub fn fold_record<'a>(
    id: RecordId,
    events: impl IntoIterator<Item = &'a RecordedEvent>,
) -> Result<Option<Record>, RegistryError> {
    fold_record_until(id, events, None)
}

/// [`fold_record`] of the events at or before global position `until` (all with `None`).
///
/// Redactions (`citydb_domain::redaction`): an event an approved redaction names is folded as
/// the approval's `replacement`, whether or not its payload is blanked yet, so every state —
/// an as-of state before the approval included — shows the redacted values. The approvals are
/// looked for in every event given, also those after `until`: give the whole stream.
pub fn fold_record_until<'a>(
    id: RecordId,
    events: impl IntoIterator<Item = &'a RecordedEvent>,
    until: Option<u64>,
) -> Result<Option<Record>, RegistryError> {
    let known = known_events(events, until)?;
    let mut state: Option<Record> = None;
    for (recorded, event) in &known {
        let next = evolve(state, event).map_err(|e| {
            RegistryError::corrupt(
                &recorded.stream_id,
                format!("version {}: {e}", recorded.stream_version),
            )
        })?;
        if next.id() != id {
            return Err(RegistryError::corrupt(
                &recorded.stream_id,
                format!("holds record {} instead of {id}", next.id()),
            ));
        }
        state = Some(next);
    }
    Ok(state)
}

/// The events of a record stream known at global position `until` (all with `None`), decoded
/// and with approved redactions in place (see [`fold_record_until`]): what every view of the
/// record as known at that point — its state, its valid axis — is folded from.
pub fn known_events<'a>(
    events: impl IntoIterator<Item = &'a RecordedEvent>,
    until: Option<u64>,
) -> Result<Vec<(&'a RecordedEvent, Event)>, RegistryError> {
    let events: Vec<&RecordedEvent> = events.into_iter().collect();
    // Past `until` only the approvals are read: an as-of state never depends on whether a
    // later event decodes.
    let folded = |e: &RecordedEvent| until.is_none_or(|until| e.position <= until);
    let decoded = events
        .iter()
        .map(|e| {
            let wanted = !e.is_redacted() && (folded(e) || e.event_type == "RedactionApproved");
            wanted.then(|| decode(e)).transpose()
        })
        .collect::<Result<Vec<Option<Event>>, _>>()?;
    let replacements = citydb_domain::redaction::replacements(decoded.iter().flatten());
    let mut known = Vec::with_capacity(events.len());
    for (recorded, event) in events.iter().zip(&decoded) {
        if !folded(recorded) {
            break;
        }
        let Some(event) =
            citydb_domain::redaction::in_place(&replacements, recorded.position, event.as_ref())
        else {
            return Err(RegistryError::corrupt(
                &recorded.stream_id,
                format!(
                    "version {} is redacted, but no approved redaction names it",
                    recorded.stream_version
                ),
            ));
        };
        known.push((*recorded, event.clone()));
    }
    Ok(known)
}

/// The known events as the valid axis reads them (`citydb_domain::valid_time`): each with its
/// metadata's `effective_at` and the day it was recorded in Vietnam.
pub fn dated<'a>(known: &'a [(&RecordedEvent, Event)]) -> Result<Vec<Dated<'a>>, RegistryError> {
    known
        .iter()
        .map(|(recorded, event)| {
            let effective_at = recorded
                .metadata()
                .effective_at
                .map(|d| {
                    d.parse::<Date>().map_err(|e| {
                        RegistryError::corrupt(
                            &recorded.stream_id,
                            format!("version {}: effective_at {d}: {e}", recorded.stream_version),
                        )
                    })
                })
                .transpose()?;
            Ok(Dated {
                event,
                effective_at,
                recorded: recorded_on(recorded.recorded_at),
            })
        })
        .collect()
}

/// Folds a natural key's reservation stream; `KeyClaim::default()` for an empty stream.
pub fn fold_key<'a>(
    key: &NaturalKey,
    events: impl IntoIterator<Item = &'a RecordedEvent>,
) -> Result<KeyClaim, RegistryError> {
    let mut claim = KeyClaim::default();
    for recorded in events {
        let event = decode(recorded)?;
        // evolve_key does not look at the key an event names: a claim routed to the wrong key
        // stream would silently reserve the wrong key.
        if let Event::KeyClaimed { key: named, .. } | Event::KeyReleased { key: named, .. } = &event
            && named != key
        {
            return Err(RegistryError::corrupt(
                &recorded.stream_id,
                format!(
                    "version {} names key {named}, not {key}",
                    recorded.stream_version
                ),
            ));
        }
        claim = evolve_key(Some(claim), &event).map_err(|e| {
            RegistryError::corrupt(
                &recorded.stream_id,
                format!("version {}: {e}", recorded.stream_version),
            )
        })?;
    }
    Ok(claim)
}
