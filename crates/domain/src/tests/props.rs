//! Property tests: random command sequences keep every invariant.

use super::*;

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
        Op::Approve(p, n, self_review) => return approval(pid(p).into(), n, self_review),
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

/// Valid time agrees with `Command::refuses_effective_at`: a command that may carry an
/// `effective_at` emits no event whose data states another date (the given one is never
/// overridden), and one refused because its data states the date emits an event that says so.
fn check_valid_time(cmd: &Command, d: &Decision) {
    use crate::valid_time::{ValidFrom, valid_from};
    let given: crate::Date = "2001-02-03".parse().unwrap();
    let recorded: crate::Date = "2026-11-30".parse().unwrap();
    let bases: Vec<ValidFrom> = d
        .changes
        .iter()
        .filter(|c| matches!(c.target, Target::Record(_)))
        .flat_map(|c| c.events.iter())
        .map(|e| valid_from(e, Some(given), recorded))
        .collect();
    let stated = |v: &ValidFrom| matches!(v, ValidFrom::Stated { .. });
    match cmd.refuses_effective_at() {
        None => assert!(
            !bases.iter().any(stated),
            "{} takes effective_at but an event states its own date: {bases:?}",
            cmd.command_type()
        ),
        Some(why) if why.starts_with("its date is") => assert!(
            bases.iter().any(stated),
            "{} states its date, yet no event does: {bases:?}",
            cmd.command_type()
        ),
        Some(_) => {}
    }
}

/// The valid axis of every stream `decide` can produce: its fold never fails (reordering by
/// date is a fold `evolve` takes), a field's timeline agrees with the state on each period's
/// first day, and where the dates run in recorded order the state on the last day is the
/// recorded-order state.
fn check_valid_axis(events: &[Event], replayed: Option<&Record>) {
    use crate::valid_time::{Dated, placements, state_valid_at, timeline, timeline_fields};
    let recorded: crate::Date = "2026-11-30".parse().unwrap();
    let dated: Vec<Dated<'_>> = events
        .iter()
        .map(|event| Dated {
            event,
            effective_at: None,
            recorded,
        })
        .collect();
    let end: crate::Date = "9999-12-31".parse().unwrap();
    let on_last_day = state_valid_at(&dated, end).unwrap();
    let dates: Vec<crate::Date> = placements(&dated)
        .unwrap()
        .into_iter()
        .flatten()
        .map(|k| k.date)
        .collect();
    if dates.windows(2).all(|w| w[0] <= w[1]) {
        assert_eq!(
            on_last_day.as_ref(),
            replayed,
            "dates in recorded order, yet the valid fold differs"
        );
    }
    let Some(kind) = replayed.map(Record::kind) else {
        return;
    };
    for field in timeline_fields(kind) {
        for period in timeline(&dated, field).unwrap() {
            let state = state_valid_at(&dated, period.from)
                .unwrap()
                .expect("exists in its own period");
            assert_eq!(
                state.field_or_fact(field).unwrap(),
                period.value,
                "{field} from {}",
                period.from
            );
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
                check_valid_time(&cmd, &d);
                // Every emitted event survives storage: JSON round trip and upcast.
                for change in &d.changes {
                    for e in &change.events {
                        let json = e.to_json().unwrap();
                        prop_assert_eq!(json["type"].as_str(), Some(e.event_type()));
                        prop_assert_eq!(&upcast(e.event_type(), e.schema_version(), &json).unwrap(), e);
                        let bytes = serde_json::to_vec(e).unwrap();
                        prop_assert_eq!(&upcast_slice(e.event_type(), e.schema_version(), &bytes).unwrap(), e);
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
                    check_valid_axis(events, replayed.as_ref());
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
