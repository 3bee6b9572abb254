//! The fast path of [`crate::text::check_command`]: whether every string of a command fits its
//! maximum, read straight from the command's `Serialize` calls instead of a `serde_json::Value`
//! built for the walk (the tree of maps and strings cost ~11,000 instructions a command, 74 %
//! of `decide`, in a bulk import's profile: docs/benchmarks.md).
//!
//! Invariant: [`all_fit`] returns `true` only when the walk over the command's JSON form
//! (`text::walk`) would accept it. It gives every string the same key the walk gives it (the
//! nearest field, map key or variant name above it; an array's items take the array's; a
//! correction's `old` and `new` the field they correct), counts characters the same way, and
//! returns `false` — "ask the walk" — whenever it is not sure: a string too long, `old` or
//! `new` before `field`, `field` twice in one object, a map key the JSON form would refuse, or
//! any error. So [`crate::text::check_command`] answers exactly as the walk alone did, and the
//! walk still writes every refusal.

use std::fmt;

use serde::ser::{self, Serialize};

/// The maximum, in characters, of a string under a key (`text::max_chars`, given by the caller:
/// this module knows no limits of its own).
pub(crate) type MaxChars = fn(&str) -> usize;

/// Whether every string in `command` fits its key's maximum by `max_chars` (`false`: not sure,
/// ask the walk).
pub(crate) fn all_fit(command: &impl Serialize, max_chars: MaxChars) -> bool {
    command.serialize(Strings::under(max_chars, "")).is_ok()
}

/// Whether `text` fits `max` characters, counted as `text::check` does.
fn fits(max: usize, text: &str) -> bool {
    // A character is at least one byte: no need to count a short text.
    text.len() <= max || text.chars().take(max + 1).count() <= max
}

/// "Not sure": the walk decides.
#[derive(Debug)]
struct Unsure;

impl fmt::Display for Unsure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not sure every string fits")
    }
}

impl std::error::Error for Unsure {}

impl ser::Error for Unsure {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Unsure
    }
}

type Done = Result<(), Unsure>;

/// Serialises one value whose strings take the maximum of `key`. `captured` is set to the
/// value's text when the value is itself a string (the value of a correction's `field`).
struct Strings<'k> {
    max_chars: MaxChars,
    key: &'k str,
    captured: Option<&'k mut Option<String>>,
}

impl<'k> Strings<'k> {
    fn under(max_chars: MaxChars, key: &'k str) -> Self {
        Strings {
            max_chars,
            key,
            captured: None,
        }
    }

    fn text(self, text: &str) -> Done {
        if let Some(captured) = self.captured {
            *captured = Some(text.to_owned());
        }
        if fits((self.max_chars)(self.key), text) {
            Ok(())
        } else {
            Err(Unsure)
        }
    }
}

/// Numbers and booleans: no string in them.
macro_rules! no_strings {
    ($($method:ident : $t:ty),*) => {$(
        fn $method(self, _: $t) -> Done {
            Ok(())
        }
    )*};
}

impl<'k> ser::Serializer for Strings<'k> {
    type Ok = ();
    type Error = Unsure;
    type SerializeSeq = Items<'k>;
    type SerializeTuple = Items<'k>;
    type SerializeTupleStruct = Items<'k>;
    type SerializeTupleVariant = Items<'k>;
    type SerializeMap = Object;
    type SerializeStruct = Object;
    type SerializeStructVariant = Object;

    no_strings!(
        serialize_bool: bool,
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_i128: i128,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64,
        serialize_u128: u128,
        serialize_f32: f32,
        serialize_f64: f64
    );
    fn serialize_char(self, c: char) -> Done {
        self.text(c.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, text: &str) -> Done {
        self.text(text)
    }
    /// An array of numbers in the JSON form: no string.
    fn serialize_bytes(self, _: &[u8]) -> Done {
        Ok(())
    }
    fn serialize_none(self) -> Done {
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Done {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Done {
        Ok(())
    }
    /// The variant's name as a string, as in the JSON form.
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Done {
        self.text(variant)
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> Done {
        value.serialize(self)
    }
    /// `{variant: value}`: the value's strings take the variant's name as their key.
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Done {
        value.serialize(Strings::under(self.max_chars, variant))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Items<'k>, Unsure> {
        Ok(Items {
            max_chars: self.max_chars,
            key: self.key,
        })
    }
    fn serialize_tuple(self, _: usize) -> Result<Items<'k>, Unsure> {
        Ok(Items {
            max_chars: self.max_chars,
            key: self.key,
        })
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Items<'k>, Unsure> {
        Ok(Items {
            max_chars: self.max_chars,
            key: self.key,
        })
    }
    /// `{variant: [items]}`.
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Items<'k>, Unsure> {
        Ok(Items {
            max_chars: self.max_chars,
            key: variant,
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Object, Unsure> {
        Ok(Object::new(self.max_chars))
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Object, Unsure> {
        Ok(Object::new(self.max_chars))
    }
    /// `{variant: {fields}}`: the fields are an object's, keyed by their own names.
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Object, Unsure> {
        Ok(Object::new(self.max_chars))
    }
}

/// An array's items, which take the array's key.
struct Items<'k> {
    max_chars: MaxChars,
    key: &'k str,
}

impl Items<'_> {
    fn item<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
        value.serialize(Strings::under(self.max_chars, self.key))
    }
}

/// serde's four array-like compounds, all of them an array's items in the JSON form.
macro_rules! items {
    ($($compound:ident :: $method:ident),*) => {$(
        impl ser::$compound for Items<'_> {
            type Ok = ();
            type Error = Unsure;
            fn $method<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
                self.item(value)
            }
            fn end(self) -> Done {
                Ok(())
            }
        }
    )*};
}

items!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// An object's entries (a struct's fields or a map's), each keyed by its own name, except a
/// correction's `old` and `new`, keyed by the field it corrects (`name.given` → `given`).
struct Object {
    max_chars: MaxChars,
    /// The key of the entry whose value comes next (maps).
    pending: String,
    /// Whether a `field` entry was seen, and its text when it was a string.
    field: Option<Option<String>>,
}

impl Object {
    fn new(max_chars: MaxChars) -> Self {
        Object {
            max_chars,
            pending: String::new(),
            field: None,
        }
    }

    fn entry<T: ?Sized + Serialize>(&mut self, key: &str, value: &T) -> Done {
        match key {
            "field" => {
                if self.field.is_some() {
                    // Which one the JSON form keeps is the walk's business.
                    return Err(Unsure);
                }
                let mut captured = None;
                value.serialize(Strings {
                    max_chars: self.max_chars,
                    key,
                    captured: Some(&mut captured),
                })?;
                self.field = Some(captured);
                Ok(())
            }
            "old" | "new" => {
                // The walk keys them by the object's `field`, wherever it comes; here it must
                // have come first.
                let Some(field) = &self.field else {
                    return Err(Unsure);
                };
                let key = match field {
                    Some(f) => f.rsplit('.').next().unwrap_or(f),
                    None => key,
                };
                value.serialize(Strings::under(self.max_chars, key))
            }
            _ => value.serialize(Strings::under(self.max_chars, key)),
        }
    }
}

/// A struct's fields, and a struct variant's (the object under the variant's name).
macro_rules! fields {
    ($($compound:ident),*) => {$(
        impl ser::$compound for Object {
            type Ok = ();
            type Error = Unsure;
            fn serialize_field<T: ?Sized + Serialize>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Done {
                self.entry(key, value)
            }
            fn end(self) -> Done {
                Ok(())
            }
        }
    )*};
}

fields!(SerializeStruct, SerializeStructVariant);

impl ser::SerializeMap for Object {
    type Ok = ();
    type Error = Unsure;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, key: &T) -> Done {
        self.pending = key.serialize(MapKey)?;
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, value: &T) -> Done {
        let key = std::mem::take(&mut self.pending);
        self.entry(&key, value)
    }
    fn end(self) -> Done {
        Ok(())
    }
}

/// A map key as the JSON form writes it: text, a character, a unit variant's name or an
/// integer. Anything else is unsure (the JSON form may refuse it).
struct MapKey;

type Key = Result<String, Unsure>;

/// An integer key, written as its digits as the JSON form does.
macro_rules! integer_keys {
    ($($method:ident : $t:ty),*) => {$(
        fn $method(self, v: $t) -> Key {
            Ok(v.to_string())
        }
    )*};
}

impl ser::Serializer for MapKey {
    type Ok = String;
    type Error = Unsure;
    type SerializeSeq = ser::Impossible<String, Unsure>;
    type SerializeTuple = ser::Impossible<String, Unsure>;
    type SerializeTupleStruct = ser::Impossible<String, Unsure>;
    type SerializeTupleVariant = ser::Impossible<String, Unsure>;
    type SerializeMap = ser::Impossible<String, Unsure>;
    type SerializeStruct = ser::Impossible<String, Unsure>;
    type SerializeStructVariant = ser::Impossible<String, Unsure>;

    fn serialize_str(self, v: &str) -> Key {
        Ok(v.to_owned())
    }
    fn serialize_char(self, v: char) -> Key {
        Ok(v.to_string())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Key {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, value: &T) -> Key {
        value.serialize(self)
    }
    integer_keys!(
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64
    );
    fn serialize_bool(self, _: bool) -> Key {
        Err(Unsure)
    }
    fn serialize_f32(self, _: f32) -> Key {
        Err(Unsure)
    }
    fn serialize_f64(self, _: f64) -> Key {
        Err(Unsure)
    }
    fn serialize_bytes(self, _: &[u8]) -> Key {
        Err(Unsure)
    }
    fn serialize_none(self) -> Key {
        Err(Unsure)
    }
    fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Key {
        Err(Unsure)
    }
    fn serialize_unit(self) -> Key {
        Err(Unsure)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Key {
        Err(Unsure)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Key {
        Err(Unsure)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Unsure> {
        Err(Unsure)
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Unsure> {
        Err(Unsure)
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, Unsure> {
        Err(Unsure)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Unsure> {
        Err(Unsure)
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Unsure> {
        Err(Unsure)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Unsure> {
        Err(Unsure)
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Unsure> {
        Err(Unsure)
    }
}
