//! The handler protocol (reads, NotLoaded), stream ids, serde, and evolve's refusals.

use super::*;

#[test]
fn missing_streams_are_reported_not_guessed() {
    let cmd = Command::RegisterCitizen(register_citizen(1, Sex::Male, 1990));
    let err = decide(&Snapshot::new(), &cmd, &steward()).unwrap_err();
    assert_eq!(err, DomainError::NotLoaded(Target::Record(cid(1).into())));
    assert_eq!(err.code(), "NOT_LOADED");
    let only_record = Snapshot::new().with_record(cid(1).into(), None);
    let err = decide(&only_record, &cmd, &steward()).unwrap_err();
    assert!(matches!(
        err,
        DomainError::NotLoaded(Target::Key(NaturalKey::Pin(_)))
    ));
    let loaded = only_record.with_key(
        NaturalKey::Pin(pin(1, Sex::Male, 1990)),
        KeyClaim::default(),
    );
    assert!(decide(&loaded, &cmd, &steward()).is_ok());
}

#[test]
fn reads_name_targets_references_and_keys() {
    let code = enterprise(1);
    let cmd = Command::RegisterBusiness(register_business(1, code, vec![cid(1), cid(2)]));
    let reads = cmd.reads();
    assert_eq!(reads.records.len(), 3);
    assert!(reads.records.contains(&bid(1).into()));
    assert!(reads.keys.contains(&NaturalKey::Enterprise(code)));
    let split = Command::SplitParcel(SplitParcel {
        source: pid(1),
        parts: vec![
            NewParcel {
                parcel: pid(2),
                key: pkey(1, 2),
                area: Area::from_hundredths(1),
            },
            NewParcel {
                parcel: pid(3),
                key: pkey(1, 3),
                area: Area::from_hundredths(1),
            },
        ],
        date: date("2025-01-01"),
    });
    assert_eq!(split.reads().records.len(), 3);
    assert_eq!(split.reads().keys.len(), 2);
    let propose = Command::ProposeCorrection(ProposeCorrection {
        record: cid(1).into(),
        correction: corr(1),
        changes: vec![fc("pin", json!("031199000001"), json!("031199000002"))],
        reason: String::new(),
        legal_basis: basis(),
    });
    assert_eq!(propose.reads().keys.len(), 2);
}

#[test]
fn target_stream_ids() {
    let key = NaturalKey::Pin("035199000123".parse().unwrap());
    assert_eq!(
        Target::Record(cid(1).into()).stream_id(),
        format!("citizen-{}", cid(1))
    );
    assert_eq!(
        Target::Record(bid(1).into()).stream_id(),
        format!("business-{}", bid(1))
    );
    assert_eq!(
        Target::Record(pid(1).into()).stream_id(),
        format!("parcel-{}", pid(1))
    );
    assert_eq!(
        Target::Key(key).stream_id(),
        format!("key-{}", key.key_id())
    );
}

#[test]
fn commands_read_as_ndjson() {
    let line = r#"{"type":"RegisterCitizen","citizen":"00000000-0000-0000-0000-00000000c001","pin":"035199000123","name":{"family":"Trần","middle":"Thị","given":"Hoà"},"sex":"female","birth_date":"1999-07-21","birth_place":"11311","origin":{"kind":"initial_load","source":"CSDLQG về dân cư"}}"#;
    let cmd: Command = serde_json::from_str(line).unwrap();
    assert_eq!(cmd.command_type(), "RegisterCitizen");
    let back: Command = serde_json::from_value(serde_json::to_value(&cmd).unwrap()).unwrap();
    assert_eq!(back, cmd);
    assert_eq!(
        serde_json::to_value(&cmd).unwrap()["type"],
        "RegisterCitizen"
    );
    let bad = line.replace("035199000123", "035099000123");
    let cmd: Command = serde_json::from_str(&bad).unwrap();
    // Parses (the PIN is well-formed) but decide refuses: 0 = male 1900s.
    let snapshot = Snapshot::new().with_record(cid(1).into(), None).with_key(
        NaturalKey::Pin("035099000123".parse().unwrap()),
        KeyClaim::default(),
    );
    assert_eq!(
        decide(&snapshot, &cmd, &steward()).unwrap_err().code(),
        "PIN_MISMATCH"
    );
    assert!(
        serde_json::from_str::<Command>(&line.replace("035199000123", "003199000123")).is_err()
    );
}

#[test]
fn evolve_rejects_streams_decide_cannot_produce() {
    let death = Event::CitizenDeceased {
        date: "2020".parse().unwrap(),
    };
    assert_eq!(
        evolve(None, &death),
        Err(EvolveError::NotARegistration("CitizenDeceased"))
    );
    let mut w = World::default();
    let a = add_citizen(&mut w, 1, Sex::Male, 1990);
    let state = Some(w.record(a));
    let key = NaturalKey::Pin(pin(1, Sex::Male, 1990));
    assert!(matches!(
        evolve(
            state.clone(),
            &Event::KeyClaimed {
                key,
                record: a.into()
            }
        ),
        Err(EvolveError::WrongStream { .. })
    ));
    assert!(matches!(
        evolve(
            state.clone(),
            &Event::BusinessResumed {
                on: date("2020-01-01")
            }
        ),
        Err(EvolveError::WrongStream { .. })
    ));
    let first = w.events(Target::Record(a.into()))[0].clone();
    assert!(matches!(
        evolve(state, &first),
        Err(EvolveError::AlreadyRegistered(_))
    ));
}
