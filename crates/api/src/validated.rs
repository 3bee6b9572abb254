//! Validation results kept by what they depend on (issue 13, item 2). Validating a PIN lookup
//! (async-graphql's `check_rules`: 22 rules, then complexity and depth) took 23 % of the
//! server's instructions for the whole request (docs/benchmarks.md, "Validation kept, and one
//! extension for the schema's hooks"), and services send the same few operations over and over
//! with other values.
//!
//! What a validation's outcome depends on: the document, the operation chosen, the schema
//! (fixed for the process) and the variables' values, which enter in two places only:
//! - `ArgumentsOfCorrectType` checks each variable's value where it is used as an argument. A
//!   variable declared `String` or `ID` (with or without `!`) can only be used where a `String`
//!   or `ID` is expected (`VariableInAllowedPosition`), where any string is valid: for such a
//!   variable, "a string" is all that matters of its value.
//! - Complexity functions read arguments: `page_cost` reads `first`, an `Int`.
//!
//! So the key of a kept result is the document's text (its length first, so that the text ends
//! where it says), the operation name, and each declared variable's **class**: `s` for a string
//! given for a `String`/`ID` variable, `-` when not given, otherwise the value itself as GraphQL
//! text (self-delimiting: strings are quoted). Invariants:
//! - Only successful validations are kept: a request that fails is validated in full every time
//!   and gets async-graphql's own errors.
//! - A hit returns the kept complexity, depth and cache control; limits are fixed per schema, so
//!   a kept result has passed them.
//! - A complexity function must read only non-string arguments (else a string read would need
//!   its value in the key). `page_cost` is the only one.
//! - Bounded like [`crate::documents`]: at most [`MAX_RESULTS`] results, keys of at most
//!   [`MAX_KEY_BYTES`] (texts of at most [`MAX_TEXT_BYTES`]); emptied when full. Keys are
//!   hashed with foldhash, as in [`crate::documents`], and for the same reason.

use std::fmt::Write as _;
use std::sync::Mutex;

use foldhash::HashMap;

use async_graphql::parser::types::{BaseType, ExecutableDocument};
use async_graphql::{ValidationResult, Value, Variables};

use crate::documents::{MAX_TEXT_BYTES, chosen_operation};

/// Most validation results kept.
pub const MAX_RESULTS: usize = 1024;

/// Longest key kept: the longest text kept plus room for the variables' classes. A key that
/// holds large values (a long list of numbers, an object of strings) is not kept, so the cache
/// holds at most [`MAX_RESULTS`] × this many bytes of keys (~20 MiB) whatever clients send.
pub const MAX_KEY_BYTES: usize = MAX_TEXT_BYTES + 4 * 1024;

/// Successful validations by [`key`].
#[derive(Default)]
pub struct ValidationCache {
    results: Mutex<HashMap<String, ValidationResult>>,
}

impl ValidationCache {
    pub fn get(&self, key: &str) -> Option<ValidationResult> {
        self.results.lock().ok()?.get(key).copied()
    }

    pub fn keep(&self, key: String, result: ValidationResult) {
        if let Ok(mut results) = self.results.lock() {
            if results.len() >= MAX_RESULTS {
                results.clear();
            }
            results.insert(key, result);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.results.lock().map_or(0, |r| r.len())
    }
}

/// The key of the validation of `query` (parsed as `doc`) for `operation_name` with
/// `variables`, or `None` when it is not to be kept (a long text, or no operation to choose:
/// async-graphql refuses those anyway).
pub fn key(
    query: &str,
    doc: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &Variables,
) -> Option<String> {
    if query.len() > MAX_TEXT_BYTES {
        return None;
    }
    let operation = chosen_operation(doc, operation_name)?;
    let mut key = String::with_capacity(query.len() + 64);
    let _ = write!(key, "{}:", query.len());
    key.push_str(query);
    key.push_str(operation_name.unwrap_or(""));
    key.push('\0');
    for definition in &operation.node.variable_definitions {
        let name = &definition.node.name.node;
        let ty = &definition.node.var_type.node;
        let stringly = matches!(&ty.base, BaseType::Named(n) if n == "String" || n == "ID");
        key.push_str(name);
        key.push('=');
        match variables.get(name) {
            None => key.push('-'),
            Some(Value::String(_)) if stringly => key.push('s'),
            // The value itself, as GraphQL text: a string is quoted, so it never reads as `s`
            // or `-`.
            Some(value) => {
                let _ = write!(key, "{value}");
            }
        }
        key.push('\0');
        if key.len() > MAX_KEY_BYTES {
            return None;
        }
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn vars(json: serde_json::Value) -> Variables {
        Variables::from_json(json)
    }

    #[test]
    fn strings_for_string_variables_share_a_key_and_everything_else_is_exact() {
        let text = "query P($pin: String!, $first: Int, $at: Date) { citizen(pin: $pin) { id } }";
        let doc = parse_query(text).unwrap();
        let k = |v| key(text, &doc, None, &vars(v)).unwrap();
        let a = k(serde_json::json!({"pin": "030174835130", "first": 20}));
        assert_eq!(a, k(serde_json::json!({"pin": "999", "first": 20})));
        // Not a string: its own key (async-graphql refuses it, and that is not kept).
        assert_ne!(a, k(serde_json::json!({"pin": 5, "first": 20})));
        assert_ne!(a, k(serde_json::json!({"pin": null, "first": 20})));
        assert_ne!(a, k(serde_json::json!({"first": 20})));
        // An Int is read by complexity functions: every value is its own key.
        assert_ne!(a, k(serde_json::json!({"pin": "1", "first": 21})));
        // A custom scalar's validity depends on the text: every value is its own key.
        let d = k(serde_json::json!({"pin": "1", "first": 20, "at": "2020-01-01"}));
        assert_ne!(
            d,
            k(serde_json::json!({"pin": "1", "first": 20, "at": "2020-01-02"}))
        );
        // The string "s" given for a custom scalar is quoted, not read as the class.
        assert!(k(serde_json::json!({"pin": "1", "at": "s"})).contains("at=\"s\""));
    }

    #[test]
    fn large_values_are_not_kept() {
        let text = "query L($ids: [Int!]) { a }";
        let doc = parse_query(text).unwrap();
        let few = vars(serde_json::json!({ "ids": [1, 2, 3] }));
        assert!(key(text, &doc, None, &few).is_some());
        let many: Vec<u32> = (0..10_000).collect();
        let many = vars(serde_json::json!({ "ids": many }));
        assert_eq!(key(text, &doc, None, &many), None);
    }

    #[test]
    fn the_operation_chosen_is_part_of_the_key() {
        let text = "query A($x: String) { a } query B($x: Int) { b }";
        let doc = parse_query(text).unwrap();
        let v = vars(serde_json::json!({"x": "1"}));
        let a = key(text, &doc, Some("A"), &v).unwrap();
        let b = key(text, &doc, Some("B"), &v).unwrap();
        assert_ne!(a, b);
        assert_eq!(key(text, &doc, None, &v), None, "no operation chosen");
        assert_eq!(key(text, &doc, Some("C"), &v), None, "no such operation");
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = ValidationCache::default();
        let result = ValidationResult {
            cache_control: Default::default(),
            complexity: 1,
            depth: 1,
        };
        for i in 0..=MAX_RESULTS {
            cache.keep(format!("k{i}"), result);
        }
        assert!(cache.len() <= MAX_RESULTS);
        assert_eq!(
            cache.get(&format!("k{MAX_RESULTS}")).map(|r| r.depth),
            Some(1)
        );
    }
}
