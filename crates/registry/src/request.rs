//! What a caller asks of the registry ([`CommandRequest`]) and what it gets back ([`Executed`]),
//! plus the payload of the command marker event ([`CommandExecuted`]).

use citydb_domain::{Actor, Command, DomainError, DomainWarning, NaturalKey, RecordId, text};
use citydb_log::{Metadata, StreamId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

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

    /// The audit metadata every event of this command carries.
    pub fn metadata(&self) -> Metadata {
        Metadata {
            actor: Some(self.actor.id.clone()),
            role: Some(role_name(&self.actor).to_owned()),
            reason: self.context.reason.clone(),
            legal_basis: self.context.legal_basis.clone(),
            // One correlation id groups a whole request (or import batch); a command sent on its
            // own correlates with itself.
            correlation_id: Some(self.context.correlation_id.unwrap_or(self.command_id)),
            causation_id: Some(self.command_id),
            end_user: self.context.end_user.clone(),
            case_id: self.context.case.clone(),
        }
    }
}

fn role_name(actor: &Actor) -> &'static str {
    match actor.role {
        citydb_domain::StewardRole::Steward => "steward",
        citydb_domain::StewardRole::Supervisor => "supervisor",
    }
}

/// Why and for whom a command is executed; copied into every event's [`Metadata`].
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
}

/// The result of an executed command. A re-sent command id gets the original result, with
/// `already_executed` set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Executed {
    pub command_id: Uuid,
    /// True when the command id had been executed before and nothing was written now.
    pub already_executed: bool,
    /// Every stream the command wrote to (records and natural keys), in decision order, with
    /// its version after the command. The command marker stream is not listed.
    pub changes: Vec<StreamChange>,
    /// Global positions of the command's append, the marker event (the last one) included.
    /// Wait for a projection to reach `last_position` to read your own write.
    pub first_position: Option<u64>,
    pub last_position: Option<u64>,
    /// Accepted, but a steward should look (domain warnings).
    pub warnings: Vec<Warning>,
}

impl Executed {
    /// The version a record reached through this command, if the command changed it.
    pub fn version_of(&self, record: RecordId) -> Option<u64> {
        self.changes
            .iter()
            .find(|c| c.record == Some(record))
            .map(|c| c.version)
    }
}

/// One stream a command wrote to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamChange {
    pub stream: StreamId,
    /// The record, for a record stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordId>,
    /// The natural key, for a key stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<NaturalKey>,
    /// Events the command appended to the stream.
    pub events: u64,
    /// The stream's (0-based) version after the command.
    pub version: u64,
}

/// A domain warning as data: its stable code and its details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// [`DomainWarning::code`], e.g. `LEGACY_CHECK_DIGIT`.
    pub code: String,
    /// The warning's fields, e.g. `{"code": "0201000007"}`.
    pub detail: Value,
}

impl From<&DomainWarning> for Warning {
    fn from(w: &DomainWarning) -> Self {
        // DomainWarning serialises externally tagged ({"Variant": {…}}); keep the inner object,
        // the code already names the variant.
        let detail = match serde_json::to_value(w) {
            Ok(Value::Object(map)) if map.len() == 1 => map
                .into_iter()
                .next()
                .map(|(_, v)| v)
                .unwrap_or(Value::Null),
            Ok(other) => other,
            Err(_) => Value::Null,
        };
        Warning {
            code: w.code().to_owned(),
            detail,
        }
    }
}

/// Event type of the marker event.
pub const COMMAND_EXECUTED: &str = "CommandExecuted";
/// Schema version of [`CommandExecuted`].
pub const COMMAND_EXECUTED_VERSION: u32 = 1;
/// Stream category of command marker streams (`command-<command_id>`).
pub const COMMAND_CATEGORY: &str = "command";

/// Payload of the single `CommandExecuted` event on stream `command-<command_id>`, appended in
/// the same atomic append as the command's changes. Its existence is what makes execution
/// idempotent by command id; its content is the recorded result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandExecuted {
    pub command_id: Uuid,
    pub command_type: String,
    /// The command as executed, in its JSON form (kept as JSON so an old marker stays readable
    /// when the command's Rust shape evolves).
    pub command: Value,
    pub actor: Actor,
    pub changes: Vec<StreamChange>,
    #[serde(default)]
    pub warnings: Vec<Warning>,
    /// Events of the command's append, this marker included. The append's positions are
    /// contiguous (it is one commit) and the marker is its last event, so the first position is
    /// `marker position + 1 - event_count`.
    pub event_count: u64,
}

impl CommandExecuted {
    /// The result as first returned, rebuilt from the marker event at `marker_position`.
    pub fn executed(&self, marker_position: u64, already_executed: bool) -> Executed {
        Executed {
            command_id: self.command_id,
            already_executed,
            changes: self.changes.clone(),
            first_position: (marker_position + 1).checked_sub(self.event_count),
            last_position: Some(marker_position),
            warnings: self.warnings.clone(),
        }
    }
}
