//! What auditors see: events with their hashes, verification of the chain, the log head, and
//! the access log of a citizen's personal data.

use async_graphql::{Json, SimpleObject};
use serde_json::Value;

use citydb_log::{RecordedEvent, VerifyReport};

use super::time::format_micros;
use crate::access_log::AccessEntry;

/// One event of the log, as stored and hashed.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct LogEvent {
    pub position: i64,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_id: String,
    pub event_type: String,
    pub schema_version: i32,
    /// RFC 3339, microseconds, UTC.
    pub recorded_at: String,
    /// The payload (the stored bytes, parsed); `null` once redacted.
    pub data: Json<Value>,
    /// The payload was blanked by an approved redaction (the record's `RedactionApproved`
    /// event names the order): `dataHash` and `hash` are unchanged, so the chain still verifies.
    pub redacted: bool,
    /// Actor, role, reason, legal basis, correlation and causation ids, end user, case.
    pub metadata: Json<Value>,
    pub actor: Option<String>,
    pub reason: Option<String>,
    pub legal_basis: Option<String>,
    pub data_hash: String,
    pub prev_stream_hash: String,
    pub prev_log_hash: String,
    pub hash: String,
    /// From when the event's fact holds in the world (valid time) and on what basis; `null`
    /// for events that are not a register's (command markers, access-log entries) and for a
    /// redacted payload.
    pub valid: Option<ValidTime>,
}

/// Where an event's valid time comes from (see docs/domain.md, "Two kinds of time").
#[derive(async_graphql::Enum, Copy, Clone, Eq, PartialEq)]
pub enum ValidBasis {
    /// The event's data states it (`field`).
    Stated,
    /// The command stated it (`effective_at` in the metadata).
    EffectiveAt,
    /// Nothing stated: the day it was recorded, in Vietnam's time zone.
    Recorded,
    /// A correction of wrongly recorded data: the corrected value held whenever the value it
    /// replaces was recorded to hold.
    FixesPast,
    /// An approval: from when its proposal (`correction`) says.
    AsProposed,
    /// Not a fact about the record's subject (keys, redactions, restrictions, rejected or
    /// withdrawn proposals): recorded time only.
    NotAFact,
}

/// An event's valid time.
#[derive(SimpleObject)]
pub struct ValidTime {
    /// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`; `null` for `FIXES_PAST`, `AS_PROPOSED`, `NOT_A_FACT`.
    pub from: Option<String>,
    pub basis: ValidBasis,
    /// The data field that states it, for `STATED` (`since`, `date`, `birth_date`, …).
    pub field: Option<String>,
    /// The proposal an approval takes its valid time from, for `AS_PROPOSED`.
    pub correction: Option<String>,
}

impl ValidTime {
    /// The valid time of a register event, read from its payload and metadata as stored.
    fn of(e: &RecordedEvent, data: &Value, effective_at: Option<&str>) -> Option<Self> {
        use citydb_domain::valid_time::{ValidFrom, recorded_on, valid_from};
        if e.is_redacted() {
            return None;
        }
        let event = citydb_domain::upcast(&e.event_type, e.schema_version, data).ok()?;
        let effective = effective_at.and_then(|d| d.parse().ok());
        let v = valid_from(&event, effective, recorded_on(e.recorded_at));
        let from = v.date().map(|d| d.to_string());
        let (basis, field, correction) = match v {
            ValidFrom::Stated { field, .. } => (ValidBasis::Stated, Some(field.to_owned()), None),
            ValidFrom::Effective { .. } => (ValidBasis::EffectiveAt, None, None),
            ValidFrom::Recorded { .. } => (ValidBasis::Recorded, None, None),
            ValidFrom::FixesPast => (ValidBasis::FixesPast, None, None),
            ValidFrom::AsProposed { correction } => {
                (ValidBasis::AsProposed, None, Some(correction.to_string()))
            }
            ValidFrom::NotAFact => (ValidBasis::NotAFact, None, None),
        };
        Some(ValidTime {
            from,
            basis,
            field,
            correction,
        })
    }
}

impl From<&RecordedEvent> for LogEvent {
    fn from(e: &RecordedEvent) -> Self {
        let metadata = e.metadata();
        let data = serde_json::from_slice(&e.data).unwrap_or(Value::Null);
        let valid = ValidTime::of(e, &data, metadata.effective_at.as_deref());
        LogEvent {
            position: e.position as i64,
            stream_id: e.stream_id.to_string(),
            stream_version: e.stream_version as i64,
            event_id: e.event_id.to_string(),
            event_type: e.event_type.clone(),
            schema_version: e.schema_version as i32,
            recorded_at: format_micros(e.recorded_at),
            data: Json(data),
            redacted: e.is_redacted(),
            metadata: Json(serde_json::from_slice(&e.metadata).unwrap_or(Value::Null)),
            actor: metadata.actor,
            reason: metadata.reason,
            legal_basis: metadata.legal_basis,
            data_hash: e.data_hash.to_hex(),
            prev_stream_hash: e.prev_stream_hash.to_hex(),
            prev_log_hash: e.prev_log_hash.to_hex(),
            hash: e.hash.to_hex(),
            valid,
        }
    }
}

#[async_graphql::ComplexObject]
impl LogEvent {
    /// This event's inclusion proof in the log's Merkle tree: against the latest checkpoint
    /// if it covers the event, else against one signed now (or, on a node without a signing
    /// key, against the tree as it is, without a checkpoint). Whoever may read the event may
    /// read its proof.
    async fn inclusion_proof(
        &self,
        ctx: &async_graphql::Context<'_>,
    ) -> Result<super::proofs::InclusionProof, crate::error::ApiError> {
        let log = &super::query::published(ctx)?.events;
        let proof = super::proofs::inclusion(log, self.position, None).await?;
        if proof.entry != self.hash {
            // The tree's leaf is not this event's hash: the tree is not this log's.
            return Err(crate::published::tree_error(
                citydb_tlog::TlogError::Diverged {
                    position: self.position as u64,
                },
            ));
        }
        Ok(proof)
    }
}

/// The last event of a log: write it down to detect a later truncation or rewrite.
#[derive(SimpleObject)]
pub struct LogHead {
    pub position: i64,
    pub hash: String,
}

/// The outcome of recomputing every hash and link.
#[derive(SimpleObject)]
pub struct Verification {
    pub intact: bool,
    pub events: i64,
    pub streams: i64,
    pub head: Option<LogHead>,
    /// The first bad position, when broken.
    pub first_bad_position: Option<i64>,
    /// Why, when broken (`data_changed`, `hash_mismatch`, `log_link_broken`, `truncated`, …).
    pub breach: Option<String>,
    pub detail: Option<String>,
}

impl From<VerifyReport> for Verification {
    fn from(r: VerifyReport) -> Self {
        let breach = r.corruption.as_ref().map(|c| c.breach.code().to_owned());
        Verification {
            intact: r.corruption.is_none(),
            events: r.events as i64,
            streams: r.streams as i64,
            head: r.head.map(|h| LogHead {
                position: h.position as i64,
                hash: h.hash.to_hex(),
            }),
            first_bad_position: r.corruption.as_ref().map(|c| c.position as i64),
            breach,
            detail: r.corruption.as_ref().map(|c| c.breach.to_string()),
        }
    }
}

/// One read of a citizen's personal data.
#[derive(SimpleObject)]
pub struct AccessRecord {
    pub position: i64,
    pub recorded_at: String,
    /// The principal (service system, steward, …) that read.
    pub principal: String,
    pub role: String,
    /// The officer on whose behalf a service read.
    pub end_user: Option<String>,
    /// The case or dossier.
    pub case: Option<String>,
    pub purpose: Option<String>,
    pub field_groups: Vec<String>,
    pub operation: String,
    pub correlation_id: String,
    pub hash: String,
}

impl From<AccessEntry> for AccessRecord {
    fn from(e: AccessEntry) -> Self {
        AccessRecord {
            position: e.position as i64,
            recorded_at: format_micros(e.recorded_at),
            principal: e.read.principal,
            role: e.read.role.as_str().to_owned(),
            end_user: e.read.end_user,
            case: e.read.case,
            purpose: e.read.purpose,
            field_groups: e
                .read
                .field_groups
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            operation: e.read.operation,
            correlation_id: e.read.correlation_id.to_string(),
            hash: e.hash,
        }
    }
}
