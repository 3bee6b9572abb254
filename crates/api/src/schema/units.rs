//! Administrative units in time (issue 16, item 3): a `Commune` answers its name as in force on
//! a date, the pre-2025 unit that used its code, and the pre-2025 units merged into it, from the
//! dated tables of `citydb_domain::ids::admin` (Resolution 1669/NQ-UBTVQH15; provenance in
//! docs/reference-lists.md). Reference data, not personal data: no field group, no access-log
//! entry, on any `Commune` the caller may already read.

use async_graphql::{ComplexObject, SimpleObject};

use citydb_domain::ids::admin::PredecessorUnit;
use citydb_domain::{AdminUnitCode, AdminUnitTable};

use super::inputs::Date;
use super::records::AdminUnit;
use crate::error::ApiError;

/// A commune-level unit of before the 2025 reorganisation (ward, commune or township).
#[derive(SimpleObject)]
pub struct FormerUnit {
    pub code: String,
    /// Its name as the list wrote it, kind prefix included ("Thị trấn Núi Đối").
    pub name: String,
    /// `ward`, `commune` or `township`.
    pub kind: String,
    /// The district (quận, huyện, thị xã, thành phố) it belonged to.
    pub district: String,
    /// The earliest list held that shows it under this name (`YYYY-MM-DD`): a lower bound.
    pub listed_since: String,
    /// The first day it no longer existed (`YYYY-MM-DD`).
    pub valid_until: String,
    /// The 2025 units its area went to (several when it was divided).
    pub successors: Vec<AdminUnit>,
    /// The legal act and clauses of the change.
    pub source: String,
}

impl From<&PredecessorUnit> for FormerUnit {
    fn from(p: &PredecessorUnit) -> Self {
        FormerUnit {
            code: p.code.to_string(),
            name: p.name.clone(),
            kind: format!("{:?}", p.kind).to_lowercase(),
            district: p.district.clone(),
            listed_since: p.listed_since.to_string(),
            valid_until: p.valid_until.to_string(),
            successors: p
                .successors
                .iter()
                .map(|c| AdminUnit::new(c.to_string()))
                .collect(),
            source: p.source.clone(),
        }
    }
}

fn code_of(unit: &AdminUnit) -> Option<AdminUnitCode> {
    unit.code.parse().ok()
}

#[ComplexObject]
impl AdminUnit {
    /// The unit's name as in force on `date`: the 2025 unit's from 2025-07-01, the pre-2025
    /// unit that used the code before; `null` when the tables do not document the code on
    /// that date (an address on an old document resolves to the unit valid then).
    async fn name_on(&self, date: Date) -> Result<Option<String>, ApiError> {
        let on: citydb_domain::Date = date
            .0
            .parse()
            .map_err(|e| ApiError::invalid_field(format!("date: {e}"), "date"))?;
        Ok(code_of(self).and_then(|c| {
            AdminUnitTable::hai_phong_2025()
                .name_on(c, on)
                .map(str::to_owned)
        }))
    }

    /// The pre-2025 unit that used this code until 2025-07-01, if the tables document one.
    async fn formerly(&self) -> Option<FormerUnit> {
        code_of(self)
            .and_then(|c| AdminUnitTable::hai_phong_2025().predecessor(c))
            .map(FormerUnit::from)
    }

    /// The pre-2025 units whose area went (wholly or in part) to this 2025 unit.
    async fn predecessors(&self) -> Vec<FormerUnit> {
        code_of(self)
            .map(|c| {
                AdminUnitTable::hai_phong_2025()
                    .predecessors_of(c)
                    .map(FormerUnit::from)
                    .collect()
            })
            .unwrap_or_default()
    }
}
