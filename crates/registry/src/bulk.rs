//! [`BulkRegistry`]: the command handler of a bulk import, where one process is the store's only
//! writer.
//!
//! It answers every request exactly as [`Registry::execute`](crate::Registry::execute) run one
//! request after the other would — same refusals, same events, data and metadata, same markers
//! — but never re-reads what it wrote: every stream it loaded or wrote stays in memory with its
//! folded state, version and last hash, so a command is load (from memory) → `decide` → plan
//! (`citydb_log::backend::plan`, against the tip it tracks) → rows handed to a
//! [`BulkSink`]. The same pure steps as the careful path ([`next_step`], [`plan`],
//! [`resent`]); only where state comes from differs.
//!
//! Invariants:
//! - **Only writer.** Decisions are made on memory, so nobody else may write the store
//!   meanwhile; the sink enforces it (SQLite holds the file's lock; a copy into another store
//!   is refused when its tip moved).
//! - **Whole commands.** A command's rows (its events and marker) go to the sink in one
//!   [`BulkSink::write`], and [`BulkRegistry::commit`] is only called between commands: a store
//!   killed at any moment holds a prefix of the executed commands, and a re-run answers them
//!   "already executed" from their markers and continues.
//! - **What the store held before** is read from it when first needed (and kept): a stream the
//!   run has not seen is looked up in the store unless the store was empty when the run began.

// foldhash, not SipHash: these maps hold every stream and command id of a run (millions), and
// hashing their keys was ~4 % of the importer's thread (docs/benchmarks.md, 2026-12-04 later).
// Its seed is random per process, and the keys come from the operator's own file.
use foldhash::HashMap;

use citydb_domain::{CommandRequest, Decision, Target, evolve, evolve_key};
use citydb_log::backend::plan::{LogState, Recorded, Tip, now_micros, plan_append};
use citydb_log::bulk::{BulkSink, StreamFilter};
use citydb_log::chain::EventView;
use citydb_log::{Hash, LogError, NewEvent, RecordedEvent, StreamId, validate_serialised_append};
use uuid::Uuid;

use crate::error::RegistryError;
use crate::fold::{fold_key, fold_record, stream_of};
use crate::registry::{
    Loaded, Step, StreamState, admit_extra, command_stream, marker_record, next_step, plan, resent,
};
use crate::request::{Executed, StreamChange, Warning, metadata_of};
use crate::spill::{Slot, Spill};

/// Rows gathered before they go to the sink in one call (whole commands only).
const WRITE_ROWS: usize = 4096;

/// The pending rows' buffer: [`WRITE_ROWS`] and the rows of one more command that reaches it
/// (a command writes a handful; a larger one grows the buffer once).
const PENDING_CAPACITY: usize = WRITE_ROWS + 64;

/// A command's rows, planned, with the result it records.
struct Planned {
    rows: Vec<RecordedEvent>,
    tip: Tip,
    changes: Vec<StreamChange>,
    warnings: Vec<Warning>,
}

/// Record states held in memory by default before the least recently used are set aside on
/// disk ([`crate::spill`]): about 1 GB of states (a citizen's is ~1 KB on the heap).
pub const DEFAULT_STATES_IN_MEMORY: usize = 1_000_000;

/// A stream this run has loaded or written: its folded state, version and last hash.
struct Held {
    /// `None`: a record's state set aside at `aside`.
    state: Option<StreamState>,
    /// Where this state, unchanged since, also sits in the spill file.
    aside: Option<Slot>,
    version: Option<u64>,
    hash: Hash,
    /// The command that last loaded it (this run's count), for setting aside the least
    /// recently used first.
    used: u64,
}

impl Held {
    /// Whether this is a record's state counted against the budget (in memory, not empty).
    fn counts(&self) -> bool {
        matches!(self.state, Some(StreamState::Record(Some(_))))
    }
}

/// Executes commands for a bulk import (see the module documentation).
pub struct BulkRegistry {
    sink: Box<dyn BulkSink>,
    /// Every record and key stream loaded or written by this run.
    streams: HashMap<Target, Held>,
    /// Record states set aside on disk past `states_in_memory`.
    spill: Spill,
    /// Record states in memory (`Held::counts`), and how many may be before some are set aside.
    in_memory: usize,
    states_in_memory: usize,
    /// Commands executed or refused so far: the clock of `Held::used`.
    clock: u64,
    /// Command ids executed by this run, with their marker's position.
    commands: HashMap<Uuid, u64>,
    /// Whether the store was empty when the run began: then a stream not in `streams` has no
    /// events, and nothing needs to be looked up.
    started_empty: bool,
    /// Which streams the store held when the run began (asked once, when first needed): a
    /// stream it cannot hold is not looked up. `Some(None)`: the store gave no filter.
    held: Option<Option<StreamFilter>>,
    tip: Tip,
    /// Rows of whole commands not yet handed to the sink.
    pending: Vec<RecordedEvent>,
    max_event_size: usize,
    /// Set by the first failure of the sink: what this run holds in memory may then be ahead of
    /// the store, so nothing more is decided on it.
    failed: bool,
}

impl BulkRegistry {
    /// A handler writing through `sink`, refusing events over `max_event_size` bytes as the
    /// store's own append would.
    pub fn new(sink: Box<dyn BulkSink>, max_event_size: usize) -> BulkRegistry {
        let tip = sink.tip();
        BulkRegistry {
            sink,
            streams: HashMap::default(),
            spill: Spill::default(),
            in_memory: 0,
            states_in_memory: DEFAULT_STATES_IN_MEMORY,
            clock: 0,
            commands: HashMap::default(),
            started_empty: tip == Tip::EMPTY,
            held: None,
            tip,
            pending: Vec::new(),
            max_event_size,
            failed: false,
        }
    }

    /// Holds at most `n` record states in memory (at least one command's worth more while it
    /// is decided); the least recently used beyond are set aside in a temporary file
    /// ([`crate::spill`]). Default [`DEFAULT_STATES_IN_MEMORY`].
    pub fn with_states_in_memory(mut self, n: usize) -> BulkRegistry {
        self.states_in_memory = n;
        self
    }

    /// Record states set aside so far, in bytes of the temporary file.
    pub fn bytes_set_aside(&self) -> u64 {
        self.spill.bytes()
    }

    /// The next position to be written.
    pub fn next_position(&self) -> u64 {
        self.tip.next_position
    }

    /// Executes one command (see [`Registry::execute`](crate::Registry::execute) for the
    /// answers). Its rows are handed to the sink but durable only after [`Self::commit`].
    ///
    /// Once the sink has failed, every call answers `LogError::Closed`: re-run the import.
    pub async fn execute(&mut self, request: CommandRequest) -> Result<Executed, RegistryError> {
        if self.failed {
            return Err(LogError::Closed.into());
        }
        request.check_text()?;
        request.check_effective_at()?;
        self.clock += 1;
        self.set_aside_beyond_budget()?;
        let marker = command_stream(request.command_id)?;
        if let Some(done) = self.recorded(&marker, &request).await? {
            return Ok(done);
        }
        // The held states are lent to the decision, not cloned, and come back whatever its
        // outcome (a refusal included) before anything else happens.
        let mut loaded = Loaded::default();
        let decided = self.decide_and_plan(&request, &marker, &mut loaded).await;
        self.give_back(loaded);
        let (decision, planned) = decided?;
        if self.failed {
            return Err(LogError::Closed.into());
        }
        let Planned {
            rows,
            tip,
            changes,
            warnings,
        } = planned;
        let (first_position, last_position) = match (rows.first(), rows.last()) {
            (Some(first), Some(last)) => (first.position, last.position),
            // A marker is always written; an empty plan means the planner took the request for
            // a re-send, which the marker check above rules out.
            _ => {
                return Err(RegistryError::corrupt(
                    &marker,
                    "the command planned no rows",
                ));
            }
        };

        // The decision is in: fold it into what this run holds. The appends are in the
        // decision's order (changes without events left out), so each change's rows follow
        // the previous one's.
        let mut offset = 0;
        for change in decision.changes.iter().filter(|c| !c.events.is_empty()) {
            let (target, n) = (change.target, change.events.len());
            let last = rows.get(offset + n - 1).map(|r| (r.stream_version, r.hash));
            offset += n;
            let (Some((version, hash)), Some(held)) = (last, self.streams.get_mut(&target)) else {
                self.failed = true;
                return Err(RegistryError::Unresolved {
                    target: target.to_string(),
                });
            };
            let counted = held.counts();
            for event in &change.events {
                let folded = match held.state.take() {
                    Some(StreamState::Record(record)) => evolve(record.map(|r| *r), event)
                        .map(|r| StreamState::Record(Some(Box::new(r)))),
                    Some(StreamState::Key(claim)) => {
                        evolve_key(Some(claim), event).map(StreamState::Key)
                    }
                    // Given back above; a missing state is a bug of this file.
                    None => {
                        self.failed = true;
                        return Err(RegistryError::corrupt(
                            target.to_string(),
                            "the state was not given back",
                        ));
                    }
                };
                match folded {
                    Ok(state) => held.state = Some(state),
                    Err(e) => {
                        // Half-folded: what this run holds is no longer the store's state.
                        self.failed = true;
                        return Err(RegistryError::corrupt(target.to_string(), e));
                    }
                }
            }
            held.version = Some(version);
            held.hash = hash;
            // Changed: what was set aside of it is stale.
            held.aside = None;
            if held.counts() && !counted {
                self.in_memory += 1;
            }
        }
        self.tip = tip;
        self.commands.insert(request.command_id, last_position);
        self.pending.extend(rows);
        if self.pending.len() >= WRITE_ROWS {
            self.flush().await?;
        }
        Ok(Executed {
            command_id: request.command_id,
            already_executed: false,
            changes,
            first_position: Some(first_position),
            last_position: Some(last_position),
            warnings,
        })
    }

    /// Load (lending held states to `loaded`) → decide → plan the rows: everything of a command
    /// that may refuse it, before anything this run holds changes.
    async fn decide_and_plan(
        &mut self,
        request: &CommandRequest,
        marker: &StreamId,
        loaded: &mut Loaded,
    ) -> Result<(Decision, Planned), RegistryError> {
        let reads = request.command.reads();
        let targets = reads
            .records
            .iter()
            .map(|id| Target::Record(*id))
            .chain(reads.keys.iter().map(|key| Target::Key(*key)))
            .chain(request.expected.map(|e| Target::Record(e.record)));
        for target in targets {
            if !loaded.has(&target) {
                self.load_into(loaded, target).await?;
            }
        }
        if let Some(expected) = request.expected {
            let actual = loaded.version(&Target::Record(expected.record)).flatten();
            if actual != Some(expected.version) {
                return Err(RegistryError::StaleVersion {
                    record: expected.record,
                    expected: expected.version,
                    actual,
                });
            }
        }
        let mut extra = Vec::new();
        let decision = loop {
            match next_step(loaded, request)? {
                Step::Decided(decision) => break decision,
                Step::Load(missing) => {
                    for target in missing {
                        admit_extra(loaded, &mut extra, target)?;
                        self.load_into(loaded, target).await?;
                    }
                }
            }
        };

        let metadata = metadata_of(request);
        let plan = plan(request, &metadata, marker, loaded, &decision)?;
        // `plan` wrote every payload and metadata with serde_json from typed values.
        validate_serialised_append(&plan.appends, self.max_event_size)?;
        let mut state = RequestStreams {
            streams: loaded
                .streams
                .iter()
                .map(|(target, stream, version)| {
                    let hash = self.streams.get(target).map_or(Hash::ZERO, |h| h.hash);
                    (stream.as_str(), version.map(|v| (v, hash)))
                })
                .collect(),
            marker: marker.as_str(),
        };
        let planned = plan_append(&plan.appends, self.tip, now_micros(), &mut state)?;
        let tip = planned.tip;
        let links: Vec<Link> = planned.rows.iter().map(Link::of).collect();
        drop(planned);
        // The events move into their rows (no copy of their bytes), in planned order: append
        // by append, event by event.
        let mut links = links.into_iter();
        let mut rows = Vec::with_capacity(links.len());
        for append in plan.appends {
            for event in append.events {
                let link = links.next().ok_or_else(|| {
                    RegistryError::corrupt(&append.stream, "the plan has fewer rows than events")
                })?;
                rows.push(link.row(append.stream.clone(), event));
            }
        }
        Ok((
            decision,
            Planned {
                rows,
                tip,
                changes: plan.changes,
                warnings: plan.warnings,
            },
        ))
    }

    /// Sets aside the least recently used record states once more than `states_in_memory` are
    /// held, down to nine tenths of it (so that it happens once per many commands). Runs
    /// between commands: nothing is lent.
    fn set_aside_beyond_budget(&mut self) -> Result<(), RegistryError> {
        if self.in_memory <= self.states_in_memory {
            return Ok(());
        }
        let keep = self.states_in_memory - self.states_in_memory / 10;
        let mut candidates: Vec<(u64, Target)> = self
            .streams
            .iter()
            .filter(|(_, held)| held.counts())
            .map(|(target, held)| (held.used, *target))
            .collect();
        let n = self.in_memory.saturating_sub(keep).min(candidates.len());
        if n < candidates.len() {
            candidates.select_nth_unstable_by_key(n, |&(used, _)| used);
        }
        for (_, target) in &candidates[..n] {
            let Some(held) = self.streams.get_mut(target) else {
                continue;
            };
            let Some(StreamState::Record(Some(record))) = held.state.take() else {
                continue;
            };
            let slot = match held.aside {
                Some(slot) => slot,
                None => match self.spill.write(&record) {
                    Ok(slot) => slot,
                    Err(e) => {
                        // This state is now nowhere: nothing more may be decided.
                        self.failed = true;
                        return Err(e);
                    }
                },
            };
            held.aside = Some(slot);
            self.in_memory -= 1;
        }
        Ok(())
    }

    /// Takes back the states lent to `loaded` (see [`Self::load_into`]). A state the snapshot
    /// no longer holds would leave this run's memory unlike the store: nothing more is decided.
    fn give_back(&mut self, loaded: Loaded) {
        for (target, state) in loaded.into_states() {
            match (state, self.streams.get_mut(&target)) {
                (Some(state), Some(held)) => held.state = Some(state),
                _ => self.failed = true,
            }
        }
    }

    /// Makes every command executed so far durable.
    pub async fn commit(&mut self) -> Result<(), RegistryError> {
        self.flush().await?;
        let result = self.sink.commit().await;
        self.sink_result(result)
    }

    /// Commits and closes the sink (restoring whatever the store set aside for the load). The
    /// states this run holds are dropped first: the store's last step (building indexes) may
    /// want the memory.
    pub async fn finish(self) -> Result<(), RegistryError> {
        let sink = self.close().await?;
        Ok(sink.finish().await?)
    }

    /// Hands every command executed so far to the sink and returns it, dropping everything
    /// else this run holds (states, keys, command ids); the caller then finishes the sink
    /// ([`BulkSink::finish`]) — after handing the freed memory back, say.
    pub async fn close(mut self) -> Result<Box<dyn BulkSink>, RegistryError> {
        if self.failed {
            return Err(LogError::Closed.into());
        }
        self.flush().await?;
        Ok(self.into_sink())
    }

    /// The sink, with everything else dropped now. (A pattern moving `sink` out of `self` in
    /// `close` would keep the rest alive until `finish` returns: the whole city's index build
    /// then ran beside gigabytes of states and command ids.)
    fn into_sink(self) -> Box<dyn BulkSink> {
        self.sink
    }

    async fn flush(&mut self) -> Result<(), RegistryError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // The next rows go into a buffer of the size they reach: grown from empty, it was
        // copied 13 times a flush (rows of ~300 bytes).
        let rows = std::mem::replace(&mut self.pending, Vec::with_capacity(PENDING_CAPACITY));
        let result = self.sink.write(rows).await;
        self.sink_result(result)
    }

    /// Notes a failure of the sink (see `failed`).
    fn sink_result<T>(&mut self, result: Result<T, LogError>) -> Result<T, RegistryError> {
        if result.is_err() {
            self.failed = true;
        }
        Ok(result?)
    }

    async fn read_event(&mut self, position: u64) -> Result<Option<RecordedEvent>, RegistryError> {
        self.flush().await?;
        let result = self.sink.read_event(position).await;
        self.sink_result(result)
    }

    /// A stream this run has not written: every stream it writes it holds (`streams`, never
    /// emptied) or knows the position of (`commands`), and asks the store about no other. So
    /// the rows not yet handed to the sink cannot belong to it, and they are not flushed first:
    /// the sink may answer before the rows queued ahead of the question (the embedded store
    /// does), instead of the importer waiting for all of them.
    async fn read_stream(
        &mut self,
        stream: &StreamId,
    ) -> Result<Vec<RecordedEvent>, RegistryError> {
        let result = self.sink.read_stream(stream).await;
        self.sink_result(result)
    }

    /// The recorded result of this command id: executed by this run, or (when the store held
    /// events before) by an earlier one. The command's JSON, to compare with the recorded one,
    /// is only made when there is a record.
    async fn recorded(
        &mut self,
        marker: &StreamId,
        request: &CommandRequest,
    ) -> Result<Option<Executed>, RegistryError> {
        let event = if let Some(&position) = self.commands.get(&request.command_id) {
            self.read_event(position).await?
        } else if self.store_may_hold(marker).await? {
            self.read_stream(marker).await?.into_iter().next()
        } else {
            None
        };
        let Some(event) = event else {
            return Ok(None);
        };
        let record = marker_record(marker, &event)?;
        let command_json =
            serde_json::to_value(&request.command).map_err(|e| LogError::InvalidEvent {
                reason: format!("the command cannot be serialised: {e}"),
            })?;
        resent(request, &command_json, event.position, &record).map(Some)
    }

    /// Reads which streams the store held before this run (the filter [`Self::store_may_hold`]
    /// asks) now instead of at the first command that needs it: a whole city's 15.6 million
    /// stream ids take ~10 s to read, which a caller can then say it is waiting for. Does
    /// nothing into an empty store, or once read.
    pub async fn read_held_streams(&mut self) -> Result<(), RegistryError> {
        if !self.started_empty && self.held.is_none() {
            let result = self.sink.held_streams().await;
            self.held = Some(self.sink_result(result)?);
        }
        Ok(())
    }

    /// Whether `stream` may have had events before this run (false: it certainly had none).
    async fn store_may_hold(&mut self, stream: &StreamId) -> Result<bool, RegistryError> {
        if self.started_empty {
            return Ok(false);
        }
        self.read_held_streams().await?;
        Ok(match &self.held {
            Some(Some(filter)) => filter.may_hold(stream.as_str()),
            _ => true,
        })
    }

    /// Lends `target`'s state to `loaded` (from memory, else read from the store and kept):
    /// moved, not cloned, until [`Self::give_back`]. A target is loaded once per command.
    async fn load_into(
        &mut self,
        loaded: &mut Loaded,
        target: Target,
    ) -> Result<(), RegistryError> {
        let stream = stream_of(&target)?;
        if !self.streams.contains_key(&target) {
            let held = self.load_from_store(&target, &stream).await?;
            self.in_memory += usize::from(held.counts());
            self.streams.insert(target, held);
        }
        let Some(held) = self.streams.get_mut(&target) else {
            return Ok(());
        };
        let state = match held.state.take() {
            Some(state) => state,
            None => {
                let slot = held.aside.ok_or_else(|| {
                    RegistryError::corrupt(&stream, "neither in memory nor set aside")
                })?;
                let record = self.spill.read(slot)?;
                self.in_memory += 1;
                StreamState::Record(Some(Box::new(record)))
            }
        };
        held.used = self.clock;
        // Lent: `give_back` puts it back (the placeholder is never decided on).
        held.state = Some(StreamState::Record(None));
        loaded.insert(target, stream, held.version, state);
        Ok(())
    }

    async fn load_from_store(
        &mut self,
        target: &Target,
        stream: &StreamId,
    ) -> Result<Held, RegistryError> {
        let events = if self.store_may_hold(stream).await? {
            self.read_stream(stream).await?
        } else {
            Vec::new()
        };
        let state = match target {
            Target::Record(id) => StreamState::Record(fold_record(*id, &events)?.map(Box::new)),
            Target::Key(key) => StreamState::Key(fold_key(key, &events)?),
        };
        Ok(Held {
            state: Some(state),
            aside: None,
            used: self.clock,
            version: events.last().map(|e| e.stream_version),
            hash: events.last().map_or(Hash::ZERO, |e| e.hash),
        })
    }
}

/// What the planner decided for one row: all of it but the event's own bytes.
struct Link {
    event_id: Uuid,
    position: u64,
    stream_version: u64,
    recorded_at: i64,
    data_hash: Hash,
    prev_stream_hash: Hash,
    prev_log_hash: Hash,
    hash: Hash,
}

impl Link {
    fn of(view: &EventView<'_>) -> Link {
        Link {
            event_id: view.envelope.event_id,
            position: view.envelope.position,
            stream_version: view.envelope.stream_version,
            recorded_at: view.envelope.recorded_at,
            data_hash: view.data_hash,
            prev_stream_hash: view.prev_stream_hash,
            prev_log_hash: view.prev_log_hash,
            hash: view.hash,
        }
    }

    /// The row of `event`, planned as this link says.
    fn row(self, stream_id: StreamId, event: NewEvent) -> RecordedEvent {
        debug_assert_eq!(self.event_id, event.event_id);
        RecordedEvent {
            position: self.position,
            stream_id,
            stream_version: self.stream_version,
            event_id: event.event_id,
            event_type: event.event_type,
            schema_version: event.schema_version,
            recorded_at: self.recorded_at,
            data: event.data,
            metadata: event.metadata,
            data_hash: self.data_hash,
            prev_stream_hash: self.prev_stream_hash,
            prev_log_hash: self.prev_log_hash,
            hash: self.hash,
        }
    }
}

/// What the planner asks about one command's streams, answered from what the run holds: every
/// stream the command writes or checks was loaded, and the marker is new (checked first).
struct RequestStreams<'a> {
    streams: Vec<(&'a str, Option<(u64, Hash)>)>,
    marker: &'a str,
}

impl LogState for RequestStreams<'_> {
    /// Event ids are fresh UUIDv7s made for this command; the store's unique index on event
    /// ids refuses a clash all the same.
    const CHECKS_EVERY_ID: bool = false;

    fn stream_tip(&mut self, stream: &str) -> Result<Option<(u64, Hash)>, LogError> {
        if stream == self.marker {
            return Ok(None);
        }
        self.streams
            .iter()
            .find(|(s, _)| *s == stream)
            .map(|(_, tip)| *tip)
            .ok_or_else(|| LogError::InvalidAppend {
                reason: format!("{stream} was not loaded before the append was planned"),
            })
    }

    fn recorded(&mut self, _event_id: Uuid) -> Result<Option<Recorded>, LogError> {
        Ok(None)
    }
}
