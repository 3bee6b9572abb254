//! The generic driver API: a handler loads a [`Snapshot`] of the streams a
//! command [`reads`](crate::Command::reads), calls [`decide`], and appends
//! the resulting [`Decision`] atomically; states are folded with
//! [`evolve`](crate::evolve) (records) and [`evolve_key`](crate::evolve_key)
//! (key streams).
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
//!
//! This is the dispatch over commands: each command goes to its record
//! kind's rules (`citizen::decide`, `business::decide`, `parcel::decide`) or
//! to the stewardship rules every kind shares (`correction`).

use crate::business::decide as business;
use crate::citizen::decide as citizen;
use crate::command::Command;
use crate::correction::{approve, correct, propose, reject, stewarded, withdraw};
use crate::decision::Decision;
use crate::error::DomainError;
use crate::parcel::decide as parcel;
use crate::redaction::{self, privacy_of};
use crate::snapshot::Snapshot;
use crate::stewardship::Actor;
use crate::warning::DomainWarning;

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
        Command::ProposeRedaction(c) => {
            let target = s.logged(c.position);
            privacy_of(s, c.record, |p| {
                redaction::propose(p, target, c, actor, &mut d)
            })?
        }
        Command::ApproveRedaction(c) => {
            privacy_of(s, c.record, |p| redaction::approve(p, c, actor, &mut d))?
        }
        Command::RejectRedaction(c) => {
            privacy_of(s, c.record, |p| redaction::reject(p, c, actor, &mut d))?
        }
        Command::RestrictRecord(c) => {
            privacy_of(s, c.record, |p| redaction::restrict(p, c, actor, &mut d))?
        }
        Command::LiftRestriction(c) => {
            privacy_of(s, c.record, |p| redaction::lift(p, c, actor, &mut d))?
        }
    }
    Ok(d)
}
