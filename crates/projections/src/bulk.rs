//! The bulk path: building the read models from a long stretch of the log at once — a rebuild,
//! the first start of a node, a catch-up after a bulk import. Same rows as the per-batch path
//! ([`crate::apply`]), written differently:
//!
//! - **Indexes once, at the end.** Every secondary index is dropped and the FTS5 name indexes
//!   emptied first; the rows go into the bare tables; [`schema::build_indexes`] then sorts each
//!   index once and fills the name indexes from the name columns. The record ids' index too,
//!   when the file starts empty: the load then never looks a record up by its id (below).
//! - **States in memory.** The records touched stay in memory between transactions (up to
//!   [`BulkConfig::records_in_memory`]) and each is written once per transaction, instead of
//!   being read back, decoded and re-encoded per batch. A state is decoded ([`State::Live`])
//!   only while its stream is folded in the current transaction; once written it is kept as
//!   the JSON of its row ([`State::Written`]), about half the memory, and decoded again if its
//!   stream goes on. A state dropped from memory leaves its record's `seq` behind, by which it
//!   is read back (the table's own key); a record neither in memory nor dropped is in the file
//!   only if the file had records before the load.
//! - **Large transactions without fsync.** One transaction per [`BulkConfig::commit_every`]
//!   events, each with its checkpoint (so positions still publish as it goes), under
//!   `synchronous = OFF`.
//! - **Two cores.** The log is read ahead by the caller (on the log's own threads); this
//!   thread decodes, upcasts and folds; a writer thread does every SQLite write.
//!
//! The file is disposable, but it must never pass as good when it is not. [`start`] commits the
//! [`schema::BULK_MARK`] with a full sync before the first unsynced write, and `finish`
//! removes it only after the indexes are built and every page is synced. Every version of the
//! `meta` page written in between holds the mark, so after a crash or a power cut at any moment
//! the file either has the mark — and `schema::damage` has it removed and rebuilt on the next
//! open — or is complete. Within one process, an interrupted load leaves the mark and the next
//! step of the projector resumes it through this path (never through the per-batch path, which
//! would maintain indexes that are not there).

use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};

use foldhash::HashMap;
use rusqlite::Connection;

use citydb_domain::{Record, RecordId, RecordKind};
use citydb_log::RecordedEvent;

use crate::apply::{
    Encoded, Prior, StoredRecord, encode, fold, load_stored, load_stored_at, record_error, store,
};
use crate::error::{ProjectionError, storage};
use crate::residence_starts::{self, StartChange};
use crate::schema::{self, SearchFlavour, WordWrites};
use crate::state;

/// Tuning of the bulk path (see [`crate::ProjectionConfig::bulk`]).
#[derive(Clone, Copy, Debug)]
pub struct BulkConfig {
    /// The per-batch projector switches to the bulk path when it is at least this many events
    /// behind the log's head and at least as many as it has projected already (the indexes are
    /// rebuilt at the end, a cost that grows with the whole file). `u64::MAX` never switches;
    /// [`crate::Projections::rebuild`] always uses the bulk path.
    pub threshold: u64,
    /// Events per transaction. Each commit publishes its position and writes every record
    /// changed since the last one; the records a transaction changes stay decoded until it
    /// commits.
    pub commit_every: u64,
    /// Records whose state is kept in memory across transactions; beyond it, the states are
    /// dropped after a commit and read back from the file when their streams go on.
    pub records_in_memory: usize,
}

impl Default for BulkConfig {
    fn default() -> Self {
        BulkConfig {
            threshold: 50_000,
            // 1,000,000 until 2026-12-04: a quarter of that made `rebuild-projections` at 1/10
            // 5 % faster (three alternating pairs, docs/benchmarks.md), and the import's
            // projections built beside its load faster at the end (their last transaction is
            // the tail's first part).
            commit_every: 250_000,
            // About 0.9 KB each once written (the row's JSON, the key, the slot): 0.9 GB,
            // besides the records decoded in the current transaction (about 1.3 KB each).
            records_in_memory: 1_000_000,
        }
    }
}

/// A record stream's state while the load runs.
struct Slot {
    id: RecordId,
    /// `None` until the record's first event has been applied.
    seq: Option<i64>,
    /// Last stream version consumed (applied or failed).
    version: Option<u64>,
    last_position: u64,
    state: State,
    /// Whether the file may hold rows of this record (written by an earlier commit).
    stored: bool,
    dirty: bool,
    /// The transaction (counted from 0) in which the record last changed.
    touched: u64,
}

/// A record's state in a [`Slot`].
enum State {
    /// No event of the stream applied yet.
    None,
    /// Decoded: the stream was folded in the current transaction.
    Live(Box<Record>),
    /// Written by an earlier transaction: the JSON of its row, decoded when the stream goes on.
    /// About 650 bytes where the decoded record takes about 1.2 KB (488 bytes inline, the
    /// rest in about six small allocations).
    Written(Box<str>),
}

impl State {
    /// The decoded state, leaving [`State::None`] behind.
    fn take(&mut self, id: RecordId) -> Result<Option<Record>, ProjectionError> {
        Ok(match std::mem::replace(self, State::None) {
            State::None => None,
            State::Live(record) => Some(*record),
            State::Written(json) => Some(state::from_json(&json).map_err(|e| {
                ProjectionError::Corrupt(format!(
                    "the state of {id} kept in memory cannot be read: {e}"
                ))
            })?),
        })
    }

    fn is_some(&self) -> bool {
        !matches!(self, State::None)
    }
}

/// Marks the file as under bulk build and drops its indexes, in one synced transaction, then
/// turns syncing off for the load.
pub(crate) fn start(conn: &Connection, flavour: SearchFlavour) -> Result<(), ProjectionError> {
    conn.execute_batch("PRAGMA synchronous = FULL;")
        .map_err(storage)?;
    let tx = conn.unchecked_transaction().map_err(storage)?;
    tx.execute(
        "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, '1')",
        [schema::BULK_MARK],
    )
    .map_err(storage)?;
    schema::drop_indexes(&tx, flavour)?;
    tx.commit().map_err(storage)?;
    // The mark into the database file itself, synced: from here on any page may be written
    // without a sync, and the mark's page is only ever rewritten with the mark in it.
    checkpoint_wal(conn)?;
    // Larger than the per-batch cache: the load writes large transactions.
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144; PRAGMA threads = 2;")
        .map_err(storage)
}

/// Copies the whole WAL into the database file and truncates it; under `synchronous = FULL`
/// SQLite syncs the file before the WAL is reset. It must complete: a WAL left behind would be
/// reset later by an unsynced checkpoint, and its synced pages (the mark) with it. It waits for
/// readers (the busy timeout); if they still hold the WAL, the load fails and is retried.
fn checkpoint_wal(conn: &Connection) -> Result<(), ProjectionError> {
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .map_err(storage)?;
    if busy != 0 {
        return Err(ProjectionError::Storage(
            "readers held the projections WAL; the bulk load will be retried".into(),
        ));
    }
    Ok(())
}

/// Where the load's events come from: chunks in log order, ending at `target` (or, without
/// one, where the source says the log ends: it returns `None` only then, an error otherwise).
pub(crate) type Chunks<'a> =
    dyn FnMut() -> Option<Result<Vec<RecordedEvent>, ProjectionError>> + 'a;

/// What the writer thread tells about a load as it goes.
#[derive(Clone, Copy)]
pub struct Observer<'a> {
    /// Called with each committed checkpoint — except one past `target`, which waits for the
    /// indexes. (Without a target, only the last commit is known to be the end: a load fed
    /// while its log is written has no readers.)
    pub publish: &'a (dyn Fn(u64) + Sync),
    /// Called with `true` when every event is folded and written and the indexes are being
    /// built (the caller resets it when the load returns).
    pub indexing: &'a (dyn Fn(bool) + Sync),
}

/// Runs one bulk load from the file's checkpoint through log position `target` (`None`: to
/// where the chunks end, see [`Chunks`]), after
/// [`start`], on two threads: this one reads the chunks and folds the events into the states
/// in memory; a writer thread owns `conn` and does every SQLite write (change rows, failures,
/// record rows, commits, the indexes at the end) and reports to `observer`. Returns the
/// connection and the events consumed; on an error the transaction is rolled back, the bulk
/// settings left, and the mark kept.
pub(crate) fn run(
    conn: Connection,
    path: &Path,
    flavour: SearchFlavour,
    config: BulkConfig,
    target: Option<u64>,
    next_chunk: &mut Chunks<'_>,
    observer: Observer<'_>,
) -> (Connection, Result<u64, ProjectionError>) {
    let opening = (|| {
        let first = schema::checkpoint(&conn)?;
        let file_has_records: bool = conn
            .query_row("SELECT EXISTS(SELECT 1 FROM records)", [], |r| r.get(0))
            .map_err(storage)?;
        Ok::<_, ProjectionError>((first, file_has_records))
    })();
    let (first, file_has_records) = match opening {
        Ok(opened) => opened,
        Err(e) => return (conn, Err(e)),
    };
    let (jobs, received) = mpsc::sync_channel::<Job>(16);
    let (acks, acked) = mpsc::channel::<u64>();
    // Written events go back to the folding side to be freed there: the writer is the thread
    // the load waits for, and freeing them was 3.6 % of its time.
    let (spent, to_free) = mpsc::channel::<Vec<RecordedEvent>>();
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || {
            let result = write(&conn, flavour, target, &received, &acks, &spent, observer);
            if result.is_err() {
                abandon(&conn);
            }
            (conn, result)
        });
        let mut fold = Fold::new(path, config, first, file_has_records, jobs, acked, to_free);
        let folded = fold.run(next_chunk, target);
        // Dropping the sender without `Finish` makes the writer roll back.
        drop(fold);
        let (conn, written) = match writer.join() {
            Ok(joined) => joined,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        // The writer's error is the cause when both failed (the fold then only saw it leave).
        let result = written.and(folded).map(|next| next - first);
        (conn, result)
    })
}

/// What folding one event gave.
enum Folded {
    /// Not folded: another stream, a command marker, already folded.
    Other,
    /// Could not be applied, for this reason.
    Failed(String),
    /// Folded onto citizen `seq`, changing its residence starts so.
    Citizen { seq: i64, changes: Vec<StartChange> },
}

/// What the folding thread asks the writer thread to do, in order.
enum Job {
    /// Change rows of these events (command markers skipped), the failures among them, and
    /// the residence starts they change (by index in `events`, with the citizen's `seq`).
    Events {
        events: Vec<RecordedEvent>,
        failures: Vec<(usize, String)>,
        starts: Vec<(usize, i64, Vec<StartChange>)>,
    },
    /// Record rows (with their child rows) to write.
    Records(Vec<Dirty>),
    /// Commit with this checkpoint, then acknowledge it; `last` before `Finish`.
    Commit { next: u64, last: bool },
    /// Build the indexes, sync and remove the mark: the load is complete.
    Finish,
}

/// A record's state to write, moved out of the fold's memory.
struct Dirty {
    id: RecordId,
    seq: i64,
    version: u64,
    last_position: u64,
    record: Record,
    /// Its JSON and name keys, computed on the folding thread.
    encoded: Encoded,
    /// Whether the file may hold rows of this record already.
    stored: bool,
}

/// The folding side: the states of the records in memory, and what the writer is sent.
struct Fold<'p> {
    path: &'p Path,
    config: BulkConfig,
    /// The next position to fold.
    next: u64,
    /// By stream id, hashed for every event: foldhash, not SipHash (whose hashing was 3.6 % of
    /// this thread's instructions; −2.3 % with foldhash, docs/benchmarks.md, 2026-12-04 evening).
    slots: HashMap<String, Slot>,
    /// Reads states back from the file (committed rows only), opened on first use.
    reader: Option<Connection>,
    /// Whether the file held records before this load (a catch-up, a resumed load): streams
    /// neither in `slots` nor in `dropped` are then looked up by id.
    file_had_records: bool,
    /// The records whose states this load wrote and then dropped from memory.
    dropped: Dropped,
    since_commit: u64,
    /// Transactions handed to the writer so far.
    commits: u64,
    /// Events that could not be applied (recorded in `projection_errors`).
    failed: usize,
    jobs: SyncSender<Job>,
    acked: Receiver<u64>,
    /// Events the writer is done with, to free on this thread.
    to_free: Receiver<Vec<RecordedEvent>>,
}

impl<'p> Fold<'p> {
    /// A fold from log position `first`, with no state in memory yet.
    fn new(
        path: &'p Path,
        config: BulkConfig,
        first: u64,
        file_had_records: bool,
        jobs: SyncSender<Job>,
        acked: Receiver<u64>,
        to_free: Receiver<Vec<RecordedEvent>>,
    ) -> Self {
        Fold {
            path,
            config,
            next: first,
            slots: HashMap::default(),
            reader: None,
            file_had_records,
            dropped: Dropped::default(),
            since_commit: 0,
            commits: 0,
            failed: 0,
            jobs,
            acked,
            to_free,
        }
    }

    /// Folds every chunk, then hands the writer the last records and `Finish`; returns the
    /// final checkpoint.
    fn run(
        &mut self,
        next_chunk: &mut Chunks<'_>,
        target: Option<u64>,
    ) -> Result<u64, ProjectionError> {
        while let Some(chunk) = next_chunk() {
            let chunk = chunk?;
            let mut failures = Vec::new();
            let mut starts = Vec::new();
            for (i, event) in chunk.iter().enumerate() {
                match self.apply(event)? {
                    Folded::Failed(reason) => failures.push((i, reason)),
                    Folded::Citizen { seq, changes } if !changes.is_empty() => {
                        starts.push((i, seq, changes));
                    }
                    Folded::Citizen { .. } | Folded::Other => {}
                }
            }
            self.failed += failures.len();
            self.send(Job::Events {
                events: chunk,
                failures,
                starts,
            })?;
            while let Ok(written) = self.to_free.try_recv() {
                drop(written);
            }
            if self.since_commit >= self.config.commit_every {
                self.commit()?;
            }
        }
        if let Some(target) = target
            && self.next <= target
        {
            // The chunks ended early: the log ended before the head it announced (its error,
            // if any, came as a chunk), or this load was dropped.
            return Err(ProjectionError::Storage(format!(
                "the log ended at position {} before its head {target}",
                self.next
            )));
        }
        let mut last: Vec<Slot> = std::mem::take(&mut self.slots)
            .into_values()
            .filter(|slot| slot.dirty)
            .collect();
        last.sort_unstable_by_key(|slot| slot.seq);
        let mut records = Records::new(&self.jobs);
        for mut slot in last {
            records.push(slot.take_dirty()?)?;
        }
        records.flush()?;
        self.send(Job::Commit {
            next: self.next,
            last: true,
        })?;
        self.send(Job::Finish)?;
        if self.failed > 0 {
            tracing::warn!(
                failed = self.failed,
                "events could not be projected; recorded in projection_errors"
            );
        }
        Ok(self.next)
    }

    fn send(&self, job: Job) -> Result<(), ProjectionError> {
        self.jobs.send(job).map_err(|_| writer_stopped())
    }

    /// The per-event rules of [`crate::apply::apply_batch`], against the states in memory;
    /// returns why the event could not be applied, or the residence starts it changes.
    fn apply(&mut self, event: &RecordedEvent) -> Result<Folded, ProjectionError> {
        if event.position < self.next {
            return Ok(Folded::Other);
        }
        if event.position != self.next {
            return Err(ProjectionError::Corrupt(format!(
                "expected log position {}, got {}",
                self.next, event.position
            )));
        }
        self.next += 1;
        self.since_commit += 1;
        let category = event.stream_id.category();
        if category == "command" || RecordKind::from_category(category).is_none() {
            return Ok(Folded::Other);
        }
        let stream = event.stream_id.as_str();
        if !self.slots.contains_key(stream) {
            let Ok(id) = stream.parse::<RecordId>() else {
                return Ok(Folded::Failed(
                    "the stream id is not a record id".to_owned(),
                ));
            };
            // A stream's first event at or past the file's checkpoint: the file cannot hold
            // its record, so it is not looked up. Once states are dropped from memory, every
            // new record of a city-sized load was otherwise one lookup in the file that could
            // only miss (a whole-city rebuild 185 → 162–172 s, docs/benchmarks.md).
            let slot = if event.stream_version == 0 {
                self.new_slot(id)
            } else {
                self.load(id)?
            };
            self.slots.insert(stream.to_owned(), slot);
        }
        let Some(slot) = self.slots.get_mut(stream) else {
            return Ok(Folded::Other);
        };
        if slot.version.is_some_and(|v| event.stream_version <= v) {
            return Ok(Folded::Other);
        }
        let current = slot.state.take(slot.id)?;
        let folded = match fold(slot.id, &current, event) {
            Ok((record, domain_event)) => {
                slot.state = State::Live(Box::new(record));
                let seq = *slot.seq.get_or_insert(crate::apply::to_i64(event.position));
                match slot.id {
                    RecordId::Citizen(_) => Folded::Citizen {
                        seq,
                        changes: residence_starts::changes_of(&domain_event, event),
                    },
                    _ => Folded::Other,
                }
            }
            Err(reason) => {
                // Unchanged, and decoded: a dirty slot's state is never `Written`.
                slot.state = current.map_or(State::None, |r| State::Live(Box::new(r)));
                Folded::Failed(reason)
            }
        };
        slot.version = Some(event.stream_version);
        slot.last_position = event.position;
        slot.dirty = true;
        slot.touched = self.commits;
        Ok(folded)
    }

    /// A slot for a record the file does not hold.
    fn new_slot(&self, id: RecordId) -> Slot {
        Slot {
            id,
            seq: None,
            version: None,
            last_position: 0,
            state: State::None,
            stored: false,
            dirty: false,
            touched: self.commits,
        }
    }

    /// A slot for `id`, with its committed row's state if the file may hold one.
    fn load(&mut self, id: RecordId) -> Result<Slot, ProjectionError> {
        let mut stored = None;
        if let Some(seq) = self.dropped.seq_of(id) {
            stored = load_stored_at(self.reader()?, id, seq)?;
            if stored.is_some() {
                self.dropped.forget(id);
            }
        }
        if stored.is_none() && self.file_had_records {
            stored = load_stored(self.reader()?, id)?;
        }
        Ok(match stored {
            None => self.new_slot(id),
            Some(loaded) => Slot {
                id,
                seq: Some(loaded.seq),
                version: Some(loaded.version),
                last_position: loaded.last_position,
                state: State::Live(Box::new(loaded.state)),
                stored: true,
                dirty: false,
                touched: self.commits,
            },
        })
    }

    /// The connection that reads states back, opened on first use.
    fn reader(&mut self) -> Result<&Connection, ProjectionError> {
        match &mut self.reader {
            Some(reader) => Ok(reader),
            empty => Ok(empty.insert(schema::open_reader(self.path, schema::Mapping::None)?)),
        }
    }

    /// Hands the writer the records changed since the last commit (moved: each keeps its row's
    /// JSON in memory for the events to come) and the commit. Past the memory limit, waits for
    /// the commit and drops the states of the records this transaction did not touch (all of
    /// them if that is not enough): they are read back from the file, committed, if their
    /// streams go on.
    fn commit(&mut self) -> Result<(), ProjectionError> {
        let mut dirty: Vec<&mut Slot> = self.slots.values_mut().filter(|s| s.dirty).collect();
        dirty.sort_unstable_by_key(|slot| slot.seq);
        let mut records = Records::new(&self.jobs);
        for slot in dirty {
            let dirty = slot.take_dirty()?;
            if let Some(written) = &dirty {
                slot.state = State::Written(written.encoded.json.clone().into_boxed_str());
            }
            records.push(dirty)?;
            slot.dirty = false;
            slot.stored |= slot.state.is_some();
        }
        records.flush()?;
        self.send(Job::Commit {
            next: self.next,
            last: false,
        })?;
        self.since_commit = 0;
        if self.slots.len() > self.config.records_in_memory {
            loop {
                match self.acked.recv() {
                    Ok(next) if next >= self.next => break,
                    Ok(_) => continue,
                    Err(_) => return Err(writer_stopped()),
                }
            }
            let current = self.commits;
            let dropped = &mut self.dropped;
            let mut remember = |slot: &Slot| {
                if let (true, Some(seq)) = (slot.stored, slot.seq) {
                    dropped.remember(slot.id, seq);
                }
            };
            self.slots.retain(|_, slot| {
                let kept = slot.touched == current;
                if !kept {
                    remember(slot);
                }
                kept
            });
            if self.slots.len() > self.config.records_in_memory / 2 {
                self.slots.drain().for_each(|(_, slot)| remember(&slot));
            }
        }
        self.commits += 1;
        Ok(())
    }
}

/// The `seq` of each record whose state a load wrote and then dropped from memory, by which it
/// is read back (the table's own key) if its stream goes on: the load needs no index of the
/// record ids. Kept by a 64-bit hash of the id, 17 bytes a record where a map by the id itself
/// took 33 (at the whole city: ~3 M records, within the import's 4 GB); the row read back tells
/// whether it is the record's. A second record whose id has the same hash (for ~3 M ids, about
/// one load in four million) is kept by its id.
#[derive(Default)]
struct Dropped<S = foldhash::fast::FixedState> {
    by_hash: HashMap<u64, i64>,
    /// The records whose hash `by_hash` held for another when they were dropped.
    shared: HashMap<RecordId, i64>,
    hasher: S,
}

impl<S: std::hash::BuildHasher> Dropped<S> {
    fn hash(&self, id: RecordId) -> u64 {
        self.hasher.hash_one(id)
    }

    fn remember(&mut self, id: RecordId, seq: i64) {
        match self.by_hash.entry(self.hash(id)) {
            std::collections::hash_map::Entry::Vacant(free) => {
                free.insert(seq);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.shared.insert(id, seq);
            }
        }
    }

    /// Where `id`'s row is if it was dropped: exact from `shared`, else a candidate (the row
    /// there may be another record's).
    fn seq_of(&self, id: RecordId) -> Option<i64> {
        self.shared
            .get(&id)
            .or_else(|| self.by_hash.get(&self.hash(id)))
            .copied()
    }

    /// Once `id`'s row was read back from [`Dropped::seq_of`].
    fn forget(&mut self, id: RecordId) {
        if self.shared.remove(&id).is_none() {
            let hash = self.hash(id);
            self.by_hash.remove(&hash);
        }
    }
}

/// Hands the writer records to write in jobs of [`Records::PER_JOB`], in `seq` order (appends
/// to the tables' B-trees), so that it writes while the next ones are encoded.
struct Records<'j> {
    jobs: &'j SyncSender<Job>,
    batch: Vec<Dirty>,
}

impl<'j> Records<'j> {
    const PER_JOB: usize = 2048;

    fn new(jobs: &'j SyncSender<Job>) -> Self {
        Records {
            jobs,
            batch: Vec::with_capacity(Self::PER_JOB),
        }
    }

    fn push(&mut self, dirty: Option<Dirty>) -> Result<(), ProjectionError> {
        self.batch.extend(dirty);
        if self.batch.len() >= Self::PER_JOB {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ProjectionError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(Self::PER_JOB));
        self.jobs
            .send(Job::Records(batch))
            .map_err(|_| writer_stopped())
    }
}

fn writer_stopped() -> ProjectionError {
    // The writer only leaves early on an error, which it returns itself.
    ProjectionError::Storage("the bulk writer stopped".into())
}

impl Slot {
    /// The record to write, taken out of the slot (left [`State::None`]), if it changed and
    /// has a state (a stream whose first event failed has none: nothing to show, only its
    /// errors).
    fn take_dirty(&mut self) -> Result<Option<Dirty>, ProjectionError> {
        if !self.dirty {
            return Ok(None);
        }
        let (Some(seq), Some(version)) = (self.seq, self.version) else {
            return Ok(None);
        };
        let Some(record) = self.state.take(self.id)? else {
            return Ok(None);
        };
        Ok(Some(Dirty {
            id: self.id,
            seq,
            version,
            last_position: self.last_position,
            encoded: encode(self.id, &record)?,
            record,
            stored: self.stored,
        }))
    }
}

/// The writer thread: every SQLite write of the load, in the order the jobs come.
fn write(
    conn: &Connection,
    flavour: SearchFlavour,
    target: Option<u64>,
    jobs: &Receiver<Job>,
    acks: &mpsc::Sender<u64>,
    spent: &mpsc::Sender<Vec<RecordedEvent>>,
    observer: Observer<'_>,
) -> Result<u64, ProjectionError> {
    let mut in_transaction = false;
    let mut committed = schema::checkpoint(conn)?;
    while let Ok(job) = jobs.recv() {
        if !in_transaction && !matches!(job, Job::Finish) {
            conn.execute_batch("BEGIN IMMEDIATE").map_err(storage)?;
            in_transaction = true;
        }
        match job {
            Job::Events {
                events,
                failures,
                starts,
            } => {
                let mut failures = failures.into_iter().peekable();
                let mut starts = starts.into_iter().peekable();
                let mut change_rows = crate::changes::ChangeRows::new(conn)?;
                for (i, event) in events.iter().enumerate() {
                    if event.position < committed || event.stream_id.category() == "command" {
                        continue;
                    }
                    change_rows.record(event)?;
                    crate::requests::project(conn, event)?;
                    if let Some((_, reason)) = failures.next_if(|(at, _)| *at == i) {
                        record_error(conn, event, &reason)?;
                    }
                    if let Some((_, seq, changes)) = starts.next_if(|(at, _, _)| *at == i) {
                        residence_starts::write(conn, seq, &changes)?;
                    }
                }
                // Freed by the folding side (or here, if it has gone).
                let _ = spent.send(events);
            }
            Job::Records(records) => {
                // `Prior::Rewrite` leaves the word tables to the index build at the end.
                let mut words = WordWrites::default();
                for dirty in &records {
                    let row = StoredRecord {
                        id: dirty.id,
                        seq: dirty.seq,
                        version: dirty.version,
                        last_position: dirty.last_position,
                        record: &dirty.record,
                    };
                    store(
                        conn,
                        &row,
                        &dirty.encoded,
                        Prior::Rewrite {
                            stored: dirty.stored,
                        },
                        flavour,
                        &mut words,
                    )?;
                }
                debug_assert!(words.is_empty(), "the bulk path writes no name words");
            }
            Job::Commit { next, last } => {
                conn.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'checkpoint'")
                    .and_then(|mut s| s.execute([next.to_string()]))
                    .map_err(storage)?;
                conn.execute_batch("COMMIT").map_err(storage)?;
                in_transaction = false;
                committed = next;
                // Not the head's position: the models are complete only after `Finish`.
                if !last && target.is_none_or(|target| next <= target) {
                    (observer.publish)(next);
                }
                let _ = acks.send(next);
            }
            Job::Finish => {
                (observer.indexing)(true);
                finish(conn, flavour)?;
                (observer.publish)(committed);
                return Ok(committed);
            }
        }
    }
    // The folding side stopped without `Finish`: its error is the one to report.
    Err(ProjectionError::Storage(
        "the bulk load stopped before its end".into(),
    ))
}

/// Page cache while the indexes are built (KiB). It is also what SQLite's sorter holds in
/// memory before it writes a sorted run: with small runs its helper thread (`PRAGMA threads`)
/// sorts and writes one while this thread reads the next rows, where one run the size of the
/// load's cache was sorted on this thread alone, leaving the other core idle. At the whole city
/// (sqlite3, four of the indexes) 16.9 s at 256 MiB, 10.6–12.0 s at 8–32 MiB; at 1/10, where
/// one run held a whole index, no gain (+0.3 s of ~2 s; docs/benchmarks.md).
const INDEX_BUILD_CACHE_KIB: i64 = 16 * 1024;

/// Builds the indexes, syncs every page and removes the mark.
fn finish(conn: &Connection, flavour: SearchFlavour) -> Result<(), ProjectionError> {
    conn.execute_batch(&format!("PRAGMA cache_size = -{INDEX_BUILD_CACHE_KIB};"))
        .map_err(storage)?;
    let tx = conn.unchecked_transaction().map_err(storage)?;
    schema::build_indexes(&tx, flavour)?;
    let started = std::time::Instant::now();
    tx.commit().map_err(storage)?;
    conn.execute_batch("PRAGMA synchronous = FULL;")
        .map_err(storage)?;
    checkpoint_wal(conn)?;
    tracing::info!(elapsed = ?started.elapsed(), "projections: indexes committed and synced");
    conn.execute("DELETE FROM meta WHERE key = ?1", [schema::BULK_MARK])
        .map_err(storage)?;
    schema::configure(conn)
}

/// Leaves the bulk settings after a failed load; the mark stays, so the next step resumes the
/// load and a restart rebuilds the file.
pub(crate) fn abandon(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let _ = schema::configure(conn);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two citizens' stream ids.
    const ONE: &str = "citizen-22ed2420-9431-8001-bb5f-56f9937c3062";
    const OTHER: &str = "citizen-22ed2420-9431-8001-88e8-98707043824f";

    fn event(position: u64, stream: &str, stream_version: u64) -> RecordedEvent {
        crate::test_events::recorded(position, stream, stream_version, "NotADomainEvent")
    }

    /// The other ends of a test fold's channels, kept open while it folds.
    struct Ends {
        _received: Receiver<Job>,
        _acks: mpsc::Sender<u64>,
        _spent: mpsc::Sender<Vec<RecordedEvent>>,
    }

    /// A fold from position 7 over a file that cannot be opened: any lookup in it fails.
    fn fold_over_missing_file(path: &Path, file_had_records: bool) -> (Fold<'_>, Ends) {
        let (jobs, _received) = mpsc::sync_channel(1);
        let (_acks, acked) = mpsc::channel();
        let (_spent, to_free) = mpsc::channel();
        let config = BulkConfig::default();
        let fold = Fold::new(path, config, 7, file_had_records, jobs, acked, to_free);
        (
            fold,
            Ends {
                _received,
                _acks,
                _spent,
            },
        )
    }

    /// Folds `event` (not a domain event: it fails to apply, which the fold records and goes
    /// on from) and checks that nothing was read from the file.
    fn folded_without_a_lookup(fold: &mut Fold<'_>, event: &RecordedEvent, why: &str) {
        let folded = fold.apply(event);
        assert!(
            matches!(folded, Ok(Folded::Failed(_))),
            "{why}: {:?}",
            folded.err()
        );
        assert!(fold.reader.is_none(), "{why}");
    }

    /// Folds `event`, which must read the file (and so fail: it cannot be opened).
    fn looked_up(fold: &mut Fold<'_>, event: &RecordedEvent) {
        let looked_up = fold.apply(event);
        assert!(looked_up.is_err(), "{:?}", looked_up.ok().map(|_| ()));
    }

    #[test]
    fn a_streams_first_event_is_folded_without_a_lookup_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-there.db");
        let (mut fold, _ends) = fold_over_missing_file(&missing, true);
        let new = ONE;
        let going_on = OTHER;

        // Version 0 at the checkpoint: its record cannot be in the file.
        let why = "a first event must not read the file";
        folded_without_a_lookup(&mut fold, &event(7, new, 0), why);
        // A stream that goes on from before the checkpoint is still looked up.
        looked_up(&mut fold, &event(8, going_on, 3));
    }

    #[test]
    fn into_a_file_empty_before_the_load_only_dropped_states_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-there.db");
        let (mut fold, _ends) = fold_over_missing_file(&missing, false);
        let dropped = ONE;
        let never_written = OTHER;
        fold.dropped.remember(dropped.parse().unwrap(), 3);

        // Goes on, but this load never wrote it and the file had no records: not in the file.
        let why = "a record the load never wrote must not be looked up";
        folded_without_a_lookup(&mut fold, &event(7, never_written, 4), why);
        // Written and dropped: read back.
        looked_up(&mut fold, &event(8, dropped, 5));
    }

    /// Every id hashes to 0.
    #[derive(Default)]
    struct OneHash;
    impl std::hash::BuildHasher for OneHash {
        type Hasher = OneHash;
        fn build_hasher(&self) -> OneHash {
            OneHash
        }
    }
    impl std::hash::Hasher for OneHash {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, _: &[u8]) {}
    }

    #[test]
    fn dropped_records_sharing_a_hash_are_each_found() {
        let [a, b, c]: [RecordId; 3] = [ONE, OTHER, "parcel-22ed2420-9431-8001-88e8-98707043824f"]
            .map(|id| id.parse().unwrap());
        let mut dropped = Dropped::<OneHash>::default();
        dropped.remember(a, 1);
        dropped.remember(b, 2);
        assert_eq!(dropped.seq_of(a), Some(1));
        assert_eq!(dropped.seq_of(b), Some(2), "by its id");
        // Only a candidate: the row at 1 is a's, which the caller reads and compares.
        assert_eq!(dropped.seq_of(c), Some(1));
        dropped.forget(b);
        assert_eq!(dropped.seq_of(b), Some(1), "a candidate again");
        dropped.forget(a);
        assert_eq!(dropped.seq_of(a), None);
        assert_eq!(dropped.seq_of(b), None);
    }

    fn record_id_indexed(conn: &Connection) -> bool {
        conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM pragma_index_list('records') l
               JOIN pragma_index_info(l.name) i WHERE i.name = 'record_id')",
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn the_record_ids_index_is_built_at_the_end_of_a_load_into_an_empty_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("projections.db");
        let (conn, flavour, _) = schema::open_writer(&path, Some(SearchFlavour::Plain)).unwrap();
        assert!(record_id_indexed(&conn), "a new file has it");

        start(&conn, flavour).unwrap();
        assert!(
            !record_id_indexed(&conn),
            "a load into an empty file writes its rows without it"
        );

        // An interrupted load left records without the index: the next load looks them up.
        conn.execute(
            "INSERT INTO records(seq, record_id, kind, version, last_position, state)
             VALUES (3, 'citizen-22ed2420-9431-8001-bb5f-56f9937c3062', 'citizen', 0, 3, '{}')",
            [],
        )
        .unwrap();
        abandon(&conn);
        start(&conn, flavour).unwrap();
        assert!(record_id_indexed(&conn), "built before a load onto records");
        start(&conn, flavour).unwrap();
        assert!(record_id_indexed(&conn), "and kept by the next one");

        finish(&conn, flavour).unwrap();
        assert!(record_id_indexed(&conn));
        let duplicate = conn.execute(
            "INSERT INTO records(seq, record_id, kind, version, last_position, state)
             VALUES (9, 'citizen-22ed2420-9431-8001-bb5f-56f9937c3062', 'citizen', 0, 9, '{}')",
            [],
        );
        assert!(duplicate.is_err(), "the index keeps the ids unique");
    }
}
