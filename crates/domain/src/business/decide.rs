//! The business register's rules: what each command appends, or why not.

use crate::business::commands::{
    ChangeBusinessLines, ChangeCharterCapital, ChangeLegalRepresentatives, DissolveBusiness,
    MoveHeadOffice, RegisterBranch, RegisterBusiness, RenameBusiness, ResumeBusiness,
    SuspendBusiness,
};
use crate::date::Date;
use crate::decision::{Decision, check_unit};
use crate::error::DomainError;
use crate::event::Event;
use crate::ids::{CitizenId, EnterpriseCode, VsicCode, VsicTable};
use crate::key::NaturalKey;
use crate::origin::RegistrationOrigin;
use crate::snapshot::Snapshot;
use crate::text::non_empty;
use crate::warning::DomainWarning;

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

pub(crate) fn check_lines(lines: &[VsicCode], on: Date) -> Result<(), DomainError> {
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
    // Each code against the VSIC list in force on the change's own date (its valid time):
    // VSIC 2018 from 2018-08-20 to 2025-11-14, within the divisions the repository holds
    // (docs/reference-lists.md). Other dates and divisions are not judged: refusing a code for
    // want of a list would refuse real businesses.
    let vsic_2018 = VsicTable::vsic_2018();
    if vsic_2018.in_force_on(on) {
        for line in lines {
            vsic_2018.knows(line).map_err(DomainError::UnknownCode)?;
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
    check_lines(&c.business_lines, c.registration_date)?;
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
    check_lines(&c.business_lines, c.registration_date)?;
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
    check_lines(&c.business_lines, c.date)?;
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
