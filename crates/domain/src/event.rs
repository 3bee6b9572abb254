//! Events: the facts appended to streams. One enum covers every stream kind
//! (record streams and key streams) so a handler deserialises uniformly.
//!
//! Serialised with an internal tag `"type"` equal to [`Event::event_type`].
//! Each type has a schema version ([`Event::schema_version`]); the handler
//! stores both next to the JSON and reads old versions back through
//! [`upcast`], so the enum only ever describes the current shape.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::business::state::{Address, BusinessNames};
use crate::citizen::state::ResidenceKind;
use crate::date::{Date, PartialDate};
use crate::geometry::Geometry;
use crate::ids::{
    AdminUnitCode, BusinessId, CertificateSerial, CitizenId, CorrectionId, EnterpriseCode,
    LandUseCode, ParcelId, ParcelKey, PersonalIdNumber, RecordId, Sex, VsicCode,
};
use crate::key::NaturalKey;
use crate::name::PersonName;
use crate::origin::RegistrationOrigin;
use crate::parcel::state::{Certificate, Holding, Mortgage, ParcelOrigin, TransferKind};
use crate::quantity::{Area, Vnd};
use crate::stewardship::{FieldChange, LegalBasis};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    // --- key streams ---
    KeyClaimed {
        key: NaturalKey,
        record: RecordId,
    },
    KeyReleased {
        key: NaturalKey,
        record: RecordId,
    },

    // --- citizens ---
    CitizenRegistered {
        citizen: CitizenId,
        pin: PersonalIdNumber,
        name: PersonName,
        sex: Sex,
        birth_date: PartialDate,
        birth_place: AdminUnitCode,
        father: Option<CitizenId>,
        mother: Option<CitizenId>,
        origin: RegistrationOrigin,
    },
    CitizenNameChanged {
        name: PersonName,
        legal_basis: LegalBasis,
    },
    /// v2 added `kind`; v1 events were all permanent residence.
    ResidenceChanged {
        kind: ResidenceKind,
        commune: AdminUnitCode,
        address: String,
        since: Date,
    },
    MarriageRegistered {
        spouse: CitizenId,
        date: Date,
    },
    DivorceRegistered {
        spouse: CitizenId,
        date: Date,
    },
    /// On the surviving spouse's stream when the other spouse dies.
    SpouseDeceased {
        spouse: CitizenId,
        date: PartialDate,
    },
    ParentsSet {
        father: Option<CitizenId>,
        mother: Option<CitizenId>,
    },
    IdentityCardIssued {
        number: PersonalIdNumber,
        issue_date: Date,
        place: String,
    },
    CitizenDeceased {
        date: PartialDate,
    },
    /// On the duplicate: it is read-only from now on.
    MergedInto {
        survivor: CitizenId,
        reason: String,
        legal_basis: LegalBasis,
        steward: String,
    },
    /// On the survivor.
    Absorbed {
        duplicate: CitizenId,
    },

    // --- businesses ---
    BusinessRegistered {
        business: BusinessId,
        code: EnterpriseCode,
        names: BusinessNames,
        head_office: Address,
        legal_representatives: Vec<CitizenId>,
        charter_capital: Option<Vnd>,
        business_lines: Vec<VsicCode>,
        registration_date: Date,
        parent: Option<BusinessId>,
        origin: RegistrationOrigin,
    },
    /// On the parent's stream when a branch is registered.
    BranchAdded {
        branch: BusinessId,
        code: EnterpriseCode,
    },
    BusinessRenamed {
        names: BusinessNames,
        date: Date,
    },
    HeadOfficeMoved {
        head_office: Address,
        date: Date,
    },
    LegalRepresentativesChanged {
        legal_representatives: Vec<CitizenId>,
        date: Date,
    },
    CharterCapitalChanged {
        charter_capital: Vnd,
        date: Date,
    },
    BusinessLinesChanged {
        business_lines: Vec<VsicCode>,
        date: Date,
    },
    BusinessSuspended {
        from: Date,
        until: Date,
    },
    BusinessResumed {
        on: Date,
    },
    BusinessDissolved {
        on: Date,
    },

    // --- land parcels ---
    ParcelRegistered {
        parcel: ParcelId,
        key: ParcelKey,
        national_parcel_id: Option<String>,
        area: Area,
        land_use: Vec<LandUseCode>,
        address: String,
        geometry: Option<Geometry>,
        holders: Vec<Holding>,
        origin: ParcelOrigin,
    },
    RightsTransferred {
        kind: TransferKind,
        holders: Vec<Holding>,
        date: Date,
    },
    LandUseChanged {
        land_use: Vec<LandUseCode>,
        date: Date,
        legal_basis: LegalBasis,
    },
    CertificateIssued {
        certificate: Certificate,
    },
    CertificateRevoked {
        serial: CertificateSerial,
        date: Date,
        reason: String,
    },
    MortgageRegistered {
        mortgage: Mortgage,
    },
    MortgageReleased {
        contract_number: String,
        date: Date,
    },
    ParcelSplit {
        into: Vec<ParcelId>,
        date: Date,
    },
    ParcelMergedInto {
        target: ParcelId,
        date: Date,
    },
    ParcelRetired {
        date: Date,
        reason: String,
    },

    // --- stewardship (any record) ---
    RecordCorrected {
        changes: Vec<FieldChange>,
        reason: String,
        legal_basis: LegalBasis,
        steward: String,
    },
    CorrectionProposed {
        correction: CorrectionId,
        changes: Vec<FieldChange>,
        reason: String,
        legal_basis: LegalBasis,
        steward: String,
    },
    CorrectionApproved {
        correction: CorrectionId,
        supervisor: String,
    },
    CorrectionRejected {
        correction: CorrectionId,
        supervisor: String,
        reason: String,
    },
    CorrectionWithdrawn {
        correction: CorrectionId,
        steward: String,
    },

    // --- erasure and restriction (any record; see `crate::redaction`) ---
    RedactionProposed {
        position: u64,
        event_hash: String,
        event_type: String,
        reason: String,
        legal_basis: LegalBasis,
        steward: String,
        replacement: Box<Event>,
    },
    /// Takes effect as the blanking of the event at `position`; `replacement` is what every
    /// replay applies in its place.
    RedactionApproved {
        position: u64,
        event_hash: String,
        event_type: String,
        reason: String,
        legal_basis: LegalBasis,
        steward: String,
        supervisor: String,
        replacement: Box<Event>,
    },
    RedactionRejected {
        position: u64,
        supervisor: String,
        reason: String,
    },
    RecordRestricted {
        reason: String,
        legal_basis: LegalBasis,
        steward: String,
    },
    RestrictionLifted {
        reason: String,
        legal_basis: LegalBasis,
        supervisor: String,
    },
}

impl Event {
    /// The serde tag; stored next to the payload.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::KeyClaimed { .. } => "KeyClaimed",
            Self::KeyReleased { .. } => "KeyReleased",
            Self::CitizenRegistered { .. } => "CitizenRegistered",
            Self::CitizenNameChanged { .. } => "CitizenNameChanged",
            Self::ResidenceChanged { .. } => "ResidenceChanged",
            Self::MarriageRegistered { .. } => "MarriageRegistered",
            Self::DivorceRegistered { .. } => "DivorceRegistered",
            Self::SpouseDeceased { .. } => "SpouseDeceased",
            Self::ParentsSet { .. } => "ParentsSet",
            Self::IdentityCardIssued { .. } => "IdentityCardIssued",
            Self::CitizenDeceased { .. } => "CitizenDeceased",
            Self::MergedInto { .. } => "MergedInto",
            Self::Absorbed { .. } => "Absorbed",
            Self::BusinessRegistered { .. } => "BusinessRegistered",
            Self::BranchAdded { .. } => "BranchAdded",
            Self::BusinessRenamed { .. } => "BusinessRenamed",
            Self::HeadOfficeMoved { .. } => "HeadOfficeMoved",
            Self::LegalRepresentativesChanged { .. } => "LegalRepresentativesChanged",
            Self::CharterCapitalChanged { .. } => "CharterCapitalChanged",
            Self::BusinessLinesChanged { .. } => "BusinessLinesChanged",
            Self::BusinessSuspended { .. } => "BusinessSuspended",
            Self::BusinessResumed { .. } => "BusinessResumed",
            Self::BusinessDissolved { .. } => "BusinessDissolved",
            Self::ParcelRegistered { .. } => "ParcelRegistered",
            Self::RightsTransferred { .. } => "RightsTransferred",
            Self::LandUseChanged { .. } => "LandUseChanged",
            Self::CertificateIssued { .. } => "CertificateIssued",
            Self::CertificateRevoked { .. } => "CertificateRevoked",
            Self::MortgageRegistered { .. } => "MortgageRegistered",
            Self::MortgageReleased { .. } => "MortgageReleased",
            Self::ParcelSplit { .. } => "ParcelSplit",
            Self::ParcelMergedInto { .. } => "ParcelMergedInto",
            Self::ParcelRetired { .. } => "ParcelRetired",
            Self::RecordCorrected { .. } => "RecordCorrected",
            Self::CorrectionProposed { .. } => "CorrectionProposed",
            Self::CorrectionApproved { .. } => "CorrectionApproved",
            Self::CorrectionRejected { .. } => "CorrectionRejected",
            Self::CorrectionWithdrawn { .. } => "CorrectionWithdrawn",
            Self::RedactionProposed { .. } => "RedactionProposed",
            Self::RedactionApproved { .. } => "RedactionApproved",
            Self::RedactionRejected { .. } => "RedactionRejected",
            Self::RecordRestricted { .. } => "RecordRestricted",
            Self::RestrictionLifted { .. } => "RestrictionLifted",
        }
    }

    /// Current schema version of this event's type.
    pub fn schema_version(&self) -> u32 {
        current_schema_version(self.event_type()).unwrap_or(1)
    }

    /// The JSON payload to store (includes the `"type"` tag).
    pub fn to_json(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }

    /// Stewardship events apply to any record kind.
    pub(crate) fn is_stewardship(&self) -> bool {
        matches!(
            self,
            Self::RecordCorrected { .. }
                | Self::CorrectionProposed { .. }
                | Self::CorrectionApproved { .. }
                | Self::CorrectionRejected { .. }
                | Self::CorrectionWithdrawn { .. }
        )
    }
}

/// Every event type with its current schema version. Bump a version when a
/// type's shape changes and teach [`upcast`] to lift the old shape.
pub const EVENT_SCHEMA_VERSIONS: &[(&str, u32)] = &[
    ("KeyClaimed", 1),
    ("KeyReleased", 1),
    ("CitizenRegistered", 1),
    ("CitizenNameChanged", 1),
    ("ResidenceChanged", 2),
    ("MarriageRegistered", 1),
    ("DivorceRegistered", 1),
    ("SpouseDeceased", 1),
    ("ParentsSet", 1),
    ("IdentityCardIssued", 1),
    ("CitizenDeceased", 1),
    ("MergedInto", 1),
    ("Absorbed", 1),
    ("BusinessRegistered", 1),
    ("BranchAdded", 1),
    ("BusinessRenamed", 1),
    ("HeadOfficeMoved", 1),
    ("LegalRepresentativesChanged", 1),
    ("CharterCapitalChanged", 1),
    ("BusinessLinesChanged", 1),
    ("BusinessSuspended", 1),
    ("BusinessResumed", 1),
    ("BusinessDissolved", 1),
    ("ParcelRegistered", 1),
    ("RightsTransferred", 1),
    ("LandUseChanged", 1),
    ("CertificateIssued", 1),
    ("CertificateRevoked", 1),
    ("MortgageRegistered", 1),
    ("MortgageReleased", 1),
    ("ParcelSplit", 1),
    ("ParcelMergedInto", 1),
    ("ParcelRetired", 1),
    ("RecordCorrected", 1),
    ("CorrectionProposed", 1),
    ("CorrectionApproved", 1),
    ("CorrectionRejected", 1),
    ("CorrectionWithdrawn", 1),
    ("RedactionProposed", 1),
    ("RedactionApproved", 1),
    ("RedactionRejected", 1),
    ("RecordRestricted", 1),
    ("RestrictionLifted", 1),
];

pub fn current_schema_version(event_type: &str) -> Option<u32> {
    EVENT_SCHEMA_VERSIONS
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, v)| *v)
}

#[derive(Debug, Error)]
pub enum UpcastError {
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    #[error("`{event_type}` v{version} is newer than this build understands (v{current})")]
    FutureVersion {
        event_type: String,
        version: u32,
        current: u32,
    },
    #[error("`{event_type}` has no schema version {version}")]
    UnknownVersion { event_type: String, version: u32 },
    #[error("payload is not a JSON object")]
    NotAnObject,
    #[error("payload says type `{found}`, stored type is `{expected}`")]
    TypeMismatch { expected: String, found: String },
    #[error("payload does not match the schema: {0}")]
    Payload(#[from] serde_json::Error),
    #[error("payload is not JSON: {0}")]
    NotJson(serde_json::Error),
}

/// Reads a stored event of any known version as the current [`Event`].
///
/// `data` is the stored JSON object, with or without the `"type"` tag. Known
/// upcasts:
/// * `ResidenceChanged` v1 → v2: v1 had no `kind` (only permanent residence
///   was recorded), so `kind` defaults to `"permanent"`.
pub fn upcast(event_type: &str, schema_version: u32, data: &Value) -> Result<Event, UpcastError> {
    let current = current_schema_version(event_type)
        .ok_or_else(|| UpcastError::UnknownType(event_type.to_owned()))?;
    if schema_version > current {
        return Err(UpcastError::FutureVersion {
            event_type: event_type.to_owned(),
            version: schema_version,
            current,
        });
    }
    if schema_version == 0 {
        return Err(UpcastError::UnknownVersion {
            event_type: event_type.to_owned(),
            version: schema_version,
        });
    }
    let mut object = data.as_object().cloned().ok_or(UpcastError::NotAnObject)?;
    match object.get("type").and_then(Value::as_str) {
        Some(found) if found != event_type => {
            return Err(UpcastError::TypeMismatch {
                expected: event_type.to_owned(),
                found: found.to_owned(),
            });
        }
        _ => {
            object.insert("type".to_owned(), Value::from(event_type));
        }
    }
    if event_type == "ResidenceChanged" && schema_version < 2 {
        object
            .entry("kind")
            .or_insert_with(|| Value::from("permanent"));
    }
    Ok(serde_json::from_value(Value::Object(object))?)
}

/// [`upcast`] from the stored bytes, with the same answer (event or error).
///
/// Every event this build writes is at its type's current version and tagged with its type,
/// so it is read straight into [`Event`]: one parse instead of three (bytes to a `Value`, a
/// copy of its object, the `Value` to the event), the bulk of a projection rebuild's decoding.
/// Anything else — an older version, a payload without its tag or with another type's, one
/// that does not read — goes through [`upcast`], which decides the answer; the direct read is
/// only ever taken when it succeeds with the stored type, where both paths read the same
/// object into the same event.
pub fn upcast_slice(
    event_type: &str,
    schema_version: u32,
    data: &[u8],
) -> Result<Event, UpcastError> {
    if current_schema_version(event_type) == Some(schema_version)
        && let Ok(event) = read_event(data)
        && event.event_type() == event_type
    {
        return Ok(event);
    }
    let value: Value = serde_json::from_slice(data).map_err(UpcastError::NotJson)?;
    upcast(event_type, schema_version, &value)
}

/// Stored bytes read as an event, with one UTF-8 check of the whole payload, then `from_str`,
/// whose reader trusts it: `from_slice` checks every string by itself (8 % of the projections'
/// folding thread in a bulk import at 1/100, docs/benchmarks.md, 2026-12-04). Bytes that are
/// not UTF-8 go through `from_slice`, for its error.
fn read_event(data: &[u8]) -> serde_json::Result<Event> {
    match std::str::from_utf8(data) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(data),
    }
}

/// A stream that cannot be folded: corrupt, misrouted, or written by a buggy
/// handler. Never caused by user input (decide validates before emitting).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EvolveError {
    #[error("first event of a record stream must be a registration, got {0}")]
    NotARegistration(&'static str),
    #[error("{0} on a stream that already has a record")]
    AlreadyRegistered(&'static str),
    #[error("{event_type} does not belong on a {stream} stream")]
    WrongStream {
        event_type: &'static str,
        stream: &'static str,
    },
    #[error("inconsistent stream: {0}")]
    Inconsistent(&'static str),
    #[error("stored correction cannot be applied: {0}")]
    Correction(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_event_type_is_versioned_once() {
        let mut names: Vec<&str> = EVENT_SCHEMA_VERSIONS.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EVENT_SCHEMA_VERSIONS.len());
    }

    #[test]
    fn residence_changed_v1_upcasts_to_permanent() {
        let v1 = json!({"commune": "11311", "address": "12 Lạch Tray", "since": "2010-05-01"});
        let event = upcast("ResidenceChanged", 1, &v1).unwrap();
        assert_eq!(
            event,
            Event::ResidenceChanged {
                kind: ResidenceKind::Permanent,
                commune: "11311".parse().unwrap(),
                address: "12 Lạch Tray".to_owned(),
                since: "2010-05-01".parse().unwrap(),
            }
        );
        assert_eq!(event.schema_version(), 2);
        // v2 payloads must carry `kind`.
        assert!(matches!(
            upcast("ResidenceChanged", 2, &v1),
            Err(UpcastError::Payload(_))
        ));
        let v2 = event.to_json().unwrap();
        assert_eq!(upcast("ResidenceChanged", 2, &v2).unwrap(), event);
    }

    #[test]
    fn upcast_rejects_unknown_and_future() {
        let data = json!({});
        assert!(matches!(
            upcast("Nope", 1, &data),
            Err(UpcastError::UnknownType(_))
        ));
        assert!(matches!(
            upcast("CitizenDeceased", 2, &data),
            Err(UpcastError::FutureVersion { .. })
        ));
        assert!(matches!(
            upcast("CitizenDeceased", 0, &data),
            Err(UpcastError::UnknownVersion { .. })
        ));
        assert!(matches!(
            upcast("CitizenDeceased", 1, &json!([])),
            Err(UpcastError::NotAnObject)
        ));
        assert!(matches!(
            upcast(
                "CitizenDeceased",
                1,
                &json!({"type": "BusinessDissolved", "date": "2020"})
            ),
            Err(UpcastError::TypeMismatch { .. })
        ));
        assert!(upcast("CitizenDeceased", 1, &json!({"date": "2020"})).is_ok());
    }

    /// `upcast_slice` answers as `upcast` of the parsed bytes, on the paths where the direct
    /// read is tried and refused as well as where it is taken.
    #[test]
    fn upcast_slice_answers_as_upcast() {
        let cases: [(&str, u32, &str); 9] = [
            // Current version with its tag: the direct read.
            (
                "CitizenDeceased",
                1,
                r#"{"type":"CitizenDeceased","date":"2020"}"#,
            ),
            // Without the tag: only the Value path reads it.
            ("CitizenDeceased", 1, r#"{"date":"2020"}"#),
            // Another type's tag, whose own fields read: refused, not read as that type.
            (
                "CitizenDeceased",
                1,
                r#"{"type":"BusinessDissolved","date":"2020"}"#,
            ),
            // A v1 payload upcast, and the same payload refused as v2.
            (
                "ResidenceChanged",
                1,
                r#"{"commune":"11311","address":"12 Lạch Tray","since":"2010-05-01"}"#,
            ),
            (
                "ResidenceChanged",
                2,
                r#"{"type":"ResidenceChanged","commune":"11311","address":"12 Lạch Tray","since":"2010-05-01"}"#,
            ),
            // A duplicate key: the Value path keeps the last one.
            (
                "CitizenDeceased",
                1,
                r#"{"type":"CitizenDeceased","date":"2019","date":"2020"}"#,
            ),
            ("CitizenDeceased", 2, r#"{"date":"2020"}"#),
            ("Nope", 1, r#"{"date":"2020"}"#),
            ("CitizenDeceased", 1, r#"[1]"#),
        ];
        for (event_type, version, data) in cases {
            let value: Value = serde_json::from_str(data).unwrap();
            let expected = upcast(event_type, version, &value);
            let got = upcast_slice(event_type, version, data.as_bytes());
            assert_eq!(
                format!("{got:?}"),
                format!("{expected:?}"),
                "{event_type} v{version} {data}"
            );
        }
        assert_eq!(
            upcast_slice(
                "CitizenDeceased",
                1,
                br#"{"type":"CitizenDeceased","date":"2020"}"#
            )
            .unwrap()
            .event_type(),
            "CitizenDeceased"
        );
        assert!(matches!(
            upcast_slice("CitizenDeceased", 1, b"{not json"),
            Err(UpcastError::NotJson(_))
        ));
        // Not UTF-8: refused as not JSON, as before the one check of the whole payload.
        assert!(matches!(
            upcast_slice(
                "CitizenDeceased",
                1,
                b"{\"type\":\"CitizenDeceased\",\"date\":\"20\xff\"}"
            ),
            Err(UpcastError::NotJson(_))
        ));
    }
}
