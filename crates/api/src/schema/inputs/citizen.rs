//! Inputs of the citizen register's commands (`citydb_domain::citizen::commands`).

use async_graphql::{Enum, InputObject};
use serde::Serialize;

use super::{Date, LegalBasisInput, PartialDate, PersonNameInput, RegistrationOriginInput};
use crate::schema::records::Sex;

/// Permanent (thường trú) or temporary (tạm trú) residence.
#[derive(Enum, Serialize, Copy, Clone, Eq, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ResidenceKind {
    Permanent,
    Temporary,
}

/// Registers a citizen (birth registration or initial load).
#[derive(InputObject, Serialize)]
pub struct RegisterCitizenInput {
    /// The new record's id (UUID), chosen by the caller so a retry names the same record.
    pub citizen: String,
    /// The 12-digit personal identification number (số định danh cá nhân).
    pub pin: String,
    pub name: PersonNameInput,
    pub sex: Sex,
    pub birth_date: PartialDate,
    /// Administrative unit code of the place of birth.
    pub birth_place: String,
    /// The father's record id (UUID), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub father: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mother: Option<String>,
    pub origin: RegistrationOriginInput,
}

/// A legal change of name registered by the civil-status office (a proposal a supervisor
/// approves).
#[derive(InputObject, Serialize)]
pub struct ChangeCitizenNameInput {
    pub citizen: String,
    pub name: PersonNameInput,
    /// The civil-status decision.
    pub legal_basis: LegalBasisInput,
    /// The proposal's id (UUID); derived from the citizen, the legal basis and the new name
    /// when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correction: Option<String>,
}

/// A permanent or temporary residence registered from a date.
#[derive(InputObject, Serialize)]
pub struct ChangeResidenceInput {
    pub citizen: String,
    pub kind: ResidenceKind,
    /// Administrative unit code of the commune or ward.
    pub commune: String,
    /// Street address within the commune.
    pub address: String,
    pub since: Date,
}

/// A marriage, registered on both spouses' records.
#[derive(InputObject, Serialize)]
pub struct RegisterMarriageInput {
    pub citizen: String,
    pub spouse: String,
    pub date: Date,
}

/// A divorce, registered on both spouses' records.
#[derive(InputObject, Serialize)]
pub struct RegisterDivorceInput {
    pub citizen: String,
    pub spouse: String,
    pub date: Date,
}

/// Sets (or clears, when absent) a citizen's parents.
#[derive(InputObject, Serialize)]
pub struct SetParentsInput {
    pub citizen: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub father: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mother: Option<String>,
}

/// A citizen identity card (căn cước) issued to the citizen.
#[derive(InputObject, Serialize)]
pub struct IssueIdentityCardInput {
    pub citizen: String,
    /// The card's number (the citizen's PIN).
    pub number: String,
    pub issue_date: Date,
    /// The issuing authority.
    pub place: String,
}

/// A death, known to the year, month or day.
#[derive(InputObject, Serialize)]
pub struct RecordDeathInput {
    pub citizen: String,
    pub date: PartialDate,
}

/// Retires `duplicate` into `survivor` (two records of one person).
#[derive(InputObject, Serialize)]
pub struct MergeCitizensInput {
    pub survivor: String,
    pub duplicate: String,
    pub reason: String,
    pub legal_basis: LegalBasisInput,
}
