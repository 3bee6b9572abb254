//! Scenario and property tests of `decide`/`evolve` through the public API,
//! driven the way a handler drives them (reads → snapshot → decide → append).

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::business::*;
use crate::citizen::*;
use crate::command::*;
use crate::parcel::*;
use crate::stewardship::CorrectionStatus;
use crate::*;

// --- a tiny in-memory handler ------------------------------------------------

#[derive(Default)]
struct World {
    streams: HashMap<Target, Vec<Event>>,
    /// States folded incrementally as events are appended.
    records: HashMap<RecordId, Record>,
    keys: HashMap<NaturalKey, KeyClaim>,
}

impl World {
    fn events(&self, t: Target) -> &[Event] {
        self.streams.get(&t).map(Vec::as_slice).unwrap_or(&[])
    }

    fn snapshot(&self, reads: &Reads, extra: &[Target]) -> Snapshot {
        let mut s = Snapshot::new();
        let targets = reads
            .records
            .iter()
            .map(|r| Target::Record(*r))
            .chain(reads.keys.iter().map(|k| Target::Key(*k)))
            .chain(extra.iter().copied());
        for t in targets {
            match t {
                Target::Record(id) => s.insert_record(id, replay(self.events(t)).unwrap()),
                Target::Key(k) => s.insert_key(k, replay_key(self.events(t)).unwrap()),
            }
        }
        s
    }

    fn run(&mut self, command: &Command, actor: &Actor) -> Result<Decision, DomainError> {
        let mut extra = Vec::new();
        loop {
            let snapshot = self.snapshot(&command.reads(), &extra);
            match decide(&snapshot, command, actor) {
                Err(DomainError::NotLoaded(t)) => {
                    assert!(!extra.contains(&t), "decide asked twice for {t}");
                    extra.push(t);
                }
                Err(e) => return Err(e),
                Ok(d) => {
                    for change in &d.changes {
                        for event in &change.events {
                            match change.target {
                                Target::Record(id) => {
                                    let next = evolve(self.records.remove(&id), event).unwrap();
                                    self.records.insert(id, next);
                                }
                                Target::Key(k) => {
                                    let next = evolve_key(self.keys.remove(&k), event).unwrap();
                                    self.keys.insert(k, next);
                                }
                            }
                        }
                        self.streams
                            .entry(change.target)
                            .or_default()
                            .extend(change.events.clone());
                    }
                    return Ok(d);
                }
            }
        }
    }

    fn ok(&mut self, command: Command) -> Decision {
        match self.run(&command, &steward()) {
            Ok(d) => d,
            Err(e) => panic!("{} refused: {e:?}", command.command_type()),
        }
    }

    /// Asserts a refusal with `code` and that nothing was written.
    fn refused(&mut self, command: Command, code: &str) {
        self.refused_by(command, &steward(), code);
    }

    fn refused_by(&mut self, command: Command, actor: &Actor, code: &str) {
        let before: usize = self.streams.values().map(Vec::len).sum();
        match self.run(&command, actor) {
            Err(e) => assert_eq!(e.code(), code, "{e:?}"),
            Ok(d) => panic!(
                "{} accepted, expected {code}: {d:?}",
                command.command_type()
            ),
        }
        assert_eq!(before, self.streams.values().map(Vec::len).sum::<usize>());
    }

    fn record(&self, id: impl Into<RecordId>) -> Record {
        replay(self.events(Target::Record(id.into())))
            .unwrap()
            .unwrap()
    }
    fn citizen(&self, id: CitizenId) -> Citizen {
        match self.record(id) {
            Record::Citizen(c) => c,
            other => panic!("{other:?}"),
        }
    }
    fn business(&self, id: BusinessId) -> Business {
        match self.record(id) {
            Record::Business(b) => b,
            other => panic!("{other:?}"),
        }
    }
    fn parcel(&self, id: ParcelId) -> LandParcel {
        match self.record(id) {
            Record::Parcel(p) => p,
            other => panic!("{other:?}"),
        }
    }
    fn key(&self, key: NaturalKey) -> KeyClaim {
        replay_key(self.events(Target::Key(key))).unwrap()
    }
}

// --- fixtures ---------------------------------------------------------------

fn steward() -> Actor {
    Actor {
        id: "steward-lan".to_owned(),
        role: StewardRole::Steward,
    }
}
fn steward2() -> Actor {
    Actor {
        id: "steward-minh".to_owned(),
        role: StewardRole::Steward,
    }
}
fn supervisor() -> Actor {
    Actor {
        id: "supervisor-hoa".to_owned(),
        role: StewardRole::Supervisor,
    }
}

fn cid(n: u128) -> CitizenId {
    CitizenId(Uuid::from_u128(0xC000 + n))
}
fn bid(n: u128) -> BusinessId {
    BusinessId(Uuid::from_u128(0xB000 + n))
}
fn pid(n: u128) -> ParcelId {
    ParcelId(Uuid::from_u128(0xA000 + n))
}
fn corr(n: u128) -> CorrectionId {
    CorrectionId(Uuid::from_u128(0xD000 + n))
}
fn date(s: &str) -> Date {
    s.parse().unwrap()
}
fn unit(s: &str) -> AdminUnitCode {
    s.parse().unwrap()
}
fn basis() -> LegalBasis {
    LegalBasis {
        document_number: "123/QĐ-UBND".to_owned(),
        document_date: date("2025-08-01"),
    }
}

/// A valid Hải Phòng PIN encoding `sex` and `year`.
fn pin(serial: u32, sex: Sex, year: u16) -> PersonalIdNumber {
    let g = (year / 100 - 19) * 2 + u16::from(sex == Sex::Female);
    format!("031{g}{:02}{serial:06}", year % 100)
        .parse()
        .unwrap()
}

/// A valid (strict) Hải Phòng enterprise code derived from `n`.
fn enterprise(n: u32) -> EnterpriseCode {
    (n..)
        .find_map(|m| {
            let nine: String = format!("02{:07}", m + 1);
            let digits: Vec<u8> = nine.bytes().map(|b| b - b'0').collect();
            match check_digit(&digits.clone().try_into().unwrap()) {
                CheckDigit::Digit(d) => Some(format!("{nine}{d}").parse().unwrap()),
                CheckDigit::None => None,
            }
        })
        .unwrap()
}

fn register_citizen(n: u128, sex: Sex, year: u16) -> RegisterCitizen {
    RegisterCitizen {
        citizen: cid(n),
        pin: pin(u32::try_from(n).unwrap(), sex, year),
        name: PersonName::new("Nguyễn", "Thị", &format!("Hòa {n}")).unwrap(),
        sex,
        birth_date: PartialDate::year_only(u32::from(year)).unwrap(),
        birth_place: unit("11311"),
        father: None,
        mother: None,
        origin: RegistrationOrigin::Registration,
    }
}

fn add_citizen(w: &mut World, n: u128, sex: Sex, year: u16) -> CitizenId {
    w.ok(Command::RegisterCitizen(register_citizen(n, sex, year)));
    cid(n)
}

fn names(vi: &str) -> BusinessNames {
    BusinessNames {
        vietnamese: vi.to_owned(),
        english: None,
        abbreviated: None,
    }
}

fn office() -> Address {
    Address {
        commune: unit("11311"),
        street: "1 Điện Biên Phủ".to_owned(),
    }
}

fn register_business(n: u128, code: EnterpriseCode, reps: Vec<CitizenId>) -> RegisterBusiness {
    RegisterBusiness {
        business: bid(n),
        code,
        names: names(&format!("Công ty TNHH Hải Cảng {n}")),
        head_office: office(),
        legal_representatives: reps,
        charter_capital: Vnd(5_000_000_000),
        business_lines: vec!["5210".parse().unwrap()],
        registration_date: date("2024-03-01"),
        origin: RegistrationOrigin::Registration,
    }
}

fn pkey(sheet: u32, number: u32) -> ParcelKey {
    ParcelKey::new(unit("11311"), unit("11311"), sheet, number).unwrap()
}

fn whole(holder: Holder) -> Vec<Holding> {
    vec![Holding {
        holder,
        share: Share::WHOLE,
    }]
}

fn shares(holders: &[Holder], each: &str) -> Vec<Holding> {
    holders
        .iter()
        .map(|h| Holding {
            holder: *h,
            share: each.parse().unwrap(),
        })
        .collect()
}

fn register_parcel(n: u128, key: ParcelKey, area: &str, holders: Vec<Holding>) -> RegisterParcel {
    RegisterParcel {
        parcel: pid(n),
        key,
        national_parcel_id: None,
        area: area.parse().unwrap(),
        land_use: vec!["ODT".parse().unwrap()],
        address: "Số 5 Lạch Tray".to_owned(),
        geometry: None,
        holders,
    }
}

fn mortgage(contract: &str, creditor: BusinessId) -> Mortgage {
    Mortgage {
        contract_number: contract.to_owned(),
        creditor,
        amount: Vnd(1_000_000_000),
        registered_on: date("2025-01-10"),
    }
}

fn fc(field: &str, old: Value, new: Value) -> FieldChange {
    FieldChange {
        field: field.to_owned(),
        old,
        new,
    }
}

// --- citizens ------------------------------------------------------------------

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

// --- businesses ------------------------------------------------------------------

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

// --- parcels -------------------------------------------------------------------------

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
    let mut uneven = shares(&[ha], "1/2");
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
            shares(&[ha, ha], "1/2"),
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
        shares(&[ha, hb], "1/2"),
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
    let owners = shares(&[Holder::Citizen(a), Holder::Citizen(b)], "1/2");
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

// --- stewardship ----------------------------------------------------------------------

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
    let bad_holders =
        serde_json::to_value(shares(&[Holder::Citizen(a), Holder::Citizen(b)], "1/3")).unwrap();
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
    let good =
        serde_json::to_value(shares(&[Holder::Citizen(a), Holder::Citizen(b)], "1/2")).unwrap();
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

// --- handler protocol, serde, evolve -------------------------------------------------

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

// --- property tests -----------------------------------------------------------------

const CITIZENS: u128 = 5;
const BUSINESSES: u128 = 2;
const PARCELS: u128 = 3;

#[derive(Debug, Clone)]
enum Op {
    Marry(u128, u128),
    Divorce(u128, u128),
    Die(u128),
    Merge(u128, u128),
    Reps(u128, Vec<u128>),
    Dissolve(u128),
    Transfer {
        parcel: u128,
        holders: Vec<u128>,
        wrong_sum: bool,
        release: bool,
    },
    Mortgage(u128, u128),
    Release(u128),
    Split(u128, u32),
    Retire(u128),
    ProposeArea(u128, u128),
    Approve(u128, u128, bool),
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..CITIZENS;
    let p = 0..PARCELS;
    let b = 0..BUSINESSES;
    prop_oneof![
        (c.clone(), c.clone()).prop_map(|(x, y)| Op::Marry(x, y)),
        (c.clone(), c.clone()).prop_map(|(x, y)| Op::Divorce(x, y)),
        c.clone().prop_map(Op::Die),
        (c.clone(), c.clone()).prop_map(|(x, y)| Op::Merge(x, y)),
        (b.clone(), proptest::collection::vec(c.clone(), 0..3)).prop_map(|(x, r)| Op::Reps(x, r)),
        b.clone().prop_map(Op::Dissolve),
        (
            p.clone(),
            proptest::collection::vec(0..CITIZENS + BUSINESSES, 0..4),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(parcel, holders, wrong_sum, release)| Op::Transfer {
                parcel,
                holders,
                wrong_sum,
                release
            }),
        (p.clone(), b.clone()).prop_map(|(x, y)| Op::Mortgage(x, y)),
        p.clone().prop_map(Op::Release),
        (p.clone(), 1u32..1000).prop_map(|(x, n)| Op::Split(x, n)),
        p.clone().prop_map(Op::Retire),
        (p.clone(), 0u128..2).prop_map(|(x, n)| Op::ProposeArea(x, n)),
        (p, 0u128..2, any::<bool>()).prop_map(|(x, n, s)| Op::Approve(x, n, s)),
    ]
}

fn holder(n: u128) -> Holder {
    if n < CITIZENS {
        Holder::Citizen(cid(n))
    } else {
        Holder::Business(bid(n - CITIZENS))
    }
}

/// A world with citizens, businesses and parcels to play with.
fn seeded() -> World {
    let mut w = World::default();
    for n in 0..CITIZENS {
        add_citizen(
            &mut w,
            n,
            if n % 2 == 0 { Sex::Male } else { Sex::Female },
            1960 + u16::try_from(n).unwrap(),
        );
    }
    for n in 0..BUSINESSES {
        w.ok(Command::RegisterBusiness(register_business(
            n,
            enterprise(u32::try_from(n).unwrap()),
            vec![cid(n)],
        )));
    }
    for n in 0..PARCELS {
        let number = u32::try_from(n).unwrap() + 1;
        w.ok(Command::RegisterParcel(register_parcel(
            n,
            pkey(1, number),
            "1000",
            whole(Holder::Citizen(cid(n))),
        )));
    }
    w
}

fn to_command(w: &World, op: &Op, step: usize) -> (Command, Actor) {
    let step128 = u128::try_from(step).unwrap_or(0);
    let cmd = match op.clone() {
        Op::Marry(x, y) => Command::RegisterMarriage(RegisterMarriage {
            citizen: cid(x),
            spouse: cid(y),
            date: date("2024-01-01"),
        }),
        Op::Divorce(x, y) => Command::RegisterDivorce(RegisterDivorce {
            citizen: cid(x),
            spouse: cid(y),
            date: date("2024-06-01"),
        }),
        Op::Die(x) => Command::RecordDeath(RecordDeath {
            citizen: cid(x),
            date: "2024-12".parse().unwrap(),
        }),
        Op::Merge(x, y) => Command::MergeCitizens(MergeCitizens {
            survivor: cid(x),
            duplicate: cid(y),
            reason: "trùng".to_owned(),
            legal_basis: basis(),
        }),
        Op::Reps(b, reps) => Command::ChangeLegalRepresentatives(ChangeLegalRepresentatives {
            business: bid(b),
            legal_representatives: reps.into_iter().map(cid).collect(),
            date: date("2024-02-01"),
        }),
        Op::Dissolve(b) => Command::DissolveBusiness(DissolveBusiness {
            business: bid(b),
            on: date("2025-01-01"),
        }),
        Op::Transfer {
            parcel,
            holders,
            wrong_sum,
            release,
        } => {
            let n = u128::try_from(holders.len()).unwrap_or(1).max(1);
            let each = if wrong_sum {
                Share::new(1, n + 1).unwrap()
            } else {
                Share::new(1, n).unwrap()
            };
            let release_mortgages = match (&w.records.get(&pid(parcel).into()), release) {
                (Some(Record::Parcel(p)), true) => p
                    .mortgages
                    .iter()
                    .map(|m| m.contract_number.clone())
                    .collect(),
                _ => vec![],
            };
            Command::TransferRights(TransferRights {
                parcel: pid(parcel),
                kind: TransferKind::Sale,
                holders: holders
                    .into_iter()
                    .map(|h| Holding {
                        holder: holder(h),
                        share: each,
                    })
                    .collect(),
                date: date("2025-03-01"),
                release_mortgages,
            })
        }
        Op::Mortgage(p, b) => Command::RegisterMortgage(RegisterMortgage {
            parcel: pid(p),
            mortgage: mortgage(&format!("HĐ-{step}"), bid(b)),
        }),
        Op::Release(p) => {
            let contract = match w.records.get(&pid(p).into()) {
                Some(Record::Parcel(parcel)) => {
                    parcel.mortgages.first().map(|m| m.contract_number.clone())
                }
                _ => None,
            };
            Command::ReleaseMortgage(ReleaseMortgage {
                parcel: pid(p),
                contract_number: contract.unwrap_or_else(|| "none".to_owned()),
                date: date("2025-04-01"),
            })
        }
        Op::Split(p, cut) => {
            let area = match w.records.get(&pid(p).into()) {
                Some(Record::Parcel(parcel)) => parcel.area.hundredths(),
                _ => 100_000,
            };
            let first = u64::from(cut) * area / 1000;
            let base = 100 + u32::try_from(step).unwrap_or(0) * 2;
            Command::SplitParcel(SplitParcel {
                source: pid(p),
                parts: vec![
                    NewParcel {
                        parcel: pid(100 + step128 * 2),
                        key: pkey(2, base),
                        area: Area::from_hundredths(first),
                    },
                    NewParcel {
                        parcel: pid(101 + step128 * 2),
                        key: pkey(2, base + 1),
                        area: Area::from_hundredths(area - first),
                    },
                ],
                date: date("2025-05-01"),
            })
        }
        Op::Retire(p) => Command::RetireParcel(RetireParcel {
            parcel: pid(p),
            date: date("2025-06-01"),
            reason: "thu hồi".to_owned(),
        }),
        Op::ProposeArea(p, n) => {
            let current = match w.records.get(&pid(p).into()) {
                Some(Record::Parcel(parcel)) => parcel.area,
                _ => Area::ZERO,
            };
            Command::ProposeCorrection(ProposeCorrection {
                record: pid(p).into(),
                correction: corr(n),
                changes: vec![fc("area", json!(current.to_string()), json!("1234.5"))],
                reason: "đo lại".to_owned(),
                legal_basis: basis(),
            })
        }
        Op::Approve(p, n, self_review) => {
            let actor = if self_review {
                Actor {
                    id: steward().id,
                    role: StewardRole::Supervisor,
                }
            } else {
                supervisor()
            };
            return (
                Command::ApproveCorrection(ApproveCorrection {
                    record: pid(p).into(),
                    correction: corr(n),
                }),
                actor,
            );
        }
    };
    (cmd, steward())
}

/// Checks one accepted decision against the state it was decided on.
fn check_decision(before: &World, d: &Decision) {
    for change in &d.changes {
        let Target::Record(id) = change.target else {
            continue;
        };
        let prior = before.records.get(&id);
        for event in &change.events {
            match (event, prior) {
                (Event::RightsTransferred { .. }, Some(Record::Parcel(p))) => {
                    assert!(p.is_active(), "transfer on retired parcel");
                }
                (
                    Event::LegalRepresentativesChanged {
                        legal_representatives,
                        ..
                    },
                    _,
                )
                | (
                    Event::BusinessRegistered {
                        legal_representatives,
                        ..
                    },
                    _,
                ) => {
                    for rep in legal_representatives {
                        match before.records.get(&(*rep).into()) {
                            Some(Record::Citizen(c)) => {
                                assert!(
                                    !c.is_deceased() && c.merged_into.is_none(),
                                    "ineligible representative"
                                );
                            }
                            other => panic!("representative missing: {other:?}"),
                        }
                    }
                }
                (
                    Event::CorrectionApproved {
                        correction,
                        supervisor,
                    },
                    Some(record),
                ) => {
                    let proposer = &record.corrections()[correction].proposed_by;
                    assert_ne!(proposer, supervisor, "four-eyes violated");
                }
                _ => {}
            }
            if let Some(Record::Citizen(c)) = prior {
                assert!(
                    c.merged_into.is_none(),
                    "event on a merged citizen: {event:?}"
                );
            }
        }
    }
}

/// Invariants of the whole world.
fn check_world(w: &World) {
    let mut held: HashMap<NaturalKey, RecordId> = HashMap::new();
    for (key, claim) in &w.keys {
        if let Some(holder) = claim.holder {
            held.insert(*key, holder);
        }
    }
    for (id, record) in &w.records {
        // Every record holds its own key.
        if let Some(key) = record.natural_key() {
            assert_eq!(held.get(&key), Some(id), "{key} not held by {id}");
        }
        if let Record::Parcel(p) = record {
            let sum = Share::sum(p.holders.iter().map(|h| &h.share)).unwrap();
            assert!(sum.is_one(), "shares of {id} sum to {sum}");
            if !p.is_active() {
                assert!(p.mortgages.is_empty(), "retired parcel still mortgaged");
            }
        }
        if let Record::Citizen(c) = record
            && let Some(m) = &c.marriage
            && let Some(Record::Citizen(spouse)) = w.records.get(&m.spouse.into())
            && c.merged_into.is_none()
            && !c.is_deceased()
            && spouse.merged_into.is_none()
        {
            // A living citizen's marriage is mirrored on a living spouse (a
            // deceased citizen keeps the marriage they died in).
            assert!(!spouse.is_deceased(), "married to a deceased spouse");
            assert_eq!(
                spouse.marriage.as_ref().map(|s| s.spouse),
                Some(c.id),
                "one-sided marriage"
            );
        }
    }
    // Each key is held by at most one record (a map cannot say otherwise, so
    // check the reverse: no two records claim the same key).
    let mut seen = std::collections::HashSet::new();
    for record in w.records.values() {
        if let Some(key) = record.natural_key() {
            assert!(seen.insert(key), "two records with {key}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_command_sequences_keep_invariants(ops in proptest::collection::vec(op(), 1..40)) {
        let mut w = seeded();
        for (step, op) in ops.iter().enumerate() {
            let (cmd, actor) = to_command(&w, op, step);
            let before_records = w.records.clone();
            let before = World { streams: HashMap::new(), records: before_records, keys: w.keys.clone() };
            if let Ok(d) = w.run(&cmd, &actor) {
                check_decision(&before, &d);
                // Every emitted event survives storage: JSON round trip and upcast.
                for change in &d.changes {
                    for e in &change.events {
                        let json = e.to_json().unwrap();
                        prop_assert_eq!(json["type"].as_str(), Some(e.event_type()));
                        prop_assert_eq!(&upcast(e.event_type(), e.schema_version(), &json).unwrap(), e);
                    }
                }
            }
            check_world(&w);
        }
        // Replaying each stream from scratch equals the incremental state.
        for (target, events) in &w.streams {
            match target {
                Target::Record(id) => {
                    let replayed = replay(events).unwrap();
                    prop_assert_eq!(replayed.as_ref(), w.records.get(id));
                    // A state survives its JSON form (read models store it that way).
                    if let Some(record) = &replayed {
                        let json = serde_json::to_string(record).unwrap();
                        let back: Record = serde_json::from_str(&json).unwrap();
                        prop_assert_eq!(&back, record);
                    }
                }
                Target::Key(k) => prop_assert_eq!(&replay_key(events).unwrap(), w.keys.get(k).unwrap()),
            }
        }
    }
}

mod input;
