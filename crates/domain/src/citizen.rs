//! Citizen records: state, commands, rules and evolution.
//!
//! Invariants kept by `decide`:
//! * the PIN agrees with the recorded sex and birth year, and is unique (key stream);
//! * a marriage links both records in one decision, and only two living,
//!   unmarried, distinct citizens marry;
//! * a deceased citizen gets no further events except corrections and merge;
//! * a citizen merged into a survivor is read-only.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::date::{Date, PartialDate};
use crate::decision::{Decision, Snapshot};
use crate::error::DomainError;
use crate::event::{Event, EvolveError};
use uuid::Uuid;

use crate::command::ProposeCorrection;
use crate::decision::check_unit;
use crate::ids::{
    AdminUnitCode, CitizenId, CorrectionId, PersonalIdNumber, RecordId, RecordKind, Sex,
};
use crate::key::{KEY_NAMESPACE, NaturalKey};
use crate::name::{PersonName, normalise_text};
use crate::stewardship::{
    Actor, Correctable, Corrections, FieldChange, LegalBasis, parse_field, to_field_value,
};

/// How a record entered the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[serde(deny_unknown_fields)]
pub enum RegistrationOrigin {
    /// A registration made in citydb (birth registration, new enterprise).
    Registration,
    /// Loaded from an existing register; `source` names it.
    InitialLoad { source: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResidenceKind {
    Permanent,
    Temporary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Residence {
    pub commune: AdminUnitCode,
    pub address: String,
    pub since: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityCard {
    /// Always the holder's PIN.
    pub number: PersonalIdNumber,
    pub issue_date: Date,
    pub place: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marriage {
    pub spouse: CitizenId,
    pub since: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LifeStatus {
    Alive,
    Deceased { date: PartialDate },
}

/// A citizen's current state, folded from the citizen's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citizen {
    pub id: CitizenId,
    pub pin: PersonalIdNumber,
    pub name: PersonName,
    pub sex: Sex,
    pub birth_date: PartialDate,
    pub birth_place: AdminUnitCode,
    pub father: Option<CitizenId>,
    pub mother: Option<CitizenId>,
    pub permanent_residence: Option<Residence>,
    pub temporary_residence: Option<Residence>,
    /// The current marriage; cleared by divorce or the spouse's death.
    pub marriage: Option<Marriage>,
    pub identity_card: Option<IdentityCard>,
    pub life: LifeStatus,
    /// Set when this record was a duplicate: it is read-only from then on.
    pub merged_into: Option<CitizenId>,
    /// Duplicates merged into this record.
    pub absorbed: Vec<CitizenId>,
    pub origin: RegistrationOrigin,
    pub corrections: Corrections,
}

impl Citizen {
    pub fn is_deceased(&self) -> bool {
        matches!(self.life, LifeStatus::Deceased { .. })
    }

    fn check_after_birth(&self, date: PartialDate) -> Result<(), DomainError> {
        if date.compare(&self.birth_date) == Some(std::cmp::Ordering::Less) {
            return Err(DomainError::DateBeforeBirth {
                citizen: self.id,
                date,
            });
        }
        Ok(())
    }
}

// --- commands ---------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterCitizen {
    pub citizen: CitizenId,
    pub pin: PersonalIdNumber,
    pub name: PersonName,
    pub sex: Sex,
    pub birth_date: PartialDate,
    pub birth_place: AdminUnitCode,
    #[serde(default)]
    pub father: Option<CitizenId>,
    #[serde(default)]
    pub mother: Option<CitizenId>,
    pub origin: RegistrationOrigin,
}

/// A legal change of name registered by the civil-status office (not a
/// correction of a wrongly recorded one). The name is a protected field, so
/// this does not rename: it proposes the change (`CorrectionProposed` on
/// `name.*`, with the civil-status decision as legal basis), and a supervisor
/// other than the proposer approves it with `ApproveCorrection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeCitizenName {
    pub citizen: CitizenId,
    pub name: PersonName,
    pub legal_basis: LegalBasis,
    /// The proposal's id; derived from the citizen, the legal basis and the
    /// new name when absent (see [`name_change_proposal`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<CorrectionId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeResidence {
    pub citizen: CitizenId,
    pub kind: ResidenceKind,
    pub commune: AdminUnitCode,
    pub address: String,
    pub since: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterMarriage {
    pub citizen: CitizenId,
    pub spouse: CitizenId,
    pub date: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterDivorce {
    pub citizen: CitizenId,
    pub spouse: CitizenId,
    pub date: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetParents {
    pub citizen: CitizenId,
    #[serde(default)]
    pub father: Option<CitizenId>,
    #[serde(default)]
    pub mother: Option<CitizenId>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueIdentityCard {
    pub citizen: CitizenId,
    pub number: PersonalIdNumber,
    pub issue_date: Date,
    pub place: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordDeath {
    pub citizen: CitizenId,
    pub date: PartialDate,
}

/// Retire `duplicate` into `survivor` (two records of one person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeCitizens {
    pub survivor: CitizenId,
    pub duplicate: CitizenId,
    pub reason: String,
    pub legal_basis: LegalBasis,
}

// --- rules ------------------------------------------------------------------

pub(crate) fn non_empty(text: &str, what: &'static str) -> Result<String, DomainError> {
    let t = normalise_text(text);
    if t.is_empty() {
        Err(DomainError::MissingValue(what))
    } else {
        Ok(t)
    }
}

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

// --- evolution --------------------------------------------------------------

impl Citizen {
    pub(crate) fn apply(&mut self, event: &Event) -> Result<(), EvolveError> {
        match event {
            Event::CitizenNameChanged { name, .. } => self.name = name.clone(),
            Event::ResidenceChanged {
                kind,
                commune,
                address,
                since,
            } => {
                let residence = Some(Residence {
                    commune: *commune,
                    address: address.clone(),
                    since: *since,
                });
                match kind {
                    ResidenceKind::Permanent => self.permanent_residence = residence,
                    ResidenceKind::Temporary => self.temporary_residence = residence,
                }
            }
            Event::MarriageRegistered { spouse, date } => {
                self.marriage = Some(Marriage {
                    spouse: *spouse,
                    since: *date,
                });
            }
            Event::DivorceRegistered { .. } | Event::SpouseDeceased { .. } => self.marriage = None,
            Event::ParentsSet { father, mother } => {
                self.father = *father;
                self.mother = *mother;
            }
            Event::IdentityCardIssued {
                number,
                issue_date,
                place,
            } => {
                self.identity_card = Some(IdentityCard {
                    number: *number,
                    issue_date: *issue_date,
                    place: place.clone(),
                });
            }
            Event::CitizenDeceased { date } => self.life = LifeStatus::Deceased { date: *date },
            Event::MergedInto { survivor, .. } => self.merged_into = Some(*survivor),
            Event::Absorbed { duplicate } => self.absorbed.push(*duplicate),
            other => {
                return Err(EvolveError::WrongStream {
                    event_type: other.event_type(),
                    stream: "citizen",
                });
            }
        }
        Ok(())
    }
}

// --- stewardship ------------------------------------------------------------

impl Correctable for Citizen {
    fn kind(&self) -> RecordKind {
        RecordKind::Citizen
    }

    fn get_field(&self, field: &str) -> Result<Value, DomainError> {
        match field {
            "pin" => to_field_value(field, &self.pin),
            "name.family" => Ok(Value::from(self.name.family())),
            "name.middle" => Ok(Value::from(self.name.middle())),
            "name.given" => Ok(Value::from(self.name.given())),
            "sex" => to_field_value(field, &self.sex),
            "birth_date" => to_field_value(field, &self.birth_date),
            "birth_place" => to_field_value(field, &self.birth_place),
            "permanent_residence" => to_field_value(field, &self.permanent_residence),
            "temporary_residence" => to_field_value(field, &self.temporary_residence),
            "identity_card" => to_field_value(field, &self.identity_card),
            _ => Err(DomainError::UnknownField {
                kind: RecordKind::Citizen,
                field: field.to_owned(),
            }),
        }
    }

    fn set_field(&mut self, field: &str, value: &Value) -> Result<(), DomainError> {
        let name_part = |part: &str| -> Result<PersonName, DomainError> {
            let new: String = parse_field(field, value)?;
            let n = &self.name;
            let (f, m, g) = match part {
                "family" => (new.as_str(), n.middle(), n.given()),
                "middle" => (n.family(), new.as_str(), n.given()),
                _ => (n.family(), n.middle(), new.as_str()),
            };
            PersonName::new(f, m, g).map_err(|e| DomainError::InvalidFieldValue {
                field: field.to_owned(),
                message: e.to_string(),
            })
        };
        match field {
            "pin" => self.pin = parse_field(field, value)?,
            "name.family" => self.name = name_part("family")?,
            "name.middle" => self.name = name_part("middle")?,
            "name.given" => self.name = name_part("given")?,
            "sex" => self.sex = parse_field(field, value)?,
            "birth_date" => self.birth_date = parse_field(field, value)?,
            "birth_place" => self.birth_place = parse_field(field, value)?,
            "permanent_residence" => self.permanent_residence = parse_field(field, value)?,
            "temporary_residence" => self.temporary_residence = parse_field(field, value)?,
            "identity_card" => self.identity_card = parse_field(field, value)?,
            _ => {
                return Err(DomainError::UnknownField {
                    kind: RecordKind::Citizen,
                    field: field.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn check_codes(&self, field: &str, d: &mut Decision) -> Result<(), DomainError> {
        let initial_load = matches!(self.origin, RegistrationOrigin::InitialLoad { .. });
        match field {
            "birth_place" => check_unit(
                self.birth_place,
                self.birth_date.earliest(),
                initial_load,
                d,
            ),
            "permanent_residence" | "temporary_residence" => {
                let residence = if field == "permanent_residence" {
                    &self.permanent_residence
                } else {
                    &self.temporary_residence
                };
                match residence {
                    Some(r) => check_unit(r.commune, r.since, initial_load, d),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    fn check_invariants(&self) -> Result<(), DomainError> {
        self.pin
            .check_against(self.sex, self.birth_date.year())
            .map_err(DomainError::PinMismatch)?;
        if let Some(card) = &self.identity_card
            && card.number != self.pin
        {
            return Err(DomainError::CardNumberMismatch);
        }
        Ok(())
    }

    fn natural_key(&self) -> Option<NaturalKey> {
        Some(NaturalKey::Pin(self.pin))
    }

    fn corrections(&self) -> &Corrections {
        &self.corrections
    }

    fn corrections_mut(&mut self) -> &mut Corrections {
        &mut self.corrections
    }
}

impl From<CitizenId> for crate::decision::Target {
    fn from(id: CitizenId) -> Self {
        Self::Record(RecordId::Citizen(id))
    }
}
