//! Hostile and mistaken input: codes in no reference list, free text over its
//! maximum, unknown keys, and what a refused correction may say.

use super::*;

fn refusal(w: &mut World, command: Command) -> DomainError {
    match w.run(&command, &steward()) {
        Err(e) => e,
        Ok(d) => panic!("{} accepted: {d:?}", command.command_type()),
    }
}

#[test]
fn commune_codes_in_no_list_are_refused_on_every_command() {
    let mut w = World::default();
    let a = add_citizen(&mut w, 1, Sex::Male, 1980);

    // A new fact needs a current unit; 99999 is in no list at all.
    let e = refusal(&mut w, residence(a, "99999", "Số 8", "2026-11-20"));
    assert_eq!(e.code(), "UNKNOWN_CODE");
    assert!(e.to_string().contains("hai_phong_units_2025"), "{e}");
    // 10508 lies in the former provinces' block but is no current unit.
    w.refused(residence(a, "10508", "Số 8", "2026-11-20"), "UNKNOWN_CODE");
    // ...which a historical fact may carry, with a warning.
    let d = w.ok(residence(a, "10508", "Số 8", "2010-03-01"));
    assert_eq!(
        d.warnings,
        vec![DomainWarning::UnverifiedPredecessorCommune {
            code: unit("10508")
        }]
    );
    // Not even a historical fact may carry a code outside every list.
    w.refused(residence(a, "99999", "Số 8", "2010-03-01"), "UNKNOWN_CODE");

    let mut born = register_citizen(2, Sex::Female, 1990);
    born.birth_place = unit("99999");
    w.refused(Command::RegisterCitizen(born), "UNKNOWN_CODE");

    let mut business = register_business(1, enterprise(1), vec![a]);
    business.head_office.commune = unit("99999");
    w.refused(Command::RegisterBusiness(business), "UNKNOWN_CODE");
    w.ok(Command::RegisterBusiness(register_business(
        1,
        enterprise(1),
        vec![a],
    )));
    w.refused(
        Command::MoveHeadOffice(MoveHeadOffice {
            business: bid(1),
            head_office: Address {
                commune: unit("99999"),
                street: "1 Lạch Tray".to_owned(),
            },
            date: date("2026-01-05"),
        }),
        "UNKNOWN_CODE",
    );

    // Corrections are held to the same lists.
    let correct = |field: &str, old: Value, new: Value| {
        Command::CorrectRecord(CorrectRecord {
            record: a.into(),
            changes: vec![fc(field, old, new)],
            reason: "nhập sai".to_owned(),
            legal_basis: basis(),
        })
    };
    w.refused(
        correct("birth_place", json!("11311"), json!("99999")),
        "UNKNOWN_CODE",
    );
    // A PIN correction to a number in no list: the same code as on registration.
    let own_pin = w.citizen(a).pin.to_string();
    let e = refusal(
        &mut w,
        Command::ProposeCorrection(ProposeCorrection {
            record: a.into(),
            correction: corr(1),
            changes: vec![fc("pin", json!(own_pin), json!("097080000001"))],
            reason: "sai".to_owned(),
            legal_basis: basis(),
        }),
    );
    assert_eq!(
        e,
        DomainError::UnknownCode(UnknownCode::new(ReferenceList::ProvinceCodes, "097"))
    );
    let current = serde_json::to_value(w.citizen(a).permanent_residence).unwrap();
    w.refused(
        correct(
            "permanent_residence",
            current,
            json!({"commune": "99999", "address": "Số 8", "since": "2026-01-01"}),
        ),
        "UNKNOWN_CODE",
    );
}

#[test]
fn pin_provinces_countries_and_land_use_codes_name_their_list() {
    let registration = |pin: &str| {
        json!({"type": "RegisterCitizen", "citizen": Uuid::from_u128(7), "pin": pin,
               "name": {"family": "Lê", "given": "Na"}, "sex": "female",
               "birth_date": "1999", "birth_place": "11311",
               "origin": {"kind": "registration"}})
    };
    // Hải Dương (030) and Hà Nội (001) births are valid Hải Phòng residents.
    for ok in ["030199000123", "001199000123", "704199000123"] {
        assert!(
            serde_json::from_value::<Command>(registration(ok)).is_ok(),
            "{ok}"
        );
    }
    for (pin, list) in [
        ("097199000123", ReferenceList::ProvinceCodes),
        ("999199000123", ReferenceList::CountryCodes),
    ] {
        let e = serde_json::from_value::<Command>(registration(pin)).unwrap_err();
        let unknown = UnknownCode::find_in(&e.to_string()).expect("an unknown code");
        assert_eq!(unknown.list, list, "{pin}");
        assert_eq!(unknown.code, &pin[..3]);
    }
    let e = "XYZ".parse::<LandUseCode>().unwrap_err();
    let text = format!("RegisterParcelInput: {e}");
    assert_eq!(
        UnknownCode::find_in(&text).map(|u| u.list),
        Some(ReferenceList::LandUseCodes)
    );
}

#[test]
fn free_text_over_its_maximum_is_refused_before_anything_is_decided() {
    let mut w = World::default();
    let a = add_citizen(&mut w, 1, Sex::Male, 1980);
    let b = add_citizen(&mut w, 2, Sex::Male, 1980);
    let max = text::max_chars("address");
    assert_eq!(max, 500);
    // Exactly at the limit is fine, counted in characters, not bytes.
    w.ok(residence(a, "11311", &"ư".repeat(max), "2026-01-01"));
    let e = refusal(
        &mut w,
        residence(a, "11311", &"ư".repeat(max + 1), "2026-02-01"),
    );
    assert_eq!(
        e,
        DomainError::TextTooLong {
            field: "address".to_owned(),
            max,
            length: max + 1
        }
    );
    assert!(e.to_string().contains("500"), "{e}");

    // A correction's new value takes the maximum of the field it corrects.
    let propose = Command::ProposeCorrection(ProposeCorrection {
        record: a.into(),
        correction: corr(1),
        changes: vec![fc("name.given", json!("Hòa 1"), json!("A".repeat(101)))],
        reason: "sai tên".to_owned(),
        legal_basis: basis(),
    });
    let e = refusal(&mut w, propose);
    assert_eq!(e.code(), "TEXT_TOO_LONG");
    assert!(
        matches!(&e, DomainError::TextTooLong { field, max: 100, .. } if field == "changes[0].new"),
        "{e:?}"
    );
    let merging = Command::MergeCitizens(MergeCitizens {
        survivor: a,
        duplicate: b,
        reason: "x".repeat(200_000),
        legal_basis: basis(),
    });
    let e = refusal(&mut w, merging);
    assert!(
        matches!(&e, DomainError::TextTooLong { field, max: 2000, .. } if field == "reason"),
        "{e:?}"
    );
    // Any string under a key without its own limit still has the default one.
    assert_eq!(text::max_chars("anything_else"), text::DEFAULT_MAX_CHARS);
}

#[test]
fn unknown_keys_in_commands_are_refused_not_ignored() {
    let residence = json!({"type": "ChangeResidence", "citizen": Uuid::from_u128(1),
        "kind": "permanent", "commune": "11311", "address": "Số 8", "since": "2026-01-01"});
    assert!(serde_json::from_value::<Command>(residence.clone()).is_ok());
    let mut misspelt = residence.clone();
    misspelt["adress"] = json!("Số 9");
    let e = serde_json::from_value::<Command>(misspelt).unwrap_err();
    assert!(e.to_string().contains("unknown field `adress`"), "{e}");

    // Nested objects too: a name part, a legal basis, a correction.
    let rename = json!({"type": "ChangeCitizenName", "citizen": Uuid::from_u128(1),
        "name": {"family": "Lê", "midle": "Văn", "given": "Na"},
        "legal_basis": {"document_number": "1/QĐ", "document_date": "2025-08-01"}});
    let e = serde_json::from_value::<Command>(rename).unwrap_err();
    assert!(e.to_string().contains("midle"), "{e}");
    let correct = json!({"type": "CorrectRecord", "record": format!("citizen-{}", Uuid::from_u128(1)),
        "changes": [{"field": "birth_place", "old": "11311", "new": "10507", "note": "x"}],
        "reason": "r", "legal_basis": {"document_number": "1/QĐ", "document_date": "2025-08-01"}});
    let e = serde_json::from_value::<Command>(correct).unwrap_err();
    assert!(e.to_string().contains("note"), "{e}");
}

#[test]
fn a_wrong_old_value_names_the_field_and_never_the_current_value() {
    let mut w = World::default();
    let a = add_citizen(&mut w, 1, Sex::Male, 1980);
    let record = w.citizen(a);
    let current_pin = record.pin.to_string();
    let current_birth = record.birth_date.to_string();
    for (field, wrong, new) in [
        ("pin", json!("000000000000"), json!("031080000099")),
        ("pin", json!("031080999999"), json!("031080000099")),
        ("birth_date", json!("1900"), json!("1981")),
        // A new PIN that disagrees with the record: say what the PIN encodes, not the record.
        ("pin", json!(current_pin.clone()), json!("031199000099")),
        ("pin", json!(current_pin.clone()), json!("031081000099")),
    ] {
        let e = refusal(
            &mut w,
            Command::ProposeCorrection(ProposeCorrection {
                record: a.into(),
                correction: corr(1),
                changes: vec![fc(field, wrong, new)],
                reason: "sai".to_owned(),
                legal_basis: basis(),
            }),
        );
        let text = e.to_string();
        if e.code() == "PIN_MISMATCH" {
            assert!(!text.contains("1980") && !text.contains("Male"), "{text}");
        } else {
            assert_eq!(e.code(), "CORRECTION_CONFLICT");
            assert!(
                text.contains(field) && text.contains("does not match"),
                "{text}"
            );
        }
        assert!(!text.contains("meanwhile"), "{text}");
        assert!(!text.contains(&current_pin), "{text}");
        assert!(!text.contains(&current_birth), "{text}");
        let json = serde_json::to_string(&e).unwrap();
        assert!(
            !json.contains(&current_pin) && !json.contains(&current_birth),
            "{json}"
        );
    }
}
