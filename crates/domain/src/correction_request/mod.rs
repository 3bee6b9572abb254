//! A citizen's request to correct their own data (Law 91/2025/QH15 art. 4;
//! Decree 356/2025/ND-CP; see `docs/privacy.md, "Correction requests"`), as pure rules.
//!
//! Each request is its own stream, `correction_request-<uuid>`:
//!
//! ```text
//! Submitted ──► Acknowledged ──► Resolved (links the approved correction)
//!     │              │      └──► Refused (reason, legal basis)
//!     │              └─────────► Withdrawn (by the citizen)
//!     ├──────────────────────────► Refused / Withdrawn / Resolved
//!     └ Extended (once, ≤ 15 days) and Overdue (per deadline, once) while open
//! ```
//!
//! The request does not change the record: a steward fixes the data through
//! the ordinary stewardship commands (a proposal a different supervisor
//! approves), then resolves the request naming that correction; `decide`
//! checks on the citizen's record that the correction took effect and changed
//! the requested field. Dates arrive in commands ("today" is the caller's
//! clock), deadlines are computed with [`WorkingCalendar`].

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

use crate::calendar::WorkingCalendar;
use crate::citizen::state::Citizen;
use crate::date::Date;
use crate::error::DomainError;
use crate::ids::{CitizenId, CorrectionId, RecordKind};
use crate::stewardship::{Actor, CorrectionStatus, StewardRole, field_spec};
use crate::text;

/// Stream category of correction requests.
pub const REQUEST_CATEGORY: &str = "correction_request";
/// Working days to acknowledge a request (Decree 356/2025/ND-CP; see the docs).
pub const ACKNOWLEDGE_WORKING_DAYS: u32 = 2;
/// Days to complete a rectification (Decree 356/2025/ND-CP; see the docs).
pub const RESOLVE_DAYS: u32 = 10;
/// Longest single extension, in days; granted once.
pub const MAX_EXTENSION_DAYS: u32 = 15;
/// Most evidence references on one request.
pub const MAX_EVIDENCE: usize = 10;
/// Longest evidence reference (a document number, a dossier id), in characters.
pub const MAX_EVIDENCE_CHARS: usize = 200;
/// Longest proposed value, in characters.
pub const MAX_PROPOSED_VALUE_CHARS: usize = 1_000;

/// A correction request (stream `correction_request-<uuid>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub Uuid);

impl RequestId {
    /// The stream id, `correction_request-<uuid>`.
    pub fn stream_id(&self) -> String {
        format!("{REQUEST_CATEGORY}-{}", self.0)
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.stream_id())
    }
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deadline {
    Acknowledge,
    Resolve,
}

impl Deadline {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Acknowledge => "acknowledge",
            Self::Resolve => "resolve",
        }
    }
}

/// Who acts on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RequestActor {
    /// The person the record describes (a citizen principal).
    Citizen { record: CitizenId },
    /// A steward or supervisor.
    Staff { actor: Actor },
    /// The node's periodic deadline check.
    Clock,
}

impl RequestActor {
    /// The id written into events and metadata.
    pub fn id(&self) -> String {
        match self {
            Self::Citizen { record } => format!("citizen-{record}"),
            Self::Staff { actor } => actor.id.clone(),
            Self::Clock => "citydb-deadlines".to_owned(),
        }
    }

    pub fn role(&self) -> &'static str {
        match self {
            Self::Citizen { .. } => "citizen",
            Self::Staff { actor } => match actor.role {
                StewardRole::Steward => "steward",
                StewardRole::Supervisor => "supervisor",
            },
            Self::Clock => "system",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum RequestCommand {
    RequestCorrection {
        request: RequestId,
        citizen: CitizenId,
        field: String,
        proposed_value: String,
        reason: String,
        evidence: Vec<String>,
        on: Date,
    },
    AcknowledgeCorrectionRequest {
        request: RequestId,
        on: Date,
    },
    ExtendCorrectionRequest {
        request: RequestId,
        days: u32,
        reason: String,
        on: Date,
    },
    ResolveCorrectionRequest {
        request: RequestId,
        correction: CorrectionId,
        on: Date,
    },
    RefuseCorrectionRequest {
        request: RequestId,
        reason: String,
        legal_basis: String,
        on: Date,
    },
    WithdrawCorrectionRequest {
        request: RequestId,
        on: Date,
    },
    RecordCorrectionRequestOverdue {
        request: RequestId,
        deadline: Deadline,
        on: Date,
    },
}

impl RequestCommand {
    pub fn request(&self) -> RequestId {
        match self {
            Self::RequestCorrection { request, .. }
            | Self::AcknowledgeCorrectionRequest { request, .. }
            | Self::ExtendCorrectionRequest { request, .. }
            | Self::ResolveCorrectionRequest { request, .. }
            | Self::RefuseCorrectionRequest { request, .. }
            | Self::WithdrawCorrectionRequest { request, .. }
            | Self::RecordCorrectionRequestOverdue { request, .. } => *request,
        }
    }

    pub fn command_type(&self) -> &'static str {
        match self {
            Self::RequestCorrection { .. } => "RequestCorrection",
            Self::AcknowledgeCorrectionRequest { .. } => "AcknowledgeCorrectionRequest",
            Self::ExtendCorrectionRequest { .. } => "ExtendCorrectionRequest",
            Self::ResolveCorrectionRequest { .. } => "ResolveCorrectionRequest",
            Self::RefuseCorrectionRequest { .. } => "RefuseCorrectionRequest",
            Self::WithdrawCorrectionRequest { .. } => "WithdrawCorrectionRequest",
            Self::RecordCorrectionRequestOverdue { .. } => "RecordCorrectionRequestOverdue",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RequestEvent {
    CorrectionRequestSubmitted {
        request: RequestId,
        citizen: CitizenId,
        field: String,
        proposed_value: String,
        reason: String,
        evidence: Vec<String>,
        submitted: Date,
        acknowledge_by: Date,
        due_by: Date,
    },
    CorrectionRequestAcknowledged {
        steward: String,
        on: Date,
    },
    CorrectionRequestExtended {
        days: u32,
        reason: String,
        due_by: Date,
        steward: String,
        on: Date,
    },
    CorrectionRequestResolved {
        citizen: CitizenId,
        correction: CorrectionId,
        steward: String,
        on: Date,
    },
    CorrectionRequestRefused {
        reason: String,
        legal_basis: String,
        steward: String,
        on: Date,
    },
    CorrectionRequestWithdrawn {
        on: Date,
    },
    CorrectionRequestOverdue {
        deadline: Deadline,
        /// The deadline that passed.
        due: Date,
        on: Date,
    },
}

/// Every request event type with its schema version.
pub const REQUEST_EVENT_SCHEMA_VERSIONS: &[(&str, u32)] = &[
    ("CorrectionRequestSubmitted", 1),
    ("CorrectionRequestAcknowledged", 1),
    ("CorrectionRequestExtended", 1),
    ("CorrectionRequestResolved", 1),
    ("CorrectionRequestRefused", 1),
    ("CorrectionRequestWithdrawn", 1),
    ("CorrectionRequestOverdue", 1),
];

impl RequestEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::CorrectionRequestSubmitted { .. } => "CorrectionRequestSubmitted",
            Self::CorrectionRequestAcknowledged { .. } => "CorrectionRequestAcknowledged",
            Self::CorrectionRequestExtended { .. } => "CorrectionRequestExtended",
            Self::CorrectionRequestResolved { .. } => "CorrectionRequestResolved",
            Self::CorrectionRequestRefused { .. } => "CorrectionRequestRefused",
            Self::CorrectionRequestWithdrawn { .. } => "CorrectionRequestWithdrawn",
            Self::CorrectionRequestOverdue { .. } => "CorrectionRequestOverdue",
        }
    }

    pub fn schema_version(&self) -> u32 {
        1
    }

    /// Reads a stored request event; every type is at version 1 so far.
    pub fn decode(
        event_type: &str,
        schema_version: u32,
        data: &serde_json::Value,
    ) -> Result<RequestEvent, RequestError> {
        let known = REQUEST_EVENT_SCHEMA_VERSIONS
            .iter()
            .any(|(t, v)| *t == event_type && *v == schema_version);
        if !known {
            return Err(RequestError::Corrupt(format!(
                "unknown request event {event_type} v{schema_version}"
            )));
        }
        let event: RequestEvent = serde_json::from_value(data.clone())
            .map_err(|e| RequestError::Corrupt(format!("{event_type}: {e}")))?;
        if event.event_type() != event_type {
            return Err(RequestError::Corrupt(format!(
                "payload says {}, stored type is {event_type}",
                event.event_type()
            )));
        }
        Ok(event)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Submitted,
    Acknowledged,
    Resolved,
    Refused,
    Withdrawn,
}

impl RequestStatus {
    pub fn is_open(self) -> bool {
        matches!(self, Self::Submitted | Self::Acknowledged)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::Refused => "refused",
            Self::Withdrawn => "withdrawn",
        }
    }
}

/// How a closed request ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Closure {
    Resolved {
        correction: CorrectionId,
        by: String,
        on: Date,
    },
    Refused {
        reason: String,
        legal_basis: String,
        by: String,
        on: Date,
    },
    Withdrawn {
        on: Date,
    },
}

/// A request's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrectionRequest {
    pub id: RequestId,
    pub citizen: CitizenId,
    pub field: String,
    pub proposed_value: String,
    pub reason: String,
    pub evidence: Vec<String>,
    pub submitted: Date,
    pub acknowledge_by: Date,
    pub due_by: Date,
    pub status: RequestStatus,
    pub acknowledged: Option<(String, Date)>,
    /// The one extension: days granted and why.
    pub extension: Option<(u32, String)>,
    /// Deadlines recorded as passed (each at most once).
    pub overdue: Vec<Deadline>,
    pub closure: Option<Closure>,
}

impl CorrectionRequest {
    /// Open, with a recorded overdue deadline that still binds: the
    /// acknowledgement while unacknowledged, the resolution while open.
    pub fn is_overdue(&self) -> bool {
        self.overdue.iter().any(|d| self.deadline_pending(*d))
    }

    fn deadline_pending(&self, deadline: Deadline) -> bool {
        match deadline {
            Deadline::Acknowledge => self.status == RequestStatus::Submitted,
            Deadline::Resolve => self.status.is_open(),
        }
    }

    /// The date `deadline` falls on.
    pub fn due(&self, deadline: Deadline) -> Date {
        match deadline {
            Deadline::Acknowledge => self.acknowledge_by,
            Deadline::Resolve => self.due_by,
        }
    }

    /// Deadlines past on `today` that are pending and not recorded yet.
    pub fn deadlines_passed(&self, today: Date) -> Vec<Deadline> {
        [Deadline::Acknowledge, Deadline::Resolve]
            .into_iter()
            .filter(|d| {
                self.deadline_pending(*d) && today > self.due(*d) && !self.overdue.contains(d)
            })
            .collect()
    }
}

/// Why a request command was refused (stable codes for the API).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum RequestError {
    #[error("{0}")]
    Domain(#[from] DomainError),
    #[error("correction request {0} does not exist")]
    NotFound(RequestId),
    #[error("correction request {0} exists already")]
    Exists(RequestId),
    #[error("a citizen may only file and withdraw requests about their own record")]
    NotOwnRecord,
    #[error("only a steward or supervisor may {0}")]
    NotStaff(&'static str),
    #[error("{action} is not possible on a {status} request")]
    InvalidTransition {
        action: &'static str,
        status: &'static str,
    },
    #[error("the request was extended already; the decree allows one extension")]
    AlreadyExtended,
    #[error("an extension is 1 to {MAX_EXTENSION_DAYS} days, not {0}")]
    ExtensionTooLong(u32),
    #[error("the {} deadline is not past on {on}", deadline.as_str())]
    NotOverdue { deadline: Deadline, on: Date },
    #[error("the {} deadline was recorded overdue already", .0.as_str())]
    AlreadyOverdue(Deadline),
    #[error("correction {correction} has not taken effect (it is {status})")]
    CorrectionNotApplied {
        correction: CorrectionId,
        status: &'static str,
    },
    #[error("correction {correction} does not change `{field}`, the field requested")]
    CorrectionOffField {
        correction: CorrectionId,
        field: String,
    },
    #[error("invalid evidence: {0}")]
    Evidence(String),
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("{0} is before the request was submitted")]
    BeforeSubmission(Date),
    #[error("no working day can be computed after {0}")]
    OutOfCalendar(Date),
    #[error("stored request stream is corrupt: {0}")]
    Corrupt(String),
}

impl RequestError {
    /// Stable code, `extensions.reason` in the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Domain(d) => d.code(),
            Self::NotFound(_) => "REQUEST_NOT_FOUND",
            Self::Exists(_) => "REQUEST_EXISTS",
            Self::NotOwnRecord => "NOT_OWN_RECORD",
            Self::NotStaff(_) => "NOT_STEWARD",
            Self::InvalidTransition { .. } => "INVALID_TRANSITION",
            Self::AlreadyExtended => "ALREADY_EXTENDED",
            Self::ExtensionTooLong(_) => "EXTENSION_TOO_LONG",
            Self::NotOverdue { .. } => "NOT_OVERDUE",
            Self::AlreadyOverdue(_) => "ALREADY_OVERDUE",
            Self::CorrectionNotApplied { .. } => "CORRECTION_NOT_APPLIED",
            Self::CorrectionOffField { .. } => "CORRECTION_OFF_FIELD",
            Self::Evidence(_) => "INVALID_EVIDENCE",
            Self::Empty(_) => "MISSING_VALUE",
            Self::BeforeSubmission(_) => "DATE_BEFORE_SUBMISSION",
            Self::OutOfCalendar(_) => "OUT_OF_CALENDAR",
            Self::Corrupt(_) => "CORRUPT",
        }
    }
}

/// What a request command needs loaded: the request's state and, for filing
/// and resolving, the citizen's record (`None` = that stream is empty).
#[derive(Debug, Clone, Copy)]
pub struct RequestSnapshot<'a> {
    pub request: Option<&'a CorrectionRequest>,
    pub citizen: Option<&'a Citizen>,
}

impl RequestCommand {
    /// The citizen record the command must read, if any (filing: the
    /// requester's; resolving: the request's, known once it is loaded).
    pub fn reads_citizen(&self, request: Option<&CorrectionRequest>) -> Option<CitizenId> {
        match self {
            Self::RequestCorrection { citizen, .. } => Some(*citizen),
            Self::ResolveCorrectionRequest { .. } => request.map(|r| r.citizen),
            _ => None,
        }
    }
}

fn staff<'a>(actor: &'a RequestActor, action: &'static str) -> Result<&'a Actor, RequestError> {
    match actor {
        RequestActor::Staff { actor } => Ok(actor),
        _ => Err(RequestError::NotStaff(action)),
    }
}

fn open<'a>(
    request: Option<&'a CorrectionRequest>,
    id: RequestId,
    action: &'static str,
) -> Result<&'a CorrectionRequest, RequestError> {
    let r = request.ok_or(RequestError::NotFound(id))?;
    if !r.status.is_open() {
        return Err(RequestError::InvalidTransition {
            action,
            status: r.status.as_str(),
        });
    }
    Ok(r)
}

fn not_before(r: &CorrectionRequest, on: Date) -> Result<(), RequestError> {
    if on < r.submitted {
        return Err(RequestError::BeforeSubmission(on));
    }
    Ok(())
}

fn non_empty(what: &'static str, value: &str) -> Result<(), RequestError> {
    if value.trim().is_empty() {
        return Err(RequestError::Empty(what));
    }
    Ok(())
}

fn check_evidence(evidence: &[String]) -> Result<(), RequestError> {
    if evidence.len() > MAX_EVIDENCE {
        return Err(RequestError::Evidence(format!(
            "at most {MAX_EVIDENCE} references, not {}",
            evidence.len()
        )));
    }
    for reference in evidence {
        if reference.trim().is_empty() {
            return Err(RequestError::Evidence("an empty reference".to_owned()));
        }
        let length = reference.chars().take(MAX_EVIDENCE_CHARS + 1).count();
        if length > MAX_EVIDENCE_CHARS {
            return Err(RequestError::Evidence(format!(
                "a reference is longer than {MAX_EVIDENCE_CHARS} characters"
            )));
        }
    }
    Ok(())
}

/// Decides what `command` appends to the request's stream, or why not.
/// Pure: the same snapshot, command, actor and calendar give the same answer.
pub fn decide(
    s: RequestSnapshot<'_>,
    command: &RequestCommand,
    actor: &RequestActor,
    calendar: &WorkingCalendar,
) -> Result<Vec<RequestEvent>, RequestError> {
    use RequestCommand as C;
    use RequestEvent as E;
    let id = command.request();
    let event = match command {
        C::RequestCorrection {
            request,
            citizen,
            field,
            proposed_value,
            reason,
            evidence,
            on,
        } => {
            let RequestActor::Citizen { record } = actor else {
                return Err(RequestError::NotOwnRecord);
            };
            if record != citizen {
                return Err(RequestError::NotOwnRecord);
            }
            if s.request.is_some() {
                return Err(RequestError::Exists(*request));
            }
            let found = s
                .citizen
                .ok_or(DomainError::RecordNotFound((*citizen).into()))?;
            if let Some(survivor) = found.merged_into {
                return Err(DomainError::RecordMerged {
                    id: (*citizen).into(),
                    survivor: survivor.into(),
                }
                .into());
            }
            field_spec(RecordKind::Citizen, field)?;
            non_empty("proposed_value", proposed_value)?;
            non_empty("reason", reason)?;
            text::check("reason", "reason", reason)?;
            if proposed_value
                .chars()
                .take(MAX_PROPOSED_VALUE_CHARS + 1)
                .count()
                > MAX_PROPOSED_VALUE_CHARS
            {
                return Err(DomainError::TextTooLong {
                    field: "proposed_value".to_owned(),
                    max: MAX_PROPOSED_VALUE_CHARS,
                    length: proposed_value.chars().count(),
                }
                .into());
            }
            check_evidence(evidence)?;
            let acknowledge_by = calendar
                .add_working_days(*on, ACKNOWLEDGE_WORKING_DAYS)
                .ok_or(RequestError::OutOfCalendar(*on))?;
            let due_by = calendar
                .add_days(*on, RESOLVE_DAYS)
                .ok_or(RequestError::OutOfCalendar(*on))?;
            E::CorrectionRequestSubmitted {
                request: *request,
                citizen: *citizen,
                field: field.clone(),
                proposed_value: proposed_value.clone(),
                reason: reason.clone(),
                evidence: evidence.clone(),
                submitted: *on,
                acknowledge_by,
                due_by,
            }
        }
        C::AcknowledgeCorrectionRequest { on, .. } => {
            let steward = staff(actor, "acknowledge a request")?;
            let r = open(s.request, id, "acknowledge")?;
            if r.status != RequestStatus::Submitted {
                return Err(RequestError::InvalidTransition {
                    action: "acknowledge",
                    status: r.status.as_str(),
                });
            }
            not_before(r, *on)?;
            E::CorrectionRequestAcknowledged {
                steward: steward.id.clone(),
                on: *on,
            }
        }
        C::ExtendCorrectionRequest {
            days, reason, on, ..
        } => {
            let steward = staff(actor, "extend a request")?;
            let r = open(s.request, id, "extend")?;
            not_before(r, *on)?;
            if r.extension.is_some() {
                return Err(RequestError::AlreadyExtended);
            }
            if *days == 0 || *days > MAX_EXTENSION_DAYS {
                return Err(RequestError::ExtensionTooLong(*days));
            }
            // The extension is decided while the period runs, not after it lapsed.
            if r.overdue.contains(&Deadline::Resolve) {
                return Err(RequestError::AlreadyOverdue(Deadline::Resolve));
            }
            non_empty("reason", reason)?;
            text::check("reason", "reason", reason)?;
            let due_by = calendar
                .add_days(r.due_by, *days)
                .ok_or(RequestError::OutOfCalendar(r.due_by))?;
            E::CorrectionRequestExtended {
                days: *days,
                reason: reason.clone(),
                due_by,
                steward: steward.id.clone(),
                on: *on,
            }
        }
        C::ResolveCorrectionRequest { correction, on, .. } => {
            let steward = staff(actor, "resolve a request")?;
            let r = open(s.request, id, "resolve")?;
            not_before(r, *on)?;
            let citizen = s
                .citizen
                .ok_or(DomainError::RecordNotFound(r.citizen.into()))?;
            let found = citizen
                .corrections
                .get(correction)
                .ok_or(DomainError::CorrectionNotFound(*correction))?;
            let status = match found.status {
                CorrectionStatus::Approved { .. } => None,
                CorrectionStatus::Pending => Some("pending"),
                CorrectionStatus::Rejected { .. } => Some("rejected"),
                CorrectionStatus::Withdrawn => Some("withdrawn"),
            };
            if let Some(status) = status {
                return Err(RequestError::CorrectionNotApplied {
                    correction: *correction,
                    status,
                });
            }
            if !found.changes.iter().any(|c| c.field == r.field) {
                return Err(RequestError::CorrectionOffField {
                    correction: *correction,
                    field: r.field.clone(),
                });
            }
            E::CorrectionRequestResolved {
                citizen: r.citizen,
                correction: *correction,
                steward: steward.id.clone(),
                on: *on,
            }
        }
        C::RefuseCorrectionRequest {
            reason,
            legal_basis,
            on,
            ..
        } => {
            let steward = staff(actor, "refuse a request")?;
            let r = open(s.request, id, "refuse")?;
            not_before(r, *on)?;
            non_empty("reason", reason)?;
            non_empty("legal_basis", legal_basis)?;
            text::check("reason", "reason", reason)?;
            text::check("legal_basis", "legal_basis", legal_basis)?;
            E::CorrectionRequestRefused {
                reason: reason.clone(),
                legal_basis: legal_basis.clone(),
                steward: steward.id.clone(),
                on: *on,
            }
        }
        C::WithdrawCorrectionRequest { on, .. } => {
            let r = open(s.request, id, "withdraw")?;
            match actor {
                RequestActor::Citizen { record } if *record == r.citizen => {}
                _ => return Err(RequestError::NotOwnRecord),
            }
            not_before(r, *on)?;
            E::CorrectionRequestWithdrawn { on: *on }
        }
        C::RecordCorrectionRequestOverdue { deadline, on, .. } => {
            let r = open(s.request, id, "record overdue")?;
            if r.overdue.contains(deadline) {
                return Err(RequestError::AlreadyOverdue(*deadline));
            }
            if !r.deadlines_passed(*on).contains(deadline) {
                return Err(RequestError::NotOverdue {
                    deadline: *deadline,
                    on: *on,
                });
            }
            E::CorrectionRequestOverdue {
                deadline: *deadline,
                due: r.due(*deadline),
                on: *on,
            }
        }
    };
    Ok(vec![event])
}

/// Folds one event into a request's state. Errors mean a corrupt or
/// misrouted stream, never user input (`decide` checked it).
pub fn evolve(
    state: Option<CorrectionRequest>,
    event: &RequestEvent,
) -> Result<CorrectionRequest, RequestError> {
    use RequestEvent as E;
    let corrupt = |what: &str| RequestError::Corrupt(what.to_owned());
    let mut r = match (state, event) {
        (
            None,
            E::CorrectionRequestSubmitted {
                request,
                citizen,
                field,
                proposed_value,
                reason,
                evidence,
                submitted,
                acknowledge_by,
                due_by,
            },
        ) => {
            return Ok(CorrectionRequest {
                id: *request,
                citizen: *citizen,
                field: field.clone(),
                proposed_value: proposed_value.clone(),
                reason: reason.clone(),
                evidence: evidence.clone(),
                submitted: *submitted,
                acknowledge_by: *acknowledge_by,
                due_by: *due_by,
                status: RequestStatus::Submitted,
                acknowledged: None,
                extension: None,
                overdue: Vec::new(),
                closure: None,
            });
        }
        (None, _) => return Err(corrupt("a request stream must start with its submission")),
        (Some(_), E::CorrectionRequestSubmitted { .. }) => {
            return Err(corrupt("a request submitted twice"));
        }
        (Some(r), _) => r,
    };
    match event {
        E::CorrectionRequestSubmitted { .. } => {}
        E::CorrectionRequestAcknowledged { steward, on } => {
            r.status = RequestStatus::Acknowledged;
            r.acknowledged = Some((steward.clone(), *on));
        }
        E::CorrectionRequestExtended {
            days,
            reason,
            due_by,
            ..
        } => {
            r.extension = Some((*days, reason.clone()));
            r.due_by = *due_by;
        }
        E::CorrectionRequestResolved {
            correction,
            steward,
            on,
            ..
        } => {
            r.status = RequestStatus::Resolved;
            r.closure = Some(Closure::Resolved {
                correction: *correction,
                by: steward.clone(),
                on: *on,
            });
        }
        E::CorrectionRequestRefused {
            reason,
            legal_basis,
            steward,
            on,
        } => {
            r.status = RequestStatus::Refused;
            r.closure = Some(Closure::Refused {
                reason: reason.clone(),
                legal_basis: legal_basis.clone(),
                by: steward.clone(),
                on: *on,
            });
        }
        E::CorrectionRequestWithdrawn { on } => {
            r.status = RequestStatus::Withdrawn;
            r.closure = Some(Closure::Withdrawn { on: *on });
        }
        E::CorrectionRequestOverdue { deadline, .. } => {
            if !r.overdue.contains(deadline) {
                r.overdue.push(*deadline);
            }
        }
    }
    Ok(r)
}

/// The idempotency key of "deadline `deadline` of `request` passed": the
/// same on every node and after every restart, so the overdue event is
/// appended once however many times the periodic task runs.
pub fn overdue_command_id(request: RequestId, deadline: Deadline) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x6369_7479_6462_5f72_6571_5f6f_7665_7264);
    let name = format!("{}/{}", request.stream_id(), deadline.as_str());
    Uuid::new_v5(&NAMESPACE, name.as_bytes())
}

#[cfg(test)]
mod tests;
