//! A record whose fields stewards correct by name: the trait each record
//! kind implements (in its `fields` module) and the generic checks built on it.

use serde_json::Value;

use crate::decision::Decision;
use crate::error::DomainError;
use crate::ids::RecordKind;
use crate::key::NaturalKey;
use crate::snapshot::{Record, Snapshot};
use crate::stewardship::{Corrections, FieldChange, field_spec};

/// A record whose fields can be read and written by name, in JSON form.
pub(crate) trait Correctable: Clone {
    fn kind(&self) -> RecordKind;
    /// Current value of a field listed in [`fields_of`].
    fn get_field(&self, field: &str) -> Result<Value, DomainError>;
    /// Parses, normalises and stores a new value.
    fn set_field(&mut self, field: &str, value: &Value) -> Result<(), DomainError>;
    /// Single-record invariants that must hold after any correction.
    fn check_invariants(&self) -> Result<(), DomainError>;
    /// Reference codes in the corrected `field` are in their lists (the same
    /// rule as the commands that set them); warnings go to `d`.
    fn check_codes(&self, _field: &str, _d: &mut Decision) -> Result<(), DomainError> {
        Ok(())
    }
    /// Record-kind rules a correction must also respect beyond the record's
    /// own invariants (branch code prefix, eligible holders); `before` is
    /// the record as it was, `changed` the changes applied.
    fn cross_check(
        &self,
        _before: &Self,
        _snapshot: &Snapshot,
        _changed: &[FieldChange],
    ) -> Result<(), DomainError> {
        Ok(())
    }
    /// The natural key the record currently holds, if its kind has one.
    fn natural_key(&self) -> Option<NaturalKey>;
    fn corrections(&self) -> &Corrections;
    fn corrections_mut(&mut self) -> &mut Corrections;
}

/// Checks a set of changes against `record` and returns the corrected copy.
///
/// Each `old` is normalised through the field's type before comparing, so
/// `"035199000123 "` and `"035199000123"` are the same old value; a mismatch
/// is a [`DomainError::CorrectionConflict`] naming the field only — never the
/// current value, which may be personal data the caller has not read.
pub(crate) fn apply_checked<T: Correctable>(
    record: &T,
    changes: &[FieldChange],
) -> Result<T, DomainError> {
    if changes.is_empty() {
        return Err(DomainError::EmptyCorrection);
    }
    let mut seen = Vec::new();
    let mut corrected = record.clone();
    for change in changes {
        field_spec(record.kind(), &change.field)?;
        if seen.contains(&change.field.as_str()) {
            return Err(DomainError::DuplicateEntry {
                what: "field",
                value: change.field.clone(),
            });
        }
        seen.push(change.field.as_str());
        let current = record.get_field(&change.field)?;
        let mut probe = record.clone();
        let old_matches = probe.set_field(&change.field, &change.old).is_ok()
            && probe.get_field(&change.field)? == current;
        if !old_matches {
            return Err(DomainError::CorrectionConflict {
                field: change.field.clone(),
            });
        }
        corrected.set_field(&change.field, &change.new)?;
        if corrected.get_field(&change.field)? == current {
            return Err(DomainError::NoOpChange {
                field: change.field.clone(),
            });
        }
    }
    corrected.check_invariants()?;
    Ok(corrected)
}

/// Applies already-accepted changes (from a stored event) without re-checking
/// old values.
pub(crate) fn apply_unchecked<T: Correctable>(
    record: &mut T,
    changes: &[FieldChange],
) -> Result<(), DomainError> {
    for change in changes {
        record.set_field(&change.field, &change.new)?;
    }
    Ok(())
}

pub(crate) fn any_protected(kind: RecordKind, changes: &[FieldChange]) -> Option<String> {
    changes
        .iter()
        .find(|c| field_spec(kind, &c.field).is_ok_and(|f| f.protected))
        .map(|c| c.field.clone())
}

// The record-level views of the same trait, for callers that hold any record.
impl Record {
    /// The natural key the record holds.
    pub fn natural_key(&self) -> Option<NaturalKey> {
        match self {
            Self::Citizen(c) => c.natural_key(),
            Self::Business(b) => b.natural_key(),
            Self::Parcel(p) => p.natural_key(),
        }
    }

    /// Pending corrections and their history.
    pub fn corrections(&self) -> &Corrections {
        match self {
            Self::Citizen(c) => c.corrections(),
            Self::Business(b) => b.corrections(),
            Self::Parcel(p) => p.corrections(),
        }
    }

    /// A correctable field's value, as corrections read it.
    pub(crate) fn field_value(&self, field: &str) -> Result<Value, DomainError> {
        match self {
            Self::Citizen(c) => c.get_field(field),
            Self::Business(b) => b.get_field(field),
            Self::Parcel(p) => p.get_field(field),
        }
    }

    /// A correctable field's value, or another top-level fact of the state by its stored name
    /// (`marriage`, `status`, …; `null` when absent) — what a timeline follows.
    pub(crate) fn field_or_fact(&self, field: &str) -> Result<Value, DomainError> {
        if let Ok(value) = self.field_value(field) {
            return Ok(value);
        }
        let state = serde_json::to_value(self).map_err(|e| DomainError::InvalidFieldValue {
            field: field.to_owned(),
            message: e.to_string(),
        })?;
        Ok(state.get(field).cloned().unwrap_or(Value::Null))
    }

    /// Sets corrected fields without checking `old` (a stored correction, replayed).
    pub(crate) fn set_fields(&mut self, changes: &[FieldChange]) -> Result<(), DomainError> {
        match self {
            Self::Citizen(c) => apply_unchecked(c, changes),
            Self::Business(b) => apply_unchecked(b, changes),
            Self::Parcel(p) => apply_unchecked(p, changes),
        }
    }

    /// Takes `known`'s corrections and privacy: what the register knows about the record's
    /// keeping, which holds on the recorded axis only (`valid_time`).
    pub(crate) fn keep_bookkeeping_of(&mut self, known: &Record) {
        *self.privacy_mut() = known.privacy().clone();
        let corrections = known.corrections().clone();
        match self {
            Self::Citizen(c) => *c.corrections_mut() = corrections,
            Self::Business(b) => *b.corrections_mut() = corrections,
            Self::Parcel(p) => *p.corrections_mut() = corrections,
        }
    }
}
