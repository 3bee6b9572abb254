//! Reading an internally tagged object (`{"<tag>": "<variant>", …fields}`) without buffering it
//! when the tag is its first key: what `record_json` (`Record`) and `command_json` (`Command`)
//! share.
//!
//! serde's derive for that representation copies the whole object into an intermediate tree
//! before it reads the tag. Every writer here puts the tag first, so [`visit`] reads the tag,
//! then hands the rest of the same map to the variant's reader; any other key order is still
//! read, through a buffered `serde_json::Value`, with the same result.

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

/// Reads the object `map` whose tag key is `key`: the tag's value as `K`, then the rest of
/// the object through `first` (the tag was the first key: the rest of the same map) or
/// `buffered` (it was elsewhere: the object without it, buffered). A missing tag is serde's
/// "missing field"; a key twice in a buffered object, "duplicate field".
pub(crate) fn visit<'de, A, K, T>(
    mut map: A,
    key: &'static str,
    first: impl FnOnce(K, MapAccessDeserializer<A>) -> Result<T, A::Error>,
    buffered: impl FnOnce(K, Value) -> Result<T, serde_json::Error>,
) -> Result<T, A::Error>
where
    A: MapAccess<'de>,
    K: Deserialize<'de>,
{
    match map.next_key_seed(FirstKey(key))? {
        None => Err(de::Error::missing_field(key)),
        Some(None) => {
            let tag: K = map.next_value()?;
            first(tag, MapAccessDeserializer::new(map))
        }
        Some(Some(other)) => {
            let mut object = Map::new();
            object.insert(other, map.next_value::<Value>()?);
            while let Some((k, value)) = map.next_entry::<String, Value>()? {
                if object.contains_key(&k) {
                    return Err(de::Error::custom(format_args!("duplicate field `{k}`")));
                }
                object.insert(k, value);
            }
            let tag = object
                .remove(key)
                .ok_or_else(|| de::Error::missing_field(key))?;
            let tag = K::deserialize(tag).map_err(de::Error::custom)?;
            buffered(tag, Value::Object(object)).map_err(de::Error::custom)
        }
    }
}

/// The object's first key: `None` for the tag, or any other key (kept for the buffered path).
struct FirstKey(&'static str);

impl<'de> DeserializeSeed<'de> for FirstKey {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for FirstKey {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok((key != self.0).then(|| key.to_owned()))
    }
}
