//! The supervisors' queues (issue 17): correction and redaction proposals still pending,
//! across every record.

use std::collections::{BTreeMap, HashMap};

use async_graphql::{Context, Object, SimpleObject};
use serde_json::Value;

use citydb_domain::privacy::RedactionStatus;
use citydb_domain::{CorrectionId, Record, RecordId};
use citydb_log::RecordedEvent;

use super::NodeHandles;
use super::access::{personal, require};
use super::privacy::{READERS, Redaction};
use super::query::handles;
use super::records::{Correction, corrections};
use super::time::format_micros;
use crate::auth::{FieldGroup, Role};
use crate::error::ApiError;

/// Most proposal events one call reads from the change feed's index: the work of a call is
/// bounded whatever the log's age (the queues are meant to be short).
const MAX_SCANNED: usize = 20_000;

/// A proposal waiting for review.
#[derive(SimpleObject)]
pub struct OpenCorrection {
    /// The record it would change, `citizen-…`, `business-…` or `parcel-…`.
    pub record: String,
    /// When it was proposed (RFC 3339).
    pub proposed_at: String,
    pub correction: Correction,
}

/// A redaction proposal waiting for a supervisor.
#[derive(SimpleObject)]
pub struct OpenRedaction {
    /// The record whose event it would redact, `citizen-…`, `business-…` or `parcel-…`.
    pub record: String,
    /// When it was proposed (RFC 3339).
    pub proposed_at: String,
    pub redaction: Redaction,
}

/// The proposals of `event_type` in the change feed's index, oldest first, at most
/// [`MAX_SCANNED`], each read from the log and kept as `keep` maps it (`None`: skipped), with
/// its record and its time.
async fn scan<T>(
    h: &NodeHandles,
    event_type: &str,
    mut keep: impl FnMut(RecordId, &RecordedEvent) -> Option<T>,
) -> Result<Vec<(RecordId, i64, T)>, ApiError> {
    let types = [event_type.to_owned()];
    let mut found = Vec::new();
    let (mut after, mut scanned) = (None, 0usize);
    while scanned < MAX_SCANNED {
        let positions = h
            .projections
            .changes(after, &[], &types, 1000.min(MAX_SCANNED - scanned))
            .await
            .map_err(super::loaders::projection_error)?;
        let Some(&last) = positions.last() else {
            break;
        };
        scanned += positions.len();
        after = Some(last);
        for p in positions {
            let Some(event) = h.log.read_all(p, 1).await?.into_iter().next() else {
                continue;
            };
            let Ok(record) = event.stream_id.as_str().parse::<RecordId>() else {
                continue;
            };
            if let Some(kept) = keep(record, &event) {
                found.push((record, event.recorded_at, kept));
            }
        }
    }
    Ok(found)
}

/// A field of a proposal's payload; `None` once the payload is blanked.
fn payload_field(event: &RecordedEvent, field: &str) -> Option<Value> {
    event
        .stored_data()
        .and_then(|d| serde_json::from_slice::<Value>(d).ok())
        .and_then(|mut v| v.get_mut(field).map(Value::take))
}

/// Records' current states, each read from the projections once per call.
struct States<'h> {
    h: &'h NodeHandles,
    read: BTreeMap<RecordId, Option<Record>>,
}

impl<'h> States<'h> {
    fn new(h: &'h NodeHandles) -> Self {
        States {
            h,
            read: BTreeMap::new(),
        }
    }

    async fn get(&mut self, record: RecordId) -> Result<Option<&Record>, ApiError> {
        if !self.read.contains_key(&record) {
            let state = self
                .h
                .projections
                .record(record)
                .await
                .map_err(super::loaders::projection_error)?
                .map(|v| v.state);
            self.read.insert(record, state);
        }
        Ok(self.read.get(&record).and_then(Option::as_ref))
    }
}

/// Stewardship lists that span records.
#[derive(Default)]
pub struct QueueQuery;

#[Object]
impl QueueQuery {
    /// Correction proposals still pending, oldest first, across every record: the supervisors'
    /// queue. Stewards, supervisors and auditors. Read from the change feed's index of
    /// `CorrectionProposed` events (at most 20,000 per call) and each record's current state;
    /// a citizen's proposal is a read of their identity data and is logged.
    async fn open_corrections(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> Result<Vec<OpenCorrection>, ApiError> {
        require(ctx, &[Role::Steward, Role::Supervisor, Role::Auditor])?;
        let first = super::query::page_size(ctx, first)?;
        let h = handles(ctx)?;
        // A redacted proposal has no data left to name its correction: skipped.
        let proposals = scan(h, "CorrectionProposed", |_, event| {
            payload_field(event, "correction")
                .and_then(|c| serde_json::from_value::<CorrectionId>(c).ok())
        })
        .await?;
        let mut states = States::new(h);
        let mut out = Vec::new();
        for (record, at, id) in proposals {
            let Some(state) = states.get(record).await? else {
                continue;
            };
            let all = match state {
                Record::Citizen(c) => &c.corrections,
                Record::Business(b) => &b.corrections,
                Record::Parcel(p) => &p.corrections,
            };
            let Some(pending) = all.get(&id).filter(|c| {
                matches!(
                    c.status,
                    citydb_domain::stewardship::CorrectionStatus::Pending
                )
            }) else {
                continue;
            };
            if let RecordId::Citizen(c) = record {
                personal(ctx, c.uuid(), FieldGroup::Identity, "openCorrections")?;
            }
            let one: citydb_domain::stewardship::Corrections = [(id, pending.clone())].into();
            let Some(correction) = corrections(&one).pop() else {
                continue;
            };
            out.push(OpenCorrection {
                record: record.to_string(),
                proposed_at: format_micros(at),
                correction,
            });
            if out.len() == first {
                break;
            }
        }
        Ok(out)
    }

    /// Redaction proposals still pending, oldest first, across every record: the supervisors'
    /// queue of erasures. Stewards, supervisors and auditors. Read from the change feed's index
    /// of `RedactionProposed` events (at most 20,000 per call) and each record's current
    /// state; a citizen's proposal is a read of their identity data and is logged.
    async fn open_redactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> Result<Vec<OpenRedaction>, ApiError> {
        require(ctx, READERS)?;
        let first = super::query::page_size(ctx, first)?;
        let h = handles(ctx)?;
        // The record's redactions hold one entry per proposal, in proposal order, so the n-th
        // proposal of a position (one proposed again after a rejection) is the n-th entry of
        // that position: the scan starts at the log's beginning and counts them.
        let mut proposed: HashMap<(RecordId, u64), usize> = HashMap::new();
        let proposals = scan(h, "RedactionProposed", |record, event| {
            let position = payload_field(event, "position")?.as_u64()?;
            let nth = proposed.entry((record, position)).or_default();
            *nth += 1;
            Some((position, *nth - 1))
        })
        .await?;
        let mut states = States::new(h);
        let mut out = Vec::new();
        for (record, at, (position, nth)) in proposals {
            let Some(state) = states.get(record).await? else {
                continue;
            };
            let privacy = match state {
                Record::Citizen(c) => &c.privacy,
                Record::Business(b) => &b.privacy,
                Record::Parcel(p) => &p.privacy,
            };
            let Some(pending) = privacy
                .redactions
                .iter()
                .filter(|r| r.position == position)
                .nth(nth)
                .filter(|r| r.status == RedactionStatus::Pending)
            else {
                continue;
            };
            if let RecordId::Citizen(c) = record {
                personal(ctx, c.uuid(), FieldGroup::Identity, "openRedactions")?;
            }
            out.push(OpenRedaction {
                record: record.to_string(),
                proposed_at: format_micros(at),
                redaction: Redaction::new(pending, Some(at), None),
            });
            if out.len() == first {
                break;
            }
        }
        Ok(out)
    }
}
