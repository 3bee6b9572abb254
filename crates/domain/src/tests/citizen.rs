//! Citizen register scenarios: registration, marriage, death, residence, names, merges.

use super::*;

#[test]
fn registering_a_citizen_claims_the_pin() {
    let mut w = World::default();
    let cmd = register_citizen(1, Sex::Female, 1999);
    let d = w.ok(Command::RegisterCitizen(cmd.clone()));
    let key = NaturalKey::Pin(cmd.pin);
    assert_eq!(d.changes.len(), 2);
    assert_eq!(
        d.events_for(&Target::Key(key)),
        &[Event::KeyClaimed {
            key,
            record: cid(1).into()
        }]
    );
    assert_eq!(w.key(key).holder, Some(cid(1).into()));
    let c = w.citizen(cid(1));
    assert_eq!(c.name.given(), "Hòa 1");
    assert_eq!(c.life, LifeStatus::Alive);

    // Same PIN under a new id, and the same id again.
    w.refused(
        Command::RegisterCitizen(RegisterCitizen {
            citizen: cid(2),
            ..cmd.clone()
        }),
        "DUPLICATE_KEY",
    );
    w.refused(
        Command::RegisterCitizen(RegisterCitizen {
            pin: pin(77, Sex::Female, 1999),
            ..cmd.clone()
        }),
        "RECORD_EXISTS",
    );
}

#[test]
fn registration_checks_pin_and_parents() {
    let mut w = World::default();
    let mut male = register_citizen(1, Sex::Female, 1999);
    male.sex = Sex::Male;
    w.refused(Command::RegisterCitizen(male), "PIN_MISMATCH");
    let mut year = register_citizen(1, Sex::Female, 1999);
    year.birth_date = "1998-02-03".parse().unwrap();
    w.refused(Command::RegisterCitizen(year), "PIN_MISMATCH");

    let mother = add_citizen(&mut w, 2, Sex::Female, 1970);
    let mut child = register_citizen(3, Sex::Male, 2001);
    child.father = Some(cid(99));
    w.refused(Command::RegisterCitizen(child.clone()), "RECORD_NOT_FOUND");
    child.father = Some(cid(3));
    w.refused(Command::RegisterCitizen(child.clone()), "SAME_CITIZEN");
    child.father = Some(mother);
    child.mother = Some(mother);
    w.refused(Command::RegisterCitizen(child.clone()), "DUPLICATE_ENTRY");
    child.father = None;
    w.ok(Command::RegisterCitizen(child));
    assert_eq!(w.citizen(cid(3)).mother, Some(mother));

    let mut load = register_citizen(4, Sex::Male, 1950);
    load.origin = RegistrationOrigin::InitialLoad {
        source: " ".to_owned(),
    };
    w.refused(Command::RegisterCitizen(load), "MISSING_VALUE");
}

#[test]
fn marriage_links_both_records_and_divorce_unlinks() {
    let mut w = World::default();
    let a = add_citizen(&mut w, 1, Sex::Female, 1990);
    let b = add_citizen(&mut w, 2, Sex::Male, 1988);
    let c = add_citizen(&mut w, 3, Sex::Male, 1985);
    let marry = |x, y| {
        Command::RegisterMarriage(RegisterMarriage {
            citizen: x,
            spouse: y,
            date: date("2015-06-01"),
        })
    };
    w.refused(marry(a, a), "SAME_CITIZEN");
    w.refused(marry(a, cid(42)), "RECORD_NOT_FOUND");
    let d = w.ok(marry(a, b));
    assert_eq!(d.changes.len(), 2, "one decision, two streams");
    assert_eq!(w.citizen(a).marriage.map(|m| m.spouse), Some(b));
    assert_eq!(w.citizen(b).marriage.map(|m| m.spouse), Some(a));
    w.refused(marry(c, a), "ALREADY_MARRIED");
    w.refused(marry(a, c), "ALREADY_MARRIED");

    let divorce = |x, y| {
        Command::RegisterDivorce(RegisterDivorce {
            citizen: x,
            spouse: y,
            date: date("2020-01-01"),
        })
    };
    w.refused(divorce(a, c), "NOT_MARRIED");
    w.ok(divorce(b, a));
    assert_eq!(w.citizen(a).marriage, None);
    assert_eq!(w.citizen(b).marriage, None);
    w.refused(divorce(a, b), "NOT_MARRIED");

    let early = Command::RegisterMarriage(RegisterMarriage {
        citizen: a,
        spouse: c,
        date: date("1980-01-01"),
    });
    w.refused(early, "DATE_BEFORE_BIRTH");
}

#[test]
fn death_widows_the_spouse_and_ends_the_record() {
    let mut w = World::default();
    let a = add_citizen(&mut w, 1, Sex::Female, 1950);
    let b = add_citizen(&mut w, 2, Sex::Male, 1948);
    w.ok(Command::RegisterMarriage(RegisterMarriage {
        citizen: a,
        spouse: b,
        date: date("1970-06-01"),
    }));
    w.refused(
        Command::RecordDeath(RecordDeath {
            citizen: b,
            date: "1940".parse().unwrap(),
        }),
        "DATE_BEFORE_BIRTH",
    );
    // The spouse is not in `reads`: decide asks for it (NotLoaded), the handler loads it.
    let death = Command::RecordDeath(RecordDeath {
        citizen: b,
        date: "2024-11".parse().unwrap(),
    });
    assert_eq!(death.reads().records.len(), 1);
    let d = w.ok(death.clone());
    assert_eq!(d.changes.len(), 2);
    assert!(w.citizen(b).is_deceased());
    assert_eq!(w.citizen(a).marriage, None);
    w.refused(death, "CITIZEN_DECEASED");
    let residence = Command::ChangeResidence(ChangeResidence {
        citizen: b,
        kind: ResidenceKind::Permanent,
        commune: unit("11311"),
        address: "x".to_owned(),
        since: date("2025-01-01"),
    });
    w.refused(residence, "CITIZEN_DECEASED");
    // Corrections stay possible on a deceased citizen.
    w.ok(Command::CorrectRecord(CorrectRecord {
        record: b.into(),
        changes: vec![fc("birth_place", json!("11311"), json!("10507"))],
        reason: "sai nơi sinh".to_owned(),
        legal_basis: basis(),
    }));
}

#[test]
fn residence_name_card_and_parents() {
    let mut w = World::default();
    let a = add_citizen(&mut w, 1, Sex::Male, 1980);
    let p = add_citizen(&mut w, 2, Sex::Male, 1950);
    w.ok(Command::ChangeResidence(ChangeResidence {
        citizen: a,
        kind: ResidenceKind::Temporary,
        commune: unit("10507"),
        address: "  12  Lê Lợi ".to_owned(),
        since: date("2025-07-02"),
    }));
    let c = w.citizen(a);
    assert_eq!(
        c.temporary_residence.map(|r| r.address),
        Some("12 Lê Lợi".to_owned())
    );
    assert_eq!(c.permanent_residence, None);

    let name = w.citizen(a).name;
    w.refused(
        Command::ChangeCitizenName(ChangeCitizenName {
            citizen: a,
            name: name.clone(),
            legal_basis: basis(),
            correction: None,
        }),
        "NO_OP_CHANGE",
    );
    // A legal change of name is a protected change: the steward's command
    // only proposes it, and a different supervisor's approval makes it.
    let new = PersonName::new("Nguyễn", "Văn", "An").unwrap();
    let d = w.ok(Command::ChangeCitizenName(ChangeCitizenName {
        citizen: a,
        name: new.clone(),
        legal_basis: basis(),
        correction: Some(corr(90)),
    }));
    assert_eq!(w.citizen(a).name, name, "a steward alone cannot rename");
    assert_eq!(
        d.warnings,
        vec![DomainWarning::ApprovalRequired {
            correction: corr(90)
        }]
    );
    let proposal = &w.citizen(a).corrections[&corr(90)];
    assert_eq!(proposal.status, CorrectionStatus::Pending);
    assert_eq!(proposal.legal_basis, basis());
    let fields: Vec<&str> = proposal.changes.iter().map(|c| c.field.as_str()).collect();
    assert!(
        !fields.contains(&"name.family"),
        "only the parts that differ: {fields:?}"
    );
    assert!(fields.contains(&"name.given"));
    let approve = Command::ApproveCorrection(ApproveCorrection {
        record: a.into(),
        correction: corr(90),
    });
    w.refused_by(approve.clone(), &steward2(), "NOT_SUPERVISOR");
    w.run(&approve, &supervisor()).unwrap();
    assert_eq!(w.citizen(a).name, new);
    // Without an id the proposal's id is derived from the request, so a
    // re-sent request meets its own proposal instead of making a second one.
    let again = Command::ChangeCitizenName(ChangeCitizenName {
        citizen: a,
        name: PersonName::new("Nguyễn", "Văn", "Bình").unwrap(),
        legal_basis: basis(),
        correction: None,
    });
    w.ok(again.clone());
    w.refused(again, "CORRECTION_EXISTS");

    let card = |number| {
        Command::IssueIdentityCard(IssueIdentityCard {
            citizen: a,
            number,
            issue_date: date("2021-04-01"),
            place: "Cục Cảnh sát QLHC về TTXH".to_owned(),
        })
    };
    w.refused(card(pin(999, Sex::Male, 1980)), "CARD_NUMBER_MISMATCH");
    let own = w.citizen(a).pin;
    w.ok(card(own));
    assert_eq!(w.citizen(a).identity_card.map(|c| c.number), Some(own));

    w.ok(Command::SetParents(SetParents {
        citizen: a,
        father: Some(p),
        mother: None,
    }));
    w.refused(
        Command::SetParents(SetParents {
            citizen: a,
            father: Some(p),
            mother: None,
        }),
        "NO_OP_CHANGE",
    );
    w.refused(
        Command::SetParents(SetParents {
            citizen: a,
            father: Some(a),
            mother: None,
        }),
        "SAME_CITIZEN",
    );
}

#[test]
fn merged_duplicates_are_read_only_and_redirect() {
    let mut w = World::default();
    let survivor = add_citizen(&mut w, 1, Sex::Female, 1990);
    let dup = add_citizen(&mut w, 2, Sex::Female, 1990);
    let merge_cmd = |s, d| {
        Command::MergeCitizens(MergeCitizens {
            survivor: s,
            duplicate: d,
            reason: "trùng hồ sơ".to_owned(),
            legal_basis: basis(),
        })
    };
    w.refused(merge_cmd(survivor, survivor), "SAME_CITIZEN");
    w.ok(merge_cmd(survivor, dup));
    assert_eq!(w.citizen(dup).merged_into, Some(survivor));
    assert_eq!(w.citizen(survivor).absorbed, vec![dup]);
    w.refused(merge_cmd(survivor, dup), "RECORD_MERGED");
    w.refused(
        Command::RecordDeath(RecordDeath {
            citizen: dup,
            date: "2024".parse().unwrap(),
        }),
        "RECORD_MERGED",
    );
    w.refused(
        Command::CorrectRecord(CorrectRecord {
            record: dup.into(),
            changes: vec![fc("birth_place", json!("11311"), json!("10507"))],
            reason: "x".to_owned(),
            legal_basis: basis(),
        }),
        "RECORD_MERGED",
    );
    // A merged citizen cannot become a representative; the survivor can.
    w.refused(
        Command::RegisterBusiness(register_business(1, enterprise(1), vec![dup])),
        "RECORD_MERGED",
    );
    w.ok(Command::RegisterBusiness(register_business(
        1,
        enterprise(1),
        vec![survivor],
    )));

    let snapshot = w.snapshot(
        &Command::MergeCitizens(MergeCitizens {
            survivor,
            duplicate: dup,
            reason: String::new(),
            legal_basis: basis(),
        })
        .reads(),
        &[],
    );
    assert_eq!(snapshot.resolve_survivor(dup.into()), Ok(survivor.into()));
    assert_eq!(
        snapshot.resolve_survivor(survivor.into()),
        Ok(survivor.into())
    );
    assert_eq!(
        Snapshot::new().resolve_survivor(dup.into()),
        Err(DomainError::NotLoaded(Target::Record(dup.into())))
    );
}

#[test]
fn status_summarises_life_and_merge() {
    let mut w = World::default();
    let survivor = add_citizen(&mut w, 1, Sex::Female, 1980);
    let duplicate = add_citizen(&mut w, 2, Sex::Female, 1980);
    assert_eq!(w.citizen(survivor).status(), CitizenStatus::Alive);
    w.ok(Command::RecordDeath(RecordDeath {
        citizen: duplicate,
        date: PartialDate::year_only(2020).unwrap(),
    }));
    assert_eq!(w.citizen(duplicate).status(), CitizenStatus::Deceased);
    w.ok(Command::MergeCitizens(MergeCitizens {
        survivor,
        duplicate,
        reason: "hai hồ sơ một người".to_owned(),
        legal_basis: basis(),
    }));
    // A merged duplicate is Merged whatever its life status.
    assert_eq!(w.citizen(duplicate).status(), CitizenStatus::Merged);
    assert_eq!(
        [
            CitizenStatus::Alive,
            CitizenStatus::Deceased,
            CitizenStatus::Merged
        ]
        .map(CitizenStatus::as_str),
        ["alive", "deceased", "merged"]
    );
}
