//! Stream identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::LogError;

/// Longest category accepted. Categories are an open set (`citizen`, `parcel`, `key`, …) but
/// they are names, not payloads.
pub const MAX_CATEGORY_LEN: usize = 64;

/// The identity of one stream: a lowercase category and a UUID, written `category-uuid`
/// (for example `citizen-0193e3a4-…`).
///
/// Invariant: `category` matches `[a-z][a-z0-9_]*` (no `-`, so the split is unambiguous) and
/// is at most [`MAX_CATEGORY_LEN`] bytes; the textual form is always the UUID's lowercase
/// hyphenated form. Two `StreamId`s are equal exactly when their textual forms are equal, so
/// the textual form is what backends store and what the hash chain covers.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    text: String,
    category_len: usize,
    uuid: Uuid,
}

impl StreamId {
    /// Builds a stream id from a category and a UUID.
    pub fn new(category: &str, id: Uuid) -> Result<Self, LogError> {
        validate_category(category).map_err(|reason| LogError::InvalidStreamId {
            stream: format!("{category}-{id}"),
            reason,
        })?;
        // Pushed, not `format!`ed: a bulk import builds one per event, and the formatting
        // machinery was ~5 % of its importer's thread (docs/benchmarks.md, 2026-12-04 later).
        let mut text = String::with_capacity(category.len() + 1 + uuid::fmt::Hyphenated::LENGTH);
        text.push_str(category);
        text.push('-');
        text.push_str(id.hyphenated().encode_lower(&mut Uuid::encode_buffer()));
        Ok(StreamId {
            text,
            category_len: category.len(),
            uuid: id,
        })
    }

    /// The category, such as `citizen`.
    pub fn category(&self) -> &str {
        &self.text[..self.category_len]
    }

    /// The UUID part.
    pub fn id(&self) -> Uuid {
        self.uuid
    }

    /// The canonical textual form, as stored and hashed.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

fn validate_category(category: &str) -> Result<(), &'static str> {
    let bytes = category.as_bytes();
    match bytes.first() {
        None => return Err("the category is empty"),
        Some(b) if !b.is_ascii_lowercase() => {
            return Err("the category must start with a lowercase ASCII letter");
        }
        Some(_) => {}
    }
    if bytes.len() > MAX_CATEGORY_LEN {
        return Err("the category is longer than 64 bytes");
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
    {
        return Err("the category may hold only a-z, 0-9 and _");
    }
    Ok(())
}

impl FromStr for StreamId {
    type Err = LogError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| LogError::InvalidStreamId {
            stream: s.chars().take(200).collect(),
            reason,
        };
        let (category, id) = s
            .split_once('-')
            .ok_or_else(|| invalid("expected `category-uuid`"))?;
        let uuid = Uuid::try_parse(id)
            .map_err(|_| invalid("the part after the category is not a UUID"))?;
        // Only the canonical form is accepted, so that one stream has one spelling. Compared
        // on the stack: every event read from a store parses its stream id here.
        if *uuid.hyphenated().encode_lower(&mut Uuid::encode_buffer()) != *id {
            return Err(invalid("the UUID must be lowercase and hyphenated"));
        }
        validate_category(category).map_err(invalid)?;
        // `s` is `category-uuid` in canonical form, exactly what `new` would write.
        Ok(StreamId {
            text: s.to_owned(),
            category_len: category.len(),
            uuid,
        })
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({})", self.text)
    }
}

impl Serialize for StreamId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_canonical_form() {
        let s = "citizen-0193e3a4-7c1b-7d2e-8f00-123456789abc";
        let id: StreamId = s.parse().unwrap();
        assert_eq!(id.category(), "citizen");
        assert_eq!(id.as_str(), s);
        assert_eq!(id.id().to_string(), "0193e3a4-7c1b-7d2e-8f00-123456789abc");
    }

    #[test]
    fn rejects_bad_forms() {
        for bad in [
            "",
            "citizen",
            "-0193e3a4-7c1b-7d2e-8f00-123456789abc",
            "Citizen-0193e3a4-7c1b-7d2e-8f00-123456789abc",
            "citizen-0193E3A4-7C1B-7D2E-8F00-123456789ABC",
            "citizen-0193e3a47c1b7d2e8f00123456789abc",
            "citi zen-0193e3a4-7c1b-7d2e-8f00-123456789abc",
            "1citizen-0193e3a4-7c1b-7d2e-8f00-123456789abc",
            "citizen-not-a-uuid",
        ] {
            assert!(
                matches!(
                    bad.parse::<StreamId>(),
                    Err(LogError::InvalidStreamId { .. })
                ),
                "{bad:?} was accepted"
            );
        }
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(cat in "[a-z][a-z0-9_]{0,20}", bits in any::<u128>()) {
            let id = StreamId::new(&cat, Uuid::from_u128(bits)).unwrap();
            let back: StreamId = id.to_string().parse().unwrap();
            prop_assert_eq!(back.category(), cat.as_str());
            prop_assert_eq!(back.id(), id.id());
            prop_assert_eq!(back, id);
        }

        /// `new` writes the canonical form: the category, a dash, the lowercase hyphenated UUID.
        #[test]
        fn new_writes_the_canonical_form(cat in "[a-z][a-z0-9_]{0,63}", bits in any::<u128>()) {
            let uuid = Uuid::from_u128(bits);
            let id = StreamId::new(&cat, uuid).unwrap();
            prop_assert_eq!(id.as_str(), format!("{cat}-{}", uuid.hyphenated()));
            prop_assert_eq!(id.category(), cat.as_str());
        }

        /// Parsing accepts exactly the texts `new` writes: any other text is refused, and
        /// what is accepted is kept as given.
        #[test]
        fn parse_accepts_only_what_new_writes(
            s in "[a-zA-Z0-9_]{0,6}-[0-9a-fA-F-]{30,40}|[a-z][a-z_]{0,8}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
        ) {
            let canonical = s.split_once('-').and_then(|(category, id)| {
                let uuid = Uuid::try_parse(id).ok()?;
                StreamId::new(category, uuid).ok()
            });
            match (s.parse::<StreamId>(), canonical) {
                (Ok(parsed), Some(new)) if new.as_str() == s => {
                    prop_assert_eq!(parsed.as_str(), s.as_str());
                    prop_assert_eq!(parsed.category(), new.category());
                    prop_assert_eq!(parsed, new);
                }
                (Ok(parsed), _) => prop_assert!(false, "{s:?} was accepted as {parsed:?}"),
                (Err(LogError::InvalidStreamId { .. }), canonical) => {
                    prop_assert!(canonical.is_none_or(|new| new.as_str() != s));
                }
                (Err(e), _) => prop_assert!(false, "{s:?}: {e}"),
            }
        }
    }
}
