//! v2 entries in the embedded store: tables beside the v1 `events` table of `access-log.db`.
//!
//! One writer thread owns the only connection that writes them. It takes every append waiting
//! in its queue (up to [`MAX_GROUP`]), plans them together after the tip it reads inside the
//! transaction, inserts them and commits once: one fsync for the group (`synchronous=FULL`).
//! Appends are acknowledged only after COMMIT returns. A failed group is rolled back whole and
//! every append in it fails (the drafts were checked before, so only the storage can fail).
//!
//! The writer remembers the dictionary numbers and each citizen's last ordinal it read or
//! wrote ([`Remembered`]), so that a request whose strings and citizens were seen before costs
//! no lookups. What it remembers is true of the file only while the tip is where its own last
//! commit left it: every group checks that, inside its transaction, and forgets everything
//! otherwise (another writer, a rolled-back group).
//!
//! The index by citizen is not written by the groups: their rows join the tail
//! ([`crate::tail`]), which the same thread merges into `access_by_citizen` in sorted chunks
//! between groups (and while idle). A reader adds the tail's rows to the table's.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use citydb_log::{FaultKind, LogError};
use citydb_sqlite::{Checkpointer, Durability, SqliteConfig, WalAhead};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::format::Body;
use crate::numbered::NumberedCitizens;
use crate::plan::{Dictionary, Plan, Tip, plan};
use crate::tail::{MergePolicy, Merged, Tail, tail_rows};
use crate::verify::DerivedDigest;
use crate::{
    AccessError, CitizenRead, Committed, Draft, EntryStore, IndexRow, StoredEntry, resolve,
};

/// Most appends committed in one transaction.
const MAX_GROUP: usize = 1024;

/// The v2 tables. `access_entries` is the chain; the three others are derived from it.
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS access_entries (
    seq  INTEGER PRIMARY KEY,   -- continues the v1 positions; gapless, commit order
    body BLOB    NOT NULL,      -- the entry (docs/audit-format.md, access log v2)
    hash BLOB    NOT NULL       -- 32-byte chain hash
) STRICT;
CREATE TABLE IF NOT EXISTS access_strings (
    number INTEGER PRIMARY KEY,
    value  TEXT    NOT NULL UNIQUE
) STRICT;
CREATE TABLE IF NOT EXISTS access_citizens (
    number  INTEGER PRIMARY KEY,
    citizen BLOB    NOT NULL UNIQUE -- 16-byte record id
) STRICT;
CREATE TABLE IF NOT EXISTS access_by_citizen (
    citizen INTEGER NOT NULL,    -- access_citizens.number
    ordinal INTEGER NOT NULL,    -- the citizen's reads, 0-based
    seq     INTEGER NOT NULL,
    PRIMARY KEY (citizen, ordinal)
) STRICT, WITHOUT ROWID;
-- Which rows of the chain access_by_citizen holds (crate::tail::Merged); the others are the
-- tail, derived from the entries. A file from before the tail holds every row.
CREATE TABLE IF NOT EXISTS access_index_state (
    id            INTEGER PRIMARY KEY CHECK (id = 0),
    below         INTEGER NOT NULL,
    round_below   INTEGER NOT NULL,
    round_citizen INTEGER NOT NULL
) STRICT;
INSERT OR IGNORE INTO access_index_state
    SELECT 0, coalesce(max(seq) + 1, 0), coalesce(max(seq) + 1, 0), 0 FROM access_entries;
"#;

/// A page of one citizen's reads, newest first: a range of the index's primary key, then one
/// entry by its `seq` per row — O(log n + page) (`a_citizen_page_is_two_key_searches`).
pub const CITIZEN_PAGE_SQL: &str = "SELECT e.seq, e.body, e.hash, i.ordinal
     FROM access_by_citizen i JOIN access_entries e ON e.seq = i.seq
     WHERE i.citizen = ?1 AND i.ordinal < ?2
     ORDER BY i.ordinal DESC LIMIT ?3";

use crate::Request;

/// What the writer thread is asked to do.
enum Job {
    Append(Request),
    /// Merge the whole tail into the table now, then answer.
    Merge(tokio::sync::oneshot::Sender<Result<(), AccessError>>),
}

/// The v2 entries of an embedded access log.
pub struct SqliteEntries {
    queue: mpsc::Sender<Job>,
    reader: Arc<Mutex<Connection>>,
    tail: Arc<Mutex<Tail>>,
    commits: Arc<AtomicU64>,
}

impl SqliteEntries {
    /// Opens the v2 tables of the access-log file at `path`, creating them if missing. Open the
    /// file's v1 log (`SqliteLog`) first, with the same `config`: it owns the file's identity
    /// and `events` table, on whose tip the v2 chain starts. The writer commits with the
    /// configured durability (`synchronous=FULL` by default: an acknowledged entry survives
    /// power loss).
    pub fn open(path: &Path, config: &SqliteConfig) -> Result<SqliteEntries, AccessError> {
        Self::open_with(path, config, MergePolicy::default())
    }

    /// [`open`](Self::open), merging the citizen index's tail as `policy` says.
    pub fn open_with(
        path: &Path,
        config: &SqliteConfig,
        policy: MergePolicy,
    ) -> Result<SqliteEntries, AccessError> {
        Self::open_as(path, config, policy, true)
    }

    /// [`open`](Self::open) for a tool that reads the file and does not serve (`verify`,
    /// `export`, `prove`, the source of `migrate`): it never merges the citizen index's tail,
    /// neither in chunks nor when it closes. Its tail is derived at open from the table as it
    /// finds it; merging that would write into the table, as if the chain had derived them,
    /// rows computed from whatever damage `verify` is there to report (an added index row
    /// shifted the next ordinals, and a `verify` that reported it left rows so shifted behind
    /// when its writer thread merged at exit).
    pub fn open_to_read(path: &Path, config: &SqliteConfig) -> Result<SqliteEntries, AccessError> {
        Self::open_as(path, config, MergePolicy::default(), false)
    }

    fn open_as(
        path: &Path,
        config: &SqliteConfig,
        policy: MergePolicy,
        merges: bool,
    ) -> Result<SqliteEntries, AccessError> {
        let synchronous = match config.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
            Durability::Off => "OFF",
        };
        let mut writer = connect(path, config)?;
        writer
            .pragma_update(None, "synchronous", synchronous)
            .map_err(storage)?;
        let tail = Arc::new(Mutex::new(open_tables(&mut writer)?));
        // Every logged request waits for this writer's commit: checkpoints run beside it, not
        // inside its COMMIT (`citydb_sqlite::Checkpointer`).
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(storage)?;
        let checkpoints = connect(path, config)?;
        checkpoints
            .pragma_update(None, "synchronous", synchronous)
            .map_err(storage)?;
        let thread_failed = |what: &str, e: std::io::Error| {
            AccessError::Storage(LogError::storage(
                FaultKind::Other,
                format!("cannot start the access-log {what}: {e}"),
            ))
        };
        let checkpointer = Checkpointer::start(
            "citydb-access-checkpoint",
            checkpoints,
            config.wal_restart_pages,
        )
        .map_err(|e| thread_failed("checkpoint thread", e))?;
        let ahead = WalAhead::new(&writer, config.wal_restart_pages);
        let reader = connect(path, config)?;
        let (queue, requests) = mpsc::channel(4 * MAX_GROUP);
        let commits = Arc::new(AtomicU64::new(0));
        // A node's writer numbers citizens from its first group on; a tool's never appends.
        let numbered = if merges {
            NumberedCitizens::load(&writer)?
        } else {
            NumberedCitizens::unloaded()
        };
        let writer = Writer {
            conn: writer,
            commits: commits.clone(),
            checkpointer,
            ahead,
            remembered: Remembered::default(),
            numbered,
            tail: tail.clone(),
            policy,
            merges,
            synchronous,
            known: None,
        };
        std::thread::Builder::new()
            .name("citydb-access-writer".into())
            .spawn(move || writer.run(requests))
            .map_err(|e| thread_failed("writer", e))?;
        Ok(SqliteEntries {
            queue,
            reader: Arc::new(Mutex::new(reader)),
            tail,
            commits,
        })
    }

    /// Merges the whole tail of the citizen index into `access_by_citizen` now (the writer does
    /// it by itself in chunks; this is for a file about to be copied or measured, and tests).
    pub async fn merge_index(&self) -> Result<(), AccessError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.queue
            .send(Job::Merge(answer))
            .await
            .map_err(|_| AccessError::Closed)?;
        answered.await.map_err(|_| AccessError::Closed)?
    }

    /// Rebuilds the derived tables (dictionaries and citizen index) of the file at `path` from
    /// its entries, in one transaction: what to do when verification reports
    /// `derived_table_mismatch` (the chain itself intact). Run it with the server stopped.
    /// Returns the number of entries replayed.
    pub fn rebuild_derived(path: &Path, config: &SqliteConfig) -> Result<u64, AccessError> {
        let mut conn = connect(path, config)?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(storage)?;
        tx.execute_batch(
            "DELETE FROM access_strings; DELETE FROM access_citizens; DELETE FROM access_by_citizen;",
        )
        .map_err(storage)?;
        let replayed = replay(&tx)?;
        write_state(&tx, Merged::all_below(tip(&tx)?.next_seq))?;
        tx.commit().map_err(storage)?;
        Ok(replayed)
    }

    /// Transactions committed so far (each holds a group of appends).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, AccessError> + Send + 'static,
    ) -> Result<T, AccessError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| {
            AccessError::Storage(LogError::storage(
                FaultKind::Other,
                format!("the access-log read task failed: {e}"),
            ))
        })?
    }
}

/// A connection to the file, through the configured VFS if any (the fault tests inject their
/// faults there, into the v2 tables as into the v1 log).
fn connect(path: &Path, config: &SqliteConfig) -> Result<Connection, AccessError> {
    let conn = match &config.vfs {
        None => Connection::open(path),
        Some(vfs) => Connection::open_with_flags_and_vfs(path, OpenFlags::default(), vfs.as_str()),
    }
    .map_err(storage)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(storage)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(storage)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(AccessError::Storage(LogError::storage(
            FaultKind::Other,
            format!(
                "cannot switch {} to WAL (journal mode is {mode})",
                path.display()
            ),
        )));
    }
    Ok(conn)
}

pub(crate) fn storage(e: rusqlite::Error) -> AccessError {
    AccessError::Storage(LogError::storage(
        citydb_sqlite::fault_kind(&e),
        e.to_string(),
    ))
}

/// The writer thread's state: its connection and what it knows of the file.
struct Writer {
    conn: Connection,
    commits: Arc<AtomicU64>,
    checkpointer: Checkpointer,
    ahead: WalAhead,
    remembered: Remembered,
    /// Every citizen the file numbers, as a filter: a first read is numbered without a lookup.
    numbered: NumberedCitizens,
    tail: Arc<Mutex<Tail>>,
    policy: MergePolicy,
    /// Whether this writer merges the tail into the table on its own: a node's does, a
    /// tool's ([`SqliteEntries::open_to_read`]) does not.
    merges: bool,
    /// The configured `synchronous`, which the groups commit with.
    synchronous: &'static str,
    /// The file as this writer's last group left it, if nothing failed since: read again only
    /// when another connection has committed to the file since (`PRAGMA data_version`).
    known: Option<Known>,
}

/// What a group's commit left in the file, and the file's `data_version` inside that group's
/// transaction. SQLite changes a connection's `data_version` when any *other* connection
/// commits, never for its own commits; read while the write lock is held, no other commit
/// can fall between it and the group's own.
#[derive(Clone, Copy)]
struct Known {
    data_version: i64,
    tip: Tip,
}

impl Writer {
    fn run(mut self, mut queue: mpsc::Receiver<Job>) {
        let mut group: Vec<Request> = Vec::with_capacity(64);
        // Index rows appended during a round since its last chunk: the next chunk takes twice
        // as many, so that merging outpaces any rate of appends in small steps.
        let mut added = 0usize;
        loop {
            // While a round is unfinished, an idle writer merges instead of waiting.
            let first = match queue.try_recv() {
                Ok(job) => job,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // (The guard is dropped here: `merge_chunk` takes the lock itself.)
                    let in_round = self.merges && lock(&self.tail).in_round();
                    if in_round && self.merge_chunk(&self.policy.clone(), 0) {
                        continue;
                    }
                    match queue.blocking_recv() {
                        Some(job) => job,
                        None => break,
                    }
                }
            };
            match first {
                Job::Append(request) => group.push(request),
                Job::Merge(answer) => {
                    let _ = answer.send(self.merge_all());
                    continue;
                }
            }
            // Merges asked for while a group forms wait for its commit (they are rare).
            let mut merges = Vec::new();
            while group.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(Job::Append(next)) => group.push(next),
                    Ok(Job::Merge(answer)) => merges.push(answer),
                    Err(_) => break,
                }
            }
            self.checkpointer.restart_if_due(&self.conn);
            let requests = group.len();
            let drafts: Vec<&Draft> = group.iter().map(|(d, _)| d).collect();
            match self.commit_group(&drafts) {
                Ok((committed, rows)) => {
                    self.commits.fetch_add(1, Ordering::Relaxed);
                    self.checkpointer.nudge();
                    added += rows;
                    for ((_, answer), c) in group.drain(..).zip(committed) {
                        let _ = answer.send(Ok(c));
                    }
                }
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    self.remembered.forget();
                    for (_, answer) in group.drain(..) {
                        let _ = answer.send(Err(e.clone()));
                    }
                }
            }
            for answer in merges {
                let _ = answer.send(self.merge_all());
            }
            let (in_round, due) = {
                let tail = lock(&self.tail);
                (tail.in_round(), tail.rows.len() >= self.policy.round_rows)
            };
            if !self.merges {
                // A tool's writer leaves the tail to the node (`SqliteEntries::open_to_read`).
            } else if !in_round {
                // A round starts with a chunk of the idle size, not of the rows gathered so far.
                added = 0;
                if due {
                    self.merge_chunk(&self.policy.clone(), 0);
                }
            } else if added >= self.policy.group_rows.max(1)
                && self.merge_chunk(&self.policy.clone(), 2 * added)
            {
                added = 0;
            }
            self.ahead
                .after_group(&self.conn, requests, !queue.is_empty());
        }
        // A node stopped cleanly leaves the whole index in the table (best effort: the tail
        // is derived again at the next open if this fails). Then the checkpoint thread's
        // connection closed first, so that closing the log closes every connection it opened,
        // and a compact file left behind, best effort.
        if self.merges {
            let _ = self.merge_all();
        }
        self.checkpointer.close();
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }

    /// One transaction: the tip and the index's state are read inside it, and what the writer
    /// remembers (and its tail) is used only if they are where its own last commit left them
    /// (so that a failed group or another process appending to the file cannot desynchronise
    /// the numbering). Returns each draft's place and how many index rows the group added.
    fn commit_group(&mut self, drafts: &[&Draft]) -> Result<(Vec<Committed>, usize), AccessError> {
        self.conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
            .map_err(storage)?;
        let data_version = data_version(&self.conn)?;
        let tip = match self.known.take() {
            // Nothing but this writer has committed since its last group: the tip, the tail
            // and what it remembers are where that group left them (−2.7 % of a PIN lookup's
            // instructions, docs/benchmarks.md).
            Some(known) if known.data_version == data_version => known.tip,
            _ => self.check_tail()?,
        };
        let conn = &self.conn;
        let p = plan(
            tip,
            &mut Stored {
                conn,
                remembered: &mut self.remembered,
                numbered: &mut self.numbered,
                tail: &self.tail,
                citizen_lookup: None,
            },
            drafts,
            crate::now_micros(),
        )?;
        insert(conn, &p)?;
        conn.prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]))
            .map_err(storage)?;
        self.remembered.learn(&p);
        self.numbered.learn(&p.citizens);
        if let Some(last) = p.entries.last() {
            lock(&self.tail).append(&p.index, last.seq + 1);
        }
        // The group has committed: an entry whose tip cannot be taken (never, for entries
        // this writer has just encoded) only costs the next group a read of the file.
        let tip = match p.entries.last() {
            Some(last) => Tip::after(last).ok(),
            None => Some(tip),
        };
        self.known = tip.map(|tip| Known { data_version, tip });
        Ok((p.committed, p.index.len()))
    }

    /// Inside a write transaction: the tip, after making sure the tail and what the writer
    /// remembers are true of the file (derived again, and forgotten, if not).
    fn check_tail(&mut self) -> Result<Tip, AccessError> {
        let tip = tip(&self.conn)?;
        let merged = read_state(&self.conn)?;
        let mut tail = lock(&self.tail);
        if self.remembered.next_seq != Some(tip.next_seq) {
            self.remembered.forget();
        }
        if tail.through != tip.next_seq || tail.merged != merged {
            self.remembered.forget();
            *tail = load_tail(&self.conn)?;
        }
        Ok(tip)
    }

    /// Writes the next merge chunk (`rows` rows, or the policy's idle size when 0), if one is
    /// due; whether one was written. A failed chunk is rolled back and tried again later
    /// (appends report a failing store by themselves).
    fn merge_chunk(&mut self, policy: &MergePolicy, rows: usize) -> bool {
        let (rows, after, before) = {
            let mut tail = lock(&self.tail);
            let before = tail.merged;
            match tail.chunk(policy, rows) {
                None => return false,
                Some((rows, after)) => (rows.to_vec(), after, before),
            }
        };
        // An idle writer's chunks follow each other without a group between them: the WAL is
        // rewound here too, or a round would grow it by every page it touches.
        self.checkpointer.restart_if_due(&self.conn);
        // A chunk is derived data: its commit need not reach the disk by itself (it does with
        // the next group's fsync, the WAL being written in order), and a chunk lost with the
        // power is merged again (the state that covers it is lost with it).
        if self.synchronous == "FULL" {
            let _ = self.conn.pragma_update(None, "synchronous", "NORMAL");
        }
        let written = (|| -> Result<bool, AccessError> {
            let conn = &self.conn;
            conn.prepare_cached("BEGIN IMMEDIATE")
                .and_then(|mut s| s.execute([]))
                .map_err(storage)?;
            // Another writer moved the file on: the chunk was planned on a stale tail.
            if tip(conn)?.next_seq != lock(&self.tail).through || read_state(conn)? != before {
                conn.execute_batch("ROLLBACK").map_err(storage)?;
                lock(&self.tail).merged = before;
                return Ok(false);
            }
            let mut insert = conn
                .prepare_cached(
                    "INSERT INTO access_by_citizen (citizen, ordinal, seq) VALUES (?1, ?2, ?3)",
                )
                .map_err(storage)?;
            for r in &rows {
                insert
                    .execute(params![r.citizen, r.ordinal, r.seq as i64])
                    .map_err(storage)?;
            }
            write_state(conn, after)?;
            conn.prepare_cached("COMMIT")
                .and_then(|mut s| s.execute([]))
                .map_err(storage)?;
            Ok(true)
        })();
        let _ = self
            .conn
            .pragma_update(None, "synchronous", self.synchronous);
        match written {
            Ok(true) => {
                lock(&self.tail).merged(rows.len(), after);
                self.checkpointer.nudge();
                true
            }
            Ok(false) => {
                self.known = None;
                false
            }
            Err(_) => {
                self.known = None;
                let _ = self.conn.execute_batch("ROLLBACK");
                // The round may have been started in memory only: the next group's check
                // derives the tail again from the file.
                lock(&self.tail).merged = before;
                false
            }
        }
    }

    /// Merges until the tail is empty.
    fn merge_all(&mut self) -> Result<(), AccessError> {
        let all = MergePolicy {
            round_rows: 1,
            ..self.policy
        };
        loop {
            {
                let tail = lock(&self.tail);
                if tail.rows.is_empty() && !tail.in_round() {
                    return Ok(());
                }
            }
            if !self.merge_chunk(&all, 0) {
                // Not written: find out why inside a transaction of its own (another writer
                // moves the tail; a failing store fails here).
                self.conn
                    .execute_batch("BEGIN IMMEDIATE")
                    .map_err(storage)?;
                let checked = self.check_tail();
                self.conn.execute_batch("COMMIT").map_err(storage)?;
                checked?;
                let tail = lock(&self.tail);
                if !tail.rows.is_empty() || tail.in_round() {
                    drop(tail);
                    if !self.merge_chunk(&all, 0) {
                        return Err(AccessError::Storage(LogError::storage(
                            FaultKind::Other,
                            "the citizen index's tail could not be merged".to_owned(),
                        )));
                    }
                }
            }
        }
    }
}

/// Creates the v2 tables if they are missing, then derives the tail. A file that has them all
/// is opened without a write: a node on a read-only access log must still start, to report
/// itself not ready (`readyz`).
fn open_tables(writer: &mut Connection) -> Result<Tail, AccessError> {
    let tx = writer.transaction().map_err(storage)?;
    let ready: bool = tx
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'access_index_state'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(storage)?
        == 1;
    if ready {
        let tail = load_tail(&tx)?;
        tx.commit().map_err(storage)?;
        return Ok(tail);
    }
    drop(tx);
    // Immediate: the state's row is written, and a deferred transaction that began reading
    // could not become a writer after another connection's commit.
    let tx = writer
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(storage)?;
    tx.execute_batch(SCHEMA).map_err(storage)?;
    let tail = load_tail(&tx)?;
    tx.commit().map_err(storage)?;
    Ok(tail)
}

fn lock(tail: &Mutex<Tail>) -> std::sync::MutexGuard<'_, Tail> {
    tail.lock().unwrap_or_else(|p| p.into_inner())
}

/// SQLite's count of commits by other connections to the file, as seen by `conn`.
fn data_version(conn: &Connection) -> Result<i64, AccessError> {
    conn.prepare_cached("PRAGMA data_version")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(storage)
}

/// The index's state as stored.
fn read_state(conn: &Connection) -> Result<Merged, AccessError> {
    conn.prepare_cached(
        "SELECT below, round_below, round_citizen FROM access_index_state WHERE id = 0",
    )
    .and_then(|mut s| {
        s.query_row([], |r| {
            Ok(Merged {
                below: r.get::<_, i64>(0)?.max(0) as u64,
                round_below: r.get::<_, i64>(1)?.max(0) as u64,
                round_citizen: r.get::<_, i64>(2)?.max(0) as u64,
            })
        })
    })
    .map_err(storage)
}

fn write_state(conn: &Connection, m: Merged) -> Result<(), AccessError> {
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "UPDATE access_index_state SET below = ?1, round_below = ?2, round_citizen = ?3
         WHERE id = 0",
    )
    .and_then(|mut s| {
        s.execute(params![
            as_i64(m.below),
            as_i64(m.round_below),
            as_i64(m.round_citizen)
        ])
    })
    .map_err(storage)?;
    Ok(())
}

/// The tail as the file defines it (read inside a transaction): the rows of the entries from
/// the state's `below` on that the table does not hold.
fn load_tail(conn: &Connection) -> Result<Tail, AccessError> {
    let merged = read_state(conn)?;
    let through = tip(conn)?.next_seq;
    Ok(Tail::new(file_tail_rows(conn, merged)?, merged, through))
}

fn file_tail_rows(conn: &Connection, merged: Merged) -> Result<Vec<IndexRow>, AccessError> {
    derived_rows(conn, merged.below, merged, None, |citizen| {
        table_last_ordinal(conn, citizen)
    })
}

/// The index rows of the entries from `from` on that `merged` does not hold (of citizen `only`
/// alone, when given), as [`tail_rows`] derives them, asking `table_last` for a citizen's last
/// ordinal before them.
fn derived_rows(
    conn: &Connection,
    from: u64,
    merged: Merged,
    only: Option<u32>,
    table_last: impl FnMut(u32) -> Result<Option<u32>, AccessError>,
) -> Result<Vec<IndexRow>, AccessError> {
    let mut read = conn
        .prepare_cached("SELECT seq, body FROM access_entries WHERE seq >= ?1 ORDER BY seq")
        .map_err(storage)?;
    let mut rows = read
        .query([i64::try_from(from).unwrap_or(i64::MAX)])
        .map_err(storage)?;
    let entries = std::iter::from_fn(|| {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => return None,
            Err(e) => return Some(Err(storage(e))),
        };
        Some((|| {
            let seq: i64 = row.get(0).map_err(storage)?;
            // An entry that does not decode reads no one here: the store still opens, and the
            // verifier reports the entry itself (its hash), which it checks before this table.
            let citizens: Vec<u32> = match row.get_ref(1).map_err(storage)?.as_bytes() {
                Ok(bytes) => Body::decode(bytes)
                    .map(|body| {
                        body.reads
                            .iter()
                            .map(|(c, _)| *c)
                            .filter(|c| only.is_none_or(|o| o == *c))
                            .collect()
                    })
                    .unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            Ok((seq as u64, citizens))
        })())
    });
    tail_rows(entries, merged, table_last)
}

/// The citizen's last ordinal in `access_by_citizen`.
fn table_last_ordinal(conn: &Connection, citizen: u32) -> Result<Option<u32>, AccessError> {
    conn.prepare_cached(
        "SELECT ordinal FROM access_by_citizen WHERE citizen = ?1
         ORDER BY ordinal DESC LIMIT 1",
    )
    .and_then(|mut s| s.query_row([citizen], |r| r.get(0)).optional())
    .map_err(storage)
}

/// Most strings, citizens and ordinals the writer remembers before it starts over (~100 MB).
const REMEMBERED: usize = 1 << 20;

/// Dictionary numbers and last ordinals known to be in the file (read from it, or committed by
/// this writer), valid while the log's next `seq` is `next_seq`.
#[derive(Default)]
struct Remembered {
    next_seq: Option<u64>,
    /// The next string and citizen numbers.
    defined: Option<(u32, u32)>,
    /// Strings come from request headers: std's DoS-resistant hasher. Citizens and numbers
    /// are the register's and the log's own: foldhash.
    strings: HashMap<String, u32>,
    citizens: foldhash::HashMap<Uuid, u32>,
    /// Citizen number → its last ordinal in `access_by_citizen`.
    ordinals: foldhash::HashMap<u32, u32>,
}

impl Remembered {
    fn forget(&mut self) {
        *self = Remembered::default();
    }

    /// After `plan` committed: its definitions and index rows are in the file now.
    fn learn(&mut self, plan: &Plan) {
        let Some(last) = plan.entries.last() else {
            return;
        };
        if self.strings.len() + self.citizens.len() + self.ordinals.len() > REMEMBERED {
            self.forget();
            return;
        }
        let Some((strings, citizens)) = self.defined else {
            // `plan` always asks; without the answer nothing below can be trusted.
            self.forget();
            return;
        };
        self.defined = Some((
            strings + plan.strings.len() as u32,
            citizens + plan.citizens.len() as u32,
        ));
        for (number, value) in &plan.strings {
            self.strings.insert(value.clone(), *number);
        }
        for (number, citizen) in &plan.citizens {
            self.citizens.insert(*citizen, *number);
        }
        // Index rows are in ordinal order per citizen: the last one written is the last.
        for row in &plan.index {
            self.ordinals.insert(row.citizen, row.ordinal);
        }
        self.next_seq = Some(last.seq + 1);
    }
}

/// The last entry, else the last v1 event (the v2 chain continues it), else genesis.
fn tip(conn: &Connection) -> Result<Tip, AccessError> {
    let last = conn
        .prepare_cached("SELECT seq, body, hash FROM access_entries ORDER BY seq DESC LIMIT 1")
        .and_then(|mut s| s.query_row([], stored_entry).optional())
        .map_err(storage)?;
    if let Some(last) = last {
        return Tip::after(&last?);
    }
    let v1 = conn
        .prepare_cached(
            "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?, r.get(2)?))
            })
            .optional()
        })
        .map_err(storage)?;
    match v1 {
        None => Ok(Tip::GENESIS),
        Some((position, hash, recorded_at)) => Ok(Tip {
            next_seq: position as u64 + 1,
            prev_hash: hash32(&hash)?,
            recorded_at,
        }),
    }
}

fn insert(conn: &Connection, p: &Plan) -> Result<(), AccessError> {
    let mut s = conn
        .prepare_cached("INSERT INTO access_strings (number, value) VALUES (?1, ?2)")
        .map_err(storage)?;
    for (n, v) in &p.strings {
        s.execute(params![n, v]).map_err(storage)?;
    }
    let mut s = conn
        .prepare_cached("INSERT INTO access_citizens (number, citizen) VALUES (?1, ?2)")
        .map_err(storage)?;
    for (n, c) in &p.citizens {
        s.execute(params![n, c.as_bytes().as_slice()])
            .map_err(storage)?;
    }
    let mut s = conn
        .prepare_cached("INSERT INTO access_entries (seq, body, hash) VALUES (?1, ?2, ?3)")
        .map_err(storage)?;
    for e in &p.entries {
        s.execute(params![e.seq as i64, e.body, e.hash.as_slice()])
            .map_err(storage)?;
    }
    // The index rows join the tail after COMMIT (`Writer::commit_group`).
    Ok(())
}

/// Inserts the derived rows of every entry, in `seq` order (numbers as the chain defines them).
fn replay(conn: &Connection) -> Result<u64, AccessError> {
    let (mut strings, mut citizens, mut entries) = (0u32, 0u32, 0u64);
    let mut ordinals: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    let mut read = conn
        .prepare("SELECT seq, body FROM access_entries ORDER BY seq")
        .map_err(storage)?;
    let mut rows = read.query([]).map_err(storage)?;
    let mut add_string = conn
        .prepare("INSERT INTO access_strings (number, value) VALUES (?1, ?2)")
        .map_err(storage)?;
    let mut add_citizen = conn
        .prepare("INSERT INTO access_citizens (number, citizen) VALUES (?1, ?2)")
        .map_err(storage)?;
    let mut add_read = conn
        .prepare("INSERT INTO access_by_citizen (citizen, ordinal, seq) VALUES (?1, ?2, ?3)")
        .map_err(storage)?;
    while let Some(row) = rows.next().map_err(storage)? {
        let seq: i64 = row.get(0).map_err(storage)?;
        let bytes: Vec<u8> = row.get(1).map_err(storage)?;
        let body = Body::decode(&bytes)
            .map_err(|e| AccessError::Corrupt(format!("entry {seq}: {}", e.0)))?;
        for value in &body.new_strings {
            add_string
                .execute(params![strings, value])
                .map_err(storage)?;
            strings += 1;
        }
        for c in &body.new_citizens {
            add_citizen
                .execute(params![citizens, c.as_bytes().as_slice()])
                .map_err(storage)?;
            citizens += 1;
        }
        for (citizen, _) in &body.reads {
            let ordinal = ordinals.entry(*citizen).or_insert(0);
            add_read
                .execute(params![citizen, *ordinal, seq])
                .map_err(storage)?;
            *ordinal += 1;
        }
        entries += 1;
    }
    Ok(entries)
}

/// The dictionaries as stored, inside the write transaction: what the writer remembers, else
/// read (and then remembered: it was committed before this transaction began).
struct Stored<'c> {
    conn: &'c Connection,
    remembered: &'c mut Remembered,
    numbered: &'c mut NumberedCitizens,
    /// Checked before the table: a citizen's rows in the tail follow its rows in the table.
    tail: &'c Mutex<Tail>,
    /// The citizens' lookup, taken from the connection's cache once for the group: a search
    /// page looks up twenty citizens, and each take and return hashed its text twice (~1.6 %
    /// of a drawn (b1)'s instructions; docs/benchmarks.md, "The access log's citizen lookup
    /// held for the group").
    citizen_lookup: Option<rusqlite::CachedStatement<'c>>,
}

impl Dictionary for Stored<'_> {
    fn string(&mut self, value: &str) -> Result<Option<u32>, AccessError> {
        if let Some(number) = self.remembered.strings.get(value) {
            return Ok(Some(*number));
        }
        let number: Option<u32> = self
            .conn
            .prepare_cached("SELECT number FROM access_strings WHERE value = ?1")
            .and_then(|mut s| s.query_row([value], |r| r.get(0)).optional())
            .map_err(storage)?;
        if let Some(number) = number {
            self.remembered.strings.insert(value.to_owned(), number);
        }
        Ok(number)
    }
    fn citizen(&mut self, citizen: Uuid) -> Result<Option<u32>, AccessError> {
        if let Some(number) = self.remembered.citizens.get(&citizen) {
            return Ok(Some(*number));
        }
        let (_, defined) = self.defined()?;
        if self.numbered.rules_out(self.conn, citizen, defined)? {
            return Ok(None);
        }
        // The number and the citizen's last ordinal in one statement: `plan` asks for the
        // ordinal of every citizen it finds numbered, and it is remembered like one read alone.
        let lookup = match &mut self.citizen_lookup {
            Some(lookup) => lookup,
            None => self.citizen_lookup.insert(
                self.conn
                    .prepare_cached(
                        "SELECT c.number,
                                (SELECT b.ordinal FROM access_by_citizen b
                                 WHERE b.citizen = c.number ORDER BY b.ordinal DESC LIMIT 1)
                         FROM access_citizens c WHERE c.citizen = ?1",
                    )
                    .map_err(storage)?,
            ),
        };
        let found: Option<(u32, Option<u32>)> = lookup
            .query_row([citizen.as_bytes().as_slice()], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(storage)?;
        let Some((number, ordinal)) = found else {
            return Ok(None);
        };
        self.remembered.citizens.insert(citizen, number);
        if let Some(ordinal) = lock(self.tail).last_ordinal(number).or(ordinal) {
            self.remembered.ordinals.insert(number, ordinal);
        }
        Ok(Some(number))
    }
    fn last_ordinal(&mut self, citizen: u32) -> Result<Option<u32>, AccessError> {
        if let Some(ordinal) = self.remembered.ordinals.get(&citizen) {
            return Ok(Some(*ordinal));
        }
        let tail = lock(self.tail).last_ordinal(citizen);
        let ordinal = match tail {
            Some(ordinal) => Some(ordinal),
            None => table_last_ordinal(self.conn, citizen)?,
        };
        if let Some(ordinal) = ordinal {
            self.remembered.ordinals.insert(citizen, ordinal);
        }
        Ok(ordinal)
    }
    fn defined(&mut self) -> Result<(u32, u32), AccessError> {
        if let Some(defined) = self.remembered.defined {
            return Ok(defined);
        }
        // Numbers are dense from 0, so the next one is the last + 1: one key lookup each.
        let defined = self
            .conn
            .prepare_cached(
                "SELECT (SELECT coalesce(max(number) + 1, 0) FROM access_strings),
                        (SELECT coalesce(max(number) + 1, 0) FROM access_citizens)",
            )
            .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(storage)?;
        self.remembered.defined = Some(defined);
        Ok(defined)
    }
}

fn citizen_number(conn: &Connection, citizen: Uuid) -> Result<Option<u32>, AccessError> {
    conn.prepare_cached("SELECT number FROM access_citizens WHERE citizen = ?1")
        .and_then(|mut s| {
            s.query_row([citizen.as_bytes().as_slice()], |r| r.get(0))
                .optional()
        })
        .map_err(storage)
}

fn hash32(bytes: &[u8]) -> Result<[u8; 32], AccessError> {
    bytes
        .try_into()
        .map_err(|_| AccessError::Corrupt(format!("a hash of {} bytes", bytes.len())))
}

/// A row of `seq, body, hash`; a hash of the wrong length is the row's (inner) error.
fn stored_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<StoredEntry, AccessError>> {
    let seq: i64 = r.get(0)?;
    let body: Vec<u8> = r.get(1)?;
    let hash: Vec<u8> = r.get(2)?;
    Ok(hash32(&hash).map(|hash| StoredEntry {
        seq: seq as u64,
        body,
        hash,
    }))
}

/// A page of the citizen's reads (number `number`), newest first, inside a read transaction:
/// its tail rows (`copied` from the writer's tail up to entry `through`, then any entry
/// committed since, derived here), then the table's rows.
fn citizen_page(
    conn: &Connection,
    number: u32,
    copied: Vec<IndexRow>,
    through: u64,
    before: Option<u64>,
    first: usize,
) -> Result<Vec<CitizenRead>, AccessError> {
    let merged = read_state(conn)?;
    let mut newer: Vec<IndexRow> = copied
        .into_iter()
        .filter(|r| !merged.holds(r.citizen, r.seq))
        .collect();
    if tip(conn)?.next_seq > through {
        let last = match newer.last() {
            Some(r) => Some(r.ordinal),
            None => table_last_ordinal(conn, number)?,
        };
        let later = derived_rows(conn, through, merged, Some(number), |_| Ok(last))?;
        newer.extend(later);
    }
    let before = before.unwrap_or(u64::MAX);
    let mut found: Vec<(StoredEntry, u32)> = Vec::with_capacity(first.min(256));
    let mut entry = conn
        .prepare_cached("SELECT seq, body, hash FROM access_entries WHERE seq = ?1")
        .map_err(storage)?;
    for r in newer
        .iter()
        .rev()
        .filter(|r| u64::from(r.ordinal) < before)
        .take(first)
    {
        let stored = entry
            .query_row([r.seq as i64], stored_entry)
            .optional()
            .map_err(storage)?
            .ok_or_else(|| AccessError::Corrupt(format!("no entry {}", r.seq)))??;
        found.push((stored, r.ordinal));
    }
    // The table's rows all come before the tail's (a citizen's rows in the table are a prefix).
    if found.len() < first {
        let below = i64::try_from(before).unwrap_or(i64::MAX);
        let mut s = conn.prepare_cached(CITIZEN_PAGE_SQL).map_err(storage)?;
        let rows = s
            .query_map(params![number, below, (first - found.len()) as i64], |r| {
                Ok((stored_entry(r)?, r.get::<_, u32>(3)?))
            })
            .map_err(storage)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(storage)?;
        for (stored, ordinal) in rows {
            found.push((stored?, ordinal));
        }
    }
    let mut strings = conn
        .prepare_cached("SELECT value FROM access_strings WHERE number = ?1")
        .map_err(storage)?;
    let mut string = |n: u32| -> Result<String, AccessError> {
        strings
            .query_row([n], |r| r.get(0))
            .optional()
            .map_err(storage)?
            .ok_or_else(|| AccessError::Corrupt(format!("no string {n}")))
    };
    let mut out = Vec::with_capacity(found.len());
    for (entry, ordinal) in found {
        let body = Body::decode(&entry.body).map_err(|e| AccessError::Corrupt(e.0))?;
        out.push(resolve(&body, &entry, number, ordinal, &mut string)?);
    }
    Ok(out)
}

#[async_trait::async_trait]
impl EntryStore for SqliteEntries {
    async fn append(&self, draft: Draft) -> Result<Committed, AccessError> {
        crate::submit(&self.queue, draft, Job::Append).await
    }

    async fn for_citizen(
        &self,
        citizen: Uuid,
        before: Option<u64>,
        first: usize,
    ) -> Result<Vec<CitizenRead>, AccessError> {
        let tail = self.tail.clone();
        self.read(move |conn| {
            let Some(number) = citizen_number(conn, citizen)? else {
                return Ok(Vec::new());
            };
            // Copied before the snapshot below begins: every copied row's entry is committed,
            // and a merge that moves rows into the table after the copy is in the snapshot.
            let (copied, through) = {
                let tail = lock(&tail);
                (tail.of(number), tail.through)
            };
            conn.execute_batch("BEGIN").map_err(storage)?;
            let page = citizen_page(conn, number, copied, through, before, first);
            let _ = conn.execute_batch("COMMIT");
            page
        })
        .await
    }

    async fn entries(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>, AccessError> {
        self.read(move |conn| {
            let mut s = conn
                .prepare_cached(
                    "SELECT seq, body, hash FROM access_entries WHERE seq >= ?1
                     ORDER BY seq LIMIT ?2",
                )
                .map_err(storage)?;
            let rows = s
                .query_map(params![from as i64, limit as i64], stored_entry)
                .map_err(storage)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(storage)?;
            rows.into_iter().collect()
        })
        .await
    }

    async fn first_seq(&self) -> Result<Option<u64>, AccessError> {
        self.read(|conn| {
            conn.query_row("SELECT min(seq) FROM access_entries", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map(|s| s.map(|s| s as u64))
            .map_err(storage)
        })
        .await
    }

    async fn last_seq(&self) -> Result<Option<u64>, AccessError> {
        self.read(|conn| {
            conn.query_row("SELECT max(seq) FROM access_entries", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map(|s| s.map(|s| s as u64))
            .map_err(storage)
        })
        .await
    }

    async fn derived_digest(&self) -> Result<DerivedDigest, AccessError> {
        self.read(|conn| {
            // One read transaction, so that the three scans see the same commit.
            conn.execute_batch("BEGIN").map_err(storage)?;
            let digest = scan_derived(conn);
            let _ = conn.execute_batch("COMMIT");
            digest
        })
        .await
    }
}

fn scan_derived(conn: &Connection) -> Result<DerivedDigest, AccessError> {
    let mut d = DerivedDigest::default();
    let mut s = conn
        .prepare("SELECT number, value FROM access_strings")
        .map_err(storage)?;
    let mut rows = s.query([]).map_err(storage)?;
    while let Some(r) = rows.next().map_err(storage)? {
        let value: String = r.get(1).map_err(storage)?;
        d.add_string(r.get(0).map_err(storage)?, &value);
    }
    let mut s = conn
        .prepare("SELECT citizen, number FROM access_citizens")
        .map_err(storage)?;
    let mut rows = s.query([]).map_err(storage)?;
    while let Some(r) = rows.next().map_err(storage)? {
        let bytes: Vec<u8> = r.get(0).map_err(storage)?;
        d.add_citizen_bytes(r.get(1).map_err(storage)?, &bytes);
    }
    let mut s = conn
        .prepare("SELECT citizen, ordinal, seq FROM access_by_citizen")
        .map_err(storage)?;
    let mut rows = s.query([]).map_err(storage)?;
    while let Some(r) = rows.next().map_err(storage)? {
        d.add_index(IndexRow {
            citizen: r.get(0).map_err(storage)?,
            ordinal: r.get(1).map_err(storage)?,
            seq: r.get::<_, i64>(2).map_err(storage)? as u64,
        });
    }
    // The tail's rows are the index too: derived from the entries the state says the table
    // does not cover, as the writer derives them (a row missing from the table below `below`,
    // or a state that lies, makes the sums differ).
    for row in file_tail_rows(conn, read_state(conn)?)? {
        d.add_index(row);
    }
    Ok(d)
}
