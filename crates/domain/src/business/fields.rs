//! A business's correctable fields, read and written by name.

use serde_json::Value;

use crate::business::decide::check_lines;
use crate::business::state::{Address, Business};
use crate::correctable::Correctable;
use crate::decision::{Decision, check_unit};
use crate::error::DomainError;
use crate::ids::{EFFECTIVE_2025, RecordKind};
use crate::key::NaturalKey;
use crate::origin::RegistrationOrigin;
use crate::snapshot::Snapshot;
use crate::stewardship::{Corrections, FieldChange, parse_field, to_field_value};

impl Correctable for Business {
    fn kind(&self) -> RecordKind {
        RecordKind::Business
    }

    /// A branch's code keeps its parent's prefix.
    fn cross_check(
        &self,
        before: &Self,
        _: &Snapshot,
        _: &[FieldChange],
    ) -> Result<(), DomainError> {
        if self.parent.is_some()
            && self.code.parent() != before.code.parent()
            && let Some(parent_code) = before.code.parent()
        {
            return Err(DomainError::BranchCodeMismatch {
                code: self.code,
                parent_code,
            });
        }
        Ok(())
    }

    fn get_field(&self, field: &str) -> Result<Value, DomainError> {
        match field {
            "enterprise_code" => to_field_value(field, &self.code),
            "names.vietnamese" => Ok(Value::from(self.names.vietnamese.as_str())),
            "names.english" => to_field_value(field, &self.names.english),
            "names.abbreviated" => to_field_value(field, &self.names.abbreviated),
            "head_office" => to_field_value(field, &self.head_office),
            "registration_date" => to_field_value(field, &self.registration_date),
            "charter_capital" => to_field_value(field, &self.charter_capital),
            "business_lines" => to_field_value(field, &self.business_lines),
            _ => Err(DomainError::UnknownField {
                kind: RecordKind::Business,
                field: field.to_owned(),
            }),
        }
    }

    fn set_field(&mut self, field: &str, value: &Value) -> Result<(), DomainError> {
        match field {
            "enterprise_code" => self.code = parse_field(field, value)?,
            "names.vietnamese" | "names.english" | "names.abbreviated" => {
                let mut names = self.names.clone();
                match field {
                    "names.vietnamese" => names.vietnamese = parse_field(field, value)?,
                    "names.english" => names.english = parse_field(field, value)?,
                    _ => names.abbreviated = parse_field(field, value)?,
                }
                self.names = names.normalised()?;
            }
            "head_office" => {
                self.head_office = parse_field::<Address>(field, value)?.normalised()?
            }
            "registration_date" => self.registration_date = parse_field(field, value)?,
            "charter_capital" => self.charter_capital = parse_field(field, value)?,
            "business_lines" => self.business_lines = parse_field(field, value)?,
            _ => {
                return Err(DomainError::UnknownField {
                    kind: RecordKind::Business,
                    field: field.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn check_codes(&self, field: &str, d: &mut Decision) -> Result<(), DomainError> {
        if field != "head_office" {
            return Ok(());
        }
        // The head office is where the business is now: a new fact, unless
        // the record came from an initial load.
        let initial_load = matches!(self.origin, RegistrationOrigin::InitialLoad { .. });
        check_unit(self.head_office.commune, EFFECTIVE_2025, initial_load, d)
    }

    fn check_invariants(&self) -> Result<(), DomainError> {
        // Corrected lines fix the past: they held from the registration, judged by its list.
        check_lines(&self.business_lines, self.registration_date)?;
        match (self.parent, self.code.is_branch()) {
            (Some(_), false) | (None, true) => {
                return Err(DomainError::InvalidFieldValue {
                    field: "enterprise_code".to_owned(),
                    message: "a branch record needs a branch code and a main record a main code"
                        .to_owned(),
                });
            }
            _ => {}
        }
        if self.parent.is_some() && self.charter_capital.is_some() {
            return Err(DomainError::NotApplicableToBranch(self.id));
        }
        if self.parent.is_none() && self.charter_capital.is_none() {
            return Err(DomainError::InvalidFieldValue {
                field: "charter_capital".to_owned(),
                message: "an enterprise has a charter capital".to_owned(),
            });
        }
        Ok(())
    }

    fn natural_key(&self) -> Option<NaturalKey> {
        Some(NaturalKey::Enterprise(self.code))
    }

    fn corrections(&self) -> &Corrections {
        &self.corrections
    }

    fn corrections_mut(&mut self) -> &mut Corrections {
        &mut self.corrections
    }
}
