//! Record identifiers. Ids are UUIDs chosen by the caller (the command
//! carries them), so `decide` stays deterministic.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

uuid_id!(
    /// A citizen record (one event stream `citizen-<uuid>`).
    CitizenId
);
uuid_id!(
    /// A business record, main enterprise or branch (stream `business-<uuid>`).
    BusinessId
);
uuid_id!(
    /// A land parcel record (stream `parcel-<uuid>`).
    ParcelId
);
uuid_id!(
    /// One correction proposal on a record.
    CorrectionId
);

/// Any record. Its string form is the record's stream id:
/// `citizen-<uuid>`, `business-<uuid>` or `parcel-<uuid>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordId {
    Citizen(CitizenId),
    Business(BusinessId),
    Parcel(ParcelId),
}

crate::text_form::serde_as_text!(RecordId);

impl RecordId {
    pub fn uuid(&self) -> Uuid {
        match self {
            Self::Citizen(id) => id.0,
            Self::Business(id) => id.0,
            Self::Parcel(id) => id.0,
        }
    }

    /// "citizen", "business" or "parcel".
    pub fn kind(&self) -> RecordKind {
        match self {
            Self::Citizen(_) => RecordKind::Citizen,
            Self::Business(_) => RecordKind::Business,
            Self::Parcel(_) => RecordKind::Parcel,
        }
    }
}

/// Declares [`RecordKind`] and its list [`RecordKind::ALL`] from one list of
/// `Variant => "category"`, so the list cannot miss a kind.
macro_rules! record_kinds {
    ($($variant:ident => $category:literal),+ $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum RecordKind {
            $($variant),+
        }

        impl RecordKind {
            /// Every kind of record, in one place: the stream categories of the registers (the
            /// API's change feed and the projections derive theirs from it).
            pub const ALL: [RecordKind; [$($category),+].len()] = [$(RecordKind::$variant),+];

            /// The stream category of the kind's records (`citizen-<uuid>`).
            pub fn as_str(&self) -> &'static str {
                match self {
                    $(Self::$variant => $category),+
                }
            }
        }
    };
}

// A new record kind starts here; every `match` over kinds, records and record ids then fails
// to compile until it handles the new kind.
record_kinds! {
    Citizen => "citizen",
    Business => "business",
    Parcel => "parcel",
}

impl RecordKind {
    /// The kind whose records live in streams of `category`, if any (key claims, command
    /// markers and the access log are not records).
    pub fn from_category(category: &str) -> Option<RecordKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == category)
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<CitizenId> for RecordId {
    fn from(id: CitizenId) -> Self {
        Self::Citizen(id)
    }
}
impl From<BusinessId> for RecordId {
    fn from(id: BusinessId) -> Self {
        Self::Business(id)
    }
}
impl From<ParcelId> for RecordId {
    fn from(id: ParcelId) -> Self {
        Self::Parcel(id)
    }
}

impl fmt::Display for RecordId {
    /// `<kind>-<uuid>`, the uuid's text made on the stack: through `write!` and uuid's own
    /// `Display` an id cost ~700 instructions, and every record a response shows is one (twenty
    /// on a search page; docs/benchmarks.md, "Fewer hashes, allocations and formats in a
    /// response"). Three `write_str`s, not one of a buffer checked as UTF-8 again (~250
    /// instructions an id: "A drawn name search's last UTF-8 checks").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut uuid = [0u8; uuid::fmt::Hyphenated::LENGTH];
        f.write_str(self.kind().as_str())?;
        f.write_str("-")?;
        f.write_str(self.uuid().hyphenated().encode_lower(&mut uuid))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordIdError {
    #[error("record id `{0}` is not `citizen-<uuid>`, `business-<uuid>` or `parcel-<uuid>`")]
    Format(String),
}

impl FromStr for RecordId {
    type Err = RecordIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || RecordIdError::Format(s.to_owned());
        let (category, uuid) = s.split_once('-').ok_or_else(err)?;
        let kind = RecordKind::from_category(category).ok_or_else(err)?;
        let uuid = Uuid::parse_str(uuid).map_err(|_| err())?;
        Ok(match kind {
            RecordKind::Citizen => Self::Citizen(CitizenId(uuid)),
            RecordKind::Business => Self::Business(BusinessId(uuid)),
            RecordKind::Parcel => Self::Parcel(ParcelId(uuid)),
        })
    }
}

impl TryFrom<String> for RecordId {
    type Error = RecordIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RecordId> for String {
    fn from(id: RecordId) -> Self {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_id_string_is_the_stream_id() {
        let u = Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001);
        let id = RecordId::Citizen(CitizenId(u));
        assert_eq!(id.to_string(), format!("citizen-{u}"));
        assert_eq!(id.to_string().parse::<RecordId>(), Ok(id));
        let b = RecordId::Business(BusinessId(u));
        assert_eq!(
            serde_json::to_value(b).unwrap(),
            serde_json::json!(format!("business-{u}"))
        );
        assert!(
            "land-00000000-0000-0000-0000-000000000000"
                .parse::<RecordId>()
                .is_err()
        );
        assert!("parcel-xyz".parse::<RecordId>().is_err());
    }

    #[test]
    fn every_kind_of_id_is_written_as_its_category_a_dash_and_the_lowercase_uuid() {
        let u = Uuid::from_u128(0xABCD_EF01_2345_7678_9ABC_DEF0_1234_5678);
        let ids = [
            RecordId::Citizen(CitizenId(u)),
            RecordId::Business(BusinessId(u)),
            RecordId::Parcel(ParcelId(u)),
        ];
        for id in ids {
            let text = "abcdef01-2345-7678-9abc-def012345678";
            assert_eq!(id.to_string(), format!("{}-{text}", id.kind().as_str()));
            // A width is not a padding of the id (as before: no `Formatter::pad`).
            assert_eq!(format!("{id:>60}"), id.to_string());
            assert_eq!(id.to_string().parse::<RecordId>(), Ok(id));
        }
    }

    #[test]
    fn every_kind_is_found_by_its_category_and_nothing_else_is() {
        for kind in RecordKind::ALL {
            assert_eq!(RecordKind::from_category(kind.as_str()), Some(kind));
            // The serde name (stored in events and field lists) is the category.
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert_eq!(RecordKind::ALL.len(), 3);
        for other in ["key", "command", "access", "Citizen", ""] {
            assert_eq!(RecordKind::from_category(other), None, "{other}");
        }
    }
}
