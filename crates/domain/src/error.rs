//! Every way a command can be refused, as data. `code()` gives a stable
//! machine-readable code for the API; the `Display` text is for people.

use serde::Serialize;
use thiserror::Error;

use crate::date::{Date, PartialDate};
use crate::ids::{
    BusinessId, CertificateSerial, CitizenId, CorrectionId, EnterpriseCode, ParcelId, PinMismatch,
    RecordId, RecordKind, UnknownCode,
};
use crate::key::NaturalKey;
use crate::quantity::Area;
use crate::target::Target;

/// Why `decide` refused a command. Deciding is pure, so a refusal means
/// nothing is written.
#[derive(Debug, Clone, PartialEq, Error, Serialize)]
#[serde(tag = "code_name", content = "detail")]
pub enum DomainError {
    // --- handler protocol -------------------------------------------------
    /// Not a user error: the snapshot lacks a stream the rules need (e.g. a
    /// spouse found only in state). The handler loads it and decides again.
    #[error("{0} is not in the snapshot; load it and decide again")]
    NotLoaded(Target),
    #[error("snapshot holds a {found} record under id {id}")]
    WrongRecordKind { id: RecordId, found: RecordKind },

    // --- existence and uniqueness -----------------------------------------
    #[error("record {0} does not exist")]
    RecordNotFound(RecordId),
    #[error("record {0} already exists")]
    RecordExists(RecordId),
    #[error("{key} is already held by {holder}")]
    DuplicateKey { key: NaturalKey, holder: RecordId },

    // --- lifecycle --------------------------------------------------------
    #[error("record {id} was merged into {survivor} and is read-only")]
    RecordMerged { id: RecordId, survivor: RecordId },
    #[error("record {0} is retired")]
    RecordRetired(RecordId),
    #[error("citizen {0} is deceased")]
    CitizenDeceased(CitizenId),
    #[error("business {0} is dissolved")]
    BusinessDissolved(BusinessId),
    #[error("business {0} is suspended")]
    BusinessSuspended(BusinessId),
    #[error("business {0} is not suspended")]
    BusinessNotSuspended(BusinessId),

    // --- citizens ---------------------------------------------------------
    #[error("PIN does not match the record: {0}")]
    PinMismatch(PinMismatch),
    #[error("a citizen cannot be linked to themself ({0})")]
    SameCitizen(CitizenId),
    #[error("citizen {0} is already married")]
    AlreadyMarried(CitizenId),
    #[error("citizens {citizen} and {spouse} are not married to each other")]
    NotMarried {
        citizen: CitizenId,
        spouse: CitizenId,
    },
    #[error("{date} is before the birth of citizen {citizen}")]
    DateBeforeBirth {
        citizen: CitizenId,
        date: PartialDate,
    },
    #[error("identity card number must equal the citizen's PIN")]
    CardNumberMismatch,

    // --- businesses -------------------------------------------------------
    #[error("legal representative {0} is deceased")]
    DeceasedRepresentative(CitizenId),
    #[error("a business needs at least one legal representative")]
    NoLegalRepresentative,
    #[error("a business needs at least one business line")]
    NoBusinessLines,
    #[error("{code} has a legacy check digit; only initial loads may carry it")]
    LegacyCheckDigit { code: EnterpriseCode },
    #[error("branch code {code} must be the parent's code {parent_code} plus a suffix")]
    BranchCodeMismatch {
        code: EnterpriseCode,
        parent_code: EnterpriseCode,
    },
    #[error("{code} is a branch code; register it as a branch")]
    BranchCodeNotAllowed { code: EnterpriseCode },
    #[error("business {0} is a branch and cannot have branches")]
    ParentIsBranch(BusinessId),
    #[error("business {0} is a branch; this does not apply to branches")]
    NotApplicableToBranch(BusinessId),
    #[error("period {from} – {until} ends before it starts")]
    InvalidPeriod { from: Date, until: Date },

    // --- land parcels -----------------------------------------------------
    #[error("a parcel needs at least one rights holder")]
    NoHolders,
    #[error("holder shares sum to {sum}, not exactly 1")]
    SharesNotOne { sum: String },
    #[error("rights holder {0} is deceased")]
    DeceasedHolder(CitizenId),
    #[error("rights holder {0} is dissolved")]
    DissolvedHolder(BusinessId),
    #[error("parcel {parcel} is mortgaged (contracts {contracts:?})")]
    ParcelMortgaged {
        parcel: ParcelId,
        contracts: Vec<String>,
    },
    #[error("parcel {parcel} has no active mortgage {contract_number}")]
    MortgageNotFound {
        parcel: ParcelId,
        contract_number: String,
    },
    #[error("parcel {parcel} already has mortgage {contract_number}")]
    DuplicateMortgage {
        parcel: ParcelId,
        contract_number: String,
    },
    #[error("parcel {parcel} already has certificate {serial}; revoke it first")]
    CertificateExists {
        parcel: ParcelId,
        serial: CertificateSerial,
    },
    #[error("parcel {parcel} has no current certificate {serial}")]
    CertificateNotFound {
        parcel: ParcelId,
        serial: CertificateSerial,
    },
    #[error("areas do not add up: expected {expected} m², got {actual} m²")]
    AreaMismatch { expected: Area, actual: Area },
    #[error("an area must be greater than zero")]
    ZeroArea,
    #[error("a split or merge needs at least two parcels")]
    TooFewParts,
    #[error("merged parcels must have the same rights holders")]
    HoldersDiffer,
    #[error("a parcel needs at least one land-use code")]
    NoLandUse,
    /// A code (administrative unit, province, country, land use) in no entry of the
    /// reference list it names.
    #[error(transparent)]
    UnknownCode(UnknownCode),

    // --- stewardship ------------------------------------------------------
    #[error("{kind} records have no correctable field `{field}`")]
    UnknownField { kind: RecordKind, field: String },
    #[error("invalid value for `{field}`: {message}")]
    InvalidFieldValue { field: String, message: String },
    /// The `old` value sent does not equal the record's current value. The
    /// current value is deliberately not named: it may be personal data (a
    /// PIN, a birth date) and this error is no logged read.
    #[error("the old value given for `{field}` does not match the record")]
    CorrectionConflict { field: String },
    #[error("`{field}` is protected: propose a correction for a supervisor to approve")]
    ProtectedField { field: String },
    #[error("a correction must change at least one field")]
    EmptyCorrection,
    #[error("the new value of `{field}` equals the current one")]
    NoOpChange { field: String },
    #[error("correction {0} already exists")]
    CorrectionExists(CorrectionId),
    #[error("correction {0} does not exist on this record")]
    CorrectionNotFound(CorrectionId),
    #[error("correction {0} is no longer pending")]
    CorrectionClosed(CorrectionId),
    #[error("only a supervisor may do this")]
    NotSupervisor,
    #[error("a correction must be reviewed by someone other than its proposer")]
    SelfReview,
    #[error("only the proposer may withdraw a correction")]
    NotProposer,

    // --- erasure and restriction ---------------------------------------------
    #[error("no event of this record is at log position {0}")]
    RedactionTargetNotFound(u64),
    #[error("the event at log position {0} is already redacted")]
    AlreadyRedacted(u64),
    #[error("a redaction of the event at log position {0} is already pending or approved")]
    RedactionExists(u64),
    #[error("no redaction of the event at log position {0} was proposed")]
    RedactionNotFound(u64),
    #[error("the redaction of the event at log position {0} is no longer pending")]
    RedactionClosed(u64),
    #[error("a {0} event cannot be redacted")]
    NotRedactable(&'static str),
    #[error("the record is already restricted")]
    AlreadyRestricted,
    #[error("the record is not restricted")]
    NotRestricted,

    // --- general ----------------------------------------------------------
    /// `effective_at` on a command that may not carry one (see `Command::refuses_effective_at`).
    #[error("{command} takes no effective date: {why}")]
    EffectiveAtRefused {
        command: &'static str,
        why: &'static str,
    },
    #[error("{what} `{value}` appears more than once")]
    DuplicateEntry { what: &'static str, value: String },
    #[error("{0} must not be empty")]
    MissingValue(&'static str),
    #[error("arithmetic overflow in {0}")]
    Overflow(&'static str),
    /// A free-text field longer than its documented maximum
    /// (`crate::text::LIMITS`), counted in characters.
    #[error("`{field}` is {length} characters long; the maximum is {max}")]
    TextTooLong {
        field: String,
        max: usize,
        length: usize,
    },
}

impl DomainError {
    /// Stable machine-readable code (never renamed once published).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotLoaded(_) => "NOT_LOADED",
            Self::WrongRecordKind { .. } => "WRONG_RECORD_KIND",
            Self::RecordNotFound(_) => "RECORD_NOT_FOUND",
            Self::RecordExists(_) => "RECORD_EXISTS",
            Self::DuplicateKey { .. } => "DUPLICATE_KEY",
            Self::RecordMerged { .. } => "RECORD_MERGED",
            Self::RecordRetired(_) => "RECORD_RETIRED",
            Self::CitizenDeceased(_) => "CITIZEN_DECEASED",
            Self::BusinessDissolved(_) => "BUSINESS_DISSOLVED",
            Self::BusinessSuspended(_) => "BUSINESS_SUSPENDED",
            Self::BusinessNotSuspended(_) => "BUSINESS_NOT_SUSPENDED",
            Self::PinMismatch(_) => "PIN_MISMATCH",
            Self::SameCitizen(_) => "SAME_CITIZEN",
            Self::AlreadyMarried(_) => "ALREADY_MARRIED",
            Self::NotMarried { .. } => "NOT_MARRIED",
            Self::DateBeforeBirth { .. } => "DATE_BEFORE_BIRTH",
            Self::CardNumberMismatch => "CARD_NUMBER_MISMATCH",
            Self::DeceasedRepresentative(_) => "DECEASED_REPRESENTATIVE",
            Self::NoLegalRepresentative => "NO_LEGAL_REPRESENTATIVE",
            Self::NoBusinessLines => "NO_BUSINESS_LINES",
            Self::LegacyCheckDigit { .. } => "LEGACY_CHECK_DIGIT",
            Self::BranchCodeMismatch { .. } => "BRANCH_CODE_MISMATCH",
            Self::BranchCodeNotAllowed { .. } => "BRANCH_CODE_NOT_ALLOWED",
            Self::ParentIsBranch(_) => "PARENT_IS_BRANCH",
            Self::NotApplicableToBranch(_) => "NOT_APPLICABLE_TO_BRANCH",
            Self::InvalidPeriod { .. } => "INVALID_PERIOD",
            Self::NoHolders => "NO_HOLDERS",
            Self::SharesNotOne { .. } => "SHARES_NOT_ONE",
            Self::DeceasedHolder(_) => "DECEASED_HOLDER",
            Self::DissolvedHolder(_) => "DISSOLVED_HOLDER",
            Self::ParcelMortgaged { .. } => "PARCEL_MORTGAGED",
            Self::MortgageNotFound { .. } => "MORTGAGE_NOT_FOUND",
            Self::DuplicateMortgage { .. } => "DUPLICATE_MORTGAGE",
            Self::CertificateExists { .. } => "CERTIFICATE_EXISTS",
            Self::CertificateNotFound { .. } => "CERTIFICATE_NOT_FOUND",
            Self::AreaMismatch { .. } => "AREA_MISMATCH",
            Self::ZeroArea => "INVALID_AREA",
            Self::TooFewParts => "TOO_FEW_PARTS",
            Self::HoldersDiffer => "HOLDERS_DIFFER",
            Self::NoLandUse => "NO_LAND_USE",
            Self::UnknownCode(_) => "UNKNOWN_CODE",
            Self::UnknownField { .. } => "UNKNOWN_FIELD",
            Self::InvalidFieldValue { .. } => "INVALID_FIELD_VALUE",
            Self::CorrectionConflict { .. } => "CORRECTION_CONFLICT",
            Self::ProtectedField { .. } => "PROTECTED_FIELD",
            Self::EmptyCorrection => "EMPTY_CORRECTION",
            Self::NoOpChange { .. } => "NO_OP_CHANGE",
            Self::CorrectionExists(_) => "CORRECTION_EXISTS",
            Self::CorrectionNotFound(_) => "CORRECTION_NOT_FOUND",
            Self::CorrectionClosed(_) => "CORRECTION_CLOSED",
            Self::NotSupervisor => "NOT_SUPERVISOR",
            Self::SelfReview => "SELF_REVIEW",
            Self::NotProposer => "NOT_PROPOSER",
            Self::RedactionTargetNotFound(_) => "REDACTION_TARGET_NOT_FOUND",
            Self::AlreadyRedacted(_) => "ALREADY_REDACTED",
            Self::RedactionExists(_) => "REDACTION_EXISTS",
            Self::RedactionNotFound(_) => "REDACTION_NOT_FOUND",
            Self::RedactionClosed(_) => "REDACTION_CLOSED",
            Self::NotRedactable(_) => "NOT_REDACTABLE",
            Self::AlreadyRestricted => "ALREADY_RESTRICTED",
            Self::NotRestricted => "NOT_RESTRICTED",
            Self::DuplicateEntry { .. } => "DUPLICATE_ENTRY",
            Self::MissingValue(_) => "MISSING_VALUE",
            Self::Overflow(_) => "ARITHMETIC_OVERFLOW",
            Self::TextTooLong { .. } => "TEXT_TOO_LONG",
            Self::EffectiveAtRefused { .. } => "EFFECTIVE_AT_REFUSED",
        }
    }
}
