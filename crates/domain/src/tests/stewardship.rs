//! Corrections: direct, four-eyes proposals, approval, rejection, withdrawal.

use super::*;

#[test]
fn direct_corrections_of_unprotected_fields() {
    let mut w = World::default();
    let a = add_citizen(&mut w, 1, Sex::Female, 1999);
    let correct = |changes: Vec<FieldChange>| {
        Command::CorrectRecord(CorrectRecord {
            record: a.into(),
            changes,
            reason: "nhập sai".to_owned(),
            legal_basis: basis(),
        })
    };
    w.refused(correct(vec![]), "EMPTY_CORRECTION");
    w.refused(
        correct(vec![fc("name.given", json!("Hòa 1"), json!("Hoa"))]),
        "PROTECTED_FIELD",
    );
    w.refused(
        correct(vec![fc("shoe_size", json!(1), json!(2))]),
        "UNKNOWN_FIELD",
    );
    w.refused(
        correct(vec![fc("birth_place", json!("10507"), json!("10525"))]),
        "CORRECTION_CONFLICT",
    );
    w.refused(
        correct(vec![fc("birth_place", json!("11311"), json!("1x"))]),
        "INVALID_FIELD_VALUE",
    );
    w.refused(
        correct(vec![fc("birth_place", json!("11311"), json!("11311"))]),
        "NO_OP_CHANGE",
    );
    w.refused(
        correct(vec![
            fc("birth_place", json!("11311"), json!("10507")),
            fc("birth_place", json!("11311"), json!("10525")),
        ]),
        "DUPLICATE_ENTRY",
    );
    let d = w.ok(correct(vec![fc(
        "birth_place",
        json!(" 11311"),
        json!("10507"),
    )]));
    // The event records canonical old/new values and the steward.
    match &d.events_for(&Target::Record(a.into()))[0] {
        Event::RecordCorrected {
            changes, steward, ..
        } => {
            assert_eq!(
                changes[0],
                fc("birth_place", json!("11311"), json!("10507"))
            );
            assert_eq!(steward, "steward-lan");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.citizen(a).birth_place, unit("10507"));
    let mut no_basis = CorrectRecord {
        record: a.into(),
        changes: vec![fc("birth_place", json!("10507"), json!("11311"))],
        reason: "x".to_owned(),
        legal_basis: basis(),
    };
    no_basis.legal_basis.document_number = String::new();
    w.refused(Command::CorrectRecord(no_basis), "MISSING_VALUE");
}

#[test]
fn pin_correction_needs_four_eyes_and_moves_the_key() {
    let mut w = World::default();
    let a = add_citizen(&mut w, 1, Sex::Female, 1999);
    let old_pin = w.citizen(a).pin;
    let new_pin = pin(555, Sex::Female, 1999);
    let propose = |id: u128, new: PersonalIdNumber| {
        Command::ProposeCorrection(ProposeCorrection {
            record: a.into(),
            correction: corr(id),
            changes: vec![fc(
                "pin",
                json!(old_pin.to_string()),
                json!(new.to_string()),
            )],
            reason: "sai số định danh".to_owned(),
            legal_basis: basis(),
        })
    };
    // A PIN that contradicts the record's sex is refused at proposal.
    w.refused(propose(1, pin(555, Sex::Male, 1999)), "PIN_MISMATCH");
    w.ok(propose(1, new_pin));
    w.refused(propose(1, new_pin), "CORRECTION_EXISTS");
    assert_eq!(w.citizen(a).pin, old_pin, "nothing changes before approval");
    assert_eq!(
        w.citizen(a).corrections[&corr(1)].status,
        CorrectionStatus::Pending
    );

    let approve = Command::ApproveCorrection(ApproveCorrection {
        record: a.into(),
        correction: corr(1),
    });
    w.refused_by(approve.clone(), &steward2(), "NOT_SUPERVISOR");
    let self_review = Actor {
        id: "steward-lan".to_owned(),
        role: StewardRole::Supervisor,
    };
    w.refused_by(approve.clone(), &self_review, "SELF_REVIEW");
    let d = w.run(&approve, &supervisor()).unwrap();
    // One decision: the record, the old key (released) and the new key (claimed).
    assert_eq!(d.changes.len(), 3);
    assert_eq!(w.citizen(a).pin, new_pin);
    assert_eq!(
        w.key(NaturalKey::Pin(old_pin)),
        KeyClaim {
            holder: None,
            past_holders: vec![a.into()]
        }
    );
    assert_eq!(w.key(NaturalKey::Pin(new_pin)).holder, Some(a.into()));
    assert_eq!(
        w.citizen(a).corrections[&corr(1)].status,
        CorrectionStatus::Approved {
            by: "supervisor-hoa".to_owned()
        }
    );
    w.refused_by(approve, &supervisor(), "CORRECTION_CLOSED");
    w.refused_by(
        Command::ApproveCorrection(ApproveCorrection {
            record: a.into(),
            correction: corr(9),
        }),
        &supervisor(),
        "CORRECTION_NOT_FOUND",
    );

    // The released PIN is free again; the new one is taken.
    let mut other = register_citizen(2, Sex::Female, 1999);
    other.pin = new_pin;
    w.refused(Command::RegisterCitizen(other.clone()), "DUPLICATE_KEY");
    other.pin = old_pin;
    w.ok(Command::RegisterCitizen(other));
    // Proposing to take a PIN held by someone else is refused early.
    let b_pin = w.citizen(cid(2)).pin;
    w.refused(
        Command::ProposeCorrection(ProposeCorrection {
            record: a.into(),
            correction: corr(2),
            changes: vec![fc(
                "pin",
                json!(new_pin.to_string()),
                json!(b_pin.to_string()),
            )],
            reason: "x".to_owned(),
            legal_basis: basis(),
        }),
        "DUPLICATE_KEY",
    );
}

#[test]
fn rejection_withdrawal_and_stale_approvals() {
    let mut w = World::default();
    let a = add_citizen(&mut w, 1, Sex::Male, 1980);
    let propose = |id: u128, given: &str| {
        Command::ProposeCorrection(ProposeCorrection {
            record: a.into(),
            correction: corr(id),
            changes: vec![fc("name.given", json!("Hòa 1"), json!(given))],
            reason: "sai tên".to_owned(),
            legal_basis: basis(),
        })
    };
    w.ok(propose(1, "Hoà"));
    w.ok(propose(2, "Hùng"));
    w.refused_by(
        Command::WithdrawCorrection(WithdrawCorrection {
            record: a.into(),
            correction: corr(1),
        }),
        &steward2(),
        "NOT_PROPOSER",
    );
    w.ok(Command::WithdrawCorrection(WithdrawCorrection {
        record: a.into(),
        correction: corr(1),
    }));
    assert_eq!(
        w.citizen(a).corrections[&corr(1)].status,
        CorrectionStatus::Withdrawn
    );
    w.refused_by(
        Command::RejectCorrection(RejectCorrection {
            record: a.into(),
            correction: corr(1),
            reason: "x".to_owned(),
        }),
        &supervisor(),
        "CORRECTION_CLOSED",
    );

    w.ok(propose(3, "Hải"));
    w.run(
        &Command::ApproveCorrection(ApproveCorrection {
            record: a.into(),
            correction: corr(2),
        }),
        &supervisor(),
    )
    .unwrap();
    assert_eq!(w.citizen(a).name.given(), "Hùng");
    // Proposal 3 was made against "Hòa 1": approving it now would overwrite.
    w.refused_by(
        Command::ApproveCorrection(ApproveCorrection {
            record: a.into(),
            correction: corr(3),
        }),
        &supervisor(),
        "CORRECTION_CONFLICT",
    );
    w.refused_by(
        Command::RejectCorrection(RejectCorrection {
            record: a.into(),
            correction: corr(3),
            reason: "x".to_owned(),
        }),
        &steward2(),
        "NOT_SUPERVISOR",
    );
    w.run(
        &Command::RejectCorrection(RejectCorrection {
            record: a.into(),
            correction: corr(3),
            reason: "lỗi thời".to_owned(),
        }),
        &supervisor(),
    )
    .unwrap();
    assert!(matches!(
        w.citizen(a).corrections[&corr(3)].status,
        CorrectionStatus::Rejected { .. }
    ));
}

#[test]
fn parcel_area_and_holders_are_protected() {
    let mut w = World::default();
    let a = add_citizen(&mut w, 1, Sex::Male, 1960);
    let b = add_citizen(&mut w, 2, Sex::Female, 1962);
    w.ok(Command::RegisterParcel(register_parcel(
        1,
        pkey(3, 7),
        "250",
        whole(Holder::Citizen(a)),
    )));
    let change_area = fc("area", json!("250"), json!("251.5"));
    w.refused(
        Command::CorrectRecord(CorrectRecord {
            record: pid(1).into(),
            changes: vec![change_area.clone()],
            reason: "đo đạc lại".to_owned(),
            legal_basis: basis(),
        }),
        "PROTECTED_FIELD",
    );
    let bad_holders = serde_json::to_value(shares(&[
        (Holder::Citizen(a), "1/3"),
        (Holder::Citizen(b), "1/3"),
    ]))
    .unwrap();
    let old_holders = serde_json::to_value(whole(Holder::Citizen(a))).unwrap();
    w.refused(
        Command::ProposeCorrection(ProposeCorrection {
            record: pid(1).into(),
            correction: corr(1),
            changes: vec![fc("holders", old_holders.clone(), bad_holders)],
            reason: "x".to_owned(),
            legal_basis: basis(),
        }),
        "SHARES_NOT_ONE",
    );
    let good = serde_json::to_value(shares(&[
        (Holder::Citizen(a), "1/2"),
        (Holder::Citizen(b), "1/2"),
    ]))
    .unwrap();
    w.ok(Command::ProposeCorrection(ProposeCorrection {
        record: pid(1).into(),
        correction: corr(1),
        changes: vec![change_area, fc("holders", old_holders, good)],
        reason: "đo đạc lại".to_owned(),
        legal_basis: basis(),
    }));
    // A holder who died meanwhile blocks the approval.
    w.ok(Command::RecordDeath(RecordDeath {
        citizen: b,
        date: "2025-08".parse().unwrap(),
    }));
    let approve = Command::ApproveCorrection(ApproveCorrection {
        record: pid(1).into(),
        correction: corr(1),
    });
    w.refused_by(approve, &supervisor(), "DECEASED_HOLDER");
}

#[test]
fn enterprise_code_correction_keeps_branch_prefix() {
    let mut w = World::default();
    let rep = add_citizen(&mut w, 1, Sex::Male, 1970);
    let code = enterprise(1);
    w.ok(Command::RegisterBusiness(register_business(
        1,
        code,
        vec![rep],
    )));
    w.ok(Command::RegisterBranch(RegisterBranch {
        branch: bid(2),
        parent: bid(1),
        code: code.branch(1).unwrap(),
        names: names("Chi nhánh"),
        address: office(),
        legal_representatives: vec![rep],
        business_lines: vec!["5210".parse().unwrap()],
        registration_date: date("2025-08-01"),
        origin: RegistrationOrigin::Registration,
    }));
    let propose = |new: EnterpriseCode| {
        Command::ProposeCorrection(ProposeCorrection {
            record: bid(2).into(),
            correction: corr(1),
            changes: vec![fc(
                "enterprise_code",
                json!(code.branch(1).unwrap().to_string()),
                json!(new.to_string()),
            )],
            reason: "x".to_owned(),
            legal_basis: basis(),
        })
    };
    w.refused(
        propose(enterprise(9).branch(1).unwrap()),
        "BRANCH_CODE_MISMATCH",
    );
    w.refused(propose(enterprise(9)), "INVALID_FIELD_VALUE");
    w.ok(propose(code.branch(2).unwrap()));
    w.run(
        &Command::ApproveCorrection(ApproveCorrection {
            record: bid(2).into(),
            correction: corr(1),
        }),
        &supervisor(),
    )
    .unwrap();
    assert_eq!(w.business(bid(2)).code, code.branch(2).unwrap());
    assert_eq!(
        w.key(NaturalKey::Enterprise(code.branch(1).unwrap()))
            .holder,
        None
    );
}
