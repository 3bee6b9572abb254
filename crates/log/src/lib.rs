//! citydb's event log: the vocabulary and the contract of an append-only, hash-chained store of
//! event streams, with no storage engine inside.
//!
//! - [`StreamId`], [`NewEvent`], [`RecordedEvent`], [`ExpectedVersion`]: the vocabulary.
//! - [`EventLog`]: the trait every backend (SQLite in `citydb-sqlite`, PostgreSQL in
//!   `citydb-postgres`, [`memory::MemoryLog`] here) implements; its doc states the contract.
//! - [`backend`]: what every backend shares but does not own: the writer's request queue,
//!   [`backend::plan`] (a write request planned into hashed rows, a stored row decoded) and
//!   [`backend::WriteProbe`] (whether a store accepts writes, for readiness).
//! - [`bulk`]: what a bulk import writes through ([`bulk::BulkSink`]; [`bulk::CopySink`] over
//!   any log).
//! - [`memory`]: an in-memory log, for tests that need a log and as the smallest backend.
//! - [`chain`]: the blake3 hash chain, byte for byte as `docs/audit-format.md` specifies, and the
//!   verifiers that recompute it.
//! - [`Subscription`]: catch-up-then-live delivery over any backend.
//! - [`copy_log`]: migrates (or restores) a whole log into another backend, hash for hash,
//!   through [`EventLog::copy_in`].
//! - [`bloom`]: a blocked Bloom filter ("may this key be in the set?"), for the stores'
//!   listings and the access log's writer.
//! - [`scratch`]: unnamed temporary files, for passes that set data aside on disk.
//! - `conformance` (feature `conformance`): the behaviour suite every backend must pass.

mod append;
pub mod backend;
pub mod bloom;
pub mod bulk;
pub mod chain;
mod copy;
mod error;
mod event;
mod lanes;
mod log;
pub mod memory;
mod redact;
pub mod scratch;
mod stream;
mod subscription;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use append::{
    AppendOutcome, ExpectedVersion, StreamAppend, StreamWritten, validate_append,
    validate_serialised_append,
};
pub use chain::{Breach, Corruption, Hash, LogHead, VerifyReport};
pub use copy::{CopyBase, CopyReport, copy_log, validate_copy};
pub use error::{CopyRefusal, FaultKind, LogError, StorageFault};
pub use event::{MAX_EVENT_TYPE_LEN, Metadata, NewEvent, RecordedEvent};
pub use log::{DEFAULT_MAX_EVENT_SIZE, Direction, EventLog, READ_BATCH, subscribe};
pub use redact::{Redacted, check_redaction};
pub use stream::{MAX_CATEGORY_LEN, StreamId};
pub use subscription::Subscription;
