//! A business's state and the values it holds.

use serde::{Deserialize, Serialize};

use crate::date::Date;
use crate::error::DomainError;
use crate::ids::{AdminUnitCode, BusinessId, CitizenId, EnterpriseCode, VsicCode};
use crate::name::normalise_text;
use crate::origin::RegistrationOrigin;
use crate::quantity::Vnd;
use crate::stewardship::Corrections;
use crate::text::non_empty;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessNames {
    /// The Vietnamese name (required).
    pub vietnamese: String,
    #[serde(default)]
    pub english: Option<String>,
    #[serde(default)]
    pub abbreviated: Option<String>,
}

impl BusinessNames {
    /// NFC, trimmed; empty optional names become `None`.
    pub(crate) fn normalised(&self) -> Result<Self, DomainError> {
        let opt = |s: &Option<String>| s.as_deref().map(normalise_text).filter(|t| !t.is_empty());
        Ok(Self {
            vietnamese: non_empty(&self.vietnamese, "names.vietnamese")?,
            english: opt(&self.english),
            abbreviated: opt(&self.abbreviated),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub commune: AdminUnitCode,
    pub street: String,
}

impl Address {
    pub(crate) fn normalised(&self) -> Result<Self, DomainError> {
        Ok(Self {
            commune: self.commune,
            street: non_empty(&self.street, "address.street")?,
        })
    }
}

crate::tagged::tag_first! {
    tag = "status";
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub enum BusinessStatus {
        Active,
        Suspended { from: Date, until: Date },
        Dissolved { on: Date },
    }
}

impl BusinessStatus {
    pub fn kind(&self) -> BusinessStatusKind {
        match self {
            Self::Active => BusinessStatusKind::Active,
            Self::Suspended { .. } => BusinessStatusKind::Suspended,
            Self::Dissolved { .. } => BusinessStatusKind::Dissolved,
        }
    }
}

/// A [`BusinessStatus`] without its dates: what registers list and filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BusinessStatusKind {
    Active,
    Suspended,
    Dissolved,
}

impl BusinessStatusKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Dissolved => "dissolved",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Business {
    pub id: BusinessId,
    pub code: EnterpriseCode,
    pub names: BusinessNames,
    /// Head office, or the branch's own address for a branch.
    pub head_office: Address,
    pub legal_representatives: Vec<CitizenId>,
    /// `None` for branches, which have no capital of their own.
    pub charter_capital: Option<Vnd>,
    pub business_lines: Vec<VsicCode>,
    pub registration_date: Date,
    pub parent: Option<BusinessId>,
    pub branches: Vec<BusinessId>,
    pub status: BusinessStatus,
    pub origin: RegistrationOrigin,
    pub corrections: Corrections,
    /// Restriction and redactions ([`crate::redaction`]).
    #[serde(default, skip_serializing_if = "crate::privacy::Privacy::is_empty")]
    pub privacy: crate::privacy::Privacy,
}

impl Business {
    pub fn is_dissolved(&self) -> bool {
        matches!(self.status, BusinessStatus::Dissolved { .. })
    }
    pub fn is_suspended(&self) -> bool {
        matches!(self.status, BusinessStatus::Suspended { .. })
    }
}
