//! The mutations' typed inputs (issue 17): one GraphQL input object per domain command, so a
//! client (and the console's forms) learns every field, its type and its documentation from
//! introspection instead of guessing a JSON object.
//!
//! One validation path: an input object is only transport. It serialises (serde, the Rust field
//! names) to exactly the domain command's JSON shape, which the domain's own serde types then
//! check — the same check `citydb import` and the old JSON inputs went through. So this module
//! states shapes, never rules: a date, a code or a share is a string here and is judged by the
//! domain, whose refusal names the field (`extensions.field` = `input.<camelCase path>`).
//!
//! [`legacy`] keeps the old JSON shapes (snake_case keys, lower-case enum values) working for
//! variables for one release.

mod business;
mod citizen;
pub mod legacy;
mod parcel;
mod stewardship;

use async_graphql::{InputObject, InputValueError, InputValueResult, Scalar, ScalarType, Value};
use serde::Serialize;

pub use business::*;
pub use citizen::*;
pub use parcel::*;
pub use stewardship::*;

use crate::error::ApiError;

/// Declares a string-shaped input scalar whose meaning the domain checks when the command
/// runs (so a bad value is `INVALID_INPUT` naming its field, not a validation error without
/// one). The scalar's name tells a client, and the console's forms, what the string holds.
macro_rules! string_scalar {
    ($(#[doc = $doc:expr])* $name:ident, $graphql:literal) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        $(#[doc = $doc])*
        #[Scalar(name = $graphql)]
        impl ScalarType for $name {
            fn parse(value: Value) -> InputValueResult<Self> {
                match value {
                    Value::String(s) => Ok($name(s)),
                    other => Err(InputValueError::expected_type(other)),
                }
            }
            fn is_valid(value: &Value) -> bool {
                matches!(value, Value::String(_))
            }
            fn to_value(&self) -> Value {
                Value::String(self.0.clone())
            }
        }
    };
}

string_scalar! {
    /// A calendar date, `YYYY-MM-DD`.
    Date, "Date"
}

string_scalar! {
    /// A date known to the year, the month or the day: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`
    /// (old civil-status records often give only the year of birth).
    PartialDate, "PartialDate"
}

/// An amount in Vietnamese đồng: a non-negative whole number (up to 2^53, beyond GraphQL's
/// 32-bit `Int`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Vnd(pub u64);

/// An amount in Vietnamese đồng: a non-negative whole number (up to 2^53, beyond GraphQL's
/// 32-bit `Int`).
#[Scalar(name = "Vnd")]
impl ScalarType for Vnd {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => match n.as_u64() {
                Some(v) if v <= MAX_SAFE_INTEGER => Ok(Vnd(v)),
                _ => Err(InputValueError::custom(
                    "an amount in đồng is a whole number from 0 to 2^53",
                )),
            },
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::Number(n) if n.as_u64().is_some_and(|v| v <= MAX_SAFE_INTEGER))
    }
    fn to_value(&self) -> Value {
        Value::from(self.0)
    }
}

/// Largest integer a JSON client (JavaScript's numbers) carries exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A person's name as written on the civil-status record.
#[derive(InputObject, Serialize)]
#[graphql(name = "PersonNameInput")]
pub struct PersonNameInput {
    /// Họ.
    pub family: String,
    /// Tên đệm (may be empty).
    #[graphql(default)]
    pub middle: String,
    /// Tên.
    pub given: String,
}

/// The legal document a change rests on.
#[derive(InputObject, Serialize)]
pub struct LegalBasisInput {
    /// The document's number, e.g. `45/QĐ-UBND`.
    pub document_number: String,
    pub document_date: Date,
}

/// How a record entered its register.
#[derive(async_graphql::Enum, Serialize, Copy, Clone, Eq, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationOriginKind {
    /// A registration made in citydb (birth registration, new enterprise).
    Registration,
    /// Loaded from an existing register, named in `source`.
    InitialLoad,
}

/// How a record entered its register; `source` names the register of an initial load.
#[derive(InputObject, Serialize)]
pub struct RegistrationOriginInput {
    pub kind: RegistrationOriginKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The domain command `T` from its typed input: the input's serde shape is the command's JSON,
/// judged by the domain's types. A refusal names the field in the GraphQL spelling.
pub fn command_of<T: serde::de::DeserializeOwned>(
    input: &impl Serialize,
    input_type: &str,
) -> Result<T, ApiError> {
    let json = serde_json::to_value(input)
        .map_err(|e| ApiError::internal(format!("{input_type} does not serialise: {e}")))?;
    serde_path_to_error::deserialize(json)
        .map_err(|e| super::mutation::input_error(input_type, e.inner(), &graphql_path(e.path())))
}

/// The GraphQL path (`input.headOffice.commune`) of the first string in `input` equal to
/// `value`, depth first in field order.
pub fn locate(input: &impl Serialize, value: &str) -> Option<String> {
    fn walk(v: &serde_json::Value, value: &str, path: &mut String) -> bool {
        match v {
            serde_json::Value::String(s) => s == value,
            serde_json::Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, value, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            serde_json::Value::Object(map) => map.iter().any(|(k, item)| {
                let len = path.len();
                path.push('.');
                path.push_str(&camel_case(k));
                let found = walk(item, value, path);
                if !found {
                    path.truncate(len);
                }
                found
            }),
            _ => false,
        }
    }
    let json = serde_json::to_value(input).ok()?;
    let mut path = String::from("input");
    walk(&json, value, &mut path).then_some(path)
}

/// `legal_basis.document_date` → `input.legalBasis.documentDate`; `holders[0].share` →
/// `input.holders[0].share`. The input objects' GraphQL names are their serde names in camel
/// case, so the conversion is exact.
fn graphql_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::from("input");
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key } => {
                out.push('.');
                out.push_str(&camel_case(key));
            }
            serde_path_to_error::Segment::Enum { variant } => {
                out.push('.');
                out.push_str(&camel_case(variant));
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    out
}

/// `document_date` → `documentDate` (async-graphql's own renaming of input fields).
pub(crate) fn camel_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_matches_graphql_renaming() {
        assert_eq!(camel_case("document_date"), "documentDate");
        assert_eq!(camel_case("national_parcel_id"), "nationalParcelId");
        assert_eq!(camel_case("citizen"), "citizen");
    }

    #[test]
    fn a_refusal_names_the_field_in_graphql_spelling() {
        let input = LegalBasisInput {
            document_number: "45/QĐ-UBND".into(),
            document_date: Date("2026-02-30".into()),
        };
        match command_of::<citydb_domain::LegalBasis>(&input, "LegalBasisInput") {
            Err(ApiError::InvalidInput { field, .. }) => {
                assert_eq!(field.as_deref(), Some("input.documentDate"))
            }
            other => panic!("expected INVALID_INPUT, got {other:?}"),
        }
    }

    #[test]
    fn a_good_input_is_the_domain_command() {
        let input = LegalBasisInput {
            document_number: "45/QĐ-UBND".into(),
            document_date: Date("2026-02-28".into()),
        };
        let basis: citydb_domain::LegalBasis = command_of(&input, "LegalBasisInput").unwrap();
        assert_eq!(basis.document_number, "45/QĐ-UBND");
        assert_eq!(basis.document_date.to_string(), "2026-02-28");
    }
}
