//! The bulk path: building the read models from a long stretch of the log at once — a rebuild,
//! the first start of a node, a catch-up after a bulk import. Same rows as the per-batch path
//! ([`crate::apply`]), written differently:
//!
//! - **Indexes once, at the end.** Every secondary index is dropped and the FTS5 name indexes
//!   emptied first; the rows go into the bare tables; [`schema::build_indexes`] then sorts each
//!   index once and fills the name indexes from the name columns.
//! - **States in memory.** The records touched stay in memory between transactions (up to
//!   [`BulkConfig::records_in_memory`]) and each is written once per transaction, instead of
//!   being read back, decoded and re-encoded per batch.
//! - **Large transactions without fsync.** One transaction per [`BulkConfig::commit_every`]
//!   events, each with its checkpoint (so positions still publish as it goes), under
//!   `synchronous = OFF`.
//!
//! The file is disposable, but it must never pass as good when it is not. [`start`] commits the
//! [`schema::BULK_MARK`] with a full sync before the first unsynced write, and [`Load::finish`]
//! removes it only after the indexes are built and every page is synced. Every version of the
//! `meta` page written in between holds the mark, so after a crash or a power cut at any moment
//! the file either has the mark — and `schema::damage` has it removed and rebuilt on the next
//! open — or is complete. Within one process, an interrupted load leaves the mark and the next
//! step of the projector resumes it through this path (never through the per-batch path, which
//! would maintain indexes that are not there).

use std::collections::HashMap;

use rusqlite::Connection;

use citydb_domain::{Record, RecordId, RecordKind};
use citydb_log::RecordedEvent;

use crate::apply::{Prior, StoredRecord, fold, load_stored, record_change, record_error, store};
use crate::error::{ProjectionError, storage};
use crate::schema::{self, SearchFlavour};

/// Tuning of the bulk path (see [`crate::ProjectionConfig::bulk`]).
#[derive(Clone, Copy, Debug)]
pub struct BulkConfig {
    /// The per-batch projector switches to the bulk path when it is at least this many events
    /// behind the log's head and at least as many as it has projected already (the indexes are
    /// rebuilt at the end, a cost that grows with the whole file). `u64::MAX` never switches;
    /// [`crate::Projections::rebuild`] always uses the bulk path.
    pub threshold: u64,
    /// Events per transaction. Each commit publishes its position.
    pub commit_every: u64,
    /// Records whose state is kept in memory across transactions; beyond it, the states are
    /// dropped after a commit and read back from the file when their streams go on.
    pub records_in_memory: usize,
}

impl Default for BulkConfig {
    fn default() -> Self {
        BulkConfig {
            threshold: 50_000,
            commit_every: 500_000,
            // A few hundred bytes each: about 1 GB at the limit.
            records_in_memory: 2_500_000,
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
    state: Option<Record>,
    /// Whether the file may hold rows of this record (written by an earlier commit).
    stored: bool,
    dirty: bool,
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
    conn.execute_batch(
        "PRAGMA synchronous = OFF; PRAGMA cache_size = -262144; PRAGMA threads = 2;",
    )
    .map_err(storage)
}

/// Copies the WAL into the database file and truncates it; under `synchronous = FULL` SQLite
/// syncs the file before the WAL is reset.
fn checkpoint_wal(conn: &Connection) -> Result<(), ProjectionError> {
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .map_err(storage)?;
    if busy != 0 {
        // A reader held the WAL: the pages stay in the (synced) WAL, which is just as durable.
        tracing::debug!("WAL checkpoint could not complete; the synced WAL keeps the pages");
    }
    Ok(())
}

/// One bulk load in progress, on the writer connection.
pub(crate) struct Load {
    flavour: SearchFlavour,
    config: BulkConfig,
    /// The next position to project.
    next: u64,
    slots: HashMap<String, Slot>,
    /// Whether the file may hold records this load has not seen (a catch-up from a non-zero
    /// checkpoint, or states dropped from memory): streams not in `slots` are then looked up.
    file_has_records: bool,
    in_transaction: bool,
    since_commit: u64,
    /// Events that could not be applied (recorded in `projection_errors`).
    pub failed: usize,
}

impl Load {
    pub(crate) fn new(
        conn: &Connection,
        flavour: SearchFlavour,
        config: BulkConfig,
    ) -> Result<Load, ProjectionError> {
        let file_has_records = conn
            .query_row("SELECT EXISTS(SELECT 1 FROM records)", [], |r| r.get(0))
            .map_err(storage)?;
        Ok(Load {
            flavour,
            config,
            next: schema::checkpoint(conn)?,
            slots: HashMap::new(),
            file_has_records,
            in_transaction: false,
            since_commit: 0,
            failed: 0,
        })
    }

    /// The next position to project, counting events applied but not committed yet.
    pub(crate) fn next(&self) -> u64 {
        self.next
    }

    /// Applies events in log order; returns the new checkpoint when it committed.
    pub(crate) fn apply(
        &mut self,
        conn: &Connection,
        events: &[RecordedEvent],
    ) -> Result<Option<u64>, ProjectionError> {
        if !self.in_transaction {
            conn.execute_batch("BEGIN IMMEDIATE").map_err(storage)?;
            self.in_transaction = true;
        }
        for event in events {
            self.apply_one(conn, event)?;
        }
        if self.since_commit >= self.config.commit_every {
            return self.commit(conn).map(Some);
        }
        Ok(None)
    }

    /// The per-event rules of [`crate::apply::apply_batch`], against the states in memory.
    fn apply_one(&mut self, conn: &Connection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        if event.position < self.next {
            return Ok(());
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
        if category == "command" {
            return Ok(());
        }
        record_change(conn, event)?;
        if RecordKind::from_category(category).is_none() {
            return Ok(());
        }
        let stream = event.stream_id.as_str();
        if !self.slots.contains_key(stream) {
            let Ok(id) = stream.parse::<RecordId>() else {
                self.failed += 1;
                return record_error(conn, event, "the stream id is not a record id");
            };
            let slot = self.load(conn, id)?;
            self.slots.insert(stream.to_owned(), slot);
        }
        let Some(slot) = self.slots.get_mut(stream) else {
            return Ok(());
        };
        if slot.version.is_some_and(|v| event.stream_version <= v) {
            return Ok(());
        }
        match fold(slot.id, &slot.state, event) {
            Ok(record) => {
                slot.state = Some(record);
                slot.seq.get_or_insert(crate::apply::to_i64(event.position));
            }
            Err(reason) => {
                self.failed += 1;
                record_error(conn, event, &reason)?;
            }
        }
        slot.version = Some(event.stream_version);
        slot.last_position = event.position;
        slot.dirty = true;
        Ok(())
    }

    fn load(&self, conn: &Connection, id: RecordId) -> Result<Slot, ProjectionError> {
        let stored = if self.file_has_records {
            load_stored(conn, id)?
        } else {
            None
        };
        Ok(match stored {
            None => Slot {
                id,
                seq: None,
                version: None,
                last_position: 0,
                state: None,
                stored: false,
                dirty: false,
            },
            Some(loaded) => Slot {
                id,
                seq: Some(loaded.seq),
                version: Some(loaded.version),
                last_position: loaded.last_position,
                state: Some(loaded.state),
                stored: true,
                dirty: false,
            },
        })
    }

    /// Writes the records changed since the last commit, in `seq` order (appends to the
    /// tables' B-trees), and commits them with the checkpoint.
    pub(crate) fn commit(&mut self, conn: &Connection) -> Result<u64, ProjectionError> {
        if !self.in_transaction {
            conn.execute_batch("BEGIN IMMEDIATE").map_err(storage)?;
            self.in_transaction = true;
        }
        let mut dirty: Vec<&mut Slot> = self.slots.values_mut().filter(|s| s.dirty).collect();
        dirty.sort_unstable_by_key(|s| s.seq);
        for slot in dirty {
            slot.dirty = false;
            // A stream whose first event failed has no state: nothing to show, only its errors.
            let (Some(record), Some(seq), Some(version)) = (&slot.state, slot.seq, slot.version)
            else {
                continue;
            };
            let row = StoredRecord {
                id: slot.id,
                seq,
                version,
                last_position: slot.last_position,
                record,
            };
            store(
                conn,
                &row,
                Prior::Rewrite {
                    stored: slot.stored,
                },
                self.flavour,
            )?;
            slot.stored = true;
        }
        conn.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'checkpoint'")
            .and_then(|mut s| s.execute([self.next.to_string()]))
            .map_err(storage)?;
        conn.execute_batch("COMMIT").map_err(storage)?;
        self.in_transaction = false;
        self.since_commit = 0;
        if self.slots.len() > self.config.records_in_memory {
            self.slots.clear();
            self.file_has_records = true;
        }
        Ok(self.next)
    }

    /// Commits the rest, builds the indexes, syncs every page and removes the mark; returns
    /// the checkpoint.
    pub(crate) fn finish(mut self, conn: &Connection) -> Result<u64, ProjectionError> {
        let next = self.commit(conn)?;
        self.slots = HashMap::new();
        let tx = conn.unchecked_transaction().map_err(storage)?;
        schema::build_indexes(&tx, self.flavour)?;
        tx.commit().map_err(storage)?;
        conn.execute_batch("PRAGMA synchronous = FULL;")
            .map_err(storage)?;
        checkpoint_wal(conn)?;
        conn.execute("DELETE FROM meta WHERE key = ?1", [schema::BULK_MARK])
            .map_err(storage)?;
        schema::configure(conn)?;
        Ok(next)
    }
}

/// Leaves the bulk settings after a failed load; the mark stays, so the next step resumes the
/// load and a restart rebuilds the file.
pub(crate) fn abandon(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let _ = schema::configure(conn);
}
