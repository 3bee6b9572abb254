//! Stewardship rules every record kind shares: direct corrections,
//! four-eyes proposals and their approval, rejection and withdrawal.

use crate::business::state::Business;
use crate::citizen::state::Citizen;
use crate::command::{
    ApproveCorrection, CorrectRecord, ProposeCorrection, RejectCorrection, WithdrawCorrection,
};
use crate::correctable::{Correctable, any_protected, apply_checked};
use crate::decision::Decision;
use crate::error::DomainError;
use crate::event::Event;
use crate::ids::{CorrectionId, RecordId};
use crate::parcel::state::Parcel;
use crate::snapshot::{Record, Snapshot};
use crate::stewardship::{
    Actor, Correction, CorrectionStatus, Corrections, FieldChange, LegalBasis, StewardRole,
};
use crate::text::non_empty;

/// A record as a [`Correctable`], for generic correction rules.
pub(crate) enum AnyCorrectable<'a> {
    Citizen(&'a Citizen),
    Business(&'a Business),
    Parcel(&'a Parcel),
}

/// Runs a correction rule on any existing, non-merged record.
pub(crate) fn stewarded(
    snapshot: &Snapshot,
    id: RecordId,
    rule: impl FnOnce(AnyCorrectable<'_>) -> Result<(), DomainError>,
) -> Result<(), DomainError> {
    match snapshot.existing(id)? {
        Record::Citizen(c) => {
            if let Some(survivor) = c.merged_into {
                return Err(DomainError::RecordMerged {
                    id,
                    survivor: survivor.into(),
                });
            }
            rule(AnyCorrectable::Citizen(c))
        }
        Record::Business(b) => rule(AnyCorrectable::Business(b)),
        Record::Parcel(p) => rule(AnyCorrectable::Parcel(p)),
    }
}

macro_rules! with_correctable {
    ($any:expr, |$r:ident| $body:expr) => {
        match $any {
            AnyCorrectable::Citizen($r) => $body,
            AnyCorrectable::Business($r) => $body,
            AnyCorrectable::Parcel($r) => $body,
        }
    };
}

/// The corrected copy plus canonical old/new values for the event.
fn checked_changes<T: Correctable>(
    snapshot: &Snapshot,
    record: &T,
    changes: &[FieldChange],
    d: &mut Decision,
) -> Result<(T, Vec<FieldChange>), DomainError> {
    let corrected = apply_checked(record, changes)?;
    corrected.cross_check(record, snapshot, changes)?;
    for change in changes {
        corrected.check_codes(&change.field, d)?;
    }
    let canonical = changes
        .iter()
        .map(|c| {
            Ok(FieldChange {
                field: c.field.clone(),
                old: record.get_field(&c.field)?,
                new: corrected.get_field(&c.field)?,
            })
        })
        .collect::<Result<Vec<_>, DomainError>>()?;
    Ok((corrected, canonical))
}

/// Releases the old natural key and claims the new one when a correction
/// changes it, in the same decision as the correction itself.
fn move_key<T: Correctable>(
    snapshot: &Snapshot,
    id: RecordId,
    before: &T,
    after: &T,
    d: &mut Decision,
) -> Result<(), DomainError> {
    if let (Some(old), Some(new)) = (before.natural_key(), after.natural_key())
        && old != new
    {
        d.release_key(snapshot, old, id)?;
        d.claim_key(snapshot, new, id)?;
    }
    Ok(())
}

fn check_text(reason: &str, legal_basis: &LegalBasis) -> Result<String, DomainError> {
    non_empty(&legal_basis.document_number, "legal_basis.document_number")?;
    non_empty(reason, "reason")
}

pub(crate) fn correct(
    snapshot: &Snapshot,
    any: AnyCorrectable<'_>,
    id: RecordId,
    c: &CorrectRecord,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    with_correctable!(any, |record| {
        if let Some(field) = any_protected(record.kind(), &c.changes) {
            return Err(DomainError::ProtectedField { field });
        }
        let reason = check_text(&c.reason, &c.legal_basis)?;
        let (after, changes) = checked_changes(snapshot, record, &c.changes, d)?;
        move_key(snapshot, id, record, &after, d)?;
        d.emit(
            id,
            Event::RecordCorrected {
                changes,
                reason,
                legal_basis: c.legal_basis.clone(),
                steward: actor.id.clone(),
            },
        );
        Ok(())
    })
}

pub(crate) fn propose(
    snapshot: &Snapshot,
    any: AnyCorrectable<'_>,
    c: &ProposeCorrection,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    with_correctable!(any, |record| {
        if record.corrections().contains_key(&c.correction) {
            return Err(DomainError::CorrectionExists(c.correction));
        }
        let reason = check_text(&c.reason, &c.legal_basis)?;
        let (after, changes) = checked_changes(snapshot, record, &c.changes, d)?;
        // Early feedback: a new key already held elsewhere will not be
        // approvable. (Approval checks again; the key may change meanwhile.)
        if let (Some(old), Some(new)) = (record.natural_key(), after.natural_key())
            && old != new
            && let Some(holder) = snapshot.key(&new)?.holder
        {
            return Err(DomainError::DuplicateKey { key: new, holder });
        }
        d.emit(
            c.record,
            Event::CorrectionProposed {
                correction: c.correction,
                changes,
                reason,
                legal_basis: c.legal_basis.clone(),
                steward: actor.id.clone(),
            },
        );
        Ok(())
    })
}

pub(crate) fn pending(
    corrections: &Corrections,
    id: CorrectionId,
) -> Result<&Correction, DomainError> {
    let correction = corrections
        .get(&id)
        .ok_or(DomainError::CorrectionNotFound(id))?;
    if correction.status != CorrectionStatus::Pending {
        return Err(DomainError::CorrectionClosed(id));
    }
    Ok(correction)
}

/// Four-eyes: a supervisor who is not the proposer.
fn check_reviewer(correction: &Correction, actor: &Actor) -> Result<(), DomainError> {
    if actor.role != StewardRole::Supervisor {
        return Err(DomainError::NotSupervisor);
    }
    if actor.id == correction.proposed_by {
        return Err(DomainError::SelfReview);
    }
    Ok(())
}

pub(crate) fn approve(
    snapshot: &Snapshot,
    any: AnyCorrectable<'_>,
    id: RecordId,
    c: &ApproveCorrection,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    with_correctable!(any, |record| {
        let correction = pending(record.corrections(), c.correction)?;
        check_reviewer(correction, actor)?;
        // Old values are re-checked: another correction may have landed since.
        let (after, _) = checked_changes(snapshot, record, &correction.changes, d)?;
        move_key(snapshot, id, record, &after, d)?;
        d.emit(
            id,
            Event::CorrectionApproved {
                correction: c.correction,
                supervisor: actor.id.clone(),
            },
        );
        Ok(())
    })
}

pub(crate) fn reject(
    any: AnyCorrectable<'_>,
    c: &RejectCorrection,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    with_correctable!(any, |record| {
        let correction = pending(record.corrections(), c.correction)?;
        check_reviewer(correction, actor)?;
        let reason = non_empty(&c.reason, "reason")?;
        d.emit(
            c.record,
            Event::CorrectionRejected {
                correction: c.correction,
                supervisor: actor.id.clone(),
                reason,
            },
        );
        Ok(())
    })
}

pub(crate) fn withdraw(
    any: AnyCorrectable<'_>,
    c: &WithdrawCorrection,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    with_correctable!(any, |record| {
        let correction = pending(record.corrections(), c.correction)?;
        if actor.id != correction.proposed_by {
            return Err(DomainError::NotProposer);
        }
        d.emit(
            c.record,
            Event::CorrectionWithdrawn {
                correction: c.correction,
                steward: actor.id.clone(),
            },
        );
        Ok(())
    })
}
