//! What can be asked of the land register.

use serde::{Deserialize, Serialize};

use crate::date::Date;
use crate::geometry::Geometry;
use crate::ids::{CertificateSerial, LandUseCode, ParcelId, ParcelKey};
use crate::parcel::state::{Certificate, Holding, Mortgage, TransferKind};
use crate::quantity::Area;
use crate::stewardship::LegalBasis;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterParcel {
    pub parcel: ParcelId,
    pub key: ParcelKey,
    #[serde(default)]
    pub national_parcel_id: Option<String>,
    pub area: Area,
    pub land_use: Vec<LandUseCode>,
    pub address: String,
    #[serde(default)]
    pub geometry: Option<Geometry>,
    pub holders: Vec<Holding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferRights {
    pub parcel: ParcelId,
    pub kind: TransferKind,
    pub holders: Vec<Holding>,
    pub date: Date,
    /// Contract numbers of mortgages released in the same operation; every
    /// registered mortgage must be listed or the transfer is refused.
    #[serde(default)]
    pub release_mortgages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeLandUse {
    pub parcel: ParcelId,
    pub land_use: Vec<LandUseCode>,
    pub date: Date,
    pub legal_basis: LegalBasis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueCertificate {
    pub parcel: ParcelId,
    pub certificate: Certificate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeCertificate {
    pub parcel: ParcelId,
    pub serial: CertificateSerial,
    pub date: Date,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterMortgage {
    pub parcel: ParcelId,
    pub mortgage: Mortgage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseMortgage {
    pub parcel: ParcelId,
    pub contract_number: String,
    pub date: Date,
}

/// A parcel created by a split or merge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewParcel {
    pub parcel: ParcelId,
    pub key: ParcelKey,
    pub area: Area,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitParcel {
    pub source: ParcelId,
    pub parts: Vec<NewParcel>,
    pub date: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeParcels {
    pub sources: Vec<ParcelId>,
    pub into: NewParcel,
    pub date: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetireParcel {
    pub parcel: ParcelId,
    pub date: Date,
    pub reason: String,
}
