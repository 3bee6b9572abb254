//! Inputs of the commands on any record: corrections, redactions, restrictions
//! (`citydb_domain::{command, redaction}`).

use async_graphql::{InputObject, Json};
use serde::Serialize;
use serde_json::Value;

use super::LegalBasisInput;

/// One field's correction: `field` names a correctable field of the record's kind (e.g.
/// `name.given`, `permanent_residence`); `old` and `new` are the field's values in its JSON form.
#[derive(InputObject, Serialize)]
pub struct FieldChangeInput {
    pub field: String,
    /// The value the record holds now (null when it holds none).
    pub old: Option<Json<Value>>,
    /// The corrected value (null to clear the field).
    pub new: Option<Json<Value>>,
}

/// Corrects unprotected fields directly.
#[derive(InputObject, Serialize)]
pub struct CorrectRecordInput {
    /// `citizen-<uuid>`, `business-<uuid>` or `parcel-<uuid>`.
    pub record: String,
    pub changes: Vec<FieldChangeInput>,
    pub reason: String,
    pub legal_basis: LegalBasisInput,
}

/// Proposes a correction of protected fields, for a different supervisor to approve.
#[derive(InputObject, Serialize)]
pub struct ProposeCorrectionInput {
    pub record: String,
    /// The proposal's id (UUID), chosen by the caller.
    pub correction: String,
    pub changes: Vec<FieldChangeInput>,
    pub reason: String,
    pub legal_basis: LegalBasisInput,
}

#[derive(InputObject, Serialize)]
pub struct ApproveCorrectionInput {
    pub record: String,
    pub correction: String,
}

#[derive(InputObject, Serialize)]
pub struct RejectCorrectionInput {
    pub record: String,
    pub correction: String,
    pub reason: String,
}

#[derive(InputObject, Serialize)]
pub struct WithdrawCorrectionInput {
    pub record: String,
    pub correction: String,
}

/// Proposes redacting the personal payload of the event at log `position` of the record.
#[derive(InputObject, Serialize)]
pub struct ProposeRedactionInput {
    pub record: String,
    /// The event's log position, as `history` shows it.
    pub position: i64,
    pub reason: String,
    /// The court or legal order.
    pub legal_basis: LegalBasisInput,
}

#[derive(InputObject, Serialize)]
pub struct ApproveRedactionInput {
    pub record: String,
    pub position: i64,
}

#[derive(InputObject, Serialize)]
pub struct RejectRedactionInput {
    pub record: String,
    pub position: i64,
    pub reason: String,
}

#[derive(InputObject, Serialize)]
pub struct RestrictRecordInput {
    pub record: String,
    pub reason: String,
    pub legal_basis: LegalBasisInput,
}

#[derive(InputObject, Serialize)]
pub struct LiftRestrictionInput {
    pub record: String,
    pub reason: String,
    pub legal_basis: LegalBasisInput,
}
