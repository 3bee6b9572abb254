//! The change feed: which records changed, in log order, without their payloads, so that a
//! service learns of a death or a dissolution and then reads what it is entitled to (and that
//! read is logged). Served as a paged query and as a live subscription.

use std::sync::Arc;

use async_graphql::{Context, SimpleObject, Subscription};
use futures_util::Stream;

use citydb_domain::RecordKind;
use citydb_log::{EventLog, RecordedEvent, subscribe};

use super::NodeHandles;
use super::time::format_micros;
use crate::auth::RequestContext;
use crate::error::ApiError;

/// Envelope of one event: what changed, not how.
#[derive(SimpleObject, Clone)]
pub struct Change {
    /// Log position: pass it as `after` to resume.
    pub position: i64,
    /// `citizen`, `business`, `parcel`, …
    pub category: String,
    /// The stream, e.g. `citizen-<uuid>` (the record id for records).
    pub stream_id: String,
    pub stream_version: i64,
    pub event_type: String,
    pub recorded_at: String,
    /// The command that wrote this event (a mutation's `commandId`), so that a service can
    /// match the feed to its own writes.
    pub command_id: Option<String>,
}

impl From<&RecordedEvent> for Change {
    fn from(e: &RecordedEvent) -> Self {
        Change {
            position: e.position as i64,
            category: e.stream_id.category().to_owned(),
            stream_id: e.stream_id.to_string(),
            stream_version: e.stream_version as i64,
            event_type: e.event_type.clone(),
            recorded_at: format_micros(e.recorded_at),
            // The registry records the command id as every event's causation id.
            command_id: e.metadata().causation_id.map(|c| c.to_string()),
        }
    }
}

/// Whether an event is a change to a record (what the feed serves), not an internal stream's.
pub fn is_record_change(e: &RecordedEvent) -> bool {
    RecordKind::from_category(e.stream_id.category()).is_some()
}

#[derive(SimpleObject)]
pub struct ChangePage {
    pub changes: Vec<Change>,
    /// Resume after this position (the last change's, or `after` when empty).
    pub end_position: Option<i64>,
    pub has_more: bool,
}

/// The record categories a feed serves (every [`RecordKind`]; internal streams — keys, command
/// markers, access — are not changes to records), or the ones asked for, each a record kind.
pub fn wanted(categories: &[String]) -> Result<Vec<String>, ApiError> {
    if categories.is_empty() {
        return Ok(RecordKind::ALL
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect());
    }
    for c in categories {
        if RecordKind::from_category(c).is_none() {
            let expected: Vec<&str> = RecordKind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(ApiError::invalid_field(
                format!(
                    "unknown category {c:?}; expected one of {}",
                    expected.join(", ")
                ),
                "categories",
            ));
        }
    }
    Ok(categories.to_vec())
}

/// Refuses event types that no record stream carries: a misspelt type (`CitizenDied`) would
/// otherwise answer an empty feed forever, and a service would never learn of a death.
/// Duplicates are dropped, so the list is bounded by the number of types.
pub fn known_event_types(types: Vec<String>) -> Result<Vec<String>, ApiError> {
    let known = || {
        citydb_domain::event::EVENT_SCHEMA_VERSIONS
            .iter()
            .map(|(t, _)| *t)
    };
    let mut out: Vec<String> = Vec::new();
    for t in types {
        if !known().any(|k| k == t) {
            let shown: String = t.chars().take(64).collect();
            return Err(ApiError::invalid_field(
                format!(
                    "unknown event type {shown:?}; the record event types are {}",
                    known().collect::<Vec<_>>().join(", ")
                ),
                "eventTypes",
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// A position given by a client (`after`, `asOf.position`): refused when negative, and when past
/// the head of this log — a cursor from another deployment or from before a restore would
/// otherwise skip events silently. Where `before_first` is allowed, `-1` means "before the
/// first event" and is answered `None`.
pub async fn position_in_log(
    log: &dyn EventLog,
    p: i64,
    field: &str,
    before_first: bool,
) -> Result<Option<u64>, ApiError> {
    if p == -1 && before_first {
        return Ok(None);
    }
    let Ok(position) = u64::try_from(p) else {
        return Err(ApiError::invalid_field(
            format!("{field} is a log position and is never negative"),
            field,
        ));
    };
    let head = log.head().await?.map(|h| h.position);
    match head {
        Some(h) if position <= h => Ok(Some(position)),
        _ => Err(ApiError::invalid_field(
            format!(
                "{field} is {p}, past the head of this log ({}); a position from another \
                 deployment or from before a restore is not valid here",
                head.map_or_else(|| "empty".to_owned(), |h| h.to_string())
            ),
            field,
        )),
    }
}

pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Live changes to records, from position `after` (exclusive; from now when absent), in
    /// order, each exactly once.
    async fn changes(
        &self,
        ctx: &Context<'_>,
        after: Option<i64>,
        #[graphql(default)] categories: Vec<String>,
        #[graphql(default)] event_types: Vec<String>,
    ) -> Result<impl Stream<Item = Change>, ApiError> {
        RequestContext::of(ctx)?;
        let categories = wanted(&categories)?;
        let handles = ctx
            .data::<NodeHandles>()
            .map_err(|_| ApiError::internal("node handles missing"))?;
        let log: Arc<dyn EventLog> = handles.log.clone();
        let event_types = known_event_types(event_types)?;
        let from = match after {
            Some(p) => position_in_log(log.as_ref(), p, "after", true)
                .await?
                .map_or(0, |p| p + 1),
            None => log.head().await?.map_or(0, |h| h.position + 1),
        };
        let sub = subscribe(log, from);
        Ok(futures_util::stream::unfold(sub, move |mut sub| {
            let categories = categories.clone();
            let event_types = event_types.clone();
            async move {
                loop {
                    match sub.next().await {
                        Ok(e) => {
                            if categories.iter().any(|c| c == e.stream_id.category())
                                && (event_types.is_empty() || event_types.contains(&e.event_type))
                            {
                                return Some((Change::from(&e), sub));
                            }
                        }
                        Err(_) => return None,
                    }
                }
            }
        }))
    }
}
