//! Commands: every change anyone can ask of the registers. Serialised with an
//! internal tag `"type"` (the NDJSON import format and the GraphQL input).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::business::commands::{
    ChangeBusinessLines, ChangeCharterCapital, ChangeLegalRepresentatives, DissolveBusiness,
    MoveHeadOffice, RegisterBranch, RegisterBusiness, RenameBusiness, ResumeBusiness,
    SuspendBusiness,
};
use crate::citizen::commands::{
    ChangeCitizenName, ChangeResidence, IssueIdentityCard, MergeCitizens, RecordDeath,
    RegisterCitizen, RegisterDivorce, RegisterMarriage, SetParents,
};
use crate::ids::{CorrectionId, EnterpriseCode, ParcelKey, PersonalIdNumber, RecordId};
use crate::key::NaturalKey;
use crate::parcel::commands::{
    ChangeLandUse, IssueCertificate, MergeParcels, RegisterMortgage, RegisterParcel,
    ReleaseMortgage, RetireParcel, RevokeCertificate, SplitParcel, TransferRights,
};
use crate::parcel::state::Holding;
use crate::redaction::{
    ApproveRedaction, LiftRestriction, ProposeRedaction, RejectRedaction, RestrictRecord,
};
use crate::stewardship::{FieldChange, LegalBasis};

/// Correct unprotected fields directly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrectRecord {
    pub record: RecordId,
    pub changes: Vec<FieldChange>,
    pub reason: String,
    pub legal_basis: LegalBasis,
}

/// Propose a correction (required for protected fields) for a supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposeCorrection {
    pub record: RecordId,
    pub correction: CorrectionId,
    pub changes: Vec<FieldChange>,
    pub reason: String,
    pub legal_basis: LegalBasis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveCorrection {
    pub record: RecordId,
    pub correction: CorrectionId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectCorrection {
    pub record: RecordId,
    pub correction: CorrectionId,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawCorrection {
    pub record: RecordId,
    pub correction: CorrectionId,
}

/// `Deserialize` is `command_json`'s: the same format, read without buffering each object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum Command {
    // citizens
    RegisterCitizen(RegisterCitizen),
    ChangeCitizenName(ChangeCitizenName),
    ChangeResidence(ChangeResidence),
    RegisterMarriage(RegisterMarriage),
    RegisterDivorce(RegisterDivorce),
    SetParents(SetParents),
    IssueIdentityCard(IssueIdentityCard),
    RecordDeath(RecordDeath),
    MergeCitizens(MergeCitizens),
    // businesses
    RegisterBusiness(RegisterBusiness),
    RenameBusiness(RenameBusiness),
    MoveHeadOffice(MoveHeadOffice),
    ChangeLegalRepresentatives(ChangeLegalRepresentatives),
    ChangeCharterCapital(ChangeCharterCapital),
    ChangeBusinessLines(ChangeBusinessLines),
    SuspendBusiness(SuspendBusiness),
    ResumeBusiness(ResumeBusiness),
    DissolveBusiness(DissolveBusiness),
    RegisterBranch(RegisterBranch),
    // land parcels
    RegisterParcel(RegisterParcel),
    TransferRights(TransferRights),
    ChangeLandUse(ChangeLandUse),
    IssueCertificate(IssueCertificate),
    RevokeCertificate(RevokeCertificate),
    RegisterMortgage(RegisterMortgage),
    ReleaseMortgage(ReleaseMortgage),
    SplitParcel(SplitParcel),
    MergeParcels(MergeParcels),
    RetireParcel(RetireParcel),
    // stewardship, any record
    CorrectRecord(CorrectRecord),
    ProposeCorrection(ProposeCorrection),
    ApproveCorrection(ApproveCorrection),
    RejectCorrection(RejectCorrection),
    WithdrawCorrection(WithdrawCorrection),
    // erasure and restriction, any record
    ProposeRedaction(ProposeRedaction),
    ApproveRedaction(ApproveRedaction),
    RejectRedaction(RejectRedaction),
    RestrictRecord(RestrictRecord),
    LiftRestriction(LiftRestriction),
}

/// The streams a handler should load before calling `decide`: the target
/// records, every record referenced by id, and every natural key to claim.
///
/// This is what the command alone reveals. A few rules need streams known
/// only from state (a spouse on death, the new key on approval of a PIN
/// correction); `decide` then returns `DomainError::NotLoaded(target)` and
/// the handler loads that stream and decides again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    pub records: BTreeSet<RecordId>,
    pub keys: BTreeSet<NaturalKey>,
}

impl Reads {
    fn record(&mut self, id: impl Into<RecordId>) -> &mut Self {
        self.records.insert(id.into());
        self
    }
    fn records<I: Into<RecordId>>(&mut self, ids: impl IntoIterator<Item = I>) -> &mut Self {
        self.records.extend(ids.into_iter().map(Into::into));
        self
    }
    fn key(&mut self, key: NaturalKey) -> &mut Self {
        self.keys.insert(key);
        self
    }
    fn holders(&mut self, holders: &[Holding]) -> &mut Self {
        self.records(holders.iter().map(|h| h.holder))
    }
    /// Fields whose values reference other streams.
    fn field_changes(&mut self, changes: &[FieldChange]) -> &mut Self {
        for change in changes {
            for value in [&change.old, &change.new] {
                match change.field.as_str() {
                    "pin" => {
                        if let Ok(pin) = serde_json::from_value::<PersonalIdNumber>(value.clone()) {
                            self.key(NaturalKey::Pin(pin));
                        }
                    }
                    "enterprise_code" => {
                        if let Ok(code) = serde_json::from_value::<EnterpriseCode>(value.clone()) {
                            self.key(NaturalKey::Enterprise(code));
                        }
                    }
                    "key" => {
                        if let Ok(key) = serde_json::from_value::<ParcelKey>(value.clone()) {
                            self.key(NaturalKey::Parcel(key));
                        }
                    }
                    "holders" => {
                        if let Ok(holders) = serde_json::from_value::<Vec<Holding>>(value.clone()) {
                            self.holders(&holders);
                        }
                    }
                    _ => {}
                }
            }
        }
        self
    }
}

impl Command {
    /// The "type" tag of this command.
    pub fn command_type(&self) -> &'static str {
        match self {
            Self::RegisterCitizen(_) => "RegisterCitizen",
            Self::ChangeCitizenName(_) => "ChangeCitizenName",
            Self::ChangeResidence(_) => "ChangeResidence",
            Self::RegisterMarriage(_) => "RegisterMarriage",
            Self::RegisterDivorce(_) => "RegisterDivorce",
            Self::SetParents(_) => "SetParents",
            Self::IssueIdentityCard(_) => "IssueIdentityCard",
            Self::RecordDeath(_) => "RecordDeath",
            Self::MergeCitizens(_) => "MergeCitizens",
            Self::RegisterBusiness(_) => "RegisterBusiness",
            Self::RenameBusiness(_) => "RenameBusiness",
            Self::MoveHeadOffice(_) => "MoveHeadOffice",
            Self::ChangeLegalRepresentatives(_) => "ChangeLegalRepresentatives",
            Self::ChangeCharterCapital(_) => "ChangeCharterCapital",
            Self::ChangeBusinessLines(_) => "ChangeBusinessLines",
            Self::SuspendBusiness(_) => "SuspendBusiness",
            Self::ResumeBusiness(_) => "ResumeBusiness",
            Self::DissolveBusiness(_) => "DissolveBusiness",
            Self::RegisterBranch(_) => "RegisterBranch",
            Self::RegisterParcel(_) => "RegisterParcel",
            Self::TransferRights(_) => "TransferRights",
            Self::ChangeLandUse(_) => "ChangeLandUse",
            Self::IssueCertificate(_) => "IssueCertificate",
            Self::RevokeCertificate(_) => "RevokeCertificate",
            Self::RegisterMortgage(_) => "RegisterMortgage",
            Self::ReleaseMortgage(_) => "ReleaseMortgage",
            Self::SplitParcel(_) => "SplitParcel",
            Self::MergeParcels(_) => "MergeParcels",
            Self::RetireParcel(_) => "RetireParcel",
            Self::CorrectRecord(_) => "CorrectRecord",
            Self::ProposeCorrection(_) => "ProposeCorrection",
            Self::ApproveCorrection(_) => "ApproveCorrection",
            Self::RejectCorrection(_) => "RejectCorrection",
            Self::WithdrawCorrection(_) => "WithdrawCorrection",
            Self::ProposeRedaction(_) => "ProposeRedaction",
            Self::ApproveRedaction(_) => "ApproveRedaction",
            Self::RejectRedaction(_) => "RejectRedaction",
            Self::RestrictRecord(_) => "RestrictRecord",
            Self::LiftRestriction(_) => "LiftRestriction",
        }
    }

    /// Why this command takes no `effective_at` (`CommandContext::effective_at`), or `None` when
    /// it may carry one: its events state their own date (the field named), or they are not a
    /// fact about the record's subject. See `crate::valid_time`.
    pub fn refuses_effective_at(&self) -> Option<&'static str> {
        match self {
            Self::RegisterCitizen(_) => Some("its date is the `birth_date`"),
            Self::ChangeResidence(_) => Some("its date is stated in `since`"),
            Self::RegisterMarriage(_)
            | Self::RegisterDivorce(_)
            | Self::RecordDeath(_)
            | Self::RenameBusiness(_)
            | Self::MoveHeadOffice(_)
            | Self::ChangeLegalRepresentatives(_)
            | Self::ChangeCharterCapital(_)
            | Self::ChangeBusinessLines(_)
            | Self::TransferRights(_)
            | Self::ChangeLandUse(_)
            | Self::RevokeCertificate(_)
            | Self::ReleaseMortgage(_)
            | Self::SplitParcel(_)
            | Self::MergeParcels(_)
            | Self::RetireParcel(_) => Some("its date is stated in `date`"),
            Self::IssueIdentityCard(_) => Some("its date is stated in `issue_date`"),
            Self::RegisterBusiness(_) | Self::RegisterBranch(_) => {
                Some("its date is stated in `registration_date`")
            }
            Self::SuspendBusiness(_) => Some("its date is stated in `from`"),
            Self::ResumeBusiness(_) | Self::DissolveBusiness(_) => {
                Some("its date is stated in `on`")
            }
            Self::IssueCertificate(_) => Some("its date is stated in `certificate.issue_date`"),
            Self::RegisterMortgage(_) => Some("its date is stated in `mortgage.registered_on`"),
            Self::ApproveCorrection(_) => Some("an approval holds from when its proposal says"),
            Self::RejectCorrection(_)
            | Self::WithdrawCorrection(_)
            | Self::ProposeRedaction(_)
            | Self::ApproveRedaction(_)
            | Self::RejectRedaction(_)
            | Self::RestrictRecord(_)
            | Self::LiftRestriction(_) => {
                Some("it is not a fact about the record's subject (recorded time only)")
            }
            Self::ChangeCitizenName(_)
            | Self::SetParents(_)
            | Self::MergeCitizens(_)
            | Self::RegisterParcel(_)
            | Self::CorrectRecord(_)
            | Self::ProposeCorrection(_) => None,
        }
    }

    /// Streams to load before deciding (see [`Reads`]).
    pub fn reads(&self) -> Reads {
        let mut r = Reads::default();
        match self {
            Self::RegisterCitizen(c) => {
                r.record(c.citizen)
                    .records(c.father)
                    .records(c.mother)
                    .key(NaturalKey::Pin(c.pin));
            }
            Self::ChangeCitizenName(c) => {
                r.record(c.citizen);
            }
            Self::ChangeResidence(c) => {
                r.record(c.citizen);
            }
            Self::RegisterMarriage(c) => {
                r.record(c.citizen).record(c.spouse);
            }
            Self::RegisterDivorce(c) => {
                r.record(c.citizen).record(c.spouse);
            }
            Self::SetParents(c) => {
                r.record(c.citizen).records(c.father).records(c.mother);
            }
            Self::IssueIdentityCard(c) => {
                r.record(c.citizen);
            }
            Self::RecordDeath(c) => {
                r.record(c.citizen);
            }
            Self::MergeCitizens(c) => {
                r.record(c.survivor).record(c.duplicate);
            }
            Self::RegisterBusiness(c) => {
                r.record(c.business)
                    .records(c.legal_representatives.iter().copied())
                    .key(NaturalKey::Enterprise(c.code));
            }
            Self::RenameBusiness(c) => {
                r.record(c.business);
            }
            Self::MoveHeadOffice(c) => {
                r.record(c.business);
            }
            Self::ChangeLegalRepresentatives(c) => {
                r.record(c.business)
                    .records(c.legal_representatives.iter().copied());
            }
            Self::ChangeCharterCapital(c) => {
                r.record(c.business);
            }
            Self::ChangeBusinessLines(c) => {
                r.record(c.business);
            }
            Self::SuspendBusiness(c) => {
                r.record(c.business);
            }
            Self::ResumeBusiness(c) => {
                r.record(c.business);
            }
            Self::DissolveBusiness(c) => {
                r.record(c.business);
            }
            Self::RegisterBranch(c) => {
                r.record(c.branch)
                    .record(c.parent)
                    .records(c.legal_representatives.iter().copied())
                    .key(NaturalKey::Enterprise(c.code));
            }
            Self::RegisterParcel(c) => {
                r.record(c.parcel)
                    .holders(&c.holders)
                    .key(NaturalKey::Parcel(c.key));
            }
            Self::TransferRights(c) => {
                r.record(c.parcel).holders(&c.holders);
            }
            Self::ChangeLandUse(c) => {
                r.record(c.parcel);
            }
            Self::IssueCertificate(c) => {
                r.record(c.parcel);
            }
            Self::RevokeCertificate(c) => {
                r.record(c.parcel);
            }
            Self::RegisterMortgage(c) => {
                r.record(c.parcel).record(c.mortgage.creditor);
            }
            Self::ReleaseMortgage(c) => {
                r.record(c.parcel);
            }
            Self::SplitParcel(c) => {
                r.record(c.source);
                for part in &c.parts {
                    r.record(part.parcel).key(NaturalKey::Parcel(part.key));
                }
            }
            Self::MergeParcels(c) => {
                r.records(c.sources.iter().copied())
                    .record(c.into.parcel)
                    .key(NaturalKey::Parcel(c.into.key));
            }
            Self::RetireParcel(c) => {
                r.record(c.parcel);
            }
            Self::CorrectRecord(c) => {
                r.record(c.record).field_changes(&c.changes);
            }
            Self::ProposeCorrection(c) => {
                r.record(c.record).field_changes(&c.changes);
            }
            Self::ApproveCorrection(c) => {
                r.record(c.record);
            }
            Self::RejectCorrection(c) => {
                r.record(c.record);
            }
            Self::WithdrawCorrection(c) => {
                r.record(c.record);
            }
            Self::ProposeRedaction(c) => {
                r.record(c.record);
            }
            Self::ApproveRedaction(c) => {
                r.record(c.record);
            }
            Self::RejectRedaction(c) => {
                r.record(c.record);
            }
            Self::RestrictRecord(c) => {
                r.record(c.record);
            }
            Self::LiftRestriction(c) => {
                r.record(c.record);
            }
        }
        r
    }
}
