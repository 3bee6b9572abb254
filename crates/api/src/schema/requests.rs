//! Citizens' correction requests (issue 15): a citizen files and withdraws requests about their
//! own record; stewards and supervisors acknowledge, extend, resolve (naming the correction that
//! fixed the data) and refuse them, and list them with their deadlines.
//!
//! Who sees what: `correctionRequests` and `correctionRequest` answer stewards and supervisors
//! with every request, and a citizen with their own only — filtered on the server by the record
//! id their token is bound to, so the same query serves both. Every other role is `FORBIDDEN`.
//! "Today" comes from the node's [`Clock`](crate::deadlines::Clock).

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use uuid::Uuid;

use citydb_domain::calendar::WorkingCalendar;
use citydb_domain::correction_request::{
    Closure, RequestActor, RequestCommand, RequestError, RequestId, RequestStatus,
};
use citydb_domain::{Actor, CitizenId, CorrectionId, StewardRole};
use citydb_projections::{RequestFilter, RequestRow};
use citydb_registry::{CommandContext, RegistryError, RequestExecution, RequestRegistryError};

use super::audit::LogEvent;
use super::mutation::READ_YOUR_WRITES_TIMEOUT;
use super::query::page_cost;
use super::{NodeHandles, registry_error};
use crate::auth::{FieldGroup, RequestContext, Role};
use crate::error::{ApiError, ErrorCode};
use crate::limits::QueryLimits;

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CorrectionRequestStatus {
    Submitted,
    Acknowledged,
    Resolved,
    Refused,
    Withdrawn,
}

impl From<CorrectionRequestStatus> for RequestStatus {
    fn from(s: CorrectionRequestStatus) -> Self {
        match s {
            CorrectionRequestStatus::Submitted => RequestStatus::Submitted,
            CorrectionRequestStatus::Acknowledged => RequestStatus::Acknowledged,
            CorrectionRequestStatus::Resolved => RequestStatus::Resolved,
            CorrectionRequestStatus::Refused => RequestStatus::Refused,
            CorrectionRequestStatus::Withdrawn => RequestStatus::Withdrawn,
        }
    }
}

impl From<RequestStatus> for CorrectionRequestStatus {
    fn from(s: RequestStatus) -> Self {
        match s {
            RequestStatus::Submitted => Self::Submitted,
            RequestStatus::Acknowledged => Self::Acknowledged,
            RequestStatus::Resolved => Self::Resolved,
            RequestStatus::Refused => Self::Refused,
            RequestStatus::Withdrawn => Self::Withdrawn,
        }
    }
}

/// What a citizen asks to have corrected. Evidence is references (document numbers, dossier
/// ids), at most 10 of at most 200 characters each; no files.
#[derive(InputObject)]
pub struct RequestCorrectionInput {
    /// A correctable citizen field: `pin`, `name.family`, `name.middle`, `name.given`, `sex`,
    /// `birth_date`, `birth_place`, `permanent_residence`, `temporary_residence`,
    /// `identity_card`.
    pub field: String,
    /// The value the citizen says is right, in their words (at most 1,000 characters).
    pub proposed_value: String,
    pub reason: String,
    #[graphql(default)]
    pub evidence: Vec<String>,
}

/// The one extension of a request's resolution period.
#[derive(SimpleObject)]
pub struct RequestExtension {
    pub days: i32,
    pub reason: String,
}

/// A correction request as projected.
pub struct CorrectionRequest(RequestRow);

impl CorrectionRequest {
    fn personal(&self, ctx: &Context<'_>, field: &str) -> Result<(), ApiError> {
        super::access::personal(
            ctx,
            self.0.request.citizen.uuid(),
            FieldGroup::Identity,
            field,
        )
    }
}

#[Object]
impl CorrectionRequest {
    /// `correction_request-<uuid>`.
    async fn id(&self) -> String {
        self.0.request.id.stream_id()
    }
    /// The citizen's record, `citizen-<uuid>`.
    async fn citizen(&self) -> String {
        format!("citizen-{}", self.0.request.citizen)
    }
    /// What the citizen says their data should be: each of these is a read of their identity
    /// data, refused or logged like any personal field.
    async fn field(&self, ctx: &Context<'_>) -> Result<&str, ApiError> {
        self.personal(ctx, "field")?;
        Ok(&self.0.request.field)
    }
    async fn proposed_value(&self, ctx: &Context<'_>) -> Result<&str, ApiError> {
        self.personal(ctx, "proposedValue")?;
        Ok(&self.0.request.proposed_value)
    }
    async fn reason(&self, ctx: &Context<'_>) -> Result<&str, ApiError> {
        self.personal(ctx, "reason")?;
        Ok(&self.0.request.reason)
    }
    async fn evidence(&self, ctx: &Context<'_>) -> Result<&[String], ApiError> {
        self.personal(ctx, "evidence")?;
        Ok(&self.0.request.evidence)
    }
    async fn status(&self) -> CorrectionRequestStatus {
        self.0.request.status.into()
    }
    /// `YYYY-MM-DD`.
    async fn submitted(&self) -> String {
        self.0.request.submitted.to_string()
    }
    /// Last day to acknowledge (2 working days).
    async fn acknowledge_by(&self) -> String {
        self.0.request.acknowledge_by.to_string()
    }
    /// Last day to resolve or refuse (10 days, extended at most once by up to 15).
    async fn due_by(&self) -> String {
        self.0.request.due_by.to_string()
    }
    /// Open with a passed deadline recorded on its stream.
    async fn overdue(&self) -> bool {
        self.0.overdue
    }
    /// Deadlines recorded as passed: `acknowledge`, `resolve`.
    async fn overdue_deadlines(&self) -> Vec<String> {
        self.0
            .request
            .overdue
            .iter()
            .map(|d| d.as_str().to_owned())
            .collect()
    }
    async fn acknowledged_by(&self) -> Option<&str> {
        self.0
            .request
            .acknowledged
            .as_ref()
            .map(|(by, _)| by.as_str())
    }
    async fn extension(&self) -> Option<RequestExtension> {
        self.0
            .request
            .extension
            .as_ref()
            .map(|(days, reason)| RequestExtension {
                days: i32::try_from(*days).unwrap_or(i32::MAX),
                reason: reason.clone(),
            })
    }
    /// The correction (proposal id on the citizen's record) that fixed the data.
    async fn resolved_by_correction(&self) -> Option<String> {
        match &self.0.request.closure {
            Some(Closure::Resolved { correction, .. }) => Some(correction.to_string()),
            _ => None,
        }
    }
    async fn refusal_reason(&self) -> Option<&str> {
        match &self.0.request.closure {
            Some(Closure::Refused { reason, .. }) => Some(reason),
            _ => None,
        }
    }
    async fn refusal_legal_basis(&self) -> Option<&str> {
        match &self.0.request.closure {
            Some(Closure::Refused { legal_basis, .. }) => Some(legal_basis),
            _ => None,
        }
    }
    /// Version (0-based) of the request's stream.
    async fn version(&self) -> i64 {
        i64::try_from(self.0.version).unwrap_or(i64::MAX)
    }
    /// Every event of the request's stream, oldest first, with actor and hashes.
    /// The request's events, payloads included: a read of the citizen's identity data.
    async fn history(&self, ctx: &Context<'_>) -> Result<Vec<LogEvent>, ApiError> {
        self.personal(ctx, "history")?;
        let events = handles(ctx)?
            .registry
            .request_history(self.0.request.id)
            .await
            .map_err(request_error)?;
        Ok(events.iter().map(LogEvent::from).collect())
    }
}

/// A page of requests in filing order.
#[derive(SimpleObject)]
pub struct CorrectionRequestPage {
    pub requests: Vec<CorrectionRequest>,
    /// Pass as `after` for the next page.
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
}

/// What a request mutation did, and the request as now projected.
#[derive(SimpleObject)]
pub struct CorrectionRequestResult {
    pub command_id: String,
    pub already_executed: bool,
    /// Log position of the write's last event (its marker).
    pub position: Option<i64>,
    pub request: Option<CorrectionRequest>,
}

fn handles<'a>(ctx: &'a Context<'_>) -> Result<&'a NodeHandles, ApiError> {
    ctx.data::<NodeHandles>()
        .map_err(|_| ApiError::internal("node handles missing"))
}

/// The citizen's record a citizen principal is bound to.
fn own_record(rc: &RequestContext) -> Result<CitizenId, ApiError> {
    match (rc.principal.role, rc.principal.citizen) {
        (Role::Citizen, Some(record)) => Ok(CitizenId(record)),
        (Role::Citizen, None) => Err(ApiError::forbidden(
            "this citizen token is bound to no record",
        )),
        (role, _) => Err(ApiError::forbidden(format!(
            "only the citizen the record describes files or withdraws a correction request; principal {:?} is {role}",
            rc.principal.id
        ))),
    }
}

fn staff(rc: &RequestContext) -> Result<RequestActor, ApiError> {
    let role = match rc.principal.role {
        Role::Steward => StewardRole::Steward,
        Role::Supervisor => StewardRole::Supervisor,
        other => {
            return Err(ApiError::forbidden(format!(
                "only stewards and supervisors handle correction requests; principal {:?} is {other}",
                rc.principal.id
            )));
        }
    };
    Ok(RequestActor::Staff {
        actor: Actor {
            id: rc.principal.id.clone(),
            role,
        },
    })
}

fn request_arg(value: &str) -> Result<RequestId, ApiError> {
    value
        .strip_prefix("correction_request-")
        .and_then(|u| Uuid::parse_str(u).ok())
        .map(RequestId)
        .ok_or_else(|| ApiError::invalid_field("not a correction_request-<uuid> id", "request"))
}

fn command_id(value: Option<String>) -> Result<Uuid, ApiError> {
    match value {
        Some(id) => Uuid::parse_str(&id)
            .map_err(|_| ApiError::invalid_field("commandId is not a UUID", "commandId")),
        None => Ok(Uuid::now_v7()),
    }
}

/// Maps a refusal to the closed set of codes, keeping the rule's own code as the reason.
fn request_error(e: RequestRegistryError) -> ApiError {
    let refusal = match e {
        RequestRegistryError::Registry(r) => return registry_error(r),
        RequestRegistryError::Refused(RequestError::Domain(d)) => {
            return registry_error(RegistryError::Domain(d));
        }
        RequestRegistryError::Refused(r) => r,
    };
    let code = match &refusal {
        RequestError::NotFound(_) => ErrorCode::NotFound,
        RequestError::NotOwnRecord | RequestError::NotStaff(_) => ErrorCode::Forbidden,
        RequestError::Exists(_)
        | RequestError::InvalidTransition { .. }
        | RequestError::AlreadyExtended
        | RequestError::AlreadyOverdue(_)
        | RequestError::NotOverdue { .. }
        | RequestError::CorrectionNotApplied { .. }
        | RequestError::CorrectionOffField { .. } => ErrorCode::Conflict,
        RequestError::Corrupt(_) => return ApiError::internal(refusal),
        _ => ErrorCode::InvalidInput,
    };
    ApiError::Refused {
        code,
        reason: refusal.code().to_owned(),
        message: refusal.to_string(),
        field: None,
    }
}

/// Executes a request command for the caller and waits for this node's projections.
async fn execute(
    ctx: &Context<'_>,
    actor: RequestActor,
    command: RequestCommand,
    id: Uuid,
) -> Result<CorrectionRequestResult, ApiError> {
    let rc = RequestContext::of(ctx)?;
    let h = handles(ctx)?;
    let execution = RequestExecution {
        command_id: id,
        actor,
        context: CommandContext {
            end_user: rc.end_user.clone(),
            case: rc.case.clone(),
            correlation_id: Some(rc.correlation_id),
            ..CommandContext::default()
        },
        command,
    };
    let request = execution.command.request();
    let executed = h
        .registry
        .execute_request(execution, WorkingCalendar::vietnam())
        .await
        .map_err(|e| request_error(e).with_command_id(id))?;
    if let Some(position) = executed.last_position {
        h.projections
            .wait_for(position, READ_YOUR_WRITES_TIMEOUT)
            .await
            .map_err(|e| ApiError::committed_not_visible(id, position, e))?;
    }
    let row = h
        .projections
        .correction_request(&request.stream_id())
        .await
        .map_err(super::loaders::projection_error)?;
    Ok(CorrectionRequestResult {
        command_id: id.to_string(),
        already_executed: executed.already_executed,
        position: executed.last_position.map(|p| p as i64),
        request: row.map(CorrectionRequest),
    })
}

#[derive(Default)]
pub struct CorrectionRequestMutation;

#[Object]
impl CorrectionRequestMutation {
    /// Files a request to correct the caller's own record (citizens only): deadlines are
    /// computed in working days from today (docs/privacy.md, "Correction requests").
    async fn request_correction(
        &self,
        ctx: &Context<'_>,
        input: RequestCorrectionInput,
        #[graphql(desc = "Idempotency key (UUID); generated when absent.")] command_id: Option<
            String,
        >,
    ) -> Result<CorrectionRequestResult, ApiError> {
        let rc = RequestContext::of(ctx)?;
        let citizen = own_record(rc)?;
        let id = self::command_id(command_id)?;
        let command = RequestCommand::RequestCorrection {
            request: RequestId(Uuid::now_v7()),
            citizen,
            field: input.field,
            proposed_value: input.proposed_value,
            reason: input.reason,
            evidence: input.evidence,
            on: handles(ctx)?.clock.today(),
        };
        execute(ctx, RequestActor::Citizen { record: citizen }, command, id).await
    }

    /// Withdraws the caller's own open request (citizens only).
    async fn withdraw_correction_request(
        &self,
        ctx: &Context<'_>,
        request: String,
        command_id: Option<String>,
    ) -> Result<CorrectionRequestResult, ApiError> {
        let record = own_record(RequestContext::of(ctx)?)?;
        let command = RequestCommand::WithdrawCorrectionRequest {
            request: request_arg(&request)?,
            on: handles(ctx)?.clock.today(),
        };
        let id = self::command_id(command_id)?;
        execute(ctx, RequestActor::Citizen { record }, command, id).await
    }

    /// Acknowledges a submitted request (stewards, supervisors).
    async fn acknowledge_correction_request(
        &self,
        ctx: &Context<'_>,
        request: String,
        command_id: Option<String>,
    ) -> Result<CorrectionRequestResult, ApiError> {
        let actor = staff(RequestContext::of(ctx)?)?;
        let command = RequestCommand::AcknowledgeCorrectionRequest {
            request: request_arg(&request)?,
            on: handles(ctx)?.clock.today(),
        };
        execute(ctx, actor, command, self::command_id(command_id)?).await
    }

    /// Extends the resolution period once, by 1 to 15 days, with a reason.
    async fn extend_correction_request(
        &self,
        ctx: &Context<'_>,
        request: String,
        days: i32,
        reason: String,
        command_id: Option<String>,
    ) -> Result<CorrectionRequestResult, ApiError> {
        let actor = staff(RequestContext::of(ctx)?)?;
        let days = u32::try_from(days)
            .map_err(|_| ApiError::invalid_field("days is never negative", "days"))?;
        let command = RequestCommand::ExtendCorrectionRequest {
            request: request_arg(&request)?,
            days,
            reason,
            on: handles(ctx)?.clock.today(),
        };
        execute(ctx, actor, command, self::command_id(command_id)?).await
    }

    /// Resolves a request with the correction on the citizen's record that fixed the data:
    /// refused until that correction took effect (approved by a supervisor) and unless it changes
    /// the requested field.
    async fn resolve_correction_request(
        &self,
        ctx: &Context<'_>,
        request: String,
        #[graphql(desc = "The correction (proposal) id on the citizen's record.")]
        correction: String,
        command_id: Option<String>,
    ) -> Result<CorrectionRequestResult, ApiError> {
        let actor = staff(RequestContext::of(ctx)?)?;
        let correction = Uuid::parse_str(&correction)
            .map(CorrectionId)
            .map_err(|_| ApiError::invalid_field("not a UUID", "correction"))?;
        let command = RequestCommand::ResolveCorrectionRequest {
            request: request_arg(&request)?,
            correction,
            on: handles(ctx)?.clock.today(),
        };
        execute(ctx, actor, command, self::command_id(command_id)?).await
    }

    /// Refuses a request, with the reason and the legal basis the citizen is told.
    async fn refuse_correction_request(
        &self,
        ctx: &Context<'_>,
        request: String,
        reason: String,
        legal_basis: String,
        command_id: Option<String>,
    ) -> Result<CorrectionRequestResult, ApiError> {
        let actor = staff(RequestContext::of(ctx)?)?;
        let command = RequestCommand::RefuseCorrectionRequest {
            request: request_arg(&request)?,
            reason,
            legal_basis,
            on: handles(ctx)?.clock.today(),
        };
        execute(ctx, actor, command, self::command_id(command_id)?).await
    }
}

/// The filter a caller's role allows: everything for stewards and supervisors, their own
/// record's for a citizen.
fn visible(rc: &RequestContext) -> Result<Option<String>, ApiError> {
    match rc.principal.role {
        Role::Steward | Role::Supervisor => Ok(None),
        Role::Citizen => Ok(Some(format!("citizen-{}", own_record(rc)?))),
        other => Err(ApiError::forbidden(format!(
            "correction requests are for stewards, supervisors and the citizen concerned; principal {:?} is {other}",
            rc.principal.id
        ))),
    }
}

#[derive(Default)]
pub struct CorrectionRequestQuery;

#[Object]
impl CorrectionRequestQuery {
    /// Correction requests in filing order, with their deadlines. Stewards and supervisors see
    /// all; a citizen sees their own only (filtered on the server).
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn correction_requests(
        &self,
        ctx: &Context<'_>,
        status: Option<CorrectionRequestStatus>,
        overdue: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<CorrectionRequestPage, ApiError> {
        let citizen = visible(RequestContext::of(ctx)?)?;
        let first = ctx
            .data::<QueryLimits>()
            .map(|l| l.page_size(first))
            .unwrap_or_else(|_| QueryLimits::default().page_size(first))?;
        let after = after
            .map(|a| {
                a.parse::<u64>().map_err(|_| {
                    ApiError::invalid_field("not a cursor issued by this query", "after")
                })
            })
            .transpose()?;
        let filter = RequestFilter {
            status: status.map(Into::into),
            overdue,
            citizen,
        };
        let mut rows = handles(ctx)?
            .projections
            .correction_requests(filter, after, first + 1)
            .await
            .map_err(super::loaders::projection_error)?;
        let has_next_page = rows.len() > first;
        rows.truncate(first);

        Ok(CorrectionRequestPage {
            end_cursor: rows.last().map(|r| r.seq.to_string()),
            has_next_page,
            requests: rows.into_iter().map(CorrectionRequest).collect(),
        })
    }

    /// One correction request (`correction_request-<uuid>`), for the same callers as
    /// `correctionRequests`; a citizen asking for another's gets `NOT_FOUND`.
    async fn correction_request(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> Result<CorrectionRequest, ApiError> {
        let citizen = visible(RequestContext::of(ctx)?)?;
        let request = request_arg(&id)?;
        let row = handles(ctx)?
            .projections
            .correction_request(&request.stream_id())
            .await
            .map_err(super::loaders::projection_error)?;
        match row {
            Some(row)
                if citizen
                    .as_ref()
                    .is_none_or(|c| *c == format!("citizen-{}", row.request.citizen)) =>
            {
                Ok(CorrectionRequest(row))
            }
            _ => Err(ApiError::NotFound {
                message: format!("no correction request {id}"),
                stream: Some(request.stream_id()),
            }),
        }
    }
}
