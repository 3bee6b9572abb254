//! A parcel's correctable fields, read and written by name.

use serde_json::Value;

use crate::correctable::Correctable;
use crate::decision::Decision;
use crate::error::DomainError;
use crate::ids::{AdminUnitTable, RecordKind};
use crate::key::NaturalKey;
use crate::parcel::decide::{
    check_area, check_holder_shares, check_holders, check_key, check_land_use,
};
use crate::parcel::state::Parcel;
use crate::snapshot::Snapshot;
use crate::stewardship::{Corrections, FieldChange, parse_field, to_field_value};
use crate::text::non_empty;

impl Correctable for Parcel {
    fn kind(&self) -> RecordKind {
        RecordKind::Parcel
    }

    /// Corrected holders must be eligible, as on registration.
    fn cross_check(
        &self,
        _: &Self,
        snapshot: &Snapshot,
        changed: &[FieldChange],
    ) -> Result<(), DomainError> {
        if changed.iter().any(|c| c.field == "holders") {
            check_holders(snapshot, &self.holders)?;
        }
        Ok(())
    }

    fn get_field(&self, field: &str) -> Result<Value, DomainError> {
        match field {
            "key" => to_field_value(field, &self.key),
            "area" => to_field_value(field, &self.area),
            "holders" => to_field_value(field, &self.holders),
            "national_parcel_id" => to_field_value(field, &self.national_parcel_id),
            "address" => Ok(Value::from(self.address.as_str())),
            "land_use" => to_field_value(field, &self.land_use),
            "geometry" => to_field_value(field, &self.geometry),
            _ => Err(DomainError::UnknownField {
                kind: RecordKind::Parcel,
                field: field.to_owned(),
            }),
        }
    }

    fn set_field(&mut self, field: &str, value: &Value) -> Result<(), DomainError> {
        match field {
            "key" => self.key = parse_field(field, value)?,
            "area" => self.area = parse_field(field, value)?,
            "holders" => self.holders = parse_field(field, value)?,
            "national_parcel_id" => {
                let id: Option<String> = parse_field(field, value)?;
                self.national_parcel_id = id.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
            }
            "address" => {
                self.address = non_empty(&parse_field::<String>(field, value)?, "address")?
            }
            "land_use" => self.land_use = parse_field(field, value)?,
            "geometry" => self.geometry = parse_field(field, value)?,
            _ => {
                return Err(DomainError::UnknownField {
                    kind: RecordKind::Parcel,
                    field: field.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn check_codes(&self, field: &str, d: &mut Decision) -> Result<(), DomainError> {
        if field == "key" {
            check_key(&self.key, d)?;
        }
        Ok(())
    }

    fn check_invariants(&self) -> Result<(), DomainError> {
        check_area(self.area)?;
        check_land_use(&self.land_use)?;
        check_holder_shares(&self.holders)?;
        let table = AdminUnitTable::hai_phong_2025();
        if table.by_code(self.key.unit()).is_none() {
            return Err(DomainError::UnknownCode(table.unknown(self.key.unit())));
        }
        Ok(())
    }

    fn natural_key(&self) -> Option<NaturalKey> {
        Some(NaturalKey::Parcel(self.key))
    }

    fn corrections(&self) -> &Corrections {
        &self.corrections
    }

    fn corrections_mut(&mut self) -> &mut Corrections {
        &mut self.corrections
    }
}
