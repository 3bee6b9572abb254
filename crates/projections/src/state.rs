//! Reading a stored record state back from its JSON.
//!
//! The domain's `Record`, `Citizen`, `Business` and `LandParcel` implement `Serialize` but not
//! `Deserialize`, and this crate may not change the domain. The structs below mirror them field
//! for field and convert with struct literals, so a field added to the domain breaks this build
//! instead of being silently dropped; the integration test `queries_return_the_projected_records`
//! checks that every record read back equals the log's own replay. Once the domain derives
//! `Deserialize` for them, this module can go.

use serde::Deserialize;

use citydb_domain::Date;
use citydb_domain::business::{Address, Business, BusinessNames, BusinessStatus};
use citydb_domain::citizen::{
    Citizen, IdentityCard, LifeStatus, Marriage, RegistrationOrigin, Residence,
};
use citydb_domain::geometry::Geometry;
use citydb_domain::parcel::{
    Certificate, Holding, LandParcel, Mortgage, ParcelOrigin, ParcelStatus,
};
use citydb_domain::stewardship::Corrections;
use citydb_domain::{
    AdminUnitCode, Area, BusinessId, CitizenId, EnterpriseCode, LandUseCode, ParcelId, ParcelKey,
    PartialDate, PersonName, PersonalIdNumber, Record, Sex, Vnd, VsicCode,
};

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum RecordDe {
    Citizen(CitizenDe),
    Business(BusinessDe),
    Parcel(ParcelDe),
}

#[derive(Deserialize)]
struct CitizenDe {
    id: CitizenId,
    pin: PersonalIdNumber,
    name: PersonName,
    sex: Sex,
    birth_date: PartialDate,
    birth_place: AdminUnitCode,
    father: Option<CitizenId>,
    mother: Option<CitizenId>,
    permanent_residence: Option<Residence>,
    temporary_residence: Option<Residence>,
    marriage: Option<Marriage>,
    identity_card: Option<IdentityCard>,
    life: LifeStatus,
    merged_into: Option<CitizenId>,
    absorbed: Vec<CitizenId>,
    origin: RegistrationOrigin,
    corrections: Corrections,
}

#[derive(Deserialize)]
struct BusinessDe {
    id: BusinessId,
    code: EnterpriseCode,
    names: BusinessNames,
    head_office: Address,
    legal_representatives: Vec<CitizenId>,
    charter_capital: Option<Vnd>,
    business_lines: Vec<VsicCode>,
    registration_date: Date,
    parent: Option<BusinessId>,
    branches: Vec<BusinessId>,
    status: BusinessStatus,
    origin: RegistrationOrigin,
    corrections: Corrections,
}

#[derive(Deserialize)]
struct ParcelDe {
    id: ParcelId,
    key: ParcelKey,
    national_parcel_id: Option<String>,
    area: Area,
    land_use: Vec<LandUseCode>,
    address: String,
    geometry: Option<Geometry>,
    holders: Vec<Holding>,
    certificate: Option<Certificate>,
    mortgages: Vec<Mortgage>,
    status: ParcelStatus,
    origin: ParcelOrigin,
    corrections: Corrections,
}

impl From<RecordDe> for Record {
    fn from(r: RecordDe) -> Self {
        match r {
            RecordDe::Citizen(c) => Record::Citizen(Citizen {
                id: c.id,
                pin: c.pin,
                name: c.name,
                sex: c.sex,
                birth_date: c.birth_date,
                birth_place: c.birth_place,
                father: c.father,
                mother: c.mother,
                permanent_residence: c.permanent_residence,
                temporary_residence: c.temporary_residence,
                marriage: c.marriage,
                identity_card: c.identity_card,
                life: c.life,
                merged_into: c.merged_into,
                absorbed: c.absorbed,
                origin: c.origin,
                corrections: c.corrections,
            }),
            RecordDe::Business(b) => Record::Business(Business {
                id: b.id,
                code: b.code,
                names: b.names,
                head_office: b.head_office,
                legal_representatives: b.legal_representatives,
                charter_capital: b.charter_capital,
                business_lines: b.business_lines,
                registration_date: b.registration_date,
                parent: b.parent,
                branches: b.branches,
                status: b.status,
                origin: b.origin,
                corrections: b.corrections,
            }),
            RecordDe::Parcel(p) => Record::Parcel(LandParcel {
                id: p.id,
                key: p.key,
                national_parcel_id: p.national_parcel_id,
                area: p.area,
                land_use: p.land_use,
                address: p.address,
                geometry: p.geometry,
                holders: p.holders,
                certificate: p.certificate,
                mortgages: p.mortgages,
                status: p.status,
                origin: p.origin,
                corrections: p.corrections,
            }),
        }
    }
}

/// Parses a record state stored by [`to_json`].
pub(crate) fn from_json(json: &str) -> Result<Record, serde_json::Error> {
    serde_json::from_str::<RecordDe>(json).map(Record::from)
}

/// The JSON stored for a record state. Deterministic: structs serialise in field order and
/// corrections are a `BTreeMap`, which `digest()` relies on.
pub(crate) fn to_json(record: &Record) -> Result<String, serde_json::Error> {
    serde_json::to_string(record)
}
