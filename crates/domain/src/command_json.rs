//! Reading a [`Command`] without buffering it first.
//!
//! `Command` is internally tagged (`{"type":"RegisterCitizen", …fields}`), the format of every
//! import line and every command request. serde's derive for that representation cannot know
//! where the tag is, so it first copies the whole object into an intermediate tree (a `String`
//! for every key and text value) and only then reads the variant from the copy: about half of
//! what parsing an import line cost (a callgrind profile of a bulk import at 1/100,
//! docs/benchmarks.md, 2026-12-04).
//!
//! Writers put the tag first (serde serialises it before the fields; `citydb fixtures` writes
//! its lines so), so the reader takes that as the fast path: the first key is `type`,
//! then the rest of the same map is read straight into the variant's struct (`crate::tagged`,
//! shared with `Record`'s reader). Any other order
//! is still accepted, through a buffered path, with the same result and the same refusals
//! (`tests::every_key_order_reads_the_same_command`). Two differences from the derive, both
//! in messages of refused input: an error inside the object reports the line and column where
//! it is rather than the object's end, and a tag that is not a string is "expected a command
//! type" rather than "expected variant identifier".
//!
//! The variants are listed once, in [`commands!`]; the list is checked against the enum by an
//! exhaustive match, so a new command is a new name there, or no build.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::command::Command;

/// The tag's key (`#[serde(tag = "type")]` on `Command`'s `Serialize`).
const TAG: &str = "type";

/// The command types and, from them, the variant reader and the check that every variant is
/// listed.
macro_rules! commands {
    ($($name:ident),* $(,)?) => {
        /// Every command type, in the enum's order (the names an unknown type's error lists).
        const COMMAND_TYPES: &[&str] = &[$(stringify!($name)),*];

        /// The rest of the object, read as the variant `tag` names.
        fn variant<'de, D: Deserializer<'de>>(tag: &str, rest: D) -> Result<Command, D::Error> {
            match tag {
                $(stringify!($name) => Ok(Command::$name(Deserialize::deserialize(rest)?)),)*
                other => Err(de::Error::unknown_variant(other, COMMAND_TYPES)),
            }
        }

        /// Not called: it fails to build when a variant of `Command` is missing above.
        #[allow(dead_code)]
        fn every_variant_is_listed(command: &Command) {
            match command {
                $(Command::$name(_) => {})*
            }
        }
    };
}

commands!(
    RegisterCitizen,
    ChangeCitizenName,
    ChangeResidence,
    RegisterMarriage,
    RegisterDivorce,
    SetParents,
    IssueIdentityCard,
    RecordDeath,
    MergeCitizens,
    RegisterBusiness,
    RenameBusiness,
    MoveHeadOffice,
    ChangeLegalRepresentatives,
    ChangeCharterCapital,
    ChangeBusinessLines,
    SuspendBusiness,
    ResumeBusiness,
    DissolveBusiness,
    RegisterBranch,
    RegisterParcel,
    TransferRights,
    ChangeLandUse,
    IssueCertificate,
    RevokeCertificate,
    RegisterMortgage,
    ReleaseMortgage,
    SplitParcel,
    MergeParcels,
    RetireParcel,
    CorrectRecord,
    ProposeCorrection,
    ApproveCorrection,
    RejectCorrection,
    WithdrawCorrection,
    ProposeRedaction,
    ApproveRedaction,
    RejectRedaction,
    RestrictRecord,
    LiftRestriction,
);

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(CommandVisitor)
    }
}

struct CommandVisitor;

impl<'de> Visitor<'de> for CommandVisitor {
    type Value = Command;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("internally tagged enum Command")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Command, A::Error> {
        crate::tagged::visit(
            map,
            TAG,
            |tag: CommandType<'de>, rest| variant(&tag.0, rest),
            |tag: CommandType<'de>, rest| variant(&tag.0, rest),
        )
    }
}

/// The tag's value, borrowed from the input when it can be.
struct CommandType<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for CommandType<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TypeVisitor;
        impl<'de> Visitor<'de> for TypeVisitor {
            type Value = CommandType<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a command type")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CommandType(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CommandType(v.to_owned().into()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CommandType(v.into()))
            }
        }
        deserializer.deserialize_str(TypeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    /// serde's own reading of the same format, for comparison.
    #[derive(Deserialize)]
    #[serde(tag = "type")]
    enum Derived {
        RegisterCitizen(crate::citizen::commands::RegisterCitizen),
        ChangeResidence(crate::citizen::commands::ChangeResidence),
        RegisterBusiness(crate::business::commands::RegisterBusiness),
        RegisterParcel(crate::parcel::commands::RegisterParcel),
        CorrectRecord(crate::command::CorrectRecord),
    }

    impl From<Derived> for Command {
        fn from(d: Derived) -> Command {
            match d {
                Derived::RegisterCitizen(c) => Command::RegisterCitizen(c),
                Derived::ChangeResidence(c) => Command::ChangeResidence(c),
                Derived::RegisterBusiness(c) => Command::RegisterBusiness(c),
                Derived::RegisterParcel(c) => Command::RegisterParcel(c),
                Derived::CorrectRecord(c) => Command::CorrectRecord(c),
            }
        }
    }

    /// Commands as `citydb fixtures` writes them (seed 2025), with nested tagged values
    /// (origin, holders, a correction's changes). Every command type the fixtures write is
    /// read both ways in `tests/import_lines.rs`.
    const COMMANDS: [&str; 5] = [
        r#"{"type":"RegisterCitizen","citizen":"22ed2420-9431-8001-b0a7-b5aa9efd24c5","pin":"030050130152","name":{"family":"Trần","middle":"Văn","given":"Lộc"},"sex":"male","birth_date":"1950-11-19","birth_place":"11167","father":null,"mother":null,"origin":{"kind":"initial_load","source":"CSDLQG về dân cư"}}"#,
        r#"{"type":"ChangeResidence","citizen":"22ed2420-9431-8001-b0a7-b5aa9efd24c5","kind":"permanent","commune":"11167","address":"Số nhà 102, thôn Quỳnh Hoàng","since":"1994-06-24"}"#,
        r#"{"type":"RegisterBusiness","business":"22ed2420-9431-8002-9bb8-cce1ffd9f88f","code":"0203723371","names":{"vietnamese":"Ngân hàng TMCP Hàng Hải Việt Nam","english":"Vietnam Maritime Commercial Joint Stock Bank","abbreviated":"MSB"},"head_office":{"commune":"11446","street":"Số 48, tổ dân phố 14, đường Bạch Đằng"},"legal_representatives":["22ed2420-9431-8001-9257-eff2009dc793"],"charter_capital":34900000000000,"business_lines":["6419"],"registration_date":"2006-09-25","origin":{"kind":"initial_load","source":"Hệ thống thông tin quốc gia về đăng ký doanh nghiệp"}}"#,
        r#"{"type":"RegisterParcel","parcel":"22ed2420-9431-8003-b4a3-fc0a59c49b29","key":"10972/10972:1/1","national_parcel_id":null,"area":"723.40","land_use":["ONT","CLN"],"address":"Thôn Tràng Duệ","geometry":null,"holders":[{"holder":{"kind":"citizen","id":"22ed2420-9431-8001-80f0-341830291525"},"share":"1/2"},{"holder":{"kind":"citizen","id":"22ed2420-9431-8001-afa6-679303ccca41"},"share":"1/2"}]}"#,
        r#"{"type":"CorrectRecord","record":"citizen-22ed2420-9431-8001-bd6a-a0f29cd4aa98","changes":[{"field":"birth_place","old":"10909","new":"11629"}],"reason":"Ghi sai nơi đăng ký khai sinh so với sổ hộ tịch","legal_basis":{"document_number":"78/QĐ-UBND","document_date":"2025-06-29"}}"#,
    ];

    fn read(text: &str) -> Result<Command, String> {
        serde_json::from_str::<Command>(text).map_err(|e| e.to_string())
    }

    fn derived(text: &str) -> Result<Command, String> {
        serde_json::from_str::<Derived>(text)
            .map(Command::from)
            .map_err(|e| e.to_string())
    }

    /// The message without its position: the fast path reports where the error is, the
    /// derive the object's end.
    fn message(error: String) -> String {
        match error.find(" at line ") {
            Some(at) => error[..at].to_owned(),
            None => error,
        }
    }

    /// The same object with the tag moved to position `at` among its keys.
    fn tag_at(text: &str, at: usize) -> String {
        let Value::Object(object) = serde_json::from_str::<Value>(text).unwrap() else {
            panic!("an object");
        };
        let mut entries: Vec<(String, Value)> = object.into_iter().collect();
        let tag = entries.iter().position(|(k, _)| k == TAG).unwrap();
        let tag = entries.remove(tag);
        entries.insert(at.min(entries.len()), tag);
        let body: Vec<String> = entries
            .iter()
            .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v))
            .collect();
        format!("{{{}}}", body.join(","))
    }

    #[test]
    fn the_fast_path_reads_what_the_derive_reads() {
        for text in COMMANDS {
            let command = read(text).unwrap();
            assert_eq!(command, derived(text).unwrap(), "{text}");
            // What the reader reads, the writer wrote: the same text back.
            assert_eq!(serde_json::to_string(&command).unwrap(), text);
        }
    }

    #[test]
    fn every_key_order_reads_the_same_command() {
        for text in COMMANDS {
            let keys = serde_json::from_str::<Map<String, Value>>(text)
                .unwrap()
                .len();
            for at in 0..keys {
                let moved = tag_at(text, at);
                assert_eq!(read(&moved), derived(&moved), "{moved}");
            }
            // And from a `Value`, as the API and the tests build commands.
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                serde_json::from_value::<Command>(value).unwrap(),
                read(text).unwrap()
            );
        }
    }

    #[test]
    fn refusals_are_the_derives_in_every_key_order() {
        let bad = [
            // An unknown field, a misspelt one, a wrong type, a missing field, no type at
            // all, an invalid PIN, a nested unknown field. (An unknown type: below, the derive
            // here lists only its five.)
            COMMANDS[1].replace(r#""since""#, r#""sinse""#),
            COMMANDS[1].replace(r#""kind":"permanent""#, r#""kind":"forever""#),
            COMMANDS[0].replace(r#""birth_date":"1950-11-19""#, r#""birth_date":19501119"#),
            COMMANDS[0].replace(r#""sex":"male","#, ""),
            COMMANDS[0].replace(r#""type":"RegisterCitizen","#, ""),
            COMMANDS[0].replace("030050130152", "03005013015X"),
            COMMANDS[3].replace(r#""share":"1/2"}"#, r#""share":"1/2","extra":1}"#),
        ];
        for text in &bad {
            let keys = serde_json::from_str::<Map<String, Value>>(text)
                .unwrap()
                .len();
            for at in 0..keys {
                let moved = if text.contains(r#""type""#) {
                    tag_at(text, at)
                } else {
                    text.clone()
                };
                let (ours, theirs) = (read(&moved), derived(&moved));
                assert!(ours.is_err(), "accepted {moved}");
                assert_eq!(
                    message(ours.unwrap_err()),
                    message(theirs.unwrap_err()),
                    "{moved}"
                );
            }
        }
    }

    #[test]
    fn an_unknown_type_lists_every_command_type() {
        let error = read(&COMMANDS[0].replace("RegisterCitizen", "Nope")).unwrap_err();
        assert!(error.starts_with("unknown variant `Nope`, expected one of `RegisterCitizen`"));
        assert!(error.contains("`LiftRestriction`"), "{error}");
        assert_eq!(COMMAND_TYPES.len(), 39);
    }
}
