//! A citizen's state and the values it holds.

use serde::{Deserialize, Serialize};

use crate::date::{Date, PartialDate};
use crate::error::DomainError;
use crate::ids::{AdminUnitCode, CitizenId, PersonalIdNumber, Sex};
use crate::name::PersonName;
use crate::origin::RegistrationOrigin;
use crate::stewardship::Corrections;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResidenceKind {
    Permanent,
    Temporary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Residence {
    pub commune: AdminUnitCode,
    pub address: String,
    pub since: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityCard {
    /// Always the holder's PIN.
    pub number: PersonalIdNumber,
    pub issue_date: Date,
    pub place: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marriage {
    pub spouse: CitizenId,
    pub since: Date,
}

crate::tagged::tag_first! {
    tag = "status";
    #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
    pub enum LifeStatus {
        Alive,
        Deceased { date: PartialDate },
    }
}

/// What a citizen record is now, in one word: the status registers list and
/// filter by. A merged duplicate is `Merged` whatever its life status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CitizenStatus {
    Alive,
    Deceased,
    /// A duplicate record merged into its survivor.
    Merged,
}

impl CitizenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alive => "alive",
            Self::Deceased => "deceased",
            Self::Merged => "merged",
        }
    }
}

/// A citizen's current state, folded from the citizen's stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citizen {
    pub id: CitizenId,
    pub pin: PersonalIdNumber,
    pub name: PersonName,
    pub sex: Sex,
    pub birth_date: PartialDate,
    pub birth_place: AdminUnitCode,
    pub father: Option<CitizenId>,
    pub mother: Option<CitizenId>,
    pub permanent_residence: Option<Residence>,
    pub temporary_residence: Option<Residence>,
    /// The current marriage; cleared by divorce or the spouse's death.
    pub marriage: Option<Marriage>,
    pub identity_card: Option<IdentityCard>,
    pub life: LifeStatus,
    /// Set when this record was a duplicate: it is read-only from then on.
    pub merged_into: Option<CitizenId>,
    /// Duplicates merged into this record.
    pub absorbed: Vec<CitizenId>,
    pub origin: RegistrationOrigin,
    pub corrections: Corrections,
    /// Restriction and redactions ([`crate::redaction`]).
    #[serde(default, skip_serializing_if = "crate::privacy::Privacy::is_empty")]
    pub privacy: crate::privacy::Privacy,
}

impl Citizen {
    pub fn status(&self) -> CitizenStatus {
        match (&self.merged_into, &self.life) {
            (Some(_), _) => CitizenStatus::Merged,
            (None, LifeStatus::Deceased { .. }) => CitizenStatus::Deceased,
            (None, LifeStatus::Alive) => CitizenStatus::Alive,
        }
    }

    pub fn is_deceased(&self) -> bool {
        matches!(self.life, LifeStatus::Deceased { .. })
    }

    pub(crate) fn check_after_birth(&self, date: PartialDate) -> Result<(), DomainError> {
        if date.compare(&self.birth_date) == Some(std::cmp::Ordering::Less) {
            return Err(DomainError::DateBeforeBirth {
                citizen: self.id,
                date,
            });
        }
        Ok(())
    }
}
