//! Issue 3's "done when": a steward's day on a real SQLite log, every refusal typed and
//! write-free, and the whole log replaying to exactly what the registry serves.

mod common;

use citydb_domain::business::*;
use citydb_domain::citizen::*;
use citydb_domain::command::*;
use citydb_domain::parcel::*;
use citydb_domain::stewardship::CorrectionStatus;
use citydb_domain::*;
use citydb_log::Metadata;
use citydb_registry::{CommandContext, CommandRequest, Executed};
use common::*;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn a_stewards_day() {
    let env = open();

    // --- people ----------------------------------------------------------------------------
    let an = cid(1); // male 1960
    let binh = cid(2); // female 1962
    let chi = cid(3); // female 1995
    let dung = cid(4); // male 1990
    let dung_dup = cid(5); // the same man, registered twice
    let em = cid(6); // child of An and Bình
    let first = env
        .ok(Command::RegisterCitizen(register_citizen(
            1,
            Sex::Male,
            1960,
        )))
        .await;
    // One append: the key claim, the record, the marker.
    assert_eq!(first.changes.len(), 2);
    assert_eq!(first.version_of(an.into()), Some(0));
    assert_eq!(
        (first.first_position, first.last_position),
        (Some(0), Some(2))
    );
    for (n, sex, year) in [
        (2, Sex::Female, 1962),
        (3, Sex::Female, 1995),
        (4, Sex::Male, 1990),
        (5, Sex::Male, 1990),
    ] {
        env.ok(Command::RegisterCitizen(register_citizen(n, sex, year)))
            .await;
    }
    let mut child = register_citizen(6, Sex::Female, 2000);
    child.father = Some(an);
    child.mother = Some(binh);
    env.ok(Command::RegisterCitizen(child)).await;
    assert_eq!(env.citizen(em).await.father, Some(an));

    // Same PIN under another id; a PIN that contradicts the sex; parents that do not exist.
    let mut same_pin = register_citizen(7, Sex::Male, 1960);
    same_pin.pin = env.citizen(an).await.pin;
    env.refused(Command::RegisterCitizen(same_pin), "DUPLICATE_KEY")
        .await;
    let mut wrong_sex = register_citizen(7, Sex::Male, 1960);
    wrong_sex.sex = Sex::Female;
    env.refused(Command::RegisterCitizen(wrong_sex), "PIN_MISMATCH")
        .await;
    let mut orphan = register_citizen(7, Sex::Male, 2010);
    orphan.father = Some(cid(99));
    env.refused(Command::RegisterCitizen(orphan), "RECORD_NOT_FOUND")
        .await;
    env.refused(
        Command::RegisterCitizen(register_citizen(1, Sex::Male, 1960)),
        "RECORD_EXISTS",
    )
    .await;
    assert_eq!(env.registry.load_record(cid(7).into()).await.unwrap(), None);
    assert_eq!(
        env.registry
            .load_key(&NaturalKey::Pin(env.citizen(chi).await.pin))
            .await
            .unwrap(),
        Some(chi.into())
    );

    // --- businesses: legal representatives must be living citizens --------------------------
    let port = bid(1);
    let bank = bid(2);
    env.refused(
        Command::RegisterBusiness(register_business(1, enterprise(1), vec![])),
        "NO_LEGAL_REPRESENTATIVE",
    )
    .await;
    env.refused(
        Command::RegisterBusiness(register_business(1, enterprise(1), vec![cid(99)])),
        "RECORD_NOT_FOUND",
    )
    .await;
    env.ok(Command::RegisterBusiness(register_business(
        1,
        enterprise(1),
        vec![an],
    )))
    .await;
    env.refused(
        Command::RegisterBusiness(register_business(3, enterprise(1), vec![chi])),
        "DUPLICATE_KEY",
    )
    .await;
    env.ok(Command::RegisterBusiness(register_business(
        2,
        enterprise(2),
        vec![chi],
    )))
    .await;
    assert_eq!(env.business(port).await.legal_representatives, vec![an]);

    // --- marriage and residence -----------------------------------------------------------
    let married = env
        .ok(Command::RegisterMarriage(RegisterMarriage {
            citizen: an,
            spouse: binh,
            date: date("1985-06-01"),
        }))
        .await;
    assert_eq!(married.changes.len(), 2, "both records in one append");
    assert_eq!(env.citizen(binh).await.marriage.map(|m| m.spouse), Some(an));
    env.refused(
        Command::RegisterMarriage(RegisterMarriage {
            citizen: dung,
            spouse: binh,
            date: date("2020-01-01"),
        }),
        "ALREADY_MARRIED",
    )
    .await;
    let chi_version = env.version(chi).await;
    env.ok(residence(chi, "10507", "12 Lê Lợi", "2024-05-01"))
        .await;
    assert_eq!(env.version(chi).await, chi_version + 1);
    assert_eq!(
        env.citizen(chi)
            .await
            .permanent_residence
            .map(|r| r.address),
        Some("12 Lê Lợi".to_owned())
    );
    env.refused(
        residence(chi, "10507", "x", "1990-01-01"),
        "DATE_BEFORE_BIRTH",
    )
    .await;

    // --- parcels: holders citizens and businesses, shares summing to 1 --------------------
    env.refused(
        Command::RegisterParcel(register_parcel(
            1,
            pkey(1, 1),
            "300",
            shares(&[
                (Holder::Citizen(an), "1/2"),
                (Holder::Business(port), "1/3"),
            ]),
        )),
        "SHARES_NOT_ONE",
    )
    .await;
    env.refused(
        Command::RegisterParcel(register_parcel(1, pkey(1, 1), "300", vec![])),
        "NO_HOLDERS",
    )
    .await;
    env.ok(Command::RegisterParcel(register_parcel(
        1,
        pkey(1, 1),
        "300",
        shares(&[
            (Holder::Citizen(an), "1/2"),
            (Holder::Business(port), "1/2"),
        ]),
    )))
    .await;
    env.refused(
        Command::RegisterParcel(register_parcel(
            9,
            pkey(1, 1),
            "10",
            whole(Holder::Citizen(chi)),
        )),
        "DUPLICATE_KEY",
    )
    .await;
    env.ok(Command::RegisterParcel(register_parcel(
        2,
        pkey(1, 2),
        "450.50",
        whole(Holder::Citizen(chi)),
    )))
    .await;
    env.ok(Command::RegisterParcel(register_parcel(
        3,
        pkey(1, 3),
        "120",
        whole(Holder::Citizen(an)),
    )))
    .await;

    // --- sale ---------------------------------------------------------------------------------
    env.ok(Command::TransferRights(TransferRights {
        parcel: pid(2),
        kind: TransferKind::Sale,
        holders: whole(Holder::Citizen(dung)),
        date: date("2025-02-01"),
        release_mortgages: vec![],
    }))
    .await;
    assert_eq!(
        env.parcel(pid(2)).await.holders,
        whole(Holder::Citizen(dung))
    );

    // --- mortgage: no transfer unless released in the same operation ------------------------
    env.ok(Command::RegisterMortgage(RegisterMortgage {
        parcel: pid(1),
        mortgage: mortgage("HĐ-01", bank),
    }))
    .await;
    let sell_mortgaged = |release: Vec<&str>| {
        Command::TransferRights(TransferRights {
            parcel: pid(1),
            kind: TransferKind::Sale,
            holders: whole(Holder::Citizen(chi)),
            date: date("2025-03-01"),
            release_mortgages: release.into_iter().map(str::to_owned).collect(),
        })
    };
    env.refused(sell_mortgaged(vec![]), "PARCEL_MORTGAGED")
        .await;
    env.refused(sell_mortgaged(vec!["HĐ-99"]), "MORTGAGE_NOT_FOUND")
        .await;
    env.refused(
        Command::SplitParcel(SplitParcel {
            source: pid(1),
            parts: vec![
                NewParcel {
                    parcel: pid(10),
                    key: pkey(1, 10),
                    area: "100".parse().unwrap(),
                },
                NewParcel {
                    parcel: pid(11),
                    key: pkey(1, 11),
                    area: "200".parse().unwrap(),
                },
            ],
            date: date("2025-03-01"),
        }),
        "PARCEL_MORTGAGED",
    )
    .await;
    let sold = env.ok(sell_mortgaged(vec!["HĐ-01"])).await;
    assert_eq!(sold.changes[0].events, 2, "release and transfer together");
    let p1 = env.parcel(pid(1)).await;
    assert!(p1.mortgages.is_empty());
    assert_eq!(p1.holders, whole(Holder::Citizen(chi)));

    // --- split --------------------------------------------------------------------------------
    let split = |a: &str, b: &str| {
        Command::SplitParcel(SplitParcel {
            source: pid(2),
            parts: vec![
                NewParcel {
                    parcel: pid(20),
                    key: pkey(2, 1),
                    area: a.parse().unwrap(),
                },
                NewParcel {
                    parcel: pid(21),
                    key: pkey(2, 2),
                    area: b.parse().unwrap(),
                },
            ],
            date: date("2025-04-01"),
        })
    };
    env.refused(split("200", "200"), "AREA_MISMATCH").await;
    let done = env.ok(split("150.25", "300.25")).await;
    assert_eq!(done.changes.len(), 5, "source, two parts, two keys");
    assert!(!env.parcel(pid(2)).await.is_active());
    assert_eq!(
        env.parcel(pid(21)).await.holders,
        whole(Holder::Citizen(dung))
    );
    env.refused(
        Command::TransferRights(TransferRights {
            parcel: pid(2),
            kind: TransferKind::Gift,
            holders: whole(Holder::Citizen(chi)),
            date: date("2025-05-01"),
            release_mortgages: vec![],
        }),
        "RECORD_RETIRED",
    )
    .await;

    // --- birth date correction: proposed by a steward, approved by another supervisor -------
    let propose = Command::ProposeCorrection(ProposeCorrection {
        record: chi.into(),
        correction: corr(1),
        changes: vec![fc("birth_date", json!("1995"), json!("1995-03-14"))],
        reason: "sai ngày sinh".to_owned(),
        legal_basis: basis(),
    });
    env.refused(
        Command::CorrectRecord(CorrectRecord {
            record: chi.into(),
            changes: vec![fc("birth_date", json!("1995"), json!("1995-03-14"))],
            reason: "sai ngày sinh".to_owned(),
            legal_basis: basis(),
        }),
        "PROTECTED_FIELD",
    )
    .await;
    env.ok(propose.clone()).await;
    env.refused(propose, "CORRECTION_EXISTS").await;
    assert_eq!(
        env.citizen(chi).await.birth_date,
        "1995".parse().unwrap(),
        "nothing changes before approval"
    );
    let approve = Command::ApproveCorrection(ApproveCorrection {
        record: chi.into(),
        correction: corr(1),
    });
    let self_review = Actor {
        id: steward().id,
        role: StewardRole::Supervisor,
    };
    env.refused_by(approve.clone(), &self_review, "SELF_REVIEW")
        .await;
    env.refused_by(approve.clone(), &steward2(), "NOT_SUPERVISOR")
        .await;
    env.ok_by(approve.clone(), &supervisor()).await;
    let chi_now = env.citizen(chi).await;
    assert_eq!(chi_now.birth_date, "1995-03-14".parse().unwrap());
    assert_eq!(
        chi_now.corrections[&corr(1)].status,
        CorrectionStatus::Approved {
            by: supervisor().id
        }
    );
    env.refused_by(approve, &supervisor(), "CORRECTION_CLOSED")
        .await;

    // A PIN correction: approval reads neither key up front; decide asks for both (NOT_LOADED)
    // and the handler loads them, then releases the old and claims the new in one append.
    let old_pin = env.citizen(em).await.pin;
    let new_pin = pin(606, Sex::Female, 2000);
    env.ok(Command::ProposeCorrection(ProposeCorrection {
        record: em.into(),
        correction: corr(2),
        changes: vec![fc(
            "pin",
            json!(old_pin.to_string()),
            json!(new_pin.to_string()),
        )],
        reason: "sai số định danh".to_owned(),
        legal_basis: basis(),
    }))
    .await;
    let pin_approval = Command::ApproveCorrection(ApproveCorrection {
        record: em.into(),
        correction: corr(2),
    });
    assert!(pin_approval.reads().keys.is_empty());
    let moved = env.ok_by(pin_approval, &supervisor()).await;
    assert_eq!(moved.changes.len(), 3, "record, old key, new key");
    assert_eq!(
        env.registry
            .load_key(&NaturalKey::Pin(old_pin))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        env.registry
            .load_key(&NaturalKey::Pin(new_pin))
            .await
            .unwrap(),
        Some(em.into())
    );

    // --- merge duplicate citizens -------------------------------------------------------------
    let merge = Command::MergeCitizens(MergeCitizens {
        survivor: dung,
        duplicate: dung_dup,
        reason: "trùng hồ sơ".to_owned(),
        legal_basis: basis(),
    });
    env.refused(
        Command::MergeCitizens(MergeCitizens {
            survivor: dung,
            duplicate: dung,
            reason: "x".to_owned(),
            legal_basis: basis(),
        }),
        "SAME_CITIZEN",
    )
    .await;
    env.ok(merge.clone()).await;
    assert_eq!(env.citizen(dung_dup).await.merged_into, Some(dung));
    assert_eq!(env.citizen(dung).await.absorbed, vec![dung_dup]);
    env.refused(merge, "RECORD_MERGED").await;
    env.refused(
        residence(dung_dup, "10507", "x", "2025-01-01"),
        "RECORD_MERGED",
    )
    .await;
    env.refused(
        Command::RegisterBusiness(register_business(3, enterprise(3), vec![dung_dup])),
        "RECORD_MERGED",
    )
    .await;

    // --- death: the spouse is widowed through NOT_LOADED, the dead represent no one -----------
    let before_death = env.head().await.expect("head").position;
    let death = Command::RecordDeath(RecordDeath {
        citizen: an,
        date: "2025-06".parse().unwrap(),
    });
    assert_eq!(
        death.reads().records.len(),
        1,
        "the spouse is found in state"
    );
    let died = env.ok(death.clone()).await;
    assert_eq!(died.changes.len(), 2, "deceased and widowed spouse");
    assert!(env.citizen(an).await.is_deceased());
    assert_eq!(env.citizen(binh).await.marriage, None);
    env.refused(death, "CITIZEN_DECEASED").await;
    env.refused(
        Command::RegisterBusiness(register_business(3, enterprise(3), vec![an])),
        "DECEASED_REPRESENTATIVE",
    )
    .await;
    env.refused(
        Command::ChangeLegalRepresentatives(ChangeLegalRepresentatives {
            business: bank,
            legal_representatives: vec![an],
            date: date("2025-07-01"),
        }),
        "DECEASED_REPRESENTATIVE",
    )
    .await;
    env.refused(
        Command::TransferRights(TransferRights {
            parcel: pid(20),
            kind: TransferKind::Gift,
            holders: whole(Holder::Citizen(an)),
            date: date("2025-07-01"),
            release_mortgages: vec![],
        }),
        "DECEASED_HOLDER",
    )
    .await;

    // --- inheritance ----------------------------------------------------------------------
    env.ok(Command::TransferRights(TransferRights {
        parcel: pid(3),
        kind: TransferKind::Inheritance,
        holders: shares(&[(Holder::Citizen(binh), "1/2"), (Holder::Citizen(em), "1/2")]),
        date: date("2025-08-01"),
        release_mortgages: vec![],
    }))
    .await;
    assert_eq!(env.parcel(pid(3)).await.holders.len(), 2);

    // --- audit views ----------------------------------------------------------------------
    let as_of = env
        .registry
        .load_record_as_of(an.into(), before_death)
        .await
        .unwrap()
        .expect("existed");
    match &as_of.record {
        Record::Citizen(c) => assert!(!c.is_deceased(), "alive as of before the death"),
        other => panic!("{other:?}"),
    }
    assert!(as_of.last_position <= before_death);
    assert_eq!(
        env.registry
            .load_record_as_of(pid(21).into(), before_death)
            .await
            .unwrap()
            .map(|l| l.version),
        Some(0)
    );
    assert_eq!(
        env.registry.load_record_as_of(an.into(), 0).await.unwrap(),
        None,
        "position 0 is An's key claim, the record comes after it"
    );
    let history = env.registry.history(an.into()).await.unwrap();
    let types: Vec<&str> = history.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        ["CitizenRegistered", "MarriageRegistered", "CitizenDeceased"]
    );

    // --- the whole log, replayed from scratch ---------------------------------------------
    let events = env.check_replay().await;
    assert!(events > 50, "{events} events");
}

#[tokio::test]
async fn every_event_carries_the_request_context() {
    let env = open();
    let command_id = Uuid::now_v7();
    let correlation = Uuid::now_v7();
    let request = CommandRequest {
        command_id,
        actor: steward(),
        context: CommandContext {
            reason: Some("khai sinh".to_owned()),
            legal_basis: Some("12/TP-HT ngày 02/01/2025".to_owned()),
            end_user: Some("officer-42".to_owned()),
            case: Some("HS-2025-1".to_owned()),
            correlation_id: Some(correlation),
            effective_at: None,
        },
        command: Command::RegisterCitizen(register_citizen(1, Sex::Male, 1990)),
        expected: None,
    };
    let done: Executed = env.registry.execute(request).await.unwrap();
    let all = read_all(env.log.as_ref()).await;
    assert_eq!(all.len(), 3);
    assert_eq!(
        (done.first_position, done.last_position),
        (Some(0), Some(2))
    );
    let expected = Metadata {
        actor: Some("steward-lan".to_owned()),
        role: Some("steward".to_owned()),
        reason: Some("khai sinh".to_owned()),
        legal_basis: Some("12/TP-HT ngày 02/01/2025".to_owned()),
        correlation_id: Some(correlation),
        causation_id: Some(command_id),
        end_user: Some("officer-42".to_owned()),
        case_id: Some("HS-2025-1".to_owned()),
        effective_at: None,
    };
    for event in &all {
        assert_eq!(event.metadata(), expected, "{}", event.event_type);
    }
    assert_eq!(
        all.last().unwrap().stream_id.as_str(),
        format!("command-{command_id}")
    );
}
