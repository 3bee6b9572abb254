//! The compact access log (format v2): who read which citizens' personal data, on whose behalf,
//! in which case and why — one hash-chained entry per request, and an index by citizen.
//!
//! Format v1 (still readable and verified) wrote one `PersonalDataRead` JSON event per citizen
//! read into an ordinary event log, ~775 bytes each. v2 writes ONE entry per request (the
//! principal, officer, case, purpose, operation, correlation id and time stored once, then each
//! citizen read with its field groups), binary, with repeated strings and citizens interned:
//! 108 bytes on disk for a request that read one citizen, 16 more per further citizen on the
//! embedded store (docs/audit-format.md has the bytes, docs/benchmarks.md the figures).
//!
//! The v2 entries live beside the v1 events, in the same store (`access-log.db` embedded,
//! schema `citydb_access` on PostgreSQL), in table `access_entries`: `seq`, `body`, `hash`.
//! The chain continues the v1 chain: the first v2 entry's `seq` is the v1 log's next position
//! and its predecessor hash the v1 head's hash, so the whole access log is one chain.
//! Three tables are derived from the chain (rebuildable, and checked by the verifier):
//! `access_strings` and `access_citizens` (the dictionaries) and `access_by_citizen` (citizen,
//! ordinal → seq), which serves a citizen's entries in O(log n + page) (on PostgreSQL the same
//! rows in chunks of [`postgres::CHUNK_READS`] a citizen, `access_by_citizen_chunks`). On SQLite
//! the index's newest rows wait in memory and are merged into the table in sorted chunks
//! (`tail.rs`; `access_index_state` says which rows the table holds).
//!
//! Invariants:
//! - An entry is acknowledged only after the transaction holding it (and its dictionary and
//!   index rows) committed durably; concurrent requests are committed together (group commit).
//! - `seq` is gapless and follows commit order; `recorded_at` never decreases.
//! - Every number in a body is defined by that body or an earlier one (checked by the verifier).

pub mod format;
pub mod memory;
mod numbered;
pub mod plan;
pub mod postgres;
pub mod sqlite;
mod tail;
pub mod verify;

use std::sync::Arc;

use citydb_log::{EventLog, LogError};
use uuid::Uuid;

pub use format::MAX_STRING;
pub use memory::MemoryEntries;
pub use plan::Tip;
pub use postgres::PostgresEntries;
pub use sqlite::SqliteEntries;
pub use tail::MergePolicy;
pub use verify::{DerivedDigest, V2Breach, V2Report, verify_entries};

/// What a store's writer queue holds: a checked draft, and where its commit is answered.
pub(crate) type Request = (
    Draft,
    tokio::sync::oneshot::Sender<Result<Committed, AccessError>>,
);

/// Checks `draft`, hands it to a store's writer (as the job `job` makes of it) and waits until
/// the group holding it committed durably (the writers answer only after COMMIT).
pub(crate) async fn submit<J>(
    queue: &tokio::sync::mpsc::Sender<J>,
    draft: Draft,
    job: impl FnOnce(Request) -> J,
) -> Result<Committed, AccessError> {
    draft.check()?;
    let (answer, answered) = tokio::sync::oneshot::channel();
    queue
        .send(job((draft, answer)))
        .await
        .map_err(|_| AccessError::Closed)?;
    answered.await.map_err(|_| AccessError::Closed)?
}

/// Why the access log could not be written or read.
#[derive(Clone, Debug, thiserror::Error)]
pub enum AccessError {
    /// The store failed, classified as the event log's faults are (full, read-only,
    /// unavailable), so that a read withheld for it answers the same code as a failed write.
    #[error("access log: {0}")]
    Storage(#[from] LogError),
    #[error("access log is corrupt: {0}")]
    Corrupt(String),
    #[error("invalid access-log entry: {0}")]
    Invalid(String),
    #[error("the access log is closed")]
    Closed,
}

/// One request's reads, before the writer numbers, interns and chains it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft {
    pub principal: String,
    pub role: String,
    pub end_user: Option<String>,
    pub case: Option<String>,
    pub purpose: Option<String>,
    /// The GraphQL operation (its name, or the field) that read.
    pub operation: String,
    pub correlation_id: Uuid,
    /// Each citizen read and the set of field groups read of them, as one string: the groups'
    /// names sorted and joined with `,` (e.g. `identity,residence`). No citizen twice.
    pub reads: Vec<(Uuid, String)>,
}

impl Draft {
    /// Refuses what the format cannot hold, before the draft joins a group (so that one bad
    /// draft never fails its neighbours).
    pub fn check(&self) -> Result<(), AccessError> {
        if self.reads.is_empty() {
            return Err(AccessError::Invalid("an entry without reads".into()));
        }
        let strings = [&self.principal, &self.role, &self.operation]
            .into_iter()
            .chain(self.end_user.iter())
            .chain(self.case.iter())
            .chain(self.purpose.iter())
            .chain(self.reads.iter().map(|(_, g)| g));
        for s in strings {
            if s.len() > MAX_STRING {
                return Err(AccessError::Invalid(format!(
                    "a string of {} bytes (at most {MAX_STRING})",
                    s.len()
                )));
            }
        }
        let mut citizens: Vec<Uuid> = self.reads.iter().map(|(c, _)| *c).collect();
        citizens.sort_unstable();
        if citizens.windows(2).any(|w| w[0] == w[1]) {
            return Err(AccessError::Invalid("a citizen named twice".into()));
        }
        Ok(())
    }
}

/// An appended entry's place in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Committed {
    pub seq: u64,
    pub hash: [u8; 32],
    pub recorded_at: i64,
}

/// A row of `access_entries`, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    pub seq: u64,
    pub body: Vec<u8>,
    pub hash: [u8; 32],
}

/// A row of the citizen index: the citizen's `ordinal`-th read (0-based) is in entry `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexRow {
    pub citizen: u32,
    pub ordinal: u32,
    pub seq: u64,
}

/// One read of one citizen, resolved for display: the entry's shared fields and this
/// citizen's field groups only (never the other citizens of the entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CitizenRead {
    pub seq: u64,
    /// The citizen's ordinal among its v2 reads (0-based).
    pub ordinal: u32,
    pub hash: [u8; 32],
    pub recorded_at: i64,
    pub correlation_id: Uuid,
    pub principal: String,
    pub role: String,
    pub end_user: Option<String>,
    pub case: Option<String>,
    pub purpose: Option<String>,
    pub operation: String,
    /// The field-group set string (`identity,residence`).
    pub field_groups: String,
}

/// A store of v2 entries.
#[async_trait::async_trait]
pub trait EntryStore: Send + Sync + 'static {
    /// Appends one entry, committed together with the entries appended concurrently; returns
    /// once it is durable.
    async fn append(&self, draft: Draft) -> Result<Committed, AccessError>;

    /// The citizen's reads with ordinal below `before` (all when `None`), newest first, at most
    /// `first`: O(log n + first).
    async fn for_citizen(
        &self,
        citizen: Uuid,
        before: Option<u64>,
        first: usize,
    ) -> Result<Vec<CitizenRead>, AccessError>;

    /// Up to `limit` entries from `seq` on, in order.
    async fn entries(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>, AccessError>;

    /// The first stored entry's seq.
    async fn first_seq(&self) -> Result<Option<u64>, AccessError>;

    /// The last stored entry's seq (the access log's Merkle tree counts its leaves with it).
    async fn last_seq(&self) -> Result<Option<u64>, AccessError>;

    /// The digests of the derived tables as stored (see [`verify`]).
    async fn derived_digest(&self) -> Result<DerivedDigest, AccessError>;
}

/// The access log of a store: the v1 event log (old entries, read and verified) and the v2
/// entries (everything written now).
#[derive(Clone)]
pub struct AccessLogStore {
    pub v1: Arc<dyn EventLog>,
    pub v2: Arc<dyn EntryStore>,
}

/// The field-group set string of a read: sorted, deduplicated, joined with `,`.
pub fn group_set<'a>(groups: impl IntoIterator<Item = &'a str>) -> String {
    let mut v: Vec<&str> = groups.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v.join(",")
}

/// Resolves the read of citizen number `citizen` in `body` (entry `seq`), asking `string` for
/// every string number.
pub(crate) fn resolve(
    body: &format::Body,
    entry: &StoredEntry,
    citizen: u32,
    ordinal: u32,
    string: &mut dyn FnMut(u32) -> Result<String, AccessError>,
) -> Result<CitizenRead, AccessError> {
    let groups = body
        .reads
        .iter()
        .find(|(c, _)| *c == citizen)
        .map(|(_, g)| *g)
        .ok_or_else(|| {
            AccessError::Corrupt(format!(
                "the index names entry {} for citizen {citizen}, which it does not read",
                entry.seq
            ))
        })?;
    let mut opt = |n: Option<u32>| n.map(&mut *string).transpose();
    let end_user = opt(body.end_user)?;
    let case = opt(body.case)?;
    let purpose = opt(body.purpose)?;
    Ok(CitizenRead {
        seq: entry.seq,
        ordinal,
        hash: entry.hash,
        recorded_at: body.recorded_at,
        correlation_id: body.correlation_id,
        principal: string(body.principal)?,
        role: string(body.role)?,
        end_user,
        case,
        purpose,
        operation: string(body.operation)?,
        field_groups: string(groups)?,
    })
}

pub(crate) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
