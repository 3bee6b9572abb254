//! Natural keys and their reservation streams.
//!
//! Uniqueness of a PIN, an enterprise code or a parcel key cannot be enforced
//! by looking at one record stream. Instead every natural key has its own
//! stream, `key-<key_id>`, whose id is a UUIDv5 of the key's canonical string:
//! any process computes the same id for the same key. A registration appends
//! `KeyClaimed` to the key stream in the same atomic multi-stream append as
//! the record's first event, expecting the key stream's current version; two
//! concurrent registrations of one key therefore cannot both succeed.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use thiserror::Error;
use uuid::Uuid;

use crate::ids::{EnterpriseCode, ParcelKey, PersonalIdNumber, RecordId};

/// Namespace of all natural-key UUIDs:
/// `uuid5(NAMESPACE_URL, "urn:citydb:natural-key")`. Never change it: key
/// stream ids are derived from it.
pub const KEY_NAMESPACE: Uuid = Uuid::from_u128(0x6c5b45aa_553e_55f7_bfcb_a00a981b07ec);

/// A key that must identify at most one live record.
///
/// Canonical strings: `pin:035199000123`, `enterprise:0100233488`,
/// `enterprise:0100233488-001`, `parcel:11311/10507:12/345`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NaturalKey {
    Pin(PersonalIdNumber),
    Enterprise(EnterpriseCode),
    Parcel(ParcelKey),
}

crate::text_form::serde_as_text!(NaturalKey);

impl NaturalKey {
    /// Deterministic id of this key's reservation stream (`key-<key_id>`).
    pub fn key_id(&self) -> Uuid {
        Uuid::new_v5(&KEY_NAMESPACE, self.to_string().as_bytes())
    }
}

impl fmt::Display for NaturalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pin(p) => write!(f, "pin:{p}"),
            Self::Enterprise(c) => write!(f, "enterprise:{c}"),
            Self::Parcel(k) => write!(f, "parcel:{k}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NaturalKeyError {
    #[error("natural key `{0}` is not `pin:…`, `enterprise:…` or `parcel:…`")]
    Format(String),
    #[error("invalid natural key `{key}`: {message}")]
    Value { key: String, message: String },
}

impl FromStr for NaturalKey {
    type Err = NaturalKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value_err = |e: &dyn fmt::Display| NaturalKeyError::Value {
            key: s.to_owned(),
            message: e.to_string(),
        };
        match s.split_once(':') {
            Some(("pin", v)) => v.parse().map(Self::Pin).map_err(|e| value_err(&e)),
            // Legacy mode: a stored key must stay readable.
            Some(("enterprise", v)) => EnterpriseCode::parse_legacy(v)
                .map(|(c, _)| Self::Enterprise(c))
                .map_err(|e| value_err(&e)),
            Some(("parcel", v)) => v.parse().map(Self::Parcel).map_err(|e| value_err(&e)),
            _ => Err(NaturalKeyError::Format(s.to_owned())),
        }
    }
}

impl TryFrom<String> for NaturalKey {
    type Error = NaturalKeyError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<NaturalKey> for String {
    fn from(k: NaturalKey) -> Self {
        k.to_string()
    }
}

/// State of a key stream. `KeyClaim::default()` is an empty stream (the key
/// was never claimed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyClaim {
    /// The record currently holding the key.
    pub holder: Option<RecordId>,
    /// Every record that ever held it, oldest first (audit trail).
    pub past_holders: Vec<RecordId>,
}

impl KeyClaim {
    pub fn is_claimed(&self) -> bool {
        self.holder.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_is_the_documented_uuid5() {
        assert_eq!(
            KEY_NAMESPACE,
            Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:citydb:natural-key")
        );
    }

    #[test]
    fn key_ids_are_deterministic_and_distinct() {
        let pin: NaturalKey = "pin:035199000123".parse().unwrap();
        let same: NaturalKey = "pin:035199000123".parse().unwrap();
        let ent: NaturalKey = "enterprise:0100233488".parse().unwrap();
        let branch: NaturalKey = "enterprise:0100233488-001".parse().unwrap();
        let parcel: NaturalKey = "parcel:11311/10507:12/345".parse().unwrap();
        assert_eq!(pin.key_id(), same.key_id());
        assert_eq!(pin.key_id().get_version_num(), 5);
        let ids = [pin.key_id(), ent.key_id(), branch.key_id(), parcel.key_id()];
        for (i, a) in ids.iter().enumerate() {
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
        for k in [pin, ent, branch, parcel] {
            assert_eq!(k.to_string().parse::<NaturalKey>(), Ok(k));
        }
        assert!(matches!(
            "nin:1".parse::<NaturalKey>(),
            Err(NaturalKeyError::Format(_))
        ));
        assert!(matches!(
            "pin:1".parse::<NaturalKey>(),
            Err(NaturalKeyError::Value { .. })
        ));
    }
}
