//! The hash chain: the byte-exact encoding each event's hash covers, and the verifiers that
//! recompute it. `docs/audit-format.md` is the normative description; this module and that
//! document must change together (the test vectors in `tests/audit_vectors.rs` tie them).
//!
//! Invariants a verified log satisfies:
//! - positions are 0, 1, 2, … with no gap;
//! - per stream, versions are 0, 1, 2, … with no gap, in log order;
//! - every event's `data_hash` is blake3 of its stored data;
//! - every event's `hash` is [`event_hash`] of its envelope and links;
//! - `prev_log_hash` is the hash of the event at `position - 1` (zero at 0);
//! - `prev_stream_hash` is the hash of the stream's event at `version - 1` (zero at 0);
//! - `recorded_at` never decreases along the log.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::RecordedEvent;

mod partitions;
mod verify;

pub use verify::{
    EventBatch, LINK_BLOCK_BYTES, LogVerifier, STREAMS_IN_MEMORY, StreamVerifier, VERIFY_BATCH,
};

/// The most redacted positions a [`VerifyReport`] lists (the lowest ones); the count is
/// exact beyond it. Bounds the report's memory whatever a log holds (docs/operations.md,
/// "Verifying").
pub const REDACTIONS_LISTED: usize = 1000;

/// Version of the byte encoding below. Bumped only with a new key-derivation context.
pub const FORMAT_VERSION: u8 = 1;

/// blake3 key-derivation context for event hashes (domain separation: no other hash in
/// citydb, nor in any other program that follows blake3's guidance, shares it).
pub const EVENT_HASH_CONTEXT: &str = "citydb 2026-11 event log v1 event hash";

/// A 32-byte blake3 output.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The link value of a first event: 32 zero bytes.
    pub const ZERO: Hash = Hash([0; 32]);

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    pub fn from_hex(s: &str) -> Option<Hash> {
        blake3::Hash::from_hex(s).ok().map(|h| Hash(*h.as_bytes()))
    }

    /// Reads a hash from stored bytes; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        <[u8; 32]>::try_from(bytes).ok().map(Hash)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Hash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// blake3 of an event's data: what the event hash covers instead of the data itself.
pub fn data_hash(data: &[u8]) -> Hash {
    Hash(*blake3::hash(data).as_bytes())
}

/// The envelope fields an event hash covers, borrowed from wherever the event lives.
#[derive(Clone, Copy, Debug)]
pub struct Envelope<'a> {
    pub position: u64,
    pub stream_id: &'a str,
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub recorded_at: i64,
    pub metadata: &'a [u8],
}

/// An event's hash: blake3 in key-derivation mode with [`EVENT_HASH_CONTEXT`], over
///
/// ```text
/// u8  format version (1)
/// u64 position            u32 len ‖ stream id (UTF-8)   u64 stream version
/// [16] event id            u32 len ‖ event type (UTF-8)  u32 schema version
/// i64 recorded_at (µs)     u32 len ‖ metadata bytes
/// [32] data hash           [32] prev stream hash         [32] prev log hash
/// ```
/// integers big-endian. Lengths are `u32`; the log refuses anything longer long before.
pub fn event_hash(
    env: &Envelope<'_>,
    data_hash: &Hash,
    prev_stream: &Hash,
    prev_log: &Hash,
) -> Hash {
    // Deriving the key from the context string costs a compression per call; a hasher that has
    // already absorbed it is cloned instead (cheap: no input has been absorbed yet).
    static KEYED: std::sync::LazyLock<blake3::Hasher> =
        std::sync::LazyLock::new(|| blake3::Hasher::new_derive_key(EVENT_HASH_CONTEXT));
    // The encoding is assembled in one buffer and absorbed at once: a dozen small `update`s
    // cost more in bookkeeping than the copy (the metadata is the only large field).
    let mut buf = Vec::with_capacity(encoded_len(env));
    encode(&mut buf, env, data_hash, prev_stream, prev_log);
    let mut h = KEYED.clone();
    h.update(&buf);
    Hash(*h.finalize().as_bytes())
}

fn encoded_len(env: &Envelope<'_>) -> usize {
    1 + 8
        + 4
        + env.stream_id.len()
        + 8
        + 16
        + 4
        + env.event_type.len()
        + 4
        + 8
        + 4
        + env.metadata.len()
        + 96
}

/// Appends the bytes [`event_hash`] covers to `buf`.
fn encode(
    buf: &mut Vec<u8>,
    env: &Envelope<'_>,
    data_hash: &Hash,
    prev_stream: &Hash,
    prev_log: &Hash,
) {
    buf.push(FORMAT_VERSION);
    buf.extend_from_slice(&env.position.to_be_bytes());
    push_prefixed(buf, env.stream_id.as_bytes());
    buf.extend_from_slice(&env.stream_version.to_be_bytes());
    buf.extend_from_slice(env.event_id.as_bytes());
    push_prefixed(buf, env.event_type.as_bytes());
    buf.extend_from_slice(&env.schema_version.to_be_bytes());
    buf.extend_from_slice(&env.recorded_at.to_be_bytes());
    push_prefixed(buf, env.metadata);
    buf.extend_from_slice(&data_hash.0);
    buf.extend_from_slice(&prev_stream.0);
    buf.extend_from_slice(&prev_log.0);
}

fn push_prefixed(buf: &mut Vec<u8>, bytes: &[u8]) {
    // Truncation cannot happen: the log's size limit is far below 4 GiB, and a field that long
    // could not have been hashed at append time either.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(bytes);
}

/// An event as the verifier sees it: borrowed, so backends can verify straight from their row
/// buffers without allocating. `data` is `None` for a redacted payload, whose `data_hash` is then
/// taken as stored. Built from a [`RecordedEvent`], empty data is a redacted payload (see
/// [`RecordedEvent::stored_data`]).
#[derive(Clone, Copy, Debug)]
pub struct EventView<'a> {
    pub envelope: Envelope<'a>,
    pub data: Option<&'a [u8]>,
    pub data_hash: Hash,
    pub prev_stream_hash: Hash,
    pub prev_log_hash: Hash,
    pub hash: Hash,
}

impl<'a> From<&'a RecordedEvent> for EventView<'a> {
    fn from(e: &'a RecordedEvent) -> Self {
        EventView {
            envelope: Envelope {
                position: e.position,
                stream_id: e.stream_id.as_str(),
                stream_version: e.stream_version,
                event_id: e.event_id,
                event_type: &e.event_type,
                schema_version: e.schema_version,
                recorded_at: e.recorded_at,
                metadata: &e.metadata,
            },
            data: e.stored_data(),
            data_hash: e.data_hash,
            prev_stream_hash: e.prev_stream_hash,
            prev_log_hash: e.prev_log_hash,
            hash: e.hash,
        }
    }
}

/// The last event of a log: what an auditor writes down to detect a later truncation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogHead {
    pub position: u64,
    pub hash: Hash,
}

/// Why verification failed. Each breach has a stable snake_case [code](Breach::code), the
/// same in every verifier (docs/audit-format.md, "Verifying a log").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Breach {
    /// An event does not carry the next position. The [`Corruption`] names the position
    /// *found* (the event that is there, as every breach names the event whose check failed);
    /// `expected` is the position that was due.
    #[error("expected position {expected}, found {found} (an event is missing or was inserted)")]
    PositionGap { expected: u64, found: u64 },
    #[error("the data does not match its recorded blake3 digest (the payload was changed)")]
    DataChanged,
    #[error(
        "the event hash does not match its envelope (an envelope field or the metadata was changed)"
    )]
    HashMismatch,
    #[error(
        "the link to the previous event of the log is broken (events were removed, inserted or reordered)"
    )]
    LogLinkBroken,
    #[error("the link to the previous event of the stream is broken")]
    StreamLinkBroken,
    #[error("stream {stream} expected version {expected}, found {found}")]
    StreamVersionGap {
        stream: String,
        expected: u64,
        found: u64,
    },
    #[error("the timestamp goes backwards")]
    TimeWentBackwards,
    #[error("the log ends before the recorded head (the tail was truncated)")]
    Truncated,
    #[error("the event at the recorded head has a different hash (history was rewritten)")]
    HeadRewritten,
    /// A table derived from the chain (the access log's citizen index or its dictionaries)
    /// does not match it; the chain itself is intact, and the table can be rebuilt from it.
    #[error("table {table} does not match the chain it is derived from")]
    DerivedTableMismatch { table: String },
}

impl Breach {
    /// The breach's stable code, as printed by `citydb verify` (text and `--format json`),
    /// GraphQL's `Verification.breach` and the Python verifiers in `tools/`. Never changes for
    /// an existing breach; it is the serde tag too (a test holds the two together).
    pub fn code(&self) -> &'static str {
        match self {
            Breach::PositionGap { .. } => "position_gap",
            Breach::DataChanged => "data_changed",
            Breach::HashMismatch => "hash_mismatch",
            Breach::LogLinkBroken => "log_link_broken",
            Breach::StreamLinkBroken => "stream_link_broken",
            Breach::StreamVersionGap { .. } => "stream_version_gap",
            Breach::TimeWentBackwards => "time_went_backwards",
            Breach::Truncated => "truncated",
            Breach::HeadRewritten => "head_rewritten",
            Breach::DerivedTableMismatch { .. } => "derived_table_mismatch",
        }
    }
}

/// The first place where verification failed: the position of the event whose check failed
/// (for `position_gap` the position found, see [`Breach::PositionGap`]); for `truncated`, the
/// recorded head's position, which the log no longer reaches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("position {position}: {breach}")]
pub struct Corruption {
    pub position: u64,
    pub breach: Breach,
}

/// The redacted events a verification passed: their data is gone, their digest is still
/// chained, so the chain is intact — but an auditor must be told which events can no longer
/// be matched to their data.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redactions {
    /// Redacted events among those the report counts (all of them when intact).
    pub count: u64,
    /// Their positions, in increasing order: the lowest [`REDACTIONS_LISTED`] of them.
    pub positions: Vec<u64>,
}

impl Redactions {
    /// Records the redacted event at `position`, which comes after every one recorded so far.
    pub fn record(&mut self, position: u64) {
        self.count += 1;
        if self.positions.len() < REDACTIONS_LISTED {
            self.positions.push(position);
        }
    }

    /// Appends those of a later part of the log.
    pub fn extend(&mut self, later: &Redactions) {
        self.count += later.count;
        let room = REDACTIONS_LISTED.saturating_sub(self.positions.len());
        self.positions
            .extend(later.positions.iter().take(room).copied());
    }

    /// Keeps those below `position` (a run that stopped there). Exact unless every listed
    /// position lies below it and more were counted than listed: which of the unlisted ones
    /// lie below it is not known, and the count stays that of every event checked.
    pub fn truncate_at(&mut self, position: u64) {
        let below = self.positions.partition_point(|&p| p < position);
        let listed_all = self.count == self.positions.len() as u64;
        if listed_all || below < self.positions.len() {
            self.count = below as u64;
        }
        self.positions.truncate(below);
    }
}

/// What a verification run found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Events checked before stopping (all of them when intact).
    pub events: u64,
    /// Distinct streams seen.
    pub streams: u64,
    /// The last verified event.
    pub head: Option<LogHead>,
    /// `None` when the log is intact.
    pub corruption: Option<Corruption>,
    /// The redacted events among those checked: intact, yet their data is gone.
    pub redacted: Redactions,
}

impl VerifyReport {
    pub fn is_intact(&self) -> bool {
        self.corruption.is_none()
    }
}

/// Computes the chain fields of the event appended after `prev` (the log's last event) and
/// `prev_stream` (the stream's last event). Shared by every backend so that they hash
/// identically.
pub struct ChainLink {
    pub data_hash: Hash,
    pub prev_stream_hash: Hash,
    pub prev_log_hash: Hash,
    pub hash: Hash,
}

impl ChainLink {
    pub fn compute(
        env: &Envelope<'_>,
        data: &[u8],
        prev_stream: Hash,
        prev_log: Hash,
    ) -> ChainLink {
        let data_hash = data_hash(data);
        let hash = event_hash(env, &data_hash, &prev_stream, &prev_log);
        ChainLink {
            data_hash,
            prev_stream_hash: prev_stream,
            prev_log_hash: prev_log,
            hash,
        }
    }
}
