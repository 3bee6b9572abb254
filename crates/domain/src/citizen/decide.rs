//! The citizen register's rules: what each command appends, or why not.

use serde_json::Value;
use uuid::Uuid;

use crate::citizen::commands::{
    ChangeCitizenName, ChangeResidence, IssueIdentityCard, MergeCitizens, RecordDeath,
    RegisterCitizen, RegisterDivorce, RegisterMarriage, SetParents,
};
use crate::command::ProposeCorrection;
use crate::decision::{Decision, check_unit};
use crate::error::DomainError;
use crate::event::Event;
use crate::ids::{CitizenId, CorrectionId};
use crate::key::{KEY_NAMESPACE, NaturalKey};
use crate::origin::RegistrationOrigin;
use crate::snapshot::Snapshot;
use crate::stewardship::{Actor, FieldChange};
use crate::text::non_empty;

fn check_parents(
    snapshot: &Snapshot,
    child: CitizenId,
    father: Option<CitizenId>,
    mother: Option<CitizenId>,
) -> Result<(), DomainError> {
    if father.is_some() && father == mother {
        return Err(DomainError::DuplicateEntry {
            what: "parent",
            value: father.map(|f| f.to_string()).unwrap_or_default(),
        });
    }
    for parent in [father, mother].into_iter().flatten() {
        if parent == child {
            return Err(DomainError::SameCitizen(child));
        }
        // Deceased parents are fine; merged duplicates must be replaced by the survivor.
        snapshot.current_citizen(parent)?;
    }
    Ok(())
}

pub(crate) fn register(
    snapshot: &Snapshot,
    c: &RegisterCitizen,
    d: &mut Decision,
) -> Result<(), DomainError> {
    snapshot.ensure_absent(c.citizen.into())?;
    c.pin
        .check_against(c.sex, c.birth_date.year())
        .map_err(DomainError::PinMismatch)?;
    if let RegistrationOrigin::InitialLoad { source } = &c.origin {
        non_empty(source, "origin.source")?;
    }
    let initial_load = matches!(c.origin, RegistrationOrigin::InitialLoad { .. });
    check_unit(c.birth_place, c.birth_date.earliest(), initial_load, d)?;
    check_parents(snapshot, c.citizen, c.father, c.mother)?;
    d.claim_key(snapshot, NaturalKey::Pin(c.pin), c.citizen.into())?;
    d.emit(
        c.citizen,
        Event::CitizenRegistered {
            citizen: c.citizen,
            pin: c.pin,
            name: c.name.clone(),
            sex: c.sex,
            birth_date: c.birth_date,
            birth_place: c.birth_place,
            father: c.father,
            mother: c.mother,
            origin: c.origin.clone(),
        },
    );
    Ok(())
}

/// The proposal a legal change of name makes: one `name.*` change per part
/// that differs, reason "legal change of name", the command's legal basis.
pub(crate) fn name_change_proposal(
    snapshot: &Snapshot,
    c: &ChangeCitizenName,
) -> Result<ProposeCorrection, DomainError> {
    let citizen = snapshot.living_citizen(c.citizen)?;
    non_empty(
        &c.legal_basis.document_number,
        "legal_basis.document_number",
    )?;
    if citizen.name == c.name {
        return Err(DomainError::NoOpChange {
            field: "name".to_owned(),
        });
    }
    let parts = [
        ("name.family", citizen.name.family(), c.name.family()),
        ("name.middle", citizen.name.middle(), c.name.middle()),
        ("name.given", citizen.name.given(), c.name.given()),
    ];
    let changes = parts
        .into_iter()
        .filter(|(_, old, new)| old != new)
        .map(|(field, old, new)| FieldChange {
            field: field.to_owned(),
            old: Value::from(old),
            new: Value::from(new),
        })
        .collect();
    // Deterministic, so that the same request always proposes under the same
    // id; the prefix keeps it apart from natural-key ids in the same namespace.
    let derived = || {
        let seed = format!(
            "name-change:{}:{}:{}:{}",
            c.citizen,
            c.legal_basis.document_number,
            c.legal_basis.document_date,
            c.name.full()
        );
        CorrectionId(Uuid::new_v5(&KEY_NAMESPACE, seed.as_bytes()))
    };
    Ok(ProposeCorrection {
        record: c.citizen.into(),
        correction: c.correction.unwrap_or_else(derived),
        changes,
        reason: "legal change of name".to_owned(),
        legal_basis: c.legal_basis.clone(),
    })
}

pub(crate) fn change_residence(
    snapshot: &Snapshot,
    c: &ChangeResidence,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let citizen = snapshot.living_citizen(c.citizen)?;
    citizen.check_after_birth(c.since.into())?;
    check_unit(c.commune, c.since, false, d)?;
    let address = non_empty(&c.address, "address")?;
    d.emit(
        c.citizen,
        Event::ResidenceChanged {
            kind: c.kind,
            commune: c.commune,
            address,
            since: c.since,
        },
    );
    Ok(())
}

pub(crate) fn marry(
    snapshot: &Snapshot,
    c: &RegisterMarriage,
    d: &mut Decision,
) -> Result<(), DomainError> {
    if c.citizen == c.spouse {
        return Err(DomainError::SameCitizen(c.citizen));
    }
    for (me, other) in [(c.citizen, c.spouse), (c.spouse, c.citizen)] {
        let person = snapshot.living_citizen(me)?;
        if person.marriage.is_some() {
            return Err(DomainError::AlreadyMarried(me));
        }
        person.check_after_birth(c.date.into())?;
        d.emit(
            me,
            Event::MarriageRegistered {
                spouse: other,
                date: c.date,
            },
        );
    }
    Ok(())
}

pub(crate) fn divorce(
    snapshot: &Snapshot,
    c: &RegisterDivorce,
    d: &mut Decision,
) -> Result<(), DomainError> {
    if c.citizen == c.spouse {
        return Err(DomainError::SameCitizen(c.citizen));
    }
    for (me, other) in [(c.citizen, c.spouse), (c.spouse, c.citizen)] {
        let person = snapshot.living_citizen(me)?;
        if person.marriage.as_ref().map(|m| m.spouse) != Some(other) {
            return Err(DomainError::NotMarried {
                citizen: c.citizen,
                spouse: c.spouse,
            });
        }
        d.emit(
            me,
            Event::DivorceRegistered {
                spouse: other,
                date: c.date,
            },
        );
    }
    Ok(())
}

pub(crate) fn set_parents(
    snapshot: &Snapshot,
    c: &SetParents,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let citizen = snapshot.living_citizen(c.citizen)?;
    check_parents(snapshot, c.citizen, c.father, c.mother)?;
    if citizen.father == c.father && citizen.mother == c.mother {
        return Err(DomainError::NoOpChange {
            field: "parents".to_owned(),
        });
    }
    d.emit(
        c.citizen,
        Event::ParentsSet {
            father: c.father,
            mother: c.mother,
        },
    );
    Ok(())
}

pub(crate) fn issue_card(
    snapshot: &Snapshot,
    c: &IssueIdentityCard,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let citizen = snapshot.living_citizen(c.citizen)?;
    if c.number != citizen.pin {
        return Err(DomainError::CardNumberMismatch);
    }
    citizen.check_after_birth(c.issue_date.into())?;
    let place = non_empty(&c.place, "place")?;
    d.emit(
        c.citizen,
        Event::IdentityCardIssued {
            number: c.number,
            issue_date: c.issue_date,
            place,
        },
    );
    Ok(())
}

pub(crate) fn record_death(
    snapshot: &Snapshot,
    c: &RecordDeath,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let citizen = snapshot.living_citizen(c.citizen)?;
    citizen.check_after_birth(c.date)?;
    d.emit(c.citizen, Event::CitizenDeceased { date: c.date });
    // The surviving spouse is widowed: the spouse is known only from state,
    // so it may not be in the snapshot yet (NotLoaded asks the handler).
    if let Some(marriage) = &citizen.marriage {
        let spouse = snapshot.existing_citizen(marriage.spouse)?;
        let linked_back = spouse
            .marriage
            .as_ref()
            .is_some_and(|m| m.spouse == c.citizen);
        if linked_back && !spouse.is_deceased() && spouse.merged_into.is_none() {
            d.emit(
                marriage.spouse,
                Event::SpouseDeceased {
                    spouse: c.citizen,
                    date: c.date,
                },
            );
        }
    }
    Ok(())
}

pub(crate) fn merge(
    snapshot: &Snapshot,
    c: &MergeCitizens,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    if c.survivor == c.duplicate {
        return Err(DomainError::SameCitizen(c.survivor));
    }
    snapshot.current_citizen(c.survivor)?;
    snapshot.current_citizen(c.duplicate)?;
    let reason = non_empty(&c.reason, "reason")?;
    non_empty(
        &c.legal_basis.document_number,
        "legal_basis.document_number",
    )?;
    d.emit(
        c.duplicate,
        Event::MergedInto {
            survivor: c.survivor,
            reason,
            legal_basis: c.legal_basis.clone(),
            steward: actor.id.clone(),
        },
    );
    d.emit(
        c.survivor,
        Event::Absorbed {
            duplicate: c.duplicate,
        },
    );
    Ok(())
}
