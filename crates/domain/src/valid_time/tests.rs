//! The valid-time fold on hand-built streams: the issue's scenarios (a late death, a backdated
//! move, a correction of the past against a change from a date) and the ordering rules.

use serde_json::{Value, json};

use super::*;
use crate::citizen::state::{LifeStatus, ResidenceKind};
use crate::date::PartialDate;
use crate::ids::Sex;
use crate::testing::*;

fn registered() -> Event {
    citizen_registered(register_citizen(1, Sex::Female, 1990))
}

fn moved(commune: &str, since: &str) -> Event {
    Event::ResidenceChanged {
        kind: ResidenceKind::Permanent,
        commune: unit(commune),
        address: format!("Số 1, {commune}"),
        since: date(since),
    }
}

fn corrected(changes: Vec<FieldChange>) -> Event {
    Event::RecordCorrected {
        changes,
        reason: "sai sót khi nhập".into(),
        legal_basis: basis(),
        steward: steward().id,
    }
}

/// A stream as recorded: each event with the day it was recorded and its `effective_at`.
struct Stream(Vec<(Event, Option<Date>, Date)>);

impl Stream {
    fn new() -> Self {
        Stream(vec![(registered(), None, date("2016-05-02"))])
    }
    fn then(mut self, event: Event, effective: Option<&str>, recorded: &str) -> Self {
        self.0.push((event, effective.map(date), date(recorded)));
        self
    }
    fn dated(&self) -> Vec<Dated<'_>> {
        self.0
            .iter()
            .map(|(event, effective_at, recorded)| Dated {
                event,
                effective_at: *effective_at,
                recorded: *recorded,
            })
            .collect()
    }
    /// The stream as known before its last `n` events were recorded.
    fn known_before_last(&self, n: usize) -> Vec<Dated<'_>> {
        let mut d = self.dated();
        d.truncate(d.len() - n);
        d
    }
}

fn citizen_on(events: &[Dated<'_>], on: &str) -> Option<crate::citizen::state::Citizen> {
    match state_valid_at(events, date(on)).unwrap() {
        Some(Record::Citizen(c)) => Some(c),
        None => None,
        other => panic!("{other:?}"),
    }
}

fn commune_on(events: &[Dated<'_>], on: &str) -> Option<String> {
    citizen_on(events, on)
        .and_then(|c| c.permanent_residence)
        .map(|r| r.commune.to_string())
}

#[test]
fn a_record_exists_from_its_registration_date() {
    let s = Stream::new();
    assert!(citizen_on(&s.dated(), "1989-12-31").is_none());
    assert!(
        citizen_on(&s.dated(), "1990-01-01").is_some(),
        "a birth year counts from 1 January"
    );
}

#[test]
fn a_backdated_move_holds_from_its_own_date_not_the_day_it_was_declared() {
    let s = Stream::new()
        .then(moved("11311", "2010-01-01"), None, "2010-01-05")
        .then(moved("11320", "2024-03-01"), None, "2024-04-15");
    let now = s.dated();
    assert_eq!(commune_on(&now, "2009-12-31"), None);
    assert_eq!(commune_on(&now, "2024-02-29").as_deref(), Some("11311"));
    assert_eq!(commune_on(&now, "2024-03-01").as_deref(), Some("11320"));
    // As known before the declaration (the recorded axis), the move had not happened on 2024-03-10.
    let then = s.known_before_last(1);
    assert_eq!(commune_on(&then, "2024-03-10").as_deref(), Some("11311"));
}

#[test]
fn a_late_death_registration_changes_the_past_as_known_now_only() {
    let s = Stream::new().then(
        Event::CitizenDeceased {
            date: PartialDate::from(date("2023-06-01")),
        },
        None,
        "2025-02-10",
    );
    let now = s.dated();
    assert_eq!(
        citizen_on(&now, "2023-05-31").unwrap().life,
        LifeStatus::Alive
    );
    assert!(matches!(
        citizen_on(&now, "2023-06-01").unwrap().life,
        LifeStatus::Deceased { .. }
    ));
    let then = s.known_before_last(1);
    assert_eq!(
        citizen_on(&then, "2024-01-01").unwrap().life,
        LifeStatus::Alive
    );
}

#[test]
fn a_correction_fixes_the_past_unless_it_says_from_when() {
    let name_fix = || corrected(vec![fc("name.given", json!("Hòa 1"), json!("Hoà Mai"))]);
    let fixed = Stream::new().then(name_fix(), None, "2025-01-01");
    assert_eq!(
        citizen_on(&fixed.dated(), "1990-01-01")
            .unwrap()
            .name
            .given(),
        "Hoà Mai",
        "fixing the past: the corrected name held from the start"
    );
    let changed = Stream::new().then(name_fix(), Some("2020-07-01"), "2025-01-01");
    assert_eq!(
        citizen_on(&changed.dated(), "2020-06-30")
            .unwrap()
            .name
            .given(),
        "Hòa 1"
    );
    assert_eq!(
        citizen_on(&changed.dated(), "2020-07-01")
            .unwrap()
            .name
            .given(),
        "Hoà Mai"
    );
    // Both carry the correction as known: the record's keeping is not on the valid axis.
    let before = citizen_on(&changed.dated(), "2020-06-30").unwrap();
    assert!(
        before.corrections.is_empty(),
        "a direct correction keeps no proposal"
    );
}

#[test]
fn fixing_a_moved_residence_corrects_it_where_it_was_said_to_hold() {
    let wrong = json!({"commune": "11320", "address": "Số 1, 11320", "since": "2024-03-01"});
    let right = json!({"commune": "11329", "address": "Số 1, 11329", "since": "2024-03-01"});
    let s = Stream::new()
        .then(moved("11311", "2010-01-01"), None, "2010-01-05")
        .then(moved("11320", "2024-03-01"), None, "2024-04-15")
        .then(
            corrected(vec![fc("permanent_residence", wrong, right)]),
            None,
            "2025-06-01",
        );
    let now = s.dated();
    assert_eq!(commune_on(&now, "2024-02-29").as_deref(), Some("11311"));
    assert_eq!(commune_on(&now, "2024-03-01").as_deref(), Some("11329"));
    let periods = timeline(&now, "permanent_residence").unwrap();
    let communes: Vec<(String, Option<String>, Value)> = periods
        .iter()
        .map(|p| {
            (
                p.from.to_string(),
                p.until.map(|u| u.to_string()),
                p.value.get("commune").cloned().unwrap_or(Value::Null),
            )
        })
        .collect();
    assert_eq!(
        communes,
        vec![
            ("1990-01-01".into(), Some("2010-01-01".into()), Value::Null),
            (
                "2010-01-01".into(),
                Some("2024-03-01".into()),
                json!("11311")
            ),
            ("2024-03-01".into(), None, json!("11329")),
        ]
    );
    assert_eq!(
        periods[2].set_by, 3,
        "the correction set the last period's value"
    );
    // As known before the correction, the wrong commune held.
    let then = timeline(&s.known_before_last(1), "permanent_residence").unwrap();
    assert_eq!(then[2].value["commune"], json!("11320"));
    assert_eq!(
        placements(&now).unwrap()[3].map(|k| k.date),
        Some(date("2024-03-01"))
    );
}

#[test]
fn an_approval_holds_from_when_its_proposal_says() {
    let proposal = |n| Event::CorrectionProposed {
        correction: corr(n),
        changes: vec![fc("sex", json!("female"), json!("male"))],
        reason: "giấy khai sinh".into(),
        legal_basis: basis(),
        steward: steward().id,
    };
    let approved = |n| Event::CorrectionApproved {
        correction: corr(n),
        supervisor: supervisor().id,
    };
    let s = Stream::new()
        .then(proposal(1), Some("2021-01-01"), "2025-01-01")
        .then(approved(1), None, "2025-01-02");
    let now = s.dated();
    assert_eq!(citizen_on(&now, "2020-12-31").unwrap().sex, Sex::Female);
    let after = citizen_on(&now, "2021-01-01").unwrap();
    assert_eq!(after.sex, Sex::Male);
    assert_eq!(
        after.corrections.len(),
        1,
        "the state carries the approved correction"
    );
    // Pending: nothing changes on any date.
    let pending = s.known_before_last(1);
    assert_eq!(citizen_on(&pending, "2030-01-01").unwrap().sex, Sex::Female);
    let fixing =
        Stream::new()
            .then(proposal(2), None, "2025-01-01")
            .then(approved(2), None, "2025-01-02");
    assert_eq!(
        citizen_on(&fixing.dated(), "1990-01-01").unwrap().sex,
        Sex::Male
    );
}

#[test]
fn a_fact_dated_before_the_registration_holds_from_the_registration() {
    let s = Stream::new().then(moved("11311", "1980-01-01"), None, "2016-05-02");
    let now = s.dated();
    assert_eq!(commune_on(&now, "1990-01-01").as_deref(), Some("11311"));
    assert_eq!(
        placements(&now).unwrap()[1].map(|k| k.date),
        Some(date("1990-01-01"))
    );
}

#[test]
fn bookkeeping_is_on_the_recorded_axis_only() {
    let s = Stream::new().then(
        Event::CorrectionProposed {
            correction: corr(3),
            changes: vec![fc("sex", json!("female"), json!("male"))],
            reason: "r".into(),
            legal_basis: basis(),
            steward: steward().id,
        },
        None,
        "2025-01-01",
    );
    assert_eq!(placements(&s.dated()).unwrap()[1], None);
    let c = citizen_on(&s.dated(), "1995-01-01").unwrap();
    assert_eq!(
        c.corrections.len(),
        1,
        "a pending proposal is known on every date"
    );
}

#[test]
fn a_timeline_asks_for_a_field_the_record_has() {
    let s = Stream::new();
    assert!(matches!(
        timeline(&s.dated(), "nickname"),
        Err(TimelineError::UnknownField { .. })
    ));
    let life = timeline(&s.dated(), "life").unwrap();
    assert_eq!(life.len(), 1);
    assert_eq!(life[0].from, date("1990-01-01"));
}
