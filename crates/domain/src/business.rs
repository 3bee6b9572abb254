//! Business records (enterprises and their branches).
//!
//! Invariants kept by `decide`:
//! * the enterprise code is unique (key stream) and, for new registrations,
//!   has a computable check digit; a branch's code is its parent's plus a suffix;
//! * every legal representative is an existing, living, non-merged citizen;
//! * a dissolved business gets no further events except corrections.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::citizen::{RegistrationOrigin, non_empty};
use crate::date::Date;
use crate::decision::{Decision, DomainWarning, Snapshot, Target, check_unit};
use crate::error::DomainError;
use crate::event::{Event, EvolveError};
use crate::ids::{
    AdminUnitCode, BusinessId, CitizenId, EFFECTIVE_2025, EnterpriseCode, RecordId, RecordKind,
    VsicCode,
};
use crate::key::NaturalKey;
use crate::name::normalise_text;
use crate::quantity::Vnd;
use crate::stewardship::{Correctable, Corrections, parse_field, to_field_value};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessNames {
    /// The Vietnamese name (required).
    pub vietnamese: String,
    #[serde(default)]
    pub english: Option<String>,
    #[serde(default)]
    pub abbreviated: Option<String>,
}

impl BusinessNames {
    /// NFC, trimmed; empty optional names become `None`.
    fn normalised(&self) -> Result<Self, DomainError> {
        let opt = |s: &Option<String>| s.as_deref().map(normalise_text).filter(|t| !t.is_empty());
        Ok(Self {
            vietnamese: non_empty(&self.vietnamese, "names.vietnamese")?,
            english: opt(&self.english),
            abbreviated: opt(&self.abbreviated),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub commune: AdminUnitCode,
    pub street: String,
}

impl Address {
    fn normalised(&self) -> Result<Self, DomainError> {
        Ok(Self {
            commune: self.commune,
            street: non_empty(&self.street, "address.street")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BusinessStatus {
    Active,
    Suspended { from: Date, until: Date },
    Dissolved { on: Date },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Business {
    pub id: BusinessId,
    pub code: EnterpriseCode,
    pub names: BusinessNames,
    /// Head office, or the branch's own address for a branch.
    pub head_office: Address,
    pub legal_representatives: Vec<CitizenId>,
    /// `None` for branches, which have no capital of their own.
    pub charter_capital: Option<Vnd>,
    pub business_lines: Vec<VsicCode>,
    pub registration_date: Date,
    pub parent: Option<BusinessId>,
    pub branches: Vec<BusinessId>,
    pub status: BusinessStatus,
    pub origin: RegistrationOrigin,
    pub corrections: Corrections,
}

impl Business {
    pub fn is_dissolved(&self) -> bool {
        matches!(self.status, BusinessStatus::Dissolved { .. })
    }
    pub fn is_suspended(&self) -> bool {
        matches!(self.status, BusinessStatus::Suspended { .. })
    }
}

// --- commands ---------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBusiness {
    pub business: BusinessId,
    pub code: EnterpriseCode,
    pub names: BusinessNames,
    pub head_office: Address,
    pub legal_representatives: Vec<CitizenId>,
    pub charter_capital: Vnd,
    pub business_lines: Vec<VsicCode>,
    pub registration_date: Date,
    pub origin: RegistrationOrigin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameBusiness {
    pub business: BusinessId,
    pub names: BusinessNames,
    pub date: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveHeadOffice {
    pub business: BusinessId,
    pub head_office: Address,
    pub date: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeLegalRepresentatives {
    pub business: BusinessId,
    pub legal_representatives: Vec<CitizenId>,
    pub date: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeCharterCapital {
    pub business: BusinessId,
    pub charter_capital: Vnd,
    pub date: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeBusinessLines {
    pub business: BusinessId,
    pub business_lines: Vec<VsicCode>,
    pub date: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuspendBusiness {
    pub business: BusinessId,
    pub from: Date,
    pub until: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeBusiness {
    pub business: BusinessId,
    pub on: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DissolveBusiness {
    pub business: BusinessId,
    pub on: Date,
}

/// A branch is its own Business record referencing its parent; its code is
/// the parent's code plus a `-NNN` suffix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBranch {
    pub branch: BusinessId,
    pub parent: BusinessId,
    pub code: EnterpriseCode,
    pub names: BusinessNames,
    pub address: Address,
    /// The branch head(s).
    pub legal_representatives: Vec<CitizenId>,
    pub business_lines: Vec<VsicCode>,
    pub registration_date: Date,
    pub origin: RegistrationOrigin,
}

// --- rules ------------------------------------------------------------------

fn check_representatives(snapshot: &Snapshot, reps: &[CitizenId]) -> Result<(), DomainError> {
    if reps.is_empty() {
        return Err(DomainError::NoLegalRepresentative);
    }
    for (i, rep) in reps.iter().enumerate() {
        if reps[..i].contains(rep) {
            return Err(DomainError::DuplicateEntry {
                what: "legal representative",
                value: rep.to_string(),
            });
        }
        let citizen = snapshot.current_citizen(*rep)?;
        if citizen.is_deceased() {
            return Err(DomainError::DeceasedRepresentative(*rep));
        }
    }
    Ok(())
}

fn check_lines(lines: &[VsicCode]) -> Result<(), DomainError> {
    if lines.is_empty() {
        return Err(DomainError::NoBusinessLines);
    }
    for (i, line) in lines.iter().enumerate() {
        if lines[..i].contains(line) {
            return Err(DomainError::DuplicateEntry {
                what: "business line",
                value: line.to_string(),
            });
        }
    }
    Ok(())
}

/// Legacy check digits are refused for new registrations and accepted with a
/// warning on initial loads.
fn check_code_digit(
    code: EnterpriseCode,
    origin: &RegistrationOrigin,
    d: &mut Decision,
) -> Result<(), DomainError> {
    if code.has_legacy_check_digit() {
        match origin {
            RegistrationOrigin::Registration => return Err(DomainError::LegacyCheckDigit { code }),
            RegistrationOrigin::InitialLoad { .. } => {
                d.warn(DomainWarning::LegacyCheckDigit { code })
            }
        }
    }
    if let RegistrationOrigin::InitialLoad { source } = origin {
        non_empty(source, "origin.source")?;
    }
    Ok(())
}

pub(crate) fn register(
    snapshot: &Snapshot,
    c: &RegisterBusiness,
    d: &mut Decision,
) -> Result<(), DomainError> {
    snapshot.ensure_absent(c.business.into())?;
    if c.code.is_branch() {
        return Err(DomainError::BranchCodeNotAllowed { code: c.code });
    }
    check_code_digit(c.code, &c.origin, d)?;
    let names = c.names.normalised()?;
    let head_office = c.head_office.normalised()?;
    let initial_load = matches!(c.origin, RegistrationOrigin::InitialLoad { .. });
    check_unit(head_office.commune, c.registration_date, initial_load, d)?;
    check_representatives(snapshot, &c.legal_representatives)?;
    check_lines(&c.business_lines)?;
    d.claim_key(snapshot, NaturalKey::Enterprise(c.code), c.business.into())?;
    d.emit(
        c.business,
        Event::BusinessRegistered {
            business: c.business,
            code: c.code,
            names,
            head_office,
            legal_representatives: c.legal_representatives.clone(),
            charter_capital: Some(c.charter_capital),
            business_lines: c.business_lines.clone(),
            registration_date: c.registration_date,
            parent: None,
            origin: c.origin.clone(),
        },
    );
    Ok(())
}

pub(crate) fn register_branch(
    snapshot: &Snapshot,
    c: &RegisterBranch,
    d: &mut Decision,
) -> Result<(), DomainError> {
    snapshot.ensure_absent(c.branch.into())?;
    let parent = snapshot.active_business(c.parent)?;
    if parent.parent.is_some() {
        return Err(DomainError::ParentIsBranch(c.parent));
    }
    if parent.is_suspended() {
        return Err(DomainError::BusinessSuspended(c.parent));
    }
    if c.code.parent() != Some(parent.code) {
        return Err(DomainError::BranchCodeMismatch {
            code: c.code,
            parent_code: parent.code,
        });
    }
    check_code_digit(c.code, &c.origin, d)?;
    let names = c.names.normalised()?;
    let address = c.address.normalised()?;
    let initial_load = matches!(c.origin, RegistrationOrigin::InitialLoad { .. });
    check_unit(address.commune, c.registration_date, initial_load, d)?;
    check_representatives(snapshot, &c.legal_representatives)?;
    check_lines(&c.business_lines)?;
    d.claim_key(snapshot, NaturalKey::Enterprise(c.code), c.branch.into())?;
    d.emit(
        c.branch,
        Event::BusinessRegistered {
            business: c.branch,
            code: c.code,
            names,
            head_office: address,
            legal_representatives: c.legal_representatives.clone(),
            charter_capital: None,
            business_lines: c.business_lines.clone(),
            registration_date: c.registration_date,
            parent: Some(c.parent),
            origin: c.origin.clone(),
        },
    );
    // Recorded on the parent too, so the parent's stream version guards
    // against a concurrent dissolution.
    d.emit(
        c.parent,
        Event::BranchAdded {
            branch: c.branch,
            code: c.code,
        },
    );
    Ok(())
}

pub(crate) fn rename(
    snapshot: &Snapshot,
    c: &RenameBusiness,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let business = snapshot.active_business(c.business)?;
    let names = c.names.normalised()?;
    if names == business.names {
        return Err(DomainError::NoOpChange {
            field: "names".to_owned(),
        });
    }
    d.emit(
        c.business,
        Event::BusinessRenamed {
            names,
            date: c.date,
        },
    );
    Ok(())
}

pub(crate) fn move_head_office(
    snapshot: &Snapshot,
    c: &MoveHeadOffice,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let business = snapshot.active_business(c.business)?;
    let head_office = c.head_office.normalised()?;
    check_unit(head_office.commune, c.date, false, d)?;
    if head_office == business.head_office {
        return Err(DomainError::NoOpChange {
            field: "head_office".to_owned(),
        });
    }
    d.emit(
        c.business,
        Event::HeadOfficeMoved {
            head_office,
            date: c.date,
        },
    );
    Ok(())
}

pub(crate) fn change_representatives(
    snapshot: &Snapshot,
    c: &ChangeLegalRepresentatives,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let business = snapshot.active_business(c.business)?;
    check_representatives(snapshot, &c.legal_representatives)?;
    if business.legal_representatives == c.legal_representatives {
        return Err(DomainError::NoOpChange {
            field: "legal_representatives".to_owned(),
        });
    }
    d.emit(
        c.business,
        Event::LegalRepresentativesChanged {
            legal_representatives: c.legal_representatives.clone(),
            date: c.date,
        },
    );
    Ok(())
}

pub(crate) fn change_capital(
    snapshot: &Snapshot,
    c: &ChangeCharterCapital,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let business = snapshot.active_business(c.business)?;
    if business.parent.is_some() {
        return Err(DomainError::NotApplicableToBranch(c.business));
    }
    if business.charter_capital == Some(c.charter_capital) {
        return Err(DomainError::NoOpChange {
            field: "charter_capital".to_owned(),
        });
    }
    d.emit(
        c.business,
        Event::CharterCapitalChanged {
            charter_capital: c.charter_capital,
            date: c.date,
        },
    );
    Ok(())
}

pub(crate) fn change_lines(
    snapshot: &Snapshot,
    c: &ChangeBusinessLines,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let business = snapshot.active_business(c.business)?;
    check_lines(&c.business_lines)?;
    if business.business_lines == c.business_lines {
        return Err(DomainError::NoOpChange {
            field: "business_lines".to_owned(),
        });
    }
    d.emit(
        c.business,
        Event::BusinessLinesChanged {
            business_lines: c.business_lines.clone(),
            date: c.date,
        },
    );
    Ok(())
}

pub(crate) fn suspend(
    snapshot: &Snapshot,
    c: &SuspendBusiness,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let business = snapshot.active_business(c.business)?;
    if business.is_suspended() {
        return Err(DomainError::BusinessSuspended(c.business));
    }
    if c.until < c.from {
        return Err(DomainError::InvalidPeriod {
            from: c.from,
            until: c.until,
        });
    }
    d.emit(
        c.business,
        Event::BusinessSuspended {
            from: c.from,
            until: c.until,
        },
    );
    Ok(())
}

pub(crate) fn resume(
    snapshot: &Snapshot,
    c: &ResumeBusiness,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let business = snapshot.active_business(c.business)?;
    if !business.is_suspended() {
        return Err(DomainError::BusinessNotSuspended(c.business));
    }
    d.emit(c.business, Event::BusinessResumed { on: c.on });
    Ok(())
}

pub(crate) fn dissolve(
    snapshot: &Snapshot,
    c: &DissolveBusiness,
    d: &mut Decision,
) -> Result<(), DomainError> {
    snapshot.active_business(c.business)?;
    d.emit(c.business, Event::BusinessDissolved { on: c.on });
    Ok(())
}

// --- evolution --------------------------------------------------------------

impl Business {
    pub(crate) fn apply(&mut self, event: &Event) -> Result<(), EvolveError> {
        match event {
            Event::BranchAdded { branch, .. } => self.branches.push(*branch),
            Event::BusinessRenamed { names, .. } => self.names = names.clone(),
            Event::HeadOfficeMoved { head_office, .. } => self.head_office = head_office.clone(),
            Event::LegalRepresentativesChanged {
                legal_representatives,
                ..
            } => {
                self.legal_representatives = legal_representatives.clone();
            }
            Event::CharterCapitalChanged {
                charter_capital, ..
            } => self.charter_capital = Some(*charter_capital),
            Event::BusinessLinesChanged { business_lines, .. } => {
                self.business_lines = business_lines.clone()
            }
            Event::BusinessSuspended { from, until } => {
                self.status = BusinessStatus::Suspended {
                    from: *from,
                    until: *until,
                };
            }
            Event::BusinessResumed { .. } => self.status = BusinessStatus::Active,
            Event::BusinessDissolved { on } => self.status = BusinessStatus::Dissolved { on: *on },
            other => {
                return Err(EvolveError::WrongStream {
                    event_type: other.event_type(),
                    stream: "business",
                });
            }
        }
        Ok(())
    }
}

// --- stewardship ------------------------------------------------------------

impl Correctable for Business {
    fn kind(&self) -> RecordKind {
        RecordKind::Business
    }

    fn get_field(&self, field: &str) -> Result<Value, DomainError> {
        match field {
            "enterprise_code" => to_field_value(field, &self.code),
            "names.vietnamese" => Ok(Value::from(self.names.vietnamese.as_str())),
            "names.english" => to_field_value(field, &self.names.english),
            "names.abbreviated" => to_field_value(field, &self.names.abbreviated),
            "head_office" => to_field_value(field, &self.head_office),
            "registration_date" => to_field_value(field, &self.registration_date),
            "charter_capital" => to_field_value(field, &self.charter_capital),
            "business_lines" => to_field_value(field, &self.business_lines),
            _ => Err(DomainError::UnknownField {
                kind: RecordKind::Business,
                field: field.to_owned(),
            }),
        }
    }

    fn set_field(&mut self, field: &str, value: &Value) -> Result<(), DomainError> {
        match field {
            "enterprise_code" => self.code = parse_field(field, value)?,
            "names.vietnamese" | "names.english" | "names.abbreviated" => {
                let mut names = self.names.clone();
                match field {
                    "names.vietnamese" => names.vietnamese = parse_field(field, value)?,
                    "names.english" => names.english = parse_field(field, value)?,
                    _ => names.abbreviated = parse_field(field, value)?,
                }
                self.names = names.normalised()?;
            }
            "head_office" => {
                self.head_office = parse_field::<Address>(field, value)?.normalised()?
            }
            "registration_date" => self.registration_date = parse_field(field, value)?,
            "charter_capital" => self.charter_capital = parse_field(field, value)?,
            "business_lines" => self.business_lines = parse_field(field, value)?,
            _ => {
                return Err(DomainError::UnknownField {
                    kind: RecordKind::Business,
                    field: field.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn check_codes(&self, field: &str, d: &mut Decision) -> Result<(), DomainError> {
        if field != "head_office" {
            return Ok(());
        }
        // The head office is where the business is now: a new fact, unless
        // the record came from an initial load.
        let initial_load = matches!(self.origin, RegistrationOrigin::InitialLoad { .. });
        check_unit(self.head_office.commune, EFFECTIVE_2025, initial_load, d)
    }

    fn check_invariants(&self) -> Result<(), DomainError> {
        check_lines(&self.business_lines)?;
        match (self.parent, self.code.is_branch()) {
            (Some(_), false) | (None, true) => {
                return Err(DomainError::InvalidFieldValue {
                    field: "enterprise_code".to_owned(),
                    message: "a branch record needs a branch code and a main record a main code"
                        .to_owned(),
                });
            }
            _ => {}
        }
        if self.parent.is_some() && self.charter_capital.is_some() {
            return Err(DomainError::NotApplicableToBranch(self.id));
        }
        if self.parent.is_none() && self.charter_capital.is_none() {
            return Err(DomainError::InvalidFieldValue {
                field: "charter_capital".to_owned(),
                message: "an enterprise has a charter capital".to_owned(),
            });
        }
        Ok(())
    }

    fn natural_key(&self) -> Option<NaturalKey> {
        Some(NaturalKey::Enterprise(self.code))
    }

    fn corrections(&self) -> &Corrections {
        &self.corrections
    }

    fn corrections_mut(&mut self) -> &mut Corrections {
        &mut self.corrections
    }
}

impl From<BusinessId> for Target {
    fn from(id: BusinessId) -> Self {
        Self::Record(RecordId::Business(id))
    }
}
