//! The mutations' old JSON shapes, kept for one release (until 0.2).
//!
//! Before 0.1's typed inputs every mutation took a JSON scalar in the domain's own shape:
//! snake_case keys (`birth_date`) and lower-case enum values (`"permanent"`). A client that
//! sends that shape **as a variable** keeps working: before validation, each object-valued
//! variable declared with an input-object type is rewritten to the typed spelling, guided by the
//! schema's own registry — an unknown key whose camel-case form is a field of that input object
//! is renamed, an enum value that is one of the type's values up to case is upper-cased, and
//! JSON-scalar positions (`old`, `new`, `geometry`) are left untouched. A value already in the
//! typed spelling is unchanged, so the rewrite is idempotent and costs nothing for new clients.
//! The mutation answers with the warning `DEPRECATED_INPUT_SHAPE` so operators can find who
//! still sends it. Inline literals in the old spelling are not rewritten (validation refuses
//! them with `INVALID_INPUT`): every published example passed the input as a variable.

use async_graphql::extensions::ExtensionContext;
use async_graphql::parser::types::{BaseType, Type};
use async_graphql::registry::{MetaType, Registry};
use async_graphql::{Name, Request, Value};

use super::camel_case;

/// Marks a request whose variables were rewritten from the old shape (request data).
#[derive(Debug, Clone)]
pub struct LegacyInputShape {
    /// The variables that were rewritten.
    pub variables: Vec<String>,
}

impl LegacyInputShape {
    /// The mutation warning that names the rewritten variables.
    pub fn warning(&self) -> String {
        format!(
            "DEPRECATED_INPUT_SHAPE: variable(s) {} used the old JSON shape (snake_case keys, \
             lower-case enum values), accepted until 0.2; send the typed input's camelCase \
             fields and UPPER_CASE enum values",
            self.variables.join(", ")
        )
    }
}

/// Rewrites old-shape variables before validation (see the module documentation); called by
/// [`crate::schema::hooks::SchemaHooks`] in `prepare_request`.
pub(crate) fn upgrade_variables(ctx: &ExtensionContext<'_>, mut request: Request) -> Request {
    // Services send scalars only: no object variable, no work (not even a parse).
    if request
        .variables
        .values()
        .any(|v| matches!(v, Value::Object(_) | Value::List(_)))
    {
        // Declared input-object types of the variables. The parse is kept in the request
        // (async-graphql's own parse reuses it); a document that does not parse is left
        // for the parse stage to report.
        let declared: Vec<(Name, Type)> = match request.parsed_query() {
            Ok(doc) => doc
                .operations
                .iter()
                .flat_map(|(_, op)| op.node.variable_definitions.iter())
                .map(|d| (d.node.name.node.clone(), d.node.var_type.node.clone()))
                .collect(),
            Err(_) => Vec::new(),
        };
        let registry = &ctx.schema_env.registry;
        let mut rewritten = Vec::new();
        for (name, ty) in declared {
            if let Some(value) = request.variables.get_mut(&name)
                && upgrade(registry, &ty.base, value)
            {
                rewritten.push(name.to_string());
            }
        }
        if !rewritten.is_empty() {
            tracing::warn!(variables = ?rewritten, "mutation input in the old JSON shape");
            request = request.data(LegacyInputShape {
                variables: rewritten,
            });
        }
    }
    request
}

/// Rewrites `value`, of GraphQL type `ty`, from the old spelling; true if anything changed.
fn upgrade(registry: &Registry, ty: &BaseType, value: &mut Value) -> bool {
    match (ty, value) {
        (BaseType::List(inner), Value::List(items)) => {
            let mut changed = false;
            for item in items {
                changed |= upgrade(registry, &inner.base, item);
            }
            changed
        }
        // GraphQL's input coercion takes a single value where a list is expected.
        (BaseType::List(inner), other) => upgrade(registry, &inner.base, other),
        (BaseType::Named(name), value) => match registry.types.get(name.as_str()) {
            Some(MetaType::InputObject { input_fields, .. }) => {
                let Value::Object(map) = value else {
                    return false;
                };
                let mut changed = false;
                let keys: Vec<Name> = map.keys().cloned().collect();
                for key in keys {
                    let field_name = if input_fields.contains_key(key.as_str()) {
                        key
                    } else {
                        let camel = Name::new(camel_case(key.as_str()));
                        if !input_fields.contains_key(camel.as_str()) || map.contains_key(&camel) {
                            continue; // unknown either way: validation names it
                        }
                        if let Some(v) = map.shift_remove(&key) {
                            map.insert(camel.clone(), v);
                            changed = true;
                        }
                        camel
                    };
                    let (Some(field), Some(v)) = (
                        input_fields.get(field_name.as_str()),
                        map.get_mut(&field_name),
                    ) else {
                        continue;
                    };
                    if let Some(field_ty) = Type::new(&field.ty) {
                        changed |= upgrade(registry, &field_ty.base, v);
                    }
                }
                changed
            }
            Some(MetaType::Enum { enum_values, .. }) => {
                let Value::String(s) = value else {
                    return false;
                };
                if enum_values.contains_key(s.as_str()) {
                    return false;
                }
                let upper = s.to_uppercase();
                if enum_values.contains_key(upper.as_str()) {
                    *s = upper;
                    return true;
                }
                false
            }
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use async_graphql::InputType;

    fn registry() -> Registry {
        let mut r = Registry::default();
        super::super::RegisterCitizenInput::create_type_info(&mut r);
        super::super::ProposeCorrectionInput::create_type_info(&mut r);
        super::super::ChangeResidenceInput::create_type_info(&mut r);
        r
    }

    fn upgraded(type_name: &str, json: serde_json::Value) -> (bool, serde_json::Value) {
        let mut value = Value::from_json(json).unwrap();
        let ty = Type::new(type_name).unwrap();
        let changed = upgrade(&registry(), &ty.base, &mut value);
        (changed, value.into_json().unwrap())
    }

    #[test]
    fn old_keys_and_enum_values_take_the_typed_spelling() {
        let (changed, v) = upgraded(
            "RegisterCitizenInput!",
            serde_json::json!({
                "citizen": "c", "pin": "p", "sex": "female", "birth_date": "1990",
                "birth_place": "31", "name": {"family": "Lê", "given": "Hoa"},
                "origin": {"kind": "initial_load", "source": "x"}
            }),
        );
        assert!(changed);
        assert_eq!(v["birthDate"], "1990");
        assert_eq!(v["birthPlace"], "31");
        assert_eq!(v["sex"], "FEMALE");
        assert_eq!(v["origin"]["kind"], "INITIAL_LOAD");
        assert!(v.get("birth_date").is_none());
    }

    #[test]
    fn json_scalar_positions_and_typed_values_are_left_alone() {
        let typed = serde_json::json!({
            "record": "citizen-x", "correction": "c",
            "changes": [{"field": "permanent_residence", "old": null,
                         "new": {"commune": "1", "address": "a", "since": "2020-01-01",
                                 "some_key": "kept"}}],
            "reason": "r", "legalBasis": {"documentNumber": "1", "documentDate": "2026-01-01"}
        });
        let (changed, v) = upgraded("ProposeCorrectionInput!", typed.clone());
        assert!(!changed);
        assert_eq!(v, typed);
        let mut old = typed.clone();
        let basis = old.as_object_mut().unwrap().remove("legalBasis").unwrap();
        old["legal_basis"] = serde_json::json!({"document_number": basis["documentNumber"], "document_date": basis["documentDate"]});
        let (changed, v) = upgraded("ProposeCorrectionInput!", old);
        assert!(changed);
        assert_eq!(v, typed, "inside `new` (a JSON scalar) `some_key` stays");
    }

    #[test]
    fn unknown_keys_stay_for_validation_to_refuse() {
        let (changed, v) = upgraded(
            "ChangeResidenceInput!",
            serde_json::json!({"citizen": "c", "adress": "x", "kind": "sideways"}),
        );
        assert!(!changed);
        assert_eq!(v["adress"], "x");
        assert_eq!(v["kind"], "sideways");
    }
}
