//! The supervisors' queue (issue 17): correction proposals still pending, across every record.

use std::collections::BTreeMap;

use async_graphql::{Context, Object, SimpleObject};

use citydb_domain::{CorrectionId, Record, RecordId};

use super::NodeHandles;
use super::access::{personal, require};
use super::records::{Correction, corrections};
use super::time::format_micros;
use crate::auth::{FieldGroup, Role};
use crate::error::ApiError;

/// Most `CorrectionProposed` events one call reads from the change feed's index: the work of a
/// call is bounded whatever the log's age (the queue is meant to be short).
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
        let h = ctx
            .data::<NodeHandles>()
            .map_err(|_| ApiError::internal("node handles missing"))?;
        let types = ["CorrectionProposed".to_owned()];
        // Proposal id → (record, proposed at), oldest first by log position.
        let mut proposals: Vec<(CorrectionId, RecordId, i64)> = Vec::new();
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
                // A redacted proposal has no data left to name its correction: skipped.
                let Some(id) = event
                    .stored_data()
                    .and_then(|d| serde_json::from_slice::<serde_json::Value>(d).ok())
                    .and_then(|v| v.get("correction").cloned())
                    .and_then(|c| serde_json::from_value::<CorrectionId>(c).ok())
                else {
                    continue;
                };
                proposals.push((id, record, event.recorded_at));
            }
        }
        let mut states: BTreeMap<RecordId, Option<Record>> = BTreeMap::new();
        let mut out = Vec::new();
        for (id, record, at) in proposals {
            let state = match states.entry(record) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(
                    h.projections
                        .record(record)
                        .await
                        .map_err(super::loaders::projection_error)?
                        .map(|v| v.state),
                ),
            };
            let Some(state) = state.as_ref() else {
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
}
