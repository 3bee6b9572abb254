//! Land register scenarios: registration, mortgages, certificates, split and merge.

use super::*;

#[test]
fn parcel_registration_rules() {
    let mut w = World::default();
    let a = add_citizen(&mut w, 1, Sex::Male, 1960);
    let b = add_citizen(&mut w, 2, Sex::Female, 1962);
    let dead = add_citizen(&mut w, 3, Sex::Male, 1930);
    w.ok(Command::RecordDeath(RecordDeath {
        citizen: dead,
        date: "2000".parse().unwrap(),
    }));
    let ha = Holder::Citizen(a);
    let hb = Holder::Citizen(b);

    w.refused(
        Command::RegisterParcel(register_parcel(1, pkey(1, 1), "100", vec![])),
        "NO_HOLDERS",
    );
    let mut uneven = shares(&[(ha, "1/2")]);
    uneven.push(Holding {
        holder: hb,
        share: "1/3".parse().unwrap(),
    });
    w.refused(
        Command::RegisterParcel(register_parcel(1, pkey(1, 1), "100", uneven)),
        "SHARES_NOT_ONE",
    );
    w.refused(
        Command::RegisterParcel(register_parcel(
            1,
            pkey(1, 1),
            "100",
            shares(&[(ha, "1/2"), (ha, "1/2")]),
        )),
        "DUPLICATE_ENTRY",
    );
    w.refused(
        Command::RegisterParcel(register_parcel(
            1,
            pkey(1, 1),
            "100",
            whole(Holder::Citizen(dead)),
        )),
        "DECEASED_HOLDER",
    );
    w.refused(
        Command::RegisterParcel(register_parcel(1, pkey(1, 1), "0", whole(ha))),
        "INVALID_AREA",
    );
    let foreign = ParcelKey::new(unit("00001"), unit("00001"), 1, 1).unwrap();
    w.refused(
        Command::RegisterParcel(register_parcel(1, foreign, "100", whole(ha))),
        "UNKNOWN_CODE",
    );
    let mut no_use = register_parcel(1, pkey(1, 1), "100", whole(ha));
    no_use.land_use.clear();
    w.refused(Command::RegisterParcel(no_use), "NO_LAND_USE");

    let d = w.ok(Command::RegisterParcel(register_parcel(
        1,
        pkey(1, 1),
        "100.25",
        shares(&[(ha, "1/2"), (hb, "1/2")]),
    )));
    assert!(d.warnings.is_empty());
    assert_eq!(w.parcel(pid(1)).area.hundredths(), 10025);
    w.refused(
        Command::RegisterParcel(register_parcel(2, pkey(1, 1), "50", whole(ha))),
        "DUPLICATE_KEY",
    );

    // A predecessor commune in no list (outside the former provinces' block).
    let nowhere = ParcelKey::new(unit("11311"), unit("99999"), 1, 1).unwrap();
    w.refused(
        Command::RegisterParcel(register_parcel(2, nowhere, "50", whole(ha))),
        "UNKNOWN_CODE",
    );
    // Same sheet/number under a different predecessor commune is a different key.
    let other = ParcelKey::new(unit("11311"), unit("10508"), 1, 1).unwrap();
    let d = w.ok(Command::RegisterParcel(register_parcel(
        2,
        other,
        "50",
        whole(ha),
    )));
    assert_eq!(
        d.warnings,
        vec![DomainWarning::UnverifiedPredecessorCommune {
            code: unit("10508")
        }]
    );
    // The documented predecessor (11311 = former Phường Minh Khai) raises no warning.
    let documented = ParcelKey::new(unit("10507"), unit("11311"), 1, 1).unwrap();
    let d = w.ok(Command::RegisterParcel(register_parcel(
        3,
        documented,
        "50",
        whole(ha),
    )));
    assert!(d.warnings.is_empty());
}

#[test]
fn mortgages_block_transfers_unless_released_together() {
    let mut w = World::default();
    let a = add_citizen(&mut w, 1, Sex::Male, 1960);
    let b = add_citizen(&mut w, 2, Sex::Female, 1990);
    w.ok(Command::RegisterBusiness(register_business(
        1,
        enterprise(1),
        vec![a],
    )));
    w.ok(Command::RegisterParcel(register_parcel(
        1,
        pkey(3, 7),
        "250",
        whole(Holder::Citizen(a)),
    )));
    w.ok(Command::RegisterMortgage(RegisterMortgage {
        parcel: pid(1),
        mortgage: mortgage("HĐ-01", bid(1)),
    }));
    w.refused(
        Command::RegisterMortgage(RegisterMortgage {
            parcel: pid(1),
            mortgage: mortgage("HĐ-01", bid(1)),
        }),
        "DUPLICATE_MORTGAGE",
    );
    w.refused(
        Command::RegisterMortgage(RegisterMortgage {
            parcel: pid(1),
            mortgage: mortgage("HĐ-02", bid(8)),
        }),
        "RECORD_NOT_FOUND",
    );
    let transfer = |release: Vec<&str>| {
        Command::TransferRights(TransferRights {
            parcel: pid(1),
            kind: TransferKind::Sale,
            holders: whole(Holder::Citizen(b)),
            date: date("2025-08-01"),
            release_mortgages: release.into_iter().map(str::to_owned).collect(),
        })
    };
    w.refused(transfer(vec![]), "PARCEL_MORTGAGED");
    w.refused(transfer(vec!["HĐ-99"]), "MORTGAGE_NOT_FOUND");
    w.refused(
        Command::ReleaseMortgage(ReleaseMortgage {
            parcel: pid(1),
            contract_number: "HĐ-99".to_owned(),
            date: date("2025-08-01"),
        }),
        "MORTGAGE_NOT_FOUND",
    );
    let d = w.ok(transfer(vec!["HĐ-01"]));
    let types: Vec<&str> = d
        .events_for(&Target::Record(pid(1).into()))
        .iter()
        .map(Event::event_type)
        .collect();
    assert_eq!(types, ["MortgageReleased", "RightsTransferred"]);
    let p = w.parcel(pid(1));
    assert!(p.mortgages.is_empty());
    assert_eq!(p.holders, whole(Holder::Citizen(b)));
    w.refused(transfer(vec![]), "NO_OP_CHANGE");

    // A dissolved business is neither creditor nor holder.
    w.ok(Command::DissolveBusiness(DissolveBusiness {
        business: bid(1),
        on: date("2025-09-01"),
    }));
    w.refused(
        Command::RegisterMortgage(RegisterMortgage {
            parcel: pid(1),
            mortgage: mortgage("HĐ-03", bid(1)),
        }),
        "BUSINESS_DISSOLVED",
    );
    w.refused(
        Command::TransferRights(TransferRights {
            parcel: pid(1),
            kind: TransferKind::Gift,
            holders: whole(Holder::Business(bid(1))),
            date: date("2025-10-01"),
            release_mortgages: vec![],
        }),
        "DISSOLVED_HOLDER",
    );
}

#[test]
fn certificates_and_land_use() {
    let mut w = World::default();
    let a = add_citizen(&mut w, 1, Sex::Male, 1960);
    w.ok(Command::RegisterParcel(register_parcel(
        1,
        pkey(3, 7),
        "250",
        whole(Holder::Citizen(a)),
    )));
    let cert = Certificate {
        serial: "cb246904".parse().unwrap(),
        entry_number: "CS 01234".to_owned(),
        issue_date: date("2025-08-15"),
        issuer: "Sở Nông nghiệp và Môi trường Hải Phòng".to_owned(),
    };
    w.ok(Command::IssueCertificate(IssueCertificate {
        parcel: pid(1),
        certificate: cert.clone(),
    }));
    assert_eq!(
        w.parcel(pid(1)).certificate.map(|c| c.serial.to_string()),
        Some("CB 246904".to_owned())
    );
    w.refused(
        Command::IssueCertificate(IssueCertificate {
            parcel: pid(1),
            certificate: cert.clone(),
        }),
        "CERTIFICATE_EXISTS",
    );
    let revoke = |serial: &str| {
        Command::RevokeCertificate(RevokeCertificate {
            parcel: pid(1),
            serial: serial.parse().unwrap(),
            date: date("2025-09-01"),
            reason: "cấp đổi".to_owned(),
        })
    };
    w.refused(revoke("CB 000001"), "CERTIFICATE_NOT_FOUND");
    w.ok(revoke("CB 246904"));
    assert_eq!(w.parcel(pid(1)).certificate, None);

    let change = |codes: &[&str]| {
        Command::ChangeLandUse(ChangeLandUse {
            parcel: pid(1),
            land_use: codes.iter().map(|c| c.parse().unwrap()).collect(),
            date: date("2025-09-01"),
            legal_basis: basis(),
        })
    };
    w.refused(change(&["ODT"]), "NO_OP_CHANGE");
    w.refused(change(&[]), "NO_LAND_USE");
    w.refused(change(&["ODT", "ODT"]), "DUPLICATE_ENTRY");
    w.ok(change(&["ODT", "CLN"]));
    assert_eq!(w.parcel(pid(1)).land_use.len(), 2);
}

#[test]
fn split_and_merge_conserve_area_and_claim_keys() {
    let mut w = World::default();
    let a = add_citizen(&mut w, 1, Sex::Male, 1960);
    let b = add_citizen(&mut w, 2, Sex::Female, 1962);
    let owners = shares(&[(Holder::Citizen(a), "1/2"), (Holder::Citizen(b), "1/2")]);
    w.ok(Command::RegisterParcel(register_parcel(
        1,
        pkey(5, 10),
        "300.50",
        owners.clone(),
    )));
    let part = |n: u128, number: u32, area: &str| NewParcel {
        parcel: pid(n),
        key: pkey(5, number),
        area: area.parse().unwrap(),
    };
    let split = |parts: Vec<NewParcel>| {
        Command::SplitParcel(SplitParcel {
            source: pid(1),
            parts,
            date: date("2025-08-01"),
        })
    };

    w.refused(split(vec![part(2, 11, "300.50")]), "TOO_FEW_PARTS");
    w.refused(
        split(vec![part(2, 11, "100"), part(3, 12, "200")]),
        "AREA_MISMATCH",
    );
    w.refused(
        split(vec![part(2, 11, "100"), part(3, 11, "200.50")]),
        "DUPLICATE_ENTRY",
    );
    w.refused(
        split(vec![part(2, 10, "100"), part(3, 12, "200.50")]),
        "DUPLICATE_KEY",
    );
    w.refused(
        split(vec![part(2, 11, "0"), part(3, 12, "300.50")]),
        "INVALID_AREA",
    );
    let d = w.ok(split(vec![part(2, 11, "100.25"), part(3, 12, "200.25")]));
    assert_eq!(d.changes.len(), 5, "source + 2 parcels + 2 keys");
    assert!(matches!(
        w.parcel(pid(1)).status,
        ParcelStatus::Split { .. }
    ));
    for id in [pid(2), pid(3)] {
        let p = w.parcel(id);
        assert_eq!(p.holders, owners);
        assert_eq!(p.origin, ParcelOrigin::SplitFrom { source: pid(1) });
    }
    assert_eq!(
        w.key(NaturalKey::Parcel(pkey(5, 11))).holder,
        Some(pid(2).into())
    );
    w.refused(
        Command::TransferRights(TransferRights {
            parcel: pid(1),
            kind: TransferKind::Sale,
            holders: whole(Holder::Citizen(a)),
            date: date("2025-09-01"),
            release_mortgages: vec![],
        }),
        "RECORD_RETIRED",
    );

    let merge_cmd = |sources: Vec<ParcelId>, number: u32, area: &str| {
        Command::MergeParcels(MergeParcels {
            sources,
            into: NewParcel {
                parcel: pid(9),
                key: pkey(5, number),
                area: area.parse().unwrap(),
            },
            date: date("2025-10-01"),
        })
    };
    w.refused(merge_cmd(vec![pid(2)], 20, "100.25"), "TOO_FEW_PARTS");
    w.refused(merge_cmd(vec![pid(2), pid(3)], 20, "300"), "AREA_MISMATCH");
    w.refused(
        merge_cmd(vec![pid(1), pid(3)], 20, "300.50"),
        "RECORD_RETIRED",
    );
    w.ok(merge_cmd(vec![pid(2), pid(3)], 20, "300.50"));
    assert_eq!(w.parcel(pid(9)).area, "300.5".parse().unwrap());
    assert!(!w.parcel(pid(2)).is_active());

    // Different holders cannot merge.
    w.ok(Command::RegisterParcel(register_parcel(
        20,
        pkey(6, 1),
        "10",
        whole(Holder::Citizen(a)),
    )));
    w.ok(Command::RegisterParcel(register_parcel(
        21,
        pkey(6, 2),
        "10",
        whole(Holder::Citizen(b)),
    )));
    w.refused(
        Command::MergeParcels(MergeParcels {
            sources: vec![pid(20), pid(21)],
            into: NewParcel {
                parcel: pid(22),
                key: pkey(6, 3),
                area: "20".parse().unwrap(),
            },
            date: date("2025-10-01"),
        }),
        "HOLDERS_DIFFER",
    );

    // Retirement is terminal.
    let retire = Command::RetireParcel(RetireParcel {
        parcel: pid(20),
        date: date("2025-11-01"),
        reason: "thu hồi đất".to_owned(),
    });
    w.ok(retire.clone());
    w.refused(retire, "RECORD_RETIRED");
}
