//! What can be asked of the business register.

use serde::{Deserialize, Serialize};

use crate::business::state::{Address, BusinessNames};
use crate::date::Date;
use crate::ids::{BusinessId, CitizenId, EnterpriseCode, VsicCode};
use crate::origin::RegistrationOrigin;
use crate::quantity::Vnd;

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
