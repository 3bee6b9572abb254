//! The states a handler loaded for one decision: [`Record`], the sum of the
//! record kinds' states, and [`Snapshot`], the lookups rules use.

use std::collections::HashMap;

use serde::Serialize;

use crate::business::state::Business;
use crate::citizen::state::Citizen;
use crate::error::DomainError;
use crate::event::Event;
use crate::ids::{BusinessId, CitizenId, ParcelId, RecordId, RecordKind};
use crate::key::{KeyClaim, NaturalKey};
use crate::parcel::state::Parcel;
use crate::target::Target;

/// Any record's state. Stored internally tagged, the tag first; read by a hand-written
/// `Deserialize` that does not buffer the object (`record_json.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Citizen(Citizen),
    Business(Business),
    Parcel(Parcel),
}

impl Record {
    pub fn id(&self) -> RecordId {
        match self {
            Self::Citizen(c) => c.id.into(),
            Self::Business(b) => b.id.into(),
            Self::Parcel(p) => p.id.into(),
        }
    }

    pub fn kind(&self) -> RecordKind {
        self.id().kind()
    }
}

/// The event a redaction targets, as the handler read it from the log for the decision
/// ([`Snapshot::insert_logged`]): its stream, its event hash (hex) and its content
/// (`None` when already blanked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    pub stream: String,
    pub event_hash: String,
    pub event: Option<Event>,
}

/// The states a handler loaded for one decision.
///
/// A record id maps to `Some(record)` or `None` (stream loaded and empty); a
/// missing id means "not loaded" and makes rules that need it return
/// [`DomainError::NotLoaded`]. Keys map to their [`KeyClaim`]
/// (`KeyClaim::default()` for an empty key stream).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    records: HashMap<RecordId, Option<Record>>,
    keys: HashMap<NaturalKey, KeyClaim>,
    /// Events read by log position for a redaction ([`crate::redaction`]).
    logged: HashMap<u64, LoggedEvent>,
}

impl Snapshot {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the loaded state of a record stream (`None` = empty stream).
    pub fn insert_record(&mut self, id: RecordId, state: Option<Record>) {
        self.records.insert(id, state);
    }

    pub fn with_record(mut self, id: RecordId, state: Option<Record>) -> Self {
        self.insert_record(id, state);
        self
    }

    /// Takes a record's loaded state back out (`None`: it was not loaded), so a caller that
    /// lent it for one decision keeps it without a clone.
    pub fn take_record(&mut self, id: RecordId) -> Option<Option<Record>> {
        self.records.remove(&id)
    }

    /// Takes a key's loaded claim back out (`None`: it was not loaded).
    pub fn take_key(&mut self, key: &NaturalKey) -> Option<KeyClaim> {
        self.keys.remove(key)
    }

    /// Records the loaded state of a key stream.
    pub fn insert_key(&mut self, key: NaturalKey, claim: KeyClaim) {
        self.keys.insert(key, claim);
    }

    pub fn with_key(mut self, key: NaturalKey, claim: KeyClaim) -> Self {
        self.insert_key(key, claim);
        self
    }

    /// Records the event a redaction names, as read from the log at `position`.
    pub fn insert_logged(&mut self, position: u64, event: LoggedEvent) {
        self.logged.insert(position, event);
    }

    /// The event read at `position`; `None` when the log has none there.
    pub fn logged(&self, position: u64) -> Option<&LoggedEvent> {
        self.logged.get(&position)
    }

    pub fn record(&self, id: RecordId) -> Result<Option<&Record>, DomainError> {
        self.records
            .get(&id)
            .map(Option::as_ref)
            .ok_or(DomainError::NotLoaded(Target::Record(id)))
    }

    pub fn key(&self, key: &NaturalKey) -> Result<&KeyClaim, DomainError> {
        self.keys
            .get(key)
            .ok_or(DomainError::NotLoaded(Target::Key(*key)))
    }

    /// Follows merge redirects (`MergedInto`) from `id` to the surviving
    /// record, so stored references to a retired duplicate resolve to the
    /// survivor. Returns `NotLoaded` if a record on the way is not loaded.
    pub fn resolve_survivor(&self, id: RecordId) -> Result<RecordId, DomainError> {
        resolve_survivor(id, |r| self.record(r))
    }

    pub(crate) fn ensure_absent(&self, id: RecordId) -> Result<(), DomainError> {
        match self.record(id)? {
            Some(_) => Err(DomainError::RecordExists(id)),
            None => Ok(()),
        }
    }

    pub(crate) fn existing(&self, id: RecordId) -> Result<&Record, DomainError> {
        self.record(id)?.ok_or(DomainError::RecordNotFound(id))
    }

    pub(crate) fn existing_citizen(&self, id: CitizenId) -> Result<&Citizen, DomainError> {
        match self.existing(id.into())? {
            Record::Citizen(c) => Ok(c),
            other => Err(DomainError::WrongRecordKind {
                id: id.into(),
                found: other.kind(),
            }),
        }
    }

    /// Exists and is not a merged-away duplicate.
    pub(crate) fn current_citizen(&self, id: CitizenId) -> Result<&Citizen, DomainError> {
        let c = self.existing_citizen(id)?;
        match c.merged_into {
            Some(survivor) => Err(DomainError::RecordMerged {
                id: id.into(),
                survivor: survivor.into(),
            }),
            None => Ok(c),
        }
    }

    /// Current and alive.
    pub(crate) fn living_citizen(&self, id: CitizenId) -> Result<&Citizen, DomainError> {
        let c = self.current_citizen(id)?;
        if c.is_deceased() {
            Err(DomainError::CitizenDeceased(id))
        } else {
            Ok(c)
        }
    }

    pub(crate) fn current_business(&self, id: BusinessId) -> Result<&Business, DomainError> {
        match self.existing(id.into())? {
            Record::Business(b) => Ok(b),
            other => Err(DomainError::WrongRecordKind {
                id: id.into(),
                found: other.kind(),
            }),
        }
    }

    /// Exists and is not dissolved.
    pub(crate) fn active_business(&self, id: BusinessId) -> Result<&Business, DomainError> {
        let b = self.current_business(id)?;
        if b.is_dissolved() {
            Err(DomainError::BusinessDissolved(id))
        } else {
            Ok(b)
        }
    }

    pub(crate) fn existing_parcel(&self, id: ParcelId) -> Result<&Parcel, DomainError> {
        match self.existing(id.into())? {
            Record::Parcel(p) => Ok(p),
            other => Err(DomainError::WrongRecordKind {
                id: id.into(),
                found: other.kind(),
            }),
        }
    }

    /// Exists and is not retired, split or merged away.
    pub(crate) fn active_parcel(&self, id: ParcelId) -> Result<&Parcel, DomainError> {
        let p = self.existing_parcel(id)?;
        if p.is_active() {
            Ok(p)
        } else {
            Err(DomainError::RecordRetired(id.into()))
        }
    }
}

/// Follows `MergedInto` redirects using any lookup (a snapshot, a read model).
/// Stops at the first record that is not merged; a cycle (impossible through
/// `decide`) is reported as `RecordMerged` on the record where it closes.
pub fn resolve_survivor<'a>(
    id: RecordId,
    lookup: impl Fn(RecordId) -> Result<Option<&'a Record>, DomainError>,
) -> Result<RecordId, DomainError> {
    let mut current = id;
    let mut seen = vec![id];
    loop {
        let Some(Record::Citizen(c)) = lookup(current)? else {
            return Ok(current);
        };
        let Some(survivor) = c.merged_into else {
            return Ok(current);
        };
        let next = RecordId::Citizen(survivor);
        if seen.contains(&next) {
            return Err(DomainError::RecordMerged {
                id: current,
                survivor: next,
            });
        }
        seen.push(next);
        current = next;
    }
}
