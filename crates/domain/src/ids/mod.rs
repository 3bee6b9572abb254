//! Validated identifiers and codes. Each parses from and displays as its
//! official string form and (de)serialises as that string.

pub mod admin;
pub mod certificate;
mod digits;
pub mod enterprise;
pub mod land_use;
pub mod lists;
pub mod parcel_key;
pub mod pin;
pub mod record;
pub mod vsic;

pub use admin::{
    AdminTableError, AdminUnit, AdminUnitCode, AdminUnitCodeError, AdminUnitError, AdminUnitTable,
    EFFECTIVE_2025, FormerUnitKind, PredecessorTableError, PredecessorUnit, ResolvedUnit,
    UnitCheck, UnitKind,
};
pub use certificate::{CertificateSerial, CertificateSerialError};
pub use enterprise::{
    CheckDigit, EnterpriseCode, EnterpriseCodeError, EnterpriseCodeWarning, check_digit,
};
pub use land_use::{LAND_USE_CODES, LandUseCode, LandUseCodeError, LandUseEntry, LandUseGroup};
pub use lists::{COUNTRY_CODES, ReferenceList, UnknownCode, is_country_code};
pub use parcel_key::{ParcelKey, ParcelKeyError};
pub use pin::{
    BirthRegistration, PROVINCE_CODES, PersonalIdNumber, PinError, PinMismatch, Sex, province_name,
};
pub use record::{
    BusinessId, CitizenId, CorrectionId, ParcelId, RecordId, RecordIdError, RecordKind,
};
pub use vsic::{VsicCheck, VsicCode, VsicCodeError, VsicEntry, VsicTable, VsicTableError};
