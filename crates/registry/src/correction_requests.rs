//! Citizens' correction requests through the same protocol as every command: load → decide →
//! one atomic, idempotent append (see [`Registry::execute`]).
//!
//! A request lives on its own stream (`correction_request-<uuid>`). Its commands are decided by
//! `citydb_domain::correction_request`, which may read the citizen's record too (filing: the
//! record must exist and be the requester's; resolving: the correction must have taken effect on
//! it). The append holds every stream read to its version, and carries a marker on
//! `command-<command_id>` appended with `NoStream`: one id, one execution, however many nodes or
//! restarts send it. The marker's event type is [`REQUEST_COMMAND_EXECUTED`] (the actor of a
//! request may be a citizen or the deadline clock, which [`crate::CommandExecuted`] cannot name).

use citydb_domain::calendar::WorkingCalendar;
use citydb_domain::citizen::Citizen;
use citydb_domain::correction_request::{
    CorrectionRequest, REQUEST_CATEGORY, RequestActor, RequestCommand, RequestError, RequestEvent,
    RequestId, RequestSnapshot, decide, evolve,
};
use citydb_domain::{CommandContext, Record, RecordId};
use citydb_log::{
    Direction, ExpectedVersion, LogError, Metadata, NewEvent, READ_BATCH, RecordedEvent,
    StreamAppend, StreamId,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::RegistryError;
use crate::registry::{DEFAULT_MAX_RETRIES, Registry, command_stream};
use crate::request::{Executed, StreamChange};

/// Event type of a request command's marker on `command-<command_id>`.
pub const REQUEST_COMMAND_EXECUTED: &str = "RequestCommandExecuted";

/// One request command to execute, with who asks and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestExecution {
    /// Idempotency key (UUIDv7 from callers; derived from request and deadline for overdue).
    pub command_id: Uuid,
    pub actor: RequestActor,
    #[serde(default)]
    pub context: CommandContext,
    pub command: RequestCommand,
}

/// Payload of the marker event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCommandExecuted {
    pub command_id: Uuid,
    pub command_type: String,
    pub command: Value,
    pub actor: RequestActor,
    pub changes: Vec<StreamChange>,
    pub event_count: u64,
}

/// Why a request command was not executed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestRegistryError {
    /// The rules refused it; nothing was written.
    #[error("request refused: {0}")]
    Refused(#[from] RequestError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl From<LogError> for RequestRegistryError {
    fn from(e: LogError) -> Self {
        Self::Registry(e.into())
    }
}

/// A request's state with its stream version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedRequest {
    pub request: CorrectionRequest,
    pub version: u64,
}

/// The stream of a request.
pub fn request_stream(id: RequestId) -> Result<StreamId, RegistryError> {
    StreamId::new(REQUEST_CATEGORY, id.0).map_err(RegistryError::from)
}

/// Decodes one stored request event.
pub fn decode_request_event(event: &RecordedEvent) -> Result<RequestEvent, RequestRegistryError> {
    let json: Value = serde_json::from_slice(&event.data)
        .map_err(|e| RegistryError::corrupt(&event.stream_id, e))?;
    RequestEvent::decode(&event.event_type, event.schema_version, &json).map_err(|e| {
        RegistryError::corrupt(
            &event.stream_id,
            format!("version {}: {e}", event.stream_version),
        )
        .into()
    })
}

/// Folds a request's stream; `None` when empty.
pub fn fold_request<'a>(
    events: impl IntoIterator<Item = &'a RecordedEvent>,
) -> Result<Option<CorrectionRequest>, RequestRegistryError> {
    let mut state = None;
    for recorded in events {
        let event = decode_request_event(recorded)?;
        state = Some(evolve(state, &event).map_err(|e| {
            RegistryError::corrupt(
                &recorded.stream_id,
                format!("version {}: {e}", recorded.stream_version),
            )
        })?);
    }
    Ok(state)
}

impl Registry {
    /// Executes one request command (see the module docs).
    pub async fn execute_request(
        &self,
        execution: RequestExecution,
        calendar: &WorkingCalendar,
    ) -> Result<Executed, RequestRegistryError> {
        let marker = command_stream(execution.command_id)?;
        let command_json =
            serde_json::to_value(&execution.command).map_err(|e| LogError::InvalidEvent {
                reason: format!("the command cannot be serialised: {e}"),
            })?;
        let metadata = Metadata {
            actor: Some(execution.actor.id()),
            role: Some(execution.actor.role().to_owned()),
            reason: execution.context.reason.clone(),
            legal_basis: execution.context.legal_basis.clone(),
            correlation_id: Some(
                execution
                    .context
                    .correlation_id
                    .unwrap_or(execution.command_id),
            ),
            causation_id: Some(execution.command_id),
            end_user: execution.context.end_user.clone(),
            case_id: execution.context.case.clone(),
            // A request is not a fact about the record: recorded time only.
            effective_at: None,
        };
        let id = execution.command.request();
        let stream = request_stream(id)?;
        let mut attempts = 0;
        loop {
            if let Some(done) = self
                .request_recorded(&marker, &execution, &command_json)
                .await?
            {
                return Ok(done);
            }
            attempts += 1;
            let events = read_whole(self, &stream).await?;
            let version = events.last().map(|e| e.stream_version);
            let state = fold_request(&events)?;
            let citizen_id = execution.command.reads_citizen(state.as_ref());
            let mut citizen: Option<Citizen> = None;
            let mut citizen_read: Option<(StreamId, Option<u64>)> = None;
            if let Some(c) = citizen_id {
                let record_stream = crate::fold::record_stream(RecordId::Citizen(c))?;
                let loaded = self.load_record(RecordId::Citizen(c)).await?;
                citizen_read = Some((record_stream, loaded.as_ref().map(|l| l.version)));
                citizen = match loaded.map(|l| l.record) {
                    Some(Record::Citizen(found)) => Some(found),
                    _ => None,
                };
            }
            let snapshot = RequestSnapshot {
                request: state.as_ref(),
                citizen: citizen.as_ref(),
            };
            let decided = match decide(snapshot, &execution.command, &execution.actor, calendar) {
                Ok(events) => events,
                Err(refusal) => {
                    // A concurrent re-send of this very id may have committed meanwhile.
                    if let Some(done) = self
                        .request_recorded(&marker, &execution, &command_json)
                        .await?
                    {
                        return Ok(done);
                    }
                    return Err(refusal.into());
                }
            };
            let new_events = decided
                .iter()
                .map(|event| {
                    let data = serde_json::to_value(event).map_err(|e| LogError::InvalidEvent {
                        reason: format!("{} cannot be serialised: {e}", event.event_type()),
                    })?;
                    NewEvent::new(event.event_type(), event.schema_version(), &data, &metadata)
                })
                .collect::<Result<Vec<_>, LogError>>()?;
            let n = new_events.len() as u64;
            let changes = vec![StreamChange {
                stream: stream.clone(),
                record: None,
                key: None,
                events: n,
                version: version.map_or(n.saturating_sub(1), |v| v + n),
            }];
            let mut appends = vec![StreamAppend::new(
                stream.clone(),
                ExpectedVersion::from_current(version),
                new_events,
            )];
            // The decision holds only while the citizen's record is as read (the correction
            // still approved, the record still there).
            if let Some((record_stream, record_version)) = citizen_read {
                appends.push(StreamAppend::new(
                    record_stream,
                    ExpectedVersion::from_current(record_version),
                    Vec::new(),
                ));
            }
            let record = RequestCommandExecuted {
                command_id: execution.command_id,
                command_type: execution.command.command_type().to_owned(),
                command: command_json.clone(),
                actor: execution.actor.clone(),
                changes: changes.clone(),
                event_count: n + 1,
            };
            appends.push(StreamAppend::new(
                marker.clone(),
                ExpectedVersion::NoStream,
                vec![NewEvent::new(
                    REQUEST_COMMAND_EXECUTED,
                    1,
                    &record,
                    &metadata,
                )?],
            ));
            match self.log().append(appends).await {
                Ok(outcome) => {
                    return Ok(Executed {
                        command_id: execution.command_id,
                        already_executed: outcome.already_recorded,
                        changes,
                        first_position: outcome.first_position,
                        last_position: outcome.last_position,
                        warnings: Vec::new(),
                    });
                }
                Err(LogError::WrongExpectedVersion { stream: lost, .. }) => {
                    if lost == marker
                        && let Some(done) = self
                            .request_recorded(&marker, &execution, &command_json)
                            .await?
                    {
                        return Ok(done);
                    }
                    if attempts > DEFAULT_MAX_RETRIES {
                        return Err(RegistryError::Conflict {
                            stream: lost,
                            attempts,
                        }
                        .into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// A request's current state, or `None` if it was never filed.
    pub async fn load_request(
        &self,
        id: RequestId,
    ) -> Result<Option<LoadedRequest>, RequestRegistryError> {
        let events = read_whole(self, &request_stream(id)?).await?;
        let version = events.last().map(|e| e.stream_version);
        Ok(fold_request(&events)?
            .zip(version)
            .map(|(request, version)| LoadedRequest { request, version }))
    }

    /// Every stored event of a request's stream, oldest first.
    pub async fn request_history(
        &self,
        id: RequestId,
    ) -> Result<Vec<RecordedEvent>, RequestRegistryError> {
        Ok(read_whole(self, &request_stream(id)?).await?)
    }

    /// The recorded result of this command id, if it ran; `CommandIdReused` if the id ran
    /// another command.
    async fn request_recorded(
        &self,
        marker: &StreamId,
        execution: &RequestExecution,
        command_json: &Value,
    ) -> Result<Option<Executed>, RequestRegistryError> {
        let events = self
            .log()
            .read_stream(marker, 0, Direction::Forward, 1)
            .await?;
        let Some(event) = events.first() else {
            return Ok(None);
        };
        let reused = || RegistryError::CommandIdReused {
            command_id: execution.command_id,
        };
        if event.event_type != REQUEST_COMMAND_EXECUTED {
            return Err(reused().into());
        }
        let record: RequestCommandExecuted =
            serde_json::from_slice(&event.data).map_err(|e| RegistryError::corrupt(marker, e))?;
        if record.command != *command_json {
            return Err(reused().into());
        }
        Ok(Some(Executed {
            command_id: record.command_id,
            already_executed: true,
            changes: record.changes,
            first_position: (event.position + 1).checked_sub(record.event_count),
            last_position: Some(event.position),
            warnings: Vec::new(),
        }))
    }
}

/// A whole stream, batch by batch until an empty one.
async fn read_whole(
    registry: &Registry,
    stream: &StreamId,
) -> Result<Vec<RecordedEvent>, LogError> {
    let mut events = Vec::new();
    let mut from = 0;
    loop {
        let batch = registry
            .log()
            .read_stream(stream, from, Direction::Forward, READ_BATCH)
            .await?;
        if batch.is_empty() {
            return Ok(events);
        }
        for event in batch {
            from = event.stream_version + 1;
            events.push(event);
        }
    }
}

#[cfg(test)]
mod tests;
