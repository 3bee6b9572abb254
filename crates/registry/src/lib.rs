//! citydb's command handler: the one place where commands become events.
//!
//! [`Registry::execute`] drives the pure rules of `citydb-domain` against an
//! [`EventLog`](citydb_log::EventLog):
//!
//! 1. load every stream the command reads (`Command::reads`), folding each with `upcast` +
//!    `evolve` / `evolve_key` and remembering its version;
//! 2. `decide`; when the rules ask for a stream known only from state (`NOT_LOADED`: a spouse
//!    on death, the new key of an approved PIN correction) load it and decide again;
//! 3. append the decision as ONE atomic multi-stream append, holding every stream read to the
//!    version it was read at, plus a `command-<command_id>` marker that makes execution
//!    idempotent;
//! 4. on an expected-version conflict, reload and decide again (bounded).
//!
//! The readers ([`Registry::load_record`], [`Registry::load_record_as_of`],
//! [`Registry::load_key`], [`Registry::history`]) fold streams the same way, and [`fold`]
//! exposes that folding to anyone rebuilding state from the log.
//!
//! [`BulkRegistry`] answers the same requests for a bulk import, where one process is the
//! store's only writer: from state held in memory, through a `citydb_log::bulk::BulkSink`.
//!
//! See `docs/domain.md`, "Command handler", for the protocol and its guarantees.

pub mod bulk;
pub mod correction_requests;
mod error;
pub mod fold;
mod redaction;
mod registry;
mod request;
mod spill;

pub use bulk::{BulkRegistry, DEFAULT_STATES_IN_MEMORY};
pub use correction_requests::{
    RequestExecution, RequestRegistryError, decode_request_event, fold_request, request_stream,
};
pub use error::RegistryError;
pub use fold::{
    dated, decode, fold_key, fold_record, fold_record_until, key_stream, known_events,
    record_stream, stream_of,
};
pub use redaction::Blanked;
pub use registry::{DEFAULT_MAX_RETRIES, LoadedRecord, MAX_EXTRA_READS, Registry, command_stream};
// The request types are the domain's (one type for the API, the import and the fixtures);
// re-exported so a caller of the registry needs one import.
pub use citydb_domain::request::{CommandContext, CommandRequest, ExpectedRecordVersion};
pub use request::{
    COMMAND_CATEGORY, COMMAND_EXECUTED, COMMAND_EXECUTED_VERSION, CommandExecuted, Executed,
    StreamChange, Warning, metadata_of,
};

#[cfg(test)]
mod tests;
