//! The streams a decision writes to: one per record, one per natural key.

use std::fmt;

use serde::Serialize;

use crate::ids::{BusinessId, CitizenId, ParcelId, RecordId};
use crate::key::NaturalKey;

/// A stream a decision writes to.
///
/// Stream ids: records use their [`RecordId`] string (`citizen-<uuid>`,
/// `business-<uuid>`, `parcel-<uuid>`), keys use `key-<key_id>` where
/// `key_id` is [`NaturalKey::key_id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Target {
    Record(RecordId),
    Key(NaturalKey),
}

impl Target {
    /// The stream id's two parts, category and UUID (`stream_id` is `<category>-<uuid>`),
    /// for callers that build the id without formatting and parsing it back.
    pub fn stream_parts(&self) -> (&'static str, uuid::Uuid) {
        match self {
            Self::Record(id) => (id.kind().as_str(), id.uuid()),
            Self::Key(key) => ("key", key.key_id()),
        }
    }

    pub fn stream_id(&self) -> String {
        match self {
            Self::Record(id) => id.to_string(),
            Self::Key(key) => format!("key-{}", key.key_id()),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Record(id) => write!(f, "{id}"),
            Self::Key(key) => write!(f, "key-{} ({key})", key.key_id()),
        }
    }
}

impl From<RecordId> for Target {
    fn from(id: RecordId) -> Self {
        Self::Record(id)
    }
}

impl From<NaturalKey> for Target {
    fn from(key: NaturalKey) -> Self {
        Self::Key(key)
    }
}

impl From<CitizenId> for Target {
    fn from(id: CitizenId) -> Self {
        Self::Record(RecordId::Citizen(id))
    }
}

impl From<BusinessId> for Target {
    fn from(id: BusinessId) -> Self {
        Self::Record(RecordId::Business(id))
    }
}

impl From<ParcelId> for Target {
    fn from(id: ParcelId) -> Self {
        Self::Record(RecordId::Parcel(id))
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::ids::PersonalIdNumber;

    #[test]
    fn stream_parts_join_to_the_stream_id() {
        let pin: PersonalIdNumber = "031099000123".parse().expect("a valid PIN");
        let targets = [
            Target::Record(CitizenId(Uuid::from_u128(7)).into()),
            Target::Record(BusinessId(Uuid::from_u128(8)).into()),
            Target::Record(ParcelId(Uuid::from_u128(9)).into()),
            Target::Key(NaturalKey::Pin(pin)),
        ];
        for target in targets {
            let (category, id) = target.stream_parts();
            assert_eq!(
                format!("{category}-{}", id.hyphenated()),
                target.stream_id()
            );
        }
    }
}
