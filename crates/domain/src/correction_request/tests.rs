use serde_json::json;

use super::*;
use crate::citizen::commands::RegisterCitizen;
use crate::command::{ApproveCorrection, Command, ProposeCorrection};
use crate::ids::{RecordId, Sex};
use crate::key::{KeyClaim, NaturalKey};
use crate::snapshot::{Record, Snapshot};
use crate::testing::{basis, cid, corr, date, fc, register_citizen, steward, supervisor};

/// Citizen 1 (born 1990) after `commands`, folded through the real rules.
fn citizen_after(commands: &[(Command, Actor)]) -> Citizen {
    let register: RegisterCitizen = register_citizen(1, Sex::Female, 1990);
    let pin = register.pin;
    let mut state: Option<Record> = None;
    let all = std::iter::once((Command::RegisterCitizen(register), steward()))
        .chain(commands.iter().cloned());
    for (command, actor) in all {
        let snapshot = Snapshot::new()
            .with_record(cid(1).into(), state.clone())
            .with_key(NaturalKey::Pin(pin), KeyClaim::default());
        let decision = crate::decide(&snapshot, &command, &actor).unwrap();
        for event in decision.events_for(&crate::Target::Record(cid(1).into())) {
            state = Some(crate::evolve(state, event).unwrap());
        }
    }
    match state {
        Some(Record::Citizen(c)) => c,
        other => panic!("{other:?}"),
    }
}

fn proposal(n: u128) -> Command {
    Command::ProposeCorrection(ProposeCorrection {
        record: RecordId::Citizen(cid(1)),
        correction: corr(n),
        changes: vec![fc("birth_date", json!("1990"), json!("1990-03-04"))],
        reason: "giấy khai sinh".to_owned(),
        legal_basis: basis(),
    })
}

fn approval(n: u128) -> Command {
    Command::ApproveCorrection(ApproveCorrection {
        record: RecordId::Citizen(cid(1)),
        correction: corr(n),
    })
}

fn rid() -> RequestId {
    RequestId(Uuid::from_u128(0xE001))
}

fn me() -> RequestActor {
    RequestActor::Citizen { record: cid(1) }
}

fn staff_actor() -> RequestActor {
    RequestActor::Staff { actor: steward() }
}

fn file(on: &str) -> RequestCommand {
    RequestCommand::RequestCorrection {
        request: rid(),
        citizen: cid(1),
        field: "birth_date".to_owned(),
        proposed_value: "1990-03-04".to_owned(),
        reason: "ngày sinh thiếu ngày, tháng".to_owned(),
        evidence: vec![
            "Giấy khai sinh số 12/1990".to_owned(),
            "HS-2026-000123".to_owned(),
        ],
        on: date(on),
    }
}

/// Runs `commands` from an empty stream; the state after the last success.
struct Run {
    state: Option<CorrectionRequest>,
    citizen: Citizen,
    events: Vec<RequestEvent>,
}

impl Run {
    fn new(citizen: Citizen) -> Run {
        Run {
            state: None,
            citizen,
            events: Vec::new(),
        }
    }

    fn try_run(
        &mut self,
        command: RequestCommand,
        actor: RequestActor,
    ) -> Result<(), RequestError> {
        let snapshot = RequestSnapshot {
            request: self.state.as_ref(),
            citizen: Some(&self.citizen),
        };
        let events = decide(snapshot, &command, &actor, WorkingCalendar::vietnam())?;
        for event in events {
            self.state = Some(evolve(self.state.take(), &event).unwrap());
            self.events.push(event);
        }
        Ok(())
    }

    fn run(&mut self, command: RequestCommand, actor: RequestActor) {
        self.try_run(command, actor).unwrap();
    }

    fn refused(&mut self, command: RequestCommand, actor: RequestActor, code: &str) {
        let before = self.state.clone();
        let err = self.try_run(command, actor).unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert_eq!(self.state, before, "a refusal changes nothing");
    }

    fn state(&self) -> &CorrectionRequest {
        self.state.as_ref().unwrap()
    }
}

#[test]
fn filing_computes_both_deadlines_from_the_calendar() {
    let mut r = Run::new(citizen_after(&[]));
    // Thursday 12 Feb 2026, the day before the Tet break (14-22 Feb).
    r.run(file("2026-02-12"), me());
    let s = r.state();
    assert_eq!(s.status, RequestStatus::Submitted);
    // Friday 13 counts one, the break none, Monday 23 two.
    assert_eq!(s.acknowledge_by, date("2026-02-23"));
    // 10 days end on Sunday 22 Feb: the next working day.
    assert_eq!(s.due_by, date("2026-02-23"));
    assert_eq!(s.citizen, cid(1));
}

#[test]
fn filing_is_for_ones_own_existing_record_and_a_correctable_field() {
    let mut r = Run::new(citizen_after(&[]));
    let other = RequestActor::Citizen { record: cid(2) };
    r.refused(file("2026-12-01"), other, "NOT_OWN_RECORD");
    r.refused(file("2026-12-01"), staff_actor(), "NOT_OWN_RECORD");
    let mut bad = file("2026-12-01");
    if let RequestCommand::RequestCorrection { field, .. } = &mut bad {
        *field = "shoe_size".to_owned();
    }
    r.refused(bad, me(), "UNKNOWN_FIELD");
    let mut bad = file("2026-12-01");
    if let RequestCommand::RequestCorrection { evidence, .. } = &mut bad {
        *evidence = vec!["x".to_owned(); MAX_EVIDENCE + 1];
    }
    r.refused(bad, me(), "INVALID_EVIDENCE");
    let mut bad = file("2026-12-01");
    if let RequestCommand::RequestCorrection { evidence, .. } = &mut bad {
        *evidence = vec!["x".repeat(MAX_EVIDENCE_CHARS + 1)];
    }
    r.refused(bad, me(), "INVALID_EVIDENCE");
    let mut bad = file("2026-12-01");
    if let RequestCommand::RequestCorrection { reason, .. } = &mut bad {
        *reason = " ".to_owned();
    }
    r.refused(bad, me(), "MISSING_VALUE");
    // No record at all.
    let snapshot = RequestSnapshot {
        request: None,
        citizen: None,
    };
    let err = decide(
        snapshot,
        &file("2026-12-01"),
        &me(),
        WorkingCalendar::vietnam(),
    )
    .unwrap_err();
    assert_eq!(err.code(), "RECORD_NOT_FOUND");
    r.run(file("2026-12-01"), me());
    r.refused(file("2026-12-01"), me(), "REQUEST_EXISTS");
}

#[test]
fn the_four_eyes_path_resolves_only_once_the_correction_took_effect() {
    let proposed = citizen_after(&[(proposal(1), steward())]);
    let mut r = Run::new(proposed);
    r.run(file("2026-12-01"), me());
    let resolve = |n| RequestCommand::ResolveCorrectionRequest {
        request: rid(),
        correction: corr(n),
        on: date("2026-12-03"),
    };
    r.refused(
        RequestCommand::AcknowledgeCorrectionRequest {
            request: rid(),
            on: date("2026-12-02"),
        },
        me(),
        "NOT_STEWARD",
    );
    r.run(
        RequestCommand::AcknowledgeCorrectionRequest {
            request: rid(),
            on: date("2026-12-02"),
        },
        staff_actor(),
    );
    assert_eq!(r.state().status, RequestStatus::Acknowledged);
    r.refused(
        RequestCommand::AcknowledgeCorrectionRequest {
            request: rid(),
            on: date("2026-12-02"),
        },
        staff_actor(),
        "INVALID_TRANSITION",
    );
    // Pending: not yet in effect.
    r.refused(resolve(1), staff_actor(), "CORRECTION_NOT_APPLIED");
    r.refused(resolve(9), staff_actor(), "CORRECTION_NOT_FOUND");
    // Approved by a different supervisor: in effect.
    r.citizen = citizen_after(&[(proposal(1), steward()), (approval(1), supervisor())]);
    r.refused(resolve(1), me(), "NOT_STEWARD");
    r.run(resolve(1), staff_actor());
    let s = r.state();
    assert_eq!(s.status, RequestStatus::Resolved);
    assert!(matches!(
        s.closure,
        Some(Closure::Resolved { correction, .. }) if correction == corr(1)
    ));
    // Closed: nothing else applies.
    r.refused(
        RequestCommand::WithdrawCorrectionRequest {
            request: rid(),
            on: date("2026-12-04"),
        },
        me(),
        "INVALID_TRANSITION",
    );
    let types: Vec<&str> = r.events.iter().map(RequestEvent::event_type).collect();
    assert_eq!(
        types,
        [
            "CorrectionRequestSubmitted",
            "CorrectionRequestAcknowledged",
            "CorrectionRequestResolved"
        ]
    );
}

#[test]
fn a_correction_of_another_field_does_not_resolve() {
    let other_field = Command::ProposeCorrection(ProposeCorrection {
        record: RecordId::Citizen(cid(1)),
        correction: corr(2),
        changes: vec![fc("birth_place", json!("11311"), json!("10507"))],
        reason: "nhập sai".to_owned(),
        legal_basis: basis(),
    });
    let mut r = Run::new(citizen_after(&[
        (other_field, steward()),
        (approval(2), supervisor()),
    ]));
    r.run(file("2026-12-01"), me());
    r.refused(
        RequestCommand::ResolveCorrectionRequest {
            request: rid(),
            correction: corr(2),
            on: date("2026-12-02"),
        },
        staff_actor(),
        "CORRECTION_OFF_FIELD",
    );
}

#[test]
fn withdraw_refuse_and_extend() {
    let mut r = Run::new(citizen_after(&[]));
    r.refused(
        RequestCommand::WithdrawCorrectionRequest {
            request: rid(),
            on: date("2026-12-02"),
        },
        me(),
        "REQUEST_NOT_FOUND",
    );
    r.run(file("2026-12-01"), me());
    let extend = |days| RequestCommand::ExtendCorrectionRequest {
        request: rid(),
        days,
        reason: "cần xác minh với nơi đăng ký khai sinh".to_owned(),
        on: date("2026-12-02"),
    };
    r.refused(extend(16), staff_actor(), "EXTENSION_TOO_LONG");
    r.refused(extend(0), staff_actor(), "EXTENSION_TOO_LONG");
    r.refused(extend(15), me(), "NOT_STEWARD");
    // Due Friday 11 Dec; + 15 days = Saturday 26 Dec → Monday 28 Dec.
    assert_eq!(r.state().due_by, date("2026-12-11"));
    r.run(extend(15), staff_actor());
    assert_eq!(r.state().due_by, date("2026-12-28"));
    r.refused(extend(1), staff_actor(), "ALREADY_EXTENDED");
    let refuse = RequestCommand::RefuseCorrectionRequest {
        request: rid(),
        reason: "giấy tờ không khớp".to_owned(),
        legal_basis: "Luật 91/2025/QH15".to_owned(),
        on: date("2026-12-03"),
    };
    r.refused(refuse.clone(), me(), "NOT_STEWARD");
    // Another citizen may not withdraw it; the requester may.
    let mut w = Run::new(r.citizen.clone());
    w.run(file("2026-12-01"), me());
    w.refused(
        RequestCommand::WithdrawCorrectionRequest {
            request: rid(),
            on: date("2026-12-02"),
        },
        RequestActor::Citizen { record: cid(2) },
        "NOT_OWN_RECORD",
    );
    w.run(
        RequestCommand::WithdrawCorrectionRequest {
            request: rid(),
            on: date("2026-12-02"),
        },
        me(),
    );
    assert_eq!(w.state().status, RequestStatus::Withdrawn);
    r.run(refuse.clone(), staff_actor());
    assert_eq!(r.state().status, RequestStatus::Refused);
    r.refused(refuse, staff_actor(), "INVALID_TRANSITION");
}

#[test]
fn overdue_is_recorded_once_per_passed_deadline() {
    let mut r = Run::new(citizen_after(&[]));
    r.run(file("2026-12-01"), me()); // acknowledge by Thursday 3 Dec, due Friday 11 Dec
    let overdue = |deadline, on: &str| RequestCommand::RecordCorrectionRequestOverdue {
        request: rid(),
        deadline,
        on: date(on),
    };
    assert!(r.state().deadlines_passed(date("2026-12-03")).is_empty());
    r.refused(
        overdue(Deadline::Acknowledge, "2026-12-03"),
        RequestActor::Clock,
        "NOT_OVERDUE",
    );
    assert_eq!(
        r.state().deadlines_passed(date("2026-12-04")),
        [Deadline::Acknowledge]
    );
    r.run(
        overdue(Deadline::Acknowledge, "2026-12-04"),
        RequestActor::Clock,
    );
    assert!(r.state().is_overdue());
    r.refused(
        overdue(Deadline::Acknowledge, "2026-12-05"),
        RequestActor::Clock,
        "ALREADY_OVERDUE",
    );
    // Acknowledged late: the acknowledgement deadline no longer binds.
    r.run(
        RequestCommand::AcknowledgeCorrectionRequest {
            request: rid(),
            on: date("2026-12-07"),
        },
        staff_actor(),
    );
    assert!(!r.state().is_overdue());
    assert_eq!(
        r.state().deadlines_passed(date("2026-12-14")),
        [Deadline::Resolve]
    );
    r.run(
        overdue(Deadline::Resolve, "2026-12-14"),
        RequestActor::Clock,
    );
    assert!(r.state().is_overdue());
    // No extension once the period lapsed.
    r.refused(
        RequestCommand::ExtendCorrectionRequest {
            request: rid(),
            days: 5,
            reason: "muộn".to_owned(),
            on: date("2026-12-14"),
        },
        staff_actor(),
        "ALREADY_OVERDUE",
    );
    assert_ne!(
        overdue_command_id(rid(), Deadline::Acknowledge),
        overdue_command_id(rid(), Deadline::Resolve)
    );
    assert_eq!(
        overdue_command_id(rid(), Deadline::Resolve),
        overdue_command_id(rid(), Deadline::Resolve)
    );
}

#[test]
fn events_round_trip_and_bad_streams_are_corrupt() {
    let mut r = Run::new(citizen_after(&[]));
    r.run(file("2026-12-01"), me());
    for event in &r.events {
        let json = serde_json::to_value(event).unwrap();
        assert_eq!(
            RequestEvent::decode(event.event_type(), 1, &json).unwrap(),
            *event
        );
        assert_eq!(
            RequestEvent::decode(event.event_type(), 2, &json)
                .unwrap_err()
                .code(),
            "CORRUPT"
        );
    }
    let withdrawn = RequestEvent::CorrectionRequestWithdrawn {
        on: date("2026-12-01"),
    };
    assert_eq!(evolve(None, &withdrawn).unwrap_err().code(), "CORRUPT");
    assert_eq!(
        evolve(r.state.clone(), &r.events[0]).unwrap_err().code(),
        "CORRUPT"
    );
}
