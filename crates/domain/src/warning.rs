//! What an accepted command carries for a steward to look at.

use serde::Serialize;

use crate::ids::{AdminUnitCode, CorrectionId, EnterpriseCode};

/// Accepted, but a steward should look at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DomainWarning {
    /// An enterprise code whose nine digits admit no check digit, accepted on
    /// an initial load.
    LegacyCheckDigit { code: EnterpriseCode },
    /// A pre-2025 administrative unit code we have no record of, kept as opaque.
    UnverifiedPredecessorCommune { code: AdminUnitCode },
    /// A protected change was proposed, not made: it takes effect when a
    /// supervisor other than the proposer approves this correction.
    ApprovalRequired { correction: CorrectionId },
}

impl DomainWarning {
    pub fn code(&self) -> &'static str {
        match self {
            Self::LegacyCheckDigit { .. } => "LEGACY_CHECK_DIGIT",
            Self::UnverifiedPredecessorCommune { .. } => "UNVERIFIED_PREDECESSOR_COMMUNE",
            Self::ApprovalRequired { .. } => "APPROVAL_REQUIRED",
        }
    }
}
