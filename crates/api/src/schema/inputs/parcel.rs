//! Inputs of the land register's commands (`citydb_domain::parcel::commands`).

use async_graphql::{Enum, InputObject, Json};
use serde::Serialize;
use serde_json::Value;

use super::{Date, LegalBasisInput, Vnd};

/// Who holds a land-use right: a citizen or a business.
#[derive(Enum, Serialize, Copy, Clone, Eq, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum HolderKind {
    Citizen,
    Business,
}

/// A holder: the kind of record and its id (UUID).
#[derive(InputObject, Serialize)]
pub struct HolderInput {
    pub kind: HolderKind,
    pub id: String,
}

/// A holder and their share of the right: `"1"`, or a reduced fraction such as `"1/2"`.
#[derive(InputObject, Serialize)]
pub struct HoldingInput {
    pub holder: HolderInput,
    pub share: String,
}

/// How land-use rights pass to the new holders.
#[derive(Enum, Serialize, Copy, Clone, Eq, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    Sale,
    Inheritance,
    Gift,
}

/// A land-use right certificate (GCN).
#[derive(InputObject, Serialize)]
pub struct CertificateInput {
    /// The certificate's serial (số phát hành).
    pub serial: String,
    /// Registry entry number (số vào sổ cấp GCN), distinct from the serial.
    pub entry_number: String,
    pub issue_date: Date,
    pub issuer: String,
}

/// A mortgage registered on the parcel.
#[derive(InputObject, Serialize)]
pub struct MortgageInput {
    pub contract_number: String,
    /// The creditor's business record id (UUID).
    pub creditor: String,
    pub amount: Vnd,
    pub registered_on: Date,
}

/// A parcel created by a split or merge.
#[derive(InputObject, Serialize)]
pub struct NewParcelInput {
    /// The new record's id (UUID).
    pub parcel: String,
    /// The parcel key: commune code, map sheet and parcel number.
    pub key: String,
    /// Area in m², up to 2 decimals, e.g. `"125.50"`.
    pub area: String,
}

/// Registers a parcel with its holders (shares sum to exactly 1).
#[derive(InputObject, Serialize)]
pub struct RegisterParcelInput {
    /// The new record's id (UUID).
    pub parcel: String,
    /// The parcel key: commune code, map sheet and parcel number.
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub national_parcel_id: Option<String>,
    /// Area in m², up to 2 decimals, e.g. `"125.50"`.
    pub area: String,
    /// Land-use codes (e.g. `ODT`).
    pub land_use: Vec<String>,
    pub address: String,
    /// A GeoJSON Polygon or MultiPolygon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub geometry: Option<Json<Value>>,
    pub holders: Vec<HoldingInput>,
}

/// Sale, inheritance or gift to new holders.
#[derive(InputObject, Serialize)]
pub struct TransferRightsInput {
    pub parcel: String,
    pub kind: TransferKind,
    pub holders: Vec<HoldingInput>,
    pub date: Date,
    /// Contract numbers of mortgages released in the same operation; every registered
    /// mortgage must be listed or the transfer is refused.
    #[graphql(default)]
    pub release_mortgages: Vec<String>,
}

#[derive(InputObject, Serialize)]
pub struct ChangeLandUseInput {
    pub parcel: String,
    pub land_use: Vec<String>,
    pub date: Date,
    pub legal_basis: LegalBasisInput,
}

#[derive(InputObject, Serialize)]
pub struct IssueCertificateInput {
    pub parcel: String,
    pub certificate: CertificateInput,
}

#[derive(InputObject, Serialize)]
pub struct RevokeCertificateInput {
    pub parcel: String,
    pub serial: String,
    pub date: Date,
    pub reason: String,
}

#[derive(InputObject, Serialize)]
pub struct RegisterMortgageInput {
    pub parcel: String,
    pub mortgage: MortgageInput,
}

#[derive(InputObject, Serialize)]
pub struct ReleaseMortgageInput {
    pub parcel: String,
    pub contract_number: String,
    pub date: Date,
}

/// Splits a parcel into new ones whose areas add up exactly.
#[derive(InputObject, Serialize)]
pub struct SplitParcelInput {
    pub source: String,
    pub parts: Vec<NewParcelInput>,
    pub date: Date,
}

#[derive(InputObject, Serialize)]
pub struct MergeParcelsInput {
    pub sources: Vec<String>,
    pub into: NewParcelInput,
    pub date: Date,
}

#[derive(InputObject, Serialize)]
pub struct RetireParcelInput {
    pub parcel: String,
    pub date: Date,
    pub reason: String,
}
