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
///
/// Most commands fit: [`crate::text_fits::all_fit`] says so from the command's own `Serialize`
/// calls, without building its JSON form; only when it is not sure does the walk below run,
/// and the walk writes every refusal. Debug builds (every test) walk anyway and panic if the
/// fast path ever accepted what the walk refuses.
pub fn check_command(command: &impl Serialize) -> Result<(), DomainError> {
    if crate::text_fits::all_fit(command, max_chars) {
        debug_assert!(
            walk_command(command).is_ok(),
            "text_fits accepted a command the walk refuses: {:?}",
            walk_command(command)
        );
        return Ok(());
    }
    walk_command(command)
}

/// Checks every string in `command` by a walk over its JSON form.
pub(crate) fn walk_command(command: &impl Serialize) -> Result<(), DomainError> {
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Serialize;
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::Sex;
    use crate::command::{Command, CorrectRecord};
    use crate::testing::{basis, cid, fc, register_citizen};
    use crate::text_fits::all_fit as fast;
    use crate::{DomainError, RecordId};

    fn all_fit(command: &impl Serialize) -> bool {
        fast(command, max_chars)
    }

    fn correct(changes: Vec<crate::FieldChange>) -> Command {
        Command::CorrectRecord(CorrectRecord {
            record: RecordId::Citizen(cid(1)),
            changes,
            reason: "giấy khai sinh".into(),
            legal_basis: basis(),
        })
    }

    /// Commands as stewards and imports send them take the fast path: no JSON form is built.
    #[test]
    fn ordinary_commands_fit_without_the_walk() {
        let register = Command::RegisterCitizen(register_citizen(7, Sex::Female, 1990));
        assert!(all_fit(&register));
        assert!(all_fit(&correct(vec![
            fc("name.given", json!("Hưng"), json!("Hùng")),
            fc(
                "permanent_residence",
                json!(null),
                json!({"address": "số 5", "unit": "10525"})
            ),
        ])));
    }

    /// A correction's `old` and `new` take the maximum of the field they correct, as in the
    /// walk: 100 characters for a given name, 500 for an address.
    #[test]
    fn a_correction_takes_the_maximum_of_its_field() {
        let long = |n: usize| json!("x".repeat(n));
        for (field, fits_at, refused_at) in [("name.given", 100, 101), ("address", 500, 501)] {
            let ok = correct(vec![fc(field, json!("a"), long(fits_at))]);
            assert!(all_fit(&ok), "{field} at {fits_at}");
            assert_eq!(check_command(&ok), Ok(()));
            let too_long = correct(vec![fc(field, long(refused_at), json!("a"))]);
            assert!(!all_fit(&too_long), "{field} at {refused_at}");
            assert!(matches!(
                check_command(&too_long),
                Err(DomainError::TextTooLong { max, .. }) if max == fits_at
            ));
        }
    }

    /// `old` before `field` (a struct that declares them so): the fast path cannot know the
    /// key yet and leaves the answer to the walk, which keys both by `field` wherever it is.
    #[test]
    fn old_before_field_is_left_to_the_walk() {
        #[derive(Serialize)]
        struct Reversed {
            old: String,
            field: String,
        }
        let fits = Reversed {
            old: "x".repeat(100),
            field: "name.given".into(),
        };
        assert!(!all_fit(&fits));
        assert_eq!(check_command(&fits), Ok(()));
        let refused = Reversed {
            old: "x".repeat(101),
            field: "name.given".into(),
        };
        assert!(check_command(&refused).is_err());
    }

    /// Keys that matter to the walk, and some that do not.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("given".to_owned()),
            Just("address".to_owned()),
            Just("reason".to_owned()),
            Just("field".to_owned()),
            Just("old".to_owned()),
            Just("new".to_owned()),
            Just("other".to_owned()),
        ]
    }

    /// Texts around the maxima (100, 500, 1,000, 2,000), some of several bytes a character.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("name.given".to_owned()),
            Just("address".to_owned()),
            (
                prop_oneof![
                    95..106usize,
                    495..506usize,
                    995..1006usize,
                    1995..2006usize,
                    0..4usize
                ],
                prop_oneof![Just('a'), Just('ệ')]
            )
                .prop_map(|(n, c)| std::iter::repeat_n(c, n).collect()),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            text().prop_map(Value::String),
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::vec((key(), inner), 0..4)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    fn mentions_a_correction(v: &Value) -> bool {
        match v {
            Value::Object(map) => map
                .iter()
                .any(|(k, v)| k == "field" || k == "old" || k == "new" || mentions_a_correction(v)),
            Value::Array(items) => items.iter().any(mentions_a_correction),
            _ => false,
        }
    }

    proptest! {
        /// The invariant: the fast path never accepts what the walk refuses, so
        /// `check_command` answers as the walk alone; and without corrections' keys it is
        /// exact (it does not leave everything to the walk).
        #[test]
        fn the_fast_path_answers_as_the_walk(v in value()) {
            let walked = walk_command(&v);
            if all_fit(&v) {
                prop_assert_eq!(&walked, &Ok(()));
            } else if !mentions_a_correction(&v) {
                prop_assert!(walked.is_err());
            }
            prop_assert_eq!(check_command(&v), walked);
        }
    }
}
