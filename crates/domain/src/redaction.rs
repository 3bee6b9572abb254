//! Erasure and restriction where the law allows (Law 91/2025/QH15 on Personal Data Protection).
//!
//! **Redaction**, four-eyes like a protected correction: a steward proposes to redact ONE event
//! of a record's stream, citing a court or legal order (`legal_basis`); a *different* actor with
//! the Supervisor role approves (`RedactionApproved`, an event on the record's stream, so in the
//! hash chain: who, why, which order, which event) or rejects. After the approval is durable the
//! registry blanks the target's payload in the log (the event hash and data digest stay), in the
//! marker of the command that produced it, and in the projections.
//!
//! **Replay**: a blanked event has no data, so `evolve` cannot apply it. The proposal computes,
//! from the event still readable then, its [`replacement`]: the same event with every personal
//! free-text value replaced by a placeholder naming the order, identifiers, codes, dates and
//! structure kept (later events still apply to them). The approval carries it; every fold of the
//! stream (the registry, as-of reads, projections and their rebuild) applies the replacement where
//! it meets the redacted event, so every later state shows the redacted values as
//! `[redacted: <order>]`.
//!
//! **Restriction** (`RecordRestricted` / `RestrictionLifted`): a flag on the record; services are
//! refused (`RESTRICTED`), stewards, supervisors and auditors still read it. No four-eyes: a
//! restriction only withholds data, takes effect at once as the decree's deadlines require, and
//! changes no value, so a wrong one is undone by lifting it. Lifting re-opens the data to
//! services, so it takes a supervisor.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decision::Decision;
use crate::error::DomainError;
use crate::event::Event;
use crate::ids::RecordId;
use crate::stewardship::{Actor, LegalBasis, StewardRole};
use crate::target::Target;
use crate::text::non_empty;

pub use crate::privacy::{Privacy, Redaction, RedactionStatus, Restriction};
pub use crate::snapshot::LoggedEvent;

/// Propose redacting the payload of the event at log `position` of `record`'s stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposeRedaction {
    pub record: RecordId,
    pub position: u64,
    pub reason: String,
    /// The court or legal order.
    pub legal_basis: LegalBasis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveRedaction {
    pub record: RecordId,
    pub position: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectRedaction {
    pub record: RecordId,
    pub position: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestrictRecord {
    pub record: RecordId,
    pub reason: String,
    pub legal_basis: LegalBasis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiftRestriction {
    pub record: RecordId,
    pub reason: String,
    pub legal_basis: LegalBasis,
}

/// JSON keys holding personal free text (a subset of [`crate::text::LIMITS`]): a person's name
/// parts, addresses, places, and reasons (which stewards write about the person).
const PERSONAL_TEXT: &[&str] = &[
    "family", "middle", "given", "address", "street", "place", "reason",
];

/// Fields whose [`crate::FieldChange`] values are personal free text themselves.
const PERSONAL_FIELDS: &[&str] = &["name.family", "name.middle", "name.given"];

/// The placeholder a redacted value reads as: it names the order.
pub fn placeholder(order: &LegalBasis) -> String {
    format!("[redacted: {}]", order.document_number)
}

/// `event` as a redaction under `order` leaves it: every personal free-text value replaced by
/// [`placeholder`], everything else (identifiers, codes, dates, amounts, structure) kept, so
/// that the events after it still apply. Redaction and restriction events themselves cannot be
/// redacted (they hold no payload of the person's beyond a reason, and a replacement).
pub fn replacement(event: &Event, order: &LegalBasis) -> Result<Event, DomainError> {
    if is_privacy(event) {
        return Err(DomainError::NotRedactable(event.event_type()));
    }
    let mut json = event.to_json().map_err(|e| invalid(e.to_string()))?;
    blank_text(&mut json, &placeholder(order));
    serde_json::from_value(json).map_err(|e| invalid(e.to_string()))
}

fn invalid(message: String) -> DomainError {
    DomainError::InvalidFieldValue {
        field: "replacement".to_owned(),
        message,
    }
}

fn blank_text(value: &mut Value, placeholder: &str) {
    match value {
        Value::Object(map) => {
            let personal_change = map
                .get("field")
                .and_then(Value::as_str)
                .is_some_and(|f| PERSONAL_FIELDS.contains(&f));
            for (key, v) in map.iter_mut() {
                let personal = PERSONAL_TEXT.contains(&key.as_str())
                    || (personal_change && (key == "old" || key == "new"));
                match v {
                    Value::String(s) if personal && !s.is_empty() => *s = placeholder.to_owned(),
                    _ => blank_text(v, placeholder),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| blank_text(v, placeholder)),
        _ => {}
    }
}

pub(crate) fn is_privacy(event: &Event) -> bool {
    matches!(
        event,
        Event::RedactionProposed { .. }
            | Event::RedactionApproved { .. }
            | Event::RedactionRejected { .. }
            | Event::RecordRestricted { .. }
            | Event::RestrictionLifted { .. }
    )
}

fn check_text(reason: &str, legal_basis: &LegalBasis) -> Result<String, DomainError> {
    non_empty(&legal_basis.document_number, "legal_basis.document_number")?;
    non_empty(reason, "reason")
}

pub(crate) fn propose(
    privacy: &Privacy,
    target: Option<&LoggedEvent>,
    c: &ProposeRedaction,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let reason = check_text(&c.reason, &c.legal_basis)?;
    if let Some(existing) = privacy.redaction(c.position)
        && !matches!(existing.status, RedactionStatus::Rejected { .. })
    {
        return Err(DomainError::RedactionExists(c.position));
    }
    // Only an event of this record's own stream: a position elsewhere is not found *here*.
    let target = target
        .filter(|t| t.stream == Target::Record(c.record).stream_id())
        .ok_or(DomainError::RedactionTargetNotFound(c.position))?;
    let event = target
        .event
        .as_ref()
        .ok_or(DomainError::AlreadyRedacted(c.position))?;
    let replacement = replacement(event, &c.legal_basis)?;
    d.emit(
        c.record,
        Event::RedactionProposed {
            position: c.position,
            event_hash: target.event_hash.clone(),
            event_type: event.event_type().to_owned(),
            reason,
            legal_basis: c.legal_basis.clone(),
            steward: actor.id.clone(),
            replacement: Box::new(replacement),
        },
    );
    Ok(())
}

fn pending(privacy: &Privacy, position: u64) -> Result<&Redaction, DomainError> {
    let redaction = privacy
        .redaction(position)
        .ok_or(DomainError::RedactionNotFound(position))?;
    if redaction.status != RedactionStatus::Pending {
        return Err(DomainError::RedactionClosed(position));
    }
    Ok(redaction)
}

/// Four-eyes, the rule of protected corrections: a supervisor who is not the proposer.
fn check_reviewer(redaction: &Redaction, actor: &Actor) -> Result<(), DomainError> {
    if actor.role != StewardRole::Supervisor {
        return Err(DomainError::NotSupervisor);
    }
    if actor.id == redaction.proposed_by {
        return Err(DomainError::SelfReview);
    }
    Ok(())
}

pub(crate) fn approve(
    privacy: &Privacy,
    c: &ApproveRedaction,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let redaction = pending(privacy, c.position)?;
    check_reviewer(redaction, actor)?;
    let replacement: Event = serde_json::from_value(redaction.replacement.clone())
        .map_err(|e| invalid(e.to_string()))?;
    d.emit(
        c.record,
        Event::RedactionApproved {
            position: c.position,
            event_hash: redaction.event_hash.clone(),
            event_type: redaction.event_type.clone(),
            reason: redaction.reason.clone(),
            legal_basis: redaction.legal_basis.clone(),
            steward: redaction.proposed_by.clone(),
            supervisor: actor.id.clone(),
            replacement: Box::new(replacement),
        },
    );
    Ok(())
}

pub(crate) fn reject(
    privacy: &Privacy,
    c: &RejectRedaction,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let redaction = pending(privacy, c.position)?;
    check_reviewer(redaction, actor)?;
    let reason = non_empty(&c.reason, "reason")?;
    d.emit(
        c.record,
        Event::RedactionRejected {
            position: c.position,
            supervisor: actor.id.clone(),
            reason,
        },
    );
    Ok(())
}

pub(crate) fn restrict(
    privacy: &Privacy,
    c: &RestrictRecord,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let reason = check_text(&c.reason, &c.legal_basis)?;
    if privacy.is_restricted() {
        return Err(DomainError::AlreadyRestricted);
    }
    d.emit(
        c.record,
        Event::RecordRestricted {
            reason,
            legal_basis: c.legal_basis.clone(),
            steward: actor.id.clone(),
        },
    );
    Ok(())
}

pub(crate) fn lift(
    privacy: &Privacy,
    c: &LiftRestriction,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    let reason = check_text(&c.reason, &c.legal_basis)?;
    if actor.role != StewardRole::Supervisor {
        return Err(DomainError::NotSupervisor);
    }
    if !privacy.is_restricted() {
        return Err(DomainError::NotRestricted);
    }
    d.emit(
        c.record,
        Event::RestrictionLifted {
            reason,
            legal_basis: c.legal_basis.clone(),
            supervisor: actor.id.clone(),
        },
    );
    Ok(())
}

/// Folds a redaction or restriction event into the record's privacy state.
pub(crate) fn evolve(privacy: &mut Privacy, event: &Event) -> Result<(), &'static str> {
    match event {
        Event::RedactionProposed {
            position,
            event_hash,
            event_type,
            reason,
            legal_basis,
            steward,
            replacement,
        } => {
            if privacy
                .redaction(*position)
                .is_some_and(|r| !matches!(r.status, RedactionStatus::Rejected { .. }))
            {
                return Err("redaction proposed twice");
            }
            privacy.redactions.push(Redaction {
                position: *position,
                event_hash: event_hash.clone(),
                event_type: event_type.clone(),
                reason: reason.clone(),
                legal_basis: legal_basis.clone(),
                proposed_by: steward.clone(),
                replacement: serde_json::to_value(replacement)
                    .map_err(|_| "a replacement that is not JSON")?,
                status: RedactionStatus::Pending,
            });
        }
        Event::RedactionApproved {
            position,
            supervisor,
            ..
        } => close(
            privacy,
            *position,
            RedactionStatus::Approved {
                by: supervisor.clone(),
            },
        )?,
        Event::RedactionRejected {
            position,
            supervisor,
            reason,
        } => close(
            privacy,
            *position,
            RedactionStatus::Rejected {
                by: supervisor.clone(),
                reason: reason.clone(),
            },
        )?,
        Event::RecordRestricted {
            reason,
            legal_basis,
            steward,
        } => {
            privacy.restricted = Some(Restriction {
                reason: reason.clone(),
                legal_basis: legal_basis.clone(),
                by: steward.clone(),
            })
        }
        Event::RestrictionLifted { .. } => privacy.restricted = None,
        _ => return Err("not a redaction or restriction event"),
    }
    Ok(())
}

fn close(
    privacy: &mut Privacy,
    position: u64,
    status: RedactionStatus,
) -> Result<(), &'static str> {
    match privacy.redaction_mut(position) {
        Some(r) if r.status == RedactionStatus::Pending => {
            r.status = status;
            Ok(())
        }
        _ => Err("closing a redaction that is not pending"),
    }
}

/// The replacements of a stream's approved redactions, by target position: what every fold
/// applies in place of a blanked event ([`Event::RedactionApproved`]'s `replacement`).
pub fn replacements<'a>(events: impl IntoIterator<Item = &'a Event>) -> BTreeMap<u64, Event> {
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::RedactionApproved {
                position,
                replacement,
                ..
            } => Some((*position, (**replacement).clone())),
            _ => None,
        })
        .collect()
}

impl crate::snapshot::Record {
    /// The record's restriction and redactions.
    pub fn privacy(&self) -> &Privacy {
        match self {
            Self::Citizen(c) => &c.privacy,
            Self::Business(b) => &b.privacy,
            Self::Parcel(p) => &p.privacy,
        }
    }

    pub(crate) fn privacy_mut(&mut self) -> &mut Privacy {
        match self {
            Self::Citizen(c) => &mut c.privacy,
            Self::Business(b) => &mut b.privacy,
            Self::Parcel(p) => &mut p.privacy,
        }
    }
}

/// Runs a redaction or restriction rule on an existing record (any kind; a merged citizen too:
/// a court order may name a duplicate's events).
pub(crate) fn privacy_of(
    snapshot: &crate::snapshot::Snapshot,
    id: RecordId,
    rule: impl FnOnce(&Privacy) -> Result<(), DomainError>,
) -> Result<(), DomainError> {
    rule(snapshot.existing(id)?.privacy())
}

/// The event a fold applies at `position`: the replacement an approved redaction gives for it
/// (whether or not the payload is blanked yet), else the event as read (`None`: blanked with no
/// approval naming it — a stream `decide` could not have produced).
pub fn in_place<'a>(
    replacements: &'a BTreeMap<u64, Event>,
    position: u64,
    event: Option<&'a Event>,
) -> Option<&'a Event> {
    replacements.get(&position).or(event)
}
