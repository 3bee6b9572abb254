//! The generic driver API: a handler loads a [`Snapshot`] of the streams a
//! command [`reads`](crate::Command::reads), calls [`decide`], and appends
//! the resulting [`Decision`] atomically; states are folded with [`evolve`]
//! (records) and [`evolve_key`] (key streams).
//!
//! ```text
//! loop {
//!     let snapshot = load(command.reads() ∪ extra);          // I/O, handler side
//!     match decide(&snapshot, &command, &actor) {
//!         Ok(decision) => break append_atomically(decision),  // expected versions!
//!         Err(DomainError::NotLoaded(target)) => extra.insert(target),
//!         Err(refusal) => break Err(refusal),                 // nothing written
//!     }
//! }
//! ```

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::business::{self, Business, BusinessStatus};
use crate::citizen::{self, Citizen, LifeStatus, non_empty};
use crate::command::{
    ApproveCorrection, Command, CorrectRecord, ProposeCorrection, RejectCorrection,
    WithdrawCorrection,
};
use crate::date::Date;
use crate::error::DomainError;
use crate::event::{Event, EvolveError};
use crate::ids::{
    AdminUnitCode, AdminUnitTable, BusinessId, CitizenId, CorrectionId, EnterpriseCode, ParcelId,
    RecordId, RecordKind, UnitCheck,
};
use crate::key::{KeyClaim, NaturalKey, evolve_key};
use crate::parcel::{self, LandParcel, ParcelStatus};
use crate::stewardship::{
    Actor, Correctable, Correction, CorrectionStatus, FieldChange, StewardRole, any_protected,
    apply_checked, apply_unchecked,
};

/// A stream a decision writes to.
///
/// Stream ids: records use their [`RecordId`] string (`citizen-<uuid>`,
/// `business-<uuid>`, `parcel-<uuid>`), keys use `key-<key_id>` where
/// `key_id` is [`NaturalKey::key_id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Target {
    Record(RecordId),
    Key(NaturalKey),
}

impl Target {
    pub fn stream_id(&self) -> String {
        match self {
            Self::Record(id) => id.to_string(),
            Self::Key(key) => format!("key-{}", key.key_id()),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Record(id) => write!(f, "{id}"),
            Self::Key(key) => write!(f, "key-{} ({key})", key.key_id()),
        }
    }
}

impl From<RecordId> for Target {
    fn from(id: RecordId) -> Self {
        Self::Record(id)
    }
}

impl From<NaturalKey> for Target {
    fn from(key: NaturalKey) -> Self {
        Self::Key(key)
    }
}

/// Events to append to one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub target: Target,
    pub events: Vec<Event>,
}

/// Accepted, but a steward should look at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DomainWarning {
    /// An enterprise code whose nine digits admit no check digit, accepted on
    /// an initial load.
    LegacyCheckDigit { code: EnterpriseCode },
    /// A pre-2025 commune code we have no record of, kept as opaque.
    UnverifiedPredecessorCommune { code: AdminUnitCode },
    /// A protected change was proposed, not made: it takes effect when a
    /// supervisor other than the proposer approves this correction.
    ApprovalRequired { correction: CorrectionId },
}

impl DomainWarning {
    pub fn code(&self) -> &'static str {
        match self {
            Self::LegacyCheckDigit { .. } => "LEGACY_CHECK_DIGIT",
            Self::UnverifiedPredecessorCommune { .. } => "UNVERIFIED_PREDECESSOR_COMMUNE",
            Self::ApprovalRequired { .. } => "APPROVAL_REQUIRED",
        }
    }
}

/// What a command decided. All changes form ONE atomic multi-stream append:
/// either every stream gets its events or none does. Changes are in a
/// deterministic order and each target appears once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    pub changes: Vec<Change>,
    pub warnings: Vec<DomainWarning>,
}

impl Decision {
    pub(crate) fn emit(&mut self, target: impl Into<Target>, event: Event) {
        let target = target.into();
        match self.changes.iter_mut().find(|c| c.target == target) {
            Some(change) => change.events.push(event),
            None => self.changes.push(Change {
                target,
                events: vec![event],
            }),
        }
    }

    pub(crate) fn warn(&mut self, warning: DomainWarning) {
        self.warnings.push(warning);
    }

    /// Claims `key` for `record`: the key must be free in the snapshot and not
    /// already claimed earlier in this decision.
    pub(crate) fn claim_key(
        &mut self,
        snapshot: &Snapshot,
        key: NaturalKey,
        record: RecordId,
    ) -> Result<(), DomainError> {
        if let Some(holder) = self
            .events_for(&Target::Key(key))
            .iter()
            .find_map(|e| match e {
                Event::KeyClaimed { record, .. } => Some(*record),
                _ => None,
            })
        {
            return Err(DomainError::DuplicateKey { key, holder });
        }
        if let Some(holder) = snapshot.key(&key)?.holder {
            return Err(DomainError::DuplicateKey { key, holder });
        }
        self.emit(key, Event::KeyClaimed { key, record });
        Ok(())
    }

    pub(crate) fn release_key(
        &mut self,
        snapshot: &Snapshot,
        key: NaturalKey,
        record: RecordId,
    ) -> Result<(), DomainError> {
        // Only release what this record holds: a key loaded as held by
        // another record means the snapshot is inconsistent with ours.
        let claim = snapshot.key(&key)?;
        if claim.holder == Some(record) {
            self.emit(key, Event::KeyReleased { key, record });
        }
        Ok(())
    }

    /// Events this decision appends to `target` (empty if none).
    pub fn events_for(&self, target: &Target) -> &[Event] {
        self.changes
            .iter()
            .find(|c| &c.target == target)
            .map(|c| c.events.as_slice())
            .unwrap_or(&[])
    }
}

/// Any record's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Citizen(Citizen),
    Business(Business),
    Parcel(LandParcel),
}

impl Record {
    pub fn id(&self) -> RecordId {
        match self {
            Self::Citizen(c) => c.id.into(),
            Self::Business(b) => b.id.into(),
            Self::Parcel(p) => p.id.into(),
        }
    }

    pub fn kind(&self) -> RecordKind {
        self.id().kind()
    }

    /// The natural key the record holds.
    pub fn natural_key(&self) -> Option<NaturalKey> {
        match self {
            Self::Citizen(c) => c.natural_key(),
            Self::Business(b) => b.natural_key(),
            Self::Parcel(p) => p.natural_key(),
        }
    }

    /// Pending corrections and their history.
    pub fn corrections(&self) -> &crate::stewardship::Corrections {
        match self {
            Self::Citizen(c) => c.corrections(),
            Self::Business(b) => b.corrections(),
            Self::Parcel(p) => p.corrections(),
        }
    }
}

/// The states a handler loaded for one decision.
///
/// A record id maps to `Some(record)` or `None` (stream loaded and empty); a
/// missing id means "not loaded" and makes rules that need it return
/// [`DomainError::NotLoaded`]. Keys map to their [`KeyClaim`]
/// (`KeyClaim::default()` for an empty key stream).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    records: HashMap<RecordId, Option<Record>>,
    keys: HashMap<NaturalKey, KeyClaim>,
}

impl Snapshot {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the loaded state of a record stream (`None` = empty stream).
    pub fn insert_record(&mut self, id: RecordId, state: Option<Record>) {
        self.records.insert(id, state);
    }

    pub fn with_record(mut self, id: RecordId, state: Option<Record>) -> Self {
        self.insert_record(id, state);
        self
    }

    /// Records the loaded state of a key stream.
    pub fn insert_key(&mut self, key: NaturalKey, claim: KeyClaim) {
        self.keys.insert(key, claim);
    }

    pub fn with_key(mut self, key: NaturalKey, claim: KeyClaim) -> Self {
        self.insert_key(key, claim);
        self
    }

    /// Folds a decision into the snapshot (for in-memory handlers and tests).
    pub fn apply(&mut self, decision: &Decision) -> Result<(), EvolveError> {
        for change in &decision.changes {
            match change.target {
                Target::Record(id) => {
                    let mut state = self.records.get(&id).cloned().flatten();
                    for event in &change.events {
                        state = Some(evolve(state, event)?);
                    }
                    self.records.insert(id, state);
                }
                Target::Key(key) => {
                    let mut state = self.keys.get(&key).cloned();
                    for event in &change.events {
                        state = Some(evolve_key(state, event)?);
                    }
                    self.keys.insert(key, state.unwrap_or_default());
                }
            }
        }
        Ok(())
    }

    pub fn record(&self, id: RecordId) -> Result<Option<&Record>, DomainError> {
        self.records
            .get(&id)
            .map(Option::as_ref)
            .ok_or(DomainError::NotLoaded(Target::Record(id)))
    }

    pub fn key(&self, key: &NaturalKey) -> Result<&KeyClaim, DomainError> {
        self.keys
            .get(key)
            .ok_or(DomainError::NotLoaded(Target::Key(*key)))
    }

    /// Follows merge redirects (`MergedInto`) from `id` to the surviving
    /// record, so stored references to a retired duplicate resolve to the
    /// survivor. Returns `NotLoaded` if a record on the way is not loaded.
    pub fn resolve_survivor(&self, id: RecordId) -> Result<RecordId, DomainError> {
        resolve_survivor(id, |r| self.record(r))
    }

    pub(crate) fn ensure_absent(&self, id: RecordId) -> Result<(), DomainError> {
        match self.record(id)? {
            Some(_) => Err(DomainError::RecordExists(id)),
            None => Ok(()),
        }
    }

    fn existing(&self, id: RecordId) -> Result<&Record, DomainError> {
        self.record(id)?.ok_or(DomainError::RecordNotFound(id))
    }

    pub(crate) fn existing_citizen(&self, id: CitizenId) -> Result<&Citizen, DomainError> {
        match self.existing(id.into())? {
            Record::Citizen(c) => Ok(c),
            other => Err(DomainError::WrongRecordKind {
                id: id.into(),
                found: other.kind(),
            }),
        }
    }

    /// Exists and is not a merged-away duplicate.
    pub(crate) fn current_citizen(&self, id: CitizenId) -> Result<&Citizen, DomainError> {
        let c = self.existing_citizen(id)?;
        match c.merged_into {
            Some(survivor) => Err(DomainError::RecordMerged {
                id: id.into(),
                survivor: survivor.into(),
            }),
            None => Ok(c),
        }
    }

    /// Current and alive.
    pub(crate) fn living_citizen(&self, id: CitizenId) -> Result<&Citizen, DomainError> {
        let c = self.current_citizen(id)?;
        if c.is_deceased() {
            Err(DomainError::CitizenDeceased(id))
        } else {
            Ok(c)
        }
    }

    pub(crate) fn current_business(&self, id: BusinessId) -> Result<&Business, DomainError> {
        match self.existing(id.into())? {
            Record::Business(b) => Ok(b),
            other => Err(DomainError::WrongRecordKind {
                id: id.into(),
                found: other.kind(),
            }),
        }
    }

    /// Exists and is not dissolved.
    pub(crate) fn active_business(&self, id: BusinessId) -> Result<&Business, DomainError> {
        let b = self.current_business(id)?;
        if b.is_dissolved() {
            Err(DomainError::BusinessDissolved(id))
        } else {
            Ok(b)
        }
    }

    pub(crate) fn existing_parcel(&self, id: ParcelId) -> Result<&LandParcel, DomainError> {
        match self.existing(id.into())? {
            Record::Parcel(p) => Ok(p),
            other => Err(DomainError::WrongRecordKind {
                id: id.into(),
                found: other.kind(),
            }),
        }
    }

    /// Exists and is not retired, split or merged away.
    pub(crate) fn active_parcel(&self, id: ParcelId) -> Result<&LandParcel, DomainError> {
        let p = self.existing_parcel(id)?;
        if p.is_active() {
            Ok(p)
        } else {
            Err(DomainError::RecordRetired(id.into()))
        }
    }
}

/// Follows `MergedInto` redirects using any lookup (a snapshot, a read model).
/// Stops at the first record that is not merged; a cycle (impossible through
/// `decide`) is reported as `RecordMerged` on the record where it closes.
pub fn resolve_survivor<'a>(
    id: RecordId,
    lookup: impl Fn(RecordId) -> Result<Option<&'a Record>, DomainError>,
) -> Result<RecordId, DomainError> {
    let mut current = id;
    let mut seen = vec![id];
    loop {
        let Some(Record::Citizen(c)) = lookup(current)? else {
            return Ok(current);
        };
        let Some(survivor) = c.merged_into else {
            return Ok(current);
        };
        let next = RecordId::Citizen(survivor);
        if seen.contains(&next) {
            return Err(DomainError::RecordMerged {
                id: current,
                survivor: next,
            });
        }
        seen.push(next);
        current = next;
    }
}

/// Checks a commune code a fact dated `on` carries against Hải Phòng's units
/// ([`AdminUnitTable::check`]): unknown codes are refused, unverified
/// predecessors accepted with a warning.
pub(crate) fn check_unit(
    code: AdminUnitCode,
    on: Date,
    initial_load: bool,
    d: &mut Decision,
) -> Result<(), DomainError> {
    match AdminUnitTable::hai_phong_2025().check(code, on, initial_load) {
        Ok(UnitCheck::UnverifiedPredecessor) => {
            d.warn(DomainWarning::UnverifiedPredecessorCommune { code });
            Ok(())
        }
        Ok(UnitCheck::Current | UnitCheck::DocumentedPredecessor) => Ok(()),
        Err(unknown) => Err(DomainError::UnknownCode(unknown)),
    }
}

/// Decides what `command`, issued by `actor`, appends — or why it is refused.
/// Pure: the same snapshot, command and actor always give the same result.
pub fn decide(
    snapshot: &Snapshot,
    command: &Command,
    actor: &Actor,
) -> Result<Decision, DomainError> {
    // Bounded text first: nothing longer than its documented maximum is
    // decided on, let alone appended.
    crate::text::check_command(command)?;
    let mut d = Decision::default();
    let s = snapshot;
    match command {
        Command::RegisterCitizen(c) => citizen::register(s, c, &mut d)?,
        Command::ChangeCitizenName(c) => {
            // A name is protected: a legal change is proposed for four-eyes
            // approval like any other protected change.
            let proposal = citizen::name_change_proposal(s, c)?;
            stewarded(s, proposal.record, |r| {
                propose(s, r, &proposal, actor, &mut d)
            })?;
            // The caller asked for a rename and got a proposal: say so, with its id.
            d.warn(DomainWarning::ApprovalRequired {
                correction: proposal.correction,
            });
        }
        Command::ChangeResidence(c) => citizen::change_residence(s, c, &mut d)?,
        Command::RegisterMarriage(c) => citizen::marry(s, c, &mut d)?,
        Command::RegisterDivorce(c) => citizen::divorce(s, c, &mut d)?,
        Command::SetParents(c) => citizen::set_parents(s, c, &mut d)?,
        Command::IssueIdentityCard(c) => citizen::issue_card(s, c, &mut d)?,
        Command::RecordDeath(c) => citizen::record_death(s, c, &mut d)?,
        Command::MergeCitizens(c) => citizen::merge(s, c, actor, &mut d)?,
        Command::RegisterBusiness(c) => business::register(s, c, &mut d)?,
        Command::RenameBusiness(c) => business::rename(s, c, &mut d)?,
        Command::MoveHeadOffice(c) => business::move_head_office(s, c, &mut d)?,
        Command::ChangeLegalRepresentatives(c) => business::change_representatives(s, c, &mut d)?,
        Command::ChangeCharterCapital(c) => business::change_capital(s, c, &mut d)?,
        Command::ChangeBusinessLines(c) => business::change_lines(s, c, &mut d)?,
        Command::SuspendBusiness(c) => business::suspend(s, c, &mut d)?,
        Command::ResumeBusiness(c) => business::resume(s, c, &mut d)?,
        Command::DissolveBusiness(c) => business::dissolve(s, c, &mut d)?,
        Command::RegisterBranch(c) => business::register_branch(s, c, &mut d)?,
        Command::RegisterParcel(c) => parcel::register(s, c, &mut d)?,
        Command::TransferRights(c) => parcel::transfer(s, c, &mut d)?,
        Command::ChangeLandUse(c) => parcel::change_land_use(s, c, &mut d)?,
        Command::IssueCertificate(c) => parcel::issue_certificate(s, c, &mut d)?,
        Command::RevokeCertificate(c) => parcel::revoke_certificate(s, c, &mut d)?,
        Command::RegisterMortgage(c) => parcel::register_mortgage(s, c, &mut d)?,
        Command::ReleaseMortgage(c) => parcel::release_mortgage(s, c, &mut d)?,
        Command::SplitParcel(c) => parcel::split(s, c, &mut d)?,
        Command::MergeParcels(c) => parcel::merge(s, c, &mut d)?,
        Command::RetireParcel(c) => parcel::retire(s, c, &mut d)?,
        Command::CorrectRecord(c) => {
            stewarded(s, c.record, |r| correct(s, r, c.record, c, actor, &mut d))?
        }
        Command::ProposeCorrection(c) => {
            stewarded(s, c.record, |r| propose(s, r, c, actor, &mut d))?
        }
        Command::ApproveCorrection(c) => {
            stewarded(s, c.record, |r| approve(s, r, c.record, c, actor, &mut d))?
        }
        Command::RejectCorrection(c) => stewarded(s, c.record, |r| reject(r, c, actor, &mut d))?,
        Command::WithdrawCorrection(c) => {
            stewarded(s, c.record, |r| withdraw(r, c, actor, &mut d))?
        }
    }
    Ok(d)
}

// --- stewardship rules -----------------------------------------------------

/// A record as a [`Correctable`], for generic correction rules.
enum AnyCorrectable<'a> {
    Citizen(&'a Citizen),
    Business(&'a Business),
    Parcel(&'a LandParcel),
}

/// Runs a correction rule on any existing, non-merged record.
fn stewarded(
    snapshot: &Snapshot,
    id: RecordId,
    rule: impl FnOnce(AnyCorrectable<'_>) -> Result<(), DomainError>,
) -> Result<(), DomainError> {
    match snapshot.existing(id)? {
        Record::Citizen(c) => {
            if let Some(survivor) = c.merged_into {
                return Err(DomainError::RecordMerged {
                    id,
                    survivor: survivor.into(),
                });
            }
            rule(AnyCorrectable::Citizen(c))
        }
        Record::Business(b) => rule(AnyCorrectable::Business(b)),
        Record::Parcel(p) => rule(AnyCorrectable::Parcel(p)),
    }
}

macro_rules! with_correctable {
    ($any:expr, |$r:ident| $body:expr) => {
        match $any {
            AnyCorrectable::Citizen($r) => $body,
            AnyCorrectable::Business($r) => $body,
            AnyCorrectable::Parcel($r) => $body,
        }
    };
}

/// Record-kind rules a correction must also respect, beyond the record's own
/// invariants: key uniqueness, branch code prefix, eligible holders.
trait CrossChecks: Correctable {
    fn cross_check(
        &self,
        _before: &Self,
        _snapshot: &Snapshot,
        _changed: &[FieldChange],
    ) -> Result<(), DomainError> {
        Ok(())
    }
}

impl CrossChecks for Citizen {}

impl CrossChecks for Business {
    fn cross_check(
        &self,
        before: &Self,
        _: &Snapshot,
        _: &[FieldChange],
    ) -> Result<(), DomainError> {
        if self.parent.is_some()
            && self.code.parent() != before.code.parent()
            && let Some(parent_code) = before.code.parent()
        {
            return Err(DomainError::BranchCodeMismatch {
                code: self.code,
                parent_code,
            });
        }
        Ok(())
    }
}

impl CrossChecks for LandParcel {
    fn cross_check(
        &self,
        _: &Self,
        snapshot: &Snapshot,
        changed: &[FieldChange],
    ) -> Result<(), DomainError> {
        if changed.iter().any(|c| c.field == "holders") {
            parcel::check_holders(snapshot, &self.holders)?;
        }
        Ok(())
    }
}

/// The corrected copy plus canonical old/new values for the event.
fn checked_changes<T: CrossChecks>(
    snapshot: &Snapshot,
    record: &T,
    changes: &[FieldChange],
    d: &mut Decision,
) -> Result<(T, Vec<FieldChange>), DomainError> {
    let corrected = apply_checked(record, changes)?;
    corrected.cross_check(record, snapshot, changes)?;
    for change in changes {
        corrected.check_codes(&change.field, d)?;
    }
    let canonical = changes
        .iter()
        .map(|c| {
            Ok(FieldChange {
                field: c.field.clone(),
                old: record.get_field(&c.field)?,
                new: corrected.get_field(&c.field)?,
            })
        })
        .collect::<Result<Vec<_>, DomainError>>()?;
    Ok((corrected, canonical))
}

/// Releases the old natural key and claims the new one when a correction
/// changes it, in the same decision as the correction itself.
fn move_key<T: Correctable>(
    snapshot: &Snapshot,
    id: RecordId,
    before: &T,
    after: &T,
    d: &mut Decision,
) -> Result<(), DomainError> {
    if let (Some(old), Some(new)) = (before.natural_key(), after.natural_key())
        && old != new
    {
        d.release_key(snapshot, old, id)?;
        d.claim_key(snapshot, new, id)?;
    }
    Ok(())
}

fn check_text(
    reason: &str,
    legal_basis: &crate::stewardship::LegalBasis,
) -> Result<String, DomainError> {
    non_empty(&legal_basis.document_number, "legal_basis.document_number")?;
    non_empty(reason, "reason")
}

fn correct(
    snapshot: &Snapshot,
    any: AnyCorrectable<'_>,
    id: RecordId,
    c: &CorrectRecord,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    with_correctable!(any, |record| {
        if let Some(field) = any_protected(record.kind(), &c.changes) {
            return Err(DomainError::ProtectedField { field });
        }
        let reason = check_text(&c.reason, &c.legal_basis)?;
        let (after, changes) = checked_changes(snapshot, record, &c.changes, d)?;
        move_key(snapshot, id, record, &after, d)?;
        d.emit(
            id,
            Event::RecordCorrected {
                changes,
                reason,
                legal_basis: c.legal_basis.clone(),
                steward: actor.id.clone(),
            },
        );
        Ok(())
    })
}

fn propose(
    snapshot: &Snapshot,
    any: AnyCorrectable<'_>,
    c: &ProposeCorrection,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    with_correctable!(any, |record| {
        if record.corrections().contains_key(&c.correction) {
            return Err(DomainError::CorrectionExists(c.correction));
        }
        let reason = check_text(&c.reason, &c.legal_basis)?;
        let (after, changes) = checked_changes(snapshot, record, &c.changes, d)?;
        // Early feedback: a new key already held elsewhere will not be
        // approvable. (Approval checks again; the key may change meanwhile.)
        if let (Some(old), Some(new)) = (record.natural_key(), after.natural_key())
            && old != new
            && let Some(holder) = snapshot.key(&new)?.holder
        {
            return Err(DomainError::DuplicateKey { key: new, holder });
        }
        d.emit(
            c.record,
            Event::CorrectionProposed {
                correction: c.correction,
                changes,
                reason,
                legal_basis: c.legal_basis.clone(),
                steward: actor.id.clone(),
            },
        );
        Ok(())
    })
}

fn pending(
    corrections: &crate::stewardship::Corrections,
    id: CorrectionId,
) -> Result<&Correction, DomainError> {
    let correction = corrections
        .get(&id)
        .ok_or(DomainError::CorrectionNotFound(id))?;
    if correction.status != CorrectionStatus::Pending {
        return Err(DomainError::CorrectionClosed(id));
    }
    Ok(correction)
}

/// Four-eyes: a supervisor who is not the proposer.
fn check_reviewer(correction: &Correction, actor: &Actor) -> Result<(), DomainError> {
    if actor.role != StewardRole::Supervisor {
        return Err(DomainError::NotSupervisor);
    }
    if actor.id == correction.proposed_by {
        return Err(DomainError::SelfReview);
    }
    Ok(())
}

fn approve(
    snapshot: &Snapshot,
    any: AnyCorrectable<'_>,
    id: RecordId,
    c: &ApproveCorrection,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    with_correctable!(any, |record| {
        let correction = pending(record.corrections(), c.correction)?;
        check_reviewer(correction, actor)?;
        // Old values are re-checked: another correction may have landed since.
        let (after, _) = checked_changes(snapshot, record, &correction.changes, d)?;
        move_key(snapshot, id, record, &after, d)?;
        d.emit(
            id,
            Event::CorrectionApproved {
                correction: c.correction,
                supervisor: actor.id.clone(),
            },
        );
        Ok(())
    })
}

fn reject(
    any: AnyCorrectable<'_>,
    c: &RejectCorrection,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    with_correctable!(any, |record| {
        let correction = pending(record.corrections(), c.correction)?;
        check_reviewer(correction, actor)?;
        let reason = non_empty(&c.reason, "reason")?;
        d.emit(
            c.record,
            Event::CorrectionRejected {
                correction: c.correction,
                supervisor: actor.id.clone(),
                reason,
            },
        );
        Ok(())
    })
}

fn withdraw(
    any: AnyCorrectable<'_>,
    c: &WithdrawCorrection,
    actor: &Actor,
    d: &mut Decision,
) -> Result<(), DomainError> {
    with_correctable!(any, |record| {
        let correction = pending(record.corrections(), c.correction)?;
        if actor.id != correction.proposed_by {
            return Err(DomainError::NotProposer);
        }
        d.emit(
            c.record,
            Event::CorrectionWithdrawn {
                correction: c.correction,
                steward: actor.id.clone(),
            },
        );
        Ok(())
    })
}

// --- evolution ---------------------------------------------------------------

fn apply_stewardship<T: Correctable>(record: &mut T, event: &Event) -> Result<(), EvolveError> {
    let bad = |e: DomainError| EvolveError::Correction(e.to_string());
    match event {
        Event::RecordCorrected { changes, .. } => apply_unchecked(record, changes).map_err(bad)?,
        Event::CorrectionProposed {
            correction,
            changes,
            reason,
            legal_basis,
            steward,
        } => {
            if record.corrections().contains_key(correction) {
                return Err(EvolveError::Inconsistent("correction proposed twice"));
            }
            record.corrections_mut().insert(
                *correction,
                Correction {
                    id: *correction,
                    changes: changes.clone(),
                    reason: reason.clone(),
                    legal_basis: legal_basis.clone(),
                    proposed_by: steward.clone(),
                    status: CorrectionStatus::Pending,
                },
            );
        }
        Event::CorrectionApproved {
            correction,
            supervisor,
        } => {
            let changes = pending(record.corrections(), *correction)
                .map_err(|_| {
                    EvolveError::Inconsistent("approval of a correction that is not pending")
                })?
                .changes
                .clone();
            apply_unchecked(record, &changes).map_err(bad)?;
            set_status(
                record,
                *correction,
                CorrectionStatus::Approved {
                    by: supervisor.clone(),
                },
            )?;
        }
        Event::CorrectionRejected {
            correction,
            supervisor,
            reason,
        } => {
            set_status(
                record,
                *correction,
                CorrectionStatus::Rejected {
                    by: supervisor.clone(),
                    reason: reason.clone(),
                },
            )?;
        }
        Event::CorrectionWithdrawn { correction, .. } => {
            set_status(record, *correction, CorrectionStatus::Withdrawn)?;
        }
        other => {
            return Err(EvolveError::WrongStream {
                event_type: other.event_type(),
                stream: "record",
            });
        }
    }
    Ok(())
}

fn set_status<T: Correctable>(
    record: &mut T,
    id: CorrectionId,
    status: CorrectionStatus,
) -> Result<(), EvolveError> {
    match record.corrections_mut().get_mut(&id) {
        Some(c) if c.status == CorrectionStatus::Pending => {
            c.status = status;
            Ok(())
        }
        _ => Err(EvolveError::Inconsistent(
            "closing a correction that is not pending",
        )),
    }
}

/// Folds one event into a record's state. The first event of a stream must
/// be a registration. Returns an error (never panics) for streams `decide`
/// could not have produced.
pub fn evolve(state: Option<Record>, event: &Event) -> Result<Record, EvolveError> {
    let Some(mut record) = state else {
        return first_event(event);
    };
    if matches!(
        event,
        Event::CitizenRegistered { .. }
            | Event::BusinessRegistered { .. }
            | Event::ParcelRegistered { .. }
    ) {
        return Err(EvolveError::AlreadyRegistered(event.event_type()));
    }
    if event.is_stewardship() {
        match &mut record {
            Record::Citizen(c) => apply_stewardship(c, event)?,
            Record::Business(b) => apply_stewardship(b, event)?,
            Record::Parcel(p) => apply_stewardship(p, event)?,
        }
    } else {
        match &mut record {
            Record::Citizen(c) => c.apply(event)?,
            Record::Business(b) => b.apply(event)?,
            Record::Parcel(p) => p.apply(event)?,
        }
    }
    Ok(record)
}

fn first_event(event: &Event) -> Result<Record, EvolveError> {
    match event {
        Event::CitizenRegistered {
            citizen,
            pin,
            name,
            sex,
            birth_date,
            birth_place,
            father,
            mother,
            origin,
        } => Ok(Record::Citizen(Citizen {
            id: *citizen,
            pin: *pin,
            name: name.clone(),
            sex: *sex,
            birth_date: *birth_date,
            birth_place: *birth_place,
            father: *father,
            mother: *mother,
            permanent_residence: None,
            temporary_residence: None,
            marriage: None,
            identity_card: None,
            life: LifeStatus::Alive,
            merged_into: None,
            absorbed: Vec::new(),
            origin: origin.clone(),
            corrections: Default::default(),
        })),
        Event::BusinessRegistered {
            business,
            code,
            names,
            head_office,
            legal_representatives,
            charter_capital,
            business_lines,
            registration_date,
            parent,
            origin,
        } => Ok(Record::Business(Business {
            id: *business,
            code: *code,
            names: names.clone(),
            head_office: head_office.clone(),
            legal_representatives: legal_representatives.clone(),
            charter_capital: *charter_capital,
            business_lines: business_lines.clone(),
            registration_date: *registration_date,
            parent: *parent,
            branches: Vec::new(),
            status: BusinessStatus::Active,
            origin: origin.clone(),
            corrections: Default::default(),
        })),
        Event::ParcelRegistered {
            parcel,
            key,
            national_parcel_id,
            area,
            land_use,
            address,
            geometry,
            holders,
            origin,
        } => Ok(Record::Parcel(LandParcel {
            id: *parcel,
            key: *key,
            national_parcel_id: national_parcel_id.clone(),
            area: *area,
            land_use: land_use.clone(),
            address: address.clone(),
            geometry: geometry.clone(),
            holders: holders.clone(),
            certificate: None,
            mortgages: Vec::new(),
            status: ParcelStatus::Active,
            origin: origin.clone(),
            corrections: Default::default(),
        })),
        other => Err(EvolveError::NotARegistration(other.event_type())),
    }
}

/// Folds a whole stream from scratch; `None` for an empty stream.
pub fn replay<'a>(
    events: impl IntoIterator<Item = &'a Event>,
) -> Result<Option<Record>, EvolveError> {
    events
        .into_iter()
        .try_fold(None, |state, event| evolve(state, event).map(Some))
}

/// Folds a whole key stream from scratch.
pub fn replay_key<'a>(
    events: impl IntoIterator<Item = &'a Event>,
) -> Result<KeyClaim, EvolveError> {
    events
        .into_iter()
        .try_fold(KeyClaim::default(), |state, event| {
            evolve_key(Some(state), event)
        })
}
