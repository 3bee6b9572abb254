//! A citizen's correctable fields, read and written by name.

use serde_json::Value;

use crate::citizen::state::Citizen;
use crate::correctable::Correctable;
use crate::decision::{Decision, check_unit};
use crate::error::DomainError;
use crate::ids::RecordKind;
use crate::key::NaturalKey;
use crate::name::PersonName;
use crate::origin::RegistrationOrigin;
use crate::stewardship::{Corrections, parse_field, to_field_value};

impl Correctable for Citizen {
    fn kind(&self) -> RecordKind {
        RecordKind::Citizen
    }

    fn get_field(&self, field: &str) -> Result<Value, DomainError> {
        match field {
            "pin" => to_field_value(field, &self.pin),
            "name.family" => Ok(Value::from(self.name.family())),
            "name.middle" => Ok(Value::from(self.name.middle())),
            "name.given" => Ok(Value::from(self.name.given())),
            "sex" => to_field_value(field, &self.sex),
            "birth_date" => to_field_value(field, &self.birth_date),
            "birth_place" => to_field_value(field, &self.birth_place),
            "permanent_residence" => to_field_value(field, &self.permanent_residence),
            "temporary_residence" => to_field_value(field, &self.temporary_residence),
            "identity_card" => to_field_value(field, &self.identity_card),
            _ => Err(DomainError::UnknownField {
                kind: RecordKind::Citizen,
                field: field.to_owned(),
            }),
        }
    }

    fn set_field(&mut self, field: &str, value: &Value) -> Result<(), DomainError> {
        let name_part = |part: &str| -> Result<PersonName, DomainError> {
            let new: String = parse_field(field, value)?;
            let n = &self.name;
            let (f, m, g) = match part {
                "family" => (new.as_str(), n.middle(), n.given()),
                "middle" => (n.family(), new.as_str(), n.given()),
                _ => (n.family(), n.middle(), new.as_str()),
            };
            PersonName::new(f, m, g).map_err(|e| DomainError::InvalidFieldValue {
                field: field.to_owned(),
                message: e.to_string(),
            })
        };
        match field {
            "pin" => self.pin = parse_field(field, value)?,
            "name.family" => self.name = name_part("family")?,
            "name.middle" => self.name = name_part("middle")?,
            "name.given" => self.name = name_part("given")?,
            "sex" => self.sex = parse_field(field, value)?,
            "birth_date" => self.birth_date = parse_field(field, value)?,
            "birth_place" => self.birth_place = parse_field(field, value)?,
            "permanent_residence" => self.permanent_residence = parse_field(field, value)?,
            "temporary_residence" => self.temporary_residence = parse_field(field, value)?,
            "identity_card" => self.identity_card = parse_field(field, value)?,
            _ => {
                return Err(DomainError::UnknownField {
                    kind: RecordKind::Citizen,
                    field: field.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn check_codes(&self, field: &str, d: &mut Decision) -> Result<(), DomainError> {
        let initial_load = matches!(self.origin, RegistrationOrigin::InitialLoad { .. });
        match field {
            "birth_place" => check_unit(
                self.birth_place,
                self.birth_date.earliest(),
                initial_load,
                d,
            ),
            "permanent_residence" | "temporary_residence" => {
                let residence = if field == "permanent_residence" {
                    &self.permanent_residence
                } else {
                    &self.temporary_residence
                };
                match residence {
                    Some(r) => check_unit(r.commune, r.since, initial_load, d),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    fn check_invariants(&self) -> Result<(), DomainError> {
        self.pin
            .check_against(self.sex, self.birth_date.year())
            .map_err(DomainError::PinMismatch)?;
        if let Some(card) = &self.identity_card
            && card.number != self.pin
        {
            return Err(DomainError::CardNumberMismatch);
        }
        Ok(())
    }

    fn natural_key(&self) -> Option<NaturalKey> {
        Some(NaturalKey::Pin(self.pin))
    }

    fn corrections(&self) -> &Corrections {
        &self.corrections
    }

    fn corrections_mut(&mut self) -> &mut Corrections {
        &mut self.corrections
    }
}
