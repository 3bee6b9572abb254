//! One mutation per domain command, for stewards and supervisors.
//!
//! Each takes the command as a typed input object (`super::inputs`, documented field by field
//! and in `graphql/examples/`), an optional `expected` record version for optimistic
//! concurrency, and the why of the change (reason, legal basis). It executes through the
//! registry, then waits until this node's projections have applied the write, so the records it
//! returns already show it (read-your-writes).

use std::time::Duration;

use async_graphql::{Context, InputObject, Object, SimpleObject};
use uuid::Uuid;

use citydb_domain::{Actor, Command, RecordId, StewardRole, UnknownCode};
use citydb_registry::{CommandContext, CommandRequest, ExpectedRecordVersion};

use super::NodeHandles;
use super::changes::{Change, is_record_change};
use super::inputs::legacy::LegacyInputShape;
use super::inputs::*;
use super::records::{Business, Citizen, Parcel, load_businesses, load_citizens, load_parcels};
use crate::auth::{RequestContext, Role};
use crate::error::{ApiError, ErrorCode};

/// The version of a record the caller last read: the mutation is refused with `CONFLICT`
/// (`reason: STALE_VERSION`) if the record has changed since.
#[derive(InputObject)]
pub struct ExpectedVersion {
    /// `citizen-<uuid>`, `business-<uuid>` or `parcel-<uuid>`.
    pub record: String,
    pub version: i64,
}

/// A record a mutation wrote to, with its new version.
#[derive(SimpleObject)]
pub struct ChangedRecord {
    pub id: String,
    pub version: i64,
}

/// What a mutation did. The records are read back from the projections after the write was
/// applied to them.
pub struct MutationResult {
    command_id: Uuid,
    already_executed: bool,
    first_position: Option<u64>,
    position: Option<u64>,
    changed: Vec<(RecordId, u64)>,
    warnings: Vec<String>,
}

#[Object]
impl MutationResult {
    /// The idempotency key: send it again to get the same result without a second write.
    async fn command_id(&self) -> String {
        self.command_id.to_string()
    }
    /// True when this command id had already been executed.
    async fn already_executed(&self) -> bool {
        self.already_executed
    }
    /// Log position of the write's last event: the command's marker, which is not a feed
    /// entry. Wait for a projection to pass it to read your own write; see `events` for the feed
    /// entries of this write.
    async fn position(&self) -> Option<i64> {
        self.position.map(|p| p as i64)
    }
    /// The change-feed entries this write produced, in log order: the same positions, types
    /// and `commandId` that `changes` and the subscription deliver.
    async fn events(&self, ctx: &Context<'_>) -> Result<Vec<Change>, ApiError> {
        let (Some(first), Some(last)) = (self.first_position, self.position) else {
            return Ok(Vec::new());
        };
        let handles = ctx
            .data::<NodeHandles>()
            .map_err(|_| ApiError::internal("node handles missing"))?;
        // One append's events are contiguous in the log: first..=last.
        let n = usize::try_from(last.saturating_sub(first) + 1).unwrap_or(usize::MAX);
        let events = handles.log.read_all(first, n).await?;
        Ok(events
            .iter()
            .filter(|e| is_record_change(e))
            .map(Change::from)
            .collect())
    }
    async fn changed(&self) -> Vec<ChangedRecord> {
        self.changed
            .iter()
            .map(|(id, v)| ChangedRecord {
                id: id.to_string(),
                version: *v as i64,
            })
            .collect()
    }
    async fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// The citizens this command changed, as now projected.
    async fn citizens(&self, ctx: &Context<'_>) -> Result<Vec<Citizen>, ApiError> {
        let ids = self
            .changed
            .iter()
            .filter_map(|(r, _)| match r {
                RecordId::Citizen(c) => Some(*c),
                _ => None,
            })
            .collect::<Vec<_>>();
        load_citizens(ctx, None, ids).await
    }
    async fn businesses(&self, ctx: &Context<'_>) -> Result<Vec<Business>, ApiError> {
        let ids = self
            .changed
            .iter()
            .filter_map(|(r, _)| match r {
                RecordId::Business(b) => Some(*b),
                _ => None,
            })
            .collect::<Vec<_>>();
        load_businesses(ctx, None, ids).await
    }
    async fn parcels(&self, ctx: &Context<'_>) -> Result<Vec<Parcel>, ApiError> {
        let ids = self
            .changed
            .iter()
            .filter_map(|(r, _)| match r {
                RecordId::Parcel(p) => Some(*p),
                _ => None,
            })
            .collect::<Vec<_>>();
        load_parcels(ctx, None, ids).await
    }
}

/// How long a mutation waits for this node's projections to apply its write.
pub const READ_YOUR_WRITES_TIMEOUT: Duration = Duration::from_secs(10);

pub fn parse_record_id(s: &str, field: &str) -> Result<RecordId, ApiError> {
    s.parse::<RecordId>()
        .map_err(|e| ApiError::invalid_field(e.to_string(), field))
}

/// The why of a change, as the mutation's arguments state it: copied into every event's
/// metadata.
struct Why {
    reason: Option<String>,
    legal_basis: Option<String>,
    effective_at: Option<citydb_domain::Date>,
}

fn effective_date(d: Option<Date>) -> Result<Option<citydb_domain::Date>, ApiError> {
    d.map(|d| {
        d.0.parse()
            .map_err(|e| ApiError::invalid_field(format!("effectiveAt: {e}"), "effectiveAt"))
    })
    .transpose()
}

/// Executes `command` for the caller and waits for the projections.
async fn execute(
    ctx: &Context<'_>,
    command: Command,
    command_id: Option<String>,
    expected: Option<ExpectedVersion>,
    why: Why,
) -> Result<MutationResult, ApiError> {
    let rc = RequestContext::of(ctx)?;
    let role = match rc.principal.role {
        Role::Steward => StewardRole::Steward,
        Role::Supervisor => StewardRole::Supervisor,
        _ => {
            return Err(ApiError::forbidden(format!(
                "only stewards and supervisors change records; principal {:?} is {}",
                rc.principal.id, rc.principal.role
            )));
        }
    };
    let handles = ctx
        .data::<NodeHandles>()
        .map_err(|_| ApiError::internal("node handles missing"))?;
    let command_id = match command_id {
        Some(id) => Uuid::parse_str(&id)
            .map_err(|_| ApiError::invalid_field("commandId is not a UUID", "commandId"))?,
        None => Uuid::now_v7(),
    };
    let expected = expected
        .map(|e| {
            Ok::<_, ApiError>(ExpectedRecordVersion {
                record: parse_record_id(&e.record, "expected.record")?,
                version: u64::try_from(e.version).map_err(|_| {
                    ApiError::invalid_field("a version is never negative", "expected.version")
                })?,
            })
        })
        .transpose()?;
    let request = CommandRequest {
        command_id,
        actor: Actor {
            id: rc.principal.id.clone(),
            role,
        },
        context: CommandContext {
            reason: why.reason,
            legal_basis: why.legal_basis,
            effective_at: why.effective_at,
            end_user: rc.end_user.clone(),
            case: rc.case.clone(),
            correlation_id: Some(rc.correlation_id),
        },
        command,
        expected,
    };
    let executed = handles
        .registry
        .execute(request)
        .await
        .map_err(|e| super::registry_error(e).with_command_id(command_id))?;
    if let Some(position) = executed.last_position {
        // Committed: from here on no failure may read as if the write had not happened.
        handles
            .projections
            .wait_for(position, READ_YOUR_WRITES_TIMEOUT)
            .await
            .map_err(|e| ApiError::committed_not_visible(executed.command_id, position, e))?;
    }
    Ok(MutationResult {
        command_id: executed.command_id,
        already_executed: executed.already_executed,
        first_position: executed.first_position,
        position: executed.last_position,
        changed: executed
            .changes
            .iter()
            .filter_map(|c| c.record.map(|r| (r, c.version)))
            .collect(),
        warnings: executed
            .warnings
            .iter()
            .map(|w| format!("{}: {}", w.code, w.detail))
            .chain(
                ctx.data_opt::<LegacyInputShape>()
                    .map(LegacyInputShape::warning),
            )
            .collect(),
    })
}

/// Why a command's input was refused by the domain's types: `UNKNOWN_CODE` (naming the list)
/// when a code is in no entry of its reference list, `INVALID_INPUT` for any other malformed
/// value; both name `field`, the input's path in GraphQL spelling.
pub(super) fn input_error(input: &str, e: &serde_json::Error, field: &str) -> ApiError {
    let message = format!("{input}: {field}: {e}");
    match UnknownCode::find_in(&message) {
        Some(unknown) => unknown_code(&unknown, field),
        None => ApiError::invalid_field(message, field),
    }
}

/// A code is judged against its list when the command is decided, where the input's shape is
/// gone: the refusal names the list and the code. This names the input field holding that
/// code too, so a form shows the refusal beside it.
fn with_code_field(e: ApiError, input: &impl serde::Serialize) -> ApiError {
    match e {
        ApiError::Refused {
            code: ErrorCode::UnknownCode,
            reason,
            message,
            field: None,
        } => {
            let field = UnknownCode::find_in(&message).and_then(|u| locate(input, &u.code));
            ApiError::Refused {
                code: ErrorCode::UnknownCode,
                reason,
                message,
                field,
            }
        }
        other => other,
    }
}

/// The refusal of a code in no entry of its list, on a command or a filter alike.
pub(crate) fn unknown_code(unknown: &UnknownCode, field: &str) -> ApiError {
    ApiError::Refused {
        code: ErrorCode::UnknownCode,
        reason: "UNKNOWN_CODE".to_owned(),
        message: format!("{field}: {unknown}"),
        field: Some(field.to_owned()),
    }
}

/// Declares the Mutation type with one field per command, each taking the command's typed
/// input (`super::inputs`), checked by the domain's serde types when the mutation runs.
macro_rules! command_mutations {
    ($( $(#[doc = $doc:expr])* $field:ident($input:ident) => $variant:ident, $($role:ident)|+; )*) => {
        pub struct Mutation;

        // Merged into the schema's `Mutation` root (`schema::MutationRoot`).
        #[Object(name = "CommandMutation")]
        impl Mutation {
            $(
                $(#[doc = $doc])*
                #[allow(clippy::too_many_arguments)]
                async fn $field(
                    &self,
                    ctx: &Context<'_>,
                    input: $input,
                    #[graphql(desc = "Idempotency key (UUID); generated when absent.")] command_id: Option<String>,
                    expected: Option<ExpectedVersion>,
                    #[graphql(desc = "Why the change is made (kept in every event's metadata).")] reason: Option<String>,
                    #[graphql(desc = "Document number and date of the legal basis.")] legal_basis: Option<String>,
                    #[graphql(desc = "The date from which the change holds (valid time), for a command whose input states no date of its own; on a correction, a change from that date instead of a fix of the past. Refused (`INVALID_INPUT`, reason `EFFECTIVE_AT_REFUSED`) where the input states its date.")] effective_at: Option<Date>,
                ) -> Result<MutationResult, ApiError> {
                    RequestContext::of(ctx)?.require_role(&[$(Role::$role),+])?;
                    let command = Command::$variant(command_of(&input, stringify!($input))?);
                    let why = Why { reason, legal_basis, effective_at: effective_date(effective_at)? };
                    execute(ctx, command, command_id, expected, why)
                        .await
                        .map_err(|e| with_code_field(e, &input))
                }
            )*
        }
    };
}

command_mutations! {
    /// Registers a citizen (birth registration or initial load).
    register_citizen(RegisterCitizenInput) => RegisterCitizen, Steward | Supervisor;
    /// Proposes a legal change of name registered by the civil-status office: the name is
    /// protected, so this records a pending correction (warning `APPROVAL_REQUIRED` names it)
    /// that a supervisor other than the proposer approves with `approveCorrection`.
    change_citizen_name(ChangeCitizenNameInput) => ChangeCitizenName, Steward | Supervisor;
    /// Registers a permanent or temporary residence.
    change_residence(ChangeResidenceInput) => ChangeResidence, Steward | Supervisor;
    /// Registers a marriage on both spouses' records at once.
    register_marriage(RegisterMarriageInput) => RegisterMarriage, Steward | Supervisor;
    register_divorce(RegisterDivorceInput) => RegisterDivorce, Steward | Supervisor;
    set_parents(SetParentsInput) => SetParents, Steward | Supervisor;
    issue_identity_card(IssueIdentityCardInput) => IssueIdentityCard, Steward | Supervisor;
    /// Records a death (the spouse's record learns of it in the same write).
    record_death(RecordDeathInput) => RecordDeath, Steward | Supervisor;
    /// Merges a duplicate citizen record into its survivor.
    merge_citizens(MergeCitizensInput) => MergeCitizens, Steward | Supervisor;
    /// Registers an enterprise; every legal representative must be a living citizen.
    register_business(RegisterBusinessInput) => RegisterBusiness, Steward | Supervisor;
    rename_business(RenameBusinessInput) => RenameBusiness, Steward | Supervisor;
    move_head_office(MoveHeadOfficeInput) => MoveHeadOffice, Steward | Supervisor;
    change_legal_representatives(ChangeLegalRepresentativesInput) => ChangeLegalRepresentatives, Steward | Supervisor;
    change_charter_capital(ChangeCharterCapitalInput) => ChangeCharterCapital, Steward | Supervisor;
    change_business_lines(ChangeBusinessLinesInput) => ChangeBusinessLines, Steward | Supervisor;
    suspend_business(SuspendBusinessInput) => SuspendBusiness, Steward | Supervisor;
    resume_business(ResumeBusinessInput) => ResumeBusiness, Steward | Supervisor;
    dissolve_business(DissolveBusinessInput) => DissolveBusiness, Steward | Supervisor;
    register_branch(RegisterBranchInput) => RegisterBranch, Steward | Supervisor;
    /// Registers a parcel with its holders (shares sum to exactly 1).
    register_parcel(RegisterParcelInput) => RegisterParcel, Steward | Supervisor;
    /// Sale, inheritance or gift; refused on a mortgaged parcel unless released in the same call.
    transfer_rights(TransferRightsInput) => TransferRights, Steward | Supervisor;
    change_land_use(ChangeLandUseInput) => ChangeLandUse, Steward | Supervisor;
    issue_certificate(IssueCertificateInput) => IssueCertificate, Steward | Supervisor;
    revoke_certificate(RevokeCertificateInput) => RevokeCertificate, Steward | Supervisor;
    register_mortgage(RegisterMortgageInput) => RegisterMortgage, Steward | Supervisor;
    release_mortgage(ReleaseMortgageInput) => ReleaseMortgage, Steward | Supervisor;
    /// Splits a parcel into new ones whose areas add up exactly, in one atomic write.
    split_parcel(SplitParcelInput) => SplitParcel, Steward | Supervisor;
    merge_parcels(MergeParcelsInput) => MergeParcels, Steward | Supervisor;
    retire_parcel(RetireParcelInput) => RetireParcel, Steward | Supervisor;
    /// Corrects unprotected fields directly, with old and new values, reason and legal basis.
    correct_record(CorrectRecordInput) => CorrectRecord, Steward | Supervisor;
    /// Proposes a correction of protected fields, for a different supervisor to approve.
    propose_correction(ProposeCorrectionInput) => ProposeCorrection, Steward | Supervisor;
    /// Approves a proposed correction (supervisors only, never one's own).
    approve_correction(ApproveCorrectionInput) => ApproveCorrection, Supervisor;
    reject_correction(RejectCorrectionInput) => RejectCorrection, Supervisor;
    /// Withdraws one's own pending proposal.
    withdraw_correction(WithdrawCorrectionInput) => WithdrawCorrection, Steward | Supervisor;
    /// Proposes redacting the personal payload of ONE event of a record (`position`: its log
    /// position, as `history` shows it), citing the court or legal order in `legal_basis`; a
    /// different supervisor approves. Reason and legal basis are required.
    propose_redaction(ProposeRedactionInput) => ProposeRedaction, Steward | Supervisor;
    /// Approves a proposed redaction (supervisors only, never one's own): the event's payload,
    /// its command's marker and the read models are blanked; every hash stays.
    approve_redaction(ApproveRedactionInput) => ApproveRedaction, Supervisor;
    reject_redaction(RejectRedactionInput) => RejectRedaction, Supervisor;
    /// Restricts a record: services get `RESTRICTED`; stewards, supervisors, auditors still read it.
    restrict_record(RestrictRecordInput) => RestrictRecord, Steward | Supervisor;
    /// Lifts a record's restriction (supervisors only).
    lift_restriction(LiftRestrictionInput) => LiftRestriction, Supervisor;
}
