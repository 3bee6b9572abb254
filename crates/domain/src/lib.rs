//! # citydb-domain
//!
//! The registers of Hải Phòng's shared master database — citizens,
//! businesses and land parcels — as pure rules. This crate validates
//! Vietnamese identifiers (PIN, enterprise code, administrative unit codes, parcel keys,
//! land-use codes), decides what a command appends to which event streams,
//! and folds events back into record state. It does no I/O: no storage, no
//! clock, no randomness. Ids and dates arrive in commands, so [`decide`] and
//! [`evolve`] are deterministic functions a handler can drive generically:
//!
//! 1. [`Command::reads`] names the record and key streams to load;
//! 2. the handler folds them with [`replay`] / [`replay_key`] into a [`Snapshot`];
//! 3. [`decide`] returns a [`Decision`] — one atomic multi-stream append — or a
//!    typed [`DomainError`] with a stable [`DomainError::code`];
//! 4. the handler appends every [`Change`] with expected versions; stream ids
//!    come from [`Target::stream_id`].
//!
//! Stored events are read back through [`upcast`], so old schema versions
//! keep working. See `docs/domain.md` for the rules and their legal sources.

// Layers, bottom up (no module imports one above it; `tests/layering.rs`
// checks there is no import cycle):
// 1. values: ids, date, name, text, quantity, geometry, key, target, error,
//    warning, origin, stewardship (correction values and field lists);
// 2. each record kind's state and command structs (`<kind>::state`,
//    `<kind>::commands`);
// 3. the enums over all kinds: event, command, request (a command as
//    sent); then snapshot (`Record`, `Snapshot`), decision, correctable;
// 4. each record kind's rules (`<kind>::decide`), fold (`<kind>::evolve`)
//    and correctable fields (`<kind>::fields`);
// 5. the dispatch over kinds: decide, correction (shared stewardship rules),
//    evolve.
// Beside them: calendar (working days, a value layer) and correction_request
// (citizens' requests, their own streams; uses citizen state and stewardship).
pub mod business;
pub mod calendar;
pub mod citizen;
pub mod command;
mod command_json;
mod correctable;
mod correction;
pub mod correction_request;
pub mod date;
mod decide;
pub mod decision;
pub mod error;
pub mod event;
pub mod evolve;
pub mod geometry;
pub mod ids;
pub mod key;
pub mod name;
pub mod origin;
pub mod parcel;
pub mod privacy;
pub mod quantity;
mod record_json;
pub mod redaction;
pub mod request;
pub mod snapshot;
pub mod stewardship;
mod tagged;
pub mod target;
pub mod text;
mod text_fits;
mod text_form;
pub mod valid_time;
pub mod warning;

pub use command::{Command, Reads};
pub use date::{Date, DateError, PartialDate};
pub use decide::decide;
pub use decision::{Change, Decision};
pub use error::DomainError;
pub use event::{Event, EvolveError, UpcastError, upcast, upcast_slice};
pub use evolve::{evolve, evolve_key, replay, replay_key};
pub use ids::*;
pub use key::{KEY_NAMESPACE, KeyClaim, NaturalKey};
pub use name::{PersonName, exact_key, folded_key, search_key};
pub use quantity::{Area, Share, Vnd};
pub use request::{CommandContext, CommandRequest, ExpectedRecordVersion};
pub use snapshot::{Record, Snapshot, resolve_survivor};
pub use stewardship::{Actor, FieldChange, LegalBasis, StewardRole};
pub use target::Target;
pub use warning::DomainWarning;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
