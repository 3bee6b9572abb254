//! Folding a business's events into its state.

use crate::business::state::{Business, BusinessStatus};
use crate::event::{Event, EvolveError};

impl Business {
    pub(crate) fn apply(&mut self, event: &Event) -> Result<(), EvolveError> {
        match event {
            Event::BranchAdded { branch, .. } => self.branches.push(*branch),
            Event::BusinessRenamed { names, .. } => self.names = names.clone(),
            Event::HeadOfficeMoved { head_office, .. } => self.head_office = head_office.clone(),
            Event::LegalRepresentativesChanged {
                legal_representatives,
                ..
            } => {
                self.legal_representatives = legal_representatives.clone();
            }
            Event::CharterCapitalChanged {
                charter_capital, ..
            } => self.charter_capital = Some(*charter_capital),
            Event::BusinessLinesChanged { business_lines, .. } => {
                self.business_lines = business_lines.clone()
            }
            Event::BusinessSuspended { from, until } => {
                self.status = BusinessStatus::Suspended {
                    from: *from,
                    until: *until,
                };
            }
            Event::BusinessResumed { .. } => self.status = BusinessStatus::Active,
            Event::BusinessDissolved { on } => self.status = BusinessStatus::Dissolved { on: *on },
            other => {
                return Err(EvolveError::WrongStream {
                    event_type: other.event_type(),
                    stream: "business",
                });
            }
        }
        Ok(())
    }
}

impl Business {
    /// The state a `BusinessRegistered` event starts a stream with; `None` for any
    /// other event.
    pub(crate) fn registered(event: &Event) -> Option<Self> {
        let Event::BusinessRegistered {
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
        } = event
        else {
            return None;
        };
        Some(Business {
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
            privacy: Default::default(),
        })
    }
}
