//! Valid time (issue 16, item 1): the date from which an event's fact holds in the world, as
//! opposed to when citydb recorded it (the log position and `recorded_at`, the "as known at"
//! axis every as-of read already uses).
//!
//! Where the date comes from, in order ([`valid_from`]):
//! 1. **The event's data**, where the domain already states it: a residence's `since`, a
//!    death's `date`, a marriage's `date`, a transfer's contract `date`, a birth for a
//!    registration, … — [`ValidFrom::Stated`] names the field.
//! 2. **`effective_at` in the event's metadata** (hashed like the rest of the metadata), which a
//!    command without such a date may carry (`CommandContext::effective_at`): a
//!    parents' declaration, a parcel registered from the date of its cadastral survey —
//!    [`ValidFrom::Effective`]. A command whose events state their own date refuses one
//!    ([`Command::states_its_date`](crate::Command::states_its_date)): two dates for one fact
//!    would leave the reader to guess which holds.
//! 3. **The day it was recorded**, in Vietnam's time zone (UTC+7) — [`ValidFrom::Recorded`].
//!
//! Corrections say which kind they are: one that **fixes the past** (the corrected value held
//! all along, wherever the wrong one was recorded — every correction made before valid time
//! existed is one) carries no `effective_at` and is [`ValidFrom::FixesPast`]; one that
//! **changes from a date** carries it and is [`ValidFrom::Effective`]. A proposal carries the
//! kind its approval will have; the approval takes it ([`ValidFrom::AsProposed`]). Keys, proposals still pending, redactions and restrictions are
//! not facts about the record's subject: they hold only on the recorded axis
//! ([`ValidFrom::NotAFact`]).
//!
//! Nothing stored is rewritten: every date above is read from payloads and metadata as they
//! were written, so logs written before valid time answer with their recorded days and their
//! corrections fix the past.
//!
//! [`from`] dates one event; [`fold`] folds a record's events on the valid axis.

mod fold;
mod from;

pub use fold::{
    Dated, Period, TimelineError, ValidKey, placements, state_as_known, state_valid_at, timeline,
    timeline_fields,
};
pub use from::{ValidFrom, recorded_on, valid_from};
