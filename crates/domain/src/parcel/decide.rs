//! The land register's rules: what each command appends, or why not.

use crate::date::Date;
use crate::decision::{Decision, check_unit};
use crate::error::DomainError;
use crate::event::Event;
use crate::ids::{AdminUnitTable, LandUseCode, ParcelKey, RecordId};
use crate::key::NaturalKey;
use crate::parcel::commands::{
    ChangeLandUse, IssueCertificate, MergeParcels, NewParcel, RegisterMortgage, RegisterParcel,
    ReleaseMortgage, RetireParcel, RevokeCertificate, SplitParcel, TransferRights,
};
use crate::parcel::state::{Certificate, Holder, Holding, Mortgage, Parcel, ParcelOrigin};
use crate::quantity::{Area, Share};
use crate::snapshot::Snapshot;
use crate::text::non_empty;

/// Holder set rules, including eligibility of each holder in the snapshot.
pub(crate) fn check_holders(snapshot: &Snapshot, holders: &[Holding]) -> Result<(), DomainError> {
    check_holder_shares(holders)?;
    for h in holders {
        match h.holder {
            Holder::Citizen(id) => {
                if snapshot.current_citizen(id)?.is_deceased() {
                    return Err(DomainError::DeceasedHolder(id));
                }
            }
            Holder::Business(id) => {
                if snapshot.current_business(id)?.is_dissolved() {
                    return Err(DomainError::DissolvedHolder(id));
                }
            }
        }
    }
    Ok(())
}

/// Holder set rules that need no other record: non-empty, distinct, sum 1.
pub(crate) fn check_holder_shares(holders: &[Holding]) -> Result<(), DomainError> {
    if holders.is_empty() {
        return Err(DomainError::NoHolders);
    }
    for (i, h) in holders.iter().enumerate() {
        if holders[..i].iter().any(|o| o.holder == h.holder) {
            return Err(DomainError::DuplicateEntry {
                what: "holder",
                value: RecordId::from(h.holder).to_string(),
            });
        }
    }
    let sum = Share::sum(holders.iter().map(|h| &h.share))
        .map_err(|_| DomainError::Overflow("holder shares"))?;
    if !sum.is_one() {
        return Err(DomainError::SharesNotOne {
            sum: sum.to_string(),
        });
    }
    Ok(())
}

pub(crate) fn check_land_use(codes: &[LandUseCode]) -> Result<(), DomainError> {
    if codes.is_empty() {
        return Err(DomainError::NoLandUse);
    }
    for (i, c) in codes.iter().enumerate() {
        if codes[..i].contains(c) {
            return Err(DomainError::DuplicateEntry {
                what: "land-use code",
                value: c.to_string(),
            });
        }
    }
    Ok(())
}

/// The administrative unit must be a current unit (a parcel key names where the parcel is
/// now); the predecessor, whose map sheets the numbers belong to, is resolved
/// as a pre-2025 fact: a current or documented unit, or a code of the former
/// provinces' block with a warning. Anything else is `UNKNOWN_CODE`.
pub(crate) fn check_key(key: &ParcelKey, d: &mut Decision) -> Result<(), DomainError> {
    let table = AdminUnitTable::hai_phong_2025();
    if table.by_code(key.unit()).is_none() {
        return Err(DomainError::UnknownCode(table.unknown(key.unit())));
    }
    if key.predecessor_unit() != key.unit() {
        check_unit(key.predecessor_unit(), BEFORE_2025, true, d)?;
    }
    Ok(())
}

/// The last day the pre-2025 units were in force.
const BEFORE_2025: Date = Date::trusted(2025, 6, 30);

pub(crate) fn check_area(area: Area) -> Result<(), DomainError> {
    if area == Area::ZERO {
        Err(DomainError::ZeroArea)
    } else {
        Ok(())
    }
}

fn not_mortgaged(parcel: &Parcel) -> Result<(), DomainError> {
    if parcel.mortgages.is_empty() {
        Ok(())
    } else {
        Err(DomainError::ParcelMortgaged {
            parcel: parcel.id,
            contracts: parcel
                .mortgages
                .iter()
                .map(|m| m.contract_number.clone())
                .collect(),
        })
    }
}

fn sorted_holders(holders: &[Holding]) -> Vec<(Holder, Share)> {
    let mut v: Vec<(Holder, Share)> = holders.iter().map(|h| (h.holder, h.share)).collect();
    v.sort_by_key(|(h, _)| *h);
    v
}

pub(crate) fn register(
    snapshot: &Snapshot,
    c: &RegisterParcel,
    d: &mut Decision,
) -> Result<(), DomainError> {
    snapshot.ensure_absent(c.parcel.into())?;
    check_key(&c.key, d)?;
    check_area(c.area)?;
    check_land_use(&c.land_use)?;
    let address = non_empty(&c.address, "address")?;
    check_holders(snapshot, &c.holders)?;
    let national_parcel_id = c
        .national_parcel_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    d.claim_key(snapshot, NaturalKey::Parcel(c.key), c.parcel.into())?;
    d.emit(
        c.parcel,
        Event::ParcelRegistered {
            parcel: c.parcel,
            key: c.key,
            national_parcel_id: national_parcel_id.map(str::to_owned),
            area: c.area,
            land_use: c.land_use.clone(),
            address,
            geometry: c.geometry.clone(),
            holders: c.holders.clone(),
            origin: ParcelOrigin::Registration,
        },
    );
    Ok(())
}

pub(crate) fn transfer(
    snapshot: &Snapshot,
    c: &TransferRights,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let parcel = snapshot.active_parcel(c.parcel)?;
    for (i, contract) in c.release_mortgages.iter().enumerate() {
        if c.release_mortgages[..i].contains(contract) {
            return Err(DomainError::DuplicateEntry {
                what: "mortgage",
                value: contract.clone(),
            });
        }
        if !parcel
            .mortgages
            .iter()
            .any(|m| &m.contract_number == contract)
        {
            return Err(DomainError::MortgageNotFound {
                parcel: c.parcel,
                contract_number: contract.clone(),
            });
        }
    }
    let remaining: Vec<String> = parcel
        .mortgages
        .iter()
        .filter(|m| !c.release_mortgages.contains(&m.contract_number))
        .map(|m| m.contract_number.clone())
        .collect();
    if !remaining.is_empty() {
        return Err(DomainError::ParcelMortgaged {
            parcel: c.parcel,
            contracts: remaining,
        });
    }
    check_holders(snapshot, &c.holders)?;
    if sorted_holders(&c.holders) == sorted_holders(&parcel.holders) {
        return Err(DomainError::NoOpChange {
            field: "holders".to_owned(),
        });
    }
    for contract in &c.release_mortgages {
        d.emit(
            c.parcel,
            Event::MortgageReleased {
                contract_number: contract.clone(),
                date: c.date,
            },
        );
    }
    d.emit(
        c.parcel,
        Event::RightsTransferred {
            kind: c.kind,
            holders: c.holders.clone(),
            date: c.date,
        },
    );
    Ok(())
}

pub(crate) fn change_land_use(
    snapshot: &Snapshot,
    c: &ChangeLandUse,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let parcel = snapshot.active_parcel(c.parcel)?;
    check_land_use(&c.land_use)?;
    non_empty(
        &c.legal_basis.document_number,
        "legal_basis.document_number",
    )?;
    if parcel.land_use == c.land_use {
        return Err(DomainError::NoOpChange {
            field: "land_use".to_owned(),
        });
    }
    d.emit(
        c.parcel,
        Event::LandUseChanged {
            land_use: c.land_use.clone(),
            date: c.date,
            legal_basis: c.legal_basis.clone(),
        },
    );
    Ok(())
}

pub(crate) fn issue_certificate(
    snapshot: &Snapshot,
    c: &IssueCertificate,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let parcel = snapshot.active_parcel(c.parcel)?;
    if let Some(existing) = &parcel.certificate {
        return Err(DomainError::CertificateExists {
            parcel: c.parcel,
            serial: existing.serial,
        });
    }
    let certificate = Certificate {
        serial: c.certificate.serial,
        entry_number: non_empty(&c.certificate.entry_number, "certificate.entry_number")?,
        issue_date: c.certificate.issue_date,
        issuer: non_empty(&c.certificate.issuer, "certificate.issuer")?,
    };
    d.emit(c.parcel, Event::CertificateIssued { certificate });
    Ok(())
}

/// Allowed on retired parcels too: a split or merged parcel's certificate is
/// revoked after the fact.
pub(crate) fn revoke_certificate(
    snapshot: &Snapshot,
    c: &RevokeCertificate,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let parcel = snapshot.existing_parcel(c.parcel)?;
    if parcel.certificate.as_ref().map(|x| x.serial) != Some(c.serial) {
        return Err(DomainError::CertificateNotFound {
            parcel: c.parcel,
            serial: c.serial,
        });
    }
    let reason = non_empty(&c.reason, "reason")?;
    d.emit(
        c.parcel,
        Event::CertificateRevoked {
            serial: c.serial,
            date: c.date,
            reason,
        },
    );
    Ok(())
}

pub(crate) fn register_mortgage(
    snapshot: &Snapshot,
    c: &RegisterMortgage,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let parcel = snapshot.active_parcel(c.parcel)?;
    let contract_number = non_empty(&c.mortgage.contract_number, "mortgage.contract_number")?;
    if parcel
        .mortgages
        .iter()
        .any(|m| m.contract_number == contract_number)
    {
        return Err(DomainError::DuplicateMortgage {
            parcel: c.parcel,
            contract_number,
        });
    }
    if snapshot
        .current_business(c.mortgage.creditor)?
        .is_dissolved()
    {
        return Err(DomainError::BusinessDissolved(c.mortgage.creditor));
    }
    let mortgage = Mortgage {
        contract_number,
        ..c.mortgage.clone()
    };
    d.emit(c.parcel, Event::MortgageRegistered { mortgage });
    Ok(())
}

pub(crate) fn release_mortgage(
    snapshot: &Snapshot,
    c: &ReleaseMortgage,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let parcel = snapshot.active_parcel(c.parcel)?;
    if !parcel
        .mortgages
        .iter()
        .any(|m| m.contract_number == c.contract_number)
    {
        return Err(DomainError::MortgageNotFound {
            parcel: c.parcel,
            contract_number: c.contract_number.clone(),
        });
    }
    d.emit(
        c.parcel,
        Event::MortgageReleased {
            contract_number: c.contract_number.clone(),
            date: c.date,
        },
    );
    Ok(())
}

/// Claims and registers a parcel created from `sources`.
fn create_derived(
    snapshot: &Snapshot,
    part: &NewParcel,
    template: &Parcel,
    land_use: Vec<LandUseCode>,
    origin: ParcelOrigin,
    d: &mut Decision,
) -> Result<(), DomainError> {
    snapshot.ensure_absent(part.parcel.into())?;
    check_key(&part.key, d)?;
    check_area(part.area)?;
    d.claim_key(snapshot, NaturalKey::Parcel(part.key), part.parcel.into())?;
    d.emit(
        part.parcel,
        Event::ParcelRegistered {
            parcel: part.parcel,
            key: part.key,
            national_parcel_id: None,
            area: part.area,
            land_use,
            address: template.address.clone(),
            geometry: None,
            holders: template.holders.clone(),
            origin,
        },
    );
    Ok(())
}

pub(crate) fn split(
    snapshot: &Snapshot,
    c: &SplitParcel,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let source = snapshot.active_parcel(c.source)?;
    not_mortgaged(source)?;
    if c.parts.len() < 2 {
        return Err(DomainError::TooFewParts);
    }
    for (i, part) in c.parts.iter().enumerate() {
        if part.parcel == c.source || c.parts[..i].iter().any(|p| p.parcel == part.parcel) {
            return Err(DomainError::DuplicateEntry {
                what: "parcel",
                value: part.parcel.to_string(),
            });
        }
        if c.parts[..i].iter().any(|p| p.key == part.key) {
            return Err(DomainError::DuplicateEntry {
                what: "parcel key",
                value: part.key.to_string(),
            });
        }
    }
    let total = Area::sum(c.parts.iter().map(|p| &p.area))
        .map_err(|_| DomainError::Overflow("parcel area"))?;
    if total != source.area {
        return Err(DomainError::AreaMismatch {
            expected: source.area,
            actual: total,
        });
    }
    d.emit(
        c.source,
        Event::ParcelSplit {
            into: c.parts.iter().map(|p| p.parcel).collect(),
            date: c.date,
        },
    );
    for part in &c.parts {
        create_derived(
            snapshot,
            part,
            source,
            source.land_use.clone(),
            ParcelOrigin::SplitFrom { source: c.source },
            d,
        )?;
    }
    Ok(())
}

pub(crate) fn merge(
    snapshot: &Snapshot,
    c: &MergeParcels,
    d: &mut Decision,
) -> Result<(), DomainError> {
    if c.sources.len() < 2 {
        return Err(DomainError::TooFewParts);
    }
    let mut sources = Vec::with_capacity(c.sources.len());
    for (i, id) in c.sources.iter().enumerate() {
        if c.sources[..i].contains(id) || *id == c.into.parcel {
            return Err(DomainError::DuplicateEntry {
                what: "parcel",
                value: id.to_string(),
            });
        }
        let parcel = snapshot.active_parcel(*id)?;
        not_mortgaged(parcel)?;
        sources.push(parcel);
    }
    let Some(first) = sources.first().copied() else {
        return Err(DomainError::TooFewParts);
    };
    let holders = sorted_holders(&first.holders);
    if sources
        .iter()
        .any(|p| sorted_holders(&p.holders) != holders)
    {
        return Err(DomainError::HoldersDiffer);
    }
    let total = Area::sum(sources.iter().map(|p| &p.area))
        .map_err(|_| DomainError::Overflow("parcel area"))?;
    if total != c.into.area {
        return Err(DomainError::AreaMismatch {
            expected: total,
            actual: c.into.area,
        });
    }
    let mut land_use: Vec<LandUseCode> = Vec::new();
    for code in sources.iter().flat_map(|p| p.land_use.iter()) {
        if !land_use.contains(code) {
            land_use.push(*code);
        }
    }
    for id in &c.sources {
        d.emit(
            *id,
            Event::ParcelMergedInto {
                target: c.into.parcel,
                date: c.date,
            },
        );
    }
    create_derived(
        snapshot,
        &c.into,
        first,
        land_use,
        ParcelOrigin::MergedFrom {
            sources: c.sources.clone(),
        },
        d,
    )
}

pub(crate) fn retire(
    snapshot: &Snapshot,
    c: &RetireParcel,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let parcel = snapshot.active_parcel(c.parcel)?;
    not_mortgaged(parcel)?;
    let reason = non_empty(&c.reason, "reason")?;
    d.emit(
        c.parcel,
        Event::ParcelRetired {
            date: c.date,
            reason,
        },
    );
    Ok(())
}
