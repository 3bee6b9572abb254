//! The command handler: load → decide → one atomic, idempotent append; and the readers.

use foldhash::HashMap;
use std::sync::Arc;

use citydb_domain::{
    Date, Decision, DomainError, KeyClaim, NaturalKey, Record, RecordId, Snapshot, Target, decide,
};
use citydb_log::{
    Direction, EventLog, ExpectedVersion, LogError, Metadata, NewEvent, RecordedEvent,
    StreamAppend, StreamId,
};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::error::RegistryError;
use crate::fold::{
    dated, fold_key, fold_record, fold_record_until, key_stream, known_events, record_stream,
    stream_of,
};
use crate::request::{
    COMMAND_CATEGORY, COMMAND_EXECUTED, COMMAND_EXECUTED_VERSION, CommandExecuted, Executed,
    StreamChange, Warning, metadata_of,
};
use citydb_domain::CommandRequest;
use citydb_domain::valid_time::{
    Period, TimelineError, ValidKey, placements, state_valid_at, timeline,
};

/// Appends retried after an expected-version conflict before giving up with
/// [`RegistryError::Conflict`].
pub const DEFAULT_MAX_RETRIES: usize = 5;

/// Streams `decide` may ask for (through `NotLoaded`) beyond what `Command::reads` names, per
/// command. Real rules need one or two (a spouse, a new key); more means a rule is looping.
pub const MAX_EXTRA_READS: usize = 16;

/// A record's current (or as-of) state with where it stands in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadedRecord {
    pub record: Record,
    /// Version (0-based) of the stream's last folded event: what an optimistic writer expects.
    pub version: u64,
    /// Global position of that event.
    pub last_position: u64,
}

/// Executes commands against an [`EventLog`] and reads records back.
///
/// Cheap to clone; every clone shares the log. Safe to use from many tasks at once: all
/// coordination happens through the log's expected versions, never through in-process locks,
/// so several processes (or nodes) on one log are just as safe.
#[derive(Clone)]
pub struct Registry {
    log: Arc<dyn EventLog>,
    max_retries: usize,
}

/// The streams one decision was made on.
#[derive(Default)]
pub(crate) struct Loaded {
    pub(crate) snapshot: Snapshot,
    /// Every stream read, in load order, with its version at load time (`None`: empty).
    pub(crate) streams: Vec<(Target, StreamId, Option<u64>)>,
    index: HashMap<Target, usize>,
}

/// The folded state of one stream: a record's, or a natural key's claim.
#[derive(Clone, Debug)]
pub(crate) enum StreamState {
    /// Boxed: a bulk import holds millions of these beside key claims a tenth their size.
    Record(Option<Box<Record>>),
    Key(KeyClaim),
}

impl Loaded {
    pub(crate) fn has(&self, target: &Target) -> bool {
        self.index.contains_key(target)
    }

    pub(crate) fn version(&self, target: &Target) -> Option<Option<u64>> {
        self.index.get(target).map(|&i| self.streams[i].2)
    }

    /// Adds a loaded stream: its state goes into the snapshot `decide` sees.
    pub(crate) fn insert(
        &mut self,
        target: Target,
        stream: StreamId,
        version: Option<u64>,
        state: StreamState,
    ) {
        match (target, state) {
            (Target::Record(id), StreamState::Record(record)) => {
                self.snapshot.insert_record(id, record.map(|r| *r));
            }
            (Target::Key(key), StreamState::Key(claim)) => self.snapshot.insert_key(key, claim),
            // A record's state under a key target (or the reverse) would be a caller's bug;
            // the snapshot then lacks the target and `decide` asks for it again.
            _ => return,
        }
        self.index.insert(target, self.streams.len());
        self.streams.push((target, stream, version));
    }

    /// Every stream's state back out of the snapshot, in load order (`None`: the snapshot no
    /// longer holds it), for a caller that lent them for one decision.
    pub(crate) fn into_states(self) -> Vec<(Target, Option<StreamState>)> {
        let Loaded {
            mut snapshot,
            streams,
            ..
        } = self;
        streams
            .into_iter()
            .map(|(target, _, _)| {
                let state = match target {
                    Target::Record(id) => snapshot
                        .take_record(id)
                        .map(|record| StreamState::Record(record.map(Box::new))),
                    Target::Key(key) => snapshot.take_key(&key).map(StreamState::Key),
                };
                (target, state)
            })
            .collect()
    }
}

/// What `decide` needs next.
pub(crate) enum Step {
    Decided(Decision),
    /// Streams to load before deciding again.
    Load(Vec<Target>),
}

/// Runs `decide` on what is loaded: a decision whose every target is loaded, or the streams to
/// load first (the one it asked for with `NotLoaded`, or targets it would write blind).
pub(crate) fn next_step(loaded: &Loaded, request: &CommandRequest) -> Result<Step, RegistryError> {
    match decide(&loaded.snapshot, &request.command, &request.actor) {
        Ok(decision) => {
            // The append needs the version of every stream it writes; a rule writing to a
            // stream it never read would also have decided blind, so load and redo.
            let missing: Vec<Target> = decision
                .changes
                .iter()
                .map(|c| c.target)
                .filter(|t| !loaded.has(t))
                .collect();
            if missing.is_empty() {
                Ok(Step::Decided(decision))
            } else {
                Ok(Step::Load(missing))
            }
        }
        Err(DomainError::NotLoaded(target)) => Ok(Step::Load(vec![target])),
        Err(refusal) => Err(refusal.into()),
    }
}

/// Counts one more stream `decide` asked for beyond the command's declared reads: refused once
/// it was loaded already (a rule looping) or past [`MAX_EXTRA_READS`].
pub(crate) fn admit_extra(
    loaded: &Loaded,
    extra: &mut Vec<Target>,
    target: Target,
) -> Result<(), RegistryError> {
    if loaded.has(&target) || extra.len() >= MAX_EXTRA_READS {
        return Err(RegistryError::Unresolved {
            target: target.to_string(),
        });
    }
    extra.push(target);
    Ok(())
}

impl Registry {
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        Registry {
            log,
            max_retries: DEFAULT_MAX_RETRIES,
        }
    }

    /// Sets how many times an append that lost a race is retried (default
    /// [`DEFAULT_MAX_RETRIES`]).
    pub fn with_max_retries(mut self, max_retries: usize) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// The underlying log.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// Executes one command: loads what it reads, decides, and appends the decision together
    /// with the command marker in ONE atomic append.
    ///
    /// Every stream the decision was made on is held to the version it was read at — the
    /// changed ones through their appends, the merely read ones through version-check-only
    /// entries — so a decision never commits against a state that changed meanwhile (a
    /// representative who died, a key claimed by someone else). When the append loses such a
    /// race, everything is reloaded and decided again, up to the retry limit.
    ///
    /// Idempotent by `command_id`: the marker stream `command-<command_id>` is appended with
    /// `NoStream`, so at most one execution of an id ever commits, and a re-sent id is answered
    /// from the marker with `already_executed: true` and the original result. A refused command
    /// writes nothing, so its id stays free.
    ///
    /// An approved redaction is carried out (`Registry::complete_redactions`) once its approval
    /// is durable, on the first execution and on every re-send of the approval.
    pub async fn execute(&self, request: CommandRequest) -> Result<Executed, RegistryError> {
        let approved = match &request.command {
            citydb_domain::Command::ApproveRedaction(c) => Some(c.record),
            _ => None,
        };
        let executed = self.execute_once(request).await?;
        if let Some(record) = approved {
            self.complete_redactions(record).await?;
        }
        Ok(executed)
    }

    async fn execute_once(&self, request: CommandRequest) -> Result<Executed, RegistryError> {
        // Bounded text before anything else: nothing over its maximum is ever appended.
        request.check_text()?;
        request.check_effective_at()?;
        let marker = command_stream(request.command_id)?;
        let command_json =
            serde_json::to_value(&request.command).map_err(|e| LogError::InvalidEvent {
                reason: format!("the command cannot be serialised: {e}"),
            })?;
        let metadata = metadata_of(&request);
        let reads = request.command.reads();
        // Streams decide asked for on an earlier attempt: load them up front on the next.
        let mut extra: Vec<Target> = Vec::new();
        let mut attempts = 0;
        loop {
            if let Some(done) = self.recorded(&marker, &request, &command_json).await? {
                return Ok(done);
            }
            attempts += 1;

            let mut loaded = Loaded::default();
            let targets = reads
                .records
                .iter()
                .map(|id| Target::Record(*id))
                .chain(reads.keys.iter().map(|key| Target::Key(*key)))
                .chain(extra.iter().copied())
                .collect::<Vec<_>>();
            for target in targets {
                if !loaded.has(&target) {
                    self.load_into(&mut loaded, target).await?;
                }
            }
            if let Some(expected) = request.expected {
                let target = Target::Record(expected.record);
                if !loaded.has(&target) {
                    self.load_into(&mut loaded, target).await?;
                }
                let actual = loaded.version(&target).flatten();
                if actual != Some(expected.version) {
                    return Err(RegistryError::StaleVersion {
                        record: expected.record,
                        expected: expected.version,
                        actual,
                    });
                }
            }
            self.load_redaction_target(&mut loaded, &request.command)
                .await?;
            let decision = match self.decide(&mut loaded, &request, &mut extra).await {
                Ok(decision) => decision,
                Err(RegistryError::Domain(refusal)) => {
                    // The state may be refusing the command because this very command id
                    // committed since the marker check (a concurrent re-send): then the answer
                    // is its result, not a refusal of its own effects.
                    if let Some(done) = self.recorded(&marker, &request, &command_json).await? {
                        return Ok(done);
                    }
                    return Err(RegistryError::Domain(refusal));
                }
                Err(e) => return Err(e),
            };

            let planned = plan(&request, &metadata, &marker, &loaded, &decision)?;
            match self.log.append(planned.appends).await {
                Ok(outcome) => {
                    return Ok(Executed {
                        command_id: request.command_id,
                        already_executed: outcome.already_recorded,
                        changes: planned.changes,
                        first_position: outcome.first_position,
                        last_position: outcome.last_position,
                        warnings: planned.warnings,
                    });
                }
                Err(LogError::WrongExpectedVersion { stream, .. }) => {
                    // Lost the race against the same command id: answer with its result.
                    if stream == marker
                        && let Some(done) = self.recorded(&marker, &request, &command_json).await?
                    {
                        return Ok(done);
                    }
                    if attempts > self.max_retries {
                        return Err(RegistryError::Conflict { stream, attempts });
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Calls `decide` until it stops asking for streams, loading each one it names.
    async fn decide(
        &self,
        loaded: &mut Loaded,
        request: &CommandRequest,
        extra: &mut Vec<Target>,
    ) -> Result<Decision, RegistryError> {
        loop {
            match next_step(loaded, request)? {
                Step::Decided(decision) => return Ok(decision),
                Step::Load(missing) => {
                    for target in missing {
                        admit_extra(loaded, extra, target)?;
                        self.load_into(loaded, target).await?;
                    }
                }
            }
        }
    }

    async fn load_into(&self, loaded: &mut Loaded, target: Target) -> Result<(), RegistryError> {
        let stream = stream_of(&target)?;
        let events = self.log.read_stream_to_end(&stream, 0).await?;
        let version = events.last().map(|e| e.stream_version);
        let state = match target {
            Target::Record(id) => StreamState::Record(fold_record(id, &events)?.map(Box::new)),
            Target::Key(key) => StreamState::Key(fold_key(&key, &events)?),
        };
        loaded.insert(target, stream, version, state);
        Ok(())
    }

    /// The recorded result of this request's command id, if it was executed; an error if the id
    /// was used for another command.
    async fn recorded(
        &self,
        marker: &StreamId,
        request: &CommandRequest,
        command_json: &Value,
    ) -> Result<Option<Executed>, RegistryError> {
        let Some((position, record)) = self.read_marker(marker).await? else {
            return Ok(None);
        };
        resent(request, command_json, position, &record).map(Some)
    }

    async fn read_marker(
        &self,
        marker: &StreamId,
    ) -> Result<Option<(u64, CommandExecuted)>, RegistryError> {
        let events = self
            .log
            .read_stream(marker, 0, Direction::Forward, 1)
            .await?;
        let Some(event) = events.first() else {
            return Ok(None);
        };
        Ok(Some((event.position, marker_record(marker, event)?)))
    }

    /// The result of an executed command id, `None` if it never executed (or was refused).
    pub async fn command_result(
        &self,
        command_id: Uuid,
    ) -> Result<Option<Executed>, RegistryError> {
        let marker = command_stream(command_id)?;
        Ok(self
            .read_marker(&marker)
            .await?
            .map(|(position, record)| record.executed(position, true)))
    }

    /// A record's current state; `None` if it was never registered.
    pub async fn load_record(&self, id: RecordId) -> Result<Option<LoadedRecord>, RegistryError> {
        self.load_record_until(id, None).await
    }

    /// A record's state as of global position `position`: only its events at or before that
    /// position are folded. `None` if it did not exist yet. For auditors' `asOf` queries (pair
    /// with `EventLog::position_at` for a point in time).
    pub async fn load_record_as_of(
        &self,
        id: RecordId,
        position: u64,
    ) -> Result<Option<LoadedRecord>, RegistryError> {
        self.load_record_until(id, Some(position)).await
    }

    /// A record as it held on `valid_at` (valid time, `citydb_domain::valid_time`), as known at
    /// global position `until` (as known now with `None`). `None` if the record was not known
    /// then, or did not exist yet on that date. `version` and `last_position` are those of the
    /// last event known, so the answer names the point it was read at.
    pub async fn load_record_valid_at(
        &self,
        id: RecordId,
        until: Option<u64>,
        valid_at: Date,
    ) -> Result<Option<LoadedRecord>, RegistryError> {
        let stream = record_stream(id)?;
        let events = self.log.read_stream_to_end(&stream, 0).await?;
        let known = known_events(&events, until)?;
        let Some((last, _)) = known.last() else {
            return Ok(None);
        };
        let (version, last_position) = (last.stream_version, last.position);
        let state = state_valid_at(&dated(&known)?, valid_at)
            .map_err(|e| RegistryError::corrupt(&stream, format!("on the valid axis: {e}")))?;
        if let Some(record) = &state
            && record.id() != id
        {
            return Err(RegistryError::corrupt(
                &stream,
                format!("holds record {} instead of {id}", record.id()),
            ));
        }
        Ok(state.map(|record| LoadedRecord {
            record,
            version,
            last_position,
        }))
    }

    /// The periods of one field of a record on the valid axis, as known at `until` (now with
    /// `None`); `None` if the record was not known then. An unknown field is refused with
    /// `UNKNOWN_FIELD` (`citydb_domain::valid_time::timeline_fields`).
    pub async fn record_timeline(
        &self,
        id: RecordId,
        until: Option<u64>,
        field: &str,
    ) -> Result<Option<Vec<Period>>, RegistryError> {
        let stream = record_stream(id)?;
        let events = self.log.read_stream_to_end(&stream, 0).await?;
        let known = known_events(&events, until)?;
        if known.is_empty() {
            return Ok(None);
        }
        match timeline(&dated(&known)?, field) {
            Ok(periods) => Ok(Some(periods)),
            Err(TimelineError::UnknownField { kind, field }) => {
                Err(DomainError::UnknownField { kind, field }.into())
            }
            Err(TimelineError::Stream(e)) => Err(RegistryError::corrupt(
                &stream,
                format!("on the valid axis: {e}"),
            )),
        }
    }

    /// A record's stream as known at `until` (now with `None`), each event with its place on
    /// the valid axis (`None`: it holds on the recorded axis only), for `history` in valid
    /// order. Events are as stored (a blanked payload stays blank); their places are computed
    /// with approved redactions in place.
    pub async fn record_history(
        &self,
        id: RecordId,
        until: Option<u64>,
    ) -> Result<Vec<(RecordedEvent, Option<ValidKey>)>, RegistryError> {
        let stream = record_stream(id)?;
        let events = self.log.read_stream_to_end(&stream, 0).await?;
        let known = known_events(&events, until)?;
        let places = placements(&dated(&known)?)
            .map_err(|e| RegistryError::corrupt(&stream, format!("on the valid axis: {e}")))?;
        Ok(known
            .into_iter()
            .zip(places)
            .map(|((recorded, _), place)| (recorded.clone(), place))
            .collect())
    }

    async fn load_record_until(
        &self,
        id: RecordId,
        until: Option<u64>,
    ) -> Result<Option<LoadedRecord>, RegistryError> {
        // The whole stream: an approved redaction after `until` still replaces the event it
        // names before it (`fold_record_until`).
        let events = self.log.read_stream_to_end(&record_stream(id)?, 0).await?;
        let Some(last) = events
            .iter()
            .rev()
            .find(|e| until.is_none_or(|until| e.position <= until))
        else {
            return Ok(None);
        };
        let (version, last_position) = (last.stream_version, last.position);
        Ok(
            fold_record_until(id, &events, until)?.map(|record| LoadedRecord {
                record,
                version,
                last_position,
            }),
        )
    }

    /// The record currently holding a PIN, enterprise code or parcel key.
    pub async fn load_key(&self, key: &NaturalKey) -> Result<Option<RecordId>, RegistryError> {
        Ok(self.key_claim(key).await?.holder)
    }

    /// A natural key's reservation: current holder and past holders.
    pub async fn key_claim(&self, key: &NaturalKey) -> Result<KeyClaim, RegistryError> {
        let events = self.log.read_stream_to_end(&key_stream(key)?, 0).await?;
        fold_key(key, &events)
    }

    /// Every stored event of a record's stream, oldest first, as recorded (with metadata and
    /// hashes).
    pub async fn history(&self, id: RecordId) -> Result<Vec<RecordedEvent>, RegistryError> {
        Ok(self.log.read_stream_to_end(&record_stream(id)?, 0).await?)
    }
}

/// The payload of a command's marker event.
pub(crate) fn marker_record(
    marker: &StreamId,
    event: &RecordedEvent,
) -> Result<CommandExecuted, RegistryError> {
    if event.event_type != COMMAND_EXECUTED {
        return Err(RegistryError::corrupt(
            marker,
            format!("holds {} instead of {COMMAND_EXECUTED}", event.event_type),
        ));
    }
    // A marker blanked by a redaction no longer says which command ran: the id was used, so a
    // re-send of it is refused rather than run twice.
    if event.is_redacted() {
        return Err(RegistryError::CommandIdReused {
            command_id: marker.id(),
        });
    }
    serde_json::from_slice(&event.data).map_err(|e| RegistryError::corrupt(marker, e))
}

/// The answer to a request whose command id is recorded (marker at `position`): its original
/// result, or `CommandIdReused` when the id was used for another command.
pub(crate) fn resent(
    request: &CommandRequest,
    command_json: &Value,
    position: u64,
    record: &CommandExecuted,
) -> Result<Executed, RegistryError> {
    if record.command != *command_json {
        return Err(RegistryError::CommandIdReused {
            command_id: request.command_id,
        });
    }
    Ok(record.executed(position, true))
}

/// The marker stream of a command id.
pub fn command_stream(command_id: Uuid) -> Result<StreamId, RegistryError> {
    Ok(StreamId::new(COMMAND_CATEGORY, command_id)?)
}

/// What [`plan`] makes of a decision: the one atomic append, and the result it records.
pub(crate) struct Plan {
    pub(crate) appends: Vec<StreamAppend>,
    pub(crate) changes: Vec<StreamChange>,
    pub(crate) warnings: Vec<Warning>,
}

/// The marker's payload as it is written: [`CommandExecuted`] with its parts borrowed and the
/// command serialised straight from its Rust form. The same JSON object (the same members with
/// the same values; key order is free, docs/audit-format.md) as serialising a
/// `CommandExecuted` holding the command's `Value`, without building and cloning that `Value`
/// for every command (a bulk import's largest serialisation cost).
#[derive(Serialize)]
pub(crate) struct MarkerPayload<'a> {
    pub(crate) command_id: Uuid,
    pub(crate) command_type: &'a str,
    pub(crate) command: &'a citydb_domain::Command,
    pub(crate) actor: &'a citydb_domain::Actor,
    pub(crate) changes: &'a [StreamChange],
    pub(crate) warnings: &'a [Warning],
    pub(crate) event_count: u64,
}

/// First capacities of the JSON buffers [`plan`] writes: above what most of them take (at 1/100
/// of the city: metadata 194 bytes on average, 321 at most; events 46–600; markers 627 on
/// average). `serde_json::to_vec` starts at 128 bytes and doubles, which copied the buffer 4.4
/// times an event in a bulk import (docs/benchmarks.md, "The importer's ids, maps and buffers").
const METADATA_CAPACITY: usize = 256;
const EVENT_CAPACITY: usize = 512;
const MARKER_CAPACITY: usize = 1024;

/// `value`'s JSON, as `serde_json::to_vec` writes it, into a buffer of `capacity` bytes first.
fn to_json(value: &impl Serialize, capacity: usize) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, value)?;
    Ok(out)
}

/// Turns a decision into the one atomic append: the changes, a version check on every other
/// stream the decision read, and the command marker (last).
///
/// Each event's data is serialised once, straight from the domain event, and the metadata once
/// for the whole command (every event of a command carries the same bytes).
pub(crate) fn plan(
    request: &CommandRequest,
    metadata: &Metadata,
    marker: &StreamId,
    loaded: &Loaded,
    decision: &Decision,
) -> Result<Plan, RegistryError> {
    let metadata = to_json(metadata, METADATA_CAPACITY).map_err(|e| LogError::InvalidEvent {
        reason: format!("metadata cannot be serialised: {e}"),
    })?;
    let mut appends = Vec::with_capacity(loaded.streams.len() + 1);
    let mut changes = Vec::with_capacity(decision.changes.len());
    let mut event_count: u64 = 1; // the marker
    for change in &decision.changes {
        if change.events.is_empty() {
            continue; // held by the version checks below
        }
        // `decide` on our loop only returns decisions whose targets are all loaded.
        let Some(before) = loaded.version(&change.target) else {
            return Err(RegistryError::Unresolved {
                target: change.target.to_string(),
            });
        };
        let stream = stream_of(&change.target)?;
        let events = change
            .events
            .iter()
            .map(|event| {
                let data = to_json(event, EVENT_CAPACITY).map_err(|e| LogError::InvalidEvent {
                    reason: format!("{} cannot be serialised: {e}", event.event_type()),
                })?;
                Ok(NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: event.event_type().to_owned(),
                    schema_version: event.schema_version(),
                    data,
                    metadata: metadata.clone(),
                })
            })
            .collect::<Result<Vec<_>, LogError>>()?;
        let n = events.len() as u64;
        event_count += n;
        changes.push(StreamChange {
            stream: stream.clone(),
            record: match change.target {
                Target::Record(id) => Some(id),
                Target::Key(_) => None,
            },
            key: match change.target {
                Target::Key(key) => Some(key),
                Target::Record(_) => None,
            },
            events: n,
            version: before.map_or(n - 1, |v| v + n),
        });
        appends.push(StreamAppend::new(
            stream,
            ExpectedVersion::from_current(before),
            events,
        ));
    }
    // Read dependencies: the decision holds only while these are unchanged (a representative
    // still alive, a holder not dissolved, a key still free).
    for (_, stream, version) in &loaded.streams {
        if !changes.iter().any(|c| &c.stream == stream) {
            appends.push(StreamAppend::new(
                stream.clone(),
                ExpectedVersion::from_current(*version),
                Vec::new(),
            ));
        }
    }
    let warnings: Vec<Warning> = decision.warnings.iter().map(Warning::from).collect();
    let payload = MarkerPayload {
        command_id: request.command_id,
        command_type: request.command.command_type(),
        command: &request.command,
        actor: &request.actor,
        changes: &changes,
        warnings: &warnings,
        event_count,
    };
    let data = to_json(&payload, MARKER_CAPACITY).map_err(|e| LogError::InvalidEvent {
        reason: format!("the command cannot be serialised: {e}"),
    })?;
    appends.push(StreamAppend::new(
        marker.clone(),
        ExpectedVersion::NoStream,
        vec![NewEvent {
            event_id: Uuid::now_v7(),
            event_type: COMMAND_EXECUTED.to_owned(),
            schema_version: COMMAND_EXECUTED_VERSION,
            data,
            metadata,
        }],
    ));
    Ok(Plan {
        appends,
        changes,
        warnings,
    })
}
