//! What can be asked of the citizen register.

use serde::{Deserialize, Serialize};

use crate::citizen::state::ResidenceKind;
use crate::date::{Date, PartialDate};
use crate::ids::{AdminUnitCode, CitizenId, CorrectionId, PersonalIdNumber, Sex};
use crate::name::PersonName;
use crate::origin::RegistrationOrigin;
use crate::stewardship::LegalBasis;

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
    /// new name when absent (see `name_change_proposal` in the citizen rules).
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
