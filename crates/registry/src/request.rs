//! What the registry answers a [`CommandRequest`] ([`Executed`]), the metadata it writes for
//! one ([`metadata_of`]), and the payload of the command marker event ([`CommandExecuted`]).

use citydb_domain::{Actor, CommandRequest, DomainWarning, NaturalKey, RecordId};
use citydb_log::{Metadata, StreamId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The audit metadata every event of this command carries.
pub fn metadata_of(request: &CommandRequest) -> Metadata {
    Metadata {
        actor: Some(request.actor.id.clone()),
        role: Some(role_name(&request.actor).to_owned()),
        reason: request.context.reason.clone(),
        legal_basis: request.context.legal_basis.clone(),
        // One correlation id groups a whole request (or import batch); a command sent on its
        // own correlates with itself.
        correlation_id: Some(request.context.correlation_id.unwrap_or(request.command_id)),
        causation_id: Some(request.command_id),
        end_user: request.context.end_user.clone(),
        case_id: request.context.case.clone(),
        effective_at: request.context.effective_at.map(|d| d.to_string()),
    }
}

fn role_name(actor: &Actor) -> &'static str {
    match actor.role {
        citydb_domain::StewardRole::Steward => "steward",
        citydb_domain::StewardRole::Supervisor => "supervisor",
    }
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
