//! Serde for values whose JSON form is their text: `Display` out, `FromStr` in.
//!
//! `#[serde(try_from = "String", into = "String")]` allocates a `String` for every such value
//! read or written; a citizen's stored state holds a dozen (PIN, dates, unit codes, ids), read
//! back on every point read and twenty times a search page. [`serde_as_text!`] writes the text
//! straight into the output (`collect_str`) and parses it from the input's own bytes
//! (`deserialize_str`: serde_json hands a string without escapes over borrowed).
//!
//! Invariant: the bytes are those of the `String` form — the same text, quoted the same way —
//! so the hash-chained event format (docs/audit-format.md) does not change, and the errors
//! read as before ("invalid type: …, expected a string"; a parse error's own message), but for
//! serde_json's position, now the value's end rather than the next token.

use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use serde::de::{self, Visitor};

/// The visitor of [`serde_as_text!`]'s `Deserialize`.
pub(crate) struct FromText<T>(PhantomData<T>);

impl<T> FromText<T> {
    pub(crate) fn new() -> Self {
        FromText(PhantomData)
    }
}

impl<T> Visitor<'_> for FromText<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
        text.parse().map_err(E::custom)
    }
}

/// `Serialize` as `Display`'s text and `Deserialize` with `FromStr`, for a type whose
/// `From<T> for String` and `TryFrom<String>` are exactly those.
macro_rules! serde_as_text {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str($crate::text_form::FromText::<$ty>::new())
            }
        }
    };
}

pub(crate) use serde_as_text;

#[cfg(test)]
mod tests {
    use crate::date::{Date, PartialDate};
    use crate::ids::PersonalIdNumber;

    /// What `try_from = "String", into = "String"` wrote and read.
    #[derive(serde::Serialize, serde::Deserialize, Clone, Debug, PartialEq)]
    #[serde(try_from = "String", into = "String")]
    struct AsString(PartialDate);

    impl TryFrom<String> for AsString {
        type Error = crate::date::DateError;
        fn try_from(s: String) -> Result<Self, Self::Error> {
            s.parse().map(AsString)
        }
    }

    impl From<AsString> for String {
        fn from(d: AsString) -> String {
            d.0.to_string()
        }
    }

    #[test]
    fn the_same_bytes_and_errors_as_the_string_form() {
        for text in ["\"1999\"", "\"1999-07\"", "\"1999-07-21\""] {
            let date: PartialDate = serde_json::from_str(text).unwrap();
            let old: AsString = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&date).unwrap(), text);
            assert_eq!(serde_json::to_string(&old).unwrap(), text);
            // Through a `Value` and as a map key too.
            assert_eq!(
                serde_json::to_value(date).unwrap(),
                serde_json::to_value(&old).unwrap()
            );
            let map = std::collections::HashMap::from([(date, 1)]);
            let json = serde_json::to_string(&map).unwrap();
            assert_eq!(json, format!("{{{text}:1}}"));
            let back: std::collections::HashMap<PartialDate, i32> =
                serde_json::from_str(&json).unwrap();
            assert_eq!(back, map);
        }
        // Inside a record, as values always are, the message is the same; serde_json's position
        // is now where the value ends (the string form's was one token later, and a bare value's
        // conversion error had none).
        #[derive(serde::Deserialize, Debug)]
        struct New {
            _d: PartialDate,
        }
        #[derive(serde::Deserialize, Debug)]
        struct Old {
            _d: AsString,
        }
        for bad in ["\"1999-02-30\"", "\"99\"", "5", "null", "\"\\u0031999\"x"] {
            let text = format!("{{\"_d\": {bad}}}");
            let message = |e: serde_json::Error| {
                let text = e.to_string();
                text.rsplit_once(" at line ").map(|(m, _)| m.to_owned())
            };
            let new = serde_json::from_str::<New>(&text).map_err(message);
            let old = serde_json::from_str::<Old>(&text).map_err(message);
            assert_eq!(new.unwrap_err(), old.unwrap_err(), "{bad}");
        }
        // An escaped string (not borrowed from the input) reads the same.
        let escaped: Date = serde_json::from_str("\"\\u00319\\u00399-07-21\"").unwrap();
        assert_eq!(escaped.to_string(), "1999-07-21");
        let pin: PersonalIdNumber = serde_json::from_str("\"001099012345\"").unwrap();
        assert_eq!(serde_json::to_string(&pin).unwrap(), "\"001099012345\"");
    }
}
