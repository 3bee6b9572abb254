//! Folding events into state: records ([`evolve`], [`replay`]) and key
//! streams ([`evolve_key`], [`replay_key`]). This is the dispatch over
//! record kinds on the read side: each kind folds its own events
//! (`citizen::evolve`, ...), stewardship events are folded here once.

use crate::business::state::Business;
use crate::citizen::state::Citizen;
use crate::correctable::{Correctable, apply_unchecked};
use crate::correction::pending;
use crate::decision::Decision;
use crate::error::DomainError;
use crate::event::{Event, EvolveError};
use crate::ids::{CorrectionId, RecordKind};
use crate::key::KeyClaim;
use crate::parcel::state::Parcel;
use crate::snapshot::{Record, Snapshot};
use crate::stewardship::{Correction, CorrectionStatus};
use crate::target::Target;

fn apply_stewardship<T: Correctable>(record: &mut T, event: &Event) -> Result<(), EvolveError> {
    let bad = |e: DomainError| EvolveError::Correction(e.to_string());
    match event {
        Event::RecordCorrected { changes, .. } => apply_unchecked(record, changes).map_err(bad)?,
        Event::CorrectionProposed {
            correction,
            changes,
            reason,
            legal_basis,
            steward,
        } => {
            if record.corrections().contains_key(correction) {
                return Err(EvolveError::Inconsistent("correction proposed twice"));
            }
            record.corrections_mut().insert(
                *correction,
                Correction {
                    id: *correction,
                    changes: changes.clone(),
                    reason: reason.clone(),
                    legal_basis: legal_basis.clone(),
                    proposed_by: steward.clone(),
                    status: CorrectionStatus::Pending,
                },
            );
        }
        Event::CorrectionApproved {
            correction,
            supervisor,
        } => {
            let changes = pending(record.corrections(), *correction)
                .map_err(|_| {
                    EvolveError::Inconsistent("approval of a correction that is not pending")
                })?
                .changes
                .clone();
            apply_unchecked(record, &changes).map_err(bad)?;
            set_status(
                record,
                *correction,
                CorrectionStatus::Approved {
                    by: supervisor.clone(),
                },
            )?;
        }
        Event::CorrectionRejected {
            correction,
            supervisor,
            reason,
        } => {
            set_status(
                record,
                *correction,
                CorrectionStatus::Rejected {
                    by: supervisor.clone(),
                    reason: reason.clone(),
                },
            )?;
        }
        Event::CorrectionWithdrawn { correction, .. } => {
            set_status(record, *correction, CorrectionStatus::Withdrawn)?;
        }
        other => {
            return Err(EvolveError::WrongStream {
                event_type: other.event_type(),
                stream: "record",
            });
        }
    }
    Ok(())
}

fn set_status<T: Correctable>(
    record: &mut T,
    id: CorrectionId,
    status: CorrectionStatus,
) -> Result<(), EvolveError> {
    match record.corrections_mut().get_mut(&id) {
        Some(c) if c.status == CorrectionStatus::Pending => {
            c.status = status;
            Ok(())
        }
        _ => Err(EvolveError::Inconsistent(
            "closing a correction that is not pending",
        )),
    }
}

/// Folds one event into a record's state. The first event of a stream must
/// be a registration. Returns an error (never panics) for streams `decide`
/// could not have produced.
pub fn evolve(state: Option<Record>, event: &Event) -> Result<Record, EvolveError> {
    let Some(mut record) = state else {
        return registration(event).ok_or(EvolveError::NotARegistration(event.event_type()));
    };
    if registration(event).is_some() {
        return Err(EvolveError::AlreadyRegistered(event.event_type()));
    }
    if crate::redaction::is_privacy(event) {
        crate::redaction::evolve(record.privacy_mut(), event).map_err(EvolveError::Inconsistent)?;
    } else if event.is_stewardship() {
        match &mut record {
            Record::Citizen(c) => apply_stewardship(c, event)?,
            Record::Business(b) => apply_stewardship(b, event)?,
            Record::Parcel(p) => apply_stewardship(p, event)?,
        }
    } else {
        match &mut record {
            Record::Citizen(c) => c.apply(event)?,
            Record::Business(b) => b.apply(event)?,
            Record::Parcel(p) => p.apply(event)?,
        }
    }
    Ok(record)
}

/// The record a registration event starts; `None` for any other event.
/// (A match over every kind, so a new kind cannot be forgotten here.)
fn registration(event: &Event) -> Option<Record> {
    RecordKind::ALL.into_iter().find_map(|kind| match kind {
        RecordKind::Citizen => Citizen::registered(event).map(Record::Citizen),
        RecordKind::Business => Business::registered(event).map(Record::Business),
        RecordKind::Parcel => Parcel::registered(event).map(Record::Parcel),
    })
}

/// Applies one key-stream event. Pure and total over well-formed streams;
/// anything else is an [`EvolveError`] (a corrupt or misrouted stream).
pub fn evolve_key(state: Option<KeyClaim>, event: &Event) -> Result<KeyClaim, EvolveError> {
    let mut claim = state.unwrap_or_default();
    match event {
        Event::KeyClaimed { record, .. } => {
            if claim.holder.is_some() {
                return Err(EvolveError::Inconsistent("key claimed while already held"));
            }
            claim.holder = Some(*record);
        }
        Event::KeyReleased { record, .. } => {
            if claim.holder != Some(*record) {
                return Err(EvolveError::Inconsistent(
                    "key released by a record that does not hold it",
                ));
            }
            claim.holder = None;
            claim.past_holders.push(*record);
        }
        other => {
            return Err(EvolveError::WrongStream {
                event_type: other.event_type(),
                stream: "key",
            });
        }
    }
    Ok(claim)
}

/// Folds a whole stream from scratch; `None` for an empty stream.
pub fn replay<'a>(
    events: impl IntoIterator<Item = &'a Event>,
) -> Result<Option<Record>, EvolveError> {
    events
        .into_iter()
        .try_fold(None, |state, event| evolve(state, event).map(Some))
}

/// Folds a whole key stream from scratch.
pub fn replay_key<'a>(
    events: impl IntoIterator<Item = &'a Event>,
) -> Result<KeyClaim, EvolveError> {
    events
        .into_iter()
        .try_fold(KeyClaim::default(), |state, event| {
            evolve_key(Some(state), event)
        })
}

impl Snapshot {
    /// Folds a decision into the snapshot (for in-memory handlers and tests).
    pub fn apply(&mut self, decision: &Decision) -> Result<(), EvolveError> {
        for change in &decision.changes {
            match change.target {
                Target::Record(id) => {
                    let mut state = self.record(id).ok().flatten().cloned();
                    for event in &change.events {
                        state = Some(evolve(state, event)?);
                    }
                    self.insert_record(id, state);
                }
                Target::Key(key) => {
                    let mut state = self.key(&key).ok().cloned();
                    for event in &change.events {
                        state = Some(evolve_key(state, event)?);
                    }
                    self.insert_key(key, state.unwrap_or_default());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::ids::{CitizenId, RecordId};
    use crate::key::NaturalKey;

    #[test]
    fn claims_and_releases() {
        let key: NaturalKey = "pin:035199000123".parse().unwrap();
        let a = RecordId::Citizen(CitizenId(Uuid::from_u128(1)));
        let b = RecordId::Citizen(CitizenId(Uuid::from_u128(2)));
        let claimed = evolve_key(None, &Event::KeyClaimed { key, record: a }).unwrap();
        assert_eq!(claimed.holder, Some(a));
        assert!(evolve_key(Some(claimed.clone()), &Event::KeyClaimed { key, record: b }).is_err());
        assert!(
            evolve_key(
                Some(claimed.clone()),
                &Event::KeyReleased { key, record: b }
            )
            .is_err()
        );
        let released = evolve_key(Some(claimed), &Event::KeyReleased { key, record: a }).unwrap();
        assert_eq!(
            released,
            KeyClaim {
                holder: None,
                past_holders: vec![a]
            }
        );
    }
}
