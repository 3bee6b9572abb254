//! A record's field through valid time (issue 16): every value it held, from when until when,
//! as known at the record's basis (now, or at `asOf`'s position or time). Folded from the
//! record's stream by `citydb_domain::valid_time::timeline`.

use async_graphql::{Context, Json, SimpleObject};
use serde_json::Value;

use citydb_domain::parcel::{Holder, Holding};
use citydb_domain::valid_time::timeline_fields;
use citydb_domain::{CitizenId, RecordId, RecordKind};

use super::access::personal;
use super::basis::Basis;
use super::query::handles;
use super::registry_error;
use crate::auth::FieldGroup;
use crate::error::ApiError;

/// One value a field held, on the valid axis.
#[derive(SimpleObject)]
pub struct Period {
    /// The first day it held (`YYYY-MM-DD`; a partial date counts from its first day).
    pub from: String,
    /// The day the next value began; `null` while it still holds.
    pub until: Option<String>,
    /// The value as corrections spell it (`FieldChangeInput.new`); `null`: none.
    pub value: Json<Value>,
    /// The stream version of the event that set it, or last corrected it in place.
    pub set_by_version: i64,
}

/// The group a citizen's field belongs to, for the timeline's scope check and access log.
pub(super) fn citizen_group(field: &str) -> FieldGroup {
    match field {
        "permanent_residence" | "temporary_residence" => FieldGroup::Residence,
        "father" | "mother" | "marriage" => FieldGroup::Family,
        _ => FieldGroup::Identity,
    }
}

/// The citizens a value names that are not the record's own data: a parcel's citizen holders
/// and a business's legal representatives — each a personal read, as on the current state.
fn linked_citizens(field: &str, value: &Value) -> Vec<CitizenId> {
    match field {
        "holders" => serde_json::from_value::<Vec<Holding>>(value.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|h| match h.holder {
                Holder::Citizen(c) => Some(c),
                Holder::Business(_) => None,
            })
            .collect(),
        "legal_representatives" => {
            serde_json::from_value::<Vec<CitizenId>>(value.clone()).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

/// Refuses a field a record of `kind` has no timeline of: before any scope check, so that a
/// refused request notes no read in the access log.
pub(super) fn known_field(kind: RecordKind, field: &str) -> Result<(), ApiError> {
    if timeline_fields(kind).contains(&field) {
        return Ok(());
    }
    Err(ApiError::invalid_field(
        format!(
            "a {} has no field `{field}` to follow in time; one of: {}",
            kind.as_str(),
            timeline_fields(kind).join(", ")
        ),
        "field",
    ))
}

/// The periods of `field` of record `id`, as known at `basis`. The caller has checked the
/// record's own scope; citizens a period names are logged as read (`link_group`).
pub(super) async fn periods(
    ctx: &Context<'_>,
    id: RecordId,
    basis: &Basis,
    field: &str,
    link_group: FieldGroup,
) -> Result<Vec<Period>, ApiError> {
    known_field(id.kind(), field)?;
    let found = handles(ctx)?
        .registry
        .record_timeline(id, basis.map(|p| p.known_at), field)
        .await
        .map_err(registry_error)?
        .unwrap_or_default();
    let mut out = Vec::with_capacity(found.len());
    for p in found {
        for citizen in linked_citizens(field, &p.value) {
            personal(ctx, citizen.uuid(), link_group, "timeline")?;
        }
        out.push(Period {
            from: p.from.to_string(),
            until: p.until.map(|d| d.to_string()),
            value: Json(p.value),
            set_by_version: p.set_by as i64,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn holders_and_representatives_name_citizens() {
        let c = "00000000-0000-0000-0000-00000000c001";
        let b = "00000000-0000-0000-0000-00000000b001";
        let holders = json!([
            {"holder": {"kind": "citizen", "id": c}, "share": "1/2"},
            {"holder": {"kind": "business", "id": b}, "share": "1/2"}
        ]);
        let found = linked_citizens("holders", &holders);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].uuid().to_string(), c);
        assert_eq!(
            linked_citizens("legal_representatives", &json!([c])).len(),
            1
        );
        assert!(linked_citizens("address", &json!(c)).is_empty());
    }
}
