//! Structure-aware fuzzing of every parser of untrusted text in the domain: PINs, enterprise
//! codes, parcel keys, commune codes, land-use codes, record ids, natural keys, names, dates,
//! shares, areas, certificate serials, VSIC codes, and whole commands as JSON.
//!
//! Properties: no input panics; whatever parses prints to a canonical form that parses back to
//! the same value (parse ∘ print = id) and prints the same again. Inputs are generated near
//! the valid forms (digits, separators, prefixes, Vietnamese letters, near-miss lengths) as
//! well as at random, so the interesting branches are reached, and their size is bounded.
//!
//! CI runs proptest's default number of cases. For a longer run outside CI:
//! `PROPTEST_CASES=200000 cargo test --release -p citydb-domain --test parsers_fuzz`.

use std::fmt::Display;
use std::str::FromStr;

use citydb_domain::*;
use proptest::prelude::*;
use serde_json::{Value, json};

/// parse(s) never panics; on success print∘parse is the identity and printing is stable.
fn round_trips<T>(s: &str) -> Result<(), TestCaseError>
where
    T: FromStr + Display + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = s.parse::<T>() {
        let printed = value.to_string();
        let again = printed.parse::<T>();
        prop_assert!(again.is_ok(), "{s:?} parsed, its print {printed:?} did not");
        if let Ok(again) = again {
            prop_assert_eq!(&again, &value);
            prop_assert_eq!(again.to_string(), printed);
        }
    }
    Ok(())
}

/// Text near the identifiers' alphabet: digits, separators, letters, whitespace, look-alikes.
fn near_identifier() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        "[0-9]{1,13}",
        Just("/".to_owned()),
        Just(":".to_owned()),
        Just("-".to_owned()),
        Just(" ".to_owned()),
        Just("\t".to_owned()),
        Just("0".to_owned()),
        Just("-000".to_owned()),
        Just("citizen-".to_owned()),
        Just("business-".to_owned()),
        Just("parcel-".to_owned()),
        Just("pin:".to_owned()),
        Just("enterprise:".to_owned()),
        Just("parcel:".to_owned()),
        "[A-Za-z]{1,3}",
        Just("٣".to_owned()),
        Just("１".to_owned()),
        Just("ư".to_owned()),
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    ];
    prop::collection::vec(pieces, 0..8).prop_map(|v| v.concat())
}

/// Any text at all, bounded.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![near_identifier(), "\\PC{0,40}", ".{0,40}"]
}

fn province_or_country() -> impl Strategy<Value = u16> {
    prop_oneof![
        prop::sample::select(PROVINCE_CODES.iter().map(|(c, _)| *c).collect::<Vec<_>>()),
        prop::sample::select(COUNTRY_CODES.to_vec()),
        0u16..1000,
    ]
}

proptest! {
    #[test]
    fn identifiers_never_panic_and_round_trip(s in any_text()) {
        round_trips::<PersonalIdNumber>(&s)?;
        round_trips::<EnterpriseCode>(&s)?;
        round_trips::<ParcelKey>(&s)?;
        round_trips::<AdminUnitCode>(&s)?;
        round_trips::<LandUseCode>(&s)?;
        round_trips::<RecordId>(&s)?;
        round_trips::<NaturalKey>(&s)?;
        round_trips::<CertificateSerial>(&s)?;
        round_trips::<VsicCode>(&s)?;
        round_trips::<Date>(&s)?;
        round_trips::<PartialDate>(&s)?;
        round_trips::<Share>(&s)?;
        round_trips::<Area>(&s)?;
        let _ = EnterpriseCode::parse_strict(&s);
        if let Ok((code, _)) = EnterpriseCode::parse_legacy(&s) {
            prop_assert_eq!(EnterpriseCode::parse_legacy(&code.to_string()).map(|(c, _)| c), Ok(code));
        }
    }

    /// Every 12-digit number parses exactly when its first three digits are in a list, and
    /// then answers the structure's questions without panicking.
    #[test]
    fn pins_parse_iff_their_province_or_country_is_listed(
        code in province_or_country(),
        g in 0u8..10,
        rest in 0u32..100_000_000,
    ) {
        let s = format!("{code:03}{g}{rest:08}");
        let listed = if code < 100 {
            province_name(code).is_some()
        } else {
            is_country_code(code)
        };
        match s.parse::<PersonalIdNumber>() {
            Ok(pin) => {
                prop_assert!(listed, "{s} parsed");
                prop_assert_eq!(pin.to_string(), s);
                prop_assert_eq!(pin.province_code(), code);
                let (century, _) = pin.century_and_sex();
                prop_assert!((1900..=2300).contains(&century));
                let _ = pin.check_against(Sex::Female, 1999);
            }
            Err(e) => {
                prop_assert!(!listed, "{s}: {e}");
                let unknown = e.unknown_code().cloned();
                prop_assert_eq!(unknown.clone().map(|u| u.code), Some(format!("{code:03}")));
                // The API recovers the list from the message alone.
                prop_assert_eq!(UnknownCode::find_in(&e.to_string()), unknown);
            }
        }
    }

    #[test]
    fn parcel_keys_round_trip_and_keep_their_parts(
        commune in 0u32..100_000,
        predecessor in 0u32..100_000,
        sheet in 0u32..5_000,
        number in 0u32..100_000,
    ) {
        let s = format!("{commune:05}/{predecessor:05}:{sheet}/{number}");
        match s.parse::<ParcelKey>() {
            Ok(key) => {
                prop_assert!(sheet > 0 && number > 0);
                prop_assert_eq!(key.to_string(), s);
                prop_assert_eq!(key.map_sheet(), sheet);
                prop_assert_eq!(key.parcel_number(), number);
                let natural = NaturalKey::Parcel(key);
                prop_assert_eq!(natural.to_string().parse::<NaturalKey>(), Ok(natural));
            }
            Err(_) => prop_assert!(sheet == 0 || number == 0),
        }
    }

    #[test]
    fn enterprise_codes_with_branch_suffixes_round_trip(nine in 0u64..1_000_000_000, branch in 0u16..1000) {
        let digits: Vec<u8> = format!("{nine:09}").bytes().map(|b| b - b'0').collect();
        let Ok(nine_digits) = <[u8; 9]>::try_from(digits) else { return Ok(()) };
        if let CheckDigit::Digit(d) = check_digit(&nine_digits) {
            let main = format!("{nine:09}{d}");
            round_trips::<EnterpriseCode>(&main)?;
            round_trips::<EnterpriseCode>(&format!("{main}-{branch:03}"))?;
        }
    }

    #[test]
    fn names_are_normalised_idempotently(
        family in "[\\p{L} ]{0,30}",
        middle in "[\\p{L} \\p{M}]{0,30}",
        given in "[\\p{L}\\p{M}]{0,30}",
    ) {
        if let Ok(name) = PersonName::new(&family, &middle, &given) {
            let again = PersonName::new(name.family(), name.middle(), name.given());
            prop_assert_eq!(again.as_ref(), Ok(&name));
            let json = serde_json::to_value(&name).unwrap_or(Value::Null);
            prop_assert_eq!(serde_json::from_value::<PersonName>(json).ok(), Some(name.clone()));
            prop_assert_eq!(exact_key(&exact_key(&name.full())), exact_key(&name.full()));
            prop_assert_eq!(search_key(&search_key(&name.full())), search_key(&name.full()));
        }
    }
}

// --- whole commands ----------------------------------------------------------------------------

/// A JSON value built from the commands' own vocabulary: real keys and type tags, values that
/// are valid or nearly valid, nested a little.
fn command_json() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "type",
        "citizen",
        "pin",
        "name",
        "family",
        "middle",
        "given",
        "sex",
        "birth_date",
        "birth_place",
        "origin",
        "kind",
        "source",
        "commune",
        "address",
        "since",
        "legal_basis",
        "document_number",
        "document_date",
        "record",
        "correction",
        "changes",
        "field",
        "old",
        "new",
        "reason",
        "parcel",
        "key",
        "area",
        "land_use",
        "holders",
        "holder",
        "share",
        "id",
        "adress",
        "business",
        "code",
        "names",
        "vietnamese",
        "head_office",
        "street",
    ]);
    let scalar = prop_oneof![
        any_text().prop_map(Value::from),
        prop::sample::select(vec![
            "RegisterCitizen",
            "ChangeResidence",
            "ChangeCitizenName",
            "CorrectRecord",
            "ProposeCorrection",
            "RegisterParcel",
            "permanent",
            "female",
            "registration",
            "031199000001",
            "11311",
            "99999",
            "2026-01-01",
            "1999",
            "ODT",
            "1/2",
            "125.50",
            "00000000-0000-7000-8000-000000000001",
            "citizen-00000000-0000-7000-8000-000000000001",
        ])
        .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
    ];
    scalar.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(keys.clone(), inner, 0..8).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

fn actor() -> Actor {
    Actor {
        id: "steward-fuzz".to_owned(),
        role: StewardRole::Steward,
    }
}

proptest! {
    /// Any JSON either is refused by serde or is a command that serialises back to itself and
    /// that `decide` answers (with a refusal, on an empty snapshot) without panicking.
    #[test]
    fn commands_from_any_json_never_panic(mut value in command_json(), tag in prop::sample::select(vec![
        "RegisterCitizen", "ChangeResidence", "ChangeCitizenName", "CorrectRecord", "RegisterParcel",
    ])) {
        if let Value::Object(map) = &mut value {
            map.entry("type").or_insert(json!(tag));
        }
        if let Ok(command) = serde_json::from_value::<Command>(value) {
            let printed = serde_json::to_value(&command);
            prop_assert!(printed.is_ok());
            if let Ok(printed) = printed {
                prop_assert_eq!(serde_json::from_value::<Command>(printed).ok(), Some(command.clone()));
            }
            let _ = command.reads();
            prop_assert!(decide(&Snapshot::new(), &command, &actor()).is_err());
        }
    }
}

/// Valid commands, one per shape the fuzzer mutates.
fn valid_commands() -> Vec<Value> {
    let citizen = "00000000-0000-7000-8000-000000000001";
    let basis = json!({ "document_number": "12/QĐ-UBND", "document_date": "2025-08-01" });
    vec![
        json!({ "type": "RegisterCitizen", "citizen": citizen, "pin": "031199000001",
                "name": { "family": "Nguyễn", "middle": "Thị", "given": "Hoà" }, "sex": "female",
                "birth_date": "1999-07-21", "birth_place": "11311", "origin": { "kind": "registration" } }),
        json!({ "type": "ChangeResidence", "citizen": citizen, "kind": "temporary",
                "commune": "10507", "address": "Số 8 phố Minh Khai", "since": "2026-01-01" }),
        json!({ "type": "ChangeCitizenName", "citizen": citizen,
                "name": { "family": "Lê", "given": "Na" }, "legal_basis": basis }),
        json!({ "type": "ProposeCorrection", "record": format!("citizen-{citizen}"),
                "correction": citizen, "reason": "sai", "legal_basis": basis,
                "changes": [{ "field": "birth_date", "old": "1999", "new": "1999-07-21" }] }),
        json!({ "type": "RegisterParcel", "parcel": citizen, "key": "11311/10507:12/345",
                "area": "125.50", "land_use": ["ODT"], "address": "Thửa 345",
                "holders": [{ "holder": { "kind": "citizen", "id": citizen }, "share": "1/1" }] }),
    ]
}

/// One edit of a valid command: none, a value replaced, a key removed, an unknown key added.
#[derive(Debug, Clone)]
enum Edit {
    Keep,
    Replace(usize, Value),
    Remove(usize),
    Add(String, Value),
}

fn edited_command() -> impl Strategy<Value = (usize, Edit)> {
    let scalar = prop_oneof![
        any_text().prop_map(Value::from),
        prop::sample::select(vec![
            "99999",
            "097199000001",
            "999199000001",
            "XYZ",
            "0/1",
            "-1"
        ])
        .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!({})),
        Just(json!([])),
    ];
    let edit = prop_oneof![
        Just(Edit::Keep),
        (0usize..12, scalar.clone()).prop_map(|(i, v)| Edit::Replace(i, v)),
        (0usize..12).prop_map(Edit::Remove),
        ("x_[a-z_]{1,10}", scalar).prop_map(|(k, v)| Edit::Add(k, v)),
    ];
    (0..valid_commands().len(), edit)
}

proptest! {
    /// Near-valid commands: the unedited ones parse; every edit is refused by serde or gives a
    /// command that round-trips and that `decide` answers without panicking.
    #[test]
    fn edited_valid_commands_never_panic((base, edit) in edited_command()) {
        let mut value = valid_commands().swap_remove(base);
        let keys: Vec<String> = value.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        let kept = matches!(edit, Edit::Keep);
        if let Some(map) = value.as_object_mut() {
            match edit {
                Edit::Keep => {}
                Edit::Replace(i, v) => {
                    if let Some(k) = keys.get(i % keys.len().max(1)) {
                        map.insert(k.clone(), v);
                    }
                }
                Edit::Remove(i) => {
                    if let Some(k) = keys.get(i % keys.len().max(1)) {
                        map.remove(k);
                    }
                }
                Edit::Add(k, v) => {
                    let unknown = !map.contains_key(&k);
                    map.insert(k, v);
                    // An unknown key (no command has an `x_` field) is refused, never ignored.
                    if unknown {
                        prop_assert!(serde_json::from_value::<Command>(value.clone()).is_err());
                    }
                }
            }
        }
        let parsed = serde_json::from_value::<Command>(value);
        if kept {
            prop_assert!(parsed.is_ok(), "a valid command was refused: {:?}", parsed.err());
        }
        if let Ok(command) = parsed {
            let printed = serde_json::to_value(&command).ok();
            prop_assert_eq!(printed.and_then(|p| serde_json::from_value::<Command>(p).ok()), Some(command.clone()));
            prop_assert!(decide(&Snapshot::new(), &command, &actor()).is_err());
        }
    }
}
