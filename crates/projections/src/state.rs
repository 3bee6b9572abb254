//! A record's state as stored in the `records` table: the domain `Record` as JSON.

use citydb_domain::Record;

pub(crate) fn from_json(json: &str) -> Result<Record, serde_json::Error> {
    serde_json::from_str(json)
}

/// The JSON stored for a record state. Deterministic: structs serialise in field order and
/// corrections are a `BTreeMap`, which `digest()` relies on.
pub(crate) fn to_json(record: &Record) -> Result<String, serde_json::Error> {
    serde_json::to_string(record)
}
