//! Stewardship: who may change what, and how corrections are recorded.
//!
//! Every correction names the fields it changes with their old and new values
//! (the old value must equal the record's current value, so two stewards
//! working from different screens cannot silently overwrite each other), a
//! reason, the legal basis and the steward. Unprotected fields are corrected
//! directly (`RecordCorrected`). Protected fields — the identity-bearing ones —
//! follow four-eyes: one steward proposes (`CorrectionProposed`), a *different*
//! actor with the Supervisor role approves (`CorrectionApproved`, which is when
//! the change takes effect), or rejects; the proposer may withdraw.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::date::Date;
use crate::error::DomainError;
use crate::ids::{CorrectionId, RecordKind, UnknownCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StewardRole {
    Steward,
    Supervisor,
}

/// Who issues a command. Authentication is the caller's job; the domain only
/// uses the id (for four-eyes) and the role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub id: String,
    pub role: StewardRole,
}

/// The legal document a change rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalBasis {
    pub document_number: String,
    pub document_date: Date,
}

/// One field's correction. `field` names a correctable field of the record
/// kind (see [`fields_of`]); values are in the field's JSON form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

crate::tagged::tag_first! {
    tag = "status";
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub enum CorrectionStatus {
        Pending,
        Approved { by: String },
        Rejected { by: String, reason: String },
        Withdrawn,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    pub id: CorrectionId,
    pub changes: Vec<FieldChange>,
    pub reason: String,
    pub legal_basis: LegalBasis,
    pub proposed_by: String,
    pub status: CorrectionStatus,
}

/// All corrections proposed on a record, by id.
pub type Corrections = BTreeMap<CorrectionId, Correction>;

/// A correctable field of a record kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    /// Changes only through propose + approve by a different supervisor.
    pub protected: bool,
}

const fn field(name: &'static str, protected: bool) -> FieldSpec {
    FieldSpec { name, protected }
}

pub const CITIZEN_FIELDS: &[FieldSpec] = &[
    field("pin", true),
    field("name.family", true),
    field("name.middle", true),
    field("name.given", true),
    field("sex", true),
    field("birth_date", true),
    field("birth_place", false),
    field("permanent_residence", false),
    field("temporary_residence", false),
    field("identity_card", false),
];

pub const BUSINESS_FIELDS: &[FieldSpec] = &[
    field("enterprise_code", true),
    field("names.vietnamese", false),
    field("names.english", false),
    field("names.abbreviated", false),
    field("head_office", false),
    field("registration_date", false),
    field("charter_capital", false),
    field("business_lines", false),
];

pub const PARCEL_FIELDS: &[FieldSpec] = &[
    field("key", true),
    field("area", true),
    field("holders", true),
    field("national_parcel_id", false),
    field("address", false),
    field("land_use", false),
    field("geometry", false),
];

/// The correctable fields of a record kind.
pub fn fields_of(kind: RecordKind) -> &'static [FieldSpec] {
    match kind {
        RecordKind::Citizen => CITIZEN_FIELDS,
        RecordKind::Business => BUSINESS_FIELDS,
        RecordKind::Parcel => PARCEL_FIELDS,
    }
}

pub fn field_spec(kind: RecordKind, name: &str) -> Result<FieldSpec, DomainError> {
    fields_of(kind)
        .iter()
        .find(|f| f.name == name)
        .copied()
        .ok_or_else(|| DomainError::UnknownField {
            kind,
            field: name.to_owned(),
        })
}

/// Parses a field's JSON value into its type, mapping failures to a typed error: a code in
/// no entry of its reference list is `UNKNOWN_CODE`, as it is in a command's own fields.
pub(crate) fn parse_field<T: serde::de::DeserializeOwned>(
    field: &str,
    value: &Value,
) -> Result<T, DomainError> {
    serde_json::from_value(value.clone()).map_err(|e| {
        let message = e.to_string();
        match UnknownCode::find_in(&message) {
            Some(unknown) => DomainError::UnknownCode(unknown),
            None => DomainError::InvalidFieldValue {
                field: field.to_owned(),
                message,
            },
        }
    })
}

pub(crate) fn to_field_value<T: Serialize>(field: &str, value: &T) -> Result<Value, DomainError> {
    serde_json::to_value(value).map_err(|e| DomainError::InvalidFieldValue {
        field: field.to_owned(),
        message: e.to_string(),
    })
}
