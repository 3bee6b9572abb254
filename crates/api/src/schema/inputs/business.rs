//! Inputs of the business register's commands (`citydb_domain::business::commands`).

use async_graphql::InputObject;
use serde::Serialize;

use super::{Date, RegistrationOriginInput, Vnd};

/// An enterprise's names as registered.
#[derive(InputObject, Serialize)]
pub struct BusinessNamesInput {
    /// The Vietnamese name (required).
    pub vietnamese: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub english: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub abbreviated: Option<String>,
}

/// An address: the administrative unit code and the street within it.
#[derive(InputObject, Serialize)]
pub struct AddressInput {
    pub commune: String,
    pub street: String,
}

/// Registers an enterprise; every legal representative must be a living citizen.
#[derive(InputObject, Serialize)]
pub struct RegisterBusinessInput {
    /// The new record's id (UUID).
    pub business: String,
    /// The 10-digit enterprise code (mã số doanh nghiệp).
    pub code: String,
    pub names: BusinessNamesInput,
    pub head_office: AddressInput,
    /// Citizen record ids (UUIDs).
    pub legal_representatives: Vec<String>,
    pub charter_capital: Vnd,
    /// VSIC codes of the registered business lines.
    pub business_lines: Vec<String>,
    pub registration_date: Date,
    pub origin: RegistrationOriginInput,
}

#[derive(InputObject, Serialize)]
pub struct RenameBusinessInput {
    pub business: String,
    pub names: BusinessNamesInput,
    pub date: Date,
}

#[derive(InputObject, Serialize)]
pub struct MoveHeadOfficeInput {
    pub business: String,
    pub head_office: AddressInput,
    pub date: Date,
}

/// Replaces the list of legal representatives (citizen record ids).
#[derive(InputObject, Serialize)]
pub struct ChangeLegalRepresentativesInput {
    pub business: String,
    pub legal_representatives: Vec<String>,
    pub date: Date,
}

#[derive(InputObject, Serialize)]
pub struct ChangeCharterCapitalInput {
    pub business: String,
    pub charter_capital: Vnd,
    pub date: Date,
}

/// Replaces the registered business lines (VSIC codes).
#[derive(InputObject, Serialize)]
pub struct ChangeBusinessLinesInput {
    pub business: String,
    pub business_lines: Vec<String>,
    pub date: Date,
}

#[derive(InputObject, Serialize)]
pub struct SuspendBusinessInput {
    pub business: String,
    pub from: Date,
    pub until: Date,
}

#[derive(InputObject, Serialize)]
pub struct ResumeBusinessInput {
    pub business: String,
    pub on: Date,
}

#[derive(InputObject, Serialize)]
pub struct DissolveBusinessInput {
    pub business: String,
    pub on: Date,
}

/// A branch: its own business record, referencing its parent; its code is the parent's code
/// plus a `-NNN` suffix.
#[derive(InputObject, Serialize)]
pub struct RegisterBranchInput {
    pub branch: String,
    pub parent: String,
    pub code: String,
    pub names: BusinessNamesInput,
    pub address: AddressInput,
    /// The branch head(s): citizen record ids.
    pub legal_representatives: Vec<String>,
    pub business_lines: Vec<String>,
    pub registration_date: Date,
    pub origin: RegistrationOriginInput,
}
