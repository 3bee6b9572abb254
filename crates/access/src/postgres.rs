//! v2 entries on PostgreSQL: tables beside the v1 `events` table in the access log's schema
//! (`citydb_access`), shared by every node pointing at the database.
//!
//! One writer task per node takes every append waiting in its queue and commits them in one
//! transaction under the advisory lock [`APPEND_LOCK`] (so that the nodes' groups serialise):
//! the tip, the known strings and citizens and each citizen's last ordinal are read in a few
//! batched queries, the group is planned in memory, and each table gets ONE multi-row INSERT.
//! Appends are acknowledged only after COMMIT returns (PostgreSQL's `synchronous_commit`).
//!
//! The index by citizen is kept in chunks here (`access_by_citizen_chunks`: one row per citizen
//! and [`CHUNK_READS`] consecutive ordinals, their `seq`s in an array), not one row per read as
//! the embedded store's `WITHOUT ROWID` table does: a PostgreSQL row costs ~28 bytes before its
//! data (tuple header, line pointer) plus its B-tree entry, so one row per read cost ~80 bytes
//! a citizen read where a chunk costs ~12 (docs/benchmarks.md, "Compact access log"). The rows
//! it stands for — (citizen, ordinal, seq) — are the same, and the verifier compares those.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use citydb_log::{FaultKind, LogError};
use deadpool_postgres::{Object, Pool};
use futures_util::{StreamExt, pin_mut};
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::format::Body;
use crate::plan::{Dictionary, Tip, plan};
use crate::verify::DerivedDigest;
use crate::{
    AccessError, CitizenRead, Committed, Draft, EntryStore, IndexRow, StoredEntry, resolve,
};

/// Advisory lock of v2 appends ("cdyb" then 3).
pub const APPEND_LOCK: i64 = 0x6364_7962_0000_0003;
/// The v1 log's append lock (`citydb_postgres::schema::APPEND_LOCK_KEY`): taken too when the
/// first v2 entry chains on the v1 tip, so that no v1 append slips in between.
const V1_APPEND_LOCK: i64 = 0x6364_7962_0000_0001;

const MAX_GROUP: usize = 1024;

/// Consecutive reads of one citizen held in one row of `access_by_citizen_chunks`: ordinal
/// `o` is element `o % CHUNK_READS` (0-based) of row `chunk = o / CHUNK_READS`. Small enough
/// that appending a read (an UPDATE: PostgreSQL writes the whole new row version) stays cheap,
/// large enough that the row's overhead is spread thin. Fixed: stored rows depend on it.
pub const CHUNK_READS: u32 = 16;

/// The v2 tables, as `sqlite::SCHEMA`. The dictionaries are keyed by number, with a unique
/// index on the value, so that the next number (the last + 1) is one key lookup inside the
/// locked transaction, on a database that several nodes write.
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS access_entries (
    seq  BIGINT PRIMARY KEY CHECK (seq >= 0),
    body BYTEA  NOT NULL,
    hash BYTEA  NOT NULL CHECK (octet_length(hash) = 32)
);
CREATE TABLE IF NOT EXISTS access_strings (
    number INTEGER PRIMARY KEY,
    value  TEXT    NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS access_citizens (
    number  INTEGER PRIMARY KEY,
    citizen UUID    NOT NULL UNIQUE
);
-- Each citizen's reads in order, CHUNK_READS ordinals a row: seqs[i] (1-based) is the entry
-- of ordinal chunk × CHUNK_READS + i − 1. Room is left on each page so that appending to a
-- chunk is a heap-only update (no new index entry).
CREATE TABLE IF NOT EXISTS access_by_citizen_chunks (
    citizen INTEGER  NOT NULL,
    chunk   INTEGER  NOT NULL,
    seqs    BIGINT[] NOT NULL,
    PRIMARY KEY (citizen, chunk)
) WITH (fillfactor = 80);
-- A log written before the chunks kept one row per read: the same rows, moved into chunks.
DO $$
BEGIN
    IF to_regclass('access_by_citizen') IS NOT NULL THEN
        INSERT INTO access_by_citizen_chunks (citizen, chunk, seqs)
        SELECT citizen, ordinal / 16, array_agg(seq ORDER BY ordinal)
        FROM access_by_citizen GROUP BY citizen, ordinal / 16;
        DROP TABLE access_by_citizen;
    END IF;
END
$$;
"#;

/// Each given citizen's last ordinal (NULL: none yet): the last element of its last chunk.
const LAST_ORDINALS: &str = "SELECT c, (SELECT chunk * 16 + cardinality(seqs) - 1
                        FROM access_by_citizen_chunks WHERE citizen = c
                        ORDER BY chunk DESC LIMIT 1)
             FROM unnest($1::int4[]) AS t(c)";

/// A group's index rows (citizen, ordinal, seq) appended to the chunks: each citizen's new
/// reads continue its last chunk (the plan numbered them from the last ordinal read under the
/// lock) and may open the next ones.
const APPEND_READS: &str = "INSERT INTO access_by_citizen_chunks AS k (citizen, chunk, seqs)
         SELECT c, o / 16, array_agg(s ORDER BY o)
         FROM unnest($1::int4[], $2::int4[], $3::int8[]) AS t(c, o, s)
         GROUP BY c, o / 16
         ON CONFLICT (citizen, chunk) DO UPDATE SET seqs = k.seqs || EXCLUDED.seqs";

use crate::Request;

/// The v2 entries of a PostgreSQL access log.
pub struct PostgresEntries {
    queue: mpsc::Sender<Request>,
    pool: Pool,
    commits: Arc<AtomicU64>,
}

impl PostgresEntries {
    /// Connects to the access log's schema (`url` sets its `search_path`, as the v1 log's
    /// does) and creates the v2 tables if missing. Connect the v1 log first: it creates the
    /// `events` table on whose tip the v2 chain starts.
    pub async fn connect(url: &str, timeout: Duration) -> Result<PostgresEntries, AccessError> {
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e| AccessError::Invalid(format!("invalid PostgreSQL URL: {e}")))?;
        if pg.get_application_name().is_none() {
            pg.application_name("citydb-access");
        }
        pg.connect_timeout(timeout);
        let pool = citydb_postgres::make_pool(&pg, 4, timeout)?;
        let writer = citydb_postgres::make_pool(&pg, 1, timeout)?;
        {
            let mut client = writer.get().await.map_err(pool_error)?;
            let tx = client.transaction().await.map_err(storage)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])
                .await
                .map_err(storage)?;
            tx.batch_execute(SCHEMA).await.map_err(storage)?;
            tx.commit().await.map_err(storage)?;
        }
        let (queue, requests) = mpsc::channel(4 * MAX_GROUP);
        let commits = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(writer, requests, commits.clone()));
        Ok(PostgresEntries {
            queue,
            pool,
            commits,
        })
    }

    /// Transactions committed so far by this node (each holds a group of appends).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    async fn client(&self) -> Result<Object, AccessError> {
        self.pool.get().await.map_err(pool_error)
    }
}

fn storage(e: tokio_postgres::Error) -> AccessError {
    AccessError::Storage(LogError::storage(
        citydb_postgres::fault_kind(&e),
        e.to_string(),
    ))
}

fn pool_error(e: deadpool_postgres::PoolError) -> AccessError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => storage(e),
        deadpool_postgres::PoolError::Closed => AccessError::Closed,
        e => AccessError::Storage(LogError::storage(
            FaultKind::Unavailable,
            format!("cannot get a connection: {e}"),
        )),
    }
}

async fn run(pool: Pool, mut queue: mpsc::Receiver<Request>, commits: Arc<AtomicU64>) {
    let mut group: Vec<Request> = Vec::with_capacity(64);
    while let Some(first) = queue.recv().await {
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let drafts: Vec<&Draft> = group.iter().map(|(d, _)| d).collect();
        // A failed transaction is rolled back when it is dropped unfinished.
        match commit_group(&pool, &drafts).await {
            Ok(committed) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for ((_, answer), c) in group.drain(..).zip(committed) {
                    let _ = answer.send(Ok(c));
                }
            }
            Err(e) => {
                for (_, answer) in group.drain(..) {
                    let _ = answer.send(Err(e.clone()));
                }
            }
        }
    }
}

fn hash32(bytes: &[u8]) -> Result<[u8; 32], AccessError> {
    bytes
        .try_into()
        .map_err(|_| AccessError::Corrupt(format!("a hash of {} bytes", bytes.len())))
}

fn entry_of(row: &tokio_postgres::Row) -> Result<StoredEntry, AccessError> {
    Ok(StoredEntry {
        seq: row.get::<_, i64>(0) as u64,
        body: row.get(1),
        hash: hash32(row.get(2))?,
    })
}

async fn commit_group(pool: &Pool, drafts: &[&Draft]) -> Result<Vec<Committed>, AccessError> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(storage)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&APPEND_LOCK])
        .await
        .map_err(storage)?;
    let last = tx
        .query_opt(
            "SELECT seq, body, hash FROM access_entries ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await
        .map_err(storage)?;
    let tip = match last {
        Some(row) => Tip::after(&entry_of(&row)?)?,
        None => {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&V1_APPEND_LOCK])
                .await
                .map_err(storage)?;
            let v1 = tx
                .query_opt(
                    "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1",
                    &[],
                )
                .await
                .map_err(storage)?;
            match v1 {
                None => Tip::GENESIS,
                Some(row) => Tip {
                    next_seq: row.get::<_, i64>(0) as u64 + 1,
                    prev_hash: hash32(row.get(1))?,
                    recorded_at: row.get(2),
                },
            }
        }
    };
    let mut strings: Vec<&str> = Vec::new();
    let mut citizens: Vec<Uuid> = Vec::new();
    for d in drafts {
        strings.extend([d.principal.as_str(), d.role.as_str(), d.operation.as_str()]);
        strings.extend(
            [&d.end_user, &d.case, &d.purpose]
                .into_iter()
                .flatten()
                .map(String::as_str),
        );
        for (c, g) in &d.reads {
            strings.push(g);
            citizens.push(*c);
        }
    }
    strings.sort_unstable();
    strings.dedup();
    citizens.sort_unstable();
    citizens.dedup();
    let mut dict = Prefetched::default();
    let row = tx
        .query_one(
            "SELECT (SELECT coalesce(max(number) + 1, 0) FROM access_strings),
                    (SELECT coalesce(max(number) + 1, 0) FROM access_citizens)",
            &[],
        )
        .await
        .map_err(storage)?;
    dict.counts = (row.get::<_, i32>(0) as u32, row.get::<_, i32>(1) as u32);
    for row in tx
        .query(
            "SELECT value, number FROM access_strings WHERE value = ANY($1)",
            &[&strings],
        )
        .await
        .map_err(storage)?
    {
        dict.strings.insert(row.get(0), row.get::<_, i32>(1) as u32);
    }
    for row in tx
        .query(
            "SELECT citizen, number FROM access_citizens WHERE citizen = ANY($1)",
            &[&citizens],
        )
        .await
        .map_err(storage)?
    {
        dict.citizens
            .insert(row.get(0), row.get::<_, i32>(1) as u32);
    }
    let known: Vec<i32> = dict.citizens.values().map(|n| *n as i32).collect();
    for row in tx.query(LAST_ORDINALS, &[&known]).await.map_err(storage)? {
        if let Some(o) = row.get::<_, Option<i32>>(1) {
            dict.ordinals.insert(row.get::<_, i32>(0) as u32, o as u32);
        }
    }
    let p = plan(tip, &mut dict, drafts, crate::now_micros())?;
    let (numbers, values): (Vec<i32>, Vec<&str>) = p
        .strings
        .iter()
        .map(|(n, v)| (*n as i32, v.as_str()))
        .unzip();
    insert(
        &tx,
        "INSERT INTO access_strings (number, value) SELECT * FROM unnest($1::int4[], $2::text[])",
        &[&numbers, &values],
    )
    .await?;
    let (numbers, ids): (Vec<i32>, Vec<Uuid>) =
        p.citizens.iter().map(|(n, c)| (*n as i32, *c)).unzip();
    insert(
        &tx,
        "INSERT INTO access_citizens (number, citizen) SELECT * FROM unnest($1::int4[], $2::uuid[])",
        &[&numbers, &ids],
    )
    .await?;
    let seqs: Vec<i64> = p.entries.iter().map(|e| e.seq as i64).collect();
    let bodies: Vec<&[u8]> = p.entries.iter().map(|e| e.body.as_slice()).collect();
    let hashes: Vec<&[u8]> = p.entries.iter().map(|e| e.hash.as_slice()).collect();
    insert(
        &tx,
        "INSERT INTO access_entries (seq, body, hash)
         SELECT * FROM unnest($1::int8[], $2::bytea[], $3::bytea[])",
        &[&seqs, &bodies, &hashes],
    )
    .await?;
    let citizens: Vec<i32> = p.index.iter().map(|r| r.citizen as i32).collect();
    let ordinals: Vec<i32> = p.index.iter().map(|r| r.ordinal as i32).collect();
    let seqs: Vec<i64> = p.index.iter().map(|r| r.seq as i64).collect();
    insert(&tx, APPEND_READS, &[&citizens, &ordinals, &seqs]).await?;
    tx.commit().await.map_err(storage)?;
    Ok(p.committed)
}

async fn insert(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(), AccessError> {
    let stmt = tx.prepare_cached(sql).await.map_err(storage)?;
    tx.execute(&stmt, params).await.map_err(storage)?;
    Ok(())
}

/// A row of `access_by_citizen_chunks` read as (`chunk`, `seqs`) from its columns `at` and
/// `at + 1`. The array is read element by element as optional: a tampered row holding a NULL
/// (or not a one-dimensional array) is an error or a mismatch, never a panic.
fn chunk_at(row: &tokio_postgres::Row, at: usize) -> Result<(i32, Vec<Option<i64>>), AccessError> {
    let chunk = row.try_get::<_, i32>(at).map_err(storage)?;
    let seqs = row
        .try_get::<_, Vec<Option<i64>>>(at + 1)
        .map_err(|e| AccessError::Corrupt(format!("a chunk of the index by citizen: {e}")))?;
    Ok((chunk, seqs))
}

/// The ordinal of element `i` (0-based) of chunk `chunk`, in u64 so that no chunk number a
/// row can hold overflows.
fn chunk_ordinal(chunk: i32, i: usize) -> u64 {
    (chunk.max(0) as u64) * u64::from(CHUNK_READS) + i as u64
}

/// The dictionary rows the group needs, read before planning.
#[derive(Default)]
struct Prefetched {
    counts: (u32, u32),
    strings: HashMap<String, u32>,
    citizens: HashMap<Uuid, u32>,
    ordinals: HashMap<u32, u32>,
}

impl Dictionary for Prefetched {
    fn string(&mut self, value: &str) -> Result<Option<u32>, AccessError> {
        Ok(self.strings.get(value).copied())
    }
    fn citizen(&mut self, citizen: Uuid) -> Result<Option<u32>, AccessError> {
        Ok(self.citizens.get(&citizen).copied())
    }
    fn last_ordinal(&mut self, citizen: u32) -> Result<Option<u32>, AccessError> {
        Ok(self.ordinals.get(&citizen).copied())
    }
    fn defined(&mut self) -> Result<(u32, u32), AccessError> {
        Ok(self.counts)
    }
}

#[async_trait::async_trait]
impl EntryStore for PostgresEntries {
    async fn append(&self, draft: Draft) -> Result<Committed, AccessError> {
        crate::submit(&self.queue, draft, |r| r).await
    }

    async fn for_citizen(
        &self,
        citizen: Uuid,
        before: Option<u64>,
        first: usize,
    ) -> Result<Vec<CitizenRead>, AccessError> {
        let client = self.client().await?;
        let Some(row) = client
            .query_opt(
                "SELECT number FROM access_citizens WHERE citizen = $1",
                &[&citizen],
            )
            .await
            .map_err(storage)?
        else {
            return Ok(Vec::new());
        };
        let number: i32 = row.get(0);
        // Ordinals below `before`, newest first: the chunks that hold them, newest first (at
        // most one more than the page needs, the newest possibly holding none below `before`).
        let below = before.map_or(u64::from(u32::MAX), |b| b.min(u64::from(u32::MAX)));
        let Some(newest) = below.checked_sub(1) else {
            return Ok(Vec::new());
        };
        let chunks = client
            .query(
                "SELECT chunk, seqs FROM access_by_citizen_chunks
                 WHERE citizen = $1 AND chunk <= $2
                 ORDER BY chunk DESC LIMIT $3",
                &[
                    &number,
                    &((newest / u64::from(CHUNK_READS)) as i32),
                    &((first as u64 / u64::from(CHUNK_READS) + 2) as i64),
                ],
            )
            .await
            .map_err(storage)?;
        let mut page: Vec<(u32, i64)> = Vec::with_capacity(first);
        'chunks: for row in &chunks {
            let (chunk, seqs) = chunk_at(row, 0)?;
            for (i, seq) in seqs.iter().enumerate().rev() {
                let ordinal = chunk_ordinal(chunk, i);
                if ordinal >= below {
                    continue;
                }
                if page.len() == first {
                    break 'chunks;
                }
                let seq = seq
                    .ok_or_else(|| AccessError::Corrupt("a NULL in the index by citizen".into()))?;
                page.push((ordinal as u32, seq));
            }
        }
        let wanted: Vec<i64> = page.iter().map(|(_, seq)| *seq).collect();
        let mut bodies: HashMap<i64, StoredEntry> = client
            .query(
                "SELECT seq, body, hash FROM access_entries WHERE seq = ANY($1)",
                &[&wanted],
            )
            .await
            .map_err(storage)?
            .iter()
            .map(|row| entry_of(row).map(|e| (e.seq as i64, e)))
            .collect::<Result<_, _>>()?;
        let rows = page
            .iter()
            .map(|(ordinal, seq)| {
                bodies
                    .remove(seq)
                    .map(|entry| (entry, *ordinal))
                    .ok_or_else(|| {
                        AccessError::Corrupt(format!(
                            "the index names entry {seq}, which is not there"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut decoded = Vec::with_capacity(rows.len());
        let mut wanted: Vec<i32> = Vec::new();
        for (entry, ordinal) in rows {
            let body = Body::decode(&entry.body).map_err(|e| AccessError::Corrupt(e.0))?;
            wanted.extend(body.string_refs().map(|n| n as i32));
            decoded.push((entry, body, ordinal));
        }
        wanted.sort_unstable();
        wanted.dedup();
        let strings: HashMap<u32, String> = client
            .query(
                "SELECT number, value FROM access_strings WHERE number = ANY($1)",
                &[&wanted],
            )
            .await
            .map_err(storage)?
            .iter()
            .map(|r| (r.get::<_, i32>(0) as u32, r.get(1)))
            .collect();
        let mut string = |n: u32| {
            strings
                .get(&n)
                .cloned()
                .ok_or_else(|| AccessError::Corrupt(format!("no string {n}")))
        };
        decoded
            .iter()
            .map(|(entry, body, ordinal)| {
                resolve(body, entry, number as u32, *ordinal, &mut string)
            })
            .collect()
    }

    async fn entries(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>, AccessError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT seq, body, hash FROM access_entries WHERE seq >= $1 ORDER BY seq LIMIT $2",
                &[&(from as i64), &(limit as i64)],
            )
            .await
            .map_err(storage)?
            .iter()
            .map(entry_of)
            .collect()
    }

    async fn first_seq(&self) -> Result<Option<u64>, AccessError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT min(seq) FROM access_entries", &[])
            .await
            .map_err(storage)?;
        Ok(row.get::<_, Option<i64>>(0).map(|s| s as u64))
    }

    async fn last_seq(&self) -> Result<Option<u64>, AccessError> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT max(seq) FROM access_entries", &[])
            .await
            .map_err(storage)?;
        Ok(row.get::<_, Option<i64>>(0).map(|s| s as u64))
    }

    async fn derived_digest(&self) -> Result<DerivedDigest, AccessError> {
        let mut client = self.client().await?;
        // One snapshot for the three scans.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(storage)?;
        let mut d = DerivedDigest::default();
        let none: [&(dyn ToSql + Sync); 0] = [];
        let rows = tx
            .query_raw("SELECT number, value FROM access_strings", none)
            .await
            .map_err(storage)?;
        pin_mut!(rows);
        while let Some(row) = rows.next().await {
            let row = row.map_err(storage)?;
            d.add_string(row.get::<_, i32>(0) as u32, row.get(1));
        }
        let rows = tx
            .query_raw("SELECT number, citizen FROM access_citizens", none)
            .await
            .map_err(storage)?;
        pin_mut!(rows);
        while let Some(row) = rows.next().await {
            let row = row.map_err(storage)?;
            d.add_citizen(row.get::<_, i32>(0) as u32, row.get(1));
        }
        // The chunks as the rows they stand for: (citizen, ordinal, seq).
        let rows = tx
            .query_raw(
                "SELECT citizen, chunk, seqs FROM access_by_citizen_chunks",
                none,
            )
            .await
            .map_err(storage)?;
        pin_mut!(rows);
        while let Some(row) = rows.next().await {
            let row = row.map_err(storage)?;
            let citizen = row.get::<_, i32>(0) as u32;
            let (chunk, seqs) = chunk_at(&row, 1)?;
            for (i, seq) in seqs.into_iter().enumerate() {
                // A row that no entry can derive (an ordinal past u32, a NULL) still counts,
                // as one that cannot match: the verifier reports the table, not a failure.
                d.add_index(IndexRow {
                    citizen,
                    ordinal: u32::try_from(chunk_ordinal(chunk, i)).unwrap_or(u32::MAX),
                    seq: seq.map_or(u64::MAX, |s| s as u64),
                });
            }
        }
        tx.commit().await.map_err(storage)?;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statements spell the chunk size out (SQL has no constants): every `/ n` and `* n`
    /// in them must be [`CHUNK_READS`].
    #[test]
    fn the_statements_use_the_chunk_size() {
        for sql in [SCHEMA, LAST_ORDINALS, APPEND_READS] {
            let words: Vec<&str> = sql.split_whitespace().collect();
            let sizes: Vec<&str> = words
                .windows(2)
                .filter(|w| w[0] == "/" || w[0] == "*")
                .map(|w| w[1].trim_end_matches([',', ';', ')']))
                .collect();
            assert!(sql == SCHEMA || !sizes.is_empty(), "no chunk size in {sql}");
            for n in sizes {
                assert_eq!(n, CHUNK_READS.to_string(), "in {sql}");
            }
        }
        assert!(SCHEMA.contains("ordinal / 16"));
    }

    #[test]
    fn ordinals_of_a_chunk_follow_on() {
        assert_eq!(chunk_ordinal(0, 0), 0);
        assert_eq!(chunk_ordinal(0, 15), 15);
        assert_eq!(chunk_ordinal(1, 0), u64::from(CHUNK_READS));
        assert_eq!(
            chunk_ordinal(-1, 3),
            3,
            "a negative chunk (tampered) reads as 0"
        );
        assert!(
            chunk_ordinal(i32::MAX, 15) > u64::from(u32::MAX),
            "no overflow"
        );
    }
}
