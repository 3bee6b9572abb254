//! A land parcel's state and the values it holds.

use serde::{Deserialize, Serialize};

use crate::date::Date;
use crate::geometry::Geometry;
use crate::ids::{
    BusinessId, CertificateSerial, CitizenId, LandUseCode, ParcelId, ParcelKey, RecordId,
};
use crate::quantity::{Area, Share, Vnd};
use crate::stewardship::Corrections;

/// Who holds land-use rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Holder {
    Citizen(CitizenId),
    Business(BusinessId),
}

impl From<Holder> for RecordId {
    fn from(h: Holder) -> Self {
        match h {
            Holder::Citizen(id) => RecordId::Citizen(id),
            Holder::Business(id) => RecordId::Business(id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holding {
    pub holder: Holder,
    pub share: Share,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    Sale,
    Inheritance,
    Gift,
}

/// A land-use right certificate (GCN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    pub serial: CertificateSerial,
    /// Registry entry number (số vào sổ cấp GCN), distinct from the serial.
    pub entry_number: String,
    pub issue_date: Date,
    pub issuer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mortgage {
    pub contract_number: String,
    pub creditor: BusinessId,
    pub amount: Vnd,
    pub registered_on: Date,
}

crate::tagged::tag_first! {
    tag = "kind";
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub enum ParcelOrigin {
        Registration,
        SplitFrom { source: ParcelId },
        MergedFrom { sources: Vec<ParcelId> },
    }
}

crate::tagged::tag_first! {
    tag = "status";
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub enum ParcelStatus {
        Active,
        Retired { on: Date, reason: String },
        Split { on: Date, into: Vec<ParcelId> },
        MergedInto { on: Date, target: ParcelId },
    }
}

impl ParcelStatus {
    pub fn kind(&self) -> ParcelStatusKind {
        match self {
            Self::Active => ParcelStatusKind::Active,
            Self::Retired { .. } => ParcelStatusKind::Retired,
            Self::Split { .. } => ParcelStatusKind::Split,
            Self::MergedInto { .. } => ParcelStatusKind::Merged,
        }
    }
}

/// A [`ParcelStatus`] without its dates and successors: what registers list
/// and filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParcelStatusKind {
    Active,
    Retired,
    Split,
    /// Merged into another parcel.
    Merged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parcel {
    pub id: ParcelId,
    pub key: ParcelKey,
    /// The national parcel identifier (mã định danh thửa đất): no official
    /// format is known, so it is opaque text.
    pub national_parcel_id: Option<String>,
    pub area: Area,
    pub land_use: Vec<LandUseCode>,
    pub address: String,
    pub geometry: Option<Geometry>,
    pub holders: Vec<Holding>,
    pub certificate: Option<Certificate>,
    pub mortgages: Vec<Mortgage>,
    pub status: ParcelStatus,
    pub origin: ParcelOrigin,
    pub corrections: Corrections,
    /// Restriction and redactions ([`crate::redaction`]).
    #[serde(default, skip_serializing_if = "crate::privacy::Privacy::is_empty")]
    pub privacy: crate::privacy::Privacy,
}

impl Parcel {
    pub fn is_active(&self) -> bool {
        self.status == ParcelStatus::Active
    }
}
