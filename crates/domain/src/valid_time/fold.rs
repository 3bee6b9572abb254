//! The valid axis of one record: its state on a date ([`state_valid_at`]), a field's periods
//! ([`timeline`]) and each event's place on the axis ([`placements`]), from the events known at
//! some point of the recorded axis (a log position; approved redactions already applied).
//!
//! The order ([`ValidKey`]): events by the date they hold from ([`valid_from`]), ties in the
//! order they were recorded. Three rules make that order a fold `evolve` can take:
//! - **The registration comes first.** A record exists on the valid axis from its
//!   registration's date (a citizen from birth, a business from its registration date, a
//!   parcel from its `effectiveAt` or recorded day); a fact dated before it holds from it
//!   (an imported parcel's older contract, say). Before that date the record is `None`.
//! - **A correction that fixes the past takes the place of the value it corrects**: right
//!   after the event that last set the field (recorded order), whatever its date, so the
//!   corrected value holds wherever the wrong one was said to hold and a later change still
//!   replaces it. A fix of a fix goes to the same place. An approval is placed as its proposal
//!   says (`effective_at` on the proposal's metadata, or fixing the past).
//! - **Bookkeeping is not on the valid axis**: proposals, their rejection and withdrawal,
//!   redactions and restrictions ([`ValidFrom::NotAFact`]) are folded in recorded order, and
//!   the state on a date carries the corrections and privacy the record has as known at the
//!   point asked — a redacted value stays redacted on every date.
//!
//! A partial date (a birth year) counts from its first day ([`PartialDate::earliest`]).
//! Pure: the caller reads the events and the dates; nothing here does I/O.

use std::collections::HashMap;

use serde_json::Value;

use super::from::{ValidFrom, valid_from};
use crate::date::Date;
use crate::event::{Event, EvolveError};
use crate::evolve::{evolve, replay};
use crate::ids::{CorrectionId, RecordKind};
use crate::snapshot::Record;
use crate::stewardship::{FieldChange, fields_of};

/// One known event of a record's stream, in recorded order, with what places it in valid time.
#[derive(Debug, Clone, Copy)]
pub struct Dated<'a> {
    pub event: &'a Event,
    /// `effective_at` of the event's metadata.
    pub effective_at: Option<Date>,
    /// The day it was recorded, in Vietnam ([`super::recorded_on`]).
    pub recorded: Date,
}

/// An event's place on the valid axis: `date`, then the recorded index of the event it is
/// ordered with (itself, or for a correction fixing the past the event that set the field),
/// then its own recorded index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ValidKey {
    pub date: Date,
    anchor: usize,
    own: usize,
}

/// What a step does to the state on the valid axis.
#[derive(Debug, Clone)]
enum Action<'a> {
    /// Fold the event as `evolve` does.
    Evolve(&'a Event),
    /// Set corrected fields (a correction, or an approval's proposed changes).
    Set(Vec<FieldChange>),
}

#[derive(Debug, Clone)]
struct Step<'a> {
    key: ValidKey,
    action: Action<'a>,
}

/// Everything the valid axis needs from one stream: the steps in valid order, and the state
/// as known (recorded order) whose bookkeeping every valid-time state carries.
struct Plan<'a> {
    steps: Vec<Step<'a>>,
    /// Per event (recorded index): where it sits on the valid axis; `None` when it holds only
    /// on the recorded axis. A correction fixing several fields set at different places sits
    /// at the first.
    placements: Vec<Option<ValidKey>>,
    known: Option<Record>,
}

fn inconsistent(what: &'static str) -> EvolveError {
    EvolveError::Inconsistent(what)
}

fn plan<'a>(events: &[Dated<'a>]) -> Result<Plan<'a>, EvolveError> {
    // Where each field was last set is only needed to place corrections that fix the past;
    // most streams have none, and comparing every field after every event is the cost.
    let track_setters = events.iter().any(|d| {
        matches!(
            d.event,
            Event::RecordCorrected { .. } | Event::CorrectionApproved { .. }
        )
    });
    let mut known: Option<Record> = None;
    let mut setters: HashMap<&'static str, ValidKey> = HashMap::new();
    let mut proposals: HashMap<CorrectionId, Option<Date>> = HashMap::new();
    let mut steps = Vec::new();
    let mut placements = Vec::with_capacity(events.len());
    let mut start: Option<Date> = None;
    for (i, dated) in events.iter().enumerate() {
        let own = |date: Date, start: Option<Date>| ValidKey {
            date: start.map_or(date, |s| date.max(s)),
            anchor: i,
            own: i,
        };
        let basis = valid_from(dated.event, dated.effective_at, dated.recorded);
        let placed = match (dated.event, &basis) {
            (Event::CorrectionProposed { correction, .. }, _) => {
                proposals.insert(*correction, dated.effective_at);
                None
            }
            (Event::RecordCorrected { changes, .. }, _) => {
                let record = known
                    .as_ref()
                    .ok_or(inconsistent("correction before registration"))?;
                correction_steps(
                    record.kind(),
                    changes,
                    dated.effective_at,
                    start,
                    i,
                    &setters,
                    &mut steps,
                )?
            }
            (Event::CorrectionApproved { correction, .. }, _) => {
                let record = known
                    .as_ref()
                    .ok_or(inconsistent("approval before registration"))?;
                let proposal = record
                    .corrections()
                    .get(correction)
                    .ok_or(inconsistent("approval of an unknown correction"))?;
                let effective = proposals.get(correction).copied().flatten();
                let changes = proposal.changes.clone();
                correction_steps(
                    record.kind(),
                    &changes,
                    effective,
                    start,
                    i,
                    &setters,
                    &mut steps,
                )?
            }
            (_, ValidFrom::NotAFact | ValidFrom::FixesPast | ValidFrom::AsProposed { .. }) => None,
            (event, basis) => {
                let date = basis.date().map(|d| d.earliest()).unwrap_or(dated.recorded);
                let key = own(date, start);
                if start.is_none() {
                    start = Some(key.date);
                }
                steps.push(Step {
                    key,
                    action: Action::Evolve(event),
                });
                Some(key)
            }
        };
        // The state before is kept only to see which fields the event set (cloning a record
        // per event is wasted work on a stream without corrections).
        let before = if track_setters { known.clone() } else { None };
        known = Some(evolve(known, dated.event)?);
        if let (true, Some(key), Some(after)) = (track_setters, placed, known.as_ref()) {
            // A correction that fixes the past leaves the field's place where it was.
            let fixes_past = matches!(
                (dated.event, placed),
                (Event::RecordCorrected { .. } | Event::CorrectionApproved { .. }, Some(k)) if k.anchor != i
            );
            if !fixes_past {
                for spec in fields_of(after.kind()) {
                    let was = before
                        .as_ref()
                        .map(|b| b.field_value(spec.name))
                        .transpose();
                    let is = after.field_value(spec.name);
                    if was.ok().flatten() != is.ok() {
                        setters.insert(spec.name, key);
                    }
                }
            }
        }
        placements.push(placed);
    }
    steps.sort_by_key(|s| s.key);
    Ok(Plan {
        steps,
        placements,
        known,
    })
}

/// The steps of one correction: fixing the past, each field right after the event that last
/// set it (the registration set every field); changing from `effective`, all at that date.
/// Returns where the correction sits (its first step).
fn correction_steps(
    kind: RecordKind,
    changes: &[FieldChange],
    effective: Option<Date>,
    start: Option<Date>,
    index: usize,
    setters: &HashMap<&'static str, ValidKey>,
    steps: &mut Vec<Step<'_>>,
) -> Result<Option<ValidKey>, EvolveError> {
    let Some(start) = start else {
        return Err(inconsistent("correction before registration"));
    };
    if let Some(date) = effective {
        let key = ValidKey {
            date: date.max(start),
            anchor: index,
            own: index,
        };
        steps.push(Step {
            key,
            action: Action::Set(changes.to_vec()),
        });
        return Ok(Some(key));
    }
    let registration = ValidKey {
        date: start,
        anchor: 0,
        own: index,
    };
    let mut first: Option<ValidKey> = None;
    for change in changes {
        fields_of(kind)
            .iter()
            .find(|f| f.name == change.field)
            .ok_or_else(|| EvolveError::Correction(format!("unknown field {}", change.field)))?;
        let source = setters
            .get(change.field.as_str())
            .copied()
            .unwrap_or(registration);
        let key = ValidKey {
            own: index,
            ..source
        };
        steps.push(Step {
            key,
            action: Action::Set(vec![change.clone()]),
        });
        first = Some(first.map_or(key, |f| f.min(key)));
    }
    Ok(first)
}

/// Each known event's place on the valid axis, in recorded order (`None`: it holds only on
/// the recorded axis). `history` in valid order sorts by it.
pub fn placements(events: &[Dated<'_>]) -> Result<Vec<Option<ValidKey>>, EvolveError> {
    Ok(plan(events)?.placements)
}

fn apply(state: Option<Record>, action: &Action<'_>) -> Result<Record, EvolveError> {
    match action {
        Action::Evolve(event) => evolve(state, event),
        Action::Set(changes) => {
            let mut record = state.ok_or(inconsistent("correction before registration"))?;
            record
                .set_fields(changes)
                .map_err(|e| EvolveError::Correction(e.to_string()))?;
            Ok(record)
        }
    }
}

/// The record as it held on `valid_at`, as known from `events`; `None` if its registration
/// holds from a later date (or there are no events). It carries the corrections and privacy
/// the record has as known (see the module documentation).
pub fn state_valid_at(events: &[Dated<'_>], valid_at: Date) -> Result<Option<Record>, EvolveError> {
    let plan = plan(events)?;
    let mut state: Option<Record> = None;
    for step in plan.steps.iter().take_while(|s| s.key.date <= valid_at) {
        state = Some(apply(state, &step.action)?);
    }
    Ok(match (state, plan.known) {
        (Some(mut state), Some(known)) => {
            state.keep_bookkeeping_of(&known);
            Some(state)
        }
        (state, _) => state,
    })
}

/// One value a field held, from `from` until the day before `until` (`None`: still holds).
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub from: Date,
    pub until: Option<Date>,
    /// The field's value, as `get_field` and the corrections read it (`null` when empty).
    pub value: Value,
    /// Recorded index of the event that set it (or last corrected it in place).
    pub set_by: usize,
}

/// Why a timeline cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum TimelineError {
    #[error("a {kind} has no field `{field}` to follow in time")]
    UnknownField { kind: RecordKind, field: String },
    #[error(transparent)]
    Stream(#[from] EvolveError),
}

/// The fields a timeline can follow, beyond the correctable ones ([`fields_of`]): facts set
/// only by their own commands.
pub fn timeline_fields(kind: RecordKind) -> Vec<&'static str> {
    let extra: &[&'static str] = match kind {
        RecordKind::Citizen => &["father", "mother", "marriage", "life", "merged_into"],
        RecordKind::Business => &["legal_representatives", "status", "parent", "branches"],
        RecordKind::Parcel => &["certificate", "mortgages", "status"],
    };
    fields_of(kind)
        .iter()
        .map(|f| f.name)
        .chain(extra.iter().copied())
        .collect()
}

/// A field's value on the valid axis, period by period, as known from `events`. Same-day
/// steps and corrections that fix the past replace the value of the period they land in;
/// periods whose value does not change are joined.
pub fn timeline(events: &[Dated<'_>], field: &str) -> Result<Vec<Period>, TimelineError> {
    let plan = plan(events)?;
    let Some(kind) = plan.known.as_ref().map(Record::kind) else {
        return Ok(Vec::new());
    };
    if !timeline_fields(kind).contains(&field) {
        return Err(TimelineError::UnknownField {
            kind,
            field: field.to_owned(),
        });
    }
    let mut periods: Vec<Period> = Vec::new();
    let mut state: Option<Record> = None;
    for step in &plan.steps {
        let next = apply(state, &step.action)?;
        let value = next
            .field_or_fact(field)
            .map_err(|_| TimelineError::UnknownField {
                kind,
                field: field.to_owned(),
            })?;
        let date = step.key.date;
        let set_by = step.key.own;
        match periods.last_mut() {
            Some(last) if last.value == value => {}
            Some(last) if last.from == date => {
                last.value = value;
                last.set_by = set_by;
            }
            _ => periods.push(Period {
                from: date,
                until: None,
                value,
                set_by,
            }),
        }
        state = Some(next);
    }
    // A same-day replacement may have made two neighbours equal.
    periods.dedup_by(|later, earlier| later.value == earlier.value);
    let froms: Vec<Date> = periods.iter().skip(1).map(|p| p.from).collect();
    for (period, until) in periods.iter_mut().zip(froms) {
        period.until = Some(until);
    }
    Ok(periods)
}

/// The recorded-order fold of the same events (the state as known), for callers that want
/// both without reading twice.
pub fn state_as_known(events: &[Dated<'_>]) -> Result<Option<Record>, EvolveError> {
    replay(events.iter().map(|d| d.event))
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
