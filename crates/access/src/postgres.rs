//! v2 entries on PostgreSQL: tables beside the v1 `events` table in the access log's schema
//! (`citydb_access`), shared by every node pointing at the database.
//!
//! One writer task per node takes every append waiting in its queue and commits them in one
//! transaction under the advisory lock [`APPEND_LOCK`] (so that the nodes' groups serialise):
//! the tip, the known strings and citizens and each citizen's last ordinal are read in a few
//! batched queries, the group is planned in memory, and each table gets ONE multi-row INSERT.
//! Appends are acknowledged only after COMMIT returns (PostgreSQL's `synchronous_commit`).

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
CREATE TABLE IF NOT EXISTS access_by_citizen (
    citizen INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    seq     BIGINT  NOT NULL,
    PRIMARY KEY (citizen, ordinal)
);
"#;

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
    for row in tx
        .query(
            "SELECT c, (SELECT ordinal FROM access_by_citizen WHERE citizen = c
                        ORDER BY ordinal DESC LIMIT 1)
             FROM unnest($1::int4[]) AS t(c)",
            &[&known],
        )
        .await
        .map_err(storage)?
    {
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
    insert(
        &tx,
        "INSERT INTO access_by_citizen (citizen, ordinal, seq)
         SELECT * FROM unnest($1::int4[], $2::int4[], $3::int8[])",
        &[&citizens, &ordinals, &seqs],
    )
    .await?;
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
        crate::submit(&self.queue, draft).await
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
        let below = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
        let rows = client
            .query(
                "SELECT e.seq, e.body, e.hash, i.ordinal
                 FROM access_by_citizen i JOIN access_entries e ON e.seq = i.seq
                 WHERE i.citizen = $1 AND i.ordinal < $2::int8
                 ORDER BY i.ordinal DESC LIMIT $3",
                &[&number, &below, &(first as i64)],
            )
            .await
            .map_err(storage)?;
        let mut decoded = Vec::with_capacity(rows.len());
        let mut wanted: Vec<i32> = Vec::new();
        for row in &rows {
            let entry = entry_of(row)?;
            let body = Body::decode(&entry.body).map_err(|e| AccessError::Corrupt(e.0))?;
            wanted.extend(body.string_refs().map(|n| n as i32));
            decoded.push((entry, body, row.get::<_, i32>(3) as u32));
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
        let rows = tx
            .query_raw("SELECT citizen, ordinal, seq FROM access_by_citizen", none)
            .await
            .map_err(storage)?;
        pin_mut!(rows);
        while let Some(row) = rows.next().await {
            let row = row.map_err(storage)?;
            d.add_index(IndexRow {
                citizen: row.get::<_, i32>(0) as u32,
                ordinal: row.get::<_, i32>(1) as u32,
                seq: row.get::<_, i64>(2) as u64,
            });
        }
        tx.commit().await.map_err(storage)?;
        Ok(d)
    }
}
