//! Reading an internally tagged object (`{"<tag>": "<variant>", …fields}`) without buffering it
//! when the tag is its first key: what `record_json` (`Record`), `command_json` (`Command`)
//! and the small enums inside record states ([`tag_first!`]: a life status, an origin, a
//! status) share.
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

/// An enum of unit and struct variants, internally tagged (`tag = "<key>"`, variants in
/// `snake_case`), whose `Deserialize` reads the tag first ([`visit`]) instead of serde's
/// derive: a citizen's state holds two such values (its life status and its origin), and the
/// derive's buffering made them a sixth of decoding it (docs/benchmarks.md, 2026-12-06).
///
/// Written as the enum itself, after `tag = "<key>";` (and `, deny_unknown_fields` when the
/// enum refuses unknown fields): the macro emits the enum with `#[serde(tag = …)]` for its
/// derived `Serialize` (list `Serialize`, not `Deserialize`, in its derives), and reads each
/// variant's fields into a struct of the same fields, so the format, the defaults and the
/// refusals are serde's own. Under `cfg(test)` it also implements [`Derived`] with serde's
/// derive of the same enum, the reference `tests::reads_as_the_derive` holds it to. One
/// difference, as for `Record`: a second tag after a first one is ignored (refused under
/// `deny_unknown_fields`), where the derive refuses the object; no writer makes one.
macro_rules! tag_first {
    // `$extra`: an attribute of the enum and of each variant's struct, `serde(deny_unknown_fields)`
    // or the same under a false `cfg_attr` (one meta, not an optional one, so that the variants'
    // repetition can use it).
    (tag = $key:literal, deny_unknown_fields; $($enum:tt)*) => {
        $crate::tagged::tag_first!(@emit $key, serde(deny_unknown_fields); $($enum)*);
    };
    (tag = $key:literal; $($enum:tt)*) => {
        $crate::tagged::tag_first!(@emit $key, cfg_attr(any(), serde(deny_unknown_fields)); $($enum)*);
    };
    // A unit variant ignores other fields, `deny_unknown_fields` or not, as the derive does.
    (@fields $variant:ident, $extra:meta) => {
        #[derive(serde::Deserialize)]
        pub struct $variant {}
    };
    (@fields $variant:ident, $extra:meta, { $($fields:tt)* }) => {
        #[derive(serde::Deserialize)]
        #[$extra]
        pub struct $variant { $($fields)* }
    };
    (
        @emit $key:literal, $extra:meta;
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident $({ $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)? })?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[serde(tag = $key, rename_all = "snake_case")]
        #[$extra]
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant $({ $( $(#[$fmeta])* $field : $fty ),* })?
            ),*
        }

        const _: () = {
            use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

            /// The tag's values.
            #[derive(serde::Deserialize)]
            #[serde(rename_all = "snake_case")]
            pub enum Tag {
                $($variant),*
            }

            // Each variant's fields (none for a unit variant), named as the variant.
            $(
                $crate::tagged::tag_first!(
                    @fields $variant, $extra $(, { $( $(#[$fmeta])* $field : $fty ),* })?
                );
            )*

            /// The rest of the object, read as the variant `tag` names.
            fn variant<'de, D: Deserializer<'de>>(tag: Tag, rest: D) -> Result<$name, D::Error> {
                Ok(match tag {
                    $(
                        Tag::$variant => {
                            let $variant { $($($field),*)? } = $variant::deserialize(rest)?;
                            $name::$variant $({ $($field),* })?
                        }
                    )*
                })
            }

            struct TagFirstVisitor;

            impl<'de> Visitor<'de> for TagFirstVisitor {
                type Value = $name;

                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str(concat!("internally tagged enum ", stringify!($name)))
                }

                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<$name, A::Error> {
                    $crate::tagged::visit(map, $key, variant, variant)
                }
            }

            impl<'de> Deserialize<'de> for $name {
                fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                    deserializer.deserialize_map(TagFirstVisitor)
                }
            }

            /// serde's derive of the same enum, for the tests.
            #[cfg(test)]
            #[derive(serde::Deserialize)]
            #[serde(tag = $key, rename_all = "snake_case")]
            #[$extra]
            enum DerivedForm {
                $( $variant $({ $( $(#[$fmeta])* $field : $fty ),* })? ),*
            }

            #[cfg(test)]
            impl $crate::tagged::Derived for $name {
                const KEY: &'static str = $key;
                fn derived(text: &str) -> serde_json::Result<Self> {
                    Ok(match serde_json::from_str::<DerivedForm>(text)? {
                        $( DerivedForm::$variant $({ $($field),* })? => $name::$variant $({ $($field),* })? ),*
                    })
                }
            }
        };
    };
}

pub(crate) use tag_first;

/// A [`tag_first!`] enum as serde's derive reads it (the reference of its tests).
#[cfg(test)]
pub(crate) trait Derived: Sized {
    /// The tag's key.
    const KEY: &'static str;
    fn derived(text: &str) -> serde_json::Result<Self>;
}

#[cfg(test)]
mod tests {
    use super::Derived;
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    /// `T` reads each of `texts` (objects in the stored format, tag first) as serde's derive
    /// does, with the tag first, in the middle and last; and refuses what the derive refuses,
    /// in `refused` and in each text with a field renamed or dropped.
    fn reads_as_the_derive<T>(texts: &[&str], refused: &[&str])
    where
        T: DeserializeOwned + Derived + PartialEq + std::fmt::Debug + serde::Serialize,
    {
        let read = |text: &str| serde_json::from_str::<T>(text);
        for text in texts {
            let value = read(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                serde_json::to_string(&value).unwrap(),
                *text,
                "the stored format"
            );
            let Value::Object(mut object) = serde_json::from_str::<Value>(text).unwrap() else {
                panic!("{text} is not an object");
            };
            let tag = (T::KEY.to_owned(), object.remove(T::KEY).expect("a tag"));
            let fields: Vec<(String, Value)> = object.into_iter().collect();
            let pairs: Vec<(String, Value)> = std::iter::once(tag.clone())
                .chain(fields.iter().cloned())
                .collect();
            for at in [0, fields.len() / 2, fields.len()] {
                let mut moved = fields.to_vec();
                moved.insert(at, tag.clone());
                let text = object_text(&moved);
                assert_eq!(read(&text).unwrap(), value, "tag at {at}: {text}");
                assert_eq!(T::derived(&text).unwrap(), value, "{text}");
            }
            // A field more, each field dropped, each renamed: refused by both or read the same
            // by both (`deny_unknown_fields` or not, unit variant or not).
            let mut extra = pairs.clone();
            extra.push(("note".to_owned(), Value::from(1)));
            let mut changed = vec![object_text(&extra)];
            for i in 0..fields.len() {
                let mut dropped = pairs.clone();
                dropped.remove(i + 1);
                let mut renamed = pairs.clone();
                renamed[i + 1].0.push('_');
                changed.extend([object_text(&dropped), object_text(&renamed)]);
            }
            for text in changed {
                match (read(&text), T::derived(&text)) {
                    (Ok(fast), Ok(derived)) => assert_eq!(fast, derived, "{text}"),
                    (Err(_), Err(_)) => {}
                    (fast, derived) => panic!("{text}: read {fast:?}, the derive {derived:?}"),
                }
            }
        }
        for text in refused {
            assert!(read(text).is_err(), "{text} is refused");
            assert!(
                T::derived(text).is_err(),
                "{text} is refused by the derive too"
            );
        }
    }

    const PARCEL: &str = "22ed2420-9431-8003-b4a3-fc0a59c49b29";

    /// Every enum of the crate made with [`tag_first!`], every variant, as states store them.
    #[test]
    fn every_tag_first_enum_reads_as_the_derive() {
        use crate::business::state::BusinessStatus;
        use crate::citizen::state::LifeStatus;
        use crate::origin::RegistrationOrigin;
        use crate::parcel::state::{ParcelOrigin, ParcelStatus};
        use crate::privacy::RedactionStatus;
        use crate::stewardship::CorrectionStatus;

        // Refused by every one of them: not an object, no tag, a tag of another type.
        let not_enums = [
            r#"[]"#,
            r#""alive""#,
            r#"{}"#,
            r#"{"status":1,"kind":1}"#,
            r#"null"#,
        ];
        reads_as_the_derive::<LifeStatus>(
            &[
                r#"{"status":"alive"}"#,
                r#"{"status":"deceased","date":"2018-07"}"#,
            ],
            &[
                &not_enums[..],
                &[
                    r#"{"status":"dead"}"#,
                    r#"{"status":"deceased"}"#,
                    r#"{"status":"deceased","date":"2018-13"}"#,
                    r#"{"status":"deceased","date":2018}"#,
                ],
            ]
            .concat(),
        );
        // The one difference the macro's docs state: a second tag is ignored, not refused.
        let twice = r#"{"status":"alive","status":"deceased"}"#;
        assert_eq!(
            serde_json::from_str::<LifeStatus>(twice).ok(),
            Some(LifeStatus::Alive)
        );
        assert!(LifeStatus::derived(twice).is_err());
        // Unknown fields refused (`deny_unknown_fields`), a second tag too, but by a unit
        // variant: the derive ignores them there.
        reads_as_the_derive::<RegistrationOrigin>(
            &[
                r#"{"kind":"registration"}"#,
                r#"{"kind":"initial_load","source":"CSDLQG về dân cư"}"#,
            ],
            &[
                &not_enums[..],
                &[
                    r#"{"kind":"initial_load","source":"x","note":1}"#,
                    r#"{"kind":"initial_load","source":"x","kind":"initial_load"}"#,
                    r#"{"kind":"initial_load"}"#,
                    r#"{"kind":"InitialLoad","source":"x"}"#,
                ],
            ]
            .concat(),
        );
        reads_as_the_derive::<BusinessStatus>(
            &[
                r#"{"status":"active"}"#,
                r#"{"status":"suspended","from":"2024-01-01","until":"2024-06-30"}"#,
                r#"{"status":"dissolved","on":"2025-01-02"}"#,
            ],
            &[
                &not_enums[..],
                &[r#"{"status":"suspended","from":"2024-01-01"}"#],
            ]
            .concat(),
        );
        let parcels = format!(r#"["{PARCEL}","{PARCEL}"]"#);
        reads_as_the_derive::<ParcelOrigin>(
            &[
                r#"{"kind":"registration"}"#,
                &format!(r#"{{"kind":"split_from","source":"{PARCEL}"}}"#),
                &format!(r#"{{"kind":"merged_from","sources":{parcels}}}"#),
            ],
            &[&not_enums[..], &[r#"{"kind":"split_from","source":"x"}"#]].concat(),
        );
        reads_as_the_derive::<ParcelStatus>(
            &[
                r#"{"status":"active"}"#,
                r#"{"status":"retired","on":"2024-01-01","reason":"Thu hồi đất"}"#,
                &format!(r#"{{"status":"split","on":"2024-01-01","into":{parcels}}}"#),
                &format!(r#"{{"status":"merged_into","on":"2024-01-01","target":"{PARCEL}"}}"#),
            ],
            &[
                &not_enums[..],
                &[r#"{"status":"split","on":"2024-01-01","into":"x"}"#],
            ]
            .concat(),
        );
        reads_as_the_derive::<CorrectionStatus>(
            &[
                r#"{"status":"pending"}"#,
                r#"{"status":"approved","by":"supervisor-11239-01"}"#,
                r#"{"status":"rejected","by":"supervisor-11239-01","reason":"Không đủ căn cứ"}"#,
                r#"{"status":"withdrawn"}"#,
            ],
            &[&not_enums[..], &[r#"{"status":"approved"}"#]].concat(),
        );
        reads_as_the_derive::<RedactionStatus>(
            &[
                r#"{"status":"pending"}"#,
                r#"{"status":"approved","by":"supervisor-11239-01"}"#,
                r#"{"status":"rejected","by":"supervisor-11239-01","reason":"x"}"#,
            ],
            &[&not_enums[..], &[r#"{"status":"withdrawn"}"#]].concat(),
        );
    }

    fn object_text(pairs: &[(String, Value)]) -> String {
        let fields: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::from(k.as_str())))
            .collect();
        format!("{{{}}}", fields.join(","))
    }
}
