//! What a command decided: the events to append, stream by stream, in one
//! atomic append, plus warnings.

use crate::date::Date;
use crate::error::DomainError;
use crate::event::Event;
use crate::ids::{AdminUnitCode, AdminUnitTable, RecordId, UnitCheck};
use crate::key::NaturalKey;
use crate::snapshot::Snapshot;
use crate::target::Target;
use crate::warning::DomainWarning;

/// Events to append to one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub target: Target,
    pub events: Vec<Event>,
}

/// What a command decided. All changes form ONE atomic multi-stream append:
/// either every stream gets its events or none does. Changes are in a
/// deterministic order and each target appears once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub changes: Vec<Change>,
    pub warnings: Vec<DomainWarning>,
}

impl Decision {
    pub(crate) fn emit(&mut self, target: impl Into<Target>, event: Event) {
        let target = target.into();
        match self.changes.iter_mut().find(|c| c.target == target) {
            Some(change) => change.events.push(event),
            None => self.changes.push(Change {
                target,
                events: vec![event],
            }),
        }
    }

    pub(crate) fn warn(&mut self, warning: DomainWarning) {
        self.warnings.push(warning);
    }

    /// Claims `key` for `record`: the key must be free in the snapshot and not
    /// already claimed earlier in this decision.
    pub(crate) fn claim_key(
        &mut self,
        snapshot: &Snapshot,
        key: NaturalKey,
        record: RecordId,
    ) -> Result<(), DomainError> {
        if let Some(holder) = self
            .events_for(&Target::Key(key))
            .iter()
            .find_map(|e| match e {
                Event::KeyClaimed { record, .. } => Some(*record),
                _ => None,
            })
        {
            return Err(DomainError::DuplicateKey { key, holder });
        }
        if let Some(holder) = snapshot.key(&key)?.holder {
            return Err(DomainError::DuplicateKey { key, holder });
        }
        self.emit(key, Event::KeyClaimed { key, record });
        Ok(())
    }

    pub(crate) fn release_key(
        &mut self,
        snapshot: &Snapshot,
        key: NaturalKey,
        record: RecordId,
    ) -> Result<(), DomainError> {
        // Only release what this record holds: a key loaded as held by
        // another record means the snapshot is inconsistent with ours.
        let claim = snapshot.key(&key)?;
        if claim.holder == Some(record) {
            self.emit(key, Event::KeyReleased { key, record });
        }
        Ok(())
    }

    /// Events this decision appends to `target` (empty if none).
    pub fn events_for(&self, target: &Target) -> &[Event] {
        self.changes
            .iter()
            .find(|c| &c.target == target)
            .map(|c| c.events.as_slice())
            .unwrap_or(&[])
    }
}

/// Checks an administrative unit code a fact dated `on` carries against Hải Phòng's units
/// ([`AdminUnitTable::check`]): unknown codes are refused, unverified
/// predecessors accepted with a warning.
pub(crate) fn check_unit(
    code: AdminUnitCode,
    on: Date,
    initial_load: bool,
    d: &mut Decision,
) -> Result<(), DomainError> {
    match AdminUnitTable::hai_phong_2025().check(code, on, initial_load) {
        Ok(UnitCheck::UnverifiedPredecessor) => {
            d.warn(DomainWarning::UnverifiedPredecessorCommune { code });
            Ok(())
        }
        Ok(UnitCheck::Current | UnitCheck::DocumentedPredecessor) => Ok(()),
        Err(unknown) => Err(DomainError::UnknownCode(unknown)),
    }
}
