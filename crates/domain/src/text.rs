//! Maximum lengths of free text.
//!
//! Everything a command carries is stored forever in an append-only log, so
//! every string in it has a maximum, checked before anything is decided (and
//! so before anything is appended). Lengths are counted in characters (Unicode
//! scalar values), the unit a steward sees on screen.
//!
//! The check walks the command's JSON form rather than each struct, so no
//! field can be forgotten: a string under a key of [`LIMITS`] gets that key's
//! maximum, any other string (ids and codes, which their own parsers bound
//! anyway) gets [`DEFAULT_MAX_CHARS`]. A correction's `old`/`new` value gets
//! the maximum of the field it corrects (`name.given` → `given`).

use serde_json::Value;

use serde::Serialize;

use crate::error::DomainError;
use crate::name::normalise_text;

/// One kind of free text and its maximum length in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextLimit {
    /// The JSON key the text is stored under.
    pub key: &'static str,
    pub max_chars: usize,
}

const fn limit(key: &'static str, max_chars: usize) -> TextLimit {
    TextLimit { key, max_chars }
}

/// The documented maxima (docs/domain.md, "Free-text limits").
pub const LIMITS: &[TextLimit] = &[
    // A person's name parts (họ, chữ đệm, tên).
    limit("family", 100),
    limit("middle", 100),
    limit("given", 100),
    // A business's names.
    limit("vietnamese", 500),
    limit("english", 500),
    limit("abbreviated", 500),
    // Addresses: residences, head offices, parcels.
    limit("address", 500),
    limit("street", 500),
    // Why: a command's and a request's reason.
    limit("reason", 2_000),
    // Legal basis: a document number, or the request's "number and date" text.
    limit("document_number", 200),
    limit("legal_basis", 500),
    // Document references and places.
    limit("place", 200),
    limit("source", 200),
    limit("issuer", 200),
    limit("entry_number", 100),
    limit("contract_number", 100),
    limit("national_parcel_id", 100),
    // Who and for whom (request context and actor).
    limit("end_user", 200),
    limit("case", 200),
    limit("id", 200),
];

/// The maximum of any string not under a key of [`LIMITS`].
pub const DEFAULT_MAX_CHARS: usize = 1_000;

/// The maximum for text stored under `key`.
pub fn max_chars(key: &str) -> usize {
    LIMITS
        .iter()
        .find(|l| l.key == key)
        .map_or(DEFAULT_MAX_CHARS, |l| l.max_chars)
}

/// Checks one text against the maximum of `key`; `field` names it in the error.
pub fn check(field: &str, key: &str, text: &str) -> Result<(), DomainError> {
    let max = max_chars(key);
    // Count only as far as needed: a huge text is refused after max + 1 chars.
    let length = text.chars().take(max + 1).count();
    if length > max {
        return Err(DomainError::TextTooLong {
            field: field.to_owned(),
            max,
            length: text.chars().count(),
        });
    }
    Ok(())
}

/// Normalised text that must not be empty; `what` names the field in the error.
pub(crate) fn non_empty(text: &str, what: &'static str) -> Result<String, DomainError> {
    let t = normalise_text(text);
    if t.is_empty() {
        Err(DomainError::MissingValue(what))
    } else {
        Ok(t)
    }
}

/// Checks every string in `command` (see the module documentation).
pub fn check_command(command: &impl Serialize) -> Result<(), DomainError> {
    // Commands have only string keys, so serialising cannot fail; if it did,
    // refusing is the safe answer.
    let json = serde_json::to_value(command).map_err(|e| DomainError::InvalidFieldValue {
        field: "command".to_owned(),
        message: e.to_string(),
    })?;
    walk(&json, "", &mut String::new())
}

/// `key` decides the limit; `path` (e.g. `changes[0].new.address`) names the field.
fn walk(value: &Value, key: &str, path: &mut String) -> Result<(), DomainError> {
    match value {
        Value::String(s) => check(path, key, s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, key, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            // A field change: its values take the limit of the field they correct.
            let corrected = map
                .get("field")
                .and_then(Value::as_str)
                .map(|f| f.rsplit('.').next().unwrap_or(f));
            for (k, v) in map {
                let child_key = match (k.as_str(), corrected) {
                    ("old" | "new", Some(field)) => field,
                    _ => k.as_str(),
                };
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                walk(v, child_key, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}
