//! A record's redaction proposals as GraphQL (issue 17): what the domain keeps of each in the
//! record's `Privacy` (`citydb_domain::privacy`), for the people who handle them — stewards,
//! supervisors and auditors. Everyone else, services and citizens included, is refused: a
//! proposal names the court order and the reason, which are about the person.

use async_graphql::{Context, Enum, Json, SimpleObject};
use serde_json::Value;

use citydb_domain::RecordId;
use citydb_domain::privacy::{Privacy, RedactionStatus as DomainStatus};
use citydb_domain::redaction::Redaction as DomainRedaction;
use citydb_log::{Direction, EventLog, READ_BATCH, StreamId};

use super::access::require;
use super::query::handles;
use super::time::format_micros;
use crate::auth::Role;
use crate::error::ApiError;

/// Who may list redactions: those who propose, decide and audit them.
pub(super) const READERS: &[Role] = &[Role::Steward, Role::Supervisor, Role::Auditor];

/// Refuses anyone but [`READERS`].
pub(super) fn may_list(ctx: &Context<'_>) -> Result<(), ApiError> {
    require(ctx, READERS)
}

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum RedactionStatus {
    /// Waiting for a supervisor other than the proposer.
    Pending,
    /// Approved: the event's payload is blanked and every replay applies the replacement.
    Approved,
    /// Rejected, with the supervisor's reason; the event may be proposed again.
    Rejected,
}

/// A proposal to redact one event of a record (four-eyes: a steward proposes citing a court or
/// legal order, a different supervisor approves or rejects). A record and `position` name it
/// for `approveRedaction` and `rejectRedaction`; a position proposed again after a rejection
/// is listed once per proposal.
#[derive(SimpleObject, Clone)]
pub struct Redaction {
    /// Log position of the event to redact, in this record's stream.
    pub position: i64,
    /// That event's type, e.g. `ResidenceChanged`.
    pub event_type: String,
    /// That event's hash (hex) when the redaction was proposed.
    pub event_hash: String,
    pub status: RedactionStatus,
    pub reason: String,
    /// The court or legal order: its number.
    pub legal_basis_document: String,
    /// The order's date, `YYYY-MM-DD`.
    pub legal_basis_date: String,
    pub proposed_by: String,
    /// When it was proposed (RFC 3339): the time of its `RedactionProposed` event.
    pub proposed_at: Option<String>,
    /// The supervisor who approved or rejected it.
    pub decided_by: Option<String>,
    /// When (RFC 3339): the time of its `RedactionApproved` or `RedactionRejected` event.
    pub decided_at: Option<String>,
    /// Why it was rejected.
    pub rejection_reason: Option<String>,
    /// The event as the redaction leaves it (personal free text replaced by
    /// `[redacted: <order>]`), as JSON.
    pub replacement: Json<Value>,
}

impl Redaction {
    /// The domain's redaction, with the times of its proposal and decision (µs since the
    /// epoch) when known.
    pub(super) fn new(
        r: &DomainRedaction,
        proposed_at: Option<i64>,
        decided_at: Option<i64>,
    ) -> Self {
        let (status, decided_by, rejection_reason) = match &r.status {
            DomainStatus::Pending => (RedactionStatus::Pending, None, None),
            DomainStatus::Approved { by } => (RedactionStatus::Approved, Some(by.clone()), None),
            DomainStatus::Rejected { by, reason } => (
                RedactionStatus::Rejected,
                Some(by.clone()),
                Some(reason.clone()),
            ),
        };
        Redaction {
            position: i64::try_from(r.position).unwrap_or(i64::MAX),
            event_type: r.event_type.clone(),
            event_hash: r.event_hash.clone(),
            status,
            reason: r.reason.clone(),
            legal_basis_document: r.legal_basis.document_number.clone(),
            legal_basis_date: r.legal_basis.document_date.to_string(),
            proposed_by: r.proposed_by.clone(),
            proposed_at: proposed_at.map(format_micros),
            decided_at: decided_at
                .filter(|_| decided_by.is_some())
                .map(format_micros),
            decided_by,
            rejection_reason,
            replacement: Json(r.replacement.clone()),
        }
    }
}

/// Every redaction proposed on `record` (whose state is at stream version `version`), in
/// proposal order, with its times. The domain keeps no times: they are those of the record's
/// redaction events, read from its stream up to `version` — so they pair one for one with
/// the state's entries, which each `RedactionProposed` appends and each decision closes
/// (the latest entry of its position). The stream is read only for a record that has
/// redactions, and only by [`READERS`].
pub(super) async fn redactions(
    ctx: &Context<'_>,
    record: RecordId,
    version: u64,
    privacy: &Privacy,
) -> Result<Vec<Redaction>, ApiError> {
    if privacy.redactions.is_empty() {
        return Ok(Vec::new());
    }
    let times = times(handles(ctx)?.log.as_ref(), record, version).await?;
    Ok(privacy
        .redactions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (proposed, decided) = times.get(i).map_or((None, None), |t| (Some(t.1), t.2));
            Redaction::new(r, proposed, decided)
        })
        .collect())
}

/// `(target position, proposed at, decided at)` of each redaction proposed on `record`'s
/// stream up to stream version `version`, in proposal order.
async fn times(
    log: &dyn EventLog,
    record: RecordId,
    version: u64,
) -> Result<Vec<(u64, i64, Option<i64>)>, ApiError> {
    let stream: StreamId = record
        .to_string()
        .parse()
        .map_err(|e| ApiError::internal(format!("{record}: {e}")))?;
    let mut out: Vec<(u64, i64, Option<i64>)> = Vec::new();
    let mut from = 0;
    while from <= version {
        let events = log
            .read_stream(&stream, from, Direction::Forward, READ_BATCH)
            .await?;
        let Some(last) = events.last() else {
            break;
        };
        from = last.stream_version + 1;
        for event in events.iter().filter(|e| e.stream_version <= version) {
            let decision = match event.event_type.as_str() {
                "RedactionProposed" => false,
                "RedactionApproved" | "RedactionRejected" => true,
                _ => continue,
            };
            // Privacy events cannot themselves be redacted: their payload is always there.
            let Some(position) = event
                .stored_data()
                .and_then(|d| serde_json::from_slice::<Value>(d).ok())
                .and_then(|v| v.get("position").and_then(Value::as_u64))
            else {
                continue;
            };
            if !decision {
                out.push((position, event.recorded_at, None));
            } else if let Some(open) = out
                .iter_mut()
                .rev()
                .find(|(p, _, decided)| *p == position && decided.is_none())
            {
                open.2 = Some(event.recorded_at);
            }
        }
    }
    Ok(out)
}
