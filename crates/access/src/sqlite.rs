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
use crate::plan::{Dictionary, Plan, Tip, plan};
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
"#;

/// A page of one citizen's reads, newest first: a range of the index's primary key, then one
/// entry by its `seq` per row — O(log n + page) (`a_citizen_page_is_two_key_searches`).
pub const CITIZEN_PAGE_SQL: &str = "SELECT e.seq, e.body, e.hash, i.ordinal
     FROM access_by_citizen i JOIN access_entries e ON e.seq = i.seq
     WHERE i.citizen = ?1 AND i.ordinal < ?2
     ORDER BY i.ordinal DESC LIMIT ?3";

use crate::Request;

/// The v2 entries of an embedded access log.
pub struct SqliteEntries {
    queue: mpsc::Sender<Request>,
    reader: Arc<Mutex<Connection>>,
    commits: Arc<AtomicU64>,
}

impl SqliteEntries {
    /// Opens the v2 tables of the access-log file at `path`, creating them if missing. Open the
    /// file's v1 log (`SqliteLog`) first, with the same `config`: it owns the file's identity
    /// and `events` table, on whose tip the v2 chain starts. The writer commits with the
    /// configured durability (`synchronous=FULL` by default: an acknowledged entry survives
    /// power loss).
    pub fn open(path: &Path, config: &SqliteConfig) -> Result<SqliteEntries, AccessError> {
        let synchronous = match config.durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
            Durability::Off => "OFF",
        };
        let mut writer = connect(path, config)?;
        writer
            .pragma_update(None, "synchronous", synchronous)
            .map_err(storage)?;
        let tx = writer.transaction().map_err(storage)?;
        tx.execute_batch(SCHEMA).map_err(storage)?;
        tx.commit().map_err(storage)?;
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
        let counted = commits.clone();
        std::thread::Builder::new()
            .name("citydb-access-writer".into())
            .spawn(move || run(writer, requests, &counted, checkpointer, ahead))
            .map_err(|e| thread_failed("writer", e))?;
        Ok(SqliteEntries {
            queue,
            reader: Arc::new(Mutex::new(reader)),
            commits,
        })
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

fn storage(e: rusqlite::Error) -> AccessError {
    AccessError::Storage(LogError::storage(
        citydb_sqlite::fault_kind(&e),
        e.to_string(),
    ))
}

fn run(
    conn: Connection,
    mut queue: mpsc::Receiver<Request>,
    commits: &AtomicU64,
    checkpointer: Checkpointer,
    mut ahead: WalAhead,
) {
    let mut group: Vec<Request> = Vec::with_capacity(64);
    let mut remembered = Remembered::default();
    while let Some(first) = queue.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        checkpointer.restart_if_due(&conn);
        let requests = group.len();
        let drafts: Vec<&Draft> = group.iter().map(|(d, _)| d).collect();
        match commit_group(&conn, &drafts, &mut remembered) {
            Ok(committed) => {
                commits.fetch_add(1, Ordering::Relaxed);
                checkpointer.nudge();
                for ((_, answer), c) in group.drain(..).zip(committed) {
                    let _ = answer.send(Ok(c));
                }
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                remembered.forget();
                for (_, answer) in group.drain(..) {
                    let _ = answer.send(Err(e.clone()));
                }
            }
        }
        ahead.after_group(&conn, requests, !queue.is_empty());
    }
    // The checkpoint thread's connection closed first, so that closing the log closes every
    // connection it opened; then a compact file left behind, best effort.
    checkpointer.close();
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

/// One transaction: the tip is read inside it, and what the writer remembers is used only if
/// that tip is where its own last commit left the log (so a failed group or another process
/// appending to the file cannot desynchronise the numbering).
fn commit_group(
    conn: &Connection,
    drafts: &[&Draft],
    remembered: &mut Remembered,
) -> Result<Vec<Committed>, AccessError> {
    conn.prepare_cached("BEGIN IMMEDIATE")
        .and_then(|mut s| s.execute([]))
        .map_err(storage)?;
    let tip = tip(conn)?;
    if remembered.next_seq != Some(tip.next_seq) {
        remembered.forget();
    }
    let p = plan(
        tip,
        &mut Stored {
            conn,
            remembered: &mut *remembered,
        },
        drafts,
        crate::now_micros(),
    )?;
    insert(conn, &p)?;
    conn.prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]))
        .map_err(storage)?;
    remembered.learn(&p);
    Ok(p.committed)
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
    strings: HashMap<String, u32>,
    citizens: HashMap<Uuid, u32>,
    /// Citizen number → its last ordinal in `access_by_citizen`.
    ordinals: HashMap<u32, u32>,
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
    let mut s = conn
        .prepare_cached("INSERT INTO access_by_citizen (citizen, ordinal, seq) VALUES (?1, ?2, ?3)")
        .map_err(storage)?;
    for r in &p.index {
        s.execute(params![r.citizen, r.ordinal, r.seq as i64])
            .map_err(storage)?;
    }
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
        // The number and the citizen's last ordinal in one statement: `plan` asks for the
        // ordinal of every citizen it finds numbered, and it is remembered like one read alone.
        let found: Option<(u32, Option<u32>)> = self
            .conn
            .prepare_cached(
                "SELECT c.number,
                        (SELECT b.ordinal FROM access_by_citizen b WHERE b.citizen = c.number
                         ORDER BY b.ordinal DESC LIMIT 1)
                 FROM access_citizens c WHERE c.citizen = ?1",
            )
            .and_then(|mut s| {
                s.query_row([citizen.as_bytes().as_slice()], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .map_err(storage)?;
        let Some((number, ordinal)) = found else {
            return Ok(None);
        };
        self.remembered.citizens.insert(citizen, number);
        if let Some(ordinal) = ordinal {
            self.remembered.ordinals.insert(number, ordinal);
        }
        Ok(Some(number))
    }
    fn last_ordinal(&mut self, citizen: u32) -> Result<Option<u32>, AccessError> {
        if let Some(ordinal) = self.remembered.ordinals.get(&citizen) {
            return Ok(Some(*ordinal));
        }
        let ordinal: Option<u32> = self
            .conn
            .prepare_cached(
                "SELECT ordinal FROM access_by_citizen WHERE citizen = ?1
                 ORDER BY ordinal DESC LIMIT 1",
            )
            .and_then(|mut s| s.query_row([citizen], |r| r.get(0)).optional())
            .map_err(storage)?;
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

#[async_trait::async_trait]
impl EntryStore for SqliteEntries {
    async fn append(&self, draft: Draft) -> Result<Committed, AccessError> {
        crate::submit(&self.queue, draft).await
    }

    async fn for_citizen(
        &self,
        citizen: Uuid,
        before: Option<u64>,
        first: usize,
    ) -> Result<Vec<CitizenRead>, AccessError> {
        let below = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
        self.read(move |conn| {
            let Some(number) = citizen_number(conn, citizen)? else {
                return Ok(Vec::new());
            };
            let mut s = conn.prepare_cached(CITIZEN_PAGE_SQL).map_err(storage)?;
            let rows = s
                .query_map(params![number, below, first as i64], |r| {
                    Ok((stored_entry(r)?, r.get::<_, u32>(3)?))
                })
                .map_err(storage)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(storage)?;
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
            let mut out = Vec::with_capacity(rows.len());
            for (entry, ordinal) in rows {
                let entry = entry?;
                let body = Body::decode(&entry.body).map_err(|e| AccessError::Corrupt(e.0))?;
                out.push(resolve(&body, &entry, number, ordinal, &mut string)?);
            }
            Ok(out)
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
        let citizen = Uuid::from_slice(&bytes)
            .map_err(|_| AccessError::Corrupt("a citizen id of the wrong length".into()))?;
        d.add_citizen(r.get(1).map_err(storage)?, citizen);
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
    Ok(d)
}
