//! A command as a caller sends it ([`CommandRequest`]): who asks ([`Actor`]), why
//! ([`CommandContext`]), the domain [`Command`], and optionally the version the caller read
//! ([`ExpectedRecordVersion`]). One type for one concept: the API's mutations, the NDJSON
//! import and the fixture generator all speak it; `citydb-registry` executes it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::command::Command;
use crate::date::Date;
use crate::error::DomainError;
use crate::ids::RecordId;
use crate::stewardship::Actor;
use crate::text;

/// One command to execute, with who asks and why.
///
/// JSON shape (one line of the NDJSON importer; `context` and each of its fields are optional,
/// `command` is a domain [`Command`] with its `"type"` tag):
///
/// ```json
/// {
///   "command_id": "0193e3a4-7c1b-7d2e-8f00-123456789abc",
///   "actor": { "id": "steward-lan", "role": "steward" },
///   "context": {
///     "reason": "khai sinh",
///     "legal_basis": "123/QĐ-UBND ngày 01/08/2025",
///     "end_user": "officer-42",
///     "case": "HS-2025-000123",
///     "correlation_id": "0193e3a4-0000-7000-8000-000000000001"
///   },
///   "command": {
///     "type": "RegisterCitizen",
///     "citizen": "0193e3a4-7c1b-7d2e-8f00-00000000c001",
///     "pin": "031199000001",
///     "name": { "family": "Nguyễn", "middle": "Thị", "given": "Hoà" },
///     "sex": "female",
///     "birth_date": "1999-07-21",
///     "birth_place": "11311",
///     "origin": { "kind": "registration" }
///   }
/// }
/// ```
///
/// The command is nested rather than flattened so that its fields (several commands have a
/// `reason`) never collide with the request's.
///
/// Unknown keys are refused (`deny_unknown_fields`), here and in every nested object of the
/// command: a misspelt optional field (`"adress"`) must not be silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// Idempotency key chosen by the caller (UUIDv7 recommended): executing the same id twice
    /// appends once and answers both times with the same result.
    pub command_id: Uuid,
    pub actor: Actor,
    #[serde(default)]
    pub context: CommandContext,
    pub command: Command,
    /// Optimistic concurrency: execute only if this record is still at this version (the
    /// version the caller read). Checked against the state the decision is made on, and that
    /// state is held to its version by the append, so the check is exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<ExpectedRecordVersion>,
}

/// The version a caller expects a record to be at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedRecordVersion {
    pub record: RecordId,
    pub version: u64,
}

impl CommandRequest {
    /// A request with an empty context.
    pub fn new(command_id: Uuid, command: Command, actor: Actor) -> Self {
        CommandRequest {
            command_id,
            actor,
            context: CommandContext::default(),
            command,
            expected: None,
        }
    }

    /// An `effective_at` only where the command's events state no date of their own (two
    /// dates for one fact would leave the reader to guess which holds).
    pub fn check_effective_at(&self) -> Result<(), DomainError> {
        match (
            self.context.effective_at,
            self.command.refuses_effective_at(),
        ) {
            (Some(_), Some(why)) => Err(DomainError::EffectiveAtRefused {
                command: self.command.command_type(),
                why,
            }),
            _ => Ok(()),
        }
    }

    /// The request's own free text (actor id, reason, legal basis, end user, case) is within
    /// its documented maximum (`citydb_domain::text`); the command's is checked by `decide`.
    pub fn check_text(&self) -> Result<(), DomainError> {
        let ctx = &self.context;
        text::check("actor.id", "id", &self.actor.id)?;
        for (field, key, value) in [
            ("reason", "reason", &ctx.reason),
            ("legal_basis", "legal_basis", &ctx.legal_basis),
            ("end_user", "end_user", &ctx.end_user),
            ("case", "case", &ctx.case),
        ] {
            if let Some(value) = value {
                text::check(field, key, value)?;
            }
        }
        Ok(())
    }
}

/// Why and for whom a command is executed; copied into every event's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandContext {
    /// The steward's reason, in their words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Document number and date the change rests on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_basis: Option<String>,
    /// The officer on whose behalf a service system sends the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_user: Option<String>,
    /// Case or dossier number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// Groups several commands of one request or batch; defaults to the command id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The date from which the change holds (valid time), for a command whose events state no
    /// date of their own; on a correction it makes it a change from that date instead of a fix
    /// of the past. See `crate::valid_time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_at: Option<Date>,
}
