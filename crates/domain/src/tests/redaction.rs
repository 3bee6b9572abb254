//! Erasure and restriction: four-eyes redaction of one event, its replacement on replay, and the
//! restriction flag. Driven with hand-built snapshots, since a redaction names a log position.

use super::*;
use crate::redaction::*;

const HASH: &str = "00ab";

fn order() -> LegalBasis {
    LegalBasis {
        document_number: "15/2026/QĐ-TA".to_owned(),
        document_date: date("2026-03-02"),
    }
}

fn other_supervisor() -> Actor {
    Actor {
        id: "supervisor-tuan".to_owned(),
        role: StewardRole::Supervisor,
    }
}

/// A citizen's stream: registration, then a residence at a personal address (position 1).
fn stream() -> (CitizenId, Vec<Event>) {
    let a = cid(1);
    let registered = citizen_registered(register_citizen(1, Sex::Female, 1990));
    let moved = Event::ResidenceChanged {
        kind: crate::citizen::state::ResidenceKind::Permanent,
        commune: unit(HOME_UNIT),
        address: "12 Lý Thái Tổ".to_owned(),
        since: date("2020-01-01"),
    };
    (a, vec![registered, moved])
}

fn snapshot(a: CitizenId, events: &[Event], logged: Option<(u64, LoggedEvent)>) -> Snapshot {
    let mut s = Snapshot::new().with_record(a.into(), replay(events).unwrap());
    if let Some((position, event)) = logged {
        s.insert_logged(position, event);
    }
    s
}

fn logged(a: CitizenId, event: Option<Event>) -> LoggedEvent {
    LoggedEvent {
        stream: Target::Record(a.into()).stream_id(),
        event_hash: HASH.to_owned(),
        event,
    }
}

fn propose(a: CitizenId) -> Command {
    Command::ProposeRedaction(ProposeRedaction {
        record: a.into(),
        position: 1,
        reason: "court order to erase the address".to_owned(),
        legal_basis: order(),
    })
}

fn decided(d: Decision) -> Vec<Event> {
    d.changes.into_iter().flat_map(|c| c.events).collect()
}

#[test]
fn a_redaction_is_proposed_then_approved_by_another_supervisor() {
    let (a, mut events) = stream();
    let target = logged(a, Some(events[1].clone()));
    let s = snapshot(a, &events, Some((1, target)));
    let proposed = decided(decide(&s, &propose(a), &steward()).unwrap());
    let Event::RedactionProposed {
        replacement,
        event_hash,
        event_type,
        ..
    } = &proposed[0]
    else {
        panic!("{proposed:?}")
    };
    assert_eq!(
        (event_hash.as_str(), event_type.as_str()),
        (HASH, "ResidenceChanged")
    );
    // The replacement keeps the structure and names the order instead of the address.
    match replacement.as_ref() {
        Event::ResidenceChanged {
            address, commune, ..
        } => {
            assert_eq!(address, "[redacted: 15/2026/QĐ-TA]");
            assert_eq!(*commune, unit(HOME_UNIT));
        }
        other => panic!("{other:?}"),
    }
    events.extend(proposed);
    let s = snapshot(a, &events, None);
    assert_eq!(
        decide(&s, &propose(a), &steward2()).unwrap_err().code(),
        "REDACTION_EXISTS"
    );
    let approve = Command::ApproveRedaction(ApproveRedaction {
        record: a.into(),
        position: 1,
    });
    // Four-eyes: a steward may not approve; nor may the proposer, even as a supervisor.
    assert_eq!(
        decide(&s, &approve, &steward2()).unwrap_err().code(),
        "NOT_SUPERVISOR"
    );
    let proposer_as_supervisor = Actor {
        id: steward().id,
        role: StewardRole::Supervisor,
    };
    assert_eq!(
        decide(&s, &approve, &proposer_as_supervisor)
            .unwrap_err()
            .code(),
        "SELF_REVIEW"
    );
    let approved = decided(decide(&s, &approve, &other_supervisor()).unwrap());
    match &approved[0] {
        Event::RedactionApproved {
            position,
            supervisor,
            steward,
            legal_basis,
            ..
        } => {
            assert_eq!((*position, supervisor.as_str()), (1, "supervisor-tuan"));
            assert_eq!((steward.as_str(), legal_basis), ("steward-lan", &order()));
        }
        other => panic!("{other:?}"),
    }
    events.extend(approved);
    let s = snapshot(a, &events, None);
    assert_eq!(
        decide(&s, &approve, &supervisor()).unwrap_err().code(),
        "REDACTION_CLOSED"
    );
    let state = replay(&events).unwrap().unwrap();
    assert!(matches!(
        state.privacy().redaction(1).unwrap().status,
        RedactionStatus::Approved { .. }
    ));
    // Replay with the replacement in place of the blanked event: the later state shows the
    // order's reference where the address was.
    let replacements = replacements(&events);
    let replayed: Vec<Event> = events
        .iter()
        .enumerate()
        .map(|(p, e)| {
            replacements
                .get(&(p as u64))
                .cloned()
                .unwrap_or_else(|| e.clone())
        })
        .collect();
    let Some(Record::Citizen(c)) = replay(&replayed).unwrap() else {
        panic!("not a citizen")
    };
    let residence = c.permanent_residence.unwrap();
    assert_eq!(residence.address, "[redacted: 15/2026/QĐ-TA]");
}

#[test]
fn a_rejected_redaction_closes_and_may_be_proposed_again() {
    let (a, mut events) = stream();
    let target = logged(a, Some(events[1].clone()));
    let s = snapshot(a, &events, Some((1, target.clone())));
    events.extend(decided(decide(&s, &propose(a), &steward()).unwrap()));
    let reject = |reason: &str| {
        Command::RejectRedaction(RejectRedaction {
            record: a.into(),
            position: 1,
            reason: reason.to_owned(),
        })
    };
    let s = snapshot(a, &events, None);
    assert_eq!(
        decide(&s, &reject("no"), &steward()).unwrap_err().code(),
        "NOT_SUPERVISOR"
    );
    assert_eq!(
        decide(&s, &reject(" "), &supervisor()).unwrap_err().code(),
        "MISSING_VALUE"
    );
    events.extend(decided(
        decide(&s, &reject("the order is not final"), &supervisor()).unwrap(),
    ));
    let s = snapshot(a, &events, Some((1, target)));
    assert!(decide(&s, &propose(a), &steward()).is_ok());
}

#[test]
fn a_redaction_names_an_existing_unredacted_event_of_the_record() {
    let (a, events) = stream();
    let code = |logged: Option<(u64, LoggedEvent)>, command: &Command| {
        let s = snapshot(a, &events, logged);
        decide(&s, command, &steward()).unwrap_err().code()
    };
    assert_eq!(code(None, &propose(a)), "REDACTION_TARGET_NOT_FOUND");
    let elsewhere = LoggedEvent {
        stream: Target::Record(cid(2).into()).stream_id(),
        ..logged(a, Some(events[1].clone()))
    };
    assert_eq!(
        code(Some((1, elsewhere)), &propose(a)),
        "REDACTION_TARGET_NOT_FOUND"
    );
    assert_eq!(
        code(Some((1, logged(a, None))), &propose(a)),
        "ALREADY_REDACTED"
    );
    let restriction = Event::RecordRestricted {
        reason: "r".to_owned(),
        legal_basis: order(),
        steward: "s".to_owned(),
    };
    assert_eq!(
        code(Some((1, logged(a, Some(restriction)))), &propose(a)),
        "NOT_REDACTABLE"
    );
    let mut no_order = ProposeRedaction {
        record: a.into(),
        position: 1,
        reason: "x".to_owned(),
        legal_basis: order(),
    };
    no_order.legal_basis.document_number = " ".to_owned();
    assert_eq!(
        code(
            Some((1, logged(a, Some(events[1].clone())))),
            &Command::ProposeRedaction(no_order)
        ),
        "MISSING_VALUE"
    );
}

#[test]
fn a_registration_replacement_keeps_identifiers_and_blanks_the_name() {
    let (_, events) = stream();
    let replaced = replacement(&events[0], &order()).unwrap();
    match (&events[0], &replaced) {
        (
            Event::CitizenRegistered { pin, name, .. },
            Event::CitizenRegistered {
                pin: kept,
                name: blanked,
                ..
            },
        ) => {
            assert_eq!(pin, kept);
            assert_ne!(name, blanked);
            let json = serde_json::to_string(blanked).unwrap();
            assert!(!json.contains("Hòa") && !json.contains("Nguyễn"), "{json}");
            assert!(json.contains("[redacted: 15/2026/QĐ-TA]"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_restriction_is_set_by_a_steward_and_lifted_by_a_supervisor() {
    let (a, mut events) = stream();
    let restrict = Command::RestrictRecord(RestrictRecord {
        record: a.into(),
        reason: "the citizen objects to processing".to_owned(),
        legal_basis: order(),
    });
    let lift = Command::LiftRestriction(LiftRestriction {
        record: a.into(),
        reason: "the objection was decided".to_owned(),
        legal_basis: order(),
    });
    let s = snapshot(a, &events, None);
    assert_eq!(
        decide(&s, &lift, &supervisor()).unwrap_err().code(),
        "NOT_RESTRICTED"
    );
    events.extend(decided(decide(&s, &restrict, &steward()).unwrap()));
    assert!(replay(&events).unwrap().unwrap().privacy().is_restricted());
    let s = snapshot(a, &events, None);
    assert_eq!(
        decide(&s, &restrict, &steward2()).unwrap_err().code(),
        "ALREADY_RESTRICTED"
    );
    assert_eq!(
        decide(&s, &lift, &steward()).unwrap_err().code(),
        "NOT_SUPERVISOR"
    );
    events.extend(decided(decide(&s, &lift, &supervisor()).unwrap()));
    assert!(!replay(&events).unwrap().unwrap().privacy().is_restricted());
}
