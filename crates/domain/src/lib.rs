//! # citydb-domain
//!
//! The registers of Hải Phòng's shared master database — citizens,
//! businesses and land parcels — as pure rules. This crate validates
//! Vietnamese identifiers (PIN, enterprise code, commune codes, parcel keys,
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

pub mod business;
pub mod citizen;
pub mod command;
pub mod date;
pub mod decision;
pub mod error;
pub mod event;
pub mod geometry;
pub mod ids;
pub mod key;
pub mod name;
pub mod parcel;
pub mod quantity;
pub mod stewardship;
pub mod text;

pub use command::{Command, Reads};
pub use date::{Date, DateError, PartialDate};
pub use decision::{
    Change, Decision, DomainWarning, Record, Snapshot, Target, decide, evolve, replay, replay_key,
    resolve_survivor,
};
pub use error::DomainError;
pub use event::{Event, EvolveError, UpcastError, upcast};
pub use ids::*;
pub use key::{KEY_NAMESPACE, KeyClaim, NaturalKey, evolve_key};
pub use name::{PersonName, exact_key, folded_key, search_key};
pub use quantity::{Area, Share, Vnd};
pub use stewardship::{Actor, FieldChange, LegalBasis, StewardRole};

#[cfg(test)]
mod tests;
