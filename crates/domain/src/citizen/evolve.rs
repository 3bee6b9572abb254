//! Folding a citizen's events into its state.

use crate::citizen::state::{
    Citizen, IdentityCard, LifeStatus, Marriage, Residence, ResidenceKind,
};
use crate::event::{Event, EvolveError};

impl Citizen {
    pub(crate) fn apply(&mut self, event: &Event) -> Result<(), EvolveError> {
        match event {
            Event::CitizenNameChanged { name, .. } => self.name = name.clone(),
            Event::ResidenceChanged {
                kind,
                commune,
                address,
                since,
            } => {
                let residence = Some(Residence {
                    commune: *commune,
                    address: address.clone(),
                    since: *since,
                });
                match kind {
                    ResidenceKind::Permanent => self.permanent_residence = residence,
                    ResidenceKind::Temporary => self.temporary_residence = residence,
                }
            }
            Event::MarriageRegistered { spouse, date } => {
                self.marriage = Some(Marriage {
                    spouse: *spouse,
                    since: *date,
                });
            }
            Event::DivorceRegistered { .. } | Event::SpouseDeceased { .. } => self.marriage = None,
            Event::ParentsSet { father, mother } => {
                self.father = *father;
                self.mother = *mother;
            }
            Event::IdentityCardIssued {
                number,
                issue_date,
                place,
            } => {
                self.identity_card = Some(IdentityCard {
                    number: *number,
                    issue_date: *issue_date,
                    place: place.clone(),
                });
            }
            Event::CitizenDeceased { date } => self.life = LifeStatus::Deceased { date: *date },
            Event::MergedInto { survivor, .. } => self.merged_into = Some(*survivor),
            Event::Absorbed { duplicate } => self.absorbed.push(*duplicate),
            other => {
                return Err(EvolveError::WrongStream {
                    event_type: other.event_type(),
                    stream: "citizen",
                });
            }
        }
        Ok(())
    }
}

impl Citizen {
    /// The state a `CitizenRegistered` event starts a stream with; `None` for any
    /// other event.
    pub(crate) fn registered(event: &Event) -> Option<Self> {
        let Event::CitizenRegistered {
            citizen,
            pin,
            name,
            sex,
            birth_date,
            birth_place,
            father,
            mother,
            origin,
        } = event
        else {
            return None;
        };
        Some(Citizen {
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
            privacy: Default::default(),
        })
    }
}
