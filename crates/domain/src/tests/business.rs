//! Business register scenarios: registration rules, lifecycle, branches.

use super::*;

#[test]
fn business_registration_rules() {
    let mut w = World::default();
    let rep = add_citizen(&mut w, 1, Sex::Male, 1970);
    let dead = add_citizen(&mut w, 2, Sex::Male, 1940);
    w.ok(Command::RecordDeath(RecordDeath {
        citizen: dead,
        date: "2020".parse().unwrap(),
    }));

    let code = enterprise(1);
    w.refused(
        Command::RegisterBusiness(register_business(1, code, vec![dead])),
        "DECEASED_REPRESENTATIVE",
    );
    w.refused(
        Command::RegisterBusiness(register_business(1, code, vec![])),
        "NO_LEGAL_REPRESENTATIVE",
    );
    w.refused(
        Command::RegisterBusiness(register_business(1, code, vec![rep, rep])),
        "DUPLICATE_ENTRY",
    );
    w.refused(
        Command::RegisterBusiness(register_business(1, code, vec![cid(50)])),
        "RECORD_NOT_FOUND",
    );
    let mut no_lines = register_business(1, code, vec![rep]);
    no_lines.business_lines.clear();
    w.refused(Command::RegisterBusiness(no_lines), "NO_BUSINESS_LINES");
    // Business lines against the VSIC list in force on the registration date: 0130 is VSIC
    // 2025's, not 2018's, so a 2024 registration naming it is refused, naming the list; a
    // code of a division the repository does not hold is not judged.
    let mut vsic_2025_code = register_business(1, code, vec![rep]);
    vsic_2025_code.business_lines = vec!["0130".parse().unwrap()];
    match w.run(&Command::RegisterBusiness(vsic_2025_code), &steward()) {
        Err(DomainError::UnknownCode(u)) => assert_eq!(
            u.to_string(),
            "unknown code `0130`: not in the list vsic_2018 (Decision 27/2018/QĐ-TTg)"
        ),
        other => panic!("expected UNKNOWN_CODE, got {other:?}"),
    }
    let mut listed = register_business(7, enterprise(7), vec![rep]);
    listed.business_lines = vec!["0118".parse().unwrap(), "4711".parse().unwrap()];
    w.ok(Command::RegisterBusiness(listed));
    // After VSIC 2018 (replaced on 2025-11-15 by VSIC 2025, which is not held): not judged.
    let mut today = register_business(8, enterprise(8), vec![rep]);
    today.business_lines = vec!["0130".parse().unwrap()];
    today.registration_date = date("2026-11-30");
    w.ok(Command::RegisterBusiness(today));
    let mut unnamed = register_business(1, code, vec![rep]);
    unnamed.names.vietnamese = "  ".to_owned();
    w.refused(Command::RegisterBusiness(unnamed), "MISSING_VALUE");
    w.refused(
        Command::RegisterBusiness(register_business(1, code.branch(1).unwrap(), vec![rep])),
        "BRANCH_CODE_NOT_ALLOWED",
    );

    let d = w.ok(Command::RegisterBusiness(register_business(
        1,
        code,
        vec![rep],
    )));
    assert!(d.warnings.is_empty());
    assert_eq!(
        w.key(NaturalKey::Enterprise(code)).holder,
        Some(bid(1).into())
    );
    w.refused(
        Command::RegisterBusiness(register_business(2, code, vec![rep])),
        "DUPLICATE_KEY",
    );

    // A legacy code (S mod 11 = 0): refused for new registration, warned on initial load.
    let (legacy, _) = EnterpriseCode::parse_legacy("0201000007").unwrap();
    w.refused(
        Command::RegisterBusiness(register_business(3, legacy, vec![rep])),
        "LEGACY_CHECK_DIGIT",
    );
    let mut load = register_business(3, legacy, vec![rep]);
    load.origin = RegistrationOrigin::InitialLoad {
        source: "Cổng thông tin quốc gia về ĐKDN".to_owned(),
    };
    let d = w.ok(Command::RegisterBusiness(load));
    assert_eq!(
        d.warnings,
        vec![DomainWarning::LegacyCheckDigit { code: legacy }]
    );
    assert_eq!(d.warnings[0].code(), "LEGACY_CHECK_DIGIT");
}

#[test]
fn business_lifecycle() {
    let mut w = World::default();
    let rep = add_citizen(&mut w, 1, Sex::Male, 1970);
    let rep2 = add_citizen(&mut w, 2, Sex::Female, 1975);
    let b = bid(1);
    w.ok(Command::RegisterBusiness(register_business(
        1,
        enterprise(1),
        vec![rep],
    )));

    w.ok(Command::RenameBusiness(RenameBusiness {
        business: b,
        names: BusinessNames {
            vietnamese: "Công ty CP Cảng Hải Phòng".to_owned(),
            english: Some("Hai Phong Port JSC".to_owned()),
            abbreviated: Some(" ".to_owned()),
        },
        date: date("2025-01-01"),
    }));
    assert_eq!(w.business(b).names.abbreviated, None);
    w.ok(Command::MoveHeadOffice(MoveHeadOffice {
        business: b,
        head_office: Address {
            commune: unit("10507"),
            street: "8A Trần Phú".to_owned(),
        },
        date: date("2025-02-01"),
    }));
    w.refused(
        Command::MoveHeadOffice(MoveHeadOffice {
            business: b,
            head_office: Address {
                commune: unit("10507"),
                street: "8A Trần Phú".to_owned(),
            },
            date: date("2025-02-01"),
        }),
        "NO_OP_CHANGE",
    );
    w.ok(Command::ChangeLegalRepresentatives(
        ChangeLegalRepresentatives {
            business: b,
            legal_representatives: vec![rep, rep2],
            date: date("2025-03-01"),
        },
    ));
    w.ok(Command::ChangeCharterCapital(ChangeCharterCapital {
        business: b,
        charter_capital: Vnd(9_000_000_000),
        date: date("2025-03-01"),
    }));
    w.ok(Command::ChangeBusinessLines(ChangeBusinessLines {
        business: b,
        business_lines: vec!["5210".parse().unwrap(), "5224".parse().unwrap()],
        date: date("2025-03-01"),
    }));
    let current = w.business(b);
    assert_eq!(current.legal_representatives, vec![rep, rep2]);
    assert_eq!(current.charter_capital, Some(Vnd(9_000_000_000)));

    w.refused(
        Command::ResumeBusiness(ResumeBusiness {
            business: b,
            on: date("2025-04-01"),
        }),
        "BUSINESS_NOT_SUSPENDED",
    );
    w.refused(
        Command::SuspendBusiness(SuspendBusiness {
            business: b,
            from: date("2025-05-01"),
            until: date("2025-04-01"),
        }),
        "INVALID_PERIOD",
    );
    w.ok(Command::SuspendBusiness(SuspendBusiness {
        business: b,
        from: date("2025-04-01"),
        until: date("2026-04-01"),
    }));
    w.refused(
        Command::SuspendBusiness(SuspendBusiness {
            business: b,
            from: date("2025-04-01"),
            until: date("2026-04-01"),
        }),
        "BUSINESS_SUSPENDED",
    );
    w.ok(Command::ResumeBusiness(ResumeBusiness {
        business: b,
        on: date("2025-06-01"),
    }));
    assert_eq!(w.business(b).status, BusinessStatus::Active);

    // A deceased citizen never becomes a representative.
    w.ok(Command::RecordDeath(RecordDeath {
        citizen: rep2,
        date: "2025-06-02".parse().unwrap(),
    }));
    w.refused(
        Command::ChangeLegalRepresentatives(ChangeLegalRepresentatives {
            business: b,
            legal_representatives: vec![rep2],
            date: date("2025-07-01"),
        }),
        "DECEASED_REPRESENTATIVE",
    );

    w.ok(Command::DissolveBusiness(DissolveBusiness {
        business: b,
        on: date("2025-09-01"),
    }));
    w.refused(
        Command::DissolveBusiness(DissolveBusiness {
            business: b,
            on: date("2025-09-02"),
        }),
        "BUSINESS_DISSOLVED",
    );
    w.refused(
        Command::RenameBusiness(RenameBusiness {
            business: b,
            names: names("X"),
            date: date("2025-10-01"),
        }),
        "BUSINESS_DISSOLVED",
    );
}

#[test]
fn branches() {
    let mut w = World::default();
    let rep = add_citizen(&mut w, 1, Sex::Male, 1970);
    let code = enterprise(1);
    w.ok(Command::RegisterBusiness(register_business(
        1,
        code,
        vec![rep],
    )));
    let branch = |id: u128, parent: BusinessId, code: EnterpriseCode| {
        Command::RegisterBranch(RegisterBranch {
            branch: bid(id),
            parent,
            code,
            names: names("Chi nhánh Cát Hải"),
            address: office(),
            legal_representatives: vec![rep],
            business_lines: vec!["5210".parse().unwrap()],
            registration_date: date("2025-08-01"),
            origin: RegistrationOrigin::Registration,
        })
    };
    w.refused(
        branch(2, bid(1), enterprise(7).branch(1).unwrap()),
        "BRANCH_CODE_MISMATCH",
    );
    w.refused(branch(2, bid(1), code), "BRANCH_CODE_MISMATCH");
    let d = w.ok(branch(2, bid(1), code.branch(1).unwrap()));
    assert_eq!(d.changes.len(), 3, "branch, parent and key streams");
    assert_eq!(w.business(bid(1)).branches, vec![bid(2)]);
    let b = w.business(bid(2));
    assert_eq!((b.parent, b.charter_capital), (Some(bid(1)), None));
    w.refused(
        branch(3, bid(2), code.branch(2).unwrap()),
        "PARENT_IS_BRANCH",
    );
    w.refused(branch(3, bid(1), code.branch(1).unwrap()), "DUPLICATE_KEY");
    w.refused(
        Command::ChangeCharterCapital(ChangeCharterCapital {
            business: bid(2),
            charter_capital: Vnd(1),
            date: date("2025-09-01"),
        }),
        "NOT_APPLICABLE_TO_BRANCH",
    );
}
